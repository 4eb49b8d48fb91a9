//! The stand-in's shared state, [`FakeAtlas`]: what it holds (credentials, the estate,
//! faults, counters) and the calls that set it up and read it. Serving it is `server`'s,
//! answering requests `http`'s.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

use crate::auth;
use crate::faults::Fault;
use crate::fixtures;
use crate::store::{self, ClusterKind, Order};

/// A snapshot of the requests the stand-in saw, for asserting the cost of a scrape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every HTTP request, whatever its outcome.
    pub total: u64,
    /// 401 answers carrying a digest challenge (missing, wrong or stale digest).
    pub challenges: u64,
    /// Requests per endpoint, authenticated or not, under the exporter's `endpoint` labels
    /// (`list_projects`, `get_project`, `list_clusters`, `get_cluster`, `list_export_jobs`,
    /// `get_export_job`, `list_export_buckets`, `oauth_token`), plus `list_all_clusters` and
    /// `other`.
    pub by_endpoint: BTreeMap<String, u64>,
    /// Requests per project and endpoint, for the endpoints under `/groups/{groupId}`.
    pub by_project: BTreeMap<(String, String), u64>,
}

impl RequestCounts {
    /// Requests seen for one endpoint name (0 when none).
    pub fn endpoint(&self, name: &str) -> u64 {
        self.by_endpoint.get(name).copied().unwrap_or(0)
    }

