//! What a principal may do, as Kafka's "authorized operations" bit fields (KIP-430): bit `n` set
//! means operation `n` of Kafka's `AclOperation` is allowed. There is no authorizer yet, so every
//! principal may do everything Kafka lists for the resource type; ACLs go here.

/// Kafka's `AclOperation` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Operation {
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
}

/// The resource types the authorized-operations fields describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Topic,
    Group,
    Cluster,
}

/// Who asks. Until authentication exists everyone is Kafka's `User:ANONYMOUS`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Principal;

/// The value of an authorized-operations field that was not asked for.
pub const NOT_REQUESTED: i32 = i32::MIN;

/// The operations Kafka defines for each resource type (`AclEntry.supportedOperations`).
pub fn supported(resource: Resource) -> &'static [Operation] {
    use Operation::*;
    match resource {
        Resource::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        Resource::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        Resource::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
    }
}

/// The operations `principal` may perform on a resource of this type, as Kafka's bit field.
pub fn authorized_operations(resource: Resource, _principal: &Principal) -> i32 {
    supported(resource)
        .iter()
        .fold(0, |bits, &op| bits | (1 << op as u8))
}

/// [`authorized_operations`] if the request asked for it, else Kafka's "not requested" marker.
pub fn if_requested(asked: bool, resource: Resource, principal: &Principal) -> i32 {
    if asked {
        authorized_operations(resource, principal)
    } else {
        NOT_REQUESTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_fields_are_kafkas() {
        let p = Principal;
        // READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS.
        assert_eq!(authorized_operations(Resource::Topic, &p), 3576);
        // READ DELETE DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS.
        assert_eq!(authorized_operations(Resource::Group, &p), 3400);
        // CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE.
        assert_eq!(authorized_operations(Resource::Cluster, &p), 8096);
        assert_eq!(if_requested(false, Resource::Topic, &p), i32::MIN);
    }
}
