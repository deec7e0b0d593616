#!/usr/bin/env python3
"""File sync (--sync-dir): one folder kept identical on every node, losing nothing.

Three agents with --bootstrap-expect 3, each with its own folder (node n1, "A", has a
.synodignore holding "*.log" before it starts). "Identical" below means: every node's folder
walked without following links (Synod's ".synod-tmp-*" files, the top-level .synodignore and
the *.log files n1 ignores left out) gives the same paths with the same kind, the same bytes
and permission bits (files) and link targets (symlinks), in two polls in a row, and every node's
GET /v1/sync says in_sync. Each wait is bounded (20 s for a propagation); a timeout names the
paths that differ. Asserts:
  * every GET /v1/sync answers enabled true and the node's folder as "dir";
  * the files A had before it started (x.txt, sub/keep.txt) reach B and C;
  * create / modify / layout / rename / delete, each waited for identical with the writer's
    state: a file written on A appears with the same bytes and mode on B and C, and every
    node's /v1/sync/files lists it (kind file, sha256 hash, size, mode, origin A, a version);
    modified on B it propagates with a higher version and origin B; nested directories
    a/b/c/file, an empty directory, symlinks (d/link -> ../target.txt inside the folder, and
    two leaving it: a dangling one to ../x and one to ../outside.txt; links everywhere, never
    followed, ../x never created) and chmod 0755 all propagate (the index says directory /
    symlink with its target / mode 0755); os.rename of a 4 MiB file
    moves it everywhere (the old path is gone from disk and from the index's live entries)
    without re-transferring it (each other node's fetched_bytes_total grows by under 1 MiB);
    a file and a whole nested directory deleted (shutil.rmtree) are gone everywhere and still
    gone 2 s later;
  * 50 different files written on each of the three nodes at once: all 150 everywhere;
  * the same path written on A and B at the same moment with different contents, 10 rounds on
    10 paths (5 new paths, 5 that existed in sync before): afterwards the nodes are identical
    and, per path, the file plus its conflict copies ("NAME.sync-conflict-YYYYMMDD-HHMMSS-
    NODE.EXT", NODE one of the agents, the time within a day of now) hold both contents;
  * kill -9 of C; on A files created, one modified, one deleted; on C's folder, while it is
    down, one file added; C restarted: the cluster whole again and all identical, with A's
    changes on C, C's offline file on A and B, and no new conflict copy;
  * a fourth agent started later (no bootstrap flag) with a folder already holding files the
    cluster lacks, an empty directory, and one file identical (path, bytes, mode) to one the
    cluster has: it joins, and all four folders become identical (the union), with no conflict
    copy of the identical file;
  * a --large-mb MiB (default 64) file of random bytes written on A reaches every node, each
    other node's fetched_bytes_total growing by at least its size less 1 MiB; one byte changed
    in its middle (r+b, seek, write) reaches every node, each other node's fetched_bytes_total
    growing by under 1 MiB and reused_bytes_total by at least the size less 1 MiB;
  * A's x.log and sub/y.log (ignored there) never appear on another node and stay on A, while
    x.txt and sub/keep.txt do; no node but A has a .synodignore; a file in the test's temp
    dir and one next to each node's folder (the target of the escaping link) are unchanged
    (bytes, mtime, inode), and nothing else appeared next to any folder;
  * at the end every /v1/sync answers enabled true, in_sync true, no errors, pending_files 0,
    pending_bytes 0, and index_files equal to the number of entries in that node's tree
    (files, directories and links; or that less the conflict copies, if the index does not
    count those); the counters are non-negative integers, A announced, B fetched, and some
    node counted conflicts;
  * CLI: synod sync status --json lists every node in sync, sync ls --json exactly the
    folder's paths, sync conflicts --json exactly the conflict copies, status --wait ends.
Skips (77) without inotify, symlinks, or disk space for the large file.
"""

import calendar
import fnmatch
import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N = 3
FORM_BOUND_S = 20.0
PROPAGATE_BOUND_S = 20.0
REJOIN_BOUND_S = 30.0
JOIN_BOUND_S = 30.0
INDEX_BOUND_S = 5.0
STAY_GONE_S = 2.0
PARALLEL_FILES = 50
CONFLICT_ROUNDS = 10
RENAME_SIZE = 4 << 20
MIB = 1 << 20
INLINE_MAX = 1 << 20          # tree(): files above this are kept as a digest, not bytes
TMP_PREFIX = ".synod-tmp-"
IGNORE_FILE = ".synodignore"
IGNORED_SUFFIX = ".log"       # A's .synodignore is "*.log"; no other .log file is written
CONFLICT_RE = re.compile(r"^(?P<stem>.*)\.sync-conflict-(?P<date>\d{8})-(?P<time>\d{6})-"
                         r"(?P<node>[A-Za-z0-9_-]+)(?P<ext>\.[^./]*)?$")
SYNC_COUNTERS = ("index_files", "pending_files", "pending_bytes", "announced_total",
                 "fetched_files_total", "fetched_bytes_total", "reused_bytes_total",
                 "conflicts_total")


