//! Web egress: local pages (served on 127.0.0.1 by the test) recorded in Chromium on a
//! virtual display with their own sound server; colours and tones checked in the outputs,
//! start/end signals, two egresses at once, a custom template's query, and failures.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::pages::{Pages, colour_page};
use common::*;
use serde_json::Value;

/// Small outputs keep two browsers and two encodes within 2 cores.
const SIZE: &str = r#""advanced": {"width": 640, "height": 360, "framerate": 30}"#;

/// Every frame's mean colour (RGB).
fn frame_colours(path: &Path) -> Vec<[f64; 3]> {
    let args = [
        "-i",
        path.to_str().unwrap(),
        "-vf",
        "scale=1:1:flags=area,format=rgb24",
        "-f",
        "rawvideo",
        "-",
    ];
    tool("ffmpeg", args)
        .chunks_exact(3)
        .map(|c| [c[0] as f64, c[1] as f64, c[2] as f64])
        .collect()
}

fn rgb(hex: &str) -> [f64; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as f64, ((v >> 8) & 255) as f64, (v & 255) as f64]
}

fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Which of `colours` each frame shows (`None`: none within 40 of it).
fn classify(frames: &[[f64; 3]], colours: &[&str]) -> Vec<Option<usize>> {
    frames
        .iter()
        .map(|f| {
            colours
                .iter()
                .enumerate()
                .map(|(i, c)| (i, distance(*f, rgb(c))))
                .filter(|(_, d)| *d < 40.0)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        })
        .collect()
}

/// Power of `hz` over a reference tone elsewhere (how much the tone stands out).
fn tone_ratio(samples: &[f32], hz: f64, other: f64) -> f64 {
    goertzel(samples, hz, 48_000.0) / goertzel(samples, other, 48_000.0).max(1e-12)
}

fn status(run: &Run) -> String {
    run.info.as_ref().expect("EgressInfo on stdout")["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn media_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "mp4" || e == "ts"))
        .collect()
}

#[test]
fn a_page_is_recorded_with_its_colours_in_time_and_its_tone() {
    let _serial = common::shared();
    let colours = ["#ff0000", "#00ff00", "#0000ff", "#ffffff"];
    let pages = Pages::serve(&[("/colours", colour_page(&colours, 440.0, ""))]);
    let request = format!(
        r#"{{"url": "{}", {SIZE},
            "file_outputs": [{{"filepath": "web.mp4"}}],
            "segment_outputs": [{{"filename_prefix": "hls/s", "playlist_name": "hls/p.m3u8", "segment_duration": 2}}]}}"#,
        pages.url("/colours")
    );
    let run = tessera_run(&request, &["--duration", "10"]);
    assert_eq!(status(&run), "EGRESS_COMPLETE", "{}", run.stderr());
    let info = run.info.as_ref().unwrap();
    assert_eq!(info["web"]["url"], pages.url("/colours"));
    let mp4 = run.dir.path().join("out/web.mp4");
    let duration = num(&ffprobe(&mp4)["format"]["duration"]);
    assert!((duration - 10.0).abs() < 0.2, "{duration} s");

    // The colours come in the page's order, one per second, ±1 frame per second.
    let classes = classify(&frame_colours(&mp4), &colours);
    assert!(
        classes.iter().all(Option::is_some),
        "frames of no page colour: {:?}",
        classes.iter().position(Option::is_none)
    );
    let classes: Vec<usize> = classes.into_iter().map(Option::unwrap).collect();
    let changes: Vec<usize> = (1..classes.len())
        .filter(|&i| classes[i] != classes[i - 1])
        .collect();
    assert!(changes.len() >= 7, "changes at {changes:?}");
    // The page's first second may run long: Chromium's first page on a cold machine can
    // stall its own painting (one run: 52 frames, every later second 29-31). The
    // recorder's timing is what is checked, from the second change on.
    let changes = &changes[1..];
    for w in changes.windows(2) {
        assert_eq!(
            classes[w[1]],
            (classes[w[0]] + 1) % colours.len(),
            "out of order at frame {}",
            w[1]
        );
        let gap = w[1] - w[0];
        assert!(
            (29..=31).contains(&gap),
            "a second lasted {gap} frames: {changes:?}"
        );
    }
    let (first, last) = (changes[0], *changes.last().unwrap());
    let seconds = changes.len() - 1;
    let drift = (last - first) as i64 - 30 * seconds as i64;
    assert!(
        drift.unsigned_abs() as usize <= seconds,
        "drift {drift} frames over {seconds} s"
    );

    // The page covers the whole frame, edges included.
    let frame = frame_rgb(&mp4, 5.0, 640, 360);
    let centre = mean_rgb(&frame, 640, 320, 180, 0);
    for (x, y) in [(639, 180), (320, 359), (0, 0), (639, 359)] {
        let edge = mean_rgb(&frame, 640, x, y, 0);
        assert!(
            distance(edge, centre) < 40.0,
            "({x},{y}) is {edge:?}, the page {centre:?}"
        );
    }

    // The tone, on both channels.
    let (l, r) = audio_stereo(&mp4);
    assert!(l.len() >= 9 * 48_000, "{} samples", l.len());
    for (name, ch) in [("left", &l), ("right", &r)] {
        let ratio = tone_ratio(&ch[48_000..], 440.0, 1000.0);
        assert!(ratio > 1000.0, "{name}: 440 Hz only {ratio} times 1 kHz");
    }

    // HLS: the same recording in segments.
    let playlist = std::fs::read(run.dir.path().join("out/hls/p.m3u8")).unwrap();
    let m3u8_rs::Playlist::MediaPlaylist(pl) = m3u8_rs::parse_playlist_res(&playlist).unwrap()
    else {
        panic!("not a media playlist")
    };
    let total: f64 = pl.segments.iter().map(|s| s.duration as f64).sum();
    assert!((total - 10.0).abs() < 0.3, "HLS holds {total} s");
    let seg = run.dir.path().join("out/hls").join(&pl.segments[1].uri);
    let seg_classes = classify(&frame_colours(&seg), &colours);
    assert!(seg_classes.iter().all(Option::is_some));
}

