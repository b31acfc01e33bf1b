"""The metastore's state stays bounded: the compactor's housekeeping pass expires idle
producers' idempotence state (`--producer-id-expiration-ms`, Kafka's producer.id.expiration.ms)
and the committed offsets of groups that stopped committing (`--offsets-retention-ms`, the
ms-precision override of offsets.retention.minutes), with bounds of seconds here instead of a
day and a week.

- an idempotent producer's state goes once it has not written for the bound (the compactor's
  skiff_compactor_state_kept{kind="producer"} drops to 0); the same producer then goes on at
  its next sequence, accepted as Kafka accepts a producer it has no state of;
- a group's offsets go once its newest commit is older than the bound: ListGroups no longer
  lists it and OffsetFetch answers no offset (-1).
"""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

import clients
from conftest import wait_for

BOUNDS = (
    "--compactor-interval-ms",
    "200",
    "--producer-id-expiration-ms",
    "2000",
    "--offsets-retention-ms",
    "2000",
)
KEPT = "skiff_compactor_state_kept"
EXPIRED = "skiff_compactor_state_expired_total"
# librdkafka's OFFSET_INVALID: the group has no committed offset for the partition.
NO_OFFSET = -1001


def produce_one(p, topic: str, value: bytes) -> int:
    d = clients.Deliveries()
    clients.produce(p, topic, d, value, value=value, partition=0)
    clients.flush(p, d, 1)
    assert not d.failed, d.failed
    return d.ok[0][0][0]


@pytest.mark.timeout(120)
def test_an_idle_producers_state_expires_and_the_producer_goes_on(broker_factory, topic):
    broker = broker_factory.start(*BOUNDS)
    clients.create_topic(broker.bootstrap, topic, 1)
    p = clients.producer(broker.bootstrap)
    assert produce_one(p, topic, b"before") == 0
    wait_for(lambda: broker.metric(KEPT, kind="producer") >= 1, 20, message="the producer's state")
    wait_for(
        lambda: broker.metric(KEPT, kind="producer") == 0 and broker.metric(EXPIRED, kind="producer") >= 1,
        30,
        message="the idle producer's state to expire",
    )
    # Its next batch carries sequence 1, for a partition that no longer knows it.
    assert produce_one(p, topic, b"after") == 1
    wait_for(lambda: broker.metric(KEPT, kind="producer") >= 1, 20, message="the producer's state again")
    assert clients.watermarks(broker.bootstrap, topic, 0) == (0, 2)


def listed(admin: AdminClient) -> set[str]:
    return {g.group_id for g in admin.list_consumer_groups().result(timeout=15).valid}


def committed(bootstrap: str, group: str, topic: str) -> int:
    c = clients.consumer(bootstrap, **{"group.id": group})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=15)[0].offset
    finally:
        c.close()


@pytest.mark.timeout(120)
def test_a_groups_offsets_expire_once_its_newest_commit_is_old(broker_factory, topic):
    broker = broker_factory.start(*BOUNDS)
    clients.create_topic(broker.bootstrap, topic, 1)
    p = clients.producer(broker.bootstrap)
    for v in (b"a", b"b", b"c"):
        produce_one(p, topic, v)
    group = f"{topic}-readers"
    c = clients.consumer(broker.bootstrap, **{"group.id": group})
    c.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    c.close()
    assert committed(broker.bootstrap, group, topic) == 2
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert group in listed(admin)
    wait_for(lambda: group not in listed(admin), 30, interval=0.2, message="the group to expire")
    assert committed(broker.bootstrap, group, topic) == NO_OFFSET
    assert broker.metric(EXPIRED, kind="group") >= 1
