#!/usr/bin/env python3
"""Cluster-clock benchmark: Synod's /v1/clock next to chrony 4 (run by hand, not by tests).

Loopback only. The same clock offsets are injected with libfaketime (FAKETIME="+0.25" and
"-1.5", FAKETIME_DONT_FAKE_MONOTONIC=1) into both systems, and both run side by side in one run
(at the same time by default, --sequential for one after the other):

  synod   3 agents on 127.68.1.2-4 (--bootstrap-expect 3, --beacon-interval 200ms, broadcast to
          127.255.255.255 on a random free UDP port). The master clock is the lowest address,
          127.68.1.2, unshifted; 127.68.1.3 runs at +0.25 s, 127.68.1.4 at -1.5 s. Each
          follower's GET /v1/clock is sampled every 0.5 s for 60 s: absolute error of offset_ms
          (master minus local) against the truth (-250 ms and +1500 ms), the fraction of samples
          whose truth lies within +-error_ms (goal >= 99 %), and the time from the agent's start
          to its first estimate within 1 ms of the truth (polled every 50 ms; goal < 2 s).
  chrony  chronyd -x (never touches the system clock; configs by absolute path in the temp dir,
          never the stock config): a server under faketime at +0.25 s (127.68.2.1) and one at
          -1.5 s (127.68.3.1), each with the nots shim (kernel packet timestamps refused, so
          the server sees the faked time), and an unshifted client for each (minpoll -2
          maxpoll -2, iburst; kernel timestamps as usual, --chrony-client-nots to shim it
          too). `chronyc -c tracking` sampled the same way; chrony's CSV "System time" is NTP
          time minus local time (positive = local clock slow), the same sign as Synod's
          offset_ms, so the truth is +250 ms and -1500 ms.

Goal: Synod's median absolute error no worse than chrony's.
Also: a calibration of the injected offsets (a Python child under the same faketime settings
reads CLOCK_REALTIME - CLOCK_MONOTONIC against the benchmark's own), so the "truth" is checked.

Prints one JSON object to stdout; progress goes to stderr. Python 3 standard library (plus
gcc for the shim, chronyd/chronyc, libfaketime). Every process started is stopped (SIGTERM,
then SIGKILL) in a finally block.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import (record_failure, keep_or_remove, ordered, can_bind, free_udp_port, tcp_port_free, log, tail, _on_signal, machine_info, percentile,
                      binary_identity, CLK_TCK, signals_ignored, read_cpu_ticks, self_cpu_s,
                      machine_busy_s, loadavg, get_json, log_problems, start_logged,
                      stop_processes)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BINARY = os.path.join(os.path.dirname(HERE), "build", "synod")
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
API_PORT = 7400
RAFT_PORT = 7401
PEER_PORT = 7402

SYNOD_NET = "127.68.1."                                 # .2 master, .3 +0.25 s, .4 -1.5 s
CHRONY_NETS = {"+0.25": "127.68.2.", "-1.5": "127.68.3."}  # .1 server (shifted), .2 client
SHIFTS = [("+0.25", 0.25), ("-1.5", -1.5)]

# The lab's shim (shared/lab/nots.c): refuses SO_TIMESTAMP* so chronyd falls back to user-space
# timestamps, which libfaketime shifts. Compiled into the temp dir.
NOTS_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>
int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
  static int (*real)(int, int, int, const void *, socklen_t);
  if (!real) real = dlsym(RTLD_NEXT, "setsockopt");
  /* SO_TIMESTAMP(NS|ING) old 29/35/37 and new 63/64/65 */
  if (level == SOL_SOCKET && (name == 29 || name == 35 || name == 37 || name == 63 ||
                              name == 64 || name == 65)) {
    errno = ENOPROTOOPT;
    return -1;
  }
  return real(fd, level, name, val, len);
}
"""

# Run under faketime: the best (narrowest) CLOCK_REALTIME - CLOCK_MONOTONIC reading, in ns.
CALIBRATE_PY = r"""
import time
best = None
for _ in range(3000):
    a = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    r = time.clock_gettime_ns(time.CLOCK_REALTIME)
    b = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    if best is None or b - a < best[0]:
        best = (b - a, r - (a + b) // 2)
print(best[1], best[0])
"""


ERRORS = {}          # error kind -> count (HTTP polls, chronyc calls)
ABNORMAL_EXITS = []  # processes that exited non-zero or died before being stopped
LOG_PROBLEMS = {}    # label -> warning/error lines of Synod agent logs
_errors_lock = threading.Lock()


