//! Resource names (`cpu`, `requests.memory`, `example.com/gpu`) as quotas and limit ranges use
//! them: which names are standard where, which count in whole units, and upstream's checks of
//! a name in each place.

use std::collections::BTreeMap;

use ironplane_apimachinery::field::{BadValue, Error, ErrorList, Path};
use ironplane_apimachinery::quantity::Quantity;
use ironplane_apimachinery::validation::is_qualified_name;
use serde_json::Value;

const HUGE_PAGES_PREFIX: &str = "hugepages-";
const REQUESTS_HUGE_PAGES_PREFIX: &str = "requests.hugepages-";
const REQUESTS_PREFIX: &str = "requests.";
const NATIVE_NAMESPACE: &str = "kubernetes.io/";

/// Names a quota can track without a domain prefix.
const STANDARD_QUOTA: [&str; 19] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

/// Object counts: whole units only.
const INTEGER: [&str; 9] = [
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

/// What a container may request without a domain prefix (besides huge pages).
const STANDARD_CONTAINER: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

fn is_huge_pages(name: &str) -> bool {
    name.starts_with(HUGE_PAGES_PREFIX)
}

fn is_quota_huge_pages(name: &str) -> bool {
    is_huge_pages(name) || name.starts_with(REQUESTS_HUGE_PAGES_PREFIX)
}

/// Names the system knows without a domain prefix: what quotas track, and volume storage.
fn is_standard(name: &str) -> bool {
    is_standard_quota(name) || name == "storage"
}

/// Whether a quota tracks `name` without a domain prefix.
pub fn is_standard_quota(name: &str) -> bool {
    STANDARD_QUOTA.contains(&name) || is_quota_huge_pages(name)
}

fn is_standard_container(name: &str) -> bool {
    STANDARD_CONTAINER.contains(&name) || is_huge_pages(name)
}

/// Unprefixed names and names under `kubernetes.io/` belong to Kubernetes itself.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains(NATIVE_NAMESPACE)
}

/// A device plugin's resource (`example.com/gpu`): prefixed outside Kubernetes, and still a
/// qualified name once quota puts `requests.` in front.
fn is_extended(name: &str) -> bool {
    if is_native(name) || name.starts_with(REQUESTS_PREFIX) {
        return false;
    }
    is_qualified_name(&format!("{REQUESTS_PREFIX}{name}")).is_empty()
}

/// Whether `name` counts whole units only.
pub fn is_integer(name: &str) -> bool {
    INTEGER.contains(&name) || is_extended(name)
}

/// Whether requests of `name` may be below their limits (not huge pages nor extended resources).
pub fn is_overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_huge_pages(name)
}

/// A resource list (`{"cpu": "1", "memory": "1Gi"}`) by name; entries that are not quantities
/// (which decoding rules out) are left out.
pub fn resource_list(value: Option<&Value>) -> BTreeMap<&str, Quantity> {
    let Some(Value::Object(list)) = value else {
        return BTreeMap::new();
    };
    list.iter()
        .filter_map(|(name, value)| Some((name.as_str(), Quantity::parse(value.as_str()?).ok()?)))
        .collect()
}

/// A resource name prints bare in errors (it is a `fmt.Stringer` upstream).
fn bare(name: &str) -> BadValue {
    BadValue::Raw(name.to_owned())
}

/// A qualified name, and standard unless it has a domain prefix.
pub fn validate_resource_name(name: &str, path: &Path) -> ErrorList {
    let errors: ErrorList = is_qualified_name(name)
        .iter()
        .map(|message| Error::invalid(path, bare(name), message))
        .collect();
    if !errors.is_empty() {
        return errors;
    }
    if !name.contains('/') && !is_standard(name) {
        return vec![Error::invalid(
            path,
            bare(name),
            "must be a standard resource type or fully qualified",
        )];
    }
    Vec::new()
}

/// A name a container (or a pod) may ask for.
pub fn validate_container_resource_name(name: &str, path: &Path) -> ErrorList {
    let mut errors = validate_resource_name(name, path);
    if !name.contains('/') {
        if !is_standard_container(name) {
            errors.push(Error::invalid(
                path,
                bare(name),
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && !is_extended(name) {
        errors.push(Error::invalid(
            path,
            bare(name),
            "doesn't follow extended resource name standard",
        ));
    }
    errors
}

/// A name a quota may hold.
pub fn validate_quota_resource_name(name: &str, path: &Path) -> ErrorList {
    let mut errors = validate_resource_name(name, path);
    if !name.contains('/') && !is_standard_quota(name) {
        errors.push(Error::invalid(
            path,
            bare(name),
            "must be a standard resource for quota",
        ));
    }
    errors
}

/// Not negative, and whole for object counts and extended resources.
pub fn validate_quantity_value(name: &str, quantity: &Quantity, path: &Path) -> ErrorList {
    let mut errors = Vec::new();
    if quantity.is_negative() {
        errors.push(Error::invalid(
            path,
            quantity.to_canonical_string(),
            "must be greater than or equal to 0",
        ));
    }
    if is_integer(name) && quantity.milli_value() % 1000 != 0 {
        errors.push(Error::invalid(
            path,
            BadValue::Raw(quantity.go_repr()),
            "must be an integer",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_as_upstream_does() {
        assert!(is_standard_quota("requests.hugepages-2Mi"));
        assert!(!is_standard_quota("storage"));
        assert!(is_integer("configmaps"));
        assert!(is_integer("example.com/gpu"));
        assert!(!is_integer("requests.example.com/gpu"));
        assert!(!is_integer("cpu"));
        assert!(!is_overcommit_allowed("hugepages-2Mi"));
        assert!(!is_overcommit_allowed("example.com/gpu"));
        assert!(is_overcommit_allowed("kubernetes.io/foo"));
    }

    #[test]
    fn quota_names_report_both_problems() {
        let path = Path::new("spec").child("hard").key("x");
        let messages: Vec<String> = validate_quota_resource_name("x", &path)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                "spec.hard[x]: Invalid value: x: must be a standard resource type or fully qualified",
                "spec.hard[x]: Invalid value: x: must be a standard resource for quota",
            ]
        );
        assert!(validate_quota_resource_name("count/foo", &path).is_empty());
    }

    #[test]
    fn container_names_need_a_known_or_extended_name() {
        let path = Path::new("max").key("n");
        assert!(validate_container_resource_name("hugepages-2Mi", &path).is_empty());
        assert!(validate_container_resource_name("example.com/gpu", &path).is_empty());
        let storage = validate_container_resource_name("storage", &path);
        assert_eq!(storage.len(), 1);
        assert!(
            storage[0]
                .to_string()
                .ends_with("must be a standard resource for containers")
        );
        let requests = validate_container_resource_name("requests.x/y", &path);
        assert_eq!(requests.len(), 1);
        assert!(
            requests[0]
                .to_string()
                .ends_with("doesn't follow extended resource name standard")
        );
    }
}
