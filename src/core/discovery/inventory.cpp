// SPDX-License-Identifier: GPL-2.0-or-later
#include "discovery/inventory.h"

#include "base/error.h"
#include "base/unique_fd.h"
#include "config/config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include <blkid.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <libmount.h>
#include <sys/stat.h>
#include <unistd.h>

namespace thintrim {

namespace {

namespace fs = std::filesystem;

// std::unique_ptr deleter calling the C library's own release function.
template <auto release>
struct ReleaseWith {
    template <typename T>
    void operator()(T* handle) const {
        release(handle);
    }
};

using MountTablePtr = std::unique_ptr<libmnt_table, ReleaseWith<mnt_unref_table>>;
using MountIterPtr = std::unique_ptr<libmnt_iter, ReleaseWith<mnt_free_iter>>;
using ProbePtr = std::unique_ptr<std::remove_pointer_t<blkid_probe>, ReleaseWith<blkid_free_probe>>;

std::string stringOrEmpty(const char* text) {
    return text != nullptr ? text : "";
}

// Calls `visit` on every entry of a libmount table, in file order.
template <typename Visit>
void forEachEntry(libmnt_table* table, Visit&& visit) {
    MountIterPtr iter(mnt_new_iter(MNT_ITER_FORWARD));
    if (!iter)
        throwSystemError("cannot allocate a libmount iterator", ENOMEM);
    libmnt_fs* entry = nullptr;
    while (mnt_table_next_fs(table, iter.get(), &entry) == 0)
        visit(entry);
}

MountTablePtr newMountTable() {
    MountTablePtr table(mnt_new_table());
    if (!table)
        throwSystemError("cannot allocate a libmount table", ENOMEM);
    return table;
}

// The whole file: /proc/self/mountinfo has no size to stat, and one read is
// one consistent snapshot of the table.
std::string readWholeFile(const fs::path& path, const std::string& what) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.isValid())
        throwSystemError("cannot read " + what + " " + path.string(), errno);
    std::string text;
    std::array<char, 65536> buffer{};
    for (;;) {
        const ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            throwSystemError("cannot read " + what + " " + path.string(), errno);
        if (got == 0)
            return text;
        text.append(buffer.data(), static_cast<std::size_t>(got));
    }
}

// A field as the kernel escapes it in mountinfo: space, tab, newline and
// backslash as \040, \011, \012, \134.
std::string unescapeMountField(std::string_view field) {
    if (field.find('\\') == std::string_view::npos)
        return std::string(field);
    std::string text;
    text.reserve(field.size());
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' &&
            field[i + 1] <= '3' && field[i + 2] >= '0' && field[i + 2] <= '7' &&
            field[i + 3] >= '0' && field[i + 3] <= '7') {
            text.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                             (field[i + 3] - '0')));
            i += 3;
        } else {
            text.push_back(field[i]);
        }
    }
    return text;
}

template <typename Number>
bool parseNumber(std::string_view text, Number& value) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return error == std::errc() && end == text.data() + text.size();
}

// One line of mountinfo (proc(5)): "36 35 98:0 /root /mnt rw,noatime
// master:1 - ext3 /dev/root rw,errors=continue". nullopt if it is not one.
std::optional<Mount> parseMountinfoLine(std::string_view line,
                                        std::vector<std::string_view>& fields) {
    fields.clear();
    for (std::size_t start = 0; start < line.size();) {
        const std::size_t end = std::min(line.find(' ', start), line.size());
        if (end > start)
            fields.push_back(line.substr(start, end - start));
        start = end + 1;
    }
    // Optional fields (shared:N, master:N...) end at a lone "-".
    const auto separator = std::find(fields.begin() + std::min<std::size_t>(fields.size(), 6),
                                     fields.end(), std::string_view("-"));
    if (fields.size() < 10 || separator == fields.end() || fields.end() - separator < 4)
        return std::nullopt;
    Mount mount;
    unsigned major = 0;
    unsigned minor = 0;
    const std::string_view device = fields[2];
    const std::size_t colon = device.find(':');
    if (!parseNumber(fields[0], mount.mountId) || !parseNumber(fields[1], mount.parentId) ||
        colon == std::string_view::npos || !parseNumber(device.substr(0, colon), major) ||
        !parseNumber(device.substr(colon + 1), minor))
        return std::nullopt;
    mount.mountDevice = {major, minor};
    mount.root = unescapeMountField(fields[3]);
    mount.mountPoint = unescapeMountField(fields[4]);
    mount.vfsOptions = std::string(fields[5]);
    mount.fsType = unescapeMountField(separator[1]);
    mount.source = unescapeMountField(separator[2]);
    mount.fsOptions = std::string(separator[3]);
    return mount;
}

