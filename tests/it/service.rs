//! The worker service (`tessera serve`) against real livekit-server and Redis on loopback,
//! driven by LiveKit's official Python client (livekit-api): the whole egress life through
//! livekit-server (webhooks, UpdateStream, UpdateLayout, auto egress), two workers sharing
//! the load and surviving each other, a drain, a session limit and the standalone API.
//! One test at a time (they share the machine's two cores).

use crate::common;

use std::time::{Duration, Instant};

use common::livekit::{API_KEY, API_SECRET, LiveKit, Publisher};
use common::services::Nginx;
use common::stores::Minio;
use common::worker::{
    Redis, Sentinel, Webhooks, Worker, create_room, egress_api, egress_api_as, http, wait_for,
};
use serde_json::{Value, json};

/// The CPU compositor, and admission against the whole machine: the test's own publishers
/// and livekit-server share its two cores (capacity is not what these tests measure).
const RELAXED: &str = "cpu_cost:\n  max_cpu_utilization: 1.0\ntessera:\n  compositor: cpu\n";

/// livekit-server on `redis`, sending webhooks to `hooks` when given.
fn livekit_on(redis: &Redis, hooks: Option<&Webhooks>) -> LiveKit {
    let mut extra = format!("redis:\n  address: {}\n", redis.address());
    if let Some(h) = hooks {
        extra.push_str(&format!(
            "webhook:\n  api_key: {API_KEY}\n  urls: [\"{}\"]\n",
            h.url()
        ));
    }
    LiveKit::start_with(&extra)
}

/// A worker's configuration on `redis` recording rooms of `lk`, plus `extra`.
fn worker_yaml(redis: &Redis, lk: &LiveKit, extra: &str) -> String {
    format!(
        "api_key: {API_KEY}\napi_secret: {API_SECRET}\nws_url: {}\nredis:\n  address: {}\n{extra}",
        lk.url(),
        redis.address()
    )
}

fn status_of(url: &str, id: &str) -> Option<String> {
    let list = egress_api(url, "ListEgress", &json!({ "egress_id": id })).ok()?;
    list["items"][0]["status"].as_str().map(str::to_owned)
}

fn wait_status(url: &str, id: &str, want: &[&str], timeout: Duration) -> Value {
    wait_for(timeout, &format!("{id} to be {want:?}"), || {
        let list = egress_api(url, "ListEgress", &json!({ "egress_id": id })).ok()?;
        let item = list["items"][0].clone();
        want.contains(&item["status"].as_str()?).then_some(item)
    })
}

/// Waits until livekit-server lists `id` FAILED as an egress of a lost worker.
fn wait_lost(api: &str, id: &str) {
    let item = wait_status(api, id, &["EGRESS_FAILED"], Duration::from_secs(30));
    let error = item["error"].as_str().unwrap_or_default();
    assert!(error.contains("stopped unexpectedly"), "{item}");
    assert_eq!(item["details"], "End reason: Process killed");
}

fn duration_s(path: &std::path::Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{} is not playable", path.display()))
}

