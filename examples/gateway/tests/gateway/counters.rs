//! Counters read from `/metrics`, summed over every series of a name that
//! carries the given labels: what tests assert instead of log lines
//! (issue 17, point 9). The gateway must run with `--admin`.

use crate::support::{Http, Proc};

/// The sum of every `name{…}` series of `/metrics` whose labels include
/// each of `labels` (`name="value"` pairs).
pub async fn sum(http: &Http, gw: &Proc, name: &str, labels: &[(&str, &str)]) -> f64 {
    let admin = gw.admin.as_deref().expect("--admin");
    let page = http.get(&format!("{admin}/metrics"), &[]).await.body;
    let wanted: Vec<String> = labels
        .iter()
        .map(|(label, value)| format!("{label}=\"{value}\""))
        .collect();
    page.lines()
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?.strip_prefix('{')?;
            wanted
                .iter()
                .all(|w| labels.split(',').any(|l| l.trim_end_matches('}') == w))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// How many requests, over every rule, had session outcome `outcome`
/// (`tower_sticky_requests_total`; the access log's `outcome=`).
pub async fn outcome_total(http: &Http, gw: &Proc, outcome: &str) -> f64 {
    sum(
        http,
        gw,
        "tower_sticky_requests_total",
        &[("outcome", outcome)],
    )
    .await
}
