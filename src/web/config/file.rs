//! The web config file as written: its keys, those of exporter-toolkit's format it refuses and
//! why, and the rule each value passes while the YAML parser stands on it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::yaml::{Checked, Mapping, Rule};

/// `client_auth_type`, as far as rustls can honour it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClientAuth {
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    pub(super) fn verifies(self) -> bool {
        self != ClientAuth::NoClientCert
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MinVersion {
    Tls12,
    Tls13,
}

// ---------------------------------------------------------------------------------------------------------
// The file as written
// ---------------------------------------------------------------------------------------------------------

/// The top level keys this exporter honours.
const TOP_KEYS: &[&str] = &["tls_server_config", "basic_auth_users"];

/// The `tls_server_config` keys this exporter honours.
const TLS_KEYS: &[&str] = &[
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
];

/// Keys of exporter-toolkit's format that this exporter does not implement, and why. They are
/// refused rather than ignored: each one would otherwise weaken or change what the owner asked for.
fn unsupported_reason(key: &str) -> Option<&'static str> {
    Some(match key {
        "http_server_config" => {
            "is not supported: the exporter serves HTTP/1.1 only and adds no response headers; remove it"
        }
        "rate_limit" => {
            "is not supported: the exporter does not rate-limit requests; put a reverse proxy in front for that"
        }
        "cert" | "key" | "client_ca" => {
            "is not supported: inline PEM is not read; put it in a file and use cert_file, key_file or client_ca_file"
        }
        "client_allowed_sans" => {
            "is not supported: the exporter does not match client certificate names, so it would accept any \
             certificate client_ca_file signed; use a CA that signs only the clients you trust"
        }
        "max_version" => {
            "is not supported: the exporter offers TLS 1.3, and TLS 1.2 unless min_version is TLS13; remove it"
        }
        "cipher_suites" | "prefer_server_cipher_suites" | "curve_preferences" => {
            "is not supported: the exporter uses the TLS library's (rustls) default cipher suites and key \
             exchange groups; remove it"
        }
        _ => return None,
    })
}

fn refuse_key<E: de::Error>(key: &str, allowed: &[&str]) -> E {
    match unsupported_reason(key) {
        Some(why) => E::custom(format_args!("{key} {why}")),
        None => E::custom(format_args!(
            "{key}: unknown key (allowed keys: {})",
            allowed.join(", ")
        )),
    }
}

/// A key of a mapping: one of `allowed`, at most once. Anything else is refused while yaml_serde
/// stands on the key, so the error carries the key's own line (not the mapping's).
struct AllowedKey<'a> {
    allowed: &'static [&'static str],
    seen: &'a [&'static str],
}

impl<'de> DeserializeSeed<'de> for AllowedKey<'_> {
    type Value = &'static str;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for AllowedKey<'_> {
    type Value = &'static str;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of {}", self.allowed.join(", "))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<&'static str, E> {
        let Some(key) = self.allowed.iter().find(|key| **key == text) else {
            return Err(refuse_key(text, self.allowed));
        };
        if self.seen.contains(key) {
            return Err(E::custom(format_args!("{key} is set twice")));
        }
        Ok(key)
    }
}

#[derive(Default)]
pub(super) struct RawWebConfig {
    pub(super) tls: Option<RawTls>,
    pub(super) users: Option<BTreeMap<String, SecretString>>,
}

impl<'de> Deserialize<'de> for RawWebConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawWebConfigVisitor;
        impl<'de> Visitor<'de> for RawWebConfigVisitor {
            type Value = RawWebConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping with tls_server_config and basic_auth_users")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawWebConfig, A::Error> {
                let mut raw = RawWebConfig::default();
                let mut seen = Vec::new();
                while let Some(key) = map.next_key_seed(AllowedKey {
                    allowed: TOP_KEYS,
                    seen: &seen,
                })? {
                    seen.push(key);
                    match key {
                        "tls_server_config" => {
                            raw.tls = Some(map.next_value::<Mapping<RawTls>>()?.0);
                        }
                        "basic_auth_users" => raw.users = Some(map.next_value::<UsersMap>()?.0),
                        other => return Err(refuse_key(other, TOP_KEYS)),
                    }
                }
                Ok(raw)
            }
        }
        deserializer.deserialize_map(RawWebConfigVisitor)
    }
}

#[derive(Default)]
pub(super) struct RawTls {
    pub(super) cert_file: Option<PathBuf>,
    pub(super) key_file: Option<PathBuf>,
    pub(super) client_auth_type: Option<ClientAuth>,
    pub(super) client_ca_file: Option<PathBuf>,
    pub(super) min_version: Option<MinVersion>,
}

