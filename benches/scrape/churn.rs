//! An Atlas estate that keeps changing, for the soaks (the long one of the benchmark, the short
//! one of the test suite): export jobs are created, move through their states, finish, fail,
//! are cancelled, age out of `max_age` and are pruned from the listing; clusters appear in and
//! vanish from discovery; a project fails and recovers; OAuth tokens are revoked.
//!
//! The test's model of the estate (which jobs are listed, which run, which are pinned) is kept
//! here next to the stand-in's, so a soak can check every scrape against it. Every change is a
//! function of the step number, so two runs churn alike (only dated relative to "now").

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use fake_atlas::{FakeAtlas, Fault, job};
use time::OffsetDateTime;

/// The service account the stand-in accepts and the config uses.
pub const CLIENT_ID: &str = "mdb_sa_id_soak0123456789abcdef0123";
pub const CLIENT_SECRET: &str = "mdb_sa_sk_soaksecretsoaksecretsoak";
/// A project watched by discovery: its clusters come and go.
pub const DISCOVERED: &str = "50a4000000000000000000d1";
/// A project with a configured cluster list, which fails now and then.
pub const LISTED: &str = "50a4000000000000000000e2";
/// `export_jobs.max_per_cluster` of the config.
pub const MAX_PER_CLUSTER: usize = 3;
/// `export_jobs.max_age` of the config, in seconds.
pub const MAX_AGE_SECS: i64 = 600;
/// `atlas.max_concurrent_requests` of the config: the size of the exporter's connection pool.
pub const POOL: usize = 4;
/// A new job is dated this long inside `max_age` by default, so it ages out this long after it
/// starts.
const AGE_MARGIN_SECS: i64 = 20;
/// Atlas keeps this many jobs per churned cluster; older ones leave the listing.
const KEPT: usize = 12;
/// The configured cluster whose jobs are fetched one by one (`export_job_ids`).
const PINNED_CLUSTER: &str = "Pinned";
/// A configured cluster with more than two pages of finished jobs, listed incrementally.
const HISTORY_CLUSTER: &str = "History";
const HISTORY_JOBS: usize = 1_100;

/// One job as the soak knows it.
#[derive(Clone, Debug)]
struct Job {
    id: String,
    state: &'static str,
    created: OffsetDateTime,
    finished: Option<OffsetDateTime>,
}

impl Job {
    fn running(&self) -> bool {
        matches!(self.state, "Queued" | "InProgress")
    }

    fn json(&self, components: usize) -> serde_json::Value {
        let mut builder = job(&self.id)
            .state(self.state)
            .created(self.created)
            .components(components);
        if let Some(finished) = self.finished {
            builder = builder.finished(finished);
        }
        if self.state == "Failed" {
            builder = builder.state_reason("EXPORT_FAILED", "the bucket refused the upload");
        }
        builder.build()
    }
}

/// What a scrape may show of one cluster.
#[derive(Debug, Default)]
pub struct Listed {
    /// Every job the cluster's listing holds now.
    pub ids: BTreeSet<String>,
    /// Jobs still running (`Queued`, `InProgress`).
    pub running: usize,
    /// Job ids named in the config (`export_job_ids`).
    pub pinned: usize,
}

impl Listed {
    /// The most per-job series the cluster may have: `max_per_cluster` + its running jobs +
    /// its newest job + its configured job ids.
    pub fn series_bound(&self) -> usize {
        MAX_PER_CLUSTER + self.running + 1 + self.pinned
    }
}

/// The changing estate and the stand-in that serves it.
pub struct Churn {
    fake: FakeAtlas,
    /// (project, cluster) → jobs, oldest first.
    clusters: BTreeMap<(String, String), Vec<Job>>,
    pinned: Vec<String>,
    /// Discovered clusters that come and go, oldest first.
    transient: Vec<String>,
    next_job: u64,
    next_cluster: u64,
    step: u64,
    failing: bool,
    revocations: u64,
    age_margin: i64,
}

