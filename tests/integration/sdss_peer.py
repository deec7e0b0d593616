#!/usr/bin/env python3
"""A Simple Delay Sync Service (SDSS) peer, written only from the SDSS lab text.

  * a random 8-char partial UUID identifies the node (new on every run);
  * a TCP server on port 0 (the OS picks the port) sends the node's UTC
    timestamp to every client, as a number (not text), then closes;
  * every second it broadcasts "<UUID> ON <TCP_SERVER_PORT>" (UTF-8) on UDP
    port 35498 with SO_BROADCAST (SO_REUSEPORT lets several peers share the port);
  * on a broadcast from an unknown node it connects (in the timestamp-exchange
    thread) to the sender's IP (from recvfrom) and TCP port, receives the
    timestamp and stores {uuid: (delay, broadcast_count)} where
    delay = own UTC time - their timestamp;
  * every 10 broadcasts of a node it is measured again; a node that is
    unreachable when its update is due is removed.

Each *_thread function runs in its own daemon thread.  The table is printed as
a JSON line on stdout whenever it changes:
  {"uuid": "...", "tcp_port": N, "table": {"<uuid>": {"delay": seconds, "count": n}}}
(delay in seconds, like the timestamps).  The first line is {"uuid": ..., "tcp_port": ...,
"table": {}} once the server is listening.

--encoding double sends struct.pack('!d', t), --encoding float struct.pack('!f', t);
received timestamps are decoded by length (8 -> '!d', 4 -> '!f').

Network safety: the default broadcast address '<broadcast>' (255.255.255.255)
must only be used inside a private network namespace; on the host pass
--broadcast-addr 127.255.255.255 and --bind 127.x.y.z.  The peer refuses to
send to 255.255.255.255 when the namespace has any interface besides lo.
"""

import argparse
import json
import queue
import signal
import socket
import struct
import sys
import threading
import time
import uuid

BROADCAST_PORT = 35498
REFRESH_EVERY = 10          # broadcasts of a node between two measurements
RECV_LIMIT = 64             # a timestamp is 4 or 8 bytes; never read more than this


def get_broadcast_port():
    return BROADCAST_PORT


def daemon_thread_builder(target, args=()):
    """Like threading.Thread(target=..., args=...), but a daemon thread."""
    th = threading.Thread(target=target, args=args)
    th.daemon = True
    return th


def utc_now():
    # time.time() is seconds since the Unix epoch, which is defined in UTC:
    # independent of the machine's time zone.
    return time.time()


class NeighborInfo:
    def __init__(self, delay, broadcast_count, ip, tcp_port):
        self.delay = delay                      # seconds, None until measured
        self.broadcast_count = broadcast_count
        self.ip = ip
        self.tcp_port = tcp_port
        self.last_seen = time.monotonic()


