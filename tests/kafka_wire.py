"""Hand-built Kafka requests over raw TCP, for tests that need bytes no well-behaved client sends.

Only what the tests need: request framing, ApiVersions, Produce (v3..v8, non-flexible) with magic-2
record batches, and a pure-Python CRC-32C.
"""

from __future__ import annotations

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


def record_batch(records, base_timestamp: int, corrupt_crc: bool = False) -> bytes:
    """records: list of (key, value, headers, timestamp). Offsets are deltas from 0, as producers send."""
    recs = b"".join(
        record(i, ts - base_timestamp, k, v, h) for i, (k, v, h, ts) in enumerate(records)
    )
    max_ts = max(ts for *_, ts in records)
    after_crc = (
        struct.pack(
            ">hiqqqhi",
            0,  # attributes: no compression, CreateTime, not transactional
            len(records) - 1,  # lastOffsetDelta
            base_timestamp,
            max_ts,
            -1,  # producerId
            -1,  # producerEpoch
            -1,  # baseSequence
        )
        + struct.pack(">i", len(records))
        + recs
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
) -> bytes:
    assert 3 <= version <= 8, "only the non-flexible Produce versions are built here"
    body = (
        string(None)  # transactional_id
        + struct.pack(">hi", acks, timeout_ms)
        + struct.pack(">i", 1)
        + string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">i", partition)
        + nbytes(batch)
    )
    return frame(header_v1(API_PRODUCE, version, correlation_id) + body)


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
