//! [`ConfigError`]: what a config that cannot be used says, apart from the checked structs so
//! that every part of `config` can name it without importing the module's face.

/// A config that cannot be used. `Display` is the whole message for the user; it never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file itself could not be read.
    #[error("cannot read the config file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    /// The file says something wrong. `message` starts with the key path when there is one.
    #[error("{}", located(origin, *line, message))]
    Invalid {
        origin: String,
        line: Option<usize>,
        message: String,
    },
    /// Neither the config file nor the environment holds a complete credential.
    #[error("{message}")]
    Credentials { message: String },
}

impl From<crate::yaml::Invalid> for ConfigError {
    fn from(invalid: crate::yaml::Invalid) -> Self {
        let crate::yaml::Invalid {
            origin,
            line,
            message,
        } = invalid;
        ConfigError::Invalid {
            origin,
            line,
            message,
        }
    }
}

fn located(origin: &str, line: Option<usize>, message: &str) -> String {
    match line {
        Some(line) => format!("{origin}: line {line}: {message}"),
        None => format!("{origin}: {message}"),
    }
}
