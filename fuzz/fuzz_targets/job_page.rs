//! Any bytes as an Atlas response body: a page of export jobs, one job, a page of clusters or
//! projects, an error body. None of them may panic, and what they accept must be consistent.

#![no_main]

use atlas_backup_exporter::atlas::ITEMS_PER_PAGE;
use atlas_backup_exporter::atlas::model::{
    ClusterItem, ClusterShape, ErrorBody, Project, parse_job, parse_job_page, parse_page,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = parse_job_page(data, ITEMS_PER_PAGE) {
        assert!(page.results.len() <= ITEMS_PER_PAGE);
        for job in page.results.iter().flatten() {
            // A job that parsed has a creation time, and its duration is what its times say.
            assert!(job.created_at.is_finite());
            if let Some(finished) = job.finished_at {
                assert_eq!(job.duration(), Some(finished - job.created_at));
            }
        }
    }
    // The same body asked with a small page size: accepted only if it holds few enough items.
    if let Ok(page) = parse_job_page(data, 1) {
        assert!(page.results.len() <= 1);
    }
    if let Ok(Ok(job)) = parse_job(data) {
        assert!(job.created_at.is_finite());
    }
    if let Ok(page) = parse_page::<serde_json::Value>(data, ITEMS_PER_PAGE) {
        for item in &page.results {
            for shape in [ClusterShape::V2, ClusterShape::V1] {
                let _ = ClusterItem::from_value(item, shape);
            }
        }
    }
    let _ = parse_page::<Project>(data, ITEMS_PER_PAGE);
    let _ = ErrorBody::parse(data);
});
