#!/usr/bin/env python3
"""File sync benchmark: Synod's --sync-dir against Syncthing, 3 nodes on loopback (run by hand).

Systems (--systems), run one after the other in the same run, each on a fresh 3-node set with
its folders under one temporary dir (so on one disk):

  synod              3 agents, --bootstrap-expect 3, --sync-dir, on 127.72.1.2-4.
  syncthing_default  3 Syncthing instances (Debian `syncthing`) on 127.72.2.2-4, one shared
                     folder, its watcher with the default fsWatcherDelayS (10).
  syncthing_fast     the same on 127.72.3.2-4 with fsWatcherDelayS=1 and a forced
                     POST /rest/db/scan (sub= the written path) after each write: its fastest.

Scenarios (--only), in this order on the same folders:

  small    a 4 KB file written on node 1 (--small-write direct: open/write/close in the folder;
           rename: written next to the folder, then renamed in), time until both other nodes
           read the same bytes; --small-n times (50; --quick 10): p50/p99/max ms.
  bulk     --bulk-files (10,000; quick 1,000) files of 10 KB written at once on node 1 (in
           subdirs of 1,000, created in the same burst): time until all are on every node,
           files/s.
  large    a --large-mb (1024; quick 100) MiB file of random bytes: `cp` of it to another dir of
           the same disk plus `sync` is timed, then that copy is renamed into node 1's folder:
           time until it is on both others (seen at full size, then sha256-verified), and the
           ratio to cp+sync.
  catchup  node 3 stopped (Synod: SIGTERM; Syncthing: SIGTERM to its process), --catchup-files
           (10,000; quick 1,000) of the bulk files rewritten on node 1 and waited for on node 2,
           node 3 restarted: time from just before its launch until it has them all.
  idle     the folder topped up to --idle-files files (100,000; quick 10,000; the new ones 1 KB)
           and synced, then each process's CPU (utime+stime from /proc/PID/stat) over
           --idle-seconds (60; quick 10) with nothing written, as % of one core.

Arrival is always checked on disk and by content: a file counts as arrived on a node when it
has the expected size (and, for a rewritten one, is not the old inode/ctime) and its sha256
equals the written bytes' (files over 1 MiB are hashed once seen complete, without delaying
the timing of the other nodes). Times are upper bounds: the poll that confirmed the last file.
At the end of each system every node's whole folder is compared with what was written.

Loopback only (127.72.0.0/16): Syncthing's global and local discovery, relays, NAT/STUN,
usage reporting, crash reporting and upgrades are off in its config.xml before its first start
(devices and the folder are then added through GET/PUT /rest/config). Every wait is bounded.
Every process started is stopped (SIGTERM, then SIGKILL), even on errors or Ctrl-C, and the work
dir removed (--keep leaves it). One JSON object on stdout, progress on stderr.
"""

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

from benchlib import (CLK_TCK, Agent, AgentCluster, Interrupted, _on_signal, binary_identity, exit_record,
                      finish_result, get_json, loadavg, log, log_problems, machine_busy_s,
                      machine_info, ordered, percentile, read_cpu_ticks, read_status_kb,
                      record_failure, self_cpu_s, signals_ignored, start_logged, stop_processes,
                      summarize, tail, tcp_port_free)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BINARY = os.path.join(os.path.dirname(HERE), "build", "synod")
SYSTEMS = ["synod", "syncthing_default", "syncthing_fast"]
SCENARIOS = ["small", "bulk", "large", "catchup", "idle"]
NETS = {"synod": "127.72.1.", "syncthing_default": "127.72.2.", "syncthing_fast": "127.72.3."}
API_PORT, RAFT_PORT, PEER_PORT = 7400, 7401, 7402
ST_GUI_PORT, ST_LISTEN_PORT = 8384, 22000
ST_FOLDER = "bench"
MIB = 1 << 20
SMALL_SIZE = 4096
BULK_SIZE = 10 * 1024
IDLE_SIZE = 1024
PER_DIR = 1000
DEFER_HASH_OVER = MIB
FULL = {"small_n": 50, "bulk_files": 10_000, "large_mb": 1024, "catchup_files": 10_000,
        "idle_files": 100_000, "idle_seconds": 60.0, "settle_seconds": 5.0}
QUICK = {"small_n": 10, "bulk_files": 1_000, "large_mb": 100, "catchup_files": 1_000,
         "idle_files": 10_000, "idle_seconds": 10.0, "settle_seconds": 3.0}

PROCS = []            # (label, Popen) of the Syncthing processes; stopped at the end
ABNORMAL_EXITS = []
LOG_PROBLEMS = {}
HTTP_ERRORS = {}


def count_error(kind):
    HTTP_ERRORS[kind] = HTTP_ERRORS.get(kind, 0) + 1


def r3(x):
    return round(x, 3) if x is not None else None


def ms(x):
    return round(x * 1000.0, 2) if x is not None else None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def special(name):
    """Names that belong to the sync tools, not to the folder's content."""
    return (name in (".stfolder", ".stignore", ".stversions", ".synodignore")
            or name.startswith(".synod-tmp-") or name.startswith(".syncthing."))


def folder_tree(folder):
    """{relpath: (size, sha256 hex)} of every regular file below `folder`, the tools' own files
    left out; other kinds of entries (but directories) under "other"."""
    out, other = {}, []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not special(d)]
        rel_dir = os.path.relpath(dirpath, folder)
        for name in filenames:
            if special(name):
                continue
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):
                out[rel] = (st.st_size, sha256_file(full))
            else:
                other.append(rel)
    return out, other


# ---------------------------------------------------------------------------------------------
# Waiting for files, on disk and by content

