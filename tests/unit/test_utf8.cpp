// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/utf8.h"
#include "catch.h"

using namespace thintrim;
using namespace std::string_literals;

TEST_CASE("valid UTF-8 is returned unchanged") {
    for (const std::string text : {"", "/home", "Données", "ラベル", "\xF0\x9F\x92\xBE"}) {
        CHECK(isValidUtf8(text));
        CHECK(escapeInvalidUtf8(text) == text);
    }
}

TEST_CASE("each byte that starts no valid sequence becomes U+FFFD") {
    const std::string fffd = "\xEF\xBF\xBD";
    // tune2fs -L $'\xff\xfeab'
    CHECK(escapeInvalidUtf8("\xFF\xFE"
                            "ab") == fffd + fffd + "ab");
    // Latin-1 "é" from a FAT label written on Windows.
    CHECK(escapeInvalidUtf8("caf\xE9") == "caf" + fffd);
    CHECK(escapeInvalidUtf8("\xC0\xAF") == fffd + fffd);                       // overlong "/"
    CHECK(escapeInvalidUtf8("\xED\xA0\x80") == fffd + fffd + fffd);            // a surrogate
    CHECK(escapeInvalidUtf8("\xF4\x90\x80\x80") == fffd + fffd + fffd + fffd); // > U+10FFFF
    CHECK(escapeInvalidUtf8("\xE2\x82") == fffd + fffd);                       // truncated
    CHECK(escapeInvalidUtf8("a\0b"s) == "a" + fffd + "b");                     // NUL
    for (const std::string& text : {"\xFF"s, "caf\xE9"s, "a\0b"s}) {
        CHECK_FALSE(isValidUtf8(text));
        CHECK(isValidUtf8(escapeInvalidUtf8(text)));
    }
}

TEST_CASE("Prometheus label values are valid UTF-8 with quotes, backslashes and newlines escaped",
          "[utf8]") {
    CHECK(thintrim::prometheusLabelValue("/mnt/a") == "/mnt/a");
    CHECK(thintrim::prometheusLabelValue("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
    CHECK(thintrim::prometheusLabelValue("caf\xe9") == thintrim::escapeInvalidUtf8("caf\xe9"));
}
