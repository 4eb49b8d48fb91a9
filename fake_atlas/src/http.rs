//! Routing and Atlas's responses: headers, page envelopes and error bodies as recorded.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{self, DigestOutcome};
use super::connections::ResetSwitch;
use super::faults::{self, FaultAction};
use super::hostile;
use super::latency;
use super::state::{FakeAtlas, lock};
use super::store::{Missing, Page, Shape};

const JSON: &str = "application/json";
const OAUTH_PATH: &str = "/api/oauth/token";
/// Atlas's bounds on `itemsPerPage`.
const MAX_ITEMS_PER_PAGE: u64 = 500;
const DEFAULT_ITEMS_PER_PAGE: u64 = 100;
/// Bodies of token requests are a few dozen bytes; anything past this is refused.
const MAX_FORM_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V2,
    V1,
}

/// Which service a path belongs to.
enum Api {
    OAuth,
    /// Under `/api/atlas/`; `None` for a version Atlas does not have.
    Atlas(Option<Version>),
    Other,
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    OAuthToken,
    ListGroups,
    GetGroup(String),
    ListClusters(String),
    GetCluster(String, String),
    ListJobs(String, String),
    GetJob(String, String, String),
    ListBuckets(String),
    GetSchedule(String, String),
    /// Project, cluster, snapshot id, and whether at the sharded path.
    GetSnapshot(String, String, String, bool),
    ListAllClusters,
    Unknown,
}

/// The versions the published specification lists for each path, oldest first (the
/// exporter's own test holds the specification's facts; the stand-in keeps its own copy, so
/// that it refuses what Atlas refuses even when the exporter's table is wrong).
const CLUSTER_VERSIONS: &[&str] = &["2023-01-01", "2023-02-01", "2024-08-05"];
/// The cluster versions that cannot describe asymmetric shards.
const LEGACY_CLUSTER_VERSIONS: &[&str] = &["2023-01-01", "2023-02-01"];
const FIRST_VERSION: &[&str] = &["2023-01-01"];
const SCHEDULE_VERSIONS: &[&str] = &["2023-01-01", "2024-08-05"];
const BUCKET_VERSIONS: &[&str] = &["2023-01-01", "2024-05-30"];

impl Route {
    /// The versions Atlas answers this route in.
    fn versions(&self) -> &'static [&'static str] {
        match self {
            Route::ListClusters(_) | Route::GetCluster(..) => CLUSTER_VERSIONS,
            Route::ListBuckets(_) => BUCKET_VERSIONS,
            Route::GetSchedule(..) => SCHEDULE_VERSIONS,
            _ => FIRST_VERSION,
        }
    }

    /// The name the request is counted under.
    fn endpoint(&self) -> &'static str {
        match self {
            Route::OAuthToken => "oauth_token",
            Route::ListGroups => "list_projects",
            Route::GetGroup(_) => "get_project",
            Route::ListClusters(_) => "list_clusters",
            Route::GetCluster(..) => "get_cluster",
            Route::ListJobs(..) => "list_export_jobs",
            Route::GetJob(..) => "get_export_job",
            Route::ListBuckets(_) => "list_export_buckets",
            Route::GetSchedule(..) => "get_backup_schedule",
            Route::GetSnapshot(..) => "get_snapshot",
            Route::ListAllClusters => "list_all_clusters",
            Route::Unknown => "other",
        }
    }

    /// The project the route is in, if any.
    fn group_id(&self) -> Option<&str> {
        match self {
            Route::GetGroup(g)
            | Route::ListClusters(g)
            | Route::GetCluster(g, _)
            | Route::ListJobs(g, _)
            | Route::GetJob(g, ..)
            | Route::GetSchedule(g, _)
            | Route::GetSnapshot(g, ..) => Some(g),
            _ => None,
        }
    }
}

