//! The write-ahead log: one checksummed record per group commit, appended and fsynced before the
//! group becomes visible, so that a group costs one sequential write and one `fdatasync` instead
//! of a durable redb commit. A record may be appended while earlier ones still wait for their
//! `fdatasync` (one `fdatasync` then covers them all); each record says how far the log was known
//! to be durable when it was written, which is what lets recovery tell a crash's torn tail from
//! damage to acknowledged records.
//!
//! docs/storage.md ("The write-ahead log") describes the protocol and why it is safe; this file
//! holds the record format, the file and the recovery scan.
//!
//! # The file
//!
//! `<database file>-wal`: a header page, then records from offset 4096. Each record starts on a
//! 4 KiB boundary (it is zero-padded to a whole number of pages), so that appending a record never
//! rewrites a page that holds an earlier, acknowledged one: a write torn by a power loss can only
//! damage the records being written (those not yet covered by an `fdatasync`). Each record carries a sequence number (`seq`, one more than
//! the record before it, for the life of the store) and the revision before its first change
//! (`base_revision`). After a checkpoint (a durable redb commit that contains every record so far)
//! the next record is written at offset 4096 again, over the old ones: the file is a ring of
//! passes, each pass starting at the front. The current pass is therefore the chain of records
//! from offset 4096 whose `seq` grows by one; it ends at the first place that does not hold a
//! valid record, or holds one with a smaller `seq` (left over from an earlier pass, and already in
//! the database).
//!
//! Layout version 1 (written before pipelined appends) has no durable mark in its records; it is
//! still read, with the stricter rule that any valid record after a damaged one is an error.
//!
//! The file is filled with zeros ahead of the records (in steps that double from 256 KiB up to
//! [`GROW_BYTES`]), so that appending a record overwrites blocks that already exist and
//! `fdatasync` has no file size to persist.
//!
//! # A record
//!
//! ```text
//! 0   magic "IPWR"
//! 4   body length (u32)
//! 8   seq (u64)
//! 16  base revision (u64): the revision before the record's first change
//! 24  CRC-32C of the body (u32)
//! 28  CRC-32C of bytes 0..28 (u32)
//! 32  body, then zero padding to a multiple of 4096
//!
//! body:   durable mark (u64: every record up to this seq was durable when this one was written),
//!         commit time (unix ms, u64), compaction point after the group (u64), changes (u32),
//!         then each change (version 1 bodies start at the commit time):
//! change: kind (u8: 1 put, 2 delete), key length (u32), key, previous modification revision
//!         (u64, 0 for a create); a put adds create revision (u64), version (u64), expiry
//!         (unix ms, u64, 0 for none), value length (u32), value
//! ```
//!
//! All integers are little-endian. The i-th change of a record has revision `base + 1 + i`.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// The file header: magic and layout version.
const FILE_MAGIC: &[u8; 16] = b"ironplane wal\0\0\0";
/// The layout version of the file this code writes (records carry a durable mark).
const FILE_VERSION: u32 = 2;
/// The layout version before the durable mark; still read.
const FILE_VERSION_1: u32 = 1;
/// The header's size (one page: 32 bytes used); the first record starts here.
pub(crate) const HEADER_LEN: u64 = 4096;
/// Records start on this boundary (a page): an append never rewrites an earlier record's page.
const RECORD_ALIGN: usize = 4096;
/// A record's magic.
const RECORD_MAGIC: &[u8; 4] = b"IPWR";
/// A record header's size.
const RECORD_HEADER: usize = 32;
/// The file is zero-filled this far ahead of the last record, at most.
pub(crate) const GROW_BYTES: u64 = 4 * 1024 * 1024;
/// The first zero fill of an empty log; each later one is as large as the file already is, up
/// to [`GROW_BYTES`], so that a fresh or idle store does not pay for 4 MiB of zeros (about 20 ms
/// of `fdatasync` here) on its first write.
const FIRST_GROW_BYTES: u64 = 256 * 1024;

/// A write-ahead log failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WalError {
    /// Reading or writing the file failed.
    #[error("write-ahead log {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold what this code wrote: acknowledged writes may be missing.
    #[error("write-ahead log {path} is damaged: {detail}")]
    Corrupt { path: String, detail: String },
    /// One group's record would not fit the format's 4 GiB bound.
    #[error("a group commit of {0} bytes is too large for one write-ahead log record")]
    TooLarge(usize),
}

fn io_error(path: &Path, source: std::io::Error) -> WalError {
    WalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Put = 1,
    Delete = 2,
}

