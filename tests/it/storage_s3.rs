//! Uploads to a real S3 store (MinIO on loopback, started by the tests): every output type
//! lands in the bucket and reads back whole, object attributes, session credentials,
//! multipart, a store restarting mid-recording, a store that never comes back (backup, or
//! files kept on disk), wrong credentials, a proxy, and bad storage input.

use crate::common;

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use common::stores::{Minio, Tinyproxy};
use common::*;
use serde_json::{Value, json};
use tessera::storage::RetryPolicy;
use tessera::storage::from_provider;
use tessera::storage::{StoreSpec, Uploader};

/// One MinIO for the tests that do not stop it.
fn minio() -> &'static Minio {
    static M: OnceLock<Minio> = OnceLock::new();
    M.get_or_init(|| {
        let m = Minio::start();
        m.create_bucket("rec");
        m
    })
}

fn s3_json(m: &Minio, bucket: &str) -> Value {
    json!({
        "access_key": m.access_key(),
        "secret": m.secret(),
        "region": m.region(),
        "endpoint": m.endpoint(),
        "bucket": bucket,
        "force_path_style": true,
    })
}

fn status(run: &Run) -> String {
    run.info.as_ref().expect("an EgressInfo on stdout")["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn info(run: &Run) -> &Value {
    run.info.as_ref().expect("an EgressInfo on stdout")
}

/// The object key of a URL `endpoint/bucket/key`.
fn key_of(url: &str, m: &Minio, bucket: &str) -> String {
    url.strip_prefix(&format!("{}/{bucket}/", m.endpoint()))
        .unwrap_or_else(|| panic!("{url} is not in {bucket}"))
        .to_owned()
}

fn media_left(dir: &Path) -> Vec<std::path::PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| {
            f.extension().is_some_and(|e| {
                ["mp4", "ts", "m3u8", "jpeg", "jpg"].contains(&e.to_str().unwrap())
            })
        })
        .collect()
}

