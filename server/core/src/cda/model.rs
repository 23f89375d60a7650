//! The typed report the parser produces. Serialised as the JSON of `bioviewer parse`
//! (documented in `docs/parse-json.md`); field names are part of that contract.

use serde::{Deserialize, Serialize};

use super::time::CdaTime;

/// OIDs that identify a French national health identifier (INS).
pub mod oid {
    pub const INS_NIR: &str = "1.2.250.1.213.1.4.8";
    pub const INS_NIA: &str = "1.2.250.1.213.1.4.9";
    pub const INS_NIR_TEST: &str = "1.2.250.1.213.1.4.10";
    pub const INS_NIR_DEMO: &str = "1.2.250.1.213.1.4.11";
    /// Legacy INS-C roots.
    pub const INS_C: [&str; 3] = ["1.2.250.1.213.1.4.2", "1.2.250.1.213.1.4.6", "1.2.250.1.213.1.4.7"];
    pub const LOINC: &str = "2.16.840.1.113883.6.1";
    pub const SNOMED_CT: &str = "2.16.840.1.113883.6.96";
    pub const UCUM: &str = "2.16.840.1.113883.6.8";
    pub const INTERPRETATION: &str = "2.16.840.1.113883.5.83";
    /// FINESS / organisation identifiers used for laboratories.
    pub const STRUCTURE: &str = "1.2.250.1.71.4.2.2";
}

/// What kind of document this is, decided from its root and its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// CR-BIO with a structured body (level 3).
    CrBioStructured,
    /// CR-BIO wrapped in an XSL stylesheet ("auto-présentable"), structured inside.
    CrBioAutoPresentable,
    /// CR-BIO whose body is only a PDF (level 1, `nonXMLBody`).
    CrBioPdfOnly,
    /// A rapid diagnostic test done at the point of care (TROD, "test rapide d'orientation
    /// diagnostique", LOINC 96173-0: a pharmacy's or a nurse's rapid test, and its screening
    /// attestation): not a laboratory report, but results of the patient all the same, read with
    /// the CR-BIO body structure it reuses and shown marked as point-of-care.
    PointOfCareTest,
    /// A CDA document of another type (discharge letters, ...).
    OtherCda,
    /// Not a CDA document at all.
    NotCda,
}

impl DocumentKind {
    /// Whether laboratory results can be read from such a document.
    pub fn has_structured_results(self) -> bool {
        matches!(self, DocumentKind::CrBioStructured | DocumentKind::CrBioAutoPresentable | DocumentKind::PointOfCareTest)
    }

    /// A document with results of one patient: a laboratory report (CR-BIO) or a point-of-care
    /// rapid test (TROD). Both are attributed and versioned by the same rules.
    pub fn carries_results(self) -> bool {
        self.is_cr_bio() || self == DocumentKind::PointOfCareTest
    }

    pub fn is_cr_bio(self) -> bool {
        matches!(self, DocumentKind::CrBioStructured | DocumentKind::CrBioAutoPresentable | DocumentKind::CrBioPdfOnly)
    }
}

/// An HL7 instance identifier (`root` OID + optional `extension`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceId {
    pub root: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extension: Option<String>,
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.extension {
            Some(ext) => write!(f, "{}^{}", self.root, ext),
            None => f.write_str(&self.root),
        }
    }
}

/// A coded concept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Code {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub display: Option<String>,
    /// Text the code's `originalText` holds or points to in the narrative.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub original_text: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub translations: Vec<Code>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub null_flavor: Option<String>,
}

impl Code {
    pub fn is_loinc(&self) -> bool {
        self.system.as_deref() == Some(oid::LOINC) && self.code.is_some()
    }

    /// The LOINC code, from the code itself or one of its translations.
    pub fn loinc(&self) -> Option<&str> {
        if self.is_loinc() {
            return self.code.as_deref();
        }
        self.translations.iter().find(|t| t.is_loinc()).and_then(|t| t.code.as_deref())
    }

