//! Issue 20, points 1 and 2: HTTPS with real `curl`, trusted proxies,
//! certificate reload, start-up refusals and the cookie's attributes.
//! Certificates are made here with rcgen: a CA, and a leaf for
//! `localhost` and 127.0.0.1 signed by it.

use crate::counters::sum;
use crate::support::{Http, Proc, eventually, gateway, gateway_fails, seed_route, temp_file};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A CA and a server certificate it signed, as PEM files.
pub struct Pki {
    /// The CA certificate, for `curl --cacert` and rustls clients.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// A new CA (called `name`) and a leaf for `localhost` and 127.0.0.1.
    pub fn new(name: &str) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA");
        let key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("leaf params")
            .signed_by(&key, &ca)
            .expect("leaf");
        Pki {
            ca: temp_file("ca.pem", ca.pem().as_bytes()),
            cert: temp_file("cert.pem", leaf.pem().as_bytes()),
            key: temp_file("key.pem", key.serialize_pem().as_bytes()),
        }
    }

    /// `--tls-cert … --tls-key …`.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            path(&self.cert),
            "--tls-key".into(),
            path(&self.key),
        ]
    }
}

fn path(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

/// A gateway on the seed's cookie route over in-process echo replicas
/// (they reflect the headers they got), with `extra` flags.
pub fn seed_over_echo(extra: &[String]) -> Proc {
    let route = seed_route("1h");
    let mut args = vec!["--route".to_owned(), route];
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    gateway(&args)
}

/// What one `curl` printed.
#[derive(Debug)]
struct Curl {
    /// The response head.
    head: String,
    body: String,
    /// `%{http_version}`: `1.1`, `2`.
    version: String,
    ok: bool,
    /// Shown by `Debug` when an assertion fails.
    #[allow(dead_code)]
    stderr: String,
}

impl Curl {
    fn set_cookie(&self) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not echo JSON ({e}): {self:?}"))
    }

    fn pod(&self) -> String {
        self.json()["pod"].as_str().unwrap_or_default().to_owned()
    }

    fn seen(&self, header: &str) -> Option<String> {
        self.json()["headers"][header][0]
            .as_str()
            .map(str::to_owned)
    }
}

