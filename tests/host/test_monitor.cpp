// SPDX-License-Identifier: GPL-2.0-or-later
#include "../unit/temp_dir.h"
#include "base/error.h"
#include "catch.h"
#include "fake_socket.h"
#include "monitor.h"
#include "test_support.h"

#include <chrono>

#include <sys/stat.h>

using namespace thintrim;
using namespace thintrim::host;
using namespace std::chrono_literals;
using thintrim::host::test::FakePeer;
using thintrim::host::test::readData;

namespace {

std::string compact(const std::string& file) {
    return nlohmann::json::parse(readData(file)).dump() + "\n";
}

} // namespace

TEST_CASE("QMP: greeting, capabilities, events skipped, captured replies") {
    thintrim::test::TempDir dir;
    const auto socket = dir.path() / "qmp";
    FakePeer peer(socket, [](int fd) {
        FakePeer::writeAll(fd, compact("qmp-greeting.json"));
        CHECK_THAT(FakePeer::readLine(fd), thintrim::test::Contains("qmp_capabilities"));
        FakePeer::writeAll(fd, "{\"return\": {}}\n");
        CHECK_THAT(FakePeer::readLine(fd), thintrim::test::Contains("query-block"));
        FakePeer::writeAll(fd, "{\"timestamp\": {}, \"event\": \"RESUME\"}\n" +
                                   compact("qmp-query-block.json"));
        CHECK_THAT(FakePeer::readLine(fd), thintrim::test::Contains("query-blockstats"));
        FakePeer::writeAll(fd, compact("qmp-query-blockstats.json"));
        (void)FakePeer::readLine(fd);
        FakePeer::writeAll(fd, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
                               "\"The command nope has not been found\"}}\n");
    });
    QmpClient client = QmpClient::connect(socket, 2s);
    CHECK(client.qemuVersion() == "7.2.22");
    const auto block = client.execute("query-block");
    const auto stats = parseUnmapStats(block, client.execute("query-blockstats"));
    CHECK(stats.size() == 3);
    CHECK_THROWS_WITH(client.execute("nope"), thintrim::test::Contains("has not been found"));
}

TEST_CASE("QMP: a monitor that never greets is a named timeout, not a hang") {
    thintrim::test::TempDir dir;
    const auto socket = dir.path() / "busy.qmp";
    FakePeer peer(socket, [](int fd) { (void)FakePeer::readLine(fd); });
    const auto started = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH(QmpClient::connect(socket, 300ms),
                      thintrim::test::Contains("QMP") &&
                          thintrim::test::Contains("did not answer") &&
                          thintrim::test::Contains("greeting"));
    CHECK(std::chrono::steady_clock::now() - started < 2s);
}

TEST_CASE("sockets: missing, refused, not allowed") {
    thintrim::test::TempDir dir;
    CHECK_THROWS_WITH(QmpClient::connect(dir.path() / "none.qmp", 1s),
                      thintrim::test::Contains("does not exist") &&
                          thintrim::test::Contains("is the VM running"));
    CHECK_THROWS_WITH(GuestAgentClient::connect(dir.path() / "none.qga", 1s),
                      thintrim::test::Contains("guest agent channel"));
    {
        // A socket file nobody listens on (a VM that crashed).
        FakePeer stale(dir.path() / "stale.qmp", [](int) {});
    }
    CHECK_THROWS_WITH(QmpClient::connect(dir.path() / "stale.qmp", 1s),
                      thintrim::test::Contains("nobody listens") ||
                          thintrim::test::Contains("closed"));
    if (::geteuid() != 0) {
        FakePeer locked(dir.path() / "locked.qmp", [](int) {});
        ::chmod((dir.path() / "locked.qmp").c_str(), 0);
        CHECK_THROWS_AS(QmpClient::connect(dir.path() / "locked.qmp", 1s), Error);
    }
}

TEST_CASE("guest agent (fake): sync past stale output, guest-exec, status polling, base64") {
    thintrim::test::TempDir dir;
    const auto socket = dir.path() / "qga";
    FakePeer agent(socket, [](int fd) {
        // A leftover answer of an earlier client, then the 0xFF we sent.
        FakePeer::writeAll(fd, "{\"return\": 12}\n");
        std::string first = FakePeer::readLine(fd);
        CHECK(first.front() == '\xff');
        const auto sync = nlohmann::json::parse(first.substr(1));
        CHECK(sync["execute"] == "guest-sync-delimited");
        FakePeer::writeAll(fd, "\xff{\"return\": " + sync["arguments"]["id"].dump() + "}\n");
        const auto exec = nlohmann::json::parse(FakePeer::readLine(fd));
        CHECK(exec["execute"] == "guest-exec");
        CHECK(exec["arguments"]["path"] == "fstrim");
        CHECK(exec["arguments"]["capture-output"] == true);
        FakePeer::writeAll(fd, "{\"return\": {\"pid\": 4242}}\n");
        CHECK_THAT(FakePeer::readLine(fd), thintrim::test::Contains("guest-exec-status"));
        FakePeer::writeAll(fd, "{\"return\": {\"exited\": false}}\n");
        CHECK_THAT(FakePeer::readLine(fd), thintrim::test::Contains("4242"));
        // "/: 1 GiB (1073741824 bytes) trimmed on /dev/sda1\n"
        FakePeer::writeAll(fd,
                           "{\"return\": {\"exited\": true, \"exitcode\": 0, \"out-data\": "
                           "\"LzogMSBHaUIgKDEwNzM3NDE4MjQgYnl0ZXMpIHRyaW1tZWQgb24gL2Rldi9zZGExCg"
                           "==\"}}\n");
    });
    GuestAgentClient client = GuestAgentClient::connect(socket, 2s);
    const auto result = client.run("fstrim", {"-av"}, 5s);
    CHECK(result.exitCode == 0);
    CHECK(result.out == "/: 1 GiB (1073741824 bytes) trimmed on /dev/sda1\n");
}

TEST_CASE("guest agent (fake): a channel with no agent behind it times out, named") {
    thintrim::test::TempDir dir;
    const auto socket = dir.path() / "silent.qga";
    // QEMU accepts on the chardev whether or not the agent runs in the guest.
    FakePeer silent(socket, [](int fd) { (void)FakePeer::readLine(fd); });
    const auto started = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH(GuestAgentClient::connect(socket, 300ms),
                      thintrim::test::Contains("guest agent") &&
                          thintrim::test::Contains("qemu-guest-agent"));
    CHECK(std::chrono::steady_clock::now() - started < 2s);
}

TEST_CASE("base64 as the agent sends it") {
    CHECK(decodeBase64("") == "");
    CHECK(decodeBase64("aGk=") == "hi");
    CHECK(decodeBase64("aGVsbG8gd29ybGQ=") == "hello world");
    CHECK(decodeBase64("AP8=") == std::string("\0\xff", 2));
    CHECK_THROWS_AS(decodeBase64("a*b"), Error);
}
