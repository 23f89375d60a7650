//! A normalised history as FHIR R4 resources, as a receiving system reads them.
//!
//! - one `Patient` (the INS as French FHIR core profiles spell it: `urn:oid:` of its authority,
//!   identifier type `INS-NIR`, `INS-NIR-TEST` or `INS-NIR-DEMO`), name, birth date, sex;
//! - one `DiagnosticReport` per current laboratory report (status, issued, the laboratory as
//!   performer, its Observations as `result`, the CDA document as `presentedForm`);
//! - one `Observation` per result: the code the laboratory sent and, when the value was
//!   converted between mass and substance units, first the LOINC code of the property it was
//!   converted to (`data/loinc-pairs.tsv`; without one the laboratory's value is exported as
//!   sent, never under a code of the other property), the original value and unit in an
//!   extension, values with the laboratory's precision ([`crate::export::shown_value`]), the
//!   range in the same unit, interpretation, the collection time with seconds, comparators,
//!   `dataAbsentReason` for results not performed; eGFR Bioviewer computed is `derivedFrom`
//!   the creatinine, with its equation as `method` and a note.
//!
//! Uploaded documents' resources carry the meta tag `upload` of [`PROVENANCE_SYSTEM`] (and
//! every resource its provenance): a receiver can tell them from a laboratory's DMP results.
//!
//! Numbers: JSON numbers are written from the laboratory's literals ([`to_string`]), never
//! through a binary float, so `1.10` stays `1.10` (a FHIR decimal's precision is significant).

use std::collections::HashMap;

use serde_json::{Map, Value as Json, json};

use crate::catalogue::{self, Catalogue};
use crate::cda::{CdaTime, ReportStatus, Sex, oid};
use crate::export::{shown_bound, shown_value};
use crate::normalise::{DocumentEntry, DocumentState, History, Point, PointStatus, Provenance, Source};
use crate::units;

/// The code system of Bioviewer's own meta tags: where a resource's data came from.
pub const PROVENANCE_SYSTEM: &str = "urn:bioviewer:fhir:provenance";
/// Extension on converted values: the result as the laboratory sent it, with sub-extensions
/// `value` (its value and unit), `code` (its code) and `conversion` (the rule applied:
/// `molar_mass`, `decimal_shift`...).
pub const ORIGINAL_RESULT_URL: &str = "urn:bioviewer:fhir:original-result";
const UCUM: &str = "http://unitsofmeasure.org";
const LOINC: &str = "http://loinc.org";
const FR_CORE_IDENTIFIER_TYPE: &str = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203";
/// The object key that marks a decimal literal inside the tree [`to_string`] writes. No FHIR
/// element is named so, and laboratory text only ever goes into string values, never keys.
const DECIMAL_KEY: &str = "$decimal";

/// The language of the texts (`code.text`, notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    French,
    English,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::French => "fr-FR",
            Language::English => "en",
        }
    }

    fn pick<'a>(self, fr: &'a str, en: &'a str) -> &'a str {
        match self {
            Language::French => fr,
            Language::English => en,
        }
    }
}

/// What the resources need beyond the history.
pub struct Context<'a> {
    /// The Patient resource's id (Bioviewer's patient id).
    pub patient_id: &'a str,
    pub language: Language,
    /// Where a document's CDA can be read, by document id (relative to the server, or absolute).
    pub document_url: &'a dyn Fn(&str) -> String,
}

/// One resource with what searches filter on.
#[derive(Debug, Clone)]
pub struct Resource {
    pub resource_type: &'static str,
    pub id: String,
    pub json: Json,
    /// `(system, code)` of every coding of `code`.
    pub codes: Vec<(String, String)>,
    /// The effective time (Observation) or the report time (DiagnosticReport).
    pub time: Option<CdaTime>,
}

/// All of a history's resources.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub patient: Option<Resource>,
    pub reports: Vec<Resource>,
    pub observations: Vec<Resource>,
}

impl Resources {
    pub fn all(&self) -> impl Iterator<Item = &Resource> {
        self.patient.iter().chain(&self.reports).chain(&self.observations)
    }
}

/// A FHIR `id` (`[A-Za-z0-9-.]{1,64}`) from our ids (UUIDs already are).
fn fhir_id(raw: &str) -> String {
    let id: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' }).take(64).collect();
    if id.is_empty() { "-".into() } else { id }
}

/// The Observation id of a point: its first source (one result of one document).
fn observation_id(source: &Source) -> String {
    fhir_id(&format!("{}-{}", source.document, source.observation))
}

/// A FHIR `dateTime`: a time of day needs seconds and a UTC offset. A time given to the minute
/// is that minute (`:00`); a time without offset keeps only its date (the offset is unknown).
pub fn date_time(t: &CdaTime) -> String {
    match (t.day, t.hour, t.offset_minutes) {
        (Some(_), Some(_), Some(_)) => {
            let full = CdaTime { minute: Some(t.minute.unwrap_or(0)), second: Some(t.second.unwrap_or(0)), ..*t };
            full.to_string()
        }
        _ => t.date_string(),
    }
}

