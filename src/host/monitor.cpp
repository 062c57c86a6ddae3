// SPDX-License-Identifier: GPL-2.0-or-later
#include "monitor.h"

#include "base/error.h"

#include <array>
#include <cstring>
#include <random>
#include <thread>

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace thintrim::host {

Deadline deadlineIn(std::chrono::milliseconds timeout) {
    return std::chrono::steady_clock::now() + timeout;
}

namespace {

int millisecondsLeft(Deadline deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1 << 30));
}

// Waits for `events` on `fd` until `deadline`; false on timeout.
bool waitFor(int fd, short events, Deadline deadline) {
    for (;;) {
        pollfd pfd{fd, events, 0};
        const int ready = ::poll(&pfd, 1, millisecondsLeft(deadline));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            throwSystemError("poll", errno);
        return ready > 0;
    }
}

} // namespace

JsonLineSocket JsonLineSocket::connect(const std::filesystem::path& path, std::string what,
                                       Deadline deadline) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof(address.sun_path))
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("{} socket path {} is too long", what, path.string()));
    std::memcpy(address.sun_path, path.c_str(), path.native().size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.isValid())
        throwSystemError("socket", errno);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        const int err = errno;
        if (err == ENOENT)
            throw Error(ErrorCode::Failed,
                        fmt::format("{} socket {} does not exist: is the VM running{}?", what,
                                    path.string(),
                                    what == "guest agent" ? " with a guest agent channel" : ""));
        if (err == EACCES || err == EPERM)
            throw Error(ErrorCode::AccessDenied,
                        fmt::format("may not open the {} socket {}: {} (run as root)", what,
                                    path.string(), std::strerror(err)));
        if (err == ECONNREFUSED)
            throw Error(ErrorCode::Failed,
                        fmt::format("nobody listens on the {} socket {}: the VM is not running",
                                    what, path.string()));
        if (err != EINPROGRESS && err != EAGAIN)
            throwSystemError(fmt::format("connecting to the {} socket {}", what, path.string()),
                             err);
        if (!waitFor(fd.get(), POLLOUT, deadline))
            throw Error(ErrorCode::Failed, fmt::format("connecting to the {} socket {} timed out",
                                                       what, path.string()));
    }
    return JsonLineSocket(std::move(fd), std::move(what), path);
}

void JsonLineSocket::sendRaw(std::string_view bytes, Deadline deadline) {
    while (!bytes.empty()) {
        const ssize_t sent = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(sent));
            continue;
        }
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && errno != EAGAIN)
            throwSystemError(fmt::format("writing to the {} socket {}", what_, path_.string()),
                             errno);
        if (!waitFor(fd_.get(), POLLOUT, deadline))
            throw Error(ErrorCode::Failed,
                        fmt::format("the {} socket {} does not take a command (timed out)", what_,
                                    path_.string()));
    }
}

void JsonLineSocket::send(const nlohmann::json& message, Deadline deadline) {
    sendRaw(message.dump() + "\n", deadline);
}

void JsonLineSocket::fill(Deadline deadline, std::string_view waitingFor) {
    if (buffer_.size() > (16 << 20))
        throw Error(ErrorCode::Failed,
                    fmt::format("the {} at {} sent more than 16 MiB without a line end", what_,
                                path_.string()));
    if (!waitFor(fd_.get(), POLLIN, deadline))
        throw Error(ErrorCode::Failed, fmt::format("the {} at {} did not answer {} in time", what_,
                                                   path_.string(), waitingFor));
    std::array<char, 65536> chunk{};
    const ssize_t got = ::recv(fd_.get(), chunk.data(), chunk.size(), 0);
    if (got == 0)
        throw Error(ErrorCode::Failed, fmt::format("the {} at {} closed the connection ({})", what_,
                                                   path_.string(), waitingFor));
    if (got < 0 && errno != EAGAIN && errno != EINTR)
        throwSystemError(fmt::format("reading from the {} socket {}", what_, path_.string()),
                         errno);
    if (got > 0)
        buffer_.append(chunk.data(), static_cast<std::size_t>(got));
}

