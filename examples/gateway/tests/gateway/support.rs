//! Starting the example binaries, and talking to them.

#![allow(dead_code)] // each test file uses a different part

use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// A binary of this package, by its short name (`gateway`, `echo`):
/// cargo builds them for integration tests and says where.
pub fn example(name: &str) -> PathBuf {
    let path = match name {
        "gateway" => env!("CARGO_BIN_EXE_tower-sticky-gateway"),
        "echo" => env!("CARGO_BIN_EXE_tower-sticky-echo"),
        "loadgen" => env!("CARGO_BIN_EXE_tower-sticky-loadgen"),
        other => panic!("no binary called {other}"),
    };
    PathBuf::from(path)
}

/// A scratch file with `contents`, unique per call.
pub fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "gateway-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    path
}

/// A running example process, killed when dropped.
pub struct Proc {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The admin URL, if `--admin` was given.
    pub admin: Option<String>,
    /// Where its stderr (logs) goes.
    pub log: PathBuf,
    /// The start-up lines it printed before its address.
    pub banner: Vec<String>,
}

impl Proc {
    /// Starts `bin` with `args` and waits (at most 30 s) for its
    /// `listening on http://…` line.
    pub fn start(bin: &str, args: &[&str]) -> Proc {
        Proc::start_program(&example(bin), args)
    }

    /// [`Proc::start`] for any program (a path, or a name on the `PATH`).
    fn start_program(program: &Path, args: &[&str]) -> Proc {
        let bin = program.file_name().map_or_else(
            || program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let log = temp_file(&format!("{bin}.log"), b"");
        let mut child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the start-up lines, then keeps draining so the child never
        // blocks on a full pipe; ends when the child's stdout closes.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut admin = None;
        let mut banner = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{bin} {args:?} did not print its address; stderr:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            };
            if let Some(a) = line.strip_prefix("admin listening on ") {
                admin = Some(a.to_owned());
            } else if let Some(url) = line.strip_prefix("listening on ") {
                // `https://` with `--tls-cert`.
                let addr = url.split_once("://").map_or(url, |(_, a)| a).to_owned();
                return Proc {
                    child,
                    url: url.to_owned(),
                    addr,
                    admin,
                    log,
                    banner,
                };
            }
            banner.push(line);
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it now and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (at most `limit`) for it to exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.signal("TERM");
        self.wait_exit(limit)
    }

    /// Sends it a signal (`TERM`, `HUP`, …) without waiting.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits (at most `limit`, polling) for it to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Its log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the gateway on an ephemeral port with `args`.
pub fn gateway(args: &[&str]) -> Proc {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    Proc::start("gateway", &all)
}

/// Starts a standalone echo backend called `pod`.
pub fn echo(pod: &str) -> Proc {
    Proc::start("echo", &["--listen", "127.0.0.1:0", "--pod", pod])
}

/// Runs the gateway expecting it to refuse to start; returns its stderr.
pub fn gateway_fails(args: &[&str]) -> String {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    gateway_fails_exactly(&all)
}

/// [`gateway_fails`] with exactly `all` as arguments (no `--listen` added).
pub fn gateway_fails_exactly(all: &[&str]) -> String {
    let mut child = Command::new(example("gateway"))
        .args(all)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gateway");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut s) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut s, &mut err);
            }
            assert!(!status.success(), "gateway {all:?} started; stderr: {err}");
            return err;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gateway {all:?} kept running instead of refusing to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a shell snippet with bash (at most 60 s); returns its stdout.
pub fn bash(script: &str) -> String {
    let out = Command::new("timeout")
        .args(["60", "bash", "-c", script])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "script failed ({:?}):\n{script}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The seed's lines with its `localhost:8888` pointed at `port`.
pub fn seed_lines(script: &str, port: u16) -> String {
    script.replace("localhost:8888", &format!("localhost:{port}"))
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    /// The `pod` field of the echo JSON.
    pub fn pod(&self) -> String {
        self.json_field("pod")
    }

    /// A top-level string field of the echo JSON.
    pub fn json_field(&self, name: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not echo JSON ({e}): {:?}", self.body));
        v[name].as_str().unwrap_or_default().to_owned()
    }

    /// The request headers the backend saw (echo JSON), first value.
    pub fn seen_header(&self, name: &str) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        v["headers"][name][0].as_str().map(str::to_owned)
    }

    /// The `Set-Cookie` header, if any.
    pub fn set_cookie(&self) -> Option<String> {
        self.header("set-cookie")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// `name=value` of the `Set-Cookie`, for a `Cookie` header.
    pub fn cookie_pair(&self) -> Option<String> {
        self.set_cookie()
            .and_then(|c| c.split(';').next().map(str::to_owned))
    }
}

/// A pooling HTTP/1.1 client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// GET `url` with extra headers.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", url, headers, Bytes::new()).await
    }

