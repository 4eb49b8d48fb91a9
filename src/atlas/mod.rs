//! The Atlas Administration API client: authentication (digest or OAuth), the calls the exporter
//! makes, paging, and the models of what comes back.
//!
//! The files depend on each other one way: `endpoint` (the table of Atlas endpoints and the
//! typed paths), `deadline`, `model` and `error` at the bottom; `ratelimit`, `access`, `body` and
//! `observer` above them; `client` (HTTP, authentication, retries) on those; `paging` on the
//! client; `calls` and `listing` at the top. This file only names what the others offer.

mod access;
mod body;
mod calls;
mod client;
mod deadline;
mod endpoint;
mod error;
pub mod model;
mod observer;
mod paging;
mod ratelimit;

pub use calls::ClusterList;
pub use client::{AtlasClient, Body};
pub use deadline::Deadline;
pub use endpoint::{Endpoint, Path, Route};
pub use error::{AtlasError, Gone};
pub use observer::{CallObserver, CallOutcome};
pub use paging::ITEMS_PER_PAGE;
pub(crate) use paging::{FetchedPage, expected_pages, is_full, page_through};
pub use ratelimit::{RateLimitPair, RateLimitSnapshot};
