//! Normalisation rules, on documents written by the CR-BIO writer and read back by the parser,
//! and on the shared corpus.

use super::*;
use crate::catalogue::{EMBEDDED_TRANSCODING, Transcoding};
use crate::cda::writer::write_cr_bio;
use crate::cda::*;

const INS: &str = "279035121518989";
const OTHER_INS: &str = "180124562302465";

fn code(loinc: &str) -> Code {
    Code { code: Some(loinc.into()), system: Some(oid::LOINC.into()), ..Code::default() }
}

fn time(s: &str) -> CdaTime {
    CdaTime::parse_hl7(s).unwrap()
}

fn q(value: &str, unit: &str) -> Value {
    Value::Quantity(Quantity { value: Decimal::parse(value).unwrap(), unit: Some(unit.into()) })
}

/// A result: code, value, collection day, optional flag and range.
struct R {
    code: Code,
    value: Option<Value>,
    aborted: bool,
    flag: Option<&'static str>,
    range: Option<(&'static str, &'static str, &'static str)>,
    previous: Vec<(&'static str, Value)>,
}

fn r(loinc: &str, value: Value) -> R {
    R { code: code(loinc), value: Some(value), aborted: false, flag: None, range: None, previous: Vec::new() }
}

struct Doc {
    set: &'static str,
    version: u32,
    status: ReportStatus,
    lab: &'static str,
    ins: &'static str,
    day: &'static str,
    results: Vec<R>,
}

fn doc(lab: &'static str, day: &'static str, results: Vec<R>) -> Doc {
    Doc { set: day, version: 1, status: ReportStatus::Completed, lab, ins: INS, day, results }
}

/// Writes the document as CR-BIO XML and parses it back: the normaliser sees what it would see
/// from a laboratory.
fn report(d: &Doc) -> Report {
    let laboratory = Organization {
        id: Some(InstanceId { root: oid::STRUCTURE.into(), extension: Some(format!("{}0", d.lab.len())) }),
        name: Some(d.lab.into()),
    };
    let collected = time(&format!("{}0800+0100", d.day));
    let mut observations = Vec::new();
    for spec in &d.results {
        let index = observations.len();
        let base = Observation {
            index,
            previous_of: None,
            chapter: Some(code("18719-5")),
            sub_chapter: None,
            battery: None,
            isolate: None,
            code: spec.code.clone(),
            status: if spec.aborted { ResultStatus::Aborted } else { ResultStatus::Completed },
            value: spec.value.clone(),
            interpretation: spec
                .flag
                .map(|f| vec![Code { code: Some(f.into()), system: Some(oid::INTERPRETATION.into()), ..Code::default() }])
                .unwrap_or_default(),
            method: None,
            reference_ranges: spec
                .range
                .map(|(low, high, unit)| {
                    vec![ReferenceRange {
                        low: Some(Quantity { value: Decimal::parse(low).unwrap(), unit: Some(unit.into()) }),
                        high: Some(Quantity { value: Decimal::parse(high).unwrap(), unit: Some(unit.into()) }),
                        text: None,
                        precondition: None,
                    }]
                })
                .unwrap_or_default(),
            effective_time: Some(time(&format!("{}1000+0100", d.day))),
            collection_time: None,
            collection_time_source: None,
            performer: None,
            performer_overridden: false,
            specimen: None,
            comments: Vec::new(),
        };
        observations.push(base.clone());
        for (day, value) in &spec.previous {
            let i = observations.len();
            observations.push(Observation {
                index: i,
                previous_of: Some(index),
                value: Some(value.clone()),
                effective_time: Some(time(&format!("{day}0800+0100"))),
                interpretation: Vec::new(),
                reference_ranges: Vec::new(),
                status: ResultStatus::Completed,
                ..base.clone()
            });
        }
    }
    let report = Report::structured(
        Header {
            id: Some(InstanceId { root: "1.2.250.1.999.1".into(), extension: Some(format!("{}-{}", d.set, d.version)) }),
            set_id: Some(InstanceId { root: "1.2.250.1.999.2".into(), extension: Some(d.set.into()) }),
            version_number: Some(d.version),
            effective_time: Some(time(&format!("{}1700+0100", d.day))),
            status: Some(d.status),
            laboratory: Some(laboratory),
            sampler: Some(Professional { time: Some(collected), ..Professional::default() }),
            patient: Some(Patient::with_id(
                oid::INS_NIR_TEST,
                d.ins,
                PersonName { family: Some("TEST".into()), given: vec!["ALICE".into()], ..PersonName::default() },
                Some(time("19760315")),
                Some(Sex::Female),
            )),
            ..Header::default()
        },
        observations,
    );
    parse(write_cr_bio(&report).as_bytes()).expect("a written report parses")
}

fn history(docs: &[Doc]) -> History {
    let reports: Vec<Report> = docs.iter().map(report).collect();
    history_of(&reports, &Options::default())
}

fn history_of(reports: &[Report], options: &Options) -> History {
    let catalogue = Catalogue::embedded();
    let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
    let inputs: Vec<InputDocument<'_>> = reports
        .iter()
        .enumerate()
        .map(|(i, r)| InputDocument { id: format!("doc{i}"), report: Ok(r), provenance: Provenance::Operator })
        .collect();
    normalise(&inputs, &catalogue, &transcoding, options)
}

fn series<'h>(h: &'h History, analyte: &str) -> &'h Series {
    h.series
        .iter()
        .find(|s| s.analyte == analyte)
        .unwrap_or_else(|| panic!("no {analyte} series in {:?}", h.series.iter().map(|s| &s.analyte).collect::<Vec<_>>()))
}

#[test]
fn mass_and_molar_units_from_two_labs_make_one_series() {
    let h = history(&[
        doc("Lab A", "20240105", vec![r("14749-6", q("5.50", "mmol/L"))]),
        doc("Lab B", "20240305", vec![r("2345-7", q("0.99", "g/L"))]),
    ]);
    let s = series(&h, "glucose");
    assert_eq!(s.unit.as_deref(), Some("mmol/L"));
    assert_eq!(s.points.len(), 2);
    assert_eq!(s.points[0].display.as_deref(), Some("5.50"));
    let converted = &s.points[1];
    assert_eq!(converted.display.as_deref(), Some("5.50"), "0.99 g/L of glucose is 5.50 mmol/L");
    let source = &converted.sources[0];
    assert_eq!((source.original_value.as_deref(), source.original_unit.as_deref()), (Some("0.99"), Some("g/L")));
    assert_eq!(source.rule, Some(Rule::MolarMass));
    assert!(source.converted);
    assert!(converted.comparability.laboratory, "the laboratory changed");
}

