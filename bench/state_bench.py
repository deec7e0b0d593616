#!/usr/bin/env python3
"""Replicated-state benchmark for Synod agents (run by hand, not by tests).

One 3-node cluster (--bootstrap-expect 3 --standbys 0, so a 4th node is a spare) on loopback
only (127.68.20.x addresses, discovery broadcast to 127.255.255.255 on a random free port),
holding --entries (1,000,000) small entries shaped like timer records (20-byte key, 80-byte
value). Parts, run in this order (load is always run: the others need its state):

  load       POST /v1/kv batches to the leader over a few keep-alive connections; keys/s, and
             until every node's synod_kv_keys reaches the total.
  latency    ONE client PUTs one key at a time for --latency-seconds (30) while the agents,
             started with --snapshot-threshold --lat-snapshot-threshold (2000), snapshot the
             whole state again and again. Goals: max < 50 ms, p99 < 10 ms, no leader change.
  snapshot   The leader's last snapshot: capture (event loop), write (background
             serialization), bytes; snapshot files in its raft dir. Goal: write < 3 s.
  catchup    (a) SIGKILL a follower voter, restart it on its data dir (goal < 3 s); (b) a 4th
             node joins as a spare and fetches the whole state (goal < 10 s); (c) SIGKILL and
             restart that spare (goal < 10 s). Then 200 random keys read on every node.
  memory     VmRSS of every agent after the load and at the end against the leader's last
             snapshot size. Goal: < 3x.

Prints one JSON object to stdout; progress goes to stderr. Python 3 standard library only.
Every process started is stopped (SIGTERM, then SIGKILL) in a finally block, also on Ctrl-C.
"""

import argparse
import contextlib
import gc
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

from benchlib import (Agent as AgentBase, AgentCluster, StartWatch, dir_bytes, exit_record,
                      finish_result, get_body, log, log_problems, loadavg, machine_busy_s,
                      machine_info, ordered, percentile, read_lines, read_status_kb,
                      record_failure, tail, binary_identity, _on_signal)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BINARY = os.path.join(os.path.dirname(HERE), "build", "synod")
API_PORT = 7400
RAFT_PORT = 7401
PEER_PORT = 7402
NET = "127.68.20."          # voters .2-.4, the spare .5 (clock_bench uses 127.68.1-3.x)
PARTS = ["load", "latency", "snapshot", "catchup", "memory"]
MAX_BODY = 1024 * 1024
MAX_BATCH_KEYS = 10000
KEY_BYTES = 20
VALUE_BYTES = 80

ABNORMAL_EXITS = []   # agents that exited non-zero when stopped (not the ones SIGKILLed on purpose)
LOG_PROBLEMS = {}     # {"count", "distinct_first_seen"} of warning/error/critical log lines
HTTP_ERRORS = {}      # error kind -> count, over the whole run


def count_error(kind):
    HTTP_ERRORS[kind] = HTTP_ERRORS.get(kind, 0) + 1


# ---------------------------------------------------------------------------------------------
# Entries: timer-shaped records, derived from their number so that any node can be checked.

def key_of(i):
    return f"timer-{i:014d}"                       # 20 bytes


def value_of(i, gen=0):
    v = (f"due={1_900_000_000_000 + i * 1000:015d};every=0;owner=n{i % 7};cmd=START_TRANSMIT;"
         f"seq={i:09d};g={gen}")
    return v.ljust(VALUE_BYTES, ".")[:VALUE_BYTES]  # 80 bytes


# ---------------------------------------------------------------------------------------------
# HTTP helpers (all to 127.68.20.x)

def http_get(ip, path, timeout=0.5):
    """GET http://ip:7400/path -> (status or None, body bytes)."""
    where = path.split("?")[0].rsplit("/", 1)[0] or path

    def on_error(kind):  # an answer's status is counted with the path, a failure without
        count_error(f"GET {where} {kind}" if kind.startswith("HTTP ") else f"GET {kind}")
    return get_body(ip, API_PORT, path, timeout, on_error)


def http_get_json(ip, path, timeout=0.5):
    status, body = http_get(ip, path, timeout)
    if status != 200:
        return None
    try:
        return json.loads(body)
    except ValueError:
        count_error("GET bad JSON")
        return None


METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def metrics(ip, timeout=1.0):
    """GET /metrics -> {name: value} of the unlabelled samples, or None."""
    status, body = http_get(ip, "/metrics", timeout)
    if status != 200:
        return None
    out = {}
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        if m and not m.group(2):
            with contextlib.suppress(ValueError):
                out[m.group(1)] = float(m.group(3))
    return out


SNAP_KEYS = ("synod_snapshots_total", "synod_snapshot_capture_seconds",
             "synod_snapshot_write_seconds", "synod_snapshot_bytes", "synod_kv_keys",
             "synod_raft_commit_index", "synod_raft_applied_index", "synod_raft_term")


def metric_view(ip):
    m = metrics(ip)
    if m is None:
        return None
    v = {k.replace("synod_", ""): m.get(k) for k in SNAP_KEYS}
    for k in ("snapshots_total", "snapshot_bytes", "kv_keys", "raft_commit_index",
              "raft_applied_index", "raft_term"):
        if v.get(k) is not None:
            v[k] = int(v[k])
    return v


