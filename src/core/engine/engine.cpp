// SPDX-License-Identifier: GPL-2.0-or-later
#include "engine/engine.h"

#include "base/error.h"
#include "engine/trim_policies.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <sys/statvfs.h>

namespace thintrim {

namespace {

std::string dryRunMessage(std::size_t calls, std::uint64_t bytes) {
    return fmt::format("dry run: would issue {} call{} over {}", calls, calls == 1 ? "" : "s",
                       formatSize(bytes));
}

} // namespace

Engine::Engine(Deps deps, State state, EngineOptions options)
    : deps_(deps), state_(std::move(state)), options_(options),
      rateLimit_(std::make_unique<RateLimitPolicy>()) {
    policies_.push_back(rateLimit_.get());
    state_.nextJobId = std::max<std::uint64_t>(state_.nextJobId, 1);
    // A job interrupted by kill, crash or reboot continues where its cursor
    // is, once BootDelay has passed.
    if (state_.pendingJob && !state_.pendingJob->mountPoints.empty()) {
        Job job;
        job.id = state_.pendingJob->id;
        job.mountPoints = state_.pendingJob->mountPoints;
        job.options = state_.pendingJob->options;
        job.afterRestart = true;
        jobs_.push_back(std::move(job));
    }
}

Engine::~Engine() = default;

void Engine::start() {
    started_ = true;
    step();
    deps_.events.changed();
}

std::uint64_t Engine::enqueue(std::vector<std::string> mountPoints, JobOptions options) {
    if (shuttingDown_)
        throw Error(ErrorCode::Failed, "thintrimd is stopping; try again when it is back");
    const auto waiting = static_cast<std::size_t>(
        std::count_if(jobs_.begin(), jobs_.end(), [](const Job& job) { return !job.started; }));
    if (waiting >= options_.maxQueuedJobs)
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("the job queue is full ({} jobs wait); cancel one or try again "
                                "when some have finished",
                                waiting));
    Job job;
    job.id = state_.nextJobId++;
    job.mountPoints = std::move(mountPoints);
    job.options = options;
    jobs_.push_back(std::move(job));
    // Not started here: the owner calls kick() once the caller has its id.
    deps_.events.changed();
    return jobs_.back().id;
}

void Engine::kick() {
    step();
    deps_.events.changed();
}

void Engine::cancel(std::uint64_t jobId) {
    if (jobId == 0) {
        if (jobs_.empty() || !jobs_.front().started)
            throw Error(ErrorCode::NoSuchJob, "no job is running");
        jobId = jobs_.front().id;
    }
    auto found = std::find_if(jobs_.begin(), jobs_.end(),
                              [jobId](const Job& job) { return job.id == jobId; });
    if (found == jobs_.end())
        throw Error(ErrorCode::NoSuchJob,
                    fmt::format("there is no job {}; it may have finished already", jobId));
    if (found != jobs_.begin() || !found->started) {
        Job job = std::move(*found);
        job.cancelRequested = true;
        jobs_.erase(found);
        finishJob(job);
    } else {
        found->cancelRequested = true;
    }
    step();
    deps_.events.changed();
}

void Engine::suspend() {
    if (state_.suspended)
        return;
    state_.suspended = true;
    save();
    step();
    deps_.events.changed();
}

void Engine::resume() {
    if (!state_.suspended)
        return;
    state_.suspended = false;
    save();
    step();
    deps_.events.changed();
}

void Engine::pauseForSleep() {
    sleeping_ = true;
    step();
    deps_.events.changed();
}

void Engine::resumeAfterSleep() {
    if (!sleeping_)
        return;
    sleeping_ = false;
    step();
    deps_.events.changed();
}

void Engine::mountGone(const std::string& mountPoint) {
    if (!run_ || run_->mount.mountPoint != mountPoint)
        return;
    unmounted_ = true;
    step();
    deps_.events.changed();
}

void Engine::shutdown() {
    shuttingDown_ = true;
    step();
    deps_.events.changed();
}

