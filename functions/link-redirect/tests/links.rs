//! link-redirect end to end on both backends (the harness `forcelink_stack::Stack`: embedded,
//! and moto): every routing case, single use, scanners, revocation, clicks, the bad-link
//! pages and the fresh-link form, a table of open-redirect and tampering attempts, and the
//! handler served over real HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use forcelink::backends::local_keyring::LocalKeyRing;
use forcelink::domain::directory::SalesforceUi;
use forcelink::domain::record;
use forcelink::domain::site::Tabs;
use forcelink::domain::{DirectoryUser, Site};
use forcelink::links::{self, LinkClaims};
use forcelink::ports::Cond;
use forcelink_stack::{Backend, Stack, both_backends};
use http::{Method, StatusCode, header};
use link_redirect::clicks::{self, Outcome};
use link_redirect::route::RouteKind;

const PUBLIC: &str = "https://links.forcelink.example";
const PLATFORM: &str = "https://acme.platform.example";
const LIGHTNING: &str = "https://acme.lightning.force.com/lightning/n/Learning";
const CLASSIC: &str = "https://acme.my.salesforce.com/servlet/servlet.Integration?lid=01r5g000000AbCd&ic=1";
const FAR: i64 = 4_000_000_000;

struct World(Stack);

impl std::ops::Deref for World {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.0
    }
}

fn site(id: &str, force_sso: bool) -> Site {
    Site {
        id: id.into(),
        name: format!("{id} Corp"),
        platform_url: PLATFORM.into(),
        platform_sso_url: None,
        tabs: Tabs { lightning: Some(LIGHTNING.into()), classic: Some(CLASSIC.into()) },
        force_sso,
        admin_email: None,
        sender: None,
        default_connection: None,
        sso_connection: None,
        sso_match_email: false,
        org_id: None,
    }
}

fn user(site: &str, id: &str, salesforce: Option<bool>, ui: Option<SalesforceUi>) -> DirectoryUser {
    DirectoryUser {
        site: site.into(),
        id: id.into(),
        email: format!("{id}@{site}.example"),
        first_name: "Pat".into(),
        last_name: String::new(),
        salesforce_id: None,
        salesforce_org_id: None,
        active: true,
        tags: salesforce.map(|s| BTreeMap::from([("salesforce_user".to_string(), s.to_string())])).unwrap_or_default(),
        manager_id: None,
        ui,
    }
}

async fn world(backend: Backend) -> World {
    let stack = Stack::start_with(backend, sfsim::SimConfig::default(), &[("FORCELINK_PUBLIC_URL", PUBLIC)], "").await;
    let deps = &stack.deps;
    let store = deps.store.as_ref();
    record::save(store, &site("acme", false), Cond::Always).await.unwrap();
    record::save(store, &site("sso", true), Cond::Always).await.unwrap();
    record::save(store, &site("globex", false), Cond::Always).await.unwrap();
    for u in [
        user("acme", "sf", Some(true), None),
        user("acme", "sf-classic", Some(true), Some(SalesforceUi::Classic)),
        user("acme", "plain", Some(false), None),
        user("acme", "untagged", None, None),
        user("sso", "sf", Some(true), None),
        user("sso", "plain", Some(false), None),
        user("globex", "g1", Some(true), None),
    ] {
        record::save(store, &u, Cond::Always).await.unwrap();
    }
    let mut gone = user("acme", "gone", Some(true), None);
    gone.active = false;
    record::save(store, &gone, Cond::Always).await.unwrap();
    World(stack)
}

impl World {
    fn token(&self, site: &str, user: &str, target: &str, expires_at: i64, single_use: bool) -> (String, LinkClaims) {
        let claims = LinkClaims::new(site, user, target, expires_at, single_use);
        (links::mint(self.deps.keys.as_ref(), &claims), claims)
    }

