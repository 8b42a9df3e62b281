//! An HTTPRoute gateway with Gateway API session persistence, built from the
//! public parts of `tower_sticky`.
//!
//! ```text
//! cargo run --release --bin tower-sticky-gateway           # the seed's cookie route, 4 echo pods
//! cargo run --release --bin tower-sticky-gateway -- --route my-routes.yaml \
//!     --backend backend=10.0.0.7:3000,10.0.0.8:3000 --key-file /etc/gateway/key
//! ```
//!
//! * [`config`]: route files → validated `HttpRoute`s ([`tower_sticky::route`]).
//! * [`rules`]: per rule, `Backends` + `StickySessions` ([`tower_sticky::balance`],
//!   [`tower_sticky::sticky`]), signed with [`keys`] ([`tower_sticky::token`]).
//! * [`router`]: Gateway API match precedence.
//! * [`proxy`]: forwarding with hyper, [`headers`] at its boundary;
//!   [`stray_cr`] makes the seed's `awk`-extracted header values
//!   acceptable (RFC 9110 §5.5).
//! * [`conn`]: HTTP/1 or h2c per client connection, graceful drain;
//!   [`coarse`]: per-worker deadlines for the per-request timeouts.
//! * [`echo`]: in-process replicas; [`probe`]: revives backends;
//!   [`shutdown`]: signals. New sessions follow the weights with
//!   [`tower_sticky::balance::Weighted`].
//!
//! The control plane, never on the request path:
//!
//! * [`discover`]: where endpoints come from (`--backend`, `--endpoints`
//!   EndpointSlice files, `dns:` names) and the members that outlive
//!   configurations (drain, health, counters);
//! * [`reload`]: builds whole snapshots off to the side and swaps them in
//!   (SIGHUP, `POST /reload`, a changed slice file or DNS answer);
//! * [`admin`]: `/healthz`, `/readyz`, `/metrics`, `/backends`, drain,
//!   undrain, `/reload`.

pub mod admin;
pub mod cli;
mod coarse;
pub mod config;
mod conn;
pub mod discover;
pub mod echo;
pub mod headers;
pub mod keys;
pub mod probe;
pub mod proxy;
pub mod reload;
pub mod router;
pub mod rules;
pub mod shutdown;
pub mod stray_cr;

use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long in-flight requests get to finish after SIGINT/SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The gateway's `main`: parses the flags, runs until SIGINT/SIGTERM.
pub fn main() -> ExitCode {
    let args = cli::Args::parse();
    init_tracing();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let runtime = match worker_runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, threads)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One worker's runtime: single-threaded, so that a client connection, its
/// upstream connections and their pool never cross threads.
fn worker_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Logs to stderr at `info` unless `RUST_LOG` says otherwise (`warn`,
/// `gateway::access=off`, …), so stdout carries only the start-up lines.
fn init_tracing() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(filter),
        )
        .init();
}

