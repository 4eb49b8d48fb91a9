//! `tls_server_config`: the checks across its keys, reading the certificate, key and CA files
//! (blaming the key that names a bad one), and the rustls server configuration they make.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use super::file::{ClientAuth, MinVersion, RawTls};
use crate::config::ConfigError;
use crate::yaml::{KeyPath, Locator};

pub(super) fn build_tls(
    tls: RawTls,
    at: &Locator,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<(ServerConfig, String), ConfigError> {
    let path = KeyPath::root().key("tls_server_config");
    // The error, on the line of `key` (under tls_server_config).
    let blame = |key: &str, message: String| at.error::<ConfigError>(&path.key(key), message);
    let cert_file = tls.cert_file.ok_or_else(|| {
        blame(
            "cert_file",
            "required key is missing: the server's certificate chain (PEM)".into(),
        )
    })?;
    let key_file = tls.key_file.ok_or_else(|| {
        blame(
            "key_file",
            "required key is missing: the server's private key (PEM)".into(),
        )
    })?;
    let client_auth = tls.client_auth_type.unwrap_or(ClientAuth::NoClientCert);
    match (client_auth.verifies(), &tls.client_ca_file) {
        (true, None) => {
            return Err(blame(
                "client_ca_file",
                format!(
                    "required key is missing: {client_auth} checks client certificates against it"
                ),
            ));
        }
        (false, Some(_)) => {
            return Err(blame(
                "client_ca_file",
                "has no effect with client_auth_type NoClientCert: set client_auth_type to \
                 RequireAndVerifyClientCert (or VerifyClientCertIfGiven), or remove it"
                    .into(),
            ));
        }
        _ => {}
    }

    let cert_path = dir.join(&cert_file);
    let key_path = dir.join(&key_file);
    files.extend([cert_path.clone(), key_path.clone()]);
    files.extend(tls.client_ca_file.iter().map(|ca_file| dir.join(ca_file)));
    let certs = read_certificates(&cert_path).map_err(|m| blame("cert_file", m))?;
    let key = read_private_key(&key_path).map_err(|m| blame("key_file", m))?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    check_key_pair(&provider, &certs, &key, &cert_path, &key_path).map_err(|(on, message)| {
        let key = if on == Blame::Key {
            "key_file"
        } else {
            "cert_file"
        };
        blame(key, message)
    })?;

    let min_version = tls.min_version.unwrap_or(MinVersion::Tls12);
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|error| blame("min_version", error.to_string()))?;
    let builder = match &tls.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let ca_path = dir.join(ca_file);
            let roots = read_roots(&ca_path).map_err(|m| blame("client_ca_file", m))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match client_auth {
                ClientAuth::VerifyClientCertIfGiven => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier.build().map_err(|error| {
                blame("client_ca_file", format!("{}: {error}", ca_path.display()))
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|error| blame("cert_file", format!("{}: {error}", cert_path.display())))?;
    // The exporter speaks HTTP/1.1 only (see `web::server`), and says so in the handshake.
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
