#!/usr/bin/env python3
"""Deleted files are forgotten after the retention, and still never come back.

Three agents with --sync-dir and --sync-tombstone-retention 2s. Asserts:
  * gone.txt, kept.txt and edited.txt written on n1 reach every node;
  * n3 is killed (kill -9); on n1 gone.txt and edited.txt are deleted; within 20 s the
    running nodes' GET /v1/sync show index_tombstones 0, index_purged_through > 0 and
    local_files 1 (the tombstones were dropped, and the nodes' own records of the paths), and
    the index lists neither path;
  * meanwhile, on n3's folder, edited.txt is changed (a write the delete did not see);
  * n3 restarts: within 20 s all three folders are identical, without gone.txt (n3 removed its
    copy, which it had synced before the delete: it does not announce it back) and with n3's
    edited.txt everywhere (a write beats a delete it did not see); 3 s later gone.txt is still
    nowhere and not in the index;
  * gone.txt written anew on n2 reaches every node (the path is free again).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from filesync_test import (make_agent, skip_without_inotify, sync_files,  # noqa: E402
                           sync_status, tree, wait_identical, write)

BOUND_S = 20.0


def everywhere(agents, rel, data):
    h.wait_for(lambda: all(tree(a.folder).get(rel, (None, None))[1] == data for a in agents),
               BOUND_S, interval=0.1, what=f"{rel} on {', '.join(a.name for a in agents)}")


def main():
    args = h.parse_args(__doc__)
    skip_without_inotify()
    addrs = h.pick_addresses(3)
    bport = h.free_udp_port()
    agents = [make_agent(args.synod, f"n{i + 1}", addrs[i], bport,
                         extra=("--bootstrap-expect", "3", "--sync-tombstone-retention", "2s"))
              for i in range(3)]
    for a in agents:
        a.start()
    for a in agents:
        a.wait_healthy()
    h.wait_converged(agents, 30, members=3, voters=3)
    n1, n2, n3 = agents

    for rel in ("gone.txt", "kept.txt", "edited.txt"):
        write(n1.folder, rel, f"first {rel}\n".encode())
    for rel in ("gone.txt", "kept.txt", "edited.txt"):
        everywhere(agents, rel, f"first {rel}\n".encode())
    h.log("three files written on n1 are on every node")

    n3.kill()
    os.remove(os.path.join(n1.folder, "gone.txt"))
    os.remove(os.path.join(n1.folder, "edited.txt"))

    def purged():
        for a in (n1, n2):
            status = sync_status(a)
            if status.get("index_tombstones") != 0 or not status.get("index_purged_through"):
                return False
            files = sync_files(a)
            if "gone.txt" in files or "edited.txt" in files:
                return False
            # Nor does the node's own record keep the deleted paths.
            if status.get("local_files") != 1:
                return False
        return True
    h.wait_for(purged, BOUND_S, interval=0.2, what="the two tombstones purged on n1 and n2")
    h.check(not os.path.exists(os.path.join(n2.folder, "gone.txt")), "gone.txt still on n2")
    write(n3.folder, "edited.txt", b"edited on n3 while it was down\n")
    h.log(f"deleted on n1 while n3 was down; tombstones purged: {sync_status(n1)}")

    n3.start().wait_healthy()
    h.wait_converged(agents, 30, members=3, voters=3, what="n3 back")
    t = wait_identical(agents, BOUND_S, "n3 caught up after the purge")
    h.check("gone.txt" not in t, "gone.txt came back after its tombstone was purged")
    h.check(t.get("edited.txt", (None, None))[1] == b"edited on n3 while it was down\n",
            f"n3's offline edit was lost: {t.get('edited.txt')}")
    time.sleep(3.0)
    for a in agents:
        h.check(not os.path.exists(os.path.join(a.folder, "gone.txt")),
                f"gone.txt reappeared on {a.name}")
        h.check("gone.txt" not in sync_files(a), f"gone.txt is back in {a.name}'s index")
    h.log("n3 removed its stale copy of the purged file and announced its offline edit")

    write(n2.folder, "gone.txt", b"a new file at the old path\n")
    everywhere(agents, "gone.txt", b"a new file at the old path\n")
    h.log("the path is free again: a new gone.txt reaches every node")


if __name__ == "__main__":
    h.run_main(main)
