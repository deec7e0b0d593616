"""Helpers shared by the benchmarks in this folder (run by hand, never by tests)."""
import contextlib
import http.client
import json
import os
import platform
import signal
import shutil
import socket
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read_lines(path):
    """The lines of a text file (a log), undecodable bytes replaced; [] if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def tail(path, lines=5):
    return read_lines(path)[-lines:]


class Interrupted(Exception):
    pass


def _on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


@contextlib.contextmanager
def signals_ignored():
    """SIGINT and SIGTERM are ignored inside the block (a second Ctrl-C must not cut a cleanup
    short); the previous handlers are restored after it."""
    saved = [(sig, signal.signal(sig, signal.SIG_IGN)) for sig in (signal.SIGINT,
                                                                   signal.SIGTERM)]
    try:
        yield
    finally:
        for sig, handler in saved:
            signal.signal(sig, handler)


def summarize(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    s = sorted(values)
    n = len(s)
    return {
        "n": n,
        "min": round(s[0], 4),
        "mean": round(sum(s) / n, 4),
        "median": round(s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2, 4),
        "max": round(s[-1], 4),
    }


def machine_info():
    info = {"cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    with contextlib.suppress(OSError):
        info["loadavg_at_start"] = loadavg()
    return info


def loadavg():
    """The machine's 1, 5 and 15 minute load averages."""
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def binary_identity(path):
    import hashlib
    try:
        st = os.stat(path)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return {"mtime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(st.st_mtime)),
                "sha256_12": h.hexdigest()[:12]}
    except OSError as e:
        return {"error": str(e)}


def note_binary_change(result, path, before):
    """Records in result["binary_changed_during_run"] (and warns) if the binary at `path` no
    longer matches `before`, its binary_identity() from the start of the run."""
    after = binary_identity(path)
    if after != before:
        result["binary_changed_during_run"] = after
        log("warning: the binary changed during the run (rebuilt?)")


def record_failure(result, error):
    """Records in `result` what stopped a run: an interruption (a signal) or an unexpected error,
    so that the JSON gathered so far is still printed."""
    if isinstance(error, Interrupted):
        result["interrupted"] = str(error)
    else:
        result["error"] = f"{type(error).__name__}: {error}"
        log(f"error: {result['error']}")


def keep_or_remove(result, workdir, keep, what="logs"):
    """Removes the run's work dir, or with --keep leaves it and says where it is."""
    if keep:
        result["workdir"] = workdir
        log(f"{what} kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def ordered(result, first):
    """`result` with the keys of `first` first, in that order, then the rest as they came."""
    out = {k: result[k] for k in first if k in result}
    out.update({k: v for k, v in result.items() if k not in out})
    return out


def read_cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()  # fields from #3 (state) on
    return int(fields[11]) + int(fields[12])       # #14 utime, #15 stime


def self_cpu_s(children=False):
    """CPU seconds (user + system) of this process; with children=True also those of the
    children it has waited for."""
    t = os.times()
    if children:
        return t.user + t.system + t.children_user + t.children_system
    return t.user + t.system


def machine_busy_s():
    """CPU seconds spent by everything on the machine (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is counted in user already)
    busy = vals[0] + vals[1] + vals[2] + vals[5] + vals[6] + (vals[7] if len(vals) > 7 else 0)
    return busy / CLK_TCK


def close_selector(sel, socks):
    """Unregisters every socket of `socks` from `sel` and closes it (errors ignored: some may
    be closed already), then closes `sel`."""
    for s in socks:
        with contextlib.suppress(OSError, KeyError, ValueError):
            sel.unregister(s)
        with contextlib.suppress(OSError):
            s.close()
    sel.close()


def free_udp_port(ip="0.0.0.0"):
    """A UDP port free on `ip` (0.0.0.0: where the agents' beacon receivers bind), never SDSS's
    default 35498 nor NTP's 123."""
    for _ in range(20):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((ip, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in (35498, 123):
            return port
    raise RuntimeError("no free UDP port found")


def can_bind(ip, port, sock_type=socket.SOCK_STREAM, reuse=False):
    """Whether a socket of `sock_type` could bind ip:port now (with SO_REUSEADDR if `reuse`)."""
    s = socket.socket(socket.AF_INET, sock_type)
    try:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def tcp_port_free(ip, port):
    """Whether a listener could bind ip:port now (TIME_WAIT leftovers of a previous run do not
    count, listeners do)."""
    return can_bind(ip, port, socket.SOCK_STREAM, reuse=True)


def wait_ports_free(ip, ports, timeout_s=5.0):
    """Until a listener could bind every TCP port of `ports` on ip (a killed agent's listeners
    vanish with it; waited for briefly anyway); raises RuntimeError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        busy = [p for p in ports if not tcp_port_free(ip, p)]
        if not busy:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ip}: ports {busy} in use (another agent running?)")
        time.sleep(0.02)


def dir_bytes(path):
    """Bytes of all the files below `path`."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total


def read_status_kb(pid, field):
    """A field of /proc/PID/status given in kB (VmRSS, VmHWM), or None if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# ---------------------------------------------------------------------------------------------
# HTTP GETs to the agents. The benchmarks count failed requests each in its own way: they pass
# on_error(kind), told "HTTP <status>" for an answer other than 200, or the exception's class
# name.

def _get(ip, port, path, timeout):
    """(status, body bytes) of GET http://ip:port/path; raises what http.client raises."""
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def get_body(ip, port, path, timeout, on_error):
    """GET http://ip:port/path -> (status, body bytes), or (None, b"") if it fails (OSError,
    http.client.HTTPException)."""
    try:
        status, body = _get(ip, port, path, timeout)
    except (OSError, http.client.HTTPException) as e:
        on_error(type(e).__name__)
        return None, b""
    if status != 200:
        on_error(f"HTTP {status}")
    return status, body


def get_json(ip, port, path, timeout, on_error):
    """GET http://ip:port/path -> parsed JSON, or None on any error (a body that is not JSON
    too: kind JSONDecodeError)."""
    try:
        status, body = _get(ip, port, path, timeout)
        if status != 200:
            on_error(f"HTTP {status}")
            return None
        return json.loads(body)
    except (OSError, ValueError, http.client.HTTPException) as e:
        on_error(type(e).__name__)
        return None


# ---------------------------------------------------------------------------------------------
# Processes: starting, stopping, what their logs say

def start_logged(cmd, log_path, header=None, env=None):
    """Starts `cmd` with stdout and stderr appended to `log_path` (after a line `header`, if
    given); returns (Popen, time.monotonic(), time.time()), the times taken just before."""
    logf = open(log_path, "ab")
    try:
        if header is not None:
            logf.write(f"{header}\n".encode())
            logf.flush()
        t, wall = time.monotonic(), time.time()
        popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=subprocess.STDOUT, env=env)
    finally:
        logf.close()
    return popen, t, wall


def log_stamp(wall):
    """The local time `wall` (time.time()) as the agents' log lines begin: ms, no zone."""
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(wall))
            + f".{int(wall * 1000) % 1000:03d}")


def stop_processes(procs, grace_s=8.0):
    """Stops every process of `procs` [(label, Popen)]: SIGTERM to each, then SIGKILL to those
    still running `grace_s` after (each named by its label in the log)."""
    for _label, p in procs:
        with contextlib.suppress(OSError):
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for label, p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{label} (pid {p.pid}) ignored SIGTERM; SIGKILL")
            with contextlib.suppress(OSError):
                p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=2.0)