// Reads the mount table in the kernel's mountinfo format, line by line into
// Mounts: no second copy of it as a libmount table, which at 10,000 mounts
// would double the memory. A line that does not parse is an error: in a
// table written by the kernel it means the file is not a mount table at all,
// and an inventory silently missing mounts is worse than none.
std::vector<Mount> readMountinfo(const fs::path& path) {
    std::string text = readWholeFile(path, "mount table");
    std::vector<Mount> mounts;
    mounts.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
    std::vector<std::string_view> fields;
    std::size_t lineNumber = 0;
    for (std::size_t start = 0; start < text.size();) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string_view line(text.data() + start, end - start);
        start = end + 1;
        ++lineNumber;
        if (line.empty() || line.front() == '#')
            continue;
        std::optional<Mount> mount = parseMountinfoLine(line, fields);
        if (mount) {
            mounts.push_back(std::move(*mount));
            continue;
        }
        // fstab and /proc/mounts lines ("SOURCE TARGET TYPE OPTIONS ..."):
        // a table, but without the mount ids and device numbers every later
        // decision depends on.
        if (fields.size() >= 4 && fields.size() <= 6 && fields[1].starts_with('/'))
            throw Error(ErrorCode::Failed, "cannot parse mount table " + path.string() +
                                               ": not in /proc/self/mountinfo format");
        throw Error(ErrorCode::Failed, "cannot parse mount table " + path.string() + ": line " +
                                           std::to_string(lineNumber) + " is not a mountinfo line");
    }
    return mounts;
}

// nullptr when there is no fstab: a system without one has no fstab options.
MountTablePtr parseFstab(const fs::path& path) {
    std::error_code ec;
    if (!fs::exists(path, ec))
        return nullptr;
    MountTablePtr table = newMountTable();
    // mnt_table_parse_fstab() refuses anything but a file or a directory;
    // `--fstab /dev/null` is the usual way to say "no fstab".
    const int rc = fs::is_character_file(path, ec)
                       ? mnt_table_parse_file(table.get(), path.c_str())
                       : mnt_table_parse_fstab(table.get(), path.c_str());
    // Ignoring an unreadable fstab would ignore the X-fstrim.notrim in it.
    if (rc < 0)
        throwSystemError("cannot read fstab " + path.string(), -rc);
    return table;
}

// The first line of a small sysfs attribute, nullopt if it cannot be read.
std::optional<std::string> readAttribute(const fs::path& path) {
    std::ifstream file(path);
    std::string line;
    if (!file || !std::getline(file, line))
        return std::nullopt;
    return line;
}

// A btrfs filesystem as sys/fs/btrfs/<uuid> describes it.
struct BtrfsFilesystem {
    std::string uuid;
    std::string label;
    std::vector<std::pair<std::string, DeviceNumber>> members; // kernel name, number
};

std::vector<BtrfsFilesystem> readBtrfsFilesystems(const SystemPaths& paths) {
    std::vector<BtrfsFilesystem> filesystems;
    std::error_code ec;
    for (const auto& fsDir : fs::directory_iterator(paths.sys("fs/btrfs"), ec)) {
        // Skips "features", the one entry that is not a filesystem.
        if (!fs::is_directory(fsDir.path() / "devices", ec))
            continue;
        BtrfsFilesystem filesystem;
        filesystem.uuid = fsDir.path().filename().string();
        filesystem.label = readAttribute(fsDir.path() / "label").value_or("");
        for (const auto& member : fs::directory_iterator(fsDir.path() / "devices", ec)) {
            const std::optional<std::string> dev = readAttribute(member.path() / "dev");
            if (dev)
                filesystem.members.emplace_back(member.path().filename().string(),
                                                DeviceNumber::parse(*dev));
        }
        std::sort(filesystem.members.begin(), filesystem.members.end(),
                  [](const auto& a, const auto& b) { return a.second < b.second; });
        filesystems.push_back(std::move(filesystem));
    }
    return filesystems;
}