class KeepAlive:
    """One keep-alive HTTP/1.1 connection over a raw socket: one request at a time, timed."""

    def __init__(self, ip, timeout=10.0):
        self.ip = ip
        self.timeout = timeout
        self.sock = None

    def connect(self):
        self.close()
        self.sock = socket.create_connection((self.ip, API_PORT), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def request(self, raw):
        """Sends `raw` (a whole request); returns (status int, body bytes). Raises OSError."""
        if self.sock is None:
            self.connect()
        self.sock.sendall(raw)
        buf = b""
        while True:
            h = buf.find(b"\r\n\r\n")
            if h >= 0:
                head = buf[:h]
                cl = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, val = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        cl = int(val.strip())
                if len(buf) >= h + 4 + cl:
                    if len(buf) > h + 4 + cl:
                        raise OSError("unexpected bytes after the answer")
                    return int(head[9:12]), buf[h + 4:h + 4 + cl]
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionResetError("connection closed by the agent")
            buf += data


def put_request(key, value):
    body = value.encode()
    return (f"PUT /v1/kv/{key} HTTP/1.1\r\nHost: synod\r\nContent-Length: {len(body)}\r\n\r\n"
            .encode() + body)


# ---------------------------------------------------------------------------------------------
# /proc and files

def raft_dir_snapshots(agent):
    """Snapshot files in the agent's raft dir: [{name, index, term, bytes}] (data and .meta)."""
    d = os.path.join(agent.data_dir, "raft")
    out = []
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(d)):
            if not name.startswith("snapshot-"):
                continue
            row = {"name": name}
            parts = name.split("-")
            with contextlib.suppress(ValueError, IndexError):
                row["term"] = int(parts[1])
                row["index"] = int(parts[2])
            with contextlib.suppress(OSError):
                row["bytes"] = os.path.getsize(os.path.join(d, name))
            out.append(row)
    return out


# ---------------------------------------------------------------------------------------------
# Cluster

class Agent(AgentBase):
    def __init__(self, name, ip, data_dir, log_path, bootstrap):
        super().__init__(name, ip, data_dir, log_path)
        self.bootstrap = bootstrap   # extra flags: --bootstrap-expect 3, or --join ...


class Cluster(AgentCluster):
    """Agents that are always stopped (context manager)."""

    ports = (API_PORT, RAFT_PORT, PEER_PORT)
    voters = 3
    leader_timeout = 0.5
    log_command = True

    def __init__(self, args, workdir):
        super().__init__(args.binary, os.path.join(workdir, "state"))
        self.args = args
        for i in range(3):
            self.add_agent(["--bootstrap-expect", "3"])

    def add_agent(self, bootstrap):
        i = len(self.agents) + 1
        a = Agent(f"s{i}", f"{NET}{i + 1}", os.path.join(self.dir, f"n{i}"),
                  os.path.join(self.dir, f"n{i}.log"), bootstrap)
        self.agents.append(a)
        return a

    def flags(self):
        a = self.args
        f = ["--broadcast-port", str(self.broadcast_port), "--beacon-interval", "200ms",
             "--election-timeout", a.election_timeout, "--heartbeat-timeout", a.heartbeat_timeout,
             "--standbys", "0", "--snapshot-threshold", str(a.lat_snapshot_threshold),
             "--log-level", "info"]
        if a.feed_window:
            f += ["--feed-window", str(a.feed_window)]
        return f

    def command(self, agent):
        return ([self.binary, "agent", "--name", agent.name, "--bind", agent.ip,
                 "--data-dir", agent.data_dir] + agent.bootstrap + self.flags())

    def status(self, agent, timeout=0.3):
        return http_get_json(agent.ip, "/v1/cluster", timeout=timeout)

    def stopped(self, running, early):
        LOG_PROBLEMS.update(log_problems([(a.name, a.log_path) for a in self.agents], 12) or {})
        ABNORMAL_EXITS.extend(exit_record(a, a in early) for a in running + early
                              if a.proc.returncode != 0)


def log_lines(agent, pattern, limit=20, since=None):
    """Lines of the agent's log matching the regex `pattern` (the last `limit`), only those
    stamped at or after `since` (the logs' own time format) if given."""
    rx = re.compile(pattern)
    return [ln[:300] for ln in read_lines(agent.log_path)
            if rx.search(ln) and (since is None or ln[:23] >= since)][-limit:]


# ---------------------------------------------------------------------------------------------
# State kept across the parts

class Run:
    def __init__(self, args, cl):
        self.args = args
        self.cl = cl
        self.total = args.entries
        self.overrides = {}        # key number -> value written after the load
        self.rss = {}              # label -> {agent: {...}}

    def expected(self, i):
        return self.overrides.get(i, value_of(i))

    def leader(self):
        leader = self.cl.leader_agent()
        if leader is None:
            raise RuntimeError("no leader")
        return leader

    def snapshot_rss(self, label):
        row = {}
        for a in self.cl.alive():
            row[a.name] = {"vm_rss_mb": round((read_status_kb(a.proc.pid, "VmRSS") or 0) / 1024, 1),
                           "vm_hwm_mb": round((read_status_kb(a.proc.pid, "VmHWM") or 0) / 1024, 1)}
        self.rss[label] = row
        return row


def wait_keys_everywhere(agents, total, timeout_s):
    """Until every agent's synod_kv_keys == total; returns (seconds or None, {name: keys})."""
    t0 = time.monotonic()
    last = {}
    while time.monotonic() - t0 < timeout_s:
        for a in agents:
            m = metrics(a.ip)
            if m is not None:
                last[a.name] = int(m.get("synod_kv_keys", -1))
        if len(last) == len(agents) and all(v == total for v in last.values()):
            return time.monotonic() - t0, last
        time.sleep(0.1)
    return None, last


# ---------------------------------------------------------------------------------------------
# 1. load