void Engine::onPrepared(PrepareResult result) {
    if (inFlight_ != InFlight::Prepare || !run_)
        return;
    inFlight_ = InFlight::None;
    Job& job = jobs_.front();
    if (!result.layout) {
        // Nothing was trimmed: the cursor stays where it was.
        TrimReport report = runReport(TrimOutcome::Failed, result.error);
        report.resumeFrom = run_->startCursor;
        finishRun(job, std::move(report));
    } else {
        run_->layout = std::move(result.layout);
        if (job.options.dryRun)
            finishDryRun(job);
    }
    step();
    deps_.events.changed();
}

void Engine::onChunkDone(ChunkResult result) {
    if (inFlight_ != InFlight::Chunk || !run_)
        return;
    inFlight_ = InFlight::None;
    Job& job = jobs_.front();
    Run& run = *run_;
    run.lastChunk = result;
    const TrimRange range = run.inFlightRange;
    if (result.error == EINVAL && range.start >= run.layout->fsBytes) {
        // Resumed at or past the end: nothing left to trim.
        run.cursor = kTrimDone;
    } else if (errnoMeansUnsupported(result.error)) {
        TrimReport report = runReport(
            TrimOutcome::Unsupported,
            fmt::format("the filesystem or its device does not support discard (FITRIM: {})",
                        std::strerror(result.error)));
        finishRun(job, std::move(report));
    } else if (result.error != 0) {
        // The cursor stays at the last chunk that went through.
        TrimReport report =
            runReport(TrimOutcome::Failed, fmt::format("FITRIM at offset {}: {}", range.start,
                                                       std::strerror(result.error)));
        report.resumeFrom = run.cursor;
        finishRun(job, std::move(report));
    } else {
        run.trimmedBytes += result.trimmedBytes;
        ++run.calls;
        run.cursor = rangeEnd(range);
        const std::uint64_t total = run.layout->fsBytes;
        run.progress = {std::min(run.cursor, total), total, run.trimmedBytes};
        if (run.cursor != kTrimDone)
            rememberCursor(false);
        // Published before the run may end in step(): every chunk is seen.
        deps_.events.changed();
    }
    step();
    deps_.events.changed();
}

void Engine::onWake() {
    step();
    deps_.events.changed();
}

// --- the state machine -----------------------------------------------------------

void Engine::step() {
    while (inFlight_ == InFlight::None && !jobs_.empty()) {
        Job& job = jobs_.front();
        if (run_) {
            // A trim that got to its end before it could be stopped keeps its result.
            if (run_->layout && run_->cursor == kTrimDone) {
                finishRun(job, runReport(TrimOutcome::Success, {}));
                continue;
            }
            if (const Stop stop = pendingStop(job); stop != Stop::None) {
                stopRun(job, stop);
                continue;
            }
            if (!advanceRun(job))
                break;
            continue;
        }
        if (job.cancelRequested) {
            finishFrontJob();
            continue;
        }
        if (shuttingDown_ || !started_ || state_.suspended || sleeping_)
            break;
        if (job.afterRestart && !job.started && options_.bootDelay > deps_.clock.now().sinceBoot) {
            deps_.events.wakeAt(options_.bootDelay);
            break;
        }
        if (!job.started)
            startJob(job);
        if (job.next >= job.mountPoints.size()) {
            finishFrontJob();
            continue;
        }
        startFilesystem(job);
    }
    if (shuttingDown_ && inFlight_ == InFlight::None && !stoppedSent_) {
        stoppedSent_ = true;
        rememberPendingJob();
        save();
        deps_.events.stopped();
    }
}

Engine::Stop Engine::pendingStop(const Job& job) const {
    if (job.cancelRequested)
        return Stop::Cancel;
    if (unmounted_)
        return Stop::Unmounted;
    if (shuttingDown_)
        return Stop::Shutdown;
    if (state_.suspended)
        return Stop::Suspend;
    if (sleeping_)
        return Stop::Sleep;
    return Stop::None;
}

void Engine::startJob(Job& job) {
    job.started = true;
    job.startedAt = deps_.clock.now().realtime;
    deps_.events.jobStarted(job.id, job.mountPoints);
    rememberPendingJob();
    save();
}

