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
import importlib
import json
import math
import os
import random
import shutil
import signal
import signal as _signal_module  # Agent.signal() shadows the name inside the class
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77

DEBIAN_PYTHON = "/usr/bin/python3"
_DEBIAN_PYTHON_REEXEC = "SYNOD_TEST_DEBIAN_PYTHON_REEXEC"


def import_or_reexec(module):
    """Whether `module` imports. Where this interpreter lacks it, the running script starts again
    under Debian's /usr/bin/python3 (whose python3-* packages provide it), once: call this before
    the test does anything. False only when even that was tried, or cannot be."""
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        if (os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON)
                and os.path.exists(DEBIAN_PYTHON) and not os.environ.get(_DEBIAN_PYTHON_REEXEC)):
            os.environ[_DEBIAN_PYTHON_REEXEC] = "1"
            sys.stdout.flush()
            os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON, os.path.abspath(sys.argv[0]), *sys.argv[1:]])
        return False


def reexec_tried():
    """Whether import_or_reexec() already ran the script again under Debian's python3."""
    return bool(os.environ.get(_DEBIAN_PYTHON_REEXEC))


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
    """subprocess.Popen that is registered for cleanup and dies with us.

    The child's PR_SET_PDEATHSIG fires when the calling *thread* exits, so
    spawn from the main thread or from a thread that outlives the child."""
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


def pick_addresses(count, ports=(7400, 7401, 7402), attempts=100):
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


def http_request(host, port, method, path, body=None, headers=None, timeout=3.0, tls=None):
    """One request; over HTTPS with `tls` (an ssl.SSLContext, see https_context)."""
    conn = (http.client.HTTPSConnection(host, port, timeout=timeout, context=tls) if tls
            else http.client.HTTPConnection(host, port, timeout=timeout))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return HttpResult(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def https_context(ca_file):
    """A client context that trusts `ca_file` only and checks the server's chain, not its
    host name (agents are reached by address)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False
    return context


def openssl(*args, cwd):
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    check(done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}")


def make_test_ca(work, name):
    """A CA in `work` (<name>.pem, <name>.key), valid two days; returns the certificate's path.
    Needs the openssl tool."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
            cwd=work)
    return os.path.join(work, f"{name}.pem")