/// A page grey for 3 s that then turns green, logs START_RECORDING once the green is on
/// screen, and END_RECORDING 3 s later.
fn signal_page() -> String {
    colour_page(
        &["#808080"],
        440.0,
        r#"setTimeout(() => {
             colours[0] = '#00ff00';
             requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => {
               console.log('START_RECORDING');
               setTimeout(() => console.log('END_RECORDING'), 3000);
             }, 50)));
           }, 3000);"#,
    )
}

#[test]
fn the_start_and_end_signals_bound_the_recording() {
    let _serial = common::shared();
    let pages = Pages::serve(&[
        ("/signals", signal_page()),
        ("/silent", colour_page(&["#0000ff"], 440.0, "")),
    ]);
    let request = |path: &str| {
        format!(
            r#"{{"url": "{}", "await_start_signal": true, {SIZE},
                "file_outputs": [{{"filepath": "sig.mp4"}}]}}"#,
            pages.url(path)
        )
    };
    let began = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let run = tessera_run(&request("/signals"), &[]);
    assert_eq!(status(&run), "EGRESS_COMPLETE", "{}", run.stderr());
    let info = run.info.as_ref().unwrap();
    let started = Duration::from_nanos(num(&info["started_at"]) as u64);
    assert!(
        started >= began + Duration::from_secs(3),
        "recording started {:?} after the request",
        started.saturating_sub(began)
    );
    let mp4 = run.dir.path().join("out/sig.mp4");
    let duration = num(&ffprobe(&mp4)["format"]["duration"]);
    assert!(
        (2.5..=3.6).contains(&duration),
        "END_RECORDING after 3 s gave {duration} s"
    );
    let classes = classify(&frame_colours(&mp4), &["#00ff00", "#808080"]);
    assert_eq!(classes[0], Some(0), "the recording starts green");
    assert!(
        classes.iter().all(|c| *c == Some(0)),
        "grey (before the signal) recorded at frame {:?}",
        classes.iter().position(|c| *c != Some(0))
    );

    // A page that never says START_RECORDING: ABORTED, nothing recorded.
    let run = tessera_run(&request("/silent"), &["--await-timeout", "3"]);
    assert_eq!(status(&run), "EGRESS_ABORTED", "{}", run.stderr());
    assert_eq!(
        run.info.as_ref().unwrap()["error"],
        "Start signal not received"
    );
    assert!(media_files(run.dir.path()).is_empty());
}

