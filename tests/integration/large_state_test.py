#!/usr/bin/env python3
"""A large replicated state (--entries keys; 1,000,000 by hand, fewer in CI)
is snapshotted in the background and caught up by every kind of node.

On 3 voters started with --standbys 0 (so every further node is a spare) and
--snapshot-threshold 64 (entries, each of up to 1024 writes: snapshots of the
whole state keep happening):
  * the keys are loaded with POST /v1/kv batches; every node reports them
    all (synod_kv_keys) and has taken snapshots (synod_snapshots_total);
  * a follower SIGKILLed while more keys are written, then restarted on its
    data dir, applies up to the leader's commit index;
  * a fourth node joins as a spare: it is further behind than the leader
    keeps entries, so it fetches the whole state in chunks; then it is
    SIGKILLed and restarted, and fetches it again;
  * afterwards every node holds the same number of keys, and a sample of
    keys (a few hundred, spread over the whole load) reads back with the same
    value on every node.
Time bounds are generous: they catch a node that never catches up, not a
slow one (the benchmark bench/state_bench.py measures).
"""

import json
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N = 3
FORM_BOUND_S = 20.0
BATCH = 5000
CATCH_UP_BOUND_S = 120.0
SAMPLE = 300
EXTRA_ARGS = ["--standbys", "0", "--snapshot-threshold", "64"]


def key(i):
    return f"timer-{i:09d}"


def value(i):
    return f"due={1700000000 + i};url=http://127.0.0.1:9/hook/{i};state=waiting;attempt=0"


def load(agent, start, count, what):
    t0 = time.monotonic()
    for first in range(start, start + count, BATCH):
        entries = {key(i): value(i) for i in range(first, min(first + BATCH, start + count))}
        body = json.dumps({"entries": entries}).encode()
        for attempt in range(20):
            r = h.http_request(agent.addr, agent.api_port, "POST", "/v1/kv", body=body,
                               timeout=60.0)
            if r.status == 200:
                break
            h.check(r.status == 503, f"batch at {first}: {r}")
            time.sleep(0.2)
        else:
            h.fail(f"batch at {first} not committed after 20 tries: {r}")
    took = time.monotonic() - t0
    h.log(f"{what}: {count} keys in {took:.1f} s ({count / max(took, 1e-9):.0f} keys/s)")


def metric(agent, name):
    r = h.http_get(agent.addr, agent.api_port, "/metrics", timeout=5.0)
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", r.body.decode(), re.M)
    return float(m.group(1)) if m else None


def wait_keys(agents, total, what):
    t0 = time.monotonic()
    h.wait_for(lambda: all(a.alive() and metric(a, "synod_kv_keys") == total for a in agents),
               CATCH_UP_BOUND_S, interval=0.2, what=f"{what}: every node to hold {total} keys")
    return time.monotonic() - t0


def main():
    args = h.parse_args(__doc__, extra=lambda p: p.add_argument(
        "--entries", type=int, default=200_000, help="keys to load (1,000,000 by hand)"))
    total = args.entries
    addrs = h.pick_addresses(N + 1)
    bport = h.free_udp_port()
    h.log(f"addresses {addrs}, broadcast port {bport}, {total} keys")
    agents = h.start_cluster_agents(args.synod, addrs[:N], bport,
                                    ["--bootstrap-expect", str(N), *EXTRA_ARGS])
    h.wait_converged(agents, FORM_BOUND_S, members=N, voters=N)
    leader = h.leader_of(agents)
    load(leader, 0, total, "load")
    wait_keys(agents, total, "after the load")
    snapshots = {a.name: metric(a, "synod_snapshots_total") for a in agents}
    h.check(all(v and v >= 1 for v in snapshots.values()), f"snapshots taken: {snapshots}")
    h.log(f"every node holds {total} keys; snapshots taken: {snapshots}")

    # A follower misses writes while it is down.
    follower = next(a for a in agents if a is not leader)
    follower.kill()
    missed = max(1000, total // 20)
    load(leader, total, missed, f"while {follower.name} is down")
    total += missed
    t0 = time.monotonic()
    follower.start()
    follower.wait_healthy()
    took = wait_keys(agents, total, f"{follower.name} restarted")
    h.log(f"{follower.name} restarted and caught up in {time.monotonic() - t0:.1f} s "
          f"(keys complete {took:.1f} s after it answered)")

    # A spare joins, far behind: it fetches the state in chunks.
    spare = h.Agent(args.synod, "n4", addrs[N], bport, extra_args=tuple(EXTRA_ARGS)).start()
    spare.wait_healthy()
    t0 = time.monotonic()
    everyone = agents + [spare]
    h.wait_converged(everyone, CATCH_UP_BOUND_S, members=N + 1, voters=N,
                     what="the fourth node a member")
    wait_keys(everyone, total, "a spare joined")
    h.log(f"spare {spare.name} joined and holds every key after {time.monotonic() - t0:.1f} s")
    view = spare.cluster()
    h.check(view.get("spares") == 1, f"the fourth node should be a spare: {h.summarize_view(view)}")

    spare.kill()
    t0 = time.monotonic()
    spare.start()
    spare.wait_healthy()
    wait_keys(everyone, total, "the spare restarted")
    h.log(f"spare restarted and holds every key after {time.monotonic() - t0:.1f} s")

    picks = sorted(random.sample(range(total), min(SAMPLE, total)))
    h.verify_kv(everyone, {key(i): value(i) for i in picks}, "sampled keys")
    h.log(f"{len(picks)} sampled keys identical on all {len(everyone)} nodes")


if __name__ == "__main__":
    h.run_main(main)
