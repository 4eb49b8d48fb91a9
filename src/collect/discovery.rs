//! Discovery: the clusters of the projects the config names without a cluster list, and with
//! `discovery.all_projects` of every project the credential can see, each list reused for
//! `discovery.interval`.
//!
//! Every project is listed on its own (`GET /groups/{id}/clusters`): `GET /clusters`, which
//! lists every project's clusters at once, leaves multi-cloud clusters out. So `all_projects`
//! lists the projects (`GET /groups`), skips those Atlas counts no clusters in, and lists the
//! clusters of the others, all at once under the client's bound on requests in flight.
//!
//! The listings carry project names and cluster details too: discovery hands them on in its
//! result ([`Discovered`]), for the metadata to keep.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::expectation::ConfiguredExpectation;
use super::watched::{Labels, WatchedCluster, lock};
use crate::atlas::model::{ClusterDetails, ClusterItem, Unwatched};
use crate::atlas::{AtlasClient, AtlasError, Deadline, Endpoint};
use crate::clock::Clock;
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

/// What one refresh of discovery found, besides the lists it keeps.
#[derive(Debug, Default)]
pub(super) struct Discovered {
    /// One report for the projects' listing (with `all_projects`), then one per project.
    pub reports: Vec<DiscoveryReport>,
    pub names: Names,
    pub details: Details,
}

/// Each project a projects' listing gave, with its name (`None`: Atlas gave none).
type Names = Vec<(String, Option<String>)>;

/// Each cluster a project's listing gave, by project and name, with its details.
type Details = Vec<((String, String), ClusterDetails)>;

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
    /// What `discovery.interval` is measured on.
    clock: Clock,
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

#[derive(Default)]
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
    pub(super) fn new(config: &Config, client: AtlasClient, clock: Clock) -> Discovery {
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
            clock,
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
        }
    }

    /// Whether a list made at `listed_at` is still fresh.
    fn fresh(&self, listed_at: Option<Instant>) -> bool {
        let clock = &self.clock;
        listed_at.is_some_and(|at| !self.interval.is_zero() && clock.since(at) < self.interval)
    }

    /// Lists the projects (with `all_projects`) and then the clusters of every project to
    /// discover, each list only if it is older than `discovery.interval`, falling back to the
    /// last list that worked; with the names and details the listings made gave.
    pub(super) async fn refresh(&self, deadline: Deadline) -> Discovered {
        let mut found = Discovered::default();
        if self.all_projects {
            let (report, names) = self.refresh_projects(deadline).await;
            found.reports.push(report);
            found.names = names;
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
        for (report, details) in refreshed {
            found.reports.push(report);
            found.details.extend(details);
        }
        found
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

    /// Lists the projects if the list is not fresh; with the name of each project listed.
    async fn refresh_projects(&self, deadline: Deadline) -> (DiscoveryReport, Names) {
        let mut names = Vec::new();
        let listed_at = lock(&self.lists)
            .projects
            .as_ref()
            .and_then(|p| p.listed_at);
        if !self.fresh(listed_at) {
            let listed = self.client.list_projects(self.max_pages, deadline).await;
            let mut lists = lock(&self.lists);
            let list = lists.projects.get_or_insert_default();
            list.up = listed.is_ok();
            match listed {
                Ok(projects) => {
                    for project in &projects {
                        if let Some(id) = &project.id {
                            names.push((id.clone(), project.name.clone()));
                        }
                    }
                    let invalid = projects.iter().filter(|p| p.id.is_none()).count();
                    // A project Atlas counts no clusters in has nothing to list.
                    let with_clusters = projects.into_iter().filter(|p| p.cluster_count != Some(0));
                    list.group_ids = with_clusters.filter_map(|p| p.id).collect();
                    list.listed_at = Some(self.clock.now());
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
        let report = DiscoveryReport {
            group_id: None,
            labels: self.no_labels.clone(),
            up,
            skipped: None,
        };
        (report, names)
    }

    /// Lists a project's clusters if its list is not fresh; with the details of each cluster
    /// listed.
    async fn refresh_one(&self, group_id: &str, deadline: Deadline) -> (DiscoveryReport, Details) {
        let mut details = Vec::new();
        let listed_at = lock(&self.lists)
            .clusters
            .get(group_id)
            .and_then(|list| list.listed_at);
        if !self.fresh(listed_at) {
            let listed = self
                .client
                .list_clusters(group_id, self.max_pages, deadline)
                .await;
            details = self.store(group_id, listed);
        }
        let lists = lock(&self.lists);
        let list = lists.clusters.get(group_id);
        let report = DiscoveryReport {
            group_id: Some(group_id.to_owned()),
            labels: self.labels(group_id).clone(),
            up: list.is_some_and(|l| l.up),
            skipped: Some(list.map(|l| l.skipped.clone()).unwrap_or_default()),
        };
        (report, details)
    }

    /// Keeps what listing a project's clusters gave, and logs what it does not watch; gives the
    /// details of every cluster listed.
    fn store(
        &self,
        group_id: &str,
        listed: Result<crate::atlas::ClusterList, AtlasError>,
    ) -> Details {
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
                return Vec::new();
            }
        };
        let mut skipped = Skipped {
            invalid: listed.invalid,
            ..Skipped::default()
        };
        let mut clusters = Vec::new();
        let mut details_listed = Vec::with_capacity(listed.clusters.len());
        for ClusterItem {
            name,
            unwatched,
            details,
        } in listed.clusters
        {
            details_listed.push(((group_id.to_owned(), name.clone()), details));
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
            listed_at: Some(self.clock.now()),
            clusters,
            skipped,
            up: true,
        };
        details_listed
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
