//! One export job as the exporter keeps it, compact: the largest estates keep every job of every
//! cluster between scrapes (so that unchanged listings need not be parsed again), a million jobs
//! at 10,000 clusters, so each byte of a job counts a megabyte.
//!
//! - Ids ([`AtlasId`]) are 12 bytes inline when they are ObjectIds as Atlas writes them (24
//!   lowercase hex digits), and the text as it came otherwise, so nothing is refused and every id
//!   is written back byte for byte.
//! - The state is a [`JobState`]: the five documented states without an allocation, anything Atlas
//!   adds later as its own text.
//! - What only failed jobs have (the state reason) is boxed, so other jobs pay 8 bytes for it.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;

/// One snapshot export job, reduced to what the metrics need.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportJob {
    pub id: AtlasId,
    pub state: JobState,
    /// `createdAt` as Unix seconds (fractional seconds kept).
    pub created_at: f64,
    /// `finishedAt` as Unix seconds, absent while the job runs.
    pub finished_at: Option<f64>,
    pub snapshot_id: Option<AtlasId>,
    pub export_bucket_id: Option<AtlasId>,
    /// One component per shard; 0 for a replica set.
    pub components: u32,
    /// Present when Atlas explains a failure.
    pub state_reason: Option<Box<StateReason>>,
}

/// Atlas's explanation of a failed job.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StateReason {
    pub error_code: String,
    pub message: String,
}

impl ExportJob {
    /// Whether the job can still change state.
    pub fn is_terminal(&self) -> bool {
        self.state.is_terminal()
    }

    /// Seconds from creation to finish, when the job has finished.
    pub fn duration(&self) -> Option<f64> {
        self.finished_at.map(|finished| finished - self.created_at)
    }
}

/// An id Atlas gives (an export job's, a snapshot's, an export bucket's). Equal ids are equal
/// text, and ids order as their text does.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AtlasId(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    /// An ObjectId: 24 lowercase hex digits, as bytes. Only such text becomes one, so each text
    /// has one form and equality needs no decoding.
    Object([u8; 12]),
    /// Any other text. Boxed twice so the pointer is thin and the id stays 16 bytes: such ids are
    /// rare, the extra allocation is not.
    Text(Box<Box<str>>),
}

impl AtlasId {
    /// The id written as `text`.
    pub fn new(text: &str) -> AtlasId {
        match decode_object_id(text.as_bytes()) {
            Some(bytes) => AtlasId(Repr::Object(bytes)),
            None => AtlasId(Repr::Text(Box::new(text.into()))),
        }
    }

    /// The id as text, exactly as Atlas wrote it.
    pub fn text(&self) -> IdText<'_> {
        match &self.0 {
            Repr::Object(bytes) => IdText::Hex(encode_object_id(bytes)),
            Repr::Text(text) => IdText::Borrowed(text),
        }
    }

    /// Whether the id is kept in its 12-byte form.
    pub fn is_object_id(&self) -> bool {
        matches!(self.0, Repr::Object(_))
    }
}

impl From<&str> for AtlasId {
    fn from(text: &str) -> AtlasId {
        AtlasId::new(text)
    }
}

impl From<String> for AtlasId {
    fn from(text: String) -> AtlasId {
        AtlasId::new(&text)
    }
}

impl PartialEq<str> for AtlasId {
    fn eq(&self, other: &str) -> bool {
        match &self.0 {
            Repr::Object(bytes) => decode_object_id(other.as_bytes()).as_ref() == Some(bytes),
            Repr::Text(text) => ***text == *other,
        }
    }
}

impl PartialEq<&str> for AtlasId {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Ord for AtlasId {
    fn cmp(&self, other: &AtlasId) -> Ordering {
        match (&self.0, &other.0) {
            // Lowercase hex digits order as the bytes they spell.
            (Repr::Object(a), Repr::Object(b)) => a.cmp(b),
            _ => self.text().cmp(&other.text()),
        }
    }
}

impl PartialOrd for AtlasId {
    fn partial_cmp(&self, other: &AtlasId) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for AtlasId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Debug for AtlasId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text(), f)
    }
}

/// An [`AtlasId`] as text: an ObjectId's 24 digits written on the stack, other ids borrowed.
pub enum IdText<'a> {
    Hex([u8; 24]),
    Borrowed(&'a str),
}

impl Deref for IdText<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            // Only hex digits are ever written into it.
            IdText::Hex(digits) => std::str::from_utf8(digits).unwrap_or_default(),
            IdText::Borrowed(text) => text,
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn decode_object_id(text: &[u8]) -> Option<[u8; 12]> {
    let digits: &[u8; 24] = text.try_into().ok()?;
    let nibble = |digit: u8| match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    };
    let mut bytes = [0; 12];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(bytes)
}

fn encode_object_id(bytes: &[u8; 12]) -> [u8; 24] {
    let mut digits = [0; 24];
    for (pair, byte) in digits.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    digits
}

/// An export job's state: the five Atlas documents, or one it adds later, kept as its text
/// rather than refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    InProgress,
    Successful,
    Failed,
    Cancelled,
    /// A state Atlas does not document (yet). Boxed twice to keep the state 16 bytes.
    Other(Box<Box<str>>),
}

