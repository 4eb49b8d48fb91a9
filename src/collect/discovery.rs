//! Discovery: the clusters of the projects the config names without a cluster list, and with
//! `discovery.all_projects` of every project the credential can see, each list reused for
//! `discovery.interval`.
//!
//! Every project is listed on its own (`GET /groups/{id}/clusters`): `GET /clusters`, which
//! lists every project's clusters at once, leaves multi-cloud clusters out. So `all_projects`
//! lists the projects (`GET /groups`), skips those Atlas counts no clusters in, and lists the
//! clusters of the others, all at once under the client's bound on requests in flight.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::metadata::Metadata;
use super::{ConfiguredExpectation, Labels, WatchedCluster, lock};
use crate::atlas::model::{ClusterItem, Unwatched};
use crate::atlas::{AtlasClient, AtlasError, Deadline, Endpoint};
use crate::config::Config;

/// How listing the projects (`group_id` None) or one project's clusters went.
#[derive(Debug)]
pub struct DiscoveryReport {
    pub group_id: Option<String>,
    pub labels: Labels,
    pub up: bool,
    /// For a project: what its last list that worked held besides the watched clusters.
    pub skipped: Option<Skipped>,
}

/// The clusters of a project's list that discovery does not watch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Per reason of [`Unwatched::ALL`], in that order.
    pub unwatched: [u64; 2],
    /// Items without a name.
    pub invalid: u64,
}

/// The cluster lists of the projects to discover, and when each was made.
pub(super) struct Discovery {
    client: AtlasClient,
    max_pages: u32,
    interval: Duration,
    /// The projects the config names without a cluster list, with their labels, in config order.
    targets: Vec<(String, Labels)>,
    /// Whether every project the credential can see is discovered too.
    all_projects: bool,
    /// The labels of each project the config names (its first target's), which the clusters
    /// discovered in it keep.
    target_labels: HashMap<String, Labels>,
    /// The clusters the config names: watched as configured, never as discovered.
    configured: HashSet<(String, String)>,
    /// The labels of a project no target names: none.
    no_labels: Labels,
    /// What each target's config expects of its clusters' exports (its first target's).
    target_expectations: HashMap<String, ConfiguredExpectation>,
    /// What the config expects of the clusters of a project no target names.
    no_target: ConfiguredExpectation,
    lists: Mutex<Lists>,
    /// Takes the names and cluster details the listings give anyway.
    metadata: Arc<Metadata>,
}

#[derive(Default)]
struct Lists {
    /// The last listing of the projects (with `all_projects`).
    projects: Option<ProjectsList>,
    /// The last list of each project's clusters, by project id.
    clusters: HashMap<String, ClusterList>,
    /// Counts the changes to the lists' clusters: whoever keeps something per discovered
    /// cluster knows from it when clusters may have gone.
    generation: u64,
}

struct ProjectsList {
    /// When the projects were last listed successfully.
    listed_at: Option<Instant>,
    /// The projects that may hold clusters, as the last listing that worked found them.
    group_ids: Vec<String>,
    up: bool,
}

#[derive(Default)]
struct ClusterList {
    /// When the clusters were last listed successfully.
    listed_at: Option<Instant>,
    /// The clusters discovery watches, as the last listing that worked found them.
    clusters: Vec<String>,
    skipped: Skipped,
    /// Whether the last listing worked.
    up: bool,
}

impl Discovery {
    pub(super) fn new(config: &Config, client: AtlasClient, metadata: Arc<Metadata>) -> Discovery {
        let targets = config
            .targets
            .iter()
            .filter(|t| t.clusters.is_none())
            .map(|t| (t.group_id.clone(), Labels::from(t.labels.clone())))
            .collect();
        let mut target_labels = HashMap::new();
        let mut target_expectations = HashMap::new();
        for target in &config.targets {
            target_labels
                .entry(target.group_id.clone())
                .or_insert_with(|| Labels::from(target.labels.clone()));
            target_expectations
                .entry(target.group_id.clone())
                .or_insert_with(|| ConfiguredExpectation::of_target(config, target));
        }
        let configured = config
            .targets
            .iter()
            .flat_map(|t| {
                let clusters = t.clusters.iter().flatten();
                clusters.map(|c| (t.group_id.clone(), c.name.clone()))
            })
            .collect();
        Discovery {
            client,
            max_pages: config.export_jobs.max_pages,
            interval: config.discovery.interval,
            targets,
            all_projects: config.discovery.all_projects,
            target_labels,
            target_expectations,
            no_target: ConfiguredExpectation {
                explicit: None,
                default: config.export_jobs.expect_export_every,
            },
            configured,
            no_labels: Labels::from([]),
            lists: Mutex::new(Lists::default()),
            metadata,
        }
    }