impl Churn {
    /// Seeds `fake` (which must accept [`CLIENT_ID`]) at `now`.
    pub fn new(fake: FakeAtlas, now: OffsetDateTime) -> Churn {
        fake.add_service_account(CLIENT_ID, CLIENT_SECRET);
        let mut churn = Churn {
            fake,
            clusters: BTreeMap::new(),
            pinned: Vec::new(),
            transient: Vec::new(),
            next_job: 0,
            next_cluster: 0,
            step: 0,
            failing: false,
            revocations: 0,
            age_margin: AGE_MARGIN_SECS,
        };
        for name in ["Steady", "Sharded"] {
            churn.add_cluster(DISCOVERED, name, now);
        }
        churn.add_cluster(LISTED, "Busy", now);
        // Two finished jobs, fetched one by one however old they get.
        churn.add_cluster(LISTED, PINNED_CLUSTER, now);
        let pinned = churn.clusters[&key(LISTED, PINNED_CLUSTER)].clone();
        churn.pinned = pinned.iter().take(2).map(|j| j.id.clone()).collect();
        // A long history, never changing: the incremental listing's case.
        let history: Vec<Job> = (0..HISTORY_JOBS)
            .map(|rank| {
                let created = now - time::Duration::hours(1 + rank as i64);
                let failed = rank % 20 == 7;
                Job {
                    id: churn.new_id(),
                    state: if failed { "Failed" } else { "Successful" },
                    created,
                    finished: Some(created + time::Duration::minutes(30)),
                }
            })
            .rev()
            .collect();
        churn.fake.put_jobs(
            LISTED,
            HISTORY_CLUSTER,
            history.iter().map(|j| j.json(0)).collect::<Vec<_>>(),
        );
        churn.clusters.insert(key(LISTED, HISTORY_CLUSTER), history);
        churn
    }

    /// Dates new jobs `secs` inside `max_age` instead of 20 s: a test comparing two scrapes
    /// a few seconds apart wants no job to age out between them.
    pub fn with_age_margin(mut self, secs: i64) -> Churn {
        self.age_margin = secs.clamp(0, MAX_AGE_SECS);
        self
    }

    /// The exporter's config: `cache_ttl` 0 and discovery on every scrape, so every scrape
    /// sees the changes; `max_per_cluster` and `max_age` small, so jobs age out.
    pub fn config_yaml(&self, base_url: &str) -> String {
        format!(
            "atlas:
  base_url: {base_url}
  max_concurrent_requests: {POOL}
  auth:
    service_account:
      client_id: {CLIENT_ID}
      client_secret: {CLIENT_SECRET}
targets:
  - group_id: {DISCOVERED}
  - group_id: {LISTED}
    clusters:
      - Busy
      - {HISTORY_CLUSTER}
      - name: {PINNED_CLUSTER}
        export_job_ids: [{pinned}]
export_jobs:
  max_age: {MAX_AGE_SECS}s
  max_per_cluster: {MAX_PER_CLUSTER}
discovery:
  interval: 0s
collection:
  cache_ttl: 0s
metadata:
  refresh_interval: 2s
  cluster_tags: [team]
",
            pinned = self.pinned.join(", ")
        )
    }

    /// One step of churn at `now`; returns the jobs that left the listing.
    pub fn step(&mut self, now: OffsetDateTime) -> Vec<String> {
        self.step += 1;
        let step = self.step;
        let mut gone = Vec::new();

        // One churned cluster a step moves on: its jobs advance one state, a new one is queued,
        // and Atlas prunes the oldest beyond `KEPT`.
        let churned: Vec<(String, String)> = self
            .clusters
            .keys()
            .filter(|(_, c)| c != PINNED_CLUSTER && c != HISTORY_CLUSTER)
            .cloned()
            .collect();
        let (group, cluster) = churned[step as usize % churned.len()].clone();
        let id = self.new_id();
        let jobs = self
            .clusters
            .get_mut(&(group.clone(), cluster.clone()))
            .expect("a churned cluster is known");
        for job in jobs.iter_mut() {
            advance(job, now);
        }
        jobs.push(Job {
            id,
            state: "Queued",
            created: now - time::Duration::seconds(MAX_AGE_SECS - self.age_margin),
            finished: None,
        });
        while jobs.len() > KEPT {
            let old = jobs.remove(0);
            self.fake.remove_job(&group, &cluster, &old.id);
            gone.push(old.id);
        }
        let components = if cluster == "Sharded" { 3 } else { 0 };
        let jsons: Vec<_> = jobs.iter().map(|j| j.json(components)).collect();
        self.fake.put_jobs(&group, &cluster, jsons);

        // Discovery: a cluster appears every 40 steps and the oldest one vanishes 20 steps
        // later, its jobs with it.
        if step % 40 == 0 {
            let name = format!("Transient{}", self.next_cluster);
            self.next_cluster += 1;
            self.add_cluster(DISCOVERED, &name, now);
            self.transient.push(name);
        } else if step % 40 == 20 && !self.transient.is_empty() {
            let name = self.transient.remove(0);
            self.fake.remove_cluster(DISCOVERED, &name);
            if let Some(jobs) = self.clusters.remove(&key(DISCOVERED, &name)) {
                gone.extend(jobs.into_iter().map(|j| j.id));
            }
        }

        // The listed project fails (403, which is not retried) for 15 steps in every 100.
        match step % 100 {
            50 => {
                self.fake
                    .inject(Fault::status(&format!("/groups/{LISTED}/"), 403));
                self.failing = true;
            }
            65 => {
                self.fake.clear_faults();
                self.failing = false;
            }
            _ => {}
        }

        // Every token issued so far stops working every 30 steps.
        if step % 30 == 0 {
            self.fake.revoke_tokens();
            self.revocations += 1;
        }
        gone
    }

