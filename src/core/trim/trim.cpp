// SPDX-License-Identifier: GPL-2.0-or-later
#include "trim/trim.h"

#include "base/error.h"
#include "base/unique_fd.h"
#include "base/writable_view.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>

#include <endian.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <xfs/xfs.h>

namespace thintrim {

namespace {

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

// The logical ranges of a btrfs filesystem's chunks (one block group each),
// sorted, from its chunk tree (BTRFS_IOC_TREE_SEARCH; needs CAP_SYS_ADMIN).
std::vector<TrimRange> btrfsBlockGroups(int mountFd) {
    std::vector<TrimRange> groups;
    btrfs_ioctl_search_args args{};
    btrfs_ioctl_search_key& key = args.key;
    key.tree_id = BTRFS_CHUNK_TREE_OBJECTID;
    key.min_objectid = key.max_objectid = BTRFS_FIRST_CHUNK_TREE_OBJECTID;
    key.min_type = key.max_type = BTRFS_CHUNK_ITEM_KEY;
    key.max_offset = std::numeric_limits<std::uint64_t>::max();
    key.max_transid = std::numeric_limits<std::uint64_t>::max();
    for (;;) {
        key.nr_items = 4096;
        if (::ioctl(mountFd, BTRFS_IOC_TREE_SEARCH, &args) != 0)
            throwSystemError("BTRFS_IOC_TREE_SEARCH (chunk tree)", errno);
        if (key.nr_items == 0)
            break;
        std::size_t offset = 0;
        std::uint64_t last = 0;
        for (std::uint32_t item = 0; item < key.nr_items; ++item) {
            btrfs_ioctl_search_header header{};
            if (offset + sizeof header > sizeof args.buf)
                break;
            std::memcpy(&header, args.buf + offset, sizeof header);
            offset += sizeof header;
            if (header.len > sizeof args.buf - offset)
                break;
            last = header.offset;
            if (header.type == BTRFS_CHUNK_ITEM_KEY && header.len >= sizeof(btrfs_chunk)) {
                btrfs_chunk chunk{};
                std::memcpy(&chunk, args.buf + offset, sizeof chunk);
                const std::uint64_t length = le64toh(chunk.length);
                if (length > 0 && length <= kAddressSpaceEnd - header.offset)
                    groups.push_back({header.offset, length});
            }
            offset += header.len;
        }
        if (last == std::numeric_limits<std::uint64_t>::max())
            break;
        key.min_offset = last + 1;
    }
    std::sort(groups.begin(), groups.end(),
              [](const TrimRange& a, const TrimRange& b) { return a.start < b.start; });
    return groups;
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
            throw Error(ErrorCode::Failed,
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
    throw Error(ErrorCode::Failed,
                fmt::format("{}: mount point no longer is the filesystem found in the mount "
                            "table ({} now, {} expected)",
                            mount.mountPoint, now, expected));
}

FitrimResult issueFitrimOnce(int fd, const TrimRange& range, std::uint64_t minimumExtent) {
    for (;;) {
        fstrim_range request{range.start, range.length, minimumExtent};
        if (::ioctl(fd, FITRIM, &request) == 0)
            return {0, request.len}; // the kernel writes back what it trimmed
        if (errno != EINTR)
            return {errno, 0};
    }
}

} // namespace

// EROFS from a filesystem whose superblock is writable (the inventory skips
// the others) means `fd` is a read-only view of it (the sandbox's
// ProtectSystem=strict) and the filesystem wants a writable mount (f2fs):
// the call goes through a private writable copy of that one mount instead.
// When no copy can be made, the EROFS stands.
FitrimResult issueFitrim(int fd, const TrimRange& range, std::uint64_t minimumExtent) {
    const FitrimResult result = issueFitrimOnce(fd, range, minimumExtent);
    if (result.error != EROFS)
        return result;
    try {
        const UniqueFd writable = openWritableView(fd);
        return issueFitrimOnce(writable.get(), range, minimumExtent);
    } catch (const Error&) {
        return result;
    }
}

UniqueFd openForTrim(const Mount& mount) {
    UniqueFd fd = openMountPoint(mount);
    checkStillMountDevice(fd.get(), mount);
    return fd;
}

bool isChunkedType(std::string_view fsType) {
    return isExtFilesystem(fsType) || fsType == "xfs" || fsType == "btrfs";
}

TrimRange nextChunk(const TrimLayout& layout, std::uint64_t cursor, std::uint64_t chunkSize) {
    if (!layout.chunked || chunkSize == 0)
        return openEndedFrom(cursor);
    if (!layout.groups.empty()) {
        // Whole block groups from the one holding the cursor, until the chunk
        // is at least `chunkSize` long; the last group's chunk is open-ended.
        auto group = std::find_if(layout.groups.begin(), layout.groups.end(),
                                  [cursor](const TrimRange& g) { return rangeEnd(g) > cursor; });
        if (group == layout.groups.end())
            return openEndedFrom(cursor);
        const std::uint64_t start = std::max(cursor, group->start);
        for (; group != layout.groups.end(); ++group) {
            const std::uint64_t end = rangeEnd(*group);
            if (std::next(group) == layout.groups.end())
                break;
            if (end - start >= chunkSize)
                return {start, end - start};
        }
        return openEndedFrom(start);
    }
    // Starting mid-group would split that group between two calls.
    const std::uint64_t start = alignDown(cursor, layout.alignment);
    const std::optional<std::uint64_t> step = alignedChunkSize(chunkSize, layout.alignment);
    if (!step || layout.fsBytes <= start || layout.fsBytes - start <= *step)
        return openEndedFrom(start);
    return {start, *step};
}

TrimLayout readTrimLayout(int mountFd, std::string_view fsType) {
    struct statfs info {};
    if (::fstatfs(mountFd, &info) != 0)
        throwSystemError("fstatfs", errno);

    TrimLayout layout;
    layout.fsBytes =
        static_cast<std::uint64_t>(info.f_blocks) * static_cast<std::uint64_t>(info.f_frsize);
    if (isExtFilesystem(fsType)) {
        layout.alignment = extBlockGroupBytes(static_cast<std::uint64_t>(info.f_bsize));
    } else if (fsType == "xfs") {
        // statfs leaves out the internal log; FITRIM offsets count every data block.
        xfs_fsop_geom geometry{};
        if (::ioctl(mountFd, XFS_IOC_FSGEOMETRY, &geometry) != 0)
            throwSystemError("XFS_IOC_FSGEOMETRY", errno);
        layout.alignment = std::uint64_t{geometry.agblocks} * geometry.blocksize;
        layout.fsBytes = geometry.datablocks * geometry.blocksize;
    } else if (fsType == "btrfs") {
        // FITRIM takes btrfs's logical address space, unrelated to device
        // sizes: chunks follow its block groups.
        layout.groups = btrfsBlockGroups(mountFd);
        layout.fsBytes = layout.groups.empty() ? 0 : rangeEnd(layout.groups.back());
    } else {
        // Unknown layouts give nothing to align to: one call covers all.
        layout.chunked = false;
    }
    return layout;
}

double TrimProgress::fraction() const {
    if (total == 0)
        return 0.0;
    return std::clamp(static_cast<double>(position) / static_cast<double>(total), 0.0, 1.0);
}

bool errnoMeansUnsupported(int err) {
    return err == EOPNOTSUPP || err == ENOTTY || err == ENOSYS || err == EBADF;
}

} // namespace thintrim
