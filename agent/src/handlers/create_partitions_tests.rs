#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::{BrokerId, CreatePartitionsRequest, TopicName};

use super::*;
use crate::config::AgentConfig;
use crate::test_support;

fn topic(name: &'static str, count: i32) -> CreatePartitionsTopic {
    CreatePartitionsTopic::default()
        .with_name(TopicName(str_bytes(name)))
        .with_count(count)
        .with_assignments(None)
}

fn assigned(name: &'static str, count: i32, brokers: &[&[i32]]) -> CreatePartitionsTopic {
    let assignments = brokers
        .iter()
        .map(|ids| {
            CreatePartitionsAssignment::default()
                .with_broker_ids(ids.iter().map(|&b| BrokerId(b)).collect())
        })
        .collect();
    topic(name, count).with_assignments(Some(assignments))
}

async fn send(
    agent: &Agent,
    topics: Vec<CreatePartitionsTopic>,
    validate_only: bool,
) -> Vec<(String, i16, Option<String>)> {
    let req = CreatePartitionsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(1000)
        .with_validate_only(validate_only);
    handle(agent, req)
        .await
        .results
        .into_iter()
        .map(|r| {
            (
                r.name.as_str().to_owned(),
                r.error_code,
                r.error_message.map(|m| m.as_str().to_owned()),
            )
        })
        .collect()
}

async fn partitions(agent: &Agent, name: &str) -> i32 {
    let meta = agent.metastore.topic_by_name(name).await.expect("read");
    meta.expect("topic").partitions
}

fn refused(name: &str, code: i16, message: &str) -> (String, i16, Option<String>) {
    (name.to_owned(), code, Some(message.to_owned()))
}

#[tokio::test]
async fn grows_and_refuses_as_kafka_does() {
    let t = test_support::agent(AgentConfig::default()).await;
    let agent = &t.agent;
    for name in ["a", "b"] {
        agent
            .create_topic(name, 3, BTreeMap::new())
            .await
            .expect("create");
    }
    // Cached at 3 before the grow: the grow itself drops the cache.
    assert_eq!(agent.topic_named("a").await.unwrap().unwrap().partitions, 3);
    let ok = send(agent, vec![topic("a", 5)], false).await;
    assert_eq!(ok, vec![("a".to_owned(), codes::NONE, None)]);
    assert_eq!(partitions(agent, "a").await, 5);
    assert_eq!(agent.topic_named("a").await.unwrap().unwrap().partitions, 5);

    for validate_only in [true, false] {
        let answers = send(
            agent,
            vec![
                topic("b", 2),
                topic("a", 5),
                topic("nope", 4),
                topic("a", -22),
                topic("a", 0),
            ],
            validate_only,
        )
        .await;
        // `a` twice: one answer for the name, after the others; `a` is not looked at.
        assert_eq!(
            answers,
            vec![
                refused(
                    "b",
                    codes::INVALID_PARTITIONS,
                    "Topic currently has 3 partitions, which is higher than the requested 2."
                ),
                refused(
                    "nope",
                    codes::UNKNOWN_TOPIC_OR_PARTITION,
                    "The topic 'nope' does not exist."
                ),
                refused("a", codes::INVALID_REQUEST, "Duplicate topic in request."),
            ],
            "validate_only={validate_only}"
        );
        let answers = send(
            agent,
            vec![topic("a", 5), topic("b", 0), topic("b", -1)],
            validate_only,
        )
        .await;
        assert_eq!(
            answers,
            vec![
                refused(
                    "a",
                    codes::INVALID_PARTITIONS,
                    "Topic already has 5 partitions."
                ),
                refused("b", codes::INVALID_REQUEST, "Duplicate topic in request."),
            ]
        );
        for (count, current) in [(0, 3), (-5, 3)] {
            let answers = send(agent, vec![topic("b", count)], validate_only).await;
            let message = format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            );
            assert_eq!(
                answers,
                vec![refused("b", codes::INVALID_PARTITIONS, &message)]
            );
        }
        let answers = send(
            agent,
            vec![topic("b", MAX_PARTITIONS_PER_TOPIC + 1)],
            validate_only,
        )
        .await;
        assert_eq!(
            answers,
            vec![refused(
                "b",
                codes::INVALID_PARTITIONS,
                "A topic may have at most 10000 partitions; 10001 were requested."
            )]
        );
    }
    assert_eq!(partitions(agent, "a").await, 5);
    assert_eq!(partitions(agent, "b").await, 3);

    // validate_only on a valid grow says yes and changes nothing.
    let answers = send(agent, vec![topic("b", 7)], true).await;
    assert_eq!(answers, vec![("b".to_owned(), codes::NONE, None)]);
    assert_eq!(partitions(agent, "b").await, 3);
}

#[tokio::test]
async fn assignments_are_checked_then_ignored() {
    let t = test_support::agent(AgentConfig::default()).await;
    let agent = &t.agent;
    agent
        .create_topic("a", 1, BTreeMap::new())
        .await
        .expect("create");
    let me = agent.broker_id();
    let cases: Vec<(CreatePartitionsTopic, String)> = vec![
        (
            assigned("a", 4, &[&[me]]),
            "Increasing the number of partitions by 3 but 1 assignments provided.".to_owned(),
        ),
        (
            assigned("a", 2, &[&[me], &[me]]),
            "Increasing the number of partitions by 1 but 2 assignments provided.".to_owned(),
        ),
        (
            assigned("a", 2, &[&[me + 12]]),
            format!("Unknown broker(s) in replica assignment: {}.", me + 12),
        ),
        (
            assigned("a", 2, &[&[me, me]]),
            format!(
                "Duplicate brokers not allowed in replica assignment: {me}, {me} for partition id 1."
            ),
        ),
        (
            assigned("a", 2, &[&[]]),
            "The manual partition assignment includes an empty replica list for partition id 1."
                .to_owned(),
        ),
    ];
    for (req, message) in cases {
        let answers = send(agent, vec![req], false).await;
        assert_eq!(
            answers,
            vec![refused("a", codes::INVALID_REPLICA_ASSIGNMENT, &message)]
        );
    }
    assert_eq!(partitions(agent, "a").await, 1);
    // A well-formed assignment grows the topic; the placement means nothing here.
    let answers = send(agent, vec![assigned("a", 3, &[&[me], &[me]])], false).await;
    assert_eq!(answers, vec![("a".to_owned(), codes::NONE, None)]);
    // An empty list is no assignment, as null is.
    let answers = send(
        agent,
        vec![topic("a", 4).with_assignments(Some(vec![]))],
        false,
    )
    .await;
    assert_eq!(answers, vec![("a".to_owned(), codes::NONE, None)]);
    assert_eq!(partitions(agent, "a").await, 4);
}
