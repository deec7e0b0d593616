#!/usr/bin/env python3
"""Ranks and commands between members: rank table, delivery to lower ranks, exactly once,
through a member's death and a leader crash.

Asserts:
  * 5 agents with --bootstrap-expect 5: within 20 s every node's GET /v1/ranks shows the
    same 5 ranks 0-4, all kind "member", one per agent, each with the agent's id and
    address "ip:api_port";
  * hostile input: POST /v1/commands with a non-JSON body, {"command": 5}, {} and
    {"command": ""} -> 400 with a JSON error; GET /v1/commands?since=abc and ?limit=-1
    -> 400; no command was recorded (last_command_id unchanged);
  * the member ranked 1 sends START_TRANSMIT with POST /v1/commands on its own agent: the
    answer names it as sender (rank 1, its address), is settled, and its recipients are
    exactly ranks 2, 3, 4 (members, right ids), all "delivered"; every node's
    GET /v1/commands holds that id exactly once on ranks 2-4 (with sender_rank 1 and the
    recipient's rank) and not at all on ranks 0 and 1;
  * kill -9 of the member ranked 2, and at once rank 1 sends PAUSE_TRANSMIT: the answer
    comes within 20 s, settled, "failed" for the dead member (once it is unranked) and
    "delivered" to ranks 3 and 4, which hold it once;
  * within 20 s of that kill every survivor shows 4 ranks without it,
    the others in the same relative order (those behind moved up); rank 1 sends again:
    exactly the new ranks 2 and 3 get it, once each;
  * a sender (a member that is not the leader, with live members ranked after it) sends
    30 commands one after the other while the leader is killed with -9 after the first
    few: the survivors elect a new leader and drop the dead one from the ranks; every
    acknowledged command is settled; every live member ranked after the sender (in the
    final table, whose order is that of the time of sending) is among its recipients and
    "delivered"; on every live node each command id appears at most once, and an
    acknowledged id only on a node its record names as a "delivered" recipient.
"""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N = 5
FORM_BOUND_S = 20.0
DEAD_BOUND_S = 20.0
NEW_LEADER_BOUND_S = 15.0
SEND_TIMEOUT_S = 40.0
BURST = 30
BURST_GAP_S = 0.2
KILL_AFTER = 5
SEED_COMMANDS = ("START_TRANSMIT", "STOP_TRANSMIT", "PAUSE_TRANSMIT", "RESTART_TRANSMIT")


# ---- helpers -----------------------------------------------------------------------------

def inbox(agent):
    doc = agent.get("/v1/commands?since=0&limit=1000")
    h.check(isinstance(doc.get("commands"), list), f"{agent.name} /v1/commands: {doc}")
    return doc


def id_counts(doc):
    counts = {}
    for c in doc["commands"]:
        counts[c["id"]] = counts.get(c["id"], 0) + 1
    return counts


def check_record_shape(rec, sender, sender_rank, text):
    for k in ("id", "command", "sender", "settled", "delivered", "failed", "pending",
              "recipients"):
        h.check(k in rec, f"command record without {k!r}: {rec}")
    h.check(isinstance(rec["id"], int) and rec["id"] > 0, f"bad command id: {rec}")
    h.check(rec["command"] == text, f"record command {rec['command']!r}, sent {text!r}")
    h.check(rec["sender"].get("rank") == sender_rank
            and rec["sender"].get("address") == f"{sender.addr}:{sender.api_port}",
            f"record sender {rec['sender']}, want rank {sender_rank} "
            f"{sender.addr}:{sender.api_port}")
    states = [r["state"] for r in rec["recipients"]]
    h.check(rec["delivered"] == states.count("delivered")
            and rec["failed"] == states.count("failed")
            and rec["pending"] == states.count("pending")
            and rec["settled"] == (states.count("pending") == 0),
            f"record counters disagree with its recipients: {rec}")


