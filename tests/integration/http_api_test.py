#!/usr/bin/env python3
"""HTTP API robustness and hostile SDSS input against one agent.

Asserts:
  HTTP
  * GET /healthz -> 200 JSON {"status": "ok", id, name, uptime_s};
  * GET /v1/node -> 200 with the documented fields;
  * unknown path -> 404 JSON {"error": ...};
  * POST /v1/neighbors -> 405 JSON error with an Allow header naming GET;
  * a request with a 20 KiB header -> 431 JSON error;
  * Content-Length over 1 MiB -> 413 JSON error (answered from the headers);
  * garbage bytes 'HELLO\\r\\n\\r\\n' -> 400;
  * two requests on one keep-alive connection (same socket) -> both 200;
  * afterwards /healthz still answers.
  SDSS, from a socket bound to the test's own 127 address to 127.255.255.255
  (loopback only) on the test's random broadcast port:
  * malformed beacons (wrong token counts, 'abc ON notaport', 'abc ON 70000',
    600-byte payload, invalid UTF-8) raise discovery.beacons_malformed by at
    least their number, none shows up as a neighbour, the agent keeps running;
  * fake neighbours whose timestamp servers send b'xx', a NaN or infinite
    double, nothing, or a 1 MiB stream raise probes_bad_payload (one each) and
    get no delay; one whose port refuses raises probes_refused; probes are not
    started on every beacon; no crash;
  * fake neighbours serving a BE double, LE double, BE float and ASCII decimal
    timestamp all get a finite sdss_delay_ms (synod false);
  * a measured fake neighbour is re-measured once per 10 beacons (2-4
    connections for 25 beacons) and removed once its server is gone;
  * 24 KiB of small header fields -> 431 (the limit covers the whole header
    section, line overhead included).
"""

import http.client
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def check_json_error(status, headers, body, want, label):
    h.check(status == want, f"{label}: status {status}, want {want}; body {body[:200]!r}")
    import json
    try:
        doc = json.loads(body.decode("utf-8"))
    except ValueError:
        h.fail(f"{label}: body is not JSON: {body[:200]!r}")
    h.check(isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"],
            f"{label}: body is not {{\"error\": ...}}: {doc!r}")
    ctype = headers.get("content-type", "")
    h.check("json" in ctype, f"{label}: content-type {ctype!r}")
    h.log(f"ok  {label}: {status} {doc}")


