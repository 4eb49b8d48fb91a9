//! The integration tests, in one binary to keep link times down.

mod bench_smoke;
mod cli;
mod exporter;
mod support;
