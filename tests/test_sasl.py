"""SASL authentication (issue 14): SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN on a SASL_PLAINTEXT
listener, with real clients (confluent-kafka, kafka-python, kcat); credentials kept in the
metastore, managed with AlterUserScramCredentials / DescribeUserScramCredentials. A wrong password,
an unknown user and a request before authenticating each fail cleanly, and nothing else is
affected."""

import shutil
import socket
import struct
import subprocess
import time
import uuid

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

import clients
import kafka_wire as kw

ADMIN = ("admin", "admin-secret")
MECHANISMS = "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"


@pytest.fixture(scope="module")
def sasl_broker(shared_broker_factory):
    return shared_broker_factory.start(
        "--sasl-enabled-mechanisms",
        MECHANISMS,
        "--scram-user",
        "%s:%s" % ADMIN,
        # Authorization is tests/test_acls.py's business: here, everyone may do everything.
        "--allow-everyone-if-no-acl-found",
        "true",
        name="sasl",
        protocol="SASL_PLAINTEXT",
    )


def conf(broker, mechanism: str, user: str, password: str) -> dict:
    return {
        "bootstrap.servers": broker.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


def round_trip(client_conf: dict, topic: str, n: int = 20) -> None:
    p = clients.producer(client_conf["bootstrap.servers"], **client_conf)
    d = clients.Deliveries()
    for i in range(n):
        clients.produce(p, topic, d, i, value=b"%s-%d" % (topic.encode(), i), partition=0)
    clients.flush(p, d, n, timeout=60)
    assert not d.failed, d.failed
    got = clients.read_partitions(client_conf["bootstrap.servers"], topic, {0: n}, timeout=60, **client_conf)
    assert [m.value() for m in got[0]] == [b"%s-%d" % (topic.encode(), i) for i in range(n)]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_confluent_kafka_produces_and_consumes_with_each_mechanism(sasl_broker, mechanism):
    round_trip(conf(sasl_broker, mechanism, *ADMIN), f"sasl-{mechanism.lower()}-{uuid.uuid4().hex[:6]}")
    assert sasl_broker.metric("skiff_authentications_total", result="succeeded") >= 1


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
@pytest.mark.parametrize("user,password", [("admin", "wrong"), ("nobody", "admin-secret")])
def test_a_wrong_password_or_an_unknown_user_fails_the_same_way(sasl_broker, mechanism, user, password):
    failed_before = sasl_broker.metric("skiff_authentications_total", result="failed")
    errors = []
    p = Producer({**conf(sasl_broker, mechanism, user, password), "error_cb": errors.append})
    p.produce("never", b"x")
    p.flush(5)
    assert any(e.code() == -169 or "Authentication failed" in e.str() for e in errors), errors  # _AUTHENTICATION
    # The broker says only that authentication failed, never which part.
    assert all("password" not in e.str().lower() and "unknown" not in e.str().lower() for e in errors), errors
    assert sasl_broker.metric("skiff_authentications_total", result="failed") > failed_before


def test_users_are_managed_with_the_admin_api(sasl_broker):
    admin = AdminClient(conf(sasl_broker, "SCRAM-SHA-512", *ADMIN))
    user = f"u{uuid.uuid4().hex[:8]}"
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    futures = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(user, info, b"pw-1")])
    futures[user].result(30)
    described = admin.describe_user_scram_credentials([user])[user].result(30)
    infos = described.scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_512, 8192)]
    # The new user can authenticate with its password, and only with the mechanism it has.
    round_trip(conf(sasl_broker, "SCRAM-SHA-512", user, "pw-1"), f"sasl-new-user-{user}")
    round_trip(conf(sasl_broker, "PLAIN", user, "pw-1"), f"sasl-new-user-plain-{user}")
    errors = []
    p = Producer({**conf(sasl_broker, "SCRAM-SHA-256", user, "pw-1"), "error_cb": errors.append})
    p.produce("never", b"x")
    p.flush(5)
    assert errors, "SCRAM-SHA-256 has no credential for this user"
    # Too few iterations is refused, and deleting what is not there is RESOURCE_NOT_FOUND.
    weak = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 1000)
    futures = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(user, weak, b"pw")])
    with pytest.raises(KafkaException, match="(?i)iterations"):
        futures[user].result(30)
    futures = admin.alter_user_scram_credentials([UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_256)])
    with pytest.raises(KafkaException, match="(?i)not.?found|does not exist"):
        futures[user].result(30)
    # Deleted, the user can no longer authenticate.
    futures = admin.alter_user_scram_credentials([UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)])
    futures[user].result(30)
    errors = []
    p = Producer({**conf(sasl_broker, "SCRAM-SHA-512", user, "pw-1"), "error_cb": errors.append})
    p.produce("never", b"x")
    p.flush(5)
    assert errors, "a deleted user authenticated"


