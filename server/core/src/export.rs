//! Exports of a normalised history, from the same data the screen shows.
//!
//! - [`csv`]: one line per result (per source), RFC 4180, UTF-8, for spreadsheets and audits.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Catalogue, EMBEDDED_TRANSCODING, Transcoding};
    use crate::normalise::{InputDocument, Options, normalise};

    #[test]
    fn one_line_per_source_with_originals_and_quoting() {
        let reports = [
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_TSH_1.xml"),
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_TSH_2.xml"),
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_CRP_non_LOINC.xml"),
        ];
        let catalogue = Catalogue::embedded();
        let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        let inputs: Vec<_> = reports.iter().enumerate().map(|(i, r)| InputDocument { id: format!("doc, {i}"), report: Ok(r) }).collect();
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
