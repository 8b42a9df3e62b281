//! A sticky-session-aware HTTP load generator.
//!
//! `cargo run --release --bin tower-sticky-loadgen -- http://127.0.0.1:8888/get --clients 64 --connections 16 --duration 10`
//!
//! N simulated clients (sessions), each with its own jar: the cookie named by
//! `--cookie` (default `Session-A`), or the request/response header named by
//! `--header`. The clients are served by C connections from one shared queue:
//! a connection takes the client nearest the head that it did not serve last,
//! sends its request, and puts it back at the tail, so a client's successive
//! requests travel over different
//! connections (reported as "connection switches"). Connection reuse therefore
//! cannot fake stickiness: only the session value can.
//!
//! A **misroute** is a response from a pod other than the one the client's
//! session is pinned to, on a response that does not carry a new session
//! value (a new cookie is a legitimate re-pin: expiry, a backend that went
//! down). The pod is read from an `x-pod` or `x-echo-backend` response
//! header, else from the `"pod": "..."` line of the echo server's JSON body.
//!
//! `--fresh` forgets every session after its response, so each request
//! starts a new one (memory against session count).
//!
//! For soak runs (`benches/soak.sh`): `--via HOST:PORT` (repeatable) spreads
//! the connections over several gateway replicas (a failed connect moves on
//! to the next one), `--rate` caps the requests per second, and
//! `--events FILE` writes one line per failure, re-pin and misroute (the
//! time, the replica, what happened) so faults can be matched with their
//! effects. Failures are counted by cause: connect, timeout, connection
//! closed or broken before the response, and each non-2xx status.
//!
//! The run is bounded by `--duration` and/or `--requests`, and never lasts
//! longer than `--max-duration` (300 s by default). `--json` prints one JSON
//! object for scripts; `--smoke` is a short CI run that fails (exit 1) on any
//! misroute, error, or missing session.

use clap::Parser;
use hdrhistogram::Histogram;
use http::header::{COOKIE, HOST, SET_COOKIE};
use http::{HeaderName, HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(about = "Sticky-session-aware load generator: throughput, latency, misroutes")]
struct Args {
    /// Target URL (plain http), e.g. `http://127.0.0.1:8888/get`.
    url: String,
    /// Simulated clients, each with its own session jar.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Connections the clients are spread over (at most `--clients`).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Run for this many seconds (default 10 when `--requests` is not given).
    #[arg(long)]
    duration: Option<f64>,
    /// Stop after this many requests in total.
    #[arg(long)]
    requests: Option<u64>,
    /// Hard upper bound on the run, whatever else is asked.
    #[arg(long, default_value_t = 300.0)]
    max_duration: f64,
    /// The session cookie's name.
    #[arg(long, default_value = "Session-A")]
    cookie: String,
    /// Carry the session in this request/response header instead of a cookie.
    #[arg(long)]
    header: Option<String>,
    /// Runtime worker threads (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Per-request timeout in seconds (counted as a transport error).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Forget the session after every response, so that every request
    /// starts a new one (for measuring memory against session count).
    #[arg(long)]
    fresh: bool,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
    /// CI smoke run: 16 clients over 4 connections, 2,000 requests unless
    /// told otherwise; exit 1 on any misroute, error or missing session.
    #[arg(long)]
    smoke: bool,
    /// Connect to this address instead of the URL's (repeatable): the
    /// connections are spread over them in turn, and a connection that
    /// cannot connect or loses its connection tries the next one.
    #[arg(long = "via", value_name = "HOST:PORT")]
    via: Vec<String>,
    /// Close each connection after this many requests and open the next
    /// one to the next `--via` address, as clients behind an L4 balancer
    /// come and go.
    #[arg(long, value_name = "N")]
    reconnect_after: Option<u64>,
    /// At most this many requests per second in total.
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
    /// Write one line per failure, re-pin and misroute to FILE:
    /// `<unix ms> <replica> <what> [detail]`.
    #[arg(long, value_name = "FILE")]
    events: Option<std::path::PathBuf>,
}

