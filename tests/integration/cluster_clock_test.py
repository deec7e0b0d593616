#!/usr/bin/env python3
"""The cluster clock: offsets against injected truth, and master failover.

Three agents on one machine: A on the lowest address (so the master, by the
lowest-IP policy), B under libfaketime shifted by +0.25 s (then restarted at
-1.5 s), C under libfaketime running 100 ppm fast. The truth of each node's
offset to the master is known: B's is -250 ms (then +1500 ms); C's is the real
time minus C's reading, taken by this test around a /v1/clock call. Each node's
estimate must be within 1 ms of the truth, and the truth inside its reported
error bound. Then A is killed: the next lowest address becomes master within
--master-timeout + 2 s (plus a generous margin) and every node follows it.
Skipped where libfaketime is not installed.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(3)
    bport = h.free_udp_port()
    common = ["--bootstrap-expect", "3", "--master-timeout", "2s"]
    a = h.Agent(args.synod, "a", addrs[0], bport, extra_args=common)
    b = h.Agent(args.synod, "b", addrs[1], bport, extra_args=common,
                env=h.faked_clock_env("+0.25"))
    c = h.Agent(args.synod, "c", addrs[2], bport, extra_args=common,
                env=h.faked_clock_env("+0 x1.0001"))
    for agent in (a, b, c):
        agent.start()
    for agent in (a, b, c):
        agent.wait_healthy()

    def clock(agent):
        return agent.get("/v1/clock")

    h.wait_for(lambda: all(clock(x).get("synced") for x in (a, b, c)), 30,
               what="every node synchronised")
    # The leader applies the lowest-address policy as members come: A, the lowest, ends master
    # and every node follows it.
    h.wait_for(lambda: clock(a)["is_master"] and all(
        (clock(x).get("master") or {}).get("ip") == a.addr for x in (b, c)), 15,
        what="A (the lowest address) master, followed by B and C")
    h.wait_for(lambda: all(clock(x).get("synced") for x in (b, c)), 15,
               what="B and C synchronised to A")

    def check_offset(agent, truth_ms_fn, what):
        # A few samples after the filter settles: each within 1 ms, and inside its bound but for
        # at most one (a loaded test machine can delay one probe's timestamps past the bound).
        outside = []
        for _ in range(5):
            # Where the truth is read off this test's own clock, it is known only to half the
            # call's duration: retry (bounded) until a call is quick.
            for _attempt in range(20):
                before = time.time()
                status = clock(agent)
                after = time.time()
                if after - before < 0.001:
                    break
            truth = truth_ms_fn(status, before, after)
            miss = abs(status["offset_ms"] - truth)
            slack = (after - before) * 1000 / 2  # the truth itself is known only this well
            h.check(miss < 1.0 + slack, f"{what}: offset {status['offset_ms']:.3f} ms, truth "
                                        f"{truth:.3f} ms ± {slack:.3f}, miss {miss:.3f} ms")
            if miss > status["error_ms"] + slack:
                outside.append(f"truth {truth:.3f} ms outside offset {status['offset_ms']:.3f} "
                               f"± {status['error_ms']:.3f} ms")
                h.log(f"{what}: {outside[-1]}")
            h.log(f"{what}: offset {status['offset_ms']:.3f} ms, truth {truth:.3f}, "
                  f"error bound {status['error_ms']:.3f} ms")
            time.sleep(0.5)
        h.check(len(outside) <= 1, f"{what}: {len(outside)} of 5 samples outside their bound: "
                                   + "; ".join(outside))

    time.sleep(3)  # a few samples into the window
    check_offset(b, lambda s, t0, t1: -250.0, "B at +0.25 s")
    check_offset(c, lambda s, t0, t1: ((t0 + t1) / 2 - s["local_time"]) * 1000, "C drifting")

    # B again, now 1.5 s behind: a restart on the same data.
    b.stop()
    b.env = h.faked_clock_env("-1.5")
    b.start().wait_healthy()
    h.wait_for(lambda: clock(b).get("synced"), 20, what="B synchronised again")
    time.sleep(3)
    check_offset(b, lambda s, t0, t1: 1500.0, "B at -1.5 s")

    # The master dies: the next lowest address takes over, and everyone follows.
    old_master = clock(a)["master"]["id"]
    a.kill()
    t0 = time.monotonic()

    def new_master():
        views = [clock(x) for x in (b, c)]
        masters = {v["master"]["id"] if v.get("master") else None for v in views}
        return len(masters) == 1 and None not in masters and old_master not in masters
    h.wait_for(new_master, 2 + 2 + 15, what="a new master followed by every node")
    took = time.monotonic() - t0
    h.check(clock(b)["is_master"], "B (next lowest address) should be the new master")
    h.log(f"new master after {took:.1f} s")


if __name__ == "__main__":
    h.run_main(main)
