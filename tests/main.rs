//! The integration tests, in one binary to keep link times down.

mod bench_smoke;
mod cli;
mod discovery;
mod e2e_prometheus;
mod e2e_sharded;
mod endpoint;
mod exporter;
mod faults;
mod hostile;
mod incremental;
mod load;
mod metadata;
mod ops_files;
mod properties;
mod ratelimit;
mod readme;
mod scale;
mod schedules;
mod schemas;
mod secrets;
mod servers;
mod soak;
mod spec;
mod support;
mod tools;
mod web;
