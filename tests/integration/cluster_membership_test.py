#!/usr/bin/env python3
"""Voters, standbys, spares, late joiners, dead voters replaced, graceful leave.

Asserts:
  * 5 agents with --bootstrap-expect 5 form one cluster of 3 voters and 2
    standbys within 15 s;
  * a 6th agent started with no bootstrap flag joins it by itself as a
    spare (3 voters and 2 standbys are enough) within 15 s: 6 members,
    voters 3, standbys 2, spares 1, in every view, the spare's own included;
  * kill -9 of a voter that is not the leader: within 20 s every survivor
    reports it "dead" and no longer a voter, one of the former standbys is
    now a voter, voters 3, voters_alive 3, the spare is now a standby (2
    live standbys wanted), and the member list still has 6 entries;
  * SIGTERM of another non-leader voter: it exits 0 within 5 s, and within
    10 s every remaining node reports it "left", out of the Raft
    configuration (voters + standbys + spares == members not left, and the
    counts match the member records' roles), voters back to 3, all
    alive (another standby promoted);
  * a write through the newest voter still succeeds and reaches every node;
  * SIGTERM of the leader: it exits 0 within 5 s, and within 10 s the other
    nodes have a new leader, report it "left", and have 3 live voters again
    (the last live standby promoted); the killed voter, still down, stays
    "dead" and is never reported otherwise, nor as a voter, by any node
    (watched from the SIGTERM until 2 s after that); a write succeeds;
  * every SIGTERM'd agent's log has no "handle still open" line (resources
    left unreleased at exit).
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FORM_BOUND_S = 15.0
JOIN_BOUND_S = 15.0
REPLACE_BOUND_S = 20.0
LEAVE_BOUND_S = 10.0
EXIT_BOUND_S = 5.0


def roles(view):
    return {m["id"]: m["role"] for m in view["members"]}


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(6)
    bport = h.free_udp_port()
    h.log(f"addresses {addrs[0]}..{addrs[-1]}, broadcast port {bport}")
    agents = h.start_cluster_agents(args.synod, addrs[:5], bport, ["--bootstrap-expect", "5"])
    views = h.wait_converged(agents, FORM_BOUND_S, members=5, voters=3, standbys=2)
    h.log("formed: " + h.summarize_view(views["n1"]))

    # A late node with no bootstrap flag joins, as a spare.
    n6 = h.Agent(args.synod, "n6", addrs[5], bport).start().wait_healthy()
    agents.append(n6)
    t0 = time.monotonic()
    views = h.wait_converged(
        agents, JOIN_BOUND_S, members=6, voters=3, standbys=2,
        extra=lambda vs: all((h.member_of(v, n6) or {}).get("role") == "spare"
                             and h.member_of(v, n6)["state"] == "alive" and v.get("spares") == 1
                             for v in vs.values()),
        what="n6 (no flag) to join as a spare")
    h.log(f"n6 joined as a spare in {time.monotonic() - t0:.2f} s: "
          + h.summarize_view(views["n6"]))
    before = roles(views["n6"])
    standbys_before = {i for i, r in before.items() if r == "standby"}

    # kill -9 a voter that is not the leader.
    leader = h.leader_of(agents, views)
    h.check(leader is not None, "no agreed leader")
    victim = next(a for a in agents if before[a.id] == "voter" and a is not leader)
    victim.kill()
    survivors = [a for a in agents if a is not victim]
    t0 = time.monotonic()
    h.log(f"killed voter {victim.name} (leader {leader.name})")

    def replaced(vs):
        for v in vs.values():
            m = h.member_of(v, victim)
            if m is None or m["state"] != "dead" or m["role"] == "voter":
                return False
            now = roles(v)
            if not any(now[i] == "voter" for i in standbys_before):
                return False
            if v["voters"] != 3 or v["voters_alive"] != 3:
                return False
            voters_alive = [mm for mm in v["members"]
                            if mm["role"] == "voter" and mm["state"] == "alive"]
            if len(voters_alive) != 3:
                return False
            if now[n6.id] != "standby":  # fewer live standbys than wanted: the spare moves up
                return False
        return True
    views = h.wait_converged(survivors, REPLACE_BOUND_S, members=6, voters=3, extra=replaced,
                             what=f"dead voter {victim.name} replaced by a standby")
    promoted = [m["name"] for m in views[leader.name]["members"]
                if m["id"] in standbys_before and m["role"] == "voter"]
    h.log(f"{victim.name} dead and replaced by {promoted} after {time.monotonic() - t0:.2f} s: "
          + h.summarize_view(views[leader.name]))

    # SIGTERM another non-leader voter: a graceful leave.
    leader = h.leader_of(survivors, views)
    h.check(leader is not None, "no agreed leader after the replacement")
    now = roles(views[leader.name])
    leaver = next(a for a in survivors if now[a.id] == "voter" and a is not leader)
    remaining = [a for a in survivors if a is not leaver]
    t0 = time.monotonic()
    took = leaver.stop_cleanly(signal.SIGTERM, timeout=EXIT_BOUND_S)
    h.log(f"SIGTERM {leaver.name} (voter): exit 0 after {took:.2f} s")

    def left(vs):
        for v in vs.values():
            m = h.member_of(v, leaver)
            if m is None or m["state"] != "left":
                return False
            not_left = [mm for mm in v["members"] if mm["state"] != "left"]
            voter_records = [mm for mm in not_left if mm["role"] == "voter"]
            standby_records = [mm for mm in not_left if mm["role"] == "standby"]
            spare_records = [mm for mm in not_left if mm["role"] == "spare"]
            # The configuration counts match the records: the leaver is out of it.
            if v["voters"] + v["standbys"] + v["spares"] != len(not_left):
                return False
            if (len(voter_records) != v["voters"] or len(standby_records) != v["standbys"]
                    or len(spare_records) != v["spares"]):
                return False
            if v["voters"] != 3 or v["voters_alive"] != 3:
                return False
            if any(mm["state"] != "alive" for mm in voter_records):
                return False
        return True
    views = h.wait_converged(remaining, LEAVE_BOUND_S, members=5, voters=3, extra=left,
                             what=f"{leaver.name} to be 'left' and out of the configuration")
    h.log(f"{leaver.name} left after {time.monotonic() - t0:.2f} s: "
          + h.summarize_view(views[leader.name]))

    # The cluster still takes writes, through a node that became a voter.
    newest = next(a for a in remaining if a.id in standbys_before
                  and roles(views[a.name])[a.id] == "voter")
    r = newest.kv_put("membership", "ok")
    h.check(r.status == 200, f"PUT via {newest.name}: {r}")
    h.wait_for(lambda: all(a.kv_get("membership").status == 200 for a in remaining), 5.0,
               what="the write on every remaining node")

    # SIGTERM the leader: it hands leadership over, is recorded as left, exits 0.
    leader = h.leader_of(remaining)
    h.check(leader is not None, "no agreed leader before stopping it")
    rest = [a for a in remaining if a is not leader]
    t0 = time.monotonic()
    took = leader.stop_cleanly(signal.SIGTERM, timeout=EXIT_BOUND_S)
    h.log(f"SIGTERM leader {leader.name}: exit 0 after {took:.2f} s")

    resurrected = []   # views that call the killed (still down) victim alive or a voter

    def watch_victim():
        for a in rest:
            try:
                v = a.cluster(timeout=1.0)
            except Exception:  # noqa: BLE001 (a view is only sampled here)
                continue
            m = h.member_of(v, victim)
            if m is not None and (m["state"] != "dead" or m["role"] == "voter"):
                resurrected.append((round(time.monotonic() - t0, 2), a.name, m["role"],
                                    m["state"], (v["leader"] or {}).get("name")))

    def leader_left(vs):
        for v in vs.values():
            m = h.member_of(v, leader)
            if m is None or m["state"] != "left":
                return False
            voter_records = [mm for mm in v["members"]
                             if mm["role"] == "voter" and mm["state"] == "alive"]
            if len(voter_records) != 3 or v["voters_alive"] != 3:
                return False
        return True
    views = h.wait_converged(rest, LEAVE_BOUND_S, members=4, voters=3, extra=leader_left,
                             on_poll=watch_victim,
                             what=f"leader {leader.name} to be 'left' and a new leader elected")
    h.log(f"{leader.name} left after {time.monotonic() - t0:.2f} s: "
          + h.summarize_view(views[rest[0].name]))
    # Keep watching a little longer: the new leader's liveness rounds come every tick.
    watch_until = time.monotonic() + 2.0
    while time.monotonic() < watch_until:
        watch_victim()
        time.sleep(0.1)
    # The victim is still down: the new leader must not report it alive (nor promote it).
    h.check(not resurrected,
            f"after the leader change, {victim.name} (killed, still down, recorded dead) "
            f"was reported as (seconds after SIGTERM, node, role, state, leader): "
            f"{resurrected[:3]}{' ...' if len(resurrected) > 3 else ''} "
            f"({len(resurrected)} views)")
    r = rest[0].kv_put("after-leader-left", "ok")
    h.check(r.status == 200, f"PUT after the leader left: {r}")
    h.check_exit_leaks(agents)


if __name__ == "__main__":
    h.run_main(main)
