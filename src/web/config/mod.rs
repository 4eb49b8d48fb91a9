//! The `--web.config.file`: TLS and basic authentication for the exporter's own endpoint, in the
//! format of Prometheus's exporter-toolkit (the file node_exporter takes).
//!
//! The file is read at start-up, and again whenever it or a file it names changes (see
//! `server`), into a ready [`rustls::ServerConfig`] and the [`Users`] of basic authentication. Every key of the format is either honoured or refused by
//! name: a silently ignored `client_allowed_sans` or `cipher_suites` would leave the endpoint more
//! open than its owner believes. Errors read `FILE: line N: KEY: what is wrong`, like the main
//! config's. Relative paths are taken from the web config file's directory, as exporter-toolkit
//! does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::config::ConfigError;
use crate::web::basic_auth::Users;
use crate::yaml::{Checked, KeyPath, Locator, Mapping, Rule, yaml_error};

/// The exporter's endpoint protection, ready to serve: what [`crate::web::serve_with`] needs.
pub struct WebConfig {
    tls: Option<Arc<ServerConfig>>,
    users: Option<Arc<Users>>,
    summary: String,
    /// The certificate, key and CA files the TLS settings were read from.
    files: Vec<PathBuf>,
    /// What the web config file and `files` held when they were read (see [`fingerprint`]).
    fingerprint: Option<u128>,
}

impl WebConfig {
    /// The TLS settings, when the file has a `tls_server_config`.
    pub fn tls(&self) -> Option<&Arc<ServerConfig>> {
        self.tls.as_ref()
    }

    /// The users of basic authentication, when `basic_auth_users` names at least one.
    pub fn users(&self) -> Option<&Arc<Users>> {
        self.users.as_ref()
    }

    /// One line for `--config.check` and the start-up log: what is protected, and how (no secrets).
    pub fn describe(&self) -> &str {
        &self.summary
    }

    /// The files this configuration was read from: the certificate, key and CA files.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The [`fingerprint`] of the web config file and [`Self::files`] taken right after [`load`]
    /// read them; `None` for a configuration made by [`parse`].
    pub fn loaded_fingerprint(&self) -> Option<u128> {
        self.fingerprint
    }
}

/// A digest of what `paths` hold now (a file that cannot be read counts as its error), so a
/// change to any of them is noticed without keeping their contents.
pub fn fingerprint<'a>(paths: impl IntoIterator<Item = &'a Path>) -> u128 {
    let mut digest = xxhash_rust::xxh3::Xxh3::new();
    for path in paths {
        digest.update(path.as_os_str().as_encoded_bytes());
        match std::fs::read(path) {
            Ok(bytes) => {
                digest.update(&[1]);
                digest.update(&(bytes.len() as u64).to_be_bytes());
                digest.update(&bytes);
            }
            Err(error) => {
                digest.update(&[0]);
                digest.update(error.to_string().as_bytes());
            }
        }
    }
    digest.digest128()
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

/// Reads the web config file and loads the certificates and keys it names.
pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.display().to_string(),
        error,
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut web = parse(&text, &path.display().to_string(), dir)?;
    web.fingerprint = Some(fingerprint(
        std::iter::once(path).chain(web.files.iter().map(PathBuf::as_path)),
    ));
    Ok(web)
}

/// Checks web config text; `origin` names it in messages, and relative paths are taken from `dir`.
pub fn parse(text: &str, origin: &str, dir: &Path) -> Result<WebConfig, ConfigError> {
    let at = Locator::new(text, origin);
    // An empty file asks for nothing, as with exporter-toolkit: plain HTTP, no authentication.
    let raw: Option<Mapping<RawWebConfig>> =
        serde_yaml::from_str(text).map_err(|error| yaml_error::<ConfigError>(error, origin))?;
    build(raw.map(|raw| raw.0).unwrap_or_default(), &at, dir)
}

// ---------------------------------------------------------------------------------------------------------
// The checked settings
// ---------------------------------------------------------------------------------------------------------

