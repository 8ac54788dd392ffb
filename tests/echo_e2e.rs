//! End to end on a loudspeaker: the real `gemlive run` binary plays a long reply into a
//! private PulseAudio whose `module-loopback` carries it back into the microphone (delayed and
//! attenuated), while the stand-in records what the daemon sends.
//!
//! - `echo = "aec"`: the echo in what the stand-in receives is ≥ 25 dB below the echo at the
//!   mic, and a user talking over the next reply gets through and stops it locally.
//! - `echo = "none"`: the same echo arrives (the proof that the measurement can fail).
//! - `wake = "word"`: the phrase spoken over the box's own reply is heard on the canceller's
//!   output and stops the reply; the reply's echo alone never wakes it.
//!
//! Skips loudly without PulseAudio unless `REQUIRE_PULSE` is set (CI installs it).

mod support;

use std::time::Duration;

use gemlive::audio::echo::synth::{room, RoomSpec};
use gemlive::demo::{Rig, MIC_PCM, SPEAKER_PCM};
use gemlive::standin::{self, client_audio, server_audio, server_content, FromClient, StandIn};
use support::pulse::{db, energy, tone_energy, Pulse};
use support::{exe, KEY};
use tokio::time::{timeout, Instant};

/// The user's voice in this test: a 5 kHz tone, far from the reply's harmonics (< 3.8 kHz).
const USER_HZ: f64 = 5_000.0;

/// Keeps reading mic audio until `until`.
async fn pump(conn: &mut standin::Conn, mic: &mut Vec<u8>, until: Instant) {
    while Instant::now() < until {
        if let Ok(Some(FromClient::Json(v))) = timeout(Duration::from_millis(20), conn.recv()).await
        {
            if let Some(a) = client_audio(&v) {
                mic.extend(a);
            }
        }
    }
}

fn file_len(p: &std::path::Path) -> usize {
    std::fs::metadata(p).map(|m| m.len() as usize).unwrap_or(0) & !1
}

/// A speech-like reply of `secs` at 24 kHz, as S16_LE bytes.
fn reply(secs: f64, seed: u32) -> Vec<u8> {
    let r = room(RoomSpec {
        seconds: secs,
        rir_s: 0.001,
        double_talk: (0.0, 0.0),
        seed,
        ..RoomSpec::default()
    });
    r.far24.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// The longest stretch of `pcm` (24 kHz S16_LE) between `from` and `to` seconds where the
/// reply is silent (10 ms frames under -60 dBFS): (start, length) in seconds.
fn longest_pause(pcm: &[u8], from: f64, to: f64) -> (f64, f64) {
    let frames: Vec<bool> = pcm
        .chunks(480)
        .map(|f| {
            let e: f64 = f
                .chunks_exact(2)
                .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])).powi(2))
                .sum();
            e / (f.len() / 2).max(1) as f64 > (32_768.0f64 * 1e-3).powi(2)
        })
        .collect();
    let (mut best, mut run_start) = ((from, 0.0), None);
    for (i, &loud) in frames.iter().enumerate() {
        let t = i as f64 * 0.01;
        match (loud || t < from || t > to, run_start) {
            (false, None) => run_start = Some(t),
            (true, Some(s)) => {
                if t - s > best.1 {
                    best = (s, t - s);
                }
                run_start = None;
            }
            _ => {}
        }
    }
    assert!(
        best.1 >= 0.45,
        "the reply has a pause the detector can use: {best:?}"
    );
    best
}

/// One PulseAudio test at a time: two private servers and two daemons on a 2-core machine
/// would starve each other's real-time audio.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// RMS of S16_LE bytes, in sample units.
fn rms(pcm: &[u8]) -> f64 {
    (energy(pcm) / (pcm.len() / 2).max(1) as f64).sqrt() * 32_768.0
}

async fn send_reply(conn: &mut standin::Conn, pcm: &[u8]) {
    for c in pcm.chunks(9_600) {
        conn.send(&server_audio(c)).await.unwrap();
    }
    conn.send(&server_content("turnComplete")).await.unwrap();
}

struct Measured {
    at_mic_db: f64,
    sent_db: f64,
    /// The daemon's log, shown when a figure fails.
    logs: String,
}

