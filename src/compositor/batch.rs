//! One submission per tick for every room of a device. Each room records its frame (its
//! uploads, conversions, composite and NV12 passes, readback copies) into a command
//! buffer on its own thread, then hands it to the device's batcher, which submits the
//! buffers of every room that is due together, in one `Queue::submit`, instead of one
//! submission per room and frame.
//!
//! The rule (pure, over any item and any submit function, so it is tested without a GPU):
//! a batch is submitted as soon as every *active* member has contributed to it, or
//! [`WINDOW`] after its first item arrived, whichever comes first. A member is
//! active while it has joined or submitted within [`IDLE_AFTER`]; so a room that is late
//! delays the others by at most the window, and one that stops (fails, ends, or stops
//! reading its frames) is not waited for at all once it has been idle that long. Members
//! join and leave at any time ([`Batcher::join`], dropping the [`Member`]). The thread that
//! completes a batch submits it; the others wait until it has been submitted, so a room
//! never writes its next frame's uniforms before its previous frame's commands are queued.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a batch waits for the rest of the active members after its first item.
pub const WINDOW: Duration = Duration::from_millis(2);
/// A member that has not submitted for this long is not waited for.
pub const IDLE_AFTER: Duration = Duration::from_millis(100);

struct State<T, R> {
    next_id: u64,
    /// Each member's last submission.
    members: HashMap<u64, Option<Instant>>,
    pending: Vec<T>,
    /// Members with an item in the pending batch.
    in_batch: Vec<u64>,
    first_at: Option<Instant>,
    /// Batches submitted so far, and the last one's result.
    generation: u64,
    /// Items submitted so far.
    items: u64,
    last: Option<R>,
}

/// Combines the submissions of many members into batches.
pub struct Batcher<T, R> {
    state: Mutex<State<T, R>>,
    changed: Condvar,
    window: Duration,
    idle_after: Duration,
}

/// A member's place in a [`Batcher`]; leaves it when dropped.
pub struct Member<T, R> {
    batcher: Arc<Batcher<T, R>>,
    id: u64,
}

