#!/usr/bin/env python3
"""Webhook timer benchmark: Synod's timers against BullMQ's delayed jobs on Redis (run by hand).

The same timers, fired at the same loopback HTTP receiver, for both systems. The receiver is a
selectors server in a child process of its own (this script with --internal-receiver): for every
POST to /hook/<id> it notes the receive time (time.time_ns(), taken when the request's bytes
were read), the id, the due time the request carries (Synod-Due-Nanos; the BullMQ worker sends
Bench-Due-Nanos from the job's data), the attempt number and the connection. Its capacity is
measured first (a client process blasting it over 64 keep-alive connections) and reported.

Parts (--only), each on a fresh cluster / a fresh Redis, Synod first, then BullMQ:

  lateness   Timers due evenly at each rate of --plan (default 2000/s for 10 s, then 10000/s
             for 5 s), all created before the first is due (--lead-seconds) through
             --connections (64) concurrent keep-alive clients. Lateness = received - due:
             p50/p90/p99/max per rate, early fires, missed, duplicates.
             Goals (Synod): p99 < 10 ms at 2000/s, p99 < 100 ms at 10000/s; nothing early,
             missed or duplicated.
  create     --create-timers (50,000) timers due in an hour, created through all 3 agents by
             --connections clients, one request outstanding each: acknowledged creates/s.
             BullMQ: queue.add of delayed jobs, as many at once. Goal: >= 20,000/s.
  pending    --pending (1,000,000) timers waiting: VmRSS of each agent; then a 4th agent joins
             (--join, a spare): seconds until its applied_index reaches the leader's
             commit_index and its /v1/timers/stats matches the leader's; leader changes during
             the whole part (every agent's /v1/cluster every 0.25 s). BullMQ: Redis's VmRSS
             with as many delayed jobs, and a new Redis replica's time to sync.
             Goals: RSS < 500 MB per node, catch-up < 10 s, no leader change.
  failover   Timers due at 200/s for 10 s; SIGKILL one non-leader agent 3 s after the first is
             due. For timers due after the kill: max lateness, fired more than 1.5 s late,
             missed, duplicates. BullMQ: two workers, one SIGKILLed the same way.
             Goal: all fire within 1.5 s of due.

Loopback only: Synod's agents on 127.71.<part>.2-5 with the default ports, discovery
broadcast to 127.255.255.255 on a random free UDP port; Redis, the receiver and the BullMQ
workers on 127.0.0.1 and free ports. Every load loop is bounded in count and time. One JSON
object on stdout, progress on stderr. Python 3 standard library only (the BullMQ side runs
bench/bullmq/worker.mjs with node; `npm ci` is run there if node_modules is missing). Every
process started is stopped (SIGTERM, then SIGKILL) even on errors or Ctrl-C.
"""

import argparse
import contextlib
import http.client
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import (CLK_TCK, Agent as AgentBase, AgentCluster, StartWatch, _on_signal,
                      binary_identity, exit_record, finish_result, get_json, log, log_problems,
                      loadavg, machine_busy_s, machine_info, ordered, percentile,
                      read_cpu_ticks, read_status_kb, record_failure, self_cpu_s,
                      signals_ignored, stop_processes, summarize, tail)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BINARY = os.path.join(os.path.dirname(HERE), "build", "synod")
BULLMQ_DIR = os.path.join(HERE, "bullmq")
API_PORT = 7400
RAFT_PORT = 7401
PEER_PORT = 7402
PARTS = ["lateness", "create", "pending", "failover"]
NETS = {"lateness": "127.71.1.", "create": "127.71.2.", "pending": "127.71.3.",
        "failover": "127.71.4."}
SYSTEMS = ["synod", "bullmq"]

PROCS = []            # (label, Popen) of every non-agent process started; stopped at the end
ABNORMAL_EXITS = []   # agents that exited non-zero when stopped (not the ones SIGKILLed)
LOG_PROBLEMS = {}     # cluster label -> warning/error lines of its agents' logs
HTTP_ERRORS = {}      # error kind -> count, over the whole run


def count_error(kind):
    HTTP_ERRORS[kind] = HTTP_ERRORS.get(kind, 0) + 1


def r3(x):
    return round(x, 3) if x is not None else None


