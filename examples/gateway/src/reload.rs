//! The control plane: builds configuration snapshots off to the side and
//! swaps them in.
//!
//! A snapshot ([`Compiled`]: routes, matchers, per-rule session engines and
//! endpoints) is immutable. A request loads the current one once
//! (`ArcSwap::load_full`) and keeps it to its end, so in-flight requests
//! finish on the configuration they started with. Something that changes
//! the configuration builds a whole new snapshot, validates all of it, and
//! only then swaps it in:
//!
//! * SIGHUP and `POST /reload` re-read every `--route`, `--key-file` and
//!   `--endpoints` file and the `--tls-cert`/`--tls-key` pair
//!   ([`What::Everything`]); key and certificate rotation need no restart;
//! * an `--endpoints` file that changed is re-read alone
//!   ([`What::Endpoints`]);
//! * a DNS name that resolves to other addresses ([`What::Dns`]).
//!
//! The last two change membership only: the snapshot stays, and each
//! rule's endpoints get `tower::discover` changes in place
//! ([`rules::apply_members`], over the library's
//! `Backends::set_discovered`).
//!
//! A broken file keeps the previous snapshot serving; the error names file,
//! document and field, is logged, and counts in
//! `gateway_reloads_total{result="failed"}`.
//!
//! All of it runs on the control plane's own thread and runtime
//! ([`control_thread`]), never on a worker's: a 10,000-endpoint slice or
//! 5,000 rules are parsed and planned there in linear time while clients
//! are served. A membership change of more than a few dozen endpoints
//! builds a new snapshot rather than changing the current one endpoint by
//! endpoint. Full reloads requested while one runs share the next
//! ([`Control::request_reload`]).
//!
//! Membership ([`Membership`]) lives outside snapshots: every snapshot's
//! endpoints point at the same members, so a reload resets no drain, no
//! passive-health mark and no counter, and tokens, being stateless, keep
//! every live session on its pod.

