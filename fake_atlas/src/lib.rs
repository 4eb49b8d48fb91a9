//! A stand-in for the MongoDB Atlas Administration API, for tests, the demo and benchmarks.
//!
//! It behaves like Atlas rather than like the exporter: HTTP digest auth with the challenge,
//! nonce bookkeeping and error body Atlas sends; OAuth client-credentials tokens; paged
//! listings with `links` and `totalCount`; Atlas's 404 bodies and `X-Error-Code` header; the
//! versioned `Accept` header on v2. On top of that it can add latency, inject faults and count
//! the requests it saw, so tests can assert how many calls a scrape cost.
//!
//! Layout, each file importing only those before it: `store` (projects, clusters and jobs,
//! kept in listing order), `auth` (digest nonces and OAuth tokens), `faults` (what can go
//! wrong), `connections` (TCP streams a fault can reset), `hostile` (bodies that misbehave on
//! the wire), `latency` (the latency it adds, kept to the microsecond), `fixtures` (the job
//! builder, the seed page's examples), `state` (`FakeAtlas`: the shared state and the calls
//! that set it up), `http` (routing and Atlas's responses), `server` (binding and serving),
//! `demo` (the demo's estate). This file only names what they offer.

mod auth;
mod connections;
mod demo;
mod faults;
mod fixtures;
mod hostile;
mod http;
mod latency;
mod server;
mod state;
mod store;
#[cfg(test)]
mod tests;

pub use demo::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_EXPIRED_SNAPSHOT_ID, DEMO_GROUP_ID,
    DEMO_MOVING_JOB_ID, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, DEMO_TOOLING_GROUP_ID, DemoHandle,
    DemoTimings,
};
pub use faults::{Fault, Gate, Meter};
pub use fixtures::{JobBuilder, atlas_time, job, seed_examples};
pub use server::BoundAtlas;
pub use state::{FakeAtlas, RequestCounts};
pub use store::{ClusterKind, Order};
