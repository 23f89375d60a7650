//! The audit trail's hash chain, as pure functions: each record's hash covers the previous
//! record's hash and every field of its own, so changing or deleting a record breaks the chain
//! at that record (verification names it).
//!
//! Records are keyed (scheme `hmac-sha256`): their hash is an HMAC-SHA256 under a key kept
//! outside the database, so someone holding only the database cannot recompute the chain after
//! a change. Records written before keying (scheme `sha256`, plain SHA-256 over the same
//! encoding) stay verifiable; they may only form the chain's beginning, and a chain verified
//! with a key must end on a keyed record, so turning keyed records into plain ones shows.
//!
//! A chain cannot by itself show that its newest records were cut off: the head is written to a
//! checkpoint file elsewhere ([`Checkpoint`]) and `bioviewer audit verify --expect-head` compares
//! it with a head noted earlier.

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
    /// How `hash` is computed: [`SCHEME_KEYED`] or [`SCHEME_PLAIN`] (records written before keying).
    pub scheme: String,
}

/// Records written before the chain was keyed: plain SHA-256.
pub const SCHEME_PLAIN: &str = "sha256";
/// Records hashed with HMAC-SHA256 under the audit key.
pub const SCHEME_KEYED: &str = "hmac-sha256";

/// The key of the chain's HMAC. Kept outside the database (`--audit-key-file`); never printed.
#[derive(Clone)]
pub struct AuditKey(ring::hmac::Key);

/// The length of a key Bioviewer creates, and the least it accepts.
pub const AUDIT_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an audit key has at least {AUDIT_KEY_BYTES} bytes (this one has {0})")]
pub struct ShortKey(pub usize);

impl AuditKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<AuditKey, ShortKey> {
        if bytes.len() < AUDIT_KEY_BYTES {
            return Err(ShortKey(bytes.len()));
        }
        Ok(AuditKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes)))
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AuditRecord {
    /// The hash this record must carry given its fields, its `prev_hash` and its scheme; `None`
    /// for a keyed record when no key is given, or an unknown scheme.
    pub fn expected_hash(&self, key: Option<&AuditKey>) -> Option<String> {
        let encoded = self.encoded();
        match self.scheme.as_str() {
            SCHEME_PLAIN => Some(hex(&Sha256::digest(encoded.as_bytes()))),
            SCHEME_KEYED => key.map(|k| hex(ring::hmac::sign(&k.0, encoded.as_bytes()).as_ref())),
            _ => None,
        }
    }

    /// Sets `hash` for a new keyed record.
    pub fn seal(&mut self, key: &AuditKey) {
        self.scheme = SCHEME_KEYED.to_string();
        self.hash = hex(ring::hmac::sign(&key.0, self.encoded().as_bytes()).as_ref());
    }

    fn encoded(&self) -> String {
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
        encoded
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
    #[error("audit record {seq} is keyed and no audit key was given: it cannot be verified")]
    NoKey { seq: i64 },
    #[error("audit record {seq} is not keyed but follows a keyed record (the chain was rewritten without the key)")]
    Downgraded { seq: i64 },
    #[error("the chain ends on record {seq}, which is not keyed: the chain was rewritten without the key, or never keyed")]
    UnkeyedHead { seq: i64 },
    #[error("checkpoint {seq} {hash} (written at {at}) is not in the chain: records were cut off or rewritten")]
    CheckpointMissing { at: String, seq: i64, hash: String },
    #[error("the chain ends on record {found_seq}, not on the expected head {seq}: {why}", why = if *found_seq < *seq { "its newest records were cut off" } else { "records were added since" })]
    UnexpectedHead { seq: i64, found_seq: i64 },
    #[error("the expected head {seq} is in the chain with another hash: the chain was rewritten")]
    HeadRewritten { seq: i64 },
}

impl ChainBreak {
    /// The first record that fails verification.
    pub fn first_bad_record(&self) -> i64 {
        match self {
            ChainBreak::Modified { seq }
            | ChainBreak::BrokenLink { seq }
            | ChainBreak::NoKey { seq }
            | ChainBreak::Downgraded { seq }
            | ChainBreak::UnkeyedHead { seq }
            | ChainBreak::CheckpointMissing { seq, .. }
            | ChainBreak::HeadRewritten { seq } => *seq,
            ChainBreak::Missing { expected, .. } => *expected,
            // The first record the expected head says should be there.
            ChainBreak::UnexpectedHead { seq, found_seq } => (*found_seq + 1).min(*seq),
        }
    }
}

/// The newest record of a verified chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ChainHead {
    pub records: i64,
    pub last_seq: i64,
    pub last_hash: String,
    /// The last record is keyed (or the chain is empty).
    pub keyed: bool,
}

impl ChainHead {
    /// `SEQ:HASH`, the form `audit verify --expect-head` takes.
    pub fn as_expected(&self) -> String {
        format!("{}:{}", self.last_seq, self.last_hash)
    }
}