// The filesystem with `source` as a member. mountinfo names one member, the
// one btrfs picked, whichever device was given to mount.
const BtrfsFilesystem* findBtrfsFilesystem(const SystemPaths& paths,
                                           const std::vector<BtrfsFilesystem>& filesystems,
                                           const std::string& source) {
    const std::string name = fs::path(source).filename().string();
    for (const BtrfsFilesystem& filesystem : filesystems) {
        for (const auto& member : filesystem.members) {
            if (member.first == name)
                return &filesystem;
        }
    }
    // /dev/mapper/<name> is listed under its kernel name (dm-N): match by number.
    const std::optional<DeviceNumber> number = deviceNumberOf(paths, source);
    for (const BtrfsFilesystem& filesystem : filesystems) {
        for (const auto& member : filesystem.members) {
            if (number && member.second == *number)
                return &filesystem;
        }
    }
    return nullptr;
}

using FilesystemNames = DeviceNameCache::Names;

// Reads UUID and LABEL from the superblock on `device`. nullopt when the node
// is absent (fixture trees have no /dev) or holds nothing libblkid knows.
std::optional<FilesystemNames> probeFilesystemNames(const SystemPaths& paths, DeviceNumber device,
                                                    const std::string& source) {
    std::vector<fs::path> nodes = {paths.devRoot / "dev/block" / device.toString()};
    if (source.starts_with("/dev/"))
        nodes.push_back(paths.devRoot / fs::path(source).relative_path());

    for (const fs::path& node : nodes) {
        UniqueFd fd(::open(node.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.isValid())
            continue;
        struct stat info {};
        if (::fstat(fd.get(), &info) != 0)
            continue;
        // A node left behind by a renamed device would name another
        // filesystem. Regular files are accepted so that a test can stand an
        // image in for the device.
        if (S_ISBLK(info.st_mode) ? info.st_rdev != device.toDev() : !S_ISREG(info.st_mode))
            continue;

        ProbePtr probe(blkid_new_probe());
        if (!probe || blkid_probe_set_device(probe.get(), fd.get(), 0, 0) != 0)
            continue;
        blkid_probe_enable_superblocks(probe.get(), 1);
        blkid_probe_set_superblocks_flags(probe.get(), BLKID_SUBLKS_UUID | BLKID_SUBLKS_LABEL);
        if (blkid_do_safeprobe(probe.get()) != 0)
            continue;
        FilesystemNames names;
        const char* value = nullptr;
        if (blkid_probe_lookup_value(probe.get(), "UUID", &value, nullptr) == 0)
            names.uuid = value;
        if (blkid_probe_lookup_value(probe.get(), "LABEL", &value, nullptr) == 0)
            names.label = value;
        return names;
    }
    return std::nullopt;
}

// udev's ID_FS_LABEL_ENC: bytes that are unsafe in a property as "\xNN".
std::string decodeUdevEscapes(std::string_view text) {
    std::string decoded;
    decoded.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 3 < text.size() && text[i + 1] == 'x' &&
            std::isxdigit(static_cast<unsigned char>(text[i + 2])) != 0 &&
            std::isxdigit(static_cast<unsigned char>(text[i + 3])) != 0) {
            decoded.push_back(
                static_cast<char>(std::stoi(std::string(text.substr(i + 2, 2)), nullptr, 16)));
            i += 3;
        } else {
            decoded.push_back(text[i]);
        }
    }
    return decoded;
}