    /// Whether a list made at `listed_at` is still fresh.
    fn fresh(&self, listed_at: Option<Instant>) -> bool {
        let clock = self.client.clock();
        listed_at.is_some_and(|at| !self.interval.is_zero() && clock.since(at) < self.interval)
    }

    /// Lists the projects (with `all_projects`) and then the clusters of every project to
    /// discover, each list only if it is older than `discovery.interval`, falling back to the
    /// last list that worked. One report for the projects' listing, then one per project.
    pub(super) async fn refresh(&self, deadline: Deadline) -> Vec<DiscoveryReport> {
        let mut reports = Vec::new();
        if self.all_projects {
            reports.push(self.refresh_projects(deadline).await);
        }
        let projects = self.projects();
        {
            // Projects no longer listed are forgotten with their clusters.
            let mut lists = lock(&self.lists);
            let before = lists.clusters.len();
            lists.clusters.retain(|id, _| projects.contains(id));
            if lists.clusters.len() != before {
                lists.generation += 1;
            }
        }
        let refreshed = join_all(projects.iter().map(|id| self.refresh_one(id, deadline))).await;
        reports.extend(refreshed);
        reports
    }

    /// The projects whose clusters are discovered: the targets', then those of the projects'
    /// listing, each once.
    fn projects(&self) -> Vec<String> {
        let lists = lock(&self.lists);
        let listed = lists.projects.iter().flat_map(|p| &p.group_ids);
        let mut seen = HashSet::new();
        let targets = self.targets.iter().map(|(id, _)| id);
        targets
            .chain(listed)
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect()
    }

    async fn refresh_projects(&self, deadline: Deadline) -> DiscoveryReport {
        let listed_at = lock(&self.lists)
            .projects
            .as_ref()
            .and_then(|p| p.listed_at);
        if !self.fresh(listed_at) {
            let listed = self.client.list_projects(self.max_pages, deadline).await;
            let mut lists = lock(&self.lists);
            let list = lists.projects.get_or_insert(ProjectsList {
                listed_at: None,
                group_ids: Vec::new(),
                up: false,
            });
            list.up = listed.is_ok();
            match listed {
                Ok(projects) => {
                    for project in &projects {
                        if let Some(id) = &project.id {
                            self.metadata.put_project_name(id, project.name.clone());
                        }
                    }
                    let invalid = projects.iter().filter(|p| p.id.is_none()).count();
                    // A project Atlas counts no clusters in has nothing to list.
                    let with_clusters = projects.into_iter().filter(|p| p.cluster_count != Some(0));
                    list.group_ids = with_clusters.filter_map(|p| p.id).collect();
                    list.listed_at = Some(self.client.clock().now());
                    if invalid > 0 {
                        tracing::warn!(projects = invalid, "skipped projects listed without an id");
                    }
                }
                Err(error) => {
                    let reused = list.group_ids.len();
                    drop(lists);
                    tracing::warn!(
                        %error,
                        reused_projects = reused,
                        "listing the projects failed; using the last list that worked"
                    );
                }
            }
        }
        let up = lock(&self.lists).projects.as_ref().is_some_and(|p| p.up);
        DiscoveryReport {
            group_id: None,
            labels: self.no_labels.clone(),
            up,
            skipped: None,
        }
    }

    async fn refresh_one(&self, group_id: &str, deadline: Deadline) -> DiscoveryReport {
        let listed_at = lock(&self.lists)
            .clusters
            .get(group_id)
            .and_then(|list| list.listed_at);
        if !self.fresh(listed_at) {
            let listed = self
                .client
                .list_clusters(group_id, self.max_pages, deadline)
                .await;
            self.store(group_id, listed);
        }
        let lists = lock(&self.lists);
        let list = lists.clusters.get(group_id);
        DiscoveryReport {
            group_id: Some(group_id.to_owned()),
            labels: self.labels(group_id).clone(),
            up: list.is_some_and(|l| l.up),
            skipped: Some(list.map(|l| l.skipped.clone()).unwrap_or_default()),
        }
    }

