//! Link verbs: `forcelink link` (make a signed link for a directory user) and `forcelink verify`
//! (the setup guide's validation step: email the site's Salesforce admin, enrolled by name as a
//! directory user or as a workflow contact, a one-question test invitation and report whether it
//! was clicked and where it went).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use forcelink::domain::record::{self, Versioned};
use forcelink::domain::{Contact, DirectoryUser, Site, keys};
use forcelink::links::{self, LinkClaims};
use forcelink::ports::{Cond, Email, Query};
use forcelink::{Deps, Settings};
use link_redirect::clicks::{self, Outcome};
use link_redirect::recipient::Recipient;
use link_redirect::route::{self, Route};

/// Options of `forcelink link`.
#[derive(Args, Debug, Clone)]
pub struct LinkArgs {
    /// The site.
    pub site: String,
    /// The directory user id of the recipient.
    #[arg(long)]
    pub user: String,
    /// The target path under the platform, e.g. /surveys/onboarding.
    #[arg(long)]
    pub target: String,
    /// Days the link works.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub ttl_days: u32,
    /// The first click uses the link up (prefetches and link scanners never do).
    #[arg(long)]
    pub single_use: bool,
    /// Seconds the link works, instead of --ttl-days (for scripts and tests).
    #[arg(long, hide = true, conflicts_with = "ttl_days")]
    pub ttl_secs: Option<u32>,
}

/// `forcelink link SITE --user U --target T`: prints the link's URL (and, on stderr, where it
/// will take the user today).
pub async fn link(settings: Settings, args: LinkArgs) -> anyhow::Result<ExitCode> {
    let deps = Deps::from_settings(settings).await?;
    let site = load_site(&deps, &args.site).await?;
    let Some(Versioned { record: user, .. }) = DirectoryUser::load(deps.store.as_ref(), &site.id, &args.user).await? else {
        anyhow::bail!("no directory user {:?} in site {:?}", args.user, site.id);
    };
    let route = route::decide(&site, &user, &args.target, &deps.settings.public_url)
        .with_context(|| format!("target {:?} cannot be linked", args.target))?;
    let ttl = args.ttl_secs.map_or(i64::from(args.ttl_days) * 86_400, i64::from);
    let expires_at = deps.clock.epoch_secs() + ttl;
    let claims = LinkClaims::new(&site.id, &user.id, &args.target, expires_at, args.single_use);
    claims.check().context("the user id or target is too long for a link")?;
    println!("{}", links::link_url(&deps.settings.public_url, &links::mint_issued(deps.keys.as_ref(), &claims, deps.clock.epoch_secs())));
    eprintln!(
        "for {} <{}>, {} s{}, opens {}",
        user.id,
        user.email,
        ttl,
        if args.single_use { ", single use" } else { "" },
        route.kind.describe()
    );
    Ok(ExitCode::SUCCESS)
}

/// Options of `forcelink verify`.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The site.
    pub site: String,
    /// The site's Salesforce admin, who gets the test invitation.
    #[arg(long)]
    pub email: String,
    /// Seconds to wait for the click (0: send and stop).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// The platform target of the test question.
    #[arg(long, default_value = "/questions/forcelink-test")]
    pub target: String,
    /// The admin's first name, recorded on their enrollment.
    #[arg(long)]
    pub first_name: Option<String>,
    /// The admin's last name, recorded on their enrollment.
    #[arg(long)]
    pub last_name: Option<String>,
    /// Enroll the admin as a workflow contact of this list (as an invitation's recipient is)
    /// instead of a directory user: the test link is then a contact link, to the platform.
    #[arg(long, value_name = "LIST")]
    pub contact: Option<String>,
}

/// Who gets the test invitation, as enrolled.
struct Enrolled {
    recipient: Recipient,
    /// What enrollment did, for the report.
    note: &'static str,
    /// Where the click should land.
    expected: Route,
}

/// How long the test invitation's link works.
const VERIFY_TTL_SECS: i64 = 24 * 3600;

