//! Uploads to Google Cloud Storage (fake-gcs-server, with a service-account key whose JWT
//! is exchanged at the key's `token_uri`) and to Azure Blob (Azurite), both on loopback:
//! a recording with HLS read back from the store, large files through the resumable and
//! block paths byte for byte, and bad credentials refused with the field named.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::stores::{Azurite, FakeGcs, TokenServer, service_account_json};
use common::*;
use serde_json::{Value, json};
use tessera::storage::RetryPolicy;
use tessera::storage::from_provider;
use tessera::storage::{StoreSpec, Uploader};

/// `tessera run` with extra environment (the emulators' URLs).
fn run_with_env(request: &Value, env: &[(&str, String)]) -> (Value, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("request.json");
    std::fs::write(&req, request.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "run",
            req.to_str().unwrap(),
            "--duration",
            "5",
            "--fast",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let info =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("no EgressInfo:\n{stderr}"));
    (info, stderr, dir)
}

fn check_recording(dir: &Path, mp4: &[u8], segments: Vec<Vec<u8>>, info: &Value) {
    assert_eq!(mp4.len() as f64, num(&info["file_results"][0]["size"]));
    let p = dir.join("check.mp4");
    std::fs::write(&p, mp4).unwrap();
    assert_eq!(stream_kinds(&ffprobe(&p)), vec!["video", "audio"]);
    assert_eq!(
        segments.iter().map(Vec::len).sum::<usize>() as f64,
        num(&info["segment_results"][0]["size"])
    );
    for s in segments {
        assert_decodes(dir, &s);
    }
}

/// The ended playlist `rec/hls/index.m3u8` from a store (`get` reads an object), and
/// every segment it names.
fn read_back_hls(get: impl Fn(&str) -> Option<Vec<u8>>) -> Vec<Vec<u8>> {
    let playlist = get("rec/hls/index.m3u8").expect("the playlist");
    let parsed = m3u8_rs::parse_media_playlist_res(&playlist).expect("a media playlist");
    assert!(parsed.end_list && !parsed.segments.is_empty());
    parsed
        .segments
        .iter()
        .map(|s| get(&format!("rec/hls/{}", s.uri)).expect("segment"))
        .collect()
}

fn recording_request(upload: (&str, Value)) -> Value {
    json!({
        "room_name": "cloud",
        "file_outputs": [{"filepath": "rec/{room_name}.mp4", upload.0: upload.1}],
        "segment_outputs": [{"filename_prefix": "rec/hls/s", "playlist_name": "rec/hls/index.m3u8",
            "segment_duration": 2, upload.0: upload.1}],
    })
}

/// 20 MiB of varied bytes, over both stores' single-request threshold (16 MiB).
fn big_file(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("big.mp4");
    let bytes: Vec<u8> = (0..20u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2246822519) >> 11) as u8)
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

fn upload_one(spec: &StoreSpec, dir: &Path, file: &Path) -> tessera::storage::UploadReport {
    let up = Uploader::start(spec, None, dir, "lib/", RetryPolicy::default()).unwrap();
    up.queue().file(file);
    up.finish()
}

/// The JWT the client sent verifies with the key's public half and names the key's
/// account, the token endpoint and the storage scope.
fn check_assertion(token_server: &TokenServer, credentials: &str) {
    let form = token_server.requests().pop().expect("a token request");
    assert!(
        form.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"),
        "{form}"
    );
    let jwt = form
        .split("assertion=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let creds: Value = serde_json::from_str(credentials).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, creds["private_key"].as_str().unwrap()).unwrap();
    let public = Command::new("openssl")
        .args(["pkey", "-in", key.to_str().unwrap(), "-pubout"])
        .output()
        .unwrap()
        .stdout;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[token_server.uri()]);
    let claims = jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap(),
        &validation,
    )
    .expect("the assertion verifies with the service account's key")
    .claims;
    assert_eq!(claims["iss"], creds["client_email"]);
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/devstorage.read_write"
    );
}

