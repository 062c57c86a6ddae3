// SPDX-License-Identifier: GPL-2.0-or-later
// The configuration parser: any text either parses or throws Error; what
// parses formats back to text that parses to the same configuration.
#include "base/error.h"
#include "config/config.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const thintrim::Config config = thintrim::parseConfig(text, "<fuzz>");
        if (thintrim::parseConfig(thintrim::formatConfig(config), "<formatted>") != config)
            std::abort();
    } catch (const thintrim::Error&) {
    }
    return 0;
}
