//! `gemlive demo`: the real daemon (`gemlive run`, as a child process) with only the far end
//! and the devices replaced — the built-in Live stand-in on 127.0.0.1 and alsa-lib `file` PCMs
//! (a generated microphone recording in, `demo-speaker.wav` out). No sound card, no API key.
//!
//! `Rig` (temp dir, ALSA config, config file, child process) is public so the integration
//! tests drive the daemon exactly the same way with their own scripted far end.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::standin::{self, EchoOptions, StandIn};

/// ALSA PCM names defined by `alsa_file_conf`.
pub const MIC_PCM: &str = "gemlive_mic";
pub const SPEAKER_PCM: &str = "gemlive_speaker";

/// A self-contained alsa-lib config (usable alone as `ALSA_CONFIG_PATH`): the mic reads raw
/// S16_LE from `mic`, the speaker writes raw S16_LE to `speaker`. The `null` slave is inline
/// because the named `null` PCM exists only when alsa.conf is loaded.
pub fn alsa_file_conf(mic: &Path, speaker: &Path) -> String {
    format!(
        "pcm.{MIC_PCM} {{\n  type file\n  slave {{ pcm {{ type null }} }}\n  file \"/dev/null\"\n  infile \"{}\"\n  format \"raw\"\n}}\n\
         pcm.{SPEAKER_PCM} {{\n  type file\n  slave {{ pcm {{ type null }} }}\n  file \"{}\"\n  format \"raw\"\n}}\n",
        mic.display(),
        speaker.display()
    )
}

/// A 16-bit mono WAV file around raw PCM.
pub fn wav(pcm: &[u8], rate_hz: u32) -> Vec<u8> {
    let mut w = Vec::with_capacity(44 + pcm.len());
    let len = pcm.len() as u32;
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + len).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&rate_hz.to_le_bytes());
    w.extend_from_slice(&(rate_hz * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&len.to_le_bytes());
    w.extend_from_slice(pcm);
    w
}

/// A generated "microphone recording" at 16 kHz: three voiced utterances (different pitches,
/// syllable rhythm) in a quiet room. The third starts while the reply to the second is still
/// playing, so the session shows a barge-in.
pub fn demo_mic() -> Vec<u8> {
    // (start s, length s, pitch Hz)
    const UTTERANCES: [(f64, f64, f64); 3] =
        [(0.3, 1.0, 140.0), (3.3, 1.0, 200.0), (5.2, 1.0, 260.0)];
    const TOTAL_S: f64 = 8.7;
    let n = (TOTAL_S * 16_000.0) as usize;
    let mut seed: u32 = 0x1234_5678;
    let mut out = Vec::with_capacity(n * 2);
    for i in 0..n {
        let t = i as f64 / 16_000.0;
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let mut x = ((seed >> 16) as f64 / 65_536.0 - 0.5) * 40.0; // room noise
        for (start, len, f0) in UTTERANCES {
            if t >= start && t < start + len {
                let u = t - start;
                let env = (std::f64::consts::PI * u / len).sin()
                    * (0.6 + 0.4 * (2.0 * std::f64::consts::PI * 4.0 * u).sin().abs());
                let voice: f64 = (1..=6)
                    .map(|h| (2.0 * std::f64::consts::PI * f0 * h as f64 * t).sin() / h as f64)
                    .sum();
                x += 5_000.0 * env * voice;
            }
        }
        out.extend_from_slice(&(x.clamp(-32_000.0, 32_000.0) as i16).to_le_bytes());
    }
    out
}

/// A synthetic 1280×720 4:2:2 camera frame (a UVC camera's usual MJPEG shape): a scene of
/// shapes that moves with `n`.
pub fn camera_frame(n: u32) -> Vec<u8> {
    let (w, h) = (1280u16, 720u16);
    let mut rgb = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
    let (cx, cy) = (300 + 120 * n as i64, 360i64);
    for y in 0..i64::from(h) {
        for x in 0..i64::from(w) {
            let sky = (y * 200 / i64::from(h)) as u8;
            let mut px = [40 + sky / 2, 90 + sky / 3, 200 - sky / 2];
            if y > 520 {
                px = [70, 140 - ((x / 32 + y / 32) % 2) as u8 * 30, 60];
            }
            let (dx, dy) = (x - cx, y - cy);
            if dx * dx + dy * dy < 110 * 110 {
                px = [230, 190, 40];
            }
            rgb.extend_from_slice(&px);
        }
    }
    let mut out = Vec::new();
    // Our own fixed-size RGB buffer always encodes; an error would be a bug here.
    if crate::video::encode::Encoder::new()
        .encode_rgb(
            &rgb,
            u32::from(w),
            u32::from(h),
            crate::video::encode::UVC_LIKE,
            &mut out,
        )
        .is_err()
    {
        out.clear();
    }
    out
}