impl JobState {
    /// The documented states, in the order the exporter reports them; [`JobState::index`] is
    /// the position in this list.
    pub const KNOWN: [JobState; 5] = [
        JobState::Queued,
        JobState::InProgress,
        JobState::Successful,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The state Atlas writes as `text`.
    pub fn new(text: &str) -> JobState {
        match text {
            "Queued" => JobState::Queued,
            "InProgress" => JobState::InProgress,
            "Successful" => JobState::Successful,
            "Failed" => JobState::Failed,
            "Cancelled" => JobState::Cancelled,
            other => JobState::Other(Box::new(other.into())),
        }
    }

    /// The state as Atlas writes it.
    pub fn as_str(&self) -> &str {
        match self {
            JobState::Queued => "Queued",
            JobState::InProgress => "InProgress",
            JobState::Successful => "Successful",
            JobState::Failed => "Failed",
            JobState::Cancelled => "Cancelled",
            JobState::Other(text) => text,
        }
    }

    /// The position in [`JobState::KNOWN`]; `None` for a state Atlas does not document.
    pub fn index(&self) -> Option<usize> {
        match self {
            JobState::Queued => Some(0),
            JobState::InProgress => Some(1),
            JobState::Successful => Some(2),
            JobState::Failed => Some(3),
            JobState::Cancelled => Some(4),
            JobState::Other(_) => None,
        }
    }

    /// Whether a job in this state never changes again. A state Atlas adds is taken as not
    /// final, so such a job keeps its series and is looked at again.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Successful | JobState::Failed | JobState::Cancelled
        )
    }
}

impl From<&str> for JobState {
    fn from(text: &str) -> JobState {
        JobState::new(text)
    }
}

impl PartialEq<str> for JobState {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for JobState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_12_bytes_and_come_back_as_the_same_text() {
        let text = "605cbac9b498841007af7d9f";
        let id = AtlasId::new(text);
        assert!(id.is_object_id());
        assert_eq!(&*id.text(), text);
        assert_eq!(id.to_string(), text);
        assert_eq!(id, *text);
        assert_eq!(id, AtlasId::from(text.to_owned()));
        assert_ne!(id, *"605cbac9b498841007af7d9e");
        for text in ["000000000000000000000000", "ffffffffffffffffffffffff"] {
            assert_eq!(&*AtlasId::new(text).text(), text);
        }
    }

    #[test]
    fn other_ids_are_kept_as_written() {
        for text in [
            // Uppercase hex: an ObjectId to Atlas, but its text must come back as it was.
            "605CBAC9B498841007AF7D9F",
            "605cbac9b498841007af7d9",
            "605cbac9b498841007af7d9f0",
            "605cbac9b498841007af7d9g",
            "",
            "job \"one\"\n\\",
            "ünïcödé-ünïcödé-ünïcödé",
        ] {
            let id = AtlasId::new(text);
            assert!(!id.is_object_id(), "{text:?}");
            assert_eq!(&*id.text(), text);
            assert_eq!(id, *text);
            assert_eq!(format!("{id:?}"), format!("{text:?}"));
        }
        // Uppercase and lowercase spell different ids.
        assert_ne!(
            AtlasId::new("605CBAC9B498841007AF7D9F"),
            AtlasId::new("605cbac9b498841007af7d9f")
        );
        assert_ne!(
            AtlasId::new("605cbac9b498841007af7d9f"),
            *"605CBAC9B498841007AF7D9F"
        );
    }

    #[test]
    fn ids_order_as_their_text() {
        let texts = [
            "605cbac9b498841007af7d9f",
            "605cbac9b498841007af7d9",
            "605cbac9b498841007af7d9g",
            "605CBAC9B498841007AF7D9F",
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "zz",
            "0",
            "605cbac9b498841007af7da0",
        ];
        let mut ids: Vec<AtlasId> = texts.iter().map(|t| AtlasId::new(t)).collect();
        ids.sort();
        let mut sorted = texts.to_vec();
        sorted.sort();
        let back: Vec<String> = ids.iter().map(AtlasId::to_string).collect();
        assert_eq!(back, sorted);
    }

    #[test]
    fn states_know_the_five_documented_and_keep_any_other() {
        for (i, state) in JobState::KNOWN.iter().enumerate() {
            assert_eq!(JobState::new(state.as_str()), *state);
            assert_eq!(state.index(), Some(i));
        }
        let added = JobState::new("Paused");
        assert_eq!(added, JobState::Other(Box::new("Paused".into())));
        assert_eq!((added.as_str(), added.index()), ("Paused", None));
        assert!(!added.is_terminal());
        // Case matters: Atlas's enum is exact.
        assert_eq!(JobState::new("successful").index(), None);
        let terminal: Vec<&str> = JobState::KNOWN
            .iter()
            .filter(|s| s.is_terminal())
            .map(JobState::as_str)
            .collect();
        assert_eq!(terminal, ["Successful", "Failed", "Cancelled"]);
    }

    #[test]
    fn a_job_is_compact() {
        assert_eq!(size_of::<AtlasId>(), 16);
        assert_eq!(size_of::<Option<AtlasId>>(), 16);
        assert_eq!(size_of::<JobState>(), 16);
        assert!(size_of::<ExportJob>() <= 104, "{}", size_of::<ExportJob>());
    }
}
