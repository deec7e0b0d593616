"""Linearizability checker for a history of key/value register operations.

The history is a list of `Op`: write(key, value), delete(key) (a write of
None) and read(key) -> value or None, each with the time it was invoked, the
time it completed and an outcome:

  ok    it happened (a read's value is what it returned);
  fail  it definitely did not happen (dropped from the check);
  info  it may or may not have happened: as in Knossos it stays pending to
        the end of the history (a read of unknown outcome tells nothing and
        is dropped).

A register is linearizable per key (P-compositionality), so every key is
checked on its own with Wing & Gong's search as improved by Lowe (just-in-time
linearization, memoizing the pairs (set of linearized ops, register value)
already explored), the algorithm of Porcupine. A set of ops is memoized by a
128-bit Zobrist hash (the XOR of a random number per op): constant time and
memory per step; a collision, about 2^-100 likely, could only hide a branch.
The search of one key is bounded by a step budget and a deadline; past either
the key's verdict is "unknown" instead of a hang.

`stale_reads()` is a cheaper, narrower test reported next to the verdict: a
read that returned a value older than a write acknowledged before the read
started (or nothing where no delete could explain it). Such a read proves a
key not linearizable, so the search is skipped for a key that has one.

Python 3 standard library only.
"""

import bisect
import collections
import dataclasses
import math
import random
import time

OK, FAIL, INFO = "ok", "fail", "info"
WRITE, DELETE, READ = "write", "delete", "read"
LINEARIZABLE, NOT_LINEARIZABLE, UNKNOWN = True, False, "unknown"

DEFAULT_MAX_STEPS = 2_000_000      # search steps per key (about 3 s)
DEFAULT_MAX_SECONDS = 30.0         # wall time per key


@dataclasses.dataclass
class Op:
    """One client operation. `complete` is None when it never returned."""
    kind: str                      # WRITE, DELETE or READ
    key: str
    value: object                  # written value, or the value read (None = absent)
    invoke: float
    complete: object               # float or None
    outcome: str                   # OK, FAIL or INFO
    process: object = None         # the client that issued it
    node: object = None            # the node it was sent to
    op_id: int = -1                # its number in the history (check_history sets
                                   # it if negative)
    detail: str = ""               # what the server answered, for reports

    def writes(self):
        return self.kind in (WRITE, DELETE)

    def written(self):
        """The value a write leaves in the register (None for a delete)."""
        return None if self.kind == DELETE else self.value

    def describe(self):
        end = "..." if self.outcome == INFO or self.complete is None else f"{self.complete:.3f}"
        what = {WRITE: f"write {self.value!r}", DELETE: "delete",
                READ: f"read -> {self.value!r}"}[self.kind]
        where = f" by {self.process}" if self.process is not None else ""
        where += f" on {self.node}" if self.node is not None else ""
        return f"#{self.op_id} {what}{where} [{self.invoke:.3f}, {end}] {self.outcome}"


@dataclasses.dataclass
class KeyResult:
    key: str
    valid: object                  # True, False or "unknown"
    ops: int                       # ops searched (after dropping those that cannot matter)
    steps: int
    explanation: str = ""
    involved: list = dataclasses.field(default_factory=list)   # Op


@dataclasses.dataclass
class HistoryResult:
    valid: object                  # True, False or "unknown"
    keys: list                     # KeyResult for every key
    seconds: float

    def failures(self):
        return [k for k in self.keys if k.valid is NOT_LINEARIZABLE]

    def unknowns(self):
        return [k for k in self.keys if k.valid == UNKNOWN]

    def summary(self, most=3):
        if self.valid is LINEARIZABLE:
            return f"linearizable ({len(self.keys)} keys, {self.seconds:.1f} s)"
        lines = [f"{'NOT linearizable' if self.valid is NOT_LINEARIZABLE else 'unknown'}: "
                 f"{len(self.failures())} key(s) not linearizable, {len(self.unknowns())} "
                 f"unknown of {len(self.keys)}"]
        for k in (self.failures() + self.unknowns())[:most]:
            lines.append(f"  key {k.key!r}: {k.explanation}")
        return "\n".join(lines)


def check_history(ops, max_steps=DEFAULT_MAX_STEPS, max_seconds=DEFAULT_MAX_SECONDS):
    """Check every key of `ops` (a list of Op); returns a HistoryResult."""
    t0 = time.monotonic()
    by_key = {}
    for i, op in enumerate(ops):
        if op.op_id < 0:
            op.op_id = i
        by_key.setdefault(op.key, []).append(op)
    results = [check_key(key, key_ops, max_steps, max_seconds)
               for key, key_ops in sorted(by_key.items())]
    if any(r.valid is NOT_LINEARIZABLE for r in results):
        valid = NOT_LINEARIZABLE
    elif any(r.valid == UNKNOWN for r in results):
        valid = UNKNOWN
    else:
        valid = LINEARIZABLE
    return HistoryResult(valid, results, time.monotonic() - t0)