class SdssPeer:
    def __init__(self, opts):
        self.opts = opts
        self.uuid = str(uuid.uuid4()).replace("-", "")[:8]
        self.encoding = opts.encoding
        self.neighbors = {}                     # uuid -> NeighborInfo
        self.lock = threading.Lock()
        self.pending = set()                    # uuids queued for an exchange
        self.jobs = queue.Queue()
        self.stop = threading.Event()
        self.server_ready = threading.Event()
        self.tcp_port = None
        self.last_printed = None
        self.deadline = time.monotonic() + opts.run_for if opts.run_for > 0 else None

    # ---- output -------------------------------------------------------------
    def print_table(self):
        with self.lock:
            table = {k: {"delay": v.delay, "count": v.broadcast_count}
                     for k, v in sorted(self.neighbors.items())}
        line = json.dumps({"uuid": self.uuid, "tcp_port": self.tcp_port, "table": table},
                          sort_keys=True)
        if line != self.last_printed:
            self.last_printed = line
            print(line, flush=True)

    def log(self, msg):
        if not self.opts.quiet:
            print(f"[sdss_peer {self.uuid}] {msg}", file=sys.stderr, flush=True)

    def running(self):
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop.set()
        return not self.stop.is_set()

    # ---- TCP server: send our timestamp to every client, then close -----------
    def encode_timestamp(self):
        fmt = "!d" if self.encoding == "double" else "!f"
        return struct.pack(fmt, utc_now())

    def tcp_server_thread(self):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.opts.bind, 0))        # port 0: chosen by the OS
        server.listen(16)
        server.settimeout(0.2)
        self.tcp_port = server.getsockname()[1]
        self.server_ready.set()
        try:
            while self.running():
                try:
                    client, _addr = server.accept()
                except socket.timeout:
                    continue
                try:
                    client.sendall(self.encode_timestamp())
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    client.close()
        finally:
            server.close()

    # ---- UDP broadcast sender -----------------------------------------------
    def send_broadcast_thread(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if self.opts.bind:
            sock.bind((self.opts.bind, 0))
        self.server_ready.wait(5)
        message = f"{self.uuid} ON {self.tcp_port}".encode("utf-8")
        target = (self.opts.broadcast_addr, self.opts.broadcast_port)
        try:
            while self.running():
                try:
                    sock.sendto(message, target)
                except OSError as e:
                    self.log(f"broadcast to {target} failed: {e}")
                self.check_silent_neighbors()
                self.stop.wait(self.opts.interval)
        finally:
            sock.close()

    def check_silent_neighbors(self):
        # A node that stopped broadcasting never reaches its next 10th
        # broadcast; treat 10 missed broadcast periods as an update being due.
        limit = REFRESH_EVERY * self.opts.interval
        now = time.monotonic()
        with self.lock:
            silent = [k for k, v in self.neighbors.items()
                      if now - v.last_seen >= limit]
        for k in silent:
            self.queue_exchange(k)

    # ---- UDP broadcast receiver -----------------------------------------------
    def parse_broadcast(self, data):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        tokens = text.split(" ")
        if len(tokens) != 3 or tokens[1] != "ON" or len(tokens[0]) != 8:
            return None
        try:
            port = int(tokens[2])
        except ValueError:
            return None
        if not 1 <= port <= 65535:
            return None
        return tokens[0], port

    def receive_broadcast_thread(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind(("", self.opts.broadcast_port))
        sock.settimeout(0.2)
        try:
            while self.running():
                try:
                    data, (ip, _port) = sock.recvfrom(4096)
                except socket.timeout:
                    continue
                parsed = self.parse_broadcast(data)
                if parsed is None:
                    self.log(f"ignoring malformed broadcast {data[:60]!r} from {ip}")
                    continue
                node, tcp_port = parsed
                if node == self.uuid:
                    continue
                self.on_broadcast(node, ip, tcp_port)
        finally:
            sock.close()

    def on_broadcast(self, node, ip, tcp_port):
        with self.lock:
            info = self.neighbors.get(node)
            if info is None:
                info = NeighborInfo(None, 0, ip, tcp_port)
                self.neighbors[node] = info
                due = True
                self.log(f"new node {node} at {ip}:{tcp_port}")
            else:
                due = False
            info.broadcast_count += 1
            info.ip, info.tcp_port = ip, tcp_port
            info.last_seen = time.monotonic()
            if info.broadcast_count % REFRESH_EVERY == 0:
                due = True                       # update every 10 broadcasts
        if due:
            self.queue_exchange(node)
        self.print_table()

    def queue_exchange(self, node):
        with self.lock:
            if node in self.pending:
                return
            self.pending.add(node)
        self.jobs.put(node)

    # ---- timestamp exchange (its own thread) ------------------------------------
    def decode_timestamp(self, payload):
        if len(payload) == 8:
            return struct.unpack("!d", payload)[0]
        if len(payload) == 4:
            return struct.unpack("!f", payload)[0]
        raise ValueError(f"timestamp of {len(payload)} bytes")

    def fetch_timestamp(self, ip, tcp_port):
        with socket.create_connection((ip, tcp_port), timeout=self.opts.timeout) as conn:
            payload = b""
            while len(payload) < RECV_LIMIT:
                chunk = conn.recv(RECV_LIMIT - len(payload))
                if not chunk:
                    break
                payload += chunk
        received = utc_now()
        return received, self.decode_timestamp(payload)

    def exchange_timestamps_thread(self):
        while self.running():
            try:
                node = self.jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            with self.lock:
                self.pending.discard(node)
                info = self.neighbors.get(node)
                target = (info.ip, info.tcp_port) if info else None
            if target is None:
                continue
            try:
                received, theirs = self.fetch_timestamp(*target)
            except (ConnectionRefusedError, ConnectionResetError, TimeoutError,
                    socket.timeout, OSError, ValueError, struct.error) as e:
                with self.lock:
                    self.neighbors.pop(node, None)
                self.log(f"node {node} at {target[0]}:{target[1]} unreachable ({e!r}): removed")
                self.print_table()
                continue
            with self.lock:
                info = self.neighbors.get(node)
                if info is not None:
                    info.delay = received - theirs
                    info.last_seen = time.monotonic()
            self.print_table()

    # ---- main -------------------------------------------------------------------
    def run(self):
        threads = [daemon_thread_builder(self.tcp_server_thread)]
        threads[0].start()
        if not self.server_ready.wait(5):
            print("sdss_peer: TCP server did not start", file=sys.stderr)
            return 1
        self.print_table()
        self.log(f"uuid {self.uuid}, tcp port {self.tcp_port}, broadcasting to "
                 f"{self.opts.broadcast_addr}:{self.opts.broadcast_port}, encoding {self.encoding}")
        for fn in (self.receive_broadcast_thread, self.send_broadcast_thread,
                   self.exchange_timestamps_thread):
            th = daemon_thread_builder(fn)
            th.start()
            threads.append(th)
        while self.running():
            self.stop.wait(0.1)
        self.stop.set()
        for th in threads:
            th.join(timeout=1)
        return 0


def non_loopback_interfaces():
    """Interfaces of this process's network namespace other than lo
    (if_nameindex asks the kernel; /sys/class/net may show another namespace)."""
    try:
        return sorted(name for _idx, name in socket.if_nameindex() if name != "lo")
    except OSError as e:
        return [f"(unknown: {e})"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broadcast-addr", default="<broadcast>",
                   help="where broadcasts go (default '<broadcast>' = 255.255.255.255; "
                        "only inside a private network namespace!)")
    p.add_argument("--broadcast-port", type=int, default=get_broadcast_port())
    p.add_argument("--bind", default="", help="local address for the TCP server and sender")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between broadcasts")
    p.add_argument("--encoding", choices=("double", "float"), default="double")
    p.add_argument("--timeout", type=float, default=2.0, help="TCP exchange timeout, seconds")
    p.add_argument("--run-for", type=float, default=0.0,
                   help="exit after this many seconds (0: until SIGTERM/SIGINT)")
    p.add_argument("--quiet", action="store_true", help="no log lines on stderr")
    p.add_argument("--allow-limited-broadcast-with-other-interfaces", dest="allow_bcast",
                   action="store_true",
                   help="send to 255.255.255.255 even when this network namespace has "
                        "interfaces other than lo (it then leaves the machine)")
    opts = p.parse_args(argv)
    if opts.broadcast_addr in ("<broadcast>", "255.255.255.255") and not opts.allow_bcast:
        others = non_loopback_interfaces()
        if others:
            print(f"sdss_peer: error: refusing to broadcast to 255.255.255.255: this network "
                  f"namespace has interfaces {others} besides lo (run inside `unshare -rn`, "
                  f"or pass --broadcast-addr 127.255.255.255 --bind 127.x.y.z)", file=sys.stderr)
            return 2
    peer = SdssPeer(opts)
    signal.signal(signal.SIGTERM, lambda *_: peer.stop.set())
    signal.signal(signal.SIGINT, lambda *_: peer.stop.set())
    return peer.run()


if __name__ == "__main__":
    sys.exit(main())
