//! The composite egress's frame loop as a type with phases: [`EgressRun::open`] makes the
//! compositor's targets, the encoders and the GStreamer graph; [`EgressRun::start`] sets
//! it playing (ACTIVE); [`EgressRun::pace`] says when the next frame is due on a clock the
//! caller reads; [`EgressRun::tick`] composes, mixes and pushes one frame;
//! [`EgressRun::drain`] empties the GPU's readback rings and [`EgressRun::finish`] ends the
//! streams, waits for the muxers and closes the playlists. The run never sleeps or reads
//! the wall clock: the caller paces it. What decides (pacing, channels, the end) lives in
//! `pacing`, `channels` and `end`, tested on simulated time.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gstreamer as gst;
use gstreamer::prelude::*;
use livekit_protocol::{EgressInfo, EgressStatus};

use super::channels::ChannelMap;
use super::control::handle_control;
use super::conversation::ConversationLog;
use super::error::EgressError;
use super::graph::{self, Graph};
use super::live_layout::LiveLayout;
use super::options::RunOptions;
use super::pacing::{Pace, Pacer};
use super::report::{self, STREAMS_STOPPED};
use super::stats::{EgressStats, Stage};
use super::targets::{self, Outputs};
use crate::audio::Mixer;
use crate::compositor::{Backend, Compositor, Nv12Frame, scene};
use crate::encode;
use crate::info::now_ns;
use crate::output::images::ImagesOutput;
use crate::output::isolated::{IsolatedAudio, IsolatedError};
use crate::request::EgressPlan;
use crate::request::naming::NameContext;
use crate::source::{AUDIO_RATE, ParticipantInfo, PictureSizes, RoomSource};

/// Where a composited frame of each compositor target goes.
enum Dest {
    /// Video encode `i`.
    Encode(usize),
    /// Image output `i`.
    Image(usize),
}

/// Wall time per stage of a tick, for the capacity harness (nothing without one).
struct Laps<'a> {
    stats: Option<&'a EgressStats>,
    mark: Instant,
}

impl<'a> Laps<'a> {
    fn new(stats: Option<&'a EgressStats>) -> Self {
        Laps {
            stats,
            mark: Instant::now(),
        }
    }

    /// Counts the time since the last lap to `stage`.
    fn lap(&mut self, stage: Stage) {
        if let Some(s) = self.stats {
            let now = Instant::now();
            s.add(stage, now - self.mark);
            self.mark = now;
        }
    }
}

/// One composite egress while it records.
pub(super) struct EgressRun<'a> {
    plan: &'a EgressPlan,
    opts: &'a RunOptions,
    /// None for an audio-only egress.
    compositor: Option<Compositor>,
    /// Target `k` of the compositor goes to `dests[k]`: the video encodes (0 is the
    /// request's size), then the image outputs.
    dests: Vec<Dest>,
    /// The compositor target of each image output.
    image_targets: Vec<usize>,
    graph: Graph,
    bus: gst::Bus,
    mixer: Mixer,
    live: LiveLayout,
    channels: ChannelMap,
    pacer: Pacer,
    /// Frames composed so far (the next frame's number).
    tick: u64,
    /// Wall-clock time of media time 0 (image names and timestamps).
    epoch: DateTime<Utc>,
    /// The egress has only stream outputs: it ends when they all end.
    only_streams: bool,
    /// Captions and who spoke when, as the request asks.
    conversation: ConversationLog,
    /// Each participant's own audio, when asked for (`None` after a failure, in
    /// `isolated_failed`).
    isolated: Option<IsolatedAudio>,
    isolated_failed: Option<IsolatedError>,
}

