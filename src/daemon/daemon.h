// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "authorizer.h"
#include "bus_objects.h"
#include "catalog.h"
#include "config.h"
#include "event_loop.h"
#include "mount_watch.h"
#include "schedule.h"
#include "state.h"
#include "trim_worker.h"

#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace thintrim::daemon {

struct DaemonOptions {
    ConfigPaths configPaths;
    std::filesystem::path stateDir;
    SystemPaths systemPaths;
};

// thintrimd: publishes the managed filesystems on the bus, queues trim jobs
// and runs them one filesystem at a time on the worker thread, keeps the
// schedule, and persists history. Everything here runs on the loop thread.
class Daemon final : private Controller {
public:
    // `config` was loaded by the caller (an invalid one never gets here).
    Daemon(DaemonOptions options, Config config, sdbus::IConnection& bus);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Publishes the objects, takes the bus name, tells systemd READY=1 and
    // dispatches until SIGTERM/SIGINT; returns the exit code.
    int run();

private:
    // A queued trim job. The front of the queue is the current one.
    struct Job {
        std::uint64_t id = 0;
        std::vector<std::string> mountPoints; // all of them, for JobStarted
        std::size_t next = 0;                 // index of the next to trim
        JobOptions options;
        bool started = false;
        bool cancelled = false;
        Microseconds startedAt{0};
        std::uint64_t trimmedBytes = 0;
        unsigned attempted = 0;
        unsigned failed = 0;
    };

    // Why the loop thread asked the worker to stop.
    enum class StopReason { None, Cancel, Suspend, Shutdown, Unmounted };

    struct RunningTrim {
        std::uint64_t jobId = 0;
        Mount mount;
        Microseconds started{0};
        StopReason stop = StopReason::None;
        TrimProgress progress;
    };

    // Controller: what the bus objects call.
    std::uint64_t queueTrim(const std::vector<std::string>& mountPoints,
                            const TrimRequestOptions& options) override;
    void cancelJob(std::uint64_t job) override;
    void suspend() override;
    void resume() override;
    void reload() override;
    std::string filesystemObjectPath(const std::string& mountPoint) override;
    std::vector<Finding> diagnose() override;

    // The base is private (nobody else drives the daemon); the bus objects
    // get it from here.
    Controller& asController() { return *this; }

    // The managed filesystem at `mountPoint`: in the mount table, managed by
    // the inventory and not left out by [Filesystems]; nullptr otherwise.
    [[nodiscard]] const CatalogEntry* managedEntry(std::string_view mountPoint) const;
    [[nodiscard]] bool isManagedHere(const CatalogEntry& entry) const;

    std::uint64_t enqueue(std::vector<std::string> mountPoints, JobOptions options);
    // Starts the next filesystem when the worker is free and nothing holds
    // the queue back; finishes jobs with nothing left.
    void pump();
    void onWorkerEvents();
    void onTrimDone(TrimReport report);
    void finishFilesystem(Job& job, const std::string& mountPoint, const TrimReport& report);
    void finishJob(const Job& job);
    void stopRunning(StopReason reason);

    // Asks the scanner for a new reading of the mount table (applyScan()
    // takes it) and brings the objects in line with the configuration now.
    void rebuildCatalog();
    // Takes a finished scan: the new catalog and free space; objects are
    // added and removed for the mounts that came and went, and only the
    // objects whose properties changed emit PropertiesChanged.
    void applyScan(MountScan scan);
    // Adds and removes Filesystem objects to match the catalog and [Filesystems].
    void syncObjects();
    // Re-walks the managed filesystems' block stacks (sysfs only, no device
    // I/O) without touching the set of objects (safe inside a Filesystem
    // method call): verdicts follow layers that change under a mount.
    // Publishes what changed.
    void refreshVerdicts();
    // Asks the scanner for fresh free space (statvfs runs off the loop thread).
    void sampleFreeSpace();
    // The visible catalog entry at `mountPoint` (exact, as the catalog spells it).
    [[nodiscard]] const CatalogEntry* visibleEntry(std::string_view mountPoint) const;
    void reschedule();
    void onScheduleTimer();
    void shutdown();
    void finishShutdown();

    void save();
    void rememberPendingJob();
    void writeMetrics();
    void publish();
    [[nodiscard]] FilesystemProperties filesystemProperties(const CatalogEntry& entry) const;
    void notifyStatus();

    // First: blocks SIGTERM, SIGINT and SIGHUP before any thread starts, so
    // that they arrive here and never end a thread by their default action.
    UniqueFd signalFd_;
    DaemonOptions options_;
    Config config_;
    StateStore store_;
    State state_;
    sdbus::IConnection& bus_;
    sd_id128_t machineKey_{};

    EventLoop loop_;
    Authorizer authorizer_;
    TrimWorker worker_;
    std::vector<CatalogEntry> catalog_;
    // Index into catalog_ of the visible mount at each mount point.
    std::map<std::string_view, std::size_t> visible_;
    std::map<std::string, FreeSpace, std::less<>> freeSpace_; // by mount point
    std::map<std::string, Microseconds, std::less<>> nextTrim_;
    // When this run first saw each filesystem eligible (schedule.h: seenSince).
    std::map<std::string, Microseconds, std::less<>> firstSeen_;

    std::deque<Job> jobs_;
    std::optional<RunningTrim> running_;
    bool ready_ = false; // the bus name is ours: jobs may start
    bool shuttingDown_ = false;

    // Declared after what their handlers use; destroyed first.
    std::unique_ptr<ManagerObject> manager_;
    std::map<std::string, std::unique_ptr<FilesystemObject>, std::less<>> filesystems_;
    std::unique_ptr<MountScanner> scanner_;
    std::unique_ptr<MountWatch> mountWatch_;
    Timer scheduleTimer_;
    Timer freeSpaceTimer_;
    Timer watchdogTimer_;
};

} // namespace thintrim::daemon
