//! A real `redis-server` on a free loopback port.
//!
//! [`RedisServer::shared`] starts one per test binary, lazily; tests isolate themselves with a
//! [`unique_prefix`](super::unique_prefix). Tests that stop, freeze or restart Redis start their
//! own with [`RedisServer::start`]. Each server runs under a tiny shell watchdog that stops it
//! when the test process exits, however it exits, so no server outlives its tests.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

/// A `redis-server` process owned by a test (or by the test binary, for the shared one).
pub struct RedisServer {
    port: u16,
    config_file: Option<PathBuf>,
    extra_args: Vec<String>,
    dir: tempfile::TempDir,
    watchdog: Mutex<Option<Child>>,
}

static SHARED: OnceLock<RedisServer> = OnceLock::new();

/// Runs `redis-server "$@"` (after the parent pid) and stops it when the parent process is gone.
const WATCHDOG: &str = r#"
parent=$1; shift
redis-server "$@" &
r=$!
trap 'kill -CONT $r 2>/dev/null; kill $r 2>/dev/null; wait $r; exit 0' TERM INT
while kill -0 "$parent" 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 0.2; done
kill -CONT $r 2>/dev/null; kill $r 2>/dev/null; wait $r
"#;

impl RedisServer {
    /// The server shared by every test of this binary.
    pub fn shared() -> &'static RedisServer {
        SHARED.get_or_init(Self::start)
    }

    /// Starts a server of this test's own (stopped when dropped).
    ///
    /// Panics with an actionable message when `redis-server` is not installed: tests cannot run
    /// without it (the README's test command installs it).
    pub fn start() -> RedisServer {
        Self::start_inner(None, Vec::new())
    }

    /// Starts a server with extra `redis-server` options (e.g. `--cluster-enabled yes`).
    pub fn start_with_args(args: &[&str]) -> RedisServer {
        Self::start_inner(None, args.iter().map(|a| a.to_string()).collect())
    }

    /// Starts a server that reads `config_file` first (the test's own port, data dir and
    /// pid file still apply), to check a shipped `redis.conf`.
    pub fn start_with_config(config_file: &std::path::Path) -> RedisServer {
        Self::start_inner(Some(config_file.to_owned()), Vec::new())
    }

    fn start_inner(config_file: Option<PathBuf>, extra_args: Vec<String>) -> RedisServer {
        let dir = tempfile::tempdir().expect("create a temp dir for redis-server");
        let mut server = RedisServer { port: 0, config_file, extra_args, dir, watchdog: Mutex::new(None) };
        // Cluster nodes also listen on port + 10000 (the bus), which must exist and be free.
        let cluster = server.extra_args.iter().any(|a| a == "--cluster-enabled");
        for _ in 0..5 {
            server.port = if cluster { free_cluster_port() } else { free_port() };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on a free port after 5 attempts");
    }

    fn spawn(&self) -> bool {
        let dir = self.dir.path();
        let mut args: Vec<String> = Vec::new();
        match &self.config_file {
            // A shipped config keeps its own persistence and eviction settings.
            Some(file) => args.push(file.display().to_string()),
            None => args.extend(["--save", "", "--appendonly", "no"].map(String::from)),
        }
        args.extend([
            "--port".into(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--pidfile".into(),
            dir.join("redis.pid").display().to_string(),
            "--daemonize".into(),
            "no".into(),
            "--loglevel".into(),
            "warning".into(),
        ]);
        args.extend(self.extra_args.iter().cloned());
        let child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("redis-watchdog")
            .arg(std::process::id().to_string())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(err) => panic!("cannot run sh to start redis-server: {err}"),
        };
        *self.watchdog.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        if self.wait_for_ping(Duration::from_secs(10)) {
            return true;
        }
        if which_redis().is_none() {
            panic!(
                "redis-server is not installed: run ./scripts/test.sh (it installs it) or `apt-get install redis-server`"
            );
        }
        self.kill_watchdog();
        false
    }

    /// Waits until the server answers PING; gives up early when the server process has exited
    /// (a port taken by someone else, a bad config file).
    fn wait_for_ping(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            // Only our own server counts: another process may have taken the port in between.
            if ping(self.port)
                && self
                    .pid()
                    .is_some_and(|pid| self.command(&["INFO", "server"]).contains(&format!("process_id:{pid}\r\n")))
            {
                return true;
            }
            let exited = self
                .watchdog
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
                .is_none_or(|child| !matches!(child.try_wait(), Ok(None)));
            if exited {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (as an outage would). [`restart`](Self::restart) brings it back on the same port.
    pub fn stop(&self) {
        self.kill_watchdog();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(self.addr()).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&self) {
        self.stop();
        assert!(self.spawn(), "redis-server did not restart on port {}", self.port);
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers, as with a hung host.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Thaws a frozen server (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// Sends a raw command and returns the raw RESP reply (for assertions on server state).
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(self.addr()).expect("connect to redis-server");
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut req = format!("*{}\r\n", args.len());
        for arg in args {
            req.push_str(&format!("${}\r\n{}\r\n", arg.len(), arg));
        }
        stream.write_all(req.as_bytes()).expect("write to redis-server");
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::new();
        // Read exactly one complete RESP reply (a pause in the stream is not the end of it).
        while reply_end(&out, 0).is_none() {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The key's remaining time to live in milliseconds, as `PTTL` answers it: -2 when the key
    /// does not exist, -1 when it has no TTL.
    pub fn pttl(&self, key: &str) -> i64 {
        let reply = self.command(&["PTTL", key]);
        reply.trim().trim_start_matches(':').parse().unwrap_or_else(|_| panic!("PTTL {key}: {reply:?}"))
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn pid(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("redis.pid")).ok().map(|s| s.trim().to_owned())
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().expect("redis-server pid file");
        let status = Command::new("kill").arg(format!("-{sig}")).arg(&pid).status().expect("run kill");
        assert!(status.success(), "kill -{sig} {pid} failed");
    }

    fn kill_watchdog(&self) {
        if let Some(mut child) = self.watchdog.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill_watchdog();
    }
}

/// Where the RESP reply starting at `at` ends, or `None` while it is incomplete.
fn reply_end(buf: &[u8], at: usize) -> Option<usize> {
    let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let next = line_end + 2;
    let count = || std::str::from_utf8(&buf[at + 1..line_end]).ok()?.parse::<i64>().ok();
    match buf.get(at)? {
        b'$' => match usize::try_from(count()?) {
            Ok(len) => (buf.len() >= next + len + 2).then_some(next + len + 2),
            Err(_) => Some(next), // $-1: nil
        },
        b'*' => (0..count()?.max(0)).try_fold(next, |pos, _| reply_end(buf, pos)),
        _ => Some(next), // +simple, -error, :integer
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind an ephemeral port")
}

fn free_cluster_port() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        if port < 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair (p, p + 10000) for a cluster node");
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))) else { return false };
    stream.set_read_timeout(Some(Duration::from_millis(500))).ok();
    let mut buf = [0u8; 16];
    stream.write_all(b"PING\r\n").is_ok() && matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

fn which_redis() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join("redis-server"))
        .find(|p| p.exists())
}
