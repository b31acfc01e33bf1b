//! FindCoordinator: which agent coordinates a consumer group or a transactional id. Every agent
//! computes the same answer from the live agents (rendezvous hashing of the key, see
//! [`crate::membership::coordinator_of`]), so any agent may be asked. A transaction's state is
//! in the metastore, so any agent could serve its requests; the stable choice only spreads the
//! transactional ids over the agents as Kafka spreads them over its brokers.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use skiff_metastore::types::AgentInfo;

use crate::context::Agent;
use crate::protocol::codes;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

/// The coordinator of `key`, or the error to answer instead.
fn locate(agent: &Agent, key_type: i8, key: &str) -> Result<AgentInfo, (i16, &'static str)> {
    match key_type {
        GROUP if key.is_empty() => return Err((codes::INVALID_REQUEST, "empty group id")),
        TRANSACTION if key.is_empty() => {
            return Err((codes::INVALID_REQUEST, "empty transactional id"))
        }
        GROUP | TRANSACTION => {}
        _ => return Err((codes::INVALID_REQUEST, "unknown coordinator type")),
    }
    let view = agent.membership.view();
    if let Some(a) = crate::membership::coordinator_of(key, &view.agents) {
        return Ok(a.clone());
    }
    // No answered heartbeat yet: this agent is all it knows.
    Ok(AgentInfo {
        broker_id: agent.broker_id(),
        host: agent.config.advertised_host.clone(),
        port: agent.config.advertised_port,
        last_heartbeat_ms: 0,
        session_timeout_ms: 0,
    })
}

pub fn handle(agent: &Agent, version: i16, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    handle_for(agent, &agent.membership.primary(), version, req)
}

/// FindCoordinator on a connection of `listener`: the coordinator at its address for it.
pub fn handle_for(
    agent: &Agent,
    listener: &str,
    version: i16,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let locate = |key_type: i8, key: &str| {
        let a = locate(agent, key_type, key)?;
        // An agent without this listener cannot be reached by this client: Kafka's answer when
        // the coordinator's broker lacks the client's listener.
        let (host, port) = agent.membership.address(listener, &a).ok_or((
            codes::COORDINATOR_NOT_AVAILABLE,
            "the coordinator has no such listener",
        ))?;
        Ok::<_, (i16, &'static str)>(AgentInfo { host, port, ..a })
    };
    let response = FindCoordinatorResponse::default();
    if version >= 4 {
        // KIP-699: one answer per key.
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key.clone());
                match locate(req.key_type, key.as_str()) {
                    Ok(a) => c
                        .with_node_id(BrokerId(a.broker_id))
                        .with_host(StrBytes::from_string(a.host))
                        .with_port(i32::from(a.port)),
                    Err((code, why)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_static_str(why))),
                }
            })
            .collect();
        return response.with_coordinators(coordinators);
    }
    match locate(req.key_type, req.key.as_str()) {
        Ok(a) => response
            .with_node_id(BrokerId(a.broker_id))
            .with_host(StrBytes::from_string(a.host))
            .with_port(i32::from(a.port)),
        Err((code, why)) => response
            .with_error_code(code)
            .with_error_message((version >= 1).then(|| StrBytes::from_static_str(why)))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
    }
}
