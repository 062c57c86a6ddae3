// SPDX-License-Identifier: GPL-2.0-or-later
#include "bus_objects.h"

#include "build_config.h"
#include "bus_boundary.h"
#include "bus_names.h"
#include "error.h"

#include <memory>

#include <fmt/format.h>

namespace thintrim::daemon {

namespace {

using ManagerInterface = org::thintrim::ThinTrim1::Manager_adaptor;
using FilesystemInterface = org::thintrim::ThinTrim1::Filesystem_adaptor;

// Mutating methods: the reply waits for the authorization, which may come
// from polkit later; `action` runs only when it is granted, inside the error
// boundary. Result<> is move-only and the verdict callback must be copyable,
// hence the shared_ptr.
template <typename... Results, typename Action>
void authorizeThenReply(Authorizer& authorizer, sdbus::IObject& object,
                        sdbus::Result<Results...>&& result, Action action) {
    auto pending = std::make_shared<sdbus::Result<Results...>>(std::move(result));
    const sdbus::Message* call = object.getCurrentlyProcessedMessage();
    if (call == nullptr) {
        replyGuarded(*pending, [&]() -> decltype(action()) {
            throw Error(ErrorCode::AccessDenied, "the caller of this method is unknown");
        });
        return;
    }
    authorizer.check(*call, [pending, action = std::move(action)](std::optional<Error> denied) {
        replyGuarded(*pending, [&] {
            if (denied)
                throw *denied;
            return action();
        });
    });
}

template <typename Value>
void noteChange(std::vector<std::string>& changed, const char* name, const Value& before,
                const Value& after) {
    if (!(before == after))
        changed.emplace_back(name);
}

template <typename Value>
bool readOption(const sdbus::Variant& value, const std::string& key, const char* signature,
                std::optional<Value>& into) {
    if (value.peekValueType() != signature)
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("option \"{}\" must have type \"{}\", not \"{}\"", key, signature,
                                value.peekValueType()));
    into = value.get<Value>();
    return true;
}

} // namespace

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
    : AdaptorInterfaces(bus, dbus::kManagerPath), controller_(controller), authorizer_(authorizer) {
    registerAdaptor();
}

ManagerObject::~ManagerObject() {
    unregisterAdaptor();
}

void ManagerObject::publish(const ManagerProperties& next) {
    std::vector<std::string> changed;
    const ManagerProperties& last = properties_;
    noteChange(changed, "State", last.state, next.state);
    noteChange(changed, "CurrentJob", last.currentJob, next.currentJob);
    noteChange(changed, "CurrentMountPoint", last.currentMountPoint, next.currentMountPoint);
    noteChange(changed, "Progress", last.progress, next.progress);
    noteChange(changed, "CurrentTrimmedBytes", last.currentTrimmedBytes, next.currentTrimmedBytes);
    noteChange(changed, "QueuedJobs", last.queuedJobs, next.queuedJobs);
    noteChange(changed, "NextScheduledTrim", last.nextScheduledTrim, next.nextScheduledTrim);
    noteChange(changed, "LastRunStarted", last.lastRunStarted, next.lastRunStarted);
    noteChange(changed, "LastRunFinished", last.lastRunFinished, next.lastRunFinished);
    noteChange(changed, "LastRunTrimmedBytes", last.lastRunTrimmedBytes, next.lastRunTrimmedBytes);
    noteChange(changed, "LastRunResult", last.lastRunResult, next.lastRunResult);
    noteChange(changed, "TotalTrimmedBytes", last.totalTrimmedBytes, next.totalTrimmedBytes);
    noteChange(changed, "Interval", last.interval, next.interval);
    noteChange(changed, "RateLimit", last.rateLimit, next.rateLimit);
    noteChange(changed, "ChunkSize", last.chunkSize, next.chunkSize);
    noteChange(changed, "MinimumExtent", last.minimumExtent, next.minimumExtent);
    noteChange(changed, "FreedSpaceThreshold", last.freedSpaceThreshold, next.freedSpaceThreshold);
    properties_ = next;
    if (!changed.empty())
        emitPropertiesChangedSignal(ManagerInterface::INTERFACE_NAME, changed);
}

