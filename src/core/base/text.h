// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace thintrim {

// `text` as a whole unsigned decimal number: nullopt when it is empty, has a
// sign or trailing bytes, or does not fit in Number.
template <typename Number = std::uint64_t>
[[nodiscard]] std::optional<Number> parseDecimal(std::string_view text) {
    Number value{};
    const char* end = text.data() + text.size();
    const auto [ptr, error] = std::from_chars(text.data(), end, value);
    if (text.empty() || error != std::errc() || ptr != end)
        return std::nullopt;
    return value;
}

// The whitespace-separated fields of one line of a kernel table
// (/proc/diskstats, /proc/pressure/io, a block device's stat file).
[[nodiscard]] inline std::vector<std::string_view> splitFields(std::string_view line) {
    std::vector<std::string_view> fields;
    std::size_t position = 0;
    while (position < line.size()) {
        position = line.find_first_not_of(" \t\n", position);
        if (position == std::string_view::npos)
            break;
        std::size_t end = line.find_first_of(" \t\n", position);
        if (end == std::string_view::npos)
            end = line.size();
        fields.push_back(line.substr(position, end - position));
        position = end;
    }
    return fields;
}

// Calls `each` with every line of `text`, without its newline.
template <typename Each>
void forEachLine(std::string_view text, Each each) {
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        each(text.substr(0, end));
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    }
}

// The first MiB of a kernel table or small text file (more is not what such
// a file holds); nullopt when it cannot be opened.
[[nodiscard]] std::optional<std::string> readSmallFile(const std::filesystem::path& path);

} // namespace thintrim
