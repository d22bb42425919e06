//! Which path the next message takes: the sender's decision, made without system calls.

use std::time::{Duration, Instant};

/// Which path a channel's messages take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Small and occasional messages through the socket; large ones and steady streams
    /// through the ring, set up when first needed (see [`ChannelOptions`](super::ChannelOptions)
    /// for the thresholds).
    #[default]
    Auto,
    /// Always the socket (no shared memory at all).
    Socket,
    /// Always the ring, set up with the first message.
    Ring,
}

/// A path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    Socket,
    Ring,
}

/// The thresholds of [`Policy::Auto`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds {
    /// A message longer than this goes through the ring.
    pub inline_limit: usize,
    /// Socket traffic within `window` moves the channel onto the ring once
    /// `messages / burst_messages + bytes / burst_bytes` passes 1: a linear estimate of the
    /// time spent on the socket, against what setting up the ring costs.
    pub burst_messages: u64,
    pub burst_bytes: u64,
    pub window: Duration,
    /// A channel on the ring that has sent nothing for this long goes back to the socket.
    pub fallback_after: Option<Duration>,
}

/// The sender's path choice over time.
#[derive(Debug)]
pub(crate) struct Chooser {
    policy: Policy,
    thresholds: Thresholds,
    window_start: Instant,
    in_window: u64,
    bytes_in_window: u64,
    last_send: Instant,
}

impl Chooser {
    pub(crate) fn new(policy: Policy, thresholds: Thresholds, now: Instant) -> Chooser {
        Chooser {
            policy,
            thresholds,
            window_start: now,
            in_window: 0,
            bytes_in_window: 0,
            last_send: now,
        }
    }

    pub(crate) fn policy(&self) -> Policy {
        self.policy
    }

    /// Changes the policy for good (Auto falls back to Socket when no ring can be made).
    pub(crate) fn force(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// The path for a message of `len` bytes, the channel being on `current`. `now` is called
    /// only when the choice depends on the time: under `Auto`, and on the ring only if it may
    /// fall back. A clock read costs a fair share of a small message's time on the ring
    /// (docs/PERFORMANCE.md, "Channel paths").
    pub(crate) fn choose(
        &mut self,
        current: Path,
        len: usize,
        now: impl FnOnce() -> Instant,
    ) -> Path {
        match self.policy {
            Policy::Socket => Path::Socket,
            Policy::Ring => Path::Ring,
            Policy::Auto if current == Path::Ring && self.thresholds.fallback_after.is_none() => {
                current
            }
            Policy::Auto => self.auto(current, len, now()),
        }
    }

    fn auto(&mut self, current: Path, len: usize, now: Instant) -> Path {
        let t = &self.thresholds;
        let quiet = now.saturating_duration_since(self.last_send);
        self.last_send = now;
        if now.saturating_duration_since(self.window_start) > t.window {
            self.window_start = now;
            self.in_window = 0;
            self.bytes_in_window = 0;
        }
        self.in_window = self.in_window.saturating_add(1);
        self.bytes_in_window = self.bytes_in_window.saturating_add(len as u64);
        match current {
            Path::Socket if len > t.inline_limit || self.busy() => Path::Ring,
            Path::Ring if t.fallback_after.is_some_and(|q| quiet >= q) && len <= t.inline_limit => {
                self.window_start = now;
                self.in_window = 1;
                self.bytes_in_window = len as u64;
                Path::Socket
            }
            path => path,
        }
    }

    /// Whether `messages / burst_messages + bytes / burst_bytes > 1` in this window.
    fn busy(&self) -> bool {
        let t = &self.thresholds;
        let (m, b) = (u128::from(t.burst_messages), u128::from(t.burst_bytes));
        u128::from(self.in_window) * b + u128::from(self.bytes_in_window) * m > m * b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        inline_limit: 1000,
        burst_messages: 3,
        burst_bytes: 1 << 40,
        window: Duration::from_millis(10),
        fallback_after: Some(Duration::from_millis(100)),
    };

    #[test]
    fn auto_moves_to_the_ring_on_size_or_burst_and_back_when_quiet() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut c = Chooser::new(Policy::Auto, T, t0);
        assert_eq!(
            c.choose(Path::Socket, 1001, || t0),
            Path::Ring,
            "large message"
        );

        let mut c = Chooser::new(Policy::Auto, T, t0);
        // Two messages of 10 B per window stay on the socket (2/3 + a little), window after
        // window.
        for i in 0..30 {
            assert_eq!(
                c.choose(Path::Socket, 10, || ms(11 * (i / 2) + i % 2)),
                Path::Socket
            );
        }
        // A third within one window moves (3/3 + a little).
        let t = ms(1000);
        for _ in 0..2 {
            assert_eq!(c.choose(Path::Socket, 10, || t), Path::Socket);
        }
        assert_eq!(c.choose(Path::Socket, 10, || t), Path::Ring);
        assert_eq!(c.choose(Path::Ring, 10, || ms(1050)), Path::Ring);
        assert_eq!(
            c.choose(Path::Ring, 5000, || ms(1200)),
            Path::Ring,
            "large stays"
        );
        assert_eq!(c.choose(Path::Ring, 10, || ms(1400)), Path::Socket, "quiet");
        assert_eq!(c.choose(Path::Socket, 10, || ms(1400)), Path::Socket);
    }

    #[test]
    fn bytes_count_towards_the_burst_with_messages() {
        let t = Thresholds {
            burst_messages: 10,
            burst_bytes: 1000,
            ..T
        };
        let t0 = Instant::now();
        let mut c = Chooser::new(Policy::Auto, t, t0);
        // 4 messages of 150 B: 0.4 + 0.6 = 1.0, not past 1.
        for _ in 0..4 {
            assert_eq!(c.choose(Path::Socket, 150, || t0), Path::Socket);
        }
        assert_eq!(c.choose(Path::Socket, 1, || t0), Path::Ring);
    }

    #[test]
    fn forced_policies_never_move() {
        let t0 = Instant::now();
        let mut s = Chooser::new(Policy::Socket, T, t0);
        let mut r = Chooser::new(Policy::Ring, T, t0);
        for len in [0, 10, 1 << 20] {
            assert_eq!(s.choose(Path::Socket, len, || t0), Path::Socket);
            assert_eq!(r.choose(Path::Socket, len, || t0), Path::Ring);
        }
    }
}
