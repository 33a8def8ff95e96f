//! Attacks on "Email me a fresh link" (`POST /l/renew`) and on the logs, on both backends (the
//! harness `forcelink_stack::Stack`: embedded, and moto) with a clock the tests move: revoked links and deactivated people are never
//! renewed, a link is renewed at most three times (its fresh links count too), a person gets at
//! most five fresh links a day, concurrent requests cannot exceed either cap, a fresh link keeps
//! the original's lifetime, and no log line carries a token. Every emailed link is followed as
//! its recipient would: a browser `GET`, redirects not followed, the `Location` checked.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use forcelink::domain::record;
use forcelink::domain::{DirectoryUser, Site};
use forcelink::links::{self, Link, LinkClaims};
use forcelink::ports::{Clock, Cond, ManualClock};
use forcelink_stack::{Backend, Stack, both_backends};
use http::{Method, StatusCode, header};
use link_redirect::clicks::{self, Quota, Taken};
use link_redirect::renew::{MAX_FRESH_LINKS_PER_DAY, MAX_RENEWALS_PER_LINK};

const PUBLIC: &str = "https://links.forcelink.example";
const PLATFORM: &str = "https://acme.platform.example";
const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

struct World {
    stack: Stack,
    clock: Arc<ManualClock>,
}

impl std::ops::Deref for World {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

fn site() -> Site {
    serde_json::from_value(serde_json::json!({"id": "acme", "name": "Acme", "platform_url": PLATFORM})).unwrap()
}

fn user(id: &str, active: bool) -> DirectoryUser {
    serde_json::from_value(serde_json::json!({
        "site": "acme", "id": id, "email": format!("{id}@acme.example"), "first_name": "Pat", "active": active,
    }))
    .unwrap()
}

/// A stack whose clock starts now (the stores expire items by the system clock), at least an
/// hour before midnight UTC so a test's day does not end under it.
async fn world(backend: Backend) -> World {
    let mut stack = Stack::start_with(backend, sfsim::SimConfig::default(), &[("FORCELINK_PUBLIC_URL", PUBLIC)], "").await;
    let mut now = time::OffsetDateTime::now_utc();
    if now.unix_timestamp().rem_euclid(DAY) > DAY - HOUR {
        now += time::Duration::hours(2);
    }
    let clock = Arc::new(ManualClock::at(now));
    stack.deps.clock = clock.clone();
    let store = stack.deps.store.as_ref();
    record::save(store, &site(), Cond::Always).await.unwrap();
    for id in ["pat", "sam", "lee"] {
        record::save(store, &user(id, true), Cond::Always).await.unwrap();
    }
    World { stack, clock }
}

impl World {
    fn now(&self) -> i64 {
        self.clock.epoch_secs()
    }

    fn advance(&self, secs: i64) {
        self.clock.advance(Duration::from_secs(secs as u64));
    }

    /// A link for `user` made `age` seconds ago that works for `lifetime` seconds.
    fn link(&self, user: &str, target: &str, age: i64, lifetime: i64) -> (String, Link) {
        let issued = self.now() - age;
        let claims = LinkClaims::new("acme", user, target, issued + lifetime, true);
        (links::mint_issued(self.deps.keys.as_ref(), &claims, issued), Link { claims, issued_at: Some(issued), renews: None })
    }

    async fn call(&self, method: Method, path: &str, body: Bytes) -> http::Response<Bytes> {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::USER_AGENT, BROWSER)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .unwrap();
        link_redirect::handle(&self.deps, req).await
    }

    /// Opens a link as a person in a browser would (redirects not followed).
    async fn open(&self, token: &str) -> http::Response<Bytes> {
        self.call(Method::GET, &format!("/l/{token}"), Bytes::new()).await
    }

    /// The renewal ticket the page of a bad `token` offers.
    async fn ticket(&self, token: &str) -> String {
        let page = self.open(token).await;
        ticket_of(body(&page)).unwrap_or_else(|| panic!("no fresh-link offer ({}): {}", page.status(), body(&page)))
    }

    async fn renew(&self, ticket: &str) -> http::Response<Bytes> {
        self.call(Method::POST, "/l/renew", Bytes::from(format!("ticket={ticket}"))).await
    }

