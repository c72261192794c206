//! Who the egress shows and hears, from the roster and the request's selection: a room
//! composite shows everyone; a participant or track egress shows one picture and hears
//! the tracks it names, each on its channel. Pure.

use std::collections::HashMap;

use livekit_protocol as proto;
use proto::participant_info::Kind;

use super::roster::{Member, Roster};
use crate::request::select::{Channel, Selection};

/// One entry the egress sees: a participant drawn (with their camera and screen share),
/// or a track only heard.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Shown {
    /// Key of the entry (the participant sid; for an entry only heard, sid/track).
    pub sid: String,
    pub identity: String,
    pub name: String,
    /// The picture drawn in the tile: (track sid, muted).
    pub camera: Option<(String, bool)>,
    /// A screen share (room composite only): (track sid, muted).
    pub screen: Option<(String, bool)>,
    /// Unmuted audio tracks mixed for this entry.
    pub audio: Vec<String>,
    pub drawn: bool,
    pub agent: bool,
    /// Set when the request routes this sound to a channel.
    pub channel: Option<Channel>,
}

/// A published track as the egress knows it (for names, waiting and mute messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// Owner's identity.
    pub identity: String,
    /// Audio or video.
    pub kind: proto::TrackType,
    /// Camera, microphone…
    pub source: proto::TrackSource,
    /// `video/H264`, `audio/opus`…
    pub mime_type: String,
    /// Muted by its publisher.
    pub muted: bool,
}

/// Every track published in the room now, by sid.
pub(crate) fn published(roster: &Roster) -> HashMap<String, Published> {
    roster
        .members()
        .iter()
        .flat_map(|m| {
            m.tracks.iter().map(|t| {
                (
                    t.sid.clone(),
                    Published {
                        identity: m.identity.clone(),
                        kind: t.kind,
                        source: t.source,
                        mime_type: t.mime_type.clone(),
                        muted: t.muted,
                    },
                )
            })
        })
        .collect()
}

fn room_entry(m: &Member) -> Shown {
    use proto::TrackSource as S;
    let pic = |s| m.track(s).map(|t| (t.sid.clone(), t.muted));
    Shown {
        sid: m.sid.clone(),
        identity: m.identity.clone(),
        name: m.name.clone(),
        camera: pic(S::Camera).or_else(|| {
            m.tracks
                .iter()
                .find(|t| t.kind == proto::TrackType::Video && t.source == S::Unknown)
                .map(|t| (t.sid.clone(), t.muted))
        }),
        screen: pic(S::ScreenShare),
        audio: m
            .tracks
            .iter()
            .filter(|t| t.kind == proto::TrackType::Audio && !t.muted)
            .map(|t| t.sid.clone())
            .collect(),
        drawn: true,
        agent: m.kind == Kind::Agent,
        channel: None,
    }
}

/// The entries the egress sees, drawn ones first.
pub(crate) fn entries(roster: &Roster) -> Vec<Shown> {
    let sel = roster.selection();
    if sel.is_room() {
        return roster.members().iter().map(room_entry).collect();
    }
    let mut out = Vec::new();
    // The one picture: the first participant with a picture the selection takes (for a
    // participant egress, them even before they publish: their placeholder).
    for m in roster.members() {
        let taken: Vec<_> = m
            .tracks
            .iter()
            .map(|t| m.track_ref(t))
            .filter(|r| sel.takes_video(r))
            .collect();
        let subject = sel.subject_identity() == Some(m.identity.as_str());
        if taken.is_empty() && !subject {
            continue;
        }
        let camera = sel.pick_picture(&taken).map(|r| {
            let muted = m.tracks.iter().any(|t| t.sid == r.sid && t.muted);
            (r.sid.to_owned(), muted)
        });
        if camera.is_none() && !sel.has_video() {
            continue;
        }
        out.push(Shown {
            sid: m.sid.clone(),
            identity: m.identity.clone(),
            name: m.name.clone(),
            camera,
            drawn: sel.has_video(),
            agent: m.kind == Kind::Agent,
            ..Default::default()
        });
        break;
    }
    // Each sound taken, on its channel.
    for m in roster.members() {
        for t in &m.tracks {
            let Some(channel) = sel.takes_audio(&m.track_ref(t)) else {
                continue;
            };
            out.push(Shown {
                sid: format!("{}/{}", m.sid, t.sid),
                identity: m.identity.clone(),
                name: m.name.clone(),
                audio: if t.muted { vec![] } else { vec![t.sid.clone()] },
                drawn: false,
                agent: m.kind == Kind::Agent,
                channel: Some(channel),
                ..Default::default()
            });
        }
    }
    out
}

