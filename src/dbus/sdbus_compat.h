// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// The one place that knows which sdbus-c++ the build uses. Debian 12 ships
// 1.2, Ubuntu 24.04 1.4, Debian 13 and Fedora 43 2.1: the same calls differ
// in their argument types (2.x names buses, paths, interfaces and members
// with strong types), in how a vtable is registered, and in two ways that
// compile but misbehave when written for the other version:
// Variant::peekValueType() returns `const char*` in 2.x (compared as
// before, it compares pointers), and the event loop must also poll
// PollData::eventFd in 2.x (or it misses work queued from inside sdbus-c++).
// Everything else in the daemon, the CLI and the tests calls these wrappers
// and names no version. THINTRIM_SDBUS_MAJOR comes from meson
// (src/dbus/meson.build), read from the dependency's version.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>

#ifndef THINTRIM_SDBUS_MAJOR
#error "THINTRIM_SDBUS_MAJOR is set by src/dbus/meson.build"
#endif

namespace thintrim::dbus {

inline constexpr int kSdbusMajor = THINTRIM_SDBUS_MAJOR;

// A bus name, object path, interface or member as the installed sdbus-c++
// takes it.
#if THINTRIM_SDBUS_MAJOR >= 2
using ServiceName = sdbus::ServiceName;
using InterfaceName = sdbus::InterfaceName;
using MemberName = sdbus::MemberName;
using ErrorName = sdbus::Error::Name;
// What an asynchronous reply handler receives instead of a result.
using AsyncError = std::optional<sdbus::Error>;
#else
using ServiceName = std::string;
using InterfaceName = std::string;
using MemberName = std::string;
using ErrorName = std::string;
using AsyncError = const sdbus::Error*;
#endif

[[nodiscard]] inline ServiceName serviceName(std::string_view name) {
    return ServiceName{std::string(name)};
}
[[nodiscard]] inline sdbus::ObjectPath objectPath(std::string_view path) {
    return sdbus::ObjectPath{std::string(path)};
}
[[nodiscard]] inline InterfaceName interfaceName(std::string_view name) {
    return InterfaceName{std::string(name)};
}
[[nodiscard]] inline MemberName memberName(std::string_view name) {
    return MemberName{std::string(name)};
}

// The error of an asynchronous reply, or nullptr when the call succeeded.
[[nodiscard]] inline const sdbus::Error* errorOf(const AsyncError& error) {
#if THINTRIM_SDBUS_MAJOR >= 2
    return error ? &*error : nullptr;
#else
    return error;
#endif
}

[[nodiscard]] inline sdbus::Error makeError(std::string_view name, std::string message) {
    return sdbus::Error(ErrorName{std::string(name)}, std::move(message));
}

// Connections and proxies.
[[nodiscard]] inline std::unique_ptr<sdbus::IConnection> connectSystemBus() {
    return sdbus::createSystemBusConnection();
}
[[nodiscard]] inline std::unique_ptr<sdbus::IConnection>
connectSystemBus(std::string_view requestedName) {
    return sdbus::createSystemBusConnection(serviceName(requestedName));
}
inline void requestName(sdbus::IConnection& bus, std::string_view name) {
    bus.requestName(serviceName(name));
}
[[nodiscard]] inline std::unique_ptr<sdbus::IProxy>
createProxy(sdbus::IConnection& bus, std::string_view destination, std::string_view path) {
    return sdbus::createProxy(bus, serviceName(destination), objectPath(path));
}
[[nodiscard]] inline std::unique_ptr<sdbus::IObject> createObject(sdbus::IConnection& bus,
                                                                  std::string_view path) {
    return sdbus::createObject(bus, objectPath(path));
}
// Signal handlers set with uponSignal() take effect here in 1.x and at once
// in 2.x.
inline void finishRegistration([[maybe_unused]] sdbus::IProxy& proxy) {
#if THINTRIM_SDBUS_MAJOR < 2
    proxy.finishRegistration();
#endif
}
// A method of a hand-made object (test doubles of other services); finish
// with finishRegistration(object).
template <typename Handler>
void registerMethod(sdbus::IObject& object, std::string_view interface, std::string_view name,
                    Handler handler) {
#if THINTRIM_SDBUS_MAJOR >= 2
    object.addVTable(sdbus::registerMethod(memberName(name)).implementedAs(std::move(handler)))
        .forInterface(interfaceName(interface));
#else
    object.registerMethod(std::string(name))
        .onInterface(std::string(interface))
        .implementedAs(std::move(handler));
#endif
}
inline void finishRegistration([[maybe_unused]] sdbus::IObject& object) {
#if THINTRIM_SDBUS_MAJOR < 2
    object.finishRegistration();
#endif
}
[[nodiscard]] inline sdbus::MethodCall
createMethodCall(sdbus::IProxy& proxy, std::string_view interface, std::string_view method) {
    return proxy.createMethodCall(interfaceName(interface), memberName(method));
}

// The signature of the value a variant holds ("t", "as"...).
[[nodiscard]] inline std::string variantSignature(const sdbus::Variant& value) {
    return std::string(value.peekValueType());
}

// The message whose handler runs now: get() is nullptr outside a handler.
// Read it within the handler (1.x lends a pointer into the connection; 2.x
// hands out a reference-counted copy).
class CurrentMessage {
public:
    explicit CurrentMessage(const sdbus::IObject& object)
        : message_(object.getCurrentlyProcessedMessage()) {}
    [[nodiscard]] const sdbus::Message* get() const {
#if THINTRIM_SDBUS_MAJOR >= 2
        return message_.isValid() ? &message_ : nullptr;
#else
        return message_;
#endif
    }

private:
#if THINTRIM_SDBUS_MAJOR >= 2
    sdbus::Message message_;
#else
    const sdbus::Message* message_;
#endif
};

// What an event loop around a connection polls, and for how long at most.
struct BusPoll {
    std::vector<pollfd> fds;
    int timeoutMs = -1;
};
[[nodiscard]] inline BusPoll busPoll(const sdbus::IConnection& bus) {
    const sdbus::IConnection::PollData data = bus.getEventLoopPollData();
    BusPoll poll;
    poll.fds.push_back({data.fd, data.events, 0});
#if THINTRIM_SDBUS_MAJOR >= 2
    // Signalled when sdbus-c++ queued work of its own (a reply that arrived
    // while another call waited): without it the loop sleeps on that work.
    poll.fds.push_back({data.eventFd, POLLIN, 0});
#endif
    poll.timeoutMs = data.getPollTimeout();
    return poll;
}
// Handles one queued message; false when nothing was pending.
inline bool processPending(sdbus::IConnection& bus) {
#if THINTRIM_SDBUS_MAJOR >= 2
    return bus.processPendingEvent();
#else
    return bus.processPendingRequest();
#endif
}

// Property maps as the CLI reads them: keyed by plain strings in both
// versions (2.x keys GetAll's answer by PropertyName).
using PropertyMap = std::map<std::string, sdbus::Variant>;
template <typename Key>
[[nodiscard]] PropertyMap plainKeys(const std::map<Key, sdbus::Variant>& properties) {
    PropertyMap plain;
    for (const auto& [name, value] : properties)
        plain.emplace(std::string(name), value);
    return plain;
}
// The argument types of Properties_proxy::onPropertiesChanged.
#if THINTRIM_SDBUS_MAJOR >= 2
using ChangedProperties = std::map<sdbus::PropertyName, sdbus::Variant>;
using InvalidatedProperties = std::vector<sdbus::PropertyName>;
#else
using ChangedProperties = std::map<std::string, sdbus::Variant>;
using InvalidatedProperties = std::vector<std::string>;
#endif

inline void emitPropertiesChanged(sdbus::IObject& object, std::string_view interface,
                                  const std::vector<std::string>& names) {
#if THINTRIM_SDBUS_MAJOR >= 2
    std::vector<sdbus::PropertyName> typed;
    typed.reserve(names.size());
    for (const std::string& name : names)
        typed.emplace_back(name);
    object.emitPropertiesChangedSignal(interfaceName(interface), typed);
#else
    object.emitPropertiesChangedSignal(std::string(interface), names);
#endif
}

// Read-only properties of one interface, registered together. In 1.x each
// is registered as it is added; in 2.x they form one vtable, added by
// finish() (call it before the adaptors are registered).
class PropertyRegistration {
public:
    PropertyRegistration(sdbus::IObject& object, std::string_view interface)
        : object_(object), interface_(interface) {}

    template <typename Getter>
    void add(std::string_view name, Getter getter, bool constant) {
        const sdbus::Flags::PropertyUpdateBehaviorFlags behavior =
            constant ? sdbus::Flags::CONST_PROPERTY_VALUE : sdbus::Flags::EMITS_CHANGE_SIGNAL;
#if THINTRIM_SDBUS_MAJOR >= 2
        items_.push_back(sdbus::registerProperty(memberName(name))
                             .withGetter(std::move(getter))
                             .withUpdateBehavior(behavior));
#else
        // One statement: the registrator registers when this temporary dies.
        object_.registerProperty(std::string(name))
            .onInterface(interface_)
            .withGetter(std::move(getter))
            .withUpdateBehavior(behavior);
#endif
    }

    void finish() {
#if THINTRIM_SDBUS_MAJOR >= 2
        object_.addVTable(std::move(items_)).forInterface(interfaceName(interface_));
        items_.clear();
#endif
    }

private:
    sdbus::IObject& object_;
    std::string interface_;
#if THINTRIM_SDBUS_MAJOR >= 2
    std::vector<sdbus::VTableItem> items_;
#endif
};

} // namespace thintrim::dbus
