//! The worker's HTTP: `/health` (ready or draining, load, running egress ids),
//! `/metrics` (Prometheus), and in standalone mode LiveKit's Egress API over Twirp
//! (`POST /twirp/livekit.Egress/<Method>`, JSON or protobuf bodies), authenticated by
//! LiveKit access tokens with the `roomRecord` grant signed with the worker's key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use livekit_protocol as lk;
use prost::Message;
use serde::de::DeserializeOwned;

use super::psrpc::wire::code;
use super::rpc::start_egress_request::Request;
use super::worker::{StartRequest, Worker};
use super::worker_error::WorkerError;
use crate::secret::Secret;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct Api {
    /// The worker.
    pub worker: Worker,
    /// Key the standalone API's tokens are issued by.
    pub api_key: String,
    /// Secret they are signed with (never logged).
    pub api_secret: Secret,
}

/// Which routes a listener serves.
#[derive(Clone, Copy, Debug, Default)]
pub struct Routes {
    /// `/health`.
    pub health: bool,
    /// `/metrics`.
    pub metrics: bool,
    /// `/twirp/livekit.Egress/*`.
    pub twirp: bool,
}

/// Binds `addr` and serves `routes` until the runtime ends.
pub async fn serve(addr: SocketAddr, routes: Routes, api: Api) -> std::io::Result<SocketAddr> {
    let mut app = Router::new();
    if routes.health {
        app = app.route("/health", get(health));
    }
    if routes.metrics {
        app = app.route("/metrics", get(metrics));
    }
    if routes.twirp {
        app = app.route("/twirp/livekit.Egress/{method}", post(twirp));
    }
    let app = app.with_state(api);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(accept(listener, app, Limits::default()));
    Ok(bound)
}

/// What one HTTP port lets a client take: a slow or idle client cannot hold the worker's
/// descriptors.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once; one more is closed as soon as it is accepted.
    pub connections: usize,
    /// How long a request's headers may take to arrive (the first request's, or the next
    /// one's on a kept-alive connection).
    pub headers: Duration,
    /// How long one connection may stay open, whatever it does.
    pub lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 256,
            headers: Duration::from_secs(10),
            lifetime: Duration::from_secs(120),
        }
    }
}

/// Serves `app` on `listener` within `limits`, until the process ends.
pub async fn accept(listener: tokio::net::TcpListener, app: Router, limits: Limits) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let open = Arc::new(tokio::sync::Semaphore::new(limits.connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: wait a moment rather than spin.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = limits.connections, "HTTP connection refused: too many open");
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.headers)
                .serve_connection(TokioIo::new(stream), service);
            if tokio::time::timeout(limits.lifetime, conn).await.is_err() {
                tracing::debug!(%peer, "HTTP connection closed at its lifetime bound");
            }
            drop(permit);
        });
    }
}

