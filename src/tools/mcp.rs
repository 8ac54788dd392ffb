//! `[[tools.mcp]]`: the Model Context Protocol client. JSON-RPC 2.0 over a server program's
//! stdin/stdout (one message per line) or over Streamable HTTP (each message a POST whose
//! answer is JSON or a short server-sent-event stream), on the tools' own HTTP client and the
//! same rustls/ring stack. It does what a voice box needs of MCP: initialize, list tools
//! (following pages and `notifications/tools/list_changed`), call them with a time limit, send
//! `notifications/cancelled` for a call the Live API cancels, answer the server's pings.
//! Everything a server sends is bounded in size.
//!
//! [`Hub`] keeps one link per server in a task of its own: connect, list, watch; a stdio
//! server that dies is restarted with back-off, and a server that is down keeps its last tool
//! list (a call then gets an error saying so). Each change bumps a generation the daemon
//! watches, so the next Live connection declares the new list.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{oneshot, watch, Notify};

use super::command::{tool_process, Group};
use super::http::{self, Url};
use super::schema;
use super::settings::{valid_name, McpServer, McpTransport};

/// The protocol revision asked for; the server answers with the one it speaks.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// One message from a server, at most; a longer line is read past and dropped.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// Tools kept from one server, at most.
pub const MAX_TOOLS: usize = 128;
/// Pages of `tools/list` followed, at most.
const MAX_PAGES: usize = 16;
/// A tool's description handed to the model, at most.
const MAX_DESCRIPTION_BYTES: usize = 4 << 10;
/// A call's result handed to the model, at most.
pub const MAX_RESULT_BYTES: usize = 16 << 10;
/// Restart back-off: first and longest wait.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A link that stayed up this long starts its back-off afresh.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// An HTTP server cannot tell us its list changed between calls: ask again this often.
const HTTP_RELIST: Duration = Duration::from_secs(600);

/// What went wrong talking to a server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    /// The server refused our credentials (HTTP 401/403).
    #[error("{0}")]
    Refused(String),
    /// It cannot be reached, or it died.
    #[error("{0}")]
    Down(String),
    /// It answered with a JSON-RPC error.
    #[error("{0}")]
    Rpc(String),
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// An HTTP server no longer knows our session (404): initialize again.
    #[error("the server ended the session")]
    SessionGone,
}

/// One tool as the model will see it.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    pub name: String,
    pub description: String,
    pub parameters: Option<Value>,
}

/// A server's tools, and what `gemlive tools` and the log say about them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    pub tools: Vec<McpTool>,
    pub notes: Vec<String>,
}

/// Converts `tools/list` entries; `server` names the server in notes.
pub fn convert_tools(server: &McpServer, raw: &[Value]) -> Listing {
    let mut out = Listing::default();
    for t in raw {
        let Some(name) = t.get("name").and_then(Value::as_str) else {
            out.notes.push("a tool without a name was left out".into());
            continue;
        };
        let shown = crate::service::outside(name, 80);
        if !server.offers(name) {
            continue;
        }
        if !valid_name(name) {
            out.notes.push(format!("`{shown}` was left out: Gemini does not take that name (letters, digits, `_`, `.`, `-`; at most 64)"));
            continue;
        }
        if out.tools.iter().any(|x| x.name == name) {
            continue;
        }
        if out.tools.len() >= MAX_TOOLS {
            out.notes.push(format!(
                "more than {MAX_TOOLS} tools: the rest were left out (use allow = [...])"
            ));
            break;
        }
        let mut description = t
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        if description.len() > MAX_DESCRIPTION_BYTES {
            let cut = description.floor_char_boundary(MAX_DESCRIPTION_BYTES);
            description.truncate(cut);
        }
        if description.is_empty() {
            description = t
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or(name)
                .to_string();
        }
        let parameters = match t.get("inputSchema") {
            None | Some(Value::Null) => None,
            Some(s) => match schema::to_gemini(s) {
                Some(c) => {
                    if !c.dropped.is_empty() {
                        out.notes.push(format!(
                            "`{shown}`: left out of its parameters (Gemini does not take them): {}",
                            c.dropped.join(", ")
                        ));
                    }
                    Some(c.schema)
                }
                None => {
                    out.notes.push(format!(
                        "`{shown}`: its input schema is not an object schema; it is offered without parameters"
                    ));
                    None
                }
            },
        };
        out.tools.push(McpTool {
            name: name.to_string(),
            description,
            parameters,
        });
    }
    out
}

