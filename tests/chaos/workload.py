"""Clients, the recorded history, a cluster monitor and the checks of the
chaos suite (Python 3 standard library).

Clients are threads (run them in the lab's clients' host: start them after
`Lab.create()`), each sending one request at a time over a fresh connection to
a random node, at a modest total rate:
  * reads and writes (PUT, DELETE) of a small set of register keys r0..rK with
    a unique value per write: the history checked for linearizability;
  * writes of unique "ledger" keys L-<client>-<n>, never overwritten: after
    each nemesis every acknowledged one must be on every node with its value.
Outcomes as the checker wants them: a write answered 200 is ok; 4xx other than
408/409/429 (and a connection that could not even be opened: nothing was
sent) is fail; a timeout, 5xx or a connection broken after sending is info
(unknown). A read answered 200 {"key","value"} returns the value, 404 returns
nothing; any other answer (503 included) or error is a failed read, dropped by
the checker. Reads are plain `GET /v1/kv/{key}`: linearizable by the API
contract; the checks read with `?stale` after the cluster has settled.

The monitor polls every node's `GET /v1/cluster` and keeps what they said:
leader changes, and any term in which two different leaders were reported.
"""

import http.client
import json
import random
import threading
import time
import uuid

import lab as labmod
from linearizability import DELETE, FAIL, INFO, OK, READ, WRITE, Op

ORIGIN = time.monotonic()
WRITE_TIMEOUT_S = 7.0            # outlasts the agent's 5 s propose timeout
READ_TIMEOUT_S = 3.0
LEDGER_PREFIX = "L-"
REGISTER_PREFIX = "r"


class ChaosFailure(AssertionError):
    pass


def now():
    """Seconds since this module was loaded: the clock of every recorded time."""
    return time.monotonic() - ORIGIN


# --------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------

