// SPDX-License-Identifier: GPL-2.0-or-later
#include "trim.h"

#include "error.h"
#include "unique_fd.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <xfs/xfs.h>

namespace thintrim {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kAddressSpaceEnd = std::numeric_limits<std::uint64_t>::max();

// The size a filesystem reports can be short of its FITRIM address space
// (ext4's f_blocks leaves out metadata overhead, xfs may append a realtime
// device), so the last range always runs to the end of what FITRIM accepts.
TrimRange openEndedFrom(std::uint64_t start) {
    return {start, kAddressSpaceEnd - start};
}

std::uint64_t alignDown(std::uint64_t value, std::uint64_t alignment) {
    return alignment == 0 ? value : value - value % alignment;
}

// Rounds a requested chunk up to whole groups; nullopt when that overflows.
std::optional<std::uint64_t> alignedChunkSize(std::uint64_t chunkSize, std::uint64_t alignment) {
    if (alignment == 0)
        return chunkSize;
    const std::uint64_t remainder = chunkSize % alignment;
    if (remainder == 0)
        return chunkSize;
    if (chunkSize > kAddressSpaceEnd - (alignment - remainder))
        return std::nullopt;
    return chunkSize + (alignment - remainder);
}

bool isExtFilesystem(std::string_view fsType) {
    return fsType == "ext4" || fsType == "ext3" || fsType == "ext2";
}

UniqueFd openMountPoint(const Mount& mount) {
    // O_NOFOLLOW: a symlink planted on the mount point must not redirect the
    // trim to another filesystem.
    UniqueFd fd{::open(mount.mountPoint.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
    if (!fd.isValid()) {
        const int err = errno;
        // With O_DIRECTORY the kernel reports a symlink as ENOTDIR, which
        // would hide why the path was refused.
        struct stat status {};
        if (::lstat(mount.mountPoint.c_str(), &status) == 0 && S_ISLNK(status.st_mode))
            throw Error(ErrorCode::System,
                        fmt::format("open {}: is a symbolic link, not followed", mount.mountPoint));
        throwSystemError("open " + mount.mountPoint, err);
    }
    return fd;
}

// The mount table was read earlier; an unmount or a mount on top since then
// would make FITRIM hit whatever filesystem is there now.
// The mount point may have been unmounted or over-mounted since the inventory
// read the mount table. The mount id and "is a mount root" identify the mount
// exactly; st_dev cannot for btrfs, whose subvolume roots report a device
// number of their own, different from the one mountinfo shows.
void checkStillMountDevice(int fd, const Mount& mount) {
    struct statx status {};
    if (::statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_MNT_ID, &status) != 0)
        throwSystemError("statx " + mount.mountPoint, errno);
    std::string now;
    std::string expected;
    if ((status.stx_mask & STATX_MNT_ID) != 0 && mount.mountId > 0) {
        const bool isMountRoot = (status.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) == 0 ||
                                 (status.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
        if (status.stx_mnt_id == static_cast<std::uint64_t>(mount.mountId) && isMountRoot)
            return;
        now = fmt::format("mount id {}{}", status.stx_mnt_id, isMountRoot ? "" : ", not its root");
        expected = fmt::format("mount id {}", mount.mountId);
    } else {
        const DeviceNumber device{status.stx_dev_major, status.stx_dev_minor};
        if (device == mount.mountDevice)
            return;
        now = "device " + device.toString();
        expected = mount.mountDevice.toString();
    }
    throw Error(ErrorCode::System,
                fmt::format("{}: mount point no longer is the filesystem found in the mount "
                            "table ({} now, {} expected)",
                            mount.mountPoint, now, expected));
}

struct FitrimResult {
    int error = 0; // errno, 0 on success
    std::uint64_t trimmedBytes = 0;
};

FitrimResult issueFitrim(int fd, const TrimRange& range, std::uint64_t minimumExtent) {
    for (;;) {
        fstrim_range request{range.start, range.length, minimumExtent};
        if (::ioctl(fd, FITRIM, &request) == 0)
            return {0, request.len}; // the kernel writes back what it trimmed
        if (errno != EINTR)
            return {errno, 0};
    }
}

std::string dryRunMessage(std::size_t calls, std::uint64_t bytes) {
    return fmt::format("dry run: would issue {} call{} over {}", calls, calls == 1 ? "" : "s",
                       formatSize(bytes));
}

// Walks the plan, filling `report` as it goes so that a failure midway still
// reports the calls made and bytes trimmed.
void runPlan(int fd, const ChunkPlanInput& input, const TrimOptions& options, CancelToken& cancel,
             const ProgressCallback& progress, TrimReport& report) {
    const std::vector<TrimRange> plan = planChunks(input);
    const RateLimiter limiter{options.rateLimit, Clock::now()};

    for (std::size_t index = 0; index < plan.size(); ++index) {
        const TrimRange& range = plan[index];
        if (cancel.isCancelled()) {
            report.outcome = TrimOutcome::Cancelled;
            report.resumeFrom = range.start;
            return;
        }

        if (!options.dryRun) {
            const FitrimResult result = issueFitrim(fd, range, options.minimumExtent);
            if (result.error == EINVAL && range.start >= input.fsBytes)
                break; // resumed at or past the end: nothing left to trim
            if (errnoMeansUnsupported(result.error)) {
                report.outcome = TrimOutcome::Unsupported;
                report.message = fmt::format(
                    "the filesystem or its device does not support discard (FITRIM: {})",
                    std::strerror(result.error));
                return;
            }
            if (result.error != 0) {
                report.outcome = TrimOutcome::Failed;
                report.message = fmt::format("FITRIM at offset {}: {}", range.start,
                                             std::strerror(result.error));
                return;
            }
            report.trimmedBytes += result.trimmedBytes;
        }
        ++report.calls;

        if (progress)
            progress({std::min(range.start + range.length, input.fsBytes), input.fsBytes,
                      report.trimmedBytes});

        const bool last = index + 1 == plan.size();
        if (!last && !cancel.sleepFor(limiter.delayAfter(report.trimmedBytes, Clock::now()))) {
            report.outcome = TrimOutcome::Cancelled;
            report.resumeFrom = plan[index + 1].start;
            return;
        }
    }

    report.outcome = TrimOutcome::Success;
    report.resumeFrom = 0;
    if (options.dryRun) {
        const std::uint64_t start = plan.front().start;
        report.message =
            dryRunMessage(report.calls, input.fsBytes > start ? input.fsBytes - start : 0);
    }
}

} // namespace

std::vector<TrimRange> planChunks(const ChunkPlanInput& input) {
    if (!input.linear || input.chunkSize == 0)
        return {openEndedFrom(input.resumeFrom)};

    // Starting mid-group would split that group between two calls.
    const std::uint64_t start = alignDown(input.resumeFrom, input.alignment);
    const std::optional<std::uint64_t> step = alignedChunkSize(input.chunkSize, input.alignment);
    if (!step)
        return {openEndedFrom(start)};

    std::vector<TrimRange> plan;
    std::uint64_t position = start;
    while (input.fsBytes > position && input.fsBytes - position > *step) {
        plan.push_back({position, *step});
        position += *step;
    }
    plan.push_back(openEndedFrom(position));
    return plan;
}

ChunkPlanInput chunkPlanInputFor(int mountFd, std::string_view fsType, const TrimOptions& options) {
    struct statfs info {};
    if (::fstatfs(mountFd, &info) != 0)
        throwSystemError("fstatfs", errno);

    ChunkPlanInput input;
    input.fsBytes =
        static_cast<std::uint64_t>(info.f_blocks) * static_cast<std::uint64_t>(info.f_frsize);
    input.chunkSize = options.chunkSize;
    input.resumeFrom = options.resumeFrom;
    input.linear = false;

    if (isExtFilesystem(fsType)) {
        input.linear = true;
        input.alignment = extBlockGroupBytes(static_cast<std::uint64_t>(info.f_bsize));
    } else if (fsType == "xfs") {
        // statfs leaves out the internal log; FITRIM offsets count every data block.
        xfs_fsop_geom geometry{};
        if (::ioctl(mountFd, XFS_IOC_FSGEOMETRY, &geometry) != 0)
            throwSystemError("XFS_IOC_FSGEOMETRY", errno);
        input.linear = true;
        input.alignment = std::uint64_t{geometry.agblocks} * geometry.blocksize;
        input.fsBytes = geometry.datablocks * geometry.blocksize;
    }
    // btrfs trims a logical address space unrelated to the device sizes, and
    // unknown layouts give nothing to align to: one call covers all.
    return input;
}

RateLimiter::RateLimiter(std::uint64_t bytesPerSecond, Clock::time_point start)
    : rate_(bytesPerSecond), start_(start) {}

RateLimiter::Clock::duration RateLimiter::delayAfter(std::uint64_t totalBytes,
                                                     Clock::time_point now) const {
    if (rate_ == 0)
        return Clock::duration::zero();
    // Floating seconds: exact enough for a pause, and no overflow for any size.
    const std::chrono::duration<double> allowed{static_cast<double>(totalBytes) /
                                                static_cast<double>(rate_)};
    const std::chrono::duration<double> wait = allowed - (now - start_);
    if (wait <= wait.zero())
        return Clock::duration::zero();
    if (wait >= Clock::duration::max())
        return Clock::duration::max();
    return std::chrono::ceil<Clock::duration>(wait);
}

void CancelToken::cancel() {
    {
        // Set under the mutex so that a sleeper between its check and its
        // wait cannot miss the notification.
        const std::lock_guard lock{mutex_};
        cancelled_ = true;
    }
    wake_.notify_all();
}

bool CancelToken::sleepFor(std::chrono::steady_clock::duration duration) {
    const auto now = std::chrono::steady_clock::now();
    // Saturate: now + duration::max() would overflow.
    const auto deadline = duration >= std::chrono::steady_clock::time_point::max() - now
                              ? std::chrono::steady_clock::time_point::max()
                              : now + duration;
    std::unique_lock lock{mutex_};
    wake_.wait_until(lock, deadline, [this] { return cancelled_.load(); });
    return !cancelled_;
}

std::string_view trimOutcomeName(TrimOutcome outcome) {
    switch (outcome) {
    case TrimOutcome::Success:
        return "success";
    case TrimOutcome::Unsupported:
        return "unsupported";
    case TrimOutcome::Failed:
        return "failed";
    case TrimOutcome::Cancelled:
        return "cancelled";
    case TrimOutcome::Skipped:
        return "skipped";
    }
    return "failed";
}

double TrimProgress::fraction() const {
    if (total == 0)
        return 0.0;
    return std::clamp(static_cast<double>(position) / static_cast<double>(total), 0.0, 1.0);
}

TrimReport trimFilesystem(const Mount& mount, const TrimOptions& options, CancelToken& cancel,
                          const ProgressCallback& progress) {
    const auto started = Clock::now();
    TrimReport report;
    try {
        const UniqueFd fd = openMountPoint(mount);
        checkStillMountDevice(fd.get(), mount);
        const ChunkPlanInput input = chunkPlanInputFor(fd.get(), mount.fsType, options);
        runPlan(fd.get(), input, options, cancel, progress, report);
    } catch (const std::exception& e) {
        report.outcome = TrimOutcome::Failed;
        report.message = e.what();
    }
    report.duration = std::chrono::duration_cast<Microseconds>(Clock::now() - started);
    return report;
}

bool errnoMeansUnsupported(int err) {
    return err == EOPNOTSUPP || err == ENOTTY || err == ENOSYS || err == EBADF;
}

} // namespace thintrim
