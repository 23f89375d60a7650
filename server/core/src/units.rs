//! Units of measure: the part of UCUM laboratory reports use, the spellings laboratories really
//! write, and conversions (including mass ↔ substance through a molar mass).
//!
//! Why our own implementation: the UCUM crates on crates.io either pull a large runtime
//! (full UCUM essence XML) or do not expose conversion factors exactly enough for us to keep
//! power-of-ten conversions exact. Laboratory units are a small, closed set; every atom and
//! prefix here is listed and tested, and anything else is refused, never guessed.
//!
//! Exactness: a unit's factor is `mantissa × 10^exponent`. When two units differ only by a power
//! of ten (mg/L → g/L, µmol/L → mmol/L, 10*9/L → /mm3), the conversion shifts the decimal point of
//! the laboratory's literal: no binary rounding can change a digit.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cda::Decimal;

/// Exponents of the base dimensions: mass (g), length (m), time (s), amount (mol),
/// international units ([IU]), arbitrary units ([arb'U] and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dimension([i8; 6]);

const MASS: usize = 0;
const LENGTH: usize = 1;
const TIME: usize = 2;
const AMOUNT: usize = 3;
const IU: usize = 4;
const ARBITRARY: usize = 5;

impl Dimension {
    fn base(index: usize) -> Dimension {
        let mut d = [0; 6];
        d[index] = 1;
        Dimension(d)
    }

    fn combine(self, other: Dimension, sign: i8) -> Dimension {
        let mut d = self.0;
        for (a, b) in d.iter_mut().zip(other.0) {
            *a += sign * b;
        }
        Dimension(d)
    }

    fn pow(self, n: i8) -> Dimension {
        Dimension(self.0.map(|e| e * n))
    }

    pub fn is_dimensionless(self) -> bool {
        self.0 == [0; 6]
    }
}

/// A parsed unit: `value × mantissa × 10^exponent` is the value in base units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    mantissa: f64,
    exponent: i32,
    dimension: Dimension,
    /// Units on a non-ratio scale ([pH]) convert only to themselves.
    special: bool,
}

impl Unit {
    const ONE: Unit = Unit { mantissa: 1.0, exponent: 0, dimension: Dimension([0; 6]), special: false };

    fn times(self, other: Unit, sign: i8) -> Unit {
        Unit {
            mantissa: if sign > 0 { self.mantissa * other.mantissa } else { self.mantissa / other.mantissa },
            exponent: self.exponent + i32::from(sign) * other.exponent,
            dimension: self.dimension.combine(other.dimension, sign),
            special: self.special || other.special,
        }
    }

    fn pow(self, n: i8) -> Unit {
        Unit {
            mantissa: self.mantissa.powi(i32::from(n)),
            exponent: self.exponent * i32::from(n),
            dimension: self.dimension.pow(n),
            special: self.special,
        }
    }

    pub fn dimension(&self) -> Dimension {
        self.dimension
    }
}

/// Why a unit or a conversion is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum UnitError {
    #[error("unknown unit {0:?}")]
    Unknown(String),
    #[error("no unit given")]
    Missing,
    #[error("{from:?} and {to:?} measure different things")]
    Incompatible { from: String, to: String },
    #[error("converting {from:?} to {to:?} needs a molar mass, and none is known for this analyte")]
    NeedsMolarMass { from: String, to: String },
    #[error("{0:?} is on a scale that converts to nothing else")]
    NotRatioScale(String),
    #[error("the number {0:?} is not a valid decimal")]
    BadNumber(String),
}

/// How a value was converted (part of the JSON contract: say what was done, always).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Same unit, same spelling: the value as written.
    Identity,
    /// The same unit spelled the laboratory's way (`G/L` for `10*9/L`, `µmol/L`): the value as
    /// written, the unit in UCUM.
    Alias,
    /// A power of ten: the decimal point moved, digits untouched.
    DecimalShift,
    /// A unit factor (e.g. mm[Hg] → kPa).
    Factor,
    /// Through the molar mass (g/mol) given.
    MolarMass,
    /// HbA1c between NGSP % and IFCC mmol/mol (master equation).
    HbA1cMasterEquation,
    /// mEq/L read as mmol/L for a monovalent ion.
    MonovalentEquivalent,
    /// "International unit" of an enzyme activity (`[IU]`, `UI`), which is the enzyme unit U
    /// (µmol/min), not the WHO international unit UCUM's `[IU]` means.
    EnzymeInternationalUnit,
}

