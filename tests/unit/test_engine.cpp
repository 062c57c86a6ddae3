// SPDX-License-Identifier: GPL-2.0-or-later
// The trim engine's state machine with a fake FITRIM (records calls, answers
// when the test says: until then a call "blocks"), a fake clock and a
// recording state store.
#include "base/error.h"
#include "catch.h"
#include "engine/engine.h"

#include <cerrno>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

using namespace thintrim;
using namespace std::chrono_literals;

namespace {

// The name of the ErrorCode `call` throws, "no error" when it returns, or
// "other exception" for anything but an Error: CHECK(thrownCode(...) ==
// "NoSuchJob") checks the code, where CHECK_THROWS_AS(..., Error) took any.
template <typename Call>
std::string thrownCode(Call&& call) {
    try {
        call();
    } catch (const Error& e) {
        return std::string(errorCodeName(e.code()));
    } catch (...) {
        return "other exception";
    }
    return "no error";
}

constexpr std::uint64_t kMiB = 1ULL << 20;
constexpr std::uint64_t kGiB = 1ULL << 30;

class FakeClock final : public EngineClock {
public:
    ClockReading now() const override { return reading; }
    void advance(Microseconds by) {
        reading.realtime += by;
        reading.sinceBoot += by;
    }
    ClockReading reading{Microseconds{1'700'000'000'000'000}, Microseconds{3'600'000'000}};
};

class FakeFitrim final : public TrimPort {
public:
    void prepare(const Mount& mount) override {
        REQUIRE_FALSE(outstanding());
        calls.push_back("prepare " + mount.mountPoint);
        preparing = mount;
    }
    void trimChunk(const TrimRange& range, std::uint64_t /*minimumExtent*/) override {
        REQUIRE_FALSE(outstanding());
        REQUIRE(open);
        calls.push_back(fmt::format("trim {}", range.start));
        chunk = range;
    }
    void release() override {
        calls.push_back("release");
        open = false;
    }
    [[nodiscard]] bool outstanding() const { return preparing.has_value() || chunk.has_value(); }

    std::vector<std::string> calls;
    std::optional<Mount> preparing;
    std::optional<TrimRange> chunk;
    bool open = false;
};

class Recorder final : public EngineEvents, public MountResolver {
public:
    void jobStarted(std::uint64_t jobId, const std::vector<std::string>&) override {
        started.push_back(jobId);
    }
    void filesystemStarting(std::uint64_t, const Mount&) override {}
    void filesystemFinished(FilesystemReport& report) override { filesystems.push_back(report); }
    void jobFinished(const JobSummary& summary) override { finished.push_back(summary); }
    void changed() override {}
    void wakeAt(std::optional<Microseconds> at) override { wake = at; }
    void save(const State& state) override {
        saved = state;
        ++saves;
    }
    void stopped() override { stoppedCalled = true; }
    void note(std::string_view, const std::string& message) override { notes.push_back(message); }

    Resolution resolve(const std::string& mountPoint) override {
        if (gone.count(mountPoint) != 0)
            return {std::nullopt, mountPoint + " is not mounted any more"};
        Mount mount;
        mount.mountPoint = mountPoint;
        mount.fsType = "xfs";
        mount.uuid = "uuid-of-" + mountPoint;
        return {mount, {}};
    }

    std::vector<std::uint64_t> started;
    std::vector<FilesystemReport> filesystems;
    std::vector<JobSummary> finished;
    std::optional<Microseconds> wake;
    std::optional<State> saved;
    int saves = 0;
    bool stoppedCalled = false;
    std::vector<std::string> notes;
    std::map<std::string, bool> gone;
};

// 4 GiB in groups of 128 MiB: 1 GiB chunks at 0, 1, 2 and 3 GiB (open-ended).
TrimLayout linearLayout() {
    TrimLayout layout;
    layout.fsBytes = 4 * kGiB;
    layout.alignment = 128 * kMiB;
    return layout;
}

JobOptions chunked(std::uint64_t rateLimit = 0) {
    JobOptions options;
    options.chunkSize = kGiB;
    options.rateLimit = rateLimit;
    return options;
}

struct Harness {
    explicit Harness(State state = {}, EngineOptions options = {})
        : engine({fitrim, clock, events, events}, std::move(state), options) {}

