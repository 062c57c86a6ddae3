#!/usr/bin/python3
"""Writes the schema of the bus API's properties, read from the API XML.

usage: gen-schema.py API.xml SCHEMA.h SCHEMA.txt

SCHEMA.h (namespace thintrim::dbus::schema), for the daemon and the CLI:
  - per interface, a struct of the values of its properties (ManagerProperties,
    FilesystemProperties), one member per property named as the property in
    lowerCamelCase, with its default;
  - per property, a type in namespace manager:: or filesystem:: (manager::State)
    with its name, D-Bus signature, C++ Value, JSON key, the member holding it
    and, for an enumerated string, its values;
  - per interface, the tuple of all its property types (ManagerPropertyList)
    and the array of its JSON keys (kManagerJsonKeys).
SCHEMA.txt, for the tests of the man pages: one line per property,
"INTERFACE NAME JSON-KEY" ("-" when it has none).

Annotations read from a <property> (namespace org.thintrim.ThinTrim1.):
  JsonKey       its key in `thintrim status/list --json` when not the name in
                snake_case; empty: not in the JSON;
  Values        an enumerated string's values, space-separated; the first is
                the value before anything happened ("never", "idle");
  UnknownBytes  "true": 2^64-1 stands for unknown; it is the default, and null
                in the JSON.
"""
import re
import sys
import xml.etree.ElementTree as ET

ANNOTATION = "org.thintrim.ThinTrim1."
KNOWN_ANNOTATIONS = {"JsonKey", "Values", "UnknownBytes"}
BASIC = {
    "s": "std::string",
    "o": "sdbus::ObjectPath",
    "b": "bool",
    "d": "double",
    "y": "std::uint8_t",
    "n": "std::int16_t",
    "q": "std::uint16_t",
    "i": "std::int32_t",
    "u": "std::uint32_t",
    "x": "std::int64_t",
    "t": "std::uint64_t",
}


class SchemaError(Exception):
    pass


def cpp_type(signature):
    """The C++ type of one complete D-Bus type, and the rest of `signature`."""
    head = signature[0]
    if head in BASIC:
        return BASIC[head], signature[1:]
    if head == "a":
        if signature[1] == "{":
            raise SchemaError(f"dictionaries are not supported: {signature}")
        element, rest = cpp_type(signature[1:])
        return f"std::vector<{element}>", rest
    if head == "(":
        fields = []
        rest = signature[1:]
        while rest[0] != ")":
            field, rest = cpp_type(rest)
            fields.append(field)
        return f"sdbus::Struct<{', '.join(fields)}>", rest[1:]
    raise SchemaError(f"unsupported D-Bus type: {signature}")


def single_cpp_type(signature):
    value, rest = cpp_type(signature)
    if rest:
        raise SchemaError(f"not a single complete type: {signature}")
    return value


def snake_case(name):
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def lower_camel_case(name):
    leading = re.match(r"[A-Z]+", name).group(0)
    if len(leading) == len(name):
        return name.lower()
    if len(leading) > 1:
        leading = leading[:-1]
    return leading.lower() + name[len(leading):]


def short_name(interface):
    return interface.rsplit(".", 1)[-1]


def cpp_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_properties(interface):
    properties = []
    for element in interface.findall("property"):
        name = element.get("name")
        annotations = {}
        for annotation in element.findall("annotation"):
            key = annotation.get("name")
            if key.startswith(ANNOTATION):
                short = key[len(ANNOTATION):]
                if short not in KNOWN_ANNOTATIONS:
                    raise SchemaError(f"property {name}: unknown annotation {key}")
                annotations[short] = annotation.get("value")
        signature = element.get("type")
        values = annotations.get("Values", "").split()
        if values and signature != "s":
            raise SchemaError(f"property {name}: Values on type {signature}, not s")
        unknown_bytes = annotations.get("UnknownBytes") == "true"
        if unknown_bytes and signature != "t":
            raise SchemaError(f"property {name}: UnknownBytes on type {signature}, not t")
        constant = any(
            a.get("name") == "org.freedesktop.DBus.Property.EmitsChangedSignal"
            and a.get("value") == "const" for a in element.findall("annotation"))
        properties.append({
            "name": name,
            "signature": signature,
            "cpp": single_cpp_type(signature),
            "member": lower_camel_case(name),
            "json": annotations.get("JsonKey", snake_case(name)),
            "values": values,
            "unknown_bytes": unknown_bytes,
            "constant": constant,
        })
    return properties