void Engine::startFilesystem(Job& job) {
    const std::string& mountPoint = job.mountPoints[job.next];
    const ClockReading now = deps_.clock.now();
    Resolution resolution = deps_.resolver.resolve(mountPoint);
    if (!resolution.mount) {
        FilesystemReport report;
        report.jobId = job.id;
        report.mountPoint = mountPoint;
        report.started = now.realtime;
        report.trim.outcome = TrimOutcome::Skipped;
        report.trim.message = resolution.skipReason;
        finishFilesystem(job, std::move(report));
        return;
    }
    Run run;
    run.mount = std::move(*resolution.mount);
    run.startedRealtime = now.realtime;
    run.startedSinceBoot = now.sinceBoot;
    run.chunkSize = job.options.chunkSize;
    if (!job.options.dryRun) {
        if (auto history = state_.filesystems.find(run.mount.identity());
            history != state_.filesystems.end())
            run.cursor = history->second.resumeFrom;
    }
    run.startCursor = run.cursor;
    rateLimit_->setRate(job.options.rateLimit);
    if (run.cursor > 0)
        deps_.events.note(mountPoint, fmt::format("resuming the trim at offset {}", run.cursor));
    deps_.events.filesystemStarting(job.id, run.mount);
    run_ = std::move(run);
    inFlight_ = InFlight::Prepare;
    deps_.port.prepare(run_->mount);
}

bool Engine::advanceRun(Job& job) {
    Run& run = *run_;
    const Microseconds now = deps_.clock.now().sinceBoot;
    ChunkContext context;
    context.jobId = job.id;
    context.mount = &run.mount;
    context.layout = &*run.layout;
    context.cursor = run.cursor;
    context.trimmedBytes = run.trimmedBytes;
    context.chunkSize = run.chunkSize;
    context.runStarted = run.startedSinceBoot;
    context.now = now;
    context.lastChunk = run.lastChunk;
    Microseconds notBefore{0};
    std::optional<std::uint64_t> chunkSize;
    for (ChunkPolicy* policy : policies_) {
        ChunkDecision decision = policy->beforeChunk(context);
        if (decision.defer) {
            TrimReport report = runReport(TrimOutcome::Skipped, decision.reason);
            report.resumeFrom = run.cursor;
            finishRun(job, std::move(report));
            return true;
        }
        notBefore = std::max(notBefore, decision.notBefore);
        if (decision.chunkSize)
            chunkSize = std::min(chunkSize.value_or(*decision.chunkSize), *decision.chunkSize);
    }
    if (chunkSize)
        run.chunkSize = *chunkSize;
    if (notBefore > now) {
        run.waitingUntil = notBefore;
        deps_.events.wakeAt(notBefore);
        return false;
    }
    run.waitingUntil = Microseconds{0};
    run.inFlightRange = nextChunk(*run.layout, run.cursor, run.chunkSize);
    inFlight_ = InFlight::Chunk;
    deps_.port.trimChunk(run.inFlightRange, job.options.minimumExtent);
    return false;
}

void Engine::finishDryRun(Job& job) {
    Run& run = *run_;
    std::size_t calls = 0;
    for (std::uint64_t cursor = run.cursor; cursor != kTrimDone; ++calls)
        cursor = rangeEnd(nextChunk(*run.layout, cursor, run.chunkSize));
    const std::uint64_t start = std::min(run.cursor, run.layout->fsBytes);
    TrimReport report =
        runReport(TrimOutcome::Success, dryRunMessage(calls, run.layout->fsBytes - start));
    report.calls = calls;
    report.reachedDiskBytes = 0; // no discard issued
    finishRun(job, std::move(report));
}

