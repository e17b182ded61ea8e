//! Label selectors, after upstream `k8s.io/apimachinery/pkg/labels` (Kubernetes 1.32):
//! the string syntax of `?labelSelector=` (`a=b,c!=d,e in (f,g),!h,i>1`) with upstream's
//! parser, checks and error messages, matching against a label set, the canonical string
//! form, and the conversion from a `metav1.LabelSelector` (`matchLabels`,
//! `matchExpressions`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::field::{self, BadValue, ErrorList, Path, go_quote};
use crate::validation::{is_qualified_name, is_valid_label_value};

/// A set of labels a selector can be matched against (upstream `labels.Labels`).
pub trait Labels {
    /// The value of `key`, or `None` when the label is absent.
    fn get(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

/// The `labels` object of an object's JSON; values that are not strings read as absent.
impl Labels for serde_json::Map<String, serde_json::Value> {
    fn get(&self, key: &str) -> Option<&str> {
        serde_json::Map::get(self, key).and_then(serde_json::Value::as_str)
    }
}

/// A label set kept for as long as its object is cached: the pairs sorted by key, each string
/// sized exactly. A `BTreeMap` allocates a node for room of eleven pairs whatever the count,
/// which for the usual one or two labels costs several times the labels themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSet(Box<[(Box<str>, Box<str>)]>);

impl LabelSet {
    /// Whether the set has no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many labels the set has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The labels in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(key, value)| (&**key, &**value))
    }

    /// From pairs in any order; of pairs with one key the last one stays, as when a JSON object
    /// repeats a key.
    fn from_pairs(mut pairs: Vec<(Box<str>, Box<str>)>) -> Self {
        // A stable sort keeps repeated keys in input order, so the last of each run is kept.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match kept.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => kept.push(pair),
            }
        }
        LabelSet(kept.into_boxed_slice())
    }
}

impl From<&BTreeMap<String, String>> for LabelSet {
    fn from(map: &BTreeMap<String, String>) -> Self {
        LabelSet(
            map.iter()
                .map(|(key, value)| (key.as_str().into(), value.as_str().into()))
                .collect(),
        )
    }
}

impl Labels for LabelSet {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(probe, _)| (**probe).cmp(key))
            .ok()
            .map(|at| &*self.0[at].1)
    }
}

impl<'de> Deserialize<'de> for LabelSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = LabelSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of label keys to values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<LabelSet, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    pairs.push((key.into_boxed_str(), value.into_boxed_str()));
                }
                Ok(LabelSet::from_pairs(pairs))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// How a requirement relates a label to its values (upstream `selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key=value`.
    Equals,
    /// `key==value`.
    DoubleEquals,
    /// `key in (a,b)`.
    In,
    /// `key!=value`: absent or different.
    NotEquals,
    /// `key notin (a,b)`: absent or none of the values.
    NotIn,
    /// `key`: the label is present.
    Exists,
    /// `key>1`: present and an integer greater than the value.
    GreaterThan,
    /// `key<1`: present and an integer less than the value.
    LessThan,
}

impl Operator {
    /// Upstream's string for the operator: `!`, `=`, `==`, `in`, `!=`, `notin`, `exists`,
    /// `gt`, `lt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::DoesNotExist => "!",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::In => "in",
            Operator::NotEquals => "!=",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The binary operators in upstream's order, as listed in "expected:" messages.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

/// Why a selector could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// A requirement failed upstream's `NewRequirement` checks; the message is the
    /// aggregate of the field errors (one as it is, several as `[a, b]`).
    #[error("{}", field::aggregate_message(.0).unwrap_or_default())]
    InvalidRequirement(ErrorList),
    /// The selector string does not parse; the message is upstream's, e.g.
    /// `unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt`.
    #[error("{0}")]
    Parse(String),
    /// A `matchExpressions` operator that is not `In`, `NotIn`, `Exists` or
    /// `DoesNotExist`: `"Foo" is not a valid label selector operator`.
    #[error("{} is not a valid label selector operator", go_quote(.0))]
    UnknownOperator(String),
}

