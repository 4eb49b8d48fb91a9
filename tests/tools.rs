//! Finding the external programs (Prometheus's and Alertmanager's tools, the Kubernetes schema
//! validator) that some tests run.
//!
//! CI installs them (`.ci/run` runs `apt-get install prometheus prometheus-alertmanager` and
//! `pip install kubernetes-validate`); on a developer machine without them the tests that need them
//! say loudly that they checked nothing, and with `CI=true` they fail instead, so a CI image that
//! lost a package cannot pass by skipping.

use std::io::Write;
use std::path::PathBuf;

/// Returns the path of the program `name` found on `PATH` (trying the names Debian gives it), or
/// `None` after a loud skip message when it is missing. Panics instead when `CI` is `true`.
pub fn tool(name: &str) -> Option<PathBuf> {
    if let Some(path) = names_of(name).iter().find_map(|n| find_on_path(n)) {
        return Some(path);
    }
    let install = install_hint(name);
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("`{name}` is not on PATH and CI=true: install {install}");
    }
    // Through the stderr handle, not eprintln!: the test harness captures the macros' output of
    // passing tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\nSKIPPED: `{name}` is not on PATH, so this test checked NOTHING.\n\
         Install {install} to run it;\n\
         with CI=true a missing `{name}` fails the test.\n{bar}\n",
        bar = "!".repeat(78)
    );
    None
}

/// How to install the program `name`: most come from Debian packages, the Kubernetes schema
/// validator from PyPI.
fn install_hint(name: &str) -> String {
    match name {
        "kubernetes-validate" => "the Python package `kubernetes-validate` \
                                  (pip install kubernetes-validate; .ci/run pins its version)"
            .to_owned(),
        _ => {
            let package = package_of(name);
            format!("the Debian package `{package}` (apt-get install -y {package})")
        }
    }
}

/// Like [`tool`], but for programs that are a bonus: no message and no panic when missing.
pub fn optional_tool(name: &str) -> Option<PathBuf> {
    names_of(name).iter().find_map(|n| find_on_path(n))
}

/// The names a program goes by: Debian installs Alertmanager as `prometheus-alertmanager`.
fn names_of(name: &str) -> Vec<&str> {
    match name {
        "alertmanager" | "prometheus-alertmanager" => {
            vec!["prometheus-alertmanager", "alertmanager"]
        }
        other => vec![other],
    }
}

/// The Debian package that ships a program.
fn package_of(name: &str) -> &str {
    match name {
        "prometheus" | "promtool" => "prometheus",
        "alertmanager" | "prometheus-alertmanager" | "amtool" => "prometheus-alertmanager",
        "systemd-analyze" => "systemd",
        other => other,
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    which::which(name).ok()
}