    /// The best human label: display name, else the narrative text.
    pub fn label(&self) -> Option<&str> {
        self.display.as_deref().or(self.original_text.as_deref())
    }
}

/// A person's name as CDA gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PersonName {
    /// Family name in use (qualifier CL or no qualifier).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub family: Option<String>,
    /// Birth family name (qualifier BR).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub birth_family: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub given: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prefix: Option<String>,
}

impl PersonName {
    /// "FAMILY Given" as French clinical software shows it.
    pub fn display(&self) -> String {
        let family = self.family.as_deref().or(self.birth_family.as_deref()).unwrap_or_default();
        let given = self.given.first().map(String::as_str).unwrap_or_default();
        format!("{family} {given}").trim().to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Undetermined,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Patient {
    /// Every identifier, INS and local (IPP) alike.
    pub ids: Vec<InstanceId>,
    pub name: PersonName,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub birth_date: Option<CdaTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sex: Option<Sex>,
}

impl Patient {
    /// A patient known by one identifier (an INS, for generated data and tests).
    pub fn with_id(root: &str, extension: &str, name: PersonName, birth_date: Option<CdaTime>, sex: Option<Sex>) -> Patient {
        Patient { ids: vec![InstanceId { root: root.into(), extension: Some(extension.into()) }], name, birth_date, sex }
    }

    /// The national identifier (INS-NIR, INS-NIA or a test/demo INS), preferred in that order.
    /// A 13-character NIR written without its key under an INS OID is not an INS (see
    /// [`IdentifierKind::NirWithoutKey`]).
    pub fn ins(&self) -> Option<&InstanceId> {
        [oid::INS_NIR, oid::INS_NIA, oid::INS_NIR_TEST, oid::INS_NIR_DEMO]
            .iter()
            .find_map(|root| self.ids.iter().find(|id| id.root == *root && id.patient_identifier_kind() == IdentifierKind::Ins))
    }

    /// The identifier that names the patient best: the INS, else an INS-C, else the first
    /// other identifier with a value.
    pub fn primary_id(&self) -> Option<&InstanceId> {
        self.ins()
            .or_else(|| self.ids.iter().find(|id| id.patient_identifier_kind() == IdentifierKind::InsC))
            .or_else(|| self.ids.iter().find(|id| id.extension.as_deref().is_some_and(|e| !e.trim().is_empty())))
    }
}

/// What kind of patient identifier an id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// The INS (NIR, NIA, or a test/demonstration one): 15 characters under an INS OID.
    Ins,
    /// The INS-C of the years before 2021 (OIDs `1.2.250.1.213.1.4.2`, `.6`, `.7`).
    InsC,
    /// A NIR written without its key (13 characters under an INS OID). Not an INS: before the
    /// INS, reports often carried the insured person's NIR, which for a child is a parent's.
    /// It attributes nothing alone; it is recorded as one more identifier of the patient.
    NirWithoutKey,
    /// A laboratory's or a hospital's own patient id (IPP), under its own OID.
    Local,
}

impl InstanceId {
    pub fn patient_identifier_kind(&self) -> IdentifierKind {
        IdentifierKind::of(&self.root, self.extension.as_deref().unwrap_or_default())
    }
}

impl IdentifierKind {
    /// The kind of the patient identifier `value` under the authority `root`.
    pub fn of(root: &str, value: &str) -> IdentifierKind {
        let value = value.trim();
        let ins_root = [oid::INS_NIR, oid::INS_NIA, oid::INS_NIR_TEST, oid::INS_NIR_DEMO].contains(&root);
        if ins_root && value.len() == 15 {
            IdentifierKind::Ins
        } else if ins_root && value.len() == 13 {
            IdentifierKind::NirWithoutKey
        } else if oid::INS_C.contains(&root) {
            IdentifierKind::InsC
        } else {
            IdentifierKind::Local
        }
    }
}

/// A laboratory or other organisation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Organization {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<InstanceId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

/// A professional taking part in the report.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Professional {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<InstanceId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<PersonName>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub organization: Option<Organization>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub time: Option<CdaTime>,
}

