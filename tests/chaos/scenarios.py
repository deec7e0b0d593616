"""Nemeses of the chaos suite, run against a lab while clients work, with
what each one measures (shared by tests/chaos/chaos_test.py and
bench/chaos_bench.py; Python 3 standard library).

`Chaos.run(name, nemesis, ...)` applies one nemesis, then lets the cluster
settle and checks it: clients paused, every node converged on one leader with
quorum and the leader's commit index applied (`converge_s`, within
`converge_bound`), every ledger write acknowledged since the last check on
every node with its value (`final_check()` reads them all again at the end),
every register key on every node (?stale) equal to a plain GET of it through
the leader (that read joins the history). Each
record also gets, for the nemesis' window, the clients' ops by outcome,
acknowledged writes per second and their latency, stale reads, and leader
changes. With `saturate_threads`, quiet and loss windows also run that many
writers as fast as they can (ledger writes): `saturated_writes_per_s`.

Measured by the nemeses (seconds):
  refusal      a PUT sent to a node without a leader: its answer and latency
               (sent once the node says it has no leader, or after 3 s);
  rejoin_s     from the heal (or restart, or SIGCONT) until the node names the
               majority's leader, has quorum, and has applied the leader's
               commit index read just before;
  new_leader_s from a kill or SIGSTOP of the leader until another node leads;
  forwarded    a PUT sent through a follower right after the leader's kill:
               when it was answered and how, and when a write through that
               follower first succeeded.
"""

import random
import threading
import time
import uuid

import workload as wl
from linearizability import OK, READ, stale_reads

POLL_S = 0.05
NO_LEADER_WAIT_S = 3.0


