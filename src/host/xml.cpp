// SPDX-License-Identifier: GPL-2.0-or-later
#include "xml.h"

#include "base/error.h"

#include <fmt/format.h>

namespace thintrim::host {

std::optional<std::string> XmlElement::attribute(std::string_view key) const {
    for (const auto& [attributeName, value] : attributes) {
        if (attributeName == key)
            return value;
    }
    return std::nullopt;
}

const XmlElement* XmlElement::child(std::string_view childName) const {
    for (const auto& element : children) {
        if (element->name == childName)
            return element.get();
    }
    return nullptr;
}

std::vector<const XmlElement*> XmlElement::childrenNamed(std::string_view childName) const {
    std::vector<const XmlElement*> found;
    for (const auto& element : children) {
        if (element->name == childName)
            found.push_back(element.get());
    }
    return found;
}

namespace {

class Parser {
public:
    Parser(std::string_view text, std::string_view origin, const XmlLimits& limits)
        : text_(text), origin_(origin), limits_(limits) {}

    XmlElement parseDocument() {
        if (text_.size() > limits_.maxBytes)
            fail(fmt::format("larger than {} bytes", limits_.maxBytes));
        skipMisc();
        if (!startsWith("<"))
            fail("no root element");
        XmlElement root = parseElement(1);
        skipMisc();
        if (position_ != text_.size())
            fail("content after the root element");
        return root;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("{}:{}: not well-formed XML: {}", origin_, line_, what));
    }

    bool startsWith(std::string_view prefix) const {
        return text_.substr(position_).starts_with(prefix);
    }

    void advance(std::size_t count) {
        for (std::size_t i = 0; i < count && position_ < text_.size(); ++i) {
            if (text_[position_] == '\n')
                ++line_;
            ++position_;
        }
    }

    void skipPast(std::string_view terminator, std::string_view what) {
        const std::size_t end = text_.find(terminator, position_);
        if (end == std::string_view::npos)
            fail(fmt::format("unterminated {}", what));
        advance(end + terminator.size() - position_);
    }

