//! Ways the stand-in can misbehave, to test that the exporter keeps telling the truth.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

const JSON: &str = "application/json";

/// How a [`FaultAction::Body`] misbehaves; `hostile` serves them.
#[derive(Clone, Debug)]
pub(super) enum BadBody {
    /// The page padded to this many bytes, its body sent once the gate (if any) opens.
    Oversized(u64, Option<Gate>),
    GzipBomb(u64),
    Endless,
    Trickle(Duration),
    ResetMidBody,
    TruncatedChunked,
}

/// A fault for requests whose path contains a substring (and optionally whose query string
/// contains another), applied to authenticated requests only so the digest handshake stays
/// normal. Forever by default, or to the next `n` matches with [`Fault::times`].
#[derive(Clone, Debug)]
pub struct Fault {
    path_contains: String,
    query_contains: Option<String>,
    path_ends: bool,
    remaining: Option<u32>,
    pub(super) action: FaultAction,
}

#[derive(Clone, Debug)]
pub(super) enum FaultAction {
    /// An Atlas error body with a fitting `errorCode`.
    Status(u16),
    /// An Atlas error body with this status and `errorCode`.
    AtlasError { status: u16, error_code: String },
    /// 429 `RATE_LIMITED_TOKEN_BUCKET`, with `Retry-After` seconds when given.
    RateLimited(Option<u64>),
    /// Anything at all, e.g. a proxy's HTML page or truncated JSON.
    Raw {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// A 200 whose body misbehaves on the wire, metered.
    Body(BadBody, Meter),
    /// A redirect, which Atlas never sends for API calls.
    Redirect { status: u16, location: String },
    /// Accept the request and never answer.
    Hang,
    /// Wait, then answer normally.
    Delay(Duration),
    /// Wait until the test opens the gate, then answer normally.
    Hold(Gate),
    /// Another action's answer with a `Retry-After` header of this many seconds.
    WithRetryAfter(Box<FaultAction>, u64),
}

impl Fault {
    fn new(path_contains: &str, action: FaultAction) -> Self {
        Self {
            path_contains: path_contains.to_owned(),
            query_contains: None,
            path_ends: false,
            remaining: None,
            action,
        }
    }

    /// Answers with `status` and an Atlas error body: 500 `UNEXPECTED_ERROR`, 503
    /// `SERVICE_UNAVAILABLE`, 429 `RATE_LIMITED`, 403 `IP_ADDRESS_NOT_ON_ACCESS_LIST`, 404
    /// `RESOURCE_NOT_FOUND`, 401 the digest challenge's body, and so on.
    pub fn status(path_contains: &str, status: u16) -> Fault {
        Self::new(path_contains, FaultAction::Status(status))
    }

    /// Answers with `status` and an Atlas error body carrying `error_code`, as Atlas refuses an
    /// authenticated request: 401 `USER_UNAUTHORIZED` (the credential lacks the project role), 403
    /// `IP_ADDRESS_NOT_ON_ACCESS_LIST`, 404 `GROUP_NOT_FOUND` or `CLUSTER_NOT_FOUND`, and so on.
    pub fn atlas_error(path_contains: &str, status: u16, error_code: &str) -> Fault {
        Self::new(
            path_contains,
            FaultAction::AtlasError {
                status,
                error_code: error_code.to_owned(),
            },
        )
    }

    /// Answers 429 `RATE_LIMITED_TOKEN_BUCKET`, with `Retry-After: secs` when given.
    pub fn rate_limited(path_contains: &str, retry_after: Option<u64>) -> Fault {
        Self::new(path_contains, FaultAction::RateLimited(retry_after))
    }

    /// Answers exactly this status, content type and body.
    pub fn raw(
        path_contains: &str,
        status: u16,
        content_type: &str,
        body: impl Into<String>,
    ) -> Fault {
        Self::new(
            path_contains,
            FaultAction::Raw {
                status,
                content_type: content_type.to_owned(),
                body: body.into().into_bytes(),
            },
        )
    }

    /// A page whose one job has an `id` holding a byte that is not UTF-8 (`0xFF`).
    pub fn invalid_utf8(path_contains: &str) -> Fault {
        let mut body = br#"{"links":[],"results":[{"id":"605ccba3c1c7613f423e15"#.to_vec();
        body.push(0xFF);
        body.extend_from_slice(
            br#"","state":"Queued","createdAt":"2026-08-10T03:28:25Z"}],"totalCount":1}"#,
        );
        Self::new(
            path_contains,
            FaultAction::Raw {
                status: 200,
                content_type: JSON.to_owned(),
                body,
            },
        )
    }

