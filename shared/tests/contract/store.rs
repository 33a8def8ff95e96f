//! The `Store` contract: every backend (DynamoDB, embedded) must pass all of it.
//!
//! Expiry is checked against the system clock: items are written already expired (or expiring
//! in an hour), since DynamoDB's TTL cannot take another clock.

use std::sync::Arc;

use forcelink::ports::store::{
    Cond, Item, MAX_ITEM_BYTES, MAX_PAGE_BYTES, MAX_TRANSACTION_BYTES, MAX_TRANSACTION_OPS, Page, Query, Store, StoreError, WriteOp,
    item_size,
};

use super::support::{now_secs, unique};

/// Runs every store check against `store` (each on its own partition keys).
pub async fn store_contract(store: Arc<dyn Store>) {
    let s = store.as_ref();
    roundtrip_and_versions(s).await;
    conditions(s).await;
    replacing_clears_index_and_expiry(s).await;
    expiry(s).await;
    deletes(s).await;
    prefix_queries(s).await;
    gsi_queries(s).await;
    transactions(s).await;
    transaction_shapes(s).await;
    item_size_limit(s).await;
    transaction_size_limit(s).await;
    pages_end_at_one_megabyte(s).await;
}

fn assert_too_large<T: std::fmt::Debug>(result: Result<T, StoreError>, size: usize, limit: usize, what: &str) {
    match result {
        Err(StoreError::TooLarge { size: s, limit: l, .. }) => assert_eq!((s, l), (size, limit), "{what}: size and limit"),
        other => panic!("{what}: expected TooLarge, got {other:?}"),
    }
}

/// `item` with its body grown (by ASCII bytes) to make its DynamoDB size exactly `size`.
fn sized(item: Item, size: usize) -> Item {
    let grow = size - item_size(&item);
    Item { body: format!("{}{}", item.body, "x".repeat(grow)), ..item }
}

async fn item_size_limit(s: &dyn Store) {
    let pk = unique("SIZE");
    let exact = sized(Item::new(&pk, "exact", "é"), MAX_ITEM_BYTES);
    s.put(exact.clone(), Cond::NotExists).await.expect("an item of exactly 400 KB");
    assert_eq!(s.get(&pk, "exact").await.expect("get").expect("stored").body, exact.body, "stored whole");
    let indexed = sized(Item::new(&pk, "indexed", "{}").with_gsi1(&pk, "g").with_expiry(now_secs() + 3600), MAX_ITEM_BYTES);
    s.put(indexed, Cond::Always).await.expect("an item of exactly 400 KB with index keys and expiry");

    let over = sized(Item::new(&pk, "over", "{}"), MAX_ITEM_BYTES + 1);
    assert_too_large(s.put(over.clone(), Cond::Always).await, MAX_ITEM_BYTES + 1, MAX_ITEM_BYTES, "put of 400 KB + 1");
    let op = WriteOp::Put { item: over, cond: Cond::Always };
    assert_too_large(s.transact(vec![op]).await, MAX_ITEM_BYTES + 1, MAX_ITEM_BYTES, "transaction with an item of 400 KB + 1");
    // Index keys count: the same body that fit without them does not fit with them.
    let grown = Item { gsi1: Some((pk.clone(), "g".into())), ..exact };
    let size = item_size(&grown);
    assert_too_large(s.put(grown, Cond::Always).await, size, MAX_ITEM_BYTES, "index keys count toward the size");
    assert!(s.get(&pk, "over").await.expect("get").is_none(), "refused writes write nothing");
}

