//! In-memory runs of the lean path (issue 21): arbitrary client and
//! backend byte streams through `lean::serve`, for the `lean`
//! fuzz target and its corpus replay (`fuzz/checks/lean.rs`).
//!
//! A run builds nothing per input but the streams: one gateway (the seed's
//! cookie route over two fake endpoints, `127.0.0.1:1` and `127.0.0.2:1`,
//! which are never dialled) is made once per thread. The client is a
//! `tokio::io::duplex` stream that writes its bytes and then ends; each
//! upstream connection is another duplex stream whose far end, the fake
//! backend, records every byte the gateway sends and answers with the
//! input's backend bytes once it has a whole request. Every stream
//! ends, so a run that does not end within `HANG` is a hang of the path.

use super::{Connector, Served, head};
use crate::answer::headers::Origin;
use crate::forward::{self, upstream::Owner};
use crate::listen::conn::Drain;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// How long a run may take before it counts as a hang: every stream of a
/// run ends, so the path has nothing to wait for.
pub const HANG: Duration = Duration::from_secs(10);

/// The buffer of each in-memory stream: larger than any input, so that
/// writes never wait for the other side.
const PIPE: usize = 1 << 20;

/// What one run saw.
#[derive(Debug, Default)]
pub struct Run {
    /// Every byte the client received, in order.
    pub to_client: Vec<u8>,
    /// Every byte each upstream connection received, in the order the
    /// connections were opened.
    pub upstream: Vec<Vec<u8>>,
    /// The order the bytes arrived in across connections: (connection,
    /// end offset in its bytes) after each read.
    pub arrivals: Vec<(usize, usize)>,
    /// The path handed the connection to hyper (gRPC, h2c backends).
    pub handed_over: bool,
}

/// What the fake backends answer.
#[derive(Clone, Debug)]
pub struct Backend {
    /// Written once a whole request has arrived.
    pub reply: Vec<u8>,
    /// After the reply: wait for the next request head and answer it the
    /// same way (a keep-alive backend), instead of closing.
    pub keep_open: bool,
}

/// The in-memory gateway of this thread.
struct Gateway {
    runtime: tokio::runtime::Runtime,
    proxy: forward::Proxy,
    limits: head::Limits,
    reuse: crate::cli::Reuse,
}

thread_local! {
    static GATEWAY: Gateway = Gateway::new();
}

impl Gateway {
    fn new() -> Gateway {
        use clap::Parser;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let args = crate::cli::Args::try_parse_from([
            "tower-sticky-gateway",
            "--backend",
            "backend=127.0.0.1:1,127.0.0.2:1",
        ])
        .expect("the harness's flags");
        let control = runtime
            .block_on(crate::reload::Control::start(args.control_settings(), None))
            .expect("the seed's route over two fake endpoints");
        let proxy = forward::Proxy::new(control.current(), forward::Options::from_args(&args));
        let limits = head::Limits {
            max_head_bytes: usize::try_from(args.limits.max_header_bytes).unwrap_or(usize::MAX),
            max_headers: args.limits.max_headers,
        };
        Gateway {
            runtime,
            proxy,
            limits,
            reuse: args.limits.reuse,
        }
    }
}

/// Upstream connections to fake backends, recorded into a [`Run`].
struct Memory {
    backend: Backend,
    log: Arc<Mutex<Run>>,
    /// The fake backends' tasks, awaited before the run is read.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Connector for Memory {
    type Io = DuplexStream;

    async fn connect(&self, _addr: &str) -> io::Result<DuplexStream> {
        let (gateway_side, backend_side) = tokio::io::duplex(PIPE);
        let conn = {
            let mut run = self.log.lock().expect("log");
            run.upstream.push(Vec::new());
            run.upstream.len() - 1
        };
        let task = tokio::spawn(fake_backend(
            backend_side,
            conn,
            self.backend.clone(),
            Arc::clone(&self.log),
        ));
        self.tasks.lock().expect("tasks").push(task);
        Ok(gateway_side)
    }
}