/// `client_auth_type`, as far as rustls can honour it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientAuth {
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn verifies(self) -> bool {
        self != ClientAuth::NoClientCert
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MinVersion {
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
struct RawWebConfig {
    tls: Option<RawTls>,
    users: Option<BTreeMap<String, SecretString>>,
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
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<ClientAuth>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<MinVersion>,
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

// ---------------------------------------------------------------------------------------------------------
// Checks across keys, and loading what the files hold
// ---------------------------------------------------------------------------------------------------------

fn build(raw: RawWebConfig, at: &Locator, dir: &Path) -> Result<WebConfig, ConfigError> {
    let mut summary = Vec::new();
    let mut files = Vec::new();
    let tls = match raw.tls {
        Some(tls) => {
            let (config, described) = build_tls(tls, at, dir, &mut files)?;
            summary.push(described);
            Some(Arc::new(config))
        }
        None => {
            summary.push("plain HTTP (no tls_server_config)".to_owned());
            None
        }
    };
    let users = raw.users.filter(|users| !users.is_empty()).map(|users| {
        summary.push(match users.len() {
            1 => "basic authentication: 1 user".to_owned(),
            n => format!("basic authentication: {n} users"),
        });
        Arc::new(Users::new(users))
    });
    if users.is_none() {
        summary.push("no basic authentication".to_owned());
    } else if tls.is_none() {
        summary.push("passwords travel unencrypted without TLS".to_owned());
    }
    Ok(WebConfig {
        tls,
        users,
        summary: summary.join("; "),
        files,
        fingerprint: None,
    })
}

fn build_tls(
    tls: RawTls,
    at: &Locator,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<(ServerConfig, String), ConfigError> {
    let path = KeyPath::root().key("tls_server_config");
    let tls_key = |key: &str| path.key(key);
    let cert_file = tls.cert_file.ok_or_else(|| {
        at.error::<ConfigError>(
            &tls_key("cert_file"),
            "required key is missing: the server's certificate chain (PEM)",
        )
    })?;
    let key_file = tls.key_file.ok_or_else(|| {
        at.error::<ConfigError>(
            &tls_key("key_file"),
            "required key is missing: the server's private key (PEM)",
        )
    })?;
    let client_auth = tls.client_auth_type.unwrap_or(ClientAuth::NoClientCert);
    match (client_auth.verifies(), &tls.client_ca_file) {
        (true, None) => {
            return Err(at.error(
                &tls_key("client_ca_file"),
                format_args!(
                    "required key is missing: {client_auth} checks client certificates against it"
                ),
            ));
        }
        (false, Some(_)) => {
            return Err(at.error(
                &tls_key("client_ca_file"),
                "has no effect with client_auth_type NoClientCert: set client_auth_type to \
                 RequireAndVerifyClientCert (or VerifyClientCertIfGiven), or remove it",
            ));
        }
        _ => {}
    }

    let cert_path = dir.join(&cert_file);
    let key_path = dir.join(&key_file);
    files.extend([cert_path.clone(), key_path.clone()]);
    files.extend(tls.client_ca_file.iter().map(|ca_file| dir.join(ca_file)));
    let certs = read_certificates(&cert_path)
        .map_err(|m| at.error::<ConfigError>(&tls_key("cert_file"), m))?;
    let key = read_private_key(&key_path)
        .map_err(|m| at.error::<ConfigError>(&tls_key("key_file"), m))?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    check_key_pair(&provider, &certs, &key, &cert_path, &key_path).map_err(
        |(blame, message)| {
            let key = if blame == Blame::Key {
                "key_file"
            } else {
                "cert_file"
            };
            at.error::<ConfigError>(&tls_key(key), message)
        },
    )?;

    let min_version = tls.min_version.unwrap_or(MinVersion::Tls12);
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|error| at.error::<ConfigError>(&tls_key("min_version"), error))?;
    let builder = match &tls.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let ca_path = dir.join(ca_file);
            let roots = read_roots(&ca_path)
                .map_err(|m| at.error::<ConfigError>(&tls_key("client_ca_file"), m))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match client_auth {
                ClientAuth::VerifyClientCertIfGiven => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier.build().map_err(|error| {
                at.error::<ConfigError>(
                    &tls_key("client_ca_file"),
                    format_args!("{}: {error}", ca_path.display()),
                )
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|error| {
        at.error::<ConfigError>(
            &tls_key("cert_file"),
            format_args!("{}: {error}", cert_path.display()),
        )
    })?;
    // The exporter speaks HTTP/1.1 only (see `server`), and says so in the handshake.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    let versions = match min_version {
        MinVersion::Tls12 => "TLS 1.2 and 1.3",
        MinVersion::Tls13 => "TLS 1.3",
    };
    let clients = match client_auth {
        ClientAuth::NoClientCert => "no client certificates".to_owned(),
        ClientAuth::VerifyClientCertIfGiven => format!(
            "client certificates optional, checked against {}",
            dir.join(tls.client_ca_file.unwrap_or_default()).display()
        ),
        ClientAuth::RequireAndVerifyClientCert => format!(
            "client certificates required, checked against {}",
            dir.join(tls.client_ca_file.unwrap_or_default()).display()
        ),
    };
    let described = format!("TLS with {} ({versions}; {clients})", cert_path.display());
    Ok((config, described))
}

fn read_pem_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_pem_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            format!(
                "{} is not valid PEM: {}",
                path.display(),
                pem_problem(&error)
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (a -----BEGIN CERTIFICATE----- block)",
            path.display()
        ));
    }
    Ok(certs)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read_pem_file(path)?;
    // The pem errors describe the structure (a missing END line, bad base64), never the content.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
        pem::Error::NoItemsFound if bytes.windows(9).any(|w| w == b"ENCRYPTED") => format!(
            "{} holds an encrypted private key, which the exporter cannot use: decrypt it",
            path.display()
        ),
        pem::Error::NoItemsFound => format!(
            "{} holds no private key (a -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY block)",
            path.display()
        ),
        error => format!("{} is not valid PEM: {}", path.display(), pem_problem(&error)),
    })
}

