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

Nemeses beyond the network (each documents its record):
  clock_step   a node restarted under libfaketime (wall clock +N s, monotonic
               untouched), made leader if a few SIGSTOPs of the leader manage
               it, held, then restarted without (its clock steps back); each
               node's GET /v1/clock along the way;
  file_sync    files written into the nodes' sync folders around a cut and a
               kill -9 (lab started with sync=True): folders identical, every
               version kept (conflict copies allowed), a delete propagated;
  full_disk    a follower's data dir moved onto a small tmpfs and filled up
               while clients (and 256 KiB writes through the leader) go on:
               what the node does, whether the rest commits, whether it
               catches up once space is freed.
When `Chaos.timers` is a features.TimerProbe, run() tells it which nemesis
is running (its lateness figures are per nemesis).
"""

import os
import random
import shutil
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
        self.timers = None              # a features.TimerProbe, told which nemesis runs

    # ---- running nemeses ----

    def run(self, name, nemesis, *args, **kwargs):
        """Apply nemesis(*args, **kwargs) (a method of this class), settle,
        check; returns the record (also kept in self.records)."""
        self.log(f"nemesis {name}: start")
        if self.timers is not None:
            self.timers.phase = name
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

    def clock_step(self, offset_s, seconds, node_index=0, lead_tries=3):
        """kill -9 node `node_index` (0: n1, the clock master under the default
        lowest-ip policy) and restart it under libfaketime with its wall clock
        `offset_s` ahead (monotonic clock untouched); then try to make it the
        leader (SIGSTOP the leader 3 s, at most `lead_tries` times); hold
        `seconds` (writes and timers go on); then restart it without faketime
        (its clock steps back). Each node's GET /v1/clock is recorded after the
        restart, at the end of the hold and 3 s after the step back."""
        why = faketime_unavailable()
        if why:
            raise wl.ChaosFailure(why)
        node = self.lab.nodes[node_index]
        node.kill()
        node.env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": f"{offset_s:+g}",
                    "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        t_start = wl.now()
        node.start()
        rejoin = self.measure_rejoin([node], t_start)
        tries = 0
        for tries in range(1, lead_tries + 1):
            leader = self.leader()
            if leader is node:
                break
            if leader is None:
                time.sleep(0.5)
                continue
            leader.pause()
            self.wait_leader([n for n in self.lab.nodes if n is not leader], timeout=3.0,
                             not_this=leader)
            leader.resume()
            self.measure_rejoin([leader], wl.now())
        led_at = round(wl.now() - t_start, 3) if self.leader() is node else None
        clocks = {"after_faked_start": self._clocks()}
        t_hold = wl.now()
        held = self._hold(seconds)
        led_at_end = self.leader() is node
        clocks["end_of_hold"] = self._clocks()
        node.kill()
        node.env = {}
        t_back = wl.now()
        node.start()
        rejoin_back = self.measure_rejoin([node], t_back)
        self._sleep_until(t_back + 3.0)
        clocks["after_step_back"] = self._clocks()
        return {"node": node.name, "offset_s": offset_s, "held_s": round(wl.now() - t_hold, 1),
                "rejoin_after_faked_start_s": rejoin, "stepped_node_led_after_s": led_at,
                "stepped_node_led_at_end_of_hold": led_at_end, "leader_tries": tries,
                "clock_views": clocks, "rejoin_after_step_back_s": rejoin_back, **held}

    def file_sync(self, cut_s, bound_s=60.0):
        """Files written straight into the nodes' sync folders (the lab must run
        with sync=True) around faults: one file per node (one of 1 MiB) while
        all is well; then a follower cut off for `cut_s` with new files on it
        and on the majority, and the same new path written on both sides (a
        conflict); heal; then another node killed (-9), a file written into its
        folder and one deleted on a live node while it is down, restart. Then
        every folder must become identical within `bound_s` of the heal and
        of the restart (features.wait_folders_identical: the seconds it took), every written content present (at
        its path or, for the conflicting path, as a conflict copy) and the
        deleted file gone."""
        import features
        if not all(n.sync_dir for n in self.lab.nodes):
            raise wl.ChaosFailure("the lab was not started with --sync-dir")
        tag = uuid.uuid4().hex[:6]
        contents = {}            # rel path -> [bytes written, in order]

        def put(node, rel, data):
            path = os.path.join(node.sync_dir, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            contents.setdefault(rel, []).append(data)

        for i, n in enumerate(self.lab.nodes):
            size = (1 << 20) if i == 0 else 3000
            put(n, f"chaos-{tag}/calm/{n.name}.bin", os.urandom(size))
        time.sleep(1.0)
        leader, follower = self._leader_and_follower()
        majority = [n for n in self.lab.nodes if n is not follower]
        self.lab.isolate(follower)
        time.sleep(0.5)
        put(follower, f"chaos-{tag}/cut/{follower.name}-alone.txt", os.urandom(2000))
        put(majority[0], f"chaos-{tag}/cut/{majority[0].name}-majority.txt", os.urandom(2000))
        conflict = f"chaos-{tag}/cut/both-sides.txt"
        put(majority[-1], conflict, b"majority side " + os.urandom(8).hex().encode())
        put(follower, conflict, b"cut-off side " + os.urandom(8).hex().encode())
        time.sleep(max(0.0, cut_s - 0.5))
        self.lab.heal()
        t_heal = wl.now()
        folders = {n.name: n.sync_dir for n in self.lab.nodes}
        after_heal = features.wait_folders_identical(folders, bound_s, since=t_heal)
        if not after_heal["converged"]:
            self.failures.append(f"file sync: folders not identical {bound_s:.0f} s after the "
                                 f"heal: {after_heal.get('difference_examples')}")
        victim = self.rng.choice([n for n in self.lab.nodes if n is not follower])
        victim.kill()
        put(victim, f"chaos-{tag}/down/{victim.name}-while-down.txt", os.urandom(4000))
        alive = [n for n in self.lab.nodes if n is not victim]
        doomed = f"chaos-{tag}/calm/{alive[0].name}.bin"
        time.sleep(0.5)
        os.remove(os.path.join(alive[0].sync_dir, doomed))
        time.sleep(1.5)
        victim.start()
        t_restart = wl.now()
        result = features.wait_folders_identical(folders, bound_s, since=t_restart)
        result = {"identical_after_heal_s": after_heal["seconds"],
                  "identical_after_restart_s": result.pop("seconds"), **result}
        missing = []
        if result["converged"]:
            digest = features.folder_digest(self.lab.nodes[0].sync_dir)
            import hashlib
            for rel, versions in contents.items():
                if rel == doomed:
                    if rel in digest:
                        missing.append(f"{rel}: deleted on {alive[0].name} but still there")
                    continue
                stem, ext = os.path.splitext(rel)
                copies = {v for p, v in digest.items()
                          if p == rel or (p.startswith(stem + ".sync-conflict-")
                                          and p.endswith(ext))}
                wanted = versions if rel == conflict else versions[-1:]
                for data in wanted:
                    if hashlib.sha256(data).hexdigest() not in copies:
                        missing.append(f"{rel}: a version of {len(data)} bytes is missing")
        else:
            result["sync_status"] = {n.name: self._sync_status(n) for n in self.lab.nodes}
            self.failures.append(f"file sync: folders not identical {bound_s:.0f} s after the "
                                 f"restart: {result.get('difference_examples')}")
        if missing:
            self.failures.append(f"file sync lost writes: {missing[:5]}")
        return {"cut": follower.name, "killed": victim.name, "files_written": len(contents),
                "sync": result, "sync_lost_writes": missing}

    def full_disk(self, size_mb, seconds, big_mb=64, restart_if_alive=False):
        """A follower's data dir moved onto a tmpfs with `size_mb` free (kill -9,
        copy, restart: the tmpfs is its current size + size_mb, libraft
        preallocates its open segments), then the tmpfs filled to the last byte (a filler file) while
        clients keep writing through every node, for `seconds`: what the node
        does (alive or its exit status, its view, what it logged), and whether
        the others kept committing. Then the filler is deleted (and the node
        restarted if it exited, or if `restart_if_alive`) and it must catch up
        (`rejoin_after_space_s`); the settle that follows checks every
        acknowledged write on it. Finally its data dir is moved back to disk
        (kill -9, copy, restart) so later nemeses run as before."""
        leader, node = self._leader_and_follower()
        node.kill()
        used = _du(node.data_dir)
        tmpfs_mb = int(used / 2**20) + 1 + size_mb     # what it holds now + size_mb free
        mnt = self.lab.mount_tmpfs(node, tmpfs_mb)
        t_start = wl.now()
        node.start()
        rejoin = self.measure_rejoin([node], t_start)
        log_offset = os.path.getsize(node.log_path)
        filler = os.path.join(mnt, "filler")
        filled = _fill(filler)
        t_full = wl.now()
        big = {"ok": 0, "not_ok": 0, "answers": set()}
        stop_big = threading.Event()
        big_writer = threading.Thread(target=self._big_writes,
                                      args=(leader, big, stop_big, big_mb), daemon=True)
        big_writer.start()
        free_after_fill = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        views = []
        exited = None
        ok_before = self._acked_through(node, t_start, t_full)
        for _ in range(int(seconds / 0.5) + 1):
            if wl.now() - t_full >= seconds:
                break
            if not node.alive() and exited is None:
                exited = {"status": node.proc.returncode, "after_s": round(wl.now() - t_full, 2)}
            v = node.cluster(timeout=0.5)
            lv = leader.cluster(timeout=0.5) if leader.alive() else None
            views.append((round(wl.now() - t_full, 1), wl.summary(v),
                          (lv or {}).get("commit_index")))
            time.sleep(0.5)
        stop_big.set()
        big_writer.join(15.0)
        big["answers"] = sorted(big["answers"])[:4]
        t_free = wl.now()
        others_ok = self._acked_through(None, t_full, t_free, exclude=node)
        node_ok = self._acked_through(node, t_full, t_free)
        log_lines = _log_since(node.log_path, log_offset)
        os.remove(filler)
        restarted = False
        if not node.alive():
            if exited is None:
                exited = {"status": node.proc.returncode, "after_s": round(t_free - t_full, 2)}
            node.start()
            restarted = True
        elif restart_if_alive:
            node.kill()
            node.start()
            restarted = True
        rejoin_space = self.measure_rejoin([node], t_free)
        t_caught = wl.now()
        node_ok_after = None
        time.sleep(1.0)
        node_ok_after = self._acked_through(node, t_caught, wl.now())
        # back to the real disk
        node.kill()
        data = os.path.join(node.dir, "data")
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(node.data_dir, data, symlinks=True)
        node.data_dir = data
        wl.labmod.run(["umount", "-l", mnt], check=False)
        node.mount = None
        t_back = wl.now()
        node.start()
        rejoin_back = self.measure_rejoin([node], t_back)
        return {"node": node.name, "tmpfs_mb": tmpfs_mb, "data_dir_mb_before": round(used / 2**20, 2),
                "rejoin_on_tmpfs_s": rejoin, "filler_mb": round(filled / 2**20, 2),
                "free_bytes_after_fill": free_after_fill, "full_s": round(t_free - t_full, 1),
                "exited": exited, "writes_acked_through_it_before_full": ok_before,
                "writes_acked_through_it_while_full": node_ok,
                "writes_acked_through_others_while_full": others_ok,
                "big_writes_through_leader_while_full": big,
                "its_view_while_full": views[::max(1, len(views) // 6)],
                "log_while_full": log_lines,
                "restarted_after_freeing": restarted, "rejoin_after_space_s": rejoin_space,
                "writes_acked_through_it_after": node_ok_after,
                "rejoin_back_on_disk_s": rejoin_back,
                "disk": "exited %s" % exited["status"] if exited else "stayed up"}

    def _big_writes(self, leader, out, stop, most_mb):
        """256 KiB ledger values through `leader` until `stop` (at most most_mb
        MiB): checked on every node like every ledger write."""
        for i in range(most_mb * 4):
            if stop.is_set():
                return
            key = f"{wl.LEDGER_PREFIX}big-{uuid.uuid4().hex[:10]}"
            value = (key + ":") * (262144 // (len(key) + 1))
            op = wl.write(self.history, leader, key, value, "big")
            if op.outcome == OK:
                out["ok"] += 1
            else:
                out["not_ok"] += 1
                out["answers"].add(op.detail[:70])
                stop.wait(0.2)

    def _acked_through(self, node, t0, t1, exclude=None):
        """Client writes invoked in [t0, t1) through `node` (or every node
        but `exclude`): {"ok", "other"}."""
        ops = [op for op in self.history.between(t0, t1) if op.writes() and
               (op.node == node.name if node is not None else op.node != exclude.name)]
        ok = sum(1 for op in ops if op.outcome == OK)
        return {"ok": ok, "not_ok": len(ops) - ok,
                "answers": sorted({op.detail[:70] for op in ops if op.outcome != OK})[:4]}

    def _sync_status(self, node):
        try:
            r = wl.labmod.request(node.addr, "GET", "/v1/sync", timeout=2.0)
            return r.json() if r.status == 200 else f"HTTP {r.status}"
        except Exception as e:  # report only
            return f"{type(e).__name__}: {e}"

    def _clocks(self):
        """Each node's GET /v1/clock (trimmed), for the report."""
        out = {}
        for n in self.lab.nodes:
            try:
                r = wl.labmod.request(n.addr, "GET", "/v1/clock", timeout=2.0)
                doc = r.json() if r.status == 200 else None
            except OSError as e:
                doc = {"error": str(e)}
            except Exception as e:  # http.client errors: report, never fail the nemesis
                doc = {"error": f"{type(e).__name__}: {e}"}
            keep = ("cluster_time", "local_time", "offset_ms", "error_ms", "drift_ppm",
                    "is_master", "error")
            out[n.name] = ({k: doc[k] for k in keep if k in doc} if isinstance(doc, dict)
                           else None)
            if isinstance(doc, dict) and isinstance(doc.get("master"), dict):
                out[n.name]["master"] = doc["master"].get("name")
        return out

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


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def faketime_unavailable():
    return None if os.path.exists(FAKETIME_LIB) else \
        f"{FAKETIME_LIB} not found (Debian package faketime)"


