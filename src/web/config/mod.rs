//! The `--web.config.file`: TLS and basic authentication for the exporter's own endpoint, in the
//! format of Prometheus's exporter-toolkit (the file node_exporter takes).
//!
//! The file is read at start-up, and again whenever it or a file it names changes (see
//! `reload`), into a ready [`rustls::ServerConfig`] and the users of basic authentication. Every
//! key of the format is either honoured or refused by name: a silently ignored
//! `client_allowed_sans` or `cipher_suites` would leave the endpoint more open than its owner
//! believes. Errors read `FILE: line N: KEY: what is wrong`, like the main config's. Relative
//! paths are taken from the web config file's directory, as exporter-toolkit does.
//!
//! - `file`: the file as written; each key and value is checked while the YAML parser stands on
//!   it.
//! - `tls`: the checks across the TLS keys, and reading the certificate, key and CA files.
//! - `load`: [`WebConfig`], what a file becomes, and [`load`] and [`parse`].
//!
//! The mappings are read by hand-written serde visitors rather than `#[derive(Deserialize)]` with
//! `deny_unknown_fields`: the derive can only say "unknown field" for a key of the format this
//! exporter refuses on purpose (`cipher_suites`, `client_allowed_sans`, …), where the visitor
//! says why and what to do instead, on the key's own line; and it reports a duplicate key on its
//! mapping's line rather than on the second key's.

mod file;
mod load;
mod tls;

#[cfg(test)]
mod tests;

pub use load::{WebConfig, fingerprint, load, parse};
