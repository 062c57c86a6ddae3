// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "authorizer.h"
#include "bus_objects.h"
#include "config/config.h"
#include "discovery/filesystem_catalog.h"
#include "engine/engine.h"
#include "event_loop.h"
#include "filesystem_objects.h"
#include "mount_watch.h"
#include "service/gentle_policies.h"
#include "service/receipt_tracker.h"
#include "service/scan_waiters.h"
#include "service/schedule_plan.h"
#include "sleep_inhibitor.h"
#include "state/state.h"
#include "termination_signals.h"
#include "trim_worker.h"
#include "verify_worker.h"

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace thintrim::daemon {

struct DaemonOptions {
    ConfigPaths configPaths;
    std::filesystem::path stateDir;
    SystemPaths systemPaths;
};

// thintrimd: publishes the managed filesystems on the bus, feeds the trim
// engine (src/core/engine/engine.h) with bus calls, timers, signals and the worker's
// FITRIM results, keeps the schedule, and publishes what the engine changed.
// Everything here runs on the loop thread. The decisions are the core's (the
// catalog, target resolution, job options, scan waiters, receipts, schedule
// plan and gentle policies); this class wires them to the loop, the bus, the
// workers and the timers.
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

    // The base is private (nobody else drives the daemon); the bus objects
    // get it from here.
    Controller& asController() { return *this; }

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

    // Asks the scanner for a new reading of the mount table (applyScan()
    // takes it) and brings the objects in line with the configuration now.
    void rebuildCatalog();
    // Takes a finished scan: the new catalog and free space; objects are
    // added and removed for the mounts that came and went, and only the
    // objects whose properties changed emit PropertiesChanged.
    void applyScan(MountScan scan);
    // applyScan() of a scan that read the mount table: takes its catalog.
    void applyCatalog(MountScan& scan);
    // applyScan() of Scope::Samples: new free space of what was written to.
    void applySamples(MountScan& scan);
    // Every CheckInterval: a Scope::Samples scan when a managed
    // filesystem's devices wrote since its last sample.
    void sampleWhereWritten();
    // Asks the scanner for a scan of `scope` (Verdicts: every stack walked
    // again, as layers change under a mount) and runs `then` on the loop
    // thread once a scan that began after this call has been applied, with
    // that scan (its catalog already taken). Waits at most kFreshScanWait:
    // a scan stuck on a hung device, or the daemon stopping, runs `then`
    // with nullptr, and the caller goes on with what it has.
    void afterFreshScan(MountScanner::Scope scope, ScanWaiters<MountScan>::Then then);
    // State::observeMounts over the mount table just read; saves when a
    // history moved or was forgotten.
    void forgetUnseenFilesystems();
    void reschedule();
    void shutdown();

    void writeMetrics();
    // Publishes the properties (published_properties.h) and STATUS=.
    void publish();
    [[nodiscard]] FilesystemProperties propertiesOf(const CatalogEntry& entry) const;

    // First: blocks SIGTERM, SIGINT and SIGHUP before any thread starts.
    TerminationSignals signals_;
    DaemonOptions options_;
    Config config_;
    StateStore store_;
    sdbus::IConnection& bus_;
    sd_id128_t machineKey_{};

    EventLoop loop_;
    Authorizer authorizer_;
    TrimWorker worker_;
    FilesystemCatalog catalog_;
    // The engine's gentle policies; they outlive it.
    GentlePolicies policies_;
    Engine engine_;
    VerifyWorker verifier_;
    std::map<std::uint64_t, LaterReply<VerifyOutcomes>> verifyReplies_; // by VerifyWorker request
    ReceiptTracker receipts_;
    ScanWaiters<MountScan> scanWaiters_;
    ScheduleInputs scheduleInputs_;
    SchedulePlan plan_; // the last one: NextScheduledTrim

    bool ready_ = false; // the bus name is ours: jobs may start
    bool shuttingDown_ = false;

    // Declared after what their handlers use; destroyed first.
    std::unique_ptr<ManagerObject> manager_;
    FilesystemObjects filesystems_;
    std::unique_ptr<MountScanner> scanner_;
    std::unique_ptr<MountWatch> mountWatch_;
    std::unique_ptr<SleepInhibitor> sleepInhibitor_;
    Timer scheduleTimer_;
    Timer engineTimer_;   // CLOCK_BOOTTIME: the engine's waits (rate limit, BootDelay)
    Timer rewalkTimer_;   // every kRewalkInterval: every stack walked again, free space sampled
    Timer sampleTimer_;   // every CheckInterval: free space of what was written to
    Timer scanWaitTimer_; // CLOCK_BOOTTIME: the earliest scan waiter's deadline
    Timer watchdogTimer_;
};

} // namespace thintrim::daemon