    /// Every watched cluster and what a scrape may show of it, by (project, cluster).
    pub fn listed(&self) -> BTreeMap<(String, String), Listed> {
        self.clusters
            .iter()
            .map(|((group, cluster), jobs)| {
                let pinned = if cluster == PINNED_CLUSTER {
                    self.pinned.len()
                } else {
                    0
                };
                let listed = Listed {
                    ids: jobs.iter().map(|j| j.id.clone()).collect(),
                    running: jobs.iter().filter(|j| j.running()).count(),
                    pinned,
                };
                ((group.clone(), cluster.clone()), listed)
            })
            .collect()
    }

    /// How many watched clusters a scrape should find up now: all but the failing project's.
    pub fn expected_up(&self) -> usize {
        self.clusters
            .keys()
            .filter(|(group, _)| !(self.failing && group == LISTED))
            .count()
    }

    /// True while the listed project answers 403.
    pub fn failing(&self) -> bool {
        self.failing
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Times every token was revoked.
    pub fn revocations(&self) -> u64 {
        self.revocations
    }

    /// The stand-in this churns.
    pub fn fake(&self) -> &FakeAtlas {
        &self.fake
    }

    fn add_cluster(&mut self, group: &str, name: &str, now: OffsetDateTime) {
        let jobs: Vec<Job> = (0..4)
            .map(|i| {
                let created = now - time::Duration::minutes(40 - 5 * i);
                Job {
                    id: self.new_id(),
                    state: if i == 1 { "Failed" } else { "Successful" },
                    created,
                    finished: Some(created + time::Duration::minutes(3)),
                }
            })
            .collect();
        if name == "Sharded" {
            self.fake
                .add_cluster_of_kind(group, name, fake_atlas::ClusterKind::Sharded);
        } else {
            self.fake.add_cluster(group, name);
        }
        let components = if name == "Sharded" { 3 } else { 0 };
        self.fake.put_jobs(
            group,
            name,
            jobs.iter().map(|j| j.json(components)).collect::<Vec<_>>(),
        );
        self.clusters.insert(key(group, name), jobs);
    }

    fn new_id(&mut self) -> String {
        self.next_job += 1;
        format!("50a4{:020x}", self.next_job)
    }
}

fn key(group: &str, cluster: &str) -> (String, String) {
    (group.to_owned(), cluster.to_owned())
}

/// Moves a job one state on: `Queued` to `InProgress`, then to `Successful`, or one time in
/// seven `Failed` and one in eleven `Cancelled`, by its id.
fn advance(job: &mut Job, now: OffsetDateTime) {
    let n: u64 = job.id.bytes().map(u64::from).sum();
    job.state = match job.state {
        "Queued" => "InProgress",
        "InProgress" if n % 7 == 0 => "Failed",
        "InProgress" if n % 11 == 0 => "Cancelled",
        "InProgress" => "Successful",
        done => done,
    };
    if !job.running() && job.finished.is_none() {
        job.finished = Some(now.max(job.created + time::Duration::seconds(1)));
    }
}
