//! A track egress's view of its track: the frames as received (no decoding), or its
//! audio decoded, plus the publisher's mute changes, through a queue that holds at most
//! a few seconds of decoded audio (the oldest is dropped when a slow consumer falls
//! behind) and never drops frames or mute changes.

use std::collections::VecDeque;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use super::decode::Codec;

/// One received frame, as the publisher encoded it.
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    /// Its codec.
    pub codec: Codec,
    /// One access unit (H.264 Annex B), VP8/VP9 frame, AV1 temporal unit or Opus packet.
    pub data: Vec<u8>,
    /// RTP time, extended past the 32-bit wrap.
    pub rtp: u64,
    /// RTP clock rate (90 kHz video, 48 kHz Opus).
    pub clock_rate: u32,
    /// A key frame (always true for audio).
    pub keyframe: bool,
    /// The first frame after a gap that could not be repaired.
    pub discont: bool,
}

/// What a tap delivers.
#[derive(Clone, Debug)]
pub enum Tapped {
    /// A received frame (`TapMode::Encoded`).
    Frame(EncodedFrame),
    /// Decoded mono samples at 48 kHz, the first at session sample `at` (`TapMode::Pcm`).
    Pcm {
        /// Sample index on the session clock.
        at: u64,
        /// Mono f32 samples.
        samples: Vec<f32>,
    },
    /// The publisher muted (true) or unmuted (false) the track.
    Muted(bool),
}

/// How a tapped track is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapMode {
    /// Frames as received: nothing is decoded.
    Encoded,
    /// Audio decoded to samples.
    Pcm,
}

/// Where a track egress takes its track from the session.
#[derive(Clone, Debug)]
pub struct Tap {
    /// The track (`TR_…`).
    pub track: String,
    /// Frames or samples.
    pub mode: TapMode,
    /// Where they go.
    pub tx: TapSender,
}

/// Decoded audio a tap holds before it drops the oldest: 5 s at 48 kHz.
pub const PCM_HELD_SAMPLES: usize = 5 * 48_000;

struct Queue {
    items: VecDeque<Tapped>,
    /// Decoded samples queued.
    pcm_samples: usize,
    /// Decoded samples dropped because the consumer fell behind.
    dropped: u64,
    senders: usize,
    receiver_gone: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    pcm_limit: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The session's end of a tap. Cloned senders share one queue; the receiver sees the
/// queue closed once every sender is dropped.
pub struct TapSender(Arc<Shared>);

/// The track egress's end of a tap.
pub struct TapReceiver(Arc<Shared>);

/// A tap's queue holding at most `pcm_limit` decoded samples.
pub fn channel(pcm_limit: usize) -> (TapSender, TapReceiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            items: VecDeque::new(),
            pcm_samples: 0,
            dropped: 0,
            senders: 1,
            receiver_gone: false,
        }),
        ready: Condvar::new(),
        pcm_limit,
    });
    (TapSender(shared.clone()), TapReceiver(shared))
}

impl TapSender {
    /// Queues `item`; decoded audio past the limit pushes out the oldest audio. Returns
    /// false once the receiver is gone.
    pub fn send(&self, item: Tapped) -> bool {
        let mut q = self.0.lock();
        if q.receiver_gone {
            return false;
        }
        if let Tapped::Pcm { samples, .. } = &item {
            q.pcm_samples += samples.len();
            while q.pcm_samples > self.0.pcm_limit {
                let Some(i) = q.items.iter().position(|t| matches!(t, Tapped::Pcm { .. })) else {
                    break;
                };
                if let Some(Tapped::Pcm { samples, .. }) = q.items.remove(i) {
                    q.pcm_samples -= samples.len();
                    q.dropped += samples.len() as u64;
                }
            }
        }
        q.items.push_back(item);
        drop(q);
        self.0.ready.notify_one();
        true
    }
}

impl Clone for TapSender {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        TapSender(self.0.clone())
    }
}

impl Drop for TapSender {
    fn drop(&mut self) {
        self.0.lock().senders -= 1;
        self.0.ready.notify_all();
    }
}

impl std::fmt::Debug for TapSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TapSender")
    }
}

impl TapReceiver {
    /// The next item, waiting at most `timeout`; `Disconnected` once the queue is empty
    /// and every sender is gone.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Tapped, RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        let mut q = self.0.lock();
        loop {
            if let Some(item) = q.items.pop_front() {
                if let Tapped::Pcm { samples, .. } = &item {
                    q.pcm_samples -= samples.len();
                }
                return Ok(item);
            }
            if q.senders == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvTimeoutError::Timeout);
            }
            q = self
                .0
                .ready
                .wait_timeout(q, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Decoded samples dropped so far because the consumer fell behind.
    pub fn dropped_samples(&self) -> u64 {
        self.0.lock().dropped
    }
}

impl Drop for TapReceiver {
    fn drop(&mut self) {
        let mut q = self.0.lock();
        q.receiver_gone = true;
        q.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm(at: u64, n: usize) -> Tapped {
        Tapped::Pcm {
            at,
            samples: vec![0.0; n],
        }
    }

    #[test]
    fn audio_past_the_limit_drops_the_oldest_and_keeps_mute_changes() {
        let (tx, rx) = channel(300);
        tx.send(pcm(0, 100));
        tx.send(Tapped::Muted(true));
        tx.send(pcm(100, 100));
        tx.send(pcm(200, 100));
        tx.send(pcm(300, 100));
        tx.send(pcm(400, 100));
        assert_eq!(rx.dropped_samples(), 200);
        let at = |t: Tapped| match t {
            Tapped::Pcm { at, .. } => Some(at),
            _ => None,
        };
        let got: Vec<_> = std::iter::from_fn(|| rx.recv_timeout(Duration::ZERO).ok())
            .map(|t| (matches!(t, Tapped::Muted(true)), at(t)))
            .collect();
        assert_eq!(
            got,
            [
                (true, None),
                (false, Some(200)),
                (false, Some(300)),
                (false, Some(400))
            ]
        );
    }

    #[test]
    fn the_receiver_sees_the_end_after_the_queue_and_the_last_sender() {
        let (tx, rx) = channel(PCM_HELD_SAMPLES);
        let other = tx.clone();
        tx.send(Tapped::Muted(false));
        drop(tx);
        assert!(rx.recv_timeout(Duration::ZERO).is_ok());
        assert!(matches!(
            rx.recv_timeout(Duration::from_millis(5)),
            Err(RecvTimeoutError::Timeout)
        ));
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(other);
        });
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(10)),
            Err(RecvTimeoutError::Disconnected)
        ));
        t.join().unwrap();
    }

    #[test]
    fn frames_are_never_dropped() {
        let (tx, rx) = channel(0);
        for rtp in 0..1000 {
            tx.send(Tapped::Frame(EncodedFrame {
                codec: Codec::Opus,
                data: vec![1],
                rtp,
                clock_rate: 48_000,
                keyframe: true,
                discont: false,
            }));
        }
        let got = std::iter::from_fn(|| rx.recv_timeout(Duration::ZERO).ok()).count();
        assert_eq!(got, 1000);
        drop(rx);
        assert!(
            !tx.send(Tapped::Muted(true)),
            "a send after the receiver went"
        );
    }
}
