//! Listing a cluster's export jobs, incrementally where Atlas allows it.
//!
//! A cluster's list of jobs only grows, and a job in a terminal state never changes. Atlas does
//! not document the order of the listing, but it lists newest first (the recordings and the docs'
//! examples agree). So once a full page holds only finished jobs the last listing already saw,
//! the pages after it hold nothing new, and their jobs can be taken from that listing. Every
//! listing checks the assumption on the data (`createdAt` never increasing down the listing, and
//! `totalCount` equal to what is fetched plus what is kept) and pages through everything when it
//! does not hold.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::model::{self, ExportJob, InvalidJob, Page};
use super::{
    AtlasClient, AtlasError, Deadline, Endpoint, ITEMS_PER_PAGE, encode, expected_pages, is_full,
    page_through,
};

/// Every export job of a cluster, as one listing found them.
#[derive(Debug, Default)]
pub struct JobListing {
    /// Shared, so that jobs kept from the last listing are not copied into every new one.
    pub jobs: Vec<Arc<ExportJob>>,
    pub invalid: Vec<InvalidJob>,
    /// Pages requested.
    pub pages: u32,
    /// Pages not requested because their jobs were known from the last listing.
    pub pages_saved: u32,
}

/// What a cluster's last listing leaves for the next one: its finished jobs, which never change,
/// and the ids of those still running, which the next listing must see again before it may stop.
#[derive(Debug, Default)]
pub struct KnownJobs {
    /// The finished jobs, in listing order (newest first).
    terminal: Vec<Arc<ExportJob>>,
    /// Where each finished job is in `terminal`.
    by_id: HashMap<String, usize>,
    pending: HashSet<String>,
    /// Pages the last listing needed before it could stop: the next one asks for them at once.
    settle_pages: AtomicU32,
}

impl KnownJobs {
    /// What to keep from a listing, or `None` when the next listing could not use it: a listing
    /// of one page costs one call either way, malformed jobs cannot be counted from memory, and a
    /// listing that is not newest first cannot stop early.
    fn from_listing(listing: &JobListing, settle_pages: u32) -> Option<KnownJobs> {
        if listing.jobs.len() < ITEMS_PER_PAGE
            || !listing.invalid.is_empty()
            || !newest_first(listing.jobs.iter().map(|job| &**job))
        {
            return None;
        }
        let mut known = KnownJobs {
            settle_pages: AtomicU32::new(settle_pages.max(1)),
            ..KnownJobs::default()
        };
        for job in &listing.jobs {
            if job.is_terminal() {
                known.by_id.insert(job.id.clone(), known.terminal.len());
                known.terminal.push(Arc::clone(job));
            } else {
                known.pending.insert(job.id.clone());
            }
        }
        Some(known)
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
    /// listing) when the listing shows that its older pages cannot have changed. Returns what to
    /// keep for the next listing.
    pub async fn list_export_jobs(
        &self,
        group_id: &str,
        cluster: &str,
        max_pages: u32,
        deadline: Deadline,
        known: Option<&Arc<KnownJobs>>,
    ) -> Result<(JobListing, Option<Arc<KnownJobs>>), AtlasError> {
        let path = format!(
            "/groups/{}/clusters/{}/backup/exports",
            encode(group_id),
            encode(cluster)
        );
        let what = format!("listing export jobs of {group_id}/{cluster}");
        let fetch = |page_num| {
            self.page(
                Endpoint::ListExportJobs,
                &path,
                &what,
                page_num,
                deadline,
                model::parse_job_page,
            )
        };
        // With knowledge from the last listing, the pages it needed are asked for at once.
        let first_pages = known.map_or(1, |k| {
            k.settle_pages.load(Ordering::Relaxed).clamp(1, max_pages)
        });
        let mut pages: Vec<JobPage> = Vec::with_capacity(first_pages as usize);
        for page in futures_util::future::join_all((1..=first_pages).map(&fetch)).await {
            pages.push(page?);
        }
        if let Some(known) = known {
            loop {
                // Stop at the first full page that shows nothing new.
                let reused = (1..=pages.len())
                    .find_map(|n| reuse(&pages[..n], known).map(|listing| (n, listing)));
                if let Some((settled, listing)) = reused {
                    let pages = &pages[..settled];
                    let fetched = pages
                        .iter()
                        .flat_map(|p| p.results.iter().filter_map(|j| j.as_ref().ok()));
                    let keep = if known.is_outdated_by(fetched) {
                        KnownJobs::from_listing(&listing, settled as u32).map(Arc::new)
                    } else {
                        // Steady state: the knowledge stands.
                        known.settle_pages.store(settled as u32, Ordering::Relaxed);
                        Some(known.clone())
                    };
                    return Ok((listing, keep));
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
                pages.push(fetch(pages.len() as u32 + 1).await?);
            }
        }

        let pages = page_through(pages, max_pages, &what, fetch).await?;
        let listing = flatten(pages);
        let keep = KnownJobs::from_listing(&listing, 1).map(Arc::new);
        Ok((listing, keep))
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
    // Already in listing order.
    let older: Vec<&Arc<ExportJob>> = known
        .terminal
        .iter()
        .filter(|job| !seen.contains(job.id.as_str()))
        .collect();
    if older.iter().any(|job| job.created_at > oldest_fetched) {
        return None;
    }
    let invalid: usize = pages
        .iter()
        .map(|p| p.results.iter().filter(|j| j.is_err()).count())
        .sum();
    // Atlas's own count must agree, or jobs were pruned or added where we did not look.
    let total = pages.first()?.total_count?;
    if total != (seen.len() + invalid + older.len()) as u64 {
        return None;
    }
    let expected = expected_pages(pages);
    let mut listing = flatten_refs(pages);
    listing.jobs.extend(older.into_iter().map(Arc::clone));
    listing.pages_saved = expected.saturating_sub(pages.len() as u64) as u32;
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

fn flatten(pages: Vec<JobPage>) -> JobListing {
    let mut listing = JobListing {
        pages: pages.len() as u32,
        ..JobListing::default()
    };
    for job in pages.into_iter().flat_map(|page| page.results) {
        listing.push(job);
    }
    listing
}

fn flatten_refs(pages: &[JobPage]) -> JobListing {
    let mut listing = JobListing {
        pages: pages.len() as u32,
        ..JobListing::default()
    };
    for job in pages.iter().flat_map(|page| &page.results) {
        listing.push(job.clone());
    }
    listing
}

impl JobListing {
    /// Adds a job, or a malformed one to the skipped.
    pub fn push(&mut self, job: Result<ExportJob, InvalidJob>) {
        match job {
            Ok(job) => self.jobs.push(Arc::new(job)),
            Err(invalid) => self.invalid.push(invalid),
        }
    }
}