nlohmann::json JsonLineSocket::receive(Deadline deadline, std::string_view waitingFor) {
    for (;;) {
        const auto newline = buffer_.find('\n');
        if (newline != std::string::npos) {
            const std::string line = buffer_.substr(0, newline);
            buffer_.erase(0, newline + 1);
            auto json = nlohmann::json::parse(line, nullptr, false);
            if (!json.is_discarded() && json.is_object())
                return json;
            continue; // a blank line or a stray fragment before a sync
        }
        fill(deadline, waitingFor);
    }
}

void JsonLineSocket::skipPast(char marker, Deadline deadline, std::string_view waitingFor) {
    for (;;) {
        const auto found = buffer_.find(marker);
        if (found != std::string::npos) {
            buffer_.erase(0, found + 1);
            return;
        }
        buffer_.clear();
        fill(deadline, waitingFor);
    }
}

nlohmann::json qmpReturn(const nlohmann::json& reply, std::string_view command) {
    if (reply.contains("return"))
        return reply["return"];
    if (reply.contains("error"))
        throw Error(ErrorCode::Failed,
                    fmt::format("{} failed: {}", command,
                                reply["error"].value("desc", reply["error"].dump())));
    throw Error(ErrorCode::Failed, fmt::format("{}: unexpected answer {}", command, reply.dump()));
}

QmpClient QmpClient::connect(const std::filesystem::path& path, std::chrono::milliseconds timeout) {
    QmpClient client(JsonLineSocket::connect(path, "QMP", deadlineIn(timeout)), timeout);
    const auto greeting = client.socket_.receive(
        deadlineIn(timeout), "with its greeting (is another client connected?)");
    if (!greeting.contains("QMP"))
        throw Error(ErrorCode::Failed, fmt::format("{} is not a QMP socket: it greeted with {}",
                                                   path.string(), greeting.dump()));
    const auto version = greeting["QMP"].value("version", nlohmann::json::object());
    if (version.contains("qemu"))
        client.version_ =
            fmt::format("{}.{}.{}", version["qemu"].value("major", 0),
                        version["qemu"].value("minor", 0), version["qemu"].value("micro", 0));
    (void)client.execute("qmp_capabilities");
    return client;
}

nlohmann::json QmpClient::execute(std::string_view command, const nlohmann::json& arguments) {
    nlohmann::json message{{"execute", command}};
    if (!arguments.is_null())
        message["arguments"] = arguments;
    const Deadline deadline = deadlineIn(timeout_);
    socket_.send(message, deadline);
    for (;;) {
        auto reply = socket_.receive(deadline, command);
        if (reply.contains("event"))
            continue;
        return qmpReturn(reply, command);
    }
}

std::vector<BlockUnmapStats> parseUnmapStats(const nlohmann::json& queryBlock,
                                             const nlohmann::json& queryBlockstats) {
    std::vector<BlockUnmapStats> all;
    if (!queryBlock.is_array() || !queryBlockstats.is_array())
        return all;
    for (const auto& block : queryBlock) {
        if (!block.is_object() || !block.contains("inserted"))
            continue;
        BlockUnmapStats stats;
        stats.device = block.value("device", "");
        stats.qdev = block.value("qdev", "");
        stats.nodeName = block["inserted"].value("node-name", "");
        stats.image = block["inserted"].value("file", "");
        for (const auto& entry : queryBlockstats) {
            if (!entry.is_object() || !entry.contains("stats"))
                continue;
            const bool same =
                (!stats.qdev.empty() && entry.value("qdev", "") == stats.qdev) ||
                (!stats.device.empty() && entry.value("device", "") == stats.device) ||
                (!stats.nodeName.empty() && entry.value("node-name", "") == stats.nodeName);
            if (!same)
                continue;
            const auto& counters = entry["stats"];
            stats.unmapBytes = counters.value("unmap_bytes", std::uint64_t{0});
            stats.unmapOperations = counters.value("unmap_operations", std::uint64_t{0});
            stats.failedUnmapOperations =
                counters.value("failed_unmap_operations", std::uint64_t{0});
            break;
        }
        all.push_back(std::move(stats));
    }
    return all;
}

