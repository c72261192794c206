//! HLS outputs, read back as a player would: playlists parsed with a real m3u8 parser,
//! every segment decoded by ffmpeg, durations and program-date-times checked, the live
//! window, the adaptive ladder's master playlist and variants.

use crate::common;

use std::path::Path;

use common::*;
use m3u8_rs::{MasterPlaylist, MediaPlaylist, Playlist};

fn media(path: &Path) -> MediaPlaylist {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match m3u8_rs::parse_playlist_res(&bytes) {
        Ok(Playlist::MediaPlaylist(m)) => m,
        other => panic!("{} is not a media playlist: {other:?}", path.display()),
    }
}

fn master(path: &Path) -> MasterPlaylist {
    let bytes = std::fs::read(path).unwrap();
    match m3u8_rs::parse_playlist_res(&bytes) {
        Ok(Playlist::MasterPlaylist(m)) => m,
        other => panic!("{} is not a master playlist: {other:?}", path.display()),
    }
}

/// Every segment exists and decodes without an error.
fn decodes(dir: &Path, playlist: &MediaPlaylist) {
    for s in &playlist.segments {
        let path = dir.join(&s.uri);
        assert!(path.exists(), "{} listed but missing", path.display());
        tool(
            "ffmpeg",
            [
                "-xerror".as_ref(),
                "-i".as_ref(),
                path.as_os_str(),
                "-f".as_ref(),
                "null".as_ref(),
                "-".as_ref(),
            ],
        );
    }
}

#[test]
fn event_and_live_playlists() {
    let _shared = common::shared();
    let request = r#"{
      "room_name": "hls-room",
      "segment_outputs": [{
        "filename_prefix": "hls/seg",
        "playlist_name": "index.m3u8",
        "live_playlist_name": "live.m3u8",
        "segment_duration": 2
      }]
    }"#;
    let run = tessera_run(
        request,
        &["--duration", "13", "--fast", "--room", "synthetic:3"],
    );
    assert!(run.output.status.success(), "{}", run.stderr());
    let info = run.info.as_ref().unwrap();
    assert_eq!(info["status"], "EGRESS_COMPLETE");
    let out = run.dir.path().join("out");
    let dir = out.join("hls");

    let event = media(&dir.join("index.m3u8"));
    assert!(event.end_list, "event playlist closed with ENDLIST");
    let n = event.segments.len();
    assert_eq!(n, 7, "13 s in 2 s segments");
    for s in &event.segments[..n - 1] {
        assert!(
            (s.duration as f64 - 2.0).abs() <= 0.1,
            "EXTINF {} vs segment_duration 2",
            s.duration
        );
    }
    let total: f64 = event.segments.iter().map(|s| s.duration as f64).sum();
    assert!((total - 13.0).abs() < 0.01, "total {total}");
    for pair in event.segments.windows(2) {
        let a = pair[0]
            .program_date_time
            .expect("PROGRAM-DATE-TIME on every segment");
        let b = pair[1].program_date_time.unwrap();
        let gap = (b - a).num_milliseconds() as f64 / 1000.0;
        assert!(
            (gap - pair[0].duration as f64).abs() <= 0.05,
            "PDT gap {gap} vs EXTINF {}",
            pair[0].duration
        );
    }
    decodes(&dir, &event);
    // Keyframes at segment starts: each segment's first video frame is a key frame.
    let first = dir.join(&event.segments[1].uri);
    let flags = tool(
        "ffprobe",
        [
            "-select_streams".as_ref(),
            "v".as_ref(),
            "-show_entries".as_ref(),
            "packet=flags".as_ref(),
            "-read_intervals".as_ref(),
            "%+#1".as_ref(),
            "-of".as_ref(),
            "csv=p=0".as_ref(),
            first.as_os_str(),
        ],
    );
    assert!(
        String::from_utf8_lossy(&flags).starts_with('K'),
        "segment starts on a key frame"
    );

    let live = media(&dir.join("live.m3u8"));
    assert_eq!(live.segments.len(), 5, "live window");
    assert_eq!(live.media_sequence, (n - 5) as u64);
    assert_eq!(
        live.segments.last().unwrap().uri,
        event.segments.last().unwrap().uri
    );

    // SegmentsInfo agrees with the files.
    let result = &info["segment_results"][0];
    assert_eq!(result["playlist_name"], "hls/index.m3u8");
    assert_eq!(result["live_playlist_name"], "hls/live.m3u8");
    assert_eq!(num(&result["segment_count"]) as usize, n);
    let ts: Vec<_> = files_under(&dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "ts"))
        .collect();
    assert_eq!(ts.len(), n, "segment files {ts:?}");
    let bytes: u64 = ts.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert_eq!(num(&result["size"]) as u64, bytes);
    assert!((num(&result["duration"]) / 1e9 - total).abs() < 0.01);
    // No half-written leftovers.
    assert!(files_under(&out).iter().all(|f| {
        let s = f.to_string_lossy();
        !s.ends_with(".part") && !s.ends_with(".tmp")
    }));
    // The manifest lists the playlist and its segments.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join(format!("{}.json", info["egress_id"].as_str().unwrap()))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["playlists"][0]["segments"]
            .as_array()
            .unwrap()
            .len(),
        n
    );
}

#[test]
fn adaptive_ladder_has_a_master_and_one_encode_per_rendition() {
    let _shared = common::shared();
    let request = r#"{
      "room_name": "ladder",
      "segment_outputs": [{
        "filename_prefix": "abr/s",
        "playlist_name": "master.m3u8",
        "segment_duration": 1,
        "filename_suffix": "TIMESTAMP",
        "renditions": [
          {"name": "720p", "width": 1280, "height": 720},
          {"name": "360p", "height": 360, "video_bitrate": 800}
        ]
      }]
    }"#;
    let run = tessera_run(request, &["--duration", "4", "--fast"]);
    assert!(run.output.status.success(), "{}", run.stderr());
    let dir = run.dir.path().join("out/abr");
    let m = master(&dir.join("master.m3u8"));
    assert_eq!(m.variants.len(), 2);
    let sizes: Vec<_> = m
        .variants
        .iter()
        .map(|v| {
            let r = v.resolution.unwrap();
            (r.width, r.height)
        })
        .collect();
    assert_eq!(
        sizes,
        vec![(1280, 720), (640, 360)],
        "highest bandwidth first"
    );
    assert!(m.variants[0].bandwidth > m.variants[1].bandwidth);
    for (v, (w, h)) in m.variants.iter().zip(sizes) {
        let playlist = media(&dir.join(&v.uri));
        assert!(playlist.end_list);
        assert_eq!(playlist.segments.len(), 4);
        decodes(&dir, &playlist);
        let seg = dir.join(&playlist.segments[0].uri);
        // TIMESTAMP suffix: s_{rendition}_{YYYYMMDDhhmmssmmm}.ts
        let name = seg.file_name().unwrap().to_string_lossy().into_owned();
        let stamp = name
            .rsplit('_')
            .next()
            .unwrap()
            .trim_end_matches(".ts")
            .to_owned();
        assert!(
            stamp.len() == 17 && stamp.chars().all(|c| c.is_ascii_digit()),
            "{name}"
        );
        let probe = ffprobe(&seg);
        let video = stream(&probe, "video");
        assert_eq!(
            (num(&video["width"]) as u64, num(&video["height"]) as u64),
            (w, h)
        );
        assert_eq!(stream(&probe, "audio")["codec_name"], "aac");
    }
}
