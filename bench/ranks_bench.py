#!/usr/bin/env python3
"""Ranks and commands benchmark for Synod agents (run by hand, not by tests).

Two parts, each on its own local cluster started with `synod init` / `synod bootstrap -c N` in a
temporary workspace on loopback only (127.69.1.x and 127.69.2.x, default ports 7400-7402; the
workspace broadcasts to 127.255.255.255 on its own random UDP port), stopped with
`synod teardown --purge` whatever happens:

  fanout      50 agents. The member with rank 0 sends commands to the 49 lower-ranked members:
              POST /v1/commands {"command": "BENCH-<n>"} on one keep-alive connection, one at a
              time (10 warm-up, then 200 measured); client-side latency of each POST (the answer
              comes once every delivery is settled) and whether every answer says delivered=49.
              Every recipient's journal must hold each command exactly once.
              Goal: all acknowledged, p99 < 20 ms. Then, as a reference, the last-ranked member
              sends as many commands (nobody to deliver to): the commit-and-answer floor.
  throughput  11 agents (rank 0 sends, 10 recipients). 20,000 commands (bounded by 60 s) from
              64 concurrent keep-alive connections to rank 0's agent; commands/s with every
              delivery settled (delivered=10 in each answer), then exactly-once from each
              recipient's journal <workspace>/nodes/<name>/received-commands.jsonl.
              Goal: >= 2,000 commands/s, all delivered exactly once.

Prints one JSON object to stdout and writes it to bench/results/ranks-<date>.json (--out);
progress goes to stderr. Python 3 standard library only.
"""

import argparse
import contextlib
import http.client
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import (record_failure, keep_or_remove, ordered, log, tail, _on_signal, summarize, machine_info, percentile,
                      binary_identity, CLK_TCK, signals_ignored, read_cpu_ticks, self_cpu_s,
                      machine_busy_s, close_selector, loadavg, note_binary_change)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BINARY = os.path.join(os.path.dirname(HERE), "build", "synod")
DEFAULT_OUT = os.path.join(HERE, "results", f"ranks-{time.strftime('%Y-%m-%d')}.json")
INBOX_KEPT = 1000  # CommandInbox::kKept: a compacted journal holds the last 1000 commands

# One address block per part, so that a cluster never reuses the previous one's addresses.
NETS = {"fanout": "127.69.1.2", "throughput": "127.69.2.2"}

ABNORMAL = []     # agents still running after teardown, teardown failures
HTTP_ERRORS = {}  # error kind -> count, over the whole run (polls and single requests)
AUTH = {}         # {"Authorization": "Bearer <token>"}: the workspace's api.tokens write token


def count_error(kind):
    HTTP_ERRORS[kind] = HTTP_ERRORS.get(kind, 0) + 1


# ---------------------------------------------------------------------------------------------
# Helpers

def ms(seconds):
    return None if seconds is None else round(1000.0 * seconds, 3)


def latency_summary(values_s):
    lat = sorted(values_s)
    if not lat:
        return {"n": 0}
    return {"n": len(lat), "min": ms(lat[0]), "p50": ms(percentile(lat, 50)),
            "p90": ms(percentile(lat, 90)), "p99": ms(percentile(lat, 99)), "max": ms(lat[-1]),
            "mean": ms(sum(lat) / len(lat))}


def split_addr(address, default_port=7400):
    host, _, port = address.rpartition(":")
    if not host:
        return address, default_port
    return host, int(port)


def http_json(address, method, path, body=None, timeout=2.0):
    """(status, parsed JSON or None) of one request to "ip:port"; (None, None) on errors."""
    host, port = split_addr(address)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            count_error(f"{method} {path.split('?')[0]} HTTP {resp.status}")
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, None
    except (OSError, http.client.HTTPException) as e:
        count_error(f"{method} {path.split('?')[0]} {type(e).__name__}")
        return None, None
    finally:
        conn.close()