/// One accepted change of a group, with everything needed to apply it again and to check that it
/// applies to the state it was made on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub kind: ChangeKind,
    pub key: String,
    /// The modification revision of the version it replaced or deleted; 0 for a create.
    pub prev_mod: u64,
    /// Put only (0 for a delete).
    pub create_revision: u64,
    /// Put only (0 for a delete).
    pub version: u64,
    /// Put only: unix ms, 0 for none.
    pub expiry_ms: u64,
    /// Put only.
    pub value: Bytes,
}

/// One group commit's effects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// One more than the previous record's.
    pub seq: u64,
    /// The revision before the first change; change `i` has revision `base_revision + 1 + i`.
    pub base_revision: u64,
    /// The group's commit time (the log entries' time).
    pub commit_ms: u64,
    /// The compaction point after the group.
    pub compact: u64,
    /// Every record up to this `seq` was durable when this one was written (0 when unknown, as in
    /// layout version 1).
    pub durable: u64,
    pub changes: Vec<Change>,
}

impl Record {
    /// The revision of the last change (the base revision when there is none).
    pub(crate) fn last_revision(&self) -> u64 {
        self.base_revision + self.changes.len() as u64
    }

    /// The record's bytes, padding included.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, WalError> {
        self.encode_as(FILE_VERSION)
    }

    /// The record's bytes in layout `version` (1 only for tests of reading old files).
    fn encode_as(&self, version: u32) -> Result<Vec<u8>, WalError> {
        let mark_len = if version == FILE_VERSION_1 { 0 } else { 8 };
        let body_len: usize = mark_len
            + 20
            + self
                .changes
                .iter()
                .map(|c| {
                    13 + c.key.len()
                        + match c.kind {
                            ChangeKind::Put => 28 + c.value.len(),
                            ChangeKind::Delete => 0,
                        }
                })
                .sum::<usize>();
        let body_len32 = u32::try_from(body_len).map_err(|_| WalError::TooLarge(body_len))?;
        let count = u32::try_from(self.changes.len()).map_err(|_| WalError::TooLarge(body_len))?;
        let total = (RECORD_HEADER + body_len).next_multiple_of(RECORD_ALIGN);
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(RECORD_MAGIC);
        out.extend_from_slice(&body_len32.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.base_revision.to_le_bytes());
        out.extend_from_slice(&[0; 8]); // the two checksums, below
        if version != FILE_VERSION_1 {
            out.extend_from_slice(&self.durable.to_le_bytes());
        }
        out.extend_from_slice(&self.commit_ms.to_le_bytes());
        out.extend_from_slice(&self.compact.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        for change in &self.changes {
            out.push(change.kind as u8);
            // Keys are at most 4 KiB (the contract refuses longer ones).
            let key_len = u32::try_from(change.key.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&key_len.to_le_bytes());
            out.extend_from_slice(change.key.as_bytes());
            out.extend_from_slice(&change.prev_mod.to_le_bytes());
            if change.kind == ChangeKind::Put {
                out.extend_from_slice(&change.create_revision.to_le_bytes());
                out.extend_from_slice(&change.version.to_le_bytes());
                out.extend_from_slice(&change.expiry_ms.to_le_bytes());
                let value_len =
                    u32::try_from(change.value.len()).map_err(|_| WalError::TooLarge(body_len))?;
                out.extend_from_slice(&value_len.to_le_bytes());
                out.extend_from_slice(&change.value);
            }
        }
        debug_assert_eq!(out.len(), RECORD_HEADER + body_len);
        let body_crc = crc32c::crc32c(out.get(RECORD_HEADER..).unwrap_or_default());
        if let Some(slot) = out.get_mut(24..28) {
            slot.copy_from_slice(&body_crc.to_le_bytes());
        }
        let header_crc = crc32c::crc32c(out.get(..28).unwrap_or_default());
        if let Some(slot) = out.get_mut(28..32) {
            slot.copy_from_slice(&header_crc.to_le_bytes());
        }
        out.resize(total, 0);
        Ok(out)
    }
}

/// A record header that checked out, body checksum included.
struct Framed<'a> {
    seq: u64,
    base_revision: u64,
    body: &'a [u8],
    /// The record's length with its padding: the next record starts this far on.
    len: usize,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at.checked_add(4)?)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes
        .get(at..at.checked_add(8)?)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
}

