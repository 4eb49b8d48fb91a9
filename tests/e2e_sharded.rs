//! `examples/prometheus-sharded.yml` proven against the real servers: two exporter replicas behind one
//! address (a round-robin stand-in for the Kubernetes Service), two real Prometheus servers with that
//! file's configuration, one per shard, and the stand-in Atlas with clusters in two projects. Every
//! cluster must be scraped by exactly one server, under its own group_id and cluster_name.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use fake_atlas::job;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::servers::{
    RoundRobin, Server, TempDir, label, repo_path, repo_yaml, run_tool, set, wait_until,
};
use crate::support::{self, Exporter, GROUP, GROUP2};
use crate::tools::tool;

const EXAMPLE: &str = "examples/prometheus-sharded.yml";
const JOB: &str = "atlas-backup-exporter";
/// What marks the shard number in the example, twice (see its header).
const SHARD_MARK: &str = "\"0\" # SHARD";
/// Discovered in `GROUP`.
const DISCOVERED: &[&str] = &["Cluster0", "Cluster1", "Cluster2", "Cluster3"];
/// Listed in the config for `GROUP2`, which also has a cluster the exporter must not watch.
const LISTED: &[&str] = &["Alpha", "Beta", "Gamma"];

#[test]
fn sharded_example_passes_promtool() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let out = crate::support::Spawn::program(&promtool)
        .args(["check", "config", EXAMPLE])
        .current_dir(&repo_path(""))
        .output();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        out.success() && text.contains("SUCCESS: 1 rule files found"),
        "promtool check config {EXAMPLE}:\n{text}"
    );
    assert!(!text.contains("WARNING"), "{text}");

    // The /probe job scrapes as often as examples/prometheus.yml, for the reasons given there.
    let job_of = |file: &str| -> Yaml {
        let config = repo_yaml(file);
        config["scrape_configs"]
            .as_sequence()
            .and_then(|jobs| jobs.iter().find(|j| j["job_name"].as_str() == Some(JOB)))
            .cloned()
            .unwrap_or_else(|| panic!("{file} has no job {JOB}"))
    };
    let (sharded, single) = (job_of(EXAMPLE), job_of("examples/prometheus.yml"));
    for key in ["scrape_interval", "scrape_timeout"] {
        assert_eq!(sharded[key], single[key], "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_prometheus_servers_split_the_clusters_between_them() {
    let (Some(prometheus), Some(promtool)) = (tool("prometheus"), tool("promtool")) else {
        return;
    };

    let fake = support::fake();
    let mut expected = BTreeSet::new();
    for (group, clusters) in [(GROUP, DISCOVERED), (GROUP2, LISTED)] {
        for cluster in clusters {
            fake.add_cluster(group, cluster);
            fake.put_job(
                group,
                cluster,
                job(&format!("{:024x}", expected.len() + 1))
                    .state("Successful")
                    .finished_at("2026-08-10T04:28:25Z")
                    .build(),
            );
            expected.insert((group.to_owned(), (*cluster).to_owned()));
        }
    }
    fake.add_cluster(GROUP2, "NotWatched");
    // As the example says: /metrics carries only the exporter's own metrics in a /probe set-up.
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    labels: {{team: data}}\n  \
         - group_id: {GROUP2}\n    clusters: [{}]\ncollection:\n  on_metrics: false\n",
        LISTED.join(", ")
    );
    let replicas = [
        Exporter::start(fake.clone(), &yaml, support::api_key()).await,
        Exporter::start(fake, &yaml, support::api_key()).await,
    ];
    let service = RoundRobin::start(replicas.iter().map(|r| r.addr).collect()).await;
    let replica_addrs: BTreeSet<String> = replicas.iter().map(|r| r.addr.to_string()).collect();

    let dir = TempDir::new("sharded");
    std::fs::copy(
        repo_path("examples/alerts.yml"),
        dir.path().join("alerts.yml"),
    )
    .expect("copying alerts.yml");
    let mut servers = Vec::new();
    for shard in 0..2 {
        let config = shard_config(
            shard,
            service.addr,
            &replicas.iter().map(|r| r.addr).collect::<Vec<_>>(),
        );
        let path = dir.write(
            &format!("prometheus-shard-{shard}.yml"),
            &serde_yaml::to_string(&config).expect("YAML"),
        );
        let out = run_tool(
            &promtool,
            &["check", "config", &path.to_string_lossy()],
            None,
        )
        .await;
        assert!(
            out.success && !out.text().contains("WARNING"),
            "promtool check config on shard {shard}'s config:\n{}",
            out.text()
        );
        servers.push(Server::prometheus(&prometheus, &path, dir.path()).await);
    }
    let (servers, expected) = (&servers, &expected);

    // Both servers have scraped their clusters and both replicas; together they have every cluster.
    let shares = wait_until(
        "both servers to scrape all clusters between them",
        || async move {
            let mut shares = Vec::new();
            for server in servers {
                let replicas = server
                    .query(&format!(
                        "atlas_backup_exporter_build_info{{job=\"{JOB}\"}}"
                    ))
                    .await;
                if replicas.len() < 2 {
                    return Err(format!(
                        "{} replicas scraped by {}",
                        replicas.len(),
                        server.url
                    ));
                }
                shares.push(clusters(&server.query("atlas_backup_export_up").await));
            }
            let union: BTreeSet<_> = shares.iter().flatten().cloned().collect();
            if &union == expected {
                Ok(shares)
            } else {
                Err(format!("{shares:?}"))
            }
        },
    )
    .await;

    // Exactly one server per cluster, and both servers have work.
    let (first, second) = (&shares[0], &shares[1]);
    assert!(
        first.is_disjoint(second),
        "clusters scraped twice: {:?}",
        first.intersection(second).collect::<Vec<_>>()
    );
    assert!(
        !first.is_empty() && !second.is_empty(),
        "one server got every cluster: {shares:?}"
    );
    // /sd, asked through the Service, lists exactly the seeded watched clusters.
    let (status, body) = replicas[0].get("/sd").await;
    assert_eq!(status, 200);
    let listed: BTreeSet<(String, String)> = serde_json::from_str::<Json>(&body)
        .expect("/sd is JSON")
        .as_array()
        .expect("/sd lists target groups")
        .iter()
        .map(|g| {
            (
                g["labels"]["group_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                g["labels"]["cluster_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(&listed, &first.union(second).cloned().collect());

    for (server, share) in servers.iter().zip(&shares) {
        // Every exporter series came through /probe at the Service's address, under the labels
        // the exporter gave it: none renamed to exported_*, none of another server's clusters.
        let series = server
            .query("{__name__=~\"atlas_backup_export_.+\", cluster_name!=\"\"}")
            .await;
        assert!(!series.is_empty());
        // The replicas' /metrics report the cluster listings their /sd made.
        let discovery = server.query("atlas_backup_export_discovery_up").await;
        assert!(!discovery.is_empty(), "{}: no discovery_up", server.url);
        for s in &discovery {
            assert_eq!(s["value"][1], "1", "{s}");
        }
        for s in &series {
            let labels = s["metric"].as_object().expect("labels");
            assert!(
                labels.keys().all(|k| !k.starts_with("exported_")),
                "{} renamed a label: {s}",
                server.url
            );
            let cluster = (
                label(s, "group_id").to_owned(),
                label(s, "cluster_name").to_owned(),
            );
            assert!(
                share.contains(&cluster),
                "{} has {cluster:?}: {s}",
                server.url
            );
            assert_eq!(label(s, "job"), JOB, "{s}");
            assert_eq!(label(s, "instance"), service.addr.to_string(), "{s}");
            if cluster.0 == GROUP {
                assert_eq!(label(s, "team"), "data", "the static label: {s}");
            }
        }

        // Prometheus's own view: this server's clusters are active targets, up, with their labels;
        // the other server's are dropped by the hashmod rule.
        let targets = server.api("/api/v1/targets", &[]).await;
        let active: Vec<&Json> = targets["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["scrapePool"] == JOB)
            .collect();
        let active_clusters: BTreeSet<(String, String)> = active
            .iter()
            .map(|t| {
                (
                    t["labels"]["group_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    t["labels"]["cluster_name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        assert_eq!(&active_clusters, share, "{}'s active targets", server.url);
        for target in &active {
            assert_eq!(target["health"], "up", "{target}");
            assert!(
                target["scrapeUrl"]
                    .as_str()
                    .is_some_and(|u| u.contains("/probe?")),
                "{target}"
            );
        }
        // (Matched by a /sd label: Prometheus 2.42 loses the job label of some dropped targets.)
        let dropped: BTreeSet<(String, String)> = targets["droppedTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| &t["discoveredLabels"])
            .filter(|l| l["__param_cluster_name"].is_string())
            .map(|l| {
                (
                    l["group_id"].as_str().unwrap_or_default().to_owned(),
                    l["cluster_name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            dropped,
            expected.difference(share).cloned().collect(),
            "{}'s dropped targets",
            server.url
        );

        // The replicas job scraped both replicas' own metrics, under the shared job label.
        let own = server
            .query(&format!(
                "atlas_backup_exporter_build_info{{job=\"{JOB}\"}}"
            ))
            .await;
        let instances: BTreeSet<String> = own
            .iter()
            .map(|s| label(s, "instance").to_owned())
            .collect();
        assert_eq!(instances, replica_addrs, "{}", server.url);
    }
}

/// The (group_id, cluster_name) pairs of a query's series.
fn clusters(series: &[Json]) -> BTreeSet<(String, String)> {
    series
        .iter()
        .map(|s| {
            (
                label(s, "group_id").to_owned(),
                label(s, "cluster_name").to_owned(),
            )
        })
        .collect()
}

/// The example for one shard, made as its header says (the two marked "0"s replaced), then pointed at
/// loopback: /sd through `service`, the replicas' own metrics from `replicas` directly, every interval
/// one second, no Alertmanager.
fn shard_config(shard: u32, service: SocketAddr, replicas: &[SocketAddr]) -> Yaml {
    let text = std::fs::read_to_string(repo_path(EXAMPLE)).expect("reading the example");
    assert_eq!(
        text.matches(SHARD_MARK).count(),
        2,
        "{EXAMPLE} marks its shard number in two places"
    );
    let text = text.replace(SHARD_MARK, &format!("\"{shard}\" # SHARD"));
    let mut config: Yaml = serde_yaml::from_str(&text).expect("the example is YAML");

    assert_eq!(
        config["global"]["external_labels"]["shard"],
        Yaml::from(shard.to_string())
    );
    set(&mut config["global"], "scrape_interval", "1s");
    set(&mut config["global"], "evaluation_interval", "1s");
    config
        .as_mapping_mut()
        .expect("a mapping")
        .remove("alerting")
        .expect("the example points at an Alertmanager");

    let jobs = config["scrape_configs"]
        .as_sequence_mut()
        .expect("scrape_configs");
    assert_eq!(jobs.len(), 2, "a /probe job and a replicas job");
    for job in jobs.iter_mut() {
        set(job, "scrape_interval", "1s");
        set(job, "scrape_timeout", "1s");
        let map = job.as_mapping_mut().expect("a scrape config");
        if map.contains_key("http_sd_configs") {
            // The /probe job, its http_sd pointing at the Service.
            assert_eq!(map.get("honor_labels"), Some(&Yaml::Bool(true)));
            assert_eq!(
                map.get("metrics_path").and_then(Yaml::as_str),
                Some("/probe")
            );
            let sd = map["http_sd_configs"]
                .as_sequence_mut()
                .expect("http_sd_configs");
            assert_eq!(sd.len(), 1);
            let url = sd[0]["url"].as_str().expect("the /sd url");
            assert!(url.ends_with(":9947/sd"), "{url}");
            set(&mut sd[0], "url", format!("http://{service}/sd"));
            set(&mut sd[0], "refresh_interval", "1s");
            let rules = map["relabel_configs"]
                .as_sequence()
                .expect("relabel_configs");
            let hashmod = rules
                .iter()
                .find(|r| r["action"].as_str() == Some("hashmod"))
                .expect("a hashmod rule");
            assert_eq!(hashmod["modulus"].as_u64(), Some(2), "two servers");
            assert!(
                rules.iter().any(|r| r["action"].as_str() == Some("keep")
                    && r["regex"].as_str() == Some(shard.to_string().as_str())),
                "the keep rule takes this server's shard"
            );
        } else {
            // The replicas job: its DNS discovery becomes the replicas' loopback addresses.
            map.remove("dns_sd_configs")
                .expect("the replicas job finds them by DNS");
            let targets: Vec<Yaml> = replicas.iter().map(|a| a.to_string().into()).collect();
            let mut statics = serde_yaml::Mapping::new();
            statics.insert("targets".into(), Yaml::Sequence(targets));
            map.insert(
                "static_configs".into(),
                Yaml::Sequence(vec![Yaml::Mapping(statics)]),
            );
        }
    }
    config
}