# --------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------

class Digest(str):
    """A large file's content in a tree: "sha256:<hex>:<size>" (not its bytes)."""


_digests = {}  # abs path -> (stat key, Digest): large files are hashed once per version


def file_content(path):
    st = os.lstat(path)
    if st.st_size <= INLINE_MAX:
        with open(path, "rb") as f:
            return f.read()
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    hit = _digests.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(4 * MIB)
            if not chunk:
                break
            hasher.update(chunk)
            size += len(chunk)
    d = Digest(f"sha256:{hasher.hexdigest()}:{size}")
    _digests[path] = (key, d)
    return d


def entry(full):
    """The tree entry of one path (follows nothing)."""
    st = os.lstat(full)
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(full))
    if stat.S_ISDIR(st.st_mode):
        return ("dir",)
    if stat.S_ISREG(st.st_mode):
        return ("file", file_content(full), st.st_mode & 0o777)
    return ("other", stat.S_IFMT(st.st_mode))


def skipped(rel):
    base = rel.rsplit("/", 1)[-1]
    return base.startswith(TMP_PREFIX) or rel == IGNORE_FILE or base.endswith(IGNORED_SUFFIX)


def tree(folder):
    """{relpath: ("file", bytes, mode & 0o777) | ("dir",) | ("link", target)} of `folder`,
    walked without following links; Synod's temporary files, the top-level .synodignore and
    *.log (ignored on A) left out. A file over INLINE_MAX is ("file", Digest, mode). A path
    that vanishes during the walk raises OSError (wait_for retries)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        reldir = os.path.relpath(dirpath, folder)
        reldir = "" if reldir == "." else reldir.replace(os.sep, "/") + "/"
        keep = []
        for name in dirnames:
            rel = reldir + name
            if skipped(rel):
                continue
            e = entry(os.path.join(dirpath, name))
            out[rel] = e
            if e[0] == "dir":
                keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            rel = reldir + name
            if not skipped(rel):
                out[rel] = entry(os.path.join(dirpath, name))
    return out


def describe(e):
    if e is None:
        return "absent"
    if e[0] == "file":
        c = e[1]
        if isinstance(c, Digest):
            _, hexd, size = c.split(":")
            return f"file {size} bytes sha256 {hexd[:12]} mode {e[2]:o}"
        return (f"file {len(c)} bytes sha256 {hashlib.sha256(c).hexdigest()[:12]} "
                f"{c[:24]!r} mode {e[2]:o}")
    if e[0] == "link":
        return f"link -> {e[1]!r}"
    return e[0]


def tree_diff(trees, limit=20):
    """Lines naming the paths where the trees ({name: tree}) differ from the first one."""
    names = list(trees)
    ref_name, ref = names[0], trees[names[0]]
    lines = []
    for name in names[1:]:
        t = trees[name]
        for p in sorted(set(ref) | set(t)):
            if ref.get(p) != t.get(p):
                lines.append(f"  {p}: {ref_name} {describe(ref.get(p))}; "
                             f"{name} {describe(t.get(p))}")
                if len(lines) >= limit:
                    return lines + ["  ..."]
    return lines


def under(rel, root):
    return rel == root or rel.startswith(root + "/")


def apply_changes(prev, agent, roots):
    """`prev` with every path under `roots` replaced by what `agent`'s folder holds there
    (its changes, deletes included), and the parents of what it holds. The folder is walked
    again if a path vanishes meanwhile: a change made on another node just before may be
    arriving."""
    for _ in range(50):
        try:
            now = tree(agent.folder)
            break
        except FileNotFoundError:
            time.sleep(0.01)
    else:
        now = tree(agent.folder)
    out = {p: e for p, e in prev.items() if not any(under(p, r) for r in roots)}
    for p, e in now.items():
        if any(under(p, r) for r in roots) or any(under(r, p) for r in roots):
            out[p] = e
    return out


def write(folder, rel, data):
    """Write `data` at `rel` directly (create or truncate), then close."""
    full = os.path.join(folder, rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data)
    return full


def conflict_copies(t, rel):
    """Paths in tree `t` that are conflict copies of `rel`."""
    d, _, base = rel.rpartition("/")
    stem, _, ext = base.rpartition(".")
    if not stem:  # no extension, or a leading dot only (".bashrc")
        stem, ext = base, ""
    pattern = f"{stem}.sync-conflict-*" + (f".{ext}" if ext else "")
    prefix = d + "/" if d else ""
    return sorted(p for p in t if p.startswith(prefix) and "/" not in p[len(prefix):]
                  and fnmatch.fnmatchcase(p[len(prefix):], pattern))


def all_conflict_copies(t):
    return sorted(p for p in t if ".sync-conflict-" in p.rsplit("/", 1)[-1])


# --------------------------------------------------------------------------
# The sync API
# --------------------------------------------------------------------------

def sync_status(agent):
    return agent.get("/v1/sync", timeout=5.0)


def sync_files(agent, prefix=""):
    """{path: entry} from GET /v1/sync/files?prefix=..."""
    doc = agent.get("/v1/sync/files?prefix=" + urllib.parse.quote(prefix, safe=""), timeout=5.0)
    h.check(isinstance(doc, dict) and isinstance(doc.get("files"), list),
            f"{agent.name}: /v1/sync/files?prefix={prefix}: {str(doc)[:300]}")
    return {f["path"]: f for f in doc["files"]}


def live(entries, path):
    e = entries.get(path)
    return e if e is not None and not e.get("deleted") else None


def origin_is(e, agent):
    return e.get("origin") in (agent.name, getattr(agent, "id", None))


def wait_index(agents, prefix, want, what):
    """Wait until want(entries of `prefix`) returns no problem on every agent; returns
    {agent name: entries}."""
    last = {}

    def cond():
        probs = []
        got = {}
        for a in agents:
            got[a.name] = sync_files(a, prefix)
            probs += [f"{a.name}: {p}" for p in want(got[a.name])]
        last["problems"] = probs
        return not probs and got
    try:
        return h.wait_for(cond, INDEX_BOUND_S, interval=0.2, what=what)
    except h.Abort:
        raise
    except h.TestFailure as e:
        h.fail(f"{e}\nproblems: {last.get('problems', [])[:10]}")


def counters(agents, field):
    return {a.name: sync_status(a)[field] for a in agents}


# --------------------------------------------------------------------------
# Waiting for identical folders
# --------------------------------------------------------------------------

def wait_identical(agents, timeout, what, expect=None):
    """Wait until every agent's folder gives the same tree, two polls in a row, every
    /v1/sync says in_sync and expect(tree) (a list of problems) is empty; returns that tree.
    On timeout the failure names the differences."""
    last = {"trees": {}, "problems": [], "status": {}}
    prev = [None]

    def cond():
        for a in agents:
            if not a.alive():
                h.abort(f"agent {a.name} exited with {a.proc.returncode}")
        trees = {a.name: tree(a.folder) for a in agents}
        last["trees"] = trees
        first = trees[agents[0].name]
        if any(t != first for t in trees.values()):
            prev[0] = None
            last["problems"] = ["folders differ"]
            return False
        problems = expect(first) if expect is not None else []
        last["problems"] = problems
        if problems:
            prev[0] = None
            return False
        st = {a.name: sync_status(a) for a in agents}
        last["status"] = {n: (s.get("in_sync"), s.get("pending_files"), s.get("pending_bytes"),
                              s.get("errors")) for n, s in st.items()}
        if not all(s.get("in_sync") is True for s in st.values()):
            prev[0] = None
            return False
        if prev[0] != first:
            prev[0] = first
            return False
        return (first,)
    t_start = time.monotonic()
    try:
        got = h.wait_for(cond, timeout, interval=0.25, what=what)
    except h.Abort:
        raise
    except h.TestFailure as e:
        diff = tree_diff(last["trees"]) if last["trees"] else []
        h.fail(f"{e}\nnodes {[a.name for a in agents]}; differences:\n"
               + ("\n".join(diff) if diff else "  (none)")
               + f"\nexpectation problems: {last['problems'][:10]}"
               + f"\n(in_sync, pending_files, pending_bytes, errors): {last['status']}")
    h.log(f"{what}: identical on {len(agents)} nodes after "
          f"{time.monotonic() - t_start:.2f} s ({len(got[0])} entries)")
    return got[0]


def expect_tree(want):
    """An expect() for wait_identical: the tree must equal `want`."""
    def problems(t):
        out = []
        for p in sorted(set(want) | set(t)):
            if want.get(p) != t.get(p):
                out.append(f"{p}: want {describe(want.get(p))}, have {describe(t.get(p))}")
        return out
    return problems


# --------------------------------------------------------------------------
# Agents
# --------------------------------------------------------------------------

def make_agent(synod, name, addr, bport, extra=()):
    """An agent whose folder is <its own temp dir>/folder, created now (empty); the temp dir
    also holds outside.txt, next to the folder (never to be touched)."""
    root = h.make_tempdir(f"synod-it-{name}-sync-")
    folder = os.path.join(root, "folder")
    os.makedirs(folder)
    a = h.Agent(synod, name, addr, bport, extra_args=(*extra, "--sync-dir", folder),
                log_level="info")
    a.root = root
    a.folder = folder
    h.check(not os.path.realpath(a.data_dir).startswith(os.path.realpath(folder) + os.sep),
            "test setup: the data dir is inside the sync dir")
    return a


def check_enabled(agents):
    for a in agents:
        s = sync_status(a)
        h.check(s.get("enabled") is True, f"{a.name}: /v1/sync enabled is not true: {s}")
        h.check(isinstance(s.get("dir"), str)
                and os.path.realpath(s["dir"]) == os.path.realpath(a.folder),
                f"{a.name}: /v1/sync dir {s.get('dir')!r}, want {a.folder!r}")


def run_threads(fns, what, bound=60.0):
    """Run each fn in its own thread; fail naming the first exception."""
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=wrap, args=(fn,), daemon=True) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=bound)
    h.check(not any(t.is_alive() for t in threads), f"{what}: writer threads still running")
    if errors:
        h.fail(f"{what}: a writer failed: {errors[0]!r}")


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

def basics(agents):
    a, b, c = agents
    t = wait_identical(agents, PROPAGATE_BOUND_S, "A's files from before the start",
                       expect=expect_tree(tree(a.folder)))

    # Create on A.
    data1 = os.urandom(3000)
    write(a.folder, "f1.txt", data1)
    mode1 = os.stat(os.path.join(a.folder, "f1.txt")).st_mode & 0o777
    t = wait_identical(agents, PROPAGATE_BOUND_S, "a file created on A",
                       expect=expect_tree(apply_changes(t, a, ["f1.txt"])))
    h.check(t["f1.txt"] == ("file", data1, mode1), f"f1.txt: {describe(t.get('f1.txt'))}")

    def f1_from_a(es):
        e = live(es, "f1.txt")
        ok = (e and e.get("kind") == "file" and e.get("hash") == hashlib.sha256(data1).hexdigest()
              and e.get("size") == len(data1) and (e.get("mode", -1) & 0o777) == mode1
              and origin_is(e, a) and isinstance(e.get("version"), int) and e["version"] > 0)
        return [] if ok else [f"f1.txt: {es.get('f1.txt')}"]
    idx = wait_index(agents, "f1.txt", f1_from_a, "the index to list f1.txt from A")
    v1 = idx[a.name]["f1.txt"]["version"]

    # Modify on B.
    data2 = b"changed on B\n" + os.urandom(5000)
    write(b.folder, "f1.txt", data2)
    t = wait_identical(agents, PROPAGATE_BOUND_S, "f1.txt modified on B",
                       expect=expect_tree(apply_changes(t, b, ["f1.txt"])))

    def f1_from_b(es):
        e = live(es, "f1.txt")
        ok = (e and e.get("hash") == hashlib.sha256(data2).hexdigest() and origin_is(e, b)
              and isinstance(e.get("version"), int) and e["version"] > v1)
        return [] if ok else [f"f1.txt: {es.get('f1.txt')}"]
    wait_index(agents, "f1.txt", f1_from_b,
               f"the index to list f1.txt from B with a version above {v1}")

    # Nested dirs on A, an empty dir on B, links on C, chmod on A.
    nested = os.urandom(2000)
    write(a.folder, "a/b/c/file.bin", nested)
    write(a.folder, "a/top.txt", b"top of a\n")
    os.makedirs(os.path.join(b.folder, "empty"))
    write(c.folder, "target.txt", b"the inner link's target\n")
    os.makedirs(os.path.join(c.folder, "d"))
    os.symlink("../target.txt", os.path.join(c.folder, "d", "link"))
    os.symlink("../x", os.path.join(c.folder, "dangling"))
    os.symlink("../outside.txt", os.path.join(c.folder, "escape"))
    os.chmod(os.path.join(a.folder, "f1.txt"), 0o755)
    want = apply_changes(t, a, ["a", "f1.txt"])
    want = apply_changes(want, b, ["empty"])
    want = apply_changes(want, c, ["target.txt", "d", "dangling", "escape"])
    t = wait_identical(agents, PROPAGATE_BOUND_S, "nested dirs, empty dir, symlinks, chmod",
                       expect=expect_tree(want))
    h.check(t["a/b/c/file.bin"][1] == nested and t["a/b/c"] == ("dir",)
            and t["empty"] == ("dir",) and t["d/link"] == ("link", "../target.txt")
            and t["dangling"] == ("link", "../x") and t["escape"] == ("link", "../outside.txt")
            and t["f1.txt"][2] == 0o755, f"layout: {[(p, describe(e)) for p, e in t.items()]}")
    for o in (b, c):
        h.check(not os.path.lexists(os.path.join(o.root, "x")),
                f"{o.name}: ../x created outside the folder (a link was followed)")

    def layout_index(es):
        bad = []
        for p, kind in (("a", "directory"), ("a/b/c", "directory"), ("empty", "directory"),
                        ("a/b/c/file.bin", "file"), ("d/link", "symlink"),
                        ("dangling", "symlink"), ("escape", "symlink")):
            e = live(es, p)
            if not e or e.get("kind") != kind:
                bad.append(f"{p}: want {kind}, have {e}")
        for p, target in (("d/link", "../target.txt"), ("dangling", "../x"),
                          ("escape", "../outside.txt")):
            if (live(es, p) or {}).get("target") != target:
                bad.append(f"{p}: target {(live(es, p) or {}).get('target')!r}, want {target!r}")
        if ((live(es, "f1.txt") or {}).get("mode", 0) & 0o777) != 0o755:
            bad.append(f"f1.txt mode: {live(es, 'f1.txt')}")
        return bad
    wait_index(agents, "", layout_index, "the index to list the layout")

    # Rename (a 4 MiB file: the data must not move again).
    big = os.urandom(RENAME_SIZE)
    write(a.folder, "tomove.bin", big)
    t = wait_identical(agents, PROPAGATE_BOUND_S, "a 4 MiB file created on A",
                       expect=expect_tree(apply_changes(t, a, ["tomove.bin"])))
    fetched = counters(agents, "fetched_bytes_total")
    os.rename(os.path.join(b.folder, "tomove.bin"), os.path.join(b.folder, "moved.bin"))
    os.rename(os.path.join(b.folder, "f1.txt"), os.path.join(b.folder, "f1-renamed.txt"))
    t = wait_identical(agents, PROPAGATE_BOUND_S, "two files renamed on B",
                       expect=expect_tree(apply_changes(t, b, ["tomove.bin", "moved.bin",
                                                               "f1.txt", "f1-renamed.txt"])))
    h.check("tomove.bin" not in t and "f1.txt" not in t and t["f1-renamed.txt"][1] == data2,
            "rename: old paths gone, new ones present")
    moved = {n: v - fetched[n] for n, v in counters(agents, "fetched_bytes_total").items()}
    h.check(all(moved[o.name] < MIB for o in (a, c)),
            f"a rename re-transferred data: fetched_bytes_total grew by {moved} "
            f"(file of {RENAME_SIZE} bytes)")
    wait_index(agents, "", lambda es: [f"{p}: {es.get(p)}" for p in ("tomove.bin", "f1.txt")
                                       if live(es, p)]
               + [f"{p} missing" for p in ("moved.bin", "f1-renamed.txt") if not live(es, p)],
               "the index to show the renames")
    h.log(f"rename of 4 MiB moved {moved} bytes")

    # Delete a file and a whole nested directory.
    os.remove(os.path.join(c.folder, "moved.bin"))
    shutil.rmtree(os.path.join(a.folder, "a"))
    want = apply_changes(t, c, ["moved.bin"])
    want = apply_changes(want, a, ["a"])
    t = wait_identical(agents, PROPAGATE_BOUND_S, "a file and a nested directory deleted",
                       expect=expect_tree(want))
    time.sleep(STAY_GONE_S)
    for o in agents:
        back = [p for p in tree(o.folder) if p == "moved.bin" or under(p, "a")]
        h.check(not back, f"{o.name}: deleted paths came back after {STAY_GONE_S} s: {back}")
    wait_index(agents, "", lambda es: [p for p in ("moved.bin", "a", "a/b/c/file.bin")
                                       if live(es, p)], "the index to show the deletes")
    return wait_identical(agents, PROPAGATE_BOUND_S, "after the deletes", expect=expect_tree(t))


def parallel_writes(agents, t):
    barrier = threading.Barrier(len(agents))
    contents = {}
    for a in agents:
        for i in range(PARALLEL_FILES):
            contents[f"par-{a.name}-{i:03d}.txt"] = (f"{a.name} {i}\n".encode()
                                                    + os.urandom(random.randint(10, 4000)))

    def writer(a):
        def run():
            barrier.wait(timeout=10.0)
            for i in range(PARALLEL_FILES):
                rel = f"par-{a.name}-{i:03d}.txt"
                write(a.folder, rel, contents[rel])
        return run
    run_threads([writer(a) for a in agents], "parallel writes")
    want = dict(t)
    for a in agents:
        want = apply_changes(want, a, [f"par-{a.name}-{i:03d}.txt" for i in range(PARALLEL_FILES)])
    t = wait_identical(agents, PROPAGATE_BOUND_S,
                       f"{PARALLEL_FILES} files written on each of {len(agents)} nodes at once",
                       expect=expect_tree(want))
    h.check(all(t.get(p, (None, None))[1] == d for p, d in contents.items()),
            "parallel writes: a file with the wrong content")
    return t


def concurrent_writes(agents, t):
    a, b, c = agents
    paths = [f"cf-{r}.txt" for r in range(CONFLICT_ROUNDS)]
    existing = paths[CONFLICT_ROUNDS // 2:]
    for p in existing:
        write(c.folder, p, f"base of {p}\n".encode())
    t = wait_identical(agents, PROPAGATE_BOUND_S, "the bases of the conflict rounds",
                       expect=expect_tree(apply_changes(t, c, existing)))
    before = set(all_conflict_copies(t))
    written = {p: (f"{p} from {a.name}\n".encode() + os.urandom(500),
                   f"{p} from {b.name}\n".encode() + os.urandom(700)) for p in paths}
    barrier = threading.Barrier(2)
    done_at = {a.name: [], b.name: []}

    def writer(agent, which):
        def run():
            for p in paths:
                barrier.wait(timeout=10.0)
                write(agent.folder, p, written[p][which])
                done_at[agent.name].append(time.monotonic())
                time.sleep(0.05)
        return run
    run_threads([writer(a, 0), writer(b, 1)], "simultaneous writes")
    skew = max(abs(x - y) for x, y in zip(done_at[a.name], done_at[b.name]))

    def nothing_lost(tr):
        probs = []
        for p in paths:
            held = {tr[q][1] for q in [p] + conflict_copies(tr, p) if q in tr
                    and tr[q][0] == "file"}
            for which, name in ((0, a.name), (1, b.name)):
                if written[p][which] not in held:
                    probs.append(f"{p}: the content written on {name} is neither at the path "
                                 f"nor in a conflict copy ({conflict_copies(tr, p)})")
        return probs
    t = wait_identical(agents, PROPAGATE_BOUND_S,
                       f"{CONFLICT_ROUNDS} paths written on A and B at once", expect=nothing_lost)
    copies = [p for p in all_conflict_copies(t) if p not in before]
    names = {x.name for x in agents}
    now = time.time()
    for p in copies:
        m = CONFLICT_RE.match(p)
        h.check(m is not None, f"conflict copy {p!r} not named NAME.sync-conflict-"
                               f"YYYYMMDD-HHMMSS-NODE.EXT")
        h.check(m.group("node") in names, f"conflict copy {p!r}: node {m.group('node')!r} is "
                                          f"not one of {sorted(names)}")
        when = calendar.timegm(time.strptime(m.group("date") + m.group("time"), "%Y%m%d%H%M%S"))
        h.check(abs(when - now) < 86400, f"conflict copy {p!r}: time is not UTC now")
        h.check(any(p in conflict_copies(t, q) for q in paths),
                f"conflict copy {p!r} of a path that was not written concurrently")
    h.log(f"simultaneous writes (skew at most {skew * 1000:.1f} ms): {len(copies)} conflict "
          f"copies, both contents of all {CONFLICT_ROUNDS} paths kept on every node")
    return t


def offline_node(agents, t):
    a, b, c = agents
    c.kill()
    h.log(f"killed {c.name} (kill -9)")
    up = [a, b]
    new = {f"offline/new-{i}.txt": os.urandom(random.randint(100, 3000)) for i in range(10)}
    for rel, data in new.items():
        write(a.folder, rel, data)
    changed = "par-n2-001.txt"
    gone = "par-n3-002.txt"
    h.check(changed in t and gone in t, "test setup: the parallel files are there")
    write(a.folder, changed, b"modified while n3 was down\n")
    os.remove(os.path.join(a.folder, gone))
    want = apply_changes(t, a, ["offline", changed, gone])
    wait_identical(up, PROPAGATE_BOUND_S, f"A's changes on A and B while {c.name} is down",
                   expect=expect_tree(want))
    only_c = os.urandom(2500)
    write(c.folder, "c-offline.txt", only_c)
    removed_on_c = "par-n1-003.txt"
    h.check(removed_on_c in t, "test setup: the parallel files are there")
    os.remove(os.path.join(c.folder, removed_on_c))
    want = apply_changes(want, c, ["c-offline.txt", removed_on_c])
    h.check(tree(c.folder).get(changed) == t[changed], "test setup: C's copy unchanged")

    t0 = time.monotonic()
    c.start().wait_healthy()
    h.wait_converged(agents, REJOIN_BOUND_S, members=N, voters=N,
                     what=f"{c.name} back in the cluster")
    t = wait_identical(agents, REJOIN_BOUND_S, f"{c.name} caught up after its restart",
                       expect=expect_tree(want))
    h.check(t["c-offline.txt"][1] == only_c and gone not in t and removed_on_c not in t
            and t[changed][1] == b"modified while n3 was down\n",
            "restart: C's offline file and delete everywhere, A's delete and change on C")
    h.log(f"{c.name} restarted and caught up in {time.monotonic() - t0:.2f} s")
    return t


def late_joiner(synod, agents, addr, bport, t, sentinels):
    d = make_agent(synod, "n4", addr, bport)
    record_sentinel(sentinels, write(d.root, "outside.txt", b"outside n4\n"))
    own = {f"late/d-{i}.txt": os.urandom(random.randint(100, 3000)) for i in range(5)}
    own["late/deep/e.txt"] = b"deep in the late node\n"
    for rel, data in own.items():
        write(d.folder, rel, data)
    os.makedirs(os.path.join(d.folder, "late-empty"))
    same = "par-n1-004.txt"
    h.check(t.get(same, ("",))[0] == "file", "test setup: the shared file exists")
    write(d.folder, same, t[same][1])
    os.chmod(os.path.join(d.folder, same), t[same][2])
    want = apply_changes(t, d, ["late", "late-empty"])
    t0 = time.monotonic()
    d.start().wait_healthy()
    everyone = agents + [d]
    h.wait_converged(everyone, JOIN_BOUND_S, members=N + 1, what="n4 to join")
    check_enabled([d])
    t = wait_identical(everyone, JOIN_BOUND_S, "the late node's files merged (union)",
                       expect=expect_tree(want))
    h.check(not conflict_copies(t, same), f"a conflict copy of the file n4 had identically: "
                                          f"{conflict_copies(t, same)}")
    h.log(f"n4 joined with {len(own)} files of its own in {time.monotonic() - t0:.2f} s")
    return everyone, t


def large_file(agents, t, mb):
    a = agents[0]
    others = agents[1:]
    size = mb * MIB
    before = counters(agents, "fetched_bytes_total")
    rel = "large.bin"
    t0 = time.monotonic()
    with open(os.path.join(a.folder, rel), "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(MIB))
    bound = max(60.0, mb * 0.6)
    t = wait_identical(agents, bound, f"a {mb} MiB file written on A",
                       expect=expect_tree(apply_changes(t, a, [rel])))
    took = time.monotonic() - t0
    after = counters(agents, "fetched_bytes_total")
    first = {o.name: after[o.name] - before[o.name] for o in others}
    h.check(all(v >= size - MIB for v in first.values()),
            f"fetched_bytes_total grew by {first} for a new {size}-byte random file "
            f"(want at least {size - MIB})")
    reused = counters(agents, "reused_bytes_total")

    pos = size // 2 + 12345
    with open(os.path.join(a.folder, rel), "r+b") as f:
        f.seek(pos)
        old = f.read(1)
        f.seek(pos)
        f.write(bytes([old[0] ^ 0xFF]))
    t1 = time.monotonic()
    t = wait_identical(agents, bound, f"one byte changed in the {mb} MiB file",
                       expect=expect_tree(apply_changes(t, a, [rel])))
    took2 = time.monotonic() - t1
    fetched2 = {n: v - after[n] for n, v in counters(agents, "fetched_bytes_total").items()}
    reused2 = {n: v - reused[n] for n, v in counters(agents, "reused_bytes_total").items()}
    h.check(all(fetched2[o.name] < MIB for o in others),
            f"one byte changed: fetched_bytes_total grew by {fetched2} (want < {MIB})")
    h.check(all(reused2[o.name] >= size - MIB for o in others),
            f"one byte changed: reused_bytes_total grew by {reused2} (want >= {size - MIB})")
    h.log(f"{mb} MiB file everywhere in {took:.2f} s; one byte changed everywhere in "
          f"{took2:.2f} s, fetched {fetched2}, reused {reused2}")
    return t


def record_sentinel(sentinels, path):
    """Remember a file outside every folder: its bytes, mtime and inode."""
    st = os.lstat(path)
    with open(path, "rb") as f:
        sentinels[path] = (f.read(), st.st_mtime_ns, st.st_ino)


def check_ignored(agents):
    """A's ignored files (and its .synodignore) are on A only; its other files everywhere."""
    a = agents[0]
    for o in agents[1:]:
        for rel in ("x.log", "sub/y.log", IGNORE_FILE):
            h.check(not os.path.lexists(os.path.join(o.folder, rel)),
                    f"{o.name}: {rel} (ignored or per-node on A) reached it")
        for rel in ("x.txt", "sub/keep.txt"):
            h.check(os.path.isfile(os.path.join(o.folder, rel)), f"{o.name}: {rel} missing")
    for rel in ("x.log", "sub/y.log", IGNORE_FILE):
        h.check(os.path.isfile(os.path.join(a.folder, rel)), f"{a.name}: {rel} disappeared")


