"""The chaos lab: Synod agents on hosts made of network namespaces, and the
faults (nemeses) applied to them. Python 3 standard library; needs root,
`ip` (iproute2) and `nft` (nftables).

Topology (every name, and the work dir in the temp dir, starts with
"synch-<pid>-", so parallel runs never clash and a later run can sweep what a
killed one left):

  <prefix>br   the bridge br0, in a namespace of its own (the host's network
               namespace is never touched);
  <prefix>nI   host I: a veth into the bridge with 10.S.T.I/24, where agent nI
               runs bound to that address, beaconing to 10.S.T.255 (the bound
               interface's directed broadcast) on the default ports;
  <prefix>cl   the clients' host, 10.S.T.250. `Lab.create()` moves the calling
               thread (call it from the main thread before starting any other)
               into it, so every thread started afterwards talks to the agents
               directly; `ip netns exec` starts each agent in its own namespace.

Faults, all undone by `heal()` / `clear_loss()` or by deleting the namespaces:
  * partitions: nftables rules in every host's namespace drop packets from and
    to the hosts outside its group (the clients' host is never cut off, so
    clients still reach a cut-off node, as in Jepsen);
  * loss: each host drops X % of the packets it sends to the other hosts
    (nftables `numgen random`);
  * delay with jitter: the NFQUEUE delayer of ../shared/lab (nfq_delay.c) in
    each host, fed by an iptables-legacy NFQUEUE rule (this kernel's nftables
    has no queue statement), when gcc, libnetfilter-queue-dev and
    iptables-legacy are there; `delay_unavailable()` says why not otherwise;
  * processes: kill -9 and restart on the same data dir, SIGSTOP / SIGCONT;
    `Node.env` adds to an agent's environment at its next start (libfaketime
    for a clock step: scenarios.clock_step);
  * a small disk: `Lab.mount_tmpfs(node, MB)` mounts a tmpfs under the node's
    dir in the host's mount namespace (under the work dir only) and copies
    its data dir there; destroy() unmounts it, and a later run's sweep
    unmounts what a killed run left.

`Lab(..., sync=True)` starts every agent with `--sync-dir <node dir>/folder`
(`Node.sync_dir`), which the test writes into directly.

Cleanup: every agent dies with this process (PR_SET_PDEATHSIG) and is killed
at exit; the namespaces (and with them every rule) are deleted and the tmpfs
mounts unmounted at exit and on SIGINT / SIGTERM / SIGHUP; the work dir is
removed unless kept.
"""

import atexit
import ctypes
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

PREFIX = "synch-"
CLIENT_HOST = 250
API_PORT = 7400
CLONE_NEWNET = 0x40000000
NFT_TABLE = "synod_chaos"
LAB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                       "shared", "lab")

_labs = []


class LabError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# Commands, cleanup
# --------------------------------------------------------------------------

def run(cmd, stdin_text=None, timeout=15.0, check=True):
    """Run a short command; returns CompletedProcess (text). Raises LabError."""
    try:
        done = subprocess.run(cmd, input=stdin_text, capture_output=True, text=True,
                              timeout=timeout, stdin=None if stdin_text is not None
                              else subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"{' '.join(cmd)}: {e}") from e
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def unavailable():
    """Why this machine cannot run the lab (None if it can)."""
    if os.geteuid() != 0:
        return "not root (network namespaces need CAP_SYS_ADMIN)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    return None


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _orphaned(name):
    """True for a "synch-<pid>-..." name whose process is gone."""
    pid = name[len(PREFIX):].split("-", 1)[0] if name.startswith(PREFIX) else ""
    return pid.isdigit() and not _pid_alive(int(pid))


