#!/usr/bin/env python3
"""GET /metrics serves each node's figures in the Prometheus text format.

Asserts:
  * 3 agents with --bootstrap-expect 3 form one cluster; on each, GET /metrics answers 200 with
    Content-Type text/plain; version=0.0.4, and every line is a "# HELP", a "# TYPE" (gauge,
    counter or histogram, before its samples; a histogram's samples are its _bucket, _sum and
    _count) or a sample "name{labels} value" with a finite value;
  * the figures agree with the cluster: exactly one node has synod_raft_is_leader 1; every node
    has synod_cluster_members{state="alive"} 3, synod_cluster_quorum 1, synod_cluster_member 1,
    synod_raft_applied_index <= synod_raft_commit_index and > 0, accepted beacons > 0,
    synod_discovery_neighbors 2, synod_ranks_holders 3, synod_timers{status="waiting"} 0,
    a synod_timer_lateness_seconds histogram (no fires yet: count 0), and exactly one
    synod_clock_is_master 1;
  * after the member ranked 0 sends a command, synod_ranks_last_command_id is that command's id
    on every node and synod_ranks_received_through is that id on the two lower-ranked members.
"""

import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*)"')


def scrape(agent):
    """{(name, frozenset(labels)): value} from the agent's /metrics, checking the format."""
    r = h.http_request(agent.addr, agent.api_port, "GET", "/metrics")
    h.check(r.status == 200, f"{agent.name}: GET /metrics -> {r}")
    ctype = r.headers.get("content-type", "")
    h.check(ctype.startswith("text/plain") and "version=0.0.4" in ctype,
            f"{agent.name}: Content-Type {ctype!r}")
    samples, typed = {}, {}
    for line in r.body.decode().splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            h.check(len(parts) == 4 and parts[3] in ("gauge", "counter", "histogram"),
                    f"{agent.name}: bad TYPE line {line!r}")
            typed[parts[2]] = parts[3]
            continue
        m = SAMPLE.match(line)
        h.check(m is not None, f"{agent.name}: not a sample line: {line!r}")
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        h.check(name in typed or typed.get(family) == "histogram",
                f"{agent.name}: sample {name} before its TYPE line")
        h.check(math.isfinite(value), f"{agent.name}: {line!r} is not finite")
        samples[(name, frozenset(LABEL.findall(labels)))] = value
    return samples


def value(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    h.check(key in samples, f"no sample {name}{labels}")
    return samples[key]


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(3)
    bport = h.free_udp_port()
    agents = h.start_cluster_agents(args.synod, addrs, bport, ["--bootstrap-expect", "3"],
                                    names=["m1", "m2", "m3"])
    h.wait_converged(agents, 15.0, members=3, voters=3, standbys=0,
                     what="3 agents to form one cluster")
    ranks = h.wait_ranks(agents, lambda e: len(e) == 3, 10.0, "3 ranks")
    # The clock master is chosen shortly after the cluster forms.
    h.wait_for(lambda: sum(value(scrape(a), "synod_clock_is_master") for a in agents) == 1, 10.0,
               what="one master clock in the metrics")

    scraped = {a.name: scrape(a) for a in agents}
    leaders = sum(value(s, "synod_raft_is_leader") for s in scraped.values())
    h.check(leaders == 1, f"synod_raft_is_leader sums to {leaders}")
    for name, s in scraped.items():
        h.check(value(s, "synod_cluster_members", state="alive") == 3, f"{name}: alive members")
        h.check(value(s, "synod_cluster_quorum") == 1, f"{name}: quorum")
        h.check(value(s, "synod_timers", status="waiting") == 0, f"{name}: waiting timers")
        h.check(value(s, "synod_timer_lateness_seconds_count") == 0, f"{name}: lateness count")
        h.check(value(s, "synod_timer_lateness_seconds_bucket", le="+Inf") == 0,
                f"{name}: lateness +Inf bucket")
        h.check(value(s, "synod_cluster_member") == 1, f"{name}: member")
        commit = value(s, "synod_raft_commit_index")
        applied = value(s, "synod_raft_applied_index")
        h.check(0 < applied <= commit, f"{name}: applied {applied}, commit {commit}")
        h.check(value(s, "synod_discovery_beacons_total", verdict="accepted") > 0,
                f"{name}: no accepted beacons")
        h.check(value(s, "synod_discovery_neighbors") == 2, f"{name}: neighbours")
        h.check(value(s, "synod_ranks_holders") == 3, f"{name}: rank holders")
    h.log("3 nodes: metrics well-formed and consistent with the cluster")

    by_id = {a.id: a for a in agents}
    sender = by_id[ranks[0]["id"]]
    record = h.post_command_ok(sender, "METRICS_CHECK")
    h.check(record["delivered"] == 2, f"command not delivered to both: {record}")
    for a in agents:
        h.wait_for(lambda: value(scrape(a), "synod_ranks_last_command_id") == record["id"], 10.0,
                   what=f"{a.name} to count command {record['id']}")
    for entry in ranks[1:]:
        a = by_id[entry["id"]]
        got = value(scrape(a), "synod_ranks_received_through")
        h.check(got == record["id"], f"{a.name}: received_through {got}, want {record['id']}")
    h.log(f"command {record['id']} shows in the ranks metrics of every node")


if __name__ == "__main__":
    h.run_main(main)
