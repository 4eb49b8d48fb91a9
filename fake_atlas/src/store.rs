//! Projects, clusters and export jobs, kept ready to serve.
//!
//! Jobs are serialized once when stored and listed through a cached permutation, so a page
//! costs a copy of its own jobs' text, whatever the size of the cluster (benchmarks run
//! 1,000 clusters and 5,000 jobs per cluster).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The order in which the stand-in lists a cluster's export jobs.
///
/// Atlas does not document it; the recordings suggest newest first. The other two modes let
/// tests prove the exporter does not depend on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Largest `createdAt` first (the default, as Atlas appears to do).
    #[default]
    NewestFirst,
    /// Smallest `createdAt` first.
    OldestFirst,
    /// A fixed pseudo-random permutation: the same on every request and every run.
    Unordered,
}

/// What kind of cluster the stand-in describes: what its cluster listings say about it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClusterKind {
    /// A dedicated replica set with Cloud Backup on.
    #[default]
    ReplicaSet,
    /// Two shards of the same size.
    Sharded,
    /// Two shards of different sizes: the cluster listings before 2024-08-05 refuse the whole
    /// project (`ASYMMETRIC_SHARD_UNSUPPORTED`).
    AsymmetricSharded,
    /// Regions on two cloud providers: `GET /clusters` leaves it out.
    MultiCloud,
    /// Shared tier or Flex: every region's provider is `TENANT`; no Cloud Backup.
    Tenant,
    /// A dedicated replica set with Cloud Backup off.
    BackupDisabled,
    /// A paused replica set: its snapshots and exports are still there.
    Paused,
}

impl ClusterKind {
    pub(crate) fn is_sharded(self) -> bool {
        matches!(self, ClusterKind::Sharded | ClusterKind::AsymmetricSharded)
    }
}

/// The organisation every project belongs to (the recorder's placeholder id).
pub(super) const ORG_ID: &str = "a0123456789abcdef012345a";
pub(super) const ORG_NAME: &str = "Example Organization";
const MONGODB_VERSION: &str = "8.0.12";
/// Every cluster's `createDate` unless a test sets another.
const CLUSTER_CREATED: &str = "2026-01-05T09:30:00Z";

#[derive(Default)]
pub(super) struct Store {
    pub(super) order: Order,
    /// Added to every export-job listing's `totalCount`.
    pub(super) total_count_error: i64,
    groups: BTreeMap<String, Group>,
}

struct Group {
    name: String,
    clusters: BTreeMap<String, Cluster>,
    /// Export buckets by id: name and cloud provider.
    buckets: BTreeMap<String, (String, String)>,
}

struct Cluster {
    id: String,
    kind: ClusterKind,
    /// Atlas resource tags, key and value, in the order given.
    tags: Vec<(String, String)>,
    /// `createDate`, as Atlas writes it; `None`: left out of the cluster's description.
    created: Option<String>,
    /// The backup schedule's auto-export: bucket id and `frequencyType`; `None`: off.
    auto_export: Option<(String, String)>,
    /// Snapshots Atlas still has: id to `createdAt`.
    snapshots: HashMap<String, String>,
    /// In insertion order; a replaced job keeps its place.
    jobs: Vec<StoredJob>,
    by_id: HashMap<String, usize>,
    /// Listing order as indices into `jobs`, computed on demand and dropped on any change.
    listing: Option<(Order, Arc<[u32]>)>,
}

struct StoredJob {
    id: Option<String>,
    created: Option<i128>,
    text: Arc<str>,
}

/// Which part of a path Atlas does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Missing {
    Group,
    Cluster,
    Job,
    Snapshot,
}

/// One page of a listing: its items and the size of the whole listing.
pub(super) struct Page<T> {
    pub(super) items: Vec<T>,
    pub(super) total: usize,
}

impl Store {
    pub(super) fn add_group(&mut self, gid: &str) {
        self.group_mut(gid);
    }

    pub(super) fn set_group_name(&mut self, gid: &str, name: &str) {
        name.clone_into(&mut self.group_mut(gid).name);
    }

    fn group_mut(&mut self, gid: &str) -> &mut Group {
        self.groups.entry(gid.to_owned()).or_insert_with(|| Group {
            name: format!("Project {}", gid.chars().take(6).collect::<String>()),
            clusters: BTreeMap::new(),
            buckets: BTreeMap::new(),
        })
    }

