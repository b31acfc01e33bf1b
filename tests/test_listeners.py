"""Several listeners on one agent (KIP-103, issue 14): PLAINTEXT for a trusted network and SASL_SSL
for everyone else on one `skiff dev`, each with its own security, and Metadata answering with the
addresses of the listener the client connected to, so that each client stays on its own."""

import struct
import uuid

import pytest
from confluent_kafka.admin import AdminClient

import certs
import clients
import kafka_wire as kw

ADMIN = ("admin", "admin-secret")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("listeners-pki")
    ca = certs.ca()
    return {
        "ca": ca.write(d, "ca")["crt"],
        "server": certs.issue(ca, "localhost", server=True).write(d, "server", [ca])["pem"],
    }


@pytest.fixture(scope="module")
def broker(shared_broker_factory, pki):
    return shared_broker_factory.start(
        "--ssl-keystore-location", str(pki["server"]),
        "--sasl-enabled-mechanisms", "SCRAM-SHA-512",
        "--scram-user", "%s:%s" % ADMIN,
        "--allow-everyone-if-no-acl-found", "true",
        name="listeners",
        protocol="PLAINTEXT,SASL_SSL",
    )


def sasl_conf(broker, pki) -> dict:
    return {
        "bootstrap.servers": f"127.0.0.1:{broker.listener_ports['SASL_SSL']}",
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(pki["ca"]),
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": ADMIN[0],
        "sasl.password": ADMIN[1],
    }


def broker_ports(conf: dict) -> set[int]:
    md = AdminClient(conf).list_topics(timeout=30)
    return {b.port for b in md.brokers.values()}


def test_metadata_answers_with_the_connected_listeners_addresses(broker, pki):
    plain = {"bootstrap.servers": broker.bootstrap}
    assert broker_ports(plain) == {broker.listener_ports["PLAINTEXT"]}
    assert broker_ports(sasl_conf(broker, pki)) == {broker.listener_ports["SASL_SSL"]}


def test_records_produced_on_one_listener_are_read_on_the_other(broker, pki):
    topic = f"listeners-{uuid.uuid4().hex[:6]}"
    conf = sasl_conf(broker, pki)
    p = clients.producer(conf["bootstrap.servers"], **conf)
    d = clients.Deliveries()
    for i in range(20):
        clients.produce(p, topic, d, i, value=b"l-%d" % i, partition=0)
    clients.flush(p, d, 20, timeout=60)
    assert not d.failed, d.failed
    got = clients.read_partitions(broker.bootstrap, topic, {0: 20}, timeout=60)
    assert [m.value() for m in got[0]] == [b"l-%d" % i for i in range(20)]


def test_each_listener_keeps_its_own_security(broker, pki):
    # PLAINTEXT serves without authentication...
    with kw.Conn(broker.bootstrap) as c:
        body = c.roundtrip(kw.frame(kw.header_v1(kw.API_METADATA, 1, 7) + struct.pack(">i", -1)))
        assert struct.unpack(">i", body[:4])[0] == 7
    # ...while the SASL_SSL port speaks only TLS: a plain Kafka request gets no answer.
    with kw.Conn(f"127.0.0.1:{broker.listener_ports['SASL_SSL']}") as c:
        c.send(kw.frame(kw.header_v1(kw.API_METADATA, 1, 8) + struct.pack(">i", -1)))
        answer = c.wait_closed()
        assert not answer.startswith(struct.pack(">i", 8)), answer[:16]
    # DescribeConfigs' `listeners` names both.
    from confluent_kafka.admin import ConfigResource

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = admin.list_topics(timeout=30)
    broker_id = next(iter(md.brokers))
    resource = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
    configs = admin.describe_configs([resource])[resource].result(30)
    listeners = configs["listeners"].value
    assert f"PLAINTEXT://127.0.0.1:{broker.listener_ports['PLAINTEXT']}" in listeners
    assert f"SASL_SSL://127.0.0.1:{broker.listener_ports['SASL_SSL']}" in listeners


def test_named_listeners_map_to_their_protocols(broker_factory, pki):
    """listener.security.protocol.map: listeners named for their network, not their protocol."""
    b = broker_factory.start(
        "--listener-security-protocol-map", "INTERNAL:PLAINTEXT,EXTERNAL:SSL",
        "--ssl-keystore-location", str(pki["server"]),
        name="named-listeners",
        protocol="INTERNAL,EXTERNAL",
    )
    external = {
        "bootstrap.servers": f"127.0.0.1:{b.listener_ports['EXTERNAL']}",
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki["ca"]),
    }
    assert broker_ports(external) == {b.listener_ports["EXTERNAL"]}
    assert broker_ports({"bootstrap.servers": b.bootstrap}) == {b.listener_ports["INTERNAL"]}
