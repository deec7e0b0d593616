#!/usr/bin/env python3
"""Unit tests of the chaos suite's linearizability checker (linearizability.py)
on hand-made histories: linearizable ones, stale reads, lost writes,
concurrent overlaps, unknown writes that later appear or never appear, and
generated histories of a few thousand ops per key (for speed).

Run: python3 tests/chaos/linearizability_test.py  (standard library only).
"""

import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linearizability as lz  # noqa: E402
from linearizability import DELETE, FAIL, INFO, OK, READ, WRITE, Op  # noqa: E402


def w(value, t0, t1, outcome=OK, key="k", process=None):
    return Op(WRITE, key, value, t0, None if outcome == INFO else t1, outcome, process)


def d(t0, t1, outcome=OK, key="k"):
    return Op(DELETE, key, None, t0, None if outcome == INFO else t1, outcome)


def r(value, t0, t1, outcome=OK, key="k"):
    return Op(READ, key, value, t0, t1, outcome)


def verdict(ops, **kw):
    return lz.check_history(ops, **kw).valid


def random_history(seed, processes=6, ops_per_process=500, keys=("k",)):
    """A linearizable history: each op takes effect at a random instant inside
    its interval."""
    rng = random.Random(seed)
    planned = []
    for p in range(processes):
        t = rng.random()
        for n in range(ops_per_process):
            t0 = t + rng.random() * 0.01
            point = t0 + rng.random() * 0.02
            t1 = point + rng.random() * 0.01
            kind = rng.choice((WRITE, WRITE, READ, READ, READ, DELETE))
            planned.append((point, Op(kind, rng.choice(keys), f"p{p}-{n}", t0, t1, OK, p)))
            t = t1
    state = {}
    for _, op in sorted(planned, key=lambda x: x[0]):
        if op.kind == READ:
            op.value = state.get(op.key)
        else:
            state[op.key] = op.written()
    return [op for _, op in planned]


def make_one_read_stale(ops, position):
    """Make the first read invoked after `position` (0..1 of the history's span)
    return a value overwritten before it started: the value of a write that
    completed before another write began, which completed before the read."""
    start = min(op.invoke for op in ops)
    span = max(op.complete for op in ops) - start
    read = min((op for op in ops if op.kind == READ and op.invoke > start + position * span),
               key=lambda op: op.invoke)
    writes = sorted((op for op in ops if op.kind == WRITE and op.complete < read.invoke),
                    key=lambda op: op.complete)
    newer = writes[-1]
    read.value = next(op.value for op in reversed(writes) if op.complete < newer.invoke)
    return read


