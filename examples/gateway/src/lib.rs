//! An HTTPRoute gateway with Gateway API session persistence, built from the
//! public parts of `tower_sticky`.
//!
//! ```text
//! cargo run --release --bin tower-sticky-gateway           # the seed's cookie route, 4 echo pods
//! cargo run --release --bin tower-sticky-gateway -- --route my-routes.yaml \
//!     --backend backend=10.0.0.7:3000,10.0.0.8:3000 --key-file /etc/gateway/key
//! ```
//!
//! Read it in the order a request lives:
//!
//! 1. [`listen`]: accept the connection (HTTP/1 or h2c, or TLS with ALPN
//!    `h2`/`http/1.1`: [`listen::tls`]), limits, drain;
//! 2. [`route`]: pick the rule by Gateway API precedence, over typed matches
//!    from [`tower_sticky::route`];
//! 3. pin: the rule's [`StickySessions`](tower_sticky::sticky::StickySessions)
//!    verifies and strips the session and decides the backend (or a weighted
//!    pick without `sessionPersistence`), in [`forward`]'s `first_choice`
//!    and `repick`;
//! 4. [`forward`]: send it upstream over this worker's pool (reuse policy,
//!    per-endpoint cap), retry and re-pin when that is safe, passive health;
//!    [`forward::probe`] revives backends;
//! 5. [`answer`]: hop-by-hop headers out, `X-Forwarded-*` in, the session
//!    written back (`Set-Cookie`, `Cache-Control: private`), error answers.
//!
//! The control plane, never on the request path:
//!
//! * [`config`]: route files → typed routes ([`tower_sticky::route`]),
//!   [`config::rules`]: per rule, `Backends` + `StickySessions`, signed with
//!   [`config::keys`]; [`cli`]: the flags;
//! * [`discover`]: where endpoints come from (`--backend`, `--endpoints`
//!   EndpointSlice files, `dns:` names) and the members that outlive
//!   configurations (drain, health, counters);
//! * [`reload`]: builds whole snapshots off to the side and swaps them in
//!   (SIGHUP, `POST /reload`, a changed slice file or DNS answer);
//! * [`admin`]: `/healthz`, `/readyz`, `/metrics`, `/backends`, drain,
//!   undrain, `/reload`;
//! * [`echo`]: in-process replicas; [`shutdown`]: signals.

pub mod answer;
pub mod forward;
pub mod listen;
pub mod pin;
pub mod route;

pub mod admin;
pub mod cli;
pub mod config;
pub mod discover;
pub mod echo;
pub mod reload;
pub mod shutdown;

use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;

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

/// The library's session-age histogram (`tower_sticky::sticky`, `metrics`
/// feature).
const SESSION_AGE: &str = "tower_sticky_session_age_seconds";
/// Its buckets, in seconds. A Prometheus histogram rather than the
/// exporter's default summary: buckets add up across replicas, and filing a
/// sample in one costs a few comparisons, where the summary's sketch cost
/// ~550 instructions per request (BENCHMARKS-HISTORY.md section 6.3).
const SESSION_AGE_BUCKETS: &[f64] = &[
    1.0,
    10.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
    86400.0,
];

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration (routes, keys, endpoints) did not load.
    #[error(transparent)]
    Config(#[from] reload::ReloadError),
    /// The control plane's thread could not be started.
    #[error("cannot start the control-plane thread: {0}")]
    ControlPlane(std::io::Error),
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// `--listen`.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The admin address could not be bound.
    #[error("cannot listen on {addr} (--admin): {source}")]
    Admin {
        /// `--admin`.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A worker thread could not be started.
    #[error("cannot start a worker thread: {0}")]
    Worker(std::io::Error),
    /// `--tls-cert` or `--tls-key` cannot serve (the message names the file).
    #[error(transparent)]
    Certs(config::certs::CertError),
    /// The `--cookie-*` flags do not go together.
    #[error(transparent)]
    Cookie(config::edge::CookieError),
}

/// The Prometheus recorder, with the session-age buckets, and its upkeep
/// task; `None` (and a warning) if it cannot be installed.
fn install_metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(SESSION_AGE.to_owned()),
            SESSION_AGE_BUCKETS,
        )
        .and_then(|b| b.install_recorder())
        .map_err(|e| tracing::warn!("metrics are off: {e}"))
        .ok();
    // Histogram samples (the library's session ages) pile up in the
    // recorder until something drains them: `/metrics` does, but nobody may
    // scrape it. `install_recorder` leaves that upkeep to us (the exporter's
    // own tasks do it every 5 s).
    if let Some(handle) = metrics.clone() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
    metrics
}

