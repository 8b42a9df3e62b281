//! gRPC end to end (issue 20, points 3 and 4): a real tonic client calls
//! three real tonic servers through a GRPCRoute, over h2c or TLS (ALPN
//! `h2`, certificates made by rcgen) to the gateway and h2c
//! (`--backend …=h2c://…`) to the servers. tonic's servers speak HTTP/2
//! only: a call that reached one went over HTTP/2.

use super::grpc_support::{GrpcServer, WhoClient, grpc_servers, meta};
use super::support::{Proc, gateway_with_routes};
use super::tls::Pki;
use std::collections::BTreeSet;

const SESSION: &str = "x-who-session";

/// A GRPCRoute for `test.Who` with `sessionPersistence` `persistence`
/// (a YAML flow mapping).
fn who_route(persistence: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {{name: who, namespace: default}}\nspec:\n  rules:\n  - matches: [{{method: {{service: test.Who}}}}]\n    backendRefs: [{{name: who, port: 50051}}]\n    sessionPersistence: {persistence}\n"
    )
}

fn header_gateway(backend: &str, extra: &[String]) -> Proc {
    let route = who_route(&format!("{{sessionName: {SESSION}, type: Header}}"));
    let mut args = vec!["--backend", backend];
    args.extend(extra.iter().map(String::as_str));
    gateway_with_routes(&route, &args)
}