/// A `tools/call` result as the model's `response` object: the structured result when there
/// is one, else the text; `isError` becomes `{"error": …}`. Cut to [`MAX_RESULT_BYTES`].
pub fn call_response(result: &Value) -> Value {
    let mut texts: Vec<String> = Vec::new();
    for c in result
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        match c.get("type").and_then(Value::as_str) {
            Some("text") => texts.push(c.get("text").and_then(Value::as_str).unwrap_or("").into()),
            Some(other) => texts.push(format!(
                "[{} content left out]",
                crate::service::outside(other, 40)
            )),
            None => {}
        }
    }
    let text = cut(&texts.join("\n"));
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let text = if text.is_empty() {
            "the tool failed".to_string()
        } else {
            text
        };
        return json!({ "error": text });
    }
    if let Some(s @ Value::Object(_)) = result.get("structuredContent") {
        if s.to_string().len() <= MAX_RESULT_BYTES {
            return s.clone();
        }
    }
    json!({ "output": text })
}

fn cut(s: &str) -> String {
    s[..s.floor_char_boundary(MAX_RESULT_BYTES.min(s.len()))].to_string()
}

type Pending = Mutex<HashMap<u64, oneshot::Sender<Result<Value, McpError>>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A stdio server's side of a connection.
struct Stdio {
    stdin: tokio::sync::Mutex<tokio::process::ChildStdin>,
    pending: Pending,
    /// The server's process group: killed when the connection goes.
    group: Mutex<Group>,
}

/// A Streamable HTTP server's side.
struct HttpWire {
    url: Url,
    /// The owner's headers and the Authorization.
    headers: Vec<(String, String)>,
    session: Mutex<Option<String>>,
    version: Mutex<String>,
    /// Where the token came from, for the error when it is refused.
    token_file: Option<std::path::PathBuf>,
}

enum Wire {
    Stdio(Stdio),
    Http(HttpWire),
}

/// One initialized connection to one server.
pub struct Conn {
    wire: Wire,
    server: String,
    next_id: AtomicU64,
    /// `notifications/tools/list_changed` arrived.
    changed: Notify,
    /// The stdio server exited, or the HTTP server ended the session.
    closed: watch::Sender<Option<String>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Wire::Stdio(s) = &self.wire {
            // Dropping the group kills it (unless the reader has reaped the server already).
            drop(std::mem::replace(&mut *lock(&s.group), Group(None)));
        }
    }
}

/// Sends `notifications/cancelled` if a request is given up (timeout, or the call's task was
/// aborted because the Live API cancelled it).
struct InFlight {
    conn: Arc<Conn>,
    id: u64,
    armed: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Wire::Stdio(s) = &self.conn.wire {
            lock(&s.pending).remove(&self.id);
        }
        let conn = self.conn.clone();
        let id = self.id;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let params = json!({"requestId": id, "reason": "cancelled by gemlive"});
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    conn.notify("notifications/cancelled", params),
                )
                .await;
            });
        }
    }
}

