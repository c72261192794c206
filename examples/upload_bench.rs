//! Uploads one file to an S3 store through tessera's uploader and prints the seconds it
//! took and the process's peak resident memory, for `scripts/bench-upload.sh`.
//!
//! `cargo run --example upload_bench -- FILE ENDPOINT BUCKET ACCESS_KEY SECRET`
//! (path style, region us-east-1; the object key is the file's name).

use std::path::Path;
use std::time::Instant;

use livekit_protocol::S3Upload;
use livekit_protocol::storage_config::Provider;
use tessera::bench::probe;
use tessera::storage::RetryPolicy;
use tessera::storage::Uploader;
use tessera::storage::from_provider;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, endpoint, bucket, key, secret] = &args[..] else {
        eprintln!("usage: upload_bench FILE ENDPOINT BUCKET ACCESS_KEY SECRET");
        std::process::exit(2);
    };
    let spec = from_provider(
        &Provider::S3(S3Upload {
            access_key: key.clone(),
            secret: secret.clone(),
            region: "us-east-1".into(),
            endpoint: endpoint.clone(),
            bucket: bucket.clone(),
            force_path_style: true,
            ..Default::default()
        }),
        "s3",
    )
    .expect("a valid S3 spec");
    let path = Path::new(file);
    let dir = path.parent().expect("a file in a directory");
    let rss_before = probe::rss_mib();
    let started = Instant::now();
    let up = Uploader::start(&spec, None, dir, "", RetryPolicy::default()).expect("uploader");
    // The uploader deletes what it uploaded: give it a hard link, keep the original.
    let link = dir.join(format!(
        "tessera-{}",
        path.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&link);
    std::fs::hard_link(path, &link).expect("a hard link beside the file");
    up.queue().file(&link);
    let report = up.finish();
    let seconds = started.elapsed().as_secs_f64();
    assert!(report.kept.is_empty(), "upload failed: {:?}", report.kept);
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0);
    println!("tessera seconds={seconds:.3} peak_rss_mib={peak:.1} rss_before_mib={rss_before:.1}");
}
