//! `gemlive calibrate-echo` against a private PulseAudio whose loopback (speaker monitor into
//! the mic) has a known latency: the reported delay follows it.
//!
//! Skips loudly without PulseAudio unless `REQUIRE_PULSE` is set (CI installs it).

mod support;

use std::process::Command;

use gemlive::demo::{MIC_PCM, SPEAKER_PCM};
use support::exe;
use support::pulse::Pulse;

/// Runs the command with a loopback of `latency_ms`; returns the reported delay and the output.
fn calibrate(latency_ms: u32) -> Option<(f64, String)> {
    let pa = Pulse::start(&format!("cal{latency_ms}"), latency_ms, 65_536 / 2)?;
    let conf = pa.dir.join("asound.conf");
    std::fs::write(&conf, pa.alsa_conf(MIC_PCM, SPEAKER_PCM)).unwrap();
    let cfg = pa.dir.join("gemlive.toml");
    std::fs::write(
        &cfg,
        format!("[audio]\ncapture_device = \"{MIC_PCM}\"\nplayback_device = \"{SPEAKER_PCM}\"\n"),
    )
    .unwrap();
    let out = Command::new(exe())
        .arg("-v")
        .arg("--config")
        .arg(&cfg)
        .arg("calibrate-echo")
        .env("ALSA_CONFIG_PATH", &conf)
        .env_remove("GEMLIVE_CONFIG")
        .output()
        .expect("run gemlive");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("--- loopback latency {latency_ms} ms ---\n{text}");
    assert!(out.status.success(), "{text}");
    let delay = text
        .lines()
        .find_map(|l| l.strip_prefix("acoustic delay: "))
        .and_then(|l| l.strip_suffix(" ms"))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no delay reported: {text}"));
    // The two bursts are measured independently: on a fixed path they must agree.
    let bursts: Vec<f64> = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("noise bursts: "))
        .map(|l| {
            l.split(';')
                .next()
                .unwrap_or("")
                .split(',')
                .filter_map(|v| v.trim().strip_suffix(" ms")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(bursts.len(), 2, "two burst delays reported: {text}");
    assert!(
        (bursts[0] - bursts[1]).abs() <= 5.0,
        "bursts disagree: {bursts:?}\n{text}"
    );
    Some((delay, text))
}

#[test]
fn the_reported_delay_follows_the_real_one() {
    let Some((short, text)) = calibrate(100) else {
        return;
    };
    assert!(
        text.contains("echo level:") && text.contains("ERLE:"),
        "{text}"
    );
    assert!(
        !text.contains("different cards") && !text.contains("clips"),
        "{text}"
    );
    let Some((long, _)) = calibrate(250) else {
        return;
    };
    // module-loopback only steers towards its configured latency (adaptively, over seconds):
    // on a loaded CI machine a 100 ms loopback ran at 82 ms while a 250 ms one ran at 251 ms.
    // What the real delay was is therefore known to about ±30 ms; what calibrate-echo must get
    // right is that its two independent bursts agree (checked above) and that the delay follows
    // the loopback's.
    assert!(
        ((long - short) - 150.0).abs() <= 30.0,
        "delays {short:.1} and {long:.1} ms: the difference should be about 150 ms"
    );
    assert!(
        (60.0..=160.0).contains(&short),
        "delay {short:.1} ms for a 100 ms loopback"
    );
}
