//! The YAML config file: read, checked, and turned into plain structs the rest of the exporter trusts.
//!
//! Parsing runs in two steps. First the text is deserialized into `Raw*` structs whose leaf values check
//! themselves while yaml_serde stands on them (a group id, a duration, a label name), because only an error
//! raised there gets that node's line and key path. Then the checks that involve several keys (duplicates,
//! one key or the other, reading `*_file` secrets) run on the raw structs and ask yaml_serde for the line of
//! the key they blame (see `line_of`). Every error reads `FILE: line N: KEY: what is wrong`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Display, Write as _};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use secrecy::zeroize::Zeroize;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Where Atlas lives unless the config says otherwise (Atlas for Government and test servers differ).
pub const DEFAULT_BASE_URL: &str = "https://cloud.mongodb.com";

/// Label names the exporter puts on its own series, plus `job` and `instance`, which Prometheus adds to
/// every target. A static label with one of these names would clash, so the config refuses it.
pub const EXPORTER_LABELS: &[&str] = &[
    "group_id",
    "cluster_name",
    "export_job_id",
    "state",
    "snapshot_id",
    "export_bucket_id",
    "error_code",
    "endpoint",
    "code",
    "version",
    "revision",
    "job",
    "instance",
];

const ENV_CLIENT_ID: &str = "MONGODB_ATLAS_CLIENT_ID";
const ENV_CLIENT_SECRET: &str = "MONGODB_ATLAS_CLIENT_SECRET";
const ENV_PUBLIC_KEY: &str = "MONGODB_ATLAS_PUBLIC_API_KEY";
const ENV_PRIVATE_KEY: &str = "MONGODB_ATLAS_PRIVATE_API_KEY";

const SECOND: u64 = 1_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

// ---------------------------------------------------------------------------------------------------------
// The checked config
// ---------------------------------------------------------------------------------------------------------

/// The whole config file, checked: every value here is usable as it is.
#[derive(Clone, Debug)]
pub struct Config {
    /// How to reach Atlas and sign in.
    pub atlas: AtlasConfig,
    /// The projects to watch, in file order: never empty, each `group_id` once.
    pub targets: Vec<Target>,
    pub export_jobs: ExportJobsConfig,
    pub collection: CollectionConfig,
    pub discovery: DiscoveryConfig,
}

/// How to reach the Atlas Administration API, and how hard to lean on it.
#[derive(Clone, Debug)]
pub struct AtlasConfig {
    /// `http://` or `https://` with a host, without a trailing `/`, so paths can be appended as they are.
    pub base_url: String,
    pub api_version: ApiVersion,
    /// Bound on one HTTP request; never zero.
    pub request_timeout: Duration,
    /// Bound on requests in flight for the whole process; at least 1.
    pub max_concurrent_requests: usize,
    /// `None` when `atlas.auth` is absent: [`resolve_credentials`] then looks at the environment.
    pub auth: Option<Credentials>,
}

impl Default for AtlasConfig {
    fn default() -> Self {
        AtlasConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_version: ApiVersion::V2,
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 8,
            auth: None,
        }
    }
}

/// Which generation of the Administration API to call: paths and `Accept` header differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    /// `/api/atlas/v1.0`, `Accept: application/json`.
    V1,
    /// `/api/atlas/v2` with the versioned `Accept` header (the default).
    V2,
}

impl ApiVersion {
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        }
    }
}

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

/// One Atlas project (a "group" in the API) to watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// 24 hexadecimal digits, lowercase as Atlas writes them.
    pub group_id: String,
    /// `None` means every cluster of the project, found by listing them.
    pub clusters: Option<Vec<ClusterSpec>>,
    /// Static labels for every series of this target, sorted by name so output is stable.
    pub labels: Vec<(String, String)>,
}

/// One cluster of a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    /// `None`: every export job of the cluster (list endpoint). `Some`: only these jobs (get-one endpoint);
    /// never empty.
    pub export_job_ids: Option<Vec<String>>,
}

/// Which export jobs are fetched and which get per-job series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportJobsConfig {
    /// Jobs created within this age get per-job series; `Duration::ZERO` means no age limit.
    pub max_age: Duration,
    /// Hard bound on pages fetched for one cluster in one collection; at least 1.
    pub max_pages: u32,
    /// Cap on jobs that get per-job series only for being within `max_age`; 0 means no cap.
    pub max_per_cluster: usize,
}

impl Default for ExportJobsConfig {
    fn default() -> Self {
        ExportJobsConfig {
            max_age: Duration::from_millis(7 * DAY),
            max_pages: 100,
            max_per_cluster: 50,
        }
    }
}

/// How one collection (the Atlas calls behind a scrape) is bounded and shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionConfig {
    /// Deadline when Prometheus sends no `X-Prometheus-Scrape-Timeout-Seconds`; never zero.
    pub timeout: Duration,
    /// Taken off Prometheus's timeout header, to leave time to answer.
    pub timeout_offset: Duration,
    /// How long a finished collection is reused; zero turns the cache off.
    pub cache_ttl: Duration,
    /// `false`: `/metrics` serves only the exporter's own metrics (for `/probe` set-ups).
    pub on_metrics: bool,
}

impl Default for CollectionConfig {
    fn default() -> Self {
        CollectionConfig {
            timeout: Duration::from_secs(30),
            timeout_offset: Duration::from_millis(500),
            cache_ttl: Duration::ZERO,
            on_metrics: true,
        }
    }
}

/// How clusters are found for targets without a `clusters` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// How long a discovered cluster list is reused; zero lists on every scrape.
    pub interval: Duration,
    /// Also watch every cluster of every project the credential can see.
    pub all_projects: bool,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            interval: Duration::from_secs(5 * 60),
            all_projects: false,
        }
    }
}

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

fn located(origin: &str, line: Option<usize>, message: &str) -> String {
    match line {
        Some(line) => format!("{origin}: line {line}: {message}"),
        None => format!("{origin}: {message}"),
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

// ---------------------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------------------

/// Reads and checks the config file; messages name the file as the user gave it.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.display().to_string(),
        error,
    })?;
    parse(&text, &path.display().to_string())
}

/// Checks config text; `origin` names it in messages (usually the file name). Reads `*_file` secrets,
/// relative to the current directory.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let at = Locator { text, origin };
    check_document_shape(text, &at)?;
    let raw: Section<RawConfig> =
        serde_yaml::from_str(text).map_err(|error| yaml_error(error, origin))?;
    build(raw.0, &at)
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

impl Config {
    /// A human summary of what the exporter would scrape, for `--config.check`. Holds no secret.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_description(&mut out);
        out
    }

    fn write_description(&self, out: &mut String) -> fmt::Result {
        let atlas = &self.atlas;
        writeln!(
            out,
            "Atlas API: {} ({}), request timeout {}, at most {} requests at once",
            atlas.base_url,
            atlas.api_version.as_str(),
            format_duration(atlas.request_timeout),
            atlas.max_concurrent_requests
        )?;
        let credentials = match &atlas.auth {
            Some(Credentials::ApiKey { .. }) => "API key (digest) from the config file".to_owned(),
            Some(Credentials::ServiceAccount { .. }) => {
                "service account (OAuth) from the config file".to_owned()
            }
            None => format!(
                "from the environment: {ENV_CLIENT_ID}/{ENV_CLIENT_SECRET} (service account) or \
                 {ENV_PUBLIC_KEY}/{ENV_PRIVATE_KEY} (API key)"
            ),
        };
        writeln!(out, "Credentials: {credentials}")?;
        writeln!(out, "Targets: {}", self.targets.len())?;
        for target in &self.targets {
            self.write_target(out, target)?;
        }
        if self.discovery.all_projects {
            writeln!(
                out,
                "  and every cluster of every project the credential can see, discovered {}",
                self.discovery_cadence()
            )?;
        }
        let jobs = &self.export_jobs;
        let age = if jobs.max_age.is_zero() {
            "every job (no age limit)".to_owned()
        } else {
            format!("jobs created within {}", format_duration(jobs.max_age))
        };
        let cap = match jobs.max_per_cluster {
            0 => "no cap per cluster".to_owned(),
            n => format!("at most {n} per cluster"),
        };
        writeln!(
            out,
            "Per-job series: unfinished jobs, the newest job, listed job ids, and {age} ({cap}); \
             at most {} pages per cluster",
            jobs.max_pages
        )?;
        let collection = &self.collection;
        let cache = if collection.cache_ttl.is_zero() {
            "no cache".to_owned()
        } else {
            format!(
                "results reused for {}",
                format_duration(collection.cache_ttl)
            )
        };
        writeln!(
            out,
            "Collection: deadline is Prometheus's scrape timeout minus {}, or {} without it; {cache}; {}",
            format_duration(collection.timeout_offset),
            format_duration(collection.timeout),
            if collection.on_metrics {
                "/metrics serves the export jobs"
            } else {
                "/metrics serves only the exporter's own metrics (export jobs on /probe)"
            }
        )
    }

    fn write_target(&self, out: &mut String, target: &Target) -> fmt::Result {
        writeln!(out, "  project {}", target.group_id)?;
        match &target.clusters {
            None => writeln!(
                out,
                "    clusters: all clusters, discovered {}",
                self.discovery_cadence()
            )?,
            Some(clusters) => {
                for cluster in clusters {
                    match &cluster.export_job_ids {
                        None => writeln!(out, "    cluster {}: all export jobs", cluster.name)?,
                        Some(ids) => writeln!(
                            out,
                            "    cluster {}: export jobs {}",
                            cluster.name,
                            ids.join(", ")
                        )?,
                    }
                }
            }
        }
        if !target.labels.is_empty() {
            let labels: Vec<String> = target
                .labels
                .iter()
                .map(|(name, value)| format!("{name}={value:?}"))
                .collect();
            writeln!(out, "    labels: {}", labels.join(", "))?;
        }
        Ok(())
    }

    fn discovery_cadence(&self) -> String {
        if self.discovery.interval.is_zero() {
            "on every scrape".to_owned()
        } else {
            format!("every {}", format_duration(self.discovery.interval))
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------------------------

/// Duration units in the order Prometheus requires them, with their size in milliseconds.
const DURATION_UNITS: [(&str, u64); 7] = [
    ("y", 365 * DAY),
    ("w", 7 * DAY),
    ("d", DAY),
    ("h", HOUR),
    ("m", MINUTE),
    ("s", SECOND),
    ("ms", 1),
];

/// Parses a duration the way Prometheus writes them (`500ms`, `30s`, `1h30m`, `7d`, `1w`, `1y`), so a
/// user can copy values between the two. Units go from largest to smallest, each at most once; `0` alone
/// means zero. The error says what is wrong without naming the key: callers add that.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration: write for example 30s, 5m or 1h30m".to_owned());
    }
    if text.starts_with('-') {
        return Err(format!(
            "{text:?} is negative: a duration must be 0 or more"
        ));
    }
    if text.contains('.') {
        return Err(format!(
            "{text:?} has a fraction: use whole numbers of smaller units (1h30m rather than 1.5h)"
        ));
    }
    let mut total: u64 = 0;
    let mut previous_unit: Option<usize> = None;
    let mut rest = text;
    while !rest.is_empty() {
        let (number, after) = rest.split_at(
            rest.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len()),
        );
        let (unit, next) = after.split_at(
            after
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(after.len()),
        );
        let unit_index = duration_unit(text, number, unit)?;
        if previous_unit.is_some_and(|previous| unit_index <= previous) {
            return Err(format!(
                "{text:?}: units must go from largest to smallest, each at most once (for example 1h30m)"
            ));
        }
        let too_large = || format!("{text:?} is too large");
        let count: u64 = number.parse().map_err(|_| too_large())?;
        total = count
            .checked_mul(DURATION_UNITS[unit_index].1)
            .and_then(|millis| total.checked_add(millis))
            .ok_or_else(too_large)?;
        previous_unit = Some(unit_index);
        rest = next;
    }
    Ok(Duration::from_millis(total))
}

