//! Resource quantities as Kubernetes 1.32 reads and writes them (`resource.Quantity` in
//! k8s.io/apimachinery): fixed-point numbers with an SI, binary or exponent suffix (`500m`,
//! `1Gi`, `1e3`) used by resource requests, limits and quotas.
//!
//! A [`Quantity`] holds its value exactly as `mantissa × 10^exponent` with at most 38
//! significant digits, plus the format its suffix asked for. Parsing follows upstream's rules
//! (sign, leading zeros, a fraction, the suffix table, rounding up to 10⁻⁹, the cap of binary
//! quantities at 2⁶³−1) and its three error messages. [`Quantity::to_canonical_string`] is what
//! upstream serializes, including the input text it keeps verbatim when that text already counts
//! as canonical (`"01"` and `"1.500"` are written back unchanged, `"1.5"` becomes `"1500m"`).
//!
//! Upstream also carries an internal representation (an `int64Amount` or an `inf.Dec`) whose
//! quirks show through `%#v` and `ScaledValue`; [`Quantity::go_repr`] and
//! [`Quantity::scaled_value`] reproduce them.
//!
//! Values that need more than 38 significant digits after rounding are rejected with
//! [`QuantityError::OutOfRange`]; upstream would hold them in a big decimal.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde_json::Value;

use crate::status::go_quote;

/// Mantissas stay below 10^38, so two of them of the same magnitude can be aligned in a `u128`.
const MANTISSA_LIMIT: u128 = 10u128.pow(38);

/// Every non-zero value is rounded up (away from zero) to a multiple of 10^NANO.
const NANO: i64 = -9;

/// Bytes a suffix may start with (before an optional sign and digits).
const SUFFIX_LETTERS: &[u8] = b"eEinumkKMGTP";

/// The largest magnitude a binary (`Ki` … `Ei`) quantity keeps; larger ones are capped to it.
const BINARY_CAP: u128 = i64::MAX as u128;

/// Stands in for the address `%#v` prints for a quantity upstream holds as an `inf.Dec`; the
/// real one differs from run to run.
const GO_DEC_POINTER: &str = "0xc000010000";

/// How a quantity is written back: the kind of suffix its input had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// A power of ten as `e` and an exponent: `12e6`.
    DecimalExponent,
    /// Powers of 1024: `12Mi`.
    BinarySI,
    /// SI powers of 1000: `12M`, `500m`.
    DecimalSI,
}

impl Format {
    /// The format's name as upstream spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::DecimalExponent => "DecimalExponent",
            Format::BinarySI => "BinarySI",
            Format::DecimalSI => "DecimalSI",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a quantity could not be read. The first three print exactly upstream's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text is not a number followed by a suffix (also: the empty string).
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    /// The number has no digits where upstream needs some (`.e-10`).
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is not one of the known ones.
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// Valid, but needs more than 38 significant digits; upstream would accept it. Not one of
    /// upstream's errors.
    #[error("quantity has more significant digits than can be represented")]
    OutOfRange,
}

/// How upstream holds a value internally, which decides what `%#v` prints and how
/// `ScaledValue` rounds and overflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GoAmount {
    /// `int64Amount{value, scale}`: `value × 10^scale`.
    Int64 { value: i64, scale: i32 },
    /// An `inf.Dec` with this many digits after the point (its unscaled value follows from the
    /// quantity's value).
    Dec { scale: i32 },
}

impl GoAmount {
    /// The digits after the point when written as an `inf.Dec`.
    fn dec_scale(self) -> i32 {
        match self {
            GoAmount::Int64 { scale, .. } => scale.wrapping_neg(),
            GoAmount::Dec { scale } => scale,
        }
    }
}

/// A Kubernetes resource quantity.
///
/// Equality, ordering and hashing go by value alone: `1k`, `1000` and `1e3` are equal.
#[derive(Clone, Debug)]
pub struct Quantity {
    /// The value is `mantissa × 10^exponent`; the mantissa has no trailing zeros, is below
    /// 10^38 in magnitude, and zero is `0 × 10^0`.
    mantissa: i128,
    exponent: i64,
    format: Format,
    /// The input text upstream keeps and writes back verbatim.
    cached: Option<String>,
    go: GoAmount,
}

impl Quantity {
    /// Zero, in the decimal SI format.
    pub fn zero() -> Self {
        Self {
            mantissa: 0,
            exponent: 0,
            format: Format::DecimalSI,
            cached: None,
            go: GoAmount::Int64 { value: 0, scale: 0 },
        }
    }

    /// `value` whole units (upstream's `NewQuantity`).
    pub fn new(value: i64, format: Format) -> Self {
        Self::scaled(value, 0, format)
    }

    /// `value` thousandths (upstream's `NewMilliQuantity`).
    pub fn new_milli(value: i64, format: Format) -> Self {
        Self::scaled(value, -3, format)
    }

    /// `value × 10^scale` in the decimal SI format (upstream's `NewScaledQuantity`).
    pub fn new_scaled(value: i64, scale: i32) -> Self {
        Self::scaled(value, scale, Format::DecimalSI)
    }

    fn scaled(value: i64, scale: i32, format: Format) -> Self {
        // An i64 always fits the mantissa; the fallback is never taken.
        let (mantissa, exponent) = normalize(i128::from(value), i64::from(scale)).unwrap_or((0, 0));
        Self {
            mantissa,
            exponent,
            format,
            cached: None,
            go: GoAmount::Int64 { value, scale },
        }
    }

