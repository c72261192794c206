//! LiveKit's lenient reading of a start request, for operators migrating scripts that
//! relied on it (the worker's `tessera.lenient: true`). Pure.
//!
//! By default tessera refuses, naming the field, what LiveKit's egress quietly turns into
//! something else: a preset number it does not know (LiveKit records H264_720P_30), a path
//! that climbs out of its directory (LiveKit cleans it and drops the leading `../`), an
//! unknown layout name (LiveKit's default template draws a grid). Refusing is the default
//! because each of these is almost always a mistake that LiveKit turns into a recording the
//! user did not ask for (another size, another place, another look), found only afterwards.
//! With the option on, the request is rewritten here, before planning, exactly as LiveKit
//! would read it, and every change is returned so the worker can log it.

use livekit_protocol as lk;

use super::rpc::start_egress_request::Request;
use crate::layout::LayoutLibrary;

/// One change made to a request: the field and what it became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjustment {
    /// The request field (`preset`, `file_outputs[0].filepath`, `layout`).
    pub field: String,
    /// What was given.
    pub given: String,
    /// What is used instead.
    pub used: String,
}

/// LiveKit's `clean` of a storage path: `path.Clean`, then every leading `../` dropped;
/// `""`, `"."` and `".."` become empty (the default name); a trailing `/` (a directory for
/// a generated name) is kept.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let trailing = path.ends_with('/');
    let absolute = path.starts_with('/');
    // path.Clean: `.` and empty parts go, `..` takes back a part (at the root, nothing).
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            p => parts.push(p),
        }
    }
    // Then LiveKit drops what still climbs out.
    let kept: Vec<&str> = parts.into_iter().skip_while(|p| *p == "..").collect();
    if kept.is_empty() {
        return if absolute { "/".into() } else { String::new() };
    }
    let mut cleaned = kept.join("/");
    if absolute {
        cleaned.insert(0, '/');
    }
    if trailing {
        cleaned.push('/');
    }
    cleaned
}

/// Collects the changes of one request.
struct Relaxer<'a> {
    layouts: &'a LayoutLibrary,
    changes: Vec<Adjustment>,
}

impl Relaxer<'_> {
    fn note(&mut self, field: String, given: String, used: String) {
        self.changes.push(Adjustment { field, given, used });
    }

    fn path(&mut self, field: String, path: &mut String) {
        // Only a path tessera would refuse is touched (one that climbs out).
        if !crate::request::naming::escapes(path) {
            return;
        }
        let cleaned = clean_path(path);
        self.note(field, path.clone(), cleaned.clone());
        *path = cleaned;
    }

    fn preset(&mut self, field: &str, preset: &mut i32) {
        if lk::EncodingOptionsPreset::try_from(*preset).is_err() {
            let used = lk::EncodingOptionsPreset::H264720p30;
            self.note(
                field.into(),
                preset.to_string(),
                used.as_str_name().to_owned(),
            );
            *preset = used as i32;
        }
    }

    /// A layout name the library does not know, on a request drawn by tessera's own
    /// layouts (not a custom template's page): LiveKit's template draws a grid, light when
    /// the name ends in `-light`.
    fn layout(&mut self, field: &str, layout: &mut String, custom_base_url: &str) {
        if !custom_base_url.is_empty() || self.layouts.resolve(layout).is_ok() {
            return;
        }
        let used = if layout.ends_with("-light") {
            "grid-light"
        } else {
            "grid"
        };
        self.note(field.into(), layout.clone(), used.into());
        *layout = used.into();
    }

    fn file(&mut self, field: &str, f: &mut lk::EncodedFileOutput) {
        self.path(format!("{field}.filepath"), &mut f.filepath);
    }

    fn segments(&mut self, field: &str, s: &mut lk::SegmentedFileOutput) {
        self.path(format!("{field}.filename_prefix"), &mut s.filename_prefix);
        self.path(format!("{field}.playlist_name"), &mut s.playlist_name);
        self.path(
            format!("{field}.live_playlist_name"),
            &mut s.live_playlist_name,
        );
    }

    fn images(&mut self, field: &str, i: &mut lk::ImageOutput) {
        self.path(format!("{field}.filename_prefix"), &mut i.filename_prefix);
    }
}

