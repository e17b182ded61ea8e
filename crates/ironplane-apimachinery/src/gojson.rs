//! Compact Go-style JSON for `serde_json::Value` trees, written straight into a buffer: the same
//! bytes as [`crate::codec::write_json`], without the serializer's byte-at-a-time string loop.
//!
//! Object encoding (every create, update and patch stores one) spends most of its time in the
//! strings of the object's data; here a string is tested sixteen bytes at a time for the few
//! bytes Go escapes (eight bytes per test, no branch per byte) and copied in runs.
//! `Object::to_json` writes the fields after the metadata this way; the metadata and every other
//! encoding go through serde (`codec::write_json`), whose output these functions match byte for
//! byte.

use serde_json::Value;

/// Append `value` as compact JSON, escaped the way Go's `encoding/json` escapes it.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Numbers keep the serializer's formatting (integers as written, floats shortest).
        Value::Number(number) => crate::codec::write_json(out, number),
        Value::String(text) => write_str(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Append `text` as a JSON string: quotes, backslashes and control characters escaped as JSON
/// requires, and `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes, as Go does.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    const CHUNK: usize = 16;
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `bytes[start..at]` needs no escape and is not written yet.
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        if let Some(chunk) = bytes.get(at..at + CHUNK)
            && let Ok(chunk) = <&[u8; CHUNK]>::try_from(chunk)
            && !any_may_escape(chunk)
        {
            at += CHUNK;
            continue;
        }
        // A candidate within the next sixteen bytes (or the tail): byte by byte up to there.
        let end = (at + CHUNK).min(bytes.len());
        while at < end {
            let byte = bytes[at];
            if !may_escape(byte) {
                at += 1;
                continue;
            }
            let (escape, width): (&[u8], usize) = match byte {
                b'"' => (b"\\\"", 1),
                b'\\' => (b"\\\\", 1),
                b'\n' => (b"\\n", 1),
                b'\r' => (b"\\r", 1),
                b'\t' => (b"\\t", 1),
                b'<' => (b"\\u003c", 1),
                b'>' => (b"\\u003e", 1),
                b'&' => (b"\\u0026", 1),
                0xE2 => match bytes.get(at + 1..at + 3) {
                    Some([0x80, 0xA8]) => (b"\\u2028", 3),
                    Some([0x80, 0xA9]) => (b"\\u2029", 3),
                    // Another character that starts with E2 (a dash, a quotation mark): as is.
                    _ => {
                        at += 1;
                        continue;
                    }
                },
                control => {
                    out.extend_from_slice(&bytes[start..at]);
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(control >> 4)]);
                    out.push(HEX[usize::from(control & 0xF)]);
                    at += 1;
                    start = at;
                    continue;
                }
            };
            out.extend_from_slice(&bytes[start..at]);
            out.extend_from_slice(escape);
            at += width;
            start = at;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether any byte of `chunk` may need an escape, tested eight bytes at a time with the classic
/// bit tricks (a byte that borrows when 0x01 is subtracted from it was zero), without a branch per
/// byte. False positives only send the chunk down the byte-by-byte path.
#[inline(always)]
fn any_may_escape(chunk: &[u8; 16]) -> bool {
    match (chunk.first_chunk::<8>(), chunk.last_chunk::<8>()) {
        (Some(low), Some(high)) => {
            word_may_escape(u64::from_ne_bytes(*low)) | word_may_escape(u64::from_ne_bytes(*high))
        }
        _ => true,
    }
}

/// [`any_may_escape`] for eight bytes. Two 64-bit words: the same test on one 128-bit word
/// compiled to half again as many instructions.
#[inline(always)]
fn word_may_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte below `n` (n <= 0x80): subtracting n from it borrows into its high bit.
    let below = |n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    // A byte equal to `b`: it is zero after the xor.
    let equal = |b: u8| {
        let x = word ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    (below(0x20)
        | equal(b'"')
        | equal(b'\\')
        | equal(b'<')
        | equal(b'>')
        | equal(b'&')
        | equal(0xE2))
        != 0
}

/// Whether `byte` is escaped, or may start an escaped character (E2: U+2028 and U+2029).
#[inline(always)]
fn may_escape(byte: u8) -> bool {
    (byte < 0x20)
        | (byte == b'"')
        | (byte == b'\\')
        | (byte == b'<')
        | (byte == b'>')
        | (byte == b'&')
        | (byte == 0xE2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fast(value: &Value) -> String {
        let mut out = Vec::new();
        write_value(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    fn serde(value: &Value) -> String {
        String::from_utf8(crate::codec::to_json(value)).unwrap()
    }

    /// Every piece a string may be made of that an encoder could get wrong.
    const PIECES: &[&str] = &[
        "x",
        "hello world",
        "\"",
        "\\",
        "/",
        "<",
        ">",
        "&",
        "\n",
        "\r",
        "\t",
        "\u{8}",
        "\u{c}",
        "\u{0}",
        "\u{1}",
        "\u{1f}",
        "\u{7f}",
        "\u{2028}",
        "\u{2029}",
        "\u{2014}",
        "\u{201c}",
        "\u{20ac}",
        "é",
        "日本",
        "🦀",
        "\u{e000}",
        "0123456789abcdef",
    ];

    #[test]
    fn every_escape_matches_the_serializer() {
        for piece in PIECES {
            for pad in 0..=17 {
                // Each piece at every offset within a chunk, and straddling a chunk's end.
                let text = format!("{}{piece}{}", "a".repeat(pad), "b".repeat(17 - pad));
                let value = Value::String(text);
                assert_eq!(fast(&value), serde(&value), "{value:?}");
            }
        }
        for byte in 0u8..0x80 {
            let value = Value::String(format!("{}{}", "p".repeat(15), byte as char));
            assert_eq!(fast(&value), serde(&value), "byte {byte:#x}");
        }
    }

    #[test]
    fn random_strings_match_the_serializer() {
        // A fixed linear congruential sequence: the same strings every run.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2_000 {
            let mut text = String::new();
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let parts = (state >> 58) as usize;
            for _ in 0..parts {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                text.push_str(PIECES[(state >> 33) as usize % PIECES.len()]);
            }
            let value = Value::String(text);
            assert_eq!(fast(&value), serde(&value), "{value:?}");
        }
    }

    #[test]
    fn trees_match_the_serializer() {
        let value = json!({
            "data": {"payload": "x".repeat(1024), "<key>&": "v\u{2028}"},
            "list": [1, -2, 3.5, 1e300, 0.1, u64::MAX, i64::MIN, true, false, null, [], {}],
            "nested": [{"a": [{"b": "c\"d"}]}],
            "": "",
        });
        assert_eq!(fast(&value), serde(&value));
        assert_eq!(fast(&json!([])), "[]");
        assert_eq!(fast(&json!({})), "{}");
    }
}
