//! Data the room sends the recorder over the data channels: LiveKit `DataPacket`s, of
//! which the transcriptions are kept (when the egress takes captions), each stamped on the
//! session clock as it arrives and tied to the participant whose speech it is.

use prost::Message;
use str0m::channel::ChannelData;

use super::Session;
use crate::captions::Speaker;
use crate::source::Transcript;

/// Transcriptions kept for the egress at most; the oldest go first (an egress takes them
/// every frame, so only a stalled one ever reaches this).
const MAX_WAITING: usize = 10_000;

impl Session {
    /// One message from a data channel.
    pub(super) fn on_data(&mut self, cd: ChannelData) {
        let Some(assembler) = self.transcripts.as_mut() else {
            return;
        };
        let packet = match livekit_protocol::DataPacket::decode(cd.data.as_slice()) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, bytes = cd.data.len(), "undecodable data packet");
                return;
            }
        };
        let sender = packet.participant_identity.clone();
        let heard = assembler.receive(packet);
        if heard.is_empty() {
            return;
        }
        let at = self.shared.epoch.elapsed();
        let mut state = self.shared.lock();
        for h in heard {
            let identity = match &h.speaker {
                Speaker::Identity(who) => who.clone(),
                Speaker::Track(sid) => state
                    .published
                    .get(sid)
                    .map_or_else(|| sender.clone(), |p| p.identity.clone()),
            };
            tracing::debug!(%identity, segment = %h.segment, is_final = h.is_final, "transcription");
            if state.transcripts.len() >= MAX_WAITING {
                state.transcripts.remove(0);
            }
            state.transcripts.push(Transcript {
                at,
                identity,
                heard: h,
            });
        }
    }
}
