//! Field selectors, after upstream `k8s.io/apimachinery/pkg/fields` (Kubernetes 1.32): the
//! syntax of `?fieldSelector=` (`a=b`, `a==b`, `a!=b`, joined by `,`, with `\,` `\=` `\\`
//! escapes in values), matching against an object's selectable fields, the canonical
//! string form, the requirement list and upstream's `Transform`, with upstream's messages.
//!
//! Which fields a kind supports is the registry's business. Upstream asks a per-kind
//! conversion function through `Transform`; [`default_meta_v1_field_selector_conversion`]
//! is the one for kinds without their own, and [`field_label_not_supported`] is the error
//! text the per-kind functions and custom resources use.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::field::go_quote;

/// The fields of an object a selector can be matched against (upstream `fields.Fields`).
pub trait Fields {
    /// The value of `field`, or `None` when the object has no such field (it then matches
    /// like the empty string, as upstream's `Get` returns `""`).
    fn get(&self, field: &str) -> Option<&str>;
}

impl Fields for BTreeMap<String, String> {
    fn get(&self, field: &str) -> Option<&str> {
        BTreeMap::get(self, field).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Fields for HashMap<String, String, S> {
    fn get(&self, field: &str) -> Option<&str> {
        HashMap::get(self, field).map(String::as_str)
    }
}

impl Fields for [(&str, &str)] {
    fn get(&self, field: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == field).map(|(_, v)| *v)
    }
}

/// How a field selector relates a field to its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `field=value` or `field==value` (upstream `selection.Equals`).
    Equals,
    /// `field!=value` (upstream `selection.NotEquals`).
    NotEquals,
}

impl Operator {
    /// Upstream's string for the operator: `=` or `!=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::NotEquals => "!=",
        }
    }
}

/// One term of a field selector (upstream `fields.Requirement`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The field, e.g. `metadata.name`.
    pub field: String,
    /// The operator.
    pub operator: Operator,
    /// The value, unescaped.
    pub value: String,
}

impl Requirement {
    fn matches(&self, value: Option<&str>) -> bool {
        let value = value.unwrap_or_default();
        match self.operator {
            Operator::Equals => value == self.value,
            Operator::NotEquals => value != self.value,
        }
    }
}

/// `field=value` or `field!=value` with the value escaped (upstream's term `String()`).
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.field,
            self.operator.as_str(),
            escape_value(&self.value)
        )
    }
}

/// Why a field selector string does not parse; the messages are upstream's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A term without `=`, `==` or `!=`:
    /// `invalid selector: 'SELECTOR'; can't understand 'TERM'`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Term {
        /// The whole selector as given.
        selector: String,
        /// The term that has no operator.
        term: String,
    },
    /// A backslash not followed by `\`, `,` or `=`:
    /// `invalid field selector: invalid escape sequence: \x`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscapeSequence(String),
    /// A `,` or `=` inside a value without a backslash; upstream prints the character's code
    /// point in decimal: `invalid field selector: unescaped character in value: 61`.
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedRune(char),
}

/// A field selector: terms that must all hold, or the selector that matches nothing.
///
/// `Display` is upstream's `String()`: the terms in parse order (which is sorted), values
/// escaped, joined by `,`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Selector {
    terms: Vec<Requirement>,
    nothing: bool,
}

impl Selector {
    /// The selector that matches everything (upstream `fields.Everything()`).
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// The selector that matches nothing (upstream `fields.Nothing()`); it is not empty.
    pub fn nothing() -> Selector {
        Selector {
            terms: Vec::new(),
            nothing: true,
        }
    }