fn parse_path(path: &str) -> (Api, Route) {
    if path == OAUTH_PATH {
        return (Api::OAuth, Route::OAuthToken);
    }
    let Some(rest) = path.strip_prefix("/api/atlas/") else {
        return (Api::Other, Route::Unknown);
    };
    let (version, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let version = match version {
        "v2" => Version::V2,
        "v1.0" => Version::V1,
        _ => return (Api::Atlas(None), Route::Unknown),
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let o = |s: &&str| (*s).to_owned();
    let route = match s.as_slice() {
        ["groups"] => Route::ListGroups,
        ["groups", g] => Route::GetGroup(o(g)),
        ["groups", g, "clusters"] => Route::ListClusters(o(g)),
        ["groups", g, "clusters", c] => Route::GetCluster(o(g), o(c)),
        ["groups", g, "backup", "exportBuckets"] => Route::ListBuckets(o(g)),
        ["groups", g, "clusters", c, "backup", "exports"] => Route::ListJobs(o(g), o(c)),
        ["groups", g, "clusters", c, "backup", "exports", j] => Route::GetJob(o(g), o(c), o(j)),
        ["groups", g, "clusters", c, "backup", "schedule"] => Route::GetSchedule(o(g), o(c)),
        [
            "groups",
            g,
            "clusters",
            c,
            "backup",
            "snapshots",
            "shardedCluster",
            i,
        ] => Route::GetSnapshot(o(g), o(c), o(i), true),
        ["groups", g, "clusters", c, "backup", "snapshots", i] => {
            Route::GetSnapshot(o(g), o(c), o(i), false)
        }
        ["clusters"] => Route::ListAllClusters,
        _ => Route::Unknown,
    };
    (Api::Atlas(Some(version)), route)
}

/// The one handler behind every path: counting, latency, auth, faults, then Atlas itself.
pub(super) async fn handle(State(fake): State<FakeAtlas>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let (api, route) = parse_path(&path);
    fake.count(route.endpoint(), route.group_id());
    let latency = *lock(&fake.inner.latency);
    if !latency.is_zero() {
        latency::wait(latency).await;
    }
    match api {
        Api::OAuth => oauth_token(&fake, req, &path, &query).await,
        Api::Atlas(version) => {
            if let Some(refused) = authenticate(&fake, &req) {
                return refused;
            }
            if let Some(storm) = storm(&fake, &route) {
                return storm;
            }
            if let Some(faulted) = apply_fault(&fake, &path, &query, reset_switch(&req)).await {
                return faulted;
            }
            match version {
                Some(version) => atlas(&fake, version, route, &req, &path, &query),
                None => resource_not_found(&path),
            }
        }
        Api::Other => match apply_fault(&fake, &path, &query, reset_switch(&req)).await {
            Some(faulted) => faulted,
            None => resource_not_found(&path),
        },
    }
}

impl FakeAtlas {
    fn count(&self, endpoint: &'static str, group_id: Option<&str>) {
        let mut counts = lock(&self.inner.counts);
        counts.total += 1;
        if let Some(group_id) = group_id {
            *counts
                .by_project
                .entry((group_id.to_owned(), endpoint.to_owned()))
                .or_default() += 1;
        }
        match counts.by_endpoint.get_mut(endpoint) {
            Some(n) => *n += 1,
            None => {
                counts.by_endpoint.insert(endpoint.to_owned(), 1);
            }
        }
        drop(counts);
        self.inner.counted.notify_waiters();
    }
}

/// Digest or bearer; anything else (nothing, Basic, garbage) gets the digest challenge.
/// `None` lets the request through; `Some` is the 401 to send.
fn authenticate(fake: &FakeAtlas, req: &Request) -> Option<Response> {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut auth = lock(&fake.inner.auth);
    let stale = match given {
        Some(h) if starts_with_ignore_case(h.trim_start(), "bearer ") => {
            let token = h.trim_start()[7..].trim();
            return (!auth.check_token(token)).then(bearer_refused);
        }
        Some(h) => {
            let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
            match auth.check_digest(h, req.method().as_str(), target) {
                DigestOutcome::Accepted => return None,
                DigestOutcome::Challenge { stale } => stale,
            }
        }
        None => false,
    };
    let nonce = auth.issue_nonce();
    drop(auth);
    lock(&fake.inner.counts).challenges += 1;
    fake.inner.counted.notify_waiters();
    let mut resp = response(
        StatusCode::UNAUTHORIZED,
        JSON,
        auth::UNAUTHORIZED_BODY.into(),
    );
    if let Ok(v) = HeaderValue::from_str(&auth::challenge(&nonce, stale)) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    Some(resp)
}

fn bearer_refused() -> Response {
    let mut resp = response(
        StatusCode::UNAUTHORIZED,
        JSON,
        auth::UNAUTHORIZED_BODY.into(),
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    resp
}

/// The switch that makes the request's connection end with a reset, when the stand-in serves it.
fn reset_switch(req: &Request) -> Option<ResetSwitch> {
    req.extensions()
        .get::<ConnectInfo<ResetSwitch>>()
        .map(|info| info.0.clone())
}

/// The 429 of a rate-limit storm over the route's endpoint and project, while it lasts.
fn storm(fake: &FakeAtlas, route: &Route) -> Option<Response> {
    let group_id = route.group_id()?;
    let now = lock(&fake.inner.auth).now();
    let mut storms = lock(&fake.inner.storms);
    storms.retain(|storm| storm.until > now);
    let storm = storms
        .iter()
        .find(|storm| storm.group_id == group_id && storm.endpoint == route.endpoint())?;
    let mut resp = atlas_error(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED_TOKEN_BUCKET",
        "You have exceeded the rate limit for this endpoint. Please wait and try again.".into(),
        Vec::new(),
    );
    let limit = lock(&fake.inner.rate_limit).0;
    let h = resp.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(storm.retry_after));
    if let Some(limit) = limit {
        h.insert("ratelimit-limit", HeaderValue::from(limit));
    }
    h.insert("ratelimit-remaining", HeaderValue::from(0u64));
    Some(resp)
}

/// Applies the first matching fault; `None` means answer normally (possibly after a delay).
async fn apply_fault(
    fake: &FakeAtlas,
    path: &str,
    query: &str,
    reset: Option<ResetSwitch>,
) -> Option<Response> {
    let action = faults::take_match(&mut lock(&fake.inner.faults), path, query)?;
    let (action, retry_after) = match action {
        FaultAction::WithRetryAfter(inner, secs) => (*inner, Some(secs)),
        action => (action, None),
    };
    let mut resp = match action {
        FaultAction::Status(status) => Some(status_fault(status, path)),
        FaultAction::AtlasError { status, error_code } => {
            Some(coded_fault(status, &error_code, path))
        }
        FaultAction::RateLimited(retry_after) => {
            let mut resp = atlas_error(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED_TOKEN_BUCKET",
                "You have exceeded the rate limit for this endpoint. Please wait and try again."
                    .into(),
                Vec::new(),
            );
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Some(resp)
        }
        FaultAction::Raw {
            status,
            content_type,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = status;
            if let Ok(ct) = HeaderValue::from_str(&content_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            Some(resp)
        }
        FaultAction::Body(bad, meter) => Some(hostile::respond(bad, &meter, reset)),
        FaultAction::Redirect { status, location } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
            let mut resp = response(status, "text/html", String::new());
            if let Ok(location) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, location);
            }
            Some(resp)
        }
        FaultAction::Hang => {
            let mut closing = fake.closing.subscribe();
            // Returns when the stand-in shuts down (or never, if its sender were dropped).
            if closing.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
            Some(atlas_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Service unavailable.".into(),
                Vec::new(),
            ))
        }
        FaultAction::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        FaultAction::Hold(gate) => {
            let mut closing = fake.closing.subscribe();
            tokio::select! {
                () = gate.pass() => None,
                // Released with a 503 when shutting down, like a hang.
                _ = closing.wait_for(|c| *c) => Some(atlas_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "Service unavailable.".into(),
                    Vec::new(),
                )),
            }
        }
        // Unwrapped above, and `Fault::with_retry_after` never nests them.
        FaultAction::WithRetryAfter(..) => None,
    };
    if let (Some(resp), Some(secs)) = (&mut resp, retry_after) {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// An Atlas error body with the `errorCode` Atlas uses for that status.
fn status_fault(status: u16, path: &str) -> Response {
    let Ok(code) = StatusCode::from_u16(status) else {
        return status_fault(500, path);
    };
    let (error_code, detail, params): (&str, String, Vec<String>) = match status {
        400 => (
            "INVALID_ATTRIBUTE",
            "Invalid attribute in the request.".into(),
            vec![],
        ),
        401 => return response(code, JSON, auth::UNAUTHORIZED_BODY.into()),
        403 => (
            "IP_ADDRESS_NOT_ON_ACCESS_LIST",
            "IP address 127.0.0.1 is not allowed to access this resource.".into(),
            vec!["127.0.0.1".into()],
        ),
        404 => return resource_not_found(path),
        405 => return method_not_allowed(path),
        406 => return invalid_version(),
        409 => (
            "CONFLICT",
            "The request conflicts with the current state.".into(),
            vec![],
        ),
        410 => (
            "VERSION_GONE",
            "The requested API version has been retired.".into(),
            vec![],
        ),
        429 => (
            "RATE_LIMITED",
            "Too many requests. Please wait and try again.".into(),
            vec![],
        ),
        503 => ("SERVICE_UNAVAILABLE", "Service unavailable.".into(), vec![]),
        504 => ("GATEWAY_TIMEOUT", "Gateway timeout.".into(), vec![]),
        s if s >= 400 => ("UNEXPECTED_ERROR", "Unexpected error.".into(), vec![]),
        _ => return response(code, JSON, "{}".into()),
    };
    atlas_error(code, error_code, detail, params)
}

/// An Atlas error with a chosen `errorCode`, its detail worded as Atlas words it.
fn coded_fault(status: u16, error_code: &str, path: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let detail = match error_code {
        "USER_UNAUTHORIZED" => "Current user is not authorized to perform this action.".to_owned(),
        "IP_ADDRESS_NOT_ON_ACCESS_LIST" => {
            "IP address 127.0.0.1 is not allowed to access this resource.".to_owned()
        }
        "GROUP_NOT_FOUND" => "No group with the requested id exists.".to_owned(),
        "CLUSTER_NOT_FOUND" => "No cluster with the requested name exists.".to_owned(),
        other => format!("{other} at {path}."),
    };
    atlas_error(code, error_code, detail, Vec::new())
}

/// Atlas's error envelope, keys in Atlas's (alphabetical) order, plus `X-Error-Code`.
fn atlas_error(
    status: StatusCode,
    code: &str,
    detail: String,
    parameters: Vec<String>,
) -> Response {
    let body = json!({
        "detail": detail,
        "error": status.as_u16(),
        "errorCode": code,
        "parameters": parameters,
        "reason": status.canonical_reason().unwrap_or("Error"),
    });
    let mut resp = response(status, JSON, body.to_string());
    if let Ok(v) = HeaderValue::from_str(code) {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-error-code"), v);
    }
    resp
}

fn response_owned(status: StatusCode, content_type: &str, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}

fn response(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn resource_not_found(path: &str) -> Response {
    atlas_error(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        format!("Cannot find resource {path}."),
        vec![path.to_owned()],
    )
}

fn method_not_allowed(path: &str) -> Response {
    atlas_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("Method not allowed for resource {path}."),
        vec![],
    )
}

fn invalid_version() -> Response {
    atlas_error(
        StatusCode::NOT_ACCEPTABLE,
        "INVALID_VERSION_DATE",
        "Invalid accept header or version date.".into(),
        vec![],
    )
}

/// A query parameter Atlas would refuse: its name, the value given, and why.
struct BadQuery(&'static str, String, &'static str);

fn bad_query(BadQuery(name, value, why): BadQuery) -> Response {
    atlas_error(
        StatusCode::BAD_REQUEST,
        "INVALID_QUERY_PARAMETER",
        format!("Invalid query parameter {name} with value {value}: {why}."),
        vec![name.to_owned(), value],
    )
}

fn missing(what: Missing, gid: &str, cluster: &str, job: &str) -> Response {
    match what {
        Missing::Group if !is_group_id(gid) => atlas_error(
            StatusCode::BAD_REQUEST,
            "INVALID_GROUP_ID",
            format!("An invalid group ID {gid} was specified."),
            vec![gid.to_owned()],
        ),
        Missing::Group => atlas_error(
            StatusCode::NOT_FOUND,
            "GROUP_NOT_FOUND",
            format!("No group with ID {gid} exists."),
            vec![gid.to_owned()],
        ),
        Missing::Cluster => atlas_error(
            StatusCode::NOT_FOUND,
            "CLUSTER_NOT_FOUND",
            format!("No cluster named {cluster} exists in group {gid}."),
            vec![cluster.to_owned(), gid.to_owned()],
        ),
        Missing::Job => atlas_error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            format!("No export job with ID {job} exists for cluster {cluster}."),
            vec![job.to_owned(), cluster.to_owned()],
        ),
        Missing::Snapshot => atlas_error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            format!("No snapshot with ID {job} exists for cluster {cluster}."),
            vec![job.to_owned(), cluster.to_owned()],
        ),
    }
}

