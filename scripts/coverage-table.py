#!/usr/bin/env python3
"""coverage-table.py: prints gcovr's JSON summary (--json-summary) as one
table, a row per file with its line and branch coverage side by side, then
the total; files under the line goal (90 %) are marked with '<'.

usage: coverage-table.py SUMMARY.json"""
import json
import sys

GOAL = 90.0


def pct(covered, total):
    return 100.0 * covered / total if total else 100.0


def row(name, f):
    lp = pct(f["line_covered"], f["line_total"])
    bp = pct(f["branch_covered"], f["branch_total"])
    return (f"{name:<36} {f['line_covered']:>6}/{f['line_total']:<6} {lp:6.1f}%"
            f"   {f['branch_covered']:>6}/{f['branch_total']:<6} {bp:6.1f}%"
            f"{'  <' if lp < GOAL else ''}")


def main():
    with open(sys.argv[1]) as fh:
        s = json.load(fh)
    print(f"{'file':<36} {'lines':>13} {'':>7}   {'branches':>13} {'':>7}")
    for f in sorted(s["files"], key=lambda f: f["filename"]):
        print(row(f["filename"], f))
    print(row("TOTAL", s))


if __name__ == "__main__":
    main()
