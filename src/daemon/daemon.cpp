// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon.h"

#include "btrfs_discard.h"
#include "bus_boundary.h"
#include "bus_names.h"
#include "diagnose.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "schedule_plan.h"
#include "sdbus_compat.h"
#include "storage_health.h"

#include <algorithm>
#include <cerrno>
#include <chrono>

#include <fmt/format.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>

namespace thintrim::daemon {

namespace {

// How long a method waits for the scan it asked for; a scan normally takes
// milliseconds, one stuck on a hung device never ends.
constexpr Microseconds kFreshScanWait = std::chrono::seconds(5);

std::uint64_t usec(Microseconds value) {
    return value.count() > 0 ? static_cast<std::uint64_t>(value.count()) : 0;
}

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

UniqueFd blockTerminationSignals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    // Threads started later (the worker) inherit the mask.
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    UniqueFd fd{::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK)};
    if (!fd.isValid())
        throwSystemError("signalfd", errno);
    return fd;
}

} // namespace

Daemon::Daemon(DaemonOptions options, Config config, sdbus::IConnection& bus)
    : signalFd_(blockTerminationSignals()), options_(std::move(options)),
      config_(std::move(config)), store_(options_.stateDir), bus_(bus),
      machineKey_(machineSplayKey()), loop_(bus), authorizer_(bus),
      pacing_(
          [this](const Mount& mount) {
              const CatalogEntry* entry = stackEntry(mount);
              return entry != nullptr && entry->stack ? leafDevices(*entry->stack)
                                                      : std::vector<std::string>{};
          },
          [](const std::vector<std::string>& disks, Microseconds now) {
              return sampleIo(PacingSources{}, disks, now);
          }),
      window_([this](std::uint64_t job) { return scheduledJobs_.contains(job); },
              [] { return readClocks().realtime; }),
      storageHealth_([this](std::uint64_t job) { return scheduledJobs_.contains(job); },
                     [this](const Mount& mount) -> std::optional<std::string> {
                         const CatalogEntry* entry = stackEntry(mount);
                         if (entry == nullptr || !entry->stack)
                             return std::nullopt;
                         return storageDeferral(options_.systemPaths, *entry->stack);
                     }),
      engine_({worker_, *this, *this, *this}, loadState(store_), engineOptions()),
      verifier_(options_.systemPaths),
      scheduleTimer_(
          loop_, CLOCK_REALTIME, [this] { onScheduleTimer(); }, "checking the schedule"),
      engineTimer_(
          loop_, CLOCK_BOOTTIME,
          [this] {
              engine_.onWake();
              publish(); // PacingState may have changed
          },
          "pacing a trim"),
      // Stacks and free space are read off the loop thread; applyScan()
      // reschedules with them.
      freeSpaceTimer_(
          loop_, CLOCK_MONOTONIC, [this] { scanner_->request(MountScanner::Scope::Verdicts); },
          "sampling free space"),
      scanWaitTimer_(
          loop_, CLOCK_BOOTTIME,
          [this] {
              const Microseconds now = readClocks().sinceBoot;
              logMessage(LogLevel::Warning,
                         fmt::format("reading the block stacks takes longer than {} (a hung "
                                     "device?): answering with the verdicts at hand",
                                     formatDuration(kFreshScanWait)));
              answerScanWaiters(
                  [now](std::uint64_t, Microseconds deadline) { return deadline <= now; }, nullptr);
          },
          "answering a call that waited for a scan"),
      watchdogTimer_(
          loop_, CLOCK_MONOTONIC, [] { sd_notify(0, "WATCHDOG=1"); }, "notifying the watchdog") {
    // Deferral first: a filesystem put off is not paced.
    engine_.addPolicy(storageHealth_);
    engine_.addPolicy(window_);
    engine_.addPolicy(pacing_);
    configurePolicies();
    loop_.watch(
        worker_.eventFd(), [this] { onWorkerEvents(); }, "handling a trim's progress");
    loop_.watch(
        verifier_.eventFd(), [this] { onVerifyDone(); }, "handling a verify's result");
    // After an unexpected failure, what a stop would keep: the job to resume.
    loop_.onHandlerFailure([this] { engine_.saveNow(); });
    loop_.watch(
        signalFd_.get(),
        [this] {
            signalfd_siginfo info{};
            while (::read(signalFd_.get(), &info, sizeof info) == sizeof info) {
                if (info.ssi_signo == SIGHUP) {
                    try {
                        reload();
                    } catch (const Error&) {
                        // reload() logged why; the old configuration stays.
                    }
                } else {
                    shutdown();
                }
            }
        },
        "handling a signal");
}

