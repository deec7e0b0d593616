#!/usr/bin/env python3
"""File sync with a member that forges the blocks it is asked for: every block is checked
against its SHA-256, a forged one is refused and fetched from another node, and no file is
written with bytes that are not the announced ones.

The forger joins the proper way (hostile_member_test's FakeMember: it answers at the address it
gives, under its own id, and sends heartbeats) and answers every block request with bytes of
the right length that are not the block.

Asserts:
  * three agents (--voters 3 --standbys 0, each with --sync-dir) form a cluster; the forger
    joins through one of them as a spare;
  * a 16 MiB file written on the first node (128 blocks, spread over every source) arrives
    with its exact bytes on the two others, and the forger was asked for some of its blocks;
  * the two others counted the forged blocks they received as rejected
    (synod_sync_rejected_blocks_total; at least one, at most what the forger sent), say so in
    their logs, and are in sync without errors afterwards; nothing but the file is in the
    folders.
"""
import hashlib
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import filesync_test as fs  # noqa: E402
import harness as h  # noqa: E402
import hostile_member_test as hm  # noqa: E402
import metrics_test as mt  # noqa: E402
import peer_wire as w  # noqa: E402

BOUND_S = 30.0
FILE_BYTES = 16 << 20
BLOCK_REQUEST, BLOCK_RESPONSE = 28, 29


class Forger(hm.FakeMember):
    """A member that answers block requests with forged bytes (and keeps count)."""

    def __init__(self, addr):
        super().__init__(addr)
        self.forged = 0
        self.count_lock = threading.Lock()

    def _answer(self, message):
        if BLOCK_REQUEST not in message:
            return super()._answer(message)
        with self.count_lock:
            self.forged += 1
        reply = w.field(w.REQUEST_ID, message.get(w.REQUEST_ID, [0])[0])
        return reply + w.field(BLOCK_RESPONSE, w.field(1, os.urandom(128 << 10)))


def rejected_blocks(agent):
    return int(mt.value(mt.scrape(agent), "synod_sync_rejected_blocks_total"))


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(4)
    bport = h.free_udp_port()
    forger = Forger(addrs[3])
    agents = []
    try:
        agents = [fs.make_agent(args.synod, f"n{i + 1}", addrs[i], bport,
                                extra=("--bootstrap-expect", "3", "--voters", "3",
                                       "--standbys", "0")).start() for i in range(3)]
        for a in agents:
            a.wait_healthy()
        h.wait_converged(agents, BOUND_S, members=3)
        forger.keep_alive(agents)
        ok, error = forger.join(agents[1])
        h.check(ok, f"the forger's join was refused: {error}")
        h.wait_for(lambda: all(any(m.get("id") == forger.id and m.get("state") == "alive"
                                   for m in a.cluster().get("members", [])) for a in agents),
                   BOUND_S, what="every node to see the forger as an alive member")
        h.log("the forger joined as a spare")

        data = os.urandom(FILE_BYTES)
        fs.write(agents[0].folder, "big.bin", data)
        digest = hashlib.sha256(data).hexdigest()

        def arrived():
            for a in agents[1:]:
                path = os.path.join(a.folder, "big.bin")
                try:
                    with open(path, "rb") as f:
                        if hashlib.sha256(f.read()).hexdigest() != digest:
                            return False
                except FileNotFoundError:
                    return False
            return True

        h.wait_for(arrived, BOUND_S, what="the 16 MiB file with its exact bytes on n2 and n3")
        with forger.count_lock:
            forged = forger.forged
        h.check(forged > 0, "the forger was never asked for a block: nothing was tested")
        rejected = {a.name: rejected_blocks(a) for a in agents[1:]}
        h.check(1 <= sum(rejected.values()) <= forged,
                f"rejected blocks {rejected}, the forger sent {forged}")
        for a in agents[1:]:
            if rejected[a.name]:
                h.check("did not match its hash" in a.read_log(),
                        f"{a.name}: rejected a block and did not say so in its log")
        h.log(f"the forger sent {forged} forged blocks; rejected {rejected}; "
              f"the file arrived intact")
        written = os.path.join(agents[0].folder, "big.bin")
        fs.wait_identical(agents, BOUND_S, "after the forged blocks",
                          expect=fs.expect_tree({"big.bin": fs.entry(written)}))
        for a in agents:
            status = fs.sync_status(a)
            h.check(status.get("in_sync") is True and not status.get("errors"),
                    f"{a.name}: /v1/sync after the transfer: {status}")
        h.log("every node in sync, with no errors")
    finally:
        forger.stop()
        for a in agents:
            a.stop()


if __name__ == "__main__":
    h.run_main(main)