def count_error(kind):
    with _errors_lock:
        ERRORS[kind] = ERRORS.get(kind, 0) + 1


# ---------------------------------------------------------------------------------------------
# Helpers



def udp_port_bound(ip, port):
    return not can_bind(ip, port, socket.SOCK_DGRAM)




def http_get_json(ip, path, timeout=0.4):
    return get_json(ip, API_PORT, path, timeout, lambda kind: count_error(f"GET {path} {kind}"))


def stats(values, digits=6):
    """n, median, p99 (nearest rank), max, mean, min of a list of numbers (None dropped)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    s = sorted(values)
    n = len(s)
    return {
        "n": n,
        "median": round(s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2, digits),
        "p99": round(percentile(s, 99), digits),
        "max": round(s[-1], digits),
        "mean": round(sum(s) / n, digits),
        "min": round(s[0], digits),
    }


# ---------------------------------------------------------------------------------------------
# Processes

class Proc:
    def __init__(self, label, popen, log_path):
        self.label = label
        self.popen = popen
        self.log_path = log_path
        self.started = time.monotonic()
        self.cpu0 = None


class Procs:
    """Every process this benchmark starts; stop() ends them all (SIGTERM, then SIGKILL)."""

    def __init__(self):
        self.procs = []

    def start(self, label, cmd, log_path, env=None):
        popen, t, _wall = start_logged(cmd, log_path, env=env)
        p = Proc(label, popen, log_path)
        p.started = t
        self.procs.append(p)
        return p

    def dead(self, procs=None):
        return [p for p in (procs or self.procs) if p.popen.poll() is not None]

    def stop(self, procs=None):
        with signals_ignored():
            targets = list(procs) if procs is not None else list(self.procs)
            early = [p for p in targets if p.popen.poll() is not None]
            running = [p for p in targets if p.popen.poll() is None]
            stop_processes([(p.label, p.popen) for p in running], 8.0)
            for p in targets:
                rc = p.popen.returncode
                # chronyd exits 0 on SIGTERM; the agent too.
                if rc != 0 or p in early:
                    ABNORMAL_EXITS.append({"process": p.label, "pid": p.popen.pid,
                                           "returncode": rc, "died_before_stop": p in early,
                                           "log_tail": tail(p.log_path)})
                if p in self.procs:
                    self.procs.remove(p)


def scan_log_problems(label, paths):
    found = log_problems(paths)
    if found:
        LOG_PROBLEMS[label] = found


def faketime_env(shift_text, extra_preload=None):
    env = dict(os.environ)
    preload = [FAKETIME_LIB] + ([extra_preload] if extra_preload else [])
    env.update({"LD_PRELOAD": ":".join(preload), "FAKETIME": shift_text,
                "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    return env


# ---------------------------------------------------------------------------------------------
# Sampling: one thread per measured node, same schedule for Synod and chrony.

class Sampler(threading.Thread):
    """Polls read_fn every `interval` s for `duration` s from `t_start` (the grid; the series
    the statistics use), and every `fast` s in between until the first reading within
    `converge_ms` of the truth (for the time-to-first-good-estimate)."""

    def __init__(self, name, read_fn, truth_ms, t_start, duration, interval, fast, converge_ms,
                 stop_event):
        super().__init__(name=name, daemon=True)
        self.read_fn = read_fn
        self.truth_ms = truth_ms
        self.t_start = t_start
        self.duration = duration
        self.interval = interval
        self.fast = fast
        self.converge_ms = converge_ms
        self.stop_event = stop_event
        self.grid = []          # rows
        self.first_answer = None
        self.first_estimate = None
        self.first_good = None  # seconds after start of the first reading within converge_ms
        self.last_not_good = None  # the reading before it (lower bound)
        self.fast_polls = 0
        self.read_durations = []
        self.error = None

    def _read(self):
        t0 = time.monotonic()
        row = self.read_fn()
        t1 = time.monotonic()
        self.read_durations.append(t1 - t0)
        rel = (t0 + t1) / 2 - self.t_start
        if row is not None and self.first_answer is None:
            self.first_answer = rel
        off = row.get("offset_ms") if row else None
        if off is not None:
            if self.first_estimate is None:
                self.first_estimate = rel
            if self.first_good is None:
                if abs(off - self.truth_ms) <= self.converge_ms:
                    self.first_good = rel
                else:
                    self.last_not_good = rel
        elif self.first_good is None:
            self.last_not_good = rel
        return rel, row

    def run(self):
        try:
            k = 0
            while not self.stop_event.is_set() and k * self.interval <= self.duration + 1e-9:
                target = self.t_start + k * self.interval
                now = time.monotonic()
                if self.first_good is None and now + self.fast < target:
                    self._read()
                    self.fast_polls += 1
                    time.sleep(max(0.0, min(self.fast, target - time.monotonic())))
                    continue
                if target > now:
                    self.stop_event.wait(target - now)
                    if self.stop_event.is_set():
                        break
                rel, row = self._read()
                r = {"t_s": round(rel, 3)}
                if row:
                    r.update(row)
                self.grid.append(r)
                k += 1
        except Exception as e:  # reported, the other samplers go on
            self.error = f"{type(e).__name__}: {e}"

    def summary(self):
        truth = self.truth_ms
        est = [r for r in self.grid if r.get("offset_ms") is not None]
        errs = [abs(r["offset_ms"] - truth) for r in est]
        signed = [r["offset_ms"] - truth for r in est]
        bounded = [r for r in est if r.get("error_ms") is not None]
        inside = [r for r in bounded if abs(r["offset_ms"] - truth) <= r["error_ms"]]
        steady = [abs(r["offset_ms"] - truth) for r in est if r["t_s"] >= 10.0]
        worst = sorted(est, key=lambda r: -abs(r["offset_ms"] - truth))[:3]
        return {
            "truth_offset_ms": truth,
            "grid_samples": len(self.grid),
            "samples_with_estimate": len(est),
            "samples_without_estimate": len(self.grid) - len(est),
            "abs_error_ms": stats(errs),
            "abs_error_ms_from_10s": stats(steady),
            "signed_error_ms": stats(signed),
            "truth_within_error_bound": {
                "inside": len(inside), "of": len(bounded),
                "fraction": round(len(inside) / len(bounded), 4) if bounded else None,
                "error_bound_ms": stats([r["error_ms"] for r in bounded]),
                "outside_samples": [r for r in bounded if r not in inside][:5],
            },
            "first_answer_s": _r3(self.first_answer),
            "first_estimate_s": _r3(self.first_estimate),
            "first_within_1ms_s": _r3(self.first_good),
            "first_within_1ms_lower_bound_s": _r3(self.last_not_good)
            if self.first_good is not None else None,
            "fast_polls": self.fast_polls,
            "read_duration_ms": stats([d * 1e3 for d in self.read_durations], 3),
            "worst_samples": worst,
            "sampler_error": self.error,
            "_abs_errors": errs,  # for the pooled figures; removed before printing
            "_abs_errors_from_10s": steady,
        }


def _r3(x):
    return None if x is None else round(x, 3)


# ---------------------------------------------------------------------------------------------
# Faketime calibration

def calibrate(shift_text):
    """Injected offset as measured: (child REALTIME - MONOTONIC) - (ours), best of a few."""
    best = None
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", CALIBRATE_PY], env=faketime_env(shift_text),
                             capture_output=True, text=True, timeout=20)
        child, gap = (int(x) for x in out.stdout.split())
        mine = None
        for _ in range(3000):
            a = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            r = time.clock_gettime_ns(time.CLOCK_REALTIME)
            b = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            if mine is None or b - a < mine[0]:
                mine = (b - a, r - (a + b) // 2)
        diff_ns = child - mine[1]
        if best is None or gap + mine[0] < best[1]:
            best = (diff_ns, gap + mine[0])
    nominal_ns = round(float(shift_text) * 1e9)
    return {"faketime": shift_text, "measured_offset_ms": round(best[0] / 1e6, 6),
            "deviation_from_nominal_us": round((best[0] - nominal_ns) / 1e3, 3),
            "reading_uncertainty_us": round(best[1] / 1e3, 3)}


# ---------------------------------------------------------------------------------------------
# Synod

def synod_start(args, workdir, procs):
    d = os.path.join(workdir, "synod")
    os.makedirs(d, exist_ok=True)
    port = free_udp_port()
    nodes = [("m", SYNOD_NET + "2", None)] + [
        (f"f{txt.replace('+', 'p').replace('-', 'm').replace('.', '_')}", SYNOD_NET + str(i + 3),
         txt) for i, (txt, _s) in enumerate(SHIFTS)]
    for _name, ip, _shift in nodes:
        for p in (API_PORT, RAFT_PORT, PEER_PORT):
            if not tcp_port_free(ip, p):
                raise RuntimeError(f"{ip}:{p} in use (another agent running?)")
    started = []
    for name, ip, shift in nodes:
        data = os.path.join(d, name)
        os.makedirs(data, exist_ok=True)
        cmd = [args.binary, "agent", "--name", name, "--bind", ip, "--data-dir", data,
               "--broadcast-port", str(port), "--beacon-interval", "200ms",
               "--bootstrap-expect", "3", "--master-timeout", "60s", "--log-level", "info"]
        if args.cluster_key_file:
            cmd += ["--cluster-key-file", os.path.abspath(args.cluster_key_file)]
        env = faketime_env(shift) if shift else None
        started.append((name, ip, shift, procs.start(f"synod {name} {ip}", cmd,
                                                     os.path.join(d, f"{name}.log"), env)))
    log(f"synod: 3 agents on {SYNOD_NET}2-4 (master .2; .3 at +0.25 s, .4 at -1.5 s), "
        f"broadcast port {port}")
    return port, started


def synod_reader(ip, master_ip, seen_masters, t_start, changes):
    """Reads GET /v1/clock of one follower; `changes` collects the masters it followed, in
    order, with the first time (s after the agent's start) each was seen."""
    def read():
        tb = time.time()
        t_mono = time.monotonic()
        j = http_get_json(ip, "/v1/clock", 0.4)
        ta = time.time()
        if j is None:
            return None
        m = j.get("master") or {}
        if m.get("ip"):
            seen_masters[m["ip"]] = seen_masters.get(m["ip"], 0) + 1
        cur = m.get("ip")
        if not changes or changes[-1]["master_ip"] != cur:
            changes.append({"t_s": round(t_mono - t_start, 3), "master_ip": cur,
                            "is_master": j.get("is_master"), "offset_ms": j.get("offset_ms")})
        row = {"offset_ms": j.get("offset_ms"), "error_ms": j.get("error_ms"),
               "drift_ppm": j.get("drift_ppm"), "last_sync_age_ms": j.get("last_sync_age_ms"),
               "synced": j.get("synced")}
        if m.get("ip") and m["ip"] != master_ip:
            row["master_ip"] = m["ip"]
        ct = j.get("cluster_time")
        if ct is not None and j.get("error_ms") is not None:
            # The benchmark is unshifted, like the master: the served cluster time must fall
            # within [before - error, after + error] of the request.
            e = j["error_ms"] / 1e3
            row["cluster_time_ok"] = (tb - e) <= ct <= (ta + e)
            if not row["cluster_time_ok"]:
                row["cluster_time_miss_ms"] = round(
                    1e3 * ((tb - e) - ct if ct < tb - e else ct - (ta + e)), 3)
        return row
    return read


def synod_result(samplers, started, master_view, seen_masters, cpu):
    out = {"method": "3 agents, master 127.68.1.2 unshifted; GET /v1/clock of each follower; "
                     "offset_ms = master minus local, so a follower at +s seconds has truth "
                     "-1000*s ms",
           "nodes": {name: {"ip": ip, "faketime": shift} for name, ip, shift, _p in started},
           "followers": {}}
    for txt, s in samplers:
        summ = s.summary()
        ct = [r for r in s.grid if "cluster_time_ok" in r]
        summ["cluster_time_check"] = {
            "ok": sum(1 for r in ct if r["cluster_time_ok"]), "of": len(ct),
            "misses": [r for r in ct if not r["cluster_time_ok"]][:3]}
        summ["drift_ppm"] = stats([r.get("drift_ppm") for r in s.grid], 3)
        summ["last_sync_age_ms"] = stats([r.get("last_sync_age_ms") for r in s.grid], 1)
        summ["faketime"] = txt
        out["followers"][txt] = summ
    out["master_seen_by_followers"] = seen_masters
    out["master_view"] = master_view
    out["cpu_pct_of_one_core"] = cpu
    return out


# ---------------------------------------------------------------------------------------------
# chrony

def chrony_prepare(workdir):
    """Paths of chronyd/chronyc and the compiled shim, or a reason why chrony cannot run."""
    chronyd = shutil.which("chronyd") or ("/usr/sbin/chronyd"
                                          if os.access("/usr/sbin/chronyd", os.X_OK) else None)
    chronyc = shutil.which("chronyc")
    if not chronyd or not chronyc:
        return None, "chronyd/chronyc not found (Debian: apt-get install chrony)"
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        return None, "no C compiler for the nots shim (apt-get install gcc)"
    src = os.path.join(workdir, "nots.c")
    so = os.path.join(workdir, "nots.so")
    with open(src, "w") as f:
        f.write(NOTS_C)
    r = subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-o", so, src, "-ldl"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return None, f"compiling the nots shim failed: {r.stderr.strip()[-300:]}"
    v = subprocess.run([chronyd, "-v"], capture_output=True, text=True, timeout=10)
    return {"chronyd": chronyd, "chronyc": chronyc, "nots": so,
            "version": (v.stdout or v.stderr).strip()}, None


def chrony_start(tools, workdir, procs, shift_text, client_shim=False):
    net = CHRONY_NETS[shift_text]
    label = "chrony" + shift_text.replace("+", "p").replace("-", "m").replace(".", "_")
    d = os.path.join(workdir, label)
    sockdir = os.path.join(d, "sock")
    os.makedirs(sockdir, mode=0o700, exist_ok=True)
    os.chmod(sockdir, 0o700)  # chronyd refuses a command socket dir others can write to
    server_ip, client_ip = net + "1", net + "2"
    port = free_udp_port(server_ip)
    server_conf = os.path.join(d, "server.conf")
    client_conf = os.path.join(d, "client.conf")
    with open(server_conf, "w") as f:
        f.write(f"port {port}\nbindaddress {server_ip}\nallow 127.0.0.0/8\nlocal stratum 5\n"
                f"cmdport 0\nbindcmdaddress {sockdir}/server.sock\npidfile {d}/server.pid\n")
    with open(client_conf, "w") as f:
        f.write(f"port 0\nserver {server_ip} port {port} iburst minpoll -2 maxpoll -2\n"
                f"bindacqaddress {client_ip}\ncmdport 0\nbindcmdaddress {sockdir}/client.sock\n"
                f"pidfile {d}/client.pid\n")
    base = [tools["chronyd"], "-4", "-x", "-d", "-u", "root", "-f"]
    server = procs.start(f"chronyd server {shift_text} {server_ip}:{port}", base + [server_conf],
                         os.path.join(d, "server.log"), faketime_env(shift_text, tools["nots"]))
    deadline = time.monotonic() + 5.0
    while not udp_port_bound(server_ip, port):
        if server.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"chronyd server {shift_text} did not come up: "
                               f"{tail(server.log_path)}")
        time.sleep(0.01)
    cenv = dict(os.environ)
    if client_shim:
        cenv["LD_PRELOAD"] = tools["nots"]
    client = procs.start(f"chronyd client of {shift_text} {client_ip}", base + [client_conf],
                         os.path.join(d, "client.log"), cenv)
    log(f"chrony {shift_text}: server {server_ip}:{port} (faketime {shift_text}, nots), "
        f"client {client_ip}")
    return {"server": server, "client": client, "sock": f"{sockdir}/client.sock",
            "server_ip": server_ip, "client_ip": client_ip, "port": port}