Daemon::~Daemon() {
    loop_.unwatch(worker_.eventFd());
    loop_.unwatch(verifier_.eventFd());
    loop_.unwatch(signalFd_.get());
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
    freeSpaceTimer_.armIn(config_.schedule.checkInterval, config_.schedule.checkInterval);
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

const CatalogEntry* Daemon::managedEntry(std::string_view mountPoint) const {
    const CatalogEntry* entry = findEntry(catalog_, mountPoint);
    return entry != nullptr && isManagedHere(*entry) ? entry : nullptr;
}

bool Daemon::isManagedHere(const CatalogEntry& entry) const {
    return entry.mount.isManaged() &&
           config_.filesystems.selects(entry.mount.mountPoint, entry.mount.fsType);
}

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
    std::vector<std::string> targets;
    if (mountPoints.empty()) {
        for (const CatalogEntry& entry : catalog_) {
            if (isManagedHere(entry) && entry.eligible())
                targets.push_back(entry.mount.mountPoint);
        }
    }
    for (const std::string& mountPoint : mountPoints) {
        const CatalogEntry* entry = findEntry(catalog_, mountPoint);
        if (entry == nullptr)
            throw Error(ErrorCode::NotManaged, fmt::format("{} is not a mount point", mountPoint));
        if (!entry->mount.isManaged())
            throw Error(ErrorCode::NotManaged, fmt::format("{} is not trimmed by thintrim: {}",
                                                           mountPoint, entry->reason()));
        if (!isManagedHere(*entry))
            throw Error(ErrorCode::NotManaged,
                        fmt::format("{} is left out by the [Filesystems] section of the "
                                    "configuration",
                                    mountPoint));
        if (!entry->eligible())
            throw Error(ErrorCode::NotEligible,
                        fmt::format("{} cannot pass discards: {}", mountPoint, entry->reason()));
        if (std::find(targets.begin(), targets.end(), entry->mount.mountPoint) == targets.end())
            targets.push_back(entry->mount.mountPoint);
    }
    JobOptions options;
    options.dryRun = request.dryRun.value_or(false);
    options.minimumExtent = request.minimumExtent.value_or(config_.trim.minimumExtent);
    options.rateLimit = request.rateLimit.value_or(config_.trim.rateLimit);
    options.chunkSize = request.chunkSize.value_or(config_.trim.chunkSize);
    const std::uint64_t id = engine_.enqueue(std::move(targets), options);
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
    engine_.setOptions(engineOptions());
    configurePolicies();
    engine_.kick();
    freeSpaceTimer_.armIn(config_.schedule.checkInterval, config_.schedule.checkInterval);
    logEvent(LogLevel::Info, message_id::kConfigReloaded, "configuration reloaded", {});
    // [Filesystems] may have changed which filesystems are managed.
    rebuildCatalog();
}

std::string Daemon::filesystemObjectPath(const std::string& mountPoint) {
    const CatalogEntry* entry = managedEntry(mountPoint);
    if (entry == nullptr)
        throw Error(ErrorCode::NotManaged,
                    fmt::format("{} is not a filesystem thintrim manages", mountPoint));
    return dbus::filesystemObjectPath(entry->mount.mountPoint);
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
    for (const CatalogEntry& entry : catalog_) {
        if (isManagedHere(entry))
            managed.push_back(entry);
    }
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
            verifyReplies_.emplace(verifier_.start(verifyTargets(mountPoints)), reply);
        } catch (...) {
            reply([]() -> VerifyOutcomes { throw; });
        }
    });
}

