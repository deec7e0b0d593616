"""The native peer protocol (src/proto/peer.proto), written from the .proto text for tests
that play a peer: a frame is a 4-byte big-endian length and one PeerMessage; messages are
protobuf, encoded and decoded here by hand (no generated code, no protobuf package needed)."""
import struct

# PeerMessage fields used by the tests.
REQUEST_ID = 15
HELLO, TIME_REQUEST, TIME_RESPONSE = 1, 2, 3
JOIN_REQUEST, JOIN_RESPONSE = 6, 7
HEARTBEAT = 10
COMMAND_DELIVERY, COMMAND_DELIVERY_ACK = 22, 23
ENTRY_FEED = 24


def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def field(number, value):
    """One protobuf field: an int (varint) or bytes/str (length-delimited)."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    value = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(value)) + value


def fixed64(number, value):
    """An sfixed64 field."""
    return varint(number << 3 | 1) + struct.pack("<q", value)


def decode(data):
    """{field number: [values]}: ints for varints and fixed64, bytes for length-delimited
    fields (decode those again for a nested message). Raises ValueError on a bad encoding."""
    fields, i = {}, 0

    def read_varint():
        nonlocal i
        n, shift = 0, 0
        while True:
            if i >= len(data) or shift > 63:
                raise ValueError("truncated varint")
            byte = data[i]
            i += 1
            n |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return n

    while i < len(data):
        key = read_varint()
        number, kind = key >> 3, key & 7
        if kind == 0:
            value = read_varint()
        elif kind == 1:
            value, i = struct.unpack_from("<q", data, i)[0], i + 8
        elif kind == 2:
            length = read_varint()
            value, i = data[i:i + length], i + length
        elif kind == 5:
            value, i = struct.unpack_from("<i", data, i)[0], i + 4
        else:
            raise ValueError(f"wire type {kind}")
        fields.setdefault(number, []).append(value)
    return fields


def frame(message):
    return struct.pack(">I", len(message)) + message


def read_frame(sock):
    """The next PeerMessage's bytes from a socket, or None once it is closed."""
    header = _read_exactly(sock, 4)
    if header is None:
        return None
    return _read_exactly(sock, struct.unpack(">I", header)[0])


def _read_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def member_record(node_id, name, ip, api_port, peer_port, raft_port):
    """A MemberRecord (consensus.proto) as a joiner sends it; raft_id as RaftIdFromNodeId."""
    return (field(1, node_id) + field(2, name) + field(3, ip) + field(4, api_port) +
            field(5, peer_port) + field(6, raft_port) + field(7, int(node_id[:16], 16) or 1))