    async fn call(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> http::Response<Bytes> {
        let mut req = http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        link_redirect::handle(&self.deps, req.body(Bytes::new()).unwrap()).await
    }

    async fn get(&self, path: &str) -> http::Response<Bytes> {
        self.call(Method::GET, path, &[]).await
    }
}

fn location(resp: &http::Response<Bytes>) -> &str {
    resp.headers().get(header::LOCATION).map(|v| v.to_str().unwrap()).unwrap_or("")
}

fn body(resp: &http::Response<Bytes>) -> &str {
    std::str::from_utf8(resp.body()).unwrap()
}

async fn every_routing_case(backend: Backend) {
    let w = world(backend).await;
    let target = "/surveys/onboarding";
    let cases = [
        ("acme", "sf", format!("{LIGHTNING}?c__target=%2Fsurveys%2Fonboarding")),
        ("acme", "sf-classic", format!("{CLASSIC}&c__target=%2Fsurveys%2Fonboarding")),
        ("acme", "plain", format!("{PLATFORM}/surveys/onboarding")),
        ("acme", "untagged", format!("{PLATFORM}/surveys/onboarding")),
        ("sso", "sf", format!("{PUBLIC}/sso/login?site=sso&next=%2Fsurveys%2Fonboarding")),
        ("sso", "plain", format!("{PUBLIC}/sso/login?site=sso&next=%2Fsurveys%2Fonboarding")),
    ];
    for (site, user, want) in cases {
        let (token, _) = w.token(site, user, target, FAR, false);
        let resp = w.get(&format!("/l/{token}")).await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{site}/{user}");
        assert_eq!(location(&resp), want, "{site}/{user}");
        assert_eq!(resp.headers()[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    }
}

async fn clicks_are_recorded_with_time_user_target_and_destination(backend: Backend) {
    let w = world(backend).await;
    let (token, claims) = w.token("acme", "sf", "/q/1", FAR, false);
    assert_eq!(w.call(Method::HEAD, &format!("/l/{token}"), &[]).await.status(), StatusCode::FOUND);
    assert!(clicks::for_link(w.deps.store.as_ref(), &claims.nonce).await.unwrap().is_empty(), "HEAD is not a click");
    w.get(&format!("/l/{token}")).await;
    w.get(&format!("/l/{token}")).await;
    let seen = clicks::for_link(w.deps.store.as_ref(), &claims.nonce).await.unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].user.as_str(), seen[0].target.as_str()), ("sf", "/q/1"));
    assert_eq!((seen[0].outcome, seen[0].routed_to), (Outcome::Redirected, Some(RouteKind::Lightning)));
    assert!(seen[0].location.as_deref().is_some_and(|l| l.starts_with(LIGHTNING)));
    assert!(seen[0].at <= seen[1].at);
    assert_eq!(clicks::recent(w.deps.store.as_ref(), "acme", 10).await.unwrap().len(), 2);
}

async fn single_use_links_survive_head_prefetch_and_scanners_then_work_once(backend: Backend) {
    let w = world(backend).await;
    let (token, _) = w.token("acme", "plain", "/q/2", FAR, true);
    let path = format!("/l/{token}");
    let head = w.call(Method::HEAD, &path, &[]).await;
    assert_eq!((head.status(), head.body().is_empty()), (StatusCode::FOUND, true));
    for headers in [
        vec![("sec-purpose", "prefetch")],
        vec![("purpose", "prefetch")],
        vec![("x-moz", "prefetch")],
        vec![("user-agent", "Mozilla/5.0 (compatible; BingPreview/1.0b)")],
        vec![("user-agent", "Mimecast URL Protect")],
        vec![("user-agent", "Microsoft Office Existence Discovery")],
    ] {
        let resp = w.call(Method::GET, &path, &headers).await;
        assert_eq!(resp.status(), StatusCode::OK, "{headers:?}");
        assert!(!body(&resp).contains(&token));
    }
    let first = w.get(&path).await;
    assert_eq!((first.status(), location(&first)), (StatusCode::FOUND, format!("{PLATFORM}/q/2").as_str()));
    let again = w.get(&path).await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(body(&again).contains("already been used") && body(&again).contains("action=\"/l/renew\""));
    assert_eq!(w.call(Method::HEAD, &path, &[]).await.status(), StatusCode::GONE);
}