async fn run(args: cli::Args, threads: usize) -> Result<(), String> {
    // The recorder first: the library resolves its counters against the
    // recorder installed when they are first used.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| tracing::warn!("metrics are off: {e}"))
        .ok();
    let embedded = args.routes.is_empty();
    let listen = args.listen.clone();
    let admin_addr = args.admin.clone();
    let proxy_options = proxy::Options {
        down_after: args.down_after,
        retry_buffer: args.retry_buffer,
        ..proxy::Options::default()
    }
    .limits(&args.limits);
    let limits = Arc::new(args.limits.clone());
    let connections = conn::Connections::new(limits.max_connections);
    // The slice files' watcher reads them first: a change while start-up
    // reads them is then seen as a change.
    let watcher = discover::watch::Watcher::new(args.endpoints.clone());
    let control = reload::Control::start(args, metrics).await?;

    let listeners = bind_all(&listen, threads)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listeners[0].local_addr().map_err(|e| e.to_string())?;
    let admin = match &admin_addr {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .map_err(|e| format!("cannot listen on {a} (--admin): {e}"))?,
        ),
        None => None,
    };
    banner(&control, embedded, addr).await;
    let proxy = Arc::new(proxy::Proxy::new(control.current(), proxy_options));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(admin) = admin {
        let admin_addr = admin.local_addr().map_err(|e| e.to_string())?;
        println!("admin listening on http://{admin_addr}");
        tokio::spawn(admin::serve(admin, Arc::clone(&control)));
    }
    tokio::spawn(probe::run(Arc::clone(&proxy), stop_rx.clone()));
    tokio::spawn(Arc::clone(&control).run_sighup());
    tokio::spawn(Arc::clone(&control).run_dns());
    tokio::spawn(Arc::clone(&control).run_watch(watcher, stop_rx.clone()));
    tokio::spawn(Arc::clone(&control).run_deadlines());

    // Workers 1.. get a thread and a runtime each; this thread is worker 0
    // and also keeps the admin server, the prober and the in-process echo
    // replicas (which must outlive every worker's drain).
    let mut listeners = listeners.into_iter();
    let own = listeners.next().ok_or("no listener")?;
    let mut done = Vec::new();
    for (i, listener) in listeners.enumerate() {
        let listener = listener.into_std().map_err(|e| e.to_string())?;
        let proxy = Arc::clone(&proxy);
        let (limits, connections) = (Arc::clone(&limits), Arc::clone(&connections));
        let stop = stop_rx.clone();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        done.push(done_rx);
        std::thread::Builder::new()
            .name(format!("gateway-worker-{}", i + 1))
            .spawn(move || {
                let runtime = match worker_runtime() {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("worker {}: cannot start its runtime: {e}", i + 1);
                        return;
                    }
                };
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, proxy, &limits, connections, stop).await,
                        Err(e) => tracing::error!("worker {}: {e}", i + 1),
                    }
                });
                let _ = done_tx.send(());
            })
            .map_err(|e| format!("cannot start a worker thread: {e}"))?;
    }
    println!("listening on http://{addr}");

    let shutting = Arc::clone(&control);
    tokio::spawn(async move {
        shutdown::signal().await;
        // `/readyz` says 503 from this moment, so that an L4 balancer
        // stops sending new connections while in-flight ones finish.
        shutting.shutting_down();
        let _ = stop_tx.send(true);
    });
    serve(own, proxy, &limits, connections, stop_rx).await;
    for d in done {
        // A worker drains for at most DRAIN_TIMEOUT, then reports.
        let _ = d.await;
    }
    Ok(())
}

