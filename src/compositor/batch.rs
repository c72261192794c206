//! One submission for every room of a device that has a frame ready. Each room records
//! its frame (its uploads, conversions, composite and NV12 passes, readback copies) into
//! a command buffer on its own thread, then hands it to the device's batcher, which puts
//! the buffers of every room that is ready into one `Queue::submit`, instead of one
//! submission per room and frame (a submission takes the device's queue: under load the
//! rooms queue up behind each other's submissions).
//!
//! The rule (pure, over any item and any submit function, so it is tested without a GPU)
//! is flat combining: a room whose frame arrives while no batch is being submitted
//! submits at once, with every frame already waiting; one that arrives while a batch is
//! being submitted waits for it, and then the first of the waiting rooms submits all the
//! frames that arrived meanwhile. So a lone room is never held back, a room that is late,
//! stopped or gone holds nobody back (nothing waits for a frame that has not arrived), and
//! under load the frames of many rooms go out together. Rooms join and leave at any time
//! (there is no membership). Batches go out one at a time, in order; a room returns once
//! the batch holding its frame has been submitted, so it never writes its next frame's
//! uniforms before its previous frame's commands are queued.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

struct State<T, R> {
    pending: Vec<T>,
    /// A batch is being submitted (outside the lock).
    submitting: bool,
    /// Batches submitted so far, and the last one's result.
    generation: u64,
    last: Option<R>,
    /// Items submitted so far.
    items: u64,
}

/// Combines the submissions of many threads into batches.
pub struct Batcher<T, R> {
    state: Mutex<State<T, R>>,
    changed: Condvar,
}

impl<T, R: Clone> Batcher<T, R> {
    /// An empty batcher.
    pub fn new() -> Arc<Batcher<T, R>> {
        Arc::new(Batcher {
            state: Mutex::new(State {
                pending: Vec::new(),
                submitting: false,
                generation: 0,
                last: None,
                items: 0,
            }),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T, R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Batches and items submitted so far (`items / batches` is the mean batch size).
    pub fn counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.generation, s.items)
    }

    /// Adds `item` to the next batch and returns the result of the batch it went out in
    /// (or of a later one), once submitted. `submit` runs on all of a batch's items, in
    /// arrival order, on the thread that starts the batch, outside the batcher's lock.
    pub fn submit(&self, item: T, submit: impl Fn(Vec<T>) -> R) -> R {
        let mut s = self.lock();
        s.pending.push(item);
        // Our item goes out in the batch after every one already started.
        let ours = s.generation + u64::from(s.submitting) + 1;
        loop {
            if s.generation >= ours {
                return s.last.clone().expect("a submitted batch has a result");
            }
            if !s.submitting {
                let items = std::mem::take(&mut s.pending);
                s.items += items.len() as u64;
                s.submitting = true;
                drop(s);
                let result = submit(items);
                s = self.lock();
                s.submitting = false;
                s.generation += 1;
                s.last = Some(result);
                self.changed.notify_all();
                continue;
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The device's batcher of command buffers; a batch's result is its submission.
pub type SubmitBatcher = Batcher<wgpu::CommandBuffer, wgpu::SubmissionIndex>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::time::{Duration, Instant};

    #[test]
    fn a_lone_room_submits_at_once_each_time() {
        let b = Batcher::<u32, usize>::new();
        let log = Mutex::new(Vec::new());
        for i in 0..3 {
            let n = b.submit(i, |items| {
                let mut l = log.lock().unwrap();
                l.push(items);
                l.len()
            });
            assert_eq!(n, i as usize + 1);
        }
        assert_eq!(*log.lock().unwrap(), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(b.counts(), (3, 3));
    }

    #[test]
    fn frames_arriving_during_a_submission_go_out_together_next() {
        let b = Batcher::<u32, usize>::new();
        let log = Mutex::new(Vec::new());
        let (entered, release) = (Barrier::new(2), Barrier::new(2));
        std::thread::scope(|s| {
            // A slow submission is under way...
            let first = s.spawn(|| {
                b.submit(0, |items| {
                    entered.wait();
                    release.wait();
                    log.lock().unwrap().push(items);
                    1
                })
            });
            entered.wait();
            // ...while three more rooms hand in their frames.
            let waiting: Vec<_> = (1..4)
                .map(|i| {
                    let (b, log) = (&b, &log);
                    s.spawn(move || {
                        b.submit(i, |items| {
                            log.lock().unwrap().push(items);
                            2
                        })
                    })
                })
                .collect();
            while b.lock().pending.len() < 3 {
                std::thread::yield_now();
            }
            release.wait();
            assert_eq!(first.join().unwrap(), 1);
            for w in waiting {
                assert_eq!(w.join().unwrap(), 2, "out in the second batch");
            }
        });
        let batches = log.into_inner().unwrap();
        assert_eq!(batches.len(), 2);
        let mut second = batches[1].clone();
        second.sort();
        assert_eq!(second, vec![1, 2, 3]);
    }

    #[test]
    fn a_room_that_stops_or_leaves_holds_nobody_back() {
        let b = Batcher::<u32, usize>::new();
        // Rooms that submitted once and then stopped leave nothing behind to wait for.
        std::thread::scope(|s| {
            for i in 0..4 {
                let b = &b;
                s.spawn(move || b.submit(i, |items| items.len()));
            }
        });
        let start = Instant::now();
        assert_eq!(b.submit(9, |items| items.len()), 1);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn every_item_is_submitted_exactly_once_in_each_rooms_order() {
        let b = Batcher::<(usize, u32), usize>::new();
        let log: Mutex<Vec<Vec<(usize, u32)>>> = Default::default();
        std::thread::scope(|s| {
            for m in 0..6 {
                let (b, log) = (&b, &log);
                s.spawn(move || {
                    for i in 0..300 {
                        b.submit((m, i), |items| {
                            // A submission takes a moment, as a queue's does.
                            std::thread::sleep(Duration::from_micros(50));
                            let mut l = log.lock().unwrap();
                            l.push(items);
                            l.len()
                        });
                    }
                });
            }
        });
        let batches = log.into_inner().unwrap();
        assert_eq!(b.counts(), (batches.len() as u64, 6 * 300));
        let all: Vec<_> = batches.iter().flatten().copied().collect();
        assert_eq!(all.len(), 6 * 300);
        for m in 0..6 {
            let mine: Vec<u32> = all
                .iter()
                .filter(|(k, _)| *k == m)
                .map(|&(_, i)| i)
                .collect();
            assert_eq!(mine, (0..300).collect::<Vec<_>>(), "room {m} in order");
        }
        assert!(
            batches.len() < all.len(),
            "submissions were combined under load ({} batches)",
            batches.len()
        );
    }
}
