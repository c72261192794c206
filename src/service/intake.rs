//! A request as the service receives it (psrpc's `rpc.StartEgressRequest`, or the
//! standalone API's `Start*` bodies, both protobuf types) planned into a `Job` with the
//! same planners `tessera run` uses; the job's admission shape and session limit.

use std::time::Duration;

use livekit_protocol::EgressInfo;

use super::admission::JobShape;
use super::rpc::start_egress_request::Request;
use crate::config::ServiceConfig;
use crate::egress;
use crate::layout::LayoutLibrary;
use crate::request::naming::EgressKind;
use crate::request::{self, Extensions, Job, RequestError, TrackOutput, kinds};

/// Plans `req` (errors name the field, as `tessera run` reports them).
pub fn plan(req: &Request, layouts: &LayoutLibrary) -> Result<Job, RequestError> {
    // Protobuf requests carry none of tessera's JSON extensions.
    let ext = &Extensions::default();
    Ok(match req {
        Request::RoomComposite(r) => Job::Composite(Box::new(request::plan_room_composite(
            r.clone(),
            ext,
            layouts,
        )?)),
        Request::Web(r) => Job::Composite(Box::new(kinds::plan_web(r.clone(), ext, layouts)?)),
        Request::Participant(r) => {
            Job::Composite(Box::new(kinds::plan_participant(r.clone(), ext, layouts)?))
        }
        Request::TrackComposite(r) => Job::Composite(Box::new(kinds::plan_track_composite(
            r.clone(),
            ext,
            layouts,
        )?)),
        Request::Track(r) => Job::Track(Box::new(kinds::plan_track(r.clone())?)),
        Request::Egress(r) => kinds::plan_start(r.clone(), ext, layouts)?,
    })
}

/// The request kind's name in metrics and logs (`room_composite`, `web`, …).
pub fn kind_label(job: &Job) -> &'static str {
    let kind = match job {
        Job::Composite(p) => p.kind,
        Job::Track(_) => EgressKind::Track,
    };
    match kind {
        EgressKind::RoomComposite => "room_composite",
        EgressKind::Web => "web",
        EgressKind::Participant => "participant",
        EgressKind::TrackComposite => "track_composite",
        EgressKind::Track => "track",
    }
}

/// What admission needs to know.
pub fn shape(job: &Job) -> JobShape {
    match job {
        Job::Composite(p) => JobShape {
            kind: p.kind,
            video: p.tracks.video,
            width: p.encoding.width,
            height: p.encoding.height,
            framerate: p.encoding.framerate,
        },
        Job::Track(_) => JobShape {
            kind: EgressKind::Track,
            video: false,
            width: 0,
            height: 0,
            framerate: 0,
        },
    }
}

/// The shortest session limit among the job's outputs.
pub fn limit(config: &ServiceConfig, job: &Job) -> Option<Duration> {
    match job {
        Job::Composite(p) => {
            let o = &p.outputs;
            config.limit_for(
                !o.files.is_empty(),
                o.has_stream_output || !o.streams.is_empty(),
                !o.segments.is_empty(),
                !o.images.is_empty(),
            )
        }
        Job::Track(t) => match t.output {
            TrackOutput::WebSocket(_) => config.limit_for(false, true, false, false),
            _ => config.limit_for(true, false, false, false),
        },
    }
}

/// The job's info at the start: STARTING, request echoed (redacted).
pub fn starting_info(egress_id: &str, job: &Job, room_id: &str) -> EgressInfo {
    match job {
        Job::Composite(p) => egress::initial_info(egress_id, p, room_id),
        Job::Track(t) => egress::track::initial_track_info(egress_id, t, room_id),
    }
}

#[cfg(test)]
mod tests {
    use livekit_protocol as lk;

    use super::*;

    #[test]
    fn a_protobuf_room_composite_plans_as_its_json_does() {
        let r = lk::RoomCompositeEgressRequest {
            room_name: "demo".into(),
            layout: "speaker".into(),
            file_outputs: vec![lk::EncodedFileOutput {
                filepath: "rec/{room_name}.mp4".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let job = plan(&Request::RoomComposite(r), &LayoutLibrary::builtin()).unwrap();
        let s = shape(&job);
        assert_eq!(
            (s.kind, s.video, s.width, s.height),
            (EgressKind::RoomComposite, true, 1280, 720)
        );
        assert_eq!(kind_label(&job), "room_composite");
        let info = starting_info("EG_x", &job, "RM_1");
        assert_eq!(info.status, lk::EgressStatus::EgressStarting as i32);
        assert_eq!(info.room_name, "demo");
    }

    #[test]
    fn bad_requests_name_the_field() {
        let r = lk::RoomCompositeEgressRequest {
            room_name: "demo".into(),
            layout: "no-such-layout".into(),
            file_outputs: vec![lk::EncodedFileOutput::default()],
            ..Default::default()
        };
        let e = plan(&Request::RoomComposite(r), &LayoutLibrary::builtin()).unwrap_err();
        assert_eq!(e.field(), Some("layout"), "{e}");
    }
}
