//! Who else learns how each call ended: `--atlas.check` reads a collection's calls from it.

use super::endpoint::Path;
use super::error::AtlasError;

/// One call to Atlas as it ended, its retries and any OAuth token request included.
pub struct CallOutcome<'a> {
    /// What was asked: the endpoint and its ids.
    pub path: Path<'a>,
    pub result: Result<(), &'a AtlasError>,
}

/// Told of every call a client makes, once the call has ended.
pub trait CallObserver: Send + Sync {
    fn observe(&self, call: CallOutcome<'_>);
}
