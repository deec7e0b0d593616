#!/usr/bin/env python3
"""The ranks CLI (synod ranks, send, commands tail) and members' --on-command program.

Asserts:
  * an agent given an --on-command path that is not an executable file exits 2 at once, naming
    the path;
  * 3 agents with --bootstrap-expect 3 and --on-command SCRIPT (a shell script that appends
    "$SYNOD_COMMAND_ID|$SYNOD_SENDER_RANK|$1" to a file of its own agent): `synod ranks --node`
    prints the 3 ranks with their addresses; `synod send TEXT --from <rank 0's agent>` exits 0
    and says "delivered to 2 of 2"; TEXT holds shell syntax ($(...), ;, quotes, a newline), and
    each lower-ranked member's program got exactly one call, with the exact text as its one
    argument (so no shell ever saw it), the command id and sender rank 0; rank 0's program got
    nothing;
  * `synod commands tail -c <agent>` on rank 2 shows the command; with --json every line is a
    JSON object carrying the command's id and text; on rank 0 it shows nothing;
  * bad usage exits 2: `synod send` without a command, `synod commands tail` without -c.
"""

import json
import os
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TEXT = 'START_TRANSMIT $(touch /tmp/synod-pwned); echo "quoted" \'single\'\nline two'


def read_calls(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        data = f.read()
    # One record per call: id|rank|text, where text may hold a newline; records end with \x1e.
    return [r for r in data.split("\x1e\n") if r]


def main():
    args = h.parse_args(__doc__)
    work = h.make_tempdir("synod-it-oncmd-")
    script = os.path.join(work, "on-command.sh")
    with open(script, "w") as f:
        f.write('#!/bin/sh\nprintf \'%s|%s|%s\\036\\n\' "$SYNOD_COMMAND_ID" "$SYNOD_SENDER_RANK" '
                '"$1" >> "$ONCMD_OUT"\n')
    os.chmod(script, os.stat(script).st_mode | stat.S_IXUSR)

    addrs = h.pick_addresses(4)
    bport = h.free_udp_port()

    # A program that cannot be run is refused before the agent starts.
    bad = h.run_cli([args.synod, "agent", "--bind", addrs[3], "--data-dir",
                     os.path.join(work, "bad"), "--broadcast-port", str(bport),
                     "--on-command", os.path.join(work, "missing.sh")])
    h.check(bad.returncode == 2 and "missing.sh" in bad.stderr,
            f"--on-command missing.sh: exit {bad.returncode}, stderr {bad.stderr!r}")

    agents = []
    for i, addr in enumerate(addrs[:3]):
        out = os.path.join(work, f"calls-{i}")
        env = dict(os.environ, ONCMD_OUT=out)
        a = h.Agent(args.synod, f"c{i + 1}", addr, bport,
                    extra_args=("--bootstrap-expect", "3", "--on-command", script), env=env)
        a.calls = out
        agents.append(a.start())
    for a in agents:
        a.wait_healthy()
    h.wait_converged(agents, 15.0, members=3, voters=3, standbys=0, what="one cluster of 3")
    ranks = h.wait_ranks(agents, lambda e: len(e) == 3, 10.0, "3 ranks")
    by_id = {a.id: a for a in agents}
    ranked = [by_id[e["id"]] for e in ranks]
    node = lambda a: f"{a.addr}:{a.api_port}"  # noqa: E731

    shown = h.run_cli([args.synod, "ranks", "--node", node(agents[0])])
    h.check(shown.returncode == 0, f"synod ranks: {shown}")
    for a in ranked:
        h.check(node(a) in shown.stdout, f"synod ranks does not show {node(a)}:\n{shown.stdout}")

    sent = h.run_cli([args.synod, "send", TEXT, "--from", node(ranked[0])], timeout=45.0)
    h.check(sent.returncode == 0 and "delivered to 2 of 2" in sent.stdout,
            f"synod send: exit {sent.returncode}\n{sent.stdout}\n{sent.stderr}")
    h.log(f"synod send: {sent.stdout.splitlines()[0]}")

    record_id = None
    for a in ranked[1:]:
        calls = h.wait_for(lambda: read_calls(a.calls), 10.0, what=f"{a.name}'s program to run")
        time.sleep(0.5)  # a second call, if there were one, would show by now
        calls = read_calls(a.calls)
        h.check(len(calls) == 1, f"{a.name}: program called {len(calls)} times: {calls!r}")
        cid, rank, text = calls[0].split("|", 2)
        h.check(text == TEXT, f"{a.name}: program got {text!r}, want {TEXT!r}")
        h.check(rank == "0", f"{a.name}: SYNOD_SENDER_RANK {rank!r}")
        h.check(record_id in (None, cid), f"{a.name}: command id {cid} vs {record_id}")
        record_id = cid
    h.check(not read_calls(ranked[0].calls), "the sender's own program ran")
    h.check(not os.path.exists("/tmp/synod-pwned"), "the command text went through a shell")

    tail = h.run_cli([args.synod, "commands", "tail", "-c", node(ranked[2])])
    h.check(tail.returncode == 0 and f"#{record_id} from rank 0" in tail.stdout,
            f"commands tail on rank 2: {tail}")
    tail_json = h.run_cli([args.synod, "commands", "tail", "-c", node(ranked[2]), "--json"])
    lines = [json.loads(line) for line in tail_json.stdout.splitlines() if line]
    h.check(len(lines) == 1 and str(lines[0]["id"]) == record_id and lines[0]["command"] == TEXT,
            f"commands tail --json: {tail_json.stdout!r}")
    empty = h.run_cli([args.synod, "commands", "tail", "-c", node(ranked[0])])
    h.check(empty.returncode == 0 and empty.stdout == "", f"commands tail on rank 0: {empty}")

    for usage in (["send"], ["commands", "tail"]):
        r = h.run_cli([args.synod, *usage])
        h.check(r.returncode == 2, f"synod {' '.join(usage)}: exit {r.returncode}, {r.stderr!r}")
    h.log("ranks CLI and --on-command behave")


if __name__ == "__main__":
    h.run_main(main)
