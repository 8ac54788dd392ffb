//! Baseline JPEG encoder for the video pipeline: packed RGB in, one baseline (SOF0) JPEG out,
//! 4:2:0 or 4:2:2, the Annex K quantisation tables scaled by quality as libjpeg does and the
//! Annex K Huffman tables, optionally a restart marker after every MCU row.
//!
//! Why our own: encoding was the pipeline's largest cost on a Pi (about 28 % of a 720p
//! frame's instructions on aarch64 with jpeg-encoder, whose only SIMD is AVX2). Every stage
//! here is written so the compiler vectorises it on NEON and SSE alike, with no `unsafe` and
//! no target-specific code: colour conversion in f32 (chroma averaged over 2×2 or 2×1 before
//! it is converted, which is the same sum), the AAN float DCT (libjpeg's `jfdctflt`) run on
//! eight columns at once, and quantisation as one multiply per coefficient with the AAN
//! scale folded in. Only the Huffman coder is scalar; it visits the non-zero coefficients
//! only (a bit mask, as libjpeg-turbo does). The float arithmetic is IEEE with no fused
//! operations, so an x86 test and a Pi produce the same bytes.
//!
//! `docs/design.md` ("JPEG pipeline") has the measurements.

use std::f32::consts::FRAC_1_SQRT_2;

/// Chroma subsampling of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroma {
    /// Cb and Cr at half width and half height (what the pipeline sends).
    H2V2,
    /// Cb and Cr at half width, full height (what UVC cameras send; the demo's and the
    /// bench's camera frames).
    H2V1,
}

impl Chroma {
    /// Luma rows per MCU.
    fn mcu_rows(self) -> usize {
        match self {
            Chroma::H2V2 => 16,
            Chroma::H2V1 => 8,
        }
    }
}

/// How to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// 1..=100 (clamped), libjpeg's scale.
    pub quality: u8,
    pub chroma: Chroma,
    /// A restart marker after every MCU row (the letterbox splice joins rows from separate
    /// encodes).
    pub restart_rows: bool,
}

/// How a UVC camera encodes MJPEG (q85, 4:2:2): the demo's and the bench's camera frames.
pub const UVC_LIKE: Settings = Settings {
    quality: 85,
    chroma: Chroma::H2V1,
    restart_rows: false,
};

/// A YCbCr image as planes for a 4:2:0 encode: luma `width × height`, Cb and Cr
/// `⌈width/2⌉ × ⌈height/2⌉`, each plane's rows `stride` apart.
#[derive(Debug, Clone, Copy)]
pub struct Planar<'a> {
    pub y: &'a [u8],
    pub y_stride: usize,
    pub cb: &'a [u8],
    pub cr: &'a [u8],
    pub c_stride: usize,
}

/// What is encoded: packed RGB, or planes already in YCbCr and subsampled.
#[derive(Clone, Copy)]
enum Source<'a> {
    Rgb(&'a [u8]),
    Planar(Planar<'a>),
}

/// Why an image could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("image side {width}×{height} outside 1..=65535")]
    Size { width: u32, height: u32 },
    #[error("{got} bytes of RGB for a {width}×{height} image (needs {need})")]
    Short {
        width: u32,
        height: u32,
        got: usize,
        need: usize,
    },
}

