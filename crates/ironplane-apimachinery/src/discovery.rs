//! Discovery documents: the legacy `/api`, `/apis`, `/apis/{group}/{version}` shapes and
//! aggregated discovery (`apidiscovery.k8s.io` v2 and v2beta1), with upstream's field names.

use serde::Serialize;

/// `/api`: the versions of the core group.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiVersions {
    /// `APIVersions`.
    pub kind: &'static str,
    /// `["v1"]`.
    pub versions: Vec<String>,
    /// Where clients reach the server.
    #[serde(rename = "serverAddressByClientCIDRs")]
    pub server_address_by_client_cidrs: Vec<ServerAddressByClientCidr>,
}

/// One client network and the address it should use.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerAddressByClientCidr {
    /// `0.0.0.0/0`.
    #[serde(rename = "clientCIDR")]
    pub client_cidr: String,
    /// `host:port`.
    pub server_address: String,
}

/// `/apis`: every group.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGroupList {
    /// `APIGroupList`.
    pub kind: &'static str,
    /// `v1`.
    pub api_version: &'static str,
    /// The groups.
    pub groups: Vec<ApiGroup>,
}

/// `/apis/{group}`: one group and its versions.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGroup {
    /// `APIGroup` when served alone; omitted inside a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// `v1` when served alone; omitted inside a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<&'static str>,
    /// The group name.
    pub name: String,
    /// Versions, preferred first.
    pub versions: Vec<GroupVersionForDiscovery>,
    /// The preferred version.
    pub preferred_version: GroupVersionForDiscovery,
}

/// A version of a group.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupVersionForDiscovery {
    /// `group/version`.
    pub group_version: String,
    /// `version`.
    pub version: String,
}

/// `/api/v1`, `/apis/{group}/{version}`: the resources of one group version.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiResourceList {
    /// `APIResourceList`.
    pub kind: &'static str,
    /// `v1`.
    pub api_version: &'static str,
    /// `group/version`.
    pub group_version: String,
    /// The resources and subresources.
    pub resources: Vec<ApiResource>,
}

/// One resource or subresource in an `APIResourceList`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiResource {
    /// `configmaps` or `namespaces/status`.
    pub name: String,
    /// `configmap`; empty for subresources.
    pub singular_name: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// The group, when it differs from the list's.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The version, when it differs from the list's.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The kind.
    pub kind: String,
    /// Supported verbs, sorted.
    pub verbs: Vec<String>,
    /// Short names such as `cm`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub short_names: Vec<String>,
    /// Categories such as `all`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// A hash of the storage version, for clients that watch for storage migrations.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub storage_version_hash: String,
}

/// Aggregated discovery: every group with its versions and resources.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGroupDiscoveryList {
    /// `APIGroupDiscoveryList`.
    pub kind: &'static str,
    /// `apidiscovery.k8s.io/v2` or `apidiscovery.k8s.io/v2beta1`.
    pub api_version: String,
    /// Empty list metadata.
    pub metadata: EmptyMeta,
    /// The groups (one entry, unnamed, for `/api`).
    pub items: Vec<ApiGroupDiscovery>,
}

/// Serializes as `{}`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EmptyMeta {}

/// One group in aggregated discovery.
#[derive(Clone, Debug, Serialize)]
pub struct ApiGroupDiscovery {
    /// The group's name (absent for the core group) and a null creation timestamp.
    pub metadata: GroupDiscoveryMeta,
    /// Versions, preferred first.
    pub versions: Vec<ApiVersionDiscovery>,
}

/// The metadata of an `APIGroupDiscovery`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDiscoveryMeta {
    /// The group name; omitted for the core group.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Always null, as upstream writes it.
    pub creation_timestamp: Option<String>,
}

/// One version of a group in aggregated discovery.
#[derive(Clone, Debug, Serialize)]
pub struct ApiVersionDiscovery {
    /// `v1`.
    pub version: String,
    /// The resources.
    pub resources: Vec<ApiResourceDiscovery>,
    /// `Current` or `Stale`.
    pub freshness: &'static str,
}

/// A group/version/kind as discovery writes it (empty group and version mean "as the parent").
#[derive(Clone, Debug, Serialize)]
pub struct DiscoveryKind {
    /// Group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

/// One resource in aggregated discovery.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiResourceDiscovery {
    /// `configmaps`.
    pub resource: String,
    /// The kind returned.
    pub response_kind: DiscoveryKind,
    /// `Namespaced` or `Cluster`.
    pub scope: &'static str,
    /// `configmap`.
    pub singular_resource: String,
    /// Supported verbs, sorted.
    pub verbs: Vec<String>,
    /// Short names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub short_names: Vec<String>,
    /// Categories.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Subresources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subresources: Vec<ApiSubresourceDiscovery>,
}

/// One subresource in aggregated discovery.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiSubresourceDiscovery {
    /// `status`.
    pub subresource: String,
    /// The kind returned.
    pub response_kind: DiscoveryKind,
    /// Supported verbs, sorted.
    pub verbs: Vec<String>,
}