// UUID and label from udev's database, which udev filled by probing the
// device when it appeared or changed: reading it costs no device I/O, so a
// hung disk cannot stall the inventory. nullopt when udev has no filesystem
// recorded for the device (no udev, or it did not probe it).
std::optional<FilesystemNames> udevFilesystemNames(const SystemPaths& paths, DeviceNumber device) {
    std::ifstream file(paths.devRoot / "run/udev/data" / ("b" + device.toString()));
    if (!file)
        return std::nullopt;
    FilesystemNames names;
    bool known = false;
    for (std::string line; std::getline(file, line);) {
        if (line.starts_with("E:ID_FS_UUID=")) {
            names.uuid = line.substr(13);
            known = true;
        } else if (line.starts_with("E:ID_FS_LABEL_ENC=")) {
            names.label = decodeUdevEscapes(std::string_view(line).substr(18));
        } else if (line.starts_with("E:ID_FS_TYPE=") && line.size() > 13) {
            known = true;
        }
    }
    if (!known)
        return std::nullopt;
    return names;
}

// The kernel's disk sequence number: a new one each time a loop device is
// attached or a disk reappears. Empty where the kernel has none.
std::string diskSequence(const SystemPaths& paths, DeviceNumber device) {
    return readAttribute(paths.sys("dev/block") / device.toString() / "diskseq").value_or("");
}

// Names of the filesystem on `device`: from the cache when the device has
// not changed since it was looked up, else from udev's database, else from
// the superblock.
FilesystemNames lookUpNames(const SystemPaths& paths, DeviceNameCache& cache, DeviceNumber device,
                            const std::string& source) {
    std::string sequence = diskSequence(paths, device);
    auto cached = cache.devices.find(device);
    if (cached != cache.devices.end() && cached->second.diskseq == sequence)
        return cached->second;
    ++cache.lookups;
    std::optional<FilesystemNames> names = udevFilesystemNames(paths, device);
    if (!names)
        names = probeFilesystemNames(paths, device, source);
    FilesystemNames result = names.value_or(FilesystemNames{});
    result.diskseq = std::move(sequence);
    cache.devices[device] = result;
    return result;
}

// libmount counts these as pseudo because no device backs them, but they hold
// a person's files: "pseudo" would misdescribe them, and the not-on-a-block-
// device check explains them better.
bool holdsFilesWithoutDevice(std::string_view fsType) {
    return fsType == "overlay" || fsType == "fuse" || fsType.starts_with("fuse.") ||
           fsType == "virtiofs" || fsType == "vboxsf";
}

// Network filesystems libmount's mnt_fs_is_netfs() does not know.
bool isNetworkTypeUnknownToLibmount(std::string_view fsType) {
    static constexpr std::array types = {
        std::string_view("ceph"),           std::string_view("fuse.ceph"),
        std::string_view("fuse.glusterfs"), std::string_view("sshfs"),
        std::string_view("davfs"),          std::string_view("lustre")};
    return std::find(types.begin(), types.end(), fsType) != types.end();
}

// "/" for "/", "/mnt/a" for "/mnt/a//", empty for empty.
std::string_view withoutTrailingSlashes(std::string_view path) {
    while (path.size() > 1 && path.back() == '/')
        path.remove_suffix(1);
    return path;
}

// Mounts with the same key show the same filesystem: bind mounts share a
// device; btrfs subvolumes share the fs UUID.
std::string filesystemKey(const Mount& mount) {
    if (mount.fsType == "btrfs" && !mount.uuid.empty())
        return "btrfs:" + mount.uuid;
    return mount.mountDevice.toString();
}

// Fills the storage fields of each mount, looking up each device and each
// btrfs source once per read.
class StorageResolver {
public:
    StorageResolver(const SystemPaths& paths, DeviceNameCache& cache)
        : paths_(paths), cache_(cache), btrfsFilesystems_(readBtrfsFilesystems(paths)) {}

    void fill(Mount& mount) {
        if (mount.fsType == "btrfs") {
            auto [found, inserted] = btrfsBySource_.try_emplace(mount.source, nullptr);
            if (inserted)
                found->second = findBtrfsFilesystem(paths_, btrfsFilesystems_, mount.source);
            const BtrfsFilesystem* filesystem = found->second;
            if (filesystem == nullptr)
                return;
            mount.uuid = filesystem->uuid;
            mount.label = filesystem->label;
            for (const auto& member : filesystem->members)
                mount.blockDevices.push_back(member.second);
            return;
        }
        // Pseudo and network filesystems live in the anonymous range: they never
        // get here, so nothing is probed for them.
        if (mount.mountDevice.isAnonymous())
            return;
        mount.blockDevices = {mount.mountDevice};
        auto [names, inserted] = seen_.try_emplace(mount.mountDevice);
        if (inserted)
            names->second = lookUpNames(paths_, cache_, mount.mountDevice, mount.source);
        mount.uuid = names->second.uuid;
        mount.label = names->second.label;
    }