async fn transaction_size_limit(s: &dyn Store) {
    let pk = unique("TXSIZE");
    // Ten items of 400 KB and one that brings the transaction to exactly 4 MB.
    let ops = |pk: &str, last: usize| -> Vec<WriteOp> {
        let mut ops: Vec<WriteOp> = (0..10)
            .map(|i| WriteOp::Put { item: sized(Item::new(pk, format!("k{i:02}"), ""), MAX_ITEM_BYTES), cond: Cond::Always })
            .collect();
        ops.push(WriteOp::Put { item: sized(Item::new(pk, "last", ""), last), cond: Cond::Always });
        ops
    };
    let rest = MAX_TRANSACTION_BYTES - 10 * MAX_ITEM_BYTES;
    let over = ops(&pk, rest + 1);
    assert_too_large(s.transact(over).await, MAX_TRANSACTION_BYTES + 1, MAX_TRANSACTION_BYTES, "a transaction of 4 MB + 1");
    assert!(s.get(&pk, "k00").await.expect("get").is_none(), "a refused transaction writes nothing");
    s.transact(ops(&pk, rest)).await.expect("a transaction of exactly 4 MB");
    assert!(s.get(&pk, "last").await.expect("get").is_some());
}

async fn pages_end_at_one_megabyte(s: &dyn Store) {
    let pk = unique("PAGE");
    let item_bytes = 350 * 1024;
    for i in 0..4 {
        s.put(sized(Item::new(&pk, format!("i{i}"), ""), item_bytes), Cond::Always).await.expect("put");
    }
    let first = s.query(&Query::prefix(&pk, "")).await.expect("first page");
    // 2 items are 700 KB, under 1 MB; the third brings the page over it and ends it.
    assert!(2 * item_bytes < MAX_PAGE_BYTES && 3 * item_bytes >= MAX_PAGE_BYTES);
    assert_eq!(first.items.len(), 3, "a page ends at the item that brings it to 1 MB");
    let mut q = Query::prefix(&pk, "");
    q.after = Some(first.next.expect("a cursor for the rest"));
    let second = s.query(&q).await.expect("second page");
    assert_eq!(second.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(), ["i3"]);
    assert!(second.next.is_none());
    assert_eq!(collect(s, Query::prefix(&pk, "").reversed()).await.len(), 4, "following the cursors reads everything");
}

fn assert_condition_failed<T: std::fmt::Debug>(result: Result<T, StoreError>, pk: &str, sk: &str, what: &str) {
    match result {
        Err(StoreError::ConditionFailed { pk: p, sk: s }) => {
            assert_eq!((p.as_str(), s.as_str()), (pk, sk), "{what}: ConditionFailed names the key");
        }
        other => panic!("{what}: expected ConditionFailed for {pk}/{sk}, got {other:?}"),
    }
}

async fn roundtrip_and_versions(s: &dyn Store) {
    let pk = unique("RT");
    assert_eq!(s.get(&pk, "a").await.expect("get missing"), None, "a missing item reads as None");

    let body = r#"{"name":"Zoë ✓","n":[1,2,3],"nested":{"q":"\"quoted\""}}"#;
    let v1 = s.put(Item::new(&pk, "a", body), Cond::NotExists).await.expect("first put");
    assert_eq!(v1, 1, "the first write of a key has version 1");
    let got = s.get(&pk, "a").await.expect("get").expect("item is there");
    assert_eq!(got, Item { version: 1, ..Item::new(&pk, "a", body) }, "roundtrip keeps every field");

    let later = now_secs() + 3600;
    let item = Item::new(&pk, "a", "{}").with_gsi1(format!("G{pk}"), "x#1").with_expiry(later);
    let v2 = s.put(item.clone(), Cond::Version(1)).await.expect("put v1");
    assert_eq!(v2, 2, "each write bumps the version by one");
    let got = s.get(&pk, "a").await.expect("get").expect("item");
    assert_eq!(got, Item { version: 2, ..item }, "gsi1 and expiry roundtrip");
    assert_eq!(s.put(Item::new(&pk, "a", "{}"), Cond::Always).await.expect("put always"), 3);

    // Keys are exact: no prefix or case folding.
    assert_eq!(s.get(&pk, "A").await.expect("get"), None);
    assert_eq!(s.get(&pk, "a ").await.expect("get"), None);
    assert_eq!(s.get(&format!("{pk}x"), "a").await.expect("get"), None);
}

