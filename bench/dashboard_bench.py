#!/usr/bin/env python3
"""The web dashboard's cost (issue 16): first load, time to first data, the CPU of a node
serving 20 open dashboards, and (with Chromium) the page's render times.

  python3 bench/dashboard_bench.py                     # 4 nodes, about 2 minutes
  python3 bench/dashboard_bench.py --nodes 20          # bigger members table / heatmap
  python3 bench/dashboard_bench.py --nodes 50          # heavy on a 2-core machine
  python3 bench/dashboard_bench.py --no-browser --duration 10 --idle-seconds 10

A cluster of --nodes agents (--bootstrap-expect N) on 127.A.B.2.. (tests/integration/harness.py
picks the block and a random free UDP broadcast port); every agent is stopped at the end, even
on errors or Ctrl-C. The dashboards are those of the first agent (n1).

Parts:
  first_load   "/" and every /assets/ file the HTML references, with Accept-Encoding: gzip,
               bytes as sent (compressed body), then GET /v1/overview; fetched one after the
               other over one keep-alive connection, as a browser would; --reps repetitions,
               the time from starting "/" until the overview's body is in (median reported).
  browser      (only if Selenium imports under /usr/bin/python3 and chromium +
               /usr/bin/chromedriver exist) headless Chromium: time from driver.get() until
               #conn-status reads "live" and #members has N rows (polled every ~20 ms, so an
               upper bound; `page_ms` is the page's own performance.now() then), the bytes the
               browser transferred (Resource Timing), and window.synodDashboard.timings
               sampled each second for --browser-seconds (last, and max per panel).
  cpu          utime+stime of n1 (/proc/PID/stat, all threads; also per-thread schedstat,
               ns resolution) in % of one core: --idle-seconds with nothing connected, then
               --dashboards simulated dashboards for --duration s (after 2 s of warm-up), each
               one persistent SSE connection to /v1/events and GET /v1/overview once a second
               on its own keep-alive connection (the page's cadence: the next poll 1 s after
               the previous one started). Overview requests served and their latency.

Goals (issue 16): first load < 300 KB compressed; < 1 s to first data on loopback; 20 open
dashboards < 2 % of a core over idle; members table and heatmap render < 100 ms per update
with 50 nodes. JSON on stdout, progress on stderr. Python 3 standard library (+ Debian's
python3-selenium for the optional browser part).
"""

import argparse
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEBIAN_PYTHON = "/usr/bin/python3"
CHROMEDRIVER = "/usr/bin/chromedriver"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


# ---- the browser part (runs as a child under /usr/bin/python3 when needed) ---------------

BROWSER_STATE_JS = r"""
const st = document.getElementById('conn-status');
return {conn: st ? st.textContent.trim() : null,
        rows: document.querySelectorAll('#members tr').length,
        now: performance.now()};
"""

BROWSER_NET_JS = r"""
const nav = performance.getEntriesByType('navigation')[0];
const res = performance.getEntriesByType('resource');
const pick = (e) => ({name: e.name.replace(location.origin, ''), transfer: e.transferSize,
                      encoded: e.encodedBodySize, decoded: e.decodedBodySize,
                      ms: Math.round(e.duration * 10) / 10});
return {navigation: nav ? pick(nav) : null, resources: res.map(pick),
        dom_content_loaded_ms: nav ? Math.round(nav.domContentLoadedEventEnd) : null,
        load_ms: nav ? Math.round(nav.loadEventEnd) : null};
"""

TIMINGS_JS = r"""
const d = window.synodDashboard;
return d && d.timings ? JSON.parse(JSON.stringify(d.timings)) : null;
"""