void Engine::stopRun(Job& job, Stop stop) {
    Run& run = *run_;
    switch (stop) {
    case Stop::Cancel: {
        TrimReport report = runReport(
            TrimOutcome::Cancelled,
            fmt::format("cancelled at offset {}; the next trim continues from there", run.cursor));
        report.resumeFrom = run.cursor;
        finishRun(job, std::move(report));
        return;
    }
    case Stop::Unmounted: {
        unmounted_ = false;
        finishRun(job,
                  runReport(TrimOutcome::Failed,
                            fmt::format("{} was unmounted during the trim", run.mount.mountPoint)));
        return;
    }
    case Stop::Suspend:
    case Stop::Sleep:
    case Stop::Shutdown: {
        // Not the end of this filesystem: it continues from the cursor after
        // Resume, wake-up or restart, in the same job.
        const char* why = stop == Stop::Suspend ? "suspended"
                          : stop == Stop::Sleep ? "paused for system sleep"
                                                : "thintrimd stopped";
        TrimReport report =
            runReport(TrimOutcome::Cancelled,
                      fmt::format("{} at offset {}; it continues from there", why, run.cursor));
        report.resumeFrom = run.cursor;
        job.trimmedBytes += report.trimmedBytes;
        if (!job.options.dryRun)
            state_.recordTrim(run.mount.identity(), run.mount.mountPoint, run.startedRealtime,
                              report);
        deps_.events.note(run.mount.mountPoint, report.message);
        if (run.layout)
            deps_.port.release();
        run_.reset();
        rememberPendingJob();
        save();
        return;
    }
    case Stop::None:
        return;
    }
}

TrimReport Engine::runReport(TrimOutcome outcome, std::string message) const {
    TrimReport report;
    report.outcome = outcome;
    report.message = std::move(message);
    if (run_) {
        report.trimmedBytes = run_->trimmedBytes;
        report.calls = run_->calls;
        report.duration = deps_.clock.now().sinceBoot - run_->startedSinceBoot;
        if (run_->lastChunk)
            report.freeBytes = run_->lastChunk->freeBytes;
    }
    return report;
}

void Engine::finishRun(Job& job, TrimReport report) {
    FilesystemReport filesystem;
    filesystem.jobId = job.id;
    filesystem.mountPoint = run_->mount.mountPoint;
    filesystem.mount = run_->mount;
    filesystem.started = run_->startedRealtime;
    filesystem.trim = std::move(report);
    // The layout is read once prepare() succeeded: only then is something open.
    if (run_->layout)
        deps_.port.release();
    run_.reset();
    finishFilesystem(job, std::move(filesystem));
    if (job.cancelRequested)
        finishFrontJob();
}

void Engine::finishFilesystem(Job& job, FilesystemReport report) {
    ++job.next;
    const TrimReport& trim = report.trim;
    job.trimmedBytes += trim.trimmedBytes;
    if (trim.outcome != TrimOutcome::Skipped)
        ++job.attempted;
    if (trim.outcome == TrimOutcome::Failed)
        ++job.failed;
    if (report.mount && !job.options.dryRun) {
        state_.recordTrim(report.mount->identity(), report.mountPoint, report.started, trim);
        report.recorded = true;
    }
    deps_.events.filesystemFinished(report);
    job.reachedDiskBytes =
        saturatingAdd(job.reachedDiskBytes, report.trim.reachedDiskBytes.value_or(0));
    rememberPendingJob();
    save();
}

void Engine::finishFrontJob() {
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    finishJob(job);
}

void Engine::finishJob(const Job& job) {
    JobSummary summary;
    summary.id = job.id;
    summary.trimmedBytes = job.trimmedBytes;
    summary.started = job.started;
    summary.dryRun = job.options.dryRun;
    if (job.cancelRequested)
        summary.result = JobResult::Cancelled;
    else if (job.failed > 0)
        summary.result = job.failed == job.attempted ? JobResult::Failed : JobResult::Partial;
    // A dry run is no run, and neither is a job cancelled before it started.
    if (!job.options.dryRun && job.started) {
        state_.lastRun.started = job.startedAt;
        state_.lastRun.finished = deps_.clock.now().realtime;
        state_.lastRun.trimmedBytes = job.trimmedBytes;
        state_.lastRun.result = summary.result;
        state_.lastRun.reachedDiskBytes = job.reachedDiskBytes;
    }
    deps_.events.jobFinished(summary);
    rememberPendingJob();
    save();
}

