//! Whether Atlas refuses the exporter, per project: what `atlas_backup_export_access_denied`
//! shows.
//!
//! A project is refused while the latest attempt of some kind of call in it (its `endpoint`)
//! was refused after authentication: 401 `USER_UNAUTHORIZED` (the credential lacks the role)
//! or any 403 (`IP_ADDRESS_NOT_ON_ACCESS_LIST`, …). A kind of call goes back to allowed when
//! its next attempt is answered with anything else but 429 or 5xx, which say nothing about
//! access; an attempt that got no answer changes nothing. A refusal of a call outside any
//! project (the project listing) counts for every project.
//!
//! Every project is refused while the credential itself is: a digest answer Atlas rejects (a
//! 401 without `USER_UNAUTHORIZED` after the exchange; the challenge before it is not seen
//! here), a bearer token refused just after it was issued, or a token request answered
//! `invalid_client` or 401. That ends with the next answer that shows the credential accepted:
//! a token issued, or any call answered with something other than such a 401.

use std::collections::HashSet;
use std::sync::Mutex;

use super::endpoint::Endpoint;
use super::error::AtlasError;

/// The `errorCode` of a 401 for an authenticated credential that lacks the role.
const USER_UNAUTHORIZED: &str = "USER_UNAUTHORIZED";

/// What one ended call says about access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Authenticated and allowed (whatever else went wrong).
    Allowed,
    /// Authenticated, then refused.
    Refused,
    /// The credential itself refused.
    CredentialRefused,
    /// No answer, or one that says nothing about access (429, 5xx).
    Unknown,
}

/// The refusals in force, shared by every clone of the client.
#[derive(Debug, Default)]
pub(super) struct AccessLog {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    credential_refused: bool,
    /// `(project, endpoint label)` whose latest attempt was refused; `None`: outside any project.
    refused: HashSet<(Option<String>, &'static str)>,
}

impl AccessLog {
    /// Records how a call to `endpoint` in `group_id` ended, its retries done.
    pub(super) fn call_ended<T>(
        &self,
        group_id: Option<&str>,
        endpoint: Endpoint,
        result: &Result<T, AtlasError>,
    ) {
        let outcome = match result {
            Ok(_) => Outcome::Allowed,
            Err(error) => outcome(error),
        };
        let key = (group_id.map(str::to_owned), endpoint.label());
        let mut state = self.lock();
        match outcome {
            Outcome::Allowed => {
                state.credential_refused = false;
                state.refused.remove(&key);
            }
            Outcome::Refused => {
                state.credential_refused = false;
                state.refused.insert(key);
            }
            Outcome::CredentialRefused => state.credential_refused = true,
            Outcome::Unknown => {}
        }
    }

    /// Records the answer to a token request: `true` when it refused the credential.
    pub(super) fn token_answered(&self, refused: bool) {
        self.lock().credential_refused = refused;
    }

    /// Whether Atlas refuses the exporter in `group_id`.
    pub(super) fn denied(&self, group_id: &str) -> bool {
        let state = self.lock();
        state.credential_refused
            || state
                .refused
                .iter()
                .any(|(project, _)| project.as_deref().is_none_or(|p| p == group_id))
    }

    /// Forgets the refusals of projects `keep` refuses (no longer watched).
    pub(super) fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut state = self.lock();
        state
            .refused
            .retain(|(project, _)| project.as_deref().is_none_or(&keep));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a failed call says about access.
fn outcome(error: &AtlasError) -> Outcome {
    match error {
        AtlasError::Status {
            status: 401,
            error_code,
            ..
        } if error_code.as_deref() == Some(USER_UNAUTHORIZED) => Outcome::Refused,
        AtlasError::Status { status: 401, .. } => Outcome::CredentialRefused,
        AtlasError::Status { status: 403, .. } => Outcome::Refused,
        AtlasError::Status { status, .. } if *status == 429 || *status >= 500 => Outcome::Unknown,
        // Answered, so authenticated and allowed: 404, 410, a body that is not what it
        // promises, one that is too large.
        AtlasError::Status { .. }
        | AtlasError::UnknownJob { .. }
        | AtlasError::ExpiredSnapshot { .. }
        | AtlasError::Body { .. }
        | AtlasError::TooLarge { .. }
        | AtlasError::TooManyPages { .. } => Outcome::Allowed,
        // No answer from Atlas itself; a token refused is recorded where it is asked for.
        AtlasError::Transport { .. }
        | AtlasError::Deadline { .. }
        | AtlasError::Redirect { .. }
        | AtlasError::RateLimited { .. }
        | AtlasError::Token(_) => Outcome::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";
    const B: &str = "6f1a2b3c4d5e6f7a8b9c0d1e";

    fn status(status: u16, error_code: Option<&str>) -> Result<(), AtlasError> {
        Err(AtlasError::Status {
            call: "x".into(),
            status,
            error_code: error_code.map(str::to_owned),
            detail: None,
            content_type: None,
        })
    }

    #[test]
    fn a_refusal_lasts_until_the_same_kind_of_call_is_answered() {
        let log = AccessLog::default();
        log.call_ended(
            Some(A),
            Endpoint::ListExportJobs,
            &status(401, Some(USER_UNAUTHORIZED)),
        );
        assert!(log.denied(A));
        assert!(!log.denied(B));
        // Another kind of call answered does not end it; a 503 or no answer says nothing.
        log.call_ended(Some(A), Endpoint::GetProject, &Ok::<(), AtlasError>(()));
        log.call_ended(Some(A), Endpoint::ListExportJobs, &status(503, None));
        assert!(log.denied(A));
        log.call_ended(
            Some(A),
            Endpoint::ListExportJobs,
            &status(404, Some("CLUSTER_NOT_FOUND")),
        );
        assert!(!log.denied(A));
        log.call_ended(
            Some(B),
            Endpoint::GetBackupSchedule,
            &status(403, Some("ANY")),
        );
        assert!(log.denied(B));
        log.retain(|project| project != B);
        assert!(!log.denied(B), "forgotten with its project");
    }

    #[test]
    fn a_refused_credential_denies_every_project_until_an_answer_accepts_it() {
        let log = AccessLog::default();
        log.call_ended(
            Some(A),
            Endpoint::ListExportJobs,
            &status(401, Some("UNEXPECTED_ERROR")),
        );
        assert!(log.denied(A) && log.denied(B));
        log.token_answered(false);
        assert!(!log.denied(B));
        log.token_answered(true);
        assert!(log.denied(B));
        log.call_ended(Some(A), Endpoint::ListExportJobs, &Ok::<(), AtlasError>(()));
        assert!(!log.denied(B));
        // The project listing is no project's: its refusal counts for all of them.
        log.call_ended(None, Endpoint::ListProjects, &status(403, None));
        assert!(log.denied(A) && log.denied(B));
    }
}
