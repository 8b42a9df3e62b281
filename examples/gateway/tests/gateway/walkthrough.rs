//! Issue item 1: the seed's walkthroughs, verbatim, with real `curl`.

use crate::counters::outcome_total;
use crate::support::{Http, bash, gateway, seed_lines, temp_file};

/// The seed's cookie walkthrough, as printed (first block).
const COOKIE_LINES: &str = r#"COOKIE=$(curl --verbose http://localhost:8888/get 2>&1 | grep "set-cookie" | awk '{print $3}')
for i in `seq 5`; do
    curl -H "Cookie: $COOKIE" http://localhost:8888/get 2>/dev/null | grep pod
done
"#;

/// The seed's "wait for cookie expiration" block.
const COOKIE_EXPIRY_LINES: &str = r#"sleep 10 && for i in `seq 5`; do
    curl -H "Cookie: $COOKIE" -H "Host: www.example.com" http://localhost:8888/get 2>/dev/null | grep pod
done
"#;

/// The seed's header walkthrough.
const HEADER_LINES: &str = r#"HEADER=$(curl --verbose http://localhost:8888/get 2>&1 | grep "session-a" | awk '{print $3}')
for i in `seq 5`; do
    curl -H "Session-A: $HEADER" http://localhost:8888/get 2>/dev/null | grep pod
done
"#;

/// "We remove the header and test again".
const NO_HEADER_LINES: &str = r#"for i in `seq 5`; do
    curl http://localhost:8888/get 2>/dev/null | grep pod
done
"#;

/// Every line is ` "pod": "<service>-<10>-<5>"`, like the seed's output.
fn pods(out: &str) -> Vec<&str> {
    let re = regex::Regex::new(r#"^ "pod": "backend-[a-z0-9]{10}-[a-z0-9]{5}"$"#).expect("regex");
    let lines: Vec<&str> = out.lines().collect();
    for l in &lines {
        assert!(re.is_match(l), "not a seed-like pod line: {l:?}\n{out}");
    }
    lines
}

fn distinct(lines: &[&str]) -> usize {
    let mut v = lines.to_vec();
    v.sort_unstable();
    v.dedup();
    v.len()
}

#[tokio::test]
async fn seed_cookie_walkthrough_verbatim() {
    // The embedded default with `absoluteTimeout: 2s` so the suite stays
    // fast; tests/walkthrough.sh runs the 10 s original.
    let yaml = include_str!("../../src/config/default-route.yaml").replace("10s", "2s");
    let route = temp_file("cookie.yaml", yaml.as_bytes());
    let gw = gateway(&[
        "--route",
        route.to_str().expect("utf-8 path"),
        "--admin",
        "127.0.0.1:0",
    ]);
    let script = seed_lines(
        &format!(
            "{COOKIE_LINES}echo ---\n{}",
            COOKIE_EXPIRY_LINES.replace("sleep 10", "sleep 2")
        ),
        gw.port(),
    );
    let out = bash(&script);
    let (pinned, expired) = out.split_once("---\n").expect("both parts ran");
    let pinned = pods(pinned);
    assert_eq!(pinned.len(), 5, "{out}");
    assert_eq!(distinct(&pinned), 1, "five responses from one pod:\n{out}");
    let expired = pods(expired);
    assert_eq!(expired.len(), 5, "{out}");
    assert!(
        distinct(&expired) >= 2,
        "after expiry, several pods:\n{out}"
    );
    assert!(outcome_total(&Http::new(), &gw, "expired").await >= 1.0);
}

#[tokio::test]
async fn seed_header_walkthrough_verbatim() {
    let route = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/header-route.yaml"
    );
    let gw = gateway(&["--route", route, "--admin", "127.0.0.1:0"]);
    let out = bash(&seed_lines(
        &format!("{HEADER_LINES}echo ---\n{NO_HEADER_LINES}"),
        gw.port(),
    ));
    let (pinned, free) = out.split_once("---\n").expect("both parts ran");
    let pinned = pods(pinned);
    assert_eq!(pinned.len(), 5, "{out}");
    assert_eq!(distinct(&pinned), 1, "five responses from one pod:\n{out}");
    // The value really carried the stray CR, and the session resumed.
    assert_eq!(outcome_total(&Http::new(), &gw, "resumed").await, 5.0);
    let free = pods(free);
    assert_eq!(free.len(), 5, "{out}");
    assert!(
        distinct(&free) >= 2,
        "without the header, several pods:\n{out}"
    );
}

#[test]
fn the_header_value_really_ends_with_a_cr() {
    let route = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/header-route.yaml"
    );
    let gw = gateway(&["--route", route]);
    let out = bash(&seed_lines(
        r#"HEADER=$(curl --verbose http://localhost:8888/get 2>&1 | grep "session-a" | awk '{print $3}')
printf '%s' "$HEADER" | od -An -c | tr -d ' \n' | tail -c 2"#,
        gw.port(),
    ));
    assert_eq!(out, "\\r", "the seed's extraction keeps the CR");
}