/// A JPEG encoder that keeps its tables and working rows from one image to the next: after
/// the first frame of a size, encoding allocates nothing (the output `Vec` aside, which the
/// caller reuses).
#[derive(Default)]
pub struct Encoder {
    tables: Option<Tables>,
    /// One MCU row of each plane, level-shifted, padded to whole MCUs.
    y: Vec<f32>,
    cb: Vec<f32>,
    cr: Vec<f32>,
    /// Two pixel rows as R, G, B planes (for the chroma averages).
    split: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Encodes `rgb` (`width × height` packed RGB, rows without padding) into `out` (cleared
    /// first).
    pub fn encode_rgb(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        settings: Settings,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let need = width as usize * height as usize * 3;
        if rgb.len() < need {
            return Err(EncodeError::Short {
                width,
                height,
                got: rgb.len(),
                need,
            });
        }
        self.encode(Source::Rgb(rgb), width, height, settings, out)
    }

    /// Encodes YCbCr planes (see [`Planar`]) as 4:2:0 into `out` (cleared first): no colour
    /// conversion, no chroma averaging. `settings.chroma` is ignored.
    pub fn encode_planar(
        &mut self,
        planes: Planar<'_>,
        width: u32,
        height: u32,
        settings: Settings,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let short = |got: usize, stride: usize, pw: usize, ph: usize| {
            ph > 0 && (stride < pw || got < (ph - 1) * stride + pw)
        };
        if short(planes.y.len(), planes.y_stride, w, h)
            || short(planes.cb.len(), planes.c_stride, cw, ch)
            || short(planes.cr.len(), planes.c_stride, cw, ch)
        {
            return Err(EncodeError::Short {
                width,
                height,
                got: planes.y.len() + planes.cb.len() + planes.cr.len(),
                need: w * h + 2 * cw * ch,
            });
        }
        let settings = Settings {
            chroma: Chroma::H2V2,
            ..settings
        };
        self.encode(Source::Planar(planes), width, height, settings, out)
    }

    fn encode(
        &mut self,
        source: Source<'_>,
        width: u32,
        height: u32,
        settings: Settings,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let Settings {
            quality,
            chroma,
            restart_rows,
        } = settings;
        let (w16, h16) = match (u16::try_from(width), u16::try_from(height)) {
            (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
            _ => return Err(EncodeError::Size { width, height }),
        };
        let quality = quality.clamp(1, 100);
        if self.tables.as_ref().map(|t| t.quality) != Some(quality) {
            self.tables = Some(Tables::new(quality));
        }
        let tables = self.tables.as_ref().expect("set just above");

        let (w, h) = (width as usize, height as usize);
        let mcu_rows = chroma.mcu_rows();
        let mcus_across = w.div_ceil(16);
        let pad_w = mcus_across * 16;
        let row_count = h.div_ceil(mcu_rows);
        self.y.resize(pad_w * mcu_rows, 0.0);
        self.cb.resize(pad_w / 2 * 8, 0.0);
        self.cr.resize(pad_w / 2 * 8, 0.0);
        self.split.resize(6 * w, 0);

        out.clear();
        // A q80 frame takes well under a byte per pixel; growing past this is rare.
        out.reserve(w * h / 2 + 1024);
        write_headers(
            out,
            w16,
            h16,
            chroma,
            tables,
            restart_rows.then_some(mcus_across),
        );

        let mut bits = BitWriter::new(out);
        let mut dc = [0i32; 3];
        let mut block = [[0f32; 8]; 8];
        let mut coefs = [0i32; 64];
        for row in 0..row_count {
            if restart_rows && row > 0 {
                bits.restart((row - 1) as u8 & 7);
                dc = [0; 3];
            }
            let top = row * mcu_rows;
            let planes = (&mut self.y[..], &mut self.cb[..], &mut self.cr[..]);
            match source {
                Source::Rgb(rgb) => {
                    convert_rows(rgb, w, h, top, chroma, pad_w, planes, &mut self.split)
                }
                Source::Planar(p) => planar_rows(&p, w, h, top, pad_w, planes),
            }
            for mcu in 0..mcus_across {
                for by in 0..mcu_rows / 8 {
                    for bx in 0..2 {
                        load_block(&self.y, pad_w, by * 8, mcu * 16 + bx * 8, &mut block);
                        dc[0] = code_block(
                            &mut block,
                            &tables.luma,
                            &LUMA,
                            dc[0],
                            &mut coefs,
                            &mut bits,
                        );
                    }
                }
                let half = pad_w / 2;
                load_block(&self.cb, half, 0, mcu * 8, &mut block);
                dc[1] = code_block(
                    &mut block,
                    &tables.chroma,
                    &CHROMA,
                    dc[1],
                    &mut coefs,
                    &mut bits,
                );
                load_block(&self.cr, half, 0, mcu * 8, &mut block);
                dc[2] = code_block(
                    &mut block,
                    &tables.chroma,
                    &CHROMA,
                    dc[2],
                    &mut coefs,
                    &mut bits,
                );
            }
        }
        bits.flush();
        out.extend_from_slice(&[0xFF, EOI]);
        Ok(())
    }
}

// --- markers and headers --------------------------------------------------------------------

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOF0: u8 = 0xC0;
const DQT: u8 = 0xDB;
const DRI: u8 = 0xDD;
const SOS: u8 = 0xDA;
const APP0: u8 = 0xE0;
const RST0: u8 = 0xD0;

/// Zigzag position → natural (row-major) index, ITU T.81 figure A.6.
pub const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Annex K.1 luminance and K.2 chrominance quantisation tables (natural order, quality 50).
const LUMA_Q: [u8; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_Q: [u8; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// libjpeg's quality scaling (`jpeg_quality_scaling`, baseline: entries clamped to 1..=255).
fn scaled_table(base: &[u8; 64], quality: u8) -> [u8; 64] {
    let q = u32::from(quality.clamp(1, 100));
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    base.map(|v| ((u32::from(v) * scale + 50) / 100).clamp(1, 255) as u8)
}

/// What depends on the quality: the DQT segment and the quantisation multipliers.
struct Tables {
    quality: u8,
    /// Both tables in one DQT segment, marker included (2 + 2 + 2 × 65 bytes).
    dqt: [u8; 134],
    luma: [f32; 64],
    chroma: [f32; 64],
}

/// AAN scale factors: cos(k·π/16)·√2 for k ≥ 1, 1 for k = 0 (the decoder's inverse DCT
/// uses them too).
pub(super) const AAN: [f64; 8] = [
    1.0,
    1.387_039_845,
    1.306_562_965,
    1.175_875_602,
    1.0,
    0.785_694_958,
    0.541_196_100,
    0.275_899_379,
];

impl Tables {
    fn new(quality: u8) -> Tables {
        let luma_q = scaled_table(&LUMA_Q, quality);
        let chroma_q = scaled_table(&CHROMA_Q, quality);
        let mut dqt = [0u8; 134];
        dqt[..4].copy_from_slice(&[0xFF, DQT, 0, 132]);
        for (t, table) in [&luma_q, &chroma_q].into_iter().enumerate() {
            let at = 4 + t * 65;
            dqt[at] = t as u8; // 8-bit precision, table id t
            for (k, &n) in ZIGZAG.iter().enumerate() {
                dqt[at + 1 + k] = table[usize::from(n)];
            }
        }
        Tables {
            quality,
            dqt,
            luma: multipliers(&luma_q),
            chroma: multipliers(&chroma_q),
        }
    }
}

/// Per-coefficient multipliers in the DCT's output layout (see [`fdct`]: transposed), with
/// the AAN output scale and the DCT's factor 8 folded in.
fn multipliers(q: &[u8; 64]) -> [f32; 64] {
    let mut m = [0f32; 64];
    for u in 0..8 {
        for v in 0..8 {
            // DCT output [u][v] is the coefficient at natural index v * 8 + u.
            let div = f64::from(q[v * 8 + u]) * AAN[u] * AAN[v] * 8.0;
            m[u * 8 + v] = (1.0 / div) as f32;
        }
    }
    m
}

fn write_headers(
    out: &mut Vec<u8>,
    w: u16,
    h: u16,
    chroma: Chroma,
    tables: &Tables,
    restart_interval: Option<usize>,
) {
    out.extend_from_slice(&[0xFF, SOI]);
    // JFIF APP0: version 1.1, no density unit, 1:1 aspect, no thumbnail.
    out.extend_from_slice(&[
        0xFF, APP0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    ]);
    out.extend_from_slice(&tables.dqt);
    let [wh, wl] = w.to_be_bytes();
    let [hh, hl] = h.to_be_bytes();
    let luma_sampling = match chroma {
        Chroma::H2V2 => 0x22,
        Chroma::H2V1 => 0x21,
    };
    out.extend_from_slice(&[
        0xFF,
        SOF0,
        0,
        17,
        8,
        hh,
        hl,
        wh,
        wl,
        3,
        1,
        luma_sampling,
        0,
        2,
        0x11,
        1,
        3,
        0x11,
        1,
    ]);
    out.extend_from_slice(&super::jpeg::STANDARD_DHT);
    if let Some(n) = restart_interval {
        let [nh, nl] = (n as u16).to_be_bytes();
        out.extend_from_slice(&[0xFF, DRI, 0, 4, nh, nl]);
    }
    // One interleaved scan: Y with tables 0/0, Cb and Cr with 1/1; spectral 0..63.
    out.extend_from_slice(&[0xFF, SOS, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
}

// --- colour ---------------------------------------------------------------------------------
//
// Written as plain index loops over slices cut to length first: that is the form the
// compiler turns into `ld3`/`ld2` loads and 4-lane float arithmetic on NEON (a
// `chunks_exact(6)` form came out as single-lane loads, 5× the instructions).

/// Converts the MCU row of pixel rows starting at `top` into the level-shifted planes: Y at
/// full resolution (`chroma.mcu_rows()` rows × `pad_w`), Cb and Cr averaged over 2×2 (H2V2)
/// or 2×1 (H2V1) into 8 rows × `pad_w / 2`. Rows past the bottom repeat the last row and
/// columns past the right edge the last column (as libjpeg pads). `split` is scratch for
/// two rows as separate R, G, B planes.
#[allow(clippy::too_many_arguments)]
fn convert_rows(
    rgb: &[u8],
    w: usize,
    h: usize,
    top: usize,
    chroma: Chroma,
    pad_w: usize,
    planes: (&mut [f32], &mut [f32], &mut [f32]),
    split: &mut [u8],
) {
    let (y, cb, cr) = planes;
    let stride = w * 3;
    let src_row = |r: usize| {
        let r = (top + r).min(h - 1);
        &rgb[r * stride..r * stride + stride]
    };
    let half = pad_w / 2;
    let (first, second) = split.split_at_mut(3 * w);
    for r in 0..8 {
        let cb = &mut cb[r * half..(r + 1) * half];
        let cr = &mut cr[r * half..(r + 1) * half];
        match chroma {
            Chroma::H2V2 => {
                let (a, b) = (src_row(2 * r), src_row(2 * r + 1));
                luma_row(a, &mut y[2 * r * pad_w..(2 * r + 1) * pad_w]);
                luma_row(b, &mut y[(2 * r + 1) * pad_w..(2 * r + 2) * pad_w]);
                split_row(a, first);
                split_row(b, second);
                chroma_row(first, second, cb, cr);
            }
            Chroma::H2V1 => {
                let a = src_row(r);
                luma_row(a, &mut y[r * pad_w..(r + 1) * pad_w]);
                split_row(a, first);
                chroma_row(first, first, cb, cr);
            }
        }
    }
}

/// The 16-row MCU row starting at `top` of 4:2:0 planes, level-shifted, padded as
/// [`convert_rows`] pads.
fn planar_rows(
    p: &Planar<'_>,
    w: usize,
    h: usize,
    top: usize,
    pad_w: usize,
    planes: (&mut [f32], &mut [f32], &mut [f32]),
) {
    let (y, cb, cr) = planes;
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let half = pad_w / 2;
    for r in 0..16 {
        let at = (top + r).min(h - 1) * p.y_stride;
        level_row(&p.y[at..at + w], &mut y[r * pad_w..(r + 1) * pad_w]);
    }
    for r in 0..8 {
        let at = (top / 2 + r).min(ch - 1) * p.c_stride;
        level_row(&p.cb[at..at + cw], &mut cb[r * half..(r + 1) * half]);
        level_row(&p.cr[at..at + cw], &mut cr[r * half..(r + 1) * half]);
    }
}

/// Samples − 128, padded with the last one.
fn level_row(src: &[u8], dst: &mut [f32]) {
    let n = src.len();
    for (d, &v) in dst[..n].iter_mut().zip(src) {
        *d = f32::from(v) - 128.0;
    }
    let last = dst[n - 1];
    dst[n..].fill(last);
}

/// Y − 128 of one row (BT.601 full range, as JFIF), padded with the last pixel's value.
fn luma_row(src: &[u8], dst: &mut [f32]) {
    let n = src.len() / 3;
    let (src, out) = (&src[..3 * n], &mut dst[..n]);
    for i in 0..n {
        let (r, g, b) = (
            f32::from(src[3 * i]),
            f32::from(src[3 * i + 1]),
            f32::from(src[3 * i + 2]),
        );
        out[i] = 0.299 * r + 0.587 * g + 0.114 * b - 128.0;
    }
    let last = dst[n - 1];
    dst[n..].fill(last);
}

/// Packed RGB → R, G and B planes, one after the other in `planes` (3 × n bytes).
fn split_row(src: &[u8], planes: &mut [u8]) {
    let n = src.len() / 3;
    let (r, rest) = planes.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    let (src, g, b) = (&src[..3 * n], &mut g[..n], &mut b[..n]);
    for i in 0..n {
        r[i] = src[3 * i];
        g[i] = src[3 * i + 1];
        b[i] = src[3 * i + 2];
    }
}

/// The first `len` samples of each plane of a [`split_row`] row of `n` pixels.
fn planes(p: &[u8], n: usize, len: usize) -> (&[u8], &[u8], &[u8]) {
    let (r, rest) = p.split_at(n);
    let (g, b) = rest.split_at(n);
    (&r[..len], &g[..len], &b[..len])
}

/// Sum of the pixel pair `i` of two rows' plane (four samples).
#[inline(always)]
fn sum4(a: &[u8], b: &[u8], i: usize) -> f32 {
    f32::from(
        u16::from(a[2 * i])
            + u16::from(a[2 * i + 1])
            + u16::from(b[2 * i])
            + u16::from(b[2 * i + 1]),
    )
}

/// Cb and Cr (BT.601 full range) from sums of four R, G and B samples: the 1/4 of the average
/// is in the coefficients.
#[inline(always)]
fn cb_cr(r: f32, g: f32, b: f32) -> (f32, f32) {
    (
        -0.042_184 * r - 0.082_816 * g + 0.125 * b,
        0.125 * r - 0.104_672 * g - 0.020_328 * b,
    )
}

/// Cb and Cr of pixel pairs averaged over two rows (given as [`split_row`] planes; the same
/// row twice for 4:2:2), padded with the last value. A sum of four pixels converted once is
/// the average of the four converted: the 1/4 is in the coefficients.
fn chroma_row(a: &[u8], b: &[u8], cb: &mut [f32], cr: &mut [f32]) {
    let n = a.len() / 3;
    let pairs = n / 2;
    let ((r0, g0, b0), (r1, g1, b1)) = (planes(a, n, 2 * pairs), planes(b, n, 2 * pairs));
    let (cb_out, cr_out) = (&mut cb[..pairs], &mut cr[..pairs]);
    for i in 0..pairs {
        (cb_out[i], cr_out[i]) = cb_cr(sum4(r0, r1, i), sum4(g0, g1, i), sum4(b0, b1, i));
    }
    let mut filled = pairs;
    if n % 2 == 1 {
        // The odd last column pairs with itself (its padding copy).
        let (ra, ga, ba) = (a[n - 1], a[2 * n - 1], a[3 * n - 1]);
        let (rb, gb, bb) = (b[n - 1], b[2 * n - 1], b[3 * n - 1]);
        let r = 2.0 * (f32::from(ra) + f32::from(rb));
        let g = 2.0 * (f32::from(ga) + f32::from(gb));
        let bl = 2.0 * (f32::from(ba) + f32::from(bb));
        (cb[pairs], cr[pairs]) = cb_cr(r, g, bl);
        filled += 1;
    }
    let (lb, lr) = (cb[filled - 1], cr[filled - 1]);
    cb[filled..].fill(lb);
    cr[filled..].fill(lr);
}

// --- blocks ---------------------------------------------------------------------------------

fn load_block(plane: &[f32], stride: usize, row: usize, col: usize, block: &mut [[f32; 8]; 8]) {
    for (r, dst) in block.iter_mut().enumerate() {
        let at = (row + r) * stride + col;
        dst.copy_from_slice(&plane[at..at + 8]);
    }
}

/// The 8-point AAN forward DCT (libjpeg's `jfdctflt`) down the columns of `b`: every
/// statement works on eight lanes at once, which the compiler turns into vector code.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `i` is the lane, the same in all eight rows
fn fdct_columns(b: &mut [[f32; 8]; 8]) {
    for i in 0..8 {
        let tmp0 = b[0][i] + b[7][i];
        let tmp7 = b[0][i] - b[7][i];
        let tmp1 = b[1][i] + b[6][i];
        let tmp6 = b[1][i] - b[6][i];
        let tmp2 = b[2][i] + b[5][i];
        let tmp5 = b[2][i] - b[5][i];
        let tmp3 = b[3][i] + b[4][i];
        let tmp4 = b[3][i] - b[4][i];

        let tmp10 = tmp0 + tmp3;
        let tmp13 = tmp0 - tmp3;
        let tmp11 = tmp1 + tmp2;
        let tmp12 = tmp1 - tmp2;
        b[0][i] = tmp10 + tmp11;
        b[4][i] = tmp10 - tmp11;
        let z1 = (tmp12 + tmp13) * FRAC_1_SQRT_2;
        b[2][i] = tmp13 + z1;
        b[6][i] = tmp13 - z1;

        let tmp10 = tmp4 + tmp5;
        let tmp11 = tmp5 + tmp6;
        let tmp12 = tmp6 + tmp7;
        let z5 = (tmp10 - tmp12) * 0.382_683_43;
        let z2 = 0.541_196_1 * tmp10 + z5;
        let z4 = 1.306_563 * tmp12 + z5;
        let z3 = tmp11 * FRAC_1_SQRT_2;
        let z11 = tmp7 + z3;
        let z13 = tmp7 - z3;
        b[5][i] = z13 + z2;
        b[3][i] = z13 - z2;
        b[1][i] = z11 + z4;
        b[7][i] = z11 - z4;
    }
}

/// 2-D DCT: columns, transpose, columns again. The result is transposed: `b[u][v]` holds the
/// coefficient of horizontal frequency `u`, vertical frequency `v` (natural index `v*8+u`);
/// [`multipliers`] and [`ZIGZAG_T`] read it that way, which saves the second transpose.
fn fdct(b: &mut [[f32; 8]; 8]) {
    fdct_columns(b);
    let mut t = [[0f32; 8]; 8];
    for (r, row) in b.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            t[c][r] = v;
        }
    }
    *b = t;
    fdct_columns(b);
}

/// Zigzag position → index into the transposed DCT output.
const ZIGZAG_T: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut k = 0;
    while k < 64 {
        let n = ZIGZAG[k];
        t[k] = (n % 8) * 8 + n / 8;
        k += 1;
    }
    t
};

/// Index into the transposed DCT output → zigzag position (the inverse of [`ZIGZAG_T`]).
const ZIGZAG_RANK_T: [u32; 64] = {
    let mut r = [0u32; 64];
    let mut k = 0;
    while k < 64 {
        r[ZIGZAG_T[k] as usize] = k as u32;
        k += 1;
    }
    r
};

/// DCT, quantisation and Huffman coding of one block; returns its DC value (the next
/// block's predictor).
fn code_block(
    block: &mut [[f32; 8]; 8],
    mult: &[f32; 64],
    huff: &Huffman,
    prev_dc: i32,
    coefs: &mut [i32; 64],
    bits: &mut BitWriter<'_>,
) -> i32 {
    fdct(block);
    let flat = block.as_flattened();
    for ((q, &c), &m) in coefs.iter_mut().zip(flat).zip(mult) {
        let x = c * m;
        // Round half away from zero (as libjpeg); `as` truncates toward zero.
        *q = (x + 0.5f32.copysign(x)) as i32;
    }
    let dc = coefs[0];
    huff.encode(coefs, dc - prev_dc, bits);
    dc
}

// --- Huffman --------------------------------------------------------------------------------

/// Code and length per symbol of one component class's DC and AC tables.
struct Huffman {
    dc: [(u16, u8); 12],
    ac: [(u16, u8); 256],
}

/// Canonical codes from an Annex C (BITS, HUFFVAL) pair.
const fn codes<const N: usize>(bits: &[u8; 16], values: &[u8]) -> [(u16, u8); N] {
    let mut table = [(0u16, 0u8); N];
    let mut code = 0u16;
    let mut k = 0;
    let mut len = 0;
    while len < 16 {
        let mut i = 0;
        while i < bits[len] {
            table[values[k] as usize] = (code, len as u8 + 1);
            code += 1;
            k += 1;
            i += 1;
        }
        code <<= 1;
        len += 1;
    }
    table
}

use super::jpeg::annex_k;

static LUMA: Huffman = Huffman {
    dc: codes(&annex_k::DC_LUMA_BITS, &annex_k::DC_VALUES),
    ac: codes(&annex_k::AC_LUMA_BITS, &annex_k::AC_LUMA_VALUES),
};
static CHROMA: Huffman = Huffman {
    dc: codes(&annex_k::DC_CHROMA_BITS, &annex_k::DC_VALUES),
    ac: codes(&annex_k::AC_CHROMA_BITS, &annex_k::AC_CHROMA_VALUES),
};

/// Bits needed for `v`'s magnitude (its JPEG size category) and the value bits JPEG sends
/// for it (one's complement for negatives).
#[inline(always)]
fn category(v: i32) -> (u32, u32) {
    let size = 32 - v.unsigned_abs().leading_zeros();
    let bits = if v < 0 { v - 1 } else { v } as u32 & ((1u32 << size) - 1);
    (size, bits)
}

impl Huffman {
    fn encode(&self, coefs: &[i32; 64], diff: i32, bits: &mut BitWriter<'_>) {
        let (size, value) = category(diff);
        let (code, len) = self.dc[size as usize];
        bits.put((u32::from(code) << size) | value, u32::from(len) + size);

        // Zigzag position of the last non-zero AC coefficient (0: none), over all 64 lanes
        // at once; the loop below then stops there instead of testing the zero tail.
        let last = {
            // Eight lanes of running maxima: the form the compiler vectorises.
            let mut m = [0u32; 8];
            for (c, r) in coefs.chunks_exact(8).zip(ZIGZAG_RANK_T.chunks_exact(8)) {
                for l in 0..8 {
                    m[l] = m[l].max(if c[l] != 0 { r[l] } else { 0 });
                }
            }
            m.iter().fold(0, |a, &b| a.max(b))
        };
        let mut run = 0u32;
        for &at in &ZIGZAG_T[1..=last as usize] {
            let c = coefs[usize::from(at)];
            if c == 0 {
                run += 1;
                continue;
            }
            while run >= 16 {
                let (code, len) = self.ac[0xF0];
                bits.put(u32::from(code), u32::from(len));
                run -= 16;
            }
            let (size, value) = category(c);
            let (code, len) = self.ac[((run << 4) | size) as usize];
            bits.put((u32::from(code) << size) | value, u32::from(len) + size);
            run = 0;
        }
        if last < 63 {
            let (code, len) = self.ac[0x00];
            bits.put(u32::from(code), u32::from(len));
        }
    }
}

/// Entropy-coded bytes with 0xFF stuffing, 32 bits at a time.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    /// Bits in `acc` not yet written (the low `n` bits).
    n: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> BitWriter<'a> {
        BitWriter { out, acc: 0, n: 0 }
    }

    /// Appends the low `len` (≤ 27) bits of `v`.
    #[inline(always)]
    fn put(&mut self, v: u32, len: u32) {
        self.acc = (self.acc << len) | u64::from(v);
        self.n += len;
        if self.n >= 32 {
            self.n -= 32;
            let word = (self.acc >> self.n) as u32;
            // A byte of `!word` is zero exactly where `word` has 0xFF.
            let x = !word;
            if x.wrapping_sub(0x0101_0101) & !x & 0x8080_8080 == 0 {
                self.out.extend_from_slice(&word.to_be_bytes());
            } else {
                for byte in word.to_be_bytes() {
                    self.out.push(byte);
                    if byte == 0xFF {
                        self.out.push(0);
                    }
                }
            }
        }
    }

    /// Pads the last byte with 1 bits and writes what is left.
    fn flush(&mut self) {
        let pad = (8 - self.n % 8) % 8;
        self.put((1 << pad) - 1, pad);
        while self.n >= 8 {
            self.n -= 8;
            let byte = (self.acc >> self.n) as u8;
            self.out.push(byte);
            if byte == 0xFF {
                self.out.push(0);
            }
        }
    }

    fn restart(&mut self, k: u8) {
        self.flush();
        self.out.extend_from_slice(&[0xFF, RST0 + k]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::psnr;
    use super::*;

    #[test]
    fn annex_k_codes_are_canonical() {
        // K.3: DC luminance category 0 is "00", category 11 is "111111110".
        assert_eq!(LUMA.dc[0], (0b00, 2));
        assert_eq!(LUMA.dc[11], (0b1_1111_1110, 9));
        // K.5: EOB is "1010", ZRL is "11111111001".
        assert_eq!(LUMA.ac[0x00], (0b1010, 4));
        assert_eq!(LUMA.ac[0xF0], (0b111_1111_1001, 11));
        // K.6: chrominance EOB is "00".
        assert_eq!(CHROMA.ac[0x00], (0b00, 2));
    }

    #[test]
    fn categories_follow_t81_table_f1() {
        assert_eq!(category(0), (0, 0));
        assert_eq!(category(1), (1, 1));
        assert_eq!(category(-1), (1, 0));
        assert_eq!(category(-3), (2, 0b00));
        assert_eq!(category(5), (3, 0b101));
        assert_eq!(category(-5), (3, 0b010));
        assert_eq!(category(1023), (10, 1023));
        assert_eq!(category(-2047), (11, 0));
    }

    #[test]
    fn quality_50_is_annex_k_and_baseline_clamps() {
        assert_eq!(scaled_table(&LUMA_Q, 50), LUMA_Q);
        assert!(scaled_table(&LUMA_Q, 1).iter().all(|&v| v == 255));
        assert!(scaled_table(&LUMA_Q, 100).iter().all(|&v| v == 1));
    }

    #[test]
    fn a_flat_block_is_its_dc_only() {
        let mut b = [[10.0f32; 8]; 8];
        fdct(&mut b);
        // DC carries 8 × 8 × 10 / 8 (AAN output at scale 8 × aan[0]²) = 640; nothing else.
        assert!((b[0][0] - 640.0).abs() < 1e-3, "{}", b[0][0]);
        assert!(b.as_flattened()[1..].iter().all(|c| c.abs() < 1e-3));
    }

    #[test]
    fn the_dct_matches_the_definition() {
        // A non-symmetric block: the transposed layout is checked too.
        let mut b = [[0f32; 8]; 8];
        for (r, row) in b.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = ((r * 13 + c * 7) % 23) as f32 - 11.0 + if c == 1 { 30.0 } else { 0.0 };
            }
        }
        let src = b;
        fdct(&mut b);
        let alpha = |k: usize| if k == 0 { (0.5f64).sqrt() } else { 1.0 };
        for v in 0..8 {
            for u in 0..8 {
                let mut sum = 0.0f64;
                for (y, row) in src.iter().enumerate() {
                    for (x, &s) in row.iter().enumerate() {
                        sum += f64::from(s)
                            * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos()
                            * ((2 * y + 1) as f64 * v as f64 * std::f64::consts::PI / 16.0).cos();
                    }
                }
                // T.81 A.3.3 with the 1/4 left in: times 8 (libjpeg's DCT scale) and the
                // AAN scales, which `multipliers` divides out again.
                let want = 0.25 * alpha(u) * alpha(v) * sum * 8.0 * AAN[u] * AAN[v];
                let got = f64::from(b[u][v]);
                assert!(
                    (got - want).abs() < 1e-2 * want.abs().max(1.0),
                    "u {u} v {v}: {got} vs {want}"
                );
            }
        }
    }

    /// zune-jpeg's decode of `jpeg` as RGB, with its size.
    fn decode(jpeg: &[u8]) -> (Vec<u8>, usize, usize) {
        use zune_jpeg::zune_core::bytestream::ZCursor;
        let mut d = zune_jpeg::JpegDecoder::new(ZCursor::new(jpeg));
        let px = d.decode().expect("zune-jpeg decodes our output");
        let (w, h) = d.dimensions().expect("dimensions");
        (px, w, h)
    }

    fn reference(
        rgb: &[u8],
        w: u16,
        h: u16,
        q: u8,
        sampling: jpeg_encoder::SamplingFactor,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, q);
        enc.set_sampling_factor(sampling);
        enc.encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
            .expect("jpeg-encoder");
        out
    }