def expect_delivered_to(agents, rec, recipients, others, text, sender_rank,
                        ranks_moved=False):
    """rec's id is on each of `recipients` (agent -> rank) exactly once, on none of
    `others`. Each recipient's current rank is the one it had for the command, unless
    `ranks_moved` (a member before it was unranked since)."""
    cid = rec["id"]
    for a, rank in recipients.items():
        doc = inbox(a)
        got = [c for c in doc["commands"] if c["id"] == cid]
        h.check(len(got) == 1, f"command {cid} on {a.name} (rank {rank}) {len(got)} times: "
                               f"{doc['commands'][-5:]}")
        c = got[0]
        h.check(c["command"] == text and c["sender_rank"] == sender_rank and c["rank"] == rank,
                f"command {cid} on {a.name}: {c}, want text {text!r}, sender_rank "
                f"{sender_rank}, rank {rank}")
        h.check(c["sender"] == rec["sender"]["address"],
                f"command {cid} on {a.name}: sender {c['sender']!r}, record says "
                f"{rec['sender']['address']!r}")
        h.check(ranks_moved or doc.get("rank") == rank,
                f"{a.name} /v1/commands says rank {doc.get('rank')}, want {rank}")
        h.check(isinstance(doc.get("received_through"), int) and doc["received_through"] >= cid,
                f"{a.name} received_through {doc.get('received_through')} < {cid}")
    for a in others:
        doc = inbox(a)
        h.check(cid not in id_counts(doc), f"command {cid} reached {a.name}, which is not "
                                           f"ranked after the sender: {doc['commands'][-5:]}")


def expect_400(agent, method, path, body, label):
    r = h.http_request(agent.addr, agent.api_port, method, path, body=body,
                       headers={"Content-Type": "application/json"} if body else None,
                       timeout=5.0)
    h.check(r.status == 400, f"{label}: {method} {path} -> {r}, want 400")
    try:
        err = r.json().get("error")
    except (ValueError, AttributeError):
        err = None
    h.check(isinstance(err, str) and err, f"{label}: 400 without a JSON error: {r.body[:200]!r}")
    return err


# ---- the burst through a leader crash -------------------------------------------------------

class Burst(threading.Thread):
    """Sends BURST commands from one member, one after the other; records every answer."""

    def __init__(self, sender):
        super().__init__(daemon=True)
        self.sender = sender
        self.acked = []       # (text, record)
        self.unacked = []     # (text, why)
        self.crash = None
        self.lock = threading.Lock()
        self.at_kill_point = threading.Event()   # set just before sending command KILL_AFTER

    def count(self):
        with self.lock:
            return len(self.acked) + len(self.unacked)

    def run(self):
        try:
            for i in range(BURST):
                text = f"{random.choice(SEED_COMMANDS)}-{i}"
                deadline = time.monotonic() + 60.0
                if i == KILL_AFTER:
                    self.at_kill_point.set()
                while True:
                    t0 = time.monotonic()
                    try:
                        r = h.post_command(self.sender, text, timeout=SEND_TIMEOUT_S)
                    except Exception as e:  # noqa: BLE001 (recorded)
                        r, why = None, f"{type(e).__name__}: {e}"
                    if r is not None and r.status == 200:
                        with self.lock:
                            self.acked.append((text, r.json(), time.monotonic() - t0))
                        break
                    if r is not None:
                        why = f"{r.status} {r.body[:200]!r}"
                    # A 503 (no leader for 30 s) may be retried: it is a new command then.
                    if (r is not None and r.status != 503) or time.monotonic() > deadline:
                        with self.lock:
                            self.unacked.append((text, why))
                        break
                    h.log(f"burst: {text} not acknowledged ({why}); retrying")
                    time.sleep(0.2)
                time.sleep(BURST_GAP_S)
        except BaseException as e:  # reported by the main thread
            self.crash = e
            raise


# ---- the test ----------------------------------------------------------------------------

