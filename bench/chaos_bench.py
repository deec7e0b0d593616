#!/usr/bin/env python3
"""The chaos suite's long run, by hand (issue 17): real agents in network
namespaces (tests/chaos/lab.py), clients reading and writing all along, and
nemeses one after the other, each followed by a settle-and-check
(tests/chaos/scenarios.py). One JSON object on stdout (every record, the
stale reads, the linearizability verdict per cluster, the timers' report,
the issue's goals with `met`), a human summary on stderr. Beyond the network:
a clock step (libfaketime) on a node and on the clock master, file sync
around a cut and a kill (agents then run with --sync-dir), a full disk (a
tmpfs data dir); webhook timers are created all along (--timer-rate) and
none may be missed (tests/chaos/features.py). Needs root, `ip` and `nft`; Python 3
standard library. The binary is copied first, so a rebuild during the run
does not change it.

  python3 bench/chaos_bench.py                     # everything, 3 and 5 nodes (~12 min)
  python3 bench/chaos_bench.py --nodes 3 --only isolate-follower,loss5
  python3 bench/chaos_bench.py --scale 0.3         # every duration x0.3: a quick look
  python3 bench/chaos_bench.py --nodes 3 --only pause-leader --repeat 10
  python3 bench/chaos_bench.py --nodes 3 --only clock-step,file-sync,full-disk --keep
  python3 bench/chaos_bench.py --list              # the scenarios
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "chaos"))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
import features  # noqa: E402
import lab as labmod  # noqa: E402
import linearizability as lz  # noqa: E402
import scenarios as sc  # noqa: E402
import workload as wl  # noqa: E402

# name -> (minimum cluster size, what it does, steps(args) -> [(label, method name, args)])
SCENARIOS = {
    "baseline": (3, "no fault: the lossless write rate (saturating writers) of this run",
                 lambda a: [("baseline", "quiet", (a.s(10),))]),
    "isolate-follower": (3, "cut a follower off for each of --cuts seconds, heal",
                         lambda a: [(f"isolate follower {a.s(c):g} s", "isolate",
                                     ("follower", a.s(c))) for c in a.cuts]),
    "isolate-leader": (3, "cut the leader off for 5 s, heal",
                       lambda a: [(f"isolate leader {a.s(5):g} s", "isolate",
                                   ("leader", a.s(5)))]),
    "split": (5, "split 2-3 (the leader with the 2) for 10 s, heal",
              lambda a: [(f"split 2-3 {a.s(10):g} s", "split", (2, a.s(10)))]),
    "flapping": (3, "10 cuts of 1 s (a random node, the leader every other time), 1 s apart",
                 lambda a: [("flapping 10 x 1 s", "flapping", (10, 1.0, 1.0))]),
    "loss5": (3, "5 % loss between the nodes for 60 s (saturating writers too)",
              lambda a: [(f"loss 5% {a.s(60):g} s", "loss", (5, a.s(60)))]),
    "loss20": (3, "20 % loss between the nodes for 30 s (saturating writers too)",
               lambda a: [(f"loss 20% {a.s(30):g} s", "loss", (20, a.s(30)))]),
    "pause-leader": (3, "SIGSTOP the leader for 3 s, SIGCONT",
                     lambda a: [("SIGSTOP leader 3 s", "pause_leader", (3.0,))]),
    "kill-leader": (3, "kill -9 the leader (a write through a follower right after), restart "
                       "it after 3 s",
                    lambda a: [("kill -9 leader", "kill_leader", (3.0,))]),
    "clock-step": (3, "restart the last node (not the clock master) under libfaketime +5 s, "
                      "try to make it the leader, 20 s of writes and timers, restart it "
                      "without (its clock steps back)",
                   lambda a: [("clock step +5 s (n%d)" % a.size, "clock_step",
                               (5.0, a.s(20), -1))]),
    "clock-step-master": (3, "the same on n1, the clock master (lowest address): the cluster "
                             "clock steps too",
                          lambda a: [("clock step +5 s on the master (n1)", "clock_step",
                                      (5.0, a.s(20), 0))]),
    "file-sync": (3, "agents with --sync-dir: files written on every node, on a cut-off "
                     "follower and the majority (one path on both sides), on a killed node; "
                     "folders identical within 60 s",
                  lambda a: [(f"file sync, cut {a.s(8):g} s", "file_sync", (a.s(8), 60.0))]),
    "full-disk": (3, "a follower's data dir on a 16 MiB tmpfs, filled up for 15 s while "
                     "clients write; freed; it must catch up (then moved back to disk)",
                  lambda a: [("full disk 16 MiB", "full_disk", (16, a.s(15)))]),
    "delay": (3, "5 ms +- 1 ms delay between the nodes for 10 s (NFQUEUE delayer; skipped "
                 "if it does not build)",
              lambda a: [(f"delay 5+-1 ms {a.s(10):g} s", "delay", (5, 1, a.s(10)))]),
}
DEFAULT_5 = ("baseline", "isolate-follower", "isolate-leader", "split", "kill-leader")
FIVE_NODE_ARGS = ("--voters", "5")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synod", default=os.path.join(HERE, "..", "build", "synod"))
    p.add_argument("--nodes", default="3,5", help="cluster sizes to run, e.g. 3 or 3,5")
    p.add_argument("--only", default="", help="comma-separated scenarios (default: all that "
                                              "fit; 5 nodes: " + ",".join(DEFAULT_5) + ")")
    p.add_argument("--cuts", default="5,15,30", help="isolate-follower cut lengths, seconds")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every duration")
    p.add_argument("--repeat", type=int, default=1, help="run the chosen scenarios N times")
    p.add_argument("--threads", type=int, default=6, help="client threads")
    p.add_argument("--rate", type=float, default=60.0, help="client ops/s in total")
    p.add_argument("--saturate", type=int, default=4,
                   help="saturating writer threads in baseline and loss windows (0: none)")
    p.add_argument("--timer-rate", type=float, default=2.0,
                   help="webhook timers created per second all along the run (0: none)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep the agents' logs and data dirs")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = p.parse_args()
    args.cuts = [float(c) for c in args.cuts.split(",") if c]
    args.sizes = [int(n) for n in args.nodes.split(",") if n]
    args.only = [s for s in args.only.split(",") if s]
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios {sorted(unknown)}; --list shows them")
    args.s = lambda seconds: max(1.0, round(seconds * args.scale, 1))
    return args


def chosen(args, size):
    names = args.only or [n for n in SCENARIOS if size == 3 or n in DEFAULT_5]
    return [n for n in names if SCENARIOS[n][0] <= size]


def run_cluster(args, binary, size):
    """Run the chosen scenarios on one cluster; returns its report."""
    args.size = size
    lab = labmod.Lab(binary, size, agent_args=FIVE_NODE_ARGS if size >= 5 else (),
                     keep=args.keep, log=benchlib.log,
                     sync="file-sync" in chosen(args, size))
    lab.create()
    report = {"nodes": size, "agent_args": list(lab.agent_args), "records": [], "skipped": {}}
    with lab:
        lab.start_agents()
        report["formed_s"] = round(wl.wait_converged(lab, timeout=60.0), 3)
        history = wl.History()
        monitor = wl.Monitor(lab).start()
        clients = wl.Clients(lab, history, threads=args.threads, rate=args.rate,
                             seed=args.seed).start()
        chaos = sc.Chaos(lab, history, clients, monitor, benchlib.log, seed=args.seed,
                         saturate_threads=args.saturate)
        if args.timer_rate > 0:
            chaos.timers = features.TimerProbe(lab, benchlib.log, rate=args.timer_rate,
                                               seed=args.seed).start()
        try:
            for _ in range(args.repeat):
                for name in chosen(args, size):
                    run_scenario(chaos, args, name, report)
        finally:
            clients.stop()
            monitor.stop()
            if chaos.timers is not None:
                chaos.timers.stop_creating()
        conclude(chaos, lab, history, monitor, report)
    report["goals"] = goals(report)
    return report


def run_scenario(chaos, args, name, report):
    why = chaos.lab.delay_unavailable() if name == "delay" else None
    if why:
        report["skipped"][name] = why
        benchlib.log(f"skipping delay: {why}")
        return
    for label, method, params in SCENARIOS[name][2](args):
        try:
            chaos.run(label, getattr(chaos, method), *params)
            chaos.records[-1].update(scenario=name, loadavg=benchlib.loadavg())
        except Exception as e:  # a failed nemesis is reported; the run goes on
            benchlib.log(f"{label} failed: {type(e).__name__}: {e}")
            report["records"].append({"scenario": name, "nemesis": label,
                                      "error": f"{type(e).__name__}: {e}"[:2000]})
            chaos.recover()


def conclude(chaos, lab, history, monitor, report):
    acked, lost = chaos.final_check()
    if chaos.timers is not None:
        report["timers"], timer_failures = chaos.timers.finish(30.0, chaos.leader())
        chaos.failures += timer_failures
        chaos.timers.close()
    if lab.sync:
        folders = {n.name: n.sync_dir for n in lab.nodes}
        report["sync_final"] = features.wait_folders_identical(folders, 60.0)
        if not report["sync_final"]["converged"]:
            chaos.failures.append("file sync: folders not identical at the end of the run: "
                                  f"{report['sync_final'].get('difference_examples')}")
    stale = chaos.finish()
    reads = [op for op in history.register_ops() if op.kind == lz.READ and
             op.process.startswith("c") and op.outcome == lz.OK]
    result = lz.check_history(history.register_ops())
    report["records"] = chaos.records + report["records"]
    report.update({
        "ops": len(history.snapshot()),
        "acked_ledger_writes": acked, "lost_acked_writes": lost,
        "stale_reads": len(stale), "reads_answered": len(reads),
        "stale_read_examples": [s.describe() for s in stale[:5]],
        "linearizable": result.valid,
        "linearizability": result.summary(most=5),
        "linearizability_seconds": round(result.seconds, 2),
        "split_brains": {str(t): ls for t, ls in monitor.split_brains().items()},
        "agents_died": chaos.deaths + [f"{n.name} (exit {n.proc.returncode})"
                                       for n in lab.dead_agents()],
        "failures": chaos.failures,
    })


# --------------------------------------------------------------------------
# Goals (issue 17)
# --------------------------------------------------------------------------

def goals(cluster):
    """The issue's goals, as far as this cluster's records measure them."""
    records = [r for r in cluster["records"] if "error" not in r]
    by = {}
    for r in records:
        by.setdefault(r.get("scenario"), []).append(r)
    out = {}
    for r in by.get("isolate-follower", []):
        out[f"rejoin_after_{r['cut_s']:g}s_cut_s"] = goal(r["rejoin_s"], "< 2",
                                                           _lt(r["rejoin_s"], 2.0))
    refusals = [r["refusal"] for r in records if "refusal" in r]
    if refusals:
        worst = max(refusals, key=lambda f: f["seconds"])
        out["refusal_without_leader_s"] = goal(worst["seconds"], "< 1 (not 200)",
                                               all(f["outcome"] != lz.OK and f["seconds"] < 1
                                                   for f in refusals))
    for r in by.get("kill-leader", []):
        ok_s = r["forwarded"].get("first_ok_after_kill_s")
        out["forwarded_write_after_kill_s"] = goal(ok_s, "< 1.5", _lt(ok_s, 1.5))
    base = [r.get("saturated_writes_per_s") for r in by.get("baseline", [])]
    for r in by.get("loss5", []):
        rate = r.get("saturated_writes_per_s")
        out["loss5_leader_changes"] = goal(r["leader_changes"], "0", r["leader_changes"] == 0)
        out["loss5_rate_vs_lossless"] = goal(_ratio(rate, base), ">= 0.5",
                                             _ratio(rate, base) is not None and
                                             _ratio(rate, base) >= 0.5)
    for r in by.get("loss20", []):
        out["loss20_leader_changes"] = goal(r["leader_changes"], "<= 2", r["leader_changes"] <= 2)
        rate = r.get("saturated_writes_per_s")
        out["loss20_writes_per_s"] = goal(rate, ">= 55", _lt(55.0, rate, or_equal=True))
    if "timers" in cluster:
        t = cluster["timers"]
        out["timers_missed"] = goal(f"{t['missed']} of {t['created_acked']}", "0",
                                    t["missed"] == 0)
    out["stale_reads"] = goal(cluster["stale_reads"], "0", cluster["stale_reads"] == 0)
    out["lost_acked_writes"] = goal(cluster["lost_acked_writes"], "0",
                                    cluster["lost_acked_writes"] == 0)
    out["linearizable"] = goal(cluster["linearizable"], "true", cluster["linearizable"] is True)
    return out


def goal(value, target, met):
    return {"value": value, "target": target, "met": bool(met)}


def _lt(a, b, or_equal=False):
    if a is None or b is None:
        return False
    return a <= b if or_equal else a < b


def _ratio(rate, base):
    base = [b for b in base if b]
    if rate is None or not base:
        return None
    return round(rate / (sum(base) / len(base)), 3)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def human_summary(result):
    lines = []
    for c in result["clusters"]:
        lines.append(f"== {c['nodes']} nodes {' '.join(c.get('agent_args', []))}".rstrip())
        for r in c.get("records", []):
            lines.append(f"  {r['nemesis']}: " + (f"ERROR {r['error']}" if "error" in r
                                                  else sc.brief(r)))
        for name, why in c.get("skipped", {}).items():
            lines.append(f"  {name}: skipped ({why})")
        if "timers" in c:
            t = c["timers"]
            lines.append(f"  timers: {t['created_acked']} acknowledged, missed {t['missed']}, "
                         f"duplicates {t['duplicates']} ({t['duplicates_same_attempt']} same "
                         f"attempt), early {t['early']}, lateness ms {t['lateness_ms']}; "
                         f"against the request's send time + delay: early "
                         f"{t['early_vs_request']}, lateness ms {t['lateness_vs_request_ms']}")
        if "stale_reads" in c:
            lines.append(f"  stale reads {c['stale_reads']} of {c['reads_answered']}; acked "
                         f"ledger writes lost {c['lost_acked_writes']} of "
                         f"{c['acked_ledger_writes']}; {c['linearizability'].splitlines()[0]}")
        if c.get("agents_died"):
            lines.append(f"  agents that exited on their own: {', '.join(c['agents_died'])}")
        for f in c.get("failures", []):
            lines.append(f"  failure: {f[:300]}")
    for c in result["clusters"]:
        lines.append(f"== goals, {c['nodes']} nodes")
        for name, g in c.get("goals", {}).items():
            lines.append(f"  {'met    ' if g['met'] else 'NOT MET'} {name}: {g['value']} "
                         f"(goal {g['target']})")
    return "\n".join(lines)


def main():
    args = parse_args()
    if args.list:
        for name, (size, what, _) in SCENARIOS.items():
            print(f"{name:18} {what}{'' if size <= 3 else f' ({size}+ nodes)'}")
        return 0
    why = labmod.unavailable()
    if why:
        print(json.dumps({"error": why}))
        return 1
    bindir = tempfile.mkdtemp(prefix=f"{labmod.PREFIX}{os.getpid()}-bin-")
    binary = os.path.join(bindir, "synod")
    shutil.copy2(args.synod, binary)
    result = {"binary": benchlib.binary_identity(binary), "machine": benchlib.machine_info(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "clusters": []}
    try:
        for size in args.sizes:
            benchlib.log(f"== {size} nodes: {', '.join(chosen(args, size))}")
            try:
                result["clusters"].append(run_cluster(args, binary, size))
            except (wl.ChaosFailure, labmod.LabError) as e:
                result["clusters"].append({"nodes": size, "error": str(e)})
    finally:
        labmod.cleanup_all()
        shutil.rmtree(bindir, ignore_errors=True)
    print(json.dumps(result, indent=1, default=str))
    print(human_summary(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
