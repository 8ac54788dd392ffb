//! One Live connection in its own task: dial (connect, TLS, upgrade, setup, setupComplete),
//! then a reader, a writer and a socket monitor. The daemon's control loop only hands it
//! messages through a bounded queue (`try_send`, never awaited) and hears back through the
//! shared event channel, so a stalled socket, a slow TLS handshake or a slow close never
//! delays the button, `interrupted`, the watchdog or SIGTERM.
//!
//! The writer records, for every message it finished writing, the stream offset of its last
//! byte; the monitor reads the kernel's count of unacknowledged bytes every 100 ms and reports
//! which messages the server's TCP stack has acknowledged (see `supervisor`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use std::sync::Arc;

use super::key::Credentials;
use super::session::{self, Frame, SessionError};
use super::supervisor::ConnId;
use super::transport::{self, Endpoint};

/// How often the monitor asks the kernel about acknowledgements.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// A polite close that takes longer than this is cut off.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);

/// From a connection to the control loop.
#[derive(Debug)]
pub enum Event {
    Dialed {
        conn: ConnId,
        result: Result<Option<String>, SessionError>,
    },
    Frame {
        conn: ConnId,
        frame: Frame,
        bytes: u64,
    },
    Lost {
        conn: ConnId,
        error: SessionError,
    },
    Progress {
        conn: ConnId,
        acked_through: Option<u64>,
        acked_bytes: u64,
        unacked_bytes: u64,
    },
}

enum Command {
    Send { seq: u64, msg: Message },
    Close,
}

/// What a connection needs to dial.
#[derive(Clone)]
pub struct Dial {
    pub endpoint: Endpoint,
    pub credentials: Arc<dyn Credentials>,
    /// Opens a new conversation (no resumption handle): a token must be fresh.
    pub new_session: bool,
    /// The `setup` message, JSON.
    pub setup: String,
    pub setup_timeout: Duration,
    pub max_message_bytes: usize,
    /// Messages the writer queue holds.
    pub queue: usize,
}

/// The control loop's handle on one connection task.
pub struct Conn {
    tx: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

/// The writer queue is full or the task is gone: the caller treats the link as stalled.
#[derive(Debug)]
pub struct QueueFull;

impl Conn {
    pub fn send(&self, seq: u64, msg: Message) -> Result<(), QueueFull> {
        self.tx
            .try_send(Command::Send { seq, msg })
            .map_err(|_| QueueFull)
    }

    /// Closes with 1000 after what was queued before; returns the task to wait for (briefly).
    pub fn close(self) -> JoinHandle<()> {
        if self.tx.try_send(Command::Close).is_err() {
            self.task.abort();
        }
        self.task
    }

    /// Drops the connection now: nothing more is written.
    pub fn abort(self) {
        self.task.abort();
    }
}

pub fn spawn(conn: ConnId, dial: Dial, events: mpsc::Sender<Event>) -> Conn {
    let (tx, rx) = mpsc::channel(dial.queue.max(1));
    let task = tokio::spawn(run(conn, dial, events, rx));
    Conn { tx, task }
}

async fn run(
    conn: ConnId,
    dial: Dial,
    events: mpsc::Sender<Event>,
    mut rx: mpsc::Receiver<Command>,
) {
    let opened = match dial.credentials.credential(dial.new_session).await {
        Ok(cred) => {
            session::open(
                &dial.endpoint,
                &cred,
                &dial.setup,
                dial.setup_timeout,
                dial.max_message_bytes,
            )
            .await
        }
        Err(why) => Err(SessionError::Credentials(why)),
    };
    let (ws, session_id) = match opened {
        Ok(x) => x,
        Err(e) => {
            dial.credentials.failed();
            let _ = events
                .send(Event::Dialed {
                    conn,
                    result: Err(e),
                })
                .await;
            return;
        }
    };
    let probe = transport::counted(&ws).map(|c| c.probe());
    if events
        .send(Event::Dialed {
            conn,
            result: Ok(session_id),
        })
        .await
        .is_err()
    {
        return;
    }
    let (mut sink, mut stream) = ws.split();
    // (seq, stream offset just past the message's last byte), oldest first.
    let ledger: Mutex<VecDeque<(u64, u64)>> = Mutex::new(VecDeque::new());
    let max = dial.max_message_bytes;

    let reader = async {
        loop {
            let msg = match stream.next().await {
                None => {
                    return Some(SessionError::Closed {
                        code: 1006,
                        reason: "connection dropped without a close frame".into(),
                    })
                }
                Some(Err(e)) => return Some(SessionError::Socket(e)),
                Some(Ok(msg)) => msg,
            };
            let bytes = msg.len() as u64;
            match session::decode(msg, max) {
                Frame::Closed { code, reason } => {
                    return Some(SessionError::Closed { code, reason })
                }
                frame => {
                    if events
                        .send(Event::Frame { conn, frame, bytes })
                        .await
                        .is_err()
                    {
                        return None;
                    }
                }
            }
        }
    };

    let writer = async {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                Command::Send { seq, msg } => {
                    if let Err(e) = sink.send(msg).await {
                        return Some(SessionError::Socket(e));
                    }
                    if let Some(p) = &probe {
                        if let Ok(mut l) = ledger.lock() {
                            l.push_back((seq, p.written()));
                        }
                    }
                }
                Command::Close => {
                    let frame = CloseFrame {
                        code: CloseCode::Normal,
                        reason: "client closing".into(),
                    };
                    let polite = async {
                        sink.send(Message::Close(Some(frame))).await?;
                        sink.close().await
                    };
                    let _ = tokio::time::timeout(CLOSE_WITHIN, polite).await;
                    return None;
                }
            }
        }
        None
    };

    let monitor = async {
        let Some(p) = &probe else {
            return std::future::pending().await;
        };
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = (0u64, 0u64);
        loop {
            tick.tick().await;
            let Some(ev) = progress(conn, p, &ledger) else {
                continue;
            };
            if let Event::Progress {
                acked_through,
                acked_bytes,
                unacked_bytes,
                ..
            } = &ev
            {
                if acked_through.is_none() && (*acked_bytes, *unacked_bytes) == last {
                    continue;
                }
                last = (*acked_bytes, *unacked_bytes);
            }
            // Dropped when the loop is busy: the next report covers it (cumulative).
            let _ = events.try_send(ev);
        }
    };

    // The first of the three to finish ends the connection. A loss is reported after a last,
    // fresh reading of the acknowledgements, so that what the server's stack took since the
    // previous probe is not sent twice.
    let lost: Option<SessionError> = tokio::select! {
        e = reader => e,
        e = writer => e,
        () = monitor => None,
    };
    if let Some(error) = lost {
        if let Some(ev) = probe.as_ref().and_then(|p| progress(conn, p, &ledger)) {
            let _ = events.send(ev).await;
        }
        let _ = events.send(Event::Lost { conn, error }).await;
    }
}

/// What the kernel acknowledged, as messages: pops the ledger entries wholly acknowledged.
fn progress(
    conn: ConnId,
    probe: &transport::SocketProbe,
    ledger: &Mutex<VecDeque<(u64, u64)>>,
) -> Option<Event> {
    let a = probe.acks()?;
    let mut through = None;
    if let Ok(mut l) = ledger.lock() {
        while let Some(&(seq, end)) = l.front() {
            if end > a.acked {
                break;
            }
            through = Some(seq);
            l.pop_front();
        }
    }
    Some(Event::Progress {
        conn,
        acked_through: through,
        acked_bytes: a.acked,
        unacked_bytes: a.written - a.acked,
    })
}
