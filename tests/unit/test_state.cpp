// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/error.h"
#include "catch.h"
#include "fixture_paths.h"
#include "state/state.h"
#include "temp_dir.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <grp.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace thintrim;
using namespace std::chrono_literals;
using thintrim::test::Contains;

namespace {

constexpr std::uint64_t GiB = 1ULL << 30;

std::string readFile(const std::filesystem::path& path) {
    std::ifstream file(path, std::ios::binary);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

void writeFile(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

State sampleState();

// Saves sampleState() to `dir` in a child process running as uid/gid 65534
// (the caller must be root). Returns "error: " and the exception's message,
// "saved" when the save succeeded, or what went wrong in the child.
std::string saveAsNobody(const std::filesystem::path& dir) {
    int fds[2];
    if (::pipe(fds) != 0)
        return "pipe failed";
    pid_t pid = ::fork();
    if (pid < 0)
        return "fork failed";
    if (pid == 0) {
        ::close(fds[0]);
        std::string result;
        struct stat st {};
        if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0) {
            result = "cannot drop to uid 65534";
        } else if (::geteuid() != 65534 || ::stat(dir.c_str(), &st) != 0) {
            // Either the drop did not hold, or a parent of the temp dir is
            // closed to 65534: a Permission denied would not be the one tested.
            result = "uid 65534 cannot reach " + dir.string();
        } else {
            try {
                StateStore(dir).save(sampleState());
                result = "saved";
            } catch (const Error& e) {
                result = std::string("error: ") + e.what();
            } catch (const std::exception& e) {
                result = std::string("other exception: ") + e.what();
            }
        }
        ssize_t ignored = ::write(fds[1], result.data(), result.size());
        (void)ignored;
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string result;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
        result.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        result += " (child did not exit 0)";
    return result;
}

// Names in `dir`, sorted.
std::vector<std::string> listDir(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

State sampleState() {
    State state;
    state.suspended = true;
    state.nextJobId = 17;
    state.totalTrimmedBytes = 5 * GiB;
    state.totalReachedDiskBytes = 4 * GiB;
    state.lastRun = {1'700'000'000'000'000us, 1'700'000'090'000'000us, 2 * GiB, JobResult::Success,
                     GiB};
    state.pendingJob = PendingJob{16, {"/home", "/var/lib/docker"}, {false, 4096, GiB, 50 << 20}};

    FilesystemHistory root;
    root.mountPoint = "/";
    root.lastTrimStarted = 1'700'000'000'000'000us;
    root.lastTrimFinished = 1'700'000'060'000'000us;
    root.lastTrimmedBytes = GiB;
    root.lastTrimDuration = 60s;
    root.lastTrimResult = TrimOutcome::Success;
    root.lastCompleted = root.lastTrimFinished;
    root.freeBytesAtLastTrim = 7 * GiB;
    root.totalTrimmedBytes = 3 * GiB;
    root.trimCount = 3;
    root.lastReachedDiskBytes = 0; // swallowed: zero is a value, not "unknown"
    root.totalReachedDiskBytes = 2 * GiB;
    root.lastVerifyResult = VerifyVerdict::Dropped;
    root.lastVerifyTime = 1'700'000'100'000'000us;
    root.lastVerifyMessage = "the hypervisor drops discards";
    state.filesystems["0b6c5a3e-1111-4e2a-9d53-1c2a3b4c5d6e"] = root;

    FilesystemHistory home;
    home.mountPoint = "/home";
    home.lastTrimResult = TrimOutcome::Cancelled;
    home.lastTrimMessage = "cancelled by \"thintrim cancel\"\n";
    home.resumeFrom = 4 * GiB;
    home.freeBytesAtLastTrim = 0; // a full filesystem: zero is a value, not "unknown"
    state.filesystems["/dev/vdb"] = home;
    return state;
}

// Checks that `dir` holds exactly one file moved aside, and returns its name.
std::string movedAsideName(const std::filesystem::path& dir) {
    auto names = listDir(dir);
    REQUIRE(names.size() == 1);
    CHECK_THAT(names[0], thintrim::test::StartsWith("state.json.corrupt-"));
    return names[0];
}

} // namespace

TEST_CASE("a missing state file is an empty state, quietly") {
    thintrim::test::TempDir dir{"thintrim-state"};
    auto loaded = StateStore(dir.path()).load();
    CHECK(loaded.state == State{});
    CHECK_FALSE(loaded.warning);
    CHECK(loaded.state.nextJobId == 1);
    CHECK(loaded.state.lastRun.resultName() == "never");
}

TEST_CASE("state survives a save and a load") {
    thintrim::test::TempDir dir{"thintrim-state"};
    StateStore store(dir.path());
    CHECK(store.path() == dir.path() / "state.json");
    State state = sampleState();
    store.save(state);
    auto loaded = store.load();
    CHECK_FALSE(loaded.warning);
    CHECK(loaded.state == state);

    // And a second save over the first.
    state.suspended = false;
    state.pendingJob.reset();
    store.save(state);
    CHECK(store.load().state == state);
}

TEST_CASE("the file is versioned, readable JSON") {
    thintrim::test::TempDir dir{"thintrim-state"};
    StateStore store(dir.path());
    store.save(sampleState());
    auto document = nlohmann::json::parse(readFile(store.path()));
    CHECK(document.at("version") == 1);
    CHECK(document.at("filesystems").at("/dev/vdb").at("mount_point") == "/home");
    CHECK(document.at("filesystems").at("/dev/vdb").at("last_trim_result") == "cancelled");
}

TEST_CASE("a file written by this version is read") {
    thintrim::test::TempDir dir{"thintrim-state"};
    std::filesystem::copy_file(test::testData("state/history-v1.json"), dir.path() / "state.json");
    auto loaded = StateStore(dir.path()).load();
    CHECK_FALSE(loaded.warning);
    const State& state = loaded.state;
    CHECK(state.suspended);
    CHECK(state.nextJobId == 42);
    CHECK(state.totalTrimmedBytes == 3 * GiB);
    CHECK(state.lastRun.result == JobResult::Success);
    REQUIRE(state.pendingJob);
    CHECK(state.pendingJob->mountPoints == std::vector<std::string>{"/home", "/var"});
    CHECK(state.pendingJob->options.rateLimit == 100 << 20);
    const auto& root = state.filesystems.at("0b6c5a3e-1111-4e2a-9d53-1c2a3b4c5d6e");
    CHECK(root.lastTrimResultName() == "success");
    CHECK(root.lastTrimDuration == 60s);
    CHECK(root.freeBytesAtLastTrim == 5 * GiB);
    CHECK(root.trimCount == 3);
    // Members left out take their defaults.
    const auto& home = state.filesystems.at("/dev/vdb");
    CHECK(home.resumeFrom == 4 * GiB);
    CHECK(home.lastTrimStarted == 0us);
    CHECK_FALSE(home.freeBytesAtLastTrim);
}

TEST_CASE("a save leaves no temporary file behind") {
    thintrim::test::TempDir dir{"thintrim-state"};
    StateStore(dir.path()).save(sampleState());
    CHECK(listDir(dir.path()) == std::vector<std::string>{"state.json"});
}

TEST_CASE("a temporary file left by a crash is ignored and then replaced") {
    thintrim::test::TempDir dir{"thintrim-state"};
    StateStore store(dir.path());
    State state = sampleState();
    store.save(state);
    // What a crash between writing and renaming leaves.
    writeFile(dir.path() / "state.json.tmp", "{\"version\": 1, \"filesystems\": {\"/dev/vd");

    auto loaded = store.load();
    CHECK_FALSE(loaded.warning);
    CHECK(loaded.state == state);

    state.totalTrimmedBytes += 1;
    store.save(state);
    CHECK(listDir(dir.path()) == std::vector<std::string>{"state.json"});
    CHECK(store.load().state == state);
}

TEST_CASE("an unusable state file is moved aside with a warning, never fatal") {
    auto [file, problem] = GENERATE(values<std::pair<std::string, std::string>>({
        {"garbage.json", "is not valid JSON"},
        {"truncated.json", "is not valid JSON"},
        {"wrong-types.json", "\"suspended\" must be true or false"},
        {"wrong-version.json", "version 2 is not 1"},
        {"no-version.json", "no \"version\""},
        {"not-an-object.json", "must be an object"},
        {"unknown-result.json", "not a trim result: \"exploded\""},
    }));
    INFO(file);
    thintrim::test::TempDir dir{"thintrim-state"};
    std::filesystem::path original = test::testData("state/" + file);
    std::filesystem::copy_file(original, dir.path() / "state.json");
    StateStore store(dir.path());

    auto loaded = store.load();
    CHECK(loaded.state == State{});
    REQUIRE(loaded.warning);
    CHECK_THAT(*loaded.warning, Contains(store.path().string()) && Contains(problem));
    std::string aside = movedAsideName(dir.path());
    CHECK_THAT(*loaded.warning, Contains("moved it to " + (dir.path() / aside).string()));
    // Kept byte for byte for a person to look at.
    CHECK(readFile(dir.path() / aside) == readFile(original));

    // The daemon goes on and saves a clean state beside it.
    store.save(sampleState());
    CHECK(store.load().state == sampleState());
    CHECK(listDir(dir.path()).size() == 2);
}

TEST_CASE("an unreadable state file is moved aside too") {
    thintrim::test::TempDir dir{"thintrim-state"};
    StateStore store(dir.path());
    std::filesystem::create_directory(store.path()); // reading a directory fails with EISDIR
    auto loaded = store.load();
    CHECK(loaded.state == State{});
    REQUIRE(loaded.warning);
    CHECK_THAT(*loaded.warning, Contains("cannot be read"));
    movedAsideName(dir.path());
}

TEST_CASE("repeated corruption keeps every copy") {
    thintrim::test::TempDir dir{"thintrim-state"};
    StateStore store(dir.path());
    for (int i = 0; i < 3; ++i) {
        writeFile(store.path(), "not json " + std::to_string(i));
        CHECK(store.load().warning);
    }
    CHECK(listDir(dir.path()).size() == 3);
}

TEST_CASE("a state that cannot be written is an error naming the path") {
    SECTION("the directory does not exist") {
        thintrim::test::TempDir dir{"thintrim-state"};
        std::filesystem::path missing = dir.path() / "missing";
        try {
            StateStore(missing).save(sampleState());
            FAIL("saved into a missing directory");
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::Failed);
            CHECK_THAT(e.what(), Contains(missing.string()) && Contains("No such file"));
        }
    }
    SECTION("the directory is a file") {
        thintrim::test::TempDir dir{"thintrim-state"};
        std::filesystem::path file = dir.path() / "file";
        writeFile(file, "");
        CHECK_THROWS_WITH(StateStore(file).save(sampleState()), Contains(file.string()));
    }
    SECTION("the temporary file cannot be created") {
        thintrim::test::TempDir dir{"thintrim-state"};
        std::filesystem::create_directory(dir.path() / "state.json.tmp");
        try {
            StateStore(dir.path()).save(sampleState());
            FAIL("saved over a directory");
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::Failed);
            CHECK_THAT(e.what(), Contains((dir.path() / "state.json.tmp").string()));
        }
    }
    SECTION("the rename fails: the old state and no temporary file remain") {
        thintrim::test::TempDir dir{"thintrim-state"};
        StateStore store(dir.path());
        std::filesystem::create_directories(store.path() / "occupied");
        try {
            store.save(sampleState());
            FAIL("renamed over a non-empty directory");
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::Failed);
            CHECK_THAT(e.what(), Contains(store.path().string()));
        }
        CHECK(listDir(dir.path()) == std::vector<std::string>{"state.json"});
        CHECK(std::filesystem::is_directory(store.path() / "occupied"));
    }
    SECTION("the directory is read-only") {
        // Root writes into a read-only directory anyway: as root the save
        // runs in a child that owns the directory and has dropped to
        // uid/gid 65534, so the case checks the same thing for everyone.
        thintrim::test::TempDir dir{"thintrim-state"};
        std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_read |
                                                     std::filesystem::perms::owner_exec);
        if (::geteuid() != 0) {
            CHECK_THROWS_WITH(StateStore(dir.path()).save(sampleState()),
                              Contains(dir.path().string()) && Contains("Permission denied"));
        } else {
            REQUIRE(::chown(dir.path().c_str(), 65534, 65534) == 0);
            std::string message = saveAsNobody(dir.path());
            INFO("the child reported: " << message);
            REQUIRE(message.rfind("error: ", 0) == 0);
            CHECK_THAT(message, Contains(dir.path().string()) && Contains("Permission denied"));
            CHECK(listDir(dir.path()).empty());
        }
    }
}