/// One condition of a selector (upstream `labels.Requirement`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Upstream `NewRequirement` with no field path: checks the key (a qualified name), the
    /// number of values for the operator, integer values for `gt`/`lt` and every value (a
    /// label value).
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement, Error> {
        Requirement::new_at(key, operator, values, None, false)
    }

    /// [`Requirement::new`] with errors under `path` (upstream's `field.WithPath`), and with
    /// `nil_values` saying whether an empty value list prints as Go's nil slice.
    fn new_at(
        key: &str,
        operator: Operator,
        values: Vec<String>,
        path: Option<&Path>,
        nil_values: bool,
    ) -> Result<Requirement, Error> {
        let mut errs: ErrorList = Vec::new();
        if let Some(err) = validate_label_key(key, Some(&Path::child_of(path, "key"))) {
            errs.push(err);
        }
        let value_path = Path::child_of(path, "values");
        let values_bad = || {
            if values.is_empty() && nil_values {
                BadValue::string_slice(None)
            } else {
                BadValue::string_slice(Some(&values))
            }
        };
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(field::Error::invalid(
                        &value_path,
                        values_bad(),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(field::Error::invalid(
                        &value_path,
                        values_bad(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(field::Error::invalid(
                        &value_path,
                        values_bad(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(field::Error::invalid(
                        &value_path,
                        values_bad(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, value) in values.iter().enumerate() {
                    if value.parse::<i64>().is_err() {
                        errs.push(field::Error::invalid(
                            &value_path.index(i),
                            value,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, value) in values.iter().enumerate() {
            let msgs = is_valid_label_value(value);
            if !msgs.is_empty() {
                errs.push(field::Error::invalid(
                    &value_path.index(i).key(key),
                    value,
                    &msgs.join("; "),
                ));
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key: key.to_owned(),
                operator,
                values,
            })
        } else {
            Err(Error::InvalidRequirement(errs))
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, in the order given.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a label set satisfies this requirement (upstream `Requirement.Matches`).
    pub fn matches(&self, labels: &(impl Labels + ?Sized)) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(actual) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }
}

/// Upstream `Requirement.String()`: `key=v`, `key==v`, `key!=v`, `key in (a,b)`,
/// `key notin (a,b)`, `key`, `!key`, `key>1`, `key<1`; several values sorted.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let parens = matches!(self.operator, Operator::In | Operator::NotIn);
        if parens {
            f.write_str("(")?;
        }
        if let [only] = self.values.as_slice() {
            f.write_str(only)?;
        } else {
            let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            f.write_str(&sorted.join(","))?;
        }
        if parens {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A label selector: requirements that must all hold, or the selector that matches nothing.
///
/// `Display` is upstream's canonical `String()` (requirements sorted by key, joined by `,`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl Selector {
    /// The selector that matches every label set (upstream `labels.Everything()`).
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// The selector that matches nothing (upstream `labels.Nothing()`); it is not empty and
    /// prints as the empty string.
    pub fn nothing() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parse the string syntax (upstream `labels.Parse`). The requirements are sorted by key.
    pub fn parse(selector: &str) -> Result<Selector, Error> {
        Selector::parse_with_path(selector, None)
    }

    /// [`Selector::parse`] with field errors under `path` (upstream's `field.WithPath`).
    pub fn parse_with_path(selector: &str, path: Option<&Path>) -> Result<Selector, Error> {
        let mut parser = Parser::new(selector, path);
        let mut requirements = parser.parse().map_err(Error::Parse)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }

    /// A selector of `key=value` for each entry, not checked (upstream
    /// `SelectorFromValidatedSet`, which `SelectorFromSet` is).
    pub fn from_set(set: &BTreeMap<String, String>) -> Selector {
        Selector {
            requirements: set
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    operator: Operator::Equals,
                    values: vec![v.clone()],
                })
                .collect(),
            nothing: false,
        }
    }

    /// A selector of `key=value` for each entry, each checked like [`Requirement::new`]
    /// (upstream `ValidatedSelectorFromSet`).
    pub fn validated_from_set(set: &BTreeMap<String, String>) -> Result<Selector, Error> {
        let mut requirements = Vec::with_capacity(set.len());
        for (k, v) in set {
            requirements.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
        }
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }

    /// Upstream `metav1.LabelSelectorAsSelector`: `None` matches nothing, an empty selector
    /// matches everything; `matchLabels` become `=` requirements and `matchExpressions`
    /// `in`, `notin`, `exists` or `!` requirements, each checked like [`Requirement::new`].
    pub fn from_label_selector(selector: Option<&LabelSelector>) -> Result<Selector, Error> {
        let Some(selector) = selector else {
            return Ok(Selector::nothing());
        };
        if selector.match_labels.is_empty() && selector.match_expressions.is_empty() {
            return Ok(Selector::everything());
        }
        let mut requirements = Vec::new();
        for (k, v) in &selector.match_labels {
            requirements.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
        }
        for expr in &selector.match_expressions {
            let operator = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(Error::UnknownOperator(other.to_owned())),
            };
            requirements.push(Requirement::new_at(
                &expr.key,
                operator,
                expr.values.clone(),
                None,
                true,
            )?);
        }
        Ok(Selector::everything().add(requirements))
    }

    /// This selector with more requirements, re-sorted by key (upstream `Selector.Add`).
    /// Adding to [`Selector::nothing`] leaves it matching nothing.
    pub fn add(&self, requirements: impl IntoIterator<Item = Requirement>) -> Selector {
        if self.nothing {
            return self.clone();
        }
        let mut all = self.requirements.clone();
        all.extend(requirements);
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Selector {
            requirements: all,
            nothing: false,
        }
    }

    /// Whether every requirement holds for the label set (upstream `Selector.Matches`).
    pub fn matches(&self, labels: &(impl Labels + ?Sized)) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector has no requirement and so matches everything (upstream
    /// `Selector.Empty`); [`Selector::nothing`] is not empty.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is [`Selector::nothing`].
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The single value `key` must have, if the first requirement on `key` is `=`, `==` or
    /// `in` with one value (upstream `RequiresExactMatch`), for index look-ups.
    pub fn exact_value(&self, key: &str) -> Option<&str> {
        let requirement = self.requirements.iter().find(|r| r.key == key)?;
        match (requirement.operator, requirement.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [value]) => Some(value),
            _ => None,
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// Upstream's `validateLabelKey`: a qualified name; the messages joined by `; `. A `None`
/// path prints as `<nil>`, as upstream's parser does.
fn validate_label_key(key: &str, path: Option<&Path>) -> Option<field::Error> {
    let msgs = is_qualified_name(key);
    if msgs.is_empty() {
        return None;
    }
    Some(field::Error {
        error_type: field::ErrorType::Invalid,
        field: Path::display_opt(path),
        bad_value: BadValue::String(key.to_owned()),
        detail: msgs.join("; "),
    })
}

// ---------------------------------------------------------------------------------------
// metav1.LabelSelector
// ---------------------------------------------------------------------------------------

/// A `metav1.LabelSelector` as found in object specs (`spec.selector`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// `matchLabels`: each entry is `key=value`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One of `matchExpressions` (`metav1.LabelSelectorRequirement`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelectorRequirement {
    /// `key`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub key: String,
    /// `operator`: `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub operator: String,
    /// `values`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

// ---------------------------------------------------------------------------------------
// The parser: a port of upstream's lexer and recursive-descent parser, messages included
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(text: &[u8]) -> Option<Token> {
    Some(match text {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Upstream's byte lexer. A NUL byte reads like the end of the input, as upstream's does.
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&c) => {
                self.pos += 1;
                c
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let mut buffer = Vec::new();
        loop {
            let c = self.read();
            if c == 0 {
                break;
            }
            if is_special_symbol(c) || is_whitespace(c) {
                self.unread();
                break;
            }
            buffer.push(c);
        }
        let token = keyword(&buffer).unwrap_or(Token::Identifier);
        (token, String::from_utf8_lossy(&buffer).into_owned())
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let mut last: Option<(Token, String)> = None;
        let mut buffer = Vec::new();
        loop {
            let c = self.read();
            if c == 0 {
                break;
            }
            if !is_special_symbol(c) {
                self.unread();
                break;
            }
            buffer.push(c);
            if let Some(token) = keyword(&buffer) {
                last = Some((token, String::from_utf8_lossy(&buffer).into_owned()));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        last.unwrap_or_else(|| {
            (
                Token::Error,
                format!(
                    "error expected: keyword found '{}'",
                    String::from_utf8_lossy(&buffer)
                ),
            )
        })
    }

    fn lex(&mut self) -> (Token, String) {
        let mut c = self.read();
        while is_whitespace(c) {
            c = self.read();
        }
        if c == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special_symbol(c) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser<'a> {
    items: Vec<(Token, String)>,
    position: usize,
    path: Option<&'a Path>,
}

impl<'a> Parser<'a> {
    fn new(selector: &str, path: Option<&'a Path>) -> Parser<'a> {
        let mut lexer = Lexer {
            s: selector.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            let end = item.0 == Token::EndOfString;
            items.push(item);
            if end {
                break;
            }
        }
        Parser {
            items,
            position: 0,
            path,
        }
    }

    fn item(&self, index: usize, context: Context) -> (Token, String) {
        let (token, literal) = self
            .items
            .get(index)
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        let token = match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            _ => token,
        };
        (token, literal)
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        self.item(self.position, context)
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.item(self.position, context);
        if self.position < self.items.len() {
            self.position += 1;
        }
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, next_literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{next_literal}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            ));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return Requirement::new_at(&key, op, Vec::new(), self.path, false)
                .map_err(|e| e.to_string());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new_at(
            &key,
            operator,
            values.into_iter().collect(),
            self.path,
            false,
        )
        .map_err(|e| e.to_string())
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        if let Some(err) = validate_label_key(&literal, self.path) {
            return Err(err.to_string());
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma)
            && operator != Some(Operator::DoesNotExist)
        {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{literal}', expected: {BINARY_OPERATORS}")),
        })
    }

    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    // Upstream reports the token that opened the list here.
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut set = BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    set.insert(literal);
                    let (next, next_literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => {
                            return Err(format!("found '{next_literal}', expected: ',' or ')'"));
                        }
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set);
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        set.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, _) = self.lookahead(Context::Values);
        if token == Token::EndOfString || token == Token::Comma {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(BTreeSet::from([literal]))
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected results in these tables were produced by upstream apimachinery v0.32.0.

    type Want = Result<&'static str, &'static str>;

    fn result(r: Result<Selector, Error>) -> Result<String, String> {
        r.map(|s| s.to_string()).map_err(|e| e.to_string())
    }

    fn owned(w: Want) -> Result<String, String> {
        w.map(str::to_owned).map_err(str::to_owned)
    }

    #[test]
    fn label_set_reads_sorted_pairs_and_keeps_the_last_of_a_repeated_key() {
        let set: LabelSet = serde_json::from_str(r#"{"b":"2","a":"1","c":"3","a":"4"}"#).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![("a", "4"), ("b", "2"), ("c", "3")]
        );
        assert_eq!(Labels::get(&set, "a"), Some("4"));
        assert_eq!(Labels::get(&set, "c"), Some("3"));
        assert_eq!(Labels::get(&set, "d"), None);
        let selector = Selector::parse("a=4,b in (1,2),!d").unwrap();
        assert!(selector.matches(&set));
        assert!(!Selector::parse("c!=3").unwrap().matches(&set));

        let map = BTreeMap::from([("x".to_owned(), "y".to_owned())]);
        let from_map = LabelSet::from(&map);
        assert_eq!(Labels::get(&from_map, "x"), Some("y"));
        assert!(LabelSet::default().is_empty());
        assert!(serde_json::from_str::<LabelSet>(r#"{"a":1}"#).is_err());
    }

    #[test]
    fn parse_matches_upstream() {
        let long = format!("x={}", "v".repeat(64));
        #[rustfmt::skip]
        let cases: Vec<(&str, Want)> = vec![
            ("", Ok("")),
            ("x=a,y=b,z=c", Ok("x=a,y=b,z=c")),
            ("x!=a,y=b", Ok("x!=a,y=b")),
            ("x=", Ok("x=")),
            ("x= ", Ok("x=")),
            ("x=,z= ", Ok("x=,z=")),
            ("x= ,z= ", Ok("x=,z=")),
            ("!x", Ok("!x")),
            ("x>1", Ok("x>1")),
            ("x>1,z<5", Ok("x>1,z<5")),
            ("x=a||y=b", Err("unable to parse requirement: values[0][x]: Invalid value: \"a||y\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
            ("x==a==b", Err("found '==', expected: ',' or 'end of string'")),
            ("!x=a", Err("found '=', expected: ',' or 'end of string'")),
            ("x<a", Err("unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer")),
            ("a b", Err("unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt")),
            ("x in (a,b,c)", Ok("x in (a,b,c)")),
            ("x in (c,b,a,a)", Ok("x in (a,b,c)")),
            ("x notin (a)", Ok("x notin (a)")),
            ("x in ()", Ok("x in ()")),
            ("x in (,)", Ok("x in ()")),
            ("x in (,a)", Ok("x in (,a)")),
            ("x in (a,)", Ok("x in (,a)")),
            ("x in (a,,b)", Ok("x in (,a,b)")),
            ("x in a", Err("unable to parse requirement: found 'a' expected: '('")),
            ("x in (a b)", Err("unable to parse requirement: found 'b', expected: ',' or ')'")),
            ("x in (a", Err("unable to parse requirement: found '', expected: ',' or ')'")),
            ("x in", Err("unable to parse requirement: found '' expected: '('")),
            ("x in (", Err("unable to parse requirement: found '', expected: ',', ')' or identifier")),
            ("in=notin", Ok("in=notin")),
            ("notin in (in, notin)", Ok("notin in (in,notin)")),
            ("x", Ok("x")),
            ("x,", Err("found '', expected: identifier after ','")),
            (",x", Err("found ',', expected: !, identifier, or 'end of string'")),
            ("x,,y", Err("found ',', expected: identifier after ','")),
            ("!", Err("unable to parse requirement: found '', expected: identifier")),
            ("!!x", Err("unable to parse requirement: found '!', expected: identifier")),
            ("x!", Err("unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt")),
            ("x=a,", Err("found '', expected: identifier after ','")),
            ("a=b c", Err("found 'c', expected: ',' or 'end of string'")),
            ("k@=v", Err("unable to parse requirement: <nil>: Invalid value: \"k@\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")),
            ("k=v@", Err("unable to parse requirement: values[0][k]: Invalid value: \"v@\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
            ("a/b/c=d", Err("unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")),
            ("example.com/app=web", Ok("example.com/app=web")),
            ("x=a,x=b", Ok("x=a,x=b")),
            ("z=1,a=2,m", Ok("a=2,m,z=1")),
            ("x>=1", Err("unable to parse requirement: found '=', expected: identifier")),
            ("x>a", Err("unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer")),
            ("x<1.5", Err("unable to parse requirement: values[0]: Invalid value: \"1.5\": for 'Gt', 'Lt' operators, the value must be an integer")),
            ("x>9223372036854775808", Err("unable to parse requirement: values[0]: Invalid value: \"9223372036854775808\": for 'Gt', 'Lt' operators, the value must be an integer")),
            ("x>+1", Err("unable to parse requirement: values[0][x]: Invalid value: \"+1\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
            ("x>-1", Err("unable to parse requirement: values[0][x]: Invalid value: \"-1\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
            ("x=(a)", Err("unable to parse requirement: found '(', expected: identifier")),
            ("x in (a),y", Ok("x in (a),y")),
            ("\tx\n=\r a ", Ok("x=a")),
            ("x=a\u{0}y", Err("found 'y', expected: ',' or 'end of string'")),
            ("é=1", Err("unable to parse requirement: <nil>: Invalid value: \"é\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")),
            ("x=é", Err("unable to parse requirement: values[0][x]: Invalid value: \"é\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
            (&long, Err("unable to parse requirement: values[0][x]: Invalid value: \"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\": must be no more than 63 characters")),
            ("x in (a,b@,c!)", Err("unable to parse requirement: found '!', expected: ',' or ')'")),
            ("x in (a)b", Err("found 'b', expected: ',' or 'end of string'")),
            ("x=a=b", Err("found '=', expected: ',' or 'end of string'")),
            ("x==", Ok("x==")),
            ("x!=", Ok("x!=")),
            ("x>", Err("unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer")),
            ("(", Err("found '(', expected: !, identifier, or 'end of string'")),
            (")", Err("found ')', expected: !, identifier, or 'end of string'")),
            ("=", Err("found '=', expected: !, identifier, or 'end of string'")),
            ("x=a)b", Err("found ')', expected: ',' or 'end of string'")),
            ("x<>1", Err("unable to parse requirement: found '>', expected: identifier")),
            ("x in (a,b", Err("unable to parse requirement: found '', expected: ',' or ')'")),
            ("x notin ()", Ok("x notin ()")),
            ("!x,y=z", Ok("!x,y=z")),
            ("x,!y", Ok("x,!y")),
            ("x==y", Ok("x==y")),
            ("!x in (a)", Err("found 'in', expected: ',' or 'end of string'")),
            ("a=b,!", Err("unable to parse requirement: found '', expected: identifier")),
        ];
        for (input, want) in cases {
            assert_eq!(result(Selector::parse(input)), owned(want), "{input:?}");
        }
    }

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn matching_matches_upstream() {
        let sets = [
            set(&[("x", "y")]),
            set(&[("x", "z"), ("z", "a")]),
            set(&[("foo", "bar"), ("baz", "blah")]),
            set(&[("n", "5")]),
            set(&[("n", "x")]),
            set(&[]),
        ];
        #[rustfmt::skip]
        let cases: Vec<(&str, [bool; 6])> = vec![
            ("", [true, true, true, true, true, true]),
            ("x=y", [true, false, false, false, false, false]),
            ("x=y,z=w", [false, false, false, false, false, false]),
            ("x!=y,z!=w", [false, true, true, true, true, true]),
            ("x", [true, true, false, false, false, false]),
            ("!x", [false, false, true, true, true, true]),
            ("x in (y,z)", [true, true, false, false, false, false]),
            ("x notin (y)", [false, true, true, true, true, true]),
            ("n>4", [false, false, false, true, false, false]),
            ("n<6", [false, false, false, true, false, false]),
            ("n>5", [false, false, false, false, false, false]),
            ("foo=bar,baz=blah", [false, false, true, false, false, false]),
            ("foo=bar,baz!=blah", [false, false, false, false, false, false]),
            ("x=", [false, false, false, false, false, false]),
        ];
        for (selector, want) in cases {
            let parsed = Selector::parse(selector).unwrap();
            for (labels, want) in sets.iter().zip(want) {
                assert_eq!(parsed.matches(labels), want, "{selector:?} on {labels:?}");
            }
        }
    }

    #[test]
    fn exact_value_matches_upstream() {
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, Option<&str>)> = vec![
            ("x=a", "x", Some("a")),
            ("x==a", "x", Some("a")),
            ("x in (a)", "x", Some("a")),
            ("x in (a,b)", "x", None),
            ("x!=a", "x", None),
            ("x", "x", None),
            ("y=b,x=a", "x", Some("a")),
            ("x=a", "y", None),
        ];
        for (selector, key, want) in cases {
            assert_eq!(
                Selector::parse(selector).unwrap().exact_value(key),
                want,
                "{selector}"
            );
        }
    }

    #[test]
    fn label_selector_conversion_matches_upstream() {
        #[rustfmt::skip]
        let cases: Vec<(&str, Want)> = vec![
            ("{}", Ok("")),
            ("{\"matchLabels\":{\"b\":\"2\",\"a\":\"1\"}}", Ok("a=1,b=2")),
            ("{\"matchLabels\":{\"a\":\"1\"},\"matchExpressions\":[{\"key\":\"c\",\"operator\":\"In\",\"values\":[\"z\",\"y\"]},{\"key\":\"b\",\"operator\":\"NotIn\",\"values\":[\"q\"]},{\"key\":\"d\",\"operator\":\"Exists\"},{\"key\":\"a0\",\"operator\":\"DoesNotExist\"}]}", Ok("a=1,!a0,b notin (q),c in (y,z),d")),
            ("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}", Err("values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty")),
            ("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\",\"y\"]}]}", Err("values: Invalid value: []string{\"x\", \"y\"}: values set must be empty for exists and does not exist")),
            ("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Gt\",\"values\":[\"1\"]}]}", Err("\"Gt\" is not a valid label selector operator")),
            ("{\"matchExpressions\":[{\"key\":\"bad key\",\"operator\":\"In\",\"values\":[\"bad value!\"]}]}", Err("[key: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), values[0][bad key]: Invalid value: \"bad value!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]")),
            ("{\"matchLabels\":{\"k\":\"bad value!\"}}", Err("values[0][k]: Invalid value: \"bad value!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
        ];
        for (json, want) in cases {
            let selector: LabelSelector = serde_json::from_str(json).unwrap();
            assert_eq!(
                result(Selector::from_label_selector(Some(&selector))),
                owned(want),
                "{json}"
            );
        }
        let nothing = Selector::from_label_selector(None).unwrap();
        assert!(nothing.is_nothing() && !nothing.is_empty());
        assert!(!nothing.matches(&set(&[])));
        assert_eq!(nothing.to_string(), "");
        let everything = Selector::from_label_selector(Some(&LabelSelector::default())).unwrap();
        assert!(everything.is_empty() && everything.matches(&set(&[("a", "b")])));
    }

    #[test]
    fn requirement_checks_match_upstream() {
        #[rustfmt::skip]
        let got = vec![
            Requirement::new("x", Operator::In, vec![]),
            Requirement::new("x", Operator::Equals, vec!["a".into(), "b".into()]),
            Requirement::new("x", Operator::Exists, vec!["a".into()]),
            Requirement::new("x", Operator::GreaterThan, vec!["a".into(), "2".into()]),
            Requirement::new("bad key", Operator::Equals, vec!["bad value!".into()]),
            Requirement::new("x", Operator::DoubleEquals, vec!["a".into()]),
            Requirement::new("x", Operator::NotIn, vec!["b".into(), "a".into()]),
            Requirement::new("x", Operator::LessThan, vec!["-3".into()]),
        ];
        #[rustfmt::skip]
        let want: Vec<Want> = vec![
            Err("values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"),
            Err("values: Invalid value: []string{\"a\", \"b\"}: exact-match compatibility requires one single value"),
            Err("values: Invalid value: []string{\"a\"}: values set must be empty for exists and does not exist"),
            Err("[values: Invalid value: []string{\"a\", \"2\"}: for 'Gt', 'Lt' operators, exactly one value is required, values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer]"),
            Err("[key: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), values[0][bad key]: Invalid value: \"bad value!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]"),
            Ok("x==a"),
            Ok("x notin (a,b)"),
            Err("values[0][x]: Invalid value: \"-3\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
        ];
        for (got, want) in got.into_iter().zip(want) {
            let got = got.map(|r| r.to_string()).map_err(|e| e.to_string());
            assert_eq!(got, owned(want));
        }
    }

    #[test]
    fn parse_errors_carry_field_errors_from_requirements() {
        let err = Requirement::new("x", Operator::In, vec![]).unwrap_err();
        let Error::InvalidRequirement(errs) = err else {
            panic!("wrong variant");
        };
        assert_eq!(errs[0].field, "values");
        assert_eq!(errs[0].error_type, field::ErrorType::Invalid);
        let path = Path::new("spec").child("selector");
        let err = Selector::parse_with_path("k@=v", Some(&path)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unable to parse requirement: spec.selector: Invalid value: \"k@\"")
        );
        let err = Selector::parse_with_path("k=v@", Some(&path)).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "unable to parse requirement: spec.selector.values[0][k]: Invalid value"
            )
        );
    }

    #[test]
    fn sets_and_json_labels() {
        let s = Selector::from_set(&set(&[("b", "2"), ("a", "1")]));
        assert_eq!(s.to_string(), "a=1,b=2");
        assert!(s.matches(&set(&[("a", "1"), ("b", "2"), ("c", "3")])));
        assert_eq!(s.exact_value("b"), Some("2"));
        assert!(Selector::validated_from_set(&set(&[("a", "bad value!")])).is_err());
        assert!(Selector::from_set(&set(&[])).is_empty());
        let json = serde_json::json!({"app": "web", "n": 3});
        let labels = json.as_object().unwrap();
        assert!(Selector::parse("app=web").unwrap().matches(labels));
        assert!(!Selector::parse("n").unwrap().matches(labels));
        let exists = Requirement::new("a", Operator::Exists, vec![]).unwrap();
        let added = Selector::parse("b=1").unwrap().add([exists]);
        assert_eq!(added.to_string(), "a,b=1");
        assert_eq!(added.requirements()[0].operator().as_str(), "exists");
        let hash: HashMap<String, String> = [("a".to_owned(), "x".to_owned())].into();
        assert!(added.add([]).requirements().len() == 2 && !added.matches(&hash));
    }

    #[test]
    fn label_selector_json_accepts_nulls() {
        let s: LabelSelector = serde_json::from_str(
            r#"{"matchLabels":null,"matchExpressions":[{"key":"a","operator":"Exists","values":null}]}"#,
        )
        .unwrap();
        assert!(s.match_labels.is_empty());
        assert_eq!(s.match_expressions[0].key, "a");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"matchExpressions":[{"key":"a","operator":"Exists"}]}"#
        );
    }
}
