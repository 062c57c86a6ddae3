// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace thintrim::host {

// A bounded reader for the XML libvirt writes (domain definitions): elements,
// attributes, text, comments, the <?xml?> declaration, the five named
// entities and numeric character references. No DOCTYPE (so no entity
// expansion to bomb memory), no namespaces resolved, no CDATA. Enough for
// /etc/libvirt/qemu/*.xml, nothing more.
struct XmlElement {
    std::string name;
    std::vector<std::pair<std::string, std::string>> attributes;
    std::string text; // the concatenated character data directly inside
    std::vector<std::unique_ptr<XmlElement>> children;
    std::size_t line = 0; // where the start tag is, for messages

    [[nodiscard]] std::optional<std::string> attribute(std::string_view key) const;
    // The first child named `childName`, or nullptr.
    [[nodiscard]] const XmlElement* child(std::string_view childName) const;
    [[nodiscard]] std::vector<const XmlElement*> childrenNamed(std::string_view childName) const;
};

struct XmlLimits {
    std::size_t maxBytes = 4 << 20; // a domain XML is a few KiB
    std::size_t maxDepth = 64;
    std::size_t maxElements = 100000;
};

// The document's root element. Throws Error(InvalidArgument) naming `origin`
// (a path) and the line for anything malformed, a DOCTYPE, or a limit hit.
[[nodiscard]] XmlElement parseXml(std::string_view text, std::string_view origin,
                                  const XmlLimits& limits = {});

} // namespace thintrim::host
