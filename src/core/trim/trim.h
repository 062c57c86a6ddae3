// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"
#include "base/unique_fd.h"
#include "base/units.h"
#include "discovery/inventory.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

// One FITRIM range, in bytes of the filesystem's address space.
struct TrimRange {
    std::uint64_t start = 0;
    std::uint64_t length = 0; // UINT64_MAX - start for the open-ended last chunk
    bool operator==(const TrimRange&) const = default;
};

// What a filesystem offers to FITRIM, read once per run (readTrimLayout).
// Linear filesystems (ext4, xfs) are chunked on allocation-group /
// block-group boundaries (`alignment`) so that ext4 keeps its per-group
// "already trimmed" marks; others get one call covering everything from the
// cursor.
struct TrimLayout {
    std::uint64_t fsBytes = 0;   // where the address space's data ends
    std::uint64_t alignment = 0; // group size of a linear layout; 0 = none
    bool chunked = true;         // false: one call covers everything
    // btrfs: its block groups' logical ranges, sorted. Chunks cover whole
    // groups; the gaps between them hold nothing to trim.
    std::vector<TrimRange> groups{};
    bool operator==(const TrimLayout&) const = default;
};

// The next FITRIM range at `cursor`, about `chunkSize` bytes (0 = the rest in
// one call). The last one runs open-ended to the end of the address space,
// so a trim is done when its cursor reaches kTrimDone.
constexpr std::uint64_t kTrimDone = std::numeric_limits<std::uint64_t>::max();
[[nodiscard]] TrimRange nextChunk(const TrimLayout& layout, std::uint64_t cursor,
                                  std::uint64_t chunkSize);
// Where the cursor stands after `range` (kTrimDone after the last one).
[[nodiscard]] constexpr std::uint64_t rangeEnd(const TrimRange& range) {
    return range.length >= kTrimDone - range.start ? kTrimDone : range.start + range.length;
}

// The layout of the filesystem open at `mountFd` (its root directory):
// fstatfs for the size, the block group for ext2/3/4, XFS_IOC_FSGEOMETRY for
// xfs, the chunk tree for btrfs; other types are trimmed in one call. Throws
// Error(Failed).
[[nodiscard]] TrimLayout readTrimLayout(int mountFd, std::string_view fsType);
// Whether a type is trimmed in chunks (ext2/3/4, xfs, btrfs); the others are
// trimmed in one FITRIM call that cannot be paced or stopped midway.
[[nodiscard]] bool isChunkedType(std::string_view fsType);

// Opens a managed mount for FITRIM (O_DIRECTORY | O_NOFOLLOW) and checks it
// still is `mount` (its mount id, or device). Throws Error(Failed).
[[nodiscard]] UniqueFd openForTrim(const Mount& mount);

struct FitrimResult {
    int error = 0; // errno, 0 on success
    std::uint64_t trimmedBytes = 0;
};
// One FITRIM call (restarted on EINTR). A filesystem that refuses FITRIM
// through a read-only view of its mount (EROFS: f2fs under
// ProtectSystem=strict) is tried again through a private writable copy of
// that mount (openWritableView).
[[nodiscard]] FitrimResult issueFitrim(int fd, const TrimRange& range, std::uint64_t minimumExtent);

// An ext2/3/4 block group holds as many blocks as its one-block allocation
// bitmap has bits: 8 × block size blocks of block size bytes. (mkfs -g can
// choose fewer, and with 1 KiB blocks group 0 starts one block in; a group a
// chunk boundary splits only loses its "trimmed" mark and is trimmed again.)
[[nodiscard]] constexpr std::uint64_t extBlockGroupBytes(std::uint64_t blockSize) {
    return 8 * blockSize * blockSize;
}

enum class TrimOutcome { Success, Unsupported, Failed, Cancelled, Skipped };
inline constexpr auto kTrimOutcomes =
    makeEnumCodec<TrimOutcome>("trim result", {{TrimOutcome::Success, "success"},
                                               {TrimOutcome::Unsupported, "unsupported"},
                                               {TrimOutcome::Failed, "failed"},
                                               {TrimOutcome::Cancelled, "cancelled"},
                                               {TrimOutcome::Skipped, "skipped"}});
[[nodiscard]] constexpr std::string_view trimOutcomeName(TrimOutcome outcome) {
    return kTrimOutcomes.name(outcome);
}
// The trim went through the whole filesystem (or cannot: "unsupported",
// which trying again soon would not change): the schedule counts from it.
[[nodiscard]] constexpr bool completedTrim(TrimOutcome outcome) {
    return outcome == TrimOutcome::Success || outcome == TrimOutcome::Unsupported;
}

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
    // Where the next trim of this filesystem starts: the cursor after a
    // cancel or failure, 0 when finished.
    std::uint64_t resumeFrom = 0;
    std::size_t calls = 0; // FITRIM calls issued (planned ones for a dry run)
    // Bytes of discards the leaf devices completed meanwhile (receipts.h);
    // nullopt when not measured.
    std::optional<std::uint64_t> reachedDiskBytes;
    // Free bytes after the last FITRIM call (ChunkResult::freeBytes): the
    // baseline for early trims; nullopt before the first call or unknown.
    std::optional<std::uint64_t> freeBytes;
};

// EOPNOTSUPP, ENOTTY, ENOSYS, EBADF: FITRIM is not available here, not an error.
[[nodiscard]] bool errnoMeansUnsupported(int err);

} // namespace thintrim
