//! Samples of the authentication and user requests for the guard's tests.

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    AlterUserScramCredentialsRequest, ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::{AclCreation, CreateAclsRequest};
use kafka_protocol::messages::delete_acls_request::{DeleteAclsFilter, DeleteAclsRequest};
use kafka_protocol::messages::describe_acls_request::DescribeAclsRequest;
use kafka_protocol::messages::describe_user_scram_credentials_request::{
    DescribeUserScramCredentialsRequest, UserName,
};
use kafka_protocol::messages::{alter_client_quotas_request, describe_client_quotas_request};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, ApiKey, DescribeClientQuotasRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Message, VersionRange};

use super::{encode, s, tags};

pub(super) fn samples(api: ApiKey, v: i16) -> Option<Vec<Bytes>> {
    let t = |flexible: bool| if flexible { tags() } else { Default::default() };
    Some(match api {
        ApiKey::CreateAcls => {
            let creation = AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(s("orders"))
                .with_resource_pattern_type(if v >= 1 { 4 } else { 3 })
                .with_principal(s("User:alice"))
                .with_host(s("*"))
                .with_operation(3)
                .with_permission_type(3)
                .with_unknown_tagged_fields(t(v >= 2));
            vec![
                encode(
                    CreateAclsRequest::default()
                        .with_creations(vec![creation.clone(), creation])
                        .with_unknown_tagged_fields(t(v >= 2)),
                    v,
                ),
                encode(CreateAclsRequest::default(), v),
            ]
        }
        ApiKey::DescribeAcls => vec![
            encode(
                DescribeAclsRequest::default()
                    .with_resource_type_filter(2)
                    .with_resource_name_filter(Some(s("orders")))
                    .with_pattern_type_filter(if v >= 1 { 2 } else { 3 })
                    .with_principal_filter(Some(s("User:alice")))
                    .with_host_filter(None)
                    .with_operation(1)
                    .with_permission_type(1)
                    .with_unknown_tagged_fields(t(v >= 2)),
                v,
            ),
            encode(DescribeAclsRequest::default(), v),
        ],
        ApiKey::DeleteAcls => {
            let filter = DeleteAclsFilter::default()
                .with_resource_type_filter(1)
                .with_resource_name_filter(None)
                .with_pattern_type_filter(if v >= 1 { 1 } else { 3 })
                .with_principal_filter(Some(s("User:bob")))
                .with_host_filter(Some(s("*")))
                .with_operation(1)
                .with_permission_type(1)
                .with_unknown_tagged_fields(t(v >= 2));
            vec![
                encode(
                    DeleteAclsRequest::default()
                        .with_filters(vec![filter.clone(), filter])
                        .with_unknown_tagged_fields(t(v >= 2)),
                    v,
                ),
                encode(DeleteAclsRequest::default(), v),
            ]
        }
        ApiKey::SaslHandshake => vec![
            encode(
                SaslHandshakeRequest::default().with_mechanism(s("SCRAM-SHA-512")),
                v,
            ),
            encode(SaslHandshakeRequest::default(), v),
        ],
        ApiKey::SaslAuthenticate => {
            let t = if v >= 2 { tags() } else { Default::default() };
            vec![
                encode(
                    SaslAuthenticateRequest::default()
                        .with_auth_bytes(Bytes::from_static(b"n,,n=user,r=abc"))
                        .with_unknown_tagged_fields(t),
                    v,
                ),
                encode(SaslAuthenticateRequest::default(), v),
            ]
        }
        ApiKey::AlterUserScramCredentials => {
            let deletion = ScramCredentialDeletion::default()
                .with_name(s("bob"))
                .with_mechanism(1)
                .with_unknown_tagged_fields(tags());
            let upsertion = ScramCredentialUpsertion::default()
                .with_name(s("alice"))
                .with_mechanism(2)
                .with_iterations(8192)
                .with_salt(Bytes::from_static(b"salt"))
                .with_salted_password(Bytes::from_static(&[7; 64]))
                .with_unknown_tagged_fields(tags());
            vec![
                encode(
                    AlterUserScramCredentialsRequest::default()
                        .with_deletions(vec![deletion.clone(), deletion])
                        .with_upsertions(vec![upsertion.clone(), upsertion])
                        .with_unknown_tagged_fields(tags()),
                    v,
                ),
                encode(AlterUserScramCredentialsRequest::default(), v),
            ]
        }
        ApiKey::DescribeUserScramCredentials => {
            let user = UserName::default()
                .with_name(s("alice"))
                .with_unknown_tagged_fields(tags());
            vec![
                encode(
                    DescribeUserScramCredentialsRequest::default()
                        .with_users(Some(vec![user.clone(), user]))
                        .with_unknown_tagged_fields(tags()),
                    v,
                ),
                encode(
                    DescribeUserScramCredentialsRequest::default().with_users(None),
                    v,
                ),
            ]
        }
        ApiKey::DescribeClientQuotas => {
            let component = describe_client_quotas_request::ComponentData::default()
                .with_entity_type(s("user"))
                .with_match_type(0)
                .with_match(Some(s("alice")))
                .with_unknown_tagged_fields(t(v >= 1));
            vec![
                encode(
                    DescribeClientQuotasRequest::default()
                        .with_components(vec![component.clone(), component.with_match(None)])
                        .with_strict(true)
                        .with_unknown_tagged_fields(t(v >= 1)),
                    v,
                ),
                encode(DescribeClientQuotasRequest::default(), v),
            ]
        }
        ApiKey::AlterClientQuotas => {
            use alter_client_quotas_request::{EntityData, EntryData, OpData};
            let entity = EntityData::default()
                .with_entity_type(s("client-id"))
                .with_entity_name(Some(s("app")))
                .with_unknown_tagged_fields(t(v >= 1));
            let op = OpData::default()
                .with_key(s("producer_byte_rate"))
                .with_value(1048576.0)
                .with_unknown_tagged_fields(t(v >= 1));
            let entry = EntryData::default()
                .with_entity(vec![entity.clone(), entity.with_entity_name(None)])
                .with_ops(vec![op.clone(), op.with_remove(true)])
                .with_unknown_tagged_fields(t(v >= 1));
            vec![
                encode(
                    AlterClientQuotasRequest::default()
                        .with_entries(vec![entry.clone(), entry])
                        .with_validate_only(true)
                        .with_unknown_tagged_fields(t(v >= 1)),
                    v,
                ),
                encode(AlterClientQuotasRequest::default(), v),
            ]
        }
        _ => return None,
    })
}

