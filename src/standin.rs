//! A Live API stand-in on 127.0.0.1: the far end for `gemlive demo` and for the tests.
//!
//! It speaks the wire protocol the way the real service does (JSON in binary frames,
//! pretty-printed), records every client frame, and leaves the script to its caller:
//! tests drive it frame by frame; `echo` is the scripted partner of the demo, which answers
//! each user turn by speaking back what it heard.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The path the real endpoint uses; the stand-in accepts any.
pub const PATH: &str =
    "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent";

pub struct StandIn {
    listener: TcpListener,
    addr: SocketAddr,
}

impl StandIn {
    pub async fn bind() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(StandIn { listener, addr })
    }

    pub fn url(&self) -> String {
        format!("ws://{}{PATH}", self.addr)
    }

    /// Accepts one client connection and completes the WebSocket upgrade.
    pub async fn accept(&self) -> std::io::Result<Conn> {
        let (tcp, _) = self.listener.accept().await?;
        let seen: Arc<Mutex<Upgrade>> = Arc::default();
        let k = seen.clone();
        // The callback's error type is fixed by tungstenite; we never return one.
        #[allow(clippy::result_large_err)]
        let ws = tokio_tungstenite::accept_hdr_async(tcp, move |req: &Request, resp: Response| {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            if let Ok(mut g) = k.lock() {
                *g = Upgrade {
                    api_key: header("x-goog-api-key"),
                    authorization: header("authorization"),
                    uri: req.uri().to_string(),
                };
            }
            Ok(resp)
        })
        .await
        .map_err(std::io::Error::other)?;
        let up = seen.lock().map(|g| g.clone()).unwrap_or_default();
        Ok(Conn {
            ws,
            api_key: up.api_key,
            authorization: up.authorization,
            uri: up.uri,
        })
    }
}

/// What the client sent.
#[derive(Debug, Clone, PartialEq)]
pub enum FromClient {
    Json(Value),
    /// A frame that is not JSON (a client bug: the test should fail on it).
    NotJson(String),
    Closed {
        code: u16,
        reason: String,
    },
}

#[derive(Debug, Clone, Default)]
struct Upgrade {
    api_key: Option<String>,
    authorization: Option<String>,
    uri: String,
}

pub struct Conn {
    ws: WebSocketStream<TcpStream>,
    /// The `x-goog-api-key` header of the upgrade request.
    pub api_key: Option<String>,
    /// The `Authorization` header of the upgrade request (an ephemeral token).
    pub authorization: Option<String>,
    /// The request target: path and query.
    pub uri: String,
}

impl Conn {
    /// The next client message; `None` when the connection is gone without a close frame.
    pub async fn recv(&mut self) -> Option<FromClient> {
        loop {
            let msg = self.ws.next().await?.ok()?;
            return Some(match msg {
                Message::Text(t) => match serde_json::from_str(t.as_str()) {
                    Ok(v) => FromClient::Json(v),
                    Err(_) => FromClient::NotJson(t.to_string()),
                },
                Message::Binary(b) => match serde_json::from_slice(&b) {
                    Ok(v) => FromClient::Json(v),
                    Err(_) => FromClient::NotJson(String::from_utf8_lossy(&b).into_owned()),
                },
                Message::Close(c) => FromClient::Closed {
                    code: c.as_ref().map(|c| u16::from(c.code)).unwrap_or(1005),
                    reason: c.map(|c| c.reason.to_string()).unwrap_or_default(),
                },
                _ => continue,
            });
        }
    }

    /// Sends a server message as the real service does: pretty-printed JSON in a binary frame.
    pub async fn send(&mut self, v: &Value) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let mut bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
        bytes.push(b'\n');
        self.ws.send(Message::binary(bytes)).await
    }

    /// Sends raw bytes in a frame (malformed-frame tests).
    pub async fn send_raw(
        &mut self,
        bytes: &[u8],
        binary: bool,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let m = if binary {
            Message::binary(bytes.to_vec())
        } else {
            Message::text(String::from_utf8_lossy(bytes).into_owned())
        };
        self.ws.send(m).await
    }

    /// Closes from the server side with a code and reason.
    pub async fn close(&mut self, code: u16, reason: &str) {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        let _ = self
            .ws
            .close(Some(CloseFrame {
                code: code.into(),
                reason: reason.to_string().into(),
            }))
            .await;
    }
}

/// `realtimeInput.audio` payload of a client message, decoded; `None` for other messages.
pub fn client_audio(v: &Value) -> Option<Vec<u8>> {
    let a = v.get("realtimeInput")?.get("audio")?;
    base64::engine::general_purpose::STANDARD
        .decode(a.get("data")?.as_str()?)
        .ok()
}

