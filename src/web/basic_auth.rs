//! HTTP Basic authentication against the bcrypt hashes of the web config's `basic_auth_users`.
//!
//! bcrypt is slow on purpose (tens of milliseconds at cost 10) and Prometheus sends the same
//! credentials on every scrape, so a successful check is remembered, as exporter-toolkit does. The
//! cache holds a salted SHA-256 of the user name and password as sent, and only pairs that passed
//! bcrypt: a wrong password never matches an entry and always pays for bcrypt. bcrypt runs on the
//! blocking pool, a few at a time, so a flood of wrong passwords costs CPU but does not stall the
//! scrapes on the async runtime.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// The realm of the `WWW-Authenticate` challenge.
pub const REALM: &str = "atlas-backup-exporter";

/// How many verified (user, password) pairs the cache keeps. Only correct passwords get in, so
/// this is reached only by someone who knows one and varies it past bcrypt's 72 bytes; then the
/// cache starts over.
const MAX_CACHED: usize = 1024;

/// The users allowed in, and the verifications already paid for.
pub struct Users {
    hashes: BTreeMap<String, SecretString>,
    verified: Mutex<HashSet<[u8; 32]>>,
    /// Makes the cache keys of this process unguessable from outside.
    salt: [u8; 32],
    /// Bounds the bcrypt computations running at once.
    bcrypt_slots: Arc<Semaphore>,
    bcrypt_runs: AtomicU64,
}

impl Users {
    /// Users from name to bcrypt hash (checked by [`super::config`]).
    pub fn new(hashes: BTreeMap<String, SecretString>) -> Users {
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
        Users {
            hashes,
            verified: Mutex::new(HashSet::new()),
            salt: rand::random(),
            bcrypt_slots: Arc::new(Semaphore::new(slots)),
            bcrypt_runs: AtomicU64::new(0),
        }
    }

    /// How many users may sign in.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether nobody may sign in.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// How many times bcrypt has run, which tells what the cache saves.
    pub fn bcrypt_runs(&self) -> u64 {
        self.bcrypt_runs.load(Ordering::Relaxed)
    }

    /// Whether `user` may sign in with `password`.
    pub async fn check(&self, user: &str, password: &[u8]) -> bool {
        let key = self.cache_key(user, password);
        if self.cached().contains(&key) {
            return true;
        }
        // An unknown user costs a bcrypt too, so timing does not tell which names exist.
        let (hash, known) = match self.hashes.get(user) {
            Some(hash) => (hash.clone(), true),
            None => match self.hashes.values().next() {
                Some(hash) => (hash.clone(), false),
                None => return false,
            },
        };
        let Ok(permit) = self.bcrypt_slots.clone().acquire_owned().await else {
            return false;
        };
        self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
        let password = Zeroizing::new(password.to_vec());
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            bcrypt::verify(&*password, hash.expose_secret()).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if !(known && matches) {
            return false;
        }
        let mut verified = self.cached();
        if verified.len() >= MAX_CACHED {
            verified.clear();
        }
        verified.insert(key);
        true
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cache_key(&self, user: &str, password: &[u8]) -> [u8; 32] {
        let mut digest = Sha256::new();
        digest.update(self.salt);
        // The length keeps ("ab", "c") and ("a", "bc") apart.
        digest.update((user.len() as u64).to_be_bytes());
        digest.update(user.as_bytes());
        digest.update(password);
        digest.finalize().into()
    }
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users")
            .field("names", &self.hashes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The users in force, replaced as a whole when the web config is reloaded: the new [`Users`]
/// starts with an empty cache, so a removed user or a changed password is refused at once.
#[derive(Debug, Default)]
pub struct CurrentUsers(std::sync::RwLock<Option<Arc<Users>>>);

impl CurrentUsers {
    /// `users`, or nobody asked for (`None`: no basic authentication).
    pub fn new(users: Option<Arc<Users>>) -> CurrentUsers {
        CurrentUsers(std::sync::RwLock::new(users))
    }

    /// The users in force now.
    pub fn get(&self) -> Option<Arc<Users>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `users` in force for the requests that follow.
    pub fn replace(&self, users: Option<Arc<Users>>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = users;
    }
}

/// Middleware: lets a request through only with the credentials of one of the current users
/// (everyone, when there are none); anything else gets 401 and the challenge. Every path is
/// guarded but the health endpoints (`/-/healthy`, `/-/ready`): a kubelet's or a load balancer's
/// probe carries no credentials, and they answer one fixed word, revealing nothing.
pub async fn require(
    State(current): State<Arc<CurrentUsers>>,
    request: Request,
    next: Next,
) -> Response {
    if super::health::is_health_path(request.uri().path()) {
        return next.run(request).await;
    }
    let Some(users) = current.get() else {
        return next.run(request).await;
    };
    match credentials(request.headers()) {
        Some((user, password)) if users.check(&user, &password).await => next.run(request).await,
        _ => unauthorized(),
    }
}

/// The user name and password of an `Authorization: Basic` header.
fn credentials(headers: &HeaderMap) -> Option<(String, Zeroizing<Vec<u8>>)> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, encoded) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let encoded = encoded.trim_ascii();
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?,
    );
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(&decoded[..colon]).ok()?.to_owned();
    let password = Zeroizing::new(decoded[colon + 1..].to_vec());
    Some((user, password))
}

