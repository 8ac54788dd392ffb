//! A server that misbehaves (a proxy, a bug: no malice needed): unplayable audio rates, text
//! that tries to forge log lines, floods of bad frames, transcripts that never end and reply
//! chunks near the message limit. The daemon must keep playing what is valid, keep its log one
//! honest line per record, stay small, and stop promptly.

use std::time::{Duration, Instant};

use base64::Engine;
use gemlive::demo::Rig;
use gemlive::standin::{server_audio, server_content};
use serde_json::{json, Value};

use crate::support::{exe, pcm, Cmd, Seen, Server, KEY};

fn audio_at(rate: &str, pcm: &[u8]) -> Value {
    json!({"serverContent": {"modelTurn": {"parts": [{"inlineData": {
        "mimeType": format!("audio/pcm;rate={rate}"),
        "data": base64::engine::general_purpose::STANDARD.encode(pcm)
    }}]}}})
}

async fn start(name: &str) -> (Server, Rig, Seen) {
    let mut sv = Server::start().await;
    let mut rig = Rig::new(name, &pcm(5, 30 * 32_000), &sv.url, "", "").unwrap();
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    let mut seen = Seen::default();
    sv.ready(&mut seen, &[]).await;
    (sv, rig, seen)
}

/// Peak resident memory of the daemon so far, bytes.
fn peak_rss(rig: &Rig) -> u64 {
    let pid = rig.pid().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Stops the daemon; it must exit 0 within 2 s whatever it was doing. Its log must stay under
/// 1 MB a minute (`since`: when the attack began), one line per record.
fn stop(mut rig: Rig, what: &str, since: Instant) -> String {
    // A burst shorter than the rate limiter's 10 s window is judged as if spread over it.
    let minutes = since.elapsed().as_secs_f64().max(10.0) / 60.0;
    let t = Instant::now();
    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let took = t.elapsed();
    let logs = rig.logs();
    assert!(status.success(), "{what}: exit {status:?}\n{logs}");
    assert!(took <= Duration::from_secs(2), "{what}: stop took {took:?}");
    for line in logs.lines() {
        assert!(
            !line.chars().any(char::is_control),
            "{what}: raw control character in {line:?}"
        );
    }
    assert!(!logs.contains(KEY), "{what}: key in the log");
    let rate = logs.len() as f64 / minutes;
    println!(
        "{what}: {} bytes of log, {rate:.0} bytes a minute",
        logs.len()
    );
    assert!(rate < 1e6, "{what}: {rate:.0} bytes of log a minute");
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplayable_rate_is_skipped_and_the_next_reply_plays_in_full() {
    let t0 = Instant::now();
    let (sv, rig, mut seen) = start("hostile-rate").await;
    let mut sv = sv;
    // rate=100 would have held the device for seconds; rate=1 for minutes.
    sv.send(0, audio_at("100", &pcm(6, 48_000)));
    sv.send(0, audio_at("1", &pcm(7, 4_800)));
    let good = pcm(8, 9_600); // 200 ms at 24 kHz
    sv.send(0, server_audio(&good));
    sv.send(0, server_content("turnComplete"));
    // A 16 kHz reply is resampled onto the open device, never a reopen.
    sv.send(0, audio_at("16000", &pcm(9, 6_400)));
    sv.send(0, server_content("turnComplete"));
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && rig.speaker().len() < good.len() + 9_600 {
        sv.pump(&mut seen, Duration::from_millis(100), |_| false)
            .await;
    }
    let speaker = rig.speaker();
    assert!(
        speaker.windows(good.len()).any(|w| w == good.as_slice()),
        "the valid reply reached the speaker byte for byte ({} bytes played)",
        speaker.len()
    );
    assert_eq!(
        speaker.len(),
        good.len() + 9_600,
        "the 16 kHz reply played as 24 kHz (200 ms), the bad parts not at all"
    );
    let logs = stop(rig, "rates", t0);
    assert!(logs.contains("skipping a reply audio part"), "{logs}");
    assert_eq!(
        logs.matches("playing to").count(),
        1,
        "one device open: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_text_cannot_forge_or_flood_the_log() {
    let (mut sv, rig, mut seen) = start("hostile-log").await;
    let forged = "hello\n   9.999 ERROR forged line\r\x07\x1b[31mred";
    sv.send(
        0,
        json!({"serverContent": {"modelTurn": {"parts": [{"text": forged}]}}}),
    );
    sv.send(
        0,
        json!({"serverContent": {"outputTranscription": {"text": "said\nERROR forged too"}}}),
    );
    sv.send(0, server_content("turnComplete"));
    // A whole model reply as one text part: one line, cut.
    sv.send(
        0,
        json!({"serverContent": {"modelTurn": {"parts": [{"text": "x".repeat(1 << 20)}]}}}),
    );
    // Then ten seconds of everything at once, 10,000 malformed frames a second among them:
    // the log must stay under 1 MB a minute.
    let t0 = Instant::now();
    for round in 0..10 {
        for _ in 0..10_000 {
            sv.cmd(0, Cmd::Raw(b"not json at all".to_vec(), false));
        }
        for _ in 0..100 {
            sv.send(
                0,
                json!({"serverContent": {"modelTurn": {"parts": [{"text": forged}]}}}),
            );
            sv.send(0, audio_at("3", &pcm(round, 960)));
        }
        sv.send(
            0,
            json!({"toolCall": {"functionCalls": [{"id": format!("flood-{round}"),
                "name": "no_such_tool\n9.999 ERROR forged", "args": {"x": "y".repeat(100_000)}}]}}),
        );
        sv.pump(&mut seen, Duration::from_secs(1), |_| false).await;
    }
    let logs = stop(rig, "log", t0);
    assert!(
        !logs
            .lines()
            .any(|l| l.trim_start().starts_with("9.999 ERROR")),
        "a forged line: {logs}"
    );
    assert!(
        logs.contains(r"hello\n   9.999 ERROR forged line\r\u{7}\u{1b}[31mred"),
        "the text as one escaped line: {logs}"
    );
    assert!(logs.contains(r"said\nERROR forged too"), "{logs}");
    let malformed = logs.matches("skipping a malformed server frame").count();
    assert!(
        (1..=12).contains(&malformed),
        "{malformed} lines for 5,000 bad frames"
    );
    assert!(
        logs.contains("more like this") || logs.contains("were not logged (repeated too often)"),
        "the flood is summarised: {logs}"
    );
    let longest = logs.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_200, "a {longest}-byte log line");
    assert!(logs.len() < 200_000, "{} bytes of log", logs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_transcripts_and_huge_replies_stay_small() {
    let t0 = Instant::now();
    let (mut sv, rig, mut seen) = start("hostile-memory").await;
    // Transcripts that never see a turnComplete: 20 MB of them.
    let words = "word ".repeat(2_000);
    for _ in 0..2_000 {
        sv.send(
            0,
            json!({"serverContent": {"inputTranscription": {"text": words}}}),
        );
    }
    // Reply chunks near the 4 MiB message limit: 100 MB of audio offered.
    let big = pcm(10, 2_800_000);
    for _ in 0..36 {
        sv.send(0, server_audio(&big));
    }
    sv.pump(&mut seen, Duration::from_secs(8), |_| false).await;
    let peak = peak_rss(&rig);
    let logs = stop(rig, "memory", t0);
    println!("hostile memory: peak RSS {:.1} MB", peak as f64 / 1e6);
    assert!(peak > 0 && peak < 64 << 20, "peak RSS {peak} bytes\n{logs}");
    assert!(logs.contains("playback queue full"), "{logs}");
}
