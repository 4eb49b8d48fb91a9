//! A stand-in for the MongoDB Atlas Administration API, for tests, the demo and benchmarks.
//!
//! It behaves like Atlas rather than like the exporter: HTTP digest auth with the challenge,
//! nonce bookkeeping and error body Atlas sends; OAuth client-credentials tokens; paged
//! listings with `links` and `totalCount`; Atlas's 404 bodies and `X-Error-Code` header; the
//! versioned `Accept` header on v2. On top of that it can add latency, inject faults and count
//! the requests it saw, so tests can assert how many calls a scrape cost.
//!
//! Layout: `auth` (digest nonces and OAuth tokens), `store` (projects, clusters and jobs, kept
//! in listing order), `faults` (what can go wrong), `hostile` (bodies that misbehave on the
//! wire), `connections` (TCP streams a fault can reset), `http` (routing and Atlas's
//! responses), `fixtures` (the job builder, the seed page's examples and the demo data).

mod auth;
mod connections;
mod faults;
mod fixtures;
mod hostile;
mod http;
mod store;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{Notify, watch};

pub use faults::{Fault, Gate, Meter};
pub use fixtures::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_EXPIRED_SNAPSHOT_ID, DEMO_GROUP_ID,
    DEMO_MOVING_JOB_ID, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, DEMO_TOOLING_GROUP_ID, DemoHandle,
    DemoTimings, JobBuilder, atlas_time, job, seed_examples,
};

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
    fn is_sharded(self) -> bool {
        matches!(self, ClusterKind::Sharded | ClusterKind::AsymmetricSharded)
    }
}

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
struct Storm {
    group_id: String,
    endpoint: String,
    retry_after: u64,
    until: std::time::Instant,
}

/// A stand-in Atlas bound to its address and not yet serving: what [`FakeAtlas::bind`] returns.
pub struct BoundAtlas {
    fake: FakeAtlas,
    listener: TcpListener,
    addr: SocketAddr,
}

impl BoundAtlas {
    /// `http://ADDRESS:PORT`, the value for the exporter's `atlas.base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes.
    ///
    /// Requests held by a [`Fault::hang`] are released with a 503 when shutting down, so
    /// the graceful shutdown does not wait for them forever.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        // This server's own flag: its shutdown releases its hung requests, no other server's.
        let closing = Arc::new(watch::Sender::new(false));
        let fake = FakeAtlas {
            inner: self.fake.inner,
            closing: closing.clone(),
        };
        let listener = connections::Connections(self.listener);
        let app = fake
            .router()
            .into_make_service_with_connect_info::<connections::ResetSwitch>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                closing.send_replace(true);
            })
            .await
    }
}

/// The stand-in Atlas: cheap to clone, every clone shares the same data and counters.
#[derive(Clone)]
pub struct FakeAtlas {
    inner: Arc<Inner>,
    /// Flips to true when the server whose router holds this handle shuts down, releasing
    /// its hung requests. Each [`BoundAtlas::serve`] has its own.
    closing: Arc<watch::Sender<bool>>,
}

struct Inner {
    auth: Mutex<auth::AuthState>,
    store: Mutex<store::Store>,
    faults: Mutex<Vec<Fault>>,
    latency: Mutex<Duration>,
    counts: Mutex<RequestCounts>,
    /// The `RateLimit-Limit` and `RateLimit-Remaining` every 200 carries (none: left out).
    rate_limit: Mutex<(Option<u64>, Option<u64>)>,
    storms: Mutex<Vec<Storm>>,
    /// Wakes [`FakeAtlas::wait_for_requests`] whenever a counter moves.
    counted: Notify,
    /// One stop flag per server [`FakeAtlas::start`] launched and not yet stopped.
    started: Mutex<Vec<watch::Sender<bool>>>,
}

/// Locks a mutex, carrying on with the data if a panicking test thread poisoned it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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

    /// Binds `addr` and returns the bound server, which knows its address before it serves.
    ///
    /// The address comes from the bound listener, never from state a task fills in later, so
    /// [`BoundAtlas::base_url`] can be asked for before [`BoundAtlas::serve`] runs.
    pub async fn bind(&self, addr: impl ToSocketAddrs) -> io::Result<BoundAtlas> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(BoundAtlas {
            fake: self.clone(),
            listener,
            addr,
        })
    }

    /// Binds `127.0.0.1:0`, serves in a background task and returns the base URL
    /// (`http://127.0.0.1:PORT`), the value for the exporter's `atlas.base_url`.
    ///
    /// The server runs until [`FakeAtlas::shutdown`] or the end of the tokio runtime.
    pub async fn start(&self) -> io::Result<String> {
        let bound = self.bind("127.0.0.1:0").await?;
        let base_url = bound.base_url();
        let (stop_sender, mut stopped) = watch::channel(false);
        lock(&self.inner.started).push(stop_sender);
        tokio::spawn(async move {
            let stop = async move {
                // An error means the sender is gone, which cannot happen while `bound` lives.
                let _ = stopped.wait_for(|c| *c).await;
            };
            if let Err(err) = bound.serve(stop).await {
                tracing::warn!(%err, "stand-in Atlas stopped");
            }
        });
        Ok(base_url)
    }

    /// Stops the servers [`FakeAtlas::start`] launched (on any clone) and releases their hung
    /// requests. Servers of [`BoundAtlas::serve`] stop with their own shutdown future, and
    /// a later `start` serves anew.
    pub fn shutdown(&self) {
        for stop in lock(&self.inner.started).drain(..) {
            stop.send_replace(true);
        }
    }

    /// The whole API as an axum router, for serving it some other way.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(http::handle)
            .with_state(self.clone())
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
