//! Echo cancellation on the synthetic room (`docs/aec.md`, "Synthetic room"), run through
//! gemlive's own capture-side processing (`audio::echo::EchoProcessor`, the code the capture
//! thread runs).
//!
//! Rows "aec" use gemlive's delay search (`aec3::DelaySearch::DEFAULT`), "aec webrtc" WebRTC's
//! default, four times as costly on aarch64; they must cancel alike.
//!
//! Prints, per bulk delay: ERLE with only the far end talking (goal ≥ 35 dB), near-end
//! retention during double talk (goal ≥ −8 dB) and CPU per second of audio (goal ≤ 10 ms).
//! `cargo bench --bench aec` (`AEC_BENCH_DETAIL=1` adds the ERLE of every second).
//!
//! Then the idle bypass (AEC3 skipped while nothing has played for longer than the echo tail):
//! a room whose far end pauses for 6 s between two replies, with and without the bypass: the
//! ERLE in the first second after the pause (it must not need to re-converge), and the CPU.

use gemlive::audio::echo::aec3::DelaySearch;
use gemlive::audio::echo::synth::{erle_db, retention_db, room, run_with, RoomSpec};
use gemlive::config::EchoMode;

fn main() {
    println!("synthetic room: 30 s speech-like far end at -14 dBFS, HPF 250 Hz, RT60 0.3 s, echo -22 dBFS at the mic, near end SER -6 dB during double talk 20-26 s, noise -65 dBFS");
    println!(
        "{:<12} {:>9} {:>17} {:>16} {:>22} {:>12} {:>12}",
        "mode",
        "bulk ms",
        "ERLE far-only dB",
        "ERLE after DT dB",
        "DT near retention dB",
        "CPU ms/s",
        "AEC delay ms"
    );
    let mut worst = (f64::MAX, f64::MAX, 0.0f64);
    for (label, mode, search, delays) in [
        ("none", EchoMode::None, DelaySearch::DEFAULT, &[80.0][..]),
        (
            "aec",
            EchoMode::Aec,
            DelaySearch::DEFAULT,
            &[40.0, 80.0, 120.0, 220.0][..],
        ),
        (
            "aec webrtc",
            EchoMode::Aec,
            DelaySearch::WEBRTC,
            &[80.0, 220.0][..],
        ),
    ] {
        for &bulk in delays {
            let r = room(RoomSpec {
                bulk_delay_s: bulk / 1000.0,
                seed: bulk as u32,
                ..RoomSpec::default()
            });
            let secs = r.mic.len() as f64 / 16_000.0;
            let (out, stats, spent) = run_with(&r, mode, true, search);
            let erle = erle_db(&r, &out, 5.0, 20.0);
            let after = erle_db(&r, &out, 26.5, 30.0);
            let keep = retention_db(&r, &out);
            let cpu = spent.as_secs_f64() * 1000.0 / secs;
            println!(
                "{:<12} {:>9.0} {:>17.1} {:>16.1} {:>22.1} {:>12.2} {:>12}",
                label,
                bulk,
                erle,
                after,
                keep,
                cpu,
                stats
                    .delay_ms()
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".into())
            );
            if std::env::var_os("AEC_BENCH_DETAIL").is_some() {
                let per: Vec<String> = (0..30)
                    .map(|s| format!("{:.0}", erle_db(&r, &out, s as f64, s as f64 + 1.0)))
                    .collect();
                println!(
                    "  per-second ERLE: {} | gate openings {} | out len {} vs mic {}",
                    per.join(" "),
                    stats
                        .gate_openings
                        .load(std::sync::atomic::Ordering::Relaxed),
                    out.len(),
                    r.mic.len()
                );
            }
            if label == "aec" {
                worst = (worst.0.min(erle), worst.1.min(keep), worst.2.max(cpu));
            }
        }
    }
    println!(
        "worst case with aec: ERLE {:.1} dB (goal >= 35), double-talk retention {:.1} dB (goal >= -8), CPU {:.2} ms per s of audio (goal <= 10)",
        worst.0, worst.1, worst.2
    );
    println!();
    println!("idle bypass: the far end pauses 10-16 s (two replies), bulk delay 80 ms");
    println!(
        "{:<16} {:>16} {:>20} {:>17} {:>22} {:>10} {:>12}",
        "AEC3 when idle",
        "ERLE 5-10 s dB",
        "ERLE 16.0-16.5 s dB",
        "ERLE 16-20 s dB",
        "DT near retention dB",
        "CPU ms/s",
        "bypassed %"
    );
    let r = room(RoomSpec {
        pause: (10.0, 16.0),
        seed: 80,
        ..RoomSpec::default()
    });
    let secs = r.mic.len() as f64 / 16_000.0;
    for (label, bypass) in [("runs (before)", false), ("bypassed (now)", true)] {
        let (out, stats, spent) = run_with(&r, EchoMode::Aec, bypass, DelaySearch::DEFAULT);
        let idle = stats
            .aec_idle_frames
            .load(std::sync::atomic::Ordering::Relaxed) as f64;
        let all = idle + stats.aec_frames.load(std::sync::atomic::Ordering::Relaxed) as f64;
        println!(
            "{:<16} {:>16.1} {:>20.1} {:>17.1} {:>22.1} {:>10.2} {:>12.1}",
            label,
            erle_db(&r, &out, 5.0, 10.0),
            erle_db(&r, &out, 16.0, 16.5),
            erle_db(&r, &out, 16.0, 20.0),
            retention_db(&r, &out),
            spent.as_secs_f64() * 1000.0 / secs,
            100.0 * idle / all.max(1.0)
        );
    }
}