/// Checks records in sequence order, one page at a time (feed every page in order), then
/// [`ChainVerifier::finish`].
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: ChainHead,
    key: Option<AuditKey>,
}

impl ChainVerifier {
    /// Without a key, plain records are checked and the first keyed one stops verification.
    pub fn new(key: Option<AuditKey>) -> Self {
        ChainVerifier { head: ChainHead { records: 0, last_seq: 0, last_hash: GENESIS.to_string(), keyed: true }, key }
    }

    pub fn check(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        let expected_seq = self.head.last_seq + 1;
        if record.seq != expected_seq {
            return Err(ChainBreak::Missing { expected: expected_seq, found: record.seq });
        }
        if record.prev_hash != self.head.last_hash {
            return Err(ChainBreak::BrokenLink { seq: record.seq });
        }
        let keyed = record.scheme == SCHEME_KEYED;
        // Plain records only before the first keyed one: a plain record after it was rewritten.
        if !keyed && self.head.records > 0 && self.head.keyed {
            return Err(ChainBreak::Downgraded { seq: record.seq });
        }
        if keyed && self.key.is_none() {
            return Err(ChainBreak::NoKey { seq: record.seq });
        }
        if record.expected_hash(self.key.as_ref()).as_deref() != Some(record.hash.as_str()) {
            return Err(ChainBreak::Modified { seq: record.seq });
        }
        self.head = ChainHead { records: self.head.records + 1, last_seq: record.seq, last_hash: record.hash.clone(), keyed };
        Ok(())
    }

    /// The verified head. A chain checked with a key must end on a keyed record: otherwise it
    /// was rewritten whole with plain hashes (or was never keyed, which [`ChainVerifier::head`]
    /// still reports for the one moment a key is first created).
    pub fn finish(self) -> Result<ChainHead, ChainBreak> {
        if self.key.is_some() && !self.head.keyed {
            return Err(ChainBreak::UnkeyedHead { seq: self.head.last_seq });
        }
        Ok(self.head)
    }

    /// The head, whether or not it is keyed.
    pub fn head(self) -> ChainHead {
        self.head
    }
}

/// One line of the checkpoint file: the chain's head at some moment, kept outside the
/// database (`at seq hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub at: String,
    pub seq: i64,
    pub hash: String,
}

impl Checkpoint {
    pub fn line(&self) -> String {
        format!("{} {} {}\n", self.at, self.seq, self.hash)
    }

    /// Reads a checkpoint file's text; names the first line that is not a checkpoint.
    pub fn parse_all(text: &str) -> Result<Vec<Checkpoint>, usize> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, line)| {
                let mut parts = line.split_whitespace();
                match (parts.next(), parts.next().map(str::parse::<i64>), parts.next(), parts.next()) {
                    (Some(at), Some(Ok(seq)), Some(hash), None) if seq > 0 && hash.len() == 64 => {
                        Ok(Checkpoint { at: at.to_string(), seq, hash: hash.to_string() })
                    }
                    _ => Err(n + 1),
                }
            })
            .collect()
    }
}

/// `SEQ:HASH`, as `audit verify` prints a head.
pub fn parse_expected_head(text: &str) -> Option<(i64, String)> {
    let (seq, hash) = text.trim().split_once(':')?;
    let seq = seq.parse::<i64>().ok().filter(|s| *s >= 0)?;
    (hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit())).then(|| (seq, hash.to_ascii_lowercase()))
}

/// Whether the chain whose head is `head` still ends on the expected record: `stored_hash` is the
/// hash the chain holds at `expected_seq` now (`None`: no such record).
pub fn check_expected_head(head: &ChainHead, expected_seq: i64, expected_hash: &str, stored_hash: Option<&str>) -> Result<(), ChainBreak> {
    match stored_hash {
        Some(h) if h != expected_hash => Err(ChainBreak::HeadRewritten { seq: expected_seq }),
        None if expected_seq > 0 => Err(ChainBreak::UnexpectedHead { seq: expected_seq, found_seq: head.last_seq }),
        _ if head.last_seq != expected_seq => Err(ChainBreak::UnexpectedHead { seq: expected_seq, found_seq: head.last_seq }),
        _ => Ok(()),
    }
}

