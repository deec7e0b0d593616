#!/usr/bin/env python3
"""Acknowledged writes survive leader crashes, restarts and a full-cluster crash;
quorum loss is reported, not hung.

A writer thread PUTs k0, k1, ... (value = the decimal index) one after the
other against a random node believed up, recording each 200 with its returned
Raft index. Meanwhile, three times: kill -9 the current leader, wait for the
two survivors to agree on a new leader, restart the killed node on the same
data dir, wait for the three to agree again.

Asserts:
  * a new leader (one of the survivors) within 10 s of each kill, and the
    three agree again within 15 s of each restart (the restarted node keeps
    its id);
  * PUT answers are only 200 or 503 (with a JSON error), and every 200 names
    the key and a positive index; the indices strictly increase in the order
    the writes were acknowledged (each write was acknowledged before the next
    one was sent);
  * at least MIN_ACKED writes were acknowledged, some in every phase (before
    the first kill, between each kill and restart, after each restart);
  * once writing stops, all nodes reach the same applied_index, at least the
    highest acknowledged index, within 10 s, and every acknowledged key has
    its value on every node (GET on each node's local replica);
  * after kill -9 of all three and a restart on the same data dirs: a leader
    within 15 s, every node applies at least the highest acknowledged index,
    and every acknowledged key is still on every node; a new write succeeds;
  * quorum loss, twice: kill -9 of the leader and a follower, then (after
    the surviving follower exits 0 on SIGTERM within 5 s with no "handle
    still open" line in its log, and all three are restarted, agree on a
    leader and take a write again) kill -9 of the two followers. Each time a
    PUT on the survivor (a follower, then the leader) returns 503 with a JSON
    error within 8 s, and its /v1/cluster then says quorum false and does not
    name itself leader (within 3 s).
"""

import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N = 3
CYCLES = 3
NEW_LEADER_BOUND_S = 10.0
REJOIN_BOUND_S = 15.0
CATCH_UP_BOUND_S = 10.0
FULL_RESTART_BOUND_S = 15.0
QUORUM_LOSS_PUT_BOUND_S = 8.0
WRITE_GAP_S = 0.01          # pacing, so the key count stays checkable
STEADY_WRITES_S = 1.0       # writing time before each kill and after each restart
MIN_ACKED = 100
MAX_WRITES = 20000          # hard bound on the writer loop
WRITER_BOUND_S = 50.0


class Writer(threading.Thread):
    def __init__(self, agents):
        super().__init__(daemon=True)
        self.agents = agents
        self.up = {a.name for a in agents}
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.acks = []        # (i, key, index, time, agent name, phase)
        self.unacked = []     # (i, key, why)
        self.bad = []         # unexpected answers
        self.phase = "start"
        self.next_i = 0
        self.crash = None

    def set_up(self, name, up):
        with self.lock:
            (self.up.add if up else self.up.discard)(name)

    def acked_in(self, phase):
        with self.lock:
            return sum(1 for a in self.acks if a[5] == phase)

    def run(self):
        try:
            self.write_loop()
        except BaseException as e:  # reported by the main thread
            self.crash = e
            raise

    def write_loop(self):
        deadline = time.monotonic() + WRITER_BOUND_S
        while not self.stop_flag.is_set() and self.next_i < MAX_WRITES \
                and time.monotonic() < deadline:
            i = self.next_i
            self.next_i += 1
            key = f"k{i}"
            with self.lock:
                names = sorted(self.up)
                phase = self.phase
            if not names:
                time.sleep(0.05)
                continue
            pick = random.choice(names)
            agent = next(a for a in self.agents if a.name == pick)
            try:
                r = agent.kv_put(key, str(i), timeout=8.0)
            except Exception as e:  # connection refused/reset: the node was killed
                self.unacked.append((i, key, f"{agent.name}: {type(e).__name__}: {e}"))
                time.sleep(0.05)
                continue
            if r.status == 200:
                try:
                    doc = r.json()
                except ValueError:
                    doc = None
                if not (isinstance(doc, dict) and doc.get("key") == key
                        and isinstance(doc.get("index"), int) and doc["index"] > 0):
                    self.bad.append((i, key, agent.name, r.status, r.body[:200]))
                else:
                    with self.lock:
                        self.acks.append((i, key, doc["index"], time.monotonic(),
                                          agent.name, phase))
            elif r.status == 503:
                try:
                    err = r.json().get("error")
                except (ValueError, AttributeError):
                    err = None
                if not (isinstance(err, str) and err):
                    self.bad.append((i, key, agent.name, r.status, r.body[:200]))
                self.unacked.append((i, key, f"{agent.name}: 503 {err}"))
            else:
                self.bad.append((i, key, agent.name, r.status, r.body[:200]))
            time.sleep(WRITE_GAP_S)


