//! Issue 20, point 5: WebSocket (RFC 6455) for real, with tokio-tungstenite
//! on both ends: echo servers behind the gateway, a client in front, over
//! `ws://` and `wss://`; and WebSocket over HTTP/2 (RFC 8441 extended
//! CONNECT, hyper's client) over h2c and TLS, to the same HTTP/1.1 servers.

use crate::support::{Proc, gateway, seed_route};
use crate::tls::Pki;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// A WebSocket echo server called `pod` on 127.0.0.1 (on this test's
/// runtime): its handshake answers with `X-Pod: <pod>`, and it sends every
/// text and binary message back. Returns its address.
async fn ws_echo(pod: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // tungstenite's callback type, error response included.
                #[allow(clippy::result_large_err)]
                let tag = |_: &Request, mut resp: Response| {
                    resp.headers_mut()
                        .insert("x-pod", HeaderValue::from_static(pod));
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, tag).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Three echo servers, and the gateway on the seed's cookie route over
/// them with `extra` flags.
async fn gateway_over_ws_echoes(extra: &[String]) -> Proc {
    let mut addrs = Vec::new();
    for pod in ["ws-0", "ws-1", "ws-2"] {
        addrs.push(ws_echo(pod).await);
    }
    let route = seed_route("1h");
    let backend = format!("backend={}", addrs.join(","));
    let mut args = vec!["--route", route.as_str(), "--backend", backend.as_str()];
    args.extend(extra.iter().map(String::as_str));
    gateway(&args)
}

/// One WebSocket session through the gateway: the handshake (with
/// `cookie`, if given) over `io`; 100 messages echoed. Returns the pod and
/// the `Set-Cookie` of the `101`.
async fn session<S>(io: S, url: &str, cookie: Option<&str>) -> (String, Option<String>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut req = url.into_client_request().expect("request");
    if let Some(c) = cookie {
        req.headers_mut()
            .insert("cookie", HeaderValue::from_str(c).expect("cookie"));
    }
    let (mut ws, resp) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::client_async(req, io),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    assert_eq!(resp.status(), 101);
    let (pod, set_cookie) = pod_and_cookie(resp.headers());
    echo_100(&mut ws, &pod).await;
    ws.close(None).await.expect("close");
    (pod, set_cookie)
}

/// The echo server's name (`X-Pod`) and the session cookie, if any, of a
/// handshake's answer.
fn pod_and_cookie(headers: &http::HeaderMap) -> (String, Option<String>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let pod = header("x-pod").expect("x-pod from the echo server");
    (pod, header("set-cookie"))
}

/// 100 messages, each echoed back.
async fn echo_100<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, pod: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    for i in 0..100 {
        let text = format!("message {i} via {pod}");
        ws.send(Message::text(text.clone())).await.expect("send");
        let echoed = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("echo in time")
            .expect("an echo")
            .expect("a message");
        assert_eq!(echoed, Message::Text(Utf8Bytes::from(text)));
    }
}

/// One WebSocket session over HTTP/2 (RFC 8441) through the gateway, on a
/// new HTTP/2 connection over `io`: an extended CONNECT (with `cookie`, if
/// given), then 100 messages echoed. Returns the pod and the `Set-Cookie`
/// of the `200`.
async fn h2_session<S>(
    io: S,
    scheme: &str,
    authority: &str,
    cookie: Option<&str>,
) -> (String, Option<String>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let connect = || {
        let mut req = hyper::Request::builder()
            .method("CONNECT")
            .uri(format!("{scheme}://{authority}/chat"))
            .header("sec-websocket-version", "13")
            .extension(hyper::ext::Protocol::from_static("websocket"));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .expect("request")
    };
    // Refused by the client until the gateway's SETTINGS have said
    // ENABLE_CONNECT_PROTOCOL: tried again until then.
    let mut resp = crate::support::eventually(Duration::from_secs(20), "extended CONNECT", || {
        let sent = send.send_request(connect());
        async move { sent.await.ok() }
    })
    .await;
    assert_eq!(resp.status(), 200, "{resp:?}");
    let (pod, set_cookie) = pod_and_cookie(resp.headers());
    let stream = hyper::upgrade::on(&mut resp)
        .await
        .expect("the stream opens");
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        TokioIo::new(stream),
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    echo_100(&mut ws, &pod).await;
    ws.close(None).await.expect("close");
    (pod, set_cookie)
}