def make_test_cert(work, ca, name):
    """A certificate for `name` signed by the CA `ca` of make_test_ca; returns the paths of the
    certificate and its key."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=work)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", cwd=work)
    return os.path.join(work, f"{name}.pem"), os.path.join(work, f"{name}.key")


def http_get(host, port, path, timeout=3.0, headers=None, tls=None):
    return http_request(host, port, "GET", path, timeout=timeout, headers=headers, tls=tls)


def http_get_json(host, port, path, timeout=3.0, headers=None, tls=None):
    r = http_get(host, port, path, timeout=timeout, headers=headers, tls=tls)
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
                 api_port=7400, peer_port=7402, extra_args=(), env=None, log_level="info",
                 raft_port=7401, api_token=None, api_tls=None):
        self.synod = synod
        # An ssl.SSLContext for agents that serve HTTPS (--api-tls-cert): every request of
        # get(), kv_*() and wait_healthy() then goes over HTTPS with it.
        self.api_tls = api_tls
        # Sent as a bearer token by get() (and so cluster(), wait_healthy()): for agents whose
        # reads need one (--api-read-requires-token).
        self.api_token = api_token
        self.name = name
        self.addr = addr
        self.api_port = api_port
        self.peer_port = peer_port
        self.raft_port = raft_port
        self.starts = 0
        self.broadcast_port = broadcast_port
        self.dir = make_tempdir(f"synod-it-{name}-")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "agent.log")
        self.cmd = [synod, "agent", "--name", name, "--bind", addr,
                    "--data-dir", self.data_dir,
                    "--api-port", str(api_port), "--peer-port", str(peer_port),
                    "--broadcast-port", str(broadcast_port),
                    "--beacon-interval", beacon_interval,
                    "--log-level", log_level,
                    *(["--raft-port", str(raft_port)] if raft_port != 7401 else []),
                    *extra_args]
        self.env = env
        self.proc = None
        self._log = None
        _agents.append(self)

    def preset_id(self, node_id):
        """Give the agent a chosen node id (32 hex digits) before its first
        start, e.g. to decide which node has the lowest id."""
        check(self.starts == 0, "preset_id after the first start")
        os.makedirs(self.data_dir, exist_ok=True)
        with open(os.path.join(self.data_dir, "node_id"), "w") as f:
            f.write(node_id + "\n")
        return self

    def start(self):
        """Start the agent; a restart (same data dir) appends to the same log.

        Call it from the main thread, or from a thread that outlives the
        agent: spawn() sets PR_SET_PDEATHSIG, which fires when the spawning
        *thread* ends."""
        if self._log is not None:
            self._log.close()
        self._log = open(self.log_path, "ab" if self.starts else "wb")
        self.starts += 1
        if self.starts > 1:
            self._log.write(f"===== restart #{self.starts - 1} at {time.strftime('%H:%M:%S')} "
                            f"=====\n".encode())
            self._log.flush()
        self.proc = spawn(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        return self

    def kill(self, timeout=5.0):
        """SIGKILL and reap (no-op if not running)."""
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                fail(f"agent {self.name} did not die within {timeout} s of SIGKILL")

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Send `sig`, wait up to `timeout` s for exit, return the exit code
        (fails if it does not exit in time; the process is killed then)."""
        self.signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5.0)
            fail(f"agent {self.name} did not exit within {timeout} s of signal {sig}")

    # ---- consensus API ----

    def cluster(self, timeout=2.0):
        """GET /v1/cluster (dict)."""
        return self.get("/v1/cluster", timeout=timeout)

    def kv_put(self, key, value, timeout=10.0):
        """PUT /v1/kv/{key}; returns HttpResult (status 200 / 503 / ...)."""
        if isinstance(value, str):
            value = value.encode()
        return http_request(self.addr, self.api_port, "PUT", "/v1/kv/" + key, body=value,
                            timeout=timeout, tls=self.api_tls)

    def kv_get(self, key, timeout=3.0):
        """GET /v1/kv/{key}; returns HttpResult."""
        return http_get(self.addr, self.api_port, "/v1/kv/" + key, timeout=timeout,
                        tls=self.api_tls)

    def kv_delete(self, key, timeout=10.0):
        return http_request(self.addr, self.api_port, "DELETE", "/v1/kv/" + key, timeout=timeout,
                            tls=self.api_tls)

    def wait_healthy(self, timeout=15.0):
        def ok():
            if self.proc.poll() is not None:
                abort(f"agent {self.name} exited early with {self.proc.returncode}:\n{self.read_log()}")
            r = http_get(self.addr, self.api_port, "/healthz", timeout=1.0, tls=self.api_tls)
            return r.status == 200 and r.json().get("status") == "ok"
        wait_for(ok, timeout, what=f"{self.name} /healthz")
        self.node = self.get("/v1/node")
        self.id = self.node["id"]
        self.short_id = self.node["short_id"]
        return self

    def get(self, path, timeout=3.0):
        headers = {"Authorization": "Bearer " + self.api_token} if self.api_token else None
        return http_get_json(self.addr, self.api_port, path, timeout=timeout, headers=headers,
                             tls=self.api_tls)

    def neighbors(self):
        return self.get("/v1/neighbors")

    def discovery(self):
        return self.get("/v1/node")["discovery"]

    def ranks(self):
        """GET /v1/ranks (dict: "ranks" entries, "last_command_id", ...)."""
        return self.get("/v1/ranks")

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

    def log_since_start(self):
        """The log of the current (or last) run only: restarts append to
        the same file after a '===== restart #k' marker."""
        text = self.read_log()
        mark = text.rfind("===== restart #")
        return text if mark < 0 else text[mark:]

    def stop_cleanly(self, sig=None, timeout=5.0):
        """Stop with `sig` (default SIGTERM); fail unless it exits 0 within
        `timeout` s. Lines of this run's log about event-loop handles left
        open at exit (resources never released) are kept in self.exit_leaks
        for check_exit_leaks(), so a test can report them after its main
        assertions. Returns the seconds it took."""
        sig = _signal_module.SIGTERM if sig is None else sig
        t0 = time.monotonic()
        code = self.stop(sig, timeout=timeout)
        took = time.monotonic() - t0
        check(code == 0, f"{self.name} exited with {code} after signal {sig}")
        leaks = [ln for ln in self.log_since_start().splitlines() if "still open" in ln]
        if leaks:
            self.exit_leaks = getattr(self, "exit_leaks", []) + leaks
            log(f"{self.name}: {len(leaks)} handle(s) left open at exit")
        return took

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


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def faked_clock_env(spec):
    """The environment for an agent whose wall clock libfaketime shifts by `spec`
    ("+5", "-1.5", "+0 x1.0001"); its monotonic clock is left alone. Skips the
    test where libfaketime is not installed."""
    if not os.path.exists(FAKETIME_LIB):
        skip("libfaketime is not installed")
    # Under AddressSanitizer a preloaded library comes before ASan's runtime: allowed here.
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))
    return dict(os.environ, LD_PRELOAD=FAKETIME_LIB, FAKETIME=spec,
                FAKETIME_DONT_FAKE_MONOTONIC="1", ASAN_OPTIONS=asan)