/// A converted value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Converted {
    /// The value in the target unit. Exact when `rule` is identity or decimal shift.
    pub value: Decimal,
    pub unit: String,
    pub rule: Rule,
}

/// Spellings laboratories write that are not UCUM (or mean something else in UCUM), mapped to
/// UCUM. Checked before parsing; whole-unit matches only.
const ALIASES: &[(&str, &str)] = &[
    // In UCUM `G` is the gauss and `T` the tesla; French haematology means giga/tera per litre.
    ("G/L", "10*9/L"),
    ("G/l", "10*9/L"),
    ("T/L", "10*12/L"),
    ("T/l", "10*12/L"),
    ("Giga/L", "10*9/L"),
    ("Téra/L", "10*12/L"),
    ("10^9/L", "10*9/L"),
    ("10^12/L", "10*12/L"),
    ("10E9/L", "10*9/L"),
    ("10E12/L", "10*12/L"),
    ("x10^9/L", "10*9/L"),
    ("x10^12/L", "10*12/L"),
    ("/mm3", "/mm3"),
    ("UI/L", "[IU]/L"),
    ("UI/l", "[IU]/L"),
    ("mUI/L", "m[IU]/L"),
    ("mUI/l", "m[IU]/L"),
    ("µUI/mL", "u[IU]/mL"),
    ("µUI/ml", "u[IU]/mL"),
    ("uUI/mL", "u[IU]/mL"),
    ("UI/mL", "[IU]/mL"),
    ("UI/ml", "[IU]/mL"),
    ("mUI/mL", "m[IU]/mL"),
    ("mUI/ml", "m[IU]/mL"),
    ("UI/dL", "[IU]/dL"),
    ("mm Hg", "mm[Hg]"),
    ("mmHg", "mm[Hg]"),
    ("‰", "[ppth]"),
    ("sec", "s"),
    ("secondes", "s"),
    ("mn", "min"),
    ("mL/min/1.73m2", "mL/min/{1.73_m2}"),
    ("mL/min/1,73m2", "mL/min/{1.73_m2}"),
    ("ml/min/1.73m2", "mL/min/{1.73_m2}"),
    ("ml/min/1,73m2", "mL/min/{1.73_m2}"),
    ("mL/min/1.73 m2", "mL/min/{1.73_m2}"),
    ("mm/1h", "mm/h"),
    ("mm/1ère h", "mm/h"),
    ("ratio", "{ratio}"),
];