async fn health(State(api): State<Api>) -> Response {
    let s = api.worker.snapshot();
    let draining = s.draining;
    let body = serde_json::json!({
        "status": if draining { "draining" } else { "ready" },
        "node_id": api.worker.node_id(),
        "load": if s.capacity > 0.0 { s.committed / s.capacity } else { 0.0 },
        "committed_cores": s.committed,
        "capacity_cores": s.capacity,
        "cpu_load": s.cpu_load,
        "active": api.worker.active_ids(),
        "compositor": s.compositor,
        "encoder": s.encoder,
    });
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(api): State<Api>) -> Response {
    let text = api.worker.metrics().render(&api.worker.snapshot());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// A Twirp error: `{"code": "...", "msg": "..."}` with Twirp's HTTP status.
fn twirp_error(code: &str, msg: impl Into<String>) -> Response {
    let status = match code {
        "malformed" | "invalid_argument" | "out_of_range" => StatusCode::BAD_REQUEST,
        "unauthenticated" => StatusCode::UNAUTHORIZED,
        "permission_denied" => StatusCode::FORBIDDEN,
        "not_found" | "bad_route" => StatusCode::NOT_FOUND,
        "already_exists" | "aborted" => StatusCode::CONFLICT,
        "failed_precondition" => StatusCode::PRECONDITION_FAILED,
        "resource_exhausted" => StatusCode::TOO_MANY_REQUESTS,
        "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "deadline_exceeded" => StatusCode::REQUEST_TIMEOUT,
        "unimplemented" => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({ "code": code, "msg": msg.into() });
    (status, axum::Json(body)).into_response()
}

/// A worker's refusal or failure as Twirp's error.
fn from_worker(e: WorkerError) -> Response {
    let c = match &e {
        WorkerError::Draining | WorkerError::Unavailable(_) => "unavailable",
        WorkerError::Invalid(_) => "invalid_argument",
        WorkerError::Exists(_) => "already_exists",
        WorkerError::NoCapacity(_) => "resource_exhausted",
        WorkerError::NotFound(_) => "not_found",
        WorkerError::NotRunning(_) => "failed_precondition",
        WorkerError::Refused { code, .. } => twirp_code(code),
        WorkerError::Timeout => "deadline_exceeded",
        WorkerError::Internal(_) => "internal",
    };
    twirp_error(c, e.to_string())
}

/// psrpc codes to Twirp's (they mostly share names).
fn twirp_code(psrpc: &str) -> &'static str {
    match psrpc {
        code::MALFORMED_REQUEST => "malformed",
        code::INVALID_ARGUMENT => "invalid_argument",
        code::NOT_FOUND => "not_found",
        code::ALREADY_EXISTS => "already_exists",
        code::FAILED_PRECONDITION => "failed_precondition",
        code::RESOURCE_EXHAUSTED => "resource_exhausted",
        code::UNAVAILABLE => "unavailable",
        code::DEADLINE_EXCEEDED => "deadline_exceeded",
        _ => "internal",
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    video: Option<VideoGrant>,
}

#[derive(serde::Deserialize)]
struct VideoGrant {
    #[serde(default, rename = "roomRecord")]
    room_record: bool,
}

/// How far `exp` and `nbf` may be off, in seconds: LiveKit's `auth` verifier's leeway.
const TOKEN_LEEWAY_S: u64 = 60;

/// Checks the bearer token: signed with the secret, issued by the key, `roomRecord`.
fn authorize(headers: &HeaderMap, api: &Api) -> Result<(), String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or("no Authorization header")?;
    let token = value
        .strip_prefix("Bearer ")
        .ok_or("Authorization is not a Bearer token")?;
    verify_token(token, &api.api_key, api.api_secret.expose())
}

/// A LiveKit access token for the Egress API: HS256 signed with `secret`, issued by `key`,
/// with an `exp` (a token that never expires, or whose `exp` is not a number, is refused),
/// not before its `nbf`, granting `roomRecord`. Times are checked with LiveKit's leeway of a
/// minute (its `auth` verifier's), for clocks a little apart.
fn verify_token(token: &str, key: &str, secret: &str) -> Result<(), String> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_nbf = true;
    validation.validate_exp = true;
    validation.leeway = TOKEN_LEEWAY_S;
    validation.set_required_spec_claims(&["exp"]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| format!("invalid token: {e}"))?;
    if data.claims.iss != key {
        return Err("invalid token: unknown API key".into());
    }
    if !data.claims.video.is_some_and(|v| v.room_record) {
        return Err("permissions denied: the token lacks the roomRecord grant".into());
    }
    Ok(())
}

/// A request body: JSON (LiveKit's proto3 JSON, errors naming the field) or protobuf; the
/// error is the Twirp `malformed` message.
fn decode<T: Message + Default + DeserializeOwned>(json: bool, body: &[u8]) -> Result<T, String> {
    if json {
        let de = &mut serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                format!("the JSON body cannot be read: {inner}")
            } else {
                format!("{path}: {inner}")
            }
        })
    } else {
        T::decode(body).map_err(|e| format!("the protobuf body cannot be read: {e}"))
    }
}

fn encode<T: Message + serde::Serialize>(json: bool, msg: &T) -> Response {
    if json {
        match serde_json::to_vec(msg) {
            Ok(b) => ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
            Err(e) => twirp_error("internal", e.to_string()),
        }
    } else {
        (
            [(header::CONTENT_TYPE, "application/protobuf")],
            msg.encode_to_vec(),
        )
            .into_response()
    }
}

