//! The daemon as systemd sees it: a real Unix datagram socket as `NOTIFY_SOCKET`, a 1 s
//! watchdog, a microphone that stalls (a named pipe the test stops feeding), and SIGHUP reloads.

use crate::support;

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gemlive::demo::Rig;
use gemlive::standin::setup_complete;
use serde_json::json;
use support::{exe, listen_notify as listen, pcm, until, Notes, Seen, Server, KEY};

fn count(notes: &Notes, what: &str, since: Instant) -> usize {
    notes
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, m)| *t >= since && m.lines().any(|l| l == what))
        .count()
}

fn has(notes: &Notes, prefix: &str) -> bool {
    notes
        .lock()
        .unwrap()
        .iter()
        .any(|(_, m)| m.lines().any(|l| l.starts_with(prefix)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_watchdog_reload_and_a_stalled_microphone() {
    let mut sv = Server::start().await;
    let mut rig = Rig::new("notify", &[], &sv.url, "", "").unwrap();
    let fifo = rig.mic_fifo().unwrap();
    let sock_path = rig.dir.join("notify.sock");
    let notes = listen(UnixDatagram::bind(&sock_path).unwrap());

    // The microphone: real-time 16 kHz audio into the pipe until `feed` is cleared; the write
    // end stays open, so the daemon's read then blocks like a wedged device.
    let feed = Arc::new(AtomicBool::new(true));
    let f = feed.clone();
    let writer = std::thread::spawn(move || {
        let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        let chunk = pcm(7, 640); // 20 ms
        while f.load(Ordering::Relaxed) {
            if pipe.write_all(&chunk).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // keep the pipe open (no EOF) until the test is over
        std::thread::sleep(Duration::from_secs(20));
    });

    let run_dir = rig.dir.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    rig.spawn_with_env(
        &exe(),
        KEY,
        &["-v"],
        None,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
            ("RUNTIME_DIRECTORY", run_dir.to_str().unwrap()),
        ],
    )
    .unwrap();
    // The unit's ExecReload: `gemlive reload $MAINPID`, with the service's RUNTIME_DIRECTORY.
    let pid = rig.pid().unwrap().to_string();
    let reload = {
        let run_dir = run_dir.clone();
        move || {
            std::process::Command::new(exe())
                .args(["reload", &pid])
                .env("RUNTIME_DIRECTORY", &run_dir)
                .output()
                .unwrap()
        }
    };
    let mut seen = Seen::default();
    sv.ready(
        &mut seen,
        &[json!({"sessionResumptionUpdate": {"newHandle": "h-n", "resumable": true}})],
    )
    .await;
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.audio[0].len()
            >= 16_000)
            .await
    );

    // READY=1 once audio flows; STATUS= changes; WATCHDOG=1 twice a second while healthy.
    assert!(
        until(Duration::from_secs(3), || count(
            &notes,
            "READY=1",
            Instant::now() - Duration::from_secs(60)
        ) >= 1)
        .await
    );
    assert!(has(&notes, "STATUS=waiting for the microphone"));
    assert!(has(&notes, "STATUS=listening"));
    let t = Instant::now();
    sv.pump(&mut seen, Duration::from_millis(2_200), |_| false)
        .await;
    let pings = count(&notes, "WATCHDOG=1", t);
    assert!(
        (3..=6).contains(&pings),
        "WATCHDOG=1 every 0.5 s while healthy: {pings}"
    );

    // A broken edit: RELOADING=1 (with MONOTONIC_USEC), READY=1, old config kept.
    let good = std::fs::read_to_string(&rig.config_path).unwrap();
    std::fs::write(&rig.config_path, good.replace("[live]", "[live\n")).unwrap();
    let t = Instant::now();
    // `systemctl reload` fails, with the parser's reason, and the daemon goes on.
    let out = reload();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refused, the running one stays") && err.contains("gemlive.toml:1:6"),
        "{err}"
    );
    assert!(until(Duration::from_secs(5), || count(&notes, "READY=1", t) >= 1).await);
    assert_eq!(count(&notes, "RELOADING=1", t), 1);
    assert!(notes
        .lock()
        .unwrap()
        .iter()
        .any(|(at, m)| *at >= t && m.contains("RELOADING=1") && m.contains("MONOTONIC_USEC=")));
    assert!(
        until(Duration::from_secs(2), || rig
            .logs()
            .contains("keeping the running configuration"))
        .await
    );
    assert_eq!(seen.setups.len(), 1, "a bad edit changes nothing");

    // A voice and language change: the session moves to a new connection that resumes with
    // the handle.
    std::fs::write(
        &rig.config_path,
        good.replace(
            "[live]\n",
            "[live]\nvoice = \"Puck\"\nlanguage_code = \"de-DE\"\n",
        ),
    )
    .unwrap();
    let t = Instant::now();
    // `gemlive reload` returns only once the new file is in force.
    let out = tokio::task::spawn_blocking(reload.clone()).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("the new configuration is in force"));
    assert_eq!(rig.logs().matches("configuration reloaded").count(), 1);
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.setups.len() >= 2)
            .await
    );
    assert_eq!(
        seen.setups[1]["setup"]["sessionResumption"],
        json!({"handle": "h-n"})
    );
    assert_eq!(
        seen.setups[1]["setup"]["generationConfig"]["speechConfig"]["voiceConfig"]
            ["prebuiltVoiceConfig"]["voiceName"],
        "Puck"
    );
    assert_eq!(
        seen.setups[1]["setup"]["generationConfig"]["speechConfig"]["languageCode"],
        "de-DE"
    );
    assert!(seen.setups[0]["setup"]["generationConfig"]["speechConfig"]
        .get("languageCode")
        .is_none());
    // The datagrams arrive on their own thread: wait for them rather than race the setup.
    assert!(
        until(Duration::from_secs(5), || count(&notes, "RELOADING=1", t)
            == 1
            && count(&notes, "READY=1", t) >= 1)
        .await
    );
    sv.send(1, setup_complete());
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.closed(0)
            == Some(1000))
            .await
    );

    // The microphone stalls: the watchdog is no longer fed.
    feed.store(false, Ordering::Relaxed);
    sv.pump(&mut seen, Duration::from_millis(1_500), |_| false)
        .await;
    let t = Instant::now();
    sv.pump(&mut seen, Duration::from_millis(2_000), |_| false)
        .await;
    assert_eq!(
        count(&notes, "WATCHDOG=1", t),
        0,
        "no WATCHDOG=1 while the capture is stalled"
    );
    assert!(
        rig.logs()
            .contains("not feeding the watchdog: no audio from the microphone"),
        "{}",
        rig.logs()
    );

    let t = Instant::now();
    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status:?}\n{}", rig.logs());
    assert!(count(&notes, "STOPPING=1", t) >= 1);
    drop(writer);
}

