//! The upstream request head: the client's head with the hyper path's
//! edits ([`prepare_request`]). Written from the bytes it came in when the
//! request is the common kind (origin-form target, `Host`, no upgrade, no
//! `Via`, an untrusted peer, no stray CR dropped); otherwise encoded from
//! its `HeaderMap` after `prepare_request` itself.
//!
//! Both give the backend the same fields: the differential test compares
//! them between this path and hyper's.
//!
//! [`prepare_request`]: crate::answer::headers::prepare_request

use super::bufs::Buf;
use super::conn::Conn;
use super::encode;
use super::head::{self, Field, Framing};
use super::upstream::Connector;
use crate::answer::headers;
use crate::config::rules::Rule;
use http::header::{HOST, TRANSFER_ENCODING, VIA};
use http::{HeaderValue, Version};
use tokio::io::{AsyncRead, AsyncWrite};
use tower_sticky::policy::PersistenceType;

/// What the upstream head is made from.
pub(super) struct Request<'r> {
    pub(super) parts: &'r mut http::request::Parts,
    /// The fields where they were read in the connection's buffer.
    pub(super) fields: Option<&'r [Field]>,
    pub(super) rule: &'r Rule,
    /// The protocol the client's `Upgrade` asks for.
    pub(super) upgrade: Option<&'r HeaderValue>,
    /// The version the client spoke.
    pub(super) version: Version,
    pub(super) framing: Framing,
}

impl<C, K> Conn<'_, C, K>
where
    C: AsyncRead + AsyncWrite + Unpin,
    K: Connector,
{
    /// Encodes the upstream head into `out`, before the client's head is
    /// consumed from the buffer (module docs).
    pub(super) fn upstream_head(&self, out: &mut Vec<u8>, r: Request<'_>) {
        if let Some(fields) = r.fields
            && r.upgrade.is_none()
            && !self.client.origin.trusted
            && r.parts.uri.authority().is_none()
            && !r.parts.headers.contains_key(VIA)
            && let Some(host) = r.parts.headers.get(HOST)
            && let Some(bytes) = self.cbuf.as_ref().map(Buf::bytes)
        {
            let target = r.parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let line = (&r.parts.method, target);
            written(out, line, bytes, fields, &r, host.as_bytes(), self);
            return;
        }
        let parts = r.parts;
        let has_host = headers::prepare_request(
            &mut parts.headers,
            &parts.uri,
            &self.client.ip,
            r.upgrade,
            self.client.origin,
            r.version,
        );
        if !has_host {
            // RFC 9112 §3.2: no authority, an empty Host (as the hyper path).
            parts.headers.insert(HOST, HeaderValue::from_static(""));
        }
        if r.framing == Framing::Chunked {
            // Dropped as hop-by-hop: the body goes as it came.
            parts
                .headers
                .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        }
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        encode::request_head(out, &parts.method, target, &parts.headers);
    }
}

/// The upstream head written from the client's `bytes` (its `fields`):
/// hop-by-hop fields out, with those `Connection` names; the client's
/// `X-Forwarded-*` out; the field the session rides in as the engine left
/// it in the `HeaderMap` (the session value stripped); `Via`,
/// `X-Forwarded-*` and the body's framing in. Names lower-cased, as hyper
/// writes them.
fn written<C, K: Connector>(
    out: &mut Vec<u8>,
    (method, target): (&http::Method, &str),
    bytes: &[u8],
    fields: &[Field],
    r: &Request<'_>,
    host: &[u8],
    conn: &Conn<'_, C, K>,
) {
    out.reserve(bytes.len() + 160);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let named = head::connection_named(bytes, fields);
    // The field the session value rides in: the engine rewrote it in the
    // `HeaderMap`, so it is written from there, where it first came.
    let carrier = r.rule.target.policy().map(|p| match p.kind() {
        PersistenceType::Cookie => "cookie",
        _ => p.name(),
    });
    let mut carried = false;
    let mut buf = [0u8; encode::STACK_NAME];
    for f in fields {
        let (Some(name), Some(value)) = (bytes.get(f.name.clone()), bytes.get(f.value.clone()))
        else {
            continue;
        };
        // Longer than any name checked by its lower-case spelling.
        let lower = encode::lower_case(name, &mut buf).unwrap_or(b"");
        if headers::is_hop_by_hop_lower(lower)
            || named.iter().any(|n| n.eq_ignore_ascii_case(name))
            || headers::replaced_when_untrusted(lower)
        {
            continue;
        }
        match carrier {
            Some(c) if name.eq_ignore_ascii_case(c.as_bytes()) => {
                if !carried {
                    carried = true;
                    for v in r.parts.headers.get_all(c) {
                        encode::field_lower_case(out, c.as_bytes(), v.as_bytes());
                    }
                }
            }
            _ if lower.is_empty() => encode::field_lower_case(out, name, value),
            _ => encode::field(out, lower, value),
        }
    }
    let client = conn.client;
    headers::forwarded_lines(out, host, &client.ip, client.origin, r.version);
    if r.framing == Framing::Chunked {
        // Dropped as hop-by-hop: the body goes as it came.
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}
