// SPDX-License-Identifier: GPL-2.0-or-later
// fake-polkit: org.freedesktop.PolicyKit1 on a private test bus, standing in
// for a polkit whose authentication agent asks the user for a password and
// gets the right one. CheckAuthorization authorizes exactly when the call
// allows user interaction (flag 1, what thintrimd passes on from the D-Bus
// flag ALLOW_INTERACTIVE_AUTHORIZATION); otherwise it answers "a challenge
// would be needed" (is_authorized false, is_challenge true), as real polkit
// does for auth_admin without interaction. Each call's flags are appended to
// FILE, one line each.
//
//   fake-polkit FILE
#include "sdbus_compat.h"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: fake-polkit FILE\n");
        return 2;
    }
    const std::string log = argv[1];
    using namespace thintrim;
    auto bus = dbus::connectSystemBus("org.freedesktop.PolicyKit1");
    auto authority = dbus::createObject(*bus, "/org/freedesktop/PolicyKit1/Authority");
    using Subject = sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>>;
    using Result = sdbus::Struct<bool, bool, std::map<std::string, std::string>>;
    dbus::registerMethod(*authority, "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization",
                         [&log](const Subject& /*subject*/, const std::string& /*action*/,
                                const std::map<std::string, std::string>& /*details*/,
                                std::uint32_t flags, const std::string& /*cancellation*/) {
                             std::ofstream(log, std::ios::app) << flags << '\n';
                             const bool interactive = (flags & 1U) != 0;
                             return Result{interactive, !interactive, {}};
                         });
    dbus::finishRegistration(*authority);
    bus->enterEventLoop();
}