/// Finds `unit` in [`DURATION_UNITS`], or explains what is wrong with one number-and-unit part.
fn duration_unit(text: &str, number: &str, unit: &str) -> Result<usize, String> {
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a duration: write for example 30s, 5m or 1h30m"
        ));
    }
    if unit.is_empty() {
        return Err(format!(
            "{text:?} has no unit: write for example {number}s or {number}m"
        ));
    }
    DURATION_UNITS
        .iter()
        .position(|(name, _)| *name == unit)
        .ok_or_else(|| {
            format!("{text:?} has an unknown unit {unit:?} (use ms, s, m, h, d, w or y)")
        })
}

/// Writes a duration so that [`parse_duration`] reads it back: `7d`, `1m30s`, `0s`. Days are the largest
/// unit, because "7d" reads better than "1w" in a config summary. Millisecond precision.
pub fn format_duration(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", DAY),
        ("h", HOUR),
        ("m", MINUTE),
        ("s", SECOND),
        ("ms", 1),
    ] {
        let size = u128::from(size);
        let count = millis / size;
        if count > 0 {
            out.push_str(&format!("{count}{unit}"));
            millis -= count * size;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Checked scalars: each rule runs while yaml_serde is on the node, so its error gets the line and key path
// ---------------------------------------------------------------------------------------------------------

/// A rule for one scalar value of the file.
pub(crate) trait Rule {
    type Output;
    /// What the value should be, for "invalid type" messages.
    const EXPECTING: &'static str;
    fn check(text: &str) -> Result<Self::Output, String>;
}

/// A scalar that passed its [`Rule`].
pub(crate) struct Checked<R: Rule>(pub(crate) R::Output);

impl<'de, R: Rule> Deserialize<'de> for Checked<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CheckedVisitor<R>(PhantomData<R>);
        impl<R: Rule> Visitor<'_> for CheckedVisitor<R> {
            type Value = Checked<R>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(R::EXPECTING)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                R::check(text).map(Checked).map_err(E::custom)
            }
        }
        // yaml_serde hands any scalar to visit_str as written, so `0`, `1.50` or `true` arrive verbatim.
        deserializer.deserialize_str(CheckedVisitor(PhantomData))
    }
}

struct GroupIdRule;
impl Rule for GroupIdRule {
    type Output = String;
    const EXPECTING: &'static str = "a project id (24 hexadecimal digits)";
    fn check(text: &str) -> Result<String, String> {
        let hex = text.len() == 24 && text.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex {
            return Err(format!(
                "{text:?} is not a project id (24 hexadecimal digits)"
            ));
        }
        // Atlas writes ids in lowercase; capitals from a copy-paste are still the same id.
        Ok(text.to_ascii_lowercase())
    }
}

struct ClusterNameRule;
impl Rule for ClusterNameRule {
    type Output = String;
    const EXPECTING: &'static str = "a cluster name";
    fn check(text: &str) -> Result<String, String> {
        let mut chars = text.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(format!(
                "{text:?} is not a cluster name (ASCII letters, digits and '-', not starting with '-')"
            ));
        }
        Ok(text.to_owned())
    }
}

struct JobIdRule;
impl Rule for JobIdRule {
    type Output = String;
    const EXPECTING: &'static str = "an export job id";
    fn check(text: &str) -> Result<String, String> {
        // Ids are opaque strings; they go into a URL path percent-encoded, but `.` and `..`
        // would be read as path steps, and blanks or control characters are typing accidents.
        let valid = !text.is_empty()
            && text.len() <= 256
            && text != "."
            && text != ".."
            && !text.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err(format!(
                "{text:?} is not an export job id (up to 256 characters, no blanks or control \
                 characters, not . or ..)"
            ));
        }
        Ok(text.to_owned())
    }
}

struct LabelNameRule;
impl Rule for LabelNameRule {
    type Output = String;
    const EXPECTING: &'static str = "a label name";
    fn check(text: &str) -> Result<String, String> {
        let mut chars = text.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "{text:?} is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            ));
        }
        if text.starts_with("__") {
            return Err(format!(
                "{text:?}: label names starting with __ are reserved for Prometheus"
            ));
        }
        if EXPORTER_LABELS.contains(&text) {
            return Err(format!(
                "{text:?} is a label the exporter or Prometheus sets itself; choose another name"
            ));
        }
        Ok(text.to_owned())
    }
}

struct LabelValueRule;
impl Rule for LabelValueRule {
    type Output = String;
    const EXPECTING: &'static str = "a label value";
    fn check(text: &str) -> Result<String, String> {
        if text.is_empty() {
            // Prometheus treats an empty value as no label at all: surely not what was meant.
            return Err("label value is empty".to_owned());
        }
        Ok(text.to_owned())
    }
}

struct DurationRule;
impl Rule for DurationRule {
    type Output = Duration;
    const EXPECTING: &'static str = "a duration such as 30s, 5m or 1h30m";
    fn check(text: &str) -> Result<Duration, String> {
        parse_duration(text)
    }
}

/// A duration where zero would mean "give up at once".
struct PositiveDurationRule;
impl Rule for PositiveDurationRule {
    type Output = Duration;
    const EXPECTING: &'static str = "a duration greater than 0, such as 30s";
    fn check(text: &str) -> Result<Duration, String> {
        match parse_duration(text)? {
            Duration::ZERO => Err(format!("must be greater than 0, not {text:?}")),
            duration => Ok(duration),
        }
    }
}

struct BaseUrlRule;
impl Rule for BaseUrlRule {
    type Output = String;
    const EXPECTING: &'static str = "an http:// or https:// URL";
    fn check(text: &str) -> Result<String, String> {
        check_base_url(text)?;
        Ok(text.trim_end_matches('/').to_owned())
    }
}

fn check_base_url(text: &str) -> Result<(), String> {
    let lower = text.to_ascii_lowercase();
    let Some(rest) = ["https://", "http://"]
        .iter()
        .find_map(|scheme| lower.starts_with(scheme).then(|| &text[scheme.len()..]))
    else {
        return Err(format!(
            "{text:?} is not an http:// or https:// URL (for example https://cloud.mongodb.com)"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        // Not echoed: the part before '@' would be a user name and password.
        return Err("must not hold credentials; put them under atlas.auth".to_owned());
    }
    if text.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
        return Err(format!(
            "{text:?}: a base URL has no spaces, query or fragment"
        ));
    }
    let (host, port) = split_host_port(authority);
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    if port.is_some_and(|port| port.parse::<u16>().map_or(true, |port| port == 0)) {
        return Err(format!("{text:?} has an invalid port"));
    }
    Ok(())
}

/// `host[:port]` or `[v6]:port`, without checking either part.
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').unwrap_or((bracketed, ""));
        return (host, after.strip_prefix(':'));
    }
    match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

struct ApiVersionRule;
impl Rule for ApiVersionRule {
    type Output = ApiVersion;
    const EXPECTING: &'static str = "v2 or v1";
    fn check(text: &str) -> Result<ApiVersion, String> {
        match text {
            "v2" => Ok(ApiVersion::V2),
            "v1" => Ok(ApiVersion::V1),
            _ => Err(format!("{text:?} is not an API version (v2 or v1)")),
        }
    }
}

