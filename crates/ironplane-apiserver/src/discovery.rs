//! Discovery, generated from the registry that serves the resources: the legacy documents
//! (`/api`, `/api/v1`, `/apis`, `/apis/{group}`, `/apis/{group}/{version}`) and aggregated
//! discovery (`apidiscovery.k8s.io` v2 and v2beta1) with ETags, so a resource appears everywhere
//! the moment it is registered.

use std::collections::BTreeMap;

use base64::Engine as _;
use http::StatusCode;
use ironplane_apimachinery::ApiError;
use ironplane_apimachinery::codec::{self, Negotiated, Offers, Target};
use ironplane_apimachinery::discovery::*;
use ironplane_registry::{Registry, ResourceInfo};
use sha2::{Digest, Sha256, Sha512};

use crate::body::{self, Response};
use crate::handlers::content_type;
use crate::responses::{self, status_response};

/// Discovery documents for a registry.
pub struct Discovery<'a> {
    registry: &'a Registry,
    server_address: &'a str,
}

/// Upstream's hash of a storage version: base64 of the first 8 bytes of SHA-256 of
/// `group/version/kind`.
pub fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    let digest = Sha256::digest(format!("{group}/{version}/{kind}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

impl<'a> Discovery<'a> {
    /// Discovery of `registry`; clients reach the server at `server_address` (`host:port`).
    pub fn new(registry: &'a Registry, server_address: &'a str) -> Self {
        Discovery {
            registry,
            server_address,
        }
    }

    /// Group versions by group in upstream's order (see [`group_key`]), each with its resources
    /// sorted by name.
    fn groups(&self) -> BTreeMap<(usize, String), BTreeMap<String, Vec<&'a ResourceInfo>>> {
        let mut groups: BTreeMap<(usize, String), BTreeMap<String, Vec<&ResourceInfo>>> =
            BTreeMap::new();
        for resource in self.registry.resources() {
            let info = resource.info();
            groups
                .entry(group_key(&info.group))
                .or_default()
                .entry(info.version.clone())
                .or_default()
                .push(info);
        }
        for versions in groups.values_mut() {
            for resources in versions.values_mut() {
                resources.sort_by(|a, b| a.resource.cmp(&b.resource));
            }
        }
        groups
    }

    /// Serve a discovery path, or `None` if `path` is not one this registry has.
    pub fn serve(
        &self,
        path: &str,
        accept: Option<&str>,
        if_none_match: Option<&str>,
        pretty: bool,
    ) -> Option<Response> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["api"] | ["apis"] => {
                let offers = Offers {
                    discovery: true,
                    ..Default::default()
                };
                let Some(negotiated) = codec::negotiate(accept, offers) else {
                    return Some(status_response(
                        &ApiError::not_acceptable(&codec::OFFERED_MEDIA_TYPES),
                        pretty,
                    ));
                };
                if let Target::DiscoveryList { version } = &negotiated.target {
                    return Some(self.aggregated(
                        parts[0] == "api",
                        version,
                        &negotiated,
                        if_none_match,
                        pretty,
                    ));
                }
                Some(if parts[0] == "api" {
                    self.respond(&self.api_versions(), &negotiated, pretty)
                } else {
                    self.respond(&self.group_list(), &negotiated, pretty)
                })
            }
            ["api", version] => {
                let list = self.resource_list("", version)?;
                Some(self.respond_plain(&list, accept, pretty))
            }
            ["apis", group] => {
                let group = self.group(group)?;
                Some(self.respond_plain(&group, accept, pretty))
            }
            ["apis", group, version] => {
                let list = self.resource_list(group, version)?;
                Some(self.respond_plain(&list, accept, pretty))
            }
            _ => None,
        }
    }

    fn respond_plain<T: serde::Serialize>(
        &self,
        value: &T,
        accept: Option<&str>,
        pretty: bool,
    ) -> Response {
        match codec::negotiate(accept, Offers::default()) {
            Some(negotiated) => self.respond(value, &negotiated, pretty),
            None => status_response(
                &ApiError::not_acceptable(&codec::OFFERED_MEDIA_TYPES),
                pretty,
            ),
        }
    }

    fn respond<T: serde::Serialize>(
        &self,
        value: &T,
        negotiated: &Negotiated,
        pretty: bool,
    ) -> Response {
        responses::value_response(
            StatusCode::OK,
            value,
            negotiated.format,
            negotiated.format.content_type(),
            pretty,
        )
    }

    /// `/api`.
    pub fn api_versions(&self) -> ApiVersions {
        let versions = self
            .groups()
            .get(&group_key(""))
            .map(|versions| versions.keys().cloned().collect())
            .unwrap_or_default();
        ApiVersions {
            kind: "APIVersions",
            versions,
            server_address_by_client_cidrs: vec![ServerAddressByClientCidr {
                client_cidr: "0.0.0.0/0".into(),
                server_address: self.server_address.to_owned(),
            }],
        }
    }

    fn api_group(
        name: &str,
        versions: &BTreeMap<String, Vec<&ResourceInfo>>,
        standalone: bool,
    ) -> ApiGroup {
        let versions: Vec<GroupVersionForDiscovery> = versions
            .keys()
            .rev()
            .map(|version| GroupVersionForDiscovery {
                group_version: format!("{name}/{version}"),
                version: version.clone(),
            })
            .collect();
        let preferred = versions
            .first()
            .cloned()
            .unwrap_or(GroupVersionForDiscovery {
                group_version: String::new(),
                version: String::new(),
            });
        ApiGroup {
            kind: standalone.then_some("APIGroup"),
            api_version: standalone.then_some("v1"),
            name: name.to_owned(),
            versions,
            preferred_version: preferred,
        }
    }

    /// `/apis`.
    pub fn group_list(&self) -> ApiGroupList {
        let groups = self
            .groups()
            .iter()
            .filter(|((_, name), _)| !name.is_empty())
            .map(|((_, name), versions)| Self::api_group(name, versions, false))
            .collect();
        ApiGroupList {
            kind: "APIGroupList",
            api_version: "v1",
            groups,
        }
    }

    fn group(&self, name: &str) -> Option<ApiGroup> {
        let groups = self.groups();
        let versions = groups.get(&group_key(name)).filter(|_| !name.is_empty())?;
        Some(Self::api_group(name, versions, true))
    }

    /// `/api/{version}` or `/apis/{group}/{version}`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<ApiResourceList> {
        let groups = self.groups();
        let resources = groups.get(&group_key(group))?.get(version)?;
        let mut entries = Vec::new();
        for info in resources {
            entries.push(ApiResource {
                name: info.resource.clone(),
                singular_name: info.singular.clone(),
                namespaced: info.namespaced,
                group: String::new(),
                version: String::new(),
                kind: info.kind.clone(),
                verbs: info.verbs.clone(),
                short_names: info.short_names.clone(),
                categories: info.categories.clone(),
                storage_version_hash: {
                    let stored = info.storage_group_version_kind();
                    storage_version_hash(&stored.group, &stored.version, &stored.kind)
                },
            });
            let mut subresources = info.subresources.clone();
            subresources.sort_by(|a, b| a.name.cmp(&b.name));
            for sub in subresources {
                entries.push(ApiResource {
                    name: format!("{}/{}", info.resource, sub.name),
                    singular_name: String::new(),
                    namespaced: info.namespaced,
                    group: String::new(),
                    version: String::new(),
                    kind: info.kind.clone(),
                    verbs: sub.verbs.clone(),
                    short_names: Vec::new(),
                    categories: Vec::new(),
                    storage_version_hash: String::new(),
                });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Some(ApiResourceList {
            kind: "APIResourceList",
            api_version: "v1",
            group_version: if group.is_empty() {
                version.to_owned()
            } else {
                format!("{group}/{version}")
            },
            resources: entries,
        })
    }

    /// Aggregated discovery of the core group (`/api`) or of every other group (`/apis`).
    pub fn aggregated_list(&self, core: bool, version: &str) -> ApiGroupDiscoveryList {
        let items = self
            .groups()
            .iter()
            .filter(|((_, name), _)| name.is_empty() == core)
            .map(|((_, name), versions)| ApiGroupDiscovery {
                metadata: GroupDiscoveryMeta {
                    name: name.clone(),
                    creation_timestamp: None,
                },
                versions: versions
                    .iter()
                    .rev()
                    .map(|(version, resources)| ApiVersionDiscovery {
                        version: version.clone(),
                        resources: resources
                            .iter()
                            .map(|info| resource_discovery(info))
                            .collect(),
                        freshness: "Current",
                    })
                    .collect(),
            })
            .collect();
        ApiGroupDiscoveryList {
            kind: "APIGroupDiscoveryList",
            api_version: format!("apidiscovery.k8s.io/{version}"),
            metadata: EmptyMeta {},
            items,
        }
    }

    fn aggregated(
        &self,
        core: bool,
        version: &str,
        negotiated: &Negotiated,
        if_none_match: Option<&str>,
        pretty: bool,
    ) -> Response {
        let list = self.aggregated_list(core, version);
        let bytes = responses::encode(&list, negotiated.format, pretty);
        let etag = format!("\"{}\"", hex_upper(&Sha512::digest(&bytes)));
        let mut response = if if_none_match == Some(etag.as_str()) {
            let mut response = http::Response::new(body::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        } else {
            responses::response(StatusCode::OK, &content_type(negotiated), body::full(bytes))
        };
        let headers = response.headers_mut();
        headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("public"),
        );
        headers.insert(http::header::VARY, http::HeaderValue::from_static("Accept"));
        if let Ok(value) = http::HeaderValue::from_str(&etag) {
            headers.insert(http::header::ETAG, value);
        }
        response
    }
}

