//! DNS discovery against a real DNS server: dnsmasq (Debian's
//! `dnsmasq-base`, which `.ci/run` installs) on 127.0.0.1, answering from
//! an `--addn-hosts` file that it re-reads on SIGHUP. A machine without
//! dnsmasq fails this test loudly; it never skips.

use crate::operations::{loopback_echoes, pod_addr};
use crate::support::{
    Http, backends, cookie_route, gateway, open, state_of, temp_file, until_backends, visit,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tower_sticky_gateway::discover::dns::{DnsName, Resolver};

/// A dnsmasq serving `hosts` on 127.0.0.1, killed when dropped.
struct Dnsmasq {
    child: Child,
    port: u16,
    hosts: PathBuf,
}

/// How many ports start-up tries: a port found free may still be taken
/// by another test of the suite before dnsmasq binds it.
const START_TRIES: usize = 5;

/// What one start-up attempt on one port gave.
enum Started {
    Answering(Dnsmasq),
    /// dnsmasq exited with "Address already in use"; its log.
    PortTaken(String),
}

/// A port of 127.0.0.1 free for both UDP and TCP (dnsmasq binds both), as
/// the system picked it for UDP. Both sockets are released on return.
fn free_udp_and_tcp_port() -> u16 {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
        let port = udp.local_addr().expect("its address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port of 127.0.0.1 free for both UDP and TCP in 100 tries");
}

fn dnsmasq_bin() -> &'static str {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!(
                "dnsmasq not found: this test needs a real DNS server; \
                 install it with `apt-get install -y dnsmasq-base` (.ci/run does)"
            )
        })
}

impl Dnsmasq {
    /// Starts dnsmasq on a free port, and on a new one (up to
    /// [`START_TRIES`]) when another test took the port first.
    async fn start(hosts: &str) -> Dnsmasq {
        let hosts_file = temp_file("hosts", hosts.as_bytes());
        let mut taken = Vec::new();
        for _ in 0..START_TRIES {
            let port = free_udp_and_tcp_port();
            match Self::start_on(port, hosts_file.clone()).await {
                Started::Answering(d) => return d,
                Started::PortTaken(log) => taken.push(format!("port {port}: {log}")),
            }
        }
        panic!(
            "dnsmasq found each of {START_TRIES} ports taken: {}",
            taken.join("; ")
        );
    }

    /// Starts dnsmasq on `port`; returns once it answers, or when it exits
    /// because the port is taken. Any other exit, or no answer within 20 s,
    /// fails the test.
    async fn start_on(port: u16, hosts: PathBuf) -> Started {
        let bin = dnsmasq_bin();
        let log = temp_file("dnsmasq.log", b"");
        let child = Command::new(bin)
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--user=root",
                "--pid-file=",
                "--local-ttl=0",
                &format!("--port={port}"),
                &format!("--addn-hosts={}", hosts.display()),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let mut d = Dnsmasq { child, port, hosts };
        // Ready once it answers.
        let resolver = Resolver::new(Some(d.addr())).expect("resolver");
        let name = DnsName::parse(&format!("backend.test:{port}")).expect("name");
        let deadline = Instant::now() + Duration::from_secs(20);
        while resolver.resolve(&name).await.is_err() {
            if let Ok(Some(status)) = d.child.try_wait() {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                if said.contains("Address already in use") {
                    return Started::PortTaken(said);
                }
                panic!("dnsmasq exited ({status}): {said}");
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq on port {port} does not answer: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Started::Answering(d)
    }

    fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// New hosts file contents, re-read on SIGHUP.
    fn set_hosts(&self, hosts: &str) {
        std::fs::write(&self.hosts, hosts).expect("hosts");
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "SIGHUP to dnsmasq");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn dns_backends_follow_a_real_dns_server_and_keep_the_last_good_set() {
    let (_pods, port) = loopback_echoes(3);
    let mut dns = Dnsmasq::start("127.0.0.2 backend.test\n127.0.0.3 backend.test\n").await;
    let route = cookie_route(
        "app",
        "        sessionName: Session-A\n        type: Cookie\n",
    );
    let route = temp_file("route.yaml", route.as_bytes());
    let gw = gateway(&[
        "--route",
        route.to_str().expect("utf-8"),
        "--backend",
        &format!("backend:3000=dns:backend.test:{port}"),
        "--resolver",
        &dns.addr().to_string(),
        "--dns-refresh",
        "500ms",
        "--admin",
        "127.0.0.1:0",
    ]);
    let http = Http::new();
    let list = backends(&http, &gw).await;
    assert_eq!(list.len(), 2, "{list:#?}");
    let sessions = open(&http, &gw, 12).await;
    assert!(sessions.iter().any(|s| s.pod == "pod-0"));
    assert!(sessions.iter().any(|s| s.pod == "pod-1"));

    // A third address: it joins, no session moves.
    dns.set_hosts("127.0.0.2 backend.test\n127.0.0.3 backend.test\n127.0.0.4 backend.test\n");
    let third = pod_addr(2, port);
    until_backends(&http, &gw, "127.0.0.4 joins", |l| {
        state_of(l, &third).as_deref() == Some("serving")
    })
    .await;
    for s in &sessions {
        let r = visit(&http, &gw, s).await;
        assert_eq!((r.status.as_u16(), r.pod()), (200, s.pod.clone()));
        assert_eq!(r.set_cookie(), None);
    }

    // The first address leaves: only its sessions move, with new cookies.
    dns.set_hosts("127.0.0.3 backend.test\n127.0.0.4 backend.test\n");
    let first = pod_addr(0, port);
    until_backends(&http, &gw, "127.0.0.2 leaves", |l| {
        state_of(l, &first).is_none()
    })
    .await;
    for s in &sessions {
        let r = visit(&http, &gw, s).await;
        assert_eq!(r.status, 200);
        if s.pod == "pod-0" {
            assert_ne!(r.pod(), "pod-0");
            assert!(r.set_cookie().is_some());
        } else {
            assert_eq!(r.pod(), s.pod);
        }
    }

    // The server goes away: the last good set stays, and the log says so.
    dns.stop();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !gw.logs().contains("keeping the last good set") {
        assert!(Instant::now() < deadline, "{}", gw.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(backends(&http, &gw).await.len(), 2);
    for s in sessions.iter().filter(|s| s.pod != "pod-0") {
        let r = visit(&http, &gw, s).await;
        assert_eq!((r.status.as_u16(), r.pod()), (200, s.pod.clone()));
    }
}

/// The retry above rests on telling a taken port apart from any other
/// failure: with the TCP side of its port held, dnsmasq must give
/// `PortTaken`, not panic nor answer.
#[tokio::test]
async fn dns_server_start_up_tells_a_port_taken_for_tcp_apart() {
    // Held from the start: released, another test might take it first.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("a TCP port");
    let port = held.local_addr().expect("its address").port();
    let hosts = temp_file("hosts", b"127.0.0.2 backend.test\n");
    match Dnsmasq::start_on(port, hosts).await {
        Started::PortTaken(log) => assert!(log.contains("127.0.0.1"), "{log}"),
        Started::Answering(_) => panic!("dnsmasq answered on port {port}, whose TCP side is held"),
    }
}