/// The v1 requests' shared lists: files, segments, images.
macro_rules! relax_lists {
    ($r:expr, $req:expr) => {{
        for (i, f) in $req.file_outputs.iter_mut().enumerate() {
            $r.file(&format!("file_outputs[{i}]"), f);
        }
        for (i, s) in $req.segment_outputs.iter_mut().enumerate() {
            $r.segments(&format!("segment_outputs[{i}]"), s);
        }
        for (i, im) in $req.image_outputs.iter_mut().enumerate() {
            $r.images(&format!("image_outputs[{i}]"), im);
        }
    }};
}

/// A v1 request's deprecated single output (`$module` is the request's nested module).
macro_rules! relax_deprecated {
    ($r:expr, $output:expr, $module:ident) => {{
        use livekit_protocol::$module::Output as O;
        #[allow(deprecated)]
        match &mut $output {
            Some(O::File(f)) => $r.file("file", f),
            Some(O::Segments(s)) => $r.segments("segments", s),
            Some(O::Stream(_)) | None => {}
        }
    }};
}

/// A v1 request's preset (`$module` is the request's nested module).
macro_rules! relax_preset {
    ($r:expr, $options:expr, $module:ident) => {{
        if let Some(livekit_protocol::$module::Options::Preset(p)) = &mut $options {
            $r.preset("preset", p);
        }
    }};
}

/// Rewrites `req` as LiveKit's egress would read it; returns what changed (nothing for a
/// request tessera takes as it is).
pub fn relax(req: &mut Request, layouts: &LayoutLibrary) -> Vec<Adjustment> {
    let mut r = Relaxer {
        layouts,
        changes: Vec::new(),
    };
    match req {
        Request::RoomComposite(q) => {
            r.layout("layout", &mut q.layout, &q.custom_base_url);
            relax_preset!(r, q.options, room_composite_egress_request);
            relax_lists!(r, q);
            relax_deprecated!(r, q.output, room_composite_egress_request);
        }
        Request::Web(q) => {
            relax_preset!(r, q.options, web_egress_request);
            relax_lists!(r, q);
            relax_deprecated!(r, q.output, web_egress_request);
        }
        Request::Participant(q) => {
            relax_preset!(r, q.options, participant_egress_request);
            relax_lists!(r, q);
        }
        Request::TrackComposite(q) => {
            relax_preset!(r, q.options, track_composite_egress_request);
            relax_lists!(r, q);
            relax_deprecated!(r, q.output, track_composite_egress_request);
        }
        Request::Track(q) => {
            if let Some(lk::track_egress_request::Output::File(f)) = &mut q.output {
                r.path("file.filepath".into(), &mut f.filepath);
            }
        }
        Request::Egress(q) => relax_v2(&mut r, q),
    }
    r.changes
}