    /// The token of the fresh link in the newest email.
    fn fresh_token(&self) -> String {
        let mails = self.outbox();
        let mail = mails.last().expect("an email");
        let start = mail.find(&format!("{PUBLIC}/l/")).expect("a link in the email") + PUBLIC.len() + 3;
        mail[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_".contains(*c)).collect()
    }
}

fn body(resp: &http::Response<Bytes>) -> &str {
    std::str::from_utf8(resp.body()).unwrap()
}

fn ticket_of(html: &str) -> Option<String> {
    let start = html.find("name=\"ticket\" value=\"")? + "name=\"ticket\" value=\"".len();
    Some(html[start..].split('"').next()?.to_string())
}

fn location(resp: &http::Response<Bytes>) -> &str {
    resp.headers().get(header::LOCATION).map(|v| v.to_str().unwrap()).unwrap_or("")
}

async fn a_revoked_link_is_never_renewed(backend: Backend) {
    let w = world(backend).await;
    let (token, link) = w.link("pat", "/q/revoked", 2 * DAY, DAY);
    let ticket = w.ticket(&token).await;
    clicks::revoke(w.deps.store.as_ref(), &link.claims.nonce, w.now() + DAY).await.unwrap();
    // A ticket taken before the revocation is refused afterwards.
    let resp = w.renew(&ticket).await;
    assert_eq!(resp.status(), StatusCode::GONE, "{}", body(&resp));
    assert!(body(&resp).contains("withdrawn"));
    assert!(w.outbox().is_empty(), "no fresh link for a revoked link");
    // The expired page no longer offers one.
    let page = w.open(&token).await;
    assert_eq!(page.status(), StatusCode::GONE);
    assert!(body(&page).contains("withdrawn") && ticket_of(body(&page)).is_none());

    // Revoking the original also stops its fresh links and their renewals.
    let (token, link) = w.link("sam", "/q/revoked-later", 2 * DAY, DAY);
    assert_eq!(w.renew(&w.ticket(&token).await).await.status(), StatusCode::OK);
    let fresh = w.fresh_token();
    let (first, again) = (w.open(&fresh).await, w.open(&fresh).await);
    assert_eq!(first.status(), StatusCode::FOUND);
    let used_ticket = ticket_of(body(&again)).expect("a used link offers a fresh one");
    clicks::revoke(w.deps.store.as_ref(), &link.claims.nonce, w.now() + 30 * DAY).await.unwrap();
    w.advance(61);
    let resp = w.renew(&used_ticket).await;
    assert_eq!(resp.status(), StatusCode::GONE, "{}", body(&resp));
    assert_eq!(w.outbox().len(), 1);
}

async fn a_deactivated_person_gets_no_fresh_link(backend: Backend) {
    let w = world(backend).await;
    let (token, _) = w.link("lee", "/q/gone", 2 * DAY, DAY);
    let ticket = w.ticket(&token).await;
    record::save(w.deps.store.as_ref(), &user("lee", false), Cond::Always).await.unwrap();
    let resp = w.renew(&ticket).await;
    assert_eq!(resp.status(), StatusCode::GONE, "{}", body(&resp));
    assert!(body(&resp).contains("no longer active"));
    assert!(w.outbox().is_empty());
}

async fn a_fourth_renewal_of_one_link_is_refused(backend: Backend) {
    let w = world(backend).await;
    let (original, _) = w.link("pat", "/q/four", 2 * HOUR, HOUR);
    // Renewal 1 and 2 from the original's page; 3 from the second fresh link once it expired.
    for round in 1..=3 {
        let ticket = if round == 3 { w.ticket(&w.fresh_token()).await } else { w.ticket(&original).await };
        let resp = w.renew(&ticket).await;
        assert_eq!(resp.status(), StatusCode::OK, "round {round}: {}", body(&resp));
        assert_eq!(w.outbox().len(), round, "round {round}");
        let fresh = w.fresh_token();
        let go = w.open(&fresh).await;
        assert_eq!((go.status(), location(&go)), (StatusCode::FOUND, format!("{PLATFORM}/q/four").as_str()), "round {round}");
        w.advance(2 * HOUR);
    }
    // The fourth, from the original or from the newest fresh link, is refused.
    for token in [original.clone(), w.fresh_token()] {
        let resp = w.renew(&w.ticket(&token).await).await;
        assert_eq!(resp.status(), StatusCode::GONE, "{}", body(&resp));
        assert!(body(&resp).contains(&format!("{MAX_RENEWALS_PER_LINK} fresh links")), "{}", body(&resp));
        w.advance(61);
    }
    assert_eq!(w.outbox().len(), 3);
}

async fn a_person_gets_at_most_five_fresh_links_a_day(backend: Backend) {
    let w = world(backend).await;
    let mut tokens = Vec::new();
    for i in 0..7 {
        tokens.push(w.link("pat", &format!("/q/day{i}"), 2 * DAY, DAY).0);
    }
    let tickets = futures::future::join_all(tokens.iter().map(|t| w.ticket(t))).await;
    // Within a minute of a fresh link, another request is answered "just sent" and sends nothing.
    assert_eq!(w.renew(&tickets[0]).await.status(), StatusCode::OK);
    let soon = w.renew(&tickets[1]).await;
    assert!(body(&soon).contains("just sent"), "{}", body(&soon));
    assert_eq!(w.outbox().len(), 1);
    for (i, ticket) in tickets.iter().enumerate().take(MAX_FRESH_LINKS_PER_DAY as usize).skip(1) {
        w.advance(61);
        assert_eq!(w.renew(ticket).await.status(), StatusCode::OK, "fresh link {}", i + 1);
    }
    w.advance(61);
    let capped = w.renew(&tickets[5]).await;
    assert_eq!(capped.status(), StatusCode::TOO_MANY_REQUESTS, "{}", body(&capped));
    let wait: i64 = capped.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= DAY && (w.now() + wait).rem_euclid(DAY) == 0, "retry at midnight UTC: {wait}");
    assert_eq!(w.outbox().len(), MAX_FRESH_LINKS_PER_DAY as usize);
    // Another person is not affected; the next day the person may ask again.
    let (other, _) = w.link("sam", "/q/other", 2 * DAY, DAY);
    assert_eq!(w.renew(&w.ticket(&other).await).await.status(), StatusCode::OK);
    w.advance(DAY);
    let (next_day, _) = w.link("pat", "/q/next-day", 2 * DAY, DAY);
    assert_eq!(w.renew(&w.ticket(&next_day).await).await.status(), StatusCode::OK);
    assert_eq!(w.outbox().len(), MAX_FRESH_LINKS_PER_DAY as usize + 2);
}