    /// Against an encoder nobody here wrote (jpeg-encoder, the pipeline's encoder before
    /// this one), on the camera scene at the sizes the pipeline sends, odd sizes included:
    /// the decoded picture is as close to the source (PSNR within 0.1 dB or better; it is 0.2-2 dB better) and the
    /// file about as large (within 8 %).
    #[test]
    fn as_good_and_as_small_as_jpeg_encoder() {
        use jpeg_encoder::SamplingFactor as S;
        let mut enc = Encoder::new();
        for (w, h, chroma, sampling, q) in [
            (768u16, 432u16, Chroma::H2V2, S::R_4_2_0, 80u8),
            (768, 576, Chroma::H2V2, S::R_4_2_0, 80),
            (101, 77, Chroma::H2V2, S::R_4_2_0, 80),
            (640, 360, Chroma::H2V2, S::R_4_2_0, 50),
            (1280, 720, Chroma::H2V1, S::R_4_2_2, 85),
            (33, 17, Chroma::H2V1, S::R_4_2_2, 95),
        ] {
            let rgb = crate::bench::scene(w, h);
            let mut ours = Vec::new();
            enc.encode_rgb(
                &rgb,
                u32::from(w),
                u32::from(h),
                Settings {
                    quality: q,
                    chroma,
                    restart_rows: false,
                },
                &mut ours,
            )
            .expect("encodes");
            let theirs = reference(&rgb, w, h, q, sampling);
            let (px, dw, dh) = decode(&ours);
            assert_eq!((dw, dh), (usize::from(w), usize::from(h)));
            let (ref_px, _, _) = decode(&theirs);
            let (p_ours, p_theirs) = (psnr(&rgb, &px), psnr(&rgb, &ref_px));
            let size = ours.len() as f64 / theirs.len() as f64;
            eprintln!(
                "{w}x{h} q{q} {chroma:?}: ours {} bytes {p_ours:.2} dB, jpeg-encoder {} bytes {p_theirs:.2} dB, ours vs theirs {:.2} dB",
                ours.len(),
                theirs.len(),
                psnr(&px, &ref_px)
            );
            assert!(
                p_ours > p_theirs - 0.1,
                "{w}x{h}: {p_ours:.2} dB vs {p_theirs:.2} dB"
            );
            assert!(
                (0.92..1.08).contains(&size),
                "{w}x{h}: {} vs {} bytes",
                ours.len(),
                theirs.len()
            );
        }
    }

