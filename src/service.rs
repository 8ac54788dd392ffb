//! Living as a service: logging (journald when started by systemd, stderr otherwise),
//! sd-notify messages, and the stop signals.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

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

/// A secret from its own file (`what` names the key in messages): mode 0600 like the API key,
/// a regular file, at most `max` bytes, one line (surrounding whitespace trimmed). Registered
/// with [`redact`] at once, so no log record can show it.
pub fn read_secret(path: &std::path::Path, what: &str, max: u64) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{what} {} can be read by others: chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    if !meta.is_file() {
        return Err(format!("{what} {} is not a regular file", path.display()));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max).read_to_string(&mut text))
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let t = text.trim();
    if t.is_empty() || t.contains('\n') {
        return Err(format!(
            "{what} {} must hold only the secret, on one line",
            path.display()
        ));
    }
    redact(t);
    Ok(t.to_string())
}

/// Registers a secret: from now on it is replaced by `<redacted>` in every log record.
pub fn redact(secret: &str) {
    if secret.len() >= 4 {
        if let Ok(mut s) = SECRETS.write() {
            if !s.iter().any(|k| k == secret) {
                s.push(secret.to_string());
            }
        }
    }
}

/// Stops redacting a secret that is no longer in use (a replaced token), so that the list
/// does not grow for as long as the daemon runs.
pub fn unredact(secret: &str) {
    if let Ok(mut s) = SECRETS.write() {
        s.retain(|k| k != secret);
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

/// The longest log record, bytes: a whole model reply or a 4 MiB frame never becomes one line.
pub const MAX_RECORD_BYTES: usize = 2048;
/// Records one call site may log per window before the rest is counted instead.
const SITE_BUDGET: u32 = 10;
const SITE_WINDOW: Duration = Duration::from_secs(10);

/// A string from outside (server text, transcripts, close reasons, file contents) made safe for
/// one log line: control characters (newline, CR, BEL, ESC…) escaped, so that no server string
/// can start a line of its own or drive a terminal, and cut to `max` bytes with the length left
/// out said.
pub fn outside(s: &str, max: usize) -> String {
    // Secrets go before the cut: a cut through one would leave a piece the logger cannot match.
    // Only the part that can be shown is scrubbed (plus room for a secret across the cut).
    let window = s.floor_char_boundary(s.len().min(max + 512));
    let scrubbed = scrub(s[..window].to_string());
    let mut out = String::with_capacity(scrubbed.len().min(max) + 16);
    let mut shown = scrubbed.len();
    for (i, c) in scrubbed.char_indices() {
        if out.len() >= max {
            shown = i;
            break;
        }
        push_escaped(&mut out, c);
    }
    let more = scrubbed.len() - shown + (s.len() - window);
    if more > 0 {
        out.push_str(&format!("… [{more} more bytes]"));
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// The last line of defence for every record, whoever wrote it: control characters escaped
/// and the length capped.
fn sanitize(msg: &str) -> Cow<'_, str> {
    if msg.len() <= MAX_RECORD_BYTES && !msg.chars().any(char::is_control) {
        Cow::Borrowed(msg)
    } else {
        Cow::Owned(outside(msg, MAX_RECORD_BYTES))
    }
}

/// Per call site: how many records it logged in the current window, and how many it held back.
#[derive(Debug)]
struct Site {
    window_start: Instant,
    logged: u32,
    suppressed: u64,
}

/// Decides whether a record from `site` goes out now. Returns `(log_it, suppressed_before)`:
/// when a window ends with records held back, the next record carries their count.
fn admit(sites: &mut HashMap<String, Site>, site: &str, now: Instant) -> (bool, u64) {
    let s = sites.entry(site.to_string()).or_insert(Site {
        window_start: now,
        logged: 0,
        suppressed: 0,
    });
    if now.duration_since(s.window_start) >= SITE_WINDOW {
        let held = std::mem::take(&mut s.suppressed);
        s.window_start = now;
        s.logged = 1;
        return (true, held);
    }
    if s.logged < SITE_BUDGET {
        s.logged += 1;
        (true, 0)
    } else {
        s.suppressed += 1;
        (false, 0)
    }
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
    let _ = log::set_boxed_logger(Box::new(Redacting {
        inner,
        sites: Mutex::new(HashMap::new()),
    }));
    log::set_max_level(level);
}

struct Redacting {
    inner: Box<dyn Log>,
    sites: Mutex<HashMap<String, Site>>,
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
        // A flood from one place (a server sending 10,000 bad frames a second) is summarised,
        // not written out: at most SITE_BUDGET records per call site per window.
        let site = match (r.file(), r.line()) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            _ => r.target().to_string(),
        };
        let (go, held) = match self.sites.lock() {
            Ok(mut sites) => {
                // Bounded too: a site table that somehow grows is simply started over.
                if sites.len() > 4096 {
                    sites.clear();
                }
                admit(&mut sites, &site, Instant::now())
            }
            Err(_) => (true, 0),
        };
        if !go {
            return;
        }
        // The key is removed from the raw text, before escaping or cutting could split it.
        let raw = scrub(r.args().to_string());
        let mut msg = sanitize(&raw).into_owned();
        if held > 0 {
            msg.push_str(&format!(
                " ({held} more like this in the last {} s were not logged)",
                SITE_WINDOW.as_secs()
            ));
        }
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

    /// Says what the rate limit held back (called at stop, so that nothing goes unmentioned).
    fn flush(&self) {
        let held: Vec<(String, u64)> = match self.sites.lock() {
            Ok(mut sites) => sites
                .iter_mut()
                .filter(|(_, s)| s.suppressed > 0)
                .map(|(k, s)| (k.clone(), std::mem::take(&mut s.suppressed)))
                .collect(),
            Err(_) => Vec::new(),
        };
        for (site, n) in held {
            self.inner.log(
                &Record::builder()
                    .args(format_args!(
                        "{n} more log records from {site} were not logged (repeated too often)"
                    ))
                    .level(log::Level::Warn)
                    .target("gemlive")
                    .build(),
            );
        }
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

/// `systemctl reload` returns when the unit's `ExecReload` command exits, and systemd 252 has no
/// `Type=notify-reload`: with a bare `kill -HUP` it returned before the daemon had even read the
/// file, and a broken file still "reloaded" fine. So `ExecReload` runs `gemlive reload
/// $MAINPID`, which signals the daemon and waits for it to write the outcome of that reload into
/// its runtime directory (`$RUNTIME_DIRECTORY/reload`: `GENERATION ok` or `GENERATION failed:
/// REASON`), and fails the reload with the daemon's reason.
pub mod reload {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    /// How long `gemlive reload` waits: a reload reads one small file.
    pub const WAIT: Duration = Duration::from_secs(30);

    fn file() -> Option<PathBuf> {
        let dirs = std::env::var_os("RUNTIME_DIRECTORY")?;
        let first = dirs.to_str()?.split(':').next()?.to_string();
        (!first.is_empty()).then(|| PathBuf::from(first).join("reload"))
    }

    /// The daemon's side: the outcome of its `generation`-th reload.
    pub fn record(generation: u64, outcome: &Result<(), String>) {
        let Some(path) = file() else { return };
        let line = match outcome {
            Ok(()) => format!("{generation} ok\n"),
            Err(e) => format!("{generation} failed: {}\n", super::outside(e, 400)),
        };
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, line)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .is_err()
        {
            log::debug!("could not record the reload outcome in {}", path.display());
        }
    }

    /// (generation, None = ok | Some(reason)) from the file's text.
    pub fn parse(text: &str) -> Option<(u64, Option<String>)> {
        let line = text.lines().next()?;
        let (generation, rest) = line.split_once(' ')?;
        let generation = generation.parse().ok()?;
        match rest.strip_prefix("failed: ") {
            Some(reason) => Some((generation, Some(reason.to_string()))),
            None => (rest == "ok").then_some((generation, None)),
        }
    }

    fn current() -> u64 {
        file()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| parse(&t))
            .map_or(0, |(g, _)| g)
    }

    #[derive(Debug, thiserror::Error)]
    pub enum Error {
        #[error("no gemlive process {0}: {1}")]
        Signal(i32, std::io::Error),
        #[error("the new configuration was refused, the running one stays: {0}")]
        Refused(String),
        #[error("gemlive (process {0}) exited during the reload")]
        Gone(i32),
        #[error("gemlive did not finish the reload within {} s", WAIT.as_secs())]
        Timeout,
    }

    /// Sends SIGHUP to `pid` and waits for the outcome. Outside systemd (no
    /// `RUNTIME_DIRECTORY`) there is nothing to wait on: it only signals.
    pub fn request(pid: i32) -> Result<&'static str, Error> {
        let before = current();
        let alive = |sig| {
            // SAFETY: kill(2) has no memory-safety preconditions.
            if unsafe { libc::kill(pid, sig) } == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        };
        if pid <= 0 {
            return Err(Error::Signal(
                pid,
                std::io::Error::from_raw_os_error(libc::ESRCH),
            ));
        }
        alive(libc::SIGHUP).map_err(|e| Error::Signal(pid, e))?;
        let Some(path) = file() else {
            return Ok("signalled (no RUNTIME_DIRECTORY to wait on)");
        };
        let end = Instant::now() + WAIT;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
            if let Some((g, outcome)) = std::fs::read_to_string(&path).ok().and_then(|t| parse(&t))
            {
                if g > before {
                    return match outcome {
                        None => Ok("the new configuration is in force"),
                        Some(reason) => Err(Error::Refused(reason)),
                    };
                }
            }
            if alive(0).is_err() {
                return Err(Error::Gone(pid));
            }
        }
        Err(Error::Timeout)
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
    fn reload_outcomes() {
        assert_eq!(reload::parse("3 ok\n"), Some((3, None)));
        assert_eq!(
            reload::parse("4 failed: line 2, column 1: bad\n"),
            Some((4, Some("line 2, column 1: bad".into())))
        );
        for bad in ["", "ok", "x ok", "5 maybe", "5"] {
            assert_eq!(reload::parse(bad), None, "{bad}");
        }
        // No such process: a clear error, nothing signalled.
        assert!(matches!(
            reload::request(0),
            Err(reload::Error::Signal(0, _))
        ));
    }

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
    fn outside_strings_become_one_short_line() {
        assert_eq!(outside("plain text", 100), "plain text");
        assert_eq!(
            outside("hi\n9.999 ERROR forged\r\x07\x1b[31mred", 100),
            "hi\\n9.999 ERROR forged\\r\\u{7}\\u{1b}[31mred"
        );
        let long = "é".repeat(1000);
        let cut = outside(&long, 10);
        assert!(cut.starts_with("ééééé… ["), "{cut}");
        assert!(cut.ends_with("more bytes]"), "{cut}");
        assert!(!sanitize("a\u{9b}b").contains('\u{9b}'), "C1 controls too");
        assert!(sanitize(&"x".repeat(10_000)).len() < MAX_RECORD_BYTES + 40);
        assert!(matches!(sanitize("fine"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_flooding_call_site_is_summarised() {
        let mut sites = HashMap::new();
        let t0 = Instant::now();
        let mut logged = 0;
        for i in 0..10_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 100); // 10,000 in 1 s
            if admit(&mut sites, "a.rs:1", now).0 {
                logged += 1;
            }
        }
        assert_eq!(logged, SITE_BUDGET);
        // Another site is not held back by the first.
        assert!(admit(&mut sites, "b.rs:2", t0).0);
        let (go, held) = admit(&mut sites, "a.rs:1", t0 + SITE_WINDOW);
        assert!(go);
        assert_eq!(held, 10_000 - u64::from(SITE_BUDGET));
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
