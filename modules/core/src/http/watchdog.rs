//! What closes a connection that stays silent or idle, kept off the request path.
//!
//! A connection's task wakes for every request, and whatever it waits on beside hyper's
//! connection is polled on each wake. Two timers (the silent client's and the idle one's) and the
//! shutdown signal polled every time, and the clock read on every read and write to date the
//! last activity, cost about 700 instructions per request more than this does (callgrind, a
//! guarded cached read under load, one event loop: 49.9k to 49.2k). Here a read or a write only
//! counts itself, and one timer looks at the count when it fires: the shutdown signal and the
//! timer are polled once to register the task's waker, and after that a wake only checks whether
//! either has fired (the signal's check is a flag every connection reads, no lock).
//!
//! The watchdog looks every eighth of `server.idle_timeout` (or of `server.header_read_timeout`,
//! when that is shorter), so a quiet connection is closed between one and one and an eighth idle
//! timeouts after its last byte moved.
//!
//! hyper's own header-read deadline ([`HeadDeadlines`]) is a time compared with the clock when
//! hyper looks at it, not a timer: each look of the watchdog wakes the connection, and so hyper,
//! which then finds a head overdue.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::{Instant, Sleep},
};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// hyper's HTTP/1 header-read deadline without a timer of its own. hyper asks for a new sleep
/// for every request it waits for and drops it when the head is in: with tokio's timer, a boxed
/// timer entry registered in the runtime's wheel and taken out again, about 900 instructions per
/// request with the wheel's upkeep (callgrind, guarded cached read under load). Here the sleep is its deadline: hyper
/// polls it whenever a read of the head finds nothing more, and the connection's [`Watchdog`]
/// wakes the connection at least every eighth of the header-read timeout, so an overdue head is
/// found within that much of its deadline, on a connection that is silent too.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct HeadDeadlines;

impl hyper::rt::Timer for HeadDeadlines {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(std::time::Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Deadline(deadline))
    }
}

/// A time that has come or not, when asked; it never wakes anyone itself.
struct Deadline(std::time::Instant);

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if std::time::Instant::now() >= self.0 { Poll::Ready(()) } else { Poll::Pending }
    }
}

impl hyper::rt::Sleep for Deadline {}

/// A stream that counts the reads and writes that moved bytes.
pub(super) struct Watched {
    inner: TcpStream,
    activity: Arc<AtomicU64>,
}

impl Watched {
    pub(super) fn new(inner: TcpStream) -> (Self, Arc<AtomicU64>) {
        let activity = Arc::new(AtomicU64::new(0));
        (Self { inner, activity: activity.clone() }, activity)
    }