impl Conn {
    /// Starts a stdio server and initializes it.
    pub async fn stdio(
        server: &McpServer,
        argv: &[String],
        timeout: Duration,
    ) -> Result<(Arc<Conn>, Value), McpError> {
        let program = super::find_program(&argv[0]).map_err(McpError::Down)?;
        let mut child = tool_process(program, &argv[1..])
            .spawn()
            .map_err(|e| McpError::Down(format!("cannot start {}: {e}", argv[0])))?;
        let group = Group(child.id().map(|p| p as i32));
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(McpError::Down("no pipes to the server".into()));
        };
        let (closed, _) = watch::channel(None);
        let conn = Arc::new(Conn {
            wire: Wire::Stdio(Stdio {
                stdin: tokio::sync::Mutex::new(stdin),
                pending: Mutex::new(HashMap::new()),
                group: Mutex::new(group),
            }),
            server: server.name.clone(),
            next_id: AtomicU64::new(1),
            changed: Notify::new(),
            closed,
        });
        // The server's own log lines: kept at debug level, one line at a time, cut short. The
        // last one is kept: when a server dies, it usually says why there.
        let name = server.name.clone();
        let last_words = Arc::new(Mutex::new(String::new()));
        let kept = last_words.clone();
        let err_task = tokio::spawn(async move {
            let mut r = BufReader::new(stderr);
            let mut line = Vec::new();
            while let Ok(Some(_)) = read_line(&mut r, &mut line, 4 << 10).await {
                let text = String::from_utf8_lossy(&line);
                if !text.trim().is_empty() {
                    let shown = crate::service::outside(&text, 200);
                    log::debug!("MCP server `{name}`: {shown}");
                    *lock(&kept) = shown;
                }
            }
        });
        let weak = Arc::downgrade(&conn);
        tokio::spawn(async move {
            let mut r = BufReader::new(stdout);
            let mut line = Vec::new();
            let why = loop {
                match read_line(&mut r, &mut line, MAX_MESSAGE_BYTES).await {
                    Ok(Some(true)) => {
                        let Some(conn) = weak.upgrade() else { return };
                        match serde_json::from_slice::<Value>(&line) {
                            Ok(v) => conn.incoming(v).await,
                            Err(e) => log::debug!(
                                "MCP server `{}`: a line that is not JSON ({e}): {}",
                                conn.server,
                                crate::service::outside(&String::from_utf8_lossy(&line), 120)
                            ),
                        }
                    }
                    Ok(Some(false)) => {
                        if let Some(conn) = weak.upgrade() {
                            log::warn!(
                                "MCP server `{}`: a message longer than {MAX_MESSAGE_BYTES} bytes was dropped",
                                conn.server
                            );
                        }
                    }
                    Ok(None) => break "it closed its output".to_string(),
                    Err(e) => break format!("reading from it: {e}"),
                }
            };
            let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            let _ = tokio::time::timeout(Duration::from_millis(500), err_task).await;
            let why = match status {
                Ok(Ok(s)) => format!("it exited ({s})"),
                _ => why,
            };
            let said = lock(&last_words).clone();
            let why = if said.is_empty() {
                why
            } else {
                format!("{why}; its last words: {said}")
            };
            if let Some(conn) = weak.upgrade() {
                if let Wire::Stdio(s) = &conn.wire {
                    if matches!(status, Ok(Ok(_))) {
                        // Reaped: the pid may be reused, so the group must not be signalled.
                        lock(&s.group).0 = None;
                    }
                    for (_, tx) in lock(&s.pending).drain() {
                        let _ = tx.send(Err(McpError::Down(format!("the server stopped: {why}"))));
                    }
                }
                conn.closed.send_replace(Some(why));
            }
        });
        let info = conn.initialize(timeout).await?;
        Ok((conn, info))
    }

    /// Reaches a Streamable HTTP server and initializes a session.
    pub async fn http(
        server: &McpServer,
        url: &str,
        headers: &[(String, String)],
        token_file: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Result<(Arc<Conn>, Value), McpError> {
        let url = Url::parse(url).map_err(McpError::Down)?;
        let mut all = headers.to_vec();
        if let Some(p) = token_file {
            let token = http::read_token(p).map_err(McpError::Refused)?;
            crate::service::redact(&token);
            all.push(("Authorization".into(), format!("Bearer {token}")));
        }
        let (closed, _) = watch::channel(None);
        let conn = Arc::new(Conn {
            wire: Wire::Http(HttpWire {
                url,
                headers: all,
                session: Mutex::new(None),
                version: Mutex::new(PROTOCOL_VERSION.to_string()),
                token_file: token_file.map(|p| p.to_path_buf()),
            }),
            server: server.name.clone(),
            next_id: AtomicU64::new(1),
            changed: Notify::new(),
            closed,
        });
        let info = conn.initialize(timeout).await?;
        Ok((conn, info))
    }

    async fn initialize(self: &Arc<Self>, timeout: Duration) -> Result<Value, McpError> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "gemlive", "version": env!("CARGO_PKG_VERSION")}
        });
        let info = self.request("initialize", params, timeout).await?;
        if let (Wire::Http(h), Some(v)) = (
            &self.wire,
            info.get("protocolVersion").and_then(Value::as_str),
        ) {
            if v.len() <= 32 && v.bytes().all(|b| b.is_ascii_graphic()) {
                *lock(&h.version) = v.to_string();
            }
        }
        self.notify("notifications/initialized", json!({})).await?;
        Ok(info)
    }

    /// Waits until the server is gone; the reason.
    pub async fn closed(&self) -> String {
        let mut rx = self.closed.subscribe();
        let why = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_default(),
            Err(_) => "the connection was dropped".into(),
        };
        why
    }

    /// One request and its result.
    pub async fn request(
        self: &Arc<Self>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, McpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut flight = InFlight {
            conn: self.clone(),
            id,
            armed: method != "initialize",
        };
        let r = match tokio::time::timeout(timeout, self.exchange(id, &msg)).await {
            Ok(r) => r,
            Err(_) => return Err(McpError::Timeout(timeout)),
        };
        flight.armed = false;
        r
    }

    async fn exchange(&self, id: u64, msg: &Value) -> Result<Value, McpError> {
        match &self.wire {
            Wire::Stdio(s) => {
                let (tx, rx) = oneshot::channel();
                lock(&s.pending).insert(id, tx);
                if let Some(why) = self.closed.borrow().clone() {
                    lock(&s.pending).remove(&id);
                    return Err(McpError::Down(format!("the server stopped: {why}")));
                }
                if let Err(e) = self.write_line(s, msg).await {
                    lock(&s.pending).remove(&id);
                    // A server that died at start: say why it died, not that the pipe broke.
                    return Err(
                        match tokio::time::timeout(Duration::from_secs(3), self.closed()).await {
                            Ok(why) => McpError::Down(format!("the server stopped: {why}")),
                            Err(_) => e,
                        },
                    );
                }
                rx.await
                    .unwrap_or_else(|_| Err(McpError::Down("the server stopped".into())))
            }
            Wire::Http(h) => {
                let msgs = self.post(h, msg).await?;
                let mut answer = None;
                for m in msgs {
                    if m.get("id").and_then(Value::as_u64) == Some(id) && m.get("method").is_none()
                    {
                        answer = Some(result_of(&m));
                    } else {
                        Box::pin(self.incoming(m)).await;
                    }
                }
                answer.unwrap_or_else(|| {
                    Err(McpError::Down(
                        "the server's answer held no response to the request".into(),
                    ))
                })
            }
        }
    }

    /// A notification (no answer expected).
    pub async fn notify(&self, method: &str, params: Value) -> Result<(), McpError> {
        let msg = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.send_only(&msg).await
    }

    async fn send_only(&self, msg: &Value) -> Result<(), McpError> {
        match &self.wire {
            Wire::Stdio(s) => self.write_line(s, msg).await,
            Wire::Http(h) => self.post(h, msg).await.map(|_| ()),
        }
    }

    async fn write_line(&self, s: &Stdio, msg: &Value) -> Result<(), McpError> {
        let mut line = msg.to_string();
        line.push('\n');
        let mut w = s.stdin.lock().await;
        w.write_all(line.as_bytes())
            .await
            .map_err(|e| McpError::Down(format!("writing to the server: {e}")))?;
        w.flush()
            .await
            .map_err(|e| McpError::Down(format!("writing to the server: {e}")))
    }

    /// One POST; the JSON-RPC messages that came back (none for an accepted notification).
    async fn post(&self, h: &HttpWire, msg: &Value) -> Result<Vec<Value>, McpError> {
        let mut headers = h.headers.clone();
        headers.push((
            "Accept".into(),
            "application/json, text/event-stream".into(),
        ));
        headers.push(("Content-Type".into(), "application/json".into()));
        headers.push(("MCP-Protocol-Version".into(), lock(&h.version).clone()));
        let session = lock(&h.session).clone();
        if let Some(s) = &session {
            headers.push(("Mcp-Session-Id".into(), s.clone()));
        }
        let body = msg.to_string();
        let r = http::request("POST", &h.url, &headers, Some(body.as_bytes()))
            .await
            .map_err(McpError::Down)?;
        if let Some((_, s)) = r
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("mcp-session-id"))
        {
            if s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic()) {
                *lock(&h.session) = Some(s.clone());
            }
        }
        match r.status {
            200..=299 => {}
            401 | 403 => {
                let hint = match &h.token_file {
                    Some(p) => format!("check the token in {}", p.display()),
                    None => "it needs a token: set bearer_token_file".to_string(),
                };
                return Err(McpError::Refused(format!(
                    "the server refused the credentials (HTTP {}): {hint}",
                    r.status
                )));
            }
            404 if session.is_some() => {
                self.closed
                    .send_replace(Some("the server ended the session".into()));
                return Err(McpError::SessionGone);
            }
            s => {
                let text = String::from_utf8_lossy(&r.body);
                return Err(McpError::Down(format!(
                    "HTTP {s} from {}: {}",
                    h.url.host,
                    crate::service::outside(&text, 200)
                )));
            }
        }
        if r.truncated {
            return Err(McpError::Down(format!(
                "the server's answer is longer than {} bytes",
                http::MAX_RESPONSE_BYTES
            )));
        }
        let ct = r.content_type.to_ascii_lowercase();
        if ct.starts_with("text/event-stream") {
            return Ok(sse_messages(&r.body));
        }
        if r.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        match serde_json::from_slice::<Value>(&r.body) {
            Ok(Value::Array(a)) => Ok(a),
            Ok(v) => Ok(vec![v]),
            Err(e) => Err(McpError::Down(format!(
                "the server's answer is not JSON: {e}"
            ))),
        }
    }

    /// A message that is not the answer we wait for: another answer (stdio), a server
    /// request, or a notification.
    async fn incoming(&self, m: Value) {
        let method = m.get("method").and_then(Value::as_str);
        let id = m.get("id").cloned();
        match (method, id) {
            (None, Some(id)) => {
                if let (Wire::Stdio(s), Some(n)) = (&self.wire, id.as_u64()) {
                    if let Some(tx) = lock(&s.pending).remove(&n) {
                        let _ = tx.send(result_of(&m));
                    }
                }
            }
            (Some(method), Some(id)) => {
                // We offer no client capabilities: only ping is answered.
                let reply = if method == "ping" {
                    json!({"jsonrpc": "2.0", "id": id, "result": {}})
                } else {
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "not supported by gemlive"}})
                };
                let _ = self.send_only(&reply).await;
            }
            (Some("notifications/tools/list_changed"), None) => self.changed.notify_one(),
            _ => {}
        }
    }
}

