"""ACLs (issue 14): CreateAcls, DescribeAcls and DeleteAcls through confluent-kafka's admin client,
and the checks Kafka's AclAuthorizer makes, over SASL: a principal with and without the permission
gets success or Kafka's authorization error; prefixed and DENY bindings; super users; a request on
a resource no binding names is refused when clients authenticate."""

import time
import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

import clients

USERS = {"admin": "admin-pw", "alice": "alice-pw", "bob": "bob-pw"}
# Agents read the ACLs every session timeout / 5: 2 s at the default.
PROPAGATION_S = 10


@pytest.fixture(scope="module")
def acl_broker(shared_broker_factory):
    args = ["--sasl-enabled-mechanisms", "SCRAM-SHA-512", "--super-users", "User:admin"]
    for user, pw in USERS.items():
        args += ["--scram-user", f"{user}:{pw}"]
    broker = shared_broker_factory.start(*args, name="acls", protocol="SASL_PLAINTEXT")
    # The tests' consumers name a group they never join (clients.UNUSED_GROUP); librdkafka still
    # looks up its coordinator, which needs DESCRIBE on the group.
    a = AdminClient(conf(broker, "admin"))
    binding = AclBinding(
        ResourceType.GROUP, clients.UNUSED_GROUP, ResourcePatternType.LITERAL, "User:*", "*",
        AclOperation.READ, AclPermissionType.ALLOW,
    )
    a.create_acls([binding])[binding].result(30)
    return broker


def conf(broker, user: str) -> dict:
    return {
        "bootstrap.servers": broker.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": USERS[user],
    }


_admins: dict = {}


def admin(broker, user="admin") -> AdminClient:
    """One admin client per user, kept: a client collected before its futures finish fails them."""
    key = (broker.bootstrap, user)
    if key not in _admins:
        _admins[key] = AdminClient(conf(broker, user))
    return _admins[key]


def create_topic(broker, name: str) -> None:
    admin(broker).create_topics([NewTopic(name, 1, 1)])[name].result(30)


def produce(broker, user: str, topic: str) -> int:
    """Produces one record as `user`; the delivery's error code, 0 for success."""
    results = []
    p = Producer({**conf(broker, user), "message.timeout.ms": 8000, "allow.auto.create.topics": False})
    p.produce(topic, b"x", on_delivery=lambda err, msg: results.append(err.code() if err else 0))
    p.flush(15)
    assert results, "no delivery report"
    return results[0]


def consume(broker, user: str, topic: str) -> int:
    """Reads partition 0 as `user`; 0 if a record came back, else the error code."""
    c = clients.consumer(broker.bootstrap, **conf(broker, user), **{"auto.offset.reset": "earliest"})
    try:
        from confluent_kafka import TopicPartition

        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                return msg.error().code()
            return 0
        return -1
    finally:
        c.close()


def acl(name, user, op, permission=AclPermissionType.ALLOW, pattern=ResourcePatternType.LITERAL, restype=ResourceType.TOPIC):
    return AclBinding(restype, name, pattern, f"User:{user}", "*", op, permission)


def create_acls(broker, bindings) -> None:
    for f in admin(broker).create_acls(bindings).values():
        f.result(30)


def eventually(what, predicate):
    deadline = time.monotonic() + PROPAGATION_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {PROPAGATION_S}s: {what}")
        time.sleep(0.5)


