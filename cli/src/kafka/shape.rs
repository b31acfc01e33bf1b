//! Length checks run on a response body before `kafka-protocol` decodes it.
//!
//! kafka-protocol 0.18 sizes every array with `Vec::with_capacity(count)`, the count read off the
//! wire, so a few bytes claiming 2^31 elements would abort the CLI on allocation. The agent guards
//! the requests it decodes (`skiff_agent::protocol::guard`); this is the same idea for the few
//! responses `skiff groups` and `skiff export` decode, at the one version of each it asks for. The body is walked
//! by a copy of the response's schema, each element of an array read in turn, so a count the
//! bytes cannot hold ends in an error, and a count that passes is at most the body's length.
//!
//! Every version used is flexible: strings, bytes and arrays carry an unsigned varint of their
//! length plus one (0 = null), and every struct ends with tagged fields. None of these responses
//! has a known tagged field at these versions, so all of them are skipped by their size.

use kafka_protocol::messages::{
    AlterUserScramCredentialsResponse, ConsumerGroupDescribeResponse, CreateAclsResponse,
    DeleteAclsResponse, DescribeAclsResponse, DescribeGroupsResponse,
    DescribeUserScramCredentialsResponse, FetchResponse, FindCoordinatorResponse,
    ListGroupsResponse, ListOffsetsResponse, MetadataResponse, OffsetFetchResponse,
    SaslAuthenticateResponse,
};