def http_checks(agent):
    host, port = agent.addr, agent.api_port

    r = h.http_get(host, port, "/healthz")
    h.check(r.status == 200, f"/healthz status {r.status}")
    doc = r.json()
    h.check(doc.get("status") == "ok" and doc.get("id") == agent.id and doc.get("name") == agent.name
            and h.is_finite_number(doc.get("uptime_s")) and doc["uptime_s"] >= 0,
            f"/healthz body {doc!r}")
    h.check("json" in r.headers.get("content-type", ""), f"/healthz content-type {r.headers}")
    h.log(f"ok  /healthz {doc}")

    node = agent.get("/v1/node")
    for k in ("id", "short_id", "name", "ip", "api_port", "peer_port", "sdss_tcp_port",
              "broadcast", "beacon_interval_ms", "discovery"):
        h.check(k in node, f"/v1/node lacks {k}: {node!r}")
    h.check(node["ip"] == agent.addr and node["api_port"] == port
            and node["peer_port"] == agent.peer_port, f"/v1/node {node!r}")
    h.check(len(node["short_id"]) == 8 and node["id"].startswith(node["short_id"]),
            f"short_id {node['short_id']!r} / id {node['id']!r}")
    h.check(node["broadcast"] == f"127.255.255.255:{agent.broadcast_port}",
            f"broadcast {node['broadcast']!r}")
    h.check(node["beacon_interval_ms"] == 200, f"beacon_interval_ms {node['beacon_interval_ms']}")
    for k in ("beacons_accepted", "beacons_malformed", "beacons_foreign_subnet", "beacons_own",
              "probes_started", "probes_ok", "probes_refused", "probes_reset",
              "probes_timed_out", "probes_bad_payload", "probes_other_error",
              "neighbors_removed"):
        h.check(isinstance(node["discovery"].get(k), int), f"discovery.{k}: {node['discovery']!r}")

    r = h.http_get(host, port, "/no/such/path")
    check_json_error(r.status, r.headers, r.body, 404, "GET unknown path")

    r = h.http_request(host, port, "POST", "/v1/neighbors", body=b"{}",
                       headers={"Content-Type": "application/json"})
    check_json_error(r.status, r.headers, r.body, 405, "POST /v1/neighbors")
    allow = r.headers.get("allow", "")
    h.check("GET" in allow.upper(), f"405 without Allow naming GET: {r.headers}")

    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (20 * 1024) + b"\r\n\r\n"
    status, hdrs, body = h.parse_raw_response(h.raw_request(host, port, big))
    check_json_error(status, hdrs, body, 431, "20 KiB header")

    req = (b"POST /v1/neighbors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + str((1 << 20) + 1024).encode() + b"\r\n\r\n")
    status, hdrs, body = h.parse_raw_response(h.raw_request(host, port, req))
    check_json_error(status, hdrs, body, 413, "Content-Length > 1 MiB")

    status, hdrs, body = h.parse_raw_response(h.raw_request(host, port, b"HELLO\r\n\r\n"))
    check_json_error(status, hdrs, body, 400, "garbage request")

    # keep-alive: the same socket serves both requests
    conn = http.client.HTTPConnection(host, port, timeout=3)
    try:
        conn.request("GET", "/healthz")
        r1 = conn.getresponse()
        r1.read()
        sock1 = conn.sock
        h.check(r1.status == 200 and not r1.will_close, f"keep-alive #1: {r1.status}, "
                f"will_close={r1.will_close}, headers {r1.getheaders()}")
        conn.request("GET", "/v1/neighbors")
        r2 = conn.getresponse()
        r2.read()
        h.check(r2.status == 200, f"keep-alive #2: {r2.status}")
        h.check(sock1 is not None and conn.sock is sock1, "keep-alive: connection was reopened")
        h.log("ok  two requests on one keep-alive connection")
    finally:
        conn.close()

    r = h.http_get(host, port, "/healthz")
    h.check(r.status == 200 and agent.alive(), "agent does not answer /healthz after bad requests")


class PayloadServer:
    """TCP server on addr:0 that writes payload() to every client and closes."""

    def __init__(self, addr, payload):
        self.payload = payload if callable(payload) else (lambda: payload)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((addr, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            try:
                c.sendall(self.payload())
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


def beacon_socket(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind((addr, 0))
    return s


def hostile_beacons(agent, my_addr):
    bcast = ("127.255.255.255", agent.broadcast_port)
    before = agent.discovery()
    bad = [
        b"abc",                         # one token
        b"abcd1234 ON",                 # two tokens
        b"abcd1234 ON 1234 extra",      # four tokens
        b"abc ON notaport",
        b"abc ON 70000",
        b"abcd1234 ON " + b"9" * 588,   # 600 bytes
        b"A" * 600,
        b"\xff\xfe ON 1234",            # invalid UTF-8
    ]
    s = beacon_socket(my_addr)
    try:
        for d in bad:
            s.sendto(d, bcast)
            time.sleep(0.01)
    finally:
        s.close()

    def risen():
        d = agent.discovery()
        return d if d["beacons_malformed"] - before["beacons_malformed"] >= len(bad) else False
    after = h.wait_for(risen, 3.0, what=f"beacons_malformed += {len(bad)}")
    h.log(f"ok  beacons_malformed {before['beacons_malformed']} -> {after['beacons_malformed']}")
    h.check(after["beacons_accepted"] == before["beacons_accepted"],
            f"malformed beacons were accepted: {before} -> {after}")
    h.check(agent.alive(), "agent died after malformed beacons")
    ips = [r["ip"] for r in agent.neighbors()]
    h.check(my_addr not in ips, f"malformed beacon created a neighbour: {ips}")


def fake_neighbours(agent, my_addr):
    """Fake SDSS neighbours with hostile timestamp servers, and one whose port
    refuses: each probe fails with the right counter, no entry gets a delay."""
    before = agent.discovery()
    bad = {
        "bad0xx01": b"xx",                                  # 2 bytes of garbage
        "badnan01": struct.pack("!d", float("nan")),        # not a finite time
        "badinf01": struct.pack("!d", float("inf")),
        "badnul01": b"",                                    # closes at once
        "badbig01": b"1" * (1 << 20),                       # 1 MiB stream
    }
    servers = {k: PayloadServer(my_addr, v) for k, v in bad.items()}
    refused_port = h.free_tcp_port(my_addr)                 # nobody listens there
    s = beacon_socket(my_addr)
    bcast = ("127.255.255.255", agent.broadcast_port)
    try:
        def failures_seen():
            # keep beaconing like a real node while we wait
            for k, srv in servers.items():
                s.sendto(f"{k} ON {srv.port}".encode(), bcast)
            s.sendto(f"ref00001 ON {refused_port}".encode(), bcast)
            d = agent.discovery()
            ok = (d["probes_bad_payload"] - before["probes_bad_payload"] >= len(bad)
                  and d["probes_refused"] > before["probes_refused"])
            return d if ok else False
        after = h.wait_for(failures_seen, 5.0, interval=0.2,
                           what=f"probes_bad_payload += {len(bad)} and probes_refused += 1")
        h.log(f"ok  probes_bad_payload {before['probes_bad_payload']} -> "
              f"{after['probes_bad_payload']}, probes_refused {before['probes_refused']} -> "
              f"{after['probes_refused']}")
        h.check(agent.alive(), "agent died after hostile timestamps")
        for r in agent.neighbors():
            if r["id"] in bad or r["id"] == "ref00001":
                h.check(r.get("sdss_delay_ms") is None,
                        f"fake neighbour {r['id']} got a delay: {r!r}")
                h.check(r.get("synod") is False, f"fake neighbour marked synod: {r!r}")
                h.check(r.get("last_error"), f"fake neighbour {r['id']} has no last_error")
                h.log(f"    entry {r['id']}: last_error={r.get('last_error')!r}")
        # Probes must not be started for every beacon (seed: "don't initiate a
        # connection each time you receive a broadcast message").
        started = after["probes_started"] - before["probes_started"]
        beacons = after["beacons_accepted"] - before["beacons_accepted"]
        h.log(f"    {started} probes started for {beacons} accepted beacons")
        h.check(started <= len(bad) + 1 + beacons // 10 + 1,
                f"{started} probes for {beacons} beacons: probing on every beacon?")
    finally:
        s.close()
        for srv in servers.values():
            srv.close()
    r = h.http_get(agent.addr, agent.api_port, "/healthz")
    h.check(r.status == 200, "agent does not answer after fake neighbours")


def encodings(agent, my_addr):
    """Fake SDSS neighbours serving each accepted timestamp encoding."""
    bcast = ("127.255.255.255", agent.broadcast_port)
    kinds = {
        "encbed01": (lambda: struct.pack("!d", time.time()), 1000.0),
        "encled01": (lambda: struct.pack("<d", time.time()), 1000.0),
        # a float32 of the epoch has a 128 s step: only finiteness is meaningful
        "encbef01": (lambda: struct.pack("!f", time.time()), 300000.0),
        "encasc01": (lambda: ("%.6f" % time.time()).encode(), 1000.0),
    }
    servers = {k: PayloadServer(my_addr, fn) for k, (fn, _) in kinds.items()}
    s = beacon_socket(my_addr)
    try:
        def measured():
            for k, srv in servers.items():
                s.sendto(f"{k} ON {srv.port}".encode(), bcast)
            rows = {r["id"]: r for r in agent.neighbors()}
            if all(k in rows and h.is_finite_number(rows[k].get("sdss_delay_ms")) for k in kinds):
                return rows
            return False
        rows = h.wait_for(measured, 5.0, interval=0.2, what="all timestamp encodings measured")
        for k, (_, bound) in kinds.items():
            r = rows[k]
            h.check(abs(r["sdss_delay_ms"]) < bound, f"{k}: sdss_delay_ms {r['sdss_delay_ms']}")
            h.check(r["ip"] == my_addr and r["tcp_port"] == servers[k].port and r["synod"] is False,
                    f"{k}: entry {r!r}")
            h.log(f"ok  {k}: sdss_delay_ms {r['sdss_delay_ms']:.3f}")
    finally:
        s.close()
        for srv in servers.values():
            srv.close()


def reachable_then_unreachable(agent, my_addr):
    """A measured neighbour whose timestamp server goes away while it keeps
    beaconing is re-measured every 10 beacons and removed at the first failed
    refresh (seed step 6)."""
    bcast = ("127.255.255.255", agent.broadcast_port)
    srv = PayloadServer(my_addr, lambda: struct.pack("!d", time.time()))
    s = beacon_socket(my_addr)
    nid = "gone0001"
    msg = f"{nid} ON {srv.port}".encode()
    try:
        def measured():
            s.sendto(msg, bcast)
            return any(r["id"] == nid and h.is_finite_number(r.get("sdss_delay_ms"))
                       for r in agent.neighbors())
        h.wait_for(measured, 3.0, interval=0.05, what=f"{nid} measured")
        first = srv.accepted
        # 25 more beacons: at least two refreshes, but far fewer probes than beacons.
        for _ in range(25):
            s.sendto(msg, bcast)
            time.sleep(0.02)
        h.wait_for(lambda: srv.accepted - first >= 2, 3.0, interval=0.05,
                   what=f"{nid}: two re-measurements in 25 beacons")
        time.sleep(0.3)
        refreshes = srv.accepted - first
        h.check(2 <= refreshes <= 4,
                f"{nid}: {refreshes} timestamp connections for 25 beacons (want one per 10)")
        h.log(f"ok  {nid}: {refreshes} re-measurements for 25 beacons")
        before = agent.discovery()["neighbors_removed"]
        srv.close()

        def removed():
            s.sendto(msg, bcast)
            return agent.discovery()["neighbors_removed"] > before
        h.wait_for(removed, 5.0, interval=0.05, what=f"{nid} removed after its server closed")
        h.log(f"ok  {nid} removed at the first failed refresh")
    finally:
        s.close()
        srv.close()
    h.check(agent.alive(), "agent died")


def header_block_total(agent):
    """The 16 KiB limit applies to the whole header section, not one field."""
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 3000 + b"\r\n"  # 24 KiB
    status, _, _ = h.parse_raw_response(h.raw_request(agent.addr, agent.api_port, req))
    h.check(status == 431, f"a {len(req)}-byte header section of 3000 small fields got {status}, "
                           f"want 431")
    h.log("ok  24 KiB of small header fields -> 431")


def main():
    args = h.parse_args(__doc__)
    addr, my_addr = h.pick_addresses(2)
    bport = h.free_udp_port()
    h.log(f"agent on {addr}, test sender on {my_addr}, broadcast port {bport}")
    agent = h.Agent(args.synod, "solo", addr, bport, beacon_interval="200ms").start().wait_healthy()
    http_checks(agent)
    hostile_beacons(agent, my_addr)
    fake_neighbours(agent, my_addr)
    encodings(agent, my_addr)
    reachable_then_unreachable(agent, my_addr)
    header_block_total(agent)
    http_checks(agent)
    h.check(agent.alive(), "agent died")


if __name__ == "__main__":
    h.run_main(main)