impl<'a> EgressRun<'a> {
    /// Makes the compositor's targets, the encoders and the graph for `outputs`.
    pub(super) fn open(
        plan: &'a EgressPlan,
        backend: Option<Backend>,
        opts: &'a RunOptions,
        ctx: &NameContext<'_>,
        outputs: &Outputs,
    ) -> Result<Self, EgressError> {
        let (p, o) = (&plan.encoding, &plan.outputs);
        let epoch = Utc::now();
        let mut compositor = match (&backend, plan.tracks.video) {
            (Some(b), true) => Some(b.compositor(p.width, p.height)?),
            _ => None,
        };
        let mut dests = Vec::new();
        let mut image_targets = Vec::new();
        if let Some(comp) = compositor.as_mut() {
            dests.push(Dest::Encode(0));
            for (i, v) in o.video.iter().enumerate().skip(1) {
                comp.add_target(v.width, v.height)?;
                dests.push(Dest::Encode(i));
            }
            for (j, im) in outputs.images.iter().enumerate() {
                let (w, h) = im.size();
                image_targets.push(comp.add_target(w, h)?);
                dests.push(Dest::Image(j));
            }
        }
        let encoder = match (&compositor, o.video.is_empty()) {
            (Some(_), false) => Some(encode::shared_video_encoder()?),
            _ => None,
        };
        let files = &outputs.files;
        let mut graph = graph::build(
            plan,
            encoder.as_ref(),
            files,
            &outputs.segment_roots,
            ctx,
            epoch,
        )?;
        for (h, q) in graph.hls.iter_mut().zip(&outputs.segment_uploads) {
            if let Some(q) = q {
                h.set_uploads(q.clone());
            }
        }
        let bus = graph.pipeline.bus().expect("pipelines have a bus");
        Ok(EgressRun {
            plan,
            opts,
            compositor,
            dests,
            image_targets,
            graph,
            bus,
            mixer: Mixer::new(),
            live: LiveLayout::new(plan.layout.clone(), plan.layouts.clone()),
            channels: ChannelMap::default(),
            pacer: Pacer::new(p.framerate, AUDIO_RATE),
            tick: 0,
            epoch,
            only_streams: o.files.is_empty() && o.segments.is_empty() && o.images.is_empty(),
            conversation: ConversationLog::new(plan.conversation),
            isolated: match &outputs.isolated_dir {
                Some(dir) => Some(
                    IsolatedAudio::new(dir.clone(), p.audio_bitrate_kbps / 2)
                        .map_err(isolated_error)?,
                ),
                None => None,
            },
            isolated_failed: None,
        })
    }

    /// Sets the graph playing and the egress ACTIVE: its outputs' start time set, its
    /// streams started, the manifest written when asked for.
    pub(super) fn start(
        &mut self,
        info: &mut EgressInfo,
        outputs: &mut Outputs,
    ) -> Result<(), EgressError> {
        if self.graph.pipeline.set_state(gst::State::Playing).is_err() {
            let why = graph::drain_bus(&self.bus, &mut self.graph)
                .err()
                .map_or_else(|| "cannot start".into(), |e| e.to_string());
            return Err(EgressError::Pipeline(why));
        }
        info.started_at = now_ns();
        for h in &mut self.graph.hls {
            h.set_started(info.started_at);
        }
        for im in &mut outputs.images {
            im.set_started(info.started_at);
        }
        self.graph.streams.start(&self.plan.outputs.streams);
        info.stream_results = self.graph.streams.infos();
        report::set_status(info, EgressStatus::EgressActive, &self.opts.status);
        if self.plan.outputs.manifest {
            targets::write_manifest(info, outputs, &self.opts.out_dir, None);
        }
        Ok(())
    }

    /// Media time of the next frame.
    pub(super) fn media_time(&self) -> Duration {
        self.pacer.pts(self.tick)
    }

    /// When the next frame is due, `elapsed` after media time 0 on the caller's clock.
    pub(super) fn pace(&mut self, elapsed: Duration) -> Pace {
        self.pacer.pace(self.tick, elapsed)
    }