    // Forgets the devices no mount uses any more: the cache holds what is
    // mounted now, whatever came and went before.
    void pruneCache() {
        std::erase_if(cache_.devices,
                      [&](const auto& entry) { return !seen_.contains(entry.first); });
    }

private:
    const SystemPaths& paths_;
    DeviceNameCache& cache_;
    std::vector<BtrfsFilesystem> btrfsFilesystems_;
    std::map<std::string, const BtrfsFilesystem*, std::less<>> btrfsBySource_;
    std::map<DeviceNumber, FilesystemNames> seen_; // this read's devices
};

// Finds the mounts that their own mount point does not lead to. Path lookup
// walks down from "/" and, at a mount point, continues on the mount stacked
// last there; a mount is hidden when that walk cannot end on it.
class HiddenMountFinder {
public:
    explicit HiddenMountFinder(const std::vector<Mount>& mounts)
        : mounts_(mounts), blocked_(mounts.size()), state_(mounts.size(), State::Unknown) {
        for (std::size_t i = 0; i < mounts.size(); ++i) {
            byParentAndPath_[{mounts[i].parentId, mounts[i].mountPoint}] = i;
            byId_[mounts[i].mountId] = i;
        }
    }

    // Why mount `index` is hidden, for a person; nullopt when it is reachable.
    [[nodiscard]] std::optional<std::string> reason(std::size_t index) {
        if (std::optional<std::string> top = overMounted(index))
            return top;
        return pathBlocked(index);
    }

private:
    enum class State { Unknown, InProgress, Known };

    [[nodiscard]] std::string describe(std::size_t index) const {
        return "mount " + std::to_string(mounts_[index].mountId) + " (" + mounts_[index].source +
               ")";
    }

    // Another mount stacked on the same mount point, on top of this one.
    [[nodiscard]] std::optional<std::string> overMounted(std::size_t index) const {
        const Mount& mount = mounts_[index];
        auto top = byParentAndPath_.find({mount.mountId, mount.mountPoint});
        if (top == byParentAndPath_.end())
            return std::nullopt;
        return "over-mounted: " + describe(top->second) + " is on top of it";
    }

    // A sibling mounted later on a directory above this mount point: lookup
    // enters the sibling and never comes down to this mount.
    [[nodiscard]] std::optional<std::string> coveredBySibling(std::size_t index) const {
        const Mount& mount = mounts_[index];
        for (std::string_view above = mount.mountPoint; above.size() > 1;) {
            above = withoutTrailingSlashes(above.substr(0, above.rfind('/') + 1));
            auto cover = byParentAndPath_.find({mount.parentId, above});
            if (cover != byParentAndPath_.end() && cover->second != index)
                return "over-mounted: " + describe(cover->second) + " is mounted on " +
                       std::string(above) + ", above it";
        }
        return std::nullopt;
    }

    // Whether lookup of the mount point fails to reach this mount's place in
    // the stack, whatever is on top of it.
    const std::optional<std::string>& pathBlocked(std::size_t index) {
        if (state_[index] == State::Known)
            return blocked_[index];
        // A loop in parent ids (not from a real kernel): stop, call it reachable.
        if (state_[index] == State::InProgress)
            return blocked_[index];
        state_[index] = State::InProgress;
        blocked_[index] = coveredBySibling(index);
        auto parent = byId_.find(mounts_[index].parentId);
        if (!blocked_[index] && parent != byId_.end() && parent->second != index) {
            const std::size_t p = parent->second;
            // Mounted on top of its parent, it is what the parent's mount
            // point leads to, hidden only if that path is blocked. Anywhere
            // inside its parent, it is hidden whenever the parent is.
            const bool stackedOnParent = mounts_[index].mountPoint == mounts_[p].mountPoint;
            const bool parentHidden =
                stackedOnParent ? pathBlocked(p).has_value() : reason(p).has_value();
            if (parentHidden)
                blocked_[index] = "mounted on the hidden mount " + mounts_[p].mountPoint +
                                  " (mount " + std::to_string(mounts_[p].mountId) + ")";
        }
        state_[index] = State::Known;
        return blocked_[index];
    }

