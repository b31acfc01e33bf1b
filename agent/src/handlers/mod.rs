//! One module per Kafka API. A handler decodes nothing itself: it gets the decoded request, calls
//! the metastore client, the batcher or the reader with domain types, and builds the response.

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod client_quotas;
pub mod consumer_group;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
mod gate;
pub mod group;
pub mod init_producer_id;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
mod metering;
pub mod offset_for_leader_epoch;
pub mod offsets;
pub mod produce;
pub mod reassignments;
mod redact;
pub mod sasl;
pub mod scram_users;
mod txn;
pub mod txn_offset_commit;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tracing::warn;

use crate::acl;
use crate::context::Agent;
use crate::protocol::codes;
use crate::protocol::frame::{decode_header, encode_response, peek_prefix};
use crate::protocol::{guard, versions};
use crate::session::Session;

/// Why a connection gets closed instead of answered. Logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum Close {
    #[error("request too short for a header")]
    Short,
    #[error("unknown api key {0}")]
    UnknownApi(i16),
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode {api:?} response: {reason}")]
    Encode { api: ApiKey, reason: String },
    #[error("{0:?} before authentication")]
    Unauthenticated(ApiKey),
    #[error("{0:?} after the session expired (connections.max.reauth.ms)")]
    SessionExpired(ApiKey),
    #[error("cannot check credentials: {0}")]
    AuthenticationUnavailable(String),
    #[error("SASL authentication failed")]
    AuthenticationFailed,
}

/// A request's answer, to be written after every earlier answer on its connection.
/// `Ok(None)`: no answer is due (acks=0).
pub type Pending = BoxFuture<'static, Result<Option<Bytes>, Close>>;

/// A request whose header decoded and whose body passed the guard, so that kafka-protocol may
/// decode it: nothing it allocates from a length on the wire can exceed what the frame holds.
pub struct Checked {
    pub api: ApiKey,
    pub version: i16,
    pub header: RequestHeader,
    pub body: Bytes,
}

/// What [`check`] makes of a frame.
pub enum Parsed {
    Checked(Checked),
    /// ApiVersions in a version we do not know: answered with the versions we do.
    UnsupportedApiVersions {
        correlation_id: i32,
    },
}

/// Everything done to a frame before its body is decoded: the api and version looked up, the
/// header decoded, the body's structure checked. Fuzzed (agent/fuzz) together with the decoders.
pub fn check(frame: Bytes) -> Result<Parsed, Close> {
    let prefix = peek_prefix(&frame).ok_or(Close::Short)?;
    let api = ApiKey::try_from(prefix.api_key).map_err(|_| Close::UnknownApi(prefix.api_key))?;
    let version = prefix.api_version;
    if !versions::supported(api, version) {
        if api == ApiKey::ApiVersions {
            return Ok(Parsed::UnsupportedApiVersions {
                correlation_id: prefix.correlation_id,
            });
        }
        return Err(Close::UnsupportedVersion { api, version });
    }
    let mut body = frame;
    let header = decode_header(api, version, &mut body).map_err(|e| Close::Malformed {
        api,
        version,
        reason: e.to_string(),
    })?;
    guard::check_request_body(prefix.api_key, version, &body).map_err(|e| Close::Malformed {
        api,
        version,
        reason: e.to_string(),
    })?;
    Ok(Parsed::Checked(Checked {
        api,
        version,
        header,
        body,
    }))
}

