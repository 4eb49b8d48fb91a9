//! The integration tests, in one binary to keep link times down.

mod cli;
mod exporter;
mod faults;
mod load;
mod properties;
mod secrets;
mod support;
