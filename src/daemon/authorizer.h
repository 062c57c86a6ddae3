// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "error.h"

#include <functional>
#include <memory>
#include <optional>

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

    // Calls `verdict` exactly once on the loop thread: at once for root and
    // when polkit is not running, else when polkit answers. Polkit is asked
    // asynchronously (first whether org.freedesktop.PolicyKit1 has an owner,
    // so that it is never activated just for this) with a timeout, so a slow
    // polkit never stalls the bus.
    void check(const sdbus::Message& call, Verdict verdict);

private:
    void askPolkit(const std::string& sender, const Verdict& verdict);

    std::unique_ptr<sdbus::IProxy> busDaemon_;
    std::unique_ptr<sdbus::IProxy> polkit_;
};

} // namespace thintrim::daemon
