//! The bounded store of one-time handoff tokens.

use std::borrow::Cow;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::transport::fill_random;

/// Bytes in a handoff token (128 bits).
pub const TOKEN_LEN: usize = 16;
/// Tokens a store holds at most by default (the reference's bound).
pub const DEFAULT_MAX_PENDING: usize = 1024;
/// Default time to live of a token (the reference's 30 s).
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// A one-time handoff token. Its `Debug` output never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub [u8; TOKEN_LEN]);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A fresh token from the operating system's random source (`/dev/urandom`).
    pub fn random() -> Result<Self> {
        let mut bytes = [0u8; TOKEN_LEN];
        fill_random(&mut bytes).map_err(|e| Error::io("reading /dev/urandom", e))?;
        Ok(Token(bytes))
    }
}

/// Why a presented token was not accepted. The `Display` text goes into the HandoffAck's
/// `error_detail`; it never contains token bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// The presented token is not 16 bytes long.
    #[error("handoff token length was {0} bytes; expected {TOKEN_LEN}")]
    WrongLength(usize),
    /// The offer presented no token.
    #[error("handoff token is missing")]
    Missing,
    /// No pending token matches (never issued, or already consumed); or, when the broker sent
    /// the expected token with the descriptor, the offer presented another one.
    #[error("handoff token mismatch")]
    Mismatch,
    /// The token the broker sent with the descriptor is not pending (never issued, or already
    /// consumed).
    #[error("handoff token is not pending")]
    NotPending,
    /// The token matched but its time to live had passed (it is now gone).
    #[error("handoff token expired")]
    Expired,
}

struct Pending {
    token: [u8; TOKEN_LEN],
    expires: Instant,
}

/// Pending one-time tokens: bounded, each with a time to live, each consumed at most once,
/// compared in constant time. Safe to share between threads.
pub struct HandoffStore {
    pending: Mutex<Vec<Pending>>,
    max_pending: usize,
    ttl: Duration,
}

impl fmt::Debug for HandoffStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandoffStore")
            .field("pending", &self.len())
            .field("max_pending", &self.max_pending)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Default for HandoffStore {
    fn default() -> Self {
        HandoffStore::new(DEFAULT_MAX_PENDING, DEFAULT_TTL)
    }
}

