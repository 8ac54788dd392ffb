//! Living as a service: logging (journald when started by systemd, stderr otherwise),
//! sd-notify messages, and the stop signals.

use std::io::Write;
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

/// Installs the logger once. Under systemd (stderr is the journal stream) entries go to the
/// journal natively, with priorities; anywhere else to stderr with a relative timestamp.
pub fn init_logging(level: LevelFilter) {
    let journal = systemd_journal_logger::connected_to_journal()
        && systemd_journal_logger::JournalLog::new()
            .map(|j| {
                j.with_syslog_identifier("gemlive".into())
                    .with_extra_fields(vec![("VERSION", env!("CARGO_PKG_VERSION"))])
                    .install()
                    .is_ok()
            })
            .unwrap_or(false);
    if !journal {
        let _ = log::set_boxed_logger(Box::new(StderrLog {
            start: Instant::now(),
        }));
    }
    log::set_max_level(level);
}

struct StderrLog {
    start: Instant,
}

impl Log for StderrLog {
    fn enabled(&self, m: &Metadata) -> bool {
        // Library chatter (tungstenite frames, rustls handshakes) only at trace: their debug
        // output is noise for someone reading a Pi's log over SSH.
        let ours = m.target().starts_with("gemlive");
        ours || m.level() <= log::Level::Info || log::max_level() >= LevelFilter::Trace
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
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

/// sd-notify wrappers: no-ops (and no errors) when not started by systemd.
pub mod notify {
    use sd_notify::NotifyState;

    pub fn ready(status: &str) {
        let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(status: &str) {
        let _ = sd_notify::notify(&[NotifyState::Status(status)]);
    }

    pub fn stopping() {
        let _ = sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
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
    fn chain_joins_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
