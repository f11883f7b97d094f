#!/usr/bin/env python3
"""Starts a command with NOTIFY_SOCKET set and prints the milliseconds until it sends READY=1.

usage: ready.py PIDFILE -- COMMAND...   (the command keeps running; its pid goes to PIDFILE)
"""
import os, socket, subprocess, sys, tempfile, time

pidfile = sys.argv[1]
command = sys.argv[sys.argv.index("--") + 1:]
path = os.path.join(tempfile.mkdtemp(), "notify")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.settimeout(30)
env = dict(os.environ, NOTIFY_SOCKET=path)
start = time.monotonic()
proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(pidfile + ".log", "w"))
with open(pidfile, "w") as f:
    f.write(str(proc.pid))
while True:
    try:
        message = sock.recv(4096).decode()
    except TimeoutError:
        sys.stderr.write("no READY=1 within 30 s; the agent's log:\n" + open(pidfile + ".log").read())
        sys.exit(1)
    if "READY=1" in message.split("\n"):
        print(f"{(time.monotonic() - start) * 1000:.0f}")
        break