/// Compares two tokens without an early exit.
fn tokens_equal(a: &[u8; TOKEN_LEN], b: &[u8; TOKEN_LEN]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl HandoffStore {
    /// A store holding at most `max_pending` tokens (at least 1), each valid for `ttl`.
    pub fn new(max_pending: usize, ttl: Duration) -> Self {
        HandoffStore {
            pending: Mutex::new(Vec::new()),
            max_pending: max_pending.max(1),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        // A panic while holding the lock cannot leave the vector inconsistent.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tokens pending now (expired ones included until they are purged).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no token is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Issues a fresh random token, valid once within the time to live.
    pub fn issue(&self) -> Result<Token> {
        let token = Token::random()?;
        self.insert(&token)?;
        Ok(token)
    }

    /// Adds a token issued elsewhere (for example by the broker). Fails when the store is full
    /// of unexpired tokens.
    pub fn insert(&self, token: &Token) -> Result<()> {
        let mut pending = self.lock();
        let now = Instant::now();
        pending.retain(|p| p.expires > now);
        if pending.len() >= self.max_pending {
            return Err(Error::Again(Cow::Owned(format!(
                "handoff token store is full ({} pending)",
                self.max_pending
            ))));
        }
        pending.push(Pending {
            token: token.0,
            expires: now + self.ttl,
        });
        Ok(())
    }

    /// Checks `presented` against every pending token in constant time per token and, on a
    /// match, removes it: a token is accepted at most once.
    pub fn consume(&self, presented: &[u8]) -> std::result::Result<(), TokenRejection> {
        let presented = token_arg(presented)?;
        let mut pending = self.lock();
        let index = position(&pending, presented).ok_or(TokenRejection::Mismatch)?;
        let entry = pending.swap_remove(index);
        if entry.expires <= Instant::now() {
            return Err(TokenRejection::Expired);
        }
        Ok(())
    }

    /// Checks an offer's `presented` token against the `expected` one the broker sent with the
    /// descriptor, in running-process's order: `expected` must be pending (else
    /// [`TokenRejection::NotPending`]) and unexpired (else [`TokenRejection::Expired`], and it is
    /// gone), then `presented` must equal it (else [`TokenRejection::Mismatch`], and `expected`
    /// stays pending). On success `expected` is removed: accepted at most once.
    pub fn consume_expected(&self, expected: &[u8; TOKEN_LEN], presented: &[u8]) -> std::result::Result<(), TokenRejection> {
        let presented = token_arg(presented)?;
        let mut pending = self.lock();
        let index = position(&pending, expected).ok_or(TokenRejection::NotPending)?;
        if pending[index].expires <= Instant::now() {
            pending.swap_remove(index);
            return Err(TokenRejection::Expired);
        }
        if !tokens_equal(expected, presented) {
            return Err(TokenRejection::Mismatch);
        }
        pending.swap_remove(index);
        Ok(())
    }
}

/// Where `token` is among the `pending` ones, comparing every one in constant time (no early
/// exit).
fn position(pending: &[Pending], token: &[u8; TOKEN_LEN]) -> Option<usize> {
    let mut found = None;
    for (i, p) in pending.iter().enumerate() {
        if tokens_equal(&p.token, token) {
            found = Some(i);
        }
    }
    found
}

/// A presented token as 16 bytes, or why it is not one.
fn token_arg(presented: &[u8]) -> std::result::Result<&[u8; TOKEN_LEN], TokenRejection> {
    match presented.len() {
        0 => Err(TokenRejection::Missing),
        n => presented.try_into().map_err(|_| TokenRejection::WrongLength(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_one_time_bounded_and_expire() {
        let store = HandoffStore::new(2, Duration::from_secs(30));
        let a = store.issue().unwrap();
        let b = store.issue().unwrap();
        assert_ne!(a, b);
        assert_eq!(store.issue().unwrap_err().kind(), crate::ErrorKind::Again);
        assert_eq!(store.consume(&a.0), Ok(()));
        assert_eq!(store.consume(&a.0), Err(TokenRejection::Mismatch), "replay");
        assert_eq!(store.consume(&[0; 16]), Err(TokenRejection::Mismatch));
        assert_eq!(
            store.consume(&b.0[..8]),
            Err(TokenRejection::WrongLength(8))
        );
        assert_eq!(store.consume(&b.0), Ok(()));
        assert!(store.is_empty());

        let short = HandoffStore::new(4, Duration::from_millis(1));
        let t = short.issue().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(short.consume(&t.0), Err(TokenRejection::Expired));
        assert_eq!(short.consume(&t.0), Err(TokenRejection::Mismatch));
    }

    #[test]
    fn an_expected_token_is_judged_as_running_process_does() {
        let store = HandoffStore::new(4, Duration::from_secs(30));
        let a = store.issue().unwrap();
        let b = store.issue().unwrap();
        assert_eq!(store.consume_expected(&[9; 16], &a.0), Err(TokenRejection::NotPending));
        assert_eq!(store.consume_expected(&a.0, &b.0), Err(TokenRejection::Mismatch));
        assert_eq!(store.consume_expected(&a.0, &[]), Err(TokenRejection::Missing));
        assert_eq!(store.consume_expected(&a.0, &a.0[..5]), Err(TokenRejection::WrongLength(5)));
        assert_eq!(store.len(), 2, "nothing consumed");
        assert_eq!(store.consume_expected(&a.0, &a.0), Ok(()));
        assert_eq!(store.consume_expected(&a.0, &a.0), Err(TokenRejection::NotPending), "replay");
        let short = HandoffStore::new(4, Duration::from_millis(1));
        let t = short.issue().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.consume_expected(&t.0, &b.0), Err(TokenRejection::Expired), "expiry is judged first");
        assert!(short.is_empty());
        assert_eq!(TokenRejection::WrongLength(5).to_string(), "handoff token length was 5 bytes; expected 16");
        assert_eq!(TokenRejection::NotPending.to_string(), "handoff token is not pending");
    }

    #[test]
    fn debug_never_shows_token_bytes() {
        let t = Token([0xab; 16]);
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
        let store = HandoffStore::default();
        store.insert(&t).unwrap();
        assert!(!format!("{store:?}").contains("ab"));
    }
}
