"""TLS listeners (issue 14): SSL and SASL_SSL with real clients (confluent-kafka, kafka-python,
kcat), client certificates (mTLS) with Kafka's ssl.principal.mapping.rules, certificates reloaded
when their files change, and handshakes that fail or stop halfway without affecting anyone else.
Every certificate is made here (tests/certs.py)."""

import shutil
import socket
import ssl
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Producer

import certs
import clients
from conftest import wait_for

ADMIN = ("admin", "admin-secret")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = certs.ca()
    other_ca = certs.ca("Somebody Else's CA")
    out = {
        "dir": d,
        "ca": ca.write(d, "ca")["crt"],
        "server": certs.issue(ca, "localhost", server=True).write(d, "server", [ca])["pem"],
        "server2": certs.issue(ca, "localhost-2", server=True).write(d, "server2", [ca])["pem"],
        "alice": certs.issue(ca, "alice", ou="eng").write(d, "alice"),
        "mallory": certs.issue(other_ca, "mallory", ou="eng").write(d, "mallory"),
    }
    return out


def ssl_conf(broker, pki, protocol="SSL", **extra) -> dict:
    return {
        "bootstrap.servers": broker.bootstrap,
        "security.protocol": protocol,
        "ssl.ca.location": str(pki["ca"]),
        **extra,
    }


def sasl_conf(broker, pki, mechanism, user, password) -> dict:
    return ssl_conf(
        broker,
        pki,
        "SASL_SSL",
        **{"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password},
    )


def round_trip(conf: dict, topic: str, n: int = 20) -> None:
    p = clients.producer(conf["bootstrap.servers"], **conf)
    d = clients.Deliveries()
    for i in range(n):
        clients.produce(p, topic, d, i, value=b"tls-%d" % i, partition=0)
    clients.flush(p, d, n, timeout=60)
    assert not d.failed, d.failed
    got = clients.read_partitions(conf["bootstrap.servers"], topic, {0: n}, timeout=60, **conf)
    assert [m.value() for m in got[0]] == [b"tls-%d" % i for i in range(n)]


def fails_to_connect(conf: dict) -> list:
    errors = []
    p = Producer({**conf, "error_cb": errors.append})
    p.produce("never", b"x")
    p.flush(5)
    return errors


def topic_name(what: str) -> str:
    return f"tls-{what}-{uuid.uuid4().hex[:6]}"


def test_an_ssl_listener_serves_confluent_kafka_kafka_python_and_kcat(broker_factory, pki):
    broker = broker_factory.start("--ssl-keystore-location", str(pki["server"]), protocol="SSL")
    round_trip(ssl_conf(broker, pki), topic_name("confluent"))

    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = topic_name("kafka-python")
    common = dict(bootstrap_servers=broker.bootstrap, security_protocol="SSL", ssl_cafile=str(pki["ca"]))
    producer = KafkaProducer(**common)
    for i in range(5):
        producer.send(topic, b"kp-%d" % i, partition=0).get(timeout=60)
    producer.close()
    consumer = KafkaConsumer(**common, consumer_timeout_ms=10000, auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, 0)])
    assert [m.value for m in consumer][:5] == [b"kp-%d" % i for i in range(5)]
    consumer.close()

    if shutil.which("kcat"):
        topic = topic_name("kcat")
        auth = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={pki['ca']}"]
        subprocess.run(["kcat", "-b", broker.bootstrap, *auth, "-P", "-t", topic, "-p", "0"], input=b"a\nb\n", check=True, timeout=60)
        out = subprocess.run(
            ["kcat", "-b", broker.bootstrap, *auth, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "2", "-e"],
            capture_output=True, check=True, timeout=60,
        )
        assert out.stdout.split() == [b"a", b"b"]
    # A plaintext client gets nowhere, and the listener goes on.
    assert fails_to_connect({"bootstrap.servers": broker.bootstrap, "security.protocol": "PLAINTEXT"})
    round_trip(ssl_conf(broker, pki), topic_name("after-plaintext"))