    pub(super) fn add_bucket(&mut self, gid: &str, id: &str, name: &str, provider: &str) {
        let bucket = (name.to_owned(), provider.to_owned());
        self.group_mut(gid).buckets.insert(id.to_owned(), bucket);
    }

    /// A page of a project's export buckets, in the 2024-05-30 shape (`_id`, not `id`).
    pub(super) fn buckets_page(
        &self,
        gid: &str,
        start: usize,
        len: usize,
    ) -> Result<Page<Value>, Missing> {
        let g = self.groups.get(gid).ok_or(Missing::Group)?;
        let items = g.buckets.iter().skip(start).take(len);
        Ok(Page {
            items: items
                .map(|(id, (name, provider))| {
                    json!({"_id": id, "bucketName": name, "cloudProvider": provider, "links": []})
                })
                .collect(),
            total: g.buckets.len(),
        })
    }

    pub(super) fn add_cluster(&mut self, gid: &str, name: &str, kind: ClusterKind) {
        self.cluster_mut(gid, name, kind).kind = kind;
    }

    pub(super) fn set_cluster_tags(&mut self, gid: &str, name: &str, tags: &[(&str, &str)]) {
        let cluster = self.cluster_mut(gid, name, ClusterKind::ReplicaSet);
        cluster.tags = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    }

    pub(super) fn set_cluster_created(&mut self, gid: &str, name: &str, created: Option<&str>) {
        self.cluster_mut(gid, name, ClusterKind::ReplicaSet).created = created.map(str::to_owned);
    }

    pub(super) fn set_auto_export(
        &mut self,
        gid: &str,
        name: &str,
        export: Option<(String, String)>,
    ) {
        self.cluster_mut(gid, name, ClusterKind::ReplicaSet)
            .auto_export = export;
    }

    pub(super) fn add_snapshot(&mut self, gid: &str, name: &str, id: &str, created: &str) {
        let cluster = self.cluster_mut(gid, name, ClusterKind::ReplicaSet);
        cluster.snapshots.insert(id.to_owned(), created.to_owned());
    }

    pub(super) fn remove_snapshot(&mut self, gid: &str, name: &str, id: &str) {
        if let Some(c) = self
            .groups
            .get_mut(gid)
            .and_then(|g| g.clusters.get_mut(name))
        {
            c.snapshots.remove(id);
        }
    }

    /// The cluster's backup schedule, in the 2024-08-05 shape (the fields the exporter reads,
    /// and a few around them).
    pub(super) fn backup_schedule(&self, gid: &str, name: &str) -> Result<Value, Missing> {
        let c = self.cluster(gid, name)?;
        let mut schedule = json!({
            "autoExportEnabled": c.auto_export.is_some(),
            "clusterId": c.id,
            "clusterName": name,
            "links": [],
            "referenceHourOfDay": 3,
            "referenceMinuteOfHour": 45,
            "restoreWindowDays": 7,
            "useOrgAndGroupNamesInExportPrefix": false,
        });
        if let Some((bucket, frequency)) = &c.auto_export {
            schedule["export"] = json!({"exportBucketId": bucket, "frequencyType": frequency});
        }
        Ok(schedule)
    }

    /// A snapshot Atlas still has, at the path for the cluster's kind: a replica set's
    /// snapshot is not found at the sharded path, nor the other way round.
    pub(super) fn snapshot(
        &self,
        gid: &str,
        name: &str,
        id: &str,
        sharded: bool,
    ) -> Result<Value, Missing> {
        let c = self.cluster(gid, name)?;
        if c.kind.is_sharded() != sharded {
            return Err(Missing::Snapshot);
        }
        let created = c.snapshots.get(id).ok_or(Missing::Snapshot)?;
        let mut snapshot = json!({
            "id": id,
            "createdAt": created,
            "frequencyType": "daily",
            "mongodVersion": MONGODB_VERSION,
            "snapshotType": "scheduled",
            "status": "completed",
            "links": [],
        });
        if sharded {
            snapshot["type"] = json!("shardedCluster");
            snapshot["snapshotIds"] = json!([]);
        } else {
            snapshot["type"] = json!("replicaSet");
            snapshot["cloudProvider"] = json!("AWS");
        }
        Ok(snapshot)
    }

    /// Whether the project holds a cluster with asymmetric shards.
    pub(super) fn has_asymmetric(&self, gid: &str) -> bool {
        self.groups.get(gid).is_some_and(|g| {
            let mut kinds = g.clusters.values().map(|c| c.kind);
            kinds.any(|k| k == ClusterKind::AsymmetricSharded)
        })
    }