    std::uint64_t trim(std::vector<std::string> mountPoints, JobOptions options = chunked()) {
        const std::uint64_t id = engine.enqueue(std::move(mountPoints), options);
        engine.kick();
        return id;
    }
    void prepared(TrimLayout layout = linearLayout()) {
        REQUIRE(fitrim.preparing);
        fitrim.preparing.reset();
        fitrim.open = true;
        engine.onPrepared({layout, {}});
    }
    // The chunk in flight returns after `took`.
    void chunkDone(std::uint64_t trimmed = 100 * kMiB, int error = 0,
                   Microseconds took = Microseconds{1'000'000}) {
        REQUIRE(fitrim.chunk);
        fitrim.chunk.reset();
        clock.advance(took);
        engine.onChunkDone({error, trimmed, took, freeAfterChunk});
    }
    [[nodiscard]] std::uint64_t chunkStart() const {
        REQUIRE(fitrim.chunk);
        return fitrim.chunk->start;
    }
    [[nodiscard]] const FilesystemHistory& history(const std::string& mountPoint) const {
        return engine.state().filesystems.at("uuid-of-" + mountPoint);
    }

    FakeClock clock;
    FakeFitrim fitrim;
    Recorder events;
    Engine engine;
    std::uint64_t freeAfterChunk = kGiB; // what the worker's fstatvfs finds
};

} // namespace

TEST_CASE("a job trims its filesystems chunk by chunk and finishes with success") {
    Harness h;
    const std::uint64_t job = h.engine.enqueue({"/a", "/b"}, chunked());
    CHECK(h.engine.jobState(job) == JobState::Queued);
    CHECK(h.fitrim.calls.empty()); // not before start()
    h.engine.start();
    h.engine.kick();
    CHECK(h.events.started == std::vector<std::uint64_t>{job});
    CHECK(h.engine.jobState(job) == JobState::Running);
    CHECK(h.engine.engineState() == EngineState::Trimming);
    h.prepared();
    for (std::uint64_t chunk = 0; chunk < 4; ++chunk) {
        CHECK(h.chunkStart() == chunk * kGiB);
        h.freeAfterChunk = (chunk + 1) * kGiB;
        h.chunkDone();
    }
    REQUIRE(h.events.filesystems.size() == 1);
    CHECK(h.events.filesystems[0].trim.outcome == TrimOutcome::Success);
    CHECK(h.events.filesystems[0].trim.trimmedBytes == 400 * kMiB);
    CHECK(h.events.filesystems[0].trim.calls == 4);
    CHECK(h.history("/a").resumeFrom == 0);
    CHECK(h.history("/a").trimCount == 1);
    // The baseline for early trims: the free space the last chunk measured.
    CHECK(h.events.filesystems[0].trim.freeBytes == 4 * kGiB);
    CHECK(h.history("/a").freeBytesAtLastTrim == 4 * kGiB);
    h.prepared();
    while (h.fitrim.chunk)
        h.chunkDone();
    REQUIRE(h.events.finished.size() == 1);
    CHECK(h.events.finished[0].result == JobResult::Success);
    CHECK(h.events.finished[0].trimmedBytes == 800 * kMiB);
    CHECK(h.engine.state().lastRun.result == JobResult::Success);
    CHECK_FALSE(h.engine.state().pendingJob);
    CHECK_FALSE(h.engine.jobState(job));
    CHECK(h.engine.engineState() == EngineState::Idle);
    CHECK(h.fitrim.calls.back() == "release");
}

TEST_CASE("Suspend then Resume while a chunk blocks: the job goes on when it returns") {
    Harness h;
    h.engine.start();
    const std::uint64_t job = h.trim({"/a"});
    h.prepared();
    h.chunkDone();
    REQUIRE(h.chunkStart() == kGiB); // blocks
    h.engine.suspend();
    CHECK(h.engine.jobState(job) == JobState::Suspending);
    CHECK(h.engine.engineState() == EngineState::Suspended);
    h.engine.resume();
    CHECK(h.engine.jobState(job) == JobState::Running);
    h.chunkDone();
    CHECK(h.chunkStart() == 2 * kGiB);
    while (h.fitrim.chunk)
        h.chunkDone();
    REQUIRE(h.events.finished.size() == 1);
    CHECK(h.events.finished[0].result == JobResult::Success);
}

