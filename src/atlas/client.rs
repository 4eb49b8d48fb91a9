//! The HTTP side of Atlas: authentication, the process-wide bound on requests in flight, retries
//! within a scrape's deadline, and the request counter.
//!
//! Every call, the OAuth token request included, is retried by one policy: `backon`'s exponential
//! backoff with jitter, stretched to Atlas's `Retry-After`, and cut short by the scrape's deadline.
//! Every body is read chunk by chunk, at most `atlas.max_response_size` of it and within the
//! attempt's time, and no redirect is followed: whatever answers at `atlas.base_url` can fail a
//! call, never the process.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable as _};
use diqwest::{DigestAuthSession, WithDigestAuth};
use prometheus::IntCounterVec;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, Semaphore};

use super::access::AccessLog;
use super::body::{BodyFailure, not_followed, read_body};
use super::deadline::Deadline;
use super::endpoint::{Endpoint, Path};
use super::error::{AtlasError, from_the_answer};
use super::model::{BodyError, ErrorBody};
use super::observer::{CallObserver, CallOutcome};
use super::ratelimit::{Key, RateLimitSnapshot, RateLimits, Refusal, retry_after};
use crate::clock::Clock;
use crate::config::{ApiVersion, AtlasConfig, Credentials};

/// Retries per call after the first attempt, all inside the scrape's deadline.
const MAX_RETRIES: usize = 3;
/// The shortest first wait; each wait is its step plus up to as much again of jitter, and the
/// step doubles with every retry: 125–250 ms, 250–500 ms, 500 ms–1 s.
const FIRST_BACKOFF_STEP: Duration = Duration::from_millis(125);
/// The longest token lifetime believed, whatever `expires_in` says.
const MAX_TOKEN_LIFETIME_SECS: u64 = 86_400;
/// A token is renewed this long before Atlas says it expires.
const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(60);

/// A successful response: the body and what it claimed to be.
pub struct Body {
    pub bytes: bytes::Bytes,
    pub content_type: String,
}

impl Body {
    /// Reads the body with `parse`; what it refuses becomes [`AtlasError::Body`] of `call`.
    pub fn parse<T>(
        self,
        call: String,
        parse: impl FnOnce(&[u8]) -> Result<T, BodyError>,
    ) -> Result<T, AtlasError> {
        parse(&self.bytes).map_err(|source| AtlasError::Body {
            call,
            content_type: self.content_type,
            source,
        })
    }
}

/// A shared, cheaply cloned Atlas client.
#[derive(Clone)]
pub struct AtlasClient {
    inner: Arc<ClientState>,
}

/// What every clone of the client shares.
struct ClientState {
    http: reqwest::Client,
    base_url: String,
    api_root: String,
    api_version: ApiVersion,
    auth: Auth,
    permits: Semaphore,
    request_timeout: Duration,
    /// Bound on one answer's body, counted after decompression.
    max_response_size: u64,
    requests: IntCounterVec,
    /// The gate 429s close, and the budget Atlas announces.
    limits: RateLimits,
    /// Told how each call ended (`--atlas.check`), once one is set.
    observer: std::sync::OnceLock<Arc<dyn CallObserver>>,
    /// Which projects Atlas refuses, as the latest calls left them.
    access: AccessLog,
}

enum Auth {
    /// One session for the process, so the nonce Atlas issued is reused with a growing `nc`.
    Digest(DigestAuthSession),
    OAuth(TokenSource),
}

/// The service account's token, fetched once and shared until it is about to expire.
struct TokenSource {
    client_id: SecretString,
    client_secret: SecretString,
    slot: Mutex<TokenSlot>,
    /// What a token's renewal is timed on.
    clock: Clock,
    /// Token requests sent and fetches ended, counted: which of them happened before a caller
    /// asked is a matter of order, not of time, so it holds however `clock` moves.
    events: AtomicU64,
}

impl TokenSource {
    /// The count of fetch events so far, as a caller asks.
    fn asked(&self) -> u64 {
        self.events.load(Ordering::SeqCst)
    }