/// Turns one request frame into its pending answer. Runs on the connection's reading task, so
/// what happens here (validation, queueing produce batches) happens in request order.
pub async fn route(
    agent: &Arc<Agent>,
    frame: Bytes,
    session: &mut Session,
) -> Result<Pending, Close> {
    if session.raw_sasl {
        let answer = sasl::raw_token(agent, session, frame).await?;
        return Ok(Box::pin(async move { Ok(Some(answer)) }));
    }
    let peer = session.peer.as_str();
    let Checked {
        api,
        version,
        header,
        mut body,
    } = match check(frame)? {
        Parsed::Checked(checked) => checked,
        Parsed::UnsupportedApiVersions { correlation_id } => {
            // Kafka answers an unknown ApiVersions version with v0 and the versions it knows,
            // so the client can retry with one of them.
            let body = api_versions::unsupported();
            return Ok(respond_now(ApiKey::ApiVersions, 0, correlation_id, &body));
        }
    };
    let sasl_api = matches!(
        api,
        ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
    );
    if !sasl_api && !session.may_proceed(std::time::Instant::now()) {
        // Kafka closes a connection that sends anything else before authenticating, and one
        // whose session expired before it re-authenticated (KIP-368).
        return Err(if session.authenticated.is_some() {
            Close::SessionExpired(api)
        } else {
            Close::Unauthenticated(api)
        });
    }
    let agent = agent.clone();
    let audience = crate::brokers::Audience {
        listener: session.listener.clone(),
        slotted: session.slotted(),
    };
    let caller = session.caller();
    // The answer to a request the authorizer refuses whole (see `gate`).
    macro_rules! refuse {
        ($answer:expr) => {
            return Ok(respond_now(api, version, header.correlation_id, &$answer))
        };
    }
    let group_ok = |op, g: &str| gate::group(&agent, &caller, op, g);
    Ok(match api {
        ApiKey::SaslHandshake => {
            let req = decode(api, version, &mut body)?;
            let answer = sasl::handshake(&agent, session, version, req);
            respond_now(api, version, header.correlation_id, &answer)
        }
        ApiKey::SaslAuthenticate => {
            let req = decode(api, version, &mut body)?;
            let answer = sasl::authenticate(&agent, session, req).await?;
            respond_now(api, version, header.correlation_id, &answer)
        }
        ApiKey::AlterUserScramCredentials => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                scram_users::alter(&agent, &caller, req).await
            })
        }
        ApiKey::DescribeUserScramCredentials => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                scram_users::describe(&agent, &caller, req).await
            })
        }
        ApiKey::CreateAcls => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                acls::create(&agent, &caller, req).await
            })
        }
        ApiKey::DescribeAcls => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                acls::describe(&agent, &caller, req).await
            })
        }
        ApiKey::DeleteAcls => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                acls::delete(&agent, &caller, req).await
            })
        }
        ApiKey::Produce => {
            // Kafka meters a produce by its request's size, before it is handled.
            let throttle = metering::produce(&agent, &caller, &header, body.len(), &session.mute);
            session.mute.extend(throttle);
            let req = decode(api, version, &mut body)?;
            produce::route(agent, &caller, header, req, throttle).await
        }
        ApiKey::Fetch => {
            let mut req: kafka_protocol::messages::FetchRequest = decode(api, version, &mut body)?;
            let mute = session.mute.clone();
            let client_id = metering::client_id(&header);
            let user = metering::quota_user(&caller).to_owned();
            let quotas = agent.quotas.clone();
            let metered = quotas.any(crate::quotas::Kind::Fetch);
            if metered {
                // As Kafka: never ask for more than the quota's window holds, or a large
                // enough response would be refused for ever.
                if let Some(cap) =
                    quotas.window_bytes(crate::quotas::Kind::Fetch, &user, &client_id)
                {
                    req.max_bytes = req
                        .max_bytes
                        .min(i32::try_from(cap).unwrap_or(i32::MAX).max(1));
                }
            }
            respond(api, header, async move {
                let mut answer = fetch::handle(&agent, &caller, version, req).await;
                if metered {
                    metering::fetch(&quotas, &user, &client_id, &mut answer, &mute);
                }
                answer
            })
        }
        ApiKey::DescribeClientQuotas => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                client_quotas::describe(&agent, &caller, req).await
            })
        }
        ApiKey::AlterClientQuotas => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                client_quotas::alter(&agent, &caller, req).await
            })
        }
        ApiKey::ListOffsets => {
            let mut req: kafka_protocol::messages::ListOffsetsRequest =
                decode(api, version, &mut body)?;
            let (allowed, refused): (Vec<_>, Vec<_>) =
                std::mem::take(&mut req.topics).into_iter().partition(|t| {
                    gate::topic_allowed(&agent, &caller, acl::Operation::Describe, &t.name)
                });
            req.topics = allowed;
            respond(api, header, async move {
                let mut answer = list_offsets::handle(&agent, version, req).await;
                answer.topics.extend(refused.into_iter().map(|t| {
                    use kafka_protocol::messages::list_offsets_response as r;
                    r::ListOffsetsTopicResponse::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    r::ListOffsetsPartitionResponse::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(codes::TOPIC_AUTHORIZATION_FAILED)
                                        .with_timestamp(-1)
                                        .with_offset(-1)
                                        .with_leader_epoch(-1)
                                })
                                .collect(),
                        )
                }));
                answer
            })
        }
        ApiKey::Metadata => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                metadata::handle(&agent, &caller, version, req, &audience).await
            })
        }
        ApiKey::ApiVersions => {
            let req: kafka_protocol::messages::ApiVersionsRequest =
                decode(api, version, &mut body)?;
            if version >= 3 {
                session.client = crate::session::Client::from_software(
                    &req.client_software_name,
                    &req.client_software_version,
                );
                tracing::debug!(
                    peer,
                    name = %req.client_software_name,
                    version = %req.client_software_version,
                    client = ?session.client,
                    "client software"
                );
            }
            respond(api, header, async move { api_versions::handle() })
        }
        ApiKey::CreateTopics => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                create_topics::handle(&agent, &caller, version, req).await
            })
        }
        ApiKey::CreatePartitions => {
            let mut req: kafka_protocol::messages::CreatePartitionsRequest =
                decode(api, version, &mut body)?;
            let (allowed, refused): (Vec<_>, Vec<_>) =
                std::mem::take(&mut req.topics).into_iter().partition(|t| {
                    gate::topic_allowed(&agent, &caller, acl::Operation::Alter, &t.name)
                });
            req.topics = allowed;
            respond(api, header, async move {
                let mut answer = create_partitions::handle(&agent, req).await;
                answer.results.extend(refused.into_iter().map(|t| {
                    kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(codes::TOPIC_AUTHORIZATION_FAILED)
                }));
                answer
            })
        }
        ApiKey::DeleteTopics => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                delete_topics::handle(&agent, &caller, version, req).await
            })
        }
        ApiKey::InitProducerId => {
            let req = decode(api, version, &mut body)?;
            if let Some(refusal) = gate::init_producer_id(&agent, &caller, &req) {
                refuse!(refusal);
            }
            respond(api, header, async move {
                init_producer_id::handle(&agent, req).await
            })
        }
        ApiKey::FindCoordinator => {
            let mut req = decode(api, version, &mut body)?;
            let (refused, whole) = gate::find_coordinator(&agent, &caller, version, &mut req);
            if let Some(refusal) = whole {
                refuse!(refusal);
            }
            respond(api, header, async move {
                let mut answer =
                    find_coordinator::handle_for(&agent, &audience.listener, version, req);
                answer.coordinators.extend(refused);
                answer
            })
        }
        ApiKey::JoinGroup => {
            let req: kafka_protocol::messages::JoinGroupRequest = decode(api, version, &mut body)?;
            if !group_ok(acl::Operation::Read, &req.group_id) {
                refuse!(kafka_protocol::messages::JoinGroupResponse::default()
                    .with_error_code(codes::GROUP_AUTHORIZATION_FAILED)
                    .with_generation_id(-1));
            }
            let (client_id, host) = client_of(&header, peer);
            respond(api, header, async move {
                group::join(&agent, version, client_id, host, req).await
            })
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let req: kafka_protocol::messages::ConsumerGroupHeartbeatRequest =
                decode(api, version, &mut body)?;
            if !group_ok(acl::Operation::Read, &req.group_id) {
                refuse!(
                    kafka_protocol::messages::ConsumerGroupHeartbeatResponse::default()
                        .with_error_code(codes::GROUP_AUTHORIZATION_FAILED)
                );
            }
            let (client_id, host) = client_of(&header, peer);
            respond(api, header, async move {
                consumer_group::heartbeat(&agent, version, client_id, host, req).await
            })
        }
        ApiKey::ConsumerGroupDescribe => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                let mut answer = consumer_group::describe(&agent, req).await;
                redact::consumer_group_describe(&agent, &caller, &mut answer);
                answer
            })
        }
        ApiKey::SyncGroup => {
            let req: kafka_protocol::messages::SyncGroupRequest = decode(api, version, &mut body)?;
            if !group_ok(acl::Operation::Read, &req.group_id) {
                refuse!(kafka_protocol::messages::SyncGroupResponse::default()
                    .with_error_code(codes::GROUP_AUTHORIZATION_FAILED));
            }
            respond(api, header, async move {
                group::sync(&agent, version, req).await
            })
        }
        ApiKey::Heartbeat => {
            let req: kafka_protocol::messages::HeartbeatRequest = decode(api, version, &mut body)?;
            if !group_ok(acl::Operation::Read, &req.group_id) {
                refuse!(kafka_protocol::messages::HeartbeatResponse::default()
                    .with_error_code(codes::GROUP_AUTHORIZATION_FAILED));
            }
            respond(api, header, async move { group::heartbeat(&agent, req) })
        }
        ApiKey::LeaveGroup => {
            let req: kafka_protocol::messages::LeaveGroupRequest = decode(api, version, &mut body)?;
            if !group_ok(acl::Operation::Read, &req.group_id) {
                refuse!(kafka_protocol::messages::LeaveGroupResponse::default()
                    .with_error_code(codes::GROUP_AUTHORIZATION_FAILED));
            }
            respond(
                api,
                header,
                async move { group::leave(&agent, version, req) },
            )
        }
        ApiKey::ListGroups => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                let mut answer = group::list(&agent, version, req).await;
                // Kafka lists only the groups the caller may describe (all of them with
                // DESCRIBE on the cluster).
                let cluster = agent.allowed(
                    &caller,
                    acl::Operation::Describe,
                    acl::resource::CLUSTER,
                    acl::resource::CLUSTER_NAME,
                );
                if !cluster {
                    answer.groups.retain(|g| {
                        gate::group(&agent, &caller, acl::Operation::Describe, &g.group_id)
                    });
                }
                answer
            })
        }
        ApiKey::DescribeGroups => {
            let mut req: kafka_protocol::messages::DescribeGroupsRequest =
                decode(api, version, &mut body)?;
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut req.groups)
                .into_iter()
                .partition(|g| group_ok(acl::Operation::Describe, g));
            req.groups = allowed;
            respond(api, header, async move {
                let mut answer = if req.groups.is_empty() {
                    Default::default()
                } else {
                    group::describe(&agent, version, req).await
                };
                answer.groups.extend(refused.into_iter().map(|g| {
                    kafka_protocol::messages::describe_groups_response::DescribedGroup::default()
                        .with_group_id(g)
                        .with_error_code(codes::GROUP_AUTHORIZATION_FAILED)
                        .with_authorized_operations(crate::authz::NOT_REQUESTED)
                }));
                answer
            })
        }
        ApiKey::DeleteGroups => {
            let mut req: kafka_protocol::messages::DeleteGroupsRequest =
                decode(api, version, &mut body)?;
            let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut req.groups_names)
                .into_iter()
                .partition(|g| group_ok(acl::Operation::Delete, g));
            req.groups_names = allowed;
            respond(api, header, async move {
                let mut answer = if req.groups_names.is_empty() {
                    Default::default()
                } else {
                    group::delete(&agent, req).await
                };
                answer.results.extend(refused.into_iter().map(|g| {
                    kafka_protocol::messages::delete_groups_response::DeletableGroupResult::default(
                    )
                    .with_group_id(g)
                    .with_error_code(codes::GROUP_AUTHORIZATION_FAILED)
                }));
                answer
            })
        }
        ApiKey::OffsetCommit => {
            let mut req = decode(api, version, &mut body)?;
            let refused = match gate::offset_commit(&agent, &caller, &mut req) {
                Ok(refused) => refused,
                Err(refusal) => refuse!(refusal),
            };
            respond(api, header, async move {
                let mut answer = if req.topics.is_empty() {
                    Default::default()
                } else {
                    offsets::commit(&agent, req).await
                };
                answer.topics.extend(refused);
                answer
            })
        }
        ApiKey::OffsetFetch => {
            let req: kafka_protocol::messages::OffsetFetchRequest =
                decode(api, version, &mut body)?;
            let denied = if version >= 8 {
                req.groups
                    .iter()
                    .any(|g| !group_ok(acl::Operation::Describe, &g.group_id))
            } else {
                !group_ok(acl::Operation::Describe, &req.group_id)
            };
            if denied {
                // One group refused refuses the request: the batched form's groups are all
                // one consumer's, in practice.
                let groups = req
                    .groups
                    .iter()
                    .map(|g| {
                        kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup::default()
                            .with_group_id(g.group_id.clone())
                            .with_error_code(codes::GROUP_AUTHORIZATION_FAILED)
                    })
                    .collect();
                refuse!(kafka_protocol::messages::OffsetFetchResponse::default()
                    .with_error_code(codes::GROUP_AUTHORIZATION_FAILED)
                    .with_groups(groups));
            }
            respond(api, header, async move {
                offsets::fetch(&agent, version, req).await
            })
        }
        ApiKey::OffsetDelete => {
            let req: kafka_protocol::messages::OffsetDeleteRequest =
                decode(api, version, &mut body)?;
            if !group_ok(acl::Operation::Delete, &req.group_id) {
                refuse!(kafka_protocol::messages::OffsetDeleteResponse::default()
                    .with_error_code(codes::GROUP_AUTHORIZATION_FAILED));
            }
            respond(
                api,
                header,
                async move { offsets::delete(&agent, req).await },
            )
        }
        ApiKey::DeleteRecords => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                delete_records::handle(&agent, &caller, req).await
            })
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut req: kafka_protocol::messages::IncrementalAlterConfigsRequest =
                decode(api, version, &mut body)?;
            let mut refused = Vec::new();
            req.resources.retain(|r| {
                let code = gate::config_resource(
                    &agent, &caller, acl::Operation::AlterConfigs, r.resource_type, &r.resource_name,
                );
                if let Some(code) = code {
                    refused.push(
                        kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                            .with_error_code(code)
                            .with_resource_type(r.resource_type)
                            .with_resource_name(r.resource_name.clone()),
                    );
                }
                code.is_none()
            });
            respond(api, header, async move {
                let mut answer = alter_configs::incremental(&agent, req).await;
                answer.responses.extend(refused);
                answer
            })
        }
        ApiKey::AlterConfigs => {
            let mut req: kafka_protocol::messages::AlterConfigsRequest =
                decode(api, version, &mut body)?;
            let mut refused = Vec::new();
            req.resources.retain(|r| {
                let code = gate::config_resource(
                    &agent, &caller, acl::Operation::AlterConfigs, r.resource_type, &r.resource_name,
                );
                if let Some(code) = code {
                    refused.push(
                        kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse::default()
                            .with_error_code(code)
                            .with_resource_type(r.resource_type)
                            .with_resource_name(r.resource_name.clone()),
                    );
                }
                code.is_none()
            });
            respond(api, header, async move {
                let mut answer = alter_configs::replace(&agent, req).await;
                answer.responses.extend(refused);
                answer
            })
        }
        ApiKey::DescribeConfigs => {
            let mut req: kafka_protocol::messages::DescribeConfigsRequest =
                decode(api, version, &mut body)?;
            let mut refused = Vec::new();
            req.resources.retain(|r| {
                let code = gate::config_resource(
                    &agent, &caller, acl::Operation::DescribeConfigs, r.resource_type, &r.resource_name,
                );
                if let Some(code) = code {
                    refused.push(
                        kafka_protocol::messages::describe_configs_response::DescribeConfigsResult::default()
                            .with_error_code(code)
                            .with_resource_type(r.resource_type)
                            .with_resource_name(r.resource_name.clone()),
                    );
                }
                code.is_none()
            });
            respond(api, header, async move {
                let mut answer = describe_configs::handle(&agent, req).await;
                answer.results.extend(refused);
                answer
            })
        }
        ApiKey::DescribeCluster => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                describe_cluster::handle(&agent, version, req, &audience)
            })
        }
        ApiKey::DescribeLogDirs => {
            let req = decode(api, version, &mut body)?;
            if !redact::cluster(&agent, &caller, acl::Operation::Describe) {
                refuse!(kafka_protocol::messages::DescribeLogDirsResponse::default()
                    .with_error_code(codes::CLUSTER_AUTHORIZATION_FAILED));
            }
            respond(api, header, async move {
                describe_log_dirs::handle(&agent, req).await
            })
        }
        ApiKey::OffsetForLeaderEpoch => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                let mut answer = offset_for_leader_epoch::handle(&agent, req).await;
                redact::offset_for_leader_epoch(&agent, &caller, &mut answer);
                answer
            })
        }
        ApiKey::DescribeTopicPartitions => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                describe_topic_partitions::handle(&agent, &caller, req, &audience).await
            })
        }
        ApiKey::ElectLeaders => {
            let req: kafka_protocol::messages::ElectLeadersRequest =
                decode(api, version, &mut body)?;
            if !redact::cluster(&agent, &caller, acl::Operation::Alter) {
                use kafka_protocol::messages::elect_leaders_response as r;
                let results = req
                    .topic_partitions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| {
                        r::ReplicaElectionResult::default()
                            .with_topic(t.topic)
                            .with_partition_result(
                                t.partitions
                                    .into_iter()
                                    .map(|p| {
                                        r::PartitionResult::default()
                                            .with_partition_id(p)
                                            .with_error_code(codes::CLUSTER_AUTHORIZATION_FAILED)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                refuse!(kafka_protocol::messages::ElectLeadersResponse::default()
                    .with_error_code(codes::CLUSTER_AUTHORIZATION_FAILED)
                    .with_replica_election_results(results));
            }
            respond(api, header, async move {
                reassignments::elect(&agent, req).await
            })
        }
        ApiKey::AlterPartitionReassignments => {
            let req = decode(api, version, &mut body)?;
            if !redact::cluster(&agent, &caller, acl::Operation::Alter) {
                refuse!(
                    kafka_protocol::messages::AlterPartitionReassignmentsResponse::default()
                        .with_error_code(codes::CLUSTER_AUTHORIZATION_FAILED)
                );
            }
            respond(api, header, async move {
                reassignments::alter(&agent, req).await
            })
        }
        ApiKey::ListPartitionReassignments => {
            let req = decode(api, version, &mut body)?;
            if !redact::cluster(&agent, &caller, acl::Operation::Describe) {
                refuse!(
                    kafka_protocol::messages::ListPartitionReassignmentsResponse::default()
                        .with_error_code(codes::CLUSTER_AUTHORIZATION_FAILED)
                );
            }
            respond(api, header, async move { reassignments::list(req) })
        }
        ApiKey::DescribeProducers => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                let mut answer = describe_producers::handle(&agent, req).await;
                redact::describe_producers(&agent, &caller, &mut answer);
                answer
            })
        }
        ApiKey::DescribeTransactions => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                let mut answer = describe_transactions::handle(&agent, req).await;
                redact::describe_transactions(&agent, &caller, &mut answer);
                answer
            })
        }
        ApiKey::ListTransactions => {
            let req = decode(api, version, &mut body)?;
            respond(api, header, async move {
                let mut answer = list_transactions::handle(&agent, version, req).await;
                redact::list_transactions(&agent, &caller, &mut answer);
                answer
            })
        }
        ApiKey::AddPartitionsToTxn => {
            let req = decode(api, version, &mut body)?;
            if let Some(refusal) = gate::add_partitions_to_txn(&agent, &caller, &req) {
                refuse!(refusal);
            }
            respond(api, header, async move {
                add_partitions_to_txn::handle(&agent, req).await
            })
        }
        ApiKey::AddOffsetsToTxn => {
            let req = decode(api, version, &mut body)?;
            if let Some(refusal) = gate::add_offsets_to_txn(&agent, &caller, &req) {
                refuse!(refusal);
            }
            respond(api, header, async move {
                add_offsets_to_txn::handle(&agent, req).await
            })
        }
        ApiKey::TxnOffsetCommit => {
            let req = decode(api, version, &mut body)?;
            if let Some(refusal) = gate::txn_offset_commit(&agent, &caller, &req) {
                refuse!(refusal);
            }
            respond(api, header, async move {
                txn_offset_commit::handle(&agent, req).await
            })
        }
        ApiKey::EndTxn => {
            let req = decode(api, version, &mut body)?;
            if let Some(refusal) = gate::end_txn(&agent, &caller, &req) {
                refuse!(refusal);
            }
            respond(api, header, async move {
                end_txn::handle(&agent, version, req).await
            })
        }
        _ => return Err(Close::UnsupportedVersion { api, version }),
    })
}