def _descendants(pid):
    children = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                stat = f.read().decode("latin-1")
            ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(e))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _die_with_parent():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def browser_child(url, members, seconds, tmpdir):
    """Runs under a Python that has Selenium; prints one JSON object on stdout."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.remote.remote_connection import RemoteConnection

    out = {"url": url}
    RemoteConnection.set_timeout(30)
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1000", f"--user-data-dir={os.path.join(tmpdir, 'profile')}",
              "--no-first-run", "--no-default-browser-check", "--disable-extensions",
              "--disable-background-networking", "--disable-sync", "--mute-audio",
              "--password-store=basic"):
        opts.add_argument(a)
    service = Service(CHROMEDRIVER, log_path=os.path.join(tmpdir, "chromedriver.log"),
                      popen_kw={"preexec_fn": _die_with_parent})
    driver = None
    try:
        t0 = time.monotonic()
        driver = webdriver.Chrome(service=service, options=opts)
        caps = driver.capabilities
        out["browser"] = f"{caps.get('browserName')} {caps.get('browserVersion')}"
        out["browser_start_s"] = round(time.monotonic() - t0, 2)
        driver.set_page_load_timeout(20)
        driver.set_script_timeout(10)
        # Warm the browser (first navigation of a fresh profile is slower) on about:blank.
        driver.get("about:blank")
        t0 = time.monotonic()
        driver.get(url)  # returns after the load event
        out["driver_get_returned_ms"] = round((time.monotonic() - t0) * 1000, 1)
        state = None
        deadline = t0 + 30
        while time.monotonic() < deadline:
            state = driver.execute_script(BROWSER_STATE_JS)
            if state["conn"] == "live" and state["rows"] == members:
                break
            time.sleep(0.02)
        done = time.monotonic()
        ok = bool(state) and state["conn"] == "live" and state["rows"] == members
        out["live_with_all_members"] = ok
        out["time_to_live_ms"] = round((done - t0) * 1000, 1) if ok else None
        out["time_to_live_page_ms"] = round(state["now"], 1) if ok else None
        out["last_state"] = state
        samples = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(1.0)
            t = driver.execute_script(TIMINGS_JS)
            if t:
                samples.append(t)
        out["timings_after_s"] = seconds
        out["timings"] = ({k: round(v, 2) for k, v in samples[-1].items()}
                          if samples else None)
        keys = sorted({k for s in samples for k in s})
        out["timings_max_ms"] = {k: round(max(s.get(k, 0) for s in samples), 2) for k in keys}
        out["timings_samples"] = len(samples)
        net = driver.execute_script(BROWSER_NET_JS)
        first = [net["navigation"]] if net["navigation"] else []
        first += [r for r in net["resources"] if r["name"].startswith("/assets/")]
        net["first_load_transfer_bytes"] = sum(r["transfer"] or 0 for r in first)
        net["resources"] = [r for r in net["resources"]
                            if not r["name"].startswith("/v1/overview")] + \
            [r for r in net["resources"] if r["name"].startswith("/v1/overview")][:1]
        out["network"] = net
    except Exception as e:  # noqa: BLE001 (reported in the JSON)
        out["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
    finally:
        pid = getattr(getattr(service, "process", None), "pid", None)
        left = _descendants(pid) if pid else []
        try:
            if driver is not None:
                driver.quit()
            else:
                service.stop()
        except Exception:  # noqa: BLE001
            pass
        for p in set(left + (_descendants(pid) if pid else []) + ([pid] if pid else [])):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    print(json.dumps(out), flush=True)


def browser_available():
    if shutil.which("chromium") is None:
        return None, "chromium is not installed"
    if not os.access(CHROMEDRIVER, os.X_OK):
        return None, f"{CHROMEDRIVER} is missing"
    for py in (sys.executable, DEBIAN_PYTHON):
        if py and os.access(py, os.X_OK):
            r = subprocess.run([py, "-c", "import selenium"], capture_output=True, timeout=30)
            if r.returncode == 0:
                return py, None
    return None, "Selenium does not import (python3-selenium)"


def run_browser(py, url, members, seconds, tmpdir):
    cmd = [py, os.path.abspath(__file__), "--browser-child", url, "--members", str(members),
           "--browser-seconds", str(seconds), "--browser-tmp", tmpdir]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=90 + seconds,
                           stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired:
        return {"error": "the browser child timed out"}
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"browser child exited {r.returncode}", "stderr": r.stderr[-1500:]}


# ---- first load over http.client ------------------------------------------------------------

ASSET_RE = re.compile(r'(?:href|src)="(/assets/[^"]+)"')


def fetch(conn, path, headers):
    t = time.monotonic()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    return r, body, (time.monotonic() - t) * 1000


def first_load_once(ip, port):
    hdr = {"Accept-Encoding": "gzip, deflate", "Accept": "*/*", "Connection": "keep-alive"}
    conn = http.client.HTTPConnection(ip, port, timeout=5)
    files = []
    try:
        t0 = time.monotonic()
        r, body, ms = fetch(conn, "/", dict(hdr, Accept="text/html"))
        html = gzip.decompress(body) if r.getheader("Content-Encoding") == "gzip" else body
        assets = ASSET_RE.findall(html.decode("utf-8", "replace"))
        files.append(("/", r, body, html, ms))
        for a in assets:
            r2, b2, ms2 = fetch(conn, a, hdr)
            plain = gzip.decompress(b2) if r2.getheader("Content-Encoding") == "gzip" else b2
            files.append((a, r2, b2, plain, ms2))
        r3, b3, ms3 = fetch(conn, "/v1/overview", dict(hdr, Accept="application/json"))
        total_ms = (time.monotonic() - t0) * 1000
        plain3 = gzip.decompress(b3) if r3.getheader("Content-Encoding") == "gzip" else b3
        json.loads(plain3)
        ov = ("/v1/overview", r3, b3, plain3, ms3)
    finally:
        conn.close()

    def rec(f):
        path, r, body, plain, ms = f
        return {"path": path, "status": r.status,
                "content_encoding": r.getheader("Content-Encoding"),
                "content_length": int(r.getheader("Content-Length") or -1),
                "bytes": len(body), "uncompressed_bytes": len(plain),
                "cache_control": r.getheader("Cache-Control"), "ms": round(ms, 2)}
    return [rec(f) for f in files], rec(ov), total_ms


def measure_first_load(ip, port, reps):
    runs = []
    for i in range(reps):
        files, ov, total_ms = first_load_once(ip, port)
        runs.append((files, ov, total_ms))
        log(f"first load #{i + 1}: {sum(f['bytes'] for f in files)} B page, "
            f"{total_ms:.1f} ms to first data")
    files, ov, _ = runs[-1]
    times = [r[2] for r in runs]
    page = sum(f["bytes"] for f in files)
    return {
        "files": files,
        "page_bytes_compressed": page,
        "page_bytes_uncompressed": sum(f["uncompressed_bytes"] for f in files),
        "overview": ov,
        "page_plus_overview_bytes": page + ov["bytes"],
        "all_gzip": all(f["content_encoding"] == "gzip" for f in files),
        "time_to_first_data_ms": {"median": round(statistics.median(times), 2),
                                  "min": round(min(times), 2), "max": round(max(times), 2),
                                  "each": [round(t, 2) for t in times]},
        "goal_bytes_under_300kb_met": page < 300 * 1024,
        "goal_first_data_under_1s_met": statistics.median(times) < 1000,
    }


# ---- simulated dashboards -----------------------------------------------------------------

class Dashboard:
    """One open page: an SSE stream on /v1/events and GET /v1/overview once a second."""

    def __init__(self, ip, port, stop):
        self.ip, self.port, self.stop = ip, port, stop
        self.latencies = []   # (monotonic at send, ms)
        self.errors = []
        self.overview_bytes = 0
        self.connects = 0
        self.sse_bytes = 0
        self.sse_events = 0
        self.sse_connects = 0
        self.sse_status = None
        self.threads = [threading.Thread(target=self.sse, daemon=True),
                        threading.Thread(target=self.poll, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def sse(self):
        while not self.stop.is_set():
            try:
                s = socket.create_connection((self.ip, self.port), timeout=5)
            except OSError as e:
                self.errors.append(f"sse connect: {e}")
                self.stop.wait(3)
                continue
            self.sse_connects += 1
            try:
                s.sendall((f"GET /v1/events HTTP/1.1\r\nHost: {self.ip}:{self.port}\r\n"
                           "Accept: text/event-stream\r\nCache-Control: no-cache\r\n"
                           "Connection: keep-alive\r\n\r\n").encode())
                s.settimeout(0.5)
                buf = b""
                head = True
                while not self.stop.is_set():
                    try:
                        data = s.recv(65536)
                    except socket.timeout:
                        continue
                    if not data:
                        self.errors.append("sse closed by the server")
                        break
                    self.sse_bytes += len(data)
                    buf += data
                    if head and b"\r\n\r\n" in buf:
                        line = buf.split(b"\r\n", 1)[0].decode("latin-1")
                        self.sse_status = line
                        if " 200" not in line:
                            self.errors.append(f"sse: {line}")
                            break
                        buf = buf.split(b"\r\n\r\n", 1)[1]
                        head = False
                    if not head:
                        # chunked framing may sit between; count blank-line-ended events
                        self.sse_events += buf.count(b"\n\n")
                        buf = buf[buf.rfind(b"\n\n") + 2:] if b"\n\n" in buf else buf[-4096:]
            except OSError as e:
                self.errors.append(f"sse: {e}")
            finally:
                s.close()
            self.stop.wait(3)

    def poll(self):
        conn = http.client.HTTPConnection(self.ip, self.port, timeout=4)
        hdr = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                if conn.sock is None:
                    self.connects += 1
                conn.request("GET", "/v1/overview", headers=hdr)
                r = conn.getresponse()
                body = r.read()
                ms = (time.monotonic() - started) * 1000
                if r.status == 200:
                    self.latencies.append((started, ms))
                    self.overview_bytes += len(body)
                else:
                    self.errors.append(f"overview HTTP {r.status}")
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(f"overview: {type(e).__name__}: {e}")
                conn.close()
            self.stop.wait(max(0.05, 1.0 - (time.monotonic() - started)))
        conn.close()


def proc_cpu(pid):
    """(ticks, schedstat ns) of the whole process."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])
    ns = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    ns += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    return ticks, ns