def exit_record(agent, died_before_stop, **first):
    """What a run's JSON says of an agent that exited non-zero: the fields `first` (e.g. its
    cluster), then its name, address, exit status, whether it died before being stopped and the
    last lines of its log."""
    return {**first, "agent": agent.name, "ip": agent.ip, "returncode": agent.proc.returncode,
            "died_before_stop": died_before_stop, "log_tail": tail(agent.log_path)}


def log_problems(logs, most=8):
    """The warning, error and critical lines of agents' logs, `logs` [(agent name, log path)]:
    None if there are none, else {"count", "distinct_first_seen": the first `most` distinct
    messages, each with the agent and the time of its first line}."""
    count = 0
    samples = {}
    for name, path in logs:
        for line in read_lines(path):
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[1] in ("warning", "error", "critical"):
                count += 1
                msg = f"{parts[1]} {parts[2]}"
                if msg not in samples and len(samples) < most:
                    samples[msg] = f"{name} {parts[0]}"
    if not count:
        return None
    return {"count": count,
            "distinct_first_seen": [{"line": m, "where": w} for m, w in samples.items()]}


def finish_result(result, binary, identity_before, workdir, keep, what, **records):
    """The end of a run's JSON, whatever happened: whether the binary changed during the run,
    the load average, then `records` (abnormal exits, log problems, failed requests: kept in
    the order given); then the work dir is removed (or kept, see keep_or_remove)."""
    note_binary_change(result, binary, identity_before)
    with contextlib.suppress(OSError):
        result["loadavg_at_end"] = loadavg()
    result.update(records)
    keep_or_remove(result, workdir, keep, what)


# ---------------------------------------------------------------------------------------------
# A cluster of agents (consensus_bench, state_bench)

class Agent:
    """One agent of an AgentCluster: where it lives, and its process once launched."""

    def __init__(self, name, ip, data_dir, log_path):
        self.name = name
        self.ip = ip
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.started = None          # time.monotonic() just before the last launch
        self.started_wall = None     # the same as local time, as the agents' logs write it
        self.launches = 0


