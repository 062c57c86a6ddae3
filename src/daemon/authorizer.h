// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/error.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace sdbus {
class IConnection;
class IProxy;
class Message;
} // namespace sdbus

namespace thintrim::daemon {

// Decides whether the sender of a method call may change anything: effective
// UID 0, or polkit's org.thintrim.ThinTrim1.manage when polkit runs. The
// caller's EUID comes from the bus's credentials of the message; nothing the
// caller says about itself counts.
class Authorizer {
public:
    // nullopt: allowed; otherwise the AccessDenied error to reply with.
    using Verdict = std::function<void(std::optional<Error> denied)>;

    explicit Authorizer(sdbus::IConnection& bus);
    ~Authorizer();
    Authorizer(const Authorizer&) = delete;
    Authorizer& operator=(const Authorizer&) = delete;

    // Calls `verdict` exactly once on the loop thread: at once for root,
    // else when polkit answers (or the bus says there is no polkit). Polkit
    // is asked asynchronously with a timeout, so a slow polkit never stalls
    // the bus. When the call carries the D-Bus flag
    // ALLOW_INTERACTIVE_AUTHORIZATION, polkit may ask the caller's user for a
    // password through their authentication agent (the CLI starts
    // pkttyagent on a terminal); otherwise a rule or an earlier
    // authentication must decide alone. A refusal names the user, why, and
    // what to do.
    void check(const sdbus::Message& call, Verdict verdict);

private:
    struct Caller {
        std::string busName;
        std::string who; // "user alice (uid 1000)"
        bool interactive = false;
    };
    void askPolkit(const Caller& caller, const Verdict& verdict);

    std::unique_ptr<sdbus::IProxy> polkit_;
};

} // namespace thintrim::daemon