    const std::vector<Mount>& mounts_;
    std::map<std::pair<int, std::string_view>, std::size_t> byParentAndPath_;
    std::map<int, std::size_t> byId_;
    std::vector<std::optional<std::string>> blocked_;
    std::vector<State> state_;
};

// The unit name systemd gives a mount point ("/media/data" -> "media-data.mount"),
// as systemd-escape --path --suffix=mount writes it.
std::string mountUnitName(std::string_view mountPoint) {
    while (mountPoint.starts_with('/'))
        mountPoint.remove_prefix(1);
    mountPoint = withoutTrailingSlashes(mountPoint);
    if (mountPoint.empty() || mountPoint == "/")
        return "-.mount";
    std::string name;
    for (std::size_t i = 0; i < mountPoint.size(); ++i) {
        const auto c = static_cast<unsigned char>(mountPoint[i]);
        if (c == '/')
            name += '-';
        else if (std::isalnum(c) != 0 || c == ':' || c == '_' || (c == '.' && i > 0))
            name += static_cast<char>(c);
        else
            name += fmt::format("\\x{:02x}", c);
    }
    return name + ".mount";
}

// Whether a user, not the system, mounted this: udisks (a desktop's file
// manager, udisksctl, the disk image mounter) mounts under /media and
// /run/media. What fstab or an admin's mount unit puts there is the system's.
bool isUserMount(const SystemPaths& paths, libmnt_table* fstab, const std::string& mountPoint) {
    if (!mountPoint.starts_with("/media/") && !mountPoint.starts_with("/run/media/"))
        return false;
    if (fstab != nullptr &&
        mnt_table_find_target(fstab, mountPoint.c_str(), MNT_ITER_BACKWARD) != nullptr)
        return false;
    std::error_code ec;
    return !fs::exists(paths.systemdConfig / mountUnitName(mountPoint), ec);
}

void skip(Mount& mount, SkipReason reason, std::string detail) {
    mount.skipReason = reason;
    mount.skipDetail = std::move(detail);
}

// Checks 1 to 7: everything decided by the mount alone. Duplicate and
// read-only need the whole filesystem and come after.
void applyPerMountChecks(std::vector<Mount>& mounts, libmnt_table* fstab,
                         const std::vector<std::optional<std::string>>& hidden,
                         const SystemPaths& paths, const InventoryOptions& options) {
    const fs::path& fstabPath = paths.fstab;
    // X-fstrim.notrim is about the filesystem: a bind mount of it elsewhere
    // must not trim it behind the user's back.
    std::map<std::string, std::string> noTrimFilesystems; // key -> fstab mount point
    if (fstab != nullptr) {
        for (const Mount& mount : mounts) {
            libmnt_fs* entry =
                mnt_table_find_target(fstab, mount.mountPoint.c_str(), MNT_ITER_BACKWARD);
            if (entry != nullptr &&
                mnt_fs_get_option(entry, "X-fstrim.notrim", nullptr, nullptr) == 0)
                noTrimFilesystems.emplace(filesystemKey(mount), mount.mountPoint);
        }
    }

    for (std::size_t i = 0; i < mounts.size(); ++i) {
        Mount& mount = mounts[i];
        const bool libmountPseudo = mnt_fstype_is_pseudofs(mount.fsType.c_str()) != 0;
        if (auto noTrim = noTrimFilesystems.find(filesystemKey(mount));
            noTrim != noTrimFilesystems.end()) {
            skip(mount, SkipReason::NoTrimOption,
                 noTrim->second == mount.mountPoint
                     ? "X-fstrim.notrim is set for it in " + fstabPath.string()
                     : "X-fstrim.notrim is set in " + fstabPath.string() + " for " +
                           noTrim->second + ", the same filesystem");
        } else if (libmountPseudo && mount.fsType != "autofs" &&
                   !holdsFilesWithoutDevice(mount.fsType)) {
            skip(mount, SkipReason::Pseudo,
                 "pseudo filesystem (" + mount.fsType + "): no storage to trim");
        } else if (mnt_fstype_is_netfs(mount.fsType.c_str()) != 0 ||
                   isNetworkTypeUnknownToLibmount(mount.fsType)) {
            skip(mount, SkipReason::Network,
                 "network filesystem: discards cannot pass over the network");
        } else if (mount.fsType == "autofs") {
            // Never looked into: any access to the path would mount it.
            skip(mount, SkipReason::Autofs,
                 hidden[i] ? "automount point: the filesystem mounted on it is listed instead"
                           : "automount point, not mounted now: thintrim does not mount it; the "
                             "filesystem is listed once it is mounted");
        } else if (mount.mountDevice.isAnonymous() && mount.fsType != "btrfs") {
            skip(mount, SkipReason::NotBlockDevice,
                 "not on a block device (" + mount.fsType + "): nothing below it takes discards");
        } else if (!fsTypeSupportsFitrim(mount.fsType)) {
            skip(mount, SkipReason::UnsupportedType,
                 mount.fsType + " does not support FITRIM (discarding free space)");
        } else if (hidden[i]) {
            skip(mount, SkipReason::Hidden, *hidden[i]);
        } else if (!options.userMedia && isUserMount(paths, fstab, mount.mountPoint)) {
            skip(mount, SkipReason::UserMount,
                 "mounted by a user (udisks mounts under /media and /run/media), not by the "
                 "system; UserMedia=yes in [Filesystems] lets thintrimd trim it");
        }
    }
}

