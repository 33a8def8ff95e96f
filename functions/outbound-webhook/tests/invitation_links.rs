//! Every invitation link lands, on both backends: an outbound message runs the workflow
//! (contact upsert + invitation), and the emailed link is followed over HTTP as its recipient
//! would (a browser, redirects not followed) through link-redirect to the platform, with a
//! contact reference the platform verifies against the published keys. Expired, the link offers
//! a fresh one, mailed to the contact's address as stored now.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use forcelink::contact_ref;
use forcelink::domain::record::{self, Versioned};
use forcelink::domain::{Site, keys};
use forcelink::jws;
use forcelink::ports::{Clock, Cond, ManualClock, Query};
use forcelink_stack::{Backend, Stack, both_backends};
use http::{StatusCode, header};
use link_redirect::clicks::{Click, Outcome};

mod support;
use support::{ORG, cid, envelope, nid, note};

const PLATFORM: &str = "https://acme.platform.example";
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
const DAY: u64 = 24 * 3600;

const WORKFLOW: &str = r#"
[[sites.workflows]]
name = "contacts"
object = "Contact"
tasks = [
    { type = "upsert_contact", list = "sf", fields = { email = "{Email}", first_name = "{FirstName}" } },
    { type = "send_invitation", to = "{Email}", subject = "Hi {FirstName}", body = "Tell us: {link}", target = "/surveys/1?src=mail" },
]
"#;

struct World {
    stack: Stack,
    clock: Arc<ManualClock>,
    endpoint: String,
    http: reqwest::Client,
}

/// A connected site with Force SSO on (which contacts bypass), whose workflow endpoint takes
/// messages, link-redirect served over HTTP on the public URL, and a clock the test moves.
async fn world(backend: Backend) -> World {
    let mut stack = support::start(backend, &[], WORKFLOW).await;
    let clock = Arc::new(ManualClock::at(time::OffsetDateTime::now_utc()));
    stack.deps.clock = clock.clone();
    let store = stack.deps.store.as_ref();
    let Versioned { record: mut site, version } = Site::load(store, "acme").await.unwrap().unwrap();
    site.force_sso = true;
    record::save(store, &site, Cond::Version(version)).await.unwrap();
    let endpoint = support::endpoint(&stack, "contacts");
    stack.serve(|deps, req| async move { link_redirect::handle(&deps, req).await });
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).user_agent(BROWSER).build().unwrap();
    World { stack, clock, endpoint, http }
}

/// Notification `n_note` about Contact `n`, in a message of its own.
fn message(n_note: usize, n: usize, email: &str, stamp: &str) -> String {
    let id = cid(n);
    let fields = [("Id", Some(id.as_str())), ("Email", Some(email)), ("FirstName", Some("Ana")), ("SystemModstamp", Some(stamp))];
    envelope(ORG, &[note(&nid(n_note), "Contact", "sf", &fields)])
}

impl World {
    /// Salesforce posts a message; the runner drains the workflow queue.
    async fn deliver(&self, body: String) {
        let req = http::Request::post(&self.endpoint).header("content-type", "text/xml; charset=utf-8").body(Bytes::from(body)).unwrap();
        assert_eq!(outbound_webhook::handle(&self.stack.deps, req).await.status(), StatusCode::OK);
        support::drain(&self.stack).await;
    }

