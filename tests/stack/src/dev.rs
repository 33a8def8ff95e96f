//! `forcelink dev` as a child process, for the CLI's end-to-end tests: started on a loopback
//! port with only the environment a test gives it, ready (answering `/healthz`) when
//! [`DevServer::start`] returns, and killed on drop (the endpoint "goes down").

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `forcelink dev` may take to answer `/healthz`.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A free loopback port (free when asked: bind it soon).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

/// `bin` with a cleared environment: `PATH`, `RUST_LOG=warn`, then `vars`.
pub fn command<K, V>(bin: &Path, vars: impl IntoIterator<Item = (K, V)>) -> Command
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut cmd = Command::new(bin);
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("RUST_LOG", "warn").envs(vars);
    cmd
}

/// A running `forcelink dev`.
pub struct DevServer {
    child: Child,
    port: u16,
}

impl DevServer {
    /// Runs `bin dev --port PORT --sim-port 0 FLAGS` ([`command`]'s environment, with
    /// `FORCELINK_PUBLIC_URL=http://127.0.0.1:PORT` unless `vars` set it) and waits until it
    /// answers `GET /healthz` with 200; panics if it exits or does not answer within 30 s.
    pub fn start<K, V>(bin: &Path, port: u16, vars: impl IntoIterator<Item = (K, V)>, flags: &[&str]) -> DevServer
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut cmd = command(bin, [("FORCELINK_PUBLIC_URL", format!("http://127.0.0.1:{port}"))]);
        let child = cmd
            .envs(vars)
            .args(["dev", "--port", &port.to_string(), "--sim-port", "0"])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("forcelink dev starts");
        let mut dev = DevServer { child, port };
        let started = Instant::now();
        while healthz(port).is_err() {
            if let Ok(Some(status)) = dev.child.try_wait() {
                panic!("forcelink dev exited with {status} before answering /healthz on port {port}");
            }
            assert!(started.elapsed() < READY_WITHIN, "forcelink dev did not answer /healthz on port {port} within {READY_WITHIN:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        dev
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /healthz` answered 200.
fn healthz(port: u16) -> std::io::Result<()> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    if answer.starts_with("HTTP/1.1 200") { Ok(()) } else { Err(std::io::Error::other(answer)) }
}