    /// Counts a token request being sent or a fetch ending, and returns its number.
    fn event(&self) -> u64 {
        self.events.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[derive(Default)]
struct TokenSlot {
    current: Option<Token>,
    /// When the last fetch gave up, and why. Callers that were waiting for that fetch share
    /// its failure rather than each asking Atlas again: Atlas allows about ten token requests
    /// a minute, and a refused service account would otherwise cost one per cluster. The
    /// number is the event that ended the fetch ([`TokenSource::event`]).
    failed: Option<(u64, String)>,
}

#[derive(Clone)]
struct Token {
    value: Arc<SecretString>,
    /// The event that began the attempt that fetched it: to a caller that asked after it, the
    /// token is cached.
    fetch_began: u64,
    /// On the source's clock.
    renew_at: Instant,
}

/// Why one attempt failed, and whether another may help (429, 5xx, no answer).
struct Failure<E> {
    error: E,
    retry: bool,
    /// Atlas's `Retry-After`: the next attempt waits at least this long.
    retry_after: Option<Duration>,
}

impl<E> Failure<E> {
    /// A failure that asking again would only repeat.
    fn permanent(error: E) -> Self {
        Failure {
            error,
            retry: false,
            retry_after: None,
        }
    }

    /// A failure where no answer came: worth another attempt.
    fn transient(error: E) -> Self {
        Failure {
            error,
            retry: true,
            retry_after: None,
        }
    }
}

/// What one attempt of a call gives.
type Attempt<T, E> = Result<T, Failure<E>>;

impl AtlasClient {
    /// Builds the client. `requests` is the process-wide request counter, labelled `endpoint`
    /// and `code`; `clock` times the OAuth token's renewal, the rate limiter's windows and the
    /// intervals of the caches built on the client (`Clock::real()` but in tests).
    pub fn new(
        config: &AtlasConfig,
        credentials: Credentials,
        requests: IntCounterVec,
        clock: Clock,
    ) -> Result<AtlasClient, AtlasError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .connect_timeout(config.request_timeout)
            .pool_max_idle_per_host(config.max_concurrent_requests)
            // Atlas does not redirect API calls. Following one would send the digest answer or
            // the bearer token to another path, or the credentials to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AtlasError::Transport {
                call: "building the HTTP client".into(),
                message: e.to_string(),
            })?;
        let api_root = match config.api_version {
            ApiVersion::V2 => format!("{}/api/atlas/v2", config.base_url),
            ApiVersion::V1 => format!("{}/api/atlas/v1.0", config.base_url),
        };
        let auth = match credentials {
            Credentials::ApiKey {
                public_key,
                private_key,
            } => Auth::Digest(DigestAuthSession::new(
                public_key.expose_secret(),
                private_key.expose_secret(),
            )),
            Credentials::ServiceAccount {
                client_id,
                client_secret,
            } => Auth::OAuth(TokenSource {
                client_id,
                client_secret,
                slot: Mutex::new(TokenSlot::default()),
                clock: clock.clone(),
                events: AtomicU64::new(0),
            }),
        };
        Ok(AtlasClient {
            inner: Arc::new(ClientState {
                http,
                base_url: config.base_url.clone(),
                api_root,
                api_version: config.api_version,
                auth,
                permits: Semaphore::new(config.max_concurrent_requests),
                request_timeout: config.request_timeout,
                max_response_size: config.max_response_size,
                requests,
                limits: RateLimits::new(clock),
                observer: std::sync::OnceLock::new(),
                access: AccessLog::default(),
            }),
        })
    }

    /// A client with the API key `pk` / `sk`, which unit tests give their stand-in Atlas.
    #[cfg(test)]
    pub(crate) fn for_tests(config: &AtlasConfig) -> AtlasClient {
        let credentials = Credentials::ApiKey {
            public_key: SecretString::from("pk"),
            private_key: SecretString::from("sk"),
        };
        let requests = crate::metrics::OwnMetrics::new().api_requests;
        AtlasClient::new(config, credentials, requests, Clock::real())
            .expect("a client of the stand-in")
    }

    /// The rate limits as they are now, for the renderer.
    pub fn rate_limits(&self) -> RateLimitSnapshot {
        self.inner.limits.snapshot()
    }

    /// The API version the client speaks.
    pub fn api_version(&self) -> ApiVersion {
        self.inner.api_version
    }

    /// Tells `observer` how every call of this client and its clones ends from now on; a
    /// client has at most one observer, and a second is refused.
    pub fn set_observer(
        &self,
        observer: Arc<dyn CallObserver>,
    ) -> Result<(), Arc<dyn CallObserver>> {
        self.inner.observer.set(observer)
    }

    /// GETs `path` with `query` (empty, or starting with `?`), asking for its endpoint's
    /// version, retrying transient failures until the deadline. `call` names the call in errors
    /// ("listing export jobs of 5f1a…/Cluster0").
    pub async fn get(
        &self,
        path: Path<'_>,
        query: &str,
        call: &str,
        deadline: Deadline,
    ) -> Result<Body, AtlasError> {
        let endpoint = path.endpoint();
        let url = format!("{}{path}{query}", self.inner.api_root);
        // Atlas meters a project's calls together.
        let group_id = path.group_id();
        let key = Key::new(endpoint, group_id);
        let result = retrying(deadline, call, || {
            self.attempt(endpoint, &key, &url, call, deadline)
        })
        .await;
        self.inner.access.call_ended(group_id, endpoint, &result);
        if let Some(observer) = self.inner.observer.get() {
            let result = result.as_ref().map(|_| ());
            observer.observe(CallOutcome { path, result });
        }
        result
    }

    /// Whether Atlas refuses the exporter in the project: the credential, or the latest call
    /// of some kind in it (see `access`).
    pub fn access_denied(&self, group_id: &str) -> bool {
        self.inner.access.denied(group_id)
    }

    /// Forgets the refusals of the projects `keep` refuses (no longer watched).
    pub fn forget_access_all_but(&self, keep: impl Fn(&str) -> bool) {
        self.inner.access.retain(keep);
    }

    /// One HTTP attempt (a digest exchange counts as one), once the rate-limit gate lets it go,
    /// holding a permit while it runs.
    async fn attempt(
        &self,
        endpoint: Endpoint,
        key: &Key,
        url: &str,
        call: &str,
        deadline: Deadline,
    ) -> Attempt<Body, AtlasError> {
        let deadline_error = || Failure::permanent(AtlasError::Deadline { call: call.into() });
        let (ticket, _permit) = loop {
            let ticket = match self.inner.limits.enter(key, deadline).await {
                Ok(ticket) => ticket,
                Err(refusal) => return Err(Failure::permanent(refused(refusal, call))),
            };
            let Some(left) = deadline.remaining() else {
                return Err(deadline_error());
            };
            let Ok(Ok(permit)) = tokio::time::timeout(left, self.inner.permits.acquire()).await
            else {
                return Err(deadline_error());
            };
            // A 429 that came back while this waited for a permit closes the gate for it too.
            if !ticket.stale() {
                break (ticket, permit);
            }
        };
        let Some(left) = deadline.remaining() else {
            return Err(deadline_error());
        };
        let timeout = left.min(self.inner.request_timeout);
        // The answer, body included, must be in by then: a body trickling in is cut too.
        let end = tokio::time::Instant::now() + timeout;
        let response =
            match tokio::time::timeout_at(end, self.send(endpoint, url, call, deadline)).await {
                Ok(response) => {
                    let response = response?;
                    ticket.answered(response.status(), response.headers());
                    response
                }
                Err(_) => {
                    self.count(endpoint, None);
                    return Err(Failure::transient(AtlasError::Transport {
                        call: call.into(),
                        message: format!("no answer within {} ms", timeout.as_millis()),
                    }));
                }
            };
        read_response(response, call, self.inner.max_response_size, end, timeout).await
    }

    async fn send(
        &self,
        endpoint: Endpoint,
        url: &str,
        call: &str,
        deadline: Deadline,
    ) -> Attempt<reqwest::Response, AtlasError> {
        let accept = match self.inner.api_version {
            ApiVersion::V2 => endpoint.media_type(),
            ApiVersion::V1 => "application/json".to_owned(),
        };
        let request = self.inner.http.get(url).header(ACCEPT, accept);
        let response = match &self.inner.auth {
            Auth::Digest(session) => request
                .send_digest_auth(session)
                .await
                .map_err(|e| e.to_string()),
            Auth::OAuth(tokens) => {
                match self
                    .send_with_token(tokens, request, endpoint, deadline)
                    .await
                {
                    Ok(response) => Ok(response),
                    Err(TokenOrTransport::Token(error)) => return Err(Failure::permanent(error)),
                    Err(TokenOrTransport::Transport(message)) => Err(message),
                }
            }
        };
        match response {
            Ok(response) => {
                self.count(endpoint, Some(response.status()));
                Ok(response)
            }
            Err(message) => {
                self.count(endpoint, None);
                Err(Failure::transient(AtlasError::Transport {
                    call: call.into(),
                    message,
                }))
            }
        }
    }

    /// Sends with the cached bearer token; a 401 on a cached token fetches one new token and
    /// tries once more (the 401 attempt is counted on its own).
    async fn send_with_token(
        &self,
        tokens: &TokenSource,
        request: RequestBuilder,
        endpoint: Endpoint,
        deadline: Deadline,
    ) -> Result<reqwest::Response, TokenOrTransport> {
        let asked = tokens.asked();
        let token = self.token(tokens, None, deadline).await?;
        let with_new_token = request.try_clone();
        let response = request
            .bearer_auth(token.value.expose_secret())
            .send()
            .await
            .map_err(|e| TokenOrTransport::Transport(e.to_string()))?;
        // Only a token from the cache gets a second chance: a brand-new one refused means the
        // credential itself is refused.
        let cached = token.fetch_began <= asked;
        let (Some(with_new_token), StatusCode::UNAUTHORIZED, true) =
            (with_new_token, response.status(), cached)
        else {
            return Ok(response);
        };
        self.count(endpoint, Some(response.status()));
        tracing::debug!("Atlas refused the cached OAuth token; fetching a new one");
        let token = self.token(tokens, Some(&token), deadline).await?;
        with_new_token
            .bearer_auth(token.value.expose_secret())
            .send()
            .await
            .map_err(|e| TokenOrTransport::Transport(e.to_string()))
    }

    /// The current token, fetching a new one if there is none, it is due for renewal, or it is
    /// the one Atlas just refused (`refused`). Concurrent callers wait for one fetch, retries
    /// included, and share its token or its failure.
    async fn token(
        &self,
        tokens: &TokenSource,
        refused: Option<&Token>,
        deadline: Deadline,
    ) -> Result<Token, TokenOrTransport> {
        let asked = tokens.asked();
        let mut slot = tokens.slot.lock().await;
        if let Some(token) = slot.current.as_ref() {
            let is_refused = refused.is_some_and(|r| Arc::ptr_eq(&r.value, &token.value));
            if !is_refused && tokens.clock.now() < token.renew_at {
                return Ok(token.clone());
            }
        }
        if let Some((failed, message)) = &slot.failed
            && *failed > asked
        {
            return Err(TokenOrTransport::Token(AtlasError::Token(message.clone())));
        }
        // Fetches run under the slot's lock, so their events never interleave.
        let fetched = self.fetch_token_retrying(tokens, deadline).await;
        let ended = tokens.event();
        match fetched {
            Ok(token) => {
                slot.current = Some(token.clone());
                slot.failed = None;
                Ok(token)
            }
            Err(message) => {
                slot.failed = Some((ended, message.clone()));
                Err(TokenOrTransport::Token(AtlasError::Token(message)))
            }
        }
    }

    /// Asks for a token, retrying as [`AtlasClient::get`] does (429, 5xx, no answer) within
    /// the deadline.
    async fn fetch_token_retrying(
        &self,
        tokens: &TokenSource,
        deadline: Deadline,
    ) -> Result<Token, String> {
        retrying(deadline, "requesting an OAuth token", || {
            self.fetch_token(tokens, deadline)
        })
        .await
    }

    async fn fetch_token(
        &self,
        tokens: &TokenSource,
        deadline: Deadline,
    ) -> Attempt<Token, String> {
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            access_token: String,
            expires_in: u64,
        }
        let url = format!("{}/api/oauth/token", self.inner.base_url);
        let Some(left) = deadline.remaining() else {
            return Err(Failure::permanent("the scrape's deadline ran out".into()));
        };
        let timeout = left.min(self.inner.request_timeout);
        let request = self
            .inner
            .http
            .post(url)
            .basic_auth(
                tokens.client_id.expose_secret(),
                Some(tokens.client_secret.expose_secret()),
            )
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .timeout(timeout);
        let key = Key::new(Endpoint::OAuthToken, None);
        let ticket = match self.inner.limits.enter(&key, deadline).await {
            Ok(ticket) => ticket,
            Err(refusal) => {
                return Err(Failure::permanent(
                    refused(refusal, "requesting an OAuth token").to_string(),
                ));
            }
        };
        let (began, asked_at) = (tokens.event(), tokens.clock.now());
        let end = tokio::time::Instant::now() + timeout;
        let mut response = match request.send().await {
            Ok(response) => {
                ticket.answered(response.status(), response.headers());
                response
            }
            Err(e) => {
                self.count(Endpoint::OAuthToken, None);
                return Err(Failure::transient(e.to_string()));
            }
        };
        let status = response.status();
        self.count(Endpoint::OAuthToken, Some(status));
        let retry_after = retry_after(response.headers());
        if status.is_redirection() {
            return Err(Failure::permanent(format!(
                "HTTP {}: {}",
                status.as_u16(),
                not_followed(response.headers())
            )));
        }
        let bytes = match read_body(&mut response, self.inner.max_response_size, end).await {
            Ok(bytes) => bytes,
            Err(_) if !status.is_success() => bytes::Bytes::new(),
            Err(failure) => {
                let message = failure.describe(self.inner.max_response_size, timeout);
                return Err(Failure {
                    error: format!("reading the answer: {message}"),
                    // A body past the limit would be past it again.
                    retry: !matches!(failure, BodyFailure::TooLarge),
                    retry_after: None,
                });
            }
        };
        if !status.is_success() {
            let detail = ErrorBody::parse(&bytes)
                .and_then(|e| e.error_code.or(e.detail))
                .or_else(|| {
                    // The token endpoint speaks OAuth: {"error": "invalid_client", ...}.
                    serde_json::from_slice::<serde_json::Value>(&bytes)
                        .ok()
                        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
                })
                .map_or_else(|| "no error details".into(), |d| from_the_answer(&d));
            if status == StatusCode::UNAUTHORIZED || detail == "invalid_client" {
                self.inner.access.token_answered(true);
            }
            return Err(Failure {
                error: format!("HTTP {}: {detail}", status.as_u16()),
                retry: worth_retrying(status),
                retry_after,
            });
        }
        let parsed: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|e| Failure::permanent(format!("unexpected token response: {e}")))?;
        // Atlas's tokens live an hour; a day bounds what a broken answer could make us trust.
        let lifetime = Duration::from_secs(parsed.expires_in.min(MAX_TOKEN_LIFETIME_SECS));
        let early = if lifetime > 2 * TOKEN_RENEW_MARGIN {
            lifetime - TOKEN_RENEW_MARGIN
        } else {
            lifetime / 2
        };
        tracing::debug!(expires_in = parsed.expires_in, "fetched an OAuth token");
        self.inner.access.token_answered(false);
        Ok(Token {
            value: Arc::new(SecretString::from(parsed.access_token)),
            fetch_began: began,
            renew_at: asked_at + early,
        })
    }

    fn count(&self, endpoint: Endpoint, status: Option<StatusCode>) {
        let code = status.map(|s| s.as_u16().to_string());
        self.inner
            .requests
            .with_label_values(&[endpoint.label(), code.as_deref().unwrap_or("error")])
            .inc();
    }
}

