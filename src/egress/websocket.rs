//! Track egress to a WebSocket, as LiveKit's egress does it: the audio track decoded to
//! raw PCM (S16LE, 48 kHz, two channels, interleaved) in binary messages as it is decoded,
//! a text message `{"muted":true}` / `{"muted":false}` when the publisher mutes or
//! unmutes, and a close message at the end. The connection carries
//! `Content-Type: audio/x-raw`. The receiver's pings are answered and it is pinged every
//! 30 s; its closing the connection ends the egress.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use livekit_protocol::{EgressInfo, EgressStatus, StreamInfo, stream_info};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::end::ending;
use super::error::EgressError;
use super::options::RunOptions;
use super::report::{conclude, failed, set_status};
use super::track::initial_track_info;
use crate::info::now_ns;
use crate::request::{TrackOutput, TrackPlan};
use crate::source::RoomSource;
use crate::source::livekit::tap::{TapReceiver, Tapped};

/// How often the receiver is pinged (LiveKit's egress: every 30 s).
const PING_PERIOD: Duration = Duration::from_secs(30);

/// Mono f32 samples → interleaved stereo S16LE (the sound on both channels).
pub fn to_stereo_s16le(samples: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 4);
    for s in samples {
        let b = crate::audio::to_s16(*s).to_le_bytes();
        out.extend_from_slice(&[b[0], b[1], b[0], b[1]]);
    }
    out
}

/// The text message LiveKit sends when the track is muted or unmuted.
pub fn muted_message(muted: bool) -> String {
    format!("{{\"muted\":{muted}}}")
}

/// How long connecting (TCP, TLS and the WebSocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the receiver may take no bytes before the egress gives it up.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

fn tcp_of(socket: &Socket) -> Option<&TcpStream> {
    match socket.get_ref() {
        MaybeTlsStream::Plain(s) => Some(s),
        MaybeTlsStream::Rustls(s) => Some(s.get_ref()),
        _ => None,
    }
}

/// Connects within `CONNECT_TIMEOUT`; writes then give up after `write_timeout`.
fn connect(url: &str, write_timeout: Duration) -> Result<Socket, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "Content-Type",
        tungstenite::http::HeaderValue::from_static("audio/x-raw"),
    );
    let uri = request.uri();
    let host = uri.host().ok_or("the URL names no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tls = uri.scheme_str() == Some("wss");
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} resolves to no address");
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let io = |e: std::io::Error| e.to_string();
    tcp.set_read_timeout(Some(CONNECT_TIMEOUT)).map_err(io)?;
    tcp.set_write_timeout(Some(write_timeout)).map_err(io)?;
    let _ = tcp.set_nodelay(true);
    limit_send_buffer(&tcp);
    let (socket, _) =
        tungstenite::client_tls_with_config(request, tcp, None, None).map_err(|e| e.to_string())?;
    // Reads only look for the receiver's pings and close (answered between sends): they
    // must never hold up the audio.
    tcp_of(&socket)
        .ok_or("unsupported TLS stream")?
        .set_read_timeout(Some(Duration::from_millis(1)))
        .map_err(io)?;
    Ok(socket)
}

/// The kernel's send buffer for the receiver: about 1.3 s of audio, so a receiver that
/// stops reading is noticed in seconds, not after megabytes of automatic buffer growth.
const SEND_BUFFER: libc::c_int = 256 * 1024;

fn limit_send_buffer(tcp: &TcpStream) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is the live socket `tcp` owns; the option value is a c_int
    // on the stack whose size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&SEND_BUFFER as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot size the WebSocket send buffer");
    }
}

/// A write that gave up: the receiver took no bytes for the write timeout.
fn stalled(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(e) if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ))
}

/// What the receiver sent, read without waiting: pings are answered (tungstenite queues
/// the pong; `flush` sends it); `true` when it closed the connection.
fn poll_receiver(socket: &mut Socket) -> bool {
    loop {
        match socket.read() {
            Ok(Message::Close(_)) => return true,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                let _ = socket.flush();
                return false;
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return true;
            }
            Err(e) => {
                tracing::debug!(error = %e, "reading the WebSocket");
                return false;
            }
        }
    }
}