/// Through livekit-server: start (file + RTMP), UpdateStream add/remove, UpdateLayout,
/// list, stop; every webhook; then an auto egress (a room created with an egress).
#[test]
fn livekit_server_runs_egresses_on_the_worker() {
    let _g = common::exclusive();
    let redis = Redis::start();
    let hooks = Webhooks::start();
    let lk = livekit_on(&redis, Some(&hooks));
    let nginx = Nginx::start();
    let worker = Worker::start(&worker_yaml(&redis, &lk, RELAXED));
    let _alice = Publisher::start(&lk, "svc", "alice", &[]);
    let api = lk.http_url();

    let request = json!({
        "room_name": "svc",
        "layout": "grid",
        "advanced": { "width": 640, "height": 360, "framerate": 15 },
        "file_outputs": [{ "filepath": "svc/{room_name}-{time}.mp4" }],
        "stream_outputs": [{ "protocol": "RTMP", "urls": [nginx.url("a")] }],
    });
    let (started, ms) = egress_api_as(
        &api,
        API_KEY,
        API_SECRET,
        "StartRoomCompositeEgress",
        &request,
    );
    let started = started.expect("StartRoomCompositeEgress");
    eprintln!("StartEgress through livekit-server: {ms:.0} ms");
    let id = started["egress_id"].as_str().unwrap().to_owned();
    assert_eq!(started["status"], "EGRESS_STARTING", "{started}");
    assert_eq!(started["room_name"], "svc");
    // A composite with a layout: WEB, as LiveKit reports its template-rendered composites.
    assert_eq!(
        started["source_type"], "EGRESS_SOURCE_TYPE_WEB",
        "{started}"
    );
    // The requested stream is listed from the start, its key redacted.
    let listed = egress_api(&api, "ListEgress", &json!({ "egress_id": id })).unwrap();
    let first = &listed["items"][0]["stream_results"][0];
    assert_eq!(first["status"], "ACTIVE", "{listed}");
    assert!(
        first["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("rtmp://") && !u.contains("/live/a")),
        "{listed}"
    );
    wait_status(&api, &id, &["EGRESS_ACTIVE"], Duration::from_secs(30));
    assert_eq!(worker.active(), vec![id.clone()]);

    // UpdateStream: add b, then remove a.
    let added = egress_api(
        &api,
        "UpdateStream",
        &json!({ "egress_id": id, "add_output_urls": [nginx.url("b")] }),
    )
    .expect("UpdateStream add");
    let urls: Vec<&str> = added["stream_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), 2, "{added}");
    std::thread::sleep(Duration::from_secs(2));
    let removed = egress_api(
        &api,
        "UpdateStream",
        &json!({ "egress_id": id, "remove_output_urls": [nginx.url("a")] }),
    )
    .expect("UpdateStream remove");
    // Stream keys are redacted in results: the first is a, the second b.
    let streams = removed["stream_results"].as_array().unwrap();
    assert_eq!(streams[0]["status"], "FINISHED", "{removed}");
    assert_eq!(streams[1]["status"], "ACTIVE", "{removed}");

    // UpdateLayout to a layout nobody has: livekit-server answers it alone (it only sets
    // the egress participant's metadata), so the worker refuses it on its side and keeps
    // the layout it draws.
    egress_api(
        &api,
        "UpdateLayout",
        &json!({ "egress_id": id, "layout": "no-such-layout" }),
    )
    .expect("UpdateLayout (livekit-server's own answer)");
    wait_for(Duration::from_secs(10), "the refusal", || {
        worker
            .log()
            .contains("layout in participant metadata refused")
            .then_some(())
    });
    // UpdateLayout: livekit-server sets the egress participant's metadata.
    egress_api(
        &api,
        "UpdateLayout",
        &json!({ "egress_id": id, "layout": "speaker" }),
    )
    .expect("UpdateLayout");
    wait_for(Duration::from_secs(10), "the layout switch", || {
        worker
            .log()
            .contains("layout switched (participant metadata) layout=speaker")
            .then_some(())
    });

    let active = egress_api(
        &api,
        "ListEgress",
        &json!({ "room_name": "svc", "active": true }),
    )
    .unwrap();
    assert_eq!(active["items"][0]["egress_id"], id.as_str(), "{active}");
    assert_eq!(active["items"][0]["status"], "EGRESS_ACTIVE");

    std::thread::sleep(Duration::from_secs(2));
    let stopping = egress_api(&api, "StopEgress", &json!({ "egress_id": id })).expect("StopEgress");
    assert_eq!(stopping["status"], "EGRESS_ENDING", "{stopping}");
    let done = completes(&api, &id, &worker);
    assert_eq!(done["details"], "End reason: StopEgress API", "{done}");
    let file = std::path::PathBuf::from(done["file_results"][0]["location"].as_str().unwrap());
    assert!(file.starts_with(worker.out_dir()), "{}", file.display());
    let d = duration_s(&file);
    assert!(d > 4.0, "recorded {d} s");
    assert!(
        duration_s(&nginx.recording("b")) > 1.0,
        "the added stream reached nginx"
    );

    // Webhooks: started (STARTING), updated (ACTIVE), ended (COMPLETE), in that order.
    let events = wait_for(Duration::from_secs(10), "egress_ended", || {
        let e = hooks.of(&id);
        e.iter().any(|(ev, _)| ev == "egress_ended").then_some(e)
    });
    let pos = |ev: &str, st: &str| events.iter().position(|(e, s)| e == ev && s == st);
    let (s, u, e) = (
        pos("egress_started", "EGRESS_STARTING"),
        pos("egress_updated", "EGRESS_ACTIVE"),
        pos("egress_ended", "EGRESS_COMPLETE"),
    );
    assert!(s.is_some() && u.is_some() && e.is_some(), "{events:?}");
    assert!(s < u && u < e, "{events:?}");
    let ended = hooks.last(&id, "egress_ended").unwrap();
    assert_eq!(ended["egressInfo"]["roomName"], "svc");
    assert!(
        ended["egressInfo"]["fileResults"][0]["location"]
            .as_str()
            .is_some_and(|l| l.ends_with(".mp4")),
        "{ended}"
    );
    let metrics = worker.metrics();
    assert!(
        metrics.contains(
            "tessera_egress_ended_total{type=\"room_composite\",status=\"EGRESS_COMPLETE\"} 1"
        ),
        "{metrics}"
    );
}

/// Auto egress: a room created with an egress starts it when the room starts, on the
/// worker, as LiveKit reports it.
#[test]
fn a_room_created_with_an_egress_starts_it_on_the_worker() {
    let _g = common::exclusive();
    let redis = Redis::start();
    let lk = livekit_on(&redis, None);
    let worker = Worker::start(&worker_yaml(&redis, &lk, RELAXED));
    let api = lk.http_url();
    create_room(
        &api,
        &json!({
            "name": "auto",
            "egress": { "room": {
                "room_name": "auto",
                "audio_only": true,
                "file_outputs": [{ "filepath": "auto/{room_name}.ogg", "file_type": "OGG" }],
            }},
        }),
    );
    let _bob = Publisher::start(&lk, "auto", "bob", &[]);
    let auto_id = wait_for(Duration::from_secs(30), "the auto egress", || {
        worker.active().into_iter().next()
    });
    let auto = wait_status(&api, &auto_id, &["EGRESS_ACTIVE"], Duration::from_secs(30));
    assert_eq!(auto["room_name"], "auto");
    // Audio-only with neither layout nor template: SDK, as LiveKit's egress reports it.
    assert_eq!(auto["source_type"], "EGRESS_SOURCE_TYPE_SDK", "{auto}");
    egress_api(&api, "StopEgress", &json!({ "egress_id": auto_id })).expect("StopEgress");
    wait_status(
        &api,
        &auto_id,
        &["EGRESS_COMPLETE"],
        Duration::from_secs(30),
    );
}

/// Two workers on one Redis: four concurrent requests spread two and two (each holds
/// two), a fifth is claimed by neither; SIGKILL one and livekit-server learns its
/// egresses FAILED while the other's go on.
#[test]
fn two_workers_share_the_load_and_outlive_each_other() {
    let _g = common::exclusive();
    let redis = Redis::start();
    let lk = livekit_on(&redis, None);
    // Audio-only composites: light on this machine's CPU; each worker holds two.
    let extra = "cpu_cost:\n  max_cpu_utilization: 1.0\n  audio_room_composite_cpu_cost: 0.4\n\
                 tessera:\n  compositor: cpu\n  cpu_cores: 1.0\n";
    let mut a = Worker::start(&worker_yaml(&redis, &lk, extra));
    let b = Worker::start(&worker_yaml(&redis, &lk, extra));
    let _alice = Publisher::start(&lk, "pair", "alice", &[]);
    let api = lk.http_url();
    // Each its own file: two started in the same millisecond on one worker would clash
    // even on `{utc}` (the second fails, naming the file, and frees its place).
    let request = |k: usize| {
        json!({
            "room_name": "pair",
            "audio_only": true,
            "file_outputs": [{ "filepath": format!("pair/{k}-{{utc}}.ogg"), "file_type": "OGG" }],
        })
    };
    let ids: Vec<String> = std::thread::scope(|s| {
        let starts: Vec<_> = (0..4)
            .map(|k| {
                let (api, body) = (&api, request(k));
                s.spawn(move || egress_api(api, "StartRoomCompositeEgress", &body))
            })
            .collect();
        starts
            .into_iter()
            .map(|h| {
                let r = h.join().unwrap().expect("a start failed");
                r["egress_id"].as_str().unwrap().to_owned()
            })
            .collect()
    });
    wait_for(
        Duration::from_secs(30),
        "two egresses on each worker",
        || (a.active().len() == 2 && b.active().len() == 2).then_some(()),
    );
    // Full: neither claims a fifth.
    let (fifth, _) = egress_api_as(
        &api,
        API_KEY,
        API_SECRET,
        "StartRoomCompositeEgress",
        &request(4),
    );
    assert!(
        fifth.is_err(),
        "a fifth egress was taken: {fifth:?}\nthe four: {:?}\nworker a:\n{}\nworker b:\n{}",
        ids.iter().map(|id| status_of(&api, id)).collect::<Vec<_>>(),
        a.log(),
        b.log()
    );
    assert!(
        a.metrics()
            .contains("tessera_admission_refusals_total{reason=\"capacity\"}")
    );
    // Each worker says why it declined, with the figures.
    for w in [&a, &b] {
        let log = w.log();
        let line = log
            .lines()
            .find(|l| l.contains("declined a StartEgress"))
            .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
        assert!(
            line.contains("not enough capacity: needs 0.40 cores")
                && line.contains("of 1.00 free")
                && line.contains("reason=\"capacity\""),
            "{line}"
        );
    }
    assert_eq!(a.active().len() + b.active().len(), 4);
    for id in &ids {
        wait_status(&api, id, &["EGRESS_ACTIVE"], Duration::from_secs(30));
    }

    let on_a = a.active();
    let on_b = b.active();
    // ListActiveEgress as livekit-server's psrpc client sends it: a worker answers with
    // its own egresses.
    let listed = list_active_egress(&redis);
    assert!(
        listed == on_a || listed == on_b,
        "{listed:?} vs {on_a:?} / {on_b:?}"
    );
    a.kill();
    for id in &on_a {
        wait_lost(&api, id);
    }
    std::thread::sleep(Duration::from_secs(2));
    for id in &on_b {
        assert_eq!(status_of(&api, id).as_deref(), Some("EGRESS_ACTIVE"));
    }
    assert_eq!(b.active(), on_b);
    for id in &on_b {
        egress_api(&api, "StopEgress", &json!({ "egress_id": id })).unwrap();
        wait_status(&api, id, &["EGRESS_COMPLETE"], Duration::from_secs(30));
    }
}

/// `EgressInternal.ListActiveEgress` over Redis (psrpc), the first answer.
fn list_active_egress(redis: &Redis) -> Vec<String> {
    use prost::Message;
    use tessera::service::{bus, psrpc, rpc};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = tessera::config::RedisConfig {
            address: redis.address(),
            ..Default::default()
        };
        let b = bus::Bus::connect(&config).await.unwrap();
        let client = psrpc::Client::new(b, "EgressInternal").await.unwrap();
        let bytes = client
            .call(
                rpc::LIST_ACTIVE_EGRESS,
                "",
                rpc::ListActiveEgressRequest {}.encode_to_vec(),
                Duration::from_secs(5),
            )
            .await
            .expect("ListActiveEgress");
        let mut ids = rpc::ListActiveEgressResponse::decode(bytes.as_slice())
            .unwrap()
            .egress_ids;
        ids.sort();
        ids
    })
}