def test_kafka_python_authenticates_with_scram(sasl_broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = f"sasl-kafka-python-{uuid.uuid4().hex[:6]}"
    common = dict(
        bootstrap_servers=sasl_broker.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=ADMIN[0],
        sasl_plain_password=ADMIN[1],
    )
    producer = KafkaProducer(**common)
    for i in range(10):
        producer.send(topic, b"kp-%d" % i, partition=0).get(timeout=60)
    producer.close()
    consumer = KafkaConsumer(**common, consumer_timeout_ms=10000, auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, 0)])
    got = [m.value for m in consumer]
    consumer.close()
    assert got[:10] == [b"kp-%d" % i for i in range(10)]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_kcat_authenticates_with_plain_and_scram(sasl_broker):
    for mechanism in ["PLAIN", "SCRAM-SHA-256"]:
        topic = f"sasl-kcat-{mechanism.lower()}-{uuid.uuid4().hex[:6]}"
        auth = [
            "-X", "security.protocol=SASL_PLAINTEXT",
            "-X", f"sasl.mechanisms={mechanism}",
            "-X", f"sasl.username={ADMIN[0]}",
            "-X", f"sasl.password={ADMIN[1]}",
        ]
        subprocess.run(
            ["kcat", "-b", sasl_broker.bootstrap, *auth, "-P", "-t", topic, "-p", "0"],
            input=b"a\nb\nc\n", check=True, timeout=60,
        )
        out = subprocess.run(
            ["kcat", "-b", sasl_broker.bootstrap, *auth, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "3", "-e"],
            capture_output=True, check=True, timeout=60,
        )
        assert out.stdout.split() == [b"a", b"b", b"c"], out


def _raw(broker) -> socket.socket:
    host, port = broker.bootstrap.split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_requests_before_authentication_close_the_connection(sasl_broker):
    # ApiVersions is served...
    with kw.Conn(sasl_broker.bootstrap) as c:
        corr, err, apis = kw.parse_api_versions_v0(c.roundtrip(kw.api_versions_request(0, 3)))
        assert (corr, err) == (3, 0) and 17 in apis and 36 in apis  # SaslHandshake, SaslAuthenticate
    # ...a Metadata request is not: the connection closes without an answer.
    s = _raw(sasl_broker)
    body = kw.header_v1(kw.API_METADATA, 1, 9) + struct.pack(">i", -1)
    s.sendall(kw.frame(body))
    assert s.recv(4) == b"", "answered a request before authentication"
    s.close()
    # So does a frame over sasl.server.max.receive.size, before it is read.
    s = _raw(sasl_broker)
    s.sendall(struct.pack(">i", 1 << 20) + b"\x00\x12")
    assert s.recv(4) == b""
    s.close()


def test_malformed_sasl_messages_fail_cleanly(sasl_broker):
    def handshake(s, mechanism: str) -> None:
        body = kw.header_v1(17, 1, 1) + kw.string(mechanism)
        s.sendall(kw.frame(body))
        (size,) = struct.unpack(">i", s.recv(4))
        resp = b""
        while len(resp) < size:
            resp += s.recv(size - len(resp))
        assert struct.unpack(">h", resp[4:6])[0] == 0, resp

    def authenticate(s, token: bytes) -> int:
        body = kw.header_v1(36, 1, 2) + struct.pack(">i", len(token)) + token
        s.sendall(kw.frame(body))
        head = s.recv(4)
        if head == b"":
            return -1
        (size,) = struct.unpack(">i", head)
        resp = b""
        while len(resp) < size:
            resp += s.recv(size - len(resp))
        return struct.unpack(">h", resp[4:6])[0]

    for token in [b"", b"\xff\xfe\x00", b"n,,n=admin", b"p=tls,,n=admin,r=x", b"x" * 5000]:
        s = _raw(sasl_broker)
        handshake(s, "SCRAM-SHA-512")
        assert authenticate(s, token) == 58, token  # SASL_AUTHENTICATION_FAILED
        assert s.recv(4) == b"", "the connection stays open after a failed authentication"
        s.close()
    # SCRAM with a nonce that is not the server's.
    s = _raw(sasl_broker)
    handshake(s, "SCRAM-SHA-512")
    assert authenticate(s, b"n,,n=admin,r=clientnonce") == 0
    assert authenticate(s, b"c=biws,r=someoneelsesnonce,p=AAAA") == 58
    s.close()
    # An unknown mechanism: UNSUPPORTED_SASL_MECHANISM, with the enabled ones listed.
    s = _raw(sasl_broker)
    s.sendall(kw.frame(kw.header_v1(17, 1, 1) + kw.string("GSSAPI")))
    (size,) = struct.unpack(">i", s.recv(4))
    resp = s.recv(size)
    assert struct.unpack(">h", resp[4:6])[0] == 33
    s.close()
    round_trip(conf(sasl_broker, "SCRAM-SHA-512", *ADMIN), f"sasl-after-junk-{uuid.uuid4().hex[:6]}")


