//! Continue tokens for paginated lists, shaped as upstream's: base64url (no padding) of
//! `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after the resource prefix>"}`. Clients treat them as
//! opaque; keeping upstream's shape lets a token survive a move between servers.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// Go's `base64.RawURLEncoding`: no padding, and lenient about the unused bits of the last symbol.
const RAW_URL: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
);

#[derive(Serialize, Deserialize)]
struct Token {
    v: String,
    rv: i64,
    start: String,
}

/// Encode a token that continues at `next_key` (a full storage key under `key_prefix`) at
/// revision `revision`.
pub fn encode(next_key: &str, key_prefix: &str, revision: i64) -> Option<String> {
    let start = next_key.strip_prefix(key_prefix)?;
    let token = Token {
        v: TOKEN_VERSION.into(),
        rv: revision,
        start: start.into(),
    };
    let json = serde_json::to_vec(&token).ok()?;
    Some(RAW_URL.encode(json))
}

/// Decode a token into the full key to continue from and the revision of the first page. The
/// error is upstream's text after `invalid continue token: `.
pub fn decode(token: &str, key_prefix: &str) -> Result<(String, i64), String> {
    let bytes = RAW_URL
        .decode(token)
        .map_err(|err| format!("continue key is not valid: {}", base64_error(&err)))?;
    let token: Token = serde_json::from_slice(&bytes)
        .map_err(|err| format!("continue key is not valid: {}", json_error(&bytes, &err)))?;
    if token.v != TOKEN_VERSION {
        return Err(format!(
            "continue key is not valid: server does not recognize this encoded version {}",
            token.v
        ));
    }
    if token.rv == 0 {
        return Err("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into());
    }
    if token.start.is_empty() {
        return Err(
            "continue key is not valid: encoded start key empty (version meta.k8s.io/v1)".into(),
        );
    }
    // Refuse anything that would climb out of the resource's prefix ("../", "//", "/./").
    let rooted = if token.start.starts_with('/') {
        token.start.clone()
    } else {
        format!("/{}", token.start)
    };
    if !is_clean_path(&rooted) {
        return Err(format!("continue key is not valid: {}", token.start));
    }
    Ok((format!("{key_prefix}{}", &rooted[1..]), token.rv))
}

fn is_clean_path(path: &str) -> bool {
    let inner = &path[1..];
    (path.len() == 1 || !path.ends_with('/'))
        && inner
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

fn base64_error(err: &base64::DecodeError) -> String {
    match err {
        base64::DecodeError::InvalidByte(offset, _)
        | base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("illegal base64 data at input byte {offset}")
        }
        // Go reports where the incomplete last quantum starts.
        base64::DecodeError::InvalidLength(length) => {
            format!("illegal base64 data at input byte {}", length - length % 4)
        }
        base64::DecodeError::InvalidPadding => "illegal base64 data at input byte 0".into(),
    }
}

/// Phrase a JSON error as Go's decoder does for the cases a garbled token produces.
fn json_error(bytes: &[u8], err: &serde_json::Error) -> String {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match (err.classify(), first) {
        (serde_json::error::Category::Eof, _) | (_, None) => "unexpected end of JSON input".into(),
        (_, Some(&byte)) if byte != b'{' => {
            format!(
                "invalid character {} looking for beginning of value",
                go_quote_byte(byte)
            )
        }
        _ => err.to_string(),
    }
}

fn go_quote_byte(byte: u8) -> String {
    match byte {
        b'\'' => "'\\''".into(),
        b'"' => "'\"'".into(),
        0x20..=0x7e => format!("'{}'", byte as char),
        _ => format!("'\\x{byte:02x}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "/registry/configmaps/";

    #[test]
    fn round_trips() {
        let token = encode("/registry/configmaps/ns/b\u{0}", PREFIX, 42).unwrap();
        assert_eq!(
            decode(&token, PREFIX).unwrap(),
            ("/registry/configmaps/ns/b\u{0}".to_owned(), 42)
        );
    }

    #[test]
    fn rejects_garbage_like_upstream() {
        assert_eq!(
            decode("not-a-token", PREFIX).unwrap_err(),
            "continue key is not valid: invalid character '\\x9e' looking for beginning of value"
        );
        let climbing = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"v":"meta.k8s.io/v1","rv":3,"start":"../secrets/x"}"#);
        assert!(decode(&climbing, PREFIX).is_err());
        let zero = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"v":"meta.k8s.io/v1","rv":0,"start":"x"}"#);
        assert!(
            decode(&zero, PREFIX)
                .unwrap_err()
                .contains("incorrect encoded start")
        );
    }
}
