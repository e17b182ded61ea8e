//! What the API knows about a resource: its names, scope, verbs and subresources. Discovery,
//! request routing and error messages all read it, so a resource appears everywhere at once.

use ironplane_apimachinery::{GroupKind, GroupResource, GroupVersion, GroupVersionKind};

/// A served resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: String,
    /// Served version.
    pub version: String,
    /// Plural name, as in the URL: `configmaps`.
    pub resource: String,
    /// Singular name: `configmap`.
    pub singular: String,
    /// Kind: `ConfigMap`.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names: `cm`.
    pub short_names: Vec<String>,
    /// Categories: `all`.
    pub categories: Vec<String>,
    /// Verbs the main resource supports.
    pub verbs: Vec<String>,
    /// Subresources such as `status`, with their verbs.
    pub subresources: Vec<SubresourceInfo>,
    /// The group, version and kind objects are stored as, when not the served ones (events.k8s.io
    /// Events are stored as core/v1 Events).
    pub stored_as: Option<GroupVersionKind>,
}

/// A subresource and its verbs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubresourceInfo {
    /// `status`, `finalize`.
    pub name: String,
    /// Verbs, such as `get`, `patch`, `update`.
    pub verbs: Vec<String>,
}

/// The verbs of an ordinary namespaced resource.
pub const STANDARD_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceInfo {
    /// A resource with the standard verbs and no subresources.
    pub fn new(
        group: &str,
        version: &str,
        resource: &str,
        singular: &str,
        kind: &str,
        namespaced: bool,
    ) -> Self {
        ResourceInfo {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
            singular: singular.into(),
            kind: kind.into(),
            namespaced,
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: STANDARD_VERBS.iter().map(|verb| verb.to_string()).collect(),
            subresources: Vec::new(),
            stored_as: None,
        }
    }

    /// Stored as another group, version and kind.
    pub fn stored_as(mut self, group: &str, version: &str, kind: &str) -> Self {
        self.stored_as = Some(GroupVersionKind::new(group, version, kind));
        self
    }

    /// The group, version and kind objects are stored as.
    pub fn storage_group_version_kind(&self) -> GroupVersionKind {
        self.stored_as
            .clone()
            .unwrap_or_else(|| self.group_version_kind())
    }

    /// With short names.
    pub fn short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|name| name.to_string()).collect();
        self
    }

    /// With these verbs instead of the standard ones.
    pub fn verbs(mut self, verbs: &[&str]) -> Self {
        self.verbs = verbs.iter().map(|verb| verb.to_string()).collect();
        self
    }

    /// With a subresource.
    pub fn subresource(mut self, name: &str, verbs: &[&str]) -> Self {
        self.subresources.push(SubresourceInfo {
            name: name.into(),
            verbs: verbs.iter().map(|verb| verb.to_string()).collect(),
        });
        self
    }

    /// Whether the main resource supports `verb`.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// The group and resource, as error messages print it.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(self.group.clone(), self.resource.clone())
    }

    /// The group and kind, as Invalid errors print it: upstream names the kind objects are
    /// stored as (its internal kind), so an invalid events.k8s.io Event is an `Event`.
    pub fn group_kind(&self) -> GroupKind {
        match &self.stored_as {
            Some(stored) => GroupKind::new(stored.group.clone(), stored.kind.clone()),
            None => GroupKind::new(self.group.clone(), self.kind.clone()),
        }
    }

    /// The group and version.
    pub fn group_version(&self) -> GroupVersion {
        GroupVersion::new(self.group.clone(), self.version.clone())
    }

    /// The full kind.
    pub fn group_version_kind(&self) -> GroupVersionKind {
        GroupVersionKind::new(self.group.clone(), self.version.clone(), self.kind.clone())
    }

    /// `apiVersion` of the served objects.
    pub fn api_version(&self) -> String {
        self.group_version().to_string()
    }

    /// The kind of lists: `ConfigMapList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}