#[test]
fn google_cloud_storage_round_trip_with_a_service_account() {
    // Changes the process environment (see `with_env`).
    let _alone = common::exclusive();
    let gcs = FakeGcs::start();
    gcs.create_bucket("rec-gcs");
    let tokens = TokenServer::start();
    let credentials = service_account_json(&tokens.uri());
    let env = [("STORAGE_EMULATOR_HOST", gcs.endpoint())];
    let request = recording_request((
        "gcp",
        json!({"credentials": credentials, "bucket": "rec-gcs"}),
    ));
    let (info, stderr, dir) = run_with_env(&request, &env);
    assert_eq!(info["status"], "EGRESS_COMPLETE", "{stderr}");
    check_assertion(&tokens, &credentials);

    let location = info["file_results"][0]["location"].as_str().unwrap();
    assert_eq!(
        location,
        format!("{}/rec-gcs/rec/cloud.mp4", gcs.endpoint())
    );
    let mp4 = gcs
        .get_object("rec-gcs", "rec/cloud.mp4")
        .expect("the MP4 object");
    assert_eq!(
        gcs.metadata("rec-gcs", "rec/cloud.mp4")["contentType"],
        "video/mp4"
    );
    let segments = read_back_hls(|key| gcs.get_object("rec-gcs", key));
    check_recording(dir.path(), &mp4, segments, &info);
    let echoed = info.to_string();
    assert!(!echoed.contains("PRIVATE KEY") && !stderr.contains("PRIVATE KEY"));

    // The resumable path, byte for byte, through the library.
    let upload = livekit_protocol::GcpUpload {
        credentials: credentials.clone(),
        bucket: "rec-gcs".into(),
        proxy: None,
    };
    // The emulator's URL is read when the spec is made.
    let spec = with_env("STORAGE_EMULATOR_HOST", &gcs.endpoint(), || {
        from_provider(
            &livekit_protocol::storage_config::Provider::Gcp(upload),
            "gcp",
        )
        .unwrap()
    });
    let (big, bytes) = big_file(dir.path());
    let report = upload_one(&spec, dir.path(), &big);
    assert!(report.kept.is_empty(), "{:?}", report.kept);
    assert!(gcs.get_object("rec-gcs", "lib/big.mp4").unwrap() == bytes);
}

/// Runs `f` with an environment variable set. The caller holds [`common::exclusive`], so no
/// other test of this binary runs (or reads the environment) meanwhile.
fn with_env<T>(key: &str, value: &str, f: impl FnOnce() -> T) -> T {
    // SAFETY: the caller's exclusive lock keeps every other test thread of this binary
    // idle, and the egress threads started by `f` are joined before it returns.
    unsafe { std::env::set_var(key, value) };
    let out = f();
    // SAFETY: as above.
    unsafe { std::env::remove_var(key) };
    out
}

#[test]
fn azure_blob_round_trip() {
    // Changes the process environment (see `with_env`).
    let _alone = common::exclusive();
    let az = Azurite::start();
    az.create_container("rec-az");
    let env = [(
        "AZURITE_BLOB_STORAGE_URL",
        format!("http://127.0.0.1:{}", az.port()),
    )];
    let upload =
        json!({"account_name": az.account(), "account_key": az.key(), "container_name": "rec-az"});
    let (info, stderr, dir) = run_with_env(&recording_request(("azure", upload.clone())), &env);
    assert_eq!(info["status"], "EGRESS_COMPLETE", "{stderr}");
    assert_eq!(
        info["file_results"][0]["location"],
        format!("{}/rec-az/rec/cloud.mp4", az.endpoint())
    );
    let mp4 = az
        .get_blob("rec-az", "rec/cloud.mp4")
        .expect("the MP4 blob");
    assert_eq!(
        az.properties("rec-az", "rec/cloud.mp4").unwrap()["content-type"],
        "video/mp4"
    );
    let segments = read_back_hls(|key| az.get_blob("rec-az", key));
    check_recording(dir.path(), &mp4, segments, &info);
    assert!(!info.to_string().contains(az.key()) && !stderr.contains(az.key()));

    // Blocks + block list, byte for byte.
    let upload: livekit_protocol::AzureBlobUpload = serde_json::from_value(upload).unwrap();
    // object_store reads the emulator's URL when the store is opened.
    let url = format!("http://127.0.0.1:{}", az.port());
    let (big, bytes) = big_file(dir.path());
    let report = with_env("AZURITE_BLOB_STORAGE_URL", &url, || {
        let spec = from_provider(
            &livekit_protocol::storage_config::Provider::Azure(upload),
            "azure",
        )
        .unwrap();
        upload_one(&spec, dir.path(), &big)
    });
    assert!(report.kept.is_empty(), "{:?}", report.kept);
    assert!(az.get_blob("rec-az", "lib/big.mp4").unwrap() == bytes);
}