def wait_files(folders, expected, t0, timeout_s, old=None, min_poll=0.01):
    """Until every folder of `folders` ({node: path}) holds every file of `expected` ({rel:
    (size, sha256 hex)}) with those bytes; `old` ({node: {rel: (ino, ctime_ns)}}) names the
    versions being replaced (not counted). A directory is listed again only when its ctime
    moved (or is too recent to tell). Returns seconds from `t0` per node, missing files per
    node, content mismatches and the checker's own CPU."""
    old = old or {}
    pend = {}          # node -> {abs dir: {name: rel}}
    for node, folder in folders.items():
        by_dir = {}
        for rel in expected:
            d, _, name = rel.rpartition("/")
            by_dir.setdefault(os.path.join(folder, d) if d else folder, {})[name] = rel
        pend[node] = by_dir
    seen_ctime = {node: {} for node in folders}
    scanned_at = {node: {} for node in folders}
    dirty = {node: set() for node in folders}
    done_at = {node: t0 for node in folders}
    deferred = []      # (node, rel, path, t_seen) of big files to hash
    mismatches = 0
    cpu0 = self_cpu_s()
    deadline = t0 + timeout_s
    polls = 0
    while any(pend.values()) and time.monotonic() < deadline and polls < 10_000_000:
        polls += 1
        t_poll = time.monotonic()
        for node, by_dir in pend.items():
            for d in list(by_dir):
                wall = time.time_ns()
                try:
                    ct = os.stat(d).st_ctime_ns
                except FileNotFoundError:
                    continue
                if (ct == seen_ctime[node].get(d) and d not in dirty[node]
                        and ct < scanned_at[node].get(d, 0) - 50_000_000):
                    continue
                seen_ctime[node][d] = ct
                scanned_at[node][d] = wall
                dirty[node].discard(d)
                names = by_dir[d]
                with contextlib.suppress(FileNotFoundError), os.scandir(d) as it:
                    for e in it:
                        rel = names.get(e.name)
                        if rel is None:
                            continue
                        try:
                            st = e.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        if not stat.S_ISREG(st.st_mode):
                            continue
                        if old.get(node, {}).get(rel) == (st.st_ino, st.st_ctime_ns):
                            continue
                        size, digest = expected[rel]
                        if st.st_size != size:
                            dirty[node].add(d)
                            continue
                        t_seen = time.monotonic()
                        if size > DEFER_HASH_OVER:
                            deferred.append((node, rel, e.path, t_seen))
                            del names[e.name]
                        else:
                            try:
                                ok = sha256_file(e.path) == digest
                            except FileNotFoundError:
                                ok = False
                            if ok:
                                del names[e.name]
                                done_at[node] = max(done_at[node], t_seen)
                            else:
                                mismatches += 1
                                dirty[node].add(d)
                if not names:
                    del by_dir[d]
        if any(pend.values()):
            work = time.monotonic() - t_poll
            time.sleep(max(min_poll, work))
    unverified = {}
    for node, rel, path, t_seen in deferred:   # hashed after the timing: nothing waits on it
        try:
            ok = sha256_file(path) == expected[rel][1]
        except OSError:
            ok = False
        if ok:
            done_at[node] = max(done_at[node], t_seen)
        else:
            mismatches += 1
            unverified.setdefault(node, []).append(rel)
    wall = time.monotonic() - t0
    missing = {n: sum(len(v) for v in pend[n].values()) + len(unverified.get(n, []))
               for n in folders}
    out = {"seconds_by_node": {n: (r3(done_at[n] - t0) if not missing[n] else None)
                               for n in folders},
           "missing_by_node": missing, "content_mismatches_seen": mismatches,
           "checker_cpu_pct_of_one_core": round(100.0 * (self_cpu_s() - cpu0) / max(wall, 1e-3),
                                                1)}
    secs = [v for v in out["seconds_by_node"].values()]
    out["all_s"] = max(secs) if secs and None not in secs else None
    if any(missing.values()):
        out["timed_out_after_s"] = timeout_s
        out["example_missing"] = sorted(r for n in folders for v in pend[n].values()
                                        for r in v.values())[:5]
    return out


def children_of(pid):
    """Pids whose parent is `pid` (from /proc/*/stat: this kernel has no .../children)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                data = f.read()
        except OSError:
            continue
        if int(data[data.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return out


def snapshot_old(folders, rels):
    """{node: {rel: (ino, ctime_ns)}} of files about to be replaced."""
    out = {}
    for node, folder in folders.items():
        row = {}
        for rel in rels:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(folder, rel))
                row[rel] = (st.st_ino, st.st_ctime_ns)
        out[node] = row
    return out


# ---------------------------------------------------------------------------------------------
# Synod

class SynodCluster(AgentCluster):
    ports = (API_PORT, RAFT_PORT, PEER_PORT)
    voters = 3
    leader_timeout = 0.5
    log_command = True

    def __init__(self, binary, directory, net):
        super().__init__(binary, directory, "synod")
        for i in range(3):
            a = Agent(f"n{i + 1}", f"{net}{i + 2}", os.path.join(self.dir, f"n{i + 1}", "data"),
                      os.path.join(self.dir, f"n{i + 1}.log"))
            a.folder = os.path.join(self.dir, f"n{i + 1}", "folder")
            os.makedirs(a.folder)
            self.agents.append(a)
        self.stopped_on_purpose = set()

    def command(self, agent):
        return [self.binary, "agent", "--name", agent.name, "--bind", agent.ip,
                "--data-dir", agent.data_dir, "--bootstrap-expect", "3",
                "--broadcast-addr", "127.255.255.255", "--broadcast-port",
                str(self.broadcast_port), "--beacon-interval", "200ms",
                "--log-level", "info", "--sync-dir", agent.folder]

    def status(self, agent, timeout=0.3):
        return get_json(agent.ip, API_PORT, "/v1/cluster", timeout,
                        lambda k: count_error(f"synod /v1/cluster {k}"))

    def unexpected_deaths(self):
        return [a for a in super().unexpected_deaths()
                if a.proc.pid not in self.stopped_on_purpose]

    def stopped(self, running, early):
        found = log_problems([(a.name, a.log_path) for a in self.agents], 12)
        if found:
            LOG_PROBLEMS["synod"] = found
        ABNORMAL_EXITS.extend(exit_record(a, a in early, system="synod")
                              for a in running + early if a.proc.returncode != 0)


class SynodSystem:
    """The scenarios' view of a Synod cluster."""

    name = "synod"

    def __init__(self, args, directory):
        self.args = args
        self.cl = SynodCluster(args.binary, directory, NETS["synod"])
        self.folders = {a.name: a.folder for a in self.cl.agents}
        self.nodes = [a.name for a in self.cl.agents]

    def start(self):
        for a in self.cl.agents:
            self.cl.launch(a)
        t = self.cl.wait_healthy(30.0)
        if t is None:
            raise RuntimeError("synod: the cluster did not form within 30 s")
        if not self.wait_settled(30.0):
            raise RuntimeError("synod: /v1/sync not ready and in sync within 30 s")
        log(f"synod: formed in {t:.2f} s on {NETS['synod']}2-4")
        return {"formed_s": r3(t)}

    def close(self):
        self.cl.stop()

    def sync_status(self, node):
        a = next(x for x in self.cl.agents if x.name == node)
        return get_json(a.ip, API_PORT, "/v1/sync", 2.0, lambda k: count_error(f"synod /v1/sync {k}"))

    def status(self):
        keep = ("in_sync", "pending_files", "pending_bytes", "index_files", "fetched_files_total",
                "fetched_bytes_total", "reused_bytes_total", "announced_total",
                "missed_by_watcher_total", "conflicts_total", "watches", "errors")
        out = {}
        for a in self.cl.alive():
            s = self.sync_status(a.name) or {}
            out[a.name] = {k: s.get(k) for k in keep if k in s}
        return out

    def wait_settled(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.cl.check_deaths()
            sts = [self.sync_status(a.name) for a in self.cl.alive()]
            if sts and all(s and s.get("in_sync") is True and s.get("pending_files") == 0
                           and s.get("ready", True) and not s.get("writing")
                           and not s.get("announcing") for s in sts):
                return True
            time.sleep(0.1)
        return False

    def after_write(self, _rel):
        return None

    def pids(self):
        return {a.name: a.proc.pid for a in self.cl.alive()}

    def cpu_ticks(self):
        return {n: read_cpu_ticks(p) for n, p in self.pids().items()}

    def stop_node(self, node):
        a = next(x for x in self.cl.agents if x.name == node)
        self.cl.stopped_on_purpose.add(a.proc.pid)
        t0 = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        out = {}
        try:
            a.proc.wait(timeout=15.0)
        except subprocess.TimeoutExpired:   # noted, and the scenario goes on after a SIGKILL
            log(f"synod {node} did not exit within 15 s of SIGTERM; SIGKILL")
            a.proc.kill()
            a.proc.wait(timeout=5.0)
            out["sigkilled_after_sigterm_ignored_s"] = 15.0
        if a.proc.returncode != 0:
            ABNORMAL_EXITS.append(exit_record(a, False, system="synod", when="catchup stop"))
        return {"seconds": r3(time.monotonic() - t0), "returncode": a.proc.returncode, **out}

    def start_node(self, node):
        a = next(x for x in self.cl.agents if x.name == node)
        self.cl.launch(a)
        return a.started

    def check_alive(self):
        self.cl.check_deaths()


# ---------------------------------------------------------------------------------------------
# Syncthing

def syncthing_version(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20)
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e})"


