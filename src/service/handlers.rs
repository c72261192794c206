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
use super::worker_error::WorkerError;

/// The psrpc error livekit-server's client gets for a worker's refusal or failure.
fn rpc_error(e: WorkerError) -> RpcError {
    let c = match &e {
        WorkerError::Draining | WorkerError::Unavailable(_) => code::UNAVAILABLE,
        WorkerError::Invalid(_) => code::INVALID_ARGUMENT,
        WorkerError::Exists(_) => code::ALREADY_EXISTS,
        WorkerError::NoCapacity(_) => code::RESOURCE_EXHAUSTED,
        WorkerError::NotFound(_) => code::NOT_FOUND,
        WorkerError::NotRunning(_) => code::FAILED_PRECONDITION,
        WorkerError::Refused { code, .. } => code.as_str(),
        WorkerError::Timeout => code::DEADLINE_EXCEEDED,
        WorkerError::Internal(_) => code::INTERNAL,
    };
    RpcError::new(c, e.to_string())
}

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
                .await
                .map_err(rpc_error)?;
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
            w.stop(&req.egress_id)
                .map(|i| i.encode_to_vec())
                .map_err(rpc_error)
        })
    }
}

struct Update(Worker);

impl Handler for Update {
    fn handle(&self, request: Vec<u8>) -> HandlerFuture {
        let w = self.0.clone();
        Box::pin(async move {
            let req = UpdateStreamRequest::decode(request.as_slice()).map_err(malformed)?;
            w.update_stream(req)
                .await
                .map(|i| i.encode_to_vec())
                .map_err(rpc_error)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_gets_the_psrpc_code_livekits_egress_answers_with() {
        let cases = [
            (WorkerError::Draining, code::UNAVAILABLE),
            (
                WorkerError::Invalid("egress_id: bad".into()),
                code::INVALID_ARGUMENT,
            ),
            (WorkerError::Exists("EG_a".into()), code::ALREADY_EXISTS),
            (
                WorkerError::NoCapacity("full".into()),
                code::RESOURCE_EXHAUSTED,
            ),
            (WorkerError::NotFound("EG_a".into()), code::NOT_FOUND),
            (
                WorkerError::NotRunning("ending".into()),
                code::FAILED_PRECONDITION,
            ),
            (WorkerError::Timeout, code::DEADLINE_EXCEEDED),
            (WorkerError::Internal("thread".into()), code::INTERNAL),
        ];
        for (e, want) in cases {
            let message = e.to_string();
            let r = rpc_error(e);
            assert_eq!((r.code.as_str(), r.message), (want, message));
        }
        let refused = WorkerError::Refused {
            code: code::FAILED_PRECONDITION.into(),
            message: "no".into(),
        };
        let r = rpc_error(refused);
        assert_eq!(
            (r.code.as_str(), r.message.as_str()),
            (code::FAILED_PRECONDITION, "CreateEgress: no")
        );
    }
}
