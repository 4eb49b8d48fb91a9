//! Atlas's rate limits as the client meets them: a gate per endpoint and project that holds
//! requests back while a 429's `Retry-After` window is open, and the budget Atlas announces in
//! `RateLimit-Limit` and `RateLimit-Remaining`.
//!
//! Atlas meters its API per endpoint set and scope, so a 429 for one cluster's export jobs means
//! the same for every cluster of the project: asking again cluster by cluster is what keeps the
//! limit hit. After a 429 with `Retry-After`, no new request goes to that endpoint in that
//! project until the window has passed; then one request goes first, and the others follow once
//! it gets any answer but 429. Endpoints without a project are gated by endpoint alone.
//!
//! Windows are measured on the client's [`Clock`], so tests move past them by hand. A caller
//! whose deadline outlasts the window sleeps through it on tokio's timer (like a retry's wait)
//! and then counts the window as passed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::sync::Notify;

use super::deadline::Deadline;
use super::endpoint::Endpoint;
use crate::clock::Clock;

/// A budget not announced again for this long is no longer shown: the pair is no longer asked.
const BUDGET_SHOWN_FOR: Duration = Duration::from_secs(600);
/// How often the budgets too old to show are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What Atlas meters together, as far as the exporter can tell: an endpoint, and the project of
/// the call (none for the OAuth token and the project listing).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    endpoint: Endpoint,
    group_id: Option<String>,
}

impl Key {
    pub(crate) fn new(endpoint: Endpoint, group_id: Option<&str>) -> Key {
        Key {
            endpoint,
            group_id: group_id.map(str::to_owned),
        }
    }

    fn group_label(&self) -> &str {
        self.group_id.as_deref().unwrap_or("")
    }
}

/// What is known of one endpoint and project.
#[derive(Default)]
struct Pair {
    /// The last `RateLimit-Limit` and when it came, on the clock.
    limit: Option<(f64, Instant)>,
    /// The last `RateLimit-Remaining` and when it came.
    remaining: Option<(f64, Instant)>,
    /// The end of the open window, on the clock.
    until: Option<Instant>,
    /// The same end on the wall clock, for the log and errors.
    until_text: String,
    /// Windows opened so far: a ticket taken in an earlier one is stale.
    windows: u64,
    /// A window has been open once: the pair has a `rate_limited` series.
    limited_before: bool,
    /// The first request after a window must go alone.
    probe_due: bool,
    /// That request is in flight.
    probing: bool,
}

impl Pair {
    fn open_until(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|until| *until > now)
    }
}

/// Why a call may not go.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The window ends after the deadline, at this wall-clock time (RFC 3339).
    RateLimited(String),
    /// The deadline ran out while waiting for the request that goes first.
    Deadline,
}

/// The gate and the budget, for the whole process.
pub(crate) struct RateLimits {
    clock: Clock,
    pairs: Mutex<HashMap<Key, Pair>>,
    /// When the budgets too old to show were last forgotten.
    swept: Mutex<Option<Instant>>,
    /// Woken on every change a waiter may care for.
    changed: Notify,
    /// Requests held back so far, by `endpoint` label.
    held: Mutex<BTreeMap<&'static str, u64>>,
}

/// The rate limits as they are at one moment: plain data, for the renderer to write as the
/// `atlas_backup_exporter_api_rate_limit*` and `..._api_requests_held_total` series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RateLimitSnapshot {
    /// Requests held back (waiting, or not sent at all) since the start, by `endpoint` label:
    /// every endpoint, from 0, in label order.
    pub held: Vec<(&'static str, u64)>,
    /// Each endpoint and project with something to show, by endpoint label, then project.
    pub pairs: Vec<RateLimitPair>,
}

/// What is shown of one endpoint and project.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitPair {
    pub endpoint: &'static str,
    /// Empty for the calls outside a project (the OAuth token, the project listing).
    pub group_id: String,
    /// The last `RateLimit-Limit` Atlas sent, if it sent one in the last 10 minutes.
    pub limit: Option<f64>,
    /// The last `RateLimit-Remaining`, the same way.
    pub remaining: Option<f64>,
    /// Whether a 429's window is open; `None` for a pair never rate limited.
    pub limited: Option<bool>,
}

impl RateLimits {
    pub(crate) fn new(clock: Clock) -> RateLimits {
        // Every endpoint from the start, at 0, so a rate of held requests is 0 rather than no data.
        let held = Endpoint::ALL.iter().map(|e| (e.label(), 0)).collect();
        RateLimits {
            clock,
            pairs: Mutex::new(HashMap::new()),
            swept: Mutex::new(None),
            changed: Notify::new(),
            held: Mutex::new(held),
        }
    }

