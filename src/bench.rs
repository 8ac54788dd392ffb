//! `gemlive bench WORKLOAD`: fixed, repeatable workloads of the daemon's hot paths, for
//! timing on the board itself and for counting instructions under qemu-user
//! (`cross/insn.sh`, the aarch64 figures in the README's "Performance").
//!
//! - `frame [WxH] [N]`: a synthetic camera frame (default 1280x720, 4:2:2 q85 like UVC MJPEG)
//!   through the video pipeline (decode → letterbox 768 → encode q80), N times (default 5).
//! - `audio [S]`: S seconds (default 10) of microphone audio through the capture-side echo
//!   processing with AEC3, while a reply plays (the synthetic room of `audio::echo::synth`,
//!   with the user talking over the reply for 2 s).
//! - `stream [S] [WxH]`: the whole daemon (`gemlive run`, a child process) streaming for S
//!   seconds (default 60) to a local stand-in: file-backed microphone and speaker, a file
//!   camera of WxH (default 1280x720), `echo = "aec"`, a 2 s reply every 6 s.
//!   `stream-audio [S]`: the same without the camera. `GEMLIVE_BENCH_RUN` replaces the
//!   child's program (e.g. `qemu-aarch64 -plugin … gemlive`, so the child is the binary being
//!   measured).
//!
//! Each workload marks the part it measures with `prctl(0x67656d6c, 1)` / `prctl(0x67656d6c,
//! 2)` (an EINVAL no-op on Linux) so the instruction counter leaves out set-up and input
//! synthesis, and prints CPU time per unit of work.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::audio::echo::synth::{room, run, RoomSpec};
use crate::config::EchoMode;
use crate::video::jpeg::{Geometry, Pipeline, PipelineConfig};

/// `prctl` option no kernel knows: the marker the instruction counter watches for.
const MARK_OPTION: libc::c_ulong = 0x6765_6d6c;

/// Tells an attached instruction counter where the measured work starts (`true`) or ends.
pub fn mark(start: bool) {
    let phase: libc::c_ulong = if start { 1 } else { 2 };
    // SAFETY: prctl with an unknown option only returns EINVAL; no memory is passed.
    unsafe {
        libc::prctl(MARK_OPTION as libc::c_int, phase, 0, 0, 0);
    }
}

/// CPU time this thread has used, in ms: what the work costs the machine, whatever else runs.
pub fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// CPU time (user + system, ms) and the largest peak RSS (MiB) of this process's children that
/// have been waited for.
fn children_usage() -> (f64, f64) {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes only the struct we pass.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, ru.as_mut_ptr());
        ru.assume_init()
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    // ru_maxrss is in KiB; a c_long, 32 bits on armv7.
    (
        ms(ru.ru_utime) + ms(ru.ru_stime),
        ru.ru_maxrss as f64 / 1024.0,
    )
}

/// Deterministic hash of a lattice point, 0..=255.
fn lattice(x: i64, y: i64, seed: u64) -> f32 {
    let mut h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ seed.wrapping_mul(0x1656_67B1_9E37_79F9);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    (h & 0xFF) as f32
}

/// Smooth value noise at `cell` pixels per lattice step, 0..=255.
fn value_noise(x: f32, y: f32, cell: f32, seed: u64) -> f32 {
    let (fx, fy) = (x / cell, y / cell);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (tx, ty) = (fx - x0, fy - y0);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let (ix, iy) = (x0 as i64, y0 as i64);
    let a = lattice(ix, iy, seed) + sx * (lattice(ix + 1, iy, seed) - lattice(ix, iy, seed));
    let b = lattice(ix, iy + 1, seed)
        + sx * (lattice(ix + 1, iy + 1, seed) - lattice(ix, iy + 1, seed));
    a + sy * (b - a)
}

