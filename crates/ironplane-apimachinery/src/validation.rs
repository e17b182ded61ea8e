//! Name, label, annotation and object-metadata validation with upstream's messages
//! (Kubernetes 1.32 `k8s.io/apimachinery/pkg/util/validation`, `pkg/api/validation`,
//! `pkg/api/validation/path` and `pkg/apis/meta/v1/validation`).
//!
//! The `is_*` checks return the list of problems as upstream's strings (empty when valid).
//! Upstream matches with regular expressions; here each check is written out by hand, but
//! the messages quote upstream's regular expressions verbatim. The `validate_*` functions
//! return a [`field::ErrorList`] attached to a [`Path`].
//!
//! Object metadata is taken as an [`ObjectMetaFields`], a plain copy of the `metadata`
//! fields these rules look at; [`ObjectMetaFields::from_json`] reads one from the JSON of a
//! `metadata` object.

use std::collections::BTreeMap;

use crate::field::{self, BadValue, Error, ErrorList, Path, go_quote, go_string_slice};
use crate::labels::{LabelSelector, LabelSelectorRequirement};

// ---------------------------------------------------------------------------------------
// Message helpers (upstream `MaxLenError`, `RegexError`, `EmptyError`, ...)
// ---------------------------------------------------------------------------------------

/// `must be no more than N characters` (upstream `MaxLenError`).
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// Upstream `RegexError`: the message, then the examples and the regular expression:
/// `msg (e.g. 'a' or 'b', regex used for validation is 'RE')`, or
/// `msg (regex used for validation is 'RE')` without examples.
pub fn regex_error(msg: &str, regex: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{regex}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(regex);
    out.push_str("')");
    out
}

/// `must be non-empty` (upstream `EmptyError`).
pub fn empty_error() -> String {
    "must be non-empty".to_owned()
}

/// `must be between LO and HI, inclusive` (upstream `InclusiveRangeError`).
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

// ---------------------------------------------------------------------------------------
// Character-class matchers standing in for upstream's regular expressions
// ---------------------------------------------------------------------------------------

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            is_alnum(first)
                && is_alnum(last)
                && b.iter()
                    .all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.')
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// `_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label_with_underscore(s: &str) -> bool {
    let rest = s.strip_prefix('_').unwrap_or(s);
    let b = rest.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && b.iter()
                    .all(|&c| is_lower_alnum(c) || c == b'-' || c == b'_')
        }
        _ => false,
    }
}

/// Labels joined by dots, each matching `label`.
fn matches_dotted(s: &str, label: fn(&str) -> bool) -> bool {
    s.split('.').all(label)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1035_label(s: &str) -> bool {
    matches_dns1123_label(s) && s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

// ---------------------------------------------------------------------------------------
// Upstream `k8s.io/apimachinery/pkg/util/validation`
// ---------------------------------------------------------------------------------------

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_MAX_LENGTH: usize = 63;

const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
/// The longest label value (upstream `LabelValueMaxLength`).
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
/// The longest RFC 1123 label (upstream `DNS1123LabelMaxLength`).
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;

const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_ERR_MSG_UNDERSCORE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character";
/// The longest RFC 1123 subdomain (upstream `DNS1123SubdomainMaxLength`).
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
/// The longest RFC 1035 label (upstream `DNS1035LabelMaxLength`).
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;

const WILDCARD_DNS1123_SUBDOMAIN_FMT: &str =
    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const WILDCARD_DNS1123_SUBDOMAIN_ERR_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character";

const C_IDENTIFIER_FMT: &str = "[A-Za-z_][A-Za-z0-9_]*";
const C_IDENTIFIER_ERR_MSG: &str = "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_'";

const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_ERR_MSG: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";

const PERCENT_FMT: &str = "[0-9]+%";
const PERCENT_ERR_MSG: &str =
    "a valid percent string must be a numeric string followed by an ending '%'";

const HTTP_HEADER_NAME_FMT: &str = "[-A-Za-z0-9]+";
const HTTP_HEADER_NAME_ERR_MSG: &str =
    "a valid HTTP header must consist of alphanumeric characters or '-'";

/// Upstream `IsQualifiedName`: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 characters of `[-A-Za-z0-9_.]` starting and ending alphanumeric.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                for msg in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Upstream `IsValidLabelValue`: empty, or at most 63 characters of `[-A-Za-z0-9_.]`
/// starting and ending alphanumeric.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !(value.is_empty() || matches_qualified_name_part(value)) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Upstream `IsDNS1123Label`: at most 63 characters of `[-a-z0-9]`, starting and ending
/// alphanumeric; a valid subdomain that is not a label is told `must not contain dots`.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dotted(value, matches_dns1123_label) {
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Upstream `IsDNS1123Subdomain`: at most 253 characters, RFC 1123 labels joined by dots.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dotted(value, matches_dns1123_label) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Upstream `IsDNS1123SubdomainWithUnderscore`: like [`is_dns1123_subdomain`] but each
/// label may start with `_` and contain `_`. (Upstream's message quotes the regular
/// expression without underscores; so does this one.)
pub fn is_dns1123_subdomain_with_underscore(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dotted(value, matches_dns1123_label_with_underscore) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG_UNDERSCORE,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Upstream `IsDNS1035Label`: at most 63 characters of `[-a-z0-9]`, starting with a letter
/// and ending alphanumeric.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Upstream `IsWildcardDNS1123Subdomain`: `*.` followed by a DNS subdomain.
pub fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let ok = value
        .strip_prefix("*.")
        .is_some_and(|rest| matches_dotted(rest, matches_dns1123_label));
    if !ok {
        errs.push(regex_error(
            WILDCARD_DNS1123_SUBDOMAIN_ERR_MSG,
            WILDCARD_DNS1123_SUBDOMAIN_FMT,
            &["*.example.com"],
        ));
    }
    errs
}

/// Upstream `IsCIdentifier`: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_c_identifier(value: &str) -> Vec<String> {
    let b = value.as_bytes();
    let ok = b
        .first()
        .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_');
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            C_IDENTIFIER_ERR_MSG,
            C_IDENTIFIER_FMT,
            &["my_name", "MY_NAME", "MyName"],
        )]
    }
}

/// Upstream `IsValidPortNum`: 1 to 65535.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// Upstream `IsInRange`: `min <= value <= max`.
pub fn is_in_range(value: i64, min: i64, max: i64) -> Vec<String> {
    if value >= min && value <= max {
        Vec::new()
    } else {
        vec![inclusive_range_error(min, max)]
    }
}

/// Upstream `IsValidUserID` and `IsValidGroupID`: 0 to 2147483647.
pub fn is_valid_user_id(id: i64) -> Vec<String> {
    is_in_range(id, 0, i64::from(i32::MAX))
}

/// Upstream `IsValidPortName`: an IANA service name (1 to 15 of `[-a-z0-9]`, at least one
/// letter, no `--`, no leading or trailing `-`).
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    let b = port.as_bytes();
    if b.is_empty() || !b.iter().all(|&c| is_lower_alnum(c) || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !b.iter().any(u8::is_ascii_lowercase) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if b.first() == Some(&b'-') || b.last() == Some(&b'-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// Upstream `IsValidIP`: an IPv4 address (leading zeros allowed, as upstream's "sloppy"
/// parser does) or an IPv6 address.
pub fn is_valid_ip(path: &Path, value: &str) -> ErrorList {
    if parse_ip_sloppy(value) {
        Vec::new()
    } else {
        vec![Error::invalid(
            path,
            value,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )]
    }
}

fn parse_ip_sloppy(value: &str) -> bool {
    if value.contains(':') {
        return value.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let fields: Vec<&str> = value.split('.').collect();
    fields.len() == 4
        && fields.iter().all(|f| {
            !f.is_empty()
                && f.bytes().all(|c| c.is_ascii_digit())
                && f.bytes()
                    .try_fold(0u32, |n, c| {
                        let n = n * 10 + u32::from(c - b'0');
                        (n <= 255).then_some(n)
                    })
                    .is_some()
        })
}

/// Upstream `IsValidPercent`: digits followed by `%`.
pub fn is_valid_percent(percent: &str) -> Vec<String> {
    let ok = percent
        .strip_suffix('%')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
    if ok {
        Vec::new()
    } else {
        vec![regex_error(PERCENT_ERR_MSG, PERCENT_FMT, &["1%", "93%"])]
    }
}

/// Upstream `IsHTTPHeaderName`: `[-A-Za-z0-9]+`.
pub fn is_http_header_name(value: &str) -> Vec<String> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-');
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            HTTP_HEADER_NAME_ERR_MSG,
            HTTP_HEADER_NAME_FMT,
            &["X-Header-Name"],
        )]
    }
}