/// One field of a response, in wire order.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    I8,
    I16,
    I32,
    I64,
    Bool,
    Uuid,
    /// A compact (nullable) string.
    Str,
    /// Compact (nullable) bytes.
    Bytes,
    /// A compact array of int32.
    ArrI32,
    /// A compact array of strings.
    ArrStr,
    /// A compact array of structs.
    Arr(&'static [Ty]),
    /// A struct inline.
    Struct(&'static [Ty]),
}

use Ty::*;

/// The responses `skiff groups` reads: the one version of each it asks for, and the body's
/// schema at that version.
pub trait Shape {
    const VERSION: i16;
    const FIELDS: &'static [Ty];
}

// SaslAuthenticate v2: error, message, auth bytes, session lifetime.
impl Shape for SaslAuthenticateResponse {
    const VERSION: i16 = 2;
    const FIELDS: &'static [Ty] = &[I16, Str, Bytes, I64];
}

// CreateAcls v3: one result per creation.
impl Shape for CreateAclsResponse {
    const VERSION: i16 = 3;
    const FIELDS: &'static [Ty] = &[I32, Arr(&[I16, Str])];
}

// DescribeAcls v3: resources, each with its ACLs.
const ACL_DESCRIPTION: &[Ty] = &[Str, Str, I8, I8];
impl Shape for DescribeAclsResponse {
    const VERSION: i16 = 3;
    const FIELDS: &'static [Ty] = &[I32, I16, Str, Arr(&[I8, Str, I8, Arr(ACL_DESCRIPTION)])];
}

// DeleteAcls v3: per filter, the bindings it matched.
const DELETED_ACL: &[Ty] = &[I16, Str, I8, Str, I8, Str, Str, I8, I8];
impl Shape for DeleteAclsResponse {
    const VERSION: i16 = 3;
    const FIELDS: &'static [Ty] = &[I32, Arr(&[I16, Str, Arr(DELETED_ACL)])];
}

// AlterUserScramCredentials v0: one result per user.
impl Shape for AlterUserScramCredentialsResponse {
    const VERSION: i16 = 0;
    const FIELDS: &'static [Ty] = &[I32, Arr(&[Str, I16, Str])];
}

// DescribeUserScramCredentials v0: per user, its mechanisms and iterations.
impl Shape for DescribeUserScramCredentialsResponse {
    const VERSION: i16 = 0;
    const FIELDS: &'static [Ty] = &[I32, I16, Str, Arr(&[Str, I16, Str, Arr(&[I8, I32])])];
}

// Metadata v12: brokers, cluster id, controller, topics (with ids), no cluster operations.
const METADATA_PARTITION: &[Ty] = &[I16, I32, I32, I32, ArrI32, ArrI32, ArrI32];
const METADATA_TOPIC: &[Ty] = &[I16, Str, Uuid, Bool, Arr(METADATA_PARTITION), I32];
const METADATA_BROKER: &[Ty] = &[I32, Str, I32, Str];
impl Shape for MetadataResponse {
    const VERSION: i16 = 12;
    const FIELDS: &'static [Ty] = &[I32, Arr(METADATA_BROKER), Str, I32, Arr(METADATA_TOPIC)];
}

// FindCoordinator v3: one coordinator, inline.
impl Shape for FindCoordinatorResponse {
    const VERSION: i16 = 3;
    const FIELDS: &'static [Ty] = &[I32, I16, Str, I32, Str, I32];
}

// ListGroups v5: group id, protocol type, state, type.
impl Shape for ListGroupsResponse {
    const VERSION: i16 = 5;
    const FIELDS: &'static [Ty] = &[I32, I16, Arr(&[Str, Str, Str, Str])];
}

// DescribeGroups v5: no per-group error message (v6).
const DESCRIBED_MEMBER: &[Ty] = &[Str, Str, Str, Str, Bytes, Bytes];
const DESCRIBED_GROUP: &[Ty] = &[I16, Str, Str, Str, Str, Arr(DESCRIBED_MEMBER), I32];
impl Shape for DescribeGroupsResponse {
    const VERSION: i16 = 5;
    const FIELDS: &'static [Ty] = &[I32, Arr(DESCRIBED_GROUP)];
}

// ConsumerGroupDescribe v0: no member type (v1).
const CGD_ASSIGNMENT: &[Ty] = &[Arr(&[Uuid, Str, ArrI32])];
const CGD_MEMBER: &[Ty] = &[
    Str,
    Str,
    Str,
    I32,
    Str,
    Str,
    ArrStr,
    Str,
    Struct(CGD_ASSIGNMENT),
    Struct(CGD_ASSIGNMENT),
];
const CGD_GROUP: &[Ty] = &[I16, Str, Str, Str, I32, I32, Str, Arr(CGD_MEMBER), I32];
impl Shape for ConsumerGroupDescribeResponse {
    const VERSION: i16 = 0;
    const FIELDS: &'static [Ty] = &[I32, Arr(CGD_GROUP)];
}

// OffsetFetch v7: one group, topics at the top level, then the group's error.
const OFFSET_PARTITION: &[Ty] = &[I32, I64, I32, Str, I16];
impl Shape for OffsetFetchResponse {
    const VERSION: i16 = 7;
    const FIELDS: &'static [Ty] = &[I32, Arr(&[Str, Arr(OFFSET_PARTITION)]), I16];
}

// ListOffsets v6.
const LIST_OFFSETS_PARTITION: &[Ty] = &[I32, I16, I64, I64, I32];
impl Shape for ListOffsetsResponse {
    const VERSION: i16 = 6;
    const FIELDS: &'static [Ty] = &[I32, Arr(&[Str, Arr(LIST_OFFSETS_PARTITION)])];
}

// Fetch v12: topics by name; aborted transactions (nullable), records (nullable bytes).
const FETCH_PARTITION: &[Ty] = &[I32, I16, I64, I64, I64, Arr(&[I64, I64]), I32, Bytes];
impl Shape for FetchResponse {
    const VERSION: i16 = 12;
    const FIELDS: &'static [Ty] = &[I32, I16, I32, Arr(&[Str, Arr(FETCH_PARTITION)])];
}

#[derive(Debug, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many bytes at the start of `body` a response with these fields takes, or why it cannot be
/// one. Allocates nothing; recursion is only as deep as the static schema.
pub fn walk(fields: &[Ty], body: &[u8]) -> Result<usize, ShapeError> {
    let mut w = Walk { body, pos: 0 };
    w.fields(fields)?;
    Ok(w.pos)
}

struct Walk<'a> {
    body: &'a [u8],
    pos: usize,
}

