//! Ties between routes go by the Gateway API's order, not file order
//! (issue 19, finding 8): the oldest `creationTimestamp`, then
//! `{namespace}/{name}`; a route defined twice is an error naming both.

use crate::support::{Http, echo, gateway, gateway_fails, temp_file};

/// An HTTPRoute `default/{name}` sending `PathPrefix {prefix}` to Service
/// `service`, created at `created` if given.
fn route(name: &str, prefix: &str, service: &str, created: Option<&str>) -> String {
    let created = created
        .map(|c| format!("  creationTimestamp: \"{c}\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: default
{created}spec:
  rules:
    - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]
      backendRefs: [{{name: {service}, port: 80}}]
"
    )
}

#[tokio::test]
async fn equal_routes_tie_by_age_then_name_not_by_file_order() {
    let (app, thief) = (echo("app"), echo("thief"));
    // Loaded first, and would win by file order.
    let first = [
        route("zzz-one", "/one", "thief", None),
        route("zzz-two", "/two", "thief", Some("2020-01-01T00:00:00Z")),
        route("zzz-three", "/three", "thief", Some("2024-01-01T00:00:00Z")),
    ]
    .join("---\n");
    let second = [
        route("app-one", "/one", "app", None),
        route("app-two", "/two", "app", Some("2024-06-01T00:00:00Z")),
        route("app-three", "/three", "app", Some("2024-01-01T00:00:00Z")),
    ]
    .join("---\n");
    let (first, second) = (
        temp_file("first.yaml", first.as_bytes()),
        temp_file("second.yaml", second.as_bytes()),
    );
    let (app_flag, thief_flag) = (
        format!("app:80={}", app.addr),
        format!("thief:80={}", thief.addr),
    );
    let gw = gateway(&[
        "--route",
        first.to_str().expect("utf-8"),
        "--route",
        second.to_str().expect("utf-8"),
        "--backend",
        &app_flag,
        "--backend",
        &thief_flag,
    ]);
    let http = Http::new();
    for (path, pod, why) in [
        ("/one", "app", "no timestamps: default/app-one sorts first"),
        ("/two", "thief", "default/zzz-two is older"),
        ("/three", "app", "as old: default/app-three sorts first"),
    ] {
        let r = http.get(&format!("{}{path}", gw.url), &[]).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.pod(), pod, "{path}: {why}");
    }
}

#[tokio::test]
async fn a_route_defined_twice_is_an_error_naming_both_places() {
    let app = echo("app");
    let flag = format!("app:80={}", app.addr);
    let one = route("app", "/", "app", None);
    let a = temp_file(
        "a.yaml",
        format!("{}---\n{one}", route("b", "/b", "app", None)).as_bytes(),
    );
    let b = temp_file("b.yaml", one.as_bytes());
    let (a, b) = (a.to_str().expect("utf-8"), b.to_str().expect("utf-8"));
    let err = gateway_fails(&["--route", a, "--route", b, "--backend", &flag]);
    for needle in [
        format!("{a}: document 2"),
        format!("{b}: document 1"),
        "HTTPRoute default/app is defined twice".to_owned(),
    ] {
        assert!(err.contains(&needle), "{needle:?} missing from {err}");
    }
    // In one file too.
    let same = temp_file("same.yaml", format!("{one}---\n{one}").as_bytes());
    let same = same.to_str().expect("utf-8");
    let err = gateway_fails(&["--route", same, "--backend", &flag]);
    for needle in [format!("{same}: document 1"), format!("{same}: document 2")] {
        assert!(err.contains(&needle), "{needle:?} missing from {err}");
    }
    // A bad timestamp names its field.
    let bad = temp_file(
        "bad.yaml",
        route("app", "/", "app", Some("yesterday")).as_bytes(),
    );
    let err = gateway_fails(&["--route", bad.to_str().expect("utf-8"), "--backend", &flag]);
    assert!(
        err.contains("document 1: metadata.creationTimestamp"),
        "{err}"
    );
}

#[tokio::test]
async fn a_reload_bringing_a_second_copy_of_a_route_fails_and_the_old_one_serves() {
    let app = echo("app");
    let flag = format!("app:80={}", app.addr);
    let one = route("app", "/", "app", None);
    let file = temp_file("routes.yaml", one.as_bytes());
    let path = file.to_str().expect("utf-8");
    let gw = gateway(&[
        "--route",
        path,
        "--backend",
        &flag,
        "--admin",
        "127.0.0.1:0",
    ]);
    let admin = gw.admin.clone().expect("admin");
    let http = Http::new();

    std::fs::write(&file, format!("{one}---\n{one}")).expect("write");
    let r = http
        .send("POST", &format!("{admin}/reload"), &[], Default::default())
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    for needle in [
        format!("{path}: document 1"),
        format!("{path}: document 2"),
        "defined twice".to_owned(),
    ] {
        assert!(
            r.body.contains(&needle),
            "{needle:?} missing from {}",
            r.body
        );
    }
    let r = http.get(&format!("{}/", gw.url), &[]).await;
    assert_eq!((r.status.as_u16(), r.pod()), (200, "app".to_owned()));
}
