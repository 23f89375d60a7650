//! Any bytes into the CR-BIO parser: it must return (a report or an error), never panic, never
//! hang, and stay within its limits. Seeded with the shared corpus by `make fuzz`.
#![no_main]

use bioviewer_core::cda::{Limits, parse_with_limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Smaller caps than production so the fuzzer reaches the limit paths too.
    let limits = Limits { max_bytes: 4 * 1024 * 1024, max_depth: 64, max_nodes: 200_000, max_attributes: 64 };
    if let Ok(report) = parse_with_limits(data, &limits) {
        // Invariants of a parsed report, whatever the input.
        for (position, o) in report.observations.iter().enumerate() {
            assert_eq!(o.index, position);
            if let Some(parent) = o.previous_of {
                assert!(parent < position, "a previous result follows the result it came with");
            }
        }
    }
});
