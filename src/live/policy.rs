//! Session policy, pure: when to retry, how long to wait, which resumption handle to use.
//! No sockets and no clock of its own (callers pass `now`), so every rule is unit-tested.

use std::time::{Duration, Instant};

/// How the server (or the network) ended an attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Network trouble, 1011 internal errors, timeouts: retry soon, back off exponentially.
    Transient,
    /// The request itself was refused (bad argument, unknown model, location): retrying
    /// cannot help until someone edits the config, so wait minutes, not seconds.
    Config,
    /// Quota or concurrent-session limit: does not heal in seconds either.
    Quota,
}

/// Classifies a close code and its reason (`docs/protocol.md`, "Close codes").
pub fn classify_close(code: u16, reason: &str) -> Failure {
    let r = reason.to_ascii_lowercase();
    if r.contains("quota") || r.contains("resource has been exhausted") {
        return Failure::Quota;
    }
    match code {
        1007 => Failure::Config,
        // 1008 also closes a connection whose lifetime ran out (after goAway): only the
        // reasons that point at the request are configuration errors.
        1008 if r.contains("not found")
            || r.contains("not supported")
            || r.contains("invalid")
            || r.contains("location")
            || r.contains("not implemented") =>
        {
            Failure::Config
        }
        _ => Failure::Transient,
    }
}

/// Retry delays: jittered exponential for transient failures (0.5 s doubling to `max`),
/// and a separate, long schedule for configuration and quota failures (`config_first`
/// doubling to 15 min). Retries never stop: a wall-mounted box never gives up.
#[derive(Debug, Clone)]
pub struct Backoff {
    max: Duration,
    config_first: Duration,
    transient_attempts: u32,
    config_attempts: u32,
    rng: u32,
}

/// Longest wait after repeated configuration errors.
pub const CONFIG_MAX: Duration = Duration::from_secs(15 * 60);

impl Backoff {
    pub fn new(max: Duration, config_first: Duration, seed: u32) -> Self {
        Backoff {
            max,
            config_first,
            transient_attempts: 0,
            config_attempts: 0,
            rng: seed | 1,
        }
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.transient_attempts + self.config_attempts
    }

    /// A session became ready: start over.
    pub fn reset(&mut self) {
        self.transient_attempts = 0;
        self.config_attempts = 0;
    }

    /// The wait before the next attempt after a failure of this kind.
    pub fn next_delay(&mut self, kind: Failure) -> Duration {
        match kind {
            Failure::Transient => {
                let n = self.transient_attempts.min(16);
                self.transient_attempts += 1;
                let base = Duration::from_millis(500)
                    .saturating_mul(1 << n)
                    .min(self.max);
                // ±20 % so that a fleet of boxes does not reconnect in lockstep.
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 17;
                self.rng ^= self.rng << 5;
                let per_mille = (self.rng % 401) as i64 - 200;
                let ms = base.as_millis() as i64;
                Duration::from_millis((ms + ms * per_mille / 1000).max(50) as u64)
            }
            Failure::Config | Failure::Quota => {
                let n = self.config_attempts.min(16);
                self.config_attempts += 1;
                self.config_first
                    .saturating_mul(1 << n)
                    .min(CONFIG_MAX.max(self.config_first))
            }
        }
    }
}

/// How long the server keeps a resumption handle valid (`docs/protocol.md`, "Session resumption").
pub const HANDLE_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);

/// The newest resumable handle and when it came.
#[derive(Debug, Clone, Default)]
pub struct Resumption {
    enabled: bool,
    handle: Option<(String, Instant)>,
}