def sweep_leftovers():
    """Delete the namespaces, tmpfs mounts and temp dirs of earlier runs whose
    process is gone (killed with -9: their agents died with them)."""
    tmp = tempfile.gettempdir()
    try:
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1] for line in f]
    except OSError:
        mounts = []
    for mnt in mounts:
        if mnt.startswith(os.path.join(tmp, PREFIX)) and \
                _orphaned(os.path.relpath(mnt, tmp).split(os.sep)[0]):
            run(["umount", "-l", mnt], check=False)
    listing = run(["ip", "netns", "list"], check=False).stdout
    for name in (line.split()[0] for line in listing.splitlines() if line.split()):
        if _orphaned(name):
            run(["ip", "netns", "del", name], check=False)
    for name in os.listdir(tempfile.gettempdir()):
        if _orphaned(name):
            shutil.rmtree(os.path.join(tempfile.gettempdir(), name), ignore_errors=True)


def cleanup_all():
    for lab in list(_labs):
        lab.destroy()


def _on_signal(signum, _frame):
    cleanup_all()
    os._exit(128 + signum)


atexit.register(cleanup_all)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def _die_with_parent():
    """preexec_fn: SIGKILL the child when the thread that started it exits."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)    # PR_SET_PDEATHSIG


def _enter_netns(name):
    """Move the calling thread into network namespace `name` (threads it starts
    later inherit it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise LabError(f"setns into {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# HTTP (from the clients' host)
# --------------------------------------------------------------------------

class NotSent(OSError):
    """The connection could not be opened: the request was never sent."""


class Reply:
    def __init__(self, status, body):
        self.status = status
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            return None


def request(addr, method, path, body=None, headers=None, timeout=3.0):
    """One HTTP request on a fresh connection; returns a Reply. Raises NotSent
    if it could not connect, OSError / HTTPException for anything after."""
    conn = http.client.HTTPConnection(addr, API_PORT, timeout=timeout)
    try:
        try:
            conn.connect()
        except OSError as e:
            raise NotSent(str(e)) from e
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Reply(r.status, r.read())
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------

class Node:
    """One host namespace and the agent in it."""

    def __init__(self, lab, index):
        self.lab = lab
        self.index = index
        self.name = f"n{index}"
        self.ns = f"{lab.prefix}{self.name}"
        self.addr = f"{lab.subnet}.{index}"
        self.dir = os.path.join(lab.workdir, self.name)
        self.log_path = os.path.join(self.dir, "agent.log")
        self.proc = None
        self.paused = False
        self.starts = 0
        self.env = {}            # extra environment of the agent (e.g. libfaketime's)
        self.data_dir = os.path.join(self.dir, "data")
        self.sync_dir = os.path.join(self.dir, "folder") if lab.sync else None
        self.mount = None        # a tmpfs mounted for this node (see Lab.mount_tmpfs)

    def command(self):
        env = ["env", *(f"{k}={v}" for k, v in sorted(self.env.items()))] if self.env else []
        sync = ["--sync-dir", self.sync_dir] if self.sync_dir else []
        return ["ip", "netns", "exec", self.ns, *env, self.lab.synod, "agent", "--name",
                self.name, "--bind", self.addr, "--data-dir", self.data_dir,
                "--bootstrap-expect", str(len(self.lab.nodes)), "--beacon-interval", "200ms",
                "--log-level", "info", *sync, *self.lab.agent_args]

    def start(self):
        """Start (or restart on the same data dir) the agent. Call it from the
        main thread: the agent dies when the starting thread exits."""
        if self.alive():
            raise LabError(f"{self.name} is already running")
        os.makedirs(self.dir, exist_ok=True)
        if self.sync_dir:
            os.makedirs(self.sync_dir, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"===== start #{self.starts} at {time.strftime('%H:%M:%S')}"
                      f"{' env ' + str(self.env) if self.env else ''} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.paused = False
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """kill -9 and reap."""
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10.0)
        self.paused = False

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self, grace_s=3.0):
        """SIGTERM (SIGCONT first if paused), SIGKILL after grace_s."""
        if not self.alive():
            return
        if self.paused:
            self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def cluster(self, timeout=1.0):
        """GET /v1/cluster as a dict, or None if it does not answer 200."""
        try:
            r = request(self.addr, "GET", "/v1/cluster", timeout=timeout)
        except (OSError, http.client.HTTPException):
            return None
        return r.json() if r.status == 200 else None

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace").splitlines()[-lines:]
        except OSError:
            return []


# --------------------------------------------------------------------------
# The lab
# --------------------------------------------------------------------------

class Lab:
    """N hosts on one bridge, their agents, and the network faults.

    Call create(), then destroy() (or use the lab as a context manager once
    created: leaving the block destroys it)."""

    def __init__(self, synod, nodes=3, agent_args=(), keep=False, log=None, sync=False):
        self.synod = os.path.abspath(synod)
        self.sync = sync                 # start every agent with --sync-dir <node dir>/folder
        self.agent_args = tuple(agent_args)
        self.keep = keep
        self.log = log or (lambda msg: None)
        pid = os.getpid()
        self.prefix = f"{PREFIX}{pid}-"
        self.subnet = f"10.{200 + pid % 50}.{(pid // 50) % 250}"
        self.workdir = tempfile.mkdtemp(prefix=self.prefix)
        self.nodes = [Node(self, i) for i in range(1, nodes + 1)]
        self.namespaces = []
        self.blocked = {}                # node name -> addresses it must not exchange with
        self.loss_pct = 0
        self.delayers = []
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    # ---- network ----

    def create(self):
        """Make the namespaces and the bridge, then move the calling thread into
        the clients' host. Raises LabError if namespaces cannot be made."""
        sweep_leftovers()
        _labs.append(self)
        try:
            bridge = self._add_ns("br")
            run(["ip", "-n", bridge, "link", "add", "br0", "type", "bridge"])
            run(["ip", "-n", bridge, "link", "set", "br0", "up"])
            for node in self.nodes:
                self._add_host(node.name, node.index, bridge)
            _enter_netns(self._add_host("cl", CLIENT_HOST, bridge))
        except LabError:
            self.destroy()
            raise
        self.log(f"lab: {len(self.nodes)} hosts on {self.subnet}.0/24, namespaces "
                 f"{self.prefix}*, work dir {self.workdir}")
        return self

    def _add_ns(self, suffix):
        name = self.prefix + suffix
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def _add_host(self, suffix, index, bridge):
        ns = self._add_ns(suffix)
        port = f"p{index}"
        run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port,
             "netns", bridge])
        run(["ip", "-n", bridge, "link", "set", port, "master", "br0"])
        run(["ip", "-n", bridge, "link", "set", port, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{self.subnet}.{index}/24", "brd",
             f"{self.subnet}.255", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        return ns

    def destroy(self):
        """Stop every agent and delayer, delete the namespaces, remove the work
        dir (unless kept). Safe to call twice."""
        if self not in _labs:
            return
        _labs.remove(self)
        for node in self.nodes:
            node.stop(grace_s=2.0)
        self._stop_delayers()
        for ns in reversed(self.namespaces):
            run(["ip", "netns", "del", ns], check=False)
        self.namespaces.clear()
        for node in self.nodes:
            if node.mount:
                run(["umount", "-l", node.mount], check=False)
                node.mount = None
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- a small disk ----

    def mount_tmpfs(self, node, size_mb):
        """Mount a tmpfs of size_mb under the node's dir (stopped agent) and copy
        its data dir onto it (raises OSError if it does not fit); unmounted by destroy() (and by the next run's
        sweep if this one was killed). Returns the mount point."""
        if node.alive():
            raise LabError(f"{node.name} must be stopped to move its data dir")
        mnt = os.path.join(node.dir, "small-disk")
        os.makedirs(mnt, exist_ok=True)
        run(["mount", "-t", "tmpfs", "-o", f"size={int(size_mb)}m,mode=0700", "tmpfs", mnt])
        node.mount = mnt
        target = os.path.join(mnt, "data")
        if os.path.isdir(node.data_dir):
            shutil.copytree(node.data_dir, target, symlinks=True)
        else:
            os.makedirs(target)
        node.data_dir = target
        return mnt

    # ---- agents ----

    def start_agents(self):
        for node in self.nodes:
            node.start()
        return self

    def dead_agents(self):
        """Agents that exited though nobody killed them."""
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is not None
                and n.proc.returncode != -signal.SIGKILL]

    # ---- partitions and loss ----

    def partition(self, groups):
        """Split the hosts into `groups` (lists of Nodes); a node in no group is
        cut off alone."""
        group_of = {}
        for g in groups:
            for n in g:
                group_of[n.name] = {m.addr for m in g}
        self.blocked = {n.name: {m.addr for m in self.nodes
                                 if m.addr not in group_of.get(n.name, {n.addr})}
                        for n in self.nodes}
        self._apply_rules()

    def isolate(self, node):
        self.partition([[n for n in self.nodes if n is not node]])

    def heal(self):
        self.blocked = {}
        self._apply_rules()

    def set_loss(self, pct):
        """Every host drops `pct` % of what it sends to the other hosts."""
        self.loss_pct = int(pct)
        self._apply_rules()

    def clear_loss(self):
        self.set_loss(0)

    def _apply_rules(self):
        with self._lock:
            for node in self.nodes:
                run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"],
                    stdin_text=self._ruleset(node))

    def _ruleset(self, node):
        """The whole nftables table of one host, replaced atomically."""
        blocked = sorted(self.blocked.get(node.name, ()))
        peers = sorted(n.addr for n in self.nodes if n is not node)
        inp, out = [], []
        if blocked:
            inp.append(f"ip saddr {{ {', '.join(blocked)} }} drop")
            out.append(f"ip daddr {{ {', '.join(blocked)} }} drop")
        if self.loss_pct:
            out.append(f"ip daddr {{ {', '.join(peers)} }} numgen random mod 100 < "
                       f"{self.loss_pct} drop")
        return (f"table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n"
                f"table inet {NFT_TABLE} {{\n"
                f"  chain input {{ type filter hook input priority 0; policy accept;\n"
                + "".join(f"    {r}\n" for r in inp) + "  }\n"
                f"  chain output {{ type filter hook output priority 0; policy accept;\n"
                + "".join(f"    {r}\n" for r in out) + "  }\n}\n")

    # ---- delay (optional) ----

    def delay_unavailable(self):
        """Why delay cannot be applied here (None if it can): builds the
        NFQUEUE delayer of ../shared/lab into the work dir."""
        source = os.path.join(LAB_DIR, "nfq_delay.c")
        if not os.path.isfile(source):
            return f"{source} not found"
        for tool in ("gcc", "iptables-legacy"):
            if shutil.which(tool) is None:
                return f"`{tool}` is not installed"
        binary = os.path.join(self.workdir, "nfq_delay")
        if not os.path.exists(binary):
            built = run(["gcc", "-O2", "-o", binary, source, "-lnetfilter_queue"],
                        timeout=60.0, check=False)
            if built.returncode != 0:
                last = (built.stderr.strip().splitlines() or [""])[-1]
                return f"nfq_delay does not build (libnetfilter-queue-dev missing?): {last}"
        return None

    def set_delay(self, delay_ms, jitter_ms):
        """Delay every packet between hosts by delay_ms +- jitter_ms (each host's
        outgoing packets go through a delayer in its namespace)."""
        why = self.delay_unavailable()
        if why:
            raise LabError(why)
        self._stop_delayers()
        binary = os.path.join(self.workdir, "nfq_delay")
        for node in self.nodes:
            self.delayers.append(subprocess.Popen(
                ["ip", "netns", "exec", node.ns, binary, "0", str(delay_ms), str(jitter_ms), "0"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent))
        time.sleep(0.2)
        try:
            for node in self.nodes:
                peers = ",".join(n.addr for n in self.nodes if n is not node)
                run(["ip", "netns", "exec", node.ns, "iptables-legacy", "-A", "OUTPUT", "-d",
                     peers, "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"])
        except LabError:
            self.clear_delay()
            raise

    def clear_delay(self):
        for node in self.nodes:
            run(["ip", "netns", "exec", node.ns, "iptables-legacy", "-F", "OUTPUT"], check=False)
        self._stop_delayers()

    def _stop_delayers(self):
        for p in self.delayers:
            p.kill()
            p.wait(timeout=5.0)
        self.delayers = []