/// The result of an answer, or its error as text.
fn result_of(m: &Value) -> Result<Value, McpError> {
    if let Some(e) = m.get("error") {
        let msg = e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("an error");
        let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
        return Err(McpError::Rpc(format!(
            "{} (code {code})",
            crate::service::outside(msg, 400)
        )));
    }
    Ok(m.get("result").cloned().unwrap_or(Value::Null))
}

/// The JSON messages in a server-sent-event body: each event's `data:` lines joined.
pub fn sse_messages(body: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    let mut data = String::new();
    let mut flush = |data: &mut String| {
        if !data.is_empty() {
            match serde_json::from_str::<Value>(data) {
                Ok(Value::Array(a)) => out.extend(a),
                Ok(v) => out.push(v),
                Err(_) => {}
            }
            data.clear();
        }
    };
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            flush(&mut data);
        } else if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    flush(&mut data);
    out
}

/// Reads one `\n`-terminated line into `buf` (without the newline), keeping at most `max`
/// bytes: `Some(true)` a line, `Some(false)` a line that was too long (read past, dropped),
/// `None` at the end.
async fn read_line(
    r: &mut (impl AsyncBufRead + Unpin),
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok((!buf.is_empty() || too_long).then_some(!too_long));
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let part = &chunk[..if done { take - 1 } else { take }];
        if !too_long && buf.len() + part.len() <= max {
            buf.extend_from_slice(part);
        } else {
            too_long = true;
            buf.clear();
        }
        r.consume(take);
        if done {
            return Ok(Some(!too_long));
        }
    }
}

