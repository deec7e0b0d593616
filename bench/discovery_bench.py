#!/usr/bin/env python3
"""Discovery benchmark for Synod agents (run by hand, not by tests).

Measures, on loopback only (127.66.x.y addresses, broadcast to 127.255.255.255 on a random
free port so that no other cluster hears it):

  scale   N agents (default 50) with a 1 s beacon interval: time from the last agent's start
          until every agent lists all N-1 others in GET /v1/neighbors (goal <= 2 intervals).
  idle    CPU % of one core (utime+stime deltas from /proc/PID/stat) and RSS (VmRSS) of idle
          agents over a 10 s window: one agent of a 5-agent cluster, and mean/max over the
          N-agent cluster (goal < 1 % and < 20 MB each).
  offset  Two agents, the second under libfaketime (+0.25 s, then -1.5 s): A's offset_ms for B
          3 s after start, and the series over 10 s (goal |error| < 0.2 ms).

Prints one JSON object to stdout; progress goes to stderr. Python 3 standard library only.
Every agent started is stopped (SIGTERM, then SIGKILL) in a finally block.
"""

import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import (record_failure, keep_or_remove, ordered, free_udp_port, tcp_port_free, log, _on_signal, summarize, machine_info, CLK_TCK,
                      signals_ignored, read_cpu_ticks, exit_record, get_json, stop_processes)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BINARY = os.path.join(os.path.dirname(HERE), "build", "synod")
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
API_PORT = 7400
PEER_PORT = 7402

# Address blocks, one per cluster, so that a cluster never reuses a previous one's addresses.
SCALE_NET = "127.66.0."   # .2 .. .N+1
IDLE5_NET = "127.66.1."   # .2 .. .6
OFFSET_NETS = ["127.66.2.", "127.66.3."]


ABNORMAL_EXITS = []  # agents that exited non-zero (crash, or died before being stopped)
AGENT_EXTRA_ARGS = []  # added to every agent's command line (--cluster-key-file FILE)
POLLERS = concurrent.futures.ThreadPoolExecutor(max_workers=8)


# ---------------------------------------------------------------------------------------------
# Helpers





HTTP_ERRORS = {}  # error kind -> count, over the whole run


def count_error(kind):
    HTTP_ERRORS[kind] = HTTP_ERRORS.get(kind, 0) + 1


def http_get_json(ip, path, timeout=0.5):
    """GET http://ip:7400/path -> parsed JSON, or None on any error (bounded by timeout)."""
    return get_json(ip, API_PORT, path, timeout, count_error)


def read_sched_ns(pid):
    """Sum of on-CPU nanoseconds over the process's threads (finer than clock ticks)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total


def read_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def log_up_wall(log_path):
    """Wall time (epoch s) of the agent's 'up on' log line, or None."""
    import datetime
    try:
        with open(log_path, "rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "replace")
                if " up on " in line:
                    stamp = line.split()[0]
                    dt = datetime.datetime.fromisoformat(stamp)
                    return dt  # naive; the caller picks local or UTC
    except (OSError, ValueError):
        return None
    return None


def naive_to_epoch(dt, near):
    """Interprets a naive log time as local or UTC, whichever is nearer to `near`."""
    import datetime
    local = time.mktime(dt.timetuple()) + dt.microsecond / 1e6
    utc = dt.replace(tzinfo=datetime.timezone.utc).timestamp()
    return local if abs(local - near) <= abs(utc - near) else utc


# ---------------------------------------------------------------------------------------------
# Cluster management

class Agent:
    def __init__(self, name, ip, data_dir, log_path, proc, started_mono):
        self.name = name
        self.ip = ip
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = proc
        self.started = started_mono


class Cluster:
    """Starts agents and guarantees they are stopped (use as a context manager)."""

    def __init__(self, binary, workdir, label, broadcast_port, beacon_interval="1s",
                 log_level="info"):
        self.binary = binary
        self.dir = os.path.join(workdir, label)
        os.makedirs(self.dir, exist_ok=True)
        self.label = label
        self.broadcast_port = broadcast_port
        self.beacon_interval = beacon_interval
        self.log_level = log_level
        self.agents = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self, name, ip, extra_env=None):
        for port in (API_PORT, PEER_PORT):
            if not tcp_port_free(ip, port):
                raise RuntimeError(f"{ip}:{port} is already in use (another agent running?)")
        data_dir = os.path.join(self.dir, name)
        os.makedirs(data_dir, exist_ok=True)
        log_path = os.path.join(self.dir, f"{name}.log")
        env = dict(os.environ)
        if extra_env:
            env.update(extra_env)
        cmd = [self.binary, "agent", "--name", name, "--bind", ip, "--data-dir", data_dir,
               "--broadcast-port", str(self.broadcast_port),
               "--beacon-interval", self.beacon_interval, "--log-level", self.log_level]
        cmd += AGENT_EXTRA_ARGS
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                    stderr=subprocess.STDOUT, env=env)
        agent = Agent(name, ip, data_dir, log_path, proc, time.monotonic())
        self.agents.append(agent)
        return agent

    def dead(self):
        return [a for a in self.agents if a.proc.poll() is not None]

    def stop(self):
        with signals_ignored():
            self._stop()

    def _stop(self):
        early = {a.name for a in self.agents if a.proc.poll() is not None}
        stop_processes([(f"{self.label}: {a.name}", a.proc) for a in self.agents
                        if a.proc.poll() is None], 5.0)
        for a in self.agents:
            if a.proc.returncode != 0:
                ABNORMAL_EXITS.append(exit_record(a, a.name in early, cluster=self.label))
        self.agents = []


