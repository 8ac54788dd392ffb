//! Session start-up and frame decoding: connect, send `setup` first, wait for `setupComplete`
//! with a timeout, and turn WebSocket frames into typed server messages. Close codes are
//! classified here so the daemon can decide what to do (and say it in plain words).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::policy::{classify_close, Failure};
use super::proto::{ServerEvent, ServerMessage};
use super::transport::{self, ConnectError, Endpoint, LiveSocket};
use crate::live::Credential;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("WebSocket error")]
    Socket(#[source] tokio_tungstenite::tungstenite::Error),
    #[error("server closed the connection: {}", describe_close(*.code, .reason))]
    Closed { code: u16, reason: String },
    #[error("no setupComplete within {0:?}")]
    SetupTimeout(Duration),
    /// The token source failed (the message says why, never the token).
    #[error("no token: {0}")]
    Credentials(String),
}

impl SessionError {
    /// What kind of failure this is, for the retry policy.
    pub fn failure(&self) -> Failure {
        match self {
            SessionError::Closed { code, reason } => classify_close(*code, reason),
            SessionError::Connect(ConnectError::Rejected { status: 429, .. }) => Failure::Quota,
            SessionError::Connect(ConnectError::Rejected { status, .. }) => {
                if matches!(status, 400 | 401 | 403 | 404) {
                    Failure::Config
                } else {
                    Failure::Transient
                }
            }
            SessionError::Connect(ConnectError::Endpoint(_) | ConnectError::BadKey) => {
                Failure::Config
            }
            _ => Failure::Transient,
        }
    }
}

/// The close code and reason, with a hint for the ones users actually meet (`docs/protocol.md`,
/// "Close codes").
pub fn describe_close(code: u16, reason: &str) -> String {
    let hint = match code {
        1000 => "normal close",
        1007 if reason.contains("location") => "the API is not available from this location",
        1007 if reason.contains("non-audio") => "the model only answers with audio",
        1007 => "the server refused the setup: check model, voice and [live] settings",
        1008 if reason.contains("not found") => "unknown model: check `model` in [live]",
        1008 => "policy: the request or the connection's lifetime was refused",
        1011 if reason.contains("quota") => "quota exhausted or too many concurrent sessions",
        1011 => "server-side error; retrying usually helps",
        1006 => "connection dropped without a close frame",
        _ => "",
    };
    // A close reason is the server's text: escaped and short, like everything from outside.
    let reason = if reason.is_empty() {
        "(no reason)".to_string()
    } else {
        crate::service::outside(reason, 200)
    };
    if hint.is_empty() {
        format!("code {code}, {reason}")
    } else {
        format!("code {code}, {reason} ({hint})")
    }
}

/// What one received WebSocket frame turned out to be.
#[derive(Debug)]
pub enum Frame {
    /// Boxed: a parsed message is large and most frames are audio passing straight through.
    Server(Box<ServerMessage>),
    /// Not a valid server message: log and skip, never fatal.
    Malformed(String),
    Closed {
        code: u16,
        reason: String,
    },
    /// Ping/pong and other control frames (tungstenite answers pings itself).
    Control,
}

/// Decodes one frame. Messages over `max_bytes` are skipped: the size limit the transport
/// enforces is far higher, so that one oversized message cannot end the session.
pub fn decode(msg: Message, max_bytes: usize) -> Frame {
    let bytes: &[u8] = match &msg {
        // The server sends JSON in binary frames, but text frames are accepted too.
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        Message::Close(c) => {
            return match c {
                Some(CloseFrame { code, reason }) => Frame::Closed {
                    code: u16::from(*code),
                    reason: reason.to_string(),
                },
                None => Frame::Closed {
                    code: 1005,
                    reason: String::new(),
                },
            }
        }
        _ => return Frame::Control,
    };
    if bytes.len() > max_bytes {
        return Frame::Malformed(format!(
            "{} bytes, over the {} KiB limit (max_message_kb)",
            bytes.len(),
            max_bytes / 1024
        ));
    }
    match ServerMessage::parse(bytes) {
        Ok(m) => Frame::Server(Box::new(m)),
        Err(e) => Frame::Malformed(e.to_string()),
    }
}

/// Connects, sends `setup`, and waits for `setupComplete`. Server messages that arrive before
/// it are not expected; they are logged and skipped.
pub async fn open(
    endpoint: &Endpoint,
    cred: &Credential,
    setup: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<(LiveSocket, Option<String>), SessionError> {
    let mut ws = tokio::time::timeout(timeout, transport::connect(endpoint, cred))
        .await
        .map_err(|_| SessionError::SetupTimeout(timeout))??;
    ws.send(Message::text(setup))
        .await
        .map_err(SessionError::Socket)?;
    let wait = async {
        loop {
            let Some(msg) = ws.next().await else {
                return Err(SessionError::Closed {
                    code: 1006,
                    reason: String::new(),
                });
            };
            match decode(msg.map_err(SessionError::Socket)?, max_bytes) {
                Frame::Server(m) => {
                    for ev in m.into_events() {
                        if let ServerEvent::SetupComplete { session_id } = ev {
                            return Ok(session_id);
                        }
                        // The kind only: an audio part would print as thousands of numbers.
                        log::warn!(
                            "ignoring a server message before setupComplete: {}",
                            ev.kind()
                        );
                    }
                }
                Frame::Malformed(e) => log::warn!(
                    "skipping a malformed server frame: {}",
                    crate::service::outside(&e, 400)
                ),
                Frame::Closed { code, reason } => {
                    return Err(SessionError::Closed { code, reason })
                }
                Frame::Control => {}
            }
        }
    };
    let session_id = tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| SessionError::SetupTimeout(timeout))??;
    Ok((ws, session_id))
}

/// Ends the session politely: close code 1000.
pub async fn close(ws: &mut LiveSocket) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "client shutting down".into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_descriptions() {
        assert!(
            describe_close(1008, "models/x is not found for API version v1beta")
                .contains("unknown model")
        );
        assert!(describe_close(1011, "You exceeded your current quota").contains("quota"));
        assert_eq!(describe_close(4000, ""), "code 4000, (no reason)");
    }

    #[test]
    fn failures_are_classified() {
        let e = SessionError::Closed {
            code: 1007,
            reason: "Request contains an invalid argument.".into(),
        };
        assert_eq!(e.failure(), Failure::Config);
        let e = SessionError::Closed {
            code: 1011,
            reason: "Internal error encountered.".into(),
        };
        assert_eq!(e.failure(), Failure::Transient);
        let e = SessionError::Connect(ConnectError::Rejected {
            status: 429,
            detail: String::new(),
        });
        assert_eq!(e.failure(), Failure::Quota);
        assert_eq!(
            SessionError::SetupTimeout(Duration::from_secs(1)).failure(),
            Failure::Transient
        );
    }

    #[test]
    fn decode_close_and_malformed() {
        let big = usize::MAX;
        assert!(matches!(
            decode(Message::text("not json"), big),
            Frame::Malformed(_)
        ));
        assert!(matches!(
            decode(Message::Close(None), big),
            Frame::Closed { code: 1005, .. }
        ));
        let ok = b"{\n  \"setupComplete\": {}\n}\n".to_vec();
        assert!(matches!(
            decode(Message::binary(ok.clone()), big),
            Frame::Server(_)
        ));
        assert!(
            matches!(decode(Message::binary(ok), 10), Frame::Malformed(m) if m.contains("limit"))
        );
    }
}