/// A FHIR `instant` (full precision with offset), when the time has one.
fn instant(t: &CdaTime) -> Option<String> {
    (t.day.is_some() && t.hour.is_some() && t.offset_minutes.is_some()).then(|| date_time(t))
}

/// A decimal literal as a JSON number FHIR accepts (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
fn json_number(literal: &str) -> Option<String> {
    let (sign, body) = match literal.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", literal.strip_prefix('+').unwrap_or(literal)),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut out = format!("{sign}{int}");
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if let Some(e) = exponent {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        out.push('e');
        out.push_str(e);
    }
    Some(out)
}

/// A decimal to be written exactly as `literal` (see [`to_string`]).
fn decimal(literal: &str) -> Option<Json> {
    json_number(literal).map(|n| json!({ DECIMAL_KEY: n }))
}

/// Writes the tree as JSON, decimal literals as numbers with their digits as written.
pub fn to_string(value: &Json) -> String {
    fn write(value: &Json, out: &mut String) {
        match value {
            Json::Object(map) => {
                if map.len() == 1
                    && let Some(Json::String(n)) = map.get(DECIMAL_KEY)
                {
                    // Checked when the marker was made; checked again so no text becomes code.
                    match json_number(n) {
                        Some(n) => out.push_str(&n),
                        None => out.push_str(&Json::String(n.clone()).to_string()),
                    }
                    return;
                }
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Json::String(k.clone()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            Json::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn provenance_code(p: Provenance) -> &'static str {
    match p {
        Provenance::Dmp => "dmp",
        Provenance::Operator => "operator",
        Provenance::Upload => "upload",
    }
}

fn meta(provenance: Option<Provenance>, language: Language) -> Json {
    let Some(p) = provenance else { return json!({}) };
    let display = match (p, language) {
        (Provenance::Dmp, Language::French) => "Reçu du DMP",
        (Provenance::Dmp, Language::English) => "Received from the DMP",
        (Provenance::Operator, Language::French) => "Importé par l'exploitant",
        (Provenance::Operator, Language::English) => "Imported by the operator",
        (Provenance::Upload, Language::French) => "Déposé par un utilisateur, non reçu du laboratoire",
        (Provenance::Upload, Language::English) => "Uploaded by a user, not received from the laboratory",
    };
    json!({"tag": [{"system": PROVENANCE_SYSTEM, "code": provenance_code(p), "display": display}]})
}

/// A UCUM-coded quantity when the unit is UCUM (after the laboratories' usual spellings),
/// else the unit as written only. The human-readable `unit` is a UCUM unit as a reader expects
/// it printed (`µmol/L`, `mUI/L` in French), and a laboratory's own spelling as written.
fn quantity(value: &str, unit: Option<&str>, language: Language) -> Option<Json> {
    let mut q = Map::new();
    q.insert("value".into(), decimal(value)?);
    if let Some(unit) = unit.filter(|u| !u.trim().is_empty()) {
        let ucum = units::canonical_spelling(unit);
        let is_ucum = units::parse_unit(&ucum).is_ok();
        let printed = if is_ucum && ucum == unit.trim() { units::display_unit(&ucum, language == Language::French) } else { String::new() };
        q.insert("unit".into(), json!(if printed.is_empty() { unit } else { printed.as_str() }));
        if is_ucum {
            q.insert("system".into(), json!(UCUM));
            q.insert("code".into(), json!(ucum));
        }
    }
    Some(Json::Object(q))
}

fn coding(system: Option<&str>, code: &str) -> Json {
    match system {
        Some(s) if s == oid::LOINC => json!({"system": LOINC, "code": code}),
        Some(s) => json!({"system": format!("urn:oid:{s}"), "code": code}),
        None => json!({"code": code}),
    }
}

/// The codes of an Observation: the converted property's LOINC first (when converted between
/// properties), then the laboratory's own code. None when the value must stay as sent (a
/// conversion between properties with no code for the target property).
fn observation_codes(p: &Point, analyte: Option<&crate::catalogue::Analyte>) -> Option<Vec<Json>> {
    let source = p.sources.first()?;
    let own = source.code.as_deref().map(|c| coding(source.code_system.as_deref(), c));
    let from = source.original_unit.as_deref().and_then(units::property);
    let to = p.unit.as_deref().and_then(units::property);
    // A conversion through a molar mass (or the HbA1c equation) always changes what is
    // measured, even between units whose property this module cannot name (mg/g → mg/mmol):
    // then the value goes as sent rather than under a code of the other property.
    let property_rule = matches!(source.rule, Some(units::Rule::MolarMass | units::Rule::HbA1cMasterEquation));
    let changed_property = !p.derived && source.converted && (property_rule || (from.is_some() && to.is_some() && from != to));
    if !changed_property {
        return Some(own.into_iter().collect());
    }
    let to = to?;
    let target = match (source.code.as_deref(), source.code_system.as_deref()) {
        (Some(code), Some(system)) if system == oid::LOINC => catalogue::loinc_in_property(code, to),
        _ => analyte.and_then(|a| a.loinc_of_property(to)),
    }?;
    // The laboratory's code measures the other property: it goes with the original value (an
    // extension), never beside the converted one.
    Some(vec![json!({"system": LOINC, "code": target})])
}

fn not_performed_text(language: Language) -> &'static str {
    language.pick("Non réalisé", "Not performed")
}

struct Builder<'a> {
    ctx: &'a Context<'a>,
    catalogue: &'a Catalogue,
    documents: HashMap<&'a str, &'a DocumentEntry>,
    patient_ref: Json,
}

impl Builder<'_> {
    fn provenance(&self, p: &Point) -> Option<Provenance> {
        // The least trusted source decides: a point any upload gave is marked as such.
        p.sources.iter().filter_map(|s| self.documents.get(&*s.document)).map(|d| d.provenance).min_by_key(|p| p.rank())
    }

    fn observation(&self, p: &Point, name: &str, analyte: Option<&crate::catalogue::Analyte>, decimals: usize) -> Option<Resource> {
        let source = p.sources.first()?;
        let language = self.ctx.language;
        let id = if p.derived { fhir_id(&format!("egfr-{}", observation_id(source))) } else { observation_id(source) };
        // The laboratory's value as sent, when a converted one cannot be named coherently.
        let (mut codes, as_sent) = match observation_codes(p, analyte) {
            Some(codes) => (codes, false),
            None => (source.code.as_deref().map(|c| coding(source.code_system.as_deref(), c)).into_iter().collect(), true),
        };
        if p.derived
            && let Some(loinc) = analyte.and_then(|a| a.loinc.first())
        {
            codes = vec![json!({"system": LOINC, "code": loinc})];
        }
        let code_pairs: Vec<(String, String)> = codes
            .iter()
            .filter_map(|c| Some((c["system"].as_str().unwrap_or_default().to_string(), c["code"].as_str()?.to_string())))
            .collect();
        let mut code = Map::new();
        if !codes.is_empty() {
            code.insert("coding".into(), Json::Array(codes));
        }
        code.insert("text".into(), json!(name));
        let mut o = Map::new();
        o.insert("resourceType".into(), json!("Observation"));
        o.insert("id".into(), json!(id));
        // A computed eGFR carries the provenance of the creatinine it was computed from (its
        // sources are that creatinine's): computed from an uploaded value, it is marked uploaded.
        let m = meta(self.provenance(p), language);
        if m.as_object().is_some_and(|m| !m.is_empty()) {
            o.insert("meta".into(), m);
        }
        o.insert("language".into(), json!(language.code()));
        let not_performed = p.status == PointStatus::NotPerformed;
        o.insert("status".into(), json!(if not_performed { "cancelled" } else { "final" }));
        o.insert(
            "category".into(),
            json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}]),
        );
        o.insert("code".into(), Json::Object(code));
        o.insert("subject".into(), self.patient_ref.clone());
        if let Some(t) = &p.time {
            o.insert("effectiveDateTime".into(), json!(date_time(t)));
        }
        if let Some(lab) = p.laboratory.as_deref().filter(|_| !p.derived) {
            o.insert("performer".into(), json!([{"display": lab}]));
        }
        let mut extensions = Vec::new();
        if not_performed {
            o.insert(
                "dataAbsentReason".into(),
                json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed"}], "text": not_performed_text(language)}),
            );
        } else if as_sent {
            // The original value, unit and code: what the laboratory measured.
            let value = source.original_value.as_deref().map(|v| v.trim_start_matches(['<', '>', '≤', '≥', '=']));
            if let Some(q) = value.and_then(|v| quantity(v, source.original_unit.as_deref(), language)) {
                o.insert("valueQuantity".into(), with_comparator(q, p));
            }
        } else if let Some(value) = shown_value(p) {
            let mut q = quantity(&value, p.unit.as_deref(), language)?;
            q = with_comparator(q, p);
            o.insert("valueQuantity".into(), q);
            if source.converted && !p.derived {
                let original = source.original_value.as_deref().map(|v| v.trim_start_matches(['<', '>', '≤', '≥', '=']));
                let mut parts = Vec::new();
                if let Some(q) = original.and_then(|v| quantity(v, source.original_unit.as_deref(), language)) {
                    parts.push(json!({"url": "value", "valueQuantity": with_comparator(q, p)}));
                }
                if let Some(c) = source.code.as_deref() {
                    parts.push(json!({"url": "code", "valueCoding": coding(source.code_system.as_deref(), c)}));
                }
                if let Some(rule) = &source.rule {
                    parts.push(json!({"url": "conversion", "valueCode": rule.to_string()}));
                }
                extensions.push(json!({"url": ORIGINAL_RESULT_URL, "extension": parts}));
            }
        } else if let Some(text) = &p.text {
            o.insert("valueString".into(), json!(text));
        }
        if !extensions.is_empty() {
            o.insert("extension".into(), Json::Array(extensions));
        }
        if let Some(flag) = &p.flag {
            let mut i = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": &*flag.code}]});
            if flag.computed && p.value.is_none() {
                i["text"] = json!(language.pick(
                    "Calculé par Bioviewer d'après ce que dit le résultat (positif, négatif, anomalie)",
                    "Computed by Bioviewer from what the result says (positive, negative, abnormal finding)"
                ));
            } else if flag.computed {
                i["text"] = json!(language.pick(
                    "Calculé par Bioviewer d'après l'intervalle de référence du laboratoire",
                    "Computed by Bioviewer from the laboratory's reference range"
                ));
            }
            o.insert("interpretation".into(), json!([i]));
        }
        // A code contradicting the report's printed text: both said, never the reassuring one
        // alone.
        if let Some(text) = &p.discordant_text {
            let words = language.pick("Discordance : le texte du compte rendu dit", "Discrepancy: the report's text says");
            o.insert("note".into(), json!([{"text": format!("{words} « {text} »")}]));
        }
        if !as_sent {
            let mut range = Map::new();
            let unit = p.unit.as_deref();
            for (key, bound) in [("low", &p.reference_low), ("high", &p.reference_high)] {
                if let Some(q) = bound.as_ref().and_then(|b| quantity(&shown_bound(p, b, decimals), unit, language)) {
                    range.insert(key.into(), q);
                }
            }
            if let Some(text) = &p.reference_text {
                range.insert("text".into(), json!(text));
            }
            if !range.is_empty() {
                o.insert("referenceRange".into(), json!([range]));
            }
        }
        if let Some(method) = &p.method {
            o.insert("method".into(), json!({"text": method}));
        }
        if p.derived {
            o.insert("derivedFrom".into(), json!([{"reference": format!("Observation/{}", observation_id(source))}]));
            o.insert(
                "note".into(),
                json!([{"text": language.pick(
                    "Calculé par Bioviewer à partir de la créatinine (équation CKD-EPI 2021), non rendu par le laboratoire",
                    "Computed by Bioviewer from the creatinine (CKD-EPI 2021 equation), not reported by the laboratory"
                )}]),
            );
        }
        Some(Resource { resource_type: "Observation", id, json: Json::Object(o), codes: code_pairs, time: p.time })
    }
}