/// The record at `at`, if a whole, valid one is there (`None` for zeros, a torn write, garbage or
/// the end of the file).
fn frame_at(bytes: &[u8], at: usize) -> Option<Framed<'_>> {
    let header = bytes.get(at..at.checked_add(RECORD_HEADER)?)?;
    if header.get(..4)? != RECORD_MAGIC {
        return None;
    }
    if crc32c::crc32c(header.get(..28)?) != u32_at(header, 28)? {
        return None;
    }
    let body_len = usize::try_from(u32_at(header, 4)?).ok()?;
    let start = at + RECORD_HEADER;
    let body = bytes.get(start..start.checked_add(body_len)?)?;
    if crc32c::crc32c(body) != u32_at(header, 24)? {
        return None;
    }
    Some(Framed {
        seq: u64_at(header, 8)?,
        base_revision: u64_at(header, 16)?,
        body,
        len: (RECORD_HEADER + body_len).next_multiple_of(RECORD_ALIGN),
    })
}

/// Reads a record body front to back.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u32(&mut self) -> Option<u32> {
        u32_at(self.take(4)?, 0)
    }

    fn u64(&mut self) -> Option<u64> {
        u64_at(self.take(8)?, 0)
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.u32()?).ok()
    }
}

fn decode_body(framed: &Framed<'_>, version: u32) -> Option<Record> {
    let mut c = Cursor {
        bytes: framed.body,
        at: 0,
    };
    let durable = if version == FILE_VERSION_1 {
        0
    } else {
        c.u64()?
    };
    let commit_ms = c.u64()?;
    let compact = c.u64()?;
    let count = c.len()?;
    // Each change takes at least 13 bytes: do not trust `count` with the allocation.
    let mut changes = Vec::with_capacity(count.min(framed.body.len() / 13));
    for _ in 0..count {
        let kind = match c.u8()? {
            1 => ChangeKind::Put,
            2 => ChangeKind::Delete,
            _ => return None,
        };
        let key_len = c.len()?;
        let key = std::str::from_utf8(c.take(key_len)?).ok()?.to_owned();
        let prev_mod = c.u64()?;
        let mut change = Change {
            kind,
            key,
            prev_mod,
            create_revision: 0,
            version: 0,
            expiry_ms: 0,
            value: Bytes::new(),
        };
        if kind == ChangeKind::Put {
            change.create_revision = c.u64()?;
            change.version = c.u64()?;
            change.expiry_ms = c.u64()?;
            let value_len = c.len()?;
            change.value = Bytes::copy_from_slice(c.take(value_len)?);
        }
        changes.push(change);
    }
    if c.at != framed.body.len() {
        return None;
    }
    Some(Record {
        seq: framed.seq,
        base_revision: framed.base_revision,
        commit_ms,
        compact,
        durable,
        changes,
    })
}

fn file_header() -> [u8; HEADER_LEN as usize] {
    file_header_as(FILE_VERSION)
}

