//! Opening one connection to the room: signaling (the join), a UDP socket on the address
//! that routes to the server, and a str0m peer with one host candidate. A full reconnect
//! opens a new one.

use std::net::SocketAddr;
use std::time::Instant;

use livekit_protocol as proto;
use livekit_signaling::{SignalClient, SignalEvents, SignalOptions};
use str0m::{Candidate, Rtc};
use tokio::net::UdpSocket;

use super::error::LiveKitError;
use super::options::ConnectOptions;

/// The newest protocol livekit-server 1.13 speaks (18 would pre-negotiate data channels).
const PROTOCOL_VERSION: u32 = 17;

/// A joined room: the signal client, what the join said, and the media peer.
pub(super) struct Connection {
    pub client: SignalClient,
    pub join: proto::JoinResponse,
    pub events: SignalEvents,
    pub socket: UdpSocket,
    pub local: SocketAddr,
    pub rtc: Rtc,
}

fn signal_options() -> SignalOptions {
    let mut o = SignalOptions::default();
    o.auto_subscribe = false;
    o.adaptive_stream = false;
    o.region_failover = false;
    o.protocol_version = PROTOCOL_VERSION;
    // Without the packet-trailer capability the server strips LiveKit's trailers.
    o.client_capabilities = Vec::new();
    o
}

/// The address this machine uses to reach the server (its host candidate).
async fn local_ip_towards(url: &str) -> Result<std::net::IpAddr, LiveKitError> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    let with_port = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:443")
    };
    let target = tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| LiveKitError::Signal(format!("resolving {authority}: {e}")))?
        .next()
        .ok_or_else(|| LiveKitError::Signal(format!("{authority} has no address")))?;
    let any = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let probe = std::net::UdpSocket::bind(any)?;
    probe.connect(target)?;
    Ok(probe.local_addr()?.ip())
}

/// A str0m peer that takes every codec LiveKit forwards.
fn peer(local: SocketAddr) -> Result<Rtc, LiveKitError> {
    let mut rtc = Rtc::builder()
        .set_ice_lite(false)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_vp9(true)
        .enable_h264(true)
        .enable_av1(true)
        .set_reordering_size_video(200)
        .build(Instant::now());
    let candidate = Candidate::host(local, "udp")
        .map_err(|e| LiveKitError::Media(format!("host candidate {local}: {e}")))?;
    rtc.add_local_candidate(candidate);
    Ok(rtc)
}

/// Joins the room with `token`.
pub(super) async fn open(opts: &ConnectOptions, token: &str) -> Result<Connection, LiveKitError> {
    let (client, join, events) = SignalClient::connect(&opts.url, token, signal_options(), None)
        .await
        .map_err(|e| LiveKitError::Signal(e.to_string()))?;
    let ip = local_ip_towards(&opts.url).await?;
    let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    let local = socket.local_addr()?;
    let rtc = peer(local)?;
    tracing::info!(
        room = %opts.room_name,
        server = join.server_info.as_ref().map_or("", |s| s.version.as_str()),
        participants = join.other_participants.len(),
        local = %local,
        "joined the room as a hidden recorder"
    );
    Ok(Connection {
        client,
        join,
        events,
        socket,
        local,
        rtc,
    })
}
