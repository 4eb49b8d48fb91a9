//! The credential the exporter signs in with: from `atlas.auth`, or else from the environment variables
//! the Atlas CLI reads.

use std::fmt;

use secrecy::SecretString;
use secrecy::zeroize::Zeroize;

use super::error::ConfigError;

pub(super) const ENV_CLIENT_ID: &str = "MONGODB_ATLAS_CLIENT_ID";
pub(super) const ENV_CLIENT_SECRET: &str = "MONGODB_ATLAS_CLIENT_SECRET";
pub(super) const ENV_PUBLIC_KEY: &str = "MONGODB_ATLAS_PUBLIC_API_KEY";
pub(super) const ENV_PRIVATE_KEY: &str = "MONGODB_ATLAS_PRIVATE_API_KEY";

/// The credential the exporter signs in with. Every part is a secret, the public key and client id
/// included: they are half of a credential and have no business in logs.
#[derive(Clone)]
pub enum Credentials {
    /// Programmatic API key, used with HTTP digest auth.
    ApiKey {
        public_key: SecretString,
        private_key: SecretString,
    },
    /// Service account, used with OAuth 2.0 client credentials.
    ServiceAccount {
        client_id: SecretString,
        client_secret: SecretString,
    },
}

impl Credentials {
    /// The kind as the config file spells it (`api_key`, `service_account`): safe to log.
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::ApiKey { .. } => "api_key",
            Credentials::ServiceAccount { .. } => "service_account",
        }
    }
}

/// Prints the kind only: a credential's parts must never reach a log line or a panic message.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ApiKey { .. } => f.write_str("ApiKey { .. }"),
            Credentials::ServiceAccount { .. } => f.write_str("ServiceAccount { .. }"),
        }
    }
}

/// The credential to use and where it came from, so start-up can log the source (never the value).
#[derive(Clone, Debug)]
pub struct ResolvedCredentials {
    pub credentials: Credentials,
    /// For example `config file (api_key)` or `environment (MONGODB_ATLAS_CLIENT_ID/MONGODB_ATLAS_CLIENT_SECRET)`.
    pub source: String,
    /// Something worth a log line: both environment pairs were set, or half of one was ignored.
    pub notice: Option<String>,
}

