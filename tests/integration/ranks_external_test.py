#!/usr/bin/env python3
"""Ranks and commands with seed-style external clients (seed_rank_client.py) among members.

Asserts:
  * 3 agents with --bootstrap-expect 3 rank their members 0-2 (same table on every node);
  * two seed clients, each with its own receive-command server on a loopback address of
    the test's block, assign themselves through different nodes and get ranks 3 and 4;
    assigning again (through yet another node) returns the same rank; every node's
    /v1/ranks shows them as kind "external", id null, with the address they registered;
  * hostile input: /assign-rank with {}, {"ip_port": 5}, {"ip_port": "no-port"} and a
    non-JSON body, /send-command without a command and from an unranked ip_port -> 400 with
    a JSON {"error": ...}; the rank table is unchanged;
  * member rank 0 sends with POST /v1/commands: the record's recipients are ranks 1-4, the
    two externals with their addresses, all "delivered"; each client got exactly one
    POST /receive-command {"sender": 0, "command": ...} with an Idempotency-Key header
    (none more a second later);
  * client rank 3 sends with the seed's POST /send-command: the answer is exactly
    {"<rank 4 address>": {"success": true}}; rank 4 got {"sender": 3, ...} once; no member
    holds a command from rank 3;
  * DELETE /unassign-rank (JSON body) of rank 3 -> {"success": true, "was_ranked": true}
    (again: success, was_ranked false); on every node the other client moves up to rank 3;
  * that client then answers 500 to every receive-command; member rank 0 sends: after 3
    failed calls in a row (the default --external-failures), all with the same
    Idempotency-Key, and no call after those, it is unranked on every node within 15 s,
    and the POST /v1/commands answer (which comes after that) shows its delivery "failed"
    with an error, the members' "delivered";
  * the seed client program (seed_rank_client.py run as a process) assigns itself at
    start, receives a command (its journal file has it), and on SIGTERM un-assigns
    itself and exits 0: gone from every node's /v1/ranks; an in-process SeedClient's
    close() un-assigns likewise.
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import seed_rank_client as seed  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
N = 3
FORM_BOUND_S = 20.0
UNRANK_BOUND_S = 15.0
SEND_TIMEOUT_S = 40.0
QUIET_S = 1.0          # how long to watch for a duplicate delivery


def api(agent):
    return f"{agent.addr}:{agent.api_port}"


def expect_400(client, method, path, label, via, body=None, raw=None):
    r = client.request(method, path, body=body, raw=raw, via=via, timeout=10.0)
    h.check(r.status == 400, f"{label}: {method} {path} -> {r}, want 400")
    err = r.doc.get("error") if isinstance(r.doc, dict) else None
    h.check(isinstance(err, str) and err, f"{label}: 400 without a JSON error: {r.body[:200]!r}")


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(N + 3)           # 3 agents, then addresses for the clients
    bport = h.free_udp_port()
    h.log(f"addresses {addrs[0]}..{addrs[-1]}, broadcast port {bport}")
    agents = h.start_cluster_agents(args.synod, addrs[:N], bport, ["--bootstrap-expect", str(N)])
    h.wait_converged(agents, FORM_BOUND_S, members=N, voters=N)
    by_id = {a.id: a for a in agents}
    entries = h.wait_ranks(agents, lambda es: len(es) == N and {e["id"] for e in es} == set(by_id)
                           and all(e["kind"] == "member" for e in es),
                           FORM_BOUND_S, f"{N} member ranks")
    members = [by_id[e["id"]] for e in entries]   # index = rank
    h.log(f"member ranks: {[a.name for a in members]}")
    servers = [api(a) for a in agents]

    clients = []

    def new_client(addr):
        c = seed.SeedClient(addr, h.free_tcp_port(addr), servers=servers,
                            timeout=SEND_TIMEOUT_S).start()
        clients.append(c)
        return c
    try:
        run(agents, members, servers, addrs, new_client)
    finally:
        for c in clients:
            c.close(unassign=False)


def run(agents, members, servers, addrs, new_client):
    a = new_client(addrs[N])
    b = new_client(addrs[N + 1])
    h.log(f"seed clients A {a.ip_port}, B {b.ip_port}")

    # Assign through different nodes; again is the same rank.
    ra = a.assign(via=servers[0])
    rb = b.assign(via=servers[1])
    h.check((ra, rb) == (N, N + 1), f"clients got ranks {ra}, {rb}, want {N}, {N + 1}")
    h.check(a.assign(via=servers[2]) == N, "assigning A again changed its rank")
    h.check(b.assign(via=servers[0]) == N + 1, "assigning B again changed its rank")

    def with_externals(es):
        return (len(es) == N + 2 and [e["rank"] for e in es] == list(range(N + 2))
                and [e["id"] for e in es[:N]] == [m.id for m in members]
                and [(e["kind"], e["id"], e["address"]) for e in es[N:]]
                == [("external", None, a.ip_port), ("external", None, b.ip_port)])
    h.wait_ranks(agents, with_externals, 10.0, "the two externals on every node")
    h.log(f"A rank {ra} (via {agents[0].name}), B rank {rb} (via {agents[1].name}); "
          f"idempotent, same table on every node")

    # Hostile input.
    probe = seed.SeedClient(addrs[N + 2], h.free_tcp_port(addrs[N + 2]), servers=servers)
    expect_400(probe, "POST", "/assign-rank", "assign {}", servers[2], body={})
    expect_400(probe, "POST", "/assign-rank", "assign ip_port 5", servers[2], body={"ip_port": 5})
    expect_400(probe, "POST", "/assign-rank", "assign no-port", servers[1],
               body={"ip_port": "no-port"})
    expect_400(probe, "POST", "/assign-rank", "assign non-JSON", servers[0], raw=b"ip_port=x:1")
    expect_400(probe, "POST", "/send-command", "send without command", servers[0],
               body={"ip_port": a.ip_port})
    expect_400(probe, "POST", "/send-command", "send from unranked", servers[1],
               body={"command": "START_TRANSMIT", "ip_port": probe.ip_port})
    h.wait_ranks(agents, with_externals, 2.0, "the rank table unchanged by hostile input")
    h.log("hostile assign/send requests answered 400 with a JSON error")

    # Member rank 0 sends: both externals get exactly one receive-command.
    rec = h.post_command_ok(members[0], "START_TRANSMIT")
    got = [(r["rank"], r["kind"], r["address"], r["state"]) for r in rec["recipients"]]
    want = ([(k, "member", api(members[k]), "delivered") for k in range(1, N)]
            + [(N, "external", a.ip_port, "delivered"), (N + 1, "external", b.ip_port,
                                                          "delivered")])
    h.check(got == want and rec["settled"] is True,
            f"recipients {got}, want {want}: {rec}")
    time.sleep(QUIET_S)
    for c, name in ((a, "A"), (b, "B")):
        calls = c.all_calls()
        h.check(len(calls) == 1, f"{name} got {len(calls)} receive-command calls, want 1: "
                                 f"{[(x['answered'], x['body']) for x in calls]}")
        got = calls[0]
        h.check(got["answered"] == 200 and got["doc"] == {"sender": 0,
                                                          "command": "START_TRANSMIT"},
                f"{name} received {got['body']!r}, want sender 0 START_TRANSMIT")
        h.check(got["headers"].get("idempotency-key"),
                f"{name}: receive-command without an Idempotency-Key header: {got['headers']}")
    h.log(f"command {rec['id']} from rank 0 reached A and B once each "
          f"(Idempotency-Key {a.all_calls()[0]['headers']['idempotency-key']!r})")

    # External rank 3 sends through the seed API: only rank 4 gets it.
    results = a.send_command("STOP_TRANSMIT", via=servers[2])
    h.check(results == {b.ip_port: {"success": True}},
            f"send-command from rank {N}: {results}, want {{{b.ip_port!r}: success}}")
    time.sleep(QUIET_S)
    h.check(len(a.all_calls()) == 1, f"the sender A received its own command: "
                                     f"{[x['body'] for x in a.all_calls()]}")
    calls = b.all_calls()
    h.check(len(calls) == 2 and calls[1]["doc"] == {"sender": N, "command": "STOP_TRANSMIT"},
            f"B's receive-command calls: {[(x['answered'], x['body']) for x in calls]}")
    h.check(calls[0]["headers"].get("idempotency-key") != calls[1]["headers"].get(
        "idempotency-key"), "two different commands with the same Idempotency-Key")
    for m in members:
        doc = m.get("/v1/commands?since=0&limit=1000")
        from3 = [c for c in doc["commands"] if c["sender_rank"] == N]
        h.check(not from3, f"member {m.name} holds a command from rank {N}: {from3}")
    h.log(f"send-command from rank {N} reached exactly rank {N + 1}")

    # Unassign A: B moves up.
    r = a.request("DELETE", "/unassign-rank", {"ip_port": a.ip_port}, via=servers[1])
    h.check(r.status == 200 and isinstance(r.doc, dict) and r.doc.get("success") is True,
            f"DELETE /unassign-rank of A: {r}")
    a.assigned = False
    h.check(r.doc.get("was_ranked") is True, f"unassign of a ranked client: {r.doc}")
    r = a.request("DELETE", "/unassign-rank", {"ip_port": a.ip_port}, via=servers[2])
    h.check(r.status == 200 and isinstance(r.doc, dict) and r.doc.get("success") is True
            and r.doc.get("was_ranked") is False,
            f"DELETE /unassign-rank of A again: {r}, want success true, was_ranked false")
    h.wait_ranks(agents, lambda es: len(es) == N + 1 and es[N]["address"] == b.ip_port
                 and es[N]["rank"] == N and es[N]["kind"] == "external",
                 10.0, f"B moved up to rank {N}")
    h.log(f"A unassigned ({r.doc}); B now rank {N} on every node")

    # B fails every receive-command: unranked after 3 failures in a row.
    b.set_failing(True)
    calls_before = len(b.all_calls())
    t0 = time.monotonic()
    rec = h.post_command_ok(members[0], "PAUSE_TRANSMIT")
    took = time.monotonic() - t0
    states = {r["address"]: (r["state"], r.get("error")) for r in rec["recipients"]}
    h.check(rec["settled"] is True and states.get(b.ip_port, ("?",))[0] == "failed"
            and states[b.ip_port][1],
            f"after B failed: its delivery {states.get(b.ip_port)}, want failed with an "
            f"error: {rec}")
    h.check(all(states[api(m)][0] == "delivered" for m in members[1:]),
            f"members not delivered: {rec}")
    h.wait_ranks(agents, lambda es: len(es) == N and all(e["kind"] == "member" for e in es),
                 max(1.0, UNRANK_BOUND_S - took), "the failing client unranked")
    time.sleep(QUIET_S)                     # no call after the unranking
    calls = b.all_calls()[calls_before:]
    h.check(len(calls) == 3 and all(c["answered"] == 500 for c in calls),
            f"B's receive-command calls while failing: "
            f"{[(c['answered'], c['body']) for c in calls]}, want exactly 3 (answered 500)")
    keys = {c["headers"].get("idempotency-key") for c in calls}
    h.check(len(keys) == 1 and None not in keys,
            f"retries of one command with different Idempotency-Keys: {keys}")
    h.log(f"B unranked after {len(calls)} failed receive-command calls; the send answered "
          f"after {took:.2f} s with B {states[b.ip_port]}")
    b.assigned = False

    # The seed client program: assigns at start, receives, un-assigns on SIGTERM.
    cport = h.free_tcp_port(addrs[N])
    journal = os.path.join(h.make_tempdir("synod-it-seed-client-"), "received.jsonl")
    proc = h.spawn([sys.executable, os.path.join(HERE, "seed_rank_client.py"),
                    "--server", servers[1], "--server", servers[0],
                    "--bind", addrs[N], "--port", str(cport), "--journal", journal],
                   stdout=subprocess.PIPE, text=True)
    ev = {}
    for _ in range(20):                     # it prints "assign-failed" lines while it retries
        line = proc.stdout.readline()
        h.check(line, f"seed client program stopped printing (exit {proc.poll()})")
        ev = json.loads(line)
        if ev.get("event") != "assign-failed":
            break
    h.check(ev.get("event") == "assigned" and ev.get("rank") == N
            and ev.get("ip_port") == f"{addrs[N]}:{cport}",
            f"seed client program's first event {ev}, want assigned rank {N}")
    prog = f"{addrs[N]}:{cport}"
    h.wait_ranks(agents, lambda es: len(es) == N + 1 and es[N]["address"] == prog, 10.0,
                 "the program's client ranked")
    rec = h.post_command_ok(members[1], "RESTART_TRANSMIT")
    h.check([(r["address"], r["state"]) for r in rec["recipients"]]
            == [(api(members[2]), "delivered"), (prog, "delivered")],
            f"command from rank 1 to the program's client: {rec}")
    with open(journal) as f:
        lines = [json.loads(x) for x in f if x.strip()]
    h.check(len(lines) == 1 and lines[0]["sender"] == 1
            and lines[0]["command"] == "RESTART_TRANSMIT",
            f"the program's journal: {lines}")
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=10.0)
    except subprocess.TimeoutExpired:
        h.fail("the seed client program did not exit within 10 s of SIGTERM")
    rest = proc.stdout.read()
    h.check(code == 0 and '"unassigned"' in rest,
            f"seed client program exit {code}, output {rest!r}")
    h.wait_ranks(agents, lambda es: len(es) == N, 5.0, "the program's client un-assigned on exit")
    h.log("seed client program: assigned at start, received one command, un-assigned on "
          "SIGTERM")

    # An in-process client's close() un-assigns as well.
    c = new_client(addrs[N + 2])
    h.check(c.assign(via=servers[2]) == N, "a new client did not get rank N")
    c.close()
    h.check(not c.assigned, "close() did not un-assign")
    h.wait_ranks(agents, lambda es: len(es) == N, 5.0, "close() un-assigned the client")
    h.log("SeedClient.close() un-assigned")


if __name__ == "__main__":
    h.run_main(main)
