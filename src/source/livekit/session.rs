//! The recorder's connection to a room: LiveKit signaling (livekit-signaling) and one
//! str0m peer that answers the server's subscriber offers. Runs on the room's own thread;
//! received frames go to their track's decoder, stamped on the session clock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use livekit_protocol as proto;
use livekit_signaling::{SignalClient, SignalEvent, SignalEvents};
use proto::signal_request::Message as Req;
use proto::signal_response::Message as Resp;
use str0m::change::SdpOffer;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcError};
use tokio::net::UdpSocket;
use tokio::sync::watch;

mod data;
mod tracks;

use super::connection;
use super::decode::{Codec, Decoder};
use super::error::LiveKitError;
use super::options::ConnectOptions;
use super::roster::{Changes, Roster};
use super::shown;
use super::state::{RoomEnd, Shared, layout_in_metadata};
use super::sync::{ParticipantClock, TrackClock};
use super::tap::Tapped;
use crate::backoff::Backoff;

/// One received track: its decoder (none when a tap takes its frames as received), its
/// clock, and whether it waits for a key frame.
struct TrackState {
    decoder: Option<Decoder>,
    codec: Codec,
    clock: TrackClock,
    video: bool,
    waiting_key: bool,
    last_pli: Option<Instant>,
    discont: bool,
}

/// How long the media path may stay disconnected before the room is joined anew.
const ICE_GRACE: Duration = Duration::from_secs(10);
/// Full reconnects tried after a resume failed (or the server asked for one).
const RECONNECTS: u32 = 3;
/// Waits before each rejoin: 0.5, 1 and 2 s.
const REJOIN_BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(2));
/// Waits before each resume: 0.3, 0.6, 1.2, 2.4, 2.4 s.
const RESUME_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(300), Duration::from_millis(2400));

/// What the loop does after an event.
enum Next {
    Go,
    End(RoomEnd),
    /// Join the room anew (a new signal connection and a new peer).
    Reconnect(String),
}

struct Session {
    opts: ConnectOptions,
    token: String,
    shared: Arc<Shared>,
    client: SignalClient,
    events: SignalEvents,
    socket: UdpSocket,
    rtc: Rtc,
    local: SocketAddr,
    roster: Roster,
    tracks: HashMap<String, TrackState>,
    clocks: HashMap<String, ParticipantClock>,
    offer_seen: bool,
    early_candidates: Vec<Candidate>,
    ready: Option<std::sync::mpsc::Sender<Result<(), LiveKitError>>>,
    disconnected_since: Option<Instant>,
    /// Server addresses to reach through another one.
    rewrites: HashMap<SocketAddr, SocketAddr>,
    /// Our address as announced, when not the socket's own.
    own_rewrite: HashMap<SocketAddr, SocketAddr>,
    /// Track sid → the size last asked of the server.
    asked_sizes: HashMap<String, (u32, u32)>,
    /// Transcriptions being reassembled (`None`: the egress takes no captions).
    transcripts: Option<crate::captions::Assembler>,
}

/// The size first asked for a new video track: a cell of a square grid of `cameras` on
/// an `output`-sized canvas (the egress's report of the drawn size follows within a second).
fn initial_size(output: (u32, u32), cameras: usize) -> (u32, u32) {
    let side = (cameras.max(1) as f64).sqrt().ceil() as u32;
    (output.0 / side, output.1 / side)
}