/// Upstream `IsEnvVarName`: `[-._a-zA-Z][-._a-zA-Z0-9]*`, and not `.`, `..` or `..*`.
pub fn is_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let b = value.as_bytes();
    let ok = b
        .first()
        .is_some_and(|&c| c.is_ascii_alphabetic() || matches!(c, b'-' | b'.' | b'_'))
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !ok {
        errs.push(regex_error(
            ENV_VAR_NAME_ERR_MSG,
            ENV_VAR_NAME_FMT,
            &["my.env-name", "MY_ENV.NAME", "MyEnvName1"],
        ));
    }
    errs.extend(has_ch_dir_prefix(value));
    errs
}

/// Upstream `IsConfigMapKey`: at most 253 characters of `[-._a-zA-Z0-9]`, and not `.`,
/// `..` or starting with `..`.
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !ok {
        errs.push(regex_error(
            CONFIG_MAP_KEY_ERR_MSG,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    errs.extend(has_ch_dir_prefix(value));
    errs
}

fn has_ch_dir_prefix(value: &str) -> Vec<String> {
    if value == "." {
        vec!["must not be '.'".to_owned()]
    } else if value == ".." {
        vec!["must not be '..'".to_owned()]
    } else if value.starts_with("..") {
        vec!["must not start with '..'".to_owned()]
    } else {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------------------
// Upstream `k8s.io/apimachinery/pkg/api/validation/path`
// ---------------------------------------------------------------------------------------

/// Upstream `IsValidPathSegmentName`: not `.` or `..`, and no `/` or `%`.
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    is_valid_path_segment_prefix(name)
}

/// Upstream `IsValidPathSegmentPrefix`: no `/` or `%`.
pub fn is_valid_path_segment_prefix(name: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|illegal| name.contains(*illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// Upstream `ValidatePathSegmentName`, a name validator for kinds whose names only need to
/// be safe in a URL path segment (prefix: a `generateName`).
pub fn validate_path_segment_name(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_valid_path_segment_prefix(name)
    } else {
        is_valid_path_segment_name(name)
    }
}

// ---------------------------------------------------------------------------------------
// Upstream `k8s.io/apimachinery/pkg/api/validation` (generic.go)
// ---------------------------------------------------------------------------------------

/// `must be greater than or equal to 0` (upstream `IsNegativeErrorMsg`).
pub const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";

/// `field is immutable` (upstream `FieldImmutableErrorMsg`).
pub const FIELD_IMMUTABLE_ERROR_MSG: &str = "field is immutable";

/// The largest total size of an object's annotations, keys plus values, in bytes
/// (upstream `TotalAnnotationSizeLimitB`).
pub const TOTAL_ANNOTATION_SIZE_LIMIT_B: usize = 256 * 1024;

/// A name validator (upstream `ValidateNameFunc`): `prefix` is true when the name is a
/// `generateName` that will get a random suffix.
pub type ValidateNameFunc = fn(&str, bool) -> Vec<String>;

/// Upstream's `maskTrailingDash`, bug for bug: a trailing `-` on a name longer than one
/// character replaces the last *two* characters by `a`.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        // The byte before the dash may be the end of a multi-byte character: keep only
        // whole characters before it.
        let cut = name.len() - 2;
        let mut end = cut;
        while end > 0 && !name.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}a", &name[..end])
    } else {
        name.to_owned()
    }
}

/// Upstream `NameIsDNSSubdomain`: most kinds' name rule.
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_subdomain(&mask_trailing_dash(name))
    } else {
        is_dns1123_subdomain(name)
    }
}

/// Upstream `NameIsDNSLabel`: the name rule of namespaces and several core kinds.
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_label(&mask_trailing_dash(name))
    } else {
        is_dns1123_label(name)
    }
}

/// Upstream `NameIsDNS1035Label`: the name rule of services.
pub fn name_is_dns1035_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1035_label(&mask_trailing_dash(name))
    } else {
        is_dns1035_label(name)
    }
}

/// Upstream `ValidateNamespaceName` (the same rule as [`name_is_dns_label`]).
pub fn validate_namespace_name(name: &str, prefix: bool) -> Vec<String> {
    name_is_dns_label(name, prefix)
}

