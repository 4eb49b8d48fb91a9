//! Who else learns how each call ended: `--atlas.check` reads a collection's calls from it.

use super::endpoint::Endpoint;
use super::error::AtlasError;

/// One call to Atlas as it ended, its retries and any OAuth token request included.
pub struct CallOutcome<'a> {
    pub endpoint: Endpoint,
    /// The path's segments in order: for the endpoints under `/groups/{groupId}` the project
    /// first, then the cluster, then a job or snapshot id.
    pub segments: &'a [&'a str],
    pub result: Result<(), &'a AtlasError>,
}

/// Told of every call a client makes, once the call has ended.
pub trait CallObserver: Send + Sync {
    fn observe(&self, call: CallOutcome<'_>);
}
