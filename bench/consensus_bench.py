#!/usr/bin/env python3
"""Consensus benchmark for Synod agents (run by hand, not by tests).

Three parts, each on its own 3-node cluster (--bootstrap-expect 3) on loopback only (127.67.x.y
addresses, discovery broadcast to 127.255.255.255 on a random free port):

  failover    10 times: SIGKILL the leader; time until a survivor's GET /v1/cluster names a
              different leader, and until a PUT through a survivor succeeds; then restart the
              killed node on its data dir and wait until it is back. Goals: median < 0.6 s,
              worst < 1.5 s.
  throughput  Committed PUTs per second through the agents' own proposal path, from many
              concurrent keep-alive HTTP connections (to the leader, and spread over the three
              nodes), next to raw libraft on the same machine in the same run (bench/raw_raft.c,
              compiled on the fly with gcc). Goals: >= 20,000/s and >= 80 % of raw libraft.
  restart     100,000 committed PUTs of state; SIGKILL a follower and restart it: time from the
              process start until its applied_index reaches the leader's commit_index.
              Goal < 2 s.

Prints one JSON object to stdout; progress goes to stderr. Python 3 standard library only.
Every process started is stopped (SIGTERM, then SIGKILL) in a finally block.
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

from benchlib import (Agent, AgentCluster, StartWatch, record_failure, ordered, log, tail,
                      _on_signal, summarize, machine_info, percentile, binary_identity, CLK_TCK,
                      read_cpu_ticks, self_cpu_s, machine_busy_s, close_selector, loadavg,
                      dir_bytes, exit_record, finish_result, get_json, log_problems,
                      read_status_kb)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BINARY = os.path.join(os.path.dirname(HERE), "build", "synod")
RAW_SOURCE = os.path.join(HERE, "raw_raft.c")
API_PORT = 7400
RAFT_PORT = 7401
PEER_PORT = 7402
DEFAULT_PLAN = ("async:leader:128,async:leader:256,async:leader:512,async:spread:128,"
                "async:spread:512,threads:leader:128,threads:spread:128")

# One address block per cluster, so that a cluster never reuses a previous one's addresses.
NETS = {"failover": "127.67.1.", "throughput": "127.67.2.", "restart": "127.67.3."}


ABNORMAL_EXITS = []  # agents that exited non-zero when stopped (SIGKILLs we sent are not listed)
LOG_PROBLEMS = {}  # cluster label -> {"count", "samples"} of warning/error/critical log lines
HTTP_ERRORS = {}  # error kind -> count, over the whole run (polls and single requests)
AGENT_EXTRA_ARGS = []  # added to every agent's command line (--cluster-key-file FILE)


def count_error(kind):
    HTTP_ERRORS[kind] = HTTP_ERRORS.get(kind, 0) + 1


# ---------------------------------------------------------------------------------------------
# Helpers



def free_tcp_ports(ip, n):
    """n distinct TCP ports free on ip right now (bound to 0 together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((ip, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()




def http_get_json(ip, path, timeout=0.5):
    """GET http://ip:7400/path -> parsed JSON, or None on any error (bounded by timeout)."""
    return get_json(ip, API_PORT, path, timeout, lambda kind: count_error(f"GET {kind}"))


def http_put(ip, key, value, timeout=3.0):
    """PUT http://ip:7400/v1/kv/key -> (status or None, body text or error kind)."""
    conn = http.client.HTTPConnection(ip, API_PORT, timeout=timeout)
    try:
        conn.request("PUT", f"/v1/kv/{key}", body=value)
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        if resp.status != 200:
            count_error(f"PUT HTTP {resp.status}")
        return resp.status, body
    except (OSError, http.client.HTTPException) as e:
        count_error(f"PUT {type(e).__name__}")
        return None, type(e).__name__
    finally:
        conn.close()


def read_rss_mb(pid):
    kb = read_status_kb(pid, "VmRSS")
    return round(kb / 1024.0, 1) if kb is not None else None


def dir_size_mb(path):
    return round(dir_bytes(path) / 1e6, 2)


# ---------------------------------------------------------------------------------------------
# Cluster management

class Cluster(AgentCluster):
    """A 3-node (or N-node) cluster whose agents are always stopped (context manager)."""

    ports = (API_PORT, RAFT_PORT, PEER_PORT)

    def __init__(self, binary, workdir, label, net, n=3, election="300ms", heartbeat="100ms",
                 beacon="200ms", log_level="info"):
        super().__init__(binary, os.path.join(workdir, label), label)
        self.election = election
        self.heartbeat = heartbeat
        self.beacon = beacon
        self.log_level = log_level
        self.n = n
        self.voters = n
        self.agents = [Agent(f"{label[0]}{i + 1}", f"{net}{i + 2}",
                             os.path.join(self.dir, f"n{i + 1}"),
                             os.path.join(self.dir, f"n{i + 1}.log")) for i in range(n)]

    def command(self, agent):
        return [self.binary, "agent", "--name", agent.name, "--bind", agent.ip,
                "--data-dir", agent.data_dir, "--broadcast-port", str(self.broadcast_port),
                "--beacon-interval", self.beacon, "--bootstrap-expect", str(self.n),
                "--election-timeout", self.election, "--heartbeat-timeout", self.heartbeat,
                "--log-level", self.log_level] + AGENT_EXTRA_ARGS

    def start_all(self):
        for a in self.agents:
            self.launch(a)

    def stopped(self, running, early):
        found = log_problems([(a.name, a.log_path) for a in self.agents])
        if found:
            LOG_PROBLEMS[self.label] = found
        ABNORMAL_EXITS.extend(exit_record(a, a in early, cluster=self.label)
                              for a in running + early if a.proc.returncode != 0)

    def status(self, agent, timeout=0.3):
        return http_get_json(agent.ip, "/v1/cluster", timeout=timeout)


# ---------------------------------------------------------------------------------------------
# Load generators

def _request_bytes(key, value):
    return (f"PUT /v1/kv/{key} HTTP/1.1\r\nHost: synod\r\nContent-Length: {len(value)}\r\n\r\n"
            .encode() + value)


class AsyncPutLoad:
    """Keep-alive HTTP/1.1 connections driven by one selector loop in this thread; each keeps
    one PUT outstanding (the agent serves one request at a time per connection).

    Either for `duration` seconds after `warmup` (throughput mode; keys from key_fn(conn, seq))
    or until `total` distinct keys key_fn(None, i) i < total are committed (fill mode; failed
    PUTs are retried, at most `max_retries` times each)."""

    def __init__(self, ips, connections, key_fn, value_fn, duration=None, warmup=0.0, total=None,
                 drain_timeout=10.0, max_retries=20):
        self.ips = ips
        self.n = connections
        self.key_fn = key_fn
        self.value_fn = value_fn
        self.duration = duration
        self.warmup = warmup
        self.total = total
        self.drain_timeout = drain_timeout
        self.max_retries = max_retries

    def run(self):
        sel = selectors.DefaultSelector()
        conns = []
        stats = {"ok_in_window": 0, "ok_total": 0, "non_200": {}, "conn_errors": {},
                 "connections_lost": 0, "retries": 0, "gave_up": 0}
        latencies = []
        slow = []  # (latency, sent at s after start, node ip) of answers taking >= 0.2 s
        next_index = [0]
        retry_queue = []
        retries_of = {}
        t_start = time.monotonic()
        fill = self.total is not None
        w0 = t_start + self.warmup
        w1 = None if fill else w0 + self.duration
        window = {"t0": None, "t1": None}

        class Conn:
            __slots__ = ("sock", "i", "seq", "buf", "sent_at", "item", "ip")

        def next_item(c):
            if fill:
                if retry_queue:
                    return retry_queue.pop()
                if next_index[0] >= self.total:
                    return None
                next_index[0] += 1
                return next_index[0] - 1
            c.seq += 1
            return c.seq

        def send(c):
            item = next_item(c)
            if item is None:
                return False
            c.item = item
            key = self.key_fn(None, item) if fill else self.key_fn(c.i, item)
            c.sent_at = time.monotonic()
            c.sock.sendall(_request_bytes(key, self.value_fn(item)))
            return True

        for i in range(self.n):
            ip = self.ips[i % len(self.ips)]
            s = socket.create_connection((ip, API_PORT), timeout=5.0)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            c = Conn()
            c.sock, c.i, c.seq, c.buf, c.item, c.ip = s, i, 0, b"", None, ip
            conns.append(c)
        cpu0 = self_cpu_s()
        active = 0
        try:
            for c in conns:
                # sendall on a fresh non-blocking socket with a tiny request does not block.
                if send(c):
                    sel.register(c.sock, selectors.EVENT_READ, c)
                    active += 1
            hard_deadline = (w1 + self.drain_timeout) if w1 else t_start + 300.0
            cpu_w0 = None
            cpu_w1 = None
            while active and time.monotonic() < hard_deadline:
                now = time.monotonic()
                if window["t0"] is None and now >= w0:
                    window["t0"] = now
                    cpu_w0 = self_cpu_s()
                    if not fill:
                        self.on_window_start()
                if w1 is not None and window["t1"] is None and now >= w1:
                    window["t1"] = now
                    cpu_w1 = self_cpu_s()
                    self.on_window_end()
                for key, _ in sel.select(0.05):
                    c = key.data
                    try:
                        data = c.sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as e:
                        data = None
                        kind = type(e).__name__
                        stats["conn_errors"][kind] = stats["conn_errors"].get(kind, 0) + 1
                    if not data:
                        sel.unregister(c.sock)
                        c.sock.close()
                        active -= 1
                        stats["connections_lost"] += 1
                        if fill and c.item is not None:
                            retry_queue.append(c.item)
                        continue
                    c.buf += data
                    while True:
                        h = c.buf.find(b"\r\n\r\n")
                        if h < 0:
                            break
                        head = c.buf[:h]
                        j = head.find(b"Content-Length: ")
                        cl = int(head[j + 16:head.find(b"\r\n", j)]) if j >= 0 else 0
                        if len(c.buf) < h + 4 + cl:
                            break
                        status = head[9:12]
                        body = c.buf[h + 4:h + 4 + cl]
                        c.buf = c.buf[h + 4 + cl:]
                        t_done = time.monotonic()
                        if status == b"200":
                            stats["ok_total"] += 1
                            if fill:
                                latencies.append(t_done - c.sent_at)
                                if t_done - c.sent_at >= 0.2:
                                    slow.append((t_done - c.sent_at, c.sent_at - t_start,
                                                 c.ip))
                            elif window["t0"] is not None and window["t1"] is None:
                                stats["ok_in_window"] += 1
                                if c.sent_at >= window["t0"]:
                                    latencies.append(t_done - c.sent_at)
                                    if t_done - c.sent_at >= 0.2:
                                        slow.append((t_done - c.sent_at, c.sent_at - t_start,
                                                     c.ip))
                        else:
                            code = status.decode("ascii", "replace")
                            stats["non_200"][code] = stats["non_200"].get(code, 0) + 1
                            stats.setdefault("first_non_200", code + " " + body.decode(
                                "utf-8", "replace")[:200])
                            if fill:
                                n = retries_of.get(c.item, 0) + 1
                                retries_of[c.item] = n
                                if n <= self.max_retries:
                                    retry_queue.append(c.item)
                                    stats["retries"] += 1
                                else:
                                    stats["gave_up"] += 1
                        keep_going = fill or window["t1"] is None
                        if not (keep_going and send(c)):
                            sel.unregister(c.sock)
                            c.sock.close()
                            active -= 1
                            break
            t_end = time.monotonic()
            if cpu_w1 is None:
                cpu_w1 = self_cpu_s()
            if cpu_w0 is None:
                cpu_w0 = cpu0
        finally:
            close_selector(sel, [c.sock for c in conns])
        stats["outstanding_at_end"] = active
        if fill:
            stats["committed"] = stats["ok_total"]
            stats["seconds"] = round(t_end - t_start, 3)
            stats["per_s"] = round(stats["ok_total"] / (t_end - t_start), 1)
            stats["client_cpu_pct_of_one_core"] = round(
                100.0 * (self_cpu_s() - cpu0) / (t_end - t_start), 1)
        else:
            wlen = (window["t1"] or t_end) - (window["t0"] or t_start)
            stats["window_s"] = round(wlen, 3)
            stats["per_s"] = round(stats["ok_in_window"] / wlen, 1) if wlen > 0 else None
            stats["client_cpu_pct_of_one_core"] = round(100.0 * (cpu_w1 - cpu_w0) / wlen, 1)
        if slow:
            slow.sort(reverse=True)
            stats["answers_slower_than_200ms"] = {
                "count": len(slow),
                "slowest": [{"ms": round(1000 * l, 1), "sent_at_s": round(t, 3), "node": ip}
                            for l, t, ip in slow[:5]],
                "sent_at_s_range": [round(min(t for _, t, _ in slow), 3),
                                    round(max(t for _, t, _ in slow), 3)]}
        lat = sorted(latencies)
        stats["latency_ms"] = {
            "n": len(lat),
            "p50": round(1000 * percentile(lat, 50), 2) if lat else None,
            "p90": round(1000 * percentile(lat, 90), 2) if lat else None,
            "p99": round(1000 * percentile(lat, 99), 2) if lat else None,
            "max": round(1000 * lat[-1], 2) if lat else None,
        }
        return stats

    # hooks (agent CPU sampling)
    def on_window_start(self):
        pass

    def on_window_end(self):
        pass


class ThreadPutLoad:
    """One thread per connection, each with an http.client keep-alive connection doing PUTs."""

    def __init__(self, ips, connections, key_fn, value_fn, duration, warmup):
        self.ips = ips
        self.n = connections
        self.key_fn = key_fn
        self.value_fn = value_fn
        self.duration = duration
        self.warmup = warmup

    def run(self, on_window_start, on_window_end):
        t_start = time.monotonic()
        w0 = t_start + self.warmup
        w1 = w0 + self.duration
        ok = [0] * self.n
        bad = [{} for _ in range(self.n)]
        lats = [[] for _ in range(self.n)]
        errors = [None] * self.n
        first_bad = [None]

        def worker(i):
            ip = self.ips[i % len(self.ips)]
            conn = http.client.HTTPConnection(ip, API_PORT, timeout=10.0)
            seq = 0
            try:
                while True:
                    t = time.monotonic()
                    if t >= w1:
                        break
                    seq += 1
                    conn.request("PUT", f"/v1/kv/{self.key_fn(i, seq)}", body=self.value_fn(seq))
                    resp = conn.getresponse()
                    body = resp.read()
                    t_done = time.monotonic()
                    if resp.status == 200:
                        if w0 <= t_done <= w1:
                            ok[i] += 1
                            if t >= w0:
                                lats[i].append(t_done - t)
                    else:
                        bad[i][str(resp.status)] = bad[i].get(str(resp.status), 0) + 1
                        if first_bad[0] is None:
                            first_bad[0] = (f"{resp.status} {body[:200].decode('utf-8', 'replace')}"
                                            f" at {t - t_start:.3f} s from {ip}")
            except (OSError, http.client.HTTPException) as e:
                errors[i] = type(e).__name__
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(self.n)]
        for t in threads:
            t.start()
        now = time.monotonic()
        if w0 > now:
            time.sleep(w0 - now)
        cpu0 = self_cpu_s()
        on_window_start()
        now = time.monotonic()
        if w1 > now:
            time.sleep(w1 - now)
        cpu1 = self_cpu_s()
        on_window_end()
        for t in threads:
            t.join(timeout=15.0)
        non200 = {}
        for b in bad:
            for k, v in b.items():
                non200[k] = non200.get(k, 0) + v
        errs = {}
        for e in errors:
            if e:
                errs[e] = errs.get(e, 0) + 1
        lat = sorted(x for lst in lats for x in lst)
        total = sum(ok)
        return {
            "ok_in_window": total,
            "window_s": round(self.duration, 3),
            "per_s": round(total / self.duration, 1),
            "non_200": non200,
            "first_non_200": first_bad[0],
            "conn_errors": errs,
            "threads_still_running": sum(t.is_alive() for t in threads),
            "client_cpu_pct_of_one_core": round(100.0 * (cpu1 - cpu0) / self.duration, 1),
            "latency_ms": {
                "n": len(lat),
                "p50": round(1000 * percentile(lat, 50), 2) if lat else None,
                "p90": round(1000 * percentile(lat, 90), 2) if lat else None,
                "p99": round(1000 * percentile(lat, 99), 2) if lat else None,
                "max": round(1000 * lat[-1], 2) if lat else None,
            },
        }


class CpuSampler:
    """CPU % of one core of given pids between start() and stop()."""

    def __init__(self, procs):
        self.procs = procs  # name -> pid
        self.t0 = self.t1 = None
        self.ticks0 = {}
        self.ticks1 = {}

    def start(self):
        self.t0 = time.monotonic()
        self.ticks0 = {n: read_cpu_ticks(p) for n, p in self.procs.items()}
        self.self0 = self_cpu_s()
        self.machine0 = machine_busy_s()

    def stop(self):
        self.t1 = time.monotonic()
        self.ticks1 = {n: read_cpu_ticks(p) for n, p in self.procs.items()}
        self.self1 = self_cpu_s()
        self.machine1 = machine_busy_s()

    def result(self):
        out = {}
        if self.t0 is None or self.t1 is None:
            return out
        wall = self.t1 - self.t0
        for n in self.procs:
            a, b = self.ticks0.get(n), self.ticks1.get(n)
            out[n] = round(100.0 * (b - a) / CLK_TCK / wall, 1) if a is not None and b is not None \
                else None
        return out

    def other_processes_pct(self):
        """CPU % of one core used by processes other than these and this benchmark (another
        build or test on the machine skews the figures: shown so that it can be seen)."""
        if self.t0 is None or self.t1 is None:
            return None
        wall = self.t1 - self.t0
        ours = sum((self.ticks1[n] - self.ticks0[n]) / CLK_TCK for n in self.procs
                   if self.ticks0.get(n) is not None and self.ticks1.get(n) is not None)
        ours += self.self1 - self.self0
        other = (self.machine1 - self.machine0) - ours
        return round(max(0.0, 100.0 * other / wall), 1)


# ---------------------------------------------------------------------------------------------
# 1. failover

def bench_failover(args, workdir):
    out = {"rounds": [], "election_timeout": "300ms", "heartbeat_timeout": "100ms",
           "method": "SIGKILL the leader; poll every survivor's GET /v1/cluster about every "
                     "10 ms (0.2 s HTTP timeout) until one names a different leader; meanwhile a "
                     "thread PUTs through a survivor (3 s timeout, retried at once on failure) "
                     "until one returns 200; times from just before the kill. Then the node is "
                     "restarted on its data dir and the cluster waited for (3 voters alive, "
                     "all caught up)."}
    with Cluster(args.binary, workdir, "failover", NETS["failover"]) as cl:
        log(f"failover: starting 3 agents on {NETS['failover']}2..4, "
            f"broadcast port {cl.broadcast_port}")
        cl.start_all()
        formed = cl.wait_healthy(30.0)
        if formed is None:
            raise RuntimeError("failover: cluster did not form within 30 s")
        out["formation_s"] = round(formed, 3)
        log(f"failover: cluster formed in {formed:.2f} s")
        for r in range(args.failover_rounds):
            leader = cl.leader_agent()
            if leader is None:
                raise RuntimeError(f"failover round {r + 1}: no leader")
            st_before = cl.status(leader) or {}
            survivors = [a for a in cl.agents if a is not leader]
            put_result = {}

            def put_loop(target, t_kill_box, stop_at, key):
                while time.monotonic() < stop_at:
                    status, body = http_put(target.ip, key, b"failover", timeout=3.0)
                    if status == 200:
                        put_result["t"] = time.monotonic() - t_kill_box[0]
                        put_result["via"] = target.name
                        put_result["body"] = body
                        return
                    put_result["failures"] = put_result.get("failures", 0) + 1
                    put_result["last_failure"] = f"{status} {body[:120]}"
                    time.sleep(0.005)

            t_kill_box = [None]
            t_kill = cl.kill(leader)
            t_kill_box[0] = t_kill
            stop_at = t_kill + 10.0
            put_thread = threading.Thread(
                target=put_loop,
                args=(survivors[r % 2], t_kill_box, stop_at, f"failover-{r + 1}"), daemon=True)
            put_thread.start()
            new_leader = None
            t_new = None
            t_no_leader = None
            polls = 0
            while time.monotonic() < stop_at and new_leader is None:
                for s in survivors:
                    st = http_get_json(s.ip, "/v1/cluster", timeout=0.2)
                    polls += 1
                    if st is None:
                        continue
                    ld = st.get("leader")
                    if ld is None and t_no_leader is None:
                        t_no_leader = time.monotonic() - t_kill
                    if ld is not None and ld.get("ip") != leader.ip:
                        new_leader = {"name": ld.get("name"), "ip": ld.get("ip"),
                                      "term": st.get("term"), "seen_by": s.name}
                        t_new = time.monotonic() - t_kill
                        break
                time.sleep(0.01)
            put_thread.join(timeout=max(0.0, stop_at - time.monotonic()) + 4.0)
            row = {
                "round": r + 1,
                "killed": leader.name,
                "term_before": st_before.get("term"),
                "new_leader": new_leader,
                "new_leader_seen_s": round(t_new, 4) if t_new is not None else None,
                "first_no_leader_report_s": round(t_no_leader, 4) if t_no_leader else None,
                "put_ok_s": round(put_result["t"], 4) if "t" in put_result else None,
                "put_via": put_result.get("via"),
                "put_failures_before_ok": put_result.get("failures", 0),
                "polls": polls,
            }
            if "last_failure" in put_result:
                row["put_last_failure"] = put_result["last_failure"]
            # Bring the killed node back and wait for the cluster to be whole again.
            cl.launch(leader)
            back = cl.wait_healthy(30.0)
            row["back_healthy_s"] = round(back, 3) if back is not None else None
            out["rounds"].append(row)
            log(f"failover {r + 1}/{args.failover_rounds}: killed {leader.name}; new leader "
                f"{new_leader and new_leader['name']} seen at {row['new_leader_seen_s']} s, "
                f"PUT ok at {row['put_ok_s']} s; back healthy in {row['back_healthy_s']} s")
            if back is None:
                out["error"] = f"round {r + 1}: cluster not healthy 30 s after restarting " \
                               f"{leader.name}"
                break
            time.sleep(args.failover_pause)
        out["dead_agents"] = [a.name for a in cl.unexpected_deaths()]
    rows = out["rounds"]
    seen = [r["new_leader_seen_s"] for r in rows]
    puts = [r["put_ok_s"] for r in rows]
    out["new_leader_seen_s"] = summarize(seen)
    out["put_ok_s"] = summarize(puts)
    out["goal"] = {"median_s": 0.6, "worst_s": 1.5}
    complete = len(rows) == args.failover_rounds and None not in seen and None not in puts
    out["met_new_leader"] = bool(complete and out["new_leader_seen_s"]["median"] < 0.6
                                 and out["new_leader_seen_s"]["max"] < 1.5)
    out["met_put"] = bool(complete and out["put_ok_s"]["median"] < 0.6
                          and out["put_ok_s"]["max"] < 1.5)
    out["met"] = out["met_new_leader"] and out["met_put"]
    return out


# ---------------------------------------------------------------------------------------------
# 2. throughput

def compile_raw(workdir):
    """Compiles bench/raw_raft.c into workdir; returns (path or None, reason)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        return None, "no gcc/cc on PATH"
    if not os.path.exists(RAW_SOURCE):
        return None, f"{RAW_SOURCE} missing"
    exe = os.path.join(workdir, "raw_raft")
    cmd = [gcc, "-O2", "-o", exe, RAW_SOURCE, "-lraft", "-luv"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None, "gcc timed out"
    if res.returncode != 0:
        return None, "gcc failed: " + res.stderr.strip()[-500:]
    return exe, " ".join(cmd[:1] + ["-O2", "-o", "<tmp>/raw_raft", "bench/raw_raft.c",
                                    "-lraft", "-luv"])


def run_raw(exe, workdir, label, inflight, seconds, warmup, payload, procs):
    """Runs the raw libraft baseline; returns its JSON (plus CPU of all its processes)."""
    d = os.path.join(workdir, f"raw-{label}")
    os.makedirs(d, exist_ok=True)
    ports = free_tcp_ports("127.0.0.1", 3)
    base = [exe, "--dir", d, "--ports", ",".join(map(str, ports)), "--inflight", str(inflight),
            "--seconds", str(seconds), "--warmup", str(warmup), "--payload", str(payload),
            "--max-seconds", str(seconds + warmup + 20)]
    cmds = [base] if procs == 1 else [base + ["--server", str(i + 1)] for i in range(3)]
    running = []
    try:
        for i, cmd in enumerate(cmds):
            outp = open(os.path.join(d, f"out{i + 1}"), "wb")
            errp = open(os.path.join(d, f"err{i + 1}"), "wb")
            running.append((subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=outp,
                                             stderr=errp), outp, errp))
        pids = {f"raw{i + 1}": p.pid for i, (p, _, _) in enumerate(running)}
        # CPU of every raw process, sampled every 0.1 s with monotonic stamps (the same clock as
        # raw_raft's own), to cut out its measuring window afterwards.
        samples = []
        deadline = time.monotonic() + seconds + warmup + 25
        result = None
        while time.monotonic() < deadline:
            samples.append((time.monotonic(), {n: read_cpu_ticks(p) for n, p in pids.items()},
                            machine_busy_s(), self_cpu_s()))
            for i, (p, _, _) in enumerate(running):
                text = open(os.path.join(d, f"out{i + 1}"), "rb").read().decode()
                if text.strip():
                    with contextlib.suppress(ValueError):
                        result = json.loads(text.strip().splitlines()[-1])
            if result is not None or all(p.poll() is not None for p, _, _ in running):
                break
            time.sleep(0.1)
        if result is None:
            errs = [tail(os.path.join(d, f"err{i + 1}"), 3) for i in range(len(running))]
            return {"error": "raw_raft printed no result", "stderr": errs}
        w0, w1 = result.get("t_window0_mono"), result.get("t_window1_mono")
        if w0 is not None and w1 is not None and samples:
            a = min(samples, key=lambda s: abs(s[0] - w0))
            b = min(samples, key=lambda s: abs(s[0] - w1))
            if b[0] > a[0]:
                wall = b[0] - a[0]
                per = {n: (b[1][n] - a[1][n]) / CLK_TCK
                       for n in pids if a[1].get(n) is not None and b[1].get(n) is not None}
                result["all_processes_cpu_pct_of_one_core"] = {
                    n: round(100.0 * v / wall, 1) for n, v in per.items()}
                other = (b[2] - a[2]) - sum(per.values()) - (b[3] - a[3])
                result["other_processes_cpu_pct_of_one_core"] = round(
                    max(0.0, 100.0 * other / wall), 1)
        return result
    finally:
        for p, outp, errp in running:
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    p.terminate()
        for p, outp, errp in running:
            try:
                p.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    p.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=2.0)
            outp.close()
            errp.close()


def cluster_indexes(cl):
    res = {}
    for a in cl.agents:
        st = cl.status(a, timeout=1.0)
        if st:
            res[a.name] = {"commit_index": st["commit_index"], "applied_index": st["applied_index"]}
    return res


def bench_throughput(args, workdir):
    out = {"value_bytes": 8,
           "note": "Commits/s = PUTs answered 200 (the agent answers after commit and apply) "
                   "received inside the window (after a warm-up). The agent batches every proposal "
                   "that arrives in one event-loop turn into one Raft entry (up to 1024), so "
                   "commands/s and entries/s differ: both are shown. All processes share the "
                   "machine's cores with the client; see cpu_pct."}
    secs, warm = args.tp_seconds, args.tp_warmup
    # Raw libraft first (nothing else running), then Synod.
    raw = {"runs": []}
    exe, how = compile_raw(workdir) if not args.no_raw else (None, "skipped (--no-raw)")
    raw["compiled"] = exe is not None
    raw["compile"] = how
    if exe:
        for procs, inflight in ((3, 10000), (1, 10000), (3, args.raw_small_inflight)):
            log(f"throughput: raw libraft, {procs} process(es), {inflight} in flight, "
                f"{secs} s + {warm} s warm-up")
            r = run_raw(exe, workdir, f"{procs}p-{inflight}", inflight, secs, warm,
                        args.raw_payload, procs)
            r["processes"] = procs
            raw["runs"].append(r)
            log(f"throughput: raw -> {r.get('entries_per_s')} entries/s "
                f"{r.get('all_processes_cpu_pct_of_one_core', '')}")
    out["raw_libraft"] = raw

    runs = []
    with Cluster(args.binary, workdir, "throughput", NETS["throughput"]) as cl:
        log(f"throughput: starting 3 agents on {NETS['throughput']}2..4, "
            f"broadcast port {cl.broadcast_port}")
        cl.start_all()
        formed = cl.wait_healthy(30.0)
        if formed is None:
            raise RuntimeError("throughput: cluster did not form within 30 s")
        leader = cl.leader_agent()
        out["leader"] = leader.name
        keyspace = args.tp_keyspace
        plans = []
        for item in args.tp_plan.split(","):
            client, target, n = item.strip().split(":")
            if client not in ("async", "threads") or target not in ("leader", "spread"):
                raise ValueError(f"bad --tp-plan item {item!r}")
            plans.append((client, target, int(n)))
        for ri, (client, target, n) in enumerate(plans):
            leader = cl.leader_agent()
            ips = [leader.ip] if target == "leader" else [a.ip for a in cl.agents]
            prefix = f"t{ri}"
            sampler = CpuSampler({a.name + ("(leader)" if a is leader else ""): a.proc.pid
                                  for a in cl.agents})
            idx0 = {}
            idx1 = {}

            def win_start():
                sampler.start()
                st = cl.status(leader, timeout=1.0)
                idx0["commit"] = st["commit_index"] if st else None
                idx0["term"] = st["term"] if st else None

            def win_end():
                sampler.stop()
                st = cl.status(leader, timeout=1.0)
                idx1["commit"] = st["commit_index"] if st else None
                idx1["term"] = st["term"] if st else None

            key_fn = (lambda c, s, p=prefix, k=keyspace: f"{p}-{c}-{s % k}")
            value_fn = (lambda s: b"%08d" % (s % 100000000))
            log(f"throughput: synod, {client} client, {n} connections to "
                f"{'the leader ' + leader.name if target == 'leader' else 'all 3 nodes'}, "
                f"{secs} s + {warm} s warm-up")
            if client == "async":
                load = AsyncPutLoad(ips, n, key_fn, value_fn, duration=secs, warmup=warm)
                load.on_window_start = win_start
                load.on_window_end = win_end
                res = load.run()
            else:
                res = ThreadPutLoad(ips, n, key_fn, value_fn, secs, warm).run(win_start, win_end)
            res["client"] = client
            res["targets"] = "leader" if target == "leader" else "all 3 nodes, round robin"
            leader_after = cl.leader_agent()
            res["leader"] = {"before": leader.name,
                             "after": leader_after.name if leader_after else None,
                             "term_at_window_start": idx0.get("term"),
                             "term_at_window_end": idx1.get("term")}
            res["leader_changed"] = (leader_after is not leader
                                     or idx0.get("term") != idx1.get("term"))
            res["connections"] = n
            res["agent_cpu_pct_of_one_core"] = sampler.result()
            res["other_processes_cpu_pct_of_one_core"] = sampler.other_processes_pct()
            if idx0.get("commit") is not None and idx1.get("commit") is not None:
                res["raft_entries_per_s"] = round((idx1["commit"] - idx0["commit"])
                                                  / (sampler.t1 - sampler.t0), 1)
                if res["raft_entries_per_s"] > 0:
                    res["commands_per_entry"] = round(res["per_s"] / res["raft_entries_per_s"], 1)
            total_cpu = (sum(v for v in res["agent_cpu_pct_of_one_core"].values() if v)
                         + res["client_cpu_pct_of_one_core"])
            res["machine_cpu_pct_of_all_cores"] = round(total_cpu / (os.cpu_count() or 1), 1)
            runs.append(res)
            log(f"throughput: -> {res['per_s']} commits/s, client CPU "
                f"{res['client_cpu_pct_of_one_core']} %, agents "
                f"{res['agent_cpu_pct_of_one_core']}, entries/s {res.get('raft_entries_per_s')}")
            # Consistency: every node reaches the same applied index; a written key reads back.
            settled = cl.wait_healthy(20.0)
            res["settled_s"] = round(settled, 3) if settled is not None else None
            idx = cluster_indexes(cl)
            res["indexes_after"] = idx
            sample_key = key_fn(0, 1)
            reads = {a.name: (http_get_json(a.ip, f"/v1/kv/{sample_key}", 1.0) or {}).get("value")
                     for a in cl.agents}
            res["sample_read"] = {"key": sample_key, "values": reads}
            if cl.unexpected_deaths():
                raise RuntimeError("throughput: agent died: " + ", ".join(
                    a.name for a in cl.unexpected_deaths()))
            time.sleep(1.0)
        out["synod_runs"] = runs
        out["dead_agents"] = [a.name for a in cl.unexpected_deaths()]
        with contextlib.suppress(Exception):
            out["agent_rss_mb_after"] = {a.name: read_rss_mb(a.proc.pid) for a in cl.agents}

    best = max(runs, key=lambda r: r["per_s"] or 0) if runs else None
    if exe:
        # The same baseline again once the cluster is stopped, to see the machine's drift.
        log("throughput: raw libraft again, 3 processes, 10000 in flight")
        r = run_raw(exe, workdir, "3p-10000-after", 10000, secs, warm, args.raw_payload, 3)
        r["processes"] = 3
        r["after_synod"] = True
        raw["runs"].append(r)
        log(f"throughput: raw -> {r.get('entries_per_s')} entries/s")
    raw_ok = [r for r in raw["runs"] if r.get("entries_per_s")]
    raw3s = [r for r in raw_ok if r["processes"] == 3 and r["inflight"] == 10000]
    raw3 = None
    if raw3s:
        # Baseline: the mean of the runs before and after Synod's.
        raw3 = {"entries_per_s": round(sum(r["entries_per_s"] for r in raw3s) / len(raw3s), 1)}
    raw1 = next((r for r in raw_ok if r["processes"] == 1 and r["inflight"] == 10000), None)
    summary = {
        "synod_best_commits_per_s": best["per_s"] if best else None,
        "synod_best_run": f"{best['client']} client, {best['connections']} connections, "
                          f"{best['targets']}" if best else None,
        "raw_libraft_3proc_entries_per_s": raw3["entries_per_s"] if raw3 else None,
        "raw_libraft_3proc_runs": [r["entries_per_s"] for r in raw3s],
        "raw_libraft_1proc_entries_per_s": raw1["entries_per_s"] if raw1 else None,
    }
    summary["runs_with_a_leader_change"] = [
        f"{r['client']}:{'leader' if r['targets'] == 'leader' else 'spread'}:{r['connections']}"
        for r in runs if r.get("leader_changed")]
    if best and raw3:
        summary["ratio_vs_raw_3proc"] = round(best["per_s"] / raw3["entries_per_s"], 3)
    if best and raw1:
        summary["ratio_vs_raw_1proc"] = round(best["per_s"] / raw1["entries_per_s"], 3)
    if best:
        summary["client_bound_note"] = (
            f"best run: client used {best['client_cpu_pct_of_one_core']} % of one core, agents "
            f"{best['agent_cpu_pct_of_one_core']}, whole machine "
            f"{best['machine_cpu_pct_of_all_cores']} % of {os.cpu_count()} cores")
    baseline = raw3 or raw1
    ratio = (best["per_s"] / baseline["entries_per_s"]) if best and baseline else None
    out["summary"] = summary
    out["goal"] = {"commits_per_s": 20000, "ratio_vs_raw": 0.8,
                   "ratio_basis": "raw libraft with 3 processes (the agents' topology), "
                                  "10,000 entries in flight: mean of the run before Synod's "
                                  "and the one after"}
    out["met_rate"] = bool(best and best["per_s"] >= 20000)
    out["met_ratio"] = bool(ratio is not None and ratio >= 0.8)
    out["met"] = out["met_rate"] and out["met_ratio"]
    return out


# ---------------------------------------------------------------------------------------------
# 3. restart

def raft_files(agent):
    """libraft's files in the agent's raft dir: snapshot indexes and segment count."""
    d = os.path.join(agent.data_dir, "raft")
    snaps, segments = [], 0
    with contextlib.suppress(OSError):
        for name in os.listdir(d):
            if name.startswith("snapshot-") and not name.endswith(".meta"):
                parts = name.split("-")
                with contextlib.suppress(ValueError, IndexError):
                    snaps.append(int(parts[2]))
            elif name[:1].isdigit() or name.startswith("open-"):
                segments += 1
    return {"snapshot_indexes": sorted(snaps), "segments": segments}


def restart_once(cl, follower, label, write_while_down=0, fill_conns=128):
    """SIGKILLs `follower`, optionally writes while it is down, restarts it; times catch-up."""
    leader = cl.leader_agent()
    if leader is None or leader is follower:
        raise RuntimeError(f"restart {label}: no leader, or the follower is the leader")
    fst = cl.status(follower, timeout=1.0) or {}
    applied_at_kill = fst.get("applied_index")
    cl.kill(follower)
    files_at_kill = raft_files(follower)
    down = {}
    if write_while_down:
        load = AsyncPutLoad([leader.ip], fill_conns, lambda _c, i: f"{label}-{i:06d}",
                            lambda i: b"%08d" % i, total=write_while_down)
        down = load.run()
        log(f"restart {label}: {down['committed']} PUTs while {follower.name} was down "
            f"({down['per_s']}/s)")
    else:
        time.sleep(0.5)
    lst = cl.status(leader, timeout=1.0) or {}
    commit_at_launch = lst.get("commit_index")
    cl.launch(follower)
    t0 = follower.started
    watch = StartWatch(t0)
    caught = None
    target = None
    polls = 0
    deadline = t0 + 30.0
    while time.monotonic() < deadline:
        if follower.proc.poll() is not None:
            break
        lst = http_get_json(leader.ip, "/v1/cluster", timeout=0.3)
        st = http_get_json(follower.ip, "/v1/cluster", timeout=0.3)
        polls += 1
        now = watch.saw(st)
        if st is not None and lst is not None and st["applied_index"] >= lst["commit_index"]:
            caught = now
            target = lst["commit_index"]
            break
        time.sleep(0.01)
    api_up, leader_known, last = watch.api_up, watch.leader_known, watch.last
    row = {
        "label": label,
        "follower": follower.name,
        "leader": leader.name,
        "written_while_down": write_while_down,
        "write_connections": fill_conns if write_while_down else None,
        "follower_applied_index_at_kill": applied_at_kill,
        "follower_raft_files_at_kill": files_at_kill,
        "leader_raft_files_at_launch": raft_files(leader),
        "leader_commit_index_at_launch": commit_at_launch,
        "api_up_s": round(api_up, 4) if api_up is not None else None,
        "leader_known_s": round(leader_known, 4) if leader_known is not None else None,
        "caught_up_s": round(caught, 4) if caught is not None else None,
        "caught_up_at_index": target,
        "follower_last_status": {k: last.get(k) for k in ("applied_index", "commit_index",
                                                          "phase", "term")} if last else None,
        "polls": polls,
        "note": "times from just before the process was launched; caught up = the follower's "
                "applied_index >= the leader's commit_index read just before it",
    }
    row["follower_raft_files_after"] = raft_files(follower)
    snap_at_kill = max(files_at_kill["snapshot_indexes"] or [0])
    snap_after = max(row["follower_raft_files_after"]["snapshot_indexes"] or [0])
    row["caught_up_by"] = ("snapshot from the leader (or its own new one)"
                           if snap_after > max(snap_at_kill, applied_at_kill or 0)
                           else "log entries")
    if write_while_down:
        row["writes_while_down"] = {k: down.get(k) for k in ("committed", "per_s", "non_200",
                                                             "gave_up", "latency_ms",
                                                             "answers_slower_than_200ms")}
    if follower.proc.poll() is not None:
        row["error"] = f"{follower.name} exited with {follower.proc.returncode}: " \
                       f"{tail(follower.log_path, 3)}"
    return row


def n_keys_total(args):
    return args.restart_entries + args.restart_missed


def bench_restart(args, workdir):
    out = {"entries_goal": args.restart_entries, "runs": []}
    with Cluster(args.binary, workdir, "restart", NETS["restart"]) as cl:
        log(f"restart: starting 3 agents on {NETS['restart']}2..4, "
            f"broadcast port {cl.broadcast_port}")
        cl.start_all()
        formed = cl.wait_healthy(30.0)
        if formed is None:
            raise RuntimeError("restart: cluster did not form within 30 s")
        leader = cl.leader_agent()
        n = args.restart_entries
        log(f"restart: writing {n} PUTs (distinct keys) with {args.fill_connections} connections "
            f"to the leader {leader.name}")
        fill = AsyncPutLoad([leader.ip], args.fill_connections, lambda _c, i: f"r{i:06d}",
                            lambda i: b"%08d" % i, total=n).run()
        out["fill"] = {k: fill.get(k) for k in ("committed", "seconds", "per_s", "non_200",
                                                 "retries", "gave_up", "connections_lost",
                                                 "client_cpu_pct_of_one_core", "latency_ms")}
        log(f"restart: {fill['committed']} PUTs committed in {fill['seconds']} s "
            f"({fill['per_s']}/s)")
        if fill["committed"] < n:
            raise RuntimeError(f"restart: only {fill['committed']} of {n} PUTs committed")
        settled = cl.wait_healthy(30.0)
        out["settled_s"] = round(settled, 3) if settled is not None else None
        out["indexes_after_fill"] = cluster_indexes(cl)
        out["data_dir_mb"] = {a.name: dir_size_mb(a.data_dir) for a in cl.agents}
        out["agent_rss_mb"] = {a.name: read_rss_mb(a.proc.pid) for a in cl.agents}
        plan = [("plain", 0, 0)] * args.restart_rounds
        if args.restart_missed:
            plan.append(("missed", args.restart_missed, args.fill_connections))
        if args.restart_missed_serial:
            # One connection: about one command per entry, so the leader's log moves past its
            # snapshot threshold (8192) and trailing (2048) and the follower needs a snapshot.
            plan.append(("missedserial", args.restart_missed_serial, 1))
        for i, (kind, missed, wconns) in enumerate(plan):
            leader = cl.leader_agent()
            followers = [a for a in cl.agents if a is not leader]
            follower = followers[i % len(followers)]
            label = f"{kind}{i + 1}"
            row = restart_once(cl, follower, label, write_while_down=missed, fill_conns=wconns)
            # Spot-check the restarted node's state: keys from the fill and the last write.
            keys = ["r000000", f"r{n // 2:06d}", f"r{n - 1:06d}"]
            if missed:
                keys.append(f"{label}-{missed - 1:06d}")
            got = {}
            for k in keys:
                v = (http_get_json(follower.ip, f"/v1/kv/{k}", 1.0) or {}).get("value")
                got[k] = v
            row["spot_check"] = got
            expect = {"r000000": "00000000", f"r{n // 2:06d}": "%08d" % (n // 2),
                      f"r{n - 1:06d}": "%08d" % (n - 1)}
            if missed:
                expect[f"{label}-{missed - 1:06d}"] = "%08d" % (missed - 1)
            row["spot_check_ok"] = got == expect
            back = cl.wait_healthy(30.0)
            row["healthy_again_s"] = round(back, 3) if back is not None else None
            out["runs"].append(row)
            log(f"restart {label}: {follower.name} api up {row['api_up_s']} s, caught up "
                f"{row['caught_up_s']} s (index {row['caught_up_at_index']}); spot check "
                f"{'ok' if row['spot_check_ok'] else got}")
            if back is None:
                out["error"] = f"{label}: cluster not healthy 30 s after the restart"
                break
        out["dead_agents"] = [a.name for a in cl.unexpected_deaths()]
    plain = [r["caught_up_s"] for r in out["runs"] if r["written_while_down"] == 0]
    for kind in ("missed", "missedserial"):
        rows = [r for r in out["runs"] if r["label"].rstrip("0123456789") == kind]
        if rows:
            out[f"caught_up_s_{kind}"] = rows[0]["caught_up_s"]
    out["caught_up_s_plain"] = summarize(plain)
    out["caught_up_s_all"] = summarize([r["caught_up_s"] for r in out["runs"]])
    serial = [r for r in out["runs"] if r["label"].startswith("missedserial")]
    if serial and serial[0].get("writes_while_down"):
        w = serial[0]["writes_while_down"]
        out["snapshot_stall"] = {
            "serial_put_latency_ms": w.get("latency_ms"),
            "answers_slower_than_200ms": (w.get("answers_slower_than_200ms") or {}).get("count", 0),
            "leader_snapshot_indexes": serial[0]["leader_raft_files_at_launch"]["snapshot_indexes"],
            "state_keys_before_these_writes": n_keys_total(args),
            "note": "PUTs through one connection, one entry each, while the leader (and the other "
                    "follower) take a snapshot every 8192 entries of a state holding the keys "
                    "above: the max latency shows how long a snapshot holds up commits"}
    out["goal_s"] = 2.0
    allr = [r["caught_up_s"] for r in out["runs"]]
    out["met"] = bool(allr and None not in allr and max(allr) < 2.0
                      and all(r["spot_check_ok"] for r in out["runs"]))
    return out


# ---------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["failover", "throughput", "restart"],
                   help="run one part (default: all three)")
    p.add_argument("--binary", default=DEFAULT_BINARY, help="synod binary (build/synod)")
    p.add_argument("--failover-rounds", type=int, default=10, help="leader kills (10)")
    p.add_argument("--failover-pause", type=float, default=1.0,
                   help="pause after the cluster is whole again, s (1)")
    p.add_argument("--tp-seconds", type=float, default=10.0, help="throughput window, s (10)")
    p.add_argument("--tp-warmup", type=float, default=1.0, help="warm-up before it, s (1)")
    p.add_argument("--raw-small-inflight", type=int, default=128,
                   help="in-flight entries of the third raw libraft run, to compare with as many "
                        "HTTP connections (128)")
    p.add_argument("--fill-connections", type=int, default=256,
                   help="HTTP connections writing the restart part's state (256)")
    p.add_argument("--tp-keyspace", type=int, default=64,
                   help="distinct keys per connection in the throughput runs (64)")
    p.add_argument("--tp-plan", default=DEFAULT_PLAN,
                   help="throughput runs, comma-separated client:target:connections with client "
                        "async (selector loop, raw sockets) or threads (http.client, one thread "
                        "per connection) and target leader or spread (round robin over the 3 "
                        f"nodes) (default {DEFAULT_PLAN})")
    p.add_argument("--no-raw", action="store_true", help="skip the raw libraft baseline")
    p.add_argument("--raw-payload", type=int, default=8,
                   help="raw libraft entry size, rounded up to a multiple of 8 (8)")
    p.add_argument("--restart-entries", type=int, default=100000,
                   help="PUTs (distinct keys) written before the restarts (100000)")
    p.add_argument("--restart-rounds", type=int, default=3, help="plain follower restarts (3)")
    p.add_argument("--restart-missed", type=int, default=20000,
                   help="PUTs written while the follower is down, in one extra restart "
                        "(20000; 0 to skip)")
    p.add_argument("--restart-missed-serial", type=int, default=12000,
                   help="PUTs written through ONE connection while the follower is down, in one "
                        "more restart (about one entry each: catch-up by snapshot) (12000; 0 to "
                        "skip)")
    p.add_argument("--cluster-key-file", metavar="FILE",
                   help="start every agent with --cluster-key-file FILE (a `synod keygen` key: "
                        "peer and Raft traffic over TLS 1.3); default: clear text")
    p.add_argument("--keep", action="store_true", help="keep agent logs and data dirs")
    args = p.parse_args()
    if not os.access(args.binary, os.X_OK):
        p.error(f"{args.binary} is not executable (build first)")
    if args.cluster_key_file:
        if not os.path.isfile(args.cluster_key_file):
            p.error(f"{args.cluster_key_file}: no such file")
        AGENT_EXTRA_ARGS[:] = ["--cluster-key-file", os.path.abspath(args.cluster_key_file)]
    if not (1 <= args.failover_rounds <= 100 and 1 <= args.fill_connections <= 2000
            and 0 < args.tp_seconds <= 300 and 1 <= args.restart_entries <= 2_000_000):
        p.error("argument out of range")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    result = {"benchmark": "consensus", "binary": args.binary, "machine": machine_info()}
    if args.cluster_key_file:
        result["cluster_key_file"] = AGENT_EXTRA_ARGS[1]
    binary_before = binary_identity(args.binary)
    result["binary_identity"] = binary_before
    workdir = tempfile.mkdtemp(prefix="synod-consensus-bench-")
    log(f"work dir {workdir}")
    try:
        want = [args.only] if args.only else ["failover", "throughput", "restart"]
        for part in want:
            t0 = time.monotonic()
            m0, o0 = machine_busy_s(), os.times()
            load0 = loadavg()
            try:
                result[part] = {"failover": bench_failover, "throughput": bench_throughput,
                                "restart": bench_restart}[part](args, workdir)
            except (RuntimeError, OSError, KeyError, TypeError, ValueError) as e:
                result[part] = {"error": f"{type(e).__name__}: {e}", "met": False}
                log(f"{part}: error: {e}")
            wall = time.monotonic() - t0
            m1, o1 = machine_busy_s(), os.times()
            # Everything this part started has been waited for by now, so the children times
            # hold the agents' (and raw_raft's) CPU; the rest of the machine's is someone else's.
            ours = sum(o1[:4]) - sum(o0[:4])
            result[part]["part_seconds"] = round(wall, 1)
            result[part]["machine_during_part"] = {
                "busy_cpu_pct_of_one_core": round(100.0 * (m1 - m0) / wall, 1),
                "this_benchmark_and_its_processes_pct": round(100.0 * ours / wall, 1),
                "other_processes_pct": round(max(0.0, 100.0 * (m1 - m0 - ours) / wall), 1),
                "loadavg_before": load0,
                "loadavg_after": loadavg(),
            }
    except Exception as e:  # report, still print the JSON gathered so far
        record_failure(result, e)
    finally:
        finish_result(result, args.binary, binary_before, workdir, args.keep, "logs",
                      agent_exits_abnormal=ABNORMAL_EXITS, agent_log_problems=LOG_PROBLEMS,
                      http_errors=HTTP_ERRORS)
    order = ["benchmark", "binary", "machine", "failover", "throughput", "restart"]
    ordered_result = ordered(result, order)
    print(json.dumps(ordered_result, indent=2))
    if "interrupted" in result:
        return 130
    failed = "error" in result or any("error" in result.get(k, {}) for k in order[3:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
