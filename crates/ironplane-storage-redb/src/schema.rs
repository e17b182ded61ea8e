//! The on-disk layout: redb table definitions and the byte encodings of their keys and records.
//!
//! docs/storage.md describes the same layout in prose; keep the two in step.
//!
//! Every integer is stored big-endian inside keys (so byte order is numeric order) and
//! little-endian inside records. Keys of the store never contain a NUL byte (the contract rejects
//! them), which lets a history key be `key ++ 0x00 ++ revision`: all versions of one key sort
//! together, oldest first, and before any longer key that starts with it.

use bytes::Bytes;
use ironplane_storage::{KeyValue, Revision};
use redb::TableDefinition;

/// Current state: key → [`Current`] record (the live value of every existing key).
pub(crate) const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
/// Superseded versions: `key ++ 0 ++ revision` → [`Version`] record.
pub(crate) const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");
/// The revision log: revision → [`LogEntry`], one per committed change.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Expiry index: `expiry (unix ms, big-endian) ++ key` → ().
pub(crate) const TTL: TableDefinition<&[u8], ()> = TableDefinition::new("ttl");
/// Counters, see the `META_*` names.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The revision of the last committed change.
pub(crate) const META_REVISION: &str = "revision";
/// The compaction point asked for: reads at or below it fail with `Compacted`.
pub(crate) const META_COMPACT: &str = "compact_revision";
/// How far compaction has physically removed records (always ≤ `META_COMPACT`).
pub(crate) const META_COMPACTED_THROUGH: &str = "compacted_through";
/// Bytes held only for history: superseded versions plus log entries.
pub(crate) const META_RETAINED_BYTES: &str = "retained_bytes";
/// The sequence number of the last write-ahead log record whose changes the tables hold (0 when
/// none was ever written). Recovery replays the records after it.
pub(crate) const META_WAL_SEQ: &str = "wal_seq";
/// The layout version of this file.
pub(crate) const META_FORMAT: &str = "format";
/// The layout version this code writes.
pub(crate) const FORMAT_VERSION: u64 = 1;

const CURRENT_HEADER: usize = 32;
const VERSION_HEADER: usize = 32;
const LOG_HEADER: usize = 25;

/// A corrupt or unreadable record: always a bug or a damaged file.
#[derive(Debug, thiserror::Error)]
#[error("corrupt {what} record")]
pub(crate) struct Corrupt {
    what: &'static str,
}

/// A `Corrupt` error about `what`.
pub(crate) fn corrupt(what: &'static str) -> Corrupt {
    Corrupt { what }
}

fn u64_at(bytes: &[u8], at: usize, what: &'static str) -> Result<u64, Corrupt> {
    bytes
        .get(at..at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or(Corrupt { what })
}

/// Revisions are positive in practice; this keeps the conversion total.
pub(crate) fn rev_u64(rev: Revision) -> u64 {
    u64::try_from(rev).unwrap_or(0)
}

/// The inverse of [`rev_u64`], saturating.
pub(crate) fn rev_i64(rev: u64) -> Revision {
    Revision::try_from(rev).unwrap_or(Revision::MAX)
}

/// The live state of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Current {
    pub create_revision: u64,
    pub mod_revision: u64,
    pub version: u64,
    /// Unix milliseconds after which the key expires; 0 for none.
    pub expiry_ms: u64,
    pub value: Bytes,
}