def test_without_acls_only_super_users_get_in(acl_broker):
    topic = f"acl-none-{uuid.uuid4().hex[:6]}"
    create_topic(acl_broker, topic)
    assert produce(acl_broker, "admin", topic) == 0
    assert produce(acl_broker, "alice", topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # The topic is hidden from her (no DESCRIBE): the consumer gets no record. (The fetch's own
    # refusal is checked below, where DESCRIBE is allowed and READ denied.)
    assert consume(acl_broker, "alice", topic) != 0
    # Metadata for all topics leaves out what alice may not describe.
    listed = admin(acl_broker, "alice").list_topics(timeout=10).topics
    assert topic not in listed
    assert topic in admin(acl_broker).list_topics(timeout=10).topics
    # Alice may not delete it, nor create topics, nor touch ACLs or users.
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        admin(acl_broker, "alice").delete_topics([topic])[topic].result(30)
    name = f"acl-alice-new-{uuid.uuid4().hex[:6]}"
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        admin(acl_broker, "alice").create_topics([NewTopic(name, 1, 1)])[name].result(30)
    binding = acl(topic, "alice", AclOperation.READ)
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        admin(acl_broker, "alice").create_acls([binding])[binding].result(30)
    # DescribeAcls: CLUSTER_AUTHORIZATION_FAILED. (librdkafka drops that response's top-level
    # error and shows an empty list, so kafka-python checks it.)
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient
    from kafka.admin import ResourcePatternFilter
    from kafka.admin import ResourceType as KpResourceType
    from kafka.errors import ClusterAuthorizationFailedError

    kp = KafkaAdminClient(
        bootstrap_servers=acl_broker.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="alice",
        sasl_plain_password=USERS["alice"],
    )
    everything = ACLFilter(
        principal=None, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    with pytest.raises(ClusterAuthorizationFailedError):
        kp.describe_acls(everything)
    kp.close()


def test_allow_prefixed_and_deny_bindings(acl_broker):
    prefix = f"acl-team-{uuid.uuid4().hex[:6]}-"
    mine, shared = prefix + "orders", prefix + "shared"
    for t in (mine, shared):
        create_topic(acl_broker, t)
    create_acls(acl_broker, [
        acl(prefix, "alice", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED),
        acl(prefix, "alice", AclOperation.READ, pattern=ResourcePatternType.PREFIXED),
        AclBinding(ResourceType.TOPIC, shared, ResourcePatternType.LITERAL, "User:*", "*", AclOperation.READ, AclPermissionType.ALLOW),
        acl(shared, "bob", AclOperation.READ, permission=AclPermissionType.DENY),
    ])
    eventually("alice may write under her prefix", lambda: produce(acl_broker, "alice", mine) == 0)
    assert produce(acl_broker, "alice", shared) == 0
    assert consume(acl_broker, "alice", mine) == 0
    # bob: nothing on the prefix, and a DENY that beats User:* on the shared topic.
    assert produce(acl_broker, "bob", mine) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert consume(acl_broker, "bob", shared) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # READ implies DESCRIBE: alice sees the topics in metadata.
    assert mine in admin(acl_broker, "alice").list_topics(timeout=10).topics

    # DescribeAcls finds them; DeleteAcls removes alice's, and her access goes with them.
    found = admin(acl_broker).describe_acls(AclBindingFilter(
        ResourceType.TOPIC, None, ResourcePatternType.ANY, "User:alice", None, AclOperation.ANY, AclPermissionType.ANY
    )).result(30)
    assert {(b.name, b.operation) for b in found} >= {(prefix, AclOperation.WRITE), (prefix, AclOperation.READ)}
    flt = AclBindingFilter(ResourceType.TOPIC, prefix, ResourcePatternType.PREFIXED, "User:alice", None, AclOperation.ANY, AclPermissionType.ANY)
    deleted = admin(acl_broker).delete_acls([flt])[flt].result(30)
    assert len(deleted) == 2
    eventually("alice loses her access", lambda: produce(acl_broker, "alice", mine) == KafkaError.TOPIC_AUTHORIZATION_FAILED)


def test_invalid_bindings_are_refused(acl_broker):
    bad = AclBinding(ResourceType.BROKER, "not-the-cluster", ResourcePatternType.LITERAL, "User:alice", "*", AclOperation.ALTER, AclPermissionType.ALLOW)
    with pytest.raises(KafkaException, match="(?i)kafka-cluster|invalid"):
        admin(acl_broker).create_acls([bad])[bad].result(30)


def test_consumer_groups_need_read_on_the_group(acl_broker):
    topic = f"acl-group-{uuid.uuid4().hex[:6]}"
    group = f"acl-readers-{uuid.uuid4().hex[:6]}"
    create_topic(acl_broker, topic)
    assert produce(acl_broker, "admin", topic) == 0
    create_acls(acl_broker, [acl(topic, "alice", AclOperation.READ)])

    def subscribe_and_commit() -> int:
        c = clients.consumer(acl_broker.bootstrap, **conf(acl_broker, "alice"), **{
            "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
        })
        try:
            c.subscribe([topic])
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                msg = c.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    return msg.error().code()
                c.commit(message=msg, asynchronous=False)
                return 0
            return -1
        except KafkaException as e:
            return e.args[0].code()
        finally:
            c.close()

    eventually("the topic ACL reaches the agent", lambda: consume(acl_broker, "alice", topic) == 0)
    assert subscribe_and_commit() == KafkaError.GROUP_AUTHORIZATION_FAILED
    create_acls(acl_broker, [acl(group, "alice", AclOperation.READ, restype=ResourceType.GROUP)])
    eventually("alice joins the group and commits", lambda: subscribe_and_commit() == 0)


def test_transactions_need_write_on_the_transactional_id(acl_broker):
    topic = f"acl-txn-{uuid.uuid4().hex[:6]}"
    txn = f"acl-txn-id-{uuid.uuid4().hex[:6]}"
    create_topic(acl_broker, topic)
    create_acls(acl_broker, [acl(topic, "alice", AclOperation.WRITE)])
    eventually("alice may write", lambda: produce(acl_broker, "alice", topic) == 0)

    def init() -> int:
        p = Producer({**conf(acl_broker, "alice"), "transactional.id": txn})
        try:
            p.init_transactions(15)
            p.begin_transaction()
            p.produce(topic, b"in a transaction")
            p.commit_transaction(15)
            return 0
        except KafkaException as e:
            return e.args[0].code()

    assert init() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    create_acls(acl_broker, [acl(txn, "alice", AclOperation.WRITE, restype=ResourceType.TRANSACTIONAL_ID)])
    eventually("alice's transaction commits", lambda: init() == 0)


def test_configs_need_describe_configs_and_alter_configs(acl_broker):
    from confluent_kafka.admin import ConfigResource

    topic = f"acl-configs-{uuid.uuid4().hex[:6]}"
    create_topic(acl_broker, topic)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        admin(acl_broker, "alice").describe_configs([resource])[resource].result(30)
    create_acls(acl_broker, [acl(topic, "alice", AclOperation.ALTER_CONFIGS)])

    def described() -> bool:
        try:
            return "retention.ms" in admin(acl_broker, "alice").describe_configs([resource])[resource].result(30)
        except KafkaException:
            return False

    # ALTER_CONFIGS implies DESCRIBE_CONFIGS.
    eventually("alice may describe the topic's configs", described)


def test_idempotent_producers_need_write_somewhere_and_admin_apis_need_the_cluster(acl_broker):
    from confluent_kafka import ElectionType, TopicPartition
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    user, pw = f"carol{uuid.uuid4().hex[:6]}", "carol-pw"
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    admin(acl_broker).alter_user_scram_credentials([UserScramCredentialUpsertion(user, info, pw.encode())])[user].result(30)
    USERS[user] = pw
    topic = f"acl-idem-{uuid.uuid4().hex[:6]}"
    create_topic(acl_broker, topic)

    def idempotent_produce() -> list:
        errors, results = [], []
        p = Producer({**conf(acl_broker, user), "enable.idempotence": True, "message.timeout.ms": 8000})
        p.produce(topic, b"x", on_delivery=lambda err, msg: results.append(err))
        try:
            p.flush(12)
        except (KafkaException, SystemError) as e:
            # A producer gone fatal raises (from its callbacks too, as a SystemError around it).
            fatal = e if isinstance(e, KafkaException) else (e.__cause__ or e.__context__)
            return [fatal.args[0].code()]
        return [e.code() for e in errors] + [e.code() if e else 0 for e in results]

    # DESCRIBE on the topic (so that its metadata is seen) but no WRITE anywhere: InitProducerId
    # is refused for the cluster.
    create_acls(acl_broker, [acl(topic, user, AclOperation.DESCRIBE)])
    time.sleep(PROPAGATION_S / 2)
    got = idempotent_produce()
    assert KafkaError.CLUSTER_AUTHORIZATION_FAILED in got or KafkaError._FATAL in got, got
    # WRITE on one topic is enough (KIP-679).
    create_acls(acl_broker, [acl(topic, user, AclOperation.WRITE)])
    eventually("idempotent produce with WRITE on the topic", lambda: idempotent_produce() == [0])

    # ElectLeaders wants ALTER on the cluster; a super user has it.
    mine = AdminClient(conf(acl_broker, user))
    with pytest.raises(KafkaException, match="(?i)authoriz"):
        mine.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 0)]).result(30)
    admin(acl_broker).elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 0)]).result(30)


