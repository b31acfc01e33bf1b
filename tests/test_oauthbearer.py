"""OAUTHBEARER (KIP-255, issue 14): JWTs signed by a test key, checked against a JWKS file
(signature, expiry, issuer, audience, the principal claim), over SASL_SSL, with confluent-kafka
and kafka-python. An expired token, a token for another audience and one signed by a key the file
does not hold each fail cleanly; a key added to the file is picked up without a restart."""

import base64
import json
import struct
import time
import uuid

import pytest
from confluent_kafka import Producer
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import certs
import clients
import kafka_wire as kw

ISSUER = "https://idp.skiff.test"
AUDIENCE = "skiff"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SigningKey:
    """An RSA key the tests' identity provider signs with (RS256)."""

    def __init__(self, kid: str):
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": b64url(n), "e": b64url(e)}

    def token(self, sub: str = "alice", lifetime: float = 600, **claims) -> str:
        now = int(time.time())
        payload = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": int(now + lifetime), **claims}
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())).encode()
        signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + b64url(signature)


def write_jwks(path, *keys: SigningKey) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": [k.jwk() for k in keys]}))
    tmp.replace(path)


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    d = tmp_path_factory.mktemp("oauth")
    ca = certs.ca()
    key = SigningKey("key-1")
    jwks = d / "jwks.json"
    write_jwks(jwks, key)
    return {
        "dir": d,
        "ca": ca.write(d, "ca")["crt"],
        "server": certs.issue(ca, "localhost", server=True).write(d, "server", [ca])["pem"],
        "jwks": jwks,
        "key": key,
    }


@pytest.fixture(scope="module")
def broker(shared_broker_factory, idp):
    return shared_broker_factory.start(
        "--ssl-keystore-location", str(idp["server"]),
        "--sasl-enabled-mechanisms", "OAUTHBEARER",
        "--sasl-oauthbearer-jwks-endpoint-url", f"file://{idp['jwks']}",
        "--sasl-oauthbearer-expected-issuer", ISSUER,
        "--sasl-oauthbearer-expected-audience", AUDIENCE,
        "--sasl-oauthbearer-clock-skew-seconds", "0",
        "--allow-everyone-if-no-acl-found", "true",
        name="oauth",
        protocol="SASL_SSL",
    )


def conf(broker, idp, make_token, **extra) -> dict:
    def oauth_cb(_config):
        token = make_token()
        return token, time.time() + 600

    return {
        "bootstrap.servers": broker.bootstrap,
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(idp["ca"]),
        "sasl.mechanism": "OAUTHBEARER",
        "oauth_cb": oauth_cb,
        **extra,
    }


def test_confluent_kafka_produces_and_consumes_with_a_signed_token(broker, idp):
    topic = f"oauth-{uuid.uuid4().hex[:6]}"
    c = conf(broker, idp, lambda: idp["key"].token("alice"))
    p = clients.producer(broker.bootstrap, **c)
    d = clients.Deliveries()
    for i in range(20):
        clients.produce(p, topic, d, i, value=b"o-%d" % i, partition=0)
    clients.flush(p, d, 20, timeout=60)
    assert not d.failed, d.failed
    got = clients.read_partitions(broker.bootstrap, topic, {0: 20}, timeout=60, **c)
    assert [m.value() for m in got[0]] == [b"o-%d" % i for i in range(20)]
    assert "principal=User:alice" in broker.log_text()


def test_kafka_python_authenticates_with_a_signed_token(broker, idp):
    import ssl

    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        def token(self):
            return idp["key"].token("bob")

    ctx = ssl.create_default_context(cafile=str(idp["ca"]))
    topic = f"oauth-kp-{uuid.uuid4().hex[:6]}"
    common = dict(
        bootstrap_servers=broker.bootstrap,
        security_protocol="SASL_SSL",
        ssl_context=ctx,
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_provider=Provider(),
    )
    producer = KafkaProducer(**common)
    for i in range(5):
        producer.send(topic, b"kp-%d" % i, partition=0).get(timeout=60)
    producer.close()
    consumer = KafkaConsumer(**common, consumer_timeout_ms=10000, auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, 0)])
    got = [m.value for m in consumer]
    consumer.close()
    assert got == [b"kp-%d" % i for i in range(5)]
    assert "principal=User:bob" in broker.log_text()


