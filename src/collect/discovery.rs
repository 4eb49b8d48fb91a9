//! Discovery: the clusters of the projects the config names without a cluster list, and with
//! `discovery.all_projects` of every project, each list reused for `discovery.interval`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::{Labels, WatchedCluster, lock};
use crate::atlas::{AtlasClient, AtlasError, Deadline};
use crate::config::Config;

/// Whether listing the clusters of a project (or of every project, `group_id` None) worked.
#[derive(Debug)]
pub struct DiscoveryReport {
    pub group_id: Option<String>,
    pub labels: Labels,
    pub up: bool,
}

/// The cluster lists of the projects to discover, and when each was made.
pub(super) struct Discovery {
    client: AtlasClient,
    max_pages: u32,
    interval: Duration,
    /// What is listed: each project to discover, in config order, then (`group_id` None) every
    /// project, when `discovery.all_projects` asks for it.
    projects: Vec<Project>,
    /// The labels of each project the config names (its first target's), which the clusters
    /// discovered in it keep.
    target_labels: HashMap<String, Labels>,
    /// The clusters the config names: watched as configured, never as discovered.
    configured: HashSet<(String, String)>,
    lists: Mutex<Lists>,
}

struct Project {
    group_id: Option<String>,
    labels: Labels,
}

struct Lists {
    /// The last list of each of `Discovery::projects`, by the same index; `None` until the
    /// project is first listed.
    lists: Vec<Option<ProjectList>>,
    /// Counts the changes to the lists' clusters: whoever keeps something per discovered
    /// cluster knows from it when clusters may have gone.
    generation: u64,
}

#[derive(Default)]
struct ProjectList {
    /// When the clusters were last listed successfully.
    listed_at: Option<Instant>,
    /// `(group_id, cluster name)` as the last listing that worked found them.
    clusters: Vec<(String, String)>,
    /// Whether the last listing worked.
    up: bool,
}

impl Discovery {
    pub(super) fn new(config: &Config, client: AtlasClient) -> Discovery {
        let mut projects: Vec<Project> = config
            .targets
            .iter()
            .filter(|t| t.clusters.is_none())
            .map(|t| Project {
                group_id: Some(t.group_id.clone()),
                labels: t.labels.clone().into(),
            })
            .collect();
        if config.discovery.all_projects {
            projects.push(Project {
                group_id: None,
                labels: Labels::from([]),
            });
        }
        let mut target_labels = HashMap::new();
        for target in &config.targets {
            target_labels
                .entry(target.group_id.clone())
                .or_insert_with(|| Labels::from(target.labels.clone()));
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
            lists: Mutex::new(Lists {
                lists: projects.iter().map(|_| None).collect(),
                generation: 0,
            }),
            projects,
            target_labels,
            configured,
        }
    }

    /// Lists the clusters of every project whose list is older than `discovery.interval` (the
    /// projects at once, then every project), falling back to the last list that worked. One
    /// report per list, made or reused.
    pub(super) async fn refresh(&self, deadline: Deadline) -> Vec<DiscoveryReport> {
        let (each, every): (Vec<usize>, Vec<usize>) =
            (0..self.projects.len()).partition(|&i| self.projects[i].group_id.is_some());
        let mut reports = join_all(each.into_iter().map(|i| self.refresh_one(i, deadline))).await;
        for index in every {
            reports.push(self.refresh_one(index, deadline).await);
        }
        reports
    }

    async fn refresh_one(&self, index: usize, deadline: Deadline) -> DiscoveryReport {
        let project = &self.projects[index];
        let report = |up| DiscoveryReport {
            group_id: project.group_id.clone(),
            labels: project.labels.clone(),
            up,
        };
        let listed_at = lock(&self.lists).lists[index]
            .as_ref()
            .and_then(|list| list.listed_at);
        if let Some(at) = listed_at
            && !self.interval.is_zero()
            && at.elapsed() < self.interval
        {
            return report(true);
        }
        let listed = self.list(project.group_id.as_deref(), deadline).await;
        let up = listed.is_ok();
        let (reused, error) = {
            let mut lists = lock(&self.lists);
            let lists = &mut *lists;
            let list = lists.lists[index].get_or_insert_with(ProjectList::default);
            list.up = up;
            match listed {
                Ok(clusters) => {
                    if clusters != list.clusters {
                        lists.generation += 1;
                    }
                    list.clusters = clusters;
                    list.listed_at = Some(Instant::now());
                    (0, None)
                }
                Err(error) => (list.clusters.len(), Some(error)),
            }
        };
        if let Some(error) = error {
            tracing::warn!(
                group_id = project.group_id.as_deref().unwrap_or("*"),
                %error,
                reused_clusters = reused,
                "cluster discovery failed; using the last list that worked"
            );
        }
        report(up)
    }

    /// The clusters of one project (or of every project, `group_id` None) as
    /// `(group_id, cluster name)`.
    async fn list(
        &self,
        group_id: Option<&str>,
        deadline: Deadline,
    ) -> Result<Vec<(String, String)>, AtlasError> {
        match group_id {
            Some(group_id) => {
                let names = self
                    .client
                    .list_clusters(group_id, self.max_pages, deadline)
                    .await?;
                Ok(names
                    .into_iter()
                    .map(|name| (group_id.to_owned(), name))
                    .collect())
            }
            None => {
                let projects = self
                    .client
                    .list_all_clusters(self.max_pages, deadline)
                    .await?;
                Ok(projects
                    .into_iter()
                    .flat_map(|p| {
                        let group_id = p.group_id;
                        p.clusters
                            .into_iter()
                            .map(move |c| (group_id.clone(), c.name))
                    })
                    .collect())
            }
        }
    }

    /// The clusters the lists hold that the config does not name, each once, without calling
    /// Atlas; with the generation of the lists they come from.
    pub(super) fn clusters(&self) -> (u64, Vec<WatchedCluster>) {
        let lists = lock(&self.lists);
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let mut clusters = Vec::new();
        for (project, list) in self.projects.iter().zip(&lists.lists) {
            for (group_id, name) in list.iter().flat_map(|list| &list.clusters) {
                let key = (group_id.clone(), name.clone());
                if self.configured.contains(&key) || !seen.insert((group_id, name)) {
                    continue;
                }
                // A project that is also a target keeps that target's labels.
                let labels = self.target_labels.get(group_id).unwrap_or(&project.labels);
                clusters.push(WatchedCluster {
                    group_id: key.0,
                    cluster_name: key.1,
                    labels: labels.clone(),
                    job_ids: None,
                });
            }
        }
        (lists.generation, clusters)
    }

    /// The generation of the lists (see [`Discovery::clusters`]).
    pub(super) fn generation(&self) -> u64 {
        lock(&self.lists).generation
    }

    /// How the last listing of each project went, without calling Atlas.
    pub(super) fn last_reports(&self) -> Vec<DiscoveryReport> {
        let lists = lock(&self.lists);
        let listed = self.projects.iter().zip(&lists.lists);
        listed
            .filter_map(|(project, list)| {
                Some(DiscoveryReport {
                    group_id: project.group_id.clone(),
                    labels: project.labels.clone(),
                    up: list.as_ref()?.up,
                })
            })
            .collect()
    }
}