fn file_header_as(version: u32) -> [u8; HEADER_LEN as usize] {
    let mut out = [0u8; HEADER_LEN as usize];
    out[..16].copy_from_slice(FILE_MAGIC);
    out[16..20].copy_from_slice(&version.to_le_bytes());
    let crc = crc32c::crc32c(&out[..24]);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The file's layout version, if its header is valid and this build reads it.
fn check_file_header(bytes: &[u8]) -> Result<u32, String> {
    let header = bytes
        .get(..HEADER_LEN as usize)
        .ok_or_else(|| format!("{} bytes, shorter than its header", bytes.len()))?;
    if header.get(..16) != Some(FILE_MAGIC.as_slice()) {
        return Err("not an Ironplane write-ahead log (bad magic)".into());
    }
    if u32_at(header, 24) != Some(crc32c::crc32c(header.get(..24).unwrap_or_default())) {
        return Err("bad header checksum".into());
    }
    match u32_at(header, 16) {
        Some(version @ (FILE_VERSION | FILE_VERSION_1)) => Ok(version),
        other => Err(format!(
            "layout version {other:?} is not supported (this build reads {FILE_VERSION})"
        )),
    }
}

/// The records of the file's current pass that the database does not have yet (`seq` above
/// `applied_seq`), in order, checked to follow one another without a gap.
///
/// A damaged or partly written record ends the pass when it was never made durable: a crash tore
/// it, and neither it nor any record after it was acknowledged (a group is answered only after an
/// `fdatasync` that covers its record, and one that covered a later record covered this one too).
/// Records appended while it waited for its `fdatasync` may still be whole beyond it; they are
/// dropped with it. A damaged record is corruption, an error and never skipped, when a valid
/// record beyond it says it was durable (its durable mark reaches the damaged record's `seq`):
/// acknowledged changes would be lost. Layout version 1 has no mark, and there any valid record
/// newer than everything before the damage is an error (records were appended one at a time,
/// each after the previous one was durable).
pub(crate) fn scan(bytes: &[u8], applied_seq: u64) -> Result<Vec<Record>, String> {
    let version = check_file_header(bytes)?;
    let mut at = HEADER_LEN as usize;
    let mut chain: Vec<Record> = Vec::new();
    while let Some(framed) = frame_at(bytes, at) {
        if let Some(prev) = chain.last() {
            if framed.seq <= prev.seq {
                // Left over from an earlier pass.
                break;
            }
            if framed.seq != prev.seq + 1 {
                return Err(format!(
                    "record {} follows record {} at offset {at}: records are missing",
                    framed.seq, prev.seq
                ));
            }
            if framed.base_revision != prev.last_revision() {
                return Err(format!(
                    "record {} at offset {at} starts after revision {}, but the record before it \
                     ends at revision {}",
                    framed.seq,
                    framed.base_revision,
                    prev.last_revision()
                ));
            }
        }
        let record = decode_body(&framed, version).ok_or_else(|| {
            format!(
                "record {} at offset {at} has a valid checksum but does not decode",
                framed.seq
            )
        })?;
        at += framed.len;
        chain.push(record);
    }
    // Nothing known durable may hide behind the end of the chain.
    let newest = chain.last().map_or(applied_seq, |r| r.seq).max(applied_seq);
    if let Some((offset, seq)) = find_durable_beyond(bytes, at, newest, version) {
        return Err(format!(
            "the log ends at offset {at} with an invalid record, but record {seq} at offset \
             {offset} says records after {newest} were durable: a record in the middle is damaged"
        ));
    }
    chain.retain(|r| r.seq > applied_seq);
    if let Some(first) = chain.first()
        && first.seq != applied_seq + 1
    {
        return Err(format!(
            "the database holds records up to {applied_seq} but the log continues at record {}: \
             records are missing",
            first.seq
        ));
    }
    Ok(chain)
}

/// The first valid record at or after `from` (on the page grid) that shows a record after
/// `newest` was durable: in layout version 1 any record whose `seq` is above `newest`, later
/// ones only if their durable mark is.
fn find_durable_beyond(
    bytes: &[u8],
    from: usize,
    newest: u64,
    version: u32,
) -> Option<(usize, u64)> {
    let mut at = from.next_multiple_of(RECORD_ALIGN);
    while at + RECORD_HEADER <= bytes.len() {
        if bytes.get(at..at + 4) == Some(RECORD_MAGIC.as_slice())
            && let Some(framed) = frame_at(bytes, at)
        {
            let durable_beyond = version == FILE_VERSION_1
                || u64_at(framed.body, 0).is_some_and(|durable| durable > newest);
            if framed.seq > newest && durable_beyond {
                return Some((at, framed.seq));
            }
            at += framed.len;
            continue;
        }
        at += RECORD_ALIGN;
    }
    None
}

/// The log file of the database at `db_path`.
pub(crate) fn path_for(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Read the records at `path` newer than `applied_seq` (see [`scan`]); no file, no records.
pub(crate) fn read(path: &Path, applied_seq: u64) -> Result<Vec<Record>, WalError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_error(path, err)),
    };
    scan(&bytes, applied_seq).map_err(|detail| WalError::Corrupt {
        path: path.display().to_string(),
        detail,
    })
}

/// Remove the log at `path` (the store runs without one), if there is one.
pub(crate) fn remove(path: &Path) -> Result<(), WalError> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io_error(path, err)),
    }
}

fn sync_parent(path: &Path) -> Result<(), WalError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| io_error(parent, err))
}

/// Why an append failed.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// Nothing of the record reached the file (making room for it failed): the group may be
    /// refused and the log goes on.
    NotWritten(WalError),
    /// The record may or may not be on disk: the log cannot be trusted to go on.
    Unknown(WalError),
}

/// The open log, written by the writer thread only.
pub(crate) struct Wal {
    file: File,
    path: PathBuf,
    /// Where the next record goes.
    end: u64,
    /// How far the file holds zeros or records: appends below this do not change its size.
    allocated: u64,
}