def free_tcp_port(ip="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((ip, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def started(label, popen):
    PROCS.append((label, popen))
    return popen


def stop_started(popen, grace_s=8.0):
    """Stops one process of PROCS (SIGTERM, then SIGKILL) and forgets it."""
    entries = [(lbl, p) for lbl, p in PROCS if p is popen]
    if popen.poll() is None:
        stop_processes(entries or [("process", popen)], grace_s)
    PROCS[:] = [(lbl, p) for lbl, p in PROCS if p is not popen]


# ---------------------------------------------------------------------------------------------
# The receiver: a child process (python3 timer_bench.py --internal-receiver PORT)

OK_KEEP = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
OK_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def dechunk(buf, pos):
    """A chunked body starting at buf[pos:]: (body bytes, end offset), or None if incomplete
    (trailers are not expected and not allowed)."""
    body = bytearray()
    while True:
        e = buf.find(b"\r\n", pos)
        if e < 0:
            return None
        size = int(bytes(buf[pos:e]).split(b";")[0], 16)
        if len(buf) < e + 2 + size + 2:
            return None
        if size == 0:
            return bytes(body), e + 4
        body += buf[e + 2:e + 2 + size]
        pos = e + 2 + size + 2


def receiver_main(port):
    """Serves POST /hook/<id> on 127.0.0.1:port (HTTP/1.1 keep-alive, Content-Length or
    chunked bodies, Expect: 100-continue) until SIGTERM, one thread, epoll. Control:
    GET /_ctl/count, POST /_ctl/reset, POST /_ctl/dump (body: a file path; records written as
    TSV recv_ns, id, due_ns, attempt, sender (a Synod-Node header if any, else the peer's ip),
    connection number)."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4096)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    records = []
    ids = set()
    stats = {"connections": 0, "requests": 0, "bad_requests": 0, "id_header_mismatch": 0}

    class Conn:
        __slots__ = ("sock", "buf", "out", "peer", "n", "continued", "close_after")

    def close(c):
        with contextlib.suppress(KeyError, ValueError, OSError):
            sel.unregister(c.sock)
        with contextlib.suppress(OSError):
            c.sock.close()

    def flush(c):
        try:
            while c.out:
                sent = c.sock.send(c.out)
                del c.out[:sent]
        except BlockingIOError:
            sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
            return
        except OSError:
            close(c)
            return
        if c.close_after:
            close(c)
        else:
            with contextlib.suppress(ValueError, KeyError):
                sel.modify(c.sock, selectors.EVENT_READ, c)

    def control(method, path, body):
        if path == "/_ctl/count":
            return json.dumps({"records": len(records), "ids": len(ids), **stats}).encode()
        if path == "/_ctl/reset" and method == b"POST":
            records.clear()
            ids.clear()
            return b"{}"
        if path == "/_ctl/dump" and method == b"POST":
            with open(body.decode(), "w") as f:
                for rec in records:
                    f.write("\t".join(str(x) for x in rec) + "\n")
            return json.dumps({"records": len(records)}).encode()
        return None

    def parse(c, now):
        """Handles every whole request in c.buf; False if the connection must close."""
        buf = c.buf
        while True:
            h = buf.find(b"\r\n\r\n")
            if h < 0:
                return len(buf) < 65536
            lines = bytes(buf[:h]).split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3:
                stats["bad_requests"] += 1
                return False
            method, target, version = parts
            hdr = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                hdr[name.strip().lower()] = value.strip()
            start = h + 4
            if hdr.get(b"transfer-encoding", b"").lower() == b"chunked":
                got = dechunk(buf, start)
            else:
                length = int(hdr.get(b"content-length", b"0") or 0)
                got = ((bytes(buf[start:start + length]), start + length)
                       if len(buf) >= start + length else None)
            if got is None:   # the body is not all here yet
                if hdr.get(b"expect", b"").lower() == b"100-continue" and not c.continued:
                    c.continued = True
                    c.out += b"HTTP/1.1 100 Continue\r\n\r\n"
                return True
            body, end = got
            del buf[:end]
            c.continued = False
            path = target.decode("latin-1")
            stats["requests"] += 1
            conn_hdr = hdr.get(b"connection", b"").lower()
            c.close_after = conn_hdr == b"close" or (version == b"HTTP/1.0"
                                                     and conn_hdr != b"keep-alive")
            if path == "/hook" or path.startswith("/hook/"):
                hid = hdr.get(b"synod-timer-id")
                tid = path[6:] or (hid or hdr.get(b"idempotency-key") or b"").decode("latin-1")
                due = hdr.get(b"synod-due-nanos") or hdr.get(b"bench-due-nanos") or b""
                attempt = hdr.get(b"synod-attempt") or hdr.get(b"bench-attempt") or b""
                if hid is not None and hid.decode("latin-1") != tid:
                    stats["id_header_mismatch"] += 1
                node = hdr.get(b"synod-node")   # who fired it, if the agent says
                records.append((now, tid, due.decode("latin-1"), attempt.decode("latin-1"),
                                node.decode("latin-1") if node else c.peer, c.n))
                ids.add(tid)
                c.out += OK_CLOSE if c.close_after else OK_KEEP
            else:
                answer = control(method, path, body)
                if answer is None:
                    c.out += b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                else:
                    c.out += (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Content-Length: " + str(len(answer)).encode() + b"\r\n\r\n"
                              + answer)
            if c.close_after:
                return True

    while not stop:
        try:
            events = sel.select(0.5)
        except InterruptedError:
            continue
        for key, mask in events:
            if key.data is None:
                while True:
                    try:
                        s, addr = lsock.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    s.setblocking(False)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    c = Conn()
                    c.sock, c.buf, c.out, c.peer = s, bytearray(), bytearray(), addr[0]
                    stats["connections"] += 1
                    c.n, c.continued, c.close_after = stats["connections"], False, False
                    sel.register(s, selectors.EVENT_READ, c)
                continue
            c = key.data
            if mask & selectors.EVENT_WRITE:
                flush(c)
                if not (mask & selectors.EVENT_READ):
                    continue
            try:
                data = c.sock.recv(262144)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                close(c)
                continue
            now = time.time_ns()
            if not data:
                close(c)
                continue
            c.buf += data
            try:
                keep = parse(c, now)
            except (ValueError, UnicodeDecodeError, OSError):
                stats["bad_requests"] += 1
                keep = False
            if c.out:
                flush(c)
            if not keep:
                close(c)
    sel.close()
    lsock.close()


def blast_main(port, connections, seconds):
    """Capacity client (a child process): `connections` keep-alive sockets, one timer-like POST
    outstanding each, for `seconds` (at most 2,000,000 requests). Prints {"requests", "seconds"}."""
    sel = selectors.DefaultSelector()
    body = b'{"id":"cap","due":"2026-01-01T00:00:00Z","attempt":1}'
    done = 0
    t0 = time.monotonic()
    end = t0 + seconds
    socks = []
    for i in range(connections):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, [i, 0, bytearray()])

    def send(s, st):
        st[1] += 1
        tid = f"cap-{st[0]}-{st[1]}"
        s.send(f"POST /hook/{tid} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n"
               f"Content-Type: application/json\r\nSynod-Timer-Id: {tid}\r\n"
               f"Synod-Due-Nanos: {time.time_ns()}\r\nSynod-Attempt: 1\r\n"
               f"Idempotency-Key: {tid}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)

    for key in list(sel.get_map().values()):
        send(key.fileobj, key.data)
    while time.monotonic() < end and done < 2_000_000:
        for key, _ in sel.select(0.5):
            st = key.data
            data = key.fileobj.recv(65536)
            if not data:
                raise SystemExit("receiver closed a connection")
            st[2] += data
            while True:
                h = st[2].find(b"\r\n\r\n")
                if h < 0:
                    break
                del st[2][:h + 4]   # the receiver's answers have no body
                done += 1
                if time.monotonic() < end:
                    send(key.fileobj, st)
    elapsed = time.monotonic() - t0
    for s in socks:
        s.close()
    print(json.dumps({"requests": done, "seconds": round(elapsed, 3)}))


class Receiver:
    """The receiver child process, and its control calls."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.log_path = os.path.join(workdir, "receiver.log")
        with open(self.log_path, "ab") as logf:
            self.proc = started("receiver", subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--internal-receiver",
                 str(self.port)], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf))
        deadline = time.monotonic() + 10
        while self.count() is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the receiver did not start: {tail(self.log_path)}")
            time.sleep(0.05)
        self.dumps = 0

    def _ctl(self, method, path, body=None, timeout=30.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return json.loads(resp.read()) if resp.status == 200 else None
        finally:
            conn.close()

    def count(self):
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
            return self._ctl("GET", "/_ctl/count", timeout=5.0)
        return None

    def reset(self):
        self._ctl("POST", "/_ctl/reset", b"")

    def records(self):
        """[(recv_ns, id, due_ns or None, attempt or None, peer, connection)] received so far."""
        self.dumps += 1
        path = os.path.join(self.workdir, f"received-{self.dumps}.tsv")
        self._ctl("POST", "/_ctl/dump", path.encode(), timeout=120.0)
        out = []
        with open(path) as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                out.append((int(p[0]), p[1], int(p[2]) if p[2] else None,
                            int(p[3]) if p[3] else None, p[4], int(p[5])))
        os.unlink(path)
        return out

    def capacity(self, seconds=2.0, connections=64):
        """Requests/s the receiver answers with a Python client on the same machine (a lower
        bound: the client takes CPU from the same 2 cores), and the receiver's CPU meanwhile."""
        self.reset()
        t0 = read_cpu_ticks(self.proc.pid)
        w0 = time.monotonic()
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--internal-blast",
                              str(self.port), str(connections), str(seconds)],
                             capture_output=True, text=True, timeout=seconds + 30)
        wall = time.monotonic() - w0
        t1 = read_cpu_ticks(self.proc.pid)
        if out.returncode != 0:
            raise RuntimeError(f"capacity client failed: {out.stderr[-300:]}")
        got = json.loads(out.stdout)
        recorded = (self.count() or {}).get("records")
        self.reset()
        return {"requests_per_s": round(got["requests"] / got["seconds"], 1),
                "requests": got["requests"], "seconds": got["seconds"],
                "connections": connections, "recorded": recorded,
                "receiver_cpu_pct_of_one_core": round(100.0 * (t1 - t0) / CLK_TCK / wall, 1),
                "note": "client and receiver share the machine's 2 cores: a lower bound"}


# ---------------------------------------------------------------------------------------------
# What the receiver got, against what was created

def lateness_summary(values_ms):
    s = sorted(values_ms)
    if not s:
        return None
    return {"n": len(s), "p50": r3(percentile(s, 50)), "p90": r3(percentile(s, 90)),
            "p99": r3(percentile(s, 99)), "p999": r3(percentile(s, 99.9)),
            "max": r3(s[-1]), "min": r3(s[0]), "mean": r3(sum(s) / len(s))}


def fire_report(expected, records, groups, early_tol_ms, t0_ns=None):
    """expected: {id: (due_ns, group)}; records from Receiver.records(); groups: the group
    labels in order. Per group: timers, fired, missed, duplicates (ids received more than
    once, and the extra requests), early fires (received more than early_tol_ms before due),
    lateness (first receipt - due) percentiles in ms, the 5 latest; and, with t0_ns, p99/max
    per second of due time from t0_ns."""
    first = {}
    seen = {}
    header_due_mismatch = 0
    attempts_over_1 = 0
    peers = {}
    connections = set()
    unknown = 0
    for recv_ns, tid, hdr_due, attempt, peer, conn in records:
        seen[tid] = seen.get(tid, 0) + 1
        peers[peer] = peers.get(peer, 0) + 1
        connections.add(conn)
        if tid not in expected:
            unknown += 1
            continue
        if tid not in first or recv_ns < first[tid]:
            first[tid] = recv_ns
        if hdr_due is not None and hdr_due != expected[tid][0]:
            header_due_mismatch += 1
        if attempt is not None and attempt > 1:
            attempts_over_1 += 1
    out = {}
    per_second = {}
    tol_ns = int(early_tol_ms * 1e6)
    for g in groups:
        ids = [tid for tid, (_due, grp) in expected.items() if grp == g]
        lat = []
        worst = []
        early = before_due = 0
        for tid in ids:
            if tid not in first:
                continue
            due = expected[tid][0]
            d = first[tid] - due
            lat.append(d / 1e6)
            worst.append((d, tid))
            if d < 0:
                before_due += 1
            if d < -tol_ns:
                early += 1
            if t0_ns is not None:
                sec = (due - t0_ns) // 1_000_000_000
                per_second.setdefault(sec, []).append(d / 1e6)
        dup_ids = [tid for tid in ids if seen.get(tid, 0) > 1]
        worst.sort(reverse=True)
        out[g] = {"timers": len(ids), "fired": len(lat), "missed": len(ids) - len(lat),
                  "duplicates": len(dup_ids),
                  "extra_requests": sum(seen[t] - 1 for t in dup_ids),
                  "early_beyond_tolerance": early, "received_before_due": before_due,
                  "lateness_ms": lateness_summary(lat),
                  "latest_5": [{"id": tid, "ms": r3(d / 1e6)} for d, tid in worst[:5]]}
    extra = {"requests": len(records), "unknown_ids": unknown,
             "due_header_differs_from_created": header_due_mismatch,
             "requests_with_attempt_over_1": attempts_over_1,
             "requests_by_sender": peers, "connections_used": len(connections),
             "early_tolerance_ms": early_tol_ms}
    if t0_ns is not None:
        extra["per_second_of_due"] = [
            {"s": s, "n": len(v), "p50_ms": r3(percentile(sorted(v), 50)),
             "p99_ms": r3(percentile(sorted(v), 99)), "max_ms": r3(max(v))}
            for s, v in sorted(per_second.items())]
    return out, extra


