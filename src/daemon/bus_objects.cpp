// SPDX-License-Identifier: GPL-2.0-or-later
#include "bus_objects.h"

#include "base/error.h"
#include "build_config.h"
#include "bus_boundary.h"
#include "bus_names.h"
#include "log.h"
#include "sdbus_compat.h"

#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>

#include <fmt/format.h>

namespace thintrim::daemon {

namespace {

using ManagerInterface = org::thintrim::ThinTrim1::Manager_adaptor;
using FilesystemInterface = org::thintrim::ThinTrim1::Filesystem_adaptor;

template <typename... Results>
struct ReplyValue {
    using type = void;
};
template <typename Result>
struct ReplyValue<Result> {
    using type = Result;
};

// A LaterReply answering `result` through the error boundary with what
// `convert` makes of the body's value. Result<> is move-only and a reply
// must be copyable, hence the shared_ptr.
template <typename Value, typename... Results, typename Convert = std::identity>
LaterReply<Value> laterReply(sdbus::Result<Results...>&& result, Convert convert = {}) {
    auto pending = std::make_shared<sdbus::Result<Results...>>(std::move(result));
    return [pending, convert](const std::function<Value()>& body) {
        if constexpr (std::is_void_v<Value>)
            replyGuarded(*pending, body);
        else
            replyGuarded(*pending, [&] { return convert(body()); });
    };
}

// Runs `start` with `reply`; what it throws before handing the reply on is
// the reply.
template <typename Value, typename Start>
void startReply(const LaterReply<Value>& reply, Start& start) {
    try {
        start(reply);
    } catch (...) {
        reply([]() -> Value { throw; });
    }
}

// Mutating methods: the reply waits for the authorization, which may come
// from polkit later; `start` runs only when it is granted.
template <typename Value, typename Start>
void authorizeThen(Authorizer& authorizer, sdbus::IObject& object, LaterReply<Value> reply,
                   Start start) {
    const dbus::CurrentMessage current(object);
    const sdbus::Message* call = current.get();
    if (call == nullptr) {
        reply([]() -> Value {
            throw Error(ErrorCode::AccessDenied, "the caller of this method is unknown");
        });
        return;
    }
    authorizer.check(*call, [reply = std::move(reply),
                             start = std::move(start)](std::optional<Error> denied) mutable {
        if (denied)
            reply([&]() -> Value { throw *denied; });
        else
            startReply(reply, start);
    });
}

// The same for a method whose answer is at hand once authorized: `action`
// returns it.
template <typename... Results, typename Action>
void authorizeThenReply(Authorizer& authorizer, sdbus::IObject& object,
                        sdbus::Result<Results...>&& result, Action action) {
    using Value = typename ReplyValue<Results...>::type;
    authorizeThen(authorizer, object, laterReply<Value>(std::move(result)),
                  [action = std::move(action)](const LaterReply<Value>& reply) { reply(action); });
}

// Registers a getter per property of `List` (the schema's tuple of an
// interface's properties) that reads `values`, which must outlive the
// registration. Before registerAdaptor().
template <typename Interface, typename... Property, typename Properties>
void registerProperties(sdbus::IObject& object, std::type_identity<std::tuple<Property...>>,
                        const Properties& values) {
    dbus::PropertyRegistration registration(object, Interface::name);
    (registration.add(
         Property::name, [&values] { return forBus(values.*Property::member); },
         Property::constant),
     ...);
    registration.finish();
}

// The names of the properties whose values differ between `before` and `after`.
template <typename... Property, typename Properties>
std::vector<std::string> changedProperties(std::type_identity<std::tuple<Property...>>,
                                           const Properties& before, const Properties& after) {
    std::vector<std::string> changed;
    (
        [&] {
            if (!(before.*Property::member == after.*Property::member))
                changed.emplace_back(Property::name);
        }(),
        ...);
    return changed;
}

constexpr std::type_identity<dbus::schema::ManagerPropertyList> kManagerProperties;
constexpr std::type_identity<dbus::schema::FilesystemPropertyList> kFilesystemProperties;

template <typename Value>
bool readOption(const sdbus::Variant& value, const std::string& key, const char* signature,
                std::optional<Value>& into) {
    const std::string actual = dbus::variantSignature(value);
    if (actual != signature)
        throw Error(
            ErrorCode::InvalidArgument,
            fmt::format("option \"{}\" must have type \"{}\", not \"{}\"", key, signature, actual));
    into = value.get<Value>();
    return true;
}

// Runs `check` inside the error boundary; when it throws, replies with the
// error and returns false.
template <typename... Results, typename Check>
bool replyUnlessValid(const sdbus::Result<Results...>& result, Check check) {
    try {
        check();
        return true;
    } catch (...) {
        result.returnError(currentExceptionAsBusError());
        return false;
    }
}

} // namespace

void checkTrimMountPointList(const std::vector<std::string>& mountPoints) {
    if (mountPoints.size() > kMaxTrimMountPoints)
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("Trim names {} mount points; at most {} may be named in one call "
                                "(an empty list trims every eligible filesystem)",
                                mountPoints.size(), kMaxTrimMountPoints));
    for (std::size_t index = 0; index < mountPoints.size(); ++index) {
        if (mountPoints[index].size() > kMaxMountPointBytes)
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("mount point {} of Trim is {} bytes long; a path has at most "
                                    "{} bytes",
                                    index + 1, mountPoints[index].size(), kMaxMountPointBytes));
    }
}