/// UCUM spelling of what a laboratory wrote: explicit aliases, then `µ` → `u`. Case is kept
/// (UCUM is case-sensitive; `l` and `L` are both the litre there).
/// A catalogue (UCUM) unit as a reader expects it printed: `µmol/L` for `umol/L`, `10⁹/L` for
/// `10*9/L`, `mUI/L` (French) or `mIU/L` for `m[IU]/L`, `mmHg`, `mL/min/1,73 m²`; nothing for
/// dimensionless units (`1`, `{ratio}`, `[pH]`). For display only: data, exports and the JSON
/// keep UCUM, and units as a laboratory wrote them are shown as written, never through this.
pub fn display_unit(ucum: &str, french: bool) -> String {
    let ucum = ucum.trim();
    if matches!(ucum, "" | "1" | "{ratio}" | "[pH]") {
        return String::new();
    }
    let mut out = String::with_capacity(ucum.len() + 4);
    let mut rest = ucum;
    let mut atom_start = true;
    while let Some(c) = rest.chars().next() {
        if let Some(annotation) = rest.strip_prefix('{') {
            // `{1.73_m2}` says per 1.73 m² of body surface; other annotations only name what is
            // counted and are left out.
            let end = annotation.find('}').map_or(annotation.len(), |i| i + 1);
            if &annotation[..end] == "1.73_m2}" {
                out.push_str(if french { "1,73 m²" } else { "1.73 m²" });
            }
            rest = annotation.get(end..).unwrap_or("");
            atom_start = false;
            continue;
        }
        if let Some(after) = rest.strip_prefix("[IU]") {
            out.push_str(if french { "UI" } else { "IU" });
            rest = after;
            atom_start = false;
            continue;
        }
        if let Some(after) = rest.strip_prefix("[Hg]") {
            out.push_str("Hg");
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix("(24.h)") {
            out.push_str("24 h");
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix("10*").or_else(|| rest.strip_prefix("10^")) {
            let digits = after.find(|c: char| !(c.is_ascii_digit() || c == '-')).unwrap_or(after.len());
            if digits > 0 {
                out.push_str("10");
                out.extend(after[..digits].chars().map(superscript));
                rest = &after[digits..];
                atom_start = false;
                continue;
            }
        }
        if atom_start && let Some(after) = rest.strip_prefix("mosm") {
            out.push_str("mOsm");
            rest = after;
            atom_start = false;
            continue;
        }
        // UCUM's micro prefix is `u`, at the start of a unit atom before a letter or `[`.
        if atom_start && c == 'u' && rest[1..].starts_with(|n: char| n.is_ascii_alphabetic() || n == '[') {
            out.push('µ');
        } else {
            out.push(c);
        }
        atom_start = matches!(c, '/' | '.' | '(');
        rest = &rest[c.len_utf8()..];
    }
    out.trim_end_matches('/').to_string()
}

fn superscript(c: char) -> char {
    match c {
        '0' => '⁰',
        '1' => '¹',
        '2' => '²',
        '3' => '³',
        '4' => '⁴',
        '5' => '⁵',
        '6' => '⁶',
        '7' => '⁷',
        '8' => '⁸',
        '9' => '⁹',
        '-' => '⁻',
        other => other,
    }
}

pub fn canonical_spelling(unit: &str) -> String {
    let trimmed = unit.trim();
    if let Some((_, ucum)) = ALIASES.iter().find(|(alias, _)| *alias == trimmed) {
        return (*ucum).to_string();
    }
    trimmed.replace(['µ', 'μ'], "u")
}

/// Whether a spelling was changed by the alias table or the micro sign (for the JSON `rule`).
pub fn is_alias(unit: &str) -> bool {
    canonical_spelling(unit) != unit.trim()
}

fn prefix(p: &str) -> Option<i32> {
    Some(match p {
        "" => 0,
        "da" => 1,
        "h" => 2,
        "k" => 3,
        "M" => 6,
        "G" => 9,
        "d" => -1,
        "c" => -2,
        "m" => -3,
        "u" => -6,
        "n" => -9,
        "p" => -12,
        "f" => -15,
        "a" => -18,
        _ => return None,
    })
}

/// Atoms: name, mantissa, exponent, dimension, whether a metric prefix may precede it.
fn atom(name: &str) -> Option<(Unit, bool)> {
    let u = |mantissa: f64, exponent: i32, dimension: Dimension| Unit { mantissa, exponent, dimension, special: false };
    let length3 = Dimension::base(LENGTH).pow(3);
    Some(match name {
        "g" => (u(1.0, 0, Dimension::base(MASS)), true),
        "m" => (u(1.0, 0, Dimension::base(LENGTH)), true),
        "s" => (u(1.0, 0, Dimension::base(TIME)), true),
        "mol" => (u(1.0, 0, Dimension::base(AMOUNT)), true),
        // Osmole: an amount of osmotically active particles.
        "osm" => (u(1.0, 0, Dimension::base(AMOUNT)), true),
        "L" | "l" => (u(1.0, -3, length3), true),
        "min" => (u(6.0, 1, Dimension::base(TIME)), false),
        "h" => (u(3.6, 3, Dimension::base(TIME)), false),
        "d" => (u(8.64, 4, Dimension::base(TIME)), false),
        "[IU]" | "[iU]" => (u(1.0, 0, Dimension::base(IU)), true),
        "[arb'U]" | "[HPF]" | "[LPF]" | "{cells}" => (u(1.0, 0, Dimension::base(ARBITRARY)), true),
        // Enzyme unit: µmol/min; katal: mol/s.
        "U" => (u(1.0 / 6.0, -7, Dimension::base(AMOUNT).combine(Dimension::base(TIME), -1)), true),
        "kat" => (u(1.0, 0, Dimension::base(AMOUNT).combine(Dimension::base(TIME), -1)), true),
        "%" => (u(1.0, -2, Dimension::default()), false),
        "[ppth]" => (u(1.0, -3, Dimension::default()), false),
        "[ppm]" => (u(1.0, -6, Dimension::default()), false),
        // Pascal = kg/(m.s2) = 10^3 g/(m.s2).
        "Pa" => (u(1.0, 3, Dimension::base(MASS).combine(Dimension::base(LENGTH), -1).combine(Dimension::base(TIME).pow(2), -1)), true),
        // mm[Hg] is parsed as prefix m + atom m[Hg]: 1 m[Hg] = 133.322387415 kPa.
        "m[Hg]" => (
            u(1.333_223_874_15, 8, Dimension::base(MASS).combine(Dimension::base(LENGTH), -1).combine(Dimension::base(TIME).pow(2), -1)),
            true,
        ),
        "[pH]" => (Unit { special: true, ..Unit::ONE }, false),
        _ => return None,
    })
}

/// Parses a UCUM unit expression (after aliases): products `.`, quotients `/`, parentheses,
/// integer exponents, `10*N` / `10^N` factors, plain integer factors and `{annotations}`.
pub fn parse_unit(unit: &str) -> Result<Unit, UnitError> {
    let canonical = canonical_spelling(unit);
    if canonical.is_empty() {
        return Err(UnitError::Missing);
    }
    let unknown = || UnitError::Unknown(unit.chars().take(40).collect());
    let mut parser = Parser { s: canonical.as_bytes(), pos: 0, depth: 0 };
    let parsed = parser.term().ok_or_else(unknown)?;
    if parser.pos != parser.s.len() {
        return Err(unknown());
    }
    Ok(parsed)
}

struct Parser<'s> {
    s: &'s [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn term(&mut self) -> Option<Unit> {
        let mut result = if self.peek() == Some(b'/') { Unit::ONE } else { self.component()? };
        while let Some(op) = self.peek() {
            let sign = match op {
                b'.' => 1,
                b'/' => -1,
                _ => break,
            };
            self.pos += 1;
            result = result.times(self.component()?, sign);
        }
        Some(result)
    }

    fn component(&mut self) -> Option<Unit> {
        match self.peek()? {
            b'(' => {
                self.depth += 1;
                if self.depth > 8 {
                    return None;
                }
                self.pos += 1;
                let inner = self.term()?;
                if self.peek() != Some(b')') {
                    return None;
                }
                self.pos += 1;
                self.depth -= 1;
                Some(inner)
            }
            b'{' => {
                let end = self.s[self.pos..].iter().position(|&b| b == b'}')?;
                self.pos += end + 1;
                Some(Unit::ONE)
            }
            _ => {
                let start = self.pos;
                while let Some(b) = self.peek() {
                    if matches!(b, b'.' | b'/' | b'(' | b')') {
                        break;
                    }
                    // Brackets may contain anything but are part of the atom ([arb'U]).
                    if b == b'[' {
                        let end = self.s[self.pos..].iter().position(|&c| c == b']')?;
                        self.pos += end + 1;
                        continue;
                    }
                    if b == b'{' {
                        let end = self.s[self.pos..].iter().position(|&c| c == b'}')?;
                        self.pos += end + 1;
                        continue;
                    }
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).ok()?;
                simple_unit(text)
            }
        }
    }
}