def chrony_reader(chronyc, sock):
    def read():
        try:
            r = subprocess.run([chronyc, "-h", sock, "-c", "tracking"], capture_output=True,
                               text=True, timeout=2.0)
        except subprocess.TimeoutExpired:
            count_error("chronyc timeout")
            return None
        if r.returncode != 0:
            count_error(f"chronyc rc {r.returncode}")
            return None
        f = r.stdout.strip().split(",")
        if len(f) < 14:
            count_error("chronyc unparsable")
            return None
        synced = f[0] != "00000000" and f[13] != "Not synchronised"
        row = {"synced": synced}
        if synced:
            # System time: NTP time minus local time, s (positive = local slow).
            row["offset_ms"] = float(f[4]) * 1e3
            # chrony's own maximum-error bound: root delay / 2 + root dispersion.
            row["error_ms"] = (float(f[10]) / 2 + float(f[11])) * 1e3
            row["last_offset_ms"] = float(f[5]) * 1e3
            row["freq_ppm"] = float(f[7])
        return row
    return read


# ---------------------------------------------------------------------------------------------

def cpu_pcts(procs, t0_ticks, wall):
    out = {}
    for p in procs:
        t1 = read_cpu_ticks(p.popen.pid)
        t0 = t0_ticks.get(p.label)
        if t0 is not None and t1 is not None and wall > 0:
            out[p.label] = round(100.0 * (t1 - t0) / CLK_TCK / wall, 2)
    return out


