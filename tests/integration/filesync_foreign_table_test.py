#!/usr/bin/env python3
"""A node whose sync state was written in another cluster loses none of its files.

A node keeps which index version each of its files was last synced at: in its data dir (the
file table) and on each file Synod wrote (an extended attribute). Those versions are log
indexes of the cluster that wrote them; in another cluster they mean nothing, and trusted they
make the node overwrite or remove its files as "synced, and changed by the cluster since".
Asserts:
  * "old" and "old2" (a two-node cluster) sync notes.txt, old-only.txt (written on old) and
    draft.txt (written on old2, so that Synod wrote old's copy), then stop;
  * a second cluster (n1, n2) holds notes.txt and draft.txt with other content;
  * n3 starts with a fresh data dir holding old's filesync.table, and old's notes.txt and
    old-only.txt: it logs that the table was written in another cluster, and within 20 s all
    three folders are identical, holding both versions of notes.txt (one as a conflict copy)
    and old-only.txt;
  * n4 starts with a fresh data dir and no table, and a copy of old's draft.txt that keeps its
    attributes (Synod wrote it in the old cluster): within 20 s all four folders are identical,
    holding both versions of draft.txt.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from filesync_test import (conflict_copies, make_agent,  # noqa: E402
                           skip_without_inotify, wait_identical, write)

BOUND_S = 20.0
OLD = b"written in the old cluster\n"
NEW = b"written in the new cluster\n"


def check_both_versions(t, stem):
    contents = [e[1] for path, e in t.items()
                if path == f"{stem}.txt" or path in conflict_copies(t, f"{stem}.txt")]
    h.check(sorted(contents) == sorted([OLD, NEW]),
            f"{stem}.txt and its conflict copies hold {contents}, want both versions once")


def main():
    args = h.parse_args(__doc__)
    skip_without_inotify()
    addrs = h.pick_addresses(6)

    old_port = h.free_udp_port()
    old, old2 = [make_agent(args.synod, name, addr, old_port, extra=("--bootstrap-expect", "2"))
                 for name, addr in (("old", addrs[0]), ("old2", addrs[5]))]
    for a in (old, old2):
        a.start()
    for a in (old, old2):
        a.wait_healthy()
    h.wait_converged([old, old2], 30, members=2)
    write(old.folder, "notes.txt", OLD)
    write(old.folder, "old-only.txt", OLD)
    write(old2.folder, "draft.txt", OLD)
    wait_identical([old, old2], BOUND_S, "the old cluster's files")
    old_cluster = old.get("/v1/cluster")["cluster_id"]
    old2.stop()
    old.stop()
    table = os.path.join(old.data_dir, "filesync.table")
    h.check(os.path.isfile(table), f"old left no {table}")
    h.log("the old cluster synced three files and stopped")

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
    write(n1.folder, "draft.txt", NEW)
    wait_identical([n1, n2], BOUND_S, "notes.txt and draft.txt on the new cluster")
    h.log("the new cluster holds notes.txt and draft.txt with other content")

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
    check_both_versions(t, "notes")
    h.check(t.get("old-only.txt", (None, None))[1] == OLD, "old-only.txt was lost")
    h.log(f"both versions of notes.txt kept everywhere: {sorted(p for p in t if 'notes' in p)}")

    # The attribute of a file Synod wrote (a copy keeping extended attributes, as cp -a does).
    n4 = make_agent(args.synod, "n4", addrs[4], bport)
    draft = shutil.copy2(os.path.join(old.folder, "draft.txt"), n4.folder)
    try:
        attribute = os.getxattr(draft, "user.synod.synced").decode()
    except OSError as e:
        h.log(f"no extended attributes here ({e}): the attribute case is not checked")
        return
    h.check(old_cluster in attribute, f"draft.txt's attribute {attribute!r} names no cluster")
    n4.start().wait_healthy()
    agents.append(n4)
    h.wait_converged(agents, 30, members=4, what="n4 joined")
    t = wait_identical(agents, BOUND_S, "n4 merged into the new cluster")
    check_both_versions(t, "draft")
    h.log(f"both versions of draft.txt kept everywhere: {sorted(p for p in t if 'draft' in p)}")


if __name__ == "__main__":
    h.run_main(main)