def check_key(key, ops, max_steps=DEFAULT_MAX_STEPS, max_seconds=DEFAULT_MAX_SECONDS):
    """Check the ops of one key (all with that key); returns a KeyResult."""
    ops = relevant_ops(ops)
    written = {op.value for op in ops if op.kind == WRITE}
    orphan = next((op for op in ops if op.kind == READ and op.value is not None and
                   op.value not in written), None)
    if orphan is not None:
        return KeyResult(key, NOT_LINEARIZABLE, len(ops), 0,
                         f"{orphan.describe()} returned a value no write wrote", [orphan])
    stale = _stale_reads_of_key(ops)
    if stale:
        return KeyResult(key, NOT_LINEARIZABLE, len(ops), 0, stale[0].describe(),
                         [op for op in (stale[0].read, stale[0].source, stale[0].newer) if op])
    return search(key, ops, max_steps, max_seconds)


def search(key, ops, max_steps=DEFAULT_MAX_STEPS, max_seconds=DEFAULT_MAX_SECONDS):
    """The full search alone over the ops of one key (no shortcut)."""
    return _Search(key, relevant_ops(ops), max_steps, max_seconds).run()


def relevant_ops(ops):
    """The ops that can matter to the verdict: failed ops and reads without an
    answer are dropped, and so is an unknown write nobody read (it may as well
    never have happened: no read depends on it)."""
    done = [op for op in ops if op.outcome == OK or (op.outcome == INFO and op.writes())]
    read_values = {op.value for op in done if op.kind == READ and op.value is not None}
    none_reads_end = [op.complete for op in done if op.kind == READ and op.value is None]
    latest_none_read = max(none_reads_end, default=-math.inf)

    def matters(op):
        if op.outcome == OK:
            return True
        if op.kind == WRITE:
            return op.value in read_values
        return op.invoke < latest_none_read      # an unknown delete before a read of nothing
    return [op for op in done if matters(op)]


class _Search:
    """Lowe's just-in-time linearization of one register's history.

    Entries (a call and a return per op, sorted by time, a call before a
    return at the same instant) form a doubly linked list; linearizing an op
    lifts its two entries out of it, backtracking puts them back."""

    def __init__(self, key, ops, max_steps, max_seconds):
        self.key = key
        self.ops = ops
        self.max_steps = max_steps
        self.deadline = time.monotonic() + max_seconds
        self.steps = 0
        self.best_depth = -1
        self.best = None               # (stuck op index, register value, linearized ops)

    def run(self):
        if not self.ops:
            return KeyResult(self.key, LINEARIZABLE, 0, 0)
        self._build_list()
        outcome = self._search()
        if outcome is True:
            return KeyResult(self.key, LINEARIZABLE, len(self.ops), self.steps)
        if outcome is None:
            return KeyResult(self.key, UNKNOWN, len(self.ops), self.steps,
                             f"search stopped after {self.steps} steps (budget "
                             f"{self.max_steps} steps or the deadline)")
        explanation, involved = self._explain()
        return KeyResult(self.key, NOT_LINEARIZABLE, len(self.ops), self.steps,
                         explanation, involved)

    def _build_list(self):
        events = []
        for i, op in enumerate(self.ops):
            end = op.complete if op.outcome == OK else math.inf
            events.append((op.invoke, 0, i))
            events.append((end, 1, i))
        events.sort()
        n = len(events)
        # Entry 0 is the head sentinel; entry k (1..n) is events[k-1].
        self.op_of = [-1] + [e[2] for e in events]
        self.is_call = [False] + [e[1] == 0 for e in events]
        self.nxt = list(range(1, n + 1)) + [0]      # 0 also ends the list
        self.prv = [0] + list(range(0, n))
        self.match = [0] * (n + 1)
        call_of = {}
        for k in range(1, n + 1):
            if self.is_call[k]:
                call_of[self.op_of[k]] = k
            else:
                self.match[call_of[self.op_of[k]]] = k

    def _lift(self, k):
        nxt, prv = self.nxt, self.prv
        nxt[prv[k]] = nxt[k]
        prv[nxt[k]] = prv[k]
        m = self.match[k]
        nxt[prv[m]] = nxt[m]
        prv[nxt[m]] = prv[m]

    def _unlift(self, k):
        nxt, prv = self.nxt, self.prv
        m = self.match[k]
        nxt[prv[m]] = m
        prv[nxt[m]] = m
        nxt[prv[k]] = k
        prv[nxt[k]] = k

    def _step(self, state, op):
        """(ok, new state) of applying `op` to a register holding `state`."""
        if op.kind == READ:
            return op.value == state, state
        return True, op.written()

    def _search(self):
        """True if linearizable, False if not, None if the budget ran out."""
        nxt, ops, op_of, is_call = self.nxt, self.ops, self.op_of, self.is_call
        rng = random.Random(len(ops))
        zobrist = [rng.getrandbits(128) for _ in ops]
        state, linearized = None, 0
        cache = set()
        calls = []                      # (call entry, state before it)
        entry = nxt[0]
        while nxt[0] != 0:
            self.steps += 1
            if self.steps > self.max_steps or (self.steps % 4096 == 0 and
                                               time.monotonic() > self.deadline):
                return None
            if is_call[entry]:
                i = op_of[entry]
                ok, new_state = self._step(state, ops[i])
                if ok:
                    new_linearized = linearized ^ zobrist[i]
                    memo = (new_linearized, new_state)
                    if memo not in cache:
                        cache.add(memo)
                        calls.append((entry, state))
                        state, linearized = new_state, new_linearized
                        self._lift(entry)
                        entry = nxt[0]
                        continue
                entry = nxt[entry]
                continue
            self._note_stuck(len(calls), op_of[entry], state, calls)
            if not calls:
                return False
            entry, state = calls.pop()
            linearized ^= zobrist[op_of[entry]]
            self._unlift(entry)
            entry = nxt[entry]
        return True

    def _note_stuck(self, depth, op_index, state, calls):
        """Remember the deepest point the search got stuck at, for the report."""
        if depth > self.best_depth:
            self.best_depth = depth
            self.best = (op_index, state, [self.op_of[c] for c, _ in calls])

    def _explain(self):
        stuck_i, state, done = self.best
        stuck = self.ops[stuck_i]
        last = [self.ops[i] for i in done[-3:]]
        done_set = set(done)
        open_ops = [op for i, op in enumerate(self.ops)
                    if i not in done_set and i != stuck_i and op.invoke <= _end(stuck)
                    and _end(op) >= stuck.invoke][:4]
        text = (f"cannot linearize {stuck.describe()}: the longest linearizable prefix has "
                f"{len(done)} ops and leaves the register at {state!r}")
        if last:
            text += "; last linearized: " + "; ".join(op.describe() for op in last)
        if open_ops:
            text += "; concurrent and not linearized: " + "; ".join(
                op.describe() for op in open_ops)
        return text, [stuck] + last + open_ops