async fn concurrent_renewals_do_not_exceed_the_caps(backend: Backend) {
    let w = Arc::new(world(backend).await);
    // One renewal left on a link: two requests at once with two tickets send one fresh link.
    let (original, _) = w.link("pat", "/q/race", 2 * HOUR, HOUR);
    for _ in 0..MAX_RENEWALS_PER_LINK - 1 {
        assert_eq!(w.renew(&w.ticket(&original).await).await.status(), StatusCode::OK);
        w.advance(61);
    }
    let (a, b) = (w.ticket(&original).await, w.ticket(&original).await);
    let (ra, rb) = tokio::join!(spawn_renew(&w, a), spawn_renew(&w, b));
    assert_eq!(w.outbox().len(), MAX_RENEWALS_PER_LINK as usize, "{ra:?} {rb:?}");
    assert!([ra, rb].contains(&StatusCode::OK));

    // One fresh link left today for a person: two requests for two links at once send one.
    for i in 0..MAX_FRESH_LINKS_PER_DAY - 1 {
        w.advance(61);
        let (token, _) = w.link("sam", &format!("/q/sam{i}"), 2 * DAY, DAY);
        assert_eq!(w.renew(&w.ticket(&token).await).await.status(), StatusCode::OK);
    }
    w.advance(61);
    let before = w.outbox().len();
    let (x, y) = (w.link("sam", "/q/x", 2 * DAY, DAY).0, w.link("sam", "/q/y", 2 * DAY, DAY).0);
    let (tx, ty) = (w.ticket(&x).await, w.ticket(&y).await);
    let (rx, ry) = tokio::join!(spawn_renew(&w, tx), spawn_renew(&w, ty));
    assert_eq!(w.outbox().len(), before + 1, "{rx:?} {ry:?}");
    w.advance(61);
    let z = w.link("sam", "/q/z", 2 * DAY, DAY).0;
    assert_eq!(w.renew(&w.ticket(&z).await).await.status(), StatusCode::TOO_MANY_REQUESTS);

    // The counters themselves: 16 racing takes on a cap of 3 take exactly 3.
    let quota = Quota { name: "race-test".into(), cap: 3, cooldown: None, expires_at: w.now() + DAY };
    let now = w.now();
    let takes = (0..16).map(|_| {
        let (w, quota) = (w.clone(), quota.clone());
        tokio::spawn(async move { clicks::take(w.deps.store.as_ref(), &[quota], now).await.unwrap() })
    });
    let mut results: Vec<Taken> = futures::future::join_all(takes).await.into_iter().map(Result::unwrap).collect();
    results.sort_by_key(|t| format!("{t:?}"));
    let yes: Vec<&Taken> = results.iter().filter(|t| matches!(t, Taken::Yes(_))).collect();
    assert_eq!(yes, [&Taken::Yes(vec![1]), &Taken::Yes(vec![2]), &Taken::Yes(vec![3])]);
    assert!(results.iter().all(|t| matches!(t, Taken::Yes(_) | Taken::Full(0))));
}

