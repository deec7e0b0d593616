#!/usr/bin/env python3
"""Clusters form by themselves from --bootstrap-expect N and broadcast discovery.

Asserts:
  * 3 agents with --bootstrap-expect 3 --beacon-interval 200ms: within 10 s of
    all answering /healthz, all 3 are in phase "member" of the same non-empty
    cluster_id, name the same leader (one of the 3), and report 3 members
    (exactly the 3 agents' ids, names, ips and api ports, all voter/alive,
    distinct join_order), voters 3, voters_alive 3, standbys 0, quorum true;
    a PUT through a follower is acknowledged and every node then serves the
    value;
  * 5 agents with --bootstrap-expect 5 (fresh address block and broadcast
    port): within 15 s one cluster, 5 members, 3 voters + 2 standbys (as
    counts and as member roles), all alive, the leader one of the voters;
  * 3 agents with --bootstrap-expect 3 started together with one agent with
    no bootstrap flag that has the lowest node id of the four: within 10 s
    one cluster of 4 (3 voters, 1 standby) founded by the lowest-id of the
    three (first in join order), the no-flag agent a member of it: it must not
    be taken for a bootstrap candidate, which would block the formation. (It
    joins what it discovers, as the others do, so it may join before the
    last of the three and be a voter.)
"""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FORM3_BOUND_S = 10.0
FORM5_BOUND_S = 15.0
READ_BOUND_S = 5.0


def check_members(agents, views, voters, standbys):
    ids = {a.id: a for a in agents}
    for name, v in views.items():
        members = v["members"]
        got = {m["id"] for m in members}
        h.check(got == set(ids), f"{name}: member ids {sorted(got)} != agents {sorted(ids)}")
        for m in members:
            a = ids[m["id"]]
            h.check(m["name"] == a.name and m["ip"] == a.addr and m["api_port"] == a.api_port,
                    f"{name}: member record {m} does not match agent {a.name}@{a.addr}")
            h.check(m["state"] == "alive", f"{name}: member {m['name']} state {m['state']}")
            h.check(h.is_finite_number(m["joined_at"]) and m["joined_at"] > 0,
                    f"{name}: member {m['name']} joined_at {m['joined_at']!r}")
        roles = sorted(m["role"] for m in members)
        h.check(roles == sorted(["voter"] * voters + ["standby"] * standbys),
                f"{name}: roles {roles}, want {voters} voters + {standbys} standbys")
        orders = [m["join_order"] for m in members]
        h.check(len(set(orders)) == len(orders), f"{name}: join_order not distinct: {orders}")
        h.check(v["voters"] == voters and v["voters_alive"] == voters
                and v["standbys"] == standbys,
                f"{name}: voters {v['voters']}/{v['voters_alive']} standbys {v['standbys']}")
        leader = v["leader"]
        h.check(leader["id"] in ids and leader["name"] == ids[leader["id"]].name
                and leader["ip"] == ids[leader["id"]].addr, f"{name}: leader {leader}")
        lrole = [m["role"] for m in members if m["id"] == leader["id"]]
        h.check(lrole == ["voter"], f"{name}: leader {leader['name']} has role {lrole}")
    # Every view agrees on who is voter and who is standby.
    role_sets = {tuple(sorted((m["id"], m["role"]) for m in v["members"])) for v in views.values()}
    h.check(len(role_sets) == 1, f"views disagree on roles: {role_sets}")


def form(synod, n, bound, voters, standbys):
    addrs = h.pick_addresses(n)
    bport = h.free_udp_port()
    h.log(f"{n} agents --bootstrap-expect {n}: addresses {addrs[0]}..{addrs[-1]}, "
          f"broadcast port {bport}")
    agents = h.start_cluster_agents(synod, addrs, bport, ["--bootstrap-expect", str(n)],
                                    names=[f"f{n}-{i + 1}" for i in range(n)])
    t_up = time.monotonic()
    views = h.wait_converged(agents, bound, members=n, voters=voters, standbys=standbys,
                             what=f"{n} agents to form one cluster")
    took = time.monotonic() - t_up
    cid = next(iter(views.values()))["cluster_id"]
    leader = h.leader_of(agents, views)
    h.check(leader is not None, f"leader is not one of the agents: {views}")
    h.log(f"one cluster {cid[:8]} of {n} in {took:.2f} s after /healthz; leader {leader.name}")
    for name, v in sorted(views.items()):
        h.log(f"  {name}: {h.summarize_view(v)}")
    check_members(agents, views, voters, standbys)
    return agents, leader


def main():
    args = h.parse_args(__doc__)

    agents, leader = form(args.synod, 3, FORM3_BOUND_S, 3, 0)
    follower = next(a for a in agents if a is not leader)
    r = follower.kv_put("formation", "three")
    h.check(r.status == 200, f"PUT via follower {follower.name}: {r}")
    index = r.json()["index"]
    h.check(isinstance(index, int) and index > 0, f"PUT index {index!r}")
    for a in agents:
        got = h.wait_for(lambda: a.kv_get("formation").status == 200 and a.kv_get("formation"),
                         READ_BOUND_S, what=f"{a.name} to serve the write")
        h.check(got.json() == {"key": "formation", "value": "three"}, f"{a.name}: {got}")
    h.log(f"write via follower {follower.name} acknowledged at index {index}, read on all 3")
    for a in agents:
        a.kill()

    agents5, leader5 = form(args.synod, 5, FORM5_BOUND_S, 3, 2)
    r = leader5.kv_put("formation", "five")
    h.check(r.status == 200, f"PUT via leader {leader5.name}: {r}")
    for a in agents5:
        a.kill()

    # A node with no bootstrap flag, started together with 3 --bootstrap-expect 3
    # nodes and given the lowest id of all, must not count as one of the 3 (it
    # would never form the cluster the others wait for) and joins what they form.
    addrs = h.pick_addresses(4)
    bport = h.free_udp_port()
    h.log(f"3 agents --bootstrap-expect 3 + 1 with no flag and the lowest id: "
          f"{addrs[0]}..{addrs[-1]}, broadcast port {bport}")
    def node_id(first_digit):
        return f"{first_digit:x}" + "".join(random.choice("0123456789abcdef") for _ in range(31))
    mixed = [h.Agent(args.synod, f"x-{i + 1}", addrs[i], bport,
                     extra_args=("--bootstrap-expect", "3")).preset_id(node_id(i + 1))
             for i in range(3)]
    free = h.Agent(args.synod, "x-free", addrs[3], bport).preset_id(node_id(0))
    mixed.append(free)
    for a in mixed:
        a.start()
    for a in mixed:
        a.wait_healthy()
    t_up = time.monotonic()
    founder = mixed[0]  # the lowest id of the three
    views = h.wait_converged(
        mixed, FORM3_BOUND_S, members=4, voters=3, standbys=1,
        extra=lambda vs: all(v["members"][0]["id"] == founder.id for v in vs.values()),
        what=f"3 expect nodes to form (founded by {founder.name}) and the no-flag node to "
             f"join")
    h.log(f"one cluster of 4 after {time.monotonic() - t_up:.2f} s: "
          + h.summarize_view(views["x-free"]))
    check_members(mixed, views, 3, 1)


if __name__ == "__main__":
    h.run_main(main)
