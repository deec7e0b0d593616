#!/usr/bin/env python3
"""The HTTP API over HTTPS (--api-tls-cert, --api-tls-key, --api-tls-ca).

Two agents on 127.x addresses, each with a certificate of one test CA (openssl):
- they form a cluster; writes and reads go over HTTPS, checked against the CA, and what one
  node takes the other serves;
- clear-text HTTP on the API port gets no answer, and a client that trusts another CA refuses
  the node's certificate;
- the dashboard's overview on one node holds the other's view, which it fetched over HTTPS
  trusting --api-tls-ca;
- the CLI reaches a node given as https://ADDR:PORT, trusting $SYNOD_CA_FILE, and says what is
  wrong without it;
- an agent started with a key that does not match its certificate stops with a clear error.
Skipped (77) without the openssl tool.
"""
import os
import shutil
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def clear_text_gets_no_answer(addr, port):
    """A plain HTTP request to an HTTPS port: no HTTP answer comes back, only a close (or a TLS
    alert, which is not HTTP)."""
    with socket.create_connection((addr, port), timeout=5) as s:
        s.sendall(b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        try:
            while len(got) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    return not got.startswith(b"HTTP/")


def main():
    args = h.parse_args(__doc__)
    if shutil.which("openssl") is None:
        h.skip("no openssl tool")
    work = h.make_tempdir("synod-it-https-")
    ca = h.make_test_ca(work, "api-ca")
    other_ca = h.make_test_ca(work, "other-ca")
    trust = h.https_context(ca)
    addrs = h.pick_addresses(3)
    bport = h.free_udp_port()
    agents = []
    for i, addr in enumerate(addrs[:2]):
        cert, key = h.make_test_cert(work, "api-ca", f"n{i + 1}")
        agents.append(h.Agent(args.synod, f"n{i + 1}", addr, bport, api_tls=trust, extra_args=(
            "--bootstrap-expect", "2", "--api-tls-cert", cert, "--api-tls-key", key,
            "--api-tls-ca", ca)))
    for a in agents:
        a.start()
    for a in agents:
        a.wait_healthy()
    h.wait_for(lambda: h.converged(agents, members=2), 30, what="two members serving HTTPS")
    n1, n2 = agents
    r = n1.kv_put("over-https", "sealed")
    h.check(r.status == 200, f"a write over HTTPS answered {r.status}: {r.body!r}")
    h.wait_for(lambda: n2.kv_get("over-https?stale").status == 200, 10,
               what="n2 to serve the write over HTTPS")
    answer = n2.kv_get("over-https")
    h.check(answer.status == 200 and answer.json().get("value") == "sealed",
            f"n2's answer: {answer.status} {answer.body!r}")
    h.log("two agents serve their API over HTTPS; writes and reads go through it")

    h.check(clear_text_gets_no_answer(n1.addr, n1.api_port),
            "clear-text HTTP got an HTTP answer from an HTTPS port")
    try:
        h.http_get(n1.addr, n1.api_port, "/healthz", tls=h.https_context(other_ca))
        h.fail("a client trusting another CA accepted the node's certificate")
    except ssl.SSLCertVerificationError:
        pass
    r = n1.kv_put("still", "serving")
    h.check(r.status == 200, f"a write after the refused clients answered {r.status}")
    h.log("clear text gets no HTTP answer; another CA's client refuses the certificate")

    def remote_view_ok():
        view = n1.get("/v1/overview").get("nodes", {}).get(n2.id, {})
        return isinstance(view.get("node"), dict) and "error" not in view and view
    view = h.wait_for(remote_view_ok, 15, what="n1's overview to hold n2's view (over HTTPS)")
    h.check(view["node"].get("name") == "n2", f"n2's view: {view}")
    h.log("the overview fetched the other member's view over HTTPS")

    node = f"https://{n2.addr}:{n2.api_port}"
    env = dict(os.environ, SYNOD_CA_FILE=ca)
    p = h.run_cli([args.synod, "kv", "get", "over-https", "--node", node], env=env)
    h.check(p.returncode == 0 and "sealed" in p.stdout,
            f"synod kv get over HTTPS: {p.returncode} {p.stdout!r} {p.stderr!r}")
    p = h.run_cli([args.synod, "events", "-n", "2", "--node", node], env=env)
    h.check(p.returncode == 0, f"synod events over HTTPS: {p.returncode} {p.stderr!r}")
    plain_env = {k: v for k, v in os.environ.items() if k != "SYNOD_CA_FILE"}
    p = h.run_cli([args.synod, "kv", "get", "over-https", "--node", node], env=plain_env)
    h.check(p.returncode != 0 and "certificate" in p.stderr.lower(),
            f"without the CA the CLI should say the certificate is not trusted: {p.stderr!r}")
    h.log("the CLI reaches https:// nodes with $SYNOD_CA_FILE, and says why not without it")

    cert, _ = h.make_test_cert(work, "api-ca", "n3")
    _, wrong_key = h.make_test_cert(work, "api-ca", "n3-other")
    bad = h.Agent(args.synod, "n3", addrs[2], bport,
                  extra_args=("--api-tls-cert", cert, "--api-tls-key", wrong_key))
    bad.start()
    deadline = time.monotonic() + 10
    while bad.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    h.check(not bad.alive(), "an agent whose key does not match its certificate kept running")
    h.check(f"cannot use the private key {wrong_key}" in bad.read_log(),
            f"the mismatch was not explained: {bad.read_log()[-400:]!r}")
    h.log("a key that does not match the certificate stops the agent with a clear error")


if __name__ == "__main__":
    h.run_main(main)
