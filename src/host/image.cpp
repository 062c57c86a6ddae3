// SPDX-License-Identifier: GPL-2.0-or-later
#include "image.h"

#include "base/error.h"
#include "base/text.h"
#include "base/unique_fd.h"
#include "stack/block_stack.h"

#include <array>
#include <fstream>

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

namespace thintrim::host {

namespace {

std::uint64_t bigEndian(std::string_view bytes, std::size_t offset, std::size_t width) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < width; ++i)
        value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
    return value;
}

std::optional<std::string> readSmallFile(const std::filesystem::path& path) {
    std::ifstream file(path);
    if (!file)
        return std::nullopt;
    std::string text;
    std::getline(file, text);
    return text;
}

} // namespace

std::optional<Qcow2Header> parseQcow2Header(std::string_view bytes) {
    // QEMU's docs/interop/qcow2.txt: magic "QFI\xfb", then big-endian
    // version (4), backing_file_offset (8), backing_file_size (4),
    // cluster_bits (4), size (8) ... nb_snapshots at 60 (4).
    if (bytes.size() < 72 || bytes.substr(0, 4) != std::string_view("QFI\xfb", 4))
        return std::nullopt;
    Qcow2Header header;
    header.version = static_cast<std::uint32_t>(bigEndian(bytes, 4, 4));
    const std::uint64_t backingOffset = bigEndian(bytes, 8, 8);
    const std::uint64_t backingSize = bigEndian(bytes, 16, 4);
    header.virtualSize = bigEndian(bytes, 24, 8);
    header.snapshots = static_cast<std::uint32_t>(bigEndian(bytes, 60, 4));
    if (backingOffset != 0 && backingSize > 0 && backingSize <= 1023 &&
        backingOffset + backingSize <= bytes.size())
        header.backingFile = bytes.substr(backingOffset, backingSize);
    else if (backingOffset != 0)
        header.backingFile = "(backing file)";
    return header;
}

CommandRunner systemCommandRunner(std::chrono::milliseconds timeout) {
    return [timeout](const std::vector<std::string>& args) -> std::optional<std::string> {
        std::array<int, 2> pipeFds{};
        if (::pipe2(pipeFds.data(), O_CLOEXEC) != 0)
            return std::nullopt;
        UniqueFd readEnd(pipeFds[0]);
        UniqueFd writeEnd(pipeFds[1]);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, writeEnd.get(), STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        std::vector<char*> argv;
        for (const std::string& arg : args)
            argv.push_back(const_cast<char*>(arg.c_str()));
        argv.push_back(nullptr);
        pid_t pid = 0;
        const int spawned = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        writeEnd.reset();
        if (spawned != 0)
            return std::nullopt;
        std::string output;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        bool timedOut = false;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                timedOut = true;
                break;
            }
            pollfd pfd{readEnd.get(), POLLIN, 0};
            const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
            if (ready < 0 && errno == EINTR)
                continue;
            if (ready <= 0) {
                timedOut = ready == 0;
                break;
            }
            std::array<char, 4096> buffer{};
            const ssize_t got = ::read(readEnd.get(), buffer.data(), buffer.size());
            if (got <= 0)
                break;
            if (output.size() < (1 << 20))
                output.append(buffer.data(), static_cast<std::size_t>(got));
        }
        if (timedOut)
            ::kill(pid, SIGKILL);
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (timedOut || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return std::nullopt;
        return output;
    };
}

