"""Hand-built Kafka requests over raw TCP, for tests that need bytes no well-behaved client sends.

Only what the tests need: request framing, ApiVersions, Produce (v3..v8, non-flexible) with magic-2
record batches (uncompressed or gzip), and a pure-Python CRC-32C.
"""

from __future__ import annotations

import gzip
import socket
import struct
import time

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_VERSIONS = 18

# --- CRC-32C (Castagnoli), reflected polynomial 0x82F63B78 ------------------------------------
_CRC32C_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# --- primitive encoders ------------------------------------------------------------------------
def varint(n: int) -> bytes:
    """Zig-zag varint (Kafka's record fields); works for 32- and 64-bit values."""
    z = (n << 1) ^ (n >> 63)
    z &= (1 << 64) - 1
    out = bytearray()
    while True:
        if z < 0x80:
            out.append(z)
            return bytes(out)
        out.append((z & 0x7F) | 0x80)
        z >>= 7


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def nbytes(b: bytes | None) -> bytes:
    if b is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(b)) + b


# --- record batches (magic 2) ------------------------------------------------------------------
def record(offset_delta: int, timestamp_delta: int, key: bytes | None, value: bytes | None, headers=()) -> bytes:
    body = bytearray()
    body += b"\x00"  # attributes
    body += varint(timestamp_delta)
    body += varint(offset_delta)
    for field in (key, value):
        if field is None:
            body += varint(-1)
        else:
            body += varint(len(field)) + field
    body += varint(len(headers))
    for hk, hv in headers:
        hkb = hk.encode()
        body += varint(len(hkb)) + hkb
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + bytes(body)


def record_batch(
    records,
    base_timestamp: int,
    corrupt_crc: bool = False,
    max_timestamp: int | None = None,
    compression: str = "none",
    producer: tuple[int, int, int] = (-1, -1, -1),
    transactional: bool = False,
    control: bool = False,
) -> bytes:
    """records: list of (key, value, headers, timestamp). Offsets are deltas from 0, as producers send.

    max_timestamp: what the header says, by default the records' largest (Sarama writes -1).
    compression: "none" or "gzip" (the records section as one gzip stream, as producers send it).
    producer: (producer id, epoch, base sequence); transactional, control: attribute bits 4 and 5."""
    recs = b"".join(
        record(i, ts - base_timestamp, k, v, h) for i, (k, v, h, ts) in enumerate(records)
    )
    if max_timestamp is None:
        max_timestamp = max(ts for *_, ts in records)
    codecs = {"none": (0, lambda b: b), "gzip": (1, gzip.compress)}
    attributes, compress = codecs[compression]
    attributes |= (0x10 if transactional else 0) | (0x20 if control else 0)
    producer_id, producer_epoch, base_sequence = producer
    after_crc = (
        struct.pack(
            ">hiqqqhi",
            attributes,  # the codec, CreateTime, the transactional and control bits
            len(records) - 1,  # lastOffsetDelta
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
        )
        + struct.pack(">i", len(records))
        + compress(recs)
    )
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    # partitionLeaderEpoch, magic, crc, then the rest
    after_length = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


# --- requests ----------------------------------------------------------------------------------
def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def header_v1(api_key: int, api_version: int, correlation_id: int, client_id: str | None = "skiff-tests") -> bytes:
    return struct.pack(">hhi", api_key, api_version, correlation_id) + string(client_id)


def header_v2(api_key: int, api_version: int, correlation_id: int, client_id: str | None = "skiff-tests") -> bytes:
    return header_v1(api_key, api_version, correlation_id, client_id) + uvarint(0)  # no tagged fields


def api_versions_request(version: int, correlation_id: int) -> bytes:
    if version >= 3:
        body = compact_string("skiff-tests") + compact_string("0.0.1") + uvarint(0)
        return frame(header_v2(API_VERSIONS, version, correlation_id) + body)
    return frame(header_v1(API_VERSIONS, version, correlation_id))


def produce_request(
    topic: str,
    partition: int,
    batch: bytes,
    correlation_id: int,
    version: int = 3,
    acks: int = -1,
    timeout_ms: int = 30000,
    transactional_id: str | None = None,
) -> bytes:
    assert 3 <= version <= 8, "only the non-flexible Produce versions are built here"
    body = (
        string(transactional_id)
        + struct.pack(">hi", acks, timeout_ms)
        + struct.pack(">i", 1)
        + string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">i", partition)
        + nbytes(batch)
    )
    return frame(header_v1(API_PRODUCE, version, correlation_id) + body)


