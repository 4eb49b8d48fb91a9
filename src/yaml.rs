//! Reading YAML so that every error says file, line and key: shared by the config file and the
//! `--web.config.file`.
//!
//! Scalars check themselves through a [`Rule`] while yaml_serde stands on them ([`Checked`]); mappings
//! refuse a scalar in their place without quoting it ([`Mapping`]); checks that run after deserializing
//! blame a [`KeyPath`] through a [`Locator`], which finds the lines of the document's nodes once, on the
//! first such error.
//!
//! Hand-written because no maintained crate gives the same errors: `serde_path_to_error` knows the key
//! path of a failed value but not its line, and yaml_serde exposes positions only inside its own errors, so
//! a check that runs after deserializing (the same project twice) could name neither line.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt::{self, Display};
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

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

/// A YAML mapping read into the derived struct `T`, and nothing else. Without this wrapper a scalar in its
/// place would be quoted in the message ("invalid type: string ...": unwelcome where it may be a secret) next to a Rust type name.
pub(crate) struct Mapping<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Mapping<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MappingVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for MappingVisitor<T> {
            type Value = Mapping<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Mapping)
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
        deserializer.deserialize_any(MappingVisitor(PhantomData))
    }
}

fn not_a_mapping<E: de::Error>(found: &str) -> E {
    E::custom(format_args!(
        "expected a mapping (indented `key: value` lines), found {found}"
    ))
}

/// A mistake in a YAML document, located: the file as the user named it, the line when it is
/// known, and what is wrong, starting with the key path when there is one. Each document's own
/// error type takes it in (`ConfigError::Invalid`).
#[derive(Debug)]
pub struct Invalid {
    pub origin: String,
    pub line: Option<usize>,
    pub message: String,
}

impl Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}: line {line}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

/// Rewrites a yaml_serde error as `FILE: line N: KEY: what is wrong`.
pub(crate) fn yaml_error<E: From<Invalid>>(error: serde_yaml::Error, origin: &str) -> E {
    let (line, message) = split_yaml_error(&error);
    E::from(Invalid {
        origin: origin.to_owned(),
        line,
        message: humanize_serde_message(&message),
    })
}

/// yaml_serde writes `KEY: message at line N column M`: this keeps the key path and the message, and
/// returns the line apart so it can go in front.
pub(crate) fn split_yaml_error(error: &serde_yaml::Error) -> (Option<usize>, String) {
    let location = error.location();
    let mut text = error.to_string();
    if let Some(location) = &location {
        let position = format!(" at line {} column {}", location.line(), location.column());
        text = text.replacen(&position, "", 1);
    }
    (location.map(|location| location.line()), text)
}

/// serde's derive messages about keys, and what users read instead. They are found by their English
/// wording, so `serde_messages_about_keys_are_rewritten` pins every row: if a serde upgrade changes the
/// wording, that test fails rather than users silently getting serde's text.
const SERDE_KEY_MESSAGES: [(&str, &str); 3] = [
    ("unknown field `", "unknown key"),
    ("missing field `", "required key is missing"),
    ("duplicate field `", "is set twice"),
];

