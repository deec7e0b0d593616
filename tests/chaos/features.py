"""Timers and file sync under chaos (Python 3 standard library; shared by
tests/chaos/chaos_test.py and bench/chaos_bench.py).

TimerProbe: a webhook receiver (http.server) in the clients' host (start it
after `Lab.create()`, from the main thread or a thread it started), and a
thread creating timers through random nodes all along the nemeses:
`POST /v1/timers {"url": <receiver>/hook/<tag>, "delay": "2s".."5s",
"late_policy": "fire", "idempotency_key": <tag>}`. A 200 with an id is an
acknowledged timer; any other answer (or a broken connection) is "unknown":
not counted as created unless a webhook for its tag arrives. `finish()` waits
(bounded) until every acknowledged timer fired, then reports:
  missed       acknowledged timers whose webhook never arrived (a failure;
               their status on the leader is reported);
  duplicates   timers received more than once (the README's delivery
               contract allows a repeat when the sending node crashes or is
               cut off between sending and recording the attempt: counted and
               reported, not a failure; `same_attempt` says how many carried
               the same Synod-Attempt, i.e. were such repeats);
  early        webhooks that arrived more than 50 ms before Synod-Due-Nanos
               (the due time on the leader's clock; under a clock step the
               skew shows here and is reported, not failed);
  lateness_ms  arrival (receiver's clock) minus Synod-Due-Nanos, first
               delivery of each timer: p50, p99, max; and per phase (the
               nemesis running when the timer was created);
  *_vs_request the same against the receiver's own clock: the request's
               send time + its delay (never later than the true due time, so
               `early_vs_request` is early whatever the nodes' clocks say;
               lateness includes the creation's round trip).

Folder checks (file sync): `folder_digest(path)` maps every path of a node's
sync folder (files, dirs, links; `.synod-tmp-*` partial files left out) to
its SHA-256 / kind; `wait_folders_identical()` polls until every node's
folder digests the same and reports how long it took, the conflict copies
(`*.sync-conflict-*`) and, on timeout, the differences.
"""

import hashlib
import http.client
import http.server
import json
import os
import random
import threading
import time
import urllib.parse
import uuid

import lab as labmod
import workload as wl

EARLY_TOLERANCE_NS = 50_000_000


