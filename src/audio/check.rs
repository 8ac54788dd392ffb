//! `gemlive test-audio`: the microphone and speaker check a user runs over SSH before anything
//! else ("does it hear me, is it too quiet, does it clip, does the speaker work?").
//!
//! It opens the configured PCMs exactly as the daemon does (`open_capture`/`open_playback`: S16_LE mono, 16 kHz in,
//! 24 kHz out), so a device that passes here is one the daemon can open. Blocking I/O on the
//! caller's thread: this is a one-shot command, not the daemon.

use std::time::{Duration, Instant};

use super::{dbfs, rms_i16, AudioError, Dir, INPUT_RATE_HZ, OUTPUT_RATE_HZ};

const BUFFER_MS: u32 = 200;
/// Windows for the loudest/quietest level: 100 ms is short enough to catch one word.
const WINDOW: usize = (INPUT_RATE_HZ / 10) as usize;

/// What the recording looked like.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub samples: usize,
    pub rms_dbfs: f64,
    pub peak_dbfs: f64,
    /// Loudest 100 ms window: the user's speech, if they spoke.
    pub loudest_dbfs: f64,
    /// Quietest 100 ms window: the room and the mic's own noise.
    pub floor_dbfs: f64,
    /// Samples at (or one step from) full scale.
    pub clipped: usize,
    /// Mean value relative to full scale, percent.
    pub dc_percent: f64,
    /// Every sample is exactly zero.
    pub digital_silence: bool,
}

pub fn analyse(s: &[i16]) -> Level {
    let peak = s.iter().map(|&x| i32::from(x).abs()).max().unwrap_or(0);
    let clipped = s.iter().filter(|&&x| x >= 32_766 || x <= -32_767).count();
    let mean = if s.is_empty() {
        0.0
    } else {
        s.iter().map(|&x| f64::from(x)).sum::<f64>() / s.len() as f64
    };
    let windows: Vec<f64> = s
        .chunks(WINDOW)
        .filter(|w| w.len() == WINDOW)
        .map(rms_i16)
        .collect();
    let loudest = windows.iter().copied().fold(0.0, f64::max);
    let floor = windows.iter().copied().fold(f64::INFINITY, f64::min);
    Level {
        samples: s.len(),
        rms_dbfs: dbfs(rms_i16(s)),
        peak_dbfs: dbfs(f64::from(peak)),
        loudest_dbfs: dbfs(loudest),
        floor_dbfs: if floor.is_finite() {
            dbfs(floor)
        } else {
            -120.0
        },
        clipped,
        dc_percent: 100.0 * mean / 32768.0,
        digital_silence: s.iter().all(|&x| x == 0),
    }
}

/// Problems (the daemon will not work well) and warnings (it may), in plain words with the fix.
pub fn verdict(l: &Level) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let clipped_pct = 100.0 * l.clipped as f64 / l.samples.max(1) as f64;
    if l.samples == 0 {
        problems.push("no audio was recorded".to_string());
    } else if l.digital_silence {
        problems.push(
            "digital silence (every sample is 0): the capture switch is off, the mic is muted, or \
             this is not the mic's device; check `alsamixer -c CARD` (F4 = capture) and \
             `gemlive list-devices`"
                .to_string(),
        );
    } else if l.loudest_dbfs < -60.0 {
        problems.push(format!(
            "almost nothing heard (loudest {:.1} dBFS): raise the capture gain in `alsamixer` \
             (F4) or check that the mic is plugged into this card",
            l.loudest_dbfs
        ));
    } else if l.loudest_dbfs < -40.0 {
        warnings.push(format!(
            "quiet (loudest {:.1} dBFS): speech at arm's length should reach about -30 to -12 \
             dBFS; speak during the test, or raise the capture gain (at its maximum already: \
             set `[audio] agc = true`)",
            l.loudest_dbfs
        ));
    }
    if clipped_pct > 0.1 {
        problems.push(format!(
            "clipping ({clipped_pct:.2} % of samples at full scale): lower the capture gain in \
             `alsamixer`; clipped speech is misheard and defeats echo cancellation"
        ));
    } else if l.clipped > 0 {
        warnings.push(format!(
            "{} samples clipped: the capture gain is at the edge, lower it a little",
            l.clipped
        ));
    }
    if l.dc_percent.abs() > 5.0 {
        warnings.push(format!(
            "DC offset of {:+.1} % of full scale: a faulty mic or a missing coupling capacitor",
            l.dc_percent
        ));
    }
    if l.floor_dbfs > -40.0 && !l.digital_silence {
        warnings.push(format!(
            "noisy (quietest 100 ms at {:.1} dBFS): a fan or mains hum near the mic; the server's \
             voice detection may never hear the end of your turn; `[audio] noise_suppression = \
             \"high\"` takes away more of it than the default",
            l.floor_dbfs
        ));
    }
    (problems, warnings)
}

