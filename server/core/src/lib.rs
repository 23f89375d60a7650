//! Bioviewer's pure core: reading CR-BIO documents, units, normalisation.
//!
//! Nothing in this crate performs I/O, touches a database, speaks HTTP or knows about the UI:
//! bytes and values in, values out. That keeps it fast to test, fuzzable, and usable from the
//! server, the command line and the browser bundle alike (see `ARCHITECTURE.md`).
//!
//! Module map:
//! - [`xml`]: a small borrowed XML tree with the safety limits (no DOCTYPE, caps).
//! - [`cda`]: CR-BIO documents to typed reports.
//! - [`catalogue`]: analytes (LOINC grouping, units, molar masses, biological variation) and
//!   laboratories' local codes.
//! - [`demo`]: generated patients with clinical stories and laboratories with their habits.
//! - [`export`]: the history as CSV.
//! - [`fhir`]: the history as FHIR R4 resources (Patient, DiagnosticReport, Observation).
//! - [`judge`]: what a result is judged against: the laboratory's range, a treatment target,
//!   the published critical limits.
//! - [`normalise`]: all of a patient's reports into one history (series per analyte).
//! - [`qualitative`]: what a coded or text result says (positive, negative, abnormal finding).
//! - [`report_view`]: one report as a reader goes through it (results by chapter, isolates
//!   with their susceptibility grid, prescriber, sampling and validation).
//! - [`units`]: UCUM units as laboratories write them, and exact conversions.

pub mod catalogue;
pub mod cda;
pub mod demo;
pub mod export;
pub mod fhir;
mod fxhash;
pub mod judge;
pub mod normalise;
pub mod qualitative;
pub mod report_view;
pub mod units;
pub mod xml;
