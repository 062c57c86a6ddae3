// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/utf8.h"

#include <exception>
#include <string>
#include <tuple>
#include <vector>

#include <sdbus-c++/Error.h>
#include <sdbus-c++/MethodResult.h>
#include <sdbus-c++/Types.h>

namespace thintrim::daemon {

// The one error boundary between the daemon and its callers. sdbus-c++ 1.2
// turns only sdbus::Error into an error reply; anything else thrown out of a
// method handler would end the daemon. So every method body runs through
// guarded() or replyGuarded(), which map thintrim::Error codes to their D-Bus
// names (src/dbus/bus_names.h) and anything else to
// org.thintrim.ThinTrim1.Error.Failed with a sentence.

// The D-Bus error for the exception being handled; call only inside catch.
[[nodiscard]] sdbus::Error currentExceptionAsBusError();

// Logs why a reply could not be sent (the caller then sees no reply, and
// times out); call only inside catch.
void logUnsentReply() noexcept;

// Synchronous methods: returns what `body` returns, or throws the mapped
// sdbus::Error for sdbus-c++ to send.
template <typename Body>
auto guarded(Body&& body) -> decltype(body()) {
    try {
        return body();
    } catch (...) {
        throw currentExceptionAsBusError();
    }
}

// Asynchronous methods: replies with what `body` returns (nothing for a
// method without results) or with the mapped error.
template <typename... Results, typename Body>
void replyGuarded(const sdbus::Result<Results...>& result, Body&& body) {
    static_assert(sizeof...(Results) <= 1, "bodies return a single value");
    bool replied = false;
    try {
        if constexpr (sizeof...(Results) == 0) {
            body();
            replied = true;
            result.returnResults();
        } else {
            auto value = body();
            replied = true;
            result.returnResults(value);
        }
    } catch (...) {
        if (replied) {
            logUnsentReply();
            return;
        }
        try {
            result.returnError(currentExceptionAsBusError());
        } catch (...) {
            logUnsentReply();
        }
    }
}

// What a property, a signal or a reply carries: every string in `value`
// (also inside arrays and structs) made valid UTF-8 by escapeInvalidUtf8()
// (src/core/utf8.h); sd-bus refuses to send anything else, and a label in
// another encoding must not take the daemon down. Other values pass as they
// are; object paths encode their bytes already.
template <typename Value>
[[nodiscard]] Value forBus(const Value& value);
[[nodiscard]] inline std::string forBus(const std::string& text) {
    return escapeInvalidUtf8(text);
}
template <typename Element>
[[nodiscard]] std::vector<Element> forBus(const std::vector<Element>& values);
template <typename... Members>
[[nodiscard]] sdbus::Struct<Members...> forBus(const sdbus::Struct<Members...>& value);

template <typename Value>
Value forBus(const Value& value) {
    return value;
}

template <typename Element>
std::vector<Element> forBus(const std::vector<Element>& values) {
    std::vector<Element> escaped;
    escaped.reserve(values.size());
    for (const Element& element : values)
        escaped.push_back(forBus(element));
    return escaped;
}

template <typename... Members>
sdbus::Struct<Members...> forBus(const sdbus::Struct<Members...>& value) {
    return std::apply(
        [](const auto&... members) { return sdbus::Struct<Members...>{forBus(members)...}; },
        static_cast<const std::tuple<Members...>&>(value));
}

} // namespace thintrim::daemon