/// A hint for the error users hit first: the daemon (or PulseAudio) holds the device.
pub fn hint(e: &AudioError) -> Option<&'static str> {
    let src = match e {
        AudioError::Open { source, .. } => source,
        _ => return None,
    };
    match src.errno() {
        libc::EBUSY => Some(
            "the device is busy: stop the service first (`sudo systemctl stop gemlive`), or \
             find who holds it with `fuser -v /dev/snd/*`",
        ),
        libc::ENOENT => {
            Some("no such device: `gemlive list-devices` shows the names that exist here")
        }
        libc::EACCES | libc::EPERM => Some(
            "permission denied: the user must be in the `audio` group (`sudo usermod -aG audio \
             $USER`, then log in again), or run as the gemlive user",
        ),
        _ => None,
    }
}

/// Records `seconds` of 16 kHz mono from `device`. xruns are recovered and counted.
pub fn record(device: &str, seconds: f64) -> Result<(Vec<i16>, u32), AudioError> {
    let (pcm, period, _) = super::open_capture(device, BUFFER_MS)?;
    let io_err = |source| AudioError::Io {
        device: device.to_string(),
        dir: Dir::Capture,
        source,
    };
    let want = (seconds * f64::from(INPUT_RATE_HZ)).round() as usize;
    let mut out = vec![0i16; want];
    let mut got = 0;
    let mut xruns = 0u32;
    let io = pcm.io_i16().map_err(io_err)?;
    // A device that stops delivering must not hang an interactive check.
    let deadline = Instant::now() + Duration::from_secs_f64(seconds + 5.0);
    while got < want {
        if Instant::now() > deadline {
            return Err(io_err(alsa::Error::new("snd_pcm_readi", libc::ETIMEDOUT)));
        }
        let end = (got + period).min(want);
        match io.readi(&mut out[got..end]) {
            Ok(n) => got += n,
            Err(e) => {
                xruns += 1;
                pcm.try_recover(e, true).map_err(io_err)?;
                pcm.start().map_err(io_err)?;
            }
        }
    }
    let _ = pcm.drop();
    Ok((out, xruns))
}

/// 16 kHz → 24 kHz (3 out per 2 in), linear: enough for a listening check at the daemon's
/// playback rate, so the speaker is opened exactly as a reply would open it.
pub fn upsample_16k_to_24k(s: &[i16]) -> Vec<i16> {
    let n = s.len() * 3 / 2;
    (0..n)
        .map(|i| {
            let pos = i as f64 * 2.0 / 3.0;
            let j = pos as usize;
            let frac = pos - j as f64;
            let a = f64::from(s[j.min(s.len() - 1)]);
            let b = f64::from(s[(j + 1).min(s.len() - 1)]);
            (a + (b - a) * frac).round() as i16
        })
        .collect()
}

/// Plays 16 kHz `s` on `device` at the daemon's 24 kHz, with the configured software volume,
/// and waits until it has been heard.
pub fn play(device: &str, s: &[i16], volume_percent: u8) -> Result<(), AudioError> {
    if s.is_empty() {
        return Ok(());
    }
    let (pcm, period, _) = super::open_playback(device, OUTPUT_RATE_HZ, BUFFER_MS)?;
    let io_err = |source| AudioError::Io {
        device: device.to_string(),
        dir: Dir::Playback,
        source,
    };
    let gain = i32::from(volume_percent.min(100));
    let out: Vec<i16> = upsample_16k_to_24k(s)
        .into_iter()
        .map(|x| (i32::from(x) * gain / 100) as i16)
        .collect();
    let io = pcm.io_i16().map_err(io_err)?;
    let mut at = 0;
    while at < out.len() {
        let end = (at + period).min(out.len());
        match io.writei(&out[at..end]) {
            Ok(n) => at += n,
            Err(e) => pcm.try_recover(e, true).map_err(io_err)?,
        }
    }
    pcm.drain().map_err(io_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amp * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 16_000.0).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn levels_of_known_signals() {
        // A full-scale-minus-6 dB sine: peak -6 dBFS, RMS 3 dB lower.
        let l = analyse(&sine(16_384.0, 16_000));
        assert!((l.peak_dbfs + 6.02).abs() < 0.05, "{l:?}");
        assert!((l.rms_dbfs + 9.03).abs() < 0.05, "{l:?}");
        assert_eq!(l.clipped, 0);
        let (p, w) = verdict(&l);
        assert!(p.is_empty(), "{p:?}");
        // A tone that never pauses is what a loud fan looks like.
        assert!(w.len() == 1 && w[0].contains("noisy"), "{w:?}");

        let l = analyse(&[0; 16_000]);
        assert!(l.digital_silence);
        assert!(verdict(&l).0[0].contains("digital silence"));

        let l = analyse(&sine(40_000.0, 16_000));
        assert!(l.clipped > 1000, "{l:?}");
        assert!(verdict(&l).0.iter().any(|p| p.contains("clipping")));

        let l = analyse(&sine(100.0, 16_000));
        assert!(verdict(&l).1.iter().any(|w| w.contains("quiet")), "{l:?}");
    }

    #[test]
    fn upsampling_keeps_length_and_shape() {
        let s = sine(10_000.0, 1_600);
        let u = upsample_16k_to_24k(&s);
        assert_eq!(u.len(), 2_400);
        assert_eq!(u[0], s[0]);
        assert_eq!(u[3], s[2]);
        assert!((rms_i16(&u) - rms_i16(&s)).abs() / rms_i16(&s) < 0.01);
    }
}
