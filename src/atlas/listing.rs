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
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;

use super::model::{self, ExportJob, InvalidJob, KNOWN_STATES, Page};
use super::{
    AtlasClient, AtlasError, Deadline, Endpoint, ITEMS_PER_PAGE, RawPage, encode, expected_pages,
    is_full, page_through,
};

/// Every export job of a cluster, as one listing found them: newest first, each job once, with
/// the figures the metrics take over all of them.
#[derive(Debug, Default)]
pub struct JobListing {
    /// Shared, so that jobs kept from the last listing are not copied into every new one.
    jobs: Vec<Arc<ExportJob>>,
    invalid: Vec<InvalidJob>,
    /// Jobs per state: the five known states first, then any new ones in order of appearance.
    counts: Vec<(String, u64)>,
    /// The largest `finishedAt` among successful jobs.
    last_success: Option<f64>,
    /// Where the jobs still running are in `jobs`.
    running: Vec<usize>,
    /// Pages requested.
    pub pages: u32,
    /// Pages not requested because their jobs were known from the last listing.
    pub pages_saved: u32,
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

        let mut counts: Vec<(String, u64)> =
            KNOWN_STATES.iter().map(|s| (s.to_string(), 0)).collect();
        let mut last_success: Option<f64> = None;
        let mut running = Vec::new();
        for (index, job) in jobs.iter().enumerate() {
            match counts.iter_mut().find(|(state, _)| *state == job.state) {
                Some((_, count)) => *count += 1,
                None => counts.push((job.state.clone(), 1)),
            }
            if job.state == "Successful"
                && let Some(finished) = job.finished_at
            {
                last_success = Some(last_success.map_or(finished, |l| l.max(finished)));
            }
            if !job.is_terminal() {
                running.push(index);
            }
        }
        JobListing {
            jobs,
            invalid,
            counts,
            last_success,
            running,
            pages: 0,
            pages_saved: 0,
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

    /// Jobs per state: the five known states first (zero included), then any new ones.
    pub fn counts(&self) -> &[(String, u64)] {
        &self.counts
    }

    /// The largest `finishedAt` among successful jobs.
    pub fn last_success(&self) -> Option<f64> {
        self.last_success
    }

    /// Where the jobs that are not finished are in [`JobListing::jobs`].
    pub fn running(&self) -> &[usize] {
        &self.running
    }
}

/// What listing a cluster's jobs gives.
#[derive(Debug)]
pub struct Listed {
    pub listing: Arc<JobListing>,
    /// What the next listing can reuse, if anything.
    pub keep: Option<Arc<KnownJobs>>,
    /// Whether the listing is the last one again: its pages came back byte for byte the same.
    pub unchanged: bool,
}

/// What a cluster's last listing leaves for the next one: the listing itself with the digests
/// of its pages, and for a listing that may stop early, its finished jobs, which never change,
/// and the ids of those still running, which the next listing must see again before it stops.
#[derive(Debug, Default)]
pub struct KnownJobs {
    /// Whether the next listing may stop early. When not, it pages through everything, and the
    /// jobs below are not kept.
    incremental: bool,
    /// The finished jobs, newest first.
    terminal: Vec<Arc<ExportJob>>,
    /// Where each finished job is in `terminal`.
    by_id: HashMap<String, usize>,
    pending: HashSet<String>,
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
    fn from_listing(listing: &JobListing, ordered: bool, settle_pages: u32) -> KnownJobs {
        let incremental =
            listing.jobs.len() >= ITEMS_PER_PAGE && listing.invalid.is_empty() && ordered;
        let mut known = KnownJobs {
            incremental,
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
                known.pending.insert(job.id.clone());
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
        let earlier = (1..pages.len()).find_map(|n| reuse(&pages[..n], &self).map(|l| (n, l)));
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
                !self.pending.contains(&job.id)
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

impl AtlasClient {
    /// Lists every export job of a cluster within `max_pages`, reusing `known` (from the last
    /// listing) when the listing shows that its older pages cannot have changed.
    pub async fn list_export_jobs(
        &self,
        group_id: &str,
        cluster: &str,
        max_pages: u32,
        deadline: Deadline,
        known: Option<&Arc<KnownJobs>>,
    ) -> Result<Listed, AtlasError> {
        let path = format!(
            "/groups/{}/clusters/{}/backup/exports",
            encode(group_id),
            encode(cluster)
        );
        let what = format!("listing export jobs of {group_id}/{cluster}");
        let fetch_raw =
            |page_num| self.raw_page(Endpoint::ListExportJobs, &path, &what, page_num, deadline);
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
        let mut digests: Vec<u128> = raw.iter().map(RawPage::digest).collect();
        if let Some(known) = known
            && let Some(listing) = known.same_listing(&digests)
        {
            return Ok(Listed {
                listing,
                keep: Some(Arc::clone(known)),
                unchanged: true,
            });
        }
        let mut pages = Vec::with_capacity(raw.len());
        for page in raw {
            pages.push(page.parse(model::parse_job_page)?);
        }
        if let Some(known) = known.filter(|known| known.incremental) {
            loop {
                // Stop at the first full page that shows nothing new.
                let reused = (1..=pages.len())
                    .find_map(|n| reuse(&pages[..n], known).map(|listing| (n, listing)));
                if let Some((settled, listing)) = reused {
                    let listing = Arc::new(listing);
                    let fetched = pages[..settled]
                        .iter()
                        .flat_map(|p| p.results.iter().filter_map(|j| j.as_ref().ok()));
                    let keep = if known.is_outdated_by(fetched) {
                        // Something started or finished: what is known is rebuilt from this
                        // listing.
                        KnownJobs::from_listing(&listing, true, settled as u32).settle_early(
                            &pages[..settled],
                            &digests,
                            &listing,
                        )
                    } else {
                        known.settle_pages.store(settled as u32, Ordering::Relaxed);
                        known.remember(&digests[..settled], &listing);
                        Arc::clone(known)
                    };
                    return Ok(Listed {
                        listing,
                        keep: Some(keep),
                        unchanged: false,
                    });
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
        let pages = page_through(pages, max_pages, &what, fetch).await?;
        // The next listing asks for page 1 first: only a listing of that page alone can be made
        // again from it.
        let only_page = digests.first().copied().filter(|_| pages.len() == 1);
        Ok(full_listing(pages, only_page))
    }
}

/// The listing of every page, and what to keep of it: for a listing of one page, with the
/// digest of that page, the listing itself.
fn full_listing(pages: Vec<JobPage>, only_page: Option<u128>) -> Listed {
    let ordered = newest_first(
        pages
            .iter()
            .flat_map(|p| p.results.iter().filter_map(|j| j.as_ref().ok())),
    );
    let page_count = pages.len() as u32;
    let mut listing = JobListing::from_results(pages.into_iter().flat_map(|page| page.results));
    listing.pages = page_count;
    let listing = Arc::new(listing);
    let keep = KnownJobs::from_listing(&listing, ordered, 1);
    if let Some(digest) = only_page {
        keep.remember(&[digest], &listing);
    }
    Listed {
        listing,
        keep: Some(Arc::new(keep)),
        unchanged: false,
    }
}

/// The listing made of the pages fetched so far plus the older jobs `known` holds, if the pages
/// show that this is the whole truth; `None` if not.
fn reuse(pages: &[JobPage], known: &KnownJobs) -> Option<JobListing> {
    let last = pages.last()?;
    let settled = last
        .results
        .iter()
        .all(|job| job.as_ref().is_ok_and(|job| known.knows_finished(job)));
    if !settled {
        return None;
    }
    let fetched: Vec<&ExportJob> = pages
        .iter()
        .flat_map(|p| p.results.iter().filter_map(|j| j.as_ref().ok()))
        .collect();
    let seen: HashSet<&str> = fetched.iter().map(|j| j.id.as_str()).collect();
    // A job that was running may have finished anywhere further down: it must have been seen.
    if !known.pending.iter().all(|id| seen.contains(id.as_str())) {
        return None;
    }
    if !newest_first(fetched.iter().copied()) {
        return None;
    }
    let oldest_fetched = fetched.last()?.created_at;
    let older: Vec<&Arc<ExportJob>> = known
        .terminal
        .iter()
        .filter(|job| !seen.contains(job.id.as_str()))
        .collect();
    if older.iter().any(|job| job.created_at > oldest_fetched) {
        return None;
    }
    let invalid: Vec<InvalidJob> = pages
        .iter()
        .flat_map(|p| p.results.iter().filter_map(|j| j.as_ref().err().cloned()))
        .collect();
    // Atlas's own count must agree, or jobs were pruned or added where we did not look.
    let total = pages.first()?.total_count?;
    if total != (seen.len() + invalid.len() + older.len()) as u64 {
        return None;
    }
    let jobs = fetched
        .into_iter()
        .map(|job| Arc::new(job.clone()))
        .chain(older.into_iter().map(Arc::clone))
        .collect();
    let mut listing = JobListing::new(jobs, invalid);
    listing.pages = pages.len() as u32;
    listing.pages_saved = expected_pages(pages).saturating_sub(pages.len() as u64) as u32;
    Some(listing)
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

    /// A stand-in with 700 finished jobs in cluster "Big" and a client for it.
    async fn big_cluster() -> (FakeAtlas, AtlasClient) {
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
        (fake, AtlasClient::for_tests(&config.atlas))
    }

    async fn list(client: &AtlasClient, known: Option<&Arc<KnownJobs>>) -> Listed {
        list_cluster(client, "Big", known).await
    }

    async fn list_cluster(
        client: &AtlasClient,
        cluster: &str,
        known: Option<&Arc<KnownJobs>>,
    ) -> Listed {
        let deadline = Deadline::after(Duration::from_secs(10));
        client
            .list_export_jobs(GROUP, cluster, 10, deadline, known)
            .await
            .unwrap()
    }

    fn states(listing: &JobListing) -> Vec<(&str, u64)> {
        let counts = listing.counts().iter().map(|(s, n)| (s.as_str(), *n));
        counts.filter(|(_, n)| *n > 0).collect()
    }

    #[tokio::test]
    async fn pages_that_come_back_the_same_make_the_same_listing_without_parsing() {
        let (fake, client) = big_cluster().await;
        let full = list(&client, None).await;
        assert_eq!(full.listing.pages, 2);
        let known = full.keep.expect("700 newest-first jobs are worth keeping");

        // Page 1 holds only known finished jobs: the listing stops there and is made anew.
        let first = list(&client, Some(&known)).await;
        assert_eq!(first.listing.pages, 1);
        assert_eq!(first.listing.pages_saved, 1);
        let known = first.keep.expect("still worth keeping");

        // The same page again: the very same listing.
        let again = list(&client, Some(&known)).await;
        assert!(again.unchanged);
        assert!(Arc::ptr_eq(&again.listing, &first.listing));
        assert_eq!(states(&again.listing), [("Successful", 700)]);

        // A job starts: page 1 differs, so it is parsed and the listing shows the job.
        let started = OffsetDateTime::now_utc() - time::Duration::minutes(1);
        let new = job("ffffffffffffffffffff0001")
            .state("InProgress")
            .created(started);
        fake.put_job(GROUP, "Big", new.clone().build());
        let changed = list(&client, Some(&known)).await;
        assert!(!changed.unchanged);
        assert_eq!(changed.listing.jobs().len(), 701);
        assert_eq!(changed.listing.jobs()[0].id, "ffffffffffffffffffff0001");
        assert_eq!(changed.listing.running(), [0]);
        assert_eq!(
            states(&changed.listing),
            [("InProgress", 1), ("Successful", 700)]
        );
        let known = changed.keep.expect("rebuilt from the new listing");

        // Still running, nothing else new: the same two pages again, reused as they are.
        let steady = list(&client, Some(&known)).await;
        assert!(steady.unchanged);
        assert_eq!(steady.listing.pages, 2);
        assert_eq!(steady.listing.running(), [0]);

        // It finishes: page 1 differs again.
        let done = new
            .state("Successful")
            .finished(started + time::Duration::seconds(30));
        fake.put_job(GROUP, "Big", done.build());
        let finished = list(&client, Some(&known)).await;
        assert!(!finished.unchanged);
        assert_eq!(states(&finished.listing), [("Successful", 701)]);
        assert!(finished.listing.running().is_empty());
        assert_eq!(
            finished.listing.last_success(),
            Some((started + time::Duration::seconds(30)).unix_timestamp() as f64)
        );

        // Known finished now, so page 1 alone settles the next listing, and it is the same.
        let known = finished.keep.expect("rebuilt again");
        let next = list(&client, Some(&known)).await;
        assert!(next.unchanged);
        assert_eq!((next.listing.pages, next.listing.pages_saved), (1, 1));
        assert_eq!(states(&next.listing), [("Successful", 701)]);
    }

    #[tokio::test]
    async fn a_listing_of_one_page_is_made_again_only_from_the_same_page() {
        let (fake, client) = big_cluster().await;
        fake.add_cluster(GROUP, "Small");
        let now = OffsetDateTime::now_utc();
        let running = job("aaaaaaaaaaaaaaaaaaaa0001")
            .state("InProgress")
            .created(now - time::Duration::minutes(5));
        fake.put_job(GROUP, "Small", running.clone().build());
        let first = list_cluster(&client, "Small", None).await;
        assert_eq!(first.listing.pages, 1);
        let known = first.keep.expect("kept for its page digest");

        let again = list_cluster(&client, "Small", Some(&known)).await;
        assert!(again.unchanged);
        assert!(Arc::ptr_eq(&again.listing, &first.listing));
        assert_eq!(states(&again.listing), [("InProgress", 1)]);

        let done = running.state("Failed").finished(now);
        fake.put_job(GROUP, "Small", done.build());
        let changed = list_cluster(&client, "Small", again.keep.as_ref()).await;
        assert!(!changed.unchanged);
        assert_eq!(states(&changed.listing), [("Failed", 1)]);
    }
}