/// A camera-like test scene as packed RGB: a sky gradient over a textured ground, shaded
/// discs, hard-edged "buildings" with window grids, a block of text-like strokes, three
/// octaves of value noise and ±2 per-channel sensor noise. JPEG cost follows content, so the
/// scene is not flat; it is laid out in relative coordinates, so every size shows the same
/// picture. At q85 a 720p frame is about 150 KB.
pub fn scene(w: u16, h: u16) -> Vec<u8> {
    let (wf, hf) = (f32::from(w), f32::from(h));
    let mut rgb = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    // (centre x, centre y, radius x, radius y, colour), relative to the frame
    let discs: [(f32, f32, f32, f32, [f32; 3]); 6] = [
        (0.80, 0.18, 0.07, 0.124, [250.0, 220.0, 150.0]),
        (0.22, 0.72, 0.10, 0.16, [200.0, 60.0, 50.0]),
        (0.48, 0.80, 0.06, 0.09, [60.0, 90.0, 210.0]),
        (0.65, 0.70, 0.13, 0.10, [230.0, 200.0, 80.0]),
        (0.08, 0.40, 0.05, 0.09, [240.0, 240.0, 240.0]),
        (0.90, 0.85, 0.09, 0.12, [120.0, 40.0, 160.0]),
    ];
    // buildings: (left, top, right, colour)
    let blocks: [(f32, f32, f32, [f32; 3]); 5] = [
        (0.02, 0.30, 0.14, [90.0, 95.0, 110.0]),
        (0.15, 0.22, 0.26, [150.0, 140.0, 120.0]),
        (0.30, 0.35, 0.38, [70.0, 70.0, 80.0]),
        (0.52, 0.26, 0.60, [180.0, 175.0, 170.0]),
        (0.66, 0.40, 0.74, [110.0, 80.0, 60.0]),
    ];
    let horizon = 0.6;
    for y in 0..h {
        let v = f32::from(y) / hf;
        for x in 0..w {
            let u = f32::from(x) / wf;
            let (px, py) = (u * 1920.0, v * 1080.0); // scene units: same picture at any size
            let mut c = if v < horizon {
                let t = v / horizon;
                [70.0 + 120.0 * t, 120.0 + 90.0 * t, 200.0 + 40.0 * t]
            } else {
                let t = (v - horizon) / (1.0 - horizon);
                let leaf = value_noise(px, py, 9.0, 7) - 128.0;
                [
                    70.0 + 40.0 * t + 0.2 * leaf,
                    110.0 - 30.0 * t + 0.25 * leaf,
                    50.0 + 0.1 * leaf,
                ]
            };
            for &(l, t, r, col) in &blocks {
                if u >= l && u < r && v >= t && v < horizon {
                    c = col;
                    // window grid: hard edges every few scene pixels
                    let (wx, wy) = ((px - l * 1920.0) % 22.0, (py - t * 1080.0) % 30.0);
                    if (5.0..15.0).contains(&wx) && (6.0..20.0).contains(&wy) {
                        c = [40.0, 50.0, 70.0];
                    }
                }
            }
            for &(cx, cy, rx, ry, col) in &discs {
                let (dx, dy) = ((u - cx) / rx, (v - cy) / ry);
                let d2 = dx * dx + dy * dy;
                if d2 < 1.0 {
                    let shade = 1.0 - 0.55 * (dx + 0.6) * (dx + 0.6) - 0.35 * dy * dy;
                    c = [col[0] * shade, col[1] * shade, col[2] * shade];
                }
            }
            // a block of text-like strokes on a light sign
            if (0.40..0.62).contains(&u) && (0.05..0.17).contains(&v) {
                c = [235.0, 235.0, 225.0];
                let (line, col) = ((py / 18.0) as i64, (px / 11.0) as i64);
                let in_glyph = (py % 18.0) > 4.0 && (py % 18.0) < 14.0;
                let on = lattice(col, line, 3) > 90.0;
                let stroke = (px % 11.0) < 2.5 || ((py % 18.0) - 9.0).abs() < 1.2;
                if in_glyph && on && stroke {
                    c = [20.0, 20.0, 30.0];
                }
            }
            let tex = (value_noise(px, py, 120.0, 1) - 128.0) * 0.12
                + (value_noise(px, py, 24.0, 2) - 128.0) * 0.08
                + (value_noise(px, py, 5.0, 3) - 128.0) * 0.03;
            for ch in c.iter_mut() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let sensor = (rng % 5) as f32 - 2.0;
                rgb.push((*ch + tex + sensor).clamp(0.0, 255.0) as u8);
            }
        }
    }
    rgb
}

/// `scene` as a UVC camera sends it: baseline JPEG, q85, 4:2:2.
pub fn camera_jpeg(w: u16, h: u16) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    crate::video::encode::Encoder::new()
        .encode_rgb(
            &scene(w, h),
            u32::from(w),
            u32::from(h),
            crate::video::encode::UVC_LIKE,
            &mut out,
        )
        .context("encoding the test scene")?;
    Ok(out)
}

