#!/usr/bin/env python3
"""API tokens: --api-token-file, --api-read-requires-token, the CLI and the workspace.

Asserts:
  * a token file with a malformed line, or a token under 16 characters, stops the agent at start
    (exit status 1) with a message naming the file and the line, and never the token;
  * cluster A (3 agents, --api-token-file with a read and a write token): every kind of write
    (PUT and DELETE /v1/kv/{key}, POST /v1/kv, POST /v1/commands, POST /v1/timers, the seed's
    POST /timer/, POST /assign-rank, POST /send-command), and an unknown path, is answered 401
    with {"error": ...} and WWW-Authenticate: Bearer when it has no token (also a malformed
    Authorization header or an unknown token), and 403 with the read token; nothing changed on
    any node (the key is 404 on all 3 with a linearizable read, no timer, no command, only the 3
    members ranked); the write token works (the value is then on every node); reads stay open;
  * /metrics counts the refusals by reason (synod_api_unauthorized_total) and says writes need a
    token; refusals are logged with the method, path and client address, and a flood of 300 is
    logged in at most a burst plus one line a second, the next line saying how many were left out;
  * the CLI: `synod kv put` without a token fails with "the API needs a token: set SYNOD_TOKEN",
    with SYNOD_TOKEN=<read token> fails saying it needs write scope, with SYNOD_TOKEN=<write
    token> works;
  * cluster B (2 agents, also --api-read-requires-token): a read without a token is 401, with the
    read token 200; /healthz, /, /assets/dashboard.js, /docs and /openapi.json stay open; the
    overview's views of the other member (fetched over HTTP in the background) come with no
    error; `synod cluster status` works with SYNOD_TOKEN and fails clearly without;
  * a workspace: `synod init` creates api.tokens (mode 0600, one write token), `synod bootstrap
    -c 1` starts its agent with --api-token-file, which refuses a write without a token, while
    `synod kv put` of the workspace works without SYNOD_TOKEN;
  * no token appears in any agent's log, /metrics, or agent command line (/proc/PID/cmdline);
  * SIGHUP after the write token was rotated in the file: the new token works and the old one
    gets 401, without a restart; SIGHUP with a broken file: the agent logs that it keeps the
    tokens in use, stays up, and the new token still works.
"""

import json
import os
import re
import signal
import socket
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

READ_TOKEN = "rd-" + os.urandom(12).hex()
WRITE_TOKEN = "wr-" + os.urandom(12).hex()
UNKNOWN_TOKEN = "no-" + os.urandom(12).hex()
TOKENS = (READ_TOKEN, WRITE_TOKEN)


def write_token_file(directory):
    path = os.path.join(directory, "api.tokens")
    with open(path, "w") as f:
        f.write(f"# test tokens\n\nread {READ_TOKEN}\nwrite {WRITE_TOKEN}\n")
    os.chmod(path, 0o600)
    return path


def request(agent, method, path, body=None, token=None, authorization=None):
    headers = {}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    if authorization is not None:
        headers["Authorization"] = authorization
    if body is not None:
        headers["Content-Type"] = "application/json"
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
    return h.http_request(agent.addr, agent.api_port, method, path, body=body, headers=headers,
                          timeout=10.0)


def check_refused(r, status, what):
    h.check(r.status == status, f"{what}: want {status}, got {r}")
    h.check(r.headers.get("www-authenticate", "").startswith("Bearer"),
            f"{what}: WWW-Authenticate {r.headers.get('www-authenticate')!r}")
    body = r.json()
    h.check(isinstance(body, dict) and list(body) == ["error"] and isinstance(body["error"], str),
            f"{what}: body {body!r} is not {{\"error\": ...}}")


def scrape(agent, token=None):
    r = request(agent, "GET", "/metrics", token=token)
    h.check(r.status == 200, f"{agent.name}: /metrics -> {r}")
    return r.body.decode()


def metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$', line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    h.fail(f"no sample {name}{{{want}}}")


def cli(args, synod, extra_env=None, want=0):
    env = dict(os.environ, SYNOD_WORKSPACE=os.path.join(h.make_tempdir("synod-no-ws-"), "none"))
    for name in ("SYNOD_NODE", "SYNOD_TOKEN"):
        env.pop(name, None)
    env.update(extra_env or {})
    p = h.run_cli([synod, *args], timeout=20.0, env=env)
    h.check(want is None or p.returncode == want,
            f"synod {' '.join(args)}: exit {p.returncode}, want {want}; "
            f"stdout {p.stdout[-600:]!r} stderr {p.stderr[-600:]!r}")
    return p


def check_no_token_leak(agents, extra_tokens=()):
    tokens = TOKENS + tuple(extra_tokens)
    for a in agents:
        text = a.read_log()
        for t in tokens:
            h.check(t not in text, f"{a.name}: a token is in its log")
        if a.alive():
            with open(f"/proc/{a.proc.pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            for t in tokens:
                h.check(t not in cmdline, f"{a.name}: a token is in its command line")
    ps = h.run_cli(["ps", "-eww", "-o", "pid=,args="]).stdout
    h.check("--api-token-file" in ps, "ps does not show the agents")
    for t in tokens:
        h.check(t not in ps, "a token is in the output of ps")


def test_bad_files(synod, addr, bport):
    d = h.make_tempdir("synod-tokens-bad-")
    cases = [
        (f"# tokens\nwrite {WRITE_TOKEN}\nadmin {READ_TOKEN}\n", "line 3"),
        (f"write {WRITE_TOKEN}\n\nread short-tok\n", "line 3"),
        (f"{WRITE_TOKEN}\n", "line 1"),
    ]
    for i, (text, line) in enumerate(cases):
        path = os.path.join(d, f"bad{i}.tokens")
        with open(path, "w") as f:
            f.write(text)
        a = h.Agent(synod, f"bad{i}", addr, bport, extra_args=("--api-token-file", path))
        a.start()
        try:
            code = a.proc.wait(timeout=10.0)
        except Exception:  # noqa: BLE001
            h.fail(f"an agent with the malformed token file {text!r} did not stop")
        out = a.read_log()
        h.check(code == 1, f"bad token file {i}: exit {code}, want 1; log {out!r}")
        h.check(path in out and line in out, f"bad token file {i}: {out!r} names no {path} {line}")
        for t in TOKENS + ("short-tok",):
            h.check(t not in out, f"bad token file {i}: the message shows a token: {out!r}")
    p = cli(["agent", "--name", "x", "--bind", addr, "--data-dir", d, "--api-read-requires-token"],
            synod, want=2)
    h.check("--api-token-file" in p.stderr, f"--api-read-requires-token alone: {p.stderr!r}")


def test_writes(agents, synod):
    a1, a2, a3 = agents
    writes = [
        ("PUT", "/v1/kv/secret", "v"),
        ("DELETE", "/v1/kv/secret", None),
        ("POST", "/v1/kv", {"entries": {"secret": "v"}}),
        ("POST", "/v1/commands", {"command": "NOPE"}),
        ("POST", "/v1/timers", {"url": "http://127.0.0.1:9/x", "delay": "1h"}),
        ("POST", "/timer/", {"hours": 1, "minutes": 0, "seconds": 0, "url": "http://127.0.0.1:9"}),
        ("POST", "/assign-rank", {"ip_port": "127.0.0.1:9"}),
        ("POST", "/send-command", {"command": "NOPE", "ip_port": f"{a1.addr}:{a1.api_port}"}),
        ("POST", "/no/such/path", {}),
    ]
    for a in agents:
        for method, path, body in writes:
            what = f"{a.name}: {method} {path}"
            check_refused(request(a, method, path, body), 401, what + " without a token")
            check_refused(request(a, method, path, body, token=READ_TOKEN), 403,
                          what + " with a read token")
    check_refused(request(a2, "PUT", "/v1/kv/secret", "v", token=UNKNOWN_TOKEN), 401,
                  "an unknown token")
    check_refused(request(a2, "PUT", "/v1/kv/secret", "v", authorization="Basic " + WRITE_TOKEN),
                  401, "a Basic header")
    check_refused(request(a2, "PUT", "/v1/kv/secret", "v", authorization=WRITE_TOKEN), 401,
                  "a token without Bearer")
    # Nothing changed anywhere: linearizable reads, once a real write has gone through.
    r = request(a3, "PUT", "/v1/kv/ok", "yes", token=WRITE_TOKEN)
    h.check(r.status == 200, f"PUT with the write token: {r}")
    r = request(a1, "POST", "/v1/kv", {"entries": {"ok2": "yes"}}, token=WRITE_TOKEN)
    h.check(r.status == 200, f"POST /v1/kv with the write token: {r}")
    h.verify_kv(agents, {"ok": "yes", "ok2": "yes"}, "after writes with the write token")
    for a in agents:
        r = request(a, "GET", "/v1/kv/secret")
        h.check(r.status == 404, f"{a.name}: the refused key: {r}")
        timers = request(a, "GET", "/v1/timers").json()
        h.check(timers.get("timers") == [], f"{a.name}: timers after refused writes: {timers}")
        ranks = request(a, "GET", "/v1/ranks").json()
        h.check(len(ranks.get("ranks", [])) == 3 and not ranks.get("last_command_id"),
                f"{a.name}: ranks after refused writes: {ranks}")
    # Reads stay open.
    for path in ("/v1/cluster", "/v1/kv/ok", "/v1/overview", "/metrics", "/v1/node"):
        r = request(a2, "GET", path)
        h.check(r.status == 200, f"GET {path} without a token: {r}")


def test_metrics_and_log(agents):
    a1 = agents[0]
    text = scrape(a1)
    h.check(metric(text, "synod_api_token_required", access="write") == 1, "write gauge")
    h.check(metric(text, "synod_api_token_required", access="read") == 0, "read gauge")
    for reason, least in (("missing_token", 9), ("insufficient_scope", 9)):
        v = metric(text, "synod_api_unauthorized_total", reason=reason)
        h.check(v >= least, f"{a1.name}: {reason} refusals {v}, want >= {least}")
    log_text = a1.read_log()
    h.check(re.search(r"api: refused PUT /v1/kv/secret from 127\.\d+\.\d+\.\d+:\d+: 401 "
                      r"missing_token", log_text),
            "no log line for the refused PUT without a token")
    h.check("403 insufficient_scope" in log_text, "no log line for a refused read token")
    # A flood: logged in a burst, then about one line a second.
    before = log_text.count("api: refused")
    t0 = time.monotonic()
    import http.client
    conn = http.client.HTTPConnection(a1.addr, a1.api_port, timeout=5.0)
    for _ in range(300):
        conn.request("DELETE", "/v1/kv/flood")
        r = conn.getresponse()
        r.read()
        h.check(r.status == 401, f"flood: {r.status}")
    conn.close()
    took = time.monotonic() - t0
    time.sleep(1.2)
    check_refused(request(a1, "DELETE", "/v1/kv/after-flood"), 401, "after the flood")
    time.sleep(0.2)
    log_text = a1.read_log()
    lines = log_text.count("api: refused") - before
    h.check(lines <= 10 + took + 3, f"{lines} log lines for 301 refusals in {took:.1f} s")
    h.check(re.search(r"refused DELETE /v1/kv/(after-)?flood .* \(\d+ more refusals since the "
                      r"last logged\)", log_text),
            "no line after the flood says how many refusals were left out")
    h.check(metric(scrape(a1), "synod_api_unauthorized_total", reason="missing_token") >= 301,
            "the flood is not counted")


def test_cli(agents, synod):
    node = f"{agents[1].addr}:{agents[1].api_port}"
    p = cli(["kv", "put", "cli-key", "v", "--node", node], synod, want=1)
    h.check("the API needs a token" in p.stderr and "SYNOD_TOKEN" in p.stderr,
            f"kv put without a token: {p.stderr!r}")
    p = cli(["kv", "put", "cli-key", "v", "--node", node], synod, {"SYNOD_TOKEN": READ_TOKEN},
            want=1)
    h.check("write scope" in p.stderr and "SYNOD_TOKEN" in p.stderr,
            f"kv put with a read token: {p.stderr!r}")
    cli(["kv", "put", "cli-key", "v", "--node", node], synod, {"SYNOD_TOKEN": WRITE_TOKEN})
    p = cli(["kv", "get", "cli-key", "--node", node], synod)
    h.check("v" in p.stdout, f"kv get: {p.stdout!r}")


def test_read_requires_token(agents, synod):
    b1, b2 = agents
    for path in ("/v1/cluster", "/v1/kv/x", "/metrics", "/v1/overview", "/v1/events?follow=false"):
        check_refused(request(b1, "GET", path), 401, f"GET {path} without a token")
        check_refused(request(b1, "GET", path, token=UNKNOWN_TOKEN), 401, f"GET {path}, unknown")
        r = request(b1, "GET", path, token=READ_TOKEN)
        h.check(r.status in (200, 404), f"GET {path} with the read token: {r}")
    for path in ("/healthz", "/", "/assets/dashboard.js", "/docs", "/openapi.json"):
        r = request(b1, "GET", path)
        h.check(r.status == 200, f"GET {path} without a token: {r}")
    h.check(metric(scrape(b1, READ_TOKEN), "synod_api_token_required", access="read") == 1,
            "read gauge")
    # The overview fetches the other member's view over HTTP, with the node's token.

    def remote_view_ok():
        ov = request(b1, "GET", "/v1/overview", token=READ_TOKEN).json()
        view = ov.get("nodes", {}).get(b2.id, {})
        return isinstance(view.get("node"), dict) and "error" not in view and view
    view = h.wait_for(remote_view_ok, 10.0, what="b1's overview to hold b2's view")
    h.check(view["node"].get("name") == b2.name, f"b2's view: {view}")
    node = f"{b2.addr}:{b2.api_port}"
    p = cli(["cluster", "status", "--node", node], synod, want=1)
    h.check("the API needs a token" in p.stderr, f"cluster status without a token: {p.stderr!r}")
    cli(["cluster", "status", "--node", node], synod, {"SYNOD_TOKEN": READ_TOKEN})
    p = cli(["events", "-n", "3", "--node", node], synod, want=1)
    h.check("the API needs a token" in p.stderr, f"events without a token: {p.stderr!r}")
    cli(["events", "-n", "3", "--node", node], synod, {"SYNOD_TOKEN": READ_TOKEN})


def test_workspace(synod):
    workspace = os.path.join(h.make_tempdir("synod-ws-tokens-"), "ws")
    first_ip = h.pick_addresses(1)[0]
    env = dict(os.environ, SYNOD_WORKSPACE=workspace)
    for name in ("SYNOD_NODE", "SYNOD_TOKEN"):
        env.pop(name, None)

    def ws(*argv, want=0):
        p = h.run_cli([synod, *argv], timeout=40.0, env=env)
        h.check(p.returncode == want, f"synod {' '.join(argv)}: exit {p.returncode}; "
                                      f"stdout {p.stdout[-600:]!r} stderr {p.stderr[-600:]!r}")
        return p
    try:
        ws("init", "--first-ip", first_ip)
        path = os.path.join(workspace, "api.tokens")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        h.check(mode == 0o600, f"api.tokens has mode {oct(mode)}")
        with open(path) as f:
            lines = [ln.split() for ln in f if ln.strip() and not ln.startswith("#")]
        h.check(len(lines) == 1 and lines[0][0] == "write" and len(lines[0][1]) >= 32,
                f"api.tokens holds {len(lines)} token lines")
        token = lines[0][1]
        ws("bootstrap", "-c", "1")
        with open(os.path.join(workspace, "workspace.json")) as f:
            pid = json.load(f)["nodes"][0]["pid"]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().decode(errors="replace").split("\0")
        h.check("--api-token-file" in cmdline and path in cmdline,
                f"the workspace agent's command line: {cmdline}")
        h.check(token not in " ".join(cmdline), "the token is in the agent's command line")
        r = h.http_request(first_ip, 7400, "PUT", "/v1/kv/ws", body="v")
        h.check(r.status == 401, f"workspace agent, PUT without a token: {r}")
        ws("kv", "put", "ws", "from-cli")
        p = ws("kv", "get", "ws")
        h.check("from-cli" in p.stdout, f"kv get in the workspace: {p.stdout!r}")
        with open(os.path.join(workspace, "logs", "node1.log")) as f:
            h.check(token not in f.read(), "the workspace token is in the agent's log")
    finally:
        h.run_cli([synod, "teardown"], timeout=20.0, env=env)


def main():
    args = h.parse_args(__doc__)
    tokens = write_token_file(h.make_tempdir("synod-tokens-"))
    addrs_a = h.pick_addresses(3)
    addrs_b = h.pick_addresses(2)
    bport_a = h.free_udp_port()
    bport_b = h.free_udp_port()
    test_bad_files(args.synod, h.pick_addresses(1)[0], h.free_udp_port())
    h.log("malformed token files stop the agent, naming the file and line")
    # Both clusters form at the same time.
    cluster_a = h.start_cluster_agents(
        args.synod, addrs_a, bport_a, ["--bootstrap-expect", "3", "--api-token-file", tokens],
        names=["a1", "a2", "a3"])
    cluster_b = h.start_cluster_agents(
        args.synod, addrs_b, bport_b,
        ["--bootstrap-expect", "2", "--api-token-file", tokens, "--api-read-requires-token"],
        names=["b1", "b2"], api_token=READ_TOKEN)
    h.wait_converged(cluster_a, 15.0, members=3, voters=3, what="cluster A to form")
    h.wait_converged(cluster_b, 15.0, members=2, what="cluster B to form")
    h.wait_ranks(cluster_a, lambda e: len(e) == 3, 10.0, "3 ranks in cluster A")
    test_writes(cluster_a, args.synod)
    h.log("cluster A: writes refused without a token (401) or with a read token (403), "
          "nothing changed; the write token works; reads open")
    test_metrics_and_log(cluster_a)
    h.log("refusals counted in /metrics and logged, a flood rate-limited")
    test_cli(cluster_a, args.synod)
    h.log("the CLI: clear errors without a token or with a read token; works with SYNOD_TOKEN")
    test_read_requires_token(cluster_b, args.synod)
    h.log("cluster B: reads need a token, but not /healthz and the dashboard's files; the "
          "overview's remote views carry the token; the CLI with SYNOD_TOKEN")
    test_workspace(args.synod)
    h.log("workspace: api.tokens 0600, agents run with it, the CLI sends it")
    for a in cluster_a + cluster_b:
        text = scrape(a, READ_TOKEN)
        for t in TOKENS:
            h.check(t not in text, f"{a.name}: a token is in /metrics")
    check_no_token_leak(cluster_a + cluster_b)
    test_reload(cluster_a[0], tokens)
    h.log("SIGHUP: a rotated token file takes effect at once; a broken one keeps the old tokens")
    test_reload_ends_streams(cluster_b[0], tokens)
    h.log("SIGHUP: an event stream opened with a token taken out of the file ends; one opened "
          "with a token still in it goes on")


def test_reload(agent, path):
    """Rotates the write token in the file and sends SIGHUP: the old token is refused and the
    new one works, without a restart. Then a file with a bad line: the agent says so and keeps
    the tokens it has."""
    new_write = "wr2-" + os.urandom(12).hex()
    with open(path, "w") as f:
        f.write(f"read {READ_TOKEN}\nwrite {new_write}\n")
    agent.signal(signal.SIGHUP)

    def rotated():
        r = request(agent, "PUT", "/v1/kv/rotated", "1", token=new_write)
        return r.status in (200, 201, 204)
    h.wait_for(rotated, 10.0, what=f"{agent.name} to take the new write token after SIGHUP")
    check_refused(request(agent, "PUT", "/v1/kv/rotated", "2", token=WRITE_TOKEN), 401,
                  "the rotated-out write token")
    with open(path, "w") as f:
        f.write(f"write {new_write}\nthis line is not a token\n")
    agent.signal(signal.SIGHUP)
    h.wait_for(lambda: "keeping the tokens in use" in agent.read_log(), 10.0,
               what=f"{agent.name} to refuse the broken token file")
    h.check(agent.alive(), f"{agent.name} stopped on a broken token file at SIGHUP")
    r = request(agent, "PUT", "/v1/kv/rotated", "3", token=new_write)
    h.check(r.status in (200, 201, 204), f"the write token after a broken reload: {r}")
    # Not even the valid line of the broken file was taken: the read token still reads.
    check_refused(request(agent, "PUT", "/v1/kv/rotated", "4", token=READ_TOKEN), 403,
                  "the read token after a broken reload")
    h.check(new_write not in agent.read_log(), "a reloaded token is in the log")


def open_event_stream(agent, token):
    """A live GET /v1/events, its answer's head read: the socket, ready for more."""
    sock = socket.create_connection((agent.addr, agent.api_port), timeout=10.0)
    sock.sendall(f"GET /v1/events HTTP/1.1\r\nHost: {agent.addr}\r\n"
                 f"Authorization: Bearer {token}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        h.check(chunk, f"{agent.name}: /v1/events closed before its head: {head!r}")
        head += chunk
    h.check(head.startswith(b"HTTP/1.1 200"), f"{agent.name}: /v1/events -> {head[:200]!r}")
    return sock


def stream_ended(sock, within):
    """True if the server closes the stream within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


def test_reload_ends_streams(agent, path):
    """Reads need a token on this agent. A token taken out of the file by a reload must not
    keep a stream it opened before: the stream ends; one opened with a kept token goes on."""
    kept_read = "rd2-" + os.urandom(12).hex()
    with open(path, "w") as f:
        f.write(f"read {READ_TOKEN}\nread {kept_read}\nwrite {WRITE_TOKEN}\n")
    agent.signal(signal.SIGHUP)
    h.wait_for(lambda: request(agent, "GET", "/v1/cluster", token=kept_read).status == 200, 10.0,
               what=f"{agent.name} to take the new read token after SIGHUP")
    revoked = open_event_stream(agent, READ_TOKEN)
    kept = open_event_stream(agent, kept_read)
    try:
        h.check(not stream_ended(revoked, 0.5), "the stream ended before the reload")
        with open(path, "w") as f:
            f.write(f"read {kept_read}\nwrite {WRITE_TOKEN}\n")
        agent.signal(signal.SIGHUP)
        h.check(stream_ended(revoked, 10.0),
                f"{agent.name}: the stream of a revoked token still open 10 s after SIGHUP")
        h.check(not stream_ended(kept, 1.0), f"{agent.name}: the stream of a kept token ended")
        check_refused(request(agent, "GET", "/v1/cluster", token=READ_TOKEN), 401,
                      "a read with the revoked token")
    finally:
        revoked.close()
        kept.close()


if __name__ == "__main__":
    h.run_main(main)
