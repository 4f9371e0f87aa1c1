//! Retrying a unit of work after a transient fault: which database errors are transient (the
//! SQLSTATEs and MySQL codes the backends check when they raise an [`Error`], marking it with
//! [`Error::transient_if`]), the bounded exponential backoff ([`Policy`]) and the retry loop
//! ([`retrying`]) the copy engine runs every chunk in.
//!
//! The unit retried is the one that is atomic in the target: a chunk, whose rows commit in one
//! transaction together with its ledger row. A chunk cut off by a fault left nothing, so
//! copying it again on a new connection writes every row once; when the commit did land but
//! its answer was lost, the ledger's claim (`UPDATE … WHERE state = 'pending'`) finds the chunk
//! done and the second attempt rolls back.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Whether a SQLSTATE (PostgreSQL's, and MySQL's where it has one) names a transient fault:
/// class 08 (connection exception), 40001 (serialization failure), 40P01 (deadlock detected),
/// 57P01/57P02 (the server is shutting down: `pg_ctl restart`, crash), 57P03 (cannot connect
/// now: the server is starting).
pub fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "40001" | "40P01" | "57P01" | "57P02" | "57P03")
}

/// Whether a MySQL/MariaDB error code names a transient fault: 1213 (deadlock), 1205 (lock
/// wait timeout), 1053 (server shutdown), 1927 (connection killed), 2006/2013 (server gone,
/// connection lost).
pub fn transient_mysql_code(code: u16) -> bool {
    matches!(code, 1213 | 1205 | 1053 | 1927 | 2006 | 2013)
}

/// How often and how patiently a unit of work is retried: after the `n`th failure it waits
/// `first · 2ⁿ⁻¹` (at most `max`, with up to a quarter of jitter so that workers hit by one
/// fault do not reconnect in step), and gives up after `retries` retries.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub retries: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Default for Policy {
    /// Ten retries over about 45 s: long enough for a server restart or a failover.
    fn default() -> Self {
        Self {
            retries: 10,
            first: Duration::from_millis(250),
            max: Duration::from_secs(8),
        }
    }
}

impl Policy {
    /// The pause before retry `n` (1-based), jitter included.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self
            .first
            .saturating_mul(1 << n.saturating_sub(1).min(20))
            .min(self.max);
        base + base.mul_f64(jitter() * 0.25)
    }

    /// Waits before retry `n`.
    ///
    /// # Errors
    /// `Error::cancelled()` when `cancel` fires first.
    pub async fn pause(&self, n: u32, cancel: &CancellationToken) -> Result<()> {
        tokio::select! {
            () = tokio::time::sleep(self.delay(n)) => Ok(()),
            () = cancel.cancelled() => Err(Error::cancelled()),
        }
    }
}

/// A number in [0, 1), different at each call (no random generator needed for jitter).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs `op` until it succeeds, fails with an error that is not transient, or has failed
/// `policy.retries + 1` times; `on_retry(n, error)` is told of each retry before its pause.
///
/// # Errors
/// The first error that is not transient, the last one when retries run out (saying so), or
/// `Error::cancelled()`.
pub async fn retrying<T, F, Fut>(
    policy: &Policy,
    cancel: &CancellationToken,
    mut on_retry: impl FnMut(u32, &Error),
    mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut n = 0;
    loop {
        match op().await {
            Err(e) if e.is_transient() && n < policy.retries => {
                n += 1;
                on_retry(n, &e);
                policy.pause(n, cancel).await?;
            }
            Err(e) if e.is_transient() => return Err(gave_up(e, n)),
            other => return other,
        }
    }
}

fn gave_up(e: Error, retries: u32) -> Error {
    e.context(format!("still failing after {retries} retries"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_with_a_little_jitter() {
        let p = Policy {
            retries: 5,
            first: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        for (n, base) in [(1, 100), (2, 200), (3, 400), (4, 500), (30, 500)] {
            let d = p.delay(n).as_millis() as u64;
            assert!(d >= base && d <= base * 5 / 4, "retry {n}: {d} ms");
        }
    }

    #[test]
    fn sqlstates_and_mysql_codes_are_classified() {
        for code in ["57P01", "40001", "40P01", "08006", "08P01", "57P03"] {
            assert!(transient_sqlstate(code), "{code}");
        }
        for code in ["23505", "22P02", "42P01", "28P01"] {
            assert!(!transient_sqlstate(code), "{code}");
        }
        assert!(transient_mysql_code(1213) && transient_mysql_code(1205));
        assert!(!transient_mysql_code(1062));
    }

    /// Runs an operation that always fails with `error()`: how many times it ran, and the error.
    async fn always_failing(
        p: &Policy,
        cancel: &CancellationToken,
        error: impl Fn() -> Error,
    ) -> (u32, Error) {
        let mut calls = 0;
        let e = retrying(
            p,
            cancel,
            |_, _| {},
            || {
                calls += 1;
                let e = error();
                async move { Err::<(), _>(e) }
            },
        )
        .await
        .unwrap_err();
        (calls, e)
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_the_bound_and_others_are_not() {
        let p = Policy {
            retries: 3,
            first: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let cancel = CancellationToken::new();
        let transient = || Error::run("connection reset").transient_if(true);
        // Two faults, then success: two retries told.
        let mut calls = 0;
        let mut told = Vec::new();
        let out = retrying(
            &p,
            &cancel,
            |n, _| told.push(n),
            || {
                calls += 1;
                let fail = calls <= 2;
                async move { if fail { Err(transient()) } else { Ok(calls) } }
            },
        )
        .await
        .unwrap();
        assert_eq!((out, told), (3, vec![1, 2]));
        // Always failing: 1 + 3 tries, then the error says so.
        let (calls, e) = always_failing(&p, &cancel, transient).await;
        assert_eq!(calls, 4);
        assert!(e.to_string().contains("after 3 retries"), "{e}");
        // Not transient: no retry.
        let (calls, e) = always_failing(&p, &cancel, || Error::run("syntax error")).await;
        assert_eq!((calls, e.to_string()), (1, "syntax error".to_string()));
    }
}