/// Where a client keeps its session value.
#[derive(Clone, Debug)]
enum Carrier {
    Cookie(String),
    Header(HeaderName),
}

/// One simulated client.
#[derive(Debug, Default)]
struct Client {
    /// The session value, if it has one.
    session: Option<HeaderValue>,
    /// The pod its session is pinned to (known from the response that set
    /// the session).
    pinned: Option<Vec<u8>>,
    /// The connection that carried its previous request.
    last_conn: Option<usize>,
    requests: u64,
}

/// What one connection counted; merged at the end.
#[derive(Debug)]
struct Stats {
    latency_us: Histogram<u64>,
    ok: u64,
    non_2xx: u64,
    transport_errors: u64,
    /// Failures by cause: `connect`, `timeout`, `closed`, `status 502`...
    causes: BTreeMap<String, u64>,
    sessions_created: u64,
    reissued: u64,
    repinned: u64,
    misroutes: u64,
    no_session: u64,
    no_pod: u64,
    conn_switches: u64,
    conn_repeats: u64,
    connects: u64,
    /// Pods that sessions were pinned to.
    pods: HashSet<Vec<u8>>,
}

impl Stats {
    fn new() -> Self {
        Stats {
            latency_us: Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds"),
            ok: 0,
            non_2xx: 0,
            transport_errors: 0,
            causes: BTreeMap::new(),
            sessions_created: 0,
            reissued: 0,
            repinned: 0,
            misroutes: 0,
            no_session: 0,
            no_pod: 0,
            conn_switches: 0,
            conn_repeats: 0,
            connects: 0,
            pods: HashSet::new(),
        }
    }

    fn merge(&mut self, o: &Stats) {
        self.latency_us.add(&o.latency_us).expect("same bounds");
        self.ok += o.ok;
        self.non_2xx += o.non_2xx;
        self.transport_errors += o.transport_errors;
        for (cause, n) in &o.causes {
            *self.causes.entry(cause.clone()).or_default() += n;
        }
        self.sessions_created += o.sessions_created;
        self.reissued += o.reissued;
        self.repinned += o.repinned;
        self.misroutes += o.misroutes;
        self.no_session += o.no_session;
        self.no_pod += o.no_pod;
        self.conn_switches += o.conn_switches;
        self.conn_repeats += o.conn_repeats;
        self.connects += o.connects;
        self.pods.extend(o.pods.iter().cloned());
    }

    fn responses(&self) -> u64 {
        self.ok + self.non_2xx
    }
}

/// Everything the connections share.
struct Shared {
    /// Where connections go (the URL's address, or the `--via` ones).
    addrs: Vec<String>,
    authority: HeaderValue,
    path: String,
    carrier: Carrier,
    fresh: bool,
    clients: Mutex<VecDeque<Client>>,
    /// Requests started so far, against `limit`.
    started: AtomicU64,
    limit: u64,
    deadline: Instant,
    timeout: Duration,
    /// `--reconnect-after`.
    reconnect_after: Option<u64>,
    /// Time between two requests of one connection (`--rate`).
    pace: Option<Duration>,
    events: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
}

impl Shared {
    /// Notes an event for `--events`: `<unix ms> <replica> <what>`.
    fn event(&self, addr: &str, what: &str) {
        let Some(events) = &self.events else {
            return;
        };
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut w = events.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(w, "{ms} {addr} {what}");
    }
}