TEST_CASE("identities and mount points with odd characters survive") {
    thintrim::test::TempDir dir{"thintrim-state"};
    StateStore store(dir.path());
    State state;
    std::vector<std::string> identities = {
        "server:/export/home",
        "/dev/mapper/vg0-root",
        "/dev/disk/by-label/my disk",
        "quote\"back\\slash",
        "tab\tnew\nline",
        "caf\xc3\xa9 \xe2\x9c\x93",
        std::string("nul\0inside", 10),
        "",
    };
    for (const auto& identity : identities)
        state.filesystems[identity].mountPoint = "/mnt/" + identity;
    store.save(state);
    auto loaded = store.load();
    CHECK_FALSE(loaded.warning);
    CHECK(loaded.state == state);
}

TEST_CASE("a name that is not UTF-8 does not stop saving") {
    thintrim::test::TempDir dir{"thintrim-state"};
    StateStore store(dir.path());
    State state;
    state.filesystems["/dev/vdc"].mountPoint = "/mnt/latin1-caf\xe9";
    state.filesystems["/dev/vdc"].trimCount = 2;
    CHECK_NOTHROW(store.save(state));
    auto loaded = store.load();
    CHECK_FALSE(loaded.warning);
    CHECK(loaded.state.filesystems.at("/dev/vdc").trimCount == 2);
}

