//! Users and tokens: argon2 password hashes, random bearer tokens stored only as SHA-256
//! hashes with an expiry, and a slow-down of repeated failed logins per user name.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

use crate::crypto::random_bytes;
use crate::error::{Error, Result};
use crate::store::{Role, Store, User};

/// Hashes a password with argon2id and a random salt (slow on purpose: run it off the
/// async threads).
///
/// # Errors
/// Only when the system's random source fails.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| Error::new(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::new(format!("cannot hash the password: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new random token (what the client holds) and its hash (what the store keeps).
///
/// # Errors
/// Only when the system's random source fails.
pub fn new_token() -> Result<(String, String)> {
    let token = hex::encode(random_bytes::<32>()?);
    let hash = token_hash(&token);
    Ok((token, hash))
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks a user name and password; `None` when either is wrong.
///
/// # Errors
/// When the store cannot be read.
pub async fn check_login(
    store: &dyn Store,
    username: &str,
    password: &str,
) -> Result<Option<User>> {
    let user = store.user_by_name(username).await?;
    // An unknown name costs the same argon2 work as a wrong password, so timing does not tell
    // which names exist.
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_string());
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    Ok(user.filter(|_| ok))
}

/// argon2id of a random password nobody knows; verified against for unknown user names.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$QFl3ZUkqbrp8CeeWx2YbB2SFmDAHZeiL/EjOJbIwZNk";

/// Creates a user (from the CLI or the first-start environment).
///
/// # Errors
/// An empty name or password, a name already taken, or a store failure.
pub async fn create_user(
    store: &dyn Store,
    username: &str,
    password: &str,
    role: Role,
) -> Result<i64> {
    if username.trim().is_empty() {
        return Err(Error::new("the user name must not be empty"));
    }
    if password.len() < 8 {
        return Err(Error::new("the password must be at least 8 characters"));
    }
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::new(format!("hashing task failed: {e}")))??;
    store.create_user(username, &hash, role).await
}

/// Repeated failed logins per user name: after a few, each further attempt waits longer
/// (doubling, capped), whether or not its password is right.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Failures allowed before attempts are delayed.
const FREE_FAILURES: u32 = 3;
const MAX_DELAY: Duration = Duration::from_secs(8);
/// A name's failures are forgotten after this long without one.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

impl Throttle {
    /// How long the next attempt for `username` waits.
    pub fn delay(&self, username: &str) -> Duration {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(username) {
            Some((n, last)) if *n >= FREE_FAILURES && last.elapsed() < FORGET_AFTER => {
                let exp = (*n - FREE_FAILURES).min(5);
                (Duration::from_millis(500) * 2u32.pow(exp)).min(MAX_DELAY)
            }
            _ => Duration::ZERO,
        }
    }

    pub fn failed(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, last)| last.elapsed() < FORGET_AFTER);
        }
        let entry = map
            .entry(username.to_string())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FORGET_AFTER {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = Instant::now();
    }

    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", DUMMY_HASH));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(token_hash(&a), ha);
        assert_ne!(a, ha);
    }

    #[test]
    fn throttle_grows_after_free_failures() {
        let t = Throttle::default();
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.delay("bob"), Duration::ZERO);
            t.failed("bob");
        }
        assert_eq!(t.delay("bob"), Duration::from_millis(500));
        t.failed("bob");
        assert_eq!(t.delay("bob"), Duration::from_secs(1));
        assert_eq!(t.delay("alice"), Duration::ZERO);
        t.succeeded("bob");
        assert_eq!(t.delay("bob"), Duration::ZERO);
    }
}