def run(args, workdir, result, procs):
    want = {args.only} if args.only else {"synod", "chrony"}
    if not os.path.exists(FAKETIME_LIB):
        raise RuntimeError(f"libfaketime not found at {FAKETIME_LIB} (apt-get install faketime)")

    result["faketime_calibration"] = [calibrate(txt) for txt, _s in SHIFTS]
    log("faketime calibration: " + ", ".join(
        f"{c['faketime']} -> {c['measured_offset_ms']} ms" for c in result["faketime_calibration"]))

    tools = None
    if "chrony" in want:
        tools, why = chrony_prepare(workdir)
        if tools is None:
            result["chrony"] = {"skipped": True, "reason": why}
            log(f"chrony skipped: {why}")
            want.discard("chrony")

    def phase(parts):
        stop = threading.Event()
        samplers = {}  # (system, shift) -> Sampler
        started_procs = []
        synod_started = None
        seen_masters = {}
        master_changes = {}  # shift -> masters a follower followed, in order
        chrony_pairs = {}
        if "synod" in parts:
            _port, synod_started = synod_start(args, workdir, procs)
            started_procs += [p for *_x, p in synod_started]
            master_ip = SYNOD_NET + "2"
            for name, ip, shift, p in synod_started:
                if shift is None:
                    continue
                truth = -float(shift) * 1e3
                master_changes[shift] = []
                samplers[("synod", shift)] = Sampler(
                    f"synod{shift}",
                    synod_reader(ip, master_ip, seen_masters, p.started, master_changes[shift]),
                    truth, p.started, args.seconds, args.interval, args.fast_interval, 1.0, stop)
        if "chrony" in parts:
            for txt, s in SHIFTS:
                pair = chrony_start(tools, workdir, procs, txt, args.chrony_client_nots)
                chrony_pairs[txt] = pair
                started_procs += [pair["server"], pair["client"]]
                samplers[("chrony", txt)] = Sampler(
                    f"chrony{txt}", chrony_reader(tools["chronyc"], pair["sock"]), s * 1e3,
                    pair["client"].started, args.seconds, args.interval, args.fast_interval, 1.0,
                    stop)
        ticks0 = {p.label: read_cpu_ticks(p.popen.pid) for p in started_procs}
        busy0, self0, w0 = machine_busy_s(), self_cpu_s(children=True), time.monotonic()
        for s in samplers.values():
            s.start()
        master_view = {"is_master": {}, "offset_ms": [], "polls": 0}
        # The main thread watches the processes and the master's own view, bounded by time.
        end = time.monotonic() + args.seconds + 5.0
        next_master = time.monotonic()
        try:
            while any(s.is_alive() for s in samplers.values()) and time.monotonic() < end + 10:
                dead = procs.dead(started_procs)
                if dead:
                    raise RuntimeError("died during the run: " + ", ".join(
                        f"{p.label} rc={p.popen.returncode} {tail(p.log_path, 3)}" for p in dead))
                if synod_started and time.monotonic() >= next_master:
                    j = http_get_json(SYNOD_NET + "2", "/v1/clock", 0.4)
                    master_view["polls"] += 1
                    if j is not None:
                        k = str(j.get("is_master"))
                        master_view["is_master"][k] = master_view["is_master"].get(k, 0) + 1
                        master_view["offset_ms"].append(j.get("offset_ms"))
                    next_master += 2.0
                time.sleep(0.1)
        finally:
            stop.set()
            for s in samplers.values():
                s.join(timeout=5.0)
        wall = time.monotonic() - w0
        machine = {"window_s": round(wall, 1),
                   "machine_cpu_pct_of_all_cores": round(
                       100.0 * (machine_busy_s() - busy0) / wall / os.cpu_count(), 1),
                   "benchmark_and_children_cpu_pct_of_one_core": round(
                       100.0 * (self_cpu_s(children=True) - self0) / wall, 1)}
        cpu = cpu_pcts(started_procs, ticks0, wall)
        machine["other_processes_cpu_pct_of_all_cores"] = round(
            machine["machine_cpu_pct_of_all_cores"]
            - sum(cpu.values()) / os.cpu_count()
            - machine["benchmark_and_children_cpu_pct_of_one_core"] / os.cpu_count(), 1)
        with contextlib.suppress(OSError):
            machine["loadavg_after"] = loadavg()
        if synod_started:
            mo = [x for x in master_view["offset_ms"] if x is not None]
            mv = {"polls": master_view["polls"], "is_master": master_view["is_master"],
                  "offset_ms": stats(mo)}
            result["synod"] = synod_result(
                [(txt, samplers[("synod", txt)]) for txt, _s in SHIFTS], synod_started, mv,
                seen_masters, {p.label: cpu.get(p.label) for *_x, p in synod_started})
            for txt, ch in master_changes.items():
                f = result["synod"]["followers"][txt]
                f["masters_followed"] = ch
                first_right = next((c["t_s"] for c in ch if c["master_ip"] == SYNOD_NET + "2"),
                                   None)
                f["first_following_127.68.1.2_s"] = first_right
                if first_right is not None and f["first_within_1ms_s"] is not None:
                    f["within_1ms_after_following_it_s"] = round(
                        f["first_within_1ms_s"] - first_right, 3)
            result["synod"]["machine_during_part"] = machine
            procs.stop([p for *_x, p in synod_started])
            scan_log_problems("synod", [(n, p.log_path) for n, _ip, _s, p in synod_started])
        if chrony_pairs:
            out = {"version": tools["version"],
                   "method": "chronyd -x -4 -d -u root -f <abs conf>; server under faketime "
                             "(+nots shim) at the shift, unshifted client polling it with "
                             "minpoll -2 maxpoll -2 iburst"
                             + (" (client also with the nots shim: user-space timestamps on "
                                "both sides, like Synod)" if args.chrony_client_nots
                                else " (client unshimmed: kernel receive timestamps, as chrony "
                                     "normally runs)")
                             + "; `chronyc -c tracking` field 5 'System time'",
                   "sign_convention": "chrony's CSV System time is NTP (server) time minus "
                                      "local time, s (positive = local clock slow of the "
                                      "server): the same sign as Synod's offset_ms (master "
                                      "minus local). Server at +s seconds, client unshifted "
                                      "-> truth +1000*s ms.",
                   "error_bound": "root delay / 2 + root dispersion (chrony's maximum error)",
                   "pairs": {}}
            for txt, pair in chrony_pairs.items():
                summ = samplers[("chrony", txt)].summary()
                summ["server"] = f"{pair['server_ip']}:{pair['port']}"
                summ["client"] = pair["client_ip"]
                summ["last_offset_ms"] = stats(
                    [r.get("last_offset_ms") for r in samplers[("chrony", txt)].grid])
                summ["freq_ppm"] = stats([r.get("freq_ppm")
                                          for r in samplers[("chrony", txt)].grid], 3)
                out["pairs"][txt] = summ
            out["cpu_pct_of_one_core"] = {p.label: cpu.get(p.label) for pair in
                                          chrony_pairs.values()
                                          for p in (pair["server"], pair["client"])}
            out["machine_during_part"] = machine
            procs.stop([p for pair in chrony_pairs.values()
                        for p in (pair["server"], pair["client"])])
            result["chrony"] = out
        if args.series:
            result.setdefault("series", {})
            for (system, txt), s in samplers.items():
                result["series"][f"{system} {txt}"] = s.grid

    if args.sequential:
        for part in ("synod", "chrony"):
            if part in want:
                log(f"{part}: sampling every {args.interval} s for {args.seconds} s")
                phase({part})
    elif want:
        log(f"{' + '.join(sorted(want))} side by side: sampling every {args.interval} s for "
            f"{args.seconds} s")
        phase(want)


