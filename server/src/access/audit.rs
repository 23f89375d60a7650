//! The audit trail's hash chain, as pure functions: each record's hash covers the previous
//! record's hash and every field of its own, so changing or deleting a record breaks the chain
//! at that record (verification names it).
//!
//! A chain cannot by itself show that its newest records were cut off: `bioviewer audit verify`
//! prints the head (sequence number and hash) so it can be noted elsewhere and compared later,
//! and the server logs the head at start.

use sha2::{Digest, Sha256};

/// The previous hash of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored record of the audit trail (no clinical data: identifiers, actions, modes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: String,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub patient_id: Option<String>,
    pub action: String,
    pub mode: Option<String>,
    pub address: Option<String>,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record must carry given its fields and its `prev_hash`.
    pub fn expected_hash(&self) -> String {
        // Length-prefixed fields, `~` for an absent one: no two different records encode alike.
        let mut encoded = String::new();
        let mut field = |value: Option<&str>| match value {
            Some(v) => {
                encoded.push_str(&v.len().to_string());
                encoded.push(':');
                encoded.push_str(v);
                encoded.push('|');
            }
            None => encoded.push_str("~|"),
        };
        field(Some(&self.prev_hash));
        field(Some(&self.seq.to_string()));
        field(Some(&self.at));
        field(self.actor_id.as_deref());
        field(self.actor_role.as_deref());
        field(self.patient_id.as_deref());
        field(Some(&self.action));
        field(self.mode.as_deref());
        field(self.address.as_deref());
        field(self.detail.as_deref());
        let digest = Sha256::digest(encoded.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("audit record {seq} was changed: its hash does not match its content")]
    Modified { seq: i64 },
    #[error("audit record {seq} does not follow the record before it (a record before it was removed or replaced)")]
    BrokenLink { seq: i64 },
    #[error("audit records {expected} to {found_minus_one} are missing", found_minus_one = found - 1)]
    Missing { expected: i64, found: i64 },
}

impl ChainBreak {
    /// The first record that fails verification.
    pub fn first_bad_record(&self) -> i64 {
        match self {
            ChainBreak::Modified { seq } | ChainBreak::BrokenLink { seq } => *seq,
            ChainBreak::Missing { expected, .. } => *expected,
        }
    }
}

/// The newest record of a verified chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ChainHead {
    pub records: i64,
    pub last_seq: i64,
    pub last_hash: String,
}

/// Checks records in sequence order, one page at a time (feed every page in order).
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: ChainHead,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier { head: ChainHead { records: 0, last_seq: 0, last_hash: GENESIS.to_string() } }
    }
}

impl ChainVerifier {
    pub fn check(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        let expected_seq = self.head.last_seq + 1;
        if record.seq != expected_seq {
            return Err(ChainBreak::Missing { expected: expected_seq, found: record.seq });
        }
        if record.prev_hash != self.head.last_hash {
            return Err(ChainBreak::BrokenLink { seq: record.seq });
        }
        if record.hash != record.expected_hash() {
            return Err(ChainBreak::Modified { seq: record.seq });
        }
        self.head = ChainHead { records: self.head.records + 1, last_seq: record.seq, last_hash: record.hash.clone() };
        Ok(())
    }

    pub fn head(self) -> ChainHead {
        self.head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for seq in 1..=n {
            let mut r = AuditRecord {
                seq,
                at: format!("2026-11-26T10:00:{seq:02}.000Z"),
                actor_id: Some("a".into()),
                actor_role: Some("professional".into()),
                patient_id: Some("p".into()),
                action: "view_history".into(),
                mode: Some("attending_gp".into()),
                address: None,
                detail: None,
                prev_hash: out.last().map(|r| r.hash.clone()).unwrap_or_else(|| GENESIS.to_string()),
                hash: String::new(),
            };
            r.hash = r.expected_hash();
            out.push(r);
        }
        out
    }

    fn verify(records: &[AuditRecord]) -> Result<ChainHead, ChainBreak> {
        let mut v = ChainVerifier::default();
        for r in records {
            v.check(r)?;
        }
        Ok(v.head())
    }

    #[test]
    fn an_intact_chain_verifies_to_its_head() {
        let records = chain(5);
        let head = verify(&records).unwrap();
        assert_eq!((head.records, head.last_seq), (5, 5));
        assert_eq!(head.last_hash, records[4].hash);
    }

    #[test]
    fn a_changed_field_names_its_record() {
        let mut records = chain(5);
        records[2].patient_id = Some("another patient".into());
        assert_eq!(verify(&records).unwrap_err().first_bad_record(), 3);
    }

    #[test]
    fn a_deleted_record_names_the_first_missing_one() {
        let mut records = chain(5);
        records.remove(1);
        assert_eq!(verify(&records).unwrap_err(), ChainBreak::Missing { expected: 2, found: 3 });
    }

    #[test]
    fn a_deleted_and_renumbered_record_breaks_the_link() {
        // Someone removes record 2, renumbers the rest and recomputes nothing: record 3 (now 2)
        // no longer follows record 1.
        let mut records = chain(5);
        records.remove(1);
        for (i, r) in records.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert_eq!(verify(&records).unwrap_err().first_bad_record(), 2);
    }

    #[test]
    fn absent_and_empty_fields_hash_differently() {
        let mut a = chain(1).remove(0);
        let mut b = a.clone();
        a.detail = None;
        b.detail = Some(String::new());
        assert_ne!(a.expected_hash(), b.expected_hash());
    }
}
