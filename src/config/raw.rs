//! The file as written: the `Raw*` structs serde fills, the rules each scalar passes on the way in, and
//! the check that the document is a mapping at all.
//!
//! Each rule runs while yaml_serde is on the node, so its error gets the line and key path.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::duration::parse_duration;
use super::error::ConfigError;
use super::settings::{ApiVersion, TAG_LABEL_PREFIX};
use super::size::{format_size, parse_size};
use crate::yaml::{Checked, KeyPath, Locator, Mapping, Rule, split_yaml_error};

pub(super) struct GroupIdRule;
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

pub(super) struct ClusterNameRule;
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

pub(super) struct JobIdRule;
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

pub(super) struct LabelNameRule;
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
        if crate::labels::is_reserved(text) {
            return Err(format!(
                "{text:?} is a label the exporter or Prometheus sets itself; choose another name"
            ));
        }
        if text.starts_with(TAG_LABEL_PREFIX) {
            return Err(format!(
                "{text:?}: labels starting with {TAG_LABEL_PREFIX} are the Atlas cluster tags of \
                 atlas_backup_export_cluster_tags; choose another name"
            ));
        }
        Ok(text.to_owned())
    }
}

/// An Atlas resource tag key: Atlas allows 1 to 255 characters.
pub(super) struct TagKeyRule;
impl Rule for TagKeyRule {
    type Output = String;
    const EXPECTING: &'static str = "an Atlas tag key";
    fn check(text: &str) -> Result<String, String> {
        let length = text.chars().count();
        if length == 0 || length > 255 || text.chars().any(char::is_control) {
            return Err(format!(
                "{text:?} is not an Atlas tag key (1 to 255 characters, no control characters)"
            ));
        }
        Ok(text.to_owned())
    }
}

pub(super) struct LabelValueRule;
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

pub(super) struct DurationRule;
impl Rule for DurationRule {
    type Output = Duration;
    const EXPECTING: &'static str = "a duration such as 30s, 5m or 1h30m";
    fn check(text: &str) -> Result<Duration, String> {
        parse_duration(text)
    }
}

/// `collection.interval`: zero (collect on each scrape), or long enough that collections do not
/// follow one another back to back for nothing.
pub(super) struct IntervalRule;
impl Rule for IntervalRule {
    type Output = Duration;
    const EXPECTING: &'static str = "0, or a duration of at least 1s such as 1m";
    fn check(text: &str) -> Result<Duration, String> {
        match parse_duration(text)? {
            interval if interval.is_zero() || interval >= MIN_INTERVAL => Ok(interval),
            _ => Err(format!(
                "must be 0 (collect on each scrape) or at least 1s, not {text:?}"
            )),
        }
    }
}

/// The shortest `collection.interval` other than zero.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A duration where zero would mean "give up at once".
pub(super) struct PositiveDurationRule;
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

/// The largest `atlas.max_response_size`: a full page of 500 jobs is about 300 KiB, and a bound
/// much past what memory can hold would only move the failure from the config to a scrape.
pub(super) const MAX_RESPONSE_SIZE_BOUND: u64 = 1 << 30;

/// A response size in bytes: zero would refuse every answer, and more than
/// [`MAX_RESPONSE_SIZE_BOUND`] would let one answer take the process's memory.
pub(super) struct ResponseSizeRule;
impl Rule for ResponseSizeRule {
    type Output = u64;
    const EXPECTING: &'static str = "a size such as 16MiB";
    fn check(text: &str) -> Result<u64, String> {
        match parse_size(text)? {
            0 => Err(format!("must be greater than 0, not {text:?}")),
            size if size > MAX_RESPONSE_SIZE_BOUND => Err(format!(
                "must be at most {}, not {text:?}",
                format_size(MAX_RESPONSE_SIZE_BOUND)
            )),
            size => Ok(size),
        }
    }
}

pub(super) struct BaseUrlRule;
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
    // The url crate skips extra slashes after a special scheme ("https:///api" is host "api"
    // to it), so an empty authority is caught on the text first.
    if authority.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    let url = url::Url::parse(text).map_err(|error| match error {
        url::ParseError::EmptyHost => format!("{text:?} has no host"),
        url::ParseError::InvalidPort => format!("{text:?} has an invalid port"),
        other => format!("{text:?} is not a valid URL: {other}"),
    })?;
    if url.host().is_none() {
        return Err(format!("{text:?} has no host"));
    }
    if url.port() == Some(0) {
        return Err(format!("{text:?} has an invalid port"));
    }
    Ok(())
}

pub(super) struct ApiVersionRule;
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
pub(super) struct SecretRule;
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

