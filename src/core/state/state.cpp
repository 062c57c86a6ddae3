// SPDX-License-Identifier: GPL-2.0-or-later
#include "state/state.h"

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/unique_fd.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <limits>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace thintrim {

namespace {

using json = nlohmann::json;

constexpr int kStateVersion = 1;
constexpr std::string_view kStateFileName = "state.json";
constexpr std::string_view kTemporaryFileName = "state.json.tmp";

// The file is well-formed JSON but not what this version writes.
class SchemaError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Readers are strict about types and lenient about absence: a missing member
// takes its default (an older file), a member of the wrong type means the
// file is not ours or is damaged.
std::uint64_t readUnsigned(const json& object, const char* key, std::uint64_t fallback) {
    auto it = object.find(key);
    if (it == object.end())
        return fallback;
    if (!it->is_number_unsigned())
        throw SchemaError(fmt::format("\"{}\" must be a non-negative integer", key));
    return it->get<std::uint64_t>();
}

Microseconds readTime(const json& object, const char* key) {
    std::uint64_t value = readUnsigned(object, key, 0);
    if (value > static_cast<std::uint64_t>(std::numeric_limits<Microseconds::rep>::max()))
        throw SchemaError(fmt::format("\"{}\" is out of range", key));
    return Microseconds(static_cast<Microseconds::rep>(value));
}

std::optional<std::uint64_t> readOptionalUnsigned(const json& object, const char* key) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null())
        return std::nullopt;
    return readUnsigned(object, key, 0);
}

bool readBool(const json& object, const char* key, bool fallback) {
    auto it = object.find(key);
    if (it == object.end())
        return fallback;
    if (!it->is_boolean())
        throw SchemaError(fmt::format("\"{}\" must be true or false", key));
    return it->get<bool>();
}

std::string readString(const json& object, const char* key, std::string_view fallback) {
    auto it = object.find(key);
    if (it == object.end())
        return std::string(fallback);
    if (!it->is_string())
        throw SchemaError(fmt::format("\"{}\" must be a string", key));
    return it->get<std::string>();
}

const json& requireObject(const json& value, std::string_view what) {
    if (!value.is_object())
        throw SchemaError(fmt::format("{} must be an object", what));
    return value;
}

std::optional<TrimOutcome> readOutcome(const json& object, const char* key) {
    std::string name = readString(object, key, kNeverName);
    if (name == kNeverName)
        return std::nullopt;
    if (auto outcome = kTrimOutcomes.find(name))
        return outcome;
    throw SchemaError(fmt::format("\"{}\" is not a trim result: \"{}\"", key, name));
}

std::uint64_t count(Microseconds time) {
    return static_cast<std::uint64_t>(time.count());
}

json historyToJson(const FilesystemHistory& history) {
    return {
        {"mount_point", history.mountPoint},
        {"source", history.source},
        {"last_seen", count(history.lastSeen)},
        {"last_trim_started", count(history.lastTrimStarted)},
        {"last_trim_finished", count(history.lastTrimFinished)},
        {"last_trimmed_bytes", history.lastTrimmedBytes},
        {"last_trim_duration", count(history.lastTrimDuration)},
        {"last_trim_result", history.lastTrimResultName()},
        {"last_trim_message", history.lastTrimMessage},
        {"last_completed", count(history.lastCompleted)},
        {"free_bytes_at_last_trim",
         history.freeBytesAtLastTrim ? json(*history.freeBytesAtLastTrim) : json(nullptr)},
        {"resume_from", history.resumeFrom},
        {"total_trimmed_bytes", history.totalTrimmedBytes},
        {"trim_count", history.trimCount},
        {"last_reached_disk_bytes",
         history.lastReachedDiskBytes ? json(*history.lastReachedDiskBytes) : json(nullptr)},
        {"total_reached_disk_bytes", history.totalReachedDiskBytes},
        {"last_verify_result", history.lastVerifyResultName()},
        {"last_verify_time", count(history.lastVerifyTime)},
        {"last_verify_message", history.lastVerifyMessage},
    };
}

std::optional<VerifyVerdict> readVerdict(const json& object, const char* key) {
    std::string name = readString(object, key, kNeverName);
    if (name == kNeverName)
        return std::nullopt;
    if (auto verdict = kVerifyVerdicts.find(name))
        return verdict;
    throw SchemaError(fmt::format("\"{}\" is not a verify verdict: \"{}\"", key, name));
}

