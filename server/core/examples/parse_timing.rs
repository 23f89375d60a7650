//! Per-document parse time beside a bare quick-xml pass over the same bytes (a profiling aid
//! for docs/benchmarks.md): `cargo run --release -p bioviewer-core --example parse_timing`.

use std::time::Instant;
fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/ans-cr-bio");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let n = 50;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(bioviewer_core::cda::parse(&bytes).ok());
        }
        let full = t.elapsed().as_secs_f64() / n as f64;
        let t = Instant::now();
        for _ in 0..n {
            let mut r = quick_xml::Reader::from_reader(&bytes[..]);
            let mut buf = Vec::new();
            loop {
                match r.read_event_into(&mut buf) {
                    Ok(quick_xml::events::Event::Eof) | Err(_) => break,
                    Ok(e) => {
                        std::hint::black_box(&e);
                    }
                }
                buf.clear();
            }
        }
        let bare = t.elapsed().as_secs_f64() / n as f64;
        println!(
            "{:>8} KB  full {:>7.3} ms  bare {:>7.3} ms  ratio {:.2}  {}",
            bytes.len() / 1024,
            full * 1e3,
            bare * 1e3,
            bare / full,
            f.file_name().unwrap().to_string_lossy()
        );
    }
}
