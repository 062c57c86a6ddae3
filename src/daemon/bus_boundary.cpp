// SPDX-License-Identifier: GPL-2.0-or-later
#include "bus_boundary.h"

#include "base/error.h"
#include "bus_names.h"
#include "log.h"
#include "sdbus_compat.h"

#include <new>

#include <fmt/format.h>

namespace thintrim::daemon {

sdbus::Error currentExceptionAsBusError() {
    try {
        throw;
    } catch (const sdbus::Error& e) {
        return e;
    } catch (const Error& e) {
        // Messages quote paths, labels and configuration text as they are.
        return dbus::makeError(dbus::errorName(e.code()), forBus(std::string(e.what())));
    } catch (const std::bad_alloc&) {
        return dbus::makeError(dbus::errorName(ErrorCode::Failed), "thintrimd is out of memory");
    } catch (const std::exception& e) {
        // A bug or an unexpected library failure: say so, and leave a trace.
        logMessage(LogLevel::Warning, fmt::format("internal error in a method call: {}", e.what()));
        return dbus::makeError(dbus::errorName(ErrorCode::Failed),
                               forBus(fmt::format("thintrimd failed unexpectedly: {}", e.what())));
    } catch (...) {
        logMessage(LogLevel::Warning, "internal error in a method call: unknown exception");
        return dbus::makeError(dbus::errorName(ErrorCode::Failed),
                               "thintrimd failed unexpectedly; see its log");
    }
}

void logUnsentReply() noexcept {
    try {
        try {
            throw;
        } catch (const sdbus::Error& e) {
            logMessage(LogLevel::Warning,
                       fmt::format("cannot send a reply: {} ({})", e.getMessage(), e.getName()));
        } catch (const std::exception& e) {
            logMessage(LogLevel::Warning, fmt::format("cannot send a reply: {}", e.what()));
        } catch (...) {
            logMessage(LogLevel::Warning, "cannot send a reply: unknown exception");
        }
    } catch (...) {
        // Logging itself failed (out of memory): nothing left to tell.
    }
}

} // namespace thintrim::daemon