def machine_busy_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / CLK_TCK


def cpu_window(agents, seconds):
    """CPU % of one core of each agent over `seconds`, plus the machine's and our own."""
    before = {a.name: proc_cpu(a.proc.pid) for a in agents}
    m0, s0, t0 = machine_busy_s(), os.times(), time.monotonic()
    time.sleep(seconds)
    dt = time.monotonic() - t0
    after = {a.name: proc_cpu(a.proc.pid) for a in agents}
    m1, s1 = machine_busy_s(), os.times()
    per = {}
    for a in agents:
        (t_a, n_a), (t_b, n_b) = before[a.name], after[a.name]
        per[a.name] = {"cpu_pct": round((t_b - t_a) / CLK_TCK / dt * 100, 3),
                       "cpu_pct_schedstat": round((n_b - n_a) / 1e9 / dt * 100, 3)}
    own = (s1.user + s1.system) - (s0.user + s0.system)
    return {"seconds": round(dt, 2), "agents": per,
            "machine_cpu_pct_of_all_cores": round((m1 - m0) / dt / os.cpu_count() * 100, 1),
            "bench_client_cpu_pct_of_one_core": round(own / dt * 100, 1)}


def measure_cpu(agents, dashboards, idle_s, duration_s):
    target = agents[0]
    others = agents[1:]
    log(f"cpu: {idle_s:g} s idle ...")
    idle = cpu_window(agents, idle_s)
    stop = threading.Event()
    log(f"cpu: {dashboards} dashboards, 2 s warm-up + {duration_s:g} s ...")
    boards = [Dashboard(target.addr, target.api_port, stop).start() for _ in range(dashboards)]
    try:
        time.sleep(2.0)
        w0 = time.monotonic()
        loaded = cpu_window(agents, duration_s)
        w1 = time.monotonic()
    finally:
        stop.set()
        for b in boards:
            for t in b.threads:
                t.join(timeout=6)
    lat = sorted(ms for b in boards for (t, ms) in b.latencies if w0 <= t < w1)
    all_lat = [ms for b in boards for (_, ms) in b.latencies]
    errors = [e for b in boards for e in b.errors]
    distinct = sorted(set(re.sub(r"\d+", "#", e) for e in errors))
    i, l = idle["agents"][target.name], loaded["agents"][target.name]

    def others_mean(w, key):
        v = [w["agents"][a.name][key] for a in others]
        return round(sum(v) / len(v), 3) if v else None

    diff = round(l["cpu_pct"] - i["cpu_pct"], 3)
    return {
        "agent": f"{target.name} {target.addr}:{target.api_port} pid {target.proc.pid}",
        "dashboards": dashboards,
        "idle_cpu_pct": i["cpu_pct"], "loaded_cpu_pct": l["cpu_pct"], "difference_pct": diff,
        "idle_cpu_pct_schedstat": i["cpu_pct_schedstat"],
        "loaded_cpu_pct_schedstat": l["cpu_pct_schedstat"],
        "difference_pct_schedstat": round(l["cpu_pct_schedstat"] - i["cpu_pct_schedstat"], 3),
        "other_agents_mean_cpu_pct": {"idle": others_mean(idle, "cpu_pct_schedstat"),
                                      "loaded": others_mean(loaded, "cpu_pct_schedstat")},
        "overview_requests_in_window": len(lat),
        "overview_requests_total": len(all_lat),
        "overview_per_s": round(len(lat) / loaded["seconds"], 2),
        "overview_latency_ms": {"p50": round(pct(lat, 50), 2) if lat else None,
                                "p99": round(pct(lat, 99), 2) if lat else None,
                                "max": round(lat[-1], 2) if lat else None},
        "overview_mean_bytes": (round(sum(b.overview_bytes for b in boards) / len(all_lat))
                                if all_lat else None),
        "overview_connections_opened": sum(b.connects for b in boards),
        "sse_connections_opened": sum(b.sse_connects for b in boards),
        "sse_status": sorted({b.sse_status for b in boards if b.sse_status}),
        "sse_events_received": sum(b.sse_events for b in boards),
        "sse_bytes_received": sum(b.sse_bytes for b in boards),
        "client_errors": {"count": len(errors), "distinct": distinct[:8]},
        "idle_window": {k: v for k, v in idle.items() if k != "agents"},
        "loaded_window": {k: v for k, v in loaded.items() if k != "agents"},
        "goal_under_2pct_met": diff < 2.0,
    }