    /// A page whose one job's `components` holds lists nested `levels` deep.
    pub fn deeply_nested(path_contains: &str, levels: usize) -> Fault {
        let body = format!(
            r#"{{"links":[],"results":[{{"id":"605ccba3c1c7613f423e1585","state":"Queued","createdAt":"2026-08-10T03:28:25Z","components":{}{}}}],"totalCount":1}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        );
        Self::new(
            path_contains,
            FaultAction::Raw {
                status: 200,
                content_type: JSON.to_owned(),
                body: body.into_bytes(),
            },
        )
    }

    /// A 200 with an empty page padded with blanks (valid JSON) to `bytes` bytes, announced
    /// in `Content-Length`.
    pub fn oversized(path_contains: &str, bytes: u64) -> Fault {
        Self::new(
            path_contains,
            FaultAction::Body(BadBody::Oversized(bytes, None), Meter::new()),
        )
    }

    /// [`Fault::oversized`] whose headers, `Content-Length` among them, go out at once while
    /// its body waits for `gate` to open: a client that refuses the answer on its
    /// `Content-Length` fails it with the gate still closed; one that reads the body waits.
    pub fn oversized_held(path_contains: &str, bytes: u64, gate: &Gate) -> Fault {
        Self::new(
            path_contains,
            FaultAction::Body(BadBody::Oversized(bytes, Some(gate.clone())), Meter::new()),
        )
    }

    /// A 200 with `Content-Encoding: gzip` whose body inflates to at least `inflated` bytes
    /// (an empty page padded with blanks), while only about a thousandth of that is sent.
    pub fn gzip_bomb(path_contains: &str, inflated: u64) -> Fault {
        Self::new(
            path_contains,
            FaultAction::Body(BadBody::GzipBomb(inflated), Meter::new()),
        )
    }

    /// A chunked 200 that never ends: `{"results":[` and then blanks, as fast as the client
    /// reads them.
    pub fn endless(path_contains: &str) -> Fault {
        Self::new(
            path_contains,
            FaultAction::Body(BadBody::Endless, Meter::new()),
        )
    }

    /// A 200 with an empty page and its `Content-Length`, one byte every `every`.
    pub fn trickle(path_contains: &str, every: Duration) -> Fault {
        Self::new(
            path_contains,
            FaultAction::Body(BadBody::Trickle(every), Meter::new()),
        )
    }

    /// A 200 announcing a page of one job in `Content-Length`, then half of it, then a TCP
    /// reset (RST). Served by [`crate::BoundAtlas::serve`]; elsewhere it ends with a close.
    pub fn reset_mid_body(path_contains: &str) -> Fault {
        Self::new(
            path_contains,
            FaultAction::Body(BadBody::ResetMidBody, Meter::new()),
        )
    }

    /// A chunked 200 with half a page, then the connection closes without the last chunk.
    pub fn truncated_chunked(path_contains: &str) -> Fault {
        Self::new(
            path_contains,
            FaultAction::Body(BadBody::TruncatedChunked, Meter::new()),
        )
    }

    /// Answers `status` (301, 302, 303, 307, 308) with `Location: location`.
    pub fn redirect(path_contains: &str, status: u16, location: &str) -> Fault {
        Self::new(
            path_contains,
            FaultAction::Redirect {
                status,
                location: location.to_owned(),
            },
        )
    }

    /// Counts what the fault's bodies send in `meter` (for the faults that stream a body).
    pub fn metered(mut self, meter: &Meter) -> Fault {
        if let FaultAction::Body(_, counted) = &mut self.action {
            *counted = meter.clone();
        }
        self
    }

    /// Accepts the request and never answers (until the stand-in shuts down). Other
    /// requests are served as usual.
    pub fn hang(path_contains: &str) -> Fault {
        Self::new(path_contains, FaultAction::Hang)
    }

    /// Waits `d`, then answers normally.
    pub fn delay(path_contains: &str, d: Duration) -> Fault {
        Self::new(path_contains, FaultAction::Delay(d))
    }

    /// Holds the request, already authenticated, until `gate` opens (or the stand-in shuts
    /// down, which answers 503), then answers normally: a request in flight for exactly as
    /// long as a test needs, with no timer to race.
    pub fn hold(path_contains: &str, gate: &Gate) -> Fault {
        Self::new(path_contains, FaultAction::Hold(gate.clone()))
    }

    /// Adds `Retry-After: secs` to the answer, e.g. to a [`Fault::raw`] 429 with Atlas's
    /// other code, `RATE_LIMITED`.
    pub fn with_retry_after(mut self, secs: u64) -> Fault {
        self.action = match self.action {
            FaultAction::WithRetryAfter(inner, _) => FaultAction::WithRetryAfter(inner, secs),
            other => FaultAction::WithRetryAfter(Box::new(other), secs),
        };
        self
    }

    /// Applies to the next `n` matching requests only, then disappears.
    pub fn times(mut self, n: u32) -> Fault {
        self.remaining = Some(n);
        self
    }

    /// Also requires the raw query string to contain this, e.g. `"pageNum=2"`.
    pub fn on_query(mut self, query_contains: &str) -> Fault {
        self.query_contains = Some(query_contains.to_owned());
        self
    }

    /// Only paths that end with the fault's path, e.g. the cluster listing
    /// `/groups/{id}/clusters` but not the export listings under it.
    pub fn at_path_end(mut self) -> Fault {
        self.path_ends = true;
        self
    }

    fn matches(&self, path: &str, query: &str) -> bool {
        let path_matches = if self.path_ends {
            path.ends_with(&self.path_contains)
        } else {
            path.contains(&self.path_contains)
        };
        self.remaining != Some(0)
            && path_matches
            && self
                .query_contains
                .as_deref()
                .is_none_or(|q| query.contains(q))
    }
}

/// Where [`Fault::hold`] keeps requests: closed until the test opens it, counting the requests
/// that reached it. Clones share the gate.
#[derive(Clone, Debug)]
pub struct Gate {
    state: Arc<watch::Sender<GateState>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct GateState {
    arrived: usize,
    open: bool,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// A closed gate that no request has reached yet.
    pub fn new() -> Gate {
        Gate {
            state: Arc::new(watch::Sender::new(GateState::default())),
        }
    }

    /// Requests that reached the gate so far, held or let through.
    pub fn arrived(&self) -> usize {
        self.state.borrow().arrived
    }

    /// Waits until `n` requests in all have reached the gate.
    pub async fn arrivals(&self, n: usize) {
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = self.state.subscribe().wait_for(|s| s.arrived >= n).await;
    }

    /// Lets the held requests through, and every later one.
    pub fn open(&self) {
        self.state.send_modify(|s| s.open = true);
    }

    /// Counts a request in and waits until the gate is open.
    pub(super) async fn pass(&self) {
        let mut state = self.state.subscribe();
        self.state.send_modify(|s| s.arrived += 1);
        let _ = state.wait_for(|s| s.open).await;
    }
}

/// What the bodies of a fault sent, for tests that bound what the exporter read: clones share
/// the counts.
#[derive(Clone, Debug, Default)]
pub struct Meter {
    state: Arc<watch::Sender<MeterState>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct MeterState {
    started: usize,
    ended: usize,
    sent: u64,
    inflated: u64,
}

impl Meter {
    /// A meter that counted nothing yet.
    pub fn new() -> Meter {
        Meter::default()
    }

