//! Everything that can go wrong talking to Atlas, in the user's terms.

use super::model::BodyError;

/// A failed Atlas call. The message names what was asked and what came back; it never holds a
/// credential.
#[derive(Debug, thiserror::Error)]
pub enum AtlasError {
    /// Atlas answered with an error status.
    #[error("{call}: HTTP {status}{}", describe_error_body(.error_code, .detail, .content_type))]
    Status {
        call: String,
        status: u16,
        error_code: Option<String>,
        detail: Option<String>,
        content_type: Option<String>,
    },
    /// The request never got an answer (connection refused, reset, TLS, timeout).
    #[error("{call}: {message}")]
    Transport { call: String, message: String },
    /// The scrape's deadline ran out before the call could finish.
    #[error("{call}: the scrape's deadline ran out")]
    Deadline { call: String },
    /// Atlas answered 200 with a body that is not what it promises.
    #[error("{call}: {source} (HTTP 200, content type {content_type})")]
    Body {
        call: String,
        content_type: String,
        #[source]
        source: BodyError,
    },
    /// A configured job id Atlas does not know.
    #[error("{call}: export job {job_id} does not exist (HTTP 404{})", .error_code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    UnknownJob {
        call: String,
        job_id: String,
        error_code: Option<String>,
    },
    /// A snapshot Atlas no longer has (404) whose id carries no time to fall back on.
    #[error(
        "{call}: the snapshot is gone (HTTP 404) and its id is not an ObjectId that carries its time"
    )]
    ExpiredSnapshot { call: String },
    /// Paging did not end within `export_jobs.max_pages`.
    #[error("{call}: still full after {max_pages} pages (export_jobs.max_pages); giving up")]
    TooManyPages { call: String, max_pages: u32 },
    /// The answer's body was past `atlas.max_response_size` (after decompression).
    #[error("{call}: the answer is larger than atlas.max_response_size ({}); not read further", crate::config::format_size(*.limit))]
    TooLarge { call: String, limit: u64 },
    /// Atlas (or something in its place) answered with a redirect, which is never followed.
    #[error("{call}: HTTP {status}: {location}")]
    Redirect {
        call: String,
        status: u16,
        /// Where it pointed (quoted, cut short) and that it was not followed.
        location: String,
    },
    /// A 429's `Retry-After` window for the call's endpoint and project ends after the
    /// deadline: the call was not sent.
    #[error(
        "{call}: held back until {until}, when Atlas's Retry-After window for this endpoint and project ends"
    )]
    RateLimited { call: String, until: String },
    /// The OAuth token request failed.
    #[error("requesting an OAuth token: {0}")]
    Token(String),
}

/// What a 404 says is gone, told by Atlas's `errorCode`: a parent of the resource asked for
/// (its project or its cluster), or the resource itself (an export job, a snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// `GROUP_NOT_FOUND`: no such project, or not in the credential's organization.
    Project,
    /// `CLUSTER_NOT_FOUND`: no cluster of that name in the project.
    Cluster,
    /// The resource asked for itself: `RESOURCE_NOT_FOUND`, or any other code, or none.
    Resource,
}

impl Gone {
    /// What a 404 with `error_code` says is gone. The one place a 404 is read: only the two
    /// codes Atlas gives for a missing parent mean the parent; anything else is the resource.
    pub fn from_404(error_code: Option<&str>) -> Gone {
        match error_code {
            Some("GROUP_NOT_FOUND") => Gone::Project,
            Some("CLUSTER_NOT_FOUND") => Gone::Cluster,
            _ => Gone::Resource,
        }
    }
}

fn describe_error_body(
    error_code: &Option<String>,
    detail: &Option<String>,
    content_type: &Option<String>,
) -> String {
    match (error_code, detail) {
        (Some(code), Some(detail)) => format!(" {code}: {detail}"),
        (Some(code), None) => format!(" {code}"),
        (None, Some(detail)) => format!(": {detail}"),
        (None, None) => format!(
            " with a body that is not an Atlas error (content type {})",
            content_type.as_deref().unwrap_or("none")
        ),
    }
}

/// How many characters of a text the other end chose are shown in an error.
const SHOWN_CHARS: usize = 200;

/// Text taken from an answer (`detail`, `reason`, `errorCode`, `Content-Type`, OAuth's
/// `error`), made fit for a log line: whatever the other end sent, at most [`SHOWN_CHARS`]
/// characters of it, cut on a character boundary with a note that it was cut, and control
/// characters escaped so it cannot break the line or forge another.
pub(super) fn from_the_answer(text: &str) -> String {
    let mut shown = String::new();
    let mut chars = text.chars();
    for c in chars.by_ref().take(SHOWN_CHARS) {
        if c.is_control() {
            shown.extend(c.escape_debug());
        } else {
            shown.push(c);
        }
    }
    let rest = chars.count();
    if rest > 0 {
        shown.push_str(&format!("… ({rest} more characters not shown)"));
    }
    shown
}

impl AtlasError {
    /// A short name of the error's kind, for log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            AtlasError::Status { .. } => "status",
            AtlasError::Transport { .. } => "transport",
            AtlasError::Deadline { .. } => "deadline",
            AtlasError::Body { .. } => "body",
            AtlasError::UnknownJob { .. } => "unknown_job",
            AtlasError::ExpiredSnapshot { .. } => "expired_snapshot",
            AtlasError::TooManyPages { .. } => "too_many_pages",
            AtlasError::TooLarge { .. } => "too_large",
            AtlasError::Redirect { .. } => "redirect",
            AtlasError::RateLimited { .. } => "rate_limited",
            AtlasError::Token(_) => "token",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_404_tells_a_parent_gone_from_the_resource_gone() {
        // The codes Atlas sends (the recorded CLUSTER_NOT_FOUND answer, and the ones its
        // documentation lists for 404).
        assert_eq!(Gone::from_404(Some("GROUP_NOT_FOUND")), Gone::Project);
        assert_eq!(Gone::from_404(Some("CLUSTER_NOT_FOUND")), Gone::Cluster);
        assert_eq!(Gone::from_404(Some("RESOURCE_NOT_FOUND")), Gone::Resource);
        // A code Atlas may add for the resource, or none at all: the resource itself.
        assert_eq!(Gone::from_404(Some("EXPORT_JOB_NOT_FOUND")), Gone::Resource);
        assert_eq!(Gone::from_404(None), Gone::Resource);
        // Codes are matched whole, as Atlas sends them.
        assert_eq!(Gone::from_404(Some("cluster_not_found")), Gone::Resource);
    }

    #[test]
    fn text_from_the_answer_is_cut_and_escaped() {
        assert_eq!(from_the_answer("CLUSTER_NOT_FOUND"), "CLUSTER_NOT_FOUND");
        assert_eq!(from_the_answer("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
        // Cut on a character boundary: 'é' is two bytes.
        let long = "é".repeat(SHOWN_CHARS + 5);
        assert_eq!(
            from_the_answer(&long),
            format!("{}… (5 more characters not shown)", "é".repeat(SHOWN_CHARS))
        );
    }
}