/// `documentationOf/serviceEvent/lab:statusCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// The final report.
    Completed,
    /// A partial report that a complete one will replace.
    Active,
}

/// The document header.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Header {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<InstanceId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub set_id: Option<InstanceId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version_number: Option<u32>,
    /// `relatedDocument typeCode="RPLC"`: the document this one replaces.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub replaces: Option<InstanceId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub effective_time: Option<CdaTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<ReportStatus>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub patient: Option<Patient>,
    /// The executing laboratory (serviceEvent performer).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub laboratory: Option<Organization>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prescriber: Option<Professional>,
    /// The sampler (participant PRF/PRELV); its time is the collection time.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sampler: Option<Professional>,
    /// The validating biologist (authenticator).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub validator: Option<Professional>,
    /// `encompassingEncounter/effectiveTime/low`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub encounter_start: Option<CdaTime>,
    /// `serviceEvent/effectiveTime/low`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_start: Option<CdaTime>,
    /// Chapter codes listed in the header's serviceEvents.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub chapters: Vec<Code>,
}

/// A decimal number exactly as the laboratory wrote it. The literal is kept so that `1.950` is
/// shown with its three decimals and no binary rounding ever changes a digit; arithmetic uses
/// [`Decimal::to_f64`].
#[derive(Debug, Clone)]
pub struct Decimal(std::sync::Arc<str>, f64);

// Equality and hashing are on the literal: `1.0` and `1.00` are different results as written.
impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Decimal {}

impl std::hash::Hash for Decimal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Decimal {
    /// Longest literal accepted; longer ones are absurd in a laboratory report.
    pub const MAX_LEN: usize = 40;

