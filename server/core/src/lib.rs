//! Bioviewer's pure core: reading CR-BIO documents, units, normalisation.
//!
//! Nothing in this crate performs I/O, touches a database, speaks HTTP or knows about the UI:
//! bytes and values in, values out. That keeps it fast to test, fuzzable, and usable from the
//! server, the command line and the browser bundle alike (see `ARCHITECTURE.md`).
//!
//! Module map:
//! - [`xml`]: a small borrowed XML tree with the safety limits (no DOCTYPE, caps).
//! - [`cda`]: CR-BIO documents to typed reports.

pub mod cda;
pub mod xml;