/// What is wrong with a PEM file, in words: the parser's own messages print byte lists.
fn pem_problem(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "a block has no -----END {}----- line",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { .. } => "a -----BEGIN line is malformed".to_owned(),
        pem::Error::Base64Decode(_) => "a block is not valid base64".to_owned(),
        error => error.to_string(),
    }
}

fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certificates(path)? {
        roots.add(cert).map_err(|error| {
            format!(
                "{} holds a certificate that cannot be a CA: {error}",
                path.display()
            )
        })?;
    }
    Ok(roots)
}

#[derive(PartialEq)]
enum Blame {
    Cert,
    Key,
}

/// Loads the key and checks it belongs to the certificate, so a mix-up is blamed on the right key.
fn check_key_pair(
    provider: &CryptoProvider,
    certs: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), (Blame, String)> {
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|error| {
            (
                Blame::Key,
                format!("{}: not a usable private key: {error}", key_path.display()),
            )
        })?;
    match CertifiedKey::new(certs.to_vec(), signing_key).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err((
            Blame::Key,
            format!(
                "the private key in {} does not belong to the certificate in {}",
                key_path.display(),
                cert_path.display()
            ),
        )),
        Err(error) => Err((
            Blame::Cert,
            format!(
                "{}: the first certificate cannot be used: {error}",
                cert_path.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const FILE: &str = "web.yml";
    /// A real bcrypt hash (cost 4) of "secret".
    const HASH: &str = "$2b$04$gOh3nUOvCPsy/lP0OYuYmeq6eKEeC5pmkgQKrlo7gDrdLArrCmm0S";

    /// Test YAML is written as raw strings starting on the line after `r"`: the first newline is dropped.
    fn yaml(text: &str) -> &str {
        text.strip_prefix('\n').unwrap_or(text)
    }

    /// A directory of its own for one test, with a CA, a server certificate and key signed by it,
    /// and a second, unrelated key pair.
    struct Pki {
        dir: PathBuf,
    }

    impl Pki {
        fn new() -> Pki {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "atlas-backup-exporter-web-config-test-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
            let server_key = rcgen::KeyPair::generate().unwrap();
            let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
                .unwrap()
                .signed_by(&server_key, &ca)
                .unwrap();
            let other_key = rcgen::KeyPair::generate().unwrap();
            let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
            write("ca.pem", &ca.pem());
            write("server.pem", &server.pem());
            write("server.key", &server_key.serialize_pem());
            write("other.key", &other_key.serialize_pem());
            Pki { dir }
        }

        fn parse(&self, text: &str) -> Result<WebConfig, ConfigError> {
            parse(yaml(text), FILE, &self.dir)
        }

        fn ok(&self, text: &str) -> WebConfig {
            self.parse(text)
                .unwrap_or_else(|error| panic!("refused: {error}\n{text}"))
        }

        fn error(&self, text: &str) -> String {
            match self.parse(text) {
                Ok(config) => panic!("accepted: {config:?}\n{text}"),
                Err(error) => error.to_string(),
            }
        }
    }

    impl Drop for Pki {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    const TLS: &str = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";

    #[test]
    fn a_full_file_gives_tls_with_client_certificates_and_users() {
        let pki = Pki::new();
        let config = pki.ok(&format!(
            r"
tls_server_config:
  cert_file: server.pem
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  min_version: TLS13
basic_auth_users:
  alice: {HASH}
  bob: '{HASH}'
"
        ));
        let tls = config.tls().expect("TLS is on");
        assert_eq!(tls.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert_eq!(config.users().map(|users| users.len()), Some(2));
        let summary = config.describe();
        assert!(summary.contains("TLS 1.3;"), "{summary}");
        assert!(
            summary.contains("client certificates required"),
            "{summary}"
        );
        assert!(summary.contains("2 users"), "{summary}");
        assert!(!summary.contains(HASH), "{summary}");
    }

    #[test]
    fn an_empty_file_asks_for_nothing() {
        let pki = Pki::new();
        for text in [
            "",
            "# nothing yet\n",
            "basic_auth_users:\n",
            "basic_auth_users: {}\n",
        ] {
            let config = pki.ok(text);
            assert!(config.tls().is_none() && config.users().is_none(), "{text}");
        }
    }

    #[test]
    fn basic_authentication_without_tls_is_allowed_but_said() {
        let pki = Pki::new();
        let config = pki.ok(&format!("basic_auth_users:\n  alice: {HASH}\n"));
        assert!(config.tls().is_none());
        assert!(
            config.describe().contains("unencrypted"),
            "{}",
            config.describe()
        );
    }

    #[test]
    fn keys_of_the_format_the_exporter_does_not_implement_are_refused_by_name() {
        let pki = Pki::new();
        for key in [
            "cert",
            "key",
            "client_ca",
            "client_allowed_sans",
            "max_version",
            "cipher_suites",
            "prefer_server_cipher_suites",
            "curve_preferences",
        ] {
            let error = pki.error(&format!("{TLS}  {key}: x\n"));
            assert!(
                error.starts_with(&format!(
                    "web.yml: line 4: tls_server_config: {key} is not supported: "
                )),
                "{error}"
            );
        }
        for key in ["http_server_config", "rate_limit"] {
            let error = pki.error(&format!("{TLS}{key}:\n  x: 1\n"));
            assert!(
                error.starts_with(&format!("web.yml: line 4: {key} is not supported: ")),
                "{error}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_the_allowed_ones() {
        let pki = Pki::new();
        assert_eq!(
            pki.error(&format!("{TLS}  cert_fiel: x\n")),
            "web.yml: line 4: tls_server_config: cert_fiel: unknown key (allowed keys: cert_file, \
             key_file, client_auth_type, client_ca_file, min_version)"
        );
        assert_eq!(
            pki.error("basic_auth_user:\n  alice: x\n"),
            "web.yml: line 1: basic_auth_user: unknown key (allowed keys: tls_server_config, basic_auth_users)"
        );
        assert_eq!(
            pki.error(&format!("{TLS}  key_file: again.key\n")),
            "web.yml: line 4: tls_server_config: key_file is set twice"
        );
    }

    #[test]
    fn tls_versions_rustls_lacks_are_refused_by_name() {
        let pki = Pki::new();
        for version in ["TLS10", "TLS11"] {
            assert_eq!(
                pki.error(&format!("{TLS}  min_version: {version}\n")),
                format!(
                    "web.yml: line 4: tls_server_config.min_version: {version} is not supported: \
                     rustls implements TLS 1.2 and 1.3 only; use TLS12 or TLS13"
                )
            );
        }
        let error = pki.error(&format!("{TLS}  min_version: TLS1.2\n"));
        assert!(
            error.contains("\"TLS1.2\" is not a TLS version (TLS12 or TLS13)"),
            "{error}"
        );
        let config = pki.ok(&format!("{TLS}  min_version: TLS12\n"));
        assert!(config.describe().contains("TLS 1.2 and 1.3"));
    }

    #[test]
    fn client_auth_types_that_verify_nothing_are_refused_by_name() {
        let pki = Pki::new();
        for auth in ["RequestClientCert", "RequireAnyClientCert"] {
            let error = pki.error(&format!(
                "{TLS}  client_auth_type: {auth}\n  client_ca_file: ca.pem\n"
            ));
            assert!(
                error.starts_with(&format!(
                    "web.yml: line 4: tls_server_config.client_auth_type: {auth} is not supported: "
                )),
                "{error}"
            );
        }
        let error = pki.error(&format!("{TLS}  client_auth_type: requireandverify\n"));
        assert!(error.contains("is not a client_auth_type"), "{error}");
    }

    #[test]
    fn client_certificates_need_a_ca_and_a_ca_needs_client_certificates() {
        let pki = Pki::new();
        assert_eq!(
            pki.error(&format!(
                "{TLS}  client_auth_type: RequireAndVerifyClientCert\n"
            )),
            "web.yml: line 2: tls_server_config.client_ca_file: required key is missing: \
             RequireAndVerifyClientCert checks client certificates against it"
        );
        let error = pki.error(&format!("{TLS}  client_ca_file: ca.pem\n"));
        assert!(
            error.starts_with("web.yml: line 4: tls_server_config.client_ca_file: has no effect"),
            "{error}"
        );
        let config = pki.ok(&format!(
            "{TLS}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n"
        ));
        assert!(config.describe().contains("client certificates optional"));
    }

    #[test]
    fn the_certificate_and_key_are_both_required() {
        let pki = Pki::new();
        assert_eq!(
            pki.error("tls_server_config:\n  cert_file: server.pem\n"),
            "web.yml: line 2: tls_server_config.key_file: required key is missing: the server's \
             private key (PEM)"
        );
        assert_eq!(
            pki.error("tls_server_config: {}\n"),
            "web.yml: line 1: tls_server_config.cert_file: required key is missing: the server's \
             certificate chain (PEM)"
        );
    }

    #[test]
    fn unusable_files_are_named_with_the_key_that_names_them() {
        let pki = Pki::new();
        let dir = pki.dir.display().to_string();
        let error =
            pki.error("tls_server_config:\n  cert_file: missing.pem\n  key_file: server.key\n");
        assert!(
            error.starts_with(&format!(
                "web.yml: line 2: tls_server_config.cert_file: cannot read {dir}/missing.pem: "
            )),
            "{error}"
        );
        // A certificate where the key should be, and a key where the certificate should be.
        let error =
            pki.error("tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n");
        assert_eq!(
            error,
            format!(
                "web.yml: line 3: tls_server_config.key_file: {dir}/server.pem holds no private key \
                 (a -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY block)"
            )
        );
        let error =
            pki.error("tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n");
        assert!(
            error.starts_with("web.yml: line 2: tls_server_config.cert_file: ")
                && error.contains("holds no certificate"),
            "{error}"
        );
        // Someone else's key.
        let error =
            pki.error("tls_server_config:\n  cert_file: server.pem\n  key_file: other.key\n");
        assert_eq!(
            error,
            format!(
                "web.yml: line 3: tls_server_config.key_file: the private key in {dir}/other.key \
                 does not belong to the certificate in {dir}/server.pem"
            )
        );
        // A CA file without certificates.
        let error = pki.error(&format!(
            "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.key\n"
        ));
        assert!(
            error.starts_with("web.yml: line 5: tls_server_config.client_ca_file: ")
                && error.contains("holds no certificate"),
            "{error}"
        );
    }

    #[test]
    fn a_key_file_never_reaches_a_message() {
        let pki = Pki::new();
        let key = std::fs::read_to_string(pki.dir.join("server.key")).unwrap();
        let body: String = key.lines().nth(1).unwrap().to_owned();
        // Break the PEM so the parser complains about it.
        let broken = key.replace("-----END PRIVATE KEY-----", "");
        std::fs::write(pki.dir.join("broken.key"), &broken).unwrap();
        let error =
            pki.error("tls_server_config:\n  cert_file: server.pem\n  key_file: broken.key\n");
        assert!(
            error.ends_with(
                "broken.key is not valid PEM: a block has no -----END PRIVATE KEY----- line"
            ),
            "{error}"
        );
        assert!(!error.contains(&body), "{error}");
    }

    #[test]
    fn users_need_bcrypt_hashes_and_names_basic_authentication_can_carry() {
        let pki = Pki::new();
        let error = pki.error("basic_auth_users:\n  alice: secret-in-the-clear\n");
        assert_eq!(
            error,
            "web.yml: line 2: basic_auth_users.alice: is not a bcrypt hash (60 characters such as \
             $2y$10$...; see the README for how to make one)"
        );
        assert!(!error.contains("secret-in-the-clear"));
        let too_costly = HASH.replacen("$04$", "$32$", 1);
        assert_eq!(
            pki.error(&format!("basic_auth_users:\n  alice: {too_costly}\n")),
            "web.yml: line 2: basic_auth_users.alice: is not a bcrypt hash: its cost is 32, bcrypt \
             allows 4 to 31"
        );
        assert_eq!(
            pki.error(&format!(
                "basic_auth_users:\n  alice: {HASH}\n  alice: {HASH}\n"
            )),
            "web.yml: line 3: basic_auth_users: user \"alice\" is listed twice"
        );
        assert_eq!(
            pki.error(&format!("basic_auth_users:\n  \"al:ice\": {HASH}\n")),
            "web.yml: line 2: basic_auth_users: user name \"al:ice\" cannot be sent with Basic \
             authentication (no ':' or control characters)"
        );
        assert!(
            pki.error("basic_auth_users: [alice]\n")
                .starts_with("web.yml: line 1: basic_auth_users: invalid type: sequence")
        );
    }

    #[tokio::test]
    async fn the_users_check_passwords_against_their_hashes() {
        let pki = Pki::new();
        let config = pki.ok(&format!("basic_auth_users:\n  alice: {HASH}\n"));
        let users = config.users().unwrap();
        assert!(users.check("alice", b"secret").await);
        assert!(!users.check("alice", b"Secret").await);
    }

    #[test]
    fn load_names_the_file_and_takes_paths_from_its_directory() {
        let pki = Pki::new();
        let path = pki.dir.join("web.yml");
        std::fs::write(&path, TLS).unwrap();
        let config = load(&path).unwrap();
        assert!(config.tls().is_some());
        std::fs::write(&path, format!("{TLS}  min_version: TLS11\n")).unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{}: line 4: ", path.display())),
            "{error}"
        );
        let missing = pki.dir.join("nope.yml");
        let error = load(&missing).unwrap_err().to_string();
        assert!(error.contains(&missing.display().to_string()), "{error}");
    }
}
