#!/usr/bin/python3
"""Runs an apt-layer command and times its phases from its own progress lines on stderr (each phase
prints "Name..." when it begins; "  [i/n] ..." lines belong to the phase before them). Prints one
JSON object: {"phases": [[name, seconds], ...], "total": seconds}, the last phase ending when the
process exits. Used by bench/layering.sh for its per-phase table.
  phases.py COMMAND [ARGS...]"""
import json
import re
import subprocess
import sys
import time

start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
phases = []  # [name, began]
for line in proc.stderr:
    line = line.rstrip("\n")
    if line.endswith("...") and not line.startswith(" "):
        # "Checking out base 1a2b3c..." and "Deploying 1a2b3c..." name a commit: keep the verb.
        name = re.sub(r" [0-9a-f]{12}\.\.\.$", "", line).removesuffix("...")
        name = re.sub(r"\d+s ago", "N s ago", name)
        phases.append([name, time.perf_counter()])
code = proc.wait()
end = time.perf_counter()
if code != 0:
    sys.exit(f"error: {' '.join(sys.argv[1:])} exited {code}")
out = []
for i, (name, began) in enumerate(phases):
    until = phases[i + 1][1] if i + 1 < len(phases) else end
    out.append([name, round(until - began, 4)])
before = phases[0][1] - start if phases else end - start
print(json.dumps({"phases": [["process start and planning", round(before, 4)]] + out, "total": round(end - start, 4)}))
