#!/usr/bin/env python3
"""Command-line and start-up errors of `synod agent` and `synod neighbors`.

Asserts:
  * bad flags (missing --bind, --api-port 99999, --beacon-interval 5q,
    --bind not-an-ip, an unknown flag) -> exit 2, nothing on stdout, exactly
    one stderr line and it contains 'error';
  * run-time failures (exit 1): exactly one stderr line, containing 'error';
  * --bind 192.0.2.1 (not local) -> exit 1, 'not an address of this machine';
  * API port already taken by a TCP listener on addr:port -> exit 1,
    'already in use';
  * --peer-port in use -> exit 1 'already in use'; --api-port == --peer-port
    -> exit 2; broadcast port held by a non-SO_REUSEPORT socket -> exit 1;
  * data dir under a regular file -> exit 1, error line;
  * `synod neighbors --node 127.0.0.1:1` -> nonzero exit, one clear stderr
    line (mentions the address and 'error'), nothing on stdout.
Every agent invocation gets a random broadcast port and a private address, so
an agent that wrongly starts does not disturb anything, and is killed after 5 s.
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def stderr_lines(p):
    return [ln for ln in p.stderr.splitlines() if ln.strip()]


def expect(args, cmd_tail, rc, must_contain=(), label=None):
    label = label or " ".join(cmd_tail)
    cmd = [args.synod, *cmd_tail]
    p = h.run_cli(cmd, timeout=5.0)
    lines = stderr_lines(p)
    h.check(p.returncode == rc,
            f"[{label}] exit {p.returncode}, want {rc}; stderr {p.stderr!r} stdout {p.stdout[:300]!r}")
    errs = [ln for ln in lines if "error" in ln.lower()]
    h.check(len(errs) == 1, f"[{label}] want exactly one stderr line containing 'error', "
                            f"got {len(errs)}: {p.stderr!r}")
    err = errs[0]
    h.check(lines[-1] == err, f"[{label}] the error line is not the last stderr line: {p.stderr!r}")
    h.check(len(lines) == 1, f"[{label}] want exactly one stderr line, got {len(lines)}: {p.stderr!r}")
    for s in must_contain:
        h.check(s in err, f"[{label}] stderr line lacks {s!r}: {err!r}")
    h.check(p.stdout.strip() == "", f"[{label}] unexpected stdout {p.stdout[:300]!r}")
    h.log(f"ok  rc={p.returncode}  [{label}]  {err}")


def main():
    args = h.parse_args(__doc__)
    addr, addr2 = h.pick_addresses(2)
    bport = h.free_udp_port()
    tmp = h.make_tempdir()
    data = os.path.join(tmp, "data")
    common = ["--data-dir", data, "--broadcast-port", str(bport)]

    # Usage errors: exit 2.
    expect(args, ["agent", *common], 2, ["--bind"], "missing --bind")
    expect(args, ["agent", "--bind", addr, *common, "--api-port", "99999"], 2,
           ["--api-port"], "--api-port 99999")
    expect(args, ["agent", "--bind", addr, *common, "--beacon-interval", "5q"], 2,
           ["--beacon-interval"], "--beacon-interval 5q")
    expect(args, ["agent", "--bind", "not-an-ip", *common], 2, ["not-an-ip"], "--bind not-an-ip")
    expect(args, ["agent", "--bind", addr, *common, "--no-such-flag"], 2, [], "unknown flag")
    expect(args, ["agent", "--bind", addr], 2, ["--data-dir"], "missing --data-dir")

    # Run-time errors: exit 1.
    expect(args, ["agent", "--bind", "192.0.2.1", *common], 1,
           ["not an address of this machine"], "--bind 192.0.2.1")

    port = h.free_tcp_port(addr)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind((addr, port))
        blocker.listen(1)
        expect(args, ["agent", "--bind", addr, *common, "--api-port", str(port)], 1,
               ["already in use"], f"api port {port} in use")
        expect(args, ["agent", "--bind", addr, *common, "--peer-port", str(port)], 1,
               ["already in use"], f"peer port {port} in use")
    finally:
        blocker.close()
    # Same number for both ports is a usage error, caught before binding.
    expect(args, ["agent", "--bind", addr2, *common, "--peer-port", "7555",
                  "--api-port", "7555"], 2, ["must differ"], "api==peer port")
    # A UDP broadcast port held by a socket without SO_REUSEPORT.
    # A port of its own, taken now: the one above may still be held by an agent this test ran,
    # or picked by a test running beside it.
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(20):
            held = h.free_udp_port()
            try:
                udp.bind(("0.0.0.0", held))
                break
            except OSError:
                continue
        else:
            h.fail("no free UDP port to hold")
        expect(args, ["agent", "--bind", addr, "--data-dir", data, "--broadcast-port", str(held)],
               1, [str(held)], f"broadcast port {held} held without SO_REUSEPORT")
    finally:
        udp.close()

    plain = os.path.join(tmp, "regular-file")
    with open(plain, "w") as f:
        f.write("x")
    expect(args, ["agent", "--bind", addr, "--data-dir", os.path.join(plain, "sub"),
                  "--broadcast-port", str(bport)], 1, [], "data dir under a regular file")

    # A synced folder that holds the data dir, or does not exist: refused before anything starts.
    folder = os.path.join(tmp, "folder")
    os.makedirs(os.path.join(folder, "data"))
    expect(args, ["agent", "--bind", addr, "--data-dir", os.path.join(folder, "data"),
                  "--sync-dir", folder, "--broadcast-port", str(bport)], 1,
           ["--sync-dir", "data dir"], "data dir inside the synced folder")
    h.check(os.listdir(os.path.join(folder, "data")) in ([], ["node_id"]),
            f"the refused agent left state in its data dir: {os.listdir(os.path.join(folder, 'data'))}")
    expect(args, ["agent", "--bind", addr, "--data-dir", data, "--sync-dir",
                  os.path.join(tmp, "no-such-folder"), "--broadcast-port", str(bport)], 1,
           ["--sync-dir", "no such directory"], "a synced folder that does not exist")

    # neighbors CLI against nothing.
    p = h.run_cli([args.synod, "neighbors", "--node", "127.0.0.1:1"], timeout=10.0)
    lines = stderr_lines(p)
    h.check(p.returncode != 0, f"neighbors --node 127.0.0.1:1 exited 0: {p.stdout!r}")
    h.check(len(lines) == 1, f"neighbors: want one stderr line, got {p.stderr!r}")
    h.check("error" in lines[0].lower() and "127.0.0.1:1" in lines[0],
            f"neighbors: unclear message {lines[0]!r}")
    h.check(p.stdout.strip() == "", f"neighbors: unexpected stdout {p.stdout!r}")
    h.log(f"ok  rc={p.returncode}  [neighbors --node 127.0.0.1:1]  {lines[0]}")
    expect(args, ["neighbors", "--node", "bogus"], 2, [], "neighbors --node bogus")


if __name__ == "__main__":
    h.run_main(main)
