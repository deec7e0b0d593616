#!/usr/bin/env python3
"""Webhook timers fire once, never early, from whichever nodes are alive, and
every node reads back the same record.

On a 3-node cluster (--bootstrap-expect 3), with a webhook receiver in this
process on 127.0.0.1:
  * API: the seed's POST /timer/ and /timers answer {"id", "time_left"} and
    GET /timer/{id} {"id", "status", "time_left"}; a bad body (wrong type,
    negative, over 10 years, not an http(s) URL, not JSON) is 422 with a
    "detail", an id that is not a UUID 422, an unknown one 404. The native
    POST /v1/timers says what is wrong with bad input (400) and an over-size
    body (413), and creates nothing then.
  * 300 timers created through all three nodes (half through the seed's API,
    half native, due 2-4 s later) are each received once, at <url>/<id> for
    the seed's, none before its due time; every node then reads "done" with
    one attempt; more than one node fired; listing the done timers page by
    page (limit 70) gives each once.
  * A receiver answering 500 then 200: retried, done after 2 attempts. One
    that never answers: failed after the policy's 2 attempts.
  * An idempotency key repeated returns the first timer. Cancel while
    waiting: cancelled, and not received; a second cancel 409. Reschedule:
    received at the new time.
  * kill -9 of the leader while 100 timers are pending: every one received;
    a repeat only from the killed node (sent, then killed before recording).
  * kill -9 of every node, then a restart after the due times passed: every
    pending timer is received once.
  * CLI: synod timers add / get / list / cancel.
"""

import http.server
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N = 3
FORM_BOUND_S = 20.0
FIRE_BOUND_S = 30.0