FilesystemHistory historyFromJson(const json& object) {
    requireObject(object, "a filesystem entry");
    FilesystemHistory history;
    history.mountPoint = readString(object, "mount_point", "");
    history.source = readString(object, "source", "");
    history.lastSeen = readTime(object, "last_seen");
    history.lastTrimStarted = readTime(object, "last_trim_started");
    history.lastTrimFinished = readTime(object, "last_trim_finished");
    history.lastTrimmedBytes = readUnsigned(object, "last_trimmed_bytes", 0);
    history.lastTrimDuration = readTime(object, "last_trim_duration");
    history.lastTrimResult = readOutcome(object, "last_trim_result");
    history.lastTrimMessage = readString(object, "last_trim_message", "");
    history.lastCompleted = readTime(object, "last_completed");
    history.freeBytesAtLastTrim = readOptionalUnsigned(object, "free_bytes_at_last_trim");
    history.resumeFrom = readUnsigned(object, "resume_from", 0);
    history.totalTrimmedBytes = readUnsigned(object, "total_trimmed_bytes", 0);
    history.trimCount = readUnsigned(object, "trim_count", 0);
    history.lastReachedDiskBytes = readOptionalUnsigned(object, "last_reached_disk_bytes");
    history.totalReachedDiskBytes = readUnsigned(object, "total_reached_disk_bytes", 0);
    history.lastVerifyResult = readVerdict(object, "last_verify_result");
    history.lastVerifyTime = readTime(object, "last_verify_time");
    history.lastVerifyMessage = readString(object, "last_verify_message", "");
    return history;
}

json pendingJobToJson(const PendingJob& job) {
    return {
        {"id", job.id},
        {"mount_points", job.mountPoints},
        {"options",
         {
             {"dry_run", job.options.dryRun},
             {"minimum_extent", job.options.minimumExtent},
             {"chunk_size", job.options.chunkSize},
             {"rate_limit", job.options.rateLimit},
         }},
    };
}

PendingJob pendingJobFromJson(const json& object) {
    requireObject(object, "\"pending_job\"");
    PendingJob job;
    job.id = readUnsigned(object, "id", 0);
    if (auto it = object.find("mount_points"); it != object.end()) {
        if (!it->is_array())
            throw SchemaError("\"mount_points\" must be an array");
        for (const json& mountPoint : *it) {
            if (!mountPoint.is_string())
                throw SchemaError("\"mount_points\" must hold strings");
            job.mountPoints.push_back(mountPoint.get<std::string>());
        }
    }
    if (auto it = object.find("options"); it != object.end()) {
        const json& options = requireObject(*it, "\"options\"");
        job.options.dryRun = readBool(options, "dry_run", false);
        job.options.minimumExtent = readUnsigned(options, "minimum_extent", 0);
        job.options.chunkSize = readUnsigned(options, "chunk_size", 0);
        job.options.rateLimit = readUnsigned(options, "rate_limit", 0);
    }
    return job;
}

json stateToJson(const State& state) {
    json filesystems = json::object();
    for (const auto& [identity, history] : state.filesystems)
        filesystems[identity] = historyToJson(history);
    return {
        {"version", kStateVersion},
        {"suspended", state.suspended},
        {"next_job_id", state.nextJobId},
        {"total_trimmed_bytes", state.totalTrimmedBytes},
        {"total_reached_disk_bytes", state.totalReachedDiskBytes},
        {"last_run",
         {
             {"started", count(state.lastRun.started)},
             {"finished", count(state.lastRun.finished)},
             {"trimmed_bytes", state.lastRun.trimmedBytes},
             {"result", state.lastRun.resultName()},
             {"reached_disk_bytes", state.lastRun.reachedDiskBytes},
         }},
        {"pending_job", state.pendingJob ? pendingJobToJson(*state.pendingJob) : json(nullptr)},
        {"filesystems", std::move(filesystems)},
    };
}

