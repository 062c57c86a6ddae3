// SPDX-License-Identifier: GPL-2.0-or-later
// The bus API's schema (generated from the XML, src/dbus/gen-schema.py)
// against the core: every enumerated property lists exactly the names the
// core's codecs give the daemon to publish, "never" first where a result
// may not exist yet; and the error names both ways.
#include "bus_names.h"
#include "catch.h"
#include "engine/engine.h"
#include "state/state.h"
#include "thintrim1_schema.h"
#include "trim/trim.h"
#include "trim/verify.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

using namespace thintrim;
namespace schema = thintrim::dbus::schema;

namespace {

template <typename Names>
std::vector<std::string> asStrings(const Names& names) {
    return {names.begin(), names.end()};
}

template <typename Codec>
std::vector<std::string> neverThen(const Codec& codec) {
    std::vector<std::string> names{std::string(kNeverName)};
    for (std::string_view name : codec.names())
        names.emplace_back(name);
    return names;
}

template <typename Keys>
bool unique(const Keys& keys) {
    return std::set<std::string_view>(keys.begin(), keys.end()).size() == keys.size();
}

} // namespace

TEST_CASE("enumerated properties list the core's names", "[schema]") {
    CHECK(asStrings(schema::manager::State::values) == asStrings(kEngineStates.names()));
    CHECK(asStrings(schema::manager::LastRunResult::values) == neverThen(kJobResults));
    CHECK(asStrings(schema::filesystem::LastTrimResult::values) == neverThen(kTrimOutcomes));
    CHECK(asStrings(schema::filesystem::LastVerifyResult::values) == neverThen(kVerifyVerdicts));
}

TEST_CASE("a property's default is what the daemon publishes before anything happened",
          "[schema]") {
    const schema::FilesystemProperties filesystem;
    CHECK(filesystem.lastTrimResult == kNeverName);
    CHECK(filesystem.lastVerifyResult == kNeverName);
    CHECK(filesystem.lastReachedDiskBytes == UINT64_MAX);
    const schema::ManagerProperties manager;
    CHECK(manager.state == engineStateName(EngineState::Idle));
    CHECK(manager.lastRunResult == kNeverName);
}

TEST_CASE("JSON keys are unique and follow the XML's annotations", "[schema]") {
    CHECK(unique(schema::kManagerJsonKeys));
    CHECK(unique(schema::kFilesystemJsonKeys));
    CHECK(schema::manager::Interval::jsonKey == "interval_us");
    CHECK(schema::filesystem::UUID::jsonKey == "uuid");
    CHECK(schema::filesystem::LastReachedDiskBytes::jsonKey == "last_reached_disk_bytes");
    // The block stack is `thintrim stack`'s, not list's.
    CHECK(schema::filesystem::Stack::jsonKey.empty());
    CHECK(std::find(schema::kFilesystemJsonKeys.begin(), schema::kFilesystemJsonKeys.end(),
                    "stack") == schema::kFilesystemJsonKeys.end());
    // Issue 17: status --json had left these out.
    CHECK(schema::manager::MinimumExtent::jsonKey == "minimum_extent");
    CHECK(schema::manager::FreedSpaceThreshold::jsonKey == "freed_space_threshold");
}

TEST_CASE("every error code travels as the name the XML documents, and back", "[schema]") {
    CHECK(dbus::errorName(ErrorCode::Failed) == "org.thintrim.ThinTrim1.Error.Failed");
    CHECK(dbus::errorName(ErrorCode::NotManaged) == "org.thintrim.ThinTrim1.Error.NotManaged");
    CHECK(dbus::errorName(ErrorCode::AccessDenied) == "org.freedesktop.DBus.Error.AccessDenied");
    for (ErrorCode code : kErrorCodes.values())
        CHECK(dbus::errorCodeFromName(dbus::errorName(code)) == code);
    // AccessDenied is the bus's name only; names thintrim does not send are
    // not taken for its own.
    CHECK_FALSE(dbus::errorCodeFromName("org.thintrim.ThinTrim1.Error.AccessDenied"));
    CHECK_FALSE(dbus::errorCodeFromName("org.thintrim.ThinTrim1.Error.System"));
    CHECK_FALSE(dbus::errorCodeFromName("org.freedesktop.DBus.Error.Failed"));
}