    /// Read a quantity the way upstream's `ParseQuantity` does. Surrounding whitespace is an
    /// error here; [`Quantity::from_json`] trims it first, as upstream's JSON decoding does.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        if text.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if text == "0" {
            return Ok(Self {
                cached: Some(text.to_owned()),
                ..Self::zero()
            });
        }
        let parts = scan(text)?;
        let (base, exponent, format) =
            interpret_suffix(parts.suffix).ok_or(QuantityError::Suffix)?;
        if let Some(quantity) = parse_small(text, &parts, base, exponent, format) {
            return Ok(quantity);
        }
        parse_exact(&parts, base, exponent, format)
    }

    /// What upstream's `UnmarshalJSON` makes of a JSON value serde_json has already decoded:
    /// `null` is zero, a string is trimmed of white space and parsed, a number is parsed from
    /// its text, anything else fails to match the format.
    ///
    /// Upstream sees the raw text of a string, escapes included, and any escape makes it fail;
    /// so a decoded string with a character JSON must escape (a quote, a backslash, a control
    /// character) fails here too. A number's text is serde_json's rendering of it, which for
    /// numbers with a fraction or an exponent can differ from what was sent (`1e3` reads back
    /// as `1000.0`); [`Quantity::from_json_text`] takes the raw text when it is at hand.
    pub fn from_json(value: &Value) -> Result<Self, QuantityError> {
        match value {
            Value::Null => Ok(Self::zero()),
            Value::String(text) => {
                if text.chars().any(|c| c == '"' || c == '\\' || c < ' ') {
                    return Err(QuantityError::FormatWrong);
                }
                Self::parse(text.trim())
            }
            Value::Number(number) => Self::parse(&number.to_string()),
            Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(QuantityError::FormatWrong),
        }
    }

    /// Upstream's `UnmarshalJSON` on the raw text of one JSON value: `null` is zero, surrounding
    /// double quotes are removed (escapes are not interpreted), then white space is trimmed.
    pub fn from_json_text(raw: &str) -> Result<Self, QuantityError> {
        if raw == "null" {
            return Ok(Self::zero());
        }
        let inner = match raw
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
        {
            Some(inner) => inner,
            None => raw,
        };
        Self::parse(inner.trim())
    }

    /// The format the quantity is written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// -1, 0 or 1 as the value is negative, zero or positive.
    pub fn sign(&self) -> i32 {
        match self.mantissa.cmp(&0) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    /// The text upstream serializes (`MarshalJSON`, `String`): the kept input text if there is
    /// one, otherwise the canonical form.
    pub fn to_canonical_string(&self) -> String {
        if let Some(text) = &self.cached {
            return text.clone();
        }
        if self.mantissa == 0 {
            return "0".to_owned();
        }
        match self.format {
            Format::BinarySI => self
                .binary_string()
                .unwrap_or_else(|| self.decimal_string(Format::DecimalSI)),
            format => self.decimal_string(format),
        }
    }

    /// Binary form: only for whole values of at least 1024 in magnitude (others are written as
    /// decimal SI, like upstream). Whole values beyond `u128` also fall back to decimal SI,
    /// where upstream would still write a binary form; no parsed value gets there.
    fn binary_string(&self) -> Option<String> {
        if self.exponent < 0 {
            return None;
        }
        let scale = 10u128.checked_pow(u32::try_from(self.exponent).ok()?)?;
        let magnitude = self.mantissa.unsigned_abs().checked_mul(scale)?;
        if magnitude < 1024 {
            return None;
        }
        let (mut rest, mut powers) = (magnitude, 0);
        while rest % 1024 == 0 {
            rest /= 1024;
            powers += 1;
        }
        // Upstream has no suffix for 1024^7 and beyond and writes none.
        let suffix = match powers {
            1 => "Ki",
            2 => "Mi",
            3 => "Gi",
            4 => "Ti",
            5 => "Pi",
            6 => "Ei",
            _ => "",
        };
        let sign = if self.mantissa < 0 { "-" } else { "" };
        Some(format!("{sign}{rest}{suffix}"))
    }

    /// Decimal form: the exponent lowered to a multiple of three, then an SI suffix or `e<n>`.
    fn decimal_string(&self, format: Format) -> String {
        let (zeros, exponent) = canonical_exponent(self.exponent);
        let mut out = self.mantissa.to_string();
        for _ in 0..zeros {
            out.push('0');
        }
        match format {
            Format::DecimalExponent => {
                if exponent != 0 {
                    out.push('e');
                    out.push_str(&exponent.to_string());
                }
            }
            Format::DecimalSI | Format::BinarySI => {
                // Upstream writes no suffix for a power it has no letter for (above `E` or below
                // `n`), which changes the value: `1000E` comes back as `1`.
                out.push_str(match exponent {
                    -9 => "n",
                    -6 => "u",
                    -3 => "m",
                    3 => "k",
                    6 => "M",
                    9 => "G",
                    12 => "T",
                    15 => "P",
                    18 => "E",
                    _ => "",
                });
            }
        }
        out
    }

    /// `self + other`, or `None` when the exact sum needs more than 38 significant digits. The
    /// result has the format of `self`, or of `other` when `self` is zero; the kept text is
    /// dropped.
    pub fn checked_add(&self, other: &Self) -> Option<Self> {
        self.combine(other, false)
    }

    /// `self - other`, or `None` when the exact difference needs more than 38 significant
    /// digits. Formats as for [`Quantity::checked_add`].
    pub fn checked_sub(&self, other: &Self) -> Option<Self> {
        self.combine(other, true)
    }

    fn combine(&self, other: &Self, subtract: bool) -> Option<Self> {
        let other_mantissa = if subtract {
            -other.mantissa
        } else {
            other.mantissa
        };
        let (mantissa, exponent) =
            exact_sum(self.mantissa, self.exponent, other_mantissa, other.exponent)?;
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        Some(Self {
            mantissa,
            exponent,
            format,
            cached: None,
            go: go_sum(self.go, other.go, subtract),
        })
    }

    /// Upstream's `ScaledValue`: the value in units of 10^scale, rounded up, computed on
    /// upstream's internal representation with its overflow behavior (an `int64Amount` that
    /// overflows gives 0; an `inf.Dec` result wraps around to 64 bits).
    pub fn scaled_value(&self, scale: i32) -> i64 {
        match self.go {
            GoAmount::Int64 { value, scale: own } => int64_scaled(value, own, scale),
            GoAmount::Dec { scale: dec_scale } => self.dec_scaled(dec_scale, scale),
        }
    }

    /// Upstream's `Value`: whole units, rounded up.
    pub fn value(&self) -> i64 {
        self.scaled_value(0)
    }

    /// Upstream's `MilliValue`: thousandths, rounded up.
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(-3)
    }

    /// `scaledValue` on an `inf.Dec` whose unscaled value is `value × 10^dec_scale`.
    fn dec_scaled(&self, dec_scale: i32, target: i32) -> i64 {
        if self.mantissa == 0 {
            return 0;
        }
        let negative = self.mantissa < 0;
        let magnitude = self.mantissa.unsigned_abs();
        // The unscaled value is ±magnitude × 10^shift.
        let shift = self.exponent + i64::from(dec_scale);
        let down = i64::from(dec_scale) + i64::from(target);
        match down.cmp(&0) {
            Ordering::Equal => wrap64(negative, magnitude, shift),
            Ordering::Less => wrap64(negative, magnitude, shift).wrapping_mul(go_pow10(-down)),
            Ordering::Greater => {
                let below_max = negative || below_i64_max(magnitude, shift);
                if below_max && down < 19 {
                    // Upstream truncates the 64-bit unscaled value, then adds one for any
                    // remainder (so negative values round toward +∞ and one step further).
                    let unscaled = wrap64(negative, magnitude, shift);
                    let divisor = 10i64.pow(down as u32);
                    let quotient = unscaled / divisor;
                    if unscaled % divisor != 0 {
                        quotient.wrapping_add(1)
                    } else {
                        quotient
                    }
                } else {
                    let (floor, inexact) = floor_div_pow10(negative, magnitude, shift, down);
                    if inexact {
                        floor.wrapping_add(1)
                    } else {
                        floor
                    }
                }
            }
        }
    }

    /// The quantity after upstream's `String()` has run on it: that call caches the canonical
    /// text in the value, which then shows in a later `%#v` ([`Quantity::go_repr`]).
    pub fn stringified(&self) -> Self {
        let mut copy = self.clone();
        copy.cached = Some(self.to_canonical_string());
        copy
    }

    /// Go's `%#v` of the quantity, as upstream prints a `resource.Quantity` given as a field
    /// error's bad value. A value upstream holds as an `inf.Dec` prints a fixed stand-in for
    /// the pointer.
    pub fn go_repr(&self) -> String {
        let (value, scale, dec) = match self.go {
            GoAmount::Int64 { value, scale } => (value, scale, "nil"),
            GoAmount::Dec { .. } => (0, 0, GO_DEC_POINTER),
        };
        format!(
            "resource.Quantity{{i:resource.int64Amount{{value:{value}, scale:{scale}}}, \
             d:resource.infDecAmount{{Dec:(*inf.Dec)({dec})}}, s:{}, Format:{}}}",
            go_quote(self.cached.as_deref().unwrap_or("")),
            go_quote(self.format.as_str()),
        )
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Self::zero()
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_canonical_string())
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        // Normalized, so equal values have equal parts.
        self.mantissa == other.mantissa && self.exponent == other.exponent
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.mantissa.hash(state);
        self.exponent.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.mantissa, other.mantissa);
        match a.signum().cmp(&b.signum()) {
            Ordering::Equal if a == 0 => Ordering::Equal,
            Ordering::Equal => {
                let magnitude = cmp_magnitude(
                    a.unsigned_abs(),
                    self.exponent,
                    b.unsigned_abs(),
                    other.exponent,
                );
                if a < 0 {
                    magnitude.reverse()
                } else {
                    magnitude
                }
            }
            unequal => unequal,
        }
    }
}

/// The pieces of a quantity's text.
struct Parts<'a> {
    negative: bool,
    /// The number as written (sign, digits, point), which upstream hands to its decimal reader.
    value: &'a str,
    /// Digits before the point, leading zeros removed ("0" if none are left).
    whole: &'a str,
    /// Digits after the point.
    fraction: &'a str,
    suffix: &'a str,
}

fn skip_digits(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    pos
}