fn with_comparator(mut q: Json, p: &Point) -> Json {
    if let Some(c) = p.comparator {
        q["comparator"] = json!(c.ascii());
    }
    q
}

fn patient(history: &History, ctx: &Context<'_>) -> Option<Resource> {
    let p = history.patient.as_ref()?;
    let kind = match p.ins_root.as_str() {
        oid::INS_NIR => Some("INS-NIR"),
        oid::INS_NIR_TEST => Some("INS-NIR-TEST"),
        oid::INS_NIR_DEMO => Some("INS-NIR-DEMO"),
        _ => None,
    };
    let mut identifier = json!({"use": "official", "system": format!("urn:oid:{}", p.ins_root), "value": p.ins});
    if let Some(kind) = kind {
        identifier["type"] = json!({"coding": [{"system": FR_CORE_IDENTIFIER_TYPE, "code": kind}]});
    }
    let mut r = json!({
        "resourceType": "Patient",
        "id": fhir_id(ctx.patient_id),
        "language": ctx.language.code(),
        "identifier": [identifier],
    });
    let mut name = Map::new();
    name.insert("use".into(), json!("official"));
    if let Some(f) = &p.family_name {
        name.insert("family".into(), json!(f));
    }
    if let Some(g) = &p.given_name {
        name.insert("given".into(), json!([g]));
    }
    if name.len() > 1 {
        r["name"] = json!([name]);
    }
    if let Some(sex) = p.sex {
        r["gender"] = json!(match sex {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Undetermined => "unknown",
        });
    }
    if let Some(b) = &p.birth_date {
        r["birthDate"] = json!(b.date_string());
    }
    Some(Resource { resource_type: "Patient", id: fhir_id(ctx.patient_id), json: r, codes: Vec::new(), time: None })
}

