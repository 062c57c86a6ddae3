// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"
#include "base/unique_fd.h"
#include "base/units.h"
#include "discovery/inventory.h"
#include "state/schedule.h"
#include "state/state.h"
#include "trim/trim.h"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

class RateLimitPolicy;

// The trim engine: owns the job queue, runs one filesystem at a time chunk by
// chunk, persists the cursor, and stops cleanly on Cancel, Suspend, sleep and
// shutdown. It is a state machine driven by events (calls from the daemon or
// the CLI, FITRIM results, timer wake-ups) on one thread; it never blocks and
// never touches a file descriptor itself: FITRIM, the clock and the state
// file are injected, so every transition is tested without root.
//
// A job's life: Queued -> Running -> Finished(result), with Running ->
// Suspending -> Suspended -> Running on Suspend/Resume, and Running ->
// Cancelling -> Finished(Cancelled) on Cancel. "-ing" states wait for the
// chunk in flight; a chunk is never abandoned, and an event arriving while
// one is in flight only changes what happens when it returns, so no ordering
// of Suspend, Resume, Cancel and results can leave the queue stalled.

enum class JobState { Queued, Running, Suspending, Suspended, Cancelling, Finished };
// JobResult is in state.h (the last run's result is history).
// What the daemon as a whole is doing (Manager.State).
enum class EngineState { Idle, Trimming, Suspended };

// The names of Manager.State.
inline constexpr auto kEngineStates =
    makeEnumCodec<EngineState>("daemon state", {{EngineState::Idle, "idle"},
                                                {EngineState::Trimming, "trimming"},
                                                {EngineState::Suspended, "suspended"}});
[[nodiscard]] constexpr std::string_view engineStateName(EngineState state) {
    return kEngineStates.name(state);
}

// --- what the engine is given ------------------------------------------------

// FITRIM, asynchronously. Each prepare() and trimChunk() is answered by
// exactly one Engine::onPrepared() / onChunkDone(), later, on the engine's
// thread; the engine never has two requests outstanding.
class TrimPort {
public:
    virtual ~TrimPort() = default;
    // Opens the mount, checks it is still `mount`, reads its layout.
    virtual void prepare(const Mount& mount) = 0;
    virtual void trimChunk(const TrimRange& range, std::uint64_t minimumExtent) = 0;
    // Closes what prepare() opened (so the filesystem can be unmounted). No
    // answer; a prepare() may follow at once.
    virtual void release() = 0;
};

struct PrepareResult {
    std::optional<TrimLayout> layout; // nullopt: `error` says why
    std::string error;
};

struct ChunkResult {
    int error = 0; // errno of FITRIM, 0 on success
    std::uint64_t trimmedBytes = 0;
    Microseconds duration{0};
    // Free bytes after the call (fstatvfs on the fd FITRIM used, on the
    // thread that issued it); nullopt when unknown.
    std::optional<std::uint64_t> freeBytes;
};

// Times: `realtime` for history (CLOCK_REALTIME), `sinceBoot`
// (CLOCK_BOOTTIME) for waits and BootDelay.
class EngineClock {
public:
    virtual ~EngineClock() = default;
    [[nodiscard]] virtual ClockReading now() const = 0;
};

// Where the engine stands between chunks, for the policies.
struct ChunkContext {
    std::uint64_t jobId = 0;
    const Mount* mount = nullptr;
    const TrimLayout* layout = nullptr;
    std::uint64_t cursor = 0;             // where the next chunk starts
    std::uint64_t trimmedBytes = 0;       // by this filesystem's run so far
    std::uint64_t chunkSize = 0;          // the size the next chunk would have
    Microseconds runStarted{0};           // sinceBoot when this run began
    Microseconds now{0};                  // sinceBoot
    std::optional<ChunkResult> lastChunk; // nullopt before the first
};