def produce_request_v8(data, correlation_id: int, acks: int = -1, timeout_ms: int = 30000) -> bytes:
    """Produce v8 (the last non-flexible version, with KIP-467's record errors in its answer) of
    several partitions in one request: data = [(topic, [(partition, batch), ...]), ...]."""
    body = string(None) + struct.pack(">hi", acks, timeout_ms) + struct.pack(">i", len(data))
    for topic, partitions in data:
        body += string(topic) + struct.pack(">i", len(partitions))
        for partition, batch in partitions:
            body += struct.pack(">i", partition) + nbytes(batch)
    return frame(header_v1(API_PRODUCE, 8, correlation_id) + body)


def fetch_request(topic: str, partition: int, offset: int, correlation_id: int, max_bytes: int = 1 << 20) -> bytes:
    """Fetch v4 for one partition, answered at once (max_wait 0)."""
    body = (
        struct.pack(">iiiib", -1, 0, 1, max_bytes, 0)  # replica, max_wait, min_bytes, max_bytes, isolation
        + struct.pack(">i", 1)
        + string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">iqi", partition, offset, max_bytes)
    )
    return frame(header_v1(API_FETCH, 4, correlation_id) + body)


# --- responses ---------------------------------------------------------------------------------
class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"response truncated at byte {self.pos} (wanted {size} more of {len(self.data)})")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return s


def parse_api_versions_v0(payload: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """ApiVersions response, v0 shape: (correlation_id, error_code, {api_key: (min, max)})."""
    r = Reader(payload)
    correlation_id, error_code = r.take(">ih")
    apis = {}
    for _ in range(r.take(">i")):
        key, lo, hi = r.take(">hhh")
        apis[key] = (lo, hi)
    return correlation_id, error_code, apis


def parse_produce_response(payload: bytes, version: int) -> tuple[int, dict[tuple[str, int], tuple[int, int]]]:
    """Produce response v3..v8: (correlation_id, {(topic, partition): (error_code, base_offset)})."""
    r = Reader(payload)
    correlation_id = r.take(">i")
    out = {}
    for _ in range(r.take(">i")):
        name = r.string()
        for _ in range(r.take(">i")):
            index, error_code, base_offset, _log_append_time = r.take(">ihqq")
            if version >= 5:
                r.take(">q")  # log_start_offset
            if version >= 8:
                for _ in range(r.take(">i")):  # record_errors
                    r.take(">i")
                    r.string()
                r.string()  # error_message
            out[(name, index)] = (error_code, base_offset)
    return correlation_id, out


def parse_produce_response_v8(payload: bytes) -> tuple[int, dict[tuple[str, int], dict]]:
    """Produce response v8: (correlation_id, {(topic, partition): {error_code, base_offset,
    log_append_time_ms, log_start_offset, record_errors: [(batch_index, message)], error_message}})."""
    r = Reader(payload)
    correlation_id = r.take(">i")
    out = {}
    for _ in range(r.take(">i")):
        name = r.string()
        for _ in range(r.take(">i")):
            index, error_code, base_offset, log_append_time_ms, log_start_offset = r.take(">ihqqq")
            record_errors = [(r.take(">i"), r.string()) for _ in range(r.take(">i"))]
            out[(name, index)] = {
                "error_code": error_code,
                "base_offset": base_offset,
                "log_append_time_ms": log_append_time_ms,
                "log_start_offset": log_start_offset,
                "record_errors": record_errors,
                "error_message": r.string(),
            }
    r.take(">i")  # throttle_time_ms
    assert r.pos == len(r.data), "nothing after the response"
    return correlation_id, out


def parse_fetch_v4_records(payload: bytes) -> tuple[int, bytes]:
    """Fetch v4 response for one partition: (error_code, the record-batch bytes)."""
    r = Reader(payload)
    r.take(">ii")  # correlation_id, throttle_time_ms
    assert r.take(">i") == 1, "one topic"
    r.string()
    assert r.take(">i") == 1, "one partition"
    _partition, error_code, _hw, _lso = r.take(">ihqq")
    for _ in range(max(r.take(">i"), 0)):  # aborted transactions
        r.take(">qq")
    n = r.take(">i")
    return error_code, r.data[r.pos : r.pos + max(n, 0)]


def batch_attributes(records: bytes) -> list[int]:
    """The attributes of every complete v2 batch in `records` (bytes 21-22 of each batch)."""
    out, pos = [], 0
    while pos + 61 <= len(records):
        (length,) = struct.unpack_from(">i", records, pos + 8)
        if pos + 12 + length > len(records):
            break
        (attributes,) = struct.unpack_from(">h", records, pos + 21)
        out.append(attributes)
        pos += 12 + length
    return out


# --- a connection ------------------------------------------------------------------------------
class Conn:
    def __init__(self, bootstrap: str, timeout: float = 15.0):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.timeout = timeout

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._recv_exact(4))
        assert 0 <= size < 64 << 20, f"implausible response size {size}"
        return self._recv_exact(size)

    def roundtrip(self, request: bytes) -> bytes:
        self.send(request)
        return self.recv_frame()

    def wait_closed(self, timeout: float = 15.0) -> bytes:
        """Read until the peer closes the connection; returns whatever it sent first.

        Fails if the connection is still open after `timeout` seconds."""
        received = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"connection still open {timeout}s later (received {len(received)} bytes: {bytes(received[:64])!r})"
                )
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return bytes(received)
            except socket.timeout:
                continue
            if not chunk:
                return bytes(received)
            received += chunk


