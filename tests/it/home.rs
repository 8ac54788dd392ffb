//! At home: `ctl announce` (opening a session to say it), `ctl silence` (a ringing timer), event
//! hooks (`[hooks] on_event`: every event on stdin, its name in `GEMLIVE_EVENT`, a hanging hook
//! killed), and metrics (`[metrics]`: the textfile parsed by prometheus-client from PyPI, its
//! counters equal to the log's; the HTTP listener) — the real daemon on a file-PCM mic.

use crate::support::{self, exe, free_port, pcm, tool_call, KEY};

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gemlive::demo::Rig;
use gemlive::standin::{setup_complete, Conn, FromClient, StandIn};
use serde_json::{json, Value};
use tokio::time::{timeout, Instant};

fn ctl(rig: &Rig, args: &[&str]) -> (i32, Value) {
    let (code, v, _) = support::ctl(rig, args);
    (code, v)
}

/// The first client message (not mic audio) that `want` accepts, within `d`.
async fn next_json(conn: &mut Conn, d: Duration, want: impl Fn(&Value) -> bool) -> Option<Value> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if let Ok(Some(FromClient::Json(v))) = timeout(Duration::from_millis(50), conn.recv()).await
        {
            if want(&v) {
                return Some(v);
            }
        }
    }
    None
}

fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the metrics listener");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The textfile as prometheus-client (PyPI) reads it: `name{labels}` → value.
fn parse_with_prometheus_client(file: &Path) -> serde_json::Map<String, Value> {
    let py = support::venv().join("bin/python");
    let code = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    # Typed as written: a counter family that lost its TYPE line would come out "unknown".
    if fam.name.startswith("gemlive_") and fam.type not in ("counter", "gauge"):
        sys.exit(f"{fam.name} is {fam.type}")
    for s in fam.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;
    let out = Command::new(py)
        .args(["-c", code])
        .arg(file)
        .output()
        .expect("the venv's python");
    assert!(
        out.status.success(),
        "prometheus-client refuses the file: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .expect("JSON from the parser")
}

/// A number of the daemon's final summary line: the first after `label` (for "connections",
/// the one before it).
fn logged(logs: &str, label: &str) -> f64 {
    let line = logs
        .lines()
        .find(|l| l.contains("stopped: samples captured"))
        .expect("the stop's summary line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == label);
    let word = match (label, at) {
        ("connections", Some(i)) if i > 0 => words[i - 1],
        (_, Some(i)) if i + 1 < words.len() => words[i + 1],
        _ => panic!("{label} in {line}"),
    };
    word.trim_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or_else(|_| panic!("{label} in {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_silence_hooks_and_metrics() {
    let si = StandIn::bind().await.unwrap();
    let port = free_port();
    let dir_probe = tempdir_name("home");
    let seen_file: PathBuf = dir_probe.join("events.log");
    let mut rig = Rig::new(
        "home",
        &pcm(11, 32_000 * 60),
        &si.url(),
        "",
        &format!(
            "chunk_ms = 40\n[session]\nwake = \"button\"\nchimes = false\n\
             [service]\ncontrol_socket = \"ctl.sock\"\n\
             [hooks]\non_event = [\"{hook}\", \"{slow}\"]\ntimeout_s = 1\n\
             [metrics]\ntextfile = \"metrics.prom\"\nlisten = \"127.0.0.1:{port}\"\ninterval_s = 1",
            hook = dir_probe.join("hook.sh").display(),
            slow = dir_probe.join("slow.sh").display(),
        ),
    )
    .unwrap();
    std::fs::create_dir_all(&dir_probe).unwrap();
    script(
        &dir_probe.join("hook.sh"),
        &format!(
            "printf '%s ' \"$GEMLIVE_EVENT\" >> {f}\ncat >> {f}\n",
            f = seen_file.display()
        ),
    );
    // Hangs on a volume change only: it must be killed, and the events after it still run.
    script(
        &dir_probe.join("slow.sh"),
        "cat > /dev/null\n[ \"$GEMLIVE_EVENT\" = volume ] && exec sleep 30\nexit 0\n",
    );
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    let socket = rig.dir.join("ctl.sock");
    let t0 = Instant::now();
    while !socket.exists() && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // announce, idle: it opens a session and says it once the session is ready.
    let (code, v) = ctl(&rig, &["announce", "Dinner", "is", "ready."]);
    assert_eq!(code, 0, "{v}\n{}", rig.logs());
    let mut conn = timeout(Duration::from_secs(5), si.accept())
        .await
        .unwrap_or_else(|_| panic!("announce opens a session\n{}", rig.logs()))
        .unwrap();
    let _setup = timeout(Duration::from_secs(10), conn.recv()).await;
    conn.send(&setup_complete()).await.unwrap();
    let text = next_json(&mut conn, Duration::from_secs(3), |v| {
        v["realtimeInput"]["text"].is_string()
    })
    .await
    .unwrap_or_else(|| panic!("the announcement reaches the model\n{}", rig.logs()));
    let text = text["realtimeInput"]["text"].as_str().unwrap_or_default();
    assert!(text.ends_with("\"Dinner is ready.\""), "{text}");
    conn.send(&json!({"serverContent": {"outputTranscription": {"text": "Dinner is ready."}}}))
        .await
        .unwrap();
    conn.send(&json!({"serverContent": {"turnComplete": true}}))
        .await
        .unwrap();

    // A timer rings; `ctl silence` stops it; without one ringing it says so.
    conn.send(&tool_call(
        "t1",
        "set_timer",
        json!({"duration_s": 1, "label": "tea"}),
    ))
    .await
    .unwrap();
    let end = Instant::now() + Duration::from_secs(6);
    while !rig.logs().contains("ended: ringing") && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, v) = ctl(&rig, &["silence"]);
    assert_eq!((code, &v["note"]), (0, &Value::Null), "{v}\n{}", rig.logs());
    let (code, v) = ctl(&rig, &["silence"]);
    assert_eq!(
        (code, &v["note"]),
        (0, &Value::from("no timer is ringing")),
        "{v}"
    );

    let (code, _) = ctl(&rig, &["volume", "35"]);
    assert_eq!(code, 0);
    let page = http_get(port, "/metrics");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("\ngemlive_volume_percent 35\n"), "{page}");
    assert!(http_get(port, "/other").starts_with("HTTP/1.1 404"));
    let (code, _) = ctl(&rig, &["end"]);
    assert_eq!(code, 0);
    // The hooks run behind the events (the slow one takes its 1 s): wait for the last one.
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end
        && !std::fs::read_to_string(&seen_file)
            .unwrap_or_default()
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("state ") && l.contains("\"idle\""))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let logs = rig.logs();
    assert!(status.success(), "{status:?}\n{logs}");

    // Hooks: every event, in order, name and JSON; the hanging one was killed.
    let seen = std::fs::read_to_string(&seen_file).unwrap_or_default();
    let names: Vec<&str> = seen.lines().filter_map(|l| l.split(' ').next()).collect();
    for l in seen.lines() {
        let (name, json) = l.split_once(' ').unwrap_or((l, ""));
        let v: Value = serde_json::from_str(json).unwrap_or_else(|_| panic!("JSON: {l}"));
        assert_eq!(v["event"], name, "{l}");
    }
    // The last such event.
    let pos = |n: &str, line_has: &str| {
        let lines: Vec<&str> = seen.lines().collect();
        lines
            .iter()
            .rposition(|l| l.starts_with(&format!("{n} ")) && l.contains(line_has))
            .unwrap_or_else(|| panic!("hook saw {n} {line_has}:\n{seen}\n{logs}"))
    };
    assert!(pos("state", "\"connecting\"") < pos("state", "\"listening\""));
    assert!(pos("said", "Dinner is ready.") < pos("tool", "\"set_timer\""));
    assert!(pos("tool", "\"set_timer\"") < pos("timer", "\"ringing\""));
    assert!(pos("timer", "\"ringing\"") < pos("timer", "\"silenced\""));
    assert!(pos("volume", "35") < pos("state", "\"idle\""), "{names:?}");
    assert!(
        logs.contains("did not finish within 1 s for event volume: killed"),
        "{logs}"
    );

    // Metrics: the final textfile parses, and its counters are the log's.
    let m = parse_with_prometheus_client(&rig.dir.join("metrics.prom"));
    let get = |k: &str| {
        m.get(k)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{k} in {m:?}"))
    };
    assert_eq!(
        get("gemlive_mic_samples_total{stage=captured}"),
        logged(&logs, "captured")
    );
    assert_eq!(
        get("gemlive_mic_samples_total{stage=sent}"),
        logged(&logs, "sent")
    );
    assert_eq!(
        get("gemlive_mic_samples_total{stage=dropped}"),
        logged(&logs, "dropped")
    );
    assert!(get("gemlive_mic_samples_total{stage=sent}") > 8_000.0);
    assert_eq!(
        get("gemlive_connections_total"),
        logged(&logs, "connections")
    );
    assert_eq!(get("gemlive_connections_total"), 1.0);
    assert_eq!(get("gemlive_tool_calls_total"), 1.0);
    assert_eq!(get("gemlive_volume_percent"), 35.0);
    assert_eq!(get("gemlive_session_open"), 0.0);
    let _ = std::fs::remove_dir_all(&dir_probe);
}

fn tempdir_name(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gemlive-{tag}-hooks-{}", std::process::id()))
}
