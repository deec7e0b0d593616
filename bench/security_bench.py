#!/usr/bin/env python3
"""Cluster-key benchmark (issue 15, "Performance to reach"; run by hand, not by tests).

Runs the existing benchmarks twice each, as subprocesses, in clear text and then with a cluster
key (`synod keygen -o <temp dir>/cluster.key`, given to every agent with --cluster-key-file, so
that all peer-protocol and Raft traffic is TLS 1.3 with that key), each pair back to back, and
puts their figures side by side:

  throughput  consensus_bench.py --only throughput --no-raw (--tp-plan): commits/s with the key
              at least 0.8x the clear-text figure of the same run (best run of the plan each).
  failover    consensus_bench.py --only failover (--failover-rounds): leader failover with the
              key: median time until a survivor names a new leader, and until a PUT through a
              survivor succeeds, both under 0.6 s.
  clock       clock_bench.py --only synod (--clock-seconds): median absolute offset error of
              Synod's two followers (+0.25 s and -1.5 s under libfaketime, both pooled) with the
              key within 10 us of the clear-text one.
  formation   discovery_bench.py --only scale (--agents 50, 1 s beacons): with the key, every
              agent lists all N-1 others, and has measured each one's offset over the peer link
              (so the TLS handshake, hello and a first probe are done for every pair), within
              2 beacon intervals of the last agent's launch.

Prints one JSON object to stdout (`goals`, then every run's own JSON under `runs`); progress,
with the benchmarks' own, goes to stderr. Python 3 standard library only. Loopback only (the
benchmarks' own 127.66-127.68 addresses). Every benchmark started is bounded in time: SIGTERM
(it stops its agents and prints what it has) when over its limit or on Ctrl-C, SIGKILL to its
process group 60 s later. The agents run a copy of the binary taken at the start, in a temp
dir with the key, removed at the end.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import (Interrupted, _on_signal, binary_identity, log, loadavg, machine_info,
                      note_binary_change, ordered, record_failure, signals_ignored)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BINARY = os.path.join(os.path.dirname(HERE), "build", "synod")
PARTS = ("throughput", "failover", "clock", "formation")
DEFAULT_TP_PLAN = "async:leader:128,async:spread:128"

GOAL_TP_RATIO = 0.8
GOAL_FAILOVER_MEDIAN_S = 0.6
GOAL_CLOCK_DELTA_US = 10.0
GOAL_FORMATION_INTERVALS = 2.0


# ---------------------------------------------------------------------------------------------
# Running one benchmark

def run_bench(script, bench_args, key_file, limit_s, workdir, label):
    """Runs bench/<script> with `bench_args` (and --cluster-key-file key_file if given) in its
    own process group; returns its JSON (None if it printed none) and a record of the run."""
    cmd = [sys.executable, os.path.join(HERE, script)] + bench_args
    if key_file:
        cmd += ["--cluster-key-file", key_file]
    out_path = os.path.join(workdir, f"{label}.json")
    rec = {"command": " ".join(["python3", "bench/" + script] + cmd[2:]),
           "loadavg_before": loadavg()}
    log(f"== {label}: {rec['command']} (limit {limit_s:.0f} s)")
    t0 = time.monotonic()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=None,
                                start_new_session=True)
    try:
        proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        rec["timed_out_after_s"] = limit_s
        log(f"{label}: over its {limit_s:.0f} s limit; SIGTERM")
        with signals_ignored():
            _stop(proc, label)
    except Interrupted:
        with signals_ignored():
            _stop(proc, label)
        raise
    rec["returncode"] = proc.returncode
    rec["seconds"] = round(time.monotonic() - t0, 1)
    rec["loadavg_after"] = loadavg()
    text = open(out_path, "rb").read().decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
        rec["stdout_tail"] = text[-2000:]
    log(f"== {label}: done in {rec['seconds']} s, exit status {proc.returncode}")
    return data, rec


def _stop(proc, label):
    """SIGTERM to the benchmark (it stops its own agents), then SIGKILL to its whole process
    group (its agents included) if it is still there 60 s later."""
    with contextlib.suppress(OSError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60.0)
        return
    except subprocess.TimeoutExpired:
        log(f"{label}: still running 60 s after SIGTERM; SIGKILL to its process group")
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)


def run_problem(part, data, rec):
    """Why a benchmark's run is not to be trusted whole (None if nothing is wrong)."""
    if data is None:
        return f"printed no JSON (exit status {rec.get('returncode')})"
    why = [data[k] for k in ("error", "interrupted") if data.get(k)]
    if part in ("throughput", "failover") and _get(data, part, "error"):
        why.append(data[part]["error"])
    if rec.get("timed_out_after_s"):
        why.append(f"stopped at its {rec['timed_out_after_s']:.0f} s limit")
    return "; ".join(map(str, why)) or None