/// A secret written in the file. Its messages never quote it.
struct SecretRule;
impl Rule for SecretRule {
    type Output = SecretString;
    const EXPECTING: &'static str = "a secret string";
    fn check(text: &str) -> Result<SecretString, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("is empty".to_owned());
        }
        Ok(SecretString::from(trimmed))
    }
}

struct FilePathRule;
impl Rule for FilePathRule {
    type Output = PathBuf;
    const EXPECTING: &'static str = "a file path";
    fn check(text: &str) -> Result<PathBuf, String> {
        if text.trim().is_empty() {
            return Err("is empty: give the path of the file holding the secret".to_owned());
        }
        Ok(PathBuf::from(text))
    }
}

/// A whole number of at least `MIN`.
struct Count<const MIN: u32>(u32);

impl<'de, const MIN: u32> Deserialize<'de> for Count<MIN> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor<const MIN: u32>;
        impl<const MIN: u32> Visitor<'_> for CountVisitor<MIN> {
            type Value = Count<MIN>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match MIN {
                    0 => f.write_str("a whole number"),
                    _ => write!(f, "a whole number of at least {MIN}"),
                }
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                let value = u32::try_from(value).map_err(|_| {
                    E::custom(format_args!("{value} is too large (at most {})", u32::MAX))
                })?;
                if value < MIN {
                    return Err(E::custom(format_args!(
                        "must be at least {MIN}, not {value}"
                    )));
                }
                Ok(Count(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(E::custom(format_args!(
                        "must be at least {MIN}, not {value}"
                    ))),
                }
            }
        }
        deserializer.deserialize_u64(CountVisitor::<MIN>)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Mappings and lists
// ---------------------------------------------------------------------------------------------------------

/// A mapping read into the derived struct `T`. Without this wrapper a scalar in its place would be quoted
/// in the message ("invalid type: string ...": unwelcome where it may be a secret) next to a Rust type name.
pub(crate) struct Section<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Section<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SectionVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SectionVisitor<T> {
            type Value = Section<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Section)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(not_a_mapping("a string"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Err(not_a_mapping("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(not_a_mapping("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(not_a_mapping("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Err(not_a_mapping("a number"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Err(not_a_mapping("nothing"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(not_a_mapping("a list"))
            }
        }
        deserializer.deserialize_any(SectionVisitor(PhantomData))
    }
}

fn not_a_mapping<E: de::Error>(found: &str) -> E {
    E::custom(format_args!(
        "expected a mapping (indented `key: value` lines), found {found}"
    ))
}

/// One entry of `clusters`: a plain name, or `{name, export_job_ids}`.
enum ClusterEntry {
    Name(String),
    Jobs(RawClusterJobs),
}

impl ClusterEntry {
    fn name(&self) -> &str {
        match self {
            ClusterEntry::Name(name) => name,
            ClusterEntry::Jobs(jobs) => &jobs.name.0,
        }
    }
}

impl<'de> Deserialize<'de> for ClusterEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = ClusterEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a cluster name, or a mapping with name and export_job_ids")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                ClusterNameRule::check(text)
                    .map(ClusterEntry::Name)
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawClusterJobs::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ClusterEntry::Jobs)
            }
            // Plain YAML scalars such as 0123 or 1e3 are numbers; their text may not survive, so ask for quotes.
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Err(E::custom(format_args!(
                    "{value} reads as a number: write a cluster name made of digits in quotes"
                )))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                self.visit_i64(i64::try_from(value).unwrap_or(i64::MAX))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
                Err(E::custom(format_args!(
                    "{value} reads as a number: write a cluster name made of digits in quotes"
                )))
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

/// Static labels, in name order. Duplicate names are refused (YAML would silently keep the last).
struct Labels(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;
        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of label names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut labels = BTreeMap::new();
                while let Some(name) = map.next_key_seed(LabelName(&labels))? {
                    let value: Checked<LabelValueRule> = map.next_value()?;
                    labels.insert(name, value.0);
                }
                Ok(Labels(labels))
            }
        }
        deserializer.deserialize_map(LabelsVisitor)
    }
}

/// A label name, checked against the names already read so a duplicate is blamed on its own line.
struct LabelName<'a>(&'a BTreeMap<String, String>);

impl<'de> DeserializeSeed<'de> for LabelName<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for LabelName<'_> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(LabelNameRule::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        if self.0.contains_key(text) {
            return Err(E::custom(format_args!("label {text:?} is set twice")));
        }
        LabelNameRule::check(text).map_err(E::custom)
    }
}

