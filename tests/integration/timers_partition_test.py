#!/usr/bin/env python3
"""Timers across a partition: the timers of a node cut off from the others fire once, from the
majority, and the node does not send them again when it comes back.

Runs in a private network namespace (nftables cuts traffic between the nodes' addresses; the
webhook receiver on 127.0.0.1 stays reachable from every node). Asserts:
  * 3 agents; 60 timers created through the leader, due 3-5 s later; then a follower is cut off
    from the other two at least 1 s before the first is due;
  * every timer is received within the bound, those the cut-off node owns included (its
    backups fire them: it cannot, without a leader);
  * the cut lasts until 2 s after the last due time; after the heal the node catches up, and
    no timer is received twice, nor ever by the cut-off node during the cut;
  * afterwards every node reports every timer "done".
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import netns  # noqa: E402
from timers_test import Receiver, create_native, wait_received, wait_status  # noqa: E402

IN_NAMESPACE = "SYNOD_TIMERS_PARTITION_TEST_IN_NETNS"
COUNT = 60
BOUND_S = 20.0


def main():
    args = h.parse_args(__doc__)
    netns.enter(IN_NAMESPACE, needs=("nft",))
    firewall = netns.Firewall()
    receiver = Receiver()
    addrs = h.pick_addresses(3)
    agents = h.start_cluster_agents(args.synod, addrs, h.free_udp_port(),
                                    extra_args=["--bootstrap-expect", "3"])
    h.wait_converged(agents, 30, members=3)
    leader = h.leader_of(agents)
    h.check(leader is not None, "no agreed leader")
    follower = next(a for a in agents if a is not leader)
    others = [a for a in agents if a is not follower]

    now = time.time()
    first_due, last_due = now + 3.0, now + 5.0
    ids = [create_native(leader, {"url": receiver.url("/cut"),
                                  "at": first_due + 2.0 * i / COUNT})["id"] for i in range(COUNT)]
    # Every node has them before the cut (a node fires only what it has applied).
    h.wait_for(lambda: all(a.get(f"/v1/timers/{ids[-1]}").get("status") == "waiting"
                           for a in agents), 5, what="the timers on every node")
    firewall.cut(follower, others)
    cut_at = time.time()
    # A second before the first is due: the cut-off node notices it has no leader (an election
    # timeout) before it could fire anything.
    h.check(cut_at < first_due - 1.0,
            f"the cut came {cut_at - now:.2f} s after the creates: too late to test anything")
    h.log(f"{COUNT} timers due 3-5 s from now; {follower.name} cut off from the others")

    wait_received(receiver, ids, "during the cut", bound=BOUND_S)
    time.sleep(max(0.0, last_due + 2.0 - time.time()))
    firewall.heal()
    healed_at = time.time()
    h.log(f"every timer received during the cut; healed {healed_at - cut_at:.1f} s after it")

    wait_status(agents, ids, "done", "every timer, on every node, after the heal")
    time.sleep(1.0)  # a repeat from the healed node would come now
    calls = receiver.by_id()
    repeats = {t: [c["node"] for c in calls[t]] for t in ids if len(calls[t]) > 1}
    h.check(not repeats, f"{len(repeats)} timers received more than once (by node): "
                         f"{list(repeats.items())[:5]}")
    during = [t for t in ids for c in calls[t]
              if c["node"] == follower.id and c["at"] < healed_at * 1e9]
    h.check(not during, f"the cut-off node sent {len(during)} timers without a leader")
    by_node = {}
    for t in ids:
        by_node[calls[t][0]["node"]] = by_node.get(calls[t][0]["node"], 0) + 1
    h.log(f"each timer received once (by node: {sorted(by_node.values())}); "
          f"none from {follower.name} while cut off, none again after the heal")


if __name__ == "__main__":
    h.run_main(main)
