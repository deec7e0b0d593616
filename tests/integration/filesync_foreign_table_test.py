#!/usr/bin/env python3
"""A node whose file table was written in another cluster loses none of its files.

A node keeps, in its data dir, which index version each of its files was last synced at. Those
versions are log indexes of the cluster that wrote the table; in another cluster they mean
nothing, and trusted they make the node overwrite or remove its files as "synced, and changed
by the cluster since". Asserts:
  * "old" (a one-node cluster) syncs notes.txt and old-only.txt, then stops;
  * a second cluster (n1, n2) holds notes.txt with other content;
  * n3 starts with a fresh data dir holding old's filesync.table, and old's folder: it logs that
    the table was written in another cluster, and within 20 s all three folders are identical,
    holding both versions of notes.txt (one as a conflict copy) and old-only.txt.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from filesync_test import (all_conflict_copies, make_agent, sync_files,  # noqa: E402
                           wait_identical, write)

BOUND_S = 20.0
OLD = b"written in the old cluster\n"
NEW = b"written in the new cluster\n"


def main():
    args = h.parse_args(__doc__)
    if not os.path.isdir("/proc/sys/fs/inotify"):
        h.skip("no inotify on this machine")
    os.umask(0o022)
    addrs = h.pick_addresses(4)

    old = make_agent(args.synod, "old", addrs[0], h.free_udp_port(),
                     extra=("--bootstrap-expect", "1"))
    old.start().wait_healthy()
    write(old.folder, "notes.txt", OLD)
    write(old.folder, "old-only.txt", OLD)
    h.wait_for(lambda: {"notes.txt", "old-only.txt"} <= set(sync_files(old)), BOUND_S,
               interval=0.1, what="old's files in its index")
    old.stop()
    table = os.path.join(old.data_dir, "filesync.table")
    h.check(os.path.isfile(table), f"old left no {table}")
    h.log("old synced two files in its own cluster and stopped")

    bport = h.free_udp_port()
    n1, n2 = [make_agent(args.synod, f"n{i + 1}", addrs[i + 1], bport,
                         extra=("--bootstrap-expect", "2")) for i in range(2)]
    for a in (n1, n2):
        a.start()
    for a in (n1, n2):
        a.wait_healthy()
    h.wait_converged([n1, n2], 30, members=2)
    # More entries than old's cluster wrote, so that notes.txt's versions differ.
    for i in range(5):
        write(n1.folder, f"filler-{i}.txt", b"x\n")
    write(n1.folder, "notes.txt", NEW)
    wait_identical([n1, n2], BOUND_S, "notes.txt on the new cluster")
    h.log("the new cluster holds notes.txt with other content")

    n3 = make_agent(args.synod, "n3", addrs[3], bport)
    os.makedirs(n3.data_dir)
    shutil.copy2(table, os.path.join(n3.data_dir, "filesync.table"))
    for name in ("notes.txt", "old-only.txt"):
        shutil.copy2(os.path.join(old.folder, name), os.path.join(n3.folder, name))
    n3.start().wait_healthy()
    agents = [n1, n2, n3]
    h.wait_converged(agents, 30, members=3, what="n3 joined")
    t = wait_identical(agents, BOUND_S, "n3 merged into the new cluster")
    h.check("was written in cluster" in n3.read_log(),
            "n3 did not say its table came from another cluster")
    contents = [e[1] for path, e in t.items()
                if path == "notes.txt" or path in all_conflict_copies(t)]
    h.check(sorted(contents) == sorted([OLD, NEW]),
            f"notes.txt and its conflict copies hold {contents}, want both versions once")
    h.check(t.get("old-only.txt", (None, None))[1] == OLD, "old-only.txt was lost")
    h.log(f"both versions of notes.txt kept everywhere: {sorted(p for p in t if 'notes' in p)}")


if __name__ == "__main__":
    h.run_main(main)