impl<'de> Deserialize<'de> for RawTls {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TlsVisitor;
        impl<'de> Visitor<'de> for TlsVisitor {
            type Value = RawTls;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping with cert_file and key_file")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTls, A::Error> {
                let mut raw = RawTls::default();
                let mut seen = Vec::new();
                while let Some(key) = map.next_key_seed(AllowedKey {
                    allowed: TLS_KEYS,
                    seen: &seen,
                })? {
                    seen.push(key);
                    match key {
                        "cert_file" => {
                            raw.cert_file = Some(map.next_value::<Checked<PathRule>>()?.0)
                        }
                        "key_file" => raw.key_file = Some(map.next_value::<Checked<PathRule>>()?.0),
                        "client_auth_type" => {
                            raw.client_auth_type =
                                Some(map.next_value::<Checked<ClientAuthRule>>()?.0);
                        }
                        "client_ca_file" => {
                            raw.client_ca_file = Some(map.next_value::<Checked<PathRule>>()?.0);
                        }
                        "min_version" => {
                            raw.min_version = Some(map.next_value::<Checked<MinVersionRule>>()?.0);
                        }
                        other => return Err(refuse_key(other, TLS_KEYS)),
                    }
                }
                Ok(raw)
            }
        }
        deserializer.deserialize_map(TlsVisitor)
    }
}

/// `basic_auth_users`: user name to bcrypt hash. Empty (or blank) means no authentication, as
/// with exporter-toolkit.
struct UsersMap(BTreeMap<String, SecretString>);

impl<'de> Deserialize<'de> for UsersMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UsersVisitor;
        impl<'de> Visitor<'de> for UsersVisitor {
            type Value = UsersMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of user names to bcrypt hashes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UsersMap, A::Error> {
                let mut users = BTreeMap::new();
                while let Some(name) = map.next_key_seed(UserName(&users))? {
                    let hash: Checked<BcryptHashRule> = map.next_value()?;
                    users.insert(name, hash.0);
                }
                Ok(UsersMap(users))
            }
            fn visit_unit<E: de::Error>(self) -> Result<UsersMap, E> {
                Ok(UsersMap(BTreeMap::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<UsersMap, E> {
                Ok(UsersMap(BTreeMap::new()))
            }
            // Anything else: serde's "invalid type" error, which names the kind, never the value.
        }
        deserializer.deserialize_any(UsersVisitor)
    }
}

/// A user name, checked against the names already read so a duplicate is blamed on its own line.
struct UserName<'a>(&'a BTreeMap<String, SecretString>);

impl<'de> DeserializeSeed<'de> for UserName<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for UserName<'_> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a user name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<String, E> {
        if self.0.contains_key(name) {
            return Err(E::custom(format_args!("user {name:?} is listed twice")));
        }
        if name.contains(':') || name.chars().any(char::is_control) {
            // Basic authentication sends `name:password`, split at the first ':'.
            return Err(E::custom(format_args!(
                "user name {name:?} cannot be sent with Basic authentication (no ':' or control characters)"
            )));
        }
        Ok(name.to_owned())
    }
}

struct PathRule;
impl Rule for PathRule {
    type Output = PathBuf;
    const EXPECTING: &'static str = "a file path";
    fn check(text: &str) -> Result<PathBuf, String> {
        if text.trim().is_empty() {
            return Err("is empty: give the path of a PEM file".to_owned());
        }
        Ok(PathBuf::from(text))
    }
}

struct ClientAuthRule;
impl Rule for ClientAuthRule {
    type Output = ClientAuth;
    const EXPECTING: &'static str =
        "NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert";
    fn check(text: &str) -> Result<ClientAuth, String> {
        match text {
            "NoClientCert" => Ok(ClientAuth::NoClientCert),
            "VerifyClientCertIfGiven" => Ok(ClientAuth::VerifyClientCertIfGiven),
            "RequireAndVerifyClientCert" => Ok(ClientAuth::RequireAndVerifyClientCert),
            // Go accepts these certificates without checking who signed them. rustls's verifiers
            // always check; honouring them would take one that trusts anything: no protection.
            "RequestClientCert" | "RequireAnyClientCert" => Err(format!(
                "{text} is not supported: it accepts client certificates nobody has verified; \
                 use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file"
            )),
            _ => Err(format!(
                "{text:?} is not a client_auth_type (NoClientCert, VerifyClientCertIfGiven or \
                 RequireAndVerifyClientCert)"
            )),
        }
    }
}

struct MinVersionRule;
impl Rule for MinVersionRule {
    type Output = MinVersion;
    const EXPECTING: &'static str = "TLS12 or TLS13";
    fn check(text: &str) -> Result<MinVersion, String> {
        match text {
            "TLS12" => Ok(MinVersion::Tls12),
            "TLS13" => Ok(MinVersion::Tls13),
            "TLS10" | "TLS11" => Err(format!(
                "{text} is not supported: rustls implements TLS 1.2 and 1.3 only; use TLS12 or TLS13"
            )),
            _ => Err(format!("{text:?} is not a TLS version (TLS12 or TLS13)")),
        }
    }
}

/// A bcrypt hash. Its messages never quote it.
struct BcryptHashRule;
impl Rule for BcryptHashRule {
    type Output = SecretString;
    const EXPECTING: &'static str = "a bcrypt hash";
    fn check(text: &str) -> Result<SecretString, String> {
        let parts: bcrypt::HashParts = text.parse().map_err(|_| {
            "is not a bcrypt hash (60 characters such as $2y$10$...; see the README for how to make one)"
                .to_owned()
        })?;
        let cost = parts.get_cost();
        if !(4..=31).contains(&cost) {
            return Err(format!(
                "is not a bcrypt hash: its cost is {cost}, bcrypt allows 4 to 31"
            ));
        }
        Ok(SecretString::from(text))
    }
}
