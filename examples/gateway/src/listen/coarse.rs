//! Per-worker coarse deadlines for timeouts that almost never fire.
//!
//! Every proxied request arms two timeouts: hyper's header-read timeout on
//! the client connection and the gateway's response timeout upstream. With
//! tokio's timer each is a timer-wheel insertion and removal (and, through
//! hyper's `TokioTimer`, a boxed `Sleep`) per request, although neither
//! fires under normal traffic. Here a deadline is a slot in a thread-local
//! list, taken only while its future waits, and a sweeper task per worker
//! thread, running while any slot is taken, wakes the ones that are due
//! every [`TICK`]. A deadline fires within [`TICK`] of its time: the clock
//! that [`now`] reads (and [`CoarseTimer`]'s
//! [`Timer::now`](hyper::rt::Timer::now), which hyper asks) is the sweeper's
//! last tick (so a deadline can also fall up to [`TICK`] early).
//!
//! Every worker runs a single-threaded runtime and a connection never
//! leaves it, so a [`CoarseSleep`] is polled and dropped on the thread
//! that registered it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

/// How often the sweeper looks for due deadlines.
pub const TICK: Duration = Duration::from_millis(250);

/// One waiting deadline.
struct Slot {
    deadline: Instant,
    waker: Option<Waker>,
    fired: bool,
}

thread_local! {
    /// This thread's waiting deadlines.
    static REGISTRY: RefCell<Slab<Slot>> = const { RefCell::new(Slab::new()) };
    /// The sweeper's last tick, while it runs.
    static NOW: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The current time, to the sweeper's last tick while one runs on this
/// thread (no clock read), otherwise read from the clock.
pub fn now() -> Instant {
    NOW.get().unwrap_or_else(Instant::now)
}

/// Runs while deadlines are registered on this thread; stops (and clears
/// the cached clock) when none is left.
async fn sweep() {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut due = Vec::new();
    loop {
        interval.tick().await;
        let now = Instant::now();
        let idle = REGISTRY.with_borrow_mut(|r| {
            for (_, slot) in r.iter_mut() {
                if !slot.fired && slot.deadline <= now {
                    slot.fired = true;
                    due.extend(slot.waker.take());
                }
            }
            r.is_empty()
        });
        // Woken outside the borrow: waking only schedules the task.
        for waker in due.drain(..) {
            waker.wake();
        }
        if idle {
            NOW.set(None);
            return;
        }
        NOW.set(Some(now));
    }
}

/// A future that completes at `deadline` (within [`TICK`]).
#[derive(Debug)]
pub struct CoarseSleep {
    deadline: Instant,
    slot: Option<usize>,
}

impl CoarseSleep {
    pub fn until(deadline: Instant) -> Self {
        CoarseSleep {
            deadline,
            slot: None,
        }
    }

    fn release(&mut self) {
        if let Some(i) = self.slot.take() {
            REGISTRY.with_borrow_mut(|r| r.try_remove(i));
        }
    }
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.slot {
            Some(i) => {
                let fired = REGISTRY.with_borrow_mut(|r| {
                    let Some(slot) = r.get_mut(i) else {
                        return true;
                    };
                    if slot.fired {
                        return true;
                    }
                    match &mut slot.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        w => *w = Some(cx.waker().clone()),
                    }
                    false
                });
                if fired {
                    self.release();
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }
            None => {
                if self.deadline <= now() {
                    return Poll::Ready(());
                }
                let deadline = self.deadline;
                let start = REGISTRY.with_borrow_mut(|r| {
                    let slot = Slot {
                        deadline,
                        waker: Some(cx.waker().clone()),
                        fired: false,
                    };
                    self.slot = Some(r.insert(slot));
                    NOW.get().is_none()
                });
                if start {
                    NOW.set(Some(Instant::now()));
                    tokio::spawn(sweep());
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        self.release();
    }
}

impl hyper::rt::Sleep for CoarseSleep {}

/// [`CoarseSleep`]s for hyper (the server's header-read timeout).
#[derive(Clone, Copy, Debug, Default)]
pub struct CoarseTimer;

impl hyper::rt::Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(CoarseSleep::until(now() + duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(CoarseSleep::until(deadline))
    }

    fn now(&self) -> Instant {
        now()
    }
}

/// The deadline passed first.
#[derive(Debug)]
pub struct Elapsed;

/// `fut`, unless `deadline` (within [`TICK`]) comes first.
pub async fn timeout_at<F: Future>(deadline: Instant, fut: F) -> Result<F::Output, Elapsed> {
    let mut fut = std::pin::pin!(fut);
    let mut sleep = CoarseSleep::until(deadline);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn fires_after_the_deadline_not_before_and_releases_its_slot() {
        let wait = Duration::from_millis(600);
        let start = Instant::now();
        let r = timeout_at(now() + wait, std::future::pending::<()>()).await;
        assert!(r.is_err());
        let took = start.elapsed();
        // Never more than a tick early. How late depends on how busy the
        // machine is, so the upper bound only says that it fired at all.
        assert!(took + TICK >= wait, "{took:?}");
        assert!(took <= wait + Duration::from_secs(10), "{took:?}");
        let ok = timeout_at(now() + wait, async { 7 }).await;
        assert_eq!(ok.ok(), Some(7));
        REGISTRY.with_borrow(|r| assert_eq!(r.len(), 0));
    }
}
