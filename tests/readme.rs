//! The README's commands and queries are what users copy: its PromQL must parse in a real
//! Prometheus, and its config example must load.

use std::process::Command;

use crate::tools;

const README: &str = include_str!("../README.md");

/// Every expression of every ```promql block: comment lines dropped, blank lines separating them.
fn promql_expressions() -> Vec<String> {
    let mut expressions = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in README.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```promql") {
            in_block = true;
            continue;
        }
        if !in_block {
            continue;
        }
        if trimmed.starts_with("```") || trimmed.is_empty() {
            if !current.trim().is_empty() {
                expressions.push(std::mem::take(&mut current));
            }
            current.clear();
            in_block = !trimmed.starts_with("```");
            continue;
        }
        if !trimmed.starts_with('#') {
            current.push_str(line);
            current.push('\n');
        }
    }
    expressions
}

#[test]
fn the_readme_promql_parses_in_promtool() {
    let expressions = promql_expressions();
    assert!(expressions.len() >= 6, "found only {expressions:?}");
    let Some(promtool) = tools::tool("promtool") else {
        return;
    };
    let mut rules = String::from("groups:\n  - name: readme\n    rules:\n");
    for (i, expr) in expressions.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: readme:expression_{i}\n        expr: |\n"
        ));
        for line in expr.lines() {
            rules.push_str(&format!("          {line}\n"));
        }
    }
    let dir = std::env::temp_dir().join(format!(
        "atlas-backup-exporter-readme-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("readme-rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let output = Command::new(promtool)
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "promtool rejects README PromQL:\n{}{}\n{rules}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_readme_config_reference_loads() {
    let start = README
        .find("## Configuration")
        .expect("a Configuration section");
    let block = &README[start..];
    let yaml_start = block.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let yaml = &block[yaml_start..];
    let yaml = &yaml[..yaml.find("```").unwrap()];
    // The reference shows both kinds of credential; a real file has one.
    let yaml = yaml
        .lines()
        .filter(|l| {
            !l.contains("service_account:")
                && !l.contains("client_id:")
                && !l.contains("client_secret:")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = atlas_backup_exporter::config::parse(&yaml, "README.md")
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(config.targets[0].group_id, "5f1a2b3c4d5e6f7a8b9c0d1e");
    assert_eq!(config.export_jobs.max_per_cluster, 50);
    assert_eq!(
        config.discovery.interval,
        std::time::Duration::from_secs(300)
    );
}
