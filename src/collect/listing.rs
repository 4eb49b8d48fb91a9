//! Listing a cluster's export jobs, incrementally where Atlas allows it.
//!
//! A cluster's list of jobs only grows, and a job in a terminal state never changes. Atlas does
//! not document the order of the listing, but it lists newest first (the recordings and the docs'
//! examples agree). So once a full page holds only finished jobs the last listing already saw,
//! the pages after it hold nothing new, and their jobs can be taken from that listing. Every
//! listing checks the assumption on the data (`createdAt` never increasing down the listing, and
//! `totalCount` equal to what is fetched plus what is kept) and pages through everything when it
//! does not hold.
//!
//! Every cluster's last listing is kept with the digests of the pages it was made of (its only
//! page, or the first pages of an incremental listing). In a steady state those pages come back
//! byte for byte the same, and the last listing is used again without parsing them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::future::join_all;
use prometheus::IntCounterVec;
use strum::VariantArray;

use super::tally::Tally;
use crate::atlas::model::{self, AtlasId, ExportJob, InvalidJob, Page};
use crate::atlas::{
    AtlasClient, AtlasError, Deadline, FetchedPage, ITEMS_PER_PAGE, Path, expected_pages, is_full,
    page_through,
};

/// Every export job of a cluster, as one listing found them: newest first, each job once.
#[derive(Debug, Default)]
pub struct JobListing {
    /// Shared, so that jobs kept from the last listing are not copied into every new one.
    jobs: Vec<Arc<ExportJob>>,
    invalid: Vec<InvalidJob>,
    /// Pages requested.
    pub pages: u32,
    /// Pages not requested because their jobs were known from the last listing.
    pub pages_saved: u32,
    /// What every scrape's summary takes from all the jobs, made on the first one's demand.
    tally: OnceLock<Tally>,
}

impl JobListing {
    /// A listing of `jobs` (in any order, possibly with repeats) and the malformed ones skipped.
    pub fn new(mut jobs: Vec<Arc<ExportJob>>, invalid: Vec<InvalidJob>) -> JobListing {
        // Newest first: Atlas's own order, so usually sorted already and cheap to check.
        jobs.sort_by(|a, b| {
            b.created_at
                .total_cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        // Paging while Atlas adds jobs can show a job twice, at the end of one page and the
        // start of the next; sorted, the two copies stand side by side.
        jobs.dedup_by(|a, b| a.id == b.id);
        JobListing {
            jobs,
            invalid,
            pages: 0,
            pages_saved: 0,
            tally: OnceLock::new(),
        }
    }

    /// A listing of the jobs and malformed jobs of `results`.
    pub fn from_results(results: impl IntoIterator<Item = Result<ExportJob, InvalidJob>>) -> Self {
        let mut jobs = Vec::new();
        let mut invalid = Vec::new();
        for result in results {
            match result {
                Ok(job) => jobs.push(Arc::new(job)),
                Err(skipped) => invalid.push(skipped),
            }
        }
        JobListing::new(jobs, invalid)
    }

    /// Every job, newest first.
    pub fn jobs(&self) -> &[Arc<ExportJob>] {
        &self.jobs
    }

    /// The jobs skipped because they were malformed.
    pub fn invalid(&self) -> &[InvalidJob] {
        &self.invalid
    }

    /// The time-free part of the summary of these jobs, tallied once.
    pub fn tally(&self) -> &Tally {
        self.tally.get_or_init(|| Tally::of(&self.jobs))
    }
}

/// A cluster's jobs as [`JobLister::list`] found them.
#[derive(Debug)]
pub struct ListingOutcome {
    pub listing: Arc<JobListing>,
    /// Whether the listing is the last one again: its pages came back byte for byte the same.
    pub unchanged: bool,
}

/// Why a listing paged through everything when it asked for fewer pages first, the value of
/// `atlas_backup_exporter_full_listings_total`'s `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, VariantArray)]
pub enum FullListing {
    /// No listing of more than one page to build on: the first one, or the one after a failure.
    First,
    /// The last listing or this one was not newest first.
    Order,
    /// `totalCount` moved away from what is fetched plus what is kept by another amount than
    /// the last full listing found: jobs were added or pruned where the listing did not look.
    Count,
    /// A job seen running was not on the pages fetched, or a kept job is newer than them.
    MissingJob,
    /// The last listing held malformed jobs, which cannot be counted from memory.
    InvalidJob,
    /// More new or changed jobs than the pages asked for at once hold.
    NewJobs,
}

impl FullListing {
    /// The value of the `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            FullListing::First => "first",
            FullListing::Order => "order",
            FullListing::Count => "count",
            FullListing::MissingJob => "missing_job",
            FullListing::InvalidJob => "invalid_job",
            FullListing::NewJobs => "new_jobs",
        }
    }
}

