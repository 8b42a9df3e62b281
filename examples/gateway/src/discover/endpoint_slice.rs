//! Kubernetes `EndpointSlice` (`discovery.k8s.io/v1`) YAML, read verbatim.
//!
//! A file holds what `kubectl get endpointslices -o yaml` prints (a `List`
//! with `items`), one slice, or several `---` documents of either. Fields the
//! gateway does not use (`managedFields`, `nodeName`, `zone`, hints, …) are
//! ignored. A slice belongs to the Service named by its
//! `kubernetes.io/service-name` label, in its own namespace.
//!
//! An endpoint's conditions become its state:
//!
//! | `conditions`                               | state    |
//! |--------------------------------------------|----------|
//! | `ready` (true or absent), not terminating  | serving  |
//! | `terminating` and `serving`                | draining |
//! | otherwise (not serving)                    | down     |
//!
//! `ready` and `serving` absent mean "unknown", which Kubernetes asks
//! consumers to read as ready; `serving` absent on a terminating endpoint
//! takes the value of `ready` (clusters before 1.20 only set `ready`, and
//! set it false while terminating).
//!
//! The port of a `backendRef` is the slice port whose `port` equals it, or
//! whose `name` is that number, or else the slice's only port.
//!
//! Each document is deserialized once, into the typed `Object` below;
//! `serde_path_to_error` names the field a value does not fit. Errors name
//! the file, the document (and `items[i]` inside a `List`) and the field:
//! `slices.yaml: document 2: items[0]: endpoints[3].addresses[0]: not an IP
//! address or DNS name: "x"`.

use super::app_protocol::AppProtocol;
use crate::config::ConfigError;
use serde::de::{Deserialize, Deserializer, Error as _};
use std::collections::HashMap;
use std::fmt;
use tower_sticky::balance::BackendState;

/// The label that ties a slice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One EndpointSlice, as much of it as the gateway uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSlice {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (`default` when absent).
    pub namespace: String,
    /// The `kubernetes.io/service-name` label.
    pub service: String,
    /// `ports`.
    pub ports: Vec<SlicePort>,
    /// `endpoints`.
    pub endpoints: Vec<SliceEndpoint>,
}

/// One of a slice's `ports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePort {
    /// `name`; empty when absent.
    pub name: String,
    /// `port`; `None` means "all ports" in Kubernetes and matches nothing
    /// here.
    pub port: Option<u16>,
    /// `appProtocol`: `kubernetes.io/h2c` makes the endpoints h2c.
    pub app_protocol: AppProtocol,
}

/// One of a slice's `endpoints`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceEndpoint {
    /// The first of `addresses` (Kubernetes says they are fungible).
    pub address: String,
    /// From `conditions`.
    pub state: BackendState,
}

/// The conditions of one endpoint; `None` is absent (unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Conditions {
    /// `ready`.
    pub ready: Option<bool>,
    /// `serving`.
    pub serving: Option<bool>,
    /// `terminating`.
    pub terminating: Option<bool>,
}

impl Conditions {
    /// The state these conditions give (the table in the module docs).
    pub fn state(self) -> BackendState {
        let ready = self.ready.unwrap_or(true);
        let serving = self.serving.unwrap_or(ready);
        let terminating = self.terminating.unwrap_or(false);
        if terminating {
            if serving {
                BackendState::Draining
            } else {
                BackendState::Down
            }
        } else if ready {
            BackendState::Serving
        } else {
            BackendState::Down
        }
    }
}

impl EndpointSlice {
    /// The slice port a `backendRef` with `port` uses, if any.
    pub fn port_for(&self, port: Option<u16>) -> Option<u16> {
        self.slice_port(port).and_then(|p| p.port)
    }

    /// The protocol of the slice port a `backendRef` with `port` uses.
    pub fn app_protocol_for(&self, port: Option<u16>) -> AppProtocol {
        self.slice_port(port)
            .map_or(AppProtocol::Http1, |p| p.app_protocol)
    }