/// A microphone that never opens (issue: an endless restart loop every `TimeoutStartSec`):
/// `systemctl status` says why while start-up waits, then the daemon counts as started with an
/// error status, the watchdog is fed while the capture thread retries, and it keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_that_never_opens() {
    let sv = Server::start().await;
    let mut rig = Rig::new("nomic", &[], &sv.url, "", "").unwrap();
    let cfg = std::fs::read_to_string(&rig.config_path).unwrap();
    let want = format!("capture_device = \"{}\"", gemlive::demo::MIC_PCM);
    assert!(cfg.contains(&want));
    std::fs::write(
        &rig.config_path,
        cfg.replacen(&want, "capture_device = \"hw:CARD=NoSuchMic,DEV=0\"", 1),
    )
    .unwrap();
    let sock_path = rig.dir.join("notify.sock");
    let notes = listen(UnixDatagram::bind(&sock_path).unwrap());
    let t0 = Instant::now();
    rig.spawn_with_env(
        &exe(),
        KEY,
        &[],
        None,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "2000000"),
        ],
    )
    .unwrap();
    let status = |n: &Notes, p: &str| {
        n.lock()
            .unwrap()
            .iter()
            .find_map(|(_, m)| m.lines().find(|l| l.starts_with(p)).map(str::to_string))
    };
    assert!(
        until(Duration::from_secs(10), || status(
            &notes,
            "STATUS=waiting for the microphone: "
        )
        .is_some_and(|s| s.contains("NoSuchMic")))
        .await,
        "the status says which microphone fails and why: {:?}",
        notes.lock().unwrap()
    );
    assert!(until(Duration::from_secs(55), || has(&notes, "READY=1")).await);
    let after = t0.elapsed().as_secs_f64();
    assert!(
        (39.0..50.0).contains(&after),
        "READY after the 40 s grace: {after:.1} s"
    );
    let ready = notes
        .lock()
        .unwrap()
        .iter()
        .find(|(_, m)| m.lines().any(|l| l == "READY=1"))
        .map(|(_, m)| m.clone())
        .unwrap();
    assert!(
        ready.contains("STATUS=error: ")
            && ready.contains("NoSuchMic")
            && ready.contains("retrying"),
        "{ready}"
    );
    // The capture thread retries: the watchdog is fed (a restart would not bring it back).
    let t = Instant::now();
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    assert!(count(&notes, "WATCHDOG=1", t) >= 2);
    let logs = rig.logs();
    assert!(
        logs.contains("no audio from the microphone after 40 s"),
        "{logs}"
    );
    assert!(!logs.contains("not feeding the watchdog"), "{logs}");
    assert!(rig
        .pid()
        .is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists()));
}