// What a policy wants before the next chunk. The engine asks every policy
// before every chunk (and again after each wait), and combines: the latest
// `notBefore`, the smallest `chunkSize`, any `defer`.
struct ChunkDecision {
    Microseconds notBefore{0};              // sinceBoot; wait until then
    std::optional<std::uint64_t> chunkSize; // shrink or grow the next chunk
    bool defer = false;                     // stop this filesystem for now, keep its cursor
    std::string reason;                     // for the log and the report when deferring
};

// A per-chunk policy (trim_policies.h): the rate limit, which every engine
// has; load-aware pacing, trim windows and storage health plug in the same
// way (Engine::addPolicy).
class ChunkPolicy {
public:
    virtual ~ChunkPolicy() = default;
    [[nodiscard]] virtual ChunkDecision beforeChunk(const ChunkContext& context) = 0;
};

// The outcome of one filesystem within a job.
struct FilesystemReport {
    std::uint64_t jobId = 0;
    std::string mountPoint;
    std::optional<Mount> mount; // nullopt when it could not be resolved
    Microseconds started{0};    // realtime
    TrimReport trim;
    // Whether the history was updated (not for dry runs or unresolved mounts).
    bool recorded = false;
};

struct JobSummary {
    std::uint64_t id = 0;
    JobResult result = JobResult::Success;
    std::uint64_t trimmedBytes = 0;
    bool started = false;
    bool dryRun = false;
};

// What the engine tells its owner. Called on the engine's thread, from inside
// the engine's methods: a handler must not call back into the engine except
// through what it documents.
class EngineEvents {
public:
    virtual ~EngineEvents() = default;
    virtual void jobStarted(std::uint64_t jobId, const std::vector<std::string>& mountPoints) = 0;
    // Before the first chunk of a filesystem (e.g. to sample counters).
    virtual void filesystemStarting(std::uint64_t jobId, const Mount& mount) = 0;
    // After the report went into the history (report.recorded): a handler
    // may add its own measurements to both (Engine::recordReceipt()); the
    // receipt it sets in report.trim.reachedDiskBytes counts in the job's
    // (a dry run's is 0 already).
    virtual void filesystemFinished(FilesystemReport& report) = 0;
    virtual void jobFinished(const JobSummary& summary) = 0;
    // Something published changed: states, progress, the queue, history.
    virtual void changed() = 0;
    // Wake the engine (onWake) at `sinceBoot`; nullopt disarms.
    virtual void wakeAt(std::optional<Microseconds> sinceBoot) = 0;
    // The state to persist now (atomically). Failures are the owner's to log.
    virtual void save(const State& state) = 0;
    // shutdown() completed: everything is saved and nothing is in flight.
    virtual void stopped() = 0;
    // Informational lines for the log.
    virtual void note(std::string_view mountPoint, const std::string& message) = 0;
};

// What a mount point is now: its Mount when it can be trimmed, else why not.
struct Resolution {
    std::optional<Mount> mount;
    std::string skipReason;
};
class MountResolver {
public:
    virtual ~MountResolver() = default;
    [[nodiscard]] virtual Resolution resolve(const std::string& mountPoint) = 0;
};

struct EngineOptions {
    // The state file is written at chunk boundaries at most this often.
    Microseconds cursorSaveInterval{5'000'000};
    // Jobs waiting behind the running one; Trim beyond is refused.
    std::size_t maxQueuedJobs = 64;
    // A job found in the state at start (interrupted by kill, crash or
    // reboot) waits until this long after boot, like any overdue work.
    Microseconds bootDelay{0};
};

// --- the engine --------------------------------------------------------------

class Engine {
public:
    struct Deps {
        TrimPort& port;
        const EngineClock& clock;
        EngineEvents& events;
        MountResolver& resolver;
    };

    // `state` is what was loaded; a pending job in it is queued again.
    Engine(Deps deps, State state, EngineOptions options);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Policies are asked in the order added; they must outlive the engine.
    void addPolicy(ChunkPolicy& policy) { policies_.push_back(&policy); }
    // Takes effect at the next event (kick() to apply it now).
    void setOptions(EngineOptions options) { options_ = options; }