def test_the_v0_handshake_exchanges_bare_tokens(sasl_broker):
    """KIP-43's first form: after SaslHandshake v0 the SASL tokens travel as bare frames."""
    for password, ok in [(ADMIN[1], True), ("wrong", False)]:
        s = _raw(sasl_broker)
        s.sendall(kw.frame(kw.header_v1(17, 0, 1) + kw.string("PLAIN")))
        (size,) = struct.unpack(">i", s.recv(4))
        resp = s.recv(size)
        assert struct.unpack(">h", resp[4:6])[0] == 0
        token = b"\x00admin\x00" + password.encode()
        s.sendall(struct.pack(">i", len(token)) + token)
        if not ok:
            assert s.recv(4) == b"", "a wrong password was answered"
            s.close()
            continue
        assert s.recv(4) == struct.pack(">i", 0), "PLAIN's empty server token"
        # Authenticated: requests are served again.
        s.sendall(kw.api_versions_request(0, 5))
        (size,) = struct.unpack(">i", s.recv(4))
        body = b""
        while len(body) < size:
            body += s.recv(size - len(body))
        assert struct.unpack(">ih", body[:6]) == (5, 0)
        s.close()


def test_sessions_expire_and_clients_re_authenticate(broker_factory):
    """KIP-368: with connections.max.reauth.ms, librdkafka re-authenticates before its session
    runs out and keeps producing; a connection that does not is closed at its next request."""
    broker = broker_factory.start(
        "--sasl-enabled-mechanisms", "PLAIN",
        "--scram-user", "%s:%s" % ADMIN,
        "--allow-everyone-if-no-acl-found", "true",
        "--connections-max-reauth-ms", "2000",
        protocol="SASL_PLAINTEXT",
    )
    topic = f"sasl-reauth-{uuid.uuid4().hex[:6]}"
    c = conf(broker, "PLAIN", *ADMIN)
    p = clients.producer(broker.bootstrap, **c)
    d = clients.Deliveries()
    n = 0
    deadline = time.monotonic() + 7
    while time.monotonic() < deadline:
        clients.produce(p, topic, d, n, value=b"%d" % n, partition=0)
        n += 1
        p.poll(0.1)
    clients.flush(p, d, n, timeout=60)
    assert not d.failed, d.failed[:3]
    # Each of the producer's connections authenticated more than once.
    assert broker.metric("skiff_authentications_total", result="succeeded") >= 4

    # A raw connection that authenticates once and then waits past its session is closed.
    s = _raw(broker)
    s.sendall(kw.frame(kw.header_v1(17, 1, 1) + kw.string("PLAIN")))
    (size,) = struct.unpack(">i", s.recv(4))
    s.recv(size)
    token = b"\x00admin\x00" + ADMIN[1].encode()
    s.sendall(kw.frame(kw.header_v1(36, 1, 2) + struct.pack(">i", len(token)) + token))
    (size,) = struct.unpack(">i", s.recv(4))
    body = s.recv(size)
    assert struct.unpack(">h", body[4:6])[0] == 0
    time.sleep(2.5)
    s.sendall(kw.frame(kw.header_v1(kw.API_METADATA, 1, 9) + struct.pack(">i", -1)))
    assert s.recv(4) == b"", "served a request after the session expired"
    s.close()
