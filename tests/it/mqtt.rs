//! Home Assistant over MQTT end to end: a real mosquitto broker (Debian's, started here on its
//! own port), its clients `mosquitto_sub`/`mosquitto_pub` in Home Assistant's place, and the
//! real daemon with `wake = "button"` and no button.
//!
//! The discovery configs carry what Home Assistant requires of each component; the start
//! button opens a session on the stand-in; mute ON stops the mic audio, OFF resumes it; volume
//! 35 shows on its state topic and scales the speaker; `announce` reaches the model; the broker
//! stopped and started again mid-session leaves the session streaming and gets the discovery
//! again; SIGKILL turns availability offline (the last will); `check-config --online` reaches
//! the broker.

use crate::support::{self, exe, free_port, pcm, KEY};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gemlive::demo::Rig;
use gemlive::standin::{server_audio, setup_complete, Conn, StandIn};
use serde_json::{json, Value};
use tokio::time::{timeout, Instant};

const NODE: &str = "testbox";

fn mosquitto() -> PathBuf {
    for p in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("mosquitto is not installed: run `bash .ci/deps --test` (Debian's mosquitto and mosquitto-clients)");
}

/// A broker on 127.0.0.1:`port` without persistence: after a restart it knows nothing.
struct Broker {
    child: Child,
}

impl Broker {
    fn start(dir: &Path, port: u16) -> Broker {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Command::new(mosquitto())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < end,
                "mosquitto listens on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker { child }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mosquitto_sub -t '#'`: every message with its retain flag, collected on a thread.
struct Watch {
    child: Child,
    seen: Arc<Mutex<Vec<(bool, String, String)>>>,
}

impl Watch {
    fn start(port: u16) -> Watch {
        let mut child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "#",
                "-F",
                "%r\t%t\t%p",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub (mosquitto-clients)");
        let out = child.stdout.take().expect("stdout");
        let seen: Arc<Mutex<Vec<(bool, String, String)>>> = Arc::default();
        let s = seen.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let mut p = l.splitn(3, '\t');
                let (r, t, m) = (p.next(), p.next(), p.next());
                if let (Some(r), Some(t), Some(m)) = (r, t, m) {
                    s.lock()
                        .unwrap()
                        .push((r == "1", t.to_string(), m.to_string()));
                }
            }
        });
        Watch { child, seen }
    }

    fn all(&self) -> Vec<(bool, String, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// The last payload on `topic`.
    fn last(&self, topic: &str) -> Option<String> {
        self.all()
            .into_iter()
            .rev()
            .find(|(_, t, _)| t == topic)
            .map(|(_, _, p)| p)
    }

    async fn wait_for(&self, topic: &str, payload: &str, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.last(topic).as_deref() == Some(payload) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn publish(port: u16, topic: &str, payload: &str) {
    let st = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-m",
            payload,
        ])
        .status()
        .expect("mosquitto_pub");
    assert!(st.success(), "mosquitto_pub {topic}");
}

/// Mic audio bytes and whether `audioStreamEnd` came, over `d`; other messages are kept.
async fn listen(conn: &mut Conn, d: Duration, other: &mut Vec<Value>) -> (usize, bool) {
    support::mic_for(conn, d, other).await
}

