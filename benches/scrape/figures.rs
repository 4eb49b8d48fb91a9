//! What the scenarios share: the stand-in they scrape, the check that every cluster was
//! collected, medians, and how figures are written in the report.

use std::io;
use std::time::Duration;

use fake_atlas::FakeAtlas;

use crate::fleet::Fleet;
use crate::process;

/// The running stand-in Atlas and the base URL it serves at.
pub struct StandIn {
    pub fake: FakeAtlas,
    pub base_url: String,
}

/// Every cluster must have been collected, or the figures mean nothing.
pub fn check_up(scraped: &process::Scraped, fleet: &Fleet) -> io::Result<()> {
    match scraped.clusters_up {
        Some(up) if up != fleet.clusters.len() => Err(io::Error::other(format!(
            "only {up} of {} clusters were collected (see the exporter's log)",
            fleet.clusters.len()
        ))),
        _ => Ok(()),
    }
}

/// The median of `values` (the upper one of the two middle values for an even count).
pub fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Thousands separated by commas.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How a figure against its bound reads in the report.
pub fn pass(ok: bool) -> &'static str {
    if ok { "pass" } else { "**FAIL**" }
}
