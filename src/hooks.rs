//! Event hooks (`[hooks] on_event`): each program runs once per event, with the event as one
//! JSON line on its standard input and its name in `GEMLIVE_EVENT` (librespot's `onevent`
//! convention), so a shell script can light an LED ring or log to a file.
//!
//! One task runs them, one event after another and in order (a script that follows the state
//! sees its changes in the order they happened). Nothing waits for it: events queue in the
//! hub's backlog, a hook that outlives `timeout_s` is killed, and a backlog that overflows
//! loses the oldest events, which is logged.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

use crate::control::Event;
use crate::service::outside;

/// What a failing hook printed that is logged.
const STDERR_LOG_BYTES: usize = 300;
/// What is kept of a hook's stderr while it runs.
const STDERR_KEEP: usize = 4096;

/// Starts the hook runner; it ends when the hub does.
pub fn start(
    programs: Vec<PathBuf>,
    timeout: Duration,
    mut events: broadcast::Receiver<Arc<Event>>,
) {
    if programs.is_empty() {
        return;
    }
    for p in &programs {
        check(p);
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

/// A hook that cannot run is said once at start, not at every event.
fn check(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
        Ok(_) => log::warn!(
            "hook {} is not an executable file (chmod +x it); it will fail for every event",
            p.display()
        ),
        Err(e) => log::warn!(
            "hook {}: {e}; it will fail for every event until it exists",
            p.display()
        ),
    }
}

async fn run(program: &Path, ev: &Event, timeout: Duration) {
    // As a tool's process: its own process group (killed whole, a script's children too),
    // none of the daemon's secrets or its systemd sockets in the environment.
    let mut cmd = crate::tools::command::tool_process(program, &[]);
    cmd.env("GEMLIVE_EVENT", ev.name).stdout(Stdio::null());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            log::debug!("hook {}: could not start it: {e}", program.display());
            return;
        }
    };
    let mut group = crate::tools::command::Group(child.id().map(|p| p as i32));
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
        let status = loop {
            let read = async {
                match stderr.as_mut() {
                    Some(r) => r.read(&mut buf).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                st = &mut wait => break st,
                n = read => match n {
                    Ok(0) | Err(_) => stderr = None,
                    Ok(n) => {
                        if err.len() < STDERR_KEEP {
                            err.extend_from_slice(&buf[..n]);
                        }
                    }
                },
            }
        };
        // What it wrote just before it ended may still be in the pipe.
        if let Some(r) = stderr.as_mut() {
            let drain = async {
                while let Ok(n) = r.read(&mut buf).await {
                    if n == 0 || err.len() >= STDERR_KEEP {
                        break;
                    }
                    err.extend_from_slice(&buf[..n]);
                }
            };
            let _ = tokio::time::timeout(Duration::from_millis(100), drain).await;
        }
        (status, err)
    };
    let done = tokio::time::timeout(timeout, work).await;
    if done.is_ok() {
        // Reaped: its group id may belong to someone else now; what it left running stays.
        group.0 = None;
    }
    match done {
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
            // The group is killed as `group` is dropped here.
            log::warn!(
                "hook {} did not finish within {} s for event {}: killed",
                program.display(),
                timeout.as_secs(),
                ev.name
            );
        }
    }
}
