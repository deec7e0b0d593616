#!/usr/bin/env python3
"""Local-cluster CLI benchmark (issue 5): how long `synod bootstrap -c N` takes to a formed
cluster with a leader, and how fast `synod clients list -v` answers with N agents.

Run by hand:  python3 bench/cli_bench.py [--synod build/synod] [--sizes 4,25] [--list-runs 20]
Prints one JSON object on stdout; progress on stderr. Agents run on a random 127.A.B.x block, in a
temporary workspace that is torn down (and purged) at the end, whatever happens.
Goals: bootstrap -c 4 under 3 s, -c 25 under 10 s; clients list -v under 100 ms with 25 agents.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time


def log(message):
    print(f"[cli_bench] {message}", file=sys.stderr, flush=True)


def run(synod, env, *argv, timeout=120):
    started = time.monotonic()
    done = subprocess.run([synod, *argv], env=env, capture_output=True, text=True,
                          timeout=timeout)
    return time.monotonic() - started, done


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--synod", default=os.path.join(os.path.dirname(__file__), "..",
                                                        "build", "synod"))
    parser.add_argument("--sizes", default="4,25")
    parser.add_argument("--list-runs", type=int, default=20)
    args = parser.parse_args()
    synod = os.path.abspath(args.synod)
    goals = {4: 3.0, 25: 10.0}
    results = {"benchmark": "cli", "machine": {"cores": os.cpu_count()}, "bootstrap": []}
    for size in [int(s) for s in args.sizes.split(",")]:
        workspace = os.path.join(tempfile.mkdtemp(prefix="synod-cli-bench-"), "ws")
        env = dict(os.environ, SYNOD_WORKSPACE=workspace)
        env.pop("SYNOD_NODE", None)
        first_ip = f"127.{random.randint(1, 250)}.{random.randint(1, 250)}.2"
        try:
            run(synod, env, "init", "--first-ip", first_ip)
            log(f"bootstrap -c {size} on {first_ip}..")
            took, done = run(synod, env, "bootstrap", "-c", str(size))
            entry = {"agents": size, "seconds": round(took, 3), "ok": done.returncode == 0,
                     "goal_seconds": goals.get(size), "met": None}
            if entry["goal_seconds"] is not None:
                entry["met"] = entry["ok"] and took < entry["goal_seconds"]
            if done.returncode != 0:
                entry["error"] = done.stderr[-500:]
            if done.returncode == 0:
                times = []
                for _ in range(args.list_runs):
                    took_list, listed = run(synod, env, "clients", "list", "-v", timeout=30)
                    if listed.returncode == 0:
                        times.append(took_list * 1000)
                if times:
                    entry["clients_list_v_ms"] = {"median": round(statistics.median(times), 1),
                                                  "max": round(max(times), 1), "runs": len(times)}
                    if size == 25:
                        entry["clients_list_v_met"] = statistics.median(times) < 100
            results["bootstrap"].append(entry)
            log(json.dumps(entry))
        finally:
            run(synod, env, "teardown", "--purge", timeout=60)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