pub(super) fn kafka_versions(api: ApiKey) -> Option<VersionRange> {
    Some(match api {
        ApiKey::CreateAcls => CreateAclsRequest::VERSIONS,
        ApiKey::DescribeAcls => DescribeAclsRequest::VERSIONS,
        ApiKey::DeleteAcls => DeleteAclsRequest::VERSIONS,
        ApiKey::SaslHandshake => SaslHandshakeRequest::VERSIONS,
        ApiKey::SaslAuthenticate => SaslAuthenticateRequest::VERSIONS,
        ApiKey::AlterUserScramCredentials => AlterUserScramCredentialsRequest::VERSIONS,
        ApiKey::DescribeUserScramCredentials => DescribeUserScramCredentialsRequest::VERSIONS,
        ApiKey::DescribeClientQuotas => DescribeClientQuotasRequest::VERSIONS,
        ApiKey::AlterClientQuotas => AlterClientQuotasRequest::VERSIONS,
        _ => return None,
    })
}

pub(super) fn kafka_decode(api: ApiKey, v: i16, body: &[u8]) -> Option<Result<usize, String>> {
    fn len<T: Decodable>(v: i16, body: &[u8]) -> Result<usize, String> {
        let mut buf = Bytes::copy_from_slice(body);
        T::decode(&mut buf, v).map_err(|e| e.to_string())?;
        Ok(body.len() - buf.len())
    }
    Some(match api {
        ApiKey::CreateAcls => len::<CreateAclsRequest>(v, body),
        ApiKey::DescribeAcls => len::<DescribeAclsRequest>(v, body),
        ApiKey::DeleteAcls => len::<DeleteAclsRequest>(v, body),
        ApiKey::SaslHandshake => len::<SaslHandshakeRequest>(v, body),
        ApiKey::SaslAuthenticate => len::<SaslAuthenticateRequest>(v, body),
        ApiKey::AlterUserScramCredentials => len::<AlterUserScramCredentialsRequest>(v, body),
        ApiKey::DescribeUserScramCredentials => len::<DescribeUserScramCredentialsRequest>(v, body),
        ApiKey::DescribeClientQuotas => len::<DescribeClientQuotasRequest>(v, body),
        ApiKey::AlterClientQuotas => len::<AlterClientQuotasRequest>(v, body),
        _ => return None,
    })
}
