//! What one call's ending means to an operator: fine, or what failed and the fix. Atlas's
//! `errorCode` decides, not the status alone: Atlas answers a credential it does not accept and
//! a credential without the project's role both with 401.

use crate::atlas::{AtlasError, Endpoint, Gone, Path};

/// Which kind of credential the check runs with: the fix for a refused one differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    ApiKey,
    ServiceAccount,
}

/// How one call ended, for the check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The call worked (or failed in a way collection accepts).
    Fine(Option<Note>),
    Failed(Problem),
}

/// Something worth saying about a call that worked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// A snapshot Atlas no longer has: collection takes its time from its id, or goes without.
    SnapshotExpired,
}

/// A call that failed: what the operator sees and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The `endpoint` label of the call that failed (`oauth_token` when the token request did).
    pub endpoint: Endpoint,
    /// What came back: `HTTP 401 USER_UNAUTHORIZED`, `timed out: Atlas did not answer in time`, …
    pub what: String,
    /// What to do about it.
    pub fix: String,
    /// Whether it is the credential's, whatever the project: a credential Atlas does not
    /// accept, or a host not on its access list.
    pub global: bool,
}

const ACCESS_LIST_FIX: &str =
    "add this host's egress IP address to the credential's API access list";
const API_KEY_REFUSED_FIX: &str =
    "Atlas does not accept the API key: its public or private key is wrong, or the key was deleted";
const SERVICE_ACCOUNT_REFUSED_FIX: &str = "Atlas does not accept the service account: its client id or secret is wrong, it was deleted, or its secret expired";
const UNEXPECTED_FIX: &str =
    "an answer the exporter does not expect: see the log for Atlas's detail";
const RETRY_LATER_FIX: &str = "try again later";
const SLOW_FIX: &str = "check that this host reaches atlas.base_url; if Atlas is this slow every time, raise atlas.request_timeout and collection.timeout";

/// What the end of a call to `path` means.
pub fn diagnose(
    path: Path<'_>,
    result: Result<(), &AtlasError>,
    credential: CredentialKind,
) -> Verdict {
    let endpoint = path.endpoint();
    let Err(error) = result else {
        return Verdict::Fine(None);
    };
    let problem = |what: String, fix: &str| {
        Verdict::Failed(Problem {
            endpoint,
            what,
            fix: fix.to_owned(),
            global: false,
        })
    };
    match error {
        AtlasError::Status {
            status, error_code, ..
        } => diagnose_status(path, *status, error_code.as_deref(), credential),
        AtlasError::Token(message) => diagnose_token(message),
        AtlasError::Transport { message, .. } if message.starts_with("no answer within") => {
            problem(
                "timed out: Atlas did not answer in time".to_owned(),
                SLOW_FIX,
            )
        }
        AtlasError::Transport { message, .. } => problem(
            format!("no answer: {message}"),
            "check that this host reaches atlas.base_url (DNS, proxy, firewall)",
        ),
        AtlasError::Deadline { .. } => problem(
            "timed out: collection.timeout ran out first".to_owned(),
            SLOW_FIX,
        ),
        AtlasError::RateLimited { until, .. } => problem(
            format!("rate limited (HTTP 429): held back until {until}"),
            RETRY_LATER_FIX,
        ),
        AtlasError::UnknownJob { job_id, .. } => problem(
            format!("export job {job_id} does not exist (HTTP 404)"),
            "check the cluster's export_job_ids",
        ),
        AtlasError::ExpiredSnapshot { .. } => Verdict::Fine(Some(Note::SnapshotExpired)),
        AtlasError::TooManyPages { max_pages, .. } => problem(
            format!("still full after {max_pages} pages"),
            "raise export_jobs.max_pages",
        ),
        AtlasError::TooLarge { .. } => problem(
            "the answer is larger than atlas.max_response_size".to_owned(),
            "raise atlas.max_response_size",
        ),
        AtlasError::Redirect { status, .. } => problem(
            format!("HTTP {status}: a redirect, not followed"),
            "point atlas.base_url at the Atlas API itself",
        ),
        AtlasError::Body { source, .. } => problem(
            format!("an answer that is not Atlas's: {source}"),
            "point atlas.base_url at the Atlas API itself",
        ),
    }
}

