// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "authorizer.h"
#include "bus_objects.h"
#include "catalog.h"
#include "config.h"
#include "engine.h"
#include "event_loop.h"
#include "mount_watch.h"
#include "receipts.h"
#include "schedule.h"
#include "sleep_inhibitor.h"
#include "state.h"
#include "trim_policies.h"
#include "trim_worker.h"
#include "verify_worker.h"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace thintrim::daemon {

struct DaemonOptions {
    ConfigPaths configPaths;
    std::filesystem::path stateDir;
    SystemPaths systemPaths;
};

// thintrimd: publishes the managed filesystems on the bus, feeds the trim
// engine (src/core/engine.h) with bus calls, timers, signals and the worker's
// FITRIM results, keeps the schedule, and publishes what the engine changed.
// Everything here runs on the loop thread.
class Daemon final : private Controller,
                     private EngineEvents,
                     private MountResolver,
                     private EngineClock {
public:
    // `config` was loaded by the caller (an invalid one never gets here).
    Daemon(DaemonOptions options, Config config, sdbus::IConnection& bus);
    ~Daemon() override;
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Publishes the objects, takes the bus name, tells systemd READY=1 and
    // dispatches until SIGTERM/SIGINT; returns the exit code.
    int run();

private:
    // Controller: what the bus objects call.
    void queueTrim(const std::vector<std::string>& mountPoints, const TrimRequestOptions& options,
                   LaterReply<std::uint64_t> reply) override;
    void cancelJob(std::uint64_t job) override;
    void suspend() override;
    void resume() override;
    void reload() override;
    std::string filesystemObjectPath(const std::string& mountPoint) override;
    void diagnose(LaterReply<std::vector<Finding>> reply) override;
    void verify(const std::vector<std::string>& mountPoints,
                LaterReply<VerifyOutcomes> reply) override;
    void onVerifyDone();
    // queueTrim() once the verdicts are fresh: resolves and queues, or throws.
    [[nodiscard]] std::uint64_t enqueueTrim(const std::vector<std::string>& mountPoints,
                                            const TrimRequestOptions& options);
    [[nodiscard]] std::vector<VerifyTarget>
    verifyTargets(const std::vector<std::string>& mountPoints) const;
    // diagnose()'s answer from the scan that ran the checks (nullptr: none
    // came in time); throws when there is none.
    [[nodiscard]] std::vector<Finding> diagnosis(const MountScan* scan) const;

    // The base is private (nobody else drives the daemon); the bus objects
    // get it from here.
    Controller& asController() { return *this; }

    // The managed filesystem at `mountPoint`: in the mount table, managed by
    // the inventory and not left out by [Filesystems]; nullptr otherwise.
    [[nodiscard]] const CatalogEntry* managedEntry(std::string_view mountPoint) const;
    // The inventory already leaves out what [Filesystems] excludes; asking
    // the configuration again covers the time between a reload and the scan
    // it requests, so that a newly excluded filesystem goes at once.
    [[nodiscard]] bool isManagedHere(const CatalogEntry& entry) const;

    // EngineEvents: what the engine tells the daemon.
    void jobStarted(std::uint64_t jobId, const std::vector<std::string>& mountPoints) override;
    void filesystemStarting(std::uint64_t jobId, const Mount& mount) override;
    void filesystemFinished(FilesystemReport& report) override;
    void jobFinished(const JobSummary& summary) override;
    void changed() override;
    void wakeAt(std::optional<Microseconds> sinceBoot) override;
    void save(const State& state) override;
    void stopped() override;
    void note(std::string_view mountPoint, const std::string& message) override;
    // MountResolver
    Resolution resolve(const std::string& mountPoint) override;
    // EngineClock
    ClockReading now() const override;

    [[nodiscard]] static State loadState(const StateStore& store);
    [[nodiscard]] EngineOptions engineOptions() const;
    // Applies [Trim] Pacing= and [Schedule] Window= to the policies.
    void configurePolicies();
    [[nodiscard]] const CatalogEntry* stackEntry(const Mount& mount) const;
    void onWorkerEvents();

    // Asks the scanner for a new reading of the mount table (applyScan()
    // takes it) and brings the objects in line with the configuration now.
    void rebuildCatalog();
    // Takes a finished scan: the new catalog and free space; objects are
    // added and removed for the mounts that came and went, and only the
    // objects whose properties changed emit PropertiesChanged.
    void applyScan(MountScan scan);
    // applyScan() of a scan that read the mount table: takes its catalog.
    void applyCatalog(MountScan& scan);
    // Adds and removes Filesystem objects to match the catalog and [Filesystems].
    void syncObjects();
    // Asks the scanner for a scan of `scope` (Verdicts: every stack walked
    // again, as layers change under a mount) and runs `then` on the loop
    // thread once a scan that began after this call has been applied, with
    // that scan (its catalog already taken). Waits at most kFreshScanWait:
    // a scan stuck on a hung device, or the daemon stopping, runs `then`
    // with nullptr, and the caller goes on with what it has.
    using ScanWaiter = std::function<void(const MountScan* scan)>;
    void afterFreshScan(MountScanner::Scope scope, ScanWaiter then);
    // Runs and forgets the waiters `due` picks, with `scan`.
    void
    answerScanWaiters(const std::function<bool(std::uint64_t request, Microseconds deadline)>& due,
                      const MountScan* scan);
    // State::observeMounts over the mount table just read; saves when a
    // history moved or was forgotten.
    void forgetUnseenFilesystems();
    // Asks the scanner for fresh free space (statvfs runs off the loop thread).
    void sampleFreeSpace();
    // The visible catalog entry at `mountPoint` (exact, as the catalog spells it).
    [[nodiscard]] const CatalogEntry* visibleEntry(std::string_view mountPoint) const;
    void reschedule();
    void onScheduleTimer();
    void shutdown();

    void writeMetrics();
    void publish();
    [[nodiscard]] FilesystemProperties filesystemProperties(const CatalogEntry& entry) const;
    void notifyStatus(const std::optional<Engine::Current>& current);

    // First: blocks SIGTERM, SIGINT and SIGHUP before any thread starts, so
    // that they arrive here and never end a thread by their default action.
    UniqueFd signalFd_;
    DaemonOptions options_;
    Config config_;
    StateStore store_;
    sdbus::IConnection& bus_;
    sd_id128_t machineKey_{};

    EventLoop loop_;
    Authorizer authorizer_;
    TrimWorker worker_;
    // Jobs the schedule queued: windows and busy storage hold back only these.
    std::set<std::uint64_t> scheduledJobs_;
    // The engine's gentle policies (trim_policies.h); they outlive it.
    PacingPolicy pacing_;
    WindowPolicy window_;
    StorageHealthPolicy storageHealth_;
    Engine engine_;
    VerifyWorker verifier_;
    std::map<std::uint64_t, LaterReply<VerifyOutcomes>> verifyReplies_; // by VerifyWorker request
    // The receipt of the filesystem being trimmed (filesystemStarting() to
    // filesystemFinished()).
    std::optional<ReceiptMeter> receipt_;
    std::vector<CatalogEntry> catalog_;
    // Index into catalog_ of the visible mount at each mount point.
    std::map<std::string_view, std::size_t> visible_;
    std::map<std::string, FreeSpace, std::less<>> freeSpace_; // by mount point
    // btrfs discard=async backlogs of the last scan, by mount point.
    std::map<std::string, BtrfsAsyncDiscard, std::less<>> asyncDiscard_;
    struct PendingScanWaiter {
        std::uint64_t request = 0; // MountScanner::request()'s number
        Microseconds deadline{0};  // CLOCK_BOOTTIME
        ScanWaiter then;
    };
    std::vector<PendingScanWaiter> scanWaiters_;
    // Trimmed since the last scan: their samples are older than the trim.
    std::set<std::string, std::less<>> staleFreeSpace_;
    std::map<std::string, Microseconds, std::less<>> nextTrim_;
    // When this run first saw each filesystem eligible (schedule.h: seenSince).
    std::map<std::string, Microseconds, std::less<>> firstSeen_;

    bool ready_ = false; // the bus name is ours: jobs may start
    bool shuttingDown_ = false;

    // Declared after what their handlers use; destroyed first.
    std::unique_ptr<ManagerObject> manager_;
    std::map<std::string, std::unique_ptr<FilesystemObject>, std::less<>> filesystems_;
    std::unique_ptr<MountScanner> scanner_;
    std::unique_ptr<MountWatch> mountWatch_;
    std::unique_ptr<SleepInhibitor> sleepInhibitor_;
    Timer scheduleTimer_;
    Timer engineTimer_; // CLOCK_BOOTTIME: the engine's waits (rate limit, BootDelay)
    Timer freeSpaceTimer_;
    Timer scanWaitTimer_; // CLOCK_BOOTTIME: the earliest scan waiter's deadline
    Timer watchdogTimer_;
};

} // namespace thintrim::daemon
