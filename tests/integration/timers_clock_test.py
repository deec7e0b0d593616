#!/usr/bin/env python3
"""Timers keep the cluster's time even on a node whose own clock is wrong.

Three agents: A (the lowest address, so the master clock), B, and C under libfaketime with its
system clock 5 s ahead. Raft entries are stamped, and timers fired, by the cluster clock (the
master's time as each node estimates it), so C neither fires early nor, when it leads, makes
the others fire late.

Asserts:
  * every node synchronises to A; C's offset to it is about -5 s;
  * 60 timers due 3 s after creation, created through all three nodes, are each received once,
    none before its due time by this test's (and A's) clock, none more than 2 s after it, and
    C fires some of them (else another round of 60, up to 3: under load C may be suspected for
    a moment and its timers sent by their backups);
  * the same after C is made the leader (the others are restarted until it is).
Skipped where libfaketime is not installed.
"""

import http.server
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SKEW_S = 5
DELAY_S = 3
TIMERS = 60
EARLY_TOLERANCE_S = 0.05  # the receiver's clock is read after the request arrives
LATE_BOUND_S = 2.0


class Receiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = {}  # timer id -> [(arrival s, firing node)]
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                now = time.time()
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.calls.setdefault(self.headers.get("Synod-Timer-Id"), []).append(
                        (now, self.headers.get("Synod-Node")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def received(self):
        with self.lock:
            return {k: list(v) for k, v in self.calls.items()}


def fire_round(agents, receiver, c, what):
    """60 timers, each received once and on time; returns how many C fired."""
    expected = {}  # timer id -> (earliest allowed, latest allowed) on this test's clock
    for i in range(TIMERS):
        agent = agents[i % len(agents)]
        before = time.time()
        r = h.http_request(agent.addr, agent.api_port, "POST", "/v1/timers",
                           json.dumps({"url": receiver.url, "delay": f"{DELAY_S}s"}), timeout=10)
        after = time.time()
        h.check(r.status == 200, f"{what}: POST /v1/timers on {agent.name}: {r}")
        expected[r.json()["id"]] = (before + DELAY_S - EARLY_TOLERANCE_S,
                                    after + DELAY_S + LATE_BOUND_S)
    h.wait_for(lambda: set(expected) <= set(receiver.received()), DELAY_S + 20, interval=0.1,
               what=f"{what}: {TIMERS} webhooks")
    time.sleep(0.5)  # a duplicate would come now
    calls = receiver.received()
    problems, by_node = [], {}
    for tid, (earliest, latest) in expected.items():
        arrivals = calls[tid]
        if len(arrivals) != 1:
            problems.append(f"{tid} received {len(arrivals)} times")
        at, node = arrivals[0]
        by_node[node] = by_node.get(node, 0) + 1
        if at < earliest:
            problems.append(f"{tid} fired by {node} {earliest + EARLY_TOLERANCE_S - at:.3f} s "
                            f"early")
        elif at > latest:
            problems.append(f"{tid} fired by {node} {at - latest + LATE_BOUND_S:.3f} s late")
    h.log(f"{what}: webhooks by node {by_node}")
    h.check(not problems, f"{what}: {len(problems)} problems: {problems[:8]}")
    return by_node.get(c.id, 0)


def fire_rounds(agents, receiver, c, what):
    # The skewed node must fire some: a loaded machine can leave it out of a round (suspected
    # for a moment, its timers are sent by their backups), so up to 3 rounds, each checked.
    for attempt in range(1, 4):
        h.wait_for(lambda: all(m.get("state") == "alive" for m in c.cluster().get("members", [])),
                   20, what="every member alive")
        if fire_round(agents, receiver, c, f"{what} (round {attempt})") > 0:
            return
    h.fail(f"{what}: the skewed node fired none in 3 rounds")


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(3)
    bport = h.free_udp_port()
    common = ["--bootstrap-expect", "3"]
    a = h.Agent(args.synod, "a", addrs[0], bport, extra_args=common)
    b = h.Agent(args.synod, "b", addrs[1], bport, extra_args=common)
    c = h.Agent(args.synod, "c", addrs[2], bport, extra_args=common,
                env=h.faked_clock_env(f"+{SKEW_S}"))
    agents = [a, b, c]
    for agent in agents:
        agent.start()
    for agent in agents:
        agent.wait_healthy()
        agent.id = agent.get("/v1/node")["id"]
    h.wait_for(lambda: h.converged(agents, members=3), 30, what="one cluster")

    def synced_to_a(agent):
        status = agent.get("/v1/clock")
        return status.get("synced") and (status.get("master") or {}).get("id") == a.id and status

    h.wait_for(lambda: all(synced_to_a(x) for x in agents), 30, what="every node follows A")
    offset = h.wait_for(lambda: synced_to_a(c), 5, what="C synchronised")["offset_ms"]
    h.check(abs(offset + SKEW_S * 1000) < 50, f"C's offset to A is {offset} ms")

    receiver = Receiver()
    fire_rounds(agents, receiver, c, "whoever leads")

    # Now with C leading: it stamps every entry (and so every due time).
    for _ in range(6):
        leader = (a.cluster().get("leader") or {}).get("id")
        if leader == c.id:
            break
        victim = next(x for x in agents if x.id == leader)
        victim.stop()
        victim.start()
        victim.wait_healthy()
        h.wait_for(lambda: h.converged(agents, members=3), 30, what="the cluster again")
    else:
        h.fail("C never became the leader")
    h.wait_for(lambda: all(synced_to_a(x) for x in agents), 30, what="every node follows A again")
    fire_rounds(agents, receiver, c, "C leading")


if __name__ == "__main__":
    h.run_main(main)