void ManagerObject::Trim(sdbus::Result<std::uint64_t>&& result,
                         std::vector<std::string> mountPoints,
                         std::map<std::string, sdbus::Variant> options) {
    // Arguments are checked after the authorization: an unauthorized caller
    // learns nothing about which mount points are managed.
    authorizeThenReply(authorizer_, getObject(), std::move(result),
                       [this, mountPoints = std::move(mountPoints), options = std::move(options)] {
                           return controller_.queueTrim(mountPoints,
                                                        parseTrimRequestOptions(options));
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

std::vector<sdbus::Struct<std::string, std::string, std::string, std::string>>
ManagerObject::Diagnose() {
    return guarded([&] {
        std::vector<sdbus::Struct<std::string, std::string, std::string, std::string>> findings;
        for (const Finding& finding : controller_.diagnose())
            findings.emplace_back(std::string(severityName(finding.severity)), finding.subject,
                                  finding.message, finding.hint);
        return findings;
    });
}

std::string ManagerObject::Version() {
    return THINTRIM_VERSION;
}

FilesystemObject::FilesystemObject(sdbus::IConnection& bus, Controller& controller,
                                   Authorizer& authorizer, const FilesystemProperties& properties)
    : AdaptorInterfaces(bus, dbus::filesystemObjectPath(properties.mountPoint)),
      controller_(controller), authorizer_(authorizer), properties_(properties) {
    registerAdaptor();
    emitInterfacesAddedSignal();
}

FilesystemObject::~FilesystemObject() {
    emitInterfacesRemovedSignal();
    unregisterAdaptor();
}

void FilesystemObject::publish(const FilesystemProperties& next) {
    std::vector<std::string> changed;
    const FilesystemProperties& last = properties_;
    noteChange(changed, "MountPoint", last.mountPoint, next.mountPoint);
    noteChange(changed, "Source", last.source, next.source);
    noteChange(changed, "DeviceNumber", last.deviceNumber, next.deviceNumber);
    noteChange(changed, "FsType", last.fsType, next.fsType);
    noteChange(changed, "UUID", last.uuid, next.uuid);
    noteChange(changed, "Label", last.label, next.label);
    noteChange(changed, "Size", last.size, next.size);
    noteChange(changed, "FreeBytes", last.freeBytes, next.freeBytes);
    noteChange(changed, "MountOptions", last.mountOptions, next.mountOptions);
    noteChange(changed, "Eligible", last.eligible, next.eligible);
    noteChange(changed, "Reason", last.reason, next.reason);
    noteChange(changed, "DiscardMaxBytes", last.discardMaxBytes, next.discardMaxBytes);
    noteChange(changed, "DiscardGranularity", last.discardGranularity, next.discardGranularity);
    noteChange(changed, "Stack", last.stack, next.stack);
    noteChange(changed, "LastTrimStarted", last.lastTrimStarted, next.lastTrimStarted);
    noteChange(changed, "LastTrimFinished", last.lastTrimFinished, next.lastTrimFinished);
    noteChange(changed, "LastTrimmedBytes", last.lastTrimmedBytes, next.lastTrimmedBytes);
    noteChange(changed, "LastTrimDuration", last.lastTrimDuration, next.lastTrimDuration);
    noteChange(changed, "LastTrimResult", last.lastTrimResult, next.lastTrimResult);
    noteChange(changed, "LastTrimMessage", last.lastTrimMessage, next.lastTrimMessage);
    noteChange(changed, "TotalTrimmedBytes", last.totalTrimmedBytes, next.totalTrimmedBytes);
    noteChange(changed, "TrimCount", last.trimCount, next.trimCount);
    noteChange(changed, "NextScheduledTrim", last.nextScheduledTrim, next.nextScheduledTrim);
    noteChange(changed, "FreedSinceLastTrim", last.freedSinceLastTrim, next.freedSinceLastTrim);
    properties_ = next;
    if (!changed.empty())
        emitPropertiesChangedSignal(FilesystemInterface::INTERFACE_NAME, changed);
}

void FilesystemObject::Trim(sdbus::Result<std::uint64_t>&& result,
                            std::map<std::string, sdbus::Variant> options) {
    // The mount point, not this object: the filesystem may be gone by the
    // time polkit answers.
    authorizeThenReply(authorizer_, getObject(), std::move(result),
                       [&controller = controller_, mountPoint = properties_.mountPoint,
                        options = std::move(options)] {
                           return controller.queueTrim({mountPoint},
                                                       parseTrimRequestOptions(options));
                       });
}

} // namespace thintrim::daemon