impl Resumption {
    pub fn new(enabled: bool) -> Self {
        Resumption {
            enabled,
            handle: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Turned on or off by a reload; a kept handle is used again once it is back on.
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// A `sessionResumptionUpdate`: keep the handle only if the server says it is resumable
    /// (it sends `resumable: false` without a handle while generating).
    pub fn update(&mut self, handle: Option<String>, resumable: bool, now: Instant) {
        if let (true, Some(h)) = (resumable, handle) {
            if !h.is_empty() {
                self.handle = Some((h, now));
            }
        }
    }

    /// A handle kept across a restart, `age` old when read back: usable for the rest of its
    /// server-side lifetime (the caller passes it only if it is younger than that).
    pub fn restore(&mut self, handle: String, age: Duration, now: Instant) {
        if handle.is_empty() || age >= HANDLE_LIFETIME {
            return;
        }
        // `now - age` may precede the monotonic clock's origin right after boot: count the
        // remaining lifetime from a clamped origin instead (a little generous, never negative).
        let at = now.checked_sub(age).unwrap_or(now);
        self.handle = Some((handle, at));
    }

    /// The newest handle and when it came, for persisting.
    pub fn latest(&self) -> Option<(&str, Instant)> {
        self.handle.as_ref().map(|(h, at)| (h.as_str(), *at))
    }

    /// The handle to resume with, if there is one young enough.
    pub fn handle(&self, now: Instant) -> Option<&str> {
        if !self.enabled {
            return None;
        }
        match &self.handle {
            Some((h, at)) if now.saturating_duration_since(*at) < HANDLE_LIFETIME => Some(h),
            _ => None,
        }
    }

    /// Start the next session fresh (the handle was refused, or the model ended the session).
    pub fn forget(&mut self) {
        self.handle = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(
            classify_close(1007, "Request contains an invalid argument."),
            Failure::Config
        );
        assert_eq!(
            classify_close(1008, "models/x is not found for API version v1beta"),
            Failure::Config
        );
        assert_eq!(
            classify_close(1008, ""),
            Failure::Transient,
            "goAway lifetime close"
        );
        assert_eq!(
            classify_close(
                1011,
                "You exceeded your current quota, please check your plan"
            ),
            Failure::Quota
        );
        assert_eq!(
            classify_close(1011, "Internal error encountered."),
            Failure::Transient
        );
        assert_eq!(classify_close(1006, ""), Failure::Transient);
    }

    #[test]
    fn transient_backoff_doubles_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(30), Duration::from_secs(60), 7);
        let d: Vec<Duration> = (0..12).map(|_| b.next_delay(Failure::Transient)).collect();
        for (i, d) in d.iter().enumerate() {
            let base = (500u64 << i.min(16)).min(30_000) as f64;
            let ms = d.as_millis() as f64;
            assert!(
                ms >= base * 0.8 - 1.0 && ms <= base * 1.2 + 1.0,
                "attempt {i}: {ms} vs {base}"
            );
        }
        assert_eq!(b.attempts(), 12);
        b.reset();
        assert!(b.next_delay(Failure::Transient) <= Duration::from_millis(600));
    }

    #[test]
    fn config_errors_make_few_attempts_in_the_first_minute() {
        let mut b = Backoff::new(Duration::from_secs(30), Duration::from_secs(60), 7);
        // attempt 1 at t=0 fails; count attempts whose start time is < 60 s
        let mut t = Duration::ZERO;
        let mut attempts = 1;
        loop {
            t += b.next_delay(Failure::Config);
            if t >= Duration::from_secs(60) {
                break;
            }
            attempts += 1;
        }
        assert!(attempts <= 2, "{attempts}");
        let mut b = Backoff::new(Duration::from_secs(30), Duration::from_secs(60), 7);
        let d: Vec<u64> = (0..7)
            .map(|_| b.next_delay(Failure::Quota).as_secs())
            .collect();
        assert_eq!(d, vec![60, 120, 240, 480, 900, 900, 900]);
    }

    #[test]
    fn resumption_keeps_newest_resumable_handle_for_two_hours() {
        let t0 = Instant::now();
        let mut r = Resumption::new(true);
        assert_eq!(r.handle(t0), None);
        r.update(Some("h1".into()), true, t0);
        r.update(None, false, t0);
        r.update(Some("h-not".into()), false, t0);
        r.update(Some(String::new()), true, t0);
        assert_eq!(r.handle(t0), Some("h1"));
        r.update(Some("h2".into()), true, t0 + Duration::from_secs(10));
        assert_eq!(r.handle(t0 + Duration::from_secs(20)), Some("h2"));
        assert_eq!(
            r.handle(t0 + Duration::from_secs(10) + HANDLE_LIFETIME),
            None
        );
        r.forget();
        assert_eq!(r.handle(t0), None);
        let mut off = Resumption::new(false);
        off.update(Some("h".into()), true, t0);
        assert_eq!(off.handle(t0), None);
    }
}
