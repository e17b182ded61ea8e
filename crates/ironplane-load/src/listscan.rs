//! Streaming scans of response bodies, so that a list of any size is measured in constant memory:
//! [`ListScanner`] counts the elements of a list's top-level `items` (or a Table's `rows`) and
//! keeps only the top-level `metadata` object (for `continue` and `resourceVersion`), fed chunk by
//! chunk; [`LineFramer`] splits a watch stream into its newline-delimited events.

use serde::Deserialize;

/// The most bytes of top-level `metadata` kept.
const MAX_METADATA: usize = 1 << 20;
/// The most bytes of one watch event.
const MAX_EVENT: usize = 64 << 20;

/// From this depth on (inside an element of a top-level array, or deeper in any top-level
/// value) the scanner only follows nesting and strings.
const NESTED: u32 = 3;

/// Byte classes outside strings, at depth [`NESTED`] and more.
const PLAIN: u8 = 0;
const OPEN: u8 = 1;
const CLOSE: u8 = 2;
const QUOTE: u8 = 3;
static NESTED_CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    table[b'{' as usize] = OPEN;
    table[b'[' as usize] = OPEN;
    table[b'}' as usize] = CLOSE;
    table[b']' as usize] = CLOSE;
    table[b'"' as usize] = QUOTE;
    table
};

/// Where a string whose body starts at `from` ends, within this chunk.
enum StringEnd {
    /// Closed: scanning goes on at this index, after the closing quote.
    Closed(usize),
    /// Still open at the chunk's end.
    Open,
    /// Still open, and the chunk ends with a backslash whose escaped byte is in the next one.
    Escaped,
}

fn string_end(chunk: &[u8], mut from: usize) -> StringEnd {
    loop {
        let rest = chunk.get(from..).unwrap_or_default();
        let Some(at) = memchr::memchr2(b'"', b'\\', rest).map(|at| from + at) else {
            return StringEnd::Open;
        };
        if chunk[at] == b'"' {
            return StringEnd::Closed(at + 1);
        }
        if at + 1 >= chunk.len() {
            return StringEnd::Escaped;
        }
        from = at + 2;
    }
}

/// Which top-level member the scanner is inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Other,
    Items,
    Metadata,
}

/// Counts list items and keeps the list's metadata while the body streams past.
#[derive(Debug)]
pub struct ListScanner {
    depth: u32,
    in_string: bool,
    escaped: bool,
    expect_key: bool,
    capturing_key: bool,
    key: Vec<u8>,
    section: Section,
    capturing_metadata: bool,
    metadata: Vec<u8>,
    items: u64,
    bytes: u64,
    started: bool,
    finished_top: bool,
    error: Option<String>,
}

/// The list's metadata fields this tool uses.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct ListMeta {
    /// `metadata.resourceVersion`.
    #[serde(rename = "resourceVersion", default)]
    pub resource_version: Option<String>,
    /// `metadata.continue`.
    #[serde(rename = "continue", default)]
    pub continue_token: Option<String>,
}

/// What a complete scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSummary {
    /// Elements of `items` (or `rows`).
    pub items: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// The list metadata.
    pub metadata: ListMeta,
}

impl Default for ListScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl ListScanner {
    /// A scanner at the start of a body.
    pub fn new() -> Self {
        ListScanner {
            depth: 0,
            in_string: false,
            escaped: false,
            expect_key: false,
            capturing_key: false,
            key: Vec::new(),
            section: Section::Other,
            capturing_metadata: false,
            metadata: Vec::new(),
            items: 0,
            bytes: 0,
            started: false,
            finished_top: false,
            error: None,
        }
    }

