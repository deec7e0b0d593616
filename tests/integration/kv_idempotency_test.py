#!/usr/bin/env python3
"""Writes with an Idempotency-Key are applied once, whoever retries them and
whatever leader changes happen in between; the key/value API says what is
wrong with bad requests.

On a 3-node cluster (--bootstrap-expect 3):
  * API: a PUT with an Idempotency-Key answers 200 with the commit index and
    echoes the key; the same PUT again answers the same index (the retry was
    not applied again), a new key gets a later index; a PUT without a key
    gets a generated one in the Idempotency-Key response header. A key over
    128 bytes is 400 (code "invalid"), a value over 512 KiB 413, an empty
    batch or a non-object body 400; a DELETE of a missing key 404
    (code "not found"). POST /v1/kv {"entries": {...}} with 500 keys answers
    written 500, and every key reads back on every node.
  * Across leader crashes: a client writes W keys, each with its own
    Idempotency-Key, through any node it believes up, and retries each write
    (same key, any node) until it gets 200, while the leader is SIGKILLed
    and restarted three times. Every 200 answer for one key names the same
    commit index (one application), including a deliberate second send of
    every 5th key after its first 200. Afterwards every key has its value on
    every node.
"""

import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N = 3
FORM_BOUND_S = 20.0
WRITES = 300
WRITE_BOUND_S = 90.0        # the whole writer loop
PER_WRITE_BOUND_S = 30.0    # retrying one write
KILLS = 3
NEW_LEADER_BOUND_S = 10.0


def put(agent, key, value, idem=None, timeout=8.0):
    headers = {"Idempotency-Key": idem} if idem is not None else {}
    return h.http_request(agent.addr, agent.api_port, "PUT", "/v1/kv/" + key,
                          body=value.encode(), headers=headers, timeout=timeout)


def wait_applied(agents, index, what):
    """Reads are served by each node's own replica: wait until each applied `index`."""
    h.wait_for(lambda: all(a.cluster()["applied_index"] >= index for a in agents), 10.0,
               what=f"every node to apply index {index} ({what})")


def api_checks(agents):
    a, b = agents[0], agents[1]
    r1 = put(a, "idem", "v", idem="key-1")
    h.check(r1.status == 200, f"first PUT: {r1}")
    h.check(r1.headers.get("idempotency-key") == "key-1", f"echoed key: {r1.headers}")
    r2 = put(b, "idem", "v", idem="key-1")
    h.check(r2.status == 200 and r2.json()["index"] == r1.json()["index"],
            f"the same key through another node must answer the first index: {r1} then {r2}")
    r3 = put(a, "idem", "v", idem="key-2")
    h.check(r3.status == 200 and r3.json()["index"] > r1.json()["index"],
            f"a new key is a new write: {r3} after {r1}")
    r4 = put(a, "plain", "v")
    h.check(r4.status == 200 and r4.headers.get("idempotency-key"),
            f"a write without a key gets a generated one: {r4} {r4.headers}")

    bad = put(a, "k", "v", idem="x" * 129)
    h.check(bad.status == 400 and bad.json().get("code") == "invalid", f"long key: {bad}")
    big = put(a, "big", "x" * (512 * 1024 + 1), timeout=10.0)
    h.check(big.status == 413, f"value over 512 KiB: {big}")
    missing = h.http_request(a.addr, a.api_port, "DELETE", "/v1/kv/never-written", timeout=8.0)
    h.check(missing.status == 404 and missing.json().get("code") == "not found",
            f"DELETE of a missing key: {missing}")
    for body in (b"[]", b"{\"entries\": {}}", b"not json", b"{\"entries\": {\"k\": 5}}"):
        r = h.http_request(a.addr, a.api_port, "POST", "/v1/kv", body=body, timeout=8.0)
        h.check(r.status == 400 and r.json().get("error"), f"batch body {body!r}: {r}")

    entries = {f"batch-{i}": f"value-{i}" for i in range(500)}
    r = h.http_request(b.addr, b.api_port, "POST", "/v1/kv",
                       body=json.dumps({"entries": entries}).encode(), timeout=15.0)
    h.check(r.status == 200 and r.json().get("written") == 500, f"batch of 500: {r}")
    wait_applied(agents, r.json()["index"], "the batch")
    h.verify_kv(agents, entries, "after the batch")
    h.log("API: idempotent PUTs, generated ids, bad requests and a 500-key batch as expected")