# ---------------------------------------------------------------------------------------------
# 1. scale

def wait_all_see_all(cluster, timeout_s, t0, interval_s):
    """Polls each agent's /v1/neighbors until it lists every other agent (by ip).

    Returns per-agent first-complete times (relative to t0), plus when every listed neighbour
    also had an offset measured (synod peer with offset_ms). Bounded by timeout_s.
    """
    agents = cluster.agents
    ips = {a.ip for a in agents}
    listed_at = {}     # name -> seconds after t0 of the response that first listed all others
    measured_at = {}   # name -> ... that first had all others with offset_ms measured
    last_incomplete = {}  # name -> seconds after t0 of the last response that missed some
    best_count = {a.name: 0 for a in agents}
    poll_errors = 0
    first_error = {}  # name -> seconds after its own start of its first failed poll
    rounds = 0
    round_durations = []
    deadline = t0 + timeout_s
    # Each agent is polled by one of a few threads: one after the other, a round of 50 slow
    # answers (the machine busy with 50 starting agents) took seconds, which made the
    # completion time that coarse.
    def poll(a):
        t_req = time.monotonic()
        return a, t_req, http_get_json(a.ip, "/v1/neighbors", timeout=0.5)

    # After everyone lists everyone, keep polling only for the "measured" criterion, bounded.
    while time.monotonic() < deadline:
        pending = [a for a in agents if a.name not in measured_at]
        if not pending:
            break
        r0 = time.monotonic()
        rounds += 1
        for a, t_req, nbrs in POLLERS.map(poll, pending):
            if nbrs is None:
                poll_errors += 1
                first_error.setdefault(a.name, round(t_req - a.started, 3))
                continue
            others = ips - {a.ip}
            seen = {n.get("ip") for n in nbrs} & others
            best_count[a.name] = max(best_count[a.name], len(seen))
            rel = t_req - t0
            if len(seen) == len(others):
                listed_at.setdefault(a.name, rel)
                measured = {n.get("ip") for n in nbrs
                            if n.get("ip") in others and n.get("synod")
                            and n.get("offset_ms") is not None}
                if len(measured) == len(others):
                    measured_at.setdefault(a.name, rel)
            elif a.name not in listed_at:
                last_incomplete[a.name] = rel
        round_durations.append(time.monotonic() - r0)
        if len(listed_at) < len(agents):
            time.sleep(0.02)
        else:
            time.sleep(0.1)
        if cluster.dead():
            break
    return {
        "listed_at": listed_at,
        "measured_at": measured_at,
        "last_incomplete": last_incomplete,
        "best_count": best_count,
        "poll_errors": poll_errors,
        "first_error": first_error,
        "rounds": rounds,
        "round_durations": round_durations,
    }