def read_threads(pid):
    """{tid: (comm, cpu ticks, run ns, runqueue wait ns)} of every thread; {} if gone."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                data = f.read()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                sched = [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            continue
        comm = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        out[tid] = (comm, int(fields[11]) + int(fields[12]), sched[0], sched[1])
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# Local cluster through the CLI

class LocalCluster:
    """`synod init` + `synod bootstrap -c N` in a fresh workspace; `synod teardown --purge` on
    exit (context manager), then anything of ours still alive is SIGTERMed / SIGKILLed."""

    def __init__(self, binary, workdir, label, first_ip, count, keep=False):
        self.binary = binary
        self.label = label
        self.first_ip = first_ip
        self.count = count
        self.keep = keep
        self.path = os.path.join(workdir, label)
        self.env = dict(os.environ, SYNOD_WORKSPACE=self.path)
        self.env.pop("SYNOD_NODE", None)
        self.nodes = []       # dicts from bootstrap --json: name, id, ip, pid, log
        self.by_id = {}
        self.bootstrap_s = None

    def cli(self, *argv, timeout=60):
        t0 = time.monotonic()
        done = subprocess.run([self.binary, *argv, "-p", self.path], env=self.env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return time.monotonic() - t0, done

    def __enter__(self):
        took, done = self.cli("init", "--first-ip", self.first_ip)
        if done.returncode != 0:
            raise RuntimeError(f"synod init failed: {done.stderr.strip()[-400:]}")
        log(f"{self.label}: bootstrap -c {self.count} from {self.first_ip} ..")
        took, done = self.cli("bootstrap", "-c", str(self.count), "--json", timeout=120)
        self.bootstrap_s = round(took, 2)
        if done.returncode != 0:
            raise RuntimeError(f"synod bootstrap -c {self.count} failed after {took:.1f} s: "
                               f"{(done.stderr or done.stdout).strip()[-600:]}")
        self.nodes = json.loads(done.stdout)["nodes"]
        self.by_id = {n["id"]: n for n in self.nodes}
        # Workspace agents need a write token for POST /v1/commands (synod init made one).
        with contextlib.suppress(OSError):
            with open(os.path.join(self.path, "api.tokens")) as f:
                for line in f:
                    fields = line.split()
                    if len(fields) == 2 and fields[0] == "write":
                        AUTH["Authorization"] = "Bearer " + fields[1]
                        break
        log(f"{self.label}: {len(self.nodes)} agents up in {took:.1f} s")
        return self

    def __exit__(self, *exc):
        with signals_ignored():
            self.stop()
        return False

    def recorded_pids(self):
        """Every pid the workspace state file recorded (also when bootstrap failed midway)."""
        pids = {n["pid"] for n in self.nodes if n.get("pid")}
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(self.path, "workspace.json")) as f:
                pids |= {n["pid"] for n in json.load(f).get("nodes", []) if n.get("pid")}
        return pids

    def ours_alive(self, pids):
        marker = f"--data-dir {os.path.join(self.path, 'nodes')}/"
        return [p for p in pids if marker in cmdline(p)]

    def stop(self):
        if not os.path.isdir(self.path):
            return
        pids = self.recorded_pids()
        argv = ["teardown"] if self.keep else ["teardown", "--purge"]
        try:
            took, done = self.cli(*argv, "--json", timeout=90)
            if done.returncode != 0:
                ABNORMAL.append({"cluster": self.label, "teardown_rc": done.returncode,
                                 "stderr": done.stderr.strip()[-400:]})
            else:
                log(f"{self.label}: teardown {done.stdout.strip()} in {took:.1f} s")
        except subprocess.TimeoutExpired:
            ABNORMAL.append({"cluster": self.label, "teardown": "timed out"})
        left = self.ours_alive(pids)
        if left:
            ABNORMAL.append({"cluster": self.label, "alive_after_teardown": left})
            for p in left:
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGTERM)
            deadline = time.monotonic() + 8.0
            while time.monotonic() < deadline and self.ours_alive(left):
                time.sleep(0.1)
            for p in self.ours_alive(left):
                log(f"{self.label}: pid {p} ignored SIGTERM; SIGKILL")
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGKILL)
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)

    # ---- views ------------------------------------------------------------------------------

    def api(self, node):
        return f"{node['ip']}:7400"

    def data_dir(self, node):
        return os.path.join(self.path, "nodes", node["name"])

    def journal(self, node):
        return os.path.join(self.data_dir(node), "received-commands.jsonl")

    def log_path(self, node):
        return node.get("log") or os.path.join(self.path, "logs", f"{node['name']}.log")

    def check_alive(self):
        dead = [n["name"] for n in self.nodes if read_cpu_ticks(n["pid"]) is None]
        if dead:
            raise RuntimeError(f"{self.label}: agents died: {dead} "
                               f"{tail(self.log_path(self.by_name(dead[0])), 5)}")

    def by_name(self, name):
        return next(n for n in self.nodes if n["name"] == name)

    def wait_ranked(self, timeout_s):
        """Until the leader ranks every agent of the cluster and every agent names that leader.
        Returns (ranks JSON from rank 0's agent, cluster JSON of the leader, seconds waited)."""
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        last = None
        while time.monotonic() < deadline:
            self.check_alive()
            _, cluster = http_json(self.api(self.nodes[0]), "GET", "/v1/cluster", timeout=1.0)
            leader = (cluster or {}).get("leader")
            if leader:
                laddr = f"{leader['ip']}:7400"
                _, lcluster = http_json(laddr, "GET", "/v1/cluster", timeout=1.0)
                _, ranks = http_json(laddr, "GET", "/v1/ranks", timeout=1.0)
                holders = (ranks or {}).get("ranks", [])
                last = len(holders)
                if (lcluster and ranks and len(holders) == self.count
                        and all(h.get("kind") == "member" and h.get("id") in self.by_id
                                for h in holders)):
                    agree = True
                    for n in self.nodes:
                        _, c = http_json(self.api(n), "GET", "/v1/cluster", timeout=1.0)
                        if not (c and c.get("member") and (c.get("leader") or {}).get("ip")
                                == leader["ip"]):
                            agree = False
                            break
                    if agree:
                        return ranks, lcluster, time.monotonic() - t0
            time.sleep(0.2)
        raise RuntimeError(f"{self.label}: not every agent ranked within {timeout_s} s "
                           f"(leader ranks {last} of {self.count})")

    def leader(self, via):
        _, c = http_json(self.api(via), "GET", "/v1/cluster", timeout=1.0)
        lead = (c or {}).get("leader")
        return lead["ip"] if lead else None

    def commit_index(self, ip):
        _, c = http_json(f"{ip}:7400", "GET", "/v1/cluster", timeout=1.0)
        return (c or {}).get("commit_index")


class CpuWindow:
    """CPU of the agents (utime+stime from /proc/PID/stat, all threads), this process and the
    whole machine between start() and stop()."""

    def __init__(self, nodes):
        self.nodes = nodes

    def _sample(self):
        """(now, agents' ticks, agents' threads, this process's CPU s, machine busy s)."""
        return (time.monotonic(),
                {n["name"]: read_cpu_ticks(n["pid"]) for n in self.nodes},
                {n["name"]: read_threads(n["pid"]) for n in self.nodes},
                self_cpu_s(), machine_busy_s())

    def start(self):
        self.t0, self.ticks0, self.threads0, self.self0, self.machine0 = self._sample()

    def stop(self):
        self.t1, self.ticks1, self.threads1, self.self1, self.machine1 = self._sample()

    def sched(self, name):
        """(run s, runqueue wait s) summed over the threads, from schedstat (ns resolution)."""
        a, b = self.threads0.get(name, {}), self.threads1.get(name, {})
        run = wait = 0
        for tid, (_, _, r1, w1) in b.items():
            _, _, r0, w0 = a.get(tid, (None, 0, 0, 0))
            run += r1 - r0
            wait += w1 - w0
        return run / 1e9, wait / 1e9

    def thread_cpu(self, name):
        """Thread name -> CPU s (threads of one name summed), busiest first."""
        a, b = self.threads0.get(name, {}), self.threads1.get(name, {})
        per = {}
        for tid, (comm, _, r1, _) in b.items():
            r0 = a.get(tid, (None, 0, 0, 0))[2]
            per[comm] = per.get(comm, 0.0) + (r1 - r0) / 1e9
        return {k: round(v, 3) for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v > 0}

    def seconds(self, name):
        a, b = self.ticks0.get(name), self.ticks1.get(name)
        return None if a is None or b is None else (b - a) / CLK_TCK

    def report(self, roles):
        """roles: name -> role ("rank0+leader", "leader", "rank0", "recipient", ...)."""
        wall = self.t1 - self.t0
        per = {n["name"]: self.seconds(n["name"]) for n in self.nodes}
        agents_s = sum(v for v in per.values() if v is not None)
        machine_s = self.machine1 - self.machine0
        self_s = self.self1 - self.self0
        by_role = {}
        for name, sec in per.items():
            if sec is not None:
                by_role.setdefault(roles.get(name, "other"), []).append(100.0 * sec / wall)
        top = sorted(((sec, name) for name, sec in per.items() if sec is not None), reverse=True)
        waits = {}
        for n in self.nodes:
            run, wait = self.sched(n["name"])
            waits.setdefault(roles.get(n["name"], "other"), []).append(1000.0 * wait / wall)
        special = [n["name"] for n in self.nodes if roles.get(n["name"], "recipient")
                   not in ("recipient", "other")]
        return {
            "window_s": round(wall, 3),
            "agents_cpu_s": round(agents_s, 2),
            "agents_cpu_pct_of_one_core": round(100.0 * agents_s / wall, 1),
            "agents_cpu_pct_by_role": {r: summarize(v) for r, v in sorted(by_role.items())},
            "busiest_agents": [{"name": name, "role": roles.get(name, "other"),
                                "cpu_s": round(sec, 2),
                                "cpu_pct_of_one_core": round(100.0 * sec / wall, 1)}
                               for sec, name in top[:4]],
            "runqueue_wait_ms_per_s_by_role": {r: summarize(v) for r, v in sorted(waits.items())},
            "threads_of": {f"{name} ({roles[name]})": self.thread_cpu(name) for name in special},
            "client_cpu_pct_of_one_core": round(100.0 * self_s / wall, 1),
            "machine_cpu_pct_of_all_cores": round(100.0 * machine_s / wall / os.cpu_count(), 1),
            "other_processes_cpu_pct_of_one_core": round(
                max(0.0, 100.0 * (machine_s - agents_s - self_s) / wall), 1),
        }


class LogWindow:
    """Lines the agents logged between start() and stop(): per agent role, and the commonest
    messages (the text after "time level", numbers replaced by #)."""

    def __init__(self, cluster):
        self.cluster = cluster

    def start(self):
        self.offsets = {}
        for n in self.cluster.nodes:
            with contextlib.suppress(OSError):
                self.offsets[n["name"]] = os.path.getsize(self.cluster.log_path(n))

    def stop(self, roles, commands):
        per_role = {}
        kinds = {}
        levels = {}
        total = 0
        for n in self.cluster.nodes:
            try:
                with open(self.cluster.log_path(n), "rb") as f:
                    f.seek(self.offsets.get(n["name"], 0))
                    lines = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            total += len(lines)
            role = roles.get(n["name"], "other")
            per_role.setdefault(role, []).append(len(lines))
            for line in lines:
                parts = line.split(None, 2)
                if len(parts) < 3:
                    continue
                levels[parts[1]] = levels.get(parts[1], 0) + 1
                words = parts[2].split()[:4]
                key = parts[1] + " " + " ".join("#" if any(c.isdigit() for c in w) else w
                                                for w in words)
                kinds[key] = kinds.get(key, 0) + 1
        return {
            "lines": total,
            "lines_per_command": round(total / commands, 2) if commands else None,
            "lines_per_agent_by_role": {r: summarize(v) for r, v in sorted(per_role.items())},
            "by_level": levels,
            "commonest": [{"message_start": k, "count": v}
                          for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:6]],
        }