/// Counts a failed request by cause (and notes it for `--events`).
fn failed(shared: &Shared, stats: &mut Stats, addr: &str, cause: &str) {
    *stats.causes.entry(cause.to_owned()).or_default() += 1;
    shared.event(addr, &format!("failed {cause}"));
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.smoke {
        args.clients = args.clients.min(16);
        args.connections = args.connections.min(4);
        if args.requests.is_none() && args.duration.is_none() {
            args.requests = Some(2_000);
        }
        args.max_duration = args.max_duration.min(60.0);
    }
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, String> {
    let uri: Uri = args.url.parse().map_err(|e| format!("bad URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// URLs are supported".into());
    }
    let authority = uri.authority().ok_or("the URL needs a host")?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let addrs = if args.via.is_empty() {
        vec![format!("{}:{port}", authority.host())]
    } else {
        args.via.clone()
    };
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err("--rate must be positive".into());
    }
    let events = match &args.events {
        Some(path) => Some(Mutex::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
        ))),
        None => None,
    };
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let carrier = match &args.header {
        Some(h) => Carrier::Header(
            HeaderName::from_bytes(h.as_bytes()).map_err(|e| format!("--header: {e}"))?,
        ),
        None => Carrier::Cookie(args.cookie.clone()),
    };
    if args.clients == 0 || args.connections == 0 {
        return Err("--clients and --connections must be at least 1".into());
    }
    // More connections than clients would leave some connections idle and
    // let the others pin clients to themselves.
    let connections = args.connections.min(args.clients);
    // `is_finite` also rejects NaN, which no comparison would.
    let positive = |d: f64| d.is_finite() && d > 0.0;
    if args.duration.is_some_and(|d| !positive(d)) || !positive(args.max_duration) {
        return Err("durations must be positive".into());
    }
    let duration = match (args.duration, args.requests) {
        (Some(d), _) => d.min(args.max_duration),
        (None, Some(_)) => args.max_duration,
        (None, None) => 10.0_f64.min(args.max_duration),
    };
    let start = Instant::now();
    let shared = Arc::new(Shared {
        addrs,
        authority: HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?,
        path,
        carrier,
        fresh: args.fresh,
        clients: Mutex::new((0..args.clients).map(|_| Client::default()).collect()),
        started: AtomicU64::new(0),
        limit: args.requests.unwrap_or(u64::MAX),
        deadline: start + Duration::from_secs_f64(duration),
        timeout: Duration::from_secs_f64(args.timeout.max(0.001)),
        reconnect_after: args.reconnect_after,
        pace: args
            .rate
            .map(|r| Duration::from_secs_f64(connections as f64 / r)),
        events,
    });

    let tasks: Vec<_> = (0..connections)
        .map(|id| tokio::spawn(connection(id, Arc::clone(&shared))))
        .collect();
    let mut total = Stats::new();
    for t in tasks {
        let s = t
            .await
            .map_err(|e| format!("a connection task failed: {e}"))?;
        total.merge(&s);
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(events) = &shared.events {
        events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
            .map_err(|e| format!("--events: {e}"))?;
    }

    let clients = shared
        .clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let idle_clients = clients.iter().filter(|c| c.requests == 0).count();
    let report = Report {
        args: &args,
        connections,
        elapsed,
        total: &total,
        idle_clients,
    };
    if args.json {
        println!("{}", report.json());
    } else {
        report.print();
    }
    if args.smoke {
        let mut failures = Vec::new();
        if total.responses() == 0 {
            failures.push("no response at all".to_owned());
        }
        for (what, n) in [
            ("misroutes", total.misroutes),
            ("transport errors", total.transport_errors),
            ("non-2xx responses", total.non_2xx),
            ("responses without a session", total.no_session),
            ("responses without a pod", total.no_pod),
        ] {
            if n > 0 {
                failures.push(format!("{n} {what}"));
            }
        }
        if total.sessions_created < args.clients as u64 {
            failures.push(format!(
                "only {} sessions created for {} clients",
                total.sessions_created, args.clients
            ));
        }
        if connections > 1 && total.conn_switches == 0 {
            failures.push("clients never changed connection".to_owned());
        }
        if !failures.is_empty() {
            eprintln!("loadgen smoke: FAILED: {}", failures.join(", "));
            return Ok(ExitCode::FAILURE);
        }
        eprintln!("loadgen smoke: ok");
    }
    Ok(ExitCode::SUCCESS)
}

/// The waiting client nearest the head that connection `id` did not serve
/// last (the head if there is none). With a plain FIFO, C connections whose
/// round trips take the same time hand client `k` back to connection
/// `k mod C` for ever, and "successive requests travel over different
/// connections" held only by the timing jitter of the machine (the CI smoke
/// run saw 0 switches in 2,000 requests once): skipping the client this
/// connection just served makes every client move.
fn take_client(shared: &Shared, id: usize) -> Option<Client> {
    let mut queue = shared
        .clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let at = queue
        .iter()
        .position(|c| c.last_conn != Some(id))
        .unwrap_or(0);
    queue.remove(at)
}