TrimRequestOptions parseTrimRequestOptions(const std::map<std::string, sdbus::Variant>& options) {
    TrimRequestOptions parsed;
    for (const auto& [key, value] : options) {
        if (key == "dry_run")
            readOption(value, key, "b", parsed.dryRun);
        else if (key == "minimum_extent")
            readOption(value, key, "t", parsed.minimumExtent);
        else if (key == "rate_limit")
            readOption(value, key, "t", parsed.rateLimit);
        else if (key == "chunk_size")
            readOption(value, key, "t", parsed.chunkSize);
        else
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("unknown trim option \"{}\"; known are dry_run (b), "
                                    "minimum_extent (t), rate_limit (t), chunk_size (t)",
                                    key));
    }
    return parsed;
}

ManagerObject::ManagerObject(sdbus::IConnection& bus, Controller& controller,
                             Authorizer& authorizer)
    : AdaptorInterfaces(bus, dbus::objectPath(dbus::kManagerPath)), controller_(controller),
      authorizer_(authorizer) {
    properties_.version = THINTRIM_VERSION;
    registerProperties<dbus::schema::ManagerInterface>(getObject(), kManagerProperties,
                                                       properties_);
    registerAdaptor();
}

ManagerObject::~ManagerObject() {
    unregisterAdaptor();
}

void ManagerObject::publish(const ManagerProperties& next) {
    ManagerProperties filled = next;
    filled.version = THINTRIM_VERSION;
    const std::vector<std::string> changed =
        changedProperties(kManagerProperties, properties_, filled);
    properties_ = std::move(filled);
    if (!changed.empty())
        dbus::emitPropertiesChanged(getObject(), ManagerInterface::INTERFACE_NAME, changed);
}

void ManagerObject::Trim(sdbus::Result<std::uint64_t>&& result,
                         std::vector<std::string> mountPoints,
                         std::map<std::string, sdbus::Variant> options) {
    // Sizes and options are checked before the authorization, so that no
    // caller makes the daemon hold more than kMaxTrimMountPoints paths while
    // polkit decides; the mount points themselves only after it, so that an
    // unauthorized caller learns nothing about which are managed.
    TrimRequestOptions parsed;
    if (!replyUnlessValid(result, [&] {
            checkTrimMountPointList(mountPoints);
            parsed = parseTrimRequestOptions(options);
        }))
        return;
    authorizeThen(authorizer_, getObject(), laterReply<std::uint64_t>(std::move(result)),
                  [this, mountPoints = std::move(mountPoints),
                   parsed](const LaterReply<std::uint64_t>& reply) {
                      controller_.queueTrim(mountPoints, parsed, reply);
                  });
}

void ManagerObject::Cancel(sdbus::Result<>&& result, std::uint64_t job) {
    authorizeThenReply(authorizer_, getObject(), std::move(result),
                       [this, job] { controller_.cancelJob(job); });
}

void ManagerObject::Suspend(sdbus::Result<>&& result) {
    authorizeThenReply(authorizer_, getObject(), std::move(result),
                       [this] { controller_.suspend(); });
}

void ManagerObject::Resume(sdbus::Result<>&& result) {
    authorizeThenReply(authorizer_, getObject(), std::move(result),
                       [this] { controller_.resume(); });
}