# ---------------------------------------------------------------------------------------------
# Journals

class JournalTracker:
    """Follows one agent's received-commands.jsonl from before the commands are sent: holds the
    file open, and when the agent compacts it (a new file renamed over the path, holding the
    last 1000 commands), keeps the old one open too, so every line ever appended is read."""

    def __init__(self, path):
        self.path = path
        self.files = []
        self.ident = None
        self.problems = []
        self._open()

    def _open(self):
        f = open(self.path, "rb")
        st = os.fstat(f.fileno())
        self.files.append(f)
        self.ident = (st.st_dev, st.st_ino)

    def poll(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if (st.st_dev, st.st_ino) != self.ident:
            self._open()

    def entries(self):
        """[(id, command)] of every line appended since the tracker opened, in order; the
        copies a compaction made of what was journaled before are checked and left out."""
        out = []
        for k, f in enumerate(self.files):
            f.seek(0)
            lines = f.read().split(b"\n")
            items = []
            for line in lines:
                if not line.strip():
                    continue
                try:
                    j = json.loads(line)
                    items.append((int(j["id"]), j.get("command")))
                except (ValueError, KeyError, TypeError):
                    self.problems.append(f"unreadable line in file {k}: {line[:120]!r}")
            if k > 0:
                skip = min(INBOX_KEPT, len(out))
                if [i for i, _ in items[:skip]] != [i for i, _ in out[-skip:]]:
                    self.problems.append(f"compacted file {k} does not start with the last "
                                         f"{skip} commands journaled before")
                items = items[skip:]
            out.extend(items)
        return out

    def close(self):
        for f in self.files:
            with contextlib.suppress(OSError):
                f.close()


class JournalWatch:
    """JournalTrackers of several agents, polled for compaction every 0.2 s by a thread."""

    def __init__(self, paths):
        self.trackers = {name: JournalTracker(p) for name, p in paths.items()}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_event.wait(0.2):
            for t in self.trackers.values():
                t.poll()

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=2.0)
        for t in self.trackers.values():
            t.poll()

    def close(self):
        self.stop_event.set()
        for t in self.trackers.values():
            t.close()

    def verify(self, sent_ids, prefix):
        """Each id of sent_ids exactly once in every tracked journal. Also counts journaled
        commands with our prefix that no answer told us about (sent, but unanswered)."""
        sent = set(sent_ids)
        out = {"recipients": len(self.trackers), "commands": len(sent),
               "recipients_exactly_once": 0, "missing": 0, "duplicated": 0,
               "unanswered_but_journaled": 0, "compactions_seen": 0, "problems": []}
        worst = []
        for name, t in sorted(self.trackers.items()):
            entries = t.entries()
            out["compactions_seen"] += len(t.files) - 1
            counts = {}
            for cid, text in entries:
                if cid in sent:
                    counts[cid] = counts.get(cid, 0) + 1
                elif isinstance(text, str) and text.startswith(prefix):
                    out["unanswered_but_journaled"] += 1
            missing = len(sent) - len(counts)
            dup = sum(1 for c in counts.values() if c > 1)
            out["missing"] += missing
            out["duplicated"] += dup
            if missing == 0 and dup == 0:
                out["recipients_exactly_once"] += 1
            else:
                worst.append({"agent": name, "missing": missing, "duplicated": dup,
                              "first_missing": sorted(sent - set(counts))[:5]})
            out["problems"] += [f"{name}: {p}" for p in t.problems[:3]]
        if worst:
            out["recipients_not_exactly_once"] = worst[:5]
        out["ok"] = out["recipients_exactly_once"] == out["recipients"] and not out["problems"]
        return out