async fn twirp(
    State(api): State<Api>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(why) = authorize(&headers, &api) {
        tracing::warn!(method, reason = %why, "Egress API request refused");
        return twirp_error("unauthenticated", why);
    }
    let content = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let json = if content.starts_with("application/json") {
        true
    } else if content.starts_with("application/protobuf")
        || content.starts_with("application/x-protobuf")
    {
        false
    } else {
        return twirp_error(
            "malformed",
            format!(
                "unexpected Content-Type {content:?}: application/json or application/protobuf"
            ),
        );
    };
    let w = &api.worker;
    // The body as `$t`, or the `malformed` answer.
    macro_rules! body {
        ($t:ty) => {
            match decode::<$t>(json, &body) {
                Ok(r) => r,
                Err(msg) => return twirp_error("malformed", msg),
            }
        };
    }
    macro_rules! start {
        ($t:ty, $variant:ident) => {
            start(w, Request::$variant(body!($t)), json).await
        };
    }
    match method.as_str() {
        "StartRoomCompositeEgress" => start!(lk::RoomCompositeEgressRequest, RoomComposite),
        "StartWebEgress" => start!(lk::WebEgressRequest, Web),
        "StartParticipantEgress" => start!(lk::ParticipantEgressRequest, Participant),
        "StartTrackCompositeEgress" => start!(lk::TrackCompositeEgressRequest, TrackComposite),
        "StartTrackEgress" => start!(lk::TrackEgressRequest, Track),
        "StartEgress" => start!(lk::StartEgressRequest, Egress),
        "StopEgress" => reply(json, w.stop(&body!(lk::StopEgressRequest).egress_id)),
        "UpdateStream" => reply(json, w.update_stream(body!(lk::UpdateStreamRequest)).await),
        "UpdateLayout" => {
            let req = body!(lk::UpdateLayoutRequest);
            reply(json, w.update_layout(&req.egress_id, &req.layout).await)
        }
        "ListEgress" => {
            let req = body!(lk::ListEgressRequest);
            let items = w.list(&req.room_name, &req.egress_id, req.active);
            encode(
                json,
                &lk::ListEgressResponse {
                    items,
                    ..Default::default()
                },
            )
        }
        other => twirp_error("bad_route", format!("no method livekit.Egress/{other}")),
    }
}

/// An `EgressInfo` answer, or the error.
fn reply(json: bool, r: Result<lk::EgressInfo, WorkerError>) -> Response {
    match r {
        Ok(info) => encode(json, &info),
        Err(e) => from_worker(e),
    }
}

async fn start(w: &Worker, request: Request, json: bool) -> Response {
    let req = StartRequest {
        egress_id: crate::info::new_egress_id(),
        request,
        room_id: String::new(),
        ws_url: String::new(),
    };
    reply(json, w.start(req).await)
}

