#!/usr/bin/env python3
"""A member that lies about what it received: its acknowledgements are not believed beyond what
it was sent, and every node keeps the same record of the commands.

The member joins the proper way: it answers at the address it gives, under its own id, and
sends heartbeats. It is written here from src/proto/peer.proto (peer_wire.py). The cluster runs
in clear text because what is tested lies past the transport: with a cluster key the same peer
would hold the key (cluster_key_test shows such a peer gets past the handshake).

Asserts:
  * three agents (--voters 3 --standbys 0) form a cluster; the fake member joins through one
    of them, is added as a spare and ranked 3 on every node;
  * a command from rank 0 reaches ranks 1-3; the fake acknowledges it as "everything through
    2^62"; the command is delivered to all three;
  * the next command: the fake takes the delivery and answers nothing. Within 6 s the
    command is delivered to ranks 1-2 and still pending for the fake on every node (an ack
    beyond what was sent must not mark later commands delivered);
  * once the fake acknowledges that command truly, it is delivered to all three, and every
    node holds the same record of both commands.
"""
import os
import secrets
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import peer_wire as w  # noqa: E402

API_PORT, RAFT_PORT, PEER_PORT = 7400, 7401, 7402
BOUND_S = 20.0


class FakeMember:
    """Listens on the peer port of `addr`: answers Hello and time probes, takes command
    deliveries and acknowledges them as `mode` says: "overreach" (through 2^62), "silent" (no
    answer) or "honest" (through the last command sent)."""

    def __init__(self, addr):
        self.addr = addr
        self.id = secrets.token_hex(16)
        self.mode = "overreach"
        self.received = []  # command ids, in the order delivered
        self.lock = threading.Lock()
        self.stopping = False
        self.server = socket.create_server((addr, PEER_PORT))
        self.server.settimeout(0.5)
        self.links = []
        threading.Thread(target=self._accept, daemon=True).start()

    def record(self):
        return w.member_record(self.id, "liar", self.addr, API_PORT, PEER_PORT, RAFT_PORT)

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.links.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            while (data := w.read_frame(conn)) is not None:
                answer = self._answer(w.decode(data))
                if answer is not None:
                    conn.sendall(w.frame(answer))
        except (OSError, ValueError):
            pass
        conn.close()

    def _answer(self, message):
        request_id = message.get(w.REQUEST_ID, [0])[0]
        reply = w.field(w.REQUEST_ID, request_id) if request_id else b""
        if w.HELLO in message:
            return reply + w.field(w.HELLO, w.field(1, 1) + w.field(2, self.id) +
                                   w.field(3, "liar") + w.field(4, API_PORT) +
                                   w.field(5, PEER_PORT) + w.field(6, RAFT_PORT))
        if w.TIME_REQUEST in message:
            probe = w.decode(message[w.TIME_REQUEST][0])
            now = time.time_ns()
            return reply + w.field(w.TIME_RESPONSE, w.field(1, probe.get(1, [0])[0]) +
                                   w.fixed64(2, probe.get(2, [0])[0]) + w.fixed64(3, now) +
                                   w.fixed64(4, now))
        if w.COMMAND_DELIVERY in message:
            items = w.decode(message[w.COMMAND_DELIVERY][0]).get(1, [])
            ids = [w.decode(item)[1][0] for item in items]
            with self.lock:
                self.received.extend(ids)
                mode = self.mode
            if mode == "silent":
                return None
            through = 1 << 62 if mode == "overreach" else max(ids)
            return reply + w.field(w.COMMAND_DELIVERY_ACK, w.field(1, through))
        return None  # entry feeds and the like: a spare that keeps quiet

    def join(self, via):
        """Asks `via` to let it join; returns (ok, error)."""
        with socket.create_connection((via.addr, PEER_PORT), timeout=10) as conn:
            request = w.field(w.REQUEST_ID, 1) + w.field(w.JOIN_REQUEST, w.field(1, self.record()))
            conn.sendall(w.frame(request))
            while (data := w.read_frame(conn)) is not None:
                message = w.decode(data)
                if w.JOIN_RESPONSE in message:
                    answer = w.decode(message[w.JOIN_RESPONSE][0])
                    return bool(answer.get(1, [0])[0]), answer.get(2, [b""])[0].decode()
        return False, "connection closed"

    def keep_alive(self, agents):
        """Heartbeats to every agent (only the leader's count) every 0.3 s, as members send."""
        def run():
            links = {}
            while not self.stopping:
                for a in agents:
                    try:
                        if a.name not in links:
                            links[a.name] = socket.create_connection((a.addr, PEER_PORT), 2)
                        links[a.name].sendall(
                            w.frame(w.field(w.HEARTBEAT, w.field(1, self.id))))
                    except OSError:
                        links.pop(a.name, None)
                time.sleep(0.3)
        threading.Thread(target=run, daemon=True).start()

    def stop(self):
        self.stopping = True
        self.server.close()