def batch_body(lo, hi):
    return json.dumps({"entries": {key_of(i): value_of(i) for i in range(lo, hi)}},
                      separators=(",", ":")).encode()


def bench_load(run):
    args, cl = run.args, run.cl
    leader = run.leader()
    per = min(MAX_BATCH_KEYS, args.batch_keys)
    while per > 1 and len(batch_body(0, per)) > MAX_BODY:
        per = int(per * 0.9)
    batches = [(lo, min(lo + per, run.total)) for lo in range(0, run.total, per)]
    m0 = {a.name: metric_view(a.ip) for a in cl.agents}
    st0 = cl.status(leader, 1.0) or {}
    log(f"load: {run.total} keys in {len(batches)} batches of {per} over {args.load_connections} "
        f"connections to the leader {leader.name}")
    lock = threading.Lock()
    todo = list(reversed(batches))
    stats = {"ok_batches": 0, "retries": 0, "non_200": {}, "conn_errors": {}, "gave_up": 0,
             "first_non_200": None, "written_mismatch": 0}
    lat = []
    attempts = {}
    deadline = time.monotonic() + args.load_timeout
    stop = threading.Event()

    def worker():
        conn = None
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                if not todo:
                    break
                lo, hi = todo.pop()
            body = batch_body(lo, hi)
            t = time.monotonic()
            status = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(leader.ip, API_PORT, timeout=60.0)
                conn.request("POST", "/v1/kv", body=body,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    k = type(e).__name__
                    stats["conn_errors"][k] = stats["conn_errors"].get(k, 0) + 1
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            if status == 200:
                with lock:
                    stats["ok_batches"] += 1
                    lat.append(time.monotonic() - t)
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        if json.loads(data)["written"] != hi - lo:
                            stats["written_mismatch"] += 1
                continue
            with lock:
                if status is not None:
                    stats["non_200"][str(status)] = stats["non_200"].get(str(status), 0) + 1
                    if stats["first_non_200"] is None:
                        stats["first_non_200"] = f"{status} {data[:200].decode('utf-8', 'replace')}"
                n = attempts.get(lo, 0) + 1
                attempts[lo] = n
                if n <= args.load_max_retries:
                    stats["retries"] += 1
                    todo.append((lo, hi))
                else:
                    stats["gave_up"] += 1
            time.sleep(min(1.0, 0.05 * n))
        if conn is not None:
            conn.close()

    # Who leads, seen by every node every 0.25 s: a change of term during the load is shown.
    changes = []
    seen = {}

    def watcher():
        while not stop.is_set() and time.monotonic() < deadline + 70:
            for a in cl.agents[:3]:
                st = cl.status(a, 0.25)
                if st is None:
                    continue
                now = (st.get("term"), (st.get("leader") or {}).get("name"))
                if seen.get(a.name) != now:
                    if a.name in seen:
                        changes.append({"at_s": round(time.monotonic() - t0, 3), "node": a.name,
                                        "term": now[0], "leader": now[1]})
                    seen[a.name] = now
            stop.wait(0.25)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.load_connections)]
    for t in threads:
        t.start()
    watch = threading.Thread(target=watcher, daemon=True)
    watch.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.5)
                if time.monotonic() > deadline + 70:
                    break
    finally:
        stop.set()
    t1 = time.monotonic()
    watch.join(timeout=5.0)
    out = {"entries": run.total, "key_bytes": KEY_BYTES, "value_bytes": VALUE_BYTES,
           "keys_per_request": per, "request_body_bytes": len(batch_body(0, per)),
           "connections": args.load_connections, "leader": leader.name,
           "batches": len(batches)}
    out.update(stats)
    out["seconds"] = round(t1 - t0, 3)
    out["keys_per_s"] = round(stats["ok_batches"] * per / (t1 - t0), 1) if t1 > t0 else None
    s = sorted(lat)
    out["request_latency_ms"] = {"n": len(s),
                                 "p50": round(1000 * percentile(s, 50), 1) if s else None,
                                 "p99": round(1000 * percentile(s, 99), 1) if s else None,
                                 "max": round(1000 * s[-1], 1) if s else None}
    log(f"load: {stats['ok_batches']}/{len(batches)} batches in {out['seconds']} s "
        f"({out['keys_per_s']} keys/s); retries {stats['retries']}, non-200 {stats['non_200']}")
    if stats["ok_batches"] != len(batches):
        out["met"] = False
        raise LoadFailed(out)
    waited, keys = wait_keys_everywhere(cl.agents, run.total, 120.0)
    out["all_nodes_have_all_keys_s_after_load"] = round(waited, 3) if waited is not None else None
    out["kv_keys_by_node"] = keys
    if waited is not None:
        out["keys_per_s_until_on_every_node"] = round(run.total / (t1 - t0 + waited), 1)
    st1 = cl.status(leader, 1.0) or {}
    if st0.get("commit_index") is not None and st1.get("commit_index") is not None:
        out["raft_entries"] = st1["commit_index"] - st0["commit_index"]
        out["leader_changed"] = st1.get("leader") != st0.get("leader") or \
            st1.get("term") != st0.get("term")
    out["term_before_after"] = [st0.get("term"), st1.get("term")]
    out["leader_after"] = (st1.get("leader") or {}).get("name")
    out["views_changed_during_load"] = changes[:30]
    m1 = {a.name: metric_view(a.ip) for a in cl.agents}
    out["snapshots_during_load"] = {n: (m1[n] or {}).get("snapshots_total", 0)
                                    - (m0[n] or {}).get("snapshots_total", 0)
                                    for n in m1 if m0.get(n) and m1.get(n)}
    out["data_dir_mb"] = {a.name: round(dir_bytes(a.data_dir) / 1e6, 1) for a in cl.agents}
    out["met"] = waited is not None
    return out


