"""Shared helpers for Synod integration tests (Python 3 standard library only).

Network rule: every test talks only to loopback (127.0.0.0/8) or to network
namespaces it created itself.  Each test picks its own random block of
127.x.y.z addresses and a random free UDP broadcast port, so several tests can
run at the same time without hearing each other's beacons or clashing on the
default API/peer ports (7400/7402).

Exit codes: 0 pass, 1 fail, 77 skip (ctest SKIP_RETURN_CODE).
"""

import argparse
import atexit
import errno
import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77

_procs = []          # every Popen started through this module
_tempdirs = []       # every temp dir created through this module
_agents = []         # every Agent, for log dumps on failure
_keep_tmp = os.environ.get("SYNOD_TEST_KEEP_TMP") == "1"


# --------------------------------------------------------------------------
# Arguments, skip, fail
# --------------------------------------------------------------------------

def parse_args(description="Synod integration test", extra=None, argv=None):
    """Parse --synod PATH (required, must be an executable file).

    `extra` is an optional callable(parser) adding test-specific flags.
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--synod", required=True, help="path to the synod binary")
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    args.synod = os.path.abspath(args.synod)
    if not (os.path.isfile(args.synod) and os.access(args.synod, os.X_OK)):
        print(f"FAIL: --synod {args.synod} is not an executable file", file=sys.stderr)
        sys.exit(1)
    return args


def skip(msg):
    """Report a skip and exit 77 (after cleanup, which atexit runs)."""
    print(f"SKIP: {msg}", flush=True)
    sys.exit(SKIP)


class TestFailure(AssertionError):
    pass


class Abort(TestFailure):
    """A failure that wait_for must not retry (a process died, ...)."""


def fail(msg):
    raise TestFailure(msg)


def abort(msg):
    raise Abort(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def log(msg):
    t = time.strftime("%H:%M:%S") + ".%03d" % (int(time.time() * 1000) % 1000)
    print(f"[{t}] {msg}", flush=True)


def is_finite_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# --------------------------------------------------------------------------
# Cleanup
# --------------------------------------------------------------------------

def _die_with_parent():
    """preexec_fn: the child gets SIGKILL if the test process dies, so even a
    test killed with SIGKILL leaves no agent behind (Linux prctl)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(cmd, **kw):
    """subprocess.Popen that is registered for cleanup and dies with us."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("preexec_fn", _die_with_parent)
    for attempt in range(10):
        try:
            return register_proc(subprocess.Popen(cmd, **kw))
        except OSError as e:
            # ETXTBSY / EACCES while the binary is being relinked: retry briefly.
            if e.errno not in (errno.ETXTBSY, errno.EACCES) or attempt == 9:
                raise
            time.sleep(0.5)


def register_proc(p):
    _procs.append(p)
    return p


def cleanup():
    """Kill every process we started (TERM, then KILL), remove temp dirs."""
    live = [p for p in _procs if p.poll() is None]
    for p in live:
        try:
            p.terminate()
        except OSError:
            pass
    deadline = time.monotonic() + 2.0
    for p in live:
        try:
            p.wait(timeout=max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                p.kill()
            except OSError:
                pass
            try:
                p.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                pass
    for p in _procs:
        for f in (p.stdout, p.stderr, p.stdin):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
    _procs.clear()
    if not _keep_tmp:
        for d in _tempdirs:
            shutil.rmtree(d, ignore_errors=True)
        _tempdirs.clear()


def _on_signal(signum, _frame):
    cleanup()
    os._exit(128 + signum)


atexit.register(cleanup)
for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    try:
        signal.signal(_s, _on_signal)
    except (ValueError, OSError):
        pass


def make_tempdir(prefix="synod-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tempdirs.append(d)
    return d


def dump_logs(max_lines=60):
    for a in _agents:
        a.dump_log(max_lines)


def run_main(fn, *args, **kwargs):
    """Run fn(*args); exit 0 on success, 1 on failure (with logs), 77 on skip."""
    t0 = time.monotonic()
    code = 0
    try:
        fn(*args, **kwargs)
        log(f"PASS in {time.monotonic() - t0:.1f} s")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except TestFailure as e:
        log(f"FAIL: {e}")
        dump_logs()
        code = 1
    except Exception:  # report any unexpected error as a test failure
        traceback.print_exc()
        log("FAIL: unexpected exception")
        dump_logs()
        code = 1
    finally:
        cleanup()
    sys.exit(code)


# --------------------------------------------------------------------------
# Addresses and ports
# --------------------------------------------------------------------------

def _can_bind(family_type, addr, port, reuse=False):
    s = socket.socket(socket.AF_INET, family_type)
    try:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_udp_port(lo=40000, hi=60000, attempts=200):
    """A random UDP port in [lo, hi] nobody is bound to on 0.0.0.0.

    The bind is done without SO_REUSEPORT, so it fails if any agent (which
    binds with SO_REUSEPORT) already listens there.  The TCP side of the same
    number is checked too, for tests that want a TCP port as well.
    """
    for _ in range(attempts):
        port = random.randint(lo, hi)
        if _can_bind(socket.SOCK_DGRAM, "0.0.0.0", port) and \
           _can_bind(socket.SOCK_STREAM, "127.0.0.1", port, reuse=True):
            return port
    fail("could not find a free UDP port")


def free_tcp_port(addr="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((addr, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def pick_addresses(count, ports=(7400, 7402), attempts=100):
    """`count` distinct loopback addresses 127.A.B.2.. (A, B random) on which
    every port in `ports` is currently free for TCP."""
    for _ in range(attempts):
        a = random.randint(1, 250)
        b = random.randint(1, 250)
        addrs = [f"127.{a}.{b}.{i}" for i in range(2, 2 + count)]
        if all(_can_bind(socket.SOCK_STREAM, ad, p, reuse=True)
               for ad in addrs for p in ports):
            return addrs
    fail("could not find free loopback addresses")


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class HttpResult:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # dict with lower-case names
        self.body = body                # bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"HttpResult({self.status}, {self.body[:200]!r})"


def http_request(host, port, method, path, body=None, headers=None, timeout=3.0):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return HttpResult(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def http_get(host, port, path, timeout=3.0):
    return http_request(host, port, "GET", path, timeout=timeout)


def http_get_json(host, port, path, timeout=3.0):
    r = http_get(host, port, path, timeout=timeout)
    check(r.status == 200, f"GET {host}:{port}{path} -> {r.status} {r.body[:200]!r}")
    return r.json()


def raw_request(host, port, data, timeout=3.0, max_bytes=1 << 20):
    """Send raw bytes, read until the server closes or the first complete
    response arrives (status line + headers + Content-Length body)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        buf = b""
        deadline = time.monotonic() + timeout
        while len(buf) < max_bytes and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            if _response_complete(buf):
                break
        return buf
    finally:
        s.close()


