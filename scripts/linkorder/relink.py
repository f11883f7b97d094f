#!/usr/bin/env python3
"""Links a product of a SwiftPM build again with other linker flags, from the link command the
build itself recorded (BUILD.yaml, e.g. .build/static/release.yaml): bench/footprint.sh's levers.

usage: relink.py BUILD.yaml PRODUCT OUTPUT [--toolchain-defaults] [SWIFTC-ARGS...]
  --toolchain-defaults  drop Package.swift's shippedLinkerSettings first (gold, -export-dynamic)
"""
import json
import re
import subprocess
import sys

SHIPPED = [["-use-ld=lld"], ["-Xlinker", "--no-export-dynamic"], ["-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"]]


def link_args(yaml_path, product):
    lines = open(yaml_path).read().split("\n")
    pattern = re.compile(r'^  "C\.' + re.escape(product) + r'-[a-z0-9_]+-unknown-linux-gnu-\w+\.exe":$')
    key = next(l for l in lines if pattern.match(l))
    i = lines.index(key)
    while not lines[i].strip().startswith("args:"):
        i += 1
    return json.loads(lines[i].strip()[len("args:"):])


def without(args, sequence):
    out, i = [], 0
    while i < len(args):
        if args[i:i + len(sequence)] == sequence:
            i += len(sequence)
        else:
            out.append(args[i])
            i += 1
    return out


def main():
    yaml_path, product, output, *extra = sys.argv[1:]
    args = [a for a in link_args(yaml_path, product) if a != "-v"]
    if extra and extra[0] == "--toolchain-defaults":
        extra = extra[1:]
        for sequence in SHIPPED:
            args = without(args, sequence)
    args[args.index("-o") + 1] = output
    result = subprocess.run(args + extra, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-4000:])
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