// Checks 8 and 9: one mount represents each filesystem; the rest are
// duplicates, and a filesystem reachable only read-only is left alone.
void applyFilesystemChecks(std::vector<Mount>& mounts) {
    std::map<std::string, std::vector<std::size_t>> byFilesystem;
    for (std::size_t i = 0; i < mounts.size(); ++i) {
        if (mounts[i].isManaged())
            byFilesystem[filesystemKey(mounts[i])].push_back(i);
    }
    for (const auto& [key, indices] : byFilesystem) {
        // FITRIM on any mount trims the whole filesystem, so the choice only
        // matters for what is shown: the mount of the whole tree under the
        // shortest path reads most naturally. Writability must not count:
        // under ProtectSystem=strict + PrivateTmp=yes, / is a read-only view
        // and /tmp a writable bind of a subtree of the same filesystem, and
        // the daemon must still call it /.
        auto preference = [&](std::size_t index) {
            const Mount& mount = mounts[index];
            return std::tuple(mount.root != "/", mount.mountPoint.size(), index);
        };
        const std::size_t representative =
            *std::min_element(indices.begin(), indices.end(), [&](std::size_t a, std::size_t b) {
                return preference(a) < preference(b);
            });
        for (std::size_t index : indices) {
            if (index != representative)
                skip(mounts[index], SkipReason::Duplicate,
                     "same filesystem as " + mounts[representative].mountPoint);
        }

        // Only the superblock decides. A read-only mount of a writable
        // superblock is still trimmed (FITRIM works through an O_RDONLY fd):
        // under systemd's ProtectSystem=strict every mount the daemon sees is
        // a read-only view, which is how fstrim.service came to skip them all.
        Mount& chosen = mounts[representative];
        if (hasMountOption(chosen.fsOptions, "ro"))
            skip(chosen, SkipReason::ReadOnly,
                 hasMountOption(chosen.vfsOptions, "ro")
                     ? "mounted read-only"
                     // Typically errors=remount-ro having fired: not the
                     // moment to discard what the filesystem believes is free.
                     : "the filesystem itself is read-only (ro superblock)");
    }
}

// Last, so that a filesystem excluded under one of its mount points is still
// known by the mount that represents it, and is listed as excluded.
void applyConfigurationChoice(std::vector<Mount>& mounts, const InventoryOptions& options) {
    if (!options.selects)
        return;
    for (Mount& mount : mounts) {
        if (mount.isManaged() && !options.selects(mount.mountPoint, mount.fsType))
            skip(mount, SkipReason::Excluded,
                 "left out by Include=, Exclude= or Types= in the [Filesystems] section of the "
                 "configuration");
    }
}

