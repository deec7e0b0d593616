#!/usr/bin/env python3
"""Spares: members outside Raft replication, fed committed entries by the leader.

Five agents with --bootstrap-expect 5 --standbys 0 --feed-window 16: three voters, and the
other two are spares. The leader keeps only 16 entries to catch a spare up: the spares that
join the young cluster get its entries from those, one that missed more gets the whole state.

Asserts:
  * within 15 s every view, the spares' own included, shows one cluster with 3 voters,
    0 standbys and 2 spares, the same leader, quorum, and each spare as a live member;
  * a PUT through a spare (forwarded to the leader) answers 200, and the value is read back
    on every node within 3 s; a PUT through a voter is read back on both spares within 3 s;
  * kill -9 of a spare, 40 PUTs, restart: within 15 s it is a live spare again and reads
    all 40 values (a spare keeps nothing on disk: it catches up from the leader's state);
  * kill -9 of the leader: within 15 s the survivors agree on a new leader; the surviving
    spares name it as their leader within 3 s of that, and a PUT through a voter reaches
    them;
  * in the end (the dead leader demoted, spares promoted by way of standby) every survivor
    reports 3 live voters within 20 s, and a PUT through each survivor succeeds and is read
    on every survivor.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N = 5
FORM_BOUND_S = 15.0
READ_BOUND_S = 3.0
REJOIN_BOUND_S = 15.0
NEW_LEADER_BOUND_S = 15.0
REPAIR_BOUND_S = 20.0


def put_ok(agent, key, value):
    r = agent.kv_put(key, value)
    h.check(r.status == 200, f"PUT {key} via {agent.name}: {r}")


def read(agent, key):
    r = agent.kv_get(key)
    return r.json().get("value") if r.status == 200 else None


def wait_readable(agents, key, value, bound=READ_BOUND_S):
    def readable():
        return all(read(a, key) == value for a in agents)
    h.wait_for(readable, bound, what=f"{key}={value} on {[a.name for a in agents]}")


def restart_spare_after_missing(spare, others, writes, prefix):
    spare.kill()
    writer = next(a for a in others if a.alive())
    for i in range(writes):
        put_ok(writer, f"{prefix}{i}", str(i))
    t0 = time.monotonic()
    spare.start().wait_healthy()

    def caught_up(views):
        v = views[spare.name]
        m = h.member_of(v, spare)
        return m is not None and m["role"] == "spare" and m["state"] == "alive"
    h.wait_converged(others + [spare], REJOIN_BOUND_S, members=N, voters=3, extra=caught_up,
                     what=f"{spare.name} back as a live spare")
    wait_readable([spare], f"{prefix}{writes - 1}", str(writes - 1), REJOIN_BOUND_S)
    h.verify_kv([spare], {f"{prefix}{i}": str(i) for i in range(writes)},
                f"{spare.name} after rejoining")
    h.log(f"{spare.name} missed {writes} writes and caught up in {time.monotonic() - t0:.2f} s")


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(N)
    bport = h.free_udp_port()
    h.log(f"addresses {addrs[0]}..{addrs[-1]}, broadcast port {bport}")
    agents = h.start_cluster_agents(
        args.synod, addrs, bport,
        ["--bootstrap-expect", str(N), "--standbys", "0", "--feed-window", "16"])
    views = h.wait_converged(
        agents, FORM_BOUND_S, members=N, voters=3, standbys=0,
        extra=lambda vs: all(v.get("spares") == 2 for v in vs.values()),
        what="3 voters and 2 spares")
    by_id = {a.id: a for a in agents}
    roles = {m["id"]: m["role"] for m in views[agents[0].name]["members"]}
    spares = [by_id[i] for i, r in roles.items() if r == "spare"]
    voters = [by_id[i] for i, r in roles.items() if r == "voter"]
    h.check(len(spares) == 2 and len(voters) == 3, f"roles: {roles}")
    h.log("formed: " + h.summarize_view(views[spares[0].name]))

    put_ok(spares[0], "via-spare", "1")
    wait_readable(agents, "via-spare", "1")
    put_ok(voters[0], "via-voter", "2")
    wait_readable(spares, "via-voter", "2")
    h.log("writes through a spare and a voter read back everywhere")

    restart_spare_after_missing(spares[1], [a for a in agents if a is not spares[1]], 40, "missed-")

    leader = h.leader_of(agents)
    h.check(leader is not None and leader in voters, f"leader {leader} is not a voter")
    leader.kill()
    survivors = [a for a in agents if a is not leader]
    t0 = time.monotonic()
    views = h.wait_converged(survivors, NEW_LEADER_BOUND_S, what="a new leader")
    new_leader = h.leader_of(survivors, views)
    h.log(f"killed leader {leader.name}; {new_leader.name} leads after "
          f"{time.monotonic() - t0:.2f} s")

    def fed_by_new_leader():
        for s in spares:
            v = s.cluster()
            if (v.get("leader") or {}).get("id") != new_leader.id:
                return False
        return True
    h.wait_for(fed_by_new_leader, READ_BOUND_S, what="the spares to follow the new leader")
    put_ok(new_leader, "new-leader", "3")
    wait_readable(spares, "new-leader", "3")
    h.log("the spares follow the new leader")

    def repaired(vs):
        return all(v["voters"] == 3 and v["voters_alive"] == 3
                   and h.member_of(v, leader)["role"] != "voter" for v in vs.values())
    views = h.wait_converged(survivors, REPAIR_BOUND_S, members=N, voters=3, extra=repaired,
                             what="3 live voters again")
    h.log("repaired: " + h.summarize_view(views[new_leader.name]))
    for a in survivors:
        put_ok(a, f"end-{a.name}", a.name)
    for a in survivors:
        wait_readable(survivors, f"end-{a.name}", a.name)


if __name__ == "__main__":
    h.run_main(main)