    /// Scans the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.bytes += chunk.len() as u64;
        let mut i = 0;
        while i < chunk.len() {
            if self.escaped {
                self.take(&chunk[i..=i]);
                self.escaped = false;
                i += 1;
                continue;
            }
            if self.in_string {
                match memchr::memchr2(b'"', b'\\', &chunk[i..]) {
                    None => {
                        self.take(&chunk[i..]);
                        i = chunk.len();
                    }
                    Some(offset) => {
                        let j = i + offset;
                        if chunk[j] == b'\\' {
                            self.take(&chunk[i..=j]);
                            self.escaped = true;
                        } else {
                            if self.capturing_key {
                                self.key.extend_from_slice(&chunk[i..j]);
                                self.capturing_key = false;
                            }
                            if self.capturing_metadata {
                                self.push_metadata(&chunk[i..=j]);
                            }
                            self.in_string = false;
                        }
                        i = j + 1;
                    }
                }
                continue;
            }
            if self.depth >= NESTED && !self.capturing_metadata {
                i = self.skip_nested(chunk, i);
                continue;
            }
            let byte = chunk[i];
            i += 1;
            if self.finished_top {
                if !byte.is_ascii_whitespace() {
                    self.fail("data after the end of the list");
                    return;
                }
                continue;
            }
            if self.capturing_metadata {
                self.push_metadata(&[byte]);
            }
            match byte {
                b'"' => {
                    self.in_string = true;
                    if self.depth == 1 && self.expect_key {
                        self.capturing_key = true;
                        self.key.clear();
                    }
                }
                b'{' | b'[' => {
                    if self.depth == 0 {
                        if byte != b'{' {
                            self.fail("the body is not a JSON object");
                            return;
                        }
                        self.started = true;
                        self.expect_key = true;
                    } else if self.depth == 1 && self.section == Section::Metadata && byte == b'{' {
                        self.capturing_metadata = true;
                        self.push_metadata(b"{");
                    } else if self.depth == 2 && self.section == Section::Items {
                        self.items += 1;
                    }
                    self.depth += 1;
                }
                b'}' | b']' => {
                    if self.depth == 0 {
                        self.fail("unbalanced JSON");
                        return;
                    }
                    self.depth -= 1;
                    if self.depth == 1 && self.capturing_metadata {
                        self.capturing_metadata = false;
                    }
                    if self.depth == 0 {
                        self.finished_top = true;
                    }
                }
                b',' if self.depth == 1 => {
                    self.expect_key = true;
                    self.section = Section::Other;
                }
                b':' if self.depth == 1 => {
                    self.expect_key = false;
                    self.section = match self.key.as_slice() {
                        b"items" | b"rows" => Section::Items,
                        b"metadata" => Section::Metadata,
                        _ => Section::Other,
                    };
                }
                _ => {
                    if self.depth == 0 && !byte.is_ascii_whitespace() {
                        self.fail("the body is not a JSON object");
                        return;
                    }
                }
            }
        }
    }

    /// Inside an element of a top-level array (or deeper in any top-level value), outside a
    /// string, where only nesting and strings matter: skips from `i` until the depth drops
    /// below [`NESTED`], a string stays open at the chunk's end, or the chunk ends. Returns
    /// where it stopped. Most of a list body is here, so it runs a tight loop over a byte table
    /// with none of the top level's bookkeeping.
    fn skip_nested(&mut self, chunk: &[u8], mut i: usize) -> usize {
        while let Some(&byte) = chunk.get(i) {
            i += 1;
            match NESTED_CLASS[usize::from(byte)] {
                PLAIN => {}
                OPEN => self.depth += 1,
                CLOSE => {
                    self.depth -= 1;
                    if self.depth < NESTED {
                        return i;
                    }
                }
                _ => match string_end(chunk, i) {
                    StringEnd::Closed(next) => i = next,
                    StringEnd::Open => {
                        self.in_string = true;
                        return chunk.len();
                    }
                    StringEnd::Escaped => {
                        self.in_string = true;
                        self.escaped = true;
                        return chunk.len();
                    }
                },
            }
        }
        i
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.capturing_key {
            self.key.extend_from_slice(bytes);
        }
        if self.capturing_metadata {
            self.push_metadata(bytes);
        }
    }

    fn push_metadata(&mut self, bytes: &[u8]) {
        if self.metadata.len() + bytes.len() > MAX_METADATA {
            self.fail("list metadata larger than 1 MiB");
            return;
        }
        self.metadata.extend_from_slice(bytes);
    }

    fn fail(&mut self, message: &str) {
        if self.error.is_none() {
            self.error = Some(message.to_owned());
        }
    }

    /// Ends the scan: the body must have been one complete JSON object.
    pub fn finish(self) -> Result<ListSummary, String> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if !self.started || !self.finished_top || self.in_string {
            return Err("the list body ended early".into());
        }
        let metadata = if self.metadata.is_empty() {
            ListMeta::default()
        } else {
            serde_json::from_slice(&self.metadata)
                .map_err(|e| format!("invalid list metadata: {e}"))?
        };
        Ok(ListSummary {
            items: self.items,
            bytes: self.bytes,
            metadata,
        })
    }
}

/// Splits a byte stream at newlines (the framing of JSON watch streams: one event per line).
#[derive(Debug, Default)]
pub struct LineFramer {
    buffer: Vec<u8>,
}

impl LineFramer {
    /// Appends `chunk` and calls `on_line` with each complete, non-empty line (without the
    /// newline). Fails when one line grows beyond 64 MiB.
    pub fn feed(&mut self, chunk: &[u8], mut on_line: impl FnMut(&[u8])) -> Result<(), String> {
        let mut rest = chunk;
        if !self.buffer.is_empty() {
            match memchr::memchr(b'\n', rest) {
                None => {
                    self.buffer.extend_from_slice(rest);
                    return self.check_size();
                }
                Some(end) => {
                    self.buffer.extend_from_slice(&rest[..end]);
                    let line = std::mem::take(&mut self.buffer);
                    if !is_blank(&line) {
                        on_line(&line);
                    }
                    self.buffer = line;
                    self.buffer.clear();
                    rest = &rest[end + 1..];
                }
            }
        }
        while let Some(end) = memchr::memchr(b'\n', rest) {
            if !is_blank(&rest[..end]) {
                on_line(&rest[..end]);
            }
            rest = &rest[end + 1..];
        }
        self.buffer.extend_from_slice(rest);
        self.check_size()
    }

