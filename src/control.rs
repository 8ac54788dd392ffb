//! The local control interface (`[control] socket`): a Unix socket speaking JSON lines, and
//! `gemlive ctl`, its client (`docs/design.md`, "Control interface").
//!
//! One request per line: `{"command": "wake"}`, `{"command": "volume", "value": 35}`; one
//! answer line each: `{"ok": true, ...}` or `{"ok": false, "error": "..."}`. The command
//! `events` turns the connection into a stream of event lines (`{"event": "state", ...}`)
//! until the client hangs up. The daemon's loop only ever sees parsed commands through a
//! bounded channel; sockets, slow readers and bad input stay in this module's tasks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot};

/// A request line longer than this is refused (and the connection closed).
const MAX_LINE: usize = 4_096;
/// A connection without a request for this long is closed (`events` streams are not).
const IDLE: Duration = Duration::from_secs(300);
/// Connections served at once; more wait in the kernel's backlog.
const MAX_CLIENTS: usize = 16;
/// Events kept for a slow subscriber before it loses the oldest (and is told how many).
pub const EVENT_BACKLOG: usize = 256;

/// Longest text `announce` takes (about a minute of speech).
pub const MAX_ANNOUNCE: usize = 1_000;

/// What a client may ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open a session (like a button press while idle).
    Wake,
    /// End the session.
    End,
    /// Stop the reply that is playing.
    Interrupt,
    Mute,
    Unmute,
    /// Speaker volume, 0..=100 %.
    Volume(u8),
    /// Have the model say this (opening a session if none is open).
    Announce(String),
    /// Silence a ringing timer.
    Silence,
    Status,
}

pub const COMMANDS: &str =
    "wake, end, interrupt, mute, unmute, volume N, announce TEXT, silence, status, events";

impl Command {
    /// A request line's command, or why not.
    pub fn parse(v: &Value) -> Result<Option<Command>, String> {
        let Some(name) = v.get("command").and_then(Value::as_str) else {
            return Err("expected {\"command\": \"...\"}".into());
        };
        Ok(Some(match name {
            "wake" => Command::Wake,
            "end" => Command::End,
            "interrupt" => Command::Interrupt,
            "mute" => Command::Mute,
            "unmute" => Command::Unmute,
            "status" => Command::Status,
            "silence" => Command::Silence,
            "announce" => Command::Announce(announcement(
                v.get("text").and_then(Value::as_str).unwrap_or(""),
            )?),
            "volume" => {
                let n = v
                    .get("value")
                    .and_then(Value::as_u64)
                    .filter(|n| *n <= 100)
                    .ok_or("volume needs \"value\": 0..=100")?;
                Command::Volume(n as u8)
            }
            "events" => return Ok(None),
            other => {
                return Err(format!(
                    "unknown command \"{}\" (one of: {COMMANDS})",
                    crate::service::outside(other, 40)
                ))
            }
        }))
    }
}

/// A command on its way to the daemon, with where its answer goes.
pub struct Request {
    pub command: Command,
    pub reply: oneshot::Sender<Value>,
}

/// The text of an `announce`: trimmed, not empty, at most [`MAX_ANNOUNCE`] bytes.
pub fn announcement(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("announce needs \"text\": what to say".into());
    }
    if t.len() > MAX_ANNOUNCE {
        return Err(format!(
            "announce takes at most {MAX_ANNOUNCE} bytes of text, not {}",
            t.len()
        ));
    }
    Ok(t.to_string())
}

/// One event, as every outlet (control subscribers, hooks, MQTT) gets it.
#[derive(Debug)]
pub struct Event {
    pub name: &'static str,
    /// The fields, with `"event": name` among them.
    pub fields: Value,
    /// `fields` as one JSON line (without the newline).
    pub line: String,
}

/// Where commands come in and events go out, whatever carries them (the socket, MQTT): the
/// daemon holds the receiving end of the commands and the sending end of the events.
pub struct Hub {
    pub requests: mpsc::Receiver<Request>,
    requests_tx: mpsc::Sender<Request>,
    events: broadcast::Sender<std::sync::Arc<Event>>,
}

impl Default for Hub {
    fn default() -> Self {
        let (requests_tx, requests) = mpsc::channel(32);
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        Hub {
            requests,
            requests_tx,
            events,
        }
    }
}