def comparison(result):
    out = {"basis": "absolute error |offset - truth| in ms, both shifts pooled, every 0.5 s "
                    "sample that had an estimate (from_10s: samples from 10 s after the start)"}
    syn = result.get("synod")
    chr_ = result.get("chrony")
    if syn and syn.get("followers"):
        f = syn["followers"]
        inside, of = 0, 0
        firsts = []
        for s in f.values():
            tb = s["truth_within_error_bound"]
            inside += tb["inside"]
            of += tb["of"]
            firsts.append(s["first_within_1ms_s"])
        syn_pooled = _pooled(result, "synod")
        cov = round(inside / of, 4) if of else None
        out["synod_abs_error_ms_pooled"] = syn_pooled
        out["synod_abs_error_ms_pooled_from_10s"] = _pooled(result, "synod_from_10s")
        out["synod_truth_within_error_fraction"] = cov
        out["synod_first_within_1ms_s"] = {k: v["first_within_1ms_s"] for k, v in f.items()}
        out["goal_coverage_met"] = cov is not None and cov >= 0.99
        out["goal_first_within_1ms_under_2s_met"] = all(x is not None and x < 2.0
                                                        for x in firsts)
    if chr_ and chr_.get("pairs"):
        out["chrony_abs_error_ms_pooled"] = _pooled(result, "chrony")
        out["chrony_abs_error_ms_pooled_from_10s"] = _pooled(result, "chrony_from_10s")
        inside = sum(p["truth_within_error_bound"]["inside"] for p in chr_["pairs"].values())
        of = sum(p["truth_within_error_bound"]["of"] for p in chr_["pairs"].values())
        out["chrony_truth_within_error_fraction"] = round(inside / of, 4) if of else None
        out["chrony_first_within_1ms_s"] = {k: v["first_within_1ms_s"]
                                            for k, v in chr_["pairs"].items()}
    s, c = out.get("synod_abs_error_ms_pooled"), out.get("chrony_abs_error_ms_pooled")
    if s and c:
        out["median_ratio_synod_over_chrony"] = (round(s["median"] / c["median"], 3)
                                                 if c["median"] else None)
        out["goal_median_not_worse_than_chrony_met"] = s["median"] <= c["median"]
    return out