    /// Parse the string syntax (upstream `fields.ParseSelector`). Terms are split on
    /// unescaped `,`, sorted as strings, and empty ones skipped; each is split at the first
    /// `!=`, `==` or `=`; the field is kept as it is (no trimming) and the value unescaped. A
    /// term with an empty field and an empty value (`=`) selects everything.
    pub fn parse(selector: &str) -> Result<Selector, Error> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, operator, raw_value)) = split_term(part) else {
                return Err(Error::Term {
                    selector: selector.to_owned(),
                    term: part.to_owned(),
                });
            };
            let value = unescape_value(raw_value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            terms.push(Requirement {
                field: field.to_owned(),
                operator,
                value,
            });
        }
        Ok(Selector {
            terms,
            nothing: false,
        })
    }

    /// Parse, then [`Selector::transform`] (upstream `ParseAndTransformSelector`).
    pub fn parse_and_transform<E: From<Error>>(
        selector: &str,
        transform: impl FnMut(&str, &str) -> Result<(String, String), E>,
    ) -> Result<Selector, E> {
        Selector::parse(selector)?.transform(transform)
    }

    /// A selector of `field=value` for each entry (upstream `SelectorFromSet`).
    pub fn from_set(set: &BTreeMap<String, String>) -> Selector {
        Selector {
            terms: set
                .iter()
                .map(|(k, v)| Requirement {
                    field: k.clone(),
                    operator: Operator::Equals,
                    value: v.clone(),
                })
                .collect(),
            nothing: false,
        }
    }

    /// `field=value` (upstream `OneTermEqualSelector`).
    pub fn one_term_equal(field: &str, value: &str) -> Selector {
        Selector {
            terms: vec![Requirement {
                field: field.to_owned(),
                operator: Operator::Equals,
                value: value.to_owned(),
            }],
            nothing: false,
        }
    }

    /// `field!=value` (upstream `OneTermNotEqualSelector`).
    pub fn one_term_not_equal(field: &str, value: &str) -> Selector {
        Selector {
            terms: vec![Requirement {
                field: field.to_owned(),
                operator: Operator::NotEquals,
                value: value.to_owned(),
            }],
            nothing: false,
        }
    }

    /// All of the selectors' terms (upstream `AndSelectors`); with a
    /// [`Selector::nothing`] among them the result matches nothing.
    pub fn and(selectors: &[Selector]) -> Selector {
        if selectors.iter().any(|s| s.nothing) {
            return Selector::nothing();
        }
        Selector {
            terms: selectors.iter().flat_map(|s| s.terms.clone()).collect(),
            nothing: false,
        }
    }

    /// Rewrite each term's field and value (upstream `Selector.Transform`): the function gets
    /// `(field, value)` and returns the new pair, an empty pair dropping the term, or an
    /// error, which is returned as it is (upstream's handler turns it into a 400 Bad Request
    /// with the error's text as message).
    pub fn transform<E>(
        &self,
        mut transform: impl FnMut(&str, &str) -> Result<(String, String), E>,
    ) -> Result<Selector, E> {
        if self.nothing {
            return Ok(self.clone());
        }
        let mut terms = Vec::with_capacity(self.terms.len());
        for term in &self.terms {
            let (field, value) = transform(&term.field, &term.value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            terms.push(Requirement {
                field,
                operator: term.operator,
                value,
            });
        }
        Ok(Selector {
            terms,
            nothing: false,
        })
    }

    /// Whether every term holds for the object's fields (upstream `Selector.Matches`); an
    /// absent field counts as the empty string.
    pub fn matches(&self, fields: &(impl Fields + ?Sized)) -> bool {
        !self.nothing && self.terms.iter().all(|t| t.matches(fields.get(&t.field)))
    }

    /// [`Selector::matches`] with the fields given by a function.
    pub fn matches_fn(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        !self.nothing
            && self
                .terms
                .iter()
                .all(|t| t.matches(get(&t.field).as_deref()))
    }

    /// Whether the selector has no term (upstream `Selector.Empty`); [`Selector::nothing`]
    /// is not empty.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.terms.is_empty()
    }

    /// Whether this is [`Selector::nothing`].
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The terms (upstream `Selector.Requirements`), e.g. to check the fields a kind
    /// supports.
    pub fn requirements(&self) -> &[Requirement] {
        &self.terms
    }

    /// The value `field` must equal, from the first `=` term on it (upstream
    /// `RequiresExactMatch`), for index look-ups.
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.operator == Operator::Equals && t.field == field)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{term}")?;
        }
        Ok(())
    }
}