impl Hub {
    /// A handle for an outlet: it sends commands and receives every event from now on.
    pub fn handle(&self) -> Handle {
        Handle {
            requests: self.requests_tx.clone(),
            events: self.events.clone(),
        }
    }

    /// Sends an event to every subscriber (none: nothing happens).
    pub fn event(&self, name: &'static str, mut fields: Value) {
        if let Some(m) = fields.as_object_mut() {
            m.insert("event".into(), Value::from(name));
        }
        let line = fields.to_string();
        let _ = self
            .events
            .send(std::sync::Arc::new(Event { name, fields, line }));
    }
}

/// An outlet's end of the [`Hub`].
#[derive(Clone)]
pub struct Handle {
    pub requests: mpsc::Sender<Request>,
    pub events: broadcast::Sender<std::sync::Arc<Event>>,
}

impl Handle {
    /// Sends a command and waits (at most 5 s, the queueing included) for the daemon's answer.
    pub async fn ask(&self, command: Command) -> Value {
        let (reply, rx) = oneshot::channel();
        let asked = async {
            self.requests
                .send(Request { command, reply })
                .await
                .map_err(|_| "the daemon is stopping")?;
            rx.await.map_err(|_| "the daemon is stopping")
        };
        match tokio::time::timeout(Duration::from_secs(5), asked).await {
            Ok(Ok(v)) => v,
            Ok(Err(why)) => refuse(why),
            Err(_) => refuse("the daemon did not answer"),
        }
    }
}

