//! A real Iggy server for the live tests, found through the environment.
//!
//! - `IGGY_TEST_ADDRESS=host:port` (or `iggy://[user:password@]host:port`):
//!   a server that is already running, with the credentials in
//!   `IGGY_TEST_USERNAME` / `IGGY_TEST_PASSWORD` (else those of the
//!   connection string, else `iggy`, for a development server only).
//! - `IGGY_SERVER_BIN=/path/to/iggy-server`: a server binary (Apache Iggy's
//!   `iggy-server` 0.9.0-edge.5) that the harness starts on a free loopback
//!   port, with a temporary data directory and generated root credentials,
//!   and kills when the [`IggyServer`] is dropped. Only such a server can be
//!   [stopped](IggyServer::stop) and [started](IggyServer::start) again to
//!   simulate an outage.
//!
//! With neither, a live test prints `SKIPPED <test>: <why>` and passes,
//! unless `IGGY_DLQ_REQUIRE_SERVER=1`, where it fails. Tests share a server,
//! so each one works in streams of its own ([`unique_name`]).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use iggy_dlq_runtime::iggy_client::ConnectionSettings;

/// How long a started server may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped server may take to shut down before it is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// A server the tests can talk to; see the module docs.
#[derive(Debug)]
pub struct IggyServer {
    address: String,
    username: String,
    password: String,
    managed: Option<Managed>,
}

/// A server process the harness started and owns.
#[derive(Debug)]
struct Managed {
    bin: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
}

fn skip_or_fail(test: &str, why: &str) -> Option<IggyServer> {
    if std::env::var("IGGY_DLQ_REQUIRE_SERVER").as_deref() == Ok("1") {
        panic!("{test}: {why}, and IGGY_DLQ_REQUIRE_SERVER=1");
    }
    crate::print_skip(test, why);
    None
}

impl IggyServer {
    /// The server named by the environment, started when it is a binary;
    /// `None` (after printing why the test is skipped) when there is none.
    ///
    /// # Panics
    ///
    /// When there is no server and `IGGY_DLQ_REQUIRE_SERVER=1`, or when the
    /// binary does not start.
    pub fn find(test: &str) -> Option<IggyServer> {
        if let Some(bin) = std::env::var_os("IGGY_SERVER_BIN").filter(|b| !b.is_empty()) {
            return Some(IggyServer::launch(PathBuf::from(bin)));
        }
        if let Ok(given) = std::env::var("IGGY_TEST_ADDRESS")
            && !given.is_empty()
        {
            // `host:port`, or a connection string `iggy://[user:password@]host:port`
            // as the Python tests take it; credentials in it are defaults.
            let rest = given.strip_prefix("iggy://").unwrap_or(&given);
            let (credentials, address) = match rest.rsplit_once('@') {
                Some((credentials, address)) => (credentials.split_once(':'), address),
                None => (None, rest),
            };
            let var = |name, given: Option<&str>| {
                std::env::var(name)
                    .ok()
                    .or(given.map(str::to_owned))
                    .unwrap_or_else(|| "iggy".to_owned())
            };
            return Some(IggyServer {
                address: address.to_owned(),
                username: var("IGGY_TEST_USERNAME", credentials.map(|c| c.0)),
                password: var("IGGY_TEST_PASSWORD", credentials.map(|c| c.1)),
                managed: None,
            });
        }
        skip_or_fail(
            test,
            "no Iggy server (set IGGY_TEST_ADDRESS or IGGY_SERVER_BIN)",
        )
    }

    /// Like [`find`](Self::find), for a test that stops and restarts the
    /// server: only a server started from `IGGY_SERVER_BIN` will do.
    ///
    /// # Panics
    ///
    /// As [`find`](Self::find).
    pub fn find_restartable(test: &str) -> Option<IggyServer> {
        let server = IggyServer::find(test)?;
        if server.managed.is_none() {
            return skip_or_fail(
                test,
                "stops and restarts the server, which needs IGGY_SERVER_BIN \
                 (IGGY_TEST_ADDRESS is a server this test does not own)",
            );
        }
        Some(server)
    }

    fn launch(bin: PathBuf) -> IggyServer {
        assert!(
            bin.is_file(),
            "IGGY_SERVER_BIN={} is not a file",
            bin.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("iggy-dlq-server-")
            .tempdir()
            .expect("a temporary data directory");
        let port = free_port();
        let mut server = IggyServer {
            address: format!("127.0.0.1:{port}"),
            username: "iggy-dlq-root".to_owned(),
            password: format!("pw-{:016x}{:016x}", random(), random()),
            managed: Some(Managed {
                bin,
                dir,
                child: None,
                starts: 0,
            }),
        };
        server.start();
        server
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// How the runtime reaches and logs in to this server.
    pub fn settings(&self) -> ConnectionSettings {
        ConnectionSettings {
            address: self.address.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            ..ConnectionSettings::default()
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server's log so far (a started server only), for failure messages.
    pub fn log(&self) -> String {
        self.managed
            .as_ref()
            .map(|m| std::fs::read_to_string(m.dir.path().join("server.log")).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Stops the server (SIGTERM, then SIGKILL if it does not exit in time)
    /// and waits until it is gone. Its port and data stay for [`start`](Self::start).
    ///
    /// # Panics
    ///
    /// When the server was not started by the harness.
    pub fn stop(&mut self) {
        let managed = self
            .managed
            .as_mut()
            .expect("only a server started from IGGY_SERVER_BIN can be stopped");
        let Some(mut child) = managed.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server (again) on the same port and data directory, and
    /// waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// When the server was not started by the harness, or does not come up.
    pub fn start(&mut self) {
        let address = self.address.clone();
        let (username, password) = (self.username.clone(), self.password.clone());
        let managed = self
            .managed
            .as_mut()
            .expect("only a server started from IGGY_SERVER_BIN can be started");
        if managed.child.is_some() {
            return;
        }
        let dir = managed.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("the server log file");
        managed.starts += 1;
        let child = Command::new(&managed.bin)
            .current_dir(dir)
            .env("IGGY_SYSTEM_PATH", dir.join("data"))
            .env("IGGY_TCP_ADDRESS", &address)
            .env("IGGY_HTTP_ENABLED", "false")
            .env("IGGY_QUIC_ENABLED", "false")
            .env("IGGY_WEBSOCKET_ENABLED", "false")
            .env("IGGY_ROOT_USERNAME", &username)
            .env("IGGY_ROOT_PASSWORD", &password)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the server log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", managed.bin.display()));
        managed.child = Some(child);
        self.wait_until_accepting();
    }

    fn wait_until_accepting(&mut self) {
        let address: SocketAddr = self.address.parse().expect("a loopback address");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            let exited = self
                .managed
                .as_mut()
                .and_then(|m| m.child.as_mut())
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "iggy-server exited with {status} before accepting connections:\n{}",
                    tail(&self.log())
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "iggy-server did not accept connections on {} within {STARTUP_TIMEOUT:?}:\n{}",
                    self.address,
                    tail(&self.log())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The data directory of a started server.
    pub fn data_dir(&self) -> Option<&Path> {
        self.managed.as_ref().map(|m| m.dir.path())
    }
}

impl Drop for IggyServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.managed.as_mut().and_then(|m| m.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn random() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A stream (or topic, or group) name no other test or earlier run uses:
/// `prefix-<pid>-<counter>-<random>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        random() as u32
    )
}