/// Whether a checkpoint is still in the chain: `stored_hash` is the hash the chain holds at the
/// checkpoint's sequence number now (`None`: no such record).
pub fn check_checkpoint(checkpoint: &Checkpoint, stored_hash: Option<&str>) -> Result<(), ChainBreak> {
    if stored_hash == Some(checkpoint.hash.as_str()) {
        return Ok(());
    }
    Err(ChainBreak::CheckpointMissing { at: checkpoint.at.clone(), seq: checkpoint.seq, hash: checkpoint.hash.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::from_bytes(&[7u8; 32]).unwrap()
    }

    fn record(seq: i64, prev_hash: String) -> AuditRecord {
        AuditRecord {
            seq,
            at: format!("2026-11-26T10:00:{seq:02}.000Z"),
            actor_id: Some("a".into()),
            actor_role: Some("professional".into()),
            patient_id: Some("p".into()),
            action: "view_history".into(),
            mode: Some("attending_gp".into()),
            address: None,
            detail: None,
            prev_hash,
            hash: String::new(),
            scheme: SCHEME_PLAIN.into(),
        }
    }

    /// `plain` records hashed without a key (written before keying), then keyed ones.
    fn mixed_chain(plain: i64, keyed: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for seq in 1..=plain + keyed {
            let mut r = record(seq, out.last().map(|r| r.hash.clone()).unwrap_or_else(|| GENESIS.to_string()));
            if seq > plain {
                r.seal(&key());
            } else {
                r.hash = r.expected_hash(None).unwrap();
            }
            out.push(r);
        }
        out
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        mixed_chain(0, n)
    }

    fn verify_with(records: &[AuditRecord], key: Option<AuditKey>) -> Result<ChainHead, ChainBreak> {
        let mut v = ChainVerifier::new(key);
        for r in records {
            v.check(r)?;
        }
        v.finish()
    }

    fn verify(records: &[AuditRecord]) -> Result<ChainHead, ChainBreak> {
        verify_with(records, Some(key()))
    }

    /// What an attacker with the database but not the key can do: recompute every hash.
    fn rewrite_plain(records: &mut [AuditRecord]) {
        let mut prev = GENESIS.to_string();
        for r in records.iter_mut() {
            r.prev_hash = prev;
            r.scheme = SCHEME_PLAIN.into();
            r.hash = r.expected_hash(None).unwrap();
            prev = r.hash.clone();
        }
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
        assert_ne!(a.expected_hash(Some(&key())), b.expected_hash(Some(&key())));
    }

    #[test]
    fn records_hashed_before_keying_stay_verifiable() {
        let records = mixed_chain(3, 2);
        assert_eq!(verify(&records).unwrap().last_seq, 5);
        // Without the key, the plain part is checked and the first keyed record stops it.
        assert_eq!(verify_with(&records, None).unwrap_err(), ChainBreak::NoKey { seq: 4 });
    }

    #[test]
    fn a_chain_rewritten_whole_with_plain_hashes_fails_with_the_key() {
        let mut records = mixed_chain(2, 4);
        rewrite_plain(&mut records);
        assert_eq!(verify(&records).unwrap_err(), ChainBreak::UnkeyedHead { seq: 6 });
        // Rewriting from a keyed record on: a plain record after a keyed one.
        let mut records = mixed_chain(0, 4);
        rewrite_plain(&mut records[2..]);
        records[2].prev_hash = records[1].hash.clone();
        let mut prev = records[1].hash.clone();
        for r in records[2..].iter_mut() {
            r.prev_hash = prev;
            r.hash = r.expected_hash(None).unwrap();
            prev = r.hash.clone();
        }
        assert_eq!(verify(&records).unwrap_err(), ChainBreak::Downgraded { seq: 3 });
        // Recomputed with another key: every keyed record fails.
        let mut records = chain(3);
        let other = AuditKey::from_bytes(&[9u8; 32]).unwrap();
        let mut prev = GENESIS.to_string();
        for r in records.iter_mut() {
            r.prev_hash = prev;
            r.seal(&other);
            prev = r.hash.clone();
        }
        assert_eq!(verify(&records).unwrap_err(), ChainBreak::Modified { seq: 1 });
    }

    #[test]
    fn a_cut_off_tail_fails_the_expected_head_and_the_checkpoints() {
        let mut records = chain(6);
        let full = verify(&records).unwrap();
        let (seq, hash) = parse_expected_head(&full.as_expected()).unwrap();
        assert_eq!(check_expected_head(&full, seq, &hash, Some(&records[5].hash)), Ok(()));
        records.truncate(4);
        let cut = verify(&records).unwrap();
        assert_eq!(check_expected_head(&cut, seq, &hash, None), Err(ChainBreak::UnexpectedHead { seq: 6, found_seq: 4 }));
        let checkpoint = Checkpoint { at: "2026-11-26T10:05:00.000Z".into(), seq: 6, hash: hash.clone() };
        let parsed = Checkpoint::parse_all(&checkpoint.line()).unwrap();
        assert_eq!(parsed, vec![checkpoint.clone()]);
        assert!(check_checkpoint(&checkpoint, None).is_err());
        assert!(check_checkpoint(&checkpoint, Some(&hash)).is_ok());
        assert_eq!(Checkpoint::parse_all("2026 x abc\n"), Err(1));
        assert_eq!(parse_expected_head("6:xyz"), None);
    }

    #[test]
    fn a_short_key_is_refused() {
        assert_eq!(AuditKey::from_bytes(&[1u8; 16]).unwrap_err(), ShortKey(16));
    }
}