impl Walk<'_> {
    fn skip(&mut self, n: usize) -> Result<(), ShapeError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.body.len() => {
                self.pos = end;
                Ok(())
            }
            _ => Err(ShapeError(format!(
                "the response ends in the middle of a field at byte {}",
                self.pos
            ))),
        }
    }

    /// An unsigned varint the way kafka-protocol reads one: at most five bytes, the last one's
    /// continuation bit ignored.
    fn varint(&mut self) -> Result<u32, ShapeError> {
        let mut value = 0u32;
        for i in 0..5 {
            let Some(&b) = self.body.get(self.pos) else {
                return Err(ShapeError(format!(
                    "the response ends in the middle of a varint at byte {}",
                    self.pos
                )));
            };
            self.pos += 1;
            value |= (u32::from(b) & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// A compact length: `None` for null, else the count that follows.
    fn compact_len(&mut self) -> Result<Option<usize>, ShapeError> {
        let n = self.varint()?;
        Ok(n.checked_sub(1).map(|n| n as usize))
    }

    fn fields(&mut self, fields: &[Ty]) -> Result<(), ShapeError> {
        for ty in fields {
            self.field(*ty)?;
        }
        self.tagged_fields()
    }

    fn field(&mut self, ty: Ty) -> Result<(), ShapeError> {
        match ty {
            Bool | I8 => self.skip(1),
            I16 => self.skip(2),
            I32 => self.skip(4),
            I64 => self.skip(8),
            Uuid => self.skip(16),
            Str | Bytes => match self.compact_len()? {
                Some(n) => self.skip(n),
                None => Ok(()),
            },
            ArrI32 => match self.compact_len()? {
                Some(n) => self.skip(n.saturating_mul(4)),
                None => Ok(()),
            },
            ArrStr => {
                for _ in 0..self.compact_len()?.unwrap_or(0) {
                    self.field(Str)?;
                }
                Ok(())
            }
            Arr(elem) => {
                // Each element takes at least one byte (its tagged-field count), so this loop ends
                // within the body's length.
                for _ in 0..self.compact_len()?.unwrap_or(0) {
                    self.fields(elem)?;
                }
                Ok(())
            }
            Struct(inner) => self.fields(inner),
        }
    }

    fn tagged_fields(&mut self) -> Result<(), ShapeError> {
        let count = self.varint()?;
        for _ in 0..count {
            self.varint()?; // the tag
            let size = self.varint()? as usize;
            self.skip(size)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::consumer_group_describe_response as cgd;
    use kafka_protocol::messages::describe_groups_response::{
        DescribedGroup, DescribedGroupMember,
    };
    use kafka_protocol::messages::list_groups_response::ListedGroup;
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponsePartition, OffsetFetchResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, GroupId, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_owned())
    }

    /// Encodes with kafka-protocol, then checks that the walk takes exactly the encoded bytes,
    /// that every truncation is refused, and that kafka-protocol decodes what the walk accepts.
    fn check<R: Shape + Encodable + Decodable>(r: &R) {
        let mut buf = BytesMut::new();
        r.encode(&mut buf, R::VERSION).unwrap();
        let bytes = buf.freeze();
        assert_eq!(walk(R::FIELDS, &bytes), Ok(bytes.len()));
        for cut in 0..bytes.len() {
            assert!(walk(R::FIELDS, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        R::decode(&mut bytes.clone(), R::VERSION).unwrap();
    }

    fn tagged<T>(with: impl FnOnce(Bytes) -> T) -> T {
        with(Bytes::from_static(b"tagged value"))
    }

    #[test]
    fn fetch() {
        use kafka_protocol::messages::fetch_response::{
            AbortedTransaction, FetchableTopicResponse, PartitionData,
        };
        let partition = |records: Option<Bytes>, aborted| {
            PartitionData::default()
                .with_partition_index(2)
                .with_high_watermark(10)
                .with_aborted_transactions(aborted)
                .with_records(records)
        };
        let r = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(s("t")))
            .with_partitions(vec![
                partition(Some(Bytes::from_static(b"batches")), None),
                partition(
                    None,
                    Some(vec![AbortedTransaction::default()
                        .with_producer_id(kafka_protocol::messages::ProducerId(4))]),
                ),
            ])]);
        check(&tagged(|b| r.with_unknown_tagged_field(3, b)));
    }

    #[test]
    fn metadata() {
        let partition = MetadataResponsePartition::default()
            .with_partition_index(3)
            .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
            .with_isr_nodes(vec![BrokerId(1)])
            .with_offline_replicas(vec![BrokerId(2)]);
        let r = MetadataResponse::default()
            .with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_host(s("h"))
                    .with_rack(Some(s("r"))),
                MetadataResponseBroker::default().with_host(s("")),
            ])
            .with_cluster_id(Some(s("c")))
            .with_topics(vec![
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(s("t"))))
                    .with_partitions(vec![partition.clone(), partition]),
                MetadataResponseTopic::default()
                    .with_name(None)
                    .with_unknown_tagged_field(7, Bytes::new()),
            ]);
        check(&tagged(|b| r.with_unknown_tagged_field(5, b)));
        check(&MetadataResponse::default());
    }

    #[test]
    fn find_coordinator() {
        check(
            &FindCoordinatorResponse::default()
                .with_error_message(Some(s("why")))
                .with_host(s("host")),
        );
        check(&FindCoordinatorResponse::default().with_error_message(None));
    }

    #[test]
    fn list_groups() {
        let g = ListedGroup::default()
            .with_group_id(GroupId(s("g")))
            .with_protocol_type(s("consumer"))
            .with_group_state(s("Stable"))
            .with_group_type(s("classic"));
        check(&ListGroupsResponse::default().with_groups(vec![g.clone(), g]));
    }

    #[test]
    fn describe_groups() {
        let m = DescribedGroupMember::default()
            .with_member_id(s("m"))
            .with_group_instance_id(Some(s("i")))
            .with_client_id(s("c"))
            .with_client_host(s("/h"))
            .with_member_metadata(Bytes::from_static(b"meta"))
            .with_member_assignment(Bytes::from_static(b"assign"));
        let g = DescribedGroup::default()
            .with_group_id(GroupId(s("g")))
            .with_group_state(s("Stable"))
            .with_members(vec![m.clone(), m.with_group_instance_id(None)]);
        check(&DescribeGroupsResponse::default().with_groups(vec![g, DescribedGroup::default()]));
    }

    #[test]
    fn consumer_group_describe() {
        let a =
            cgd::Assignment::default().with_topic_partitions(vec![cgd::TopicPartitions::default()
                .with_topic_name(TopicName(s("t")))
                .with_partitions(vec![0, 1, 2])]);
        let m = cgd::Member::default()
            .with_member_id(s("m"))
            .with_rack_id(Some(s("r")))
            .with_subscribed_topic_names(vec![TopicName(s("t")), TopicName(s("u"))])
            .with_subscribed_topic_regex(Some(s("x.*")))
            .with_assignment(a.clone())
            .with_target_assignment(a);
        let g = cgd::DescribedGroup::default()
            .with_error_message(Some(s("e")))
            .with_members(vec![m, cgd::Member::default()]);
        check(&ConsumerGroupDescribeResponse::default().with_groups(vec![g]));
    }

    #[test]
    fn offset_fetch() {
        let p = OffsetFetchResponsePartition::default()
            .with_committed_offset(10)
            .with_metadata(None);
        let t = OffsetFetchResponseTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![p.clone(), p.with_metadata(Some(s("md")))]);
        check(&OffsetFetchResponse::default().with_topics(vec![t]));
    }

    #[test]
    fn list_offsets() {
        let p = ListOffsetsPartitionResponse::default().with_offset(42);
        let t = ListOffsetsTopicResponse::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![p.clone(), p]);
        check(&ListOffsetsResponse::default().with_topics(vec![t]));
    }

    #[test]
    fn huge_counts_are_refused() {
        // ListGroups v5: throttle, error, then a group array claiming 2^28 - 1 elements.
        let body = [0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0];
        assert!(walk(ListGroupsResponse::FIELDS, &body).is_err());
        // An int32 array claiming u32::MAX - 1 elements.
        let body = [0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(walk(&[I32, ArrI32], &body).is_err());
        // Tagged fields claiming more bytes than there are.
        assert!(walk(&[], &[1, 0, 0x7f]).is_err());
    }
}
