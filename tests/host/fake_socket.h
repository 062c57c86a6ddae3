// SPDX-License-Identifier: GPL-2.0-or-later
// A FAKE peer for the protocol tests: a unix socket served by a thread that
// plays a script (QMP or guest agent lines). Not QEMU and not
// qemu-guest-agent; the real QMP replies it sends are the captured ones.
#pragma once

#include "base/unique_fd.h"

#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace thintrim::host::test {

class FakePeer {
public:
    // The script gets the connected fd; readLine()/writeAll() help it.
    using Script = std::function<void(int fd)>;

    FakePeer(const std::filesystem::path& path, Script script) : path_(path) {
        listener_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
        if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
            ::listen(listener_.get(), 1) != 0)
            throw std::runtime_error("cannot listen on " + path.string());
        thread_ = std::thread([this, script = std::move(script)] {
            UniqueFd connection(::accept(listener_.get(), nullptr, nullptr));
            if (connection.isValid())
                script(connection.get());
        });
    }
    ~FakePeer() {
        ::shutdown(listener_.get(), SHUT_RDWR);
        thread_.join();
    }
    FakePeer(const FakePeer&) = delete;
    FakePeer& operator=(const FakePeer&) = delete;

    static std::string readLine(int fd) {
        std::string line;
        char c = 0;
        while (::read(fd, &c, 1) == 1) {
            if (c == '\n')
                return line;
            line += c;
        }
        return line;
    }
    static void writeAll(int fd, const std::string& text) {
        std::size_t done = 0;
        while (done < text.size()) {
            const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
            if (n <= 0)
                return;
            done += static_cast<std::size_t>(n);
        }
    }

private:
    std::filesystem::path path_;
    UniqueFd listener_;
    std::thread thread_;
};

} // namespace thintrim::host::test
