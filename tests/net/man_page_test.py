#!/usr/bin/env python3
"""lockmesh(1), as generated at build time: it has a section for every subcommand the binary
lists (recursively), every long flag of every subcommand's --help appears in its section,
and groff renders it without a warning.

Usage: man_page_test.py LOCKMESH_BINARY MAN_PAGE
"""
import re
import shutil
import subprocess
import sys


def help_text(binary, words):
    return subprocess.run([binary] + words + ["--help"], capture_output=True, text=True,
                          timeout=60, check=True).stdout


def subcommands(text):
    m = re.search(r"^Subcommands:\n((?:  \S.*\n)+)", text, re.M)
    return [l.split()[0] for l in m.group(1).splitlines()] if m else []


def main():
    binary, page = sys.argv[1:3]
    roff = open(page).read()
    # Sections by heading; the text as man shows it (roff escapes undone).
    sections = {}
    for m in re.finditer(r'^\.SH "?([^"\n]+)"?\n(.*?)(?=^\.SH |\Z)', roff, re.M | re.S):
        sections[m.group(1)] = m.group(2).replace("\\-", "-").replace("\\e", "\\")
    failures = []
    pending = [[s] for s in subcommands(help_text(binary, []))]
    checked = 0
    while pending:
        words = pending.pop(0)
        text = help_text(binary, words)
        pending += [words + [s] for s in subcommands(text)]
        heading = "LOCKMESH " + " ".join(words).upper()
        body = sections.get(heading)
        if body is None:
            failures.append("no section " + heading)
            continue
        for flag in sorted(set(re.findall(r"^\s+(?:-\w,)?(--[\w-]+)", text, re.M))):
            checked += 1
            if flag not in body:
                failures.append("%s: %s missing" % (heading, flag))
    if "FLOM FRONT END" not in sections:
        failures.append("no section FLOM FRONT END")
    if shutil.which("groff"):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True,
                           text=True)
        if r.returncode != 0 or r.stderr.strip():
            failures.append("groff: " + r.stderr.strip())
    else:
        print("groff not installed: rendering not checked (install groff-base)")
    print("%d sections, %d flags checked" % (len(sections), checked))
    for f in failures:
        print("FAIL: " + f)
    sys.exit(1 if failures or checked < 50 else 0)


if __name__ == "__main__":
    main()
