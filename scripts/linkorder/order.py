#!/usr/bin/env python3
"""Turns touch.c's records of executed code pages (one file per process, each with its own load
address) into an lld symbol ordering file: every function of the unstripped build that overlaps a
page any of them touched, in address order. Link with
`-Xlinker --symbol-ordering-file=FILE -Xlinker --no-warn-symbol-ordering`; it moves functions only
when they were compiled into sections of their own (`-function-sections`).

usage: order.py UNSTRIPPED-PROGRAM OUTPUT TOUCHED-FILE...
"""
import bisect
import subprocess
import sys


def main():
    program, output, *touched = sys.argv[1:]
    offsets = set()
    for path in touched:
        lines = open(path).read().split()
        if len(lines) < 2:
            continue
        base = int(lines[1], 16)  # "base HEX", then one page per line
        offsets.update(int(x, 16) - base for x in lines[2:])
    pages = sorted(offsets)
    symbols = []
    for line in subprocess.run(["nm", "-S", "--defined-only", program], capture_output=True, text=True).stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW":
            symbols.append((int(fields[0], 16), int(fields[1], 16), fields[3]))
    symbols.sort()
    starts = [s[0] for s in symbols]
    ordered, seen = [], set()
    for page in pages:
        low, high = page, page + 4096
        i = max(bisect.bisect_right(starts, low) - 1, 0)
        while i < len(symbols) and symbols[i][0] < high:
            address, size, name = symbols[i]
            if address + size > low and name not in seen:
                seen.add(name)
                ordered.append(name)
            i += 1
    with open(output, "w") as f:
        f.write("\n".join(ordered) + "\n")
    print(f"{len(pages)} pages, {len(ordered)} symbols")


if __name__ == "__main__":
    main()