// ---------------------------------------------------------------------------------------------------------
// The file as written
// ---------------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    atlas: Option<Section<RawAtlas>>,
    targets: Option<Vec<Section<RawTarget>>>,
    export_jobs: Option<Section<RawExportJobs>>,
    collection: Option<Section<RawCollection>>,
    discovery: Option<Section<RawDiscovery>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAtlas {
    base_url: Option<Checked<BaseUrlRule>>,
    api_version: Option<Checked<ApiVersionRule>>,
    request_timeout: Option<Checked<PositiveDurationRule>>,
    max_concurrent_requests: Option<Count<1>>,
    auth: Option<Section<RawAuth>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    api_key: Option<Section<RawApiKey>>,
    service_account: Option<Section<RawServiceAccount>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    public_key: Option<Checked<SecretRule>>,
    public_key_file: Option<Checked<FilePathRule>>,
    private_key: Option<Checked<SecretRule>>,
    private_key_file: Option<Checked<FilePathRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceAccount {
    client_id: Option<Checked<SecretRule>>,
    client_id_file: Option<Checked<FilePathRule>>,
    client_secret: Option<Checked<SecretRule>>,
    client_secret_file: Option<Checked<FilePathRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    group_id: Checked<GroupIdRule>,
    clusters: Option<Vec<ClusterEntry>>,
    labels: Option<Labels>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClusterJobs {
    name: Checked<ClusterNameRule>,
    export_job_ids: Option<Vec<Checked<JobIdRule>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExportJobs {
    max_age: Option<Checked<DurationRule>>,
    max_pages: Option<Count<1>>,
    max_per_cluster: Option<Count<0>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollection {
    timeout: Option<Checked<PositiveDurationRule>>,
    timeout_offset: Option<Checked<DurationRule>>,
    cache_ttl: Option<Checked<DurationRule>>,
    on_metrics: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    interval: Option<Checked<DurationRule>>,
    all_projects: Option<bool>,
}

// ---------------------------------------------------------------------------------------------------------
// From the file as written to the checked config
// ---------------------------------------------------------------------------------------------------------

fn build(raw: RawConfig, at: &Locator) -> Result<Config, ConfigError> {
    let atlas = match raw.atlas {
        Some(Section(atlas)) => build_atlas(atlas, at)?,
        None => AtlasConfig::default(),
    };
    let export_jobs = raw
        .export_jobs
        .map_or_else(ExportJobsConfig::default, |Section(raw)| {
            build_export_jobs(raw)
        });
    let collection = raw
        .collection
        .map_or_else(CollectionConfig::default, |Section(raw)| {
            build_collection(raw)
        });
    let discovery = raw
        .discovery
        .map_or_else(DiscoveryConfig::default, |Section(raw)| {
            build_discovery(raw)
        });
    Ok(Config {
        atlas,
        targets: build_targets(raw.targets, discovery.all_projects, at)?,
        export_jobs,
        collection,
        discovery,
    })
}

fn build_atlas(raw: RawAtlas, at: &Locator) -> Result<AtlasConfig, ConfigError> {
    let defaults = AtlasConfig::default();
    let auth = match raw.auth {
        Some(Section(auth)) => Some(build_auth(auth, at)?),
        None => None,
    };
    Ok(AtlasConfig {
        base_url: raw.base_url.map_or(defaults.base_url, |v| v.0),
        api_version: raw.api_version.map_or(defaults.api_version, |v| v.0),
        request_timeout: raw
            .request_timeout
            .map_or(defaults.request_timeout, |v| v.0),
        max_concurrent_requests: raw
            .max_concurrent_requests
            .map_or(defaults.max_concurrent_requests, |v| v.0 as usize),
        auth,
    })
}

fn build_auth(raw: RawAuth, at: &Locator) -> Result<Credentials, ConfigError> {
    let path = KeyPath::root().key("atlas").key("auth");
    match (raw.api_key, raw.service_account) {
        (Some(Section(key)), None) => {
            let path = path.key("api_key");
            Ok(Credentials::ApiKey {
                public_key: secret(at, &path, "public_key", key.public_key, key.public_key_file)?,
                private_key: secret(
                    at,
                    &path,
                    "private_key",
                    key.private_key,
                    key.private_key_file,
                )?,
            })
        }
        (None, Some(Section(account))) => {
            let path = path.key("service_account");
            Ok(Credentials::ServiceAccount {
                client_id: secret(
                    at,
                    &path,
                    "client_id",
                    account.client_id,
                    account.client_id_file,
                )?,
                client_secret: secret(
                    at,
                    &path,
                    "client_secret",
                    account.client_secret,
                    account.client_secret_file,
                )?,
            })
        }
        (Some(_), Some(_)) => {
            Err(at.error(&path, "both api_key and service_account are set; keep one"))
        }
        (None, None) => Err(at.error(
            &path,
            "set api_key or service_account (or remove auth to use the environment)",
        )),
    }
}

/// One secret given either inline (`name`) or by file (`name_file`), exactly one of the two.
fn secret(
    at: &Locator,
    path: &KeyPath,
    name: &str,
    value: Option<Checked<SecretRule>>,
    file: Option<Checked<FilePathRule>>,
) -> Result<SecretString, ConfigError> {
    match (value, file) {
        (Some(value), None) => Ok(value.0),
        (None, Some(file)) => read_secret_file(&file.0)
            .map_err(|message| at.error(&path.key(&format!("{name}_file")), message)),
        (Some(_), Some(_)) => Err(at.error(
            path,
            format_args!("both {name} and {name}_file are set; keep one"),
        )),
        (None, None) => Err(at.error(
            path,
            format_args!("{name} is missing: set {name} or {name}_file"),
        )),
    }
}

/// Reads a secret from a file, trimmed (files usually end with a newline). The path is no secret, so the
/// message names it; the content never appears.
fn read_secret_file(path: &Path) -> Result<SecretString, String> {
    let mut content = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {:?}: {error}", path.display().to_string()))?;
    let trimmed = content.trim();
    let secret = (!trimmed.is_empty()).then(|| SecretString::from(trimmed));
    content.zeroize();
    secret.ok_or_else(|| format!("{:?} is empty", path.display().to_string()))
}

/// The targets; none are needed when `discovery.all_projects` finds the clusters.
fn build_targets(
    raw: Option<Vec<Section<RawTarget>>>,
    all_projects: bool,
    at: &Locator,
) -> Result<Vec<Target>, ConfigError> {
    let path = KeyPath::root().key("targets");
    if all_projects && raw.as_ref().is_none_or(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let raw = raw.ok_or_else(|| {
        at.error(
            &path,
            "is missing: list the Atlas projects to watch, each with its group_id (or set discovery.all_projects: true)",
        )
    })?;
    if raw.is_empty() {
        return Err(at.error(
            &path,
            "is empty: list at least one Atlas project (group_id)",
        ));
    }
    let mut first_index: HashMap<String, usize> = HashMap::new();
    let mut targets = Vec::with_capacity(raw.len());
    for (index, Section(target)) in raw.into_iter().enumerate() {
        let target_path = path.index(index);
        let group_id = target.group_id.0;
        if let Some(&first) = first_index.get(&group_id) {
            let first_path = path.index(first).key("group_id");
            return Err(at.error(
                &target_path.key("group_id"),
                format_args!(
                    "project {group_id} is already {first_path}{}; merge the two targets",
                    at.line_note(&first_path)
                ),
            ));
        }
        first_index.insert(group_id.clone(), index);
        targets.push(Target {
            group_id,
            clusters: build_clusters(target.clusters, &target_path.key("clusters"), at)?,
            labels: target
                .labels
                .map(|labels| labels.0.into_iter().collect())
                .unwrap_or_default(),
        });
    }
    Ok(targets)
}

fn build_clusters(
    raw: Option<Vec<ClusterEntry>>,
    path: &KeyPath,
    at: &Locator,
) -> Result<Option<Vec<ClusterSpec>>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.is_empty() {
        return Err(at.error(
            path,
            "is empty: list clusters, or remove clusters to watch every cluster of the project",
        ));
    }
    let mut first_index: HashMap<&str, usize> = HashMap::new();
    for (index, entry) in raw.iter().enumerate() {
        if let Some(&first) = first_index.get(entry.name()) {
            let first_path = path.index(first);
            return Err(at.error(
                &path.index(index),
                format_args!(
                    "cluster {:?} is listed twice: first at {first_path}{}",
                    entry.name(),
                    at.line_note(&first_path)
                ),
            ));
        }
        first_index.insert(entry.name(), index);
    }
    let clusters = raw
        .into_iter()
        .enumerate()
        .map(|(index, entry)| build_cluster(entry, &path.index(index), at))
        .collect::<Result<_, _>>()?;
    Ok(Some(clusters))
}

fn build_cluster(
    entry: ClusterEntry,
    path: &KeyPath,
    at: &Locator,
) -> Result<ClusterSpec, ConfigError> {
    let jobs = match entry {
        ClusterEntry::Name(name) => {
            return Ok(ClusterSpec {
                name,
                export_job_ids: None,
            });
        }
        ClusterEntry::Jobs(jobs) => jobs,
    };
    let Some(ids) = jobs.export_job_ids else {
        return Ok(ClusterSpec {
            name: jobs.name.0,
            export_job_ids: None,
        });
    };
    let path = path.key("export_job_ids");
    if ids.is_empty() {
        return Err(at.error(
            &path,
            "is empty: list job ids, or write the cluster as a plain name to watch all its jobs",
        ));
    }
    let ids: Vec<String> = ids.into_iter().map(|id| id.0).collect();
    if let Some(index) = (1..ids.len()).find(|&i| ids[..i].contains(&ids[i])) {
        return Err(at.error(
            &path.index(index),
            format_args!("export job {:?} is listed twice", ids[index]),
        ));
    }
    Ok(ClusterSpec {
        name: jobs.name.0,
        export_job_ids: Some(ids),
    })
}

fn build_export_jobs(raw: RawExportJobs) -> ExportJobsConfig {
    let defaults = ExportJobsConfig::default();
    ExportJobsConfig {
        max_age: raw.max_age.map_or(defaults.max_age, |v| v.0),
        max_pages: raw.max_pages.map_or(defaults.max_pages, |v| v.0),
        max_per_cluster: raw
            .max_per_cluster
            .map_or(defaults.max_per_cluster, |v| v.0 as usize),
    }
}

fn build_collection(raw: RawCollection) -> CollectionConfig {
    let defaults = CollectionConfig::default();
    CollectionConfig {
        timeout: raw.timeout.map_or(defaults.timeout, |v| v.0),
        timeout_offset: raw.timeout_offset.map_or(defaults.timeout_offset, |v| v.0),
        cache_ttl: raw.cache_ttl.map_or(defaults.cache_ttl, |v| v.0),
        on_metrics: raw.on_metrics.unwrap_or(defaults.on_metrics),
    }
}

fn build_discovery(raw: RawDiscovery) -> DiscoveryConfig {
    let defaults = DiscoveryConfig::default();
    DiscoveryConfig {
        interval: raw.interval.map_or(defaults.interval, |v| v.0),
        all_projects: raw.all_projects.unwrap_or(defaults.all_projects),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Errors with a file, a line and a key
// ---------------------------------------------------------------------------------------------------------

/// Refuses a document that is not YAML, empty, or not a mapping before the typed pass, whose messages for
/// those cases ("missing field", "expected struct") would not help.
fn check_document_shape(text: &str, at: &Locator) -> Result<(), ConfigError> {
    let shape = Shape::deserialize(serde_yaml::Deserializer::from_str(text)).map_err(|error| {
        // This pass accepts any document, so what fails here is the YAML syntax itself.
        let (line, message) = split_yaml_error(&error);
        ConfigError::Invalid {
            origin: at.origin.to_owned(),
            line,
            message: format!("not valid YAML: {message}"),
        }
    })?;
    let found = match shape {
        Shape::Mapping => return Ok(()),
        Shape::Empty => {
            return Err(ConfigError::Invalid {
                origin: at.origin.to_owned(),
                line: None,
                message: "the file is empty: it needs at least a targets list".to_owned(),
            });
        }
        Shape::Other(found) => found,
    };
    Err(at.error(
        &KeyPath::root(),
        format_args!("the file must be a mapping of keys such as atlas: and targets:, not {found}"),
    ))
}

/// What the top of the document is. Reading it checks the syntax of the whole document, and nothing else:
/// duplicate keys are left for the typed pass, which blames them on the right key.
enum Shape {
    Mapping,
    Empty,
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;
        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML document")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shape::Mapping)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Shape::Other("a list"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::Empty)
            }
            fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::Empty)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Other("a single value"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Other("a single value"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Other("a single value"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Other("a single value"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::Other("a single value"))
            }
            fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Shape, A::Error> {
                Ok(Shape::Other("a tagged value"))
            }
        }
        deserializer.deserialize_any(ShapeVisitor)
    }
}

/// Rewrites a yaml_serde error as `FILE: line N: KEY: what is wrong`.
pub(crate) fn yaml_error(error: serde_yaml::Error, origin: &str) -> ConfigError {
    let (line, message) = split_yaml_error(&error);
    ConfigError::Invalid {
        origin: origin.to_owned(),
        line,
        message: humanize_serde_message(&message),
    }
}

/// yaml_serde writes `KEY: message at line N column M`: this keeps the key path and the message, and
/// returns the line apart so it can go in front.
fn split_yaml_error(error: &serde_yaml::Error) -> (Option<usize>, String) {
    let location = error.location();
    let mut text = error.to_string();
    if let Some(location) = &location {
        let position = format!(" at line {} column {}", location.line(), location.column());
        text = text.replacen(&position, "", 1);
    }
    (location.map(|location| location.line()), text)
}

/// serde's derive says "unknown field `x`, expected one of `a`, `b`" and "missing field `x`" with the
/// mapping's path in front; a user thinks in keys, so the key joins the path.
fn humanize_serde_message(text: &str) -> String {
    for (pattern, rewrite) in [
        ("unknown field `", "unknown key"),
        ("missing field `", "required key is missing"),
        ("duplicate field `", "is set twice"),
    ] {
        let Some(start) = text.find(pattern) else {
            continue;
        };
        let prefix = text[..start].trim_end_matches(": ");
        let after = &text[start + pattern.len()..];
        let Some((key, rest)) = after.split_once('`') else {
            continue;
        };
        let path = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        let allowed = rest
            .strip_prefix(", expected ")
            .map(|expected| {
                let keys = expected
                    .trim_start_matches("one of ")
                    .replace(" or ", ", ")
                    .replace('`', "");
                format!(" (allowed keys: {keys})")
            })
            .unwrap_or_default();
        return format!("{path}: {rewrite}{allowed}");
    }
    text.to_owned()
}

/// Makes located errors for checks that run after deserializing.
pub(crate) struct Locator<'a> {
    pub(crate) text: &'a str,
    pub(crate) origin: &'a str,
}

impl Locator<'_> {
    /// An error blamed on `path`, at its line, or at the line of its nearest ancestor present in the file
    /// (a missing key is blamed on the mapping that lacks it).
    pub(crate) fn error(&self, path: &KeyPath, message: impl Display) -> ConfigError {
        let line = (0..=path.0.len())
            .rev()
            .find_map(|len| line_of(self.text, &path.0[..len]));
        let message = if path.0.is_empty() {
            message.to_string()
        } else {
            format!("{path}: {message}")
        };
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            line,
            message,
        }
    }

    /// " (line N)", for naming a second place in a message.
    fn line_note(&self, path: &KeyPath) -> String {
        line_of(self.text, &path.0)
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default()
    }
}

/// A key path in yaml_serde's notation: `targets[0].clusters[1].name`.
#[derive(Clone)]
pub(crate) struct KeyPath(Vec<Segment>);

#[derive(Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub(crate) fn root() -> Self {
        KeyPath(Vec::new())
    }

    pub(crate) fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }
}

