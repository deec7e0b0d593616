#!/usr/bin/env python3
"""The event stream (GET /v1/events, Server-Sent Events) and `synod events`.

Asserts, on 3 agents with --bootstrap-expect 3:
  * a stream opened with ?since=0 replays the node's events: every frame has an id, an event
    type and JSON data repeating both; ids strictly increase; it holds member.joined for each
    of the 3 members, leader.changed naming the leader and master.changed naming the master;
  * live: a command sent from the member ranked 0 arrives as command.sent (its text, 2
    recipients) and then command.settled (2 delivered) within 10 s, in that order; a timer
    whose webhook answers 200 arrives as timer.fired (http_status 200, a lateness) on the
    stream of a node that did not fire it;
  * resuming: a new stream with Last-Event-ID of the last event read starts after it (no event
    twice) and holds the events published while no stream was open; ?follow=false ends the
    stream after the replay; a bad Last-Event-ID, since or follow is answered 400 with a JSON
    error and the node keeps serving;
  * a member killed with -9 arrives as member.dead (maybe after member.suspect) within 20 s;
  * `synod events -n 3 --json` prints the 3 newest events, as JSON with increasing ids, and
    `synod events` (text) prints one line per event naming its type.
"""

import http.client
import http.server
import json
import os
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FORM_BOUND_S = 30.0
EVENT_BOUND_S = 10.0
DEAD_BOUND_S = 20.0


class Stream:
    """A Server-Sent Events client on a raw HTTP connection, parsing frames as they come."""

    def __init__(self, agent, query="", last_event_id=None):
        self.conn = http.client.HTTPConnection(agent.addr, agent.api_port, timeout=30)
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        self.conn.request("GET", "/v1/events" + query, headers=headers)
        self.response = self.conn.getresponse()
        if self.response.status != 200:
            h.fail(f"/v1/events{query} answered {self.response.status}: "
                   f"{self.response.read()!r}")
        ctype = self.response.getheader("Content-Type", "")
        h.check(ctype.startswith("text/event-stream"), f"content type {ctype!r}")
        self.events = []
        self.ended = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        frame = {}
        try:
            while True:
                line = self.response.fp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if line == "":
                    if "data" in frame:
                        with self.lock:
                            self.events.append(frame)
                    frame = {}
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    frame[field] = value[1:] if value.startswith(" ") else value
        except (OSError, ValueError):
            pass
        self.ended = True

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def wait(self, predicate, what, bound=EVENT_BOUND_S):
        def found():
            for event in self.snapshot():
                data = json.loads(event["data"])
                if predicate(data):
                    return data
            return None
        return h.wait_for(found, bound, interval=0.05, what=what)

    def close(self):
        self.conn.close()


def check_frames(frames):
    last = 0
    for frame in frames:
        h.check("id" in frame and "event" in frame, f"frame without id or event: {frame}")
        data = json.loads(frame["data"])
        h.check(data["id"] == int(frame["id"]) and data["type"] == frame["event"],
                f"frame and data disagree: {frame}")
        h.check(int(frame["id"]) > last, f"ids do not increase: {last} then {frame['id']}")
        h.check(isinstance(data.get("time"), (int, float)) and data.get("node"),
                f"no time or node: {data}")
        last = int(frame["id"])
    return last