/// One connection: serves clients from the shared queue until the deadline
/// or the request budget is reached; reconnects after a transport error.
async fn connection(id: usize, shared: Arc<Shared>) -> Stats {
    let mut stats = Stats::new();
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    // Which of `shared.addrs` this connection uses; the next one after a
    // failure.
    let mut target = id % shared.addrs.len();
    let mut next_at = Instant::now();
    // Requests on the current connection.
    let mut on_this = 0u64;
    while Instant::now() < shared.deadline {
        let addr = shared.addrs[target].as_str();
        let mut s = match sender.take() {
            Some(s) => s,
            None => match connect(&shared, addr).await {
                Ok(s) => {
                    stats.connects += 1;
                    on_this = 0;
                    s
                }
                Err(_) => {
                    stats.transport_errors += 1;
                    failed(&shared, &mut stats, addr, "connect");
                    target = (target + 1) % shared.addrs.len();
                    // Back off a little; the loop stays bounded by the deadline.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        if let Some(pace) = shared.pace {
            tokio::time::sleep_until(next_at.into()).await;
            next_at = next_at.max(Instant::now()) + pace;
        }
        let Some(mut client) = take_client(&shared, id) else {
            // Every client is in flight on another connection.
            sender = Some(s);
            tokio::task::yield_now().await;
            continue;
        };
        if shared.started.fetch_add(1, Ordering::Relaxed) >= shared.limit {
            put_back(&shared, client);
            break;
        }
        match client.last_conn {
            Some(c) if c == id => stats.conn_repeats += 1,
            Some(_) => stats.conn_switches += 1,
            None => {}
        }
        client.last_conn = Some(id);
        client.requests += 1;

        let req = request(&shared, &client);
        let began = Instant::now();
        let result = tokio::time::timeout(shared.timeout, async {
            s.ready().await?;
            let res = s.send_request(req).await?;
            let (parts, body) = res.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>((parts, body))
        })
        .await;
        match result {
            Ok(Ok((parts, body))) => {
                let us = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                stats.latency_us.saturating_record(us.max(1));
                judge(&shared, addr, &mut client, &parts, &body, &mut stats);
                if shared.fresh {
                    client.session = None;
                    client.pinned = None;
                }
                on_this += 1;
                // `Connection: close` (a draining gateway): no further
                // request on this connection (RFC 9112 §9.6), and the next
                // one goes to the other address, as after a failure.
                let closing = parts
                    .headers
                    .get_all(http::header::CONNECTION)
                    .iter()
                    .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                if closing || shared.reconnect_after.is_some_and(|n| on_this >= n) {
                    // Dropping the sender closes the connection.
                    target = (target + 1) % shared.addrs.len();
                } else {
                    sender = Some(s);
                }
            }
            // A failed or timed-out exchange leaves the connection unusable.
            Ok(Err(e)) => {
                stats.transport_errors += 1;
                failed(&shared, &mut stats, addr, error_cause(&e));
                target = (target + 1) % shared.addrs.len();
            }
            Err(_) => {
                stats.transport_errors += 1;
                failed(&shared, &mut stats, addr, "timeout");
                target = (target + 1) % shared.addrs.len();
            }
        }
        put_back(&shared, client);
    }
    stats
}

fn put_back(shared: &Shared, client: Client) {
    shared
        .clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push_back(client);
}

/// What went wrong with an exchange, in a word for the report.
fn error_cause(e: &hyper::Error) -> &'static str {
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        // The connection ended before the whole response: the peer closed
        // it (a replica that died or drained) or reset it.
        "closed"
    } else if e.is_parse() {
        "bad response"
    } else {
        "broken"
    }
}

async fn connect(shared: &Shared, addr: &str) -> Result<SendRequest<Empty<Bytes>>, String> {
    let stream = tokio::time::timeout(shared.timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // Ends with the connection; its error, if any, shows up on the
        // next request.
        let _ = conn.await;
    });
    Ok(sender)
}

