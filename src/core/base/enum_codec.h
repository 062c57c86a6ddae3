// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace thintrim {

// Throws Error(InvalidArgument): "unknown WHAT "NAME"; known are ACCEPTED".
// Out of line so that error.h, which includes this file, can declare its own
// codec.
[[noreturn]] void throwUnknownName(std::string_view what, std::string_view name,
                                   const std::string& accepted);

// The one table between an enum and the names it has outside the program
// (the state file, the bus, JSON, log fields), read both ways. Declared
// constexpr next to its enum:
//
//   inline constexpr auto kVerifyVerdicts = makeEnumCodec<VerifyVerdict>(
//       "verify verdict", {{VerifyVerdict::Passes, "passes"}, ...});
//
// name() of a value missing from the table is a programming error (a new
// enumerator without a name) and throws std::logic_error; parse() of a name
// missing from it is bad input and throws Error(InvalidArgument) naming it
// and every accepted name.
template <typename Enum, std::size_t Count>
class EnumCodec {
public:
    using Entry = std::pair<Enum, std::string_view>;

    constexpr EnumCodec(std::string_view what, const std::array<Entry, Count>& entries)
        : what_(what), entries_(entries) {}

    [[nodiscard]] constexpr std::string_view name(Enum value) const {
        for (const auto& [known, name] : entries_) {
            if (known == value)
                return name;
        }
        throw std::logic_error("a " + std::string(what_) + " without a name");
    }

    // nullopt for a name not in the table.
    [[nodiscard]] constexpr std::optional<Enum> find(std::string_view name) const {
        for (const auto& [value, known] : entries_) {
            if (known == name)
                return value;
        }
        return std::nullopt;
    }

    [[nodiscard]] Enum parse(std::string_view name) const {
        if (std::optional<Enum> value = find(name))
            return *value;
        throwUnknownName(what_, name, acceptedNames());
    }

    // "a, b or c": for messages.
    [[nodiscard]] std::string acceptedNames() const {
        std::string list;
        for (std::size_t index = 0; index < Count; ++index) {
            if (index > 0)
                list += index + 1 == Count ? " or " : ", ";
            list += entries_[index].second;
        }
        return list;
    }

    [[nodiscard]] constexpr std::array<std::string_view, Count> names() const {
        std::array<std::string_view, Count> names{};
        for (std::size_t index = 0; index < Count; ++index)
            names[index] = entries_[index].second;
        return names;
    }
    [[nodiscard]] constexpr std::array<Enum, Count> values() const {
        std::array<Enum, Count> values{};
        for (std::size_t index = 0; index < Count; ++index)
            values[index] = entries_[index].first;
        return values;
    }
    // What the names stand for, e.g. "verify verdict".
    [[nodiscard]] constexpr std::string_view what() const { return what_; }

private:
    std::string_view what_;
    std::array<Entry, Count> entries_;
};

// `what` names the enum in errors; `entries` lists every value once.
template <typename Enum, std::size_t Count>
[[nodiscard]] constexpr EnumCodec<Enum, Count>
makeEnumCodec(std::string_view what, const std::pair<Enum, std::string_view> (&entries)[Count]) {
    std::array<std::pair<Enum, std::string_view>, Count> table{};
    for (std::size_t index = 0; index < Count; ++index)
        table[index] = entries[index];
    for (std::size_t index = 0; index < Count; ++index) {
        for (std::size_t other = index + 1; other < Count; ++other) {
            if (table[index].first == table[other].first ||
                table[index].second == table[other].second)
                throw std::logic_error("an enum codec names a value twice");
        }
    }
    return EnumCodec<Enum, Count>(what, table);
}

} // namespace thintrim