# --- consumer groups (non-flexible versions, request header v1, response header v0) ---------------
API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9
API_FIND_COORDINATOR = 10
API_JOIN_GROUP = 11
API_HEARTBEAT = 12
API_LEAVE_GROUP = 13
API_SYNC_GROUP = 14
API_DESCRIBE_GROUPS = 15
API_LIST_GROUPS = 16


def read_bytes(r: Reader) -> bytes | None:
    """A BYTES / NULLABLE_BYTES field (int32 length, -1 for null)."""
    n = r.take(">i")
    if n < 0:
        return None
    if r.pos + n > len(r.data):
        raise ValueError(f"response truncated at byte {r.pos} (bytes of length {n})")
    b = r.data[r.pos : r.pos + n]
    r.pos += n
    return b


def read_uvarint(r: Reader) -> int:
    shift, n = 0, 0
    while True:
        b = r.take(">B")
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n
        shift += 7


def read_compact_string(r: Reader) -> str | None:
    n = read_uvarint(r) - 1
    if n < 0:
        return None
    s = r.data[r.pos : r.pos + n].decode()
    r.pos += n
    return s


def skip_tagged_fields(r: Reader) -> None:
    for _ in range(read_uvarint(r)):
        read_uvarint(r)  # tag
        r.pos += read_uvarint(r)  # size, then the value


def join_group_v5_body(
    group_id: str,
    member_id: str = "",
    session_timeout_ms: int = 30000,
    rebalance_timeout_ms: int = 30000,
    protocol_type: str = "consumer",
    protocols=(("range", b"\x00\x00"),),
    group_instance_id: str | None = None,
) -> bytes:
    """JoinGroup v5 request body: group_id, session_timeout, rebalance_timeout, member_id,
    group_instance_id, protocol_type, protocols [(name, metadata)]."""
    body = string(group_id) + struct.pack(">ii", session_timeout_ms, rebalance_timeout_ms)
    body += string(member_id) + string(group_instance_id) + string(protocol_type)
    body += struct.pack(">i", len(protocols))
    for name, metadata in protocols:
        body += string(name) + nbytes(metadata)
    return body


def join_group_v5_request(group_id: str, correlation_id: int, **kw) -> bytes:
    return frame(header_v1(API_JOIN_GROUP, 5, correlation_id) + join_group_v5_body(group_id, **kw))


def parse_join_group_v5(payload: bytes) -> dict:
    r = Reader(payload)
    out = {"correlation_id": r.take(">i")}
    out["throttle_time_ms"], out["error_code"], out["generation_id"] = r.take(">ihi")
    out["protocol_name"] = r.string()
    out["leader"] = r.string()
    out["member_id"] = r.string()
    members = []
    for _ in range(r.take(">i")):
        members.append((r.string(), r.string(), read_bytes(r)))  # member_id, instance id, metadata
    out["members"] = members
    return out


def sync_group_v3_body(
    group_id: str, generation_id: int, member_id: str, assignments=(), group_instance_id=None
) -> bytes:
    body = string(group_id) + struct.pack(">i", generation_id) + string(member_id) + string(group_instance_id)
    body += struct.pack(">i", len(assignments))
    for mid, assignment in assignments:
        body += string(mid) + nbytes(assignment)
    return body


def sync_group_v3_request(
    group_id: str, generation_id: int, member_id: str, correlation_id: int, assignments=()
) -> bytes:
    body = sync_group_v3_body(group_id, generation_id, member_id, assignments)
    return frame(header_v1(API_SYNC_GROUP, 3, correlation_id) + body)


def parse_sync_group_v3(payload: bytes) -> tuple[int, int, bytes | None]:
    """(correlation_id, error_code, assignment)."""
    r = Reader(payload)
    correlation_id, _throttle, error_code = r.take(">iih")
    return correlation_id, error_code, read_bytes(r)