impl Current {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CURRENT_HEADER + self.value.len());
        out.extend_from_slice(&self.create_revision.to_le_bytes());
        out.extend_from_slice(&self.mod_revision.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.expiry_ms.to_le_bytes());
        out.extend_from_slice(&self.value);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Corrupt> {
        let (mut current, value) = Self::decode_split(bytes)?;
        current.value = Bytes::copy_from_slice(value);
        Ok(current)
    }

    /// Decode everything but the value, which is returned as a slice of `bytes` (and left empty
    /// in the record) for the caller to copy where it likes.
    pub(crate) fn decode_split(bytes: &[u8]) -> Result<(Self, &[u8]), Corrupt> {
        const WHAT: &str = "kv";
        let current = Self {
            create_revision: u64_at(bytes, 0, WHAT)?,
            mod_revision: u64_at(bytes, 8, WHAT)?,
            version: u64_at(bytes, 16, WHAT)?,
            expiry_ms: u64_at(bytes, 24, WHAT)?,
            value: Bytes::new(),
        };
        Ok((
            current,
            bytes.get(CURRENT_HEADER..).ok_or(Corrupt { what: WHAT })?,
        ))
    }

    /// Only the modification revision, without copying the value.
    pub(crate) fn decode_mod_revision(bytes: &[u8]) -> Result<u64, Corrupt> {
        u64_at(bytes, 8, "kv")
    }

    pub(crate) fn to_kv(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.value.clone(),
            create_revision: rev_i64(self.create_revision),
            mod_revision: rev_i64(self.mod_revision),
            version: rev_i64(self.version),
        }
    }
}

/// A superseded version of a key, valid for reads at revisions in
/// `[mod_revision, superseded_at)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Version {
    pub create_revision: u64,
    pub version: u64,
    /// The revision of the change that replaced or deleted this version.
    pub superseded_at: u64,
    pub value: Bytes,
}

impl Version {
    pub(crate) fn encode(
        create_revision: u64,
        version: u64,
        superseded_at: u64,
        value: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(VERSION_HEADER + value.len());
        out.extend_from_slice(&create_revision.to_le_bytes());
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&superseded_at.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Corrupt> {
        let (mut version, value) = Self::decode_split(bytes)?;
        version.value = Bytes::copy_from_slice(value);
        Ok(version)
    }

    /// Decode everything but the value, which is returned as a slice of `bytes`.
    pub(crate) fn decode_split(bytes: &[u8]) -> Result<(Self, &[u8]), Corrupt> {
        const WHAT: &str = "history";
        let version = Self {
            create_revision: u64_at(bytes, 0, WHAT)?,
            version: u64_at(bytes, 8, WHAT)?,
            superseded_at: u64_at(bytes, 16, WHAT)?,
            value: Bytes::new(),
        };
        Ok((
            version,
            bytes.get(VERSION_HEADER..).ok_or(Corrupt { what: WHAT })?,
        ))
    }

    pub(crate) fn decode_superseded_at(bytes: &[u8]) -> Result<u64, Corrupt> {
        u64_at(bytes, 16, "history")
    }

    pub(crate) fn to_kv(&self, key: &str, mod_revision: u64) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.value.clone(),
            create_revision: rev_i64(self.create_revision),
            mod_revision: rev_i64(mod_revision),
            version: rev_i64(self.version),
        }
    }
}

/// What a log entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogKind {
    Put = 1,
    Delete = 2,
}

/// One committed change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogEntry {
    pub kind: LogKind,
    /// Wall-clock commit time, unix milliseconds (used by time-window compaction).
    pub commit_ms: u64,
    /// The modification revision of the version this change superseded; 0 for a create.
    pub prev_mod: u64,
    /// The size of the history record this change wrote for the superseded version.
    pub prev_bytes: u64,
    pub key: String,
}

impl LogEntry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LOG_HEADER + self.key.len());
        out.push(self.kind as u8);
        out.extend_from_slice(&self.commit_ms.to_le_bytes());
        out.extend_from_slice(&self.prev_mod.to_le_bytes());
        out.extend_from_slice(&self.prev_bytes.to_le_bytes());
        out.extend_from_slice(self.key.as_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Corrupt> {
        const WHAT: &str = "log";
        let kind = match bytes.first() {
            Some(1) => LogKind::Put,
            Some(2) => LogKind::Delete,
            _ => return Err(Corrupt { what: WHAT }),
        };
        let key = bytes
            .get(LOG_HEADER..)
            .and_then(|k| std::str::from_utf8(k).ok())
            .ok_or(Corrupt { what: WHAT })?;
        Ok(Self {
            kind,
            commit_ms: u64_at(bytes, 1, WHAT)?,
            prev_mod: u64_at(bytes, 9, WHAT)?,
            prev_bytes: u64_at(bytes, 17, WHAT)?,
            key: key.to_owned(),
        })
    }

    /// Only the commit time, without decoding the key.
    pub(crate) fn decode_commit_ms(bytes: &[u8]) -> Result<u64, Corrupt> {
        u64_at(bytes, 1, "log")
    }

    /// The key only, borrowed.
    pub(crate) fn key_of(bytes: &[u8]) -> Result<&[u8], Corrupt> {
        bytes.get(LOG_HEADER..).ok_or(Corrupt { what: "log" })
    }
}

