//! Received frames: each track's decoder and clock, key-frame waits and PLIs.

use std::time::{Duration, Instant, UNIX_EPOCH};

use livekit_protocol as proto;
use str0m::media::{KeyframeRequestKind, MediaData};

use super::{Session, TrackState};
use crate::source::livekit::decode::{Codec, DecodeError, Decoder};
use crate::source::livekit::sync::{SenderReport, TrackClock};
use crate::source::livekit::tap::{EncodedFrame, TapMode, Tapped};

/// Keyframe requests per track at most this often.
const PLI_INTERVAL: Duration = Duration::from_millis(500);

impl Session {
    /// A depacketized frame: to its track's decoder (made on the first frame, remade when
    /// the codec changes), stamped with its presentation time; video waits for a key frame
    /// at the start and after an unrepaired loss, asking for one.
    pub(super) fn on_media(&mut self, md: MediaData) {
        let Some((member, track)) = self.roster.by_mid(&md.mid) else {
            tracing::debug!(mid = %md.mid, "a frame on an m-line that carries no known track");
            return;
        };
        let Some(codec) = Codec::from_str0m(md.params.spec().codec) else {
            return;
        };
        let (participant, track_sid) = (member.sid.clone(), track.sid.clone());
        let video = track.kind == proto::TrackType::Video;
        if self
            .tracks
            .get(&track_sid)
            .is_some_and(|t| t.codec != codec)
        {
            tracing::info!(track = %track_sid, ?codec, "codec changed; new decoder");
            self.tracks.remove(&track_sid);
        }
        let raw_tap = self
            .opts
            .tap
            .as_ref()
            .filter(|t| t.track == track_sid && t.mode == TapMode::Encoded);
        if !self.tracks.contains_key(&track_sid) {
            let decoder = match &raw_tap {
                Some(_) => Ok(None),
                None => self.decoder(&track_sid, codec, video).map(Some),
            };
            match decoder {
                Ok(d) => {
                    tracing::debug!(track = %track_sid, ?codec, key = md.is_keyframe(), "first frame of a track");
                    let rate = md.params.spec().clock_rate.get();
                    self.tracks.insert(
                        track_sid.clone(),
                        TrackState {
                            decoder: d,
                            codec,
                            clock: TrackClock::new(rate),
                            video,
                            waiting_key: video,
                            last_pli: None,
                            discont: false,
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(track = %track_sid, error = %e, "cannot decode track");
                    return;
                }
            }
        }
        let t = self.tracks.get_mut(&track_sid).expect("inserted above");
        let key = md.is_keyframe();
        if t.video {
            if !md.contiguous && !key {
                t.waiting_key = true;
            }
            if t.waiting_key && !key {
                if t.last_pli.is_none_or(|at| at.elapsed() >= PLI_INTERVAL) {
                    t.last_pli = Some(Instant::now());
                    if let Some(mut w) = self.rtc.writer(md.mid) {
                        let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
                    }
                }
                t.discont = true;
                return;
            }
            if key {
                t.waiting_key = false;
            }
        } else if !md.contiguous {
            t.discont = true;
        }
        if let Some(tap) = raw_tap {
            let frame = EncodedFrame {
                codec,
                data: md.data.to_vec(),
                rtp: md.time.numer(),
                clock_rate: md.params.spec().clock_rate.get(),
                keyframe: key || !video,
                discont: std::mem::take(&mut t.discont),
            };
            tap.tx.send(Tapped::Frame(frame));
            return;
        }
        let epoch = self.shared.epoch;
        let arrival = md
            .network_time
            .saturating_duration_since(epoch)
            .as_secs_f64();
        let report = md.last_sender_info.and_then(|s| {
            Some(SenderReport {
                ntp: s.ntp_time.duration_since(UNIX_EPOCH).ok()?.as_secs_f64(),
                rtp: s.rtp_time.numer(),
            })
        });
        let clock = self.clocks.entry(participant).or_default();
        let delay = self.opts.playout_delay.as_secs_f64();
        let at = t
            .clock
            .presentation(clock, md.time.numer(), arrival, report, delay);
        let discont = std::mem::take(&mut t.discont);
        if let Some(d) = t.decoder.as_mut() {
            d.push(&md.data, Duration::from_secs_f64(at.max(0.0)), key, discont);
        }
    }

    fn decoder(&self, track: &str, codec: Codec, video: bool) -> Result<Decoder, DecodeError> {
        let shared = self.shared.clone();
        let key = track.to_owned();
        if video {
            let last_size = std::sync::atomic::AtomicU64::new(0);
            Decoder::video(codec, move |frame| {
                let size = ((frame.width as u64) << 32) | frame.height as u64;
                if last_size.swap(size, std::sync::atomic::Ordering::Relaxed) != size {
                    tracing::info!(track = %key, width = frame.width, height = frame.height, "receiving pictures");
                }
                shared
                    .lock()
                    .pictures
                    .entry(key.clone())
                    .or_default()
                    .push(frame);
            })
        } else if let Some(tap) = self
            .opts
            .tap
            .as_ref()
            .filter(|t| t.track == track && t.mode == TapMode::Pcm)
        {
            let tx = tap.tx.clone();
            Decoder::audio(move |at, samples| {
                tx.send(Tapped::Pcm {
                    at,
                    samples: samples.to_vec(),
                });
            })
        } else {
            Decoder::audio(move |at, samples| {
                shared
                    .lock()
                    .sound
                    .entry(key.clone())
                    .or_default()
                    .write(at, samples);
            })
        }
    }
}