void Engine::rememberCursor(bool force) {
    Run& run = *run_;
    if (jobs_.front().options.dryRun)
        return;
    state_.filesystems[run.mount.identity()].resumeFrom = run.cursor;
    const Microseconds now = deps_.clock.now().sinceBoot;
    if (!force && lastSave_.count() != 0 && now - lastSave_ < options_.cursorSaveInterval)
        return;
    rememberPendingJob();
    save();
}

void Engine::rememberPendingJob() {
    // The front job only: it is the one holding a cursor. Jobs queued behind
    // it are not worth persisting; the schedule recreates its own.
    state_.pendingJob.reset();
    if (jobs_.empty() || !jobs_.front().started)
        return;
    const Job& job = jobs_.front();
    if (job.cancelRequested || job.next >= job.mountPoints.size())
        return;
    PendingJob pending;
    pending.id = job.id;
    pending.mountPoints.assign(job.mountPoints.begin() + static_cast<std::ptrdiff_t>(job.next),
                               job.mountPoints.end());
    pending.options = job.options;
    state_.pendingJob = std::move(pending);
}

void Engine::save() {
    lastSave_ = deps_.clock.now().sinceBoot;
    deps_.events.save(state_);
}

void Engine::saveNow() {
    rememberPendingJob();
    save();
}

void Engine::recordReceipt(const FilesystemReport& report) {
    if (report.recorded && report.mount)
        state_.recordReceipt(report.mount->identity(), report.trim.reachedDiskBytes);
}

void Engine::recordVerify(const Mount& mount, Microseconds at, const VerifyReport& report) {
    state_.recordVerify(mount.identity(), mount.mountPoint, at, report);
}

State::Observed Engine::observeMounts(const std::vector<const Mount*>& mounts, Microseconds now,
                                      Microseconds forgetAfter) {
    return state_.observeMounts(mounts, now, forgetAfter);
}

// --- what the owner publishes ------------------------------------------------------

EngineState Engine::engineState() const {
    if (state_.suspended || (sleeping_ && !run_))
        return EngineState::Suspended;
    return run_ ? EngineState::Trimming : EngineState::Idle;
}

std::optional<JobState> Engine::jobState(std::uint64_t jobId) const {
    for (std::size_t index = 0; index < jobs_.size(); ++index) {
        const Job& job = jobs_[index];
        if (job.id != jobId)
            continue;
        if (index > 0 || !job.started)
            return JobState::Queued;
        const bool holding = state_.suspended || sleeping_ || shuttingDown_;
        if (job.cancelRequested)
            return JobState::Cancelling;
        if (run_)
            return holding ? JobState::Suspending : JobState::Running;
        return holding ? JobState::Suspended : JobState::Running;
    }
    return std::nullopt;
}

std::optional<Engine::Current> Engine::current() const {
    if (!run_ || jobs_.empty())
        return std::nullopt;
    Current current;
    current.jobId = jobs_.front().id;
    current.mount = run_->mount;
    current.progress = run_->progress;
    current.state = jobState(current.jobId).value_or(JobState::Running);
    return current;
}

std::vector<std::uint64_t> Engine::queuedJobIds() const {
    std::vector<std::uint64_t> ids;
    for (const Job& job : jobs_) {
        if (!(run_ && &job == &jobs_.front()))
            ids.push_back(job.id);
    }
    return ids;
}

std::vector<std::string> Engine::pendingMountPoints() const {
    std::vector<std::string> mountPoints;
    for (const Job& job : jobs_) {
        if (job.cancelRequested)
            continue;
        for (std::size_t index = job.next; index < job.mountPoints.size(); ++index)
            mountPoints.push_back(job.mountPoints[index]);
    }
    return mountPoints;
}

// --- the real FITRIM -------------------------------------------------------------

PrepareResult prepareTrim(const Mount& mount, UniqueFd& opened) {
    PrepareResult result;
    try {
        UniqueFd fd = openForTrim(mount);
        result.layout = readTrimLayout(fd.get(), mount.fsType);
        opened = std::move(fd);
    } catch (const std::exception& e) {
        result.error = e.what();
    }
    return result;
}