/// Runs one scenario; `None` if PulseAudio is unavailable.
async fn scenario(mode: &str, with_user: bool) -> Option<Measured> {
    // 120 ms acoustic path, speaker volume 50 % (PulseAudio's cubic scale: about −18 dB).
    let mut pa = Pulse::start(mode, 120, 32_768)?;
    let si = StandIn::bind().await.unwrap();
    let mut rig = Rig::new(
        &format!("echo-{mode}"),
        &[],
        &si.url(),
        "",
        &format!("echo = \"{mode}\""),
    )
    .unwrap();
    std::fs::write(&rig.alsa_conf, pa.alsa_conf(MIC_PCM, SPEAKER_PCM)).unwrap();
    let mic_rec = rig.dir.join("at-mic.raw");
    pa.record("mic.monitor", &mic_rec);
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    let mut conn = timeout(Duration::from_secs(15), si.accept())
        .await
        .expect("daemon connects")
        .unwrap();
    let _setup = conn.recv().await;
    conn.send(&standin::setup_complete()).await.unwrap();
    let mut sent = Vec::new();
    // Let both capture streams get going (PulseAudio capture takes ~2 s to start).
    let start = Instant::now();
    while sent.len() < 16_000 && start.elapsed() < Duration::from_secs(15) {
        pump(
            &mut conn,
            &mut sent,
            Instant::now() + Duration::from_millis(200),
        )
        .await;
    }
    assert!(sent.len() >= 16_000, "mic audio flows: {}", rig.logs());

    // Phase A: an 8 s reply with nobody talking. Everything at the mic is echo.
    let a = reply(8.0, 7);
    let (sent_a0, mic_a0) = (sent.len(), file_len(&mic_rec));
    send_reply(&mut conn, &a).await;
    pump(
        &mut conn,
        &mut sent,
        Instant::now() + Duration::from_millis(9_500),
    )
    .await;
    let (sent_a1, mic_a1) = (sent.len(), file_len(&mic_rec));
    let at_mic = std::fs::read(&mic_rec).unwrap();
    let e_mic = energy(&at_mic[mic_a0..mic_a1]);
    let e_sent = energy(&sent[sent_a0..sent_a1]);
    // Per half second, for diagnosis (the two streams are only roughly aligned).
    for (i, (mc, sc)) in at_mic[mic_a0..mic_a1]
        .chunks(16_000)
        .zip(sent[sent_a0..sent_a1].chunks(16_000))
        .enumerate()
    {
        println!(
            "  {:.1} s: mic {:.1} dB, sent {:.1} dB",
            i as f64 * 0.5,
            db(energy(mc)),
            db(energy(sc))
        );
    }
    let mut m = Measured {
        at_mic_db: db(e_mic),
        sent_db: db(e_sent),
        logs: String::new(),
    };
    println!(
        "echo = {mode}: echo energy at the mic {:.1} dB, in what the stand-in received {:.1} dB: {:.1} dB below ({} ms at the mic, {} ms sent)",
        m.at_mic_db,
        m.sent_db,
        m.at_mic_db - m.sent_db,
        (mic_a1 - mic_a0) / 32,
        (sent_a1 - sent_a0) / 32
    );

    if with_user {
        // Phase B: the next reply; the user talks over it, ~8 dB above the echo. AEC3
        // attenuates a user during double talk by ~7 dB (`docs/aec.md`, "Measured results"):
        // allow 10. The local detector can only tell them from the echo where the reply
        // pauses (a user that much louder than the echo does not beat the loudest echo of
        // the last 300 ms by 10 dB while the reply talks), so the user talks across the
        // reply's longest pause: placed by the reply itself, not by luck.
        let b = reply(8.0, 8);
        let (gap_s, gap_len) = longest_pause(&b, 2.0, 6.0);
        let user_from = gap_s - 0.75;
        let user_len = gap_len + 1.5;
        println!(
            "the reply's longest pause: {gap_s:.2} s + {gap_len:.2} s; the user talks from {user_from:.2} s for {user_len:.2} s"
        );
        let (sent_b0, mic_b0) = (sent.len(), file_len(&mic_rec));
        let played_before = rig
            .logs()
            .lines()
            .filter(|l| l.contains("local barge-in: speaker stopped"))
            .count();
        send_reply(&mut conn, &b).await;
        pump(
            &mut conn,
            &mut sent,
            Instant::now() + Duration::from_secs_f64(user_from),
        )
        .await;
        let n = (user_len * 16_000.0) as usize;
        let user: Vec<u8> = (0..n)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                let ramp = (t / 0.01).min((user_len - t) / 0.01).clamp(0.0, 1.0);
                ((2.0 * std::f64::consts::PI * USER_HZ * t).sin() * 8_000.0 * ramp) as i16
            })
            .flat_map(|s| s.to_le_bytes())
            .collect();
        pa.play("mic", &user);
        pump(
            &mut conn,
            &mut sent,
            Instant::now() + Duration::from_secs_f64(user_len + 1.5),
        )
        .await;
        let at_mic = std::fs::read(&mic_rec).unwrap();
        let mic_b1 = file_len(&mic_rec);
        let t_mic = tone_energy(&at_mic[mic_b0..mic_b1], USER_HZ, 16_000.0);
        let t_sent = tone_energy(&sent[sent_b0..], USER_HZ, 16_000.0);
        println!(
            "user talking over the reply: {:.1} dB at the mic, {:.1} dB sent ({:+.1} dB)",
            db(t_mic),
            db(t_sent),
            db(t_sent) - db(t_mic)
        );
        assert!(
            db(t_sent) - db(t_mic) > -10.0,
            "the user's voice gets through the canceller: {:.1} dB\n{}",
            db(t_sent) - db(t_mic),
            rig.logs()
        );
        let logs = rig.logs();
        let stopped = logs
            .lines()
            .filter(|l| l.contains("local barge-in: speaker stopped"))
            .count();
        assert!(
            stopped > played_before,
            "the user's voice stops the reply locally: {logs}"
        );
    }
    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status:?}");
    let logs = rig.logs();
    if mode == "aec" {
        let line = logs
            .lines()
            .find(|l| l.contains("session echo:"))
            .unwrap_or("no echo summary");
        println!("{line}");
        // What moved under the canceller, for a figure that fails on a busy machine.
        for l in logs
            .lines()
            .filter(|l| l.contains("echo") && l.contains("DEBUG"))
        {
            println!("{l}");
        }
        assert!(line.contains("gate openings"), "{logs}");
    }
    m.logs = logs;
    Some(m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loudspeaker_echo_is_cancelled_and_the_user_still_gets_through() {
    let _serial = SERIAL.lock().await;
    let Some(aec) = scenario("aec", true).await else {
        return;
    };
    assert!(
        aec.at_mic_db - aec.sent_db >= 25.0,
        "echo only {:.1} dB below the mic with aec: {}",
        aec.at_mic_db - aec.sent_db,
        aec.logs
    );
    // The same room without cancellation: the echo arrives, so the measurement can fail.
    let Some(none) = scenario("none", false).await else {
        return;
    };
    assert!(
        none.at_mic_db - none.sent_db < 10.0,
        "with echo = none the echo must arrive: only {:.1} dB below",
        none.at_mic_db - none.sent_db
    );
    assert!(
        (none.at_mic_db - aec.at_mic_db).abs() < 6.0,
        "same echo at the mic in both runs: {:.1} vs {:.1} dB",
        none.at_mic_db,
        aec.at_mic_db
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wake_word_said_over_the_box_s_own_reply_stops_it() {
    let Some(phrase) = support::speech("Okay, Nabu.", "en-us", 140) else {
        return support::no_speech();
    };
    let _serial = SERIAL.lock().await;
    let Some(mut pa) = Pulse::start("wake-over-reply", 120, 32_768) else {
        return;
    };
    let si = StandIn::bind().await.unwrap();
    let mut rig = Rig::new(
        "echo-wake",
        &[],
        &si.url(),
        "",
        // espeak-ng's phrase scores 0.82-0.92 here, around the model's own cutoff of 0.85:
        // one run in three missed it. 0.75 is what `test-wake` would tell an owner to set.
        "echo = \"aec\"\n[session]\nwake = \"word\"\nchimes = false\n[wake]\ncutoff = 0.75",
    )
    .unwrap();
    std::fs::write(&rig.alsa_conf, pa.alsa_conf(MIC_PCM, SPEAKER_PCM)).unwrap();
    let speaker_rec = rig.dir.join("speaker.raw");
    pa.record("speaker.monitor", &speaker_rec);
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    // Asleep: nothing connects until the phrase (PulseAudio capture takes ~2 s to start).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        timeout(Duration::from_millis(200), si.accept())
            .await
            .is_err(),
        "no session before the phrase\n{}",
        rig.logs()
    );
    // The reply as loud as in the echo test; the phrase 8 dB above its echo at the mic (the
    // speaker sink at 50 % is about -18 dB, the loopback adds nothing).
    let b = reply(10.0, 9);
    let echo_rms = rms(&b) * 10f64.powf(-18.0 / 20.0);
    let g = echo_rms * 10f64.powf(8.0 / 20.0) / rms(&phrase);
    let loud: Vec<u8> = phrase
        .chunks_exact(2)
        .flat_map(|c| {
            let v = f64::from(i16::from_le_bytes([c[0], c[1]])) * g;
            (v.round().clamp(-32_768.0, 32_767.0) as i16).to_le_bytes()
        })
        .collect();
    pa.play("mic", &loud);
    let mut conn = timeout(Duration::from_secs(10), si.accept())
        .await
        .unwrap_or_else(|_| panic!("the phrase opens a session\n{}", rig.logs()))
        .unwrap();
    let _setup = conn.recv().await;
    conn.send(&standin::setup_complete()).await.unwrap();
    let mut sent = Vec::new();
    pump(
        &mut conn,
        &mut sent,
        Instant::now() + Duration::from_millis(1_500),
    )
    .await;
    // The box talks for 10 s; 3 s in (AEC3 has converged), the user says the phrase again.
    send_reply(&mut conn, &b).await;
    pump(
        &mut conn,
        &mut sent,
        Instant::now() + Duration::from_secs(3),
    )
    .await;
    let speaker_len = || {
        std::fs::metadata(&speaker_rec)
            .map(|m| m.len())
            .unwrap_or(0) as usize
    };
    let mut said_at = speaker_len();
    pa.play("mic", &loud);
    pump(
        &mut conn,
        &mut sent,
        Instant::now() + Duration::from_secs(2),
    )
    .await;
    // The phrase scores near the cutoff over the reply (one CI run in many missed it, with
    // ERLE 60 dB): like a person, say it once more 2 s later. The checks below then hold for
    // the phrase that was heard; a second miss fails.
    let repeated = !rig.logs().contains("%): stopping the reply");
    if repeated {
        println!("the phrase over the reply was not heard: saying it again");
        said_at = speaker_len();
        pa.play("mic", &loud);
    }
    pump(
        &mut conn,
        &mut sent,
        Instant::now() + Duration::from_secs(if repeated { 4 } else { 6 }),
    )
    .await;
    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let logs = rig.logs();
    assert!(status.success(), "{status:?}\n{logs}");
    let detections: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("wake word \""))
        .collect();
    for l in &detections {
        println!("{l}");
    }
    assert!(
        logs.contains("%): stopping the reply"),
        "the phrase over the reply stops it\n{logs}"
    );
    assert_eq!(
        detections.len(),
        2,
        "one detection to wake, one over the reply; the echo alone wakes nothing\n{logs}"
    );
    // What the speaker played: the reply starts, and stops within a second and a half of the
    // phrase (about 0.9 s long, then the detector's window), not 7 s later.
    let played = std::fs::read(&speaker_rec).unwrap();
    let loud_frames: Vec<usize> = played
        .chunks(320)
        .enumerate()
        .filter(|(_, f)| rms(f) > 100.0)
        .map(|(i, _)| i)
        .collect();
    let first = *loud_frames.first().expect("the reply played");
    let last = *loud_frames.last().expect("the reply played");
    let said = said_at / 320;
    println!(
        "reply played from {:.2} s; the phrase at {:.2} s; the speaker silent from {:.2} s",
        first as f64 / 100.0,
        said as f64 / 100.0,
        last as f64 / 100.0
    );
    assert!(
        first < said && last < said + 150,
        "the reply stopped {:.2} s after the phrase began\n{logs}",
        (last as f64 - said as f64) / 100.0
    );
}
