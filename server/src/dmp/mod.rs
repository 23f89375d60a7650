//! The DMP adapter (IHE XDS.b consumer).
//!
//! - [`vihf`]: the signed SAML assertion every request carries;
//! - [`patients`]: TD0.2, does the patient have a DMP (HL7v3 `PRPA_IN201307UV02`);
//! - [`xds`]: ITI-18 FindDocuments and ITI-43 Retrieve, requests and answers (pure);
//! - [`mtom`]: MTOM/XOP multipart messages;
//! - [`client`]: the HTTP client (TLS client certificate, retries with backoff);
//! - [`sync`]: one patient's incremental sync into the store;
//! - [`simulator`]: a registry + repository over HTTP for the demo and the tests.

pub mod client;
pub mod mtom;
pub mod patients;
pub mod simulator;
pub mod sync;
pub mod vihf;
pub mod xds;
