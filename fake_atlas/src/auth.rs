//! Atlas's two ways in: HTTP digest (API keys) and OAuth 2.0 client credentials (service
//! accounts).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest as _, Md5};

/// The realm Atlas names in its challenge; it is part of HA1, so it must match exactly.
pub(super) const REALM: &str = "MMS Public API";

/// The body Atlas sends with its 401, byte for byte as recorded (Jackson's pretty printer).
pub(super) const UNAUTHORIZED_BODY: &str = "{\n  \"error\" : 401,\n  \"reason\" : \"Unauthorized\",\n  \"detail\" : \"You are not authorized for this resource.\",\n  \"errorCode\" : \"UNEXPECTED_ERROR\"\n}";

/// Past this many remembered nonces, nonces older than their lifetime are forgotten (they
/// then count as unknown, not stale), so a client failing in a loop cannot grow memory.
const MAX_NONCES: usize = 100_000;

struct NonceInfo {
    issued: Instant,
    generation: u64,
}

pub(super) struct AuthState {
    pub(super) api_keys: HashMap<String, String>,
    pub(super) clients: HashMap<String, String>,
    pub(super) token_lifetime: Duration,
    pub(super) nonce_lifetime: Duration,
    nonces: HashMap<String, NonceInfo>,
    /// Generation given to the next nonce; nonces below `stale_below` are stale.
    generation: u64,
    stale_below: u64,
    /// Live tokens and when they expire.
    pub(super) tokens: HashMap<String, Instant>,
    /// Every token issued, live or not, so tests can look for them where they must not be.
    pub(super) issued: Vec<String>,
    /// How far the stand-in's clock runs ahead of the real one: tests age nonces and tokens
    /// with [`crate::FakeAtlas::advance_clock`] instead of waiting for them.
    pub(super) ahead: Duration,
}

impl Default for AuthState {
    fn default() -> Self {
        Self {
            api_keys: HashMap::new(),
            clients: HashMap::new(),
            token_lifetime: Duration::from_secs(3600),
            nonce_lifetime: Duration::from_secs(300),
            nonces: HashMap::new(),
            generation: 0,
            stale_below: 0,
            tokens: HashMap::new(),
            issued: Vec::new(),
            ahead: Duration::ZERO,
        }
    }
}

/// What the digest check concluded.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DigestOutcome {
    Accepted,
    /// Answer with a fresh challenge; `stale` tells the client its key was right but the
    /// nonce too old, so it can retry without asking the user.
    Challenge {
        stale: bool,
    },
}

impl AuthState {
    /// The stand-in's time: the real clock plus what tests advanced it by.
    pub(super) fn now(&self) -> Instant {
        Instant::now() + self.ahead
    }

    /// A new random nonce, remembered with its issue time.
    pub(super) fn issue_nonce(&mut self) -> String {
        if self.nonces.len() >= MAX_NONCES {
            let (lifetime, now) = (self.nonce_lifetime, self.now());
            self.nonces
                .retain(|_, n| now.saturating_duration_since(n.issued) <= lifetime);
        }
        // 24 random bytes give 32 base64 characters, the length Atlas uses.
        let nonce = STANDARD.encode(rand::random::<[u8; 24]>());
        self.nonces.insert(
            nonce.clone(),
            NonceInfo {
                issued: self.now(),
                generation: self.generation,
            },
        );
        self.generation += 1;
        nonce
    }

    pub(super) fn expire_nonces(&mut self) {
        self.stale_below = self.generation;
    }

    /// Checks an `Authorization: Digest ...` header for a request (`uri` is the request
    /// target as received: path and query).
    pub(super) fn check_digest(&self, header: &str, method: &str, uri: &str) -> DigestOutcome {
        const REJECT: DigestOutcome = DigestOutcome::Challenge { stale: false };
        let Some(p) = parse_digest(header) else {
            return REJECT;
        };
        let get = |k: &str| p.get(k).map(String::as_str);
        let (Some(user), Some(realm), Some(nonce), Some(duri), Some(response)) = (
            get("username"),
            get("realm"),
            get("nonce"),
            get("uri"),
            get("response"),
        ) else {
            return REJECT;
        };
        let Some(info) = self.nonces.get(nonce) else {
            return REJECT;
        };
        let Some(password) = self.api_keys.get(user) else {
            return REJECT;
        };
        if realm != REALM || !uri_matches(duri, uri) {
            return REJECT;
        }
        if get("algorithm").is_some_and(|alg| !alg.eq_ignore_ascii_case("MD5")) {
            return REJECT;
        }
        let ha1 = md5_hex(&format!("{user}:{REALM}:{password}"));
        let ha2 = md5_hex(&format!("{method}:{duri}"));
        let expected = match get("qop") {
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                    return REJECT;
                };
                // Any nc is accepted, repeated or out of order: clients sharing one nonce
                // across concurrent requests cannot keep it strictly increasing on the wire.
                if nc.is_empty() || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return REJECT;
                }
                md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
            }
            Some(_) => return REJECT,
            // RFC 2069 style, without qop.
            None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
        };
        if !expected.eq_ignore_ascii_case(response) {
            return REJECT;
        }
        let age = self.now().saturating_duration_since(info.issued);
        if info.generation < self.stale_below || age > self.nonce_lifetime {
            return DigestOutcome::Challenge { stale: true };
        }
        DigestOutcome::Accepted
    }

    /// Whether `Authorization: Basic base64(id:secret)` names a known service account.
    pub(super) fn client_ok(&self, basic: &str) -> bool {
        parse_basic(basic).is_some_and(|(id, secret)| self.clients.get(&id) == Some(&secret))
    }

    /// Issues a token for `Authorization: Basic base64(id:secret)`, or `None` for a bad
    /// client. Returns the token and its lifetime in seconds.
    pub(super) fn issue_token(&mut self, basic: &str) -> Option<(String, u64)> {
        let (id, secret) = parse_basic(basic)?;
        if self.clients.get(&id) != Some(&secret) {
            return None;
        }
        let now = self.now();
        self.tokens.retain(|_, expires| *expires > now);
        let token = format!(
            "eyJ{}",
            STANDARD
                .encode(rand::random::<[u8; 48]>())
                .replace(['+', '/', '='], "")
        );
        let lifetime = self.token_lifetime;
        self.tokens.insert(token.clone(), now + lifetime);
        self.issued.push(token.clone());
        Some((token, lifetime.as_secs()))
    }

    /// Whether a bearer token was issued, has not expired and was not revoked.
    pub(super) fn check_token(&self, token: &str) -> bool {
        self.tokens
            .get(token)
            .is_some_and(|expires| *expires > self.now())
    }
}

