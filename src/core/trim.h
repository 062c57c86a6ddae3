// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "inventory.h"
#include "units.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

struct TrimOptions {
    std::uint64_t minimumExtent = 0;      // FITRIM minlen; 0 = the kernel's choice
    std::uint64_t chunkSize = 1ULL << 30; // filesystem range per call; 0 = one call
    std::uint64_t rateLimit = 0;          // trimmed bytes per second; 0 = unlimited
    bool dryRun = false;                  // check and plan, issue no FITRIM
    std::uint64_t resumeFrom = 0;         // byte offset where an earlier run stopped
};

// One FITRIM range, in bytes of the filesystem's address space.
struct TrimRange {
    std::uint64_t start = 0;
    std::uint64_t length = 0; // UINT64_MAX - start for the open-ended last chunk
    bool operator==(const TrimRange&) const = default;
};

// How a filesystem's range is cut into calls. Linear filesystems (ext4, xfs)
// are chunked on allocation-group / block-group boundaries (`alignment`) so
// that ext4 keeps its per-group "already trimmed" marks; others get one call
// covering everything from `resumeFrom`.
struct ChunkPlanInput {
    std::uint64_t fsBytes = 0;   // size of the address space (device size)
    std::uint64_t alignment = 0; // group size; 0 = none
    std::uint64_t chunkSize = 0; // requested; 0 = one call
    std::uint64_t resumeFrom = 0;
    bool linear = true; // false for btrfs and unknown layouts
};
[[nodiscard]] std::vector<TrimRange> planChunks(const ChunkPlanInput& input);

// An ext2/3/4 block group holds as many blocks as its one-block allocation
// bitmap has bits: 8 × block size blocks of block size bytes. (mkfs -g can
// choose fewer, and with 1 KiB blocks group 0 starts one block in; a group a
// chunk boundary splits only loses its "trimmed" mark and is trimmed again.)
[[nodiscard]] constexpr std::uint64_t extBlockGroupBytes(std::uint64_t blockSize) {
    return 8 * blockSize * blockSize;
}

// The plan input for the filesystem open at `mountFd` (its root directory):
// fstatfs for the size, the block group for ext2/3/4, XFS_IOC_FSGEOMETRY for
// xfs; everything else is planned as one call. Throws Error(System).
[[nodiscard]] ChunkPlanInput chunkPlanInputFor(int mountFd, std::string_view fsType,
                                               const TrimOptions& options);

// Limits the trimmed bytes per second. After each chunk the caller asks how
// long to wait so that the average since start stays at or below `rate`.
class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;
    explicit RateLimiter(std::uint64_t bytesPerSecond, Clock::time_point start);
    [[nodiscard]] Clock::duration delayAfter(std::uint64_t totalBytes, Clock::time_point now) const;

private:
    std::uint64_t rate_;
    Clock::time_point start_;
};

// Shared between the thread that trims and whoever may stop it. Waits on it
// (rate limiting) end early on cancel.
class CancelToken {
public:
    void cancel();
    [[nodiscard]] bool isCancelled() const { return cancelled_.load(); }
    // Sleeps up to `duration`; returns false if cancelled meanwhile.
    bool sleepFor(std::chrono::steady_clock::duration duration);

private:
    std::atomic<bool> cancelled_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
};

enum class TrimOutcome { Success, Unsupported, Failed, Cancelled, Skipped };
// "success" | "unsupported" | "failed" | "cancelled" | "skipped"
[[nodiscard]] std::string_view trimOutcomeName(TrimOutcome outcome);

struct TrimProgress {
    std::uint64_t position = 0; // bytes of the range done
    std::uint64_t total = 0;    // bytes of the whole range
    std::uint64_t trimmedBytes = 0;
    [[nodiscard]] double fraction() const;
};

struct TrimReport {
    TrimOutcome outcome = TrimOutcome::Failed;
    // The sum of what the kernel reported. ext4 counts only blocks freed since
    // the last trim of that group in this mount; xfs and btrfs count all free
    // space in the range, every time.
    std::uint64_t trimmedBytes = 0;
    Microseconds duration{0};
    std::string message; // errno text for failures, "dry run: N calls" ...
    // Where to resume after a cancel; 0 when finished.
    std::uint64_t resumeFrom = 0;
    std::size_t calls = 0; // FITRIM calls issued (planned ones for a dry run)
};

using ProgressCallback = std::function<void(const TrimProgress&)>;

// Trims one managed mount: opens the mount point (O_DIRECTORY | O_NOFOLLOW),
// checks it still is `mount.mountDevice`, plans chunks and issues FITRIM,
// checking `cancel` and the rate limit between chunks. Never throws for the
// trim itself: every result is in the report.
[[nodiscard]] TrimReport trimFilesystem(const Mount& mount, const TrimOptions& options,
                                        CancelToken& cancel, const ProgressCallback& progress);

// EOPNOTSUPP, ENOTTY, ENOSYS, EBADF: FITRIM is not available here, not an error.
[[nodiscard]] bool errnoMeansUnsupported(int err);

} // namespace thintrim