def _end(op):
    return op.complete if op.outcome == OK else math.inf


# --------------------------------------------------------------------------
# Stale reads
# --------------------------------------------------------------------------

@dataclasses.dataclass
class StaleRead:
    read: Op
    source: object                 # the write whose value it returned (None: nothing)
    newer: Op                      # an acknowledged write it should have seen

    def describe(self):
        src = self.source.describe() if self.source is not None else "no write"
        return (f"{self.read.describe()} of key {self.read.key!r} returned the value of "
                f"{src}, but {self.newer.describe()} was acknowledged before the read started")


def stale_reads(ops):
    """Reads (ok) that returned a value that was certainly overwritten before
    they started: the write they read from completed before an acknowledged
    write began, and that one completed before the read was invoked (or, for a
    read of nothing, an acknowledged write completed before it and no delete
    can fall between the two). A lower bound on what the checker rejects."""
    found = []
    by_key = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    for key_ops in by_key.values():
        found.extend(_stale_reads_of_key(key_ops))
    return found


def _stale_reads_of_key(ops):
    acked = sorted((op for op in ops if op.writes() and op.outcome == OK),
                   key=lambda op: op.complete)
    ends = [op.complete for op in acked]
    latest = []                        # latest[i]: the acked write among acked[:i+1] invoked last
    for op in acked:
        latest.append(op if not latest or op.invoke > latest[-1].invoke else latest[-1])
    writes = [op for op in ops if op.kind == WRITE and op.outcome != FAIL]
    counts = collections.Counter(op.value for op in writes)
    writers = {op.value: op for op in writes if counts[op.value] == 1}   # unambiguous sources
    deletes = [op for op in ops if op.kind == DELETE and op.outcome != FAIL]
    found = []
    for r in ops:
        if r.kind != READ or r.outcome != OK:
            continue
        i = bisect.bisect_left(ends, r.invoke)
        if i == 0:
            continue
        newer = latest[i - 1]
        stale = _stale_value(r, newer, writers) if r.value is not None else \
            _stale_absence(r, newer, deletes)
        if stale:
            found.append(StaleRead(r, writers.get(r.value), newer))
    return found


def _stale_value(read, newer, writers):
    source = writers.get(read.value)
    return source is not None and source.outcome == OK and source.complete < newer.invoke


def _stale_absence(read, newer, deletes):
    if newer.kind == DELETE:
        return False
    return not any(d.invoke < read.complete and _end(d) > newer.invoke for d in deletes)