def heartbeat_v3_request(group_id: str, generation_id: int, member_id: str, correlation_id: int) -> bytes:
    body = string(group_id) + struct.pack(">i", generation_id) + string(member_id) + string(None)
    return frame(header_v1(API_HEARTBEAT, 3, correlation_id) + body)


def parse_heartbeat_v3(payload: bytes) -> tuple[int, int]:
    """(correlation_id, error_code)."""
    correlation_id, _throttle, error_code = Reader(payload).take(">iih")
    return correlation_id, error_code


def leave_group_v3_request(group_id: str, members, correlation_id: int) -> bytes:
    """members: [(member_id, group_instance_id)]."""
    body = string(group_id) + struct.pack(">i", len(members))
    for mid, instance in members:
        body += string(mid) + string(instance)
    return frame(header_v1(API_LEAVE_GROUP, 3, correlation_id) + body)


def parse_leave_group_v3(payload: bytes) -> tuple[int, int, list[tuple[str, str | None, int]]]:
    """(correlation_id, error_code, [(member_id, group_instance_id, error_code)])."""
    r = Reader(payload)
    correlation_id, _throttle, error_code = r.take(">iih")
    members = [(r.string(), r.string(), r.take(">h")) for _ in range(r.take(">i"))]
    return correlation_id, error_code, members


def offset_commit_v7_body(group_id: str, generation_id: int, member_id: str, offsets, group_instance_id=None) -> bytes:
    """offsets: {topic: [(partition, offset, metadata)]}; leader epoch -1."""
    body = string(group_id) + struct.pack(">i", generation_id) + string(member_id) + string(group_instance_id)
    body += struct.pack(">i", len(offsets))
    for topic, partitions in offsets.items():
        body += string(topic) + struct.pack(">i", len(partitions))
        for partition, offset, metadata in partitions:
            body += struct.pack(">iqi", partition, offset, -1) + string(metadata)
    return body


def offset_commit_v7_request(group_id: str, generation_id: int, member_id: str, offsets, correlation_id: int) -> bytes:
    body = offset_commit_v7_body(group_id, generation_id, member_id, offsets)
    return frame(header_v1(API_OFFSET_COMMIT, 7, correlation_id) + body)


def parse_offset_commit_v7(payload: bytes) -> tuple[int, dict[tuple[str, int], int]]:
    """(correlation_id, {(topic, partition): error_code})."""
    r = Reader(payload)
    correlation_id, _throttle = r.take(">ii")
    out = {}
    for _ in range(r.take(">i")):
        name = r.string()
        for _ in range(r.take(">i")):
            partition, error_code = r.take(">ih")
            out[(name, partition)] = error_code
    return correlation_id, out


def offset_fetch_v5_request(group_id: str, topics, correlation_id: int) -> bytes:
    """topics: {topic: [partition]}, or None for every committed partition."""
    body = string(group_id)
    if topics is None:
        body += struct.pack(">i", -1)
    else:
        body += struct.pack(">i", len(topics))
        for topic, partitions in topics.items():
            body += string(topic) + struct.pack(">i", len(partitions))
            body += b"".join(struct.pack(">i", p) for p in partitions)
    return frame(header_v1(API_OFFSET_FETCH, 5, correlation_id) + body)


def parse_offset_fetch_v5(payload: bytes) -> tuple[int, int, dict[tuple[str, int], tuple[int, int, str | None, int]]]:
    """(correlation_id, error_code, {(topic, partition): (offset, leader_epoch, metadata, error_code)})."""
    r = Reader(payload)
    correlation_id, _throttle = r.take(">ii")
    out = {}
    for _ in range(r.take(">i")):
        name = r.string()
        for _ in range(r.take(">i")):
            partition, offset, epoch = r.take(">iqi")
            metadata = r.string()
            out[(name, partition)] = (offset, epoch, metadata, r.take(">h"))
    return correlation_id, r.take(">h"), out


def describe_groups_v4_request(groups, correlation_id: int) -> bytes:
    body = struct.pack(">i", len(groups)) + b"".join(string(g) for g in groups) + b"\x00"  # no authorized ops
    return frame(header_v1(API_DESCRIBE_GROUPS, 4, correlation_id) + body)


def parse_describe_groups_v4(payload: bytes) -> tuple[int, list[dict]]:
    r = Reader(payload)
    correlation_id, _throttle = r.take(">ii")
    groups = []
    for _ in range(r.take(">i")):
        g = {"error_code": r.take(">h"), "group_id": r.string(), "group_state": r.string()}
        g["protocol_type"], g["protocol_data"] = r.string(), r.string()
        members = []
        for _ in range(r.take(">i")):
            m = {"member_id": r.string(), "group_instance_id": r.string(), "client_id": r.string()}
            m["client_host"], m["metadata"], m["assignment"] = r.string(), read_bytes(r), read_bytes(r)
            members.append(m)
        g["members"] = members
        g["authorized_operations"] = r.take(">i")
        groups.append(g)
    return correlation_id, groups


