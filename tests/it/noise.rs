//! `[audio] noise_suppression` and `[audio] agc`: the real daemon, a file-PCM mic carrying a
//! quiet espeak-ng talker over a fan. What reaches the stand-in has less fan (measured where
//! nobody talks), the speech louder, and the speech still there (correlated with the clean
//! speech where it talks).

use crate::support;

use std::time::Duration;

use gemlive::demo::Rig;
use gemlive::standin::{client_audio, FromClient, StandIn};
use support::{exe, fan_noise, speech, KEY};
use tokio::time::{timeout, Instant};

const FRAME: usize = 160;

fn samples(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(2)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
        .collect()
}

fn db(x: f64) -> f64 {
    10.0 * x.max(1e-12).log10()
}

/// Mean power of `x` over the 10 ms frames `pick` selects.
fn power(x: &[f64], pick: &[bool]) -> f64 {
    let (mut e, mut n) = (0.0, 0usize);
    for (f, &p) in x.chunks(FRAME).zip(pick) {
        if p {
            e += f.iter().map(|v| v * v).sum::<f64>();
            n += f.len();
        }
    }
    e / n.max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fan_goes_and_a_quiet_talker_comes_up() {
    let lines = [
        (
            "What time does the bakery on the corner open tomorrow?",
            "en-us",
        ),
        (
            "Please add milk, eggs and coffee to the shopping list.",
            "en-gb",
        ),
        (
            "How far is it from here to the railway station by bike?",
            "en-us+f3",
        ),
    ];
    let mut clean = vec![0.0; 16_000];
    for (text, voice) in lines {
        let Some(s) = speech(text, voice, 160) else {
            return support::no_speech();
        };
        clean.extend(samples(&s));
        clean.extend(std::iter::repeat_n(0.0, 16_000));
    }
    // A quiet talker (speech near -46 dBFS where it talks) over a fan 10 dB below the speech.
    let frame_power: Vec<f64> = clean
        .chunks(FRAME)
        .map(|f| f.iter().map(|v| v * v).sum::<f64>() / f.len() as f64)
        .collect();
    let max = frame_power.iter().copied().fold(0.0, f64::max);
    let talking: Vec<bool> = frame_power.iter().map(|&p| p > max * 1e-3).collect();
    // Noise only: nothing spoken in this frame or the five either side (the stages add a few
    // milliseconds of delay, and a word's edges must not count as fan).
    let silent: Vec<bool> = (0..frame_power.len())
        .map(|i| {
            (i.saturating_sub(5)..(i + 6).min(frame_power.len()))
                .all(|j| frame_power[j] < max * 1e-7)
        })
        .collect();
    let g = 32_768.0 * 10f64.powf(-46.0 / 20.0) / power(&clean, &talking).sqrt();
    let speech_only: Vec<f64> = clean.iter().map(|v| v * g).collect();
    let fan_rms = power(&speech_only, &talking).sqrt() * 10f64.powf(-10.0 / 20.0);
    let fan: Vec<f64> = fan_noise(clean.len(), 5)
        .into_iter()
        .map(|v| v * fan_rms)
        .collect();
    let mic_f: Vec<f64> = speech_only
        .iter()
        .zip(&fan)
        .map(|(s, n)| (s + n).round().clamp(-32_768.0, 32_767.0))
        .collect();
    let mic: Vec<u8> = mic_f
        .iter()
        .flat_map(|&v| (v as i16).to_le_bytes())
        .collect();

    let si = StandIn::bind().await.unwrap();
    let mut rig = Rig::new(
        "noise",
        &mic,
        &si.url(),
        "",
        "chunk_ms = 40\nnoise_suppression = \"moderate\"\nagc = true",
    )
    .unwrap();
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    let mut conn = timeout(Duration::from_secs(10), si.accept())
        .await
        .expect("daemon connects")
        .unwrap();
    let _setup = conn.recv().await;
    conn.send(&gemlive::standin::setup_complete())
        .await
        .unwrap();
    let mut got = Vec::new();
    let start = Instant::now();
    let total = Duration::from_secs_f64(mic.len() as f64 / 32_000.0 + 1.0);
    while start.elapsed() < total && got.len() < mic.len() {
        if let Ok(Some(FromClient::Json(v))) = timeout(Duration::from_millis(50), conn.recv()).await
        {
            if let Some(a) = client_audio(&v) {
                got.extend(a);
            }
        }
    }
    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let logs = rig.logs();
    assert!(status.success(), "{status:?}\n{logs}");
    let out = samples(&got);
    assert!(
        out.len() + 16_000 >= mic_f.len(),
        "{} of {} samples arrived\n{logs}",
        out.len(),
        mic_f.len()
    );

    // Judge the second half: the suppressor's noise estimate and the gain have settled.
    let half = talking.len() / 2;
    let later =
        |v: &[bool]| -> Vec<bool> { v.iter().enumerate().map(|(i, &b)| b && i >= half).collect() };
    let (talk2, quiet2) = (later(&talking), later(&silent));
    let snr = |x: &[f64]| {
        let q = power(x, &quiet2);
        db((power(x, &talk2) - q).max(1e-12) / q)
    };
    let (snr_in, snr_out) = (snr(&mic_f), snr(&out));
    let speech_in = db(power(&speech_only, &talk2));
    let speech_out = db(power(&out, &talk2) - power(&out, &quiet2));
    // Where someone talks, the output still follows the clean speech (the shape of the
    // waveform, not only its level): normalised correlation at the best lag up to 20 ms. The
    // suppressor takes the speech's lowest band with the fan (the fan is 20 dB above it
    // there), so this is about 0.6-0.7, not the mic's 0.95; a signal that is not this speech
    // correlates near 0.
    let corr = (0..=320)
        .map(|lag| {
            let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
            for (i, &t) in talk2.iter().enumerate() {
                if !t {
                    continue;
                }
                for k in i * FRAME..(i + 1) * FRAME {
                    let (Some(&x), Some(&y)) = (speech_only.get(k), out.get(k + lag)) else {
                        continue;
                    };
                    xy += x * y;
                    xx += x * x;
                    yy += y * y;
                }
            }
            xy / (xx * yy).sqrt().max(1e-9)
        })
        .fold(f64::MIN, f64::max);
    println!(
        "SNR {snr_in:.1} -> {snr_out:.1} dB; speech {:.1} -> {:.1} dBFS; correlation with the clean speech {corr:.2}",
        speech_in - 90.3,
        speech_out - 90.3
    );
    assert!(
        snr_out >= snr_in + 8.0,
        "noise suppression: SNR {snr_in:.1} -> {snr_out:.1} dB\n{logs}"
    );
    assert!(
        speech_out >= speech_in + 10.0,
        "automatic gain: speech {speech_in:.1} -> {speech_out:.1} dB\n{logs}"
    );
    assert!(corr > 0.5, "correlation {corr:.2}\n{logs}");
    assert!(
        logs.contains("chunks of 40 ms; noise suppression moderate, automatic gain on"),
        "the log says what cleans the mic\n{logs}"
    );
}