def syncthing_available(args):
    """None if Syncthing can run, else why not (after trying to install the Debian package)."""
    if shutil.which(args.syncthing):
        return None
    if args.no_install:
        return f"{args.syncthing} not found (and --no-install)"
    log("syncthing not found: apt-get install -y syncthing")
    cmd = ["apt-get", "install", "-y", "syncthing"]
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            return "syncthing missing, not root and no sudo to install it"
        cmd = ["sudo", "-n"] + cmd
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (OSError, subprocess.SubprocessError) as e:
        return f"installing syncthing failed: {e}"
    if r.returncode != 0 or not shutil.which(args.syncthing):
        return (f"`{' '.join(cmd)}` failed (exit {r.returncode}): "
                + (r.stderr or r.stdout).strip()[-300:])
    return None


def st_request(ip, key, method, path, body=None, timeout=10.0):
    """(status, parsed JSON or raw bytes) of a request to a Syncthing REST API."""
    conn = http.client.HTTPConnection(ip, ST_GUI_PORT, timeout=timeout)
    try:
        headers = {"X-API-Key": key}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw
    finally:
        conn.close()


class StNode:
    def __init__(self, binary, name, ip, root, log_path):
        self.binary = binary
        self.name = name
        self.ip = ip
        self.home = os.path.join(root, "home")
        self.folder = os.path.join(root, "folder")
        self.log_path = log_path
        self.key = hashlib.sha256(os.urandom(16)).hexdigest()[:32]
        self.proc = None
        self.device_id = None
        self.launches = 0

    def env(self):
        return {**os.environ, "STNOUPGRADE": "1", "STNORESTART": "1", "STNODEFAULTFOLDER": "1",
                "HOME": os.path.dirname(self.home)}

    def generate(self):
        os.makedirs(self.home)
        os.makedirs(os.path.join(self.folder, ".stfolder"))
        r = subprocess.run([self.binary, "generate", f"--home={self.home}",
                            "--no-default-folder"], capture_output=True, text=True, timeout=60,
                           env=self.env())
        if r.returncode != 0:
            raise RuntimeError(f"syncthing generate: {r.stderr.strip()[-300:]}")
        r = subprocess.run([self.binary, "serve", f"--home={self.home}", "--device-id"],
                           capture_output=True, text=True, timeout=60, env=self.env())
        self.device_id = r.stdout.strip()
        if r.returncode != 0 or len(self.device_id) < 50:
            raise RuntimeError(f"syncthing --device-id: {r.stdout!r} {r.stderr.strip()[-200:]}")
        # Loopback only from the very first start: no discovery, relays, NAT/STUN, reporting.
        path = os.path.join(self.home, "config.xml")
        tree = ET.parse(path)
        root = tree.getroot()
        gui = root.find("gui")
        gui.find("address").text = f"{self.ip}:{ST_GUI_PORT}"
        gui.find("apikey").text = self.key
        opts = root.find("options")
        for tag, value in (("listenAddress", f"tcp://{self.ip}:{ST_LISTEN_PORT}"),
                           ("globalAnnounceEnabled", "false"), ("localAnnounceEnabled", "false"),
                           ("relaysEnabled", "false"), ("natEnabled", "false"),
                           ("startBrowser", "false"), ("urAccepted", "-1"),
                           ("autoUpgradeIntervalH", "0"), ("crashReportingEnabled", "false"),
                           ("stunKeepaliveStartS", "0"), ("stunKeepaliveMinS", "0"),
                           ("announceLANAddresses", "false"), ("restartOnWakeup", "false"),
                           ("setLowPriority", "false")):
            el = opts.find(tag)
            if el is None:
                el = ET.SubElement(opts, tag)
            el.text = value
        tree.write(path)

    def start(self):
        if not (tcp_port_free(self.ip, ST_GUI_PORT) and tcp_port_free(self.ip, ST_LISTEN_PORT)):
            raise RuntimeError(f"{self.ip}: Syncthing's ports are in use")
        self.launches += 1
        cmd = [self.binary, "serve", f"--home={self.home}", "--no-browser", "--no-restart",
               "--no-upgrade", "--logflags=3", f"--gui-address=http://{self.ip}:{ST_GUI_PORT}",
               f"--gui-apikey={self.key}"]
        self.proc, t, _ = start_logged(cmd, self.log_path, f"==== launch {self.launches} ====",
                                       env=self.env())
        PROCS.append((f"syncthing {self.name}", self.proc))
        return t

    def api(self, method, path, body=None, timeout=10.0):
        try:
            return st_request(self.ip, self.key, method, path, body, timeout)
        except (OSError, http.client.HTTPException) as e:
            count_error(f"syncthing {type(e).__name__}")
            return None, None

    def wait_up(self, timeout_s=30.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"syncthing {self.name} exited {self.proc.returncode}: "
                                   f"{tail(self.log_path, 5)}")
            st, body = self.api("GET", "/rest/system/ping", timeout=1.0)
            if st == 200:
                return True
            time.sleep(0.1)
        raise RuntimeError(f"syncthing {self.name}: REST API not up within {timeout_s} s")

    def stop(self, timeout=20.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        kids = children_of(self.proc.pid)
        stop_processes([(f"syncthing {self.name}", self.proc)], timeout)
        for pid in kids:   # the monitor stops its child; make sure (if it is still that one)
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if self.home.encode() not in f.read():
                        continue
                os.kill(pid, signal.SIGKILL)
                log(f"syncthing {self.name}: child {pid} outlived its monitor; SIGKILL")
        PROCS[:] = [(lbl, p) for lbl, p in PROCS if p is not self.proc]
        if self.proc.returncode not in (0, -signal.SIGTERM):
            ABNORMAL_EXITS.append({"system": "syncthing", "node": self.name,
                                   "returncode": self.proc.returncode,
                                   "log_tail": tail(self.log_path)})


class SyncthingSystem:
    def __init__(self, args, directory, name):
        self.args = args
        self.name = name
        self.fast = name == "syncthing_fast"
        net = NETS[name]
        self.st = [StNode(args.syncthing, f"n{i + 1}", f"{net}{i + 2}",
                          os.path.join(directory, f"n{i + 1}"),
                          os.path.join(directory, f"n{i + 1}.log")) for i in range(3)]
        self.folders = {n.name: n.folder for n in self.st}
        self.nodes = [n.name for n in self.st]
        self.scan_times = []

    def node(self, name):
        return next(n for n in self.st if n.name == name)

    def start(self):
        t0 = time.monotonic()
        for n in self.st:
            n.generate()
        for n in self.st:
            n.start()
        for n in self.st:
            n.wait_up()
        delay = 1 if self.fast else None
        for n in self.st:
            st, cfg = n.api("GET", "/rest/config")
            if st != 200 or not isinstance(cfg, dict):
                raise RuntimeError(f"syncthing {n.name}: GET /rest/config -> {st}")
            dev_default = cfg.get("defaults", {}).get("device", {})
            fol_default = cfg.get("defaults", {}).get("folder", {})
            devices = [d for d in cfg["devices"] if d["deviceID"] == n.device_id]
            for o in self.st:
                if o is n:
                    continue
                d = dict(dev_default)
                d.update({"deviceID": o.device_id, "name": o.name,
                          "addresses": [f"tcp://{o.ip}:{ST_LISTEN_PORT}"]})
                devices.append(d)
            folder = dict(fol_default)
            folder.update({"id": ST_FOLDER, "label": ST_FOLDER, "path": n.folder,
                           "type": "sendreceive", "fsWatcherEnabled": True,
                           "devices": [{"deviceID": o.device_id, "introducedBy": "",
                                        "encryptionPassword": ""} for o in self.st]})
            if delay is not None:
                folder["fsWatcherDelayS"] = delay
            cfg["devices"] = devices
            cfg["folders"] = [folder]
            st, body = n.api("PUT", "/rest/config", cfg)
            if st != 200:
                raise RuntimeError(f"syncthing {n.name}: PUT /rest/config -> {st} {body!r:.300}")
        self.wait_connected(60.0)
        if not self.wait_settled(60.0):
            raise RuntimeError(f"{self.name}: folder not idle within 60 s")
        st, cfg = self.st[0].api("GET", f"/rest/config/folders/{ST_FOLDER}")
        out = {"ready_s": r3(time.monotonic() - t0),
               "fsWatcherDelayS": (cfg or {}).get("fsWatcherDelayS") if st == 200 else None,
               "rescanIntervalS": (cfg or {}).get("rescanIntervalS") if st == 200 else None,
               "forced_scan_after_each_write": self.fast}
        log(f"{self.name}: 3 instances connected on {NETS[self.name]}2-4, "
            f"fsWatcherDelayS {out['fsWatcherDelayS']}")
        return out

    def wait_connected(self, timeout_s, nodes=None):
        nodes = nodes or self.st
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            ok = True
            for n in nodes:
                st, body = n.api("GET", "/rest/system/connections", timeout=2.0)
                conns = (body or {}).get("connections", {}) if st == 200 else {}
                if not all(conns.get(o.device_id, {}).get("connected") for o in self.st
                           if o is not n and o.proc is not None and o.proc.poll() is None):
                    ok = False
                    break
            if ok:
                return True
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: instances not connected within {timeout_s} s")

    def wait_settled(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            ok = True
            for n in self.st:
                st, body = n.api("GET", f"/rest/db/status?folder={ST_FOLDER}", timeout=5.0)
                if st != 200 or body.get("state") != "idle" or body.get("needTotalItems", 1):
                    ok = False
                    break
                for o in self.st:
                    if o is n:
                        continue
                    st, c = n.api("GET", f"/rest/db/completion?folder={ST_FOLDER}"
                                         f"&device={o.device_id}", timeout=5.0)
                    if st != 200 or c.get("completion") != 100:
                        ok = False
                        break
                if not ok:
                    break
            if ok:
                return True
            time.sleep(0.2)
        return False

    def status(self):
        out = {}
        for n in self.st:
            if n.proc is None or n.proc.poll() is not None:
                continue
            st, body = n.api("GET", f"/rest/db/status?folder={ST_FOLDER}", timeout=5.0)
            if st == 200:
                out[n.name] = {k: body.get(k) for k in ("state", "localFiles", "globalFiles",
                                                         "needTotalItems", "pullErrors")}
        return out

    def after_write(self, rel):
        """syncthing_fast: POST /rest/db/scan of the written path (it returns when the scan is
        done); seconds it took."""
        if not self.fast:
            return None
        t = time.monotonic()
        path = f"/rest/db/scan?folder={ST_FOLDER}"
        if rel:
            path += "&sub=" + urllib.parse.quote(rel, safe="")
        st, body = self.st[0].api("POST", path, timeout=600.0)
        took = time.monotonic() - t
        if st != 200:
            count_error(f"syncthing POST /rest/db/scan HTTP {st}")
        self.scan_times.append(took)
        return took

    def pids(self):
        """The syncthing process doing the work (`serve` runs it as a child of a monitor
        process, even with --no-restart), per node."""
        out = {}
        for n in self.st:
            if n.proc and n.proc.poll() is None:
                kids = children_of(n.proc.pid)
                out[n.name] = kids[0] if kids else n.proc.pid
        return out

    def cpu_ticks(self):
        """CPU ticks of the monitor process plus its children, per node."""
        out = {}
        for n in self.st:
            if n.proc and n.proc.poll() is None:
                vals = [read_cpu_ticks(p) for p in [n.proc.pid] + children_of(n.proc.pid)]
                out[n.name] = sum(v for v in vals if v is not None)
        return out

    def stop_node(self, node):
        n = self.node(node)
        t0 = time.monotonic()
        n.stop()
        return {"seconds": r3(time.monotonic() - t0), "returncode": n.proc.returncode}

    def start_node(self, node):
        n = self.node(node)
        t = n.start()
        return t

    def check_alive(self):
        dead = [n for n in self.st if n.proc is not None and n.proc.poll() is not None
                and any(p is n.proc for _, p in PROCS)]
        if dead:
            raise RuntimeError("syncthing died: " + ", ".join(
                f"{n.name} rc={n.proc.returncode} {tail(n.log_path, 3)}" for n in dead))

    def close(self):
        with signals_ignored():
            for n in self.st:
                n.stop()


# ---------------------------------------------------------------------------------------------
# Scenarios

class Run:
    """One system's run: the system, the files written (the expected folder), the settings."""

    def __init__(self, args, system, workdir, staging):
        self.args = args
        self.sys = system
        self.workdir = workdir
        self.staging = staging
        self.model = {}             # rel -> (size, sha256 hex): what every folder must hold
        self.first = system.nodes[0]
        self.others = system.nodes[1:]

    def folder(self, node):
        return self.sys.folders[node]

    def write(self, rel, data):
        write_file(os.path.join(self.folder(self.first), rel), data)
        self.model[rel] = (len(data), hashlib.sha256(data).hexdigest())

    def cpu_ticks(self):
        return self.sys.cpu_ticks()

    def cpu_since(self, ticks):
        """CPU seconds of each node's process(es) since `ticks` (a node restarted since is
        left out)."""
        out = {}
        for n, t1 in self.sys.cpu_ticks().items():
            if t1 is not None and ticks.get(n) is not None and t1 >= ticks[n]:
                out[n] = round((t1 - ticks[n]) / CLK_TCK, 2)
        return out


def scenario_small(run):
    a = run.args
    first = run.folder(run.first)
    lat, per_node, scans, timeouts = [], {n: [] for n in run.others}, [], 0
    ticks = run.cpu_ticks()
    for k in range(a.small_n):
        rel = f"small-{k:04d}.bin"
        data = os.urandom(SMALL_SIZE)
        run.model[rel] = (len(data), hashlib.sha256(data).hexdigest())
        paths = {n: os.path.join(run.folder(n), rel) for n in run.others}
        if a.small_write == "rename":
            tmp = os.path.join(run.staging, f"small-{run.sys.name}-{k}.tmp")
            write_file(tmp, data)
            t0 = time.monotonic()
            os.rename(tmp, os.path.join(first, rel))
        else:
            t0 = time.monotonic()
            write_file(os.path.join(first, rel), data)
        scan = run.sys.after_write(rel)
        if scan is not None:
            scans.append(scan)
        done = {}
        deadline = t0 + a.small_timeout
        while len(done) < len(paths) and time.monotonic() < deadline:
            for n, p in paths.items():
                if n in done:
                    continue
                try:
                    with open(p, "rb") as f:
                        got = f.read(SMALL_SIZE + 1)
                except OSError:
                    continue
                if got == data:
                    done[n] = time.monotonic() - t0
            if len(done) < len(paths):
                time.sleep(0.002)
        if len(done) < len(paths):
            timeouts += 1
            lat.append(None)
            log(f"{run.sys.name} small: file {k} not on every node within {a.small_timeout} s")
        else:
            lat.append(max(done.values()))
            for n, v in done.items():
                per_node[n].append(v)
        if (k + 1) % 10 == 0:
            got = sorted(x for x in lat if x is not None)
            log(f"{run.sys.name} small: {k + 1}/{a.small_n}, median so far "
                f"{ms(percentile(got, 50))} ms")
        time.sleep(a.small_gap)
    s = sorted(x for x in lat if x is not None)
    out = {"files": a.small_n, "size_bytes": SMALL_SIZE, "write": a.small_write,
           "timeouts": timeouts, "timeout_s": a.small_timeout,
           "latency_ms": {"p50": ms(percentile(s, 50)), "p90": ms(percentile(s, 90)),
                          "p99": ms(percentile(s, 99)), "max": ms(s[-1]) if s else None,
                          "min": ms(s[0]) if s else None,
                          "mean": ms(sum(s) / len(s)) if s else None},
           "latency_ms_each": [ms(x) for x in lat],
           "per_node_p50_ms": {n: ms(percentile(sorted(v), 50)) for n, v in per_node.items()},
           "cpu_s_by_node": run.cpu_since(ticks)}
    if scans:
        out["forced_scan_request_ms"] = {k: ms(v) for k, v in
                                         (summarize(scans) or {}).items() if k != "n"}
    return out


def bulk_rel(i):
    return f"bulk/d{i // PER_DIR:03d}/f{i:06d}.bin"


def scenario_bulk(run):
    n = run.args.bulk_files
    datas = [os.urandom(BULK_SIZE) for _ in range(n)]
    ticks = run.cpu_ticks()
    t0 = time.monotonic()
    for i, data in enumerate(datas):
        run.write(bulk_rel(i), data)
    write_s = time.monotonic() - t0
    scan = run.sys.after_write("bulk")
    expected = {bulk_rel(i): run.model[bulk_rel(i)] for i in range(n)}
    w = wait_files({o: run.folder(o) for o in run.others}, expected, t0,
                   max(120.0, n * 0.06))
    out = {"files": n, "size_bytes": BULK_SIZE, "write_s": r3(write_s), **w,
           "files_per_s": round(n / w["all_s"], 1) if w["all_s"] else None,
           "cpu_s_by_node": run.cpu_since(ticks)}
    if scan is not None:
        out["forced_scan_request_s"] = r3(scan)
    if hasattr(run.sys, "cl"):
        out["sync_status_after"] = run.sys.status()
    log(f"{run.sys.name} bulk: {n} files everywhere in {w['all_s']} s "
        f"({out['files_per_s']} files/s)")
    return out


def staging_large(run):
    """The random source file (created once per run, hashed as written)."""
    path = os.path.join(run.staging, "large.bin")
    mb = run.args.large_mb
    meta = getattr(run.args, "_large_meta", None)
    if meta and meta[0] == path:
        return meta
    log(f"writing a {mb} MiB random file")
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(mb):
            chunk = os.urandom(MIB)
            h.update(chunk)
            f.write(chunk)
    run.args._large_meta = (path, mb * MIB, h.hexdigest())
    return run.args._large_meta


def concurrent_direct_copies(src, directory, n):
    """Seconds for n copies of `src` written at once into `directory`, each with direct I/O
    and fdatasync (dd), as n receivers sharing this disk must at least do; None if dd failed
    (a filesystem without direct I/O)."""
    dsts = [os.path.join(directory, f"direct{i}.bin") for i in range(n)]
    subprocess.run(["sync"], check=True, timeout=600)
    t = time.monotonic()
    procs = [subprocess.Popen(["dd", f"if={src}", f"of={d}", "bs=1M", "oflag=direct",
                               "conv=fdatasync", "status=none"], stderr=subprocess.PIPE)
             for d in dsts]
    try:
        codes = [p.wait(timeout=1200) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    elapsed = time.monotonic() - t
    for d in dsts:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(d)
    return elapsed if all(c == 0 for c in codes) else None


def scenario_large(run):
    src, size, digest = staging_large(run)
    cp_dir = os.path.join(run.workdir, run.sys.name + "-cp")
    os.makedirs(cp_dir, exist_ok=True)
    dst = os.path.join(cp_dir, "large.bin")
    two_copies = concurrent_direct_copies(src, cp_dir, len(run.others))
    if two_copies is not None:
        log(f"{run.sys.name} large: {len(run.others)} direct copies at once: {two_copies:.2f} s")
    subprocess.run(["sync"], check=True, timeout=600)
    t = time.monotonic()
    subprocess.run(["cp", src, dst], check=True, timeout=1200)
    t_cp = time.monotonic() - t
    subprocess.run(["sync"], check=True, timeout=1200)
    cp_sync = time.monotonic() - t
    log(f"{run.sys.name} large: cp + sync of {size >> 20} MiB: {cp_sync:.2f} s")
    before = run.sys.status() if hasattr(run.sys, "cl") else None
    rel = "large.bin"
    ticks = run.cpu_ticks()
    t0 = time.monotonic()
    os.rename(dst, os.path.join(run.folder(run.first), rel))
    run.model[rel] = (size, digest)
    scan = run.sys.after_write(rel)
    w = wait_files({o: run.folder(o) for o in run.others}, {rel: (size, digest)}, t0,
                   max(120.0, size / MIB * 0.5))
    out = {"size_mib": size >> 20, "cp_s": r3(t_cp), "cp_plus_sync_s": r3(cp_sync), **w,
           "ratio_to_cp_plus_sync": round(w["all_s"] / cp_sync, 2) if w["all_s"] else None,
           "direct_copies_at_once_s": r3(two_copies) if two_copies is not None else None,
           "ratio_to_direct_copies_at_once": round(w["all_s"] / two_copies, 2)
           if w["all_s"] and two_copies else None,
           "mib_per_s": round(size / MIB / w["all_s"], 1) if w["all_s"] else None,
           "verified_sha256": not any(w["missing_by_node"].values()),
           "cpu_s_by_node": run.cpu_since(ticks)}
    if scan is not None:
        out["forced_scan_request_s"] = r3(scan)
    if before is not None:
        after = run.sys.status()
        out["fetched_bytes_by_node"] = {
            n: (after.get(n, {}).get("fetched_bytes_total") or 0)
            - (before.get(n, {}).get("fetched_bytes_total") or 0) for n in run.others}
        out["reused_bytes_by_node"] = {
            n: (after.get(n, {}).get("reused_bytes_total") or 0)
            - (before.get(n, {}).get("reused_bytes_total") or 0) for n in run.others}
    log(f"{run.sys.name} large: on both others in {w['all_s']} s "
        f"(x{out['ratio_to_cp_plus_sync']} of cp+sync)")
    return out


def ensure_bulk(run, n):
    """At least n bulk files on every node (the catch-up scenario alone): writes the missing."""
    missing = [i for i in range(n) if bulk_rel(i) not in run.model]
    if not missing:
        return None
    t0 = time.monotonic()
    for i in missing:
        run.write(bulk_rel(i), os.urandom(BULK_SIZE))
    run.sys.after_write("bulk")
    w = wait_files({o: run.folder(o) for o in run.others},
                   {bulk_rel(i): run.model[bulk_rel(i)] for i in missing}, t0,
                   max(120.0, len(missing) * 0.06))
    if w["all_s"] is None:
        raise RuntimeError(f"catchup setup: {len(missing)} files not everywhere: {w}")
    return {"files_written_first": len(missing), "seconds": w["all_s"]}


def scenario_catchup(run):
    n = run.args.catchup_files
    out = {"files": n, "size_bytes": BULK_SIZE}
    setup = ensure_bulk(run, n)
    if setup:
        out["setup"] = setup
    third = run.sys.nodes[2]
    second = run.sys.nodes[1]
    rels = [bulk_rel(i) for i in range(n)]
    old = snapshot_old({second: run.folder(second), third: run.folder(third)}, rels)
    out["stop"] = run.sys.stop_node(third)
    log(f"{run.sys.name} catchup: {third} stopped; rewriting {n} files on {run.first}")
    t0 = time.monotonic()
    for rel in rels:
        run.write(rel, os.urandom(BULK_SIZE))
    out["write_s"] = r3(time.monotonic() - t0)
    scan = run.sys.after_write("bulk")
    if scan is not None:
        out["forced_scan_request_s"] = r3(scan)
    expected = {rel: run.model[rel] for rel in rels}
    w2 = wait_files({second: run.folder(second)}, expected, t0, max(120.0, n * 0.06),
                    old={second: old[second]})
    out["while_down_on_" + second] = w2
    if w2["all_s"] is None:
        log(f"{run.sys.name} catchup: {second} did not get the changes; restarting anyway")
    time.sleep(0.5)
    t_launch = run.sys.start_node(third)
    w3 = wait_files({third: run.folder(third)}, expected, t_launch, max(120.0, n * 0.06),
                    old={third: old[third]})
    out["restarted_node"] = third
    out["catchup"] = w3
    out["catchup_s"] = w3["all_s"]
    log(f"{run.sys.name} catchup: {third} had all {n} changes {w3['all_s']} s after its launch")
    if hasattr(run.sys, "cl"):
        healthy = run.sys.cl.wait_healthy(30.0)
        out["cluster_whole_after_s"] = r3(healthy)
        out["sync_status_after"] = run.sys.status()
    else:
        with contextlib.suppress(RuntimeError):
            run.sys.wait_connected(30.0)
    return out


def scenario_idle(run):
    a = run.args
    total = a.idle_files
    have = len(run.model)
    add = max(0, total - have)
    out = {"folder_files": max(total, have), "files_added": add, "size_bytes_added": IDLE_SIZE}
    if add:
        t0 = time.monotonic()
        rels = []
        for j in range(add):
            rel = f"idle/d{j // PER_DIR:03d}/f{j:06d}.bin"
            run.write(rel, os.urandom(IDLE_SIZE))
            rels.append(rel)
        out["fill_write_s"] = r3(time.monotonic() - t0)
        run.sys.after_write("idle")
        w = wait_files({o: run.folder(o) for o in run.others}, {r: run.model[r] for r in rels},
                       t0, a.fill_timeout)
        out["fill"] = w
        out["fill_files_per_s"] = round(add / w["all_s"], 1) if w["all_s"] else None
        log(f"{run.sys.name} idle: {add} files added everywhere in {w['all_s']} s")
    t = time.monotonic()
    settled = run.sys.wait_settled(max(60.0, total * 0.001))
    out["settled"] = settled
    out["settle_wait_s"] = r3(time.monotonic() - t)
    time.sleep(a.settle_seconds)
    pids = run.sys.pids()
    t0 = time.monotonic()
    ticks = run.sys.cpu_ticks()
    m0 = machine_busy_s()
    log(f"{run.sys.name} idle: measuring CPU for {a.idle_seconds} s")
    time.sleep(a.idle_seconds)
    wall = time.monotonic() - t0
    cpu = {}
    for n, t1 in run.sys.cpu_ticks().items():
        if t1 is not None and ticks.get(n) is not None:
            cpu[n] = round(100.0 * (t1 - ticks[n]) / CLK_TCK / wall, 2)
    out.update({"seconds": r3(wall), "cpu_pct_of_one_core": cpu,
                "cpu_pct_max": max(cpu.values()) if cpu else None,
                "cpu_pct_mean": round(sum(cpu.values()) / len(cpu), 2) if cpu else None,
                "tick_resolution_pct": round(100.0 / CLK_TCK / wall, 2),
                "rss_mb": {n: round((read_status_kb(p, "VmRSS") or 0) / 1024, 1)
                           for n, p in pids.items()},
                "machine_busy_pct_of_one_core": round(100.0 * (machine_busy_s() - m0) / wall, 1)})
    if hasattr(run.sys, "cl"):
        out["sync_status_after"] = run.sys.status()
    log(f"{run.sys.name} idle: CPU % of a core {cpu}")
    return out


def final_check(run):
    """Every node's whole folder against what was written."""
    out = {"files_expected": len(run.model)}
    bad = {}
    for n in run.sys.nodes:
        tree, other = folder_tree(run.folder(n))
        diff = [r for r in set(tree) | set(run.model) if tree.get(r) != run.model.get(r)]
        if diff or other:
            bad[n] = {"differing": len(diff), "examples": sorted(diff)[:5], "other": other[:5]}
    out["identical_to_written"] = not bad
    if bad:
        out["problems"] = bad
    return out


SCENARIO_FNS = {"small": scenario_small, "bulk": scenario_bulk, "large": scenario_large,
                "catchup": scenario_catchup, "idle": scenario_idle}


def run_scenario(out, name, fn, run):
    t0 = time.monotonic()
    m0, load0 = machine_busy_s(), loadavg()
    try:
        run.sys.check_alive()
        row = fn(run)
    except (RuntimeError, OSError, KeyError, TypeError, ValueError, AttributeError,
            subprocess.SubprocessError) as e:
        row = {"error": f"{type(e).__name__}: {e}"}
        log(f"{run.sys.name} {name}: error: {e}")
    wall = time.monotonic() - t0
    row["scenario_seconds"] = round(wall, 1)
    row["machine_during"] = {"busy_cpu_pct_of_one_core":
                             round(100.0 * (machine_busy_s() - m0) / wall, 1),
                             "loadavg_before": load0, "loadavg_after": loadavg()}
    out[name] = row


def run_system(args, name, workdir, staging, want, out):
    """Runs the scenarios of `want` on system `name`, filling `out` as they end (so that an
    interrupted run still reports what it measured)."""
    directory = os.path.join(workdir, name)
    os.makedirs(directory)
    system = SynodSystem(args, directory) if name == "synod" else \
        SyncthingSystem(args, directory, name)
    try:
        log(f"== {name}")
        out["setup"] = system.start()
        run = Run(args, system, workdir, staging)
        for sc in SCENARIOS:
            if sc in want:
                log(f"== {name} {sc}")
                run_scenario(out, sc, SCENARIO_FNS[sc], run)
        with contextlib.suppress(RuntimeError):
            system.wait_settled(30.0)
        out["final"] = final_check(run)
        log(f"{name}: final folders identical to what was written: "
            f"{out['final']['identical_to_written']}")
    except Interrupted:
        raise
    except Exception as e:  # noqa: BLE001 - reported, the other systems still run
        out["error"] = f"{type(e).__name__}: {e}"
        log(f"{name}: error: {out['error']}")
    finally:
        system.close()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
            shutil.rmtree(os.path.join(workdir, name + "-cp"), ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Goals

def goals(result, args, sizes_full):
    syn = result.get("synod", {})
    g = {"sizes": "the issue's" if sizes_full else "reduced (--quick or size flags)"}

    def others(path):
        vals = {}
        for s in ("syncthing_default", "syncthing_fast"):
            row = result.get(s, {})
            for k in path:
                row = (row or {}).get(k) if isinstance(row, dict) else None
            if row is not None:
                vals[s] = row
        return vals

    lat = (syn.get("small") or {}).get("latency_ms") or {}
    if lat:
        none_lost = (syn["small"].get("timeouts") == 0)
        g["small_file_p50_under_20ms"] = {"synod_ms": lat.get("p50"),
                                          "met": lat.get("p50") is not None and lat["p50"] < 20
                                          and none_lost,
                                          "syncthing_ms": others(["small", "latency_ms", "p50"])}
        g["small_file_p99_under_100ms"] = {"synod_ms": lat.get("p99"),
                                           "met": lat.get("p99") is not None and lat["p99"] < 100
                                           and none_lost,
                                           "syncthing_ms": others(["small", "latency_ms", "p99"])}
    bu = syn.get("bulk") or {}
    if "files" in bu:
        g["bulk_10000_files_under_10s_at_least_1000_per_s"] = {
            "files": bu["files"], "synod_s": bu.get("all_s"),
            "synod_files_per_s": bu.get("files_per_s"),
            "met": bu.get("files_per_s") is not None and bu["files_per_s"] >= 1000
            and bu["all_s"] < 10.0 * bu["files"] / 10_000,
            "syncthing_files_per_s": others(["bulk", "files_per_s"])}
    la = syn.get("large") or {}
    if "size_mib" in la:
        g["large_file_within_3x_cp_plus_sync"] = {
            "size_mib": la["size_mib"], "synod_ratio": la.get("ratio_to_cp_plus_sync"),
            "met": la.get("ratio_to_cp_plus_sync") is not None
            and la["ratio_to_cp_plus_sync"] <= 3.0 and la.get("verified_sha256") is True,
            "syncthing_ratio": others(["large", "ratio_to_cp_plus_sync"]),
            "synod_ratio_to_direct_copies_at_once": la.get("ratio_to_direct_copies_at_once")}
    ca = syn.get("catchup") or {}
    if "files" in ca:
        g["catchup_10000_changed_under_15s"] = {
            "files": ca["files"], "synod_s": ca.get("catchup_s"),
            "met": ca.get("catchup_s") is not None and ca["catchup_s"] < 15.0,
            "syncthing_s": others(["catchup", "catchup_s"])}
    idle = syn.get("idle") or {}
    if "cpu_pct_max" in idle:
        g["idle_under_1pct_of_a_core"] = {
            "folder_files": idle.get("folder_files"), "synod_max_pct": idle.get("cpu_pct_max"),
            "met": idle.get("cpu_pct_max") is not None and idle["cpu_pct_max"] < 1.0,
            "syncthing_max_pct": others(["idle", "cpu_pct_max"])}
    return g


def disk_info(path):
    info = {}
    with contextlib.suppress(OSError):
        du = shutil.disk_usage(path)
        info["free_gib"] = round(du.free / (1 << 30), 1)
    best = ""
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        real = os.path.realpath(path)
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best = mnt
                info.update({"device": dev, "mount": mnt, "fstype": fstype})
    for name in ("max_user_watches", "max_user_instances"):
        with contextlib.suppress(OSError), open(f"/proc/sys/fs/inotify/{name}") as f:
            info[f"inotify_{name}"] = int(f.read())
    return info


def copy_binary(src, dst):
    """A copy of the synod binary (a rebuild may replace it under us: one retry)."""
    for attempt in range(2):
        try:
            before = binary_identity(src)
            shutil.copy2(src, dst)
            if "error" not in before and binary_identity(dst) == before:
                return before
        except OSError as e:
            log(f"copying {src} failed ({e})")
        if attempt == 0:
            log("the binary changed or vanished while copied; retrying in 20 s")
            time.sleep(20.0)
    raise RuntimeError(f"could not copy {src}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="reduced sizes: 10 small files, 1,000 bulk, 100 MiB, 1,000 catch-up, "
                        "10,000-file idle folder for 10 s")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=",".join(SYSTEMS))
    p.add_argument("--only", default=",".join(SCENARIOS), help=",".join(SCENARIOS))
    p.add_argument("--synod", dest="binary", default=DEFAULT_BINARY, help="build/synod")
    p.add_argument("--syncthing", default="syncthing", help="the syncthing binary")
    p.add_argument("--no-install", action="store_true",
                   help="do not apt-get install syncthing when it is missing")
    p.add_argument("--small-n", type=int, help="small: files (50; quick 10)")
    p.add_argument("--small-write", choices=["direct", "rename"], default="direct",
                   help="small: open/write/close in the folder, or write beside it and rename in")
    p.add_argument("--small-timeout", type=float, default=30.0, help="small: bound per file, s")
    p.add_argument("--small-gap", type=float, default=0.2, help="small: pause between files, s")
    p.add_argument("--bulk-files", type=int, help="bulk: files of 10 KB (10000; quick 1000)")
    p.add_argument("--large-mb", type=int, help="large: MiB (1024; quick 100)")
    p.add_argument("--catchup-files", type=int, help="catchup: files changed (10000; quick 1000)")
    p.add_argument("--idle-files", type=int, help="idle: files in the folder (100000; quick 10000)")
    p.add_argument("--idle-seconds", type=float, help="idle: CPU window, s (60; quick 10)")
    p.add_argument("--settle-seconds", type=float, help="idle: wait after in sync, s (5; quick 3)")
    p.add_argument("--fill-timeout", type=float, help="idle: bound on syncing the added files, s")
    p.add_argument("--keep", action="store_true", help="keep logs, folders and data dirs")
    p.add_argument("--workdir", default=None, help="parent of the temporary work dir")
    args = p.parse_args()
    sizes = QUICK if args.quick else FULL
    for k, v in sizes.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.fill_timeout is None:
        args.fill_timeout = max(300.0, args.idle_files * 0.01)
    sizes_full = all(getattr(args, k) == v for k, v in FULL.items() if k != "settle_seconds")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    want = [s.strip() for s in args.only.split(",") if s.strip()]
    if [s for s in systems if s not in SYSTEMS] or [s for s in want if s not in SCENARIOS]:
        p.error(f"systems are {SYSTEMS}, scenarios {SCENARIOS}")
    if not (1 <= args.small_n <= 10_000 and 1 <= args.bulk_files <= 1_000_000
            and 1 <= args.large_mb <= 65_536 and 1 <= args.catchup_files <= 1_000_000
            and 1 <= args.idle_files <= 2_000_000 and 0 < args.idle_seconds <= 3600
            and 0 < args.small_timeout <= 600 and 0 <= args.small_gap <= 60
            and 0 < args.fill_timeout <= 36_000):
        p.error("argument out of range")
    if "synod" in systems and not os.access(args.binary, os.X_OK):
        p.error(f"{args.binary} is not executable (build first)")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    workdir = tempfile.mkdtemp(prefix="synod-filesync-bench-", dir=args.workdir)
    staging = os.path.join(workdir, "staging")
    os.makedirs(staging)
    log(f"work dir {workdir}")
    result = {"benchmark": "filesync", "machine": {**machine_info(), "disk": disk_info(workdir)},
              "settings": {k: getattr(args, k) for k in
                           ("quick", "small_n", "small_write", "small_timeout", "small_gap",
                            "bulk_files", "large_mb", "catchup_files", "idle_files",
                            "idle_seconds", "settle_seconds", "fill_timeout")},
              "systems": systems, "scenarios": want}
    source_binary = args.binary
    binary_before = binary_identity(source_binary)
    try:
        if "synod" in systems:
            os.makedirs(os.path.join(workdir, "bin"))
            args.binary = os.path.join(workdir, "bin", "synod")
            result["synod_binary"] = {"path": source_binary,
                                      **copy_binary(source_binary, args.binary)}
        if any(s.startswith("syncthing") for s in systems):
            why = syncthing_available(args)
            if why:
                result["syncthing_skipped"] = why
                log(f"syncthing skipped: {why}")
                systems = [s for s in systems if not s.startswith("syncthing")]
            else:
                result["syncthing_version"] = syncthing_version(args.syncthing)
        for name in systems:
            run_system(args, name, workdir, staging, want, result.setdefault(name, {}))
    except Exception as e:  # report, still print the JSON gathered so far
        record_failure(result, e)
    finally:
        with signals_ignored():
            stop_processes([x for x in PROCS if x[1].poll() is None])
        finish_result(result, source_binary, binary_before, workdir, args.keep,
                      "logs, folders and data dirs", agent_exits_abnormal=ABNORMAL_EXITS,
                      log_problems=LOG_PROBLEMS, http_errors=HTTP_ERRORS)
    result["goals"] = goals(result, args, sizes_full)
    print(json.dumps(ordered(result, ["benchmark", "goals", "synod", "syncthing_default",
                                      "syncthing_fast", "machine", "settings"]), indent=2))
    if "interrupted" in result:
        return 130
    failed = "error" in result or any("error" in (result.get(s) or {}) for s in SYSTEMS)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
