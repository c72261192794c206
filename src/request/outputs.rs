//! The outputs of a request → an [`OutputsPlan`]: every file, HLS, stream and image
//! output validated (errors name the field), with the encodes they share worked out: one
//! video encode (plus one per extra HLS rendition) and one audio encode per codec.

use livekit_protocol::storage_config::Provider;
use livekit_protocol::{
    EncodedFileOutput, EncodedFileType, ImageCodec, ImageFileSuffix, ImageOutput,
    SegmentedFileOutput, SegmentedFileProtocol, SegmentedFileSuffix, StreamOutput, StreamProtocol,
};

use crate::storage::{StorageError, StoreSpec, spec};

use super::encoding::{AudioCodecKind, EncodingParams, VideoCodecKind};
use super::error::RequestError;
use super::extensions::Extensions;
use super::naming::{self, NameContext};
use super::renditions::renditions;
use super::select::Tracks;
use super::stream_url::{StreamKind, StreamUrl, parse_stream_url};

/// LiveKit's default HLS segment length, in seconds.
pub const DEFAULT_SEGMENT_S: u32 = 4;
/// Longest accepted segment.
const MAX_SEGMENT_S: u32 = 60;

/// Container of a file output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Fragmented MP4 (H.264 + AAC or Opus).
    Mp4,
    /// Ogg with Opus audio (audio only).
    Ogg,
    /// MP3 audio (audio only).
    Mp3,
    /// WebM with VP8 video and Opus audio.
    Webm,
}

impl FileKind {
    /// Extension including the dot.
    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Mp4 => ".mp4",
            FileKind::Ogg => ".ogg",
            FileKind::Mp3 => ".mp3",
            FileKind::Webm => ".webm",
        }
    }
}

/// One file output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePlan {
    /// The request's `filepath` template, unresolved (room id and time come at start).
    pub filepath_template: String,
    /// Field path of the template, for errors found when it is resolved.
    pub field: String,
    /// Container.
    pub kind: FileKind,
    /// Carries video (the main encode).
    pub video: bool,
    /// The audio encode it carries, if any.
    pub audio: Option<AudioCodecKind>,
    /// The output's own storage (`s3`, `aliOSS`, ...), validated; `None`: the worker's
    /// default, else local disk.
    pub storage: Option<StoreSpec>,
}

/// How segment (or image) files are numbered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suffix {
    /// `_00000`, `_00001`, ...
    Index,
    /// `_` + UTC time with milliseconds (`20221004011306123`).
    Timestamp,
    /// No suffix: each image overwrites the last.
    NoneOverwrite,
}

/// One video variant of an HLS output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Index into [`OutputsPlan::video`].
    pub encode: usize,
    /// Name used in its file names (`720p`); empty for a single-variant output.
    pub name: String,
}

/// One HLS output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentsPlan {
    /// Field path (`segment_outputs[0]`).
    pub field: String,
    /// Segment file prefix template (may contain a directory).
    pub prefix_template: String,
    /// Playlist template (the master playlist when there are renditions).
    pub playlist_template: String,
    /// Live (rolling window) playlist template, if requested.
    pub live_playlist_template: Option<String>,
    /// Target segment length.
    pub segment_duration_s: u32,
    /// Segment numbering.
    pub suffix: Suffix,
    /// Video variants: one normally, 2–4 for an adaptive ladder, none for audio only.
    pub variants: Vec<Variant>,
    /// Whether the audio encode (AAC) is carried.
    pub audio: bool,
    /// Whether a subtitles rendition carries the captions (the request's `captions`).
    pub subtitles: bool,
    /// Whether participants' isolated tracks are added as alternative audio.
    pub isolated_audio: bool,
    /// The output's own storage (`s3`, `aliOSS`, ...), validated; `None`: the worker's
    /// default, else local disk.
    pub storage: Option<StoreSpec>,
}

impl SegmentsPlan {
    /// Whether a master playlist lists several renditions.
    pub fn is_ladder(&self) -> bool {
        self.variants.len() > 1
    }
}

/// Image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG (LiveKit's only codec; the default).
    Jpeg,
    /// PNG (a tessera extension: `"image_codec": "IC_PNG"`).
    Png,
}

