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

impl Dnsmasq {
    async fn start(hosts: &str) -> Dnsmasq {
        let bin = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!(
                    "dnsmasq not found: this test needs a real DNS server; \
                     install it with `apt-get install -y dnsmasq-base` (.ci/run does)"
                )
            });
        let hosts_file = temp_file("hosts", hosts.as_bytes());
        // A free UDP port (dnsmasq also binds TCP on it).
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port")
            .port();
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
                &format!("--addn-hosts={}", hosts_file.display()),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let mut d = Dnsmasq {
            child,
            port,
            hosts: hosts_file,
        };
        // Ready once it answers.
        let resolver = Resolver::new(Some(d.addr())).expect("resolver");
        let name = DnsName::parse(&format!("backend.test:{port}")).expect("name");
        let deadline = Instant::now() + Duration::from_secs(20);
        while resolver.resolve(&name).await.is_err() {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!(
                    "dnsmasq exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq on port {port} does not answer: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        d
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