    /// Keeps what listing a project's clusters gave, and logs what it does not watch.
    fn store(&self, group_id: &str, listed: Result<crate::atlas::ClusterList, AtlasError>) {
        let listed = match listed {
            Ok(listed) => listed,
            Err(error) => {
                let mut lists = lock(&self.lists);
                let list = lists.clusters.entry(group_id.to_owned()).or_default();
                list.up = false;
                let reused = list.clusters.len();
                drop(lists);
                let role = Endpoint::ListClusters.route().role.unwrap_or_default();
                match &error {
                    AtlasError::Status { status: 403, .. } => tracing::warn!(
                        group_id,
                        %error,
                        missing_role = role,
                        reused_clusters = reused,
                        "cannot list the project's clusters: the credential needs the {role} role there; using the last list that worked"
                    ),
                    _ => tracing::warn!(
                        group_id,
                        %error,
                        reused_clusters = reused,
                        "cluster discovery failed; using the last list that worked"
                    ),
                }
                return;
            }
        };
        let mut skipped = Skipped {
            invalid: listed.invalid,
            ..Skipped::default()
        };
        let mut clusters = Vec::new();
        for ClusterItem {
            name,
            unwatched,
            details,
        } in listed.clusters
        {
            self.metadata.put_cluster(group_id, &name, details);
            let configured = self
                .configured
                .contains(&(group_id.to_owned(), name.clone()));
            match unwatched {
                Some(reason) if !configured => {
                    let index = Unwatched::ALL.iter().position(|r| *r == reason);
                    skipped.unwatched[index.unwrap_or_default()] += 1;
                    tracing::info!(
                        group_id,
                        cluster_name = name,
                        reason = reason.label(),
                        "not watching the cluster: it has no Cloud Backup snapshots to export"
                    );
                }
                _ => clusters.push(name),
            }
        }
        if skipped.invalid > 0 {
            tracing::warn!(
                group_id,
                clusters = skipped.invalid,
                "skipped clusters listed without a name"
            );
        }
        let mut lists = lock(&self.lists);
        let lists = &mut *lists;
        let list = lists.clusters.entry(group_id.to_owned()).or_default();
        if clusters != list.clusters {
            lists.generation += 1;
        }
        *list = ClusterList {
            listed_at: Some(self.client.clock().now()),
            clusters,
            skipped,
            up: true,
        };
    }

    /// A project's labels: its first target's, or none.
    fn labels(&self, group_id: &str) -> &Labels {
        self.target_labels.get(group_id).unwrap_or(&self.no_labels)
    }

    /// The clusters the lists hold that the config does not name, each once, without calling
    /// Atlas; with the generation of the lists they come from.
    pub(super) fn clusters(&self) -> (u64, Vec<WatchedCluster>) {
        let projects = self.projects();
        let lists = lock(&self.lists);
        let mut clusters = Vec::new();
        for group_id in &projects {
            for name in lists
                .clusters
                .get(group_id)
                .iter()
                .flat_map(|l| &l.clusters)
            {
                let key = (group_id.clone(), name.clone());
                if self.configured.contains(&key) {
                    continue;
                }
                clusters.push(WatchedCluster {
                    group_id: key.0,
                    cluster_name: key.1,
                    labels: self.labels(group_id).clone(),
                    job_ids: None,
                    expect: *self
                        .target_expectations
                        .get(group_id)
                        .unwrap_or(&self.no_target),
                });
            }
        }
        (lists.generation, clusters)
    }

    /// The generation of the lists (see [`Discovery::clusters`]).
    pub(super) fn generation(&self) -> u64 {
        lock(&self.lists).generation
    }

    /// How the last listing of the projects and of each project went, without calling Atlas.
    pub(super) fn last_reports(&self) -> Vec<DiscoveryReport> {
        let projects = self.projects();
        let lists = lock(&self.lists);
        let listing = lists.projects.as_ref().map(|p| DiscoveryReport {
            group_id: None,
            labels: self.no_labels.clone(),
            up: p.up,
            skipped: None,
        });
        let each = projects.into_iter().filter_map(|group_id| {
            let list = lists.clusters.get(&group_id)?;
            Some(DiscoveryReport {
                labels: self.labels(&group_id).clone(),
                group_id: Some(group_id),
                up: list.up,
                skipped: Some(list.skipped.clone()),
            })
        });
        listing.into_iter().chain(each).collect()
    }
}