#[test]
fn two_web_egresses_at_once_keep_to_their_own_page() {
    let _serial = common::shared();
    let a = (["#ff0000", "#00ff00"], 440.0);
    let b = (["#0000ff", "#ffff00"], 660.0);
    let pages = Pages::serve(&[
        ("/a", colour_page(&a.0, a.1, "")),
        ("/b", colour_page(&b.0, b.1, "")),
    ]);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let children: Vec<_> = ["/a", "/b"]
        .iter()
        .zip(&dirs)
        .map(|(path, dir)| {
            let request = format!(
                r#"{{"url": "{}", {SIZE}, "file_outputs": [{{"filepath": "page.mp4"}}]}}"#,
                pages.url(path)
            );
            spawn_run(&request, dir.path(), &["--duration", "5"])
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for ((colours, tone), other_tone, dir) in [(a, b.1, &dirs[0]), (b, a.1, &dirs[1])] {
        let mp4 = dir.path().join("out/page.mp4");
        let frames = frame_colours(&mp4);
        let mine = classify(&frames, &colours);
        assert!(
            mine.iter().all(Option::is_some),
            "{mp4:?}: a frame not of its own page at {:?}",
            mine.iter().position(Option::is_none)
        );
        assert!(mine.contains(&Some(0)) && mine.contains(&Some(1)));
        let (l, _) = audio_stereo(&mp4);
        let ratio = tone_ratio(&l[24_000..], tone, other_tone);
        assert!(
            ratio > 1000.0,
            "{mp4:?}: own tone {tone} Hz only {ratio} times the other's"
        );
    }
}

#[test]
fn a_custom_template_gets_url_token_and_layout() {
    let _serial = common::shared();
    let template = r#"<!doctype html><html><body style="background:#204080;color:#fff">
<div id="q"></div><script>
const q = new URLSearchParams(location.search);
document.getElementById('q').textContent = q.get('url') + ' ' + q.get('layout');
fetch('/report?' + location.search.slice(1)).then(() => {
  console.log('START_RECORDING');
  setTimeout(() => console.log('END_RECORDING'), 1500);
});
</script></body></html>"#;
    let pages = Pages::serve(&[("/template/", template.to_owned())]);
    let (key, secret) = ("APItemplate", "a-template-secret-long-enough-for-hs256");
    let ws_url = "ws://127.0.0.1:7999";
    let request = format!(
        r#"{{"room_name": "tpl-room", "layout": "speaker-dark", "custom_base_url": "{}", {SIZE},
            "file_outputs": [{{"filepath": "tpl.mp4"}}]}}"#,
        pages.url("/template/")
    );
    let run = tessera_run(
        &request,
        &["--url", ws_url, "--api-key", key, "--api-secret", secret],
    );
    assert_eq!(status(&run), "EGRESS_COMPLETE", "{}", run.stderr());
    let info = run.info.as_ref().unwrap();
    let reports = pages.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let query: Vec<(String, String)> = url::form_urlencoded::parse(reports[0].as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k} in {query:?}"))
    };
    assert_eq!(get("url"), ws_url);
    assert_eq!(get("layout"), "speaker-dark");
    let claims = livekit_api::access_token::TokenVerifier::with_api_key(key, secret)
        .verify(&get("token"))
        .expect("the token is signed with the API secret");
    assert_eq!(claims.sub, info["egress_id"].as_str().unwrap());
    assert_eq!(claims.kind, "egress");
    assert_eq!(claims.video.room, "tpl-room");
    assert!(claims.video.room_join && claims.video.hidden && claims.video.recorder);
    assert_eq!(claims.video.can_publish, Some(false));
    // The token travels in the page's URL: it lives as long as the egress may (here: the
    // start wait and the 10 min a page has to join), never in a log line.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let lifetime = claims.exp as i64 - now;
    assert!(
        (0..=11 * 60 + 30).contains(&lifetime),
        "the template's token lives {lifetime} s"
    );
    assert!(
        !run.stderr().contains(&get("token")),
        "the token was logged:\n{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("token={redacted}"),
        "{}",
        run.stderr()
    );
    let mp4 = run.dir.path().join("out/tpl.mp4");
    let duration = num(&ffprobe(&mp4)["format"]["duration"]);
    assert!((1.0..=2.2).contains(&duration), "{duration} s");
    assert_eq!(info["room_name"], "tpl-room");

    // A template that does not load: the error and the log name the page, not its token.
    let request = format!(
        r#"{{"room_name": "tpl-room", "custom_base_url": "{}", {SIZE},
            "file_outputs": [{{"filepath": "gone.mp4"}}]}}"#,
        pages.url("/no-such-template/")
    );
    let run = tessera_run(
        &request,
        &["--url", ws_url, "--api-key", key, "--api-secret", secret],
    );
    assert_eq!(status(&run), "EGRESS_FAILED", "{}", run.stderr());
    let error = run.info.as_ref().unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("HTTP 404") && error.contains("token={redacted}"),
        "{error}"
    );
    assert!(!error.contains("token=ey"), "{error}");
    assert!(!run.stderr().contains("token=ey"), "{}", run.stderr());
}