class History:
    """Every operation of the run (thread-safe append)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.ops = []

    def add(self, op):
        with self._lock:
            op.op_id = len(self.ops)
            self.ops.append(op)
        return op

    def snapshot(self):
        with self._lock:
            return list(self.ops)

    def register_ops(self):
        return [op for op in self.snapshot() if op.key.startswith(REGISTER_PREFIX)]

    def ledger_acked(self):
        """{key: value} of every acknowledged ledger write."""
        return {op.key: op.value for op in self.snapshot()
                if op.key.startswith(LEDGER_PREFIX) and op.outcome == OK}

    def between(self, t0, t1):
        return [op for op in self.snapshot() if t0 <= op.invoke < t1]


def write(history, node, key, value, process, timeout=WRITE_TIMEOUT_S):
    """PUT (or DELETE when value is None) through `node`; recorded and returned."""
    kind = DELETE if value is None else WRITE
    method = "DELETE" if value is None else "PUT"
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    t0 = now()
    try:
        r = labmod.request(node.addr, method, "/v1/kv/" + key,
                           body=None if value is None else value.encode(), headers=headers,
                           timeout=timeout)
        outcome = OK if r.status == 200 else \
            FAIL if 400 <= r.status < 500 and r.status not in (408, 409, 429) else INFO
        detail = str(r.status) if r.status == 200 else f"{r.status} {_error_of(r)}"
    except labmod.NotSent as e:
        outcome, detail = FAIL, f"not sent: {e}"
    except (OSError, http.client.HTTPException) as e:
        outcome, detail = INFO, f"{type(e).__name__}: {e}"
    return history.add(Op(kind, key, value, t0, now(), outcome, process, node.name,
                          detail=detail))


def read(history, node, key, process, stale=False, timeout=READ_TIMEOUT_S):
    """GET through `node` (with ?stale if asked); recorded and returned. A read
    that got no value or 404 has outcome FAIL."""
    t0 = now()
    value, outcome = None, FAIL
    try:
        r = labmod.request(node.addr, "GET", "/v1/kv/" + key + ("?stale" if stale else ""),
                           timeout=timeout)
        doc = r.json() if r.status == 200 else None
        if isinstance(doc, dict) and isinstance(doc.get("value"), str):
            value, outcome = doc["value"], OK
        elif r.status == 404:
            outcome = OK
        detail = str(r.status) if outcome == OK else f"{r.status} {_error_of(r)}"
    except (OSError, http.client.HTTPException) as e:
        detail = f"{type(e).__name__}: {e}"
    return history.add(Op(READ, key, value, t0, now(), outcome, process, node.name,
                          detail=detail))


def _error_of(reply):
    doc = reply.json()
    return doc.get("error", "")[:120] if isinstance(doc, dict) else reply.body[:120].decode(
        "utf-8", "replace")


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------

class Clients:
    """`threads` client threads (named <name>0, <name>1, ...) sending `rate`
    ops/s in total (None: as fast as they can) for at most `max_seconds`; a
    share `ledger_share` of the ops are ledger writes."""

    def __init__(self, lab, history, threads=6, rate=60.0, keys=8, ledger_share=0.1,
                 seed=None, max_seconds=3600.0, name="c"):
        self.lab = lab
        self.name = name
        self.history = history
        self.threads = threads
        self.rate = rate
        self.keys = [f"{REGISTER_PREFIX}{i}" for i in range(keys)]
        self.ledger_share = ledger_share
        self.rng = random.Random(seed)
        self.deadline = time.monotonic() + max_seconds
        self.go = threading.Event()
        self.stopping = threading.Event()
        self.idle = [threading.Event() for _ in range(threads)]
        self.workers = []

    def start(self):
        self.go.set()
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i, random.Random(self.rng.random())),
                                 name=f"client-{i}", daemon=True)
            self.workers.append(t)
            t.start()
        return self

    def pause(self):
        """Stop issuing ops and wait until none is in flight."""
        self.go.clear()
        deadline = time.monotonic() + WRITE_TIMEOUT_S + 3.0
        for worker, ev in zip(self.workers, self.idle):
            if worker.is_alive():
                ev.wait(max(0.0, deadline - time.monotonic()))

    def resume(self):
        for ev in self.idle:
            ev.clear()
        self.go.set()

    def stop(self):
        self.stopping.set()
        self.go.set()
        for t in self.workers:
            t.join(WRITE_TIMEOUT_S + 3.0)

    def _run(self, i, rng):
        name = f"{self.name}{i}"
        interval = self.threads / self.rate if self.rate else 0.0
        next_at = time.monotonic() + rng.random() * interval
        for seq in range(10_000_000):
            time.sleep(max(0.0, next_at - time.monotonic()))
            if not self._wait_turn(i):
                return
            next_at = max(next_at + interval, time.monotonic() - interval)
            self._one_op(name, seq, rng)

    def _wait_turn(self, i):
        """Block while paused (saying so in idle[i]); False once stopping or past
        the deadline."""
        if not self.go.is_set():
            self.idle[i].set()
            self.go.wait(max(0.0, self.deadline - time.monotonic()))
        return not self.stopping.is_set() and time.monotonic() < self.deadline

    def _one_op(self, name, seq, rng):
        node = rng.choice(self.lab.nodes)
        dice = rng.random()
        if dice < self.ledger_share:
            write(self.history, node, f"{LEDGER_PREFIX}{name}-{seq}", f"{name}:{seq}", name)
            return
        key = rng.choice(self.keys)
        if dice < 0.55:
            read(self.history, node, key, name)
        elif dice < 0.93:
            write(self.history, node, key, f"{name}:{seq}", name)
        else:
            write(self.history, node, key, None, name)


# --------------------------------------------------------------------------
# Monitor
# --------------------------------------------------------------------------

class Monitor:
    """Polls every node's /v1/cluster every `interval` s (one thread each)."""

    def __init__(self, lab, interval=0.1, max_seconds=3600.0):
        self.lab = lab
        self.interval = interval
        self.deadline = time.monotonic() + max_seconds
        self._lock = threading.Lock()
        self.first_seen = {}          # (term, leader name) -> first time any node reported it
        self.leaders_in_term = {}     # term -> {leader names}
        self.stopping = threading.Event()
        self.workers = []

    def start(self):
        for node in self.lab.nodes:
            t = threading.Thread(target=self._poll, args=(node,), name=f"monitor-{node.name}",
                                 daemon=True)
            self.workers.append(t)
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.workers:
            t.join(2.0)

    def _poll(self, node):
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            view = node.cluster(timeout=0.5) if node.alive() and not node.paused else None
            leader = (view or {}).get("leader") or {}
            if leader.get("name"):
                self._note(view.get("term"), leader["name"])
            self.stopping.wait(self.interval)

    def _note(self, term, leader):
        with self._lock:
            self.first_seen.setdefault((term, leader), now())
            self.leaders_in_term.setdefault(term, set()).add(leader)

    def leader_changes(self, t0, t1):
        """New (term, leader) pairs first reported in [t0, t1)."""
        with self._lock:
            return sum(1 for t in self.first_seen.values() if t0 <= t < t1)

    def split_brains(self):
        """{term: leaders} for every term in which two leaders were reported."""
        with self._lock:
            return {t: sorted(ls) for t, ls in self.leaders_in_term.items() if len(ls) > 1}


# --------------------------------------------------------------------------
# Cluster state
# --------------------------------------------------------------------------