def idle_window(cluster, roles, seconds):
    """The agents' CPU over `seconds` in which the benchmark sends nothing (the baseline)."""
    if seconds <= 0:
        return None
    cpu = CpuWindow(cluster.nodes)
    cpu.start()
    time.sleep(seconds)
    cpu.stop()
    rep = cpu.report(roles)
    rep.pop("busiest_agents", None)
    return rep


def roles_of(cluster, ranks, leader_ip):
    """Agent name -> role: rank0 / leader / voter / recipient."""
    holders = ranks["ranks"]
    rank0_id = holders[0]["id"]
    roles = {}
    for n in cluster.nodes:
        parts = []
        if n["id"] == rank0_id:
            parts.append("rank0")
        if n["ip"] == leader_ip:
            parts.append("leader")
        roles[n["name"]] = "+".join(parts) if parts else "recipient"
    return roles


def ranked_start(cl, args, out):
    """Waits until every agent of the new cluster `cl` is ranked; records the bootstrap and
    ranking times, rank 0 and the leader in `out`. Returns (rank 0's entry of /v1/ranks, its
    node, the leader's ip, rank 0's recipient count, roles_of(), the leader's /v1/cluster)."""
    out["bootstrap_s"] = cl.bootstrap_s
    ranks, lcluster, waited = cl.wait_ranked(args.rank_timeout)
    out["ranked_after_bootstrap_s"] = round(waited, 2)
    holders = ranks["ranks"]
    rank0 = holders[0]
    leader_ip = lcluster["leader"]["ip"]
    out["rank0"] = {"name": rank0.get("name"), "address": rank0["address"]}
    out["leader"] = {"name": lcluster["leader"].get("name"), "ip": leader_ip}
    out["rank0_is_leader"] = rank0["address"].startswith(leader_ip + ":")
    return (rank0, cl.by_id[rank0["id"]], leader_ip, len(holders) - 1,
            roles_of(cl, ranks, leader_ip), lcluster)