#[test]
fn pages_that_do_not_load_fail_before_any_file() {
    let _serial = common::shared();
    let pages = Pages::serve(&[]);
    let closed = services::free_tcp_port();
    let tls = SelfSignedTls::start();
    let cases = [
        (pages.url("/missing"), "HTTP 404"),
        (
            format!("http://127.0.0.1:{closed}/"),
            "ERR_CONNECTION_REFUSED",
        ),
        // A certificate nobody vouches for.
        (tls.url(), "ERR_CERT_AUTHORITY_INVALID"),
        // TLS to a plain HTTP server: the handshake fails.
        (format!("https://127.0.0.1:{}/", pages.port()), "ERR_"),
        (
            "http://tessera-test.invalid/".to_owned(),
            "ERR_NAME_NOT_RESOLVED",
        ),
    ];
    for (url, cause) in cases {
        let request =
            format!(r#"{{"url": "{url}", {SIZE}, "file_outputs": [{{"filepath": "x.mp4"}}]}}"#);
        let run = tessera_run(&request, &[]);
        assert_eq!(status(&run), "EGRESS_FAILED", "{url}: {}", run.stderr());
        let error = run.info.as_ref().unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(error.contains(cause), "{url}: {error}");
        assert!(
            media_files(run.dir.path()).is_empty(),
            "{url}: files were made"
        );
    }
    // Not http(s): refused when the request is read, naming the field.
    let run = tessera_run(r#"{"url": "file:///etc/passwd"}"#, &[]);
    assert!(!run.output.status.success());
    assert!(
        run.stderr().contains("url") && run.stderr().contains("http"),
        "{}",
        run.stderr()
    );
}

/// A server on loopback that answers every request with a redirect to `location`.
fn redirect_to(location: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = std::io::Write::write_all(
                &mut s,
                format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
            );
        }
    });
    format!("http://127.0.0.1:{port}/")
}