/// How long `server` gets to start and list its tools: its `timeout_s`, but never less than
/// 10 s, since starting an interpreter (Python, node) on a Pi takes seconds.
pub fn start_limit(server: &McpServer) -> Duration {
    server.timeout.max(Duration::from_secs(10))
}

/// Initializes a connection to `server` (starting it, for a stdio server) and lists its tools.
pub async fn connect(server: &McpServer) -> Result<(Arc<Conn>, Listing), McpError> {
    let limit = start_limit(server);
    let work = async {
        let (conn, _info) = match &server.transport {
            McpTransport::Stdio(argv) => Conn::stdio(server, argv, limit).await?,
            McpTransport::Http {
                url,
                headers,
                bearer_token_file,
            } => Conn::http(server, url, headers, bearer_token_file.as_deref(), limit).await?,
        };
        let listing = list(&conn, server, limit).await?;
        Ok((conn, listing))
    };
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or(Err(McpError::Timeout(limit)))
}

/// `tools/list`, every page.
pub async fn list(
    conn: &Arc<Conn>,
    server: &McpServer,
    timeout: Duration,
) -> Result<Listing, McpError> {
    let mut raw: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let r = conn.request("tools/list", params, timeout).await?;
        if let Some(t) = r.get("tools").and_then(Value::as_array) {
            raw.extend(t.iter().take(4 * MAX_TOOLS).cloned());
        }
        cursor = r
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        if cursor.is_none() || raw.len() >= 4 * MAX_TOOLS {
            break;
        }
    }
    Ok(convert_tools(server, &raw))
}

