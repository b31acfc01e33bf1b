"""The metastore's RPC takes only callers with the cluster's credential (issue 14): a shared secret
from --cluster-secret-file (here SKIFF_CLUSTER_SECRET_FILE, which every process of the test and
the CLI read), sent as a bearer token and checked before anything of the request is read; or,
with --cluster-tls-cert and --cluster-tls-ca (SKIFF_CLUSTER_TLS_*), TLS with a cluster CA whose
certificates every node and caller present. A plain HTTP client is refused every write, read,
vote, append, snapshot and admin call; the quorum, its agents and the admin CLI work, and survive
the leader being killed."""

import http.client
import secrets
import subprocess
import time
import urllib.error
import urllib.request

import ssl

import pytest

import certs
import clients
import test_quorum
from conftest import skiff_bin, wait_for

ROUTES = [
    "/v1/write",
    "/v1/read",
    "/v1/commits",
    "/raft/append",
    "/raft/vote",
    "/raft/snapshot",
    "/admin/init",
    "/admin/add-node",
    "/admin/remove-node",
]


@pytest.fixture
def secret(tmp_path, monkeypatch):
    path = tmp_path / "cluster-secret"
    value = secrets.token_urlsafe(32)
    path.write_text(value + "\n")
    monkeypatch.setenv("SKIFF_CLUSTER_SECRET_FILE", str(path))
    return value


@pytest.fixture
def cluster_tls(tmp_path, monkeypatch):
    """A cluster CA and one member certificate (serverAuth and clientAuth, for 127.0.0.1) that
    every process of the test uses, and a stranger's certificate from another CA."""
    ca = certs.ca("Skiff Cluster CA")
    d = tmp_path / "cluster-pki"
    out = {
        "ca": ca.write(d, "cluster-ca")["crt"],
        "member": certs.issue(ca, "skiff-member", server=True, client=True).write(d, "member", [ca])["pem"],
        "stranger": certs.issue(certs.ca("Another CA"), "stranger", server=True, client=True).write(d, "stranger")["pem"],
    }
    monkeypatch.setenv("SKIFF_CLUSTER_TLS_CERT", str(out["member"]))
    monkeypatch.setenv("SKIFF_CLUSTER_TLS_CA", str(out["ca"]))
    return out


def call(node: str, path: str, method: str = "POST", token: str | None = None, context=None) -> int:
    data = b"\x00" * 64 if method == "POST" else None
    scheme = "https" if context else "http"
    request = urllib.request.Request(f"{scheme}://{node}{path}", data=data, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def round_trip(bootstrap: str, topic: str, n: int = 50) -> None:
    clients.create_topic(bootstrap, topic, 1)
    p = clients.producer(bootstrap)
    d = clients.Deliveries()
    for i in range(n):
        clients.produce(p, topic, d, i, value=b"%d" % i, partition=0)
    clients.flush(p, d, n, timeout=60)
    assert not d.failed, d.failed
    got = clients.read_partitions(bootstrap, topic, {0: n}, timeout=60)
    assert [m.value() for m in got[0]] == [b"%d" % i for i in range(n)]


def test_unauthenticated_rpcs_are_refused_and_the_quorum_works(broker_factory, topic, secret):
    q = broker_factory.quorum(nodes=3, agents=1)
    round_trip(q.agents[0].bootstrap, topic)
    node = q.nodes[0].bootstrap
    for path in ROUTES:
        assert call(node, path) == 401, f"{path} without a credential"
        assert call(node, path, token="not-the-secret-at-all") == 401, f"{path} with a wrong one"
    assert call(node, "/admin/status", method="GET") == 401
    assert call(node, "/admin/status", method="GET", token=secret) == 200
    # /metrics stays open to scrapers: it changes nothing.
    assert call(node, "/metrics", method="GET") == 200
    # The admin CLI reads the credential too.
    out = subprocess.run(
        [str(skiff_bin()), "metastore", "status", "--at", node], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert '"leader"' in out.stdout
    # Nothing the refused calls sent changed the cluster.
    round_trip(q.agents[0].bootstrap, topic + "-after")


def test_a_quorum_with_a_credential_survives_its_leader_being_killed(broker_factory, topic, secret):
    q = broker_factory.quorum(nodes=3, agents=1)
    agent = q.agents[0].bootstrap
    round_trip(agent, topic)
    leader = q.leader()
    leader.kill9()
    new_leader = q.leader()
    assert new_leader is not leader
    round_trip(agent, topic + "-after-kill")
    leader.start()
    wait_for(lambda: leader.status() is not None, 30, message="the killed node answering again")


def test_over_tls_only_members_of_the_cluster_are_served(broker_factory, topic, cluster_tls):
    q = broker_factory.quorum(nodes=3, agents=1)
    round_trip(q.agents[0].bootstrap, topic)
    node = q.nodes[0].bootstrap
    # Plain HTTP gets no HTTP answer at all.
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, OSError)):
        call(node, "/admin/status", method="GET")
    # TLS without a certificate (and no secret): refused before the body is read.
    anonymous = ssl.create_default_context(cafile=str(cluster_tls["ca"]))
    for path in ROUTES:
        assert call(node, path, context=anonymous) == 401, f"{path} without a certificate"
    assert call(node, "/admin/status", method="GET", context=anonymous) == 401
    assert call(node, "/metrics", method="GET", context=anonymous) == 200
    # A certificate from another CA fails the handshake.
    stranger = ssl.create_default_context(cafile=str(cluster_tls["ca"]))
    stranger.load_cert_chain(str(cluster_tls["stranger"]))
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
        call(node, "/admin/status", method="GET", context=stranger)
    # A member's certificate is served.
    member = ssl.create_default_context(cafile=str(cluster_tls["ca"]))
    member.load_cert_chain(str(cluster_tls["member"]))
    assert call(node, "/admin/status", method="GET", context=member) == 200
    # The admin CLI reads the same variables.
    out = subprocess.run(
        [str(skiff_bin()), "metastore", "status", "--at", node], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert '"leader"' in out.stdout
    round_trip(q.agents[0].bootstrap, topic + "-after")


@pytest.mark.timeout(300)
def test_a_quorum_over_tls_survives_its_leader_being_killed(broker_factory, topic, cluster_tls):
    """tests/test_quorum.py's leader kill, every RPC over TLS with the cluster CA."""
    test_quorum.test_metastore_leader_killed_while_producing(broker_factory, topic)
