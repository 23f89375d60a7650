//! The DMP adapter (IHE XDS.b consumer). So far: the VIHF every request carries ([`vihf`]) and
//! the ITI-18 FindDocuments request and answer ([`xds`]). The HTTP client (MTOM, ITI-43,
//! TD0.2), the simulator and the sync are issue 5's remaining work.

pub mod mtom;
pub mod vihf;
pub mod xds;
