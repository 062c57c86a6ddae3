// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon.h"

#include "base/error.h"
#include "bus_boundary.h"
#include "bus_names.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "published_properties.h"
#include "sdbus_compat.h"
#include "service/job_options.h"
#include "service/target_resolution.h"

#include <chrono>

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

namespace thintrim::daemon {

namespace {

// How long a method waits for the scan it asked for; a scan normally takes
// milliseconds, one stuck on a hung device never ends.
constexpr Microseconds kFreshScanWait = std::chrono::seconds(5);
// Layers change under mounts without a mount event (a crypttab fix, a
// discard_max_bytes written): every stack is walked again this often.
constexpr Microseconds kRewalkInterval = std::chrono::minutes(15);

} // namespace

Daemon::Daemon(DaemonOptions options, Config config, sdbus::IConnection& bus)
    : options_(std::move(options)), config_(std::move(config)), store_(options_.stateDir),
      bus_(bus), machineKey_(machineSplayKey()), loop_(bus), authorizer_(bus),
      policies_(catalog_, options_.systemPaths),
      engine_({worker_, *this, *this, *this}, loadStateOrEmpty(store_), engineOptionsFor(config_)),
      verifier_(options_.systemPaths), receipts_(options_.systemPaths),
      scanWaiters_(kFreshScanWait,
                   [this](std::optional<Microseconds> deadline) {
                       if (deadline)
                           scanWaitTimer_.armAt(*deadline);
                       else
                           scanWaitTimer_.disarm();
                   }),
      filesystems_(bus, asController(), authorizer_),
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
      sampleTimer_(
          loop_, CLOCK_MONOTONIC, [this] { sampleWhereWritten(); },
          "sampling free space where something was written"),
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
        worker_.eventFd(), [this] { worker_.deliverTo(engine_); }, "handling a trim's progress");
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
        logSleep(goingToSleep);
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
    rewalkTimer_.armIn(kRewalkInterval, kRewalkInterval);
    sampleTimer_.armIn(config_.schedule.checkInterval, config_.schedule.checkInterval);
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
        throw Error(ErrorCode::Failed, "thintrimd is stopping; try again when it is back");
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
    logSuspended(engine_.current());
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
        logConfigRejected(e);
        throw;
    }
    config_ = std::move(next);
    catalog_.select(config_.filesystems);
    engine_.setOptions(engineOptionsFor(config_));
    policies_.configure(config_);
    engine_.kick();
    sampleTimer_.armIn(config_.schedule.checkInterval, config_.schedule.checkInterval);
    logEvent(LogLevel::Info, message_id::kConfigReloaded, "configuration reloaded", {});
    // [Filesystems] may have changed which filesystems are managed.
    rebuildCatalog();
}

std::string Daemon::filesystemObjectPath(const std::string& mountPoint) {
    return dbus::filesystemObjectPath(requireManaged(catalog_, mountPoint).mount.mountPoint);
}

void Daemon::diagnose(LaterReply<std::vector<Finding>> reply) {
    afterFreshScan(
        MountScanner::Scope::Diagnosis, [this, reply = std::move(reply)](const MountScan* scan) {
            reply([&] { return diagnosisFrom(scan, kFreshScanWait, catalog_, engine_.state()); });
        });
}

