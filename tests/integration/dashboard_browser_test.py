#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium driven by chromedriver (Selenium).

Asserts:
  * 4 agents with --bootstrap-expect 4 converge on one cluster within 30 s;
  * the dashboard of agent #1 (http://<ip>:<api port>/) within 15 s shows #conn-status
    "live"; #members has exactly the 4 member ids of GET /v1/cluster, each with
    data-state "alive"; #leader-name is the leader's name from /v1/cluster; #master-name
    is one of the members' names; #heatmap names every member;
  * a command sent from the form (#command-from set to the member at rank 0 of
    GET /v1/ranks?stale, a unique text in #command-text, a click on #command-send):
    within 20 s #command-result says "delivered" for each of the 3 other members'
    addresses (ip:api_port); within 10 s a #commands row holds the text and
    #events has an li[data-event-type="command.sent"]; GET /v1/commands?since=0 of a
    recipient other than agent #1 holds the text exactly once;
  * kill -9 of a member that is neither agent #1 nor the leader: without a reload, its
    #members row gets data-state "dead" within 30 s (whether "suspect" was seen on the
    way, polled every 0.2 s, is logged, not required), and within 10 s more #events has
    an li[data-event-type="member.dead"];
  * the form submitted with an empty text: within 5 s #command-result shows the API's
    error, "HTTP 4xx: ...";
  * the browser console holds no SEVERE entries apart from network errors about the
    killed node and the deliberate 4xx of the empty command (checked only where
    chromedriver supports reading the log).