/// serde's derive says "unknown field `x`, expected one of `a`, `b`" and "missing field `x`" with the
/// mapping's path in front; a user thinks in keys, so the key joins the path.
fn humanize_serde_message(text: &str) -> String {
    for (pattern, rewrite) in SERDE_KEY_MESSAGES {
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
    text: &'a str,
    origin: &'a str,
    /// Found on the first error that needs a line, then kept for the rest of the document.
    lines: OnceCell<NodeLines>,
}

impl<'a> Locator<'a> {
    /// `origin` names the document in messages (usually its file name).
    pub(crate) fn new(text: &'a str, origin: &'a str) -> Self {
        Locator {
            text,
            origin,
            lines: OnceCell::new(),
        }
    }

    /// The document's name in messages.
    pub(crate) fn origin(&self) -> &str {
        self.origin
    }

    fn lines(&self) -> &NodeLines {
        self.lines.get_or_init(|| NodeLines::of(self.text))
    }

    /// An error blamed on `path`, at its line, or at the line of its nearest ancestor present in the file
    /// (a missing key is blamed on the mapping that lacks it).
    pub(crate) fn error<E: From<Invalid>>(&self, path: &KeyPath, message: impl Display) -> E {
        let lines = self.lines();
        let line = (0..=path.0.len())
            .rev()
            .find_map(|len| lines.line(&path.0[..len]));
        let message = if path.0.is_empty() {
            message.to_string()
        } else {
            format!("{path}: {message}")
        };
        E::from(Invalid {
            origin: self.origin.to_owned(),
            line,
            message,
        })
    }

    /// " (line N)", for naming a second place in a message.
    pub(crate) fn line_note(&self, path: &KeyPath) -> String {
        self.lines()
            .line(&path.0)
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default()
    }
}

/// A key path in yaml_serde's notation: `targets[0].clusters[1].name`.
#[derive(Clone)]
pub(crate) struct KeyPath(Vec<Segment>);

#[derive(Clone, PartialEq, Eq, Hash)]
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

    pub(crate) fn index(&self, index: usize) -> Self {
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

/// The line of every node of one document, found in a single pass.
///
/// yaml_serde tells positions only in errors. So the pass walks the whole document and, at each scalar,
/// fails on purpose and catches its own error straight away: the error carries the scalar's line, and the
/// scalar is consumed, so the walk goes on. A mapping or a list is where its first entry is (libyaml
/// starts a block mapping at its first key); an empty one is where the key that names it is.
struct NodeLines(HashMap<Vec<Segment>, usize>);

impl NodeLines {
    fn of(text: &str) -> Self {
        let mut lines = HashMap::new();
        let walk = NodeWalk {
            path: Vec::new(),
            lines: &mut lines,
        };
        // A document the walk cannot read to the end (a mapping used as a key, say) keeps the lines found
        // before that point; the others go without.
        let _ = walk.deserialize(serde_yaml::Deserializer::from_str(text));
        NodeLines(lines)
    }

    /// The line of the node at `path`, or `None` if the document has no such node.
    fn line(&self, path: &[Segment]) -> Option<usize> {
        self.0.get(path).copied()
    }
}

/// Marks the errors [`NodeLines`] raises on purpose, to tell them from any other.
const POSITION_MARK: &str = "\u{1}node position";

/// The line in an error raised with [`POSITION_MARK`]: yaml_serde appends " at line N column M", except
/// for the very first character of the document (line 1, column 1).
fn marked_line(error: &impl Display) -> Option<usize> {
    let text = error.to_string();
    let after = &text[text.find(POSITION_MARK)? + POSITION_MARK.len()..];
    if after.is_empty() {
        return Some(1);
    }
    after
        .strip_prefix(" at line ")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// Records the line of the node it is handed, and of every node inside, under their key paths. Its value
/// is the node's line, if the node has one of its own.
struct NodeWalk<'a> {
    path: Vec<Segment>,
    lines: &'a mut HashMap<Vec<Segment>, usize>,
}

impl<'de> DeserializeSeed<'de> for NodeWalk<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        let visitor = NodeVisitor {
            path: &self.path,
            lines: &mut *self.lines,
        };
        let line = match deserializer.deserialize_any(visitor) {
            Ok(first_entry_line) => first_entry_line,
            Err(error) => match marked_line(&error) {
                Some(line) => Some(line),
                None => return Err(error),
            },
        };
        if let Some(line) = line {
            // The first of two equal keys keeps its line, as the typed pass blames the second one.
            self.lines.entry(self.path).or_insert(line);
        }
        Ok(line)
    }
}

