//! The YAML config file: read, checked, and turned into plain structs the rest of the exporter trusts.
//!
//! Parsing runs in two steps. First the text is deserialized into the `Raw*` structs of `raw`, whose
//! leaf values check themselves while yaml_serde stands on them (a group id, a duration, a label name),
//! because only an error raised there gets that node's line and key path. Then `build` runs the checks
//! that involve several keys (duplicates, one key or the other, reading `*_file` secrets) and blames the
//! key at fault through `yaml`, which finds the lines of a document's nodes. Every error reads
//! `FILE: line N: KEY: what is wrong`.
//!
//! The checked structs are in `settings`, and `build` also holds [`load`] and [`parse`]. Beside
//! them: `error` (what a config that cannot be used says), `credentials` (the credential from
//! the file or the environment), `duration` (Prometheus's duration syntax), `size` (byte sizes
//! with a unit, such as `16MiB`) and `describe` (the summary `--config.check` prints). This file
//! is only the face: no part of `config` imports it.

mod build;
mod credentials;
mod describe;
mod duration;
mod error;
mod raw;
mod settings;
mod size;

#[cfg(test)]
mod tests;

pub use build::{load, parse};
pub use credentials::{Credentials, ResolvedCredentials, resolve_credentials};
pub use duration::{format_duration, parse_duration};
pub use error::ConfigError;
pub use settings::{
    ApiVersion, AtlasConfig, ClusterTag, CollectionConfig, Config, DEFAULT_BASE_URL,
    DEFAULT_MAX_RESPONSE_SIZE, DiscoveryConfig, ExportJobsConfig, ListedCluster, MetadataConfig,
    TAG_LABEL_PREFIX, Target,
};
pub use size::{format_size, parse_size};