# ---------------------------------------------------------------------------------------------
# The figures compared

def _get(d, *path):
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _ratio(a, b, digits=3):
    return round(a / b, digits) if a is not None and b else None


def _delta(a, b, digits=4):
    return round(a - b, digits) if a is not None and b is not None else None


def _machine(data, part):
    """The machine's load while a benchmark's part ran, as it reported it."""
    m = _get(data, part, "machine_during_part") or {}
    return {k: m[k] for k in ("other_processes_pct", "busy_cpu_pct_of_one_core", "loadavg_after",
                              "other_processes_cpu_pct_of_all_cores",
                              "machine_cpu_pct_of_all_cores") if k in m} or None


def goal_throughput(plain, key):
    def runs(data):
        out = {}
        for r in _get(data, "throughput", "synod_runs") or []:
            target = "leader" if r.get("targets") == "leader" else "spread"
            out[f"{r.get('client')}:{target}:{r.get('connections')}"] = r
        return out
    rp, rk = runs(plain), runs(key)
    per_run = []
    for name in list(rp) + [n for n in rk if n not in rp]:
        a, b = rp.get(name, {}), rk.get(name, {})
        per_run.append({"run": name, "plain": a.get("per_s"), "key": b.get("per_s"),
                        "ratio": _ratio(b.get("per_s"), a.get("per_s")),
                        "p50_latency_ms": {"plain": _get(a, "latency_ms", "p50"),
                                           "key": _get(b, "latency_ms", "p50")},
                        "leader_cpu_pct": {"plain": _leader_cpu(a), "key": _leader_cpu(b)},
                        "leader_changed": {"plain": a.get("leader_changed"),
                                           "key": b.get("leader_changed")}})
    best_p = _get(plain, "throughput", "summary", "synod_best_commits_per_s")
    best_k = _get(key, "throughput", "summary", "synod_best_commits_per_s")
    ratio = _ratio(best_k, best_p)
    return {"what": "committed PUTs/s (consensus_bench --only throughput), best run of the plan "
                    "each", "plain": best_p, "key": best_k, "ratio": ratio,
            "target": f"ratio >= {GOAL_TP_RATIO}",
            "met": ratio is not None and ratio >= GOAL_TP_RATIO,
            "per_run": per_run,
            "machine": {"plain": _machine(plain, "throughput"), "key": _machine(key, "throughput")}}


def _leader_cpu(run):
    cpu = run.get("agent_cpu_pct_of_one_core") or {}
    return next((v for k, v in cpu.items() if k.endswith("(leader)")), None)


def goal_failover(plain, key):
    out = {"what": "median s from the leader's SIGKILL (consensus_bench --only failover)"}
    met = True
    for field in ("new_leader_seen_s", "put_ok_s"):
        p = _get(plain, "failover", field) or {}
        k = _get(key, "failover", field) or {}
        out[field] = {"plain": p.get("median"), "key": k.get("median"),
                      "delta": _delta(k.get("median"), p.get("median")),
                      "max": {"plain": p.get("max"), "key": k.get("max")},
                      "rounds": {"plain": p.get("n"), "key": k.get("n")}}
        met = met and k.get("median") is not None and k["median"] < GOAL_FAILOVER_MEDIAN_S
    out["target"] = f"with the key, both medians < {GOAL_FAILOVER_MEDIAN_S} s"
    out["met"] = bool(met and not _get(key, "failover", "error"))
    out["machine"] = {"plain": _machine(plain, "failover"), "key": _machine(key, "failover")}
    return out