def start_cluster(cluster, n, net, name_prefix):
    for i in range(n):
        cluster.start(f"{name_prefix}{i + 1:02d}", f"{net}{i + 2}")
    return time.monotonic()


def bench_scale(args, workdir, cluster):
    n = args.agents
    interval_s = 1.0
    log(f"scale: starting {n} agents on {SCALE_NET}2..{n + 1}, "
        f"broadcast port {cluster.broadcast_port}")
    t_first = time.monotonic()
    t_last_start = start_cluster(cluster, n, SCALE_NET, "s")
    wall_last_start = time.time() - (time.monotonic() - t_last_start)
    launch_s = t_last_start - t_first
    log(f"scale: {n} agents launched in {launch_s:.3f} s; polling /v1/neighbors")
    res = wait_all_see_all(cluster, args.scale_timeout, t_last_start, interval_s)
    dead = [a.name for a in cluster.dead()]
    listed = res["listed_at"]
    saw_all = len(listed)
    all_listed = saw_all == n
    t_all = max(listed.values()) if all_listed else None
    lower = None
    if all_listed:
        # The last agent to complete was still incomplete at its previous response.
        last_name = max(listed, key=listed.get)
        lower = res["last_incomplete"].get(last_name, 0.0)
    measured = res["measured_at"]
    ip_of = {a.name: a.ip for a in cluster.agents}
    # When did each agent log "up" (its sockets open)? Separates process start-up latency
    # (dynamic loading, CPU contention on a small machine) from discovery itself.
    ups = {}
    for a in cluster.agents:
        dt = log_up_wall(a.log_path)
        if dt is not None:
            ups[a.name] = naive_to_epoch(dt, wall_last_start) - wall_last_start
    last_up = max(ups.values()) if len(ups) == n else None
    from_up = (t_all - last_up) if (t_all is not None and last_up is not None) else None
    t_measured = max(measured.values()) if len(measured) == n else None
    rd = res["round_durations"]
    out = {
        "agents": n,
        "beacon_interval_s": interval_s,
        "broadcast_port": cluster.broadcast_port,
        "launch_duration_s": round(launch_s, 3),
        "timeout_s": args.scale_timeout,
        "agents_saw_all": saw_all,
        "all_saw_all": all_listed,
        "seconds_until_all_see_all": round(t_all, 3) if t_all is not None else None,
        "seconds_lower_bound": round(lower, 3) if lower is not None else None,
        "intervals_until_all_see_all": round(t_all / interval_s, 3) if t_all is not None else None,
        "per_agent_seconds": summarize(list(listed.values())),
        "last_agent_up_after_last_launch_s": round(last_up, 3) if last_up is not None else None,
        "seconds_from_last_agent_up": round(from_up, 3) if from_up is not None else None,
        "intervals_from_last_agent_up":
            round(from_up / interval_s, 3) if from_up is not None else None,
        "up_note": "'up' = the agent's own 'up on' log line (ms resolution); the goal is "
                   "judged from the last launch",
        "slowest_agents": [{"name": k, "ip": ip_of[k], "seconds": round(v, 3)}
                           for k, v in sorted(listed.items(), key=lambda kv: -kv[1])[:3]],
        "min_neighbors_seen": min(res["best_count"].values()) if res["best_count"] else None,
        "agents_with_all_offsets_measured": len(measured),
        "seconds_until_all_offsets_measured":
            round(t_measured, 3) if t_measured is not None else None,
        "poll": {
            "rounds": res["rounds"],
            "errors": res["poll_errors"],
            "agents_with_errors": len(res["first_error"]),
            "max_round_s": round(max(rd), 3) if rd else None,
            "mean_round_s": round(sum(rd) / len(rd), 3) if rd else None,
            "note": "times are upper bounds: the request that first saw completion; the "
                    "lower bound is the previous incomplete response of the last agent",
        },
        "dead_agents": dead,
        "goal_intervals": 2,
        "met": bool(all_listed and t_all / interval_s <= 2.0),
    }
    log(f"scale: {saw_all}/{n} saw all; t={out['seconds_until_all_see_all']} s; "
        f"all offsets measured t={out['seconds_until_all_offsets_measured']} s")
    return out