    /// Takes the requests that came in, then composes, mixes and pushes the next frame
    /// (`late`: it was due over a frame ago). `Ok(false)`: the egress is done (its last
    /// stream was removed).
    pub(super) fn tick(
        &mut self,
        room: &mut dyn RoomSource,
        info: &mut EgressInfo,
        outputs: &mut Outputs,
        late: bool,
    ) -> Result<bool, EgressError> {
        let opts = self.opts;
        let t = self.media_time();
        self.take_requests(room, info);
        self.live.poll_file(t);
        let infos = room.participants();
        self.conversation.take_transcripts(room, &infos);
        // Drawn participants come first; the others are only heard.
        let drawn = infos.iter().take_while(|p| p.drawn).count();
        let mut laps = Laps::new(opts.stats.as_deref());
        let hints = self.compose(room, &infos[..drawn], outputs, &mut laps)?;
        self.mix(room, &infos, drawn)?;
        laps.lap(Stage::Audio);
        self.poll_outputs(info)?;
        if self.only_streams && self.graph.streams.all_ended() {
            // Every stream was removed (those that failed too would have failed the
            // egress above): LiveKit ends the egress, COMPLETE.
            tracing::info!("no stream left; finishing the egress");
            info.details = STREAMS_STOPPED.into();
            return Ok(false);
        }
        if let Some(sizes) = hints {
            room.picture_sizes(&sizes);
        }
        self.tick += 1;
        if let Some(s) = &self.opts.stats {
            s.tick(late, self.pacer.pts(self.tick));
        }
        if let Some(media_s) = self.pacer.progress(self.tick) {
            tracing::info!(media_s, "recording");
        }
        Ok(true)
    }

    /// Control requests (UpdateStream, UpdateLayout) and a layout asked for in the egress
    /// participant's metadata (LiveKit's UpdateLayout through livekit-server).
    fn take_requests(&mut self, room: &mut dyn RoomSource, info: &mut EgressInfo) {
        let opts = self.opts;
        if let Some(rx) = &opts.control {
            while let Ok(c) = rx.try_recv() {
                handle_control(c, &mut self.graph, info, &mut self.live, room, &opts.status);
            }
        }
        if let Some(layout) = room.requested_layout() {
            match self.live.update_layout(&layout) {
                Ok(()) => {
                    let name = self.live.name();
                    tracing::info!(layout = %name, "layout switched (participant metadata)")
                }
                Err(e) => {
                    tracing::warn!(layout, error = %e, "layout in participant metadata refused")
                }
            }
        }
    }

    /// Composites the frame for every encode and every image output that is due, and
    /// hands on the frames the GPU has finished; returns the drawn picture sizes when the
    /// source is due them.
    fn compose(
        &mut self,
        room: &mut dyn RoomSource,
        drawn: &[ParticipantInfo],
        outputs: &mut Outputs,
        laps: &mut Laps<'_>,
    ) -> Result<Option<PictureSizes>, EgressError> {
        let Some(comp) = self.compositor.as_mut() else {
            return Ok(None);
        };
        let t = self.pacer.pts(self.tick);
        // Pictures first (their borrow of the room ends before audio is mixed).
        room.advance_video(t);
        laps.lap(Stage::Source);
        let frames: Vec<_> = (0..drawn.len()).map(|i| room.video(i)).collect();
        let members = scene::members(drawn, &frames);
        let pictures = scene::Pictures {
            cameras: &frames,
            screen_share: room.screen_share(),
        };
        let mut targets: Vec<usize> = (0..self.plan.outputs.video.len()).collect();
        for (j, im) in outputs.images.iter_mut().enumerate() {
            if im.due(t) {
                targets.push(self.image_targets[j]);
            }
        }
        let out = Delivery {
            graph: &self.graph,
            images: &outputs.images,
            epoch: self.epoch,
            frame_duration: self.pacer.frame_duration(),
        };
        let mut hints = None;
        if !targets.is_empty() {
            let sizes: Vec<_> = targets
                .iter()
                .map(|&k| {
                    let (w, h) = comp.target_size(k).expect("target exists");
                    (k, w, h)
                })
                .collect();
            let background = self.live.theme().background;
            if self.pacer.hints_due(self.tick) {
                // As drawn at the last tick (the live source adapts within ~1 s).
                hints = Some(self.live.picture_sizes().clone());
            }
            let captions = match self.plan.conversation.burn_in {
                true => self.conversation.showing(t),
                false => Vec::new(),
            };
            let look = self.live.caption_look();
            let mut scenes = self.live.scenes(&sizes, &members, &pictures, t);
            for (scene, &(_, w, h)) in scenes.iter_mut().zip(&sizes) {
                crate::compositor::add_captions(scene, &look, (w, h), &captions);
            }
            for &k in &targets {
                if !comp.can_send_to(k) {
                    let done = comp.receive_frame_from(k, true)?.expect("ring is full");
                    laps.lap(Stage::Readback);
                    out.send(&self.dests[k], done)?;
                    laps.lap(Stage::Push);
                }
            }
            let sends: Vec<_> = targets.iter().copied().zip(&scenes).collect();
            comp.send_frames(background, &sends, t)?;
            laps.lap(Stage::Composite);
        }
        for (k, dest) in self.dests.iter().enumerate() {
            while let Some(done) = comp.receive_frame_from(k, false)? {
                laps.lap(Stage::Readback);
                out.send(dest, done)?;
                laps.lap(Stage::Push);
            }
        }
        Ok(hints)
    }