/// `key ++ 0x00 ++ revision`.
pub(crate) fn history_key(key: &[u8], revision: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 9);
    out.extend_from_slice(key);
    out.push(0);
    out.extend_from_slice(&revision.to_be_bytes());
    out
}

/// Split a history key into the store key and the revision.
pub(crate) fn split_history_key(bytes: &[u8]) -> Result<(&[u8], u64), Corrupt> {
    let what = "history key";
    let split = bytes.len().checked_sub(9).ok_or(Corrupt { what })?;
    let (key, rest) = bytes.split_at(split);
    let rev = rest
        .get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or(Corrupt { what })?;
    Ok((key, rev))
}

/// `expiry ++ key`.
pub(crate) fn ttl_key(expiry_ms: u64, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 8);
    out.extend_from_slice(&expiry_ms.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// Split a TTL index key into the expiry and the store key.
pub(crate) fn split_ttl_key(bytes: &[u8]) -> Result<(u64, &[u8]), Corrupt> {
    let what = "ttl key";
    let expiry = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or(Corrupt { what })?;
    Ok((expiry, bytes.get(8..).ok_or(Corrupt { what })?))
}

/// The smallest byte string greater than every string that starts with `prefix`, or `None` when
/// there is none (an empty prefix or one made only of 0xff bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Whether `key` is matched by a watch or list of `filter`.
pub(crate) fn matches(key: &str, filter: &str, prefix: bool) -> bool {
    if prefix {
        key.starts_with(filter)
    } else {
        key == filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keys_sort_by_key_then_revision() {
        let mut keys = [
            history_key(b"/a/b", 1),
            history_key(b"/a", 300),
            history_key(b"/a", 2),
            history_key(b"/a0", 1),
        ];
        keys.sort();
        let split: Vec<_> = keys
            .iter()
            .map(|k| split_history_key(k).map(|(k, r)| (k.to_vec(), r)).ok())
            .collect();
        assert_eq!(
            split,
            vec![
                Some((b"/a".to_vec(), 2)),
                Some((b"/a".to_vec(), 300)),
                Some((b"/a/b".to_vec(), 1)),
                Some((b"/a0".to_vec(), 1)),
            ]
        );
    }

    #[test]
    fn prefix_end_cases() {
        let check = |input: &[u8], expected: Option<&[u8]>| {
            assert_eq!(prefix_end(input).as_deref(), expected, "{input:?}");
        };
        check(b"/ns1/", Some(b"/ns10"));
        check(b"a\xff", Some(b"b"));
        check(b"\xff\xff", None);
        check(b"", None);
    }

    #[test]
    fn records_round_trip() {
        let current = Current {
            create_revision: 3,
            mod_revision: 9,
            version: 4,
            expiry_ms: 77,
            value: Bytes::from_static(b"hello"),
        };
        assert_eq!(Current::decode(&current.encode()).ok(), Some(current));
        let entry = LogEntry {
            kind: LogKind::Delete,
            commit_ms: 5,
            prev_mod: 4,
            prev_bytes: 100,
            key: "/k".into(),
        };
        assert_eq!(LogEntry::decode(&entry.encode()).ok(), Some(entry));
        let version = Version::decode(&Version::encode(1, 2, 3, b"v")).ok();
        assert_eq!(
            version.map(|v| (v.superseded_at, v.value)),
            Some((3, Bytes::from_static(b"v")))
        );
        assert!(Current::decode(b"short").is_err());
        assert!(LogEntry::decode(&[9; 30]).is_err());
    }
}