def views(nodes, timeout=1.0):
    """{name: /v1/cluster or None} of the given nodes (in parallel)."""
    out = {}

    def get(n):
        out[n.name] = n.cluster(timeout=timeout) if n.alive() and not n.paused else None
    threads = [threading.Thread(target=get, args=(n,), daemon=True) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 1.0)
    return out


def leader_name(vs):
    """The leader a strict majority of the views name, or None."""
    names = [((v or {}).get("leader") or {}).get("name") for v in vs.values()]
    for name in set(names) - {None}:
        if names.count(name) * 2 > len(names):
            return name
    return None


def converged(lab, nodes):
    """True when every node of `nodes` is running, a member, names the same
    leader (one of the lab's), has quorum, and has applied the leader's commit
    index."""
    vs = views(nodes)
    if any(v is None for v in vs.values()):
        return False
    leaders = {(v.get("leader") or {}).get("name") for v in vs.values()}
    if len(leaders) != 1 or None in leaders:
        return False
    leader = lab.node(leaders.pop())
    lv = vs.get(leader.name) or leader.cluster()
    if lv is None:
        return False
    return all(v.get("quorum") is True and v.get("phase") == "member" and
               v.get("applied_index", -1) >= lv.get("commit_index", 1 << 62)
               for v in vs.values())


def wait_converged(lab, nodes=None, timeout=30.0, what="the cluster to converge"):
    """Seconds until converged(); raises ChaosFailure after `timeout`."""
    nodes = nodes or lab.nodes
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if converged(lab, nodes):
            return time.monotonic() - t0
        time.sleep(0.1)
    detail = "; ".join(f"{n}: {summary(v)}" for n, v in views(nodes).items())
    raise ChaosFailure(f"timed out after {timeout:.0f} s waiting for {what}: {detail}")


def summary(view):
    if view is None:
        return "no answer"
    leader = (view.get("leader") or {}).get("name")
    return (f"leader={leader} term={view.get('term')} commit={view.get('commit_index')} "
            f"applied={view.get('applied_index')} quorum={view.get('quorum')} "
            f"phase={view.get('phase')}")


# --------------------------------------------------------------------------
# Checks after a nemesis
# --------------------------------------------------------------------------

class KeepAliveReader:
    """GET ?stale over one kept-alive connection to a node."""

    def __init__(self, node):
        self.node = node
        self.conn = None

    def get(self, key):
        """(status, value or None); reconnects once on a broken connection."""
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.node.addr, labmod.API_PORT,
                                                       timeout=READ_TIMEOUT_S)
            try:
                self.conn.request("GET", f"/v1/kv/{key}?stale")
                r = self.conn.getresponse()
                body = r.read()
                if r.status != 200:
                    return r.status, None
                return 200, json.loads(body.decode("utf-8")).get("value")
            except (OSError, http.client.HTTPException, ValueError):
                self.close()
                if attempt == 1:
                    raise
        return None, None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def read_everywhere(nodes, keys):
    """{node name: {key: (status, value)}}, one reading thread per node."""
    out = {}

    def read_all(node):
        reader = KeepAliveReader(node)
        got = {}
        try:
            for key in keys:
                got[key] = reader.get(key)
        except (OSError, http.client.HTTPException) as e:
            got["<error>"] = (None, str(e))
        finally:
            reader.close()
        out[node.name] = got
    threads = [threading.Thread(target=read_all, args=(n,), daemon=True) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120.0)
    return out


def lost_ledger_writes(history, nodes, skip=()):
    """[(key, node, what it returned)] for acknowledged ledger writes (but
    those in `skip`) missing or wrong on a node (read with ?stale, once the
    cluster has converged)."""
    acked = {k: v for k, v in history.ledger_acked().items() if k not in skip}
    got = read_everywhere(nodes, sorted(acked))
    return [(key, name, got[name].get(key)) for name in got for key in sorted(acked)
            if got[name].get(key) != (200, acked[key])]


def stale_registers(history, leader, nodes, keys):
    """Read every register key once through `leader` (plain GET: linearizable,
    recorded in the history as process "verifier"), then on every node with
    ?stale (not recorded: a ?stale read may be old by contract). On a
    converged cluster with no write in flight every node must hold what the
    linearizable read returned. Returns [(key, expected, {node: (status,
    value)})] for the keys some node got wrong."""
    truth = {key: read(history, leader, key, "verifier") for key in keys}
    got = read_everywhere(nodes, keys)
    bad = []
    for key, op in truth.items():
        if op.outcome != OK:
            continue
        expected = (200, op.value) if op.value is not None else (404, None)
        values = {name: got[name].get(key, (None, None)) for name in got}
        if any(v != expected for v in values.values()):
            bad.append((key, expected, values))
    return bad