async fn run(args: cli::Args, threads: usize) -> Result<(), StartError> {
    // The recorder first: the library resolves its counters against the
    // recorder installed when they are first used.
    let metrics = install_metrics();
    // The slice files' watcher reads them first: a change while start-up
    // reads them is then seen as a change.
    let watcher = discover::watch::Watcher::new(args.endpoints.clone());
    let (control, edge) = start_control(&args, metrics).await?;
    let sockets = Sockets::bind(&args, threads).await?;
    banner(&control, args.routes.is_empty(), sockets.addr).await;
    let proxy_options = forward::Options::from_args(&args);
    let proxy = Arc::new(forward::Proxy::new(control.current(), proxy_options));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The control plane's tasks run on a thread of their own.
    let plane = reload::control_thread().map_err(StartError::ControlPlane)?;
    if let Some((admin, admin_addr)) = sockets.admin {
        println!("admin listening on http://{admin_addr}");
        admin::warn_if_exposed(admin_addr);
        let options = admin::Options::from_flags(&args.admin_limits);
        serve_admin(&plane, admin, Arc::clone(&control), options);
    }
    let health_check_path = args.health_check_path.clone();
    tokio::spawn(forward::probe::run(
        Arc::clone(&proxy),
        health_check_path,
        stop_rx.clone(),
    ));
    plane.spawn(Arc::clone(&control).run_sighup());
    plane.spawn(Arc::clone(&control).run_dns());
    plane.spawn(Arc::clone(&control).run_watch(watcher, stop_rx.clone()));

    let limits = Arc::new(args.limits.clone());
    let worker = Worker {
        number: 0,
        connections: listen::conn::connection_limit(limits.max_connections),
        limits,
        proxy,
        stop: stop_rx,
        edge,
    };
    let scheme = if worker.edge.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // Workers 1.. get a thread and a runtime each; this thread is worker 0
    // and also keeps the prober and the in-process echo replicas (which
    // must outlive every worker's drain).
    let mut listeners = sockets.listeners.into_iter();
    let own = listeners
        .next()
        .expect("bind_all binds at least one listener");
    let done = worker.spawn_others(listeners, &args.listen)?;
    println!("listening on {scheme}://{}", sockets.addr);
    tokio::spawn(stop_on_signal(Arc::clone(&control), stop_tx));
    worker.serve(own).await;
    for d in done {
        // A worker drains for at most DRAIN_TIMEOUT, then reports.
        let _ = d.await;
    }
    Ok(())
}

