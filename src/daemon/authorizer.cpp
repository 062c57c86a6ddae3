// SPDX-License-Identifier: GPL-2.0-or-later
#include "authorizer.h"

#include "bus_names.h"
#include "interactive_authorization.h"
#include "log.h"
#include "sdbus_compat.h"

#include <array>
#include <chrono>
#include <cstdint>

#include <fmt/format.h>
#include <pwd.h>

namespace thintrim::daemon {

namespace {

constexpr const char* kPolkitName = "org.freedesktop.PolicyKit1";
// Long enough for polkit to look at the caller, short enough that a hung
// polkit fails the call instead of queueing callers for minutes.
constexpr auto kPolkitTimeout = std::chrono::seconds(25);
// When the caller lets polkit ask for a password, someone is typing it.
constexpr auto kInteractivePolkitTimeout = std::chrono::minutes(2);
// CheckAuthorization's flag AllowUserInteraction.
constexpr std::uint32_t kAllowUserInteraction = 1;

// "user alice (uid 1000)": the name as the system knows it, for a person.
std::string describeUser(uid_t uid) {
    std::array<char, 4096> buffer{};
    passwd entry{};
    passwd* found = nullptr;
    if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr)
        return fmt::format("user {} (uid {})", found->pw_name, uid);
    return fmt::format("uid {}", uid);
}

// Every refusal says who was refused, why, and the ways out.
Error denied(const std::string& why) {
    return Error(ErrorCode::AccessDenied,
                 fmt::format("{}. Trimming and controlling thintrimd (trim, cancel, suspend, "
                             "resume, reload) needs root or the polkit authorization {}: run it "
                             "with sudo, or have an administrator grant that authorization with "
                             "a rule (see thintrimd(8), AUTHORIZATION)",
                             why, dbus::kPolkitAction));
}

} // namespace

Authorizer::Authorizer(sdbus::IConnection& bus)
    : polkit_(dbus::createProxy(bus, kPolkitName, "/org/freedesktop/PolicyKit1/Authority")) {
    dbus::finishRegistration(*polkit_);
}

Authorizer::~Authorizer() = default;

void Authorizer::check(const sdbus::Message& call, Verdict verdict) {
    uid_t euid = 0;
    std::string sender;
    try {
        euid = call.getCredsEuid();
        sender = call.getSender();
    } catch (const sdbus::Error& e) {
        verdict(denied(fmt::format("the caller's credentials are unknown ({})", e.getMessage())));
        return;
    }
    if (euid == 0) {
        verdict(std::nullopt);
        return;
    }
    askPolkit({sender, describeUser(euid), dbus::allowsInteractiveAuthorization(call)}, verdict);
}

void Authorizer::askPolkit(const Caller& caller, const Verdict& verdict) {
    using Subject = sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>>;
    const Subject subject{"system-bus-name", {{"name", sdbus::Variant(caller.busName)}}};
    const std::map<std::string, std::string> details;
    // Interaction only when the caller asked for it (the message flag): a
    // script's call must not wait for someone to type a password.
    const std::uint32_t flags = caller.interactive ? kAllowUserInteraction : 0;
    // Called even when polkit is not running: the bus starts it (it is
    // activatable wherever it is installed), as systemd's own services do.
    polkit_->callMethodAsync("CheckAuthorization")
        .onInterface("org.freedesktop.PolicyKit1.Authority")
        .withArguments(subject, std::string(dbus::kPolkitAction), details, flags, std::string())
        .withTimeout(caller.interactive ? kInteractivePolkitTimeout : kPolkitTimeout)
        .uponReplyInvoke(
            [verdict,
             caller](dbus::AsyncError failure,
                     const sdbus::Struct<bool, bool, std::map<std::string, std::string>>& result) {
                if (const sdbus::Error* error = dbus::errorOf(failure)) {
                    const std::string& name = error->getName();
                    if (name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
                        name == "org.freedesktop.DBus.Error.NameHasNoOwner") {
                        verdict(denied(fmt::format("{} is not root, and polkit, which could "
                                                   "authorize other users, is not installed",
                                                   caller.who)));
                        return;
                    }
                    logMessage(LogLevel::Warning,
                               fmt::format("polkit CheckAuthorization failed: {}", error->what()));
                    verdict(denied(fmt::format("{} is not root, and polkit could not decide ({})",
                                               caller.who, error->getMessage())));
                    return;
                }
                const bool authorized = std::get<0>(result);
                const bool challenge = std::get<1>(result);
                if (authorized) {
                    verdict(std::nullopt);
                    return;
                }
                if (challenge && !caller.interactive) {
                    verdict(denied(fmt::format(
                        "{} must authenticate first, and the call did not allow asking for a "
                        "password (thintrim --no-ask-password, or busctl "
                        "--allow-interactive-authorization=no); run it on a terminal without "
                        "--no-ask-password to be asked",
                        caller.who)));
                    return;
                }
                if (challenge) {
                    verdict(denied(fmt::format(
                        "{} was not authenticated: no password was given (polkit found no "
                        "authentication agent to ask it, e.g. not on a terminal, or the prompt "
                        "was dismissed)",
                        caller.who)));
                    return;
                }
                verdict(denied(fmt::format("{} is not authorized by polkit", caller.who)));
            });
}

} // namespace thintrim::daemon
