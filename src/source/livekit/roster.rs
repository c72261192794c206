//! Who is in the room and what they publish, as the server's participant updates tell it;
//! which tracks the egress subscribes to; which m-line carries which track.

use std::collections::{HashMap, HashSet};

use livekit_protocol as proto;
use proto::participant_info::{Kind, State};

use super::sdp::OfferedMedia;
use crate::request::select::{Selection, TrackRef};

/// A published track.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    /// `TR_…`.
    pub sid: String,
    /// Audio or video.
    pub kind: proto::TrackType,
    /// Camera, microphone, screen share…
    pub source: proto::TrackSource,
    /// Muted by its publisher.
    pub muted: bool,
    /// `video/VP8`, `audio/opus`…
    pub mime_type: String,
    /// Published size (video; the largest layer).
    pub width: u32,
    /// Published size (video; the largest layer).
    pub height: u32,
}

/// A participant.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// `PA_…`.
    pub sid: String,
    /// Identity.
    pub identity: String,
    /// Display name (the identity when empty).
    pub name: String,
    /// Standard, agent, SIP…
    pub kind: Kind,
    /// Published tracks.
    pub tracks: Vec<Track>,
    version: u32,
}

impl Member {
    /// Their track from `source`, if published.
    pub fn track(&self, source: proto::TrackSource) -> Option<&Track> {
        self.tracks.iter().find(|t| t.source == source)
    }

    /// One of their tracks as a [`Selection`] sees it.
    pub fn track_ref<'a>(&'a self, t: &'a Track) -> TrackRef<'a> {
        TrackRef {
            identity: &self.identity,
            kind: self.kind,
            sid: &t.sid,
            track_type: t.kind,
            source: t.source,
        }
    }
}

/// What an update changed that the session must act on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    /// (participant sid, track sid) to subscribe to.
    pub subscribe: Vec<(String, String)>,
    /// Track sids no longer published (their decoders can go).
    pub gone_tracks: Vec<String>,
    /// Participants who left.
    pub left: Vec<String>,
}

/// The room as the recorder knows it.
#[derive(Debug)]
pub struct Roster {
    selection: Selection,
    /// Shown participants, in join order.
    members: Vec<Member>,
    subscribed: HashSet<String>,
    /// mid → (participant sid, track sid), from the latest offer.
    mids: HashMap<String, (String, String)>,
}

fn track_of(t: &proto::TrackInfo) -> Track {
    let (w, h) = t
        .codecs
        .iter()
        .flat_map(|c| c.layers.iter())
        .map(|l| (l.width, l.height))
        .max_by_key(|(w, h)| w * h)
        .unwrap_or((t.width, t.height));
    Track {
        sid: t.sid.clone(),
        kind: t.r#type(),
        source: t.source(),
        muted: t.muted,
        mime_type: t.mime_type.clone(),
        width: w.max(t.width),
        height: h.max(t.height),
    }
}

impl Roster {
    /// An empty room.
    pub fn new(selection: Selection) -> Roster {
        Roster {
            selection,
            members: Vec::new(),
            subscribed: HashSet::new(),
            mids: HashMap::new(),
        }
    }

    /// The participants shown, in join order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// What the egress takes.
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    fn wanted(&self, m: &Member, t: &Track) -> bool {
        let r = m.track_ref(t);
        self.selection.takes_video(&r) || self.selection.takes_audio(&r).is_some()
    }