use crate::cli::BackendSpec;
use crate::config::keys::{self, Keys};
use crate::config::rules::{self, Compiled};
use crate::config::{self, LoadedRoute};
use crate::discover::dns::{DnsName, Resolver};
use crate::discover::endpoint_slice::{self, EndpointSlice};
use crate::discover::membership::{Drain, Member, Membership, Unknown};
use crate::discover::sizes::Sizes;
use crate::discover::sources::Sources;
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Why a start-up or a reload failed; the `Display` names flag or file,
/// document and field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// `--key-file`, `--backend-id-key`.
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    /// A `--route` file.
    #[error(transparent)]
    Routes(#[from] config::ConfigError),
    /// An `--endpoints` file.
    #[error("--endpoints {0}")]
    Endpoints(config::ConfigError),
    /// The routes cannot become rules.
    #[error(transparent)]
    Rules(#[from] rules::RuleError),
    /// A Service without endpoints, or an echo replica that cannot start.
    #[error(transparent)]
    Sources(#[from] crate::discover::sources::SourceError),
    /// An endpoint address.
    #[error(transparent)]
    Address(#[from] crate::discover::membership::BadAddress),
    /// DNS discovery.
    #[error(transparent)]
    Dns(#[from] crate::discover::dns::DnsError),
    /// `--tls-cert`, `--tls-key`.
    #[error(transparent)]
    Certs(#[from] crate::config::certs::CertError),
    /// The task running the reload ended without a word (it panicked).
    #[error("the reload stopped before it finished")]
    Stopped,
}

/// A membership change with at most this many endpoints joining or leaving
/// is applied to the current snapshot in place; a bigger one builds a new
/// snapshot.
const IN_PLACE_MAX: usize = 64;

/// What the control plane reads, and how: the part of the flags it needs,
/// typed, so that it does not depend on the command line
/// ([`Args::control_settings`](crate::cli::Args::control_settings)).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `--route` files (none: the embedded default).
    pub routes: Vec<PathBuf>,
    /// `--backend` flags.
    pub backends: Vec<BackendSpec>,
    /// `--endpoints` files.
    pub endpoints: Vec<PathBuf>,
    /// `--key-file`s, the signing one first.
    pub key_files: Vec<PathBuf>,
    /// `--backend-id-key`.
    pub backend_id_key: Option<PathBuf>,
    /// `--replicas`: echo replicas per Service in demo mode.
    pub replicas: usize,
    /// `--strict-sessions`.
    pub strict_sessions: bool,
    /// `--dns-refresh`.
    pub dns_refresh: Duration,
    /// `--resolver`.
    pub resolver: Option<std::net::SocketAddr>,
    /// `--cookie-*`, checked.
    pub cookie: crate::config::edge::Cookie,
    /// `--tls-cert`, `--tls-key`: re-read with everything else.
    pub tls: Option<Arc<crate::listen::tls::Certs>>,
}

/// What a reload re-reads.
#[derive(Clone, Debug)]
pub enum What {
    /// Every `--route`, `--key-file` and `--endpoints` file.
    Everything,
    /// The `--endpoints` files.
    Endpoints,
    /// A DNS name now resolves to these addresses.
    Dns(DnsName, Vec<String>),
}

/// What the current snapshot was built from.
struct Inputs {
    routes: Vec<LoadedRoute>,
    keys: Keys,
    sources: Sources,
}

/// The control plane.
pub struct Control {
    settings: Settings,
    membership: Membership,
    current: Arc<ArcSwap<Compiled>>,
    inputs: tokio::sync::Mutex<Inputs>,
    ready: AtomicBool,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    reloads: Coalesced,
    /// Usable endpoints per Service, for warnings and `/readyz`.
    sizes: std::sync::Mutex<Sizes>,
}

/// Requests for a full reload that arrive while one waits or runs share
/// the next one to start (issue 19: 10 pipelined `POST /reload` were 10
/// reloads in a row).
struct Coalesced {
    /// Requests so far; a request's ticket is the count with it.
    requested: AtomicU64,
    /// Held while a reload runs: the next one waits here.
    running: tokio::sync::Mutex<()>,
    /// The requests the last reload covered (every ticket up to this), and
    /// its outcome.
    last: std::sync::Mutex<(u64, Result<(), Arc<ReloadError>>)>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

impl Control {
    /// Reads everything once; an error stops start-up.
    pub async fn start(
        args: Settings,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Result<Arc<Control>, ReloadError> {
        let real_backends = !args.backends.is_empty() || !args.endpoints.is_empty();
        let keys = load_keys(&args, real_backends)?;
        if keys.generated {
            tracing::warn!(
                "no --key-file: using a random session key; sessions end when this process does, and other gateway replicas will not honour them"
            );
        }
        let routes = load_routes(&args)?;
        let mut sources = Sources {
            specs: args.backends.clone(),
            slices: load_slices(&args.endpoints)?,
            id_secret: keys.id_secret,
            demo: !real_backends,
            ..Sources::default()
        };
        sources.start_echo(&routes, args.replicas).await?;
        if let Some((resolver, names)) = dns(&args)? {
            for name in names {
                match resolver.resolve(&name).await {
                    Ok(addrs) => {
                        sources.dns.insert(name, addrs);
                    }
                    Err(e) => tracing::warn!(
                        "{name}: cannot resolve ({e}); starting with no endpoints, retrying every {:?}",
                        args.dns_refresh
                    ),
                }
            }
        }
        let membership = Membership::default();
        let mut sizes = Sizes::default();
        let compiled = build(&args, &membership, &routes, &keys, &sources, &mut sizes)?;
        let control = Control {
            current: Arc::new(ArcSwap::from_pointee(compiled)),
            membership,
            inputs: tokio::sync::Mutex::new(Inputs {
                routes,
                keys,
                sources,
            }),
            ready: AtomicBool::new(true),
            metrics,
            sizes: std::sync::Mutex::new(sizes),
            reloads: Coalesced {
                requested: AtomicU64::new(0),
                running: tokio::sync::Mutex::new(()),
                last: std::sync::Mutex::new((0, Ok(()))),
            },
            settings: args,
        };
        Ok(Arc::new(control))
    }

    /// The snapshot requests load.
    pub fn current(&self) -> Arc<ArcSwap<Compiled>> {
        Arc::clone(&self.current)
    }

    /// Every Service's members.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// For the start-up banner: a line per route, and the echo replicas of
    /// each Service in demo mode.
    pub async fn describe(&self) -> (Vec<String>, Vec<(String, Vec<(String, String)>)>) {
        let inputs = self.inputs.lock().await;
        let mut echo: Vec<(String, Vec<(String, String)>)> = inputs
            .sources
            .echo
            .iter()
            .map(|((ns, name), pods)| (format!("{ns}/{name}"), pods.clone()))
            .collect();
        echo.sort();
        let routes = inputs
            .routes
            .iter()
            .map(|r| {
                format!(
                    "route {}/{} ({}): {} rule(s)",
                    r.route.namespace(),
                    r.route.name(),
                    r.source,
                    r.route.rules().len()
                )
            })
            .collect();
        (routes, echo)
    }

    /// Whether the gateway accepts traffic (`/readyz`).
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The Services left without a usable endpoint (`/readyz` lists them).
    pub fn empty_services(&self) -> Vec<String> {
        self.sizes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .empty()
    }

    /// Graceful shutdown starts: `/readyz` says 503 from now on.
    pub fn shutting_down(&self) {
        self.ready.store(false, Ordering::Relaxed);
    }

    /// Re-reads `what`, builds and validates a new snapshot and swaps it in;
    /// on any error the current one keeps serving.
    pub async fn reload(&self, what: What) -> Result<(), Arc<ReloadError>> {
        let result = self.try_reload(&what).await.map_err(Arc::new);
        let label = match &what {
            What::Everything => "everything",
            What::Endpoints => "endpoints",
            What::Dns(..) => "dns",
        };
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!("gateway_reloads_total", "result" => outcome, "what" => label)
            .increment(1);
        match &result {
            Ok(()) => tracing::info!(what = label, "reloaded: the new configuration serves"),
            Err(e) => tracing::error!(
                what = label,
                "reload failed, the previous configuration keeps serving: {e}"
            ),
        }
        result
    }

    /// Reloads everything (`POST /reload`, SIGHUP) with a reload that
    /// starts after this call: one already running does not count, but
    /// every request that arrives while it runs shares the next. The reload
    /// runs on its own task, so a client that goes away does not cut it
    /// short.
    pub async fn request_reload(self: &Arc<Self>) -> Result<(), Arc<ReloadError>> {
        let ticket = self.reloads.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let control = Arc::clone(self);
        let task = tokio::spawn(async move {
            let _running = control.reloads.running.lock().await;
            {
                let last = control
                    .reloads
                    .last
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if last.0 >= ticket {
                    return last.1.clone();
                }
            }
            // Every request made until now is answered by this reload.
            let covers = control.reloads.requested.load(Ordering::SeqCst);
            let result = control.reload(What::Everything).await;
            *control
                .reloads
                .last
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = (covers, result.clone());
            result
        });
        task.await
            .unwrap_or_else(|_| Err(Arc::new(ReloadError::Stopped)))
    }

    async fn try_reload(&self, what: &What) -> Result<(), ReloadError> {
        // One reload at a time; requests never wait for this lock.
        let mut inputs = self.inputs.lock().await;
        let mut sources = inputs.sources.clone();
        match what {
            What::Everything | What::Endpoints => {
                sources.slices = load_slices(&self.settings.endpoints)?;
            }
            What::Dns(name, addrs) => {
                sources.dns.insert(name.clone(), addrs.clone());
            }
        }
        if let What::Everything = what {
            self.swap_everything(&mut inputs, &mut sources).await?;
        } else {
            self.apply_membership(&inputs, &sources)?;
        }
        inputs.sources = sources;
        Ok(())
    }

    /// Routes, keys and certificates read again with `sources`: a new
    /// snapshot swapped in, or an error and nothing changed.
    async fn swap_everything(
        &self,
        inputs: &mut Inputs,
        sources: &mut Sources,
    ) -> Result<(), ReloadError> {
        // Read first, served only if everything else loads too.
        let certs = match &self.settings.tls {
            Some(tls) => Some((tls, tls.read_again()?)),
            None => None,
        };
        let routes = load_routes(&self.settings)?;
        // Without --key-file the key is this process's random one: a
        // reload must not end every session.
        let keys = if self.settings.key_files.is_empty() {
            None
        } else {
            Some(self.reload_keys(&inputs.keys, !sources.demo)?)
        };
        sources.start_echo(&routes, self.settings.replicas).await?;
        let keys_now = keys.as_ref().unwrap_or(&inputs.keys);
        let compiled = {
            let mut sizes = self.sizes.lock().unwrap_or_else(PoisonError::into_inner);
            build(
                &self.settings,
                &self.membership,
                &routes,
                keys_now,
                sources,
                &mut sizes,
            )?
        };
        self.current.store(Arc::new(compiled));
        if let Some((tls, config)) = certs {
            tls.install(config);
        }
        inputs.routes = routes;
        if let Some(keys) = keys {
            inputs.keys = keys;
        }
        Ok(())
    }

    /// Membership alone changed: the snapshot stays, its rules' endpoints
    /// change in place (tower::discover changes), or a few thousand changes
    /// are one new snapshot.
    fn apply_membership(&self, inputs: &Inputs, sources: &Sources) -> Result<(), ReloadError> {
        let desired = sources.desired(&inputs.routes)?;
        let plan = self.membership.plan(&desired)?;
        if plan.changed() <= IN_PLACE_MAX {
            rules::apply_members(&self.current.load(), &plan);
        } else {
            // The library applies discovered changes one at a time, each
            // swapping a rule's endpoint list: thousands of them (a
            // 10,000-endpoint slice) are one new snapshot instead, built in
            // linear time. Sessions are in their tokens, so none moves.
            let compiled = rules::compile(
                &inputs.routes,
                &plan,
                &inputs.keys,
                self.settings.strict_sessions,
                &self.settings.cookie,
            )?;
            self.current.store(Arc::new(compiled));
        }
        self.membership.commit(&plan);
        self.sizes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .update(&desired);
        Ok(())
    }

    /// The `--key-file`s read again, with the id key read at start-up.
    fn reload_keys(&self, current: &Keys, real_backends: bool) -> Result<Keys, ReloadError> {
        let mut keys = load_keys(&self.settings, real_backends)?;
        if keys.id_secret != current.id_secret {
            tracing::warn!(
                "--backend-id-key changed: keeping the id key read at start-up (a new one would move every session); restart to change it"
            );
            keys.id_secret = current.id_secret;
        }
        Ok(keys)
    }

    /// Drains (`Some`; with a deadline, its sessions move on once it
    /// passes) or undrains (`None`) the endpoint of a Service.
    pub fn set_drain(
        &self,
        service: &str,
        endpoint: &str,
        drain: Option<Drain>,
    ) -> Result<Vec<Arc<Member>>, Unknown> {
        let members = self.membership.find(service, endpoint)?;
        for m in &members {
            m.set_drain(drain);
        }
        let done = if drain.is_some() {
            "drained"
        } else {
            "undrained"
        };
        tracing::info!(service, endpoint, ?drain, "{done} by the operator");
        Ok(members)
    }

    /// The Prometheus page: the library's and the gateway's counters, and
    /// the per-endpoint series of the endpoints there are now.
    pub fn render_metrics(&self) -> String {
        let snapshot = self.current.load();
        for rule in &snapshot.rules {
            crate::forward::health::render_rule(rule);
        }
        let mut page = self
            .metrics
            .as_ref()
            .map(metrics_exporter_prometheus::PrometheusHandle::render)
            .unwrap_or_default();
        crate::config::backend_series::render(&self.current.load(), &mut page);
        page
    }

    /// Re-resolves every `dns:` backend every `--dns-refresh`; a changed
    /// answer reloads, a failed one keeps the last good set.
    pub async fn run_dns(self: Arc<Self>) {
        let (resolver, names) = match dns(&self.settings) {
            Ok(Some(dns)) => dns,
            Ok(None) => return,
            Err(e) => {
                tracing::error!("DNS discovery is off: {e}");
                return;
            }
        };
        let mut tick = tokio::time::interval(self.settings.dns_refresh);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            for name in &names {
                let answer = resolver.resolve(name).await;
                let last = self.inputs.lock().await.sources.dns.get(name).cloned();
                match answer {
                    Ok(addrs) if last.as_ref() != Some(&addrs) => {
                        tracing::info!(%name, ?addrs, "DNS answer changed");
                        let _ = self.reload(What::Dns(name.clone(), addrs)).await;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(
                        %name,
                        "cannot resolve ({e}); keeping the last good set: {:?}",
                        last.unwrap_or_default()
                    ),
                }
            }
        }
    }

    /// Re-reads the `--endpoints` files when one changes; `watcher` read
    /// them before start-up did, so no change in between is missed.
    pub async fn run_watch(
        self: Arc<Self>,
        watcher: crate::discover::watch::Watcher,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        if self.settings.endpoints.is_empty() {
            return;
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(watcher.run(tx, stop));
        while let Some(path) = rx.recv().await {
            tracing::info!(file = %path.display(), "endpoints file changed");
            let _ = self.reload(What::Endpoints).await;
        }
    }

    /// Reloads everything on each SIGHUP.
    pub async fn run_sighup(self: Arc<Self>) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: reload with POST /reload");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            let _ = self.request_reload().await;
        }
    }
}

/// Starts the control plane's own thread and single-threaded runtime, and
/// returns a handle to spawn its tasks on (the admin server, reloads, the
/// slice-file watcher, DNS refresh, drain deadlines): parsing a big file or
/// planning thousands of endpoints then never holds up a worker's clients
/// (issue 19, finding 3). It runs until the process exits.
pub fn control_thread() -> std::io::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("gateway-control".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

/// A snapshot from inputs: the membership is planned, the rules compiled
/// over it, and only when all of that worked is the plan committed.
fn build(
    args: &Settings,
    membership: &Membership,
    routes: &[LoadedRoute],
    keys: &Keys,
    sources: &Sources,
    sizes: &mut Sizes,
) -> Result<Compiled, ReloadError> {
    rules::check_specs(routes, &args.backends)?;
    let desired = sources.desired(routes)?;
    let plan = membership.plan(&desired)?;
    let compiled = rules::compile(routes, &plan, keys, args.strict_sessions, &args.cookie)?;
    membership.commit(&plan);
    sizes.update(&desired);
    Ok(compiled)
}

fn load_keys(args: &Settings, real_backends: bool) -> Result<Keys, ReloadError> {
    Ok(keys::load(keys::KeySources {
        key_files: &args.key_files,
        id_key: args.backend_id_key.as_deref(),
        backends: real_backends,
    })?)
}

fn load_routes(args: &Settings) -> Result<Vec<LoadedRoute>, ReloadError> {
    if args.routes.is_empty() {
        return Ok(config::load_str(
            config::DEFAULT_ROUTE_NAME,
            config::DEFAULT_ROUTE,
        )?);
    }
    let mut all = Vec::new();
    for path in &args.routes {
        all.extend(config::load_file(path)?);
    }
    config::order::sort(&mut all)?;
    Ok(all)
}

fn load_slices(paths: &[PathBuf]) -> Result<Vec<EndpointSlice>, ReloadError> {
    let mut all = Vec::new();
    for path in paths {
        all.extend(endpoint_slice::load_file(path).map_err(ReloadError::Endpoints)?);
    }
    Ok(all)
}

/// The `dns:` names of the `--backend` flags, and a resolver for them;
/// `None` when there are none.
fn dns(args: &Settings) -> Result<Option<(Resolver, Vec<DnsName>)>, ReloadError> {
    let mut names: Vec<DnsName> = Vec::new();
    for name in args.backends.iter().filter_map(|spec| spec.dns.as_ref()) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    if names.is_empty() {
        return Ok(None);
    }
    Ok(Some((Resolver::new(args.resolver)?, names)))
}