/// `curl -sS` with `args` (at most 20 s).
fn curl(args: &[&str]) -> Curl {
    let head = temp_file("head.txt", b"");
    let body = temp_file("body.txt", b"");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_version}"])
        .args(args)
        .output()
        .expect("run curl");
    Curl {
        head: std::fs::read_to_string(&head).unwrap_or_default(),
        body: std::fs::read_to_string(&body).unwrap_or_default(),
        version: String::from_utf8_lossy(&out.stdout).into_owned(),
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn https(gw: &Proc) -> String {
    format!("https://localhost:{}/get", gw.port())
}

/// `--resolve` so that `localhost` is 127.0.0.1 whatever the resolver says.
fn resolve(gw: &Proc) -> String {
    format!("localhost:{}:127.0.0.1", gw.port())
}

#[test]
fn the_seed_cookie_walkthrough_over_https_with_curl() {
    let pki = Pki::new("walkthrough CA");
    let gw = seed_over_echo(&pki.flags());
    assert!(gw.url.starts_with("https://"), "{}", gw.url);
    assert_eq!(gw.addr, format!("127.0.0.1:{}", gw.port()));
    let (ca, resolve, url) = (path(&pki.ca), resolve(&gw), https(&gw));
    let base = ["--cacert", ca.as_str(), "--resolve", resolve.as_str()];

    let first = curl(&[&base[..], &["--http1.1", url.as_str()]].concat());
    assert!(first.ok, "{first:?}");
    assert_eq!(first.version, "1.1");
    let set_cookie = first.set_cookie().expect("a session cookie");
    assert!(
        set_cookie.starts_with("Session-A=")
            && set_cookie.ends_with("; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax; Secure"),
        "{set_cookie}"
    );
    assert_eq!(first.seen("x-forwarded-proto").as_deref(), Some("https"));
    // The seed's loop: five requests with the cookie, one pod.
    let cookie = format!("Cookie: {}", set_cookie.split(';').next().expect("pair"));
    let pod = first.pod();
    for _ in 0..5 {
        let r = curl(&[&base[..], &["-H", cookie.as_str(), url.as_str()]].concat());
        assert!(r.ok, "{r:?}");
        assert_eq!(r.pod(), pod, "{r:?}");
        assert_eq!(r.set_cookie(), None, "a resumed session gets no new cookie");
        assert_eq!(r.seen("x-forwarded-proto").as_deref(), Some("https"));
    }
    // HTTP/2 through ALPN, the session kept.
    let h2 = curl(&[&base[..], &["--http2", "-H", cookie.as_str(), url.as_str()]].concat());
    assert!(h2.ok, "{h2:?}");
    assert_eq!(h2.version, "2", "{h2:?}");
    assert_eq!(h2.pod(), pod);
    // A new HTTP/2 client gets a Secure cookie too.
    let h2_new = curl(&[&base[..], &["--http2", url.as_str()]].concat());
    assert_eq!(h2_new.version, "2");
    assert!(
        h2_new.set_cookie().is_some_and(|c| c.ends_with("; Secure")),
        "{h2_new:?}"
    );
    // The seed's lines themselves, `curl --cacert` over HTTPS.
    let script = format!(
        r#"CURL="curl --cacert {ca} --resolve {resolve}"
COOKIE=$($CURL --verbose {url} 2>&1 | grep "set-cookie" | awk '{{print $3}}')
for i in `seq 5`; do
    $CURL -H "Cookie: $COOKIE" {url} 2>/dev/null | grep pod
done
$CURL --verbose {url} 2>&1 | grep "set-cookie"
"#
    );
    let out = crate::support::bash(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines[..5].iter().all(|l| *l == lines[0]), "one pod: {out}");
    assert!(lines[0].starts_with(" \"pod\": \"backend-"), "{out}");
    assert!(lines[5].trim_end().ends_with("; Secure"), "{out}");
    // A client that does not trust the CA gets no answer.
    let untrusted = curl(&["--resolve", resolve.as_str(), url.as_str()]);
    assert!(!untrusted.ok, "{untrusted:?}");
}

#[tokio::test]
async fn forwarded_headers_are_kept_from_trusted_proxies_only() {
    let http = Http::new();
    let forwarded = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "203.0.113.9"),
    ];
    // Not trusted (10.0.0.0/8 does not hold 127.0.0.1): replaced.
    let gw = seed_over_echo(&["--trusted-proxies".into(), "10.0.0.0/8".into()]);
    let r = http.get(&format!("{}/get", gw.url), &forwarded).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.seen_header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        r.seen_header("x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    let cookie = r.set_cookie().expect("cookie");
    assert!(!cookie.contains("Secure"), "{cookie}");

    // Trusted: kept, and `https` from it makes the cookie Secure.
    let gw = seed_over_echo(&["--trusted-proxies".into(), "10.0.0.0/8,127.0.0.1/32".into()]);
    let r = http.get(&format!("{}/get", gw.url), &forwarded).await;
    assert_eq!(r.seen_header("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(
        r.seen_header("x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1")
    );
    let cookie = r.set_cookie().expect("cookie");
    assert!(cookie.ends_with("; SameSite=Lax; Secure"), "{cookie}");
    // A trusted proxy that says nothing: the connection's own scheme.
    let r = http.get(&format!("{}/get", gw.url), &[]).await;
    assert_eq!(r.seen_header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        r.seen_header("x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert!(!r.set_cookie().expect("cookie").contains("Secure"));
}

/// Whether a client trusting `ca` completes a request.
fn served_with(gw: &Proc, ca: &Path) -> bool {
    get_with(gw, ca, &[]).ok
}

/// A request from a client trusting `ca`, with `extra` curl arguments.
fn get_with(gw: &Proc, ca: &Path, extra: &[&str]) -> Curl {
    let (ca, resolve, url) = (path(ca), resolve(gw), https(gw));
    let base = ["--cacert", ca.as_str(), "--resolve", resolve.as_str()];
    curl(&[&base[..], extra, &[url.as_str()]].concat())
}

#[tokio::test]
async fn certificates_reload_on_sighup_and_a_broken_pair_keeps_the_old_one() {
    let http = Http::new();
    let first = Pki::new("first CA");
    let mut flags = first.flags();
    flags.extend(["--admin".into(), "127.0.0.1:0".into()]);
    let gw = seed_over_echo(&flags);
    let session = get_with(&gw, &first.ca, &[]);
    let cookie = format!(
        "Cookie: {}",
        session
            .set_cookie()
            .expect("cookie")
            .split(';')
            .next()
            .expect("pair")
    );

    // New files in place, then SIGHUP: the new certificate serves.
    let second = Pki::new("second CA");
    std::fs::copy(&second.cert, &first.cert).expect("swap cert");
    std::fs::copy(&second.key, &first.key).expect("swap key");
    assert!(
        served_with(&gw, &first.ca),
        "nothing changes before the reload"
    );
    gw.signal("HUP");
    eventually(Duration::from_secs(20), "the new certificate", || async {
        served_with(&gw, &second.ca).then_some(())
    })
    .await;
    assert!(!served_with(&gw, &first.ca));
    // Sessions outlive the certificate.
    let resumed = get_with(&gw, &second.ca, &["-H", cookie.as_str()]);
    assert_eq!(resumed.pod(), session.pod(), "{resumed:?}");
    assert_eq!(resumed.set_cookie(), None);

    // A broken key: the reload fails naming the file, the pair serves on.
    std::fs::write(&first.key, b"-----BEGIN PRIVATE KEY-----\nnot a key\n").expect("break key");
    let admin = gw.admin.clone().expect("--admin");
    let r = http
        .send("POST", &format!("{admin}/reload"), &[], Default::default())
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains(&path(&first.key)), "{}", r.body);
    assert!(r.body.contains("--tls-key"), "{}", r.body);
    assert!(served_with(&gw, &second.ca));
    gw.signal("HUP");
    eventually(
        Duration::from_secs(20),
        "the failed SIGHUP reload counted",
        || async {
            let failed = sum(&http, &gw, "gateway_reloads_total", &[("result", "failed")]).await;
            (failed >= 2.0).then_some(())
        },
    )
    .await;
    assert!(served_with(&gw, &second.ca));
    // A key of another pair: refused too.
    let third = Pki::new("third CA");
    std::fs::copy(&third.key, &first.key).expect("mismatched key");
    let r = http
        .send("POST", &format!("{admin}/reload"), &[], Default::default())
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains(&path(&first.cert)), "{}", r.body);
    assert!(served_with(&gw, &second.ca));
}

#[test]
fn a_missing_or_malformed_certificate_or_key_stops_start_up_naming_the_file() {
    let pki = Pki::new("start-up CA");
    let (cert, key) = (path(&pki.cert), path(&pki.key));
    let missing = path(&temp_file("x", b"").with_file_name("missing.pem"));
    let err = gateway_fails(&["--tls-cert", &missing, "--tls-key", &key]);
    assert!(err.contains(&format!("--tls-cert {missing}")), "{err}");
    let err = gateway_fails(&["--tls-cert", &cert, "--tls-key", &missing]);
    assert!(err.contains(&format!("--tls-key {missing}")), "{err}");
    let garbage = path(&temp_file("garbage.pem", b"hello\n"));
    let err = gateway_fails(&["--tls-cert", &garbage, "--tls-key", &key]);
    assert!(
        err.contains(&format!("--tls-cert {garbage}: no PEM CERTIFICATE")),
        "{err}"
    );
    let err = gateway_fails(&["--tls-cert", &cert, "--tls-key", &garbage]);
    assert!(
        err.contains(&format!("--tls-key {garbage}: no usable PEM private key")),
        "{err}"
    );
    // The key and the certificate swapped.
    let err = gateway_fails(&["--tls-cert", &key, "--tls-key", &cert]);
    assert!(err.contains(&format!("--tls-cert {key}")), "{err}");
    // One without the other.
    let err = gateway_fails(&["--tls-cert", &cert]);
    assert!(err.contains("--tls-key"), "{err}");
}

#[test]
fn same_site_none_without_secure_is_refused_at_start_up() {
    let err = gateway_fails(&["--cookie-same-site", "none"]);
    assert!(
        err.contains("--cookie-same-site none needs Secure"),
        "{err}"
    );
    let err = gateway_fails(&["--cookie-partitioned"]);
    assert!(err.contains("--cookie-partitioned needs Secure"), "{err}");
    let err = gateway_fails(&["--cookie-same-site", "sometimes"]);
    assert!(err.contains("--cookie-same-site"), "{err}");
    let err = gateway_fails(&["--cookie-domain", "shop example"]);
    assert!(err.contains("--cookie-domain"), "{err}");
}

#[tokio::test]
async fn cookie_attributes_come_from_the_flags() {
    let http = Http::new();
    let flags = [
        "--cookie-same-site",
        "none",
        "--cookie-secure",
        "always",
        "--cookie-domain",
        "shop.example",
        "--cookie-partitioned",
    ]
    .map(String::from);
    let gw = seed_over_echo(&flags);
    let r = http.get(&format!("{}/get", gw.url), &[]).await;
    let cookie = r.set_cookie().expect("cookie");
    assert!(
        cookie.starts_with("Session-A=")
            && cookie.ends_with(
                "; Max-Age=3600; Path=/; Domain=shop.example; HttpOnly; SameSite=None; Secure; Partitioned"
            ),
        "{cookie}"
    );
    // The session works with it.
    let pair = r.cookie_pair().expect("pair");
    let again = http
        .get(&format!("{}/get", gw.url), &[("cookie", pair.as_str())])
        .await;
    assert_eq!(again.pod(), r.pod());

    // Strict over TLS, `auto`: Secure because the connection is TLS.
    let pki = Pki::new("strict CA");
    let mut flags = pki.flags();
    flags.extend(["--cookie-same-site".into(), "strict".into()]);
    let gw = seed_over_echo(&flags);
    let (ca, resolve, url) = (path(&pki.ca), resolve(&gw), https(&gw));
    let r = curl(&["--cacert", &ca, "--resolve", &resolve, &url]);
    assert!(
        r.set_cookie()
            .is_some_and(|c| c.ends_with("; HttpOnly; SameSite=Strict; Secure")),
        "{r:?}"
    );
}