def goal_clock(plain, key):
    def us(stat):
        return round(stat["median"] * 1e3, 2) if stat and stat.get("median") is not None else None
    p = us(_get(plain, "comparison", "synod_abs_error_ms_pooled"))
    k = us(_get(key, "comparison", "synod_abs_error_ms_pooled"))
    p10 = us(_get(plain, "comparison", "synod_abs_error_ms_pooled_from_10s"))
    k10 = us(_get(key, "comparison", "synod_abs_error_ms_pooled_from_10s"))
    delta = _delta(k, p, 2)
    followers = {}
    for shift in ("+0.25", "-1.5"):
        fp = _get(plain, "synod", "followers", shift) or {}
        fk = _get(key, "synod", "followers", shift) or {}
        followers[shift] = {
            "median_abs_error_us": {"plain": us(fp.get("abs_error_ms")),
                                    "key": us(fk.get("abs_error_ms"))},
            "median_signed_error_us": {"plain": us(fp.get("signed_error_ms")),
                                       "key": us(fk.get("signed_error_ms"))},
            "first_within_1ms_s": {"plain": fp.get("first_within_1ms_s"),
                                   "key": fk.get("first_within_1ms_s")}}
    return {"what": "median absolute error of offset_ms, Synod's two followers pooled, us "
                    "(clock_bench --only synod)",
            "plain": p, "key": k, "delta_us": delta,
            "from_10s": {"plain": p10, "key": k10, "delta_us": _delta(k10, p10, 2)},
            "truth_within_error_fraction": {
                "plain": _get(plain, "comparison", "synod_truth_within_error_fraction"),
                "key": _get(key, "comparison", "synod_truth_within_error_fraction")},
            "followers": followers,
            "target": f"|key - plain| <= {GOAL_CLOCK_DELTA_US} us",
            "met": delta is not None and abs(delta) <= GOAL_CLOCK_DELTA_US,
            "machine": {"plain": _get(plain, "synod", "machine_during_part"),
                        "key": _get(key, "synod", "machine_during_part")}}


def goal_formation(plain, key):
    def fig(data):
        s = _get(data, "scale") or {}
        return {"agents": s.get("agents"),
                "all_see_all_s": s.get("seconds_until_all_see_all"),
                "all_see_all_lower_bound_s": s.get("seconds_lower_bound"),
                "all_offsets_measured_s": s.get("seconds_until_all_offsets_measured"),
                "agents_with_all_offsets": s.get("agents_with_all_offsets_measured"),
                "last_agent_up_after_last_launch_s": s.get("last_agent_up_after_last_launch_s"),
                "launch_duration_s": s.get("launch_duration_s"),
                "dead_agents": s.get("dead_agents")}
    p, k = fig(plain), fig(key)
    interval = _get(key, "scale", "beacon_interval_s") or 1.0
    bound = GOAL_FORMATION_INTERVALS * interval
    seen, measured = k["all_see_all_s"], k["all_offsets_measured_s"]
    return {"what": "seconds from the last agent's launch (discovery_bench --only scale, "
                    f"{interval:g} s beacons): every agent lists all others; every agent has "
                    "each one's offset, measured over the peer link (TLS handshake + hello + a "
                    "probe with the key)",
            "plain": p, "key": k, "beacon_interval_s": interval,
            "target": f"with the key, both <= {GOAL_FORMATION_INTERVALS:g} beacon intervals "
                      f"({bound:g} s)",
            "met_all_see_all": seen is not None and seen <= bound,
            "met_all_offsets_measured": measured is not None and measured <= bound,
            "met": seen is not None and measured is not None and max(seen, measured) <= bound}


