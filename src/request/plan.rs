//! What a composite request plans into: the media it records and the validated plan.

use livekit_protocol::egress_info;

use super::encoding::EncodingParams;
use super::naming::EgressKind;
use super::outputs::OutputsPlan;
use super::select::{Selection, Tracks};
use super::web;
use crate::layout::{LayoutLibrary, ResolvedLayout};

/// The layout participant and track-composite egresses draw with (one picture, full
/// frame); `--layouts DIR` may restyle it.
pub const TRACK_LAYOUT: &str = "track";

/// A validated composite egress (room composite, participant, track composite, or a v2
/// request with a template or media source), ready to run.
#[derive(Clone, Debug)]
pub struct EgressPlan {
    /// Which LiveKit egress type it is (which filename variables apply).
    pub kind: EgressKind,
    /// What it takes from the room.
    pub selection: Selection,
    /// The room's name.
    pub room_name: String,
    /// The layout, resolved from its template file.
    pub layout: ResolvedLayout,
    /// The layouts known when planning: `UpdateLayout` switches among them.
    pub layouts: LayoutLibrary,
    /// Encoding after presets/advanced/defaults.
    pub encoding: EncodingParams,
    /// Which media are recorded.
    pub tracks: Tracks,
    /// Every output, and the encodes they share.
    pub outputs: OutputsPlan,
    /// The request as parsed, echoed (redacted) in `EgressInfo`.
    pub request: egress_info::Request,
    /// A web egress or a custom web template: the page recorded instead of the room's
    /// tracks (drawn full frame with the `track` layout).
    pub web: Option<web::WebPlan>,
    /// Captions and the speaker timeline (tessera's extensions).
    pub conversation: super::conversation::Conversation,
}