/// Lists the export jobs of clusters, each listing reusing what the cluster's last one left
/// (see the module's doc). What it remembers is its own to keep and to forget: a cluster whose
/// listing fails is forgotten, and the owner says which clusters are still watched
/// ([`JobLister::forget_all_but`]).
pub struct JobLister {
    client: AtlasClient,
    max_pages: u32,
    /// `atlas_backup_exporter_full_listings_total`, by `reason`.
    full_listings: IntCounterVec,
    /// Per cluster (project id, cluster name), what its last listing left for the next one.
    known: Mutex<HashMap<(String, String), Arc<KnownJobs>>>,
}

impl JobLister {
    /// A lister that fetches at most `max_pages` pages per listing and counts the listings that
    /// page through everything in `full_listings` (labelled `reason`).
    pub fn new(client: AtlasClient, max_pages: u32, full_listings: IntCounterVec) -> JobLister {
        // Every reason from the start, at 0: a counter that appears only on its first increase
        // hides that increase from rate() and increase().
        for reason in FullListing::VARIANTS {
            full_listings.with_label_values(&[reason.label()]);
        }
        JobLister {
            client,
            max_pages,
            full_listings,
            known: Mutex::default(),
        }
    }

    /// Lists every export job of a cluster, incrementally when its last listing allows.
    pub async fn list(
        &self,
        group_id: &str,
        cluster: &str,
        deadline: Deadline,
    ) -> Result<ListingOutcome, AtlasError> {
        let key = (group_id.to_owned(), cluster.to_owned());
        let known = lock(&self.known).get(&key).cloned();
        let result = self
            .list_export_jobs(group_id, cluster, self.max_pages, deadline, known.as_ref())
            .await;
        match result {
            Ok((listed, keep, full)) => {
                if let Some(reason) = full {
                    self.full_listings
                        .with_label_values(&[reason.label()])
                        .inc();
                }
                tracing::debug!(
                    full_listing = full.map(FullListing::label),
                    group_id,
                    cluster_name = cluster,
                    jobs = listed.listing.jobs().len(),
                    pages = listed.listing.pages,
                    pages_saved = listed.listing.pages_saved,
                    unchanged = listed.unchanged,
                    "listed export jobs"
                );
                lock(&self.known).insert(key, keep);
                Ok(listed)
            }
            Err(error) => {
                lock(&self.known).remove(&key);
                Err(error)
            }
        }
    }

    /// Forgets the last listing of every cluster for which `watched(group_id, cluster)` is false.
    pub fn forget_all_but(&self, watched: impl Fn(&str, &str) -> bool) {
        lock(&self.known).retain(|(group_id, cluster), _| watched(group_id, cluster));
    }

    /// The clusters whose last listing is remembered, sorted.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> Vec<(String, String)> {
        let mut clusters: Vec<_> = lock(&self.known).keys().cloned().collect();
        clusters.sort();
        clusters
    }
}

