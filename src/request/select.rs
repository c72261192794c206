//! Which of a room's participants and tracks an egress takes, and where each one's sound
//! goes in the stereo mix: the common form of a room composite (everything), a
//! participant egress, a track composite and the v2 `MediaSource`.

use livekit_protocol::participant_info::Kind;
use livekit_protocol::{AudioChannel, AudioMixing, TrackSource, TrackType};

/// Which media the egress records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracks {
    /// Record (and composite) video.
    pub video: bool,
    /// Record (and mix) audio.
    pub audio: bool,
}

/// Which video is drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoPick {
    /// None (audio only).
    None,
    /// Every camera and screen share (a room composite).
    All,
    /// One participant's camera or screen share.
    Participant {
        /// Their identity.
        identity: String,
        /// Which of their pictures.
        source: PictureSource,
    },
    /// One track, by id (`TR_…`).
    Track(String),
}

/// Which of a participant's pictures a participant egress draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PictureSource {
    /// The camera (`screen_share: false`).
    Camera,
    /// The screen share (`screen_share: true`).
    ScreenShare,
    /// The screen share while there is one, else the camera (v2 `prefer_screen_share`).
    PreferScreenShare,
}

/// Which audio is mixed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioPick {
    /// None (video only).
    None,
    /// Every microphone and screen-share audio (a room composite).
    All,
    /// One participant's microphone, or their screen-share audio.
    Participant {
        /// Their identity.
        identity: String,
        /// Take the screen-share audio instead of the microphone.
        screen_share: bool,
    },
    /// One track, by id.
    Track(String),
    /// The v2 `AudioConfig`: each route picks tracks and a channel.
    Routes {
        /// Audio no route matches is taken too, on both channels.
        capture_all: bool,
        /// In the request's order; the first match wins.
        routes: Vec<AudioRoute>,
    },
}

/// One v2 audio route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioRoute {
    /// What it matches.
    pub matcher: RouteMatch,
    /// Where the matched audio goes.
    pub channel: Channel,
}

/// What an audio route matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteMatch {
    /// A track id.
    Track(String),
    /// Every audio track of a participant.
    Identity(String),
    /// Every audio track of participants of this kind (`AGENT`, `SIP`…).
    Kind(Kind),
}

/// A stereo channel, or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Channel {
    /// Both channels (mono in the middle).
    #[default]
    Both,
    /// Left only.
    Left,
    /// Right only.
    Right,
}

impl From<AudioChannel> for Channel {
    fn from(c: AudioChannel) -> Channel {
        match c {
            AudioChannel::Both => Channel::Both,
            AudioChannel::Left => Channel::Left,
            AudioChannel::Right => Channel::Right,
        }
    }
}

/// A room composite's `audio_mixing`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mixing {
    /// Everyone on both channels.
    #[default]
    Default,
    /// Agents on the left, everyone else on the right (LiveKit's `DUAL_CHANNEL_AGENT`).
    DualChannelAgent,
    /// Participants alternate left, right, left… in the order their audio arrives
    /// (LiveKit's `DUAL_CHANNEL_ALTERNATE`).
    DualChannelAlternate,
}

impl From<AudioMixing> for Mixing {
    fn from(m: AudioMixing) -> Mixing {
        match m {
            AudioMixing::DefaultMixing => Mixing::Default,
            AudioMixing::DualChannelAgent => Mixing::DualChannelAgent,
            AudioMixing::DualChannelAlternate => Mixing::DualChannelAlternate,
        }
    }
}

impl Mixing {
    /// The channel of the `order`-th participant heard (0-based), an agent or not.
    pub fn channel(self, order: usize, agent: bool) -> Channel {
        match self {
            Mixing::Default => Channel::Both,
            Mixing::DualChannelAgent if agent => Channel::Left,
            Mixing::DualChannelAgent => Channel::Right,
            Mixing::DualChannelAlternate if order.is_multiple_of(2) => Channel::Left,
            Mixing::DualChannelAlternate => Channel::Right,
        }
    }
}

/// What an egress takes from the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The pictures.
    pub video: VideoPick,
    /// The sound.
    pub audio: AudioPick,
    /// How the room composite's sound is spread over the channels.
    pub mixing: Mixing,
}

/// A published track as the selection sees it.
#[derive(Clone, Copy, Debug)]
pub struct TrackRef<'a> {
    /// Owner's identity.
    pub identity: &'a str,
    /// Owner's kind.
    pub kind: Kind,
    /// `TR_…`.
    pub sid: &'a str,
    /// Audio or video.
    pub track_type: TrackType,
    /// Camera, microphone…
    pub source: TrackSource,
}

