#![allow(clippy::unwrap_used)]

use super::super::StateMachine;
use crate::types::{
    Command, CommandResponse, InitTransactionalProducer, MetaError, ProducerIdAndEpoch,
};

fn init(
    sm: &mut StateMachine,
    id: &str,
    producer: Option<ProducerIdAndEpoch>,
) -> Result<ProducerIdAndEpoch, MetaError> {
    let (producer_id, producer_epoch) =
        producer.map_or((-1, -1), |p| (p.producer_id, p.producer_epoch));
    match sm.apply(&Command::InitTransactionalProducer(
        InitTransactionalProducer {
            transactional_id: id.into(),
            transaction_timeout_ms: 60_000,
            producer_id,
            producer_epoch,
            now_ms: 1_000,
        },
    )) {
        CommandResponse::ProducerId(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

/// KIP-360: a producer recovering with its id and epoch gets the next epoch; if the answer is
/// lost and it asks again with the same (now previous) epoch, it gets the current one, not a
/// fence, as Kafka's coordinator answers a retry. Once another producer initialises, that
/// epoch is fenced for good.
#[test]
fn a_retried_kip_360_init_gets_the_epoch_its_first_try_made() {
    let mut sm = StateMachine::new();
    let first = init(&mut sm, "t", None).unwrap();
    let bumped = init(&mut sm, "t", Some(first)).unwrap();
    assert_eq!(bumped.producer_epoch, first.producer_epoch + 1);
    assert_eq!(init(&mut sm, "t", Some(first)), Ok(bumped), "the retry");
    let other = init(&mut sm, "t", None).unwrap();
    assert_eq!(other.producer_epoch, bumped.producer_epoch + 1);
    assert_eq!(
        init(&mut sm, "t", Some(first)),
        Err(MetaError::ProducerFenced)
    );
    assert_eq!(
        init(&mut sm, "t", Some(bumped)),
        Err(MetaError::ProducerFenced)
    );
}

/// A producer recovering (KIP-360) after its id expired starts afresh, as in Kafka, instead of
/// a fatal INVALID_PRODUCER_ID_MAPPING.
#[test]
fn a_kip_360_init_for_an_id_with_no_state_starts_afresh() {
    let mut sm = StateMachine::new();
    let p = init(
        &mut sm,
        "gone",
        Some(ProducerIdAndEpoch {
            producer_id: 1234,
            producer_epoch: 5,
        }),
    )
    .unwrap();
    assert_eq!(p.producer_epoch, 0);
}