pub(super) struct FilePathRule;
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
pub(super) struct AtLeast<const MIN: u32>(pub(super) u32);

impl<'de, const MIN: u32> Deserialize<'de> for AtLeast<MIN> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AtLeastVisitor<const MIN: u32>;
        impl<const MIN: u32> Visitor<'_> for AtLeastVisitor<MIN> {
            type Value = AtLeast<MIN>;
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
                Ok(AtLeast(value))
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
        deserializer.deserialize_u64(AtLeastVisitor::<MIN>)
    }
}

impl<'de> Deserialize<'de> for RawCluster {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawClusterVisitor;
        impl<'de> Visitor<'de> for RawClusterVisitor {
            type Value = RawCluster;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a cluster name, or a mapping with name, export_job_ids or expect_export_every",
                )
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                let name = ClusterNameRule::check(text).map_err(E::custom)?;
                Ok(RawCluster {
                    name: Checked(name),
                    export_job_ids: None,
                    expect_export_every: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                // The derived (inherent) function, which reads the mapping form.
                RawCluster::deserialize(de::value::MapAccessDeserializer::new(map))
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
        deserializer.deserialize_any(RawClusterVisitor)
    }
}

/// Static labels, in name order. Duplicate names are refused (YAML would silently keep the last).
pub(super) struct Labels(pub(super) BTreeMap<String, String>);

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) atlas: Option<Mapping<RawAtlas>>,
    pub(super) targets: Option<Vec<Mapping<RawTarget>>>,
    pub(super) export_jobs: Option<Mapping<RawExportJobs>>,
    pub(super) collection: Option<Mapping<RawCollection>>,
    pub(super) discovery: Option<Mapping<RawDiscovery>>,
    pub(super) metadata: Option<Mapping<RawMetadata>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAtlas {
    pub(super) base_url: Option<Checked<BaseUrlRule>>,
    pub(super) api_version: Option<Checked<ApiVersionRule>>,
    pub(super) request_timeout: Option<Checked<PositiveDurationRule>>,
    pub(super) max_concurrent_requests: Option<AtLeast<1>>,
    pub(super) max_response_size: Option<Checked<ResponseSizeRule>>,
    pub(super) auth: Option<Mapping<RawAuth>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) api_key: Option<Mapping<RawApiKey>>,
    pub(super) service_account: Option<Mapping<RawServiceAccount>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApiKey {
    pub(super) public_key: Option<Checked<SecretRule>>,
    pub(super) public_key_file: Option<Checked<FilePathRule>>,
    pub(super) private_key: Option<Checked<SecretRule>>,
    pub(super) private_key_file: Option<Checked<FilePathRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServiceAccount {
    pub(super) client_id: Option<Checked<SecretRule>>,
    pub(super) client_id_file: Option<Checked<FilePathRule>>,
    pub(super) client_secret: Option<Checked<SecretRule>>,
    pub(super) client_secret_file: Option<Checked<FilePathRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) group_id: Checked<GroupIdRule>,
    pub(super) clusters: Option<Vec<RawCluster>>,
    pub(super) labels: Option<Labels>,
    pub(super) expect_export_every: Option<Checked<DurationRule>>,
}

