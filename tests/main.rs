//! The integration tests, in one binary to keep link times down.

mod cli;
mod exporter;
mod faults;
mod incremental;
mod load;
mod ops_files;
mod readme;
mod scale;
mod support;
mod tools;
mod web;
