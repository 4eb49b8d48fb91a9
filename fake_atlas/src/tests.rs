//! The stand-in driven over real HTTP, with the digest client the exporter uses.

use std::future::Future;
use std::time::{Duration, Instant};

use diqwest::{DigestAuthSession, WithDigestAuth};
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::auth::{md5_hex, parse_digest};
use super::*;

const GROUP: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";
const PUBLIC: &str = "abcdefgh";
const PRIVATE: &str = "0123abcd-4567-89ef-0123-456789abcdef";
const V2: &str = "application/vnd.atlas.2023-01-01+json";
const V2_CT: &str = "application/vnd.atlas.2023-01-01+json;charset=utf-8";
const RECORDED_401_BODY: &str = "{\n  \"error\" : 401,\n  \"reason\" : \"Unauthorized\",\n  \"detail\" : \"You are not authorized for this resource.\",\n  \"errorCode\" : \"UNEXPECTED_ERROR\"\n}";

/// `future`, or a failed test if it takes longer than a busy machine could explain.
async fn within<T>(future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(30), future).await {
        Ok(value) => value,
        Err(_) => panic!("still waiting after 30 s"),
    }
}

fn client() -> Client {
    Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"))
}

async fn start(fake: &FakeAtlas) -> String {
    fake.start().await.unwrap_or_else(|e| panic!("start: {e}"))
}

/// A stand-in with the test key and one replica-set cluster, already serving.
async fn atlas_with_cluster() -> (FakeAtlas, String) {
    let fake = FakeAtlas::new().with_api_key(PUBLIC, PRIVATE);
    fake.add_cluster(GROUP, "Cluster0");
    let base = start(&fake).await;
    (fake, base)
}

/// The path of a cluster's export jobs, as a digest answer names it.
fn exports_path(cluster: &str) -> String {
    format!("/api/atlas/v2/groups/{GROUP}/clusters/{cluster}/backup/exports")
}

fn exports_url(base: &str, cluster: &str) -> String {
    format!("{base}{}", exports_path(cluster))
}

