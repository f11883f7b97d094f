#!/usr/bin/env python3
"""Holds COUNT TCP connections from SOURCE to 127.0.0.1:PORT for SECONDS, reopening each one the
server closes, sending nothing: a pre-authentication flood from one address (issue 26).
Usage: flood.py SOURCE PORT COUNT SECONDS"""
import resource, select, socket, sys, time
source, port, count, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 64)), hard))
poller, live = select.poll(), {}
def open_one():
    s = socket.socket()
    s.setblocking(False)
    s.bind((source, 0))
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    live[s.fileno()] = s
    poller.register(s.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
for _ in range(count):
    open_one()
end = time.time() + seconds
while time.time() < end:
    for fd, _ in poller.poll(50):
        s = live.pop(fd)
        poller.unregister(fd)
        s.close()
        open_one()