def wait_fired(receiver, expected_n, last_due_ns, grace_s, max_wait_s, settle_s=1.0):
    """Waits until the receiver got expected_n distinct ids and then settle_s more (late
    duplicates), or until grace_s after the last due time once nothing new arrives for a
    second, and never beyond max_wait_s after the last due time. Returns the seconds waited
    after the last due time."""
    last_n, last_change = -1, time.monotonic()
    while True:
        now_ns = time.time_ns()
        after_last = (now_ns - last_due_ns) / 1e9
        n = (receiver.count() or {}).get("ids", 0)
        if n != last_n:
            last_n, last_change = n, time.monotonic()
        if after_last > max_wait_s:
            return after_last
        if n >= expected_n and after_last > 0:
            time.sleep(settle_s)
            return after_last + settle_s
        if after_last > grace_s and time.monotonic() - last_change > 1.0:
            return after_last
        time.sleep(0.2)


class CpuWatch:
    """CPU % of one core of named processes (utime + stime, all threads) from now on, plus the
    machine's busy CPU and this script's."""

    def __init__(self, pids):
        self.pids = dict(pids)
        self.t0 = time.monotonic()
        self.ticks = {n: read_cpu_ticks(p) for n, p in self.pids.items()}
        self.machine = machine_busy_s()
        self.me = self_cpu_s()

    def result(self):
        wall = time.monotonic() - self.t0
        out = {}
        for n, p in self.pids.items():
            t1 = read_cpu_ticks(p)
            if t1 is not None and self.ticks[n] is not None:
                out[n] = round(100.0 * (t1 - self.ticks[n]) / CLK_TCK / wall, 1)
        return {"seconds": round(wall, 2), "cpu_pct_of_one_core": out,
                "this_script_pct": round(100.0 * (self_cpu_s() - self.me) / wall, 1),
                "machine_busy_pct_of_one_core": round(100.0 * (machine_busy_s() - self.machine)
                                                      / wall, 1)}


# ---------------------------------------------------------------------------------------------
# Synod: the cluster, and creating timers

class Agent(AgentBase):
    def __init__(self, name, ip, data_dir, log_path, bootstrap):
        super().__init__(name, ip, data_dir, log_path)
        self.bootstrap = bootstrap   # --bootstrap-expect 3, or --join ...


class Cluster(AgentCluster):
    """3 agents (and a 4th added by add_agent), always stopped (context manager); the flags of
    state_bench.py: --standbys 0 (a 4th node is a spare), 200 ms beacons, election 300 ms,
    heartbeat 100 ms."""

    ports = (API_PORT, RAFT_PORT, PEER_PORT)
    voters = 3
    leader_timeout = 0.5
    log_command = True

    def __init__(self, args, workdir, label, net):
        super().__init__(args.binary, os.path.join(workdir, label), label)
        self.args = args
        self.net = net
        for _ in range(3):
            self.add_agent(["--bootstrap-expect", "3"])

    def add_agent(self, bootstrap):
        i = len(self.agents) + 1
        a = Agent(f"{self.label[0]}{i}", f"{self.net}{i + 1}", os.path.join(self.dir, f"n{i}"),
                  os.path.join(self.dir, f"n{i}.log"), bootstrap)
        self.agents.append(a)
        return a

    def command(self, agent):
        a = self.args
        return ([self.binary, "agent", "--name", agent.name, "--bind", agent.ip,
                 "--data-dir", agent.data_dir] + agent.bootstrap +
                ["--broadcast-addr", "127.255.255.255",
                 "--broadcast-port", str(self.broadcast_port), "--beacon-interval", "200ms",
                 "--election-timeout", "300ms", "--heartbeat-timeout", "100ms",
                 "--standbys", "0", "--snapshot-threshold", str(a.snapshot_threshold),
                 "--log-level", "info"])

    def status(self, agent, timeout=0.3):
        return api_json(agent.ip, "/v1/cluster", timeout)

    def stopped(self, running, early):
        found = log_problems([(a.name, a.log_path) for a in self.agents], 12)
        if found:
            LOG_PROBLEMS[self.label] = found
        ABNORMAL_EXITS.extend(exit_record(a, a in early, cluster=self.label)
                              for a in running + early if a.proc.returncode != 0)

    def start(self):
        log(f"{self.label}: starting 3 agents on {self.net}2..4, broadcast port "
            f"{self.broadcast_port}")
        for a in self.agents:
            self.launch(a)
        formed = self.wait_healthy(30.0)
        if formed is None:
            raise RuntimeError(f"{self.label}: the cluster did not form within 30 s")
        leader = self.leader_agent()
        log(f"{self.label}: formed in {formed:.2f} s; leader {leader.name if leader else None}")
        return formed

    def pids(self):
        return {a.name: a.proc.pid for a in self.alive()}


def api_json(ip, path, timeout=0.5):
    """GET http://ip:7400/path -> parsed JSON, or None (failures counted in http_errors)."""
    where = path.split("?")[0]
    return get_json(ip, API_PORT, path, timeout,
                    lambda kind: count_error(f"GET {where} {kind}" if kind.startswith("HTTP ")
                                             else f"GET {kind}"))


def timer_stats(cl):
    """Every live agent's GET /v1/timers/stats."""
    return {a.name: api_json(a.ip, "/v1/timers/stats", 2.0) for a in cl.alive()}


def rss_mb(pid):
    kb = read_status_kb(pid, "VmRSS")
    hwm = read_status_kb(pid, "VmHWM")
    return {"vm_rss_mb": round(kb / 1024, 1) if kb else None,
            "vm_hwm_mb": round(hwm / 1024, 1) if hwm else None}


def timer_body(url, at_ns):
    """POST /v1/timers body: url, "at" as epoch seconds (a float: sub-microsecond precision)
    and append_id (the webhook goes to <url>/<id>; the receiver also takes the id from the
    Synod-Timer-Id header when the path has none)."""
    return json.dumps({"url": url, "at": at_ns / 1e9, "append_id": True},
                      separators=(",", ":")).encode()