    /// The `ports[]` entry a `backendRef` with `port` uses: by number, then
    /// by name, then the only one.
    fn slice_port(&self, port: Option<u16>) -> Option<&SlicePort> {
        if let Some(want) = port {
            let by_number = self.ports.iter().find(|p| p.port == Some(want));
            let by_name = || {
                self.ports
                    .iter()
                    .find(|p| !p.name.is_empty() && p.name == want.to_string())
            };
            if let Some(p) = by_number.or_else(by_name) {
                return Some(p);
            }
        }
        match self.ports.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }

    /// `host:port` and state of each endpoint, for a backendRef with
    /// `port`; empty when no slice port fits.
    pub fn endpoints_for(&self, port: Option<u16>) -> Vec<(String, BackendState)> {
        let Some(port) = self.port_for(port) else {
            return Vec::new();
        };
        self.endpoints
            .iter()
            .map(|e| (host_port(&e.address, port), e.state))
            .collect()
    }
}

/// `10.0.0.7:80`, `[fd00::7]:80`, `pod.example:80`.
pub fn host_port(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

fn err(at: &str, what: impl fmt::Display) -> ConfigError {
    ConfigError::at(format!("{at}: {what}"))
}

/// Reads a slice file.
pub fn load_file(path: &std::path::Path) -> Result<Vec<EndpointSlice>, ConfigError> {
    let (name, text) = crate::config::read_text(path)?;
    parse_str(&name, &text)
}

/// Parses the YAML documents of a file called `name`. A document of another
/// kind is an error: a file given to `--endpoints` holds slices only. An
/// empty file (or one holding an empty `List`) is no slices.
pub fn parse_str(name: &str, text: &str) -> Result<Vec<EndpointSlice>, ConfigError> {
    let mut slices = Vec::new();
    let mut input = text.as_bytes();
    let options = serde_saphyr::options! { with_snippet: false };
    // Empty documents are skipped by the reader, so `n` counts the others.
    let documents = serde_saphyr::read_with_options::<_, Tracked>(&mut input, options);
    for (n, document) in documents.enumerate() {
        let at = format!("{name}: document {}", n + 1);
        let object = match document {
            Ok(Tracked(object)) => object,
            // Failed inside the document (a value that does not fit, or
            // broken YAML there): `Tracked` put the field in front, and
            // serde-saphyr ended it with the line and column.
            Err(serde_saphyr::Error::Message { msg, .. }) => return Err(err(&at, msg)),
            Err(e) => return Err(err(&at, format_args!("not valid YAML: {e}"))),
        };
        match object.kind.as_deref() {
            Some("EndpointSlice") => slices.push(object.into_slice(&at)?),
            Some("List" | "EndpointSliceList") => {
                for (i, item) in object.items.into_iter().enumerate() {
                    let at = format!("{at}: items[{i}]");
                    match item.kind.as_deref() {
                        // `kubectl get` lists carry each item's kind.
                        Some("EndpointSlice") | None => slices.push(item.into_slice(&at)?),
                        Some(other) => {
                            return Err(err(
                                &at,
                                format_args!("kind: expected EndpointSlice, got {other}"),
                            ));
                        }
                    }
                }
            }
            Some(other) => {
                let why = format!("expected EndpointSlice (or a List of them), got {other}");
                return Err(err(&at, format_args!("kind: {why}")));
            }
            None => return Err(err(&at, "kind: missing")),
        }
    }
    Ok(slices)
}

/// One document: an EndpointSlice, or a `List` of them in `items` (one
/// shape serves both; a slice has no `items`, a list none of the rest).
#[derive(serde::Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a Kubernetes object (a mapping)"
)]
struct Object {
    kind: Option<String>,
    api_version: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    metadata: Metadata,
    /// Checked, not used: the address says what it is.
    #[serde(rename = "addressType")]
    _address_type: Option<AddressType>,
    #[serde(default, deserialize_with = "or_default")]
    ports: Vec<Port>,
    #[serde(default, deserialize_with = "or_default")]
    endpoints: Vec<Endpoint>,
    #[serde(default, deserialize_with = "or_default")]
    items: Vec<Object>,
}