/// What a cluster's last listing leaves for the next one: the listing itself with the digests
/// of its pages, and for a listing that may stop early, its finished jobs, which never change,
/// and the ids of those still running, which the next listing must see again before it stops.
#[derive(Debug, Default)]
struct KnownJobs {
    /// Whether the next listing may stop early. When not, it pages through everything, and the
    /// jobs below are not kept.
    incremental: bool,
    /// Why not, when the next listing may not stop early.
    full_because: Option<FullListing>,
    /// How far Atlas's `totalCount` was from the jobs the last full listing found. Atlas calls
    /// it an estimate; a steady error is no reason to page through everything again, a changed
    /// one is. `None` when there was no `totalCount`.
    count_error: Option<i64>,
    /// The finished jobs, newest first.
    terminal: Vec<Arc<ExportJob>>,
    /// Where each finished job is in `terminal`.
    by_id: HashMap<AtlasId, usize>,
    /// The ids of the jobs still running.
    running: HashSet<AtlasId>,
    /// Pages the last listing needed before it could stop: the next one asks for them at once.
    settle_pages: AtomicU32,
    /// The last listing made with this knowledge, and the digests of the pages it was made of:
    /// the same pages again make the same listing, without being parsed.
    last: Mutex<Option<LastListing>>,
}

#[derive(Debug)]
struct LastListing {
    digests: Vec<u128>,
    listing: Arc<JobListing>,
}

impl KnownJobs {
    /// What to keep from a listing. The next listing may stop early unless this one is of one
    /// page (which costs one call either way), holds malformed jobs (which cannot be counted
    /// from memory), or is not newest first (`ordered` false).
    fn from_listing(
        listing: &JobListing,
        ordered: bool,
        settle_pages: u32,
        count_error: Option<i64>,
    ) -> KnownJobs {
        let full_because = if listing.jobs.len() < ITEMS_PER_PAGE {
            Some(FullListing::First)
        } else if !listing.invalid.is_empty() {
            Some(FullListing::InvalidJob)
        } else if !ordered {
            Some(FullListing::Order)
        } else {
            None
        };
        let incremental = full_because.is_none();
        let mut known = KnownJobs {
            incremental,
            full_because,
            count_error,
            settle_pages: AtomicU32::new(if incremental { settle_pages.max(1) } else { 1 }),
            ..KnownJobs::default()
        };
        if !incremental {
            return known;
        }
        for job in &listing.jobs {
            if job.is_terminal() {
                known.by_id.insert(job.id.clone(), known.terminal.len());
                known.terminal.push(Arc::clone(job));
            } else {
                known.running.insert(job.id.clone());
            }
        }
        known
    }

    /// Remembers `listing` as made of the pages with these digests.
    fn remember(&self, digests: &[u128], listing: &Arc<JobListing>) {
        *lock(&self.last) = Some(LastListing {
            digests: digests.to_vec(),
            listing: Arc::clone(listing),
        });
    }

    /// Knowledge just rebuilt from `listing` may settle on fewer of its `pages` than the old
    /// knowledge did (a job seen running has finished): the next listing asks for only those,
    /// and if they come back the same, it is this listing again.
    fn settle_early(
        self,
        pages: &[JobPage],
        digests: &[u128],
        listing: &Arc<JobListing>,
    ) -> Arc<Self> {
        if !self.incremental {
            // The next listing pages through everything: these pages alone do not make it.
            return Arc::new(self);
        }
        let earlier = (1..pages.len()).find_map(|n| reuse(&pages[..n], &self).ok().map(|l| (n, l)));
        let (settled, listing) = match earlier {
            Some((n, listing)) => (n, Arc::new(listing)),
            None => (pages.len(), Arc::clone(listing)),
        };
        self.settle_pages.store(settled as u32, Ordering::Relaxed);
        self.remember(&digests[..settled], &listing);
        Arc::new(self)
    }

    /// The last listing, if it was made of pages with these very digests.
    fn same_listing(&self, digests: &[u128]) -> Option<Arc<JobListing>> {
        let last = lock(&self.last);
        let last = last.as_ref()?;
        (last.digests == digests).then(|| Arc::clone(&last.listing))
    }

    /// Whether the fetched jobs hold anything this knowledge lacks: a job that finished since,
    /// or one that started.
    fn is_outdated_by<'a>(&self, fetched: impl IntoIterator<Item = &'a ExportJob>) -> bool {
        fetched.into_iter().any(|job| {
            if job.is_terminal() {
                !self.knows_finished(job)
            } else {
                !self.running.contains(&job.id)
            }
        })
    }

    /// Whether `job` is finished and this listing saw it finished already.
    fn knows_finished(&self, job: &ExportJob) -> bool {
        job.is_terminal()
            && self
                .by_id
                .get(&job.id)
                .is_some_and(|&i| self.terminal[i].state == job.state)
    }
}

