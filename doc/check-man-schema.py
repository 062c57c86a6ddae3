#!/usr/bin/python3
"""The man pages name what the bus API's schema has.

usage: check-man-schema.py SCHEMA.txt DOC-DIR

SCHEMA.txt is the listing src/dbus/gen-schema.py writes from the API XML
("INTERFACE PROPERTY JSON-KEY" per line). Checks that
  - thintrimd(8) names every property of both interfaces (*Name*);
  - thintrim(1)'s paragraph on `list --json` names every Filesystem JSON key;
  - thintrim(1)'s paragraph on `status --json` names exactly the Manager JSON
    keys, plus source and filesystems.
Prints one line per omission; exits 1 if there is any."""
import re
import sys


def bold_words(text):
    return set(re.findall(r"\*([A-Za-z_][A-Za-z0-9_]*)\*", text))


def paragraph(text, start, end, page):
    begin = text.find(start)
    if begin < 0:
        raise SystemExit(f"{page}: no paragraph starting with \"{start}\"")
    finish = text.find(end, begin)
    if finish < 0:
        raise SystemExit(f"{page}: the paragraph \"{start}\" has no \"{end}\" after it")
    return text[begin:finish]


def main():
    schema = [line.split() for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
    docs = sys.argv[2]
    daemon_page = open(f"{docs}/thintrimd.8.scd", encoding="utf-8").read()
    cli_page = open(f"{docs}/thintrim.1.scd", encoding="utf-8").read()
    problems = []

    named = bold_words(daemon_page)
    for interface, name, _ in schema:
        if name not in named:
            problems.append(f"thintrimd.8.scd does not name the {interface} property {name}")

    list_keys = bold_words(paragraph(cli_page, "each filesystem has the same keys",
                                     "A value that reading", "thintrim.1.scd"))
    for interface, name, key in schema:
        if interface == "Filesystem" and key != "-" and key not in list_keys:
            problems.append(f"thintrim.1.scd: list --json does not list {key} ({name})")

    status_keys = bold_words(paragraph(cli_page, "prints the daemon's state with the keys",
                                       "*list* [", "thintrim.1.scd"))
    status_keys -= {"source", "daemon", "filesystems", "list", "json", "thintrimd"}
    wanted = {key for interface, _, key in schema if interface == "Manager" and key != "-"}
    for key in sorted(wanted - status_keys):
        problems.append(f"thintrim.1.scd: status --json does not list {key}")
    for key in sorted(status_keys - wanted):
        problems.append(f"thintrim.1.scd: status --json lists {key}, which is no Manager property")

    for problem in problems:
        print(problem)
    print(f"{len(schema)} properties checked against the man pages")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
