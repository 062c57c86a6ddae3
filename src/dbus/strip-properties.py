#!/usr/bin/python3
"""Writes the API XML without its <property> elements.

usage: strip-properties.py IN.xml OUT.xml

The daemon's adaptors are generated from the result: its properties are
registered from one table in src/daemon/bus_objects.cpp (name, value and
PropertiesChanged in one place) instead of one generated getter each."""
import sys
import xml.etree.ElementTree as ET

tree = ET.parse(sys.argv[1])
for interface in tree.getroot().iter("interface"):
    for prop in interface.findall("property"):
        interface.remove(prop)
tree.write(sys.argv[2], encoding="unicode", xml_declaration=False)