/// The `WWW-Authenticate` value of Atlas's challenge, in Atlas's parameter order.
pub(super) fn challenge(nonce: &str, stale: bool) -> String {
    format!(
        "Digest realm=\"{REALM}\", domain=\"\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\", stale={stale}"
    )
}

pub(super) fn md5_hex(s: &str) -> String {
    let digest = Md5::digest(s.as_bytes());
    let mut out = String::with_capacity(32);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The digest `uri` must name the request target; an absolute form is accepted too.
fn uri_matches(digest_uri: &str, request_target: &str) -> bool {
    if digest_uri == request_target {
        return true;
    }
    // "http://host:port/path?q" names the same target as "/path?q".
    digest_uri
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .is_some_and(|path| path == request_target)
}

/// Parses `Digest k=v, k="v", ...` into lower-cased keys and unquoted values.
pub(super) fn parse_digest(header: &str) -> Option<HashMap<String, String>> {
    let header = header.trim_start();
    let scheme = header.get(..6)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut rest = header.get(6..)?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let mut params = HashMap::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_ascii_lowercase();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return None;
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            v.push(escaped);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end?;
            value = v;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        params.insert(key, value);
    }
    Some(params)
}

/// Parses `Basic base64(id:secret)`.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let header = header.trim();
    let scheme = header.get(..5)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(header.get(5..)?.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_and_plain_parameters() {
        let p = parse_digest(
            r#"Digest username="a\"b", realm="MMS Public API", nonce="x+y/z=", uri="/p?q=1,2", qop=auth, nc=00000001, cnonce="c", response="r", algorithm=MD5"#,
        )
        .unwrap_or_default();
        assert_eq!(p.get("username").map(String::as_str), Some("a\"b"));
        assert_eq!(p.get("uri").map(String::as_str), Some("/p?q=1,2"));
        assert_eq!(p.get("qop").map(String::as_str), Some("auth"));
        assert_eq!(p.get("nc").map(String::as_str), Some("00000001"));
        assert_eq!(p.get("algorithm").map(String::as_str), Some("MD5"));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for h in [
            "",
            "Digest",
            "Digestx a=b",
            "Digest a",
            "Digest a=\"unterminated",
            "Digest =b",
            "Basic abc",
            "Digest \u{e9}=\u{e9}",
        ] {
            assert!(parse_digest(h).is_none(), "{h:?}");
        }
        assert!(parse_basic("Basic !!!").is_none());
        assert!(parse_basic("Basic").is_none());
        assert!(parse_basic("Bearer abc").is_none());
    }

    #[test]
    fn rfc_2617_example_verifies() {
        // RFC 2617 section 3.5, with the realm replaced by Atlas's.
        let mut st = AuthState::default();
        st.api_keys.insert("Mufasa".into(), "Circle Of Life".into());
        let nonce = st.issue_nonce();
        let ha1 = md5_hex(&format!("Mufasa:{REALM}:Circle Of Life"));
        let ha2 = md5_hex("GET:/dir/index.html");
        let resp = md5_hex(&format!("{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}"));
        let h = format!(
            "Digest username=\"Mufasa\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"{resp}\""
        );
        assert_eq!(
            st.check_digest(&h, "GET", "/dir/index.html"),
            DigestOutcome::Accepted
        );
        // Another target with the same answer is refused.
        assert_eq!(
            st.check_digest(&h, "GET", "/other"),
            DigestOutcome::Challenge { stale: false }
        );
        st.expire_nonces();
        assert_eq!(
            st.check_digest(&h, "GET", "/dir/index.html"),
            DigestOutcome::Challenge { stale: true }
        );
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
