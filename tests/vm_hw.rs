//! Real drivers: the real `gemlive` binary inside a qemu VM with snd-aloop (mic and speaker),
//! v4l2loopback (camera) and gpio-sim (button and LED); the Live stand-in runs here on the
//! host. The guest side is `tests/vm/scenario/run.sh`.
//!
//! Needs the VM artifacts from `tests/vm/setup-host.sh` (cached in `$VMDIR`, default
//! /tmp/gemlive-vm). Without them the test says SKIP and passes — unless `REQUIRE_VM=1` (CI),
//! which turns a missing VM into a failure.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use gemlive::standin::{client_video, server_audio, server_content, setup_complete};
use support::{exe, tool_call, Seen, Server};

fn tone(freq: f64, secs: f64, rate: f64) -> Vec<u8> {
    (0..(secs * rate) as usize)
        .flat_map(|i| {
            let x = (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin() * 8_000.0;
            (x as i16).to_le_bytes()
        })
        .collect()
}

fn samples(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(2)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
        .collect()
}

/// Dominant frequency of a loud stretch, from zero crossings.
fn frequency(x: &[f64], rate: f64) -> f64 {
    let crossings = x
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    crossings as f64 / 2.0 / (x.len() as f64 / rate)
}

/// Loud runs (|x| > 1000 within 10 ms windows) as (start, end) sample indices.
fn loud_runs(x: &[f64], rate: f64) -> Vec<(usize, usize)> {
    let w = (rate / 100.0) as usize;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, win) in x.chunks(w).enumerate() {
        if win.iter().any(|v| v.abs() > 1_000.0) {
            let (s, e) = (i * w, i * w + win.len());
            match runs.last_mut() {
                Some(r) if r.1 + w >= s => r.1 = e,
                _ => runs.push((s, e)),
            }
        }
    }
    runs
}

fn correlation_at(hay: &[f64], probe: &[f64], off: usize) -> f64 {
    let h = &hay[off..off + probe.len()];
    let hn: f64 = h.iter().map(|v| v * v).sum::<f64>().sqrt();
    let pn: f64 = probe.iter().map(|v| v * v).sum::<f64>().sqrt();
    if hn == 0.0 || pn == 0.0 {
        return 0.0;
    }
    h.iter().zip(probe).map(|(a, b)| a * b).sum::<f64>() / (hn * pn)
}