async fn conditions(s: &dyn Store) {
    let pk = unique("COND");
    // On a missing key: NotExists and Always hold, Exists and Version do not.
    assert_condition_failed(s.put(Item::new(&pk, "m", "{}"), Cond::Exists).await, &pk, "m", "Exists on a missing key");
    assert_condition_failed(s.put(Item::new(&pk, "m", "{}"), Cond::Version(0)).await, &pk, "m", "Version(0) on a missing key");
    assert_condition_failed(s.put(Item::new(&pk, "m", "{}"), Cond::Version(1)).await, &pk, "m", "Version(1) on a missing key");
    assert_eq!(s.get(&pk, "m").await.expect("get"), None, "failed writes leave nothing");
    assert_eq!(s.put(Item::new(&pk, "m", "{}"), Cond::Always).await.expect("Always on a missing key"), 1);

    // On a live item: NotExists fails, Exists holds, Version holds only for the current one.
    assert_condition_failed(s.put(Item::new(&pk, "m", r#"{"x":1}"#), Cond::NotExists).await, &pk, "m", "NotExists on a live item");
    assert_eq!(s.put(Item::new(&pk, "m", r#"{"x":2}"#), Cond::Exists).await.expect("Exists on a live item"), 2);
    assert_condition_failed(s.put(Item::new(&pk, "m", r#"{"x":3}"#), Cond::Version(1)).await, &pk, "m", "a stale version");
    assert_condition_failed(s.put(Item::new(&pk, "m", r#"{"x":3}"#), Cond::Version(3)).await, &pk, "m", "a future version");
    assert_eq!(s.put(Item::new(&pk, "m", r#"{"x":3}"#), Cond::Version(2)).await.expect("the current version"), 3);
    let got = s.get(&pk, "m").await.expect("get").expect("item");
    assert_eq!((got.version, got.body.as_str()), (3, r#"{"x":3}"#), "failed writes changed nothing");

    // Optimistic concurrency: of two writers holding the same version, one wins.
    let a = s.put(Item::new(&pk, "m", r#"{"w":"a"}"#), Cond::Version(3));
    let b = s.put(Item::new(&pk, "m", r#"{"w":"b"}"#), Cond::Version(3));
    let (a, b) = futures::join!(a, b);
    assert!(a.is_ok() ^ b.is_ok(), "exactly one of two racing versioned writes wins: {a:?} {b:?}");
    assert_eq!(s.get(&pk, "m").await.expect("get").expect("item").version, 4);
}

async fn replacing_clears_index_and_expiry(s: &dyn Store) {
    let pk = unique("REPL");
    let gpk = unique("GREPL");
    let item = Item::new(&pk, "r", "{}").with_gsi1(&gpk, "s#1").with_expiry(now_secs() + 3600);
    s.put(item, Cond::NotExists).await.expect("put");
    assert_eq!(s.query(&Query::prefix(&gpk, "").on_gsi1()).await.expect("gsi").items.len(), 1);
    s.put(Item::new(&pk, "r", "{}"), Cond::Exists).await.expect("replace");
    let got = s.get(&pk, "r").await.expect("get").expect("item");
    assert_eq!((got.gsi1, got.expires_at), (None, None), "a put replaces the whole item, index entry and expiry included");
    assert!(s.query(&Query::prefix(&gpk, "").on_gsi1()).await.expect("gsi").items.is_empty(), "the old index entry is gone");

    // Moving an item to another index entry.
    let gpk2 = unique("GREPL");
    s.put(Item::new(&pk, "r", "{}").with_gsi1(&gpk, "s#1"), Cond::Always).await.expect("put");
    s.put(Item::new(&pk, "r", "{}").with_gsi1(&gpk2, "t#1"), Cond::Always).await.expect("move");
    assert!(s.query(&Query::prefix(&gpk, "").on_gsi1()).await.expect("gsi").items.is_empty());
    let moved = s.query(&Query::prefix(&gpk2, "t#").on_gsi1()).await.expect("gsi").items;
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].gsi1, Some((gpk2.clone(), "t#1".to_string())));
}

async fn expiry(s: &dyn Store) {
    let pk = unique("TTL");
    let past = now_secs() - 60;
    let future = now_secs() + 3600;

    // Written already expired: reads as absent.
    s.put(Item::new(&pk, "gone", "{}").with_expiry(past), Cond::Always).await.expect("put expired");
    assert_eq!(s.get(&pk, "gone").await.expect("get"), None, "an expired item reads as absent");
    assert_condition_failed(s.put(Item::new(&pk, "gone", "{}"), Cond::Exists).await, &pk, "gone", "Exists on an expired item");
    assert_condition_failed(s.delete(&pk, "gone", Cond::Exists).await, &pk, "gone", "delete Exists on an expired item");
    // Whatever version the expired item had, no versioned write matches it.
    for v in 0..4 {
        assert_condition_failed(s.put(Item::new(&pk, "gone", "{}"), Cond::Version(v)).await, &pk, "gone", "Version on an expired item");
    }
    // NotExists treats it as absent, and the new item is live.
    let v = s.put(Item::new(&pk, "gone", r#"{"new":true}"#), Cond::NotExists).await.expect("NotExists over an expired item");
    assert!(v >= 1);
    let got = s.get(&pk, "gone").await.expect("get").expect("the rewritten item is live");
    assert_eq!((got.body.as_str(), got.expires_at, got.version), (r#"{"new":true}"#, None, v));

    // Expiring in the future: live, and the expiry is kept.
    s.put(Item::new(&pk, "soon", "{}").with_expiry(future), Cond::NotExists).await.expect("put");
    assert_eq!(s.get(&pk, "soon").await.expect("get").expect("live").expires_at, Some(future));

    // Expiry exactly now counts as expired (`expires_at <= now`).
    s.put(Item::new(&pk, "edge", "{}").with_expiry(now_secs()), Cond::Always).await.expect("put");
    assert_eq!(s.get(&pk, "edge").await.expect("get"), None, "expires_at == now reads as absent");

    // A live item made expired by a write.
    s.put(Item::new(&pk, "kill", "{}"), Cond::NotExists).await.expect("put");
    s.put(Item::new(&pk, "kill", "{}").with_expiry(past), Cond::Exists).await.expect("expire it");
    assert_eq!(s.get(&pk, "kill").await.expect("get"), None);

    // Queries skip expired items, on both indexes.
    let gpk = unique("GTTL");
    for i in 0..6 {
        let exp = if i % 2 == 0 { past } else { future };
        s.put(Item::new(&pk, format!("q#{i}"), "{}").with_gsi1(&gpk, format!("q#{i}")).with_expiry(exp), Cond::Always).await.expect("put");
    }
    let live: Vec<String> = collect(s, Query::prefix(&pk, "q#").limit(2)).await.into_iter().map(|i| i.sk).collect();
    assert_eq!(live, ["q#1", "q#3", "q#5"], "queries skip expired items (pages of 2)");
    let live: Vec<String> = collect(s, Query::prefix(&gpk, "q#").on_gsi1().limit(1)).await.into_iter().map(|i| i.sk).collect();
    assert_eq!(live, ["q#1", "q#3", "q#5"], "gsi1 queries skip expired items");
    let live: Vec<String> = collect(s, Query::prefix(&pk, "q#").limit(2).reversed()).await.into_iter().map(|i| i.sk).collect();
    assert_eq!(live, ["q#5", "q#3", "q#1"]);
}

async fn deletes(s: &dyn Store) {
    let pk = unique("DEL");
    s.delete(&pk, "none", Cond::Always).await.expect("deleting nothing under Always is fine");
    assert_condition_failed(s.delete(&pk, "none", Cond::Exists).await, &pk, "none", "delete Exists on a missing key");
    assert_condition_failed(s.delete(&pk, "none", Cond::Version(1)).await, &pk, "none", "delete Version on a missing key");

    let v = s.put(Item::new(&pk, "d", "{}"), Cond::NotExists).await.expect("put");
    assert_condition_failed(s.delete(&pk, "d", Cond::Version(v + 1)).await, &pk, "d", "delete with a wrong version");
    assert_condition_failed(s.delete(&pk, "d", Cond::NotExists).await, &pk, "d", "delete NotExists on a live item");
    assert!(s.get(&pk, "d").await.expect("get").is_some(), "failed deletes leave the item");
    s.delete(&pk, "d", Cond::Version(v)).await.expect("delete with the version");
    assert_eq!(s.get(&pk, "d").await.expect("get"), None);
    assert_eq!(s.put(Item::new(&pk, "d", "{}"), Cond::NotExists).await.expect("recreate"), 1, "a deleted key starts again at version 1");
    s.delete(&pk, "d", Cond::Exists).await.expect("delete Exists");
    s.delete(&pk, "d", Cond::Always).await.expect("delete again");
    assert_eq!(s.get(&pk, "d").await.expect("get"), None);
}

/// Every item of a query, page by page, checking the pages' shape.
async fn collect(s: &dyn Store, mut query: Query) -> Vec<Item> {
    let mut all = Vec::new();
    for pages in 1.. {
        assert!(pages < 10_000, "paging does not end");
        let Page { items, next } = s.query(&query).await.expect("query page");
        assert!(items.len() <= query.limit.max(1), "a page holds at most `limit` items");
        let done = next.is_none();
        if !done {
            assert!(!items.is_empty(), "only the last page may be empty");
        }
        all.extend(items);
        if done {
            break;
        }
        query.after = next;
    }
    all
}

/// Counts the pages a query takes.
async fn count_pages(s: &dyn Store, mut query: Query) -> usize {
    let mut pages = 0;
    loop {
        let page = s.query(&query).await.expect("query");
        pages += usize::from(!page.items.is_empty());
        match page.next {
            Some(next) => query.after = Some(next),
            None => return pages,
        }
    }
}

async fn prefix_queries(s: &dyn Store) {
    let pk = unique("Q");
    let other = unique("Q");
    let mut ops = Vec::new();
    for i in 0..25 {
        ops.push(WriteOp::Put { item: Item::new(&pk, format!("item#{i:03}"), format!(r#"{{"i":{i}}}"#)), cond: Cond::NotExists });
    }
    for sk in ["iteM#000", "item", "itea#1", "other#1", "j"] {
        ops.push(WriteOp::Put { item: Item::new(&pk, sk, "{}"), cond: Cond::NotExists });
    }
    ops.push(WriteOp::Put { item: Item::new(&other, "item#000", "{}"), cond: Cond::NotExists });
    s.transact(ops).await.expect("seed");

    let expected: Vec<String> = (0..25).map(|i| format!("item#{i:03}")).collect();
    let forward: Vec<Item> = collect(s, Query::prefix(&pk, "item#").limit(10)).await;
    assert_eq!(forward.iter().map(|i| i.sk.clone()).collect::<Vec<_>>(), expected, "forward pages in sort-key order, prefix only");
    assert!(forward.iter().all(|i| i.pk == pk && i.version == 1), "items come whole");
    assert_eq!(forward[7].body, r#"{"i":7}"#);
    assert!(count_pages(s, Query::prefix(&pk, "item#").limit(10)).await >= 3, "25 items in pages of 10 take 3 pages");

    let reverse: Vec<String> = collect(s, Query::prefix(&pk, "item#").limit(7).reversed()).await.into_iter().map(|i| i.sk).collect();
    let mut expected_rev = expected.clone();
    expected_rev.reverse();
    assert_eq!(reverse, expected_rev, "reverse pages in descending order");
    assert!(count_pages(s, Query::prefix(&pk, "item#").limit(7).reversed()).await >= 4);

    // First page exactly, then the cursor continues where it stopped.
    let first = s.query(&Query::prefix(&pk, "item#").limit(10)).await.expect("page 1");
    assert_eq!(first.items.len(), 10, "a full page when more items remain");
    let cursor = first.next.clone().expect("a cursor after a full page with more to come");
    let second = s.query(&Query { after: Some(cursor.clone()), ..Query::prefix(&pk, "item#").limit(10) }).await.expect("page 2");
    assert_eq!(second.items.first().map(|i| i.sk.as_str()), Some("item#010"));
    // The cursor is stable: the same cursor gives the same page.
    let again = s.query(&Query { after: Some(cursor.clone()), ..Query::prefix(&pk, "item#").limit(10) }).await.expect("page 2 again");
    assert_eq!(again.items, second.items);

    // One page for everything, and the limit is capped rather than refused.
    let all = s.query(&Query::prefix(&pk, "item#").limit(100_000)).await.expect("big limit");
    assert_eq!((all.items.len(), all.next.is_none()), (25, true), "a page larger than the result holds it all");

    // Empty prefix: the whole partition, in order.
    let whole: Vec<String> = collect(s, Query::prefix(&pk, "").limit(4)).await.into_iter().map(|i| i.sk).collect();
    let mut sorted = whole.clone();
    sorted.sort();
    assert_eq!((whole.len(), &whole), (30, &sorted), "an empty prefix lists the partition in byte order");
    assert_eq!(whole[0], "iteM#000", "sort keys compare as bytes (uppercase first)");

    // Nothing matches.
    let none = s.query(&Query::prefix(&pk, "zzz")).await.expect("no match");
    assert!(none.items.is_empty() && none.next.is_none());
    let none = s.query(&Query::prefix(unique("Q"), "")).await.expect("empty partition");
    assert!(none.items.is_empty() && none.next.is_none());

    // Cursors that did not come from this query.
    for bad in ["garbage", "", "!!!", "eyJ9"] {
        let q = Query { after: Some(bad.to_string()), ..Query::prefix(&pk, "item#") };
        assert!(matches!(s.query(&q).await, Err(StoreError::BadCursor)), "cursor {bad:?} is refused");
    }
    let q = Query { after: Some(cursor), ..Query::prefix(&other, "item#") };
    assert!(matches!(s.query(&q).await, Err(StoreError::BadCursor)), "a cursor from another partition is refused");
}

async fn gsi_queries(s: &dyn Store) {
    let g = unique("G");
    // Index entries spread over several partitions, not in write order.
    for i in (0..12).rev() {
        let item = Item::new(unique("GP"), "meta", format!(r#"{{"i":{i}}}"#)).with_gsi1(&g, format!("2024-01-{:02}#{i}", i + 1));
        s.put(item, Cond::NotExists).await.expect("put");
    }
    s.put(Item::new(unique("GP"), "meta", "{}").with_gsi1(&g, "2023-12-31#x"), Cond::NotExists).await.expect("put");
    s.put(Item::new(unique("GP"), "meta", "{}"), Cond::NotExists).await.expect("put without index entry");

    let items = collect(s, Query::prefix(&g, "2024-").on_gsi1().limit(5)).await;
    let keys: Vec<String> = items.iter().map(|i| i.gsi1.clone().expect("has gsi1").1).collect();
    let expected: Vec<String> = (0..12).map(|i| format!("2024-01-{:02}#{i}", i + 1)).collect();
    assert_eq!(keys, expected, "gsi1 pages in gsi1sk order");
    assert!(items.iter().all(|i| i.sk == "meta" && i.version == 1 && i.gsi1.as_ref().is_some_and(|(p, _)| *p == g)));
    assert!(count_pages(s, Query::prefix(&g, "2024-").on_gsi1().limit(5)).await >= 3);

    let rev: Vec<String> =
        collect(s, Query::prefix(&g, "2024-").on_gsi1().limit(5).reversed()).await.into_iter().map(|i| i.gsi1.expect("gsi1").1).collect();
    let mut expected_rev = expected;
    expected_rev.reverse();
    assert_eq!(rev, expected_rev);
    assert_eq!(collect(s, Query::prefix(&g, "").on_gsi1()).await.len(), 13);

    // The primary index does not see gsi1 keys, nor the reverse.
    assert!(s.query(&Query::prefix(&g, "")).await.expect("primary").items.is_empty());
    let first = s.query(&Query::prefix(&g, "2024-").on_gsi1().limit(5)).await.expect("page");
    let q = Query { after: first.next, ..Query::prefix(&g, "2024-") };
    assert!(matches!(s.query(&q).await, Err(StoreError::BadCursor)), "a gsi1 cursor is refused on the primary index");
}

async fn transactions(s: &dyn Store) {
    let pk = unique("TX");
    s.put(Item::new(&pk, "b", r#"{"b":1}"#), Cond::NotExists).await.expect("seed b");
    s.put(Item::new(&pk, "c", "{}"), Cond::NotExists).await.expect("seed c");
    s.put(Item::new(&pk, "d", "{}"), Cond::NotExists).await.expect("seed d");

    // Commit: every kind of operation.
    s.transact(vec![
        WriteOp::Put { item: Item::new(&pk, "a", r#"{"a":1}"#).with_gsi1(format!("G{pk}"), "a"), cond: Cond::NotExists },
        WriteOp::Put { item: Item::new(&pk, "b", r#"{"b":2}"#), cond: Cond::Version(1) },
        WriteOp::Delete { pk: pk.clone(), sk: "c".into(), cond: Cond::Exists },
        WriteOp::Check { pk: pk.clone(), sk: "d".into(), cond: Cond::Version(1) },
        WriteOp::Check { pk: pk.clone(), sk: "nothing".into(), cond: Cond::NotExists },
        WriteOp::Check { pk: pk.clone(), sk: "whatever".into(), cond: Cond::Always },
    ])
    .await
    .expect("transaction commits");
    let a = s.get(&pk, "a").await.expect("get").expect("a written");
    assert_eq!((a.version, a.body.as_str(), a.gsi1.is_some()), (1, r#"{"a":1}"#, true));
    let b = s.get(&pk, "b").await.expect("get").expect("b written");
    assert_eq!((b.version, b.body.as_str()), (2, r#"{"b":2}"#), "a transactional put bumps the version");
    assert_eq!(s.get(&pk, "c").await.expect("get"), None, "c deleted");
    assert_eq!(s.get(&pk, "d").await.expect("get").expect("d").version, 1, "a check writes nothing");
    assert_eq!(s.get(&pk, "nothing").await.expect("get"), None);
    assert_eq!(s.get(&pk, "whatever").await.expect("get"), None);

    // Cancel: one failing operation, whatever its position, and nothing is applied.
    let attempts: Vec<(Vec<WriteOp>, &str)> = vec![
        (
            vec![
                WriteOp::Put { item: Item::new(&pk, "e", "{}"), cond: Cond::NotExists },
                WriteOp::Put { item: Item::new(&pk, "a", "{}"), cond: Cond::NotExists },
                WriteOp::Delete { pk: pk.clone(), sk: "b".into(), cond: Cond::Always },
            ],
            "a",
        ),
        (
            vec![
                WriteOp::Check { pk: pk.clone(), sk: "d".into(), cond: Cond::Version(7) },
                WriteOp::Put { item: Item::new(&pk, "e", "{}"), cond: Cond::Always },
                WriteOp::Put { item: Item::new(&pk, "b", "{}"), cond: Cond::Always },
            ],
            "d",
        ),
        (
            vec![
                WriteOp::Put { item: Item::new(&pk, "e", "{}"), cond: Cond::Always },
                WriteOp::Delete { pk: pk.clone(), sk: "b".into(), cond: Cond::Always },
                WriteOp::Delete { pk: pk.clone(), sk: "c".into(), cond: Cond::Exists },
            ],
            "c",
        ),
        (
            vec![
                WriteOp::Put { item: Item::new(&pk, "e", "{}"), cond: Cond::Always },
                WriteOp::Check { pk: pk.clone(), sk: "gone".into(), cond: Cond::Exists },
            ],
            "gone",
        ),
    ];
    for (ops, failing) in attempts {
        assert_condition_failed(s.transact(ops).await, &pk, failing, "a cancelled transaction");
        assert_eq!(s.get(&pk, "e").await.expect("get"), None, "a cancelled transaction writes nothing");
        let b = s.get(&pk, "b").await.expect("get").expect("b untouched");
        assert_eq!((b.version, b.body.as_str()), (2, r#"{"b":2}"#), "a cancelled transaction changes nothing");
    }

    // Expired items are absent to transactions too.
    s.put(Item::new(&pk, "old", "{}").with_expiry(now_secs() - 60), Cond::Always).await.expect("put expired");
    assert_condition_failed(
        s.transact(vec![WriteOp::Check { pk: pk.clone(), sk: "old".into(), cond: Cond::Exists }]).await,
        &pk,
        "old",
        "Check Exists on an expired item",
    );
    s.transact(vec![WriteOp::Put { item: Item::new(&pk, "old", r#"{"v":2}"#), cond: Cond::NotExists }])
        .await
        .expect("NotExists over an expired item");
    assert_eq!(s.get(&pk, "old").await.expect("get").expect("live").body, r#"{"v":2}"#);

    // The largest transaction, across partitions.
    let big = unique("TXBIG");
    let ops: Vec<WriteOp> = (0..MAX_TRANSACTION_OPS)
        .map(|i| WriteOp::Put { item: Item::new(format!("{big}-{}", i % 3), format!("k{i:03}"), "{}"), cond: Cond::NotExists })
        .collect();
    s.transact(ops).await.expect("100 operations commit");
    assert_eq!(collect(s, Query::prefix(format!("{big}-0"), "k")).await.len(), 34);
}

async fn transaction_shapes(s: &dyn Store) {
    let pk = unique("TXS");
    let put = |sk: String| WriteOp::Put { item: Item::new(&pk, sk, "{}"), cond: Cond::Always };

    let too_many: Vec<WriteOp> = (0..=MAX_TRANSACTION_OPS).map(|i| put(format!("k{i}"))).collect();
    assert!(matches!(s.transact(too_many).await, Err(StoreError::Invalid(_))), "101 operations are refused");
    assert!(matches!(s.transact(Vec::new()).await, Err(StoreError::Invalid(_))), "an empty transaction is refused");
    let dup = vec![put("x".into()), WriteOp::Delete { pk: pk.clone(), sk: "x".into(), cond: Cond::Always }];
    assert!(matches!(s.transact(dup).await, Err(StoreError::Invalid(_))), "two operations on one key are refused");
    let dup = vec![put("y".into()), WriteOp::Check { pk: pk.clone(), sk: "y".into(), cond: Cond::Always }];
    assert!(matches!(s.transact(dup).await, Err(StoreError::Invalid(_))), "a check and a write on one key are refused");
    // Nothing of the refused transactions was applied.
    assert!(s.query(&Query::prefix(&pk, "")).await.expect("query").items.is_empty(), "refused transactions write nothing");
}