class SmallHistories(unittest.TestCase):
    def test_empty_and_sequential(self):
        self.assertIs(verdict([]), True)
        self.assertIs(verdict([r(None, 0, 1), w("a", 2, 3), r("a", 4, 5), d(6, 7),
                               r(None, 8, 9)]), True)

    def test_stale_read_after_acknowledged_write(self):
        ops = [w("a", 0, 1), w("b", 2, 3), r("a", 4, 5)]
        result = lz.check_history(ops)
        self.assertIs(result.valid, False)
        failure = result.failures()[0]
        self.assertEqual(failure.key, "k")
        self.assertIn("read -> 'a'", failure.explanation)
        stale = lz.stale_reads(ops)
        self.assertEqual(len(stale), 1)
        self.assertEqual(stale[0].newer.value, "b")

    def test_lost_write_read_as_absent(self):
        ops = [w("a", 0, 1), r(None, 2, 3)]
        self.assertIs(verdict(ops), False)
        self.assertEqual(len(lz.stale_reads(ops)), 1)

    def test_read_concurrent_with_write_may_see_either(self):
        for seen in ("a", "b"):
            self.assertIs(verdict([w("a", 0, 1), w("b", 2, 5), r(seen, 3, 4)]), True)

    def test_concurrent_writes_order_must_be_consistent(self):
        both = [w("a", 0, 3), w("b", 1, 4)]
        self.assertIs(verdict(both + [r("a", 5, 6), r("a", 7, 8)]), True)
        self.assertIs(verdict(both + [r("b", 5, 6), r("b", 7, 8)]), True)
        flip = both + [r("b", 5, 6), r("a", 7, 8)]
        self.assertIs(verdict(flip), False)

    def test_reads_never_go_back_in_time(self):
        # Two overlapping reads may disagree; a later one may not return to the old value.
        self.assertIs(verdict([w("a", 0, 1), w("b", 2, 10), r("b", 3, 4), r("a", 5, 6)]), False)
        self.assertIs(verdict([w("a", 0, 1), w("b", 2, 10), r("b", 3, 6), r("a", 4, 5)]), True)

    def test_unknown_write_that_later_appears(self):
        ops = [w("a", 0, 1), w("b", 2, None, INFO), r("a", 3, 4), r("b", 20, 21)]
        self.assertIs(verdict(ops), True)
        self.assertEqual(lz.stale_reads(ops), [])

    def test_unknown_write_that_never_appears(self):
        self.assertIs(verdict([w("a", 0, 1), w("b", 2, None, INFO), r("a", 3, 4),
                               r("a", 20, 21)]), True)

    def test_unknown_write_seen_then_unseen(self):
        ops = [w("a", 0, 1), w("b", 2, None, INFO), r("b", 3, 4), r("a", 5, 6)]
        self.assertIs(verdict(ops), False)

    def test_unknown_write_cannot_take_effect_before_its_invocation(self):
        self.assertIs(verdict([r("b", 0, 1), w("b", 2, None, INFO)]), False)

    def test_failed_write_never_happened(self):
        self.assertIs(verdict([w("a", 0, 1), w("b", 2, 3, FAIL), r("a", 4, 5)]), True)
        result = lz.check_history([w("a", 0, 1), w("b", 2, 3, FAIL), r("b", 4, 5)])
        self.assertIs(result.valid, False)
        self.assertIn("no write wrote", result.failures()[0].explanation)

    def test_failed_reads_are_ignored(self):
        self.assertIs(verdict([w("a", 0, 1), r("zzz", 2, 3, FAIL), r("a", 4, 5, INFO)]), True)

    def test_deletes(self):
        self.assertIs(verdict([w("a", 0, 1), d(2, 3), r(None, 4, 5)]), True)
        self.assertIs(verdict([w("a", 0, 1), d(2, 3), r("a", 4, 5)]), False)
        unknown_delete = [w("a", 0, 1), d(2, None, INFO), r(None, 4, 5)]
        self.assertIs(verdict(unknown_delete), True)
        self.assertEqual(lz.stale_reads(unknown_delete), [])

    def test_keys_are_checked_separately(self):
        ops = [w("a", 0, 1, key="x"), r("a", 2, 3, key="x"),
               w("a", 0, 1, key="y"), w("b", 2, 3, key="y"), r("a", 4, 5, key="y")]
        result = lz.check_history(ops)
        self.assertIs(result.valid, False)
        self.assertEqual([k.key for k in result.failures()], ["y"])
        self.assertIn("'y'", result.summary())

    def test_budget_gives_unknown(self):
        ops = random_history(1, processes=4, ops_per_process=50)
        result = lz.check_history(ops, max_steps=10)
        self.assertEqual(result.valid, lz.UNKNOWN)
        self.assertIn("budget", result.unknowns()[0].explanation)


class GeneratedHistories(unittest.TestCase):
    def test_search_finds_what_the_stale_read_test_cannot(self):
        # Two concurrent writes seen in both orders, after a long history.
        ops = random_history(9, processes=4, ops_per_process=300)
        end = max(op.complete for op in ops)
        ops += [w("x", end + 1, end + 4), w("y", end + 2, end + 5),
                r("y", end + 6, end + 7), r("x", end + 8, end + 9)]
        self.assertEqual(lz.stale_reads(ops), [])
        result = lz.check_history(ops)
        self.assertIs(result.valid, False)
        self.assertIn("read -> 'x'", result.failures()[0].explanation)

    def test_thousands_of_ops_per_key_are_quick(self):
        ops = random_history(7, processes=6, ops_per_process=600)
        t0 = time.monotonic()
        result = lz.check_history(ops)
        took = time.monotonic() - t0
        self.assertIs(result.valid, True, result.summary())
        self.assertLess(took, 10.0)
        self.assertEqual(lz.stale_reads(ops), [])

    def test_one_stale_read_among_thousands_is_found(self):
        for seed, position in ((3, 0.1), (4, 0.5), (5, 0.9)):
            ops = random_history(seed, processes=6, ops_per_process=600)
            read = make_one_read_stale(ops, position)
            result = lz.check_history(ops)
            self.assertIs(result.valid, False, f"seed {seed}: {result.summary()}")
            self.assertEqual([s.read for s in lz.stale_reads(ops)], [read])
            searched = lz.search("k", ops)
            self.assertIs(searched.valid, False, f"seed {seed}: {searched.explanation}")
            self.assertIn("read ->", searched.explanation)

    def test_many_keys(self):
        keys = tuple(f"k{i}" for i in range(10))
        ops = random_history(11, processes=8, ops_per_process=800, keys=keys)
        result = lz.check_history(ops)
        self.assertIs(result.valid, True, result.summary())
        self.assertEqual(len(result.keys), 10)

    def test_unknown_writes_in_a_long_history(self):
        ops = random_history(13, processes=6, ops_per_process=400)
        rng = random.Random(13)
        for op in ops:
            if op.kind != READ and rng.random() < 0.1:
                op.outcome, op.complete = INFO, None
        self.assertIs(verdict(ops), True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