def set_phase(writer, phase):
    with writer.lock:
        writer.phase = phase


def wait_phase_acks(writer, phase, count, timeout):
    def cond():
        if writer.crash is not None:
            h.abort(f"writer thread crashed: {writer.crash!r}")
        return writer.acked_in(phase) >= count
    h.wait_for(cond, timeout,
               what=f"{count} acknowledged writes in phase {phase!r}")


def expected_from(acks):
    return {key: str(i) for (i, key, _idx, _t, _n, _p) in acks}


def wait_applied_equal(agents, at_least, timeout, label):
    last = {}

    def cond():
        for a in agents:
            last[a.name] = a.cluster()["applied_index"]
        vals = set(last.values())
        return len(vals) == 1 and min(vals) >= at_least and last.copy()
    try:
        return h.wait_for(cond, timeout, interval=0.1, what=f"{label}: equal applied_index")
    except h.TestFailure as e:
        h.fail(f"{e}; applied {last}, highest acknowledged index {at_least}")


def check_order(acks):
    prev = None
    for (i, key, idx, _t, name, _p) in acks:
        if prev is not None:
            h.check(idx > prev[2], f"acknowledged indices not increasing: {prev[1]} got "
                                   f"{prev[2]} (via {prev[4]}) and the later {key} got {idx} "
                                   f"(via {name})")
        prev = (i, key, idx, _t, name)


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(N)
    bport = h.free_udp_port()
    h.log(f"addresses {addrs}, broadcast port {bport}")
    agents = h.start_cluster_agents(args.synod, addrs, bport, ["--bootstrap-expect", str(N)])
    views = h.wait_converged(agents, 10.0, members=N, voters=N)
    ids = {a.name: a.id for a in agents}
    h.log("formed: " + h.summarize_view(views[agents[0].name]))

    writer = Writer(agents)
    writer.start()
    try:
        wait_phase_acks(writer, "start", 10, 10.0)
        time.sleep(STEADY_WRITES_S)
        for cycle in range(1, CYCLES + 1):
            leader = h.leader_of(agents)
            h.check(leader is not None, f"cycle {cycle}: no agreed leader: "
                                        f"{h.cluster_views(agents)}")
            survivors = [a for a in agents if a is not leader]
            writer.set_up(leader.name, False)  # a write already sent to it may fail
            t_kill = time.monotonic()
            leader.kill()
            set_phase(writer, f"after kill {cycle}")
            h.log(f"cycle {cycle}: killed leader {leader.name} "
                  f"({len(writer.acks)} writes acknowledged so far)")
            views = h.wait_converged(survivors, NEW_LEADER_BOUND_S,
                                     what=f"cycle {cycle}: survivors to elect a new leader")
            new_leader = h.leader_of(survivors, views)
            h.log(f"cycle {cycle}: new leader {new_leader.name} after "
                  f"{time.monotonic() - t_kill:.2f} s")
            wait_phase_acks(writer, f"after kill {cycle}", 5, 10.0)
            time.sleep(STEADY_WRITES_S / 2)

            t_restart = time.monotonic()
            leader.start().wait_healthy()
            h.check(leader.id == ids[leader.name],
                    f"{leader.name} came back with id {leader.id}, was {ids[leader.name]}")
            h.wait_converged(agents, REJOIN_BOUND_S, members=N, voters=N,
                             what=f"cycle {cycle}: {leader.name} back in the cluster")
            writer.set_up(leader.name, True)
            set_phase(writer, f"after restart {cycle}")
            h.log(f"cycle {cycle}: {leader.name} rejoined after "
                  f"{time.monotonic() - t_restart:.2f} s")
            wait_phase_acks(writer, f"after restart {cycle}", 5, 10.0)
            time.sleep(STEADY_WRITES_S)
    finally:
        writer.stop_flag.set()
        writer.join(timeout=12.0)
    h.check(not writer.is_alive(), "writer thread did not stop")
    h.check(writer.crash is None, f"writer thread crashed: {writer.crash!r}")

    acks = list(writer.acks)
    h.log(f"writes: {writer.next_i} attempted, {len(acks)} acknowledged, "
          f"{len(writer.unacked)} not; per phase: "
          + ", ".join(f"{p}={writer.acked_in(p)}" for p in
                      ["start"] + [f"after {w} {c}" for c in range(1, CYCLES + 1)
                                   for w in ("kill", "restart")]))
    if writer.unacked:
        h.log(f"first unacknowledged: {writer.unacked[:3]}")
    h.check(not writer.bad, f"unexpected PUT answers: {writer.bad[:5]}")
    h.check(len(acks) >= MIN_ACKED, f"only {len(acks)} writes acknowledged, want >= {MIN_ACKED}")
    check_order(acks)
    top = max(a[2] for a in acks)
    expected = expected_from(acks)

    applied = wait_applied_equal(agents, top, CATCH_UP_BOUND_S, "after the failovers")
    h.log(f"all nodes applied {applied}; highest acknowledged index {top}")
    h.verify_kv(agents, expected, "after the failovers")
    h.log(f"all {len(expected)} acknowledged keys on all {N} nodes")

    # Crash the whole cluster, bring it back on the same data dirs.
    for a in agents:
        a.kill()
    h.log("killed all 3; restarting")
    t_restart = time.monotonic()
    for a in agents:
        a.start()
    for a in agents:
        a.wait_healthy()
        h.check(a.id == ids[a.name], f"{a.name} came back with id {a.id}, was {ids[a.name]}")
    views = h.wait_converged(
        agents, FULL_RESTART_BOUND_S, members=N, voters=N,
        extra=lambda vs: all(v["applied_index"] >= top for v in vs.values()),
        what="the whole cluster back with a leader and its log applied")
    h.log(f"cluster back after {time.monotonic() - t_restart:.2f} s: "
          + h.summarize_view(next(iter(views.values()))))
    h.verify_kv(agents, expected, "after restarting the whole cluster")
    h.log(f"all {len(expected)} acknowledged keys still on all {N} nodes")
    r = agents[0].kv_put("after-restart", "yes")
    h.check(r.status == 200 and r.json().get("index", 0) > top,
            f"write after full restart: {r} (highest acknowledged before {top})")

    # Quorum loss, with a follower as the survivor, then (after bringing the
    # two back) with the leader as the survivor.
    survivor = quorum_loss(agents, survivor_is_leader=False)
    # The survivor retried forwarding that PUT for 5 s: it must still stop cleanly.
    took = survivor.stop_cleanly(signal.SIGTERM, timeout=5.0)
    h.log(f"SIGTERM {survivor.name} (follower, no quorum): exit 0 after {took:.2f} s")
    for a in agents:
        a.start()
    for a in agents:
        a.wait_healthy()
    h.wait_converged(agents, REJOIN_BOUND_S, members=N, voters=N,
                     what="the cluster back after the quorum loss")
    r = agents[1].kv_put("quorum-back", "yes")
    h.check(r.status == 200, f"write after the quorum came back: {r}")
    h.log("quorum back, writes accepted again")
    quorum_loss(agents, survivor_is_leader=True)
    h.check_exit_leaks(agents)