    /// The cluster, created (with its project) if needed.
    fn cluster_mut(&mut self, gid: &str, name: &str, kind: ClusterKind) -> &mut Cluster {
        self.group_mut(gid)
            .clusters
            .entry(name.to_owned())
            .or_insert_with(|| Cluster {
                id: fake_hex_id(&format!("cluster/{gid}/{name}")),
                kind,
                tags: Vec::new(),
                created: Some(CLUSTER_CREATED.to_owned()),
                auto_export: None,
                snapshots: HashMap::new(),
                jobs: Vec::new(),
                by_id: HashMap::new(),
                listing: None,
            })
    }

    pub(super) fn remove_cluster(&mut self, gid: &str, name: &str) {
        if let Some(g) = self.groups.get_mut(gid) {
            g.clusters.remove(name);
        }
    }

    pub(super) fn put_job(&mut self, gid: &str, name: &str, job: &Value) {
        let id = job.get("id").and_then(Value::as_str).map(str::to_owned);
        let created = job
            .get("createdAt")
            .and_then(Value::as_str)
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
            .map(OffsetDateTime::unix_timestamp_nanos);
        let stored = StoredJob {
            id: id.clone(),
            created,
            text: job.to_string().into(),
        };
        let cluster = self.cluster_mut(gid, name, ClusterKind::ReplicaSet);
        cluster.listing = None;
        match id.as_ref().and_then(|id| cluster.by_id.get(id)) {
            Some(&i) => cluster.jobs[i] = stored,
            None => {
                if let Some(id) = id {
                    cluster.by_id.insert(id, cluster.jobs.len());
                }
                cluster.jobs.push(stored);
            }
        }
    }

    pub(super) fn remove_job(&mut self, gid: &str, name: &str, job_id: &str) {
        let Some(c) = self
            .groups
            .get_mut(gid)
            .and_then(|g| g.clusters.get_mut(name))
        else {
            return;
        };
        if let Some(i) = c.by_id.remove(job_id) {
            c.jobs.remove(i);
            c.listing = None;
            for v in c.by_id.values_mut() {
                if *v > i {
                    *v -= 1;
                }
            }
        }
    }

    pub(super) fn job_count(&self, gid: &str, name: &str) -> usize {
        self.groups
            .get(gid)
            .and_then(|g| g.clusters.get(name))
            .map_or(0, |c| c.jobs.len())
    }

    fn cluster(&self, gid: &str, name: &str) -> Result<&Cluster, Missing> {
        self.groups
            .get(gid)
            .ok_or(Missing::Group)?
            .clusters
            .get(name)
            .ok_or(Missing::Cluster)
    }

    /// Jobs `start..start+len` of the cluster's listing, as serialized JSON.
    pub(super) fn job_page(
        &mut self,
        gid: &str,
        name: &str,
        start: usize,
        len: usize,
    ) -> Result<Page<Arc<str>>, Missing> {
        let order = self.order;
        let c = self
            .groups
            .get_mut(gid)
            .ok_or(Missing::Group)?
            .clusters
            .get_mut(name)
            .ok_or(Missing::Cluster)?;
        let listing = match &c.listing {
            Some((o, l)) if *o == order => Arc::clone(l),
            _ => {
                let l: Arc<[u32]> = listing(&c.jobs, order).into();
                c.listing = Some((order, Arc::clone(&l)));
                l
            }
        };
        let items = listing
            .iter()
            .skip(start)
            .take(len)
            .filter_map(|&i| c.jobs.get(i as usize))
            .map(|j| Arc::clone(&j.text))
            .collect();
        Ok(Page {
            items,
            total: c.jobs.len(),
        })
    }

    pub(super) fn job(&self, gid: &str, name: &str, job_id: &str) -> Result<Arc<str>, Missing> {
        let c = self.cluster(gid, name)?;
        c.by_id
            .get(job_id)
            .and_then(|&i| c.jobs.get(i))
            .map(|j| Arc::clone(&j.text))
            .ok_or(Missing::Job)
    }

    pub(super) fn group(&self, gid: &str) -> Result<Value, Missing> {
        let g = self.groups.get(gid).ok_or(Missing::Group)?;
        Ok(group_json(gid, g))
    }

    pub(super) fn groups_page(&self, start: usize, len: usize) -> Page<Value> {
        Page {
            items: self
                .groups
                .iter()
                .skip(start)
                .take(len)
                .map(|(gid, g)| group_json(gid, g))
                .collect(),
            total: self.groups.len(),
        }
    }