struct NodeVisitor<'a> {
    path: &'a [Segment],
    lines: &'a mut HashMap<Vec<Segment>, usize>,
}

impl NodeVisitor<'_> {
    fn child(&mut self, segment: Segment) -> NodeWalk<'_> {
        let mut path = self.path.to_vec();
        path.push(segment);
        NodeWalk {
            path,
            lines: &mut *self.lines,
        }
    }
}

impl<'de> Visitor<'de> for NodeVisitor<'_> {
    type Value = Option<usize>;

    /// serde's default for every scalar (and null) is an "invalid type" error that ends with
    /// this: so each scalar fails on purpose, marked, without a method of its own.
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(POSITION_MARK)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Option<usize>, A::Error> {
        let mut first_line = None;
        while let Some((key, key_line)) = map.next_key_seed(KeyWithLine)? {
            let segment = Segment::Key(key);
            let value_line = map.next_value_seed(self.child(segment.clone()))?;
            if value_line.is_none() {
                let mut path = self.path.to_vec();
                path.push(segment);
                self.lines.entry(path).or_insert(key_line);
            }
            if first_line.is_none() {
                // Recorded now, so that a walk that stops further on still knows this mapping.
                self.lines.entry(self.path.to_vec()).or_insert(key_line);
                first_line = Some(key_line);
            }
        }
        Ok(first_line)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Option<usize>, A::Error> {
        let mut first_line = None;
        let mut index = 0;
        while let Some(line) = seq.next_element_seed(self.child(Segment::Index(index)))? {
            if index == 0 {
                if let Some(line) = line {
                    self.lines.entry(self.path.to_vec()).or_insert(line);
                }
                first_line = line;
            }
            index += 1;
        }
        Ok(first_line)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Option<usize>, A::Error> {
        // A tagged node: read past it, then fail on purpose like a scalar.
        let (IgnoredAny, variant) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant::<IgnoredAny>(variant)?;
        Err(de::Error::custom(POSITION_MARK))
    }
}

/// A mapping key as written, and its line.
struct KeyWithLine;

impl<'de> DeserializeSeed<'de> for KeyWithLine {
    type Value = (String, usize);
    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<(String, usize), D::Error> {
        let mut key = None;
        // yaml_serde hands any scalar key to visit_str as written, as it does for the typed pass.
        let error = match deserializer.deserialize_str(KeyText(&mut key)) {
            Ok(()) => return Err(de::Error::custom("a key without a position")),
            Err(error) => error,
        };
        match (key, marked_line(&error)) {
            (Some(key), Some(line)) => Ok((key, line)),
            _ => Err(error),
        }
    }
}

/// Keeps the key's text, then fails on purpose so the error carries the key's line.
struct KeyText<'a>(&'a mut Option<String>);

