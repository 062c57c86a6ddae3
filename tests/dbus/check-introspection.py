#!/usr/bin/python3
"""Compares src/dbus/org.thintrim.ThinTrim1.xml, the API's source of truth,
with what a running thintrimd publishes, and checks that every interface,
method, argument, property and signal of the XML has its doc comment.

usage: check-introspection.py API.xml BUS-NAME PATH=INTERFACE...
Prints one line per difference; exits 1 if there is any."""
import subprocess
import sys
import xml.etree.ElementTree as ET

DOCUMENTED = ("interface", "method", "signal", "property", "arg")


def parse(text):
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    return ET.fromstring(text, parser=parser)


def undocumented(node, where=""):
    """Elements not directly preceded by a <!-- comment -->."""
    missing = []
    previous = None
    for child in node:
        if child.tag is ET.Comment:
            previous = child
            continue
        name = f"{where}/{child.tag}[{child.get('name', '')}]"
        if child.tag in DOCUMENTED and previous is None:
            missing.append(name)
        if child.tag != "annotation":
            previous = None
        missing += undocumented(child, name)
    return missing


def members(interface):
    """{(kind, name): description} with argument names, types, directions."""
    found = {}
    for child in interface:
        if child.tag is ET.Comment or child.tag == "annotation":
            continue
        if child.tag == "property":
            found[("property", child.get("name"))] = (child.get("type"), child.get("access"))
        else:
            args = tuple((a.get("name"), a.get("type"), a.get("direction", "in" if child.tag == "method" else "out"))
                         for a in child if a.tag == "arg")
            found[(child.tag, child.get("name"))] = args
    return found


def main():
    api = parse(open(sys.argv[1]).read())
    bus_name = sys.argv[2]
    problems = [f"no doc comment: {name}" for name in undocumented(api)]
    for spec in sys.argv[3:]:
        path, interface_name = spec.split("=")
        wanted = api.find(f"interface[@name='{interface_name}']")
        if wanted is None:
            problems.append(f"{interface_name}: not in the XML")
            continue
        live_xml = subprocess.run(["busctl", "introspect", "--xml-interface", bus_name, path],
                                  check=True, capture_output=True, text=True).stdout
        live = parse(live_xml).find(f"interface[@name='{interface_name}']")
        if live is None:
            problems.append(f"{path}: does not implement {interface_name}")
            continue
        expected, published = members(wanted), members(live)
        for key in sorted(expected.keys() | published.keys()):
            if key not in published:
                problems.append(f"{interface_name}: {key[0]} {key[1]} is in the XML but not published")
            elif key not in expected:
                problems.append(f"{interface_name}: {key[0]} {key[1]} is published but not in the XML")
            elif expected[key] != published[key]:
                problems.append(f"{interface_name}: {key[0]} {key[1]}: XML says {expected[key]}, "
                                f"published {published[key]}")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
