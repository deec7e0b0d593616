#!/usr/bin/env python3
"""A stand-alone client of the seed's rank API (Python 3 standard library only).

Written only from the seed's description of its clients, independently of Synod:

  * it serves `POST /receive-command` with a JSON body {"sender": <rank>, "command": <text>}
    and answers 200 {"success": true}; every call is kept in memory (with its headers) and,
    if a journal file is given, accepted commands are appended to it as JSON lines;
  * at start it asks the server for a rank: `POST /assign-rank {"ip_port": "<ip:port>"}`
    -> {"rank": n};
  * it sends commands: `POST /send-command {"command": X, "ip_port": "<ip:port>"}` ->
    {"<recipient ip:port>": {"success": bool}, ...};
  * on a graceful exit it gives its rank back: `DELETE /unassign-rank {"ip_port": ...}`
    -> {"success": true}.

For tests it can also answer 500 to every receive-command (set_failing(True), or --fail),
to check that a server drops a client that keeps failing.

Use from a test:

    c = SeedClient("127.9.9.7", 0, servers=["127.9.9.2:7400"]).start()
    rank = c.assign()                     # raises SeedError unless 200 {"rank": int}
    results = c.send_command("START_TRANSMIT")
    c.wait_received(1, timeout=5)
    c.close()                             # unassigns if assigned, stops the server

Or as a program (runs until SIGINT/SIGTERM, then unassigns and exits 0):

    seed_rank_client.py --server 127.9.9.2:7400 --bind 127.9.9.7 --port 5001 \
        [--journal FILE] [--send-every SECONDS] [--fail]

The program prints one JSON line per event on stdout ({"event": "assigned", "rank": n,
"ip_port": ...}, {"event": "received", ...}, {"event": "sent", ...}, {"event": "unassigned",
...}) so a test can follow it.
"""

import argparse
import http.client
import json
import random
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEED_COMMANDS = ("START_TRANSMIT", "STOP_TRANSMIT", "PAUSE_TRANSMIT", "RESTART_TRANSMIT")


class SeedError(Exception):
    """The server answered something a seed client cannot use."""

    def __init__(self, msg, reply=None):
        super().__init__(msg)
        self.reply = reply