    /// Whether a minute has passed since the last sweep of stale budgets (and if so, it starts now).
    fn sweep_due(&self, now: Instant) -> bool {
        let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
        let due = swept.is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY);
        if due {
            *swept = Some(now);
        }
        due
    }

    fn pairs(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Pair>> {
        self.pairs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `key` may be asked, and takes the turn: a [`Ticket`] to hold while the
    /// request is in flight. Refused when the window outlasts `deadline` (logged once per
    /// window), or the deadline runs out waiting for the request that goes first.
    pub(crate) async fn enter(&self, key: &Key, deadline: Deadline) -> Result<Ticket<'_>, Refusal> {
        let mut held = false;
        let mut count_held = || {
            if !held {
                held = true;
                let mut counts = self.held.lock().unwrap_or_else(|p| p.into_inner());
                *counts.entry(key.endpoint.label()).or_default() += 1;
                tracing::debug!(
                    endpoint = key.endpoint.label(),
                    group_id = key.group_label(),
                    "request held back by Atlas's rate limit"
                );
            }
        };
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.clock.now();
            let wait = {
                let mut pairs = self.pairs();
                let Some(pair) = pairs.get_mut(key) else {
                    return Ok(Ticket::new(self, key, 0, false));
                };
                match pair.open_until(now) {
                    Some(until) => Wait::Window(until - now, until),
                    None if pair.probing => Wait::First,
                    None => {
                        let probe = pair.probe_due;
                        pair.probing = probe;
                        return Ok(Ticket::new(self, key, pair.windows, probe));
                    }
                }
            };
            count_held();
            let left = deadline.remaining();
            match wait {
                Wait::Window(wait, until) => {
                    if left.is_none_or(|left| left <= wait) {
                        return Err(Refusal::RateLimited(self.until_text(key)));
                    }
                    tokio::time::sleep(wait).await;
                    // As long as it said, on tokio's timer: the window has passed, unless a later
                    // 429 moved its end meanwhile.
                    let mut pairs = self.pairs();
                    if let Some(pair) = pairs.get_mut(key)
                        && pair.until == Some(until)
                    {
                        pair.until = None;
                    }
                }
                Wait::First => {
                    let Some(left) = left else {
                        return Err(Refusal::Deadline);
                    };
                    if tokio::time::timeout(left, notified).await.is_err() {
                        return Err(Refusal::Deadline);
                    }
                }
            }
        }
    }

    /// The end of the open window, as errors name it.
    fn until_text(&self, key: &Key) -> String {
        self.pairs()
            .get(key)
            .map(|pair| pair.until_text.clone())
            .unwrap_or_default()
    }

    /// Notes what an answer said: its budget, and a 429's window.
    fn answered(&self, key: &Key, probe: bool, status: StatusCode, headers: &HeaderMap) {
        let now = self.clock.now();
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|n| (n as f64, now))
        };
        let (limit, remaining) = (number("ratelimit-limit"), number("ratelimit-remaining"));
        let retry_after = retry_after(headers);
        let mut pairs = self.pairs();
        // Budgets nobody refreshed for long go; a pair that was limited keeps its gauge. This is
        // looked at once a minute rather than on every answer: there is a pair per project and
        // endpoint, so a sweep per answer made a collection quadratic in the projects. The
        // snapshot leaves out budgets too old to show whenever it is taken, so nothing shown
        // depends on when the sweep ran.
        if self.sweep_due(now) {
            pairs.retain(|_, pair| {
                for budget in [&mut pair.limit, &mut pair.remaining] {
                    if budget.is_some_and(|(_, seen)| now.duration_since(seen) > BUDGET_SHOWN_FOR) {
                        *budget = None;
                    }
                }
                pair.limit.is_some() || pair.remaining.is_some() || pair.limited_before
            });
        }
        let too_many = status == StatusCode::TOO_MANY_REQUESTS;
        let pair = match pairs.get_mut(key) {
            Some(pair) => pair,
            None if limit.is_none() && remaining.is_none() && !too_many => return,
            None => pairs.entry(key.clone()).or_default(),
        };
        pair.limit = limit.or(pair.limit);
        pair.remaining = remaining.or(pair.remaining);
        if probe {
            pair.probing = false;
        }
        match (too_many, retry_after) {
            (true, Some(after)) => {
                let until = now + after;
                let opens = pair.open_until(now).is_none();
                if pair.until.is_none_or(|open| open < until) {
                    pair.until = Some(until);
                    pair.until_text = wall_clock_after(after);
                }
                // Said once per window, however many requests were in flight or held back.
                if opens {
                    pair.windows += 1;
                    tracing::warn!(
                        endpoint = key.endpoint.label(),
                        group_id = key.group_label(),
                        "rate limited until {}; requests held back until then",
                        pair.until_text
                    );
                }
                pair.limited_before = true;
                pair.probe_due = true;
            }
            // Without Retry-After the caller backs off as it always has; whoever asks next
            // still goes first if a window was being probed.
            (true, None) => {}
            (false, _) => {
                if probe {
                    pair.probe_due = false;
                }
            }
        }
        drop(pairs);
        self.changed.notify_waiters();
    }

    /// The ticket's request ended without an answer: whoever asks next goes first instead.
    fn abandoned(&self, key: &Key) {
        if let Some(pair) = self.pairs().get_mut(key) {
            pair.probing = false;
        }
        self.changed.notify_waiters();
    }

    /// Whether a window opened since a ticket was taken in `window`.
    fn window_opened_since(&self, key: &Key, window: u64) -> bool {
        self.pairs()
            .get(key)
            .is_some_and(|pair| pair.windows != window)
    }
}