/// Groups the configured addresses (port 0: off): one listener per distinct address.
pub fn listeners(
    health: SocketAddr,
    metrics: SocketAddr,
    twirp: SocketAddr,
) -> BTreeMap<SocketAddr, Routes> {
    let mut m: BTreeMap<SocketAddr, Routes> = BTreeMap::new();
    if health.port() != 0 {
        m.entry(health).or_default().health = true;
    }
    if metrics.port() != 0 {
        m.entry(metrics).or_default().metrics = true;
    }
    if twirp.port() != 0 {
        m.entry(twirp).or_default().twirp = true;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde_json::json;

    const KEY: &str = "APIkey";
    const SECRET: &str = "a-secret-long-enough-for-hs256-tokens";

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn signed(alg: jsonwebtoken::Algorithm, secret: &str, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(alg),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn hs256(claims: serde_json::Value) -> String {
        signed(jsonwebtoken::Algorithm::HS256, SECRET, claims)
    }

    fn claims() -> serde_json::Value {
        json!({ "iss": KEY, "exp": now() + 600, "video": { "roomRecord": true } })
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut c = claims();
        c[key] = value;
        c
    }

    #[test]
    fn the_api_takes_only_unexpired_hs256_record_tokens_of_its_key() {
        assert_eq!(verify_token(&hs256(claims()), KEY, SECRET), Ok(()));
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let unsigned = format!(
            "{}.{}.",
            b64(json!({ "alg": "none", "typ": "JWT" })),
            b64(claims())
        );
        let mut no_exp = claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        // An RS256 header over a body signed with the secret (the key-confusion attack).
        let hs = hs256(claims());
        let rs256_header = format!(
            "{}.{}",
            b64(json!({ "alg": "RS256", "typ": "JWT" })),
            hs.split_once('.').unwrap().1
        );
        let refused = [
            (
                "no roomRecord",
                hs256(with("video", json!({ "roomJoin": true }))),
            ),
            ("expired", hs256(with("exp", json!(now() - 61)))),
            ("not yet valid", hs256(with("nbf", json!(now() + 600)))),
            ("another key", hs256(with("iss", json!("APIother")))),
            (
                "another secret",
                signed(
                    jsonwebtoken::Algorithm::HS256,
                    "another-secret-of-enough-length",
                    claims(),
                ),
            ),
            (
                "HS512",
                signed(jsonwebtoken::Algorithm::HS512, SECRET, claims()),
            ),
            ("alg none", unsigned),
            ("RS256 header", rs256_header),
            ("no exp", hs256(no_exp)),
            ("exp not a number", hs256(with("exp", json!("tomorrow")))),
        ];
        for (what, token) in refused {
            assert!(
                verify_token(&token, KEY, SECRET).is_err(),
                "{what} was accepted"
            );
        } // Clocks a little apart: LiveKit's minute of leeway either side.
        for (claim, at) in [("exp", now() - 5), ("nbf", now() + 5)] {
            let token = hs256(with(claim, json!(at)));
            assert_eq!(verify_token(&token, KEY, SECRET), Ok(()), "{claim} {at}");
        }
    }

    /// Whether the server closed `c` within `within` (EOF or reset), reading what it sends.
    fn closed_within(c: &mut std::net::TcpStream, within: Duration) -> bool {
        use std::io::Read;
        c.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 512];
        loop {
            match c.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    #[test]
    fn slow_and_surplus_clients_are_let_go() {
        use std::io::Write;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let limits = Limits {
            connections: 2,
            headers: Duration::from_millis(300),
            lifetime: Duration::from_secs(5),
        };
        let addr = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = Router::new().route("/health", get(|| async { "ok" }));
            tokio::spawn(accept(listener, app, limits));
            addr
        });
        let connect = || std::net::TcpStream::connect(addr).unwrap();
        // Two clients that never finish their headers hold both places...
        let mut slow: Vec<_> = (0..2).map(|_| connect()).collect();
        for c in &mut slow {
            c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        // ...so a third is closed at once,
        let mut third = connect();
        assert!(
            closed_within(&mut third, Duration::from_millis(200)),
            "a surplus connection was kept"
        );
        // and the slow ones are closed at the header bound.
        for c in &mut slow {
            assert!(
                closed_within(c, Duration::from_secs(2)),
                "a slow client was kept"
            );
        }
        // Then a client is served.
        let mut ok = connect();
        ok.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        use std::io::Read;
        ok.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = ok.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[test]
    fn shared_addresses_share_a_listener() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        let l = listeners(
            at("127.0.0.1:8080"),
            at("127.0.0.1:8080"),
            at("127.0.0.1:7981"),
        );
        assert_eq!(l.len(), 2);
        let health = &l[&at("127.0.0.1:8080")];
        assert!(health.health && health.metrics && !health.twirp);
        assert!(l[&at("127.0.0.1:7981")].twirp);
        let off = at("127.0.0.1:0");
        assert!(listeners(off, off, off).is_empty());
        // Metrics for the scraper on every interface, health and the API on loopback.
        let l = listeners(
            at("127.0.0.1:8080"),
            at("0.0.0.0:9090"),
            at("127.0.0.1:7981"),
        );
        assert_eq!(l.len(), 3);
        assert!(l[&at("0.0.0.0:9090")].metrics);
    }
}