fn report(d: &DocumentEntry, results: Vec<String>, collected: Option<CdaTime>, builder: &Builder<'_>) -> Resource {
    let language = builder.ctx.language;
    let id = fhir_id(&d.id);
    // A point-of-care rapid test (TROD) keeps its own document code; everything else here is a
    // laboratory report.
    let (code, text) = if d.kind == Some(crate::cda::DocumentKind::PointOfCareTest) {
        (crate::cda::RAPID_TEST_CODE, language.pick("Test rapide d'orientation diagnostique", "Point-of-care rapid test"))
    } else {
        (crate::cda::CR_BIO_CODE, language.pick("Compte rendu d'examens de biologie médicale", "Laboratory report"))
    };
    let mut r = json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "meta": meta(Some(d.provenance), language),
        "language": language.code(),
        "status": match d.report_status { Some(ReportStatus::Active) => "partial", _ => "final" },
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
        "code": {"coding": [{"system": LOINC, "code": code}], "text": text},
        "subject": builder.patient_ref,
    });
    // The CDA document's id: `root^extension`, or an OID alone.
    match d.cda_id.as_deref().map(|c| c.split_once('^').ok_or(c)) {
        Some(Ok((root, extension))) => r["identifier"] = json!([{"system": format!("urn:oid:{root}"), "value": extension}]),
        Some(Err(root)) => r["identifier"] = json!([{"system": "urn:ietf:rfc:3986", "value": format!("urn:oid:{root}")}]),
        None => {}
    }
    // The clinically relevant time is the samples' collection; the report's own time is when
    // it was issued.
    if let Some(t) = collected.as_ref().or(d.effective_time.as_ref()) {
        r["effectiveDateTime"] = json!(date_time(t));
    }
    if let Some(i) = d.effective_time.as_ref().and_then(instant) {
        r["issued"] = json!(i);
    }
    if let Some(lab) = &d.laboratory {
        r["performer"] = json!([{"display": lab}]);
    }
    if !results.is_empty() {
        r["result"] = Json::Array(results.iter().map(|id| json!({"reference": format!("Observation/{id}")})).collect());
    }
    r["presentedForm"] = json!([{
        "contentType": "application/xml",
        "url": (builder.ctx.document_url)(&d.id),
        "title": language.pick("Document CDA du laboratoire", "The laboratory's CDA document"),
    }]);
    Resource { resource_type: "DiagnosticReport", id, json: r, codes: vec![(LOINC.into(), code.into())], time: d.effective_time }
}

