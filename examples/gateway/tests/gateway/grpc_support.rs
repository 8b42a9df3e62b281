//! A real gRPC service for the gRPC tests, without protoc: `test.Who` with
//! hand-derived prost messages and tonic's server and client machinery
//! (what tonic-build would generate, written out).
//!
//! * `Ask` (unary) answers with the server's name;
//! * `Count` (server streaming) answers `count` messages with the server's
//!   name and a sequence number.
//!
//! Every response also ends with an `x-served-by` **trailer** the server adds
//! after tonic's `grpc-status`, so a test can tell that trailers crossed the
//! gateway untouched.
//!
//! Each server runs on a runtime of its own, on its own thread: [`GrpcServer::kill`]
//! drops the runtime, which closes its listener and every connection at
//! once, as a crashed pod would.

use http::HeaderValue;
use http::uri::PathAndQuery;
use hyper::body::{Body as HttpBody, Frame};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::codegen::tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

/// `test.Who/Ask` and `/Count` request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WhoRequest {
    /// How many messages `Count` sends.
    #[prost(uint32, tag = "1")]
    pub count: u32,
}

/// A reply: who answered, and its place in a stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WhoReply {
    /// The server's name.
    #[prost(string, tag = "1")]
    pub server: String,
    /// 0, 1, … within a `Count` stream.
    #[prost(uint32, tag = "2")]
    pub seq: u32,
}

pub const SERVICE: &str = "test.Who";
const ASK: &str = "/test.Who/Ask";
const COUNT: &str = "/test.Who/Count";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type ReplyStream =
    Pin<Box<dyn tonic::codegen::tokio_stream::Stream<Item = Result<WhoReply, Status>> + Send>>;

/// The `test.Who` service of one server.
#[derive(Clone)]
struct Who {
    name: Arc<str>,
}

impl tonic::server::NamedService for Who {
    const NAME: &'static str = SERVICE;
}

struct Ask(Arc<str>);

impl tonic::server::UnaryService<WhoRequest> for Ask {
    type Response = WhoReply;
    type Future = BoxFuture<Result<Response<WhoReply>, Status>>;
    fn call(&mut self, _req: Request<WhoRequest>) -> Self::Future {
        let server = self.0.to_string();
        Box::pin(async move { Ok(Response::new(WhoReply { server, seq: 0 })) })
    }
}

struct Count(Arc<str>);

impl tonic::server::ServerStreamingService<WhoRequest> for Count {
    type Response = WhoReply;
    type ResponseStream = ReplyStream;
    type Future = BoxFuture<Result<Response<ReplyStream>, Status>>;
    fn call(&mut self, req: Request<WhoRequest>) -> Self::Future {
        let server = self.0.to_string();
        let count = req.get_ref().count.min(100);
        Box::pin(async move {
            let replies = (0..count).map(move |seq| {
                Ok(WhoReply {
                    server: server.clone(),
                    seq,
                })
            });
            let stream: ReplyStream = Box::pin(tonic::codegen::tokio_stream::iter(replies));
            Ok(Response::new(stream))
        })
    }
}

impl<B> tonic::codegen::Service<http::Request<B>> for Who
where
    B: HttpBody + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let name = Arc::clone(&self.name);
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<WhoReply, WhoRequest>::default());
            let resp = match req.uri().path() {
                ASK => grpc.unary(Ask(Arc::clone(&name)), req).await,
                COUNT => grpc.server_streaming(Count(Arc::clone(&name)), req).await,
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok(resp.map(|body| tonic::body::Body::new(ServedBy { inner: body, name })))
        })
    }
}

/// A response body that adds `x-served-by` to its trailers.
struct ServedBy {
    inner: tonic::body::Body,
    name: Arc<str>,
}

