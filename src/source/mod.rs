//! Media sources: where participants' pictures and sounds come from: a synthetic room,
//! decoded clips, a LiveKit room, or a web page in Chromium, all behind [`RoomSource`].

#[cfg(feature = "egress")]
pub mod clip;
#[cfg(feature = "egress")]
pub mod decoders;
#[cfg(feature = "egress")]
pub mod livekit;
pub mod synthetic;
#[cfg(feature = "egress")]
pub mod web;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Layout of a raw picture's planes (tightly packed, no row padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// Y plane, then U and V planes at half width and height.
    I420,
    /// Y plane, then one interleaved UV plane at half width and height.
    Nv12,
}

/// One decoded picture, BT.709 limited range.
#[derive(Clone, Debug)]
pub struct VideoFrame {
    /// Plane layout.
    pub format: PixelFormat,
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// The planes, packed.
    pub data: Vec<u8>,
    /// Presentation time on the egress clock.
    pub pts: Duration,
    /// Identity of the picture: a new value whenever the content changes (see
    /// [`VideoFrame::next_seq`]). The compositor uploads a picture only when it changes.
    pub seq: u64,
}

impl VideoFrame {
    /// A process-wide fresh picture identity.
    pub fn next_seq() -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    /// Bytes a packed 4:2:0 frame of this size needs.
    pub fn len_for(width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        w * h + 2 * (w / 2) * (h / 2)
    }

    /// A frame of one colour (limited-range Y'CbCr).
    pub fn solid(format: PixelFormat, width: u32, height: u32, yuv: [u8; 3]) -> VideoFrame {
        let luma = width as usize * height as usize;
        let chroma = (width as usize / 2) * (height as usize / 2);
        let mut data = vec![yuv[0]; luma];
        match format {
            PixelFormat::I420 => {
                data.extend(std::iter::repeat_n(yuv[1], chroma));
                data.extend(std::iter::repeat_n(yuv[2], chroma));
            }
            PixelFormat::Nv12 => {
                for _ in 0..chroma {
                    data.extend([yuv[1], yuv[2]]);
                }
            }
        }
        VideoFrame {
            format,
            width,
            height,
            data,
            pts: Duration::ZERO,
            seq: VideoFrame::next_seq(),
        }
    }

    /// Width / height.
    pub fn aspect(&self) -> f32 {
        self.width as f32 / self.height as f32
    }
}

/// Who is in the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipantInfo {
    /// The participant's identity.
    pub identity: String,
    /// The display name.
    pub name: String,
    /// Drawn by the layout. Sources list drawn entries first; the others are only heard
    /// (a track composite's audio from another participant).
    pub drawn: bool,
    /// An agent (`ParticipantInfo.kind == AGENT`): `DUAL_CHANNEL_AGENT` puts them left.
    pub agent: bool,
    /// Where their sound goes when the request routes it (v2 audio routes); `None`: as
    /// the egress's mixing mode says.
    pub channel: Option<crate::request::select::Channel>,
}

impl ParticipantInfo {
    /// A drawn, non-agent participant mixed as the egress's mode says.
    pub fn new(identity: impl Into<String>, name: impl Into<String>) -> ParticipantInfo {
        ParticipantInfo {
            identity: identity.into(),
            name: name.into(),
            drawn: true,
            agent: false,
            channel: None,
        }
    }
}

/// Sample rate of all audio inside the egress (mono per participant).
pub const AUDIO_RATE: u32 = 48_000;

/// The size each picture is drawn at (the largest tile over all outputs), so a live
/// source can ask for a matching resolution (a simulcast layer) and no more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PictureSizes {
    /// By participant index: their camera's tile, if shown.
    pub cameras: Vec<Option<(u32, u32)>>,
    /// The screen share's tile, if shown.
    pub screen_share: Option<(u32, u32)>,
}

/// A transcription heard in the room: when, whose speech, and the segment's newest text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    /// When it arrived, on the egress's media clock (where the speech it transcribes is).
    pub at: Duration,
    /// The participant whose speech it transcribes.
    pub identity: String,
    /// The segment's newest text.
    pub heard: crate::captions::Heard,
}

/// Why a source ended by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceEnd {
    /// The room closed: the recording is complete.
    Closed,
    /// The source failed (connection lost, removed from the room…).
    Failed(String),
}

/// A room as the compositor and mixer see it. The egress asks, at each tick of its clock,
/// for the newest picture not later than the tick, and for fixed blocks of audio.
pub trait RoomSource: Send {
    /// The room's server id (`{room_id}`).
    fn room_id(&self) -> String;

    /// The participants shown (drawn first), in join order.
    fn participants(&self) -> Vec<ParticipantInfo>;

    /// The identity of the participant a participant or track-composite egress records
    /// (`{publisher_identity}`), once known.
    fn publisher_identity(&self) -> Option<String> {
        None
    }

    /// The egress's media time 0 is `clock` (a live source maps its own clock to it).
    fn start(&mut self, clock: Instant) {
        let _ = clock;
    }

    /// Set once the source has ended by itself (a live room closing or failing).
    fn ended(&self) -> Option<SourceEnd> {
        None
    }

    /// How large each picture is drawn now (participant indices as of the last
    /// `participants()`).
    fn picture_sizes(&mut self, sizes: &PictureSizes) {
        let _ = sizes;
    }

    /// Moves every participant's picture to the newest one not later than `at`.
    fn advance_video(&mut self, at: Duration);

    /// Participant `index`'s current camera picture (as of the last `advance_video`);
    /// `None` while their camera is off or not yet received.
    fn video(&self, index: usize) -> Option<&VideoFrame>;

    /// The screen share being shown, if any: its owner (participant index) and picture.
    fn screen_share(&self) -> Option<(usize, &VideoFrame)> {
        None
    }

    /// LiveKit's `UpdateLayout` when the source carries the layout itself (a custom web
    /// template hears it through its participant's metadata; a web page has none): it
    /// answers on `reply` (now or later) and returns true. False: the egress switches its
    /// own layout.
    fn update_layout(
        &mut self,
        layout: &str,
        reply: &std::sync::mpsc::Sender<Result<String, String>>,
    ) -> bool {
        let _ = (layout, reply);
        false
    }

    /// A layout asked for since the last call: LiveKit's `UpdateLayout` through
    /// livekit-server arrives as the egress participant's metadata `{"layout": …}`.
    fn requested_layout(&mut self) -> Option<String> {
        None
    }

    /// Transcriptions heard since the last call, oldest first (a source without a room's
    /// data channel has none).
    fn transcripts(&mut self) -> Vec<Transcript> {
        Vec::new()
    }

    /// Adds participant `index`'s audio for samples `first_sample..first_sample+out.len()`
    /// (mono, [`AUDIO_RATE`]) into `out`.
    fn mix_audio_into(&mut self, index: usize, first_sample: u64, out: &mut [f32]);
}
