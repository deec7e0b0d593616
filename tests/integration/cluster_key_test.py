#!/usr/bin/env python3
"""A cluster key (synod keygen, --cluster-key-file): members talk TLS 1.3, outsiders are refused.

Runs in a private network namespace (it re-executes itself under `unshare -n`; skipped where
that is not allowed), so that every packet on its loopback is the test's own. There:
- three agents with one key form a cluster, replicate writes and sync a file;
- every TCP payload on the Raft and peer ports is captured (a raw socket on lo): none holds a
  written value or the file's content, while the API's own traffic does (the capture works);
- an agent with another key and one with none see the cluster's beacons but never join; the
  members log why once and count the refusals in /metrics;
- a client speaking the peer protocol or libraft's handshake in clear gets no answer but a close;
- a peer that holds the key (openssl s_client with the derived PSK) and forges an entry feed to a
  voter (a future term, an applied index far ahead) is refused, and the state stays identical;
- the same peer flooding the leader with join requests under new ids, at addresses where no such
  node answers, adds no member: every request is refused and counted;
- the cluster keeps working through all of it;
- with certificates instead (--tls-cert/--tls-key/--tls-ca, made here with the openssl tool),
  two nodes of one CA form a cluster and a node of another CA is refused.
"""
import base64
import hashlib
import hmac
import os
import secrets
import shutil
import socket
import stat
import struct
import subprocess
import threading
import time

import harness as h
import netns
from peer_wire import field, member_record

IN_NAMESPACE = "SYNOD_CLUSTER_KEY_TEST_IN_NETNS"
API_PORT, RAFT_PORT, PEER_PORT = 7400, 7401, 7402


class Capture:
    """TCP payloads seen on lo, as (source port, destination port, bytes)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.packets = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                frame = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            if len(frame) < 34 or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
            if ip[9] != 6:  # TCP
                continue
            header = (ip[0] & 15) * 4
            total = int.from_bytes(ip[2:4], "big")
            tcp = ip[header:total]
            if len(tcp) < 20:
                continue
            sport, dport = int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[2:4], "big")
            payload = tcp[(tcp[12] >> 4) * 4:]
            if payload:
                self.packets.append((sport, dport, bytes(payload)))

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()
        return self.packets


def hkdf_sha256(ikm, salt, info, length):
    """RFC 5869, as OpenSSL's EVP_PKEY_HKDF (extract then expand) computes it."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]