def test_sasl_ssl_with_scram_and_plain(broker_factory, pki):
    broker = broker_factory.start(
        "--ssl-keystore-location", str(pki["server"]),
        "--sasl-enabled-mechanisms", "SCRAM-SHA-512,PLAIN",
        "--scram-user", "%s:%s" % ADMIN,
        "--super-users", "User:admin",
        protocol="SASL_SSL",
    )
    for mechanism in ["SCRAM-SHA-512", "PLAIN"]:
        round_trip(sasl_conf(broker, pki, mechanism, *ADMIN), topic_name(mechanism.lower()))
        assert fails_to_connect(sasl_conf(broker, pki, mechanism, ADMIN[0], "wrong"))

    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        security_protocol="SASL_SSL",
        ssl_cafile=str(pki["ca"]),
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=ADMIN[0],
        sasl_plain_password=ADMIN[1],
    )
    producer.send(topic_name("kafka-python"), b"x", partition=0).get(timeout=60)
    producer.close()

    if shutil.which("kcat"):
        topic = topic_name("kcat")
        auth = [
            "-X", "security.protocol=SASL_SSL", "-X", f"ssl.ca.location={pki['ca']}",
            "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", f"sasl.username={ADMIN[0]}", "-X", f"sasl.password={ADMIN[1]}",
        ]
        subprocess.run(["kcat", "-b", broker.bootstrap, *auth, "-P", "-t", topic, "-p", "0"], input=b"s\n", check=True, timeout=60)
        out = subprocess.run(
            ["kcat", "-b", broker.bootstrap, *auth, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "1", "-e"],
            capture_output=True, check=True, timeout=60,
        )
        assert out.stdout.split() == [b"s"]


def test_client_certificates_name_the_principal_and_untrusted_ones_are_refused(broker_factory, pki):
    broker = broker_factory.start(
        "--ssl-keystore-location", str(pki["server"]),
        "--ssl-truststore-location", str(pki["ca"]),
        "--ssl-client-auth", "required",
        "--ssl-principal-mapping-rules", r"RULE:^CN=([^,]+),OU=eng,.*$/$1/L,DEFAULT",
        "--super-users", "User:alice",
        protocol="SSL",
    )
    alice = pki["alice"]
    with_cert = ssl_conf(broker, pki, **{"ssl.certificate.location": str(alice["crt"]), "ssl.key.location": str(alice["key"])})
    round_trip(with_cert, topic_name("mtls"))
    assert "principal=User:alice" in broker.log_text()

    before = broker.metric("skiff_connections_closed_total", reason="tls_handshake")
    assert fails_to_connect(ssl_conf(broker, pki)), "a client without a certificate got in"
    mallory = pki["mallory"]
    untrusted = ssl_conf(broker, pki, **{"ssl.certificate.location": str(mallory["crt"]), "ssl.key.location": str(mallory["key"])})
    assert fails_to_connect(untrusted), "an untrusted certificate got in"
    assert "principal=User:mallory" not in broker.log_text()
    assert broker.metric("skiff_connections_closed_total", reason="tls_handshake") > before
    round_trip(with_cert, topic_name("mtls-after"))


def _server_cn(bootstrap: str, ca) -> str:
    host, port = bootstrap.split(":")
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"]


def test_certificates_are_reloaded_when_their_file_changes(broker_factory, pki):
    keystore = pki["dir"] / "live.pem"
    keystore.write_bytes(pki["server"].read_bytes())
    broker = broker_factory.start(
        "--ssl-keystore-location", str(keystore), "--ssl-reload-interval-ms", "200", protocol="SSL"
    )
    assert _server_cn(broker.bootstrap, pki["ca"]) == "localhost"
    # A half-written file is not taken; the old certificate stays.
    keystore.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n")
    time.sleep(1)
    assert _server_cn(broker.bootstrap, pki["ca"]) == "localhost"
    keystore.write_bytes(pki["server2"].read_bytes())
    wait_for(lambda: _server_cn(broker.bootstrap, pki["ca"]) == "localhost-2", 10, message="the new certificate served")
    round_trip(ssl_conf(broker, pki), topic_name("reloaded"))


def test_handshakes_cut_short_or_never_sent_affect_no_one(broker_factory, pki):
    broker = broker_factory.start(
        "--ssl-keystore-location", str(pki["server"]), "--request-read-timeout-ms", "2000", protocol="SSL"
    )
    host, port = broker.bootstrap.split(":")
    # A ClientHello cut off after its first bytes, then the connection closed.
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20)
    s.close()
    # Garbage instead of a handshake.
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"\x00\x00\x00\x10" + b"\x00" * 16)
    s.settimeout(10)
    answer = s.recv(1024)
    assert answer == b"" or answer[:1] == b"\x15", f"neither a close nor a TLS alert: {answer!r}"
    s.close()
    # A connection that never starts its handshake is closed after the deadline.
    silent = socket.create_connection((host, int(port)), timeout=10)
    silent.settimeout(15)
    assert silent.recv(1) == b"", "a silent connection outlived the handshake deadline"
    silent.close()
    round_trip(ssl_conf(broker, pki), topic_name("after-junk"))
    assert broker.metric("skiff_connections_closed_total", reason="tls_handshake") >= 2
