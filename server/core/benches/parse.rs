//! Parser throughput over the shared corpus, beside a bare quick-xml pass over the same bytes
//! (every event read, nothing built). Goal (issue "CR-BIO parser"): full extraction at no less
//! than half the bare pass's throughput. Figures are recorded in docs/benchmarks.md.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quick_xml::Reader;
use quick_xml::events::Event;

fn corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/ans-cr-bio");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn bare_pass(bytes: &[u8]) -> usize {
    let mut reader = Reader::from_reader(bytes);
    let mut buf = Vec::with_capacity(1024);
    let mut events = 0;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Eof) => break,
            Ok(event) => {
                black_box(&event);
                events += 1;
            }
            Err(_) => break,
        }
        buf.clear();
    }
    events
}

/// The bare pass and the full extraction over the same documents, side by side in one group;
/// `more` adds benchmarks to the group before it closes.
fn side_by_side(
    c: &mut Criterion,
    name: &str,
    docs: &[Vec<u8>],
    samples: usize,
    more: impl FnOnce(&mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>),
) {
    let total: usize = docs.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(total as u64));
    group.sample_size(samples);
    group.bench_function("bare_quick_xml_pass", |b| b.iter(|| docs.iter().map(|d| bare_pass(black_box(d))).sum::<usize>()));
    group.bench_function("full_extraction", |b| {
        b.iter(|| docs.iter().map(|d| bioviewer_core::cda::parse(black_box(d)).map_or(0, |r| r.observations.len())).sum::<usize>())
    });
    more(&mut group);
    group.finish();
}

fn bench(c: &mut Criterion) {
    let docs = corpus();
    side_by_side(c, "corpus", &docs, 30, |group| {
        // The same, also decoding every attachment (PDF copies, images), which the parser
        // leaves to whoever opens one.
        group.bench_function("full_extraction_with_attachments_decoded", |b| {
            b.iter(|| {
                docs.iter()
                    .map(|d| {
                        bioviewer_core::cda::parse(black_box(d))
                            .map_or(0, |r| r.attachments.iter().map(|a| a.bytes().map_or(0, |b| b.len())).sum::<usize>())
                    })
                    .sum::<usize>()
            })
        });
    });

    // The other kind of document: markup only, no embedded copy. The reports of the generated
    // ten-year haemodialysis patient (a check every week), as the viewer parses them.
    let end = bioviewer_core::cda::CdaTime::parse_hl7("20261101").map_or(20_000, |t| t.epoch_seconds() / 86_400);
    let mut by_patient: std::collections::BTreeMap<String, Vec<Vec<u8>>> = Default::default();
    for d in &bioviewer_core::demo::generate(7, 10, 7, end) {
        by_patient.entry(d.patient.clone()).or_default().push(bioviewer_core::cda::writer::write_cr_bio(&d.report).into_bytes());
    }
    let reports = by_patient.into_values().max_by_key(Vec::len).unwrap_or_default();
    side_by_side(c, "ten_year_patient", &reports, 20, |_| {});
}

criterion_group!(benches, bench);
criterion_main!(benches);