# ---------------------------------------------------------------------------------------------
# Part 1: fan-out latency

def check_answer(status, body, expect):
    """None when the answer is 200 and every one of `expect` recipients got it, else why not."""
    if status != 200 or not isinstance(body, dict):
        return f"HTTP {status}: {str(body)[:160]}"
    recips = body.get("recipients") or []
    if (body.get("delivered") != expect or body.get("pending") != 0 or body.get("failed") != 0
            or not body.get("settled") or len(recips) != expect):
        return (f"delivered {body.get('delivered')} pending {body.get('pending')} failed "
                f"{body.get('failed')} recipients {len(recips)} (want {expect})")
    return None


def post_command(conn, text):
    """POST /v1/commands {"command": text} on the keep-alive `conn`: (HTTP status, the parsed
    answer or None, seconds until the whole answer was read). Raises what http.client raises."""
    t0 = time.perf_counter()
    conn.request("POST", "/v1/commands", body=json.dumps({"command": text}),
                 headers={"Content-Type": "application/json", **AUTH})
    resp = conn.getresponse()
    data = resp.read()
    took = time.perf_counter() - t0
    try:
        return resp.status, json.loads(data), took
    except ValueError:
        return resp.status, None, took


def reference_without_recipients(address, n):
    """The same command path with nobody to deliver to: the last-ranked member sends `n`
    commands one at a time (its agent forwards each to the leader). What is left is the Raft
    commit, with every agent of the cluster writing the entry, and the answer: the part of the
    fan-out latency that is not delivery. Returns latency_summary() plus failures."""
    host, port = split_addr(address)
    conn = http.client.HTTPConnection(host, port, timeout=40.0)
    latencies, failures = [], 0
    try:
        for i in range(n):
            try:
                status, answer, dt = post_command(conn, f"REF-{i}")
            except (OSError, http.client.HTTPException) as e:
                count_error(f"reference POST /v1/commands {type(e).__name__}")
                failures += 1
                conn.close()
                continue
            if check_answer(status, answer, 0):
                failures += 1
            else:
                latencies.append(dt)
    finally:
        conn.close()
    return dict(latency_summary(latencies), failures=failures)


def bench_fanout(args, workdir):
    out = {"agents": args.fanout_agents, "goal": "every answer delivered == agents-1, "
                                                "p99 < 20 ms"}
    with LocalCluster(args.binary, workdir, "fanout", NETS["fanout"], args.fanout_agents,
                      args.keep) as cl:
        rank0, rank0_node, leader_ip, expect, roles, lcluster = ranked_start(cl, args, out)
        out["voters"] = lcluster.get("voters")
        out["idle_cpu"] = idle_window(cl, roles, args.idle_seconds)
        recipients = {n["name"]: cl.journal(n) for n in cl.nodes if n["id"] != rank0["id"]}
        watch = JournalWatch(recipients)
        host, port = split_addr(rank0["address"])
        conn = http.client.HTTPConnection(host, port, timeout=40.0)
        sent_ids = []
        ok_answers = 0
        failures = []
        latencies = []
        slowest = []
        cpu = CpuWindow(cl.nodes)
        logs = LogWindow(cl)
        try:
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            total = args.fanout_warmup + args.fanout_commands
            deadline = time.monotonic() + args.fanout_max_seconds
            c0 = None
            for i in range(total):
                if time.monotonic() > deadline:
                    out["stopped_by_time_limit_after"] = i
                    break
                measured = i >= args.fanout_warmup
                if measured and c0 is None:
                    cpu.start()
                    logs.start()
                    c0 = cl.commit_index(leader_ip)
                try:
                    status, answer, dt = post_command(conn, f"BENCH-{i}")
                except (OSError, http.client.HTTPException) as e:
                    count_error(f"POST /v1/commands {type(e).__name__}")
                    failures.append({"n": i, "error": type(e).__name__})
                    conn.close()
                    continue
                why = check_answer(status, answer, expect)
                if isinstance(answer, dict) and answer.get("id"):
                    sent_ids.append(answer["id"])
                if why:
                    failures.append({"n": i, "why": why})
                else:
                    ok_answers += 1
                if measured:
                    latencies.append(dt)
                    slowest.append((dt, i - args.fanout_warmup))
            measured_n = len(latencies)
            if measured_n:
                cpu.stop()
                c1 = cl.commit_index(leader_ip)
                out["log_window"] = logs.stop(roles, measured_n)
                out["cpu_during_measured"] = cpu.report(roles)
                if c0 is not None and c1 is not None:
                    out["raft_entries_per_command"] = round((c1 - c0) / measured_n, 2)
            out["leader_after"] = cl.leader(rank0_node)
        finally:
            conn.close()
            watch.stop()
        lat = latency_summary(latencies)
        out["commands"] = {"warmup": args.fanout_warmup, "measured": len(latencies),
                           "answered_ok": ok_answers}
        out["latency_ms"] = lat
        slowest.sort(reverse=True)
        out["slowest"] = [{"ms": ms(d), "n": k} for d, k in slowest[:5]]
        out["all_acknowledged"] = not failures and ok_answers == (
            args.fanout_warmup + args.fanout_commands)
        if failures:
            out["failures"] = {"count": len(failures), "first": failures[:5]}
        time.sleep(0.3)
        out["journals"] = watch.verify(sent_ids, "BENCH-")
        watch.close()
        out["met"] = bool(out["all_acknowledged"] and lat.get("p99") is not None
                          and lat["p99"] < 20.0 and out["journals"]["ok"])
        log(f"fanout: p50 {lat.get('p50')} p99 {lat.get('p99')} max {lat.get('max')} ms, "
            f"all acknowledged {out['all_acknowledged']}, journals ok {out['journals']['ok']}")
        _, ranks = http_json(rank0["address"], "GET", "/v1/ranks", timeout=2.0)
        holders = (ranks or {}).get("ranks") or []
        if holders:
            ref = reference_without_recipients(holders[-1]["address"], args.fanout_commands)
            out["reference_no_recipients_latency_ms"] = ref
            log(f"fanout: reference, last rank sends (no recipients): p50 {ref.get('p50')} "
                f"p99 {ref.get('p99')} ms")
    return out