def list_groups_v3_request(correlation_id: int) -> bytes:
    """ListGroups v3 is flexible: request header v2, a body of just an empty tagged-fields section."""
    return frame(header_v2(API_LIST_GROUPS, 3, correlation_id) + uvarint(0))


def parse_list_groups_v3(payload: bytes) -> tuple[int, int, dict[str, str]]:
    """(correlation_id, error_code, {group_id: protocol_type}); response header v1."""
    r = Reader(payload)
    correlation_id = r.take(">i")
    skip_tagged_fields(r)
    _throttle, error_code = r.take(">ih")
    groups = {}
    for _ in range(read_uvarint(r) - 1):
        group_id = read_compact_string(r)
        groups[group_id] = read_compact_string(r)
        skip_tagged_fields(r)
    skip_tagged_fields(r)
    return correlation_id, error_code, groups


def metadata_v1_brokers(payload: bytes) -> tuple[int, list[tuple[int, str, int]]]:
    """Metadata v1 response: (correlation_id, [(node_id, host, port)])."""
    r = Reader(payload)
    correlation_id = r.take(">i")
    brokers = []
    for _ in range(r.take(">i")):
        node_id = r.take(">i")
        host = r.string()
        port = r.take(">i")
        r.string()  # rack
        brokers.append((node_id, host, port))
    return correlation_id, brokers


# --- CreatePartitions v1 (non-flexible) --------------------------------------------------------
API_CREATE_PARTITIONS = 37


def create_partitions_v1_request(topics, correlation_id: int, validate_only: bool = False) -> bytes:
    """`topics`: [(name, count, assignments or None)], assignments a list of broker id lists.
    Names may repeat: the request is sent as given."""
    body = struct.pack(">i", len(topics))
    for name, count, assignments in topics:
        body += string(name) + struct.pack(">i", count)
        if assignments is None:
            body += struct.pack(">i", -1)
        else:
            body += struct.pack(">i", len(assignments))
            for brokers in assignments:
                body += struct.pack(">i", len(brokers)) + b"".join(struct.pack(">i", b) for b in brokers)
    body += struct.pack(">i?", 30000, validate_only)
    return frame(header_v1(API_CREATE_PARTITIONS, 1, correlation_id) + body)


def parse_create_partitions_v1(payload: bytes) -> tuple[int, list[tuple[str, int, str | None]]]:
    """(correlation_id, [(name, error_code, error_message)]) in the response's order."""
    r = Reader(payload)
    correlation_id, _throttle = r.take(">ii")
    results = []
    for _ in range(r.take(">i")):
        name = r.string()
        code = r.take(">h")
        results.append((name, code, r.string()))
    return correlation_id, results


# --- ConsumerGroupHeartbeat v1 (KIP-848; flexible: request header v2, response header v1) -------
API_CONSUMER_GROUP_HEARTBEAT = 68


def consumer_group_heartbeat_v1_request(
    group_id: str,
    correlation_id: int,
    member_id: str = "",
    member_epoch: int = 0,
    instance_id: str | None = None,
    topics: list[str] | None = None,
    regex: str | None = None,
    rebalance_timeout_ms: int = 30000,
) -> bytes:
    names = uvarint(0) if topics is None else uvarint(len(topics) + 1) + b"".join(compact_string(t) for t in topics)
    body = (
        compact_string(group_id)
        + compact_string(member_id)
        + struct.pack(">i", member_epoch)
        + compact_string(instance_id)
        + compact_string(None)  # rack_id
        + struct.pack(">i", rebalance_timeout_ms)
        + names
        + compact_string(regex)
        + compact_string(None)  # server_assignor
        + (uvarint(1) if member_epoch == 0 else uvarint(0))  # topic_partitions: [] on join, else null
        + uvarint(0)  # tagged fields
    )
    return frame(header_v2(API_CONSUMER_GROUP_HEARTBEAT, 1, correlation_id) + body)


def parse_consumer_group_heartbeat_v1(payload: bytes) -> dict:
    """The fields before the assignment: correlation_id, error_code, error_message, member_id,
    member_epoch."""
    r = Reader(payload)
    correlation_id = r.take(">i")
    skip_tagged_fields(r)  # response header v1
    _throttle, error_code = r.take(">ih")
    error_message = read_compact_string(r)
    member_id = read_compact_string(r)
    member_epoch = r.take(">i")
    return {
        "correlation_id": correlation_id,
        "error_code": error_code,
        "error_message": error_message,
        "member_id": member_id,
        "member_epoch": member_epoch,
    }


