#!/usr/bin/env python3
"""Two groups of nodes started at once never form two clusters.

Six agents with --bootstrap-expect 3 on one address block and one broadcast
port, started as two groups of three, launched in parallel from two threads.
Each of them could see "3 nodes outside any cluster" and form one; the rule
(the lowest id of the stable candidate set forms, the others join it) must
still produce a single cluster.

Asserts, for each of ROUNDS rounds (fresh block and broadcast port each):
  * at no point during settling do two agents report two different non-empty
    cluster_ids (there is no merge, so two ids would be a permanent split);
  * within 15 s of all answering /healthz, all 6 are members of the same
    cluster, with one leader, 6 members, 3 voters, 2 standbys and 1 spare;
  * the 6 member lists name exactly the 6 agents.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

ROUNDS = 2
GROUP = 3
SETTLE_BOUND_S = 15.0


def one_round(synod, rnd):
    addrs = h.pick_addresses(2 * GROUP)
    bport = h.free_udp_port()
    h.log(f"round {rnd}: addresses {addrs[0]}..{addrs[-1]}, broadcast port {bport}")
    groups = [[h.Agent(synod, f"r{rnd}{g}{i + 1}", addrs[g_i * GROUP + i], bport,
                       extra_args=("--bootstrap-expect", str(GROUP)))
               for i in range(GROUP)]
              for g_i, g in enumerate("ab")]
    barrier = threading.Barrier(3, timeout=10.0)
    release = threading.Event()
    errors = []

    def launch(group):
        # Children get PR_SET_PDEATHSIG, which fires when the *thread* that
        # spawned them ends: the launcher threads live until the round is over.
        try:
            barrier.wait()
            for a in group:
                a.start()
        except Exception as e:  # reported below
            errors.append(e)
        finally:
            launched.release()
        release.wait(timeout=SETTLE_BOUND_S + 60.0)
    launched = threading.Semaphore(0)
    threads = [threading.Thread(target=launch, args=(g,), daemon=True) for g in groups]
    for t in threads:
        t.start()
    try:
        barrier.wait()
        for _ in threads:
            h.check(launched.acquire(timeout=10.0), "launcher thread stuck")
        h.check(not errors, f"launching failed: {errors}")
        agents = groups[0] + groups[1]
        settle(rnd, agents)
    finally:
        for a in groups[0] + groups[1]:
            if a.proc is not None:
                a.kill()
        release.set()
        for t in threads:
            t.join(timeout=5.0)


def settle(rnd, agents):
    for a in agents:
        a.wait_healthy()
    t_up = time.monotonic()

    seen = {}   # cluster_id -> set of agent names that reported it

    def settled():
        views = {}
        for a in agents:
            if not a.alive():
                h.abort(f"{a.name} exited with {a.proc.returncode}")
            views[a.name] = a.cluster(timeout=2.0)
        for name, v in views.items():
            if v.get("cluster_id"):
                seen.setdefault(v["cluster_id"], set()).add(name)
        if len(seen) > 1:
            detail = "\n".join(f"  {n}: {h.summarize_view(v)}" for n, v in sorted(views.items()))
            h.abort(f"round {rnd}: two clusters formed: "
                    + "; ".join(f"{cid[:8]}: {sorted(names)}" for cid, names in seen.items())
                    + "\n" + detail)
        views = h.converged(agents, members=2 * GROUP, voters=3, standbys=2)
        return views if views and all(v.get("spares") == 1 for v in views.values()) else False

    try:
        views = h.wait_for(settled, SETTLE_BOUND_S, interval=0.2,
                           what=f"round {rnd}: all 6 in one cluster")
    except h.Abort:
        raise
    except h.TestFailure as e:
        detail = "\n".join(f"  {a.name}: {h.summarize_view(a.cluster())}" for a in agents)
        h.fail(f"{e}\nviews:\n{detail}")
    ids = {a.id for a in agents}
    for name, v in views.items():
        got = {m["id"] for m in v["members"]}
        h.check(got == ids, f"round {rnd}: {name} lists members {sorted(got)}, "
                            f"agents are {sorted(ids)}")
    cid = next(iter(views.values()))["cluster_id"]
    leader = h.leader_of(agents, views)
    h.log(f"round {rnd}: one cluster {cid[:8]} of 6 after {time.monotonic() - t_up:.2f} s, "
          f"leader {leader.name if leader else None}")


def main():
    args = h.parse_args(__doc__)
    for rnd in range(1, ROUNDS + 1):
        one_round(args.synod, rnd)


if __name__ == "__main__":
    h.run_main(main)
