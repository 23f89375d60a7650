//! The audit trail's files outside the database: the chain's key and the checkpoint log.
//!
//! The key (`--audit-key-file`) makes the chain's hashes an HMAC nobody holding only the
//! database can recompute; it is created at first start (32 random bytes, mode 0600). The
//! checkpoint log (`--audit-checkpoint-file`) receives the chain's head every so often, so a
//! cut-off tail or a chain rewritten with the key still disagrees with a line written earlier.
//! Both belong somewhere the database's backups and administrators do not reach.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::audit::{AUDIT_KEY_BYTES, AuditKey, Checkpoint};

#[derive(Debug, thiserror::Error)]
pub enum AuditFileError {
    #[error("cannot read the audit key file {path}: {source}")]
    ReadKey { path: PathBuf, source: std::io::Error },
    #[error("cannot create the audit key file {path}: {source}")]
    CreateKey { path: PathBuf, source: std::io::Error },
    #[error("the audit key file {path} is not a key: {problem}")]
    BadKey { path: PathBuf, problem: String },
    #[error("no random source for the audit key: {0}")]
    Random(String),
    #[error("cannot read the audit checkpoint file {path}: {source}")]
    ReadCheckpoints { path: PathBuf, source: std::io::Error },
    #[error("the audit checkpoint file {path} has a line that is not a checkpoint (line {line})")]
    BadCheckpoint { path: PathBuf, line: usize },
    #[error("cannot write to the audit checkpoint file {path}: {source}")]
    WriteCheckpoint { path: PathBuf, source: std::io::Error },
}

/// A key read from its file, or created there when `create` and the file is absent.
#[derive(Debug)]
pub struct LoadedKey {
    pub key: AuditKey,
    /// The file did not exist: the key is new.
    pub created: bool,
}

/// Reads the chain's key; creates it (32 random bytes, readable by its owner only) when the
/// file is absent and `create` is set. Never creates over an existing file.
pub fn load_key(path: &Path, create: bool) -> Result<LoadedKey, AuditFileError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let key = AuditKey::from_bytes(&bytes).map_err(|e| AuditFileError::BadKey { path: path.into(), problem: e.to_string() })?;
            warn_if_readable_by_others(path);
            Ok(LoadedKey { key, created: false })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let mut bytes = [0u8; AUDIT_KEY_BYTES];
            getrandom::fill(&mut bytes).map_err(|e| AuditFileError::Random(e.to_string()))?;
            write_new_private_file(path, &bytes).map_err(|source| AuditFileError::CreateKey { path: path.into(), source })?;
            let key = AuditKey::from_bytes(&bytes).map_err(|e| AuditFileError::BadKey { path: path.into(), problem: e.to_string() })?;
            tracing::warn!(path = %path.display(), "a new audit key was created: keep it off the database host's backups");
            Ok(LoadedKey { key, created: true })
        }
        Err(source) => Err(AuditFileError::ReadKey { path: path.into(), source }),
    }
}

fn write_new_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    // `create_new`: two processes starting at once cannot both write a key.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the audit key file is readable by others than its owner (chmod 600 it)");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// Every checkpoint of the file; an absent file has none.
pub fn read_checkpoints(path: &Path) -> Result<Vec<Checkpoint>, AuditFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(AuditFileError::ReadCheckpoints { path: path.into(), source }),
    };
    Checkpoint::parse_all(&text).map_err(|line| AuditFileError::BadCheckpoint { path: path.into(), line })
}

/// Appends one checkpoint (one short line, written in one call: lines never interleave).
pub fn append_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), AuditFileError> {
    let write = || -> std::io::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new().append(true).create(true).open(path)?;
        file.write_all(checkpoint.line().as_bytes())?;
        file.sync_data()
    };
    write().map_err(|source| AuditFileError::WriteCheckpoint { path: path.into(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_private_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        assert!(matches!(load_key(&path, false), Err(AuditFileError::ReadKey { .. })), "not created unless asked");
        let first = load_key(&path, true).unwrap();
        assert!(first.created);
        assert_eq!(std::fs::read(&path).unwrap().len(), AUDIT_KEY_BYTES);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = load_key(&path, true).unwrap();
        assert!(!again.created, "an existing key is kept");
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(load_key(&path, true), Err(AuditFileError::BadKey { .. })));
    }

    #[test]
    fn checkpoints_append_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit-checkpoints.log");
        assert_eq!(read_checkpoints(&path).unwrap(), vec![]);
        let c = |seq| Checkpoint { at: "2026-12-03T08:00:00.000Z".into(), seq, hash: "a".repeat(64) };
        append_checkpoint(&path, &c(10)).unwrap();
        append_checkpoint(&path, &c(20)).unwrap();
        assert_eq!(read_checkpoints(&path).unwrap(), vec![c(10), c(20)]);
    }
}
