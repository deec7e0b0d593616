#!/usr/bin/env python3
"""Idle connections and slow clients do not stop the API for others.

One agent. A crowd of 10,000 idle TCP connections (fewer only if this process may not open
that many files), then a slow-loris client that trickles a request's headers, one line every
200 ms: idle (or trickling) connections make room for new ones, and a request must arrive
within 10 s. Meanwhile ordinary clients must still be served: reads and
writes answered 200, each within a few seconds. Afterwards /metrics shows idle connections
closed to make room, the slow client was cut off, and the agent is still healthy.
"""
import resource
import socket
import threading
import time

import harness as h

CROWD = 10_000


def open_crowd(addr, port, count, deadline):
    crowd = []
    while len(crowd) < count and time.monotonic() < deadline:
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((addr, port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            break
        crowd.append(s)
    return crowd


def slow_loris(addr, port, stop, outcome):
    s = socket.create_connection((addr, port), timeout=5)
    s.sendall(b"GET /v1/cluster HTTP/1.1\r\n")
    started = time.monotonic()
    for i in range(150):  # 30 s at most
        if stop.is_set():
            break
        time.sleep(0.2)
        try:
            s.sendall(f"X-Slow-{i}: y\r\n".encode())
            s.setblocking(False)
            if s.recv(1) == b"":
                outcome["cut_after"] = time.monotonic() - started
                break
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            outcome["cut_after"] = time.monotonic() - started
            break
        finally:
            s.setblocking(True)
    s.close()


def main():
    args = h.parse_args(__doc__)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CROWD + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    crowd_size = min(CROWD, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 256)
    if crowd_size < 2000:
        h.skip(f"this process may open only {crowd_size + 256} files (RLIMIT_NOFILE)")

    addr = h.pick_addresses(1)[0]
    agent = h.start_agents(args.synod, [addr], h.free_udp_port(),
                           extra_args=("--bootstrap",))[0]
    h.wait_for(lambda: agent.cluster().get("member") is True, 15, what="a one-node cluster")

    stop = threading.Event()
    outcome = {}
    crowd = open_crowd(addr, 7400, crowd_size, time.monotonic() + 60)
    h.log(f"{len(crowd)} idle connections opened")
    # Cut off either to make room (crowd members still arrive: the kernel retries the SYNs its
    # accept queue dropped) or by its request's 10 s deadline (unit-tested on its own).
    loris = threading.Thread(target=slow_loris, args=(addr, 7400, stop, outcome), daemon=True)
    loris.start()
    h.check(len(crowd) >= crowd_size * 0.9, f"only {len(crowd)} of {crowd_size} connections opened")
    try:
        slowest = 0.0
        for i in range(20):
            started = time.monotonic()
            r = h.http_request(addr, 7400, "PUT", f"/v1/kv/crowd-{i}", body=b"v", timeout=10)
            h.check(r.status in (200, 201, 204), f"write {i} among the crowd answered {r.status}")
            r = h.http_get(addr, 7400, f"/v1/kv/crowd-{i}", timeout=10)
            h.check(r.status == 200 and b"v" in r.body, f"read {i} answered {r.status} {r.body!r}")
            slowest = max(slowest, time.monotonic() - started)
        h.check(slowest < 5, f"a request among the crowd took {slowest:.1f} s")
        h.log(f"20 writes and reads served among the crowd; slowest pair {slowest:.2f} s")
        metrics = h.http_get(addr, 7400, "/metrics").body.decode()
        evicted = [line for line in metrics.splitlines()
                   if line.startswith('synod_http_connections_shed_total{action="evicted"}')]
        h.check(evicted and float(evicted[0].split()[-1]) > 0,
                f"no idle connection was closed to make room: {evicted}")
        loris.join(timeout=30)
        h.check("cut_after" in outcome and outcome["cut_after"] < 20,
                f"the slow-loris client was not cut off: {outcome}")
        h.log(f"the slow-loris client was cut off after {outcome['cut_after']:.1f} s")
    finally:
        stop.set()
        for s in crowd:
            s.close()
    agent.wait_healthy()


if __name__ == "__main__":
    h.run_main(main)