def ignored_and_outside(agents, sentinels):
    check_ignored(agents)
    for path, (data, mtime, ino) in sentinels.items():
        st = os.lstat(path)
        with open(path, "rb") as f:
            now = f.read()
        h.check(now == data and st.st_mtime_ns == mtime and st.st_ino == ino,
                f"{path} (outside every folder) was changed")
    for o in agents:
        extra = sorted(set(os.listdir(o.root)) - {"folder", "outside.txt"})
        h.check(not extra, f"{o.name}: {extra} appeared next to its folder")
    h.log("ignored files stayed on A; nothing outside the folders touched")


def final_status(agents, t):
    copies = len(all_conflict_copies(t))
    total_conflicts = 0
    for o in agents:
        s = sync_status(o)
        h.check(s.get("enabled") is True and s.get("in_sync") is True,
                f"{o.name}: /v1/sync at the end: {s}")
        h.check(s.get("errors") == [], f"{o.name}: sync errors: {s.get('errors')}")
        for k in SYNC_COUNTERS:
            h.check(isinstance(s.get(k), int) and not isinstance(s.get(k), bool) and s[k] >= 0,
                    f"{o.name}: /v1/sync {k} is not a non-negative integer: {s.get(k)!r}")
        h.check(s["pending_files"] == 0 and s["pending_bytes"] == 0,
                f"{o.name}: pending at the end: {s}")
        entries = len(tree(o.folder))
        h.check(entries == len(t), f"{o.name}: {entries} entries, the others {len(t)}")
        h.check(s["index_files"] in (entries, entries - copies),
                f"{o.name}: index_files {s['index_files']}, its folder has {entries} entries "
                f"({copies} of them conflict copies)")
        total_conflicts += s["conflicts_total"]
    sa, sb = sync_status(agents[0]), sync_status(agents[1])
    h.check(sa["announced_total"] > 0, f"{agents[0].name} announced nothing: {sa}")
    h.check(sb["fetched_files_total"] > 0, f"{agents[1].name} fetched nothing: {sb}")
    h.check(copies == 0 or total_conflicts > 0,
            f"{copies} conflict copies but conflicts_total is 0 on every node")
    leftovers = [(o.name, p) for o in agents for p, _, fs in os.walk(o.folder)
                 for f in fs if f.startswith(TMP_PREFIX)]
    if leftovers:
        h.log(f"note: temporary files left at the end: {leftovers[:5]}")
    h.log(f"/v1/sync at the end: in sync, no errors, index_files matches the folders "
          f"({len(t)} entries, {copies} conflict copies, conflicts_total {total_conflicts})")


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def skip_without_inotify():
    """Skips the test where the machine has no inotify; files are then created 0644."""
    if not os.path.isdir("/proc/sys/fs/inotify"):
        h.skip("no inotify on this machine")
    os.umask(0o022)


