//! The egress RPCs' own messages from livekit/protocol's `rpc/egress.proto` (the Rust
//! `livekit-protocol` crate carries only the public `livekit.*` types), and the services'
//! psrpc method table (`rpc/*.psrpc.go`: which methods need a claim, which are queues).

use livekit_protocol as lk;

/// `rpc.StartEgressRequest`: what livekit-server sends a worker.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StartEgressRequest {
    /// The egress id (livekit-server chooses it).
    #[prost(string, tag = "1")]
    pub egress_id: String,
    /// The request.
    #[prost(oneof = "start_egress_request::Request", tags = "16, 5, 11, 13, 6, 7")]
    pub request: Option<start_egress_request::Request>,
    /// The room's sid.
    #[prost(string, tag = "3")]
    pub room_id: String,
    /// The room's name (newer servers).
    #[prost(string, tag = "18")]
    pub room_name: String,
    /// A token for the room (never logged).
    #[prost(string, tag = "8")]
    pub token: String,
    /// The server's WebSocket URL.
    #[prost(string, tag = "9")]
    pub ws_url: String,
    /// LiveKit Cloud only.
    #[prost(bool, tag = "10")]
    pub cloud_backup_enabled: bool,
    /// LiveKit Cloud only.
    #[prost(double, tag = "14")]
    pub estimated_cpu: f64,
    /// How many times livekit-server has retried.
    #[prost(int32, tag = "15")]
    pub retry_count: i32,
}

/// The request kinds of `rpc.StartEgressRequest`.
pub mod start_egress_request {
    use super::lk;

    /// `oneof request` (a replay export, field 17, is not served: it stays unknown).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Request {
        /// The v2 request.
        #[prost(message, tag = "16")]
        Egress(lk::StartEgressRequest),
        /// Room composite.
        #[prost(message, tag = "5")]
        RoomComposite(lk::RoomCompositeEgressRequest),
        /// Web.
        #[prost(message, tag = "11")]
        Web(lk::WebEgressRequest),
        /// Participant.
        #[prost(message, tag = "13")]
        Participant(lk::ParticipantEgressRequest),
        /// Track composite.
        #[prost(message, tag = "6")]
        TrackComposite(lk::TrackCompositeEgressRequest),
        /// Track.
        #[prost(message, tag = "7")]
        Track(lk::TrackEgressRequest),
    }
}

/// `rpc.ListActiveEgressRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListActiveEgressRequest {}

/// `rpc.ListActiveEgressResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListActiveEgressResponse {
    /// The worker's egresses that have not ended.
    #[prost(string, repeated, tag = "1")]
    pub egress_ids: Vec<String>,
}

/// How psrpc routes a method (`sd.RegisterMethod(name, affinity, multi, requireClaim, queue)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    /// The service (`EgressInternal`, `EgressHandler`, `IOInfo`).
    pub service: &'static str,
    /// The method.
    pub name: &'static str,
    /// Servers claim the request and the caller picks one.
    pub require_claim: bool,
    /// One subscriber of a server takes each request (Redis `SET NX` lock).
    pub queue: bool,
}

/// `EgressInternal.StartEgress`: claimed with an affinity, not a queue; topic = cluster id.
pub const START_EGRESS: Method = Method {
    service: "EgressInternal",
    name: "StartEgress",
    require_claim: true,
    queue: false,
};

/// `EgressInternal.ListActiveEgress`: a multi-RPC, every worker answers.
pub const LIST_ACTIVE_EGRESS: Method = Method {
    service: "EgressInternal",
    name: "ListActiveEgress",
    require_claim: false,
    queue: false,
};

/// `EgressHandler.StopEgress`: topic = egress id.
pub const STOP_EGRESS: Method = Method {
    service: "EgressHandler",
    name: "StopEgress",
    require_claim: true,
    queue: true,
};

/// `EgressHandler.UpdateStream`: topic = egress id.
pub const UPDATE_STREAM: Method = Method {
    service: "EgressHandler",
    name: "UpdateStream",
    require_claim: true,
    queue: true,
};

/// `IOInfo.CreateEgress` (livekit-server stores the info, sends `egress_started`).
pub const CREATE_EGRESS: Method = Method {
    service: "IOInfo",
    name: "CreateEgress",
    require_claim: true,
    queue: true,
};

/// `IOInfo.UpdateEgress` (livekit-server stores it, sends `egress_updated`/`egress_ended`).
pub const UPDATE_EGRESS: Method = Method {
    service: "IOInfo",
    name: "UpdateEgress",
    require_claim: true,
    queue: true,
};

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Field numbers from rpc/egress.proto: egress_id 1, room_composite 5, room_id 3,
    /// ws_url 9, room_name 18 (two-byte key 0x92 0x01).
    #[test]
    fn start_egress_request_bytes_match_the_protocol() {
        let rc = lk::RoomCompositeEgressRequest {
            room_name: "r".into(),
            ..Default::default()
        };
        let rc_bytes = rc.encode_to_vec();
        assert_eq!(rc_bytes, [0x0a, 1, b'r']);
        let bytes: Vec<u8> = [
            &[0x0a, 4][..],
            b"EG_1",
            &[0x1a, 2],
            b"RM",
            &[0x2a, 3],
            &rc_bytes,
            &[0x4a, 2],
            b"ws",
            &[0x92, 0x01, 1],
            b"r",
        ]
        .concat();
        let req = StartEgressRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(req.egress_id, "EG_1");
        assert_eq!(req.room_id, "RM");
        assert_eq!(req.ws_url, "ws");
        assert_eq!(req.room_name, "r");
        assert_eq!(
            req.request,
            Some(start_egress_request::Request::RoomComposite(rc))
        );
        assert_eq!(req.encode_to_vec(), bytes);
    }

    /// A replay export (field 17) is skipped as unknown: no request to run.
    #[test]
    fn a_replay_request_has_no_request() {
        let bytes = [0x0a, 1, b'E', 0x8a, 0x01, 0];
        let req = StartEgressRequest::decode(&bytes[..]).unwrap();
        assert_eq!(req.egress_id, "E");
        assert!(req.request.is_none());
    }

    #[test]
    fn list_active_egress_response_bytes() {
        let r = ListActiveEgressResponse {
            egress_ids: vec!["A".into(), "B".into()],
        };
        assert_eq!(r.encode_to_vec(), [0x0a, 1, b'A', 0x0a, 1, b'B']);
    }
}