impl Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if position == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Marks the error [`line_of`] raises on purpose, to tell it from any other.
const PROBE_MARK: &str = "\u{1}line probe";

/// The line of the node at `path`, or `None` if the file has no such node.
///
/// yaml_serde tells positions only in errors, so this deserializes the text again with a seed that walks
/// down `path`, skipping everything else, and fails on purpose at the node: the error carries its line.
fn line_of(text: &str, path: &[Segment]) -> Option<usize> {
    let error = Probe(path)
        .deserialize(serde_yaml::Deserializer::from_str(text))
        .err()?;
    if error.to_string().contains(PROBE_MARK) {
        error.location().map(|location| location.line())
    } else {
        None
    }
}

struct Probe<'p>(&'p [Segment]);

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.0.split_first() {
            None => deserializer.deserialize_any(Here),
            Some((Segment::Key(_), _)) => deserializer.deserialize_map(self),
            Some((Segment::Index(_), _)) => deserializer.deserialize_seq(self),
        }
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping or a list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Segment::Key(wanted), rest)) = self.0.split_first() else {
            return Ok(());
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == *wanted {
                return map.next_value_seed(Probe(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Segment::Index(wanted), rest)) = self.0.split_first() else {
            return Ok(());
        };
        for _ in 0..*wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Probe(rest)).map(|_| ())
    }
}

/// Accepts nothing: every `visit_*` keeps serde's default, an error, raised on the probed node.
struct Here;