# --- admin and describe APIs ------------------------------------------------------------------------
API_OFFSET_FOR_LEADER_EPOCH = 23
API_DESCRIBE_LOG_DIRS = 35
API_DESCRIBE_CLUSTER = 60


def offset_for_leader_epoch_request(
    topic: str, partitions, correlation_id: int, version: int = 2
) -> bytes:
    """OffsetForLeaderEpoch v2-4 for one topic; `partitions`: [(partition, current_leader_epoch, leader_epoch)]."""
    assert 2 <= version <= 4
    if version >= 4:
        body = struct.pack(">i", -1) + uvarint(2) + compact_string(topic) + uvarint(len(partitions) + 1)
        for p, current, epoch in partitions:
            body += struct.pack(">iii", p, current, epoch) + uvarint(0)
        body += uvarint(0) + uvarint(0)
        return frame(header_v2(API_OFFSET_FOR_LEADER_EPOCH, version, correlation_id) + body)
    body = struct.pack(">i", -1) if version == 3 else b""
    body += struct.pack(">i", 1) + string(topic) + struct.pack(">i", len(partitions))
    for p, current, epoch in partitions:
        body += struct.pack(">iii", p, current, epoch)
    return frame(header_v1(API_OFFSET_FOR_LEADER_EPOCH, version, correlation_id) + body)


def parse_offset_for_leader_epoch(payload: bytes, version: int = 2) -> dict[tuple[str, int], tuple[int, int, int]]:
    """{(topic, partition): (error_code, leader_epoch, end_offset)}."""
    r = Reader(payload)
    r.take(">i")  # correlation id
    flexible = version >= 4
    if flexible:
        skip_tagged_fields(r)
    r.take(">i")  # throttle
    out = {}
    topics = read_uvarint(r) - 1 if flexible else r.take(">i")
    for _ in range(topics):
        name = read_compact_string(r) if flexible else r.string()
        parts = read_uvarint(r) - 1 if flexible else r.take(">i")
        for _ in range(parts):
            code, p, epoch, end = r.take(">hiiq")
            out[(name, p)] = (code, epoch, end)
            if flexible:
                skip_tagged_fields(r)
        if flexible:
            skip_tagged_fields(r)
    return out


def describe_log_dirs_v1_request(topics, correlation_id: int) -> bytes:
    """DescribeLogDirs v1; `topics`: None for all, else [(topic, [partitions])]."""
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics))
        for name, parts in topics:
            body += string(name) + struct.pack(">i", len(parts)) + b"".join(struct.pack(">i", p) for p in parts)
    return frame(header_v1(API_DESCRIBE_LOG_DIRS, 1, correlation_id) + body)


def parse_describe_log_dirs_v1(payload: bytes) -> list[tuple[int, str, dict[tuple[str, int], tuple[int, int, bool]]]]:
    """[(error_code, log_dir, {(topic, partition): (size, offset_lag, is_future)})]."""
    r = Reader(payload)
    r.take(">i")  # correlation id
    r.take(">i")  # throttle
    results = []
    for _ in range(r.take(">i")):
        code = r.take(">h")
        log_dir = r.string()
        parts = {}
        for _ in range(r.take(">i")):
            name = r.string()
            for _ in range(r.take(">i")):
                p, size, lag, future = r.take(">iqq?")
                parts[(name, p)] = (size, lag, future)
        results.append((code, log_dir, parts))
    return results


def describe_cluster_request(correlation_id: int, version: int = 0, endpoint_type: int = 1, include_ops: bool = False) -> bytes:
    body = struct.pack(">?", include_ops)
    if version >= 1:
        body += struct.pack(">b", endpoint_type)
    return frame(header_v2(API_DESCRIBE_CLUSTER, version, correlation_id) + body + uvarint(0))


def parse_describe_cluster(payload: bytes, version: int = 0) -> dict:
    r = Reader(payload)
    r.take(">i")  # correlation id
    skip_tagged_fields(r)
    _throttle, code = r.take(">ih")
    out = {"error_code": code, "error_message": read_compact_string(r)}
    if version >= 1:
        out["endpoint_type"] = r.take(">b")
    out["cluster_id"] = read_compact_string(r)
    out["controller_id"] = r.take(">i")
    brokers = []
    for _ in range(read_uvarint(r) - 1):
        broker_id = r.take(">i")
        host = read_compact_string(r)
        port = r.take(">i")
        read_compact_string(r)  # rack
        skip_tagged_fields(r)
        brokers.append((broker_id, host, port))
    out["brokers"] = brokers
    out["cluster_authorized_operations"] = r.take(">i")
    return out