void ManagerObject::Reload(sdbus::Result<>&& result) {
    authorizeThenReply(authorizer_, getObject(), std::move(result),
                       [this] { controller_.reload(); });
}

sdbus::ObjectPath ManagerObject::GetFilesystem(const std::string& mountPoint) {
    return guarded([&] { return sdbus::ObjectPath(controller_.filesystemObjectPath(mountPoint)); });
}

void ManagerObject::Diagnose(
    sdbus::Result<std::vector<sdbus::Struct<std::string, std::string, std::string, std::string>>>&&
        result) {
    // The reply waits for the checks, which run on the scanning thread.
    auto toRows = [](const std::vector<Finding>& findings) {
        std::vector<sdbus::Struct<std::string, std::string, std::string, std::string>> rows;
        for (const Finding& finding : findings)
            rows.emplace_back(std::string(severityName(finding.severity)), finding.subject,
                              finding.message, finding.hint);
        return forBus(rows);
    };
    auto start = [this](const LaterReply<std::vector<Finding>>& reply) {
        controller_.diagnose(reply);
    };
    startReply(laterReply<std::vector<Finding>>(std::move(result), toRows), start);
}

void ManagerObject::Verify(
    sdbus::Result<
        std::vector<sdbus::Struct<std::string, std::string, std::string, std::uint64_t>>>&& result,
    std::vector<std::string> mountPoints) {
    // The reply waits for the probes, which run on the verify worker.
    auto toRows = [](const Controller::VerifyOutcomes& outcomes) {
        std::vector<sdbus::Struct<std::string, std::string, std::string, std::uint64_t>> rows;
        for (const auto& [mountPoint, report] : outcomes)
            rows.emplace_back(mountPoint, std::string(verifyVerdictName(report.verdict)),
                              report.message,
                              report.reachedDiskBytes.value_or(dbus::kUnknownBytes));
        return forBus(rows);
    };
    authorizeThen(authorizer_, getObject(),
                  laterReply<Controller::VerifyOutcomes>(std::move(result), toRows),
                  [this, mountPoints = std::move(mountPoints)](
                      const LaterReply<Controller::VerifyOutcomes>& reply) {
                      controller_.verify(mountPoints, reply);
                  });
}

FilesystemObject::FilesystemObject(sdbus::IConnection& bus, Controller& controller,
                                   Authorizer& authorizer, const FilesystemProperties& properties)
    : AdaptorInterfaces(bus, dbus::objectPath(dbus::filesystemObjectPath(properties.mountPoint))),
      controller_(controller), authorizer_(authorizer), properties_(properties) {
    registerProperties<dbus::schema::FilesystemInterface>(getObject(), kFilesystemProperties,
                                                          properties_);
    registerAdaptor();
    emitInterfacesAddedSignal();
}

FilesystemObject::~FilesystemObject() {
    // Also runs while the daemon stops because the bus went away: a
    // destructor must not throw.
    try {
        emitInterfacesRemovedSignal();
    } catch (const sdbus::Error& e) {
        logMessage(LogLevel::Debug, fmt::format("InterfacesRemoved not sent: {}", e.getMessage()));
    }
    unregisterAdaptor();
}

void FilesystemObject::publish(const FilesystemProperties& next) {
    const std::vector<std::string> changed =
        changedProperties(kFilesystemProperties, properties_, next);
    properties_ = next;
    if (!changed.empty())
        dbus::emitPropertiesChanged(getObject(), FilesystemInterface::INTERFACE_NAME, changed);
}

void FilesystemObject::Trim(sdbus::Result<std::uint64_t>&& result,
                            std::map<std::string, sdbus::Variant> options) {
    // The mount point, not this object: the filesystem may be gone by the
    // time polkit answers.
    TrimRequestOptions parsed;
    if (!replyUnlessValid(result, [&] { parsed = parseTrimRequestOptions(options); }))
        return;
    authorizeThen(authorizer_, getObject(), laterReply<std::uint64_t>(std::move(result)),
                  [&controller = controller_, mountPoint = properties_.mountPoint,
                   parsed](const LaterReply<std::uint64_t>& reply) {
                      controller.queueTrim({mountPoint}, parsed, reply);
                  });
}

} // namespace thintrim::daemon