def recent(agent, command_id):
    doc = agent.get("/v1/commands/recent?limit=50")
    return next((c for c in doc.get("commands", []) if c.get("id") == command_id), None)


def states(record):
    return {r.get("id"): r.get("state") for r in record["recipients"]} if record else None


def main():
    args = h.parse_args(__doc__)
    addrs = h.pick_addresses(4)
    bport = h.free_udp_port()
    fake = FakeMember(addrs[3])
    try:
        agents = h.start_cluster_agents(args.synod, addrs[:3], bport, [
            "--bootstrap-expect", "3", "--voters", "3", "--standbys", "0"])
        h.wait_converged(agents, BOUND_S, members=3)
        fake.keep_alive(agents)
        ok, error = fake.join(agents[1])
        h.check(ok, f"the fake member's join was refused: {error}")
        ranked = h.wait_ranks(agents, lambda es: len(es) == 4 and es[3].get("id") == fake.id,
                              BOUND_S, "the fake member ranked 3")
        by_id = {a.id: a for a in agents}
        order = [by_id[e["id"]] for e in ranked[:3]]
        h.log(f"the fake member joined as a spare and is ranked 3 after "
              f"{', '.join(a.name for a in order)}")

        first = h.post_command_ok(order[0], "START_TRANSMIT")
        want = {order[1].id: "delivered", order[2].id: "delivered", fake.id: "delivered"}
        h.check(states(first) == want, f"first command: {states(first)}, want {want}")
        h.check(first["id"] in fake.received, f"the fake never got command {first['id']}")
        h.log(f"command {first['id']} delivered; the fake acknowledged it as through 2^62")

        with fake.lock:
            fake.mode = "silent"
        result = {}
        sender = threading.Thread(
            target=lambda: result.update(r=h.post_command(order[0], "STOP_TRANSMIT", 60)))
        sender.start()
        second = {}

        def second_sent():
            second["record"] = recent(order[0], first["id"] + 1)
            return second["record"] and (first["id"] + 1 in fake.received or
                                         states(second["record"])[fake.id] == "delivered")

        h.wait_for(second_sent, BOUND_S, what="the second command to reach the fake")
        h.check(first["id"] + 1 in fake.received,
                f"the second command was marked delivered to the fake, which never got it "
                f"(the ack through 2^62 was believed): {second['record']}")
        time.sleep(6.0)
        want = {order[1].id: "delivered", order[2].id: "delivered", fake.id: "pending"}
        for a in agents:
            got = states(recent(a, first["id"] + 1))
            h.check(got == want, f"{a.name}: the second command's recipients {got}, want {want} "
                                 f"(the ack through 2^62 was believed?)")
        h.check(sender.is_alive() or result["r"].status != 200 or
                states(result["r"].json()).get(fake.id) != "delivered",
                f"the sender was told the silent fake received the second command: {result}")
        h.log(f"command {first['id'] + 1}: delivered to ranks 1-2, still pending for the silent "
              f"fake on every node after 6 s")

        with fake.lock:
            fake.mode = "honest"
        sender.join(BOUND_S + 40)
        h.check(not sender.is_alive() and result["r"].status == 200,
                f"the second command's sender got no answer: {result}")
        want = {order[1].id: "delivered", order[2].id: "delivered", fake.id: "delivered"}
        h.check(states(result["r"].json()) == want,
                f"the second command once acknowledged: {states(result['r'].json())}")
        views = {a.name: [recent(a, i) for i in (first["id"], first["id"] + 1)] for a in agents}
        h.check(len({repr(v) for v in views.values()}) == 1,
                f"the nodes disagree on the two commands: {views}")
        h.log("once truly acknowledged it is delivered, and every node has the same records")
    finally:
        fake.stop()


if __name__ == "__main__":
    h.run_main(main)