# ---------------------------------------------------------------------------------------------
# 2. idle

def measure_idle(agents, window_s):
    """CPU % of one core and RSS over a window in which the benchmark sends nothing."""
    before = {}
    for a in agents:
        before[a.name] = (read_cpu_ticks(a.proc.pid), read_sched_ns(a.proc.pid))
    w0 = time.monotonic()
    time.sleep(window_s)
    wall = time.monotonic() - w0
    rows = []
    for a in agents:
        if a.proc.poll() is not None:
            rows.append({"name": a.name, "dead": True})
            continue
        ticks0, ns0 = before[a.name]
        ticks1, ns1 = read_cpu_ticks(a.proc.pid), read_sched_ns(a.proc.pid)
        st = read_status(a.proc.pid)
        row = {
            "name": a.name,
            "pid": a.proc.pid,
            "cpu_pct": round(100.0 * (ticks1 - ticks0) / CLK_TCK / wall, 3),
            "cpu_pct_schedstat": (round(100.0 * (ns1 - ns0) / 1e9 / wall, 4)
                                  if ns0 is not None and ns1 is not None else None),
            "rss_mb": round(st.get("VmRSS", 0) / 1024.0, 2),
            "peak_rss_mb": round(st.get("VmHWM", 0) / 1024.0, 2),
            "threads": st.get("Threads"),
        }
        rows.append(row)
    return wall, rows


def idle_summary(rows):
    live = [r for r in rows if not r.get("dead")]
    return {
        "cpu_pct": summarize([r["cpu_pct"] for r in live]),
        "cpu_pct_schedstat": summarize([r["cpu_pct_schedstat"] for r in live]),
        "rss_mb": summarize([r["rss_mb"] for r in live]),
        "peak_rss_mb": summarize([r["peak_rss_mb"] for r in live]),
        "dead": [r["name"] for r in rows if r.get("dead")],
    }


IDLE_GOALS = {"goal_cpu_pct": 1.0, "goal_rss_mb": 20.0}


def idle_header(args):
    return {"window_s": args.idle_seconds, "settle_s": args.settle_seconds,
            "cpu_basis": "utime+stime from /proc/PID/stat (all threads), % of one core; "
                         f"tick = {1000 // CLK_TCK} ms; cpu_pct_schedstat sums "
                         "/proc/PID/task/*/schedstat for ns resolution",
            **IDLE_GOALS}


def bench_idle_cluster(args, workdir, cluster=None):
    """Every agent of the N-agent cluster (the scale cluster when given, else a new one)."""
    def measure(c):
        log(f"idle: settling {args.settle_seconds} s, then {args.idle_seconds} s window "
            f"over {len(c.agents)} agents")
        time.sleep(args.settle_seconds)
        wall, rows = measure_idle(c.agents, args.idle_seconds)
        summ = idle_summary(rows)
        summ["agents"] = len(c.agents)
        summ["window_wall_s"] = round(wall, 3)
        live = [r for r in rows if not r.get("dead")]
        summ["top3_cpu"] = sorted(live, key=lambda r: -r["cpu_pct"])[:3]
        summ["met"] = bool(live) and not summ["dead"] and (
            max(r["cpu_pct"] for r in live) < 1.0 and max(r["rss_mb"] for r in live) < 20.0)
        return summ

    if cluster is not None:
        return measure(cluster)
    with Cluster(args.binary, workdir, "idlebig", free_udp_port()) as cb:
        log(f"idle: starting {args.agents} agents")
        t_last = start_cluster(cb, args.agents, SCALE_NET, "s")
        conv = wait_all_see_all(cb, args.scale_timeout, t_last, 1.0)
        log(f"idle: {len(conv['listed_at'])}/{args.agents} see all")
        out = measure(cb)
        out["converged"] = len(conv["listed_at"]) == args.agents
        return out


