//! `tower-sticky-pingora LISTEN BACKEND...`: a Pingora reverse proxy on
//! `LISTEN` (plain HTTP) with cookie `Session-A` sticky sessions over the
//! `BACKEND` addresses. The signing key comes from `TOWER_STICKY_KEY` (at
//! least 32 bytes), so that replicas share sessions.

use pingora::prelude::*;
use std::net::SocketAddr;
use tower_sticky::balance::{BackendId, Backends};
use tower_sticky::duration::Duration;
use tower_sticky::policy::SessionPolicy;
use tower_sticky::sticky::StickyBuilder;
use tower_sticky::token::{KeySet, SigningKey};
use tower_sticky_pingora::StickyProxy;

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: tower-sticky-pingora LISTEN BACKEND...";
    let listen = args.next().ok_or(usage)?;
    let backends: Backends<SocketAddr> = args
        .map(|a| Ok((BackendId::from_name(&a), a.parse::<SocketAddr>()?, 1)))
        .collect::<std::result::Result<_, std::net::AddrParseError>>()?;
    let key = std::env::var("TOWER_STICKY_KEY").map_err(|_| "set TOWER_STICKY_KEY")?;
    let policy = SessionPolicy::cookie("Session-A")?.permanent(Duration::from_secs(3600))?;
    let sessions =
        StickyBuilder::new(policy, KeySet::new(SigningKey::new(key)?), backends).build()?;

    let mut server = Server::new(None)?;
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, StickyProxy { sessions });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever()
}