enum TokenOrTransport {
    Token(AtlasError),
    Transport(String),
}

impl From<TokenOrTransport> for AtlasError {
    fn from(value: TokenOrTransport) -> Self {
        match value {
            TokenOrTransport::Token(error) => error,
            TokenOrTransport::Transport(message) => AtlasError::Token(message),
        }
    }
}

/// Reads an answer whose headers are in: its body, at most `limit` bytes of it and only until
/// `end` (`timeout` after the attempt began), then what the status says.
async fn read_response(
    mut response: reqwest::Response,
    call: &str,
    limit: u64,
    end: tokio::time::Instant,
    timeout: Duration,
) -> Attempt<Body, AtlasError> {
    let status = response.status();
    let content_type = header_text(response.headers(), CONTENT_TYPE);
    let retry_after = retry_after(response.headers());
    if status.is_redirection() {
        return Err(Failure::permanent(AtlasError::Redirect {
            call: call.into(),
            status: status.as_u16(),
            location: not_followed(response.headers()),
        }));
    }
    let bytes = match read_body(&mut response, limit, end).await {
        Ok(bytes) => bytes,
        // An error status says enough without its body.
        Err(_) if status != StatusCode::OK => bytes::Bytes::new(),
        Err(BodyFailure::TooLarge) => {
            // Asking again gets the same answer.
            return Err(Failure::permanent(AtlasError::TooLarge {
                call: call.into(),
                limit,
            }));
        }
        Err(failure) => {
            return Err(Failure::transient(AtlasError::Transport {
                call: call.into(),
                message: format!("reading the body: {}", failure.describe(limit, timeout)),
            }));
        }
    };
    if status == StatusCode::OK {
        return Ok(Body {
            bytes,
            content_type: content_type.unwrap_or_default(),
        });
    }
    let body = ErrorBody::parse(&bytes).unwrap_or_default();
    Err(Failure {
        error: AtlasError::Status {
            call: call.into(),
            status: status.as_u16(),
            error_code: body.error_code.as_deref().map(from_the_answer),
            detail: body.detail.or(body.reason).as_deref().map(from_the_answer),
            content_type: content_type.as_deref().map(from_the_answer),
        },
        retry: worth_retrying(status),
        retry_after,
    })
}