def run_cli(args, timeout=10.0, env=None):
    """Run a short-lived command; returns CompletedProcess (text)."""
    try:
        return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        fail(f"{' '.join(args)} did not finish within {timeout} s "
             f"(stdout {e.stdout!r}, stderr {e.stderr!r})")


# --------------------------------------------------------------------------
# Clusters (consensus core)
# --------------------------------------------------------------------------

def start_cluster_agents(synod, addrs, broadcast_port, extra_args=(), names=None,
                         beacon_interval="200ms", **kw):
    """Start one agent per address at once (all processes first, then wait for
    each /healthz), each with `extra_args` (e.g. ["--bootstrap-expect", "3"])."""
    names = names or [f"n{i + 1}" for i in range(len(addrs))]
    agents = [Agent(synod, nm, a, broadcast_port, beacon_interval, extra_args=tuple(extra_args),
                    **kw).start() for nm, a in zip(names, addrs)]
    for a in agents:
        a.wait_healthy()
    return agents


def cluster_views(agents, timeout=2.0):
    """{agent.name: /v1/cluster} for every running agent in `agents`."""
    return {a.name: a.cluster(timeout=timeout) for a in agents if a.alive()}


def summarize_view(v):
    """A one-line summary of a /v1/cluster document for logs and failures."""
    if not isinstance(v, dict):
        return repr(v)
    leader = v.get("leader") or {}
    members = ",".join(f"{m.get('name')}:{m.get('role')}/{m.get('state')}"
                       for m in v.get("members", []))
    cid = v.get("cluster_id") or ""
    return (f"cid={cid[:8]} phase={v.get('phase')!r} member={v.get('member')} "
            f"leader={leader.get('name')} term={v.get('term')} commit={v.get('commit_index')} "
            f"applied={v.get('applied_index')} voters={v.get('voters')}/"
            f"{v.get('voters_alive')} standbys={v.get('standbys')} spares={v.get('spares')} "
            f"quorum={v.get('quorum')} "
            f"[{members}]")


def converged(agents, members=None, voters=None, standbys=None, leader_in=True):
    """The views when every agent in `agents` (all must be running) is a member
    of the same non-empty cluster, knows the same leader (one of `agents`
    unless leader_in is False), has quorum, and (if given) reports that many
    members not in state "left", voters and standbys; else False."""
    views = {}
    for a in agents:
        if not a.alive():
            abort(f"agent {a.name} exited with {a.proc.returncode}")
        views[a.name] = a.cluster(timeout=2.0)
    cids = {v.get("cluster_id") for v in views.values()}
    leaders = {(v.get("leader") or {}).get("id") for v in views.values()}
    if len(cids) != 1 or "" in cids or None in cids:
        return False
    if len(leaders) != 1 or None in leaders:
        return False
    if leader_in and not leaders <= {getattr(a, "id", None) for a in agents}:
        return False
    for v in views.values():
        if v.get("member") is not True or v.get("quorum") is not True:
            return False
        if v.get("phase") != "member":
            return False
        live = [m for m in v.get("members", []) if m.get("state") != "left"]
        if members is not None and len(live) != members:
            return False
        if voters is not None and v.get("voters") != voters:
            return False
        if standbys is not None and v.get("standbys") != standbys:
            return False
    return views


def wait_converged(agents, timeout, members=None, voters=None, standbys=None, what=None,
                   extra=None, on_poll=None):
    """wait_for(converged(...)) and, if given, extra(views) truthy; on timeout
    the failure names every agent's last view. on_poll(), if given, runs at
    every poll, whether the views agree or not (to watch for transients)."""
    last = {}

    def cond():
        if on_poll is not None:
            on_poll()
        try:
            r = converged(agents, members, voters, standbys)
            if r and extra is not None and not extra(r):
                r = False
        finally:
            try:
                last.update({a.name: a.cluster(timeout=1.0) for a in agents if a.alive()})
            except (OSError, ValueError, http.client.HTTPException, TestFailure):
                pass
        return r
    try:
        return wait_for(cond, timeout, interval=0.2,
                        what=what or f"{len(agents)} agents to converge on one cluster")
    except Abort:
        raise
    except TestFailure as e:
        detail = "\n".join(f"  {n}: {summarize_view(v)}" for n, v in sorted(last.items()))
        fail(f"{e}\nlast views:\n{detail}")


def member_of(view, agent):
    """The record of `agent` in a /v1/cluster view's member list, or None."""
    return next((m for m in view["members"] if m["id"] == agent.id), None)