# --- transactions (KIP-98, KIP-447) -------------------------------------------------------------
API_INIT_PRODUCER_ID = 22
API_ADD_PARTITIONS_TO_TXN = 24
API_ADD_OFFSETS_TO_TXN = 25
API_END_TXN = 26
API_TXN_OFFSET_COMMIT = 28


def find_coordinator_v1_request(key: str, key_type: int, correlation_id: int) -> bytes:
    body = string(key) + struct.pack(">b", key_type)
    return frame(header_v1(API_FIND_COORDINATOR, 1, correlation_id) + body)


def parse_find_coordinator_v1(payload: bytes) -> dict:
    r = Reader(payload)
    out = {"correlation_id": r.take(">i")}
    _throttle, out["error_code"] = r.take(">ih")
    out["error_message"] = r.string()
    out["node_id"] = r.take(">i")
    out["host"] = r.string()
    out["port"] = r.take(">i")
    return out


def init_producer_id_v1_request(transactional_id: str | None, timeout_ms: int, correlation_id: int) -> bytes:
    body = string(transactional_id) + struct.pack(">i", timeout_ms)
    return frame(header_v1(API_INIT_PRODUCER_ID, 1, correlation_id) + body)


def parse_init_producer_id_v1(payload: bytes) -> tuple[int, int, int]:
    """(error_code, producer_id, producer_epoch)."""
    _correlation_id, _throttle, error_code, producer_id, epoch = Reader(payload).take(">iihqh")
    return error_code, producer_id, epoch


def add_partitions_to_txn_v1_request(
    transactional_id: str, producer_id: int, epoch: int, topics, correlation_id: int
) -> bytes:
    """topics: {topic: [partition]}."""
    body = string(transactional_id) + struct.pack(">qhi", producer_id, epoch, len(topics))
    for topic, partitions in topics.items():
        body += string(topic) + struct.pack(">i", len(partitions))
        body += b"".join(struct.pack(">i", p) for p in partitions)
    return frame(header_v1(API_ADD_PARTITIONS_TO_TXN, 1, correlation_id) + body)


def parse_add_partitions_to_txn_v1(payload: bytes) -> dict[tuple[str, int], int]:
    """{(topic, partition): error_code}."""
    r = Reader(payload)
    r.take(">ii")  # correlation_id, throttle_time_ms
    out = {}
    for _ in range(r.take(">i")):
        name = r.string()
        for _ in range(r.take(">i")):
            partition, error_code = r.take(">ih")
            out[(name, partition)] = error_code
    return out


def add_offsets_to_txn_v1_request(
    transactional_id: str, producer_id: int, epoch: int, group_id: str, correlation_id: int
) -> bytes:
    body = string(transactional_id) + struct.pack(">qh", producer_id, epoch) + string(group_id)
    return frame(header_v1(API_ADD_OFFSETS_TO_TXN, 1, correlation_id) + body)


def end_txn_v1_request(transactional_id: str, producer_id: int, epoch: int, committed: bool, correlation_id: int) -> bytes:
    body = string(transactional_id) + struct.pack(">qhb", producer_id, epoch, 1 if committed else 0)
    return frame(header_v1(API_END_TXN, 1, correlation_id) + body)


def parse_error_code_v1(payload: bytes) -> int:
    """AddOffsetsToTxn and EndTxn v1 answers: correlation id, throttle time, error code."""
    _correlation_id, _throttle, error_code = Reader(payload).take(">iih")
    return error_code


def txn_offset_commit_v3_request(
    transactional_id: str,
    group_id: str,
    producer_id: int,
    epoch: int,
    generation_id: int,
    member_id: str,
    offsets,
    correlation_id: int,
) -> bytes:
    """TxnOffsetCommit v3 (flexible, KIP-447's member and generation): offsets = {topic: [(partition, offset)]}."""
    body = compact_string(transactional_id) + compact_string(group_id)
    body += struct.pack(">qhi", producer_id, epoch, generation_id)
    body += compact_string(member_id) + compact_string(None)  # group_instance_id
    body += uvarint(len(offsets) + 1)
    for topic, partitions in offsets.items():
        body += compact_string(topic) + uvarint(len(partitions) + 1)
        for partition, offset in partitions:
            body += struct.pack(">iqi", partition, offset, -1) + compact_string(None) + uvarint(0)
        body += uvarint(0)
    body += uvarint(0)
    return frame(header_v2(API_TXN_OFFSET_COMMIT, 3, correlation_id) + body)