class Writer(threading.Thread):
    def __init__(self, agents):
        super().__init__(daemon=True)
        self.agents = agents
        self.up = {a.name for a in agents}
        self.lock = threading.Lock()
        self.answers = {}       # key -> [index of every 200]
        self.retries = 0
        self.bad = []
        self.done = 0
        self.crash = None

    def set_up(self, name, up):
        with self.lock:
            (self.up.add if up else self.up.discard)(name)

    def pick(self):
        with self.lock:
            names = sorted(self.up)
        if not names:
            return None
        name = random.choice(names)
        return next(a for a in self.agents if a.name == name)

    def send_until_ok(self, key, value, idem, deadline):
        while time.monotonic() < deadline:
            agent = self.pick()
            if agent is None:
                time.sleep(0.05)
                continue
            try:
                r = put(agent, key, value, idem=idem)
            except Exception:  # the node was killed under us
                self.retries += 1
                time.sleep(0.05)
                continue
            if r.status == 200:
                self.answers.setdefault(key, []).append(r.json()["index"])
                return True
            if r.status != 503:
                self.bad.append((key, agent.name, r.status, r.body[:200]))
                return False
            self.retries += 1
            time.sleep(0.05)
        self.bad.append((key, "gave up", PER_WRITE_BOUND_S))
        return False

    def run(self):
        try:
            end = time.monotonic() + WRITE_BOUND_S
            for i in range(WRITES):
                if time.monotonic() > end:
                    break
                key, idem = f"w{i}", f"write-{i}"
                deadline = min(end, time.monotonic() + PER_WRITE_BOUND_S)
                if not self.send_until_ok(key, str(i), idem, deadline):
                    continue
                if i % 5 == 0:  # a client that did not see the answer sends again
                    self.send_until_ok(key, str(i), idem, deadline)
                self.done = i + 1
                time.sleep(0.02)
        except BaseException as e:
            self.crash = e


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(N)
    bport = h.free_udp_port()
    h.log(f"addresses {addrs}, broadcast port {bport}")
    agents = h.start_cluster_agents(args.synod, addrs, bport, ["--bootstrap-expect", str(N)])
    h.wait_converged(agents, FORM_BOUND_S, members=N, voters=N)
    api_checks(agents)

    writer = Writer(agents)
    writer.start()
    for kill in range(KILLS):
        h.wait_for(lambda: writer.done >= (kill + 1) * WRITES // (KILLS + 2) or
                   not writer.is_alive(), 60.0, what="writes before the next kill")
        leader = h.leader_of(agents)
        h.check(leader is not None, "no agreed leader")
        writer.set_up(leader.name, False)
        leader.kill()
        h.log(f"kill {kill + 1}: killed leader {leader.name} after {writer.done} writes")
        rest = [a for a in agents if a is not leader]
        h.wait_converged(rest, NEW_LEADER_BOUND_S, what="a new leader among the survivors")
        leader.start()
        leader.wait_healthy()
        h.wait_converged(agents, FORM_BOUND_S, members=N, voters=N, what="the cluster whole again")
        writer.set_up(leader.name, True)
    writer.join(timeout=WRITE_BOUND_S + 10)
    h.check(writer.crash is None, f"writer crashed: {writer.crash!r}")
    h.check(not writer.is_alive(), "the writer did not finish in time")
    h.check(not writer.bad, f"writes that failed: {writer.bad[:5]}")
    h.check(writer.done == WRITES, f"only {writer.done} of {WRITES} writes done")
    twice = {k: v for k, v in writer.answers.items() if len(set(v)) != 1}
    h.check(not twice, f"keys answered with different indexes (applied twice): "
                       f"{list(twice.items())[:5]}")
    resent = sum(1 for v in writer.answers.values() if len(v) > 1)
    h.log(f"{WRITES} writes, {writer.retries} retries after errors, {resent} sent again after "
          f"a 200: each key answered with one index")
    wait_applied(agents, max(max(v) for v in writer.answers.values()), "the writes")
    h.verify_kv(agents, {f"w{i}": str(i) for i in range(WRITES)}, "after the leader kills")
    h.log("every key on every node")


if __name__ == "__main__":
    h.run_main(main)