class Reply:
    """One answer of the server: status, headers (lower-case), raw body, parsed JSON or None."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.doc = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            self.doc = None

    def __repr__(self):
        return f"Reply({self.status}, {self.body[:300]!r})"


def split_host_port(text, default_port=7400):
    text = text.strip()
    if text.startswith("http://"):
        text = text[len("http://"):]
    text = text.rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host, int(port)


class _Handler(BaseHTTPRequestHandler):
    server_version = "SeedRankClient/1"

    def log_message(self, fmt, *args):  # quiet: events are printed by the client itself
        pass

    def _answer(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        client = self.server.client
        if self.path.split("?", 1)[0].rstrip("/") != "/receive-command":
            return self._answer(404, {"success": False, "error": f"no route {self.path}"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            doc = json.loads(raw.decode("utf-8"))
        except ValueError:
            doc = None
        valid = (isinstance(doc, dict) and isinstance(doc.get("sender"), int)
                 and not isinstance(doc.get("sender"), bool)
                 and isinstance(doc.get("command"), str))
        failing = client.failing
        call = {"at": time.time(), "headers": headers, "body": raw, "doc": doc,
                "valid": valid, "answered": 500 if failing else (200 if valid else 400)}
        client._record(call)
        if failing:
            return self._answer(500, {"success": False, "error": "failing on purpose"})
        if not valid:
            return self._answer(400, {"success": False,
                                      "error": "want {\"sender\": int, \"command\": str}"})
        return self._answer(200, {"success": True})


class SeedClient:
    """A seed client: its own receive-command server plus calls to the rank server.

    host/port: where its receive-command server listens (port 0: an OS-chosen port).
    servers: "ip:port" of the rank server(s) (any node); calls go to servers[0] unless
    `via` is given.
    """

    def __init__(self, host, port=0, servers=("127.0.0.1:7400",), journal=None,
                 failing=False, timeout=40.0, verbose=False):
        self.host = host
        self.port = port
        self.servers = list(servers)
        self.journal = journal
        self.failing = failing
        self.timeout = timeout
        self.verbose = verbose
        self.rank = None              # last rank the server gave us
        self.assigned = False
        self.calls = []               # every receive-command call (accepted or not)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._httpd = None
        self._thread = None

    # ---- own server -------------------------------------------------------

    def start(self):
        self._httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.client = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    @property
    def ip_port(self):
        return f"{self.host}:{self.port}"

    def set_failing(self, failing):
        self.failing = failing

    def _record(self, call):
        with self.cond:
            self.calls.append(call)
            if call["answered"] == 200 and self.journal:
                line = {"at": call["at"], "sender": call["doc"]["sender"],
                        "command": call["doc"]["command"],
                        "idempotency_key": call["headers"].get("idempotency-key")}
                with open(self.journal, "a") as f:
                    f.write(json.dumps(line) + "\n")
            self.cond.notify_all()
        if self.verbose and call["answered"] == 200:
            print(json.dumps({"event": "received", "sender": call["doc"]["sender"],
                              "command": call["doc"]["command"]}), flush=True)

    def received(self):
        """The receive-command calls that were accepted (answered 200): list of dicts
        {"sender", "command", "headers", "at"}."""
        with self.lock:
            return [{"sender": c["doc"]["sender"], "command": c["doc"]["command"],
                     "headers": c["headers"], "at": c["at"]}
                    for c in self.calls if c["answered"] == 200]

    def all_calls(self):
        with self.lock:
            return list(self.calls)

    def wait_received(self, count, timeout):
        """Wait until at least `count` commands were accepted; returns received()."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while sum(1 for c in self.calls if c["answered"] == 200) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
        return self.received()

    def wait_calls(self, count, timeout):
        """Wait until at least `count` receive-command calls arrived (any answer)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.calls) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
        return self.all_calls()

    # ---- calls to the rank server ------------------------------------------

    def request(self, method, path, body=None, via=None, raw=None, timeout=None):
        """One call; `body` is JSON-encoded unless `raw` bytes are given. Returns Reply."""
        host, port = split_host_port(via or self.servers[0])
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn = http.client.HTTPConnection(host, port, timeout=timeout or self.timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def assign(self, via=None):
        r = self.request("POST", "/assign-rank", {"ip_port": self.ip_port}, via=via)
        rank = r.doc.get("rank") if isinstance(r.doc, dict) else None
        if r.status != 200 or not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
            raise SeedError(f"assign-rank of {self.ip_port} via {via or self.servers[0]}: {r}", r)
        self.rank = rank
        self.assigned = True
        return rank

    def unassign(self, via=None):
        r = self.request("DELETE", "/unassign-rank", {"ip_port": self.ip_port}, via=via)
        if r.status != 200 or not isinstance(r.doc, dict) or r.doc.get("success") is not True:
            raise SeedError(f"unassign-rank of {self.ip_port}: {r}", r)
        self.assigned = False
        self.rank = None
        return r.doc

    def send_command(self, command=None, via=None):
        """Send a command (a random seed command if None); returns the server's JSON object
        {address: {"success": bool, ...}}."""
        command = command if command is not None else random.choice(SEED_COMMANDS)
        r = self.request("POST", "/send-command", {"command": command, "ip_port": self.ip_port},
                         via=via)
        if r.status != 200 or not isinstance(r.doc, dict):
            raise SeedError(f"send-command {command!r} from {self.ip_port}: {r}", r)
        return r.doc

    def close(self, unassign=True):
        """Unassign (if assigned and asked to; errors ignored), then stop the server."""
        if unassign and self.assigned:
            for via in self.servers:
                try:
                    self.unassign(via=via)
                    break
                except (OSError, http.client.HTTPException, SeedError):
                    continue
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


# ---- program -------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description="A seed-style rank client.")
    p.add_argument("--server", action="append", required=True,
                   help="rank server ip:port (repeat for fallbacks)")
    p.add_argument("--bind", default="127.0.0.1", help="address of the receive-command server")
    p.add_argument("--port", type=int, default=0, help="its port (0: any free one)")
    p.add_argument("--journal", help="append accepted commands to this file (JSON lines)")
    p.add_argument("--send-every", type=float, default=0.0,
                   help="send a random seed command every that many seconds (0: never)")
    p.add_argument("--fail", action="store_true", help="answer 500 to every receive-command")
    args = p.parse_args(argv)

    client = SeedClient(args.bind, args.port, servers=args.server, journal=args.journal,
                        failing=args.fail, verbose=True).start()
    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    rank = None
    while rank is None and not stop.is_set():
        for via in args.server:
            try:
                rank = client.assign(via=via)
                break
            except (OSError, http.client.HTTPException, SeedError) as e:
                print(json.dumps({"event": "assign-failed", "error": str(e)}), flush=True)
        if rank is None:
            stop.wait(1.0)
    if rank is not None:
        print(json.dumps({"event": "assigned", "rank": rank, "ip_port": client.ip_port}),
              flush=True)
    next_send = time.monotonic() + args.send_every
    while not stop.is_set():
        stop.wait(0.2)
        if args.send_every > 0 and time.monotonic() >= next_send and not stop.is_set():
            next_send = time.monotonic() + args.send_every
            try:
                results = client.send_command(via=args.server[0])
                print(json.dumps({"event": "sent", "results": results}), flush=True)
            except (OSError, http.client.HTTPException, SeedError) as e:
                print(json.dumps({"event": "send-failed", "error": str(e)}), flush=True)
    was = client.assigned
    client.close(unassign=True)
    print(json.dumps({"event": "unassigned" if was and not client.assigned else "exit",
                      "ip_port": client.ip_port}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
