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
//!   `--endpoints` file ([`What::Everything`]); key rotation needs no
//!   restart;
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
//! Membership ([`Membership`]) lives outside snapshots: every snapshot's
//! endpoints point at the same members, so a reload resets no drain, no
//! passive-health mark and no counter, and tokens, being stateless, keep
//! every live session on its pod.

use crate::cli::Args;
use crate::config::keys::{self, Keys};
use crate::config::rules::{self, Compiled};
use crate::config::{self, LoadedRoute};
use crate::discover::dns::{DnsName, Resolver};
use crate::discover::endpoint_slice::{self, EndpointSlice};
use crate::discover::membership::{Drain, Member, Membership, Unknown};
use crate::discover::sources::Sources;
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
    args: Args,
    membership: Membership,
    current: Arc<ArcSwap<Compiled>>,
    inputs: tokio::sync::Mutex<Inputs>,
    ready: AtomicBool,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

impl Control {
    /// Reads everything once; an error stops start-up.
    pub async fn start(
        args: Args,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Result<Arc<Control>, String> {
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
        let compiled = build(&args, &membership, &routes, &keys, &sources)?;
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
            args,
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

    /// Graceful shutdown starts: `/readyz` says 503 from now on.
    pub fn shutting_down(&self) {
        self.ready.store(false, Ordering::Relaxed);
    }

    /// Re-reads `what`, builds and validates a new snapshot and swaps it in;
    /// on any error the current one keeps serving.
    pub async fn reload(&self, what: What) -> Result<(), String> {
        let result = self.try_reload(&what).await;
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

    async fn try_reload(&self, what: &What) -> Result<(), String> {
        // One reload at a time; requests never wait for this lock.
        let mut inputs = self.inputs.lock().await;
        let mut sources = inputs.sources.clone();
        match what {
            What::Everything | What::Endpoints => {
                sources.slices = load_slices(&self.args.endpoints)?;
            }
            What::Dns(name, addrs) => {
                sources.dns.insert(name.clone(), addrs.clone());
            }
        }
        if let What::Everything = what {
            let routes = load_routes(&self.args)?;
            // Without --key-file the key is this process's random one: a
            // reload must not end every session.
            let keys = if self.args.key_files.is_empty() {
                None
            } else {
                Some(self.reload_keys(&inputs.keys, !sources.demo)?)
            };
            sources.start_echo(&routes, self.args.replicas).await?;
            let keys_now = keys.as_ref().unwrap_or(&inputs.keys);
            let compiled = build(&self.args, &self.membership, &routes, keys_now, &sources)?;
            self.current.store(Arc::new(compiled));
            inputs.routes = routes;
            if let Some(keys) = keys {
                inputs.keys = keys;
            }
        } else {
            // Membership alone changed: the snapshot stays, its rules'
            // endpoints change in place (tower::discover changes).
            let plan = self.membership.plan(&sources.desired(&inputs.routes)?)?;
            rules::apply_members(&self.current.load(), &plan);
            self.membership.commit(&plan);
        }
        inputs.sources = sources;
        Ok(())
    }

    /// The `--key-file`s read again, with the id key read at start-up.
    fn reload_keys(&self, current: &Keys, real_backends: bool) -> Result<Keys, String> {
        let mut keys = load_keys(&self.args, real_backends)?;
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
    /// `gateway_backend_up` as of now.
    pub fn render_metrics(&self) -> String {
        let snapshot = self.current.load();
        for rule in &snapshot.rules {
            crate::forward::health::render_rule(rule);
            for e in rule.target.backends().snapshot().endpoints() {
                let t = e.target();
                metrics::gauge!(
                    "gateway_backend_up",
                    "route" => rule.route.clone(),
                    "rule" => rule.index.to_string(),
                    "service" => t.member.service.name.clone(),
                    "backend" => t.member.label.clone(),
                )
                .set(f64::from(u8::from(
                    e.state() != tower_sticky::balance::BackendState::Down,
                )));
            }
        }
        self.metrics
            .as_ref()
            .map(metrics_exporter_prometheus::PrometheusHandle::render)
            .unwrap_or_default()
    }

    /// Re-resolves every `dns:` backend every `--dns-refresh`; a changed
    /// answer reloads, a failed one keeps the last good set.
    pub async fn run_dns(self: Arc<Self>) {
        let (resolver, names) = match dns(&self.args) {
            Ok(Some(dns)) => dns,
            Ok(None) => return,
            Err(e) => {
                tracing::error!("DNS discovery is off: {e}");
                return;
            }
        };
        let mut tick = tokio::time::interval(self.args.dns_refresh);
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
        if self.args.endpoints.is_empty() {
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
            let _ = self.reload(What::Everything).await;
        }
    }
}

/// A snapshot from inputs: the membership is planned, the rules compiled
/// over it, and only when all of that worked is the plan committed.
fn build(
    args: &Args,
    membership: &Membership,
    routes: &[LoadedRoute],
    keys: &Keys,
    sources: &Sources,
) -> Result<Compiled, String> {
    rules::check_specs(routes, &args.backends)?;
    let desired = sources.desired(routes)?;
    let plan = membership.plan(&desired)?;
    let compiled = rules::compile(routes, &plan, keys, args.strict_sessions)?;
    membership.commit(&plan);
    Ok(compiled)
}

fn load_keys(args: &Args, real_backends: bool) -> Result<Keys, String> {
    keys::load(keys::KeySources {
        key_files: &args.key_files,
        id_key: args.backend_id_key.as_deref(),
        backends: real_backends,
    })
}

fn load_routes(args: &Args) -> Result<Vec<LoadedRoute>, String> {
    if args.routes.is_empty() {
        return config::load_str(config::DEFAULT_ROUTE_NAME, config::DEFAULT_ROUTE)
            .map_err(|e| e.to_string());
    }
    let mut all = Vec::new();
    for path in &args.routes {
        all.extend(config::load_file(path).map_err(|e| e.to_string())?);
    }
    Ok(all)
}

fn load_slices(paths: &[PathBuf]) -> Result<Vec<EndpointSlice>, String> {
    let mut all = Vec::new();
    for path in paths {
        all.extend(endpoint_slice::load_file(path).map_err(|e| format!("--endpoints {e}"))?);
    }
    Ok(all)
}

/// The `dns:` names of the `--backend` flags, and a resolver for them;
/// `None` when there are none.
fn dns(args: &Args) -> Result<Option<(Resolver, Vec<DnsName>)>, String> {
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