# ---------------------------------------------------------------------------------------------
# Part 2: sustained throughput

class CommandLoad:
    """Keep-alive HTTP/1.1 connections to one agent driven by one selector loop in this thread;
    each keeps one POST /v1/commands outstanding (the agent answers a connection's requests in
    order and parses the next only after answering). Sends `total` commands, none after
    `max_seconds`; then waits for the outstanding answers up to `drain_s`."""

    def __init__(self, address, connections, total, max_seconds, drain_s, prefix, start_n=0):
        self.host, self.port = split_addr(address)
        self.n = connections
        self.total = total
        self.max_seconds = max_seconds
        self.drain_s = drain_s
        self.prefix = prefix
        self.start_n = start_n

    def run(self):
        sel = selectors.DefaultSelector()
        conns = []
        answers = []     # (n, sent_at, done_at, status, body dict or None)
        lost = {}
        next_n = [0]
        t_start = time.monotonic()
        send_deadline = t_start + self.max_seconds

        class Conn:
            __slots__ = ("sock", "buf", "sent_at", "n")

        def send(c):
            if next_n[0] >= self.total or time.monotonic() >= send_deadline:
                return False
            c.n = self.start_n + next_n[0]
            next_n[0] += 1
            body = ('{"command":"%s%d"}' % (self.prefix, c.n)).encode()
            auth = "".join(f"{k}: {v}\r\n" for k, v in AUTH.items()).encode()
            req = (b"POST /v1/commands HTTP/1.1\r\nHost: synod\r\nContent-Type: "
                   b"application/json\r\n" + auth + b"Content-Length: " +
                   str(len(body)).encode() + b"\r\n\r\n" + body)
            c.sent_at = time.monotonic()
            c.sock.sendall(req)
            return True

        for _ in range(self.n):
            s = socket.create_connection((self.host, self.port), timeout=5.0)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            c = Conn()
            c.sock, c.buf, c.sent_at, c.n = s, b"", None, None
            conns.append(c)
        active = 0
        t_end_send = None
        try:
            for c in conns:
                if send(c):
                    sel.register(c.sock, selectors.EVENT_READ, c)
                    active += 1
            while active:
                now = time.monotonic()
                if t_end_send is None and (next_n[0] >= self.total or now >= send_deadline):
                    t_end_send = now
                if t_end_send is not None and now > t_end_send + self.drain_s:
                    break
                for key, _ in sel.select(0.05):
                    c = key.data
                    try:
                        data = c.sock.recv(262144)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as e:
                        lost[type(e).__name__] = lost.get(type(e).__name__, 0) + 1
                        data = b""
                    if not data:
                        lost["closed"] = lost.get("closed", 0) + 1
                        sel.unregister(c.sock)
                        c.sock.close()
                        active -= 1
                        continue
                    c.buf += data
                    while True:
                        h = c.buf.find(b"\r\n\r\n")
                        if h < 0:
                            break
                        head = c.buf[:h].lower()
                        j = head.find(b"content-length:")
                        cl = 0
                        if j >= 0:
                            e = head.find(b"\r\n", j)
                            cl = int(head[j + 15:e if e > 0 else len(head)])
                        if len(c.buf) < h + 4 + cl:
                            break
                        status = int(head[9:12])
                        raw = c.buf[h + 4:h + 4 + cl]
                        c.buf = c.buf[h + 4 + cl:]
                        done_at = time.monotonic()
                        try:
                            body = json.loads(raw)
                        except ValueError:
                            body = None
                        answers.append((c.n, c.sent_at, done_at, status, body))
                        if not send(c):
                            sel.unregister(c.sock)
                            c.sock.close()
                            active -= 1
                            break
        finally:
            close_selector(sel, [c.sock for c in conns])
        return {"answers": answers, "sent": next_n[0], "unanswered": active,
                "connections_lost": lost, "t_start": t_start,
                "stopped_by_time_limit": next_n[0] < self.total}