    /// Accepts `[+-]digits[.digits][e[+-]digits]` (and `.5`, `5.`), finite, at most 40 characters.
    /// A decimal comma is accepted and normalised to a point (some systems write `4,5`).
    pub fn parse(raw: &str) -> Option<Decimal> {
        let s = raw.trim();
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return None;
        }
        let s: std::borrow::Cow<'_, str> = if s.contains(',') { s.replace(',', ".").into() } else { s.into() };
        let body = s.strip_prefix(['+', '-']).unwrap_or(&s);
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let mut parts = mantissa.splitn(2, '.');
        let int = parts.next().unwrap_or_default();
        let frac = parts.next().unwrap_or_default();
        let digits_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits_ok(int) || !digits_ok(frac) || frac.contains('.') {
            return None;
        }
        if let Some(e) = exponent {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            if e.is_empty() || e.len() > 3 || !digits_ok(e) {
                return None;
            }
        }
        let value: f64 = s.parse().ok()?;
        value.is_finite().then(|| Decimal(std::sync::Arc::from(s.strip_prefix('+').unwrap_or(&s)), value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn to_f64(&self) -> f64 {
        self.1
    }

    /// The literal, shared.
    pub fn shared(&self) -> std::sync::Arc<str> {
        self.0.clone()
    }

    /// The same number times 10^`places`, by moving the decimal point of the literal: exact.
    pub fn shift(&self, places: i32) -> Option<Decimal> {
        if self.0.contains(['e', 'E']) {
            return Decimal::from_f64(self.to_f64() * 10f64.powi(places));
        }
        let (negative, body) = match self.0.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, &*self.0),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let digits: String = format!("{int}{frac}");
        let point = int.len() as i64 + i64::from(places);
        let (int_part, frac_part) = if point <= 0 {
            ("0".to_string(), format!("{}{digits}", "0".repeat((-point) as usize)))
        } else if point as usize >= digits.len() {
            (format!("{digits}{}", "0".repeat(point as usize - digits.len())), String::new())
        } else {
            (digits[..point as usize].to_string(), digits[point as usize..].to_string())
        };
        let int_part = int_part.trim_start_matches('0');
        let int_part = if int_part.is_empty() { "0" } else { int_part };
        let sign = if negative { "-" } else { "" };
        let literal = if frac_part.is_empty() { format!("{sign}{int_part}") } else { format!("{sign}{int_part}.{frac_part}") };
        Decimal::parse(&literal)
    }

    /// A computed value, to 12 significant digits (beyond what any laboratory reports).
    pub fn from_f64(value: f64) -> Option<Decimal> {
        if !value.is_finite() {
            return None;
        }
        if value == 0.0 {
            return Decimal::parse("0");
        }
        let magnitude = value.abs().log10().floor() as i32;
        let decimals = (11 - magnitude).clamp(0, 20) as usize;
        let text = format!("{value:.decimals$}");
        let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
        Decimal::parse(&text)
    }

    /// Rounded to `decimals` places (half away from zero), for display.
    pub fn rounded(&self, decimals: usize) -> String {
        if self.scale() <= decimals && !self.0.contains(['e', 'E']) {
            return self.0.to_string();
        }
        let v = self.to_f64();
        let factor = 10f64.powi(decimals as i32);
        let r = (v.abs() * factor + 0.5 + 1e-9).floor() / factor * v.signum();
        format!("{r:.decimals$}")
    }

    /// [`Decimal::rounded`], sharing the literal when no rounding is needed.
    pub fn display(&self, decimals: usize) -> std::sync::Arc<str> {
        if self.scale() <= decimals && !self.0.contains(['e', 'E']) {
            return self.0.clone();
        }
        std::sync::Arc::from(self.rounded(decimals))
    }

    /// Number of digits after the decimal point as written.
    pub fn scale(&self) -> usize {
        let mantissa = self.0.split(['e', 'E']).next().unwrap_or_default();
        mantissa.split_once('.').map_or(0, |(_, f)| f.len())
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Decimal::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid decimal {s:?}")))
    }
}

/// A physical quantity: a number and its unit as written (UCUM, or what the laboratory wrote).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    pub value: Decimal,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<String>,
}

/// Comparator of a censored result (`< 1.0`, `>= 0.512`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparator {
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    LessOrEqual,
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    GreaterOrEqual,
}

impl Comparator {
    /// ASCII form (`<=`), as in the JSON and CSV exports.
    pub fn ascii(self) -> &'static str {
        match self {
            Comparator::Less => "<",
            Comparator::LessOrEqual => "<=",
            Comparator::Greater => ">",
            Comparator::GreaterOrEqual => ">=",
        }
    }

    /// Typographic form (`≤`), for people.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::Less => "<",
            Comparator::LessOrEqual => "≤",
            Comparator::Greater => ">",
            Comparator::GreaterOrEqual => "≥",
        }
    }
}

/// The value of a result, in every form CR-BIO allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Value {
    /// `PQ`: a number with a unit.
    Quantity(Quantity),
    /// `IVL_PQ` with a single bound: a censored result.
    Censored { comparator: Comparator, quantity: Quantity },
    /// `IVL_PQ` with both bounds (a range given as the result).
    Interval {
        #[serde(skip_serializing_if = "Option::is_none", default)]
        low: Option<Quantity>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        high: Option<Quantity>,
    },
    /// `REAL` (e.g. INR).
    Real { value: Decimal },
    /// `INT`.
    Integer { value: i64 },
    /// `CD`/`CE`/`CV`: coded (SNOMED CT ...), or text by reference to the narrative.
    Coded(Code),
    /// `ST`/`ED`: free text.
    Text { text: String },
    /// `TS`.
    Time { time: CdaTime },
    /// `RTO` (titres): numerator / denominator.
    Ratio { numerator: Quantity, denominator: Quantity },
    /// A value replaced by a null flavour (`NA`, `UNK`, ...).
    Null { flavor: String },
    /// A value the parser cannot read; `reason` says why, `raw` keeps what was there.
    Unreadable { xsi_type: String, reason: String, raw: String },
}

