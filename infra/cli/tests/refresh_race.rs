//! Token refresh across "Lambdas" (separate `Deps`, one store) in scripted interleavings: the
//! simulator holds a refresh request at its token endpoint (`sfsim::oauth::knobs`) while the
//! test plays the other process. Each scenario runs on both backends (forcelink-stack: the
//! embedded files, and moto's DynamoDB and KMS).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use forcelink::domain::connection::ConnectionStatus;
use forcelink::domain::keys;
use forcelink::ports::{Clock, Cond, Item, ManualClock};
use forcelink::salesforce::SfError;
use forcelink::salesforce::session::{self, LEASE_SECS, MIN_LEASE_LEFT_SECS, TOKEN_TIMEOUT, TokenBundle};
use forcelink_stack::fixtures::ACME_CORP;
use forcelink_stack::{Backend, CLIENT_ID, CLIENT_SECRET, Stack, both_backends};
use sfsim::SimConfig;
use sfsim::oauth::knobs::{self, Release};

const SITE: &str = "acme";
const CONN: &str = "production";

/// The stack, its `deps` being Lambda A, with the site connected (a fresh refresh token family).
struct World {
    stack: Stack,
}

impl std::ops::Deref for World {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl World {
    async fn new(backend: Backend) -> Self {
        // Longer than the old 30 s lease: the token call must not rely on this timeout.
        let timeout = [("FORCELINK_HTTP_TIMEOUT_SECS", "45")];
        let stack = Stack::start_with(backend, SimConfig::default(), &timeout, ACME_CORP).await;
        stack.connect(SITE, CONN, "admin@acme.example").await;
        World { stack }
    }

    /// Writes tokens as another process would (a new authorization), outside any lease.
    async fn store_tokens(&self, bundle: TokenBundle, instance: Option<String>) {
        let sealed = session::seal_tokens(self.deps.keys.as_ref(), SITE, CONN, &bundle).await.unwrap();
        session::update_connection(&self.deps, SITE, CONN, |c| {
            c.tokens_sealed = Some(sealed.clone());
            c.status = ConnectionStatus::Connected;
            if let Some(i) = &instance {
                c.instance_url = Some(i.clone());
            }
        })
        .await
        .unwrap();
    }

    async fn tokens(&self) -> (ConnectionStatus, TokenBundle) {
        let conn = session::load(&self.deps, SITE, CONN).await.unwrap().record;
        (conn.status, session::open_tokens(self.deps.keys.as_ref(), &conn).await.unwrap())
    }

    async fn lease(&self) -> Option<Item> {
        self.deps.store.get(&keys::refresh_lease_pk(SITE, CONN), keys::REFRESH_LEASE_SK).await.unwrap()
    }