async fn digest_get(session: &DigestAuthSession, url: &str) -> Response {
    client()
        .get(url)
        .header(ACCEPT, V2)
        .send_digest_auth(session)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

async fn body_json(resp: Response) -> Value {
    let text = resp.text().await.unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn header(resp: &Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// An `Authorization` value computed by hand (RFC 2617, qop=auth).
fn digest_header(user: &str, pass: &str, uri: &str, nonce: &str, nc: u32) -> String {
    let ha1 = md5_hex(&format!("{user}:MMS Public API:{pass}"));
    let ha2 = md5_hex(&format!("GET:{uri}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:{nc:08x}:0a4f113b:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"MMS Public API\", nonce=\"{nonce}\", uri=\"{uri}\", qop=auth, nc={nc:08x}, cnonce=\"0a4f113b\", response=\"{response}\", algorithm=MD5"
    )
}

/// The nonce and `stale` flag of a 401's challenge.
fn challenge_of(resp: &Response) -> (String, String) {
    let p = parse_digest(&header(resp, "www-authenticate")).unwrap_or_default();
    (
        p.get("nonce").cloned().unwrap_or_default(),
        p.get("stale").cloned().unwrap_or_default(),
    )
}

async fn raw_get(url: &str, authorization: Option<&str>) -> Response {
    let mut req = client().get(url).header(ACCEPT, V2);
    if let Some(a) = authorization {
        req = req.header(reqwest::header::AUTHORIZATION, a);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|j| j["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn rels(page: &Value) -> Vec<(String, String)> {
    page["links"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|x| {
                    (
                        x["rel"].as_str().unwrap_or_default().to_owned(),
                        x["href"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- digest

#[tokio::test]
async fn digest_session_pays_one_challenge_then_one_request_per_call() {
    let (fake, base) = atlas_with_cluster().await;
    fake.put_job(GROUP, "Cluster0", job("j1").state("Successful").build());
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");

    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), V2_CT);
    assert_eq!(header(&resp, "ratelimit-limit"), "1200");
    assert_eq!(ids(&body_json(resp).await), ["j1"]);
    let c = fake.requests();
    assert_eq!((c.total, c.challenges), (2, 1));
    assert_eq!(c.endpoint("list_export_jobs"), 2);

    for _ in 0..5 {
        let resp = digest_get(&session, &url).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // Another endpoint on the same host reuses the nonce too.
    let resp = digest_get(&session, &format!("{url}/j1")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body_json(resp).await["state"], "Successful");
    let c = fake.requests();
    assert_eq!((c.total, c.challenges), (8, 1));
    assert_eq!(c.endpoint("list_export_jobs"), 7);
    assert_eq!(c.endpoint("get_export_job"), 1);

    fake.reset_counts();
    assert_eq!(fake.requests(), RequestCounts::default());
}

#[tokio::test]
async fn challenge_matches_the_recording() {
    let (fake, base) = atlas_with_cluster().await;
    let resp = raw_get(&exports_url(&base, "Cluster0"), None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert_eq!(header(&resp, "content-length"), "142");
    let www = header(&resp, "www-authenticate");
    let (nonce, stale) = challenge_of(&resp);
    assert_eq!(nonce.len(), 32);
    assert_eq!(stale, "false");
    assert_eq!(
        www,
        format!(
            "Digest realm=\"MMS Public API\", domain=\"\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\", stale=false"
        )
    );
    assert_eq!(resp.text().await.unwrap_or_default(), RECORDED_401_BODY);
    // Every challenge has a new nonce.
    let again = raw_get(&exports_url(&base, "Cluster0"), None).await;
    assert_ne!(challenge_of(&again).0, nonce);
    assert_eq!(fake.requests().challenges, 2);
}

#[tokio::test]
async fn a_nonce_may_be_reused_with_any_nc_but_not_for_another_uri() {
    let (fake, base) = atlas_with_cluster().await;
    let url = exports_url(&base, "Cluster0");
    let uri = exports_path("Cluster0");
    let (nonce, _) = challenge_of(&raw_get(&url, None).await);
    for nc in [3, 1, 1, 2] {
        let h = digest_header(PUBLIC, PRIVATE, &uri, &nonce, nc);
        assert_eq!(raw_get(&url, Some(&h)).await.status(), StatusCode::OK);
    }
    // The answer for one target does not open another.
    let h = digest_header(PUBLIC, PRIVATE, &uri, &nonce, 4);
    let other = format!("{base}/api/atlas/v2/groups/{GROUP}/clusters");
    assert_eq!(
        raw_get(&other, Some(&h)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A nonce the stand-in never issued: a plain new challenge.
    let h = digest_header(PUBLIC, PRIVATE, &uri, "bm90LWlzc3VlZA==", 1);
    let resp = raw_get(&url, Some(&h)).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge_of(&resp).1, "false");
    // The query string is part of the digest uri.
    let (nonce, _) = challenge_of(&raw_get(&url, None).await);
    let q = format!("{uri}?pageNum=1&itemsPerPage=500");
    let h = digest_header(PUBLIC, PRIVATE, &q, &nonce, 1);
    let resp = raw_get(&format!("{base}{q}"), Some(&h)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(fake.requests().challenges, 4);
}

#[tokio::test]
async fn expired_nonces_get_stale_true_and_diqwest_recovers() {
    let (fake, base) = atlas_with_cluster().await;
    let url = exports_url(&base, "Cluster0");
    let uri = exports_path("Cluster0");

    // By hand: the same correct answer becomes stale after expire_nonces().
    let (nonce, _) = challenge_of(&raw_get(&url, None).await);
    let h = digest_header(PUBLIC, PRIVATE, &uri, &nonce, 1);
    assert_eq!(raw_get(&url, Some(&h)).await.status(), StatusCode::OK);
    fake.expire_nonces();
    let resp = raw_get(&url, Some(&h)).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (fresh, stale) = challenge_of(&resp);
    assert_eq!(stale, "true");
    assert_ne!(fresh, nonce);
    // A wrong answer with an expired nonce is not "stale": the key itself is wrong.
    let bad = digest_header(PUBLIC, "wrong", &uri, &nonce, 2);
    assert_eq!(challenge_of(&raw_get(&url, Some(&bad)).await).1, "false");
    // The fresh nonce works.
    let h = digest_header(PUBLIC, PRIVATE, &uri, &fresh, 1);
    assert_eq!(raw_get(&url, Some(&h)).await.status(), StatusCode::OK);

    // diqwest: one call after expiry costs three requests (stale 401, bare request's 401,
    // answer), because it drops its cached nonce on any 401 instead of using the new one.
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
    fake.reset_counts();
    fake.expire_nonces();
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
    let c = fake.requests();
    assert_eq!((c.total, c.challenges), (3, 2));
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
    assert_eq!(fake.requests().total, 4);
}

#[tokio::test]
async fn nonces_go_stale_after_their_lifetime() {
    let fake = FakeAtlas::new()
        .with_api_key(PUBLIC, PRIVATE)
        .with_nonce_lifetime(Duration::from_secs(60));
    fake.add_cluster(GROUP, "Cluster0");
    let base = start(&fake).await;
    let url = exports_url(&base, "Cluster0");
    let uri = exports_path("Cluster0");
    let (nonce, _) = challenge_of(&raw_get(&url, None).await);
    let h = digest_header(PUBLIC, PRIVATE, &uri, &nonce, 1);
    assert_eq!(raw_get(&url, Some(&h)).await.status(), StatusCode::OK);
    fake.advance_clock(Duration::from_secs(59));
    assert_eq!(raw_get(&url, Some(&h)).await.status(), StatusCode::OK);
    fake.advance_clock(Duration::from_secs(2));
    let resp = raw_get(&url, Some(&h)).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge_of(&resp).1, "true");
}

#[tokio::test]
async fn wrong_key_gets_401() {
    let (fake, base) = atlas_with_cluster().await;
    let url = exports_url(&base, "Cluster0");
    let session = DigestAuthSession::new(PUBLIC, "not-the-key");
    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&resp, "www-authenticate").starts_with("Digest realm=\"MMS Public API\""));
    assert_eq!(body_json(resp).await["errorCode"], "UNEXPECTED_ERROR");
    assert_eq!(fake.requests().challenges, 2);
    // diqwest keeps the nonce of the failed attempt, so each later call costs three requests.
    fake.reset_counts();
    assert_eq!(
        digest_get(&session, &url).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fake.requests().total, 3);
    // An unknown user, Basic auth and a mangled header are refused the same way.
    let unknown = DigestAuthSession::new("someone-else", PRIVATE);
    assert_eq!(
        digest_get(&unknown, &url).await.status(),
        StatusCode::UNAUTHORIZED
    );
    for h in [
        "Basic YTpi",
        "Digest",
        "Digest username=",
        "Digest nonce=\"\", x",
    ] {
        let resp = raw_get(&url, Some(h)).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{h:?}");
    }
}

#[tokio::test]
async fn several_keys_and_concurrent_clients_sharing_a_nonce() {
    let fake = FakeAtlas::new()
        .with_api_key(PUBLIC, PRIVATE)
        .with_api_key("second", "other-secret");
    fake.add_cluster(GROUP, "Cluster0");
    let base = start(&fake).await;
    let url = exports_url(&base, "Cluster0");
    let second = DigestAuthSession::new("second", "other-secret");
    assert_eq!(digest_get(&second, &url).await.status(), StatusCode::OK);

    let session = std::sync::Arc::new(DigestAuthSession::new(PUBLIC, PRIVATE));
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
    fake.reset_counts();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (session, url) = (session.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            digest_get(&session, &url).await.status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.ok(), Some(StatusCode::OK));
    }
    let c = fake.requests();
    assert_eq!((c.total, c.challenges), (32, 0));
}

// ---------------------------------------------------------------- OAuth

async fn token_request(base: &str, id: &str, secret: &str, form: &str) -> Response {
    client()
        .post(format!("{base}/api/oauth/token"))
        .basic_auth(id, Some(secret))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("token: {e}"))
}

async fn bearer_get(url: &str, token: &str) -> Response {
    client()
        .get(url)
        .header(ACCEPT, V2)
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

#[tokio::test]
async fn oauth_tokens_are_issued_checked_and_revoked() {
    let fake = FakeAtlas::new().with_service_account("mdb_sa_id_1", "mdb_sa_sk_1");
    fake.add_cluster(GROUP, "Cluster0");
    let base = start(&fake).await;
    let url = exports_url(&base, "Cluster0");

    let resp = token_request(
        &base,
        "mdb_sa_id_1",
        "mdb_sa_sk_1",
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), "application/json");
    let body = body_json(resp).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap_or_default().to_owned();
    assert!(token.len() > 20);

    for _ in 0..3 {
        assert_eq!(bearer_get(&url, &token).await.status(), StatusCode::OK);
    }
    let resp = bearer_get(&url, "made-up").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_json(resp).await["error"], 401);

    fake.revoke_tokens();
    assert_eq!(
        bearer_get(&url, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let c = fake.requests();
    assert_eq!(c.endpoint("oauth_token"), 1);
    assert_eq!(c.endpoint("list_export_jobs"), 5);
    assert_eq!(c.challenges, 0);

    // Bad clients and bad requests.
    let resp = token_request(
        &base,
        "mdb_sa_id_1",
        "wrong",
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_json(resp).await["error"], "invalid_client");
    let resp = token_request(&base, "mdb_sa_id_1", "mdb_sa_sk_1", "grant_type=password").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(resp).await["error"], "unsupported_grant_type");
    let resp = token_request(&base, "mdb_sa_id_1", "mdb_sa_sk_1", "").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = client()
        .get(format!("{base}/api/oauth/token"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn oauth_tokens_expire() {
    let fake = FakeAtlas::new()
        .with_service_account("id", "secret")
        .with_token_lifetime(Duration::from_secs(60));
    fake.add_cluster(GROUP, "Cluster0");
    let base = start(&fake).await;
    let url = exports_url(&base, "Cluster0");
    let body =
        body_json(token_request(&base, "id", "secret", "grant_type=client_credentials").await)
            .await;
    assert_eq!(body["expires_in"], 60);
    let token = body["access_token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(bearer_get(&url, &token).await.status(), StatusCode::OK);
    fake.advance_clock(Duration::from_secs(59));
    assert_eq!(bearer_get(&url, &token).await.status(), StatusCode::OK);
    fake.advance_clock(Duration::from_secs(2));
    assert_eq!(
        bearer_get(&url, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

// ---------------------------------------------------------------- versions and bodies

#[tokio::test]
async fn v2_insists_on_the_versioned_accept_header() {
    let (_fake, base) = atlas_with_cluster().await;
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");
    for accept in [
        None,
        Some("application/json"),
        Some("application/vnd.atlas.2024-08-05+json"),
    ] {
        let mut req = client().get(&url);
        if let Some(a) = accept {
            req = req.header(ACCEPT, a);
        }
        let resp = req
            .send_digest_auth(&session)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE, "{accept:?}");
        assert_eq!(header(&resp, "x-error-code"), "INVALID_VERSION_DATE");
        let body = body_json(resp).await;
        assert_eq!(body["errorCode"], "INVALID_VERSION_DATE");
        assert_eq!(body["error"], 406);
    }
    let resp = client()
        .get(&url)
        .header(
            ACCEPT,
            "application/json, application/vnd.atlas.2023-01-01+json;q=0.9",
        )
        .send_digest_auth(&session)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), StatusCode::OK);
}

/// GETs `url` asking for `accept`, digest-authenticated.
async fn get_accepting(session: &DigestAuthSession, url: &str, accept: &str) -> Response {
    within(
        client()
            .get(url)
            .header(ACCEPT, accept)
            .send_digest_auth(session),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn version(date: &str) -> String {
    format!("application/vnd.atlas.{date}+json")
}

#[tokio::test]
async fn each_path_answers_the_versions_the_specification_lists() {
    let (fake, base) = atlas_with_cluster().await;
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let clusters = format!("{base}/api/atlas/v2/groups/{GROUP}/clusters");
    for date in ["2023-01-01", "2023-02-01", "2024-08-05"] {
        let resp = get_accepting(&session, &clusters, &version(date)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{date}");
        let content_type = format!("{};charset=utf-8", version(date));
        assert_eq!(header(&resp, "content-type"), content_type);
    }
    // Export jobs exist in 2023-01-01 only; no path knows a version the spec does not list.
    for (url, date) in [
        (exports_url(&base, "Cluster0"), "2024-08-05"),
        (clusters.clone(), "2025-01-01"),
        (format!("{base}/api/atlas/v2/groups"), "2024-08-05"),
    ] {
        let resp = get_accepting(&session, &url, &version(date)).await;
        assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE, "{url} {date}");
        assert_eq!(body_json(resp).await["errorCode"], "INVALID_VERSION_DATE");
    }
    // A project with asymmetric shards: only 2024-08-05 describes it.
    fake.add_cluster_of_kind(GROUP, "Asym", ClusterKind::AsymmetricSharded);
    for date in ["2023-01-01", "2023-02-01"] {
        let resp = get_accepting(&session, &clusters, &version(date)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{date}");
        let body = body_json(resp).await;
        assert_eq!(body["errorCode"], "ASYMMETRIC_SHARD_UNSUPPORTED");
    }
    let resp = get_accepting(&session, &clusters, &version("2024-08-05")).await;
    let body = body_json(resp).await;
    let names: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Asym", "Cluster0"]);
    let sizes: Vec<&Value> = body["results"][0]["replicationSpecs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["regionConfigs"][0]["electableSpecs"]["instanceSize"])
        .collect();
    assert_eq!(sizes, ["M30", "M40"]);
}

#[tokio::test]
async fn cluster_kinds_show_in_each_shape_and_multi_cloud_escapes_the_all_clusters_listing() {
    let (fake, base) = atlas_with_cluster().await;
    fake.add_cluster_of_kind(GROUP, "Flex", ClusterKind::Tenant);
    fake.add_cluster_of_kind(GROUP, "NoBackup", ClusterKind::BackupDisabled);
    fake.add_cluster_of_kind(GROUP, "Multi", ClusterKind::MultiCloud);
    fake.add_cluster_of_kind(GROUP, "Asleep", ClusterKind::Paused);
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url =
        |api: &str, name: &str| format!("{base}/api/atlas/{api}/groups/{GROUP}/clusters/{name}");
    let v2 = |name: &'static str| {
        let url = url("v2", name);
        let session = &session;
        async move { body_json(get_accepting(session, &url, &version("2024-08-05")).await).await }
    };
    let flex = v2("Flex").await;
    assert_eq!(
        flex["replicationSpecs"][0]["regionConfigs"][0]["providerName"],
        "TENANT"
    );
    assert_eq!(v2("NoBackup").await["backupEnabled"], false);
    assert_eq!(v2("Cluster0").await["backupEnabled"], true);
    assert_eq!(v2("Asleep").await["paused"], true);
    let multi = v2("Multi").await;
    let providers = &multi["replicationSpecs"][0]["regionConfigs"];
    assert_eq!(providers[0]["providerName"], "AWS");
    assert_eq!(providers[1]["providerName"], "GCP");
    // v1.0: Cloud Backup is providerBackupEnabled; backupEnabled is legacy backup.
    let v1 = |name: &'static str| {
        let url = url("v1.0", name);
        let session = &session;
        async move { body_json(get_accepting(session, &url, "application/json").await).await }
    };
    let flex = v1("Flex").await;
    assert_eq!(flex["providerSettings"]["providerName"], "TENANT");
    let no_backup = v1("NoBackup").await;
    assert_eq!(no_backup["providerBackupEnabled"], false);
    assert_eq!(v1("Cluster0").await["providerBackupEnabled"], true);
    assert_eq!(v1("Cluster0").await["backupEnabled"], false);

    let all = format!("{base}/api/atlas/v2/clusters");
    let body = body_json(get_accepting(&session, &all, V2).await).await;
    let names: Vec<&str> = body["results"][0]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Asleep", "Cluster0", "Flex", "NoBackup"]);
    let groups = format!("{base}/api/atlas/v2/groups");
    let body = body_json(get_accepting(&session, &groups, V2).await).await;
    assert_eq!(body["results"][0]["clusterCount"], 5);
}

#[tokio::test]
async fn total_count_can_be_off_by_a_fixed_amount() {
    let (fake, base) = atlas_with_cluster().await;
    fake.put_jobs(
        GROUP,
        "Cluster0",
        (0..4).map(|i| job(&format!("j{i}")).build()),
    );
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");
    for (error, total) in [(3, 7), (-2, 2), (0, 4)] {
        fake.set_total_count_error(error);
        let body = body_json(get_accepting(&session, &url, V2).await).await;
        assert_eq!(body["totalCount"], total, "{error}");
        assert_eq!(body["results"].as_array().unwrap().len(), 4);
    }
}

#[tokio::test]
async fn v1_paths_answer_plain_json() {
    let (fake, base) = atlas_with_cluster().await;
    fake.put_job(GROUP, "Cluster0", job("j1").build());
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let prefix = format!("{base}/api/atlas/v1.0/groups/{GROUP}/clusters");
    for url in [
        format!("{prefix}/Cluster0/backup/exports"),
        format!("{prefix}/Cluster0/backup/exports/j1"),
        prefix.clone(),
        format!("{base}/api/atlas/v1.0/groups"),
        format!("{base}/api/atlas/v1.0/clusters"),
    ] {
        let resp = client()
            .get(&url)
            .header(ACCEPT, "application/json")
            .send_digest_auth(&session)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        assert_eq!(header(&resp, "content-type"), "application/json", "{url}");
    }
    let c = fake.requests();
    assert_eq!(c.endpoint("list_export_jobs"), 2);
    assert_eq!(c.endpoint("get_export_job"), 1);
    assert_eq!(c.endpoint("list_clusters"), 1);
    assert_eq!(c.endpoint("list_projects"), 1);
    assert_eq!(c.endpoint("list_all_clusters"), 1);
}

#[tokio::test]
async fn not_found_bodies_are_atlas_bodies() {
    let (_fake, base) = atlas_with_cluster().await;
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);

    let resp = digest_get(&session, &exports_url(&base, "cluster-712")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert_eq!(header(&resp, "x-error-code"), "CLUSTER_NOT_FOUND");
    assert_eq!(
        resp.text().await.unwrap_or_default(),
        format!(
            "{{\"detail\":\"No cluster named cluster-712 exists in group {GROUP}.\",\"error\":404,\"errorCode\":\"CLUSTER_NOT_FOUND\",\"parameters\":[\"cluster-712\",\"{GROUP}\"],\"reason\":\"Not Found\"}}"
        )
    );

    let other = "6a799efbc0eb9e7a177d7e0e";
    let url = format!("{base}/api/atlas/v2/groups/{other}/clusters/Cluster0/backup/exports");
    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        body_json(resp).await,
        json!({"detail": format!("No group with ID {other} exists."), "error": 404,
               "errorCode": "GROUP_NOT_FOUND", "parameters": [other], "reason": "Not Found"})
    );

    let resp = digest_get(
        &session,
        &format!("{}/nope", exports_url(&base, "Cluster0")),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&resp, "x-error-code"), "RESOURCE_NOT_FOUND");

    let resp = digest_get(
        &session,
        &format!("{base}/api/atlas/v2/groups/{GROUP}/whatever"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(body_json(resp).await["errorCode"], "RESOURCE_NOT_FOUND");

    let resp = digest_get(
        &session,
        &format!("{base}/api/atlas/v2/groups/not-hex/clusters"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(resp).await["errorCode"], "INVALID_GROUP_ID");

    // Outside the API: no auth asked, just 404.
    let resp = raw_get(&format!("{base}/favicon.ico"), None).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn clusters_groups_and_all_clusters() {
    let (fake, base) = atlas_with_cluster().await;
    fake.add_sharded_cluster(GROUP, "Cluster1");
    fake.add_group("6a799efbc0eb9e7a177d7e0e");
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);

    let page = body_json(
        digest_get(
            &session,
            &format!("{base}/api/atlas/v2/groups/{GROUP}/clusters"),
        )
        .await,
    )
    .await;
    assert_eq!(page["totalCount"], 2);
    let c0 = &page["results"][0];
    assert_eq!(
        (
            c0["name"].as_str(),
            c0["clusterType"].as_str(),
            c0["groupId"].as_str()
        ),
        (Some("Cluster0"), Some("REPLICASET"), Some(GROUP))
    );
    assert_eq!(c0["backupEnabled"], true);
    assert_eq!(c0["paused"], false);
    assert_eq!(c0["stateName"], "IDLE");
    assert_eq!(page["results"][1]["clusterType"], "SHARDED");

    let page = body_json(digest_get(&session, &format!("{base}/api/atlas/v2/groups")).await).await;
    assert_eq!(page["totalCount"], 2);
    // Projects are listed by id.
    assert_eq!(page["results"][0]["id"], GROUP);
    assert_eq!(page["results"][0]["clusterCount"], 2);
    assert_eq!(page["results"][1]["clusterCount"], 0);

    let page =
        body_json(digest_get(&session, &format!("{base}/api/atlas/v2/clusters")).await).await;
    assert_eq!(page["totalCount"], 2);
    let item = &page["results"][0];
    assert_eq!(item["groupId"], GROUP);
    assert!(
        item["orgId"].is_string() && item["orgName"].is_string() && item["groupName"].is_string()
    );
    assert_eq!(item["clusters"][0]["name"], "Cluster0");
    assert_eq!(item["clusters"][1]["name"], "Cluster1");
    assert_eq!(page["results"][1]["clusters"], json!([]));

    fake.remove_cluster(GROUP, "Cluster1");
    let page = body_json(
        digest_get(
            &session,
            &format!("{base}/api/atlas/v2/groups/{GROUP}/clusters"),
        )
        .await,
    )
    .await;
    assert_eq!(page["totalCount"], 1);
}

// ---------------------------------------------------------------- paging and order

fn t0() -> OffsetDateTime {
    OffsetDateTime::parse("2026-01-01T00:00:00Z", &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[tokio::test]
async fn pages_1234_jobs_over_three_pages_of_500() {
    let (fake, base) = atlas_with_cluster().await;
    // Inserted in a scrambled order; listed newest first.
    fake.put_jobs(
        GROUP,
        "Cluster0",
        (0..1234).map(|i| {
            let k = (i * 7919) % 1234;
            job(&format!("job-{k:04}"))
                .state("Successful")
                .created(t0() + time::Duration::minutes(k))
                .build()
        }),
    );
    assert_eq!(fake.job_count(GROUP, "Cluster0"), 1234);
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");
    let mut all = Vec::new();
    for (n, expected_len) in [(1, 500), (2, 500), (3, 234)] {
        let resp = digest_get(&session, &format!("{url}?itemsPerPage=500&pageNum={n}")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let page = body_json(resp).await;
        assert_eq!(page["totalCount"], 1234);
        let got = ids(&page);
        assert_eq!(got.len(), expected_len);
        all.extend(got);
        let links = rels(&page);
        let host = base.trim_start_matches("http://");
        let href = |p: u32| {
            format!(
                "http://{host}/api/atlas/v2/groups/{GROUP}/clusters/Cluster0/backup/exports?includeCount=true&pageNum={p}&itemsPerPage=500"
            )
        };
        let mut expected = vec![("self".to_owned(), href(n))];
        if n > 1 {
            expected.push(("previous".into(), href(n - 1)));
        }
        if n < 3 {
            expected.push(("next".into(), href(n + 1)));
        }
        assert_eq!(links, expected);
    }
    let expected: Vec<String> = (0..1234).rev().map(|k| format!("job-{k:04}")).collect();
    assert_eq!(all, expected);

    // Past the end: empty. Without count: no totalCount. Defaults: 100 per page.
    let page =
        body_json(digest_get(&session, &format!("{url}?itemsPerPage=500&pageNum=4")).await).await;
    assert_eq!(ids(&page).len(), 0);
    assert_eq!(page["totalCount"], 1234);
    let page =
        body_json(digest_get(&session, &format!("{url}?includeCount=false&pageNum=2")).await).await;
    assert!(page.get("totalCount").is_none());
    assert_eq!(ids(&page).len(), 100);
    assert_eq!(ids(&page)[0], "job-1133");
    assert!(
        rels(&page)[0]
            .1
            .contains("includeCount=false&pageNum=2&itemsPerPage=100")
    );
}

#[tokio::test]
async fn bad_paging_parameters_get_400() {
    let (fake, base) = atlas_with_cluster().await;
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");
    for q in [
        "itemsPerPage=501",
        "itemsPerPage=0",
        "itemsPerPage=-1",
        "itemsPerPage=",
        "pageNum=0",
        "pageNum=abc",
        "pageNum=99999999999999999999999",
        "includeCount=maybe",
    ] {
        let resp = digest_get(&session, &format!("{url}?{q}")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{q}");
        let body = body_json(resp).await;
        assert_eq!(body["error"], 400, "{q}");
        assert_eq!(body["errorCode"], "INVALID_QUERY_PARAMETER", "{q}");
    }
    for q in [
        "itemsPerPage=500",
        "pageNum=18446744073709551615&itemsPerPage=500",
        "foo=bar&&=",
        "%zz=%",
    ] {
        let resp = digest_get(&session, &format!("{url}?{q}")).await;
        assert_eq!(resp.status(), StatusCode::OK, "{q}");
    }
    assert_eq!(fake.requests().challenges, 1);
}

#[tokio::test]
async fn order_modes() {
    let (fake, base) = atlas_with_cluster().await;
    for k in 0..50 {
        fake.put_job(
            GROUP,
            "Cluster0",
            job(&format!("j{k:02}"))
                .created(t0() + time::Duration::hours(k))
                .build(),
        );
    }
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = format!("{}?itemsPerPage=500", exports_url(&base, "Cluster0"));
    let newest: Vec<String> = (0..50).rev().map(|k| format!("j{k:02}")).collect();
    let oldest: Vec<String> = (0..50).map(|k| format!("j{k:02}")).collect();

    assert_eq!(
        ids(&body_json(digest_get(&session, &url).await).await),
        newest
    );
    fake.set_order(Order::OldestFirst);
    assert_eq!(
        ids(&body_json(digest_get(&session, &url).await).await),
        oldest
    );
    fake.set_order(Order::Unordered);
    let shuffled = ids(&body_json(digest_get(&session, &url).await).await);
    assert_ne!(shuffled, newest);
    assert_ne!(shuffled, oldest);
    let mut sorted = shuffled.clone();
    sorted.sort();
    assert_eq!(sorted, oldest);
    assert_eq!(
        ids(&body_json(digest_get(&session, &url).await).await),
        shuffled
    );

    // A job with a date that does not parse keeps its insertion slot, and nothing breaks.
    fake.set_order(Order::NewestFirst);
    fake.put_job(
        GROUP,
        "Cluster0",
        json!({"id": "odd", "createdAt": "not a date"}),
    );
    fake.put_job(GROUP, "Cluster0", json!(["not", "an", "object"]));
    fake.put_job(
        GROUP,
        "Cluster0",
        job("j99").created(t0() + time::Duration::hours(99)).build(),
    );
    let got = ids(&body_json(digest_get(&session, &url).await).await);
    assert_eq!(got.len(), 53);
    assert_eq!(got[0], "j99");
    assert_eq!(got[50], "odd");
    assert_eq!(got[51], "");
    assert_eq!(got[52], "j00");
}

#[tokio::test]
async fn put_job_replaces_and_remove_job_removes() {
    let (fake, base) = atlas_with_cluster().await;
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    fake.put_job(GROUP, "Cluster0", job("j1").build());
    fake.put_job(GROUP, "Cluster0", job("j1").state("InProgress").build());
    let url = exports_url(&base, "Cluster0");
    let page = body_json(digest_get(&session, &url).await).await;
    assert_eq!(page["totalCount"], 1);
    assert_eq!(page["results"][0]["state"], "InProgress");
    fake.remove_job(GROUP, "Cluster0", "j1");
    let resp = digest_get(&session, &format!("{url}/j1")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&resp, "x-error-code"), "RESOURCE_NOT_FOUND");
}

// ---------------------------------------------------------------- faults and latency

#[tokio::test]
async fn faults_apply_after_auth_in_order_and_run_out() {
    let (fake, base) = atlas_with_cluster().await;
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");
    fake.inject(Fault::status("/backup/exports", 503).times(2));
    fake.inject(Fault::status("/backup/exports", 500));

    // The handshake is untouched: the challenge, then the fault on the answered request.
    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&resp, "x-error-code"), "SERVICE_UNAVAILABLE");
    assert_eq!(fake.requests().challenges, 1);
    assert_eq!(
        digest_get(&session, &url).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body_json(resp).await["errorCode"], "UNEXPECTED_ERROR");
    fake.clear_faults();
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);

    fake.inject(
        Fault::status("/backup/exports", 500)
            .on_query("pageNum=2")
            .times(1),
    );
    assert_eq!(
        digest_get(&session, &format!("{url}?pageNum=1"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        digest_get(&session, &format!("{url}?pageNum=2"))
            .await
            .status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        digest_get(&session, &format!("{url}?pageNum=2"))
            .await
            .status(),
        StatusCode::OK
    );

    for (status, code) in [
        (403, "IP_ADDRESS_NOT_ON_ACCESS_LIST"),
        (404, "RESOURCE_NOT_FOUND"),
        (429, "RATE_LIMITED"),
        (410, "VERSION_GONE"),
    ] {
        fake.inject(Fault::status("/backup/exports", status).times(1));
        let resp = digest_get(&session, &url).await;
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(body_json(resp).await["errorCode"], code);
    }
    assert_eq!(fake.requests().challenges, 1);
}

/// A refusal of an authenticated request names its own errorCode: a missing role is a 401 that
/// carries no new digest challenge.
#[tokio::test]
async fn coded_refusals_follow_authentication() {
    let (fake, base) = atlas_with_cluster().await;
    let url = exports_url(&base, "Cluster0");
    for (status, code) in [(401, "USER_UNAUTHORIZED"), (404, "GROUP_NOT_FOUND")] {
        fake.inject(Fault::atlas_error("/backup/exports", status, code).times(1));
        // A new session: its first leg is challenged, its second is authenticated and refused.
        let resp = digest_get(&DigestAuthSession::new(PUBLIC, PRIVATE), &url).await;
        assert_eq!(resp.status().as_u16(), status);
        assert!(resp.headers().get("www-authenticate").is_none());
        assert_eq!(header(&resp, "x-error-code"), code);
        assert_eq!(body_json(resp).await["errorCode"], code);
    }
    let resp = digest_get(&DigestAuthSession::new(PUBLIC, PRIVATE), &url).await;
    assert_eq!(resp.status(), StatusCode::OK, "the refusals ran out");
}

#[tokio::test]
async fn rate_limits_raw_bodies_and_delays() {
    let (fake, base) = atlas_with_cluster().await;
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");

    fake.inject(Fault::rate_limited("/exports", Some(7)).times(1));
    fake.inject(Fault::rate_limited("/exports", None).times(1));
    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&resp, "retry-after"), "7");
    assert_eq!(
        body_json(resp).await["errorCode"],
        "RATE_LIMITED_TOKEN_BUCKET"
    );
    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_none());

    let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    fake.inject(Fault::raw("/exports", 502, "text/html", html).times(1));
    fake.inject(Fault::raw("/exports", 200, V2_CT, "{\"results\":[{\"id\":").times(1));
    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(header(&resp, "content-type"), "text/html");
    assert_eq!(resp.text().await.unwrap_or_default(), html);
    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.text().await.unwrap_or_default(),
        "{\"results\":[{\"id\":"
    );

    fake.inject(Fault::delay("/exports", Duration::from_millis(200)).times(1));
    let started = Instant::now();
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn a_hang_holds_one_request_and_no_other() {
    let (fake, base) = atlas_with_cluster().await;
    let session = std::sync::Arc::new(DigestAuthSession::new(PUBLIC, PRIVATE));
    let url = exports_url(&base, "Cluster0");
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
    fake.inject(Fault::hang("/backup/exports").times(1));

    let hung = {
        let (session, url) = (session.clone(), url.clone());
        tokio::spawn(async move {
            client()
                .get(&url)
                .header(ACCEPT, V2)
                .timeout(Duration::from_secs(2))
                .send_digest_auth(&*session)
                .await
        })
    };
    // Once the hung request has arrived (the first listing was the other one), other
    // requests are still answered at once.
    within(fake.wait_for_requests(|c| c.endpoint("list_export_jobs") == 2)).await;
    let clusters = format!("{base}/api/atlas/v2/groups/{GROUP}/clusters");
    assert_eq!(
        digest_get(&session, &clusters).await.status(),
        StatusCode::OK
    );
    assert!(!hung.is_finished());
    match hung.await {
        Ok(Err(diqwest::error::Error::Reqwest(e))) => assert!(e.is_timeout(), "{e:?}"),
        other => panic!("expected a client timeout, got {other:?}"),
    }
    // The fault was used up by the hung request.
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_held_request_waits_for_its_gate_and_others_do_not() {
    let (fake, base) = atlas_with_cluster().await;
    let session = std::sync::Arc::new(DigestAuthSession::new(PUBLIC, PRIVATE));
    let url = exports_url(&base, "Cluster0");
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
    let gate = Gate::new();
    fake.inject(Fault::hold("/backup/exports", &gate).times(1));
    let held = tokio::spawn({
        let (session, url) = (session.clone(), url.clone());
        async move { digest_get(&session, &url).await.status() }
    });
    within(gate.arrivals(1)).await;
    let clusters = format!("{base}/api/atlas/v2/groups/{GROUP}/clusters");
    assert_eq!(
        digest_get(&session, &clusters).await.status(),
        StatusCode::OK
    );
    assert!(!held.is_finished());
    gate.open();
    assert_eq!(within(held).await.ok(), Some(StatusCode::OK));
    assert_eq!(gate.arrived(), 1);
    // A held request passed authentication: the stand-in counted no challenge for it.
    assert_eq!(fake.requests().challenges, 1);
}

#[tokio::test]
async fn serve_shuts_down_and_releases_hung_requests() {
    let fake = FakeAtlas::new().with_api_key(PUBLIC, PRIVATE);
    fake.add_cluster(GROUP, "Cluster0");
    let bound = fake
        .bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = exports_url(&bound.base_url(), "Cluster0");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    fake.inject(Fault::hang("/exports"));
    let hung = tokio::spawn(async move {
        let session = DigestAuthSession::new(PUBLIC, PRIVATE);
        digest_get(&session, &url).await.status()
    });
    // Stop only once the answer to the challenge has arrived: a fixed sleep lost the race on a
    // busy machine, and the second leg of the digest exchange then found the server gone.
    within(fake.wait_for_requests(|c| c.endpoint("list_export_jobs") >= 2)).await;
    let _ = stop.send(());
    let released = tokio::time::timeout(Duration::from_secs(5), hung).await;
    assert_eq!(
        released.ok().and_then(Result::ok),
        Some(StatusCode::SERVICE_UNAVAILABLE)
    );
    let done = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "{done:?}");
}

#[tokio::test]
async fn stopping_one_server_leaves_the_others_serving() {
    let fake = FakeAtlas::new().with_api_key(PUBLIC, PRIVATE);
    fake.add_cluster(GROUP, "Cluster0");
    // One server launched by `start` on a clone, one bound and served until the test ends.
    let started = start(&fake.clone()).await;
    let kept = fake
        .bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let kept_url = kept.base_url();
    let (_keep, kept_stopped) = tokio::sync::oneshot::channel::<()>();
    let kept_server = tokio::spawn(kept.serve(async move {
        let _ = kept_stopped.await;
    }));
    // A request held on the kept server, which only its own shutdown may release.
    let gate = Gate::new();
    fake.inject(Fault::hold("/clusters/Cluster0/backup", &gate).times(1));
    let held = tokio::spawn({
        let url = exports_url(&kept_url, "Cluster0");
        async move {
            let session = DigestAuthSession::new(PUBLIC, PRIVATE);
            digest_get(&session, &url).await.status()
        }
    });
    within(gate.arrivals(1)).await;

    // The server that stops.
    let bound = fake
        .bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    let _ = stop.send(());
    let done = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "{done:?}");

    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    for base in [&started, &kept_url] {
        let url = exports_url(base, "Cluster0");
        assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
    }
    assert!(!held.is_finished(), "released by another server's shutdown");
    gate.open();
    assert_eq!(within(held).await.ok(), Some(StatusCode::OK));

    // `shutdown` stops what `start` launched, and leaves the bound server serving.
    fake.shutdown();
    let url = exports_url(&kept_url, "Cluster0");
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
    assert!(!kept_server.is_finished());
}

#[tokio::test]
async fn latency_applies_to_every_request_including_challenges() {
    let (fake, base) = atlas_with_cluster().await;
    fake.set_latency(Duration::from_millis(100));
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");
    let started = Instant::now();
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(200));
    fake.reset_counts();
    let started = Instant::now();
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(fake.requests().total, 1);
}

// ---------------------------------------------------------------- fixtures and demo

#[test]
fn job_builder_defaults_and_setters() {
    let j = job("a1").build();
    assert_eq!(
        j,
        json!({
            "createdAt": "2026-08-10T03:28:25Z",
            "customData": [],
            "exportBucketId": "6a794342c0eb9e7a17729455",
            "exportStatus": {"exportedCollections": 0, "totalCollections": 0},
            "id": "a1",
            "prefix": "exported_snapshots/a0123456789abcdef012345a/b0123456789abcdef012345b/cluster-989/2026-08-10T0328/1786332505",
            "snapshotId": "6a7943462c88faeba59ccf5f",
            "state": "Queued",
        })
    );
    let j = job("a2")
        .state("Failed")
        .created(t0())
        .finished(t0() + time::Duration::seconds(90))
        .components(2)
        .state_reason("EXPORT_FAILED", "boom")
        .custom_data("k", "v")
        .snapshot_id("s")
        .export_bucket_id("b")
        .prefix("p")
        .build();
    assert_eq!(j["createdAt"], "2026-01-01T00:00:00Z");
    assert_eq!(j["finishedAt"], "2026-01-01T00:01:30Z");
    assert_eq!(j["components"][1]["replicaSetName"], "atlas-xxxxxx-shard-1");
    assert_eq!(
        j["components"][0]["exportId"].as_str().map(str::len),
        Some(24)
    );
    assert!(j.get("exportStatus").is_none());
    assert_eq!(
        j["stateReason"],
        json!({"errorCode": "EXPORT_FAILED", "message": "boom"})
    );
    assert_eq!(j["customData"], json!([{"key": "k", "value": "v"}]));
    assert_eq!(
        (
            j["snapshotId"].as_str(),
            j["exportBucketId"].as_str(),
            j["prefix"].as_str()
        ),
        (Some("s"), Some("b"), Some("p"))
    );
    let j = job("a3")
        .without("state")
        .field("createdAt", json!(12))
        .build();
    assert!(j.get("state").is_none());
    assert_eq!(j["createdAt"], 12);
}

#[test]
fn seed_examples_are_verbatim() {
    let (rs, sh) = seed_examples();
    assert_eq!(
        rs.to_string(),
        "{\"createdAt\":\"2021-03-25T16:49:23Z\",\"exportBucketId\":\"{BUCKET-ID}\",\"finishedAt\":\"2021-03-25T17:48:20Z\",\"id\":\"605ccba3c1c7613f423e1585\",\"prefix\":\"/exported_snapshots/{ORG-NAME}/{PROJECT-NAME}/{CLUSTER-NAME}/2021-03-25T1649+0000/1616694179\",\"snapshotId\":\"605cbac9b498841007af7d9f\",\"state\":\"Successful\"}"
    );
    assert_eq!(sh["components"].as_array().map(Vec::len), Some(2));
    assert!(sh.get("finishedAt").is_none());
    assert_eq!(sh["id"], "606758310d97065aabbe5bfd");
}

/// Keeps a paused clock where it is while the test waits for sockets: tokio auto-advances a
/// paused clock to the next timer whenever the runtime is idle, which waiting for an HTTP
/// answer is, but not while a blocking task runs. Dropping it lets the clock auto-advance again.
struct StillClock {
    _release: std::sync::mpsc::Sender<()>,
}

impl StillClock {
    fn hold() -> StillClock {
        let (release, released) = std::sync::mpsc::channel::<()>();
        // Ends when the sender is dropped.
        tokio::task::spawn_blocking(move || released.recv());
        StillClock { _release: release }
    }
}

#[tokio::test(start_paused = true)]
async fn demo_data_and_its_moving_job() {
    // The moving job's timers run on this paused clock, which only `advance` moves.
    let _still = StillClock::hold();
    let fake = FakeAtlas::new();
    let now = t0() + time::Duration::nanoseconds(123);
    let timings = DemoTimings {
        queued_for: Duration::from_millis(1000),
        in_progress_until: Duration::from_millis(2000),
    };
    let handle = fake.seed_demo_with_timings(now, timings);
    let base = start(&fake).await;
    let session = DigestAuthSession::new(DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY);
    let list =
        |c: &str| format!("{base}/api/atlas/v2/groups/{DEMO_GROUP_ID}/clusters/{c}/backup/exports");

    let c0 = body_json(digest_get(&session, &list("Cluster0")).await).await;
    assert_eq!(
        ids(&c0),
        [
            DEMO_MOVING_JOB_ID,
            "605ccba3c1c7613f423e1585",
            "6a7945592c88faeba59d5e90"
        ]
    );
    let rs = &c0["results"][1];
    assert_eq!(rs["createdAt"], "2025-12-31T22:00:00Z");
    assert_eq!(rs["finishedAt"], "2025-12-31T22:58:57Z");
    assert_eq!(rs["exportBucketId"], "6a794342c0eb9e7a17729455");
    assert_eq!(c0["results"][2]["state"], "Failed");
    assert_eq!(
        c0["results"][2]["stateReason"]["errorCode"],
        "EXPORT_FAILED"
    );
    assert_eq!(c0["results"][0]["state"], "Queued");
    assert_eq!(c0["results"][0]["createdAt"], "2026-01-01T00:00:00Z");

    let c1 = body_json(digest_get(&session, &list("Cluster1")).await).await;
    assert_eq!(
        ids(&c1),
        [
            "6a79455a2c88faeba59d5f01",
            "606758310d97065aabbe5bfd",
            "6a79455a2c88faeba59d5f00"
        ]
    );
    assert_eq!(c1["results"][0]["state"], "InProgress");
    assert_eq!(c1["results"][1]["state"], "Successful");
    assert!(c1["results"][1].get("finishedAt").is_none());
    assert_eq!(
        c1["results"][1]["components"].as_array().map(Vec::len),
        Some(2)
    );

    let moving = format!("{}/{DEMO_MOVING_JOB_ID}", list("Cluster0"));
    // Poll like the exporter would: the states must come in order, finishedAt only at the end.
    // Every 50 ms of the paused clock, for at most 10 s of it.
    let mut seen = vec!["Queued".to_owned()];
    let mut polls = 0;
    let last = loop {
        let j = body_json(digest_get(&session, &moving).await).await;
        let state = j["state"].as_str().unwrap_or_default().to_owned();
        assert_eq!(j.get("finishedAt").is_some(), state == "Successful", "{j}");
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        polls += 1;
        if state == "Successful" || polls > 200 {
            break j;
        }
        tokio::time::advance(Duration::from_millis(50)).await;
    };
    assert_eq!(seen, ["Queued", "InProgress", "Successful"]);
    assert_eq!(last["finishedAt"], "2026-01-01T00:00:02Z");

    // Dropping the handle stops the updates.
    drop(handle);
    fake.put_job(DEMO_GROUP_ID, "Cluster0", job(DEMO_MOVING_JOB_ID).build());
    let handle = fake.seed_demo_with_timings(now, timings);
    drop(handle);
    // The moves are timers of the stand-in's runtime: let a task that survived the drop set
    // its first timer, then run the clock past it.
    tokio::task::yield_now().await;
    tokio::time::advance(timings.queued_for + Duration::from_millis(200)).await;
    assert_eq!(
        body_json(digest_get(&session, &moving).await).await["state"],
        "Queued"
    );

    // The demo's service account works too.
    let body = body_json(
        token_request(
            &base,
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            "grant_type=client_credentials",
        )
        .await,
    )
    .await;
    assert_eq!(body["token_type"], "Bearer");
    let page = body_json(digest_get(&session, &format!("{base}/api/atlas/v2/groups")).await).await;
    assert_eq!(page["results"][0]["name"], "Demo Project");
}

#[test]
fn demo_outside_a_runtime_does_not_panic() {
    let fake = FakeAtlas::new();
    let _handle = fake.seed_demo(OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000));
    assert_eq!(fake.job_count(DEMO_GROUP_ID, "Cluster0"), 3);
    assert_eq!(fake.job_count(DEMO_GROUP_ID, "Cluster1"), 3);
}

#[tokio::test]
async fn www_authenticate_header_constant_is_reqwest_visible() {
    // Guards against a header-name typo: reqwest must see the challenge where diqwest looks.
    let (_fake, base) = atlas_with_cluster().await;
    let resp = raw_get(&exports_url(&base, "Cluster0"), None).await;
    assert!(resp.headers().contains_key(WWW_AUTHENTICATE));
}

// ---- Hostile answers ----

/// The error of a body read and its causes, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn big_bodies_are_what_they_announce_and_metered() {
    use std::io::Read as _;
    let (fake, base) = atlas_with_cluster().await;
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");
    let meter = Meter::new();

    fake.inject(
        Fault::oversized("/exports", 3 << 20)
            .metered(&meter)
            .times(1),
    );
    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.content_length(), Some(3 << 20));
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), 3 << 20);
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page, json!({"results": []}));
    within(meter.ended(1)).await;
    assert_eq!((meter.sent(), meter.inflated()), (3 << 20, 3 << 20));

    // A client that does not inflate sees the bytes as sent.
    let meter = Meter::new();
    fake.inject(
        Fault::gzip_bomb("/exports", 8 << 20)
            .metered(&meter)
            .times(1),
    );
    let resp = Client::builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(&url)
        .header(ACCEPT, V2)
        .send_digest_auth(&session)
        .await
        .unwrap();
    assert_eq!(header(&resp, "content-encoding"), "gzip");
    let sent = resp.bytes().await.unwrap();
    assert!(sent.len() < 64 << 10, "{} bytes sent", sent.len());
    let mut inflated = Vec::new();
    // GzDecoder checks the trailer's CRC-32 and length.
    flate2::read::GzDecoder::new(&sent[..])
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated.len(), (8 << 20) + 14);
    let page: Value = serde_json::from_slice(&inflated).unwrap();
    assert_eq!(page, json!({"results": []}));
    within(meter.ended(1)).await;
    assert_eq!(meter.sent(), sent.len() as u64);
    assert_eq!(meter.inflated(), inflated.len() as u64);

    let meter = Meter::new();
    fake.inject(Fault::endless("/exports").metered(&meter).times(1));
    let mut resp = digest_get(&session, &url).await;
    assert_eq!(resp.content_length(), None);
    let mut read = 0;
    while read <= 4 << 20 {
        read += resp.chunk().await.unwrap().expect("an endless body").len();
    }
    drop(resp);
    // Hanging up ends the body; what it sent is what was read plus the kernel's buffers.
    within(meter.ended(1)).await;
    assert!(meter.sent() >= read as u64, "{} < {read}", meter.sent());
    assert_eq!(meter.started(), 1);
}

#[tokio::test]
async fn broken_bodies_break_as_they_say() {
    let (fake, base) = atlas_with_cluster().await;
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");

    let meter = Meter::new();
    fake.inject(Fault::reset_mid_body("/exports").metered(&meter).times(1));
    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let announced = resp.content_length().unwrap();
    let error = error_chain(&resp.bytes().await.unwrap_err());
    assert!(error.contains("reset by peer"), "{error}");
    within(meter.ended(1)).await;
    assert_eq!(meter.sent(), announced / 2);

    fake.inject(Fault::truncated_chunked("/exports").times(1));
    let resp = digest_get(&session, &url).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.content_length(), None);
    let error = error_chain(&resp.bytes().await.unwrap_err());
    assert!(!error.contains("reset"), "a close, not a reset: {error}");

    fake.inject(Fault::trickle("/exports", Duration::from_millis(5)).times(1));
    let started = Instant::now();
    let resp = digest_get(&session, &url).await;
    let body = resp.text().await.unwrap();
    assert_eq!(body, r#"{"links":[],"results":[],"totalCount":0}"#);
    assert!(started.elapsed() >= Duration::from_millis(5 * 39));

    fake.inject(Fault::invalid_utf8("/exports").times(1));
    let body = digest_get(&session, &url).await.bytes().await.unwrap();
    assert!(std::str::from_utf8(&body).is_err());
    assert_eq!(body.iter().filter(|b| **b == 0xFF).count(), 1);

    fake.inject(Fault::deeply_nested("/exports", 1_000).times(1));
    let body = digest_get(&session, &url).await.text().await.unwrap();
    assert!(body.contains(&format!("\"components\":{}]", "[".repeat(1_000))));
    assert!(body.ends_with(&format!("{}}}],\"totalCount\":1}}", "]".repeat(1_000))));
}

#[tokio::test]
async fn redirects_name_their_location() {
    let (fake, base) = atlas_with_cluster().await;
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");
    fake.inject(Fault::redirect("/exports", 307, "http://127.0.0.1:9/elsewhere").times(1));
    let resp = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&url)
        .header(ACCEPT, V2)
        .send_digest_auth(&session)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&resp, "location"), "http://127.0.0.1:9/elsewhere");
}

#[tokio::test]
async fn rate_limit_headers_take_chosen_values_and_can_be_left_out() {
    let (fake, base) = atlas_with_cluster().await;
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");
    fake.set_rate_limit_headers(Some(100), Some(3));
    let resp = digest_get(&session, &url).await;
    assert_eq!(header(&resp, "ratelimit-limit"), "100");
    assert_eq!(header(&resp, "ratelimit-remaining"), "3");
    fake.set_rate_limit_headers(None, Some(2));
    let resp = digest_get(&session, &url).await;
    assert!(resp.headers().get("ratelimit-limit").is_none());
    assert_eq!(header(&resp, "ratelimit-remaining"), "2");
}

#[tokio::test]
async fn a_storm_answers_429_for_its_endpoint_and_project_while_it_lasts() {
    let (fake, base) = atlas_with_cluster().await;
    let other_group = "6a799efbc0eb9e7a177d7e0e";
    fake.add_cluster(other_group, "Cluster0");
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = exports_url(&base, "Cluster0");
    fake.rate_limit_storm(GROUP, "list_export_jobs", 20, Duration::from_secs(30));
    for _ in 0..2 {
        let resp = digest_get(&session, &url).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header(&resp, "retry-after"), "20");
        assert_eq!(header(&resp, "ratelimit-remaining"), "0");
    }
    // The other project, and another endpoint of the same project, answer as usual.
    let other = url.replace(GROUP, other_group);
    assert_eq!(digest_get(&session, &other).await.status(), StatusCode::OK);
    let clusters = format!("{base}/api/atlas/v2/groups/{GROUP}/clusters");
    let resp = client()
        .get(&clusters)
        .header(ACCEPT, "application/vnd.atlas.2024-08-05+json")
        .send_digest_auth(&session)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let counts = fake.requests();
    // The session's first call pays the digest challenge; the others reuse its nonce.
    assert_eq!(counts.in_project(GROUP, "list_export_jobs"), 3);
    assert_eq!(counts.in_project(other_group, "list_export_jobs"), 1);
    assert_eq!(counts.in_project(GROUP, "list_clusters"), 1);
    fake.advance_clock(Duration::from_secs(30));
    assert_eq!(digest_get(&session, &url).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn export_buckets_are_listed_by_underscore_id_in_both_versions_and_counted() {
    let (fake, base) = atlas_with_cluster().await;
    fake.add_export_bucket(GROUP, "32b6e34b3d91647abb20e7b8", "acme-backups", "AWS");
    fake.add_export_bucket(GROUP, "32b6e34b3d91647abb20e7b9", "acme-gcs", "GCP");
    let session = DigestAuthSession::new(PUBLIC, PRIVATE);
    let url = format!("{base}/api/atlas/v2/groups/{GROUP}/backup/exportBuckets");
    for date in ["2023-01-01", "2024-05-30"] {
        let resp = get_accepting(&session, &url, &version(date)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{date}");
        let body = body_json(resp).await;
        assert_eq!(body["totalCount"], 2);
        assert_eq!(body["results"][0]["_id"], "32b6e34b3d91647abb20e7b8");
        assert_eq!(body["results"][0]["bucketName"], "acme-backups");
        assert_eq!(body["results"][1]["cloudProvider"], "GCP");
        assert!(body["results"][0].get("id").is_none());
    }
    let resp = get_accepting(&session, &url, &version("2024-08-05")).await;
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
    let unknown =
        format!("{base}/api/atlas/v2/groups/5f1a2b3c4d5e6f7a8b9c0d1f/backup/exportBuckets");
    let resp = get_accepting(&session, &unknown, &version("2024-05-30")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Four calls, the first of which also met the digest challenge.
    assert_eq!(fake.requests().endpoint("list_export_buckets"), 5);
    let project = format!("{base}/api/atlas/v2/groups/{GROUP}");
    get_accepting(&session, &project, &version("2023-01-01")).await;
    assert_eq!(fake.requests().endpoint("get_project"), 1);
}
