//! The binary as a user runs it: flags, `--config.check`, start-up failures, serving.

use crate::support::{Exited, Spawn, TempDir};

fn run(args: &[&str], env: &[(&str, &str)]) -> Exited {
    Spawn::exporter()
        .args(args)
        .envs(env.iter().copied())
        .output()
}

const VALID: &str = "\
atlas:
  auth:
    api_key:
      public_key: abcdefgh
      private_key: 0000-1111-2222
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - Cluster0
      - name: Cluster1
        export_job_ids: [605ccba3c1c7613f423e1585]
    labels: {env: prod}
";

#[test]
fn version_and_help_work() {
    let version = run(&["--version"], &[]);
    assert!(version.success());
    assert_eq!(
        version.stdout.trim(),
        format!("atlas-backup-exporter {}", env!("CARGO_PKG_VERSION"))
    );
    let help = run(&["--help"], &[]);
    assert!(help.success());
    let help = help.stdout;
    for flag in [
        "--config.file",
        "--web.listen-address",
        "--web.telemetry-path",
        "--log.level",
        "--log.format",
        "--config.check",
        "--atlas.check",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}

/// The binary allocates through jemalloc with one arena (src/main.rs): the option string is read
/// by name at start-up, so a misspelt symbol would be ignored without a word. jemalloc prints its
/// options at exit when the environment asks it to.
#[cfg(not(target_env = "msvc"))]
#[test]
fn the_binary_allocates_with_jemalloc_and_one_arena() {
    let exited = run(&["--version"], &[("_RJEM_MALLOC_CONF", "stats_print:true")]);
    assert!(exited.success(), "{}", exited.stderr);
    let options: Vec<&str> = exited
        .stderr
        .lines()
        .filter(|line| line.trim_start().starts_with("opt.narenas:"))
        .collect();
    assert_eq!(options, ["  opt.narenas: 1"], "{}", exited.stderr);
}

#[test]
fn config_check_prints_the_plan_and_exits_zero() {
    let dir = TempDir::new("check-ok");
    let path = dir.write("exporter.yml", VALID);
    let output = run(
        &["--config.check", "--config.file", path.to_str().unwrap()],
        &[],
    );
    let stdout = &output.stdout;
    assert!(output.success(), "{stdout}{}", output.stderr);
    assert!(stdout.contains("5f1a2b3c4d5e6f7a8b9c0d1e"), "{stdout}");
    assert!(
        stdout.contains("Cluster0") && stdout.contains("Cluster1"),
        "{stdout}"
    );
    assert!(stdout.contains("605ccba3c1c7613f423e1585"), "{stdout}");
    assert!(
        !stdout.contains("0000-1111-2222") && !stdout.contains("abcdefgh"),
        "{stdout}"
    );
}

#[test]
fn config_check_reports_errors_with_file_line_and_key_and_exits_one() {
    let dir = TempDir::new("check-bad");
    let path = dir.write(
        "bad.yml",
        &VALID.replace("5f1a2b3c4d5e6f7a8b9c0d1e", "5f1a-not-hex"),
    );
    let output = run(
        &["--config.check", "--config.file", path.to_str().unwrap()],
        &[],
    );
    assert_eq!(output.code, Some(1));
    let stderr = &output.stderr;
    assert!(stderr.contains("bad.yml"), "{stderr}");
    assert!(stderr.contains("line 7"), "{stderr}");
    assert!(stderr.contains("group_id"), "{stderr}");
}

#[test]
fn start_up_fails_before_serving_on_a_bad_config() {
    let dir = TempDir::new("start-bad");
    let path = dir.write(
        "unknown-key.yml",
        &VALID.replace("    labels: {env: prod}", "    lables: {env: prod}"),
    );
    let output = run(
        &[
            "--config.file",
            path.to_str().unwrap(),
            "--web.listen-address",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(output.code, Some(1));
    let stderr = &output.stderr;
    assert!(
        stderr.contains("unknown-key.yml") && stderr.contains("line 12"),
        "{stderr}"
    );
    assert!(stderr.contains("lables"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_named() {
    let output = run(&["--config.file", "/nonexistent/exporter.yml"], &[]);
    assert_eq!(output.code, Some(1));
    assert!(output.stderr.contains("/nonexistent/exporter.yml"));
}

#[test]
fn without_auth_the_environment_is_required_and_named() {
    let dir = TempDir::new("env");
    let no_auth = "targets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n";
    let path = dir.write("noauth.yml", no_auth);
    let args = ["--config.check", "--config.file", path.to_str().unwrap()];
    let output = run(&args, &[]);
    assert_eq!(output.code, Some(1));
    let stderr = &output.stderr;
    for var in [
        "MONGODB_ATLAS_CLIENT_ID",
        "MONGODB_ATLAS_CLIENT_SECRET",
        "MONGODB_ATLAS_PUBLIC_API_KEY",
        "MONGODB_ATLAS_PRIVATE_API_KEY",
    ] {
        assert!(stderr.contains(var), "{var}: {stderr}");
    }
    let output = run(
        &args,
        &[
            ("MONGODB_ATLAS_PUBLIC_API_KEY", "pub"),
            ("MONGODB_ATLAS_PRIVATE_API_KEY", "priv-secret-value"),
        ],
    );
    assert!(output.success(), "{}", output.stderr);
    assert!(!output.stdout.contains("priv-secret-value"));
}

#[test]
fn the_binary_serves_and_stops_cleanly_on_sigterm() {
    let dir = TempDir::new("serve");
    // An Atlas that is not there: the exporter still serves, with up 0.
    let path = dir.write(
        "exporter.yml",
        &VALID.replace(
            "atlas:\n",
            "atlas:\n  base_url: http://127.0.0.1:9\n  request_timeout: 1s\n",
        ),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (exporter, body) = runtime.block_on(async {
        let exporter = Spawn::exporter()
            .config(&path)
            .args(["--log.format", "json"])
            .serve()
            .await;
        let response = reqwest::Client::new()
            .get(exporter.url("/metrics"))
            .header("X-Prometheus-Scrape-Timeout-Seconds", "3")
            .send()
            .await
            .unwrap();
        (exporter, response.text().await.unwrap())
    });
    assert!(body.contains("atlas_backup_export_up{group_id=\"5f1a2b3c4d5e6f7a8b9c0d1e\",cluster_name=\"Cluster0\",env=\"prod\"} 0"), "{body}");
    assert!(body.contains("atlas_backup_exporter_build_info{"), "{body}");
    // SIGTERM: exits 0.
    let (code, stderr) = exporter.into_running().stop();
    assert_eq!(code, Some(0));
    let first = stderr.lines().next().unwrap_or_default();
    let parsed: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert!(parsed.get("level").is_some(), "{first}");
    assert!(!stderr.contains("0000-1111-2222"), "{stderr}");
}

#[tokio::test]
async fn listen_addresses_follow_the_exporter_conventions() {
    use atlas_backup_exporter::web::bind;
    // :PORT is every interface: the IPv6 wildcard (which takes IPv4 too) or, without IPv6, IPv4's.
    let every = bind(":0").await.unwrap().local_addr().unwrap();
    assert!(every.ip().is_unspecified(), "{every}");
    let v4 = bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    assert_eq!(v4.ip().to_string(), "127.0.0.1");
    if let Ok(v6) = bind("[::1]:0").await {
        assert_eq!(v6.local_addr().unwrap().ip().to_string(), "::1");
    }
    // The wildcard takes IPv4 as well.
    let listener = bind(":0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    accept.await.unwrap().unwrap();
    let error = bind(":port").await.unwrap_err().to_string();
    assert!(error.contains(":port"), "{error}");
}

#[test]
fn a_telemetry_path_the_exporter_cannot_serve_is_refused() {
    for path in [
        "metrics",
        "/probe",
        "/sd",
        "/",
        "/-/healthy",
        "/-/ready",
        "/{x}",
        "/*rest",
        "/a//b",
    ] {
        let output = run(&["--web.telemetry-path", path, "--config.check"], &[]);
        assert_eq!(output.code, Some(1), "{path}");
        let stderr = &output.stderr;
        assert!(stderr.contains("--web.telemetry-path"), "{path}: {stderr}");
    }
}

#[test]
fn an_external_url_prometheus_cannot_use_is_refused() {
    for url in [
        "ftp://exporter/",
        "https://exporter/?x=1",
        "http://exporter:99999/",
    ] {
        let output = run(&["--web.external-url", url, "--config.check"], &[]);
        assert_eq!(output.code, Some(1), "{url}");
        let stderr = &output.stderr;
        assert!(stderr.contains("--web.external-url"), "{url}: {stderr}");
    }
}