/// One server's link, as the hub keeps it.
pub struct Link {
    pub server: McpServer,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    conn: Option<Arc<Conn>>,
    listing: Listing,
    /// Why the last attempt failed (cleared once it works).
    error: Option<String>,
    /// The first attempt has finished, one way or the other.
    tried: bool,
}

impl Link {
    /// Calls `tool` and returns the model's `response` object.
    pub async fn call(&self, tool: &str, args: Map<String, Value>) -> Value {
        let (conn, error) = {
            let s = lock(&self.state);
            (s.conn.clone(), s.error.clone())
        };
        let name = &self.server.name;
        let Some(conn) = conn else {
            let why = error.map(|e| format!(": {e}")).unwrap_or_default();
            return json!({"error": format!("the MCP server `{name}` is not running{why}; try again later")});
        };
        let params = json!({"name": tool, "arguments": args});
        match conn
            .request("tools/call", params, self.server.timeout)
            .await
        {
            Ok(result) => call_response(&result),
            Err(McpError::Timeout(d)) => json!({"error": format!(
                "the MCP server `{name}` did not answer within {} s; the call was cancelled",
                d.as_secs()
            )}),
            Err(e) => json!({"error": format!("MCP server `{name}`: {e}")}),
        }
    }

    fn set(&self, f: impl FnOnce(&mut LinkState)) {
        f(&mut lock(&self.state));
    }
}

/// Every MCP server's link.
pub struct Hub {
    links: Vec<Arc<Link>>,
    /// Tool names offered by gemlive itself: an MCP tool with one of them is left out.
    taken: Vec<String>,
    generation: Arc<watch::Sender<u64>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A tool as the hub offers it: its server's link (which also says whether it is non-blocking) and its declaration.
pub struct Offered {
    pub link: Arc<Link>,
    pub tool: McpTool,
}

impl Hub {
    /// Starts a task per server (inside a Tokio runtime). `taken`: the other tools' names.
    pub fn start(servers: &[McpServer], taken: Vec<String>) -> Arc<Hub> {
        let (tx, _) = watch::channel(0u64);
        let generation = Arc::new(tx);
        let links: Vec<Arc<Link>> = servers
            .iter()
            .map(|s| {
                Arc::new(Link {
                    server: s.clone(),
                    state: Mutex::new(LinkState::default()),
                })
            })
            .collect();
        let tasks = links
            .iter()
            .map(|l| tokio::spawn(keep(l.clone(), generation.clone())).abort_handle())
            .collect();
        Arc::new(Hub {
            links,
            taken,
            generation,
            tasks,
        })
    }

    /// Bumped whenever a server's tool list or state changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Every server has been tried once.
    pub fn settled(&self) -> bool {
        self.links.iter().all(|l| lock(&l.state).tried)
    }

