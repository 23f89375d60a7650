//! Normalisation of a generated ten-year history: 400 reports, 15,000+ results, 5 laboratories
//! with their own habits (mass or molar units, G/L or 10*9/L, two TSH codes, previous results
//! repeated). Target (issue "Cross-laboratory normalisation"): under 50 ms on the 2-core machine.

use std::hint::black_box;

use bioviewer_core::catalogue::{Catalogue, EMBEDDED_TRANSCODING, Transcoding};
use bioviewer_core::cda::*;
use bioviewer_core::normalise::{InputDocument, Options, Provenance, normalise};
use criterion::{Criterion, criterion_group, criterion_main};

/// (LOINC by lab habit, unit by lab habit, base value, spread)
const PANEL: &[(&str, &str, &str, &str, f64, f64)] = &[
    // code (molar lab), code (mass lab), unit molar, unit mass, value in molar unit, sd
    ("14749-6", "2345-7", "mmol/L", "g/L", 6.5, 0.8),
    ("14682-9", "2160-0", "umol/L", "mg/L", 95.0, 10.0),
    ("22664-7", "3091-6", "mmol/L", "g/L", 6.0, 1.0),
    ("2951-2", "2951-2", "mmol/L", "mmol/L", 140.0, 2.0),
    ("2823-3", "2823-3", "mmol/L", "mmol/L", 4.2, 0.3),
    ("2075-0", "2075-0", "mmol/L", "mmol/L", 102.0, 2.0),
    ("14647-2", "2093-3", "mmol/L", "g/L", 5.2, 0.5),
    ("14646-4", "2085-9", "mmol/L", "g/L", 1.3, 0.2),
    ("14927-8", "2571-8", "mmol/L", "g/L", 1.6, 0.4),
    ("4548-4", "4548-4", "%", "%", 7.1, 0.5),
    ("1742-6", "1742-6", "U/L", "U/L", 30.0, 8.0),
    ("1920-8", "1920-8", "U/L", "U/L", 28.0, 6.0),
    ("2324-2", "2324-2", "U/L", "U/L", 40.0, 10.0),
    ("6768-6", "6768-6", "U/L", "U/L", 80.0, 10.0),
    ("14631-6", "1975-2", "umol/L", "mg/L", 12.0, 3.0),
    ("1751-7", "1751-7", "g/L", "g/L", 42.0, 2.0),
    ("3016-3", "29575-8", "m[IU]/L", "m[IU]/L", 2.1, 0.6),
    ("14920-3", "3024-7", "pmol/L", "pg/mL", 15.0, 2.0),
    ("2276-4", "2276-4", "ug/L", "ug/L", 90.0, 30.0),
    ("1988-5", "1988-5", "mg/L", "mg/L", 4.0, 3.0),
    ("6690-2", "6690-2", "10*9/L", "G/L", 7.0, 1.5),
    ("789-8", "789-8", "10*12/L", "T/L", 4.6, 0.3),
    ("718-7", "718-7", "g/dL", "g/dL", 13.5, 0.8),
    ("4544-3", "4544-3", "%", "%", 41.0, 2.0),
    ("787-2", "787-2", "fL", "fL", 90.0, 3.0),
    ("785-6", "785-6", "pg", "pg", 30.0, 1.0),
    ("786-4", "786-4", "g/dL", "g/dL", 33.0, 1.0),
    ("777-3", "777-3", "10*9/L", "G/L", 250.0, 40.0),
    ("751-8", "751-8", "10*9/L", "G/L", 4.2, 1.0),
    ("731-0", "731-0", "10*9/L", "G/L", 2.0, 0.5),
    ("742-7", "742-7", "10*9/L", "G/L", 0.5, 0.1),
    ("711-2", "711-2", "10*9/L", "G/L", 0.2, 0.05),
    ("704-7", "704-7", "10*9/L", "G/L", 0.03, 0.01),
    ("6301-6", "6301-6", "1", "1", 2.5, 0.4),
    ("2000-8", "17861-6", "mmol/L", "mg/L", 2.35, 0.08),
    ("14798-3", "2498-4", "umol/L", "ug/dL", 18.0, 4.0),
    ("62292-8", "62292-8", "ng/mL", "ng/mL", 28.0, 8.0),
    ("2132-9", "2132-9", "pg/mL", "pg/mL", 400.0, 80.0),
];

