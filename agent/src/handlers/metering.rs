//! Client quotas at the request boundary: who a request is metered as, a produce's bytes
//! before it is handled, a fetch's answer after (see [`crate::quotas`]).

use kafka_protocol::messages::RequestHeader;

use crate::acl;
use crate::context::Agent;

/// The user a quota names for `caller`: its principal's name, `User:` dropped.
pub(super) fn quota_user(caller: &acl::Caller) -> &str {
    caller
        .principal
        .split_once(':')
        .map_or(caller.principal.as_str(), |(_, name)| name)
}

pub(super) fn client_id(header: &RequestHeader) -> String {
    header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default()
}

/// Meters a produce of `bytes` under the caller's quota and answers the throttle it earns; the
/// connection is then not read until the caller is back within its quota (see the reading loop
/// in `connection`), which holds all of a caller's connections to the quota together while
/// holding nothing of theirs.
pub(super) fn produce(
    agent: &Agent,
    caller: &acl::Caller,
    header: &RequestHeader,
    bytes: usize,
    mute: &crate::quotas::Mute,
) -> std::time::Duration {
    let quotas = &agent.quotas;
    if !quotas.any(crate::quotas::Kind::Produce) {
        return std::time::Duration::ZERO;
    }
    let (user, client_id) = (quota_user(caller), client_id(header));
    mute.metered_as(user, &client_id);
    quotas.record(
        crate::quotas::Kind::Produce,
        user,
        &client_id,
        bytes as u64,
        std::time::Instant::now(),
    )
}

/// Meters a fetch's answer (see [`crate::quotas::Quotas::record_fetch`]).
pub(super) fn fetch(
    quotas: &crate::quotas::Quotas,
    user: &str,
    client_id: &str,
    answer: &mut kafka_protocol::messages::FetchResponse,
    mute: &crate::quotas::Mute,
) {
    let bytes: u64 = answer
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| p.records.as_ref().map_or(0, |r| r.len() as u64))
        .sum();
    let throttle = match quotas.record_fetch(user, client_id, bytes, std::time::Instant::now()) {
        crate::quotas::Fetched::Send(t) => t,
        crate::quotas::Fetched::Empty(t) => {
            answer.responses.clear();
            t
        }
    };
    answer.throttle_time_ms = crate::quotas::millis(throttle);
    mute.extend(throttle);
}