class LoadFailed(RuntimeError):
    def __init__(self, out):
        super().__init__(f"load: only {out['ok_batches']} of {out['batches']} batches committed")
        self.out = out


# ---------------------------------------------------------------------------------------------
# Driving snapshots when the latency part is not run

def ensure_full_snapshot(run, leader, why):
    """If the leader has no snapshot taken after the load (its metrics say none), PUTs one key at
    a time (overwrites, tracked) until it takes one; bounded by entries and time."""
    m = metric_view(leader.ip) or {}
    base = m.get("snapshots_total", 0)
    files = raft_dir_snapshots(leader)
    idx = max([f.get("index", 0) for f in files] or [0])
    st = run.cl.status(leader, 1.0) or {}
    if base and idx and st.get("commit_index") and idx >= run.load_end_index:
        return None
    log(f"{why}: the leader holds no snapshot of the loaded state; PUTs until it takes one")
    ka = KeepAlive(leader.ip)
    rng = random.Random(7)
    n = 0
    t0 = time.monotonic()
    try:
        while n < run.args.lat_snapshot_threshold * 3 and time.monotonic() - t0 < 120:
            i = rng.randrange(run.total)
            v = value_of(i, 900000 + n)
            status, _ = ka.request(put_request(key_of(i), v))
            if status == 200:
                run.overrides[i] = v
            n += 1
            if n % 200 == 0:
                mm = metric_view(leader.ip) or {}
                if mm.get("snapshots_total", 0) > base and mm.get("snapshot_bytes"):
                    break
    finally:
        ka.close()
    # the snapshot is written in the background: give it time to finish
    for _ in range(100):
        mm = metric_view(leader.ip) or {}
        if mm.get("snapshots_total", 0) > base:
            break
        time.sleep(0.1)
    return {"puts": n, "seconds": round(time.monotonic() - t0, 2)}


# ---------------------------------------------------------------------------------------------
# 2. latency during snapshots

def bench_latency(run):
    args, cl = run.args, run.cl
    leader = run.leader()
    views0 = {a.name: cl.status(a, 1.0) for a in cl.agents}
    m0 = {a.name: metric_view(a.ip) for a in cl.agents}
    lst0 = views0.get(leader.name) or {}
    rng = random.Random(12345)
    ka = KeepAlive(leader.ip, timeout=10.0)
    ka.connect()
    samples = []      # (offset s, latency s, index or None, status)
    errors = {}
    snaps_seen = {}   # snapshot file name -> offset first seen
    known = {f["name"] for f in raft_dir_snapshots(leader)}
    log(f"latency: one client, PUTs to the leader {leader.name} for {args.latency_seconds} s "
        f"(snapshot threshold {args.lat_snapshot_threshold} entries, {run.total} keys)")
    # The client's own pauses must not count as commit latency: Python's cyclic garbage
    # collector walks every tracked object (this script holds a million-key bookkeeping) and
    # can stop it for tens of milliseconds. Collected now, and off during the window.
    gc.collect()
    gc.disable()
    t_start = time.monotonic()
    t_end = t_start + args.latency_seconds
    next_scan = t_start
    n = 0
    max_puts = 2_000_000
    while n < max_puts:
        now = time.monotonic()
        if now >= t_end:
            break
        if now >= next_scan:   # between requests, never inside a timed one
            for f in raft_dir_snapshots(leader):
                if f["name"] not in known and not f["name"].endswith(".meta"):
                    known.add(f["name"])
                    snaps_seen[f["name"]] = round(now - t_start, 3)
            next_scan = now + 0.1
        i = rng.randrange(run.total)
        v = value_of(i, n + 1)
        raw = put_request(key_of(i), v)
        t = time.perf_counter()
        off = time.monotonic() - t_start
        try:
            status, body = ka.request(raw)
        except OSError as e:
            dt = time.perf_counter() - t
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            samples.append((off, dt, None, None))
            ka.close()
            n += 1
            time.sleep(0.01)
            continue
        dt = time.perf_counter() - t
        index = None
        if status == 200:
            run.overrides[i] = v
            with contextlib.suppress(ValueError, KeyError, TypeError):
                index = json.loads(body)["index"]
        else:
            errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
        samples.append((off, dt, index, status))
        n += 1
    window = time.monotonic() - t_start
    gc.enable()
    ka.close()
    views1 = {a.name: cl.status(a, 1.0) for a in cl.agents}
    m1 = {a.name: metric_view(a.ip) for a in cl.agents}
    lst1 = views1.get(leader.name) or {}
    ok = [s for s in samples if s[3] == 200]
    lat = sorted(s[1] for s in ok)

    def ms(x):
        return round(1000 * x, 2) if x is not None else None
    out = {"seconds": round(window, 3), "puts": len(samples), "ok": len(ok),
           "errors": errors, "puts_per_s": round(len(ok) / window, 1) if window else None,
           "leader": leader.name, "snapshot_threshold": args.lat_snapshot_threshold,
           "state_keys": run.total}
    out["latency_ms"] = {"p50": ms(percentile(lat, 50)), "p90": ms(percentile(lat, 90)),
                         "p99": ms(percentile(lat, 99)), "p999": ms(percentile(lat, 99.9)),
                         "max": ms(lat[-1]) if lat else None,
                         "mean": ms(sum(lat) / len(lat)) if lat else None}
    out["over_10ms"] = sum(1 for x in lat if x >= 0.010)
    out["over_50ms"] = sum(1 for x in lat if x >= 0.050)
    slow = sorted(samples, key=lambda s: -s[1])[:10]
    snap_indexes = sorted({int(k.split("-")[2]) for k in snaps_seen})

    def after_snapshot(index):
        before = [x for x in snap_indexes if index is not None and x <= index]
        return index - before[-1] if before else None
    out["slowest_10"] = [{"ms": ms(s[1]), "at_s": round(s[0], 3), "index": s[2],
                          "entries_after_a_snapshot_index": after_snapshot(s[2]),
                          "status": s[3]} for s in slow]
    out["snapshot_files_seen_in_window"] = [{"name": k, "first_seen_at_s": v}
                                            for k, v in sorted(snaps_seen.items(),
                                                               key=lambda kv: kv[1])]

    def snaps(name):
        a, b = m0.get(name), m1.get(name)
        if not a or not b:
            return None
        return b["snapshots_total"] - a["snapshots_total"]
    out["snapshots_in_window"] = {
        "leader": snaps(leader.name),
        "by_node": {a.name: snaps(a.name) for a in cl.agents},
        "leader_snapshots_total_before": (m0.get(leader.name) or {}).get("snapshots_total"),
        "leader_snapshots_total_after": (m1.get(leader.name) or {}).get("snapshots_total")}
    out["leader_commit_index"] = {"before": lst0.get("commit_index"),
                                  "after": lst1.get("commit_index")}
    if lst0.get("commit_index") is not None and lst1.get("commit_index") is not None:
        out["raft_entries_in_window"] = lst1["commit_index"] - lst0["commit_index"]
    terms0 = {n: (v or {}).get("term") for n, v in views0.items()}
    terms1 = {n: (v or {}).get("term") for n, v in views1.items()}
    leaders0 = {n: ((v or {}).get("leader") or {}).get("name") for n, v in views0.items()}
    leaders1 = {n: ((v or {}).get("leader") or {}).get("name") for n, v in views1.items()}
    out["term"] = {"before": terms0, "after": terms1}
    out["leader_seen"] = {"before": leaders0, "after": leaders1}
    out["leader_changed"] = (len(set(leaders0.values()) | set(leaders1.values())) != 1
                             or len(set(terms0.values()) | set(terms1.values())) != 1)
    out["snapshot_metrics_after"] = m1.get(leader.name)
    out["goal"] = {"max_ms": 50, "p99_ms": 10, "leader_change": False}
    lm = out["latency_ms"]
    out["met"] = bool(lat and lm["max"] < 50 and lm["p99"] < 10 and not out["leader_changed"]
                      and not errors)
    log(f"latency: {len(ok)} PUTs, p50 {lm['p50']} p99 {lm['p99']} p999 {lm['p999']} max "
        f"{lm['max']} ms; leader snapshots {out['snapshots_in_window']['leader']}; "
        f"leader changed {out['leader_changed']}")
    return out