    /// A refresh at the simulator, as another process holding `refresh_token` would do it.
    async fn rotate_elsewhere(&self, refresh_token: &str) -> TokenBundle {
        let ca = reqwest::Certificate::from_pem(self.sim.ca_pem().unwrap().as_bytes()).unwrap();
        let http = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
        let form =
            [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
        let answer: serde_json::Value =
            http.post(format!("{}/services/oauth2/token", self.sim.https_url())).form(&form).send().await.unwrap().json().await.unwrap();
        TokenBundle {
            access_token: answer["access_token"].as_str().expect("rotated elsewhere").into(),
            refresh_token: Some(answer["refresh_token"].as_str().expect("a rotated refresh token").into()),
        }
    }

    fn token_calls(&self) -> u64 {
        let org = self.sim.org("acme").unwrap().id;
        self.sim.calls(&org).unwrap().get("oauth_token").copied().unwrap_or(0)
    }
}

/// A token call slower than the old 30 s lease: the holder gives up after its own timeout and
/// keeps the lease, and no other process sends the same refresh token while the call is open.
async fn slow_refresh_is_never_concurrent(backend: Backend) {
    let w = World::new(backend).await;
    let (_, before) = w.tokens().await;
    let hold = knobs::hold_next_refresh(&w.sim);
    let a = w.deps.clone();
    let started = Instant::now();
    let first = tokio::spawn(async move { a.salesforce.refresh(&a, SITE, CONN, None).await });
    assert_eq!(hold.arrived().await, before.refresh_token.clone().unwrap());

    // Lambda B keeps trying to refresh the whole time.
    let b = w.another_lambda().await;
    let stop = Arc::new(AtomicBool::new(false));
    let stop_b = stop.clone();
    let second = tokio::spawn(async move {
        while !stop_b.load(Ordering::SeqCst) {
            let _ = b.salesforce.refresh(&b, SITE, CONN, None).await;
        }
    });

    let result = first.await.unwrap();
    let took = started.elapsed();
    assert_eq!(hold.others(), 0, "a second refresh reached Salesforce while the first was open");
    assert!(matches!(result, Err(SfError::Transient(_))), "{result:?}");
    assert!(took < TOKEN_TIMEOUT + Duration::from_secs(5), "gave up after {took:?}");
    assert!(took.as_secs() < LEASE_SECS as u64);
    assert!(w.lease().await.is_some(), "an unknown outcome leaves the lease to expire");
    hold.release(Release::Drop);
    stop.store(true, Ordering::SeqCst);
    second.abort();
    assert_eq!(w.tokens().await.1.refresh_token, before.refresh_token, "nothing stored");
}

/// A holder that stalled after taking the lease does not call Salesforce on what is left of it.
async fn short_lease_is_not_used(backend: Backend) {
    let mut w = World::new(backend).await;
    let clock = Arc::new(StallingClock::new(Duration::from_secs(45)));
    w.stack.deps.clock = clock.clone();
    let hold = knobs::hold_next_refresh(&w.sim);
    let a = w.deps.clone();
    let refresh = tokio::spawn(async move { a.salesforce.refresh(&a, SITE, CONN, None).await });
    hold.arrived().await;
    let lease = w.lease().await.expect("the caller holds the lease");
    let left = lease.expires_at.unwrap() - clock.epoch_secs();
    assert!(left >= MIN_LEASE_LEFT_SECS, "Salesforce was called with {left} s of lease left");
    hold.release(Release::Proceed);
    refresh.await.unwrap().expect("the refresh succeeds on a fresh lease");
    assert_eq!(w.token_calls(), 1);
}

/// The lease expired and another process took it while the token call was open: the rotated
/// tokens are not stored.
async fn lost_fence_stores_nothing(backend: Backend) {
    let w = World::new(backend).await;
    let (_, before) = w.tokens().await;
    let hold = knobs::hold_next_refresh(&w.sim);
    let a = w.deps.clone();
    let refresh = tokio::spawn(async move { a.salesforce.refresh(&a, SITE, CONN, None).await });
    hold.arrived().await;
    let pk = keys::refresh_lease_pk(SITE, CONN);
    let theirs = Item::new(&pk, keys::REFRESH_LEASE_SK, r#"{"owner":"lambda-b"}"#).with_expiry(w.deps.clock.epoch_secs() + LEASE_SECS);
    w.deps.store.put(theirs, Cond::Always).await.unwrap();
    hold.release(Release::Proceed);
    let result = refresh.await.unwrap();
    assert!(matches!(result, Err(SfError::Transient(ref m)) if m.contains("lease")), "{result:?}");
    assert_eq!(w.token_calls(), 1, "Salesforce did rotate");
    let (status, after) = w.tokens().await;
    assert_eq!(after.refresh_token, before.refresh_token, "the new tokens were not stored");
    assert_eq!(after.access_token, before.access_token);
    assert_eq!(status, ConnectionStatus::Connected);
    assert_eq!(w.lease().await.unwrap().body, r#"{"owner":"lambda-b"}"#, "the other holder's lease is untouched");
}

/// `invalid_grant` for a refresh token someone else rotated meanwhile: retried with the stored
/// one, not `needs_reauth`.
async fn invalid_grant_after_rotation_elsewhere_is_retried(backend: Backend) {
    let w = World::new(backend).await;
    let (_, before) = w.tokens().await;
    let hold = knobs::hold_next_refresh(&w.sim);
    let a = w.deps.clone();
    let refresh = tokio::spawn(async move { a.salesforce.refresh(&a, SITE, CONN, None).await });
    let sent = hold.arrived().await;
    let theirs = w.rotate_elsewhere(&sent).await;
    let their_refresh = theirs.refresh_token.clone();
    w.store_tokens(theirs, None).await;
    hold.release(Release::Answer { error: "invalid_grant", description: "expired access/refresh token".into() });
    refresh.await.unwrap().expect("retried with the stored refresh token");
    let (status, after) = w.tokens().await;
    assert_eq!(status, ConnectionStatus::Connected, "not needs_reauth");
    assert_ne!(after.refresh_token, their_refresh, "refreshed with the stored token, which rotated again");
    assert_ne!(after.refresh_token, before.refresh_token);
    let conn = session::load(&w.deps, SITE, CONN).await.unwrap().record;
    assert_eq!(conn.health.invalid_grants, 0);
}

/// A clock that stalls once: the read after the first jumps `by` (a slow KMS call, a frozen Lambda).
struct StallingClock {
    inner: ManualClock,
    by: Duration,
    stalled: AtomicBool,
}

impl StallingClock {
    fn new(by: Duration) -> Self {
        Self { inner: ManualClock::at(time::OffsetDateTime::now_utc()), by, stalled: AtomicBool::new(false) }
    }
}

impl Clock for StallingClock {
    fn now(&self) -> time::OffsetDateTime {
        let now = self.inner.now();
        if !self.stalled.swap(true, Ordering::SeqCst) {
            self.inner.advance(self.by);
        }
        now
    }
}

both_backends!(
    slow_refresh_is_never_concurrent,
    short_lease_is_not_used,
    lost_fence_stores_nothing,
    invalid_grant_after_rotation_elsewhere_is_retried,
);