A screenshot is saved in $SYNOD_TEST_ARTIFACTS (default: ./synod-artifacts, or
/tmp/synod-artifacts where the working directory is not writable), also on failure (then
with the page's HTML next to it).

Skipped (exit 77), never passed, where Selenium, chromium or chromedriver is missing or
the browser does not start. Selenium is Debian's python3-selenium: when the python3 that
runs this test cannot import it, the test re-runs itself under /usr/bin/python3.
"""

import os
import random
import shutil
import signal
import sys
import tempfile
import time

import harness as h

_HAVE_SELENIUM = h.import_or_reexec("selenium")

N = 4
FORM_BOUND_S = 30.0
PAGE_BOUND_S = 15.0
DELIVERED_BOUND_S = 20.0
COMMAND_ROW_BOUND_S = 10.0
DEAD_BOUND_S = 30.0
DEAD_EVENT_BOUND_S = 10.0
BAD_INPUT_BOUND_S = 5.0
POLL_S = 0.2
PAGE_LOAD_TIMEOUT_S = 20.0
DRIVER_COMMAND_TIMEOUT_S = 30.0
WINDOW = (1280, 1000)
CHROMEDRIVER = "/usr/bin/chromedriver"


# ---- the browser -------------------------------------------------------------------------

def _descendants(pid):
    """Every live process below `pid` (from /proc), children first in the list."""
    children = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for e in entries:
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
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


class Browser:
    """chromedriver + headless Chromium; quit() always leaves no process behind."""

    def __init__(self, tmpdir):
        self.driver = None
        self.service = None
        self.driver_pid = None
        self.tmpdir = tmpdir
        self.log_supported = True

    def quit_on_signals(self):
        """A test killed by a signal quits the browser too (harness cleanup then exits)."""
        def on_signal(signum, frame):
            self.kill_leftovers()
            h._on_signal(signum, frame)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                signal.signal(s, on_signal)
            except (ValueError, OSError):
                pass

    def start(self):
        if not _HAVE_SELENIUM:
            h.skip(f"Selenium is not importable (python3-selenium, tried {sys.executable}"
                   f"{' and ' + h.DEBIAN_PYTHON if h.reexec_tried() else ''})")
        chromium = shutil.which("chromium")
        if chromium is None:
            h.skip("chromium is not installed (Debian package chromium)")
        if not (os.path.isfile(CHROMEDRIVER) and os.access(CHROMEDRIVER, os.X_OK)):
            h.skip(f"{CHROMEDRIVER} is missing (Debian package chromium-driver)")
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.remote.remote_connection import RemoteConnection

        RemoteConnection.set_timeout(DRIVER_COMMAND_TIMEOUT_S)  # bounds every driver call
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  f"--window-size={WINDOW[0]},{WINDOW[1]}",
                  f"--user-data-dir={os.path.join(self.tmpdir, 'profile')}",
                  "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                  "--disable-background-networking", "--disable-sync", "--mute-audio",
                  "--password-store=basic"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        log_path = os.path.join(self.tmpdir, "chromedriver.log")
        try:
            self.service = Service(CHROMEDRIVER, log_path=log_path,
                                   popen_kw={"preexec_fn": h._die_with_parent})
            t0 = time.monotonic()
            self.driver = webdriver.Chrome(service=self.service, options=opts)
        except WebDriverException as e:
            self._note_pid()
            self.quit()
            why = (getattr(e, "msg", None) or str(e)).strip().splitlines()
            h.skip(f"Chromium could not start through chromedriver: "
                   f"{why[0][:300] if why else type(e).__name__} (log: {log_path})")
        except OSError as e:
            self._note_pid()
            self.quit()
            h.skip(f"chromedriver could not start: {e}")
        self._note_pid()
        self.driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
        self.driver.set_script_timeout(10)
        caps = self.driver.capabilities
        h.log(f"browser {caps.get('browserName')} {caps.get('browserVersion')} started in "
              f"{time.monotonic() - t0:.1f} s (chromedriver pid {self.driver_pid})")
        return self

    def _note_pid(self):
        p = getattr(self.service, "process", None)
        if p is not None and self.driver_pid is None:
            self.driver_pid = p.pid

    def quit(self):
        """driver.quit(), then SIGKILL whatever chromedriver left below it."""
        left = _descendants(self.driver_pid) if self.driver_pid else []
        if self.driver is not None:
            try:
                self.driver.quit()
            except Exception as e:  # noqa: BLE001 (the processes are killed below anyway)
                h.log(f"driver.quit() failed: {type(e).__name__}: {e}")
            self.driver = None
        elif self.service is not None:
            try:
                self.service.stop()
            except Exception:  # noqa: BLE001
                pass
        self.kill_leftovers(left)

    def kill_leftovers(self, known=()):
        pids = set(known)
        if self.driver_pid:
            pids |= set(_descendants(self.driver_pid))
            pids.add(self.driver_pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.service is not None and getattr(self.service, "process", None) is not None:
            try:
                self.service.process.wait(timeout=2.0)
            except Exception:  # noqa: BLE001
                pass
        self.driver_pid = None

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)


# One call into the page per poll: everything the test looks at, as plain data.
SNAPSHOT_JS = r"""
const q = (s) => document.querySelector(s);
const txt = (s) => { const e = q(s); return e ? e.textContent.trim() : null; };
const members = [...document.querySelectorAll('#members tr[data-member-id]')].map((tr) => ({
  id: tr.getAttribute('data-member-id'), state: tr.getAttribute('data-state'),
  role: tr.getAttribute('data-role'), text: tr.textContent }));
const commands = [...document.querySelectorAll('#commands tr[data-command-id]')].map((tr) => ({
  id: tr.getAttribute('data-command-id'), settled: tr.getAttribute('data-settled'),
  text: tr.textContent }));
const events = [...document.querySelectorAll('#events li[data-event-type]')].map((li) => ({
  type: li.getAttribute('data-event-type'), text: li.textContent }));
const from = q('#command-from');
return {
  conn: txt('#conn-status'), leader: txt('#leader-name'), master: txt('#master-name'),
  members, commands, events,
  heatmap: q('#heatmap') ? q('#heatmap').textContent : null,
  result: txt('#command-result'),
  result_html: q('#command-result') ? q('#command-result').innerHTML : null,
  from_options: from ? [...from.options].map((o) => o.value) : null,
  from_value: from ? from.value : null,
  render_ms: txt('#render-ms'),
  has_timings: !!(window.synodDashboard && window.synodDashboard.timings),
  hooks: ['members', 'leader-name', 'master-name', 'conn-status', 'command-form', 'command-text',
          'command-from', 'command-send', 'command-result', 'commands', 'events', 'heatmap',
          'render-ms'].filter((id) => !document.getElementById(id)),
};
"""


def snapshot(browser):
    s = browser.js(SNAPSHOT_JS)
    h.check(isinstance(s, dict), f"page snapshot is not an object: {s!r}")
    return s


def wait_page(browser, cond, timeout, what, interval=POLL_S, on_poll=None):
    """wait_for(cond(snapshot)) on the page; the failure shows the last snapshot."""
    from selenium.common.exceptions import WebDriverException
    last = {}

    def poll():
        try:
            s = snapshot(browser)
        except WebDriverException as e:
            h.fail(f"browser call failed: {str(e).strip()[:300]}")
        last["s"] = s
        if on_poll is not None:
            on_poll(s)
        return cond(s)
    try:
        return h.wait_for(poll, timeout, interval=interval, what=what)
    except h.TestFailure as e:
        s = last.get("s")
        brief = None
        if isinstance(s, dict):
            brief = {k: s.get(k) for k in ("conn", "leader", "master", "result", "from_value",
                                            "from_options", "hooks")}
            brief["members"] = [(m["id"][:8], m["state"], m["role"]) for m in s["members"]]
            brief["commands"] = [c["text"][:80] for c in s["commands"][:5]]
            brief["events"] = [ev["type"] for ev in s["events"][:15]]
        h.fail(f"{e}\nlast page state: {brief}")


def artifacts_dir():
    d = os.environ.get("SYNOD_TEST_ARTIFACTS")
    if not d:
        base = os.getcwd()
        if not os.access(base, os.W_OK):
            base = tempfile.gettempdir()
        d = os.path.join(base, "synod-artifacts")
    os.makedirs(d, exist_ok=True)
    return os.path.abspath(d)


def save_screenshot(browser, tag):
    """Save a screenshot (and, for failures, the page's HTML); returns the path or None."""
    if browser is None or browser.driver is None:
        return None
    try:
        d = artifacts_dir()
        stem = os.path.join(d, f"dashboard-{tag}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        path = stem + ".png"
        browser.driver.execute_script("window.scrollTo(0, 0);")  # the header and members
        if not browser.driver.save_screenshot(path):
            h.log(f"screenshot could not be saved to {path}")
            return None
        h.log(f"screenshot saved: {path}")
        if tag != "pass":
            with open(stem + ".html", "w", encoding="utf-8") as f:
                f.write(browser.driver.page_source)
            h.log(f"page HTML saved: {stem}.html")
        return path
    except Exception as e:  # noqa: BLE001 (an artifact must not hide the real result)
        h.log(f"screenshot failed: {type(e).__name__}: {e}")
        return None


def browser_log(browser):
    """The browser console entries, or None where chromedriver cannot give them."""
    try:
        return browser.driver.get_log("browser")
    except Exception as e:  # noqa: BLE001
        h.log(f"browser console log not available ({type(e).__name__}: "
              f"{str(e).strip()[:200]}); console check skipped")
        return None


# ---- the test ----------------------------------------------------------------------------

def main():
    args = h.parse_args(__doc__)
    tmp = h.make_tempdir("synod-it-browser-")
    browser = Browser(tmp)
    browser.quit_on_signals()

    browser.start()   # skips (77) if it cannot
    console = []      # every console entry read, for the final check
    passed = False
    try:
        run(args, browser, console)
        passed = True
    finally:
        save_screenshot(browser, "pass" if passed else "failure")
        if not passed:
            entries = browser_log(browser) if browser.driver is not None else None
            for e in (console + (entries or []))[-30:]:
                h.log(f"console: {e.get('level')} {e.get('source')} {e.get('message')}"[:400])
        browser.quit()


def run(args, browser, console):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    addrs = h.pick_addresses(N)
    bport = h.free_udp_port()
    h.log(f"addresses {addrs[0]}..{addrs[-1]}, broadcast port {bport}")
    agents = h.start_cluster_agents(args.synod, addrs, bport, ["--bootstrap-expect", str(N)])
    t0 = time.monotonic()
    views = h.wait_converged(agents, FORM_BOUND_S, members=N)
    h.log(f"{N} agents converged after {time.monotonic() - t0:.1f} s")
    page_agent = agents[0]
    view = views[page_agent.name]
    by_id = {a.id: a for a in agents}
    members = {m["id"]: m for m in view["members"]}
    h.check(set(members) == set(by_id), f"/v1/cluster members {sorted(members)} are not the "
                                        f"{N} agents {sorted(by_id)}")
    names = {m["name"] for m in members.values()}
    leader_id = view["leader"]["id"]
    leader_name = view["leader"]["name"]

    # 2. The page.
    url = f"http://{page_agent.addr}:{page_agent.api_port}/"
    t0 = time.monotonic()
    browser.driver.get(url)
    h.log(f"opened {url} ({browser.driver.title!r}) in {time.monotonic() - t0:.1f} s")
    missing = snapshot(browser)["hooks"]
    h.check(not missing, f"dashboard hooks missing from the page: {missing}")

    def page_ready(s):
        ids = {m["id"] for m in s["members"]}
        return (s["conn"] == "live" and ids == set(by_id) and len(s["members"]) == N
                and all(m["state"] == "alive" for m in s["members"])
                and s["leader"] == leader_name and s["master"] in names
                and all(n in (s["heatmap"] or "") for n in names)) and s
    s = wait_page(browser, page_ready, PAGE_BOUND_S,
                  f"the dashboard to show {N} alive members, leader {leader_name}, a master "
                  f"and the heatmap, and conn-status 'live'")
    h.log(f"dashboard live after {time.monotonic() - t0:.1f} s: members "
          f"{sorted((members[m['id']]['name'], m['role']) for m in s['members'])}, leader "
          f"{s['leader']}, master {s['master']}, render {s['render_ms']} ms, timings "
          f"object: {s['has_timings']}")

    # 3. A command from the form.
    def four_ranks():
        doc = page_agent.get("/v1/ranks?stale")
        rs = doc.get("ranks") or []
        return (len(rs) == N and {r.get("id") for r in rs} == set(by_id)) and rs
    ranks = sorted(h.wait_for(four_ranks, FORM_BOUND_S, interval=0.2,
                              what=f"{N} ranks in /v1/ranks?stale"), key=lambda r: r["rank"])
    sender = by_id[ranks[0]["id"]]
    sender_addr = ranks[0]["address"]
    h.check(sender_addr == f"{sender.addr}:{sender.api_port}",
            f"rank 0 address {sender_addr!r}, want {sender.addr}:{sender.api_port}")
    others = [a for a in agents if a is not sender]
    other_addrs = [f"{a.addr}:{a.api_port}" for a in others]
    wait_page(browser, lambda s: sender_addr in (s["from_options"] or []), PAGE_BOUND_S,
              f"an option {sender_addr} in #command-from")
    text = f"DASH_{random.getrandbits(48):012x}"
    Select(browser.driver.find_element(By.ID, "command-from")).select_by_value(sender_addr)
    box = browser.driver.find_element(By.ID, "command-text")
    box.clear()
    box.send_keys(text)
    s = snapshot(browser)
    h.check(s["from_value"] == sender_addr,
            f"#command-from is {s['from_value']!r} after selecting {sender_addr!r}")
    t0 = time.monotonic()
    browser.driver.find_element(By.ID, "command-send").click()
    h.log(f"sending {text} from {sender.name} (rank 0, {sender_addr}) through the form")

    def delivered(s):
        lines = (s["result"] or "")
        return all(f"{a} delivered" in lines for a in other_addrs) and s
    s = wait_page(browser, delivered, DELIVERED_BOUND_S,
                  f"#command-result to say delivered for {other_addrs}")
    h.check("failed" not in s["result"], f"#command-result reports a failure: {s['result']!r}")
    h.log(f"form result after {time.monotonic() - t0:.2f} s: {s['result']!r}")

    def command_shown(s):
        rows = [c for c in s["commands"] if text in c["text"]]
        sent = [e for e in s["events"] if e["type"] == "command.sent"]
        return (len(rows) == 1 and sent) and (rows, sent)
    rows, sent = wait_page(browser, command_shown, COMMAND_ROW_BOUND_S,
                           f"a #commands row with {text} and a command.sent event")
    h.log(f"#commands row {rows[0]['id']} (settled {rows[0]['settled']}); "
          f"{len(sent)} command.sent event(s), newest: {sent[0]['text'][:120]!r}")
    # Observed, not asserted: how soon the row shows the settled record (stale reads).
    try:
        wait_page(browser, lambda s: any(text in c["text"] and c["settled"] == "true"
                                         for c in s["commands"]), 5.0, "settled row")
        h.log(f"#commands row shown settled {time.monotonic() - t0:.2f} s after the click")
    except h.TestFailure:
        h.log("note: #commands row still data-settled 'false' 5 s after the form reported "
              "every delivery (not asserted)")
    check_agent = next(a for a in others if a is not page_agent)

    def held():
        doc = check_agent.get("/v1/commands?since=0&limit=1000")
        got = [c for c in doc.get("commands", []) if c.get("command") == text]
        return got and got
    got = h.wait_for(held, 5.0, what=f"{text} in /v1/commands of {check_agent.name}")
    h.check(len(got) == 1, f"{check_agent.name} holds {text} {len(got)} times: {got}")
    h.log(f"{check_agent.name} ({check_agent.addr}) holds {text} exactly once "
          f"(id {got[0].get('id')})")

    # 4. A member dies; the page follows without a reload.
    marker = browser.js("return (window.__synodTestMarker = Math.random());")
    victim = next(a for a in agents if a is not page_agent and a.id != leader_id)
    seen = []

    def record(s):
        row = next((m for m in s["members"] if m["id"] == victim.id), None)
        st = row["state"] if row else None
        if not seen or seen[-1] != st:
            seen.append(st)
    victim.kill()
    t_kill = time.monotonic()
    h.log(f"killed {victim.name} ({victim.addr}, id {victim.id[:8]}); leader {leader_name}")
    wait_page(browser, lambda s: any(m["id"] == victim.id and m["state"] == "dead"
                                     for m in s["members"]),
              DEAD_BOUND_S, f"{victim.name}'s row to get data-state 'dead'", on_poll=record)
    t_dead = time.monotonic() - t_kill
    h.log(f"{victim.name} shown dead {t_dead:.1f} s after the kill; states seen: {seen}; "
          f"suspect seen: {'suspect' in seen}")
    wait_page(browser, lambda s: any(e["type"] == "member.dead" for e in s["events"]),
              DEAD_EVENT_BOUND_S, "an li[data-event-type='member.dead'] in #events")
    h.log(f"member.dead event shown {time.monotonic() - t_kill:.1f} s after the kill")
    h.check(browser.js("return window.__synodTestMarker;") == marker,
            "the page was reloaded while waiting for the dead member")

    # 5. Bad input: an empty command.
    Select(browser.driver.find_element(By.ID, "command-from")).select_by_value(
        f"{page_agent.addr}:{page_agent.api_port}")
    box = browser.driver.find_element(By.ID, "command-text")
    box.clear()
    browser.js("document.getElementById('command-text').value = '';")
    browser.driver.find_element(By.ID, "command-send").click()
    s = wait_page(browser, lambda s: "HTTP 4" in (s["result"] or "") and s, BAD_INPUT_BOUND_S,
                  "#command-result to show an 'HTTP 4xx' error for an empty command")
    h.log(f"empty command: #command-result {s['result']!r}")
    row = next((c for c in s["commands"] if text in c["text"]), None)
    h.log(f"#commands row of {text} now: data-settled {row and row['settled']!r}")

    # 7. The console.
    entries = browser_log(browser)
    if entries is not None:
        console.extend(entries)
        victim_addr = f"{victim.addr}"
        allowed, bad = [], []
        for e in entries:
            if e.get("level") != "SEVERE":
                continue
            msg = str(e.get("message", ""))
            net = e.get("source") == "network" or "Failed to load resource" in msg \
                or "net::ERR_" in msg
            if net and (victim_addr in msg or "/send-command" in msg):
                allowed.append(msg)
            else:
                bad.append(f"{e.get('source')}: {msg}")
        h.log(f"browser console: {len(entries)} entries, {len(allowed)} expected network "
              f"errors{': ' + str([m[:160] for m in allowed]) if allowed else ''}")
        h.check(not bad, "SEVERE browser console entries:\n  " + "\n  ".join(m[:500] for m in bad))


if __name__ == "__main__":
    h.run_main(main)
