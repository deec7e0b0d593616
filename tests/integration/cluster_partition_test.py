#!/usr/bin/env python3
"""A follower cut off from the other voters, then healed (issue 17's contract).

Runs in a private network namespace (it re-executes itself under `unshare -n`; skipped where
that is not allowed) so that nftables rules can cut traffic between the nodes' 127.0.0.x
addresses without touching the host. Checks what a user relies on:
- a cut-off node never answers a default (linearizable) read with its stale copy: 503 with the
  reason; with ?stale it answers at once and says how old its copy may be;
- a write to the cut-off node is refused quickly, not after the whole propose timeout;
- after the heal, the node catches up with every write made meanwhile, promptly, whatever the
  length of the cut (Raft connections are dropped and reopened, not left in TCP back-off);
- a write forwarded through a follower when the leader is killed lands on the new leader.
"""

import time

import harness as h
import netns

IN_NAMESPACE = "SYNOD_PARTITION_TEST_IN_NETNS"


def request(agent, method, path, body=None, timeout=10.0):
    started = time.monotonic()
    reply = h.http_request(agent.addr, agent.api_port, method, path, body=body, timeout=timeout)
    return reply, time.monotonic() - started


def main():
    args = h.parse_args(__doc__)
    netns.enter(IN_NAMESPACE, needs=("nft",))
    firewall = netns.Firewall()

    addrs = h.pick_addresses(3)
    bport = h.free_udp_port()
    agents = h.start_cluster_agents(args.synod, addrs, bport,
                                    extra_args=["--bootstrap-expect", "3"])
    h.wait_for(lambda: all(v.get("leader") and v.get("member")
                           for v in h.cluster_views(agents).values()), 30,
               what="a leader known to every member")

    def leader_and_follower():
        leader_ip = agents[0].cluster()["leader"]["ip"]
        leader = next(a for a in agents if a.addr == leader_ip)
        return leader, next(a for a in agents if a is not leader)

    leader, follower = leader_and_follower()
    others = [a for a in agents if a is not follower]
    reply, _ = request(follower, "PUT", "/v1/kv/color", b"red")
    h.check(reply.status == 200, f"write through a follower: {reply.status} {reply.body!r}")
    reply, _ = request(follower, "GET", "/v1/kv/color")
    h.check(reply.status == 200 and reply.json()["value"] == "red",
            f"a follower reads its own acknowledged write: {reply.status} {reply.body!r}")
    h.check(reply.headers.get("x-synod-applied-index", "").isdigit(),
            f"reads say the index they reflect: {reply.headers}")

    before = "red"
    for seconds in (2, 6):
        firewall.cut(follower, others)
        reply, _ = request(leader, "PUT", "/v1/kv/color", f"blue{seconds}".encode())
        h.check(reply.status == 200, f"the majority writes during the cut: {reply.status}")
        time.sleep(1.0)  # the cut-off node notices it has no leader

        reply, took = request(follower, "GET", "/v1/kv/color")
        h.check(reply.status == 503, "a cut-off node refuses a default read rather than answer "
                                     f"its stale copy: {reply.status} {reply.body!r}")
        h.check(took < 3.0, f"the refusal is quick: {took:.2f} s")
        h.check(b"stale" in reply.body, f"the refusal points to ?stale: {reply.body!r}")

        reply, _ = request(follower, "GET", "/v1/kv/color?stale")
        h.check(reply.status == 200 and reply.json()["value"] == before,
                f"?stale serves the local copy ({before}): {reply.status} {reply.body!r}")
        contact = reply.headers.get("x-synod-leader-contact-ms", "")
        # Not zero: the node knows it has no leader (it notices within an election timeout).
        h.check(contact.isdigit() and int(contact) > 0,
                f"?stale says how long since a leader was known: {contact!r}")

        reply, took = request(follower, "PUT", "/v1/kv/other", b"x")
        h.check(reply.status == 503, f"a write to the cut-off node is refused: {reply.status}")
        h.check(took < 2.0, f"the write is refused in {took:.2f} s, not the propose timeout")

        time.sleep(max(0.0, seconds - 1.0))
        firewall.heal()
        healed = time.monotonic()
        want = f"blue{seconds}"

        def caught_up():
            reply, _ = request(follower, "GET", "/v1/kv/color", timeout=3.0)
            return reply.status == 200 and reply.json()["value"] == want

        h.wait_for(caught_up, 30, interval=0.05,
                   what=f"the node cut for {seconds} s reading the majority's write")
        h.log(f"cut of {seconds} s: the node reads the new value {time.monotonic() - healed:.2f} s "
              "after the heal")
        before = want

    # A write forwarded through a follower while the leader dies lands on the next leader.
    leader, follower = leader_and_follower()
    leader.kill()
    reply, took = request(follower, "PUT", "/v1/kv/after-kill", b"1")
    h.check(reply.status == 200, f"a write right after the leader was killed: {reply.status} "
                                 f"{reply.body!r}")
    h.log(f"write through a follower right after a leader kill: {took:.2f} s")
    survivors = [a for a in agents if a is not leader]
    for agent in survivors:
        reply, _ = request(agent, "GET", "/v1/kv/after-kill")
        h.check(reply.status == 200, f"{agent.name} reads it: {reply.status}")

    # Stopping every node at once ends promptly (no leaver waits for a handover forever).
    started = time.monotonic()
    for agent in survivors:
        agent.signal(h.signal.SIGTERM)
    for agent in survivors:
        agent.proc.wait(timeout=15)
    h.check(time.monotonic() - started < 6.0,
            f"stopping all nodes at once took {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    h.run_main(main)
