use skiff_metastore::security::codes::{ALLOW, DENY, LITERAL, PREFIXED};

use super::*;

fn binding(
    name: &str,
    pattern: i8,
    principal: &str,
    host: &str,
    op: Operation,
    permission: i8,
) -> AclBinding {
    AclBinding {
        resource_type: resource::TOPIC,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: principal.into(),
        host: host.into(),
        operation: op as i8,
        permission_type: permission,
    }
}

fn caller(principal: &str) -> Caller {
    Caller {
        principal: principal.into(),
        host: "10.0.0.1".into(),
    }
}

fn authorizer(bindings: Vec<AclBinding>, allow_if_no_acl: bool) -> Arc<Authorizer> {
    let a = Authorizer::new(AuthorizerConfig {
        super_users: vec!["User:root".into()],
        allow_if_no_acl,
    });
    a.set(Acls {
        version: 1,
        bindings,
    });
    a
}

#[test]
fn kafkas_rules() {
    use Operation::*;
    let a = authorizer(
        vec![
            binding("orders", LITERAL, "User:alice", "*", Read, ALLOW),
            binding("pay", PREFIXED, "User:bob", "*", Write, ALLOW),
            binding("pay-secret", LITERAL, "User:bob", "*", Write, DENY),
            binding("*", LITERAL, "User:*", "10.0.0.9", Describe, ALLOW),
            binding("logs", LITERAL, "User:carol", "10.0.0.2", Read, ALLOW),
        ],
        false,
    );
    let topic = resource::TOPIC;
    assert!(a.allowed(&caller("User:alice"), Read, topic, "orders"));
    // READ implies DESCRIBE; not WRITE.
    assert!(a.allowed(&caller("User:alice"), Describe, topic, "orders"));
    assert!(!a.allowed(&caller("User:alice"), Write, topic, "orders"));
    // Prefixes, and a DENY that wins over them.
    assert!(a.allowed(&caller("User:bob"), Write, topic, "payments"));
    assert!(!a.allowed(&caller("User:bob"), Write, topic, "pay-secret"));
    assert!(!a.allowed(&caller("User:bob"), Write, topic, "pa"));
    // Hosts.
    assert!(!a.allowed(&caller("User:carol"), Read, topic, "logs"));
    let mut from = caller("User:carol");
    from.host = "10.0.0.2".into();
    assert!(a.allowed(&from, Read, topic, "logs"));
    // No binding applies: allow.everyone.if.no.acl.found decides.
    assert!(!a.allowed(&caller("User:alice"), Read, topic, "unnamed"));
    assert!(authorizer(vec![], true).allowed(&caller("User:x"), Read, topic, "unnamed"));
    // Bindings exist for the resource, none for the caller: refused, whatever the flag.
    assert!(!authorizer(
        vec![binding("orders", LITERAL, "User:alice", "*", Read, ALLOW)],
        true
    )
    .allowed(&caller("User:eve"), Read, topic, "orders"));
    // Super users may do anything.
    assert!(a.allowed(&caller("User:root"), Write, topic, "pay-secret"));
}

#[test]
fn an_older_read_does_not_replace_a_newer_one() {
    let a = authorizer(
        vec![binding("t", LITERAL, "User:a", "*", Operation::Read, ALLOW)],
        false,
    );
    a.set(Acls {
        version: 3,
        bindings: vec![],
    });
    a.set(Acls {
        version: 2,
        bindings: vec![binding("t", LITERAL, "User:a", "*", Operation::Read, ALLOW)],
    });
    assert!(!a.allowed(&caller("User:a"), Operation::Read, resource::TOPIC, "t"));
}

#[test]
fn allowed_on_some_resource_of_a_type() {
    use Operation::*;
    let a = authorizer(
        vec![
            binding("pay", PREFIXED, "User:bob", "*", Write, ALLOW),
            binding("orders", LITERAL, "User:carol", "*", Read, ALLOW),
            binding("x", LITERAL, "User:dave", "*", Write, ALLOW),
            binding("*", LITERAL, "User:dave", "*", Write, DENY),
        ],
        false,
    );
    assert!(a.allowed_on_any(&caller("User:bob"), Write, resource::TOPIC));
    assert!(!a.allowed_on_any(&caller("User:carol"), Write, resource::TOPIC));
    assert!(a.allowed_on_any(&caller("User:carol"), Describe, resource::TOPIC));
    assert!(!a.allowed_on_any(&caller("User:dave"), Write, resource::TOPIC));
    assert!(a.allowed_on_any(&caller("User:root"), Write, resource::TOPIC));
    // No binding of the type: allow.everyone.if.no.acl.found decides.
    assert!(!a.allowed_on_any(&caller("User:bob"), Read, resource::GROUP));
    let open = authorizer(vec![], true);
    assert!(open.allowed_on_any(&caller("User:anyone"), Write, resource::TOPIC));
}
