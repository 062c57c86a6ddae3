// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/unique_fd.h"
#include "discovery/btrfs_discard.h"
#include "discovery/catalog.h"
#include "discovery/filesystem_catalog.h"
#include "engine/diagnose.h"
#include "event_loop.h"
#include "state/state.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct libmnt_monitor;

namespace thintrim::daemon {

// Calls `onChange` on the loop thread after the mount table changed, so the
// daemon re-reads it. Event-driven either way, no polling:
// - the kernel's table (/proc/self/mountinfo): libmount's monitor, whose fd
//   becomes readable on every mount, unmount and remount;
// - a mount table file given with --mountinfo (tests): inotify on its
//   directory, firing when the file is rewritten in place (IN_CLOSE_WRITE) or
//   replaced by a rename (IN_MOVED_TO).
// Bursts are coalesced: a change after a quiet spell calls `onChange` at
// once; changes within `settle` of a call make one more call when that
// period ends. A burst of any size (a container start mounts dozens, a busy
// Kubernetes node thousands a minute) costs at most one call per period.
class MountWatch {
public:
    MountWatch(EventLoop& loop, const std::filesystem::path& mountinfo,
               std::function<void()> onChange,
               Microseconds settle = std::chrono::milliseconds(500));
    ~MountWatch();
    MountWatch(const MountWatch&) = delete;
    MountWatch& operator=(const MountWatch&) = delete;

private:
    void onReadable();

    EventLoop& loop_;
    std::function<void()> onChange_;
    struct MonitorUnref {
        void operator()(libmnt_monitor* monitor) const;
    };
    std::unique_ptr<libmnt_monitor, MonitorUnref> monitor_; // the kernel's table
    UniqueFd inotify_;                                      // a file
    std::string fileName_;
    int fd_ = -1; // the one being polled
    Microseconds settle_;
    Timer settleTimer_;
    bool settling_ = false;             // within `settle` of the last call
    bool changedWhileSettling_ = false; // a call is owed when the period ends
};

// What one scan of the system found.
struct MountScan {
    // The number of the last MountScanner::request() this scan answers: it
    // began after that request and every earlier one.
    std::uint64_t answers = 0;
    // Empty for Scope::Samples, which reads no mount table.
    std::vector<CatalogEntry> catalog;
    // Of every managed mount whose statvfs answered, by mount point; for
    // Scope::Samples, of those whose devices wrote something since their
    // last sample.
    std::map<std::string, FreeSpace, std::less<>> freeSpace;
    bool samplesOnly = false; // Scope::Samples: apply with updateFreeSpace()
    // Of every managed btrfs mount with discard=async, by mount point.
    std::map<std::string, BtrfsAsyncDiscard, std::less<>> asyncDiscard;
    // Scope::Diagnosis: runDiagnosis() over `catalog`.
    std::optional<std::vector<Finding>> findings;
    // Set when the mount table could not be read; the rest is then empty.
    std::optional<std::string> error;
};

// The answer to Diagnose from `scan` (nullptr: none came within `waited`):
// its checks and the proofs on record (diagnose.h: proofFindings) of the
// filesystems `catalog` manages. Throws Error(System) when the checks did not
// run.
[[nodiscard]] std::vector<Finding> diagnosisFrom(const MountScan* scan, Microseconds waited,
                                                 const FilesystemCatalog& catalog,
                                                 const State& state);

// Reads the mount table, probes devices, walks block stacks, samples free
// space and runs the doctor's checks on a thread of its own, so that a hung
// device (dead multipath, NBD, a stalled virtual disk) blocks that thread and
// never the bus or SIGTERM. Devices keep their names and stacks between scans
// while they stay mounted (DeviceNameCache, StackCache): a mount event reads
// only what is new. Requests made while a scan runs are merged into one more
// scan, of the widest scope asked for.
class MountScanner {
public:
    // Each scope includes the ones before it.
    enum class Scope {
        // Free space of the mount points requestSamples() names, with the
        // write counters it gives (CheckInterval, where something was written)
        Samples,
        Mounts,    // the mount table changed: new devices are read, known ones reused
        Verdicts,  // also walk every stack again (layers change under mounts)
        Diagnosis, // also run the doctor's checks (MountScan::findings)
    };

    // `onScan` runs on the loop thread with each finished scan.
    MountScanner(EventLoop& loop, SystemPaths paths, std::function<void(MountScan)> onScan);
    // Does not wait for a scan stuck on a hung device: the thread is left
    // to end on its own (it touches nothing of this object).
    ~MountScanner();
    MountScanner(const MountScanner&) = delete;
    MountScanner& operator=(const MountScanner&) = delete;

    void setOptions(const InventoryOptions& options);
    // Returns the request's number: the first scan whose `answers` is at
    // least that began after it, with at least `scope`.
    std::uint64_t request(Scope scope);
    // request(Scope::Samples) of `written`'s mount points: statvfs of each,
    // its sample carrying the counter given.
    std::uint64_t requestSamples(WriteCounters written);
    // For the start: the result of a scan requested now, if it ends within
    // `timeout` (it is then not passed to onScan).
    [[nodiscard]] std::optional<MountScan> scanAndWait(std::chrono::milliseconds timeout);

    // What the scanning thread and this object share (mount_watch.cpp).
    struct Shared;

private:
    void onReadable();

    EventLoop& loop_;
    std::function<void(MountScan)> onScan_;
    std::shared_ptr<Shared> shared_;
};

} // namespace thintrim::daemon