    #[test]
    fn restart_rows_decode_to_the_same_picture() {
        let (w, h) = (200u16, 70u16);
        let rgb = crate::bench::scene(w, h);
        let mut enc = Encoder::new();
        let [plain, restarts] = [false, true].map(|restart_rows| {
            let mut out = Vec::new();
            let settings = Settings {
                quality: 80,
                chroma: Chroma::H2V2,
                restart_rows,
            };
            enc.encode_rgb(&rgb, 200, 70, settings, &mut out)
                .expect("encodes");
            out
        });
        // 5 MCU rows: RST0..RST3 between them, and a DRI of 13 MCUs.
        let markers: Vec<u8> = restarts
            .windows(2)
            .filter(|p| p[0] == 0xFF && (RST0..RST0 + 8).contains(&p[1]))
            .map(|p| p[1] - RST0)
            .collect();
        assert_eq!(markers, [0, 1, 2, 3]);
        assert!(restarts.windows(6).any(|p| p == [0xFF, DRI, 0, 4, 0, 13]));
        assert_eq!(decode(&plain).0, decode(&restarts).0);
    }

    #[test]
    fn bad_sizes_are_errors_not_panics() {
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        for (w, h) in [(0, 8), (8, 0), (70_000, 1)] {
            let rgb = vec![0u8; 3 * w as usize * h as usize];
            assert_eq!(
                enc.encode_rgb(
                    &rgb,
                    w,
                    h,
                    Settings {
                        quality: 80,
                        chroma: Chroma::H2V2,
                        restart_rows: false
                    },
                    &mut out
                ),
                Err(EncodeError::Size {
                    width: w,
                    height: h
                })
            );
        }
        assert!(matches!(
            enc.encode_rgb(
                &[0; 10],
                4,
                4,
                Settings {
                    quality: 80,
                    chroma: Chroma::H2V2,
                    restart_rows: false
                },
                &mut out
            ),
            Err(EncodeError::Short { need: 48, .. })
        ));
    }

