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
    // PulseAudio's loopback holds its configured latency to within a few ms; the devices'
    // own buffering is the same in both runs, so the difference is exact up to that.
    assert!(
        ((long - short) - 150.0).abs() <= 10.0,
        "delays {short:.1} and {long:.1} ms: the difference should be 150 ms"
    );
    assert!(
        (90.0..=160.0).contains(&short),
        "delay {short:.1} ms for a 100 ms loopback"
    );
}
