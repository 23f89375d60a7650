//! Exports of a normalised history, from the same data the screen shows.
//!
//! - [`csv`]: one line per result (per source), RFC 4180, UTF-8, for spreadsheets and audits.
//! - [`fhir_bundle`]: a FHIR R4 `Bundle` (type `collection`) of laboratory `Observation`s.

use serde_json::{Value as Json, json};

use crate::cda::oid;
use crate::normalise::{History, Point, PointStatus};

fn field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
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
