//! Ephemeral tokens (`[live] auth = "ephemeral"`): short-lived credentials the owner's backend
//! mints with the real API key, so that no box carries one. A token comes from a program
//! (`token_command`) or a web server (`token_url`); a new session always gets a fresh one (the
//! service lets a token open sessions only shortly after minting), a resumption reuses the
//! current one while enough of its lifetime is left. Fetching runs in the connection's task;
//! a failure fails that dial, and the supervisor's backoff spaces the retries.
//!
//! A token is never logged: it is registered with the log's redaction as soon as it is read.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::live::{Credential, CredentialFuture, Credentials, Token};
use crate::tools::command::read_bounded;
use crate::tools::http::Url;

/// A token's lifetime when its source does not say (the service's default `expireTime`). Also
/// the most an `expireTime` is trusted for: it is read against this box's clock, which on a Pi
/// without a clock battery can be far behind until NTP has run.
pub const ASSUMED_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// The longest lifetime the service allows (`expires_in` is not read against the clock).
const MAX_LIFETIME: Duration = Duration::from_secs(20 * 3600);
/// A token command that runs longer is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// A token URL that does not answer within this is given up on.
pub const URL_TIMEOUT: Duration = Duration::from_secs(10);
/// The output read from a token source, at most.
const MAX_OUTPUT_BYTES: usize = 64 << 10;
/// A token, at most.
const MAX_TOKEN_BYTES: usize = 4 << 10;
/// The end of a failing command's standard error kept for the log.
const STDERR_TAIL_BYTES: usize = 1 << 10;
/// Replaced tokens still redacted in the log.
const REDACTED_KEPT: usize = 4;

/// `https://` anywhere, `http://` only to a loopback host (the box's credential rides along).
pub fn check_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s)?;
    if !url.tls && !crate::live::transport::is_loopback(&url.host) {
        return Err(format!(
            "plain http:// only to a loopback address, not `{}`: use https://",
            url.host
        ));
    }
    Ok(url)
}

/// Where tokens come from.
#[derive(Clone)]
pub enum Source {
    /// argv; the program prints the token.
    Command(Vec<String>),
    /// GET, with this box's own bearer credential if there is one.
    Url { url: Url, bearer: Option<String> },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Command(argv) => write!(f, "token_command {}", argv.join(" ")),
            Source::Url { url, bearer } => write!(
                f,
                "token_url {}:{}{}{}",
                url.host,
                url.port,
                url.target.split('?').next().unwrap_or(""),
                if bearer.is_some() { " (bearer)" } else { "" }
            ),
        }
    }
}

struct Current {
    token: Token,
    until: Instant,
}

/// The daemon's token source: fetches, caches for resumptions, redacts.
pub struct TokenSource {
    source: Source,
    /// A resumption reuses the current token only if it lasts this much longer (a connection's
    /// whole life), else it fetches a new one before the old one runs out.
    min_left: Duration,
    current: tokio::sync::Mutex<(Option<Current>, VecDeque<String>)>,
}

impl TokenSource {
    pub fn new(source: Source, min_left: Duration) -> Self {
        TokenSource {
            source,
            min_left,
            current: tokio::sync::Mutex::new((None, VecDeque::new())),
        }
    }

    /// A token for one connection; see [`Credentials::credential`].
    pub async fn token(&self, new_session: bool) -> Result<Token, String> {
        let mut g = self.current.lock().await;
        let (current, redacted) = &mut *g;
        let now = Instant::now();
        if let Some(c) = current.as_ref() {
            let left = c.until.saturating_duration_since(now);
            if !new_session && left > self.min_left {
                log::info!(
                    "token: reusing this session's token to resume ({} s of it left)",
                    left.as_secs()
                );
                return Ok(c.token.clone());
            }
        }
        let (token, lifetime) = self.fetch().await?;
        crate::service::redact(token.expose());
        // A source may hand out the same token again: it stays redacted while in use.
        redacted.retain(|t| t != token.expose());
        redacted.push_back(token.expose().to_string());
        while redacted.len() > REDACTED_KEPT {
            if let Some(old) = redacted.pop_front() {
                crate::service::unredact(&old);
            }
        }
        log::info!(
            "token: a new token from {} for {} (valid {} s{})",
            match self.source {
                Source::Command(_) => "token_command",
                Source::Url { .. } => "token_url",
            },
            if new_session {
                "a new session"
            } else {
                "a resumption"
            },
            lifetime.0.as_secs(),
            if lifetime.1 { "" } else { ", assumed" }
        );
        *current = Some(Current {
            token: token.clone(),
            until: now + lifetime.0,
        });
        Ok(token)
    }

    /// Forgets the current token: a dial that used it failed, and the server may have refused
    /// it (revoked, or expired earlier than this box's clock says). The next dial fetches anew.
    pub fn forget(&self) {
        if let Ok(mut g) = self.current.try_lock() {
            if g.0.take().is_some() {
                log::debug!("token: dropped after a failed dial");
            }
        }
    }