    /// Requests seen for one endpoint name in one project (0 when none).
    pub fn in_project(&self, group_id: &str, name: &str) -> u64 {
        self.by_project
            .get(&(group_id.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

/// A rate-limit storm: every request to one endpoint of one project answered 429 until the
/// stand-in's clock passes `until`.
#[derive(Clone, Debug)]
pub(crate) struct Storm {
    pub(crate) group_id: String,
    pub(crate) endpoint: String,
    pub(crate) retry_after: u64,
    pub(crate) until: std::time::Instant,
}

/// The stand-in Atlas: cheap to clone, every clone shares the same data and counters.
#[derive(Clone)]
pub struct FakeAtlas {
    pub(crate) inner: Arc<Inner>,
    /// Flips to true when the server whose router holds this handle shuts down, releasing
    /// its hung requests. Each [`BoundAtlas::serve`] has its own.
    pub(crate) closing: Arc<watch::Sender<bool>>,
}

pub(crate) struct Inner {
    pub(crate) auth: Mutex<auth::AuthState>,
    pub(crate) store: Mutex<store::Store>,
    pub(crate) faults: Mutex<Vec<Fault>>,
    pub(crate) latency: Mutex<Duration>,
    pub(crate) counts: Mutex<RequestCounts>,
    /// The `RateLimit-Limit` and `RateLimit-Remaining` every 200 carries (none: left out).
    pub(crate) rate_limit: Mutex<(Option<u64>, Option<u64>)>,
    pub(crate) storms: Mutex<Vec<Storm>>,
    /// Wakes [`FakeAtlas::wait_for_requests`] whenever a counter moves.
    pub(crate) counted: Notify,
    /// One stop flag per server [`FakeAtlas::start`] launched and not yet stopped.
    pub(crate) started: Mutex<Vec<watch::Sender<bool>>>,
}

/// Locks a mutex, carrying on with the data if a panicking test thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for FakeAtlas {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeAtlas {
    /// An empty Atlas: no credentials accepted, no projects, jobs listed newest first.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                auth: Mutex::new(auth::AuthState::default()),
                store: Mutex::new(store::Store::default()),
                faults: Mutex::new(Vec::new()),
                latency: Mutex::new(Duration::ZERO),
                counts: Mutex::new(RequestCounts::default()),
                rate_limit: Mutex::new((Some(1200), Some(1192))),
                storms: Mutex::new(Vec::new()),
                counted: Notify::new(),
                started: Mutex::new(Vec::new()),
            }),
            closing: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Accepts this API key pair over digest auth (public key as user, private key as
    /// password). Call it again for more keys.
    pub fn with_api_key(self, public: &str, private: &str) -> Self {
        self.add_api_key(public, private);
        self
    }

    /// Accepts this service account at `POST /api/oauth/token`.
    pub fn with_service_account(self, client_id: &str, secret: &str) -> Self {
        self.add_service_account(client_id, secret);
        self
    }

    /// Lifetime of the OAuth tokens issued from now on (`expires_in`; Atlas uses 3600 s).
    pub fn with_token_lifetime(self, d: Duration) -> Self {
        lock(&self.inner.auth).token_lifetime = d;
        self
    }

    /// How long a digest nonce stays fresh (default 5 minutes); an older one gets a 401 with
    /// `stale=true`.
    pub fn with_nonce_lifetime(self, d: Duration) -> Self {
        lock(&self.inner.auth).nonce_lifetime = d;
        self
    }

    /// Same as [`FakeAtlas::with_api_key`], on a shared handle.
    pub fn add_api_key(&self, public: &str, private: &str) {
        lock(&self.inner.auth)
            .api_keys
            .insert(public.to_owned(), private.to_owned());
    }

    /// Same as [`FakeAtlas::with_service_account`], on a shared handle.
    pub fn add_service_account(&self, client_id: &str, secret: &str) {
        lock(&self.inner.auth)
            .clients
            .insert(client_id.to_owned(), secret.to_owned());
    }

    // ---- data ----

    /// Adds a project (no-op if it exists).
    pub fn add_group(&self, group_id: &str) {
        lock(&self.inner.store).add_group(group_id);
    }

    /// Names a project (adding it if needed); by default it is `Project` and its id's start.
    pub fn set_group_name(&self, group_id: &str, name: &str) {
        lock(&self.inner.store).set_group_name(group_id, name);
    }

    /// Adds an export bucket (`provider`: `AWS`, `AZURE` or `GCP`) to a project, adding the
    /// project if needed; the same id again replaces it.
    pub fn add_export_bucket(&self, group_id: &str, bucket_id: &str, name: &str, provider: &str) {
        lock(&self.inner.store).add_bucket(group_id, bucket_id, name, provider);
    }

    /// Sets a cluster's `createDate` (adding it as a replica set if needed).
    pub fn set_cluster_created(&self, group_id: &str, cluster: &str, created: OffsetDateTime) {
        let created = fixtures::atlas_time(created);
        lock(&self.inner.store).set_cluster_created(group_id, cluster, Some(&created));
    }

    /// Leaves `createDate` out of the cluster's description, as an answer that does not say
    /// when the cluster was created (adding it as a replica set if needed).
    pub fn clear_cluster_created(&self, group_id: &str, cluster: &str) {
        lock(&self.inner.store).set_cluster_created(group_id, cluster, None);
    }

    /// Turns on the cluster's auto-export to `bucket_id` every `frequency` (`monthly`,
    /// `yearly`, or anything else Atlas might send), adding it as a replica set if needed.
    pub fn set_auto_export(&self, group_id: &str, cluster: &str, bucket_id: &str, frequency: &str) {
        let export = Some((bucket_id.to_owned(), frequency.to_owned()));
        lock(&self.inner.store).set_auto_export(group_id, cluster, export);
    }

    /// Turns the cluster's auto-export off (as every cluster starts).
    pub fn disable_auto_export(&self, group_id: &str, cluster: &str) {
        lock(&self.inner.store).set_auto_export(group_id, cluster, None);
    }

    /// Adds a snapshot taken at `taken`; a snapshot never added answers 404, as an expired one.
    pub fn add_snapshot(
        &self,
        group_id: &str,
        cluster: &str,
        snapshot_id: &str,
        taken: OffsetDateTime,
    ) {
        let taken = fixtures::atlas_time(taken);
        lock(&self.inner.store).add_snapshot(group_id, cluster, snapshot_id, &taken);
    }

    /// Lets a snapshot expire: Atlas answers 404 for it from now on.
    pub fn expire_snapshot(&self, group_id: &str, cluster: &str, snapshot_id: &str) {
        lock(&self.inner.store).remove_snapshot(group_id, cluster, snapshot_id);
    }

    /// Sets a cluster's Atlas resource tags (adding it as a replica set if needed).
    pub fn set_cluster_tags(&self, group_id: &str, cluster: &str, tags: &[(&str, &str)]) {
        lock(&self.inner.store).set_cluster_tags(group_id, cluster, tags);
    }

    /// Adds a replica-set cluster, and its project if needed.
    pub fn add_cluster(&self, group_id: &str, name: &str) {
        lock(&self.inner.store).add_cluster(group_id, name, ClusterKind::ReplicaSet);
    }

    /// Adds a cluster of this kind, and its project if needed.
    pub fn add_cluster_of_kind(&self, group_id: &str, name: &str, kind: ClusterKind) {
        lock(&self.inner.store).add_cluster(group_id, name, kind);
    }

    /// Adds a sharded cluster, and its project if needed.
    pub fn add_sharded_cluster(&self, group_id: &str, name: &str) {
        lock(&self.inner.store).add_cluster(group_id, name, ClusterKind::Sharded);
    }

    /// Removes a cluster and its jobs (no-op if unknown).
    pub fn remove_cluster(&self, group_id: &str, name: &str) {
        lock(&self.inner.store).remove_cluster(group_id, name);
    }

    /// Inserts a job, or replaces the job with the same string `"id"`, adding the cluster
    /// (replica set) and project if needed. Any JSON is accepted, so tests can serve
    /// malformed jobs; only a string `"id"` makes it reachable by the get-one endpoint.
    pub fn put_job(&self, group_id: &str, cluster: &str, job: Value) {
        lock(&self.inner.store).put_job(group_id, cluster, &job);
    }

    /// [`FakeAtlas::put_job`] for many jobs under one lock (fast seeding for benchmarks).
    pub fn put_jobs(&self, group_id: &str, cluster: &str, jobs: impl IntoIterator<Item = Value>) {
        let mut store = lock(&self.inner.store);
        for job in jobs {
            store.put_job(group_id, cluster, &job);
        }
    }

    /// Removes the job with this id (no-op if unknown).
    pub fn remove_job(&self, group_id: &str, cluster: &str, job_id: &str) {
        lock(&self.inner.store).remove_job(group_id, cluster, job_id);
    }

    /// Number of jobs the stand-in holds for a cluster (0 if unknown).
    pub fn job_count(&self, group_id: &str, cluster: &str) -> usize {
        lock(&self.inner.store).job_count(group_id, cluster)
    }

    /// Makes every export-job listing's `totalCount` off by `error` jobs (Atlas calls it an
    /// estimate that may not be exact); 0 makes it exact again.
    pub fn set_total_count_error(&self, error: i64) {
        lock(&self.inner.store).total_count_error = error;
    }

    /// How export jobs are ordered in listings.
    pub fn set_order(&self, order: Order) {
        lock(&self.inner.store).order = order;
    }

    /// Waits this long before answering every request, the 401 legs included.
    pub fn set_latency(&self, d: Duration) {
        *lock(&self.inner.latency) = d;
    }

    /// Adds a fault; faults are tried in insertion order and the first match applies.
    pub fn inject(&self, fault: Fault) {
        lock(&self.inner.faults).push(fault);
    }

    /// The `RateLimit-Limit` and `RateLimit-Remaining` headers every 200 of the API carries:
    /// 1200 and 1192 unless set; `None` leaves a header out.
    pub fn set_rate_limit_headers(&self, limit: Option<u64>, remaining: Option<u64>) {
        *lock(&self.inner.rate_limit) = (limit, remaining);
    }

    /// Answers every request to `endpoint` (a name [`RequestCounts::by_endpoint`] counts
    /// under, e.g. `list_export_jobs`) in project `group_id` with 429
    /// `RATE_LIMITED_TOKEN_BUCKET`, `Retry-After: retry_after` and a remaining budget of 0,
    /// for `lasting` on the stand-in's clock ([`FakeAtlas::advance_clock`] ends it early).
    pub fn rate_limit_storm(
        &self,
        group_id: &str,
        endpoint: &str,
        retry_after: u64,
        lasting: Duration,
    ) {
        let until = lock(&self.inner.auth).now() + lasting;
        lock(&self.inner.storms).push(Storm {
            group_id: group_id.to_owned(),
            endpoint: endpoint.to_owned(),
            retry_after,
            until,
        });
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    /// Makes every nonce issued so far stale: its next use gets a 401 with `stale=true`.
    pub fn expire_nonces(&self) {
        lock(&self.inner.auth).expire_nonces();
    }

    /// Moves the stand-in's clock forward by `d`: its nonces and tokens age at once, so a test
    /// of their lifetimes need not wait for them.
    pub fn advance_clock(&self, d: Duration) {
        lock(&self.inner.auth).ahead += d;
    }

    /// Invalidates every OAuth token issued so far: their next use gets a 401.
    pub fn revoke_tokens(&self) {
        lock(&self.inner.auth).tokens.clear();
    }

    /// Every OAuth access token issued so far, revoked and expired ones included, oldest
    /// first: what a test looks for in logs and answers, where no token may appear.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.inner.auth).issued.clone()
    }

    /// The request counters as they are now.
    pub fn requests(&self) -> RequestCounts {
        lock(&self.inner.counts).clone()
    }

    /// Sets every request counter back to zero.
    pub fn reset_counts(&self) {
        *lock(&self.inner.counts) = RequestCounts::default();
        self.inner.counted.notify_waiters();
    }

    /// Waits until the request counters satisfy `done` and returns them, so a test waits for
    /// the requests it expects rather than sleeping. A request is counted when it arrives,
    /// before latency, authentication and faults. No time limit: wrap it in one.
    pub async fn wait_for_requests(&self, done: impl Fn(&RequestCounts) -> bool) -> RequestCounts {
        loop {
            // Registered before the counters are read, so no count between the two is missed.
            let mut counted = std::pin::pin!(self.inner.counted.notified());
            counted.as_mut().enable();
            let counts = self.requests();
            if done(&counts) {
                return counts;
            }
            counted.await;
        }
    }
}