async fn single_use_is_race_free(backend: Backend) {
    let w = Arc::new(world(backend).await);
    let (token, _) = w.token("acme", "sf", "/q/3", FAR, true);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (w, path) = (w.clone(), format!("/l/{token}"));
        tasks.push(tokio::spawn(async move { w.get(&path).await.status() }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::FOUND).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::FOUND || *s == StatusCode::GONE));
}

async fn revoked_and_inactive_links_are_gone_without_a_fresh_link_offer(backend: Backend) {
    let w = world(backend).await;
    let (token, claims) = w.token("acme", "sf", "/q/4", FAR, false);
    clicks::revoke(w.deps.store.as_ref(), &claims.nonce, claims.expires_at).await.unwrap();
    let resp = w.get(&format!("/l/{token}")).await;
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(body(&resp).contains("withdrawn") && !body(&resp).contains("<form"));
    let (token, _) = w.token("acme", "gone", "/q/4", FAR, false);
    let resp = w.get(&format!("/l/{token}")).await;
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(!body(&resp).contains("<form"));
    let outcomes: Vec<Outcome> = clicks::recent(w.deps.store.as_ref(), "acme", 10).await.unwrap().iter().map(|c| c.outcome).collect();
    assert!(outcomes.contains(&Outcome::Revoked) && outcomes.contains(&Outcome::Inactive));
}

