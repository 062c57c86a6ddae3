// SPDX-License-Identifier: GPL-2.0-or-later
#include "trim/verify.h"

#include "base/error.h"
#include "base/unique_fd.h"
#include "base/writable_view.h"
#include "trim/receipts.h"
#include "trim/trim.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace thintrim {

namespace {

constexpr std::uint64_t kBlock = 4096;
constexpr std::uint64_t kMaxGranule = 64ULL << 20;
constexpr std::uint64_t kMaxProbe = 256ULL << 20;
constexpr unsigned kMaxExtents = 512;
constexpr std::uint64_t kIoBytes = 1ULL << 20;
constexpr unsigned kTrimAttempts = 6; // about 1.5 s of waiting at most

// Thrown inside the probe for an inconclusive outcome with its reason.
struct Inconclusive {
    std::string why;
};

std::uint64_t splitmix(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// Block `index` of the probe: distinct per run (seed) and per block, so that
// neither an old probe nor a moved block can pass for this one.
void fillBlock(std::uint64_t seed, std::uint64_t index, unsigned char* block) {
    std::uint64_t state = seed ^ (index * 0xD1B54A32D192ED03ULL);
    for (std::uint64_t word = 0; word < kBlock / 8; ++word) {
        const std::uint64_t value = splitmix(state);
        std::memcpy(block + word * 8, &value, 8);
    }
}

// The probe's bytes at file offset `logical`, kBlock of them, into `out`.
// Filesystems with blocks smaller than kBlock (ext4 makes 1 KiB blocks on
// small filesystems) may place a file's kBlock-aligned offsets at device
// offsets that are not: the comparison follows the device, so the expected
// bytes may straddle two of the pattern's blocks.
void probeBytesAt(std::uint64_t seed, std::uint64_t logical, unsigned char* out) {
    std::array<unsigned char, 2 * kBlock> two{};
    fillBlock(seed, logical / kBlock, two.data());
    fillBlock(seed, logical / kBlock + 1, two.data() + kBlock);
    std::memcpy(out, two.data() + logical % kBlock, kBlock);
}

// O_DIRECT needs block-aligned memory.
class AlignedBuffer {
public:
    explicit AlignedBuffer(std::size_t size)
        : owner_(static_cast<unsigned char*>(std::aligned_alloc(kBlock, size))) {
        if (!owner_)
            throw std::bad_alloc();
    }
    [[nodiscard]] unsigned char* data() const { return owner_.get(); }

private:
    struct Free {
        void operator()(unsigned char* p) const { std::free(p); }
    };
    std::unique_ptr<unsigned char, Free> owner_;
};

std::uint64_t alignUp(std::uint64_t value, std::uint64_t alignment) {
    const std::uint64_t rest = value % alignment;
    return rest == 0 ? value : value + (alignment - rest);
}

bool isSupportedType(std::string_view type) {
    return type == "ext4" || type == "ext3" || type == "ext2" || type == "xfs";
}

// Removes the probe when the run ends, however it ends.
class ProbeFile {
public:
    explicit ProbeFile(int dirFd) : dirFd_(dirFd) {}
    ~ProbeFile() { remove(); }
    ProbeFile(const ProbeFile&) = delete;
    ProbeFile& operator=(const ProbeFile&) = delete;
    // Also removes one a crashed run left behind.
    void remove() {
        if (::unlinkat(dirFd_, std::string(kVerifyProbeName).c_str(), 0) == 0)
            removed_ = true;
    }
    [[nodiscard]] bool removedStale() const { return removed_; }

private:
    int dirFd_;
    bool removed_ = false;
};

struct Extent {
    std::uint64_t logical = 0;
    std::uint64_t physical = 0;
    std::uint64_t length = 0;
};

std::vector<Extent> mapExtents(int fd, std::uint64_t length) {
    const std::size_t size = sizeof(fiemap) + kMaxExtents * sizeof(fiemap_extent);
    std::vector<std::uint64_t> storage(size / sizeof(std::uint64_t) + 1, 0);
    auto* map = reinterpret_cast<fiemap*>(storage.data());
    map->fm_start = 0;
    map->fm_length = length;
    map->fm_flags = FIEMAP_FLAG_SYNC;
    map->fm_extent_count = kMaxExtents;
    if (::ioctl(fd, FS_IOC_FIEMAP, map) != 0) {
        const int err = errno;
        if (errnoMeansUnsupported(err) || err == EOPNOTSUPP)
            throw Inconclusive{"the filesystem cannot map files to device offsets (FIEMAP)"};
        throwSystemError("FIEMAP on the probe", err);
    }
    constexpr std::uint32_t kUnusable =
        FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_ENCODED |
        FIEMAP_EXTENT_DATA_ENCRYPTED | FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_DATA_INLINE |
        FIEMAP_EXTENT_DATA_TAIL | FIEMAP_EXTENT_UNWRITTEN | FIEMAP_EXTENT_SHARED;
    std::vector<Extent> extents;
    for (std::uint32_t i = 0; i < map->fm_mapped_extents && i < kMaxExtents; ++i) {
        const fiemap_extent& e = map->fm_extents[i];
        if ((e.fe_flags & kUnusable) != 0)
            throw Inconclusive{fmt::format(
                "the probe's extents are not plain blocks on the device (FIEMAP flags {:#x})",
                e.fe_flags)};
        extents.push_back({e.fe_logical, e.fe_physical, e.fe_length});
    }
    if (extents.empty())
        throw Inconclusive{"FIEMAP mapped none of the probe's blocks"};
    return extents;
}

// The filesystem's own block device, checked to be the device mountinfo named.
UniqueFd openDevice(const SystemPaths& paths, const Mount& mount) {
    std::vector<std::filesystem::path> candidates{paths.devRoot / "dev/block" /
                                                  mount.mountDevice.toString()};
    if (mount.source.starts_with("/dev/"))
        candidates.push_back(paths.devRoot / mount.source.substr(1));
    std::string tried;
    for (const auto& path : candidates) {
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
        struct stat status {};
        if (fd.isValid() && ::fstat(fd.get(), &status) == 0 && S_ISBLK(status.st_mode) &&
            DeviceNumber::fromDev(status.st_rdev) == mount.mountDevice)
            return fd;
        tried += (tried.empty() ? "" : ", ") + path.string();
    }
    throw Inconclusive{fmt::format("cannot open the filesystem's device {} for reading (tried {})",
                                   mount.mountDevice.toString(), tried)};
}

// Counts the checked bytes still holding the pattern.
std::uint64_t countUnchanged(int deviceFd, std::uint64_t seed, const std::vector<Extent>& ranges) {
    AlignedBuffer buffer(kIoBytes);
    AlignedBuffer expected(kBlock);
    std::uint64_t unchanged = 0;
    for (const Extent& range : ranges) {
        for (std::uint64_t done = 0; done < range.length;) {
            const std::uint64_t chunk = std::min(kIoBytes, range.length - done);
            const ssize_t got =
                ::pread(deviceFd, buffer.data(), chunk, static_cast<off_t>(range.physical + done));
            if (got != static_cast<ssize_t>(chunk))
                throwSystemError("O_DIRECT read of the filesystem's device", got < 0 ? errno : EIO);
            for (std::uint64_t offset = 0; offset < chunk; offset += kBlock) {
                probeBytesAt(seed, range.logical + done + offset, expected.data());
                if (std::memcmp(buffer.data() + offset, expected.data(), kBlock) == 0)
                    unchanged += kBlock;
            }
            done += chunk;
        }
    }
    return unchanged;
}

std::uint64_t largestGranularity(const BlockStack& stack) {
    std::uint64_t granule = kBlock;
    for (const Layer& layer : stack.layers)
        granule = std::max(granule, std::min(layer.discardGranularity, kMaxGranule));
    return alignUp(granule, kBlock);
}

// Under ProtectSystem=strict the daemon sees every mount through a read-only
// view: the probe goes through a private writable copy of that one mount
// (writable_view.h), as f2fs's FITRIM does. A read-only superblock stays
// read-only.
UniqueFd openProbeRoot(const Mount& mount) {
    UniqueFd root = openForTrim(mount);
    struct statvfs view {};
    if (::fstatvfs(root.get(), &view) != 0)
        throwSystemError("statvfs " + mount.mountPoint, errno);
    if ((view.f_flag & ST_RDONLY) == 0)
        return root;
    if (hasMountOption(mount.fsOptions, "ro"))
        throw Inconclusive{"the filesystem is mounted read-only: no probe can be written"};
    try {
        return openWritableView(root.get());
    } catch (const Error& e) {
        throw Inconclusive{
            fmt::format("{} is read-only here and no writable copy of the mount could be made: {}",
                        mount.mountPoint, e.what())};
    }
}

void runProbe(const SystemPaths& paths, const Mount& mount, const BlockStack& stack,
              const VerifyOptions& options, const DmReader& dmReader, VerifyReport& report) {
    const UniqueFd dir = openProbeRoot(mount);
    ProbeFile probe(dir.get());
    probe.remove(); // a crashed run's leftover

    const std::uint64_t granule = largestGranularity(stack);
    const std::uint64_t probeBytes = std::min(
        alignUp(std::max(options.probeBytes, 4 * granule), granule), alignUp(kMaxProbe, granule));
    report.probeBytes = probeBytes;

    struct statvfs space {};
    if (::fstatvfs(dir.get(), &space) != 0)
        throwSystemError("statvfs " + mount.mountPoint, errno);
    const std::uint64_t size = static_cast<std::uint64_t>(space.f_blocks) * space.f_frsize;
    const std::uint64_t available = static_cast<std::uint64_t>(space.f_bavail) * space.f_frsize;
    const std::uint64_t floor =
        std::max(options.minimumFreeAfter, size / 100 * options.minimumFreePercent);
    if (available < probeBytes || available - probeBytes < floor)
        throw Inconclusive{
            fmt::format("too little free space for the {} probe: {} free, and {} must stay free",
                        formatSize(probeBytes), formatSize(available), formatSize(floor))};

    std::uint64_t seed = 0;
    if (::getrandom(&seed, sizeof seed, 0) != sizeof seed)
        throwSystemError("getrandom", errno);

    const std::string name{kVerifyProbeName};
    UniqueFd file(::openat(dir.get(), name.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!file.isValid()) {
        const int err = errno;
        if (err == EROFS)
            throw Inconclusive{"the filesystem is mounted read-only: no probe can be written"};
        throwSystemError(fmt::format("create {}/{}", mount.mountPoint, name), err);
    }
    {
        AlignedBuffer buffer(kIoBytes);
        for (std::uint64_t done = 0; done < probeBytes;) {
            const std::uint64_t chunk = std::min(kIoBytes, probeBytes - done);
            for (std::uint64_t offset = 0; offset < chunk; offset += kBlock)
                fillBlock(seed, (done + offset) / kBlock, buffer.data() + offset);
            const ssize_t written =
                ::pwrite(file.get(), buffer.data(), chunk, static_cast<off_t>(done));
            if (written != static_cast<ssize_t>(chunk)) {
                const int err = written < 0 ? errno : ENOSPC;
                if (err == ENOSPC)
                    throw Inconclusive{"the filesystem ran out of space writing the probe"};
                throwSystemError("write the probe", err);
            }
            done += chunk;
        }
    }
    if (::fsync(file.get()) != 0)
        throwSystemError("fsync the probe", errno);
    const std::vector<Extent> extents = mapExtents(file.get(), probeBytes);
    file.reset();

    // Only whole granules of every layer are certain to be discarded.
    std::vector<Extent> checked;
    for (const Extent& extent : extents) {
        const std::uint64_t length =
            std::min(extent.length, probeBytes - std::min(probeBytes, extent.logical));
        const std::uint64_t start = alignUp(extent.physical, granule);
        const std::uint64_t end = (extent.physical + length) / granule * granule;
        if (end > start)
            checked.push_back({extent.logical + (start - extent.physical), start, end - start});
    }
    if (checked.empty())
        throw Inconclusive{fmt::format("the probe's blocks cover no whole {} discard granule",
                                       formatSize(granule))};
    std::uint64_t checkedBytes = 0;
    for (const Extent& range : checked)
        checkedBytes += range.length;

    const UniqueFd device = openDevice(paths, mount);
    // The mapping is only trusted if the device shows the pattern now.
    const std::uint64_t before = countUnchanged(device.get(), seed, checked);
    if (before < checkedBytes - checkedBytes / 100)
        throw Inconclusive{fmt::format(
            "the device does not show the probe at the offsets FIEMAP gave ({} of {} match)",
            formatSize(before), formatSize(checkedBytes))};

    const std::vector<std::string> leaves = leafDeviceNames(stack);
    const DiscardSnapshot countersBefore = readDiscardSnapshot(paths, leaves);
    probe.remove();
    // Freed blocks become trimmable once the journal commits them, and xfs
    // frees an unlinked file's blocks in a background worker: sync, trim and
    // look again a few times before calling the data undiscarded.
    std::uint64_t trimmed = 0;
    std::uint64_t unchanged = checkedBytes;
    for (unsigned attempt = 0; attempt < kTrimAttempts && unchanged > checkedBytes / 2; ++attempt) {
        if (attempt > 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
        if (::syncfs(dir.get()) != 0)
            throwSystemError("syncfs " + mount.mountPoint, errno);
        for (const Extent& extent : extents) {
            const FitrimResult result =
                issueFitrim(dir.get(), TrimRange{extent.physical, extent.length}, 0);
            if (errnoMeansUnsupported(result.error))
                throw Inconclusive{
                    fmt::format("FITRIM is not supported here: {}", std::strerror(result.error))};
            if (result.error != 0)
                throwSystemError(fmt::format("FITRIM at offset {}", extent.physical), result.error);
            // Over every attempt: ext4 trims a block group once and then
            // reports 0 for it until blocks are freed there again, so a
            // retry after discards the host dropped reports nothing.
            trimmed = saturatingAdd(trimmed, result.trimmedBytes);
        }
        unchanged = countUnchanged(device.get(), seed, checked);
    }
    const DiscardSnapshot countersAfter = readDiscardSnapshot(paths, leaves);

    ProbeReadback readback;
    readback.checkedBytes = checkedBytes;
    readback.unchangedBytes = unchanged;
    readback.trimmedBytes = trimmed;
    if (!countersBefore.empty() && !countersAfter.empty())
        readback.reachedDiskBytes = discardedBytesBetween(countersBefore, countersAfter);
    readback.continuousDiscard =
        hasMountOption(mount.vfsOptions, "discard") || hasMountOption(mount.fsOptions, "discard");
    report.checkedBytes = readback.checkedBytes;
    report.unchangedBytes = readback.unchangedBytes;
    report.trimmedBytes = readback.trimmedBytes;
    report.reachedDiskBytes = readback.reachedDiskBytes;
    judgeReadback(readback, report);

    if (report.verdict == VerifyVerdict::Dropped && readback.unchangedBytes < checkedBytes) {
        // Swallowed in the guest: name the thin pools that do it.
        for (const SwallowingThinPool& pool : findSwallowingThinPools(stack, dmReader))
            report.message += fmt::format("; {}: `{}`", pool.sentence(), pool.fix());
    }
}

} // namespace

std::string droppedByHostSentence() {
    return "the hypervisor drops discards: check the virtual disk's discard setting on the host "
           "(QEMU -drive discard=ignore, the default, must be discard=unmap; Proxmox: tick "
           "Discard on the disk; libvirt: <driver discard='unmap'/>), then restart the VM";
}

void judgeReadback(const ProbeReadback& readback, VerifyReport& report) {
    const std::uint64_t checked = readback.checkedBytes;
    const std::uint64_t gone = checked - std::min(checked, readback.unchangedBytes);
    const std::string reached = readback.reachedDiskBytes
                                    ? fmt::format("{} of discards reached the disks",
                                                  formatSize(*readback.reachedDiskBytes))
                                    : std::string("the disks' discard counters could not be read");
    if (checked == 0) {
        report.verdict = VerifyVerdict::Inconclusive;
        report.message = "nothing could be read back";
        return;
    }
    if (gone == 0) {
        if (readback.trimmedBytes == 0) {
            report.verdict = VerifyVerdict::Inconclusive;
            report.message =
                "the filesystem discarded nothing in the probe's range (FITRIM reported 0 bytes)";
            return;
        }
        report.verdict = VerifyVerdict::Dropped;
        report.message = fmt::format("the filesystem discarded the probe's {} ({}), but every "
                                     "byte of it is still on the device: {}",
                                     formatSize(checked), reached, droppedByHostSentence());
        return;
    }
    if (gone >= checked / 2) {
        if (readback.reachedDiskBytes && *readback.reachedDiskBytes == 0 &&
            !readback.continuousDiscard) {
            report.verdict = VerifyVerdict::Dropped;
            report.message = fmt::format(
                "the probe's blocks were freed inside the guest, but no discard reached the "
                "virtual disks: a layer inside the guest swallowed them");
            return;
        }
        report.verdict = VerifyVerdict::Passes;
        report.message = fmt::format("{} of the probe's {} discarded blocks no longer hold its "
                                     "data: discards take effect below the filesystem ({}){}",
                                     formatSize(gone), formatSize(checked), reached,
                                     readback.trimmedBytes == 0 && readback.continuousDiscard
                                         ? "; the continuous discard mount option freed them "
                                           "before FITRIM"
                                         : "");
        return;
    }
    report.verdict = VerifyVerdict::Inconclusive;
    report.message = fmt::format("only {} of the probe's {} changed after the discard: part of "
                                 "the range may be reused or not discarded ({})",
                                 formatSize(gone), formatSize(checked), reached);
}

VerifyReport verifyFilesystem(const SystemPaths& paths, const Mount& mount, const BlockStack* stack,
                              const DmReader& dmReader, const VerifyOptions& options) {
    const auto started = std::chrono::steady_clock::now();
    VerifyReport report;
    try {
        if (mount.fsType == "btrfs")
            throw Inconclusive{
                "btrfs places files in a logical address space spread over its devices; "
                "thintrim cannot map the probe to device offsets"};
        if (!isSupportedType(mount.fsType))
            throw Inconclusive{
                fmt::format("verify supports ext2/3/4 and xfs, not {}", mount.fsType)};
        if (stack == nullptr)
            throw Inconclusive{"not on a block device"};
        if (!stack->verdict.eligible)
            throw Inconclusive{"its block stack cannot pass discards: " + stack->verdict.reason};
        runProbe(paths, mount, *stack, options, dmReader, report);
    } catch (const Inconclusive& inconclusive) {
        report.verdict = VerifyVerdict::Inconclusive;
        report.message = inconclusive.why;
    } catch (const std::exception& e) {
        report.verdict = VerifyVerdict::Inconclusive;
        report.message = e.what();
    }
    report.duration =
        std::chrono::duration_cast<Microseconds>(std::chrono::steady_clock::now() - started);
    return report;
}

} // namespace thintrim