#[test]
fn giga_per_litre_is_ten_to_the_ninth() {
    let h = history(&[doc("Lab A", "20240105", vec![r("6690-2", q("8.2", "G/L"))])]);
    let p = &series(&h, "leukocytes").points[0];
    // Shown with the laboratory's own precision: never padded to look more precise.
    assert_eq!((p.display.as_deref(), p.unit.as_deref()), (Some("8.2"), Some("10*9/L")));
    assert_eq!(p.sources[0].original_unit.as_deref(), Some("G/L"));
    assert_eq!(p.sources[0].rule, Some(Rule::Alias));
    assert!(p.sources[0].converted, "the unit shown is not the one written");
}

#[test]
fn one_measurement_in_two_units_is_one_point() {
    let h = history(&[doc("Lab A", "20240105", vec![r("40193-5", q("4.89", "mmol/L")), r("53049-3", q("0.88", "g/L"))])]);
    let s = series(&h, "glucose_fasting");
    assert_eq!(s.points.len(), 1);
    assert_eq!(s.points[0].sources.len(), 2);
    assert_eq!(s.points[0].display.as_deref(), Some("4.89"), "the value already in mmol/L is kept");
    assert_eq!(s.loinc_seen, ["40193-5", "53049-3"]);
}

#[test]
fn a_previous_result_repeated_in_a_later_report_is_one_point_with_two_sources() {
    let mut later = r("14682-9", q("85", "umol/L"));
    later.previous = vec![("20240105", q("80", "umol/L"))];
    let h = history(&[doc("Lab A", "20240105", vec![r("14682-9", q("80", "umol/L"))]), doc("Lab A", "20240605", vec![later])]);
    let s = series(&h, "creatinine");
    assert_eq!(s.points.len(), 2, "{:#?}", s.points);
    assert_eq!(s.points[0].sources.len(), 2);
    assert!(s.points[0].sources.iter().any(|src| src.previous_result));
    assert!(s.points[0].sources.iter().any(|src| !src.previous_result), "the original report is a source");
}

#[test]
fn only_the_latest_version_counts_and_the_partial_one_is_listed_replaced() {
    let mut partial = doc("Lab A", "20240105", vec![r("2823-3", q("4.1", "mmol/L"))]);
    partial.status = ReportStatus::Active;
    let mut complete = doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L")), r("2951-2", q("140", "mmol/L"))]);
    complete.version = 2;
    let h = history(&[partial, complete]);
    assert_eq!(h.documents[0].status, DocumentState::Replaced);
    assert!(h.documents[0].problems[0].contains("partial"));
    assert_eq!(h.documents[1].status, DocumentState::Current);
    let k = series(&h, "potassium");
    assert_eq!(k.points.len(), 1);
    assert_eq!(k.points[0].display.as_deref(), Some("4.2"));
}

#[test]
fn censored_and_aborted_results_are_never_plotted_as_numbers() {
    let censored = r(
        "1988-5",
        Value::Censored {
            comparator: Comparator::LessOrEqual,
            quantity: Quantity { value: Decimal::parse("1.0").unwrap(), unit: Some("mg/L".into()) },
        },
    );
    let mut aborted = r("2823-3", q("9.9", "mmol/L"));
    aborted.aborted = true;
    let h = history(&[doc("Lab A", "20240105", vec![censored, aborted])]);
    let crp = &series(&h, "crp").points[0];
    assert_eq!(crp.comparator, Some(Comparator::LessOrEqual));
    assert_eq!(crp.plottable(), None);
    assert_eq!(crp.sources[0].original_value.as_deref(), Some("≤1.0"));
    let k = &series(&h, "potassium").points[0];
    assert_eq!(k.status, PointStatus::NotPerformed);
    assert_eq!(k.value, None, "no number for a result not performed");
    assert_eq!(k.text.as_deref(), Some("not performed"));
}

#[test]
fn local_codes_map_through_the_transcoding_table_and_unknown_ones_stay_visible() {
    let local = R {
        code: Code {
            original_text: Some("CRP".into()),
            translations: vec![Code { code: Some("1234".into()), system: Some("1.2.250.1.2.3.4".into()), ..Code::default() }],
            ..Code::default()
        },
        value: Some(q("3.0", "mg/L")),
        aborted: false,
        flag: None,
        range: None,
        previous: Vec::new(),
    };
    let unknown = R {
        code: Code {
            code: Some("XYZ".into()), system: Some("1.2.250.1.2.3.4".into()), display: Some("Mystère".into()), ..Code::default()
        },
        ..r("1-8", q("7", "U/L"))
    };
    let h = history(&[doc("Lab A", "20240105", vec![local, unknown])]);
    assert_eq!(series(&h, "crp").points[0].display.as_deref(), Some("3.0"));
    assert_eq!(h.other_results.len(), 1);
    let other = &h.other_results[0];
    assert_eq!((other.code.as_deref(), other.label.as_deref()), (Some("XYZ"), Some("Mystère")));
    assert_eq!(other.points[0].display.as_deref(), Some("7"), "its value is kept");
}