/// The daemon's shipped pipeline settings (`[video]` defaults).
pub fn shipped_pipeline() -> PipelineConfig {
    PipelineConfig {
        size: 768,
        geometry: Geometry::Letterbox,
        quality: 80,
    }
}

fn number<T: std::str::FromStr>(
    word: Option<&String>,
    what: &str,
    default: T,
) -> anyhow::Result<T> {
    match word {
        None => Ok(default),
        Some(w) => w
            .parse()
            .map_err(|_| anyhow::anyhow!("`{w}` is not a valid {what}")),
    }
}

pub const WORKLOADS: &str =
    "frame [WxH] [N], audio [SECONDS], stream [SECONDS] [WxH], stream-audio [SECONDS]";

/// A `WxH` camera size (default 1280x720), each side 16 to 4096.
fn frame_size(word: Option<&String>, workload: &str) -> anyhow::Result<(u16, u16)> {
    let Some(s) = word else {
        return Ok((1280, 720));
    };
    let (w, h) = s.split_once('x').unwrap_or((s, ""));
    let dim = |v: &str| {
        v.parse::<u16>()
            .ok()
            .filter(|d| (16..=4096).contains(d))
            .ok_or_else(|| anyhow::anyhow!("bench {workload} {s}: expected WxH, each 16 to 4096"))
    };
    Ok((dim(w)?, dim(h)?))
}

/// Runs the workload `words` names (see the module doc).
pub fn run_words(words: &[String]) -> anyhow::Result<()> {
    let Some(first) = words.first() else {
        bail!("bench needs a workload: {WORKLOADS}");
    };
    match first.as_str() {
        "frame" => {
            let (size, count) = match words.get(1) {
                Some(s) if s.contains('x') => (Some(s), words.get(2)),
                other => (None, other),
            };
            let (w, h) = frame_size(size, "frame")?;
            let n: u32 = number(count, "frame count", 5)?;
            frame(w, h, n.clamp(1, 1000))
        }
        "audio" => {
            let s: f64 = number(words.get(1), "number of seconds", 10.0)?;
            audio(s.clamp(3.0, 600.0))
        }
        "stream" | "stream-audio" => {
            let s: f64 = number(words.get(1), "number of seconds", 60.0)?;
            let size = frame_size(words.get(2), "stream")?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(stream(
                s.clamp(5.0, 3600.0),
                (first == "stream").then_some(size),
            ))
        }
        other => bail!("unknown workload `{other}` (expected {WORKLOADS})"),
    }
}

fn frame(w: u16, h: u16, n: u32) -> anyhow::Result<()> {
    let jpeg = camera_jpeg(w, h)?;
    let mut pipeline = Pipeline::new(shipped_pipeline());
    // One untimed frame: the first one sizes every buffer.
    let first = pipeline.process(&jpeg)?.jpeg;
    // FNV-1a of the output: the same on every architecture (cross/qemu-smoke.sh compares).
    let digest = first.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let out_bytes = first.len();
    let (t, c) = (Instant::now(), thread_cpu_ms());
    mark(true);
    for _ in 0..n {
        pipeline.process(std::hint::black_box(&jpeg))?;
    }
    mark(false);
    let cpu = (thread_cpu_ms() - c) / f64::from(n);
    let wall = t.elapsed().as_secs_f64() * 1e3 / f64::from(n);
    println!(
        "bench frame {w}x{h}: {n} frames of {} bytes -> {out_bytes} bytes (768 letterbox q80, fnv {digest:016x}): {cpu:.2} ms CPU, {wall:.2} ms wall per frame",
        jpeg.len()
    );
    Ok(())
}

fn audio(seconds: f64) -> anyhow::Result<()> {
    let r = room(RoomSpec {
        seconds,
        double_talk: (seconds * 0.5, seconds * 0.5 + 2.0),
        ..RoomSpec::default()
    });
    let c = thread_cpu_ms();
    mark(true);
    let (out, stats, _) = run(&r, EchoMode::Aec);
    mark(false);
    let cpu = thread_cpu_ms() - c;
    println!(
        "bench audio: {seconds:.0} s of 16 kHz mic with a reply playing, echo = \"aec\": {:.2} ms CPU per second of audio; {} samples out; {}",
        cpu / seconds,
        out.len(),
        stats.summary()
    );
    Ok(())
}