/// Runs a track egress to a WebSocket; returns the final `EgressInfo` (the stream in
/// `stream_results`).
pub fn run(
    egress_id: &str,
    plan: &TrackPlan,
    room: &dyn RoomSource,
    rx: &TapReceiver,
    opts: &RunOptions,
) -> EgressInfo {
    let mut info = initial_track_info(egress_id, plan, &room.room_id());
    let TrackOutput::WebSocket(url) = &plan.output else {
        return failed(info, EgressError::Pipeline("not a websocket output".into()));
    };
    let shown_url = crate::request::stream_url::redact_url(url);
    let mut socket = match connect(url, WRITE_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            return failed(
                info,
                EgressError::Output {
                    field: "websocket_url".into(),
                    reason: format!("cannot connect to {shown_url}: {e}"),
                },
            );
        }
    };
    tracing::info!(url = %shown_url, track = %plan.track_id, "sending the track's audio over the WebSocket");
    let started = Instant::now();
    info.started_at = now_ns();
    set_status(&mut info, EgressStatus::EgressActive, &opts.status);
    let mut stream = StreamInfo {
        url: shown_url,
        started_at: info.started_at,
        status: stream_info::Status::Active as i32,
        ..Default::default()
    };
    let mut bytes = 0u64;
    let mut error = None;
    let mut last_ping = Instant::now();
    let (mut stuck, mut reported_drop) = (false, 0);
    loop {
        if poll_receiver(&mut socket) {
            tracing::info!("the WebSocket receiver closed the connection; ending");
            break;
        }
        if last_ping.elapsed() >= PING_PERIOD {
            last_ping = Instant::now();
            let _ = socket.send(Message::Ping("ping".into()));
        }
        if let Some(end) = ending(
            room,
            &opts.stop,
            opts.bounds(),
            started.elapsed(),
            &mut info,
        ) {
            error = end.err();
            break;
        }
        let message = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Tapped::Pcm { samples, .. }) => {
                let pcm = to_stereo_s16le(&samples);
                bytes += pcm.len() as u64;
                Message::binary(pcm)
            }
            Ok(Tapped::Muted(m)) => {
                tracing::info!(muted = m, "track mute changed");
                Message::text(muted_message(m))
            }
            Ok(Tapped::Frame(_)) | Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Err(e) = socket.send(message) {
            error = Some(EgressError::StreamsFailed(if stalled(&e) {
                stuck = true;
                format!(
                    "websocket: the receiver took no audio for {} s",
                    WRITE_TIMEOUT.as_secs()
                )
            } else {
                format!("websocket: {e}")
            }));
            break;
        }
        let dropped = rx.dropped_samples();
        if dropped > reported_drop {
            reported_drop = dropped;
            tracing::warn!(
                dropped_seconds = dropped as f64 / 48_000.0,
                "the WebSocket receiver is behind; the oldest audio was dropped"
            );
        }
    }
    set_status(&mut info, EgressStatus::EgressEnding, &opts.status);
    if stuck {
        // A receiver that takes nothing would hold the close for another timeout.
        if let Some(tcp) = tcp_of(&socket) {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
    } else {
        let _ = socket.close(None);
        let _ = socket.flush();
    }
    let ended = now_ns();
    stream.ended_at = ended;
    stream.duration = ended - stream.started_at;
    stream.status = if error.is_some() {
        stream_info::Status::Failed as i32
    } else {
        stream_info::Status::Finished as i32
    };
    tracing::info!(
        bytes,
        dropped_seconds = rx.dropped_samples() as f64 / 48_000.0,
        "websocket egress finished"
    );
    info.stream_results.push(stream);
    conclude(info, None, error, ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_is_stereo_s16le_and_mute_messages_are_livekits() {
        let b = to_stereo_s16le(&[0.5, -1.0, 2.0]);
        assert_eq!(b.len(), 12);
        let first = i16::from_le_bytes([b[0], b[1]]);
        assert_eq!(first, 16384);
        assert_eq!(i16::from_le_bytes([b[2], b[3]]), first);
        assert_eq!(i16::from_le_bytes([b[4], b[5]]), -i16::MAX);
        assert_eq!(i16::from_le_bytes([b[8], b[9]]), i16::MAX);
        assert_eq!(muted_message(true), r#"{"muted":true}"#);
    }

    #[test]
    fn a_receiver_that_stops_reading_stalls_a_send_instead_of_blocking_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let _ws = tungstenite::accept(tcp).unwrap();
            // Never reads again; keeps the connection open until the test ends.
            let _ = hold_rx.recv();
        });
        let mut socket = connect(
            &format!("ws://127.0.0.1:{port}/audio"),
            Duration::from_millis(300),
        )
        .unwrap();
        let chunk = vec![0u8; 64 * 1024];
        // 64 MiB: far past any kernel buffer on loopback; the send must give up first.
        let error = (0..1024).find_map(|_| socket.send(Message::binary(chunk.clone())).err());
        let error = error.expect("a send gives up once the receiver stops reading");
        assert!(stalled(&error), "{error}");
        drop(hold_tx);
        t.join().unwrap();
    }

    #[test]
    fn a_wss_url_gets_a_tls_error_not_a_panic() {
        // A server that accepts and hangs up: the TLS set-up (rustls, the process's crypto
        // provider) runs and the handshake fails cleanly.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let _ = listener.accept();
        });
        let r = connect(&format!("wss://127.0.0.1:{port}/audio"), WRITE_TIMEOUT);
        assert!(r.is_err());
        t.join().unwrap();
    }
}