/// One symbol with optional prefix and exponent: `mg`, `m2`, `10*9`, `1`, `24`, `u[IU]`.
fn simple_unit(text: &str) -> Option<Unit> {
    if text.is_empty() {
        return None;
    }
    // Annotations attached to a symbol (`mL{urine}`) are ignored, as UCUM says.
    let text = match text.find('{') {
        Some(i) if text.ends_with('}') => &text[..i],
        _ => text,
    };
    if text.is_empty() {
        return Some(Unit::ONE);
    }
    for power_sign in ["10*", "10^"] {
        if let Some(exp) = text.strip_prefix(power_sign) {
            let (negative, digits) = match exp.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, exp.strip_prefix('+').unwrap_or(exp)),
            };
            if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let e: i32 = digits.parse().ok()?;
            return Some(Unit { exponent: if negative { -e } else { e }, ..Unit::ONE });
        }
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        if text.len() > 6 {
            return None;
        }
        let n: f64 = text.parse().ok()?;
        return (n > 0.0).then_some(Unit { mantissa: n, ..Unit::ONE });
    }
    // Trailing exponent (`m2`, `s-1`), unless the symbol ends in a bracket.
    let digits_start =
        text.char_indices().rev().take_while(|(_, c)| c.is_ascii_digit() || *c == '-' || *c == '+').last().map_or(text.len(), |(i, _)| i);
    let (symbol, exponent) = if digits_start < text.len() && digits_start > 0 {
        let e: i8 = text[digits_start..].parse().ok()?;
        (&text[..digits_start], e)
    } else {
        (text, 1)
    };
    let base = match atom(symbol) {
        Some((unit, _)) => unit,
        None => {
            // Longest prefix first (`da` before `d`).
            let (p, rest) = ["da", "h", "k", "M", "G", "d", "c", "m", "u", "n", "p", "f", "a"]
                .iter()
                .filter_map(|p| symbol.strip_prefix(p).map(|rest| (*p, rest)))
                .find(|(_, rest)| atom(rest).is_some_and(|(_, metric)| metric))?;
            let (unit, _) = atom(rest)?;
            Unit { exponent: unit.exponent + prefix(p)?, ..unit }
        }
    };
    Some(base.pow(exponent))
}