TEST_CASE("Resume racing a Suspend in any order never stalls the queue") {
    // Every interleaving of Suspend, Resume and the chunk's return.
    for (int order = 0; order < 3; ++order) {
        Harness h;
        h.engine.start();
        h.trim({"/a"});
        h.prepared();
        h.engine.suspend();
        if (order == 0)
            h.chunkDone(); // returns before Resume: stops at the boundary
        h.engine.resume();
        if (order == 1)
            h.chunkDone();
        if (order == 2) {
            h.engine.suspend();
            h.engine.resume();
            h.chunkDone();
        }
        if (h.fitrim.preparing)
            h.prepared();
        for (int guard = 0; h.fitrim.chunk && guard < 10; ++guard)
            h.chunkDone();
        INFO("order " << order);
        REQUIRE(h.events.finished.size() == 1);
        CHECK(h.events.finished[0].result == JobResult::Success);
    }
}

TEST_CASE("Suspend stops at the chunk boundary, remembers the cursor, Resume continues there") {
    Harness h;
    h.engine.start();
    const std::uint64_t job = h.trim({"/a"});
    h.prepared();
    h.chunkDone();
    h.engine.suspend();
    h.chunkDone(); // the chunk in flight ends; no new one
    CHECK_FALSE(h.fitrim.outstanding());
    CHECK(h.fitrim.calls.back() == "release");
    CHECK(h.engine.jobState(job) == JobState::Suspended);
    CHECK(h.history("/a").resumeFrom == 2 * kGiB);
    CHECK(h.history("/a").lastTrimMessage ==
          "suspended at offset 2147483648; it continues from there");
    CHECK(h.events.saved->suspended);
    REQUIRE(h.events.saved->pendingJob);
    CHECK(h.events.saved->pendingJob->id == job);
    CHECK(h.events.finished.empty());
    h.engine.resume();
    h.prepared();
    CHECK(h.chunkStart() == 2 * kGiB);
}

TEST_CASE("Cancel of a queued job ends it at once; the running one goes on") {
    Harness h;
    h.engine.start();
    const std::uint64_t first = h.trim({"/a"});
    const std::uint64_t second = h.trim({"/b"});
    CHECK(h.engine.queuedJobIds() == std::vector<std::uint64_t>{second});
    h.engine.cancel(second);
    REQUIRE(h.events.finished.size() == 1);
    CHECK(h.events.finished[0].id == second);
    CHECK(h.events.finished[0].result == JobResult::Cancelled);
    CHECK_FALSE(h.events.finished[0].started);
    CHECK(h.engine.jobState(first) == JobState::Running);
    h.prepared();
    while (h.fitrim.chunk)
        h.chunkDone();
    CHECK(h.events.finished.back().result == JobResult::Success);
    CHECK(h.engine.state().lastRun.result == JobResult::Success);
}

TEST_CASE("Cancel of the running job waits for its chunk, keeps the cursor, runs nothing more") {
    Harness h;
    h.engine.start();
    const std::uint64_t job = h.trim({"/a", "/b"});
    h.prepared();
    h.chunkDone();
    h.engine.cancel(0);
    CHECK(h.engine.jobState(job) == JobState::Cancelling);
    CHECK(h.events.finished.empty());
    h.chunkDone();
    CHECK_FALSE(h.fitrim.outstanding());
    REQUIRE(h.events.filesystems.size() == 1);
    CHECK(h.events.filesystems[0].trim.outcome == TrimOutcome::Cancelled);
    CHECK(h.events.filesystems[0].trim.resumeFrom == 2 * kGiB);
    CHECK(h.history("/a").resumeFrom == 2 * kGiB);
    REQUIRE(h.events.finished.size() == 1);
    CHECK(h.events.finished[0].result == JobResult::Cancelled);
    CHECK_FALSE(h.engine.state().pendingJob);
    CHECK(thrownCode([&] { h.engine.cancel(job); }) == "NoSuchJob");
    // The next trim of /a continues from the cursor.
    h.trim({"/a"});
    h.prepared();
    CHECK(h.chunkStart() == 2 * kGiB);
}

TEST_CASE("Cancel with nothing running, or of an unknown job, is NoSuchJob") {
    Harness h;
    h.engine.start();
    CHECK(thrownCode([&] { h.engine.cancel(0); }) == "NoSuchJob");
    CHECK(thrownCode([&] { h.engine.cancel(42); }) == "NoSuchJob");
}