#[test]
fn pages_cannot_reach_link_local_or_metadata_addresses() {
    let _serial = common::shared();
    // Named in the request: refused when it is read, before any browser starts.
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ] {
        let run = tessera_run(&format!(r#"{{"url": "{url}"}}"#), &[]);
        assert!(!run.output.status.success(), "{url}");
        assert!(
            run.stderr().contains("url") && run.stderr().contains("is not allowed"),
            "{url}: {}",
            run.stderr()
        );
    }
    // Reached through a redirect: the browser refuses the hop, and the egress fails
    // saying so, with no file.
    let redirect = redirect_to("http://169.254.169.254/latest/meta-data/iam/");
    let request =
        format!(r#"{{"url": "{redirect}", {SIZE}, "file_outputs": [{{"filepath": "x.mp4"}}]}}"#);
    let run = tessera_run(&request, &[]);
    assert_eq!(status(&run), "EGRESS_FAILED", "{}", run.stderr());
    let error = run.info.as_ref().unwrap()["error"].as_str().unwrap();
    assert!(error.contains("169.254.169.254 is not allowed"), "{error}");
    assert!(media_files(run.dir.path()).is_empty());
    // A subresource of an allowed page: refused, logged by host, and the page records.
    let page = colour_page(
        &["#00ff00"],
        440.0,
        "const img = new Image(); img.src = 'http://metadata.google.internal/computeMetadata/v1/?x=1';",
    );
    let pages = Pages::serve(&[("/p", page)]);
    let request = format!(
        r#"{{"url": "{}", {SIZE}, "file_outputs": [{{"filepath": "ok.mp4"}}]}}"#,
        pages.url("/p")
    );
    let run = tessera_run(&request, &["--duration", "4"]);
    assert_eq!(status(&run), "EGRESS_COMPLETE", "{}", run.stderr());
    let log = run.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("page request refused") && l.contains("metadata.google.internal")),
        "{log}"
    );
    assert!(
        !log.contains("computeMetadata"),
        "the refused URL's path is not logged"
    );
}

/// `openssl s_server` on loopback with a self-signed certificate.
struct SelfSignedTls {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl SelfSignedTls {
    fn start() -> SelfSignedTls {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let ok = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "openssl req");
        let port = services::free_tcp_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        SelfSignedTls {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }
}

impl Drop for SelfSignedTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pids of processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// The socket inodes process `pid` holds.
fn socket_inodes(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The local addresses (hex, as /proc/net/tcp has them) `pid` listens on over TCP.
fn tcp_listening(pid: u32) -> Vec<String> {
    let inodes = socket_inodes(pid);
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|t| {
            std::fs::read_to_string(t)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]))
                .then(|| f[1].to_owned())
        })
        .collect()
}

/// The X11 socket path the process `pid` (an Xvfb) listens on.
fn x11_socket_of(pid: u32) -> PathBuf {
    let inodes = socket_inodes(pid);
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    table
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 8
                && inodes.iter().any(|i| i == f[6])
                && f[7].starts_with("/tmp/.X11-unix/X"))
            .then(|| PathBuf::from(f[7]))
        })
        .next()
        .expect("the display's socket")
}

/// The first byte of an X server's answer to a connection set-up with `cookie` (or
/// none): 0 refused, 1 accepted.
fn x11_setup(socket: &Path, cookie: Option<&[u8]>) -> u8 {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (name, data): (&[u8], &[u8]) = match cookie {
        Some(c) => (b"MIT-MAGIC-COOKIE-1", c),
        None => (b"", b""),
    };
    let mut setup = vec![b'l', 0, 11, 0, 0, 0];
    setup.extend_from_slice(&(name.len() as u16).to_le_bytes());
    setup.extend_from_slice(&(data.len() as u16).to_le_bytes());
    setup.extend_from_slice(&[0, 0]);
    for part in [name, data] {
        setup.extend_from_slice(part);
        setup.resize(setup.len().next_multiple_of(4), 0);
    }
    s.write_all(&setup).unwrap();
    let mut first = [0u8; 1];
    s.read_exact(&mut first).unwrap();
    first[0]
}

