//! The video hot path, measured on this machine: one camera frame through
//! `gemlive::video::jpeg::Pipeline::process` (decode → letterbox to 768×768 → encode at q80,
//! 4:2:0), once a second in the daemon. Frames: 1280×720 and 1920×1080 baseline JPEG, q85,
//! 4:2:2 chroma like UVC MJPEG.
//!
//! The frames are synthetic but not flat, because JPEG timing follows content (entropy-coded
//! bytes, non-zero AC coefficients): a sky gradient over a textured ground, shaded discs and
//! ellipses, hard-edged "buildings" with window grids, a block of thin text-like strokes,
//! three octaves of value noise (foliage-like texture) and ±2 per-channel sensor noise. The
//! scene is laid out in relative coordinates, so both sizes show the same picture, as a camera
//! would at two resolutions. They come out at about the size of a real photograph at q85
//! (`docs/design.md`, "JPEG pipeline": 100 KB at 720p, 192 KB at 1080p); the run prints the
//! sizes.
//!
//! The frames are written to `target/bench-frames/` so `benches/opencv_pipeline.py` (run by
//! `benches/compare_opencv.sh`) times OpenCV on the very same bytes.
//!
//! Run: `cargo bench --bench jpeg_pipeline`. Plain `std::time` timing (no harness): median of
//! `RUNS` single frames after `WARM_UP` untimed ones, one thread. A stage breakdown (decode,
//! resize, encode of the MCU-row band that holds the picture; timed separately with the same
//! crates) follows each line. Output lines starting `gemlive ` are parsed by the compare
//! script: keep their `key=value` format.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use gemlive::video::jpeg::{Geometry, Pipeline, PipelineConfig};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::JpegDecoder;

const RUNS: usize = 101;
const WARM_UP: usize = 5;
const SIZES: [(u16, u16); 2] = [(1280, 720), (1920, 1080)];

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

/// The test scene as packed RGB (see the module doc).
fn scene(w: u16, h: u16) -> Vec<u8> {
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

fn frames_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-frames")
}

/// CPU time this thread has used, in ms: what a frame costs the machine, whatever else runs.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// Mean CPU ms per call of `op` over `runs` calls (after the warm-up).
fn cpu_ms_per_op(runs: usize, mut op: impl FnMut()) -> f64 {
    for _ in 0..WARM_UP {
        op();
    }
    let t = thread_cpu_ms();
    for _ in 0..runs {
        op();
    }
    (thread_cpu_ms() - t) / runs as f64
}

fn median_ms(runs: usize, mut op: impl FnMut()) -> f64 {
    for _ in 0..WARM_UP {
        op();
    }
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            op();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = frames_dir();
    std::fs::create_dir_all(&dir)?;
    let cfg = PipelineConfig {
        size: 768,
        geometry: Geometry::Letterbox,
        quality: 80,
    };
    println!(
        "jpeg_pipeline: letterbox {size}, q{q}, median of {RUNS} after {WARM_UP} warm-up, 1 thread",
        size = cfg.size,
        q = cfg.quality
    );
    for (w, h) in SIZES {
        let mut frame = Vec::new();
        let mut enc = Encoder::new(&mut frame, 85);
        enc.set_sampling_factor(SamplingFactor::R_4_2_2);
        enc.encode(&scene(w, h), w, h, ColorType::Rgb)?;
        let name = format!("f{w}x{h}_422.jpg");
        let path = dir.join(&name);
        std::fs::write(&path, &frame)?;

        let mut pipeline = Pipeline::new(cfg);
        let out_bytes = pipeline.process(&frame)?.jpeg.len();
        let ms = median_ms(RUNS, || {
            let out = pipeline.process(black_box(&frame));
            black_box(out.map(|p| p.jpeg.len()).ok());
        });
        let cpu = cpu_ms_per_op(RUNS, || {
            let out = pipeline.process(black_box(&frame));
            black_box(out.map(|p| p.jpeg.len()).ok());
        });
        println!(
            "gemlive file={} size={w}x{h} in_bytes={} median_ms={ms:.3} cpu_ms={cpu:.3} out_bytes={out_bytes}",
            path.display(),
            frame.len()
        );

        // Stage breakdown with the same crates, for finding where the time goes.
        let mut rgb = Vec::new();
        let decode = median_ms(RUNS / 2, || {
            let mut d = JpegDecoder::new(ZCursor::new(black_box(&frame)));
            rgb = d.decode().unwrap_or_default();
        });
        let (cw, ch) = (
            768u32,
            (u32::from(h) * 768 + u32::from(w) / 2) / u32::from(w),
        );
        let mut small = vec![0u8; cw as usize * ch as usize * 3];
        let mut resizer = Resizer::new();
        let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        let resize = median_ms(RUNS / 2, || {
            let (Ok(src), Ok(mut dst)) = (
                ImageRef::new(w.into(), h.into(), &rgb, PixelType::U8x3),
                Image::from_slice_u8(cw, ch, &mut small, PixelType::U8x3),
            ) else {
                return;
            };
            black_box(resizer.resize(&src, &mut dst, &opts).is_ok());
        });
        // The pipeline DCT-codes only the MCU rows (16 px) that hold picture; the black
        // bars are spliced in pre-encoded. Time that band.
        let mut canvas = vec![0u8; 768 * 768 * 3];
        let top = (768 - ch as usize) / 2;
        canvas[top * 768 * 3..][..small.len()].copy_from_slice(&small);
        let (band0, band1) = (top / 16 * 16, (top + ch as usize).div_ceil(16) * 16);
        let band = &canvas[band0 * 768 * 3..band1 * 768 * 3];
        let band_h = (band1 - band0) as u16;
        let mut out = Vec::new();
        let encode = median_ms(RUNS / 2, || {
            out.clear();
            let mut e = Encoder::new(&mut out, 80);
            e.set_sampling_factor(SamplingFactor::R_4_2_0);
            e.set_restart_interval(48);
            black_box(e.encode(band, 768, band_h, ColorType::Rgb).is_ok());
        });
        println!(
            "  stages: decode {decode:.3} ms, resize to {cw}x{ch} {resize:.3} ms \
             (fir {:?}), encode 768x{band_h} band {encode:.3} ms",
            resizer.cpu_extensions()
        );
    }
    Ok(())
}
