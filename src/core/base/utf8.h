// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>
#include <string_view>

namespace thintrim {

// Bytes from the system (labels, mount points, sources, kernel messages) are
// not always UTF-8, but D-Bus strings and JSON must be. Every string that
// leaves thintrim goes through here: each byte that does not begin a valid
// UTF-8 sequence (a stray continuation byte, a truncated or overlong
// sequence, a surrogate, a code point above U+10FFFF) becomes U+FFFD, the
// replacement character, as systemd's utf8_escape_invalid() does. A NUL byte
// does too: D-Bus strings cannot carry it. Valid text is returned unchanged.
[[nodiscard]] std::string escapeInvalidUtf8(std::string_view text);

// A Prometheus label value: valid UTF-8 as above, with backslash, double
// quote and newline escaped as the text exposition format wants.
[[nodiscard]] std::string prometheusLabelValue(std::string_view raw);

[[nodiscard]] bool isValidUtf8(std::string_view text);

} // namespace thintrim