    void skipSpace() {
        while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\t' ||
                                            text_[position_] == '\n' || text_[position_] == '\r'))
            advance(1);
    }

    // Whitespace, comments and processing instructions (<?xml ...?>) outside
    // the root. A DOCTYPE is refused: it is where entity expansion lives.
    void skipMisc() {
        for (;;) {
            skipSpace();
            if (startsWith("<!--"))
                skipPast("-->", "comment");
            else if (startsWith("<?"))
                skipPast("?>", "processing instruction");
            else if (startsWith("<!DOCTYPE") || startsWith("<!doctype"))
                fail("DOCTYPE is not accepted");
            else
                return;
        }
    }

    static bool isNameChar(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c == '.' || c == ':' ||
               static_cast<unsigned char>(c) >= 0x80;
    }

    std::string parseName() {
        const std::size_t start = position_;
        while (position_ < text_.size() && isNameChar(text_[position_]))
            advance(1);
        if (start == position_)
            fail("expected a name");
        return std::string(text_.substr(start, position_ - start));
    }

    static void appendUtf8(std::string& out, std::uint32_t codePoint) {
        if (codePoint < 0x80) {
            out += static_cast<char>(codePoint);
        } else if (codePoint < 0x800) {
            out += static_cast<char>(0xC0 | (codePoint >> 6));
            out += static_cast<char>(0x80 | (codePoint & 0x3F));
        } else if (codePoint < 0x10000) {
            out += static_cast<char>(0xE0 | (codePoint >> 12));
            out += static_cast<char>(0x80 | ((codePoint >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (codePoint & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (codePoint >> 18));
            out += static_cast<char>(0x80 | ((codePoint >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((codePoint >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (codePoint & 0x3F));
        }
    }

    // At '&': one of the five named entities or &#N; / &#xH;.
    void parseReference(std::string& out) {
        const std::size_t end = text_.find(';', position_);
        if (end == std::string_view::npos || end - position_ > 12)
            fail("unterminated character reference");
        const std::string_view name = text_.substr(position_ + 1, end - position_ - 1);
        if (name == "lt")
            out += '<';
        else if (name == "gt")
            out += '>';
        else if (name == "amp")
            out += '&';
        else if (name == "apos")
            out += '\'';
        else if (name == "quot")
            out += '"';
        else if (name.starts_with('#')) {
            const bool hex = name.size() > 1 && (name[1] == 'x' || name[1] == 'X');
            const std::string_view digits = name.substr(hex ? 2 : 1);
            std::uint32_t codePoint = 0;
            if (digits.empty())
                fail(fmt::format("bad character reference &{};", name));
            for (char c : digits) {
                std::uint32_t digit = 0;
                if (c >= '0' && c <= '9')
                    digit = static_cast<std::uint32_t>(c - '0');
                else if (hex && c >= 'a' && c <= 'f')
                    digit = static_cast<std::uint32_t>(c - 'a' + 10);
                else if (hex && c >= 'A' && c <= 'F')
                    digit = static_cast<std::uint32_t>(c - 'A' + 10);
                else
                    fail(fmt::format("bad character reference &{};", name));
                codePoint = codePoint * (hex ? 16 : 10) + digit;
                if (codePoint > 0x10FFFF)
                    fail(fmt::format("character reference &{}; out of range", name));
            }
            if (codePoint == 0 || (codePoint >= 0xD800 && codePoint <= 0xDFFF))
                fail(fmt::format("character reference &{}; is not a character", name));
            appendUtf8(out, codePoint);
        } else {
            fail(fmt::format("unknown entity &{};", name));
        }
        advance(end + 1 - position_);
    }

    std::string parseAttributeValue() {
        if (position_ >= text_.size() || (text_[position_] != '"' && text_[position_] != '\''))
            fail("attribute value must be quoted");
        const char quote = text_[position_];
        advance(1);
        std::string value;
        while (position_ < text_.size() && text_[position_] != quote) {
            if (text_[position_] == '<')
                fail("'<' in an attribute value");
            if (text_[position_] == '&') {
                parseReference(value);
            } else {
                value += text_[position_];
                advance(1);
            }
        }
        if (position_ >= text_.size())
            fail("unterminated attribute value");
        advance(1);
        return value;
    }

    XmlElement parseElement(std::size_t depth) {
        if (depth > limits_.maxDepth)
            fail(fmt::format("nested deeper than {} elements", limits_.maxDepth));
        if (++elements_ > limits_.maxElements)
            fail(fmt::format("more than {} elements", limits_.maxElements));
        XmlElement element;
        element.line = line_;
        advance(1); // '<'
        element.name = parseName();
        for (;;) {
            skipSpace();
            if (position_ >= text_.size())
                fail(fmt::format("unterminated start tag <{}>", element.name));
            if (startsWith("/>")) {
                advance(2);
                return element;
            }
            if (text_[position_] == '>') {
                advance(1);
                break;
            }
            std::string key = parseName();
            skipSpace();
            if (!startsWith("="))
                fail(fmt::format("attribute {} of <{}> has no value", key, element.name));
            advance(1);
            skipSpace();
            if (element.attribute(key))
                fail(fmt::format("attribute {} repeated in <{}>", key, element.name));
            element.attributes.emplace_back(std::move(key), parseAttributeValue());
        }
        // Content, up to the matching end tag.
        for (;;) {
            if (position_ >= text_.size())
                fail(fmt::format("<{}> is not closed", element.name));
            if (startsWith("</")) {
                advance(2);
                const std::string endName = parseName();
                if (endName != element.name)
                    fail(fmt::format("</{}> closes <{}> (line {})", endName, element.name,
                                     element.line));
                skipSpace();
                if (!startsWith(">"))
                    fail(fmt::format("malformed end tag </{}>", endName));
                advance(1);
                return element;
            }
            if (startsWith("<!--")) {
                skipPast("-->", "comment");
            } else if (startsWith("<![CDATA[")) {
                fail("CDATA sections are not accepted");
            } else if (startsWith("<!")) {
                fail("declarations are not accepted inside elements");
            } else if (startsWith("<?")) {
                skipPast("?>", "processing instruction");
            } else if (text_[position_] == '<') {
                element.children.push_back(std::make_unique<XmlElement>(parseElement(depth + 1)));
            } else if (text_[position_] == '&') {
                parseReference(element.text);
            } else {
                element.text += text_[position_];
                advance(1);
            }
        }
    }

    std::string_view text_;
    std::string_view origin_;
    XmlLimits limits_;
    std::size_t position_ = 0;
    std::size_t line_ = 1;
    std::size_t elements_ = 0;
};

} // namespace

XmlElement parseXml(std::string_view text, std::string_view origin, const XmlLimits& limits) {
    return Parser(text, origin, limits).parseDocument();
}

} // namespace thintrim::host
