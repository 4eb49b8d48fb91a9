//! The Atlas estate the scrape benchmark collects, shared with its smoke test in the test suite:
//! projects of ten clusters, each cluster with a history of export jobs spread over the last four
//! months (mostly `Successful` with `finishedAt`, one in twenty `Failed` with a `stateReason`,
//! the newest one `InProgress`), every fourth cluster sharded.
//!
//! Everything is derived from the cluster's position and the job's rank, so two runs serve the
//! same data (only dated relative to "now").

#![allow(dead_code)]

use fake_atlas::{FakeAtlas, job};
use serde_json::Value;
use time::OffsetDateTime;

/// The API key pair the stand-in accepts and the generated configs use.
pub const PUBLIC_KEY: &str = "benchpublickey";
pub const PRIVATE_KEY: &str = "0b1e2c3d-bbbb-cccc-dddd-0123456789ab";

/// Atlas's page size, which the exporter always asks for.
pub const ITEMS_PER_PAGE: usize = 500;
const CLUSTERS_PER_PROJECT: usize = 10;
/// How far back the jobs of a cluster go.
const HISTORY: time::Duration = time::Duration::days(120);

/// One cluster and how many export jobs it holds.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub group_id: String,
    pub name: String,
    /// Position in the fleet: the seed of its jobs.
    pub index: usize,
    pub jobs: usize,
}

/// A set of clusters, in project order.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub clusters: Vec<Cluster>,
}

/// Which export jobs get per-job series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// The exporter's defaults (`max_age: 7d`, `max_per_cluster: 50`).
    Defaults,
    /// `max_age: 0`, `max_per_cluster: 0`: every job, the worst case.
    Everything,
}

impl Fleet {
    /// `clusters` clusters of `jobs` jobs each. `tag` (one byte) keeps the project ids of two
    /// fleets in one stand-in apart.
    pub fn new(tag: u8, clusters: usize, jobs: usize) -> Fleet {
        let clusters = (0..clusters)
            .map(|index| Cluster {
                group_id: format!("{tag:02x}{:022x}", index / CLUSTERS_PER_PROJECT),
                name: format!("cluster-{index:04}"),
                index,
                jobs,
            })
            .collect();
        Fleet { clusters }
    }

    /// The first `n` clusters (the stand-in is seeded once with the largest fleet).
    pub fn take(&self, n: usize) -> Fleet {
        Fleet {
            clusters: self.clusters.iter().take(n).cloned().collect(),
        }
    }

    /// Export jobs over every cluster.
    pub fn jobs(&self) -> u64 {
        self.clusters.iter().map(|c| c.jobs as u64).sum()
    }

    /// Atlas calls a full listing of every cluster takes: the pages per cluster, summed.
    pub fn full_listing_calls(&self) -> u64 {
        self.clusters.iter().map(|c| pages_for(c.jobs)).sum()
    }

    /// Adds every cluster and its jobs to the stand-in, dated relative to `now`.
    pub fn seed(&self, fake: &FakeAtlas, now: OffsetDateTime) {
        for cluster in &self.clusters {
            if is_sharded(cluster.index) {
                fake.add_sharded_cluster(&cluster.group_id, &cluster.name);
            } else {
                fake.add_cluster(&cluster.group_id, &cluster.name);
            }
            fake.put_jobs(&cluster.group_id, &cluster.name, history(cluster, now));
        }
    }

    /// An exporter config watching exactly these clusters (no discovery calls), with the API key
    /// in the file.
    pub fn config_yaml(
        &self,
        base_url: &str,
        max_concurrent_requests: usize,
        retention: Retention,
    ) -> String {
        let mut yaml = format!(
            "atlas:\n  base_url: {base_url}\n  max_concurrent_requests: {max_concurrent_requests}\n  \
             request_timeout: 30s\n  auth:\n    api_key:\n      public_key: {PUBLIC_KEY}\n      \
             private_key: {PRIVATE_KEY}\ncollection:\n  timeout: 5m\n"
        );
        if retention == Retention::Everything {
            yaml.push_str("export_jobs:\n  max_age: 0\n  max_per_cluster: 0\n");
        }
        yaml.push_str("targets:\n");
        let mut project: Option<&str> = None;
        for cluster in &self.clusters {
            if project != Some(&cluster.group_id) {
                project = Some(&cluster.group_id);
                yaml.push_str(&format!(
                    "  - group_id: {}\n    labels: {{env: prod}}\n    clusters:\n",
                    cluster.group_id
                ));
            }
            yaml.push_str(&format!("      - {}\n", cluster.name));
        }
        yaml
    }
}

/// Calls one cluster's listing takes. The exporter asks for one page more while the last page is
/// full, since `totalCount` is only an estimate: 600 jobs take 2 calls, 5,000 take 11.
pub fn pages_for(jobs: usize) -> u64 {
    (jobs / ITEMS_PER_PAGE + 1) as u64
}

fn is_sharded(index: usize) -> bool {
    index % 4 == 3
}

/// A cluster's export jobs, newest first: rank 0 is running, the others finished.
pub fn history(cluster: &Cluster, now: OffsetDateTime) -> Vec<Value> {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let spacing = HISTORY / cluster.jobs.max(1) as i32;
    let bucket = format!("6a7943{:018x}", cluster.index / CLUSTERS_PER_PROJECT);
    (0..cluster.jobs)
        .map(|rank| {
            let noise = mix(((cluster.index as u64) << 32) | rank as u64);
            let created = if rank == 0 {
                now - time::Duration::minutes(25)
            } else {
                now - spacing * rank as i32 - time::Duration::seconds((noise % 600) as i64)
            };
            let stamp = created.unix_timestamp() as u32;
            let id = format!("{stamp:08x}{:06x}{rank:010x}", cluster.index);
            let snapshot = format!("{:08x}{:06x}{rank:010x}", stamp - 900, cluster.index);
            let mut j = job(&id)
                .created(created)
                .snapshot_id(&snapshot)
                .export_bucket_id(&bucket);
            if is_sharded(cluster.index) {
                j = j.components(3);
            }
            let took = time::Duration::minutes(10 + (noise >> 16) as i64 % 60);
            j = if rank == 0 {
                j.state("InProgress")
            } else if noise % 20 == 7 {
                j.state("Failed").finished(created + took).state_reason(
                    "EXPORT_FAILED",
                    "Access denied to the export bucket: check the IAM role Atlas assumes.",
                )
            } else {
                j.state("Successful").finished(created + took)
            };
            j.build()
        })
        .collect()
}

/// SplitMix64: cheap, well-spread noise from a seed.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