/// SIGTERM with two egresses running: the worker claims nothing new, the two go on until
/// the drain bound, then finish with their files uploaded to S3 (MinIO), and it exits.
#[test]
fn sigterm_drains_with_every_file_uploaded() {
    let _g = common::exclusive();
    let redis = Redis::start();
    let lk = livekit_on(&redis, None);
    let minio = Minio::start();
    minio.create_bucket("drain");
    let extra = format!(
        "storage:\n  s3:\n    access_key: {}\n    secret: {}\n    region: {}\n    endpoint: {}\n    \
         bucket: drain\n    force_path_style: true\n\
         cpu_cost:\n  max_cpu_utilization: 1.0\n\
         tessera:\n  compositor: cpu\n  drain_timeout: 4s\n",
        minio.access_key(),
        minio.secret(),
        minio.region(),
        minio.endpoint()
    );
    let mut worker = Worker::start(&worker_yaml(&redis, &lk, &extra));
    let _alice = Publisher::start(&lk, "drain", "alice", &[]);
    let api = lk.http_url();
    let mut ids = Vec::new();
    for n in 0..2 {
        let r = egress_api(
            &api,
            "StartRoomCompositeEgress",
            &json!({
                "room_name": "drain",
                "advanced": { "width": 320, "height": 180, "framerate": 15 },
                "file_outputs": [{ "filepath": format!("drain/{n}.mp4") }],
            }),
        )
        .expect("StartRoomCompositeEgress");
        ids.push(r["egress_id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        wait_status(&api, id, &["EGRESS_ACTIVE"], Duration::from_secs(30));
    }
    let term_at = Instant::now();
    worker.term();
    wait_for(Duration::from_secs(5), "draining", || {
        (worker.health().0 == 503).then_some(())
    });
    let (_, h) = worker.health();
    assert_eq!(h["status"], "draining");
    // Nobody claims it now.
    let (refused, _) = egress_api_as(
        &api,
        API_KEY,
        API_SECRET,
        "StartRoomCompositeEgress",
        &json!({ "room_name": "drain", "audio_only": true, "file_outputs": [{ "filepath": "x.ogg", "file_type": "OGG" }] }),
    );
    assert!(
        refused.is_err(),
        "a draining worker took a new egress: {refused:?}"
    );
    for id in &ids {
        let item = wait_status(
            &api,
            id,
            &["EGRESS_COMPLETE", "EGRESS_FAILED"],
            Duration::from_secs(60),
        );
        assert_eq!(
            item["status"],
            "EGRESS_COMPLETE",
            "{item}\n{}",
            worker.log()
        );
        let location = item["file_results"][0]["location"].as_str().unwrap();
        assert!(location.starts_with(&minio.endpoint()), "{location}");
        let key = location
            .strip_prefix(&format!("{}/drain/", minio.endpoint()))
            .unwrap();
        let bytes = minio.get_object("drain", key).expect("the uploaded file");
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), &bytes).unwrap();
        assert!(duration_s(tmp.path()) > 3.0);
    }
    assert!(
        term_at.elapsed() >= Duration::from_secs(4),
        "the egresses ran until the drain bound"
    );
    assert_eq!(
        worker.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        worker.log()
    );
}