State stateFromJson(const json& document) {
    requireObject(document, "the document");
    auto version = document.find("version");
    if (version == document.end())
        throw SchemaError("no \"version\"");
    if (!version->is_number_integer() || version->get<std::int64_t>() != kStateVersion)
        throw SchemaError(fmt::format("version {} is not {}", version->dump(), kStateVersion));

    State state;
    state.suspended = readBool(document, "suspended", false);
    state.nextJobId = readUnsigned(document, "next_job_id", 1);
    state.totalTrimmedBytes = readUnsigned(document, "total_trimmed_bytes", 0);
    state.totalReachedDiskBytes = readUnsigned(document, "total_reached_disk_bytes", 0);
    if (auto it = document.find("last_run"); it != document.end()) {
        const json& run = requireObject(*it, "\"last_run\"");
        state.lastRun.started = readTime(run, "started");
        state.lastRun.finished = readTime(run, "finished");
        state.lastRun.trimmedBytes = readUnsigned(run, "trimmed_bytes", 0);
        const std::string result = readString(run, "result", kNeverName);
        state.lastRun.result = kJobResults.find(result);
        if (!state.lastRun.result && result != kNeverName)
            throw SchemaError(fmt::format("\"result\" is not a job result: \"{}\"", result));
        state.lastRun.reachedDiskBytes = readUnsigned(run, "reached_disk_bytes", 0);
    }
    if (auto it = document.find("pending_job"); it != document.end() && !it->is_null())
        state.pendingJob = pendingJobFromJson(*it);
    if (auto it = document.find("filesystems"); it != document.end()) {
        for (const auto& [identity, history] : requireObject(*it, "\"filesystems\"").items())
            state.filesystems.emplace(identity, historyFromJson(history));
    }
    return state;
}

// Why a file could not be read, or nullopt when it does not exist.
struct ReadResult {
    std::optional<std::string> text;
    int error = 0; // errno; 0 with no text = absent
};

ReadResult readWholeFile(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.isValid())
        return {std::nullopt, errno == ENOENT ? 0 : errno};
    std::string text;
    std::array<char, 65536> buffer{};
    while (true) {
        ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return {std::nullopt, errno};
        if (got == 0)
            return {std::move(text), 0};
        text.append(buffer.data(), static_cast<std::size_t>(got));
    }
}

// "20240131T120501Z": sorts by time and needs no quoting in a shell.
std::string utcTimestamp() {
    std::time_t seconds = static_cast<std::time_t>(realtimeNow().count() / 1'000'000);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    std::array<char, 32> text{};
    std::size_t length = std::strftime(text.data(), text.size(), "%Y%m%dT%H%M%SZ", &utc);
    return std::string(text.data(), length);
}

// Keeps the unusable file for a person to look at, under a name that no
// earlier corrupt copy already has, and says what happened.
std::string moveAside(const std::filesystem::path& path, const std::string& problem) {
    std::filesystem::path base = path.string() + ".corrupt-" + utcTimestamp();
    std::filesystem::path target = base;
    std::error_code ignored; // unknown counts as free: the rename then reports
    for (int n = 2; std::filesystem::exists(target, ignored); ++n)
        target = base.string() + "-" + std::to_string(n);
    std::string start = fmt::format("state file {} {}", path.string(), problem);
    if (::rename(path.c_str(), target.c_str()) != 0)
        return fmt::format("{}; could not move it aside ({}); starting with no history, the "
                           "next save replaces it",
                           start, std::strerror(errno));
    return fmt::format("{}; moved it to {} and started with no history", start, target.string());
}

} // namespace

std::string_view RunRecord::resultName() const {
    return result ? jobResultName(*result) : kNeverName;
}

std::string_view FilesystemHistory::lastTrimResultName() const {
    return lastTrimResult ? trimOutcomeName(*lastTrimResult) : kNeverName;
}

void State::recordTrim(const std::string& identity, const std::string& mountPoint,
                       Microseconds started, const TrimReport& report) {
    FilesystemHistory& history = filesystems[identity];
    history.mountPoint = mountPoint;
    history.lastTrimStarted = started;
    history.lastTrimFinished = saturatingAdd(started, report.duration);
    history.lastTrimmedBytes = report.trimmedBytes;
    history.lastTrimDuration = report.duration;
    history.lastTrimResult = report.outcome;
    history.lastTrimMessage = report.message;
    history.resumeFrom = report.resumeFrom;
    // A cancelled or failed trim still discarded what it reported.
    history.totalTrimmedBytes = saturatingAdd(history.totalTrimmedBytes, report.trimmedBytes);
    totalTrimmedBytes = saturatingAdd(totalTrimmedBytes, report.trimmedBytes);

    if (completedTrim(report.outcome)) {
        history.lastCompleted = history.lastTrimFinished;
        history.freeBytesAtLastTrim = report.freeBytes;
        history.resumeFrom = 0;
    }
    if (report.outcome == TrimOutcome::Success)
        ++history.trimCount;
    recordReceipt(identity, report.reachedDiskBytes);
}