/// A group member's client id, and its host as Kafka shows it ("/" and the address).
fn client_of(header: &RequestHeader, peer: &str) -> (String, String) {
    let client_id = header
        .client_id
        .as_ref()
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
    let host = format!("/{}", peer.rsplit_once(':').map_or(peer, |(h, _)| h));
    (client_id, host)
}

fn decode<T: Decodable>(api: ApiKey, version: i16, body: &mut Bytes) -> Result<T, Close> {
    T::decode(body, version).map_err(|e| Close::Malformed {
        api,
        version,
        reason: e.to_string(),
    })
}

/// Runs `answer` and encodes its result as the response to `header`.
fn respond<R, F>(api: ApiKey, header: RequestHeader, answer: F) -> Pending
where
    R: Encodable + Send + 'static,
    F: Future<Output = R> + Send + 'static,
{
    Box::pin(async move {
        let body = answer.await;
        encode(
            api,
            header.request_api_version,
            header.correlation_id,
            &body,
        )
        .map(Some)
    })
}

fn respond_now<R: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &R) -> Pending {
    let encoded = encode(api, version, correlation_id, body).map(Some);
    Box::pin(async move { encoded })
}

fn encode<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, Close> {
    encode_response(api, version, correlation_id, body).map_err(|e| {
        warn!(?api, version, error = %e, "cannot encode response");
        Close::Encode {
            api,
            reason: e.to_string(),
        }
    })
}

/// The values that occur more than once.
pub(crate) fn duplicates<T: Ord>(values: impl Iterator<Item = T>) -> std::collections::BTreeSet<T> {
    let mut seen = std::collections::BTreeSet::new();
    let mut twice = std::collections::BTreeSet::new();
    for v in values {
        if seen.contains(&v) {
            twice.insert(v);
        } else {
            seen.insert(v);
        }
    }
    twice
}

/// A `StrBytes` from an owned string, without the `From` ambiguity at call sites.
pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod admin_tests;

#[cfg(test)]
#[path = "txn_tests.rs"]
mod txn_tests;