def test_skiff_acls_and_skiff_users_as_kafka_acls_and_kafka_configs(acl_broker, tmp_path):
    import subprocess

    from conftest import skiff_bin

    def props(user: str, password: str):
        path = tmp_path / f"{user}-{password}.properties"
        path.write_text(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{password}";\n'
        )
        return str(path)

    def skiff(*args, user="admin", password=USERS["admin"]):
        return subprocess.run(
            [str(skiff_bin()), *args[:2], "--bootstrap", acl_broker.bootstrap, "--command-config", props(user, password), *args[2:]],
            capture_output=True, text=True, timeout=60,
        )

    name = f"dave{uuid.uuid4().hex[:6]}"
    out = skiff("users", "add", name, "--password", "dave-pw")
    assert out.returncode == 0, out.stderr
    out = skiff("users", "list", name)
    assert out.returncode == 0, out.stderr
    assert f"{name}: SCRAM-SHA-512=[iterations=8192]" in out.stdout
    USERS[name] = "dave-pw"

    topic = f"acl-cli-{uuid.uuid4().hex[:6]}"
    create_topic(acl_broker, topic)
    assert produce(acl_broker, name, topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    out = skiff("acls", "add", "--allow-principal", f"User:{name}", "--operation", "Write", "--operation", "Describe", "--topic", topic)
    assert out.returncode == 0, out.stderr
    assert "added 2 binding(s)" in out.stdout
    out = skiff("acls", "list", "--topic", topic)
    assert out.returncode == 0, out.stderr
    assert f"principal=User:{name}, host=*, operation=WRITE, permissionType=ALLOW" in out.stdout
    eventually("the new user writes", lambda: produce(acl_broker, name, topic) == 0)
    out = skiff("acls", "remove", "--allow-principal", f"User:{name}", "--topic", topic)
    assert out.returncode == 0, out.stderr
    assert "removed 2 binding(s)" in out.stdout
    eventually("the user no longer writes", lambda: produce(acl_broker, name, topic) != 0)

    # Not a super user: refused, with Kafka's error, and a clear exit.
    out = skiff("acls", "add", "--allow-principal", f"User:{name}", "--operation", "All", "--cluster", user=name, password="dave-pw")
    assert out.returncode == 1 and "uthoriz" in out.stderr, out.stderr
    # A wrong password fails the connection, saying so.
    out = skiff("users", "list", user="admin", password="wrong")
    assert out.returncode == 1 and "authenticating" in out.stderr, out.stderr
    out = skiff("users", "delete", name)
    assert out.returncode == 0, out.stderr
    out = skiff("users", "list", name)
    assert "ResourceNotFound" in out.stdout, out.stdout