fn unauthorized() -> Response {
    let challenge = format!("Basic realm=\"{REALM}\"");
    let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cost 4, bcrypt's smallest, keeps the tests fast.
    fn users(pairs: &[(&str, &str)]) -> Users {
        Users::new(
            pairs
                .iter()
                .map(|(user, password)| {
                    let hash = bcrypt::hash(password, 4).expect("bcrypt hashes");
                    (user.to_string(), SecretString::from(hash))
                })
                .collect(),
        )
    }

    fn basic(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[tokio::test]
    async fn the_right_password_passes_and_is_remembered() {
        let users = users(&[("alice", "wonderland"), ("bob", "builder")]);
        assert!(users.check("alice", b"wonderland").await);
        assert_eq!(users.bcrypt_runs(), 1);
        assert!(users.check("alice", b"wonderland").await);
        assert!(users.check("alice", b"wonderland").await);
        assert_eq!(
            users.bcrypt_runs(),
            1,
            "the second and third come from the cache"
        );
        assert!(users.check("bob", b"builder").await);
        assert_eq!(users.bcrypt_runs(), 2);
    }

    #[tokio::test]
    async fn a_wrong_password_never_hits_the_cache() {
        let users = users(&[("alice", "wonderland"), ("bob", "builder")]);
        assert!(users.check("alice", b"wonderland").await);
        for _ in 0..3 {
            assert!(!users.check("alice", b"wonderlan").await);
            assert!(!users.check("alice", b"wonderlandx").await);
        }
        // Someone else's password, and a valid pair split differently.
        assert!(!users.check("bob", b"wonderland").await);
        assert!(!users.check("alicew", b"onderland").await);
        assert_eq!(users.bcrypt_runs(), 1 + 6 + 2);
    }

    #[tokio::test]
    async fn an_unknown_user_is_refused_after_a_bcrypt_run() {
        let users = users(&[("alice", "wonderland")]);
        // Even with alice's password: the name must match.
        assert!(!users.check("mallory", b"wonderland").await);
        assert_eq!(users.bcrypt_runs(), 1);
        assert!(!users.check("mallory", b"wonderland").await);
        assert_eq!(users.bcrypt_runs(), 2);
    }

    #[test]
    fn the_header_is_read_as_basic_authentication_sends_it() {
        let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let read = |value: &str| {
            credentials(&basic(value)).map(|(user, password)| (user, password.to_vec()))
        };
        assert_eq!(
            read(&format!("Basic {}", encode("alice:won:der"))),
            Some(("alice".to_owned(), b"won:der".to_vec()))
        );
        assert_eq!(
            read(&format!("basic  {} ", encode("alice:"))),
            Some(("alice".to_owned(), Vec::new()))
        );
        assert_eq!(read(&format!("Bearer {}", encode("alice:x"))), None);
        assert_eq!(read(&format!("Basic {}", encode("no colon"))), None);
        assert_eq!(read("Basic not*base64"), None);
        assert_eq!(read("Basic"), None);
        assert_eq!(credentials(&HeaderMap::new()).map(|_| ()), None);
    }

    #[test]
    fn debug_shows_names_not_hashes() {
        let users = users(&[("alice", "wonderland")]);
        let hash = users.hashes["alice"].expose_secret().to_owned();
        let debug = format!("{users:?}");
        assert!(debug.contains("alice"), "{debug}");
        assert!(!debug.contains(&hash), "{debug}");
    }
}