# ---------------------------------------------------------------------------------------------
# 3. snapshot cost

def bench_snapshot(run):
    cl = run.cl
    leader = run.leader()
    out = {}
    driven = ensure_full_snapshot(run, leader, "snapshot")
    if driven:
        out["puts_to_trigger_a_snapshot"] = driven
    m = metric_view(leader.ip) or {}
    out["leader"] = leader.name
    out["leader_metrics"] = {
        "snapshots_total": m.get("snapshots_total"),
        "capture_seconds": m.get("snapshot_capture_seconds"),
        "write_seconds": m.get("snapshot_write_seconds"),
        "bytes": m.get("snapshot_bytes"),
        "kv_keys": m.get("kv_keys")}
    out["bytes_per_key"] = (round(m["snapshot_bytes"] / m["kv_keys"], 1)
                            if m.get("snapshot_bytes") and m.get("kv_keys") else None)
    out["other_nodes"] = {}
    for a in cl.agents[:3]:
        if a is leader or a.proc is None or a.proc.poll() is not None:
            continue
        mm = metric_view(a.ip) or {}
        out["other_nodes"][a.name] = {k: mm.get(k) for k in (
            "snapshots_total", "snapshot_capture_seconds", "snapshot_write_seconds",
            "snapshot_bytes")}
    files = raft_dir_snapshots(leader)
    out["leader_raft_dir_snapshot_files"] = files
    data = [f for f in files if not f["name"].endswith(".meta") and "index" in f]
    if data:
        last = max(data, key=lambda f: f["index"])
        out["latest_file_on_disk_bytes"] = last.get("bytes")
        out["note_on_disk"] = ("synod_snapshot_bytes is the serialized state handed to libraft; "
                               "the file on disk is libraft's (compressed where libraft was "
                               "built with lz4)")
    out["state_keys"] = run.total
    out["goal"] = {"write_seconds": 3.0, "for_keys": 1_000_000}
    w = m.get("snapshot_write_seconds")
    out["met"] = bool(w is not None and m.get("snapshot_bytes") and w < 3.0)
    if run.total < 1_000_000:
        out["note"] = f"the goal is for 1,000,000 keys; this run holds {run.total}"
    log(f"snapshot: capture {m.get('snapshot_capture_seconds')} s, write "
        f"{m.get('snapshot_write_seconds')} s, {m.get('snapshot_bytes')} bytes")
    run.snapshot_bytes = m.get("snapshot_bytes")
    return out


# ---------------------------------------------------------------------------------------------
# 4. catch-up