#[test]
fn another_patients_document_is_rejected_not_merged() {
    let mut stranger = doc("Lab B", "20240205", vec![r("2823-3", q("6.5", "mmol/L"))]);
    stranger.ins = OTHER_INS;
    let h = history(&[
        doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L"))]),
        doc("Lab A", "20240305", vec![r("2823-3", q("4.3", "mmol/L"))]),
        stranger,
    ]);
    assert_eq!(h.patient.as_ref().unwrap().ins, INS);
    assert_eq!(h.documents[2].status, DocumentState::Rejected);
    assert!(h.documents[2].problems[0].contains("another patient"));
    assert_eq!(h.documents[2].problem_codes, vec![DocumentProblem::AnotherPatient], "said as data too");
    assert_eq!(series(&h, "potassium").points.len(), 2, "6.5 never shows");
    let reports: Vec<Report> = [doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L"))])].iter().map(report).collect();
    let h = history_of(&reports, &Options { patient_ins: Some(OTHER_INS.into()), ..Options::default() });
    assert!(h.series.is_empty());
    assert_eq!(h.documents[0].status, DocumentState::Rejected);
}

#[test]
fn flags_come_from_the_laboratory_or_are_computed_and_said_so() {
    let mut flagged = r("2823-3", q("5.9", "mmol/L"));
    flagged.flag = Some("H");
    let mut ranged = r("2951-2", q("131", "mmol/L"));
    ranged.range = Some(("135", "145", "mmol/L"));
    let h = history(&[doc("Lab A", "20240105", vec![flagged, ranged])]);
    assert_eq!(series(&h, "potassium").points[0].flag, Some(Flag { code: "H".into(), computed: false }));
    let na = &series(&h, "sodium").points[0];
    assert_eq!(na.flag, Some(Flag { code: "L".into(), computed: true }));
    assert_eq!(
        (na.reference_low.as_ref().map(Decimal::as_str), na.reference_high.as_ref().map(Decimal::as_str)),
        (Some("135"), Some("145"))
    );
}

/// Review finding: two results of one sampling (a report repeating a value corrected the same
/// day) read as a significant change between them.
#[test]
fn results_of_one_sampling_are_never_a_change_over_time() {
    let h = history(&[
        doc("Lab A", "20240105", vec![r("14682-9", q("80", "umol/L"))]),
        doc("Lab A", "20240305", vec![r("14682-9", q("120", "umol/L"))]),
        Doc { set: "another report of the day", ..doc("Lab A", "20240305", vec![r("14682-9", q("81", "umol/L"))]) },
    ]);
    let s = series(&h, "creatinine");
    let on_the_day: Vec<_> = s.points.iter().filter(|p| p.time == s.points.last().unwrap().time).collect();
    assert_eq!(on_the_day.len(), 2, "both results of the day are kept");
    for p in on_the_day {
        let value = p.value.as_ref().unwrap().as_str().to_string();
        let expected = if value == "120" { Some(Direction::Up) } else { None };
        assert_eq!(p.significant_change, expected, "{value}: compared with 80 of January, not with the other result of its day");
    }
}

#[test]
fn significant_change_beyond_the_reference_change_value() {
    let h = history(&[
        doc("Lab A", "20240105", vec![r("14682-9", q("80", "umol/L"))]),
        doc("Lab A", "20240205", vec![r("14682-9", q("82", "umol/L"))]),
        doc("Lab A", "20240305", vec![r("14682-9", q("120", "umol/L"))]),
    ]);
    let s = series(&h, "creatinine");
    assert_eq!(s.points[1].significant_change, None, "2.5% is within the RCV");
    assert_eq!(s.points[2].significant_change, Some(Direction::Up), "+46% is beyond it");
}

#[test]
fn egfr_is_derived_from_creatinine_when_the_laboratory_gave_none() {
    // Woman born 1976-03-15, creatinine 79.6 µmol/L (0.9 mg/dL) on 2024-01-05: age 47.8.
    let h = history(&[doc("Lab A", "20240105", vec![r("14682-9", q("79.6", "umol/L"))])]);
    let egfr = &series(&h, "egfr_ckd_epi_2021").points[0];
    assert!(egfr.derived);
    let age = (time("202401050800+0100").epoch_seconds() - time("19760315").epoch_seconds()) as f64 / (365.2425 * 86400.0);
    let scr = 79.6 / 88.4017;
    let expected = 142.0 * (scr / 0.7f64).powf(-1.2) * 0.9938f64.powf(age) * 1.012;
    assert!((egfr.value.as_ref().unwrap().to_f64() - expected).abs() < 0.1, "{:?} vs {expected}", egfr.value);
    let reported = history(&[doc("Lab A", "20240105", vec![r("14682-9", q("79.6", "umol/L")), r("62238-1", q("80", "mL/min/{1.73_m2}"))])]);
    assert!(reported.series.iter().all(|s| s.analyte != "egfr_ckd_epi_2021"), "the laboratory's own eGFR is enough");
}

#[test]
fn an_unconvertible_unit_keeps_the_original_and_says_why() {
    let h = history(&[doc("Lab A", "20240105", vec![r("14682-9", q("9", "bananas/L"))])]);
    let p = &series(&h, "creatinine").points[0];
    assert!(!p.in_display_unit);
    assert_eq!((p.display.as_deref(), p.unit.as_deref()), (Some("9"), Some("bananas/L")));
    assert!(p.sources[0].not_converted.as_deref().unwrap().contains("unknown unit"));
    // The same reason as data, for pages that say it in the reader's language.
    assert_eq!(p.sources[0].not_converted_reason, Some(crate::units::UnitError::Unknown("bananas/L".into())));
    assert_eq!(p.plottable(), None);
}

#[test]
fn conventional_units_on_request() {
    let reports: Vec<Report> = [doc("Lab A", "20240105", vec![r("14749-6", q("5.50", "mmol/L"))])].iter().map(report).collect();
    let h = history_of(&reports, &Options { unit_system: UnitSystem::Conventional, ..Options::default() });
    let s = series(&h, "glucose");
    assert_eq!(s.unit.as_deref(), Some("g/L"));
    assert_eq!(s.points[0].display.as_deref(), Some("0.99"));
}

fn corpus(name: &str) -> Report {
    crate::cda::tests::corpus(name)
}

#[test]
fn corpus_tsh_from_two_labs_is_one_series() {
    let reports = [corpus("BIO-CR-BIO_2024.01_TSH_1.xml"), corpus("BIO-CR-BIO_2024.01_TSH_2.xml")];
    let h = history_of(&reports, &Options::default());
    let tsh = series(&h, "tsh");
    assert_eq!(tsh.points.len(), 2, "{:#?}", tsh.points);
    let labs: std::collections::BTreeSet<_> = tsh.points.iter().filter_map(|p| p.laboratory.clone()).collect();
    assert_eq!(labs.len(), 2);
    assert_eq!(tsh.loinc_seen, ["29575-8", "3016-3"]);
}

#[test]
fn corpus_glucose_documents_give_one_series_and_the_crp_lands_in_its_analyte() {
    let reports = [
        corpus("BIO-CR-BIO_2024.01_Glycémie mole.xml"),
        corpus("BIO-CR-BIO_2024.01_Glycémie deux unités principales_mole_masse.xml"),
        corpus("BIO-CR-BIO_2024.01_CRP_non_LOINC.xml"),
    ];
    let h = history_of(&reports, &Options::default());
    let glucose: Vec<_> = h.series.iter().filter(|s| s.analyte.starts_with("glucose")).collect();
    assert_eq!(glucose.len(), 1, "one glucose series");
    assert_eq!(series(&h, "crp").points[0].comparator, Some(Comparator::LessOrEqual));
}

#[test]
fn the_whole_corpus_normalises_without_losing_a_result() {
    let dir = crate::cda::tests::corpus_dir();
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    names.sort();
    let reports: Vec<Report> = names.iter().map(|n| corpus(n)).collect();
    let h = history_of(&reports, &Options::default());
    let current_results: usize =
        h.documents.iter().zip(&reports).filter(|(d, _)| d.status == DocumentState::Current).map(|(_, r)| r.observations.len()).sum();
    let sources: usize = h.series.iter().flat_map(|s| &s.points).filter(|p| !p.derived).map(|p| p.sources.len()).sum::<usize>()
        + h.other_results.iter().flat_map(|o| &o.points).map(|p| p.sources.len()).sum::<usize>();
    assert_eq!(sources, current_results, "every result of every current document is a source somewhere");
    assert!(h.documents.iter().any(|d| d.status == DocumentState::Replaced), "microbiology V1 is replaced by V2");
    assert!(h.documents.iter().filter(|d| d.status == DocumentState::Rejected).all(|d| d.problems[0].contains("CR-BIO")));
}

#[test]
fn the_history_json_reads_back() {
    let h = history(&[
        doc("Lab A", "20240105", vec![r("14749-6", q("5.50", "mmol/L")), r("1-8", q("7", "U/L"))]),
        doc("Lab B", "20240305", vec![r("2345-7", q("0.99", "g/L"))]),
    ]);
    let json = serde_json::to_string(&h).unwrap();
    let back: History = serde_json::from_str(&json).unwrap();
    assert_eq!(back, h);
}

#[test]
fn enzyme_activities_in_international_units_are_enzyme_units() {
    // French laboratories (and the agency's own samples) write ALT in "UI/L" or "[IU]/L":
    // the international unit of enzyme activity, i.e. U/L; not the WHO unit of TSH's mUI/L.
    let h = history(&[doc(
        "Lab A",
        "20240105",
        vec![r("1742-6", q("49", "[IU]/L")), r("1920-8", q("30", "UI/L")), r("3016-3", q("1.2", "mUI/L"))],
    )]);
    let alt = &series(&h, "alt").points[0];
    assert!(alt.in_display_unit);
    assert_eq!((alt.display.as_deref(), alt.unit.as_deref()), (Some("49"), Some("U/L")));
    assert_eq!(alt.sources[0].rule, Some(Rule::EnzymeInternationalUnit));
    assert!(series(&h, "ast").points[0].in_display_unit);
    let tsh = &series(&h, "tsh").points[0];
    assert_eq!(tsh.sources[0].rule, Some(Rule::Alias), "mUI/L stays the WHO unit");
}

#[test]
fn a_generated_ten_year_history_normalises_cleanly() {
    // Every habit of the generated laboratories must be understood: no result lost to "other
    // results", no value left unconverted, one series per analyte whatever the code or unit.
    let end = CdaTime::parse_hl7("20261101").unwrap().epoch_seconds() / 86_400;
    let docs = crate::demo::generate(6, 10, 11, end);
    for ins in docs.iter().map(|d| d.patient.clone()).collect::<std::collections::BTreeSet<_>>() {
        let reports: Vec<Report> =
            docs.iter().filter(|d| d.patient == ins).map(|d| parse(write_cr_bio(&d.report).as_bytes()).unwrap()).collect();
        let h = history_of(&reports, &Options::default());
        assert_eq!(h.patient.as_ref().unwrap().ins, ins);
        assert!(h.other_results.is_empty(), "{ins}: unmapped {:?}", h.other_results.iter().map(|o| &o.code).collect::<Vec<_>>());
        for s in &h.series {
            for p in s.points.iter().filter(|p| p.status == PointStatus::Completed) {
                assert!(p.in_display_unit, "{ins} {}: {:?}", s.analyte, p.sources[0].not_converted);
            }
        }
        let replaced = h.documents.iter().filter(|d| d.status == DocumentState::Replaced).count();
        let partial = reports.iter().filter(|r| r.header.status == Some(ReportStatus::Active)).count();
        assert_eq!(replaced, partial, "every partial report is replaced by its complete version");
        assert!(
            h.series
                .iter()
                .all(|s| s.points.windows(2).all(|w| w[0].time.map(|t| t.epoch_seconds()) <= w[1].time.map(|t| t.epoch_seconds())))
        );
    }
}

#[test]
fn the_history_does_not_depend_on_the_order_of_the_documents() {
    let mut other_lab = doc("Lab B", "20240105", vec![r("40193-5", q("7.20", "mmol/L"))]);
    other_lab.set = "other";
    // A duplicate upload: same setId and version as the first, another file.
    let duplicate = doc("Lab A", "20240105", vec![r("40193-5", q("4.89", "mmol/L"))]);
    let docs = [
        doc("Lab A", "20240105", vec![r("40193-5", q("4.89", "mmol/L")), r("53049-3", q("0.88", "g/L"))]),
        other_lab,
        doc("Lab A", "20240305", vec![r("14682-9", q("80", "umol/L"))]),
        duplicate,
    ];
    let mut reports: Vec<Report> = docs.iter().map(report).collect();
    let catalogue = Catalogue::embedded();
    let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
    let run = |reports: &[Report], names: &[&str]| {
        let inputs: Vec<InputDocument<'_>> = reports
            .iter()
            .zip(names)
            .map(|(r, n)| InputDocument { id: n.to_string(), report: Ok(r), provenance: Provenance::Operator })
            .collect();
        let h = normalise(&inputs, &catalogue, &transcoding, &Options::default());
        h.series
    };
    let forward = run(&reports, &["a", "b", "c", "d"]);
    reports.reverse();
    let backward = run(&reports, &["d", "c", "b", "a"]);
    assert_eq!(forward, backward);
    let glucose = forward.iter().find(|s| s.analyte == "glucose_fasting").unwrap();
    assert_eq!(glucose.points.len(), 2, "two laboratories, two measurements");
}

// --- provenance and identity (issue 12: what a document says is never a right) -------------

fn history_from(reports: &[(Report, Provenance)], options: &Options) -> History {
    let catalogue = Catalogue::embedded();
    let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
    let inputs: Vec<InputDocument<'_>> =
        reports.iter().enumerate().map(|(i, (r, p))| InputDocument { id: format!("doc{i}"), report: Ok(r), provenance: *p }).collect();
    normalise(&inputs, &catalogue, &transcoding, options)
}

#[test]
fn an_uploaded_later_version_never_replaces_the_laboratorys_report() {
    let genuine = report(&doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L"))]));
    let mut forged = doc("Lab A", "20240105", vec![r("2823-3", q("6.9", "mmol/L"))]);
    forged.version = 2;
    for provenance in [Provenance::Dmp, Provenance::Operator] {
        let h = history_from(&[(genuine.clone(), provenance), (report(&forged), Provenance::Upload)], &Options::default());
        assert_eq!(h.documents[0].status, DocumentState::Current, "the laboratory's report stays");
        assert_eq!(h.documents[1].status, DocumentState::Rejected);
        assert_eq!(h.documents[1].provenance, Provenance::Upload);
        assert_eq!(h.documents[1].problem_codes, vec![DocumentProblem::ConflictsWithLaboratory { version: 1 }]);
        let k = series(&h, "potassium");
        assert_eq!(k.points.len(), 1, "the forged value never shows");
        assert_eq!(k.points[0].display.as_deref(), Some("4.2"));
    }
    // The same version uploaded again (other bytes) is a conflict too.
    let same_version = report(&doc("Lab A", "20240105", vec![r("2823-3", q("6.9", "mmol/L"))]));
    let h = history_from(&[(genuine.clone(), Provenance::Dmp), (same_version, Provenance::Upload)], &Options::default());
    assert_eq!(h.documents[0].status, DocumentState::Current);
    assert_eq!(h.documents[1].status, DocumentState::Rejected);
    // An older uploaded version is simply replaced by the laboratory's.
    let mut newer = doc("Lab A", "20240105", vec![r("2823-3", q("4.3", "mmol/L"))]);
    newer.version = 3;
    let h = history_from(&[(report(&newer), Provenance::Dmp), (report(&forged), Provenance::Upload)], &Options::default());
    assert_eq!(h.documents[1].status, DocumentState::Replaced);
    assert_eq!(series(&h, "potassium").points[0].display.as_deref(), Some("4.3"));
}

/// A series whose analyte has no known biological variation says so (`change_not_judged`), so
/// that no page calls a change of it "not significant"; one with an RCV does not.
#[test]
fn a_series_without_a_biological_variation_says_its_changes_are_not_judged() {
    let first = report(&doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L")), r("4537-7", q("10", "mm/h"))]));
    let second = report(&doc("Lab A", "20240205", vec![r("2823-3", q("4.3", "mmol/L")), r("4537-7", q("100", "mm/h"))]));
    let h = history_from(&[(first, Provenance::Dmp), (second, Provenance::Dmp)], &Options::default());
    assert!(!series(&h, "potassium").change_not_judged);
    let esr = series(&h, "esr");
    assert!(esr.change_not_judged, "no CVI for the ESR");
    assert!(esr.points.iter().all(|p| p.significant_change.is_none()), "a tenfold rise is not judged either way");
    let json = serde_json::to_value(&h).unwrap();
    let by_id = |id: &str| json["series"].as_array().unwrap().iter().find(|s| s["analyte"] == id).unwrap().clone();
    assert_eq!(by_id("esr")["change_not_judged"], true);
    assert!(by_id("potassium").get("change_not_judged").is_none(), "said only where it holds");
}

/// Review finding (attack review, seventh session): an uploaded report of another set, sampled at
/// the time of a laboratory's, came after it or before it as their document ids fell, and when
/// after, it was the "latest" result the summary showed (a critical value the laboratory never
/// wrote). Of one sampling, the laboratory's result comes last, whatever the ids.
#[test]
fn an_upload_of_the_same_sampling_never_comes_after_the_laboratorys_result() {
    let genuine = report(&doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L"))]));
    let mut copy = doc("Lab A", "20240105", vec![r("2823-3", q("6.9", "mmol/L"))]);
    copy.set = "another-set";
    let copy = report(&copy);
    let catalogue = Catalogue::embedded();
    let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
    for (lab_id, upload_id) in [("doc-a", "doc-z"), ("doc-z", "doc-a")] {
        for laboratory_first in [true, false] {
            let lab = InputDocument { id: lab_id.into(), report: Ok(&genuine), provenance: Provenance::Dmp };
            let upload = InputDocument { id: upload_id.into(), report: Ok(&copy), provenance: Provenance::Upload };
            let inputs = if laboratory_first { vec![lab, upload] } else { vec![upload, lab] };
            let h = normalise(&inputs, &catalogue, &transcoding, &Options::default());
            let k = series(&h, "potassium");
            assert_eq!(k.points.len(), 2, "both shown, the upload marked where it shows");
            assert_eq!(k.points.last().unwrap().display.as_deref(), Some("4.2"), "the laboratory's is the latest ({lab_id}, {upload_id})");
            assert_eq!(&*k.points.last().unwrap().sources[0].document, lab_id);
            // A copy of the same value is the laboratory's point, the upload's source beside it:
            // never read as an uploaded value.
            let mut same = doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L"))]);
            same.set = "another-set";
            let same = report(&same);
            let lab = InputDocument { id: lab_id.into(), report: Ok(&genuine), provenance: Provenance::Operator };
            let upload = InputDocument { id: upload_id.into(), report: Ok(&same), provenance: Provenance::Upload };
            let inputs = if laboratory_first { vec![lab, upload] } else { vec![upload, lab] };
            let h = normalise(&inputs, &catalogue, &transcoding, &Options::default());
            let k = series(&h, "potassium");
            assert_eq!(k.points.len(), 1, "one measurement, two documents");
            let documents: Vec<&str> = k.points[0].sources.iter().map(|s| &*s.document).collect();
            assert_eq!(documents, [lab_id, upload_id]);
        }
    }
}

#[test]
fn uploads_alone_follow_the_version_rule_among_themselves() {
    let first = report(&doc("Lab A", "20240105", vec![r("2823-3", q("4.1", "mmol/L"))]));
    let mut second = doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L"))]);
    second.version = 2;
    let h = history_from(&[(first, Provenance::Upload), (report(&second), Provenance::Upload)], &Options::default());
    assert_eq!(h.documents[0].status, DocumentState::Replaced);
    assert_eq!(h.documents[1].status, DocumentState::Current);
    assert_eq!(series(&h, "potassium").points[0].display.as_deref(), Some("4.2"));
}

fn with_identity(mut report: Report, family: &str, birth: &str, sex: Sex) -> Report {
    let patient = report.header.patient.as_mut().unwrap();
    patient.name.family = Some(family.into());
    patient.birth_date = Some(time(birth));
    patient.sex = Some(sex);
    report
}

#[test]
fn a_document_with_the_patients_ins_but_another_birth_date_or_sex_is_rejected_and_the_identity_stays() {
    let genuine = with_identity(report(&doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L"))])), "TEST", "19760315", Sex::Female);
    let impostor = with_identity(report(&doc("Lab B", "20240205", vec![r("2823-3", q("6.5", "mmol/L"))])), "AUTRE", "19500101", Sex::Male);
    let renamed =
        with_identity(report(&doc("Lab B", "20240305", vec![r("2823-3", q("4.4", "mmol/L"))])), "TEST-MARIEE", "19760315", Sex::Female);
    // The impostor comes first: the identity is still the most trusted source's.
    let h = history_from(
        &[(impostor.clone(), Provenance::Upload), (genuine.clone(), Provenance::Dmp), (renamed, Provenance::Dmp)],
        &Options::default(),
    );
    let patient = h.patient.as_ref().unwrap();
    assert_eq!((patient.family_name.as_deref(), patient.sex), (Some("TEST"), Some(Sex::Female)));
    assert_eq!(h.documents[0].status, DocumentState::Rejected);
    assert_eq!(h.documents[0].problem_codes, vec![DocumentProblem::IdentityConflict { birth_date: true, sex: true }]);
    assert_eq!(h.documents[2].status, DocumentState::Current, "another name is flagged, not rejected");
    assert_eq!(h.documents[2].problem_codes, vec![DocumentProblem::NameDiffers]);
    let values: Vec<String> = series(&h, "potassium").points.iter().map(|p| p.display.as_deref().unwrap().to_string()).collect();
    assert_eq!(values, ["4.2", "4.4"], "6.5 never shows");
    // The store's identity, when given, is the one kept, whatever the documents say.
    let stored = PatientIdentity {
        ins: INS.into(),
        ins_root: oid::INS_NIR_TEST.into(),
        family_name: Some("TEST".into()),
        given_name: Some("ALICE".into()),
        birth_date: Some(time("19760315")),
        sex: Some(Sex::Female),
    };
    let h = history_from(&[(impostor, Provenance::Dmp)], &Options { patient: Some(stored.clone()), ..Options::default() });
    assert_eq!(h.patient.as_ref(), Some(&stored));
    assert_eq!(h.documents[0].status, DocumentState::Rejected);
    assert!(h.series.is_empty());
}

#[test]
fn one_ins_number_under_two_authorities_is_one_patient_flagged() {
    let production = report(&doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L"))]));
    let mut test_oid = report(&doc("Lab B", "20240205", vec![r("2823-3", q("4.3", "mmol/L"))]));
    let patient = test_oid.header.patient.as_mut().unwrap();
    for id in &mut patient.ids {
        if id.root == oid::INS_NIR_TEST {
            id.root = oid::INS_NIR.into();
        }
    }
    assert_eq!(test_oid.header.patient.as_ref().unwrap().ins().unwrap().root, oid::INS_NIR);
    let h = history_from(&[(production, Provenance::Dmp), (test_oid, Provenance::Dmp)], &Options::default());
    assert!(h.problems.iter().all(|p| !p.contains("different patients")), "{:?}", h.problems);
    assert_eq!(h.documents[1].status, DocumentState::Current);
    assert_eq!(h.documents[1].problem_codes, vec![DocumentProblem::InsAuthorityDiffers]);
    assert_eq!(series(&h, "potassium").points.len(), 2);
    // Asked by either spelling, the same history.
    let asked = Options { patient_ins: Some(format!("{}^{INS}", oid::INS_NIR)), ..Options::default() };
    assert_eq!(
        series(
            &history_from(&[(report(&doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L"))])), Provenance::Dmp)], &asked),
            "potassium"
        )
        .points
        .len(),
        1
    );
}

// --- the INS-C era (issue 14) ----------------------------------------------------------------

const INS_C: &str = "1234567890123456789012";

/// The same report as the laboratories wrote it before 2021: the INS-C in the header (and
/// optionally the NIR without its key beside it), no INS.
fn legacy(mut report: Report, with_nir13: bool) -> Report {
    let patient = report.header.patient.as_mut().unwrap();
    patient.ids = vec![InstanceId { root: oid::INS_C[0].into(), extension: Some(INS_C.into()) }];
    if with_nir13 {
        patient.ids.push(InstanceId { root: oid::INS_NIR.into(), extension: Some(INS[..13].into()) });
    }
    report
}

#[test]
fn a_folder_of_ins_c_reports_alone_makes_a_history() {
    let reports: Vec<(Report, Provenance)> = ["20190105", "20190605"]
        .iter()
        .map(|day| (legacy(report(&doc("Lab A", day, vec![r("2823-3", q("4.2", "mmol/L"))])), true), Provenance::Operator))
        .collect();
    let h = history_from(&reports, &Options::default());
    assert!(h.documents.iter().all(|d| d.status == DocumentState::Current), "{:?}", h.documents);
    assert_eq!(h.patient.as_ref().map(|p| (p.ins_root.as_str(), p.ins.as_str())), Some((oid::INS_C[0], INS_C)));
    assert_eq!(series(&h, "potassium").points.len(), 2);
    let asked = Options { patient_ins: Some(INS_C.into()), ..Options::default() };
    assert_eq!(series(&history_from(&reports, &asked), "potassium").points.len(), 2);
    let asked = Options { patient_ins: Some(format!("{}^{INS_C}", oid::INS_C[0])), ..Options::default() };
    assert_eq!(series(&history_from(&reports, &asked), "potassium").points.len(), 2);
}

#[test]
fn ins_c_reports_join_the_ins_history_only_through_an_identifier_the_patient_is_known_by() {
    let before = legacy(report(&doc("Lab A", "20190105", vec![r("2823-3", q("4.1", "mmol/L"))])), true);
    let after = report(&doc("Lab A", "20220105", vec![r("2823-3", q("4.3", "mmol/L"))]));
    let documents = [(before, Provenance::Operator), (after, Provenance::Dmp)];
    // Known by the INS only: the INS-C report names no identifier of the patient. The NIR
    // without its key beside it may be a parent's (the insured person's): it attributes nothing.
    let ins_only = Options { patient_ins: Some(INS.into()), ..Options::default() };
    let h = history_from(&documents, &ins_only);
    assert_eq!(h.documents[0].status, DocumentState::Rejected);
    assert_eq!(h.documents[0].problem_codes, vec![DocumentProblem::NoPatientIns]);
    assert_eq!(series(&h, "potassium").points.len(), 1);
    // Known by both (learned from the DMP, or a link): one decade.
    let known = Options {
        patient_ins: Some(INS.into()),
        known_identifiers: vec![
            InstanceId { root: oid::INS_NIR_TEST.into(), extension: Some(INS.into()) },
            InstanceId { root: oid::INS_C[0].into(), extension: Some(INS_C.into()) },
        ],
        ..Options::default()
    };
    let h = history_from(&documents, &known);
    assert!(h.documents.iter().all(|d| d.status == DocumentState::Current), "{:?}", h.documents);
    assert_eq!(series(&h, "potassium").points.len(), 2);
    // The DMP returned it for this patient (the store filed it with them): theirs, even
    // before the INS-C is known; an operator's file naming only that INS-C is not.
    let by_ins = Options {
        patient_ins: Some(INS.into()),
        known_identifiers: vec![InstanceId { root: oid::INS_NIR_TEST.into(), extension: Some(INS.into()) }],
        ..Options::default()
    };
    let asked = [(legacy(report(&doc("Lab A", "20190105", vec![r("2823-3", q("4.1", "mmol/L"))])), false), Provenance::Dmp)];
    assert_eq!(history_from(&asked, &by_ins).documents[0].status, DocumentState::Current);
    let filed = [(legacy(report(&doc("Lab A", "20190105", vec![r("2823-3", q("4.1", "mmol/L"))])), false), Provenance::Operator)];
    assert_eq!(history_from(&filed, &by_ins).documents[0].status, DocumentState::Rejected);
    // A report with another INS is still another patient's, whatever INS-C it carries.
    let mut stranger = report(&doc("Lab B", "20220305", vec![r("2823-3", q("6.5", "mmol/L"))]));
    stranger.header.patient.as_mut().unwrap().ids.push(InstanceId { root: oid::INS_C[0].into(), extension: Some(INS_C.into()) });
    stranger.header.patient.as_mut().unwrap().ids[0].extension = Some(OTHER_INS.into());
    let h = history_from(&[(stranger, Provenance::Dmp)], &known);
    assert_eq!(h.documents[0].problem_codes, vec![DocumentProblem::AnotherPatient]);
}

#[test]
fn an_upload_carrying_a_laboratory_documents_id_is_a_conflict_and_never_moves_its_flags() {
    let genuine = report(&doc("Lab A", "20240105", vec![r("2823-3", q("4.2", "mmol/L"))]));
    let later = report(&doc("Lab A", "20240305", vec![r("2823-3", q("4.3", "mmol/L"))]));
    // Same CDA id as the laboratory's first report, another set, a wild value in between.
    let mut decoy = report(&doc("Lab A", "20240205", vec![r("2823-3", q("9.9", "mmol/L"))]));
    decoy.header.id = genuine.header.id.clone();
    let h = history_from(
        &[(genuine.clone(), Provenance::Dmp), (later.clone(), Provenance::Dmp), (decoy, Provenance::Upload)],
        &Options::default(),
    );
    assert_eq!(h.documents[2].status, DocumentState::Rejected);
    assert_eq!(h.documents[2].problem_codes, vec![DocumentProblem::ConflictsWithLaboratory { version: 1 }]);
    // An uploaded value of its own (another id) shows, marked, but the laboratory's next
    // result is compared with the laboratory's previous one, not with it.
    let mut upload = report(&doc("Lab A", "20240205", vec![r("2823-3", q("9.9", "mmol/L"))]));
    upload.header.set_id = Some(InstanceId { root: "1.2.250.1.999.2".into(), extension: Some("uploaded".into()) });
    upload.header.id = Some(InstanceId { root: "1.2.250.1.999.1".into(), extension: Some("uploaded".into()) });
    let h = history_from(&[(genuine, Provenance::Dmp), (later, Provenance::Dmp), (upload, Provenance::Upload)], &Options::default());
    let k = series(&h, "potassium");
    assert_eq!(k.points.len(), 3);
    let last = k.points.last().unwrap();
    assert_eq!(last.display.as_deref(), Some("4.3"));
    assert_eq!(last.significant_change, None, "4.2 then 4.3: no significant change, whatever was uploaded between");
}

#[test]
fn a_computed_egfr_below_60_is_flagged_with_its_kdigo_stage() {
    // A 48-year-old woman with a creatinine of 200 µmol/L: eGFR ≈ 26, stage G4.
    let h = history(&[doc("Lab A", "20240105", vec![r("14682-9", q("200", "umol/L"))])]);
    let egfr = series(&h, "egfr_ckd_epi_2021");
    let point = &egfr.points[0];
    assert!(point.derived);
    let value = point.plottable().unwrap();
    assert!((20.0..30.0).contains(&value), "{value}");
    assert_eq!(kdigo_stage(value), "G4");
    assert_eq!(point.flag.as_ref().map(|f| (&*f.code, f.computed)), Some(("L", true)), "flagged, and said to be ours");
    assert_eq!(
        [kdigo_stage(95.0), kdigo_stage(60.0), kdigo_stage(59.9), kdigo_stage(30.0), kdigo_stage(14.9)],
        ["G1", "G2", "G3a", "G3b", "G5"]
    );
    // A normal creatinine: no flag.
    let h = history(&[doc("Lab A", "20240105", vec![r("14682-9", q("60", "umol/L"))])]);
    assert!(series(&h, "egfr_ckd_epi_2021").points[0].flag.is_none());
}

#[test]
fn an_unrecognised_result_repeated_in_two_reports_is_one_point_with_two_sources() {
    let local = |value: &str| R {
        code: Code { code: Some("X-LOCAL-9".into()), system: Some("1.2.250.1.999.5".into()), ..Code::default() },
        value: Some(q(value, "mg/L")),
        aborted: false,
        flag: None,
        range: None,
        previous: Vec::new(),
    };
    let mut first = doc("Lab A", "20240105", vec![local("7.1")]);
    first.set = "first";
    let mut second = doc("Lab A", "20240105", vec![local("7.1")]);
    second.set = "second";
    let h = history(&[first, second]);
    let other = h.other_results.iter().find(|o| o.code.as_deref() == Some("X-LOCAL-9")).expect("the unrecognised result");
    assert_eq!(other.points.len(), 1, "one result, not two rows");
    assert_eq!(other.points[0].sources.len(), 2, "both reports are its sources");
}

/// Every point of the history (series and other results) with the code of its first source.
fn points_by_code<'h>(h: &'h History, code: &str) -> Vec<&'h Point> {
    h.series
        .iter()
        .flat_map(|s| &s.points)
        .chain(h.other_results.iter().flat_map(|o| &o.points))
        .filter(|p| p.sources.first().and_then(|s| s.code.as_deref()) == Some(code))
        .collect()
}

fn flag_of(p: &Point) -> Option<&str> {
    p.flag.as_ref().map(|f| &*f.code)
}

#[test]
fn a_rapid_test_is_a_point_of_care_document_of_the_patient_with_its_positive_results_flagged() {
    let reports = [corpus("BIO-CR-BIO_2024.01_TSH_1.xml"), corpus("BIO-TROD_2024.01_COVID-19_Grippe-A_Grippe-B.xml")];
    let h = history_of(&reports, &Options::default());
    let trod = &h.documents[1];
    assert_eq!(trod.status, DocumentState::Current, "{:?}", trod.problems);
    assert_eq!(trod.kind, Some(DocumentKind::PointOfCareTest));
    assert_eq!(trod.laboratory.as_deref(), Some("Pharmacie des 4 cantons"));
    // The agency's example codes influenza B "negative" and prints "positif" (and the reverse
    // for influenza A): both are flagged positive with the printed words kept beside the code.
    let flu_b = points_by_code(&h, "80383-3");
    assert_eq!(flu_b.len(), 1);
    assert_eq!(flag_of(flu_b[0]), Some("POS"));
    assert!(flu_b[0].flag.as_ref().unwrap().computed);
    assert_eq!(flu_b[0].discordant_text.as_deref(), Some("positif"));
    let flu_a = points_by_code(&h, "80382-5");
    assert_eq!((flag_of(flu_a[0]), flu_a[0].discordant_text.as_deref()), (Some("POS"), Some("négatif")));
    let covid = points_by_code(&h, "94558-4");
    assert_eq!((flag_of(covid[0]), covid[0].discordant_text.as_deref()), (Some("NEG"), None));
}

#[test]
fn a_rapid_test_of_another_patient_or_of_nobody_known_is_still_rejected() {
    let dir = crate::cda::tests::corpus_dir();
    let original = std::fs::read_to_string(dir.join("BIO-TROD_2024.01_COVID-19.xml")).unwrap();
    let other = parse(original.replace(INS, OTHER_INS).as_bytes()).unwrap();
    let local = parse(
        original
            .replace(&format!("extension=\"{INS}\" root=\"1.2.250.1.213.1.4.10\""), "extension=\"IPP-77\" root=\"1.2.250.1.999\"")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(other.kind, DocumentKind::PointOfCareTest);
    let reports = [corpus("BIO-CR-BIO_2024.01_TSH_1.xml"), other, local];
    let h = history_of(&reports, &Options { patient_ins: Some(INS.into()), ..Options::default() });
    assert_eq!(h.documents[0].status, DocumentState::Current);
    assert_eq!(h.documents[1].status, DocumentState::Rejected);
    assert_eq!(h.documents[1].problem_codes, [DocumentProblem::AnotherPatient]);
    assert_eq!(h.documents[2].status, DocumentState::Rejected);
    assert_eq!(h.documents[2].problem_codes, [DocumentProblem::NoPatientIns]);
    assert!(points_by_code(&h, "94558-4").is_empty(), "nothing of theirs in this patient's history");
}

#[test]
fn cytology_and_hpv_results_are_flagged_from_what_they_say() {
    for name in ["BIO-CR-BIO_2024.01_DEP-CCU-tout-structuré.xml", "BIO-CR-BIO_2023.01_DEP-CCU.xml"] {
        let h = history_of(&[corpus(name)], &Options::default());
        let hpv = points_by_code(&h, "77379-6");
        let detected = hpv.iter().find(|p| p.text.as_deref() == Some("ADN d'HPV-HR détecté")).unwrap();
        assert_eq!(flag_of(detected), Some("POS"), "{name}");
        let previous = hpv.iter().find(|p| p.text.as_deref() == Some("HPV-HR non détecté")).unwrap();
        assert_eq!(flag_of(previous), Some("NEG"), "{name}");
        let cytology = points_by_code(&h, "10524-7");
        let adenocarcinoma = cytology.iter().find(|p| p.text.as_deref() == Some("adénocarcinome SAP")).unwrap();
        assert_eq!(flag_of(adenocarcinoma), Some("A"), "{name}");
    }
}

#[test]
fn values_beyond_a_published_critical_limit_are_marked_critical_in_the_unit_shown() {
    let censored = |comparator, value: &str| Value::Censored {
        comparator,
        quantity: Quantity { value: Decimal::parse(value).unwrap(), unit: Some("mmol/L".into()) },
    };
    let docs = [
        // Potassium 6.5 (above 6.2), sodium 118 (below 120), INR 5.6 (above 5.0), in range otherwise.
        doc("Lab A", "20240105", vec![r("2823-3", q("6.5", "mmol/L")), r("2951-2", q("118", "mmol/L")), r("6301-6", q("5.6", "1"))]),
        doc("Lab A", "20240205", vec![r("2823-3", q("6.2", "mmol/L")), r("2951-2", q("140", "mmol/L")), r("6301-6", q("2.5", "1"))]),
        // A laboratory writing mEq/L; a censored value only when certain.
        doc("Lab B", "20240305", vec![r("2823-3", q("2.5", "mEq/L"))]),
        doc("Lab B", "20240405", vec![r("2823-3", censored(Comparator::Greater, "7.0"))]),
        doc("Lab B", "20240505", vec![r("2823-3", censored(Comparator::Greater, "5.0"))]),
    ];
    let h = history(&docs);
    let critical = |analyte: &str| series(&h, analyte).points.iter().map(|p| p.critical).collect::<Vec<_>>();
    use crate::judge::Critical::{High, Low};
    assert_eq!(
        critical("potassium"),
        [Some(High), None, Some(Low), Some(High), None],
        "6.2 is at the limit, not beyond; > 5.0 may be normal"
    );
    assert_eq!(critical("sodium"), [Some(Low), None]);
    assert_eq!(critical("inr"), [Some(High), None]);
    assert!(series(&h, "potassium").points[0].is_abnormal());

    // Calcium 140 mg/L is 3.49 mmol/L, above 3.22 mmol/L: critical whichever unit it is shown in.
    let reports: Vec<Report> =
        [doc("Lab A", "20240105", vec![r("17861-6", q("140", "mg/L"))]), doc("Lab A", "20240205", vec![r("2000-8", q("2.40", "mmol/L"))])]
            .iter()
            .map(report)
            .collect();
    for system in [UnitSystem::Si, UnitSystem::Conventional] {
        let h = history_of(&reports, &Options { unit_system: system, ..Options::default() });
        let calcium = &series(&h, "calcium").points;
        assert_eq!(calcium.iter().map(|p| p.critical).collect::<Vec<_>>(), [Some(High), None], "{system:?}");
    }
}