def send_as_member(key_text, addr, port, payload):
    """Speaks to a member over TLS 1.3 with the cluster's own PSK (`openssl s_client -psk`), as
    a node holding the key would: the checks past the handshake are what is tested. `payload`
    is one PeerMessage, or a list of them sent back to back."""
    key = base64.b64decode(key_text)
    salt = b"synod cluster key"
    psk = hkdf_sha256(key, salt, b"synod tls 1.3 external psk v1", 32)
    identity = "synod1-" + hkdf_sha256(key, salt, b"synod tls 1.3 psk identity v1", 8).hex()
    client = subprocess.Popen(
        ["openssl", "s_client", "-quiet", "-ign_eof", "-tls1_3", "-connect", f"{addr}:{port}",
         "-psk", psk.hex(), "-psk_identity", identity, "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    payloads = payload if isinstance(payload, list) else [payload]
    client.stdin.write(b"".join(struct.pack(">I", len(p)) + p for p in payloads))
    client.stdin.flush()
    time.sleep(1.5)
    client.kill()
    out, err = client.communicate()
    return out, err


def keygen(synod, path):
    made = h.run_cli([synod, "keygen", "-o", path])
    h.check(made.returncode == 0, f"synod keygen -o failed: {made.stderr}")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    h.check(mode == 0o600, f"the key file has mode {oct(mode)}, not 0600")
    again = h.run_cli([synod, "keygen", "-o", path])
    h.check(again.returncode != 0 and "never overwritten" in again.stderr,
            f"keygen overwrote a key, or did not say why not: {again.stderr!r}")
    return open(path).read().strip()


def metric(agent, name, labels):
    for line in h.http_get(agent.addr, agent.api_port, "/metrics").body.decode().splitlines():
        if line.split("{")[0].split(" ")[0] == name and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def clear_text_is_refused(addr, port, data):
    """Connects, sends `data` in clear; returns what came back before the close."""
    with socket.create_connection((addr, port), timeout=5) as s:
        s.sendall(data)
        got = b""
        s.settimeout(5)
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return got
                got += chunk
        except socket.timeout:
            h.fail(f"{addr}:{port} kept a clear-text connection open for 5 s")
        except ConnectionResetError:
            return got


def cert_flags(work, ca, name):
    cert, key = h.make_test_cert(work, ca, name)
    return ("--tls-cert", cert, "--tls-key", key, "--tls-ca", os.path.join(work, f"{ca}.pem"))


def certificates(synod, work):
    if shutil.which("openssl") is None:
        h.log("no openssl tool: the certificate part is not run")
        return
    h.make_test_ca(work, "ca1")
    h.make_test_ca(work, "ca2")
    addrs = h.pick_addresses(3)
    bport = h.free_udp_port()
    members = [h.Agent(synod, f"c{i + 1}", addr, bport, extra_args=(
        "--bootstrap-expect", "2", *cert_flags(work, "ca1", f"c{i + 1}"))) for i, addr in
        enumerate(addrs[:2])]
    for a in members:
        a.start()
    for a in members:
        a.wait_healthy()
    h.wait_for(lambda: h.converged(members, members=2), 30, what="two members of one CA")
    rogue = h.Agent(synod, "rogue", addrs[2], bport,
                    extra_args=("--join", addrs[0], *cert_flags(work, "ca2", "rogue")))
    rogue.start()
    rogue.wait_healthy()
    h.wait_for(lambda: "certificate is refused" in members[0].read_log() or
               "certificate is refused" in members[1].read_log(), 20,
               what="a member to refuse the other CA's certificate")
    time.sleep(1)
    h.check(rogue.cluster().get("member") is not True, "the other CA's node became a member")
    names = sorted(m["name"] for m in members[0].cluster().get("members", []))
    h.check(names == ["c1", "c2"], f"members with certificates: {names}")
    r = members[1].kv_put("pki", "works")
    h.check(r.status in (200, 201, 204), f"a write with certificates answered {r.status}")
    h.log("with certificates: one CA's nodes form a cluster, another CA's node is refused")


def main():
    args = h.parse_args(__doc__)
    netns.enter(IN_NAMESPACE)
    work = h.make_tempdir("synod-it-key-")
    key_path = os.path.join(work, "cluster.key")
    key_text = keygen(args.synod, key_path)
    other_key = os.path.join(work, "other.key")
    with open(other_key, "w") as f:
        f.write(h.run_cli([args.synod, "keygen"]).stdout)
    os.chmod(other_key, 0o600)

    capture = Capture()
    addrs = h.pick_addresses(5)
    bport = h.free_udp_port()
    members = []
    for i, addr in enumerate(addrs[:3]):
        sync_dir = os.path.join(work, f"sync{i + 1}")
        os.makedirs(sync_dir)
        members.append(h.Agent(args.synod, f"n{i + 1}", addr, bport, extra_args=(
            "--bootstrap-expect", "3", "--cluster-key-file", key_path, "--sync-dir", sync_dir)))
    for a in members:
        a.start()
    for a in members:
        a.wait_healthy()
    h.wait_for(lambda: h.converged(members, members=3), 30, what="three keyed members")
    h.log("three agents with one key formed a cluster")

    # Writes and a file whose bytes must never travel in clear between members.
    marker = "PLAINTEXT-" + secrets.token_hex(8)
    for i in range(20):
        r = members[i % 3].kv_put(f"secret-{i}", f"{marker}-{i}")
        h.check(r.status in (200, 201, 204), f"write {i} answered {r.status}: {r.body!r}")
    file_marker = "FILEBYTES-" + secrets.token_hex(8)
    with open(os.path.join(work, "sync1", "notes.txt"), "w") as f:
        f.write((file_marker + "\n") * 2000)
    for i in (2, 3):
        path = os.path.join(work, f"sync{i}", "notes.txt")
        h.wait_for(lambda: os.path.exists(path) and file_marker in open(path).read(), 30,
                   what=f"the file on n{i}")
    h.log("writes replicated and the file synced over TLS")

    # Outsiders: another key, and none. They hear the beacons and try.
    stranger = h.Agent(args.synod, "stranger", addrs[3], bport,
                       extra_args=("--cluster-key-file", other_key, "--join", addrs[0]))
    keyless = h.Agent(args.synod, "keyless", addrs[4], bport, extra_args=("--join", addrs[0]))
    stranger.start()
    keyless.start()
    stranger.wait_healthy()
    keyless.wait_healthy()

    def refused_both():
        log = members[0].read_log()
        return "refused: the peer has another cluster key" in log and "does not use TLS" in log
    h.wait_for(refused_both, 20, what="n1 to log both outsiders' refusals")
    time.sleep(2)  # time for any wrongful join to show
    for outsider in (stranger, keyless):
        view = outsider.cluster()
        h.check(view.get("member") is not True,
                f"{outsider.name} became a member: {h.summarize_view(view)}")
    for a in members:
        view = a.cluster()
        names = sorted(m["name"] for m in view.get("members", []))
        h.check(names == ["n1", "n2", "n3"], f"{a.name} lists members {names}")
    refused = metric(members[0], "synod_tls_handshakes_failed_total", {"port": "peer"})
    h.check(refused is not None and refused >= 2, f"peer refusals counted: {refused}")
    tls_gauge = [line for line in h.http_get(members[0].addr, API_PORT, "/metrics").body.decode().splitlines()
                 if line.startswith("synod_cluster_tls ")]
    h.check(tls_gauge == ["synod_cluster_tls 1"], f"synod_cluster_tls: {tls_gauge}")
    # Logged once per source and reason, not once per attempt.
    log = members[0].read_log()
    count = log.count(f"connection with {addrs[3]} refused: the peer has another cluster key")
    h.check(1 <= count <= 2, f"the stranger's refusal was logged {count} times")
    h.log("an agent with another key and one with none are refused, logged and counted")

    # Clear text at the ports: a peer frame (Hello) and libraft's handshake.
    hello = bytes([0x0A, 0x02, 0x08, 0x01])  # a PeerMessage with a small Hello
    reply = clear_text_is_refused(members[0].addr, PEER_PORT, struct.pack(">I", len(hello)) + hello)
    h.check(not reply or reply[0] == 0x15, f"the peer port answered clear text: {reply[:40]!r}")
    address = f"{addrs[3]}:{RAFT_PORT}".encode() + b"\0"
    address += b"\0" * (-len(address) % 8)
    handshake = struct.pack("<QQQ", 1, 12345, len(address)) + address
    reply = clear_text_is_refused(members[0].addr, RAFT_PORT, handshake)
    h.check(not reply or reply[0] == 0x15, f"the Raft port answered clear text: {reply[:40]!r}")
    h.log("clear-text peer and Raft connections get nothing but a close")

    # A peer holding the key (so past every handshake) forges an entry feed to a voter: a term
    # no leader reached and an applied index 100,000 ahead, which would make the voter skip
    # real entries. A voter with a live Raft view refuses it.
    view = members[0].cluster()
    leader_name = (view.get("leader") or {}).get("name")
    follower = next(a for a in members if a.name != leader_name)
    before = follower.cluster()["applied_index"]
    feed = (field(1, "f" * 32) + field(2, addrs[3]) + field(3, 1 << 62) +
            field(4, before) + field(5, before + 100_000))
    out, err = send_as_member(key_text, follower.addr, PEER_PORT, field(24, feed))
    h.check(b"handshake failure" not in err and b"alert" not in err,
            f"the member's key was not accepted: {err.decode(errors='replace')[-300:]}")
    h.wait_for(lambda: "refusing an entry feed" in follower.read_log(), 10,
               what=f"{follower.name} to refuse the forged feed")
    after = follower.cluster()["applied_index"]
    h.check(after < before + 1000, f"the forged feed moved {follower.name} from {before} to {after}")
    h.log(f"a forged feed from a key holder was refused by voter {follower.name} "
          f"(applied {before} -> {after})")

    # The same key holder floods the leader with join requests: 300 new ids, well formed, each
    # naming an address where no node answers as that id (nobody, or a member under its own
    # id). None may become a member; the leader refuses and counts them all.
    leader = next(a for a in members if a.name == leader_name)
    refused_before = metric(leader, "synod_joins_refused_total", {}) or 0
    joins = []
    for i in range(300):
        node_id = secrets.token_hex(16)
        ip = addrs[1 + i % 2] if i % 10 == 0 else f"127.0.{i // 200}.{1 + i % 200}"
        record = member_record(node_id, f"flood{i}", ip, API_PORT, PEER_PORT, RAFT_PORT)
        joins.append(field(15, 1000 + i) + field(6, field(1, record)))
    out, err = send_as_member(key_text, leader.addr, PEER_PORT, joins)
    h.check(b"handshake failure" not in err and b"alert" not in err,
            f"the member's key was not accepted: {err.decode(errors='replace')[-300:]}")
    h.wait_for(lambda: (metric(leader, "synod_joins_refused_total", {}) or 0) >= refused_before + 300,
               30, what=f"{leader.name} to refuse all 300 forged joins")
    h.wait_for(lambda: h.converged(members, members=3), 10,
               what="the three members alone, after the flood")
    h.check("refusing a join request" in leader.read_log(), "the refused joins were not logged")
    h.log(f"a flood of 300 forged joins from a key holder was refused by {leader.name}; "
          f"still 3 members")

    # Still working, and agreeing.
    r = members[1].kv_put("after", "still-working")
    h.check(r.status in (200, 201, 204), f"a write after the intrusions answered {r.status}")
    h.verify_kv(members, {f"secret-{i}": f"{marker}-{i}" for i in range(20)} |
                {"after": "still-working"}, "after the intrusions")
    packets = capture.finish()

    cluster_bytes = {RAFT_PORT: 0, PEER_PORT: 0}
    api_has_marker = False
    for sport, dport, payload in packets:
        ports = {sport, dport}
        if API_PORT in ports:
            api_has_marker = api_has_marker or marker.encode() in payload
            continue
        for port in cluster_bytes:
            if port in ports:
                cluster_bytes[port] += len(payload)
        for secret in (marker.encode(), file_marker.encode(), key_text.encode()):
            h.check(secret not in payload,
                    f"{secret[:12]!r}... travelled in clear between ports {sport} and {dport}")
    h.check(api_has_marker, "the capture never saw the API's own clear-text writes: it is broken")
    h.check(all(n > 10_000 for n in cluster_bytes.values()),
            f"too little cluster traffic captured to judge: {cluster_bytes}")
    h.log(f"{len(packets)} packets captured; Raft {cluster_bytes[RAFT_PORT]} B and peer "
          f"{cluster_bytes[PEER_PORT]} B, none in clear")

    # The key never shows in logs or metrics.
    for a in members + [stranger, keyless]:
        h.check(key_text not in a.read_log(), f"{a.name}'s log holds the cluster key")
    h.check(key_text not in h.http_get(members[0].addr, API_PORT, "/metrics").body.decode(),
            "/metrics holds the key")

    certificates(args.synod, work)


if __name__ == "__main__":
    h.run_main(main)
