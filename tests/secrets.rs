//! No key, secret or token anywhere a person or a scraper can see: the real binary runs at
//! `--log.level debug` in both log formats against stand-ins that fail and succeed, and its
//! stderr, stdout, `/` and `/metrics` are searched for every credential and every access token
//! the stand-in issued.

use std::io::Read;
use std::path::Path;
use std::thread::JoinHandle;

use fake_atlas::{FakeAtlas, Fault, job};

use crate::support::{self, GROUP, Spawn, TempDir};

const CREDENTIAL_VARS: [&str; 4] = [
    "MONGODB_ATLAS_PUBLIC_API_KEY",
    "MONGODB_ATLAS_PRIVATE_API_KEY",
    "MONGODB_ATLAS_CLIENT_ID",
    "MONGODB_ATLAS_CLIENT_SECRET",
];

/// Values that are wrong, and so sent to Atlas and refused: they must not show either.
const WRONG_PRIVATE_KEY: &str = "ffffffff-wrong-private-key-0123456789";
const WRONG_CLIENT_SECRET: &str = "mdb_sa_sk_rotatedrotatedrotatedrotated";

/// How the credential reaches the exporter.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// Inline in the config file.
    Inline,
    /// In `*_file` files beside the config.
    Files,
    /// The Atlas CLI's environment variables.
    Environment,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    ApiKey,
    ServiceAccount,
}

/// One run of the binary: the credential, where it comes from, and whether it is the right one.
struct Run<'a> {
    kind: Kind,
    source: Source,
    /// The secret half to give (the right one or a wrong one).
    secret: &'a str,
    /// The value `atlas_backup_export_up` must have on every scrape.
    up: f64,
}

/// The exporter binary, started and scraped; its output once it is stopped.
struct Captured {
    stderr: String,
    stdout: String,
    answers: Vec<String>,
}

fn reader(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Writes the config for `run` into `dir` and returns its path and the environment to set.
fn write_config(
    dir: &Path,
    base_url: &str,
    run: &Run,
) -> (std::path::PathBuf, Vec<(&'static str, String)>) {
    let (first_key, second_key, first_value, env_names) = match run.kind {
        Kind::ApiKey => (
            "public_key",
            "private_key",
            support::PUBLIC_KEY,
            [CREDENTIAL_VARS[0], CREDENTIAL_VARS[1]],
        ),
        Kind::ServiceAccount => (
            "client_id",
            "client_secret",
            support::CLIENT_ID,
            [CREDENTIAL_VARS[2], CREDENTIAL_VARS[3]],
        ),
    };
    let section = match run.kind {
        Kind::ApiKey => "api_key",
        Kind::ServiceAccount => "service_account",
    };
    let mut env = Vec::new();
    let auth = match run.source {
        Source::Inline => format!(
            "  auth:\n    {section}:\n      {first_key}: {first_value}\n      {second_key}: {}\n",
            run.secret
        ),
        Source::Files => {
            let first = dir.join(first_key);
            let second = dir.join(second_key);
            std::fs::write(&first, format!("{first_value}\n")).unwrap();
            std::fs::write(&second, format!("{}\n", run.secret)).unwrap();
            format!(
                "  auth:\n    {section}:\n      {first_key}_file: {}\n      {second_key}_file: {}\n",
                first.display(),
                second.display()
            )
        }
        Source::Environment => {
            env.push((env_names[0], first_value.to_owned()));
            env.push((env_names[1], run.secret.to_owned()));
            String::new()
        }
    };
    let yaml = format!(
        "atlas:\n  base_url: {base_url}\n  request_timeout: 1s\n{auth}targets:\n  - group_id: {GROUP}\n    clusters: [Cluster0, Cluster1]\ncollection:\n  timeout: 2s\n"
    );
    let path = dir.join("exporter.yml");
    std::fs::write(&path, yaml).unwrap();
    (path, env)
}

/// Starts the binary, scrapes it twice (calling `between` in between) and reads `/`, then
/// stops it.
async fn run_binary(
    dir: &Path,
    base_url: &str,
    run: &Run<'_>,
    format: &str,
    between: impl FnOnce(),
) -> Captured {
    let (config, env) = write_config(dir, base_url, run);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut exporter = Spawn::exporter()
        .config(&config)
        // Port 0: the binary takes a free port and names it in its `listening` line.
        .args(["--web.listen-address", "127.0.0.1:0"])
        .args(["--log.level", "debug", "--log.format", format])
        .envs(env)
        .start_with_stdout(true);
    let stdout = reader(exporter.stdout());
    // The listener is bound before the line is logged: the first request gets through.
    let address = exporter.log.listening_address().await;

    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("http://{address}{path}"))
            .header("X-Prometheus-Scrape-Timeout-Seconds", "3")
            .send()
    };
    let mut answers = Vec::new();
    answers.push(get("/metrics").await.unwrap().text().await.unwrap());
    between();
    answers.push(get("/metrics").await.unwrap().text().await.unwrap());
    answers.push(get("/").await.unwrap().text().await.unwrap());
    let stderr = exporter.kill();
    Captured {
        stderr,
        stdout: stdout.join().unwrap(),
        answers,
    }
}