    /// Body bytes handed to connections so far, as sent (compressed, for a gzip bomb). Bytes
    /// still in the kernel's buffers when the client hung up count as sent.
    pub fn sent(&self) -> u64 {
        self.state.borrow().sent
    }

    /// What the bytes sent hold once inflated: [`Meter::sent`] but for a gzip bomb.
    pub fn inflated(&self) -> u64 {
        self.state.borrow().inflated
    }

    /// Bodies started so far.
    pub fn started(&self) -> usize {
        self.state.borrow().started
    }

    /// Waits until `n` bodies in all have ended: sent whole, broken off on purpose, or dropped
    /// because the client hung up.
    pub async fn ended(&self, n: usize) {
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = self.state.subscribe().wait_for(|s| s.ended >= n).await;
    }

    /// Counts a body in; the guard counts it out when the body is dropped.
    pub(super) fn start(&self) -> BodyGuard {
        self.state.send_modify(|s| s.started += 1);
        BodyGuard(self.clone())
    }

    pub(super) fn count(&self, sent: usize, inflated: usize) {
        self.state.send_modify(|s| {
            s.sent += sent as u64;
            s.inflated += inflated as u64;
        });
    }
}

/// Held by a body while it is being sent.
pub(super) struct BodyGuard(Meter);

impl BodyGuard {
    pub(super) fn count(&self, sent: usize, inflated: usize) {
        self.0.count(sent, inflated);
    }
}

impl Drop for BodyGuard {
    fn drop(&mut self) {
        self.0.state.send_modify(|s| s.ended += 1);
    }
}

/// Takes the first fault matching a request, using up one of its `times`.
pub(super) fn take_match(faults: &mut Vec<Fault>, path: &str, query: &str) -> Option<FaultAction> {
    let i = faults.iter().position(|f| f.matches(path, query))?;
    let fault = &mut faults[i];
    let action = fault.action.clone();
    if let Some(n) = &mut fault.remaining {
        *n -= 1;
        if *n == 0 {
            faults.remove(i);
        }
    }
    Some(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_query_and_order() {
        let mut faults = vec![
            Fault::status("/exports", 500)
                .on_query("pageNum=2")
                .times(1),
            Fault::status("/exports", 503).times(2),
            Fault::status("/exports", 0).times(0),
        ];
        let code = |a: Option<FaultAction>| match a {
            Some(FaultAction::Status(s)) => s,
            _ => 0,
        };
        assert_eq!(
            code(take_match(&mut faults, "/a/exports", "pageNum=1")),
            503
        );
        assert_eq!(
            code(take_match(&mut faults, "/a/exports", "pageNum=2")),
            500
        );
        assert_eq!(
            code(take_match(&mut faults, "/a/exports", "pageNum=2")),
            503
        );
        assert!(take_match(&mut faults, "/a/exports", "").is_none());
        assert!(take_match(&mut faults, "/a/clusters", "").is_none());
    }
}