class Receiver:
    def __init__(self):
        receiver = self
        self.paths = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(3)
    agents = h.start_cluster_agents(args.synod, addrs, h.free_udp_port(),
                                    extra_args=["--bootstrap-expect", "3"])
    views = h.wait_for(lambda: h.converged(agents, members=3), FORM_BOUND_S,
                       what="3 agents form one cluster")
    view = next(iter(views.values()))
    leader_id = view["leader"]["id"]
    for a in agents:
        a.id = a.get("/v1/node")["id"]
    ranks = agents[0].get("/v1/ranks?stale")["ranks"]
    first = next(a for a in agents if a.id == ranks[0]["id"])
    watcher = next(a for a in agents if a is not first)

    # Replay.
    master = h.wait_for(lambda: (watcher.get("/v1/clock").get("master") or {}).get("id"), 15,
                        what="a master clock")
    stream = Stream(watcher, "?since=0")
    stream.wait(lambda d: d["type"] == "master.changed", "master.changed replayed")
    replay = stream.snapshot()
    last = check_frames(replay)
    types = [json.loads(f["data"]) for f in replay]
    joined = {d["member"]["id"] for d in types if d["type"] == "member.joined"}
    h.check(joined == {a.id for a in agents}, f"member.joined for {joined}")
    h.check(any(d["type"] == "leader.changed" and (d["leader"] or {}).get("id") == leader_id
                for d in types), "no leader.changed naming the leader")
    h.check(any(d["type"] == "master.changed" and (d["master"] or {}).get("id") == master
                for d in types), "no master.changed naming the master")
    h.log(f"replayed {len(replay)} events, last id {last}")

    # Live: a command, then a timer.
    text = "EVENTS_" + uuid.uuid4().hex[:8]
    r = h.http_request(first.addr, first.api_port, "POST", "/v1/commands",
                       json.dumps({"command": text}), timeout=20)
    h.check(r.status == 200, f"POST /v1/commands: {r}")
    command_id = r.json()["id"]
    sent_event = stream.wait(lambda d: d["type"] == "command.sent" and d["command"] == text,
                             "command.sent")
    h.check(sent_event["recipients"] == 2 and sent_event["command_id"] == command_id,
            f"command.sent: {sent_event}")
    settled = stream.wait(lambda d: d["type"] == "command.settled" and
                          d["command_id"] == command_id, "command.settled")
    h.check(settled["delivered"] == 2 and settled["failed"] == 0, f"settled: {settled}")
    h.check(settled["id"] > sent_event["id"], "settled before sent")

    receiver = Receiver()
    r = h.http_request(watcher.addr, watcher.api_port, "POST", "/v1/timers",
                       json.dumps({"url": receiver.url, "delay": "1s"}), timeout=10)
    h.check(r.status in (200, 201), f"POST /v1/timers: {r}")
    timer_id = r.json()["id"]
    fired = stream.wait(lambda d: d["type"] == "timer.fired" and d["timer_id"] == timer_id,
                        "timer.fired", bound=15)
    h.check(fired["http_status"] == 200 and isinstance(fired["lateness_ms"], (int, float))
            and fired["by"], f"timer.fired: {fired}")
    check_frames(stream.snapshot())

    # Resume after a gap.
    last = int(stream.snapshot()[-1]["id"])
    stream.close()
    text2 = "EVENTS_" + uuid.uuid4().hex[:8]
    r = h.http_request(first.addr, first.api_port, "POST", "/v1/commands",
                       json.dumps({"command": text2}), timeout=20)
    h.check(r.status == 200, f"second command: {r}")
    resumed = Stream(watcher, last_event_id=last)
    resumed.wait(lambda d: d["type"] == "command.sent" and d["command"] == text2,
                 "the command sent while no stream was open")
    frames = resumed.snapshot()
    h.check(int(frames[0]["id"]) > last, f"resumed at {frames[0]['id']}, after {last}")
    check_frames(frames)

    finite = Stream(watcher, "?since=0&follow=false")
    h.wait_for(lambda: finite.ended, 5, what="?follow=false ends the stream")
    h.check(len(finite.snapshot()) > 0, "?follow=false replayed nothing")

    for headers, query in (({"Last-Event-ID": "abc"}, ""), ({}, "?since=-1"),
                           ({}, "?follow=maybe")):
        r = h.http_request(watcher.addr, watcher.api_port, "GET", "/v1/events" + query,
                           headers=headers)
        h.check(r.status == 400 and "error" in r.json(), f"bad input {headers}{query}: {r}")

    # A member dies.
    victim = next(a for a in agents if a is not watcher and a.id != leader_id)
    victim.kill()
    dead = resumed.wait(lambda d: d["type"] == "member.dead" and d["member"]["id"] == victim.id,
                        "member.dead", bound=DEAD_BOUND_S)
    suspect = [json.loads(f["data"]) for f in resumed.snapshot()]
    h.log(f"member.dead after kill; suspect first: "
          f"{any(d['type'] == 'member.suspect' and d['member']['id'] == victim.id for d in suspect)}"
          f" (event {dead['id']})")
    resumed.close()

    # The CLI.
    node = f"{watcher.addr}:{watcher.api_port}"
    out = h.run_cli([args.synod, "events", "--node", node, "-n", "3", "--json"])
    h.check(out.returncode == 0, f"synod events --json: {out.stderr}")
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    h.check(len(lines) == 3 and lines[0]["id"] < lines[1]["id"] < lines[2]["id"],
            f"synod events -n 3 --json: {out.stdout}")
    out = h.run_cli([args.synod, "events", "--node", node, "-n", "5"])
    h.check(out.returncode == 0 and len(out.stdout.splitlines()) == 5 and
            "member.dead" in out.stdout, f"synod events -n 5: {out.stdout} {out.stderr}")
    out = h.run_cli([args.synod, "events", "--node", node, "--since", "x"])
    h.check(out.returncode == 2 and "--since" in out.stderr, f"--since x: {out.stderr}")


if __name__ == "__main__":
    h.run_main(main)
