#!/usr/bin/env python3
"""Synod interoperates with an independent SDSS peer (sdss_peer.py).

The whole test runs in a private network namespace: the script re-executes
itself under `unshare -rn` (exit 77 = skip if that is not allowed), brings lo
up and adds `default dev lo src 127.0.0.1`, so that 255.255.255.255 loops back
over lo and never reaches a real network.  Inside, twice (peer --encoding
double, then float):
  * a Synod agent bound to 127.0.0.2 with the default broadcast port 35498
    and --beacon-interval 1s;
  * sdss_peer.py broadcasting to 255.255.255.255:35498 every second.
Asserts, within 8 s:
  * Synod's /v1/neighbors lists the peer's uuid with a finite sdss_delay_ms
    (|delay| < 1 s for double; float32 of the epoch is only exact to 128 s,
    so only finiteness for float) and synod == false, no malformed beacons;
  * the peer's table lists Synod's 8-char short id (/v1/node short_id) with a
    delay (|delay| < 1 s: Synod sends a double);
  * (double round) after the peer stops, Synod drops it within 16 s
    (10 silent beacon intervals + probe) and neighbors_removed rises by one;
  * beacons from 10.99.0.1 (an extra address on the namespace's lo, outside
    the agent's 127.0.0.0/8) are counted in beacons_foreign_subnet and ignored.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402

BOUND_S = 8.0
REMOVAL_BOUND_S = 16.0   # 10 intervals of 1 s + 2 s probe timeout + margin
IN_NS_FLAG = "--inside-namespace"


def outer(args):
    unshare = shutil.which("unshare")
    ip = shutil.which("ip")
    if not unshare or not ip:
        h.skip("needs unshare(1) and ip(8)")
    probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        h.skip(f"unshare -rn not permitted: {probe.stderr.strip()}")
    cmd = [unshare, "-rn", sys.executable, os.path.abspath(__file__),
           "--synod", args.synod, IN_NS_FLAG]
    p = h.spawn(cmd)
    try:
        rc = p.wait(timeout=90)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
        h.fail("the namespaced test did not finish within 90 s")
    if rc == h.SKIP:
        sys.exit(h.SKIP)
    h.check(rc == 0, f"namespaced test failed (exit {rc})")


class PeerProc:
    """sdss_peer.py with its JSON stdout lines collected by a thread."""

    def __init__(self, encoding, tmp):
        self.err_path = os.path.join(tmp, f"peer-{encoding}.err")
        self._err = open(self.err_path, "wb")
        self.proc = h.spawn([sys.executable, os.path.join(HERE, "sdss_peer.py"),
                             "--encoding", encoding, "--run-for", "60"],
                            stdout=subprocess.PIPE, stderr=self._err)
        self.lines = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            with self.lock:
                self.lines.append(doc)
                del self.lines[:-200]           # bounded

    def last(self):
        with self.lock:
            return self.lines[-1] if self.lines else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        self.thread.join(timeout=2)
        self._err.close()

    def stderr_text(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""


def one_round(args, encoding):
    h.log(f"--- peer encoding {encoding} ---")
    tmp = h.make_tempdir()
    agent = h.Agent(args.synod, f"interop-{encoding}", "127.0.0.2", 35498,
                    beacon_interval="1s").start().wait_healthy()
    h.check(agent.node["broadcast"] == "127.255.255.255:35498",
            f"Synod broadcast {agent.node['broadcast']!r}")
    peer = PeerProc(encoding, tmp)
    t0 = time.monotonic()
    try:
        def started():
            if peer.proc.poll() is not None:
                h.abort(f"sdss_peer exited {peer.proc.returncode}: {peer.stderr_text()}")
            return peer.last()
        first = h.wait_for(started, 5.0, what="sdss_peer to start")
        peer_id = first["uuid"]
        h.check(len(peer_id) == 8, f"peer uuid {peer_id!r}")
        h.log(f"Synod {agent.short_id} on 127.0.0.2, peer {peer_id} tcp {first['tcp_port']}")

        def both_measured():
            if peer.proc.poll() is not None:
                h.abort(f"sdss_peer exited {peer.proc.returncode}: {peer.stderr_text()}")
            rows = {r["id"]: r for r in agent.neighbors()}
            mine = rows.get(peer_id)
            if not (mine and h.is_finite_number(mine.get("sdss_delay_ms"))):
                return False
            doc = peer.last()
            theirs = doc and doc["table"].get(agent.short_id)
            if not (theirs and h.is_finite_number(theirs.get("delay"))):
                return False
            return mine, theirs
        mine, theirs = h.wait_for(both_measured, BOUND_S, interval=0.2,
                                  what="Synod and the SDSS peer to measure each other")
        h.log(f"both measured after {time.monotonic() - t0:.2f} s: Synod sees {peer_id} "
              f"delay {mine['sdss_delay_ms']:.3f} ms; peer sees {agent.short_id} "
              f"delay {theirs['delay'] * 1000:.3f} ms")
        h.check(mine["synod"] is False, f"SDSS peer reported as a Synod node: {mine!r}")
        h.check(mine["ip"] == "127.0.0.1" and mine["tcp_port"] == first["tcp_port"],
                f"peer entry ip/port {mine['ip']}:{mine['tcp_port']}")
        if encoding == "double":
            h.check(abs(mine["sdss_delay_ms"]) < 1000.0, f"double delay {mine['sdss_delay_ms']} ms")
        h.check(abs(theirs["delay"]) < 1.0, f"peer's delay to Synod {theirs['delay']} s")
        h.check(theirs["count"] >= 1, f"peer's broadcast count {theirs['count']}")
        d = agent.discovery()
        h.check(d["beacons_malformed"] == 0, f"peer beacons counted malformed: {d}")
        h.check(d["probes_bad_payload"] == 0, f"peer timestamp refused as bad payload: {d}")
        if encoding == "double":
            # The peer goes away: Synod drops it once 10 beacon intervals of
            # silence make a refresh due and the probe is refused.
            removed_before = d["neighbors_removed"]
            peer.stop()
            t_stop = time.monotonic()

            def dropped():
                ids = {r["id"] for r in agent.neighbors()}
                return peer_id not in ids
            h.wait_for(dropped, REMOVAL_BOUND_S, interval=0.2,
                       what=f"Synod to drop the stopped peer {peer_id}")
            h.log(f"Synod dropped {peer_id} {time.monotonic() - t_stop:.1f} s after it stopped")
            h.check(agent.discovery()["neighbors_removed"] == removed_before + 1,
                    "neighbors_removed did not rise by one")
    except h.TestFailure:
        print(peer.stderr_text())
        raise
    finally:
        peer.stop()
    agent.proc.send_signal(signal.SIGTERM)
    rc = agent.proc.wait(timeout=3)
    h.check(rc == 0, f"agent exited {rc} after SIGTERM")


def inner(args):
    for cmd in (["ip", "link", "set", "lo", "up"],
                ["ip", "route", "add", "default", "dev", "lo", "src", "127.0.0.1"]):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            h.skip(f"{' '.join(cmd)} failed in the namespace: {p.stderr.strip()}")
    # Paranoia: only ever broadcast to 255.255.255.255 in a namespace whose
    # sole interface is lo.
    names = [name for _idx, name in socket.if_nameindex()]
    if names != ["lo"]:
        h.fail(f"namespace has interfaces {names}, refusing to broadcast")
    for encoding in ("double", "float"):
        one_round(args, encoding)
    foreign_subnet(args)


def foreign_subnet(args):
    """Beacons from outside the agent's subnet (10.99.0.1, an extra address on
    this namespace's lo) are counted as foreign and never become neighbours."""
    h.log("--- beacons from a foreign subnet ---")
    p = subprocess.run(["ip", "addr", "add", "10.99.0.1/24", "dev", "lo"],
                       capture_output=True, text=True, timeout=10)
    h.check(p.returncode == 0, f"ip addr add failed: {p.stderr}")
    agent = h.Agent(args.synod, "foreign", "127.0.0.2", 35498,
                    beacon_interval="1s").start().wait_healthy()
    before = agent.discovery()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind(("10.99.0.1", 0))
    try:
        for dst in ("255.255.255.255", "127.255.255.255", "10.99.0.255"):
            s.sendto(b"f0reign1 ON 1234", (dst, 35498))
    finally:
        s.close()

    def counted():
        d = agent.discovery()
        return d if d["beacons_foreign_subnet"] - before["beacons_foreign_subnet"] >= 3 else False
    d = h.wait_for(counted, 3.0, what="beacons_foreign_subnet += 3")
    h.check(d["beacons_accepted"] == before["beacons_accepted"] and d["probes_started"] == 0,
            f"foreign beacons were used: {before} -> {d}")
    h.check(all(r["id"] != "f0reign1" for r in agent.neighbors()), "foreign beacon became a neighbour")
    h.log(f"ok  beacons_foreign_subnet {before['beacons_foreign_subnet']} -> "
          f"{d['beacons_foreign_subnet']}")
    agent.proc.send_signal(signal.SIGTERM)
    h.check(agent.proc.wait(timeout=3) == 0, "agent did not exit 0")


def main():
    args = h.parse_args(__doc__, extra=lambda p: p.add_argument(
        IN_NS_FLAG, dest="inside", action="store_true", help="internal: already in the namespace"))
    if args.inside:
        inner(args)
    else:
        outer(args)


if __name__ == "__main__":
    h.run_main(main)