std::vector<VerifyTarget> Daemon::verifyTargets(const std::vector<std::string>& mountPoints) const {
    std::vector<VerifyTarget> targets;
    if (mountPoints.empty()) {
        for (const CatalogEntry& entry : catalog_) {
            if (isManagedHere(entry) && entry.eligible())
                targets.push_back({entry.mount, entry.stack});
        }
    }
    for (const std::string& mountPoint : mountPoints) {
        const CatalogEntry* entry = managedEntry(mountPoint);
        if (entry == nullptr)
            throw Error(ErrorCode::NotManaged,
                        fmt::format("{} is not a filesystem thintrim manages", mountPoint));
        targets.push_back({entry->mount, entry->stack});
    }
    return targets;
}

void Daemon::onVerifyDone() {
    for (VerifyDone& done : verifier_.takeDone()) {
        VerifyOutcomes outcomes;
        for (VerifyOutcome& outcome : done.outcomes) {
            const std::string& mountPoint = outcome.mount.mountPoint;
            engine_.mutableState().recordVerify(outcome.mount.identity(), mountPoint,
                                                now().realtime, outcome.report);
            logEvent(outcome.report.verdict == VerifyVerdict::Dropped ? LogLevel::Warning
                                                                      : LogLevel::Info,
                     message_id::kFilesystemVerified,
                     fmt::format("{}: verify {}: {}", mountPoint,
                                 verifyVerdictName(outcome.report.verdict), outcome.report.message),
                     {{"MOUNT_POINT", mountPoint},
                      {"VERIFY_RESULT", std::string(verifyVerdictName(outcome.report.verdict))},
                      {"REACHED_DISK_BYTES", outcome.report.reachedDiskBytes
                                                 ? std::to_string(*outcome.report.reachedDiskBytes)
                                                 : std::string("unknown")}});
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

void Daemon::configurePolicies() {
    pacing_.setMode(config_.trim.pacing);
    window_.setWindows(config_.schedule.window);
}

const CatalogEntry* Daemon::stackEntry(const Mount& mount) const {
    const CatalogEntry* entry = findEntry(catalog_, mount.mountPoint);
    return entry != nullptr && entry->mount.mountDevice == mount.mountDevice ? entry : nullptr;
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
    const CatalogEntry* entry = managedEntry(mountPoint);
    if (entry == nullptr)
        return {std::nullopt, fmt::format("{} is not mounted any more", mountPoint)};
    if (!entry->eligible())
        return {std::nullopt, "cannot pass discards: " + entry->reason()};
    return {entry->mount, {}};
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
    receipt_.reset();
    if (const CatalogEntry* entry = managedEntry(mount.mountPoint); entry && entry->stack)
        receipt_.emplace(options_.systemPaths, *entry->stack);
}

void Daemon::filesystemFinished(FilesystemReport& filesystem) {
    TrimReport& report = filesystem.trim;
    const std::string& mountPoint = filesystem.mountPoint;
    // Only the run that filesystemStarting() measured: a filesystem skipped
    // before it started has no receipt.
    if (!report.reachedDiskBytes && receipt_ && filesystem.mount) {
        report.reachedDiskBytes = receipt_->finish();
        if (filesystem.recorded)
            engine_.mutableState().recordReceipt(filesystem.mount->identity(),
                                                 report.reachedDiskBytes);
    }
    receipt_.reset();
    const std::string result{trimOutcomeName(report.outcome)};
    manager_->emitFilesystemTrimmed(filesystem.jobId, forBus(mountPoint), report.trimmedBytes,
                                    usec(report.duration), result, forBus(report.message));
    logEvent(
        report.outcome == TrimOutcome::Failed ? LogLevel::Warning : LogLevel::Info,
        message_id::kFilesystemTrimmed,
        report.outcome == TrimOutcome::Success && report.message.empty()
            ? fmt::format("{}: {} ({} bytes) trimmed in {}", mountPoint,
                          formatSize(report.trimmedBytes), report.trimmedBytes,
                          formatDuration(report.duration))
            : fmt::format("{}: {}: {}", mountPoint, result, report.message),
        {{"MOUNT_POINT", mountPoint},
         {"TRIMMED_BYTES", std::to_string(report.trimmedBytes)},
         {"REACHED_DISK_BYTES", report.reachedDiskBytes ? std::to_string(*report.reachedDiskBytes)
                                                        : std::string("unknown")},
         {"DURATION_USEC", std::to_string(usec(report.duration))},
         {"RESULT", result},
         {"JOB", std::to_string(filesystem.jobId)}});
    if (filesystem.recorded)
        writeMetrics();
    // Outside the engine's call: the schedule may queue a job.
    // The last sample predates the trim (and whatever was written before
    // it): the schedule must not judge freed space by it until the scan
    // that sampleFreeSpace() asks for has landed.
    loop_.defer([this, mountPoint] {
        staleFreeSpace_.insert(mountPoint);
        sampleFreeSpace();
        reschedule();
    });
}

void Daemon::jobFinished(const JobSummary& summary) {
    scheduledJobs_.erase(summary.id);
    const std::string result{jobResultName(summary.result)};
    manager_->emitJobFinished(summary.id, result, summary.trimmedBytes);
    logEvent(LogLevel::Info, message_id::kJobFinished,
             fmt::format("job {} finished: {}, {} trimmed", summary.id, result,
                         formatSize(summary.trimmedBytes)),
             {{"JOB", std::to_string(summary.id)},
              {"RESULT", result},
              {"TRIMMED_BYTES", std::to_string(summary.trimmedBytes)}});
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
    answerScanWaiters([&](std::uint64_t request, Microseconds) { return request <= scan.answers; },
                      &scan);
}

void Daemon::applyCatalog(MountScan& scan) {
    catalog_ = std::move(scan.catalog);
    freeSpace_ = std::move(scan.freeSpace);
    asyncDiscard_ = std::move(scan.asyncDiscard);
    staleFreeSpace_.clear();
    visible_.clear();
    for (std::size_t index = 0; index < catalog_.size(); ++index) {
        if (!catalog_[index].mount.hidden)
            visible_[catalog_[index].mount.mountPoint] = index;
    }
    // The filesystem being trimmed went away (or something else is mounted
    // there now): FITRIM would go on on a detached filesystem, so stop it.
    if (const std::optional<Engine::Current> current = engine_.current()) {
        const CatalogEntry* entry = visibleEntry(current->mount.mountPoint);
        if (entry == nullptr || entry->mount.mountDevice != current->mount.mountDevice)
            engine_.mountGone(current->mount.mountPoint);
    }
    forgetUnseenFilesystems();
    syncObjects();
    writeMetrics(); // with the new free space: thintrim_freed_since_last_trim_bytes
    reschedule();
}

const CatalogEntry* Daemon::visibleEntry(std::string_view mountPoint) const {
    auto found = visible_.find(mountPoint);
    return found != visible_.end() ? &catalog_[found->second] : nullptr;
}

void Daemon::syncObjects() {
    std::set<std::string_view> present;
    for (const auto& [mountPoint, index] : visible_) {
        if (isManagedHere(catalog_[index]))
            present.insert(mountPoint);
    }
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
        const CatalogEntry& entry = *visibleEntry(mountPoint);
        filesystems_.emplace(std::string(mountPoint),
                             std::make_unique<FilesystemObject>(bus_, asController(), authorizer_,
                                                                filesystemProperties(entry)));
        logMessage(LogLevel::Info,
                   fmt::format("managing {} ({} on {}): {}", mountPoint, entry.mount.fsType,
                               entry.mount.source,
                               entry.eligible() ? "eligible" : "not eligible: " + entry.reason()));
    }
}

void Daemon::forgetUnseenFilesystems() {
    std::vector<const Mount*> mounted;
    for (const CatalogEntry& entry : catalog_)
        mounted.push_back(&entry.mount);
    const State::Observed observed = engine_.mutableState().observeMounts(
        mounted, readClocks().realtime, config_.schedule.effectiveForgetAfter());
    for (const std::string& forgotten : observed.forgotten)
        logMessage(LogLevel::Info,
                   fmt::format("forgot {}: not mounted for longer than ForgetAfter={}", forgotten,
                               formatDuration(config_.schedule.effectiveForgetAfter())));
    if (observed.changed) {
        save(engine_.state());
        writeMetrics();
    }
}

void Daemon::afterFreshScan(MountScanner::Scope scope, ScanWaiter then) {
    const Microseconds deadline = readClocks().sinceBoot + kFreshScanWait;
    scanWaiters_.push_back({scanner_->request(scope), deadline, std::move(then)});
    scanWaitTimer_.armAt(scanWaiters_.front().deadline);
}

void Daemon::answerScanWaiters(
    const std::function<bool(std::uint64_t request, Microseconds deadline)>& due,
    const MountScan* scan) {
    std::vector<PendingScanWaiter> ready;
    std::vector<PendingScanWaiter> waiting;
    for (PendingScanWaiter& waiter : scanWaiters_)
        (due(waiter.request, waiter.deadline) ? ready : waiting).push_back(std::move(waiter));
    scanWaiters_ = std::move(waiting);
    // Deadlines grow with the requests: the front one is the earliest.
    if (scanWaiters_.empty())
        scanWaitTimer_.disarm();
    else
        scanWaitTimer_.armAt(scanWaiters_.front().deadline);
    for (PendingScanWaiter& waiter : ready)
        waiter.then(scan);
}

void Daemon::sampleFreeSpace() {
    scanner_->request(MountScanner::Scope::Mounts);
}

void Daemon::reschedule() {
    if (!ready_)
        return;
    const ClockReading now = readClocks();
    std::vector<ScheduledFilesystem> eligible;
    for (const CatalogEntry& entry : catalog_) {
        if (!isManagedHere(entry) || !entry.eligible())
            continue;
        ScheduledFilesystem filesystem;
        filesystem.mountPoint = entry.mount.mountPoint;
        filesystem.identity = entry.mount.identity();
        // A new filesystem's first trim is its first slot after this.
        filesystem.seenSince =
            firstSeen_.try_emplace(filesystem.mountPoint, now.realtime).first->second;
        if (auto history = engine_.state().filesystems.find(filesystem.identity);
            history != engine_.state().filesystems.end())
            filesystem.history = history->second;
        if (auto sample = freeSpace_.find(filesystem.mountPoint);
            sample != freeSpace_.end() && !staleFreeSpace_.contains(filesystem.mountPoint)) {
            filesystem.sizeBytes = sample->second.size;
            filesystem.freeBytes = sample->second.free;
        }
        eligible.push_back(std::move(filesystem));
    }
    std::set<std::string> queued;
    for (std::string& mountPoint : engine_.pendingMountPoints())
        queued.insert(std::move(mountPoint));
    const SchedulePlan plan = planSchedule(
        {config_.schedule, machineKey_, eligible, engine_.state().suspended, queued, now});
    nextTrim_.clear();
    for (const auto& [mountPoint, at] : plan.nextTrim)
        nextTrim_[mountPoint] = at;
    if (plan.wakeAt)
        scheduleTimer_.armAt(*plan.wakeAt);
    else
        scheduleTimer_.disarm();

    if (!plan.toQueue.empty() && !shuttingDown_) {
        std::vector<std::string> mountPoints;
        for (const DueFilesystem& due : plan.toQueue) {
            logMessage(LogLevel::Info,
                       fmt::format("{} is due ({})", due.mountPoint, dueReasonName(due.reason)));
            mountPoints.push_back(due.mountPoint);
        }
        JobOptions options;
        options.minimumExtent = config_.trim.minimumExtent;
        options.rateLimit = config_.trim.rateLimit;
        options.chunkSize = config_.trim.chunkSize;
        try {
            scheduledJobs_.insert(engine_.enqueue(std::move(mountPoints), options));
            engine_.kick();
        } catch (const Error& e) {
            logMessage(LogLevel::Warning, fmt::format("scheduled trim not queued: {}", e.what()));
        }
    }
    publish();
}

void Daemon::onScheduleTimer() {
    reschedule();
}

// --- stopping ----------------------------------------------------------------

void Daemon::shutdown() {
    if (shuttingDown_)
        return;
    shuttingDown_ = true;
    sd_notify(0, "STOPPING=1");
    logEvent(LogLevel::Info, message_id::kDaemonStopping, "stopping", {});
    // No call waits for a scan the stop would leave unanswered.
    answerScanWaiters([](std::uint64_t, Microseconds) { return true; }, nullptr);
    // The engine ends the chunk in flight, saves, then stopped() quits.
    engine_.shutdown();
}

// --- publishing ----------------------------------------------------------------

void Daemon::writeMetrics() {
    if (config_.metrics.metricsFile.empty())
        return;
    try {
        DiscardBacklog backlog;
        BytesByIdentity freed;
        for (const CatalogEntry& entry : catalog_) {
            if (!isManagedHere(entry))
                continue;
            if (auto async = asyncDiscard_.find(entry.mount.mountPoint);
                async != asyncDiscard_.end() && async->second.backlogBytes)
                backlog[entry.mount.identity()] = *async->second.backlogBytes;
            auto history = engine_.state().filesystems.find(entry.mount.identity());
            auto sample = freeSpace_.find(entry.mount.mountPoint);
            if (history != engine_.state().filesystems.end() &&
                history->second.freeBytesAtLastTrim && sample != freeSpace_.end())
                freed[entry.mount.identity()] =
                    freedSinceLastTrim(history->second, sample->second.free);
        }
        writeMetricsFile(config_.metrics.metricsFile, engine_.state(), backlog, freed);
    } catch (const Error& e) {
        logMessage(LogLevel::Warning, fmt::format("cannot write the metrics file: {}", e.what()));
    }
}

FilesystemProperties Daemon::filesystemProperties(const CatalogEntry& entry) const {
    const Mount& mount = entry.mount;
    FilesystemProperties p;
    p.mountPoint = mount.mountPoint;
    p.source = mount.source;
    p.deviceNumber = mount.mountDevice.toString();
    p.fsType = mount.fsType;
    p.uuid = mount.uuid;
    p.label = mount.label;
    p.mountOptions = mount.vfsOptions;
    p.eligible = entry.eligible();
    p.reason = entry.reason();
    p.discardMaxBytes = entry.discardMaxBytes();
    p.discardGranularity = entry.discardGranularity();
    if (entry.stack) {
        for (const Layer& layer : entry.stack->layers)
            p.stack.emplace_back(layer.depth, layer.name, std::string(layerKindName(layer.kind)),
                                 layer.discardMaxBytes, layer.discardGranularity,
                                 layer.passesDiscards());
    }
    FilesystemHistory history;
    if (auto found = engine_.state().filesystems.find(mount.identity());
        found != engine_.state().filesystems.end())
        history = found->second;
    p.lastTrimStarted = usec(history.lastTrimStarted);
    p.lastTrimFinished = usec(history.lastTrimFinished);
    p.lastTrimmedBytes = history.lastTrimmedBytes;
    p.lastTrimDuration = usec(history.lastTrimDuration);
    p.lastTrimResult = std::string(history.lastTrimResultName());
    p.lastTrimMessage = history.lastTrimMessage;
    p.totalTrimmedBytes = history.totalTrimmedBytes;
    p.trimCount = history.trimCount;
    p.lastReachedDiskBytes = history.lastReachedDiskBytes.value_or(dbus::kUnknownBytes);
    p.totalReachedDiskBytes = history.totalReachedDiskBytes;
    p.lastVerifyResult = std::string(history.lastVerifyResultName());
    p.lastVerifyTime = usec(history.lastVerifyTime);
    p.lastVerifyMessage = history.lastVerifyMessage;
    // As sampled by the last scan: the loop thread reads no sysfs per publish.
    if (auto async = asyncDiscard_.find(mount.mountPoint); async != asyncDiscard_.end()) {
        p.asyncDiscard = true;
        p.discardBacklogBytes = async->second.backlogBytes.value_or(0);
    }
    if (auto sample = freeSpace_.find(mount.mountPoint); sample != freeSpace_.end()) {
        p.size = sample->second.size;
        p.freeBytes = sample->second.free;
        p.freedSinceLastTrim = freedSinceLastTrim(history, sample->second.free);
    }
    if (auto next = nextTrim_.find(mount.mountPoint); next != nextTrim_.end())
        p.nextScheduledTrim = usec(next->second);
    return p;
}

void Daemon::publish() {
    if (!manager_)
        return;
    ManagerProperties p;
    const State& state = engine_.state();
    const std::optional<Engine::Current> current = engine_.current();
    p.state = engineStateName(engine_.engineState());
    if (current) {
        p.currentJob = current->jobId;
        p.currentMountPoint = current->mount.mountPoint;
        p.progress = current->progress.fraction();
        p.currentTrimmedBytes = current->progress.trimmedBytes;
        p.pacingState = pacing_.status();
    }
    p.queuedJobs = engine_.queuedJobIds();
    Microseconds earliest{0};
    for (const auto& [mountPoint, at] : nextTrim_) {
        if (at.count() > 0 && (earliest.count() == 0 || at < earliest))
            earliest = at;
    }
    p.nextScheduledTrim = usec(earliest);
    p.lastRunStarted = usec(state.lastRun.started);
    p.lastRunFinished = usec(state.lastRun.finished);
    p.lastRunTrimmedBytes = state.lastRun.trimmedBytes;
    p.lastRunResult = std::string(state.lastRun.resultName());
    p.totalTrimmedBytes = state.totalTrimmedBytes;
    p.lastRunReachedDiskBytes = state.lastRun.reachedDiskBytes;
    p.totalReachedDiskBytes = state.totalReachedDiskBytes;
    p.interval = usec(config_.schedule.interval);
    p.rateLimit = config_.trim.rateLimit;
    p.chunkSize = config_.trim.chunkSize;
    p.minimumExtent = config_.trim.minimumExtent;
    if (const auto* bytes = std::get_if<std::uint64_t>(&config_.schedule.freedSpaceThreshold))
        p.freedSpaceThreshold = *bytes;
    manager_->publish(p);

    // Each object emits PropertiesChanged only for what differs.
    for (const auto& [mountPoint, object] : filesystems_) {
        if (const CatalogEntry* entry = visibleEntry(mountPoint))
            object->publish(filesystemProperties(*entry));
    }
    notifyStatus(current);
}

void Daemon::notifyStatus(const std::optional<Engine::Current>& current) {
    std::string status;
    if (current)
        status = fmt::format("Trimming {} ({:.0f}%), job {}", current->mount.mountPoint,
                             current->progress.fraction() * 100, current->jobId);
    else if (engine_.state().suspended)
        status = "Suspended";
    else if (manager_->properties().nextScheduledTrim > 0)
        status = fmt::format("Idle; next trim {}",
                             formatRelative(Microseconds(static_cast<Microseconds::rep>(
                                                manager_->properties().nextScheduledTrim)),
                                            realtimeNow()));
    else
        status = "Idle; nothing to trim";
    sd_notify(0, ("STATUS=" + status).c_str());
}

} // namespace thintrim::daemon