def create_request(body):
    return (b"POST /v1/timers HTTP/1.1\r\nHost: synod\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class Creates:
    """What a create run got: per request index, the answer's id and due_nanos (when parsed)."""

    def __init__(self, n):
        self.n = n
        self.ok = 0
        self.sent = 0
        self.status = {}          # non-200 status -> count
        self.errors = {}          # exception class -> count
        self.first_failure = None
        self.ids = {}             # index -> (id, due_nanos)
        self.acked_at = {}        # index -> time.time_ns() of the answer (when keep_times)
        self.latency = []         # seconds
        self.t_first = self.t_last = None
        self.unparsed = 0

    def answer(self, i, status, body, t_sent, parse):
        now = time.monotonic()
        self.t_last = now
        if status == 200:
            self.ok += 1
            self.latency.append(now - t_sent)
            if parse:
                try:
                    d = json.loads(body)
                    self.ids[i] = (d["id"], int(d["due_nanos"]))
                except (ValueError, KeyError, TypeError):
                    self.unparsed += 1
            return
        self.status[str(status)] = self.status.get(str(status), 0) + 1
        if self.first_failure is None:
            self.first_failure = f"HTTP {status} {body[:200].decode('utf-8', 'replace')}"

    def error(self, e):
        k = type(e).__name__
        self.errors[k] = self.errors.get(k, 0) + 1
        if self.first_failure is None:
            self.first_failure = f"{k}: {e}"

    def report(self, client_cpu_s=None):
        secs = (self.t_last - self.t_first) if self.t_first and self.t_last else None
        lat = sorted(self.latency)
        out = {"requested": self.n, "sent": self.sent, "acknowledged": self.ok,
               "non_200": self.status, "errors": self.errors,
               "first_failure": self.first_failure,
               "seconds": r3(secs),
               "creates_per_s": round(self.ok / secs, 1) if secs else None,
               "latency_ms": {"p50": r3(1000 * percentile(lat, 50)) if lat else None,
                              "p99": r3(1000 * percentile(lat, 99)) if lat else None,
                              "max": r3(1000 * lat[-1]) if lat else None}}
        if self.unparsed:
            out["answers_not_understood"] = self.unparsed
        if client_cpu_s is not None and secs:
            out["client_cpu_pct_of_one_core"] = round(100.0 * client_cpu_s / secs, 1)
        return out


def create_timers(ips, n, body_fn, connections, deadline, parse_every=1, client="async"):
    """Sends n POST /v1/timers (body_fn(i) -> bytes, in order of i) over `connections`
    keep-alive connections spread round robin over `ips`, one request outstanding on each;
    nothing is sent after `deadline` (monotonic) and answers are awaited 30 s beyond it at
    most. A failed create is not retried (a retry could create a second timer). Answers of
    indexes divisible by parse_every are parsed for id and due_nanos. client "async": one
    selector loop over raw sockets (about a sixth of the CPU per request of "threads", one
    http.client thread per connection, held to one core by the GIL)."""
    res = Creates(n)
    cpu0 = self_cpu_s()
    res.t_first = time.monotonic()
    if client == "threads":
        _create_threads(ips, n, body_fn, connections, deadline, parse_every, res)
    else:
        _create_async(ips, n, body_fn, connections, deadline, parse_every, res)
    return res, self_cpu_s() - cpu0


def _create_threads(ips, n, body_fn, connections, deadline, parse_every, res):
    lock = threading.Lock()
    nxt = [0]

    def worker(ip):
        conn = http.client.HTTPConnection(ip, API_PORT, timeout=30.0)
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = nxt[0]
                    if i >= n:
                        return
                    nxt[0] += 1
                    res.sent += 1
                body = body_fn(i)
                t = time.monotonic()
                try:
                    conn.request("POST", "/v1/timers", body=body,
                                 headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    data = resp.read()
                    with lock:
                        res.answer(i, resp.status, data, t, i % parse_every == 0)
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        res.error(e)
                    conn.close()
                    conn = http.client.HTTPConnection(ip, API_PORT, timeout=30.0)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(ips[k % len(ips)],), daemon=True)
               for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive() and time.monotonic() < deadline + 30:
            t.join(timeout=0.5)


def _create_async(ips, n, body_fn, connections, deadline, parse_every, res):
    sel = selectors.DefaultSelector()
    socks = []
    nxt = 0
    reconnects = 0

    def open_conn(ip):
        s = socket.create_connection((ip, API_PORT), timeout=5.0)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
        st = {"ip": ip, "buf": bytearray(), "i": None, "t": 0.0}
        sel.register(s, selectors.EVENT_READ, st)
        return s, st

    def send_next(s, st):
        nonlocal nxt
        if nxt >= n or time.monotonic() >= deadline:
            st["i"] = None
            return False
        i = nxt
        nxt += 1
        raw = create_request(body_fn(i))
        st["i"], st["t"] = i, time.monotonic()
        res.sent += 1
        sent = s.send(raw)
        if sent < len(raw):
            s.setblocking(True)
            s.sendall(raw[sent:])
            s.setblocking(False)
        return True

    def drop(s, e):
        nonlocal reconnects
        st = sel.get_key(s).data
        if st["i"] is not None:
            res.error(e)
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(s)
        with contextlib.suppress(OSError):
            s.close()
        if reconnects < 200 and time.monotonic() < deadline:
            reconnects += 1
            try:
                s2, st2 = open_conn(st["ip"])
                send_next(s2, st2)
            except OSError as e2:
                res.error(e2)

    active = 0
    try:
        for k in range(connections):
            try:
                s, st = open_conn(ips[k % len(ips)])
            except OSError as e:
                res.error(e)
                continue
            send_next(s, st)
        while time.monotonic() < deadline + 30:
            active = sum(1 for key in sel.get_map().values() if key.data["i"] is not None)
            if active == 0:
                break
            for key, _ in sel.select(0.5):
                s, st = key.fileobj, key.data
                try:
                    data = s.recv(65536)
                    if not data:
                        raise ConnectionResetError("closed by the agent")
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    drop(s, e)
                    continue
                buf = st["buf"]
                buf += data
                h = buf.find(b"\r\n\r\n")
                if h < 0:
                    continue
                length = 0
                for line in bytes(buf[:h]).split(b"\r\n")[1:]:
                    name, _, val = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(val.strip())
                if len(buf) < h + 4 + length:
                    continue
                status = int(buf[9:12])
                body = bytes(buf[h + 4:h + 4 + length])
                del buf[:h + 4 + length]
                i = st["i"]
                res.answer(i, status, body, st["t"], i % parse_every == 0)
                try:
                    send_next(s, st)
                except OSError as e:
                    drop(s, e)
    finally:
        for s in socks:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(s)
            with contextlib.suppress(OSError):
                s.close()
        sel.close()


class LeaderWatch:
    """Every agent's view of (term, leader) every 0.25 s in a thread, until stop() (and at most
    `max_s`); `changes` lists each change after an agent first named a leader."""

    def __init__(self, cl, max_s):
        self.cl = cl
        self.changes = []
        self.seen = {}
        self.t0 = time.monotonic()
        self.stop_event = threading.Event()
        self.max_s = max_s
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_event.is_set() and time.monotonic() - self.t0 < self.max_s:
            for a in list(self.cl.alive()):
                st = self.cl.status(a, 0.25)
                if st is None:
                    continue
                now = (st.get("term"), (st.get("leader") or {}).get("name"))
                before = self.seen.get(a.name)
                if before != now:
                    if before is not None and before[1] is not None:  # not a first sight
                        self.changes.append({"at_s": r3(time.monotonic() - self.t0),
                                             "node": a.name, "term": now[0],
                                             "leader": now[1]})
                    self.seen[a.name] = now
            self.stop_event.wait(0.25)

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=5.0)
        terms = {v[0] for v in self.seen.values()}
        leaders = {v[1] for v in self.seen.values()}
        return {"changes_seen": len(self.changes), "changes": self.changes[:20],
                "terms_at_end": sorted(t for t in terms if t is not None),
                "leaders_at_end": sorted(x for x in leaders if x is not None)}


def leader_changes(watch_out, first_term):
    """Leader changes = how far the term moved from the one seen at the start (a term of its
    own per election), or, without terms, the distinct leaders seen minus one."""
    terms = [c["term"] for c in watch_out["changes"] if c.get("term") is not None]
    terms += watch_out["terms_at_end"]
    if first_term is not None and terms:
        return max(terms) - first_term
    leaders = {c["leader"] for c in watch_out["changes"] if c.get("leader")}
    return max(0, len(leaders) - 1)


# ---------------------------------------------------------------------------------------------
# Timer plans

def parse_plan(text, scale):
    """"2000:10,10000:5" -> [(rate per s, seconds)], seconds scaled (at least 1 s)."""
    out = []
    for item in text.split(","):
        rate, _, secs = item.partition(":")
        out.append((int(rate), max(1.0, float(secs) * scale)))
    return out


def plan_dues(t0_ns, plan):
    """[(due_ns, group label)] spread evenly: each phase's timers at 1/rate intervals, phases
    one after the other from t0_ns."""
    out = []
    start = t0_ns
    for rate, secs in plan:
        n = int(rate * secs)
        step = 1e9 / rate
        label = f"{rate}_per_s"
        out += [(start + int(round(k * step)), label) for k in range(n)]
        start += int(round(secs * 1e9))
    return out


def lead_seconds(args, n):
    """How long before the first due the creates start: --lead-seconds, or 3 s plus n at
    --assumed-create-rate."""
    return args.lead_seconds if args.lead_seconds else 3.0 + n / args.assumed_create_rate


