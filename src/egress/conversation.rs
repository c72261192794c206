//! What an egress keeps of the conversation while it records (the request's captions and
//! speaker timeline), and the files it makes of it at the end: a WebVTT sidecar beside
//! each file output and `{egress_id}.speakers.json` beside the manifest.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::audio::timeline::{Chapter, SpeakerIntervals, Timeline};
use crate::captions::{Captions, Cue, webvtt};
use crate::output::atomic_write;
use crate::request::Conversation;
use crate::source::{ParticipantInfo, RoomSource};

/// The shortest turn that starts a chapter.
pub(crate) const CHAPTER_TURN: Duration = Duration::from_secs(3);

/// The conversation so far.
pub(crate) struct ConversationLog {
    captions: Option<Captions>,
    timeline: Option<Timeline>,
}

impl ConversationLog {
    /// Keeps what `asked` asks for.
    pub fn new(asked: Conversation) -> ConversationLog {
        ConversationLog {
            captions: asked.captions().then(Captions::new),
            timeline: asked.speaker_timeline.then(Timeline::new),
        }
    }

    /// Takes the transcriptions `room` heard since the last call (names from `infos`).
    pub fn take_transcripts(&mut self, room: &mut dyn RoomSource, infos: &[ParticipantInfo]) {
        let Some(captions) = self.captions.as_mut() else {
            return;
        };
        for t in room.transcripts() {
            let name = infos
                .iter()
                .find(|p| p.identity == t.identity)
                .map_or("", |p| p.name.as_str());
            let h = &t.heard;
            captions.hear(t.at, &t.identity, name, &h.segment, &h.text, h.is_final);
        }
    }

    /// The mixed block `at..at + len` had these levels (participant `i` of `infos`).
    pub fn hear(&mut self, at: Duration, len: Duration, infos: &[ParticipantInfo], levels: &[f32]) {
        if let Some(t) = self.timeline.as_mut() {
            let heard = infos
                .iter()
                .zip(levels)
                .map(|(p, &l)| (p.identity.as_str(), p.name.as_str(), l));
            t.hear(at, len, heard);
        }
    }

    /// The captions showing at media time `at`, `(speaker name, text)`, oldest first.
    pub fn showing(&self, at: Duration) -> Vec<(String, String)> {
        self.captions.as_ref().map_or_else(Vec::new, |c| {
            c.showing(at)
                .into_iter()
                .map(|cue| (cue.name, cue.text))
                .collect()
        })
    }

    /// The captions up to media time `until`, if the egress takes captions.
    pub fn cues(&self, until: Duration) -> Option<Vec<Cue>> {
        self.captions.as_ref().map(|c| c.cues(until))
    }

    /// The speaking intervals, if the egress keeps a timeline.
    pub fn speakers(&mut self) -> Option<Vec<SpeakerIntervals>> {
        self.timeline.as_mut().map(Timeline::intervals)
    }

    /// Chapters at the speaker changes that last [`CHAPTER_TURN`], if the egress keeps a
    /// timeline.
    pub fn chapters(&self, end: Duration) -> Option<Vec<Chapter>> {
        self.timeline
            .as_ref()
            .map(|t| t.chapters(CHAPTER_TURN, end))
    }
}

/// Writes the WebVTT document of `cues` at `path`.
pub(crate) fn write_webvtt(path: &Path, cues: &[Cue]) -> std::io::Result<()> {
    atomic_write(path, webvtt::document(cues).as_bytes())
}

/// `{egress_id}.speakers.json`.
#[derive(Serialize)]
struct SpeakersFile<'a> {
    egress_id: &'a str,
    room_name: &'a str,
    /// Unix nanoseconds of the recording's time 0.
    started_at: i64,
    /// Seconds recorded.
    duration_s: f64,
    speakers: &'a [SpeakerIntervals],
}

/// Writes `{egress_id}.speakers.json` in `out_dir`; returns its path.
pub(crate) fn write_speakers(
    out_dir: &Path,
    info: &livekit_protocol::EgressInfo,
    written: Duration,
    speakers: &[SpeakerIntervals],
) -> std::io::Result<PathBuf> {
    let doc = SpeakersFile {
        egress_id: &info.egress_id,
        room_name: &info.room_name,
        started_at: info.started_at,
        duration_s: written.as_secs_f64(),
        speakers,
    };
    let path = out_dir.join(format!("{}.speakers.json", info.egress_id));
    atomic_write(&path, &serde_json::to_vec_pretty(&doc).expect("serialises"))?;
    Ok(path)
}
