//! The storage servers that the upload tests run against (tests/it/common/stores/) work:
//! each one stores, returns and lists an object, MinIO keeps its data across a restart and
//! issues session credentials, and tinyproxy forwards plain-HTTP requests (signed S3
//! uploads included) only with the right credentials, logging each.
//! Needs `bash scripts/setup.sh` (MinIO, fake-gcs-server, Azurite, tinyproxy).

use crate::common;

use std::process::Command;

use common::stores::{Azurite, FakeGcs, Minio, Tinyproxy, TokenServer};

#[test]
fn minio_put_get_list_head_tagging() {
    let _shared = common::shared();
    let m = Minio::start();
    assert!(m.endpoint().starts_with("http://127.0.0.1:"));
    m.create_bucket("rec");
    m.put_object(
        "rec",
        "room/a b+c.mp4",
        b"hello s3",
        &[
            ("Content-Type", "video/mp4"),
            ("Content-Disposition", "attachment; filename=\"a.mp4\""),
            ("x-amz-meta-room", "r1"),
            ("x-amz-tagging", "egress=EG_1&kind=file"),
        ],
    );
    m.put_object("rec", "other/x.txt", b"x", &[]);
    assert_eq!(m.get_object("rec", "room/a b+c.mp4").unwrap(), b"hello s3");
    assert_eq!(m.get_object("rec", "room/missing"), None);
    assert_eq!(m.list("rec", "room/"), vec!["room/a b+c.mp4"]);
    assert_eq!(m.list("rec", ""), vec!["other/x.txt", "room/a b+c.mp4"]);
    let h = m.head("rec", "room/a b+c.mp4").unwrap();
    assert_eq!(h["content-type"], "video/mp4");
    assert_eq!(h["content-disposition"], "attachment; filename=\"a.mp4\"");
    assert_eq!(h["x-amz-meta-room"], "r1");
    assert_eq!(h["content-length"], "8");
    assert!(m.head("rec", "nope").is_none());
    let mut tags = m.tagging("rec", "room/a b+c.mp4");
    tags.sort();
    assert_eq!(
        tags,
        vec![
            ("egress".into(), "EG_1".into()),
            ("kind".into(), "file".into())
        ]
    );
}

#[test]
fn minio_restart_keeps_data_and_port() {
    let _shared = common::shared();
    let mut m = Minio::start();
    m.create_bucket("bkt");
    m.put_object("bkt", "seg/0001.ts", b"segment", &[]);
    let endpoint = m.endpoint();
    m.stop();
    assert!(!m.is_running());
    let down = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{endpoint}/minio/health/live"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&down.stdout),
        "000",
        "still answering"
    );
    m.restart();
    assert_eq!(m.endpoint(), endpoint);
    assert_eq!(m.get_object("bkt", "seg/0001.ts").unwrap(), b"segment");
    m.put_object("bkt", "seg/0002.ts", b"more", &[]);
    assert_eq!(m.list("bkt", "seg/"), vec!["seg/0001.ts", "seg/0002.ts"]);
}

#[test]
fn minio_session_credentials() {
    let _shared = common::shared();
    let m = Minio::start();
    m.create_bucket("bkt");
    let (ak, sk, token) = m.session_credentials();
    assert_ne!(ak, m.access_key());
    assert!(!token.is_empty());
    let put = m.request_as(
        Some((&ak, &sk, &token)),
        "PUT",
        "bkt",
        "via-sts.txt",
        &[],
        &[],
        Some(b"temp creds"),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(m.get_object("bkt", "via-sts.txt").unwrap(), b"temp creds");
    // without the token the temporary key is refused
    let bare = m.request_as(
        Some((&ak, &sk, "")),
        "GET",
        "bkt",
        "via-sts.txt",
        &[],
        &[],
        None,
    );
    assert_eq!(bare.status, 403);
}

#[test]
fn fake_gcs_put_get_list_metadata() {
    let _shared = common::shared();
    let g = FakeGcs::start();
    g.create_bucket("rec");
    g.put_object(
        "rec",
        "room/a b.m3u8",
        b"#EXTM3U\n",
        "application/x-mpegurl",
    );
    g.put_object("rec", "zzz", b"z", "text/plain");
    assert_eq!(g.get_object("rec", "room/a b.m3u8").unwrap(), b"#EXTM3U\n");
    assert_eq!(g.get_object("rec", "room/none"), None);
    assert_eq!(g.list("rec", "room/"), vec!["room/a b.m3u8"]);
    let md = g.metadata("rec", "room/a b.m3u8");
    assert_eq!(md["contentType"], "application/x-mpegurl");
    assert_eq!(md["size"], "8");

    // a resumable upload as a GCS client makes it: initiate with metadata, PUT the bytes
    let init = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "-X", "POST"])
        .args([
            "-H",
            "Content-Type: application/json",
            "-H",
            "Authorization: Bearer any",
        ])
        .args([
            "--data-binary",
            r#"{"name":"r/1.mp4","contentType":"video/mp4","metadata":{"egress":"EG_1"}}"#,
        ])
        .arg(format!(
            "{}/upload/storage/v1/b/rec/o?uploadType=resumable",
            g.endpoint()
        ))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&init.stdout).into_owned();
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap_or_else(|| panic!("no Location in {head}"))
        .trim()
        .to_string();
    assert!(location.starts_with(&g.endpoint()), "{location}");
    let put = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
        .args([
            "-H",
            "Content-Type:",
            "--data-binary",
            "resumable bytes",
            &location,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&put.stdout), "200");
    let md = g.metadata("rec", "r/1.mp4");
    assert_eq!(md["contentType"], "video/mp4");
    assert_eq!(md["metadata"]["egress"], "EG_1");
    assert_eq!(g.get_object("rec", "r/1.mp4").unwrap(), b"resumable bytes");
}

