// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon.h"

#include "bus_boundary.h"
#include "bus_names.h"
#include "diagnose.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "schedule_plan.h"

#include <algorithm>
#include <cerrno>
#include <chrono>

#include <fmt/format.h>
#include <sdbus-c++/sdbus-c++.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/statvfs.h>
#include <systemd/sd-daemon.h>

namespace thintrim::daemon {

namespace {

std::uint64_t usec(Microseconds value) {
    return value.count() > 0 ? static_cast<std::uint64_t>(value.count()) : 0;
}

std::optional<std::uint64_t> freeBytesOf(const std::string& mountPoint,
                                         std::uint64_t* sizeBytes = nullptr) {
    struct statvfs info {};
    if (::statvfs(mountPoint.c_str(), &info) != 0)
        return std::nullopt;
    if (sizeBytes != nullptr)
        *sizeBytes = std::uint64_t{info.f_blocks} * info.f_frsize;
    return std::uint64_t{info.f_bavail} * info.f_frsize;
}

TrimReport skippedReport(std::string message) {
    TrimReport report;
    report.outcome = TrimOutcome::Skipped;
    report.message = std::move(message);
    return report;
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
      scheduleTimer_(
          loop_, CLOCK_REALTIME, [this] { onScheduleTimer(); }, "checking the schedule"),
      // Stacks and free space are read off the loop thread; applyScan()
      // reschedules with them.
      freeSpaceTimer_(
          loop_, CLOCK_MONOTONIC, [this] { scanner_->request(MountScanner::Scope::Verdicts); },
          "sampling free space"),
      watchdogTimer_(
          loop_, CLOCK_MONOTONIC, [] { sd_notify(0, "WATCHDOG=1"); }, "notifying the watchdog") {
    StateStore::Loaded loaded = store_.load();
    state_ = std::move(loaded.state);
    if (loaded.warning)
        logEvent(LogLevel::Warning, message_id::kStateReset,
                 fmt::format("{}; starting with an empty history", *loaded.warning),
                 {{"STATE_FILE", store_.path().string()}});
    // A job interrupted by a stop continues where it was (its first
    // filesystem's history holds the cursor).
    if (state_.pendingJob && !state_.pendingJob->mountPoints.empty()) {
        Job job;
        job.id = state_.pendingJob->id;
        job.mountPoints = state_.pendingJob->mountPoints;
        job.options = state_.pendingJob->options;
        jobs_.push_back(std::move(job));
    }
    state_.nextJobId = std::max<std::uint64_t>(state_.nextJobId, 1);

    loop_.watch(
        worker_.eventFd(), [this] { onWorkerEvents(); }, "handling a trim's progress");
    // After an unexpected failure, what a stop would keep: the job to resume.
    loop_.onHandlerFailure([this] {
        rememberPendingJob();
        save();
    });
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
    loop_.unwatch(signalFd_.get());
}

int Daemon::run() {
    manager_ = std::make_unique<ManagerObject>(bus_, asController(), authorizer_);
    scanner_ = std::make_unique<MountScanner>(
        loop_, options_.systemPaths, [this](MountScan scan) { applyScan(std::move(scan)); });
    scanner_->setOptions({config_.filesystems.userMedia});
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
    bus_.requestName(dbus::kBusName);

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
    pump();
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
           config_.matchesFilesystem(entry.mount.mountPoint, entry.mount.fsType);
}

std::uint64_t Daemon::queueTrim(const std::vector<std::string>& mountPoints,
                                const TrimRequestOptions& request) {
    if (shuttingDown_)
        throw Error(ErrorCode::System, "thintrimd is stopping; try again when it is back");
    // A verdict can be stale (a layer was fixed since the last walk): the
    // caller deserves today's answer.
    refreshVerdicts();
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
    const std::uint64_t id = enqueue(std::move(targets), options);
    // After the reply: the caller learns its job id before JobStarted.
    loop_.defer([this] { pump(); });
    return id;
}

std::uint64_t Daemon::enqueue(std::vector<std::string> mountPoints, JobOptions options) {
    Job job;
    job.id = state_.nextJobId++;
    job.mountPoints = std::move(mountPoints);
    job.options = options;
    jobs_.push_back(std::move(job));
    return jobs_.back().id;
}

void Daemon::cancelJob(std::uint64_t id) {
    if (id == 0) {
        if (jobs_.empty() || !jobs_.front().started)
            throw Error(ErrorCode::NoSuchJob, "no job is running");
        id = jobs_.front().id;
    }
    auto found =
        std::find_if(jobs_.begin(), jobs_.end(), [id](const Job& j) { return j.id == id; });
    if (found == jobs_.end())
        throw Error(ErrorCode::NoSuchJob,
                    fmt::format("there is no job {}; it may have finished already", id));
    found->cancelled = true;
    if (running_ && running_->jobId == id) {
        // It ends at the next chunk boundary, in onTrimDone().
        stopRunning(StopReason::Cancel);
        return;
    }
    const Job job = *found;
    jobs_.erase(found);
    finishJob(job);
    pump();
}

void Daemon::suspend() {
    if (state_.suspended)
        return;
    state_.suspended = true;
    save();
    if (running_)
        stopRunning(StopReason::Suspend);
    logEvent(LogLevel::Notice, message_id::kSuspended,
             running_ ? fmt::format("suspended; {} stops at the next chunk boundary",
                                    running_->mount.mountPoint)
                      : std::string("suspended"),
             {});
    reschedule();
    publish();
}

void Daemon::resume() {
    if (!state_.suspended)
        return;
    state_.suspended = false;
    save();
    logEvent(LogLevel::Notice, message_id::kResumed, "resumed", {});
    pump();
    reschedule();
    publish();
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

std::vector<Finding> Daemon::diagnose() {
    refreshVerdicts();
    return runDiagnosis(options_.systemPaths, catalog_);
}

// --- jobs ----------------------------------------------------------------------

void Daemon::pump() {
    while (ready_ && !shuttingDown_ && !state_.suspended && !worker_.busy() && !jobs_.empty()) {
        Job& job = jobs_.front();
        if (!job.started) {
            job.started = true;
            job.startedAt = realtimeNow();
            manager_->emitJobStarted(job.id, forBus(job.mountPoints));
            rememberPendingJob();
            save();
        }
        // Cancelled while it could not stop at once (suspended meanwhile):
        // nothing more of it runs.
        if (job.next >= job.mountPoints.size() || job.cancelled) {
            const Job done = job;
            jobs_.pop_front();
            finishJob(done);
            continue;
        }
        const std::string mountPoint = job.mountPoints[job.next];
        const CatalogEntry* entry = managedEntry(mountPoint);
        if (entry == nullptr) {
            finishFilesystem(job, mountPoint,
                             skippedReport(fmt::format("{} is not mounted any more", mountPoint)));
            continue;
        }
        if (!entry->eligible()) {
            finishFilesystem(job, mountPoint,
                             skippedReport("cannot pass discards: " + entry->reason()));
            continue;
        }
        TrimTask task;
        task.jobId = job.id;
        task.mount = entry->mount;
        task.options.dryRun = job.options.dryRun;
        task.options.minimumExtent = job.options.minimumExtent;
        task.options.chunkSize = job.options.chunkSize;
        task.options.rateLimit = job.options.rateLimit;
        if (!job.options.dryRun) {
            auto history = state_.filesystems.find(entry->mount.identity());
            if (history != state_.filesystems.end())
                task.options.resumeFrom = history->second.resumeFrom;
        }
        if (task.options.resumeFrom > 0)
            logMessage(LogLevel::Info, fmt::format("{}: resuming the trim at offset {}", mountPoint,
                                                   task.options.resumeFrom));
        running_ = RunningTrim{job.id, entry->mount, realtimeNow(), StopReason::None, {}};
        worker_.start(std::move(task));
    }
    publish();
}

void Daemon::stopRunning(StopReason reason) {
    // The first reason wins: a shutdown during a cancel still ends as cancelled.
    if (running_->stop == StopReason::None)
        running_->stop = reason;
    worker_.cancel();
}

void Daemon::onWorkerEvents() {
    // Progress events that queued up meanwhile are published as one change,
    // but the last one always goes out, also when its filesystem finished in
    // the same batch.
    bool progressed = false;
    for (WorkerEvent& event : worker_.takeEvents()) {
        if (auto* progress = std::get_if<TrimProgressEvent>(&event)) {
            if (running_ && running_->jobId == progress->jobId) {
                running_->progress = progress->progress;
                progressed = true;
            }
            continue;
        }
        if (progressed)
            publish();
        progressed = false;
        onTrimDone(std::move(std::get<TrimDoneEvent>(event).report));
    }
    if (progressed)
        publish();
}

void Daemon::onTrimDone(TrimReport report) {
    RunningTrim run = std::move(*running_);
    running_.reset();
    Job& job = jobs_.front();
    const std::string& mountPoint = run.mount.mountPoint;
    const bool interrupted = report.outcome == TrimOutcome::Cancelled;

    if (interrupted && (run.stop == StopReason::Suspend || run.stop == StopReason::Shutdown)) {
        // Not the end of this filesystem: it continues from the cursor after
        // resume or restart, in the same job.
        report.message = fmt::format(
            "{} at offset {}; it continues from there",
            run.stop == StopReason::Suspend ? "suspended" : "thintrimd stopped", report.resumeFrom);
        if (!job.options.dryRun)
            state_.recordTrim(run.mount.identity(), mountPoint, run.started, report,
                              freeBytesOf(mountPoint).value_or(0));
        job.trimmedBytes += report.trimmedBytes;
        logMessage(LogLevel::Info, fmt::format("{}: {}", mountPoint, report.message));
        rememberPendingJob();
        save();
        if (run.stop == StopReason::Shutdown) {
            finishShutdown();
            return;
        }
        publish();
        return;
    }
    // A trim that got to its end before it could be stopped keeps its result.
    if (interrupted && run.stop == StopReason::Unmounted) {
        report.outcome = TrimOutcome::Failed;
        report.message = fmt::format("{} was unmounted during the trim", mountPoint);
        report.resumeFrom = 0;
    } else if (interrupted && run.stop == StopReason::Cancel) {
        report.message = fmt::format("cancelled at offset {}; the next trim continues from there",
                                     report.resumeFrom);
    }
    if (!job.options.dryRun) {
        const std::optional<std::uint64_t> free = freeBytesOf(mountPoint);
        state_.recordTrim(run.mount.identity(), mountPoint, run.started, report, free.value_or(0));
    }
    finishFilesystem(job, mountPoint, report);
    if (job.cancelled)
        job.next = job.mountPoints.size();
    writeMetrics();
    if (shuttingDown_) {
        finishShutdown();
        return;
    }
    rememberPendingJob();
    save();
    sampleFreeSpace();
    pump();
    reschedule();
}

void Daemon::finishFilesystem(Job& job, const std::string& mountPoint, const TrimReport& report) {
    ++job.next;
    job.trimmedBytes += report.trimmedBytes;
    if (report.outcome != TrimOutcome::Skipped)
        ++job.attempted;
    if (report.outcome == TrimOutcome::Failed)
        ++job.failed;
    manager_->emitFilesystemTrimmed(
        job.id, forBus(mountPoint), report.trimmedBytes, usec(report.duration),
        std::string(trimOutcomeName(report.outcome)), forBus(report.message));
    const std::string result{trimOutcomeName(report.outcome)};
    logEvent(report.outcome == TrimOutcome::Failed ? LogLevel::Warning : LogLevel::Info,
             message_id::kFilesystemTrimmed,
             report.outcome == TrimOutcome::Success && report.message.empty()
                 ? fmt::format("{}: {} ({} bytes) trimmed in {}", mountPoint,
                               formatSize(report.trimmedBytes), report.trimmedBytes,
                               formatDuration(report.duration))
                 : fmt::format("{}: {}: {}", mountPoint, result, report.message),
             {{"MOUNT_POINT", mountPoint},
              {"TRIMMED_BYTES", std::to_string(report.trimmedBytes)},
              {"DURATION_USEC", std::to_string(usec(report.duration))},
              {"RESULT", result},
              {"JOB", std::to_string(job.id)}});
}

void Daemon::finishJob(const Job& job) {
    std::string result = "success";
    if (job.cancelled)
        result = "cancelled";
    else if (job.failed > 0)
        result = job.failed == job.attempted ? "failed" : "partial";
    // A dry run is no run, and neither is a job cancelled before it started.
    if (!job.options.dryRun && job.started) {
        state_.lastRun.started = job.startedAt;
        state_.lastRun.finished = realtimeNow();
        state_.lastRun.trimmedBytes = job.trimmedBytes;
        state_.lastRun.result = result;
    }
    manager_->emitJobFinished(job.id, result, job.trimmedBytes);
    logEvent(LogLevel::Info, message_id::kJobFinished,
             fmt::format("job {} finished: {}, {} trimmed", job.id, result,
                         formatSize(job.trimmedBytes)),
             {{"JOB", std::to_string(job.id)},
              {"RESULT", result},
              {"TRIMMED_BYTES", std::to_string(job.trimmedBytes)}});
    rememberPendingJob();
    save();
}

void Daemon::rememberPendingJob() {
    // The front job only: it is the one holding a cursor. Jobs queued behind
    // it are not worth persisting; the schedule recreates its own.
    state_.pendingJob.reset();
    if (jobs_.empty() || !jobs_.front().started)
        return;
    const Job& job = jobs_.front();
    if (job.cancelled || job.next >= job.mountPoints.size())
        return;
    PendingJob pending;
    pending.id = job.id;
    pending.mountPoints.assign(job.mountPoints.begin() + static_cast<std::ptrdiff_t>(job.next),
                               job.mountPoints.end());
    pending.options = job.options;
    state_.pendingJob = std::move(pending);
}

// --- mounts, free space, schedule -------------------------------------------

void Daemon::rebuildCatalog() {
    scanner_->setOptions({config_.filesystems.userMedia});
    scanner_->request(MountScanner::Scope::Mounts);
    syncObjects();
    reschedule();
}

void Daemon::applyScan(MountScan scan) {
    if (scan.error) {
        logMessage(
            LogLevel::Warning,
            fmt::format("cannot read the mount table, keeping the last one: {}", *scan.error));
        return;
    }
    catalog_ = std::move(scan.catalog);
    freeSpace_ = std::move(scan.freeSpace);
    visible_.clear();
    for (std::size_t index = 0; index < catalog_.size(); ++index) {
        if (!catalog_[index].mount.hidden)
            visible_[catalog_[index].mount.mountPoint] = index;
    }
    // The filesystem being trimmed went away (or something else is mounted
    // there now): FITRIM would go on on a detached filesystem, so stop it.
    if (running_) {
        const CatalogEntry* entry = visibleEntry(running_->mount.mountPoint);
        if (entry == nullptr || entry->mount.mountDevice != running_->mount.mountDevice)
            stopRunning(StopReason::Unmounted);
    }
    syncObjects();
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

void Daemon::refreshVerdicts() {
    refreshStacks(options_.systemPaths, catalog_);
    publish();
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
        if (auto history = state_.filesystems.find(filesystem.identity);
            history != state_.filesystems.end())
            filesystem.history = history->second;
        if (auto sample = freeSpace_.find(filesystem.mountPoint); sample != freeSpace_.end()) {
            filesystem.sizeBytes = sample->second.size;
            filesystem.freeBytes = sample->second.free;
        }
        eligible.push_back(std::move(filesystem));
    }
    std::set<std::string> queued;
    for (const Job& job : jobs_) {
        if (job.cancelled)
            continue;
        for (std::size_t index = job.next; index < job.mountPoints.size(); ++index)
            queued.insert(job.mountPoints[index]);
    }
    const SchedulePlan plan =
        planSchedule({config_.schedule, machineKey_, eligible, state_.suspended, queued, now});
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
        enqueue(std::move(mountPoints), options);
        pump();
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
    if (running_) {
        stopRunning(StopReason::Shutdown);
        return; // finishShutdown() once the worker reached a chunk boundary
    }
    finishShutdown();
}

void Daemon::finishShutdown() {
    rememberPendingJob();
    save();
    loop_.quit(0);
}

// --- publishing ----------------------------------------------------------------

void Daemon::save() {
    try {
        store_.save(state_);
    } catch (const Error& e) {
        // History is worth keeping, not worth stopping for.
        logMessage(LogLevel::Error, fmt::format("cannot save the state: {}", e.what()));
    }
}

void Daemon::writeMetrics() {
    if (config_.metrics.metricsFile.empty())
        return;
    try {
        writeMetricsFile(config_.metrics.metricsFile, state_);
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
    if (auto found = state_.filesystems.find(mount.identity()); found != state_.filesystems.end())
        history = found->second;
    p.lastTrimStarted = usec(history.lastTrimStarted);
    p.lastTrimFinished = usec(history.lastTrimFinished);
    p.lastTrimmedBytes = history.lastTrimmedBytes;
    p.lastTrimDuration = usec(history.lastTrimDuration);
    p.lastTrimResult = std::string(history.lastTrimResultName());
    p.lastTrimMessage = history.lastTrimMessage;
    p.totalTrimmedBytes = history.totalTrimmedBytes;
    p.trimCount = history.trimCount;
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
    p.state = state_.suspended ? "suspended" : (running_ ? "trimming" : "idle");
    if (running_) {
        p.currentJob = running_->jobId;
        p.currentMountPoint = running_->mount.mountPoint;
        p.progress = running_->progress.fraction();
        p.currentTrimmedBytes = running_->progress.trimmedBytes;
    }
    for (const Job& job : jobs_) {
        if (!running_ || job.id != running_->jobId)
            p.queuedJobs.push_back(job.id);
    }
    Microseconds earliest{0};
    for (const auto& [mountPoint, at] : nextTrim_) {
        if (at.count() > 0 && (earliest.count() == 0 || at < earliest))
            earliest = at;
    }
    p.nextScheduledTrim = usec(earliest);
    p.lastRunStarted = usec(state_.lastRun.started);
    p.lastRunFinished = usec(state_.lastRun.finished);
    p.lastRunTrimmedBytes = state_.lastRun.trimmedBytes;
    p.lastRunResult = state_.lastRun.result;
    p.totalTrimmedBytes = state_.totalTrimmedBytes;
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
    notifyStatus();
}

void Daemon::notifyStatus() {
    std::string status;
    if (running_)
        status = fmt::format("Trimming {} ({:.0f}%), job {}", running_->mount.mountPoint,
                             running_->progress.fraction() * 100, running_->jobId);
    else if (state_.suspended)
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