#[test]
fn every_output_lands_in_the_bucket_with_its_attributes() {
    let _shared = common::shared();
    let m = minio();
    let mut s3 = s3_json(m, "rec");
    s3["metadata"] = json!({"room": "demo", "recorder": "tessera"});
    s3["tagging"] = json!("team=rec&kind=test");
    s3["content_disposition"] = json!("attachment");
    let request = json!({
        "room_name": "demo",
        "layout": "grid",
        "file_outputs": [{"filepath": "all/{room_name}.mp4", "s3": s3}],
        "segment_outputs": [{"filename_prefix": "all/hls/seg", "playlist_name": "all/hls/index.m3u8",
            "segment_duration": 2, "s3": s3}],
        "image_outputs": [{"capture_interval": 2, "width": 320, "height": 180,
            "filename_prefix": "all/img/thumb", "s3": s3}],
    });
    let run = tessera_run(&request.to_string(), &["--duration", "5", "--fast"]);
    assert_eq!(status(&run), "EGRESS_COMPLETE", "{}", run.stderr());
    let info = info(&run);

    // The MP4: where the result says, whole, with its attributes.
    let file = &info["file_results"][0];
    let key = key_of(file["location"].as_str().unwrap(), m, "rec");
    assert_eq!(key, "all/demo.mp4");
    let body = m.get_object("rec", &key).expect("the MP4 object");
    assert_eq!(body.len() as f64, num(&file["size"]));
    let local = run.dir.path().join("check.mp4");
    std::fs::write(&local, &body).unwrap();
    let probe = ffprobe(&local);
    assert_eq!(stream_kinds(&probe), vec!["video", "audio"]);
    let head = m.head("rec", &key).unwrap();
    assert_eq!(head["content-type"], "video/mp4");
    assert_eq!(head["content-disposition"], "attachment");
    assert_eq!(head["x-amz-meta-room"], "demo");
    let mut tags = m.tagging("rec", &key);
    tags.sort();
    assert_eq!(
        tags,
        vec![
            ("kind".into(), "test".into()),
            ("team".into(), "rec".into())
        ]
    );

    // HLS: the playlist in the bucket names only segments that are there, and they add up.
    let seg = &info["segment_results"][0];
    let pl_key = key_of(seg["playlist_location"].as_str().unwrap(), m, "rec");
    let playlist = m.get_object("rec", &pl_key).expect("the playlist object");
    let text = String::from_utf8(playlist.clone()).unwrap();
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    let parsed = m3u8_rs::parse_media_playlist_res(&playlist).expect("a media playlist");
    assert_eq!(parsed.segments.len() as f64, num(&seg["segment_count"]));
    let mut total = 0usize;
    for s in &parsed.segments {
        let bytes = m
            .get_object("rec", &format!("all/hls/{}", s.uri))
            .unwrap_or_else(|| panic!("segment {} missing", s.uri));
        total += bytes.len();
        assert_decodes(run.dir.path(), &bytes);
    }
    assert_eq!(total as f64, num(&seg["size"]));
    assert_eq!(
        m.head("rec", &pl_key).unwrap()["content-type"],
        "application/x-mpegurl"
    );

    // Images: as many objects as the result counts, each a JPEG.
    let images = m.list("rec", "all/img/");
    assert_eq!(
        images.len() as f64,
        num(&info["image_results"][0]["image_count"])
    );
    assert!(images.len() >= 2, "{images:?}");
    for k in &images {
        assert!(
            m.get_object("rec", k)
                .unwrap()
                .starts_with(&[0xFF, 0xD8, 0xFF])
        );
    }

    // The manifest went to the first output's store, with URLs.
    let egress_id = info["egress_id"].as_str().unwrap();
    let manifest: Value =
        serde_json::from_slice(&m.get_object("rec", &format!("{egress_id}.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["files"][0]["location"], file["location"]);
    assert!(
        manifest["images"][0]["location"]
            .as_str()
            .unwrap()
            .starts_with(&m.endpoint())
    );

    // Uploaded files are gone locally; no secret was printed.
    let out = run.dir.path().join("out");
    assert!(media_left(&out).is_empty(), "{:?}", media_left(&out));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&run.output.stdout),
        run.stderr()
    );
    assert!(!printed.contains(m.secret()), "the secret was printed");
    let echoed = info.to_string();
    assert!(echoed.contains(r#""secret":"<redacted>""#), "{echoed}");
}

fn spec(value: Value) -> StoreSpec {
    let upload: livekit_protocol::S3Upload = serde_json::from_value(value).unwrap();
    from_provider(
        &livekit_protocol::storage_config::Provider::S3(upload),
        "s3",
    )
    .unwrap()
}

#[test]
fn session_credentials_and_multipart_read_back_byte_for_byte() {
    let _shared = common::shared();
    let m = minio();
    let (key, secret, token) = m.session_credentials();
    let mut s3 = s3_json(m, "rec");
    s3["access_key"] = json!(key);
    s3["secret"] = json!(secret);
    s3["session_token"] = json!(token);
    let dir = tempfile::tempdir().unwrap();
    // 200 MB of varied bytes: over the multipart threshold (16 MiB), 24 parts of 8 MiB.
    let big = dir.path().join("big/recording.mp4");
    std::fs::create_dir_all(big.parent().unwrap()).unwrap();
    let bytes: Vec<u8> = (0..200_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &bytes).unwrap();
    let small = dir.path().join("small.json");
    std::fs::write(&small, b"{\"ok\":true}").unwrap();

    let up = Uploader::start(&spec(s3), None, dir.path(), "sess/", RetryPolicy::default()).unwrap();
    up.queue().file(&big);
    up.queue().file(&small);
    let report = up.finish();
    assert!(report.kept.is_empty(), "{:?}", report.kept);
    assert_eq!(
        report.location(&big),
        Some(format!("{}/rec/sess/big/recording.mp4", m.endpoint()).as_str())
    );
    assert!(m.get_object("rec", "sess/big/recording.mp4").unwrap() == bytes);
    assert_eq!(
        m.get_object("rec", "sess/small.json").unwrap(),
        b"{\"ok\":true}"
    );
    let etag = &m.head("rec", "sess/big/recording.mp4").unwrap()["etag"];
    assert!(
        etag.trim_matches('"').ends_with("-24"),
        "not a 24-part upload: {etag}"
    );
    assert!(
        !big.exists() && !small.exists(),
        "local copies kept after upload"
    );
}

#[test]
fn a_store_restarting_mid_recording_loses_nothing() {
    let _shared = common::shared();
    let mut m = Minio::start();
    m.create_bucket("live");
    let request = json!({
        "room_name": "restart",
        "segment_outputs": [{"filename_prefix": "r/seg", "playlist_name": "r/index.m3u8",
            "segment_duration": 2, "s3": s3_json(&m, "live")}],
    });
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_run(&request.to_string(), dir.path(), &["--duration", "16"]);
    std::thread::sleep(Duration::from_secs(4));
    m.stop();
    std::thread::sleep(Duration::from_secs(10));
    m.restart();
    let out = child.wait_with_output().unwrap();
    let info: Value = serde_json::from_slice(&out.stdout).expect("an EgressInfo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(info["status"], "EGRESS_COMPLETE", "{stderr}");
    assert!(
        stderr.contains("retrying"),
        "the outage was not noticed:\n{stderr}"
    );
    assert_ne!(info["backup_storage_used"], json!(true));
    let playlist = m.get_object("live", "r/index.m3u8").expect("the playlist");
    let parsed = m3u8_rs::parse_media_playlist_res(&playlist).expect("a valid playlist");
    assert!(parsed.end_list);
    assert!(
        parsed.segments.len() >= 7,
        "{} segments",
        parsed.segments.len()
    );
    for s in &parsed.segments {
        assert!(
            m.head("live", &format!("r/{}", s.uri)).is_some(),
            "segment {} missing",
            s.uri
        );
    }
    assert!(
        media_left(dir.path()).is_empty(),
        "{:?}",
        media_left(dir.path())
    );
}

fn config_file(dir: &Path, yaml: &str) -> String {
    let p = dir.join("tessera.yaml");
    std::fs::write(&p, yaml).unwrap();
    p.display().to_string()
}

#[test]
fn a_dead_store_sends_the_files_to_the_backup() {
    let _shared = common::shared();
    let mut dead = Minio::start();
    dead.create_bucket("gone");
    let dead_s3 = s3_json(&dead, "gone");
    dead.stop();
    let backup = minio();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        cfg_dir.path(),
        &format!(
            "backup_storage:\n  prefix: ignored/\n  s3:\n    access_key: {}\n    secret: {}\n    endpoint: {}\n    bucket: rec\n    force_path_style: true\n",
            backup.access_key(),
            backup.secret(),
            backup.endpoint()
        ),
    );
    let request = json!({
        "room_name": "backup",
        "file_outputs": [{"filepath": "bk/{room_name}.mp4", "s3": dead_s3}],
    });
    let run = tessera_run(
        &request.to_string(),
        &["--duration", "2", "--fast", "--config", &cfg],
    );
    assert_eq!(status(&run), "EGRESS_COMPLETE", "{}", run.stderr());
    let info = info(&run);
    assert_eq!(info["backup_storage_used"], json!(true));
    let location = info["file_results"][0]["location"].as_str().unwrap();
    let key = key_of(location, backup, "rec");
    assert_eq!(key, "bk/backup.mp4");
    assert_eq!(
        m_len(backup, &key),
        num(&info["file_results"][0]["size"]) as usize
    );
}

fn m_len(m: &Minio, key: &str) -> usize {
    m.get_object("rec", key).map_or(0, |b| b.len())
}

#[test]
fn with_no_store_left_the_files_stay_on_disk_and_the_egress_fails() {
    let _shared = common::shared();
    let mut dead = Minio::start();
    dead.create_bucket("gone");
    let s3 = s3_json(&dead, "gone");
    dead.stop();
    let request = json!({
        "room_name": "nowhere",
        "file_outputs": [{"filepath": "{room_name}.mp4", "s3": s3}],
    });
    let run = tessera_run(&request.to_string(), &["--duration", "2", "--fast"]);
    assert_eq!(status(&run), "EGRESS_FAILED", "{}", run.stderr());
    let error = info(&run)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("s3 bucket \"gone\""), "{error}");
    assert!(error.contains("kept on local disk"), "{error}");
    assert!(!error.contains(dead.secret()), "{error}");
    // Kept in the egress's own staging directory, where the report says it is.
    let id = info(&run)["egress_id"].as_str().unwrap();
    let kept = run
        .dir
        .path()
        .join(format!("out/.staging/{id}/nowhere.mp4"));
    assert!(kept.exists(), "the recording was not kept: {error}");
    assert!(error.contains(&kept.display().to_string()), "{error}");
    assert_eq!(
        info(&run)["file_results"][0]["location"],
        kept.display().to_string()
    );
    assert_eq!(stream_kinds(&ffprobe(&kept)), vec!["video", "audio"]);
}

#[test]
fn wrong_credentials_fail_clearly_without_the_secret() {
    let _shared = common::shared();
    let m = minio();
    let mut s3 = s3_json(m, "rec");
    s3["secret"] = json!("not-the-secret-1234");
    let request = json!({
        "room_name": "badkey",
        "file_outputs": [{"filepath": "{room_name}.mp4", "s3": s3}],
    });
    let started = std::time::Instant::now();
    let run = tessera_run(&request.to_string(), &["--duration", "2", "--fast"]);
    assert_eq!(status(&run), "EGRESS_FAILED", "{}", run.stderr());
    let error = info(&run)["error"].as_str().unwrap();
    assert!(
        error.contains("SignatureDoesNotMatch") || error.contains("403"),
        "{error}"
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&run.output.stdout),
        run.stderr()
    );
    assert!(
        !printed.contains("not-the-secret-1234"),
        "the secret was printed"
    );
    // A refusal is not retried for 24 s.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let id = info(&run)["egress_id"].as_str().unwrap();
    let kept = run.dir.path().join(format!("out/.staging/{id}/badkey.mp4"));
    assert!(kept.exists(), "kept in the egress's staging directory");
}

#[test]
fn uploads_go_through_a_proxy_and_a_wrong_proxy_password_is_a_clear_error() {
    let _shared = common::shared();
    let m = minio();
    let proxy = Tinyproxy::start("rec", "proxy-pass-42");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("via-proxy.json");
    std::fs::write(&file, b"through the proxy").unwrap();
    let mut s3 = s3_json(m, "rec");
    s3["proxy"] = json!({"url": proxy.url(), "username": "rec", "password": "proxy-pass-42"});
    let up = Uploader::start(
        &spec(s3.clone()),
        None,
        dir.path(),
        "",
        RetryPolicy::default(),
    )
    .unwrap();
    up.queue().file(&file);
    let report = up.finish();
    assert!(report.kept.is_empty(), "{:?}", report.kept);
    assert_eq!(
        m.get_object("rec", "via-proxy.json").unwrap(),
        b"through the proxy"
    );
    let log = proxy.log();
    assert!(
        log.contains("via-proxy.json"),
        "the proxy did not carry it:\n{log}"
    );

    std::fs::write(&file, b"again").unwrap();
    s3["proxy"]["password"] = json!("wrong-pass");
    let up = Uploader::start(&spec(s3), None, dir.path(), "", RetryPolicy::default()).unwrap();
    up.queue().file(&file);
    let report = up.finish();
    assert_eq!(report.kept.len(), 1);
    let reason = &report.kept[0].1;
    // Tinyproxy answers a wrong password with 401 (407 is for no credentials at all).
    assert!(reason.contains("401") || reason.contains("407"), "{reason}");
    assert!(!reason.contains("wrong-pass"), "{reason}");
    assert!(file.exists());
}

#[test]
fn bad_storage_input_is_refused_before_any_file() {
    let _shared = common::shared();
    let m = minio();
    let cases = [
        (json!({"bucket": ""}), "file_outputs[0].s3.bucket"),
        (
            json!({"endpoint": "127.0.0.1:9000"}),
            "file_outputs[0].s3.endpoint",
        ),
        (
            json!({"endpoint": "", "region": ""}),
            "file_outputs[0].s3.region",
        ),
    ];
    for (patch, field) in cases {
        let mut s3 = s3_json(m, "rec");
        for (k, v) in patch.as_object().unwrap() {
            s3[k] = v.clone();
        }
        let request = json!({"room_name": "r", "file_outputs": [{"filepath": "x.mp4", "s3": s3}]});
        let run = tessera_run(&request.to_string(), &["--duration", "1", "--fast"]);
        assert!(!run.output.status.success());
        assert!(run.stderr().contains(field), "{field}: {}", run.stderr());
        assert!(files_under(&run.dir.path().join("out")).is_empty());
    }
    // The worker refuses local storage when configured so.
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = config_file(cfg_dir.path(), "disallow_local_storage: true\n");
    let run = tessera_run(
        r#"{"room_name": "r", "file_outputs": [{"filepath": "x.mp4"}]}"#,
        &["--duration", "1", "--fast", "--config", &cfg],
    );
    assert_eq!(status(&run), "EGRESS_FAILED");
    assert!(
        info(&run)["error"]
            .as_str()
            .unwrap()
            .starts_with("file_outputs[0]")
    );
    assert!(files_under(&run.dir.path().join("out")).is_empty());
}

/// Starts `tessera run` on `request` with its output directory `out`, shared with others.
fn spawn_into(request: &Value, out: &Path, args: &[&str]) -> std::process::Child {
    let req = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(req.path(), request.to_string()).unwrap();
    let (_, path) = req.keep().unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(out)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tessera runs")
}

fn finished(child: std::process::Child) -> (Value, String) {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let info = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no EgressInfo ({e}): {stderr}"));
    (info, stderr)
}

#[test]
fn two_egresses_on_one_path_never_lose_a_recording() {
    let _shared = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = ["--duration", "3", "--room", "synthetic:2"];

    // Kept on local disk: the second egress is refused with the path named; the first
    // records whole.
    let local = json!({"room_name": "clash", "file_outputs": [{"filepath": "same.mp4"}]});
    let first = spawn_into(&local, &out, &args);
    let target = out.join("same.mp4");
    let start = std::time::Instant::now();
    while !target.exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = spawn_into(&local, &out, &args);
    let (b, b_log) = finished(second);
    let (a, a_log) = finished(first);
    assert_eq!(a["status"], "EGRESS_COMPLETE", "{a_log}");
    assert_eq!(b["status"], "EGRESS_FAILED", "{b_log}");
    let error = b["error"].as_str().unwrap();
    assert!(
        error.contains("same.mp4") && error.contains("already exists"),
        "{error}"
    );
    assert_eq!(stream_kinds(&ffprobe(&target)), vec!["video", "audio"]);
    let size = std::fs::metadata(&target).unwrap().len();
    assert_eq!(num(&a["file_results"][0]["size"]) as u64, size);

    // Uploaded: each egress stages its own file, so neither upload deletes the other's;
    // both reach the store whole and nothing is left behind.
    let m = minio();
    let up = json!({"room_name": "clash",
        "file_outputs": [{"filepath": "clash/same.mp4", "s3": s3_json(m, "rec")}]});
    let runs: Vec<_> = (0..2).map(|_| spawn_into(&up, &out, &args)).collect();
    for child in runs {
        let (info, log) = finished(child);
        assert_eq!(info["status"], "EGRESS_COMPLETE", "{log}");
        let location = info["file_results"][0]["location"].as_str().unwrap();
        assert_eq!(key_of(location, m, "rec"), "clash/same.mp4");
    }
    let object = m.get_object("rec", "clash/same.mp4").unwrap();
    let copy = dir.path().join("same-from-store.mp4");
    std::fs::write(&copy, object).unwrap();
    assert_eq!(stream_kinds(&ffprobe(&copy)), vec!["video", "audio"]);
    assert!(!out.join(".staging").exists(), "staging left behind");
    assert!(!out.join("clash").exists());
}

/// A store that accepts connections and never answers: holds each one open, reading
/// nothing back, until the test ends.
fn stalled_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((c, _)) = listener.accept() {
            held.push(c);
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_store_that_accepts_and_stalls_cannot_hold_the_end_and_the_backup_takes_the_files() {
    let _shared = common::shared();
    let backup = minio();
    let stalled = json!({
        "access_key": "AKID", "secret": "stalled-secret-5678", "region": "us-east-1",
        "endpoint": stalled_endpoint(), "bucket": "stalled", "force_path_style": true,
    });
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        cfg_dir.path(),
        &format!(
            "backup_storage:\n  s3:\n    access_key: {}\n    secret: {}\n    endpoint: {}\n    bucket: rec\n    force_path_style: true\ntessera:\n  upload_deadline: 2s\n",
            backup.access_key(),
            backup.secret(),
            backup.endpoint()
        ),
    );
    let request = json!({
        "room_name": "stall",
        "file_outputs": [{"filepath": "stall/{room_name}.mp4", "s3": stalled}],
        "segment_outputs": [{"filename_prefix": "stall/hls/seg", "playlist_name": "stall/hls/index.m3u8",
                             "segment_duration": 1, "s3": stalled}],
    });
    // Each attempt on the stalled store would wait 30 s and be retried for minutes; the
    // deadline (2 s after the end) moves every file to the backup instead.
    let run = tessera_run(&request.to_string(), &["--duration", "4", "--config", &cfg]);
    assert_eq!(status(&run), "EGRESS_COMPLETE", "{}", run.stderr());
    let info = info(&run);
    assert_eq!(info["backup_storage_used"], json!(true), "{info}");
    let location = info["file_results"][0]["location"].as_str().unwrap();
    assert_eq!(key_of(location, backup, "rec"), "stall/stall.mp4");
    assert!(run.stderr().contains("upload deadline"), "{}", run.stderr());
    assert!(!run.stderr().contains("stalled-secret-5678"));
    // The playlist in the backup names segments that are all there.
    let playlist = backup.get_object("rec", "stall/hls/index.m3u8").unwrap();
    let (_, pl) = m3u8_rs::parse_media_playlist(&playlist).unwrap();
    assert!(pl.segments.len() >= 3, "{} segments", pl.segments.len());
    for s in &pl.segments {
        assert!(
            backup
                .get_object("rec", &format!("stall/hls/{}", s.uri))
                .is_some(),
            "{} missing",
            s.uri
        );
    }
    assert!(
        media_left(run.dir.path()).is_empty(),
        "{:?}",
        media_left(run.dir.path())
    );
}
