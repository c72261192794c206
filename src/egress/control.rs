//! Requests to a running egress: LiveKit's `UpdateStream` and `UpdateLayout`, from the
//! CLI's control input today and the service later. Each gets an answer on its channel.

use std::sync::mpsc::Sender;

use livekit_protocol::{EgressInfo, UpdateStreamRequest};

use super::graph::Graph;
use super::live_layout::LiveLayout;
use super::report::{StatusSink, streams_changed};
use crate::source::RoomSource;

/// A request to a running egress (from the CLI's control input, or the service).
#[derive(Debug)]
pub enum Control {
    /// LiveKit's `UpdateStream`: add and remove stream URLs. The reply is the egress's
    /// info with its streams as they are after the change, or why it was refused.
    UpdateStream {
        /// The request.
        request: UpdateStreamRequest,
        /// Where the answer goes.
        reply: Sender<Result<EgressInfo, String>>,
    },
    /// LiveKit's `UpdateLayout`: switch to another layout by name. The reply is the
    /// layout now in use, or why the name was refused.
    UpdateLayout {
        /// The layout name (`speaker`, `grid-light`, a file in the layouts directory).
        layout: String,
        /// Where the answer goes.
        reply: Sender<Result<String, String>>,
    },
}

/// Answers one request: a stream change is applied to `graph` and reported to `sink`; a
/// layout change goes to the room (a web page's) or to `live`.
pub(super) fn handle_control(
    c: Control,
    graph: &mut Graph,
    info: &mut EgressInfo,
    live: &mut LiveLayout,
    room: &mut dyn RoomSource,
    sink: &StatusSink,
) {
    match c {
        Control::UpdateLayout { layout, reply } => {
            if room.update_layout(&layout, &reply) {
                return;
            }
            let result = live
                .update_layout(&layout)
                .map(|()| live.name().to_owned())
                .map_err(|e| e.to_string());
            if let Err(e) = &result {
                tracing::warn!(error = %e, "update layout refused");
            }
            let _ = reply.send(result);
        }
        Control::UpdateStream { request, reply } => {
            let result = graph
                .streams
                .update(&request.add_output_urls, &request.remove_output_urls)
                .map(|()| {
                    streams_changed(info, graph.streams.infos(), sink);
                    info.clone()
                })
                .map_err(|e| e.to_string());
            if let Err(e) = &result {
                tracing::warn!(error = %e, "update stream refused");
            }
            let _ = reply.send(result);
        }
    }
}