    pub(super) fn cluster_item(
        &self,
        gid: &str,
        name: &str,
        shape: Shape,
    ) -> Result<Value, Missing> {
        Ok(cluster_json(gid, name, self.cluster(gid, name)?, shape))
    }

    pub(super) fn clusters_page(
        &self,
        gid: &str,
        start: usize,
        len: usize,
        shape: Shape,
    ) -> Result<Page<Value>, Missing> {
        let g = self.groups.get(gid).ok_or(Missing::Group)?;
        Ok(Page {
            items: g
                .clusters
                .iter()
                .skip(start)
                .take(len)
                .map(|(name, c)| cluster_json(gid, name, c, shape))
                .collect(),
            total: g.clusters.len(),
        })
    }

    /// `GET /clusters`: one item per project, each with all its clusters but the multi-cloud
    /// ones, which this listing leaves out.
    pub(super) fn all_clusters_page(&self, start: usize, len: usize) -> Page<Value> {
        let items = self
            .groups
            .iter()
            .skip(start)
            .take(len)
            .map(|(gid, g)| {
                let clusters: Vec<Value> = g
                    .clusters
                    .iter()
                    .filter(|(_, c)| c.kind != ClusterKind::MultiCloud)
                    .map(|(name, c)| {
                        json!({
                            "alertCount": 0,
                            "authEnabled": true,
                            "availability": "available",
                            "backupEnabled": c.kind != ClusterKind::BackupDisabled,
                            "clusterId": c.id,
                            "dataSizeBytes": 0,
                            "name": name,
                            "nodeCount": 3,
                            "sslEnabled": true,
                            "type": if c.kind.is_sharded() { "SHARDED_CLUSTER" } else { "REPLICA_SET" },
                            "versions": [MONGODB_VERSION],
                        })
                    })
                    .collect();
                json!({
                    "clusters": clusters,
                    "groupId": gid,
                    "groupName": g.name,
                    "orgId": ORG_ID,
                    "orgName": ORG_NAME,
                    "planType": "Atlas",
                    "tags": [],
                })
            })
            .collect();
        Page {
            items,
            total: self.groups.len(),
        }
    }
}

fn group_json(gid: &str, g: &Group) -> Value {
    json!({
        "clusterCount": g.clusters.len(),
        "created": "2026-01-05T09:00:00Z",
        "id": gid,
        "links": [],
        "name": g.name,
        "orgId": ORG_ID,
    })
}

/// Which description of a cluster a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// v1.0: `providerSettings`, and Cloud Backup as `providerBackupEnabled` (`backupEnabled`
    /// is legacy backup, always off).
    V1,
    /// v2 before 2024-08-05: `replicationSpecs` with `numShards`, which cannot describe
    /// asymmetric shards.
    Legacy,
    /// v2 2024-08-05: one replication spec per shard.
    Current,
}

fn cluster_json(gid: &str, name: &str, c: &Cluster, shape: Shape) -> Value {
    let provider = match c.kind {
        ClusterKind::Tenant => "TENANT",
        _ => "AWS",
    };
    let region = |provider: &str, region: &str, priority: u32| {
        let mut config = json!({
            "providerName": provider,
            "regionName": region,
            "priority": priority,
            "electableSpecs": {"instanceSize": "M30", "nodeCount": 3},
        });
        if provider == "TENANT" {
            config["backingProviderName"] = json!("AWS");
            config["electableSpecs"] = json!({"instanceSize": "M0"});
        }
        config
    };
    let regions = match c.kind {
        ClusterKind::MultiCloud => vec![
            region("AWS", "US_EAST_1", 7),
            region("GCP", "CENTRAL_US", 6),
        ],
        _ => vec![region(provider, "US_EAST_1", 7)],
    };
    let shards = match c.kind {
        ClusterKind::Sharded | ClusterKind::AsymmetricSharded => 2,
        _ => 1,
    };
    let mut cluster = json!({
        "clusterType": if c.kind.is_sharded() { "SHARDED" } else { "REPLICASET" },
        "groupId": gid,
        "id": c.id,
        "mongoDBVersion": MONGODB_VERSION,
        "name": name,
        "paused": c.kind == ClusterKind::Paused,
        "stateName": "IDLE",
        "tags": c.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
    });
    if let Some(created) = &c.created {
        cluster["createDate"] = json!(created);
    }
    let backup = c.kind != ClusterKind::BackupDisabled;
    match shape {
        Shape::Current => {
            let specs: Vec<Value> = (0..shards)
                .map(|shard| {
                    let mut regions = regions.clone();
                    if c.kind == ClusterKind::AsymmetricSharded && shard == 1 {
                        regions[0]["electableSpecs"]["instanceSize"] = json!("M40");
                    }
                    json!({"regionConfigs": regions, "zoneName": "Zone 1"})
                })
                .collect();
            cluster["replicationSpecs"] = Value::Array(specs);
            cluster["backupEnabled"] = json!(backup);
        }
        Shape::Legacy => {
            cluster["replicationSpecs"] =
                json!([{"numShards": shards, "regionConfigs": regions, "zoneName": "Zone 1"}]);
            cluster["backupEnabled"] = json!(backup);
        }
        Shape::V1 => {
            cluster["providerSettings"] = json!({
                "providerName": provider,
                "regionName": "US_EAST_1",
                "instanceSizeName": if provider == "TENANT" { "M0" } else { "M30" },
            });
            cluster["numShards"] = json!(shards);
            cluster["providerBackupEnabled"] = json!(backup);
            cluster["backupEnabled"] = json!(false);
        }
    }
    cluster
}