/// One entry of `clusters`: a plain name (`Cluster0`), or a mapping with `name` and
/// `export_job_ids` or `expect_export_every`.
///
/// The derive reads the mapping form; `remote = "Self"` makes it an inherent function rather than the
/// `Deserialize` impl, which is written by hand above to take the plain name too.
#[derive(Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) name: Checked<ClusterNameRule>,
    pub(super) export_job_ids: Option<Vec<Checked<JobIdRule>>>,
    pub(super) expect_export_every: Option<Checked<DurationRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExportJobs {
    pub(super) max_age: Option<Checked<DurationRule>>,
    pub(super) max_pages: Option<AtLeast<1>>,
    pub(super) max_per_cluster: Option<AtLeast<0>>,
    pub(super) expect_export_every: Option<Checked<DurationRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCollection {
    pub(super) timeout: Option<Checked<PositiveDurationRule>>,
    pub(super) timeout_offset: Option<Checked<DurationRule>>,
    pub(super) cache_ttl: Option<Checked<DurationRule>>,
    pub(super) on_metrics: Option<bool>,
    pub(super) interval: Option<Checked<IntervalRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDiscovery {
    pub(super) interval: Option<Checked<DurationRule>>,
    pub(super) all_projects: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetadata {
    pub(super) refresh_interval: Option<Checked<PositiveDurationRule>>,
    pub(super) projects: Option<bool>,
    pub(super) clusters: Option<bool>,
    pub(super) buckets: Option<bool>,
    pub(super) schedules: Option<bool>,
    pub(super) snapshots: Option<bool>,
    pub(super) cluster_tags: Option<Vec<Checked<TagKeyRule>>>,
}

/// Refuses a document that is not YAML, empty, or not a mapping before the typed pass, whose messages for
/// those cases ("missing field", "expected struct") would not help.
pub(super) fn check_document_root(text: &str, at: &Locator) -> Result<(), ConfigError> {
    let root =
        DocumentRoot::deserialize(serde_yaml::Deserializer::from_str(text)).map_err(|error| {
            // This pass accepts any document, so what fails here is the YAML syntax itself.
            let (line, message) = split_yaml_error(&error);
            ConfigError::Invalid {
                origin: at.origin().to_owned(),
                line,
                message: format!("not valid YAML: {message}"),
            }
        })?;
    let found = match root {
        DocumentRoot::Mapping => return Ok(()),
        DocumentRoot::Empty => {
            return Err(ConfigError::Invalid {
                origin: at.origin().to_owned(),
                line: None,
                message: "the file is empty: it needs at least a targets list".to_owned(),
            });
        }
        DocumentRoot::Other(found) => found,
    };
    Err(at.error(
        &KeyPath::root(),
        format_args!("the file must be a mapping of keys such as atlas: and targets:, not {found}"),
    ))
}

/// What the top of the document is. Reading it checks the syntax of the whole document, and nothing else:
/// duplicate keys are left for the typed pass, which blames them on the right key.
enum DocumentRoot {
    Mapping,
    Empty,
    Other(&'static str),
}

impl<'de> Deserialize<'de> for DocumentRoot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DocumentRootVisitor;
        impl<'de> Visitor<'de> for DocumentRootVisitor {
            type Value = DocumentRoot;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML document")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DocumentRoot, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(DocumentRoot::Mapping)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DocumentRoot, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(DocumentRoot::Other("a list"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<DocumentRoot, E> {
                Ok(DocumentRoot::Empty)
            }
            fn visit_none<E: de::Error>(self) -> Result<DocumentRoot, E> {
                Ok(DocumentRoot::Empty)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<DocumentRoot, E> {
                Ok(DocumentRoot::Other("a single value"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<DocumentRoot, E> {
                Ok(DocumentRoot::Other("a single value"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<DocumentRoot, E> {
                Ok(DocumentRoot::Other("a single value"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<DocumentRoot, E> {
                Ok(DocumentRoot::Other("a single value"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<DocumentRoot, E> {
                Ok(DocumentRoot::Other("a single value"))
            }
            fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<DocumentRoot, A::Error> {
                Ok(DocumentRoot::Other("a tagged value"))
            }
        }
        deserializer.deserialize_any(DocumentRootVisitor)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::config::tests::{error, ok};

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
             export_jobs, collection, discovery, metadata)"
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
             api_version, request_timeout, max_concurrent_requests, max_response_size, auth)"
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
             name, export_job_ids, expect_export_every)"
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
    fn max_response_size_is_at_most_1gib() {
        assert_eq!(
            error("atlas:\n  max_response_size: 1024GiB\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.max_response_size: must be at most 1GiB, not "1024GiB""#
        );
        assert_eq!(
            error("atlas:\n  max_response_size: 1073741825\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.max_response_size: must be at most 1GiB, not "1073741825""#
        );
        let config = ok(
            "atlas:\n  max_response_size: 1GiB\ntargets: [{group_id: 5f1a2b3c4d5e6f7a8b9c0d1e}]\n",
        );
        assert_eq!(config.atlas.max_response_size, 1 << 30);
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
            error("atlas:\n  max_response_size: 0KiB\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.max_response_size: must be greater than 0, not "0KiB""#
        );
        assert_eq!(
            error("atlas:\n  max_response_size: 16 megabytes\n"),
            "atlas-backup-exporter.yml: line 2: atlas.max_response_size: \"16 megabytes\" has an unknown unit \
             \"megabytes\": use B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024)"
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
            error("atlas:\n  base_url: https://cloud%zz.mongodb.com\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "https://cloud%zz.mongodb.com" is not a valid URL: invalid international domain name"#
        );
        assert_eq!(
            error("atlas:\n  base_url: https://cloud.mongodb.com:0\n"),
            r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "https://cloud.mongodb.com:0" has an invalid port"#
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
        assert!(
            crate::labels::is_reserved("reason"),
            "unwatched_clusters uses it"
        );
        for name in crate::labels::reserved() {
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
}