    /// The token and (its lifetime, whether the source said so).
    async fn fetch(&self) -> Result<(Token, (Duration, bool)), String> {
        let out = match &self.source {
            Source::Command(argv) => run_command(argv).await?,
            Source::Url { url, bearer } => get_url(url, bearer.as_deref()).await?,
        };
        parse_output(&out, SystemTime::now())
    }
}

impl Credentials for TokenSource {
    fn credential(&self, new_session: bool) -> CredentialFuture<'_> {
        Box::pin(async move { self.token(new_session).await.map(Credential::Token) })
    }

    fn failed(&self) {
        self.forget();
    }
}

async fn run_command(argv: &[String]) -> Result<Vec<u8>, String> {
    let Some(program) = argv.first() else {
        return Err("token_command is empty".into());
    };
    let mut cmd = crate::tools::command::tool_process(program, &argv[1..]);
    cmd.stdin(std::process::Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("token_command {program} could not be started: {e}"))?;
    let mut group = crate::tools::command::Group(child.id().map(|p| p as i32));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async {
        let out = async {
            match stdout {
                Some(s) => read_bounded(s, MAX_OUTPUT_BYTES, false).await,
                None => (Vec::new(), false),
            }
        };
        let err = async {
            match stderr {
                Some(s) => read_bounded(s, STDERR_TAIL_BYTES, true).await.0,
                None => Vec::new(),
            }
        };
        let ((out, cut), err) = tokio::join!(out, err);
        (child.wait().await, out, cut, err)
    };
    // The process group is killed as `group` drops on a timeout.
    let Ok((status, out, cut, err)) = tokio::time::timeout(COMMAND_TIMEOUT, work).await else {
        return Err(format!(
            "token_command {program} did not finish within {} s and was killed",
            COMMAND_TIMEOUT.as_secs()
        ));
    };
    if status.is_ok() {
        // Reaped: its id may be reused, so the group is not killed any more.
        group.0 = None;
    }
    let tail = crate::service::outside(String::from_utf8_lossy(&err).trim(), STDERR_TAIL_BYTES);
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            return Err(format!(
                "token_command {program} failed ({s}){}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            ))
        }
        Err(e) => return Err(format!("token_command {program}: {e}")),
    }
    if cut {
        return Err(format!(
            "token_command {program} printed more than {} KiB",
            MAX_OUTPUT_BYTES >> 10
        ));
    }
    Ok(out)
}

async fn get_url(url: &Url, bearer: Option<&str>) -> Result<Vec<u8>, String> {
    let headers: Vec<(String, String)> = bearer
        .map(|b| vec![("Authorization".to_string(), format!("Bearer {b}"))])
        .unwrap_or_default();
    let r = tokio::time::timeout(
        URL_TIMEOUT,
        crate::tools::http::request("GET", url, &headers, None),
    )
    .await
    .map_err(|_| {
        format!(
            "token_url ({}) did not answer within {} s",
            url.host,
            URL_TIMEOUT.as_secs()
        )
    })?
    .map_err(|e| format!("token_url ({}): {e}", url.host))?;
    if !(200..300).contains(&r.status) {
        let body = String::from_utf8_lossy(&r.body);
        return Err(format!(
            "token_url ({}) answered HTTP {}: {}",
            url.host,
            r.status,
            crate::service::outside(body.trim(), 200)
        ));
    }
    if r.truncated || r.body.len() > MAX_OUTPUT_BYTES {
        return Err(format!(
            "token_url ({}) answered with more than {} KiB",
            url.host,
            MAX_OUTPUT_BYTES >> 10
        ));
    }
    Ok(r.body)
}

/// The token in a source's output: the text alone, or JSON with `name` (what the service's
/// `auth_tokens` answer calls it) or `token`, and optionally `expireTime` (RFC 3339) or
/// `expires_in` (seconds).
pub fn parse_output(out: &[u8], now: SystemTime) -> Result<(Token, (Duration, bool)), String> {
    let text = std::str::from_utf8(out)
        .map_err(|_| "the token source's output is not text".to_string())?
        .trim();
    let (token, lifetime) = if text.starts_with('{') {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| format!("the token source's JSON does not parse: {e}"))?;
        let token = v
            .get("name")
            .or_else(|| v.get("token"))
            .and_then(Value::as_str)
            .ok_or("the token source's JSON has no \"name\" (or \"token\") string")?
            .to_string();
        let lifetime = if let Some(t) = v.get("expireTime").and_then(Value::as_str) {
            let at = parse_rfc3339(t).ok_or_else(|| {
                format!(
                    "the token source's expireTime {} is not an RFC 3339 time",
                    crate::service::outside(t, 64)
                )
            })?;
            // Read against this box's clock: trusted up to the default lifetime only, and a
            // time already past (a clock running ahead) means "use it once".
            Some(match at.duration_since(now) {
                Ok(d) => d.min(ASSUMED_LIFETIME),
                Err(_) => {
                    log::warn!(
                        "token: its expireTime is already past by this box's clock; using it \
                         for one connection (check the clock: timedatectl)"
                    );
                    Duration::ZERO
                }
            })
        } else {
            v.get("expires_in")
                .and_then(Value::as_u64)
                .map(|s| Duration::from_secs(s).min(MAX_LIFETIME))
        };
        (token, lifetime)
    } else {
        (text.to_string(), None)
    };
    if token.is_empty() {
        return Err("the token source printed nothing".into());
    }
    if token.len() > MAX_TOKEN_BYTES || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the token source's output is not a token (one word of at most {MAX_TOKEN_BYTES} \
             printable characters, such as auth_tokens/…)"
        ));
    }
    Ok(match lifetime {
        Some(l) => (Token::new(token), (l, true)),
        None => (Token::new(token), (ASSUMED_LIFETIME, false)),
    })
}