    // Jobs may start (the daemon owns its bus name). Before this, jobs queue.
    void start();

    // Queues a job over `mountPoints` (already checked by the caller); returns
    // its id. Throws Error(InvalidArgument) when the queue is full, and
    // Error(Failed) while stopping.
    std::uint64_t enqueue(std::vector<std::string> mountPoints, JobOptions options);
    // 0 = the running job. Throws Error(NoSuchJob).
    void cancel(std::uint64_t jobId);
    // Persisted; the running filesystem stops at its next chunk boundary.
    void suspend();
    void resume();
    // Stops at the next chunk boundary without changing the persisted
    // suspension (system sleep); resumeAfterSleep() continues.
    void pauseForSleep();
    void resumeAfterSleep();
    // The filesystem being trimmed is gone: ends it as failed once its chunk
    // returns. No-op for others.
    void mountGone(const std::string& mountPoint);
    // Stops at the next chunk boundary, saves, then events.stopped().
    void shutdown();

    void onPrepared(PrepareResult result);
    void onChunkDone(ChunkResult result);
    void onWake();
    // Starts what can start now. After enqueue(), once the caller has the
    // id; and whenever a policy's answer may have changed (a window opened).
    void kick();

    // --- what the owner publishes ---
    [[nodiscard]] EngineState engineState() const;
    [[nodiscard]] const State& state() const { return state_; }
    [[nodiscard]] bool stopping() const { return shuttingDown_; }
    // True while a FITRIM request is outstanding.
    [[nodiscard]] bool busy() const { return inFlight_ != InFlight::None; }
    struct Current {
        std::uint64_t jobId = 0;
        Mount mount;
        TrimProgress progress;
        JobState state = JobState::Running;
    };
    [[nodiscard]] std::optional<Current> current() const;
    [[nodiscard]] std::vector<std::uint64_t> queuedJobIds() const;
    [[nodiscard]] std::optional<JobState> jobState(std::uint64_t jobId) const;
    // Mount points in queued or running jobs, not yet done.
    [[nodiscard]] std::vector<std::string> pendingMountPoints() const;
    // Persists the state now (after the owner's additions below).
    void saveNow();

    // --- the owner's additions to the history, saved with the next save ---
    // The receipt filesystemFinished() measured for `report` (receipts.h),
    // when the report went into the history (report.recorded).
    void recordReceipt(const FilesystemReport& report);
    // A verify of `mount` that finished at `at` (realtime).
    void recordVerify(const Mount& mount, Microseconds at, const VerifyReport& report);
    // The mounts seen now (State::observeMounts): forgets filesystems not
    // mounted for longer than `forgetAfter`.
    [[nodiscard]] State::Observed observeMounts(const std::vector<const Mount*>& mounts,
                                                Microseconds now, Microseconds forgetAfter);

private:
    enum class InFlight { None, Prepare, Chunk };
    enum class Stop { None, Cancel, Suspend, Sleep, Shutdown, Unmounted };

    struct Job {
        std::uint64_t id = 0;
        std::vector<std::string> mountPoints;
        std::size_t next = 0; // index of the filesystem being or to be trimmed
        JobOptions options;
        bool started = false;
        bool cancelRequested = false;
        Microseconds startedAt{0}; // realtime
        bool afterRestart = false; // from the state file: waits for BootDelay
        std::uint64_t trimmedBytes = 0;
        std::uint64_t reachedDiskBytes = 0; // the receipts filesystemFinished() added
        unsigned attempted = 0;
        unsigned failed = 0;
    };

