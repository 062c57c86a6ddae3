// SPDX-License-Identifier: GPL-2.0-or-later
// The size, rate, percentage and duration parsers: a value or Error, never
// a crash, an overflow (UBSan) or a negative duration.
#include "base/error.h"
#include "base/units.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

template <typename Parse>
void tryParse(Parse parse) {
    try {
        parse();
    } catch (const thintrim::Error&) {
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    tryParse([&] { (void)thintrim::parseSize(text, "size"); });
    tryParse([&] { (void)thintrim::parseRate(text, "rate"); });
    tryParse([&] { (void)thintrim::parseSizeOrPercent(text, "threshold"); });
    tryParse([&] {
        if (thintrim::parseDuration(text, "duration").count() < 0)
            std::abort();
    });
    return 0;
}