    /// Mixes the frame's audio and pushes it. Mixed even without an audio output: the
    /// levels pick the active speaker.
    fn mix(
        &mut self,
        room: &mut dyn RoomSource,
        infos: &[ParticipantInfo],
        drawn: usize,
    ) -> Result<(), EgressError> {
        let channels = self.channels.assign(infos, self.plan.selection.mixing);
        let from = self.mixer.position();
        let until = self.pacer.audio_until(self.tick);
        let bytes = match self.isolated.as_mut() {
            None => self.mixer.mix_until(room, infos.len(), channels, until),
            Some(iso) => {
                let mut failed = None;
                let bytes = self.mixer.mix_until_each(
                    room,
                    infos.len(),
                    channels,
                    until,
                    &mut |i, first, samples| {
                        if let (None, Some(p)) = (&failed, infos.get(i))
                            && let Err(e) = iso.push(&p.identity, first, samples)
                        {
                            failed = Some(e);
                        }
                    },
                );
                if let Some(e) = failed {
                    tracing::warn!(error = %e, "isolated tracks stopped");
                    self.isolated = None;
                    self.isolated_failed = Some(e);
                }
                bytes
            }
        };
        if bytes.is_empty() {
            return Ok(());
        }
        let pts = self.pacer.sample_time(from);
        let dur = self.pacer.sample_time(until - from);
        let levels = self.mixer.levels();
        self.live.hear(&levels[..drawn.min(levels.len())], dur);
        self.conversation.hear(pts, dur, infos, levels);
        match self.graph.audio.as_ref() {
            Some(src) => graph::push(src, bytes, pts, dur),
            None => Ok(()),
        }
    }

    /// Handles the graph's messages and the streams' changes; every stream failing fails
    /// an egress that has nothing else.
    fn poll_outputs(&mut self, info: &mut EgressInfo) -> Result<(), EgressError> {
        graph::drain_bus(&self.bus, &mut self.graph)?;
        self.write_subtitles(false)?;
        if self.graph.streams.poll() {
            // A stream failed or is retried: clients polling ListEgress see it now.
            report::streams_changed(info, self.graph.streams.infos(), &self.opts.status);
        }
        if self.only_streams && self.graph.streams.all_failed() {
            let streams = self.graph.streams.infos();
            let why = streams.last().map(|s| s.error.clone()).unwrap_or_default();
            return Err(EgressError::StreamsFailed(why));
        }
        Ok(())
    }

