#!/usr/bin/python3
"""The README's main job, scripts/demo.sh, as a newcomer meets it (issue 11):

1. with its default ports taken, it moves to free ones, says so, runs the agent and every command it
   shows, and on Ctrl-C (SIGINT) stops the agent, unmounts its tmpfs and keeps the agent's log;
   (twice in quick succession: the second must not cut the cleanup short);
2. when the agent cannot start (an address it cannot bind), it fails fast with the agent's log and
   its one-line error naming the address, exits non-zero and still leaves no mount behind.

Run as root from the repository: python3 Tests/Fixtures/system/test_demo.py
"""
import glob
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def demo_mounts():
    with open("/proc/mounts") as f:
        return [line.split()[1] for line in f if "/apt-layer-demo." in line.split()[1]]


def run_demo(env_extra, stop_when=None, timeout=400):
    env = dict(os.environ, **env_extra)
    proc = subprocess.Popen(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = []
    deadline = time.time() + timeout
    for line in proc.stdout:
        out.append(line)
        if stop_when and stop_when in line:
            # Ctrl-C twice in quick succession: the second must not cut the cleanup short.
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.2)
            os.killpg(proc.pid, signal.SIGINT)
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.stdout.close()
    return proc.wait(), "".join(out)


class DemoTests(unittest.TestCase):
    def setUp(self):
        self.assertEqual(demo_mounts(), [], "a demo tmpfs is mounted before the test")

    def test_taken_ports_move_and_ctrl_c_cleans_up(self):
        held = []
        for port in (7443, 9478):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                s.listen(1)
                held.append(s)
            except OSError:
                pass  # already taken by something else: the demo must move off it all the same
        try:
            code, out = run_demo({}, stop_when="The agent keeps running until you press Ctrl-C")
        finally:
            for s in held:
                s.close()
        self.assertIn("Port 7443 is taken; the API uses", out)
        self.assertIn("Port 9478 is taken; metrics use", out)
        port = re.search(r"the API uses (\d+)", out).group(1)
        self.assertIn(f"https://127.0.0.1:{port}/v1/status", out)
        self.assertIn("State: idle", out)  # the CLI's status through the agent's socket ran
        self.assertIn("Agent stopped; demo sysroot removed.", out)
        self.assertEqual(code, 0, out[-2000:])
        self.assertEqual(demo_mounts(), [], out[-2000:])
        kept = re.search(r"Agent log: (/var/tmp/apt-layer-demo/agent-\S+\.log)", out.splitlines()[-1])
        self.assertTrue(kept and os.path.getsize(kept.group(1)) > 0, out[-500:])
        self.assertEqual(glob.glob("/tmp/apt-layer-demo.*"), [])

    def test_agent_that_cannot_start_fails_fast_and_unmounts(self):
        started = time.time()
        code, out = run_demo({"APT_LAYER_DEMO_AGENT_ARGS": "--listen 192.0.2.1:7443"}, timeout=300)
        self.assertNotEqual(code, 0, out[-2000:])
        self.assertIn("error: apt-layerd did not start; its log:", out)
        self.assertRegex(out, r"cannot listen on 192\.0\.2\.1:7443 \(listen\): Cannot assign requested address")
        self.assertNotIn("The agent keeps running", out)
        self.assertEqual(demo_mounts(), [], out[-2000:])
        self.assertEqual(glob.glob("/tmp/apt-layer-demo.*"), [])
        self.assertLess(time.time() - started, 300)


if __name__ == "__main__":
    unittest.main(verbosity=2)