/// Runs the session until the room ends, it fails, or `stop` is set; reports readiness
/// (the media path connected) or the failure to connect on `ready`.
pub(super) async fn run(
    opts: ConnectOptions,
    shared: Arc<Shared>,
    ready: std::sync::mpsc::Sender<Result<(), LiveKitError>>,
    mut stop: watch::Receiver<bool>,
) {
    let opened = match super::token::egress_token(&opts) {
        Ok(token) => connection::open(&opts, &token).await.map(|c| (token, c)),
        Err(e) => Err(e),
    };
    let (token, conn) = match opened {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut s = Session {
        roster: Roster::new(opts.selection.clone()),
        opts,
        token,
        shared,
        client: conn.client,
        events: conn.events,
        socket: conn.socket,
        rtc: conn.rtc,
        local: conn.local,
        tracks: HashMap::new(),
        clocks: HashMap::new(),
        offer_seen: false,
        early_candidates: Vec::new(),
        ready: Some(ready),
        disconnected_since: None,
        rewrites: super::sdp::rewrites_from_env(),
        own_rewrite: HashMap::new(),
        asked_sizes: HashMap::new(),
        transcripts: None,
    };
    if s.opts.transcripts {
        s.transcripts = Some(crate::captions::Assembler::new());
    }
    if !s.rewrites.is_empty() {
        tracing::warn!(rewrites = ?s.rewrites, "server media addresses rewritten (TESSERA_ICE_REWRITE)");
    }
    s.joined(conn.join).await;

    let mut buf = vec![0u8; 2000];
    let end = loop {
        let next = s.step(&mut stop, &mut buf).await;
        match next {
            Next::Go => {}
            Next::End(end) => break end,
            Next::Reconnect(why) => {
                if let Err(e) = s.reconnect(&why).await {
                    break RoomEnd::Failed(e.to_string());
                }
            }
        }
    };
    tracing::info!(end = ?end, "left the room");
    if let Some(ready) = s.ready.take() {
        let reason = match &end {
            RoomEnd::Failed(e) => e.clone(),
            other => format!("{other:?} before the media path connected"),
        };
        let _ = ready.send(Err(LiveKitError::Media(reason)));
    }
    s.tracks.clear();
    s.shared.lock().end = Some(end);
}

impl Session {
    /// After a join: the room's id, our announced address, who is there (subscribing).
    async fn joined(&mut self, join: proto::JoinResponse) {
        if let Some(room) = &join.room {
            self.shared.lock().room_sid = room.sid.clone();
        }
        self.own_rewrite.clear();
        if let Some(public) = super::sdp::advertised_from_env() {
            self.own_rewrite.insert(self.local, public);
            tracing::warn!(local = %self.local, %public, "announcing another media address (TESSERA_ICE_ADVERTISE)");
        }
        if let Some(me) = &join.participant {
            self.own_metadata(std::slice::from_ref(me));
        }
        let changes = self.roster.apply(&join.other_participants);
        self.act(changes).await;
    }

    /// The recorder's own participant (identity = egress id): a `{"layout": …}` in its
    /// metadata is LiveKit's UpdateLayout (livekit-server sets it).
    fn own_metadata(&mut self, infos: &[proto::ParticipantInfo]) {
        for info in infos.iter().filter(|i| i.identity == self.opts.identity) {
            let Some(layout) = layout_in_metadata(&info.metadata) else {
                continue;
            };
            let mut s = self.shared.lock();
            if s.layout_seen.as_deref() != Some(layout.as_str()) {
                tracing::info!(
                    layout,
                    "layout requested in the egress participant's metadata"
                );
                s.layout_seen = Some(layout.clone());
                s.layout_request = Some(layout);
            }
        }
    }

    /// One turn of the loop: run str0m, then wait for signaling, a datagram, str0m's
    /// timeout or the stop.
    async fn step(&mut self, stop: &mut watch::Receiver<bool>, buf: &mut [u8]) -> Next {
        let timeout = match self.drain() {
            Ok(t) => t,
            Err(e) => return Next::Reconnect(e.to_string()),
        };
        if let Some(since) = self.disconnected_since
            && since.elapsed() > ICE_GRACE
        {
            return Next::Reconnect(format!(
                "media connection lost for over {} s",
                ICE_GRACE.as_secs()
            ));
        }
        self.ask_sizes().await;
        let wait = timeout.min(Instant::now() + Duration::from_secs(1));
        tokio::select! {
            _ = stop.changed() => {
                let leave = proto::LeaveRequest {
                    can_reconnect: false,
                    reason: proto::DisconnectReason::ClientInitiated as i32,
                    action: proto::leave_request::Action::Disconnect as i32,
                    ..Default::default()
                };
                self.client.send(Req::Leave(leave)).await;
                self.client.close().await;
                Next::End(RoomEnd::Stopped)
            }
            ev = self.events.recv() => match ev {
                None => Next::Reconnect("signaling connection closed".into()),
                Some(SignalEvent::Close(reason)) => match self.resume(&reason).await {
                    Ok(()) => Next::Go,
                    Err(e) => Next::Reconnect(e.to_string()),
                },
                Some(SignalEvent::Message(m)) => self.on_signal(*m).await,
            },
            r = self.socket.recv_from(buf) => {
                let Ok((n, source)) = r else { return Next::Go };
                let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, &buf[..n]) else {
                    return Next::Go;
                };
                if let Err(e) = self.rtc.handle_input(Input::Receive(Instant::now(), receive)) {
                    tracing::debug!(error = %e, "dropped a datagram");
                }
                Next::Go
            }
            _ = tokio::time::sleep_until(wait.into()) => {
                match self.rtc.handle_input(Input::Timeout(Instant::now())) {
                    Ok(()) => Next::Go,
                    Err(e) => Next::Reconnect(e.to_string()),
                }
            }
        }
    }

    /// Joins the room anew, as LiveKit clients do when a resume is refused: a new signal
    /// connection and a new peer; everything is subscribed again. The recording goes on
    /// (the pictures shown stay until new ones arrive).
    async fn reconnect(&mut self, why: &str) -> Result<(), LiveKitError> {
        tracing::warn!(reason = why, "rejoining the room");
        let mut last = LiveKitError::Signal(why.to_owned());
        for attempt in 0..RECONNECTS {
            tokio::time::sleep(REJOIN_BACKOFF.delay(attempt)).await;
            match connection::open(&self.opts, &self.token).await {
                Ok(conn) => {
                    self.client.close().await;
                    self.client = conn.client;
                    self.events = conn.events;
                    self.socket = conn.socket;
                    self.rtc = conn.rtc;
                    self.local = conn.local;
                    self.roster = Roster::new(self.opts.selection.clone());
                    self.tracks.clear();
                    self.clocks.clear();
                    self.asked_sizes.clear();
                    self.offer_seen = false;
                    self.early_candidates.clear();
                    self.disconnected_since = None;
                    self.joined(conn.join).await;
                    tracing::info!(attempt, "rejoined the room");
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "rejoining failed");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Runs str0m until it wants to wait; returns when to wake it next.
    fn drain(&mut self) -> Result<Instant, LiveKitError> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => return Ok(t),
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => self.on_event(e),
                Err(RtcError::Packet(mid, pt, e)) => {
                    tracing::debug!(%mid, %pt, error = %e, "undecodable packet dropped");
                }
                Err(e) => return Err(LiveKitError::Media(e.to_string())),
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                tracing::info!("media path connected");
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            Event::IceConnectionStateChange(state) => {
                tracing::debug!(?state, "ICE state");
                self.disconnected_since = match state {
                    IceConnectionState::Disconnected => {
                        self.disconnected_since.or(Some(Instant::now()))
                    }
                    _ => None,
                };
            }
            Event::MediaData(md) => self.on_media(md),
            Event::StreamPaused(p) => tracing::debug!(mid = %p.mid, paused = p.paused, "stream"),
            Event::ChannelOpen(id, label) => tracing::debug!(?id, %label, "data channel open"),
            Event::ChannelData(cd) => self.on_data(cd),
            _ => {}
        }
    }

    async fn on_signal(&mut self, m: Resp) -> Next {
        match m {
            Resp::Offer(sd) => {
                let media = super::sdp::offered_media(&sd.sdp, &sd.mid_to_track_id);
                self.roster.map_offer(&media);
                let sdp = super::sdp::rewrite_candidates(&sd.sdp, &self.rewrites);
                let offer = match SdpOffer::from_sdp_string(&sdp) {
                    Ok(o) => o,
                    Err(e) => return Next::Reconnect(format!("unreadable offer: {e}")),
                };
                let answer = match self.rtc.sdp_api().accept_offer(offer) {
                    Ok(a) => a,
                    Err(e) => return Next::Reconnect(format!("offer refused: {e}")),
                };
                self.client
                    .send(Req::Answer(proto::SessionDescription {
                        r#type: "answer".into(),
                        sdp: super::sdp::rewrite_candidates(
                            &answer.to_sdp_string(),
                            &self.own_rewrite,
                        ),
                        id: sd.id,
                        ..Default::default()
                    }))
                    .await;
                if !self.offer_seen {
                    self.offer_seen = true;
                    for c in self.early_candidates.drain(..) {
                        self.rtc.add_remote_candidate(c);
                    }
                    self.client.set_reconnected().await;
                }
                tracing::debug!(media = media.len(), "answered an offer");
            }
            Resp::Trickle(t) => {
                if t.target() != proto::SignalTarget::Subscriber {
                    return Next::Go;
                }
                #[derive(serde::Deserialize)]
                struct Init {
                    candidate: String,
                }
                let Ok(init) = serde_json::from_str::<Init>(&t.candidate_init) else {
                    tracing::warn!("unreadable trickle candidate");
                    return Next::Go;
                };
                let text = init.candidate.trim_start_matches("a=");
                if text.is_empty() {
                    return Next::Go;
                }
                let text = super::sdp::rewrite_candidate(text, &self.rewrites);
                match Candidate::from_sdp_string(&text) {
                    // Our socket is bound to one address family; others cannot pair.
                    Ok(c) if c.addr().is_ipv4() == self.local.is_ipv4() => {
                        if self.offer_seen {
                            self.rtc.add_remote_candidate(c);
                        } else {
                            self.early_candidates.push(c);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "candidate ignored"),
                }
            }
            Resp::Update(u) => {
                self.own_metadata(&u.participants);
                let changes = self.roster.apply(&u.participants);
                self.act(changes).await;
            }
            Resp::RoomUpdate(u) => {
                if let Some(room) = u.room
                    && !room.sid.is_empty()
                {
                    self.shared.lock().room_sid = room.sid;
                }
            }
            Resp::Leave(l) => {
                use proto::DisconnectReason as D;
                let reason = l.reason();
                use proto::leave_request::Action;
                tracing::info!(?reason, action = ?l.action(), "the server asked us to leave");
                return match (l.action(), reason) {
                    (Action::Resume, _) => match self.resume("the server asked").await {
                        Ok(()) => Next::Go,
                        Err(e) => Next::Reconnect(e.to_string()),
                    },
                    (Action::Reconnect, _) => Next::Reconnect("the server asked".into()),
                    (_, D::RoomDeleted | D::RoomClosed) => Next::End(RoomEnd::Closed),
                    (_, other) => Next::End(RoomEnd::Failed(format!(
                        "removed from the room: {}",
                        other.as_str_name()
                    ))),
                };
            }
            Resp::SubscriptionResponse(r) => {
                tracing::warn!(track = %r.track_sid, error = ?r.err(), "subscription refused");
            }
            _ => {}
        }
        Next::Go
    }

    /// Subscribes to new tracks and lets go of gone ones; republishes who is shown.
    async fn act(&mut self, changes: Changes) {
        let Changes {
            subscribe,
            gone_tracks,
            left,
        } = changes;
        {
            let mut state = self.shared.lock();
            for t in &gone_tracks {
                state.pictures.remove(t);
                state.sound.remove(t);
            }
            state.shown = shown::entries(&self.roster);
            state.publisher =
                shown::publisher(&state.shown, self.roster.selection()).or(state.publisher.take());
            state.ready = Some(shown::ready(&self.roster));
            let present = shown::subject_present(&self.roster);
            state.subject_seen |= present;
            if present {
                state.subject_gone_since = None;
            } else if state.subject_seen && state.subject_gone_since.is_none() {
                tracing::info!("the participant or track recorded is gone");
                state.subject_gone_since = Some(Instant::now());
            }
            let published = shown::published(&self.roster);
            if let Some(tap) = &self.opts.tap {
                let before = state.published.get(&tap.track).map(|p| p.muted);
                let now = published.get(&tap.track).map(|p| p.muted);
                if let (Some(b), Some(n)) = (before, now)
                    && b != n
                {
                    tap.tx.send(Tapped::Muted(n));
                }
            }
            state.published = published;
        }
        for t in &gone_tracks {
            self.tracks.remove(t);
            self.asked_sizes.remove(t);
        }
        for p in &left {
            self.clocks.remove(p);
        }
        if subscribe.is_empty() {
            return;
        }
        let mut by_participant: Vec<proto::ParticipantTracks> = Vec::new();
        for (p, t) in &subscribe {
            match by_participant.iter_mut().find(|x| &x.participant_sid == p) {
                Some(x) => x.track_sids.push(t.clone()),
                None => by_participant.push(proto::ParticipantTracks {
                    participant_sid: p.clone(),
                    track_sids: vec![t.clone()],
                }),
            }
        }
        let sids: Vec<String> = subscribe.iter().map(|(_, t)| t.clone()).collect();
        tracing::info!(tracks = ?sids, "subscribing");
        self.client
            .send(Req::Subscription(proto::UpdateSubscription {
                track_sids: sids.clone(),
                subscribe: true,
                participant_tracks: by_participant,
            }))
            .await;
        // Until the egress reports the drawn sizes (within a second), guess a grid cell.
        let cameras = self
            .roster
            .members()
            .iter()
            .filter(|m| m.track(proto::TrackSource::Camera).is_some())
            .count();
        let (w, h) = initial_size(self.opts.video_size, cameras);
        self.client
            .send(Req::TrackSetting(proto::UpdateTrackSettings {
                track_sids: sids,
                disabled: false,
                quality: proto::VideoQuality::High as i32,
                width: w,
                height: h,
                ..Default::default()
            }))
            .await;
    }

    /// Asks the server for the resolution each picture is drawn at (it forwards the
    /// simulcast layer that fits): small tiles never pull 1080p.
    async fn ask_sizes(&mut self) {
        let wanted = std::mem::take(&mut self.shared.lock().wanted_sizes);
        for (track, size) in wanted {
            if self.asked_sizes.get(&track) == Some(&size) || !self.tracks.contains_key(&track) {
                continue;
            }
            tracing::info!(track = %track, width = size.0, height = size.1, "asking for a picture size");
            self.client
                .send(Req::TrackSetting(proto::UpdateTrackSettings {
                    track_sids: vec![track.clone()],
                    disabled: false,
                    quality: proto::VideoQuality::High as i32,
                    width: size.0,
                    height: size.1,
                    ..Default::default()
                }))
                .await;
            self.asked_sizes.insert(track, size);
        }
    }

    /// The signaling connection dropped: resume it (the media path may well be alive).
    async fn resume(&mut self, reason: &str) -> Result<(), LiveKitError> {
        tracing::warn!(reason, "signaling connection lost; resuming");
        let mut last = String::new();
        for attempt in 0..5u32 {
            tokio::time::sleep(RESUME_BACKOFF.delay(attempt)).await;
            match self
                .client
                .restart(proto::ReconnectReason::RrSignalDisconnected)
                .await
            {
                Ok(_) => {
                    tracing::info!(attempt, "signaling resumed");
                    self.offer_seen = false;
                    return Ok(());
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(LiveKitError::Signal(format!("could not resume: {last}")))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_new_track_is_first_asked_for_at_a_grid_cells_size() {
        assert_eq!(super::initial_size((1280, 720), 1), (1280, 720));
        assert_eq!(super::initial_size((1280, 720), 4), (640, 360));
        assert_eq!(super::initial_size((1280, 720), 5), (426, 240));
        assert_eq!(super::initial_size((1280, 720), 0), (1280, 720));
    }
}