/// `realtimeInput.video` payload (a JPEG), decoded; `None` for other messages.
pub fn client_video(v: &Value) -> Option<Vec<u8>> {
    let a = v.get("realtimeInput")?.get("video")?;
    base64::engine::general_purpose::STANDARD
        .decode(a.get("data")?.as_str()?)
        .ok()
}

/// A server message carrying one chunk of 24 kHz reply audio.
pub fn server_audio(pcm: &[u8]) -> Value {
    json!({"serverContent": {"modelTurn": {"parts": [{"inlineData": {
        "mimeType": "audio/pcm;rate=24000",
        "data": base64::engine::general_purpose::STANDARD.encode(pcm)
    }}]}}})
}

pub fn setup_complete() -> Value {
    json!({"setupComplete": {}})
}

pub fn server_content(key: &str) -> Value {
    json!({"serverContent": {key: true}})
}

// ---------------------------------------------------------------------------------------------
// The demo's partner: energy VAD on the incoming audio, echo the turn back at 24 kHz.

/// Tunables of the echo partner.
#[derive(Debug, Clone)]
pub struct EchoOptions {
    /// Stop after answering this many turns.
    pub turns: usize,
    /// Silence that ends a user turn.
    pub end_silence_ms: u32,
    /// RMS above which a 20 ms frame counts as speech.
    pub speech_rms: f64,
}

impl Default for EchoOptions {
    fn default() -> Self {
        EchoOptions {
            turns: 3,
            end_silence_ms: 500,
            speech_rms: 300.0,
        }
    }
}

/// What the echo partner saw and did; the demo checks it against the devices.
#[derive(Debug, Default, Clone)]
pub struct EchoReport {
    pub setup: Option<Value>,
    pub api_key_header: bool,
    pub mic: Vec<u8>,
    pub mic_chunks: usize,
    /// Reply audio sent per turn (24 kHz), before any interruption cut it.
    pub replies: Vec<Vec<u8>>,
    /// For each reply: how many of its bytes went out before `interrupted` (all if none).
    pub sent_before_interrupt: Vec<usize>,
    /// Bytes sent *after* `interrupted` for the cancelled turn (must never be played).
    pub late_bytes: Vec<u8>,
    pub interruptions: usize,
    pub close_code: Option<u16>,
    /// Camera frames received: width, height, bytes.
    pub video: Vec<(u32, u32, usize)>,
}

/// 16 kHz → 24 kHz by linear interpolation: the echo should sound like what was said.
pub fn upsample_16k_to_24k(pcm16k: &[u8]) -> Vec<u8> {
    let s: Vec<i16> = pcm16k
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let n_out = s.len() * 3 / 2;
    let mut out = Vec::with_capacity(n_out * 2);
    for i in 0..n_out {
        let pos = i as f64 * 2.0 / 3.0;
        let j = pos as usize;
        let f = pos - j as f64;
        let a = s.get(j).copied().unwrap_or(0) as f64;
        let b = s.get(j + 1).copied().unwrap_or(a as i16) as f64;
        out.extend_from_slice(&((a + (b - a) * f).round() as i16).to_le_bytes());
    }
    out
}

/// 200 ms of 24 kHz audio per reply message, like the real service.
const REPLY_CHUNK_BYTES: usize = 24_000 * 2 / 5;