fn is_group_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The Administration API proper, once authenticated.
fn atlas(
    fake: &FakeAtlas,
    version: Version,
    route: Route,
    req: &Request,
    path: &str,
    query: &str,
) -> Response {
    if route == Route::Unknown {
        return resource_not_found(path);
    }
    let rate_limit = *lock(&fake.inner.rate_limit);
    if req.method() != Method::GET {
        return method_not_allowed(path);
    }
    let date = match version {
        Version::V2 => match accepted_version(req.headers(), route.versions()) {
            Some(date) => Some(date),
            None => return invalid_version(),
        },
        Version::V1 if !accepts_json(req.headers()) => return invalid_version(),
        Version::V1 => None,
    };
    let shape = match date {
        None => Shape::V1,
        Some(date) if LEGACY_CLUSTER_VERSIONS.contains(&date) => Shape::Legacy,
        Some(_) => Shape::Current,
    };
    let content_type = match date {
        Some(date) => format!("application/vnd.atlas.{date}+json;charset=utf-8"),
        None => JSON.to_owned(),
    };
    let ok = |body: String| {
        let mut resp = response_owned(StatusCode::OK, &content_type, body);
        let h = resp.headers_mut();
        if let Some(limit) = rate_limit.0 {
            h.insert("ratelimit-limit", HeaderValue::from(limit));
        }
        if let Some(remaining) = rate_limit.1 {
            h.insert("ratelimit-remaining", HeaderValue::from(remaining));
        }
        resp
    };
    let paged = matches!(
        route,
        Route::ListGroups
            | Route::ListClusters(_)
            | Route::ListJobs(..)
            | Route::ListBuckets(_)
            | Route::ListAllClusters
    );
    let paging = if paged {
        match Paging::parse(query) {
            Ok(p) => p,
            Err(bad) => return bad_query(bad),
        }
    } else {
        Paging::default()
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    let links = |total: usize| paging.links(&host, path, total);
    let (start, len) = paging.window();
    let mut store = lock(&fake.inner.store);
    match route {
        Route::ListJobs(g, c) => match store.job_page(&g, &c, start, len) {
            Ok(page) => {
                let error = store.total_count_error;
                drop(store);
                let items = page.items.iter().map(|t| &**t);
                let estimate = page.total.saturating_add_signed(error as isize);
                ok(page_body(&links(page.total), items, paging.count(estimate)))
            }
            Err(m) => missing(m, &g, &c, ""),
        },
        Route::GetJob(g, c, j) => match store.job(&g, &c, &j) {
            Ok(text) => ok(text.to_string()),
            Err(m) => missing(m, &g, &c, &j),
        },
        Route::ListClusters(g) | Route::GetCluster(g, _)
            if shape != Shape::Current && store.has_asymmetric(&g) =>
        {
            asymmetric_unsupported()
        }
        Route::ListClusters(g) => match store.clusters_page(&g, start, len, shape) {
            Ok(page) => ok(value_page(&page, &links(page.total), &paging)),
            Err(m) => missing(m, &g, "", ""),
        },
        Route::GetCluster(g, c) => match store.cluster_item(&g, &c, shape) {
            Ok(v) => ok(v.to_string()),
            Err(m) => missing(m, &g, &c, ""),
        },
        Route::ListGroups => {
            let page = store.groups_page(start, len);
            ok(value_page(&page, &links(page.total), &paging))
        }
        Route::ListBuckets(g) => match store.buckets_page(&g, start, len) {
            Ok(page) => ok(value_page(&page, &links(page.total), &paging)),
            Err(m) => missing(m, &g, "", ""),
        },
        Route::GetGroup(g) => match store.group(&g) {
            Ok(v) => ok(v.to_string()),
            Err(m) => missing(m, &g, "", ""),
        },
        Route::GetSchedule(g, c) => match store.backup_schedule(&g, &c) {
            Ok(v) => ok(v.to_string()),
            Err(m) => missing(m, &g, &c, ""),
        },
        Route::GetSnapshot(g, c, i, sharded) => match store.snapshot(&g, &c, &i, sharded) {
            Ok(v) => ok(v.to_string()),
            Err(m) => missing(m, &g, &c, &i),
        },
        Route::ListAllClusters => {
            let page = store.all_clusters_page(start, len);
            ok(value_page(&page, &links(page.total), &paging))
        }
        Route::OAuthToken | Route::Unknown => resource_not_found(path),
    }
}

/// Whether a v1 request takes plain JSON (no `Accept` header takes anything).
fn accepts_json(headers: &HeaderMap) -> bool {
    let mut accepts = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| {
            m.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .peekable();
    accepts.peek().is_none()
        || accepts.any(|m| m == "application/json" || m == "application/*" || m == "*/*")
}

/// The version date the `Accept` header asks for among `listed` (the first one it names that
/// is listed), or `None`: Atlas answers 406.
fn accepted_version(headers: &HeaderMap, listed: &[&'static str]) -> Option<&'static str> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|m| {
            let media = m.split(';').next()?.trim().to_ascii_lowercase();
            let date = media
                .strip_prefix("application/vnd.atlas.")?
                .strip_suffix("+json")?
                .to_owned();
            listed.iter().find(|v| **v == date).copied()
        })
        .next()
}

/// What Atlas answers a cluster version before 2024-08-05 (v1.0 included) about a project
/// holding a cluster with asymmetric shards.
fn asymmetric_unsupported() -> Response {
    atlas_error(
        StatusCode::BAD_REQUEST,
        "ASYMMETRIC_SHARD_UNSUPPORTED",
        "Cannot use the 2023-01-01 or 2023-02-01 API to describe clusters with asymmetric shards; use version 2024-08-05 or later.".into(),
        vec![],
    )
}

struct Paging {
    page_num: u64,
    items_per_page: u64,
    include_count: bool,
}

impl Default for Paging {
    fn default() -> Self {
        Self {
            page_num: 1,
            items_per_page: DEFAULT_ITEMS_PER_PAGE,
            include_count: true,
        }
    }
}

impl Paging {
    fn parse(query: &str) -> Result<Self, BadQuery> {
        let mut p = Paging::default();
        for pair in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (percent_decode(k, true), percent_decode(v, true));
            match k.as_str() {
                "pageNum" => match v.parse::<u64>() {
                    Ok(n) if n >= 1 => p.page_num = n,
                    _ => return Err(BadQuery("pageNum", v, "must be a positive integer")),
                },
                "itemsPerPage" => match v.parse::<u64>() {
                    Ok(n) if (1..=MAX_ITEMS_PER_PAGE).contains(&n) => p.items_per_page = n,
                    _ => {
                        let why = "must be an integer between 1 and 500";
                        return Err(BadQuery("itemsPerPage", v, why));
                    }
                },
                "includeCount" => match v.to_ascii_lowercase().as_str() {
                    "true" => p.include_count = true,
                    "false" => p.include_count = false,
                    _ => return Err(BadQuery("includeCount", v, "must be true or false")),
                },
                _ => {}
            }
        }
        Ok(p)
    }

    /// The slice of the listing this page covers, as (start, length).
    fn window(&self) -> (usize, usize) {
        let start = (self.page_num - 1).saturating_mul(self.items_per_page);
        (
            usize::try_from(start).unwrap_or(usize::MAX),
            usize::try_from(self.items_per_page).unwrap_or(usize::MAX),
        )
    }

    fn count(&self, total: usize) -> Option<usize> {
        self.include_count.then_some(total)
    }

    /// `self`, plus `previous` and `next` where those pages exist, as Atlas links them.
    fn links(&self, host: &str, path: &str, total: usize) -> String {
        let href = |n: u64| {
            format!(
                "http://{host}{path}?includeCount={}&pageNum={n}&itemsPerPage={}",
                self.include_count, self.items_per_page
            )
        };
        let mut links = vec![json!({"href": href(self.page_num), "rel": "self"})];
        if self.page_num > 1 {
            links.push(json!({"href": href(self.page_num - 1), "rel": "previous"}));
        }
        let seen = self.page_num.saturating_mul(self.items_per_page);
        if seen < total as u64 {
            links.push(json!({"href": href(self.page_num + 1), "rel": "next"}));
        }
        Value::Array(links).to_string()
    }
}

/// The page envelope, written directly so stored job text is copied, not re-parsed.
fn page_body<'a>(
    links: &str,
    items: impl ExactSizeIterator<Item = &'a str> + Clone,
    total: Option<usize>,
) -> String {
    let len: usize = items.clone().map(str::len).sum::<usize>() + items.len() + links.len() + 64;
    let mut body = String::with_capacity(len);
    body.push_str("{\"links\":");
    body.push_str(links);
    body.push_str(",\"results\":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(item);
    }
    body.push(']');
    if let Some(total) = total {
        body.push_str(",\"totalCount\":");
        body.push_str(&total.to_string());
    }
    body.push('}');
    body
}

