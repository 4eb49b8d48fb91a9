//! Reading YAML so that every error says file, line and key: shared by the config file and the
//! `--web.config.file`.
//!
//! Scalars check themselves through a [`Rule`] while yaml_serde stands on them ([`Checked`]); mappings
//! refuse a scalar in their place without quoting it ([`Section`]); checks that run after deserializing
//! blame a [`KeyPath`] through a [`Locator`], which finds the line of that key in the document.

use std::fmt::{self, Display};
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::ConfigError;

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
pub(super) fn split_yaml_error(error: &serde_yaml::Error) -> (Option<usize>, String) {
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
    pub(super) fn line_note(&self, path: &KeyPath) -> String {
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

    pub(super) fn index(&self, index: usize) -> Self {
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