/// Every resource of the history: the patient, a report per current laboratory document, an
/// Observation per result (measured or derived).
pub fn resources<'h>(history: &'h History, catalogue: &Catalogue, ctx: &Context<'_>) -> Resources {
    let builder = Builder {
        ctx,
        catalogue,
        documents: history.documents.iter().map(|d| (d.id.as_str(), d)).collect(),
        patient_ref: json!({"reference": format!("Patient/{}", fhir_id(ctx.patient_id))}),
    };
    let mut observations = Vec::new();
    // Per document, its own results (not the previous results it repeats).
    let mut results: HashMap<&'h str, Vec<String>> = HashMap::new();
    // Per document, its earliest collection time.
    let mut collected: HashMap<&'h str, CdaTime> = HashMap::new();
    let mut add = |p: &'h Point, resource: Option<Resource>| {
        let Some(resource) = resource else { return };
        if !p.derived {
            for s in p.sources.iter().filter(|s| !s.previous_result) {
                if let Some(t) = p.time {
                    let earliest = collected.entry(&*s.document).or_insert(t);
                    if t.epoch_seconds() < earliest.epoch_seconds() {
                        *earliest = t;
                    }
                }
                let list = results.entry(&*s.document).or_default();
                if !list.contains(&resource.id) {
                    list.push(resource.id.clone());
                }
            }
        }
        observations.push(resource);
    };
    for s in &history.series {
        let analyte = builder.catalogue.by_id(&s.analyte);
        let name = ctx.language.pick(&s.name_fr, &s.name_en);
        for p in &s.points {
            add(p, builder.observation(p, name, analyte, s.decimals));
        }
    }
    for o in &history.other_results {
        let name = o.label.as_deref().or(o.code.as_deref()).unwrap_or("");
        for p in &o.points {
            add(p, builder.observation(p, name, None, 0));
        }
    }
    let reports = history
        .documents
        .iter()
        .filter(|d| d.status == DocumentState::Current && d.kind.is_some_and(|k| k.carries_results()))
        .map(|d| report(d, results.remove(d.id.as_str()).unwrap_or_default(), collected.get(d.id.as_str()).copied(), &builder))
        .collect();
    Resources { patient: patient(history, ctx), reports, observations }
}

/// A Bundle of `resources`: `collection` for an export, `searchset` for a search (with the
/// total and paging links given).
pub fn bundle<'r>(kind: &str, base: &str, entries: impl IntoIterator<Item = &'r Resource>, language: Language) -> Json {
    let entries: Vec<Json> = entries
        .into_iter()
        .map(|r| {
            let mut e = json!({"fullUrl": format!("{base}/{}/{}", r.resource_type, r.id), "resource": r.json});
            if kind == "searchset" {
                e["search"] = json!({"mode": "match"});
            }
            e
        })
        .collect();
    json!({"resourceType": "Bundle", "language": language.code(), "type": kind, "entry": entries})
}

/// The history as one FHIR R4 `collection` Bundle (the export): Patient, reports, Observations.
pub fn export_bundle(history: &History, catalogue: &Catalogue, ctx: &Context<'_>, base: &str) -> String {
    let r = resources(history, catalogue, ctx);
    to_string(&bundle("collection", base, r.all(), ctx.language))
}