class Receiver:
    """Records every webhook: path, headers and when it arrived (ns)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []          # dicts
        self.flaky_seen = set()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                now = time.time_ns()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urllib.parse.urlparse(self.path).path
                call = {"path": path, "at": now, "body": body,
                        "id": self.headers.get("Synod-Timer-Id"),
                        "due": int(self.headers.get("Synod-Due-Nanos") or 0),
                        "attempt": int(self.headers.get("Synod-Attempt") or 0),
                        "node": self.headers.get("Synod-Node"),
                        "idempotency": self.headers.get("Idempotency-Key")}
                with receiver.lock:
                    receiver.calls.append(call)
                    status = 200
                    if path.startswith("/flaky/") and call["id"] not in receiver.flaky_seen:
                        receiver.flaky_seen.add(call["id"])
                        status = 500
                if path.startswith("/never/"):
                    time.sleep(1.5)  # past the timer's timeout
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def by_id(self):
        with self.lock:
            calls = list(self.calls)
        out = {}
        for c in calls:
            out.setdefault(c["id"], []).append(c)
        return out


def post(agent, path, body, headers=None, timeout=10.0):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return h.http_request(agent.addr, agent.api_port, "POST", path, body=data,
                          headers=headers or {}, timeout=timeout)


def get_timer(agent, tid):
    r = h.http_request(agent.addr, agent.api_port, "GET", "/v1/timers/" + tid, timeout=5.0)
    h.check(r.status == 200, f"GET /v1/timers/{tid} on {agent.name}: {r}")
    return r.json()


def create_native(agent, body, headers=None):
    r = post(agent, "/v1/timers", body, headers)
    h.check(r.status == 200, f"POST /v1/timers {body} on {agent.name}: {r}")
    return r.json()


def wait_received(receiver, ids, what, bound=FIRE_BOUND_S):
    ids = set(ids)
    h.wait_for(lambda: ids <= set(receiver.by_id()), bound, interval=0.1,
               what=f"{len(ids)} webhooks ({what}); "
                    f"missing {len(ids - set(receiver.by_id()))}")


def wait_status(agents, ids, status, what):
    def all_there():
        for a in agents:
            for tid in ids:
                if get_timer(a, tid)["status"] != status:
                    return False
        return True
    h.wait_for(all_there, 20.0, interval=0.3, what=f"every node to read {status} ({what})")


def api_checks(agents, receiver):
    a = agents[0]
    r = post(a, "/timer/", {"hours": 0, "minutes": 0, "seconds": 30, "url": receiver.url("/ok")})
    h.check(r.status == 200 and r.json().get("time_left") == 30, f"seed POST /timer/: {r}")
    tid = r.json()["id"]
    h.check(uuid.UUID(tid) is not None, f"the id is a UUID: {tid}")
    for path in ("/timer/" + tid, "/timers/" + tid):
        g = h.http_request(agents[1].addr, agents[1].api_port, "GET", path, timeout=5.0)
        body = g.json() if g.status == 200 else {}
        h.check(g.status == 200 and body.get("id") == tid and body.get("status") == "waiting"
                and 0 < body.get("time_left", -1) <= 30, f"seed GET {path}: {g}")
    r = post(agents[2], "/timers", {"seconds": 30, "url": receiver.url("/ok")})
    h.check(r.status == 200 and r.json().get("time_left") == 30, f"seed POST /timers: {r}")
    for body in ({"seconds": "ten", "url": receiver.url("/ok")},
                 {"seconds": -1, "url": receiver.url("/ok")},
                 {"hours": 24 * 366 * 11, "url": receiver.url("/ok")},
                 {"seconds": 1, "url": "ftp://127.0.0.1/x"},
                 {"seconds": 1, "url": "/relative"},
                 {"seconds": 1},
                 b"not json", b"[1, 2]"):
        r = post(a, "/timer/", body)
        h.check(r.status == 422 and r.json().get("detail"), f"seed POST {body!r}: {r}")
    r = h.http_request(a.addr, a.api_port, "GET", "/timer/not-a-uuid", timeout=5.0)
    h.check(r.status == 422 and r.json().get("detail"), f"GET of a non-UUID: {r}")
    r = h.http_request(a.addr, a.api_port, "GET", "/timer/" + str(uuid.uuid4()), timeout=5.0)
    h.check(r.status == 404 and r.json().get("detail"), f"GET of an unknown UUID: {r}")
    for body in ({"url": receiver.url("/ok")},
                 {"url": receiver.url("/ok"), "delay": "soon"},
                 {"url": receiver.url("/ok"), "delay": "1s", "at": 5},
                 {"url": receiver.url("/ok"), "at": "2026-13-01T00:00:00Z"},
                 {"url": receiver.url("/ok"), "cron": "61 * * * *"},
                 {"url": receiver.url("/ok"), "delay": 1, "method": "BREW"},
                 {"url": receiver.url("/ok"), "delay": 1, "headers": {"Idempotency-Key": "x"}},
                 {"url": receiver.url("/ok"), "delay": 1, "retry": {"max_attempts": 0}}):
        r = post(a, "/v1/timers", body)
        h.check(r.status == 400 and r.json().get("error"), f"native POST {body}: {r}")
    r = post(a, "/v1/timers", {"url": receiver.url("/ok"), "delay": 1, "body": "x" * 70000})
    h.check(r.status == 413, f"a body over 64 KiB: {r}")
    h.wait_for(lambda: all(h.http_get_json(x.addr, x.api_port, "/v1/timers/stats")["total"] == 2
                           for x in agents), 5.0, what="every node to hold the two good timers")
    time.sleep(0.3)
    for x in agents:
        stats = h.http_get_json(x.addr, x.api_port, "/v1/timers/stats")
        h.check(stats["total"] == 2 and stats["waiting"] == 2,
                f"only the two good timers exist on {x.name}: {stats}")
    h.log("API: seed and native creates, reads and refusals as expected")


def fire_many(agents, receiver):
    now = time.time()
    ids, seed_ids = [], set()
    for i in range(300):
        a = agents[i % N]
        if i % 2 == 0:
            r = post(a, "/timer/", {"seconds": 2 + i % 3, "url": receiver.url("/ok")})
            h.check(r.status == 200, f"seed create {i}: {r}")
            ids.append(r.json()["id"])
            seed_ids.add(r.json()["id"])
        else:
            ids.append(create_native(a, {"url": receiver.url("/ok/native"),
                                         "at": now + 2.0 + (i % 200) / 100.0})["id"])
    wait_received(receiver, ids, "300 timers")
    time.sleep(0.5)  # a duplicate would come now
    calls = receiver.by_id()
    twice = [t for t in ids if len(calls[t]) != 1]
    h.check(not twice, f"timers received more than once: "
                       f"{[[(c['node'][:8], c['attempt'], c['at']) for c in calls[t]] for t in twice[:5]]}")
    early = [(t, calls[t][0]["at"] - calls[t][0]["due"]) for t in ids
             if calls[t][0]["at"] < calls[t][0]["due"]]
    h.check(not early, f"timers received before their due time (ns): {early[:5]}")
    wrong_path = [t for t in seed_ids if calls[t][0]["path"] != "/ok/" + t]
    h.check(not wrong_path, f"seed timers not sent to <url>/<id>: {wrong_path[:3]}")
    h.check(all(calls[t][0]["idempotency"] == t for t in ids), "Idempotency-Key is the timer id")
    late = sorted((calls[t][0]["at"] - calls[t][0]["due"]) / 1e6 for t in ids)
    firing_nodes = {calls[t][0]["node"] for t in ids}
    h.check(len(firing_nodes) >= 2, f"firing is spread over the nodes: {firing_nodes}")
    wait_status(agents, ids[:30], "done", "a sample of 30")
    def paged():
        seen, after = [], None
        for _ in range(100):
            path = "/v1/timers?status=done&limit=70" + (f"&after={after}" if after else "")
            page = h.http_get_json(agents[0].addr, agents[0].api_port, path)
            seen += [t["id"] for t in page["timers"]]
            after = page["next"]
            if after is None:
                return seen
        h.fail("more than 100 pages")
    h.wait_for(lambda: set(ids) <= set(paged()), 10.0, what="every timer done in the listing")
    listed = paged()
    h.check(len(listed) == len(set(listed)), "a timer listed on two pages")
    rec = get_timer(agents[2], ids[1])
    h.check(len(rec["history"]) == 1 and rec["history"][0]["http_status"] == 200,
            f"one recorded attempt: {rec}")
    h.log(f"300 timers received once each, none early; lateness p50 {late[150]:.1f} ms, "
          f"max {late[-1]:.1f} ms; fired by {len(firing_nodes)} nodes")


def retries_and_changes(agents, receiver):
    a, b = agents[0], agents[1]
    flaky = create_native(a, {"url": receiver.url("/flaky/x"), "delay": "500ms", "append_id": True,
                              "retry": {"max_attempts": 3, "initial_backoff": "300ms"}})["id"]
    never = create_native(b, {"url": receiver.url("/never/x"), "delay": "500ms",
                              "timeout": "300ms",
                              "retry": {"max_attempts": 2, "initial_backoff": "200ms"}})["id"]
    first = create_native(a, {"url": receiver.url("/ok"), "delay": "60s",
                              "idempotency_key": "order-17"})
    again = create_native(b, {"url": receiver.url("/ok"), "delay": "60s"},
                          headers={"Idempotency-Key": "order-17"})
    h.check(again["id"] == first["id"], f"a repeated idempotency key returns the first timer: "
                                        f"{first['id']} then {again['id']}")
    cancel = create_native(a, {"url": receiver.url("/cancelled"), "delay": "2s"})["id"]
    r = h.http_request(b.addr, b.api_port, "DELETE", "/v1/timers/" + cancel, timeout=10.0)
    h.check(r.status == 200 and r.json()["status"] == "cancelled", f"cancel: {r}")
    r = h.http_request(a.addr, a.api_port, "DELETE", "/v1/timers/" + cancel, timeout=10.0)
    h.check(r.status == 409 and "cancelled" in r.json().get("error", ""), f"cancel twice: {r}")
    moved = create_native(a, {"url": receiver.url("/moved"), "delay": "1h"})["id"]
    t0 = time.time_ns()
    r = h.http_request(b.addr, b.api_port, "PATCH", "/v1/timers/" + moved,
                       body=json.dumps({"delay": "1s"}).encode(), timeout=10.0)
    h.check(r.status == 200 and r.json()["time_left"] <= 1, f"reschedule: {r}")
    wait_received(receiver, [flaky, moved], "flaky and rescheduled")
    wait_status(agents, [flaky], "done", "the flaky receiver")
    wait_status(agents, [never], "failed", "the silent receiver")
    rec = get_timer(agents[2], flaky)
    h.check([x.get("http_status") for x in rec["history"]] == [500, 200],
            f"flaky: 500 then 200: {rec['history']}")
    rec = get_timer(agents[2], never)
    h.check(len(rec["history"]) == 2 and all("error" in x for x in rec["history"]),
            f"silent receiver: two attempts that timed out: {rec['history']}")
    moved_at = receiver.by_id()[moved][0]["at"]
    h.check(t0 + 0.9e9 <= moved_at <= t0 + 5e9, f"rescheduled timer received "
                                                 f"{(moved_at - t0) / 1e9:.2f} s after the PATCH")
    time.sleep(0.5)
    h.check(cancel not in receiver.by_id(), "a cancelled timer was received")
    h.log("retry then done, failed after the policy, idempotency key, cancel, reschedule: ok")


def kill_leader(agents, receiver):
    leader = h.leader_of(agents)
    h.check(leader is not None, "no agreed leader")
    now = time.time()
    ids = [create_native(agents[i % N], {"url": receiver.url("/crash"),
                                         "at": now + 1.5 + i / 66.0})["id"] for i in range(100)]
    time.sleep(max(0.0, now + 1.6 - time.time()))
    leader.kill()
    h.log(f"killed the leader {leader.name} while 100 timers were due")
    wait_received(receiver, ids, "after the leader's kill")
    time.sleep(1.0)
    calls = receiver.by_id()
    repeats = [t for t in ids if len(calls[t]) > 1]
    bad = [t for t in repeats if leader.id not in {c["node"] for c in calls[t]}]
    h.check(not bad, f"timers received twice, neither time from the killed node: {bad[:5]}")
    worst = max((calls[t][-1]["at"] - calls[t][-1]["due"]) / 1e9 for t in ids)
    leader.start()
    leader.wait_healthy()
    h.wait_converged(agents, FORM_BOUND_S, members=N, voters=N, what="the cluster whole again")
    h.log(f"every timer received after the leader's kill ({len(repeats)} repeated by the "
          f"killed node; the latest {worst:.2f} s after its due time)")


def kill_everyone(agents, receiver):
    now = time.time()
    ids = [create_native(agents[i % N], {"url": receiver.url("/outage"), "at": now + 3.0})["id"]
           for i in range(50)]
    for a in agents:
        a.kill()
    h.log("killed every node before 50 timers were due")
    time.sleep(max(0.0, now + 4.0 - time.time()))
    h.check(not set(ids) & set(receiver.by_id()), "a timer fired while every node was down")
    for a in agents:
        a.start()
    for a in agents:
        a.wait_healthy()
    wait_received(receiver, ids, "after the restart")
    time.sleep(1.0)
    calls = receiver.by_id()
    twice = [t for t in ids if len(calls[t]) != 1]
    h.check(not twice, f"timers received more than once after the restart: "
                       f"{[[(c['node'][:8], c['attempt'], c['at']) for c in calls[t]] for t in twice[:3]]}")
    h.log("every timer due during the outage received once after the restart")


def cli_checks(synod, agents, receiver):
    node = f"{agents[0].addr}:{agents[0].api_port}"
    r = h.run_cli([synod, "timers", "add", "--in", "1s", "--url", receiver.url("/cli"),
                   "--node", node, "--json"])
    h.check(r.returncode == 0, f"timers add: {r.stderr}")
    tid = json.loads(r.stdout)["id"]
    wait_received(receiver, [tid], "the CLI's timer")
    h.wait_for(lambda: json.loads(h.run_cli([synod, "timers", "get", tid, "--node", node,
                                             "--json"]).stdout)["status"] == "done",
               10.0, what="the CLI's timer done")
    r = h.run_cli([synod, "timers", "get", tid, "--node", node])
    h.check(r.returncode == 0 and "done" in r.stdout and "HTTP 200" in r.stdout,
            f"timers get: {r.stdout} {r.stderr}")
    r = h.run_cli([synod, "timers", "list", "--status", "done", "-n", "1000", "--node", node])
    h.check(r.returncode == 0 and tid in r.stdout, f"timers list: {r.stdout[-500:]} {r.stderr}")
    r = h.run_cli([synod, "timers", "cancel", tid, "--node", node])
    h.check(r.returncode == 1 and "409" in r.stderr, f"cancel of a done timer: {r.stderr}")
    r = h.run_cli([synod, "timers", "add", "--url", receiver.url("/cli"), "--node", node])
    h.check(r.returncode == 2, f"add without a time: {r.returncode} {r.stderr}")
    h.log("CLI: add, get, list, cancel as expected")


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(N)
    bport = h.free_udp_port()
    h.log(f"addresses {addrs}, broadcast port {bport}")
    receiver = Receiver()
    agents = h.start_cluster_agents(args.synod, addrs, bport, ["--bootstrap-expect", str(N)])
    h.wait_converged(agents, FORM_BOUND_S, members=N, voters=N)
    api_checks(agents, receiver)
    fire_many(agents, receiver)
    retries_and_changes(agents, receiver)
    kill_leader(agents, receiver)
    kill_everyone(agents, receiver)
    cli_checks(args.synod, agents, receiver)


if __name__ == "__main__":
    h.run_main(main)