/// A conversion worked out once for a pair of units, applied to many values.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    rule: Rule,
    op: Op,
    unit: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Keep,
    Shift(i32),
    Multiply(f64),
    NgspToIfcc,
    IfccToNgsp,
}

impl Plan {
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The same plan, reporting `rule` (for conversions whose reading of the unit is itself a
    /// rule worth showing, such as mEq/L for a monovalent ion).
    pub fn with_rule(self, rule: Rule) -> Plan {
        Plan { rule, ..self }
    }

    pub fn apply(&self, value: &Decimal) -> Result<Converted, UnitError> {
        let bad = || UnitError::BadNumber(value.to_string());
        let converted = match self.op {
            Op::Keep => value.clone(),
            Op::Shift(places) => value.shift(places).ok_or_else(bad)?,
            Op::Multiply(factor) => Decimal::from_f64(value.to_f64() * factor).ok_or_else(bad)?,
            Op::NgspToIfcc => Decimal::from_f64((value.to_f64() - 2.15) * 10.929).ok_or_else(bad)?,
            Op::IfccToNgsp => Decimal::from_f64(value.to_f64() / 10.929 + 2.15).ok_or_else(bad)?,
        };
        Ok(Converted { value: converted, unit: self.unit.clone(), rule: self.rule.clone() })
    }
}

/// Works out how to convert from one unit to another; `molar_mass` (g/mol) allows
/// mass ↔ substance.
pub fn plan(from: &str, to: &str, molar_mass: Option<f64>) -> Result<Plan, UnitError> {
    let from_unit = parse_unit(from)?;
    let to_unit = parse_unit(to)?;
    let target = to.trim().to_string();
    if canonical_spelling(from) == canonical_spelling(to) {
        let rule = if from.trim() == to.trim() { Rule::Identity } else { Rule::Alias };
        return Ok(Plan { rule, op: Op::Keep, unit: target });
    }
    if from_unit.special || to_unit.special {
        return Err(UnitError::NotRatioScale(if from_unit.special { from } else { to }.trim().to_string()));
    }
    if from_unit.dimension == to_unit.dimension {
        let mantissa = from_unit.mantissa / to_unit.mantissa;
        let shift = from_unit.exponent - to_unit.exponent;
        if (mantissa - 1.0).abs() < 1e-15 {
            return Ok(Plan { rule: Rule::DecimalShift, op: Op::Shift(shift), unit: target });
        }
        return Ok(Plan { rule: Rule::Factor, op: Op::Multiply(mantissa * 10f64.powi(shift)), unit: target });
    }
    // Mass ↔ substance: one more mol and one less g (or the reverse).
    let amount_to_mass = from_unit.dimension.combine(Dimension::base(AMOUNT), -1).combine(Dimension::base(MASS), 1);
    let mass_to_amount = from_unit.dimension.combine(Dimension::base(MASS), -1).combine(Dimension::base(AMOUNT), 1);
    let direction = if amount_to_mass == to_unit.dimension {
        Some(true)
    } else if mass_to_amount == to_unit.dimension {
        Some(false)
    } else {
        None
    };
    match (direction, molar_mass) {
        (None, _) => Err(UnitError::Incompatible { from: from.trim().to_string(), to: target }),
        (Some(_), None) => Err(UnitError::NeedsMolarMass { from: from.trim().to_string(), to: target }),
        (Some(to_mass), Some(mm)) => {
            let scale = from_unit.mantissa * 10f64.powi(from_unit.exponent) / (to_unit.mantissa * 10f64.powi(to_unit.exponent));
            let factor = if to_mass { scale * mm } else { scale / mm };
            Ok(Plan { rule: Rule::MolarMass, op: Op::Multiply(factor), unit: target })
        }
    }
}

/// Converts a value between units; `molar_mass` (g/mol) allows mass ↔ substance.
pub fn convert(value: &Decimal, from: &str, to: &str, molar_mass: Option<f64>) -> Result<Converted, UnitError> {
    plan(from, to, molar_mass)?.apply(value)
}

/// The kind of quantity a unit measures, named as LOINC names a code's property, for the
/// properties a laboratory result may be converted between. Exports check that a LOINC code
/// and the unit beside it measure the same property (a molar value never under a mass code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Property {
    /// Mass concentration (g/L, mg/dL...): LOINC `MCnc`.
    MassConcentration,
    /// Substance concentration (mol/L, µmol/L...): LOINC `SCnc`.
    SubstanceConcentration,
    /// Catalytic concentration (U/L, µkat/L...): LOINC `CCnc`.
    CatalyticConcentration,
}

