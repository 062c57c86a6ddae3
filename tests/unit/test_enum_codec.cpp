// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/enum_codec.h"
#include "base/error.h"
#include "catch.h"

#include <string>

using namespace thintrim;
using thintrim::test::Contains;

namespace {

enum class Colour { Red, Green, Blue };
constexpr auto kColours = makeEnumCodec<Colour>(
    "colour", {{Colour::Red, "red"}, {Colour::Green, "green"}, {Colour::Blue, "blue"}});

// The message of the Error parse() throws, or "" when it returns.
std::string parseError(std::string_view name) {
    try {
        (void)kColours.parse(name);
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidArgument);
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("an enum codec maps values to names and back", "[enum-codec]") {
    static_assert(kColours.name(Colour::Green) == "green", "name() works at compile time");
    for (Colour colour : kColours.values())
        CHECK(kColours.parse(kColours.name(colour)) == colour);
    CHECK(kColours.find("blue") == Colour::Blue);
    CHECK_FALSE(kColours.find("Blue").has_value());
    CHECK(kColours.names() == std::array<std::string_view, 3>{"red", "green", "blue"});
}

TEST_CASE("an unknown name is an error naming it and the accepted ones", "[enum-codec]") {
    CHECK_THAT(parseError("purple"),
               Contains("unknown colour \"purple\"") && Contains("red, green or blue"));
    CHECK_THAT(parseError(""), Contains("unknown colour \"\""));
}

TEST_CASE("a value without a name is a programming error", "[enum-codec]") {
    constexpr auto partial = makeEnumCodec<Colour>("colour", {{Colour::Red, "red"}});
    CHECK_THROWS_AS(partial.name(Colour::Blue), std::logic_error);
}

TEST_CASE("error codes are named as their D-Bus errors end", "[enum-codec]") {
    CHECK(errorCodeName(ErrorCode::Failed) == "Failed");
    CHECK(kErrorCodes.parse("NoSuchJob") == ErrorCode::NoSuchJob);
}