    /// Every byte value the entropy coder can meet: a 0xFF in the coded data is stuffed, so
    /// the only markers in the scan are the restarts.
    #[test]
    fn noise_is_stuffed_and_decodes() {
        let mut seed = 0x9E37_79B9u32;
        // Grey noise: all of it is in luma, which 4:2:0 keeps at full resolution.
        let rgb: Vec<u8> = (0..48 * 48)
            .flat_map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                [seed as u8; 3]
            })
            .collect();
        let mut out = Vec::new();
        Encoder::new()
            .encode_rgb(
                &rgb,
                48,
                48,
                Settings {
                    quality: 100,
                    chroma: Chroma::H2V2,
                    restart_rows: false,
                },
                &mut out,
            )
            .expect("encodes");
        let scan_start = out.windows(2).position(|p| p == [0xFF, SOS]).expect("SOS") + 14;
        let scan = &out[scan_start..out.len() - 2];
        assert!(scan.windows(2).all(|p| p[0] != 0xFF || p[1] == 0));
        let (px, _, _) = decode(&out);
        assert!(psnr(&rgb, &px) > 40.0, "{}", psnr(&rgb, &px));
    }

    #[test]
    fn planes_encode_to_what_they_hold() {
        // Planes with edges and gradients, odd sizes, strides wider than the rows.
        let mut enc = Encoder::new();
        let mut dec = crate::video::decode::Decoder::new();
        for (w, h) in [(768usize, 432usize), (333, 211), (17, 9)] {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let (ys, cs) = (w + 5, cw + 3);
            let mut y = vec![0u8; ys * h];
            let mut cb = vec![0u8; cs * ch];
            let mut cr = vec![0u8; cs * ch];
            for r in 0..h {
                for c in 0..w {
                    y[r * ys + c] = ((c * 255 / w) as u8 / 2)
                        + if (r / 20 + c / 30) % 2 == 0 { 100 } else { 0 };
                }
            }
            for r in 0..ch {
                for c in 0..cw {
                    cb[r * cs + c] = 64 + (r * 128 / ch) as u8;
                    cr[r * cs + c] = 192 - (c * 128 / cw) as u8;
                }
            }
            let mut out = Vec::new();
            let planar = Planar {
                y: &y,
                y_stride: ys,
                cb: &cb,
                cr: &cr,
                c_stride: cs,
            };
            let settings = Settings {
                quality: 90,
                chroma: Chroma::H2V1,
                restart_rows: false,
            };
            enc.encode_planar(planar, w as u32, h as u32, settings, &mut out)
                .expect("encodes");
            let p = dec.decode(&out, 0, 1 << 24).expect("decodes");
            assert_eq!((p.width, p.height), (w as u32, h as u32));
            let (dcb, dcr) = p.chroma.expect("colour");
            assert_eq!(
                (dcb.sub, dcb.width, dcb.height),
                ((2, 2), cw, ch),
                "4:2:0 whatever the settings"
            );
            let plane = |d: &[u8], stride: usize, pw: usize, ph: usize| -> Vec<u8> {
                (0..ph)
                    .flat_map(|r| d[r * stride..r * stride + pw].to_vec())
                    .collect()
            };
            let pairs = [
                (plane(&y, ys, w, h), plane(p.y.data, p.y.stride, w, h)),
                (plane(&cb, cs, cw, ch), plane(dcb.data, dcb.stride, cw, ch)),
                (plane(&cr, cs, cw, ch), plane(dcr.data, dcr.stride, cw, ch)),
            ];
            for (i, (want, got)) in pairs.iter().enumerate() {
                let db = psnr(want, got);
                assert!(db > 36.0, "{w}x{h} plane {i}: {db:.1} dB");
            }
        }
        let short = Planar {
            y: &[0; 10],
            y_stride: 4,
            cb: &[0; 4],
            cr: &[0; 4],
            c_stride: 2,
        };
        let settings = Settings {
            quality: 90,
            chroma: Chroma::H2V2,
            restart_rows: false,
        };
        assert!(matches!(
            enc.encode_planar(short, 4, 4, settings, &mut Vec::new()),
            Err(EncodeError::Short { .. })
        ));
    }
}
