//! Parser tests on the shared corpus (the national agency's public examples) and on small
//! documents written here.

use super::*;
use std::path::PathBuf;

pub(crate) fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/ans-cr-bio")
}

pub(crate) fn corpus(name: &str) -> Report {
    let path = corpus_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_corpus_file_parses_to_its_kind() {
    let mut seen = 0;
    for entry in std::fs::read_dir(corpus_dir()).expect("the shared corpus is beside the repository") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let report = parse(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = if name.starts_with("BIO-TROD") || name.starts_with("BIO-ATTEST-DEPIST") {
            DocumentKind::PointOfCareTest
        } else if name.contains("Auto-Presentable") {
            DocumentKind::CrBioAutoPresentable
        } else if name.contains("Niveau-1") {
            DocumentKind::CrBioPdfOnly
        } else {
            DocumentKind::CrBioStructured
        };
        assert_eq!(report.kind, expected, "{name}");
        if report.kind.carries_results() {
            let h = &report.header;
            assert!(h.id.is_some() && h.set_id.is_some() && h.version_number.is_some(), "{name}: ids");
            assert!(h.patient.as_ref().and_then(|p| p.ins()).is_some(), "{name}: INS");
            assert!(h.laboratory.as_ref().and_then(|l| l.name.as_ref()).is_some(), "{name}: laboratory");
            assert!(h.effective_time.is_some(), "{name}: effective time");
        }
        seen += 1;
    }
    assert_eq!(seen, 31, "the corpus has 31 documents");
}

#[test]
fn tsh_1_header() {
    let r = corpus("BIO-CR-BIO_2024.01_TSH_1.xml");
    let h = &r.header;
    assert_eq!(h.id.as_ref().unwrap().root, "1.2.250.1.213.1.1.1.55.2024.9.1");
    assert_eq!(h.set_id.as_ref().unwrap().root, "1.2.250.1.213.1.1.1.55.2024.9");
    assert_eq!(h.version_number, Some(1));
    assert_eq!(h.status, Some(ReportStatus::Completed));
    assert_eq!(h.effective_time.unwrap().to_string(), "2021-04-01T17:10:00+01:00");
    let p = h.patient.as_ref().unwrap();
    let ins = p.ins().unwrap();
    assert_eq!((ins.root.as_str(), ins.extension.as_deref()), (oid::INS_NIR_TEST, Some("279035121518989")));
    assert_eq!(p.ids.len(), 2, "INS and the laboratory's IPP");
    assert_eq!(p.name.birth_family.as_deref(), Some("PAT-TROIS"));
    assert_eq!(p.name.given.first().map(String::as_str), Some("DOMINIQUE MARIE-LOUISE"));
    assert_eq!(p.birth_date.unwrap().to_string(), "1979-03-28");
    assert_eq!(p.sex, Some(Sex::Female));
    let lab = h.laboratory.as_ref().unwrap();
    assert_eq!(lab.name.as_deref(), Some("Laboratoire des charmes"));
    assert_eq!(lab.id.as_ref().unwrap().extension.as_deref(), Some("1120459876"));
    assert_eq!(h.sampler.as_ref().unwrap().time.unwrap().to_string(), "2021-01-04T07:35+01:00");
    assert_eq!(h.prescriber.as_ref().unwrap().name.as_ref().unwrap().family.as_deref(), Some("CHARLES"));
    assert!(h.chapters.iter().any(|c| c.code.as_deref() == Some("18719-5")));
}

#[test]
fn replacement_version_names_its_parent() {
    let r = corpus("BIO-CR-BIO_2024.01_Microbiologie_V2.xml");
    assert!(r.header.replaces.is_some());
    assert!(r.header.version_number.unwrap() >= 2);
}

#[test]
fn not_cda_is_a_kind_not_an_error() {
    let r = parse(b"<?xml version=\"1.0\"?><html><body>hello</body></html>").unwrap();
    assert_eq!(r.kind, DocumentKind::NotCda);
}

#[test]
fn broken_input_is_an_error_with_a_position() {
    for bad in [&b""[..], b"not xml at all", b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id root=\"1\"/>", b"\x00\x01\x02"] {
        let err = parse(bad).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
}

fn quantity(o: &Observation) -> (&str, Option<&str>) {
    match o.value.as_ref() {
        Some(Value::Quantity(q)) => (q.value.as_str(), q.unit.as_deref()),
        other => panic!("not a quantity: {other:?}"),
    }
}

fn flags(o: &Observation) -> Vec<&str> {
    o.interpretation.iter().filter_map(|c| c.code.as_deref()).collect()
}

fn range(o: &Observation) -> (Option<&str>, Option<&str>) {
    let r = &o.reference_ranges[0];
    (r.low.as_ref().map(|q| q.value.as_str()), r.high.as_ref().map(|q| q.value.as_str()))
}

#[test]
fn tsh_two_laboratories_two_loinc_codes() {
    // TSH_1: narrative says "Thyréostimuline (TSH) 1.950 mUI/l (0.270 - 4.200)" and FT4 "7.67 pg/ml (9.30 - 17.00)".
    let one = corpus("BIO-CR-BIO_2024.01_TSH_1.xml");
    let tsh = &one.observations[0];
    assert_eq!(tsh.code.loinc(), Some("3016-3"));
    assert_eq!(quantity(tsh), ("1.950", Some("m[IU]/L")));
    assert_eq!(range(tsh), (Some("0.270"), Some("4.200")));
    assert_eq!(flags(tsh), ["N"]);
    assert_eq!(tsh.code.original_text.as_deref(), Some("Thyréostimuline (TSH)"));
    assert_eq!(tsh.method.as_ref().and_then(|m| m.original_text.as_deref()), Some("(ECL Modular)"));
    let ft4 = &one.observations[1];
    assert_eq!(quantity(ft4), ("7.67", Some("pg/mL")));
    assert_eq!(flags(ft4), ["L"]);
    assert_eq!(tsh.performer.as_ref().unwrap().name.as_deref(), Some("Laboratoire des charmes"));
    assert_eq!(tsh.collection_time_source, Some(CollectionTimeSource::Sampler));

    let two = corpus("BIO-CR-BIO_2024.01_TSH_2.xml");
    let tsh2 = &two.observations[0];
    assert_eq!(tsh2.code.loinc(), Some("29575-8"), "the other laboratory's code for TSH");
    assert_eq!(range(tsh2), (Some("0.290"), Some("4.800")), "its own reference range");
    assert_eq!(tsh2.performer.as_ref().unwrap().name.as_deref(), Some("Laboratoire des SORTES"));
}

#[test]
fn glucose_given_in_two_units_is_two_sibling_results() {
    let r = corpus("BIO-CR-BIO_2024.01_Glycémie deux unités principales_mole_masse.xml");
    let codes: Vec<_> = r.observations.iter().map(|o| o.code.loinc().unwrap()).collect();
    assert_eq!(codes, ["40193-5", "53049-3"]);
    assert_eq!(quantity(&r.observations[0]), ("4.89", Some("mmol/L")));
    assert_eq!(quantity(&r.observations[1]), ("0.88", Some("g/L")));
    // Known oddity of the sample, kept as is: a reference range whose low equals its high.
    assert_eq!(range(&r.observations[0]), (Some("3.89"), Some("3.89")));
    let single = corpus("BIO-CR-BIO_2024.01_Glycémie mole.xml");
    assert_eq!(single.observations.len(), 1);
}

#[test]
fn crp_without_loinc_keeps_local_code_and_censored_value() {
    let r = corpus("BIO-CR-BIO_2024.01_CRP_non_LOINC.xml");
    let crp = &r.observations[0];
    assert_eq!(crp.code.code, None, "no LOINC code");
    assert_eq!(crp.code.loinc(), None);
    let local = &crp.code.translations[0];
    assert_eq!((local.code.as_deref(), local.system.as_deref()), (Some("1234"), Some("1.2.250.1.2.3.4")));
    match crp.value.as_ref().unwrap() {
        Value::Censored { comparator, quantity } => {
            assert_eq!(*comparator, Comparator::LessOrEqual);
            assert_eq!((quantity.value.as_str(), quantity.unit.as_deref()), ("1.0", Some("mg/L")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(range(crp), (None, Some("5.0")), "a range with only a high bound");
}

#[test]
fn microbiology_isolates_and_antibiograms() {
    let r = corpus("BIO-CR-BIO_2024.01_Microbiologie_V1.xml");
    let isolates: std::collections::BTreeSet<_> =
        r.observations.iter().filter_map(|o| o.isolate.as_ref()).map(|i| i.organism.code.clone().unwrap()).collect();
    assert!(isolates.contains("112283007"), "Escherichia coli by SNOMED CT: {isolates:?}");
    assert_eq!(isolates.len(), 2);
    let amoxicillin = r
        .observations
        .iter()
        .find(|o| o.code.loinc() == Some("20-8") && o.isolate.as_ref().unwrap().organism.code.as_deref() == Some("112283007"))
        .unwrap();
    assert_eq!(amoxicillin.battery.as_ref().and_then(|b| b.code.as_deref()), Some("18769-0"), "inside the antibiogram battery");
    assert!(matches!(amoxicillin.value, Some(Value::Censored { .. })), "MIC as IVL_PQ");
    assert_eq!(flags(amoxicillin), ["R"]);
    let colour = r.observations.iter().find(|o| o.code.loinc() == Some("5778-6")).unwrap();
    match colour.value.as_ref().unwrap() {
        Value::Coded(c) => assert!(c.label().is_some(), "qualitative result readable: {c:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(colour.collection_time_source, Some(CollectionTimeSource::SpecimenProcedure));
}

#[test]
fn inr_is_a_real_and_second_intention_pdf_is_extracted() {
    let r = corpus("BIO-CR-BIO_2024.01_CR-2nde-intention-PDF.xml");
    assert!(matches!(r.observations[0].value, Some(Value::Real { .. })), "{:?}", r.observations[0].value);
    let pdfs: Vec<_> = r.attachments.iter().map(|a| (a.purpose, a.media_type.as_str())).collect();
    assert!(pdfs.contains(&(AttachmentPurpose::SecondIntention, "application/pdf")));
    assert!(pdfs.contains(&(AttachmentPurpose::ReportCopy, "application/pdf")));
    for a in &r.attachments {
        let bytes = a.bytes().unwrap();
        assert!(bytes.starts_with(b"%PDF"), "decoded PDF bytes");
        assert_eq!(bytes.len(), a.size_bytes, "the announced size is the decoded size");
    }
}

#[test]
fn electrophoresis_has_twenty_previous_results_linked_to_theirs() {
    let r = corpus("BIO-CR-BIO_2024.01_Electrophorese.xml");
    let previous: Vec<_> = r.observations.iter().filter(|o| o.is_previous_result()).collect();
    assert_eq!(previous.len(), 20);
    for p in &previous {
        let current = &r.observations[p.previous_of.unwrap()];
        assert!(!current.is_previous_result());
        assert_eq!(p.code.loinc(), current.code.loinc(), "same code as the result it came with");
        assert_ne!(p.effective_time, current.effective_time);
    }
    assert_eq!(r.current_results().count(), 44);
    let chapters: std::collections::BTreeSet<_> = r.observations.iter().filter_map(|o| o.chapter.as_ref()?.code.clone()).collect();
    assert_eq!(chapters.len(), 3, "three chapters: {chapters:?}");
    assert!(r.attachments.iter().any(|a| a.purpose == AttachmentPurpose::Illustration && a.media_type == "image/png"));
    assert!(!r.comments.is_empty() || r.observations.iter().any(|o| !o.comments.is_empty()));
    // An impossible date in a previous result is reported, not guessed.
    assert!(r.warnings.iter().any(|w| w.contains("20092012081500")));
}

#[test]
fn auto_presentable_wrapper_is_read_like_a_plain_document() {
    let r = corpus("BIO-CR-BIO_2021.01_Auto-Presentable.xml");
    assert_eq!(r.kind, DocumentKind::CrBioAutoPresentable);
    assert_eq!(r.observations.len(), 11);
    assert!(r.observations.iter().all(|o| o.value.is_some()), "prefixed xsi:type values (c:PQ) understood");
    assert!(r.header.patient.as_ref().unwrap().ins().is_some());
}

#[test]
fn pdf_only_document_has_its_pdf_and_no_results() {
    let r = corpus("BIO-CR-BIO_2021.01_CDA-R2-Niveau-1.xml");
    assert_eq!(r.kind, DocumentKind::CrBioPdfOnly);
    assert!(r.observations.is_empty());
    assert_eq!(r.attachments.len(), 1);
    assert!(r.attachments[0].bytes().unwrap().starts_with(b"%PDF"));
}

#[test]
fn narratives_are_kept_as_safe_html() {
    let r = corpus("BIO-CR-BIO_2024.01_TSH_1.xml");
    let chapter = &r.sections[0];
    assert_eq!(chapter.kind, SectionKind::Chapter);
    let sub = &chapter.sub_sections[0];
    assert!(sub.narrative_html.contains("<table>"), "{}", sub.narrative_html);
    assert!(sub.narrative_html.contains("1.950 mUI/l"));
    assert!(r.sections.iter().any(|s| s.kind == SectionKind::PdfCopy));
}

/// A minimal structured CR-BIO around one observation body, for hostile-input tests.
fn one_result(observation_inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>
<component><structuredBody><component><section>
<templateId root="1.3.6.1.4.1.19376.1.3.3.2.1"/><code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/>
<entry><act><entryRelationship typeCode="COMP"><observation>{observation_inner}</observation></entryRelationship></act></entry>
</section></component></structuredBody></component></ClinicalDocument>"#
    )
}

#[test]
fn absurd_numbers_are_unreadable_values_not_numbers() {
    for raw in ["1e999", "NaN", "inf", "1.2.3", "--1", "12345678901234567890123456789012345678901234567890", "0x1F", "", "1e"] {
        let doc = one_result(&format!(
            r#"<code code="2345-7" codeSystem="2.16.840.1.113883.6.1"/><value xsi:type="PQ" value="{raw}" unit="mmol/L"/>"#
        ));
        let r = parse(doc.as_bytes()).unwrap();
        assert!(matches!(r.observations[0].value, Some(Value::Unreadable { .. })), "{raw:?} gave {:?}", r.observations[0].value);
    }
    let doc = one_result(r#"<code code="2345-7" codeSystem="2.16.840.1.113883.6.1"/><value xsi:type="PQ" value="5,6" unit="mmol/L"/>"#);
    let r = parse(doc.as_bytes()).unwrap();
    assert_eq!(
        r.observations[0].value,
        Some(Value::Quantity(Quantity { value: Decimal::parse("5.6").unwrap(), unit: Some("mmol/L".into()) }))
    );
}

#[test]
fn aborted_and_null_results_are_kept_as_such() {
    let doc = one_result(
        r#"<code code="2345-7" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="aborted"/><value xsi:type="PQ" nullFlavor="NA"/>"#,
    );
    let r = parse(doc.as_bytes()).unwrap();
    assert_eq!(r.observations[0].status, ResultStatus::Aborted);
    assert_eq!(r.observations[0].value, Some(Value::Null { flavor: "NA".into() }));
}

#[test]
fn censored_bounds_follow_inclusive() {
    let doc = one_result(r#"<code code="1-8"/><value xsi:type="IVL_PQ"><low value="0.512" unit="mg/L" inclusive="false"/></value>"#);
    let r = parse(doc.as_bytes()).unwrap();
    assert!(matches!(r.observations[0].value, Some(Value::Censored { comparator: Comparator::Greater, .. })));
}

#[test]
fn hostile_documents_fail_cleanly_with_a_position() {
    let laughs = format!(
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">{}]><ClinicalDocument xmlns="urn:hl7-org:v3">&lol9;</ClinicalDocument>"#,
        (1..10).map(|i| format!(r#"<!ENTITY lol{i} "{}">"#, format!("&lol{};", i - 1).repeat(10))).collect::<String>()
    );
    let err = parse(laughs.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("DOCTYPE"), "{err}");
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><ClinicalDocument xmlns="urn:hl7-org:v3">&x;</ClinicalDocument>"#;
    assert!(parse(xxe.as_bytes()).is_err());
    let doc = std::fs::read(corpus_dir().join("BIO-CR-BIO_2024.01_TSH_1.xml")).unwrap();
    let truncated = &doc[..doc.len() / 2];
    let err = parse(truncated).unwrap_err();
    let ParseError::Xml(xml) = &err;
    assert!(xml.line > 100, "the error says where: {err}");
    let deep = format!("<a>{}{}</a>", "<b>".repeat(10_000), "</b>".repeat(10_000));
    assert!(matches!(parse(deep.as_bytes()), Err(ParseError::Xml(XmlError { kind: XmlErrorKind::TooDeep { .. }, .. }))));
    let limits = Limits { max_bytes: 1000, ..Limits::default() };
    assert!(matches!(parse_with_limits(&doc, &limits), Err(ParseError::Xml(XmlError { kind: XmlErrorKind::TooLarge { .. }, .. }))));
    let lying =
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>\xE9</title></ClinicalDocument>";
    assert!(matches!(parse(lying), Err(ParseError::Xml(XmlError { kind: XmlErrorKind::InvalidUtf8, .. }))));
}

#[test]
fn every_prefix_of_a_real_document_is_handled() {
    // Truncation at any point (a broken download) gives an error, never a panic or a partial
    // report passed off as whole.
    let doc = std::fs::read(corpus_dir().join("BIO-CR-BIO_2024.01_Glycémie mole.xml")).unwrap();
    for cut in (0..doc.len()).step_by(997) {
        assert!(parse(&doc[..cut]).is_err(), "cut at {cut}");
    }
}

fn all_narrative(sections: &[Section], out: &mut String) {
    for s in sections {
        out.push_str(&s.narrative_html);
        out.push('\n');
        all_narrative(&s.sub_sections, out);
    }
}

#[test]
fn every_structured_result_value_appears_in_the_laboratory_narrative() {
    // The narrative is what the laboratory's biologist signed: every numeric value the parser
    // extracts must be found there, as written (point or comma).
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let report = parse(&std::fs::read(&path).unwrap()).unwrap();
        if !report.kind.has_structured_results() {
            continue;
        }
        let mut narrative = String::new();
        all_narrative(&report.sections, &mut narrative);
        // Laboratories group thousands with (non-breaking) spaces: "100 000 /mL".
        let narrative: String = narrative.chars().filter(|c| !c.is_whitespace() && *c != '\u{a0}').collect();
        for o in report.current_results() {
            let number = match &o.value {
                Some(Value::Quantity(q)) => q.value.as_str().to_string(),
                Some(Value::Censored { quantity, .. }) => quantity.value.as_str().to_string(),
                Some(Value::Real { value }) => value.as_str().to_string(),
                _ => continue,
            };
            let comma = number.replace('.', ",");
            let code = o.code.loinc().or(o.code.label()).unwrap_or_default().to_string();
            if !(narrative.contains(&number) || narrative.contains(&comma)) {
                mismatches.push((name.clone(), code, number));
            }
            checked += 1;
        }
    }
    assert!(checked > 150, "checked {checked} values");
    // The agency's samples disagree with themselves in one place, in every microbiology and
    // electrophoresis example: gentamicin MIC (LOINC 18928-2, or 267-5 in later versions) is
    // 0.032 in the structured body and "<0,0032" in the narrative. Kept as a known oddity; any
    // other mismatch is a parser bug.
    let gentamicin = |(_, code, number): &(String, String, String)| (code == "18928-2" || code == "267-5") && number == "0.032";
    assert!(mismatches.iter().all(gentamicin), "{mismatches:#?}");
    assert_eq!(mismatches.len(), 9, "{mismatches:#?}");
}
