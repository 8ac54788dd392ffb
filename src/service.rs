//! Living as a service: logging (journald when started by systemd, stderr otherwise),
//! sd-notify messages, and the stop signals.

use std::io::Write;
use std::sync::RwLock;
use std::time::Instant;

use log::{LevelFilter, Log, Metadata, Record};

/// Parses a log level name as accepted by `GEMLIVE_LOG` / `-v`.
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" | "warning" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

/// Secrets that must never reach a log line, whoever logs them (tungstenite traces the whole
/// upgrade request, `x-goog-api-key` header included).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// `-v` or `GEMLIVE_LOG` chose the level: the config file's `log_level` must not override it.
static LEVEL_FORCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_level_forced(on: bool) {
    LEVEL_FORCED.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Applies `[service] log_level` (at start and on reload) unless the command line chose one.
pub fn apply_config_level(level: LevelFilter) {
    if !LEVEL_FORCED.load(std::sync::atomic::Ordering::Relaxed) {
        log::set_max_level(level);
    }
}

/// Registers a secret: from now on it is replaced by `<redacted>` in every log record.
pub fn redact(secret: &str) {
    if secret.len() >= 4 {
        if let Ok(mut s) = SECRETS.write() {
            s.push(secret.to_string());
        }
    }
}

fn scrub(mut msg: String) -> String {
    if let Ok(secrets) = SECRETS.read() {
        for s in secrets.iter() {
            if msg.contains(s.as_str()) {
                msg = msg.replace(s.as_str(), "<redacted>");
            }
        }
    }
    msg
}

/// Installs the logger once. Under systemd (stderr is the journal stream) entries go to the
/// journal natively, with priorities; anywhere else to stderr with a relative timestamp.
/// Either way every record passes through `scrub` first.
pub fn init_logging(level: LevelFilter) {
    let inner: Box<dyn Log> = match systemd_journal_logger::connected_to_journal()
        .then(systemd_journal_logger::JournalLog::new)
    {
        Some(Ok(j)) => Box::new(
            j.with_syslog_identifier("gemlive".into())
                .with_extra_fields(vec![("VERSION", env!("CARGO_PKG_VERSION"))]),
        ),
        _ => Box::new(StderrLog {
            start: Instant::now(),
        }),
    };
    let _ = log::set_boxed_logger(Box::new(Redacting { inner }));
    log::set_max_level(level);
}

struct Redacting {
    inner: Box<dyn Log>,
}

impl Log for Redacting {
    fn enabled(&self, m: &Metadata) -> bool {
        // Library chatter (tungstenite frames, rustls handshakes) only at trace: their debug
        // output is noise for someone reading a Pi's log over SSH.
        let ours = m.target().starts_with("gemlive");
        (ours || m.level() <= log::Level::Info || log::max_level() >= LevelFilter::Trace)
            && self.inner.enabled(m)
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = scrub(r.args().to_string());
        self.inner.log(
            &Record::builder()
                .args(format_args!("{msg}"))
                .level(r.level())
                .target(r.target())
                .module_path(r.module_path())
                .file(r.file())
                .line(r.line())
                // Structured fields (e.g. ROLE= on transcripts) reach the journal unchanged.
                .key_values(r.key_values())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

struct StderrLog {
    start: Instant,
}

impl Log for StderrLog {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }

    fn log(&self, r: &Record) {
        let t = self.start.elapsed();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{:>4}.{:03} {:<5} {}",
            t.as_secs(),
            t.subsec_millis(),
            r.level(),
            r.args()
        );
    }

    fn flush(&self) {}
}

/// CLOCK_MONOTONIC in seconds: the clock ALSA and other processes on the box share, so a log
/// line can be lined up with a recording made by another process (latency measurements).
pub fn monotonic_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// "outer: inner: innermost" for one log line; errors keep their causes as `source()`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Joins a device thread, but does not wait more than 2 s for it: a thread stuck in a driver
/// call (a wedged USB device) must not keep the daemon from exiting; the process exit ends it.
pub fn join_or_leave(t: std::thread::JoinHandle<()>, name: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !t.is_finished() {
        if std::time::Instant::now() > until {
            log::warn!("the {name} thread is stuck in a device call; exiting without it");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = t.join();
}

/// sd-notify wrappers: no-ops (and no errors) when not started by systemd.
pub mod notify {
    use sd_notify::NotifyState;
    use std::time::Duration;

    pub fn ready(status: &str) {
        let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(status: &str) {
        let _ = sd_notify::notify(&[NotifyState::Status(status)]);
    }

    pub fn stopping() {
        let _ = sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// RELOADING=1 together with MONOTONIC_USEC: systemd ≥ 253 requires both in one message
    /// for `Type=notify-reload`, older versions ignore the timestamp.
    pub fn reloading() {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => {
                let _ = sd_notify::notify(&[NotifyState::Reloading, now]);
            }
            Err(_) => {
                let _ = sd_notify::notify(&[NotifyState::Reloading]);
            }
        }
    }

    pub fn watchdog() {
        let _ = sd_notify::notify(&[NotifyState::Watchdog]);
    }

    /// The watchdog period systemd asked for (`WatchdogSec=`), if any.
    pub fn watchdog_period() -> Option<Duration> {
        sd_notify::watchdog_enabled()
    }
}

/// Resolves on each SIGHUP (reload request); never resolves if the handler cannot be installed.
pub struct Hangups(Option<tokio::signal::unix::Signal>);

impl Hangups {
    pub fn new() -> Self {
        Hangups(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok())
    }

    pub async fn recv(&mut self) {
        match &mut self.0 {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
}

impl Default for Hangups {
    fn default() -> Self {
        Self::new()
    }
}

/// Resolves when SIGINT or SIGTERM arrives; names the signal.
pub async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers we can only run until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(parse_level("DEBUG"), Some(LevelFilter::Debug));
        assert_eq!(parse_level("warning"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("loud"), None);
    }

    #[test]
    fn secrets_are_scrubbed() {
        redact("sekrit-value-1");
        assert_eq!(scrub("key: sekrit-value-1!".into()), "key: <redacted>!");
        assert_eq!(scrub("nothing here".into()), "nothing here");
    }

    #[test]
    fn chain_joins_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
