//! Status reports out of a running egress: the worker service installs a hook on the
//! egress's thread, and every status change (STARTING → ACTIVE → ENDING → the end) and
//! stream update is handed to it as the egress's `EgressInfo` at that moment. A thread
//! local, because each egress runs on a thread of its own and its status changes happen
//! in many places (composite, track and WebSocket egresses, aborts and failures).

use std::cell::RefCell;

use livekit_protocol::EgressInfo;

type Hook = Box<dyn Fn(&EgressInfo)>;

thread_local! {
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Runs `f` with `hook` receiving this thread's egress status changes.
pub fn with_hook<R>(hook: impl Fn(&EgressInfo) + 'static, f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            HOOK.with(|h| h.borrow_mut().take());
        }
    }
    HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
    let _reset = Reset;
    f()
}

/// Hands `info` to this thread's hook, if any.
pub(crate) fn notify(info: &EgressInfo) {
    HOOK.with(|h| {
        if let Some(hook) = h.borrow().as_ref() {
            hook(info);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn the_hook_sees_notices_only_while_installed() {
        let seen = Rc::new(Cell::new(0));
        let s = seen.clone();
        with_hook(
            move |_| s.set(s.get() + 1),
            || {
                notify(&EgressInfo::default());
                notify(&EgressInfo::default());
            },
        );
        notify(&EgressInfo::default());
        assert_eq!(seen.get(), 2);
    }
}