fn request(shared: &Shared, client: &Client) -> Request<Empty<Bytes>> {
    let mut req = Request::new(Empty::new());
    *req.uri_mut() = shared.path.parse().expect("path parsed once already");
    let h = req.headers_mut();
    h.insert(HOST, shared.authority.clone());
    if let Some(v) = &client.session {
        match &shared.carrier {
            Carrier::Cookie(name) => {
                let mut c = Vec::with_capacity(name.len() + 1 + v.len());
                c.extend_from_slice(name.as_bytes());
                c.push(b'=');
                c.extend_from_slice(v.as_bytes());
                h.insert(
                    COOKIE,
                    HeaderValue::from_bytes(&c).expect("parts are header-safe"),
                );
            }
            Carrier::Header(name) => {
                h.insert(name.clone(), v.clone());
            }
        }
    }
    req
}

/// Updates the client's jar from a response and counts what it says.
fn judge(
    shared: &Shared,
    addr: &str,
    client: &mut Client,
    parts: &http::response::Parts,
    body: &[u8],
    stats: &mut Stats,
) {
    if !parts.status.is_success() {
        stats.non_2xx += 1;
        failed(
            shared,
            stats,
            addr,
            &format!("status-{}", parts.status.as_u16()),
        );
        return;
    }
    stats.ok += 1;
    let fresh = new_session_value(&shared.carrier, &parts.headers);
    let pod = pod_of(&parts.headers, body);
    if pod.is_none() {
        stats.no_pod += 1;
    }
    let had_session = client.session.is_some();
    match fresh {
        Some(Some(value)) => {
            if had_session {
                stats.reissued += 1;
                if pod.is_some() && pod != client.pinned.as_deref() {
                    stats.repinned += 1;
                    shared.event(
                        addr,
                        &format!(
                            "repinned {} {}",
                            String::from_utf8_lossy(client.pinned.as_deref().unwrap_or(b"-")),
                            String::from_utf8_lossy(pod.unwrap_or_default())
                        ),
                    );
                }
            } else {
                stats.sessions_created += 1;
            }
            client.session = Some(value);
            client.pinned = pod.map(<[u8]>::to_vec);
            if let Some(pod) = pod
                && !stats.pods.contains(pod)
            {
                stats.pods.insert(pod.to_vec());
            }
        }
        // The server deleted the session.
        Some(None) => {
            client.session = None;
            client.pinned = None;
        }
        None if !had_session => stats.no_session += 1,
        None => {
            if let (Some(pod), Some(pinned)) = (pod, client.pinned.as_deref())
                && pod != pinned
            {
                stats.misroutes += 1;
                shared.event(
                    addr,
                    &format!(
                        "misroute {} {}",
                        String::from_utf8_lossy(pinned),
                        String::from_utf8_lossy(pod)
                    ),
                );
            }
        }
    }
}

/// `Some(Some(v))`: a new session value; `Some(None)`: the session was
/// deleted (`Max-Age=0` or an empty value); `None`: nothing said.
fn new_session_value(carrier: &Carrier, headers: &http::HeaderMap) -> Option<Option<HeaderValue>> {
    match carrier {
        Carrier::Header(name) => headers.get(name).map(|v| Some(v.clone())),
        Carrier::Cookie(name) => {
            let mut found = None;
            for sc in headers.get_all(SET_COOKIE) {
                let bytes = sc.as_bytes();
                let mut attrs = bytes.split(|&b| b == b';');
                let pair = attrs.next().unwrap_or_default();
                let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                    continue;
                };
                if pair[..eq].trim_ascii() != name.as_bytes() {
                    continue;
                }
                let value = pair[eq + 1..].trim_ascii();
                let deleted = value.is_empty()
                    || attrs.any(|a| a.trim_ascii().eq_ignore_ascii_case(b"max-age=0"));
                // The last Set-Cookie for the name wins, as in a browser.
                found = Some(if deleted {
                    None
                } else {
                    HeaderValue::from_bytes(value).ok()
                });
            }
            found
        }
    }
}