def _du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _fill(path, limit_bytes=1 << 30):
    """Write `path` until ENOSPC (1 MiB, then 4 KiB, then 1-byte writes;
    at most limit_bytes); returns the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 4096, 1):
            block = b"\0" * chunk
            for _ in range(limit_bytes // chunk if chunk > 1 else 8192):
                try:
                    n = f.write(block)
                except OSError:
                    break
                written += n or 0
                if not n or written >= limit_bytes:
                    break
    return written


def _log_since(path, offset, most=25):
    """The log lines written after `offset` that say something went wrong,
    with how many lines there were in all."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    words = ("error", "fail", "space", "enospc", "disk", "warn", "crit", "abort", "fatal")
    bad = [line[:240] for line in lines if any(w in line.lower() for w in words)]
    return [f"{len(lines)} lines logged, {len(bad)} about errors"] + bad[:most]


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
            "lost_acked_writes", "rejoin_after_faked_start_s", "stepped_node_led_after_s",
            "rejoin_after_step_back_s", "disk")
    parts = [f"{k}={record[k]}" for k in keys if k in record]
    if "sync" in record:
        sy = record["sync"]
        parts.append(f"sync identical {sy.get('identical_after_heal_s')} s after the heal, "
                     f"{sy.get('identical_after_restart_s')} s after the restart, "
                     f"{len(sy.get('conflict_copies', []))} conflict copies, lost "
                     f"{len(record.get('sync_lost_writes', []))}")
    if "refusal" in record:
        ref = record["refusal"]
        parts.append(f"refusal={ref['outcome']} in {ref['seconds']} s ({ref['answer'][:60]})")
    if "forwarded" in record:
        fw = record["forwarded"]
        parts.append(f"forwarded first answer {fw.get('first_answered_after_kill_s')} s "
                     f"({fw.get('first_answer', '')[:40]}), first ok "
                     f"{fw.get('first_ok_after_kill_s')} s")
    return " ".join(parts)