def preflight(mb):
    skip_without_inotify()
    probe = h.make_tempdir("synod-it-probe-")
    try:
        os.symlink("x", os.path.join(probe, "l"))
    except OSError as e:
        h.skip(f"cannot create symlinks in {probe}: {e}")
    need = (N + 1) * 3 * mb * MIB + 512 * MIB
    free = shutil.disk_usage(probe).free
    if free < need:
        h.skip(f"{free >> 20} MiB free in {probe}, the large-file step needs {need >> 20} MiB")


def main():
    args = h.parse_args(__doc__, extra=lambda p: p.add_argument(
        "--large-mb", type=int, default=64, help="size of the large file in MiB (default 64)"))
    h.check(args.large_mb >= 2, "--large-mb must be at least 2")
    preflight(args.large_mb)
    addrs = h.pick_addresses(N + 1)
    bport = h.free_udp_port()
    h.log(f"addresses {addrs}, broadcast port {bport}, large file {args.large_mb} MiB")

    agents = [make_agent(args.synod, f"n{i + 1}", addrs[i], bport,
                         extra=("--bootstrap-expect", str(N))) for i in range(N)]
    a = agents[0]
    with open(os.path.join(a.folder, IGNORE_FILE), "w") as f:
        f.write("*.log\n")
    write(a.folder, "x.log", b"ignored on A\n")
    write(a.folder, "sub/y.log", b"ignored on A too\n")
    write(a.folder, "x.txt", b"not ignored\n")
    write(a.folder, "sub/keep.txt", b"kept\n")
    outside = h.make_tempdir("synod-it-outside-")
    sentinels = {}
    record_sentinel(sentinels, write(outside, "sentinel.txt", b"never touch me\n"))
    for o in agents:
        record_sentinel(sentinels, write(o.root, "outside.txt", f"outside {o.name}\n".encode()))

    for o in agents:
        o.start()
    for o in agents:
        o.wait_healthy()
    views = h.wait_converged(agents, FORM_BOUND_S, members=N, voters=N)
    h.log("formed: " + h.summarize_view(views[a.name]))
    check_enabled(agents)

    t = basics(agents)
    check_ignored(agents)
    t = parallel_writes(agents, t)
    t = concurrent_writes(agents, t)
    t = offline_node(agents, t)
    agents, t = late_joiner(args.synod, agents, addrs[N], bport, t, sentinels)
    t = large_file(agents, t, args.large_mb)
    t = wait_identical(agents, PROPAGATE_BOUND_S, "the final state", expect=expect_tree(t))
    ignored_and_outside(agents, sentinels)
    final_status(agents, t)
    cli(args.synod, agents, t)