def time_catch_up(run, agent, leader, label, timeout_s):
    """Launches `agent`; polls it about every 10 ms until its applied_index reaches the leader's
    commit_index read just before the launch, and its synod_kv_keys equals the total."""
    cl = run.cl
    lst = cl.status(leader, 1.0) or {}
    target = lst.get("commit_index")
    if target is None:
        raise RuntimeError(f"{label}: cannot read the leader's commit_index")
    cl.launch(agent)
    t0 = agent.started
    watch = StartWatch(t0)
    caught = keys_done = None
    last_keys = None
    polls = 0
    while time.monotonic() - t0 < timeout_s:
        if agent.proc.poll() is not None:
            break
        polls += 1
        st = http_get_json(agent.ip, "/v1/cluster", timeout=0.3)
        now = watch.saw(st)
        if st is not None and caught is None and st.get("applied_index", 0) >= target:
            caught = now
        if st is not None and keys_done is None:
            m = metrics(agent.ip, timeout=0.5)
            if m is not None:
                last_keys = int(m.get("synod_kv_keys", -1))
                if last_keys == run.total:
                    keys_done = time.monotonic() - t0
        if caught is not None and keys_done is not None:
            break
        time.sleep(0.01)
    row = {"node": agent.name, "leader": leader.name, "launched_at": agent.started_wall,
           "leader_commit_index_at_launch": target,
           "api_up_s": r4(watch.api_up), "leader_known_s": r4(watch.leader_known),
           "applied_reached_leader_commit_s": r4(caught),
           "kv_keys_reached_total_s": r4(keys_done),
           "last_status": {k: watch.last.get(k) for k in ("applied_index", "commit_index",
                                                           "phase", "term", "member")}
           if watch.last else None,
           "last_kv_keys": last_keys, "polls": polls,
           "note": "times from just before the process was launched"}
    row["node_log"] = log_lines(agent, r"consensus: |raft: ", 15, since=agent.started_wall)
    row["leader_log_about_it"] = log_lines(leader, re.escape(agent.name) + r" \(|spare .* is behind",
                                           8, since=agent.started_wall)
    if agent.proc.poll() is not None:
        row["error"] = f"{agent.name} exited with {agent.proc.returncode}: {tail(agent.log_path, 3)}"
    return row


def r4(x):
    return round(x, 4) if x is not None else None


def judge(row, goal_s, keys):
    """Notes the goal in `row` and whether every time of `keys` in it is below it."""
    row["goal_s"] = goal_s
    row["met"] = all(row[k] is not None and row[k] < goal_s for k in keys)


def healthy_again(cl, row, failure=None):
    """Waits (60 s at most) until the cluster is healthy again, notes how long in `row`; if it
    is not, raises RuntimeError(failure) when given."""
    back = cl.wait_healthy(60.0)
    row["cluster_healthy_again_s"] = r4(back)
    if back is None and failure:
        raise RuntimeError(failure)


CAUGHT_UP = ("applied_reached_leader_commit_s", "kv_keys_reached_total_s")


def role_of(cl, leader, agent):
    st = cl.status(leader, 1.0) or {}
    for m in st.get("members", []):
        if m.get("ip") == agent.ip:
            return m.get("role"), m.get("state")
    return None, None


def bench_catchup(run):
    args, cl = run.args, run.cl
    out = {}
    leader = run.leader()

    # (a) a follower voter
    follower = next(a for a in cl.agents[:3] if a is not leader)
    files_before = raft_dir_snapshots(follower)
    log(f"catchup a: SIGKILL the follower {follower.name}, restart it on its data dir")
    cl.kill(follower)
    time.sleep(0.5)
    row = time_catch_up(run, follower, leader, "voter restart", 60.0)
    row["own_snapshot_files_at_kill"] = [f["name"] for f in files_before]
    judge(row, 3.0, ["applied_reached_leader_commit_s"])
    out["a_voter_restart"] = row
    log(f"catchup a: applied {row['applied_reached_leader_commit_s']} s, keys "
        f"{row['kv_keys_reached_total_s']} s (api up {row['api_up_s']} s)")
    healthy_again(cl, row, "catchup a: the cluster is not healthy 60 s after the restart")

    # (b) a 4th node, a spare
    leader = run.leader()
    spare = cl.add_agent(["--join"] + [a.ip for a in cl.agents[:3]])
    log(f"catchup b: a 4th node {spare.name} ({spare.ip}) joins as a spare")
    row = time_catch_up(run, spare, leader, "spare join", 90.0)
    row["joined_with"] = "--join with the 3 voters' addresses (no --bootstrap-expect)"
    row["role_seen_by_leader"] = role_of(cl, leader, spare)[0]
    row["fetched_whole_state"] = bool(log_lines(spare, r"took the leader's state", 1))
    judge(row, 10.0, CAUGHT_UP)
    out["b_spare_join"] = row
    log(f"catchup b: role {row['role_seen_by_leader']}; applied "
        f"{row['applied_reached_leader_commit_s']} s, keys {row['kv_keys_reached_total_s']} s")
    healthy_again(cl, row, "catchup b: the cluster is not healthy 60 s after the join")
    run.snapshot_rss("after_spare_join")

    # (c) the spare restarted
    leader = run.leader()
    log(f"catchup c: SIGKILL the spare {spare.name}, restart it on its data dir")
    cl.kill(spare)
    time.sleep(0.5)
    n_fetch_lines = len(log_lines(spare, r"took the leader's state", 1000))
    row = time_catch_up(run, spare, leader, "spare restart", 90.0)
    row["role_seen_by_leader"] = role_of(cl, leader, spare)[0]
    row["fetched_whole_state_again"] = (len(log_lines(spare, r"took the leader's state", 1000))
                                        > n_fetch_lines)
    judge(row, 10.0, CAUGHT_UP)
    out["c_spare_restart"] = row
    log(f"catchup c: applied {row['applied_reached_leader_commit_s']} s, keys "
        f"{row['kv_keys_reached_total_s']} s")
    healthy_again(cl, row)
    out["met"] = all(out[k]["met"] for k in ("a_voter_restart", "b_spare_join",
                                             "c_spare_restart"))
    return out


