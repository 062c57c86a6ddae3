// SPDX-License-Identifier: GPL-2.0-or-later
#include "interactive_authorization.h"

#include <sdbus-c++/Message.h>
#include <systemd/sd-bus.h>

namespace thintrim::dbus {

namespace {

// sdbus::Message keeps its sd_bus_message* in the protected member msg_. A
// derived class may form a pointer to that member, and the pointer reads it
// from any Message: the standard's way around protected access, with no cast
// of an object to a type it does not have.
struct MessageInternals : sdbus::Message {
    static sd_bus_message* of(const sdbus::Message& message) {
        constexpr auto member = &MessageInternals::msg_;
        return static_cast<sd_bus_message*>(message.*member);
    }
};

} // namespace

bool allowsInteractiveAuthorization(const sdbus::Message& call) {
    sd_bus_message* message = MessageInternals::of(call);
    return message != nullptr && sd_bus_message_get_allow_interactive_authorization(message) > 0;
}

void allowInteractiveAuthorization(sdbus::MethodCall& call) {
    if (sd_bus_message* message = MessageInternals::of(call))
        sd_bus_message_set_allow_interactive_authorization(message, 1);
}

} // namespace thintrim::dbus