TEST_CASE("a failure midway keeps the last good cursor") {
    Harness h;
    h.engine.start();
    h.trim({"/a"});
    h.prepared();
    h.chunkDone();
    h.chunkDone();
    h.chunkDone(0, EIO);
    REQUIRE(h.events.filesystems.size() == 1);
    CHECK(h.events.filesystems[0].trim.outcome == TrimOutcome::Failed);
    CHECK(h.events.filesystems[0].trim.message ==
          "FITRIM at offset 2147483648: Input/output error");
    CHECK(h.history("/a").resumeFrom == 2 * kGiB);
    CHECK(h.events.finished.back().result == JobResult::Failed);
    // A failure to open keeps it too.
    h.trim({"/a"});
    REQUIRE(h.fitrim.preparing);
    h.fitrim.preparing.reset();
    h.engine.onPrepared({std::nullopt, "open /a: Permission denied"});
    CHECK(h.history("/a").resumeFrom == 2 * kGiB);
    CHECK(h.history("/a").lastTrimMessage == "open /a: Permission denied");
}

TEST_CASE("FITRIM not supported ends the filesystem as unsupported, the job goes on") {
    Harness h;
    h.engine.start();
    h.trim({"/a", "/b"});
    h.prepared();
    h.chunkDone(0, EOPNOTSUPP);
    CHECK(h.events.filesystems[0].trim.outcome == TrimOutcome::Unsupported);
    h.prepared();
    while (h.fitrim.chunk)
        h.chunkDone();
    CHECK(h.events.finished.back().result == JobResult::Success);
}

TEST_CASE("the cursor is saved at chunk boundaries at most every cursorSaveInterval") {
    EngineOptions options;
    options.cursorSaveInterval = Microseconds{5'000'000};
    Harness h({}, options);
    h.engine.start();
    h.trim({"/a"});
    TrimLayout big;
    big.fsBytes = 100 * kGiB;
    big.alignment = 128 * kMiB;
    h.prepared(big);
    // Chunks of one second: the job's start saved, then one save per 5 s.
    const int before = h.events.saves;
    std::vector<std::uint64_t> savedCursors;
    for (int chunk = 0; chunk < 12; ++chunk) {
        const int saves = h.events.saves;
        h.chunkDone();
        if (h.events.saves > saves)
            savedCursors.push_back(h.events.saved->filesystems.at("uuid-of-/a").resumeFrom);
    }
    CHECK(h.events.saves - before == 2);
    CHECK(savedCursors == std::vector<std::uint64_t>{5 * kGiB, 10 * kGiB});
    REQUIRE(h.events.saved->pendingJob);
    CHECK(h.events.saved->pendingJob->mountPoints == std::vector<std::string>{"/a"});
}

TEST_CASE("after a crash the job resumes from the saved cursor once BootDelay has passed") {
    State onDisk;
    std::uint64_t job = 0;
    {
        Harness h;
        h.engine.start();
        job = h.trim({"/a", "/b"});
        h.prepared();
        h.chunkDone(100 * kMiB, 0, Microseconds{6'000'000}); // saved: 5 s since the start
        h.chunkDone(); // cursor 2 GiB in memory, 1 GiB saved (throttled)
        onDisk = *h.events.saved;
        // kill -9: nothing more is saved.
    }
    CHECK(onDisk.filesystems.at("uuid-of-/a").resumeFrom == kGiB);
    EngineOptions options;
    options.bootDelay = Microseconds{300'000'000};
    Harness after(onDisk, options);
    after.clock.reading.sinceBoot = Microseconds{10'000'000}; // 10 s after boot
    after.engine.start();
    CHECK(after.engine.jobState(job) == JobState::Queued);
    CHECK(after.fitrim.calls.empty());
    REQUIRE(after.events.wake);
    CHECK(*after.events.wake == Microseconds{300'000'000});
    after.clock.advance(Microseconds{290'000'000});
    after.engine.onWake();
    CHECK(after.events.started == std::vector<std::uint64_t>{job});
    after.prepared();
    CHECK(after.chunkStart() == kGiB);
    while (after.fitrim.chunk)
        after.chunkDone();
    CHECK(after.events.filesystems[0].trim.trimmedBytes == 300 * kMiB); // the rest only
    after.prepared();
    while (after.fitrim.chunk)
        after.chunkDone();
    CHECK(after.events.finished.back().id == job);
    CHECK(after.events.finished.back().result == JobResult::Success);
    CHECK(after.engine.state().nextJobId > job);
}