impl<T, R: Clone> Batcher<T, R> {
    /// A batcher with the given window and idle time.
    pub fn new(window: Duration, idle_after: Duration) -> Arc<Batcher<T, R>> {
        Arc::new(Batcher {
            state: Mutex::new(State {
                next_id: 0,
                members: HashMap::new(),
                pending: Vec::new(),
                in_batch: Vec::new(),
                first_at: None,
                generation: 0,
                items: 0,
                last: None,
            }),
            changed: Condvar::new(),
            window,
            idle_after,
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

    /// A new member.
    pub fn join(self: &Arc<Self>) -> Member<T, R> {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        // A new member is expected to submit soon: it counts as active from now.
        s.members.insert(id, Some(Instant::now()));
        Member {
            batcher: self.clone(),
            id,
        }
    }

    /// Members the pending batch still waits for: active ones without an item in it.
    fn missing(s: &State<T, R>, now: Instant, idle_after: Duration) -> usize {
        s.members
            .iter()
            .filter(|(id, last)| {
                !s.in_batch.contains(id) && last.is_some_and(|t| now.duration_since(t) < idle_after)
            })
            .count()
    }
}

impl<T, R: Clone> Member<T, R> {
    /// Adds `item` to the current batch and returns the result of the batch it went out
    /// in (or of a later one), once submitted. The thread that completes a batch (or finds
    /// its window over) runs `submit` on all of its items, in arrival order; `submit` runs
    /// under the batcher's lock, so batches go out one at a time and in order.
    pub fn submit(&self, item: T, submit: impl FnOnce(Vec<T>) -> R) -> R {
        let b = &self.batcher;
        let mut s = b.lock();
        let generation = s.generation;
        let now = Instant::now();
        s.pending.push(item);
        s.in_batch.push(self.id);
        s.members.insert(self.id, Some(now));
        let first_at = *s.first_at.get_or_insert(now);
        b.changed.notify_all();
        let mut submit = Some(submit);
        loop {
            if s.generation != generation {
                return s.last.clone().expect("a submitted batch has a result");
            }
            let now = Instant::now();
            let due = first_at + b.window;
            if now >= due || Batcher::missing(&s, now, b.idle_after) == 0 {
                let items = std::mem::take(&mut s.pending);
                s.items += items.len() as u64;
                s.in_batch.clear();
                s.first_at = None;
                let result = (submit.take().expect("submitted once"))(items);
                s.generation += 1;
                s.last = Some(result.clone());
                b.changed.notify_all();
                return result;
            }
            s = b
                .changed
                .wait_timeout(s, due - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl<T, R> Drop for Member<T, R> {
    fn drop(&mut self) {
        let mut s = self
            .batcher
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.members.remove(&self.id);
        drop(s);
        self.batcher.changed.notify_all();
    }
}

/// The device's batcher of command buffers; a batch's result is its submission.
pub type SubmitBatcher = Batcher<wgpu::CommandBuffer, wgpu::SubmissionIndex>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    type Log = Arc<Mutex<Vec<Vec<u32>>>>;

    fn submit_into(log: &Log) -> impl FnOnce(Vec<u32>) -> usize + '_ {
        move |items| {
            let mut l = log.lock().unwrap();
            l.push(items);
            l.len()
        }
    }

    #[test]
    fn a_lone_member_submits_at_once() {
        let b = Batcher::<u32, usize>::new(Duration::from_secs(10), IDLE_AFTER);
        let m = b.join();
        let log = Log::default();
        let start = Instant::now();
        for i in 0..3 {
            assert_eq!(m.submit(i, submit_into(&log)), i as usize + 1);
        }
        assert!(start.elapsed() < Duration::from_secs(1), "no window waited");
        assert_eq!(*log.lock().unwrap(), vec![vec![0], vec![1], vec![2]]);
    }

    /// Every member submits one item at the same moment, each from its own thread.
    fn round(members: &[Member<u32, usize>], base: u32, log: &Log) {
        let go = Barrier::new(members.len());
        std::thread::scope(|s| {
            for (i, m) in members.iter().enumerate() {
                let go = &go;
                s.spawn(move || {
                    go.wait();
                    m.submit(base + i as u32, submit_into(log))
                });
            }
        });
    }

    #[test]
    fn active_members_go_out_in_one_batch() {
        let b = Batcher::<u32, usize>::new(Duration::from_secs(10), Duration::from_secs(60));
        let log = Log::default();
        let members: Vec<_> = (0..4).map(|_| b.join()).collect();
        let start = Instant::now();
        round(&members, 10, &log);
        assert!(start.elapsed() < Duration::from_secs(5), "not the window");
        let batches = log.lock().unwrap().clone();
        assert_eq!(
            batches.len(),
            1,
            "one submission for four rooms: {batches:?}"
        );
        let mut items = batches[0].clone();
        items.sort();
        assert_eq!(items, vec![10, 11, 12, 13]);
    }

    #[test]
    fn a_late_member_delays_the_others_by_the_window_at_most() {
        let window = Duration::from_millis(50);
        let b = Batcher::<u32, usize>::new(window, Duration::from_secs(60));
        let log = Log::default();
        let (fast, _late) = (b.join(), b.join());
        let start = Instant::now();
        fast.submit(2, submit_into(&log));
        let waited = start.elapsed();
        assert!(waited >= window, "waited for the late member: {waited:?}");
        assert!(waited < window * 10, "but not for long: {waited:?}");
        assert_eq!(*log.lock().unwrap(), vec![vec![2]]);
    }

    #[test]
    fn a_member_that_stopped_is_not_waited_for_and_one_that_left_neither() {
        let window = Duration::from_secs(10);
        let idle = Duration::from_millis(200);
        let b = Batcher::<u32, usize>::new(window, idle);
        let log = Log::default();
        let mut members: Vec<_> = (0..3).map(|_| b.join()).collect();
        round(&members, 0, &log);
        let leaving = members.pop().unwrap();
        drop(leaving);
        std::thread::sleep(idle * 2);
        let start = Instant::now();
        members[0].submit(7, submit_into(&log));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the idle member is not waited for"
        );
        assert_eq!(log.lock().unwrap().last().unwrap(), &vec![7]);
    }

    #[test]
    fn every_item_is_submitted_exactly_once_in_each_members_order() {
        let b = Batcher::<(usize, u32), usize>::new(Duration::from_millis(1), IDLE_AFTER);
        let log: Arc<Mutex<Vec<Vec<(usize, u32)>>>> = Default::default();
        let members: Vec<_> = (0..6).map(|_| b.join()).collect();
        std::thread::scope(|s| {
            for (m, member) in members.iter().enumerate() {
                let log = &log;
                s.spawn(move || {
                    for i in 0..200 {
                        member.submit((m, i), |items| {
                            let mut l = log.lock().unwrap();
                            l.push(items);
                            l.len()
                        });
                    }
                });
            }
        });
        let batches = log.lock().unwrap().clone();
        assert_eq!(b.counts(), (batches.len() as u64, 6 * 200));
        let all: Vec<_> = batches.iter().flatten().copied().collect();
        assert_eq!(all.len(), 6 * 200);
        for m in 0..6 {
            let mine: Vec<u32> = all
                .iter()
                .filter(|(k, _)| *k == m)
                .map(|&(_, i)| i)
                .collect();
            assert_eq!(mine, (0..200).collect::<Vec<_>>(), "member {m} in order");
        }
        assert!(
            batches.len() < all.len(),
            "some submissions were combined ({} batches)",
            batches.len()
        );
    }
}