/// Standalone: the Python client pointed at tessera itself starts and stops an egress;
/// a 5 s session limit ends another LIMIT_REACHED with a playable file; a bad token is
/// 401; a malformed body is a Twirp error naming the problem.
#[test]
fn the_standalone_api_serves_the_egress_api() {
    let _g = common::exclusive();
    let lk = LiveKit::start();
    let worker = Worker::start(&format!(
        "api_key: {API_KEY}\napi_secret: {API_SECRET}\nws_url: {}\n\
         session_limits:\n  file_output_max_duration: 5s\n\
         cpu_cost:\n  max_cpu_utilization: 1.0\n\
         tessera:\n  compositor: cpu\n  api_port: AUTO\n",
        lk.url()
    ));
    let _alice = Publisher::start(&lk, "alone", "alice", &[]);
    let api = format!("http://127.0.0.1:{}", worker.api_port);
    let request = |name: &str| {
        json!({
            "room_name": "alone",
            "advanced": { "width": 320, "height": 180, "framerate": 15 },
            "file_outputs": [{ "filepath": format!("alone/{name}.mp4") }],
        })
    };
    let (limited, ms) = egress_api_as(
        &api,
        API_KEY,
        API_SECRET,
        "StartRoomCompositeEgress",
        &request("limited"),
    );
    let limited = limited.expect("StartRoomCompositeEgress");
    eprintln!("StartEgress through the standalone API: {ms:.0} ms");
    assert_eq!(limited["status"], "EGRESS_STARTING");
    let stopped = egress_api(&api, "StartRoomCompositeEgress", &request("stopped")).unwrap();
    let (lid, sid) = (
        limited["egress_id"].as_str().unwrap().to_owned(),
        stopped["egress_id"].as_str().unwrap().to_owned(),
    );
    wait_status(&api, &sid, &["EGRESS_ACTIVE"], Duration::from_secs(30));
    // UpdateLayout to an unknown layout: refused as a start refuses it.
    let refused = egress_api(
        &api,
        "UpdateLayout",
        &json!({ "egress_id": sid, "layout": "no-such-layout" }),
    )
    .unwrap_err();
    assert!(
        refused.contains("invalid_argument") && refused.contains("no-such-layout"),
        "{refused}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let ending = egress_api(&api, "StopEgress", &json!({ "egress_id": sid })).unwrap();
    assert_eq!(ending["status"], "EGRESS_ENDING");
    let done = wait_status(&api, &sid, &["EGRESS_COMPLETE"], Duration::from_secs(30));
    assert!(
        duration_s(std::path::Path::new(
            done["file_results"][0]["location"].as_str().unwrap()
        )) > 1.0
    );

    let item = wait_status(
        &api,
        &lid,
        &["EGRESS_LIMIT_REACHED", "EGRESS_COMPLETE", "EGRESS_FAILED"],
        Duration::from_secs(40),
    );
    assert_eq!(item["status"], "EGRESS_LIMIT_REACHED", "{item}");
    assert_eq!(item["error"], "Session limit reached");
    assert_eq!(item["error_code"], 413);
    assert_eq!(item["details"], "End reason: Session limit reached");
    let d = duration_s(std::path::Path::new(
        item["file_results"][0]["location"].as_str().unwrap(),
    ));
    assert!((4.5..6.5).contains(&d), "a 5 s limit recorded {d} s");

    // A token signed with another secret: 401 through the client.
    let (bad, _) = egress_api_as(&api, API_KEY, "not-the-secret", "ListEgress", &json!({}));
    let bad = bad.unwrap_err();
    assert!(
        bad.contains("unauthenticated") || bad.contains("401"),
        "{bad}"
    );
    // No token at all: 401 with a Twirp body.
    let (code, body) = http(
        "POST",
        worker.api_port,
        "/twirp/livekit.Egress/ListEgress",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(code, 401, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], "unauthenticated");
    // A malformed body: the field is named.
    let token = standalone_token();
    let auth = format!("Bearer {token}");
    let (code, v) = start_as_json(worker.api_port, &auth, br#"{"room_name": 5}"#);
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["code"], "malformed");
    assert!(v["msg"].as_str().unwrap().contains("room_name"), "{v}");
    // A request the planner refuses: invalid_argument naming the field.
    let (code, v) = start_as_json(
        worker.api_port,
        &auth,
        br#"{"room_name": "alone", "layout": "no-such-layout", "file_outputs": [{}]}"#,
    );
    assert_eq!(
        (code, v["code"].as_str()),
        (400, Some("invalid_argument")),
        "{v}"
    );
    assert!(v["msg"].as_str().unwrap().contains("layout"), "{v}");
}

/// A raw JSON StartRoomCompositeEgress to the standalone API: (status, Twirp body).
fn start_as_json(port: u16, auth: &str, body: &[u8]) -> (u16, Value) {
    let (code, body) = http(
        "POST",
        port,
        "/twirp/livekit.Egress/StartRoomCompositeEgress",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", auth),
        ],
        body,
    );
    (code, serde_json::from_slice(&body).unwrap())
}