#[test]
fn service_account_key_signs_and_token_server_answers() {
    let _shared = common::shared();
    let tokens = TokenServer::start();
    let json = common::stores::service_account_json(&tokens.uri());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["type"], "service_account");
    assert_eq!(v["token_uri"], tokens.uri());
    assert!(v["client_email"].as_str().unwrap().contains('@'));
    let key = v["private_key"].as_str().unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    // the key is a usable RSA key: openssl signs with it
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.pem"), key).unwrap();
    std::fs::write(dir.path().join("msg"), b"header.claims").unwrap();
    let sig = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", "k.pem", "msg"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(sig.status.success());
    assert_eq!(sig.stdout.len(), 256);

    let r = Command::new("curl")
        .args(["-s", "-X", "POST", "--data-binary"])
        .arg("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c")
        .arg(tokens.uri())
        .output()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(answer["access_token"], TokenServer::TOKEN);
    assert!(tokens.requests()[0].ends_with("assertion=a.b.c"));
}

#[test]
fn azurite_put_get_list_properties() {
    let _shared = common::shared();
    let a = Azurite::start();
    assert_eq!(
        a.endpoint(),
        format!("http://127.0.0.1:{}/devstoreaccount1", a.port())
    );
    a.create_container("rec");
    a.put_blob(
        "rec",
        "room/a b.ogg",
        b"hello azure",
        &[
            ("Content-Type", "audio/ogg"),
            ("x-ms-blob-content-disposition", "attachment"),
            ("x-ms-meta-room", "r1"),
        ],
    );
    a.put_blob("rec", "top.txt", b"t", &[]);
    assert_eq!(a.get_blob("rec", "room/a b.ogg").unwrap(), b"hello azure");
    assert_eq!(a.get_blob("rec", "room/none"), None);
    assert_eq!(a.list("rec", "room/"), vec!["room/a b.ogg"]);
    assert_eq!(a.list("rec", ""), vec!["room/a b.ogg", "top.txt"]);
    let p = a.properties("rec", "room/a b.ogg").unwrap();
    assert_eq!(p["content-type"], "audio/ogg");
    assert_eq!(p["content-disposition"], "attachment");
    assert_eq!(p["x-ms-meta-room"], "r1");
    assert_eq!(p["x-ms-blob-type"], "BlockBlob");
    assert!(a.properties("rec", "none").is_none());
    // a wrong key is refused
    let unsigned = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}/rec/top.txt", a.endpoint()))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&unsigned.stdout), "200");
}

/// `curl` through the proxy; returns (status, body).
fn via_proxy(proxy: &str, user: Option<&str>, extra: &[&str], url: &str) -> (String, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-w", "\n%{http_code}", "-x", proxy]);
    if let Some(u) = user {
        c.args(["--proxy-user", u]);
    }
    let out = c.args(extra).arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.to_string(), body.to_string())
}

#[test]
fn tinyproxy_forwards_with_credentials_only() {
    let _shared = common::shared();
    let g = FakeGcs::start();
    g.create_bucket("viaproxy");
    let p = Tinyproxy::start("tess", "s3cret");
    let url = format!("{}/storage/v1/b/viaproxy", g.endpoint());

    let (ok, body) = via_proxy(&p.url(), Some("tess:s3cret"), &[], &url);
    assert_eq!(ok, "200", "{body}");
    assert!(body.contains("\"viaproxy\""), "{body}");
    // credentials in the proxy URL work the same
    let (ok2, _) = via_proxy(&p.url_with_credentials(), None, &[], &url);
    assert_eq!(ok2, "200");
    // no credentials: 407; a wrong password: tinyproxy 1.11 answers 401 (not 407)
    let (none, _) = via_proxy(&p.url(), None, &[], &url);
    assert_eq!(none, "407");
    let (wrong, _) = via_proxy(&p.url(), Some("tess:wrong"), &[], &url);
    assert_eq!(wrong, "401");

    let log = p.log();
    let forwarded = format!("GET {url} HTTP/1.1");
    assert!(log.matches(&forwarded).count() >= 4, "{log}");
    assert!(
        log.contains("Established connection to host \"127.0.0.1\""),
        "{log}"
    );
}

#[test]
fn tinyproxy_carries_signed_s3_upload() {
    let _shared = common::shared();
    let m = Minio::start();
    m.create_bucket("bkt");
    let p = Tinyproxy::start("u", "pw");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seg.ts");
    std::fs::write(&file, vec![7u8; 300_000]).unwrap();
    let url = format!("{}/bkt/proxied/seg.ts", m.endpoint());
    let sigv4 = "aws:amz:us-east-1:s3".to_string();
    let user = format!("{}:{}", m.access_key(), m.secret());
    let (code, body) = via_proxy(
        &p.url(),
        Some("u:pw"),
        &[
            "--aws-sigv4",
            &sigv4,
            "--user",
            &user,
            "-T",
            file.to_str().unwrap(),
        ],
        &url,
    );
    assert_eq!(code, "200", "{body}");
    assert_eq!(
        m.get_object("bkt", "proxied/seg.ts").unwrap().len(),
        300_000
    );
    assert!(
        p.log().contains(&format!("PUT {url} HTTP/1.1")),
        "{}",
        p.log()
    );
}