impl Selection {
    /// Everything (a room composite), or only one kind of media.
    pub fn room(video: bool, audio: bool, mixing: Mixing) -> Selection {
        Selection {
            video: if video {
                VideoPick::All
            } else {
                VideoPick::None
            },
            audio: if audio {
                AudioPick::All
            } else {
                AudioPick::None
            },
            mixing,
        }
    }

    /// Whether the whole room is drawn (a room composite's layout and roster).
    pub fn is_room(&self) -> bool {
        matches!(self.video, VideoPick::All | VideoPick::None)
            && matches!(self.audio, AudioPick::All | AudioPick::None)
    }

    /// Whether video is recorded at all.
    pub fn has_video(&self) -> bool {
        self.video != VideoPick::None
    }

    /// Whether audio is recorded at all.
    pub fn has_audio(&self) -> bool {
        self.audio != AudioPick::None
    }

    /// Whether `t` is a picture this selection may draw (for `PreferScreenShare`, both the
    /// camera and the screen share are taken; [`Selection::pick_picture`] chooses).
    pub fn takes_video(&self, t: &TrackRef<'_>) -> bool {
        use TrackSource as S;
        if t.track_type != TrackType::Video {
            return false;
        }
        match &self.video {
            VideoPick::None => false,
            VideoPick::All => matches!(t.source, S::Camera | S::ScreenShare | S::Unknown),
            VideoPick::Participant { identity, source } => {
                identity == t.identity
                    && match source {
                        PictureSource::Camera => matches!(t.source, S::Camera | S::Unknown),
                        PictureSource::ScreenShare => t.source == S::ScreenShare,
                        PictureSource::PreferScreenShare => {
                            matches!(t.source, S::Camera | S::ScreenShare | S::Unknown)
                        }
                    }
            }
            VideoPick::Track(sid) => sid == t.sid,
        }
    }