    /// Applies participant infos (the join response's others, or an update).
    pub fn apply(&mut self, infos: &[proto::ParticipantInfo]) -> Changes {
        let mut changes = Changes::default();
        for info in infos {
            let pos = self.members.iter().position(|m| m.sid == info.sid);
            if let Some(i) = pos
                && info.version != 0
                && info.version < self.members[i].version
            {
                continue; // stale
            }
            let gone = info.state() == State::Disconnected;
            let hidden = matches!(info.kind(), Kind::Egress);
            if gone || hidden {
                if let Some(i) = pos {
                    let m = self.members.remove(i);
                    for t in m.tracks {
                        self.subscribed.remove(&t.sid);
                        changes.gone_tracks.push(t.sid);
                    }
                    changes.left.push(m.sid);
                }
                continue;
            }
            let member = Member {
                sid: info.sid.clone(),
                identity: info.identity.clone(),
                name: if info.name.is_empty() {
                    info.identity.clone()
                } else {
                    info.name.clone()
                },
                kind: info.kind(),
                tracks: info.tracks.iter().map(track_of).collect(),
                version: info.version,
            };
            if let Some(i) = pos {
                for old in &self.members[i].tracks {
                    if !member.tracks.iter().any(|t| t.sid == old.sid) {
                        self.subscribed.remove(&old.sid);
                        changes.gone_tracks.push(old.sid.clone());
                    }
                }
                self.members[i] = member;
            } else {
                self.members.push(member);
            }
            let m = &self.members[pos.unwrap_or(self.members.len() - 1)];
            let new: Vec<_> = m
                .tracks
                .iter()
                .filter(|t| self.wanted(m, t) && !self.subscribed.contains(&t.sid))
                .map(|t| (m.sid.clone(), t.sid.clone()))
                .collect();
            for (_, t) in &new {
                self.subscribed.insert(t.clone());
            }
            changes.subscribe.extend(new);
        }
        changes
    }

    /// Reads which track each m-line carries from a new offer (replacing the old map).
    pub fn map_offer(&mut self, media: &[OfferedMedia]) {
        self.mids.clear();
        for m in media.iter().filter(|m| m.active) {
            let Some(track) = &m.track_sid else { continue };
            let participant = m.participant_sid.clone().or_else(|| {
                self.members
                    .iter()
                    .find(|p| p.tracks.iter().any(|t| &t.sid == track))
                    .map(|p| p.sid.clone())
            });
            if let Some(p) = participant {
                self.mids.insert(m.mid.clone(), (p, track.clone()));
            }
        }
    }

    /// The participant and track an m-line carries now.
    pub fn by_mid(&self, mid: &str) -> Option<(&Member, &Track)> {
        let (p, t) = self.mids.get(mid)?;
        let m = self.members.iter().find(|m| &m.sid == p)?;
        Some((m, m.tracks.iter().find(|x| &x.sid == t)?))
    }
}

