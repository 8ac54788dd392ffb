//! Metrics in Prometheus text format (`[metrics]`): the counters the daemon keeps, written to a
//! file for node_exporter's textfile collector and, if asked, served over HTTP.
//!
//! The daemon renders a snapshot now and then and hands it over; the file and the listener
//! live in their own tasks, so a slow disk or a stuck scraper never holds up the control loop.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// A request head longer than this is not read further (and gets the metrics anyway).
const MAX_REQUEST: usize = 8_192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One sample with its family's description.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The family name; a counter's ends in `_total`.
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// Label pairs; values are escaped when rendered.
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Sample {
    pub fn counter(name: &'static str, help: &'static str, value: u64) -> Sample {
        Sample {
            name,
            help,
            kind: Kind::Counter,
            labels: Vec::new(),
            value: value as f64,
        }
    }

    pub fn gauge(name: &'static str, help: &'static str, value: f64) -> Sample {
        Sample {
            name,
            help,
            kind: Kind::Gauge,
            labels: Vec::new(),
            value,
        }
    }

    pub fn label(mut self, k: &'static str, v: impl Into<String>) -> Sample {
        self.labels.push((k, v.into()));
        self
    }
}

/// The text exposition format (version 0.0.4): a family's HELP and TYPE once, before its
/// first sample, under the samples' own name (`_total` included: stripping it is the
/// OpenMetrics rule, and node_exporter's parser would then see an untyped family); samples of
/// one family must be adjacent, so they are grouped here.
pub fn render(samples: &[Sample]) -> String {
    let mut order: Vec<&'static str> = Vec::new();
    for s in samples {
        if !order.contains(&s.name) {
            order.push(s.name);
        }
    }
    let mut out = String::new();
    for name in order {
        let mut first = true;
        for s in samples.iter().filter(|s| s.name == name) {
            if first {
                let _ = writeln!(out, "# HELP {name} {}", escape_help(s.help));
                let kind = match s.kind {
                    Kind::Counter => "counter",
                    Kind::Gauge => "gauge",
                };
                let _ = writeln!(out, "# TYPE {name} {kind}");
                first = false;
            }
            out.push_str(name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", number(s.value));
        }
    }
    out
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

/// The daemon's end: it hands over each rendered snapshot.
pub struct Exporter {
    tx: watch::Sender<String>,
    textfile: Option<PathBuf>,
}

impl Exporter {
    /// Binds the listener (if any; an address in use is an error) and starts the tasks.
    pub async fn start(
        textfile: Option<PathBuf>,
        listen: Option<SocketAddr>,
    ) -> anyhow::Result<Exporter> {
        use anyhow::Context;
        let (tx, rx) = watch::channel(String::new());
        if let Some(addr) = listen {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("metrics: listening on {addr}"))?;
            log::info!("metrics served on http://{addr}/metrics");
            tokio::spawn(serve(l, rx.clone()));
        }
        if let Some(p) = &textfile {
            log::info!("metrics written to {}", p.display());
            tokio::spawn(write_on_change(p.clone(), rx));
        }
        Ok(Exporter { tx, textfile })
    }

    pub fn publish(&self, text: String) {
        self.tx.send_replace(text);
    }

    /// The last snapshot, written before the daemon exits (no task runs after that).
    pub fn publish_final(&self, text: String) {
        if let Some(p) = &self.textfile {
            // Its own temporary file: the writer task may be writing the previous snapshot.
            if let Err(e) = write_atomically(p, &text, "final") {
                log::warn!("metrics: {e}");
            }
        }
        self.publish(text);
    }
}

/// Written to a temporary file beside it and renamed, so a collector never reads half a file.
fn write_atomically(path: &Path, text: &str, tag: &str) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{tag}.tmp"));
    let tmp = PathBuf::from(tmp);
    // The service's umask is 0077, but node_exporter runs as another user: the counters are
    // no secret.
    std::fs::write(&tmp, text)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
        })
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

async fn write_on_change(path: PathBuf, mut rx: watch::Receiver<String>) {
    let mut failing = false;
    while rx.changed().await.is_ok() {
        let text = rx.borrow_and_update().clone();
        let p = path.clone();
        let r = tokio::task::spawn_blocking(move || write_atomically(&p, &text, "next")).await;
        match r {
            Ok(Err(e)) if !failing => {
                // Logged once per failing stretch, not every interval.
                log::warn!("metrics: {e}");
                failing = true;
            }
            Ok(Ok(())) if failing => {
                log::info!("metrics: {} written again", path.display());
                failing = false;
            }
            _ => {}
        }
    }
}

async fn serve(l: tokio::net::TcpListener, rx: watch::Receiver<String>) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let rx = rx.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, rx)).await;
            drop(permit);
        });
    }
}

/// HTTP/1.0-style: read the request head, answer, close.
async fn answer(mut s: tokio::net::TcpStream, rx: watch::Receiver<String>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let ended =
        |h: &[u8]| h.windows(4).any(|w| w == b"\r\n\r\n") || h.windows(2).any(|w| w == b"\n\n");
    while !ended(&head) && head.len() < MAX_REQUEST {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics" | "/") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            rx.borrow().clone(),
        ),
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain", "try /metrics\n".into()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics\n".into(),
        ),
    };
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        reply.push_str(&body);
    }
    s.write_all(reply.as_bytes()).await?;
    s.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_grouped_described_once_and_escaped() {
        let text = render(&[
            Sample::counter("gemlive_xruns_total", "Over- and underruns.", 3)
                .label("direction", "capture"),
            Sample::gauge("gemlive_volume_percent", "Speaker volume.", 35.0),
            Sample::counter("gemlive_xruns_total", "Over- and underruns.", 0)
                .label("direction", "play\"back\n"),
            Sample::gauge("gemlive_echo_erle_db", "ERLE.", 12.25),
        ]);
        assert_eq!(
            text,
            "# HELP gemlive_xruns_total Over- and underruns.\n\
             # TYPE gemlive_xruns_total counter\n\
             gemlive_xruns_total{direction=\"capture\"} 3\n\
             gemlive_xruns_total{direction=\"play\\\"back\\n\"} 0\n\
             # HELP gemlive_volume_percent Speaker volume.\n\
             # TYPE gemlive_volume_percent gauge\n\
             gemlive_volume_percent 35\n\
             # HELP gemlive_echo_erle_db ERLE.\n\
             # TYPE gemlive_echo_erle_db gauge\n\
             gemlive_echo_erle_db 12.25\n"
        );
    }
}