    /// The emails so far, and the link in the newest one.
    fn newest_link(&self) -> (Vec<String>, String) {
        let mails = self.stack.outbox();
        let mail = mails.last().expect("an email").clone();
        let prefix = format!("{}/l/", self.stack.public_url());
        let start = mail.find(&prefix).unwrap_or_else(|| panic!("no link in {mail}"));
        let link: String = mail[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        (mails, link)
    }

    /// Clicks `url` in a browser; answers the status, the `Location` and the page.
    async fn click(&self, url: &str) -> (StatusCode, String, String) {
        let resp = self.http.get(url).send().await.unwrap();
        let location = resp.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (resp.status(), location, resp.text().await.unwrap())
    }

    /// The contact reference in a platform URL, verified as the platform would.
    fn reference(&self, location: &str) -> contact_ref::ContactClaims {
        let url = url::Url::parse(location).unwrap();
        let token = url.query_pairs().find(|(k, _)| k == contact_ref::PARAM).map(|(_, v)| v.to_string()).expect("a contact reference");
        let jwks = jws::jwks(self.stack.deps.keys.as_ref());
        contact_ref::verify(&jwks, &token, self.stack.public_url(), PLATFORM, self.clock.epoch_secs()).expect("the reference verifies")
    }

    async fn clicks(&self) -> Vec<Click> {
        record::list(self.stack.deps.store.as_ref(), Query::prefix(keys::clicks_pk("acme"), "")).await.unwrap()
    }
}

async fn an_invitation_link_lands_on_the_platform_as_its_contact(backend: Backend) {
    let w = world(backend).await;
    w.deliver(message(1, 7, "ana@example.com", "2026-03-01T10:00:00.000Z")).await;
    let (mails, link) = w.newest_link();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: ana@example.com"), "{}", mails[0]);

    // The recipient clicks: the platform, not 404, and not the Salesforce login Force SSO
    // sends directory users to (a contact has none).
    let (status, location, page) = w.click(&link).await;
    assert_eq!(status, StatusCode::FOUND, "{page}");
    assert!(location.starts_with(&format!("{PLATFORM}/surveys/1?src=mail&{}=", contact_ref::PARAM)), "{location}");
    let who = w.reference(&location);
    let contact = cid(7);
    assert_eq!(
        (who.sub.as_str(), who.list.as_str(), who.email.as_str(), who.site.as_str()),
        (contact.as_str(), "sf", "ana@example.com", "acme")
    );
    // A second click works too (the link is not single use), with a reference of its own.
    let (again, second, _) = w.click(&link).await;
    assert_eq!(again, StatusCode::FOUND);
    assert_ne!(w.reference(&second).jti, who.jti);
    assert_eq!(w.reference(&second).link, who.link);

    // The clicks are recorded for the contact, without the reference (a credential).
    let clicks = w.clicks().await;
    assert_eq!(clicks.len(), 2);
    assert!(clicks.iter().all(|c| c.outcome == Outcome::Redirected && c.user == contact && c.list.as_deref() == Some("sf")));
    assert!(clicks.iter().all(|c| c.location.as_deref() == Some("https://acme.platform.example/surveys/1?src=mail")));

    // A scanner or prefetch gets nothing.
    let scanned = w.http.get(&link).header(header::USER_AGENT, "Mozilla/5.0 (compatible; Barracuda Sentinel)").send().await.unwrap();
    assert!(scanned.headers().get(header::LOCATION).is_none(), "a scanner is not redirected");
}

async fn an_expired_contact_link_renews_to_the_address_stored_now(backend: Backend) {
    let w = world(backend).await;
    w.deliver(message(2, 8, "bo@example.com", "2026-03-01T10:00:00.000Z")).await;
    let (_, link) = w.newest_link();
    // The contact's address changes in Salesforce; the new data arrives (a later stamp).
    w.deliver(message(3, 8, "bo.new@example.com", "2026-03-02T10:00:00.000Z")).await;
    assert_eq!(w.stack.outbox().len(), 2, "the changed record was invited again");

    w.clock.advance(Duration::from_secs(31 * DAY));
    let (status, _, page) = w.click(&link).await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    let start = page.find("name=\"ticket\" value=\"").expect("a fresh-link offer") + "name=\"ticket\" value=\"".len();
    let ticket = page[start..].split('"').next().unwrap().to_string();
    let renew = format!("{}/l/renew", w.stack.public_url());
    let resp = w.http.post(&renew).form(&[("ticket", ticket.as_str())]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("b•••@example.com"));
    let (mails, fresh) = w.newest_link();
    assert_eq!(mails.len(), 3);
    assert!(mails[2].contains("To: bo.new@example.com"), "the address stored now: {}", mails[2]);
    assert!(mails[2].contains("Hi Ana,"), "{}", mails[2]);
    let (status, location, _) = w.click(&fresh).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(w.reference(&location).email, "bo.new@example.com");
}

async fn a_link_for_a_contact_that_is_gone_is_unknown(backend: Backend) {
    let w = world(backend).await;
    w.deliver(message(4, 9, "cy@example.com", "2026-03-01T10:00:00.000Z")).await;
    let (_, link) = w.newest_link();
    let store = w.stack.deps.store.as_ref();
    let contact = cid(9);
    store.delete(&keys::directory_pk("acme"), &keys::contact_sk("sf", &contact), Cond::Always).await.unwrap();
    let (status, location, _) = w.click(&link).await;
    assert_eq!((status, location.as_str()), (StatusCode::NOT_FOUND, ""));
}

both_backends!(
    an_invitation_link_lands_on_the_platform_as_its_contact,
    an_expired_contact_link_renews_to_the_address_stored_now,
    a_link_for_a_contact_that_is_gone_is_unknown
);
