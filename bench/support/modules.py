#!/usr/bin/env python3
"""Which modules a running program's resident code belongs to: every 4 KiB page of its executable
mappings, present or not (/proc/PID/pagemap, root), attributed to the module whose functions fill
most of it (symbols from the unstripped build of the same link: Swift symbols by their mangled
module name, C and C++ libraries by their prefixes). Prints a Markdown table, largest resident first.

usage: modules.py PID RUNNING-PROGRAM UNSTRIPPED-PROGRAM [ROWS]
"""
import bisect
import collections
import os
import re
import struct
import subprocess
import sys


def module(symbol):
    swift = re.match(r"^\$s(\d+)([A-Za-z_]\w*)", symbol)
    if swift and int(swift.group(1)) > 0:
        return swift.group(2)[: int(swift.group(1))]
    if symbol.startswith("$s"):
        return "Swift standard library"  # $ss…, $sS…: the module `Swift` has a one-letter mangling
    if "BoringSSL" in symbol or symbol.startswith("_ZN4bssl"):
        return symbol.split("_")[0]
    if symbol.startswith("_ZN6icu") or re.search(r"_7\d$", symbol) or "icu" in symbol:
        return "ICU (C++)"
    if symbol.startswith("sqlite3"):
        return "SQLite (C)"
    if symbol.startswith(("swift_", "_swift", "_ZN5swift")):
        return "Swift runtime"
    if symbol.startswith(("dispatch_", "_dispatch")):
        return "libdispatch"
    if symbol.startswith(("CF", "__CF", "_CF")):
        return "CoreFoundation"
    return "other C/C++" if symbol.startswith("_Z") else "other C"


def main():
    pid, running, unstripped = int(sys.argv[1]), os.path.realpath(sys.argv[2]), sys.argv[3]
    rows = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    symbols = []
    nm = subprocess.run(["nm", "-S", "--defined-only", unstripped], capture_output=True, text=True).stdout
    for line in nm.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW":
            symbols.append((int(fields[0], 16), int(fields[1], 16), fields[3]))
    symbols.sort()
    starts = [s[0] for s in symbols]
    mappings, base = [], None
    for line in open(f"/proc/{pid}/maps"):
        fields = line.split()
        if len(fields) >= 6 and fields[5] == running:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if base is None and int(fields[2], 16) == 0:
                base = start
            if "x" in fields[1]:
                mappings.append((start, end))
    resident, total = collections.Counter(), collections.Counter()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for start, end in mappings:
            for page in range(start, end, 4096):
                pagemap.seek(page // 4096 * 8)
                present = struct.unpack("Q", pagemap.read(8))[0] >> 63
                low, high = page - base, page - base + 4096
                owners = collections.Counter()
                i = max(bisect.bisect_right(starts, low) - 1, 0)
                while i < len(symbols) and symbols[i][0] < high:
                    address, size, name = symbols[i]
                    overlap = min(high, address + size) - max(low, address)
                    if overlap > 0:
                        owners[module(name)] += overlap
                    i += 1
                if owners:
                    owner = owners.most_common(1)[0][0]
                    total[owner] += 1
                    resident[owner] += present
    print("\n| module (code pages) | code (MB) | resident (MB) |\n|---|---|---|")
    for name, pages in resident.most_common(rows):
        print(f"| {name} | {total[name] * 4 / 1024:.2f} | {pages * 4 / 1024:.2f} |")
    print(f"| all {len(total)} | {sum(total.values()) * 4 / 1024:.2f} | {sum(resident.values()) * 4 / 1024:.2f} |")


if __name__ == "__main__":
    main()
