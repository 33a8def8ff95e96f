//! Verify and route one link token: the work of a click before any store access.
//!
//! `cargo bench -p link-redirect --bench route`

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use forcelink::backends::local_keyring::LocalKeyRing;
use forcelink::domain::site::Tabs;
use forcelink::domain::{DirectoryUser, Site};
use forcelink::links::{self, LinkClaims};
use std::hint::black_box;

fn site() -> Site {
    Site {
        id: "acme".into(),
        name: "Acme".into(),
        platform_url: "https://acme.platform.example".into(),
        platform_sso_url: None,
        tabs: Tabs {
            lightning: Some("https://acme.lightning.force.com/lightning/n/Learning".into()),
            classic: Some("https://acme.my.salesforce.com/servlet/servlet.Integration?lid=01r5g000000AbCd&ic=1".into()),
        },
        force_sso: false,
        admin_email: None,
        sender: None,
        default_connection: None,
        sso_connection: None,
        sso_match_email: false,
        org_id: None,
    }
}

fn user(salesforce: bool) -> DirectoryUser {
    DirectoryUser {
        site: "acme".into(),
        id: "005000000000001AAA".into(),
        email: "jane@acme.example".into(),
        first_name: "Jane".into(),
        last_name: "Doe".into(),
        salesforce_id: None,
        salesforce_org_id: None,
        active: true,
        tags: BTreeMap::from([("salesforce_user".to_string(), salesforce.to_string())]),
        manager_id: None,
        ui: None,
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = LocalKeyRing::open(&dir.path().join("keys.json")).expect("keys");
    let public: url::Url = "https://links.example".parse().expect("url");
    let claims = LinkClaims::new("acme", "005000000000001AAA", "/surveys/onboarding?src=email", 4_000_000_000, true);
    let token = links::mint(&keys, &claims);
    let site = site();
    for (name, user) in [("salesforce_user", user(true)), ("platform_user", user(false))] {
        c.bench_function(&format!("verify_and_route/{name}"), |b| {
            b.iter(|| {
                let claims = links::verify(&keys, black_box(&token), 1_800_000_000).expect("valid");
                link_redirect::route::decide(&site, &user, &claims.target, &public).expect("route")
            })
        });
    }
    c.bench_function("verify_only", |b| b.iter(|| links::verify(&keys, black_box(&token), 1_800_000_000).expect("valid")));
    c.bench_function("mint", |b| b.iter(|| links::mint(&keys, black_box(&claims))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