    /// Any request, at most 20 s.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).expect("request");
        let resp = tokio::time::timeout(Duration::from_secs(20), self.client.request(req))
            .await
            .expect("response in time")
            .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// An empty body, for clients that want one.
pub fn empty() -> Empty<Bytes> {
    Empty::new()
}

/// The seed's cookie route with other timeouts, names and paths.
pub fn cookie_route(name: &str, persistence: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
spec:
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: /
      backendRefs:
        - name: backend
          port: 3000
      sessionPersistence:
{persistence}
"
    )
}

// ---- Routes ----

/// The embedded default route (the seed's cookie route) as a file, with
/// `absoluteTimeout: 10s` replaced by `absolute_timeout` (tests on a slow
/// machine may outlive 10 s); returns its path.
pub fn seed_route(absolute_timeout: &str) -> String {
    let yaml = include_str!("../../src/config/default-route.yaml").replace(
        "absoluteTimeout: 10s",
        &format!("absoluteTimeout: {absolute_timeout}"),
    );
    temp_file("seed-route.yaml", yaml.as_bytes())
        .to_str()
        .expect("utf-8")
        .to_owned()
}

/// A gateway on the seed's route (`absoluteTimeout: 1h`) over `backend`
/// (a `--backend` value), plus `extra` flags.
pub fn seed_gateway(backend: &str, extra: &[&str]) -> Proc {
    let route = seed_route("1h");
    let mut args = vec!["--route", route.as_str(), "--backend", backend];
    args.extend_from_slice(extra);
    gateway(&args)
}

/// Starts the gateway serving the routes `yaml` (written to a scratch
/// file), with `args` after `--route`.
pub fn gateway_with_routes(yaml: &str, args: &[&str]) -> Proc {
    let file = temp_file("routes.yaml", yaml.as_bytes());
    let mut all = vec!["--route", file.to_str().expect("utf-8")];
    all.extend_from_slice(args);
    gateway(&all)
}

// ---- Echo backends and their sessions ----