class Chaos:
    """Runs nemeses against one lab; keeps their records and every failure seen."""

    def __init__(self, lab, history, clients, monitor, log, converge_bound=30.0,
                 rejoin_bound=30.0, seed=None, saturate_threads=0):
        self.lab = lab
        self.history = history
        self.clients = clients
        self.monitor = monitor
        self.log = log
        self.converge_bound = converge_bound
        self.rejoin_bound = rejoin_bound
        self.rng = random.Random(seed)
        self.saturate_threads = saturate_threads
        self.records = []
        self.failures = []
        self.checked = set()            # ledger keys already found on every node
        self.deaths = []                # agents that exited on their own (and were restarted)

    # ---- running nemeses ----

    def run(self, name, nemesis, *args, **kwargs):
        """Apply nemesis(*args, **kwargs) (a method of this class), settle,
        check; returns the record (also kept in self.records)."""
        self.log(f"nemesis {name}: start")
        t0 = wl.now()
        record = {"nemesis": name, **nemesis(*args, **kwargs)}
        t1 = wl.now()
        record.update(self._window(t0, t1))
        record.update(self.settle(name))
        self.records.append(record)
        self.log(f"nemesis {name}: {brief(record)}")
        return record

    def settle(self, name):
        """Pause clients, restart crashed agents, wait for convergence, check
        ledger and registers."""
        self.clients.pause()
        crashed = self._restart_crashed(name)
        noted = {"crashed": crashed} if crashed else {}
        try:
            converge_s = wl.wait_converged(self.lab, timeout=self.converge_bound,
                                           what=f"convergence after {name}")
        except wl.ChaosFailure as e:
            self.failures.append(str(e))
            self.clients.resume()
            return {"converged": False, "converge_error": str(e), **noted}
        lost = self._check_ledger(name, self.checked)
        leader = self.leader()
        wrong = wl.stale_registers(self.history, leader, self.lab.nodes,
                                   self.clients.keys) if leader else []
        self.clients.resume()
        if wrong:
            self.failures.append(f"after {name}, converged: nodes hold register values other "
                                 f"than the leader's (key, leader's, nodes'): {wrong[:3]}")
        return {"converged": True, "converge_s": round(converge_s, 3),
                "lost_acked_writes": lost, "stale_registers_after_converging": len(wrong),
                **noted}

    def _restart_crashed(self, name):
        """Agents that exited on their own: noted as failures, started again."""
        crashed = []
        for node in self.lab.dead_agents():
            crashed.append(f"{node.name} (exit {node.proc.returncode})")
            self.failures.append(f"{crashed[-1]} exited on its own during {name}")
            node.start()
        self.deaths += crashed
        return crashed

    def final_check(self):
        """Once clients are stopped: converge, then every acknowledged ledger
        write of the run on every node. Returns (acknowledged, lost); lost is
        None (and a failure noted) if the cluster did not converge."""
        acked = len(self.history.ledger_acked())
        try:
            wl.wait_converged(self.lab, timeout=self.converge_bound, what="final convergence")
        except wl.ChaosFailure as e:
            self.failures.append(str(e))
            return acked, None
        return acked, self._check_ledger("the run", ())

    def _check_ledger(self, name, skip):
        acked = self.history.ledger_acked()
        lost = wl.lost_ledger_writes(self.history, self.lab.nodes, skip)
        if lost:
            self.failures.append(f"after {name}: {len(lost)} acknowledged writes missing or "
                                 f"wrong on some node; first: {lost[:5]}")
        self.checked |= set(acked) - {key for key, _, _ in lost}
        return len(lost)

    def recover(self):
        """Undo every fault (after a nemesis failed half-way) and wait for the
        cluster to converge again."""
        self.lab.heal()
        self.lab.clear_loss()
        if self.lab.delayers:
            self.lab.clear_delay()
        for node in self.lab.nodes:
            if node.paused:
                node.resume()
            elif not node.alive():
                node.start()
        self.clients.resume()
        wl.wait_converged(self.lab, timeout=self.converge_bound, what="recovery")

    def _window(self, t0, t1):
        """The clients' ops invoked in [t0, t1) (not the checks', nor the
        saturating writers')."""
        ops = [op for op in self.history.between(t0, t1)
               if op.process.startswith(self.clients.name) or op.process == "probe"]
        writes = [op for op in ops if op.writes()]
        reads = [op for op in ops if op.kind == READ]
        acked = [op.complete - op.invoke for op in writes if op.outcome == OK]
        return {"window_s": round(t1 - t0, 3),
                "writes": {o: sum(1 for op in writes if op.outcome == o)
                           for o in ("ok", "fail", "info")},
                "acked_writes_per_s": round(len(acked) / max(t1 - t0, 1e-9), 1),
                "acked_write_latency_s": latency(acked),
                "reads": {"ok": sum(1 for op in reads if op.outcome == OK),
                          "failed": sum(1 for op in reads if op.outcome != OK)},
                "leader_changes": self.monitor.leader_changes(t0, t1),
                "_t": (t0, t1)}

    def _hold(self, seconds):
        """Wait `seconds`, running the saturating writers if asked; returns
        their figures."""
        if not self.saturate_threads:
            time.sleep(seconds)
            return {}
        pool = wl.Clients(self.lab, self.history, threads=self.saturate_threads, rate=None,
                          ledger_share=1.0, max_seconds=seconds + 30.0, name="s")
        t0 = wl.now()
        pool.start()
        time.sleep(seconds)
        pool.stop()
        t1 = wl.now()
        acked = [op.complete - op.invoke for op in self.history.between(t0, t1)
                 if op.process.startswith("s") and op.outcome == OK]
        return {"saturated_writes_per_s": round(len(acked) / (t1 - t0), 1),
                "saturated_latency_s": latency(acked)}

    def finish(self):
        """Stale reads per window (once the whole history is known); returns
        every stale read of the run."""
        stale = [s for s in stale_reads(self.history.register_ops())
                 if s.read.process != "verifier"]
        for record in self.records:
            t0, t1 = record.pop("_t")
            record["stale_reads"] = sum(1 for s in stale if t0 <= s.read.invoke < t1)
        return stale

    # ---- who leads ----

    def leader(self, nodes=None):
        """The node a majority of the live nodes name as leader, or None."""
        nodes = [n for n in (nodes or self.lab.nodes) if n.alive() and not n.paused]
        name = wl.leader_name(wl.views(nodes))
        return self.lab.node(name) if name else None

    def wait_leader(self, nodes, timeout=None, not_this=None):
        """(leader, seconds) once a majority of `nodes` agree on one other than
        `not_this`; (None, None) after the timeout."""
        t0 = wl.now()
        while wl.now() - t0 < (timeout or self.converge_bound):
            views = wl.views(nodes, timeout=0.5)
            name = wl.leader_name(views)
            if name and (not_this is None or name != not_this.name):
                return self.lab.node(name), wl.now() - t0
            time.sleep(POLL_S)
        return None, None

    def _leader_and_follower(self):
        leader, _ = self.wait_leader(self.lab.nodes)
        if leader is None:
            raise wl.ChaosFailure("no leader to start the nemesis with")
        return leader, self.rng.choice([n for n in self.lab.nodes if n is not leader])

    # ---- measurements ----

    def measure_refusal(self, node, deadline):
        """A PUT to `node` once it says it has no leader (waiting at most
        NO_LEADER_WAIT_S, never past `deadline`)."""
        t0 = wl.now()
        no_leader_after = None
        while wl.now() < min(t0 + NO_LEADER_WAIT_S, deadline):
            view = node.cluster(timeout=0.5)
            if view is not None and not view.get("leader"):
                no_leader_after = wl.now() - t0
                break
            time.sleep(POLL_S)
        op = wl.write(self.history, node, self.clients.keys[0],
                      f"probe:{uuid.uuid4().hex[:12]}", "probe")
        return {"node": node.name, "no_leader_after_s": _r(no_leader_after),
                "answer": op.detail, "outcome": op.outcome,
                "seconds": _r(op.complete - op.invoke)}

    def measure_rejoin(self, nodes, since):
        """Seconds from `since` until every node of `nodes` has caught up (see
        the module doc); None if one crashed, or (and a failure) past
        rejoin_bound."""
        pending = list(nodes)
        worst = 0.0
        while pending and wl.now() - since < self.rejoin_bound:
            if any(not n.alive() for n in pending):
                return None             # it crashed: settle() reports and restarts it
            pending = [n for n in pending if not self._caught_up(n)]
            worst = wl.now() - since
            if pending:
                time.sleep(POLL_S)
        if pending:
            self.failures.append(f"{[n.name for n in pending]} not caught up "
                                 f"{self.rejoin_bound:.0f} s after the heal")
            return None
        return round(worst, 3)

    def _caught_up(self, node):
        leader = self.leader()
        if leader is None:
            return False
        lv = leader.cluster(timeout=0.5)
        view = node.cluster(timeout=0.5)
        if lv is None or view is None:
            return False
        return ((view.get("leader") or {}).get("name") == leader.name and
                view.get("quorum") is True and
                view.get("applied_index", -1) >= lv.get("commit_index", 1 << 62))

    def _sleep_until(self, t):
        time.sleep(max(0.0, t - wl.now()))

    # ---- nemeses (each returns its measurements) ----

    def quiet(self, seconds):
        """No fault: a baseline window."""
        return {"seconds": seconds, **self._hold(seconds)}

    def isolate(self, role, seconds):
        """Cut the leader or a follower off for `seconds`, then heal."""
        leader, follower = self._leader_and_follower()
        node = leader if role == "leader" else follower
        t_cut = wl.now()
        self.lab.isolate(node)
        refusal = self.measure_refusal(node, t_cut + seconds)
        self._sleep_until(t_cut + seconds)
        self.lab.heal()
        rejoin = self.measure_rejoin([node], wl.now())
        return {"role": role, "node": node.name, "cut_s": seconds, "refusal": refusal,
                "rejoin_s": rejoin}

    def split(self, minority_size, seconds):
        """Split into a minority of `minority_size` nodes (the leader among them)
        and the rest, for `seconds`, then heal."""
        leader, _ = self._leader_and_follower()
        others = [n for n in self.lab.nodes if n is not leader]
        self.rng.shuffle(others)
        minority = [leader] + others[:minority_size - 1]
        majority = others[minority_size - 1:]
        t_cut = wl.now()
        self.lab.partition([minority, majority])
        refusal = self.measure_refusal(leader, t_cut + seconds)
        self._sleep_until(t_cut + seconds)
        self.lab.heal()
        rejoin = self.measure_rejoin(minority, wl.now())
        return {"minority": [n.name for n in minority], "majority": [n.name for n in majority],
                "cut_s": seconds, "refusal": refusal, "rejoin_s": rejoin}

    def flapping(self, cycles, cut_s, heal_s):
        """`cycles` times: cut a random node off (the leader every other time)
        for cut_s, heal; heal_s between two cuts."""
        for i in range(cycles):
            if i:
                time.sleep(heal_s)
            node = (self.leader() if i % 2 else None) or self.rng.choice(self.lab.nodes)
            self.lab.isolate(node)
            time.sleep(cut_s)
            self.lab.heal()
        rejoin = self.measure_rejoin(self.lab.nodes, wl.now())
        return {"cycles": cycles, "cut_s": cut_s, "heal_s": heal_s,
                "rejoin_after_last_heal_s": rejoin}

    def loss(self, pct, seconds):
        """Every host drops pct % of its packets to the others for `seconds`."""
        self.lab.set_loss(pct)
        held = self._hold(seconds)
        self.lab.clear_loss()
        return {"loss_pct": pct, "seconds": seconds, **held}

    def delay(self, delay_ms, jitter_ms, seconds):
        """Every packet between hosts delayed delay_ms +- jitter_ms for `seconds`."""
        self.lab.set_delay(delay_ms, jitter_ms)
        time.sleep(seconds)
        self.lab.clear_delay()
        return {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "seconds": seconds}

    def pause_leader(self, seconds):
        """SIGSTOP the leader for `seconds`, then SIGCONT."""
        leader, _ = self._leader_and_follower()
        t0 = wl.now()
        leader.pause()
        others = [n for n in self.lab.nodes if n is not leader]
        _, new_leader_s = self.wait_leader(others, timeout=seconds, not_this=leader)
        self._sleep_until(t0 + seconds)
        leader.resume()
        rejoin = self.measure_rejoin([leader], wl.now())
        return {"node": leader.name, "paused_s": seconds, "new_leader_s": _r(new_leader_s),
                "rejoin_s": rejoin}

    def kill_leader(self, down_s):
        """kill -9 the leader; a PUT through a follower right after; restart
        the killed node after down_s on its data dir."""
        leader, follower = self._leader_and_follower()
        forwarded = {}
        probe = threading.Thread(target=self._forwarded_write, args=(follower, forwarded),
                                 daemon=True)
        t_kill = wl.now()
        leader.kill()
        forwarded["t_kill"] = t_kill
        probe.start()
        survivors = [n for n in self.lab.nodes if n is not leader]
        _, new_leader_s = self.wait_leader(survivors, timeout=max(down_s, 5.0), not_this=leader)
        self._sleep_until(t_kill + down_s)
        probe.join(20.0)
        forwarded.pop("t_kill")
        t_start = wl.now()
        leader.start()
        rejoin = self.measure_rejoin([leader], t_start)
        return {"node": leader.name, "down_s": down_s, "new_leader_s": _r(new_leader_s),
                "forwarded": forwarded, "rejoin_after_restart_s": rejoin}

    def _forwarded_write(self, follower, out):
        """The first PUT through `follower` after the kill, then retries until
        one succeeds (at most 15 s)."""
        t_kill = out["t_kill"]
        first = wl.write(self.history, follower, self.clients.keys[1],
                         f"forwarded:{uuid.uuid4().hex[:12]}", "probe", timeout=10.0)
        out.update({"via": follower.name, "first_answer": first.detail,
                    "first_outcome": first.outcome,
                    "first_answered_after_kill_s": _r(first.complete - t_kill)})
        op = first
        while op.outcome != OK and wl.now() - t_kill < 15.0:
            op = wl.write(self.history, follower, self.clients.keys[1],
                          f"forwarded:{uuid.uuid4().hex[:12]}", "probe", timeout=5.0)
        out["first_ok_after_kill_s"] = _r(op.complete - t_kill) if op.outcome == OK else None


def _r(seconds):
    return None if seconds is None else round(seconds, 3)


def latency(values):
    """{"p50", "p99", "max"} of a list of seconds (None if empty)."""
    if not values:
        return None
    s = sorted(values)
    return {"p50": _r(s[len(s) // 2]), "p99": _r(s[min(len(s) - 1, int(len(s) * 0.99))]),
            "max": _r(s[-1])}


def brief(record):
    """A one-line summary of a record for the log."""
    keys = ("rejoin_s", "rejoin_after_restart_s", "rejoin_after_last_heal_s", "new_leader_s",
            "leader_changes", "acked_writes_per_s", "saturated_writes_per_s", "converge_s",
            "lost_acked_writes")
    parts = [f"{k}={record[k]}" for k in keys if k in record]
    if "refusal" in record:
        ref = record["refusal"]
        parts.append(f"refusal={ref['outcome']} in {ref['seconds']} s ({ref['answer'][:60]})")
    if "forwarded" in record:
        fw = record["forwarded"]
        parts.append(f"forwarded first answer {fw.get('first_answered_after_kill_s')} s "
                     f"({fw.get('first_answer', '')[:40]}), first ok "
                     f"{fw.get('first_ok_after_kill_s')} s")
    return " ".join(parts)