impl Property {
    /// LOINC's abbreviation (`MCnc`, `SCnc`, `CCnc`).
    pub fn loinc(self) -> &'static str {
        match self {
            Property::MassConcentration => "MCnc",
            Property::SubstanceConcentration => "SCnc",
            Property::CatalyticConcentration => "CCnc",
        }
    }

    pub fn from_loinc(name: &str) -> Option<Property> {
        match name {
            "MCnc" => Some(Property::MassConcentration),
            "SCnc" => Some(Property::SubstanceConcentration),
            "CCnc" => Some(Property::CatalyticConcentration),
            _ => None,
        }
    }
}

/// The property `unit` measures, when it is one of [`Property`]'s (None for counts, ratios,
/// unknown units...).
pub fn property(unit: &str) -> Option<Property> {
    let dimension = parse_unit(unit).ok()?.dimension;
    let per_volume = |base: Dimension| base.combine(Dimension::base(LENGTH).pow(3), -1);
    if dimension == per_volume(Dimension::base(MASS)) {
        Some(Property::MassConcentration)
    } else if dimension == per_volume(Dimension::base(AMOUNT)) {
        Some(Property::SubstanceConcentration)
    } else if dimension == per_volume(Dimension::base(AMOUNT).combine(Dimension::base(TIME), -1)) {
        Some(Property::CatalyticConcentration)
    } else {
        None
    }
}

/// Whether a unit measures a catalytic activity (enzyme units: amount per time).
pub fn is_catalytic(unit: &str) -> bool {
    let catalytic = Dimension::base(AMOUNT).combine(Dimension::base(TIME), -1).combine(Dimension::base(LENGTH).pow(3), -1);
    parse_unit(unit).is_ok_and(|u| u.dimension == catalytic)
}