/// What a receiver cannot detect by itself, checked on a Bundle as written (parsed back): every
/// Observation's LOINC code measures the property of its unit (and of its range), every
/// `dateTime` with a time of day has seconds and an offset, every reference to an Observation
/// or a Patient resolves inside the Bundle. Returns the problems found (empty: coherent).
pub fn coherence_problems(bundle: &Json) -> Vec<String> {
    let mut problems = Vec::new();
    let resources: Vec<&Json> = bundle["entry"].as_array().into_iter().flatten().map(|e| &e["resource"]).collect();
    let ids: std::collections::HashSet<String> =
        resources.iter().map(|r| format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""))).collect();
    for r in &resources {
        let id = format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""));
        for key in ["effectiveDateTime", "issued"] {
            if let Some(t) = r[key].as_str()
                && t.contains('T')
            {
                let (_, clock) = t.split_once('T').unwrap_or_default();
                let seconds = clock.len() >= 8 && clock.as_bytes()[5] == b':';
                let offset = clock.ends_with('Z') || clock[8.min(clock.len())..].contains(['+', '-']);
                if !seconds || !offset {
                    problems.push(format!("{id}: {key} {t} has no seconds or no offset"));
                }
            }
        }
        if r["resourceType"] == "Observation" {
            let loinc_properties: Vec<(&str, units::Property)> = r["code"]["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["system"] == LOINC)
                .filter_map(|c| {
                    let code = c["code"].as_str()?;
                    Some((code, catalogue::loinc_property(code)?))
                })
                .collect();
            let mut quantities: Vec<&Json> = vec![&r["valueQuantity"]];
            for range in r["referenceRange"].as_array().into_iter().flatten() {
                quantities.push(&range["low"]);
                quantities.push(&range["high"]);
            }
            for q in quantities.into_iter().filter(|q| q.is_object()) {
                let unit_property = q["code"].as_str().and_then(units::property);
                for (code, property) in &loinc_properties {
                    if unit_property.is_some_and(|u| u != *property) {
                        problems.push(format!("{id}: LOINC {code} ({}) beside a value in {}", property.loinc(), q["code"]));
                    }
                }
            }
        }
        for reference in [&r["subject"], &r["derivedFrom"][0]].into_iter().chain(r["result"].as_array().into_iter().flatten()) {
            if let Some(target) = reference["reference"].as_str()
                && !ids.contains(target)
            {
                problems.push(format!("{id}: reference {target} is not in the bundle"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{EMBEDDED_TRANSCODING, Transcoding};
    use crate::cda::{Report, parse, writer::write_cr_bio};
    use crate::normalise::{InputDocument, Options, normalise};

    /// Where `make test` asks the tests to leave every Bundle they produce, for the FHIR
    /// validator (`end2end/fhir/validate.py`) to check against the specification.
    pub(crate) fn keep_for_validation(name: &str, text: &str) {
        if let Some(dir) = std::env::var_os("BIOVIEWER_FHIR_OUT") {
            let dir = std::path::Path::new(&dir);
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("core-{name}.json")), text).unwrap();
        }
    }

    fn demo_histories() -> Vec<(History, Vec<String>)> {
        let end = CdaTime::parse_hl7("20261101").unwrap().epoch_seconds() / 86_400;
        let docs = crate::demo::generate(6, 3, 5, end);
        let catalogue = Catalogue::embedded();
        let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        let mut out = Vec::new();
        for ins in docs.iter().map(|d| d.patient.clone()).collect::<std::collections::BTreeSet<_>>() {
            let reports: Vec<Report> =
                docs.iter().filter(|d| d.patient == ins).map(|d| parse(write_cr_bio(&d.report).as_bytes()).unwrap()).collect();
            // The last document came as an upload: exported, but marked as such.
            let last = reports.len() - 1;
            let inputs: Vec<InputDocument<'_>> = reports
                .iter()
                .enumerate()
                .map(|(i, r)| InputDocument {
                    id: format!("00000000-0000-4000-8000-{i:012}"),
                    report: Ok(r),
                    provenance: if i == last { Provenance::Upload } else { Provenance::Dmp },
                })
                .collect();
            let uploads = vec![inputs[last].id.clone()];
            out.push((normalise(&inputs, &catalogue, &transcoding, &Options::default()), uploads));
        }
        out
    }

    fn ctx(language: Language) -> Context<'static> {
        Context { patient_id: "11111111-2222-4333-8444-555555555555", language, document_url: &|d| format!("/api/documents/{d}.xml") }
    }

    #[test]
    fn demo_bundles_are_coherent_and_keep_the_laboratory_precision() {
        let catalogue = Catalogue::embedded();
        let mut converted_creatinine = 0;
        let mut egfr = 0;
        for (n, (history, uploads)) in demo_histories().iter().enumerate() {
            for language in [Language::French, Language::English] {
                let text = export_bundle(history, &catalogue, &ctx(language), "http://localhost/fhir");
                keep_for_validation(&format!("demo-{n}-{}", language.code()), &text);
                let bundle: Json = serde_json::from_str(&text).unwrap();
                assert_eq!(coherence_problems(&bundle), Vec::<String>::new());
                // No number with the digits of a binary computation.
                for number in text.split(['{', ',']).filter_map(|f| f.strip_prefix("\"value\":")) {
                    let number = number.trim_end_matches(['}', ']']);
                    let decimals = number.split_once('.').map_or(0, |(_, f)| f.len());
                    assert!(decimals <= 3, "{number} in {text:.200}");
                }
                let resources: Vec<&Json> = bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).collect();
                let patients: Vec<_> = resources.iter().filter(|r| r["resourceType"] == "Patient").collect();
                assert_eq!(patients.len(), 1);
                assert_eq!(patients[0]["identifier"][0]["system"], "urn:oid:1.2.250.1.213.1.4.10");
                assert_eq!(patients[0]["identifier"][0]["type"]["coding"][0]["code"], "INS-NIR-TEST");
                let current = history.documents.iter().filter(|d| d.status == DocumentState::Current).count();
                let reports: Vec<_> = resources.iter().filter(|r| r["resourceType"] == "DiagnosticReport").collect();
                assert_eq!(reports.len(), current);
                for r in &reports {
                    let uploaded = uploads.iter().any(|u| r["id"] == u.as_str());
                    assert_eq!(r["meta"]["tag"][0]["code"], if uploaded { "upload" } else { "dmp" });
                    assert!(r["result"].as_array().is_some_and(|a| !a.is_empty()) || uploaded);
                    assert!(r["presentedForm"][0]["url"].as_str().unwrap().ends_with(".xml"));
                }
                for o in resources.iter().filter(|r| r["resourceType"] == "Observation") {
                    let codes: Vec<&str> = o["code"]["coding"].as_array().unwrap().iter().map(|c| c["code"].as_str().unwrap()).collect();
                    if codes.contains(&"14682-9") && o["extension"].is_array() {
                        // Converted from mg/L: the molar code, the laboratory's kept with its value.
                        assert_eq!(codes, ["14682-9"]);
                        assert_eq!(o["valueQuantity"]["code"], "umol/L");
                        let original = &o["extension"][0];
                        assert_eq!(original["url"], ORIGINAL_RESULT_URL);
                        assert_eq!(original["extension"][0]["valueQuantity"]["code"], "mg/L");
                        assert_eq!(original["extension"][1]["valueCoding"]["code"], "2160-0");
                        assert_eq!(original["extension"][2]["valueCode"], "molar_mass");
                        assert_eq!(o["code"]["text"], language.pick("Créatinine", "Creatinine"));
                        converted_creatinine += 1;
                    }
                    if codes == ["98979-8"] {
                        let from = o["derivedFrom"][0]["reference"].as_str().unwrap();
                        let creatinine = resources.iter().find(|r| format!("Observation/{}", r["id"].as_str().unwrap()) == from).unwrap();
                        assert!(creatinine["code"]["coding"].as_array().unwrap().iter().any(|c| c["code"] == "14682-9" || c["code"] == "2160-0"));
                        assert_eq!(o["method"]["text"], "CKD-EPI 2021");
                        assert!(o["valueQuantity"]["value"].as_f64().unwrap().fract() == 0.0);
                        egfr += 1;
                    }
                    // A value converted through a molar mass never keeps the laboratory's code
                    // of the other property (mg/g ACR 9318-7 beside a mg/mmol value).
                    if o["extension"][0]["extension"][2]["valueCode"] == "molar_mass" {
                        let original = o["extension"][0]["extension"][1]["valueCoding"]["code"].as_str().unwrap_or_default();
                        assert!(!codes.contains(&original), "{original} beside a converted value: {o}");
                    }
                    assert!(o["meta"]["tag"][0]["code"].is_string(), "every Observation, eGFR included, says its provenance: {o}");
                    let uploaded = o["meta"]["tag"][0]["code"] == "upload";
                    let from_upload = resources
                        .iter()
                        .filter(|r| r["resourceType"] == "DiagnosticReport" && uploads.iter().any(|u| r["id"] == u.as_str()))
                        .any(|r| r["result"].as_array().into_iter().flatten().any(|x| x["reference"] == format!("Observation/{}", o["id"].as_str().unwrap())));
                    assert!(!from_upload || uploaded, "an uploaded result is marked");
                }
            }
        }
        assert!(converted_creatinine > 0 && egfr > 0, "{converted_creatinine} {egfr}");
    }

    #[test]
    fn date_times_have_seconds_and_an_offset_or_only_a_date() {
        assert_eq!(date_time(&CdaTime::parse_hl7("202312040745+0100").unwrap()), "2023-12-04T07:45:00+01:00");
        assert_eq!(date_time(&CdaTime::parse_hl7("20231204074512+0000").unwrap()), "2023-12-04T07:45:12Z");
        assert_eq!(date_time(&CdaTime::parse_hl7("202312040745").unwrap()), "2023-12-04", "no offset: the date only");
        assert_eq!(date_time(&CdaTime::parse_hl7("20231204").unwrap()), "2023-12-04");
        assert_eq!(instant(&CdaTime::parse_hl7("20231204").unwrap()), None);
    }

    #[test]
    fn decimals_are_written_as_the_laboratory_wrote_them() {
        let tree = json!({"a": decimal("1.10").unwrap(), "b": decimal(".5").unwrap(), "c": decimal("+007").unwrap(), "d": "x"});
        assert_eq!(to_string(&tree), r#"{"a":1.10,"b":0.5,"c":7,"d":"x"}"#);
        assert_eq!(decimal("1.2.3"), None);
        // Text that imitates the marker stays text.
        assert_eq!(to_string(&json!({DECIMAL_KEY: "1; alert(1)"})), r#""1; alert(1)""#);
    }

    #[test]
    fn corpus_bundle_keeps_comparators_local_codes_and_text_in_the_language() {
        let reports = [
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_TSH_1.xml"),
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_CRP_non_LOINC.xml"),
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_Glycémie deux unités principales_mole_masse.xml"),
            crate::cda::tests::corpus("BIO-CR-BIO_2021.01_CR-2nde-intention.xml"),
        ];
        let catalogue = Catalogue::embedded();
        let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        let inputs: Vec<_> = reports
            .iter()
            .enumerate()
            .map(|(i, r)| InputDocument { id: format!("d{i}"), report: Ok(r), provenance: Provenance::Operator })
            .collect();
        let options = Options { patient_ins: Some("279035121518989".into()), ..Options::default() };
        let history = normalise(&inputs, &catalogue, &transcoding, &options);
        let text = export_bundle(&history, &catalogue, &ctx(Language::French), "http://localhost/fhir");
        keep_for_validation("corpus-fr", &text);
        let bundle: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(coherence_problems(&bundle), Vec::<String>::new());
        let observations: Vec<&Json> =
            bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).filter(|r| r["resourceType"] == "Observation").collect();
        let tsh = observations.iter().find(|r| r["code"]["coding"][0]["code"] == "3016-3").unwrap();
        assert_eq!(tsh["code"]["text"], "TSH");
        assert_eq!(tsh["valueQuantity"]["code"], "m[IU]/L");
        assert_eq!(tsh["referenceRange"][0]["high"]["value"], 4.2);
        assert_eq!(tsh["performer"][0]["display"], "Laboratoire des charmes");
        assert_eq!(tsh["meta"]["tag"][0]["code"], "operator");
        assert!(tsh["effectiveDateTime"].as_str().unwrap().len() >= 19);
        let crp = observations.iter().find(|r| r["valueQuantity"]["comparator"] == "<=").unwrap();
        assert_eq!(crp["code"]["coding"].as_array().unwrap().last().unwrap()["system"], "urn:oid:1.2.250.1.2.3.4");
        assert!(text.contains(r#""comparator":"<=""#) && text.contains(r#""unit":"mg/L","value":1.0}"#), "the literal 1.0 is kept");
    }

    #[test]
    fn a_rapid_test_is_a_report_of_its_own_kind_with_its_positive_result_flagged() {
        let reports = [crate::cda::tests::corpus("BIO-TROD_2024.01_COVID-19_Grippe-A_Grippe-B.xml")];
        let catalogue = Catalogue::embedded();
        let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        let inputs: Vec<_> =
            reports.iter().map(|r| InputDocument { id: "d0".into(), report: Ok(r), provenance: Provenance::Dmp }).collect();
        let history = normalise(&inputs, &catalogue, &transcoding, &Options::default());
        let text = export_bundle(&history, &catalogue, &ctx(Language::English), "http://localhost/fhir");
        keep_for_validation("trod-en", &text);
        let bundle: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(coherence_problems(&bundle), Vec::<String>::new());
        let resources: Vec<&Json> = bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).collect();
        let report = resources.iter().find(|r| r["resourceType"] == "DiagnosticReport").unwrap();
        assert_eq!(report["code"]["coding"][0]["code"], "96173-0", "a rapid test, not a laboratory report");
        assert_eq!(report["result"].as_array().unwrap().len(), 3);
        let flu_b = resources.iter().find(|r| r["resourceType"] == "Observation" && r["code"]["coding"][0]["code"] == "80383-3").unwrap();
        assert_eq!(flu_b["interpretation"][0]["coding"][0]["code"], "POS");
        assert!(flu_b["interpretation"][0]["text"].as_str().unwrap().contains("what the result says"));
        assert!(flu_b["note"][0]["text"].as_str().unwrap().contains("positif"), "{flu_b}");
        assert!(flu_b["valueString"].is_string());
    }
}