#[derive(Default, serde::Deserialize)]
struct Metadata {
    #[serde(default, deserialize_with = "or_default")]
    name: String,
    #[serde(default, deserialize_with = "or_default")]
    namespace: String,
    #[serde(default, deserialize_with = "or_default")]
    labels: HashMap<String, String>,
}

#[derive(serde::Deserialize)]
enum AddressType {
    IPv4,
    IPv6,
    #[serde(rename = "FQDN")]
    Fqdn,
}

#[derive(serde::Deserialize)]
struct Port {
    #[serde(default, deserialize_with = "or_default")]
    name: String,
    port: Option<i64>,
    #[serde(default, rename = "appProtocol")]
    app_protocol: Option<String>,
}

#[derive(serde::Deserialize)]
struct Endpoint {
    #[serde(default, deserialize_with = "or_default")]
    addresses: Vec<String>,
    #[serde(default, deserialize_with = "or_default")]
    conditions: Conditions,
}

impl Object {
    /// The checks beyond types: apiVersion, the Service label, port
    /// numbers and addresses.
    fn into_slice(self, at: &str) -> Result<EndpointSlice, ConfigError> {
        if let Some(api) = self.api_version
            && api != "discovery.k8s.io/v1"
        {
            let why = format!("expected discovery.k8s.io/v1, got {api}");
            return Err(err(at, format_args!("apiVersion: {why}")));
        }
        let mut meta = self.metadata;
        let label = format!("metadata.labels[\"{SERVICE_NAME_LABEL}\"]");
        let service = match meta.labels.remove(SERVICE_NAME_LABEL) {
            Some(s) if s.is_empty() => return Err(err(at, format_args!("{label}: empty"))),
            Some(s) => s,
            None => {
                let why = "missing: a slice names its Service with this label";
                return Err(err(at, format_args!("{label}: {why}")));
            }
        };
        let ports = slice_ports(self.ports, at)?;
        let endpoints = slice_endpoints(self.endpoints, at)?;
        if meta.namespace.is_empty() {
            meta.namespace = "default".into();
        }
        Ok(EndpointSlice {
            name: meta.name,
            namespace: meta.namespace,
            service,
            ports,
            endpoints,
        })
    }
}

/// The `ports` of the slice at `at`, checked.
fn slice_ports(ports: Vec<Port>, at: &str) -> Result<Vec<SlicePort>, ConfigError> {
    let mut checked = Vec::with_capacity(ports.len());
    for (
        i,
        Port {
            name,
            port,
            app_protocol,
        },
    ) in ports.into_iter().enumerate()
    {
        let port = match port.map(u16::try_from) {
            None => None,
            Some(Ok(n)) if n > 0 => Some(n),
            Some(_) => {
                return Err(err(
                    at,
                    format_args!("ports[{i}].port: expected a port, 1-65535"),
                ));
            }
        };
        let app_protocol = AppProtocol::from_app_protocol(app_protocol.as_deref());
        checked.push(SlicePort {
            name,
            port,
            app_protocol,
        });
    }
    Ok(checked)
}

/// The `endpoints` of the slice at `at`, checked: each one's first address
/// and its state.
fn slice_endpoints(endpoints: Vec<Endpoint>, at: &str) -> Result<Vec<SliceEndpoint>, ConfigError> {
    let mut checked = Vec::with_capacity(endpoints.len());
    for (i, e) in endpoints.into_iter().enumerate() {
        let field = format!("endpoints[{i}].addresses");
        let Some(address) = e.addresses.into_iter().next() else {
            return Err(err(
                at,
                format_args!("{field}: expected at least one address"),
            ));
        };
        if !valid_address(&address) {
            let why = format!("not an IP address or DNS name: {address:?}");
            return Err(err(at, format_args!("{field}[0]: {why}")));
        }
        let state = e.conditions.state();
        checked.push(SliceEndpoint { address, state });
    }
    Ok(checked)
}