/// HbA1c between the NGSP percentage and the IFCC mmol/mol (master equation:
/// IFCC = 10.929 × (NGSP − 2.15)). A unit factor cannot do this: the scales have different zeros.
pub fn plan_hba1c(from: &str, to: &str) -> Result<Plan, UnitError> {
    let from_c = canonical_spelling(from);
    let to_c = canonical_spelling(to);
    let is_percent = |u: &str| u == "%" || u == "%{HbA1c}" || u == "%{Hb}";
    let is_ifcc = |u: &str| u == "mmol/mol" || u == "mmol/mol{Hb}";
    let unit = to.trim().to_string();
    if is_percent(&from_c) && is_ifcc(&to_c) {
        Ok(Plan { rule: Rule::HbA1cMasterEquation, op: Op::NgspToIfcc, unit })
    } else if is_ifcc(&from_c) && is_percent(&to_c) {
        Ok(Plan { rule: Rule::HbA1cMasterEquation, op: Op::IfccToNgsp, unit })
    } else if from_c == to_c {
        let rule = if from.trim() == to.trim() { Rule::Identity } else { Rule::Alias };
        Ok(Plan { rule, op: Op::Keep, unit })
    } else {
        Err(UnitError::Incompatible { from: from.trim().to_string(), to: unit })
    }
}

