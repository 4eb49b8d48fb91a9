//! `--atlas.check` as an operator runs it: the real binary against the stand-in, one test per
//! outcome, each asserting the lines printed, the exit code and the calls the stand-in saw.

use std::path::Path;
use std::time::{Duration, Instant};

use fake_atlas::{ClusterKind, FakeAtlas, Fault, job};
use time::OffsetDateTime;

use crate::support::{self, CLIENT_ID, CLIENT_SECRET, GROUP, GROUP2, PRIVATE_KEY, PUBLIC_KEY};

const BUCKET: &str = "6a794342c0eb9e7a17729455";
const SNAPSHOT: &str = "6a7943472c88faeba59ccf70";
/// A project the stand-in does not know.
const GROUP3: &str = "7b8a9c0d1e2f3a4b5c6d7e8f";

/// What the binary did.
struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Checked {
    /// Everything it wrote, for the assertions' messages.
    fn output(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Which credential the config holds.
#[derive(Clone, Copy)]
enum Credential<'a> {
    ApiKey(&'a str, &'a str),
    ServiceAccount(&'a str, &'a str),
}

const GOOD_ACCOUNT: Credential<'static> = Credential::ServiceAccount(CLIENT_ID, CLIENT_SECRET);

/// Two projects: payments-prod's Cluster0, named in the config, with a successful export
/// whose snapshot is kept and auto-export on; analytics, discovered, with Cluster9 and a
/// job still queued, and a shared-tier cluster discovery leaves alone.
fn estate() -> FakeAtlas {
    let fake = support::fake();
    fake.set_group_name(GROUP, "payments-prod");
    fake.set_group_name(GROUP2, "analytics");
    fake.add_cluster(GROUP, "Cluster0");
    let taken = OffsetDateTime::now_utc() - time::Duration::days(1);
    fake.put_job(
        GROUP,
        "Cluster0",
        job("605ccba3c1c7613f423e1585")
            .state("Successful")
            .created(taken)
            .finished(taken + time::Duration::hours(1))
            .snapshot_id(SNAPSHOT)
            .export_bucket_id(BUCKET)
            .build(),
    );
    fake.put_job(
        GROUP,
        "Cluster0",
        job("605ccba3c1c7613f423e1584")
            .state("Failed")
            .created(taken - time::Duration::days(1))
            .build(),
    );
    fake.add_snapshot(GROUP, "Cluster0", SNAPSHOT, taken);
    fake.add_export_bucket(GROUP, BUCKET, "acme-backups", "AWS");
    fake.set_auto_export(GROUP, "Cluster0", BUCKET, "monthly");
    fake.add_cluster(GROUP2, "Cluster9");
    fake.add_cluster_of_kind(GROUP2, "Shared0", ClusterKind::Tenant);
    fake.put_job(GROUP2, "Cluster9", job("605ccba3c1c7613f423e1586").build());
    fake
}

/// The config of the estate: `GROUP`'s Cluster0 by name, `GROUP2` discovered, and `extra`
/// targets after them.
fn config(base_url: &str, credential: Credential, timeout: &str, extra: &str) -> String {
    let auth = match credential {
        Credential::ApiKey(public, private) => {
            format!("api_key: {{public_key: {public}, private_key: {private}}}")
        }
        Credential::ServiceAccount(id, secret) => {
            format!("service_account: {{client_id: {id}, client_secret: {secret}}}")
        }
    };
    format!(
        "atlas:\n  base_url: {base_url}\n  auth:\n    {auth}\ncollection:\n  timeout: {timeout}\n\
         targets:\n  - group_id: {GROUP}\n    clusters: [Cluster0]\n  - group_id: {GROUP2}\n{extra}"
    )
}

/// Runs `--atlas.check` on the config at `path` with `args` after it.
async fn run(path: &Path, args: &[&str]) -> Checked {
    let command = support::Spawn::exporter()
        .arg("--atlas.check")
        .config(path)
        .args(args);
    let started = Instant::now();
    let output = command.output_async().await;
    Checked {
        code: output.code,
        stdout: output.stdout,
        stderr: output.stderr,
        elapsed: started.elapsed(),
    }
}

/// Starts `fake`, writes the estate's config for it and runs the check.
async fn check(fake: &FakeAtlas, credential: Credential<'_>, extra: &str) -> Checked {
    let base_url = fake.start().await.unwrap();
    let dir = support::TempDir::new("atlas-check");
    let path = dir.write("exporter.yml", &config(&base_url, credential, "10s", extra));
    run(&path, &[]).await
}

/// The requests the stand-in saw per endpoint, in the exporter's endpoint labels.
fn calls(fake: &FakeAtlas) -> Vec<(String, u64)> {
    let counts = fake.requests();
    counts.by_endpoint.into_iter().collect()
}

fn counts(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
    expected.iter().map(|(e, n)| (e.to_string(), *n)).collect()
}

fn assert_lines(checked: &Checked, expected: &[&str]) {
    let lines: Vec<&str> = checked.stdout.lines().collect();
    assert_eq!(lines, expected, "{}", checked.output());
}

const SA_REFUSED: &str = "Atlas does not accept the service account: its client id or secret is wrong, it was deleted, or its secret expired";
const KEY_REFUSED: &str =
    "Atlas does not accept the API key: its public or private key is wrong, or the key was deleted";
const ACCESS_LIST: &str = "add this host's egress IP address to the credential's API access list";

#[tokio::test]
async fn all_fine_prints_what_it_found_and_exits_zero() {
    let fake = estate();
    let checked = check(&fake, GOOD_ACCOUNT, "").await;
    assert_lines(
        &checked,
        &[
            "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"            ok  1 cluster, 1 export bucket",
            "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"  Cluster0  ok  2 export jobs, auto-export on",
            "6a799efbc0eb9e7a177d7e0e  \"analytics\"                ok  1 cluster, 0 export buckets (not watched: 1 shared tier or Flex)",
            "6a799efbc0eb9e7a177d7e0e  \"analytics\"      Cluster9  ok  1 export job, auto-export off",
            "atlas.check: OK: everything the exporter needs is readable (2 projects, 2 clusters)",
        ],
    );
    assert_eq!(checked.code, Some(0), "{}", checked.output());
    // One collection: every lookup once, Cluster9's details from discovery's listing, and
    // the snapshot of Cluster0's newest success.
    assert_eq!(
        calls(&fake),
        counts(&[
            ("get_backup_schedule", 2),
            ("get_cluster", 1),
            ("get_project", 2),
            ("get_snapshot", 1),
            ("list_clusters", 1),
            ("list_export_buckets", 2),
            ("list_export_jobs", 2),
            ("oauth_token", 1),
        ])
    );
    assert!(
        checked
            .stderr
            .contains("with the credentials from config file (service_account)"),
        "{}",
        checked.output()
    );
}

#[tokio::test]
async fn a_wrong_service_account_secret_is_the_credential_on_every_line() {
    let fake = estate();
    let wrong = Credential::ServiceAccount(CLIENT_ID, "mdb_sa_sk_wrongwrongwrongwrongwrong");
    let checked = check(&fake, wrong, "").await;
    let refused = format!("FAILED  oauth_token: HTTP 401 invalid_client (fix: {SA_REFUSED})");
    assert_lines(
        &checked,
        &[
            &format!("5f1a2b3c4d5e6f7a8b9c0d1e            {refused}"),
            &format!("5f1a2b3c4d5e6f7a8b9c0d1e  Cluster0  {refused}"),
            &format!("6a799efbc0eb9e7a177d7e0e            {refused}"),
            "atlas.check: FAILED: not ok: 2 of 2 projects, 1 of 1 clusters",
        ],
    );
    assert_eq!(checked.code, Some(1), "{}", checked.output());
    // No token, so no call reached the API; the refusal is shared, not asked per cluster.
    let counts = fake.requests();
    assert!(
        (1..=2).contains(&counts.endpoint("oauth_token")),
        "{counts:?}"
    );
    assert_eq!(counts.total, counts.endpoint("oauth_token"), "{counts:?}");
}

#[tokio::test]
async fn a_wrong_api_key_secret_is_the_credential_on_every_line() {
    let fake = estate();
    let wrong = Credential::ApiKey(PUBLIC_KEY, "0a1b2c3d-ffff-ffff-ffff-0123456789ab");
    let checked = check(&fake, wrong, "").await;
    assert_lines(
        &checked,
        &[
            &format!(
                "5f1a2b3c4d5e6f7a8b9c0d1e            FAILED  list_export_jobs: HTTP 401 UNEXPECTED_ERROR (fix: {KEY_REFUSED})"
            ),
            &format!(
                "5f1a2b3c4d5e6f7a8b9c0d1e  Cluster0  FAILED  list_export_jobs: HTTP 401 UNEXPECTED_ERROR (fix: {KEY_REFUSED})"
            ),
            &format!(
                "6a799efbc0eb9e7a177d7e0e            FAILED  list_clusters: HTTP 401 UNEXPECTED_ERROR (fix: {KEY_REFUSED})"
            ),
            "atlas.check: FAILED: not ok: 2 of 2 projects, 1 of 1 clusters",
        ],
    );
    assert_eq!(checked.code, Some(1), "{}", checked.output());
    // Every request was answered with a challenge: the key was never accepted. Both calls
    // were made, and nothing was looked up after.
    let counts = fake.requests();
    assert_eq!(counts.challenges, counts.total, "{counts:?}");
    for endpoint in ["list_clusters", "list_export_jobs"] {
        assert!(counts.endpoint(endpoint) >= 1, "{endpoint}: {counts:?}");
    }
    assert_eq!(counts.endpoint("get_project"), 0, "{counts:?}");
}

/// The check's lines for a credential that lacks a role in each project; the README shows them.
const MISSING_ROLE: &[&str] = &[
    "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"            ok      1 cluster, 1 export bucket",
    "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"  Cluster0  FAILED  list_export_jobs: HTTP 401 USER_UNAUTHORIZED (fix: grant the credential the Project Backup Manager role in this project)",
    "6a799efbc0eb9e7a177d7e0e  \"analytics\"                FAILED  list_export_buckets: HTTP 401 USER_UNAUTHORIZED (fix: grant the credential the Project Read Only role in this project)",
    "6a799efbc0eb9e7a177d7e0e  \"analytics\"      Cluster9  ok      1 export job, auto-export off",
    "atlas.check: FAILED: not ok: 1 of 2 projects, 1 of 2 clusters",
];

/// The README's example of the check's output is what the check prints.
#[test]
fn the_readme_shows_the_checks_own_lines() {
    let readme = include_str!("../README.md");
    let example = MISSING_ROLE.join("\n");
    assert!(
        readme.contains(&format!("```text\n{example}\n```")),
        "the README's --atlas.check example differs from what the check prints:\n{example}"
    );
}

#[tokio::test]
async fn a_missing_role_names_the_role_to_grant_in_that_project() {
    let fake = estate();
    // Atlas authenticates the request, then refuses it: 401 USER_UNAUTHORIZED.
    let exports = format!("/groups/{GROUP}/clusters/Cluster0/backup/exports");
    fake.inject(Fault::atlas_error(&exports, 401, "USER_UNAUTHORIZED"));
    let buckets = format!("/groups/{GROUP2}/backup/exportBuckets");
    fake.inject(Fault::atlas_error(&buckets, 401, "USER_UNAUTHORIZED"));
    let checked = check(&fake, GOOD_ACCOUNT, "").await;
    assert_lines(&checked, MISSING_ROLE);
    assert_eq!(checked.code, Some(1), "{}", checked.output());
    // With Cluster0's jobs unread, its schedule and snapshot are not looked up, as in a
    // collection.
    let counts = fake.requests();
    let seen = |group: &str, endpoint: &str| counts.in_project(group, endpoint);
    assert_eq!(
        [
            seen(GROUP, "get_project"),
            seen(GROUP, "get_cluster"),
            seen(GROUP2, "get_project"),
            seen(GROUP2, "list_clusters"),
            seen(GROUP2, "list_export_jobs"),
            seen(GROUP2, "get_backup_schedule"),
        ],
        [1; 6],
        "{counts:?}"
    );
    assert_eq!(seen(GROUP, "get_backup_schedule"), 0, "{counts:?}");
    assert_eq!(counts.endpoint("get_snapshot"), 0, "{counts:?}");
    // A 401 on a token the call found cached costs a new token and one more try (the
    // client's rule for a token Atlas revoked); whether the first token was cached for
    // Cluster0's call depends on which call asked first. Each project's buckets once, and
    // analytics' refused ones perhaps twice.
    assert!(
        (1..=2).contains(&seen(GROUP, "list_export_jobs")),
        "{counts:?}"
    );
    assert!(
        (2..=3).contains(&counts.endpoint("list_export_buckets")),
        "{counts:?}"
    );
    assert!(
        (1..=3).contains(&counts.endpoint("oauth_token")),
        "{counts:?}"
    );
}

#[tokio::test]
async fn a_host_not_on_the_access_list_is_told_to_add_its_egress_ip() {
    let fake = estate();
    fake.inject(Fault::atlas_error(
        "/groups/",
        403,
        "IP_ADDRESS_NOT_ON_ACCESS_LIST",
    ));
    let checked = check(&fake, GOOD_ACCOUNT, "").await;
    let refused = format!("HTTP 403 IP_ADDRESS_NOT_ON_ACCESS_LIST (fix: {ACCESS_LIST})");
    assert_lines(
        &checked,
        &[
            &format!("5f1a2b3c4d5e6f7a8b9c0d1e            FAILED  list_export_jobs: {refused}"),
            &format!("5f1a2b3c4d5e6f7a8b9c0d1e  Cluster0  FAILED  list_export_jobs: {refused}"),
            &format!("6a799efbc0eb9e7a177d7e0e            FAILED  list_clusters: {refused}"),
            "atlas.check: FAILED: not ok: 2 of 2 projects, 1 of 1 clusters",
        ],
    );
    assert_eq!(checked.code, Some(1), "{}", checked.output());
    assert_eq!(
        calls(&fake),
        counts(&[
            ("list_clusters", 1),
            ("list_export_jobs", 1),
            ("oauth_token", 1)
        ])
    );
}

#[tokio::test]
async fn a_wrong_group_id_and_a_wrong_cluster_name_are_told_apart() {
    let fake = estate();
    // The config names Cluster0, which is gone, and a project Atlas does not have.
    fake.remove_cluster(GROUP, "Cluster0");
    let extra = format!("  - group_id: {GROUP3}\n    clusters: [Cluster5]\n");
    let checked = check(&fake, GOOD_ACCOUNT, &extra).await;
    let group = "HTTP 404 GROUP_NOT_FOUND (fix: no project has this group_id, or the credential's organization does not hold it: check the target's group_id)";
    let cluster = "HTTP 404 CLUSTER_NOT_FOUND (fix: no cluster of this name in the project: check the target's cluster names)";
    assert_lines(
        &checked,
        &[
            "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"            ok      1 cluster, 1 export bucket",
            &format!(
                "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"  Cluster0  FAILED  get_cluster, list_export_jobs: {cluster}"
            ),
            "6a799efbc0eb9e7a177d7e0e  \"analytics\"                ok      1 cluster, 0 export buckets (not watched: 1 shared tier or Flex)",
            "6a799efbc0eb9e7a177d7e0e  \"analytics\"      Cluster9  ok      1 export job, auto-export off",
            &format!(
                "7b8a9c0d1e2f3a4b5c6d7e8f                             FAILED  get_project, list_export_buckets: {group}"
            ),
            &format!(
                "7b8a9c0d1e2f3a4b5c6d7e8f                   Cluster5  FAILED  get_cluster, list_export_jobs: {group}"
            ),
            "atlas.check: FAILED: not ok: 1 of 3 projects, 2 of 3 clusters",
        ],
    );
    assert_eq!(checked.code, Some(1), "{}", checked.output());
    assert_eq!(
        calls(&fake),
        counts(&[
            ("get_backup_schedule", 1),
            ("get_cluster", 2),
            ("get_project", 3),
            ("list_clusters", 1),
            ("list_export_buckets", 3),
            ("list_export_jobs", 3),
            ("oauth_token", 1),
        ])
    );
}

#[tokio::test]
async fn an_expired_snapshot_is_fine() {
    let fake = estate();
    // Atlas removed the snapshot Cluster0's newest export holds: 404 for it.
    fake.expire_snapshot(GROUP, "Cluster0", SNAPSHOT);
    let checked = check(&fake, GOOD_ACCOUNT, "").await;
    assert_lines(
        &checked,
        &[
            "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"            ok  1 cluster, 1 export bucket",
            "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"  Cluster0  ok  2 export jobs, auto-export on, the newest export's snapshot has expired (fine: Atlas removes them)",
            "6a799efbc0eb9e7a177d7e0e  \"analytics\"                ok  1 cluster, 0 export buckets (not watched: 1 shared tier or Flex)",
            "6a799efbc0eb9e7a177d7e0e  \"analytics\"      Cluster9  ok  1 export job, auto-export off",
            "atlas.check: OK: everything the exporter needs is readable (2 projects, 2 clusters)",
        ],
    );
    assert_eq!(checked.code, Some(0), "{}", checked.output());
    assert_eq!(fake.requests().endpoint("get_snapshot"), 1);
}

#[tokio::test]
async fn a_mix_across_projects_is_told_project_by_project() {
    let fake = estate();
    // analytics: Atlas fails to list its clusters, retries included. A third project: its
    // cluster's exports are rate-limited, retries included.
    fake.inject(Fault::status(&format!("/groups/{GROUP2}/clusters"), 503));
    fake.add_cluster(GROUP3, "Cluster5");
    fake.set_group_name(GROUP3, "billing");
    let exports = format!("/groups/{GROUP3}/clusters/Cluster5/backup/exports");
    fake.inject(Fault::atlas_error(&exports, 429, "RATE_LIMITED"));
    let extra = format!("  - group_id: {GROUP3}\n    clusters: [Cluster5]\n");
    let checked = check(&fake, GOOD_ACCOUNT, &extra).await;
    assert_lines(
        &checked,
        &[
            "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"            ok      1 cluster, 1 export bucket",
            "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"  Cluster0  ok      2 export jobs, auto-export on",
            "6a799efbc0eb9e7a177d7e0e                             FAILED  list_clusters: HTTP 503 SERVICE_UNAVAILABLE (fix: try again later: Atlas failed, still after retries)",
            "7b8a9c0d1e2f3a4b5c6d7e8f  \"billing\"                  ok      1 cluster, 0 export buckets",
            "7b8a9c0d1e2f3a4b5c6d7e8f  \"billing\"        Cluster5  FAILED  list_export_jobs: HTTP 429 RATE_LIMITED (fix: try again later: Atlas rate-limited the credential, still after retries)",
            "atlas.check: FAILED: not ok: 1 of 3 projects, 1 of 2 clusters",
        ],
    );
    assert_eq!(checked.code, Some(1), "{}", checked.output());
    let counts = fake.requests();
    // A 503 is tried four times; the 429s as often as the deadline allows, at least twice.
    assert_eq!(counts.in_project(GROUP2, "list_clusters"), 4, "{counts:?}");
    assert!(
        counts.in_project(GROUP3, "list_export_jobs") >= 2,
        "{counts:?}"
    );
    assert_eq!(
        counts.in_project(GROUP, "list_export_jobs"),
        1,
        "{counts:?}"
    );
    // analytics has no cluster to collect: the collection does not look it up.
    assert_eq!(counts.in_project(GROUP2, "get_project"), 0, "{counts:?}");
    assert_eq!(counts.endpoint("get_project"), 2, "{counts:?}");
    assert_eq!(counts.endpoint("list_export_buckets"), 2, "{counts:?}");
}

#[tokio::test]
async fn no_secret_appears_in_its_output() {
    let wrong_key = Credential::ApiKey(PUBLIC_KEY, "0a1b2c3d-ffff-ffff-ffff-0123456789ab");
    let wrong_secret = Credential::ServiceAccount(CLIENT_ID, "mdb_sa_sk_wrongwrongwrongwrongwrong");
    let good_key = Credential::ApiKey(PUBLIC_KEY, PRIVATE_KEY);
    for credential in [GOOD_ACCOUNT, wrong_secret, good_key, wrong_key] {
        let fake = estate();
        let base_url = fake.start().await.unwrap();
        let dir = support::TempDir::new("atlas-check-secrets");
        let path = dir.write("exporter.yml", &config(&base_url, credential, "10s", ""));
        let checked = run(&path, &["--log.level", "debug"]).await;
        let output = checked.output();
        let mut secrets = vec![
            PUBLIC_KEY.to_owned(),
            PRIVATE_KEY.to_owned(),
            CLIENT_ID.to_owned(),
            CLIENT_SECRET.to_owned(),
            "0a1b2c3d-ffff-ffff-ffff-0123456789ab".to_owned(),
            "mdb_sa_sk_wrongwrongwrongwrongwrong".to_owned(),
        ];
        secrets.extend(fake.issued_tokens());
        for secret in &secrets {
            assert!(!output.contains(secret.as_str()), "{secret} in:\n{output}");
        }
        assert!(fake.requests().total > 0, "the check called the stand-in");
        assert!(checked.stdout.contains("atlas.check: "), "{output}");
    }
}

#[tokio::test]
async fn it_finishes_within_collection_timeout_against_a_hanging_atlas() {
    let fake = estate();
    let base_url = fake.start().await.unwrap();
    // Atlas accepts every API call and never answers; the token still comes.
    fake.inject(Fault::hang("/groups/"));
    let dir = support::TempDir::new("atlas-check-hang");
    let path = dir.write("exporter.yml", &config(&base_url, GOOD_ACCOUNT, "2s", ""));
    let checked = run(&path, &[]).await;
    let slow = "timed out: Atlas did not answer in time (fix: check that this host reaches atlas.base_url; if Atlas is this slow every time, raise atlas.request_timeout and collection.timeout)";
    assert_lines(
        &checked,
        &[
            "5f1a2b3c4d5e6f7a8b9c0d1e            unchecked  not looked up: the exporter looks projects up once it has read some cluster's export jobs",
            &format!("5f1a2b3c4d5e6f7a8b9c0d1e  Cluster0  FAILED     list_export_jobs: {slow}"),
            &format!("6a799efbc0eb9e7a177d7e0e            FAILED     list_clusters: {slow}"),
            "atlas.check: FAILED: not ok: 2 of 2 projects, 1 of 1 clusters",
        ],
    );
    assert_eq!(checked.code, Some(1), "{}", checked.output());
    // The process, start-up included, ends within collection.timeout and a little for
    // starting a process on a busy machine.
    assert!(
        checked.elapsed < Duration::from_millis(2_000 + 1_500),
        "{:?}\n{}",
        checked.elapsed,
        checked.output()
    );
    let counts = fake.requests();
    assert_eq!(counts.endpoint("list_export_jobs"), 1, "{counts:?}");
    assert_eq!(counts.endpoint("list_clusters"), 1, "{counts:?}");
}

#[tokio::test]
async fn config_errors_are_those_of_config_check() {
    let dir = support::TempDir::new("atlas-check-config");
    let bad = config("http://127.0.0.1:9", GOOD_ACCOUNT, "10s", "").replace(GROUP2, "6a79-not-hex");
    let path = dir.write("exporter.yml", &bad);
    let checked = run(&path, &[]).await;
    let config_check = support::Spawn::exporter()
        .arg("--config.check")
        .config(&path)
        .output();
    assert_eq!(checked.code, Some(1), "{}", checked.output());
    assert_eq!(config_check.code, Some(1));
    assert_eq!(checked.stderr, config_check.stderr, "{}", checked.output());
    assert!(checked.stderr.contains("group_id"), "{}", checked.output());
    assert_eq!(checked.stdout, "");
}

#[tokio::test]
async fn every_project_the_credential_sees_has_its_line_under_all_projects() {
    let fake = estate();
    fake.set_group_name(GROUP3, "billing");
    fake.add_cluster(GROUP3, "Cluster5");
    // billing's clusters are refused to this credential.
    let exports = format!("/groups/{GROUP3}/clusters/Cluster5/backup/exports");
    fake.inject(Fault::atlas_error(&exports, 401, "USER_UNAUTHORIZED"));
    let extra = "discovery:\n  all_projects: true\n";
    let checked = check(&fake, GOOD_ACCOUNT, extra).await;
    assert_lines(
        &checked,
        &[
            "discovery.all_projects                               ok      listed the projects",
            "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"            ok      1 cluster, 1 export bucket",
            "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"  Cluster0  ok      2 export jobs, auto-export on",
            "6a799efbc0eb9e7a177d7e0e  \"analytics\"                ok      1 cluster, 0 export buckets (not watched: 1 shared tier or Flex)",
            "6a799efbc0eb9e7a177d7e0e  \"analytics\"      Cluster9  ok      1 export job, auto-export off",
            "7b8a9c0d1e2f3a4b5c6d7e8f  \"billing\"                  ok      1 cluster, 0 export buckets",
            "7b8a9c0d1e2f3a4b5c6d7e8f  \"billing\"        Cluster5  FAILED  list_export_jobs: HTTP 401 USER_UNAUTHORIZED (fix: grant the credential the Project Backup Manager role in this project)",
            "atlas.check: FAILED: not ok: 1 of 3 clusters",
        ],
    );
    assert_eq!(checked.code, Some(1), "{}", checked.output());
    let counts = fake.requests();
    assert_eq!(counts.endpoint("list_projects"), 1, "{counts:?}");
    // The names came with the project listing: no project is looked up on its own.
    assert_eq!(counts.endpoint("get_project"), 0, "{counts:?}");
    for group in [GROUP2, GROUP3] {
        assert_eq!(counts.in_project(group, "list_clusters"), 1, "{counts:?}");
    }
}

#[tokio::test]
async fn an_export_job_id_atlas_does_not_know_is_named() {
    let fake = estate();
    fake.add_cluster(GROUP3, "Cluster5");
    fake.set_group_name(GROUP3, "billing");
    fake.put_job(GROUP3, "Cluster5", job("605ccba3c1c7613f423e1587").build());
    let extra = format!(
        "  - group_id: {GROUP3}\n    clusters:\n      - name: Cluster5\n        \
         export_job_ids: [605ccba3c1c7613f423e1587, 605ccba3c1c7613f423e1599]\n"
    );
    let checked = check(&fake, GOOD_ACCOUNT, &extra).await;
    assert_lines(
        &checked,
        &[
            "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"            ok      1 cluster, 1 export bucket",
            "5f1a2b3c4d5e6f7a8b9c0d1e  \"payments-prod\"  Cluster0  ok      2 export jobs, auto-export on",
            "6a799efbc0eb9e7a177d7e0e  \"analytics\"                ok      1 cluster, 0 export buckets (not watched: 1 shared tier or Flex)",
            "6a799efbc0eb9e7a177d7e0e  \"analytics\"      Cluster9  ok      1 export job, auto-export off",
            "7b8a9c0d1e2f3a4b5c6d7e8f  \"billing\"                  ok      1 cluster, 0 export buckets",
            "7b8a9c0d1e2f3a4b5c6d7e8f  \"billing\"        Cluster5  FAILED  get_export_job: HTTP 404 RESOURCE_NOT_FOUND: export job 605ccba3c1c7613f423e1599 does not exist (fix: check the cluster's export_job_ids)",
            "atlas.check: FAILED: not ok: 1 of 3 clusters",
        ],
    );
    assert_eq!(checked.code, Some(1), "{}", checked.output());
    assert_eq!(fake.requests().in_project(GROUP3, "get_export_job"), 2);
}
