//! Access-token benchmarks: the valid-token path (a cached token for a connection; goal
//! ≤ 2 µs) and a refresh round trip against the simulator (lease, token call with rotation,
//! seal, store, release).
//!
//! `cargo bench -p oauth-callback --bench tokens`

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use forcelink::salesforce::SalesforceClient;
use forcelink::{Deps, Settings};

const CLIENT_ID: &str = sfsim::DEFAULT_CLIENT_ID;

struct Stack {
    _sim: sfsim::SimHandle,
    _dir: tempfile::TempDir,
    deps: Deps,
}

/// A simulator and a connected `acme/production` on embedded backends.
async fn stack() -> Stack {
    let sim = sfsim::Sim::start(sfsim::SimConfig::default()).await.expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let vars: BTreeMap<&str, String> = [
        ("FORCELINK_DATA_DIR", dir.path().display().to_string()),
        ("FORCELINK_PUBLIC_URL", "http://127.0.0.1:9".to_string()),
        ("FORCELINK_EXTRA_CA_FILE", sim.ca_pem_path().display().to_string()),
        ("FORCELINK_SF_CLIENT_ID", CLIENT_ID.into()),
        ("FORCELINK_SF_CLIENT_SECRET", sfsim::DEFAULT_CLIENT_SECRET.into()),
        ("FORCELINK_SF_LOGIN_URL", sim.https_url()),
    ]
    .into();
    let deps = Deps::from_settings(Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings")).await.expect("deps");
    let toml = "[[sites]]\nid = \"acme\"\nname = \"Acme\"\nplatform_url = \"https://acme.example\"\n[[sites.connections]]\nname = \"production\"\n";
    forcelink::config::apply_text(deps.store.as_ref(), deps.keys.as_ref(), "bench.toml", toml).await.expect("apply");
    let get = |path: &str| http::Request::get(path).body(bytes::Bytes::new()).expect("request");
    let start = oauth_callback::handle(&deps, get("/oauth/start?site=acme&connection=production")).await;
    let authorize = start.headers()["location"].to_str().expect("location").to_string();
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().expect("ca").as_bytes()).expect("ca");
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).add_root_certificate(ca).build().expect("client");
    let back = browser.get(format!("{authorize}&login_hint=admin@acme.example")).send().await.expect("authorize");
    let back = url::Url::parse(back.headers()["location"].to_str().expect("location")).expect("url");
    let page = oauth_callback::handle(&deps, get(&format!("/oauth/callback?{}", back.query().unwrap_or_default()))).await;
    assert_eq!(page.status(), 200, "connected");
    Stack { _sim: sim, _dir: dir, deps }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let s = rt.block_on(stack());
    let client = SalesforceClient::new(&s.deps, "acme", "production");
    rt.block_on(client.access()).expect("warm");

    c.bench_function("valid token: Sessions::cached", |b| b.iter(|| s.deps.salesforce.cached("acme", "production").expect("cached")));
    c.bench_function("valid token: SalesforceClient::access", |b| b.to_async(&rt).iter(|| async { client.access().await.expect("token") }));

    let mut g = c.benchmark_group("refresh");
    g.sample_size(20).measurement_time(Duration::from_secs(15));
    g.bench_function("round trip against sfsim (lease, token, seal, store)", |b| {
        b.to_async(&rt).iter(|| async { s.deps.salesforce.refresh(&s.deps, "acme", "production", None).await.expect("refresh") })
    });
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
