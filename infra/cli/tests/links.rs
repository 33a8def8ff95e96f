//! `forcelink link`, `forcelink verify` and the links flow of `forcelink demo`, run as the real
//! binary against `forcelink dev` on a temporary data directory, driven over HTTP.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use forcelink::domain::DirectoryUser;
use forcelink::domain::record;
use forcelink::ports::Cond;
use forcelink_stack::dev::{self, DevServer, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_forcelink");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/acme.toml");

/// The CLI on the data directory `data`, its public URL on `port`.
fn vars(data: &Path, port: u16) -> [(&'static str, String); 2] {
    [("FORCELINK_DATA_DIR", data.display().to_string()), ("FORCELINK_PUBLIC_URL", format!("http://127.0.0.1:{port}"))]
}

fn forcelink(data: &Path, port: u16) -> Command {
    dev::command(Path::new(BIN), vars(data, port))
}

/// `forcelink dev` without its simulator (the links flows need no Salesforce).
fn start_dev(data: &Path, port: u16) -> DevServer {
    DevServer::start(Path::new(BIN), port, vars(data, port), &["--no-sim"])
}

/// The first `/l/…` link in the outbox, quoted-printable soft breaks undone.
fn wait_for_link(outbox: &Path, deadline: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(entries) = std::fs::read_dir(outbox) {
            for e in entries.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "eml")) {
                let mail = std::fs::read_to_string(e.path()).unwrap().replace("=\r\n", "").replace("=3D", "=");
                if let Some(at) = mail.find("/l/") {
                    let token: String = mail[at + 3..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_".contains(*c)).collect();
                    return format!("/l/{token}");
                }
            }
        }
        assert!(start.elapsed() < deadline, "no email with a link in {}", outbox.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn click(port: u16, path: &str) -> (u16, String) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = http.get(format!("http://127.0.0.1:{port}{path}")).send().await.unwrap();
    let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (resp.status().as_u16(), location)
}

fn apply(data: &Path, port: u16) {
    let out = forcelink(data, port).args(["apply", EXAMPLE]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_a_click_into_the_salesforce_tab() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    apply(dir.path(), port);
    let _dev = start_dev(dir.path(), port);
    let verify = forcelink(dir.path(), port)
        .args(["verify", "acme", "--email", "lms-admin@acme.example", "--first-name", "Ada", "--last-name", "Admin", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let path = wait_for_link(&dir.path().join("outbox"), Duration::from_secs(60));
    let mails: Vec<String> =
        std::fs::read_dir(dir.path().join("outbox")).unwrap().flatten().filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect();
    let test = mails.iter().find(|m| m.contains("Subject: forcelink test")).expect("the test invitation");
    assert!(test.contains("Hello Ada,"), "the test greets the admin by name: {test}");
    let (status, location) = click(port, &path).await;
    assert_eq!(status, 302);
    assert!(location.starts_with("https://acme.lightning.force.com/lightning/n/Learning?c__target="), "{location}");
    let out = tokio::task::spawn_blocking(move || verify.wait_with_output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for words in
        ["enrolled  lms-admin@acme.example Ada Admin", "sent", "clicked", "went to   the Salesforce tab (Lightning)", "result    OK"]
    {
        assert!(stdout.contains(words), "{words:?} missing from:\n{stdout}");
    }
    let deps = open(dir.path()).await;
    let admin = DirectoryUser::load(deps.store.as_ref(), "acme", "lms-admin@acme.example").await.unwrap().unwrap().record;
    assert_eq!((admin.first_name.as_str(), admin.last_name.as_str()), ("Ada", "Admin"), "the guide asks for the admin's name");
}

/// The guide's validation step for a contact (a survey recipient, as Qualtrics sends to): the
/// admin is enrolled in a contact list, and the test link lands on the platform with their
/// signed contact reference.
#[tokio::test(flavor = "multi_thread")]
async fn verify_works_for_a_contact() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    apply(dir.path(), port);
    let _dev = start_dev(dir.path(), port);
    let args = ["verify", "acme", "--email", "Ada@Acme.example", "--first-name", "Ada", "--last-name", "Admin", "--contact", "admins"];
    let verify = forcelink(dir.path(), port).args(args).args(["--timeout", "60"]).stdout(Stdio::piped()).spawn().unwrap();
    let path = wait_for_link(&dir.path().join("outbox"), Duration::from_secs(60));
    let (status, location) = click(port, &path).await;
    assert_eq!(status, 302);
    assert!(location.starts_with("https://acme.platform.example/questions/forcelink-test?flk_contact="), "{location}");
    let out = tokio::task::spawn_blocking(move || verify.wait_with_output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("added as a contact of the list") && stdout.contains("result    OK"), "{stdout}");
    let deps = open(dir.path()).await;
    let contact =
        forcelink::domain::Contact::load(deps.store.as_ref(), "acme", "admins", "ada@acme.example").await.unwrap().unwrap().record;
    assert_eq!((contact.first_name(), contact.last_name(), contact.email.as_str()), ("Ada", "Admin", "Ada@Acme.example"));
}

/// The stack on a data directory, as the CLI opens it.
async fn open(data: &Path) -> forcelink::Deps {
    let data = data.display().to_string();
    let settings = forcelink::Settings::from_lookup(|k| (k == "FORCELINK_DATA_DIR").then(|| data.clone())).unwrap();
    forcelink::Deps::from_settings(settings).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_the_platform_for_a_non_salesforce_admin() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    apply(dir.path(), port);
    {
        let deps = open(dir.path()).await;
        let user = DirectoryUser {
            site: "acme".into(),
            id: "p-42".into(),
            email: "ops@acme.example".into(),
            first_name: "Ops".into(),
            last_name: String::new(),
            salesforce_id: None,
            salesforce_org_id: None,
            active: true,
            tags: [("salesforce_user".to_string(), "false".to_string())].into(),
            manager_id: None,
            ui: None,
        };
        record::save(deps.store.as_ref(), &user, Cond::Always).await.unwrap();
    }
    let _dev = start_dev(dir.path(), port);
    let verify = forcelink(dir.path(), port)
        .args(["verify", "acme", "--email", "OPS@acme.example", "--timeout", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let path = wait_for_link(&dir.path().join("outbox"), Duration::from_secs(60));
    let (status, location) = click(port, &path).await;
    assert_eq!((status, location.as_str()), (302, "https://acme.platform.example/questions/forcelink-test"));
    let out = tokio::task::spawn_blocking(move || verify.wait_with_output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("already in the directory") && stdout.contains("went to   the platform"), "{stdout}");
}

#[test]
fn link_prints_a_working_url_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    apply(dir.path(), port);
    let enrolled =
        forcelink(dir.path(), port).args(["verify", "acme", "--email", "lms-admin@acme.example", "--timeout", "0"]).output().unwrap();
    assert!(enrolled.status.success());
    let out = forcelink(dir.path(), port)
        .args(["link", "acme", "--user", "lms-admin@acme.example", "--target", "/surveys/onboarding", "--single-use", "--ttl-days", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap();
    assert!(url.trim().starts_with(&format!("http://127.0.0.1:{port}/l/")), "{url}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("single use, opens the Salesforce tab (Lightning)"));
    for (user, target) in [("lms-admin@acme.example", "https://evil.com"), ("lms-admin@acme.example", "//evil.com"), ("nobody", "/x")] {
        let out = forcelink(dir.path(), port).args(["link", "acme", "--user", user, "--target", target]).output().unwrap();
        assert!(!out.status.success(), "{user} {target}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn demo_runs_the_links_flow() {
    let out = Command::new(BIN).args(["demo", "--only", "links"]).env("RUST_LOG", "warn").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("== links") && stdout.contains("all flows passed"), "{stdout}");
    assert!(stdout.contains("the Salesforce tab (Lightning)") && stdout.contains("the platform"), "{stdout}");
}