/// A LiveKit access token with `roomRecord`, signed with the test key (HS256).
fn standalone_token() -> String {
    let out = std::process::Command::new(common::stores::tools_dir().join("lk-venv/bin/python"))
        .args([
            "-c",
            "import sys; from livekit import api; \
             print(api.AccessToken(sys.argv[1], sys.argv[2]).with_grants(api.VideoGrants(room_record=True)).to_jwt())",
            API_KEY,
            API_SECRET,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The only worker is SIGKILLed mid-egress; the worker started in its place (a new node)
/// finds the dead one's record and livekit-server learns the egress FAILED.
/// A worker killed mid-recording: another reports its egress lost, and a worker that
/// starts on the same output directory uploads what the crash left for its storage.
#[test]
fn a_restarted_worker_reports_what_its_crash_left() {
    let _g = common::exclusive();
    let redis = Redis::start();
    let lk = livekit_on(&redis, None);
    let minio = Minio::start();
    minio.create_bucket("crash");
    let shared = tempfile::tempdir().unwrap();
    let out = shared.path().join("out");
    let extra = format!(
        "storage:\n  s3:\n    access_key: {}\n    secret: {}\n    region: {}\n    endpoint: {}\n    \
         bucket: crash\n    force_path_style: true\n\
         cpu_cost:\n  max_cpu_utilization: 1.0\n\
         tessera:\n  compositor: cpu\n  out_dir: {}\n",
        minio.access_key(),
        minio.secret(),
        minio.region(),
        minio.endpoint(),
        out.display()
    );
    let extra = extra.as_str();
    let mut first = Worker::start(&worker_yaml(&redis, &lk, extra));
    let _alice = Publisher::start(&lk, "crash", "alice", &[]);
    let api = lk.http_url();
    let r = egress_api(
        &api,
        "StartRoomCompositeEgress",
        &json!({
            "room_name": "crash",
            "audio_only": true,
            "file_outputs": [{ "filepath": "crash/{time}.ogg", "file_type": "OGG" }],
        }),
    )
    .expect("StartRoomCompositeEgress");
    let id = r["egress_id"].as_str().unwrap().to_owned();
    wait_status(&api, &id, &["EGRESS_ACTIVE"], Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    first.kill();
    let staged = common::files_under(&out.join(format!(".staging/{id}")));
    assert!(
        staged
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "ogg")),
        "the killed worker's recording is staged: {staged:?}"
    );
    let second = Worker::start(&worker_yaml(&redis, &lk, extra));
    wait_lost(&api, &id);
    // The recording reaches the store under its own key; nothing is left behind.
    let key = wait_for(Duration::from_secs(60), "the resumed upload", || {
        minio
            .list("crash", "crash/")
            .into_iter()
            .find(|k| k.ends_with(".ogg"))
    });
    let ogg = minio.get_object("crash", &key).unwrap();
    assert!(
        ogg.starts_with(b"OggS") && ogg.len() > 1000,
        "{} bytes",
        ogg.len()
    );
    wait_for(
        Duration::from_secs(10),
        "the staging directory to go",
        || (!out.join(".staging").exists()).then_some(()),
    );
    assert!(
        second
            .log()
            .contains("resumed the uploads a crashed egress left"),
        "{}",
        second.log()
    );
}

/// What a LiveKit user notices, as LiveKit's egress does it, through livekit-server: a
/// stop before the start is ABORTED with 412 and the API's end reason; a track that never
/// comes is FAILED with 404, named once; a stream-only egress whose last stream is removed
/// ends COMPLETE, "All streams stopped"; and with `tessera.lenient` a request LiveKit
/// reads leniently (an unknown preset number, a path that climbs out, an unknown layout)
/// is recorded as LiveKit would record it.
#[test]
fn livekit_users_see_what_livekit_reports() {
    let _g = common::exclusive();
    let redis = Redis::start();
    let lk = livekit_on(&redis, None);
    let extra = "cpu_cost:\n  max_cpu_utilization: 1.0\n\
                 tessera:\n  compositor: cpu\n  await_timeout: 3s\n  lenient: true\n";
    let worker = Worker::start(&worker_yaml(&redis, &lk, extra));
    let _alice = Publisher::start(&lk, "drop", "alice", &[]);
    let api = lk.http_url();

    let awaited = egress_api(
        &api,
        "StartParticipantEgress",
        &json!({ "room_name": "drop", "identity": "nobody",
                 "file_outputs": [{ "filepath": "drop/p.mp4" }] }),
    )
    .expect("StartParticipantEgress");
    assert_eq!(
        awaited["source_type"], "EGRESS_SOURCE_TYPE_SDK",
        "{awaited}"
    );
    let pid = awaited["egress_id"].as_str().unwrap().to_owned();
    egress_api(&api, "StopEgress", &json!({ "egress_id": pid })).expect("StopEgress");
    ends_as(
        &api,
        &pid,
        (
            "EGRESS_ABORTED",
            "Stop called before pipeline could start",
            412,
        ),
        "End reason: StopEgress API",
    );

    let missing = egress_api(
        &api,
        "StartTrackEgress",
        &json!({ "room_name": "drop", "track_id": "TR_nothere",
                 "file": { "filepath": "drop/track" } }),
    )
    .expect("StartTrackEgress");
    let tid = missing["egress_id"].as_str().unwrap().to_owned();
    ends_as(
        &api,
        &tid,
        ("EGRESS_FAILED", "track TR_nothere not found", 404),
        "End reason: Failure",
    );

    let nginx = Nginx::start();
    let streaming = egress_api(
        &api,
        "StartRoomCompositeEgress",
        &json!({ "room_name": "drop",
                 "advanced": { "width": 320, "height": 180, "framerate": 15 },
                 "stream_outputs": [{ "protocol": "RTMP", "urls": [nginx.url("only")] }] }),
    )
    .expect("a stream-only egress");
    let sid = streaming["egress_id"].as_str().unwrap().to_owned();
    wait_status(&api, &sid, &["EGRESS_ACTIVE"], Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    egress_api(
        &api,
        "UpdateStream",
        &json!({ "egress_id": sid, "remove_output_urls": [nginx.url("only")] }),
    )
    .expect("UpdateStream remove");
    ends_as(
        &api,
        &sid,
        ("EGRESS_COMPLETE", "", 0),
        "End reason: All streams stopped",
    );

    let lenient = egress_api(
        &api,
        "StartRoomCompositeEgress",
        &json!({ "room_name": "drop", "layout": "no-such-layout", "preset": 99,
                 "file_outputs": [{ "filepath": "../../drop/lenient.mp4" }] }),
    )
    .expect("a request LiveKit takes");
    let id = lenient["egress_id"].as_str().unwrap().to_owned();
    wait_status(&api, &id, &["EGRESS_ACTIVE"], Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    egress_api(&api, "StopEgress", &json!({ "egress_id": id })).expect("StopEgress");
    let done = completes(&api, &id, &worker);
    let file = std::path::PathBuf::from(done["file_results"][0]["location"].as_str().unwrap());
    assert_eq!(file, worker.out_dir().join("drop/lenient.mp4"));
    assert_eq!(
        video_size(&file),
        (1280, 720),
        "H264_720P_30, as LiveKit records it"
    );
    let log = worker.log();
    for field in [
        "field=layout",
        "field=preset",
        "field=file_outputs[0].filepath",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("request read leniently") && l.contains(field)),
            "{field} not logged:\n{log}"
        );
    }
}

/// Waits for `id` to end; asserts it COMPLETE (the worker's log otherwise) and returns it.
fn completes(api: &str, id: &str, worker: &Worker) -> Value {
    let done = wait_status(
        api,
        id,
        &["EGRESS_COMPLETE", "EGRESS_FAILED"],
        Duration::from_secs(30),
    );
    assert_eq!(
        done["status"],
        "EGRESS_COMPLETE",
        "{done}\n{}",
        worker.log()
    );
    done
}

/// Waits for `id` to end; asserts its (status, error, error_code) and details.
fn ends_as(api: &str, id: &str, (status, error, code): (&str, &str, i64), details: &str) {
    let item = wait_status(
        api,
        id,
        &["EGRESS_ABORTED", "EGRESS_FAILED", "EGRESS_COMPLETE"],
        Duration::from_secs(30),
    );
    assert_eq!(item["status"], status, "{item}");
    assert_eq!(item["error"], error, "{item}");
    assert_eq!(item["error_code"], code, "{item}");
    assert_eq!(item["details"], details, "{item}");
}

/// With Redis and the standalone API but livekit-server down, a start on the worker's own
/// API says that livekit-server is unreachable (and nothing runs).
#[test]
fn a_start_without_livekit_server_says_it_is_unreachable() {
    let _g = common::exclusive();
    let redis = Redis::start();
    let worker = Worker::start(&format!(
        "api_key: {API_KEY}\napi_secret: {API_SECRET}\nws_url: ws://127.0.0.1:9\n\
         redis:\n  address: {}\nio_create_timeout: 2s\n\
         tessera:\n  compositor: cpu\n  api_port: AUTO\n",
        redis.address()
    ));
    let api = format!("http://127.0.0.1:{}", worker.api_port);
    let e = egress_api(
        &api,
        "StartRoomCompositeEgress",
        &json!({ "room_name": "r", "audio_only": true,
                 "file_outputs": [{ "filepath": "r.ogg", "file_type": "OGG" }] }),
    )
    .unwrap_err();
    assert!(
        e.contains("unavailable") && e.contains("livekit-server unreachable"),
        "{e}"
    );
    assert!(worker.active().is_empty());
}

/// A video file's first stream's width and height.
fn video_size(path: &std::path::Path) -> (u32, u32) {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (w, h) = text.trim().split_once(',').expect("a video stream");
    (w.parse().unwrap(), h.parse().unwrap())
}

/// Redis paused for longer than a heartbeat, then restarted empty: no worker takes a live
/// one for dead, every worker registers again (with its running egress), and a worker
/// killed afterwards is still noticed by the other.
#[test]
fn workers_outlive_a_paused_and_a_restarted_redis() {
    let _g = common::exclusive();
    let mut redis = Redis::start();
    let lk = livekit_on(&redis, None);
    let mut workers = [
        Worker::start(&worker_yaml(&redis, &lk, RELAXED)),
        Worker::start(&worker_yaml(&redis, &lk, RELAXED)),
    ];
    let _alice = Publisher::start(&lk, "flaky", "alice", &[]);
    let api = lk.http_url();
    let r = egress_api(
        &api,
        "StartRoomCompositeEgress",
        &json!({ "room_name": "flaky", "audio_only": true,
                 "file_outputs": [{ "filepath": "flaky/{time}.ogg", "file_type": "OGG" }] }),
    )
    .expect("StartRoomCompositeEgress");
    let id = r["egress_id"].as_str().unwrap().to_owned();
    wait_status(&api, &id, &["EGRESS_ACTIVE"], Duration::from_secs(30));
    let holder = usize::from(!workers[0].active().contains(&id));
    let other = 1 - holder;
    assert_eq!(workers[holder].active(), std::slice::from_ref(&id));

    // Paused past the heartbeat's 6 s: when it answers again, nobody is taken for dead.
    redis.pause();
    std::thread::sleep(Duration::from_secs(10));
    redis.resume();
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(status_of(&api, &id).as_deref(), Some("EGRESS_ACTIVE"));
    for w in &workers {
        assert!(
            !w.log().contains("a worker stopped without a goodbye"),
            "a live worker was taken for dead:\n{}",
            w.log()
        );
    }

    // Restarted without its data: both workers register again, the egress with its holder.
    redis.restart();
    wait_for(
        Duration::from_secs(20),
        "both workers registered again",
        || {
            let nodes = redis.cli(&["SMEMBERS", "tessera:nodes"]);
            let records = redis.cli(&["KEYS", "tessera:node:*:egresses"]);
            (nodes.lines().count() == 2 && records.lines().count() == 1).then_some(())
        },
    );

    // And a crash is noticed again: the holder dies, the other fails its egress.
    workers[holder].kill();
    wait_for(Duration::from_secs(40), "the lost egress failed", || {
        workers[other]
            .log()
            .contains("egresses of a lost worker reported FAILED failed=1")
            .then_some(())
    });
}

/// livekit-server gone while an egress ends: the end is reported once it is back, not
/// dropped, and what was recorded is kept.
#[test]
fn an_end_while_livekit_server_is_down_reaches_it_when_it_returns() {
    let _g = common::exclusive();
    let redis = Redis::start();
    let mut lk = livekit_on(&redis, None);
    let extra = format!("{RELAXED}session_limits:\n  file_output_max_duration: 6s\n");
    let worker = Worker::start(&worker_yaml(&redis, &lk, &extra));
    let _alice = Publisher::start(&lk, "outage", "alice", &[]);
    let api = lk.http_url();
    let r = egress_api(
        &api,
        "StartRoomCompositeEgress",
        &json!({
            "room_name": "outage",
            "audio_only": true,
            "file_outputs": [{ "filepath": "outage/{time}.ogg", "file_type": "OGG" }],
        }),
    )
    .expect("StartRoomCompositeEgress");
    let id = r["egress_id"].as_str().unwrap().to_owned();
    wait_status(&api, &id, &["EGRESS_ACTIVE"], Duration::from_secs(30));
    lk.kill();
    // The egress ends (its limit, or its room gone) while nobody can hear it.
    wait_for(Duration::from_secs(60), "the egress to end", || {
        worker.active().is_empty().then_some(())
    });
    std::thread::sleep(Duration::from_secs(5));
    lk.restart();
    let item = wait_status(
        &api,
        &id,
        &["EGRESS_COMPLETE", "EGRESS_LIMIT_REACHED", "EGRESS_FAILED"],
        Duration::from_secs(120),
    );
    assert!(
        item["ended_at"].as_str().is_some_and(|t| t != "0"),
        "{item}"
    );
    let log = worker.log();
    assert!(log.contains("UpdateEgress failed"), "{log}");
    let files = common::files_under(&worker.out_dir());
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "ogg")),
        "{files:?}"
    );
}

