// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <exception>

#include <sdbus-c++/Error.h>
#include <sdbus-c++/MethodResult.h>

namespace thintrim::daemon {

// The one error boundary between the daemon and its callers. sdbus-c++ 1.2
// turns only sdbus::Error into an error reply; anything else thrown out of a
// method handler would end the daemon. So every method body runs through
// guarded() or replyGuarded(), which map thintrim::Error codes to their D-Bus
// names (src/dbus/bus_names.h) and anything else to
// org.thintrim.ThinTrim1.Error.Failed with a sentence.

// The D-Bus error for the exception being handled; call only inside catch.
[[nodiscard]] sdbus::Error currentExceptionAsBusError();

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
        if (!replied)
            result.returnError(currentExceptionAsBusError());
    }
}

} // namespace thintrim::daemon