fn diagnose_status(
    path: Path<'_>,
    status: u16,
    error_code: Option<&str>,
    credential: CredentialKind,
) -> Verdict {
    let endpoint = path.endpoint();
    let what = match error_code {
        Some(code) => format!("HTTP {status} {code}"),
        None => format!("HTTP {status}"),
    };
    let failed = |fix: String, global: bool| {
        Verdict::Failed(Problem {
            endpoint,
            what: what.clone(),
            fix,
            global,
        })
    };
    match (status, error_code) {
        (401, Some("USER_UNAUTHORIZED")) => {
            let fix = match endpoint.route().role {
                Some(role) => format!("grant the credential the {role} role in this project"),
                None => "grant the credential a role in the organization".to_owned(),
            };
            failed(fix, false)
        }
        // Atlas authenticated nothing: the answer to the digest was rejected, or a bearer
        // token fresh from the token endpoint was refused.
        (401, _) => failed(refused_credential(credential).to_owned(), true),
        (403, Some("IP_ADDRESS_NOT_ON_ACCESS_LIST")) => failed(ACCESS_LIST_FIX.to_owned(), true),
        (403, _) => failed(
            "Atlas refuses the credential here: check its project roles and the organization's API settings"
                .to_owned(),
            false,
        ),
        (404, code) => match (Gone::from_404(code), path) {
            (Gone::Project, _) => failed(
                "no project has this group_id, or the credential's organization does not hold it: check the target's group_id"
                    .to_owned(),
                false,
            ),
            (Gone::Cluster, _) => failed(
                "no cluster of this name in the project: check the target's cluster names"
                    .to_owned(),
                false,
            ),
            // Atlas removes expired snapshots; collection does without them the same way.
            (Gone::Resource, Path::GetSnapshot { .. } | Path::GetShardedSnapshot { .. }) => {
                Verdict::Fine(Some(Note::SnapshotExpired))
            }
            (Gone::Resource, Path::GetExportJob { job_id, .. }) => Verdict::Failed(Problem {
                endpoint,
                what: format!("{what}: export job {job_id} does not exist"),
                fix: "check the cluster's export_job_ids".to_owned(),
                global: false,
            }),
            (Gone::Resource, _) => failed(UNEXPECTED_FIX.to_owned(), false),
        },
        (429, _) => failed(
            format!("{RETRY_LATER_FIX}: Atlas rate-limited the credential, still after retries"),
            false,
        ),
        (500..=599, _) => failed(
            format!("{RETRY_LATER_FIX}: Atlas failed, still after retries"),
            false,
        ),
        _ => failed(UNEXPECTED_FIX.to_owned(), false),
    }
}

/// A failed OAuth token request, as the client words it: `HTTP 401: invalid_client`, or why no
/// answer came.
fn diagnose_token(message: &str) -> Verdict {
    let problem = |what: String, fix: String, global: bool| {
        Verdict::Failed(Problem {
            endpoint: Endpoint::OAuthToken,
            what,
            fix,
            global,
        })
    };
    let answered = message.strip_prefix("HTTP ").and_then(|rest| {
        let (status, detail) = rest.split_once(": ")?;
        Some((status.parse::<u16>().ok()?, detail))
    });
    match answered {
        Some((status, detail)) => {
            let what = format!("HTTP {status} {detail}");
            match status {
                // OAuth answers a client it does not know, or a wrong secret, with
                // `invalid_client` (RFC 6749 §5.2: 400 or 401).
                400 | 401 if detail == "invalid_client" => problem(
                    what,
                    refused_credential(CredentialKind::ServiceAccount).to_owned(),
                    true,
                ),
                429 => problem(
                    what,
                    format!(
                        "{RETRY_LATER_FIX}: Atlas rate-limited the token request, still after retries"
                    ),
                    false,
                ),
                500..=599 => problem(
                    what,
                    format!("{RETRY_LATER_FIX}: Atlas failed, still after retries"),
                    false,
                ),
                _ => problem(
                    what,
                    refused_credential(CredentialKind::ServiceAccount).to_owned(),
                    true,
                ),
            }
        }
        None if message.contains("deadline ran out") => problem(
            "timed out: collection.timeout ran out first".to_owned(),
            SLOW_FIX.to_owned(),
            false,
        ),
        None => problem(
            format!("no answer: {message}"),
            "check that this host reaches atlas.base_url (DNS, proxy, firewall)".to_owned(),
            false,
        ),
    }
}