    /// Writes the HLS subtitle segments whose media segments closed (every one, with the
    /// final cues, at the end).
    fn write_subtitles(&mut self, all: bool) -> Result<(), EgressError> {
        let written = self.pacer.pts(self.tick);
        if !all && !self.graph.hls.iter().any(|h| h.captions_pending()) {
            return Ok(());
        }
        let until = if all { written } else { Duration::MAX };
        let Some(cues) = self.conversation.cues(until) else {
            return Ok(());
        };
        for h in &mut self.graph.hls {
            h.write_captions(&cues, all)
                .map_err(|e| EgressError::Output {
                    field: "captions".into(),
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Hands on every frame still in the GPU's readback rings (and the GPU time per frame
    /// to the harness).
    pub(super) fn drain(&mut self, outputs: &Outputs) -> Result<(), EgressError> {
        let gpu_time = self
            .compositor
            .as_ref()
            .and_then(Compositor::gpu_time_per_frame);
        if let (Some(stats), Some(t)) = (&self.opts.stats, gpu_time) {
            stats.set_gpu_time(t);
        }
        let Some(comp) = self.compositor.as_mut() else {
            return Ok(());
        };
        let out = Delivery {
            graph: &self.graph,
            images: &outputs.images,
            epoch: self.epoch,
            frame_duration: self.pacer.frame_duration(),
        };
        for (k, dest) in self.dests.iter().enumerate() {
            while comp.in_flight_of(k) > 0 {
                let Some(done) = comp.receive_frame_from(k, true)? else {
                    break;
                };
                out.send(dest, done)?;
            }
        }
        Ok(())
    }

    /// Ends the streams, sends end-of-stream and waits for the muxers to finish their
    /// files, closes the playlists; returns the media time written. A failure goes to
    /// `error` unless it holds one already.
    pub(super) fn finish(
        mut self,
        info: &mut EgressInfo,
        outputs: &mut Outputs,
        error: &mut Option<EgressError>,
    ) -> Duration {
        let graph = &mut self.graph;
        info.stream_results = graph.streams.finish_all();
        for src in graph.video.iter().chain(graph.audio.iter()) {
            let _ = src.end_of_stream();
        }
        // An egress of images alone has no encode, so no end-of-stream to wait for.
        if (!graph.video.is_empty() || graph.audio.is_some())
            && let Err(e) = graph::wait_for_eos(&self.bus, graph)
        {
            error.get_or_insert(e);
        }
        let _ = graph.pipeline.set_state(gst::State::Null);
        // The last segments closed before end-of-stream: their subtitles, and every
        // earlier one again with the final cues.
        if let Err(e) = self.write_subtitles(true) {
            error.get_or_insert(e);
        }
        let isolated = match (self.isolated.take(), self.isolated_failed.take()) {
            (_, Some(e)) => Some(Err(e)),
            (Some(iso), None) => Some(iso.finish()),
            (None, None) => None,
        };
        let graph = &mut self.graph;
        if let Some(Ok(tracks)) = &isolated {
            for h in &mut graph.hls {
                if let Err(e) = h.add_isolated_audio(tracks) {
                    error.get_or_insert(EgressError::Output {
                        field: "isolated_audio".into(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        let ended = now_ns();
        // Every tick completed sent one frame (and its audio).
        let written = self.pacer.pts(self.tick);
        for h in &mut graph.hls {
            match h.finish(ended, written) {
                Ok(r) => info.segment_results.push(r),
                Err(e) => {
                    error.get_or_insert(EgressError::Output {
                        field: "segment_outputs".into(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        outputs.playlists = graph.hls.iter().flat_map(|h| h.files()).collect();
        outputs.conversation = Some(self.conversation);
        outputs.isolated = isolated;
        let media_s = written.as_secs_f64();
        tracing::info!(frames = self.tick, media_s, "egress finished");
        written
    }
}

fn isolated_error(e: IsolatedError) -> EgressError {
    EgressError::Output {
        field: "isolated_audio".into(),
        reason: e.to_string(),
    }
}

/// Where finished frames go: the encodes' sources and the image outputs.
struct Delivery<'a> {
    graph: &'a Graph,
    images: &'a [ImagesOutput],
    epoch: DateTime<Utc>,
    frame_duration: Duration,
}

impl Delivery<'_> {
    /// Hands a composited frame to its encode or image output.
    fn send(&self, dest: &Dest, frame: Nv12Frame) -> Result<(), EgressError> {
        match *dest {
            Dest::Encode(i) => match self.graph.video.get(i) {
                Some(src) => graph::push(src, frame.data, frame.pts, self.frame_duration),
                None => Ok(()),
            },
            Dest::Image(j) => {
                let at = self.epoch + frame.pts;
                self.images[j].submit(frame, at);
                Ok(())
            }
        }
    }
}