/// Split a quantity into sign, number and suffix, as upstream's scanner does (it is more
/// lenient than the regular expression its error quotes: `.`, `+` and `1.G` pass here).
fn scan(text: &str) -> Result<Parts<'_>, QuantityError> {
    let bytes = text.as_bytes();
    let end = bytes.len();
    let (negative, mut pos) = match bytes.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    while pos < end && bytes[pos] == b'0' {
        pos += 1;
    }
    if pos == end {
        // A sign and zeros only (or nothing after the sign): zero.
        return Ok(Parts {
            negative,
            value: "0",
            whole: "0",
            fraction: "",
            suffix: "",
        });
    }
    let whole_start = pos;
    pos = skip_digits(bytes, pos);
    let whole = if pos == whole_start {
        "0"
    } else {
        &text[whole_start..pos]
    };
    let mut fraction = "";
    if pos < end && bytes[pos] == b'.' {
        let start = pos + 1;
        pos = skip_digits(bytes, start);
        fraction = &text[start..pos];
    }
    let value = &text[..pos];
    let suffix_start = pos;
    while pos < end && SUFFIX_LETTERS.contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < end && (bytes[pos] == b'+' || bytes[pos] == b'-') {
        pos += 1;
    }
    pos = skip_digits(bytes, pos);
    if pos != end {
        return Err(QuantityError::FormatWrong);
    }
    Ok(Parts {
        negative,
        value,
        whole,
        fraction,
        suffix: &text[suffix_start..],
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    Ten,
    Two,
}

/// The base, exponent and format a suffix stands for.
fn interpret_suffix(suffix: &str) -> Option<(Base, i32, Format)> {
    let decimal = |exponent| Some((Base::Ten, exponent, Format::DecimalSI));
    let binary = |exponent| Some((Base::Two, exponent, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let digits = suffix.strip_prefix(['e', 'E'])?;
            let exponent: i64 = digits.parse().ok()?;
            // Upstream narrows the 64-bit exponent to 32 bits without checking.
            Some((Base::Ten, exponent as i32, Format::DecimalExponent))
        }
    }
}

/// Upstream's fast path: a number of at most 18 digits (fewer for binary suffixes) whose scale
/// is no finer than 10^-9 is kept as an `int64Amount`, together with the input text when that
/// text is already canonical. `None` sends the input to the exact path.
fn parse_small(
    text: &str,
    parts: &Parts<'_>,
    base: Base,
    exponent: i32,
    format: Format,
) -> Option<Quantity> {
    let digit_count = (parts.whole.len() + parts.fraction.len()) as i64;
    let (multiplier, scale) = match base {
        Base::Ten => {
            if digit_count > 18 {
                return None;
            }
            let fraction_len = i32::try_from(parts.fraction.len()).ok()?;
            (1i64, exponent.wrapping_sub(fraction_len))
        }
        Base::Two => {
            // Binary fractions always take the exact path; so do numbers too long to leave
            // room for the power of two (roughly 0.3 decimal digits per bit).
            let room = 15 - parts.whole.len() as i64 - i64::from(exponent) * 3 / 10 - 1;
            if exponent < 0 || !parts.fraction.is_empty() || room < 0 {
                return None;
            }
            (1i64.checked_shl(exponent as u32)?, 0)
        }
    };
    if i64::from(scale) < NANO {
        return None;
    }
    let shifted = format!("{}{}", parts.whole, parts.fraction);
    let digits: i64 = shifted.parse().ok()?;
    let magnitude = digits.checked_mul(multiplier)?;
    let value = if parts.negative {
        -magnitude
    } else {
        magnitude
    };
    let canonical = match format {
        Format::BinarySI => exponent % 10 == 0 && digits & 0x07 != 0,
        Format::DecimalSI | Format::DecimalExponent => {
            scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
        }
    };
    let (mantissa, normalized_exponent) = normalize(i128::from(value), i64::from(scale))?;
    Some(Quantity {
        mantissa,
        exponent: normalized_exponent,
        format,
        cached: canonical.then(|| text.to_owned()),
        go: GoAmount::Int64 { value, scale },
    })
}

/// Upstream's exact path (an `inf.Dec`): apply the suffix, round non-zero values up to 10^-9,
/// cap binary values at 2^63-1, and write binary values between 0 and 1 as decimal SI.
fn parse_exact(
    parts: &Parts<'_>,
    base: Base,
    exponent: i32,
    format: Format,
) -> Result<Quantity, QuantityError> {
    if !parts.value.bytes().any(|b| b.is_ascii_digit()) {
        return Err(QuantityError::Numeric);
    }
    let mut number = Decimal::new(parts.whole, parts.fraction);
    match base {
        Base::Ten => number.exponent += i64::from(exponent),
        Base::Two => {
            for _ in 0..exponent / 10 {
                number.multiply(1024);
            }
        }
    }
    let mut format = format;
    let go_scale = if number.is_zero() {
        // Zero is not rounded; the decimal keeps the scale it was read with.
        let fraction_len = parts.fraction.len() as i32;
        match base {
            Base::Ten => fraction_len.wrapping_add(exponent.wrapping_neg()),
            Base::Two => fraction_len,
        }
    } else {
        number.round_up(NANO);
        let mut go_scale = 9;
        if format == Format::BinarySI {
            if number.exceeds(BINARY_CAP) {
                number = Decimal::from_integer(BINARY_CAP);
                go_scale = 0;
            }
            if number.integer_digits() <= 0 {
                format = Format::DecimalSI;
            }
        }
        go_scale
    };
    let magnitude = number.to_u128().ok_or(QuantityError::OutOfRange)?;
    let magnitude = i128::try_from(magnitude).map_err(|_| QuantityError::OutOfRange)?;
    Ok(Quantity {
        mantissa: if parts.negative {
            -magnitude
        } else {
            magnitude
        },
        exponent: number.exponent,
        format,
        cached: None,
        go: GoAmount::Dec { scale: go_scale },
    })
}

/// A non-negative decimal of any length, used while parsing: `digits × 10^exponent`, most
/// significant digit first, without leading or trailing zeros (no digits at all for zero).
struct Decimal {
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    fn new(whole: &str, fraction: &str) -> Self {
        let digits = whole
            .bytes()
            .chain(fraction.bytes())
            .map(|b| b.wrapping_sub(b'0'))
            .collect();
        let mut number = Self {
            digits,
            exponent: -(fraction.len() as i64),
        };
        number.trim();
        number
    }

    fn from_integer(value: u128) -> Self {
        let mut number = Self {
            digits: value
                .to_string()
                .bytes()
                .map(|b| b.wrapping_sub(b'0'))
                .collect(),
            exponent: 0,
        };
        number.trim();
        number
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    fn trim(&mut self) {
        let leading = self.digits.iter().take_while(|&&d| d == 0).count();
        self.digits.drain(..leading);
        while self.digits.last() == Some(&0) {
            self.digits.pop();
            self.exponent += 1;
        }
        if self.digits.is_empty() {
            self.exponent = 0;
        }
    }

    /// Multiply by a small factor.
    fn multiply(&mut self, factor: u32) {
        let mut carry = 0u32;
        for digit in self.digits.iter_mut().rev() {
            let product = u32::from(*digit) * factor + carry;
            *digit = (product % 10) as u8;
            carry = product / 10;
        }
        let mut head = Vec::new();
        while carry > 0 {
            head.push((carry % 10) as u8);
            carry /= 10;
        }
        head.reverse();
        self.digits.splice(0..0, head);
        self.trim();
    }

    /// Round up (away from zero) to a multiple of 10^exponent.
    fn round_up(&mut self, exponent: i64) {
        if self.is_zero() || self.exponent >= exponent {
            return;
        }
        let dropped = exponent.saturating_sub(self.exponent);
        let kept = self.digits.len() as i64 - dropped;
        if kept <= 0 {
            self.digits = vec![1];
        } else {
            // No trailing zeros, so the dropped part is non-zero: add one unit.
            self.digits.truncate(kept as usize);
            let mut carried = true;
            for digit in self.digits.iter_mut().rev() {
                if *digit == 9 {
                    *digit = 0;
                } else {
                    *digit += 1;
                    carried = false;
                    break;
                }
            }
            if carried {
                self.digits.insert(0, 1);
            }
        }
        self.exponent = exponent;
        self.trim();
    }

    /// Digits before the point (zero or negative for values below one).
    fn integer_digits(&self) -> i64 {
        self.digits.len() as i64 + self.exponent
    }

    fn to_u128(&self) -> Option<u128> {
        if self.digits.len() > 38 {
            return None;
        }
        Some(
            self.digits
                .iter()
                .fold(0u128, |acc, &d| acc * 10 + u128::from(d)),
        )
    }

    /// Whether the value is above `limit` (an integer of at most 19 digits).
    fn exceeds(&self, limit: u128) -> bool {
        let limit_digits = limit.to_string().len() as i64;
        match self.integer_digits().cmp(&limit_digits) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => {
                let Some(mantissa) = self.to_u128() else {
                    return true;
                };
                if self.exponent >= 0 {
                    pow10_u128(self.exponent)
                        .and_then(|scale| mantissa.checked_mul(scale))
                        .is_none_or(|value| value > limit)
                } else {
                    pow10_u128(-self.exponent)
                        .and_then(|scale| limit.checked_mul(scale))
                        .is_some_and(|scaled| mantissa > scaled)
                }
            }
        }
    }
}

fn pow10_u128(exponent: i64) -> Option<u128> {
    10u128.checked_pow(u32::try_from(exponent).ok()?)
}

fn pow10_i128(exponent: i64) -> Option<i128> {
    10i128.checked_pow(u32::try_from(exponent).ok()?)
}

fn pow10_i64(exponent: i64) -> Option<i64> {
    10i64.checked_pow(u32::try_from(exponent).ok()?)
}

/// Strip trailing zeros into the exponent; `None` when 38 digits do not suffice.
fn normalize(mut mantissa: i128, mut exponent: i64) -> Option<(i128, i64)> {
    if mantissa == 0 {
        return Some((0, 0));
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent = exponent.checked_add(1)?;
    }
    (mantissa.unsigned_abs() < MANTISSA_LIMIT).then_some((mantissa, exponent))
}

fn exact_sum(a: i128, a_exponent: i64, b: i128, b_exponent: i64) -> Option<(i128, i64)> {
    if b == 0 {
        return Some((a, a_exponent));
    }
    if a == 0 {
        return Some((b, b_exponent));
    }
    let exponent = a_exponent.min(b_exponent);
    let a = a.checked_mul(pow10_i128(a_exponent - exponent)?)?;
    let b = b.checked_mul(pow10_i128(b_exponent - exponent)?)?;
    normalize(a.checked_add(b)?, exponent)
}

/// Compare `a × 10^a_exponent` with `b × 10^b_exponent` (both non-zero, below 10^38).
fn cmp_magnitude(a: u128, a_exponent: i64, b: u128, b_exponent: i64) -> Ordering {
    let order_a = digit_count(a) + a_exponent;
    let order_b = digit_count(b) + b_exponent;
    if order_a != order_b {
        return order_a.cmp(&order_b);
    }
    // Same number of integer digits: the exponents differ by less than 38, and the shifted
    // mantissa has as many digits as the other one.
    if a_exponent >= b_exponent {
        match pow10_u128(a_exponent - b_exponent).and_then(|scale| a.checked_mul(scale)) {
            Some(shifted) => shifted.cmp(&b),
            None => Ordering::Greater,
        }
    } else {
        match pow10_u128(b_exponent - a_exponent).and_then(|scale| b.checked_mul(scale)) {
            Some(shifted) => a.cmp(&shifted),
            None => Ordering::Less,
        }
    }
}

fn digit_count(value: u128) -> i64 {
    i64::from(value.checked_ilog10().unwrap_or(0)) + 1
}

/// The exponent a canonical decimal form is written with: lowered to a multiple of three,
/// returning the zeros to append to the mantissa. Upstream computes it in 32 bits; an exponent
/// just past that range (only reachable from a fast-path scale near the limit) wraps as it
/// does there.
fn canonical_exponent(exponent: i64) -> (u8, i64) {
    let limit = i64::from(i32::MAX);
    let wraps = (limit + 1..=limit + 64).contains(&exponent);
    let exponent = if wraps {
        i64::from(exponent as i32)
    } else {
        exponent
    };
    let zeros = exponent.rem_euclid(3);
    let lowered = exponent - zeros;
    let lowered = if wraps {
        i64::from(lowered as i32)
    } else {
        lowered
    };
    (zeros as u8, lowered)
}

/// The internal representation of a sum or difference, as upstream's `Add`/`Sub` leave it.
fn go_sum(a: GoAmount, b: GoAmount, subtract: bool) -> GoAmount {
    if let (
        GoAmount::Int64 {
            value: a_value,
            scale: a_scale,
        },
        GoAmount::Int64 {
            value: b_value,
            scale: b_scale,
        },
    ) = (a, b)
    {
        let b_value = if subtract {
            b_value.checked_neg()
        } else {
            Some(b_value)
        };
        if let Some((value, scale)) =
            b_value.and_then(|b_value| int64_sum(a_value, a_scale, b_value, b_scale))
        {
            return GoAmount::Int64 { value, scale };
        }
    }
    GoAmount::Dec {
        scale: a.dec_scale().max(b.dec_scale()),
    }
}

/// `int64Amount.Add`: align to the finer scale; `None` on overflow.
fn int64_sum(a: i64, a_scale: i32, b: i64, b_scale: i32) -> Option<(i64, i32)> {
    if b == 0 {
        return Some((a, a_scale));
    }
    if a == 0 {
        return Some((b, b_scale));
    }
    let difference = i64::from(a_scale) - i64::from(b_scale);
    match difference.cmp(&0) {
        Ordering::Equal => Some((a.checked_add(b)?, a_scale)),
        Ordering::Greater => {
            let a = a.checked_mul(pow10_i64(difference)?)?;
            Some((a.checked_add(b)?, b_scale))
        }
        Ordering::Less => {
            let b = b.checked_mul(pow10_i64(-difference)?)?;
            Some((a.checked_add(b)?, a_scale))
        }
    }
}

/// `int64Amount.AsScaledInt64`: coarser target scales divide, rounding away from zero; finer
/// ones multiply, with upstream's overflow behavior (see [`int64_scale_up`]). Upstream takes
/// the difference of the scales in 32 bits; when that wraps negative its digit loops never run
/// and the value comes back unscaled.
fn int64_scaled(value: i64, own: i32, target: i32) -> i64 {
    if value == 0 {
        return 0;
    }
    if own >= target {
        let up = own.wrapping_sub(target);
        return if up < 0 {
            value
        } else {
            int64_scale_up(value, i64::from(up))
        };
    }
    let down = target.wrapping_sub(own);
    if down < 0 {
        return value;
    }
    let Some(divisor) = pow10_i64(i64::from(down)) else {
        // Every i64 is below 10^19.
        return value.signum();
    };
    let quotient = value / divisor;
    if value % divisor != 0 {
        quotient + value.signum()
    } else {
        quotient
    }
}

/// `positiveScaleInt64` with its overflow flag ignored, as `ScaledValue` does: multiplying by
/// 10, 100, 1000, 10^6 or 10^9 wraps around on overflow (the most negative value gives 0), any
/// other power of ten is applied one digit at a time and gives 0 on overflow.
fn int64_scale_up(value: i64, up: i64) -> i64 {
    let one_step = |factor: i64| {
        if value == 0 || value == 1 {
            value * factor
        } else if value == i64::MIN {
            0
        } else {
            value.wrapping_mul(factor)
        }
    };
    match up {
        0 => value,
        1 => one_step(10),
        2 => one_step(100),
        3 => one_step(1000),
        6 => one_step(1_000_000),
        9 => one_step(1_000_000_000),
        _ => pow10_i64(up)
            .and_then(|scale| value.checked_mul(scale))
            .unwrap_or(0),
    }
}

/// The low 64 bits, as a signed number, of `±magnitude × 10^shift` (truncated if `shift` is
/// negative).
fn wrap64(negative: bool, magnitude: u128, shift: i64) -> i64 {
    let low = if shift >= 0 {
        (magnitude as u64).wrapping_mul(pow10_wrapping(shift as u64))
    } else {
        pow10_u128(-shift).map_or(0, |scale| (magnitude / scale) as u64)
    };
    let low = low as i64;
    if negative { low.wrapping_neg() } else { low }
}

/// 10^exponent modulo 2^64.
fn pow10_wrapping(mut exponent: u64) -> u64 {
    let (mut result, mut base) = (1u64, 10u64);
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = result.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        exponent >>= 1;
    }
    result
}

