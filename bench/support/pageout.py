#!/usr/bin/env python3
"""Asks the kernel to page out PID's mappings of FILE (process_madvise(2), MADV_PAGEOUT): what
stays or comes back afterwards is the working set the process really touches, not the pages
fault-around mapped next to them. bench/footprint.sh measures with it; the agent does not do this.

usage: pageout.py PID FILE
"""
import ctypes
import os
import sys

SYS_PIDFD_OPEN, SYS_PROCESS_MADVISE, MADV_PAGEOUT = 434, 440, 21


class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def main():
    pid, path = int(sys.argv[1]), os.path.realpath(sys.argv[2])
    libc = ctypes.CDLL(None, use_errno=True)
    ranges = []
    for line in open(f"/proc/{pid}/maps"):
        fields = line.split()
        if len(fields) >= 6 and fields[5] == path:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            ranges.append(IOVec(start, end - start))
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    vector = (IOVec * len(ranges))(*ranges)
    if pidfd < 0 or libc.syscall(SYS_PROCESS_MADVISE, pidfd, vector, len(ranges), MADV_PAGEOUT, 0) < 0:
        sys.exit(f"pageout.py: {os.strerror(ctypes.get_errno())}")


if __name__ == "__main__":
    main()