/// Asserts that nothing captured holds any of `secrets`, and that the scrapes said `up`.
fn assert_clean(captured: &Captured, secrets: &[String], run: &Run, format: &str) {
    let context = format!("{:?} from {:?}, {format}", run.kind, run.source);
    let places = [
        ("stderr", &captured.stderr),
        ("stdout", &captured.stdout),
        ("first /metrics", &captured.answers[0]),
        ("second /metrics", &captured.answers[1]),
        ("/", &captured.answers[2]),
    ];
    for secret in secrets {
        assert!(secret.len() >= 8, "too short to search for: {secret:?}");
        for (place, text) in places {
            assert!(
                !text.contains(secret.as_str()),
                "{context}: {place} holds {secret:?}:\n{text}"
            );
        }
    }
    for (place, answer) in &places[2..4] {
        let expected = format!("cluster_name=\"Cluster0\"}} {}", run.up);
        assert!(
            answer
                .lines()
                .any(|l| l.starts_with("atlas_backup_export_up{") && l.ends_with(&expected)),
            "{context}: {place} lacks up {}:\n{answer}",
            run.up
        );
    }
}

/// Asserts that the log holds `message`: the runs really went through the paths searched.
fn assert_logged(captured: &Captured, message: &str) {
    assert!(
        captured.stderr.contains(message),
        "no {message:?} in:\n{}",
        captured.stderr
    );
}

fn fake() -> FakeAtlas {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    fake.add_cluster(GROUP, "Cluster1");
    fake.put_job(
        GROUP,
        "Cluster0",
        job("605ccba3c1c7613f423e1585")
            .state("Failed")
            .state_reason("EXPORT_BUCKET_NOT_ACCESSIBLE", "Access denied")
            .build(),
    );
    fake
}