/// The listing order of `jobs` as indices.
///
/// Jobs whose `createdAt` does not parse keep their insertion slot; the others are sorted
/// into the remaining slots. Ties go to insertion order (newest first: the later insert).
fn listing(jobs: &[StoredJob], order: Order) -> Vec<u32> {
    let n = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
    let created = |i: u32| jobs.get(i as usize).and_then(|j| j.created);
    match order {
        Order::Unordered => {
            let mut idx: Vec<u32> = (0..n).collect();
            idx.sort_by_cached_key(|&i| {
                let key = jobs
                    .get(i as usize)
                    .and_then(|j| j.id.as_deref())
                    .map_or_else(|| i.to_string(), str::to_owned);
                (mix(fnv1a(key.as_bytes())), i)
            });
            idx
        }
        Order::NewestFirst | Order::OldestFirst => {
            let mut dated: Vec<(i128, u32)> =
                (0..n).filter_map(|i| created(i).map(|c| (c, i))).collect();
            if order == Order::NewestFirst {
                dated.sort_unstable_by(|a, b| b.cmp(a));
            } else {
                dated.sort_unstable();
            }
            let mut sorted = dated.into_iter().map(|(_, i)| i);
            (0..n)
                .map(|i| match created(i) {
                    Some(_) => sorted.next().unwrap_or(i),
                    None => i,
                })
                .collect()
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// splitmix64's finalizer: spreads similar ids far apart.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable 24-hex id derived from a name, so the same fixture gives the same ids.
pub(super) fn fake_hex_id(name: &str) -> String {
    let a = mix(fnv1a(name.as_bytes()));
    let b = mix(a ^ 0x5bd1_e995);
    format!("{a:016x}{:08x}", b >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(store: &mut Store, n: usize) -> Vec<String> {
        let Ok(page) = store.job_page("g", "c", 0, n) else {
            return Vec::new();
        };
        page.items
            .iter()
            .map(|t| {
                serde_json::from_str::<Value>(t)
                    .ok()
                    .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn unparsable_dates_keep_their_slot() {
        let mut s = Store::default();
        for (id, at) in [
            ("a", "2026-01-02T00:00:00Z"),
            ("bad", "yesterday"),
            ("b", "2026-01-03T00:00:00Z"),
            ("c", "2026-01-01T00:00:00.5Z"),
        ] {
            s.put_job("g", "c", &json!({"id": id, "createdAt": at}));
        }
        assert_eq!(ids(&mut s, 10), ["b", "bad", "a", "c"]);
        s.order = Order::OldestFirst;
        assert_eq!(ids(&mut s, 10), ["c", "bad", "a", "b"]);
        // Replacing keeps the slot and re-sorts.
        s.put_job(
            "g",
            "c",
            &json!({"id": "c", "createdAt": "2027-01-01T00:00:00Z"}),
        );
        assert_eq!(ids(&mut s, 10), ["a", "bad", "b", "c"]);
        s.remove_job("g", "c", "bad");
        assert_eq!(ids(&mut s, 10), ["a", "b", "c"]);
        assert!(s.job("g", "c", "bad").is_err());
        assert!(s.job("g", "c", "b").is_ok());
    }

    #[test]
    fn fake_ids_are_24_hex() {
        let id = fake_hex_id("x");
        assert_eq!(id.len(), 24);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, fake_hex_id("x"));
        assert_ne!(id, fake_hex_id("y"));
    }
}
