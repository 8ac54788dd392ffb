//! A private PulseAudio (`docs/design.md`, "Testing"): real-time paced audio with no sound card.
//! Two null sinks, `speaker` and `mic`; `module-loopback` carries what the daemon plays from
//! `speaker.monitor` into `mic` with a delay, attenuated by the speaker sink's volume. The
//! daemon captures `mic.monitor`, so it hears its own speaker the way a box on a table does.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Pulse {
    pub dir: PathBuf,
    pub socket: PathBuf,
    daemon: Child,
    helpers: Vec<Child>,
}

/// Rates of the two sinks (the daemon's own rates, so no resampling in the sinks).
const SPEAKER_RATE: u32 = 24_000;
const MIC_RATE: u32 = 16_000;

impl Pulse {
    /// Starts it, or returns `None` (after saying so loudly) when PulseAudio is not installed
    /// and `REQUIRE_PULSE` is unset. `volume` is the speaker sink's volume (65536 = 100 %).
    pub fn start(name: &str, loop_latency_ms: u32, volume: u32) -> Option<Pulse> {
        let have = Command::new("pulseaudio")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !have {
            assert!(
                std::env::var_os("REQUIRE_PULSE").is_none(),
                "REQUIRE_PULSE is set but pulseaudio is not installed"
            );
            eprintln!(
                "\n*** SKIPPED: pulseaudio is not installed (apt-get install pulseaudio \
                 pulseaudio-utils libasound2-plugins); set REQUIRE_PULSE=1 to make this fail ***\n"
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!("gemlive-pa-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run/pulse")).expect("pulse dir");
        let socket = dir.join("native");
        let script = format!(
            "load-module module-native-protocol-unix auth-anonymous=1 socket={sock}\n\
             load-module module-null-sink sink_name=speaker format=s16le rate={SPEAKER_RATE} channels=1\n\
             load-module module-null-sink sink_name=mic format=s16le rate={MIC_RATE} channels=1\n\
             load-module module-loopback source=speaker.monitor sink=mic latency_msec={loop_latency_ms} source_dont_move=true sink_dont_move=true\n\
             set-sink-volume speaker {volume}\n",
            sock = socket.display()
        );
        let pa = dir.join("test.pa");
        std::fs::write(&pa, script).expect("write test.pa");
        let log = std::fs::File::create(dir.join("pulseaudio.log")).expect("log");
        let daemon = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--disable-shm=yes",
                // The CI machine may be busy compiling: the "room" must not glitch.
                "--realtime=yes",
                "--high-priority=yes",
                "--log-target=stderr",
            ])
            .arg("-F")
            .arg(&pa)
            .envs(Self::env_for(&dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start pulseaudio");
        let p = Pulse {
            dir,
            socket,
            daemon,
            helpers: Vec::new(),
        };
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let ok = p.pactl(&["info"]).is_some();
            if ok {
                break;
            }
            assert!(
                Instant::now() < until,
                "pulseaudio did not come up: {}",
                std::fs::read_to_string(p.dir.join("pulseaudio.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(p)
    }

    fn env_for(dir: &std::path::Path) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), dir.display().to_string()),
            (
                "XDG_RUNTIME_DIR".into(),
                dir.join("run").display().to_string(),
            ),
            (
                "PULSE_RUNTIME_PATH".into(),
                dir.join("run/pulse").display().to_string(),
            ),
            (
                "XDG_CONFIG_HOME".into(),
                dir.join("cfg").display().to_string(),
            ),
        ]
    }

    pub fn server(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    pub fn pactl(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("pactl")
            .arg("-s")
            .arg(self.server())
            .args(args)
            .envs(Self::env_for(&self.dir))
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// alsa-lib config: `mic` captures `mic.monitor`, `speaker` plays into the `speaker` sink.
    pub fn alsa_conf(&self, mic: &str, speaker: &str) -> String {
        format!(
            "pcm.{mic} {{\n  type pulse\n  server \"{s}\"\n  device \"mic.monitor\"\n}}\n\
             pcm.{speaker} {{\n  type pulse\n  server \"{s}\"\n  device \"speaker\"\n}}\n",
            s = self.server()
        )
    }

    /// Records `source` (16 kHz S16_LE mono) into `path` until dropped.
    pub fn record(&mut self, source: &str, path: &std::path::Path) {
        let f = std::fs::File::create(path).expect("record file");
        let c = Command::new("pacat")
            .args(self.pacat_args("--record", source))
            .envs(Self::env_for(&self.dir))
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .expect("pacat --record");
        self.helpers.push(c);
    }

    /// `pacat` on this server, `mode` (`--record`/`--playback`) on `device`, 16 kHz S16_LE mono raw.
    fn pacat_args(&self, mode: &str, device: &str) -> Vec<String> {
        [
            "-s",
            &self.server(),
            mode,
            "-d",
            device,
            "--rate=16000",
            "--channels=1",
            "--format=s16le",
            "--raw",
            "--latency-msec=20",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    }

    /// Plays 16 kHz S16_LE mono `pcm` into `sink` (in the background).
    pub fn play(&mut self, sink: &str, pcm: &[u8]) {
        let mut c = Command::new("pacat")
            .args(self.pacat_args("--playback", sink))
            .envs(Self::env_for(&self.dir))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pacat --playback");
        if let Some(mut stdin) = c.stdin.take() {
            let pcm = pcm.to_vec();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&pcm);
            });
        }
        self.helpers.push(c);
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        for c in self.helpers.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// S16_LE bytes → samples.
pub fn samples(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(2)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
        .collect()
}

/// Sum of squares of S16_LE samples (full scale = 1.0).
pub fn energy(b: &[u8]) -> f64 {
    samples(b)
        .iter()
        .map(|v| (v / 32768.0) * (v / 32768.0))
        .sum()
}

/// Energy at `freq` (Goertzel over 20 ms blocks, summed), for picking a tone out of speech.
pub fn tone_energy(b: &[u8], freq: f64, rate: f64) -> f64 {
    let x = samples(b);
    let n = (rate * 0.02) as usize;
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let coeff = 2.0 * w.cos();
    x.chunks(n)
        .map(|c| {
            let (mut s1, mut s2) = (0.0, 0.0);
            for &v in c {
                let s0 = v / 32768.0 + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            (s1 * s1 + s2 * s2 - coeff * s1 * s2) / c.len() as f64
        })
        .sum()
}

pub fn db(x: f64) -> f64 {
    10.0 * x.max(1e-20).log10()
}