/// Whether what the selection waits for is there: for a room composite, always; else the
/// named participant with a track taken, or one of the named tracks. `Err` says what is
/// missing (LiveKit's wording).
pub(crate) fn ready(roster: &Roster) -> Result<(), String> {
    let sel: &Selection = roster.selection();
    if sel.is_room() {
        return Ok(());
    }
    let members = roster.members();
    if let Some(id) = sel.subject_identity() {
        let Some(m) = members.iter().find(|m| m.identity == id) else {
            return Err(format!("participant {id} not found"));
        };
        let any = m.tracks.iter().any(|t| {
            let r = m.track_ref(t);
            sel.takes_video(&r) || sel.takes_audio(&r).is_some()
        });
        return if any {
            Ok(())
        } else {
            Err(format!("participant {id} has published no track to record"))
        };
    }
    let named = sel.named_tracks();
    let present = |sid: &&str| {
        members
            .iter()
            .any(|m| m.tracks.iter().any(|t| t.sid == *sid))
    };
    // LiveKit names the one track it waited for in vain: the first named.
    match named.first() {
        Some(first) if !named.iter().any(present) => Err(format!("track {first} not found")),
        _ => Ok(()),
    }
}

/// Whether anything the egress records is still in the room: the named participant, or
/// a named or taken track. A participant or track egress ends once this stays false.
pub(crate) fn subject_present(roster: &Roster) -> bool {
    let sel = roster.selection();
    if sel.is_room() {
        return true;
    }
    roster.members().iter().any(|m| {
        sel.subject_identity() == Some(m.identity.as_str())
            || m.tracks.iter().any(|t| {
                let r = m.track_ref(t);
                sel.takes_video(&r) || sel.takes_audio(&r).is_some()
            })
    })
}

/// The identity `{publisher_identity}` names: the participant recorded, or the owner of
/// the picture (else of the first sound) recorded.
pub(crate) fn publisher(entries: &[Shown], sel: &Selection) -> Option<String> {
    if sel.is_room() {
        return None;
    }
    sel.subject_identity()
        .map(str::to_owned)
        .or_else(|| entries.first().map(|e| e.identity.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::select::{AudioPick, Mixing, VideoPick};
    use crate::source::livekit::roster::fixtures::{person, track};

    use proto::TrackSource as S;
    use proto::TrackType as T;

    #[test]
    fn a_track_composite_shows_one_picture_and_hears_its_track() {
        let sel = Selection {
            video: VideoPick::Track("TR_v".into()),
            audio: AudioPick::Track("TR_a".into()),
            mixing: Mixing::Default,
        };
        let mut r = Roster::new(sel.clone());
        assert_eq!(ready(&r), Err("track TR_v not found".into()));
        // A track egress names its track as both video and audio: said once.
        let same = Selection {
            video: VideoPick::Track("TR_t".into()),
            audio: AudioPick::Track("TR_t".into()),
            mixing: Mixing::Default,
        };
        assert_eq!(
            ready(&Roster::new(same)),
            Err("track TR_t not found".into())
        );
        r.apply(&[
            person("PA_x", 1, vec![track("TR_o", T::Video, S::Camera)]),
            person("PA_y", 1, vec![track("TR_a", T::Audio, S::Microphone)]),
            person("PA_z", 1, vec![track("TR_v", T::Video, S::Camera)]),
        ]);
        assert_eq!(ready(&r), Ok(()));
        let e = entries(&r);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].drawn && e[0].camera.as_ref().unwrap().0 == "TR_v");
        assert!(!e[1].drawn && e[1].audio == ["TR_a"]);
        assert_eq!(e[1].channel, Some(Channel::Both));
        assert_eq!(publisher(&e, &sel).as_deref(), Some("id-PA_z"));
    }

    #[test]
    fn a_participant_without_a_picture_keeps_their_placeholder_tile() {
        let sel = Selection {
            video: VideoPick::Participant {
                identity: "id-PA_b".into(),
                source: crate::request::select::PictureSource::Camera,
            },
            audio: AudioPick::Participant {
                identity: "id-PA_b".into(),
                screen_share: false,
            },
            mixing: Mixing::Default,
        };
        let mut r = Roster::new(sel);
        r.apply(&[person("PA_a", 1, vec![track("TR_1", T::Video, S::Camera)])]);
        assert_eq!(ready(&r), Err("participant id-PA_b not found".into()));
        assert!(!subject_present(&r));
        r.apply(&[person("PA_b", 1, vec![])]);
        assert!(ready(&r).is_err(), "joined but nothing published yet");
        r.apply(&[person(
            "PA_b",
            1,
            vec![track("TR_2", T::Audio, S::Microphone)],
        )]);
        assert_eq!(ready(&r), Ok(()));
        let e = entries(&r);
        assert_eq!(e.len(), 2);
        assert!(e[0].drawn && e[0].camera.is_none(), "{e:?}");
        assert!(subject_present(&r));
    }
}
