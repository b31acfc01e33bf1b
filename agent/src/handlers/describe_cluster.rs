//! DescribeCluster (KIP-700): the brokers Metadata lists, every slot of every live agent.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::authz::{self, Principal, Resource};
use crate::brokers::Brokers;
use crate::context::Agent;
use crate::protocol::codes;

/// KIP-919's endpoint types: the brokers', or the controllers'.
const ENDPOINT_BROKERS: i8 = 1;
const ENDPOINT_CONTROLLERS: i8 = 2;

pub fn handle(
    agent: &Agent,
    version: i16,
    req: DescribeClusterRequest,
    audience: &crate::brokers::Audience,
) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKERS)
        .with_cluster_id(str_bytes(agent.config.cluster_id.clone()));
    // v0 asks for brokers implicitly. An agent is a broker, never a controller: a client that
    // asks it for the controllers is talking to the wrong kind of endpoint, as Kafka says.
    if version >= 1 && req.endpoint_type != ENDPOINT_BROKERS {
        let (code, message) = if req.endpoint_type == ENDPOINT_CONTROLLERS {
            (
                codes::MISMATCHED_ENDPOINT_TYPE,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            )
        } else {
            (
                codes::UNSUPPORTED_ENDPOINT_TYPE,
                "Unsupported endpoint type",
            )
        };
        return response
            .with_error_code(code)
            .with_error_message(Some(str_bytes(message)));
    }
    let brokers = Brokers::for_audience(agent, audience);
    let list = brokers
        .ids()
        .map(|(id, a)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(id))
                .with_host(str_bytes(a.host.clone()))
                .with_port(i32::from(a.port))
        })
        .collect();
    response
        .with_controller_id(BrokerId(brokers.controller()))
        .with_brokers(list)
        .with_cluster_authorized_operations(authz::if_requested(
            req.include_cluster_authorized_operations,
            Resource::Cluster,
            &Principal,
        ))
}