/// `forcelink verify SITE --email ADMIN`.
pub async fn verify(settings: Settings, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let deps = Deps::from_settings(settings).await?;
    let site = load_site(&deps, &args.site).await?;
    let Enrolled { recipient, note, expected } = enroll(&deps, &site, &args).await?;
    let (id, list) = match &recipient {
        Recipient::User(u) => (u.id.clone(), None),
        Recipient::Contact(c) => (c.id.clone(), Some(c.list.clone())),
    };
    let name = format!("{} {}", recipient.first_name(), recipient.last_name());
    println!("enrolled  {id} {} <{}> ({note})", name.trim(), recipient.email());
    let claims = LinkClaims { list, ..LinkClaims::new(&site.id, &id, &args.target, deps.clock.epoch_secs() + VERIFY_TTL_SECS, false) };
    let url = links::link_url(&deps.settings.public_url, &links::mint_issued(deps.keys.as_ref(), &claims, deps.clock.epoch_secs()));
    let message_id =
        deps.mailer.send(&invitation(&deps, &site, &recipient, &url, &expected)).await.context("the test invitation was not sent")?;
    println!("sent      one-question test invitation to {} (message {message_id})", recipient.email());
    println!("expected  a click lands in {}", expected.kind.describe());
    if args.timeout == 0 {
        println!("clicked   not waiting (--timeout 0); the link works for 24 hours");
        return Ok(ExitCode::SUCCESS);
    }
    println!("waiting   up to {} s for the click…", args.timeout);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    loop {
        let seen = clicks::for_link(deps.store.as_ref(), &claims.nonce).await?;
        if let Some(click) = seen.first() {
            println!("clicked   {} by {}", click.at, click.user);
            return Ok(match (click.outcome, click.routed_to) {
                (Outcome::Redirected, Some(kind)) => {
                    println!("went to   {} {}", kind.describe(), click.location.as_deref().unwrap_or(""));
                    if kind == expected.kind {
                        println!("result    OK: the link landed where it should");
                        ExitCode::SUCCESS
                    } else {
                        println!("result    MISMATCH: expected {}", expected.kind.describe());
                        ExitCode::FAILURE
                    }
                }
                (outcome, _) => {
                    println!("went to   nowhere: the link was refused ({outcome:?})");
                    ExitCode::FAILURE
                }
            });
        }
        if tokio::time::Instant::now() >= deadline {
            println!("clicked   no click within {} s; the link works for 24 hours: check the inbox of {}", args.timeout, recipient.email());
            return Ok(ExitCode::from(3));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn load_site(deps: &Deps, id: &str) -> anyhow::Result<Site> {
    match Site::load(deps.store.as_ref(), id).await? {
        Some(Versioned { record, .. }) => Ok(record),
        None => anyhow::bail!("no site {id:?}: apply a configuration first (forcelink apply FILE)"),
    }
}

/// Enrolls the admin: as a workflow contact of `--contact LIST`, else as a directory user
/// (found by email, or added tagged `salesforce_user=true`; an existing person without the tag
/// gets it, one tagged `salesforce_user=false` keeps it). Given names are recorded.
async fn enroll(deps: &Deps, site: &Site, args: &VerifyArgs) -> anyhow::Result<Enrolled> {
    let email = args.email.as_str();
    anyhow::ensure!(email.contains('@') && !email.contains(char::is_whitespace), "--email {email:?} is not an email address");
    let public = &deps.settings.public_url;
    let cannot_route = || format!("site {:?} cannot route its test link", site.id);
    if let Some(list) = &args.contact {
        let (contact, note) = enroll_contact(deps, site, list, args).await?;
        let expected = route::decide_contact(site, &args.target).with_context(cannot_route)?;
        return Ok(Enrolled { recipient: Recipient::Contact(contact), note, expected });
    }
    let (user, note) = enroll_user(deps, site, args).await?;
    let expected = route::decide(site, &user, &args.target, public).with_context(cannot_route)?;
    Ok(Enrolled { recipient: Recipient::User(user), note, expected })
}

async fn enroll_user(deps: &Deps, site: &Site, args: &VerifyArgs) -> anyhow::Result<(DirectoryUser, &'static str)> {
    let store = deps.store.as_ref();
    let users: Vec<DirectoryUser> = record::list(store, Query::prefix(keys::directory_pk(&site.id), keys::USER_PREFIX)).await?;
    let (mut user, note) = match users.into_iter().find(|u| u.email.eq_ignore_ascii_case(&args.email)) {
        Some(u) if u.tags.contains_key("salesforce_user") && u.active => (u, "already in the directory"),
        Some(mut u) => {
            u.tags.entry("salesforce_user".into()).or_insert_with(|| "true".into());
            u.active = true;
            (u, "already in the directory; tagged salesforce_user and active")
        }
        None => {
            let new = DirectoryUser {
                site: site.id.clone(),
                id: args.email.to_ascii_lowercase(),
                email: args.email.clone(),
                first_name: String::new(),
                last_name: String::new(),
                salesforce_id: None,
                salesforce_org_id: None,
                active: true,
                tags: BTreeMap::from([("salesforce_user".to_string(), "true".to_string())]),
                manager_id: None,
                ui: None,
            };
            (new, "added, tagged salesforce_user=true")
        }
    };
    if let Some(first) = &args.first_name {
        user.first_name = first.clone();
    }
    if let Some(last) = &args.last_name {
        user.last_name = last.clone();
    }
    record::save(store, &user, Cond::Always).await?;
    Ok((user, note))
}

async fn enroll_contact(deps: &Deps, site: &Site, list: &str, args: &VerifyArgs) -> anyhow::Result<(Contact, &'static str)> {
    let id = args.email.to_ascii_lowercase();
    let existing = Contact::load(deps.store.as_ref(), &site.id, list, &id).await?;
    let note = if existing.is_some() { "already a contact of the list" } else { "added as a contact of the list" };
    let mut contact = existing.map(|v| v.record).unwrap_or_else(|| Contact {
        site: site.id.clone(),
        list: list.to_string(),
        id,
        email: args.email.clone(),
        fields: BTreeMap::new(),
        embedded: BTreeMap::new(),
        source_modstamp: None,
    });
    for (field, value) in [("first_name", &args.first_name), ("last_name", &args.last_name)] {
        if let Some(v) = value {
            contact.fields.insert(field.to_string(), v.clone());
        }
    }
    record::save(deps.store.as_ref(), &contact, Cond::Always).await?;
    Ok((contact, note))
}

fn invitation(deps: &Deps, site: &Site, recipient: &Recipient, url: &str, expected: &Route) -> Email {
    let esc = forcelink::web::escape;
    let greeting = match recipient.first_name() {
        "" => "Hello,".to_string(),
        name => format!("Hello {name},"),
    };
    let text = format!(
        "{greeting}\n\nThis is the forcelink test invitation for {name}: one question.\n\n\
         Did this link open where you expected?\n\n{url}\n\n\
         Clicking it should open {where_}. forcelink reports the click to whoever ran `forcelink verify`.\n",
        name = site.name,
        where_ = expected.kind.describe()
    );
    let html = format!(
        "<p>{}</p><p>This is the forcelink test invitation for {}: one question.</p>\
         <p><strong>Did this link open where you expected?</strong></p><p><a href=\"{}\">Answer the question</a></p>\
         <p>Clicking it should open {}.</p>",
        esc(&greeting),
        esc(&site.name),
        esc(url),
        esc(expected.kind.describe())
    );
    Email {
        from: site.sender.as_ref().map_or_else(|| deps.settings.mail_from.clone(), |s| s.from.clone()),
        reply_to: site.sender.as_ref().and_then(|s| s.reply_to.clone()),
        to: vec![recipient.email().to_string()],
        subject: format!("forcelink test: one question for {}", site.name),
        text,
        html: Some(html),
    }
}