fn all_credentials() -> Vec<String> {
    [
        support::PUBLIC_KEY,
        support::PRIVATE_KEY,
        support::CLIENT_ID,
        support::CLIENT_SECRET,
        WRONG_PRIVATE_KEY,
        WRONG_CLIENT_SECRET,
    ]
    .map(str::to_owned)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_never_show_in_logfmt_logs_or_answers() {
    api_key_runs("logfmt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_never_show_in_json_logs_or_answers() {
    api_key_runs("json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_secrets_and_tokens_never_show_in_logfmt_logs_or_answers() {
    service_account_runs("logfmt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_secrets_and_tokens_never_show_in_json_logs_or_answers() {
    service_account_runs("json").await;
}

/// Three runs with an API key: succeeding, refused, and Atlas failing.
async fn api_key_runs(format: &str) {
    let dir = TempDir::new(&format!("secrets-api-key-{format}"));
    // Succeeding, with the digest nonce going stale between the scrapes.
    let fake = fake();
    let base_url = fake.start().await.unwrap();
    let run = Run {
        kind: Kind::ApiKey,
        source: Source::Inline,
        secret: support::PRIVATE_KEY,
        up: 1.0,
    };
    let captured = run_binary(dir.path(), &base_url, &run, format, || fake.expire_nonces()).await;
    assert_clean(&captured, &all_credentials(), &run, format);

    // A wrong private key: every call refused with 401.
    let run = Run {
        kind: Kind::ApiKey,
        source: Source::Environment,
        secret: WRONG_PRIVATE_KEY,
        up: 0.0,
    };
    let captured = run_binary(dir.path(), &base_url, &run, format, || {}).await;
    assert_clean(&captured, &all_credentials(), &run, format);

    // The right key, and Atlas answering 500 to everything: retried, logged, given up.
    fake.inject(Fault::status("/backup/exports", 500));
    let run = Run {
        kind: Kind::ApiKey,
        source: Source::Files,
        secret: support::PRIVATE_KEY,
        up: 0.0,
    };
    let captured = run_binary(dir.path(), &base_url, &run, format, || {}).await;
    // A debug line, with the error it retries.
    assert_logged(&captured, "retrying Atlas call");
    assert_clean(&captured, &all_credentials(), &run, format);
    fake.shutdown();
}

/// Three runs with a service account: succeeding, refused, and Atlas failing.
async fn service_account_runs(format: &str) {
    let dir = TempDir::new(&format!("secrets-service-account-{format}"));
    let fake = fake();
    let base_url = fake.start().await.unwrap();
    // Succeeding, with the token revoked between the scrapes: a second token is issued.
    let run = Run {
        kind: Kind::ServiceAccount,
        source: Source::Files,
        secret: support::CLIENT_SECRET,
        up: 1.0,
    };
    let captured = run_binary(dir.path(), &base_url, &run, format, || fake.revoke_tokens()).await;
    let tokens = fake.issued_tokens();
    assert_eq!(tokens.len(), 2, "{format}");
    assert_logged(&captured, "fetched an OAuth token");
    assert_logged(&captured, "Atlas refused the cached OAuth token");
    let mut secrets = all_credentials();
    secrets.extend(tokens);
    assert_clean(&captured, &secrets, &run, format);

    // A rotated secret: the token endpoint answers 401 invalid_client.
    let run = Run {
        kind: Kind::ServiceAccount,
        source: Source::Inline,
        secret: WRONG_CLIENT_SECRET,
        up: 0.0,
    };
    let captured = run_binary(dir.path(), &base_url, &run, format, || {}).await;
    assert_logged(&captured, "invalid_client");
    assert_clean(&captured, &secrets, &run, format);

    // Tokens issued, then every listing failing with 503.
    fake.inject(Fault::status("/backup/exports", 503));
    let run = Run {
        kind: Kind::ServiceAccount,
        source: Source::Environment,
        secret: support::CLIENT_SECRET,
        up: 0.0,
    };
    let captured = run_binary(dir.path(), &base_url, &run, format, || {}).await;
    assert_logged(&captured, "retrying Atlas call");
    secrets.extend(fake.issued_tokens());
    assert_clean(&captured, &secrets, &run, format);
    fake.shutdown();
}

#[test]
fn config_mistakes_around_secrets_do_not_quote_them() {
    let dir = TempDir::new("secrets-config");
    let secret = "0a1b2c3d-leaky-secret-value";
    let cases = [
        format!("atlas:\n  auth:\n    api_key: {secret}\n"),
        format!("atlas:\n  auth: {secret}\n"),
        format!("atlas:\n  auth:\n    api_key:\n      - {secret}\n"),
        format!(
            "atlas:\n  auth:\n    service_account:\n      client_id: x\n      client_secret: [{secret}]\n"
        ),
        format!(
            "atlas:\n  auth:\n    api_key:\n      public_key: a\n      private_key: {{{secret}: 1}}\n"
        ),
        format!("atlas:\n  auth:\n    api_key:\n      public_key: a\n      privat_key: {secret}\n"),
        format!(
            "atlas:\n  auth:\n    api_key:\n      public_key: a\n      private_key: {secret}\n      private_key_file: /nonexistent\n"
        ),
        format!("atlas:\n  private_key: {secret}\n"),
    ];
    for (i, case) in cases.iter().enumerate() {
        let path = dir.write(
            &format!("case{i}.yml"),
            &format!("{case}targets:\n  - group_id: {GROUP}\n"),
        );
        let output = Spawn::exporter()
            .arg("--config.check")
            .config(&path)
            .output();
        assert_eq!(output.code, Some(1), "case {i}: {case}");
        let stderr = &output.stderr;
        assert!(stderr.contains(&format!("case{i}.yml")), "{stderr}");
        assert!(
            !stderr.contains(secret),
            "case {i} quotes the secret: {stderr}"
        );
        assert!(!output.stdout.contains(secret));
    }
}