def parse_txn_offset_commit_v3(payload: bytes) -> dict[tuple[str, int], int]:
    """{(topic, partition): error_code}."""
    r = Reader(payload)
    r.take(">i")  # correlation_id
    skip_tagged_fields(r)  # response header v1
    r.take(">i")  # throttle_time_ms
    out = {}
    for _ in range(read_uvarint(r) - 1):
        name = read_compact_string(r)
        for _ in range(read_uvarint(r) - 1):
            partition, error_code = r.take(">ih")
            skip_tagged_fields(r)
            out[(name, partition)] = error_code
        skip_tagged_fields(r)
    return out


def offset_fetch_v7_request(group_id: str, topics, require_stable: bool, correlation_id: int) -> bytes:
    """OffsetFetch v7 (flexible, KIP-447's require_stable): topics = {topic: [partition]}."""
    body = compact_string(group_id) + uvarint(len(topics) + 1)
    for topic, partitions in topics.items():
        body += compact_string(topic) + uvarint(len(partitions) + 1)
        body += b"".join(struct.pack(">i", p) for p in partitions) + uvarint(0)
    body += struct.pack(">b", 1 if require_stable else 0) + uvarint(0)
    return frame(header_v2(API_OFFSET_FETCH, 7, correlation_id) + body)


def parse_offset_fetch_v7(payload: bytes) -> tuple[int, dict[tuple[str, int], tuple[int, int]]]:
    """(error_code, {(topic, partition): (offset, error_code)})."""
    r = Reader(payload)
    r.take(">i")  # correlation_id
    skip_tagged_fields(r)
    r.take(">i")  # throttle_time_ms
    out = {}
    for _ in range(read_uvarint(r) - 1):
        name = read_compact_string(r)
        for _ in range(read_uvarint(r) - 1):
            partition, offset, _epoch = r.take(">iqi")
            read_compact_string(r)  # metadata
            out[(name, partition)] = (offset, r.take(">h"))
            skip_tagged_fields(r)
        skip_tagged_fields(r)
    return r.take(">h"), out


# --- DescribeTransactions v0, ListTransactions v0-1 (flexible) ----------------------------------
API_DESCRIBE_TRANSACTIONS = 65
API_LIST_TRANSACTIONS = 66


def _compact_array(items: list[bytes]) -> bytes:
    return uvarint(len(items) + 1) + b"".join(items)


def describe_transactions_request(ids, correlation_id: int) -> bytes:
    body = _compact_array([compact_string(i) for i in ids]) + b"\x00"
    return frame(header_v2(API_DESCRIBE_TRANSACTIONS, 0, correlation_id) + body)


def parse_describe_transactions(payload: bytes) -> list[dict]:
    r = Reader(payload)
    r.take(">i")  # correlation id
    skip_tagged_fields(r)  # response header v1
    r.take(">i")  # throttle
    out = []
    for _ in range(read_uvarint(r) - 1):
        t = {"error_code": r.take(">h"), "transactional_id": read_compact_string(r), "state": read_compact_string(r),
             "timeout_ms": r.take(">i"), "start_ms": r.take(">q"), "producer_id": r.take(">q"), "epoch": r.take(">h")}
        topics = {}
        for _ in range(read_uvarint(r) - 1):
            name = read_compact_string(r)
            topics[name] = [r.take(">i") for _ in range(read_uvarint(r) - 1)]
            skip_tagged_fields(r)
        t["topics"] = topics
        skip_tagged_fields(r)
        out.append(t)
    skip_tagged_fields(r)
    return out


def list_transactions_request(correlation_id: int, states=(), producer_ids=(), duration_ms: int = -1,
                              version: int = 1) -> bytes:
    body = _compact_array([compact_string(s) for s in states])
    body += _compact_array([struct.pack(">q", p) for p in producer_ids])
    if version >= 1:
        body += struct.pack(">q", duration_ms)
    body += b"\x00"
    return frame(header_v2(API_LIST_TRANSACTIONS, version, correlation_id) + body)


def parse_list_transactions(payload: bytes) -> tuple[int, list[str], list[tuple[str, int, str]]]:
    """(error_code, unknown_state_filters, [(transactional_id, producer_id, state)])."""
    r = Reader(payload)
    r.take(">i")  # correlation id
    skip_tagged_fields(r)  # response header v1
    r.take(">i")  # throttle
    error = r.take(">h")
    unknown = [read_compact_string(r) for _ in range(read_uvarint(r) - 1)]
    states = []
    for _ in range(read_uvarint(r) - 1):
        states.append((read_compact_string(r), r.take(">q"), read_compact_string(r)))
        skip_tagged_fields(r)
    skip_tagged_fields(r)
    return error, unknown, states