async fn spawn_renew(w: &Arc<World>, ticket: String) -> StatusCode {
    let w = w.clone();
    tokio::spawn(async move { w.renew(&ticket).await.status() }).await.unwrap()
}

async fn a_fresh_link_keeps_the_original_lifetime(backend: Backend) {
    let w = world(backend).await;
    for (user, lifetime, words) in [("pat", 3 * DAY, "3 days"), ("sam", 12 * HOUR, "12 hours"), ("lee", 30 * DAY, "30 days")] {
        let (token, _) = w.link(user, "/q/life", lifetime + HOUR, lifetime);
        let resp = w.renew(&w.ticket(&token).await).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", body(&resp));
        assert!(body(&resp).contains(&format!("works for {words}")), "{}", body(&resp));
        let mails = w.outbox();
        assert!(mails.last().unwrap().contains(&format!("It works for {words}.")), "{}", mails.last().unwrap());
        let fresh = links::verify_link(w.deps.keys.as_ref(), &w.fresh_token(), w.now()).unwrap();
        assert_eq!((fresh.lifetime(), fresh.claims.expires_at), (Some(lifetime), w.now() + lifetime));
        let go = w.open(&w.fresh_token()).await;
        assert_eq!((go.status(), location(&go)), (StatusCode::FOUND, format!("{PLATFORM}/q/life").as_str()));
        // It works until the original's lifetime is up, not a second more.
        w.advance(lifetime - 1);
        assert!(links::verify_link(w.deps.keys.as_ref(), &w.fresh_token(), w.now()).is_ok());
        w.advance(1);
        let gone = w.open(&w.fresh_token()).await;
        assert!(gone.status() == StatusCode::GONE && body(&gone).contains("has expired"), "{}", body(&gone));
    }
    // A link whose token does not say when it was made: the documented seven days.
    let claims = LinkClaims::new("acme", "pat", "/q/legacy", w.now() - 1, false);
    let legacy = links::mint(w.deps.keys.as_ref(), &claims);
    w.advance(61);
    assert_eq!(w.renew(&w.ticket(&legacy).await).await.status(), StatusCode::OK);
    assert!(w.outbox().last().unwrap().contains("It works for 7 days."));
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn no_log_line_carries_a_token(backend: Backend) {
    use tracing_subscriber::fmt::format::FmtSpan;
    let w = world(backend).await;
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary may have met these callsites with no subscriber: recompute
    // their cached interest now that this one exists.
    tracing::callsite::rebuild_interest_cache();

    let (good, _) = w.link("pat", "/q/log", 0, DAY);
    let (expired, _) = w.link("sam", "/q/log", 2 * DAY, DAY);
    let tampered = format!("{}{}", &good[..good.len() - 2], if good.ends_with('A') { "BB" } else { "AA" });
    let mut tokens = vec![good.clone(), expired.clone(), tampered, good[..good.len() - 9].to_string()];
    for token in &tokens {
        w.open(token).await;
        w.call(Method::HEAD, &format!("/l/{token}"), Bytes::new()).await;
    }
    w.open(&good).await; // used up
    let ticket = w.ticket(&expired).await;
    w.renew(&ticket).await;
    w.renew("not-a-ticket").await;
    let fresh = w.fresh_token();
    w.open(&fresh).await;
    let scanner = http::Request::get(format!("/l/{good}")).header(header::USER_AGENT, "Mimecast URL Protect").body(Bytes::new()).unwrap();
    link_redirect::handle(&w.deps, scanner).await;
    tokens.extend([ticket, fresh]);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("link followed") && logs.contains("link refused"), "the handler logged:\n{logs}");
    assert!(logs.contains(&format!("link={}", link_redirect::token_hash(&good))), "requests are logged under a short hash:\n{logs}");
    for token in &tokens {
        // Any 16-character piece of a token is enough to tell it is there.
        for piece in token.as_bytes().chunks(16).filter(|c| c.len() == 16) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(!logs.contains(piece), "a log line carries part of a token ({piece}):\n{logs}");
        }
    }
    assert!(!logs.contains("/l/"), "a log line carries a link path:\n{logs}");
}

both_backends!(
    a_revoked_link_is_never_renewed,
    a_deactivated_person_gets_no_fresh_link,
    a_fourth_renewal_of_one_link_is_refused,
    a_person_gets_at_most_five_fresh_links_a_day,
    concurrent_renewals_do_not_exceed_the_caps,
    a_fresh_link_keeps_the_original_lifetime,
    no_log_line_carries_a_token,
);