def bench_idle_single(args, workdir):
    """One agent of a 5-agent cluster (run when no other cluster is up)."""
    with Cluster(args.binary, workdir, "idle5", free_udp_port()) as c5:
        log(f"idle: 5-agent cluster on {IDLE5_NET}2..6, port {c5.broadcast_port}")
        t_last = start_cluster(c5, 5, IDLE5_NET, "i")
        conv = wait_all_see_all(c5, 15.0, t_last, 1.0)
        log(f"idle: 5-agent cluster: {len(conv['measured_at'])}/5 with all offsets; "
            f"settling {args.settle_seconds} s, then {args.idle_seconds} s window")
        time.sleep(args.settle_seconds)
        wall, rows = measure_idle(c5.agents, args.idle_seconds)
    single = rows[0]
    out = {
        "agent": single,
        "all_5": idle_summary(rows),
        "window_wall_s": round(wall, 3),
        "converged": len(conv["listed_at"]) == 5,
    }
    out["met"] = (not single.get("dead")) and single["cpu_pct"] < 1.0 and single["rss_mb"] < 20.0
    return out


# ---------------------------------------------------------------------------------------------
# 3. offset

def find_entry(nbrs, ip):
    for n in nbrs or []:
        if n.get("ip") == ip:
            return n
    return None


def offset_run(args, workdir, net, faketime, expected_ms):
    env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": faketime,
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    label = "offset" + faketime.replace("+", "p").replace("-", "m").replace(".", "_")
    series = []
    series_b = []
    with Cluster(args.binary, workdir, label, free_udp_port()) as c:
        a = c.start("A", net + "2")
        b = c.start("B", net + "3", extra_env=env)
        t0 = time.monotonic()
        log(f"offset {faketime}: A={a.ip}, B={b.ip} (faketime), port {c.broadcast_port}")
        at3 = None
        sample_i = 0
        duration = args.offset_seconds
        while sample_i * 0.5 <= duration + 1e-9:
            target = t0 + sample_i * 0.5
            now = time.monotonic()
            if target > now:
                time.sleep(target - now)
            rel = time.monotonic() - t0
            e = find_entry(http_get_json(a.ip, "/v1/neighbors", 0.4), b.ip)
            eb = find_entry(http_get_json(b.ip, "/v1/neighbors", 0.4), a.ip)
            off = e.get("offset_ms") if e else None
            row = {"t_s": round(rel, 3), "offset_ms": off,
                   "rtt_ms": e.get("rtt_ms") if e else None,
                   "samples": e.get("time_samples") if e else None}
            if e and e.get("sdss_delay_ms") is not None:
                row["sdss_delay_ms"] = round(e["sdss_delay_ms"], 3)
            series.append(row)
            series_b.append({"t_s": round(rel, 3),
                             "offset_ms": eb.get("offset_ms") if eb else None})
            if at3 is None and rel >= 3.0:
                at3 = row
            sample_i += 1
        dead = [x.name for x in c.dead()]
    offs = [r["offset_ms"] for r in series if r["offset_ms"] is not None]
    errs = [abs(o - expected_ms) for o in offs]
    after3 = [abs(r["offset_ms"] - expected_ms) for r in series
              if r["offset_ms"] is not None and r["t_s"] >= 3.0]
    b_offs = [r["offset_ms"] for r in series_b if r["offset_ms"] is not None]
    first_seen = next((r["t_s"] for r in series if r["offset_ms"] is not None), None)
    err3 = abs(at3["offset_ms"] - expected_ms) if at3 and at3["offset_ms"] is not None else None
    return {
        "faketime": faketime,
        "expected_offset_ms": expected_ms,
        "at_3s": at3,
        "abs_error_ms_at_3s": round(err3, 4) if err3 is not None else None,
        "first_offset_at_s": first_seen,
        "abs_error_ms_after_3s": summarize(after3),
        "abs_error_ms_all": summarize(errs),
        "b_view_of_a_offset_ms": summarize(b_offs),
        "b_view_expected_ms": -expected_ms,
        "series": series,
        "dead_agents": dead,
        "goal_abs_error_ms": 0.2,
        "met": err3 is not None and err3 < 0.2 and bool(after3) and max(after3) < 0.2,
    }