enum Wait {
    /// This long, until the window's end (on the clock).
    Window(Duration, Instant),
    /// Until the call that goes first has its answer.
    First,
}

/// A turn to ask: report the answer with [`Ticket::answered`]; dropped without it, the request
/// counts as unanswered.
pub(crate) struct Ticket<'a> {
    limits: &'a RateLimits,
    key: Key,
    window: u64,
    probe: bool,
    done: bool,
}

impl<'a> Ticket<'a> {
    fn new(limits: &'a RateLimits, key: &Key, window: u64, probe: bool) -> Ticket<'a> {
        Ticket {
            limits,
            key: key.clone(),
            window,
            probe,
            done: false,
        }
    }

    /// Whether a window opened while the ticket's holder waited for something else (a permit):
    /// then it must not be sent, and takes its turn again.
    pub(crate) fn stale(&self) -> bool {
        !self.probe && self.limits.window_opened_since(&self.key, self.window)
    }

    /// The answer's status and headers.
    pub(crate) fn answered(mut self, status: StatusCode, headers: &HeaderMap) {
        self.done = true;
        self.limits.answered(&self.key, self.probe, status, headers);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe && !self.done {
            self.limits.abandoned(&self.key);
        }
    }
}

/// `Retry-After` in seconds, the form Atlas sends.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The wall-clock time `after` from now, in RFC 3339 to the second.
fn wall_clock_after(after: Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + after;
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{} s from now", after.as_secs()))
}

impl RateLimits {
    /// What to show now: budgets seen in the last 10 minutes, and whether each pair that has
    /// been rate limited is now.
    pub(crate) fn snapshot(&self) -> RateLimitSnapshot {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let held = held.iter().map(|(label, n)| (*label, *n)).collect();
        let now = self.clock.now();
        let shown = |budget: Option<(f64, Instant)>| {
            budget
                .filter(|(_, seen)| now.duration_since(*seen) <= BUDGET_SHOWN_FOR)
                .map(|(value, _)| value)
        };
        let mut pairs: Vec<_> = self
            .pairs()
            .iter()
            .map(|(key, pair)| RateLimitPair {
                endpoint: key.endpoint.label(),
                group_id: key.group_label().to_owned(),
                limit: shown(pair.limit),
                remaining: shown(pair.remaining),
                limited: pair.limited_before.then(|| pair.open_until(now).is_some()),
            })
            .filter(|p| p.limit.is_some() || p.remaining.is_some() || p.limited.is_some())
            .collect();
        pairs.sort_by(|a, b| (a.endpoint, &a.group_id).cmp(&(b.endpoint, &b.group_id)));
        RateLimitSnapshot { held, pairs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn key(group: &str) -> Key {
        Key::new(Endpoint::ListExportJobs, Some(group))
    }

    fn far() -> Deadline {
        Deadline::after(Duration::from_secs(60))
    }

    /// `(group_id, endpoint, value)` of one of the series the snapshot is written as.
    fn values(limits: &RateLimits, name: &str) -> Vec<(String, String, f64)> {
        let snapshot = limits.snapshot();
        let mut out: Vec<_> = match name {
            "atlas_backup_exporter_api_requests_held_total" => snapshot
                .held
                .iter()
                .map(|(endpoint, n)| (String::new(), (*endpoint).to_owned(), *n as f64))
                .collect(),
            _ => snapshot
                .pairs
                .iter()
                .filter_map(|pair| {
                    let value = match name {
                        "atlas_backup_exporter_api_rate_limit" => pair.limit,
                        "atlas_backup_exporter_api_rate_limit_remaining" => pair.remaining,
                        "atlas_backup_exporter_api_rate_limited" => {
                            pair.limited.map(|open| f64::from(u8::from(open)))
                        }
                        _ => panic!("{name} is not a rate-limit series"),
                    };
                    Some((pair.group_id.clone(), pair.endpoint.to_owned(), value?))
                })
                .collect(),
        };
        out.sort_by(|a, b| a.partial_cmp(b).unwrap());
        out
    }

    #[tokio::test]
    async fn a_429_closes_the_pair_until_its_window_passes_and_one_goes_first() {
        let manual = ManualClock::new();
        let limits = RateLimits::new(manual.clock());
        let ticket = limits.enter(&key("a"), far()).await.unwrap();
        ticket.answered(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "20")]),
        );
        // 20 s outlasts a 5 s deadline: refused at once, whatever the project's other callers.
        let short = Deadline::after(Duration::from_secs(5));
        for _ in 0..3 {
            assert!(matches!(
                limits.enter(&key("a"), short).await,
                Err(Refusal::RateLimited(_))
            ));
        }
        // Another project, and another endpoint of the same project, are not held.
        drop(limits.enter(&key("b"), short).await.unwrap());
        let other = Key::new(Endpoint::GetExportJob, Some("a"));
        drop(limits.enter(&other, short).await.unwrap());
        assert_eq!(
            values(&limits, "atlas_backup_exporter_api_rate_limited"),
            [("a".into(), "list_export_jobs".into(), 1.0)]
        );
        let held = values(&limits, "atlas_backup_exporter_api_requests_held_total");
        let held: Vec<_> = held.iter().map(|(_, e, v)| (e.as_str(), *v)).collect();
        assert_eq!(
            held,
            [
                ("get_backup_schedule", 0.0),
                ("get_cluster", 0.0),
                ("get_export_job", 0.0),
                ("get_project", 0.0),
                ("get_snapshot", 0.0),
                ("list_clusters", 0.0),
                ("list_export_buckets", 0.0),
                ("list_export_jobs", 3.0),
                ("list_projects", 0.0),
                ("oauth_token", 0.0),
            ]
        );