class TimerProbe:
    """Creates timers during the run and checks that none was missed."""

    def __init__(self, lab, log, rate=1.0, delays=(2, 5), seed=None, max_seconds=3600.0):
        self.lab = lab
        self.log = log
        self.rate = rate
        self.delays = delays
        self.rng = random.Random(seed)
        self.deadline = time.monotonic() + max_seconds
        self.phase = "start"
        self.lock = threading.Lock()
        self.created = {}       # tag -> {"id", "node", "phase", "t", "status", "detail", "due"}
        self.calls = {}         # tag -> [{"at", "due", "attempt", "node", "term", "id"}]
        self.stopping = threading.Event()
        self.thread = None
        self.server = None

    # ---- the receiver ----

    def start(self):
        probe = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                at = time.time_ns()
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                parts = urllib.parse.urlparse(self.path).path.strip("/").split("/")
                tag = parts[1] if len(parts) >= 2 and parts[0] == "hook" else self.path
                call = {"at": at, "due": int(self.headers.get("Synod-Due-Nanos") or 0),
                        "attempt": self.headers.get("Synod-Attempt"),
                        "node": self.headers.get("Synod-Node"),
                        "term": self.headers.get("Synod-Term"),
                        "id": self.headers.get("Synod-Timer-Id")}
                with probe.lock:
                    probe.calls.setdefault(tag, []).append(call)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        addr = f"{self.lab.subnet}.{labmod.CLIENT_HOST}"
        self.server = http.server.ThreadingHTTPServer((addr, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{addr}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="webhooks",
                         daemon=True).start()
        self.thread = threading.Thread(target=self._create_loop, name="timers", daemon=True)
        self.thread.start()
        return self

    def stop_creating(self):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(15.0)

    def close(self):
        self.stop_creating()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # ---- creating ----

    def _create_loop(self):
        interval = 1.0 / self.rate
        next_at = time.monotonic() + interval * self.rng.random()
        for _ in range(1_000_000):
            if self.stopping.wait(max(0.0, next_at - time.monotonic())):
                return
            if time.monotonic() > self.deadline:
                return
            next_at += interval
            nodes = [n for n in self.lab.nodes if n.alive() and not n.paused] or self.lab.nodes
            self.create(self.rng.choice(nodes))

    def create(self, node, delay_s=None):
        """One timer through `node`; returns its record."""
        tag = uuid.uuid4().hex[:16]
        delay_s = delay_s or self.rng.randint(*self.delays)
        body = {"url": f"{self.base}/hook/{tag}", "delay": f"{delay_s}s", "late_policy": "fire",
                "idempotency_key": tag}
        t0 = time.time_ns()
        rec = {"node": node.name, "phase": self.phase, "t": t0, "delay_s": delay_s}
        try:
            r = labmod.request(node.addr, "POST", "/v1/timers", body=json.dumps(body).encode(),
                               headers={"Content-Type": "application/json"}, timeout=7.0)
            doc = r.json()
            if r.status == 200 and isinstance(doc, dict) and doc.get("id"):
                rec.update(status="acked", id=doc["id"])
            else:
                rec.update(status="unknown", detail=f"{r.status} {r.body[:100]!r}")
        except labmod.NotSent as e:
            rec.update(status="not sent", detail=str(e))
        except (OSError, http.client.HTTPException) as e:
            rec.update(status="unknown", detail=f"{type(e).__name__}: {e}")
        rec["answered_ms"] = round((time.time_ns() - t0) / 1e6, 1)
        with self.lock:
            self.created[tag] = rec
        return rec

    # ---- checking ----

    def acked(self):
        with self.lock:
            return {t: r for t, r in self.created.items() if r["status"] == "acked"}

    def wait_fired(self, bound_s):
        """Wait until every acknowledged timer's webhook arrived, at most
        bound_s past the latest due time; returns the seconds waited."""
        t0 = time.monotonic()
        acked = self.acked()
        latest_due = max((r["t"] + r["delay_s"] * 1e9 for r in acked.values()), default=0)
        end = t0 + max(0.0, (latest_due - time.time_ns()) / 1e9) + bound_s
        while time.monotonic() < end:
            with self.lock:
                if all(t in self.calls for t in acked):
                    break
            time.sleep(0.1)
        return round(time.monotonic() - t0, 2)

    def finish(self, bound_s=30.0, leader=None):
        """Stop creating, wait for the webhooks, return the report (dict) and
        the failures (list of str)."""
        self.stop_creating()
        waited = self.wait_fired(bound_s)
        time.sleep(1.5)          # a late duplicate (backup node) still counts
        with self.lock:
            created = dict(self.created)
            calls = {t: list(c) for t, c in self.calls.items()}
        acked = {t: r for t, r in created.items() if r["status"] == "acked"}
        unknown = {t: r for t, r in created.items() if r["status"] != "acked"}
        missed = sorted(t for t in acked if t not in calls)
        strays = sorted(t for t in calls if t not in created)
        dups = {t: c for t, c in calls.items() if len(c) > 1}
        same_attempt = sum(1 for c in dups.values() if len({x["attempt"] for x in c}) < len(c))
        early, late, by_phase = [], [], {}
        early_req, late_req, req_by_phase = [], [], {}
        for tag, cs in calls.items():
            first = min(cs, key=lambda c: c["at"])
            rec = created.get(tag)
            if rec is not None:
                # due by the receiver's clock: between sending the request and its
                # answer, plus the delay
                lo = rec["t"] + rec["delay_s"] * 1e9
                late_req.append((first["at"] - lo) / 1e6)
                req_by_phase.setdefault(rec["phase"], []).append(late_req[-1])
                if first["at"] < lo - EARLY_TOLERANCE_NS:
                    early_req.append((tag, round((lo - first["at"]) / 1e6, 1), first["node"]))
            if first["due"]:
                ms = (first["at"] - first["due"]) / 1e6
                late.append(ms)
                phase = created.get(tag, {}).get("phase", "?")
                by_phase.setdefault(phase, []).append(ms)
            for c in cs:
                if c["due"] and c["at"] < c["due"] - EARLY_TOLERANCE_NS:
                    early.append((tag, round((c["due"] - c["at"]) / 1e6, 1), c["node"]))
        report = {
            "created_acked": len(acked),
            "create_not_acked": len(unknown),
            "not_acked_but_fired": sum(1 for t in unknown if t in calls),
            "not_acked_answers": _count(r.get("detail", "")[:40] for r in unknown.values()),
            "missed": len(missed),
            "missed_examples": [self._describe_missed(t, acked[t], leader) for t in missed[:5]],
            "duplicates": len(dups),
            "duplicate_deliveries": sum(len(c) - 1 for c in dups.values()),
            "duplicates_same_attempt": same_attempt,
            "duplicate_examples": [{"tag": t, "phase": created.get(t, {}).get("phase"),
                                    "deliveries": [(c["node"], c["attempt"], c["term"],
                                                    round((c["at"] - c["due"]) / 1e6, 1))
                                                   for c in cs]}
                                   for t, cs in list(dups.items())[:5]],
            "early": len(early), "early_examples_ms": early[:5],
            "lateness_ms": _pct(late),
            "early_vs_request": len(early_req), "early_vs_request_examples_ms": early_req[:5],
            "lateness_vs_request_ms": _pct(late_req),
            "lateness_vs_request_ms_by_phase": {p: _pct(v) for p, v in req_by_phase.items()},
            "lateness_ms_by_phase": {p: _pct(v) for p, v in by_phase.items()},
            "strays": len(strays),
            "waited_s": waited,
        }
        failures = []
        if missed:
            failures.append(f"{len(missed)} of {len(acked)} acknowledged timers never fired: "
                            f"{report['missed_examples'][:3]}")
        return report, failures

    def _describe_missed(self, tag, rec, leader):
        out = {"tag": tag, "id": rec["id"], "via": rec["node"], "phase": rec["phase"]}
        if leader is not None:
            try:
                r = labmod.request(leader.addr, "GET", f"/v1/timers/{rec['id']}", timeout=3.0)
                doc = r.json() or {}
                out["status"] = doc.get("status", f"HTTP {r.status}")
                out["attempts"] = doc.get("attempts", [])[:3]
            except (OSError, http.client.HTTPException) as e:
                out["status"] = f"{type(e).__name__}: {e}"
        return out


def _count(items):
    out = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


def _pct(values):
    if not values:
        return None
    s = sorted(values)
    return {"n": len(s), "p50": round(s[len(s) // 2], 1),
            "p99": round(s[min(len(s) - 1, int(len(s) * 0.99))], 1), "max": round(s[-1], 1),
            "min": round(s[0], 1)}


# --------------------------------------------------------------------------
# File sync
# --------------------------------------------------------------------------

def folder_digest(root):
    """{relative path: "d" | "l:<target>" | sha256 hex} of everything under
    root (.synod-tmp-* partial files left out)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        for d in list(dirnames):
            p = os.path.join(dirpath, d)
            rel = os.path.normpath(os.path.join(rel_dir, d))
            if os.path.islink(p):
                out[rel] = "l:" + os.readlink(p)
                dirnames.remove(d)
            else:
                out[rel] = "d"
        for f in filenames:
            if f.startswith(".synod-tmp-"):
                continue
            p = os.path.join(dirpath, f)
            rel = os.path.normpath(os.path.join(rel_dir, f))
            try:
                if os.path.islink(p):
                    out[rel] = "l:" + os.readlink(p)
                    continue
                h = hashlib.sha256()
                with open(p, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
                out[rel] = h.hexdigest()
            except OSError:
                out[rel] = "<unreadable>"
    return out


def folder_differences(digests):
    """[(path, {node: digest or None})] where the nodes' folders differ."""
    paths = set()
    for d in digests.values():
        paths |= set(d)
    out = []
    for p in sorted(paths):
        vals = {n: d.get(p) for n, d in digests.items()}
        if len(set(vals.values())) > 1:
            out.append((p, vals))
    return out


def wait_folders_identical(folders, bound_s, since=None):
    """Poll every 0.25 s until every folder ({node: path}) digests the same.
    Returns a report: converged, seconds (from `since`, wl.now() clock, else
    from the call), files, conflict copies, differences on timeout."""
    t0 = wl.now()
    since = t0 if since is None else since
    diffs = []
    for _ in range(100_000):
        digests = {n: folder_digest(p) for n, p in folders.items()}
        diffs = folder_differences(digests)
        if not diffs:
            any_digest = next(iter(digests.values()), {})
            return {"converged": True, "seconds": round(wl.now() - since, 2),
                    "entries": len(any_digest),
                    "conflict_copies": sorted(p for p in any_digest if ".sync-conflict-" in p)}
        if wl.now() - t0 > bound_s:
            break
        time.sleep(0.25)
    return {"converged": False, "seconds": None, "bound_s": bound_s,
            "differences": len(diffs),
            "difference_examples": [(p, {n: (v[:12] if v else v) for n, v in vals.items()})
                                    for p, vals in diffs[:8]]}