/// The retained discovery configs, as Home Assistant gets them when it subscribes (a fresh
/// subscriber sees only retained messages as retained), checked for what Home Assistant's MQTT
/// schemas require of each component, and the device block.
async fn check_discovery(port: u16) -> usize {
    let w = Watch::start(port);
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end
        && w.all()
            .iter()
            .filter(|(_, t, _)| t.ends_with("/config"))
            .count()
            < 9
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let configs: Vec<(String, Value)> = w
        .all()
        .into_iter()
        .filter(|(retained, t, _)| {
            *retained && t.starts_with("homeassistant/") && t.ends_with("/config")
        })
        .map(|(_, t, p)| {
            let v = serde_json::from_str(&p).unwrap_or_else(|e| panic!("{t}: not JSON ({e}): {p}"));
            (t, v)
        })
        .collect();
    for (t, c) in &configs {
        let parts: Vec<&str> = t.split('/').collect();
        assert_eq!(
            parts.len(),
            5,
            "{t}: <prefix>/<component>/<node>/<object>/config"
        );
        assert_eq!(parts[2], NODE, "{t}");
        let required: &[&str] = match parts[1] {
            "sensor" => &["state_topic"],
            "switch" | "number" | "button" | "text" => &["command_topic"],
            other => panic!("{t}: unexpected component {other}"),
        };
        for k in required
            .iter()
            .chain(&["unique_id", "name", "availability_topic"])
        {
            assert!(
                c.get(*k).is_some_and(|v| !v.is_null()),
                "{t} lacks {k}: {c}"
            );
        }
        let d = &c["device"];
        assert!(
            d["identifiers"].as_array().is_some_and(|a| !a.is_empty()),
            "{t}: {c}"
        );
        assert_eq!(d["sw_version"], env!("CARGO_PKG_VERSION"), "{t}");
        if parts[1] == "number" {
            assert_eq!((&c["min"], &c["max"]), (&json!(0), &json!(100)), "{t}");
        }
    }
    let kinds = |k: &str| {
        configs
            .iter()
            .filter(|(t, _)| t.split('/').nth(1) == Some(k))
            .count()
    };
    assert!(kinds("sensor") >= 4, "state, heard, said, last error");
    assert_eq!(
        (kinds("switch"), kinds("number"), kinds("button")),
        (1, 1, 2)
    );
    configs.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_over_mqtt_with_a_real_broker() {
    let si = StandIn::bind().await.unwrap();
    let port = free_port();
    let base = format!("gemlive/{NODE}");
    let mut rig = Rig::new(
        "mqtt",
        &pcm(5, 32_000 * 90),
        &si.url(),
        "",
        &format!(
            "chunk_ms = 40\n[session]\nwake = \"button\"\nchimes = false\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nnode_id = \"{NODE}\""
        ),
    )
    .unwrap();
    let broker = Broker::start(&rig.dir, port);
    let w = Watch::start(port);
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();

    assert!(
        w.wait_for(
            &format!("{base}/availability"),
            "online",
            Duration::from_secs(10)
        )
        .await,
        "availability online\n{}",
        rig.logs()
    );
    assert!(
        w.wait_for(&format!("{base}/state"), "idle", Duration::from_secs(5))
            .await
    );
    assert_eq!(check_discovery(port).await, 9, "{:#?}", w.all());

    // The start button opens a session.
    publish(port, &format!("{base}/wake/set"), "PRESS");
    let mut conn = timeout(Duration::from_secs(5), si.accept())
        .await
        .unwrap_or_else(|_| panic!("the start button opens a session\n{}", rig.logs()))
        .unwrap();
    let _setup = timeout(Duration::from_secs(10), conn.recv()).await;
    conn.send(&setup_complete()).await.unwrap();
    let mut other = Vec::new();
    let (before, _) = listen(&mut conn, Duration::from_secs(1), &mut other).await;
    assert!(before > 16_000, "mic audio flows: {before} bytes");
    assert!(
        w.wait_for(
            &format!("{base}/state"),
            "listening",
            Duration::from_secs(3)
        )
        .await
    );

    // Mute ON: no mic audio leaves the box; OFF: it flows again.
    publish(port, &format!("{base}/mute/set"), "ON");
    assert!(
        w.wait_for(&format!("{base}/mute"), "ON", Duration::from_secs(3))
            .await
    );
    let (_, ended) = listen(&mut conn, Duration::from_millis(500), &mut other).await;
    let (muted, _) = listen(&mut conn, Duration::from_secs(2), &mut other).await;
    assert!(ended, "audioStreamEnd on mute\n{}", rig.logs());
    assert_eq!(muted, 0, "no mic audio while muted");
    assert_eq!(w.last(&format!("{base}/state")).as_deref(), Some("muted"));
    publish(port, &format!("{base}/mute/set"), "OFF");
    assert!(
        w.wait_for(&format!("{base}/mute"), "OFF", Duration::from_secs(3))
            .await
    );
    let (after, _) = listen(&mut conn, Duration::from_secs(1), &mut other).await;
    assert!(after > 16_000, "unmuting resumes: {after} bytes");

    // Volume 35: on its state topic, and the speaker plays 35 % of the reply.
    publish(port, &format!("{base}/volume/set"), "35");
    assert!(
        w.wait_for(&format!("{base}/volume"), "35", Duration::from_secs(3))
            .await
    );
    let samples: Vec<i16> = (0..4_800).map(|i| ((i % 200) as i16 - 100) * 300).collect();
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    conn.send(&server_audio(&bytes)).await.unwrap();
    conn.send(
        &json!({"serverContent": {"outputTranscription": {"text": "Fine."}, "turnComplete": true}}),
    )
    .await
    .unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    while rig.speaker().len() < 9_600 && Instant::now() < end {
        let _ = listen(&mut conn, Duration::from_millis(100), &mut other).await;
    }
    let played: Vec<i16> = rig
        .speaker()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let expected: Vec<i16> = samples
        .iter()
        .map(|s| (i32::from(*s) * 35 / 100) as i16)
        .collect();
    assert_eq!(played, expected, "35 % amplitude");
    assert!(
        w.wait_for(&format!("{base}/said"), "Fine.", Duration::from_secs(3))
            .await
    );

    // The broker goes away and comes back: the session streams on, the discovery returns.
    drop(w);
    drop(broker);
    let (during, _) = listen(&mut conn, Duration::from_secs(2), &mut other).await;
    assert!(
        during > 48_000,
        "the session is unaffected: {during} bytes in 2 s"
    );
    let broker = Broker::start(&rig.dir, port);
    let w = Watch::start(port);
    let end = Instant::now() + Duration::from_secs(20);
    let mut configs = 0;
    while Instant::now() < end && configs < 9 {
        let (_, _) = listen(&mut conn, Duration::from_millis(200), &mut other).await;
        configs = w
            .all()
            .iter()
            .filter(|(_, t, _)| t.ends_with("/config"))
            .count();
    }
    assert_eq!(configs, 9, "discovery republished\n{}", rig.logs());
    assert_eq!(check_discovery(port).await, 9, "retained again");
    assert_eq!(
        w.last(&format!("{base}/volume")).as_deref(),
        Some("35"),
        "the state is republished"
    );
    assert!(
        rig.logs().contains("mqtt: connected to 127.0.0.1 again"),
        "{}",
        rig.logs()
    );

    // announce: said on the open session.
    publish(
        port,
        &format!("{base}/announce/set"),
        "The laundry is done.",
    );
    let end = Instant::now() + Duration::from_secs(3);
    let mut announced = false;
    while !announced && Instant::now() < end {
        let _ = listen(&mut conn, Duration::from_millis(100), &mut other).await;
        announced = other.iter().any(|v| {
            v["realtimeInput"]["text"]
                .as_str()
                .is_some_and(|t| t.ends_with("\"The laundry is done.\""))
        });
    }
    assert!(
        announced,
        "the announcement reaches the model\n{}",
        rig.logs()
    );

    // check-config --online reaches the broker (the stand-in answers the Live API part).
    let accept = tokio::spawn(async move {
        if let Ok(Ok(mut c)) = timeout(Duration::from_secs(10), si.accept()).await {
            let _ = c.recv().await;
            let _ = c.send(&setup_complete()).await;
            let _ = timeout(Duration::from_secs(5), c.recv()).await;
        }
    });
    let out = Command::new(exe())
        .arg("--config")
        .arg(&rig.config_path)
        .args(["check-config", "--online"])
        .env("GEMINI_API_KEY", KEY)
        .env_remove("GEMLIVE_CONFIG")
        .output()
        .expect("check-config --online");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("online: MQTT OK: connected to 127.0.0.1:{port}")),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = accept.await;

    // SIGKILL: the broker publishes the last will.
    rig.signal(libc::SIGKILL);
    let _ = rig.wait(Duration::from_secs(5));
    assert!(
        w.wait_for(
            &format!("{base}/availability"),
            "offline",
            Duration::from_secs(5)
        )
        .await,
        "availability offline after SIGKILL: {:#?}",
        w.all()
            .iter()
            .filter(|(_, t, _)| t.ends_with("availability"))
            .collect::<Vec<_>>()
    );
    drop(broker);
}