def _fails(broker, idp, make_token) -> list:
    errors = []
    p = Producer({**conf(broker, idp, make_token), "error_cb": errors.append})
    p.produce("never", b"x")
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        p.poll(0.1)
    return errors


@pytest.mark.parametrize(
    "case",
    ["expired", "other audience", "other issuer", "unknown key", "garbage"],
)
def test_bad_tokens_fail_cleanly(broker, idp, case):
    stranger = SigningKey("key-1")  # the same kid, another key: a forgery
    make = {
        "expired": lambda: idp["key"].token(lifetime=-60),
        "other audience": lambda: idp["key"].token(aud="someone-else"),
        "other issuer": lambda: idp["key"].token(iss="https://evil.test"),
        "unknown key": lambda: stranger.token(),
        "garbage": lambda: "not.a.jwt",
    }[case]
    failed_before = broker.metric("skiff_authentications_total", result="failed")
    errors = _fails(broker, idp, make)
    assert any(e.code() == -169 or "Authentication failed" in e.str() for e in errors), errors
    # The client learns only that authentication failed.
    assert all("expired" not in e.str().lower() and "audience" not in e.str().lower() for e in errors), errors
    assert broker.metric("skiff_authentications_total", result="failed") > failed_before
    # Nothing else is affected.
    test_confluent_kafka_produces_and_consumes_with_a_signed_token(broker, idp)


def test_a_key_added_to_the_jwks_file_is_used_without_a_restart(broker, idp):
    rotated = SigningKey(f"key-{uuid.uuid4().hex[:6]}")
    assert _fails(broker, idp, rotated.token), "a key not yet in the file was accepted"
    write_jwks(idp["jwks"], idp["key"], rotated)
    time.sleep(1.1)  # an unknown key makes the agent read the file again, once a second at most
    topic = f"oauth-rotated-{uuid.uuid4().hex[:6]}"
    c = conf(broker, idp, lambda: rotated.token("carol"))
    p = clients.producer(broker.bootstrap, **c)
    d = clients.Deliveries()
    clients.produce(p, topic, d, 0, value=b"r", partition=0)
    clients.flush(p, d, 1, timeout=60)
    assert not d.failed, d.failed


def test_a_session_ends_when_its_token_expires(shared_broker_factory, idp):
    """KIP-368: with connections.max.reauth.ms on, the session lasts until the token's expiry if
    that is sooner, and a connection that does not re-authenticate is closed then."""
    broker = shared_broker_factory.start(
        "--ssl-keystore-location", str(idp["server"]),
        "--sasl-enabled-mechanisms", "OAUTHBEARER",
        "--sasl-oauthbearer-jwks-endpoint-url", str(idp["jwks"]),
        "--sasl-oauthbearer-clock-skew-seconds", "0",
        "--connections-max-reauth-ms", "3600000",
        "--allow-everyone-if-no-acl-found", "true",
        name="oauth-expiry",
        protocol="SASL_SSL",
    )
    import socket
    import ssl

    ctx = ssl.create_default_context(cafile=str(idp["ca"]))
    raw = socket.create_connection(("127.0.0.1", broker.port), timeout=15)
    s = ctx.wrap_socket(raw, server_hostname="localhost")

    def roundtrip(body: bytes) -> bytes:
        s.sendall(kw.frame(body))
        (size,) = struct.unpack(">i", s.recv(4))
        data = b""
        while len(data) < size:
            data += s.recv(size - len(data))
        return data

    roundtrip(kw.header_v1(17, 1, 1) + kw.string("OAUTHBEARER"))
    token = f"n,,\x01auth=Bearer {idp['key'].token(lifetime=3)}\x01\x01".encode()
    body = roundtrip(kw.header_v1(36, 1, 2) + struct.pack(">i", len(token)) + token)
    r = kw.Reader(body[4:])
    error = r.take(">h")
    r.string()  # error message
    auth_len = r.take(">i")
    r.take(f">{auth_len}s")
    lifetime_ms = r.take(">q")
    assert error == 0
    assert 0 < lifetime_ms <= 3000, lifetime_ms
    time.sleep(3.5)
    s.sendall(kw.frame(kw.header_v1(kw.API_METADATA, 1, 9) + struct.pack(">i", -1)))
    try:
        closed = s.recv(4) == b""
    except (ConnectionResetError, ssl.SSLError):
        closed = True
    assert closed, "served a request after the token expired"
    s.close()