/// The server that answered an `Ask`, and its session header, if any.
async fn ask(client: &mut WhoClient, session: Option<&str>) -> (String, Option<String>) {
    let metadata: Vec<(&str, &str)> = session.map(|s| (SESSION, s)).into_iter().collect();
    let resp = client
        .ask(&metadata)
        .await
        .expect("Ask through the gateway");
    let served_by = meta(&resp, "x-served-by");
    let server = resp.get_ref().server.clone();
    // The server's own trailer arrived, and names the server that answered.
    assert_eq!(served_by.as_deref(), Some(server.as_str()), "trailers");
    (server, meta(&resp, SESSION))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_header_sessions_over_h2c_pin_calls_and_streams_and_repin_when_the_server_dies() {
    let (servers, backend) = grpc_servers(3);
    let gw = header_gateway(&backend, &[]);
    let client = WhoClient::connect(&gw.url).await;
    header_sessions(client, servers, || WhoClient::connect(&gw.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_header_sessions_over_tls_pin_calls_and_streams_and_repin_when_the_server_dies() {
    let pki = Pki::new("gRPC CA");
    let (servers, backend) = grpc_servers(3);
    let gw = header_gateway(&backend, &pki.flags());
    let client = WhoClient::connect_tls(gw.port(), &pki.ca).await;
    header_sessions(client, servers, || {
        WhoClient::connect_tls(gw.port(), &pki.ca)
    })
    .await;
}

/// The gRPC walkthrough, on `client` (connected to a gateway with
/// the header route over `servers`; `reconnect` makes a new connection).
async fn header_sessions<F, Fut>(mut client: WhoClient, mut servers: Vec<GrpcServer>, reconnect: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = WhoClient>,
{
    // The first response's metadata carries the session header.
    let (first, header) = ask(&mut client, None).await;
    let header = header.expect("the first response carries the session header");

    // Sending it back pins 20 of 20 calls.
    for _ in 0..20 {
        let (server, _) = ask(&mut client, Some(&header)).await;
        assert_eq!(server, first, "a call with the session header moved");
    }

    // Without it, calls spread (30 new sessions over 3 servers).
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        seen.insert(ask(&mut client, None).await.0);
    }
    assert!(
        seen.len() >= 2,
        "30 calls without a session all went to {seen:?}"
    );

    // Server streaming stays on the pinned server; trailers arrive.
    let resp = client
        .count(10, &[(SESSION, header.as_str())])
        .await
        .expect("Count through the gateway");
    let mut stream = resp.into_inner();
    let mut seqs = Vec::new();
    while let Some(reply) = stream.message().await.expect("a streamed reply") {
        assert_eq!(
            reply.server, first,
            "a streamed reply came from another server"
        );
        seqs.push(reply.seq);
    }
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    let trailers = stream
        .trailers()
        .await
        .expect("trailers")
        .expect("some trailers");
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.to_str().unwrap()),
        Some("0")
    );
    assert_eq!(
        trailers.get("x-served-by").map(|v| v.to_str().unwrap()),
        Some(first.as_str())
    );

    // Killing the pinned server re-pins with a new header value.
    let pinned: &mut GrpcServer = servers.iter_mut().find(|s| s.name == first).unwrap();
    pinned.kill();
    // The client reconnects, as a gRPC channel does after UNAVAILABLE: on
    // its old connection, a call sent before the gateway has read the dead
    // server's close went out on the dead upstream connection, may have been
    // acted on, and is answered UNAVAILABLE rather than sent again (a POST,
    // RFC 9110 §9.2.2). The new connection's upstream connection is new.
    let mut client = reconnect().await;
    let (moved_to, new_header) = ask(&mut client, Some(&header)).await;
    assert_ne!(moved_to, first, "answered by the killed server");
    let new_header = new_header.expect("a re-pinned call carries a new session header");
    assert_ne!(new_header, header);
    for _ in 0..10 {
        let (server, _) = ask(&mut client, Some(&new_header)).await;
        assert_eq!(server, moved_to, "the new session moved");
    }
}

/// The session cookie of a response, as `name=value`, and the whole
/// `Set-Cookie`.
fn cookie_of<T>(resp: &tonic::Response<T>) -> (String, String) {
    let set_cookie = meta(resp, "set-cookie").expect("a Set-Cookie in the response metadata");
    let pair = set_cookie.split(';').next().unwrap().trim().to_owned();
    (pair, set_cookie)
}

/// The upstream conformance case: a cookie read from response metadata,
/// then 10 sticky calls, each on a new connection.
async fn cookie_case(persistence: &str) -> String {
    let (_servers, backend) = grpc_servers(3);
    let gw = gateway_with_routes(&who_route(persistence), &["--backend", &backend]);
    let mut client = WhoClient::connect(&gw.url).await;
    let first = client.ask(&[]).await.expect("Ask");
    let (pair, set_cookie) = cookie_of(&first);
    let server = first.get_ref().server.clone();
    for i in 0..10 {
        let mut fresh = WhoClient::connect(&gw.url).await;
        let resp = fresh.ask(&[("cookie", &pair)]).await.expect("sticky Ask");
        assert_eq!(
            resp.get_ref().server,
            server,
            "call {i} on a new connection moved"
        );
    }
    set_cookie
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_session_cookie_has_no_max_age_and_sticks_over_new_connections() {
    let set_cookie = cookie_case(
        "{sessionName: who-cookie, type: Cookie, cookieConfig: {lifetimeType: Session}}",
    )
    .await;
    assert!(set_cookie.starts_with("who-cookie="), "{set_cookie}");
    assert!(!set_cookie.contains("Max-Age"), "{set_cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_permanent_cookie_has_max_age_and_sticks_over_new_connections() {
    let set_cookie = cookie_case(
        "{sessionName: who-cookie, type: Cookie, absoluteTimeout: 1h, cookieConfig: {lifetimeType: Permanent}}",
    )
    .await;
    assert!(set_cookie.starts_with("who-cookie="), "{set_cookie}");
    assert!(set_cookie.contains("Max-Age=3600"), "{set_cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_call_with_no_backend_gets_grpc_status_unavailable() {
    // A port nothing listens on: bound, then released.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = header_gateway(&format!("who:50051=h2c://{free}"), &[]);
    let mut client = WhoClient::connect(&gw.url).await;
    // The first call finds the backend refusing (502), the next none left
    // serving (503): both are gRPC statuses, UNAVAILABLE, never plain text.
    for want in ["the backend failed to answer", "no backend available"] {
        let status = client.ask(&[]).await.expect_err("no backend can answer");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(status.message().contains(want), "{status:?}");
    }
}

/// A GRPCRoute written in `api_version` with `sessionPersistence`
/// `persistence`: the session it gives the first call sticks for 5 more.
/// Returns the first response's session header or `Set-Cookie`.
async fn sticks_with(api_version: &str, persistence: &str, carrier: &str) -> String {
    let (_servers, backend) = grpc_servers(3);
    let route = who_route(persistence).replace("gateway.networking.k8s.io/v1", api_version);
    let gw = gateway_with_routes(&route, &["--backend", &backend]);
    let mut client = WhoClient::connect(&gw.url).await;
    let first = client.ask(&[]).await.expect("Ask");
    let issued = meta(&first, carrier).unwrap_or_else(|| panic!("no {carrier} for {persistence}"));
    let sent = if carrier == "set-cookie" {
        ("cookie", issued.split(';').next().unwrap().to_owned())
    } else {
        (carrier, issued.clone())
    };
    for _ in 0..5 {
        let resp = client.ask(&[(sent.0, &sent.1)]).await.expect("sticky Ask");
        assert_eq!(
            resp.get_ref().server,
            first.get_ref().server,
            "{persistence}"
        );
    }
    issued
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_session_persistence_reads_every_schema_generation() {
    const V1: &str = "gateway.networking.k8s.io/v1";
    const V1ALPHA2: &str = "gateway.networking.k8s.io/v1alpha2";
    // v1.1–v1.5 (with idleTimeout) and v1.6: sessionName.
    let v15 = "{sessionName: x-who, type: Header, idleTimeout: 10m}";
    sticks_with(V1, v15, "x-who").await;
    // main: header.name / cookie.name; in a v1alpha2 GRPCRoute too.
    sticks_with(V1, "{type: Header, header: {name: x-who}}", "x-who").await;
    let main_cookie = "{type: Cookie, cookie: {name: who-cookie, lifetimeType: Session}}";
    let set_cookie = sticks_with(V1ALPHA2, main_cookie, "set-cookie").await;
    // main: `Path` is cookie.path or `/`.
    assert!(
        set_cookie.contains("Path=/;") || set_cookie.ends_with("Path=/"),
        "{set_cookie}"
    );
    // v1.x: `Path` follows the rule's method match (`/test.Who`).
    let v16_cookie = "{sessionName: who-cookie, type: Cookie}";
    let set_cookie = sticks_with(V1, v16_cookie, "set-cookie").await;
    assert!(set_cookie.contains("Path=/test.Who"), "{set_cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_sessions_answer_a_gone_servers_calls_with_grpc_status_unavailable() {
    let (mut servers, backend) = grpc_servers(2);
    let gw = header_gateway(&backend, &["--strict-sessions".to_owned()]);
    let mut client = WhoClient::connect(&gw.url).await;
    let (first, header) = ask(&mut client, None).await;
    let header = header.expect("a session header");
    servers.iter_mut().find(|s| s.name == first).unwrap().kill();
    // A new connection: see `header_sessions` on the old one's race.
    let mut client = WhoClient::connect(&gw.url).await;
    let status = client
        .ask(&[(SESSION, header.as_str())])
        .await
        .expect_err("strict: the session's server is gone");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("the session's backend is unavailable"),
        "{status:?}"
    );
    // A new call (no session) is still served, by the other server.
    let (other, _) = ask(&mut client, None).await;
    assert_ne!(other, first);
}

/// An EndpointSlice of Service `who` with the one endpoint `addr`, its port
/// marked `appProtocol: kubernetes.io/h2c`.
fn h2c_slice(i: usize, addr: &str) -> String {
    let (ip, port) = addr.rsplit_once(':').unwrap();
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: who-{i}\n  namespace: default\n  labels: {{kubernetes.io/service-name: who}}\naddressType: IPv4\nports: [{{name: grpc, port: {port}, appProtocol: kubernetes.io/h2c}}]\nendpoints: [{{addresses: [\"{ip}\"], conditions: {{ready: true}}}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_slices_with_the_h2c_app_protocol_carry_grpc() {
    let (servers, _) = grpc_servers(2);
    let slices: Vec<String> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| h2c_slice(i, &s.addr))
        .collect();
    let file = super::support::temp_file("slices.yaml", slices.join("---\n").as_bytes());
    let route = who_route(&format!("{{sessionName: {SESSION}, type: Header}}"));
    let gw = gateway_with_routes(&route, &["--endpoints", file.to_str().unwrap()]);
    let mut client = WhoClient::connect(&gw.url).await;
    // tonic's servers speak HTTP/2 only: an answer proves the port's
    // appProtocol made the gateway use h2c.
    let (first, header) = ask(&mut client, None).await;
    let header = header.expect("a session header");
    for _ in 0..5 {
        assert_eq!(ask(&mut client, Some(&header)).await.0, first);
    }
}