# ---------------------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", help=f"comma-separated parts, of {','.join(PARTS)} (default: all)")
    p.add_argument("--binary", default=DEFAULT_BINARY, help="synod binary (build/synod)")
    p.add_argument("--tp-plan", default=DEFAULT_TP_PLAN,
                   help=f"consensus_bench --tp-plan ({DEFAULT_TP_PLAN})")
    p.add_argument("--tp-seconds", type=float, default=10.0, help="throughput window, s (10)")
    p.add_argument("--failover-rounds", type=int, default=10, help="leader kills per run (10)")
    p.add_argument("--clock-seconds", type=float, default=60.0,
                   help="clock_bench sampling window, s (60)")
    p.add_argument("--agents", type=int, default=50, help="formation cluster size (50)")
    p.add_argument("--keep", action="store_true",
                   help="pass --keep to every benchmark (logs and data dirs left in /tmp)")
    args = p.parse_args()
    parts = [x.strip() for x in args.only.split(",")] if args.only else list(PARTS)
    if any(x not in PARTS for x in parts):
        p.error(f"--only: parts are {','.join(PARTS)}")
    if not os.access(args.binary, os.X_OK):
        p.error(f"{args.binary} is not executable (build first)")
    if not (1 <= args.failover_rounds <= 100 and 1 <= args.tp_seconds <= 300
            and 5 <= args.clock_seconds <= 600 and 2 <= args.agents <= 250):
        p.error("argument out of range")
    binary = os.path.abspath(args.binary)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    result = {"benchmark": "security", "binary": binary, "machine": machine_info(),
              "method": "each benchmark run twice back to back, clear text then with a fresh "
                        "cluster key given to every agent (--cluster-key-file), all on a copy "
                        "of the binary taken at the start (binary_identity)",
              "settings": {"tp_plan": args.tp_plan, "tp_seconds": args.tp_seconds,
                           "failover_rounds": args.failover_rounds,
                           "clock_seconds": args.clock_seconds, "agents": args.agents}}
    identity = binary_identity(binary)
    result["binary_identity"] = identity
    common = ["--binary", binary] + (["--keep"] if args.keep else [])
    n_tp = len(args.tp_plan.split(","))
    benches = {
        "throughput": ("consensus_bench.py",
                       ["--only", "throughput", "--no-raw", "--tp-plan", args.tp_plan,
                        "--tp-seconds", str(args.tp_seconds)],
                       120 + n_tp * (args.tp_seconds + 40)),
        "failover": ("consensus_bench.py",
                     ["--only", "failover", "--failover-rounds", str(args.failover_rounds)],
                     90 + args.failover_rounds * 45),
        "clock": ("clock_bench.py", ["--only", "synod", "--seconds", str(args.clock_seconds)],
                  args.clock_seconds + 120),
        "formation": ("discovery_bench.py", ["--only", "scale", "--agents", str(args.agents)],
                      150 + args.agents),
    }
    goal_of = {"throughput": goal_throughput, "failover": goal_failover, "clock": goal_clock,
               "formation": goal_formation}
    goals, runs = {}, {}
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="synod-security-bench-") as workdir:
        key_file = os.path.join(workdir, "cluster.key")
        try:
            # Both runs of every pair use this copy, even if build/synod is rebuilt meanwhile.
            agent = os.path.join(workdir, "synod")
            shutil.copy2(binary, agent)
            if binary_identity(agent) != identity:
                raise RuntimeError(f"{binary} changed while it was copied (being rebuilt?)")
            common[1] = agent
            kg = subprocess.run([agent, "keygen", "-o", key_file], capture_output=True,
                                text=True, timeout=30)
            if kg.returncode != 0 or not os.path.isfile(key_file):
                raise RuntimeError(f"synod keygen failed: {kg.stderr.strip()[-300:]}")
            log(f"cluster key generated in {workdir}")
            for part in parts:
                script, bench_args, limit = benches[part]
                runs[part] = {}
                data = {}
                for mode, key in (("plain", None), ("key", key_file)):
                    data[mode], rec = run_bench(script, common + bench_args, key, limit, workdir,
                                                f"{part}-{mode}")
                    runs[part][mode] = {"run": rec, "result": data[mode]}
                goals[part] = goal_of[part](data["plain"] or {}, data["key"] or {})
                problems = {mode: run_problem(part, d, runs[part][mode]["run"])
                            for mode, d in data.items()}
                problems = {m: x for m, x in problems.items() if x}
                if problems:
                    goals[part]["run_problems"] = problems
                log(f"{part}: {'met' if goals[part]['met'] else 'NOT met'}")
        except Exception as e:  # report, still print the JSON gathered so far
            record_failure(result, e)
    result["seconds"] = round(time.monotonic() - t_start, 1)
    note_binary_change(result, binary, identity)  # says whether build/synod was rebuilt
    with contextlib.suppress(OSError):
        result["loadavg_at_end"] = loadavg()
    result["goals"] = goals
    result["all_met"] = bool(goals) and len(goals) == len(parts) and all(
        g["met"] for g in goals.values())
    result["runs"] = runs
    print(json.dumps(ordered(result, ["benchmark", "binary", "binary_identity",
                                      "binary_changed_during_run", "machine", "method",
                                      "settings", "seconds", "all_met", "goals"]), indent=2))
    if "interrupted" in result:
        return 130
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