fn kill9(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// Starts a 30 s web egress of a colour page with its web directory in `web_dir`, and
/// waits until its MP4 holds a few seconds.
fn start_long(pages: &Pages, dir: &Path, web_dir: &Path) -> std::process::Child {
    let request = format!(
        r#"{{"url": "{}", {SIZE}, "file_outputs": [{{"filepath": "long.mp4"}}]}}"#,
        pages.url("/long")
    );
    std::fs::write(dir.join("request.json"), request).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["run", "--duration", "30", "--out"])
        .arg(dir.join("out"))
        .arg(dir.join("request.json"))
        .env("TESSERA_WEB_DIR", web_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let file = dir.join("out/long.mp4");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&file).map_or(0, |m| m.len()) < 60_000 {
        assert!(Instant::now() < deadline, "the recording never grew");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    child
}

#[test]
fn a_killed_browser_fails_the_egress_and_keeps_the_recording() {
    let _serial = common::shared();
    let pages = Pages::serve(&[("/long", colour_page(&["#ff0000", "#0000ff"], 440.0, ""))]);
    let dir = tempfile::tempdir().unwrap();
    let web_dir = tempfile::tempdir().unwrap();
    let child = start_long(&pages, dir.path(), web_dir.path());
    // The egress's display admits only holders of the web root's cookie.
    let auth = web_dir.path().join("xauthority");
    let xvfb = processes_mentioning(&format!("-auth\0{}", auth.display()));
    assert_eq!(xvfb.len(), 1, "one Xvfb with the authority file");
    let socket = x11_socket_of(xvfb[0]);
    assert_eq!(
        x11_setup(&socket, None),
        0,
        "a client without the cookie is refused"
    );
    let cookie = std::fs::read(&auth).unwrap();
    assert_eq!(
        x11_setup(&socket, Some(&cookie[28..44])),
        1,
        "with it, admitted"
    );
    let marker = format!("--user-data-dir={}", web_dir.path().display());
    // DevTools goes over a pipe: no process of the egress listens on TCP.
    for pid in processes_mentioning(&web_dir.path().display().to_string()) {
        assert!(
            tcp_listening(pid).is_empty(),
            "{pid} listens on {:?}",
            tcp_listening(pid)
        );
    }
    let browsers: Vec<u32> = processes_mentioning(&marker)
        .into_iter()
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !String::from_utf8_lossy(&cmd).contains("--type=")
        })
        .collect();
    assert!(!browsers.is_empty(), "no browser found");
    for pid in browsers {
        kill9(pid);
    }
    let out = child.wait_with_output().unwrap();
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(info["status"], "EGRESS_FAILED", "{stderr}");
    assert!(
        info["error"].as_str().unwrap().contains("browser"),
        "{}",
        info["error"]
    );
    let mp4 = dir.path().join("out/long.mp4");
    let recorded = num(&ffprobe(&mp4)["format"]["duration"]);
    assert!(recorded >= 2.0, "kept {recorded} s");
    assert!(num(&info["file_results"][0]["duration"]) / 1e9 >= 2.0);
    // Everything the egress started is gone, and its directory with it.
    assert!(processes_mentioning(&web_dir.path().display().to_string()).is_empty());
    let left: Vec<_> = std::fs::read_dir(web_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        left,
        ["xauthority"],
        "only the displays' authority file stays"
    );
}

