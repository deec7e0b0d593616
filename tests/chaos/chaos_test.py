#!/usr/bin/env python3
"""The chaos suite's CI run: 3 agents in network namespaces (tests/chaos/lab.py),
8 clients at about 80 ops/s in total reading and writing 8 register keys and
writing unique ledger keys through every node, and these nemeses in
sequence, each followed by a settle-and-check (scenarios.py):

  a quiet warm-up of 3 s;
  isolate a follower for 5 s, heal;
  isolate the leader for 5 s, heal;
  kill -9 the leader, restart it 3 s later on its data dir;
  5 % packet loss between the nodes for 10 s;
  file sync: a file on each node (one of 1 MiB), a follower cut off for 3 s
  with files on both sides (one path written on both: a conflict), heal,
  kill -9 another node and write into its folder, delete a file elsewhere,
  restart (the agents run with --sync-dir; scenarios.Chaos.file_sync).
All along, a webhook timer is created every 1.25 s through a random node (due
2-5 s later; features.TimerProbe, receiver in the clients' host).

Asserts: the cluster converges within 30 s after each nemesis, no
acknowledged write is lost (every acknowledged ledger write on every node with
its value; every register key, read with ?stale on every node, equal to a
plain GET of it through the leader), no term has two leaders, no agent exits
on its own, the whole history of the register keys (plain GETs, PUTs,
DELETEs) is linearizable (tests/chaos/linearizability.py; "unknown" fails
too), every acknowledged timer fired (within 20 s of its due time; a timer
whose creation got no 200 counts only if it fired), and the sync folders
become identical (within 60 s of the heal and of the restart) with every
written version present and the deleted file gone.

Logged, not asserted (the goals belong to bench/chaos_bench.py): rejoin time
after each heal or restart, how long a node without a leader takes to refuse
a write, the forwarded write after the leader's kill, leader changes, stale
reads (reads that returned a value older than a write acknowledged before
they started), timer duplicates (allowed by the delivery contract), early
deliveries and lateness per nemesis, sync convergence times. A build whose plain GET served the local copy fails here: the
stale reads during the isolations make the history not linearizable.

The binary is copied to a private temp dir first (a rebuild meanwhile does not
change it). About 50 s. Exit 0 pass, 1 fail, 77 skip (not root, no `ip` or
`nft`, or namespaces cannot be made).
Usage: chaos_test.py --synod PATH [--keep] [--seed N]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import features  # noqa: E402
import lab as labmod  # noqa: E402
import linearizability as lz  # noqa: E402
import scenarios  # noqa: E402
import workload as wl  # noqa: E402

SKIP = 77
CONVERGE_BOUND_S = 30.0
MAX_RUN_S = 240.0
TIMER_RATE = 0.8                # timers created per second, all along the nemeses
TIMER_FIRE_BOUND_S = 20.0       # after the last one is due
SYNC_BOUND_S = 60.0             # folders identical after a heal or restart


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synod", required=True, help="the synod binary")
    p.add_argument("--keep", action="store_true", help="keep the agents' logs and data dirs")
    p.add_argument("--seed", type=int, default=None, help="seed of the clients' choices")
    return p.parse_args()


def run_nemeses(chaos):
    chaos.run("warm-up", chaos.quiet, 3)
    chaos.run("isolate a follower 5 s", chaos.isolate, "follower", 5)
    chaos.run("isolate the leader 5 s", chaos.isolate, "leader", 5)
    chaos.run("kill -9 the leader, restart after 3 s", chaos.kill_leader, 3)
    chaos.run("5% loss 10 s", chaos.loss, 5, 10)
    chaos.run("file sync: cut 3 s, kill -9", chaos.file_sync, 3, SYNC_BOUND_S)


def check_run(lab, history, monitor, chaos):
    """Every failure of the run, after reporting what was measured."""
    acked, lost = chaos.final_check()
    log(f"acknowledged ledger writes: {acked}, missing or wrong on some node: {lost}")
    timer_report, timer_failures = chaos.timers.finish(TIMER_FIRE_BOUND_S, chaos.leader())
    log("timers " + json.dumps(timer_report, sort_keys=True))
    stale = chaos.finish()
    for record in chaos.records:
        log("record " + json.dumps(record, sort_keys=True))
    reads = [op for op in history.register_ops() if op.kind == lz.READ
             and op.process != "verifier" and op.outcome == lz.OK]
    log(f"stale reads: {len(stale)} of {len(reads)} answered reads (plain GET, no ?stale)")
    for s in stale[:5]:
        log("  " + s.describe())
    result = lz.check_history(history.register_ops())
    log(f"history: {len(history.snapshot())} ops; linearizability: {result.summary()}")
    failures = list(chaos.failures) + timer_failures
    if result.valid is not lz.LINEARIZABLE:
        failures.append("the history is not linearizable: " + result.summary())
    if monitor.split_brains():
        failures.append(f"two leaders in one term: {monitor.split_brains()}")
    dead = lab.dead_agents()
    if dead:
        failures.append("agents exited on their own: " + ", ".join(
            f"{n.name} ({n.proc.returncode})" for n in dead))
    return failures


def run(args, binary):
    lab = labmod.Lab(binary, 3, keep=args.keep, log=log, sync=True)
    try:
        lab.create()
    except labmod.LabError as e:
        print(f"SKIP: cannot make network namespaces: {e}", flush=True)
        return SKIP
    with lab:
        lab.start_agents()
        log(f"cluster formed in {wl.wait_converged(lab, timeout=CONVERGE_BOUND_S):.1f} s")
        history = wl.History()
        monitor = wl.Monitor(lab, max_seconds=MAX_RUN_S).start()
        clients = wl.Clients(lab, history, threads=8, rate=80.0, keys=8, seed=args.seed,
                             max_seconds=MAX_RUN_S).start()
        chaos = scenarios.Chaos(lab, history, clients, monitor, log,
                                converge_bound=CONVERGE_BOUND_S, seed=args.seed)
        chaos.timers = features.TimerProbe(lab, log, rate=TIMER_RATE, seed=args.seed,
                                           max_seconds=MAX_RUN_S).start()
        try:
            run_nemeses(chaos)
        finally:
            clients.stop()
            monitor.stop()
            chaos.timers.stop_creating()
        failures = check_run(lab, history, monitor, chaos)
        if failures:
            for node in lab.nodes:
                log(f"last lines of {node.name}'s log:\n  " + "\n  ".join(node.log_tail(15)))
            for f in failures:
                log(f"FAIL: {f}")
            return 1
    return 0


def main():
    args = parse_args()
    why = labmod.unavailable()
    if why:
        print(f"SKIP: {why}", flush=True)
        sys.exit(SKIP)
    t0 = time.monotonic()
    bindir = tempfile.mkdtemp(prefix=f"{labmod.PREFIX}{os.getpid()}-bin-")
    try:
        binary = os.path.join(bindir, "synod")     # a rebuild meanwhile does not change it
        shutil.copy2(args.synod, binary)
        code = run(args, binary)
    except (wl.ChaosFailure, labmod.LabError) as e:
        log(f"FAIL: {e}")
        code = 1
    except Exception:  # any other error fails the test, with its traceback
        traceback.print_exc()
        code = 1
    finally:
        labmod.cleanup_all()
        shutil.rmtree(bindir, ignore_errors=True)
    if code == 0:
        log(f"PASS in {time.monotonic() - t0:.0f} s")
    sys.exit(code)


if __name__ == "__main__":
    main()
