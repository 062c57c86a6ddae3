// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/unique_fd.h"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace thintrim::host {

using Deadline = std::chrono::steady_clock::time_point;
[[nodiscard]] Deadline deadlineIn(std::chrono::milliseconds timeout);

// JSON objects, one per line, over a unix stream socket: what QMP and the
// guest agent speak. Every wait has a deadline (poll()), so a stuck monitor
// or an agent that is not running in the guest ends in an Error naming the
// socket and how long it waited, never in a hang.
class JsonLineSocket {
public:
    // `what` names the peer in errors ("QMP", "guest agent"). Throws
    // Error(Failed) for a missing socket (the VM is not running), a socket
    // this user may not open, or nobody listening.
    [[nodiscard]] static JsonLineSocket connect(const std::filesystem::path& path, std::string what,
                                                Deadline deadline);

    void sendRaw(std::string_view bytes, Deadline deadline);
    void send(const nlohmann::json& message, Deadline deadline);
    // The next line that is a JSON object; Error(Failed) on timeout or EOF.
    [[nodiscard]] nlohmann::json receive(Deadline deadline, std::string_view waitingFor);
    // Drops everything up to and including the byte `marker` (the guest
    // agent's 0xFF sync delimiter), waiting for it.
    void skipPast(char marker, Deadline deadline, std::string_view waitingFor);

    [[nodiscard]] const std::string& what() const { return what_; }

private:
    JsonLineSocket(UniqueFd fd, std::string what, std::filesystem::path path)
        : fd_(std::move(fd)), what_(std::move(what)), path_(std::move(path)) {}
    void fill(Deadline deadline, std::string_view waitingFor);

    UniqueFd fd_;
    std::string what_;
    std::filesystem::path path_;
    std::string buffer_;
};

// A QMP command's answer: "return" or an Error(Failed) carrying QMP's "desc".
[[nodiscard]] nlohmann::json qmpReturn(const nlohmann::json& reply, std::string_view command);

class QmpClient {
public:
    // Reads the greeting and enters command mode (qmp_capabilities).
    [[nodiscard]] static QmpClient connect(const std::filesystem::path& path,
                                           std::chrono::milliseconds timeout);
    // The command's "return"; asynchronous events in between are skipped.
    [[nodiscard]] nlohmann::json execute(std::string_view command,
                                         const nlohmann::json& arguments = nullptr);
    // "7.2.22" from the greeting.
    [[nodiscard]] const std::string& qemuVersion() const { return version_; }

private:
    QmpClient(JsonLineSocket socket, std::chrono::milliseconds timeout)
        : socket_(std::move(socket)), timeout_(timeout) {}
    JsonLineSocket socket_;
    std::chrono::milliseconds timeout_;
    std::string version_;
};

// The discard counters QEMU keeps per disk (query-blockstats), matched to
// query-block's entries for the image and device names.
struct BlockUnmapStats {
    std::string device;   // "drive-scsi0"; empty for -blockdev disks
    std::string nodeName; // "#block142", "libvirt-1-format"
    std::string qdev;     // "scsi0", "/machine/peripheral/virtio1/virtio-backend"
    std::string image;    // inserted.file
    std::uint64_t unmapBytes = 0;
    std::uint64_t unmapOperations = 0;
    std::uint64_t failedUnmapOperations = 0;
};

// From the "return" values of query-block and query-blockstats.
[[nodiscard]] std::vector<BlockUnmapStats> parseUnmapStats(const nlohmann::json& queryBlock,
                                                           const nlohmann::json& queryBlockstats);

// The guest's process output comes base64-encoded; invalid input throws
// Error(InvalidArgument).
[[nodiscard]] std::string decodeBase64(std::string_view text);

struct GuestExecResult {
    int exitCode = -1;
    std::string out;
    std::string err;
};

class GuestAgentClient {
public:
    // Connects and synchronises (guest-sync-delimited), so answers left in
    // the channel by an earlier client are skipped. An agent that is not
    // running in the guest is a timeout here.
    [[nodiscard]] static GuestAgentClient connect(const std::filesystem::path& path,
                                                  std::chrono::milliseconds timeout);
    [[nodiscard]] nlohmann::json execute(std::string_view command,
                                         const nlohmann::json& arguments = nullptr);
    // guest-exec with captured output, then guest-exec-status until it
    // exits or `overall` passes (Error(Failed) naming the command).
    [[nodiscard]] GuestExecResult run(const std::string& program,
                                      const std::vector<std::string>& args,
                                      std::chrono::milliseconds overall);

private:
    GuestAgentClient(JsonLineSocket socket, std::chrono::milliseconds timeout)
        : socket_(std::move(socket)), timeout_(timeout) {}
    JsonLineSocket socket_;
    std::chrono::milliseconds timeout_;
};

} // namespace thintrim::host