/// `statusCode` of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Completed,
    /// Not performed: shown, never charted.
    Aborted,
    Other(String),
}

/// A reference interval with its conditions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReferenceRange {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub low: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub high: Option<Quantity>,
    /// Text form of the range when it is not numeric (or as well).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub text: Option<String>,
    /// XD-LAB `lab:precondition` text (age- or sex-specific ranges).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub precondition: Option<String>,
}

/// Which element gave a result's collection time (the order of preference of the CR-BIO notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionTimeSource {
    /// The specimen collection procedure of the same entry.
    SpecimenProcedure,
    /// The sampler participant (PRELV) of the header.
    Sampler,
    /// `encompassingEncounter/effectiveTime/low`.
    Encounter,
    /// The result's own `effectiveTime` (the time of the result, not of collection).
    ObservationTime,
    /// `serviceEvent/effectiveTime/low`.
    ServiceEvent,
}

/// A microbiology isolate (organism) a result belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isolate {
    pub organism: Code,
}

/// One laboratory result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Position in [`super::Report::observations`].
    pub index: usize,
    /// For a previous result (REFR) embedded in another result: that result's index.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous_of: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub chapter: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sub_chapter: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub battery: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub isolate: Option<Isolate>,
    pub code: Code,
    pub status: ResultStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub interpretation: Vec<Code>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub method: Option<Code>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub reference_ranges: Vec<ReferenceRange>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub effective_time: Option<CdaTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub collection_time: Option<CdaTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub collection_time_source: Option<CollectionTimeSource>,
    /// The laboratory that performed this result (an override on the result, battery or entry,
    /// else the report's executing laboratory).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub performer: Option<Organization>,
    /// Whether `performer` came from an override rather than the report's laboratory.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub performer_overridden: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub specimen: Option<Code>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub comments: Vec<String>,
}

impl Observation {
    pub fn is_previous_result(&self) -> bool {
        self.previous_of.is_some()
    }
}

/// A comment above the level of one result (on an entry or a battery).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub chapter: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub battery: Option<Code>,
    pub text: String,
}

/// What a section of the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    /// A biology chapter (or sub-chapter) with results.
    Chapter,
    /// The PDF copy of the whole report.
    PdfCopy,
    /// Results of a second laboratory given as PDF.
    SecondIntention,
    /// A free comment section.
    Comment,
    Other,
}

/// A body section with the laboratory's own narrative, made safe to show as HTML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub kind: SectionKind,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub title: Option<String>,
    /// The `text` element rewritten as HTML from an allow-list of elements; never any script,
    /// style, link or attribute from the document.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub narrative_html: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sub_sections: Vec<Section>,
}

/// Why a binary is in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentPurpose {
    /// The PDF copy of the report (section 1.2.250.1.213.1.1.2.243, or the level-1 body).
    ReportCopy,
    /// A second laboratory's report as PDF.
    SecondIntention,
    /// An illustrative image (electrophoresis curve ...).
    Illustration,
    Other,
}

/// A binary carried by the document (base64 in the XML).
///
/// The content is decoded when asked for ([`Attachment::bytes`]), not while parsing: importing a
/// decade of reports must not decode hundreds of PDF copies nobody opens, and the raw document
/// is stored anyway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub purpose: AttachmentPurpose,
    pub media_type: String,
    /// The `ID` the narrative's `renderMultiMedia` refers to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub anchor: Option<String>,
    /// Size of the content once decoded.
    pub size_bytes: usize,
    /// Not in the JSON: `bioviewer parse` lists attachments without their content.
    #[serde(skip)]
    payload: Payload,
}

