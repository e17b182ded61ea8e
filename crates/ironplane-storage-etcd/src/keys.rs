//! Where the contract's keys live in etcd.
//!
//! The registry hands the store keys that begin with `/registry` (`/registry/configmaps/ns/name`).
//! kube-apiserver's `--etcd-prefix` (default `/registry`) says where in etcd the resources live.
//! [`KeyMap`] joins the two: the leading *key root* of every contract key (`/registry`) is replaced
//! by the *etcd prefix*. With the defaults nothing changes, so `etcdctl get --prefix /registry/`
//! shows exactly the keys the registry wrote; with `--etcd-prefix=/cluster-a` the same ConfigMap is
//! stored at `/cluster-a/configmaps/ns/name`, as upstream stores it.
//!
//! The mapping is a bijection between contract keys that start with the root and etcd keys that
//! start with the prefix. Keys outside the root are refused as invalid; etcd keys outside the
//! prefix (another cluster's, or the compactor's `compact_rev_key`) are not this store's and are
//! never returned.

use ironplane_storage::StorageError;

/// The smallest etcd key, used as the start of "every key".
const ALL_KEYS_START: &[u8] = b"\0";
/// A range end of `\0` means "to the end of the key space" in etcd.
const ALL_KEYS_END: &[u8] = b"\0";

/// The translation between contract keys and etcd keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMap {
    root: String,
    prefix: String,
}

/// A range of etcd keys: `[start, end)`, where an `end` of `\0` means "to the end".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EtcdRange {
    pub(crate) start: Vec<u8>,
    pub(crate) end: Vec<u8>,
}

impl KeyMap {
    /// Contract keys start with `root`; in etcd, `prefix` stands in its place.
    pub fn new(root: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            prefix: prefix.into(),
        }
    }

    /// The contract's key root.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The etcd prefix that replaces the root.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The etcd key of a contract key.
    pub(crate) fn to_etcd(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let rest =
            key.strip_prefix(self.root.as_str())
                .ok_or_else(|| StorageError::InvalidKey {
                    key: key.chars().take(256).collect(),
                    reason: "the key is outside the store's key root",
                })?;
        let mut etcd = Vec::with_capacity(self.prefix.len() + rest.len());
        etcd.extend_from_slice(self.prefix.as_bytes());
        etcd.extend_from_slice(rest.as_bytes());
        Ok(etcd)
    }

    /// The contract key of an etcd key, or `None` if the etcd key is not this store's.
    pub(crate) fn contract_key(&self, key: &[u8]) -> Option<String> {
        let rest = key.strip_prefix(self.prefix.as_bytes())?;
        let rest = std::str::from_utf8(rest).ok()?;
        let mut contract = String::with_capacity(self.root.len() + rest.len());
        contract.push_str(&self.root);
        contract.push_str(rest);
        Some(contract)
    }

    /// Like [`contract_key`](Self::contract_key), taking the key's bytes to avoid a copy when the
    /// mapping is the identity.
    pub(crate) fn contract_key_owned(&self, key: Vec<u8>) -> Option<String> {
        if self.root == self.prefix {
            return String::from_utf8(key).ok();
        }
        self.contract_key(&key)
    }

    /// The etcd range holding every contract key that starts with `prefix`.
    ///
    /// A prefix inside the root maps directly; a prefix that the root itself starts with (such as
    /// `/` for the root `/registry`) covers everything under the etcd prefix. Any other prefix
    /// matches no key of this store and is refused.
    pub(crate) fn prefix_range(&self, prefix: &str) -> Result<EtcdRange, StorageError> {
        let start = if prefix.starts_with(self.root.as_str()) {
            self.to_etcd(prefix)?
        } else if self.root.starts_with(prefix) {
            self.prefix.as_bytes().to_vec()
        } else {
            return Err(StorageError::InvalidKey {
                key: prefix.chars().take(256).collect(),
                reason: "the prefix is outside the store's key root",
            });
        };
        if start.is_empty() {
            return Ok(EtcdRange {
                start: ALL_KEYS_START.to_vec(),
                end: ALL_KEYS_END.to_vec(),
            });
        }
        let end = prefix_end(&start);
        Ok(EtcdRange { start, end })
    }
}

impl Default for KeyMap {
    /// The registry's root `/registry`, stored unchanged under the etcd prefix `/registry`.
    fn default() -> Self {
        Self::new("/registry", "/registry")
    }
}

/// The first key after every key that starts with `prefix`: the end of a prefix range.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xFF: the range runs to the end of the key space.
    ALL_KEYS_END.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_round_trip(map: &KeyMap, contract: &str, etcd: &str) {
        assert_eq!(map.to_etcd(contract).unwrap(), etcd.as_bytes());
        assert_eq!(map.contract_key(etcd.as_bytes()).as_deref(), Some(contract));
        assert_eq!(
            map.contract_key_owned(etcd.as_bytes().to_vec()).as_deref(),
            Some(contract)
        );
    }

    #[test]
    fn default_layout_is_the_identity() {
        let map = KeyMap::default();
        check_round_trip(
            &map,
            "/registry/configmaps/default/a",
            "/registry/configmaps/default/a",
        );
        check_round_trip(
            &map,
            "/registry/namespaces/default",
            "/registry/namespaces/default",
        );
        assert!(map.to_etcd("/pods/x").is_err());
        assert_eq!(map.contract_key(b"compact_rev_key"), None);
    }

    #[test]
    fn another_prefix_replaces_the_root() {
        let map = KeyMap::new("/registry", "/cluster-a");
        check_round_trip(
            &map,
            "/registry/configmaps/ns/a",
            "/cluster-a/configmaps/ns/a",
        );
        assert_eq!(map.contract_key(b"/registry/configmaps/ns/a"), None);
        assert_eq!(map.contract_key(b"compact_rev_key"), None);
    }

    #[test]
    fn an_empty_root_prefixes_every_key() {
        let map = KeyMap::new("", "/suite");
        check_round_trip(&map, "/pods/ns/a", "/suite/pods/ns/a");
        check_round_trip(&map, "/", "/suite/");
        assert_eq!(map.contract_key(b"/other/x"), None);
    }

    #[test]
    fn prefix_ranges() {
        let check = |map: &KeyMap, prefix: &str, start: &[u8], end: &[u8]| {
            let range = map.prefix_range(prefix).unwrap();
            assert_eq!(range.start, start, "start of {prefix:?}");
            assert_eq!(range.end, end, "end of {prefix:?}");
        };
        let default = KeyMap::default();
        check(
            &default,
            "/registry/configmaps/",
            b"/registry/configmaps/",
            b"/registry/configmaps0",
        );
        check(&default, "/", b"/registry", b"/registrz");
        check(&default, "", b"/registry", b"/registrz");
        assert!(default.prefix_range("/pods/").is_err());
        let suite = KeyMap::new("", "/suite");
        check(&suite, "/ns1/", b"/suite/ns1/", b"/suite/ns10");
        check(&suite, "/ns1", b"/suite/ns1", b"/suite/ns2");
        let bare = KeyMap::new("", "");
        check(&bare, "", b"\0", b"\0");
        check(&bare, "/", b"/", b"0");
    }

    #[test]
    fn prefix_end_carries_over_0xff() {
        assert_eq!(prefix_end(b"a"), b"b");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
    }
}
