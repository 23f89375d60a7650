//! Passwords (argon2id), session and CSRF tokens (256 random bits from the operating system).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the password threads could not start: {0}")]
    Thread(String),
}

fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A fresh random token (session id, CSRF token): 32 bytes, base64url without padding.
pub fn new_token() -> Result<String, SecretError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// What the database keeps of a session token.
pub fn token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of a password.
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|e| SecretError::Hash(e.to_string()))?;
    Ok(hasher().hash_password(password.as_bytes(), &salt).map_err(|e| SecretError::Hash(e.to_string()))?.to_string())
}

/// Whether `password` matches the PHC string. An unreadable hash matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Password verifications on a few threads of their own, a bounded number at once.
///
/// Why threads of their own: argon2 takes 19 MiB per verification, and the allocator keeps
/// what a thread freed for that thread's next allocation. Run on tokio's blocking pool, each
/// verification could land on another of its (up to 512) threads and leave 19 MiB behind
/// there: 150 parallel sign-ins once left the process at 1.4 GiB. On `workers` dedicated
/// threads, each reusing one block of memory, the process keeps `workers` × 19 MiB for
/// passwords, however many ask.
pub(crate) struct PasswordChecker {
    jobs: std::sync::mpsc::Sender<Job>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    counters: std::sync::Arc<Counters>,
    workers: usize,
}

struct Job {
    password: String,
    hash: String,
    done: tokio::sync::oneshot::Sender<bool>,
    /// Held until the verification ends, even if the sign-in waiting for it is dropped.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

#[derive(Default)]
struct Counters {
    verified: std::sync::atomic::AtomicU64,
    running: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

/// What password checking has cost so far, for tests and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckerStats {
    /// argon2 verifications run.
    pub verifications: u64,
    /// The most verifications that ever ran at once.
    pub peak_concurrent: usize,
    /// The most allowed at once (the worker threads).
    pub permits: usize,
}

impl PasswordChecker {
    /// Starts `workers` threads; they end when the checker is dropped.
    pub(crate) fn new(workers: usize) -> Result<PasswordChecker, SecretError> {
        use std::sync::atomic::Ordering::SeqCst;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        let counters = std::sync::Arc::new(Counters::default());
        for n in 0..workers {
            let (queue, counters) = (queue.clone(), counters.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    // This thread's argon2 memory, allocated once and reused.
                    let mut memory = Vec::new();
                    loop {
                        let Ok(job) = queue.lock().unwrap_or_else(|e| e.into_inner()).recv() else { return };
                        let running = counters.running.fetch_add(1, SeqCst) + 1;
                        counters.peak.fetch_max(running, SeqCst);
                        counters.verified.fetch_add(1, SeqCst);
                        let matches = verify_password_in(&job.password, &job.hash, &mut memory);
                        counters.running.fetch_sub(1, SeqCst);
                        let _ = job.done.send(matches);
                    }
                })
                .map_err(|e| SecretError::Thread(e.to_string()))?;
        }
        Ok(PasswordChecker { jobs, permits: std::sync::Arc::new(tokio::sync::Semaphore::new(workers)), counters, workers })
    }

    /// Whether `password` matches the PHC string; `None` when no worker was free within
    /// `queue_wait` (the caller says "try again").
    pub(crate) async fn verify(&self, password: String, hash: String, queue_wait: std::time::Duration) -> Option<bool> {
        let permit = tokio::time::timeout(queue_wait, self.permits.clone().acquire_owned()).await.ok()?.ok()?;
        let (done, answer) = tokio::sync::oneshot::channel();
        self.jobs.send(Job { password, hash, done, _permit: permit }).ok()?;
        answer.await.ok()
    }

    pub(crate) fn stats(&self) -> CheckerStats {
        use std::sync::atomic::Ordering::SeqCst;
        CheckerStats {
            verifications: self.counters.verified.load(SeqCst),
            peak_concurrent: self.counters.peak.load(SeqCst),
            permits: self.workers,
        }
    }
}

/// [`verify_password`] in `memory` (argon2's working blocks, grown to the hash's cost on first
/// use and kept by the caller for the next verification): no allocation of 19 MiB per call.
fn verify_password_in(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed)) else { return false };
    let Ok(version) = parsed.version.map(Version::try_from).transpose() else { return false };
    let mut salt_buffer = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buffer) else { return false };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(algorithm, version.unwrap_or_default(), params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, &mut memory[..])
        .is_ok()
        && constant_time_eq_bytes(&computed, expected.as_bytes())
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    constant_time_eq_bytes(a.as_bytes(), b.as_bytes())
}

fn constant_time_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hashed_with_argon2id_and_salted() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct horse ", &a));
        assert!(!verify_password("correct horse", "not a hash"));
        // The same answers with reused memory.
        let mut memory = Vec::new();
        assert!(verify_password_in("correct horse", &a, &mut memory));
        assert_eq!(memory.len(), Params::default().block_count(), "19 MiB, kept for the next call");
        assert!(!verify_password_in("correct horse ", &a, &mut memory));
        assert!(verify_password_in("correct horse", &b, &mut memory));
        assert!(!verify_password_in("correct horse", "not a hash", &mut memory));
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = new_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token().unwrap());
        assert_eq!(token_digest(&a).len(), 64);
        assert!(constant_time_eq(&a, &a.clone()) && !constant_time_eq(&a, &new_token().unwrap()));
    }
}