    fn touch(&self) {
        // Only the connection's task moves the count: a load and a store, no locked instruction.
        self.activity.store(self.activity.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The server's shutdown signal as the connections watch it: the token wakes them once, and a
/// wake checks the flag. Every connection of every event loop shares it, and the token's own
/// check (`is_cancelled`) takes a lock they would all take on every request.
#[derive(Clone, Default)]
pub(super) struct Stopping {
    token: CancellationToken,
    flag: Arc<AtomicBool>,
}

impl Stopping {
    /// Tells every connection the server is stopping.
    pub(super) fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        self.token.cancel();
    }

    fn is_stopping(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// Why a connection is to be closed or drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Alarm {
    /// Nothing arrived within `server.header_read_timeout` of the connection opening.
    Silent,
    /// Nothing moved for `server.idle_timeout`.
    Idle,
    /// The server is stopping.
    Stopping,
}

/// Resolves with the first [`Alarm`]; polled again after `Stopping`, it goes on watching for
/// idleness (a draining connection still idles out).
pub(super) struct Watchdog {
    activity: Arc<AtomicU64>,
    opened: Instant,
    header_read: Duration,
    idle: Duration,
    /// The count at the last look, and when the look saw it change.
    seen: u64,
    quiet_since: Instant,
    timer: Pin<Box<Sleep>>,
    timer_armed: bool,
    stopping: Stopping,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    /// `None` until the shutdown signal was first polled; `Some(true)` once it was reported.
    stop_state: Option<bool>,
}

impl Watchdog {
    pub(super) fn new(activity: Arc<AtomicU64>, header_read: Duration, idle: Duration, stopping: Stopping) -> Self {
        let opened = Instant::now();
        Self {
            activity,
            opened,
            header_read,
            idle,
            seen: 0,
            quiet_since: opened,
            timer: Box::pin(tokio::time::sleep_until(opened + step(header_read, idle))),
            timer_armed: false,
            stop: Box::pin(stopping.token.clone().cancelled_owned()),
            stopping,
            stop_state: None,
        }
    }

    /// The look the timer asks for: an alarm, or the next time to look.
    fn look(&mut self) -> Result<Instant, Alarm> {
        let now = Instant::now();
        let count = self.activity.load(Ordering::Relaxed);
        if count == 0 && now >= self.opened + self.header_read {
            return Err(Alarm::Silent);
        }
        if count != self.seen {
            (self.seen, self.quiet_since) = (count, now);
        } else if now >= self.quiet_since + self.idle {
            return Err(Alarm::Idle);
        }
        let mut next = now + step(self.header_read, self.idle);
        if count == 0 {
            next = next.min(self.opened + self.header_read);
        }
        Ok(next)
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<Alarm> {
        loop {
            // Armed, the timer wakes the task when it fires: until then there is nothing to do.
            if self.timer_armed && !self.timer.is_elapsed() {
                return Poll::Pending;
            }
            if self.timer_armed {
                match self.look() {
                    Err(alarm) => return Poll::Ready(alarm),
                    Ok(next) => self.timer.as_mut().reset(next),
                }
            }
            // Unconstrained: a poll refused by the task's budget would leave the timer unregistered.
            if Pin::new(&mut tokio::task::unconstrained(self.timer.as_mut())).poll(cx).is_pending() {
                self.timer_armed = true;
                return Poll::Pending;
            }
            self.timer_armed = true;
        }
    }

    fn poll_stopping(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.stop_state {
            Some(true) => Poll::Pending,
            Some(false) if !self.stopping.is_stopping() => Poll::Pending,
            _ => {
                let polled = self.stop.as_mut().poll(cx);
                self.stop_state = Some(polled.is_ready());
                polled
            }
        }
    }
}

/// How often the watchdog looks: a quiet connection is closed at most this long after the idle
/// timeout has passed, and a head overdue at most this long after its deadline.
fn step(header_read: Duration, idle: Duration) -> Duration {
    (idle.min(header_read) / 8).max(Duration::from_millis(1))
}

impl Future for Watchdog {
    type Output = Alarm;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Alarm> {
        let this = self.get_mut();
        if this.poll_stopping(cx).is_ready() {
            return Poll::Ready(Alarm::Stopping);
        }
        this.poll_timer(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watchdog(header_read: u64, idle: u64) -> (Watchdog, Arc<AtomicU64>, Stopping) {
        let (activity, stopping) = (Arc::new(AtomicU64::new(0)), Stopping::default());
        let dog = Watchdog::new(
            activity.clone(),
            Duration::from_secs(header_read),
            Duration::from_secs(idle),
            stopping.clone(),
        );
        (dog, activity, stopping)
    }

    /// The alarm, or a panic if none comes within 10 minutes (of the paused clock).
    async fn alarm(dog: impl Future<Output = Alarm>) -> Alarm {
        tokio::time::timeout(Duration::from_secs(600), dog).await.expect("an alarm")
    }

    #[test]
    fn a_head_deadline_is_pending_until_it_passes() {
        use hyper::rt::Timer;
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let now = std::time::Instant::now();
        let mut later = HeadDeadlines.sleep_until(now + Duration::from_secs(60));
        assert!(later.as_mut().poll(&mut cx).is_pending());
        let mut passed = HeadDeadlines.sleep(Duration::ZERO);
        assert!(passed.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn the_watchdog_looks_every_eighth_of_the_shorter_timeout() {
        assert_eq!(step(Duration::from_secs(1), Duration::from_secs(30)), Duration::from_millis(125));
        assert_eq!(step(Duration::from_secs(30), Duration::from_secs(8)), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_is_silent_at_the_header_read_timeout() {
        let (dog, _, _) = watchdog(10, 60);
        let started = Instant::now();
        assert_eq!(alarm(dog).await, Alarm::Silent);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_within_an_eighth_more_than_the_idle_timeout_after_its_last_byte() {
        let (mut dog, activity, _) = watchdog(10, 8);
        let busy = async {
            // Bytes move every 300 ms for 30 s: never idle meanwhile.
            for _ in 0..100 {
                activity.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        };
        tokio::select! {
            () = busy => {}
            alarm = &mut dog => panic!("{alarm:?} while bytes moved"),
        }
        let last = Instant::now() - Duration::from_millis(300);
        assert_eq!(alarm(dog).await, Alarm::Idle);
        let quiet = last.elapsed();
        assert!(quiet >= Duration::from_secs(8) && quiet <= Duration::from_secs(9), "{quiet:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_is_reported_once_and_a_draining_connection_still_idles_out() {
        let (mut dog, activity, stopping) = watchdog(10, 8);
        activity.store(1, Ordering::Relaxed);
        let stop = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            stopping.stop();
        };
        let (first, ()) = tokio::join!(alarm(&mut dog), stop);
        assert_eq!(first, Alarm::Stopping);
        let started = Instant::now();
        assert_eq!(alarm(dog).await, Alarm::Idle);
        // Its byte moved before the first look (1 s): idle from 9 s at the latest.
        assert!(started.elapsed() <= Duration::from_secs(6), "{:?}", started.elapsed());
    }
}