/// Redis behind Sentinel fails over (the replica becomes the master): livekit-server and
/// the worker both follow, so an egress started after the failover is claimed, runs and
/// stops, and so does the one that was running across it.
#[test]
fn a_sentinel_failover_is_followed() {
    let _g = common::exclusive();
    let a = Redis::start();
    let b = Redis::start_args(&["--replicaof", "127.0.0.1", &a.port.to_string()]);
    let sentinel = Sentinel::start("rec", &a);
    wait_for(
        Duration::from_secs(30),
        "the sentinel to see the replica",
        || {
            sentinel
                .cli(&["SENTINEL", "replicas", "rec"])
                .contains(&b.port.to_string())
                .then_some(())
        },
    );
    let redis = format!(
        "redis:\n  sentinel_master_name: rec\n  sentinel_addresses: [\"{}\"]\n",
        sentinel.address()
    );
    let lk = LiveKit::start_with(&redis);
    let worker = Worker::start(&format!(
        "api_key: {API_KEY}\napi_secret: {API_SECRET}\nws_url: {}\n{redis}{RELAXED}",
        lk.url()
    ));
    let _alice = Publisher::start(&lk, "sentinel", "alice", &[]);
    let api = lk.http_url();
    // `during_failover`: a refusal is one more try, not a failure (until the worker has
    // subscribed on the new master, livekit-server's request has no one to answer it).
    let start = |during_failover: bool| {
        let r = match egress_api(
            &api,
            "StartRoomCompositeEgress",
            &json!({
                "room_name": "sentinel",
                "audio_only": true,
                "file_outputs": [{ "filepath": "s/{utc}.ogg", "file_type": "OGG" }],
            }),
        ) {
            Ok(r) => r,
            Err(e) if during_failover => {
                eprintln!("StartRoomCompositeEgress during the failover: {e}");
                return None;
            }
            Err(e) => panic!("StartRoomCompositeEgress: {e}"),
        };
        let id = r["egress_id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match status_of(&api, &id).as_deref() {
                Some("EGRESS_ACTIVE") => return Some(id),
                Some("EGRESS_FAILED") => return None,
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "{id} never ACTIVE:\n{}",
                worker.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let before = start(false).expect("an egress before the failover");
    assert!(
        sentinel
            .cli(&["SENTINEL", "FAILOVER", "rec"])
            .contains("OK")
    );
    wait_for(
        Duration::from_secs(60),
        "the replica to become the master",
        || {
            sentinel
                .cli(&["SENTINEL", "get-master-addr-by-name", "rec"])
                .contains(&b.port.to_string())
                .then_some(())
        },
    );
    // livekit-server follows too, but a join may fail (HTTP 500) while it does: the worker
    // has claimed and run that egress all the same; a later one records.
    let deadline = Instant::now() + Duration::from_secs(120);
    let after = loop {
        if let Some(id) = start(true) {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no egress after the failover; the worker's log:\n{}",
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for id in [&before, &after] {
        egress_api(&api, "StopEgress", &json!({ "egress_id": id })).expect("StopEgress");
    }
    for id in [&before, &after] {
        wait_status(&api, id, &["EGRESS_COMPLETE"], Duration::from_secs(60));
    }
    // The worker moved to the new master: because the sentinels named it (the old master
    // is still up and a master for some seconds) or because its connection was refused.
    let log = worker.log();
    assert!(
        log.contains("the sentinels name another redis master")
            || log.contains("asking the sentinels again"),
        "{log}"
    );
}
