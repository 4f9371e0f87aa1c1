//! Users and tokens: argon2 password hashes, random bearer tokens stored only as SHA-256
//! hashes with an expiry, and the slow-down of failed logins per client address and user name.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

use crate::crypto::random_bytes;
use crate::error::{Error, Result};
use crate::store::{Role, Store, Turn, TurnRule, User, now_ms};

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

/// The login slow-down. Failed attempts are counted in the store per client address and per
/// user name typed (so the count holds across servers sharing a PostgreSQL store), and each key
/// hands out turns: after `free_failures` failures, a key's next turn comes `base_delay` after
/// its last one, doubling with each further failure up to `max_delay`.
///
/// - The address's turn comes before the password is checked: attempts from one address, for
///   any names and however many at once, are checked one turn at a time. An attempt whose turn
///   is more than [`SlowDown::max_wait`] away is answered 429 with `Retry-After`, unchecked.
/// - The name's turn comes after a wrong password: the 401 is answered at that turn, and the
///   address gets no new turn before it, so guesses at one name from many addresses queue up
///   too. A right password never waits for the name's turn: guessing at an admin's name does
///   not lock the admin out (from an address of their own).
/// - Unknown names are counted and checked (against a dummy hash) like known ones.
/// - A success gives its turn back (it does not count as a failure) but forgives nothing, so
///   logging in to one's own account does not reset the guesses at another's. A key is
///   forgotten `forget_after` after its last change.
#[derive(Debug, Clone, Copy)]
pub struct SlowDown {
    pub free_failures: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub forget_after: Duration,
}

impl Default for SlowDown {
    fn default() -> Self {
        Self {
            free_failures: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            forget_after: Duration::from_secs(15 * 60),
        }
    }
}

impl SlowDown {
    /// The longest an attempt waits for its address's turn (and a failure for its name's):
    /// twice the longest delay, so a client trying one password at a time never sees a 429.
    pub fn max_wait(&self) -> Duration {
        self.max_delay * 2
    }

    /// How often forgotten keys are deleted from the store.
    pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

    fn rule(&self, max_wait: Duration) -> TurnRule {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
        TurnRule {
            free_failures: i64::from(self.free_failures),
            base_ms: ms(self.base_delay),
            max_ms: ms(self.max_delay),
            forget_ms: ms(self.forget_after),
            max_wait_ms: ms(max_wait),
        }
    }
}

/// Deletes the keys the slow-down has forgotten, every [`SlowDown::PRUNE_EVERY`], for as long
/// as the runtime runs (a store error is logged and tried again next time).
pub fn spawn_pruning(store: std::sync::Arc<dyn Store>, slow: SlowDown) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SlowDown::PRUNE_EVERY);
        loop {
            every.tick().await;
            let forget = slow.rule(Duration::ZERO).forget_ms;
            if let Err(e) = store.login_prune(now_ms() - forget).await {
                tracing::warn!("Cannot prune the login slow-down's counts: {e}");
            }
        }
    });
}

/// What a login attempt came to.
pub enum Attempt {
    Success(User),
    /// Wrong name or password; already answered at the name's turn.
    Failure,
    /// The address's turn is too far ahead: try again after this long (nothing was checked).
    Busy(Duration),
}

/// The slow-down's key of a client address. An IPv6 client usually holds a whole /64, so the
/// key is that prefix.
fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("ip:{prefix}/64")
        }
    }
}

/// The slow-down's key of a user name: hashed, since people type passwords into the name field
/// and the name is the attacker's text of any length.
fn name_key(username: &str) -> String {
    format!("user:{}", hex::encode(Sha256::digest(username.as_bytes())))
}

/// A user name fit for a log line: control characters, quotes and backslashes escaped, at most
/// 64 characters (the name is whatever the client sent).
pub fn shown_name(username: &str) -> String {
    const MAX: usize = 64;
    let mut shown: String = username
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if username.chars().nth(MAX).is_some() {
        shown.push('…');
    }
    format!("\"{shown}\"")
}

async fn sleep_until_ms(at_ms: i64, limit: Duration) {
    let wait = Duration::from_millis(u64::try_from(at_ms - now_ms()).unwrap_or(0));
    if !wait.is_zero() {
        tokio::time::sleep(wait.min(limit)).await;
    }
}

/// One login attempt under the slow-down (see [`SlowDown`]); a failure is logged with the name
/// typed and the client address, never the password.
///
/// # Errors
/// When the store cannot be read or written.
pub async fn attempt(
    store: &dyn Store,
    slow: &SlowDown,
    client: IpAddr,
    username: &str,
    password: &str,
) -> Result<Attempt> {
    let address = address_key(client);
    let max_wait = slow.max_wait();
    let rule = slow.rule(max_wait);
    // A flood of attempts from a held address is refused on a read, without a write each.
    let now = now_ms();
    let turn = match rule.busy(now, store.login_peek(&address).await?) {
        Some(busy) => busy,
        None => store.login_turn(&address, now, &rule).await?,
    };
    let (start_ms, next_ms) = match turn {
        Turn::Busy { retry_ms } => {
            return Ok(Attempt::Busy(Duration::from_millis(retry_ms as u64)));
        }
        Turn::Go {
            start_ms, next_ms, ..
        } => (start_ms, next_ms),
    };
    sleep_until_ms(start_ms, max_wait).await;
    if let Some(user) = check_login(store, username, password).await? {
        store.login_undo(&address, next_ms, start_ms).await?;
        return Ok(Attempt::Success(user));
    }
    let now = now_ms();
    // Never busy: the guess was made, its answer has to wait for the name's turn.
    let name_turn = store
        .login_turn(&name_key(username), now, &slow.rule(Duration::MAX))
        .await?;
    let answer_ms = match name_turn {
        Turn::Go { start_ms, .. } => start_ms.min(now + max_wait.as_millis() as i64),
        Turn::Busy { .. } => now,
    };
    // The address's next attempt comes its delay after this failure (not after the start of
    // this turn), and not before this failure is answered.
    store
        .login_hold(&address, (now + next_ms - start_ms).max(answer_ms), now)
        .await?;
    tracing::warn!(
        "Failed login for user name {} from {client}",
        shown_name(username)
    );
    sleep_until_ms(answer_ms, max_wait).await;
    Ok(Attempt::Failure)
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
    fn keys_and_shown_names() {
        assert_eq!(address_key("10.1.2.3".parse().unwrap()), "ip:10.1.2.3");
        assert_eq!(
            address_key("::ffff:10.1.2.3".parse().unwrap()),
            "ip:10.1.2.3"
        );
        assert_eq!(
            address_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "ip:2001:db8:1:2::/64"
        );
        assert_eq!(name_key("bob"), name_key("bob"));
        assert_ne!(name_key("bob"), name_key("Bob"));
        assert!(!name_key("hunter2").contains("hunter2"));
        assert_eq!(shown_name("bob"), "\"bob\"");
        assert_eq!(shown_name("a\nb\u{1b}[31m\"c"), "\"a\\nb\\u{1b}[31m\\\"c\"");
        let long = shown_name(&"x".repeat(1000));
        assert_eq!(long.chars().count(), 64 + 3);
        assert!(long.ends_with("…\""));
    }
}