type JobPage = Page<Result<ExportJob, InvalidJob>>;

impl JobLister {
    /// Lists every export job of a cluster within `max_pages`, reusing `known` (from the last
    /// listing) when the listing shows that its older pages cannot have changed; with what the
    /// next listing can reuse.
    async fn list_export_jobs(
        &self,
        group_id: &str,
        cluster: &str,
        max_pages: u32,
        deadline: Deadline,
        known: Option<&Arc<KnownJobs>>,
    ) -> Result<(ListingOutcome, Arc<KnownJobs>, Option<FullListing>), AtlasError> {
        let path = Path::ListExportJobs { group_id, cluster };
        let call = format!("listing export jobs of {group_id}/{cluster}");
        let fetch_raw = |page_num| self.client.fetch_page(path, &call, page_num, deadline);
        let fetch =
            |page_num| async move { fetch_raw(page_num).await?.parse(model::parse_job_page) };
        // The pages the last listing needed are asked for at once.
        let first_pages = known
            .map_or(1, |k| k.settle_pages.load(Ordering::Relaxed))
            .clamp(1, max_pages);
        let mut raw = Vec::with_capacity(first_pages as usize);
        for page in join_all((1..=first_pages).map(&fetch_raw)).await {
            raw.push(page?);
        }
        let mut digests: Vec<u128> = raw.iter().map(FetchedPage::digest).collect();
        if let Some(known) = known
            && let Some(listing) = known.same_listing(&digests)
        {
            let listed = ListingOutcome {
                listing,
                unchanged: true,
            };
            return Ok((listed, Arc::clone(known), None));
        }
        let mut pages = Vec::with_capacity(raw.len());
        for page in raw {
            pages.push(page.parse(model::parse_job_page)?);
        }
        // Why the listing pages through everything, if it must.
        let mut full_because = known.map_or(Some(FullListing::First), |k| k.full_because);
        if let Some(known) = known.filter(|known| known.incremental) {
            full_because = Some(FullListing::NewJobs);
            loop {
                // Stop at the first full page that shows nothing new; page through the rest at
                // full speed as soon as the pages contradict what is known.
                let mut contradicted = None;
                let reused = (1..=pages.len()).find_map(|n| match reuse(&pages[..n], known) {
                    Ok(listing) => Some((n, listing)),
                    Err(Miss::Unsettled) => None,
                    Err(Miss::Because(reason)) => {
                        contradicted.get_or_insert(reason);
                        None
                    }
                });
                if reused.is_none()
                    && let Some(reason) = contradicted
                {
                    full_because = Some(reason);
                    break;
                }
                if let Some((settled, listing)) = reused {
                    let listing = Arc::new(listing);
                    let fetched = pages[..settled]
                        .iter()
                        .flat_map(|p| p.results.iter().filter_map(|j| j.as_ref().ok()));
                    let keep = if known.is_outdated_by(fetched) {
                        // Something started or finished: what is known is rebuilt from this
                        // listing.
                        let known = KnownJobs::from_listing(
                            &listing,
                            true,
                            settled as u32,
                            known.count_error,
                        );
                        known.settle_early(&pages[..settled], &digests, &listing)
                    } else {
                        known.settle_pages.store(settled as u32, Ordering::Relaxed);
                        known.remember(&digests[..settled], &listing);
                        Arc::clone(known)
                    };
                    let listed = ListingOutcome {
                        listing,
                        unchanged: false,
                    };
                    return Ok((listed, keep, None));
                }
                if !is_full(&pages) || pages.len() as u32 >= max_pages {
                    break;
                }
                let last = pages.last().map_or(&[][..], |p| &p.results[..]);
                let near_known = last
                    .iter()
                    .any(|job| job.as_ref().is_ok_and(|job| known.knows_finished(job)));
                if !near_known {
                    // Far from what is known: page through the rest at full speed.
                    break;
                }
                let page = fetch_raw(pages.len() as u32 + 1).await?;
                digests.push(page.digest());
                pages.push(page.parse(model::parse_job_page)?);
            }
        }
        let pages = page_through(pages, max_pages, &call, fetch).await?;
        // A listing whose jobs all fit on the pages it asked for at once cost nothing more.
        let full = full_because.filter(|_| pages.len() > first_pages as usize);
        // The next listing asks for page 1 first: only a listing of that page alone can be made
        // again from it.
        let only_page = digests.first().copied().filter(|_| pages.len() == 1);
        let (listed, keep) = full_listing(pages, only_page);
        Ok((listed, keep, full))
    }
}