/// Go's `int64(math.Pow10(n))`: exact up to 10^18; beyond that the float does not fit, and
/// amd64 converts it to the most negative int64.
fn go_pow10(exponent: i64) -> i64 {
    pow10_i64(exponent)
        .filter(|_| exponent <= 18)
        .unwrap_or(i64::MIN)
}

/// Whether `magnitude × 10^shift` is below 2^63-1.
fn below_i64_max(magnitude: u128, shift: i64) -> bool {
    let limit = i64::MAX as u128;
    if shift >= 0 {
        pow10_u128(shift)
            .and_then(|scale| magnitude.checked_mul(scale))
            .is_some_and(|value| value < limit)
    } else {
        pow10_u128(-shift).is_none_or(|scale| magnitude / scale < limit)
    }
}

/// Floor division of `±magnitude × 10^shift` by `10^down`, as the low 64 bits, and whether a
/// remainder was left.
fn floor_div_pow10(negative: bool, magnitude: u128, shift: i64, down: i64) -> (i64, bool) {
    if shift >= down {
        return (wrap64(negative, magnitude, shift - down), false);
    }
    let (quotient, remainder) = match pow10_u128(down - shift) {
        Some(divisor) => (magnitude / divisor, magnitude % divisor),
        None => (0, magnitude),
    };
    match (remainder == 0, negative) {
        (true, _) => (wrap64(negative, quotient, 0), false),
        (false, false) => (wrap64(false, quotient, 0), true),
        // The floor of a negative non-integer is one further from zero.
        (false, true) => (wrap64(true, quotient + 1, 0), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical(text: &str) -> String {
        Quantity::parse(text)
            .unwrap_or_else(|err| panic!("{text}: {err}"))
            .to_canonical_string()
    }

    /// Parse and check the exact value (`mantissa × 10^exponent`) and the format.
    fn check_value(text: &str, mantissa: i128, exponent: i64, format: Format) {
        let quantity = Quantity::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        let (m, e) = normalize(mantissa, exponent).unwrap();
        assert_eq!(
            (quantity.mantissa, quantity.exponent),
            (m, e),
            "value of {text}"
        );
        assert_eq!(quantity.format(), format, "format of {text}");
    }

    // Upstream's TestQuantityParse table: input, value as mantissa × 10^exponent, format.
    const PARSED: &[(&str, i128, i64, Format)] = &[
        ("0", 0, 0, Format::DecimalSI),
        ("0n", 0, 0, Format::DecimalSI),
        ("0u", 0, 0, Format::DecimalSI),
        ("0m", 0, 0, Format::DecimalSI),
        ("0Ki", 0, 0, Format::BinarySI),
        ("0k", 0, 0, Format::DecimalSI),
        ("0Mi", 0, 0, Format::BinarySI),
        ("0M", 0, 0, Format::DecimalSI),
        ("0Gi", 0, 0, Format::BinarySI),
        ("0G", 0, 0, Format::DecimalSI),
        ("0Ti", 0, 0, Format::BinarySI),
        ("0T", 0, 0, Format::DecimalSI),
        ("1", 1, 0, Format::DecimalSI),
        ("1Ki", 1024, 0, Format::BinarySI),
        ("8Ki", 8 * 1024, 0, Format::BinarySI),
        ("7Mi", 7 << 20, 0, Format::BinarySI),
        ("6Gi", 6 << 30, 0, Format::BinarySI),
        ("5Ti", 5 << 40, 0, Format::BinarySI),
        ("4Pi", 4 << 50, 0, Format::BinarySI),
        ("3Ei", 3 << 60, 0, Format::BinarySI),
        ("10Ti", 10 << 40, 0, Format::BinarySI),
        ("100Ti", 100 << 40, 0, Format::BinarySI),
        ("5n", 5, -9, Format::DecimalSI),
        ("4u", 4, -6, Format::DecimalSI),
        ("3m", 3, -3, Format::DecimalSI),
        ("9", 9, 0, Format::DecimalSI),
        ("8k", 8, 3, Format::DecimalSI),
        ("50k", 5, 4, Format::DecimalSI),
        ("7M", 7, 6, Format::DecimalSI),
        ("6G", 6, 9, Format::DecimalSI),
        ("5T", 5, 12, Format::DecimalSI),
        ("40T", 4, 13, Format::DecimalSI),
        ("300T", 3, 14, Format::DecimalSI),
        ("2P", 2, 15, Format::DecimalSI),
        ("1E", 1, 18, Format::DecimalSI),
        ("1E-3", 1, -3, Format::DecimalExponent),
        ("1e3", 1, 3, Format::DecimalExponent),
        ("1E6", 1, 6, Format::DecimalExponent),
        ("1e9", 1, 9, Format::DecimalExponent),
        ("1E12", 1, 12, Format::DecimalExponent),
        ("1e15", 1, 15, Format::DecimalExponent),
        ("1E18", 1, 18, Format::DecimalExponent),
        ("1e14", 1, 14, Format::DecimalExponent),
        ("1e13", 1, 13, Format::DecimalExponent),
        ("100.035k", 100035, 0, Format::DecimalSI),
        ("0.001", 1, -3, Format::DecimalSI),
        ("0.0005k", 5, -1, Format::DecimalSI),
        ("0.005", 5, -3, Format::DecimalSI),
        ("0.05", 5, -2, Format::DecimalSI),
        ("0.5", 5, -1, Format::DecimalSI),
        ("0.00050k", 5, -1, Format::DecimalSI),
        ("0.00500", 5, -3, Format::DecimalSI),
        ("0.05000", 5, -2, Format::DecimalSI),
        ("0.50000", 5, -1, Format::DecimalSI),
        ("0.5e0", 5, -1, Format::DecimalExponent),
        ("0.5e-1", 5, -2, Format::DecimalExponent),
        ("0.5e-2", 5, -3, Format::DecimalExponent),
        ("10.035M", 10035, 3, Format::DecimalSI),
        ("1.2e3", 12, 2, Format::DecimalExponent),
        ("1.3E+6", 13, 5, Format::DecimalExponent),
        ("1.40e9", 14, 8, Format::DecimalExponent),
        ("1.53E12", 153, 10, Format::DecimalExponent),
        ("1.6e15", 16, 14, Format::DecimalExponent),
        ("1.7E18", 17, 17, Format::DecimalExponent),
        ("9.01", 901, -2, Format::DecimalSI),
        ("8.1k", 81, 2, Format::DecimalSI),
        ("7.123456M", 7123456, 0, Format::DecimalSI),
        ("6.987654321G", 6987654321, 0, Format::DecimalSI),
        ("5.444T", 5444, 9, Format::DecimalSI),
        ("40.1T", 401, 11, Format::DecimalSI),
        ("300.2T", 3002, 11, Format::DecimalSI),
        ("2.5P", 25, 14, Format::DecimalSI),
        ("1.01E", 101, 16, Format::DecimalSI),
        // Rounded up to 10^-9, or capped.
        ("3.001n", 4, -9, Format::DecimalSI),
        ("1.1E-9", 2, -9, Format::DecimalExponent),
        ("0.0000000001", 1, -9, Format::DecimalSI),
        ("0.0000000005", 1, -9, Format::DecimalSI),
        ("0.00000000050", 1, -9, Format::DecimalSI),
        ("0.5e-9", 1, -9, Format::DecimalExponent),
        ("0.9n", 1, -9, Format::DecimalSI),
        ("0.00000012345", 124, -9, Format::DecimalSI),
        ("0.00000012354", 124, -9, Format::DecimalSI),
        ("9Ei", i64::MAX as i128, 0, Format::BinarySI),
        (
            "9223372036854775807Ki",
            i64::MAX as i128,
            0,
            Format::BinarySI,
        ),
        ("12E", 12, 18, Format::DecimalSI),
        // Fractional binary values.
        ("100.035Ki", 10243584, -2, Format::BinarySI),
        ("0.5Mi", 512 * 1024, 0, Format::BinarySI),
        ("0.05Gi", 536870912, -1, Format::BinarySI),
        ("0.025Ti", 274877906944, -1, Format::BinarySI),
        // Odd but accepted.
        ("0.000000000001Ki", 2, -9, Format::DecimalSI),
        (".001", 1, -3, Format::DecimalSI),
        (".0001k", 100, -3, Format::DecimalSI),
        ("1.", 1, 0, Format::DecimalSI),
        ("1.G", 1, 9, Format::DecimalSI),
    ];

    #[test]
    fn parses_upstream_table() {
        for &(text, mantissa, exponent, format) in PARSED {
            check_value(text, mantissa, exponent, format);
            // Signs: `+` changes nothing, `-` negates and keeps the format.
            check_value(&format!("+{text}"), mantissa, exponent, format);
            check_value(&format!("-{text}"), -mantissa, exponent, format);
        }
    }

    #[test]
    fn rejects_what_upstream_rejects() {
        let cases = [
            ("", QuantityError::FormatWrong),
            ("1.1.M", QuantityError::FormatWrong),
            ("1+1.0M", QuantityError::FormatWrong),
            ("0.1mi", QuantityError::Suffix),
            ("0.1am", QuantityError::FormatWrong),
            ("aoeu", QuantityError::FormatWrong),
            (".5i", QuantityError::Suffix),
            ("1i", QuantityError::Suffix),
            ("-3.01i", QuantityError::Suffix),
            ("-3.01e-", QuantityError::Suffix),
            (" 1", QuantityError::FormatWrong),
            ("1 ", QuantityError::FormatWrong),
            ("1ki", QuantityError::Suffix),
            ("1KI", QuantityError::FormatWrong),
            ("1e", QuantityError::Suffix),
            ("1e1e1", QuantityError::FormatWrong),
            ("1m3", QuantityError::Suffix),
            ("1-3", QuantityError::Suffix),
            ("1k-", QuantityError::Suffix),
            ("1e99999999999999999999", QuantityError::Suffix),
            ("1µ", QuantityError::FormatWrong),
            ("e-10", QuantityError::Numeric),
            (".e-10", QuantityError::Numeric),
            ("-.e-10", QuantityError::Numeric),
        ];
        for (text, error) in cases {
            assert_eq!(
                Quantity::parse(text).map(|q| q.to_string()),
                Err(error),
                "{text:?}"
            );
        }
    }

    #[test]
    fn errors_print_upstream_messages() {
        assert_eq!(
            QuantityError::FormatWrong.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(
            QuantityError::Numeric.to_string(),
            "unable to parse numeric part of quantity"
        );
        assert_eq!(
            QuantityError::Suffix.to_string(),
            "unable to parse quantity's suffix"
        );
    }

    #[test]
    fn the_scanner_is_more_lenient_than_its_regular_expression() {
        for text in [".", "-.", "+", "-", "e3", "Ki", "m", "00", "-0", ".n"] {
            let quantity = Quantity::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
            assert!(quantity.is_zero(), "{text}");
            assert_eq!(quantity.to_string(), "0");
        }
    }

    // Upstream's TestQuantityString: a value and format, its canonical text, and another
    // spelling of it that must come out canonical too.
    #[test]
    fn canonical_strings_match_upstream() {
        let cases: &[(i128, i64, Format, &str, &str)] = &[
            (1 << 30, 0, Format::BinarySI, "1Gi", "1024Mi"),
            (300 << 20, 0, Format::BinarySI, "300Mi", "307200Ki"),
            (6 * 1024, 0, Format::BinarySI, "6Ki", ""),
            (1001 << 30, 0, Format::BinarySI, "1001Gi", "1025024Mi"),
            (1 << 40, 0, Format::BinarySI, "1Ti", "1024Gi"),
            (5, 0, Format::BinarySI, "5", "5000m"),
            (500, -3, Format::BinarySI, "500m", "0.5"),
            (1, 9, Format::DecimalSI, "1G", "1000M"),
            (1000, 6, Format::DecimalSI, "1G", "0.001T"),
            (1000000, 3, Format::DecimalSI, "1G", ""),
            (1000000000, 0, Format::DecimalSI, "1G", ""),
            (1, -3, Format::DecimalSI, "1m", "1000u"),
            (80, -3, Format::DecimalSI, "80m", ""),
            (1080, -3, Format::DecimalSI, "1080m", "1.08"),
            (108, -2, Format::DecimalSI, "1080m", "1080000000n"),
            (10800, -4, Format::DecimalSI, "1080m", ""),
            (300, 6, Format::DecimalSI, "300M", ""),
            (1, 12, Format::DecimalSI, "1T", ""),
            (1234567, 6, Format::DecimalSI, "1234567M", ""),
            (1234567, -3, Format::BinarySI, "1234567m", ""),
            (3, 3, Format::DecimalSI, "3k", ""),
            (1025, 0, Format::BinarySI, "1025", ""),
            (0, 0, Format::DecimalSI, "0", ""),
            (0, 0, Format::BinarySI, "0", ""),
            (1, 9, Format::DecimalExponent, "1e9", ".001e12"),
            (1, -3, Format::DecimalExponent, "1e-3", "0.001e0"),
            (1, -9, Format::DecimalExponent, "1e-9", "1000e-12"),
            (80, -3, Format::DecimalExponent, "80e-3", ""),
            (300, 6, Format::DecimalExponent, "300e6", ""),
            (1, 12, Format::DecimalExponent, "1e12", ""),
            (1, 3, Format::DecimalExponent, "1e3", ""),
            (3, 3, Format::DecimalExponent, "3e3", ""),
            (0, 0, Format::DecimalExponent, "0", "00"),
            (1, -9, Format::DecimalSI, "1n", ""),
            (80, -9, Format::DecimalSI, "80n", ""),
            (1080, -9, Format::DecimalSI, "1080n", ""),
            (108, -8, Format::DecimalSI, "1080n", ""),
            (10800, -10, Format::DecimalSI, "1080n", ""),
            (1, -6, Format::DecimalSI, "1u", ""),
            (80, -6, Format::DecimalSI, "80u", ""),
            (1080, -6, Format::DecimalSI, "1080u", ""),
        ];
        for &(mantissa, exponent, format, expected, alternate) in cases {
            let (m, e) = normalize(mantissa, exponent).unwrap();
            let built = Quantity {
                mantissa: m,
                exponent: e,
                format,
                ..Quantity::zero()
            };
            assert_eq!(built.to_canonical_string(), expected);
            if m != 0 {
                let negated = Quantity {
                    mantissa: -m,
                    ..built.clone()
                };
                assert_eq!(negated.to_canonical_string(), format!("-{expected}"));
            }
            // Parsing the canonical text keeps it verbatim.
            let parsed = Quantity::parse(expected).unwrap();
            assert_eq!(parsed.cached.as_deref(), Some(expected), "{expected} kept");
            assert_eq!(parsed, built);
            if !alternate.is_empty() {
                let other = Quantity::parse(alternate).unwrap();
                assert_eq!(other.cached, None, "{alternate} not kept");
                assert_eq!(other.to_canonical_string(), expected, "{alternate}");
            }
        }
    }

    #[test]
    fn parse_then_emit_matches_upstream() {
        // Upstream's TestQuantityParseEmit, plus cases from its documentation and behavior.
        let cases = [
            ("1Ki", "1Ki"),
            ("1Mi", "1Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1000M", "1G"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("1.5", "1500m"),
            ("1.5Gi", "1536Mi"),
            ("1000m", "1"),
            ("0.5", "500m"),
            ("1e3", "1e3"),
            ("1.0", "1"),
            ("100m", "100m"),
            ("0.1", "100m"),
            ("250m", "250m"),
            ("2000m", "2"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("123Mi", "123Mi"),
            ("1.5Ki", "1536"),
            ("0.5Ki", "512"),
            ("1.0001Ki", "1024102400u"),
            ("1.1Ki", "1126400m"),
            ("8Ki", "8Ki"),
            ("1025Ki", "1025Ki"),
            ("1048576", "1048576"),
            ("9Ei", "9223372036854775807"),
            ("-9Ei", "-9223372036854775807"),
            ("16Ei", "9223372036854775807"),
            ("1e1", "10"),
            ("15e2", "1500"),
            ("1000e3", "1e6"),
            ("10e3", "10e3"),
            ("1.5e3", "1500"),
            ("1.5e-3", "1500e-6"),
            ("1e-10", "1e-9"),
            ("1n", "1n"),
            ("0.1n", "1n"),
            ("1.5n", "2n"),
            ("-1.5n", "-2n"),
            ("12E", "12E"),
            ("1.01E", "1010P"),
            // Upstream has no suffix above E and writes none.
            ("1000E", "1"),
            ("10000E", "10"),
            ("1234E", "1234E"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            ("1234567890123456789k", "1234567890123456789k"),
            ("12345678901234567890k", "12345678901234567890k"),
            ("0.1234567890123456789", "123456790n"),
            ("1e99", "1e99"),
            ("1e100", "10e99"),
            // The exponent is narrowed to 32 bits: 2^32 + 1 becomes 1.
            ("1e4294967296", "1e4294967296"),
            ("1e4294967297", "10"),
            ("1.5e-2147483648", "150e2147483646"),
            ("10e2147483647", "10e2147483647"),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical(input), expected, "{input}");
            // What is written back reads back as itself.
            assert_eq!(canonical(expected), expected, "{expected} again");
            if !input.starts_with('-') && expected != "0" {
                assert_eq!(
                    canonical(&format!("-{input}")),
                    format!("-{expected}"),
                    "-{input}"
                );
            }
        }
    }

    #[test]
    fn canonical_input_is_kept_verbatim() {
        // Upstream keeps the text of a short decimal number whose scale is a multiple of three
        // and that neither ends in 000 nor starts with a zero digit after leading zeros are
        // dropped, and of a binary number not divisible by 8.
        for text in [
            "0", "01", "007", "+1", "-1", "1.500", "1.234k", "1E3", "1e+3", "1e03", "+1Ki", "01Ki",
            "9Ki", "1e-3",
        ] {
            assert_eq!(canonical(text), text);
        }
        for (text, expected) in [
            ("00", "0"),
            ("-0", "0"),
            ("0.0", "0"),
            ("-0.001k", "-1"),
            ("0m", "0"),
            ("0.5", "500m"),
            ("1.000", "1"),
            ("1000", "1k"),
            ("8Ki", "8Ki"),
            ("+8Ki", "8Ki"),
            ("1024Ki", "1Mi"),
            ("1.5k", "1500"),
        ] {
            assert_eq!(canonical(text), expected, "{text}");
        }
    }

    #[test]
    fn values_too_large_are_rejected() {
        let forty_digits = "1234567890123456789012345678901234567891";
        assert_eq!(
            Quantity::parse(forty_digits).map(|q| q.to_string()),
            Err(QuantityError::OutOfRange)
        );
        // Trailing zeros and rounding keep a number small enough.
        assert_eq!(canonical(&format!("1{}e0", "0".repeat(60))), "1e60");
        assert_eq!(canonical(&format!("0.{}1", "0".repeat(500))), "1n");
        // Narrowed to 32 bits, i64::MAX is -1.
        assert_eq!(canonical(&format!("1e{}", i64::MAX)), "100e-3");
    }

    #[test]
    fn compares_by_value() {
        let cases = [
            ("0", "0", Ordering::Equal),
            ("100m", "50m", Ordering::Greater),
            ("50m", "100m", Ordering::Less),
            ("10000T", "100Gi", Ordering::Greater),
            ("1k", "1000", Ordering::Equal),
            ("1e3", "1k", Ordering::Equal),
            ("1Ki", "1024", Ordering::Equal),
            ("-1", "1m", Ordering::Less),
            ("-1", "-2", Ordering::Greater),
            ("-0.5", "0", Ordering::Less),
            ("1n", "0", Ordering::Greater),
            ("9.01", "9.010", Ordering::Equal),
            ("90", "901e-1", Ordering::Less),
            ("1e30", "999999999999999999999999999999", Ordering::Greater),
            ("1e100", "1e99", Ordering::Greater),
            ("-1e100", "-1e99", Ordering::Less),
            (
                "123456789012345678901234567890123456",
                "1234567890123456789012345678901234567e-1",
                Ordering::Less,
            ),
        ];
        for (a, b, expected) in cases {
            let (x, y) = (Quantity::parse(a).unwrap(), Quantity::parse(b).unwrap());
            assert_eq!(x.cmp(&y), expected, "{a} vs {b}");
            assert_eq!(y.cmp(&x), expected.reverse(), "{b} vs {a}");
            assert_eq!(x == y, expected == Ordering::Equal);
        }
    }

    #[test]
    fn sign_and_zero() {
        assert!(Quantity::parse("0Ki").unwrap().is_zero());
        assert_eq!(Quantity::parse("-1m").unwrap().sign(), -1);
        assert_eq!(Quantity::parse("-0").unwrap().sign(), 0);
        assert_eq!(Quantity::parse("+1n").unwrap().sign(), 1);
        assert!(Quantity::parse("-1m").unwrap().is_negative());
        assert!(!Quantity::zero().is_negative());
    }

    #[test]
    fn adds_and_subtracts_exactly() {
        let q = |text: &str| Quantity::parse(text).unwrap();
        // Upstream's TestAdd and TestSub.
        assert_eq!(q("10").checked_add(&q("1e1")).unwrap(), q("20"));
        let sum = q("10").checked_add(&q("1Ki")).unwrap();
        assert_eq!(
            (sum.to_string(), sum.format()),
            ("1034".to_owned(), Format::DecimalSI)
        );
        let sum = q("10Ki").checked_add(&q("1")).unwrap();
        assert_eq!(
            (sum.to_string(), sum.format()),
            ("10241".to_owned(), Format::BinarySI)
        );
        assert_eq!(q("10").checked_sub(&q("1e1")).unwrap(), q("0"));
        assert_eq!(q("0").checked_sub(&q("50")).unwrap().to_string(), "-50");
        // A zero left operand takes the other's format; the kept text is dropped.
        for text in ["100m", "1Gi"] {
            assert_eq!(q(text).checked_add(&q("0")).unwrap().to_string(), text);
            assert_eq!(q("0").checked_add(&q(text)).unwrap().to_string(), text);
            assert_eq!(q(text).checked_sub(&q("0")).unwrap().to_string(), text);
            assert_eq!(
                q("0").checked_sub(&q(text)).unwrap().to_string(),
                format!("-{text}")
            );
        }
        assert_eq!(q("01").checked_add(&q("0")).unwrap().to_string(), "1");
        assert_eq!(
            q("1.5Gi").checked_sub(&q("512Mi")).unwrap().to_string(),
            "1Gi"
        );
        assert_eq!(
            q("100m").checked_add(&q("1n")).unwrap().to_string(),
            "100000001n"
        );
        assert_eq!(q("1e37").checked_add(&q("1n")), None);
        let big = q("99999999999999999999999999999999999999");
        // 10^38 as decimal SI: no suffix for 10^36, as upstream.
        assert_eq!(big.checked_add(&q("1")).unwrap().to_string(), "100");
        assert_eq!(big.checked_add(&q("2")), None);
    }

    #[test]
    fn scaled_values_follow_upstream() {
        let q = |text: &str| Quantity::parse(text).unwrap();
        assert_eq!(q("1").milli_value(), 1000);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("1.5").value(), 2);
        assert_eq!(q("-1.5").value(), -2);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("-1n").milli_value(), -1);
        assert_eq!(q("1Gi").milli_value(), 1_073_741_824_000);
        assert_eq!(q("1.5Gi").value(), 1_610_612_736);
        assert_eq!(q("1.5Gi").milli_value(), 1_610_612_736_000);
        assert_eq!(q("1.5Gi").scaled_value(-9), 1_610_612_736_000_000_000);
        // Upstream's TestScaledValue.
        for (from, to, expected) in [
            (-9, -9, 1),
            (-9, -6, 1),
            (-9, -3, 1),
            (-9, 0, 1),
            (-6, -9, 1000),
            (-6, -6, 1),
            (-6, -3, 1),
            (-6, 0, 1),
            (-3, -9, 1_000_000),
            (-3, -6, 1000),
            (-3, -3, 1),
            (-3, 0, 1),
            (0, -9, 1_000_000_000),
            (0, -6, 1_000_000),
            (0, -3, 1000),
            (0, 0, 1),
            (2, -2, 10_000),
        ] {
            assert_eq!(Quantity::new_scaled(1, from).scaled_value(to), expected);
        }
        // Overflow: an int64Amount gives 0, an inf.Dec wraps around.
        assert_eq!(q("1E").milli_value(), 0);
        assert_eq!(
            q("10Pi").milli_value(),
            11_258_999_068_426_240_000u64 as i64
        );
        assert_eq!(q("9Ei").milli_value(), i64::MAX.wrapping_mul(1000));
        // An int64Amount rounds away from zero; an inf.Dec truncates toward zero, then adds one
        // for a remainder.
        assert_eq!(q("-0.0015").milli_value(), -2);
        assert_eq!(q("-0.00150000000000000000").milli_value(), 0);
        assert_eq!(q("-1.5n").milli_value(), 1);
    }

    #[test]
    fn constructors_match_upstream() {
        // Upstream's TestNewSet, TestMilliNewSet and TestNewScaledSet.
        assert_eq!(Quantity::new(1, Format::DecimalSI).to_string(), "1");
        assert_eq!(Quantity::new(1000, Format::DecimalSI).to_string(), "1k");
        assert_eq!(
            Quantity::new(1234000, Format::DecimalSI).to_string(),
            "1234k"
        );
        assert_eq!(Quantity::new(1024, Format::BinarySI).to_string(), "1Ki");
        assert_eq!(Quantity::new(1 << 20, Format::BinarySI).to_string(), "1Mi");
        assert_eq!(
            Quantity::new(1000000, Format::DecimalExponent).to_string(),
            "1e6"
        );
        assert_eq!(Quantity::new_milli(1, Format::DecimalSI).to_string(), "1m");
        assert_eq!(
            Quantity::new_milli(1000, Format::DecimalSI).to_string(),
            "1"
        );
        assert_eq!(
            Quantity::new_milli(1234000, Format::DecimalSI).to_string(),
            "1234"
        );
        assert_eq!(
            Quantity::new_milli(1024, Format::BinarySI).to_string(),
            "1024m"
        );
        assert_eq!(
            Quantity::new_milli(1 << 20, Format::BinarySI).to_string(),
            "1048576m"
        );
        assert_eq!(
            Quantity::new_milli(1000000, Format::DecimalExponent).to_string(),
            "1e3"
        );
        for (value, scale, expected) in [
            (1, -9, "1n"),
            (1000, -9, "1u"),
            (1, -6, "1u"),
            (1000, -6, "1m"),
            (1, -3, "1m"),
            (1000, -3, "1"),
            (1, 0, "1"),
            (0, -9, "0"),
            (0, 0, "0"),
        ] {
            let quantity = Quantity::new_scaled(value, scale);
            assert_eq!(quantity.to_string(), expected);
            assert_eq!(
                Quantity::parse(expected).unwrap().scaled_value(scale),
                value
            );
        }
    }

    #[test]
    fn json_decoding_follows_unmarshal_json() {
        // Upstream's TestJSONWhitespace, on raw text and on serde_json values.
        for (raw, expected) in [
            (r#"" 1""#, "1"),
            (r#""1 ""#, "1"),
            ("1", "1"),
            (" 1", "1"),
            ("1 ", "1"),
            ("10", "10"),
            ("-1", "-1"),
            (" -1", "-1"),
            ("null", "0"),
            (r#""1.5Gi""#, "1536Mi"),
        ] {
            assert_eq!(
                Quantity::from_json_text(raw).unwrap().to_string(),
                expected,
                "{raw}"
            );
            let value: Value = serde_json::from_str(raw).unwrap();
            assert_eq!(
                Quantity::from_json(&value).unwrap().to_string(),
                expected,
                "{raw}"
            );
        }
        for raw in [
            r#""1\n""#, r#""\t1""#, "true", "[]", "{}", r#""""#, r#""a""#,
        ] {
            assert_eq!(
                Quantity::from_json_text(raw).map(|q| q.to_string()),
                Err(QuantityError::FormatWrong),
                "{raw}"
            );
            let value: Value = serde_json::from_str(raw).unwrap();
            assert_eq!(
                Quantity::from_json(&value).map(|q| q.to_string()),
                Err(QuantityError::FormatWrong),
                "{raw}"
            );
        }
        // Numbers are read from their text; serde_json renders decoded floats its own way.
        assert_eq!(
            Quantity::from_json(&json!(1.5)).unwrap().to_string(),
            "1500m"
        );
        assert_eq!(Quantity::from_json(&json!(1000)).unwrap().to_string(), "1k");
        assert_eq!(Quantity::from_json_text("1e3").unwrap().to_string(), "1e3");
        assert_eq!(Quantity::from_json(&json!(-0.0)).unwrap().to_string(), "0");
        // Non-breaking and other Unicode spaces are trimmed like Go's TrimSpace.
        assert_eq!(
            Quantity::from_json(&json!("\u{a0}2\u{3000}"))
                .unwrap()
                .to_string(),
            "2"
        );
    }

    #[test]
    fn go_repr_matches_percent_hash_v() {
        let q = |text: &str| Quantity::parse(text).unwrap();
        assert_eq!(
            q("1.5").go_repr(),
            r#"resource.Quantity{i:resource.int64Amount{value:15, scale:-1}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:"", Format:"DecimalSI"}"#
        );
        assert_eq!(
            q("1500m").go_repr(),
            r#"resource.Quantity{i:resource.int64Amount{value:1500, scale:-3}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:"1500m", Format:"DecimalSI"}"#
        );
        assert_eq!(
            q("8Ki").go_repr(),
            r#"resource.Quantity{i:resource.int64Amount{value:8192, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:"", Format:"BinarySI"}"#
        );
        assert_eq!(
            q("1.5Gi").go_repr(),
            format!(
                r#"resource.Quantity{{i:resource.int64Amount{{value:0, scale:0}}, d:resource.infDecAmount{{Dec:(*inf.Dec)({GO_DEC_POINTER})}}, s:"", Format:"BinarySI"}}"#
            )
        );
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let long = "9".repeat(100_000);
        for text in [
            long.as_str(),
            &format!("0.{long}"),
            &format!("{long}Ei"),
            &format!("0.{long}Ki"),
            &format!("-{long}e-2147483648"),
            &format!("1e{}", i64::MIN),
            "9223372036854775807Ei",
            "-9223372036854775808",
            "99999999999999999999999999999999999999e2147483647",
        ] {
            if let Ok(quantity) = Quantity::parse(text) {
                let _ = (
                    quantity.to_string(),
                    quantity.go_repr(),
                    quantity.milli_value(),
                );
                let _ = quantity.checked_add(&quantity);
                let _ = quantity.cmp(&Quantity::zero());
            }
        }
    }
}
