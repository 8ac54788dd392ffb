//! The video hot path, measured on this machine: one camera frame through
//! `gemlive::video::jpeg::Pipeline::process` (decode → letterbox to 768×768 → encode at q80,
//! 4:2:0), once a second in the daemon. Frames: 1280×720 and 1920×1080 baseline JPEG, q85,
//! 4:2:2 chroma like UVC MJPEG.
//!
//! The frames are `gemlive::bench::scene` (what `gemlive bench frame` encodes too): synthetic
//! but not flat, because JPEG timing follows content (entropy-coded bytes, non-zero AC
//! coefficients). At q85 they come out at about 150 KB (720p) and 260 KB (1080p), a little
//! above a real photograph (`docs/design.md`, "JPEG pipeline": 100 KB and 192 KB); the run
//! prints the sizes.
//!
//! The frames are written to `target/bench-frames/` so `benches/opencv_pipeline.py` (run by
//! `benches/compare_opencv.sh`) times OpenCV on the very same bytes.
//!
//! Run: `cargo bench --bench jpeg_pipeline`. Plain `std::time` timing (no harness): median of
//! `RUNS` single frames after `WARM_UP` untimed ones, one thread. A stage breakdown of the
//! earlier RGB pipeline (zune-jpeg decode, fir RGB resize, jpeg-encoder on the MCU-row band
//! that holds the picture; each timed separately), for reference, follows each line. Output lines starting `gemlive ` are parsed by the compare
//! script: keep their `key=value` format.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use gemlive::bench::{scene, thread_cpu_ms};
use gemlive::video::jpeg::{Geometry, Pipeline, PipelineConfig};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::JpegDecoder;

const RUNS: usize = 101;
const WARM_UP: usize = 5;
const SIZES: [(u16, u16); 2] = [(1280, 720), (1920, 1080)];

fn frames_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-frames")
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
            "  RGB reference stages (zune-jpeg, fir RGB, jpeg-encoder): decode {decode:.3} ms, \
             resize to {cw}x{ch} {resize:.3} ms (fir {:?}), encode 768x{band_h} band \
             {encode:.3} ms",
            resizer.cpu_extensions()
        );
    }
    Ok(())
}