def ms_aligned(t_ns):
    return (t_ns // 1_000_000) * 1_000_000


# ---------------------------------------------------------------------------------------------
# Synod parts

def synod_fire_run(ctx, cl, dues, label, kill_at_s=None, grace_s=5.0, max_wait_s=20.0):
    """Creates one timer per entry of `dues` [(due_ns offset from t0, group)] through every
    agent, all before the first is due when the lead allows; optionally SIGKILLs a non-leader
    agent kill_at_s after the first due; waits for the fires; returns (report, expected,
    records, t0_ns, kill info)."""
    args, rcv = ctx.args, ctx.receiver
    n = len(dues)
    lead = lead_seconds(args, n)
    t0_ns = ms_aligned(time.time_ns() + int(lead * 1e9))
    absolute = [(t0_ns + off, g) for off, g in dues]
    rcv.reset()
    ips = [a.ip for a in cl.alive()]
    log(f"{label}: creating {n} timers through {len(ips)} agents ({args.connections} "
        f"connections), first due in {lead:.1f} s")
    created, cpu = create_timers(
        ips, n, lambda i: timer_body(rcv.url, absolute[i][0]), args.connections,
        time.monotonic() + lead + (absolute[-1][0] - t0_ns) / 1e9, 1, args.create_client)
    done_ns = time.time_ns()
    cr = created.report(cpu)
    cr["finished_before_first_due_s"] = r3((t0_ns - done_ns) / 1e9)
    log(f"{label}: {created.ok}/{n} acknowledged ({cr['creates_per_s']}/s), "
        f"{cr['finished_before_first_due_s']} s before the first due")
    if created.ok == 0:
        raise RuntimeError(f"{label}: no timer created: {created.first_failure}")
    expected = {}
    requested_minus_due = []
    for i, (tid, due) in created.ids.items():
        expected[tid] = (due, absolute[i][1])
        requested_minus_due.append((due - absolute[i][0]) / 1e6)
    watch = CpuWatch({**cl.pids(), "receiver": rcv.proc.pid})
    kill = None
    if kill_at_s is not None:
        kill_ns = t0_ns + int(kill_at_s * 1e9)
        while time.time_ns() < kill_ns:
            time.sleep(min(0.05, max(0.0, (kill_ns - time.time_ns()) / 1e9)))
        leader = cl.leader_agent()
        victim = next(a for a in cl.alive() if a is not leader)
        st0 = cl.status(leader, 0.5) if leader else None
        kill_wall = time.time_ns()
        cl.kill(victim)
        kill = {"victim": victim.name, "leader": leader.name if leader else None,
                "at_ns": kill_wall, "after_first_due_s": r3((kill_wall - t0_ns) / 1e9),
                "term_before": (st0 or {}).get("term")}
        log(f"{label}: SIGKILLed {victim.name} (leader {kill['leader']})")
    waited = wait_fired(rcv, len(expected), absolute[-1][0], grace_s, max_wait_s)
    cpu_fire = watch.result()
    records = rcv.records()
    report = {"create": cr, "waited_after_last_due_s": r3(waited),
              "due_minus_requested_ms": summarize(requested_minus_due),
              "cpu_while_firing": cpu_fire, "timer_stats_after": timer_stats(cl)}
    return report, expected, records, t0_ns, kill


def synod_lateness(ctx):
    """Lateness at each rate of --plan, timers created ahead (see the module's docstring)."""
    args = ctx.args
    plan = parse_plan(args.plan, args.scale)
    with Cluster(args, ctx.workdir, "lateness", NETS["lateness"]) as cl:
        out = {"formation_s": r3(cl.start())}
        dues = plan_dues(0, plan)
        rep, expected, records, t0_ns, _ = synod_fire_run(
            ctx, cl, dues, "synod lateness", grace_s=5.0, max_wait_s=30.0)
        out.update(rep)
        groups = [f"{r}_per_s" for r, _ in plan]
        out["by_rate"], out["receipts"] = fire_report(expected, records, groups,
                                                      args.early_tolerance_ms, t0_ns)
        out["plan"] = [{"rate_per_s": r, "seconds": s} for r, s in plan]
        for g, row in out["by_rate"].items():
            lm = row["lateness_ms"] or {}
            log(f"synod lateness {g}: fired {row['fired']}/{row['timers']}, p50 {lm.get('p50')} "
                f"p99 {lm.get('p99')} max {lm.get('max')} ms, early "
                f"{row['early_beyond_tolerance']}, dup {row['duplicates']}")
    return out


def synod_create(ctx):
    """Acknowledged creates/s of --create-timers timers due in an hour, through all 3 agents."""
    args = ctx.args
    n = max(1000, int(args.create_timers * args.scale))
    with Cluster(args, ctx.workdir, "create", NETS["create"]) as cl:
        out = {"formation_s": r3(cl.start())}
        base = time.time_ns() + 3600 * 1_000_000_000
        ips = [a.ip for a in cl.alive()]
        log(f"synod create: {n} timers through {len(ips)} agents, {args.connections} "
            f"connections ({args.create_client})")
        watch = CpuWatch(cl.pids())
        created, cpu = create_timers(
            ips, n, lambda i: timer_body(ctx.receiver.url, base + i * 1_000_000),
            args.connections, time.monotonic() + args.create_timeout, 50, args.create_client)
        out["cpu"] = watch.result()
        out.update(created.report(cpu))
        out["client"] = args.create_client
        out["connections"] = args.connections
        log(f"synod create: {created.ok}/{n} in {out['seconds']} s = {out['creates_per_s']}/s "
            f"(client CPU {out.get('client_cpu_pct_of_one_core')} %)")
        out["timer_stats_after"] = wait_stats(cl, "waiting", created.ok, 30.0)
    return out


def wait_stats(cl, field, want, timeout_s):
    """Polls every agent's /v1/timers/stats until `field` == want everywhere (bounded);
    returns the last answers and how long it took."""
    t0 = time.monotonic()
    last = {}
    while time.monotonic() - t0 < timeout_s:
        last = timer_stats(cl)
        if last and all(v and v.get(field) == want for v in last.values()):
            return {"seconds": r3(time.monotonic() - t0), "all_match": True, "stats": last}
        time.sleep(0.25)
    return {"seconds": None, "all_match": False, "stats": last}


def synod_pending(ctx):
    """--pending waiting timers: each agent's RSS, then a 4th agent's catch-up; leader changes
    over the whole part."""
    args = ctx.args
    n = max(1000, int(args.pending * args.scale))
    with Cluster(args, ctx.workdir, "pending", NETS["pending"]) as cl:
        out = {"formation_s": r3(cl.start()), "timers": n}
        out["rss_idle"] = {a.name: rss_mb(a.proc.pid) for a in cl.alive()}
        leader = cl.leader_agent()
        first_term = (cl.status(leader, 1.0) or {}).get("term") if leader else None
        watch = LeaderWatch(cl, args.pending_timeout + 300)
        base = time.time_ns() + 3600 * 1_000_000_000
        ips = [a.ip for a in cl.alive()]
        log(f"synod pending: creating {n} timers (at most {args.pending_timeout} s)")
        created, cpu = create_timers(
            ips, n, lambda i: timer_body(ctx.receiver.url, base + i * 1_000_000),
            args.connections, time.monotonic() + args.pending_timeout, 1000, args.create_client)
        out["create"] = created.report(cpu)
        log(f"synod pending: {created.ok}/{n} created in {out['create']['seconds']} s")
        out["stats_on_every_node"] = wait_stats(cl, "waiting", created.ok, 60.0)
        time.sleep(1.0)
        out["rss"] = {a.name: rss_mb(a.proc.pid) for a in cl.alive()}
        log(f"synod pending: RSS {out['rss']}")
        # the 4th agent
        leader = cl.leader_agent()
        if leader is None:
            raise RuntimeError("pending: no leader before the 4th agent")
        lst = cl.status(leader, 1.0) or {}
        lstats = api_json(leader.ip, "/v1/timers/stats", 2.0) or {}
        target = lst.get("commit_index")
        fourth = cl.add_agent(["--join"] + [a.ip for a in cl.agents[:3]])
        log(f"synod pending: a 4th agent {fourth.name} ({fourth.ip}) joins")
        cl.launch(fourth)
        sw = StartWatch(fourth.started)
        applied = stats_match = None
        last_stats = None
        while time.monotonic() - fourth.started < args.catchup_timeout:
            if fourth.proc.poll() is not None:
                break
            st = api_json(fourth.ip, "/v1/cluster", 0.3)
            now = sw.saw(st)
            if st and applied is None and target is not None and \
                    st.get("applied_index", -1) >= target:
                applied = now
            if stats_match is None:
                last_stats = api_json(fourth.ip, "/v1/timers/stats", 0.5)
                if last_stats and all(last_stats.get(k) == lstats.get(k)
                                      for k in ("waiting", "executing", "done", "failed",
                                                "cancelled")):
                    stats_match = sw.saw(st) if st else now
            if applied is not None and stats_match is not None:
                break
            time.sleep(0.01)
        catch = {"agent": fourth.name, "leader_commit_index_before": target,
                 "api_up_s": r3(sw.api_up), "leader_known_s": r3(sw.leader_known),
                 "applied_reached_leader_commit_s": r3(applied),
                 "timer_stats_match_leader_s": r3(stats_match),
                 "leader_stats": lstats, "its_stats_last": last_stats,
                 "role_seen_by_leader": next((m.get("role") for m in
                                              (cl.status(leader, 1.0) or {}).get("members", [])
                                              if m.get("ip") == fourth.ip), None)}
        if fourth.proc.poll() is not None:
            catch["exited"] = f"rc {fourth.proc.returncode}: {tail(fourth.log_path, 3)}"
        out["fourth_agent"] = catch
        log(f"synod pending: 4th agent applied {catch['applied_reached_leader_commit_s']} s, "
            f"stats {catch['timer_stats_match_leader_s']} s")
        time.sleep(1.0)
        out["rss_after_fourth"] = {a.name: rss_mb(a.proc.pid) for a in cl.alive()}
        w = watch.stop()
        out["leader_watch"] = w
        out["leader_changes"] = leader_changes(w, first_term)
    return out


def synod_failover(ctx):
    """Timers at --failover-rate for --failover-seconds; SIGKILL a non-leader agent
    --failover-kill-at s after the first due."""
    args = ctx.args
    secs, kill_at = failover_times(args)
    dues = [(int(round(k * 1e9 / args.failover_rate)), None)
            for k in range(int(args.failover_rate * secs))]
    with Cluster(args, ctx.workdir, "failover", NETS["failover"]) as cl:
        out = {"formation_s": r3(cl.start()), "rate_per_s": args.failover_rate,
               "seconds": secs, "kill_at_s": kill_at}
        rep, expected, records, t0_ns, kill = synod_fire_run(
            ctx, cl, dues, "synod failover", kill_at_s=kill_at, grace_s=args.failover_max_wait,
            max_wait_s=args.failover_max_wait)
        out.update(rep)
        out["kill"] = kill
        out.update(failover_report(expected, records, kill["at_ns"], args, t0_ns))
        leader = cl.leader_agent()
        st = cl.status(leader, 0.5) if leader else None
        out["leader_after"] = leader.name if leader else None
        out["term_after"] = (st or {}).get("term")
    return out


def failover_times(args):
    secs = max(4.0, args.failover_seconds * args.scale)
    return secs, args.failover_kill_at * secs / args.failover_seconds


def failover_report(expected, records, kill_ns, args, t0_ns):
    """Splits the timers by due before / after the kill and judges the ones after."""
    regrouped = {tid: (due, "due_after_kill" if due >= kill_ns else "due_before_kill")
                 for tid, (due, _g) in expected.items()}
    groups, extra = fire_report(regrouped, records, ["due_before_kill", "due_after_kill"],
                                args.early_tolerance_ms, t0_ns)
    first = {}
    for recv_ns, tid, *_ in records:
        if tid in regrouped and (tid not in first or recv_ns < first[tid]):
            first[tid] = recv_ns
    after = [tid for tid, (due, g) in regrouped.items() if g == "due_after_kill"]
    late = sum(1 for tid in after if tid in first
               and first[tid] - regrouped[tid][0] > args.failover_late_s * 1e9)
    row = groups["due_after_kill"]
    row["fired_later_than_s"] = args.failover_late_s
    row["fired_late"] = late
    row["met"] = bool(row["timers"] and row["missed"] == 0 and late == 0)
    return {"by_kill": groups, "receipts": extra}


# ---------------------------------------------------------------------------------------------
# BullMQ side: Redis, node, worker.mjs

def resp_command(port, *words, timeout=10.0):
    """One Redis command on 127.0.0.1:port; the reply as str/int/list (errors raised)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        msg = f"*{len(words)}\r\n" + "".join(f"${len(str(w).encode())}\r\n{w}\r\n"
                                              for w in words)
        s.sendall(msg.encode())
        f = s.makefile("rb")

        def read():
            line = f.readline()
            if not line:
                raise ConnectionError("redis closed the connection")
            kind, rest = line[:1], line[1:-2]
            if kind == b"+":
                return rest.decode()
            if kind == b"-":
                raise RuntimeError(f"redis: {rest.decode()}")
            if kind == b":":
                return int(rest)
            if kind == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)
                return data[:-2].decode("utf-8", "replace")
            if kind == b"*":
                return [read() for _ in range(int(rest))]
            raise RuntimeError(f"redis: unexpected reply {line[:50]!r}")
        return read()


def redis_info(port, section):
    text = resp_command(port, "INFO", section)
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k] = v
    return out


class Redis:
    """A redis-server of our own on 127.0.0.1, a free port, its own dir; stopped with stop()."""

    def __init__(self, ctx, label, replica_of=None):
        args = ctx.args
        self.dir = os.path.join(ctx.workdir, label)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_tcp_port()
        cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
               "--dir", self.dir, "--save", "", "--protected-mode", "yes",
               "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log"),
               "--maxmemory-policy", "noeviction", "--repl-diskless-sync-delay", "0"]
        if args.redis_aof == "no" or replica_of is not None:   # a replica: memory only
            cmd += ["--appendonly", "no"]
        else:
            cmd += ["--appendonly", "yes", "--appendfsync", args.redis_aof]
        if replica_of is not None:
            cmd += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.proc = started(f"redis {label}", subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.started = time.monotonic()
        deadline = time.monotonic() + 10
        while True:
            try:
                if resp_command(self.port, "PING", timeout=1.0) == "PONG":
                    break
            except (OSError, RuntimeError):
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis did not start: "
                                   f"{tail(os.path.join(self.dir, 'redis.log'))}")
            time.sleep(0.05)

    def rss(self):
        m = redis_info(self.port, "memory")
        return {**rss_mb(self.proc.pid),
                "used_memory_mb": round(int(m.get("used_memory", 0)) / 1048576, 1)}

    def stop(self):
        """SHUTDOWN NOSAVE NOW (no final save, no wait for replicas), then SIGTERM/SIGKILL."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, RuntimeError):
                resp_command(self.port, "SHUTDOWN", "NOSAVE", "NOW", timeout=5.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5.0)
        stop_started(self.proc)


def bullmq_available(args):
    """None if the BullMQ side can run (runs `npm ci` when node_modules is missing), else why
    not."""
    if shutil.which("redis-server") is None:
        return "redis-server not found (Debian: apt-get install -y redis-server)"
    if shutil.which("node") is None:
        return "node not found"
    if not os.path.isdir(os.path.join(BULLMQ_DIR, "node_modules", "bullmq")):
        if shutil.which("npm") is None:
            return "bench/bullmq/node_modules missing and npm not found"
        log("bullmq: npm ci in bench/bullmq")
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BULLMQ_DIR,
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            return f"npm ci failed: {r.stderr[-500:]}"
    return None


def bullmq_versions():
    out = {}
    for name in ("bullmq", "ioredis"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            with open(os.path.join(BULLMQ_DIR, "node_modules", name, "package.json")) as f:
                out[name] = json.load(f)["version"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True,
                                     timeout=10).stdout.strip()
        out["redis"] = subprocess.run(["redis-server", "--version"], capture_output=True,
                                      text=True, timeout=10).stdout.split()[2]
    return out


def node_cmd(mode, redis, queue, *extra):
    return (["node", os.path.join(BULLMQ_DIR, "worker.mjs"), mode, "--redis-port",
             str(redis.port), "--queue", queue] + [str(x) for x in extra])


def bullmq_produce(ctx, redis, queue, extra, timeout_s):
    """Runs worker.mjs produce; returns its JSON line and the CPU seconds node used."""
    cpu0 = os.times()
    p = started("bullmq produce", subprocess.Popen(
        node_cmd("produce", redis, queue, "--max-seconds", int(timeout_s), *extra),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        out, err = p.communicate(timeout=timeout_s + 60)
    finally:
        stop_started(p)
    cpu1 = os.times()
    if p.returncode != 0:
        raise RuntimeError(f"worker.mjs produce failed (rc {p.returncode}): {err[-500:]}")
    res = json.loads(out.strip().splitlines()[-1])
    res["node_cpu_s"] = round((cpu1.children_user + cpu1.children_system)
                              - (cpu0.children_user + cpu0.children_system), 2)
    return res


class BullWorker:
    """A worker.mjs work process (a BullMQ Worker posting to the receiver)."""

    def __init__(self, ctx, redis, queue, label):
        args = ctx.args
        self.log_path = os.path.join(ctx.workdir, f"{label}.log")
        self.errf = open(self.log_path, "ab")
        self.proc = started(label, subprocess.Popen(
            node_cmd("work", redis, queue, "--url", ctx.receiver.url, "--concurrency",
                     args.bullmq_concurrency, "--max-seconds", 3600),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.errf))
        line = self._line(20.0)
        if not line or json.loads(line).get("event") != "ready":
            raise RuntimeError(f"{label} not ready: {line!r} {tail(self.log_path)}")

    def _line(self, timeout_s):
        import select
        r, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        return self.proc.stdout.readline().decode() if r else None

    def stop(self):
        """SIGTERM; returns its summary line (completed, failed) or None."""
        summary = None
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.send_signal(signal.SIGTERM)
            line = self._line(10.0)
            with contextlib.suppress(ValueError, TypeError):
                summary = json.loads(line)
        stop_started(self.proc)
        self.errf.close()
        return summary

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=5)
        stop_started(self.proc)
        self.errf.close()


def bullmq_fire_run(ctx, label, dues, workers=1, kill_at_s=None, grace_s=5.0, max_wait_s=20.0):
    """The BullMQ twin of synod_fire_run: a fresh Redis, `workers` worker processes, one
    delayed job per entry of `dues` (due rounded to the millisecond, BullMQ's unit) added
    before the first is due with --connections adds in flight; optionally SIGKILLs worker 1
    kill_at_s after the first due."""
    args, rcv = ctx.args, ctx.receiver
    redis = Redis(ctx, f"redis-{label.replace(' ', '-')}")
    ws = []
    try:
        ws = [BullWorker(ctx, redis, "timers", f"bullmq-worker-{label.replace(' ', '-')}-{k}")
              for k in range(workers)]
        n = len(dues)
        lead = lead_seconds(args, n)
        t0_ns = ms_aligned(time.time_ns() + int(lead * 1e9))
        prefix = label[0]
        jobs = [[f"{prefix}{i}", str(ms_aligned(t0_ns + off + 500_000))]
                for i, (off, _g) in enumerate(dues)]
        path = os.path.join(ctx.workdir, f"jobs-{label.replace(' ', '-')}.json")
        with open(path, "w") as f:
            json.dump({"jobs": jobs}, f)
        rcv.reset()
        log(f"{label}: adding {n} delayed jobs ({args.connections} in flight), first due in "
            f"{lead:.1f} s")
        prod = bullmq_produce(ctx, redis, "timers",
                              ["--file", path, "--concurrency", args.connections],
                              lead + (dues[-1][0]) / 1e9)
        done_ns = time.time_ns()
        prod["finished_before_first_due_s"] = r3((t0_ns - done_ns) / 1e9)
        log(f"{label}: {prod['added']}/{n} added ({prod['adds_per_s']}/s), "
            f"{prod['finished_before_first_due_s']} s before the first due")
        expected = {j[0]: (int(j[1]), dues[i][1]) for i, j in enumerate(jobs)}
        pids = {"redis": redis.proc.pid, "receiver": rcv.proc.pid,
                **{f"worker{k}": w.proc.pid for k, w in enumerate(ws)}}
        watch = CpuWatch(pids)
        kill = None
        if kill_at_s is not None:
            kill_ns = t0_ns + int(kill_at_s * 1e9)
            while time.time_ns() < kill_ns:
                time.sleep(min(0.05, max(0.0, (kill_ns - time.time_ns()) / 1e9)))
            kill_wall = time.time_ns()
            ws[0].kill()
            kill = {"victim": "worker0", "at_ns": kill_wall,
                    "after_first_due_s": r3((kill_wall - t0_ns) / 1e9)}
            log(f"{label}: SIGKILLed worker0")
        last_due = max(int(j[1]) for j in jobs)
        waited = wait_fired(rcv, n, last_due, grace_s, max_wait_s)
        cpu_fire = watch.result()
        records = rcv.records()
        counts = json.loads(subprocess.run(node_cmd("counts", redis, "timers"),
                                           capture_output=True, text=True,
                                           timeout=60).stdout or "null")
        summaries = [w.stop() for w in ws if w.proc.poll() is None]
        report = {"add": prod, "waited_after_last_due_s": r3(waited),
                  "cpu_while_firing": cpu_fire, "job_counts_after": counts,
                  "worker_summaries": summaries, "workers": workers,
                  "worker_concurrency": args.bullmq_concurrency}
        return report, expected, records, t0_ns, kill
    finally:
        for w in ws:
            if w.proc.poll() is None:
                w.stop()
        redis.stop()


def bullmq_lateness(ctx):
    """Lateness of BullMQ delayed jobs at each rate of --plan (one worker)."""
    args = ctx.args
    plan = parse_plan(args.plan, args.scale)
    dues = plan_dues(0, plan)
    out, expected, records, t0_ns, _ = bullmq_fire_run(
        ctx, "lateness", dues, workers=args.bullmq_workers, grace_s=5.0, max_wait_s=30.0)
    groups = [f"{r}_per_s" for r, _ in plan]
    out["by_rate"], out["receipts"] = fire_report(expected, records, groups,
                                                  args.early_tolerance_ms, t0_ns)
    out["plan"] = [{"rate_per_s": r, "seconds": s} for r, s in plan]
    for g, row in out["by_rate"].items():
        lm = row["lateness_ms"] or {}
        log(f"bullmq lateness {g}: fired {row['fired']}/{row['timers']}, p50 {lm.get('p50')} "
            f"p99 {lm.get('p99')} max {lm.get('max')} ms, dup {row['duplicates']}")
    return out


def bullmq_create(ctx):
    """queue.add of --create-timers delayed jobs (due in an hour), --connections in flight."""
    args = ctx.args
    n = max(1000, int(args.create_timers * args.scale))
    redis = Redis(ctx, "redis-create")
    try:
        first = time.time_ns() // 1_000_000 + 3_600_000
        watch = CpuWatch({"redis": redis.proc.pid})
        log(f"bullmq create: {n} queue.add, {args.connections} in flight")
        prod = bullmq_produce(ctx, redis, "timers",
                              ["--count", n, "--id-prefix", "c", "--first-due-ms", first,
                               "--step-us", 1000, "--concurrency", args.connections],
                              args.create_timeout)
        prod["cpu"] = watch.result()
        prod["node_cpu_pct_of_one_core"] = (round(100.0 * prod["node_cpu_s"] / prod["seconds"], 1)
                                            if prod.get("seconds") else None)
        prod["delayed_after"] = resp_command(redis.port, "ZCARD", "bull:timers:delayed")
        log(f"bullmq create: {prod['added']}/{n} in {prod['seconds']} s = "
            f"{prod['adds_per_s']}/s")
        return prod
    finally:
        redis.stop()


def bullmq_pending(ctx):
    """Redis's memory with --pending delayed jobs (added with addBulk), and a new replica's
    time to sync (the analogue of a 4th node catching up)."""
    args = ctx.args
    n = max(1000, int(args.pending * args.scale))
    redis = Redis(ctx, "redis-pending")
    replica = None
    try:
        out = {"jobs": n, "rss_idle": redis.rss()}
        first = time.time_ns() // 1_000_000 + 3_600_000
        log(f"bullmq pending: adding {n} delayed jobs (addBulk of 1000, 8 in flight)")
        out["add"] = bullmq_produce(ctx, redis, "timers",
                                    ["--count", n, "--id-prefix", "p", "--first-due-ms", first,
                                     "--step-us", 1000, "--concurrency", 8, "--bulk", 1000],
                                    args.pending_timeout)
        out["delayed"] = resp_command(redis.port, "ZCARD", "bull:timers:delayed")
        time.sleep(1.0)
        out["rss"] = redis.rss()
        out["dbsize"] = resp_command(redis.port, "DBSIZE")
        log(f"bullmq pending: {out['delayed']} delayed, RSS {out['rss']}")
        # a replica syncs from scratch
        replica = Redis(ctx, "redis-pending-replica", replica_of=redis.port)
        t0 = replica.started
        synced = None
        while time.monotonic() - t0 < args.catchup_timeout:
            info = redis_info(replica.port, "replication")
            if info.get("master_link_status") == "up" and \
                    info.get("master_sync_in_progress") == "0" and \
                    resp_command(replica.port, "DBSIZE") == out["dbsize"]:
                synced = time.monotonic() - t0
                break
            time.sleep(0.01)
        out["replica"] = {"synced_s": r3(synced), "rss": replica.rss(),
                          "note": "a Redis replica (replicaof, no AOF) started empty: full sync "
                                  "(RDB) until its DBSIZE equals the master's"}
        log(f"bullmq pending: replica synced in {out['replica']['synced_s']} s")
        return out
    finally:
        if replica is not None:
            replica.stop()
        redis.stop()


def bullmq_failover(ctx):
    """Two BullMQ workers; worker 0 SIGKILLed at the same moment as Synod's agent."""
    args = ctx.args
    secs, kill_at = failover_times(args)
    dues = [(int(round(k * 1e9 / args.failover_rate)), None)
            for k in range(int(args.failover_rate * secs))]
    out, expected, records, t0_ns, kill = bullmq_fire_run(
        ctx, "failover", dues, workers=2, kill_at_s=kill_at, grace_s=args.failover_max_wait,
        max_wait_s=args.failover_max_wait)
    out.update({"rate_per_s": args.failover_rate, "seconds": secs, "kill_at_s": kill_at,
                "kill": kill})
    out.update(failover_report(expected, records, kill["at_ns"], args, t0_ns))
    out["note"] = ("BullMQ re-runs a job whose worker died once its lock expires and a live "
                   "worker's stalled-job check runs (lockDuration and stalledInterval 30 s by "
                   "default); Redis itself is a single point of failure here")
    return out


# ---------------------------------------------------------------------------------------------
# Goals and the run

def goals(result):
    """Synod's goals, from its parts (None where the part did not run or failed)."""
    g = {}
    syn = result.get("synod", {})
    lat = syn.get("lateness") or {}
    for label, row in (lat.get("by_rate") or {}).items():
        rate = int(label.split("_")[0])
        limit = 10.0 if rate <= 2000 else 100.0
        p99 = (row.get("lateness_ms") or {}).get("p99")
        g[f"lateness_p99_under_{int(limit)}ms_at_{rate}_per_s"] = (
            p99 is not None and p99 < limit and row["missed"] == 0)
    if lat.get("by_rate"):
        g["lateness_none_early_missed_or_duplicated"] = all(
            r["early_beyond_tolerance"] == 0 and r["missed"] == 0 and r["duplicates"] == 0
            for r in lat["by_rate"].values())
    cr = syn.get("create") or {}
    g["create_at_least_20000_per_s"] = (cr["creates_per_s"] >= 20000 and
                                        cr["acknowledged"] == cr["requested"]
                                        if cr.get("creates_per_s") else None)
    pe = syn.get("pending") or {}
    if pe.get("rss"):
        rows = list(pe["rss"].values()) + list((pe.get("rss_after_fourth") or {}).values())
        g["pending_rss_under_500mb_per_node"] = all(
            (r.get("vm_rss_mb") or 1e9) < 500 for r in rows) and \
            pe["create"]["acknowledged"] == pe["timers"]
    fa = pe.get("fourth_agent") or {}
    if fa:
        a, s = fa.get("applied_reached_leader_commit_s"), fa.get("timer_stats_match_leader_s")
        g["pending_catchup_under_10s"] = a is not None and s is not None and a < 10 and s < 10
    if "leader_changes" in pe:
        g["pending_no_leader_change"] = pe["leader_changes"] == 0
    fo = syn.get("failover") or {}
    if fo.get("by_kill"):
        g["failover_all_within_1_5s"] = fo["by_kill"]["due_after_kill"]["met"]
    return g


class Ctx:
    def __init__(self, args, workdir, receiver):
        self.args = args
        self.workdir = workdir
        self.receiver = receiver


def run_part(result, system, name, fn):
    t0 = time.monotonic()
    m0, me0 = machine_busy_s(), self_cpu_s()
    load0 = loadavg()
    try:
        row = fn()
    except (RuntimeError, OSError, KeyError, TypeError, ValueError,
            subprocess.SubprocessError) as e:
        row = {"error": f"{type(e).__name__}: {e}"}
        log(f"{system} {name}: error: {e}")
    wall = time.monotonic() - t0
    row["part_seconds"] = round(wall, 1)
    row["machine_during_part"] = {
        "busy_cpu_pct_of_one_core": round(100.0 * (machine_busy_s() - m0) / wall, 1),
        "this_script_pct": round(100.0 * (self_cpu_s() - me0) / wall, 1),
        "loadavg_before": load0, "loadavg_after": loadavg()}
    result.setdefault(system, {})[name] = row


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(PARTS), help=f"parts of {','.join(PARTS)}")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="synod,bullmq (default both)")
    p.add_argument("--synod", dest="binary", default=DEFAULT_BINARY,
                   help="synod binary (build/synod); the agents run a copy")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies durations and counts (not rates), e.g. 0.1 for a smoke run")
    p.add_argument("--plan", default="2000:10,10000:5",
                   help="lateness: rate:seconds,... (2000:10,10000:5)")
    p.add_argument("--connections", type=int, default=64,
                   help="concurrent keep-alive create clients / adds in flight (64)")
    p.add_argument("--create-client", choices=["async", "threads"], default="async",
                   help="async: one selector loop; threads: http.client per connection")
    p.add_argument("--create-timers", type=int, default=50_000, help="create: timers (50000)")
    p.add_argument("--create-timeout", type=float, default=300.0, help="create: bound, s (300)")
    p.add_argument("--pending", type=int, default=1_000_000, help="pending: timers (1000000)")
    p.add_argument("--pending-timeout", type=float, default=900.0,
                   help="pending: bound on creating them, s (900)")
    p.add_argument("--catchup-timeout", type=float, default=120.0,
                   help="pending: bound on the 4th agent / replica catch-up, s (120)")
    p.add_argument("--failover-rate", type=int, default=200, help="failover: timers/s (200)")
    p.add_argument("--failover-seconds", type=float, default=10.0, help="failover: s (10)")
    p.add_argument("--failover-kill-at", type=float, default=3.0,
                   help="failover: SIGKILL this long after the first due, s (3)")
    p.add_argument("--failover-late-s", type=float, default=1.5,
                   help="failover: a fire later than this is late, s (1.5)")
    p.add_argument("--failover-max-wait", type=float, default=75.0,
                   help="failover: wait for fires at most this long after the last due, s "
                        "(75: BullMQ recovers a dead worker's jobs after 30-60 s)")
    p.add_argument("--lead-seconds", type=float, default=0.0,
                   help="creates start this long before the first due (default 3 s + timers "
                        "at --assumed-create-rate)")
    p.add_argument("--assumed-create-rate", type=float, default=5000.0,
                   help="for the default lead (5000/s)")
    p.add_argument("--early-tolerance-ms", type=float, default=1.0,
                   help="a fire more than this before due is early (1.0)")
    p.add_argument("--snapshot-threshold", type=int, default=8192,
                   help="the agents' --snapshot-threshold (8192, the agent's default)")
    p.add_argument("--redis-aof", choices=["everysec", "always", "no"], default="everysec",
                   help="Redis durability: appendonly with this appendfsync, or none (everysec)")
    p.add_argument("--bullmq-workers", type=int, default=3,
                   help="lateness: BullMQ worker processes (3: one per Synod agent)")
    p.add_argument("--bullmq-concurrency", type=int, default=100,
                   help="jobs in flight per BullMQ worker (100)")
    p.add_argument("--skip-capacity", action="store_true",
                   help="do not measure the receiver's capacity first")
    p.add_argument("--keep", action="store_true", help="keep logs and data dirs")
    p.add_argument("--workdir", default=None, help="parent of the temporary work dir")
    p.add_argument("--internal-receiver", type=int, help=argparse.SUPPRESS)
    p.add_argument("--internal-blast", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.internal_receiver:
        receiver_main(args.internal_receiver)
        return 0
    if args.internal_blast:
        blast_main(int(args.internal_blast[0]), int(args.internal_blast[1]),
                   float(args.internal_blast[2]))
        return 0
    want = [s.strip() for s in args.only.split(",") if s.strip()]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if [s for s in want if s not in PARTS] or [s for s in systems if s not in SYSTEMS]:
        p.error(f"parts are {PARTS}, systems {SYSTEMS}")
    if "synod" in systems and not os.access(args.binary, os.X_OK):
        p.error(f"{args.binary} is not executable (build first)")
    try:
        plan = parse_plan(args.plan, 1.0)
    except ValueError:
        p.error("--plan: rate:seconds,...")
    if not (0 < args.scale <= 10 and 1 <= args.connections <= 512
            and all(1 <= r <= 100_000 and s <= 600 for r, s in plan)
            and 1 <= args.create_timers <= 10_000_000 and 1 <= args.pending <= 10_000_000
            and 1 <= args.failover_rate <= 100_000 and 0 < args.failover_seconds <= 600
            and 0 < args.failover_kill_at < args.failover_seconds
            and 1 <= args.bullmq_workers <= 16 and 1 <= args.bullmq_concurrency <= 10_000
            and 0 < args.failover_max_wait <= 600 and args.assumed_create_rate > 0):
        p.error("argument out of range")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    result = {"benchmark": "timers", "machine": machine_info(), "parts": want,
              "systems": systems,
              "settings": {"scale": args.scale, "plan": args.plan,
                           "connections": args.connections, "create_client": args.create_client,
                           "create_timers": args.create_timers, "pending": args.pending,
                           "failover": {"rate": args.failover_rate,
                                        "seconds": args.failover_seconds,
                                        "kill_at_s": args.failover_kill_at},
                           "redis_durability": ("appendonly no" if args.redis_aof == "no" else
                                                f"appendonly yes, appendfsync {args.redis_aof}")
                                               + ", no RDB saves",
                           "synod_agents": "3 voters, --standbys 0, --snapshot-threshold "
                                           f"{args.snapshot_threshold}, election 300 ms, "
                                           "heartbeat 100 ms, beacons 200 ms"}}
    binary_before = binary_identity(args.binary)
    result["synod_binary"] = {"path": args.binary, **binary_before}
    workdir = tempfile.mkdtemp(prefix="synod-timer-bench-", dir=args.workdir)
    log(f"work dir {workdir}")
    source_binary = args.binary
    try:
        if "synod" in systems:
            args.binary = os.path.join(workdir, "synod")
            shutil.copy2(source_binary, args.binary)
            if binary_identity(args.binary) != binary_before:
                raise RuntimeError(f"{source_binary} changed while it was copied")
        if "bullmq" in systems:
            why = bullmq_available(args)
            if why:
                result["bullmq_skipped"] = why
                systems = [s for s in systems if s != "bullmq"]
                log(f"bullmq skipped: {why}")
            else:
                result["bullmq_versions"] = bullmq_versions()
        receiver = Receiver(workdir)
        ctx = Ctx(args, workdir, receiver)
        if not args.skip_capacity:
            result["receiver_capacity"] = receiver.capacity()
            log(f"receiver capacity: {result['receiver_capacity']['requests_per_s']} req/s")
        fns = {"synod": {"lateness": synod_lateness, "create": synod_create,
                         "pending": synod_pending, "failover": synod_failover},
               "bullmq": {"lateness": bullmq_lateness, "create": bullmq_create,
                          "pending": bullmq_pending, "failover": bullmq_failover}}
        for part in PARTS:
            if part not in want:
                continue
            for system in systems:
                log(f"== {system} {part}")
                run_part(result, system, part, lambda: fns[system][part](ctx))
        result["receiver_stats"] = receiver.count()
    except Exception as e:  # report, still print the JSON gathered so far
        record_failure(result, e)
    finally:
        with signals_ignored():
            stop_processes([x for x in PROCS if x[1].poll() is None])
        finish_result(result, source_binary, binary_before, workdir, args.keep,
                      "logs and data dirs", agent_exits_abnormal=ABNORMAL_EXITS,
                      agent_log_problems=LOG_PROBLEMS, http_errors=HTTP_ERRORS)
    result["goals"] = goals(result)
    print(json.dumps(ordered(result, ["benchmark", "machine", "settings", "goals", "synod",
                                      "bullmq"]), indent=2))
    if "interrupted" in result:
        return 130
    failed = "error" in result or any("error" in (result.get(s) or {}).get(pt, {})
                                      for s in SYSTEMS for pt in PARTS)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