# ---------------------------------------------------------------------------------------------
# Consistency (after everything) and memory

def check_consistency(run, n_keys=200):
    cl = run.cl
    agents = cl.alive()
    settled = cl.wait_healthy(30.0)
    rng = random.Random(99)
    picks = sorted(rng.sample(range(run.total), min(n_keys, run.total)))
    answers = {}
    for a in agents:
        conn = http.client.HTTPConnection(a.ip, API_PORT, timeout=2.0)
        got = {}
        try:
            for i in picks:
                try:
                    conn.request("GET", f"/v1/kv/{key_of(i)}")
                    resp = conn.getresponse()
                    body = resp.read()
                    got[i] = json.loads(body).get("value") if resp.status == 200 else \
                        f"HTTP {resp.status}"
                except (OSError, http.client.HTTPException, ValueError) as e:
                    got[i] = type(e).__name__
                    conn.close()
                    conn = http.client.HTTPConnection(a.ip, API_PORT, timeout=2.0)
        finally:
            conn.close()
        answers[a.name] = got
    names = [a.name for a in agents]
    differing = [i for i in picks if len({answers[n][i] for n in names}) != 1]
    wrong = {n: sum(1 for i in picks if answers[n][i] != run.expected(i)) for n in names}
    keys = {}
    for a in agents:
        m = metrics(a.ip)
        keys[a.name] = int(m["synod_kv_keys"]) if m and "synod_kv_keys" in m else None
    out = {"nodes": names, "keys_checked": len(picks), "cluster_settled_s": r4(settled),
           "keys_answered_differently": len(differing),
           "examples_differing": [{"key": key_of(i), **{n: answers[n][i] for n in names}}
                                  for i in differing[:3]],
           "wrong_values_by_node": wrong, "kv_keys_by_node": keys,
           "expected_kv_keys": run.total}
    out["met"] = (not differing and not any(wrong.values())
                  and all(v == run.total for v in keys.values()))
    log(f"check: {len(picks)} keys on {names}: {len(differing)} differ, wrong {wrong}; "
        f"kv keys {keys}")
    return out


def memory_report(run):
    out = {"rss": run.rss}
    size = getattr(run, "snapshot_bytes", None)
    if not size:
        leader = run.cl.leader_agent()
        if leader is not None:
            size = (metric_view(leader.ip) or {}).get("snapshot_bytes") or None
    out["serialized_state_bytes"] = size
    out["serialized_state_mb"] = round(size / 1048576, 1) if size else None
    worst = None
    measured = {k: v for k, v in run.rss.items() if k != "before_load"}
    for label, row in measured.items():
        for name, v in row.items():
            if worst is None or v["vm_rss_mb"] > worst[2]:
                worst = (label, name, v["vm_rss_mb"])
    if size and worst:
        out["worst_rss_mb"] = {"when": worst[0], "node": worst[1], "mb": worst[2]}
        out["ratios_rss_to_serialized"] = {
            label: {name: round(v["vm_rss_mb"] * 1048576 / size, 2) for name, v in row.items()}
            for label, row in measured.items()}
        idle = run.rss.get("before_load", {})
        out["rss_above_idle_mb_at_end"] = {
            name: round(v["vm_rss_mb"] - idle[name]["vm_rss_mb"], 1)
            for name, v in run.rss.get("at_end", {}).items() if name in idle}
        out["worst_ratio"] = round(worst[2] * 1048576 / size, 2)
        out["met"] = out["worst_ratio"] < 3.0
    else:
        out["met"] = None
        out["note"] = "no snapshot size known (no snapshot taken)"
    out["goal"] = "VmRSS < 3x the leader's last synod_snapshot_bytes"
    return out


# ---------------------------------------------------------------------------------------------