/// Best normalised cross-correlation of `probe` inside `hay`: a coarse search on every 8th
/// sample, then a sample-exact search around the best coarse offset.
fn best_correlation(hay: &[f64], probe: &[f64]) -> (usize, f64) {
    const D: usize = 8;
    let hay_d: Vec<f64> = hay.iter().step_by(D).copied().collect();
    let probe_d: Vec<f64> = probe.iter().step_by(D).copied().collect();
    let coarse = (0..hay_d.len().saturating_sub(probe_d.len()))
        .map(|o| (o, correlation_at(&hay_d, &probe_d, o)))
        .fold((0, f64::MIN), |b, x| if x.1 > b.1 { x } else { b });
    let centre = coarse.0 * D;
    let lo = centre.saturating_sub(2 * D);
    let hi = (centre + 2 * D).min(hay.len().saturating_sub(probe.len()));
    (lo..=hi)
        .map(|o| (o, correlation_at(hay, probe, o)))
        .fold((0, f64::MIN), |b, x| if x.1 > b.1 { x } else { b })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_on_real_drivers_in_a_vm() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let vm = here.join("tests/vm");
    let vmdir = PathBuf::from(std::env::var("VMDIR").unwrap_or("/tmp/gemlive-vm".into()));
    let required = std::env::var("REQUIRE_VM").is_ok();
    if !vmdir.join("initramfs.cpio.gz").exists() {
        assert!(
            !required,
            "REQUIRE_VM=1 but no VM at {} (run tests/vm/setup-host.sh)",
            vmdir.display()
        );
        eprintln!(
            "SKIP: no test VM at {} (run tests/vm/setup-host.sh)",
            vmdir.display()
        );
        return;
    }
    let mut sv = Server::start().await;
    let port = sv.port();

    let share = support::vm_share(
        "vmhw",
        &[
            "scenario/run.sh",
            "scenario/record.py",
            "scenario/modules",
            "mjpeg_producer.py",
            "relay.py",
        ],
    );
    // mic: the demo's speech-like recording, 4 times over (about 35 s)
    let mic: Vec<u8> = std::iter::repeat_n(gemlive::demo::demo_mic(), 4)
        .flatten()
        .collect();
    std::fs::write(share.join("mic.raw"), &mic).unwrap();
    let cam: Vec<u8> = (0..7).flat_map(gemlive::demo::camera_frame).collect();
    std::fs::write(share.join("camera.mjpeg"), cam).unwrap();
    // Noise suppression off: the mic check correlates what arrives with the signal fed in.
    std::fs::write(
        share.join("gemlive.toml"),
        format!(
            "[live]\nendpoint = \"ws://127.0.0.1:{port}{}\"\n\n[audio]\ncapture_device = \"plughw:Loopback,1,0\"\nplayback_device = \"plughw:Loopback,0,1\"\necho = \"none\"\nnoise_suppression = \"off\"\n\n[video]\ndevice = \"/dev/video10\"\n\n[session]\nwake = \"button\"\n\n[button]\nline = \"BTN\"\nled_line = \"LED\"\nmute_line = \"MUTE\"\ndebounce_ms = 10\n",
            gemlive::standin::PATH
        ),
    )
    .unwrap();
    std::fs::write(
        share.join("vars"),
        format!("DAEMON={}\nPORT={port}\n", exe().display()),
    )
    .unwrap();

    let vmrun = vm.join("vmrun.sh");
    let share2 = share.clone();
    let vmdir2 = vmdir.clone();
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(vmrun)
            .arg(&share2)
            .env("VMDIR", vmdir2)
            .env("HOSTFWD_PORTS", port.to_string())
            .env("TIMEOUT", "300")
            .stdin(std::process::Stdio::null())
            .output()
    });

    // --- the far end's script ---
    let mut seen = Seen::default();
    assert!(
        sv.pump(&mut seen, Duration::from_secs(180), |s| !s
            .setups
            .is_empty())
            .await,
        "the button press started a session (VM boot included)"
    );
    sv.send(0, setup_complete());
    assert!(
        sv.pump(&mut seen, Duration::from_secs(30), |s| s.audio[0].len()
            >= 4 * 32_000)
            .await
    );
    // reply 1: 1 s of 600 Hz, delivered in a burst like the service does
    for c in tone(600.0, 1.0, 24_000.0).chunks(9_600) {
        sv.send(0, server_audio(c));
    }
    sv.send(0, server_content("turnComplete"));
    sv.pump(&mut seen, Duration::from_secs(3), |_| false).await;
    // reply 2: 5 s of 800 Hz, interrupted after about 1 s of playback
    for c in tone(800.0, 5.0, 24_000.0).chunks(9_600) {
        sv.send(0, server_audio(c));
    }
    sv.pump(&mut seen, Duration::from_millis(1_200), |_| false)
        .await;
    sv.send(0, server_content("interrupted"));
    sv.send(0, server_content("turnComplete"));
    sv.pump(&mut seen, Duration::from_secs(3), |_| false).await;
    // A kitchen timer that ends after the guest's long press has closed the session.
    sv.send(
        0,
        tool_call(
            "tm",
            "set_timer",
            serde_json::json!({"duration_s": 40, "label": "vm"}),
        ),
    );
    assert!(
        sv.pump(&mut seen, Duration::from_secs(5), |s| s
            .others
            .iter()
            .any(|(_, v)| v.to_string().contains("\"toolResponse\"")))
            .await,
        "set_timer answered"
    );
    std::fs::write(share.join("host_done"), "1").unwrap();
    assert!(
        sv.pump(&mut seen, Duration::from_secs(60), |s| s
            .closed(0)
            .is_some())
            .await,
        "the long press ended the session"
    );
    assert_eq!(seen.closed(0), Some(1000));

    let out = run.await.unwrap().unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    let daemon_log = std::fs::read_to_string(share.join("daemon.log")).unwrap_or_default();
    println!("--- daemon log ---\n{daemon_log}");
    assert!(
        out.status.success(),
        "guest script failed: {:?}\n{console}",
        out.status
    );
    let r: HashMap<String, String> = std::fs::read_to_string(share.join("results"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    println!("guest results: {r:?}");
    assert_eq!(r["daemon_rc"], "0");
    assert_eq!(r["led_before"], "0", "LED off while idle");
    assert_eq!(r["led_on"], "1", "LED on during the session");
    assert_eq!(r["led_after"], "0", "LED off after the long press");
    // The mute switch, 4 s on during the session: the LED blinked, then showed the session
    // again; the server was told the stream ended and got no audio meanwhile.
    let ones: u32 = r["mute_led_ones"].parse().unwrap();
    let zeros: u32 = r["mute_led_zeros"].parse().unwrap();
    assert!(
        ones >= 4 && zeros >= 4,
        "the LED blinks while muted: {ones} on, {zeros} off"
    );
    assert_eq!(
        r["led_unmuted"], "1",
        "the LED shows the session again once unmuted"
    );
    assert!(
        seen.others
            .iter()
            .any(|(_, v)| v["realtimeInput"]["audioStreamEnd"] == true),
        "audioStreamEnd sent when muted"
    );
    for line in [
        "the microphone is muted: no audio leaves the box",
        "state: muted (listening)",
        "the microphone is on again",
    ] {
        assert!(daemon_log.contains(line), "{line}: {daemon_log}");
    }
    let at = |what: &str| -> f64 {
        daemon_log
            .lines()
            .find(|l| l.contains(what))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{what} in the daemon log"))
    };
    // The guest holds the switch for about 4 s (longer on a slow emulated CPU): the audio the
    // stand-in got falls short of the session by just that long.
    let session_s = at("session ended: long press") - at("session starting");
    let muted_s = at("the microphone is on again") - at("the microphone is muted");
    let received_s = seen.audio[0].len() as f64 / 32_000.0;
    println!(
        "mute: session {session_s:.2} s, muted {muted_s:.2} s, mic audio received {received_s:.2} s"
    );
    assert!(muted_s >= 3.5, "muted for {muted_s:.2} s");
    assert!(
        (session_s - received_s - muted_s).abs() < 0.6,
        "no mic audio was sent while muted: session {session_s:.2} s, muted {muted_s:.2} s, received {received_s:.2} s"
    );
    // The timer rang after the session: the LED blinked (250 ms a step), a short press
    // silenced it, and that press started nothing.
    assert_eq!(
        r["timer_led_flips"], "6",
        "the LED blinks while the timer rings"
    );
    assert_eq!(r["silenced_led_flips"], "0", "a press silences the timer");
    assert_eq!(r["led_silenced"], "0", "the LED is back off (no session)");
    assert!(
        daemon_log.contains("timer vm (40 s) ended: ringing"),
        "{daemon_log}"
    );
    assert!(
        daemon_log.contains("button: timer silenced"),
        "{daemon_log}"
    );
    assert_eq!(
        daemon_log.matches("session starting").count(),
        1,
        "the silencing press started no session"
    );

    // Mic: what the stand-in got is the mic signal (real devices start at any offset).
    let got = samples(&seen.audio[0]);
    let probe = &got[got.len() / 2..got.len() / 2 + 16_000];
    let (off, c) = best_correlation(&samples(&mic[..(mic.len().min(32_000 * 20))]), probe);
    println!("mic correlation {c:.3} at offset {off}");
    assert!(
        c > 0.95,
        "mic audio matches the signal fed to snd-aloop: {c}"
    );

    // Video: ≤ 1 frame/s, each a 768×768 JPEG.
    let frames: Vec<Vec<u8>> = seen
        .others
        .iter()
        .filter_map(|(_, v)| client_video(v))
        .collect();
    let session_s = daemon_log
        .lines()
        .find_map(|l| {
            l.split(" ended after ")
                .nth(1)?
                .split(" s ")
                .next()?
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(60.0);
    println!(
        "{} camera frames in a {session_s:.1} s session",
        frames.len()
    );
    assert!(frames.len() >= 2, "camera frames arrive");
    assert!(
        frames.len() as f64 <= session_s + 1.0,
        "at most one frame per second: {} in {session_s} s",
        frames.len()
    );
    for f in &frames {
        assert_eq!(gemlive::video::jpeg::jpeg_size(f), Some((768, 768)));
    }

    // Speaker: reply 1 at 600 Hz for about 1 s, then reply 2 at 800 Hz, cut short.
    let spk = samples(&std::fs::read(share.join("speaker.raw")).unwrap());
    let runs = loud_runs(&spk, 24_000.0);
    println!(
        "speaker loud runs (s): {:?}",
        runs.iter()
            .map(|(s, e)| (*s as f64 / 24e3, *e as f64 / 24e3))
            .collect::<Vec<_>>()
    );
    let long: Vec<&(usize, usize)> = runs.iter().filter(|(s, e)| e - s > 12_000).collect();
    assert!(
        long.len() >= 2,
        "both replies reached the speaker: {runs:?}"
    );
    let f1 = frequency(&spk[long[0].0..long[0].1], 24_000.0);
    let f2 = frequency(&spk[long[1].0..long[1].1], 24_000.0);
    println!("reply frequencies at the speaker: {f1:.0} Hz, {f2:.0} Hz");
    assert!(
        (f1 - 600.0).abs() < 15.0 && (f2 - 800.0).abs() < 15.0,
        "right speed: {f1} {f2}"
    );
    let len2 = (long[1].1 - long[1].0) as f64 / 24_000.0;
    assert!(len2 < 3.0, "reply 2 was cut short ({len2:.2} s of 5 s)");

    // Interrupt → silence: the daemon's monotonic time of `interrupted` against the monotonic
    // time of the last loud sample of reply 2 in the recording.
    let t_int: f64 = daemon_log
        .lines()
        .find_map(|l| {
            l.split("(monotonic ")
                .nth(1)?
                .split(" s)")
                .next()?
                .parse()
                .ok()
        })
        .expect("interrupted logged with its monotonic time");
    let times: Vec<(usize, f64)> = std::fs::read_to_string(share.join("speaker.times"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    let last_loud = long[1].1;
    let t_last = times
        .iter()
        .find(|(n, _)| *n >= last_loud)
        .map(|(n, t)| t - (*n - last_loud) as f64 / 24_000.0)
        .expect("recording covers the interruption");
    let latency_ms = (t_last - t_int) * 1_000.0;
    println!("interrupt -> silence at the speaker: {latency_ms:.1} ms (ALSA period 20 ms)");
    assert!(
        latency_ms < 250.0,
        "speaker silent soon after interrupted: {latency_ms:.1} ms"
    );
    // The camera left and came back: the loss was logged once, video resumed, audio went on.
    let gone = daemon_log
        .find("video paused")
        .expect("the camera loss is logged");
    let back = daemon_log
        .find("camera `/dev/video10` is back")
        .expect("the camera's return is logged");
    assert!(back > gone);
    assert!(
        daemon_log[back..].contains("sent a "),
        "camera frames are sent again after the camera returns"
    );
    // Each outage is logged once (not once per retry): one "video paused" per "is back". (With
    // exclusive_caps the node is not a camera until the producer streams, so the daemon may
    // also see an outage at start-up.)
    // (Only the camera's lines: the sound device may also come up late and log its own.)
    assert_eq!(
        daemon_log.matches("video paused").count(),
        daemon_log.matches("camera `/dev/video10` is back").count(),
        "each camera outage logged once"
    );
    let summary = daemon_log
        .lines()
        .find(|l| l.contains("stopped: samples captured"))
        .unwrap_or("no summary");
    println!("{summary}");
    assert!(
        summary.contains("/ dropped 0 /"),
        "no mic audio dropped while the camera was away"
    );
    let _ = std::fs::remove_dir_all(&share);
}