/// Upstream `ValidateNonnegativeField`: `Invalid value: -1: must be greater than or equal to 0`.
pub fn validate_nonnegative_field(value: i64, path: &Path) -> ErrorList {
    if value < 0 {
        vec![Error::invalid(path, value, IS_NEGATIVE_ERROR_MSG)]
    } else {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------------------
// Upstream `k8s.io/apimachinery/pkg/apis/meta/v1/validation`
// ---------------------------------------------------------------------------------------

/// Upstream `ValidateLabelName`: a label key must be a qualified name.
pub fn validate_label_name(name: &str, path: &Path) -> ErrorList {
    is_qualified_name(name)
        .into_iter()
        .map(|msg| Error::invalid(path, name, &msg))
        .collect()
}

/// Upstream `ValidateLabels`: every key a qualified name, every value a label value; the
/// errors are attached to the map's path itself (e.g. `metadata.labels`), not to the key.
pub fn validate_labels(labels: &BTreeMap<String, String>, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    for (key, value) in labels {
        errs.extend(validate_label_name(key, path));
        for msg in is_valid_label_value(value) {
            errs.push(Error::invalid(path, value, &msg));
        }
    }
    errs
}

/// Options of [`validate_label_selector`] (upstream `LabelSelectorValidationOptions`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelSelectorValidationOptions {
    /// Accept values that are not valid label values (for data stored before the check).
    pub allow_invalid_label_value_in_selector: bool,
    /// Accept operators other than `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub allow_unknown_operator_in_requirement: bool,
}

/// Upstream `ValidateLabelSelector` for a `metav1.LabelSelector`.
pub fn validate_label_selector(
    selector: &LabelSelector,
    opts: LabelSelectorValidationOptions,
    path: &Path,
) -> ErrorList {
    let mut errs = validate_labels(&selector.match_labels, &path.child("matchLabels"));
    for (i, expr) in selector.match_expressions.iter().enumerate() {
        errs.extend(validate_label_selector_requirement(
            expr,
            opts,
            &path.child("matchExpressions").index(i),
        ));
    }
    errs
}

/// Upstream `ValidateLabelSelectorRequirement`.
pub fn validate_label_selector_requirement(
    req: &LabelSelectorRequirement,
    opts: LabelSelectorValidationOptions,
    path: &Path,
) -> ErrorList {
    let mut errs = Vec::new();
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if req.values.is_empty() {
                errs.push(Error::required(
                    &path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !req.values.is_empty() {
                errs.push(Error::forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        other => {
            if !opts.allow_unknown_operator_in_requirement {
                errs.push(Error::invalid(
                    &path.child("operator"),
                    other,
                    "not a valid selector operator",
                ));
            }
        }
    }
    errs.extend(validate_label_name(&req.key, &path.child("key")));
    if !opts.allow_invalid_label_value_in_selector {
        for (i, value) in req.values.iter().enumerate() {
            for msg in is_valid_label_value(value) {
                errs.push(Error::invalid(&path.child("values").index(i), value, &msg));
            }
        }
    }
    errs
}

/// The longest field manager name (upstream `FieldManagerMaxLength`).
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// Upstream `ValidateFieldManager`: at most 128 bytes, all characters printable.
pub fn validate_field_manager(manager: &str, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errs.push(Error::too_long(path, FIELD_MANAGER_MAX_LENGTH as i64));
    }
    for (i, c) in manager.char_indices() {
        if !field::go_is_print(c) {
            errs.push(Error::invalid(
                path,
                manager,
                &format!(
                    "invalid character U+{:04X} (at position {})",
                    u32::from(c),
                    i
                ),
            ));
        }
    }
    errs
}

/// Upstream `ValidateDryRun`: only `All` is allowed.
pub fn validate_dry_run(path: &Path, dry_run: &[String]) -> ErrorList {
    if dry_run.iter().all(|v| v == "All") {
        Vec::new()
    } else {
        vec![Error::not_supported(
            path,
            BadValue::string_slice(Some(dry_run)),
            &["All"],
        )]
    }
}

/// Upstream `ValidateFieldValidation`: empty, `Ignore`, `Strict` or `Warn`.
pub fn validate_field_validation(path: &Path, value: &str) -> ErrorList {
    const ALLOWED: [&str; 4] = ["", "Ignore", "Strict", "Warn"];
    if ALLOWED.contains(&value) {
        Vec::new()
    } else {
        vec![Error::not_supported(path, value, &ALLOWED)]
    }
}

/// The longest subresource name in a managed-fields entry (upstream
/// `MaxSubresourceNameLength`).
pub const MAX_SUBRESOURCE_NAME_LENGTH: usize = 256;

/// Upstream `ValidateManagedFields`.
pub fn validate_managed_fields(entries: &[ManagedFieldsEntry], path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = path.index(i);
        if entry.operation != "Apply" && entry.operation != "Update" {
            errs.push(Error::invalid(
                &path.child("operation"),
                entry.operation.as_str(),
                "must be `Apply` or `Update`",
            ));
        }
        if !entry.fields_type.is_empty() && entry.fields_type != "FieldsV1" {
            errs.push(Error::invalid(
                &path.child("fieldsType"),
                entry.fields_type.as_str(),
                "must be `FieldsV1`",
            ));
        }
        errs.extend(validate_field_manager(
            &entry.manager,
            &path.child("manager"),
        ));
        if entry.subresource.len() > MAX_SUBRESOURCE_NAME_LENGTH {
            errs.push(Error::too_long(
                &path.child("subresource"),
                MAX_SUBRESOURCE_NAME_LENGTH as i64,
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------
// Upstream `k8s.io/apimachinery/pkg/api/validation` (objectmeta.go)
// ---------------------------------------------------------------------------------------

/// The finalizer that orphans dependents (`orphan`).
pub const FINALIZER_ORPHAN_DEPENDENTS: &str = "orphan";
/// The finalizer that deletes dependents in the foreground (`foregroundDeletion`).
pub const FINALIZER_DELETE_DEPENDENTS: &str = "foregroundDeletion";
/// The namespace finalizer of core (`kubernetes`).
pub const FINALIZER_KUBERNETES: &str = "kubernetes";

/// An owner reference as the metadata rules see it (`metav1.OwnerReference`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnerReference {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `name`.
    pub name: String,
    /// `uid`.
    pub uid: String,
    /// `controller`.
    pub controller: Option<bool>,
    /// `blockOwnerDeletion`.
    pub block_owner_deletion: Option<bool>,
}

impl OwnerReference {
    /// Read an owner reference from JSON; fields of the wrong type read as absent.
    pub fn from_json(value: &serde_json::Value) -> OwnerReference {
        OwnerReference {
            api_version: json_str(value, "apiVersion"),
            kind: json_str(value, "kind"),
            name: json_str(value, "name"),
            uid: json_str(value, "uid"),
            controller: value.get("controller").and_then(serde_json::Value::as_bool),
            block_owner_deletion: value
                .get("blockOwnerDeletion")
                .and_then(serde_json::Value::as_bool),
        }
    }

    /// Go's `%#v` of the struct, as upstream prints it in an error. Non-nil pointers print
    /// as an address in Go; a fixed stand-in address is printed here.
    fn go_sharp_v(&self) -> String {
        fn bool_ptr(v: Option<bool>) -> &'static str {
            match v {
                None => "(*bool)(nil)",
                Some(_) => "(*bool)(0xc000000000)",
            }
        }
        format!(
            "v1.OwnerReference{{APIVersion:{}, Kind:{}, Name:{}, UID:{}, Controller:{}, BlockOwnerDeletion:{}}}",
            go_quote(&self.api_version),
            go_quote(&self.kind),
            go_quote(&self.name),
            go_quote(&self.uid),
            bool_ptr(self.controller),
            bool_ptr(self.block_owner_deletion),
        )
    }
}

/// A managed-fields entry as the metadata rules see it (`metav1.ManagedFieldsEntry`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// `manager`.
    pub manager: String,
    /// `operation` (`Apply` or `Update`).
    pub operation: String,
    /// `fieldsType` (`FieldsV1` or empty).
    pub fields_type: String,
    /// `subresource`.
    pub subresource: String,
}

impl ManagedFieldsEntry {
    /// Read an entry from JSON; fields of the wrong type read as absent.
    pub fn from_json(value: &serde_json::Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: json_str(value, "manager"),
            operation: json_str(value, "operation"),
            fields_type: json_str(value, "fieldsType"),
            subresource: json_str(value, "subresource"),
        }
    }
}

/// The fields of `metadata` that the object-metadata rules read.
///
/// Empty strings stand for absent strings, as in Go. Timestamps are the RFC 3339 text of
/// the JSON (`None` when absent); they are compared as instants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMetaFields {
    /// `name`.
    pub name: String,
    /// `generateName`.
    pub generate_name: String,
    /// `namespace`.
    pub namespace: String,
    /// `uid`.
    pub uid: String,
    /// `resourceVersion`.
    pub resource_version: String,
    /// `generation`.
    pub generation: i64,
    /// `creationTimestamp`.
    pub creation_timestamp: Option<String>,
    /// `deletionTimestamp`.
    pub deletion_timestamp: Option<String>,
    /// `deletionGracePeriodSeconds`.
    pub deletion_grace_period_seconds: Option<i64>,
    /// `labels`.
    pub labels: BTreeMap<String, String>,
    /// `annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `finalizers`.
    pub finalizers: Vec<String>,
    /// `ownerReferences`.
    pub owner_references: Vec<OwnerReference>,
    /// `managedFields`.
    pub managed_fields: Vec<ManagedFieldsEntry>,
}

fn json_str(value: &serde_json::Value, key: &str) -> String {
    value
        .get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn json_string_map(value: &serde_json::Value, key: &str) -> BTreeMap<String, String> {
    value
        .get(key)
        .and_then(serde_json::Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn json_array<'a>(value: &'a serde_json::Value, key: &str) -> &'a [serde_json::Value] {
    value
        .get(key)
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

impl ObjectMetaFields {
    /// Read the fields from the JSON of a `metadata` object; missing fields and fields of
    /// the wrong type read as absent (the decoder reports wrong types).
    pub fn from_json(metadata: &serde_json::Value) -> ObjectMetaFields {
        let opt_str = |key: &str| {
            metadata
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        ObjectMetaFields {
            name: json_str(metadata, "name"),
            generate_name: json_str(metadata, "generateName"),
            namespace: json_str(metadata, "namespace"),
            uid: json_str(metadata, "uid"),
            resource_version: json_str(metadata, "resourceVersion"),
            generation: metadata
                .get("generation")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or_default(),
            creation_timestamp: opt_str("creationTimestamp"),
            deletion_timestamp: opt_str("deletionTimestamp"),
            deletion_grace_period_seconds: metadata
                .get("deletionGracePeriodSeconds")
                .and_then(serde_json::Value::as_i64),
            labels: json_string_map(metadata, "labels"),
            annotations: json_string_map(metadata, "annotations"),
            finalizers: json_array(metadata, "finalizers")
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect(),
            owner_references: json_array(metadata, "ownerReferences")
                .iter()
                .map(OwnerReference::from_json)
                .collect(),
            managed_fields: json_array(metadata, "managedFields")
                .iter()
                .map(ManagedFieldsEntry::from_json)
                .collect(),
        }
    }
}

/// Upstream `ValidateAnnotations`: keys are qualified names compared in lower case (the
/// error shows the key as given, on the map's path), and keys plus values may total at most
/// 262144 bytes (`Too long: may not be more than 262144 bytes`).
pub fn validate_annotations(annotations: &BTreeMap<String, String>, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    for key in annotations.keys() {
        for msg in is_qualified_name(&key.to_lowercase()) {
            errs.push(Error::invalid(path, key, &msg));
        }
    }
    if annotations_size(annotations) > TOTAL_ANNOTATION_SIZE_LIMIT_B {
        errs.push(Error::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_B as i64));
    }
    errs
}

/// The size upstream counts for annotations: the bytes of every key and value.
pub fn annotations_size(annotations: &BTreeMap<String, String>) -> usize {
    annotations.iter().map(|(k, v)| k.len() + v.len()).sum()
}

fn validate_owner_reference(owner: &OwnerReference, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let (group, version) = parse_group_version(&owner.api_version);
    if version.is_empty() {
        errs.push(Error::invalid(
            &path.child("apiVersion"),
            owner.api_version.as_str(),
            "version must not be empty",
        ));
    }
    if owner.kind.is_empty() {
        errs.push(Error::invalid(
            &path.child("kind"),
            owner.kind.as_str(),
            "kind must not be empty",
        ));
    }
    if owner.name.is_empty() {
        errs.push(Error::invalid(
            &path.child("name"),
            owner.name.as_str(),
            "name must not be empty",
        ));
    }
    if owner.uid.is_empty() {
        errs.push(Error::invalid(
            &path.child("uid"),
            owner.uid.as_str(),
            "uid must not be empty",
        ));
    }
    // Upstream's `BannedOwners`: core/v1 Events may not own anything.
    if group.is_empty() && version == "v1" && owner.kind == "Event" {
        errs.push(Error::invalid(
            path,
            BadValue::Raw(owner.go_sharp_v()),
            &format!(
                "{group}/{version}, Kind={} is disallowed from being an owner",
                owner.kind
            ),
        ));
    }
    errs
}

/// Upstream `schema.ParseGroupVersion` as `FromAPIVersionAndKind` uses it: an unparsable
/// value gives an empty group and version.
fn parse_group_version(api_version: &str) -> (&str, &str) {
    if api_version.is_empty() || api_version == "/" {
        return ("", "");
    }
    match api_version.matches('/').count() {
        0 => ("", api_version),
        1 => api_version.split_once('/').unwrap_or(("", "")),
        _ => ("", ""),
    }
}

/// Upstream `ValidateOwnerReferences`: each reference complete, not an Event, and at most
/// one with `controller: true`.
pub fn validate_owner_references(owners: &[OwnerReference], path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for owner in owners {
        errs.extend(validate_owner_reference(owner, path));
        if owner.controller == Some(true) {
            let current = format!("{}/{}", owner.kind, owner.name);
            match &first_controller {
                Some(first) => {
                    let all: Vec<String> = owners.iter().map(OwnerReference::go_sharp_v).collect();
                    errs.push(Error::invalid(
                        path,
                        BadValue::Raw(format!("[]v1.OwnerReference{{{}}}", all.join(", "))),
                        &format!(
                            "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                        ),
                    ));
                }
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// Upstream `ValidateFinalizerName`: a finalizer must be a qualified name.
pub fn validate_finalizer_name(name: &str, path: &Path) -> ErrorList {
    is_qualified_name(name)
        .into_iter()
        .map(|msg| Error::invalid(path, name, &msg))
        .collect()
}

/// Upstream `ValidateFinalizers`: each a qualified name (errors on the list's path), and not
/// both `orphan` and `foregroundDeletion`.
pub fn validate_finalizers(finalizers: &[String], path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    for finalizer in finalizers {
        errs.extend(validate_finalizer_name(finalizer, path));
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has(FINALIZER_ORPHAN_DEPENDENTS) && has(FINALIZER_DELETE_DEPENDENTS) {
        errs.push(Error::invalid(
            path,
            BadValue::string_slice(Some(finalizers)),
            &format!(
                "finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set"
            ),
        ));
    }
    errs
}

/// The extra finalizer rule of core's `ValidateObjectMeta`/`ValidateObjectMetaUpdate`
/// (upstream `validateKubeFinalizerName` in `pkg/apis/core/validation`): a name without `/`
/// must be `kubernetes`, `orphan` or `foregroundDeletion`. Built-in kinds run it on each
/// finalizer at `metadata.finalizers[i]`, after the generic rules.
pub fn validate_kube_finalizer_name(name: &str, path: &Path) -> ErrorList {
    let standard = [
        FINALIZER_KUBERNETES,
        FINALIZER_ORPHAN_DEPENDENTS,
        FINALIZER_DELETE_DEPENDENTS,
    ];
    if !name.contains('/') && !standard.contains(&name) {
        vec![Error::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        )]
    } else {
        Vec::new()
    }
}

/// Upstream `ValidateNoNewFinalizers`: while an object is being deleted no finalizer may be
/// added.
pub fn validate_no_new_finalizers(new: &[String], old: &[String], path: &Path) -> ErrorList {
    let mut extra: Vec<String> = new.iter().filter(|f| !old.contains(f)).cloned().collect();
    extra.sort();
    extra.dedup();
    if extra.is_empty() {
        Vec::new()
    } else {
        vec![Error::forbidden(
            path,
            &format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                go_string_slice(Some(&extra))
            ),
        )]
    }
}

/// Upstream `ValidateObjectMetaAccessor` (what `ValidateObjectMeta` runs): on create, with
/// generated names already filled in. Rules, in upstream's order: `generateName` and `name`
/// by `name_fn` (`name or generateName is required` when there is no name), `namespace`
/// required and a DNS label for namespaced kinds and forbidden (`not allowed on this type`)
/// for cluster-scoped ones, `generation` non-negative, labels, annotations, owner
/// references, finalizers and managed fields.
pub fn validate_object_meta(
    meta: &ObjectMetaFields,
    requires_namespace: bool,
    name_fn: impl Fn(&str, bool) -> Vec<String>,
    path: &Path,
) -> ErrorList {
    let mut errs = Vec::new();
    if !meta.generate_name.is_empty() {
        for msg in name_fn(&meta.generate_name, true) {
            errs.push(Error::invalid(
                &path.child("generateName"),
                meta.generate_name.as_str(),
                &msg,
            ));
        }
    }
    if meta.name.is_empty() {
        errs.push(Error::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(&meta.name, false) {
            errs.push(Error::invalid(
                &path.child("name"),
                meta.name.as_str(),
                &msg,
            ));
        }
    }
    if requires_namespace {
        if meta.namespace.is_empty() {
            errs.push(Error::required(&path.child("namespace"), ""));
        } else {
            for msg in validate_namespace_name(&meta.namespace, false) {
                errs.push(Error::invalid(
                    &path.child("namespace"),
                    meta.namespace.as_str(),
                    &msg,
                ));
            }
        }
    } else if !meta.namespace.is_empty() {
        errs.push(Error::forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    // Each check below finds nothing in an empty (or non-negative) field; skipping those spares
    // building their paths on every write.
    if meta.generation < 0 {
        errs.extend(validate_nonnegative_field(
            meta.generation,
            &path.child("generation"),
        ));
    }
    if !meta.labels.is_empty() {
        errs.extend(validate_labels(&meta.labels, &path.child("labels")));
    }
    if !meta.annotations.is_empty() {
        errs.extend(validate_annotations(
            &meta.annotations,
            &path.child("annotations"),
        ));
    }
    if !meta.owner_references.is_empty() {
        errs.extend(validate_owner_references(
            &meta.owner_references,
            &path.child("ownerReferences"),
        ));
    }
    if !meta.finalizers.is_empty() {
        errs.extend(validate_finalizers(
            &meta.finalizers,
            &path.child("finalizers"),
        ));
    }
    if !meta.managed_fields.is_empty() {
        errs.extend(validate_managed_fields(
            &meta.managed_fields,
            &path.child("managedFields"),
        ));
    }
    errs
}

/// Upstream `ValidateObjectMetaAccessorUpdate` (what `ValidateObjectMetaUpdate` runs): no
/// new finalizers once deletion started, `resourceVersion` present (`must be specified for
/// an update`), `generation` not decremented, `name`, `namespace`, `uid`,
/// `creationTimestamp`, `deletionTimestamp` and `deletionGracePeriodSeconds` unchanged
/// (`field is immutable`), then labels, annotations, owner references and managed fields of
/// the new object.
pub fn validate_object_meta_update(
    new: &ObjectMetaFields,
    old: &ObjectMetaFields,
    path: &Path,
) -> ErrorList {
    let mut errs = Vec::new();
    if old.deletion_timestamp.is_some() {
        errs.extend(validate_no_new_finalizers(
            &new.finalizers,
            &old.finalizers,
            &path.child("finalizers"),
        ));
    }
    if new.resource_version.is_empty() {
        errs.push(Error::invalid(
            &path.child("resourceVersion"),
            new.resource_version.as_str(),
            "must be specified for an update",
        ));
    }
    if new.generation < old.generation {
        errs.push(Error::invalid(
            &path.child("generation"),
            new.generation,
            "must not be decremented",
        ));
    }
    let immutable = |errs: &mut ErrorList, changed: bool, name: &str, value: BadValue| {
        if changed {
            errs.push(Error::invalid(
                &path.child(name),
                value,
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
    };
    immutable(
        &mut errs,
        new.name != old.name,
        "name",
        new.name.as_str().into(),
    );
    immutable(
        &mut errs,
        new.namespace != old.namespace,
        "namespace",
        new.namespace.as_str().into(),
    );
    immutable(
        &mut errs,
        new.uid != old.uid,
        "uid",
        new.uid.as_str().into(),
    );
    immutable(
        &mut errs,
        !same_time(
            new.creation_timestamp.as_deref(),
            old.creation_timestamp.as_deref(),
        ),
        "creationTimestamp",
        BadValue::Raw(go_time_string(new.creation_timestamp.as_deref())),
    );
    let deletion_changed = match (&new.deletion_timestamp, &old.deletion_timestamp) {
        (None, None) => false,
        (Some(a), Some(b)) => !same_time(Some(a), Some(b)),
        _ => true,
    };
    immutable(
        &mut errs,
        deletion_changed,
        "deletionTimestamp",
        match &new.deletion_timestamp {
            None => BadValue::Null,
            Some(t) => BadValue::Raw(go_time_string(Some(t))),
        },
    );
    immutable(
        &mut errs,
        new.deletion_grace_period_seconds != old.deletion_grace_period_seconds,
        "deletionGracePeriodSeconds",
        new.deletion_grace_period_seconds.into(),
    );
    errs.extend(validate_labels(&new.labels, &path.child("labels")));
    errs.extend(validate_annotations(
        &new.annotations,
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        &new.owner_references,
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_managed_fields(
        &new.managed_fields,
        &path.child("managedFields"),
    ));
    errs
}

// ---------------------------------------------------------------------------------------
// Timestamps: compared as instants and printed like Go's `time.Time.String()` in UTC
// ---------------------------------------------------------------------------------------

/// An instant: seconds since the Unix epoch and nanoseconds.
type Instant = (i64, u32);

/// The zero `metav1.Time` (0001-01-01T00:00:00Z), what an absent timestamp is in Go.
const ZERO_TIME: Instant = (-62_135_596_800, 0);

fn same_time(a: Option<&str>, b: Option<&str>) -> bool {
    match (parse_rfc3339(a), parse_rfc3339(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Parse RFC 3339 (`2024-01-02T03:04:05Z`, `...05.5+01:00`); `None` input is the zero time.
fn parse_rfc3339(text: Option<&str>) -> Option<Instant> {
    let Some(text) = text else {
        return Some(ZERO_TIME);
    };
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0i64, |n, &c| n * 10 + i64::from(c - b'0')))
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if sep(i, b".,") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &b[start..i.min(start + 9)];
        let mut n: u32 = 0;
        for &c in digits {
            n = n * 10 + u32::from(c - b'0');
        }
        for _ in digits.len()..9 {
            n *= 10;
        }
        nanos = n;
    }
    let offset = match b.get(i) {
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let secs = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some((secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A timestamp as Go's `time.Time.String()` prints it on a server running in UTC:
/// `2024-01-02 03:04:05 +0000 UTC` (fractional seconds without trailing zeros). Text that
/// does not parse is printed quoted.
pub fn go_time_string(text: Option<&str>) -> String {
    let Some((secs, nanos)) = parse_rfc3339(text) else {
        return go_quote(text.unwrap_or_default());
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        year,
        month,
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Expected messages in these tables were produced by upstream apimachinery v0.32.0.

    /// (Status cause type, full message).
    type Texts = Vec<(&'static str, String)>;
    /// Expected (cause type, message) pairs.
    type Want = &'static [(&'static str, &'static str)];

    fn run_is(name: &str, input: &str) -> Vec<String> {
        match name {
            "is_qualified_name" => is_qualified_name(input),
            "is_valid_label_value" => is_valid_label_value(input),
            "is_dns1123_label" => is_dns1123_label(input),
            "is_dns1123_subdomain" => is_dns1123_subdomain(input),
            "is_dns1123_subdomain_with_underscore" => is_dns1123_subdomain_with_underscore(input),
            "is_dns1035_label" => is_dns1035_label(input),
            "is_wildcard_dns1123_subdomain" => is_wildcard_dns1123_subdomain(input),
            "is_c_identifier" => is_c_identifier(input),
            "is_config_map_key" => is_config_map_key(input),
            "is_env_var_name" => is_env_var_name(input),
            "is_http_header_name" => is_http_header_name(input),
            "is_valid_percent" => is_valid_percent(input),
            "is_valid_port_name" => is_valid_port_name(input),
            "name_is_dns_subdomain_prefix" => name_is_dns_subdomain(input, true),
            "name_is_dns_label_prefix" => name_is_dns_label(input, true),
            "name_is_dns1035_label_prefix" => name_is_dns1035_label(input, true),
            "path_segment_name" => validate_path_segment_name(input, false),
            "path_segment_prefix" => validate_path_segment_name(input, true),
            other => panic!("unknown check {other}"),
        }
    }

    #[test]
    fn string_checks_match_upstream() {
        let a63 = "a".repeat(63);
        let a64 = "a".repeat(64);
        let a254 = "a".repeat(254);
        let a_dot_127 = "a.".repeat(127);
        let dash70 = "-".repeat(70);
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, &[&str])> = vec![
            ("is_qualified_name", "", &["name part must be non-empty", "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]),
            ("is_qualified_name", "a", &[]),
            ("is_qualified_name", "A", &[]),
            ("is_qualified_name", "my-name", &[]),
            ("is_qualified_name", "123-abc", &[]),
            ("is_qualified_name", "-a", &["name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]),
            ("is_qualified_name", "a.b", &[]),
            ("is_qualified_name", "a..b", &[]),
            ("is_qualified_name", "/a", &["prefix part must be non-empty"]),
            ("is_qualified_name", "a/b/c", &["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]),
            ("is_qualified_name", "Example.com/x", &["prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
            ("is_qualified_name", &a64, &["name part must be no more than 63 characters"]),
            ("is_qualified_name", &a_dot_127, &["name part must be no more than 63 characters", "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]),
            ("is_valid_label_value", "", &[]),
            ("is_valid_label_value", "a", &[]),
            ("is_valid_label_value", "A", &[]),
            ("is_valid_label_value", "my-name", &[]),
            ("is_valid_label_value", "123-abc", &[]),
            ("is_valid_label_value", "-a", &["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
            ("is_valid_label_value", "a.b", &[]),
            ("is_valid_label_value", &a64, &["must be no more than 63 characters"]),
            ("is_valid_label_value", &a_dot_127, &["must be no more than 63 characters", "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
            ("is_dns1123_label", "", &["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
            ("is_dns1123_label", "a", &[]),
            ("is_dns1123_label", "my-name", &[]),
            ("is_dns1123_label", "123-abc", &[]),
            ("is_dns1123_label", "a.b", &["must not contain dots"]),
            ("is_dns1123_label", "1abc", &[]),
            ("is_dns1123_label", &a63, &[]),
            ("is_dns1123_label", &a64, &["must be no more than 63 characters"]),
            ("is_dns1123_label", &a_dot_127, &["must be no more than 63 characters", "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
            ("is_dns1123_label", "http", &[]),
            ("is_dns1123_subdomain", "", &["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
            ("is_dns1123_subdomain", "a", &[]),
            ("is_dns1123_subdomain", "my-name", &[]),
            ("is_dns1123_subdomain", "123-abc", &[]),
            ("is_dns1123_subdomain", "a.b", &[]),
            ("is_dns1123_subdomain", "1abc", &[]),
            ("is_dns1123_subdomain", &a63, &[]),
            ("is_dns1123_subdomain", &a254, &["must be no more than 253 characters"]),
            ("is_dns1123_subdomain", &a_dot_127, &["must be no more than 253 characters", "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
            ("is_dns1123_subdomain_with_underscore", "", &["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
            ("is_dns1123_subdomain_with_underscore", "a", &[]),
            ("is_dns1123_subdomain_with_underscore", "my-name", &[]),
            ("is_dns1123_subdomain_with_underscore", "123-abc", &[]),
            ("is_dns1123_subdomain_with_underscore", "a.b", &[]),
            ("is_dns1123_subdomain_with_underscore", "a_b", &[]),
            ("is_dns1123_subdomain_with_underscore", "_a", &[]),
            ("is_dns1123_subdomain_with_underscore", &a254, &["must be no more than 253 characters"]),
            ("is_dns1123_subdomain_with_underscore", &a_dot_127, &["must be no more than 253 characters", "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
            ("is_dns1035_label", "", &["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]),
            ("is_dns1035_label", "a", &[]),
            ("is_dns1035_label", "my-name", &[]),
            ("is_dns1035_label", &a63, &[]),
            ("is_dns1035_label", &a64, &["must be no more than 63 characters"]),
            ("is_dns1035_label", &a_dot_127, &["must be no more than 63 characters", "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]),
            ("is_dns1035_label", "http", &[]),
            ("is_dns1035_label", "h--p", &[]),
            ("is_dns1035_label", "abcdefghijklmnop", &[]),
            ("is_wildcard_dns1123_subdomain", "", &["a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
            ("is_wildcard_dns1123_subdomain", "*.example.com", &[]),
            ("is_wildcard_dns1123_subdomain", &a254, &["must be no more than 253 characters", "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
            ("is_c_identifier", "", &["a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName', regex used for validation is '[A-Za-z_][A-Za-z0-9_]*')"]),
            ("is_c_identifier", "a", &[]),
            ("is_c_identifier", "A", &[]),
            ("is_c_identifier", "a_b", &[]),
            ("is_c_identifier", "_a", &[]),
            ("is_c_identifier", "MyValue", &[]),
            ("is_c_identifier", "my_value", &[]),
            ("is_config_map_key", "", &["a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]),
            ("is_config_map_key", "a", &[]),
            ("is_config_map_key", "A", &[]),
            ("is_config_map_key", "my-name", &[]),
            ("is_config_map_key", "123-abc", &[]),
            ("is_config_map_key", "-a", &[]),
            ("is_config_map_key", "a-", &[]),
            ("is_config_map_key", ".", &["must not be '.'"]),
            ("is_config_map_key", "..", &["must not be '..'"]),
            ("is_config_map_key", "..a", &["must not start with '..'"]),
            ("is_config_map_key", &a254, &["must be no more than 253 characters"]),
            ("is_env_var_name", "", &["a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"]),
            ("is_env_var_name", "a", &[]),
            ("is_env_var_name", "A", &[]),
            ("is_env_var_name", "my-name", &[]),
            ("is_env_var_name", "-a", &[]),
            ("is_env_var_name", "a-", &[]),
            ("is_env_var_name", "ab-", &[]),
            ("is_env_var_name", ".", &["must not be '.'"]),
            ("is_env_var_name", "..", &["must not be '..'"]),
            ("is_env_var_name", "..a", &["must not start with '..'"]),
            ("is_http_header_name", "", &["a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')"]),
            ("is_http_header_name", "a", &[]),
            ("is_http_header_name", "A", &[]),
            ("is_http_header_name", "my-name", &[]),
            ("is_http_header_name", "123-abc", &[]),
            ("is_http_header_name", "-a", &[]),
            ("is_http_header_name", "a-", &[]),
            ("is_valid_percent", "", &["a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"]),
            ("is_valid_percent", "12%", &[]),
            ("is_valid_port_name", "", &["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)", "must contain at least one letter (a-z)"]),
            ("is_valid_port_name", "a", &[]),
            ("is_valid_port_name", "my-name", &[]),
            ("is_valid_port_name", "123-abc", &[]),
            ("is_valid_port_name", "-a", &["must not begin or end with a hyphen"]),
            ("is_valid_port_name", "a.b", &["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]),
            ("is_valid_port_name", "example.com/MyName", &["must be no more than 15 characters", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]),
            ("is_valid_port_name", "aé-", &["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)", "must not begin or end with a hyphen"]),
            ("is_valid_port_name", "1abc", &[]),
            ("is_valid_port_name", "-", &["must contain at least one letter (a-z)", "must not begin or end with a hyphen"]),
            ("is_valid_port_name", &a63, &["must be no more than 15 characters"]),
            ("is_valid_port_name", &dash70, &["must be no more than 15 characters", "must contain at least one letter (a-z)", "must not contain consecutive hyphens", "must not begin or end with a hyphen"]),
            ("is_valid_port_name", "http", &[]),
            ("is_valid_port_name", "h--p", &["must not contain consecutive hyphens"]),
            ("is_valid_port_name", "9999", &["must contain at least one letter (a-z)"]),
            ("is_valid_port_name", "1env", &[]),
            ("name_is_dns_subdomain_prefix", "", &["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
            ("name_is_dns_subdomain_prefix", "a", &[]),
            ("name_is_dns_subdomain_prefix", "my-name", &[]),
            ("name_is_dns_subdomain_prefix", "123-abc", &[]),
            ("name_is_dns_subdomain_prefix", "a-", &[]),
            ("name_is_dns_subdomain_prefix", "ab-", &[]),
            ("name_is_dns_subdomain_prefix", "a.b", &[]),
            ("name_is_dns_subdomain_prefix", &a254, &["must be no more than 253 characters"]),
            ("name_is_dns_subdomain_prefix", &a_dot_127, &["must be no more than 253 characters", "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
            ("name_is_dns_label_prefix", "", &["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
            ("name_is_dns_label_prefix", "a", &[]),
            ("name_is_dns_label_prefix", "my-name", &[]),
            ("name_is_dns_label_prefix", "123-abc", &[]),
            ("name_is_dns_label_prefix", "a-", &[]),
            ("name_is_dns_label_prefix", "ab-", &[]),
            ("name_is_dns_label_prefix", "a.b", &["must not contain dots"]),
            ("name_is_dns_label_prefix", "1abc", &[]),
            ("name_is_dns_label_prefix", &a64, &["must be no more than 63 characters"]),
            ("name_is_dns_label_prefix", &a_dot_127, &["must be no more than 63 characters", "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
            ("name_is_dns1035_label_prefix", "", &["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]),
            ("name_is_dns1035_label_prefix", "a", &[]),
            ("name_is_dns1035_label_prefix", "my-name", &[]),
            ("name_is_dns1035_label_prefix", "a-", &[]),
            ("name_is_dns1035_label_prefix", "ab-", &[]),
            ("name_is_dns1035_label_prefix", &a63, &[]),
            ("name_is_dns1035_label_prefix", &a64, &["must be no more than 63 characters"]),
            ("name_is_dns1035_label_prefix", &a_dot_127, &["must be no more than 63 characters", "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]),
            ("name_is_dns1035_label_prefix", "http", &[]),
            ("path_segment_name", "", &[]),
            ("path_segment_name", "a", &[]),
            ("path_segment_name", "A", &[]),
            ("path_segment_name", "my-name", &[]),
            ("path_segment_name", "123-abc", &[]),
            ("path_segment_name", "-a", &[]),
            ("path_segment_name", "abc/def", &["may not contain '/'"]),
            ("path_segment_name", ".", &["may not be '.'"]),
            ("path_segment_name", "..", &["may not be '..'"]),
            ("path_segment_name", "a%b", &["may not contain '%'"]),
            ("path_segment_name", "a/b%c", &["may not contain '/'", "may not contain '%'"]),
            ("path_segment_prefix", "", &[]),
            ("path_segment_prefix", "a", &[]),
            ("path_segment_prefix", "A", &[]),
            ("path_segment_prefix", "my-name", &[]),
            ("path_segment_prefix", "123-abc", &[]),
            ("path_segment_prefix", "-a", &[]),
            ("path_segment_prefix", "abc/def", &["may not contain '/'"]),
            ("path_segment_prefix", "a%b", &["may not contain '%'"]),
            ("path_segment_prefix", "a/b%c", &["may not contain '/'", "may not contain '%'"]),
        ];
        for (name, input, want) in cases {
            assert_eq!(run_is(name, input), want, "{name}({input:?})");
        }
        assert_eq!(
            is_qualified_name(&format!("x/{}", "b".repeat(64))),
            ["name part must be no more than 63 characters"]
        );
        assert!(is_qualified_name(&format!("{}/x", "b".repeat(64))).is_empty());
    }

    #[test]
    fn ip_check_matches_upstream() {
        #[rustfmt::skip]
        let cases: Vec<(&str, &[&str])> = vec![
            ("1.2.3.4", &[]),
            ("01.02.03.004", &[]),
            ("256.1.1.1", &["spec.ip: Invalid value: \"256.1.1.1\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
            ("1.2.3", &["spec.ip: Invalid value: \"1.2.3\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
            ("::1", &[]),
            ("2001:db8::ffff", &[]),
            ("::ffff:1.2.3.4", &[]),
            ("1.2.3.4.5", &["spec.ip: Invalid value: \"1.2.3.4.5\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
            ("", &["spec.ip: Invalid value: \"\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
            ("a", &["spec.ip: Invalid value: \"a\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
            ("1.2.3.-4", &["spec.ip: Invalid value: \"1.2.3.-4\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
            ("fe80::1%eth0", &["spec.ip: Invalid value: \"fe80::1%eth0\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
            ("0000000001.2.3.4", &[]),
            ("1..2.3", &["spec.ip: Invalid value: \"1..2.3\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
        ];
        let path = Path::from_names("spec", &["ip"]);
        for (input, want) in cases {
            let got: Vec<String> = is_valid_ip(&path, input)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "{input:?}");
        }
    }

    fn texts(errs: &[Error]) -> Texts {
        errs.iter()
            .map(|e| (e.error_type.reason(), e.to_string()))
            .collect()
    }

    /// Upstream iterates Go maps in random order: compare without order where maps are involved.
    fn sorted(mut v: Texts) -> Texts {
        v.sort();
        v
    }

    fn expected(want: Want) -> Texts {
        want.iter().map(|(r, t)| (*r, (*t).to_owned())).collect()
    }

    #[test]
    fn object_meta_matches_upstream() {
        #[rustfmt::skip]
        let cases: Vec<(&str, bool, &str, Want)> = vec![
            ("{\"name\":\"Foo\"}", true, "subdomain", &[("FieldValueInvalid", "metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"), ("FieldValueRequired", "metadata.namespace: Required value")]),
            ("{}", false, "subdomain", &[("FieldValueRequired", "metadata.name: Required value: name or generateName is required")]),
            ("{\"generateName\":\"Foo-\"}", false, "subdomain", &[("FieldValueInvalid", "metadata.generateName: Invalid value: \"Foo-\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"), ("FieldValueRequired", "metadata.name: Required value: name or generateName is required")]),
            ("{\"generateName\":\"foo-\",\"namespace\":\"Bad_NS\"}", true, "subdomain", &[("FieldValueRequired", "metadata.name: Required value: name or generateName is required"), ("FieldValueInvalid", "metadata.namespace: Invalid value: \"Bad_NS\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")]),
            ("{\"name\":\"a\",\"namespace\":\"x\"}", false, "subdomain", &[("FieldValueForbidden", "metadata.namespace: Forbidden: not allowed on this type")]),
            ("{\"name\":\"a\",\"namespace\":\"default\",\"generation\":-3}", true, "subdomain", &[("FieldValueInvalid", "metadata.generation: Invalid value: -3: must be greater than or equal to 0")]),
            ("{\"name\":\"a\",\"namespace\":\"d\",\"labels\":{\"app\":\"ok\",\"bad key\":\"v\",\"k\":\"bad value!\",\"example.com/x\":\"\",\"-x/y\":\"z\",\"a/b/c\":\"v\"}}", true, "subdomain", &[("FieldValueInvalid", "metadata.labels: Invalid value: \"bad value!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"), ("FieldValueInvalid", "metadata.labels: Invalid value: \"-x/y\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"), ("FieldValueInvalid", "metadata.labels: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"), ("FieldValueInvalid", "metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")]),
            ("{\"name\":\"a\",\"annotations\":{\"Example.COM/Foo\":\"x\",\"bad key\":\"v\",\"a/b/c\":\"v\",\"/x\":\"y\"}}", false, "subdomain", &[("FieldValueInvalid", "metadata.annotations: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"), ("FieldValueInvalid", "metadata.annotations: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"), ("FieldValueInvalid", "metadata.annotations: Invalid value: \"/x\": prefix part must be non-empty")]),
            ("{\"name\":\"a\",\"ownerReferences\":[{\"apiVersion\":\"\",\"kind\":\"\",\"name\":\"\",\"uid\":\"\"},{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"u\"},{\"apiVersion\":\"apps/\",\"kind\":\"X\",\"name\":\"n\",\"uid\":\"u\"}]}", false, "subdomain", &[("FieldValueInvalid", "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty"), ("FieldValueInvalid", "metadata.ownerReferences.kind: Invalid value: \"\": kind must not be empty"), ("FieldValueInvalid", "metadata.ownerReferences.name: Invalid value: \"\": name must not be empty"), ("FieldValueInvalid", "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty"), ("FieldValueInvalid", "metadata.ownerReferences: Invalid value: v1.OwnerReference{APIVersion:\"v1\", Kind:\"Event\", Name:\"e\", UID:\"u\", Controller:(*bool)(nil), BlockOwnerDeletion:(*bool)(nil)}: /v1, Kind=Event is disallowed from being an owner"), ("FieldValueInvalid", "metadata.ownerReferences.apiVersion: Invalid value: \"apps/\": version must not be empty")]),
            ("{\"name\":\"a\",\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"r1\",\"uid\":\"1\",\"controller\":true},{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"r2\",\"uid\":\"2\",\"controller\":true}]}", false, "subdomain", &[("FieldValueInvalid", "metadata.ownerReferences: Invalid value: []v1.OwnerReference{v1.OwnerReference{APIVersion:\"apps/v1\", Kind:\"ReplicaSet\", Name:\"r1\", UID:\"1\", Controller:(*bool)(0xc000000000), BlockOwnerDeletion:(*bool)(nil)}, v1.OwnerReference{APIVersion:\"apps/v1\", Kind:\"ReplicaSet\", Name:\"r2\", UID:\"2\", Controller:(*bool)(0xc000000000), BlockOwnerDeletion:(*bool)(nil)}}: Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/r1 and ReplicaSet/r2")]),
            ("{\"name\":\"a\",\"finalizers\":[\"bad name!\",\"orphan\",\"foregroundDeletion\",\"example.com/ok\"]}", false, "subdomain", &[("FieldValueInvalid", "metadata.finalizers: Invalid value: \"bad name!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"), ("FieldValueInvalid", "metadata.finalizers: Invalid value: []string{\"bad name!\", \"orphan\", \"foregroundDeletion\", \"example.com/ok\"}: finalizer orphan and foregroundDeletion cannot be both set")]),
            ("{\"name\":\"a\",\"managedFields\":[{\"manager\":\"kubectl\",\"operation\":\"Apply\",\"fieldsType\":\"FieldsV1\"},{\"manager\":\"a\\u0007b\",\"operation\":\"Patch\",\"fieldsType\":\"FieldsV2\",\"subresource\":\"sssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss\"}]}", false, "subdomain", &[("FieldValueInvalid", "metadata.managedFields[1].operation: Invalid value: \"Patch\": must be `Apply` or `Update`"), ("FieldValueInvalid", "metadata.managedFields[1].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`"), ("FieldValueInvalid", "metadata.managedFields[1].manager: Invalid value: \"a\\ab\": invalid character U+0007 (at position 1)"), ("FieldValueTooLong", "metadata.managedFields[1].subresource: Too long: may not be more than 256 bytes")]),
            ("{\"name\":\"..\"}", false, "pathsegment", &[("FieldValueInvalid", "metadata.name: Invalid value: \"..\": may not be '..'")]),
            ("{\"name\":\"a/b%c\",\"generateName\":\"x/\"}", false, "pathsegment", &[("FieldValueInvalid", "metadata.generateName: Invalid value: \"x/\": may not contain '/'"), ("FieldValueInvalid", "metadata.name: Invalid value: \"a/b%c\": may not contain '/'"), ("FieldValueInvalid", "metadata.name: Invalid value: \"a/b%c\": may not contain '%'")]),
            ("{\"name\":\"a.b\"}", false, "label", &[("FieldValueInvalid", "metadata.name: Invalid value: \"a.b\": must not contain dots")]),
            ("{\"name\":\"a\",\"namespace\":\"Default\"}", true, "label", &[("FieldValueInvalid", "metadata.namespace: Invalid value: \"Default\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")]),
        ];
        let path = Path::new("metadata");
        for (meta, requires_namespace, name_fn, want) in cases {
            let meta_json: serde_json::Value = serde_json::from_str(meta).unwrap();
            let fields = ObjectMetaFields::from_json(&meta_json);
            let name_fn: ValidateNameFunc = match name_fn {
                "subdomain" => name_is_dns_subdomain,
                "label" => name_is_dns_label,
                "pathsegment" => validate_path_segment_name,
                other => panic!("unknown name rule {other}"),
            };
            let got = validate_object_meta(&fields, requires_namespace, name_fn, &path);
            assert_eq!(sorted(texts(&got)), sorted(expected(want)), "{meta}");
        }
    }

    #[test]
    fn annotation_size_limit() {
        let mut fields = ObjectMetaFields {
            name: "a".into(),
            ..Default::default()
        };
        fields.annotations.insert("k".into(), "x".repeat(262_144));
        let want: Want = &[(
            "FieldValueTooLong",
            "metadata.annotations: Too long: may not be more than 262144 bytes",
        )];
        let path = Path::new("metadata");
        let got = validate_object_meta(&fields, false, name_is_dns_subdomain, &path);
        assert_eq!(texts(&got), expected(want));
        fields.annotations.insert("k".into(), "x".repeat(262_143));
        assert!(validate_object_meta(&fields, false, name_is_dns_subdomain, &path).is_empty());
    }

    #[test]
    fn object_meta_update_matches_upstream() {
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, Want)> = vec![
            ("{\"name\":\"b\",\"namespace\":\"n2\",\"uid\":\"u2\",\"generation\":1}", "{\"name\":\"a\",\"namespace\":\"n1\",\"uid\":\"u1\",\"resourceVersion\":\"5\",\"generation\":2}", &[("FieldValueInvalid", "metadata.resourceVersion: Invalid value: \"\": must be specified for an update"), ("FieldValueInvalid", "metadata.generation: Invalid value: 1: must not be decremented"), ("FieldValueInvalid", "metadata.name: Invalid value: \"b\": field is immutable"), ("FieldValueInvalid", "metadata.namespace: Invalid value: \"n2\": field is immutable"), ("FieldValueInvalid", "metadata.uid: Invalid value: \"u2\": field is immutable")]),
            ("{\"name\":\"a\",\"resourceVersion\":\"1\",\"deletionTimestamp\":\"2024-01-02T03:04:05Z\",\"deletionGracePeriodSeconds\":30}", "{\"name\":\"a\"}", &[("FieldValueInvalid", "metadata.deletionTimestamp: Invalid value: 2024-01-02 03:04:05 +0000 UTC: field is immutable"), ("FieldValueInvalid", "metadata.deletionGracePeriodSeconds: Invalid value: 30: field is immutable")]),
            ("{\"name\":\"a\",\"resourceVersion\":\"1\",\"finalizers\":[\"b\",\"a\",\"x/y\",\"a\"]}", "{\"name\":\"a\",\"deletionTimestamp\":\"2024-01-02T03:04:05Z\",\"deletionGracePeriodSeconds\":30,\"finalizers\":[\"x/y\"]}", &[("FieldValueForbidden", "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"a\", \"b\"}"), ("FieldValueInvalid", "metadata.deletionTimestamp: Invalid value: \"null\": field is immutable"), ("FieldValueInvalid", "metadata.deletionGracePeriodSeconds: Invalid value: \"null\": field is immutable")]),
            ("{\"name\":\"a\",\"resourceVersion\":\"1\",\"deletionTimestamp\":\"2024-01-02T03:04:05Z\",\"deletionGracePeriodSeconds\":30}", "{\"name\":\"a\",\"deletionTimestamp\":\"2024-01-02T03:04:05Z\",\"deletionGracePeriodSeconds\":30}", &[]),
            ("{\"name\":\"a\",\"resourceVersion\":\"1\",\"creationTimestamp\":\"2024-01-02T03:04:05Z\"}", "{\"name\":\"a\",\"creationTimestamp\":\"2024-01-02T04:04:05+01:00\"}", &[]),
            ("{\"name\":\"a\",\"resourceVersion\":\"1\",\"creationTimestamp\":\"2024-02-29T23:59:59Z\"}", "{\"name\":\"a\",\"creationTimestamp\":\"2024-01-02T03:04:05Z\"}", &[("FieldValueInvalid", "metadata.creationTimestamp: Invalid value: 2024-02-29 23:59:59 +0000 UTC: field is immutable")]),
            ("{\"name\":\"a\",\"resourceVersion\":\"1\"}", "{\"name\":\"a\",\"creationTimestamp\":\"2024-01-02T03:04:05Z\"}", &[("FieldValueInvalid", "metadata.creationTimestamp: Invalid value: 0001-01-01 00:00:00 +0000 UTC: field is immutable")]),
            ("{\"name\":\"a\",\"resourceVersion\":\"1\",\"creationTimestamp\":\"1969-07-20T20:17:40.5Z\"}", "{\"name\":\"a\"}", &[("FieldValueInvalid", "metadata.creationTimestamp: Invalid value: 1969-07-20 20:17:40.5 +0000 UTC: field is immutable")]),
            ("{\"name\":\"a\",\"resourceVersion\":\"1\",\"deletionTimestamp\":\"2024-01-02T03:04:06Z\"}", "{\"name\":\"a\",\"deletionTimestamp\":\"2024-01-02T03:04:05Z\"}", &[("FieldValueInvalid", "metadata.deletionTimestamp: Invalid value: 2024-01-02 03:04:06 +0000 UTC: field is immutable")]),
            ("{\"name\":\"a\",\"resourceVersion\":\"1\"}", "{\"name\":\"a\",\"deletionTimestamp\":\"2024-01-02T03:04:05Z\",\"deletionGracePeriodSeconds\":0}", &[("FieldValueInvalid", "metadata.deletionTimestamp: Invalid value: \"null\": field is immutable"), ("FieldValueInvalid", "metadata.deletionGracePeriodSeconds: Invalid value: \"null\": field is immutable")]),
            ("{\"name\":\"a\",\"resourceVersion\":\"1\",\"labels\":{\"bad key\":\"v\"},\"annotations\":{\"bad key\":\"v\"},\"finalizers\":[\"bad name!\"]}", "{\"name\":\"a\"}", &[("FieldValueInvalid", "metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"), ("FieldValueInvalid", "metadata.annotations: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")]),
        ];
        let path = Path::new("metadata");
        for (new, old, want) in cases {
            let new_fields = ObjectMetaFields::from_json(&serde_json::from_str(new).unwrap());
            let old_fields = ObjectMetaFields::from_json(&serde_json::from_str(old).unwrap());
            let got = validate_object_meta_update(&new_fields, &old_fields, &path);
            assert_eq!(
                sorted(texts(&got)),
                sorted(expected(want)),
                "{new} <- {old}"
            );
        }
    }

    #[test]
    fn label_selector_validation_matches_upstream() {
        #[rustfmt::skip]
        let cases: Vec<(&str, Want, Want)> = vec![
            ("{}", &[], &[]),
            ("{\"matchLabels\":{\"app\":\"x\",\"bad key\":\"bad value!\"}}", &[("FieldValueInvalid", "spec.selector.matchLabels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"), ("FieldValueInvalid", "spec.selector.matchLabels: Invalid value: \"bad value!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")], &[("FieldValueInvalid", "spec.selector.matchLabels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"), ("FieldValueInvalid", "spec.selector.matchLabels: Invalid value: \"bad value!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")]),
            ("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"},{\"key\":\"b\",\"operator\":\"Exists\",\"values\":[\"x\"]},{\"key\":\"c\",\"operator\":\"Foo\"},{\"key\":\"d/e/f\",\"operator\":\"NotIn\",\"values\":[\"ok\",\"bad value!\"]}]}", &[("FieldValueRequired", "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"), ("FieldValueForbidden", "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"), ("FieldValueInvalid", "spec.selector.matchExpressions[2].operator: Invalid value: \"Foo\": not a valid selector operator"), ("FieldValueInvalid", "spec.selector.matchExpressions[3].key: Invalid value: \"d/e/f\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"), ("FieldValueInvalid", "spec.selector.matchExpressions[3].values[1]: Invalid value: \"bad value!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")], &[("FieldValueRequired", "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"), ("FieldValueForbidden", "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"), ("FieldValueInvalid", "spec.selector.matchExpressions[3].key: Invalid value: \"d/e/f\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")]),
        ];
        let path = Path::from_names("spec", &["selector"]);
        let lenient = LabelSelectorValidationOptions {
            allow_invalid_label_value_in_selector: true,
            allow_unknown_operator_in_requirement: true,
        };
        for (selector, strict_want, lenient_want) in cases {
            let selector: LabelSelector = serde_json::from_str(selector).unwrap();
            let got = validate_label_selector(
                &selector,
                LabelSelectorValidationOptions::default(),
                &path,
            );
            assert_eq!(sorted(texts(&got)), sorted(expected(strict_want)));
            let got = validate_label_selector(&selector, lenient, &path);
            assert_eq!(sorted(texts(&got)), sorted(expected(lenient_want)));
        }
    }

    #[test]
    fn option_checks_match_upstream() {
        #[rustfmt::skip]
        let want: Vec<Want> = vec![
            &[("FieldValueTooLong", "fieldManager: Too long: may not be more than 128 bytes"), ("FieldValueInvalid", "fieldManager: Invalid value: \"mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm\\x00\\u200b\": invalid character U+0000 (at position 129)"), ("FieldValueInvalid", "fieldManager: Invalid value: \"mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm\\x00\\u200b\": invalid character U+200B (at position 130)")],
            &[("FieldValueNotSupported", "dryRun: Unsupported value: []string{\"All\", \"Foo\"}: supported values: \"All\"")],
            &[("FieldValueNotSupported", "fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"")],
            &[("FieldValueInvalid", "spec.replicas: Invalid value: -5: must be greater than or equal to 0")],
        ];
        let manager = format!("{}\u{0}\u{200b}", "m".repeat(129));
        assert_eq!(
            texts(&validate_field_manager(
                &manager,
                &Path::new("fieldManager")
            )),
            expected(want[0])
        );
        let dry_run = vec!["All".to_owned(), "Foo".to_owned()];
        assert_eq!(
            texts(&validate_dry_run(&Path::new("dryRun"), &dry_run)),
            expected(want[1])
        );
        assert!(validate_dry_run(&Path::new("dryRun"), &["All".to_owned()]).is_empty());
        assert_eq!(
            texts(&validate_field_validation(
                &Path::new("fieldValidation"),
                "strict"
            )),
            expected(want[2])
        );
        assert_eq!(
            texts(&validate_nonnegative_field(
                -5,
                &Path::from_names("spec", &["replicas"])
            )),
            expected(want[3])
        );
    }

    #[test]
    fn kube_finalizer_names() {
        let path = Path::new("metadata").child("finalizers").index(0);
        for ok in [
            "kubernetes",
            "orphan",
            "foregroundDeletion",
            "example.com/x",
            "a/b/c",
        ] {
            assert!(validate_kube_finalizer_name(ok, &path).is_empty(), "{ok}");
        }
        let got = validate_kube_finalizer_name("custom", &path);
        assert_eq!(
            got.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "metadata.finalizers[0]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
    }

    #[test]
    fn simple_ranges() {
        assert!(is_valid_port_num(1).is_empty());
        assert!(is_valid_port_num(65535).is_empty());
        assert_eq!(
            is_valid_port_num(0),
            ["must be between 1 and 65535, inclusive"]
        );
        assert_eq!(
            is_in_range(11, 1, 10),
            ["must be between 1 and 10, inclusive"]
        );
        assert_eq!(
            is_valid_user_id(-1),
            ["must be between 0 and 2147483647, inclusive"]
        );
    }

    #[test]
    fn metadata_from_json_reads_every_field() {
        let meta = ObjectMetaFields::from_json(&json!({
            "name": "n", "generateName": "g-", "namespace": "ns", "uid": "u",
            "resourceVersion": "7", "generation": 3,
            "creationTimestamp": "2024-01-02T03:04:05Z", "deletionTimestamp": null,
            "deletionGracePeriodSeconds": 30,
            "labels": {"a": "b"}, "annotations": {"c": "d"}, "finalizers": ["f"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "o", "uid": "ou", "controller": true}],
            "managedFields": [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "subresource": "status"}]
        }));
        assert_eq!(meta.name, "n");
        assert_eq!(meta.generate_name, "g-");
        assert_eq!(meta.namespace, "ns");
        assert_eq!(meta.uid, "u");
        assert_eq!(meta.resource_version, "7");
        assert_eq!(meta.generation, 3);
        assert_eq!(
            meta.creation_timestamp.as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(meta.deletion_timestamp, None);
        assert_eq!(meta.deletion_grace_period_seconds, Some(30));
        assert_eq!(meta.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(meta.annotations.get("c").map(String::as_str), Some("d"));
        assert_eq!(meta.finalizers, ["f"]);
        assert_eq!(meta.owner_references[0].controller, Some(true));
        assert_eq!(meta.managed_fields[0].subresource, "status");
    }
}
