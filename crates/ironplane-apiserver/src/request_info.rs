//! Request info: what a request is about, derived from its method, path and query exactly as
//! upstream's `RequestInfoFactory` derives it (resource requests under `/api` and `/apis`, their
//! verb, namespace, resource, name and subresource).

use http::Method;

/// What a request asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether this is a request for an API resource (rather than `/healthz`, discovery...).
    pub is_resource_request: bool,
    /// The URL path.
    pub path: String,
    /// The verb: get, list, watch, create, update, patch, delete, deletecollection; for
    /// non-resource requests the lowercased HTTP method.
    pub verb: String,
    /// `api` or `apis`.
    pub api_prefix: String,
    /// The API group.
    pub api_group: String,
    /// The API version.
    pub api_version: String,
    /// The namespace, if any.
    pub namespace: String,
    /// The resource.
    pub resource: String,
    /// The subresource.
    pub subresource: String,
    /// The object name.
    pub name: String,
    /// The path segments after the version (and namespace), as upstream keeps them.
    pub parts: Vec<String>,
}

/// Subresources of a namespace itself (not namespaced resources inside it).
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

impl RequestInfo {
    /// Derive the request info of a method, path and query string.
    pub fn parse(method: &Method, path: &str, query: Option<&str>) -> Result<Self, String> {
        let mut info = RequestInfo {
            path: path.to_owned(),
            verb: method.as_str().to_ascii_lowercase(),
            ..Default::default()
        };
        let parts: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return Ok(info);
        }
        info.api_prefix = parts[0].to_owned();
        let mut rest = &parts[1..];
        if info.api_prefix == "apis" {
            if rest.len() < 3 {
                return Ok(info);
            }
            info.api_group = rest[0].to_owned();
            rest = &rest[1..];
        }
        info.is_resource_request = true;
        info.api_version = rest[0].to_owned();
        rest = &rest[1..];
        if matches!(rest[0], "watch" | "proxy") {
            if rest.len() < 2 {
                return Err(format!(
                    "unable to determine kind and namespace from url, {path}"
                ));
            }
            info.verb = rest[0].to_owned();
            rest = &rest[1..];
        } else {
            info.verb = match *method {
                Method::POST => "create",
                Method::GET | Method::HEAD => "get",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "",
            }
            .to_owned();
        }
        if rest[0] == "namespaces" && rest.len() > 1 {
            info.namespace = rest[1].to_owned();
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        info.parts = rest.iter().map(|part| part.to_string()).collect();
        if rest.len() >= 3 && info.verb != "proxy" {
            info.subresource = rest[2].to_owned();
        }
        if rest.len() >= 2 {
            info.name = rest[1].to_owned();
        }
        info.resource = rest[0].to_owned();
        if info.name.is_empty() && info.verb == "get" {
            let watch = query_values(query, "watch")
                .next()
                .is_some_and(|value| !matches!(value.to_ascii_lowercase().as_str(), "false" | "0"));
            info.verb = if watch { "watch" } else { "list" }.to_owned();
            if let Some(selector) = query_values(query, "fieldSelector").next()
                && let Ok(selector) = ironplane_apimachinery::fields::Selector::parse(&selector)
                && let Some(name) = selector.exact_value("metadata.name")
                && ironplane_apimachinery::validation::is_valid_path_segment_name(name).is_empty()
            {
                info.name = name.to_owned();
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".to_owned();
        }
        Ok(info)
    }

    /// Whether the request is long-running (a watch), which timeouts and in-flight limits skip.
    pub fn is_long_running(&self) -> bool {
        self.is_resource_request && (self.verb == "watch" || self.verb == "proxy")
    }

    /// Whether the verb writes.
    pub fn is_mutating(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

/// The values of a query parameter, percent-decoded, in order.
pub fn query_values<'a>(
    query: Option<&'a str>,
    name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(move |pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
}

/// Decode `%XX` escapes and `+` (as a space), as Go's query parser does.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, url: &str) -> RequestInfo {
        let (path, query) = match url.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (url, None),
        };
        RequestInfo::parse(&method, path, query).unwrap()
    }

    fn check(
        method: Method,
        url: &str,
        verb: &str,
        ns: &str,
        resource: &str,
        name: &str,
        sub: &str,
    ) {
        let info = parse(method, url);
        assert!(info.is_resource_request, "{url}");
        assert_eq!(
            (
                info.verb.as_str(),
                info.namespace.as_str(),
                info.resource.as_str(),
                info.name.as_str(),
                info.subresource.as_str()
            ),
            (verb, ns, resource, name, sub),
            "{url}"
        );
    }

    #[test]
    fn derives_verbs_and_scopes_like_upstream() {
        check(
            Method::GET,
            "/api/v1/namespaces",
            "list",
            "",
            "namespaces",
            "",
            "",
        );
        check(
            Method::GET,
            "/api/v1/namespaces/other",
            "get",
            "other",
            "namespaces",
            "other",
            "",
        );
        check(
            Method::GET,
            "/api/v1/namespaces/other/configmaps",
            "list",
            "other",
            "configmaps",
            "",
            "",
        );
        check(
            Method::GET,
            "/api/v1/namespaces/other/configmaps?watch=true",
            "watch",
            "other",
            "configmaps",
            "",
            "",
        );
        check(
            Method::GET,
            "/api/v1/namespaces/other/configmaps?watch=0",
            "list",
            "other",
            "configmaps",
            "",
            "",
        );
        check(
            Method::GET,
            "/api/v1/watch/namespaces/other/configmaps",
            "watch",
            "other",
            "configmaps",
            "",
            "",
        );
        check(
            Method::GET,
            "/api/v1/namespaces/other/configmaps/foo",
            "get",
            "other",
            "configmaps",
            "foo",
            "",
        );
        check(
            Method::POST,
            "/api/v1/namespaces/other/configmaps",
            "create",
            "other",
            "configmaps",
            "",
            "",
        );
        check(
            Method::PUT,
            "/api/v1/namespaces/other/finalize",
            "update",
            "other",
            "namespaces",
            "other",
            "finalize",
        );
        check(
            Method::PUT,
            "/api/v1/namespaces/other/status",
            "update",
            "other",
            "namespaces",
            "other",
            "status",
        );
        check(
            Method::DELETE,
            "/api/v1/namespaces/other/configmaps",
            "deletecollection",
            "other",
            "configmaps",
            "",
            "",
        );
        check(
            Method::DELETE,
            "/api/v1/namespaces/other/configmaps/x",
            "delete",
            "other",
            "configmaps",
            "x",
            "",
        );
        check(
            Method::PATCH,
            "/apis/apps/v1/namespaces/other/deployments/d/scale",
            "patch",
            "other",
            "deployments",
            "d",
            "scale",
        );
        check(
            Method::GET,
            "/apis/apps/v1/deployments",
            "list",
            "",
            "deployments",
            "",
            "",
        );
        check(
            Method::GET,
            "/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Dfoo",
            "list",
            "ns",
            "configmaps",
            "foo",
            "",
        );
    }

    #[test]
    fn discovery_and_other_paths_are_not_resource_requests() {
        for path in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/healthz",
            "/version",
        ] {
            assert!(!parse(Method::GET, path).is_resource_request, "{path}");
        }
    }

    #[test]
    fn decodes_queries() {
        assert_eq!(percent_decode("a%3Db+c"), "a=b c");
        assert_eq!(percent_decode("100%"), "100%");
        let values: Vec<String> = query_values(Some("x=1&y=2&x=3"), "x").collect();
        assert_eq!(values, ["1", "3"]);
    }
}