#[derive(Debug, Clone, PartialEq, Default)]
enum Payload {
    #[default]
    Empty,
    /// Base64 text as the document wrapped it.
    Base64(String),
    Raw(Vec<u8>),
}

/// Why an attachment's content cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    #[error("the attachment is not valid base64: {0}")]
    InvalidBase64(String),
    #[error("the attachment has no content (it was not kept, e.g. after deserialisation)")]
    NoContent,
}

impl Attachment {
    pub fn from_bytes(purpose: AttachmentPurpose, media_type: String, anchor: Option<String>, bytes: Vec<u8>) -> Attachment {
        Attachment { purpose, media_type, anchor, size_bytes: bytes.len(), payload: Payload::Raw(bytes) }
    }

    /// Keeps the base64 text as the document wrapped it (one copy) and announces its decoded
    /// size (a SIMD count of the wrapping whitespace).
    pub(crate) fn from_base64(purpose: AttachmentPurpose, media_type: String, anchor: Option<String>, text: &str) -> Attachment {
        let bytes = text.as_bytes();
        let blanks = memchr::memchr3_iter(b' ', b'\n', b'\r', bytes).count() + memchr::memchr_iter(b'\t', bytes).count();
        let significant = bytes.len() - blanks;
        let padding = text.trim_end().bytes().rev().take_while(|&b| b == b'=').count().min(2);
        let size_bytes = (significant / 4 * 3).saturating_sub(padding);
        Attachment { purpose, media_type, anchor, size_bytes, payload: Payload::Base64(text.to_string()) }
    }

    /// The decoded content.
    pub fn bytes(&self) -> Result<Vec<u8>, AttachmentError> {
        match &self.payload {
            Payload::Raw(bytes) => Ok(bytes.clone()),
            Payload::Base64(text) => decode_wrapped_base64(text).map_err(|e| AttachmentError::InvalidBase64(e.to_string())),
            Payload::Empty => Err(AttachmentError::NoContent),
        }
    }
}

use base64::Engine as _;

/// Decodes base64 wrapped in lines (as CDA writes it) without first copying it into one
/// whitespace-free buffer: each line is decoded straight into the output, and only a line whose
/// length is not a multiple of 4 sends the rest through the slower compacting path.
fn decode_wrapped_base64(text: &str) -> Result<Vec<u8>, base64::DecodeSliceError> {
    use base64::engine::general_purpose::STANDARD;
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 3);
    let mut rest = bytes;
    loop {
        let start = rest.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(rest.len());
        rest = &rest[start..];
        if rest.is_empty() {
            return Ok(out);
        }
        let end = rest.iter().position(u8::is_ascii_whitespace).unwrap_or(rest.len());
        let line = &rest[..end];
        if !line.len().is_multiple_of(4) {
            // Irregular wrapping: compact what is left and decode it in one go.
            let compact: Vec<u8> = rest.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            let written = out.len();
            out.resize(written + compact.len() / 4 * 3 + 3, 0);
            let n = STANDARD.decode_slice(&compact, &mut out[written..])?;
            out.truncate(written + n);
            return Ok(out);
        }
        let written = out.len();
        out.resize(written + line.len() / 4 * 3, 0);
        let n = STANDARD.decode_slice(line, &mut out[written..])?;
        out.truncate(written + n);
        rest = &rest[end..];
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    #[test]
    fn wrapped_base64_decodes_like_the_unwrapped_text() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        let wrapped76: String = b64.as_bytes().chunks(76).map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap())).collect();
        assert_eq!(super::decode_wrapped_base64(&wrapped76).unwrap(), data);
        let irregular: String = b64.as_bytes().chunks(7).map(|c| format!("  {}\n", std::str::from_utf8(c).unwrap())).collect();
        assert_eq!(super::decode_wrapped_base64(&irregular).unwrap(), data);
        assert!(super::decode_wrapped_base64("abc$").is_err());
    }
}
