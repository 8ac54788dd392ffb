//! The control interface (`[service] control_socket`) end to end: the real daemon with
//! `wake = "button"` and no button, driven only by `gemlive ctl`. `ctl wake` opens a session on
//! the stand-in, `ctl mute` stops the mic audio (after `audioStreamEnd`), `ctl unmute` resumes
//! it, `ctl volume 35` and `ctl end` take effect, and `ctl events` sees all of it.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gemlive::demo::Rig;
use gemlive::standin::{setup_complete, Conn, StandIn};
use serde_json::Value;
use support::{ctl, exe, pcm, KEY};
use tokio::time::{timeout, Instant};

/// Mic audio and whether `audioStreamEnd` came, for `d`.
async fn listen(conn: &mut Conn, d: Duration) -> (usize, bool) {
    support::mic_for(conn, d, &mut Vec::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemlive_ctl_wakes_mutes_and_ends_a_session_and_ctl_events_sees_it() {
    let si = StandIn::bind().await.unwrap();
    // Noise-like mic audio: any sample that leaves the box while muted shows.
    let mut rig = Rig::new(
        "control",
        &pcm(7, 32_000 * 40),
        &si.url(),
        "",
        "chunk_ms = 40\n[session]\nwake = \"button\"\nchimes = false\n[service]\ncontrol_socket = \"ctl.sock\"",
    )
    .unwrap();
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    let socket = rig.dir.join("ctl.sock");
    let t0 = Instant::now();
    while !socket.exists() && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(socket.exists(), "the socket appears\n{}", rig.logs());

    // The event stream, read on a thread.
    let mut events = Command::new(exe())
        .arg("--config")
        .arg(&rig.config_path)
        .args(["ctl", "events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gemlive ctl events");
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let out = events.stdout.take().expect("stdout");
    let s = seen.clone();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            s.lock().unwrap().push(l);
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (code, v, _) = ctl(&rig, &["status"]);
    assert_eq!(
        (code, &v["state"], &v["session"]),
        (0, &Value::from("idle"), &Value::from(false)),
        "{v}"
    );
    assert!(
        timeout(Duration::from_millis(500), si.accept())
            .await
            .is_err(),
        "asleep until told"
    );

    let (code, v, _) = ctl(&rig, &["wake"]);
    assert_eq!(code, 0, "{v}");
    let mut conn = timeout(Duration::from_secs(5), si.accept())
        .await
        .unwrap_or_else(|_| panic!("ctl wake opens a session\n{}", rig.logs()))
        .unwrap();
    let _setup = conn.recv().await;
    conn.send(&setup_complete()).await.unwrap();
    let (before, _) = listen(&mut conn, Duration::from_secs(1)).await;
    assert!(before > 16_000, "mic audio flows: {before} bytes");

    let (code, v, _) = ctl(&rig, &["mute"]);
    assert_eq!((code, &v["muted"]), (0, &Value::from(true)), "{v}");
    // What was already in flight may still arrive; then audioStreamEnd and nothing.
    let (_, ended) = listen(&mut conn, Duration::from_millis(500)).await;
    let (muted_bytes, _) = listen(&mut conn, Duration::from_secs(2)).await;
    assert!(ended, "audioStreamEnd on mute\n{}", rig.logs());
    assert_eq!(muted_bytes, 0, "no mic audio while muted");

    let (code, v, _) = ctl(&rig, &["unmute"]);
    assert_eq!((code, &v["muted"]), (0, &Value::from(false)), "{v}");
    let (after, _) = listen(&mut conn, Duration::from_secs(1)).await;
    assert!(after > 16_000, "unmuting resumes: {after} bytes");

    let (code, v, _) = ctl(&rig, &["volume", "35"]);
    assert_eq!((code, &v["volume"]), (0, &Value::from(35)), "{v}");
    let (code, _, err) = ctl(&rig, &["volume", "135"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("0..=100"), "{err}");
    let (code, _, err) = ctl(&rig, &["launch"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown command"), "{err}");

    let (code, v, _) = ctl(&rig, &["end"]);
    assert_eq!(code, 0, "{v}");
    let t0 = Instant::now();
    let mut closed = false;
    while t0.elapsed() < Duration::from_secs(5) {
        match timeout(Duration::from_millis(100), conn.recv()).await {
            Ok(None) => {
                closed = true;
                break;
            }
            _ => continue,
        }
    }
    assert!(closed, "ctl end closes the session\n{}", rig.logs());
    let (code, v, _) = ctl(&rig, &["status"]);
    assert_eq!((code, &v["session"]), (0, &Value::from(false)), "{v}");

    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let logs = rig.logs();
    assert!(status.success(), "{status:?}\n{logs}");
    // The daemon's stop ends the event stream, and removes the socket.
    let _ = events.wait();
    let _ = reader.join();
    assert!(!socket.exists(), "the socket is removed at stop");
    let seen = seen.lock().unwrap().clone();
    let events: Vec<Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect();
    let has = |name: &str, key: &str, val: Value| {
        events.iter().any(|e| e["event"] == name && e[key] == val)
    };
    for (name, key, val) in [
        ("state", "state", Value::from("connecting")),
        ("state", "state", Value::from("listening")),
        ("mute", "muted", Value::from(true)),
        ("mute", "muted", Value::from(false)),
        ("volume", "volume", Value::from(35)),
        ("state", "state", Value::from("idle")),
    ] {
        assert!(
            has(name, key, val.clone()),
            "event {name} {key}={val}: {seen:#?}\n{logs}"
        );
    }
}
