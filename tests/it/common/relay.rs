//! A lossy UDP relay of our own between the recorder and livekit-server: every datagram
//! passes through one socket; RTP packets from the server to the recorder are dropped at a
//! given rate (STUN, DTLS and RTCP always pass, so the session still forms and feedback
//! flows). The recorder reaches the server through it (`TESSERA_ICE_REWRITE`) and announces
//! it as its own address (`TESSERA_ICE_ADVERTISE`), so no packet bypasses it.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct LossyRelay {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub forwarded: Arc<AtomicU64>,
    pub dropped: Arc<AtomicU64>,
}

/// An RTP (not RTCP) packet: version 2, payload type outside RTCP's 192..=223.
fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && d[0] >> 6 == 2 && !(192..=223).contains(&d[1])
}

impl LossyRelay {
    /// Relays to `server`, dropping `loss` (0..1) of its RTP packets to the recorder.
    pub fn start(server: SocketAddr, loss: f64) -> LossyRelay {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (s, f, d) = (stop.clone(), forwarded.clone(), dropped.clone());
        let thread = std::thread::spawn(move || {
            let mut client: Option<SocketAddr> = None;
            let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let data = &buf[..n];
                let to = if from == server {
                    let Some(c) = client else { continue };
                    if is_rtp(data) {
                        // xorshift64: deterministic, good enough for a drop decision.
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        if (seed % 10_000) as f64 / 10_000.0 < loss {
                            d.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    c
                } else {
                    client = Some(from);
                    server
                };
                let _ = socket.send_to(data, to);
                f.fetch_add(1, Ordering::Relaxed);
            }
        });
        LossyRelay {
            addr,
            stop,
            thread: Some(thread),
            forwarded,
            dropped,
        }
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP proxy whose connections can be cut (as a network drop would): signaling goes
/// through it, so the test can take the recorder's WebSocket away mid-recording.
pub struct TcpCutter {
    pub port: u16,
    live: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl TcpCutter {
    /// Forwards every connection on a new loopback port to `target`.
    pub fn start(target: SocketAddr) -> TcpCutter {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let live = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (live.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                l.lock().unwrap().extend([client, server]);
            }
        });
        TcpCutter { port, live, stop }
    }

    /// Cuts every connection open now (new ones are still accepted).
    pub fn cut(&self) {
        for c in self.live.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for TcpCutter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
    }
}