def bench_offset(args, workdir):
    if not os.path.exists(FAKETIME_LIB):
        log(f"offset: {FAKETIME_LIB} missing; skipped")
        return {"skipped": True, "reason": f"libfaketime not found at {FAKETIME_LIB}"}
    out = {"method": "B under libfaketime (FAKETIME=<s>, FAKETIME_DONT_FAKE_MONOTONIC=1); "
                     "A's /v1/neighbors offset_ms for B sampled every 0.5 s"}
    runs = [("+0.25", 250.0), ("-1.5", -1500.0)]
    out["positive"] = offset_run(args, workdir, OFFSET_NETS[0], *runs[0])
    out["negative"] = offset_run(args, workdir, OFFSET_NETS[1], *runs[1])
    out["met"] = out["positive"]["met"] and out["negative"]["met"]
    return out


# ---------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["scale", "idle", "offset"],
                   help="run one measurement (default: all three)")
    p.add_argument("--agents", type=int, default=50, help="cluster size for scale/idle (50)")
    p.add_argument("--binary", default=DEFAULT_BINARY, help="synod binary (build/synod)")
    p.add_argument("--scale-timeout", type=float, default=30.0, help="scale bound, s (30)")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle window, s (10)")
    p.add_argument("--settle-seconds", type=float, default=3.0,
                   help="wait after convergence before the idle window, s (3)")
    p.add_argument("--offset-seconds", type=float, default=10.0, help="offset series, s (10)")
    p.add_argument("--cluster-key-file", metavar="FILE",
                   help="start every agent with --cluster-key-file FILE (a `synod keygen` key: "
                        "peer traffic over TLS 1.3); default: clear text")
    p.add_argument("--keep", action="store_true", help="keep agent logs and data dirs")
    args = p.parse_args()
    if not (1 <= args.agents <= 250):
        p.error("--agents must be in 1..250")
    if not os.access(args.binary, os.X_OK):
        p.error(f"{args.binary} is not executable (build first)")
    if args.cluster_key_file:
        if not os.path.isfile(args.cluster_key_file):
            p.error(f"{args.cluster_key_file}: no such file")
        AGENT_EXTRA_ARGS[:] = ["--cluster-key-file", os.path.abspath(args.cluster_key_file)]

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    result = {"benchmark": "discovery", "binary": args.binary, "machine": machine_info()}
    if args.cluster_key_file:
        result["cluster_key_file"] = AGENT_EXTRA_ARGS[1]
    workdir = tempfile.mkdtemp(prefix="synod-discovery-bench-")
    log(f"work dir {workdir}")
    try:
        want = {args.only} if args.only else {"scale", "idle", "offset"}
        if "idle" in want:
            result["idle"] = idle_header(args)
        if "scale" in want:
            with Cluster(args.binary, workdir, "scale", free_udp_port()) as big:
                result["scale"] = bench_scale(args, workdir, big)
                if "idle" in want and result["scale"]["all_saw_all"]:
                    result["idle"]["cluster"] = bench_idle_cluster(args, workdir, big)
        if "idle" in want:
            if "cluster" not in result["idle"]:
                result["idle"]["cluster"] = bench_idle_cluster(args, workdir, None)
            result["idle"]["single_in_5"] = bench_idle_single(args, workdir)
            result["idle"]["met"] = bool(result["idle"]["single_in_5"]["met"]
                                         and result["idle"]["cluster"]["met"])
        if "offset" in want:
            result["offset"] = bench_offset(args, workdir)
    except Exception as e:  # report, still print the JSON gathered so far
        record_failure(result, e)
    finally:
        result["agent_exits_abnormal"] = ABNORMAL_EXITS
        result["http_errors"] = HTTP_ERRORS
        keep_or_remove(result, workdir, args.keep, "logs")
    order = ["benchmark", "binary", "machine", "scale", "idle", "offset"]
    ordered_result = ordered(result, order)
    print(json.dumps(ordered_result, indent=2))
    if "interrupted" in result:
        return 130
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