def main():
    args = h.parse_args(__doc__, extra=lambda p: p.add_argument(
        "--standbys", type=int, help="run the agents with --standbys N (0: members beyond the "
        "voters are spares, fed by the leader outside Raft)"))
    addrs = h.pick_addresses(N)
    bport = h.free_udp_port()
    h.log(f"addresses {addrs[0]}..{addrs[-1]}, broadcast port {bport}")
    agent_args = ["--bootstrap-expect", str(N)]
    if args.standbys is not None:
        agent_args += ["--standbys", str(args.standbys)]
    agents = h.start_cluster_agents(args.synod, addrs, bport, agent_args)
    h.wait_converged(agents, FORM_BOUND_S, members=N, voters=3,
                     standbys=2 if args.standbys is None else min(args.standbys, N - 3))
    by_id = {a.id: a for a in agents}

    def all_members(entries):
        return (len(entries) == N and [e["rank"] for e in entries] == list(range(N))
                and all(e["kind"] == "member" for e in entries)
                and {e["id"] for e in entries} == set(by_id))
    t0 = time.monotonic()
    entries = h.wait_ranks(agents, all_members, FORM_BOUND_S, f"{N} member ranks on every node")
    for e in entries:
        a = by_id[e["id"]]
        h.check(e["address"] == f"{a.addr}:{a.api_port}",
                f"rank {e['rank']} ({a.name}) address {e['address']!r}, want "
                f"{a.addr}:{a.api_port}")
    ranked = [by_id[e["id"]] for e in entries]          # index = rank
    h.log(f"ranks after {time.monotonic() - t0:.2f} s: {[a.name for a in ranked]}")

    # Hostile input: nothing recorded.
    before = agents[0].ranks()["last_command_id"]
    target = ranked[1]
    expect_400(target, "POST", "/v1/commands", b"this is {not json", "non-JSON body")
    expect_400(target, "POST", "/v1/commands", b'{"command": 5}', "numeric command")
    expect_400(target, "POST", "/v1/commands", b"{}", "no command")
    expect_400(target, "POST", "/v1/commands", b'{"command": ""}', "empty command")
    expect_400(target, "POST", "/v1/commands", b'["START_TRANSMIT"]', "JSON array body")
    expect_400(target, "GET", "/v1/commands?since=abc", None, "since=abc")
    expect_400(target, "GET", "/v1/commands?limit=-1", None, "limit=-1")
    after = agents[0].ranks()["last_command_id"]
    h.check(after == before, f"hostile requests recorded commands: last_command_id "
                             f"{before} -> {after}")
    h.log("hostile /v1/commands requests answered 400 with a JSON error")

    # Rank 1 sends: ranks 2-4 receive it once; 0 and 1 do not.
    rec = h.post_command_ok(ranked[1], "START_TRANSMIT")
    check_record_shape(rec, ranked[1], 1, "START_TRANSMIT")
    got = [(r["rank"], r["kind"], r.get("id"), r["state"]) for r in rec["recipients"]]
    want = [(k, "member", ranked[k].id, "delivered") for k in (2, 3, 4)]
    h.check(got == want, f"recipients {got}, want {want}: {rec}")
    h.check(rec["settled"] is True, f"not settled: {rec}")
    expect_delivered_to(agents, rec, {ranked[k]: k for k in (2, 3, 4)}, ranked[:2],
                        "START_TRANSMIT", 1)
    h.log(f"command {rec['id']} from rank 1 delivered once to ranks 2-4, not to 0-1")

    # kill -9 rank 2: the ones behind move up.
    victim = ranked[2]
    victim.kill()
    survivors = [a for a in agents if a is not victim]
    expected_order = [a for a in ranked if a is not victim]
    t0 = time.monotonic()
    h.log(f"killed rank 2 ({victim.name})")
    # Sent before the victim is declared dead: its delivery can only settle as "failed" once
    # it is unranked; the others get it at once.
    rec = h.post_command_ok(ranked[1], "PAUSE_TRANSMIT")
    took = time.monotonic() - t0
    check_record_shape(rec, ranked[1], 1, "PAUSE_TRANSMIT")
    got = [(r["rank"], r.get("id"), r["state"]) for r in rec["recipients"]]
    want = [(2, victim.id, "failed"), (3, ranked[3].id, "delivered"),
            (4, ranked[4].id, "delivered")]
    h.check(got == want, f"sent while {victim.name} was dying: recipients {got}, want {want}: "
                         f"{rec}")
    h.check(rec["settled"] is True and took <= DEAD_BOUND_S,
            f"answer after {took:.2f} s, settled {rec['settled']}: {rec}")
    # Its answer came once the victim was unranked: the others may have moved up already.
    expect_delivered_to(survivors, rec, {ranked[3]: 3, ranked[4]: 4}, ranked[:2],
                        "PAUSE_TRANSMIT", 1, ranks_moved=True)
    h.log(f"command {rec['id']} sent while {victim.name} was dying: answered after "
          f"{took:.2f} s, failed for it ({rec['recipients'][0].get('error')!r}), delivered "
          f"to ranks 3-4")
    entries = h.wait_ranks(
        survivors,
        lambda es: [e["id"] for e in es] == [a.id for a in expected_order]
        and [e["rank"] for e in es] == list(range(N - 1)),
        DEAD_BOUND_S, f"{victim.name} unranked and the others moved up")
    h.log(f"{victim.name} unranked after {time.monotonic() - t0:.2f} s; ranks now "
          f"{[by_id[e['id']].name for e in entries]}")
    ranked = expected_order
    h.wait_converged(survivors, NEW_LEADER_BOUND_S, what="survivors agree on a leader")
    rec = h.post_command_ok(ranked[1], "STOP_TRANSMIT")
    check_record_shape(rec, ranked[1], 1, "STOP_TRANSMIT")
    got = [(r["rank"], r.get("id"), r["state"]) for r in rec["recipients"]]
    want = [(k, ranked[k].id, "delivered") for k in (2, 3)]
    h.check(got == want, f"after the kill: recipients {got}, want {want}: {rec}")
    expect_delivered_to(survivors, rec, {ranked[k]: k for k in (2, 3)}, ranked[:2],
                        "STOP_TRANSMIT", 1)
    h.log(f"command {rec['id']} from the new rank 1 delivered once to the new ranks 2-3")

    # A burst of commands while the leader is killed.
    leader = h.leader_of(survivors)
    h.check(leader is not None, "no agreed leader before the burst")
    candidates = [a for a in ranked[:-1] if a is not leader
                  and any(b is not leader for b in ranked[ranked.index(a) + 1:])]
    sender = candidates[0]
    h.log(f"burst: sender {sender.name} (rank {ranked.index(sender)}), leader {leader.name} "
          f"(rank {ranked.index(leader)})")
    burst = Burst(sender)
    t_burst = time.monotonic()
    burst.start()
    reached = burst.at_kill_point.wait(20.0)
    h.check(burst.crash is None, f"burst thread crashed: {burst.crash!r}")
    h.check(reached, f"the burst did not reach command {KILL_AFTER} within 20 s")
    time.sleep(random.uniform(0.0, 0.02))    # while command KILL_AFTER is on its way
    leader.kill()
    t_kill = time.monotonic()
    live = [a for a in survivors if a is not leader]
    h.log(f"killed leader {leader.name} after {burst.count()} commands of the burst")
    views = h.wait_converged(live, NEW_LEADER_BOUND_S, what="a new leader after the crash")
    h.log(f"new leader {h.leader_of(live, views).name} after {time.monotonic() - t_kill:.2f} s")
    final_order = [a for a in ranked if a is not leader]
    h.wait_ranks(live, lambda es: [e["id"] for e in es] == [a.id for a in final_order],
                 DEAD_BOUND_S, f"the dead leader {leader.name} unranked")
    h.log(f"leader {leader.name} unranked after {time.monotonic() - t_kill:.2f} s")
    burst.join(timeout=BURST * (SEND_TIMEOUT_S + 1))
    h.check(not burst.is_alive(), "the burst did not finish")
    h.check(burst.crash is None, f"burst thread crashed: {burst.crash!r}")
    slowest = max((x[2] for x in burst.acked), default=0.0)
    h.log(f"burst done in {time.monotonic() - t_burst:.1f} s: {len(burst.acked)} acknowledged, "
          f"{len(burst.unacked)} not; slowest answer {slowest:.2f} s")
    h.check(not burst.unacked, f"commands not acknowledged: {burst.unacked[:5]}")
    h.check(len(burst.acked) == BURST, f"only {len(burst.acked)} of {BURST} acknowledged")

    sender_pos = final_order.index(sender)
    behind = final_order[sender_pos + 1:]
    inboxes = {a.name: inbox(a) for a in live}
    for a in live:
        dup = {i: n for i, n in id_counts(inboxes[a.name]).items() if n != 1}
        h.check(not dup, f"{a.name} holds command ids more than once: {dup}")
    ids = [rec["id"] for _t, rec, _s in burst.acked]
    h.check(len(set(ids)) == len(ids), f"two acknowledged sends got the same id: {ids}")
    for text, rec, _s in burst.acked:
        h.check(rec["command"] == text and rec["sender"]["address"] ==
                f"{sender.addr}:{sender.api_port}", f"record {rec} for {text!r}")
        h.check(rec["settled"] is True and rec["pending"] == 0,
                f"command {rec['id']} acknowledged unsettled: {rec}")
        ranks = [r["rank"] for r in rec["recipients"]]
        sr = rec["sender"]["rank"]
        h.check(ranks == list(range(sr + 1, sr + 1 + len(ranks))),
                f"command {rec['id']}: recipient ranks {ranks} after sender rank {sr}")
        delivered = {r.get("id") for r in rec["recipients"] if r["state"] == "delivered"}
        for r in rec["recipients"]:
            if r["state"] != "delivered":
                h.check(r.get("id") == leader.id, f"command {rec['id']} not delivered to a "
                                                  f"live member: {r}")
        for a in behind:
            h.check(a.id in delivered, f"command {rec['id']} ({text}) not delivered to "
                                       f"{a.name}, ranked after the sender: {rec}")
        for a in live:
            has = rec["id"] in id_counts(inboxes[a.name])
            h.check(has == (a.id in delivered),
                    f"command {rec['id']} on {a.name}: held {has}, but its record says "
                    f"delivered to {a.name}: {a.id in delivered}: {rec}")
    h.log(f"all {len(ids)} acknowledged commands delivered exactly once to every live member "
          f"behind the sender ({[a.name for a in behind]}), nowhere else")


if __name__ == "__main__":
    h.run_main(main)