/// Participant and track infos as the server sends them, for tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A 640x360 VP8 video or an Opus audio track.
    pub fn track(
        sid: &str,
        kind: proto::TrackType,
        source: proto::TrackSource,
    ) -> proto::TrackInfo {
        proto::TrackInfo {
            sid: sid.into(),
            r#type: kind as i32,
            source: source as i32,
            mime_type: if kind == proto::TrackType::Audio {
                "audio/opus".into()
            } else {
                "video/VP8".into()
            },
            width: 640,
            height: 360,
            ..Default::default()
        }
    }

    /// An active participant `id-{sid}` at `version`.
    pub fn person(
        sid: &str,
        version: u32,
        tracks: Vec<proto::TrackInfo>,
    ) -> proto::ParticipantInfo {
        proto::ParticipantInfo {
            sid: sid.into(),
            identity: format!("id-{sid}"),
            state: State::Active as i32,
            version,
            tracks,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{person, track};
    use super::*;

    use proto::TrackSource as S;
    use proto::TrackType as T;

    #[test]
    fn subscribes_once_to_each_wanted_track() {
        let mut r = Roster::new(Selection::room(true, true, Default::default()));
        let alice = person(
            "PA_a",
            1,
            vec![
                track("TR_cam", T::Video, S::Camera),
                track("TR_mic", T::Audio, S::Microphone),
            ],
        );
        let c = r.apply(std::slice::from_ref(&alice));
        assert_eq!(c.subscribe.len(), 2);
        assert_eq!(
            r.members()[0].name,
            "id-PA_a",
            "the identity stands in for a name"
        );
        let again = r.apply(&[person("PA_a", 2, alice.tracks.clone())]);
        assert!(again.subscribe.is_empty(), "{again:?}");
    }

    #[test]
    fn audio_only_takes_no_video() {
        let mut r = Roster::new(Selection::room(false, true, Default::default()));
        let c = r.apply(&[person(
            "PA_a",
            1,
            vec![
                track("TR_cam", T::Video, S::Camera),
                track("TR_mic", T::Audio, S::Microphone),
            ],
        )]);
        assert_eq!(c.subscribe, vec![("PA_a".into(), "TR_mic".into())]);
    }

    #[test]
    fn unpublish_leave_and_stale_updates() {
        let mut r = Roster::new(Selection::room(true, true, Default::default()));
        r.apply(&[
            person("PA_a", 1, vec![track("TR_cam", T::Video, S::Camera)]),
            person("PA_b", 1, vec![]),
        ]);
        assert_eq!(
            r.members().len(),
            2,
            "a participant without tracks is shown"
        );
        // The same version again applies (its track list is complete: TR_cam is gone).
        let same = r.apply(&[person("PA_a", 1, vec![])]);
        assert_eq!(same.gone_tracks, vec!["TR_cam".to_owned()]);
        let c = r.apply(&[person(
            "PA_a",
            3,
            vec![track("TR_cam2", T::Video, S::Camera)],
        )]);
        assert_eq!(c.subscribe, vec![("PA_a".into(), "TR_cam2".into())]);
        let late = r.apply(&[person("PA_a", 2, vec![])]);
        assert_eq!(late, Changes::default(), "version 2 after 3 is stale");
        let mut gone = person("PA_a", 4, vec![]);
        gone.state = State::Disconnected as i32;
        let c = r.apply(&[gone]);
        assert_eq!(c.left, vec!["PA_a".to_owned()]);
        assert_eq!(c.gone_tracks, vec!["TR_cam2".to_owned()]);
        assert_eq!(r.members().len(), 1);
    }

    #[test]
    fn a_participant_selection_subscribes_to_their_tracks_only() {
        use crate::request::select::{AudioPick, Mixing, PictureSource, VideoPick};
        let mut r = Roster::new(Selection {
            video: VideoPick::Participant {
                identity: "id-PA_b".into(),
                source: PictureSource::Camera,
            },
            audio: AudioPick::Participant {
                identity: "id-PA_b".into(),
                screen_share: false,
            },
            mixing: Mixing::Default,
        });
        let c = r.apply(&[
            person(
                "PA_a",
                1,
                vec![
                    track("TR_a1", T::Video, S::Camera),
                    track("TR_a2", T::Audio, S::Microphone),
                ],
            ),
            person(
                "PA_b",
                1,
                vec![
                    track("TR_b1", T::Video, S::Camera),
                    track("TR_b2", T::Audio, S::Microphone),
                    track("TR_b3", T::Video, S::ScreenShare),
                ],
            ),
        ]);
        let sids: Vec<&str> = c.subscribe.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(sids, ["TR_b1", "TR_b2"]);
    }

    #[test]
    fn mids_map_to_tracks_per_offer() {
        let mut r = Roster::new(Selection::room(true, true, Default::default()));
        r.apply(&[person(
            "PA_a",
            1,
            vec![track("TR_cam", T::Video, S::Camera)],
        )]);
        let line = |mid: &str, track: Option<&str>| OfferedMedia {
            mid: mid.into(),
            kind: "video".into(),
            track_sid: track.map(Into::into),
            participant_sid: None,
            active: true,
        };
        r.map_offer(&[line("1", Some("TR_cam"))]);
        assert_eq!(r.by_mid("1").unwrap().1.sid, "TR_cam");
        // The m-line is reused for nothing (inactive) in the next offer.
        r.map_offer(&[line("1", None)]);
        assert!(r.by_mid("1").is_none());
    }
}