impl Visitor<'_> for Here {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PROBE_MARK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const FILE: &str = "atlas-backup-exporter.yml";
    const GROUP: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";

    /// Test YAML is written as raw strings starting on the line after `r"`: the first newline is dropped.
    fn yaml(text: &str) -> &str {
        text.strip_prefix('\n').unwrap_or(text)
    }

    fn ok(text: &str) -> Config {
        match parse(yaml(text), FILE) {
            Ok(config) => config,
            Err(error) => panic!("refused: {error}\n{text}"),
        }
    }

    fn error(text: &str) -> String {
        match parse(yaml(text), FILE) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(error) => error.to_string(),
        }
    }

    /// A file in the system's temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(content: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "atlas-backup-exporter-config-test-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, content).expect("write a temporary file");
            TempFile(path)
        }

        fn path(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn api_key(credentials: &Credentials) -> (&str, &str) {
        match credentials {
            Credentials::ApiKey {
                public_key,
                private_key,
            } => (public_key.expose_secret(), private_key.expose_secret()),
            other => panic!("expected an API key, got {other:?}"),
        }
    }

    fn service_account(credentials: &Credentials) -> (&str, &str) {
        match credentials {
            Credentials::ServiceAccount {
                client_id,
                client_secret,
            } => (client_id.expose_secret(), client_secret.expose_secret()),
            other => panic!("expected a service account, got {other:?}"),
        }
    }

    // --- valid configs ---------------------------------------------------------------------------------

    #[test]
    fn a_single_target_gets_every_default() {
        let config = ok(r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
");
        assert_eq!(config.atlas.base_url, "https://cloud.mongodb.com");
        assert_eq!(config.atlas.api_version, ApiVersion::V2);
        assert_eq!(config.atlas.request_timeout, Duration::from_secs(10));
        assert_eq!(config.atlas.max_concurrent_requests, 8);
        assert!(config.atlas.auth.is_none());
        assert_eq!(
            config.targets,
            vec![Target {
                group_id: GROUP.to_owned(),
                clusters: None,
                labels: vec![],
            }]
        );
        assert_eq!(
            config.export_jobs,
            ExportJobsConfig {
                max_age: Duration::from_secs(7 * 24 * 3600),
                max_pages: 100,
                max_per_cluster: 50,
            }
        );
        assert_eq!(
            config.collection,
            CollectionConfig {
                timeout: Duration::from_secs(30),
                timeout_offset: Duration::from_millis(500),
                cache_ttl: Duration::ZERO,
                on_metrics: true,
            }
        );
        assert_eq!(
            config.discovery,
            DiscoveryConfig {
                interval: Duration::from_secs(300),
                all_projects: false,
            }
        );
    }

    #[test]
    fn empty_sections_mean_defaults() {
        let config = ok(r"
atlas:
export_jobs: {}
collection:
discovery: {}
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
");
        assert_eq!(config.atlas.base_url, DEFAULT_BASE_URL);
        assert_eq!(config.export_jobs, ExportJobsConfig::default());
        assert_eq!(config.collection, CollectionConfig::default());
        assert_eq!(config.discovery, DiscoveryConfig::default());
    }

    #[test]
    fn a_full_config_is_read_as_written() {
        let config = ok(r"
# Every key, none at its default.
atlas:
  base_url: http://127.0.0.1:8080/atlas/
  api_version: v1
  request_timeout: 2s
  max_concurrent_requests: 32
  auth:
    api_key:
      public_key: abcdefgh
      private_key: 00000000-1111-2222-3333-444444444444
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - Cluster0
      - name: Cluster1
        export_job_ids: [605ccba3c1c7613f423e1585, 605ccba3c1c7613f423e1586]
      - name: analytics-2
    labels: {team: data, env: prod}
  - group_id: 0123456789abcdef01234567
export_jobs:
  max_age: 36h
  max_pages: 10
  max_per_cluster: 0
collection:
  timeout: 1m
  timeout_offset: 250ms
  cache_ttl: 15s
  on_metrics: false
discovery:
  interval: 0
  all_projects: true
");
        assert_eq!(config.atlas.base_url, "http://127.0.0.1:8080/atlas");
        assert_eq!(config.atlas.api_version, ApiVersion::V1);
        assert_eq!(config.atlas.request_timeout, Duration::from_secs(2));
        assert_eq!(config.atlas.max_concurrent_requests, 32);
        let auth = config.atlas.auth.as_ref().expect("auth");
        assert_eq!(
            api_key(auth),
            ("abcdefgh", "00000000-1111-2222-3333-444444444444")
        );
        assert_eq!(
            config.targets,
            vec![
                Target {
                    group_id: GROUP.to_owned(),
                    clusters: Some(vec![
                        ClusterSpec {
                            name: "Cluster0".to_owned(),
                            export_job_ids: None,
                        },
                        ClusterSpec {
                            name: "Cluster1".to_owned(),
                            export_job_ids: Some(vec![
                                "605ccba3c1c7613f423e1585".to_owned(),
                                "605ccba3c1c7613f423e1586".to_owned(),
                            ]),
                        },
                        ClusterSpec {
                            name: "analytics-2".to_owned(),
                            export_job_ids: None,
                        },
                    ]),
                    labels: vec![
                        ("env".to_owned(), "prod".to_owned()),
                        ("team".to_owned(), "data".to_owned()),
                    ],
                },
                Target {
                    group_id: "0123456789abcdef01234567".to_owned(),
                    clusters: None,
                    labels: vec![],
                },
            ]
        );
        assert_eq!(
            config.export_jobs,
            ExportJobsConfig {
                max_age: Duration::from_secs(36 * 3600),
                max_pages: 10,
                max_per_cluster: 0,
            }
        );
        assert_eq!(
            config.collection,
            CollectionConfig {
                timeout: Duration::from_secs(60),
                timeout_offset: Duration::from_millis(250),
                cache_ttl: Duration::from_secs(15),
                on_metrics: false,
            }
        );
        assert_eq!(
            config.discovery,
            DiscoveryConfig {
                interval: Duration::ZERO,
                all_projects: true,
            }
        );
    }

    #[test]
    fn a_service_account_is_read_from_files_trimmed() {
        let id = TempFile::new("mdb_sa_id_1234\n");
        let secret = TempFile::new("  mdb_sa_sk_5678 \n\n");
        let config = ok(&format!(
            r"
atlas:
  auth:
    service_account:
      client_id_file: {}
      client_secret_file: {}
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
",
            id.path(),
            secret.path()
        ));
        let auth = config.atlas.auth.as_ref().expect("auth");
        assert_eq!(service_account(auth), ("mdb_sa_id_1234", "mdb_sa_sk_5678"));
    }

    #[test]
    fn an_api_key_may_mix_inline_and_file() {
        let private = TempFile::new("private-from-file\n");
        let config = ok(&format!(
            r"
atlas:
  auth:
    api_key:
      public_key: public-inline
      private_key_file: {}
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
",
            private.path()
        ));
        let auth = config.atlas.auth.as_ref().expect("auth");
        assert_eq!(api_key(auth), ("public-inline", "private-from-file"));
    }

    #[test]
    fn load_reads_the_file_and_names_it_in_errors() {
        let file = TempFile::new("targets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n");
        let config = load(&file.0).expect("valid config");
        assert_eq!(config.targets[0].group_id, GROUP);

        let bad = TempFile::new("targets:\n  - group_id: 5f1a\n");
        assert_eq!(
            load(&bad.0).expect_err("bad group id").to_string(),
            format!(
                r#"{}: line 2: targets[0].group_id: "5f1a" is not a project id (24 hexadecimal digits)"#,
                bad.path()
            )
        );

        let missing = std::env::temp_dir().join("atlas-backup-exporter-no-such-config.yml");
        let os_error = std::fs::read_to_string(&missing).expect_err("missing file");
        assert_eq!(
            load(&missing).expect_err("missing file").to_string(),
            format!(
                "cannot read the config file {}: {os_error}",
                missing.display()
            )
        );
    }

    #[test]
    fn values_that_look_like_numbers_stay_text() {
        let config = ok(r"
targets:
  - group_id: 123456789012345678901234
    clusters: [0123]
    labels: {version_major: 1.50, flag: true}
");
        let target = &config.targets[0];
        assert_eq!(target.group_id, "123456789012345678901234");
        assert_eq!(target.clusters.as_ref().expect("clusters")[0].name, "0123");
        assert_eq!(
            target.labels,
            vec![
                ("flag".to_owned(), "true".to_owned()),
                ("version_major".to_owned(), "1.50".to_owned()),
            ]
        );
    }

    // --- the document as a whole -----------------------------------------------------------------------

    #[test]
    fn an_empty_file_is_refused() {
        for text in ["", "\n  \n", "# nothing but a comment\n", "---\n"] {
            assert_eq!(
                error(text),
                "atlas-backup-exporter.yml: the file is empty: it needs at least a targets list"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_a_mapping_is_refused() {
        assert_eq!(
            error("# comment\n- group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n"),
            "atlas-backup-exporter.yml: line 2: the file must be a mapping of keys such as atlas: and \
             targets:, not a list"
        );
        assert_eq!(
            error("targets\n"),
            "atlas-backup-exporter.yml: line 1: the file must be a mapping of keys such as atlas: and \
             targets:, not a single value"
        );
    }

    #[test]
    fn broken_yaml_is_refused_with_its_line() {
        assert_eq!(
            error(
                r"
targets: [
  {group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
"
            ),
            "atlas-backup-exporter.yml: line 3: not valid YAML: did not find expected ',' or '}', while \
             parsing a flow mapping at line 2 column 3"
        );
    }

    #[test]
    fn targets_must_be_present_and_not_empty() {
        assert_eq!(
            error("atlas:\n  api_version: v2\n"),
            "atlas-backup-exporter.yml: line 1: targets: is missing: list the Atlas projects to watch, each \
             with its group_id (or set discovery.all_projects: true)"
        );
        assert_eq!(
            error("atlas: {}\ntargets: []\n"),
            "atlas-backup-exporter.yml: line 2: targets: is empty: list at least one Atlas project (group_id)"
        );
        // Unless every project is discovered.
        let config = parse("discovery:\n  all_projects: true\n", "x.yml").unwrap();
        assert!(config.targets.is_empty() && config.discovery.all_projects);
    }

    // --- unknown keys and wrong types --------------------------------------------------------------------

    #[test]
    fn unknown_keys_are_named_with_the_allowed_ones() {
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
scrape_interval: 30s
"
            ),
            "atlas-backup-exporter.yml: line 3: scrape_interval: unknown key (allowed keys: atlas, targets, \
             export_jobs, collection, discovery)"
        );
        assert_eq!(
            error(
                r"
atlas:
  base_url: https://cloud.mongodb.com
  timeout: 10s
"
            ),
            "atlas-backup-exporter.yml: line 3: atlas.timeout: unknown key (allowed keys: base_url, \
             api_version, request_timeout, max_concurrent_requests, auth)"
        );
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - name: Cluster1
        job_ids: [605ccba3c1c7613f423e1585]
"
            ),
            "atlas-backup-exporter.yml: line 5: targets[0].clusters[0].job_ids: unknown key (allowed keys: \
             name, export_job_ids)"
        );
        assert_eq!(
            error(
                r"
atlas:
  auth:
    api_key:
      public_key: abc
      privat_key: def
"
            ),
            "atlas-backup-exporter.yml: line 5: atlas.auth.api_key.privat_key: unknown key (allowed keys: \
             public_key, public_key_file, private_key, private_key_file)"
        );
    }

    #[test]
    fn wrong_types_name_what_was_expected() {
        assert_eq!(
            error(
                r"
atlas:
  max_concurrent_requests: many
"
            ),
            r#"atlas-backup-exporter.yml: line 2: atlas.max_concurrent_requests: invalid type: string "many", expected a whole number of at least 1"#
        );
        assert_eq!(
            error(
                r"
collection:
  on_metrics: yes
"
            ),
            r#"atlas-backup-exporter.yml: line 2: collection.on_metrics: invalid type: string "yes", expected a boolean"#
        );
        assert_eq!(
            error(
                r"
targets:
  group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
"
            ),
            "atlas-backup-exporter.yml: line 2: targets: invalid type: map, expected a sequence"
        );
        assert_eq!(
            error(
                r"
targets:
  - 5f1a2b3c4d5e6f7a8b9c0d1e
"
            ),
            "atlas-backup-exporter.yml: line 2: targets[0]: expected a mapping (indented `key: value` \
             lines), found a string"
        );
        assert_eq!(
            error("atlas: https://cloud.mongodb.com\n"),
            "atlas-backup-exporter.yml: line 1: atlas: expected a mapping (indented `key: value` lines), \
             found a string"
        );
        assert_eq!(
            error(
                r"
targets:
  - group_id: [5f1a2b3c4d5e6f7a8b9c0d1e]
"
            ),
            "atlas-backup-exporter.yml: line 2: targets[0].group_id: invalid type: sequence, expected a \
             project id (24 hexadecimal digits)"
        );
    }

    #[test]
    fn a_key_set_twice_is_refused() {
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters: [Cluster0]
    group_id: 6f1a2b3c4d5e6f7a8b9c0d1e
"
            ),
            "atlas-backup-exporter.yml: line 2: targets[0].group_id: is set twice"
        );
    }

    #[test]
    fn zero_is_refused_where_it_makes_no_sense() {
        assert_eq!(
            error("atlas:\n  request_timeout: 0s\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.request_timeout: must be greater than 0, not "0s""#
        );
        assert_eq!(
            error("atlas:\n  max_concurrent_requests: 0\n"),
            "atlas-backup-exporter.yml: line 2: atlas.max_concurrent_requests: must be at least 1, not 0"
        );
        assert_eq!(
            error("collection:\n  timeout: 0\n"),
            r#"atlas-backup-exporter.yml: line 2: collection.timeout: must be greater than 0, not "0""#
        );
        assert_eq!(
            error("export_jobs:\n  max_pages: 0\n"),
            "atlas-backup-exporter.yml: line 2: export_jobs.max_pages: must be at least 1, not 0"
        );
        assert_eq!(
            error("export_jobs:\n  max_pages: -1\n"),
            "atlas-backup-exporter.yml: line 2: export_jobs.max_pages: invalid type: integer `-1`, expected \
             a whole number of at least 1"
        );
        assert_eq!(
            error("export_jobs:\n  max_pages: 4294967296\n"),
            "atlas-backup-exporter.yml: line 2: export_jobs.max_pages: 4294967296 is too large (at most \
             4294967295)"
        );
    }

    #[test]
    fn bad_durations_are_refused_with_their_key() {
        assert_eq!(
            error("export_jobs:\n  max_age: 7 days\n"),
            r#"atlas-backup-exporter.yml: line 2: export_jobs.max_age: "7 days" has an unknown unit " days" (use ms, s, m, h, d, w or y)"#
        );
        assert_eq!(
            error("collection:\n  cache_ttl: 30\n"),
            r#"atlas-backup-exporter.yml: line 2: collection.cache_ttl: "30" has no unit: write for example 30s or 30m"#
        );
        assert_eq!(
            error("discovery:\n  interval: -5m\n"),
            r#"atlas-backup-exporter.yml: line 2: discovery.interval: "-5m" is negative: a duration must be 0 or more"#
        );
    }

    // --- atlas ---------------------------------------------------------------------------------------------

    #[test]
    fn base_url_needs_an_http_scheme_and_a_host() {
        assert_eq!(
            error("atlas:\n  base_url: cloud.mongodb.com\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "cloud.mongodb.com" is not an http:// or https:// URL (for example https://cloud.mongodb.com)"#
        );
        assert_eq!(
            error("atlas:\n  base_url: ftp://cloud.mongodb.com\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "ftp://cloud.mongodb.com" is not an http:// or https:// URL (for example https://cloud.mongodb.com)"#
        );
        assert_eq!(
            error("atlas:\n  base_url: https:///api\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "https:///api" has no host"#
        );
        assert_eq!(
            error("atlas:\n  base_url: https://:443\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "https://:443" has no host"#
        );
        assert_eq!(
            error("atlas:\n  base_url: https://cloud.mongodb.com:https\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "https://cloud.mongodb.com:https" has an invalid port"#
        );
        assert_eq!(
            error("atlas:\n  base_url: https://cloud.mongodb.com?x=1\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "https://cloud.mongodb.com?x=1": a base URL has no spaces, query or fragment"#
        );
        assert_eq!(
            error("atlas:\n  base_url: https://user:hunter2@cloud.mongodb.com\n"),
            "atlas-backup-exporter.yml: line 2: atlas.base_url: must not hold credentials; put them under \
             atlas.auth"
        );
        assert_eq!(
            ok("atlas:\n  base_url: HTTPS://[::1]:8443//\ntargets: [{group_id: 5f1a2b3c4d5e6f7a8b9c0d1e}]\n")
                .atlas
                .base_url,
            "HTTPS://[::1]:8443"
        );
    }

    #[test]
    fn api_version_is_v1_or_v2() {
        assert_eq!(
            error("atlas:\n  api_version: 2\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.api_version: "2" is not an API version (v2 or v1)"#
        );
    }

    #[test]
    fn auth_needs_exactly_one_kind_of_credential() {
        assert_eq!(
            error(
                r"
atlas:
  auth:
    api_key: {public_key: a, private_key: b}
    service_account: {client_id: c, client_secret: d}
"
            ),
            "atlas-backup-exporter.yml: line 3: atlas.auth: both api_key and service_account are set; keep \
             one"
        );
        assert_eq!(
            error(
                r"
atlas:
  auth: {}
"
            ),
            "atlas-backup-exporter.yml: line 2: atlas.auth: set api_key or service_account (or remove auth \
             to use the environment)"
        );
    }

    #[test]
    fn each_secret_is_given_inline_or_by_file_not_both() {
        assert_eq!(
            error(
                r"
atlas:
  auth:
    api_key:
      public_key: abc
      private_key: def
      private_key_file: /run/secrets/atlas
targets: [{group_id: 5f1a2b3c4d5e6f7a8b9c0d1e}]
"
            ),
            "atlas-backup-exporter.yml: line 4: atlas.auth.api_key: both private_key and private_key_file \
             are set; keep one"
        );
        assert_eq!(
            error(
                r"
atlas:
  auth:
    service_account:
      client_secret: def
targets: [{group_id: 5f1a2b3c4d5e6f7a8b9c0d1e}]
"
            ),
            "atlas-backup-exporter.yml: line 4: atlas.auth.service_account: client_id is missing: set \
             client_id or client_id_file"
        );
    }

    #[test]
    fn an_unreadable_secret_file_names_the_path_and_the_os_error() {
        let missing = std::env::temp_dir().join("atlas-backup-exporter-no-such-secret");
        let os_error = std::fs::read_to_string(&missing).expect_err("missing file");
        assert_eq!(
            error(&format!(
                r"
atlas:
  auth:
    api_key:
      public_key: abc
      private_key_file: {}
targets: [{{group_id: 5f1a2b3c4d5e6f7a8b9c0d1e}}]
",
                missing.display()
            )),
            format!(
                "atlas-backup-exporter.yml: line 5: atlas.auth.api_key.private_key_file: cannot read {:?}: \
                 {os_error}",
                missing.display().to_string()
            )
        );
    }

    #[test]
    fn an_empty_secret_is_refused() {
        let blank = TempFile::new(" \n\n");
        assert_eq!(
            error(&format!(
                r"
atlas:
  auth:
    service_account:
      client_id: abc
      client_secret_file: {}
targets: [{{group_id: 5f1a2b3c4d5e6f7a8b9c0d1e}}]
",
                blank.path()
            )),
            format!(
                "atlas-backup-exporter.yml: line 5: atlas.auth.service_account.client_secret_file: {:?} is \
                 empty",
                blank.path()
            )
        );
        assert_eq!(
            error(
                r#"
atlas:
  auth:
    api_key:
      public_key: "   "
      private_key: def
"#
            ),
            "atlas-backup-exporter.yml: line 4: atlas.auth.api_key.public_key: is empty"
        );
        assert_eq!(
            error(
                r#"
atlas:
  auth:
    api_key:
      public_key: abc
      private_key_file: ""
"#
            ),
            "atlas-backup-exporter.yml: line 5: atlas.auth.api_key.private_key_file: is empty: give the path \
             of the file holding the secret"
        );
    }

    // --- targets -------------------------------------------------------------------------------------------

    #[test]
    fn group_id_must_be_24_hex_digits() {
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a
"
            ),
            r#"atlas-backup-exporter.yml: line 2: targets[0].group_id: "5f1a" is not a project id (24 hexadecimal digits)"#
        );
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1g
"
            ),
            r#"atlas-backup-exporter.yml: line 2: targets[0].group_id: "5f1a2b3c4d5e6f7a8b9c0d1g" is not a project id (24 hexadecimal digits)"#
        );
        let config = parse(
            "targets:\n  - group_id: 5F1A2B3C4D5E6F7A8B9C0D1E\n",
            "x.yml",
        )
        .unwrap();
        assert_eq!(config.targets[0].group_id, "5f1a2b3c4d5e6f7a8b9c0d1e");
        assert_eq!(
            error(
                r"
targets:
  - clusters: [Cluster0]
"
            ),
            "atlas-backup-exporter.yml: line 2: targets[0].group_id: required key is missing"
        );
    }

    #[test]
    fn the_same_project_twice_names_both_lines() {
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters: [Cluster0]
  - group_id: 6f1a2b3c4d5e6f7a8b9c0d1e
  - labels: {env: prod}
    group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
"
            ),
            "atlas-backup-exporter.yml: line 6: targets[2].group_id: project 5f1a2b3c4d5e6f7a8b9c0d1e is \
             already targets[0].group_id (line 2); merge the two targets"
        );
    }

    #[test]
    fn the_same_cluster_twice_in_a_target_names_both_lines() {
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - Cluster0
      - name: Cluster1
      - name: Cluster0
        export_job_ids: [605ccba3c1c7613f423e1585]
"
            ),
            r#"atlas-backup-exporter.yml: line 6: targets[0].clusters[2]: cluster "Cluster0" is listed twice: first at targets[0].clusters[0] (line 4)"#
        );
    }

    #[test]
    fn the_same_cluster_in_two_targets_is_fine() {
        let config = ok(r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters: [Cluster0]
  - group_id: 6f1a2b3c4d5e6f7a8b9c0d1e
    clusters: [Cluster0]
");
        assert_eq!(config.targets.len(), 2);
    }

    #[test]
    fn cluster_names_are_checked() {
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters: [Cluster_0]
"
            ),
            r#"atlas-backup-exporter.yml: line 3: targets[0].clusters[0]: "Cluster_0" is not a cluster name (ASCII letters, digits and '-', not starting with '-')"#
        );
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - name: -analytics
"
            ),
            r#"atlas-backup-exporter.yml: line 4: targets[0].clusters[0].name: "-analytics" is not a cluster name (ASCII letters, digits and '-', not starting with '-')"#
        );
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - 2024
"
            ),
            "atlas-backup-exporter.yml: line 4: targets[0].clusters[0]: 2024 reads as a number: write a \
             cluster name made of digits in quotes"
        );
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - export_job_ids: [605ccba3c1c7613f423e1585]
"
            ),
            "atlas-backup-exporter.yml: line 4: targets[0].clusters[0].name: required key is missing"
        );
    }

    #[test]
    fn an_empty_cluster_list_is_refused() {
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters: []
"
            ),
            "atlas-backup-exporter.yml: line 3: targets[0].clusters: is empty: list clusters, or remove \
             clusters to watch every cluster of the project"
        );
    }

    #[test]
    fn export_job_ids_must_be_a_non_empty_list_of_distinct_ids() {
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - name: Cluster1
        export_job_ids: []
"
            ),
            "atlas-backup-exporter.yml: line 5: targets[0].clusters[0].export_job_ids: is empty: list job \
             ids, or write the cluster as a plain name to watch all its jobs"
        );
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - name: Cluster1
        export_job_ids:
          - 605ccba3c1c7613f423e1585
          - 605ccba3c1c7613f423e1585
