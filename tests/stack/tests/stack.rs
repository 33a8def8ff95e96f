//! The harness itself on both backends: a site applied and connected through the simulator's
//! tokens is seen by a second "Lambda", which calls Salesforce with them.

use forcelink::domain::ConnectionStatus;
use forcelink::salesforce::session;
use forcelink_stack::fixtures::ACME as SITE;
use forcelink_stack::{Backend, Stack, both_backends};

async fn connect_and_share(backend: Backend) {
    let s = Stack::start(backend, SITE).await;
    assert_eq!(s.deps.settings.data_dir().is_some(), backend == Backend::Embedded);
    let before = session::load(&s.deps, "acme", "production").await.unwrap().record;
    assert_eq!(before.status, ConnectionStatus::Pending);
    s.connect("acme", "production", "admin@acme.example").await;

    let other = s.another_lambda().await;
    let conn = session::load(&other, "acme", "production").await.unwrap().record;
    assert_eq!(conn.status, ConnectionStatus::Connected);
    assert_eq!(conn.org_id.as_deref(), Some(s.sim.org("acme").unwrap().id.as_str()));
    let tokens = session::open_tokens(other.keys.as_ref(), &conn).await.unwrap();
    assert!(tokens.refresh_token.is_some());
    other.salesforce.access(&other, "acme", "production").await.unwrap();
    assert!(s.outbox().is_empty());
}

both_backends!(connect_and_share);
