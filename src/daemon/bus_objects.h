// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "authorizer.h"
#include "engine/diagnose.h"
#include "thintrim1_adaptor.h"
#include "thintrim1_schema.h"
#include "trim/verify.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

namespace thintrim::daemon {

// What Manager.Trim and Filesystem.Trim accept in their a{sv}; absent keys
// take the configuration's values.
struct TrimRequestOptions {
    std::optional<bool> dryRun;
    std::optional<std::uint64_t> minimumExtent;
    std::optional<std::uint64_t> rateLimit;
    std::optional<std::uint64_t> chunkSize;
};

// What one Manager.Trim call may name, checked before the authorization
// (the system bus already caps a message at 32 MiB): more mount points than
// any machine manages, and no path longer than the kernel accepts.
inline constexpr std::size_t kMaxTrimMountPoints = 1024;
inline constexpr std::size_t kMaxMountPointBytes = 4096; // PATH_MAX

// Throws Error(InvalidArgument) naming the bound a list goes over.
void checkTrimMountPointList(const std::vector<std::string>& mountPoints);

// Throws Error(InvalidArgument) for unknown keys and wrong types.
[[nodiscard]] TrimRequestOptions
parseTrimRequestOptions(const std::map<std::string, sdbus::Variant>& options);

// How the daemon answers a method whose reply waits (for a fresh scan of the
// block stacks, for a worker): it calls the reply once, later, on the loop
// thread, with a body that returns the results or throws thintrim::Error;
// the error boundary (bus_boundary.h) maps what the body throws.
template <typename Value>
using LaterReply = std::function<void(const std::function<Value()>& body)>;

// What the bus objects ask of the daemon. Every call runs on the loop thread
// inside the error boundary: throwing thintrim::Error, before handing a
// LaterReply on, is how to fail at once.
class Controller {
public:
    // Queues a job once the verdicts are fresh; replies with its id.
    virtual void queueTrim(const std::vector<std::string>& mountPoints,
                           const TrimRequestOptions& options, LaterReply<std::uint64_t> reply) = 0;
    virtual void cancelJob(std::uint64_t job) = 0;
    virtual void suspend() = 0;
    virtual void resume() = 0;
    virtual void reload() = 0;
    [[nodiscard]] virtual std::string filesystemObjectPath(const std::string& mountPoint) = 0;
    // Replies with the doctor's findings over freshly read stacks.
    virtual void diagnose(LaterReply<std::vector<Finding>> reply) = 0;
    // Verifies the named mount points (empty: every eligible one) on a
    // worker; replies with one entry per filesystem, or NotManaged before
    // starting anything.
    using VerifyOutcomes = std::vector<std::pair<std::string, VerifyReport>>;
    virtual void verify(const std::vector<std::string>& mountPoints,
                        LaterReply<VerifyOutcomes> reply) = 0;

protected:
    ~Controller() = default;
};

// The values each object publishes: one member per property of the XML,
// generated with their defaults (src/dbus/gen-schema.py). Manager's Version
// is the bus object's own.
using ManagerProperties = dbus::schema::ManagerProperties;
using FilesystemProperties = dbus::schema::FilesystemProperties;
using StackLayer = decltype(FilesystemProperties::stack)::value_type;

// /org/thintrim/ThinTrim1: Manager, ObjectManager, Properties.
class ManagerObject final
    : public sdbus::AdaptorInterfaces<org::thintrim::ThinTrim1::Manager_adaptor,
                                      sdbus::ObjectManager_adaptor, sdbus::Properties_adaptor> {
public:
    ManagerObject(sdbus::IConnection& bus, Controller& controller, Authorizer& authorizer);
    ~ManagerObject();
    ManagerObject(const ManagerObject&) = delete;
    ManagerObject& operator=(const ManagerObject&) = delete;

    // Replaces the published values and emits PropertiesChanged for those
    // that differ.
    void publish(const ManagerProperties& properties);
    [[nodiscard]] const ManagerProperties& properties() const { return properties_; }

private:
    void Trim(sdbus::Result<std::uint64_t>&& result, std::vector<std::string> mountPoints,
              std::map<std::string, sdbus::Variant> options) override;
    void Cancel(sdbus::Result<>&& result, std::uint64_t job) override;
    void Suspend(sdbus::Result<>&& result) override;
    void Resume(sdbus::Result<>&& result) override;
    void Reload(sdbus::Result<>&& result) override;
    sdbus::ObjectPath GetFilesystem(const std::string& mountPoint) override;
    void Diagnose(sdbus::Result<
                  std::vector<sdbus::Struct<std::string, std::string, std::string, std::string>>>&&
                      result) override;
    void Verify(sdbus::Result<std::vector<
                    sdbus::Struct<std::string, std::string, std::string, std::uint64_t>>>&& result,
                std::vector<std::string> mountPoints) override;

    Controller& controller_;
    Authorizer& authorizer_;
    // Registered by address with the bus object: it reads them on Get.
    ManagerProperties properties_;
};

// /org/thintrim/ThinTrim1/filesystem/<label>: one managed filesystem.
// Construction announces it (InterfacesAdded), destruction withdraws it
// (InterfacesRemoved).
class FilesystemObject final
    : public sdbus::AdaptorInterfaces<org::thintrim::ThinTrim1::Filesystem_adaptor,
                                      sdbus::ManagedObject_adaptor, sdbus::Properties_adaptor> {
public:
    FilesystemObject(sdbus::IConnection& bus, Controller& controller, Authorizer& authorizer,
                     const FilesystemProperties& properties);
    ~FilesystemObject();
    FilesystemObject(const FilesystemObject&) = delete;
    FilesystemObject& operator=(const FilesystemObject&) = delete;

    void publish(const FilesystemProperties& properties);
    [[nodiscard]] const FilesystemProperties& properties() const { return properties_; }

private:
    void Trim(sdbus::Result<std::uint64_t>&& result,
              std::map<std::string, sdbus::Variant> options) override;

    Controller& controller_;
    Authorizer& authorizer_;
    // Registered by address with the bus object: it reads them on Get.
    FilesystemProperties properties_;
};

} // namespace thintrim::daemon