std::string decodeBase64(std::string_view text) {
    std::string out;
    std::uint32_t bits = 0;
    int count = 0;
    for (char c : text) {
        int value = 0;
        if (c >= 'A' && c <= 'Z')
            value = c - 'A';
        else if (c >= 'a' && c <= 'z')
            value = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            value = c - '0' + 52;
        else if (c == '+')
            value = 62;
        else if (c == '/')
            value = 63;
        else if (c == '=' || c == '\n' || c == '\r')
            continue;
        else
            throw Error(ErrorCode::InvalidArgument, "guest output is not valid base64");
        bits = (bits << 6) | static_cast<std::uint32_t>(value);
        count += 6;
        if (count >= 8) {
            count -= 8;
            out += static_cast<char>((bits >> count) & 0xFF);
        }
    }
    return out;
}

GuestAgentClient GuestAgentClient::connect(const std::filesystem::path& path,
                                           std::chrono::milliseconds timeout) {
    GuestAgentClient client(JsonLineSocket::connect(path, "guest agent", deadlineIn(timeout)),
                            timeout);
    // The agent answers guest-sync-delimited with 0xFF before the JSON: what
    // came before it is an earlier client's leftover. The 0xFF we send first
    // makes the agent drop a half-written command of an earlier client.
    std::random_device random;
    const std::uint32_t id = random() & 0x7FFFFFFF;
    const Deadline deadline = deadlineIn(timeout);
    client.socket_.sendRaw("\xff", deadline);
    client.socket_.send({{"execute", "guest-sync-delimited"}, {"arguments", {{"id", id}}}},
                        deadline);
    const std::string_view waiting =
        "guest-sync-delimited (is qemu-guest-agent installed and running in the guest?)";
    for (;;) {
        client.socket_.skipPast('\xff', deadline, waiting);
        const auto reply = client.socket_.receive(deadline, waiting);
        if (reply.value("return", nlohmann::json()) == id)
            return client;
    }
}

nlohmann::json GuestAgentClient::execute(std::string_view command,
                                         const nlohmann::json& arguments) {
    nlohmann::json message{{"execute", command}};
    if (!arguments.is_null())
        message["arguments"] = arguments;
    const Deadline deadline = deadlineIn(timeout_);
    socket_.send(message, deadline);
    return qmpReturn(socket_.receive(deadline, command), command);
}

GuestExecResult GuestAgentClient::run(const std::string& program,
                                      const std::vector<std::string>& args,
                                      std::chrono::milliseconds overall) {
    const auto started =
        execute("guest-exec", {{"path", program}, {"arg", args}, {"capture-output", true}});
    const auto pid = started.value("pid", -1);
    const Deadline deadline = deadlineIn(overall);
    const std::string commandLine = fmt::format("{} {}", program, fmt::join(args, " "));
    for (;;) {
        const auto status = execute("guest-exec-status", {{"pid", pid}});
        if (status.value("exited", false)) {
            GuestExecResult result;
            result.exitCode = status.value("exitcode", status.contains("signal") ? 128 : -1);
            result.out = decodeBase64(status.value("out-data", ""));
            result.err = decodeBase64(status.value("err-data", ""));
            return result;
        }
        if (std::chrono::steady_clock::now() >= deadline)
            throw Error(
                ErrorCode::Failed,
                fmt::format("`{}` in the guest did not finish within {}s (it goes on "
                            "there; guest pid {})",
                            commandLine,
                            std::chrono::duration_cast<std::chrono::seconds>(overall).count(),
                            pid));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

} // namespace thintrim::host
