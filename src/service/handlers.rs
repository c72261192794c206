//! The psrpc methods the worker serves, as adapters from protobuf bytes to the worker:
//! `EgressInternal.StartEgress` (claimed with the worker's affinity) and
//! `ListActiveEgress` on the cluster's topic, and per running egress
//! `EgressHandler.StopEgress` and `UpdateStream` on its id.

use std::sync::Arc;

use livekit_protocol::{StopEgressRequest, UpdateStreamRequest};
use prost::Message;

use super::psrpc::{self, Handler, HandlerFuture, RpcError, wire::code};
use super::rpc::{self, ListActiveEgressResponse};
use super::worker::{EgressEndpoints, EndpointsFuture, StartRequest, Worker};

fn malformed(e: prost::DecodeError) -> RpcError {
    RpcError::new(code::MALFORMED_REQUEST, e.to_string())
}

/// `EgressInternal.StartEgress`.
pub struct StartEgress(pub Worker);

impl Handler for StartEgress {
    fn affinity(&self, request: &[u8]) -> f32 {
        match rpc::StartEgressRequest::decode(request) {
            Ok(rpc::StartEgressRequest {
                request: Some(req), ..
            }) => self.0.affinity(&req),
            // Unreadable, or a kind this worker does not serve (a replay export): no claim.
            _ => -1.0,
        }
    }

    fn handle(&self, request: Vec<u8>) -> HandlerFuture {
        let w = self.0.clone();
        Box::pin(async move {
            let r = rpc::StartEgressRequest::decode(request.as_slice()).map_err(malformed)?;
            let req = r.request.ok_or_else(|| {
                RpcError::new(code::INVALID_ARGUMENT, "request: unsupported request type")
            })?;
            let info = w
                .start(StartRequest {
                    egress_id: r.egress_id,
                    request: req,
                    room_id: r.room_id,
                    ws_url: r.ws_url,
                })
                .await?;
            Ok(info.encode_to_vec())
        })
    }
}

/// `EgressInternal.ListActiveEgress` (a multi-RPC: every worker answers).
pub struct ListActive(pub Worker);

impl Handler for ListActive {
    fn handle(&self, _request: Vec<u8>) -> HandlerFuture {
        let ids = self.0.active_ids();
        Box::pin(async move { Ok(ListActiveEgressResponse { egress_ids: ids }.encode_to_vec()) })
    }
}

struct Stop(Worker);

impl Handler for Stop {
    fn handle(&self, request: Vec<u8>) -> HandlerFuture {
        let w = self.0.clone();
        Box::pin(async move {
            let req = StopEgressRequest::decode(request.as_slice()).map_err(malformed)?;
            w.stop(&req.egress_id).map(|i| i.encode_to_vec())
        })
    }
}

struct Update(Worker);

impl Handler for Update {
    fn handle(&self, request: Vec<u8>) -> HandlerFuture {
        let w = self.0.clone();
        Box::pin(async move {
            let req = UpdateStreamRequest::decode(request.as_slice()).map_err(malformed)?;
            w.update_stream(req).await.map(|i| i.encode_to_vec())
        })
    }
}

/// A running egress's StopEgress and UpdateStream, served over psrpc on its id.
pub struct PsrpcEndpoints(pub psrpc::Server);

impl EgressEndpoints for PsrpcEndpoints {
    fn register<'a>(&'a self, worker: &'a Worker, id: &'a str) -> EndpointsFuture<'a> {
        Box::pin(async move {
            let stop = Arc::new(Stop(worker.clone()));
            let update = Arc::new(Update(worker.clone()));
            Ok(vec![
                self.0.register(rpc::STOP_EGRESS, id, stop).await?,
                self.0.register(rpc::UPDATE_STREAM, id, update).await?,
            ])
        })
    }
}