impl ImageFormat {
    /// Extension including the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => ".jpeg",
            ImageFormat::Png => ".png",
        }
    }
}

/// One image (thumbnail) output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagesPlan {
    /// Field path (`image_outputs[0]`).
    pub field: String,
    /// Seconds between captures.
    pub interval_s: u32,
    /// Image size (the frame size when the request leaves it unset).
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// File prefix template.
    pub prefix_template: String,
    /// Numbering.
    pub suffix: Suffix,
    /// Format.
    pub format: ImageFormat,
    /// The output's own storage (`s3`, `aliOSS`, ...), validated; `None`: the worker's
    /// default, else local disk.
    pub storage: Option<StoreSpec>,
}

pub use super::encoding::VideoEncode;

/// Every output of an egress and the encodes they share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputsPlan {
    /// File outputs.
    pub files: Vec<FilePlan>,
    /// HLS outputs.
    pub segments: Vec<SegmentsPlan>,
    /// Stream URLs at start.
    pub streams: Vec<StreamUrl>,
    /// Whether the request has a stream output (so `UpdateStream` may add URLs).
    pub has_stream_output: bool,
    /// Image outputs.
    pub images: Vec<ImagesPlan>,
    /// Write `{egress_id}.json` beside the outputs.
    pub manifest: bool,
    /// Video encodes: `[0]` is the main one (request size), then extra HLS renditions.
    pub video: Vec<VideoEncode>,
    /// Audio encodes, one per codec some output needs.
    pub audio: Vec<AudioCodecKind>,
}