impl Visitor<'_> for KeyText<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        *self.0 = Some(text.to_owned());
        Err(E::custom(POSITION_MARK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    /// serde's own message for `text` read as `T` (without the position), and what the user reads.
    fn messages<T: DeserializeOwned>(text: &str) -> (String, String) {
        let error = match serde_yaml::from_str::<T>(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(error) => error,
        };
        let (_, serde_message) = split_yaml_error(&error);
        (
            serde_message,
            yaml_error::<Invalid>(error, "f.yml").to_string(),
        )
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only read to get serde's messages")]
    struct Three {
        a: Option<u8>,
        b: Option<u8>,
        c: Option<u8>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only read to get serde's messages")]
    struct Two {
        a: u8,
        b: Option<u8>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only read to get serde's messages")]
    struct One {
        a: Option<u8>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoKeys {}

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only read to get serde's messages")]
    struct Outer {
        inner: Option<Vec<Two>>,
    }

    #[test]
    fn serde_messages_about_keys_are_rewritten() {
        let cases = [
            (
                messages::<Three>("a: 1\nx: 2\n"),
                "f.yml: line 2: x: unknown key (allowed keys: a, b, c)",
            ),
            (
                messages::<Two>("a: 1\nx: 2\n"),
                "f.yml: line 2: x: unknown key (allowed keys: a, b)",
            ),
            (
                messages::<One>("x: 2\n"),
                "f.yml: line 1: x: unknown key (allowed keys: a)",
            ),
            (
                messages::<NoKeys>("x: 2\n"),
                "f.yml: line 1: x: unknown key",
            ),
            (
                messages::<Outer>("inner:\n  - a: 1\n    y: 2\n"),
                "f.yml: line 3: inner[0].y: unknown key (allowed keys: a, b)",
            ),
            (
                messages::<Two>("b: 1\n"),
                "f.yml: line 1: a: required key is missing",
            ),
            (
                messages::<Outer>("inner:\n  - b: 1\n"),
                "f.yml: line 2: inner[0].a: required key is missing",
            ),
            (
                messages::<Two>("a: 1\nb: 2\na: 3\n"),
                "f.yml: line 1: a: is set twice",
            ),
        ];
        for ((_, user_message), expected) in &cases {
            assert_eq!(user_message, expected);
        }
        // Every rewrite is exercised above, so none can stop matching unnoticed.
        for (pattern, _) in SERDE_KEY_MESSAGES {
            assert!(
                cases
                    .iter()
                    .any(|((serde_message, _), _)| serde_message.contains(pattern)),
                "no case for {pattern:?}"
            );
        }
    }

    fn key(name: &str) -> Segment {
        Segment::Key(name.to_owned())
    }

    #[test]
    fn node_lines_finds_nodes_in_block_and_flow_style() {
        let text = "# comment\natlas:\n  auth:\n    api_key: {public_key: a,\n      private_key: b}\ntargets:\n  - group_id: x\n  - {group_id: y}\n";
        let lines = NodeLines::of(text);
        assert_eq!(lines.line(&[]), Some(2));
        assert_eq!(lines.line(&[key("atlas"), key("auth")]), Some(4));
        assert_eq!(
            lines.line(&[
                key("atlas"),
                key("auth"),
                key("api_key"),
                key("private_key")
            ]),
            Some(5)
        );
        assert_eq!(
            lines.line(&[key("targets"), Segment::Index(1), key("group_id")]),
            Some(8)
        );
        assert_eq!(lines.line(&[key("targets"), Segment::Index(2)]), None);
        assert_eq!(lines.line(&[key("discovery")]), None);
    }

    #[test]
    fn node_lines_of_empty_values_duplicates_and_the_first_character() {
        let text = "a: {}\nb:\n  - []\n  -\n    c: 1\nb: 2\nd:\ne: &x 3\nf: *x\n";
        let lines = NodeLines::of(text);
        // An empty mapping or list is where its key is; an empty list item has no line of its own.
        assert_eq!(lines.line(&[key("a")]), Some(1));
        assert_eq!(lines.line(&[key("b"), Segment::Index(0)]), None);
        // An item whose mapping starts on the next line is where that mapping starts.
        assert_eq!(lines.line(&[key("b"), Segment::Index(1)]), Some(5));
        // A list whose first item is empty is where its key is; of two equal keys, the first keeps its
        // line.
        assert_eq!(lines.line(&[key("b")]), Some(2));
        // A key without a value is on its own line; an alias is where its anchor is.
        assert_eq!(lines.line(&[key("d")]), Some(7));
        assert_eq!(lines.line(&[key("f")]), Some(8));
        assert_eq!(NodeLines::of("targets\n").line(&[]), Some(1));
    }

    #[test]
    fn a_walk_that_stops_keeps_the_lines_found_before() {
        let lines = NodeLines::of("a: 1\n? [x]\n: 2\nc: 3\n");
        assert_eq!(lines.line(&[key("a")]), Some(1));
        assert_eq!(lines.line(&[key("c")]), None);
    }
}