/// An IP address, or a DNS name (`addressType: FQDN`).
fn valid_address(a: &str) -> bool {
    a.parse::<std::net::IpAddr>().is_ok()
        || (!a.is_empty()
            && a.len() <= 253
            && a.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}

/// A document, with the path of the field a value did not fit put in front
/// of the error (`items[0]: endpoints[1].addresses[0]: ...`).
struct Tracked(Object);

impl<'de> Deserialize<'de> for Tracked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_path_to_error::deserialize(d)
            .map(Tracked)
            .map_err(|e| {
                let path = e.path().to_string();
                let path = match path.split_once("].") {
                    Some((item, field)) if item.starts_with("items[") => {
                        format!("{item}]: {field}")
                    }
                    _ => path,
                };
                match e.path().iter().next() {
                    None => D::Error::custom(e.into_inner()),
                    Some(_) => D::Error::custom(format_args!("{path}: {}", e.into_inner())),
                }
            })
    }
}

/// Absent and `null` are the default (Kubernetes writes `ports: null`).
fn or_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `kubectl get endpointslices -o yaml` prints, trimmed of nothing.
    const KUBECTL: &str = r#"apiVersion: v1
items:
- addressType: IPv4
  apiVersion: discovery.k8s.io/v1
  endpoints:
  - addresses:
    - 10.244.0.7
    conditions:
      ready: true
      serving: true
      terminating: false
    nodeName: kind-control-plane
    targetRef:
      kind: Pod
      name: backend-765694d47f-lxwdf
      namespace: default
      uid: 3f0e4ab6-6d0c-4a5e-9a1e-2f0d5c8f7b11
  - addresses:
    - 10.244.0.8
    conditions:
      ready: false
      serving: true
      terminating: true
    nodeName: kind-control-plane
    targetRef:
      kind: Pod
      name: backend-765694d47f-kvwqb
      namespace: default
  - addresses:
    - 10.244.0.9
    conditions:
      ready: false
      serving: false
      terminating: false
  kind: EndpointSlice
  metadata:
    annotations:
      endpoints.kubernetes.io/last-change-trigger-time: "2026-11-28T10:00:00Z"
    creationTimestamp: "2026-11-28T09:00:00Z"
    generateName: backend-
    generation: 4
    labels:
      endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
      kubernetes.io/service-name: backend
    name: backend-abc12
    namespace: default
    ownerReferences:
    - apiVersion: v1
      blockOwnerDeletion: true
      controller: true
      kind: Service
      name: backend
      uid: 9c1a0d8e-0000-4000-8000-000000000001
    resourceVersion: "1234"
    uid: 0b7d1a52-0000-4000-8000-000000000002
  ports:
  - name: http
    port: 3000
    protocol: TCP
kind: List
metadata:
  resourceVersion: ""