/// The listing of every page, and what to keep of it: for a listing of one page, with the
/// digest of that page, the listing itself.
fn full_listing(pages: Vec<JobPage>, only_page: Option<u128>) -> (ListingOutcome, Arc<KnownJobs>) {
    let ordered = newest_first(
        pages
            .iter()
            .flat_map(|p| p.results.iter().filter_map(|j| j.as_ref().ok())),
    );
    let page_count = pages.len() as u32;
    let total_count = pages.first().and_then(|p| p.total_count);
    let mut listing = JobListing::from_results(pages.into_iter().flat_map(|page| page.results));
    listing.pages = page_count;
    let listing = Arc::new(listing);
    let found = (listing.jobs.len() + listing.invalid.len()) as i64;
    let count_error = total_count.map(|total| total as i64 - found);
    let keep = KnownJobs::from_listing(&listing, ordered, 1, count_error);
    if let Some(digest) = only_page {
        keep.remember(&[digest], &listing);
    }
    let listed = ListingOutcome {
        listing,
        unchanged: false,
    };
    (listed, Arc::new(keep))
}

/// Why the pages fetched so far and what is known do not make the whole listing.
enum Miss {
    /// The last page holds jobs the last listing did not see finished: fetch on.
    Unsettled,
    /// The pages contradict what is known: page through everything.
    Because(FullListing),
}

/// The listing made of the pages fetched so far plus the older jobs `known` holds, if the pages
/// show that this is the whole truth.
fn reuse(pages: &[JobPage], known: &KnownJobs) -> Result<JobListing, Miss> {
    let last = pages.last().ok_or(Miss::Unsettled)?;
    let settled = last
        .results
        .iter()
        .all(|job| job.as_ref().is_ok_and(|job| known.knows_finished(job)));
    if !settled {
        return Err(Miss::Unsettled);
    }
    let fetched: Vec<&ExportJob> = pages
        .iter()
        .flat_map(|p| p.results.iter().filter_map(|j| j.as_ref().ok()))
        .collect();
    let seen: HashSet<&AtlasId> = fetched.iter().map(|j| &j.id).collect();
    // A job that was running may have finished anywhere further down: it must have been seen.
    if !known.running.iter().all(|id| seen.contains(id)) {
        return Err(Miss::Because(FullListing::MissingJob));
    }
    if !newest_first(fetched.iter().copied()) {
        return Err(Miss::Because(FullListing::Order));
    }
    let oldest_fetched = fetched.last().ok_or(Miss::Unsettled)?.created_at;
    let older: Vec<&Arc<ExportJob>> = known
        .terminal
        .iter()
        .filter(|job| !seen.contains(&job.id))
        .collect();
    if older.iter().any(|job| job.created_at > oldest_fetched) {
        return Err(Miss::Because(FullListing::MissingJob));
    }
    let invalid: Vec<InvalidJob> = pages
        .iter()
        .flat_map(|p| p.results.iter().filter_map(|j| j.as_ref().err().cloned()))
        .collect();
    // Atlas's count, an estimate, must be off by what it was off by at the last full listing,
    // or jobs were pruned or added where we did not look.
    let total = pages.first().and_then(|p| p.total_count);
    let found = (seen.len() + invalid.len() + older.len()) as i64;
    let error = total.map(|total| total as i64 - found);
    if error.is_none() || error != known.count_error {
        return Err(Miss::Because(FullListing::Count));
    }
    let jobs = fetched
        .into_iter()
        .map(|job| Arc::new(job.clone()))
        .chain(older.into_iter().map(Arc::clone))
        .collect();
    let mut listing = JobListing::new(jobs, invalid);
    listing.pages = pages.len() as u32;
    listing.pages_saved = expected_pages(pages).saturating_sub(pages.len() as u64) as u32;
    Ok(listing)
}