impl Wal {
    /// Open the log at `path` for a new pass, creating it if needed. Only after recovery: every
    /// record in it must already be in the database, since the file is cut back to its header.
    pub(crate) fn open(path: &Path) -> Result<Self, WalError> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => {
                let mut header = [0u8; HEADER_LEN as usize];
                let valid = match file.read_exact_at(&mut header, 0) {
                    Ok(()) => check_file_header(&header),
                    Err(err) => Err(err.to_string()),
                };
                let version = valid.map_err(|detail| WalError::Corrupt {
                    path: path.display().to_string(),
                    detail,
                })?;
                if version == FILE_VERSION {
                    // After a clean close the file is its header already: nothing to write.
                    let len = file.metadata().map_err(|err| io_error(path, err))?.len();
                    if len != HEADER_LEN {
                        file.set_len(HEADER_LEN)
                            .and_then(|()| file.sync_all())
                            .map_err(|err| io_error(path, err))?;
                    }
                    file
                } else {
                    // An older layout, already replayed: start a new file in this one's.
                    drop(file);
                    Self::create(path)?
                }
            }
            Err(err) if err.kind() == ErrorKind::NotFound => Self::create(path)?,
            Err(err) => return Err(io_error(path, err)),
        };
        Ok(Self {
            file,
            path: path.to_owned(),
            end: HEADER_LEN,
            allocated: HEADER_LEN,
        })
    }

    /// A new file with its header, made whole before it takes the real name (so that a crash
    /// leaves no file or a valid one).
    fn create(path: &Path) -> Result<File, WalError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|err| io_error(&tmp, err))?;
        file.write_all(&file_header())
            .and_then(|()| file.sync_all())
            .map_err(|err| io_error(&tmp, err))?;
        std::fs::rename(&tmp, path).map_err(|err| io_error(path, err))?;
        sync_parent(path)?;
        Ok(file)
    }

    /// The bytes of records written since the last restart.
    pub(crate) fn pending_bytes(&self) -> u64 {
        self.end - HEADER_LEN
    }

    /// How large the file is (records and the zeros ahead of them).
    pub(crate) fn file_bytes(&self) -> u64 {
        self.allocated
    }

    /// Append `record` and make it durable (`fdatasync`).
    #[cfg(test)]
    pub(crate) fn append(&mut self, record: &[u8]) -> Result<(), AppendError> {
        self.write(record)?;
        self.file
            .sync_data()
            .map_err(|err| AppendError::Unknown(io_error(&self.path, err)))
    }

    /// Append `record` without waiting for it to reach the disk: whoever answers for the group
    /// calls `fdatasync` (on a [`Wal::sync_handle`]) before the group is acknowledged.
    pub(crate) fn write(&mut self, record: &[u8]) -> Result<(), AppendError> {
        let end = self.end + record.len() as u64;
        if end > self.allocated {
            let step = self.allocated.clamp(FIRST_GROW_BYTES, GROW_BYTES);
            let target = (end + step).next_multiple_of(step);
            self.fill_zeros(target).map_err(AppendError::NotWritten)?;
        }
        self.file
            .write_all_at(record, self.end)
            .map_err(|err| AppendError::Unknown(io_error(&self.path, err)))?;
        self.end = end;
        Ok(())
    }

    /// A second handle on the log file, for the thread that makes appended records durable
    /// (the file is only ever cut in place, never replaced, so the handle stays valid).
    pub(crate) fn sync_handle(&self) -> Result<File, WalError> {
        self.file
            .try_clone()
            .map_err(|err| io_error(&self.path, err))
    }

    /// Zeros from the allocated end to `target`; made durable with the next record.
    fn fill_zeros(&mut self, target: u64) -> Result<(), WalError> {
        const STEP: usize = 1024 * 1024;
        let zeros = vec![0u8; STEP];
        let mut at = self.allocated;
        while at < target {
            let n = usize::try_from(target - at).unwrap_or(STEP).min(STEP);
            self.file
                .write_all_at(zeros.get(..n).unwrap_or_default(), at)
                .map_err(|err| io_error(&self.path, err))?;
            at += n as u64;
            // Count what is there, so that a failure part way leaves `allocated` true.
            self.allocated = at;
        }
        Ok(())
    }

    /// Every record so far is in the database (a checkpoint committed durably): the next one
    /// goes to the front of the file.
    pub(crate) fn restart(&mut self) {
        self.end = HEADER_LEN;
    }

    /// Cut the file back to its header (after a checkpoint, when it grew large, and at close).
    pub(crate) fn shrink(&mut self) -> Result<(), WalError> {
        self.file
            .set_len(HEADER_LEN)
            .and_then(|()| self.file.sync_all())
            .map_err(|err| io_error(&self.path, err))?;
        self.end = HEADER_LEN;
        self.allocated = HEADER_LEN;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, prev_mod: u64, create: u64, version: u64, value: &str) -> Change {
        Change {
            kind: ChangeKind::Put,
            key: key.into(),
            prev_mod,
            create_revision: create,
            version,
            expiry_ms: 0,
            value: Bytes::from(value.to_owned()),
        }
    }

    fn delete(key: &str, prev_mod: u64) -> Change {
        Change {
            kind: ChangeKind::Delete,
            key: key.into(),
            prev_mod,
            create_revision: 0,
            version: 0,
            expiry_ms: 0,
            value: Bytes::new(),
        }
    }

    /// `n` records from `seq` on, each with two creates, starting after revision `base`; each
    /// appended once the one before it was durable.
    fn records(seq: u64, base: u64, n: u64) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let base = base + 2 * i;
                Record {
                    seq: seq + i,
                    base_revision: base,
                    commit_ms: 1_000 + i,
                    compact: 0,
                    durable: seq + i - 1,
                    changes: vec![
                        put(&format!("/k/{}", base + 1), 0, base + 1, 1, "v"),
                        put(&format!("/k/{}", base + 2), 0, base + 2, 1, "w"),
                    ],
                }
            })
            .collect()
    }

    /// A log image: the header, then the records in order; returns it and each record's offset.
    fn image(records: &[Record]) -> (Vec<u8>, Vec<usize>) {
        image_as(FILE_VERSION, records)
    }

    fn image_as(version: u32, records: &[Record]) -> (Vec<u8>, Vec<usize>) {
        let mut out = file_header_as(version).to_vec();
        let mut offsets = Vec::new();
        for record in records {
            offsets.push(out.len());
            out.extend(record.encode_as(version).unwrap());
        }
        (out, offsets)
    }

    fn seqs(found: &[Record]) -> Vec<u64> {
        found.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn records_round_trip() {
        let record = Record {
            seq: 7,
            base_revision: 41,
            commit_ms: 123,
            compact: 30,
            durable: 5,
            changes: vec![
                Change {
                    expiry_ms: 99,
                    ..put("/a", 0, 42, 1, "hello")
                },
                put("/b", 12, 3, 5, ""),
                delete("/c", 40),
            ],
        };
        let bytes = record.encode().unwrap();
        assert_eq!(bytes.len() % RECORD_ALIGN, 0);
        let framed = frame_at(&bytes, 0).unwrap();
        assert_eq!(framed.len, bytes.len());
        assert_eq!(decode_body(&framed, FILE_VERSION), Some(record.clone()));
        assert_eq!(record.last_revision(), 44);
        let empty = Record {
            changes: Vec::new(),
            ..record
        };
        let framed_bytes = empty.encode().unwrap();
        let framed = frame_at(&framed_bytes, 0).unwrap();
        assert_eq!(decode_body(&framed, FILE_VERSION), Some(empty));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let bytes = records(1, 0, 1)[0].encode().unwrap();
        let unpadded = RECORD_HEADER + u32_at(&bytes, 4).unwrap() as usize;
        for i in 0..unpadded {
            for bit in [0, 3, 7] {
                let mut damaged = bytes.clone();
                damaged[i] ^= 1 << bit;
                assert!(frame_at(&damaged, 0).is_none(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn a_whole_log_reads_back_from_the_applied_point() {
        let all = records(5, 100, 4);
        let (bytes, _) = image(&all);
        assert_eq!(seqs(&scan(&bytes, 4).unwrap()), vec![5, 6, 7, 8]);
        assert_eq!(scan(&bytes, 4).unwrap(), all);
        assert_eq!(seqs(&scan(&bytes, 6).unwrap()), vec![7, 8]);
        assert_eq!(seqs(&scan(&bytes, 8).unwrap()), Vec::<u64>::new());
        assert_eq!(seqs(&scan(&bytes, 20).unwrap()), Vec::<u64>::new());
        // Zeros ahead of the records (the preallocated file) end the log quietly.
        let mut padded = bytes.clone();
        padded.resize(bytes.len() + 4096, 0);
        assert_eq!(seqs(&scan(&padded, 4).unwrap()), vec![5, 6, 7, 8]);
        // An empty log.
        assert!(scan(&file_header(), 0).unwrap().is_empty());
    }

    #[test]
    fn a_torn_last_record_ends_the_log() {
        let (bytes, offsets) = image(&records(1, 0, 3));
        let last = offsets[2];
        // Where the last record's body ends (its padding follows).
        let end = last + RECORD_HEADER + u32_at(&bytes, last + 4).unwrap() as usize;
        // Cut anywhere inside the last record, or damage any of its bytes: records 1 and 2 stay.
        for cut in [last + 1, last + 8, last + 31, last + 32, last + 40, end - 1] {
            let mut torn = bytes[..cut].to_vec();
            torn.resize(bytes.len() + 64, 0);
            assert_eq!(seqs(&scan(&torn, 0).unwrap()), vec![1, 2], "cut at {cut}");
        }
        for at in [last, last + 5, last + 20, last + 29, last + 33, end - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert_eq!(seqs(&scan(&damaged, 0).unwrap()), vec![1, 2], "byte {at}");
        }
    }

    #[test]
    fn a_damaged_record_in_the_middle_is_an_error() {
        let (bytes, offsets) = image(&records(1, 0, 4));
        for at in [
            offsets[1],
            offsets[1] + 4,
            offsets[1] + 30,
            offsets[1] + 100,
        ] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            let err = scan(&damaged, 0).unwrap_err();
            assert!(err.contains("damaged"), "{err}");
        }
        // Even when the database already has the record before the damage.
        let mut damaged = bytes.clone();
        damaged[offsets[2] + 40] ^= 0x01;
        assert!(scan(&damaged, 2).is_err());
        // Damage to the first record is caught as well.
        let mut damaged = bytes.clone();
        damaged[offsets[0] + 9] ^= 0x01;
        assert!(scan(&damaged, 0).is_err());
    }

    #[test]
    fn a_torn_record_among_ones_appended_behind_it_ends_the_log() {
        // Records 3, 4 and 5 were appended while record 3 waited for its fdatasync: their marks
        // say only records up to 2 were durable. A crash tore record 3 (or 4) and left the later
        // ones whole: none of them was acknowledged, and the log ends before the damage.
        let mut all = records(1, 0, 5);
        for record in &mut all[3..] {
            record.durable = 2;
        }
        let (bytes, offsets) = image(&all);
        assert_eq!(seqs(&scan(&bytes, 0).unwrap()), vec![1, 2, 3, 4, 5]);
        let mut torn = bytes.clone();
        torn[offsets[2] + 40] ^= 0x01;
        assert_eq!(seqs(&scan(&torn, 0).unwrap()), vec![1, 2]);
        let mut torn = bytes.clone();
        torn[offsets[3] + 40] ^= 0x01;
        assert_eq!(seqs(&scan(&torn, 0).unwrap()), vec![1, 2, 3]);
        // Never written at all (the later pages reached the disk first): zeros in its place.
        let mut missing = bytes.clone();
        missing[offsets[2]..offsets[3]].fill(0);
        assert_eq!(seqs(&scan(&missing, 1).unwrap()), vec![2]);

        // Record 5 was appended after record 3 was durable (its mark says so): damage to record
        // 3 is then damage to an acknowledged record, an error.
        all[4].durable = 3;
        let (bytes, offsets) = image(&all);
        let mut damaged = bytes.clone();
        damaged[offsets[2] + 40] ^= 0x01;
        let err = scan(&damaged, 0).unwrap_err();
        assert!(err.contains("damaged") && err.contains("record 5"), "{err}");
        // ... but not damage to record 4, which no mark reaches.
        let mut torn = bytes.clone();
        torn[offsets[3] + 40] ^= 0x01;
        assert_eq!(seqs(&scan(&torn, 0).unwrap()), vec![1, 2, 3]);
    }

    #[test]
    fn a_version_1_log_is_read_with_its_stricter_rule() {
        let all = records(1, 0, 4);
        let (bytes, offsets) = image_as(FILE_VERSION_1, &all);
        // Version 1 records carry no mark: they read back with none.
        let unmarked: Vec<Record> = all
            .iter()
            .map(|r| Record {
                durable: 0,
                ..r.clone()
            })
            .collect();
        assert_eq!(scan(&bytes, 0).unwrap(), unmarked);
        // Each was appended after the one before was durable: any valid record beyond a
        // damaged one is an error, and a torn last record ends the log.
        let mut damaged = bytes.clone();
        damaged[offsets[1] + 40] ^= 0x01;
        assert!(scan(&damaged, 0).unwrap_err().contains("damaged"));
        let mut torn = bytes.clone();
        torn[offsets[3] + 40] ^= 0x01;
        assert_eq!(seqs(&scan(&torn, 0).unwrap()), vec![1, 2, 3]);
        // A layout this build does not know is refused.
        let (unknown, _) = image_as(3, &all[..1]);
        assert!(scan(&unknown, 0).unwrap_err().contains("version"));
    }

    #[test]
    fn a_gap_is_an_error() {
        // A missing sequence number.
        let mut all = records(1, 0, 4);
        all.remove(2);
        let (bytes, _) = image(&all);
        assert!(scan(&bytes, 0).unwrap_err().contains("missing"));
        // Sequence numbers that follow, but revisions that do not.
        let mut all = records(1, 0, 3);
        all[2].base_revision += 1;
        let (bytes, _) = image(&all);
        assert!(scan(&bytes, 0).unwrap_err().contains("revision"));
        // A log that starts after what the database holds.
        let (bytes, _) = image(&records(5, 8, 2));
        assert!(scan(&bytes, 2).unwrap_err().contains("missing"));
        assert_eq!(seqs(&scan(&bytes, 4).unwrap()), vec![5, 6]);
    }

    #[test]
    fn records_of_an_earlier_pass_are_not_replayed() {
        // Pass one wrote records 1..=6; a checkpoint took them; pass two wrote 7 and 8 over the
        // front of the file. What follows record 8 is the tail of pass one (or a torn remnant).
        let old = records(1, 0, 6);
        let (old_bytes, _) = image(&old);
        let new = vec![
            Record {
                seq: 7,
                base_revision: 12,
                commit_ms: 5,
                compact: 3,
                durable: 6,
                changes: vec![put("/x", 2, 1, 2, &"y".repeat(300))],
            },
            Record {
                seq: 8,
                base_revision: 13,
                commit_ms: 6,
                compact: 3,
                durable: 7,
                changes: vec![delete("/x", 13)],
            },
        ];
        let (new_bytes, new_offsets) = image(&new);
        let mut file = old_bytes.clone();
        file[..new_bytes.len()].copy_from_slice(&new_bytes);
        assert_eq!(scan(&file, 6).unwrap(), new);
        assert_eq!(seqs(&scan(&file, 7).unwrap()), vec![8]);
        // A crash while record 8 was written: record 7 alone.
        let mut torn = file.clone();
        torn[new_offsets[1] + 35] ^= 0xff;
        assert_eq!(seqs(&scan(&torn, 6).unwrap()), vec![7]);
        // A crash right after the checkpoint, before pass two wrote anything: nothing to replay.
        assert!(scan(&old_bytes, 6).unwrap().is_empty());
    }

    #[test]
    fn a_bad_header_is_an_error() {
        let (mut bytes, _) = image(&records(1, 0, 1));
        assert!(scan(&bytes[..10], 0).is_err());
        bytes[3] ^= 1;
        assert!(scan(&bytes, 0).unwrap_err().contains("magic"));
    }

    #[test]
    fn the_file_appends_restarts_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("store.redb"));
        assert!(path.to_string_lossy().ends_with("store.redb-wal"));
        assert!(read(&path, 0).unwrap().is_empty(), "no file, no records");
        let mut wal = Wal::open(&path).unwrap();
        let all = records(1, 0, 5);
        for record in &all[..3] {
            wal.append(&record.encode().unwrap())
                .map_err(|e| format!("{e:?}"))
                .unwrap();
        }
        assert!(wal.file_bytes() >= FIRST_GROW_BYTES, "zero-filled ahead");
        assert_eq!(read(&path, 0).unwrap(), all[..3]);
        wal.restart();
        assert_eq!(wal.pending_bytes(), 0);
        for record in &all[3..] {
            wal.append(&record.encode().unwrap())
                .map_err(|e| format!("{e:?}"))
                .unwrap();
        }
        assert_eq!(read(&path, 3).unwrap(), all[3..]);
        drop(wal);
        // Reopening (after recovery) starts an empty file.
        let wal = Wal::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER_LEN);
        drop(wal);
        assert!(read(&path, 5).unwrap().is_empty());
        remove(&path).unwrap();
        assert!(!path.exists());
        remove(&path).unwrap();
    }

    #[test]
    fn opening_a_version_1_log_starts_a_file_in_the_current_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("store.redb"));
        let (bytes, _) = image_as(FILE_VERSION_1, &records(1, 0, 2));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path, 0).unwrap().len(), 2);
        // After recovery replayed those two: a new pass, in this build's layout.
        let mut wal = Wal::open(&path).unwrap();
        let header = std::fs::read(&path).unwrap();
        assert_eq!(header.len() as u64, HEADER_LEN);
        assert_eq!(check_file_header(&header), Ok(FILE_VERSION));
        let next = records(3, 4, 1);
        wal.append(&next[0].encode().unwrap())
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        assert_eq!(read(&path, 2).unwrap(), next);
    }
}
