// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon.h"

#include "bus_boundary.h"
#include "bus_names.h"
#include "diagnose.h"
#include "error.h"
#include "job_options.h"
#include "log.h"
#include "metrics.h"
#include "outcome_log.h"
#include "published_properties.h"
#include "sdbus_compat.h"
#include "target_resolution.h"

#include <algorithm>
#include <cerrno>
#include <chrono>

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

namespace thintrim::daemon {

namespace {

// How long a method waits for the scan it asked for; a scan normally takes
// milliseconds, one stuck on a hung device never ends.
constexpr Microseconds kFreshScanWait = std::chrono::seconds(5);

sd_id128_t machineSplayKey() {
    if (auto key = readMachineSplayKey())
        return *key;
    sd_id128_t key{};
    if (sd_id128_randomize(&key) < 0)
        return key;
    logMessage(LogLevel::Warning, "no usable /etc/machine-id: scheduled trims are spread at "
                                  "random instead of at a stable time per machine");
    return key;
}

} // namespace

Daemon::Daemon(DaemonOptions options, Config config, sdbus::IConnection& bus)
    : options_(std::move(options)), config_(std::move(config)), store_(options_.stateDir),
      bus_(bus), machineKey_(machineSplayKey()), loop_(bus), authorizer_(bus),
      policies_(catalog_, options_.systemPaths),
      engine_({worker_, *this, *this, *this}, loadState(store_), engineOptions()),
      verifier_(options_.systemPaths), receipts_(options_.systemPaths),
      scanWaiters_(kFreshScanWait,
                   [this](std::optional<Microseconds> deadline) {
                       if (deadline)
                           scanWaitTimer_.armAt(*deadline);
                       else
                           scanWaitTimer_.disarm();
                   }),
      scheduleTimer_(
          loop_, CLOCK_REALTIME, [this] { reschedule(); }, "checking the schedule"),
      engineTimer_(
          loop_, CLOCK_BOOTTIME,
          [this] {
              engine_.onWake();
              publish(); // PacingState may have changed
          },
          "pacing a trim"),
      // Every stack is walked again and free space sampled, off the loop
      // thread; applyScan() reschedules with them.
      rewalkTimer_(
          loop_, CLOCK_MONOTONIC, [this] { scanner_->request(MountScanner::Scope::Verdicts); },
          "walking every block stack again"),
      scanWaitTimer_(
          loop_, CLOCK_BOOTTIME,
          [this] {
              logMessage(LogLevel::Warning,
                         fmt::format("reading the block stacks takes longer than {} (a hung "
                                     "device?): answering with the verdicts at hand",
                                     formatDuration(kFreshScanWait)));
              scanWaiters_.expire(readClocks().sinceBoot);
          },
          "answering a call that waited for a scan"),
      watchdogTimer_(
          loop_, CLOCK_MONOTONIC, [] { sd_notify(0, "WATCHDOG=1"); }, "notifying the watchdog") {
    policies_.addTo(engine_);
    policies_.configure(config_);
    catalog_.select(config_.filesystems);
    loop_.watch(
        worker_.eventFd(), [this] { onWorkerEvents(); }, "handling a trim's progress");
    loop_.watch(
        verifier_.eventFd(), [this] { onVerifyDone(); }, "handling a verify's result");
    // After an unexpected failure, what a stop would keep: the job to resume.
    loop_.onHandlerFailure([this] { engine_.saveNow(); });
    signals_.watch(
        loop_,
        [this] {
            try {
                reload();
            } catch (const Error&) {
                // reload() logged why; the old configuration stays.
            }
        },
        [this] { shutdown(); });
}

Daemon::~Daemon() {
    loop_.unwatch(worker_.eventFd());
    loop_.unwatch(verifier_.eventFd());
    signals_.unwatch(loop_);
}

int Daemon::run() {
    manager_ = std::make_unique<ManagerObject>(bus_, asController(), authorizer_);
    sleepInhibitor_ = std::make_unique<SleepInhibitor>(bus_, [this](bool goingToSleep) {
        logMessage(LogLevel::Info, goingToSleep
                                       ? "the system is going to sleep: trims pause at the "
                                         "next chunk boundary"
                                       : "the system woke up: trims continue");
        if (goingToSleep)
            engine_.pauseForSleep();
        else
            engine_.resumeAfterSleep();
    });
    scanner_ = std::make_unique<MountScanner>(
        loop_, options_.systemPaths, [this](MountScan scan) { applyScan(std::move(scan)); });
    scanner_->setOptions(inventoryOptions(config_.filesystems));
    mountWatch_ = std::make_unique<MountWatch>(loop_, options_.systemPaths.mountinfo, [this] {
        scanner_->request(MountScanner::Scope::Mounts);
    });
    // The objects should be there when the name is taken; a device hanging
    // the first scan only delays them.
    if (std::optional<MountScan> scan = scanner_->scanAndWait(std::chrono::seconds(10)))
        applyScan(std::move(*scan));
    else
        logMessage(LogLevel::Warning, "reading the mounts takes longer than 10 s (a hung "
                                      "device?): starting without them; they appear once read");
    rewalkTimer_.armIn(config_.schedule.checkInterval, config_.schedule.checkInterval);
    // Objects first, then the name: a client that sees the name finds them.
    dbus::requestName(bus_, dbus::kBusName);

    std::uint64_t watchdogUsec = 0;
    if (sd_watchdog_enabled(0, &watchdogUsec) > 0)
        watchdogTimer_.armIn(Microseconds(watchdogUsec / 2), Microseconds(watchdogUsec / 2));
    sd_notify(0, "READY=1");
    logEvent(LogLevel::Info, message_id::kDaemonStarted,
             fmt::format("started: {} managed filesystem(s), state in {}", filesystems_.size(),
                         store_.path().string()),
             {});
    // Jobs start only now, so that JobStarted goes out under the bus name.
    ready_ = true;
    engine_.start();
    reschedule();
    return loop_.run();
}

// --- Controller --------------------------------------------------------------

void Daemon::queueTrim(const std::vector<std::string>& mountPoints,
                       const TrimRequestOptions& options, LaterReply<std::uint64_t> reply) {
    // A verdict can be stale (a layer was fixed since the last walk): the
    // caller deserves today's answer.
    afterFreshScan(MountScanner::Scope::Verdicts,
                   [this, mountPoints, options, reply = std::move(reply)](const MountScan*) {
                       reply([&] { return enqueueTrim(mountPoints, options); });
                   });
}

std::uint64_t Daemon::enqueueTrim(const std::vector<std::string>& mountPoints,
                                  const TrimRequestOptions& request) {
    if (shuttingDown_)
        throw Error(ErrorCode::System, "thintrimd is stopping; try again when it is back");
    // Resolve everything first: one bad mount point queues nothing.
    const std::uint64_t id =
        engine_.enqueue(trimTargets(catalog_, mountPoints),
                        jobOptionsFor(config_.trim, {request.dryRun, request.minimumExtent,
                                                     request.rateLimit, request.chunkSize}));
    // After the reply: the caller learns its job id before JobStarted.
    loop_.defer([this] { engine_.kick(); });
    return id;
}

void Daemon::cancelJob(std::uint64_t id) {
    engine_.cancel(id);
}

void Daemon::suspend() {
    if (engine_.state().suspended)
        return;
    engine_.suspend();
    const std::optional<Engine::Current> current = engine_.current();
    logEvent(LogLevel::Notice, message_id::kSuspended,
             current ? fmt::format("suspended; {} stops at the next chunk boundary",
                                   current->mount.mountPoint)
                     : std::string("suspended"),
             {});
    reschedule();
}

void Daemon::resume() {
    if (!engine_.state().suspended)
        return;
    engine_.resume();
    logEvent(LogLevel::Notice, message_id::kResumed, "resumed", {});
    reschedule();
}

void Daemon::reload() {
    Config next;
    try {
        next = loadConfig(options_.configPaths);
    } catch (const Error& e) {
        logEvent(
            LogLevel::Error, message_id::kConfigRejected,
            fmt::format("configuration not reloaded, the old one stays in force: {}", e.what()),
            {});
        throw;
    }
    config_ = std::move(next);
    catalog_.select(config_.filesystems);
    engine_.setOptions(engineOptions());
    policies_.configure(config_);
    engine_.kick();
    rewalkTimer_.armIn(config_.schedule.checkInterval, config_.schedule.checkInterval);
    logEvent(LogLevel::Info, message_id::kConfigReloaded, "configuration reloaded", {});
    // [Filesystems] may have changed which filesystems are managed.
    rebuildCatalog();
}

std::string Daemon::filesystemObjectPath(const std::string& mountPoint) {
    return dbus::filesystemObjectPath(requireManaged(catalog_, mountPoint).mount.mountPoint);
}

void Daemon::diagnose(LaterReply<std::vector<Finding>> reply) {
    afterFreshScan(MountScanner::Scope::Diagnosis,
                   [this, reply = std::move(reply)](const MountScan* scan) {
                       reply([&] { return diagnosis(scan); });
                   });
}

std::vector<Finding> Daemon::diagnosis(const MountScan* scan) const {
    if (scan == nullptr)
        throw Error(ErrorCode::System,
                    fmt::format("the diagnosis reads every block stack afresh, and that did not "
                                "end within {}: a device does not answer (see thintrimd's log), "
                                "or thintrimd is stopping",
                                formatDuration(kFreshScanWait)));
    if (!scan->findings)
        throw Error(ErrorCode::System,
                    fmt::format("cannot read the mount table: {}",
                                scan->error.value_or("the diagnosis did not run")));
    std::vector<Finding> findings = *scan->findings;
    std::vector<CatalogEntry> managed;
    for (const CatalogEntry* entry : catalog_.managedEntries())
        managed.push_back(*entry);
    for (Finding& finding : proofFindings(managed, &engine_.state()))
        findings.push_back(std::move(finding));
    return findings;
}

void Daemon::verify(const std::vector<std::string>& mountPoints, LaterReply<VerifyOutcomes> reply) {
    afterFreshScan(MountScanner::Scope::Verdicts, [this, mountPoints,
                                                   reply = std::move(reply)](const MountScan*) {
        try {
            if (shuttingDown_)
                throw Error(ErrorCode::System, "thintrimd is stopping; try again when it is back");
            std::vector<VerifyTarget> targets;
            for (const CatalogEntry* entry : verifyTargets(catalog_, mountPoints))
                targets.push_back({entry->mount, entry->stack});
            verifyReplies_.emplace(verifier_.start(std::move(targets)), reply);
        } catch (...) {
            reply([]() -> VerifyOutcomes { throw; });
        }
    });
}

void Daemon::onVerifyDone() {
    for (VerifyDone& done : verifier_.takeDone()) {
        VerifyOutcomes outcomes;
        for (VerifyOutcome& outcome : done.outcomes) {
            const std::string& mountPoint = outcome.mount.mountPoint;
            engine_.recordVerify(outcome.mount, now().realtime, outcome.report);
            logFilesystemVerified(mountPoint, outcome.report);
            outcomes.emplace_back(mountPoint, std::move(outcome.report));
        }
        engine_.saveNow();
        publish();
        auto reply = verifyReplies_.find(done.request);
        if (reply != verifyReplies_.end()) {
            reply->second([&] { return outcomes; });
            verifyReplies_.erase(reply);
        }
    }
}

// --- the engine's events -----------------------------------------------------------

State Daemon::loadState(const StateStore& store) {
    StateStore::Loaded loaded = store.load();
    if (loaded.warning)
        logEvent(LogLevel::Warning, message_id::kStateReset,
                 fmt::format("{}; starting with an empty history", *loaded.warning),
                 {{"STATE_FILE", store.path().string()}});
    return std::move(loaded.state);
}

EngineOptions Daemon::engineOptions() const {
    EngineOptions options;
    options.bootDelay = config_.schedule.bootDelay;
    return options;
}

ClockReading Daemon::now() const {
    return readClocks();
}

Resolution Daemon::resolve(const std::string& mountPoint) {
    return resolveForTrim(catalog_, mountPoint);
}

void Daemon::onWorkerEvents() {
    for (WorkerEvent& event : worker_.takeEvents()) {
        if (auto* prepared = std::get_if<PreparedEvent>(&event))
            engine_.onPrepared(std::move(prepared->result));
        else
            engine_.onChunkDone(std::get<ChunkDoneEvent>(event).result);
    }
}

void Daemon::jobStarted(std::uint64_t jobId, const std::vector<std::string>& mountPoints) {
    manager_->emitJobStarted(jobId, forBus(mountPoints));
}

void Daemon::filesystemStarting(std::uint64_t /*jobId*/, const Mount& mount) {
    const CatalogEntry* entry = catalog_.managed(mount.mountPoint);
    receipts_.starting(entry != nullptr ? entry->stack.get() : nullptr);
}

void Daemon::filesystemFinished(FilesystemReport& filesystem) {
    TrimReport& report = filesystem.trim;
    const std::string& mountPoint = filesystem.mountPoint;
    if (receipts_.finished(filesystem))
        engine_.recordReceipt(filesystem);
    const std::string result{trimOutcomeName(report.outcome)};
    manager_->emitFilesystemTrimmed(filesystem.jobId, forBus(mountPoint), report.trimmedBytes,
                                    usec(report.duration), result, forBus(report.message));
    logFilesystemTrimmed(filesystem);
    if (filesystem.recorded)
        writeMetrics();
    // Outside the engine's call: the schedule may queue a job.
    // The last sample predates the trim (and whatever was written before
    // it): the schedule must not judge freed space by it until the scan
    // that sampleFreeSpace() asks for has landed.
    loop_.defer([this, mountPoint] {
        catalog_.markFreeSpaceStale(mountPoint);
        sampleFreeSpace();
        reschedule();
    });
}

void Daemon::jobFinished(const JobSummary& summary) {
    policies_.finished(summary.id);
    const std::string result{jobResultName(summary.result)};
    manager_->emitJobFinished(summary.id, result, summary.trimmedBytes);
    logJobFinished(summary);
    loop_.defer([this] { reschedule(); });
}

void Daemon::changed() {
    publish();
    // A sleep waits while a filesystem is being trimmed; after
    // PrepareForSleep the engine stops at its chunk boundary, and the lock goes.
    if (sleepInhibitor_)
        sleepInhibitor_->want(engine_.current().has_value());
}

void Daemon::wakeAt(std::optional<Microseconds> sinceBoot) {
    if (sinceBoot)
        engineTimer_.armAt(*sinceBoot);
    else
        engineTimer_.disarm();
}

void Daemon::save(const State& state) {
    try {
        store_.save(state);
    } catch (const Error& e) {
        // History is worth keeping, not worth stopping for.
        logMessage(LogLevel::Error, fmt::format("cannot save the state: {}", e.what()));
    }
}

void Daemon::stopped() {
    loop_.quit(0);
}

void Daemon::note(std::string_view mountPoint, const std::string& message) {
    logMessage(LogLevel::Info, fmt::format("{}: {}", mountPoint, message));
}

// --- mounts, free space, schedule -------------------------------------------

void Daemon::rebuildCatalog() {
    scanner_->setOptions(inventoryOptions(config_.filesystems));
    scanner_->request(MountScanner::Scope::Mounts);
    syncObjects();
    reschedule();
}

void Daemon::applyScan(MountScan scan) {
    if (scan.error)
        logMessage(
            LogLevel::Warning,
            fmt::format("cannot read the mount table, keeping the last one: {}", *scan.error));
    else
        applyCatalog(scan);
    scanWaiters_.answer(scan.answers, scan);
}

void Daemon::applyCatalog(MountScan& scan) {
    catalog_.replace(std::move(scan.catalog), std::move(scan.freeSpace),
                     std::move(scan.asyncDiscard));
    // The filesystem being trimmed went away (or something else is mounted
    // there now): FITRIM would go on on a detached filesystem, so stop it.
    if (const std::optional<Engine::Current> current = engine_.current()) {
        const CatalogEntry* entry = catalog_.visible(current->mount.mountPoint);
        if (entry == nullptr || entry->mount.mountDevice != current->mount.mountDevice)
            engine_.mountGone(current->mount.mountPoint);
    }
    forgetUnseenFilesystems();
    syncObjects();
    reschedule();
}

void Daemon::syncObjects() {
    const std::set<std::string_view> present = catalog_.managedMountPoints();
    for (auto it = filesystems_.begin(); it != filesystems_.end();) {
        if (present.contains(it->first)) {
            ++it;
        } else {
            logMessage(LogLevel::Info, fmt::format("{} is no longer managed", it->first));
            it = filesystems_.erase(it); // InterfacesRemoved
        }
    }
    for (std::string_view mountPoint : present) {
        if (filesystems_.contains(mountPoint))
            continue;
        const CatalogEntry& entry = *catalog_.visible(mountPoint);
        filesystems_.emplace(std::string(mountPoint),
                             std::make_unique<FilesystemObject>(
                                 bus_, asController(), authorizer_,
                                 filesystemProperties(entry, catalog_, engine_.state(), plan_)));
        logMessage(LogLevel::Info,
                   fmt::format("managing {} ({} on {}): {}", mountPoint, entry.mount.fsType,
                               entry.mount.source,
                               entry.eligible() ? "eligible" : "not eligible: " + entry.reason()));
    }
}

void Daemon::forgetUnseenFilesystems() {
    std::vector<const Mount*> mounted;
    for (const CatalogEntry& entry : catalog_.entries())
        mounted.push_back(&entry.mount);
    const State::Observed observed = engine_.observeMounts(mounted, readClocks().realtime,
                                                           config_.schedule.effectiveForgetAfter());
    for (const std::string& forgotten : observed.forgotten)
        logMessage(LogLevel::Info,
                   fmt::format("forgot {}: not mounted for longer than ForgetAfter={}", forgotten,
                               formatDuration(config_.schedule.effectiveForgetAfter())));
    if (observed.changed) {
        save(engine_.state());
        writeMetrics();
    }
}

void Daemon::afterFreshScan(MountScanner::Scope scope, ScanWaiters<MountScan>::Then then) {
    scanWaiters_.add(scanner_->request(scope), readClocks().sinceBoot, std::move(then));
}

void Daemon::sampleFreeSpace() {
    scanner_->request(MountScanner::Scope::Mounts);
}

void Daemon::reschedule() {
    if (!ready_)
        return;
    const ClockReading now = readClocks();
    const std::vector<ScheduledFilesystem> eligible =
        scheduleInputs_.eligible(catalog_, engine_.state(), now.realtime);
    std::set<std::string> queued;
    for (std::string& mountPoint : engine_.pendingMountPoints())
        queued.insert(std::move(mountPoint));
    plan_ = planSchedule(
        {config_.schedule, machineKey_, eligible, engine_.state().suspended, queued, now});
    if (plan_.wakeAt)
        scheduleTimer_.armAt(*plan_.wakeAt);
    else
        scheduleTimer_.disarm();

    if (!plan_.toQueue.empty() && !shuttingDown_) {
        std::vector<std::string> mountPoints;
        for (const DueFilesystem& due : plan_.toQueue) {
            logMessage(LogLevel::Info,
                       fmt::format("{} is due ({})", due.mountPoint, dueReasonName(due.reason)));
            mountPoints.push_back(due.mountPoint);
        }
        try {
            policies_.scheduled(
                engine_.enqueue(std::move(mountPoints), jobOptionsFor(config_.trim)));
            engine_.kick();
        } catch (const Error& e) {
            logMessage(LogLevel::Warning, fmt::format("scheduled trim not queued: {}", e.what()));
        }
    }
    publish();
}

// --- stopping ----------------------------------------------------------------

void Daemon::shutdown() {
    if (shuttingDown_)
        return;
    shuttingDown_ = true;
    sd_notify(0, "STOPPING=1");
    logEvent(LogLevel::Info, message_id::kDaemonStopping, "stopping", {});
    // No call waits for a scan the stop would leave unanswered.
    scanWaiters_.abandonAll();
    // The engine ends the chunk in flight, saves, then stopped() quits.
    engine_.shutdown();
}

// --- publishing ----------------------------------------------------------------

void Daemon::writeMetrics() {
    if (config_.metrics.metricsFile.empty())
        return;
    try {
        DiscardBacklog backlog;
        for (const CatalogEntry* entry : catalog_.managedEntries()) {
            if (auto async = catalog_.asyncDiscard(entry->mount.mountPoint);
                async && async->backlogBytes)
                backlog[entry->mount.identity()] = *async->backlogBytes;
        }
        writeMetricsFile(config_.metrics.metricsFile, engine_.state(), backlog);
    } catch (const Error& e) {
        logMessage(LogLevel::Warning, fmt::format("cannot write the metrics file: {}", e.what()));
    }
}

void Daemon::publish() {
    if (!manager_)
        return;
    manager_->publish(managerProperties(engine_, config_, plan_, policies_.pacingStatus()));
    // Each object emits PropertiesChanged only for what differs.
    for (const auto& [mountPoint, object] : filesystems_) {
        if (const CatalogEntry* entry = catalog_.visible(mountPoint))
            object->publish(filesystemProperties(*entry, catalog_, engine_.state(), plan_));
    }
    sd_notify(0,
              ("STATUS=" + statusLine(engine_, manager_->properties().nextScheduledTrim)).c_str());
}

} // namespace thintrim::daemon