fn generated_history() -> Vec<Report> {
    let labs = ["Laboratoire A", "Laboratoire B", "Laboratoire C", "Laboratoire D", "Laboratoire E"];
    let mut seed: u64 = 42;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 10_000) as f64 / 10_000.0
    };
    let mut reports = Vec::new();
    // The last result of each test at each laboratory, which that laboratory repeats (REFR).
    let mut previous: Vec<Vec<Option<(CdaTime, Value)>>> = vec![vec![None; PANEL.len()]; labs.len()];
    for n in 0..400u32 {
        let lab = n as usize % labs.len();
        let mass_lab = lab % 2 == 1;
        let days = n as i64 * 9;
        let year = 2015 + (days / 365) as u16;
        let day_of_year = (days % 365) as u16;
        let time = CdaTime::parse_hl7(&format!("{year}{:02}{:02}0800+0100", 1 + day_of_year / 31 % 12, 1 + day_of_year % 28)).unwrap();
        let mut observations = Vec::new();
        for (i, (code_molar, code_mass, unit_molar, unit_mass, value, sd)) in PANEL.iter().enumerate() {
            let code = if mass_lab { code_mass } else { code_molar };
            let unit = if mass_lab { unit_mass } else { unit_molar };
            let v = value + (random() - 0.5) * 2.0 * sd;
            let v = if *unit == "g/L" && *unit_molar == "mmol/L" { v * 0.18 } else { v };
            let value = Value::Quantity(Quantity { value: Decimal::parse(&format!("{v:.2}")).unwrap(), unit: Some(unit.to_string()) });
            let index = observations.len();
            let observation = Observation {
                index,
                previous_of: None,
                chapter: Some(Code { code: Some("18719-5".into()), system: Some(oid::LOINC.into()), ..Code::default() }),
                sub_chapter: None,
                battery: None,
                isolate: None,
                code: Code { code: Some(code.to_string()), system: Some(oid::LOINC.into()), ..Code::default() },
                status: ResultStatus::Completed,
                value: Some(value.clone()),
                interpretation: Vec::new(),
                method: None,
                reference_ranges: Vec::new(),
                effective_time: Some(time),
                collection_time: Some(time),
                collection_time_source: Some(CollectionTimeSource::Sampler),
                performer: Some(Organization { id: None, name: Some(labs[lab].into()) }),
                performer_overridden: false,
                specimen: None,
                comments: Vec::new(),
            };
            observations.push(observation.clone());
            // Every laboratory repeats its own previous result of the same test.
            if let Some((t, v)) = &previous[lab][i] {
                let index = observations.len();
                observations.push(Observation {
                    index,
                    previous_of: Some(index - 1),
                    value: Some(v.clone()),
                    effective_time: Some(*t),
                    collection_time: Some(*t),
                    ..observation
                });
            }
            previous[lab][i] = Some((time, value));
        }
        reports.push(Report::structured(
            Header {
                id: Some(InstanceId { root: "1.2.250.1.999".into(), extension: Some(format!("d{n}")) }),
                set_id: Some(InstanceId { root: "1.2.250.1.999".into(), extension: Some(format!("s{n}")) }),
                version_number: Some(1),
                effective_time: Some(time),
                status: Some(ReportStatus::Completed),
                laboratory: Some(Organization { id: None, name: Some(labs[lab].into()) }),
                patient: Some(Patient::with_id(
                    oid::INS_NIR_TEST,
                    "279035121518989",
                    PersonName::default(),
                    CdaTime::parse_hl7("19600101").ok(),
                    Some(Sex::Male),
                )),
                ..Header::default()
            },
            observations,
        ));
    }
    reports
}

fn bench(c: &mut Criterion) {
    let reports = generated_history();
    let results: usize = reports.iter().map(|r| r.observations.len()).sum();
    assert!(reports.len() >= 400 && results >= 15_000, "{} reports, {results} results", reports.len());
    let catalogue = Catalogue::embedded();
    let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
    let inputs: Vec<InputDocument<'_>> =
        reports.iter().enumerate().map(|(i, r)| InputDocument { id: format!("doc{i}"), report: Ok(r), provenance: Provenance::Operator }).collect();
    let history = normalise(&inputs, &catalogue, &transcoding, &Options::default());
    let points: usize = history.series.iter().map(|s| s.points.len()).sum();
    eprintln!("{} reports, {results} results -> {} series, {points} points", reports.len(), history.series.len());
    c.bench_function("normalise_ten_years_400_reports", |b| {
        b.iter(|| normalise(black_box(&inputs), &catalogue, &transcoding, &Options::default()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