_POOL = {}  # system -> list of absolute errors (ms), filled from the samplers' grids


def _pooled(result, system):
    return stats(_POOL.get(system, []))


def fill_pool(result):
    for system, key in (("synod", "followers"), ("chrony", "pairs")):
        part = result.get(system) or {}
        vals = []
        steady = []
        for txt, s in (part.get(key) or {}).items():
            vals += s.pop("_abs_errors", [])
            steady += s.pop("_abs_errors_from_10s", [])
        if vals:
            _POOL[system] = vals
            _POOL[system + "_from_10s"] = steady


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["synod", "chrony"], help="run one system (default: both)")
    p.add_argument("--sequential", action="store_true",
                   help="Synod first, then chrony (default: both at the same time)")
    p.add_argument("--binary", default=DEFAULT_BINARY, help="synod binary (build/synod)")
    p.add_argument("--seconds", type=float, default=60.0, help="sampling window, s (60)")
    p.add_argument("--interval", type=float, default=0.5, help="sampling interval, s (0.5)")
    p.add_argument("--fast-interval", type=float, default=0.05,
                   help="polling interval until the first estimate within 1 ms, s (0.05)")
    p.add_argument("--chrony-client-nots", action="store_true",
                   help="run the chrony client with the nots shim too (user-space timestamps on "
                        "both sides, like Synod; default: the client uses kernel timestamps, "
                        "as chrony normally does)")
    p.add_argument("--cluster-key-file", metavar="FILE",
                   help="start Synod's agents with --cluster-key-file FILE (a `synod keygen` key: "
                        "peer and Raft traffic, time probes included, over TLS 1.3); default: "
                        "clear text")
    p.add_argument("--series", action="store_true", help="include every sample in the JSON")
    p.add_argument("--keep", action="store_true", help="keep logs, configs and data dirs")
    args = p.parse_args()
    if not (5 <= args.seconds <= 600):
        p.error("--seconds must be in 5..600")
    if not (0.1 <= args.interval <= 10) or not (0.01 <= args.fast_interval <= args.interval):
        p.error("--interval in 0.1..10, --fast-interval in 0.01..interval")
    if args.only != "chrony" and not os.access(args.binary, os.X_OK):
        p.error(f"{args.binary} is not executable (build first)")
    if args.cluster_key_file and not os.path.isfile(args.cluster_key_file):
        p.error(f"{args.cluster_key_file}: no such file")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    result = {"benchmark": "clock", "binary": args.binary,
              "binary_identity": binary_identity(args.binary), "machine": machine_info(),
              "mode": "sequential" if args.sequential else "side by side (concurrent)",
              "seconds": args.seconds, "interval_s": args.interval,
              "fast_interval_s": args.fast_interval}
    if args.cluster_key_file:
        result["cluster_key_file"] = os.path.abspath(args.cluster_key_file)
    workdir = tempfile.mkdtemp(prefix="synod-clock-bench-")
    log(f"work dir {workdir}")
    procs = Procs()
    try:
        run(args, workdir, result, procs)
    except Exception as e:  # report, still print the JSON gathered so far
        record_failure(result, e)
    finally:
        procs.stop()
        fill_pool(result)
        result["comparison"] = comparison(result)
        result["abnormal_exits"] = ABNORMAL_EXITS
        result["agent_log_problems"] = LOG_PROBLEMS
        result["poll_errors"] = ERRORS
        if binary_identity(args.binary) != result["binary_identity"]:
            result["binary_changed_during_run"] = True
        keep_or_remove(result, workdir, args.keep, "logs")
    order = ["benchmark", "binary", "binary_identity", "machine", "mode", "comparison",
             "faketime_calibration", "synod", "chrony"]
    ordered_result = ordered(result, order)
    print(json.dumps(ordered_result, indent=2))
    if "interrupted" in result:
        return 130
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