/// Escape `\`, `,` and `=` with a backslash (upstream `EscapeValue`).
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Undo [`escape_value`] (upstream `UnescapeValue`); a lone `,` or `=`, or a backslash before
/// anything else, is an error.
pub fn unescape_value(value: &str) -> Result<String, Error> {
    if !value.contains(['\\', ',', '=']) {
        return Ok(value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    let mut in_slash = false;
    for c in value.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => return Err(Error::InvalidEscapeSequence(format!("\\{c}"))),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(Error::UnescapedRune(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(Error::InvalidEscapeSequence("\\".to_owned()));
    }
    Ok(out)
}

/// Split on commas not preceded by an escaping backslash (upstream `splitTerms`).
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Split a term at the first position where `!=`, `==` or `=` starts (upstream
/// `splitTerm`).
fn split_term(term: &str) -> Option<(&str, Operator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", Operator::NotEquals),
            ("==", Operator::Equals),
            ("=", Operator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

/// Upstream `runtime.DefaultMetaV1FieldSelectorConversion`, the field-selector
/// conversion of kinds that have none of their own: only `metadata.name` and
/// `metadata.namespace`; otherwise the error
/// `"foo" is not a known field selector: only "metadata.name", "metadata.namespace"`.
pub fn default_meta_v1_field_selector_conversion(
    label: &str,
    value: &str,
) -> Result<(String, String), String> {
    match label {
        "metadata.name" | "metadata.namespace" => Ok((label.to_owned(), value.to_owned())),
        _ => Err(format!(
            "{} is not a known field selector: only {}, {}",
            go_quote(label),
            go_quote("metadata.name"),
            go_quote("metadata.namespace")
        )),
    }
}

/// `field label not supported: LABEL`, the error of upstream's per-kind field-label
/// conversion functions (e.g. for pods) and of custom resources.
pub fn field_label_not_supported(label: &str) -> String {
    format!("field label not supported: {label}")
}

/// A field-label conversion for a kind that supports the fields in `supported` (plus any
/// renames in `aliases`, `(old, new)`), failing with [`field_label_not_supported`], as
/// upstream's per-kind functions do. Use it with [`Selector::transform`].
pub fn convert_field_label(
    supported: &[&str],
    aliases: &[(&str, &str)],
    label: &str,
    value: &str,
) -> Result<(String, String), String> {
    if supported.contains(&label) {
        return Ok((label.to_owned(), value.to_owned()));
    }
    if let Some((_, new)) = aliases.iter().find(|(old, _)| *old == label) {
        return Ok(((*new).to_owned(), value.to_owned()));
    }
    Err(field_label_not_supported(label))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected results in these tables were produced by upstream apimachinery v0.32.0.

    /// (String(), Empty(), requirements as "field op value" joined by " | ").
    type Summary = (String, bool, String);
    /// Expected summary or error text.
    type Want = Result<(&'static str, bool, &'static str), &'static str>;

    fn summary(s: &Selector) -> Summary {
        let reqs: Vec<String> = s
            .requirements()
            .iter()
            .map(|r| format!("{} {} {}", r.field, r.operator.as_str(), r.value))
            .collect();
        (s.to_string(), s.is_empty(), reqs.join(" | "))
    }

    fn want(w: Want) -> Result<Summary, String> {
        w.map(|(s, e, r)| (s.to_owned(), e, r.to_owned()))
            .map_err(str::to_owned)
    }

    #[test]
    fn parse_matches_upstream() {
        #[rustfmt::skip]
        let cases: Vec<(&str, Want)> = vec![
            ("", Ok(("", true, ""))),
            ("a=b", Ok(("a=b", false, "a = b"))),
            ("a==b", Ok(("a=b", false, "a = b"))),
            ("a!=b", Ok(("a!=b", false, "a != b"))),
            ("a", Err("invalid selector: 'a'; can't understand 'a'")),
            ("a=b,c!=d", Ok(("a=b,c!=d", false, "a = b | c != d"))),
            ("c=d,a=b", Ok(("a=b,c=d", false, "a = b | c = d"))),
            ("b=1,a=2,a=1", Ok(("a=1,a=2,b=1", false, "a = 1 | a = 2 | b = 1"))),
            ("a=", Ok(("a=", false, "a = "))),
            ("=", Ok(("", true, ""))),
            ("=a", Ok(("=a", false, " = a"))),
            ("!=", Ok(("", true, ""))),
            ("a = b", Ok(("a = b", false, "a  =  b"))),
            (" a=b ", Ok((" a=b ", false, " a = b "))),
            ("a=b,", Ok(("a=b", false, "a = b"))),
            (",a=b", Ok(("a=b", false, "a = b"))),
            ("a=b,,c=d", Ok(("a=b,c=d", false, "a = b | c = d"))),
            ("a=b\\,c", Ok(("a=b\\,c", false, "a = b,c"))),
            ("a=b\\=c", Ok(("a=b\\=c", false, "a = b=c"))),
            ("a=b\\\\c", Ok(("a=b\\\\c", false, "a = b\\c"))),
            ("a=b\\c", Err("invalid field selector: invalid escape sequence: \\c")),
            ("a=b\\", Err("invalid field selector: invalid escape sequence: \\")),
            ("a=b=c", Err("invalid field selector: unescaped character in value: 61")),
            ("a\\=b=c", Err("invalid field selector: unescaped character in value: 61")),
            ("a\\,b=c", Ok(("a\\,b=c", false, "a\\,b = c"))),
            ("a=b,c", Err("invalid selector: 'a=b,c'; can't understand 'c'")),
            ("x,a=b", Err("invalid selector: 'x,a=b'; can't understand 'x'")),
            ("metadata.name=foo,spec.nodeName!=", Ok(("metadata.name=foo,spec.nodeName!=", false, "metadata.name = foo | spec.nodeName != "))),
            ("a!b=c", Ok(("a!b=c", false, "a!b = c"))),
            ("a=!b", Ok(("a=!b", false, "a = !b"))),
            ("a==", Ok(("a=", false, "a = "))),
            ("a!==b", Err("invalid field selector: unescaped character in value: 61")),
            ("é=ü", Ok(("é=ü", false, "é = ü"))),
            ("a=\\\\\\,", Ok(("a=\\\\\\,", false, "a = \\,"))),
            ("a=b\\,", Ok(("a=b\\,", false, "a = b,"))),
            ("a<b", Err("invalid selector: 'a<b'; can't understand 'a<b'")),
            ("spec.x=y=z", Err("invalid field selector: unescaped character in value: 61")),
        ];
        for (input, expected) in cases {
            let got = Selector::parse(input)
                .map(|s| summary(&s))
                .map_err(|e| e.to_string());
            assert_eq!(got, want(expected), "{input:?}");
        }
    }

    #[test]
    fn escaping_matches_upstream() {
        #[rustfmt::skip]
        let cases: Vec<(&str, &str)> = vec![
            ("", ""),
            ("a", "a"),
            ("a,b=c\\d", "a\\,b\\=c\\\\d"),
            ("\\\\", "\\\\\\\\"),
            ("é,", "é\\,"),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape_value(raw), escaped);
            assert_eq!(unescape_value(escaped).as_deref(), Ok(raw));
        }
    }

    #[test]
    fn matching_matches_upstream() {
        let fields: BTreeMap<String, String> = [
            ("metadata.name", "foo"),
            ("status.phase", "Running"),
            ("empty", ""),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        #[rustfmt::skip]
        let cases: Vec<(&str, bool)> = vec![
            ("", true),
            ("metadata.name=foo", true),
            ("metadata.name!=foo", false),
            ("metadata.name=bar", false),
            ("missing=", true),
            ("missing!=", false),
            ("missing=x", false),
            ("empty=", true),
            ("metadata.name=foo,status.phase=Running", true),
            ("metadata.name=foo,status.phase!=Running", false),
        ];
        for (selector, expected) in cases {
            let parsed = Selector::parse(selector).unwrap();
            assert_eq!(parsed.matches(&fields), expected, "{selector}");
            assert_eq!(
                parsed.matches_fn(|f| fields.get(f).cloned()),
                expected,
                "{selector}"
            );
        }
        let pairs: &[(&str, &str)] = &[("a", "b")];
        assert!(Selector::parse("a=b").unwrap().matches(pairs));
    }

    #[test]
    fn exact_value_matches_upstream() {
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, Option<&str>)> = vec![
            ("a=b", "a", Some("b")),
            ("a==b", "a", Some("b")),
            ("a!=b", "a", None),
            ("c=d,a=b,a=c", "a", Some("b")),
            ("a=b", "c", None),
        ];
        for (selector, field, expected) in cases {
            assert_eq!(
                Selector::parse(selector).unwrap().exact_value(field),
                expected,
                "{selector}"
            );
        }
    }

    #[test]
    fn default_transform_matches_upstream() {
        #[rustfmt::skip]
        let cases: Vec<(&str, Want)> = vec![
            ("metadata.name=a", Ok(("metadata.name=a", false, "metadata.name = a"))),
            ("metadata.namespace!=b,metadata.name=a", Ok(("metadata.name=a,metadata.namespace!=b", false, "metadata.name = a | metadata.namespace != b"))),
            ("spec.nodeName=x", Err("\"spec.nodeName\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")),
            ("metadata.name=a,spec.foo=b", Err("\"spec.foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")),
            ("a\\,b=c", Err("\"a\\\\,b\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")),
        ];
        for (input, expected) in cases {
            let got = Selector::parse(input)
                .map_err(|e| e.to_string())
                .and_then(|s| s.transform(default_meta_v1_field_selector_conversion))
                .map(|s| summary(&s));
            assert_eq!(got, want(expected), "{input:?}");
        }
    }

    #[test]
    fn per_kind_conversion() {
        let convert = |label: &str, value: &str| {
            let supported = ["metadata.name", "spec.nodeName"];
            convert_field_label(&supported, &[("spec.host", "spec.nodeName")], label, value)
        };
        let s = Selector::parse("spec.host=n1,metadata.name=p").unwrap();
        assert_eq!(
            s.transform(convert).unwrap().to_string(),
            "metadata.name=p,spec.nodeName=n1"
        );
        let s = Selector::parse("status.phase=Running").unwrap();
        assert_eq!(
            s.transform(convert).unwrap_err(),
            "field label not supported: status.phase"
        );
        let drop_all = |_: &str, _: &str| Ok::<_, String>((String::new(), String::new()));
        assert!(
            Selector::parse("a=b")
                .unwrap()
                .transform(drop_all)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn parse_and_transform_unifies_errors() {
        #[derive(Debug, PartialEq)]
        enum E {
            Parse(String),
            Field(String),
        }
        impl From<Error> for E {
            fn from(e: Error) -> E {
                E::Parse(e.to_string())
            }
        }
        let f =
            |l: &str, v: &str| default_meta_v1_field_selector_conversion(l, v).map_err(E::Field);
        assert_eq!(
            Selector::parse_and_transform("a", f).unwrap_err(),
            E::Parse("invalid selector: 'a'; can't understand 'a'".into())
        );
        assert!(matches!(
            Selector::parse_and_transform("a=b", f),
            Err(E::Field(_))
        ));
        let ok = Selector::parse_and_transform("metadata.name=x", f).unwrap();
        assert_eq!(ok.to_string(), "metadata.name=x");
    }

    #[test]
    fn constructors() {
        assert_eq!(Selector::one_term_equal("a", "b,c").to_string(), "a=b\\,c");
        assert_eq!(Selector::one_term_not_equal("a", "b").to_string(), "a!=b");
        let set: BTreeMap<String, String> = [
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned()),
        ]
        .into();
        assert_eq!(Selector::from_set(&set).to_string(), "a=1,b=2");
        let both = Selector::and(&[
            Selector::one_term_equal("a", "1"),
            Selector::one_term_not_equal("b", "2"),
        ]);
        assert_eq!(both.to_string(), "a=1,b!=2");
        let none = Selector::and(&[Selector::nothing(), both]);
        assert!(none.is_nothing() && !none.is_empty() && !none.matches(&set));
        assert!(Selector::everything().is_empty() && Selector::everything().matches(&set));
    }
}