/// The bound socket; dropping it removes the socket file.
pub struct Control {
    path: PathBuf,
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the socket (replacing a stale one; refusing one a live daemon answers on) and starts
/// serving it. Mode 0660: the service's group may control the box.
pub fn listen(path: &Path, hub: Handle) -> anyhow::Result<Control> {
    use anyhow::Context;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!(
                "{} exists and is not a socket; remove it or choose another [control] socket",
                path.display()
            );
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another gemlive is already listening on {}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod 660 {}", path.display()))?;
    tokio::spawn(async move {
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            match listener.accept().await {
                Ok((stream, _)) => {
                    let hub = hub.clone();
                    tokio::spawn(async move {
                        serve(stream, hub).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    log::warn!("control socket: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    log::info!("control interface on {}", path.display());
    Ok(Control {
        path: path.to_path_buf(),
    })
}

async fn serve(stream: UnixStream, hub: Handle) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A client that says nothing for a while gives its slot back.
        let mut limited = (&mut r).take(MAX_LINE as u64 + 1);
        let read = limited.read_until(b'\n', &mut line);
        let n = match tokio::time::timeout(IDLE, read).await {
            Ok(Ok(n)) => n,
            _ => return,
        };
        if n == 0 {
            return;
        }
        if line.len() > MAX_LINE {
            let _ = write_line(&mut w, &refuse("request line longer than 4096 bytes")).await;
            return;
        }
        let answer = match serde_json::from_slice::<Value>(&line) {
            Err(e) => refuse(&format!("not JSON: {e}")),
            Ok(v) => match Command::parse(&v) {
                Err(e) => refuse(&e),
                Ok(None) => {
                    stream_events(&mut w, hub.events.subscribe()).await;
                    return;
                }
                Ok(Some(command)) => hub.ask(command).await,
            },
        };
        if write_line(&mut w, &answer).await.is_err() {
            return;
        }
    }
}

async fn stream_events(
    w: &mut tokio::net::unix::OwnedWriteHalf,
    mut rx: broadcast::Receiver<std::sync::Arc<Event>>,
) {
    if write_line(w, &json!({"ok": true, "events": true}))
        .await
        .is_err()
    {
        return;
    }
    loop {
        let line = match rx.recv().await {
            Ok(e) => e.line.clone(),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                json!({"event": "lost", "count": n}).to_string()
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let write = async {
            w.write_all(line.as_bytes()).await?;
            w.write_all(b"\n").await
        };
        // A reader that stops reading is dropped, never waited for.
        match tokio::time::timeout(Duration::from_secs(5), write).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}

fn refuse(why: &str) -> Value {
    json!({"ok": false, "error": why})
}

async fn write_line(w: &mut tokio::net::unix::OwnedWriteHalf, v: &Value) -> std::io::Result<()> {
    let mut s = v.to_string();
    s.push('\n');
    w.write_all(s.as_bytes()).await
}

/// `gemlive ctl WORDS...`: the request line for them.
pub fn request_for(words: &[String]) -> Result<Value, String> {
    let usage = || format!("gemlive ctl needs a command: {COMMANDS}");
    let (first, rest) = words.split_first().ok_or_else(usage)?;
    let v = match (first.as_str(), rest) {
        ("volume", [n]) => {
            let n: u8 = n
                .parse()
                .ok()
                .filter(|n| *n <= 100)
                .ok_or_else(|| format!("volume takes 0..=100, not {n}"))?;
            json!({"command": "volume", "value": n})
        }
        ("volume", _) => return Err("gemlive ctl volume N (0..=100)".into()),
        ("announce", []) => return Err("gemlive ctl announce TEXT...".into()),
        ("announce", text) => json!({"command": "announce", "text": text.join(" ")}),
        (c, []) => json!({ "command": c }),
        _ => return Err(usage()),
    };
    Command::parse(&v)?;
    Ok(v)
}

/// The client: sends one request and prints the answer (or, for `events`, every event line
/// until the daemon goes). Exit status 0 when the daemon said ok.
pub async fn client(path: &Path, words: &[String]) -> anyhow::Result<bool> {
    use anyhow::Context;
    let req = request_for(words).map_err(anyhow::Error::msg)?;
    let stream = UnixStream::connect(path).await.with_context(|| {
        format!(
            "connecting to {} (is gemlive running, with [control] socket set to it?)",
            path.display()
        )
    })?;
    let (r, mut w) = stream.into_split();
    write_line(&mut w, &req).await?;
    let mut lines = BufReader::new(r).lines();
    let first = lines
        .next_line()
        .await?
        .context("the daemon closed the connection")?;
    let ok = serde_json::from_str::<Value>(&first)
        .ok()
        .and_then(|v| v.get("ok").and_then(Value::as_bool))
        .unwrap_or(false);
    if req["command"] == "events" && ok {
        while let Some(l) = lines.next_line().await? {
            println!("{l}");
        }
        return Ok(true);
    }
    println!("{first}");
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn ctl_words_become_requests() {
        assert_eq!(
            request_for(&words("wake")).unwrap(),
            json!({"command": "wake"})
        );
        assert_eq!(
            request_for(&words("volume 35")).unwrap(),
            json!({"command": "volume", "value": 35})
        );
        assert!(request_for(&words("volume 101")).is_err());
        assert!(request_for(&words("volume")).is_err());
        assert!(request_for(&words("launch"))
            .unwrap_err()
            .contains("unknown command"));
        assert!(request_for(&[]).is_err());
        assert_eq!(
            request_for(&words("announce dinner is  ready")).unwrap(),
            json!({"command": "announce", "text": "dinner is ready"})
        );
        assert!(request_for(&words("announce")).is_err());
        assert_eq!(
            request_for(&words("events")).unwrap(),
            json!({"command": "events"})
        );
    }

    #[test]
    fn request_lines_parse_or_say_why() {
        let p = |s: &str| Command::parse(&serde_json::from_str(s).unwrap());
        assert_eq!(p(r#"{"command":"mute"}"#), Ok(Some(Command::Mute)));
        assert_eq!(
            p(r#"{"command":"volume","value":7}"#),
            Ok(Some(Command::Volume(7)))
        );
        assert!(p(r#"{"command":"volume","value":-1}"#).is_err());
        assert!(p(r#"{"cmd":"mute"}"#).is_err());
        assert_eq!(p(r#"{"command":"events"}"#), Ok(None));
        assert_eq!(
            p(r#"{"command":"announce","text":" Dinner! "}"#),
            Ok(Some(Command::Announce("Dinner!".into())))
        );
        assert!(p(r#"{"command":"announce","text":"  "}"#).is_err());
        let long = format!(r#"{{"command":"announce","text":"{}"}}"#, "x".repeat(1001));
        assert!(p(&long).unwrap_err().contains("at most 1000"));
        // Outside text is escaped and cut before it is shown.
        let e = p(&format!(r#"{{"command":"{}\u001b"}}"#, "x".repeat(100))).unwrap_err();
        assert!(!e.contains('\u{1b}') && e.len() < 200, "{e}");
    }
}
