#!/usr/bin/env python3
"""The local-cluster CLI end to end, as the seed's tsc usage example goes:

  * init, bootstrap -c 4: four agents that form one cluster; `clients list`
    says "Found 4 clients in cluster:" and lists 4 ids;
  * bootstrap again: says the cluster is already up, starts nothing;
  * clients add -n 3 (7 ids), clients remove -c ID (6, the removed agent's
    process is gone), clients kill -c ID (the cluster shows it dead and keeps a
    leader), clients tail shows its log;
  * teardown: every agent pid recorded is gone;
  * bad usage (unknown client id, missing workspace, -n 0, -n abc): one clear
    error line and exit status 2.
Each agent runs on a random 127.A.B.x block and the workspace's own broadcast
port, so this can run beside other tests.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def main():
    args = h.parse_args(__doc__)
    workspace = os.path.join(h.make_tempdir("synod-ws-"), "ws")
    first_ip = h.pick_addresses(8)[0]
    env = dict(os.environ, SYNOD_WORKSPACE=workspace)
    env.pop("SYNOD_NODE", None)

    def cli(*argv, timeout=60.0, want=0):
        p = h.run_cli([args.synod, *argv], timeout=timeout, env=env)
        h.check(p.returncode == want,
                f"synod {' '.join(argv)}: exit {p.returncode}, want {want}; "
                f"stdout {p.stdout[-800:]!r} stderr {p.stderr[-800:]!r}")
        return p

    def pids():
        with open(os.path.join(workspace, "workspace.json")) as f:
            return [n["pid"] for n in json.load(f)["nodes"] if n["pid"]]

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
            return f.read().split(") ")[1][0] != "Z"

    def ids():
        out = cli("clients", "list").stdout.splitlines()
        h.check(out and out[0].startswith("Found "), f"no 'Found N clients' header: {out!r}")
        return out[1:]

    try:
        cli("init", "--first-ip", first_ip)
        cli("init", "--first-ip", first_ip)  # idempotent
        out = cli("bootstrap", "-c", "4").stdout
        h.check("Starting 4 agents.." in out, f"no progress lines: {out!r}")
        members = ids()
        h.check(len(members) == 4, f"want 4 ids, got {members!r}")
        h.check(cli("clients", "list").stdout.startswith("Found 4 clients in cluster:"), "header")
        again = cli("bootstrap", "-c", "4").stdout
        h.check("already up" in again, f"second bootstrap: {again!r}")
        h.check(len(pids()) == 4, "a second bootstrap started agents")
        verbose = cli("clients", "list", "-v").stdout.splitlines()[1:]
        h.check(all(line.startswith("Client ID: ") and ", IP Address 127." in line
                    for line in verbose), f"-v lines: {verbose!r}")

        cli("clients", "add", "-n", "3")
        h.check(len(ids()) == 7, "want 7 ids after add -n 3")

        removed = ids()[0]
        cli("clients", "remove", "-c", removed)
        h.wait_for(lambda: len(ids()) == 6, 15, what="6 clients after remove")
        h.check(removed not in ids(), "the removed client is still listed")

        victim = ids()[-1]
        cli("clients", "kill", "-c", victim)

        def dead_with_leader():
            p = h.run_cli([args.synod, "cluster", "status", "--json"], timeout=10, env=env)
            h.check(p.returncode in (0, 1), f"cluster status: {p.stderr!r}")
            status = json.loads(p.stdout)
            states = {m["id"]: m["state"] for m in status["members"]}
            return status["leader"] is not None and states.get(victim) == "dead"
        h.wait_for(dead_with_leader, 30, what="the killed client dead and a leader present")
        tail = cli("clients", "tail", "-c", victim, "-n", "5").stdout
        h.check("discovery:" in tail or "consensus:" in tail, f"tail shows no log: {tail!r}")

        # Bad usage: one line, exit 2.
        for argv in (["clients", "get", "-c", "nosuchclient"], ["clients", "add", "-n", "0"],
                     ["clients", "add", "-n", "abc"],
                     ["clients", "list", "-p", workspace + "-missing"],
                     ["bootstrap", "-p", workspace + "-missing"]):
            p = cli(*argv, want=2)
            lines = [line for line in p.stderr.splitlines() if line.strip()]
            h.check(len(lines) == 1 and "error" in lines[0], f"{argv}: stderr {p.stderr!r}")

        recorded = pids()
        out = cli("teardown").stdout
        h.check(out.startswith("Stopped "), f"teardown said {out!r}")
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in recorded) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in recorded if alive(pid)]
        h.check(not left, f"agents still running after teardown: {left}")
    finally:
        h.run_cli([args.synod, "teardown", "--purge"], timeout=30, env=env)


if __name__ == "__main__":
    h.run_main(main)