#[test]
fn bad_cloud_credentials_are_refused_naming_the_field() {
    let _shared = common::shared();
    let cases = [
        (
            json!({"gcp": {"credentials": "{not json", "bucket": "b"}}),
            "file_outputs[0].gcp.credentials",
        ),
        (
            json!({"gcp": {"credentials": "{\"type\": \"authorized_user\"}", "bucket": "b"}}),
            "file_outputs[0].gcp.credentials",
        ),
        (
            json!({"gcp": {"credentials": "{}", "bucket": ""}}),
            "file_outputs[0].gcp.bucket",
        ),
        (
            json!({"azure": {"account_name": "a", "account_key": "not base64!", "container_name": "c"}}),
            "file_outputs[0].azure.account_key",
        ),
        (
            json!({"azure": {"account_name": "a", "account_key": "a2V5", "container_name": ""}}),
            "file_outputs[0].azure.container_name",
        ),
    ];
    for (upload, field) in cases {
        let mut output = json!({"filepath": "x.mp4"});
        for (k, v) in upload.as_object().unwrap() {
            output[k] = v.clone();
        }
        let request = json!({"room_name": "r", "file_outputs": [output]});
        let run = tessera_run(&request.to_string(), &["--duration", "1", "--fast"]);
        assert!(!run.output.status.success(), "accepted: {request}");
        assert!(run.stderr().contains(field), "{field}: {}", run.stderr());
        assert!(files_under(&run.dir.path().join("out")).is_empty());
    }
}

#[test]
fn google_cloud_storage_through_a_proxy() {
    // Changes the process environment (see `with_env`).
    let _alone = common::exclusive();
    let gcs = FakeGcs::start();
    gcs.create_bucket("rec-proxy");
    let tokens = TokenServer::start();
    let proxy = common::stores::Tinyproxy::start("gcs", "proxy-pass-7");
    let upload = livekit_protocol::GcpUpload {
        credentials: service_account_json(&tokens.uri()),
        bucket: "rec-proxy".into(),
        proxy: Some(livekit_protocol::ProxyConfig {
            url: proxy.url(),
            username: "gcs".into(),
            password: "proxy-pass-7".into(),
        }),
    };
    let spec = with_env("STORAGE_EMULATOR_HOST", &gcs.endpoint(), || {
        from_provider(
            &livekit_protocol::storage_config::Provider::Gcp(upload),
            "gcp",
        )
        .unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.json");
    std::fs::write(&file, b"via the proxy").unwrap();
    let report = upload_one(&spec, dir.path(), &file);
    assert!(report.kept.is_empty(), "{:?}", report.kept);
    assert_eq!(
        gcs.get_object("rec-proxy", "lib/clip.json").unwrap(),
        b"via the proxy"
    );
    let log = proxy.log();
    assert!(
        log.contains("upload/storage/v1/b/rec-proxy"),
        "the upload bypassed the proxy:\n{log}"
    );
    assert!(!tokens.requests().is_empty());
}