fn refused_credential(credential: CredentialKind) -> &'static str {
    match credential {
        CredentialKind::ApiKey => API_KEY_REFUSED_FIX,
        CredentialKind::ServiceAccount => SERVICE_ACCOUNT_REFUSED_FIX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, error_code: Option<&str>) -> AtlasError {
        AtlasError::Status {
            call: "a call".into(),
            status,
            error_code: error_code.map(str::to_owned),
            detail: None,
            content_type: None,
        }
    }

    fn problem(verdict: Verdict) -> Problem {
        match verdict {
            Verdict::Failed(problem) => problem,
            Verdict::Fine(note) => panic!("fine ({note:?}), not failed"),
        }
    }

    const KEY: CredentialKind = CredentialKind::ApiKey;
    /// The path of a call to `endpoint` in project 5f1a…, cluster `Cluster0`, for job or
    /// snapshot 65a1….
    fn path(endpoint: Endpoint) -> Path<'static> {
        let (group_id, cluster) = ("5f1a2b3c4d5e6f7a8b9c0d1e", "Cluster0");
        let id = "65a1b2c3d4e5f60718293a4b";
        match endpoint {
            Endpoint::OAuthToken | Endpoint::ListProjects => Path::ListProjects,
            Endpoint::GetProject => Path::GetProject { group_id },
            Endpoint::ListClusters => Path::ListClusters { group_id },
            Endpoint::ListExportBuckets => Path::ListExportBuckets { group_id },
            Endpoint::GetCluster => Path::GetCluster { group_id, cluster },
            Endpoint::ListExportJobs => Path::ListExportJobs { group_id, cluster },
            Endpoint::GetBackupSchedule => Path::GetBackupSchedule { group_id, cluster },
            Endpoint::GetExportJob => Path::GetExportJob {
                group_id,
                cluster,
                job_id: id,
            },
            Endpoint::GetSnapshot => Path::GetSnapshot {
                group_id,
                cluster,
                snapshot_id: id,
            },
            Endpoint::GetShardedSnapshot => Path::GetShardedSnapshot {
                group_id,
                cluster,
                snapshot_id: id,
            },
        }
    }

    #[test]
    fn a_missing_role_names_the_role_the_endpoint_needs() {
        let error = status(401, Some("USER_UNAUTHORIZED"));
        let jobs = problem(diagnose(path(Endpoint::ListExportJobs), Err(&error), KEY));
        assert_eq!(jobs.what, "HTTP 401 USER_UNAUTHORIZED");
        assert_eq!(
            jobs.fix,
            "grant the credential the Project Backup Manager role in this project"
        );
        assert!(!jobs.global, "roles are granted per project");
        let cluster = problem(diagnose(path(Endpoint::GetCluster), Err(&error), KEY));
        assert_eq!(
            cluster.fix,
            "grant the credential the Project Read Only role in this project"
        );
    }

    #[test]
    fn a_401_without_user_unauthorized_is_the_credential_itself() {
        let error = status(401, Some("UNEXPECTED_ERROR"));
        let key = problem(diagnose(path(Endpoint::GetProject), Err(&error), KEY));
        assert_eq!(key.fix, API_KEY_REFUSED_FIX);
        assert!(key.global);
        let service = CredentialKind::ServiceAccount;
        let account = problem(diagnose(
            path(Endpoint::GetProject),
            Err(&status(401, None)),
            service,
        ));
        assert_eq!(
            (account.what.as_str(), account.fix.as_str()),
            ("HTTP 401", SERVICE_ACCOUNT_REFUSED_FIX)
        );
    }

    #[test]
    fn a_token_refused_as_invalid_client_is_the_service_account() {
        let error = AtlasError::Token("HTTP 401: invalid_client".into());
        let token = problem(diagnose(path(Endpoint::ListExportJobs), Err(&error), KEY));
        assert_eq!(token.endpoint, Endpoint::OAuthToken);
        assert_eq!(token.what, "HTTP 401 invalid_client");
        assert_eq!(token.fix, SERVICE_ACCOUNT_REFUSED_FIX);
        let busy = AtlasError::Token("HTTP 503: SERVICE_UNAVAILABLE".into());
        let busy = problem(diagnose(path(Endpoint::GetProject), Err(&busy), KEY));
        assert_eq!(
            busy.fix,
            "try again later: Atlas failed, still after retries"
        );
        let silent = AtlasError::Token("error sending request".into());
        let silent = problem(diagnose(path(Endpoint::GetProject), Err(&silent), KEY));
        assert_eq!(silent.what, "no answer: error sending request");
    }

    #[test]
    fn not_found_is_told_apart_by_error_code() {
        let group = status(404, Some("GROUP_NOT_FOUND"));
        let group = problem(diagnose(path(Endpoint::ListExportJobs), Err(&group), KEY));
        assert!(
            group.fix.ends_with("check the target's group_id"),
            "{}",
            group.fix
        );
        let cluster = status(404, Some("CLUSTER_NOT_FOUND"));
        let cluster = problem(diagnose(path(Endpoint::GetSnapshot), Err(&cluster), KEY));
        assert_eq!(
            cluster.fix,
            "no cluster of this name in the project: check the target's cluster names"
        );
        let job = status(404, Some("RESOURCE_NOT_FOUND"));
        let job = problem(diagnose(path(Endpoint::GetExportJob), Err(&job), KEY));
        assert_eq!(
            job.what,
            "HTTP 404 RESOURCE_NOT_FOUND: export job 65a1b2c3d4e5f60718293a4b does not exist"
        );
        let snapshot = status(404, Some("RESOURCE_NOT_FOUND"));
        for endpoint in [Endpoint::GetSnapshot, Endpoint::GetShardedSnapshot] {
            assert_eq!(
                diagnose(path(endpoint), Err(&snapshot), KEY),
                Verdict::Fine(Some(Note::SnapshotExpired))
            );
        }
    }

    #[test]
    fn access_lists_rate_limits_and_outages_are_said_as_such() {
        let listed = status(403, Some("IP_ADDRESS_NOT_ON_ACCESS_LIST"));
        let listed = problem(diagnose(path(Endpoint::ListClusters), Err(&listed), KEY));
        assert_eq!(listed.fix, ACCESS_LIST_FIX);
        assert!(listed.global);
        let limited = status(429, Some("RATE_LIMITED"));
        let limited = problem(diagnose(path(Endpoint::ListClusters), Err(&limited), KEY));
        assert_eq!(limited.what, "HTTP 429 RATE_LIMITED");
        assert!(limited.fix.contains("rate-limited"), "{}", limited.fix);
        let down = status(503, Some("SERVICE_UNAVAILABLE"));
        let down = problem(diagnose(path(Endpoint::ListClusters), Err(&down), KEY));
        assert!(down.fix.contains("Atlas failed"), "{}", down.fix);
        let slow = AtlasError::Deadline {
            call: "a call".into(),
        };
        let slow = problem(diagnose(path(Endpoint::ListClusters), Err(&slow), KEY));
        assert_eq!(slow.what, "timed out: collection.timeout ran out first");
    }
}