    /// Of a participant's pictures this selection takes, the one drawn.
    pub fn pick_picture<'a>(&self, taken: &[TrackRef<'a>]) -> Option<TrackRef<'a>> {
        let screen = taken.iter().find(|t| t.source == TrackSource::ScreenShare);
        match &self.video {
            VideoPick::Participant {
                source: PictureSource::PreferScreenShare,
                ..
            } => screen.or_else(|| taken.first()).copied(),
            _ => taken.first().copied(),
        }
    }

    /// Whether `t` is sound this selection mixes, and on which channel (`None`: not
    /// taken). A room composite's channels come from [`Mixing`] instead (they depend on
    /// the order participants are heard), so this says `Both` for them.
    pub fn takes_audio(&self, t: &TrackRef<'_>) -> Option<Channel> {
        use TrackSource as S;
        if t.track_type != TrackType::Audio {
            return None;
        }
        let mic = matches!(t.source, S::Microphone | S::Unknown);
        match &self.audio {
            AudioPick::None => None,
            AudioPick::All => (mic || t.source == S::ScreenShareAudio).then_some(Channel::Both),
            AudioPick::Participant {
                identity,
                screen_share,
            } => {
                let source_ok = if *screen_share {
                    t.source == S::ScreenShareAudio
                } else {
                    mic
                };
                (identity == t.identity && source_ok).then_some(Channel::Both)
            }
            AudioPick::Track(sid) => (sid == t.sid).then_some(Channel::Both),
            AudioPick::Routes {
                capture_all,
                routes,
            } => routes
                .iter()
                .find(|r| match &r.matcher {
                    RouteMatch::Track(sid) => sid == t.sid,
                    RouteMatch::Identity(id) => id == t.identity,
                    RouteMatch::Kind(k) => *k == t.kind,
                })
                .map(|r| r.channel)
                .or(capture_all.then_some(Channel::Both)),
        }
    }

    /// The participant whose tracks this egress waits for before it starts, if one is
    /// named (`{publisher_identity}` comes from them).
    pub fn subject_identity(&self) -> Option<&str> {
        match &self.video {
            VideoPick::Participant { identity, .. } => return Some(identity),
            VideoPick::Track(_) => return None,
            _ => {}
        }
        match &self.audio {
            AudioPick::Participant { identity, .. } => Some(identity),
            _ => None,
        }
    }

    /// The track ids named by the request (waited for before starting).
    pub fn named_tracks(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let VideoPick::Track(t) = &self.video {
            out.push(t.as_str());
        }
        match &self.audio {
            AudioPick::Track(t) => out.push(t.as_str()),
            AudioPick::Routes { routes, .. } => {
                for r in routes {
                    if let RouteMatch::Track(t) = &r.matcher {
                        out.push(t.as_str());
                    }
                }
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<'a>(identity: &'a str, sid: &'a str, ty: TrackType, source: TrackSource) -> TrackRef<'a> {
        TrackRef {
            identity,
            kind: Kind::Standard,
            sid,
            track_type: ty,
            source,
        }
    }

    #[test]
    fn a_participant_egress_takes_only_their_camera_and_microphone() {
        let s = Selection {
            video: VideoPick::Participant {
                identity: "bob".into(),
                source: PictureSource::Camera,
            },
            audio: AudioPick::Participant {
                identity: "bob".into(),
                screen_share: false,
            },
            mixing: Mixing::Default,
        };
        use TrackSource as S;
        use TrackType as T;
        assert!(s.takes_video(&t("bob", "TR_1", T::Video, S::Camera)));
        assert!(!s.takes_video(&t("bob", "TR_2", T::Video, S::ScreenShare)));
        assert!(!s.takes_video(&t("amy", "TR_3", T::Video, S::Camera)));
        assert_eq!(
            s.takes_audio(&t("bob", "TR_4", T::Audio, S::Microphone)),
            Some(Channel::Both)
        );
        assert_eq!(
            s.takes_audio(&t("amy", "TR_5", T::Audio, S::Microphone)),
            None
        );
        assert_eq!(s.subject_identity(), Some("bob"));
    }

    #[test]
    fn prefer_screen_share_picks_the_share_while_there_is_one() {
        let s = Selection {
            video: VideoPick::Participant {
                identity: "bob".into(),
                source: PictureSource::PreferScreenShare,
            },
            audio: AudioPick::None,
            mixing: Mixing::Default,
        };
        let cam = t("bob", "TR_c", TrackType::Video, TrackSource::Camera);
        let share = t("bob", "TR_s", TrackType::Video, TrackSource::ScreenShare);
        assert_eq!(s.pick_picture(&[cam, share]).unwrap().sid, "TR_s");
        assert_eq!(s.pick_picture(&[cam]).unwrap().sid, "TR_c");
    }

    #[test]
    fn routes_match_in_order_and_capture_all_takes_the_rest() {
        let mut agent = t("ai", "TR_a", TrackType::Audio, TrackSource::Microphone);
        agent.kind = Kind::Agent;
        let human = t("bob", "TR_b", TrackType::Audio, TrackSource::Microphone);
        let other = t("amy", "TR_c", TrackType::Audio, TrackSource::Microphone);
        let mut s = Selection {
            video: VideoPick::None,
            audio: AudioPick::Routes {
                capture_all: false,
                routes: vec![
                    AudioRoute {
                        matcher: RouteMatch::Kind(Kind::Agent),
                        channel: Channel::Left,
                    },
                    AudioRoute {
                        matcher: RouteMatch::Identity("bob".into()),
                        channel: Channel::Right,
                    },
                ],
            },
            mixing: Mixing::Default,
        };
        assert_eq!(s.takes_audio(&agent), Some(Channel::Left));
        assert_eq!(s.takes_audio(&human), Some(Channel::Right));
        assert_eq!(s.takes_audio(&other), None);
        if let AudioPick::Routes { capture_all, .. } = &mut s.audio {
            *capture_all = true;
        }
        assert_eq!(s.takes_audio(&other), Some(Channel::Both));
    }

    #[test]
    fn dual_channel_modes_follow_livekit() {
        // LiveKit's egress (pipeline/builder/audio.go): agents left, others right;
        // alternate starts on the left.
        assert_eq!(Mixing::DualChannelAgent.channel(0, true), Channel::Left);
        assert_eq!(Mixing::DualChannelAgent.channel(1, false), Channel::Right);
        assert_eq!(
            Mixing::DualChannelAlternate.channel(0, false),
            Channel::Left
        );
        assert_eq!(
            Mixing::DualChannelAlternate.channel(1, true),
            Channel::Right
        );
        assert_eq!(
            Mixing::DualChannelAlternate.channel(2, false),
            Channel::Left
        );
        assert_eq!(Mixing::Default.channel(1, true), Channel::Both);
    }
}