def bench_throughput(args, workdir):
    out = {"agents": args.tp_agents, "connections": args.tp_connections,
           "goal": ">= 2000 commands/s, all delivered exactly once"}
    with LocalCluster(args.binary, workdir, "throughput", NETS["throughput"], args.tp_agents,
                      args.keep) as cl:
        rank0, rank0_node, leader_ip, expect, roles, _ = ranked_start(cl, args, out)
        out["idle_cpu"] = idle_window(cl, roles, args.idle_seconds)
        watch = JournalWatch({n["name"]: cl.journal(n) for n in cl.nodes
                              if n["id"] != rank0["id"]})
        try:
            log(f"throughput: warm-up {args.tp_warmup} commands ..")
            warm = CommandLoad(rank0["address"], min(args.tp_connections, 16), args.tp_warmup,
                               30.0, 10.0, "BENCH-TPW-").run()
            cpu = CpuWindow(cl.nodes)
            logs = LogWindow(cl)
            c0 = cl.commit_index(leader_ip)
            logs.start()
            cpu.start()
            log(f"throughput: {args.tp_commands} commands over {args.tp_connections} "
                f"connections (at most {args.tp_max_seconds} s) ..")
            run = CommandLoad(rank0["address"], args.tp_connections, args.tp_commands,
                              args.tp_max_seconds, args.tp_drain_seconds, "BENCH-TP-").run()
            cpu.stop()
            c1 = cl.commit_index(leader_ip)
            answers = run["answers"]
            out["log_window"] = logs.stop(roles, len(answers))
            out["cpu_during_run"] = cpu.report(roles)
            if c0 is not None and c1 is not None and answers:
                out["raft_entries_per_command"] = round((c1 - c0) / len(answers), 3)
            out["leader_after"] = cl.leader(rank0_node)
            cl.check_alive()
            # Settled answers mean acknowledged journals; give the agents a moment anyway.
            time.sleep(0.5)
        finally:
            watch.stop()
        good = []
        bad = []
        ids = []
        for n, sent_at, done_at, status, body in answers:
            why = check_answer(status, body, expect)
            if isinstance(body, dict) and body.get("id"):
                ids.append(body["id"])
            if why:
                bad.append({"n": n, "why": why})
            else:
                good.append((sent_at, done_at))
        warm_ids = [b["id"] for _, _, _, _, b in warm["answers"] if isinstance(b, dict)
                    and b.get("id")]
        t_first = run["t_start"]
        t_last = max((d for _, d in good), default=None)
        span = (t_last - t_first) if t_last else None
        rate = len(good) / span if span else 0.0
        per_second = {}
        for _, d in good:
            k = int(d - t_first)
            per_second[k] = per_second.get(k, 0) + 1
        full_seconds = [per_second.get(k, 0) for k in range(int(span or 0))]
        out["commands"] = {
            "warmup_sent": warm["sent"], "warmup_answered": len(warm["answers"]),
            "sent": run["sent"], "answered": len(answers), "settled_all_delivered": len(good),
            "not_fully_delivered": len(bad), "unanswered": run["unanswered"],
            "connections_lost": run["connections_lost"],
            "stopped_by_time_limit": run["stopped_by_time_limit"],
        }
        if bad:
            out["commands"]["not_fully_delivered_first"] = bad[:5]
        out["seconds"] = round(span, 3) if span else None
        out["commands_per_s"] = round(rate, 1)
        out["commands_per_s_each_full_second"] = summarize(full_seconds)
        out["latency_ms"] = latency_summary([d - s for s, d in good])
        if ids:
            out["command_ids"] = [min(ids), max(ids)]
        out["journals"] = watch.verify(ids + warm_ids, "BENCH-TP")
        watch.close()
        out["all_delivered_exactly_once"] = bool(
            not bad and run["unanswered"] == 0 and not run["connections_lost"]
            and len(answers) == run["sent"] and out["journals"]["ok"])
        out["met"] = out["all_delivered_exactly_once"] and rate >= 2000.0
        log(f"throughput: {rate:.0f} commands/s ({len(good)} of {run['sent']} settled with "
            f"delivered={expect}), exactly once {out['all_delivered_exactly_once']}")
    return out