# ---- main -----------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synod", default=os.path.join(ROOT, "build", "synod"))
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--duration", type=float, default=30.0,
                   help="seconds of the loaded CPU window (default 30)")
    p.add_argument("--idle-seconds", type=float, default=20.0)
    p.add_argument("--dashboards", type=int, default=20)
    p.add_argument("--reps", type=int, default=5, help="first-load repetitions")
    p.add_argument("--beacon-interval", default="200ms")
    p.add_argument("--converge-timeout", type=float, default=None,
                   help="default 30 s + 2 s per node")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--browser-seconds", type=float, default=10.0)
    p.add_argument("--browser-child", help=argparse.SUPPRESS)
    p.add_argument("--members", type=int, help=argparse.SUPPRESS)
    p.add_argument("--browser-tmp", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.browser_child:
        browser_child(args.browser_child, args.members, args.browser_seconds, args.browser_tmp)
        return 0

    if not (1 <= args.nodes <= 60 and 1 <= args.dashboards <= 100 and 1 <= args.reps <= 50
            and 1 <= args.duration <= 600 and 1 <= args.idle_seconds <= 600
            and 0 <= args.browser_seconds <= 120):
        p.error("out of bounds: nodes 1-60, dashboards 1-100, reps 1-50, duration and "
                "idle-seconds 1-600, browser-seconds 0-120")
    synod = os.path.abspath(args.synod)
    if not os.access(synod, os.X_OK):
        p.error(f"{synod} is not executable")

    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness as h  # noqa: E402 (installs its cleanup: every agent is stopped at exit)

    result = {"bench": "dashboard", "nodes": args.nodes, "machine_cores": os.cpu_count(),
              "synod": synod, "beacon_interval": args.beacon_interval}
    t_start = time.monotonic()
    agents = []
    try:
        n = args.nodes
        addrs = h.pick_addresses(n)
        bport = h.free_udp_port()
        log(f"starting {n} agents on {addrs[0]}..{addrs[-1]}, broadcast port {bport}")
        agents = h.start_cluster_agents(synod, addrs, bport,
                                        extra_args=["--bootstrap-expect", str(n)],
                                        beacon_interval=args.beacon_interval)
        t0 = time.monotonic()
        timeout = args.converge_timeout or 30.0 + 2.0 * n
        h.wait_for(lambda: h.converged(agents, members=n), timeout, interval=0.5,
                   what=f"{n} agents converged")
        result["converged_s"] = round(time.monotonic() - t0, 1)
        log(f"converged in {result['converged_s']} s")
        a = agents[0]
        url = f"http://{a.addr}:{a.api_port}/"
        result["url"] = url
        time.sleep(2.0)  # let the first heartbeats / clock reports land

        result["first_load"] = measure_first_load(a.addr, a.api_port, args.reps)

        if args.no_browser:
            result["browser"] = {"skipped": "--no-browser"}
        else:
            py, why = browser_available()
            if py is None:
                result["browser"] = {"skipped": why}
                log(f"browser part skipped: {why}")
            else:
                log(f"browser: headless Chromium via {py}, {args.browser_seconds:g} s ...")
                tmp = h.make_tempdir("synod-dash-browser-")
                b = run_browser(py, url, n, args.browser_seconds, tmp)
                t = b.get("timings_max_ms") or {}
                worst = max(t.get("members", 0), t.get("heatmap", 0)) if t else None
                b["goal_members_heatmap_under_100ms_met"] = (worst is not None and worst < 100)
                result["browser"] = b
                log(f"browser: live after {b.get('time_to_live_ms')} ms; timings {b.get('timings')}"
                    + (f"; error {b['error']}" if b.get("error") else ""))

        result["cpu_20_dashboards"] = measure_cpu(agents, args.dashboards, args.idle_seconds,
                                                  args.duration)
        c = result["cpu_20_dashboards"]
        log(f"cpu: idle {c['idle_cpu_pct']} %, loaded {c['loaded_cpu_pct']} %, "
            f"+{c['difference_pct']} %; {c['overview_requests_in_window']} overviews, "
            f"p50 {c['overview_latency_ms']['p50']} ms p99 {c['overview_latency_ms']['p99']} ms")
        dead = [x.name for x in agents if not x.alive()]
        if dead:
            result["agents_died"] = dead
    except BaseException as e:  # noqa: BLE001 (the JSON gathered so far is still printed)
        result["error"] = f"{type(e).__name__}: {str(e)[:1500]}"
        log(f"error: {result['error']}")
    finally:
        exits = {}
        for x in agents:
            if x.proc is not None and x.proc.poll() is None:
                x.proc.terminate()
        for x in agents:
            try:
                rc = x.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                x.proc.kill()
                rc = x.proc.wait(timeout=5)
            if rc != 0:
                exits[x.name] = rc
        if exits:
            result["agent_exits_abnormal"] = exits
        result["run_s"] = round(time.monotonic() - t_start, 1)
        fl = result.get("first_load") or {}
        cpu = result.get("cpu_20_dashboards") or {}
        br = result.get("browser") or {}
        result["goals"] = {
            "first_load_under_300kb": fl.get("goal_bytes_under_300kb_met"),
            "first_data_under_1s": fl.get("goal_first_data_under_1s_met"),
            "browser_first_data_under_1s": (br["time_to_live_ms"] < 1000
                                            if br.get("time_to_live_ms") is not None else None),
            "dashboards_20_under_2pct_core": cpu.get("goal_under_2pct_met"),
            "members_heatmap_render_under_100ms": br.get("goal_members_heatmap_under_100ms_met"),
        }
        print(json.dumps(result, indent=2), flush=True)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