/// Picks the credential: `atlas.auth` when present, else the Atlas CLI's environment variables.
/// `env` is `std::env::var(..).ok()` in production and a map in tests. Empty values count as unset.
pub fn resolve_credentials(
    auth: Option<&Credentials>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ResolvedCredentials, ConfigError> {
    if let Some(credentials) = auth {
        return Ok(ResolvedCredentials {
            credentials: credentials.clone(),
            source: format!("config file ({})", credentials.kind()),
            notice: None,
        });
    }
    let service_account = EnvPair::read(&env, ENV_CLIENT_ID, ENV_CLIENT_SECRET);
    let api_key = EnvPair::read(&env, ENV_PUBLIC_KEY, ENV_PRIVATE_KEY);
    match (service_account.complete(), api_key.complete()) {
        (Some((client_id, client_secret)), other) => Ok(ResolvedCredentials {
            credentials: Credentials::ServiceAccount {
                client_id,
                client_secret,
            },
            source: format!("environment ({})", service_account.names()),
            notice: other.map(|_| {
                format!(
                    "both {} and {} are set; using the service account",
                    service_account.names(),
                    api_key.names()
                )
            }),
        }),
        (None, Some((public_key, private_key))) => Ok(ResolvedCredentials {
            credentials: Credentials::ApiKey {
                public_key,
                private_key,
            },
            source: format!("environment ({})", api_key.names()),
            notice: service_account
                .half_set()
                .map(|half| format!("{half}; ignored, using the API key")),
        }),
        (None, None) => Err(ConfigError::Credentials {
            message: missing_credentials_message(&service_account, &api_key),
        }),
    }
}

fn missing_credentials_message(service_account: &EnvPair, api_key: &EnvPair) -> String {
    let mut message = format!(
        "no Atlas credentials: set atlas.auth in the config file, or the environment variables \
         {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} (service account) or {ENV_PUBLIC_KEY} and \
         {ENV_PRIVATE_KEY} (API key)"
    );
    for half in [service_account.half_set(), api_key.half_set()]
        .into_iter()
        .flatten()
    {
        message.push_str("; ");
        message.push_str(&half);
    }
    message
}

/// One pair of credential variables as found in the environment.
struct EnvPair {
    first: (&'static str, Option<SecretString>),
    second: (&'static str, Option<SecretString>),
}

impl EnvPair {
    fn read(
        env: &impl Fn(&str) -> Option<String>,
        first: &'static str,
        second: &'static str,
    ) -> Self {
        let get = |name: &str| {
            env(name).and_then(|mut value| {
                let trimmed = value.trim();
                let secret = (!trimmed.is_empty()).then(|| SecretString::from(trimmed));
                value.zeroize();
                secret
            })
        };
        EnvPair {
            first: (first, get(first)),
            second: (second, get(second)),
        }
    }

    fn complete(&self) -> Option<(SecretString, SecretString)> {
        Some((self.first.1.clone()?, self.second.1.clone()?))
    }

    fn names(&self) -> String {
        format!("{}/{}", self.first.0, self.second.0)
    }

    /// "X is set but Y is not", when exactly one half is set.
    fn half_set(&self) -> Option<String> {
        match (&self.first, &self.second) {
            ((set, Some(_)), (unset, None)) | ((unset, None), (set, Some(_))) => {
                Some(format!("{set} is set but {unset} is not"))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    pub(crate) fn api_key(credentials: &Credentials) -> (&str, &str) {
        match credentials {
            Credentials::ApiKey {
                public_key,
                private_key,
            } => (public_key.expose_secret(), private_key.expose_secret()),
            other => panic!("expected an API key, got {other:?}"),
        }
    }

    pub(crate) fn service_account(credentials: &Credentials) -> (&str, &str) {
        match credentials {
            Credentials::ServiceAccount {
                client_id,
                client_secret,
            } => (client_id.expose_secret(), client_secret.expose_secret()),
            other => panic!("expected a service account, got {other:?}"),
        }
    }

    pub(crate) fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    const SA: [(&str, &str); 2] = [
        ("MONGODB_ATLAS_CLIENT_ID", "mdb_sa_id_env"),
        ("MONGODB_ATLAS_CLIENT_SECRET", "mdb_sa_sk_env"),
    ];
    const KEY: [(&str, &str); 2] = [
        ("MONGODB_ATLAS_PUBLIC_API_KEY", "pubenv"),
        ("MONGODB_ATLAS_PRIVATE_API_KEY", "privenv"),
    ];

    #[test]
    fn credentials_from_the_config_file_win() {
        let file = Credentials::ApiKey {
            public_key: SecretString::from("pubfile"),
            private_key: SecretString::from("privfile"),
        };
        let resolved = resolve_credentials(Some(&file), env(&SA)).expect("resolved");
        assert_eq!(api_key(&resolved.credentials), ("pubfile", "privfile"));
        assert_eq!(resolved.source, "config file (api_key)");
        assert_eq!(resolved.notice, None);
    }

    #[test]
    fn a_service_account_from_the_environment() {
        let resolved = resolve_credentials(None, env(&SA)).expect("resolved");
        assert_eq!(
            service_account(&resolved.credentials),
            ("mdb_sa_id_env", "mdb_sa_sk_env")
        );
        assert_eq!(
            resolved.source,
            "environment (MONGODB_ATLAS_CLIENT_ID/MONGODB_ATLAS_CLIENT_SECRET)"
        );
        assert_eq!(resolved.notice, None);
    }

    #[test]
    fn an_api_key_from_the_environment() {
        let resolved = resolve_credentials(None, env(&KEY)).expect("resolved");
        assert_eq!(api_key(&resolved.credentials), ("pubenv", "privenv"));
        assert_eq!(
            resolved.source,
            "environment (MONGODB_ATLAS_PUBLIC_API_KEY/MONGODB_ATLAS_PRIVATE_API_KEY)"
        );
        assert_eq!(resolved.notice, None);
    }

    #[test]
    fn both_pairs_in_the_environment_use_the_service_account_and_say_so() {
        let resolved =
            resolve_credentials(None, env(&[SA[0], SA[1], KEY[0], KEY[1]])).expect("resolved");
        assert_eq!(
            service_account(&resolved.credentials),
            ("mdb_sa_id_env", "mdb_sa_sk_env")
        );
        assert_eq!(
            resolved.notice.as_deref(),
            Some(
                "both MONGODB_ATLAS_CLIENT_ID/MONGODB_ATLAS_CLIENT_SECRET and \
                 MONGODB_ATLAS_PUBLIC_API_KEY/MONGODB_ATLAS_PRIVATE_API_KEY are set; using the service account"
            )
        );
    }

    #[test]
    fn half_a_service_account_beside_an_api_key_is_noted() {
        let resolved = resolve_credentials(None, env(&[SA[0], KEY[0], KEY[1]])).expect("resolved");
        assert_eq!(api_key(&resolved.credentials), ("pubenv", "privenv"));
        assert_eq!(
            resolved.notice.as_deref(),
            Some(
                "MONGODB_ATLAS_CLIENT_ID is set but MONGODB_ATLAS_CLIENT_SECRET is not; ignored, using the \
                 API key"
            )
        );
    }

    const NO_CREDENTIALS: &str = "no Atlas credentials: set atlas.auth in the config file, or the \
        environment variables MONGODB_ATLAS_CLIENT_ID and MONGODB_ATLAS_CLIENT_SECRET (service account) or \
        MONGODB_ATLAS_PUBLIC_API_KEY and MONGODB_ATLAS_PRIVATE_API_KEY (API key)";

    #[test]
    fn no_credentials_name_the_four_variables() {
        let message = resolve_credentials(None, env(&[]))
            .expect_err("no credentials")
            .to_string();
        assert_eq!(message, NO_CREDENTIALS);
    }

    #[test]
    fn half_a_pair_says_which_half_is_missing() {
        let message = resolve_credentials(None, env(&[KEY[1], SA[0]]))
            .expect_err("no complete pair")
            .to_string();
        assert_eq!(
            message,
            format!(
                "{NO_CREDENTIALS}; MONGODB_ATLAS_CLIENT_ID is set but MONGODB_ATLAS_CLIENT_SECRET is not; \
                 MONGODB_ATLAS_PRIVATE_API_KEY is set but MONGODB_ATLAS_PUBLIC_API_KEY is not"
            )
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let vars = [
            ("MONGODB_ATLAS_CLIENT_ID", "mdb_sa_id_env"),
            ("MONGODB_ATLAS_CLIENT_SECRET", ""),
            ("MONGODB_ATLAS_PUBLIC_API_KEY", "  "),
            ("MONGODB_ATLAS_PRIVATE_API_KEY", "privenv"),
        ];
        let message = resolve_credentials(None, env(&vars))
            .expect_err("no complete pair")
            .to_string();
        assert_eq!(
            message,
            format!(
                "{NO_CREDENTIALS}; MONGODB_ATLAS_CLIENT_ID is set but MONGODB_ATLAS_CLIENT_SECRET is not; \
                 MONGODB_ATLAS_PRIVATE_API_KEY is set but MONGODB_ATLAS_PUBLIC_API_KEY is not"
            )
        );
    }
}