/// Plays the demo's far end on one connection: answers `setup`, then echoes each user turn.
/// A user who starts speaking while a reply is still being sent interrupts it: `interrupted`,
/// one late chunk of the cancelled reply (as a real network would deliver), `turnComplete`.
/// `say` receives one line per notable event.
pub async fn echo(conn: &mut Conn, opts: EchoOptions, say: impl Fn(String)) -> EchoReport {
    let mut rep = EchoReport {
        api_key_header: conn.api_key.is_some(),
        ..Default::default()
    };
    const FRAME: usize = 16_000 * 2 / 50; // 20 ms at 16 kHz
    let mut pending = Vec::<u8>::new(); // partial VAD frame
    let mut turn = Vec::<u8>::new();
    let mut in_speech = false;
    let mut speech_frames = 0u32;
    let mut silence_ms = 0u32;
    let mut reply: VecDeque<Vec<u8>> = VecDeque::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            msg = conn.recv() => {
                let Some(msg) = msg else { break };
                let v = match msg {
                    FromClient::Json(v) => v,
                    FromClient::NotJson(t) => { say(format!("client sent a non-JSON frame: {t:.60}")); continue }
                    FromClient::Closed { code, reason } => {
                        say(format!("client closed the session: code {code} {reason}"));
                        rep.close_code = Some(code);
                        break;
                    }
                };
                if let Some(s) = v.get("setup") {
                    say(format!(
                        "setup received: {} (voice {}, modalities {})",
                        s["model"].as_str().unwrap_or("?"),
                        s["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"].as_str().unwrap_or("?"),
                        s["generationConfig"]["responseModalities"],
                    ));
                    rep.setup = Some(v.clone());
                    if conn.send(&setup_complete()).await.is_err() { break }
                    continue;
                }
                if let Some(jpeg) = client_video(&v) {
                    let (w, h) = crate::video::jpeg::jpeg_size(&jpeg).unwrap_or((0, 0));
                    rep.video.push((w, h, jpeg.len()));
                    say(format!("camera frame {}: {w}x{h} JPEG, {} bytes", rep.video.len(), jpeg.len()));
                    continue;
                }
                let Some(pcm) = client_audio(&v) else { continue };
                rep.mic.extend_from_slice(&pcm);
                rep.mic_chunks += 1;
                pending.extend_from_slice(&pcm);
                while pending.len() >= FRAME {
                    let frame: Vec<u8> = pending.drain(..FRAME).collect();
                    let loud = crate::audio::rms_s16le(&frame) > opts.speech_rms;
                    if loud {
                        speech_frames += 1;
                        silence_ms = 0;
                        if !in_speech && speech_frames >= 2 {
                            in_speech = true;
                            if !reply.is_empty() {
                                // Barge-in: cut the reply, as the real service does.
                                let idx = rep.replies.len() - 1;
                                let total = rep.replies[idx].len();
                                let unsent: usize = reply.iter().map(Vec::len).sum();
                                rep.sent_before_interrupt[idx] = total - unsent;
                                rep.interruptions += 1;
                                say(format!("user spoke over reply {} after {:.2} s of it: sending interrupted", idx + 1, (total - unsent) as f64 / 48_000.0));
                                if conn.send(&server_content("interrupted")).await.is_err() { break }
                                if let Some(late) = reply.pop_front() {
                                    say(format!("a late chunk of the cancelled reply ({} bytes) is still in flight", late.len()));
                                    rep.late_bytes.extend_from_slice(&late);
                                    if conn.send(&server_audio(&late)).await.is_err() { break }
                                }
                                reply.clear();
                                if conn.send(&server_content("turnComplete")).await.is_err() { break }
                            }
                        }
                    } else {
                        speech_frames = 0;
                        silence_ms += 20;
                    }
                    if in_speech {
                        turn.extend_from_slice(&frame);
                        if silence_ms >= opts.end_silence_ms {
                            in_speech = false;
                            let speech = &turn[..turn.len() - (silence_ms as usize / 20) * FRAME];
                            let echo = upsample_16k_to_24k(speech);
                            say(format!(
                                "user turn {} ended: {:.2} s of speech; replying with the echo ({} bytes at 24 kHz)",
                                rep.replies.len() + 1,
                                speech.len() as f64 / 32_000.0,
                                echo.len()
                            ));
                            let text = format!("({:.1} s of speech)", speech.len() as f64 / 32_000.0);
                            if conn.send(&json!({"serverContent": {"inputTranscription": {"text": text}}})).await.is_err() { break }
                            reply.extend(echo.chunks(REPLY_CHUNK_BYTES).map(<[u8]>::to_vec));
                            rep.sent_before_interrupt.push(echo.len());
                            rep.replies.push(echo);
                            turn.clear();
                        }
                    }
                }
            }
            _ = tick.tick(), if !reply.is_empty() => {
                if let Some(chunk) = reply.pop_front() {
                    if conn.send(&server_audio(&chunk)).await.is_err() { break }
                }
                if reply.is_empty() {
                    let done = [
                        json!({"serverContent": {"outputTranscription": {"text": "(echo)"}}}),
                        server_content("generationComplete"),
                        json!({"serverContent": {"turnComplete": true}, "usageMetadata": {"promptTokenCount": 25, "responseTokenCount": 25, "totalTokenCount": 50}}),
                    ];
                    for m in &done {
                        if conn.send(m).await.is_err() { break }
                    }
                    say(format!("reply {} sent in full", rep.replies.len()));
                }
            }
        }
        if rep.replies.len() >= opts.turns && reply.is_empty() {
            say(format!("{} turns answered", rep.replies.len()));
            break;
        }
    }
    rep
}

/// Reads until the client closes (or goes away); returns the close code, if any.
pub async fn wait_close(conn: &mut Conn, rep: &mut EchoReport) {
    while let Some(m) = conn.recv().await {
        match m {
            FromClient::Closed { code, .. } => {
                rep.close_code = Some(code);
                return;
            }
            FromClient::Json(v) => {
                if let Some(pcm) = client_audio(&v) {
                    rep.mic.extend_from_slice(&pcm);
                    rep.mic_chunks += 1;
                }
            }
            FromClient::NotJson(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsample_keeps_length_ratio_and_shape() {
        let pcm: Vec<u8> = [0i16, 300, 600, 900]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let out = upsample_16k_to_24k(&pcm);
        let s: Vec<i16> = out
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(s, vec![0, 200, 400, 600, 800, 900]);
    }
}