#[test]
fn what_a_killed_tessera_left_is_cleaned_up() {
    let _serial = common::shared();
    let pages = Pages::serve(&[("/long", colour_page(&["#ff0000", "#0000ff"], 440.0, ""))]);
    let dir = tempfile::tempdir().unwrap();
    let web_dir = tempfile::tempdir().unwrap();
    let mut child = start_long(&pages, dir.path(), web_dir.path());
    let egress_dirs: Vec<PathBuf> = std::fs::read_dir(web_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(egress_dirs.len(), 1);
    let recorded: Vec<u32> = std::fs::read_to_string(egress_dirs[0].join("children"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(recorded.len(), 3, "display, sound server and browser");
    child.kill().unwrap();
    child.wait().unwrap();
    // The processes do not outlive tessera (the kernel's parent-death signal)...
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<u32> = recorded
            .iter()
            .copied()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
            })
            .collect();
        if left.is_empty() && processes_mentioning(&web_dir.path().display().to_string()).is_empty()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running after the kill: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // ...and the next start removes what is left on disk.
    assert!(egress_dirs[0].exists());
    let mp4 = dir.path().join("out/long.mp4");
    assert!(
        num(&ffprobe(&mp4)["format"]["duration"]) >= 1.0,
        "the killed recording plays"
    );
    let request = format!(
        r#"{{"url": "{}", {SIZE}, "file_outputs": [{{"filepath": "x.mp4"}}]}}"#,
        pages.url("/missing")
    );
    let run = tessera_run_env(
        &request,
        &[],
        &[("TESSERA_WEB_DIR", web_dir.path().to_str().unwrap())],
    );
    assert_eq!(status(&run), "EGRESS_FAILED");
    assert!(
        !egress_dirs[0].exists(),
        "the leftover directory is still there"
    );
    assert!(run.stderr().contains("left behind"), "{}", run.stderr());
}

#[test]
fn update_layout_reaches_a_template_as_its_participant_metadata() {
    use common::livekit::{API_KEY, API_SECRET, LiveKit, Publisher};
    use std::io::Write;
    let _serial = common::shared();
    let lk = LiveKit::start();
    let template = r#"<!doctype html><html><body style="background:#402010"><script>
fetch('/report?' + location.search.slice(1)).then(() => console.log('START_RECORDING'));
</script></body></html>"#;
    let pages = Pages::serve(&[("/t", template.to_owned())]);
    let request = format!(
        r#"{{"room_name": "layout-room", "layout": "speaker", "custom_base_url": "{}", {SIZE},
            "file_outputs": [{{"filepath": "t.mp4"}}]}}"#,
        pages.url("/t")
    );
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = lk.run_args();
    args.extend(["--duration".into(), "12".into(), "--control-stdin".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = spawn_run(&request, dir.path(), &args);
    let reports = pages.wait_reports(1, Duration::from_secs(30));
    assert_eq!(reports.len(), 1, "the template never loaded");
    let token = url::form_urlencoded::parse(reports[0].as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let claims = livekit_api::access_token::TokenVerifier::with_api_key(API_KEY, API_SECRET)
        .verify(&token)
        .unwrap();
    // The template's own connection to the room, as LiveKit's template SDK makes it with
    // that token: a participant whose identity is the egress id.
    let egress_id = claims.sub.clone();
    let _page_participant = Publisher::start(&lk, "layout-room", &egress_id, &["--no-video"]);
    let stdin = child.stdin.as_mut().unwrap();
    writeln!(stdin, r#"{{"layout": "grid-dark"}}"#).unwrap();
    stdin.flush().unwrap();
    // livekit-server now holds the metadata the template SDK listens to.
    let admin = livekit_api::access_token::AccessToken::with_api_key(API_KEY, API_SECRET)
        .with_grants(livekit_api::access_token::VideoGrants {
            room_admin: true,
            room: "layout-room".into(),
            ..Default::default()
        })
        .to_jwt()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let metadata = loop {
        let out = Command::new("curl")
            .args(["-s", "-X", "POST", "-H", "Content-Type: application/json"])
            .arg("-H")
            .arg(format!("Authorization: Bearer {admin}"))
            .args(["-d", r#"{"room":"layout-room"}"#])
            .arg(format!(
                "http://127.0.0.1:{}/twirp/livekit.RoomService/ListParticipants",
                lk.port
            ))
            .output()
            .unwrap();
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let metadata = list["participants"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["identity"] == egress_id.as_str())
            .and_then(|p| p["metadata"].as_str())
            .unwrap_or_default()
            .to_owned();
        if !metadata.is_empty() || Instant::now() > deadline {
            break metadata;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let meta: Value = serde_json::from_str(&metadata).unwrap_or_default();
    assert_eq!(meta["layout"], "grid-dark", "metadata {metadata:?}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("update_layout: grid-dark"), "{stderr}");
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["status"], "EGRESS_COMPLETE", "{stderr}");
    // EGRESS_SOURCE_TYPE_WEB is the enum's zero: proto3 JSON leaves it out.
    assert!(
        info.get("source_type")
            .is_none_or(|t| t == "EGRESS_SOURCE_TYPE_WEB"),
        "{}",
        info["source_type"]
    );
}