/// The pod that answered: an `x-pod` or `x-echo-backend` header, else the
/// echo JSON's `"pod": "..."` line (the last occurrence: it is the last
/// field).
fn pod_of<'a>(headers: &'a http::HeaderMap, body: &'a [u8]) -> Option<&'a [u8]> {
    for name in ["x-pod", "x-echo-backend"] {
        if let Some(v) = headers.get(name) {
            return Some(v.as_bytes());
        }
    }
    const KEY: &[u8] = b"\"pod\":";
    let at = body.windows(KEY.len()).rposition(|w| w == KEY)?;
    let rest = &body[at + KEY.len()..];
    let open = rest.iter().position(|&b| b == b'"')?;
    let rest = &rest[open + 1..];
    let close = rest.iter().position(|&b| b == b'"')?;
    Some(&rest[..close])
}

struct Report<'a> {
    args: &'a Args,
    connections: usize,
    elapsed: f64,
    total: &'a Stats,
    idle_clients: usize,
}

impl Report<'_> {
    fn quantile_ms(&self, q: f64) -> f64 {
        if self.total.latency_us.is_empty() {
            return 0.0;
        }
        self.total.latency_us.value_at_quantile(q) as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.total.latency_us.max() as f64 / 1000.0
    }

    fn rps(&self) -> f64 {
        self.total.responses() as f64 / self.elapsed.max(1e-9)
    }

    fn carrier(&self) -> String {
        match &self.args.header {
            Some(h) => format!("header {h}"),
            None => format!("cookie {}", self.args.cookie),
        }
    }

    fn print(&self) {
        let t = self.total;
        println!(
            "{} clients over {} connections, {} for {:.2} s, target {}",
            self.args.clients,
            self.connections,
            self.carrier(),
            self.elapsed,
            self.args.url
        );
        println!(
            "requests      {} ({:.0} req/s), 2xx {}, non-2xx {}, transport errors {}",
            t.responses(),
            self.rps(),
            t.ok,
            t.non_2xx,
            t.transport_errors
        );
        if !t.causes.is_empty() {
            let causes: Vec<String> = t.causes.iter().map(|(c, n)| format!("{c} {n}")).collect();
            println!("failures      {}", causes.join(", "));
        }
        println!(
            "latency       p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.quantile_ms(0.50),
            self.quantile_ms(0.90),
            self.quantile_ms(0.99),
            self.max_ms()
        );
        println!(
            "sessions      created {}, re-issued {} (re-pinned {}), misroutes {}",
            t.sessions_created, t.reissued, t.repinned, t.misroutes
        );
        println!(
            "checks        no session set {}, no pod found {}, clients never served {}, sessions spread over {} pods",
            t.no_session,
            t.no_pod,
            self.idle_clients,
            t.pods.len()
        );
        println!(
            "connections   {} opened, clients switched connection on {} requests, stayed on {}",
            t.connects, t.conn_switches, t.conn_repeats
        );
    }

    fn json(&self) -> serde_json::Value {
        let t = self.total;
        serde_json::json!({
            "url": self.args.url,
            "clients": self.args.clients,
            "connections": self.connections,
            "carrier": self.carrier(),
            "elapsed_s": self.elapsed,
            "requests": t.responses(),
            "rps": self.rps(),
            "ok": t.ok,
            "non_2xx": t.non_2xx,
            "transport_errors": t.transport_errors,
            "failures": t.causes,
            "p50_ms": self.quantile_ms(0.50),
            "p90_ms": self.quantile_ms(0.90),
            "p99_ms": self.quantile_ms(0.99),
            "max_ms": self.max_ms(),
            "sessions_created": t.sessions_created,
            "reissued": t.reissued,
            "repinned": t.repinned,
            "misroutes": t.misroutes,
            "no_session": t.no_session,
            "no_pod": t.no_pod,
            "idle_clients": self.idle_clients,
            "connects": t.connects,
            "distinct_pods": t.pods.len(),
            "conn_switches": t.conn_switches,
            "conn_repeats": t.conn_repeats,
        })
    }
}