    fn check_size(&self) -> Result<(), String> {
        if self.buffer.len() > MAX_EVENT {
            return Err("a watch event is larger than 64 MiB".into());
        }
        Ok(())
    }

    /// Bytes of an unfinished line.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_chunks(body: &[u8], chunk: usize) -> Result<ListSummary, String> {
        let mut scanner = ListScanner::new();
        for part in body.chunks(chunk.max(1)) {
            scanner.feed(part);
        }
        scanner.finish()
    }

    fn check(body: &str, expected: Result<(u64, Option<&str>, Option<&str>), &str>) {
        for chunk in [1, 2, 3, 7, body.len().max(1)] {
            let got = scan_in_chunks(body.as_bytes(), chunk);
            match (&got, &expected) {
                (Ok(summary), Ok((items, rv, cont))) => {
                    assert_eq!(summary.items, *items, "{body} / {chunk}");
                    assert_eq!(
                        summary.metadata.resource_version.as_deref(),
                        *rv,
                        "{body} / {chunk}"
                    );
                    assert_eq!(
                        summary.metadata.continue_token.as_deref(),
                        *cont,
                        "{body} / {chunk}"
                    );
                    assert_eq!(summary.bytes, body.len() as u64);
                }
                (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{body} / {chunk}: {e}"),
                _ => panic!("{body} / {chunk}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn counts_items_and_reads_metadata() {
        check(
            r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"42","continue":"abc"},"items":[{"metadata":{"name":"a"},"data":{"items":"[{\"x\"}]"}},{"metadata":{"name":"b\"}{"}}]}"#,
            Ok((2, Some("42"), Some("abc"))),
        );
        check(
            "{\n  \"items\" : [ {}, {\"a\":[{},{}]}, {} ],\n  \"metadata\": {\"resourceVersion\": \"7\"}\n}\n",
            Ok((3, Some("7"), None)),
        );
        check(
            r#"{"kind":"ConfigMapList","metadata":{},"items":[]}"#,
            Ok((0, None, None)),
        );
        check(
            r#"{"kind":"ConfigMapList","metadata":{"resourceVersion":"1"},"items":null}"#,
            Ok((0, Some("1"), None)),
        );
        // A Table counts its rows; nested "items" keys do not count.
        check(
            r#"{"kind":"Table","columnDefinitions":[{"name":"items"}],"rows":[{"cells":["a"]},{"cells":["b"]}],"metadata":{"resourceVersion":"9"}}"#,
            Ok((2, Some("9"), None)),
        );
        // Escaped quotes and backslashes in keys and values.
        check(
            r#"{"a\\":"\\","metadata":{"continue":"x\"y"},"items":[{}]}"#,
            Ok((1, None, Some("x\"y"))),
        );
    }

    #[test]
    fn skips_nested_values_whatever_they_hold() {
        // Inside the items: nested objects and arrays, brackets and quotes inside strings, escapes
        // before and after the short-string window, strings longer than it, empty strings.
        let long = "x".repeat(40);
        let body = format!(
            r#"{{"items":[{{"a":{{"b":[1,{{"c":"}}]{{["}},[]]}},"d":"{long}\"{long}\\"}},{{"e":"","f":"\\\\","g":["{long}\\\\{long}",{{}}]}},{{"h":"a\"b{{c"}}],"metadata":{{"continue":"k"}},"tail":[[{{"i":"]]"}}]]}}"#
        );
        check(&body, Ok((3, None, Some("k"))));
        // A string left open, or an escape left pending, at the body's end.
        check(&format!(r#"{{"items":[{{"a":"{long}"#), Err("ended early"));
        check(r#"{"items":[{"a":"\"#, Err("ended early"));
    }

    #[test]
    fn rejects_broken_bodies() {
        check(r#"{"items":[{}"#, Err("ended early"));
        check(r#"[1,2]"#, Err("not a JSON object"));
        check(r#"{"items":[]}}"#, Err("after the end"));
        check(r#"{"items":[]} x"#, Err("after the end"));
        check("", Err("ended early"));
        check(
            r#"{"metadata":{"resourceVersion":5}}"#,
            Err("invalid list metadata"),
        );
    }

    #[test]
    fn frames_lines_across_chunks() {
        let stream =
            b"{\"type\":\"ADDED\"}\n\n{\"type\":\"MODIFIED\",\"x\":\"a\\nb\"}\n{\"type\":\"DEL";
        for chunk in [1, 2, 5, stream.len()] {
            let mut framer = LineFramer::default();
            let mut lines = Vec::new();
            for part in stream.chunks(chunk) {
                framer
                    .feed(part, |line| {
                        lines.push(String::from_utf8_lossy(line).into_owned())
                    })
                    .unwrap();
            }
            assert_eq!(
                lines,
                vec![r#"{"type":"ADDED"}"#, r#"{"type":"MODIFIED","x":"a\nb"}"#],
                "chunk {chunk}"
            );
            assert_eq!(framer.pending(), b"{\"type\":\"DEL".len());
        }
    }
}