fn relax_v2(r: &mut Relaxer<'_>, q: &mut lk::StartEgressRequest) {
    use lk::output::Config;
    use lk::start_egress_request::{Encoding, Source};
    if let Some(Source::Template(t)) = &mut q.source {
        r.layout("template.layout", &mut t.layout, &t.custom_base_url);
    }
    if let Some(Encoding::Preset(p)) = &mut q.encoding {
        r.preset("preset", p);
    }
    for (i, o) in q.outputs.iter_mut().enumerate() {
        match &mut o.config {
            Some(Config::File(f)) => r.path(format!("outputs[{i}].file.filepath"), &mut f.filepath),
            Some(Config::Segments(s)) => r.segments(&format!("outputs[{i}].segments"), s),
            Some(Config::Images(im)) => r.images(&format!("outputs[{i}].images"), im),
            Some(Config::Stream(_)) | None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::intake;

    #[test]
    fn paths_are_cleaned_as_livekit_cleans_them() {
        let cases = [
            ("../x.mp4", "x.mp4"),
            ("../../a/b.mp4", "a/b.mp4"),
            ("a/../../b.mp4", "b.mp4"),
            ("a/./b/../c.mp4", "a/c.mp4"),
            ("../rec/", "rec/"),
            ("..", ""),
            ("../", ""),
            ("", ""),
            ("plain.mp4", "plain.mp4"),
        ];
        for (given, want) in cases {
            assert_eq!(clean_path(given), want, "{given}");
        }
    }

    fn refused_by_default() -> lk::RoomCompositeEgressRequest {
        lk::RoomCompositeEgressRequest {
            room_name: "r".into(),
            layout: "no-such-light".into(),
            options: Some(lk::room_composite_egress_request::Options::Preset(99)),
            file_outputs: vec![lk::EncodedFileOutput {
                filepath: "../../rec/{room_name}.mp4".into(),
                ..Default::default()
            }],
            segment_outputs: vec![lk::SegmentedFileOutput {
                filename_prefix: "hls/seg".into(),
                playlist_name: "../index.m3u8".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn what_tessera_refuses_is_read_as_livekit_reads_it() {
        let layouts = LayoutLibrary::builtin();
        let mut req = Request::RoomComposite(refused_by_default());
        assert!(intake::plan(&req, &layouts).is_err(), "refused as given");
        let changes = relax(&mut req, &layouts);
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "layout",
                "preset",
                "file_outputs[0].filepath",
                "segment_outputs[0].playlist_name"
            ]
        );
        assert_eq!(changes[0].used, "grid-light");
        assert_eq!(changes[1].used, "H264_720P_30");
        assert_eq!(changes[2].used, "rec/{room_name}.mp4");
        let job = intake::plan(&req, &layouts).expect("planned once relaxed");
        let shape = intake::shape(&job);
        assert_eq!(
            (shape.width, shape.height, shape.framerate),
            (1280, 720, 30)
        );
        // A second pass changes nothing: what is left is what tessera takes.
        assert!(relax(&mut req, &layouts).is_empty());
    }

    #[test]
    fn valid_requests_and_custom_templates_are_left_alone() {
        let layouts = LayoutLibrary::builtin();
        let mut ok = Request::RoomComposite(lk::RoomCompositeEgressRequest {
            room_name: "r".into(),
            layout: "speaker-light".into(),
            options: Some(lk::room_composite_egress_request::Options::Preset(
                lk::EncodingOptionsPreset::H2641080p60 as i32,
            )),
            file_outputs: vec![lk::EncodedFileOutput {
                filepath: "a/../b.mp4".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let before = ok.clone();
        assert!(relax(&mut ok, &layouts).is_empty());
        assert_eq!(ok, before);
        let mut template = Request::RoomComposite(lk::RoomCompositeEgressRequest {
            room_name: "r".into(),
            layout: "my-own-layout".into(),
            custom_base_url: "http://127.0.0.1:1/t".into(),
            ..Default::default()
        });
        assert!(relax(&mut template, &layouts).is_empty());
    }

    #[test]
    fn v2_and_track_requests_are_relaxed_too() {
        let layouts = LayoutLibrary::builtin();
        let mut v2 = Request::Egress(lk::StartEgressRequest {
            room_name: "r".into(),
            source: Some(lk::start_egress_request::Source::Template(
                lk::TemplateSource {
                    layout: "nope".into(),
                    ..Default::default()
                },
            )),
            encoding: Some(lk::start_egress_request::Encoding::Preset(42)),
            outputs: vec![lk::Output {
                config: Some(lk::output::Config::File(lk::FileOutput {
                    filepath: "../v2.mp4".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        });
        let fields: Vec<String> = relax(&mut v2, &layouts)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            ["template.layout", "preset", "outputs[0].file.filepath"]
        );
        let mut track = Request::Track(lk::TrackEgressRequest {
            room_name: "r".into(),
            track_id: "TR_x".into(),
            output: Some(lk::track_egress_request::Output::File(
                lk::DirectFileOutput {
                    filepath: "../t.ogg".into(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        });
        let changes = relax(&mut track, &layouts);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].used, "t.ogg");
    }
}
