//! EndpointSlice YAML (`discover::endpoint_slice::parse_str`) on arbitrary
//! text:
//!
//! * it never panics, and a file it refuses is named at the start of the
//!   message (`<file>: ...`);
//! * every slice it accepts names a Service and a namespace, every endpoint
//!   address is an IP address or a DNS name, every port is 1-65535;
//! * every `host:port` it hands the gateway (`endpoints_for`, for each slice
//!   port, by number and by name, and for a backendRef without a port) is
//!   one the gateway can connect to: it parses as a URI authority with that
//!   port, and an IP address as a socket address.
//!
//! Shared by the `endpoint_slice` fuzz target and the gateway's corpus
//! replay test. Input layout: the YAML text of one `--endpoints` file.

use http::uri::Authority;
use tower_sticky_gateway::discover::endpoint_slice::parse_str;

const FILE: &str = "fuzz-slices.yaml";

/// Checks one fuzz input; panics on any disagreement.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let slices = match parse_str(FILE, text) {
        Ok(slices) => slices,
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(FILE), "{msg}");
            return;
        }
    };
    for slice in &slices {
        assert!(!slice.service.is_empty(), "{slice:?}");
        assert!(!slice.namespace.is_empty(), "{slice:?}");
        for e in &slice.endpoints {
            assert!(!e.address.is_empty(), "{slice:?}");
        }
        let mut wanted: Vec<Option<u16>> = vec![None];
        for p in &slice.ports {
            assert_ne!(p.port, Some(0), "{slice:?}");
            wanted.push(p.port);
            if let Ok(n) = p.name.parse::<u16>() {
                wanted.push(Some(n));
            }
        }
        for want in wanted {
            let endpoints = slice.endpoints_for(want);
            let Some(port) = slice.port_for(want) else {
                assert!(endpoints.is_empty(), "no port, yet endpoints: {slice:?}");
                continue;
            };
            assert_eq!(endpoints.len(), slice.endpoints.len());
            for ((addr, state), e) in endpoints.iter().zip(&slice.endpoints) {
                assert_eq!(*state, e.state);
                let authority: Authority = addr
                    .parse()
                    .unwrap_or_else(|err| panic!("{addr:?} is not an authority: {err}"));
                assert_eq!(authority.port_u16(), Some(port), "{addr:?}");
                if e.address.parse::<std::net::IpAddr>().is_ok() {
                    let sock: std::net::SocketAddr = addr
                        .parse()
                        .unwrap_or_else(|err| panic!("{addr:?} is not a socket address: {err}"));
                    assert_eq!(sock.port(), port);
                }
            }
        }
    }
}