impl HttpBody for ServedBy {
    type Data = hyper::body::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let name = Arc::clone(&self.name);
        Pin::new(&mut self.inner).poll_frame(cx).map(|frame| {
            frame.map(|f| {
                f.map(|f| match f.into_trailers() {
                    Ok(mut trailers) => {
                        let value = HeaderValue::from_str(&name).expect("a header value");
                        trailers.insert("x-served-by", value);
                        Frame::trailers(trailers)
                    }
                    Err(f) => f,
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A `test.Who` server on 127.0.0.1, on a runtime of its own.
pub struct GrpcServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its name, as its replies give it.
    pub name: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GrpcServer {
    /// Starts `name` on an ephemeral port (h2c).
    pub fn start(name: &str) -> GrpcServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let who = Who { name: name.into() };
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let serve = tonic::transport::Server::builder()
                    .add_service(who)
                    .serve_with_incoming(TcpListenerStream::new(listener));
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime drops every connection's task: their
            // sockets close now, not after a graceful drain.
            drop(rt);
        });
        GrpcServer {
            addr,
            name: name.to_owned(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops it as a crash would: listener and connections closed at once.
    pub fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `n` servers `grpc-0`… and the `--backend who:50051=h2c://…` flag.
pub fn grpc_servers(n: usize) -> (Vec<GrpcServer>, String) {
    let servers: Vec<GrpcServer> = (0..n)
        .map(|i| GrpcServer::start(&format!("grpc-{i}")))
        .collect();
    let endpoints: Vec<String> = servers
        .iter()
        .map(|s| format!("h2c://{}", s.addr))
        .collect();
    (servers, format!("who:50051={}", endpoints.join(",")))
}

/// A tonic client of `test.Who` on one connection (a channel) to `url`.
pub struct WhoClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
}

impl WhoClient {
    /// Connects to `url` (`http://127.0.0.1:PORT`: h2c).
    pub async fn connect(url: &str) -> WhoClient {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
            .expect("url")
            .connect()
            .await
            .expect("connect to the gateway");
        WhoClient {
            grpc: tonic::client::Grpc::new(channel),
        }
    }

    /// Connects over TLS (ALPN `h2`) to the gateway at 127.0.0.1:`port`,
    /// trusting the CA in the PEM file `ca` for the name `localhost`.
    pub async fn connect_tls(port: u16, ca: &std::path::Path) -> WhoClient {
        let pem = std::fs::read(ca).expect("CA file");
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(pem))
            .domain_name("localhost");
        let channel = tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
            .expect("url")
            .tls_config(tls)
            .expect("TLS config")
            .connect()
            .await
            .expect("connect to the gateway over TLS");
        WhoClient {
            grpc: tonic::client::Grpc::new(channel),
        }
    }

    /// `Ask` with `metadata` (name, value).
    pub async fn ask(&mut self, metadata: &[(&str, &str)]) -> Result<Response<WhoReply>, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let req = with_metadata(WhoRequest { count: 0 }, metadata);
        let codec = ProstCodec::<WhoRequest, WhoReply>::default();
        self.grpc
            .unary(req, PathAndQuery::from_static(ASK), codec)
            .await
    }

    /// `Count` with `metadata`.
    pub async fn count(
        &mut self,
        count: u32,
        metadata: &[(&str, &str)],
    ) -> Result<Response<Streaming<WhoReply>>, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let req = with_metadata(WhoRequest { count }, metadata);
        let codec = ProstCodec::<WhoRequest, WhoReply>::default();
        self.grpc
            .server_streaming(req, PathAndQuery::from_static(COUNT), codec)
            .await
    }
}

fn with_metadata(msg: WhoRequest, metadata: &[(&str, &str)]) -> Request<WhoRequest> {
    let mut req = Request::new(msg);
    for (name, value) in metadata {
        let name: tonic::metadata::MetadataKey<tonic::metadata::Ascii> =
            name.parse().expect("metadata name");
        req.metadata_mut()
            .insert(name, value.parse().expect("metadata value"));
    }
    req
}

/// The value of metadata `name` of a response, if any.
pub fn meta<T>(resp: &Response<T>, name: &str) -> Option<String> {
    resp.metadata()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