def default_value(prop):
    if prop["values"]:
        return " = " + cpp_string(prop["values"][0])
    if prop["unknown_bytes"]:
        return " = std::numeric_limits<std::uint64_t>::max()"
    if prop["cpp"] == "bool":
        return " = false"
    if prop["cpp"] == "double":
        return " = 0.0"
    if prop["cpp"] in BASIC.values() and prop["cpp"] not in ("std::string", "sdbus::ObjectPath"):
        return " = 0"
    return ""


def header(interfaces):
    out = [
        "// Generated from org.thintrim.ThinTrim1.xml by src/dbus/gen-schema.py: do not edit.",
        "#pragma once",
        "",
        "#include <array>",
        "#include <cstdint>",
        "#include <limits>",
        "#include <string>",
        "#include <string_view>",
        "#include <tuple>",
        "#include <vector>",
        "",
        "#include <sdbus-c++/Types.h>",
        "",
        "namespace thintrim::dbus::schema {",
        "",
    ]
    for interface, properties in interfaces:
        short = short_name(interface)
        space = short.lower()
        out += [
            f"// {interface}",
            f"struct {short}Interface {{",
            f"    static constexpr std::string_view name = {cpp_string(interface)};",
            "};",
            "",
            f"// The values of {short}'s properties.",
            f"struct {short}Properties {{",
        ]
        for prop in properties:
            out.append(f"    {prop['cpp']} {prop['member']}{default_value(prop)};")
        out += [
            f"    bool operator==(const {short}Properties&) const = default;",
            "};",
            "",
            f"namespace {space} {{",
        ]
        for prop in properties:
            values = ", ".join(cpp_string(v) for v in prop["values"])
            out += [
                f"struct {prop['name']} {{",
                f"    using Interface = {short}Interface;",
                f"    using Value = {prop['cpp']};",
                f"    static constexpr std::string_view name = {cpp_string(prop['name'])};",
                f"    static constexpr std::string_view signature = {cpp_string(prop['signature'])};",
                f"    static constexpr std::string_view jsonKey = {cpp_string(prop['json'])};",
                f"    static constexpr bool constant = {'true' if prop['constant'] else 'false'};",
                f"    static constexpr bool unknownBytes = {'true' if prop['unknown_bytes'] else 'false'};",
                f"    static constexpr std::array<std::string_view, {len(prop['values'])}> values{{{values}}};",
                f"    static constexpr Value {short}Properties::*member = &{short}Properties::{prop['member']};",
                "};",
            ]
        out += [f"}} // namespace {space}", ""]
        names = ", ".join(f"{space}::{prop['name']}" for prop in properties)
        out += [f"using {short}PropertyList = std::tuple<{names}>;", ""]
        keys = [prop["json"] for prop in properties if prop["json"]]
        out += [
            f"inline constexpr std::array<std::string_view, {len(keys)}> k{short}JsonKeys{{",
            *[f"    {cpp_string(key)}," for key in keys],
            "};",
            "",
        ]
    out += ["} // namespace thintrim::dbus::schema", ""]
    return "\n".join(out)


def listing(interfaces):
    lines = []
    for interface, properties in interfaces:
        for prop in properties:
            lines.append(f"{short_name(interface)} {prop['name']} {prop['json'] or '-'}")
    return "\n".join(lines) + "\n"


def main():
    tree = ET.parse(sys.argv[1])
    interfaces = []
    for interface in tree.getroot().iter("interface"):
        properties = read_properties(interface)
        if properties:
            interfaces.append((interface.get("name"), properties))
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        out.write(header(interfaces))
    with open(sys.argv[3], "w", encoding="utf-8") as out:
        out.write(listing(interfaces))


if __name__ == "__main__":
    try:
        main()
    except SchemaError as error:
        sys.exit(f"{sys.argv[1]}: {error}")