def leader_of(agents, views=None):
    """The Agent that the (agreeing) views name as leader, or None."""
    views = views or cluster_views(agents)
    ids = {(v.get("leader") or {}).get("id") for v in views.values()}
    if len(ids) != 1:
        return None
    lid = ids.pop()
    for a in agents:
        if getattr(a, "id", None) == lid:
            return a
    return None


# --------------------------------------------------------------------------
# Ranks and commands
# --------------------------------------------------------------------------

def rank_key(entries):
    """What every node must agree on in /v1/ranks: (rank, kind, id, address) per entry."""
    return [(e.get("rank"), e.get("kind"), e.get("id"), e.get("address")) for e in entries]


def wait_ranks(agents, want, timeout, what):
    """Wait until every agent's /v1/ranks lists the same ranks and want(entries)
    is true; returns the entries. On timeout the failure names every agent's
    last rank table."""
    last = {}

    def cond():
        docs = {a.name: a.ranks() for a in agents}
        last.clear()
        last.update({n: rank_key(d["ranks"]) for n, d in docs.items()})
        if len({json.dumps(k) for k in last.values()}) != 1:
            return False
        entries = next(iter(docs.values()))["ranks"]
        return want(entries) and entries
    try:
        return wait_for(cond, timeout, interval=0.2, what=what)
    except TestFailure as e:
        detail = "\n".join(f"  {n}: {v}" for n, v in sorted(last.items()))
        fail(f"{e}\nlast rank tables:\n{detail}")


def post_command(agent, text, timeout=40.0):
    """POST /v1/commands {"command": text} to `agent`; returns the HttpResult.
    The default timeout outlasts the agent's 30 s send timeout."""
    return http_request(agent.addr, agent.api_port, "POST", "/v1/commands",
                        body=json.dumps({"command": text}).encode(),
                        headers={"Content-Type": "application/json"}, timeout=timeout)


def post_command_ok(agent, text, timeout=40.0):
    """post_command() that must answer 200; returns the command's record (JSON)."""
    r = post_command(agent, text, timeout=timeout)
    check(r.status == 200, f"POST /v1/commands {text!r} on {agent.name}: {r}")
    return r.json()


class KvReader:
    """GETs /v1/kv/{key} from one agent over a kept-alive connection (thousands
    of reads without a connection each); reconnects once on a broken one."""

    def __init__(self, agent, timeout=3.0):
        self.agent = agent
        self.timeout = timeout
        self.conn = None

    def get(self, key):
        """(status, parsed JSON body or None)."""
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.agent.addr, self.agent.api_port,
                                                       timeout=self.timeout)
            try:
                self.conn.request("GET", "/v1/kv/" + key)
                r = self.conn.getresponse()
                body = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.close()
                try:
                    doc = json.loads(body.decode("utf-8"))
                except ValueError:
                    doc = None
                return r.status, doc
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 1:
                    raise
        return None, None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def verify_kv(agents, expected, label):
    """Every key of `expected` ({key: value}) is on every agent with its value
    (GET on each agent's local replica; one reading thread per agent). A 503
    (the node cannot confirm the read yet: behind, or no leader) is retried as a
    client would, for up to 10 s per agent in all. Fails naming the first few
    misses."""
    import threading
    results = {}

    def read_all(a):
        reader = KvReader(a)
        bad = []
        retry_until = time.monotonic() + 10.0
        try:
            for key, value in expected.items():
                status, doc = reader.get(key)
                while status == 503 and time.monotonic() < retry_until:
                    time.sleep(0.1)
                    status, doc = reader.get(key)
                if status != 200 or not isinstance(doc, dict) or doc.get("value") != value:
                    bad.append((key, value, status, doc))
        except Exception as e:  # reported below
            bad.append(("exception", type(e).__name__, str(e)))
        finally:
            reader.close()
        results[a.name] = bad
    threads = [threading.Thread(target=read_all, args=(a,), daemon=True) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120.0)
    check(not any(t.is_alive() for t in threads), f"{label}: reading the keys took over 120 s")
    for a in agents:
        bad = results.get(a.name, [("no result",)])
        check(not bad, f"{label}: {len(bad)} of {len(expected)} acknowledged keys wrong on "
                       f"{a.name}; first: {bad[:5]}")


def check_exit_leaks(agents):
    """Fail if any agent stopped with stop_cleanly() logged handles left open."""
    bad = {a.name: a.exit_leaks for a in agents if getattr(a, "exit_leaks", None)}
    check(not bad, "agents exited 0 but left event-loop handles open (resources never "
                   "released): " + "; ".join(f"{n}: {len(v)} x {v[0].split(' ', 1)[-1]!r}"
                                             for n, v in bad.items()))
