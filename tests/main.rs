//! The integration tests, in one binary to keep link times down.

mod cli;
mod exporter;
mod support;
mod web;