async fn bad_link_pages_are_friendly_accessible_and_never_echo_the_token(backend: Backend) {
    let w = world(backend).await;
    let (expired, _) = w.token("acme", "sf", "/q/5", 1_000, false);
    let (good, _) = w.token("acme", "sf", "/q/5", FAR, false);
    let other = LocalKeyRing::open(&w.dir().join("other-keys.json")).unwrap();
    let unknown = links::mint(&other, &LinkClaims::new("acme", "sf", "/q/5", FAR, false));
    let cases = [
        (expired.clone(), StatusCode::GONE, "This link has expired", true),
        (good[..good.len() - 10].to_string(), StatusCode::BAD_REQUEST, "This link", false),
        (unknown.clone(), StatusCode::NOT_FOUND, "recognize", false),
        (
            format!("{}{}", &good[..40], if &good[40..41] == "A" { "B" } else { "A" }) + &good[41..],
            StatusCode::BAD_REQUEST,
            "This link",
            false,
        ),
    ];
    for (token, status, words, offers) in cases {
        let resp = w.get(&format!("/l/{token}")).await;
        let html = body(&resp);
        assert_eq!(resp.status(), status, "{html}");
        assert!(html.contains(words), "{html}");
        assert!(html.starts_with("<!doctype html>") && html.contains("<html lang=\"en\">") && html.contains("<h1>"));
        assert!(!html.contains(&token), "the page echoes the token");
        assert_eq!(html.contains("<button class=\"button\" type=\"submit\">Email me a fresh link</button>"), offers);
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(resp.headers()[header::REFERRER_POLICY], "no-referrer");
        assert!(resp.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        assert!(!html.to_lowercase().contains("panic") && !html.contains("Error:"));
    }
}

fn ticket_of(html: &str) -> String {
    let start = html.find("name=\"ticket\" value=\"").unwrap() + "name=\"ticket\" value=\"".len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn an_expired_link_offers_a_fresh_one_by_email_once(backend: Backend) {
    let w = world(backend).await;
    let (expired, _) = w.token("acme", "plain", "/surveys/renew-me", 1_000, true);
    let page = w.get(&format!("/l/{expired}")).await;
    let ticket = ticket_of(body(&page));
    let post = |ticket: String| {
        let req = http::Request::builder()
            .method(Method::POST)
            .uri("/l/renew")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Bytes::from(format!("ticket={ticket}")))
            .unwrap();
        link_redirect::handle(&w.deps, req)
    };
    let sent = post(ticket.clone()).await;
    assert_eq!(sent.status(), StatusCode::OK);
    assert!(body(&sent).contains("p•••@acme.example"), "{}", body(&sent));
    let again = post(ticket.clone()).await;
    assert_eq!(again.status(), StatusCode::OK);
    let mails = w.outbox();
    assert_eq!(mails.len(), 1, "one fresh link per ticket");
    assert!(mails[0].contains("To: plain@acme.example"));
    // The fresh link works (and goes where the old one went).
    let start = mails[0].find(&format!("{PUBLIC}/l/")).unwrap() + PUBLIC.len();
    let path: String = mails[0][start..].chars().take_while(|c| c.is_ascii_alphanumeric() || "/-_".contains(*c)).collect();
    let resp = w.get(&path).await;
    assert_eq!((resp.status(), location(&resp)), (StatusCode::FOUND, format!("{PLATFORM}/surveys/renew-me").as_str()));
    // A forged or link token in place of a ticket is refused.
    assert_eq!(post("x".into()).await.status(), StatusCode::BAD_REQUEST);
    let (link, _) = w.token("acme", "plain", "/x", FAR, false);
    assert_eq!(post(link).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(w.call(Method::GET, "/l/renew", &[]).await.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// How an attempt must be refused.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refused {
    /// With this status and no `Location`.
    Status(StatusCode),
    /// By ignoring the attacker's input: a redirect to the legitimate destination.
    Ignored,
}

/// One attempt: its name, the request path, extra headers, and how it must be refused.
type Attempt = (String, String, Vec<(&'static str, &'static str)>, Refused);

async fn open_redirect_and_tampering_attempts_are_all_refused(backend: Backend) {
    use Refused::*;
    let w = world(backend).await;
    let bad = Status(StatusCode::BAD_REQUEST);

    // 1. Signed links whose target was made hostile (e.g. piped from Salesforce data).
    let hostile_targets: &[&str] = &[
        "https://evil.com",
        "http://evil.com/",
        "//evil.com",
        "///evil.com",
        "/\\evil.com",
        "\\\\evil.com",
        "/%2F%2Fevil.com",
        "/%2f%2fevil.com",
        "/%5Cevil.com",
        "/%252F%252Fevil.com",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "/javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "/ok\r\nLocation: https://evil.com",
        "/ok%0d%0aSet-Cookie:%20x=1",
        "/ok\0",
        "/ok%00",
        "/ok\tx",
        " /ok",
        "/ok x",
        "/../../evil",
        "/a/%2e%2e/b",
        "/a/./b",
        "/..",
        "/\u{FF0E}\u{FF0E}/evil",
        "/\u{2215}\u{2215}evil.com",
        "/%EF%BC%8F%EF%BC%8Fevil.com",
        "\u{FF0F}evil.com",
        "/ok\u{202E}moc.live",
        "/<script>alert(1)</script>",
        "/ok\"onmouseover=alert(1)",
        "/ok#//evil.com",
        "/ok?next=https://evil.com",
        "/ok?next=https:%2F%2Fevil.com",
        "/ok#a#b",
        "evil.com",
        "",
        "/%",
        "/%zz",
    ];
    let mut attempts: Vec<Attempt> = Vec::new();
    for t in hostile_targets {
        let (token, _) = w.token("acme", "plain", t, FAR, false);
        attempts.push((format!("target {t:?}"), format!("/l/{token}"), vec![], bad));
    }
    let long = format!("/{}", "a".repeat(2000));
    let (token, _) = w.token("acme", "plain", &long, FAR, false);
    attempts.push(("target over the length limit".into(), format!("/l/{token}"), vec![], bad));

    // 2. A valid link with hostile query strings and headers: ignored.
    let (good, _) = w.token("acme", "plain", "/q/ok", FAR, false);
    for q in
        ["?next=https://evil.com", "?target=//evil.com", "?url=https://evil.com&redirect=https://evil.com", "?c__target=https://evil.com"]
    {
        attempts.push((format!("query {q}"), format!("/l/{good}{q}"), vec![], Ignored));
    }
    attempts.push(("Host header".into(), format!("/l/{good}"), vec![("host", "evil.com")], Ignored));
    attempts.push(("X-Forwarded-Host".into(), format!("/l/{good}"), vec![("x-forwarded-host", "evil.com")], Ignored));
    attempts.push(("extra path segment".into(), format!("/l/{good}/https://evil.com"), vec![], bad));
    attempts.push(("encoded path tail".into(), format!("/l/{good}%2F..%2Fevil"), vec![], bad));

    // 3. Tampered, foreign, expired and misdirected tokens.
    let other = LocalKeyRing::open(&w.dir().join("other-keys.json")).unwrap();
    let unknown_kid = links::mint(&other, &LinkClaims::new("acme", "plain", "/q/ok", FAR, false));
    attempts.push(("signed with an unknown key id".into(), format!("/l/{unknown_kid}"), vec![], Status(StatusCode::NOT_FOUND)));
    let (second, _) = w.token("acme", "plain", "/q/ok", FAR, false);
    let swapped = format!("{}{}", &good[..good.len() - 43], &second[second.len() - 43..]);
    attempts.push(("swapped signature".into(), format!("/l/{swapped}"), vec![], bad));
    let (evil_link, _) = w.token("acme", "plain", "/q/evil", FAR, false);
    let spliced = format!("{}{}", &evil_link[..evil_link.len() - 43], &good[good.len() - 43..]);
    attempts.push(("good signature on other claims".into(), format!("/l/{spliced}"), vec![], bad));
    attempts.push(("truncated by one".into(), format!("/l/{}", &good[..good.len() - 1]), vec![], bad));
    attempts.push(("truncated by half".into(), format!("/l/{}", &good[..good.len() / 2]), vec![], bad));
    attempts.push(("extended".into(), format!("/l/{good}AA"), vec![], bad));
    attempts.push(("padded".into(), format!("/l/{good}=="), vec![], bad));
    attempts.push(("standard base64 alphabet".into(), format!("/l/+{}", &good[1..]), vec![], bad));
    let mut flipped = good.clone().into_bytes();
    flipped[30] = if flipped[30] == b'x' { b'y' } else { b'x' };
    attempts.push(("one character changed".into(), format!("/l/{}", String::from_utf8(flipped).unwrap()), vec![], bad));
    attempts.push(("empty token".into(), "/l/".into(), vec![], bad));
    attempts.push(("huge token".into(), format!("/l/{}", "A".repeat(10_000)), vec![], bad));
    attempts.push(("percent-encoded token".into(), format!("/l/%41{}", &good[1..]), vec![], bad));
    let (expired, _) = w.token("acme", "plain", "/q/ok", 1_000, false);
    attempts.push(("expired".into(), format!("/l/{expired}"), vec![], Status(StatusCode::GONE)));
    let (cross, _) = w.token("acme", "g1", "/q/ok", FAR, false);
    attempts.push(("another site's user".into(), format!("/l/{cross}"), vec![], Status(StatusCode::NOT_FOUND)));
    let (ghost, _) = w.token("acme", "nobody", "/q/ok", FAR, false);
    attempts.push(("unknown user".into(), format!("/l/{ghost}"), vec![], Status(StatusCode::NOT_FOUND)));
    let (nosite, _) = w.token("initech", "plain", "/q/ok", FAR, false);
    attempts.push(("unknown site".into(), format!("/l/{nosite}"), vec![], Status(StatusCode::NOT_FOUND)));
    let ticket = links::mint_renewal(
        w.deps.keys.as_ref(),
        &links::RenewalTicket {
            id: links::new_nonce(),
            expires_at: FAR,
            link: links::Link::plain(LinkClaims::new("acme", "plain", "/q/ok", FAR, false)),
        },
    );
    attempts.push(("renewal ticket used as a link".into(), format!("/l/{ticket}"), vec![], bad));

    assert!(attempts.len() >= 50, "only {} attempts", attempts.len());
    let allowed = [PLATFORM, LIGHTNING, CLASSIC, PUBLIC];
    for (name, path, headers, want) in &attempts {
        assert!(path.parse::<http::Uri>().is_ok(), "{name}: not a request the HTTP layer would pass on");
        let resp = w.call(Method::GET, path, headers).await;
        let loc = location(&resp);
        match want {
            Status(code) => {
                assert_eq!(resp.status(), *code, "{name}: {}", body(&resp));
                assert!(loc.is_empty(), "{name}: redirected to {loc}");
            }
            Ignored => {
                assert_eq!(resp.status(), StatusCode::FOUND, "{name}");
                assert_eq!(loc, format!("{PLATFORM}/q/ok"), "{name}");
            }
        }
        assert!(!loc.contains("evil"), "{name}: {loc}");
        assert!(loc.is_empty() || allowed.iter().any(|a| loc.starts_with(a)), "{name}: {loc}");
        assert!(!body(&resp).contains(path.trim_start_matches("/l/")) || path.len() < 8, "{name}: the page echoes the token");
    }
    println!("{} attempts refused", attempts.len());
}

async fn keys_rotate_without_breaking_links(backend: Backend) {
    let w = world(backend).await;
    let (token, _) = w.token("acme", "sf", "/q/rot", FAR, false);
    let kid = w.rotate_keys().await;
    let reopened = w.another_lambda().await;
    assert_eq!(reopened.keys.sign(b"x").kid, kid);
    let get = |token: String| link_redirect::handle(&reopened, http::Request::get(format!("/l/{token}")).body(Bytes::new()).unwrap());
    assert_eq!(get(token).await.status(), StatusCode::FOUND);
    let fresh = links::mint(reopened.keys.as_ref(), &LinkClaims::new("acme", "sf", "/q/rot", FAR, false));
    assert_eq!(get(fresh).await.status(), StatusCode::FOUND);
    assert_eq!(w.get(&format!("/l/{}", w.token("acme", "sf", "/q/rot", FAR, false).0)).await.status(), StatusCode::FOUND);
}

async fn served_over_http(backend: Backend) {
    let w = world(backend).await;
    w.serve(|deps, req| async move { link_redirect::handle(&deps, req).await });
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let base = w.listen_url();
    for (user, want) in [("sf", LIGHTNING), ("plain", PLATFORM)] {
        let (token, _) = w.token("acme", user, "/invitations/q1", FAR, true);
        let url = format!("{base}/l/{token}");
        assert_eq!(http.head(&url).send().await.unwrap().status(), StatusCode::FOUND);
        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
        assert!(resp.headers()[header::LOCATION].to_str().unwrap().starts_with(want));
        assert_eq!(http.get(&url).send().await.unwrap().status(), StatusCode::GONE);
    }
    let resp = http.get(format!("{base}/l/not-a-token")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("This link is incomplete"));
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

both_backends!(
    every_routing_case,
    clicks_are_recorded_with_time_user_target_and_destination,
    single_use_links_survive_head_prefetch_and_scanners_then_work_once,
    single_use_is_race_free,
    revoked_and_inactive_links_are_gone_without_a_fresh_link_offer,
    bad_link_pages_are_friendly_accessible_and_never_echo_the_token,
    an_expired_link_offers_a_fresh_one_by_email_once,
    open_redirect_and_tampering_attempts_are_all_refused,
    keys_rotate_without_breaking_links,
    served_over_http,
);
