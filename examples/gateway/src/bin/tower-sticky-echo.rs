//! A standalone echo backend in the format of the Gateway API conformance
//! echo server: `cargo run --bin tower-sticky-echo -- --listen 127.0.0.1:3000 --pod backend-0`.
//!
//! Prints `listening on http://ADDR` once it accepts connections, and stops
//! on SIGINT/SIGTERM. See `src/echo.rs` for the response format.

use tower_sticky_gateway::echo;

use clap::Parser;
use std::sync::Arc;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(about = "Echo backend: answers every request with JSON describing it")]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: String,
    /// The pod name reported in the JSON.
    #[arg(long, default_value = "backend-0")]
    pod: String,
    /// The Service name reported in the JSON.
    #[arg(long, default_value = "backend")]
    service: String,
    /// The namespace reported in the JSON.
    #[arg(long, default_value = "default")]
    namespace: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo: cannot listen on {}: {e}", args.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on http://{addr}"),
        Err(e) => {
            eprintln!("echo: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    let info = Arc::new(echo::EchoInfo {
        pod: args.pod,
        service: args.service,
        namespace: args.namespace,
        ingress: "echo".into(),
    });
    echo::serve(listener, info, shutdown_signal()).await;
    std::process::ExitCode::SUCCESS
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