"#;

    #[test]
    fn kubectl_output_reads_verbatim_and_conditions_give_states() {
        let slices = parse_str("slices.yaml", KUBECTL).unwrap();
        assert_eq!(slices.len(), 1);
        let s = &slices[0];
        assert_eq!(
            (s.namespace.as_str(), s.service.as_str()),
            ("default", "backend")
        );
        // The backendRef says port 3000; the slice's only port is 3000 anyway.
        assert_eq!(
            s.endpoints_for(Some(3000)),
            vec![
                ("10.244.0.7:3000".to_owned(), BackendState::Serving),
                ("10.244.0.8:3000".to_owned(), BackendState::Draining),
                ("10.244.0.9:3000".to_owned(), BackendState::Down),
            ]
        );
    }

    #[test]
    fn the_h2c_app_protocol_marks_its_port_only() {
        let two_ports = KUBECTL.replace(
            "  - name: http\n    port: 3000\n    protocol: TCP\n",
            "  - name: http\n    port: 3000\n    protocol: TCP\n  - name: grpc\n    port: 50051\n    protocol: TCP\n    appProtocol: kubernetes.io/h2c\n",
        );
        assert_ne!(two_ports, KUBECTL);
        let slices = parse_str("slices.yaml", &two_ports).unwrap();
        assert_eq!(slices[0].app_protocol_for(Some(50051)), AppProtocol::H2c);
        assert_eq!(slices[0].app_protocol_for(Some(3000)), AppProtocol::Http1);
        let plain = parse_str("slices.yaml", KUBECTL).unwrap();
        assert_eq!(plain[0].app_protocol_for(Some(3000)), AppProtocol::Http1);
    }

    #[test]
    fn ports_match_by_number_then_name_then_the_only_one() {
        let s = |ports: Vec<(&str, Option<u16>)>| EndpointSlice {
            name: "s".into(),
            namespace: "default".into(),
            service: "backend".into(),
            ports: ports
                .into_iter()
                .map(|(name, port)| SlicePort {
                    name: name.into(),
                    port,
                    app_protocol: AppProtocol::Http1,
                })
                .collect(),
            endpoints: Vec::new(),
        };
        let two = s(vec![("http", Some(8080)), ("80", Some(9090))]);
        assert_eq!(two.port_for(Some(8080)), Some(8080));
        assert_eq!(two.port_for(Some(80)), Some(9090));
        assert_eq!(two.port_for(Some(81)), None);
        assert_eq!(two.port_for(None), None);
        let one = s(vec![("http", Some(8080))]);
        assert_eq!(one.port_for(Some(80)), Some(8080));
        assert_eq!(one.port_for(None), Some(8080));
        assert_eq!(s(vec![]).port_for(Some(80)), None);
    }

    #[test]
    fn the_condition_table() {
        use BackendState::*;
        let c = |ready, serving, terminating| {
            Conditions {
                ready,
                serving,
                terminating,
            }
            .state()
        };
        assert_eq!(c(Some(true), Some(true), Some(false)), Serving);
        assert_eq!(c(None, None, None), Serving);
        assert_eq!(c(Some(false), Some(true), Some(true)), Draining);
        assert_eq!(c(Some(false), Some(false), Some(true)), Down);
        // Before serving existed: a terminating pod only has ready: false.
        assert_eq!(c(Some(false), None, Some(true)), Down);
        assert_eq!(c(Some(false), Some(false), Some(false)), Down);
        assert_eq!(c(Some(false), Some(true), Some(false)), Down);
    }

    #[test]
    fn errors_name_file_document_item_and_field() {
        let bad = KUBECTL.replace("    - 10.244.0.8\n", "    - not an address\n");
        let e =
            parse_str("slices.yaml", &format!("kind: List\nitems: []\n---\n{bad}")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "slices.yaml: document 2: items[0]: endpoints[1].addresses[0]: not an IP address or DNS name: \"not an address\""
        );
        let no_label =
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: x\n";
        assert_eq!(
            parse_str("f", no_label).unwrap_err().to_string(),
            "f: document 1: metadata.labels[\"kubernetes.io/service-name\"]: missing: a slice names its Service with this label"
        );
        let port = KUBECTL.replace("port: 3000", "port: 70000");
        assert_eq!(
            parse_str("f", &port).unwrap_err().to_string(),
            "f: document 1: items[0]: ports[0].port: expected a port, 1-65535"
        );
        let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n";
        assert!(
            parse_str("f", route)
                .unwrap_err()
                .to_string()
                .contains("kind: expected EndpointSlice")
        );
        assert_eq!(parse_str("f", "").unwrap(), vec![]);
        // A value of the wrong type: the field from serde_path_to_error, the
        // place from serde-saphyr.
        let labelled = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  labels: {kubernetes.io/service-name: b}\n";
        let maybe = format!("{labelled}endpoints:\n- conditions: {{ready: maybe}}\n");
        let e = parse_str("f", &maybe).unwrap_err().to_string();
        assert!(
            e.starts_with("f: document 1: endpoints[0].conditions.ready: ") && e.contains("line 6"),
            "{e}"
        );
        // kubectl writes `null` for a slice without ports or endpoints.
        let nulls = parse_str("f", &format!("{labelled}ports: null\nendpoints: null\n")).unwrap();
        assert_eq!((nulls[0].ports.len(), nulls[0].endpoints.len()), (0, 0));
    }

    fn conditions() -> impl Strategy<Value = Conditions> {
        let b = || prop_oneof![Just(None), any::<bool>().prop_map(Some)];
        (b(), b(), b()).prop_map(|(ready, serving, terminating)| Conditions {
            ready,
            serving,
            terminating,
        })
    }

    fn yaml_bool(name: &str, v: Option<bool>) -> String {
        v.map(|b| format!("      {name}: {b}\n"))
            .unwrap_or_default()
    }

    proptest! {
        /// A slice written out as YAML reads back as the same endpoints,
        /// ports and states.
        #[test]
        fn slices_round_trip(
            namespace in "[a-z][a-z0-9-]{0,20}",
            service in "[a-z][a-z0-9-]{0,20}",
            ports in proptest::collection::vec(("[a-z]{0,6}", 1u16..), 0..4),
            endpoints in proptest::collection::vec((any::<[u8; 4]>(), conditions()), 0..8),
            list_form in any::<bool>(),
        ) {
            let mut y = String::new();
            y.push_str("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4\n");
            y.push_str(&format!("metadata:\n  name: s\n  namespace: \"{namespace}\"\n  labels:\n    kubernetes.io/service-name: \"{service}\"\n"));
            y.push_str("ports:\n");
            for (name, port) in &ports {
                y.push_str(&format!("- name: \"{name}\"\n  port: {port}\n  protocol: TCP\n"));
            }
            y.push_str("endpoints:\n");
            for (ip, c) in &endpoints {
                let ip = std::net::Ipv4Addr::from(*ip);
                y.push_str(&format!("  - addresses: [\"{ip}\"]\n    conditions:\n      x: 1\n"));
                y.push_str(&yaml_bool("ready", c.ready));
                y.push_str(&yaml_bool("serving", c.serving));
                y.push_str(&yaml_bool("terminating", c.terminating));
            }
            if list_form {
                let indented: String = y.lines().map(|l| format!("  {l}\n")).collect();
                y = format!("apiVersion: v1\nkind: List\nitems:\n-{}", &indented[1..]);
            }
            let slices = parse_str("f", &y).map_err(|e| TestCaseError::fail(format!("{e}\n{y}")))?;
            prop_assert_eq!(slices.len(), 1);
            let s = &slices[0];
            prop_assert_eq!(&s.namespace, &namespace);
            prop_assert_eq!(&s.service, &service);
            prop_assert_eq!(s.ports.len(), ports.len());
            let got: Vec<(String, BackendState)> =
                s.endpoints.iter().map(|e| (e.address.clone(), e.state)).collect();
            let want: Vec<(String, BackendState)> = endpoints
                .iter()
                .map(|(ip, c)| (std::net::Ipv4Addr::from(*ip).to_string(), c.state()))
                .collect();
            prop_assert_eq!(got, want);
        }

        /// Whatever the text, parsing answers (slices or an error naming a
        /// place) and never panics.
        #[test]
        fn any_text_is_answered_without_panicking(text in "(?s).{0,400}") {
            if let Err(e) = parse_str("f", &text) {
                prop_assert!(e.to_string().starts_with("f"));
            }
        }

        /// Mutating a valid file's bytes never panics either.
        #[test]
        fn mutated_kubectl_output_never_panics(at in 0usize..KUBECTL.len(), byte in any::<u8>()) {
            let mut bytes = KUBECTL.as_bytes().to_vec();
            bytes[at] = byte;
            if let Ok(text) = String::from_utf8(bytes) {
                let _ = parse_str("f", &text);
            }
        }
    }
}