/// `n` echo processes `echo-0`… and the `--backend` flag naming them.
pub fn echoes(n: usize) -> (Vec<Proc>, String) {
    let procs: Vec<Proc> = (0..n).map(|i| echo(&format!("echo-{i}"))).collect();
    let flag = format!(
        "backend={}",
        procs
            .iter()
            .map(|p| p.addr.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    (procs, flag)
}

/// A session: its cookie and the pod it is on.
#[derive(Clone, Debug)]
pub struct Session {
    pub cookie: String,
    pub pod: String,
}

/// Opens `n` sessions with `GET /get`.
pub async fn open(http: &Http, gw: &Proc, n: usize) -> Vec<Session> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let r = http.get(&format!("{}/get", gw.url), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        out.push(Session {
            cookie: r.cookie_pair().expect("a new session has a cookie"),
            pod: r.pod(),
        });
    }
    out
}

/// New sessions until each of `pods` pods has one and there are at least
/// two per pod (at most 40).
pub async fn sessions_on_every_pod(http: &Http, gw: &Proc, pods: usize) -> Vec<Session> {
    let mut sessions: Vec<Session> = Vec::new();
    for _ in 0..40 {
        sessions.extend(open(http, gw, 1).await);
        let mut seen: Vec<&str> = sessions.iter().map(|s| s.pod.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() == pods && sessions.len() >= 2 * pods {
            break;
        }
    }
    sessions
}

/// One request of a session.
pub async fn visit(http: &Http, gw: &Proc, s: &Session) -> Resp {
    http.get(&format!("{}/get", gw.url), &[("cookie", &s.cookie)])
        .await
}

/// `r`, the answer to session `s` after pod `gone` left: a session of
/// `gone` moved with a new cookie, any other stayed without one.
pub fn assert_moved_only_from(r: &Resp, s: &Session, gone: &str) {
    assert_eq!(r.status, 200, "{}", r.body);
    if s.pod == gone {
        assert_ne!(r.pod(), gone);
        assert!(
            r.set_cookie().is_some(),
            "a moved session gets a new cookie"
        );
    } else {
        assert_eq!(r.pod(), s.pod, "only {gone}'s sessions move");
        assert_eq!(r.set_cookie(), None);
    }
}

// ---- Waiting for something to hold ----

/// Runs `check` every 20 ms until it gives `Some`, for at most `limit`;
/// panics with `what` when the time is up. Replaces a copied deadline loop:
/// tests wait for a condition, never for a guessed time.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(done) = check().await {
            return done;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- The admin API ----

/// The value of the `/metrics` series `series` (name and labels, exactly as
/// rendered), if the page has it.
pub async fn metric(http: &Http, gw: &Proc, series: &str) -> Option<f64> {
    let admin = gw.admin.as_deref().expect("--admin");
    let page = http.get(&format!("{admin}/metrics"), &[]).await.body;
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// How many requests of `scope` had session outcome `outcome`, by
/// `/metrics` (`tower_sticky_requests_total`).
pub async fn outcomes(http: &Http, gw: &Proc, scope: &str, outcome: &str) -> f64 {
    let series = format!("tower_sticky_requests_total{{scope=\"{scope}\",outcome=\"{outcome}\"}}");
    metric(http, gw, &series).await.unwrap_or(0.0)
}

/// Polls `GET {admin}{path}` (at most 20 s) until `done` holds of the
/// answer, and returns it.
pub async fn poll_admin(
    http: &Http,
    gw: &Proc,
    path: &str,
    what: &str,
    done: impl Fn(&Resp) -> bool,
) -> Resp {
    let admin = gw.admin.as_deref().expect("--admin");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = http.get(&format!("{admin}{path}"), &[]).await;
        if done(&r) {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {path} is {} {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET /backends`, parsed.
pub async fn backends(http: &Http, gw: &Proc) -> Vec<serde_json::Value> {
    let admin = gw.admin.as_ref().expect("--admin");
    let r = http.get(&format!("{admin}/backends"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str::<Vec<serde_json::Value>>(&r.body).expect("JSON array")
}

/// The state of `endpoint` in `/backends`, if listed.
pub fn state_of(list: &[serde_json::Value], endpoint: &str) -> Option<String> {
    list.iter()
        .find(|b| b["endpoint"] == endpoint)
        .map(|b| b["state"].as_str().unwrap_or_default().to_owned())
}

/// Polls `/backends` (at most 20 s) until `done` holds.
pub async fn until_backends(
    http: &Http,
    gw: &Proc,
    what: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) {
    poll_admin(http, gw, "/backends", what, |r| {
        serde_json::from_str::<Vec<serde_json::Value>>(&r.body).is_ok_and(|l| done(&l))
    })
    .await;
}

/// Opens a connection to `addr` and asks for `Upgrade: echo` (the echo
/// backends' tunnel) with `extra` header lines; returns the connection and
/// the response head, lowercased.
pub fn upgrade_echo(addr: &str, extra: &str) -> (std::net::TcpStream, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n{extra}\r\n"
    )
    .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Bounded by the length and the read timeout.
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        assert_eq!(s.read(&mut byte).expect("read head"), 1, "{head:?}");
        head.push(byte[0]);
    }
    (s, String::from_utf8_lossy(&head).to_ascii_lowercase())
}

// ---- The control plane (issue 19) ----

impl Proc {
    /// Starts the gateway as [`gateway`] does, but through `sh -c` with
    /// `setup` run first (`ulimit -n 256`), so that the limit holds for the
    /// gateway itself.
    pub fn gateway_after(setup: &str, args: &[&str]) -> Proc {
        let mut script = format!("{setup}; exec \"$0\" --listen 127.0.0.1:0");
        for i in 1..=args.len() {
            script.push_str(&format!(" \"${{{i}}}\""));
        }
        let gateway = example("gateway");
        let mut all = vec!["-c", script.as_str(), gateway.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        Proc::start_program(Path::new("sh"), &all)
    }
}

/// Sends `raw` on a new connection to `addr` and reads until the server
/// closes it (at most 20 s); returns what came back.
pub fn raw_exchange(addr: &str, raw: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(raw).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}