def cli(synod, agents, t):
    """synod sync status / ls / conflicts read the same state as the API."""
    node = f"{agents[1].addr}:{agents[1].api_port}"

    def run(*argv):
        p = subprocess.run([synod, "sync", *argv, "--node", node], capture_output=True,
                           text=True, timeout=30)
        h.check(p.returncode == 0, f"synod sync {' '.join(argv)} exited {p.returncode}: "
                                   f"{p.stderr.strip()}")
        return p.stdout
    status = json.loads(run("status", "--json"))
    names = sorted(n["name"] for n in status["nodes"])
    h.check(names == sorted(a.name for a in agents), f"sync status lists {names}")
    h.check(all(n.get("in_sync") for n in status["nodes"]),
            f"sync status: not every node in sync: {status}")
    listed = json.loads(run("ls", "--json"))
    h.check({f["path"] for f in listed["files"]} == set(t),
            "synod sync ls does not list exactly the folder's paths")
    copies = json.loads(run("conflicts", "--json"))
    h.check({f["path"] for f in copies["files"]} == set(all_conflict_copies(t)),
            "synod sync conflicts does not list exactly the conflict copies")
    waited = run("status", "--wait", "--timeout", "10")
    h.check("in sync" in waited, f"synod sync status --wait said: {waited!r}")
    h.log(f"CLI: status of {len(names)} nodes, {len(listed['files'])} paths, "
          f"{len(copies['files'])} conflict copies")


if __name__ == "__main__":
    h.run_main(main)