/// The checks of the issue over `connect` (a new connection to the
/// gateway each time): a handshake without a cookie gets one on its
/// `101`, and five more connections with it reach the same server.
async fn sticky_websockets<O, F>(open: O, secure: bool)
where
    O: Fn(Option<String>) -> F,
    F: std::future::Future<Output = (String, Option<String>)>,
{
    let (pod, set_cookie) = open(None).await;
    let set_cookie = set_cookie.expect("the 101 carries the session cookie");
    assert!(set_cookie.starts_with("Session-A="), "{set_cookie}");
    assert_eq!(set_cookie.ends_with("; Secure"), secure, "{set_cookie}");
    let pair = set_cookie.split(';').next().expect("pair").to_owned();
    for _ in 0..5 {
        let (again, renewed) = open(Some(pair.clone())).await;
        assert_eq!(again, pod, "the session's server");
        assert_eq!(renewed, None, "a resumed session gets no new cookie");
    }
    // Without the cookie, new sessions spread over the servers.
    let mut pods = std::collections::BTreeSet::new();
    for _ in 0..12 {
        pods.insert(open(None).await.0);
    }
    assert!(pods.len() >= 2, "{pods:?}");
}

#[tokio::test]
async fn websockets_stick_to_their_server_over_ws_and_h2c() {
    let gw = gateway_over_ws_echoes(&[]).await;
    let url = format!("ws://{}/chat", gw.addr);
    let addr = gw.addr.clone();
    let open = |cookie: Option<String>| {
        let (url, addr) = (url.clone(), addr.clone());
        async move {
            let tcp = TcpStream::connect(&addr).await.expect("connect");
            session(tcp, &url, cookie.as_deref()).await
        }
    };
    sticky_websockets(open, false).await;
    // RFC 8441 over h2c: the same, through an extended CONNECT.
    let open = |cookie: Option<String>| {
        let addr = addr.clone();
        async move {
            let tcp = TcpStream::connect(&addr).await.expect("connect");
            h2_session(tcp, "http", &addr, cookie.as_deref()).await
        }
    };
    sticky_websockets(open, false).await;
}

#[tokio::test]
async fn websockets_stick_to_their_server_over_wss_and_h2_tls() {
    let pki = Pki::new("wss CA");
    let gw = gateway_over_ws_echoes(&pki.flags()).await;
    let port = gw.port();
    let url = format!("wss://localhost:{port}/chat");
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(&pki.ca).expect("CA");
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    #[allow(deprecated)] // the gateway's provider (see config/certs.rs)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // RFC 6455 runs over HTTP/1.1, RFC 8441 over h2: what ALPN offers.
    let connector = |alpn: &[u8]| {
        let mut config = config.clone();
        config.alpn_protocols = vec![alpn.to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(config))
    };
    let (http1, h2) = (connector(b"http/1.1"), connector(b"h2"));
    let tls = |connector: tokio_rustls::TlsConnector| async move {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        connector.connect(name, tcp).await.expect("TLS handshake")
    };
    let open = |cookie: Option<String>| {
        let (url, io) = (url.clone(), tls(http1.clone()));
        async move { session(io.await, &url, cookie.as_deref()).await }
    };
    sticky_websockets(open, true).await;
    let authority = format!("localhost:{port}");
    let open = |cookie: Option<String>| {
        let (authority, io) = (authority.clone(), tls(h2.clone()));
        async move {
            let io = io.await;
            assert_eq!(io.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
            h2_session(io, "https", &authority, cookie.as_deref()).await
        }
    };
    sticky_websockets(open, true).await;
}
