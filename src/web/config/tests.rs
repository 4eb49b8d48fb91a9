//! Web config files read end to end: what each key does, and every refusal's message.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{WebConfig, load, parse};
use crate::config::ConfigError;

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
    let error = pki.error("tls_server_config:\n  cert_file: missing.pem\n  key_file: server.key\n");
    assert!(
        error.starts_with(&format!(
            "web.yml: line 2: tls_server_config.cert_file: cannot read {dir}/missing.pem: "
        )),
        "{error}"
    );
    // A certificate where the key should be, and a key where the certificate should be.
    let error = pki.error("tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n");
    assert_eq!(
        error,
        format!(
            "web.yml: line 3: tls_server_config.key_file: {dir}/server.pem holds no private key \
             (a -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY block)"
        )
    );
    let error = pki.error("tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n");
    assert!(
        error.starts_with("web.yml: line 2: tls_server_config.cert_file: ")
            && error.contains("holds no certificate"),
        "{error}"
    );
    // Someone else's key.
    let error = pki.error("tls_server_config:\n  cert_file: server.pem\n  key_file: other.key\n");
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
    let error = pki.error("tls_server_config:\n  cert_file: server.pem\n  key_file: broken.key\n");
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