/// The request's outputs, gathered from the current and the deprecated fields.
pub struct RequestOutputs<'a> {
    /// `file_outputs` (or the deprecated `file`), with their field paths.
    pub files: Vec<(String, &'a EncodedFileOutput)>,
    /// `segment_outputs` (or `segments`).
    pub segments: Vec<(String, &'a SegmentedFileOutput)>,
    /// `stream_outputs` (or `stream`).
    pub streams: Vec<(String, &'a StreamOutput)>,
    /// `image_outputs`.
    pub images: Vec<(String, &'a ImageOutput)>,
}

fn probe_ctx() -> NameContext<'static> {
    NameContext {
        room_name: "room",
        room_id: "RM_id",
        time: chrono::Utc::now(),
        publisher_identity: "identity",
        track_id: "TR_id",
        track_type: "video",
        track_source: "camera",
    }
}

/// Checks that a template stays inside the output directory once resolved.
pub(crate) fn check_template(template: &str, field: &str, ext: &str) -> Result<(), RequestError> {
    naming::resolve_filepath(template, &probe_ctx(), ext)
        .map(|_| ())
        .map_err(|e| RequestError::invalid(field, e.to_string()))
}

/// The output's own storage, validated (errors name the field).
pub(crate) fn own_storage(
    p: Option<Provider>,
    field: &str,
) -> Result<Option<StoreSpec>, RequestError> {
    p.map(|p| spec::from_provider(&p, field))
        .transpose()
        .map_err(|e| match e {
            StorageError::Invalid { field, reason } => RequestError::invalid(&field, reason),
            e => RequestError::invalid(field, e.to_string()),
        })
}

fn file_kind(f: &EncodedFileOutput, field: &str, tracks: Tracks) -> Result<FileKind, RequestError> {
    let by_ext = |path: &str| {
        let lower = path.to_ascii_lowercase();
        [
            (".mp4", FileKind::Mp4),
            (".ogg", FileKind::Ogg),
            (".mp3", FileKind::Mp3),
            (".webm", FileKind::Webm),
        ]
        .into_iter()
        .find(|(e, _)| lower.ends_with(e))
        .map(|(_, k)| k)
    };
    match EncodedFileType::try_from(f.file_type) {
        Ok(EncodedFileType::Mp4) => Ok(FileKind::Mp4),
        Ok(EncodedFileType::Ogg) => Ok(FileKind::Ogg),
        Ok(EncodedFileType::Mp3) => Ok(FileKind::Mp3),
        // LiveKit's default: MP4, or OGG for audio-only; the filepath's extension decides
        // when it names a known container (WebM is only reachable this way).
        Ok(EncodedFileType::DefaultFiletype) => {
            Ok(by_ext(&f.filepath).unwrap_or(if tracks.video {
                FileKind::Mp4
            } else {
                FileKind::Ogg
            }))
        }
        Err(_) => Err(RequestError::invalid(
            &format!("{field}.file_type"),
            format!("unknown file type {}", f.file_type),
        )),
    }
}

/// Most outputs one egress writes: files, segment outputs, image outputs and stream URLs
/// together (each costs a muxer, a pipeline or a connection).
pub const MAX_OUTPUTS: usize = 16;

/// Refuses a request with more than [`MAX_OUTPUTS`] outputs, naming the first one over.
fn check_output_count(req: &RequestOutputs<'_>) -> Result<(), RequestError> {
    let fields = req
        .files
        .iter()
        .map(|(f, _)| f.clone())
        .chain(req.segments.iter().map(|(f, _)| f.clone()))
        .chain(req.images.iter().map(|(f, _)| f.clone()))
        .chain(
            req.streams
                .iter()
                .flat_map(|(f, s)| (0..s.urls.len()).map(move |j| format!("{f}.urls[{j}]"))),
        );
    match fields.enumerate().find(|(i, _)| *i == MAX_OUTPUTS) {
        Some((_, field)) => Err(RequestError::invalid(
            &field,
            format!(
                "an egress writes at most {MAX_OUTPUTS} outputs (files, segments, images and stream URLs together)"
            ),
        )),
        None => Ok(()),
    }
}

/// Validates every output and works out the encodes (`extensions`: the request's
/// `renditions` ladders and PNG images): each kind of output planned on its own, then
/// the codecs they share chosen once.
pub fn plan_outputs(
    req: &RequestOutputs<'_>,
    extensions: &Extensions,
    tracks: Tracks,
    encoding: &EncodingParams,
) -> Result<OutputsPlan, RequestError> {
    if req.files.is_empty()
        && req.segments.is_empty()
        && req.streams.is_empty()
        && req.images.is_empty()
    {
        return Err(RequestError::invalid(
            "file_outputs",
            "no output requested: set file_outputs, segment_outputs, stream_outputs or image_outputs",
        ));
    }
    check_output_count(req)?;
    let mut plan = OutputsPlan {
        manifest: false,
        ..Default::default()
    };
    if tracks.video {
        plan.video.push(VideoEncode {
            width: encoding.width,
            height: encoding.height,
            bitrate_kbps: encoding.video_bitrate_kbps,
        });
    }
    let mut needs = Needs::new(encoding, tracks);
    for (field, f) in &req.files {
        plan.manifest |= !f.disable_manifest;
        let file = plan_file(field, f, &mut needs)?;
        plan.files.push(file);
    }
    for (field, s) in &req.segments {
        plan.manifest |= !s.disable_manifest;
        let ladder = extensions.renditions(field);
        let segments = plan_segments(field, s, ladder, &mut plan.video, &mut needs)?;
        plan.segments.push(segments);
    }
    for (field, s) in &req.streams {
        plan.has_stream_output = true;
        plan_streams(field, s, &mut plan.streams, &mut needs)?;
    }
    for (field, im) in &req.images {
        plan.manifest |= !im.disable_manifest;
        let png = extensions.png(field);
        plan.images
            .push(plan_images(field, im, png, encoding, tracks)?);
    }
    choose_codecs(plan, &needs)
}

/// What the outputs need of the encodes: the audio codecs (checked against an explicit
/// request) and the first output that needs H.264 video.
struct Needs<'a> {
    encoding: &'a EncodingParams,
    tracks: Tracks,
    h264_field: Option<String>,
}

impl<'a> Needs<'a> {
    fn new(encoding: &'a EncodingParams, tracks: Tracks) -> Self {
        Needs {
            encoding,
            tracks,
            h264_field: None,
        }
    }

    /// Output `field` (a `what`) carries `codec` audio: refused when the request asks for
    /// another codec explicitly.
    fn audio(
        &self,
        codec: AudioCodecKind,
        field: &str,
        what: &str,
    ) -> Result<Option<AudioCodecKind>, RequestError> {
        let asked = self.encoding.audio_codec;
        if self.encoding.audio_codec_explicit && codec != asked {
            return Err(RequestError::invalid(
                "advanced.audio_codec",
                format!(
                    "{field} ({what}) carries {codec:?} audio, but the request asks for {asked:?}"
                ),
            ));
        }
        Ok(Some(codec))
    }

    /// Output `field` carries H.264 video (the first one named is reported in a clash).
    fn h264(&mut self, field: &str) {
        if self.tracks.video {
            self.h264_field.get_or_insert_with(|| field.to_owned());
        }
    }
}

/// One `file_outputs` entry: its container, and the video and audio it carries.
fn plan_file(
    field: &str,
    f: &EncodedFileOutput,
    needs: &mut Needs<'_>,
) -> Result<FilePlan, RequestError> {
    let (tracks, encoding) = (needs.tracks, needs.encoding);
    let storage = own_storage(provider_of!(f.output, encoded_file_output), field)?;
    let kind = file_kind(f, field, tracks)?;
    let audio = if !tracks.audio {
        None
    } else {
        match kind {
            FileKind::Mp4 => Some(encoding.audio_codec),
            FileKind::Ogg => needs.audio(AudioCodecKind::Opus, field, "OGG")?,
            FileKind::Webm => needs.audio(AudioCodecKind::Opus, field, "WebM")?,
            FileKind::Mp3 => needs.audio(AudioCodecKind::Mp3, field, "MP3")?,
        }
    };
    let video = match kind {
        FileKind::Ogg | FileKind::Mp3 => {
            if tracks.video && !tracks.audio {
                return Err(RequestError::invalid(
                    &format!("{field}.file_type"),
                    format!("{kind:?} holds audio only, but the request is video_only"),
                ));
            }
            false
        }
        FileKind::Mp4 => {
            needs.h264(field);
            tracks.video
        }
        FileKind::Webm => tracks.video,
    };
    if matches!(kind, FileKind::Mp4) && audio == Some(AudioCodecKind::Mp3) {
        return Err(RequestError::invalid(
            "advanced.audio_codec",
            "MP3 audio is not supported in MP4 files; use AAC or OPUS",
        ));
    }
    let filepath_field = format!("{field}.filepath");
    check_template(&f.filepath, &filepath_field, kind.extension())?;
    Ok(FilePlan {
        filepath_template: f.filepath.clone(),
        field: filepath_field,
        kind,
        video,
        audio,
        storage,
    })
}

/// One `segment_outputs` entry: HLS settings and its variants (`ladder`: its
/// `renditions` extension, each rendition an encode shared through `video`).
fn plan_segments(
    field: &str,
    s: &SegmentedFileOutput,
    ladder: Option<&serde_json::Value>,
    video: &mut Vec<VideoEncode>,
    needs: &mut Needs<'_>,
) -> Result<SegmentsPlan, RequestError> {
    let tracks = needs.tracks;
    let storage = own_storage(provider_of!(s.output, segmented_file_output), field)?;
    if SegmentedFileProtocol::try_from(s.protocol).is_err() {
        return Err(RequestError::invalid(
            &format!("{field}.protocol"),
            format!("unknown protocol {}", s.protocol),
        ));
    }
    let suffix = match SegmentedFileSuffix::try_from(s.filename_suffix) {
        Ok(SegmentedFileSuffix::Index) => Suffix::Index,
        Ok(SegmentedFileSuffix::Timestamp) => Suffix::Timestamp,
        Err(_) => {
            return Err(RequestError::invalid(
                &format!("{field}.filename_suffix"),
                format!("unknown suffix {}", s.filename_suffix),
            ));
        }
    };
    let segment_duration_s = match s.segment_duration {
        0 => DEFAULT_SEGMENT_S,
        d if d > MAX_SEGMENT_S => {
            return Err(RequestError::invalid(
                &format!("{field}.segment_duration"),
                format!("must be at most {MAX_SEGMENT_S} seconds, got {d}"),
            ));
        }
        d => d,
    };
    let ladder = renditions(ladder, field, needs.encoding)?;
    if !ladder.is_empty() && !tracks.video {
        return Err(RequestError::invalid(
            &format!("{field}.renditions"),
            "renditions need video, but the request is audio_only",
        ));
    }
    let variants = variants(ladder, video, tracks.video);
    needs.h264(field);
    if tracks.audio {
        needs.audio(AudioCodecKind::Aac, field, "HLS")?;
    }
    check_segment_names(field, s)?;
    Ok(SegmentsPlan {
        field: field.to_owned(),
        prefix_template: s.filename_prefix.clone(),
        playlist_template: s.playlist_name.clone(),
        live_playlist_template: (!s.live_playlist_name.is_empty())
            .then(|| s.live_playlist_name.clone()),
        segment_duration_s,
        suffix,
        variants,
        audio: tracks.audio,
        subtitles: false,
        isolated_audio: false,
        storage,
    })
}

/// An HLS output's variants: none without video, the main encode without a ladder, else
/// one per rendition (an encode of the same size and bitrate is shared).
fn variants(
    ladder: Vec<(String, VideoEncode)>,
    video: &mut Vec<VideoEncode>,
    has_video: bool,
) -> Vec<Variant> {
    if !has_video {
        return Vec::new();
    }
    if ladder.is_empty() {
        return vec![Variant {
            encode: 0,
            name: String::new(),
        }];
    }
    ladder
        .into_iter()
        .map(|(name, enc)| {
            let encode = match video.iter().position(|v| *v == enc) {
                Some(i) => i,
                None => {
                    video.push(enc);
                    video.len() - 1
                }
            };
            Variant { encode, name }
        })
        .collect()
}

/// An HLS output's segment prefix and playlist names.
fn check_segment_names(field: &str, s: &SegmentedFileOutput) -> Result<(), RequestError> {
    check_template(
        &s.filename_prefix,
        &format!("{field}.filename_prefix"),
        ".ts",
    )?;
    for (name, value) in [
        ("playlist_name", &s.playlist_name),
        ("live_playlist_name", &s.live_playlist_name),
    ] {
        if !value.is_empty() {
            check_template(value, &format!("{field}.{name}"), ".m3u8")?;
        }
    }
    if !s.live_playlist_name.is_empty() && s.live_playlist_name == s.playlist_name {
        return Err(RequestError::invalid(
            &format!("{field}.live_playlist_name"),
            "must differ from playlist_name",
        ));
    }
    Ok(())
}

/// One `stream_outputs` entry: its URLs, each of the protocol's kind and listed once in
/// the egress (added to `streams`).
fn plan_streams(
    field: &str,
    s: &StreamOutput,
    streams: &mut Vec<StreamUrl>,
    needs: &mut Needs<'_>,
) -> Result<(), RequestError> {
    let protocol = StreamProtocol::try_from(s.protocol).map_err(|_| {
        RequestError::invalid(
            &format!("{field}.protocol"),
            format!("unknown protocol {}", s.protocol),
        )
    })?;
    if protocol == StreamProtocol::Websocket {
        return Err(RequestError::invalid(
            &format!("{field}.protocol"),
            "WEBSOCKET streams are for track egress, not room composites",
        ));
    }
    if s.urls.is_empty() {
        return Err(RequestError::invalid(
            &format!("{field}.urls"),
            "at least one URL is required",
        ));
    }
    let expected = match protocol {
        StreamProtocol::Rtmp => Some(StreamKind::Rtmp),
        StreamProtocol::Srt => Some(StreamKind::Srt),
        _ => None,
    };
    for (j, u) in s.urls.iter().enumerate() {
        let f = format!("{field}.urls[{j}]");
        let url = parse_stream_url(u).map_err(|e| RequestError::invalid(&f, e))?;
        if expected.is_some_and(|k| k != url.kind) {
            return Err(RequestError::invalid(
                &f,
                format!("is not a {} URL", protocol.as_str_name()),
            ));
        }
        if streams.iter().any(|s| s.url == url.url) {
            return Err(RequestError::invalid(&f, "is listed twice"));
        }
        streams.push(url);
    }
    needs.h264(field);
    if needs.tracks.audio {
        needs.audio(AudioCodecKind::Aac, field, "RTMP/SRT")?;
    }
    Ok(())
}

/// One `image_outputs` entry (`png`: tessera's PNG extension asked for).
fn plan_images(
    field: &str,
    im: &ImageOutput,
    png: bool,
    encoding: &EncodingParams,
    tracks: Tracks,
) -> Result<ImagesPlan, RequestError> {
    let storage = own_storage(provider_of!(im.output, image_output), field)?;
    if !tracks.video {
        return Err(RequestError::invalid(
            field,
            "images need video, but the request is audio_only",
        ));
    }
    if im.capture_interval == 0 {
        return Err(RequestError::invalid(
            &format!("{field}.capture_interval"),
            "is required (seconds between images)",
        ));
    }
    let dim = |v: i32, name: &str, frame: u32| match v {
        0 => Ok(frame),
        v => super::encoding::check_output_dimension(&format!("{field}.{name}"), v.into()),
    };
    let width = dim(im.width, "width", encoding.width)?;
    let height = dim(im.height, "height", encoding.height)?;
    let suffix = match ImageFileSuffix::try_from(im.filename_suffix) {
        Ok(ImageFileSuffix::ImageSuffixIndex) => Suffix::Index,
        Ok(ImageFileSuffix::ImageSuffixTimestamp) => Suffix::Timestamp,
        Ok(ImageFileSuffix::ImageSuffixNoneOverwrite) => Suffix::NoneOverwrite,
        Err(_) => {
            return Err(RequestError::invalid(
                &format!("{field}.filename_suffix"),
                format!("unknown suffix {}", im.filename_suffix),
            ));
        }
    };
    let format = match (png, ImageCodec::try_from(im.image_codec)) {
        (true, _) => ImageFormat::Png,
        (false, Ok(_)) => ImageFormat::Jpeg,
        (false, Err(_)) => {
            return Err(RequestError::invalid(
                &format!("{field}.image_codec"),
                format!("unknown image codec {}", im.image_codec),
            ));
        }
    };
    check_template(
        &im.filename_prefix,
        &format!("{field}.filename_prefix"),
        format.extension(),
    )?;
    Ok(ImagesPlan {
        field: field.to_owned(),
        interval_s: im.capture_interval,
        width,
        height,
        prefix_template: im.filename_prefix.clone(),
        suffix,
        format,
        storage,
    })
}

/// The final codec step: one video codec per egress (VP8 only when every video output
/// is WebM), the audio codecs the outputs share, and no video encode when only images
/// (or audio-only files) need pictures.
fn choose_codecs(mut plan: OutputsPlan, needs: &Needs<'_>) -> Result<OutputsPlan, RequestError> {
    let (encoding, tracks) = (needs.encoding, needs.tracks);
    let h264 = needs.h264_field.as_ref();
    let webm = plan
        .files
        .iter()
        .find(|f| f.kind == FileKind::Webm && f.video);
    if let Some(w) = webm {
        if let Some(other) = h264 {
            return Err(RequestError::invalid(
                &w.field,
                format!(
                    "WebM carries VP8 video but {other} needs H.264, and an egress encodes video once: record WebM in a separate egress"
                ),
            ));
        }
        if encoding.video_codec != VideoCodecKind::Vp8 && encoding.video_codec_explicit {
            return Err(RequestError::invalid(
                "advanced.video_codec",
                format!(
                    "{} is a WebM file: use VP8 (or leave video_codec unset)",
                    w.field
                ),
            ));
        }
    } else if encoding.video_codec == VideoCodecKind::Vp8
        && tracks.video
        && let Some(other) = h264
    {
        return Err(RequestError::invalid(
            "advanced.video_codec",
            format!("VP8 needs a WebM file output; {other} carries H.264"),
        ));
    }
    let mut audio = Vec::new();
    for codec in plan.files.iter().filter_map(|f| f.audio).chain(
        (tracks.audio && (!plan.segments.is_empty() || !plan.streams.is_empty()))
            .then_some(AudioCodecKind::Aac),
    ) {
        if !audio.contains(&codec) {
            audio.push(codec);
        }
    }
    plan.audio = audio;
    if plan.files.iter().all(|f| !f.video)
        && plan.segments.iter().all(|s| s.variants.is_empty())
        && plan.streams.is_empty()
        && !plan.has_stream_output
    {
        // Only images (or audio-only files) need pictures: no video encode.
        plan.video.clear();
    }
    Ok(plan)
}

/// Whether the plan's main video encode is VP8 (a WebM-only egress).
#[cfg_attr(not(feature = "egress"), allow(dead_code))]
pub fn uses_vp8(plan: &OutputsPlan) -> bool {
    plan.files
        .iter()
        .any(|f| f.kind == FileKind::Webm && f.video)
}