namespace {

void probeBlockDevice(const std::string& image, const DeviceNumber& device, const ImageProbe& probe,
                      ImageUsage& usage) {
    const std::filesystem::path sysDir = probe.sysfsRoot / "sys/dev/block" / device.toString();
    usage.kind = "block device";
    if (auto sectors = readSmallFile(sysDir / "size")) {
        if (auto value = parseDecimal(*sectors))
            usage.sizeBytes = *value * 512;
    }
    if (image.starts_with("/dev/zvol/")) {
        usage.kind = "zvol";
        const std::string dataset = image.substr(std::string_view("/dev/zvol/").size());
        std::optional<std::string> output;
        if (probe.runCommand)
            output = probe.runCommand(
                {"zfs", "get", "-Hp", "-o", "property,value", "used,refreservation", dataset});
        // "used\t123\nrefreservation\t0\n"
        const std::string text = output.value_or(""); // the fields point into it
        const auto fields = splitFields(text);
        for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
            if (fields[i] == "used")
                usage.allocatedBytes = parseDecimal(fields[i + 1]);
            else if (fields[i] == "refreservation")
                usage.reservedBytes = parseDecimal(fields[i + 1]);
        }
        if (!usage.allocatedBytes)
            usage.note = fmt::format("`zfs get used {}` gave no answer", dataset);
        return;
    }
    if (!readSmallFile(sysDir / "dm/name"))
        return;
    usage.kind = "LV";
    if (!probe.dmReader)
        return;
    const auto read = probe.dmReader(device);
    if (!read || read->table.empty()) {
        usage.note = "its device-mapper table cannot be read (root needed)";
        return;
    }
    if (read->table.front().type != "thin")
        return;
    usage.kind = "thin LV";
    // Thin status: "<nr mapped sectors> <highest mapped sector>".
    if (!read->status.empty()) {
        const auto fields = splitFields(read->status.front().params);
        if (!fields.empty()) {
            if (auto mapped = parseDecimal(fields[0]))
                usage.allocatedBytes = *mapped * 512;
        }
    }
    // Thin table: "<pool dev> <dev id>", the pool as MAJ:MIN.
    const auto fields = splitFields(read->table.front().params);
    if (fields.empty())
        return;
    DeviceNumber pool;
    try {
        pool = DeviceNumber::parse(fields[0]);
    } catch (const Error&) {
        return;
    }
    if (auto poolName =
            readSmallFile(probe.sysfsRoot / "sys/dev/block" / pool.toString() / "dm/name")) {
        std::string name = lvmVolumeName(*poolName);
        if (name.ends_with("-tpool"))
            name.resize(name.size() - 6);
        usage.thinPool = name;
    }
    if (const auto poolRead = probe.dmReader(pool)) {
        if (!poolRead->status.empty())
            usage.thinPoolDiscards = thinPoolDiscardsFromStatus(poolRead->status.front().params);
        if (!usage.thinPoolDiscards && !poolRead->table.empty())
            usage.thinPoolDiscards = thinPoolDiscardsFromTable(poolRead->table.front().params);
    }
}

} // namespace

ImageUsage probeBlockImage(const std::string& image, const DeviceNumber& device,
                           const ImageProbe& probe) {
    ImageUsage usage;
    probeBlockDevice(image, device, probe, usage);
    return usage;
}

ImageUsage probeImage(const std::string& image, const ImageProbe& probe) {
    ImageUsage usage;
    if (!image.starts_with('/')) {
        usage.kind = image.substr(0, image.find(':'));
        usage.note = "not a local file or block device: not inspected";
        return usage;
    }
    struct stat info {};
    if (::stat(image.c_str(), &info) != 0) {
        usage.kind = "missing";
        usage.note = fmt::format("{}: {}", image, std::strerror(errno));
        return usage;
    }
    if (S_ISBLK(info.st_mode))
        return probeBlockImage(image, DeviceNumber::fromDev(info.st_rdev), probe);
    if (!S_ISREG(info.st_mode)) {
        usage.kind = "other";
        usage.note = "neither a file nor a block device";
        return usage;
    }
    usage.allocatedBytes = static_cast<std::uint64_t>(info.st_blocks) * 512;
    usage.sizeBytes = static_cast<std::uint64_t>(info.st_size);
    usage.kind = "raw file";
    UniqueFd fd(::open(image.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.isValid()) {
        usage.note = fmt::format("cannot read its header: {}", std::strerror(errno));
        return usage;
    }
    std::array<char, 2048> header{};
    const ssize_t got = ::pread(fd.get(), header.data(), header.size(), 0);
    if (got > 0) {
        usage.qcow2 =
            parseQcow2Header(std::string_view(header.data(), static_cast<std::size_t>(got)));
        if (usage.qcow2) {
            usage.kind = "qcow2 file";
            usage.sizeBytes = usage.qcow2->virtualSize;
        }
    }
    return usage;
}

} // namespace thintrim::host