    /// Waits until every server has been tried once (or `limit` passed).
    pub async fn wait_settled(&self, limit: Duration) {
        let mut rx = self.subscribe();
        let _ = tokio::time::timeout(limit, async {
            while !self.settled() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }

    /// The tools offered, in server order; a name already taken (by gemlive's own tools or an
    /// earlier server) is left out.
    pub fn offered(&self) -> Vec<Offered> {
        self.resolve().0
    }

    /// The link that offers `tool`.
    pub fn find(&self, tool: &str) -> Option<Arc<Link>> {
        self.offered()
            .into_iter()
            .find(|o| o.tool.name == tool)
            .map(|o| o.link)
    }

    /// Per server: its name, whether it is up, the last error, and notes (tools left out,
    /// schema parts dropped, names taken).
    pub fn report(&self) -> Vec<(String, bool, Option<String>, Vec<String>)> {
        let (_, clashes) = self.resolve();
        self.links
            .iter()
            .zip(clashes)
            .map(|(l, clash)| {
                let s = lock(&l.state);
                let mut notes = s.listing.notes.clone();
                notes.extend(clash);
                (
                    l.server.name.clone(),
                    s.conn.is_some(),
                    s.error.clone(),
                    notes,
                )
            })
            .collect()
    }

    /// The one rule for name clashes, in server order: the tools offered, and per server a
    /// note for each of its tools left out because the name was already taken.
    fn resolve(&self) -> (Vec<Offered>, Vec<Vec<String>>) {
        let mut names: Vec<String> = self.taken.clone();
        let mut out = Vec::new();
        let mut clashes = Vec::new();
        for l in &self.links {
            let tools = lock(&l.state).listing.tools.clone();
            let mut notes = Vec::new();
            for t in tools {
                if names.contains(&t.name) {
                    notes.push(format!(
                        "`{}` was left out: another tool has that name",
                        t.name
                    ));
                    continue;
                }
                names.push(t.name.clone());
                out.push(Offered {
                    link: l.clone(),
                    tool: t,
                });
            }
            clashes.push(notes);
        }
        (out, clashes)
    }
}

/// One server's link, kept up for as long as the hub lives.
async fn keep(link: Arc<Link>, generation: Arc<watch::Sender<u64>>) {
    let bump = || generation.send_modify(|g| *g += 1);
    let name = link.server.name.clone();
    let http = matches!(link.server.transport, McpTransport::Http { .. });
    let mut backoff = BACKOFF_FIRST;
    let mut failures = 0u32;
    loop {
        let started = tokio::time::Instant::now();
        match connect(&link.server).await {
            Ok((conn, listing)) => {
                failures = 0;
                log_listing(&name, &listing, "ready");
                link.set(|s| {
                    s.conn = Some(conn.clone());
                    s.listing = listing;
                    s.error = None;
                    s.tried = true;
                });
                bump();
                let why = loop {
                    tokio::select! {
                        why = conn.closed() => break why,
                        _ = conn.changed.notified() => {}
                        _ = tokio::time::sleep(HTTP_RELIST), if http => {}
                    }
                    match list(&conn, &link.server, link.server.timeout).await {
                        Ok(l) => {
                            let changed = lock(&link.state).listing != l;
                            if changed {
                                log_listing(&name, &l, "tool list changed");
                                link.set(|s| s.listing = l);
                                bump();
                            }
                        }
                        Err(McpError::Timeout(_)) => {
                            log::warn!("MCP server `{name}` did not list its tools in time; keeping the last list");
                        }
                        Err(e) => break e.to_string(),
                    }
                };
                link.set(|s| s.conn = None);
                bump();
                if started.elapsed() >= STABLE_AFTER {
                    backoff = BACKOFF_FIRST;
                }
                log::warn!(
                    "MCP server `{name}` stopped ({}); starting it again in {} s",
                    crate::service::outside(&why, 200),
                    backoff.as_secs()
                );
            }
            Err(e) => {
                failures += 1;
                let text = e.to_string();
                let msg = format!(
                    "MCP server `{name}`: {}; its tools are not offered; trying again in {} s",
                    crate::service::outside(&text, 300),
                    backoff.as_secs()
                );
                // The first failure is an error the owner must see; the retries are warnings.
                if failures == 1 {
                    log::error!("{msg}");
                } else {
                    log::warn!("{msg}");
                }
                link.set(|s| {
                    s.error = Some(text);
                    s.tried = true;
                });
                bump();
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn log_listing(name: &str, l: &Listing, what: &str) {
    let names: Vec<&str> = l.tools.iter().map(|t| t.name.as_str()).collect();
    log::info!(
        "MCP server `{name}` {what}: {} tool{} ({})",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        crate::service::outside(&names.join(", "), 400)
    );
    for n in &l.notes {
        log::info!("MCP server `{name}`: {}", crate::service::outside(n, 300));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(allow: &[&str], deny: &[&str]) -> McpServer {
        McpServer {
            name: "s".into(),
            transport: McpTransport::Stdio(vec!["x".into()]),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(5),
            non_blocking: false,
        }
    }

    #[test]
    fn tools_are_converted_filtered_and_noted() {
        let raw = vec![
            json!({"name": "get_time", "description": "Time.", "inputSchema": {"type": "object", "properties": {"tz": {"type": "string", "title": "Tz"}}, "required": ["tz"], "additionalProperties": false}}),
            json!({"name": "bad name!", "description": "x", "inputSchema": {"type": "object"}}),
            json!({"name": "secret", "description": "x"}),
            json!({"name": "no_desc", "title": "No description", "inputSchema": {"type": "object", "properties": {}}}),
            json!({"description": "nameless"}),
        ];
        let l = convert_tools(&server(&[], &["secret"]), &raw);
        let names: Vec<&str> = l.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["get_time", "no_desc"]);
        let p = l.tools[0].parameters.as_ref().unwrap();
        assert_eq!(p["properties"]["tz"]["type"], "STRING");
        assert_eq!(p["required"], json!(["tz"]));
        assert_eq!(l.tools[1].description, "No description");
        let notes = l.notes.join("\n");
        assert!(notes.contains("`bad name!` was left out"), "{notes}");
        assert!(notes.contains("without a name"), "{notes}");
        assert!(notes.contains("additionalProperties"), "{notes}");
        let only = convert_tools(&server(&["no_desc"], &[]), &raw);
        assert_eq!(only.tools.len(), 1);
    }

    #[test]
    fn results_become_responses() {
        assert_eq!(
            call_response(
                &json!({"content": [{"type": "text", "text": "12:00"}], "isError": false})
            ),
            json!({"output": "12:00"})
        );
        assert_eq!(
            call_response(
                &json!({"content": [{"type": "text", "text": "{}"}], "structuredContent": {"t": "12:00"}})
            ),
            json!({"t": "12:00"})
        );
        assert_eq!(
            call_response(
                &json!({"content": [{"type": "text", "text": "Invalid timezone"}], "isError": true})
            ),
            json!({"error": "Invalid timezone"})
        );
        assert_eq!(
            call_response(&json!({"content": [{"type": "image", "data": "…"}]})),
            json!({"output": "[image content left out]"})
        );
        let big = "x".repeat(100_000);
        let r = call_response(&json!({"content": [{"type": "text", "text": big}]}));
        assert_eq!(r["output"].as_str().unwrap().len(), MAX_RESULT_BYTES);
    }

    #[test]
    fn sse_bodies_are_split_into_messages() {
        let body = b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\r\n\r\nid: 7\ndata: {\"jsonrpc\":\"2.0\",\ndata: \"id\":1,\"result\":{}}\n\n: comment\ndata: not json\n\n";
        let m = sse_messages(body);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1]["id"], 1);
    }

    #[tokio::test]
    async fn long_lines_are_dropped_not_kept() {
        let data = format!("{}\nshort\n{}", "a".repeat(100), "tail-without-newline");
        let mut r = BufReader::with_capacity(16, data.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf, 50).await.unwrap(), Some(false));
        assert!(buf.is_empty());
        assert_eq!(read_line(&mut r, &mut buf, 50).await.unwrap(), Some(true));
        assert_eq!(buf, b"short");
        assert_eq!(read_line(&mut r, &mut buf, 50).await.unwrap(), Some(true));
        assert_eq!(buf, b"tail-without-newline");
        assert_eq!(read_line(&mut r, &mut buf, 50).await.unwrap(), None);
    }

    #[test]
    fn errors_carry_the_servers_message() {
        let e = result_of(
            &json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "Unknown tool: x"}}),
        );
        assert_eq!(
            e,
            Err(McpError::Rpc("Unknown tool: x (code -32602)".into()))
        );
    }
}