"
            ),
            r#"atlas-backup-exporter.yml: line 7: targets[0].clusters[0].export_job_ids[1]: export job "605ccba3c1c7613f423e1585" is listed twice"#
        );
        assert_eq!(
            error(
                r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - name: Cluster1
        export_job_ids: [..]
"
            ),
            r#"atlas-backup-exporter.yml: line 5: targets[0].clusters[0].export_job_ids[0]: ".." is not an export job id (up to 256 characters, no blanks or control characters, not . or ..)"#
        );
    }

    #[test]
    fn static_labels_must_be_valid_and_not_the_exporters_own() {
        let label_error = |name: &str| {
            error(&format!(
                "targets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n    labels:\n      env: prod\n      {name}: x\n"
            ))
        };
        assert_eq!(
            label_error("team-name"),
            r#"atlas-backup-exporter.yml: line 5: targets[0].labels: "team-name" is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"#
        );
        assert_eq!(
            label_error("1st"),
            r#"atlas-backup-exporter.yml: line 5: targets[0].labels: "1st" is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"#
        );
        assert_eq!(
            label_error("__meta"),
            r#"atlas-backup-exporter.yml: line 5: targets[0].labels: "__meta": label names starting with __ are reserved for Prometheus"#
        );
        assert_eq!(
            label_error("env"),
            r#"atlas-backup-exporter.yml: line 5: targets[0].labels: label "env" is set twice"#
        );
        for name in EXPORTER_LABELS {
            assert_eq!(
                label_error(name),
                format!(
                    "atlas-backup-exporter.yml: line 5: targets[0].labels: {name:?} is a label the exporter \
                     or Prometheus sets itself; choose another name"
                )
            );
        }
        assert_eq!(
            error("targets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n    labels: {env: \"\"}\n"),
            "atlas-backup-exporter.yml: line 3: targets[0].labels.env: label value is empty"
        );
    }

    // --- durations -----------------------------------------------------------------------------------------

    #[test]
    fn durations_read_like_prometheus() {
        let cases: [(&str, u64); 13] = [
            ("0", 0),
            ("0s", 0),
            ("500ms", 500),
            ("30s", 30 * SECOND),
            ("10m", 10 * MINUTE),
            ("36h", 36 * HOUR),
            ("7d", 7 * DAY),
            ("1w", 7 * DAY),
            ("1y", 365 * DAY),
            ("1h30m", 90 * MINUTE),
            ("1m30s", 90 * SECOND),
            ("2d12h", 60 * HOUR),
            (
                "1y2w3d4h5m6s7ms",
                365 * DAY + 17 * DAY + 4 * HOUR + 5 * MINUTE + 6 * SECOND + 7,
            ),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_durations_say_why() {
        let cases = [
            ("", "empty duration: write for example 30s, 5m or 1h30m"),
            ("-1s", r#""-1s" is negative: a duration must be 0 or more"#),
            ("10", r#""10" has no unit: write for example 10s or 10m"#),
            (
                "5x",
                r#""5x" has an unknown unit "x" (use ms, s, m, h, d, w or y)"#,
            ),
            (
                "1.5h",
                r#""1.5h" has a fraction: use whole numbers of smaller units (1h30m rather than 1.5h)"#,
            ),
            (
                "s",
                r#""s" is not a duration: write for example 30s, 5m or 1h30m"#,
            ),
            (
                "30m1h",
                r#""30m1h": units must go from largest to smallest, each at most once (for example 1h30m)"#,
            ),
            (
                "1m1m",
                r#""1m1m": units must go from largest to smallest, each at most once (for example 1h30m)"#,
            ),
            (
                "99999999999999999999s",
                r#""99999999999999999999s" is too large"#,
            ),
            ("999999999999y", r#""999999999999y" is too large"#),
        ];
        for (text, message) in cases {
            assert_eq!(parse_duration(text), Err(message.to_owned()), "{text}");
        }
    }

    #[test]
    fn durations_format_with_days_as_the_largest_unit() {
        let cases: [(u64, &str); 8] = [
            (0, "0s"),
            (500, "500ms"),
            (90 * SECOND, "1m30s"),
            (5 * MINUTE, "5m"),
            (36 * HOUR, "1d12h"),
            (7 * DAY, "7d"),
            (365 * DAY, "365d"),
            (DAY + HOUR + MINUTE + SECOND + 1, "1d1h1m1s1ms"),
        ];
        for (millis, text) in cases {
            assert_eq!(format_duration(Duration::from_millis(millis)), text);
        }
        assert_eq!(format_duration(Duration::from_micros(1500)), "1ms");
    }

    #[test]
    fn formatted_durations_parse_back() {
        for millis in [
            0,
            1,
            999,
            1000,
            61_001,
            3_600_000,
            86_399_999,
            7 * DAY,
            400 * DAY + 1,
        ] {
            let duration = Duration::from_millis(millis);
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
        for text in ["0s", "500ms", "1m30s", "7d", "1d12h", "3d4h5m6s7ms"] {
            let duration = parse_duration(text).expect("valid");
            assert_eq!(format_duration(duration), text);
        }
    }

    // --- credentials ---------------------------------------------------------------------------------------

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
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

    // --- secrets -------------------------------------------------------------------------------------------

    #[test]
    fn secrets_never_show_in_debug_describe_or_errors() {
        let secrets = [
            "PUBLIC-7f3a",
            "PRIVATE-91bc",
            "CLIENT-ID-44d2",
            "CLIENT-SECRET-e5f6",
        ];
        let config = ok(r"
atlas:
  auth:
    api_key:
      public_key: PUBLIC-7f3a
      private_key: PRIVATE-91bc
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
");
        let account = Credentials::ServiceAccount {
            client_id: SecretString::from("CLIENT-ID-44d2"),
            client_secret: SecretString::from("CLIENT-SECRET-e5f6"),
        };
        let resolved = resolve_credentials(
            None,
            env(&[
                ("MONGODB_ATLAS_CLIENT_ID", "CLIENT-ID-44d2"),
                ("MONGODB_ATLAS_CLIENT_SECRET", "CLIENT-SECRET-e5f6"),
            ]),
        )
        .expect("resolved");
        let mut texts = vec![
            format!("{config:?}"),
            config.describe(),
            format!("{account:?}"),
            format!("{resolved:?}"),
        ];
        assert_eq!(format!("{account:?}"), "ServiceAccount { .. }");
        let bad_configs = [
            // A secret where a mapping belongs.
            "atlas:\n  auth:\n    api_key: PRIVATE-91bc\n",
            "atlas:\n  auth: PRIVATE-91bc\n",
            // Secrets beside a mistake.
            "atlas:\n  auth:\n    api_key: {public_key: PUBLIC-7f3a, private_key: PRIVATE-91bc, private_key_file: /x}\n",
            "atlas:\n  auth:\n    service_account: {client_id: CLIENT-ID-44d2}\n",
            "atlas:\n  auth:\n    api_key: {public_key: PUBLIC-7f3a}\n    service_account: {client_secret: CLIENT-SECRET-e5f6}\n",
            // Secrets of the wrong type.
            "atlas:\n  auth:\n    api_key: {public_key: [PUBLIC-7f3a], private_key: x}\n",
            "atlas:\n  auth:\n    api_key: {public_key: {PUBLIC-7f3a: 1}, private_key: x}\n",
        ];
        for text in bad_configs {
            let error = parse(text, FILE).expect_err(text);
            texts.push(error.to_string());
            texts.push(format!("{error:?}"));
        }
        for text in &texts {
            for secret in secrets {
                assert!(!text.contains(secret), "{secret} shows in: {text}");
            }
        }
    }

    // --- describe ------------------------------------------------------------------------------------------

    #[test]
    fn describe_summarizes_what_would_be_scraped() {
        let config = ok(r"
atlas:
  auth:
    service_account: {client_id: mdb_sa_id_x, client_secret: mdb_sa_sk_y}
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - Cluster0
      - name: Cluster1
        export_job_ids: [605ccba3c1c7613f423e1585, 605ccba3c1c7613f423e1586]
    labels: {team: data, env: prod}
  - group_id: 0123456789abcdef01234567
collection:
  cache_ttl: 15s
");
        assert_eq!(
            config.describe(),
            "\
Atlas API: https://cloud.mongodb.com (v2), request timeout 10s, at most 8 requests at once
Credentials: service account (OAuth) from the config file
Targets: 2
  project 5f1a2b3c4d5e6f7a8b9c0d1e
    cluster Cluster0: all export jobs
    cluster Cluster1: export jobs 605ccba3c1c7613f423e1585, 605ccba3c1c7613f423e1586
    labels: env=\"prod\", team=\"data\"
  project 0123456789abcdef01234567
    clusters: all clusters, discovered every 5m
Per-job series: unfinished jobs, the newest job, listed job ids, and jobs created within 7d (at most 50 per \
cluster); at most 100 pages per cluster
Collection: deadline is Prometheus's scrape timeout minus 500ms, or 30s without it; results reused for 15s; \
/metrics serves the export jobs
"
        );
    }

    #[test]
    fn describe_spells_out_zero_meanings() {
        let config = ok(r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
export_jobs: {max_age: 0, max_per_cluster: 0}
collection: {on_metrics: false}
discovery: {interval: 0, all_projects: true}
");
        let description = config.describe();
        for expected in [
            "Credentials: from the environment: MONGODB_ATLAS_CLIENT_ID/MONGODB_ATLAS_CLIENT_SECRET (service \
             account) or MONGODB_ATLAS_PUBLIC_API_KEY/MONGODB_ATLAS_PRIVATE_API_KEY (API key)\n",
            "    clusters: all clusters, discovered on every scrape\n",
            "  and every cluster of every project the credential can see, discovered on every scrape\n",
            "and every job (no age limit) (no cap per cluster)",
            "; no cache; /metrics serves only the exporter's own metrics (export jobs on /probe)\n",
        ] {
            assert!(
                description.contains(expected),
                "{expected:?} not in:\n{description}"
            );
        }
    }

    // --- helpers -------------------------------------------------------------------------------------------

    #[test]
    fn line_of_finds_nodes_in_block_and_flow_style() {
        let text = "# comment\natlas:\n  auth:\n    api_key: {public_key: a,\n      private_key: b}\ntargets:\n  - group_id: x\n  - {group_id: y}\n";
        let path = |segments: &[Segment]| segments.to_vec();
        let key = |k: &str| Segment::Key(k.to_owned());
        assert_eq!(line_of(text, &[]), Some(2));
        assert_eq!(line_of(text, &path(&[key("atlas"), key("auth")])), Some(4));
        assert_eq!(
            line_of(
                text,
                &path(&[
                    key("atlas"),
                    key("auth"),
                    key("api_key"),
                    key("private_key")
                ])
            ),
            Some(5)
        );
        assert_eq!(
            line_of(
                text,
                &path(&[key("targets"), Segment::Index(1), key("group_id")])
            ),
            Some(8)
        );
        assert_eq!(
            line_of(text, &path(&[key("targets"), Segment::Index(2)])),
            None
        );
        assert_eq!(line_of(text, &path(&[key("discovery")])), None);
    }
}
