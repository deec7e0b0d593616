"""Helpers shared by the benchmarks in this folder (run by hand, never by tests)."""
import contextlib
import os
import platform
import signal
import shutil
import socket
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def tail(path, lines=5):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        return []


class Interrupted(Exception):
    pass


def _on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


@contextlib.contextmanager
def signals_ignored():
    """SIGINT and SIGTERM are ignored inside the block (a second Ctrl-C must not cut a cleanup
    short); the previous handlers are restored after it."""
    saved = [(sig, signal.signal(sig, signal.SIG_IGN)) for sig in (signal.SIGINT,
                                                                   signal.SIGTERM)]
    try:
        yield
    finally:
        for sig, handler in saved:
            signal.signal(sig, handler)


def summarize(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    s = sorted(values)
    n = len(s)
    return {
        "n": n,
        "min": round(s[0], 4),
        "mean": round(sum(s) / n, 4),
        "median": round(s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2, 4),
        "max": round(s[-1], 4),
    }


def machine_info():
    info = {"cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    with contextlib.suppress(OSError):
        info["loadavg_at_start"] = loadavg()
    return info


def loadavg():
    """The machine's 1, 5 and 15 minute load averages."""
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def binary_identity(path):
    import hashlib
    try:
        st = os.stat(path)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return {"mtime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(st.st_mtime)),
                "sha256_12": h.hexdigest()[:12]}
    except OSError as e:
        return {"error": str(e)}


def note_binary_change(result, path, before):
    """Records in result["binary_changed_during_run"] (and warns) if the binary at `path` no
    longer matches `before`, its binary_identity() from the start of the run."""
    after = binary_identity(path)
    if after != before:
        result["binary_changed_during_run"] = after
        log("warning: the binary changed during the run (rebuilt?)")


def record_failure(result, error):
    """Records in `result` what stopped a run: an interruption (a signal) or an unexpected error,
    so that the JSON gathered so far is still printed."""
    if isinstance(error, Interrupted):
        result["interrupted"] = str(error)
    else:
        result["error"] = f"{type(error).__name__}: {error}"
        log(f"error: {result['error']}")


def keep_or_remove(result, workdir, keep, what="logs"):
    """Removes the run's work dir, or with --keep leaves it and says where it is."""
    if keep:
        result["workdir"] = workdir
        log(f"{what} kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def ordered(result, first):
    """`result` with the keys of `first` first, in that order, then the rest as they came."""
    out = {k: result[k] for k in first if k in result}
    out.update({k: v for k, v in result.items() if k not in out})
    return out


def read_cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()  # fields from #3 (state) on
    return int(fields[11]) + int(fields[12])       # #14 utime, #15 stime


def self_cpu_s(children=False):
    """CPU seconds (user + system) of this process; with children=True also those of the
    children it has waited for."""
    t = os.times()
    if children:
        return t.user + t.system + t.children_user + t.children_system
    return t.user + t.system


def machine_busy_s():
    """CPU seconds spent by everything on the machine (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is counted in user already)
    busy = vals[0] + vals[1] + vals[2] + vals[5] + vals[6] + (vals[7] if len(vals) > 7 else 0)
    return busy / CLK_TCK


def close_selector(sel, socks):
    """Unregisters every socket of `socks` from `sel` and closes it (errors ignored: some may
    be closed already), then closes `sel`."""
    for s in socks:
        with contextlib.suppress(OSError, KeyError, ValueError):
            sel.unregister(s)
        with contextlib.suppress(OSError):
            s.close()
    sel.close()


def free_udp_port(ip="0.0.0.0"):
    """A UDP port free on `ip` (0.0.0.0: where the agents' beacon receivers bind), never SDSS's
    default 35498 nor NTP's 123."""
    for _ in range(20):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((ip, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in (35498, 123):
            return port
    raise RuntimeError("no free UDP port found")


def can_bind(ip, port, sock_type=socket.SOCK_STREAM, reuse=False):
    """Whether a socket of `sock_type` could bind ip:port now (with SO_REUSEADDR if `reuse`)."""
    s = socket.socket(socket.AF_INET, sock_type)
    try:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def tcp_port_free(ip, port):
    """Whether a listener could bind ip:port now (TIME_WAIT leftovers of a previous run do not
    count, listeners do)."""
    return can_bind(ip, port, socket.SOCK_STREAM, reuse=True)
