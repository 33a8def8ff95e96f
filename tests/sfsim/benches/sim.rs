//! Throughput of the simulator over loopback HTTP (plain, keep-alive, 4 requests in flight):
//! query pages of 200 small records (`query_page_200`) and sObject Collections upserts of
//! 200 records (`upsert_collection_200`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use sfsim::{Sim, SimConfig};
use std::time::{Duration, Instant};

const IN_FLIGHT: u64 = 4;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (sim, tok, page_url, client) = rt.block_on(async {
        let sim = Sim::start(SimConfig { page_size: 200, ..SimConfig::default() }).await.expect("start");
        let recs: Vec<serde_json::Map<String, Value>> = (0..10_000)
            .map(|i| json!({"LastName": format!("Bench{i}"), "Email": format!("b{i}@x.example")}).as_object().cloned().unwrap_or_default())
            .collect();
        sim.insert_records("acme", "Contact", recs).expect("seed");
        let tok = sim.issue_token("admin@acme.example").expect("token");
        let client = reqwest::Client::builder().pool_max_idle_per_host(16).build().expect("client");
        let first: Value = client
            .get(format!("{}/services/data/v64.0/query", sim.http_url()))
            .query(&[("q", "SELECT Id, FirstName, LastName, Email, SystemModstamp FROM Contact")])
            .bearer_auth(&tok)
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("json");
        let next = first["nextRecordsUrl"].as_str().expect("paged").to_string();
        let url = format!("{}{next}", sim.http_url());
        (sim, tok, url, client)
    });
    sim.set_faults("acme", sfsim::Faults { request_limit: Some(u64::MAX), ..Default::default() }).expect("limit");

    let mut g = c.benchmark_group("sfsim");
    g.measurement_time(Duration::from_secs(5)).sample_size(10);
    g.throughput(Throughput::Elements(IN_FLIGHT));
    g.bench_function("query_page_200", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (client, url, tok) = (client.clone(), page_url.clone(), tok.clone());
            async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let futs = (0..IN_FLIGHT).map(|_| async {
                        let r = client.get(&url).bearer_auth(&tok).send().await.expect("page");
                        assert_eq!(r.status(), 200);
                        r.bytes().await.expect("body").len()
                    });
                    futures_join(futs).await;
                }
                start.elapsed()
            }
        })
    });
    g.throughput(Throughput::Elements(IN_FLIGHT * 200));
    let upsert_url = format!("{}/services/data/v64.0/composite/sobjects/Learning_Result__c/External_Id__c", sim.http_url());
    // Request bodies are serialized once (250 batches = 50,000 keys, cycled) so the client's
    // JSON work does not eat the server's CPU: the figure is the simulator's.
    let bodies: Vec<bytes::Bytes> = (0..250u64)
        .map(|b| {
            let records: Vec<Value> = (0..200u64)
                .map(|i| json!({"attributes": {"type": "Learning_Result__c"}, "External_Id__c": format!("k{}", b * 200 + i), "Name": "r", "Score__c": i}))
                .collect();
            serde_json::to_vec(&json!({"allOrNone": false, "records": records})).unwrap_or_default().into()
        })
        .collect();
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    g.bench_function("upsert_collection_200", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (client, url, tok, counter, bodies) = (client.clone(), upsert_url.clone(), tok.clone(), counter.clone(), bodies.clone());
            async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let futs = (0..IN_FLIGHT).map(|_| {
                        let body = bodies[counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % bodies.len()].clone();
                        let (client, url, tok) = (client.clone(), url.clone(), tok.clone());
                        async move {
                            let r = client
                                .patch(&url)
                                .bearer_auth(&tok)
                                .header("content-type", "application/json")
                                .body(body)
                                .send()
                                .await
                                .expect("upsert");
                            assert_eq!(r.status(), 200);
                            r.bytes().await.expect("body").len()
                        }
                    });
                    futures_join(futs).await;
                }
                start.elapsed()
            }
        })
    });
    g.finish();
    drop(sim);
}

async fn futures_join<F: std::future::Future<Output = usize>>(futs: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    let mut total = 0;
    // poll all concurrently
    let results = join_all(set).await;
    for r in results {
        total += r;
    }
    assert!(total > 0);
}

async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().flatten().collect()
}

criterion_group!(benches, bench);
criterion_main!(benches);