/// Reads and checks the configuration (routes, keys, endpoints, cookie
/// flags, certificates) into the control plane's first snapshot; returns it
/// with the TLS edge the listeners serve.
async fn start_control(
    args: &cli::Args,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> Result<(Arc<reload::Control>, listen::tls::Edge), StartError> {
    let cookie = args.edge.cookie().map_err(StartError::Cookie)?;
    let certs = args
        .edge
        .cert_files()
        .map(listen::tls::Certs::load)
        .transpose()
        .map_err(StartError::Certs)?;
    let edge = listen::tls::Edge {
        tls: certs.clone(),
        trusted: args.edge.trusted(),
    };
    let mut settings = args.control_settings();
    settings.cookie = cookie;
    settings.tls = certs;
    let control = reload::Control::start(settings, metrics)
        .await
        .map_err(StartError::Config)?;
    Ok((control, edge))
}

/// The sockets the gateway serves on, bound before anything is served.
struct Sockets {
    /// `--listen`, one listener per worker (`SO_REUSEPORT`).
    listeners: Vec<TcpListener>,
    /// The address they listen on.
    addr: std::net::SocketAddr,
    /// `--admin`, and its address.
    admin: Option<(std::net::TcpListener, std::net::SocketAddr)>,
}

impl Sockets {
    async fn bind(args: &cli::Args, threads: usize) -> Result<Sockets, StartError> {
        let listen_error = |source| StartError::Listen {
            addr: args.listen.clone(),
            source,
        };
        let listeners = listen::bind_all(&args.listen, threads)
            .await
            .map_err(listen_error)?;
        let addr = listeners[0].local_addr().map_err(listen_error)?;
        let admin = match &args.admin {
            Some(a) => {
                let admin_error = |source| StartError::Admin {
                    addr: a.clone(),
                    source,
                };
                let admin = admin::bind(a).await.map_err(admin_error)?;
                let admin_addr = admin.local_addr().map_err(admin_error)?;
                Some((admin, admin_addr))
            }
            None => None,
        };
        Ok(Sockets {
            listeners,
            addr,
            admin,
        })
    }
}

/// Serves the admin port (bound by [`Sockets::bind`]) from the control
/// plane's runtime.
fn serve_admin(
    plane: &tokio::runtime::Handle,
    admin: std::net::TcpListener,
    control: Arc<reload::Control>,
    options: admin::Options,
) {
    plane.spawn(async move {
        match TcpListener::from_std(admin) {
            Ok(admin) => admin::serve(admin, control, options).await,
            Err(e) => tracing::error!("the admin port cannot serve: {e}"),
        }
    });
}

/// Waits for SIGINT/SIGTERM, then tells `/readyz` and every worker.
async fn stop_on_signal(control: Arc<reload::Control>, stop: tokio::sync::watch::Sender<bool>) {
    shutdown::signal().await;
    // `/readyz` says 503 from this moment, so that an L4 balancer stops
    // sending new connections while in-flight ones finish.
    control.shutting_down();
    let _ = stop.send(true);
}

/// What a worker serves with.
#[derive(Clone)]
struct Worker {
    /// 0 for the main thread, 1.. for the others.
    number: usize,
    proxy: Arc<forward::Proxy>,
    limits: Arc<cli::Limits>,
    connections: Arc<tokio::sync::Semaphore>,
    stop: tokio::sync::watch::Receiver<bool>,
    edge: listen::tls::Edge,
}

impl Worker {
    /// Serves `listener` on the current runtime until the drain ends.
    async fn serve(self, listener: TcpListener) {
        let Worker {
            proxy,
            limits,
            connections,
            stop,
            edge,
            ..
        } = self;
        listen::serve(listener, proxy, &limits, connections, stop, edge).await;
    }

    /// Starts workers 1.. on `listeners` (bound to `--listen`), each on a
    /// thread of its own; the receivers hear when they have drained.
    fn spawn_others(
        &self,
        listeners: impl Iterator<Item = TcpListener>,
        listen: &str,
    ) -> Result<Vec<tokio::sync::oneshot::Receiver<()>>, StartError> {
        let mut done = Vec::new();
        for (i, listener) in listeners.enumerate() {
            let listener = listener.into_std().map_err(|source| StartError::Listen {
                addr: listen.to_owned(),
                source,
            })?;
            let worker = Worker {
                number: i + 1,
                ..self.clone()
            };
            done.push(worker.spawn(listener).map_err(StartError::Worker)?);
        }
        Ok(done)
    }

    /// Starts its thread and runtime on `listener`; the receiver hears when
    /// it has drained.
    fn spawn(
        self,
        listener: std::net::TcpListener,
    ) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("gateway-worker-{}", self.number))
            .spawn(move || {
                let n = self.number;
                let runtime = match worker_runtime() {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("worker {n}: cannot start its runtime: {e}");
                        return;
                    }
                };
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => self.serve(listener).await,
                        Err(e) => tracing::error!("worker {n}: {e}"),
                    }
                });
                let _ = done_tx.send(());
            })?;
        Ok(done_rx)
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