def _response_complete(buf):
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = buf[:end].decode("latin-1").split("\r\n")
    clen = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            try:
                clen = int(value.strip())
            except ValueError:
                return True
    return len(buf) >= end + 4 + clen


def parse_raw_response(buf):
    """(status, headers dict lower-case, body bytes) from raw response bytes."""
    end = buf.find(b"\r\n\r\n")
    check(end >= 0, f"no complete HTTP response: {buf[:200]!r}")
    head = buf[:end].decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    check(len(parts) >= 2 and parts[0].startswith("HTTP/"), f"bad status line {head[0]!r}")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, buf[end + 4:]


# --------------------------------------------------------------------------
# Waiting
# --------------------------------------------------------------------------

def wait_for(cond, timeout, interval=0.1, what="condition"):
    """Call cond() until it returns a truthy value or `timeout` seconds pass.

    Exceptions from cond (connection refused while starting, ...) count as
    "not yet".  Returns the truthy value; raises TestFailure on timeout with
    the last value/exception in the message.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = cond()
            if v:
                return v
            last = v
        except Abort:
            raise
        except TestFailure as e:
            last = e
        except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException) as e:
            last = e
        if time.monotonic() >= deadline:
            fail(f"timed out after {timeout:.1f} s waiting for {what}; last: {last!r}"[:2000])
        time.sleep(interval)


# --------------------------------------------------------------------------
# Agents
# --------------------------------------------------------------------------

class Agent:
    def __init__(self, synod, name, addr, broadcast_port, beacon_interval="200ms",
                 api_port=7400, peer_port=7402, extra_args=(), env=None, log_level="info"):
        self.synod = synod
        self.name = name
        self.addr = addr
        self.api_port = api_port
        self.peer_port = peer_port
        self.broadcast_port = broadcast_port
        self.dir = make_tempdir(f"synod-it-{name}-")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "agent.log")
        self.cmd = [synod, "agent", "--name", name, "--bind", addr,
                    "--data-dir", self.data_dir,
                    "--api-port", str(api_port), "--peer-port", str(peer_port),
                    "--broadcast-port", str(broadcast_port),
                    "--beacon-interval", beacon_interval,
                    "--log-level", log_level, *extra_args]
        self.env = env
        self.proc = None
        self._log = None
        _agents.append(self)

    def start(self):
        self._log = open(self.log_path, "wb")
        self.proc = spawn(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        return self

    def wait_healthy(self, timeout=15.0):
        def ok():
            if self.proc.poll() is not None:
                abort(f"agent {self.name} exited early with {self.proc.returncode}:\n{self.read_log()}")
            r = http_get(self.addr, self.api_port, "/healthz", timeout=1.0)
            return r.status == 200 and r.json().get("status") == "ok"
        wait_for(ok, timeout, what=f"{self.name} /healthz")
        self.node = self.get("/v1/node")
        self.id = self.node["id"]
        self.short_id = self.node["short_id"]
        return self

    def get(self, path, timeout=3.0):
        return http_get_json(self.addr, self.api_port, path, timeout=timeout)

    def neighbors(self):
        return self.get("/v1/neighbors")

    def discovery(self):
        return self.get("/v1/node")["discovery"]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def dump_log(self, max_lines=60):
        lines = self.read_log().splitlines()
        print(f"----- log of {self.name} ({self.addr}), last {max_lines} lines -----")
        for line in lines[-max_lines:]:
            print("  " + line)
        sys.stdout.flush()


def start_agents(synod, addrs, broadcast_port, beacon_interval="200ms", **kw):
    agents = [Agent(synod, f"n{i + 1}", a, broadcast_port, beacon_interval, **kw).start()
              for i, a in enumerate(addrs)]
    for a in agents:
        a.wait_healthy()
    return agents


def run_cli(args, timeout=10.0, env=None):
    """Run a short-lived command; returns CompletedProcess (text)."""
    try:
        return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        fail(f"{' '.join(args)} did not finish within {timeout} s "
             f"(stdout {e.stdout!r}, stderr {e.stderr!r})")