fn value_page(page: &Page<Value>, links: &str, paging: &Paging) -> String {
    let texts: Vec<String> = page.items.iter().map(Value::to_string).collect();
    page_body(
        links,
        texts.iter().map(String::as_str),
        paging.count(page.total),
    )
}

/// `POST /api/oauth/token`: client credentials in Basic auth, form body.
async fn oauth_token(fake: &FakeAtlas, req: Request, path: &str, query: &str) -> Response {
    if req.method() != Method::POST {
        return method_not_allowed(path);
    }
    let reset = reset_switch(&req);
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Unreadable body.",
        );
    };
    let form = String::from_utf8_lossy(&body);
    let grant_type = form
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| percent_decode(k, true) == "grant_type")
        .map(|(_, v)| percent_decode(v, true));
    if !lock(&fake.inner.auth).client_ok(&basic) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client credentials.",
        );
    }
    match grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only client_credentials is supported.",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing grant_type.",
            );
        }
    }
    if let Some(faulted) = apply_fault(fake, path, query, reset).await {
        return faulted;
    }
    let Some((token, expires_in)) = lock(&fake.inner.auth).issue_token(&basic) else {
        // The client was removed between the two checks: as good as unknown.
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client credentials.",
        );
    };
    let body = json!({
        "access_token": token,
        "expires_in": expires_in,
        "token_type": "Bearer",
    });
    let mut resp = response(StatusCode::OK, JSON, body.to_string());
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    response(status, JSON, body.to_string())
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// Decodes `%XX` (and `+` as a space in query strings); malformed escapes stay as they are.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex = |c: u8| char::from(c).to_digit(16);
        match b {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b),
            },
            b'+' if plus_is_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let (_, r) = parse_path("/api/atlas/v2/groups/g1/clusters/C%2D0/backup/exports/j");
        assert_eq!(r, Route::GetJob("g1".into(), "C-0".into(), "j".into()));
        let (_, r) = parse_path("/api/atlas/v1.0/groups/g1/clusters/");
        assert_eq!(r, Route::ListClusters("g1".into()));
        let (api, r) = parse_path("/api/atlas/v3/groups");
        assert!(matches!(api, Api::Atlas(None)));
        assert_eq!(r, Route::Unknown);
        let (api, _) = parse_path("/metrics");
        assert!(matches!(api, Api::Other));
        assert_eq!(
            parse_path("/api/atlas/v2/clusters").1.endpoint(),
            "list_all_clusters"
        );
        let base = "/api/atlas/v2/groups/g1/clusters/C0/backup";
        let (_, r) = parse_path(&format!("{base}/snapshots/shardedCluster/s1"));
        assert_eq!(
            r,
            Route::GetSnapshot("g1".into(), "C0".into(), "s1".into(), true)
        );
        let (_, r) = parse_path(&format!("{base}/snapshots/s1"));
        assert_eq!(
            r,
            Route::GetSnapshot("g1".into(), "C0".into(), "s1".into(), false)
        );
        let (_, r) = parse_path(&format!("{base}/schedule"));
        assert_eq!(r.endpoint(), "get_backup_schedule");
    }

    #[test]
    fn percent_decoding_never_panics() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a%2", false), "a%2");
        assert_eq!(percent_decode("%", false), "%");
        assert_eq!(percent_decode("%zz", false), "%zz");
        assert_eq!(percent_decode("%ff", false), "%ff");
        assert_eq!(percent_decode("%C3%A9", false), "\u{e9}");
    }
}