TEST_CASE("shutdown mid-chunk ends the chunk, saves the cursor, then reports stopped") {
    Harness h;
    h.engine.start();
    const std::uint64_t job = h.trim({"/a"});
    h.prepared();
    h.chunkDone();
    h.engine.shutdown();
    CHECK_FALSE(h.events.stoppedCalled);
    CHECK_THROWS_AS(h.engine.enqueue({"/b"}, chunked()), Error);
    h.chunkDone();
    CHECK_FALSE(h.fitrim.outstanding());
    CHECK(h.events.stoppedCalled);
    CHECK(h.events.saved->filesystems.at("uuid-of-/a").resumeFrom == 2 * kGiB);
    REQUIRE(h.events.saved->pendingJob);
    CHECK(h.events.saved->pendingJob->id == job);
    CHECK(h.events.finished.empty());
}

TEST_CASE("shutdown with nothing in flight stops at once") {
    Harness h;
    h.engine.start();
    h.engine.shutdown();
    CHECK(h.events.stoppedCalled);
}

TEST_CASE("the rate limit waits between chunks, never before the first") {
    Harness h;
    h.engine.start();
    h.trim({"/a"}, chunked(100 * kMiB));
    h.prepared();
    CHECK(h.chunkStart() == 0);
    const Microseconds started = h.clock.reading.sinceBoot;
    h.chunkDone(200 * kMiB, 0, Microseconds{500'000});
    CHECK_FALSE(h.fitrim.chunk); // 200 MiB at 100 MiB/s: until 2 s after the start
    REQUIRE(h.events.wake);
    CHECK(*h.events.wake == started + Microseconds{2'000'000});
    CHECK(h.engine.engineState() == EngineState::Trimming);
    h.clock.advance(Microseconds{1'500'000});
    h.engine.onWake();
    CHECK(h.chunkStart() == kGiB);
}

TEST_CASE("Suspend during a rate-limit wait stops at once") {
    Harness h;
    h.engine.start();
    const std::uint64_t job = h.trim({"/a"}, chunked(100 * kMiB));
    h.prepared();
    h.chunkDone(200 * kMiB);
    REQUIRE_FALSE(h.fitrim.chunk);
    h.engine.suspend();
    CHECK(h.engine.jobState(job) == JobState::Suspended);
    CHECK(h.history("/a").resumeFrom == kGiB);
}

TEST_CASE("a policy can shrink the chunk and defer a filesystem") {
    struct Pacing final : ChunkPolicy {
        ChunkDecision beforeChunk(const ChunkContext& context) override {
            ChunkDecision decision;
            decision.chunkSize = 256 * kMiB;
            if (context.cursor >= 512 * kMiB) {
                decision.defer = true;
                decision.reason = "the disk is busy";
            }
            return decision;
        }
    } pacing;
    Harness h;
    h.engine.addPolicy(pacing);
    h.engine.start();
    h.trim({"/a", "/b"});
    h.prepared();
    CHECK(h.fitrim.chunk->length == 256 * kMiB);
    h.chunkDone();
    h.chunkDone();
    REQUIRE(h.events.filesystems.size() == 1);
    CHECK(h.events.filesystems[0].trim.outcome == TrimOutcome::Skipped);
    CHECK(h.events.filesystems[0].trim.message == "the disk is busy");
    CHECK(h.history("/a").resumeFrom == 512 * kMiB);
    CHECK(h.fitrim.preparing->mountPoint == "/b");
}

TEST_CASE("of the chunk sizes policies ask for, the smallest is taken, whatever their order") {
    struct FixedSize final : ChunkPolicy {
        explicit FixedSize(std::uint64_t asked) : size(asked) {}
        ChunkDecision beforeChunk(const ChunkContext&) override {
            ChunkDecision decision;
            decision.chunkSize = size;
            return decision;
        }
        std::uint64_t size;
    } small(128 * kMiB), large(512 * kMiB);
    Harness h;
    h.engine.addPolicy(small);
    h.engine.addPolicy(large);
    h.engine.start();
    h.trim({"/a"});
    h.prepared();
    CHECK(h.fitrim.chunk->length == 128 * kMiB);
    // A policy growing the chunk back is heard when no other asks for less.
    small.size = 2 * kGiB;
    h.chunkDone(128 * kMiB);
    CHECK(h.fitrim.chunk->length == 512 * kMiB);
}

TEST_CASE("system sleep pauses at the chunk boundary without suspending; wake-up continues") {
    Harness h;
    h.engine.start();
    const std::uint64_t job = h.trim({"/a"});
    h.prepared();
    h.engine.pauseForSleep();
    CHECK(h.engine.jobState(job) == JobState::Suspending);
    CHECK(h.engine.busy());
    h.chunkDone();
    CHECK_FALSE(h.engine.busy());
    CHECK(h.engine.jobState(job) == JobState::Suspended);
    CHECK_FALSE(h.events.saved->suspended);
    CHECK(h.history("/a").resumeFrom == kGiB);
    h.engine.resumeAfterSleep();
    h.prepared();
    CHECK(h.chunkStart() == kGiB);
}

TEST_CASE("an unmount under a running trim fails that filesystem once its chunk returns") {
    Harness h;
    h.engine.start();
    h.trim({"/a", "/b"});
    h.prepared();
    h.engine.mountGone("/b"); // not the one running
    h.engine.mountGone("/a");
    CHECK(h.fitrim.chunk);
    h.chunkDone();
    REQUIRE(h.events.filesystems.size() == 1);
    CHECK(h.events.filesystems[0].trim.outcome == TrimOutcome::Failed);
    CHECK(h.events.filesystems[0].trim.message == "/a was unmounted during the trim");
    CHECK(h.fitrim.preparing->mountPoint == "/b");
}

TEST_CASE("a mount point gone before its turn is skipped") {
    Harness h;
    h.events.gone["/a"] = true;
    h.engine.start();
    h.trim({"/a"});
    REQUIRE(h.events.filesystems.size() == 1);
    CHECK(h.events.filesystems[0].trim.outcome == TrimOutcome::Skipped);
    CHECK(h.events.finished.back().result == JobResult::Success);
    CHECK(h.fitrim.calls.empty());
}

TEST_CASE("a dry run plans and issues no FITRIM, and is no history") {
    Harness h;
    h.engine.start();
    JobOptions options = chunked();
    options.dryRun = true;
    h.trim({"/a"}, options);
    h.prepared();
    CHECK_FALSE(h.fitrim.chunk);
    REQUIRE(h.events.filesystems.size() == 1);
    CHECK(h.events.filesystems[0].trim.message == "dry run: would issue 4 calls over 4.0 GiB");
    CHECK(h.engine.state().filesystems.empty());
    CHECK(h.engine.state().lastRun.result == std::nullopt);
}

TEST_CASE("the queue is capped with a clear error") {
    EngineOptions options;
    options.maxQueuedJobs = 2;
    Harness h({}, options);
    h.engine.enqueue({"/a"}, chunked());
    h.engine.enqueue({"/a"}, chunked());
    try {
        h.engine.enqueue({"/a"}, chunked());
        FAIL("a third job was queued");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("queue is full") != std::string::npos);
    }
}

TEST_CASE("btrfs chunks cover whole block groups, the last one open-ended") {
    TrimLayout layout;
    layout.groups = {{1 * kMiB, 8 * kMiB},
                     {13 * kMiB, 256 * kMiB},
                     {269 * kMiB, kGiB},
                     {269 * kMiB + kGiB, kGiB}};
    layout.fsBytes = rangeEnd(layout.groups.back());
    CHECK(nextChunk(layout, 0, 256 * kMiB) == TrimRange{1 * kMiB, 268 * kMiB});
    CHECK(nextChunk(layout, 269 * kMiB, 256 * kMiB) == TrimRange{269 * kMiB, kGiB});
    const TrimRange last = nextChunk(layout, 269 * kMiB + kGiB, 256 * kMiB);
    CHECK(last.start == 269 * kMiB + kGiB);
    CHECK(rangeEnd(last) == kTrimDone);
    CHECK(rangeEnd(nextChunk(layout, 0, 0)) == kTrimDone); // ChunkSize=0: one call
}

TEST_CASE("job results and engine states have their D-Bus names") {
    CHECK(jobResultName(JobResult::Partial) == "partial");
    CHECK(kJobResults.find("cancelled") == JobResult::Cancelled);
    CHECK_FALSE(kJobResults.find("never"));
    CHECK(engineStateName(EngineState::Trimming) == "trimming");
}

TEST_CASE("a receipt the owner measured goes into the history of recorded trims only") {
    Harness h;
    FilesystemReport report;
    report.mountPoint = "/a";
    report.mount = Mount{};
    report.mount->mountPoint = "/a";
    report.mount->uuid = "uuid-of-/a";
    report.trim.reachedDiskBytes = 4096;
    h.engine.recordReceipt(report); // a dry run's report: no history
    CHECK_FALSE(h.engine.state().filesystems.contains("uuid-of-/a"));
    report.recorded = true;
    h.engine.recordReceipt(report);
    CHECK(h.history("/a").lastReachedDiskBytes == 4096u);
    CHECK(h.engine.state().totalReachedDiskBytes == 4096u);
}
