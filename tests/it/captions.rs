//! Captions and the speaker timeline from a real room: LiveKit's Python SDK publishes two
//! participants' tones and sends transcriptions (text streams on `lk.transcription`, one
//! interim later finalised; an agent's older `Transcription` packet); the recording's
//! WebVTT sidecar is parsed as a player would, and `{egress_id}.speakers.json` is
//! compared with who was sending tone when.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::common::livekit::{LiveKit, Publisher, media_clock_start_ms};
use crate::common::{self, spawn_run, tessera_run};

/// The LiveKit source's playout delay: what was captured at wall time `W` is at media
/// time `W - t0 + PLAYOUT` of the recording (and a transcription sent at `W` with it).
const PLAYOUT: f64 = 0.3;

/// One cue as a player reads it.
#[derive(Debug)]
struct Cue {
    start: f64,
    end: f64,
    voice: String,
    text: String,
}

fn seconds(ts: &str) -> f64 {
    let parts: Vec<f64> = ts.trim().split(':').map(|p| p.parse().unwrap()).collect();
    parts.iter().fold(0.0, |acc, p| acc * 60.0 + p)
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A minimal WebVTT reader: the header, then blocks of an optional id, a timing line and
/// text lines (`<v Name>` voice spans).
fn parse_webvtt(text: &str) -> Vec<Cue> {
    assert!(text.starts_with("WEBVTT"), "{text}");
    let mut cues = Vec::new();
    for block in text.split("\n\n").skip(1) {
        let lines: Vec<&str> = block.lines().collect();
        let Some(at) = lines.iter().position(|l| l.contains("-->")) else {
            continue;
        };
        let (a, b) = lines[at].split_once("-->").unwrap();
        let body = lines[at + 1..].join("\n");
        let (voice, text) = match body.strip_prefix("<v ") {
            Some(rest) => {
                let (v, t) = rest.split_once('>').expect("voice span closes");
                (unescape(v), unescape(t))
            }
            None => (String::new(), unescape(&body)),
        };
        cues.push(Cue {
            start: seconds(a),
            end: seconds(b.split_whitespace().next().unwrap()),
            voice,
            text,
        });
    }
    cues
}

/// The `filename` of each entry of a JSON list (file results, manifest files).
fn filenames(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

const W: u32 = 640;
const H: u32 = 360;

/// Pixels inside `band` (x0, y0, x1, y1) where `b` differs from `a` by more than 60 on
/// some channel.
fn changed(a: &[u8], b: &[u8], band: (u32, u32, u32, u32)) -> usize {
    let (x0, y0, x1, y1) = band;
    let mut n = 0;
    for y in y0..y1 {
        for x in x0..x1 {
            let i = ((y * W + x) * 3) as usize;
            if (0..3).any(|c| (a[i + c] as i32 - b[i + c] as i32).abs() > 60) {
                n += 1;
            }
        }
    }
    n
}

/// Every cue is drawn in the grid layout's caption region while it shows, and nothing
/// is once the last has gone: the region (its middle, where the centred lines are)
/// changes from the frame before the first cue while each cue shows, and is back after
/// the last. The rest of the picture changes on its own (the speaker's highlight), so
/// only the region is compared, and a band above it shows no caption is drawn there.
fn burned_in(mp4: &Path, cues: &[Cue]) {
    // grid.toml: area = [0.05, 0.75, 0.9, 0.22] inside a padding of 0.01 of the height.
    let region = (W * 25 / 100, H * 80 / 100, W * 75 / 100, H * 96 / 100);
    let above = (W * 25 / 100, H * 40 / 100, W * 75 / 100, H * 56 / 100);
    let frame = |t: f64| common::frame_rgb(mp4, t, W, H);
    let before = frame(cues[0].start - 0.4);
    for c in cues {
        let during = frame(c.start + 0.3);
        let (inside, outside) = (
            changed(&before, &during, region),
            changed(&before, &during, above),
        );
        eprintln!(
            "{:?} at {:.2} s: {inside} pixels changed in the region, {outside} above",
            c.text, c.start
        );
        assert!(
            inside > 1500,
            "{:?}: caption drawn ({inside} pixels)",
            c.text
        );
        assert!(
            outside < inside / 5,
            "{:?}: drawn above its region ({outside})",
            c.text
        );
    }
    let last = cues.iter().map(|c| c.end).fold(0.0, f64::max);
    let gone = changed(&before, &frame(last + 0.4), region);
    assert!(
        gone < 400,
        "captions gone after the last cue ({gone} pixels differ)"
    );
}

/// The MP4's audio: the mix first (named `mix`), then one track per participant who
/// sent sound (named by identity, language `und`), each spanning the recording; each
/// participant's tone is in their own track only; the late speaker's track is silent
/// before they spoke. Bob speaks from `bob_from` to `bob_until` (recording seconds).
fn isolated_tracks(file: &Path, who: &[(&str, f64)], bob_from: f64, bob_until: f64) {
    let probe = common::ffprobe(file);
    let audio: Vec<&Value> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == "audio")
        .collect();
    let names: Vec<&str> = audio
        .iter()
        .map(|s| s["tags"]["handler_name"].as_str().unwrap())
        .collect();
    let mut want = vec!["mix"];
    want.extend(who.iter().map(|(w, _)| *w));
    assert_eq!(names, want, "track names");
    let video = common::num(&common::stream(&probe, "video")["duration"]);
    for s in &audio {
        assert_eq!(s["tags"]["language"], "und");
        let d = common::num(&s["duration"]);
        assert!(
            (d - video).abs() < 0.15,
            "{} spans the recording: {d} s vs {video} s",
            s["tags"]["handler_name"]
        );
    }
    // While both speak, each track holds its own tone and not the other's.
    let span =
        |x: &[f32], a: f64, b: f64| x[(a * 48_000.0) as usize..(b * 48_000.0) as usize].to_vec();
    for (k, (name, hz)) in who.iter().enumerate() {
        let track = span(
            &common::audio_stream_mono(file, &format!("0:a:{}", k + 1)),
            bob_from + 0.5,
            bob_until - 0.5,
        );
        let own = common::goertzel(&track, *hz, 48_000.0);
        for (other, other_hz) in who.iter().filter(|(n, _)| n != name) {
            let leak = common::goertzel(&track, *other_hz, 48_000.0);
            eprintln!("{name}'s track: own tone {own:e}, {other}'s {leak:e}");
            assert!(
                own > 1000.0 * leak.max(1e-12),
                "{other}'s tone in {name}'s track"
            );
        }
    }
    let bob = common::audio_stream_mono(file, "0:a:2");
    let before: f32 = span(&bob, 0.2, bob_from - 0.5)
        .iter()
        .map(|s| s.abs())
        .fold(0.0, f32::max);
    assert!(
        before < 0.01,
        "bob's track is silent before he speaks (peak {before})"
    );
}

/// An HLS master's alternative audio as FFmpeg's HLS reader finds it: the mix and one
/// rendition per speaker (named by identity, `und`), each spanning the recording (a late
/// speaker's silence included) and holding its own tone, not the other's, while both
/// speak (`both`, recording seconds).
fn hls_alternative_audio(master: &Path, who: &[(&str, f64)], both: (f64, f64)) {
    let text = std::fs::read_to_string(master).unwrap();
    let groups: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .collect();
    assert_eq!(groups.len(), 1 + who.len(), "{text}");
    assert!(groups[0].contains("NAME=\"mix\"") && groups[0].contains("DEFAULT=YES"));
    assert!(text.contains("AUDIO=\"voices\""), "{text}");
    let probe = common::ffprobe(master);
    let streams = probe["streams"].as_array().unwrap();
    let length = common::num(&probe["format"]["duration"]);
    for (name, hz) in who {
        let s = streams
            .iter()
            .find(|s| s["tags"]["comment"] == *name)
            .unwrap_or_else(|| panic!("{name}'s rendition in {probe}"));
        let pcm = common::audio_stream_mono(master, &format!("0:{}", s["index"]));
        let got = pcm.len() as f64 / 48_000.0;
        assert!(
            (got - length).abs() < 0.15,
            "{name}: {got:.3} s of {length:.3} s"
        );
        let span = &pcm[((both.0 + 0.5) * 48_000.0) as usize..((both.1 - 0.5) * 48_000.0) as usize];
        let own = common::goertzel(span, *hz, 48_000.0);
        for (other, other_hz) in who.iter().filter(|(n, _)| n != name) {
            let leak = common::goertzel(span, *other_hz, 48_000.0);
            assert!(
                own > 1000.0 * leak.max(1e-12),
                "{other}'s tone in {name}'s HLS rendition"
            );
        }
    }
}

/// The lines of a playlist that are URIs.
fn uris(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The captions of an HLS output as a player finds them: the master's subtitles rendition
/// (named by every stream), its playlist, each WebVTT segment with its `X-TIMESTAMP-MAP`
/// turned onto the media segments' clock (the first media segment's start is time 0);
/// a cue repeated across segments counts once.
fn hls_cues(dir: &Path) -> Vec<Cue> {
    let master = std::fs::read_to_string(dir.join("talk.m3u8")).unwrap();
    let media = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES"))
        .unwrap_or_else(|| panic!("no subtitles in {master}"));
    let group = media
        .split("GROUP-ID=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let uri = media
        .split("URI=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        master.contains(&format!("SUBTITLES=\"{group}\"")),
        "streams name the group: {master}"
    );
    let stream = &uris(&master)[0];
    let first_ts = &uris(&std::fs::read_to_string(dir.join(stream)).unwrap())[0];
    let start = common::ffprobe(&dir.join(first_ts))["format"]["start_time"]
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap();
    let list = std::fs::read_to_string(dir.join(uri)).unwrap();
    assert!(list.ends_with("#EXT-X-ENDLIST\n"), "{list}");
    let mut cues: Vec<Cue> = Vec::new();
    for seg in uris(&list) {
        let text = std::fs::read_to_string(dir.join(&seg)).unwrap();
        let map = text.lines().nth(1).unwrap();
        let mpegts: f64 = map
            .strip_prefix("X-TIMESTAMP-MAP=MPEGTS:")
            .and_then(|m| m.split(',').next())
            .unwrap_or_else(|| panic!("{seg}: {map}"))
            .parse()
            .unwrap();
        assert!(map.ends_with(",LOCAL:00:00:00.000"), "{map}");
        let shift = mpegts / 90_000.0 - start;
        for mut c in parse_webvtt(&text) {
            c.start += shift;
            c.end += shift;
            if !cues.iter().any(|k| k.start == c.start && k.text == c.text) {
                cues.push(c);
            }
        }
    }
    cues
}

#[test]
fn transcriptions_become_captions_and_levels_a_speaker_timeline() {
    let _g = common::exclusive();
    let lk = LiveKit::start();
    let room = "captions";
    // The recorder first, so every transcription falls inside the recording.
    let request = format!(
        r#"{{"room_name": "{room}", "layout": "grid",
            "advanced": {{"width": {W}, "height": {H}, "framerate": 25}},
            "file_outputs": [{{"filepath": "talk.ogg"}}, {{"filepath": "talk.mp4"}}],
            "segment_outputs": [{{"filename_prefix": "hls/talk", "playlist_name": "hls/talk.m3u8",
                                  "segment_duration": 2}}],
            "captions": {{"webvtt": true, "burn_in": true}}, "isolated_audio": true}}"#
    );
    let dir = tempfile::tempdir().unwrap();
    let args = lk.run_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = spawn_run(
        &request,
        dir.path(),
        &[&args[..], &["--duration", "17"]].concat(),
    );
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    // Everyone joins first (so the picture only changes for the captions): Bob, whose
    // microphone is muted but for 5–9 s after joining; an agent whose older Transcription
    // packet transcribes him (naming his track: the SDKs need one); then Alice.
    let mut bob = Publisher::start(
        &lk,
        room,
        "bob",
        &[
            "--no-video",
            "--tone",
            "880",
            "--start-muted",
            "--at",
            "5:unmute-audio",
            "--at",
            "9:mute-audio",
        ],
    );
    let bob_mic = bob.track("microphone");
    let mut agent = Publisher::start(
        &lk,
        room,
        "agent-1",
        &[
            "--kind",
            "agent",
            "--no-video",
            "--no-audio",
            "--transcribed",
            "bob",
            "--transcribed-track",
            &bob_mic,
            "--legacy-caption",
            "6|SG_2|final|bob's words",
        ],
    );
    // Alice speaks from the start and pauses 6–10 s after joining; her captions are text
    // streams for her microphone, the first one interim, then finalised.
    let mut alice = Publisher::start(
        &lk,
        room,
        "alice",
        &[
            "--name",
            "Alice Liddell",
            "--no-video",
            "--tone",
            "440",
            "--at",
            "6:mute-audio",
            "--at",
            "10:unmute-audio",
            "--caption",
            "4|SG_1|interim|hello wor",
            "--caption",
            "5|SG_1|final|hello world",
            "--caption",
            "11|SG_3|final|a <b> & c",
        ],
    );
    let status = child.wait().unwrap();
    let log = log.join().unwrap();
    assert!(status.success(), "{log}");
    let info: Value = serde_json::from_slice(&{
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        out
    })
    .expect("EgressInfo on stdout");
    let t0 = media_clock_start_ms(&log);
    let at = |p: &mut Publisher, name: &str| (p.action_ms(name) - t0) as f64 / 1000.0 + PLAYOUT;

    // The sidecar: beside the file, in the results and the manifest.
    let out = dir.path().join("out");
    let vtt = out.join("talk.vtt");
    let results = filenames(&info["file_results"]);
    // Two files, two sidecars: the second takes its file's whole name.
    assert_eq!(
        results,
        ["talk.ogg", "talk.mp4", "talk.vtt", "talk.mp4.vtt"],
        "{info}"
    );
    assert_eq!(
        std::fs::read(&vtt).unwrap(),
        std::fs::read(out.join("talk.mp4.vtt")).unwrap()
    );
    let egress_id = info["egress_id"].as_str().unwrap();
    let manifest = read_json(&out.join(format!("{egress_id}.json")));
    let listed = filenames(&manifest["files"]);
    assert_eq!(
        listed,
        ["talk.ogg", "talk.mp4", "talk.vtt", "talk.mp4.vtt"],
        "{manifest}"
    );

    let cues = parse_webvtt(&std::fs::read_to_string(&vtt).unwrap());
    eprintln!("cues: {cues:?}");
    let expected = [
        (
            "Alice Liddell",
            "hello world",
            at(&mut alice, "caption:SG_1"),
        ),
        ("bob", "bob's words", at(&mut agent, "caption:SG_2")),
        ("Alice Liddell", "a <b> & c", at(&mut alice, "caption:SG_3")),
    ];
    assert_eq!(cues.len(), expected.len(), "{cues:?}");
    for (cue, (voice, text, sent)) in cues.iter().zip(expected) {
        assert_eq!((cue.voice.as_str(), cue.text.as_str()), (voice, text));
        assert!(
            (cue.start - sent).abs() <= 0.25,
            "{text}: cue at {:.3} s, sent at {sent:.3} s",
            cue.start
        );
        assert!(cue.end > cue.start + 1.0, "{cue:?}");
    }

    // Burned in: the caption region changes while a cue shows, and only then.
    burned_in(&out.join("talk.mp4"), &cues);

    // Each speaker's own track in the MP4, after the mix, in the order first heard.
    isolated_tracks(
        &out.join("talk.mp4"),
        &[("alice", 440.0), ("bob", 880.0)],
        at(&mut bob, "unmute-audio"),
        at(&mut bob, "mute-audio"),
    );

    // Chapters at the changes of speaker that last: Alice, Bob while she pauses, Alice.
    let chapters = common::tool(
        "ffprobe",
        [
            "-show_chapters",
            "-of",
            "json",
            out.join("talk.mp4").to_str().unwrap(),
        ],
    );
    let chapters: Value = serde_json::from_slice(&chapters).unwrap();
    let got: Vec<(f64, &str)> = chapters["chapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                common::num(&c["start_time"]),
                c["tags"]["title"].as_str().unwrap(),
            )
        })
        .collect();
    eprintln!("chapters: {got:?}");
    let titles: Vec<&str> = got.iter().map(|c| c.1).collect();
    assert_eq!(titles, ["Alice Liddell", "bob", "Alice Liddell"]);
    assert_eq!(got[0].0, 0.0);
    let (paused, resumed) = (at(&mut alice, "mute-audio"), at(&mut alice, "unmute-audio"));
    assert!(
        got[1].0 > paused && got[1].0 < paused + 1.0,
        "bob's chapter at {}",
        got[1].0
    );
    assert!(
        got[2].0 > resumed && got[2].0 < resumed + 1.0,
        "alice's at {}",
        got[2].0
    );

    // HLS: each speaker's track is alternative audio beside the mix.
    hls_alternative_audio(
        &out.join("hls/talk.m3u8"),
        &[("alice", 440.0), ("bob", 880.0)],
        (at(&mut bob, "unmute-audio"), at(&mut bob, "mute-audio")),
    );

    // HLS: the master names a subtitles rendition; a player reads its segments.
    let from_hls = hls_cues(&out.join("hls"));
    let sidecar: Vec<_> = cues.iter().map(|c| (c.start, c.end, &c.text)).collect();
    let segmented: Vec<_> = from_hls.iter().map(|c| (c.start, c.end, &c.text)).collect();
    assert_eq!(segmented, sidecar);

    // Who spoke when, within 300 ms of who was sending tone.
    let speakers = read_json(&out.join(format!("{egress_id}.speakers.json")));
    assert_eq!(
        manifest["speakers"].as_str(),
        Some(
            out.join(format!("{egress_id}.speakers.json"))
                .to_str()
                .unwrap()
        )
    );
    let intervals = |who: &str| -> Vec<(f64, f64)> {
        let s = speakers["speakers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["identity"] == who)
            .unwrap_or_else(|| panic!("{who} in {speakers}"));
        s["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["start"].as_f64().unwrap(), i["end"].as_f64().unwrap()))
            .collect()
    };
    let end = speakers["duration_s"].as_f64().unwrap();
    let alice_got = intervals("alice");
    let bob_got = intervals("bob");
    eprintln!("alice {alice_got:?}, bob {bob_got:?}");
    let close = |got: f64, want: f64, what: &str| {
        assert!(
            (got - want).abs() <= 0.3,
            "{what}: {got:.3} s, expected {want:.3} s"
        );
    };
    assert_eq!(alice_got.len(), 2, "{alice_got:?}");
    close(alice_got[0].1, at(&mut alice, "mute-audio"), "alice pauses");
    close(
        alice_got[1].0,
        at(&mut alice, "unmute-audio"),
        "alice resumes",
    );
    close(alice_got[1].1, end, "alice speaks to the end");
    assert_eq!(bob_got.len(), 1, "{bob_got:?}");
    close(bob_got[0].0, at(&mut bob, "unmute-audio"), "bob starts");
    close(bob_got[0].1, at(&mut bob, "mute-audio"), "bob stops");
    assert!(
        speakers["speakers"].as_array().unwrap().len() == 2,
        "the agent never spoke"
    );
}

#[test]
fn captions_are_refused_where_there_is_no_room_of_our_own() {
    let _g = common::shared();
    let cases = [
        (
            r#"{"url": "https://example.com", "file_outputs": [{"filepath": "a.mp4"}], "captions": {"webvtt": true}}"#,
            "captions",
        ),
        (
            r#"{"room_name": "r", "track_id": "TR_x", "file": {"filepath": "a.ogg"}, "speaker_timeline": true}"#,
            "speaker_timeline",
        ),
        (
            r#"{"room_name": "r", "file_outputs": [{"filepath": "a.mp4"}], "captions": {"webvtt": "yes"}}"#,
            "captions.webvtt",
        ),
        (
            r#"{"room_name": "r", "stream_outputs": [{"urls": ["rtmp://127.0.0.1/live/k"]}], "captions": {"webvtt": true}}"#,
            "captions.webvtt",
        ),
        (
            r#"{"room_name": "r", "file_outputs": [{"filepath": "a.ogg"}], "isolated_audio": true}"#,
            "isolated_audio",
        ),
        (
            r#"{"room_name": "r", "video_only": true, "file_outputs": [{"filepath": "a.mp4"}], "isolated_audio": true}"#,
            "isolated_audio",
        ),
    ];
    for (request, field) in cases {
        let run = tessera_run(request, &[]);
        assert!(!run.output.status.success(), "{request}");
        let log = run.stderr();
        assert!(log.contains(field), "{field} named in: {log}");
    }
}