/// The groups upstream 1.32 serves, in the order its discovery lists them (its group
/// priorities); clients that resolve an ambiguous short name take the first match, and kubectl
/// names the others in its warning.
const GROUP_ORDER: [&str; 19] = [
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

/// Where a group sorts: the core group first, then upstream's built-in groups in their order,
/// then every other group by name.
fn group_key(group: &str) -> (usize, String) {
    let rank = if group.is_empty() {
        0
    } else {
        GROUP_ORDER
            .iter()
            .position(|known| *known == group)
            .map_or(GROUP_ORDER.len() + 1, |index| index + 1)
    };
    (rank, group.to_owned())
}

fn resource_discovery(info: &ResourceInfo) -> ApiResourceDiscovery {
    let kind = DiscoveryKind {
        group: String::new(),
        version: String::new(),
        kind: info.kind.clone(),
    };
    let mut subresources: Vec<ApiSubresourceDiscovery> = info
        .subresources
        .iter()
        .map(|sub| ApiSubresourceDiscovery {
            subresource: sub.name.clone(),
            response_kind: kind.clone(),
            verbs: sub.verbs.clone(),
        })
        .collect();
    subresources.sort_by(|a, b| a.subresource.cmp(&b.subresource));
    ApiResourceDiscovery {
        resource: info.resource.clone(),
        response_kind: kind,
        scope: if info.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        },
        singular_resource: info.singular.clone(),
        verbs: info.verbs.clone(),
        short_names: info.short_names.clone(),
        categories: info.categories.clone(),
        subresources,
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_version_hashes_match_upstream() {
        assert_eq!(storage_version_hash("", "v1", "ConfigMap"), "qFsyl6wFWjQ=");
        assert_eq!(storage_version_hash("", "v1", "Namespace"), "Q3oi5N2YM8M=");
    }
}
