//! Event hooks (`[hooks] on_event`): each program runs once per event, with the event as one
//! JSON line on its standard input and its name in `GEMLIVE_EVENT` (librespot's `onevent`
//! convention), so a shell script can light an LED ring or log to a file.
//!
//! One task runs them, one event after another and in order (a script that follows the state
//! sees its changes in the order they happened). Nothing waits for it: events queue in the
//! hub's backlog, a hook that outlives `timeout_s` is killed, and a backlog that overflows
//! loses the oldest events, which is logged.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

use crate::control::Event;
use crate::service::outside;

/// What a failing hook printed that is logged.
const STDERR_LOG_BYTES: usize = 300;

/// Starts the hook runner; it ends when the hub does.
pub fn start(
    programs: Vec<PathBuf>,
    timeout: Duration,
    mut events: broadcast::Receiver<Arc<Event>>,
) {
    if programs.is_empty() {
        return;
    }
    tokio::spawn(async move {
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    log::warn!(
                        "hooks: {n} events were not given to the hooks: they run too slowly"
                    );
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            for p in &programs {
                run(p, &ev, timeout).await;
            }
        }
    });
}

async fn run(program: &PathBuf, ev: &Event, timeout: Duration) {
    let spawned = tokio::process::Command::new(program)
        .env("GEMLIVE_EVENT", ev.name)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            log::warn!("hook {}: could not start it: {e}", program.display());
            return;
        }
    };
    let mut stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    let line = format!("{}\n", ev.line);
    let work = async {
        if let Some(w) = stdin.as_mut() {
            // A hook that does not read its input is fine: a closed pipe is not an error here.
            let _ = w.write_all(line.as_bytes()).await;
        }
        drop(stdin.take());
        // Stderr is read while the hook runs (a full pipe would stall it) and kept only up to
        // a bound; a background child that keeps the pipe open does not hold us up.
        let mut err = Vec::new();
        let mut buf = [0u8; 1024];
        let wait = child.wait();
        tokio::pin!(wait);
        loop {
            let read = async {
                match stderr.as_mut() {
                    Some(r) => r.read(&mut buf).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                st = &mut wait => return (st, err),
                n = read => match n {
                    Ok(0) | Err(_) => stderr = None,
                    Ok(n) => {
                        if err.len() < 4096 {
                            err.extend_from_slice(&buf[..n]);
                        }
                    }
                },
            }
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok((Ok(st), _)) if st.success() => {
            log::debug!("hook {} ran for {}", program.display(), ev.name)
        }
        Ok((Ok(st), err)) => log::warn!(
            "hook {} failed for event {} ({st}): {}",
            program.display(),
            ev.name,
            outside(String::from_utf8_lossy(&err).trim(), STDERR_LOG_BYTES)
        ),
        Ok((Err(e), _)) => log::warn!("hook {}: {e}", program.display()),
        Err(_) => {
            // kill_on_drop: the child is killed when `work` is dropped here.
            log::warn!(
                "hook {} did not finish within {} s for event {}: killed",
                program.display(),
                timeout.as_secs(),
                ev.name
            );
        }
    }
}
