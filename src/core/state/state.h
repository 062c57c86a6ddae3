// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"
#include "base/units.h"
#include "trim/trim.h"
#include "trim/verify.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

// What thintrim remembers about one filesystem across restarts. Times are
// CLOCK_REALTIME microseconds since the epoch, 0 = never (as on D-Bus).
struct FilesystemHistory {
    std::string mountPoint; // where it was last seen, for people reading the file
    // The device it was last seen on ("/dev/mapper/vg-data"): tells a
    // filesystem from its LVM snapshot when their UUIDs become shared.
    // Empty in files from before it was recorded.
    std::string source;
    // When the daemon last saw it mounted; 0 = not yet (a file from before
    // it was recorded): the next look counts as seeing it.
    Microseconds lastSeen{0};

    // The last attempt, whatever its outcome.
    Microseconds lastTrimStarted{0};
    Microseconds lastTrimFinished{0};
    std::uint64_t lastTrimmedBytes = 0;
    Microseconds lastTrimDuration{0};
    std::optional<TrimOutcome> lastTrimResult; // nullopt until the first trim
    std::string lastTrimMessage;

    // When a trim last went through the whole filesystem (success, or
    // "unsupported": trying again soon would not change that). The schedule
    // counts the interval from here; failed attempts do not move it.
    Microseconds lastCompleted{0};
    // Free bytes sampled when that trim completed: growth since then is space
    // freed but not yet trimmed. nullopt = unknown, no early trim.
    std::optional<std::uint64_t> freeBytesAtLastTrim;
    // Byte offset where an interrupted trim resumes; 0 = start over.
    std::uint64_t resumeFrom = 0;

    std::uint64_t totalTrimmedBytes = 0;
    std::uint64_t trimCount = 0; // successful trims

    // Receipts (receipts.h): bytes of discards the leaf devices completed
    // during the last trim (nullopt: not measured) and over all trims.
    std::optional<std::uint64_t> lastReachedDiskBytes;
    std::uint64_t totalReachedDiskBytes = 0;

    // The last `thintrim verify` of this filesystem.
    std::optional<VerifyVerdict> lastVerifyResult; // nullopt: never verified
    Microseconds lastVerifyTime{0};
    std::string lastVerifyMessage;
    // "never" until the first verify, else verifyVerdictName().
    [[nodiscard]] std::string_view lastVerifyResultName() const;

    // "never" until the first trim, else trimOutcomeName(): the D-Bus value.
    [[nodiscard]] std::string_view lastTrimResultName() const;

    bool operator==(const FilesystemHistory&) const = default;
};

// A job's parameters, resolved against the configuration when it was queued,
// so a resumed job runs as it was asked even if the configuration changed.
struct JobOptions {
    bool dryRun = false;
    std::uint64_t minimumExtent = 0;
    std::uint64_t chunkSize = 0;
    std::uint64_t rateLimit = 0;

    bool operator==(const JobOptions&) const = default;
};

// The job that was running or queued when the daemon stopped or was
// suspended; the first mount point's history carries its resume cursor.
struct PendingJob {
    std::uint64_t id = 0;
    std::vector<std::string> mountPoints; // not yet finished, in order
    JobOptions options;

    bool operator==(const PendingJob&) const = default;
};

// How a job ended (JobFinished on D-Bus).
enum class JobResult { Success, Partial, Failed, Cancelled };
// The names used on D-Bus, in the state file and in logs.
inline constexpr auto kJobResults =
    makeEnumCodec<JobResult>("job result", {{JobResult::Success, "success"},
                                            {JobResult::Partial, "partial"},
                                            {JobResult::Failed, "failed"},
                                            {JobResult::Cancelled, "cancelled"}});
[[nodiscard]] constexpr std::string_view jobResultName(JobResult result) {
    return kJobResults.name(result);
}
// What the state file and the bus say for a result that never was: the last
// run, trim or verify before the first.
inline constexpr std::string_view kNeverName = "never";

// The last job as a whole (Manager.LastRun* on D-Bus).
struct RunRecord {
    Microseconds started{0};
    Microseconds finished{0};
    std::uint64_t trimmedBytes = 0;
    std::optional<JobResult> result;    // nullopt: never ran
    std::uint64_t reachedDiskBytes = 0; // receipts of the job's filesystems

    // "never", or jobResultName(): the D-Bus value.
    [[nodiscard]] std::string_view resultName() const;

    bool operator==(const RunRecord&) const = default;
};

struct State {
    bool suspended = false;
    RunRecord lastRun;
    std::uint64_t totalTrimmedBytes = 0;     // lifetime, over every filesystem
    std::uint64_t totalReachedDiskBytes = 0; // receipts, lifetime
    std::optional<PendingJob> pendingJob;
    std::uint64_t nextJobId = 1;
    // Keyed by Mount::identity(): the UUID, or the source without one, so
    // history follows a filesystem to another mount point.
    std::map<std::string, FilesystemHistory, std::less<>> filesystems;

    // Records one real trim (not a dry run, which is no history) of the
    // filesystem `identity`, mounted at `mountPoint`, that began at `started`:
    // updates its history and the lifetime total. A completed trim's
    // report.freeBytes becomes the baseline for early trims.
    void recordTrim(const std::string& identity, const std::string& mountPoint,
                    Microseconds started, const TrimReport& report);

    // Brings the histories up to date with `mounts` (every mount seen now):
    // a filesystem whose identity changed because its UUID became shared
    // with a snapshot's, or stopped being, keeps its history under the new
    // identity; each one mounted is seen `now`; one not seen for
    // `forgetAfter` is forgotten, so that the state and the metrics file do
    // not keep every filesystem ever mounted. Returns whether anything
    // beyond the sighting times changed, with what was forgotten for the log.
    struct Observed {
        bool changed = false;
        std::vector<std::string> forgotten; // "identity (mount point)"
    };
    Observed observeMounts(const std::vector<const Mount*>& mounts, Microseconds now,
                           Microseconds forgetAfter);

    // The receipt of the filesystem's last trim (receipts.h), after
    // recordTrim() when it is measured afterwards; nullopt: not measured.
    void recordReceipt(const std::string& identity, std::optional<std::uint64_t> reachedDiskBytes);

    // Records a verify of the filesystem `identity` that finished at `at`.
    void recordVerify(const std::string& identity, const std::string& mountPoint, Microseconds at,
                      const VerifyReport& report);

    bool operator==(const State&) const = default;
};

// The state file `<stateDir>/state.json`. The daemon is its only writer.
class StateStore {
public:
    explicit StateStore(std::filesystem::path stateDir);

    struct Loaded {
        State state;
        // Set when the file could not be used and was moved aside: for the
        // daemon to log. Losing history must never stop the daemon.
        std::optional<std::string> warning;
    };

    // A missing file is an empty State. An unreadable or corrupt file, or one
    // of another schema version, is renamed to "state.json.corrupt-<UTC time>"
    // and an empty State returned with a warning. Never throws for the file's
    // content.
    [[nodiscard]] Loaded load() const;

    // Replaces the file atomically and durably: after a crash at any point,
    // load() finds either the old state or the new one. Throws Error(Failed)
    // naming the path when it cannot be written.
    void save(const State& state) const;

    [[nodiscard]] const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path dir_;
    std::filesystem::path path_;
};

} // namespace thintrim