/// Atlas's rate limit and its server errors pass; the other statuses say the call is wrong.
fn worth_retrying(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The error of a call the rate-limit gate did not let go.
fn refused(refusal: Refusal, call: &str) -> AtlasError {
    match refusal {
        Refusal::RateLimited(until) => AtlasError::RateLimited {
            call: call.into(),
            until,
        },
        Refusal::Deadline => AtlasError::Deadline { call: call.into() },
    }
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The waits between attempts, before `Retry-After` and the deadline have their say.
fn retry_policy() -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(FIRST_BACKOFF_STEP)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(MAX_RETRIES)
}

/// The wait before the next attempt: the policy's `next` (none when the attempts are used up),
/// stretched to `retry_after`, and none at all when it would not end before the deadline.
fn wait_before_retry(
    next: Option<Duration>,
    retry_after: Option<Duration>,
    remaining: Option<Duration>,
) -> Option<Duration> {
    let wait = next?.max(retry_after.unwrap_or_default());
    remaining.filter(|left| *left > wait).map(|_| wait)
}

/// Runs `attempt` until it succeeds or fails for good: a permanent failure, the attempts used up,
/// or a wait that would end after `deadline`. `call` names the call in the debug line of each
/// retry.
async fn retrying<T, E, F, Fut>(deadline: Deadline, call: &str, attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
    E: fmt::Display,
{
    let mut failed_attempts = 0u32;
    attempt
        .retry(retry_policy())
        .when(|failure| failure.retry)
        .adjust(|failure, next| wait_before_retry(next, failure.retry_after, deadline.remaining()))
        .notify(|failure, wait| {
            failed_attempts += 1;
            tracing::debug!(
                error = %failure.error,
                call,
                attempt = failed_attempts,
                wait_ms = wait.as_millis() as u64,
                "retrying Atlas call"
            );
        })
        .await
        .map_err(|failure| failure.error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_respects_retry_after() {
        use backon::BackoffBuilder as _;
        let mut policy = retry_policy().build();
        for attempt in 1..=3 {
            let wait = policy.next().expect("three retries");
            let ceiling = Duration::from_millis(250) * 2u32.pow(attempt - 1);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{wait:?} for {attempt}"
            );
        }
        assert_eq!(policy.next(), None, "a call is tried at most four times");
        let plenty = Some(Duration::from_secs(60));
        let first = Some(Duration::from_millis(200));
        let wait = wait_before_retry(first, Some(Duration::from_secs(3)), plenty);
        assert!(wait >= Some(Duration::from_secs(3)), "{wait:?}");
        assert_eq!(wait_before_retry(first, None, plenty), first);
        // No attempts left, or a wait that would outlast the deadline: no retry.
        assert_eq!(wait_before_retry(None, None, plenty), None);
        let after = Some(Duration::from_secs(60));
        assert_eq!(
            wait_before_retry(first, after, Some(Duration::from_secs(5))),
            None
        );
        assert_eq!(wait_before_retry(first, None, None), None);
    }
}