void Daemon::verify(const std::vector<std::string>& mountPoints, LaterReply<VerifyOutcomes> reply) {
    afterFreshScan(MountScanner::Scope::Verdicts, [this, mountPoints,
                                                   reply = std::move(reply)](const MountScan*) {
        try {
            if (shuttingDown_)
                throw Error(ErrorCode::Failed, "thintrimd is stopping; try again when it is back");
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

ClockReading Daemon::now() const {
    return readClocks();
}

Resolution Daemon::resolve(const std::string& mountPoint) {
    return resolveForTrim(catalog_, mountPoint);
}

void Daemon::jobStarted(std::uint64_t jobId, const std::vector<std::string>& mountPoints) {
    manager_->emitJobStarted(jobId, forBus(mountPoints));
}

void Daemon::filesystemStarting(std::uint64_t /*jobId*/, const Mount& mount) {
    const CatalogEntry* entry = catalog_.managed(mount.mountPoint);
    receipts_.starting(entry != nullptr ? entry->stack.get() : nullptr);
    catalog_.trimStarting(mount);
}

void Daemon::filesystemFinished(FilesystemReport& filesystem) {
    const TrimReport& report = filesystem.trim;
    const std::string& mountPoint = filesystem.mountPoint;
    if (filesystem.mount)
        catalog_.trimEnded(*filesystem.mount, filesystem.recorded && completedTrim(report.outcome));
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
    // it): the schedule must not judge freed space by it until a new scan
    // (statvfs off the loop thread) has landed.
    loop_.defer([this, mountPoint] {
        catalog_.markFreeSpaceStale(mountPoint);
        scanner_->request(MountScanner::Scope::Mounts);
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
    filesystems_.sync(catalog_, [this](const CatalogEntry& entry) { return propertiesOf(entry); });
    reschedule();
}

void Daemon::applyScan(MountScan scan) {
    if (scan.error)
        logMessage(
            LogLevel::Warning,
            fmt::format("cannot read the mount table, keeping the last one: {}", *scan.error));
    else if (scan.samplesOnly)
        applySamples(scan);
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
        if (!catalog_.stillMounted(current->mount))
            engine_.mountGone(current->mount.mountPoint);
    }
    forgetUnseenFilesystems();
    filesystems_.sync(catalog_, [this](const CatalogEntry& entry) { return propertiesOf(entry); });
    writeMetrics(); // with the new free space: thintrim_freed_since_last_trim_bytes
    reschedule();
}

void Daemon::sampleWhereWritten() {
    // /proc/diskstats is read here, on the loop thread (it waits for no
    // device): an idle machine wakes the daemon once per CheckInterval, and
    // the scanning thread, which runs statvfs, only where something was
    // written.
    const std::optional<Diskstats> diskstats = readDiskstats(options_.systemPaths.diskstats);
    if (!diskstats)
        return;
    if (WriteCounters written = catalog_.writtenSinceSampled(*diskstats); !written.empty())
        scanner_->requestSamples(std::move(written));
}

void Daemon::applySamples(MountScan& scan) {
    if (scan.freeSpace.empty())
        return; // nothing was written: nothing changed
    catalog_.updateFreeSpace(std::move(scan.freeSpace));
    // At most once per CheckInterval, and only when something was written.
    writeMetrics();
    reschedule();
}

void Daemon::forgetUnseenFilesystems() {
    const State::Observed observed = engine_.observeMounts(catalog_.mounts(), readClocks().realtime,
                                                           config_.schedule.effectiveForgetAfter());
    logForgotten(observed.forgotten, config_.schedule.effectiveForgetAfter());
    if (observed.changed) {
        save(engine_.state());
        writeMetrics();
    }
}

void Daemon::afterFreshScan(MountScanner::Scope scope, ScanWaiters<MountScan>::Then then) {
    scanWaiters_.add(scanner_->request(scope), readClocks().sinceBoot, std::move(then));
}

void Daemon::reschedule() {
    if (!ready_)
        return;
    plan_ = scheduleInputs_.plan(config_.schedule, machineKey_, catalog_, engine_, readClocks());
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
        writeMetricsFile(config_.metrics.metricsFile, engine_.state(),
                         catalog_.asyncDiscardBacklogs(),
                         freedSinceLastTrimByIdentity(catalog_, engine_.state()));
    } catch (const Error& e) {
        logMessage(LogLevel::Warning, fmt::format("cannot write the metrics file: {}", e.what()));
    }
}

FilesystemProperties Daemon::propertiesOf(const CatalogEntry& entry) const {
    return filesystemProperties(entry, catalog_, engine_.state(), plan_);
}

void Daemon::publish() {
    if (!manager_)
        return;
    manager_->publish(managerProperties(engine_, config_, plan_, policies_.pacingStatus()));
    filesystems_.publish(catalog_,
                         [this](const CatalogEntry& entry) { return propertiesOf(entry); });
    sd_notify(0,
              ("STATUS=" + statusLine(engine_, manager_->properties().nextScheduledTrim)).c_str());
}

} // namespace thintrim::daemon