ChunkResult trimChunkOn(int fd, const TrimRange& range, std::uint64_t minimumExtent) {
    const auto started = std::chrono::steady_clock::now();
    const FitrimResult fitrim = issueFitrim(fd, range, minimumExtent);
    ChunkResult result;
    result.error = fitrim.error;
    result.trimmedBytes = fitrim.trimmedBytes;
    result.duration =
        std::chrono::duration_cast<Microseconds>(std::chrono::steady_clock::now() - started);
    // Here, not on the caller's thread: statvfs of a hung device blocks too.
    struct statvfs info {};
    if (::fstatvfs(fd, &info) == 0)
        result.freeBytes = std::uint64_t{info.f_bavail} * info.f_frsize;
    return result;
}

void DirectTrimPort::prepare(const Mount& mount) {
    prepared_ = prepareTrim(mount, fd_);
}

void DirectTrimPort::trimChunk(const TrimRange& range, std::uint64_t minimumExtent) {
    chunk_ = trimChunkOn(fd_.get(), range, minimumExtent);
}

bool DirectTrimPort::deliver(Engine& engine) {
    if (prepared_) {
        PrepareResult result = std::move(*prepared_);
        prepared_.reset();
        engine.onPrepared(std::move(result));
        return true;
    }
    if (chunk_) {
        const ChunkResult result = *chunk_;
        chunk_.reset();
        engine.onChunkDone(result);
        return true;
    }
    return false;
}

namespace {

// What the engine tells a local run: passed on to the hooks.
class LocalJob final : public EngineEvents, public EngineClock {
public:
    explicit LocalJob(const LocalJobHooks& hooks) : hooks_(hooks) {}

    void jobStarted(std::uint64_t /*jobId*/, const std::vector<std::string>& /*mounts*/) override {}
    void filesystemStarting(std::uint64_t /*jobId*/, const Mount& mount) override {
        if (hooks_.starting)
            hooks_.starting(mount);
    }
    void filesystemFinished(FilesystemReport& report) override {
        if (hooks_.finished)
            hooks_.finished(report);
    }
    void jobFinished(const JobSummary& finished) override { summary = finished; }
    void changed() override {}
    void wakeAt(std::optional<Microseconds> sinceBoot) override { wake = sinceBoot; }
    void save(const State& /*state*/) override {}
    void stopped() override {}
    void note(std::string_view /*mountPoint*/, const std::string& /*message*/) override {}
    [[nodiscard]] ClockReading now() const override { return readClocks(); }

    std::optional<JobSummary> summary;
    std::optional<Microseconds> wake;

private:
    const LocalJobHooks& hooks_;
};

} // namespace

LocalJobResult runLocalJob(MountResolver& resolver, std::vector<std::string> mountPoints,
                           const JobOptions& options, const LocalJobHooks& hooks, State state) {
    LocalJob job{hooks};
    DirectTrimPort port;
    Engine engine({port, job, job, resolver}, std::move(state), EngineOptions{});
    engine.start();
    engine.enqueue(std::move(mountPoints), options);
    engine.kick();
    bool stopping = false;
    auto askToStop = [&](Microseconds timeout) {
        if (stopping || !hooks.stopRequested || !hooks.stopRequested(timeout))
            return;
        stopping = true;
        engine.cancel(0);
    };
    while (!job.summary) {
        askToStop(Microseconds{0});
        if (port.deliver(engine)) {
            if (hooks.progress) {
                if (const std::optional<Engine::Current> current = engine.current())
                    hooks.progress(current->progress);
            }
            continue;
        }
        if (!job.wake)
            break; // nothing in flight and nothing to wait for
        const Microseconds timeout = *job.wake - job.now().sinceBoot;
        job.wake.reset();
        if (timeout.count() > 0) {
            if (hooks.stopRequested && !stopping)
                askToStop(timeout);
            else
                std::this_thread::sleep_for(timeout);
        }
        engine.onWake();
    }
    return {job.summary.value_or(JobSummary{}), engine.state()};
}

} // namespace thintrim
