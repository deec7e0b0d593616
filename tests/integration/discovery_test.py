#!/usr/bin/env python3
"""Four agents on four loopback addresses discover each other over SDSS.

Asserts:
  * with --beacon-interval 200ms all four see the other three within 3 s (from
    the moment all answer /healthz), each
    entry with a finite sdss_delay_ms, synod == true, finite rtt_ms/offset_ms;
  * `synod neighbors --node X` prints a table naming the three other short ids
    (and not X's own), and `--json` parses to the same set of ids;
  * after kill -9 of one agent it disappears from the other three tables
    within 8 s (10 beacon intervals + probe time + margin);
  * SIGTERM (SIGINT for the last) makes each remaining agent exit 0 within 1.5 s.
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N = 4
DISCOVERY_BOUND_S = 3.0
REMOVAL_BOUND_S = 8.0
STOP_BOUND_S = 1.5


def full_mesh(agents):
    """Return {name: neighbours} when every agent has a complete, measured
    entry for each of the others, else False."""
    tables = {}
    for a in agents:
        others = {b.short_id for b in agents if b is not a}
        rows = a.neighbors()
        by_id = {r["id"]: r for r in rows}
        if set(by_id) != others:
            return False
        for r in rows:
            if not (h.is_finite_number(r.get("sdss_delay_ms")) and r.get("synod") is True
                    and h.is_finite_number(r.get("rtt_ms"))
                    and h.is_finite_number(r.get("offset_ms"))):
                return False
        tables[a.name] = rows
    return tables


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(N)
    bport = h.free_udp_port()
    h.log(f"addresses {addrs}, broadcast port {bport}")

    t0 = time.monotonic()
    agents = h.start_agents(args.synod, addrs, bport, beacon_interval="200ms")
    by_short = {a.short_id: a for a in agents}
    h.check(len(by_short) == N, f"short ids not distinct: {list(by_short)}")
    t_up = time.monotonic()
    h.log("agents up: " + ", ".join(f"{a.name}={a.short_id}@{a.addr}" for a in agents))

    tables = h.wait_for(lambda: full_mesh(agents), DISCOVERY_BOUND_S, interval=0.1,
                        what="full mesh with measured delays")
    h.log(f"full mesh {time.monotonic() - t_up:.2f} s after all agents answered /healthz "
          f"({t_up - t0:.2f} s to start them)")

    # Entries agree with the nodes they describe.
    for a in agents:
        for r in tables[a.name]:
            b = by_short[r["id"]]
            h.check(r["ip"] == b.addr, f"{a.name}: {r['id']} ip {r['ip']} != {b.addr}")
            h.check(r["tcp_port"] == b.node["sdss_tcp_port"],
                    f"{a.name}: {r['id']} tcp_port {r['tcp_port']} != {b.node['sdss_tcp_port']}")
            h.check(r.get("node_id") == b.id, f"{a.name}: node_id {r.get('node_id')} != {b.id}")
            h.check(r.get("name") == b.name, f"{a.name}: name {r.get('name')} != {b.name}")
            h.check(r["broadcast_count"] >= 1, f"{a.name}: broadcast_count {r['broadcast_count']}")
            h.check(r["sdss_delay_ms"] > -1000 and r["sdss_delay_ms"] < 1000,
                    f"{a.name}: implausible sdss_delay_ms {r['sdss_delay_ms']}")
            h.check(r["rtt_ms"] >= 0, f"{a.name}: negative rtt_ms {r['rtt_ms']}")

    # CLI, table and JSON.
    for a in agents:
        others = {b.short_id for b in agents if b is not a}
        node = f"{a.addr}:{a.api_port}"
        p = h.run_cli([args.synod, "neighbors", "--node", node])
        h.check(p.returncode == 0, f"neighbors --node {node}: rc {p.returncode}, stderr {p.stderr!r}")
        for sid in others:
            h.check(sid in p.stdout, f"table of {a.name} lacks {sid}:\n{p.stdout}")
        h.check(a.short_id not in p.stdout, f"table of {a.name} lists itself:\n{p.stdout}")
        p = h.run_cli([args.synod, "neighbors", "--node", node, "--json"])
        h.check(p.returncode == 0, f"neighbors --json: rc {p.returncode}, stderr {p.stderr!r}")
        try:
            rows = json.loads(p.stdout)
        except ValueError as e:
            h.fail(f"neighbors --json output does not parse: {e}: {p.stdout[:500]!r}")
        h.check(isinstance(rows, list), f"--json is not an array: {p.stdout[:200]!r}")
        h.check({r["id"] for r in rows} == others,
                f"--json ids {[r['id'] for r in rows]} != {sorted(others)}")
    h.log("CLI table and --json OK")

    # kill -9 one node; it must vanish from the other three tables.
    victim = agents[1]
    rest = [a for a in agents if a is not victim]
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=5)
    t_kill = time.monotonic()
    h.log(f"killed {victim.name} ({victim.short_id}) with SIGKILL")

    def gone():
        for a in rest:
            if not a.alive():
                h.abort(f"{a.name} died (rc {a.proc.returncode})")
            ids = {r["id"] for r in a.neighbors()}
            if victim.short_id in ids:
                return False
        return True
    h.wait_for(gone, REMOVAL_BOUND_S, interval=0.1, what=f"{victim.short_id} removed everywhere")
    h.log(f"{victim.short_id} removed from all tables {time.monotonic() - t_kill:.2f} s after kill")

    for a in rest:
        ids = {r["id"] for r in a.neighbors()}
        want = {b.short_id for b in rest if b is not a}
        h.check(ids == want, f"{a.name} table after removal {sorted(ids)} != {sorted(want)}")
        d = a.discovery()
        h.check(d["neighbors_removed"] >= 1, f"{a.name} neighbors_removed {d['neighbors_removed']}")

    # SIGTERM (SIGINT for the last one): exit 0 within 1.5 s each.
    for a in rest:
        sig = signal.SIGINT if a is rest[-1] else signal.SIGTERM
        t = time.monotonic()
        a.proc.send_signal(sig)
        try:
            rc = a.proc.wait(timeout=STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            h.fail(f"{a.name} did not exit within {STOP_BOUND_S} s of {sig.name}")
        dt = time.monotonic() - t
        h.check(rc == 0, f"{a.name} exited {rc} after {sig.name}")
        h.log(f"{a.name} exited 0 in {dt:.3f} s after {sig.name}")


if __name__ == "__main__":
    h.run_main(main)