/// A reply's audio: a 2 s vowel-like tone at 24 kHz, as the stand-in sends it.
fn reply_pcm() -> Vec<u8> {
    (0..48_000)
        .flat_map(|i| {
            let t = f64::from(i) / 24_000.0;
            let v = 6000.0
                * ((2.0 * std::f64::consts::PI * 180.0 * t).sin()
                    + 0.5 * (2.0 * std::f64::consts::PI * 540.0 * t).sin());
            (v as i16).to_le_bytes()
        })
        .collect()
}

/// `camera`: the camera's frame size, or none (audio only).
async fn stream(seconds: f64, camera: Option<(u16, u16)>) -> anyhow::Result<()> {
    use crate::demo::{demo_mic, Rig};
    use crate::standin::{self, FromClient, StandIn};
    let standin = StandIn::bind()
        .await
        .context("binding the stand-in to 127.0.0.1")?;
    // The demo's utterances, repeated past the end of the run.
    let one = demo_mic();
    let mut mic = Vec::new();
    while (mic.len() as f64) < (seconds + 10.0) * 32_000.0 {
        mic.extend_from_slice(&one);
    }
    let mut rig = Rig::new(
        "bench-stream",
        &mic,
        &standin.url(),
        "",
        "echo = \"aec\"\nchunk_ms = 40",
    )
    .context("creating the bench's scratch directory")?;
    if let Some((w, h)) = camera {
        let frame = camera_jpeg(w, h)?;
        rig.add_camera(&frame, "")
            .context("writing the bench camera file")?;
    }
    let (exe, args): (std::path::PathBuf, Vec<String>) = match std::env::var("GEMLIVE_BENCH_RUN") {
        Ok(cmd) if !cmd.trim().is_empty() => {
            let mut w = cmd.split_whitespace().map(str::to_string);
            let exe = w.next().unwrap_or_default();
            (exe.into(), w.collect())
        }
        _ => (
            std::env::current_exe().context("locating the gemlive binary")?,
            Vec::new(),
        ),
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (cpu0, _) = children_usage();
    rig.spawn(&exe, "bench-key-not-a-real-key", &args, None)
        .context("starting `gemlive run`")?;
    let mut conn = tokio::time::timeout(Duration::from_secs(60), standin.accept())
        .await
        .with_context(|| {
            format!(
                "the daemon did not connect to the stand-in within 60 s\n{}",
                rig.logs()
            )
        })??;
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(seconds);
    let reply = reply_pcm();
    let (mut mic_bytes, mut frames, mut replies) = (0usize, 0usize, 0usize);
    let mut next_reply = t0 + Duration::from_secs(3);
    while Instant::now() < end {
        if Instant::now() >= next_reply {
            for chunk in reply.chunks(4800) {
                conn.send(&standin::server_audio(chunk)).await?;
            }
            conn.send(&standin::server_content("turnComplete")).await?;
            replies += 1;
            next_reply += Duration::from_secs(6);
        }
        let until = next_reply.min(end);
        let msg = tokio::time::timeout_at(until.into(), conn.recv()).await;
        match msg {
            Err(_) => {}
            Ok(None) | Ok(Some(FromClient::Closed { .. })) => {
                bail!("the daemon closed the session early\n{}", rig.logs())
            }
            Ok(Some(FromClient::Json(v))) => {
                if v.get("setup").is_some() {
                    conn.send(&standin::setup_complete()).await?;
                }
                mic_bytes += standin::client_audio(&v).map_or(0, |a| a.len());
                frames += usize::from(standin::client_video(&v).is_some());
            }
            Ok(Some(_)) => {}
        }
    }
    rig.terminate();
    let status = rig.wait(Duration::from_secs(60))?;
    if !status.success() {
        bail!("the daemon exited with {status}\n{}", rig.logs());
    }
    let (cpu, rss_mib) = children_usage();
    let cpu = cpu - cpu0;
    println!(
        "bench {}: {seconds:.0} s streamed: mic {:.1} s, {frames} camera frames, {replies} replies; daemon CPU {:.1} ms per second (with its start-up), peak RSS {:.1} MiB",
        match camera {
            Some((w, h)) => format!("stream {w}x{h}"),
            None => "stream-audio".into(),
        },
        mic_bytes as f64 / 32_000.0,
        cpu / seconds,
        rss_mib
    );
    Ok(())
}