class AgentCluster:
    """Agents on their own loopback addresses, always stopped (context manager).

    A subclass fills `agents` and gives command(agent) (its command line), status(agent,
    timeout) (its GET /v1/cluster, or None) and stopped(running, early) (called once every
    agent is stopped, with those that were running and those that had died before, not
    SIGKILLed on purpose). Class attributes: `ports` (checked free before a launch), `voters`
    (live voters of a healthy cluster), `leader_timeout` (leader_agent's per-agent one) and
    `log_command` (whether the launch line in an agent's log shows its arguments)."""

    ports = ()
    voters = 3
    leader_timeout = 0.3
    log_command = False

    def __init__(self, binary, directory, label=None):
        self.binary = binary
        self.dir = directory
        os.makedirs(self.dir, exist_ok=True)
        self.label = label              # prefixes the agents' names in this script's log
        self.broadcast_port = free_udp_port()
        self.agents = []
        self.killed_pids = set()        # pids SIGKILLed on purpose

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def launch(self, agent):
        if agent.proc is not None and agent.proc.poll() is None:
            raise RuntimeError(f"{agent.name} is still running")
        wait_ports_free(agent.ip, self.ports, 5.0)
        os.makedirs(agent.data_dir, exist_ok=True)
        cmd = self.command(agent)
        header = (f"==== launch {agent.launches + 1}: {' '.join(cmd[1:])} ====" if self.log_command
                  else f"==== launch {agent.launches + 1} ====")
        agent.proc, agent.started, wall = start_logged(cmd, agent.log_path, header)
        agent.started_wall = log_stamp(wall)
        agent.launches += 1
        return agent

    def kill(self, agent):
        """SIGKILL; returns the monotonic time just before the signal."""
        t = time.monotonic()
        self.killed_pids.add(agent.proc.pid)
        agent.proc.kill()
        agent.proc.wait(timeout=5.0)
        return t

    def alive(self):
        return [a for a in self.agents if a.proc is not None and a.proc.poll() is None]

    def unexpected_deaths(self):
        return [a for a in self.agents if a.proc is not None and a.proc.poll() is not None
                and a.proc.pid not in self.killed_pids]

    def check_deaths(self):
        dead = self.unexpected_deaths()
        if dead:
            raise RuntimeError("agent died: " + ", ".join(
                f"{a.name} rc={a.proc.returncode} {tail(a.log_path, 3)}" for a in dead))

    def by_ip(self, ip):
        return next((a for a in self.agents if a.ip == ip), None)

    def leader_agent(self, timeout=None):
        """The agent that the live agents agree leads (by ip), or None."""
        votes = {}
        for a in self.alive():
            st = self.status(a, self.leader_timeout if timeout is None else timeout)
            if st and st.get("leader"):
                votes[st["leader"]["ip"]] = votes.get(st["leader"]["ip"], 0) + 1
        if not votes:
            return None
        return self.by_ip(max(votes, key=votes.get))

    def wait_healthy(self, timeout_s, require_caught_up=True):
        """Until every launched agent is up and a member, all name one leader, the leader sees
        every one alive and `voters` live voters, and (optionally) every applied_index has
        reached the leader's commit_index - 2. Returns seconds waited, or None on timeout."""
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        want = [a for a in self.agents if a.proc is not None]
        while time.monotonic() < deadline:
            self.check_deaths()
            sts = {a.name: self.status(a) for a in want}
            if all(sts.values()):
                leaders = {st["leader"]["ip"] if st.get("leader") else None for st in sts.values()}
                if len(leaders) == 1 and None not in leaders:
                    leader = self.by_ip(next(iter(leaders)))
                    lst = sts.get(leader.name) if leader else None
                    if lst:
                        members = lst.get("members", [])
                        ok = (len(members) == len(want) and lst.get("voters") == self.voters
                              and lst.get("voters_alive") == self.voters
                              and all(m.get("state") == "alive" for m in members)
                              and all(st.get("member") for st in sts.values()))
                        if ok and require_caught_up:
                            ok = all(st["applied_index"] >= lst["commit_index"] - 2
                                     for st in sts.values())
                        if ok:
                            return time.monotonic() - t0
            time.sleep(0.05)
        return None

    def stop(self):
        """Stops every running agent (SIGTERM, then SIGKILL after 8 s), SIGINT and SIGTERM
        ignored meanwhile, then calls stopped()."""
        with signals_ignored():
            running = self.alive()
            early = self.unexpected_deaths()
            prefix = f"{self.label}: " if self.label else ""
            stop_processes([(prefix + a.name, a.proc) for a in running], 8.0)
            self.stopped(running, early)


class StartWatch:
    """Seconds from `t0` (an agent's launch) until its GET /v1/cluster first answered (api_up)
    and first named a leader (leader_known); `last` is its last answer."""

    def __init__(self, t0):
        self.t0 = t0
        self.api_up = self.leader_known = self.last = None

    def saw(self, st):
        """Notes one poll's answer (None if it did not answer); returns seconds since t0."""
        now = time.monotonic() - self.t0
        if st is not None:
            self.last = st
            if self.api_up is None:
                self.api_up = now
            if self.leader_known is None and st.get("leader"):
                self.leader_known = now
        return now
