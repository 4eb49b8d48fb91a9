//! Paged listings: Atlas's `pageNum` and `itemsPerPage`, and when a listing is complete.

use futures_util::future::join_all;

use super::client::{AtlasClient, Body};
use super::deadline::Deadline;
use super::endpoint::Path;
use super::error::AtlasError;
use super::model::{BodyError, Page};

/// Items per page on every list call: Atlas's maximum, so a listing costs as few calls as it can.
pub const ITEMS_PER_PAGE: usize = 500;

impl AtlasClient {
    /// Fetches a listing page by page. The first page says how many there are (`totalCount`);
    /// the rest of those are fetched at once, and paging goes on while the last page is full,
    /// since `totalCount` is only an estimate.
    pub(super) async fn pages<T>(
        &self,
        path: Path<'_>,
        call: &str,
        max_pages: u32,
        deadline: Deadline,
        parse: fn(&[u8], usize) -> Result<Page<T>, BodyError>,
    ) -> Result<Vec<Page<T>>, AtlasError> {
        let fetch = |page_num| async move {
            let page = self.fetch_page(path, call, page_num, deadline).await?;
            page.parse(parse)
        };
        let first = fetch(1).await?;
        page_through(vec![first], max_pages, call, fetch).await
    }

    /// Fetches page `page_num` of a listing, leaving it unparsed.
    pub(crate) async fn fetch_page(
        &self,
        path: Path<'_>,
        call: &str,
        page_num: u32,
        deadline: Deadline,
    ) -> Result<FetchedPage, AtlasError> {
        let query = format!("?pageNum={page_num}&itemsPerPage={ITEMS_PER_PAGE}");
        let call = format!("{call} (page {page_num})");
        let body = self.get(path, &query, &call, deadline).await?;
        Ok(FetchedPage { body, call })
    }
}

/// Completes a listing from the pages fetched so far: the pages the first page's `totalCount`
/// announces at once, then on while the last page is full, since `totalCount` is only an
/// estimate; never past `max_pages`.
pub(crate) async fn page_through<T, F, Fut>(
    mut pages: Vec<Page<T>>,
    max_pages: u32,
    call: &str,
    fetch: F,
) -> Result<Vec<Page<T>>, AtlasError>
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, AtlasError>>,
{
    let expected = expected_pages(&pages);
    if is_full(&pages) && expected > pages.len() as u64 {
        let next = pages.len() as u32 + 1;
        let last = expected.min(u64::from(max_pages)) as u32;
        for page in join_all((next..=last).map(&fetch)).await {
            pages.push(page?);
        }
    }
    while is_full(&pages) {
        if pages.len() as u32 >= max_pages {
            return Err(AtlasError::TooManyPages {
                call: call.into(),
                max_pages,
            });
        }
        pages.push(fetch(pages.len() as u32 + 1).await?);
    }
    Ok(pages)
}

/// Pages the listing has according to `totalCount` (at least the ones fetched).
pub(crate) fn expected_pages<T>(pages: &[Page<T>]) -> u64 {
    pages
        .first()
        .and_then(|p| p.total_count)
        .map_or(1, |total| total.div_ceil(ITEMS_PER_PAGE as u64))
        .max(pages.len() as u64)
}

/// A page of a listing as Atlas sent it, not parsed yet.
pub(crate) struct FetchedPage {
    body: Body,
    /// The call, for errors.
    call: String,
}

impl FetchedPage {
    /// A 128-bit digest of the body: two pages with the same digest hold the same bytes.
    pub(crate) fn digest(&self) -> u128 {
        xxhash_rust::xxh3::xxh3_128(&self.body.bytes)
    }

    pub(crate) fn parse<T>(
        self,
        parse: fn(&[u8], usize) -> Result<Page<T>, BodyError>,
    ) -> Result<Page<T>, AtlasError> {
        self.body
            .parse(self.call, |bytes| parse(bytes, ITEMS_PER_PAGE))
    }
}

pub(crate) fn is_full<T>(pages: &[Page<T>]) -> bool {
    pages
        .last()
        .is_some_and(|p| p.results.len() >= ITEMS_PER_PAGE)
}