TEST_CASE("recording trims keeps history and totals") {
    State state;
    const std::string identity = "0b6c5a3e-1111-4e2a-9d53-1c2a3b4c5d6e";
    const Microseconds start = 1'700'000'000'000'000us;

    TrimReport done{TrimOutcome::Success, 2 * GiB, 30s, "", 0, 3, GiB, 10 * GiB};
    state.recordTrim(identity, "/", start, done);
    const FilesystemHistory& history = state.filesystems.at(identity);
    CHECK(history.mountPoint == "/");
    CHECK(history.lastTrimStarted == start);
    CHECK(history.lastTrimFinished == start + 30s);
    CHECK(history.lastTrimDuration == 30s);
    CHECK(history.lastTrimmedBytes == 2 * GiB);
    CHECK(history.lastTrimResultName() == "success");
    CHECK(history.lastCompleted == start + 30s);
    CHECK(history.freeBytesAtLastTrim == 10 * GiB);
    CHECK(history.trimCount == 1);
    CHECK(history.totalTrimmedBytes == 2 * GiB);
    CHECK(state.totalTrimmedBytes == 2 * GiB);
    CHECK(history.lastReachedDiskBytes == GiB);
    CHECK(history.totalReachedDiskBytes == GiB);
    CHECK(state.totalReachedDiskBytes == GiB);

    // A cancel keeps its position and does not count as completed.
    TrimReport cancelled{TrimOutcome::Cancelled, GiB, 10s, "cancelled", 5 * GiB, 5, {}, 12 * GiB};
    state.recordTrim(identity, "/", start + 1h, cancelled);
    CHECK(history.lastTrimResultName() == "cancelled");
    CHECK(history.resumeFrom == 5 * GiB);
    CHECK(history.lastCompleted == start + 30s);
    CHECK(history.freeBytesAtLastTrim == 10 * GiB);
    CHECK(history.trimCount == 1);
    CHECK(history.totalTrimmedBytes == 3 * GiB);
    CHECK(state.totalTrimmedBytes == 3 * GiB);
    // Not measured: no receipt, the totals stay.
    CHECK_FALSE(history.lastReachedDiskBytes);
    CHECK(history.totalReachedDiskBytes == GiB);

    // Unsupported completes (retrying soon would not help) but trims nothing.
    TrimReport unsupported{
        TrimOutcome::Unsupported, 0, 1ms, "Operation not supported", 0, 1, {}, 11 * GiB};
    state.recordTrim(identity, "/mnt", start + 2h, unsupported);
    CHECK(history.mountPoint == "/mnt");
    CHECK(history.resumeFrom == 0);
    CHECK(history.lastCompleted == start + 2h + 1ms);
    CHECK(history.freeBytesAtLastTrim == 11 * GiB);
    CHECK(history.trimCount == 1);

    // Free space unknown (fstatvfs failed): no baseline, so no early trim,
    // rather than a baseline of 0 that would make every byte look freed.
    TrimReport unmeasured{TrimOutcome::Success, GiB, 10s, "", 0, 1, {}, {}};
    state.recordTrim(identity, "/mnt", start + 3h, unmeasured);
    CHECK_FALSE(history.freeBytesAtLastTrim);
}

TEST_CASE("recording a verify keeps its verdict, time and message") {
    State state;
    VerifyReport report;
    report.verdict = VerifyVerdict::Passes;
    report.message = "8 MiB no longer hold the probe";
    state.recordVerify("id", "/srv", 1'700'000'000'000'000us, report);
    const FilesystemHistory& history = state.filesystems.at("id");
    CHECK(history.lastVerifyResultName() == "passes");
    CHECK(history.lastVerifyTime == 1'700'000'000'000'000us);
    CHECK(history.lastVerifyMessage == report.message);
    CHECK(history.lastTrimResultName() == "never");
    CHECK(FilesystemHistory{}.lastVerifyResultName() == "never");
}

TEST_CASE("a filesystem never trimmed says so") {
    CHECK(FilesystemHistory{}.lastTrimResultName() == "never");
}