def quorum_loss(agents, survivor_is_leader):
    leader = h.leader_of(agents)
    h.check(leader is not None, "no agreed leader before the quorum-loss step")
    survivor = leader if survivor_is_leader else next(a for a in agents if a is not leader)
    for a in agents:
        if a is not survivor:
            a.kill()
    role = "leader" if survivor_is_leader else "follower"
    h.log(f"killed {[a.name for a in agents if a is not survivor]}; survivor {survivor.name} "
          f"({role})")
    t0 = time.monotonic()
    r = survivor.kv_put("no-quorum", "x", timeout=QUORUM_LOSS_PUT_BOUND_S + 2)
    took = time.monotonic() - t0
    h.check(r.status == 503, f"PUT on the surviving {role} without quorum: {r}, want 503")
    err = r.json().get("error")
    h.check(isinstance(err, str) and err, f"503 body without an error message: {r.body!r}")
    h.check(took <= QUORUM_LOSS_PUT_BOUND_S, f"503 took {took:.2f} s, want <= "
                                             f"{QUORUM_LOSS_PUT_BOUND_S}")
    h.log(f"PUT on the surviving {role}: 503 {err!r} after {took:.2f} s")
    v = h.wait_for(lambda: (lambda v: v["quorum"] is False and v)(survivor.cluster()), 3.0,
                   what=f"{survivor.name} to report quorum false")
    h.log(f"survivor view: {h.summarize_view(v)}")
    h.check(v["leader"] is None or v["leader"]["id"] != survivor.id,
            f"{survivor.name} still calls itself the leader without quorum: {v['leader']}")
    h.check(survivor.alive(), f"{survivor.name} exited")
    return survivor

if __name__ == "__main__":
    h.run_main(main)
