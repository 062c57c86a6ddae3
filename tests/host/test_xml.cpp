// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/error.h"
#include "catch.h"
#include "xml.h"

using namespace thintrim;
using namespace thintrim::host;

namespace {

std::string errorOf(std::string_view text, const XmlLimits& limits = {}) {
    try {
        (void)parseXml(text, "t.xml", limits);
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidArgument);
        return e.what();
    }
    FAIL("accepted: " << text);
    return {};
}

} // namespace

TEST_CASE("xml: elements, attributes, text, entities, comments and the declaration") {
    const auto root = parseXml("<?xml version='1.0'?>\n<!-- generated -->\n<domain type='kvm'>"
                               "<name>a &amp; b &lt;&gt; &quot;&apos; &#65;&#x42;&#x2014;</name>"
                               "<!-- inside --><devices><disk device=\"disk\"/><disk/></devices>"
                               "</domain>\n",
                               "t.xml");
    CHECK(root.name == "domain");
    CHECK(root.attribute("type") == "kvm");
    CHECK(!root.attribute("missing"));
    REQUIRE(root.child("name"));
    CHECK(root.child("name")->text == "a & b <> \"' AB\xe2\x80\x94");
    REQUIRE(root.child("devices"));
    CHECK(root.child("devices")->childrenNamed("disk").size() == 2);
    CHECK(root.child("devices")->line == 3);
}

TEST_CASE("xml: malformed input is refused with the line") {
    CHECK_THAT(errorOf("<a>\n<b>\n</a>"),
               thintrim::test::Contains("t.xml:3") && thintrim::test::Contains("</a>"));
    CHECK_THAT(errorOf("<!DOCTYPE x [<!ENTITY a 'b'>]><a/>"), thintrim::test::Contains("DOCTYPE"));
    CHECK_THAT(errorOf("<a>&bogus;</a>"), thintrim::test::Contains("unknown entity"));
    CHECK_THAT(errorOf("<a>&#0;</a>"), thintrim::test::Contains("not a character"));
    CHECK_THAT(errorOf("<a>&#x110000;</a>"), thintrim::test::Contains("out of range"));
    CHECK_THAT(errorOf("<a b=c/>"), thintrim::test::Contains("quoted"));
    CHECK_THAT(errorOf("<a b='1' b='2'/>"), thintrim::test::Contains("repeated"));
    CHECK_THAT(errorOf("<a>"), thintrim::test::Contains("not closed"));
    CHECK_THAT(errorOf("<a/><b/>"), thintrim::test::Contains("after the root"));
    CHECK_THAT(errorOf("<a><![CDATA[x]]></a>"), thintrim::test::Contains("CDATA"));
    CHECK_THAT(errorOf(""), thintrim::test::Contains("no root"));
}

TEST_CASE("xml: limits on size, depth and element count") {
    XmlLimits limits;
    limits.maxDepth = 3;
    CHECK_NOTHROW(parseXml("<a><b><c/></b></a>", "t", limits));
    CHECK_THAT(errorOf("<a><b><c><d/></c></b></a>", limits),
               thintrim::test::Contains("deeper than 3"));
    limits = {};
    limits.maxBytes = 10;
    CHECK_THAT(errorOf("<a>0123456789</a>", limits),
               thintrim::test::Contains("larger than 10 bytes"));
    limits = {};
    limits.maxElements = 2;
    CHECK_THAT(errorOf("<a><b/><c/></a>", limits),
               thintrim::test::Contains("more than 2 elements"));
    // Depth is bounded before recursion can exhaust the stack.
    std::string deep;
    for (int i = 0; i < 100000; ++i)
        deep += "<a>";
    CHECK_THAT(errorOf(deep), thintrim::test::Contains("deeper than 64"));
}
