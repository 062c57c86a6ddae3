// SPDX-License-Identifier: GPL-2.0-or-later
// The two sdbus-c++ 1.x/2.x differences that compile either way but break at
// run time (src/dbus/sdbus_compat.h): the type of a Trim option read from its
// variant, and the event loop's wake-up for messages that sdbus-c++ has read
// already. Built against the installed sdbus-c++, so each release's package
// build runs it against its own version.
#include "base/error.h"
#include "bus_objects.h"
#include "catch.h"
#include "event_loop.h"
#include "sdbus_compat.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

using namespace thintrim;
using namespace thintrim::daemon;
using namespace std::chrono_literals;

TEST_CASE("Trim options are accepted by their D-Bus type", "[options]") {
    const TrimRequestOptions parsed = parseTrimRequestOptions({
        {"dry_run", sdbus::Variant(true)},
        {"minimum_extent", sdbus::Variant(std::uint64_t{4096})},
        {"rate_limit", sdbus::Variant(std::uint64_t{200} << 20)},
        {"chunk_size", sdbus::Variant(std::uint64_t{1} << 30)},
    });
    REQUIRE(parsed.dryRun == true);
    REQUIRE(parsed.minimumExtent == 4096U);
    REQUIRE(parsed.rateLimit == std::uint64_t{200} << 20);
    REQUIRE(parsed.chunkSize == std::uint64_t{1} << 30);
}

TEST_CASE("a Trim option of the wrong type is refused, naming both types", "[options]") {
    try {
        (void)parseTrimRequestOptions({{"rate_limit", sdbus::Variant(std::int32_t{5})}});
        FAIL("a rate_limit of type i was accepted");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidArgument);
        CHECK_THAT(e.what(), thintrim::test::Contains("must have type \"t\", not \"i\""));
    }
}

namespace {

// A private dbus-daemon for the duration of a test, as the system bus.
class PrivateBus {
public:
    PrivateBus() {
        char pattern[] = "/tmp/thintrim-compat-XXXXXX";
        if (::mkdtemp(pattern) == nullptr)
            return;
        dir_ = pattern;
        const std::string socket = dir_ + "/bus.sock";
        std::ofstream(dir_ + "/bus.conf")
            << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\" "
               "\"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
               "<busconfig><type>system</type><listen>unix:path="
            << socket
            << "</listen><auth>EXTERNAL</auth><policy context=\"default\"><allow "
               "user=\"*\"/><allow own=\"*\"/><allow send_destination=\"*\" "
               "eavesdrop=\"true\"/><allow receive_sender=\"*\"/></policy></busconfig>\n";
        pid_ = ::fork();
        if (pid_ == 0) {
            // Gone with the test, however it ends; quiet on the test's output.
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);
            ::freopen("/dev/null", "w", stdout);
            ::execlp("dbus-daemon", "dbus-daemon", "--nofork", "--nopidfile",
                     ("--config-file=" + dir_ + "/bus.conf").c_str(), nullptr);
            ::_exit(127);
        }
        for (int attempt = 0; attempt < 200 && !std::filesystem::exists(socket); ++attempt)
            std::this_thread::sleep_for(50ms);
        if (std::filesystem::exists(socket)) {
            ::setenv("DBUS_SYSTEM_BUS_ADDRESS", ("unix:path=" + socket).c_str(), 1);
            running_ = true;
        }
    }
    ~PrivateBus() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
        if (!dir_.empty())
            std::filesystem::remove_all(dir_);
    }
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;

    [[nodiscard]] bool running() const { return running_; }

private:
    std::string dir_;
    pid_t pid_ = -1;
    bool running_ = false;
};

constexpr const char* kTestName = "org.thintrim.CompatTest";
constexpr const char* kTestPath = "/org/thintrim/CompatTest";
constexpr const char* kTestInterface = "org.thintrim.CompatTest";

} // namespace

TEST_CASE("the event loop answers a call that a synchronous call read first", "[bus]") {
    PrivateBus bus;
    if (!bus.running()) {
        // Run alone (meson: sdbus-compat-loop), so exit 77 skips only this.
        std::printf("SKIP: dbus-daemon cannot be started here (package dbus-daemon)\n");
        std::exit(77);
    }
    auto server = dbus::connectSystemBus(kTestName);
    auto object = dbus::createObject(*server, kTestPath);
    int pings = 0;
    dbus::registerMethod(*object, kTestInterface, "Ping", [&pings]() { return ++pings; });
    dbus::finishRegistration(*object);

    // The client calls Ping while the server is busy elsewhere.
    std::thread client([] {
        auto connection = dbus::connectSystemBus();
        auto proxy = dbus::createProxy(*connection, kTestName, kTestPath);
        int answer = 0;
        proxy->callMethod("Ping").onInterface(kTestInterface).storeResultsTo(answer);
    });
    std::this_thread::sleep_for(300ms);
    // A synchronous call on the server's connection reads the Ping off the
    // socket while it waits for its own reply: the socket is empty again,
    // and only sdbus-c++'s own event fd (2.x) or poll timeout says that a
    // message waits.
    auto daemon = dbus::createProxy(*server, "org.freedesktop.DBus", "/org/freedesktop/DBus");
    std::string id;
    daemon->callMethod("GetId").onInterface("org.freedesktop.DBus").storeResultsTo(id);
    CHECK_FALSE(id.empty());

    // CHECK, not REQUIRE, until the client is joined: its call waits for
    // the loop below.
    const dbus::BusPoll poll = dbus::busPoll(*server);
    if constexpr (dbus::kSdbusMajor >= 2) {
        // 2.x announces the queued message on its event fd: the loop polls it.
        CHECK(poll.fds.size() == 2);
        if (poll.fds.size() == 2) {
            pollfd event = poll.fds[1];
            CHECK(::poll(&event, 1, 0) == 1);
        }
    } else {
        CHECK(poll.fds.size() == 1);
    }

    EventLoop loop(*server);
    Timer giveUp(loop, CLOCK_MONOTONIC, [&loop] { loop.quit(2); });
    giveUp.armIn(Microseconds{10s});
    Timer answered(loop, CLOCK_MONOTONIC, [&] {
        if (pings > 0)
            loop.quit(0);
    });
    answered.armIn(Microseconds{10ms}, Microseconds{10ms});
    CHECK(loop.run() == 0);
    client.join();
    CHECK(pings == 1);
}
