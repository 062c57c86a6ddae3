// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

namespace sdbus {
class Message;
class MethodCall;
} // namespace sdbus

namespace thintrim::dbus {

// The D-Bus header flag ALLOW_INTERACTIVE_AUTHORIZATION: the caller is ready
// to wait while polkit asks its user for a password. The CLI sets it unless
// --no-ask-password (as systemctl does); the daemon passes it on to polkit's
// CheckAuthorization. sdbus-c++ 1.2 has no accessor for message flags, so
// these go to the sd_bus_message underneath.
[[nodiscard]] bool allowsInteractiveAuthorization(const sdbus::Message& call);
void allowInteractiveAuthorization(sdbus::MethodCall& call);

} // namespace thintrim::dbus
