//! [`WebConfig`]: what a web config file becomes, ready to serve; reading the file, and the
//! checks that span its two halves.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;

use super::file::RawWebConfig;
use super::tls::build_tls;
use crate::config::ConfigError;
use crate::web::basic_auth::Users;
use crate::yaml::{Locator, Mapping, yaml_error};

/// The exporter's endpoint protection, ready to serve: what the server needs.
pub struct WebConfig {
    tls: Option<Arc<ServerConfig>>,
    users: Option<Arc<Users>>,
    summary: String,
    /// The certificate, key and CA files the TLS settings were read from.
    pub(crate) files: Vec<PathBuf>,
    /// The web config file, when [`load`] read it (`None` for one made by [`parse`]): the server
    /// watches it and reloads it.
    pub(crate) file: Option<PathBuf>,
    /// What the web config file and `files` held when [`load`] read them (see [`fingerprint`]);
    /// `None` for one made by [`parse`].
    pub(crate) fingerprint: Option<u128>,
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
    web.file = Some(path.to_owned());
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
        file: None,
        fingerprint: None,
    })
}
