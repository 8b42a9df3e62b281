use http::header::{HOST, HeaderName};
use http::{HeaderMap, HeaderValue};
use std::net::IpAddr;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The `X-Forwarded-For`, `-Proto` and `-Host` headers for one request.
///
/// `X-Forwarded-For` gets the client's address appended to what the
/// request carried; those earlier values come from the client and are only
/// worth something when a trusted proxy stands in front. Without one, call
/// [`replace_chain`](Self::replace_chain). `-Proto` and `-Host` are set,
/// replacing any the client sent.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct XForwarded {
    client: IpAddr,
    https: bool,
    replace_chain: bool,
}

impl XForwarded {
    /// For a request from `client` over plain HTTP.
    pub fn new(client: IpAddr) -> Self {
        XForwarded {
            client,
            https: false,
            replace_chain: false,
        }
    }

    /// Whether the client connection was TLS (`X-Forwarded-Proto: https`).
    pub fn https(mut self, on: bool) -> Self {
        self.https = on;
        self
    }

    /// Drops the `X-Forwarded-For` values the client sent instead of
    /// appending to them: for a proxy at the edge.
    pub fn replace_chain(mut self, on: bool) -> Self {
        self.replace_chain = on;
        self
    }

    /// Writes the headers into a request's `headers`.
    pub fn apply(self, headers: &mut HeaderMap) {
        let client = self.client.to_string();
        let chain = if self.replace_chain {
            None
        } else {
            let earlier: Vec<&str> = headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!earlier.is_empty()).then(|| earlier.join(", "))
        };
        let value = match chain {
            Some(chain) => format!("{chain}, {client}"),
            None => client,
        };
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(X_FORWARDED_FOR.clone(), value);
        }
        let proto = if self.https { "https" } else { "http" };
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
        match headers.get(HOST).cloned() {
            Some(host) => {
                headers.insert(X_FORWARDED_HOST.clone(), host);
            }
            None => {
                headers.remove(&X_FORWARDED_HOST);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_grows_unless_replaced_and_proto_and_host_are_set() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "10.0.0.1".parse().unwrap());
        headers.append("x-forwarded-for", "10.0.0.2".parse().unwrap());
        headers.insert("x-forwarded-proto", "gopher".parse().unwrap());
        let client: IpAddr = "::1".parse().unwrap();
        XForwarded::new(client).https(true).apply(&mut headers);
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 10.0.0.2, ::1");
        assert_eq!(headers.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert!(headers.get("x-forwarded-host").is_none());
        XForwarded::new(client)
            .replace_chain(true)
            .apply(&mut headers);
        assert_eq!(headers["x-forwarded-for"], "::1");
    }
}