/// `2026-12-07T03:04:05Z`, with optional fractions and a `±HH:MM` offset instead of `Z`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        let t = |s| parse_rfc3339(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(t("2026-12-07T03:04:05Z"), Some(1_796_612_645));
        assert_eq!(t("2026-12-07T03:04:05.123456Z"), Some(1_796_612_645));
        assert_eq!(t("2026-12-07T04:04:05+01:00"), Some(1_796_612_645));
        assert_eq!(t("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        for bad in [
            "",
            "2026-12-07",
            "2026-13-07T03:04:05Z",
            "2026-12-07T03:04:05",
            "x026-12-07T03:04:05Z",
            "2026-12-07T03:04:05Zjunk",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn outputs() {
        let now = UNIX_EPOCH + Duration::from_secs(1_796_612_400);
        let (tok, (life, said)) = parse_output(b"auth_tokens/abc\n", now).unwrap();
        assert_eq!(tok.expose(), "auth_tokens/abc");
        assert_eq!((life, said), (ASSUMED_LIFETIME, false));
        let (tok, (life, said)) = parse_output(
            br#"{"name": "auth_tokens/x", "expireTime": "2026-12-07T03:04:05Z"}"#,
            now,
        )
        .unwrap();
        assert_eq!(tok.expose(), "auth_tokens/x");
        assert_eq!((life, said), (Duration::from_secs(245), true));
        let (_, (life, _)) = parse_output(br#"{"token": "t", "expires_in": 60}"#, now).unwrap();
        assert_eq!(life, Duration::from_secs(60));
        assert!(parse_output(b"", now).unwrap_err().contains("nothing"));
        assert!(parse_output(b"two words", now)
            .unwrap_err()
            .contains("not a token"));
        assert!(parse_output(br#"{"nope": 1}"#, now)
            .unwrap_err()
            .contains("name"));
        let past = parse_output(
            br#"{"name": "t", "expireTime": "2020-01-01T00:00:00Z"}"#,
            now,
        );
        assert_eq!(
            past.unwrap().1,
            (Duration::ZERO, true),
            "used once, not refused"
        );
        let far = parse_output(
            br#"{"name": "t", "expireTime": "2030-01-01T00:00:00Z"}"#,
            now,
        );
        assert_eq!(
            far.unwrap().1,
            (ASSUMED_LIFETIME, true),
            "capped: the clock may be behind"
        );
    }

    #[tokio::test]
    async fn new_sessions_fetch_resumptions_reuse_a_failed_dial_forgets() {
        let dir = std::env::temp_dir().join(format!("gemlive-token-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("n");
        let script_for = |f: &std::path::Path| {
            format!(
                "n=$(cat {0} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {0}; echo auth_tokens/t$n",
                f.display()
            )
        };
        let source = TokenSource::new(
            Source::Command(vec!["/bin/sh".into(), "-c".into(), script_for(&f)]),
            Duration::from_secs(60),
        );
        let mut got = Vec::new();
        for new_session in [true, false, false, true] {
            got.push(
                source
                    .token(new_session)
                    .await
                    .unwrap()
                    .expose()
                    .to_string(),
            );
        }
        source.forget();
        got.push(source.token(false).await.unwrap().expose().to_string());
        assert_eq!(
            got,
            [
                "auth_tokens/t1",
                "auth_tokens/t1",
                "auth_tokens/t1",
                "auth_tokens/t2",
                "auth_tokens/t3"
            ]
        );
        // A token that would not last a connection's life is not reused.
        std::fs::remove_file(&f).unwrap();
        let short = TokenSource::new(
            Source::Command(vec!["/bin/sh".into(), "-c".into(), script_for(&f)]),
            ASSUMED_LIFETIME + Duration::from_secs(1),
        );
        let a = short.token(true).await.unwrap();
        let b = short.token(false).await.unwrap();
        assert_eq!(
            (a.expose(), b.expose()),
            ("auth_tokens/t1", "auth_tokens/t2")
        );
        let failing = TokenSource::new(
            Source::Command(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo nope >&2; exit 3".into(),
            ]),
            Duration::from_secs(60),
        );
        let e = failing.token(true).await.unwrap_err();
        assert!(e.contains("failed (exit status: 3): nope"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn urls() {
        assert!(check_url("https://tokens.example.com/box/7").is_ok());
        assert!(check_url("http://127.0.0.1:8080/t").is_ok());
        assert!(check_url("http://tokens.example.com/t")
            .unwrap_err()
            .contains("https"));
        assert!(check_url("ftp://x").is_err());
    }
}