// An LVM snapshot or a cloned disk carries the UUID of its origin; mounted
// from another device at the same time, the two are different filesystems.
void markSharedUuids(std::vector<Mount>& mounts) {
    std::map<std::string, std::set<DeviceNumber>> devicesByUuid;
    for (const Mount& mount : mounts) {
        if (!mount.uuid.empty() && mount.fsType != "btrfs")
            devicesByUuid[mount.uuid].insert(mount.mountDevice);
    }
    for (Mount& mount : mounts) {
        if (auto found = devicesByUuid.find(mount.uuid);
            found != devicesByUuid.end() && mount.fsType != "btrfs")
            mount.uuidShared = found->second.size() > 1;
    }
}

} // namespace

bool fsTypeSupportsFitrim(std::string_view fsType) {
    static constexpr std::array types = {
        std::string_view("ext2"),  std::string_view("ext3"),     std::string_view("ext4"),
        std::string_view("xfs"),   std::string_view("btrfs"),    std::string_view("f2fs"),
        std::string_view("vfat"),  std::string_view("exfat"),    std::string_view("ntfs3"),
        std::string_view("jfs"),   std::string_view("nilfs2"),   std::string_view("gfs2"),
        std::string_view("ocfs2"), std::string_view("bcachefs"),
    };
    return std::find(types.begin(), types.end(), fsType) != types.end();
}

std::vector<const Mount*> Inventory::managed() const {
    std::vector<const Mount*> result;
    for (const Mount& mount : mounts) {
        if (mount.isManaged())
            result.push_back(&mount);
    }
    return result;
}

const Mount* Inventory::find(std::string_view mountPoint) const {
    const std::string_view wanted = withoutTrailingSlashes(mountPoint);
    // The last match: were two visible, the later mount is the one on top.
    const Mount* found = nullptr;
    for (const Mount& mount : mounts) {
        if (!mount.hidden && !wanted.empty() && mount.mountPoint == wanted)
            found = &mount;
    }
    return found;
}

bool hasMountOption(const std::string& options, const char* name) {
    return mnt_optstr_get_option(options.c_str(), name, nullptr, nullptr) == 0;
}

std::vector<FstabEntry> readFstab(const fs::path& path) {
    std::vector<FstabEntry> entries;
    const MountTablePtr table = parseFstab(path);
    if (!table)
        return entries;
    forEachEntry(table.get(), [&](libmnt_fs* entry) {
        entries.push_back(
            {stringOrEmpty(mnt_fs_get_source(entry)), stringOrEmpty(mnt_fs_get_target(entry)),
             stringOrEmpty(mnt_fs_get_fstype(entry)), stringOrEmpty(mnt_fs_get_options(entry))});
    });
    return entries;
}

InventoryOptions inventoryOptions(const FilesystemsConfig& filesystems) {
    return {filesystems.userMedia,
            [filesystems](std::string_view mountPoint, std::string_view fsType) {
                return filesystems.selects(mountPoint, fsType);
            }};
}

Inventory readInventory(const SystemPaths& paths, const InventoryOptions& options,
                        DeviceNameCache* cache) {
    Inventory inventory{readMountinfo(paths.mountinfo)};
    const MountTablePtr fstab = parseFstab(paths.fstab);
    DeviceNameCache oneRead;
    StorageResolver storage(paths, cache != nullptr ? *cache : oneRead);
    for (Mount& mount : inventory.mounts)
        storage.fill(mount);
    storage.pruneCache();

    std::vector<std::optional<std::string>> hidden;
    hidden.reserve(inventory.mounts.size());
    HiddenMountFinder hiddenMounts(inventory.mounts);
    for (std::size_t i = 0; i < inventory.mounts.size(); ++i) {
        hidden.push_back(hiddenMounts.reason(i));
        inventory.mounts[i].hidden = hidden.back().has_value();
    }

    applyPerMountChecks(inventory.mounts, fstab.get(), hidden, paths, options);
    applyFilesystemChecks(inventory.mounts);
    applyConfigurationChoice(inventory.mounts, options);
    markSharedUuids(inventory.mounts);
    return inventory;
}

} // namespace thintrim
