#!/usr/bin/env python3
"""The dashboard with API tokens, in headless Chromium (skipped where it cannot start).

One agent (a one-node cluster) with --api-token-file and --api-read-requires-token. Asserts:
  * the page loads without a token (its files are open) and, within 10 s, says the API wants one:
    #conn-status "token needed" and #token-form shown (no window.prompt);
  * the read token typed into #token-input and submitted: within 10 s #conn-status is "live"
    (the overview, and the event stream read with fetch, carry it), #members holds the node, the
    form is hidden, #token-state shown, and localStorage holds the token;
  * a timer created from #timer-form with that read token: #timer-result shows the API's 403 and
    #token-form asks again, for write scope; nothing was created;
  * the write token submitted, the same form creates the timer (#timer-result "Created timer"),
    and its failed attempts (the URL refuses) reach #events through the token-carrying stream;
  * after a reload, the stored token is used at once: "live" without asking;
  * the browser console holds no SEVERE entries but the expected 401/403 network errors.
Reuses the browser handling of dashboard_browser_test.py.
"""

import os

import harness as h

h.import_or_reexec("selenium")  # before anything else; Browser.start() skips without it
from dashboard_browser_test import Browser, browser_log, save_screenshot  # noqa: E402

READ_TOKEN = "rd-" + os.urandom(12).hex()
WRITE_TOKEN = "wr-" + os.urandom(12).hex()
BOUND_S = 10.0

STATE_JS = r"""
const q = (s) => document.querySelector(s);
const txt = (s) => { const e = q(s); return e ? e.textContent.trim() : null; };
let stored = null;
try { stored = localStorage.getItem('synod.apiToken'); } catch (e) { stored = 'unavailable'; }
return {
  conn: txt('#conn-status'),
  token_form_shown: !!q('#token-form') && !q('#token-form').hidden &&
    getComputedStyle(q('#token-form')).display !== 'none',
  token_why: txt('#token-why'),
  token_state_shown: !!q('#token-state') && !q('#token-state').hidden,
  stored,
  members: [...document.querySelectorAll('#members tr[data-member-id]')].map(
    (tr) => tr.getAttribute('data-member-id')),
  timer_result: txt('#timer-result'),
  events: [...document.querySelectorAll('#events li[data-event-type]')].map(
    (li) => li.getAttribute('data-event-type')),
  es_open: !!(window.synodDashboard && window.synodDashboard.esOpen),
};
"""


def state(browser):
    s = browser.js(STATE_JS)
    h.check(isinstance(s, dict), f"page state is not an object: {s!r}")
    return s


def wait_page(browser, cond, what):
    last = {}

    def poll():
        last["s"] = state(browser)
        return cond(last["s"])
    try:
        return h.wait_for(poll, BOUND_S, interval=0.2, what=what)
    except h.TestFailure as e:
        h.fail(f"{e}\nlast page state: {last.get('s')}")


def enter_token(browser, token):
    browser.js("document.getElementById('token-input').value = arguments[0];", token)
    browser.driver.find_element("id", "token-save").click()


def create_timer(browser):
    browser.js("document.getElementById('timer-result').textContent = '';"
               "document.getElementById('timer-url').value = arguments[0];"
               "document.getElementById('timer-delay').value = '1s';",
               f"http://127.0.0.1:{h.free_tcp_port()}/hook")
    browser.driver.find_element("id", "timer-create").click()


def main():
    args = h.parse_args(__doc__)
    tmp = h.make_tempdir("synod-it-browser-tokens-")
    tokens = os.path.join(tmp, "api.tokens")
    with open(tokens, "w") as f:
        f.write(f"read {READ_TOKEN}\nwrite {WRITE_TOKEN}\n")
    os.chmod(tokens, 0o600)
    browser = Browser(tmp)
    browser.quit_on_signals()

    browser.start()  # skips (77) if it cannot
    try:
        addr = h.pick_addresses(1)[0]
        agent = h.Agent(args.synod, "t1", addr, h.free_udp_port(), api_token=READ_TOKEN,
                        extra_args=("--bootstrap", "--api-token-file", tokens,
                                    "--api-read-requires-token")).start()
        agent.wait_healthy()
        h.wait_converged([agent], 15.0, members=1, what="the one-node cluster")
        url = f"http://{addr}:{agent.api_port}/"

        browser.driver.get(url)
        wait_page(browser, lambda s: s["conn"] == "token needed" and s["token_form_shown"],
                  "the page to ask for a token")
        h.log("the page loads without a token and asks for one")

        enter_token(browser, READ_TOKEN)
        wait_page(browser, lambda s: s["conn"] == "live" and s["members"] == [agent.id]
                  and not s["token_form_shown"] and s["token_state_shown"]
                  and s["stored"] == READ_TOKEN,
                  "the page to go live with the read token")
        h.log("with the read token: live, the node shown, the token kept in localStorage")

        create_timer(browser)
        wait_page(browser, lambda s: "HTTP 403" in (s["timer_result"] or "")
                  and s["token_form_shown"] and "write scope" in (s["token_why"] or ""),
                  "a 403 for the timer form, and the token form asking for write scope")
        s = state(browser)
        timers = h.http_get_json(addr, agent.api_port, "/v1/timers",
                                 headers={"Authorization": "Bearer " + READ_TOKEN})
        h.check(timers.get("timers") == [], f"a timer was created with a read token: {timers}")
        h.log(f"timer form with the read token: {s['timer_result']!r}")

        enter_token(browser, WRITE_TOKEN)
        wait_page(browser, lambda s: not s["token_form_shown"] and s["stored"] == WRITE_TOKEN
                  and s["conn"] == "live", "the write token taken")
        create_timer(browser)
        wait_page(browser, lambda s: "Created timer" in (s["timer_result"] or ""),
                  "the timer created with the write token")
        wait_page(browser, lambda s: any(t.startswith("timer.") for t in s["events"]),
                  "a timer event in #events (the stream read with the token)")
        h.log("with the write token: the timer created, its attempts in the event feed")

        browser.driver.refresh()
        wait_page(browser, lambda s: s["conn"] == "live" and not s["token_form_shown"]
                  and s["members"] == [agent.id], "live again after a reload, without asking")
        h.log("after a reload the stored token is used at once")

        entries = browser_log(browser)
        if entries is not None:
            severe = [e for e in entries if e.get("level") == "SEVERE"
                      and not ("401" in e.get("message", "") or "403" in e.get("message", ""))]
            h.check(not severe, f"browser console errors: {severe}")
        save_screenshot(browser, "tokens-pass")
    except BaseException:
        save_screenshot(browser, "tokens-fail")
        raise
    finally:
        browser.quit()


if __name__ == "__main__":
    h.run_main(main)