pub fn convert_hba1c(value: &Decimal, from: &str, to: &str) -> Result<Converted, UnitError> {
    plan_hba1c(from, to)?.apply(value)
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Identity => "identity",
            Rule::Alias => "alias",
            Rule::DecimalShift => "decimal_shift",
            Rule::Factor => "factor",
            Rule::MolarMass => "molar_mass",
            Rule::HbA1cMasterEquation => "hba1c_master_equation",
            Rule::MonovalentEquivalent => "monovalent_equivalent",
            Rule::EnzymeInternationalUnit => "enzyme_international_unit",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    fn conv(v: &str, from: &str, to: &str) -> Converted {
        convert(&d(v), from, to, None).unwrap_or_else(|e| panic!("{v} {from} -> {to}: {e}"))
    }

    #[test]
    fn catalogue_units_print_as_readers_expect() {
        let fr = |u: &str| display_unit(u, true);
        assert_eq!(fr("umol/L"), "µmol/L");
        assert_eq!(fr("ug/dL"), "µg/dL");
        assert_eq!(fr("u[IU]/mL"), "µUI/mL");
        assert_eq!(display_unit("u[IU]/mL", false), "µIU/mL");
        assert_eq!(fr("m[IU]/L"), "mUI/L");
        assert_eq!(fr("k[IU]/L"), "kUI/L");
        assert_eq!(fr("[IU]/L"), "UI/L");
        assert_eq!(fr("U/L"), "U/L", "the enzyme unit is not micro");
        assert_eq!(fr("10*9/L"), "10⁹/L");
        assert_eq!(fr("10*12/L"), "10¹²/L");
        assert_eq!(fr("mm[Hg]"), "mmHg");
        assert_eq!(fr("mosm/kg"), "mOsm/kg");
        assert_eq!(fr("g/(24.h)"), "g/24 h");
        assert_eq!(fr("mL/min/{1.73_m2}"), "mL/min/1,73 m²");
        assert_eq!(display_unit("mL/min/{1.73_m2}", false), "mL/min/1.73 m²");
        for dimensionless in ["1", "{ratio}", "[pH]", ""] {
            assert_eq!(fr(dimensionless), "", "{dimensionless}");
        }
        for plain in ["mmol/L", "g/L", "%", "fL", "pg", "s", "mm/h", "/mL", "mg/mmol", "ng/L"] {
            assert_eq!(fr(plain), plain);
        }
    }

    #[test]
    fn powers_of_ten_move_the_decimal_point_exactly() {
        let c = conv("4.89", "mmol/L", "umol/L");
        assert_eq!((c.value.as_str(), c.rule), ("4890", Rule::DecimalShift));
        assert_eq!(conv("0.88", "g/L", "mg/dL").value.as_str(), "88");
        assert_eq!(conv("75.0", "g/L", "g/dL").value.as_str(), "7.50");
        assert_eq!(conv("8.2", "G/L", "10*9/L").value.as_str(), "8.2");
        assert_eq!(conv("8.2", "G/L", "/mm3").value.as_str(), "8200");
        assert_eq!(conv("4.95", "T/L", "10*12/L").value.as_str(), "4.95");
        assert_eq!(conv("1.950", "mUI/l", "m[IU]/L").value.as_str(), "1.950");
        assert_eq!(conv("1.950", "m[IU]/L", "u[IU]/mL").value.as_str(), "1.950");
        assert_eq!(conv("60", "µmol/L", "umol/L").rule, Rule::Alias);
        assert_eq!(conv("60", "umol/L", "umol/L").rule, Rule::Identity);
        assert_eq!(conv("0.1", "mg/L", "g/L").value.as_str(), "0.0001");
        assert_eq!(conv("220", "10*3/uL", "10*9/L").value.as_str(), "220");
    }

    #[test]
    fn molar_mass_links_mass_and_substance() {
        // Glucose 180.156 g/mol: 0.88 g/L = 4.885 mmol/L.
        let c = convert(&d("0.88"), "g/L", "mmol/L", Some(180.156)).unwrap();
        assert_eq!(c.rule, Rule::MolarMass);
        assert!((c.value.to_f64() - 4.8846).abs() < 1e-3, "{}", c.value);
        // Creatinine 113.12 g/mol: 1.0 mg/dL = 88.4 µmol/L.
        let c = convert(&d("1.0"), "mg/dL", "umol/L", Some(113.12)).unwrap();
        assert!((c.value.to_f64() - 88.40).abs() < 0.01, "{}", c.value);
        assert_eq!(convert(&d("1"), "g/L", "mmol/L", None), Err(UnitError::NeedsMolarMass { from: "g/L".into(), to: "mmol/L".into() }));
    }

    #[test]
    fn refuses_what_it_does_not_know_or_cannot_do() {
        assert!(matches!(convert(&d("1"), "mg/L", "m[IU]/L", None), Err(UnitError::Incompatible { .. })));
        assert!(matches!(convert(&d("1"), "bananas/L", "g/L", None), Err(UnitError::Unknown(_))));
        assert!(matches!(convert(&d("1"), "mEq/L", "mmol/L", None), Err(UnitError::Unknown(_))), "mEq needs the analyte's valence");
        assert!(matches!(convert(&d("7.4"), "[pH]", "%", None), Err(UnitError::NotRatioScale(_))));
        assert!(parse_unit("G").is_err(), "the gauss is no laboratory unit");
        assert!(parse_unit("").is_err());
        assert!(parse_unit("((((((((((g))))))))))").is_err(), "nesting is bounded");
    }

    #[test]
    fn enzyme_activity_and_pressures() {
        let c = conv("60", "U/L", "ukat/L");
        assert!((c.value.to_f64() - 1.0).abs() < 1e-9, "{}", c.value);
        let c = conv("40", "mm[Hg]", "kPa");
        assert!((c.value.to_f64() - 5.333).abs() < 1e-3, "{}", c.value);
        assert_eq!(conv("40", "mmHg", "mm[Hg]").rule, Rule::Alias);
        assert_eq!(conv("95", "mL/min/1,73m2", "mL/min/{1.73_m2}").rule, Rule::Alias);
        assert_eq!(conv("2", "g/(24.h)", "mg/(24.h)").value.as_str(), "2000");
        assert_eq!(conv("12", "mm/1h", "mm/h").rule, Rule::Alias);
        assert_eq!(conv("45", "%", "[ppth]").value.as_str(), "450");
    }

    #[test]
    fn hba1c_uses_the_master_equation() {
        let c = convert_hba1c(&d("6.5"), "%", "mmol/mol").unwrap();
        assert_eq!(c.rule, Rule::HbA1cMasterEquation);
        assert!((c.value.to_f64() - 47.5).abs() < 0.1, "{}", c.value);
        let back = convert_hba1c(&d("48"), "mmol/mol", "%").unwrap();
        assert!((back.value.to_f64() - 6.54).abs() < 0.01, "{}", back.value);
    }
}