/// A scratch directory with file-backed ALSA devices, a config file pointing at a stand-in,
/// and (once spawned) the daemon as a child process whose log lines are collected.
pub struct Rig {
    /// The config file without its `[video]` section.
    config_text: String,
    pub dir: PathBuf,
    pub mic_path: PathBuf,
    pub speaker_path: PathBuf,
    pub config_path: PathBuf,
    pub alsa_conf: PathBuf,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Rig {
    /// Writes a config whose `[live]` endpoint is `endpoint` (plus the lines in `live_extra`)
    /// and whose `[audio]` devices are the file PCMs; `tail` follows the `[audio]` keys (more
    /// `[audio]` keys, then any further sections).
    pub fn new(
        name: &str,
        mic: &[u8],
        endpoint: &str,
        live_extra: &str,
        tail: &str,
    ) -> std::io::Result<Rig> {
        let dir = std::env::temp_dir().join(format!("gemlive-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mic_path = dir.join("mic.raw");
        let speaker_path = dir.join("speaker.raw");
        let alsa_conf = dir.join("asound.conf");
        let config_path = dir.join("gemlive.toml");
        std::fs::write(&mic_path, mic)?;
        std::fs::write(&alsa_conf, alsa_file_conf(&mic_path, &speaker_path))?;
        // File PCMs have no acoustic path from speaker to mic: no echo to cancel, and the
        // tests compare mic bytes exactly. A `tail` that sets `echo` itself wins.
        let sets = |key: &str| {
            tail.lines()
                .any(|l| l.split('=').next().map(str::trim) == Some(key))
        };
        let mut echo = if sets("echo") {
            ""
        } else {
            "echo = \"none\"\n"
        }
        .to_string();
        // The same comparison needs every byte sent, silence included: no pausing unless asked.
        if !sets("pause_on_silence_s") {
            echo.push_str("pause_on_silence_s = 0\n");
        }
        // ... and unaltered: the noise suppressor would rewrite them.
        if !sets("noise_suppression") {
            echo.push_str("noise_suppression = \"off\"\n");
        }
        let rig = Rig {
            config_text: format!(
                "[live]\nendpoint = \"{endpoint}\"\n{live_extra}\n\n[audio]\ncapture_device = \"{MIC_PCM}\"\nplayback_device = \"{SPEAKER_PCM}\"\n{echo}{tail}\n"
            ),
            dir,
            mic_path,
            speaker_path,
            config_path,
            alsa_conf,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            readers: Vec::new(),
        };
        // No camera unless one is added: the daemon must not probe /dev/video0 in a test.
        std::fs::write(
            &rig.config_path,
            format!("{}\n[video]\nenabled = false\n", rig.config_text),
        )?;
        Ok(rig)
    }

    /// Gives the daemon a camera: a file of concatenated JPEG frames, played at 30 frames/s.
    /// `video_extra` holds more `[video]` keys.
    pub fn add_camera(&mut self, frames: &[u8], video_extra: &str) -> std::io::Result<PathBuf> {
        let cam = self.dir.join("camera.mjpeg");
        std::fs::write(&cam, frames)?;
        self.use_camera(&cam, video_extra)?;
        Ok(cam)
    }

    /// Gives the daemon a camera that is a named pipe: the test writes an MJPEG stream into it,
    /// and when it stops writing, the camera has stalled.
    pub fn add_camera_pipe(&mut self, video_extra: &str) -> std::io::Result<PathBuf> {
        let cam = self.dir.join("camera.pipe");
        mkfifo(&cam)?;
        self.use_camera(&cam, video_extra)?;
        Ok(cam)
    }

    fn use_camera(&self, cam: &Path, video_extra: &str) -> std::io::Result<()> {
        std::fs::write(
            &self.config_path,
            format!(
                "{}\n[video]\ndevice = \"{}\"\n{video_extra}\n",
                self.config_text,
                cam.display()
            ),
        )
    }

    /// Starts `exe [extra args] --config <rig config> run` with the rig's ALSA config and `key`
    /// in `GEMINI_API_KEY`. Each output line is kept and, when `echo_prefix` is set, printed.
    pub fn spawn(
        &mut self,
        exe: &Path,
        key: &str,
        extra_args: &[&str],
        echo_prefix: Option<&'static str>,
    ) -> std::io::Result<()> {
        self.spawn_with_env(exe, key, extra_args, echo_prefix, &[])
    }

    /// `spawn` with extra environment variables (set after the rig's own).
    pub fn spawn_with_env(
        &mut self,
        exe: &Path,
        key: &str,
        extra_args: &[&str],
        echo_prefix: Option<&'static str>,
        env: &[(&str, &str)],
    ) -> std::io::Result<()> {
        let mut cmd = Command::new(exe);
        cmd.args(extra_args)
            .arg("--config")
            .arg(&self.config_path)
            .arg("run")
            .env("ALSA_CONFIG_PATH", &self.alsa_conf)
            .env("GEMINI_API_KEY", key)
            .env_remove("GEMLIVE_CONFIG")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("STATE_DIRECTORY")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let outs: Vec<Box<dyn std::io::Read + Send>> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        .collect();
        for out in outs {
            let log = self.log.clone();
            self.readers.push(std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(p) = echo_prefix {
                        println!("{p}{line}");
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            }));
        }
        self.child = Some(child);
        Ok(())
    }

    /// Turns the microphone into a named pipe: the test feeds it, and when the test stops
    /// writing, reads block — a capture device that stalls.
    pub fn mic_fifo(&self) -> std::io::Result<PathBuf> {
        let _ = std::fs::remove_file(&self.mic_path);
        mkfifo(&self.mic_path)?;
        Ok(self.mic_path.clone())
    }

    /// The daemon's process id, once spawned.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends a signal (e.g. `libc::SIGHUP`) to the daemon.
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// Everything the daemon printed so far.
    pub fn logs(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// What reached the speaker file so far.
    pub fn speaker(&self) -> Vec<u8> {
        std::fs::read(&self.speaker_path).unwrap_or_default()
    }

    /// Sends SIGTERM (the way systemd stops the service).
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Waits for the daemon to exit (killing it after `timeout`); joins the log readers.
    pub fn wait(&mut self, timeout: Duration) -> std::io::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(std::io::Error::other("daemon not started"));
        };
        let until = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > until {
                let _ = child.kill();
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Ok(status)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(std::io::Error::other)?;
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Finds `needle` in `hay` (byte-exact), for checking reply audio in the speaker file.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Runs the demo; `out` is where `demo-speaker.wav` goes.
pub async fn run(out: &Path) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let say =
        move |who: &str, s: String| println!("{:>5.2}s {who} {s}", t0.elapsed().as_secs_f64());
    let mic = demo_mic();
    let standin = StandIn::bind()
        .await
        .context("binding the stand-in to 127.0.0.1")?;
    let mut rig = Rig::new("demo", &mic, &standin.url(), "", "chunk_ms = 40")
        .context("creating the demo's scratch directory")?;
    // 7 frames at 30 frames/s: a once-a-second sample lands on a different picture each time.
    let frames: Vec<u8> = (0..7).flat_map(camera_frame).collect();
    let cam = rig
        .add_camera(&frames, "")
        .context("writing the demo camera file")?;
    say(
        "demo     ",
        format!(
            "microphone: {} ({:.1} s generated speech-like audio, 16 kHz S16_LE) via ALSA PCM `{MIC_PCM}`",
            rig.mic_path.display(),
            mic.len() as f64 / 32_000.0
        ),
    );
    say(
        "demo     ",
        format!(
            "camera: {} (7 generated 1280x720 MJPEG frames, played at 30 frames/s)",
            cam.display()
        ),
    );
    say(
        "demo     ",
        format!("Live stand-in listening on {}", standin.url()),
    );
    let exe = std::env::current_exe().context("locating the gemlive binary")?;
    rig.spawn(
        &exe,
        "demo-key-not-a-real-key",
        &[],
        Some("        daemon   │ "),
    )
    .context("starting `gemlive run`")?;

    let mut conn = tokio::time::timeout(Duration::from_secs(15), standin.accept())
        .await
        .context("the daemon did not connect to the stand-in within 15 s")??;
    let mut rep = tokio::time::timeout(
        Duration::from_secs(60),
        standin::echo(&mut conn, EchoOptions::default(), |s| say("stand-in ", s)),
    )
    .await
    .context("the demo conversation did not finish within 60 s")?;
    // Let the last reply reach the speaker, then stop the daemon the way systemd does.
    tokio::time::sleep(Duration::from_millis(300)).await;
    say("demo     ", "sending SIGTERM to the daemon".into());
    rig.terminate();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        standin::wait_close(&mut conn, &mut rep),
    )
    .await;
    let status = rig.wait(Duration::from_secs(10))?;

    let speaker = rig.speaker();
    let wav_path = out.join("demo-speaker.wav");
    std::fs::write(&wav_path, wav(&speaker, 24_000))
        .with_context(|| format!("writing {}", wav_path.display()))?;

    println!();
    println!("summary");
    let mic_ok = rep.mic.len() >= mic.len().min(rep.mic.len())
        && mic.starts_with(&rep.mic[..rep.mic.len().min(mic.len())]);
    println!(
        "  mic audio received by the stand-in: {} bytes in {} chunks ({:.2} s); identical to the recording: {}",
        rep.mic.len(),
        rep.mic_chunks,
        rep.mic.len() as f64 / 32_000.0,
        if mic_ok { "yes" } else { "NO" }
    );
    let mut expected = Vec::new();
    for (r, sent) in rep.replies.iter().zip(&rep.sent_before_interrupt) {
        expected.extend_from_slice(&r[..*sent]);
    }
    let sizes: Vec<usize> = rep.video.iter().map(|v| v.2).collect();
    println!(
        "  camera frames received by the stand-in: {}, all 768x768: {}, {}–{} bytes each",
        rep.video.len(),
        if rep.video.iter().all(|(w, h, _)| (*w, *h) == (768, 768)) {
            "yes"
        } else {
            "NO"
        },
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0)
    );
    let video_ok = rep.video.len() >= 3 && rep.video.iter().all(|(w, h, _)| (*w, *h) == (768, 768));
    let late_played = !rep.late_bytes.is_empty() && find(&speaker, &rep.late_bytes).is_some();
    println!(
        "  replies sent: {} ({} interrupted); reply audio sent before interruptions: {} bytes",
        rep.replies.len(),
        rep.interruptions,
        expected.len()
    );
    println!(
        "  speaker file: {} bytes ({:.2} s at 24 kHz) -> {}",
        speaker.len(),
        speaker.len() as f64 / 48_000.0,
        wav_path.display()
    );
    let exact = speaker == expected;
    println!(
        "  speaker holds exactly the reply audio sent before each interruption: {}",
        if exact { "yes" } else { "NO" }
    );
    println!(
        "  late chunk of the cancelled reply ({} bytes) reached the speaker: {}",
        rep.late_bytes.len(),
        if late_played { "YES (bug)" } else { "no" }
    );
    println!(
        "  session closed by the daemon with code {}; daemon exit status {}",
        rep.close_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "none".into()),
        status
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| status.to_string())
    );
    if !(mic_ok
        && video_ok
        && exact
        && !late_played
        && rep.close_code == Some(1000)
        && status.success()
        && rep.interruptions == 1)
    {
        bail!("the demo did not behave as expected (see above)");
    }
    println!("demo ok");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header() {
        let w = wav(&[1, 2, 3, 4], 24_000);
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([w[24], w[25], w[26], w[27]]), 24_000);
        assert_eq!(u32::from_le_bytes([w[40], w[41], w[42], w[43]]), 4);
        assert_eq!(w.len(), 48);
    }

    #[test]
    fn find_bytes() {
        assert_eq!(find(b"abcdef", b"cd"), Some(2));
        assert_eq!(find(b"abcdef", b"x"), None);
    }
}