void State::recordReceipt(const std::string& identity,
                          std::optional<std::uint64_t> reachedDiskBytes) {
    FilesystemHistory& history = filesystems[identity];
    history.lastReachedDiskBytes = reachedDiskBytes;
    if (reachedDiskBytes) {
        history.totalReachedDiskBytes =
            saturatingAdd(history.totalReachedDiskBytes, *reachedDiskBytes);
        totalReachedDiskBytes = saturatingAdd(totalReachedDiskBytes, *reachedDiskBytes);
    }
}

void State::recordVerify(const std::string& identity, const std::string& mountPoint,
                         Microseconds at, const VerifyReport& report) {
    FilesystemHistory& history = filesystems[identity];
    history.mountPoint = mountPoint;
    history.lastVerifyResult = report.verdict;
    history.lastVerifyTime = at;
    history.lastVerifyMessage = report.message;
}

std::string_view FilesystemHistory::lastVerifyResultName() const {
    return lastVerifyResult ? verifyVerdictName(*lastVerifyResult) : kNeverName;
}

State::Observed State::observeMounts(const std::vector<const Mount*>& mounts, Microseconds now,
                                     Microseconds forgetAfter) {
    Observed observed;
    // A history under `from` that is this mount's filesystem moves to the
    // mount's identity. Files from before `source` was recorded match by
    // mount point.
    auto adopt = [&](const Mount& mount, const std::string& identity, const std::string& from) {
        auto found = filesystems.find(from);
        if (found == filesystems.end() || from == identity)
            return false;
        const FilesystemHistory& history = found->second;
        const bool same = history.source.empty() ? history.mountPoint == mount.mountPoint
                                                 : history.source == mount.source;
        if (!same)
            return false;
        auto node = filesystems.extract(found);
        node.key() = identity;
        filesystems.insert(std::move(node));
        return true;
    };
    for (const Mount* mount : mounts) {
        const std::string identity = mount->identity();
        if (identity.empty())
            continue;
        auto found = filesystems.find(identity);
        if (found == filesystems.end() && !mount->uuid.empty()) {
            // Shared now: the history kept under the bare UUID, if it was
            // this device's. Not shared any more: the one under UUID@source.
            const std::string other =
                mount->uuidShared ? mount->uuid : mount->uuid + "@" + mount->source;
            if (adopt(*mount, identity, other)) {
                observed.changed = true;
                found = filesystems.find(identity);
            }
        }
        if (found == filesystems.end())
            continue;
        found->second.lastSeen = now;
        if (found->second.source != mount->source) {
            found->second.source = mount->source;
            observed.changed = true;
        }
    }
    for (auto it = filesystems.begin(); it != filesystems.end();) {
        FilesystemHistory& history = it->second;
        if (history.lastSeen == Microseconds{0} || history.lastSeen > now)
            history.lastSeen = now; // unknown, or a clock set back: seen now
        if (now - history.lastSeen > forgetAfter) {
            observed.forgotten.push_back(fmt::format("{} ({})", it->first, history.mountPoint));
            it = filesystems.erase(it);
            observed.changed = true;
        } else {
            ++it;
        }
    }
    return observed;
}

StateStore::StateStore(std::filesystem::path stateDir)
    : dir_(std::move(stateDir)), path_(dir_ / kStateFileName) {}

StateStore::Loaded StateStore::load() const {
    // A leftover state.json.tmp is a save that crashed before its rename:
    // state.json still holds the last complete state, so it is ignored here
    // and truncated by the next save.
    ReadResult file = readWholeFile(path_);
    if (!file.text && file.error == 0)
        return {};
    if (!file.text)
        return {State{},
                moveAside(path_, fmt::format("cannot be read ({})", std::strerror(file.error)))};
    try {
        return {stateFromJson(json::parse(*file.text)), std::nullopt};
    } catch (const json::parse_error& e) {
        return {State{}, moveAside(path_, fmt::format("is not valid JSON ({})", e.what()))};
    } catch (const std::exception& e) {
        // SchemaError, or a json::type_error the readers did not foresee.
        return {State{}, moveAside(path_, fmt::format("is not a thintrim state ({})", e.what()))};
    }
}

void StateStore::save(const State& state) const {
    // Invalid UTF-8 (a mount point in another encoding) is replaced rather
    // than refused: losing one name beats losing every save.
    std::string text =
        stateToJson(state).dump(2, ' ', false, json::error_handler_t::replace) + "\n";

    writeFileAtomically(path_, kTemporaryFileName, text, 0644);
}

} // namespace thintrim