def run_part(result, name, fn):
    t0 = time.monotonic()
    m0, o0 = machine_busy_s(), os.times()
    load0 = loadavg()
    try:
        result[name] = fn()
    except LoadFailed as e:
        result[name] = e.out
        result[name]["error"] = str(e)
        raise
    except (RuntimeError, OSError, KeyError, TypeError, ValueError) as e:
        result[name] = {"error": f"{type(e).__name__}: {e}", "met": False}
        log(f"{name}: error: {e}")
    wall = time.monotonic() - t0
    m1, o1 = machine_busy_s(), os.times()
    # The agents are not waited for until the end, so their CPU is not in the children times:
    # "other" here is everything but this Python process (the agents included).
    ours = (o1[0] + o1[1]) - (o0[0] + o0[1])
    result[name]["part_seconds"] = round(wall, 1)
    result[name]["machine_during_part"] = {
        "busy_cpu_pct_of_one_core": round(100.0 * (m1 - m0) / wall, 1) if wall else None,
        "this_script_pct": round(100.0 * ours / wall, 1) if wall else None,
        "loadavg_before": load0, "loadavg_after": loadavg()}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(PARTS),
                   help=f"comma-separated parts of {','.join(PARTS)} (load always runs; "
                        "default all)")
    p.add_argument("--binary", default=DEFAULT_BINARY, help="synod binary (build/synod)")
    p.add_argument("--entries", type=int, default=1_000_000, help="keys loaded (1000000)")
    p.add_argument("--batch-keys", type=int, default=8000,
                   help="keys per POST /v1/kv (at most 10000; lowered until the body fits 1 MiB) "
                        "(8000)")
    p.add_argument("--load-connections", type=int, default=4,
                   help="concurrent connections to the leader while loading (4)")
    p.add_argument("--load-timeout", type=float, default=900.0, help="bound on the load, s (900)")
    p.add_argument("--load-max-retries", type=int, default=20, help="retries per batch (20)")
    p.add_argument("--lat-snapshot-threshold", type=int, default=2000,
                   help="the agents' --snapshot-threshold, entries (2000)")
    p.add_argument("--latency-seconds", type=float, default=30.0,
                   help="latency window, s (30)")
    p.add_argument("--feed-window", type=int, default=0,
                   help="the agents' --feed-window (default: the agent's own)")
    p.add_argument("--election-timeout", default="300ms", help="(300ms)")
    p.add_argument("--heartbeat-timeout", default="100ms", help="(100ms)")
    p.add_argument("--check-keys", type=int, default=200, help="random keys read back (200)")
    p.add_argument("--keep", action="store_true", help="keep agent logs and data dirs")
    p.add_argument("--workdir", default=None,
                   help="parent of the temporary work dir (default: the system's temp dir)")
    args = p.parse_args()
    want = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in want if s not in PARTS]
    if bad:
        p.error(f"unknown part(s) {bad}; choose from {PARTS}")
    if not os.access(args.binary, os.X_OK):
        p.error(f"{args.binary} is not executable (build first)")
    if not (1000 <= args.entries <= 5_000_000 and 1 <= args.batch_keys <= MAX_BATCH_KEYS
            and 1 <= args.load_connections <= 64 and 0 < args.latency_seconds <= 600
            and 16 <= args.lat_snapshot_threshold <= 10_000_000
            and 1 <= args.check_keys <= 10000):
        p.error("argument out of range")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    result = {"benchmark": "state", "binary": args.binary, "machine": machine_info(),
              "parts": ["load"] + [s for s in PARTS[1:] if s in want],
              "settings": {"entries": args.entries, "nodes": 3, "standbys": 0,
                           "snapshot_threshold": args.lat_snapshot_threshold,
                           "feed_window": args.feed_window or "agent default",
                           "election_timeout": args.election_timeout,
                           "heartbeat_timeout": args.heartbeat_timeout,
                           "addresses": f"{NET}2-{NET}5"}}
    binary_before = binary_identity(args.binary)
    result["binary_identity"] = binary_before
    workdir = tempfile.mkdtemp(prefix="synod-state-bench-", dir=args.workdir)
    log(f"work dir {workdir}")
    source_binary = args.binary
    try:
        # Agents run a copy, so that a rebuild during the run cannot mix two binaries.
        args.binary = os.path.join(workdir, "synod")
        shutil.copy2(source_binary, args.binary)
        if binary_identity(args.binary) != binary_before:
            raise RuntimeError(f"{source_binary} changed while it was copied (being rebuilt?)")
        with Cluster(args, workdir) as cl:
            run = Run(args, cl)
            log(f"starting 3 agents on {NET}2..4, broadcast port {cl.broadcast_port}, "
                f"--standbys 0 --snapshot-threshold {args.lat_snapshot_threshold}")
            for a in cl.agents:
                cl.launch(a)
            formed = cl.wait_healthy(30.0)
            if formed is None:
                raise RuntimeError("the cluster did not form within 30 s")
            result["formation_s"] = round(formed, 3)
            log(f"formed in {formed:.2f} s; leader {run.leader().name}")
            time.sleep(1.0)
            run.snapshot_rss("before_load")
            run_part(result, "load", lambda: bench_load(run))
            if not result["load"].get("met"):
                raise RuntimeError("load: not every node holds every key")
            st = cl.status(run.leader(), 1.0) or {}
            run.load_end_index = st.get("commit_index", 0)
            run.snapshot_rss("after_load")
            if "latency" in want:
                run_part(result, "latency", lambda: bench_latency(run))
            if "snapshot" in want:
                run_part(result, "snapshot", lambda: bench_snapshot(run))
            if "catchup" in want:
                run_part(result, "catchup", lambda: bench_catchup(run))
            result["check"] = check_consistency(run, args.check_keys)
            run.snapshot_rss("at_end")
            if "memory" in want:
                result["memory"] = memory_report(run)
            result["dead_agents"] = [a.name for a in cl.unexpected_deaths()]
            lead = cl.leader_agent()
            result["leader_at_end"] = lead.name if lead else None
    except Exception as e:  # report, still print the JSON gathered so far
        record_failure(result, e)
    finally:
        finish_result(result, source_binary, binary_before, workdir, args.keep,
                      "logs and data dirs", agent_exits_abnormal=ABNORMAL_EXITS,
                      agent_log_problems=LOG_PROBLEMS, http_errors=HTTP_ERRORS)
    summary = {}
    for part in PARTS:
        if isinstance(result.get(part), dict):
            summary[part] = result[part].get("met")
    if "check" in result:
        summary["check"] = result["check"].get("met")
    result["met"] = summary
    order = ["benchmark", "binary", "machine", "settings", "met", "load", "latency", "snapshot",
             "catchup", "check", "memory"]
    print(json.dumps(ordered(result, order), indent=2))
    if "interrupted" in result:
        return 130
    failed = "error" in result or any("error" in (result.get(k) or {}) for k in PARTS)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