# ---------------------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["fanout", "throughput"], help="run one part (default both)")
    p.add_argument("--binary", default=DEFAULT_BINARY, help="synod binary (build/synod)")
    p.add_argument("--fanout-agents", type=int, default=50, help="agents of the fan-out part (50)")
    p.add_argument("--fanout-warmup", type=int, default=10, help="warm-up commands (10)")
    p.add_argument("--fanout-commands", type=int, default=200, help="measured commands (200)")
    p.add_argument("--fanout-max-seconds", type=float, default=120.0,
                   help="stop sending fan-out commands after this long (120)")
    p.add_argument("--tp-agents", type=int, default=11, help="agents of the throughput part (11)")
    p.add_argument("--tp-connections", type=int, default=64,
                   help="concurrent keep-alive connections to rank 0's agent (64)")
    p.add_argument("--tp-commands", type=int, default=20000, help="commands to send (20000)")
    p.add_argument("--tp-warmup", type=int, default=200, help="warm-up commands (200)")
    p.add_argument("--tp-max-seconds", type=float, default=60.0,
                   help="no command is sent after this long (60)")
    p.add_argument("--tp-drain-seconds", type=float, default=35.0,
                   help="then wait this long at most for the outstanding answers (35; the "
                        "agent answers within its 30 s send timeout)")
    p.add_argument("--idle-seconds", type=float, default=3.0,
                   help="before sending, measure the agents' CPU this long with nothing sent "
                        "(3; 0 to skip)")
    p.add_argument("--workdir", default=None,
                   help="where the temporary workspaces go (default: the system temp dir; "
                        "e.g. /dev/shm to take the disk out of the figures)")
    p.add_argument("--rank-timeout", type=float, default=60.0,
                   help="wait this long at most after bootstrap for every agent to be ranked (60)")
    p.add_argument("--out", default=DEFAULT_OUT, help="JSON result file (bench/results/ranks-DATE"
                                                      ".json)")
    p.add_argument("--no-save", action="store_true", help="print only, write no result file")
    p.add_argument("--keep", action="store_true",
                   help="stop the agents but keep the workspaces (logs, journals, data)")
    args = p.parse_args()
    args.binary = os.path.abspath(args.binary)
    if not os.access(args.binary, os.X_OK):
        p.error(f"{args.binary} is not executable (build first)")
    if not (3 <= args.fanout_agents <= 200 and 2 <= args.tp_agents <= 200
            and 1 <= args.fanout_commands <= 100_000 and 0 <= args.fanout_warmup <= 10_000
            and 1 <= args.tp_connections <= 1024 and 1 <= args.tp_commands <= 1_000_000
            and 0 < args.tp_max_seconds <= 600 and 0 < args.fanout_max_seconds <= 600
            and 0 <= args.tp_drain_seconds <= 120 and 1 <= args.tp_warmup <= 100_000
            and 0 <= args.idle_seconds <= 60):
        p.error("argument out of range")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    result = {"benchmark": "ranks", "binary": args.binary, "machine": machine_info()}
    binary_before = binary_identity(args.binary)
    result["binary_identity"] = binary_before
    workdir = tempfile.mkdtemp(prefix="synod-ranks-bench-", dir=args.workdir)
    result["workspaces_in"] = workdir
    log(f"work dir {workdir}")
    parts = [args.only] if args.only else ["fanout", "throughput"]
    try:
        for part in parts:
            t0 = time.monotonic()
            m0, load0 = machine_busy_s(), loadavg()
            try:
                result[part] = {"fanout": bench_fanout, "throughput": bench_throughput}[part](
                    args, workdir)
            except (RuntimeError, OSError, KeyError, TypeError, ValueError,
                    subprocess.TimeoutExpired) as e:
                result[part] = {"error": f"{type(e).__name__}: {e}", "met": False}
                log(f"{part}: error: {e}")
            wall = time.monotonic() - t0
            result[part]["part_seconds"] = round(wall, 1)
            result[part]["machine_during_part"] = {
                "busy_cpu_pct_of_all_cores": round(
                    100.0 * (machine_busy_s() - m0) / wall / os.cpu_count(), 1),
                "loadavg_before": load0,
                "loadavg_after": loadavg(),
            }
    except Exception as e:  # report, still print the JSON gathered so far
        record_failure(result, e)
    finally:
        note_binary_change(result, args.binary, binary_before)
        result["teardown_problems"] = ABNORMAL
        result["http_errors"] = HTTP_ERRORS
        keep_or_remove(result, workdir, args.keep, "workspaces")
    summary = {}
    for part in ("fanout", "throughput"):
        r = result.get(part)
        if not r:
            continue
        if part == "fanout":
            summary[part] = {"met": r.get("met"), "p99_ms": (r.get("latency_ms") or {}).get("p99"),
                             "all_acknowledged": r.get("all_acknowledged")}
        else:
            summary[part] = {"met": r.get("met"), "commands_per_s": r.get("commands_per_s"),
                             "all_delivered_exactly_once": r.get("all_delivered_exactly_once")}
    result["summary"] = summary
    order = ["benchmark", "binary", "machine", "summary", "fanout", "throughput"]
    ordered_result = ordered(result, order)
    text = json.dumps(ordered_result, indent=2)
    if not args.no_save:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as f:
                f.write(text + "\n")
            log(f"result written to {args.out}")
        except OSError as e:
            log(f"cannot write {args.out}: {e}")
    print(text)
    if "interrupted" in result:
        return 130
    failed = "error" in result or any("error" in result.get(k, {}) for k in parts)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
