//! The DMP adapter (IHE XDS.b consumer). For now: the VIHF every request will carry
//! ([`vihf`]); the XDS.b client, the simulator and the sync are issue 5's remaining work.

pub mod vihf;
