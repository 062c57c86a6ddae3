// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/error.h"
#include "bus_names.h"
#include "sdbus_compat.h"
#include "thintrim1_schema.h"

#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

// The properties of one thintrimd object as the CLI read them (GetAll,
// GetManagedObjects, PropertiesChanged), read by the schema's property types
// (src/dbus/gen-schema.py): `fs.get<schema::filesystem::LastTrimResult>()`
// is a std::string, and a misspelt property or one of the other interface
// does not compile.
namespace thintrim::cli {

namespace schema = dbus::schema;

template <typename Interface>
class ObjectProperties {
public:
    ObjectProperties() = default;
    explicit ObjectProperties(dbus::PropertyMap values) : values_(std::move(values)) {}

    // Throws Error(Failed) when the daemon did not publish it (another
    // version of thintrimd) or published another type.
    template <typename Property>
    [[nodiscard]] typename Property::Value get() const {
        if (std::optional<typename Property::Value> value = find<Property>())
            return *std::move(value);
        throw Error(ErrorCode::Failed,
                    fmt::format("thintrimd does not publish the property {}.{}; is it the same "
                                "version as this program?",
                                Interface::name, Property::name));
    }

    // nullopt when absent: a PropertiesChanged carries only what changed.
    template <typename Property>
    [[nodiscard]] std::optional<typename Property::Value> find() const {
        static_assert(std::is_same_v<typename Property::Interface, Interface>,
                      "a property of another interface");
        auto found = values_.find(std::string(Property::name));
        if (found == values_.end())
            return std::nullopt;
        const std::string signature = dbus::variantSignature(found->second);
        if (signature != Property::signature)
            throw Error(ErrorCode::Failed,
                        fmt::format("thintrimd publishes {}.{} as \"{}\", not \"{}\"; is it the "
                                    "same version as this program?",
                                    Interface::name, Property::name, signature,
                                    Property::signature));
        return found->second.template get<typename Property::Value>();
    }

    template <typename Property>
    [[nodiscard]] bool contains() const {
        static_assert(std::is_same_v<typename Property::Interface, Interface>,
                      "a property of another interface");
        return values_.contains(std::string(Property::name));
    }

    // A bytes property that may be unknown (2^64-1): nullopt then.
    template <typename Property>
    [[nodiscard]] std::optional<std::uint64_t> knownBytes() const {
        static_assert(Property::unknownBytes, "a property that is never unknown");
        const std::uint64_t bytes = get<Property>();
        return bytes == dbus::kUnknownBytes ? std::nullopt : std::optional(bytes);
    }

private:
    dbus::PropertyMap values_;
};

using ManagerView = ObjectProperties<schema::ManagerInterface>;
using FilesystemView = ObjectProperties<schema::FilesystemInterface>;

// Every property of `List` that has a JSON key, under that key: unknown
// bytes as null.
template <typename Interface, typename... Property>
[[nodiscard]] nlohmann::json propertiesJson(const ObjectProperties<Interface>& object,
                                            std::type_identity<std::tuple<Property...>>) {
    nlohmann::json json = nlohmann::json::object();
    (
        [&] {
            if constexpr (!Property::jsonKey.empty()) {
                const std::string key{Property::jsonKey};
                if constexpr (Property::unknownBytes) {
                    const std::optional<std::uint64_t> bytes =
                        object.template knownBytes<Property>();
                    json[key] = bytes ? nlohmann::json(*bytes) : nlohmann::json();
                } else {
                    json[key] = object.template get<Property>();
                }
            }
        }(),
        ...);
    return json;
}

} // namespace thintrim::cli