        manual.advance(Duration::from_secs(20));
        let first = limits.enter(&key("a"), short).await.unwrap();
        // The next waits for the first one's answer.
        let limits_ref = &limits;
        let follower = async move { limits_ref.enter(&key("a"), short).await.map(drop) };
        let answer = async {
            tokio::task::yield_now().await;
            first.answered(StatusCode::OK, &HeaderMap::new());
        };
        let (followed, ()) = tokio::join!(follower, answer);
        assert!(followed.is_ok());
        assert_eq!(
            values(&limits, "atlas_backup_exporter_api_rate_limited"),
            [("a".into(), "list_export_jobs".into(), 0.0)]
        );
    }

    #[tokio::test]
    async fn while_the_first_is_out_the_others_wait_and_a_deadline_ends_the_wait() {
        let manual = ManualClock::new();
        let limits = RateLimits::new(manual.clock());
        let ticket = limits.enter(&key("a"), far()).await.unwrap();
        ticket.answered(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "1")]),
        );
        manual.advance(Duration::from_secs(1));
        let first = limits.enter(&key("a"), far()).await.unwrap();
        let short = Deadline::after(Duration::from_millis(50));
        assert!(matches!(
            limits.enter(&key("a"), short).await,
            Err(Refusal::Deadline)
        ));
        // The first going unanswered hands the turn on: the next one goes first in its place.
        drop(first);
        let next = limits.enter(&key("a"), far()).await.unwrap();
        assert!(next.probe);
    }

    #[tokio::test]
    async fn a_window_inside_the_deadline_is_waited_for() {
        let limits = RateLimits::new(Clock::real());
        let ticket = limits.enter(&key("a"), far()).await.unwrap();
        ticket.answered(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "1")]),
        );
        let started = std::time::Instant::now();
        let next = limits.enter(&key("a"), far()).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert!(next.probe, "the first after the window goes alone");
    }

    #[tokio::test]
    async fn a_429_that_moves_the_window_on_keeps_it_open_for_those_waiting() {
        let manual = ManualClock::new();
        let limits = RateLimits::new(manual.clock());
        let first = limits.enter(&key("a"), far()).await.unwrap();
        let in_flight = limits.enter(&key("a"), far()).await.unwrap();
        first.answered(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "1")]),
        );
        // Waiting out the 1 s window, while the call still in flight gets a 429 of 30 s.
        let stormed = key("a");
        let waiting = limits.enter(&stormed, Deadline::after(Duration::from_secs(5)));
        let later = async {
            tokio::task::yield_now().await;
            in_flight.answered(
                StatusCode::TOO_MANY_REQUESTS,
                &headers(&[("retry-after", "30")]),
            );
        };
        let (waited, ()) = tokio::join!(waiting, later);
        assert!(matches!(waited, Err(Refusal::RateLimited(_))));
    }

    #[tokio::test]
    async fn budgets_show_the_last_values_and_go_after_ten_minutes() {
        let manual = ManualClock::new();
        let limits = RateLimits::new(manual.clock());
        let budget = [("ratelimit-limit", "100"), ("ratelimit-remaining", "7")];
        limits
            .enter(&key("a"), far())
            .await
            .unwrap()
            .answered(StatusCode::OK, &headers(&budget));
        let token = Key::new(Endpoint::OAuthToken, None);
        limits
            .enter(&token, far())
            .await
            .unwrap()
            .answered(StatusCode::OK, &headers(&[("ratelimit-remaining", "9")]));
        // An answer without headers keeps the last values; nonsense is ignored.
        limits
            .enter(&key("a"), far())
            .await
            .unwrap()
            .answered(StatusCode::OK, &headers(&[("ratelimit-limit", "lots")]));
        assert_eq!(
            values(&limits, "atlas_backup_exporter_api_rate_limit"),
            [("a".into(), "list_export_jobs".into(), 100.0)]
        );
        assert_eq!(
            values(&limits, "atlas_backup_exporter_api_rate_limit_remaining"),
            [
                (String::new(), "oauth_token".into(), 9.0),
                ("a".into(), "list_export_jobs".into(), 7.0)
            ]
        );
        assert!(values(&limits, "atlas_backup_exporter_api_rate_limited").is_empty());
        manual.advance(Duration::from_secs(540));
        limits
            .enter(&token, far())
            .await
            .unwrap()
            .answered(StatusCode::OK, &headers(&[("ratelimit-remaining", "8")]));
        manual.advance(Duration::from_secs(61));
        assert!(values(&limits, "atlas_backup_exporter_api_rate_limit").is_empty());
        assert_eq!(
            values(&limits, "atlas_backup_exporter_api_rate_limit_remaining"),
            [(String::new(), "oauth_token".into(), 8.0)]
        );
    }

    #[tokio::test]
    async fn stale_budgets_are_forgotten_at_most_once_a_minute() {
        let manual = ManualClock::new();
        let limits = RateLimits::new(manual.clock());
        let answer = |group: &'static str| {
            let limits = &limits;
            async move {
                let budget = [("ratelimit-limit", "100")];
                let entered = limits.enter(&key(group), far()).await.unwrap();
                entered.answered(StatusCode::OK, &headers(&budget));
            }
        };
        answer("a").await;
        // This answer sweeps, when a's budget is not yet too old to show.
        manual.advance(BUDGET_SHOWN_FOR - Duration::from_secs(10));
        answer("b").await;
        // Too old to show now, and not forgotten until the next sweep.
        manual.advance(Duration::from_secs(30));
        answer("c").await;
        assert_eq!(limits.pairs().len(), 3);
        assert_eq!(
            values(&limits, "atlas_backup_exporter_api_rate_limit"),
            [
                ("b".into(), "list_export_jobs".into(), 100.0),
                ("c".into(), "list_export_jobs".into(), 100.0)
            ]
        );
        // The first answer a minute after the last sweep sweeps again: a goes, b and c stay.
        manual.advance(SWEEP_EVERY - Duration::from_secs(30));
        answer("c").await;
        let mut kept: Vec<_> = limits
            .pairs()
            .keys()
            .map(|k| k.group_label().to_owned())
            .collect();
        kept.sort();
        assert_eq!(kept, ["b", "c"]);
    }
}