/// Whether `createdAt` never increases along `jobs`.
fn newest_first<'a>(jobs: impl IntoIterator<Item = &'a ExportJob>) -> bool {
    let mut previous = f64::INFINITY;
    jobs.into_iter().all(|job| {
        let ordered = job.created_at <= previous;
        previous = job.created_at;
        ordered
    })
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::*;
    use crate::config;
    use crate::fake_atlas::{FakeAtlas, job};

    const GROUP: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";

    /// A stand-in with 700 finished jobs in cluster "Big" and a lister for it.
    async fn big_cluster() -> (FakeAtlas, JobLister) {
        let fake = FakeAtlas::new().with_api_key("pk", "sk");
        let base_url = fake.start().await.unwrap();
        fake.add_cluster(GROUP, "Big");
        let now = OffsetDateTime::now_utc();
        fake.put_jobs(
            GROUP,
            "Big",
            (0..700).map(|i| {
                let created = now - time::Duration::hours(i + 1);
                job(&format!("{i:024x}"))
                    .state("Successful")
                    .created(created)
                    .finished(created + time::Duration::minutes(5))
                    .build()
            }),
        );
        let yaml = format!("atlas:\n  base_url: {base_url}\ntargets:\n  - group_id: {GROUP}\n");
        let config = config::parse(&yaml, "test.yml").unwrap();
        (
            fake,
            JobLister::new(AtlasClient::for_tests(&config.atlas), 10, full_listings()),
        )
    }

    fn full_listings() -> IntCounterVec {
        crate::metrics::OwnMetrics::new().full_listings
    }

    async fn list(lister: &JobLister) -> ListingOutcome {
        list_cluster(lister, "Big").await
    }

    async fn list_cluster(lister: &JobLister, cluster: &str) -> ListingOutcome {
        let deadline = Deadline::after(Duration::from_secs(10));
        lister.list(GROUP, cluster, deadline).await.unwrap()
    }

    /// Whether the lister keeps the last listing of `cluster` for the next one.
    fn remembers(lister: &JobLister, cluster: &str) -> bool {
        lister
            .remembered()
            .contains(&(GROUP.to_owned(), cluster.to_owned()))
    }

    /// Jobs per state, the known states first, leaving out the states no job is in.
    fn states(listing: &JobListing) -> Vec<(&str, u64)> {
        let mut counts: Vec<(&str, u64)> = model::JobState::KNOWN
            .iter()
            .map(|s| (s.as_str(), 0))
            .collect();
        for job in listing.jobs() {
            match counts
                .iter_mut()
                .find(|(state, _)| *state == job.state.as_str())
            {
                Some((_, count)) => *count += 1,
                None => counts.push((job.state.as_str(), 1)),
            }
        }
        counts.retain(|(_, n)| *n > 0);
        counts
    }

    /// Where the jobs that are not finished are in the listing.
    fn running(listing: &JobListing) -> Vec<usize> {
        let jobs = listing.jobs().iter().enumerate();
        jobs.filter(|(_, job)| !job.is_terminal())
            .map(|(index, _)| index)
            .collect()
    }

    /// The largest `finishedAt` among successful jobs.
    fn last_success(listing: &JobListing) -> Option<f64> {
        let successful = listing.jobs().iter().filter(|j| j.state == "Successful");
        successful.filter_map(|j| j.finished_at).reduce(f64::max)
    }

    #[tokio::test]
    async fn pages_that_come_back_the_same_make_the_same_listing_without_parsing() {
        let (fake, lister) = big_cluster().await;
        let full = list(&lister).await;
        assert_eq!(full.listing.pages, 2);
        assert!(
            remembers(&lister, "Big"),
            "700 newest-first jobs are worth keeping"
        );

        // Page 1 holds only known finished jobs: the listing stops there and is made anew.
        let first = list(&lister).await;
        assert_eq!(first.listing.pages, 1);
        assert_eq!(first.listing.pages_saved, 1);
        assert!(remembers(&lister, "Big"), "still worth keeping");

        // The same page again: the very same listing.
        let again = list(&lister).await;
        assert!(again.unchanged);
        assert!(Arc::ptr_eq(&again.listing, &first.listing));
        assert_eq!(states(&again.listing), [("Successful", 700)]);

        // A job starts: page 1 differs, so it is parsed and the listing shows the job.
        let started = OffsetDateTime::now_utc() - time::Duration::minutes(1);
        let new = job("ffffffffffffffffffff0001")
            .state("InProgress")
            .created(started);
        fake.put_job(GROUP, "Big", new.clone().build());
        let changed = list(&lister).await;
        assert!(!changed.unchanged);
        assert_eq!(changed.listing.jobs().len(), 701);
        assert_eq!(changed.listing.jobs()[0].id, "ffffffffffffffffffff0001");
        assert_eq!(running(&changed.listing), [0]);
        assert_eq!(
            states(&changed.listing),
            [("InProgress", 1), ("Successful", 700)]
        );
        assert!(remembers(&lister, "Big"), "rebuilt from the new listing");

        // Still running, nothing else new: the same two pages again, reused as they are.
        let steady = list(&lister).await;
        assert!(steady.unchanged);
        assert_eq!(steady.listing.pages, 2);
        assert_eq!(running(&steady.listing), [0]);

        // It finishes: page 1 differs again.
        let done = new
            .state("Successful")
            .finished(started + time::Duration::seconds(30));
        fake.put_job(GROUP, "Big", done.build());
        let finished = list(&lister).await;
        assert!(!finished.unchanged);
        assert_eq!(states(&finished.listing), [("Successful", 701)]);
        assert!(running(&finished.listing).is_empty());
        assert_eq!(
            last_success(&finished.listing),
            Some((started + time::Duration::seconds(30)).unix_timestamp() as f64)
        );

        // Known finished now, so page 1 alone settles the next listing, and it is the same.
        assert!(remembers(&lister, "Big"), "rebuilt again");
        let next = list(&lister).await;
        assert!(next.unchanged);
        assert_eq!((next.listing.pages, next.listing.pages_saved), (1, 1));
        assert_eq!(states(&next.listing), [("Successful", 701)]);
    }

    #[tokio::test]
    async fn a_listing_of_one_page_is_made_again_only_from_the_same_page() {
        let (fake, lister) = big_cluster().await;
        fake.add_cluster(GROUP, "Small");
        let now = OffsetDateTime::now_utc();
        let running = job("aaaaaaaaaaaaaaaaaaaa0001")
            .state("InProgress")
            .created(now - time::Duration::minutes(5));
        fake.put_job(GROUP, "Small", running.clone().build());
        let first = list_cluster(&lister, "Small").await;
        assert_eq!(first.listing.pages, 1);
        assert!(remembers(&lister, "Small"), "kept for its page digest");

        let again = list_cluster(&lister, "Small").await;
        assert!(again.unchanged);
        assert!(Arc::ptr_eq(&again.listing, &first.listing));
        assert_eq!(states(&again.listing), [("InProgress", 1)]);

        let done = running.state("Failed").finished(now);
        fake.put_job(GROUP, "Small", done.build());
        let changed = list_cluster(&lister, "Small").await;
        assert!(!changed.unchanged);
        assert_eq!(states(&changed.listing), [("Failed", 1)]);
    }

    #[tokio::test]
    async fn a_failed_listing_and_a_cluster_no_longer_watched_are_forgotten() {
        let (fake, lister) = big_cluster().await;
        fake.add_cluster(GROUP, "Small");
        list(&lister).await;
        list_cluster(&lister, "Small").await;
        assert!(remembers(&lister, "Big") && remembers(&lister, "Small"));

        fake.remove_cluster(GROUP, "Small");
        let deadline = Deadline::after(Duration::from_secs(10));
        assert!(lister.list(GROUP, "Small", deadline).await.is_err());
        assert_eq!(lister.remembered(), [(GROUP.to_owned(), "Big".to_owned())]);

        lister.forget_all_but(|_, cluster| cluster != "Big");
        assert!(lister.remembered().is_empty());
    }
}