    // The filesystem being trimmed.
    struct Run {
        Mount mount;
        Microseconds startedRealtime{0};
        Microseconds startedSinceBoot{0};
        std::optional<TrimLayout> layout;
        std::uint64_t startCursor = 0;
        std::uint64_t cursor = 0;
        std::uint64_t chunkSize = 0;
        std::uint64_t trimmedBytes = 0;
        std::size_t calls = 0;
        TrimRange inFlightRange;
        std::optional<ChunkResult> lastChunk;
        Microseconds waitingUntil{0}; // sinceBoot, 0 = not waiting (for the policies)
        TrimProgress progress;
    };

    // Starts or continues whatever can run; the one place that decides.
    void step();
    void startJob(Job& job);
    void startFilesystem(Job& job);
    // Asks the policies, then issues the next chunk or waits. True when it
    // finished the filesystem (deferred) and the caller should go on.
    bool advanceRun(Job& job);
    void finishDryRun(Job& job);
    void stopRun(Job& job, Stop stop);
    void finishRun(Job& job, TrimReport report);
    void finishFilesystem(Job& job, FilesystemReport report);
    void finishFrontJob();
    void finishJob(const Job& job);
    [[nodiscard]] TrimReport runReport(TrimOutcome outcome, std::string message) const;
    [[nodiscard]] Stop pendingStop(const Job& job) const;
    void rememberCursor(bool force);
    void rememberPendingJob();
    void save();

    Deps deps_;
    State state_;
    EngineOptions options_;
    std::unique_ptr<RateLimitPolicy> rateLimit_; // trim_policies.h
    std::vector<ChunkPolicy*> policies_;

    std::deque<Job> jobs_; // the front one is the active one
    std::optional<Run> run_;
    InFlight inFlight_ = InFlight::None;
    bool started_ = false;
    bool sleeping_ = false;
    bool unmounted_ = false;
    bool shuttingDown_ = false;
    bool stoppedSent_ = false;
    Microseconds lastSave_{0}; // sinceBoot of the last cursor save
};

// --- the real FITRIM ---------------------------------------------------------

// What a TrimPort does for prepare(): opens and checks `mount` into `opened`
// and reads its layout. Never throws: failures are in the result.
[[nodiscard]] PrepareResult prepareTrim(const Mount& mount, UniqueFd& opened);
// What a TrimPort does for trimChunk(): one FITRIM on `fd`, timed, then the
// free space (fstatvfs on `fd`).
[[nodiscard]] ChunkResult trimChunkOn(int fd, const TrimRange& range, std::uint64_t minimumExtent);

// FITRIM in the calling thread (thintrim trim --local): each request is
// carried out at once and its answer handed to the engine by deliver(), never
// from inside the engine's own call.
class DirectTrimPort final : public TrimPort {
public:
    void prepare(const Mount& mount) override;
    void trimChunk(const TrimRange& range, std::uint64_t minimumExtent) override;
    void release() override { fd_ = UniqueFd{}; }
    // Gives `engine` the answer waiting, if any; false when there was none.
    bool deliver(Engine& engine);

private:
    UniqueFd fd_;
    std::optional<PrepareResult> prepared_;
    std::optional<ChunkResult> chunk_;
};

// One job run to its end in the calling thread with the real FITRIM
// (`thintrim trim --local`): the daemon's engine without the daemon. No state
// file is read or written (the daemon owns it): `state` gives the cursors.
struct LocalJobHooks {
    std::function<void(const Mount&)> starting;            // a filesystem begins
    std::function<void(const FilesystemReport&)> finished; // and ends
    std::function<void(const TrimProgress&)> progress;     // after each chunk
    // Waits up to `timeout` (0: only looks); true when the job should stop
    // (Ctrl-C): it is then cancelled at the next chunk boundary.
    std::function<bool(Microseconds timeout)> stopRequested;
};
struct LocalJobResult {
    JobSummary summary;
    State state;
};
[[nodiscard]] LocalJobResult runLocalJob(MountResolver& resolver,
                                         std::vector<std::string> mountPoints,
                                         const JobOptions& options, const LocalJobHooks& hooks,
                                         State state = {});

} // namespace thintrim