/// Records what the gateway sends on connection `conn`, and answers each
/// whole request with the reply. It stays open for the next request only
/// when asked to and when the reply is a whole response the gateway can
/// tell the end of; otherwise it closes after its reply, so that the
/// gateway never waits on it (a wait would be a hang of the harness).
async fn fake_backend(mut io: DuplexStream, conn: usize, backend: Backend, log: Arc<Mutex<Run>>) {
    let mut got = Vec::new();
    let mut answered = 0;
    let mut open = true;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        got.extend_from_slice(&buf[..n]);
        {
            let mut run = log.lock().expect("log");
            run.upstream[conn].extend_from_slice(&buf[..n]);
            run.arrivals.push((conn, got.len()));
        }
        // Bounded: every turn answers a request or stops.
        while open {
            let Some((len, method)) = next_request(&got[answered..]) else {
                break;
            };
            answered += len;
            let _ = io.write_all(&backend.reply).await;
            if !(backend.keep_open && whole_response(&backend.reply, &method)) {
                let _ = io.shutdown().await;
                open = false;
            }
        }
    }
}

/// The limits the fake backends read with (larger than the gateway's).
const BACKEND_LIMITS: head::Limits = head::Limits {
    max_head_bytes: 1 << 20,
    max_headers: 128,
};

/// The length and method of the whole request at the start of `bytes`;
/// bytes that are no request count as one (answered at once), an
/// unfinished one as none yet.
fn next_request(bytes: &[u8]) -> Option<(usize, http::Method)> {
    match head::parse_request(bytes, &BACKEND_LIMITS) {
        Ok(req) => {
            let body = body_len(req.framing, &bytes[req.len..])?;
            Some((req.len + body, req.parts.method))
        }
        Err(head::HeadError::Partial) => None,
        Err(_) => Some((bytes.len(), http::Method::GET)),
    }
}

/// How many of `bytes` a body framed by `framing` takes, if it ends
/// within them.
fn body_len(framing: head::Framing, bytes: &[u8]) -> Option<usize> {
    match framing {
        head::Framing::None => Some(0),
        head::Framing::Length(n) => usize::try_from(n).ok().filter(|&n| n <= bytes.len()),
        head::Framing::Chunked => {
            let mut chunked = super::chunked::Chunked::new();
            let n = chunked.feed(bytes).ok()?;
            chunked.done().then_some(n)
        }
        head::Framing::UntilClose => None,
    }
}

/// `reply` holds, for a request with `method`, a whole final response
/// after which the connection can be kept (1xx before it skipped).
fn whole_response(mut reply: &[u8], method: &http::Method) -> bool {
    // Bounded: every turn consumes a head.
    loop {
        let Ok(resp) = head::parse_response(reply, method, &BACKEND_LIMITS) else {
            return false;
        };
        if resp.status.is_informational() {
            reply = &reply[resp.len..];
            continue;
        }
        return resp.keep_alive && body_len(resp.framing, &reply[resp.len..]).is_some();
    }
}

/// Runs `client` through the lean path against `backend`; panics if the
/// path panics or hangs.
pub fn run(client: &[u8], backend: Backend) -> Run {
    GATEWAY.with(|gw| gw.runtime.block_on(run_on(gw, client, backend)))
}

async fn run_on(gw: &Gateway, client: &[u8], backend: Backend) -> Run {
    let log = Arc::new(Mutex::new(Run::default()));
    let connector = Memory {
        backend,
        log: Arc::clone(&log),
        tasks: Mutex::new(Vec::new()),
    };
    let (mut client_side, gateway_side) = tokio::io::duplex(PIPE);
    let who = forward::Client {
        ip: http::HeaderValue::from_static("127.0.0.9"),
        owner: Owner::new(gw.reuse),
        origin: Origin {
            tls: false,
            trusted: false,
        },
    };
    let drain = Drain::new();
    let serve = super::serve(gateway_side, &gw.proxy, &who, &connector, gw.limits, &drain);
    let talk = async {
        let _ = client_side.write_all(client).await;
        let _ = client_side.shutdown().await;
        let mut out = Vec::new();
        let _ = client_side.read_to_end(&mut out).await;
        out
    };
    let both = async {
        let (handed_over, out) = tokio::join!(
            async {
                let served = serve.await;
                // The connection is the path's to close: it drops it here.
                matches!(served, Served::HandOver(_))
            },
            talk
        );
        // The upstream sockets closed with `serve`: each fake backend reads
        // to their end and stops.
        let tasks = std::mem::take(&mut *connector.tasks.lock().expect("tasks"));
        for task in tasks {
            let _ = task.await;
        }
        (handed_over, out)
    };
    let Ok((handed_over, to_client)) = tokio::time::timeout(HANG, both).await else {
        panic!("the lean path did not finish within {HANG:?} although every stream ended");
    };
    let mut run = std::mem::take(&mut *log.lock().expect("log"));
    run.to_client = to_client;
    run.handed_over = handed_over;
    run
}
