//! The embedded store and queue survive `kill -9` in the middle of writes with their last
//! committed state intact. A real child process (this binary with `--child`) writes pairs of
//! items atomically and queue messages, printing each sequence number once committed; the
//! parent kills it with SIGKILL mid-stream and checks every printed write is there and no
//! pair is half-written.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use forcelink::backends::sqlite_queue::{QueueConfig, SqliteQueue};
use forcelink::backends::sqlite_store::SqliteStore;
use forcelink::ports::{Cond, Item, Query, Queue, Receive, Store, WriteOp};

const KILL_AFTER: u64 = 300;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        let dir = Path::new(&args[pos + 1]).to_path_buf();
        runtime.block_on(child(&dir));
    } else if args.iter().any(|a| a == "--list") {
        // `cargo test -- --list` asks harness-less tests what they hold.
        println!("crash_safety: test");
    } else {
        runtime.block_on(parent());
    }
}

async fn child(dir: &Path) {
    let store = SqliteStore::open(&dir.join("store.db")).expect("open store");
    let queue = SqliteQueue::open(&dir.join("queue.db"), "q", QueueConfig::default()).expect("open queue");
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let body = format!("{{\"i\":{i}}}");
        store
            .transact(vec![
                WriteOp::Put { item: Item::new("crash", format!("a#{i:08}"), body.clone()), cond: Cond::NotExists },
                WriteOp::Put { item: Item::new("crash", format!("b#{i:08}"), body.clone()), cond: Cond::NotExists },
            ])
            .await
            .expect("transact");
        queue.send(i.to_string()).await.expect("send");
        use std::io::Write;
        writeln!(out, "{i}").and_then(|()| out.flush()).expect("stdout");
    }
}

async fn parent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .arg("--child")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut last_printed = None;
    for line in lines.by_ref() {
        let i: u64 = line.expect("line").parse().expect("number");
        last_printed = Some(i);
        if i + 1 >= KILL_AFTER {
            break;
        }
    }
    // SIGKILL while the child is still writing.
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "the child was killed, not finished");
    let last_printed = last_printed.expect("the child committed something");

    let store = SqliteStore::open(&dir.path().join("store.db")).expect("reopen store");
    let a = all(&store, "a#").await;
    let b = all(&store, "b#").await;
    assert_eq!(a, b, "every pair is whole: no transaction half-applied");
    assert!(a.len() as u64 > last_printed, "every committed pair is there: {} < {}", a.len(), last_printed + 1);
    assert_eq!(a, (0..a.len() as u64).map(|i| format!("{i:08}")).collect::<Vec<_>>(), "no gaps");

    let queue = SqliteQueue::open(&dir.path().join("queue.db"), "q", QueueConfig::default()).expect("reopen queue");
    let depth = queue.depth().await.expect("depth");
    assert!(depth > last_printed, "every acknowledged send is there: {depth} ≤ {last_printed}");
    let mut seen = 0u64;
    while seen <= last_printed {
        let batch = queue.receive(Receive { wait: Duration::from_millis(10), ..Receive::default() }).await.expect("receive");
        assert!(!batch.is_empty(), "message {seen} lost");
        for m in batch {
            assert_eq!(m.body, seen.to_string(), "messages come back in order");
            queue.delete(&m.receipt_handle).await.expect("delete");
            seen += 1;
        }
    }
    println!("crash_safety: killed after {} commits; {} pairs and {depth} messages intact", last_printed + 1, a.len());
    println!("1 passed, 0 failed");
}

async fn all(store: &SqliteStore, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut query = Query::prefix("crash", prefix).limit(1000);
    loop {
        let page = store.query(&query).await.expect("query");
        out.extend(page.items.into_iter().map(|i| i.sk[prefix.len()..].to_string()));
        match page.next {
            Some(n) => query.after = Some(n),
            None => return out,
        }
    }
}