/// `threads` listeners on the same address, with `SO_REUSEPORT`, so that the
/// kernel spreads new connections over the workers. With port 0, the first
/// picks the port and the others join it.
///
/// `SO_REUSEPORT` would also let this process join a port that another
/// gateway (same user) already listens on, silently splitting clients
/// between two processes, each with its own keys unless they share
/// `--key-file`: about half the sessions would break at random. So the port
/// is first bound once without it, which fails if anything listens there.
async fn bind_all(listen: &str, threads: usize) -> std::io::Result<Vec<TcpListener>> {
    let mut last = None;
    for addr in tokio::net::lookup_host(listen).await? {
        if addr.port() != 0
            && let Err(e) = std::net::TcpListener::bind(addr)
        {
            last = Some(e);
            continue;
        }
        match bind_reuseport(addr) {
            Ok(first) => {
                let addr = first.local_addr()?;
                let mut all = Vec::with_capacity(threads);
                all.push(first);
                for _ in 1..threads {
                    all.push(bind_reuseport(addr)?);
                }
                return Ok(all);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

fn bind_reuseport(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts clients until `stop` turns true, then lets in-flight requests
/// finish (up to [`DRAIN_TIMEOUT`]).
async fn serve(
    listener: TcpListener,
    proxy: Arc<proxy::Proxy>,
    limits: &cli::Limits,
    connections: Arc<conn::Connections>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // HTTP/1 or h2c, chosen once per connection (conn::is_h2).
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        // The header-read timeout is armed for every request: a coarse
        // per-worker deadline instead of a tokio timer entry each time.
        .timer(coarse::CoarseTimer)
        .header_read_timeout(Duration::from_secs(10))
        // Heads beyond these get 431 (hyper's own defaults let one
        // connection buffer ~400 KiB of an unfinished head).
        .max_buf_size(limits.max_header_bytes as usize)
        .max_headers(limits.max_headers)
        // No read from the client while its request is in flight: hyper's
        // EOF probe at that point reserved a fresh 8 KiB read buffer for
        // every request (the old one is still shared with the request's
        // header values). The cost: a client that goes away before the
        // response head is only noticed when the head is written (within
        // RESPONSE_TIMEOUT), and a client that half-closes after its
        // request now gets the response.
        .half_close(true)
        // Small responses: one copied buffer and a plain send is cheaper
        // than a vectored write of head and body.
        .writev(false);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes)
        .keep_alive_interval(limits.h2_keepalive_interval)
        .keep_alive_timeout(limits.h2_keepalive_interval);
    let h2_idle = limits.h2_idle_timeout;
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            accepted = async {
                connections.room().await;
                listener.accept().await
            } => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let entered = connections.enter();
        let _ = stream.set_nodelay(true);
        // One Arc clone per request for all three.
        let ctx = Arc::new((
            Arc::clone(&proxy),
            headers::client_ip(peer),
            conn::Activity::new(),
        ));
        let activity = Arc::clone(&ctx);
        let service = hyper::service::service_fn(move |mut req| {
            let ctx = Arc::clone(&ctx);
            async move {
                if ctx.2.start() {
                    req.extensions_mut().insert(proxy::FirstRequest);
                }
                let resp = ctx.0.serve(req, &ctx.1).await;
                ctx.2.end();
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let slot = conn::Slot::new();
        let (http1, http2) = (http1.clone(), http2.clone());
        tokio::spawn(async move {
            let activity = &activity.2;
            let served = match conn::sniff(&slot, &stream).await {
                None => return,
                Some(conn::Proto::Http2) => {
                    let c = http2.serve_connection(TokioIo::new(stream), service);
                    conn::watched(slot, c, activity, Some(h2_idle)).await
                }
                Some(conn::Proto::Http1) => {
                    let io = TokioIo::new(stray_cr::StrayCr::new(stream));
                    let c = http1.serve_connection(io, service).with_upgrades();
                    conn::watched(slot, c, activity, None).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, "connection: {e}");
            }
            drop(entered);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        () = conn::drain() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("gave up waiting for connections after {DRAIN_TIMEOUT:?}"),
    }
}

/// Says what the gateway serves and how to try it.
async fn banner(control: &reload::Control, embedded: bool, addr: std::net::SocketAddr) {
    if embedded {
        println!(
            "tower-sticky gateway: no --route given, serving the embedded default: the seed's cookie HTTPRoute"
        );
        println!("  (Session-A cookie, absoluteTimeout 10s, Permanent, PathPrefix /)");
    }
    let (routes, echo) = control.describe().await;
    for line in routes {
        println!("{line}");
    }
    if echo.is_empty() {
        println!(
            "backends: the --backend endpoints only, and the EndpointSlices of --endpoints (no in-process echo replicas)"
        );
    } else {
        println!(
            "demo mode (no --backend, no --endpoints): in-process echo replicas serve every Service; they reflect request headers, cookies included, so never expose them"
        );
    }
    for (service, pods) in &echo {
        println!(
            "Service {service}: {} in-process echo replica(s):",
            pods.len()
        );
        for (pod, at) in pods {
            println!("  {pod} at http://{at}");
        }
    }
    if embedded {
        let base = format!("http://localhost:{}", addr.port());
        println!("Try the seed's walkthrough:");
        println!(
            "  COOKIE=$(curl --verbose {base}/get 2>&1 | grep \"set-cookie\" | awk '{{print $3}}')"
        );
        println!("  for i in `seq 5`; do");
        println!("      curl -H \"Cookie: $COOKIE\" {base}/get 2>/dev/null | grep pod");
        println!("  done");
        println!("  sleep 10 && for i in `seq 5`; do");
        println!(
            "      curl -H \"Cookie: $COOKIE\" -H \"Host: www.example.com\" {base}/get 2>/dev/null | grep pod"
        );
        println!("  done");
    }
}
