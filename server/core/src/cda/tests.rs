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
            DocumentKind::OtherCda
        } else if name.contains("Auto-Presentable") {
            DocumentKind::CrBioAutoPresentable
        } else if name.contains("Niveau-1") {
            DocumentKind::CrBioPdfOnly
        } else {
            DocumentKind::CrBioStructured
        };
        assert_eq!(report.kind, expected, "{name}");
        if report.kind.is_cr_bio() {
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
