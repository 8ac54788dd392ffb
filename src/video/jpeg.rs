//! The JPEG pipeline: one camera frame in, one JPEG for the Live API out. Pure: no I/O, no
//! threads, no clock. The capture thread calls [`trim_to_eoi`]; the video worker owns one
//! [`Pipeline`] and calls [`Pipeline::process`] about once a second.
//!
//! ```text
//!  frame ─▶ walk markers (SOI … EOI; cut stale bytes) ─┬─▶ passthrough: input bytes, zero CPU
//!                                                      └─▶ decode to Y, Cb, Cr planes
//!            (`super::decode`, at 1/2, 1/4, 1/8 scale when the frame is ≥ 2× the content;
//!             zune-jpeg → RGB → planes for what it does not take)
//!            ─▶ fast_image_resize Convolution(Bilinear) per plane, chroma straight to 4:2:0
//!               (antialiased; letterbox pads black)
//!            ─▶ encode the planes (our own, `super::encode`), configured quality ─▶ JPEG
//! ```
//!
//! A camera frame never exists as RGB (only one our decoder does not take): no colour
//! conversion either way and no chroma upsampling, and a 4:2:2 frame is two bytes a pixel to
//! resize instead of three.
//!
//! Letterbox with bars above and below encodes only the MCU rows that hold picture and
//! splices in a pre-encoded black row for each bar row, joined by restart markers (`Band`):
//! the same pixels as encoding the whole square, without paying to DCT-code the bars.
//!
//! Why these crates and this resize filter: `docs/design.md`, "JPEG pipeline" (measured).
//! Every buffer (decoded planes, output canvas, output JPEG, spliced input) lives in the
//! [`Pipeline`] and only grows, so RSS stays flat across frames.
//!
//! Camera frames are untrusted input: a corrupt or truncated frame is a [`FrameError`], never a
//! panic, and a frame header that claims a huge image is refused before anything is allocated
//! ([`MAX_FRAME_PIXELS`]).

use fast_image_resize::images::{TypedCroppedImageMut, TypedImage, TypedImageRef};
use fast_image_resize::pixels::U8;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};

use super::decode::{Decoder, PlaneRef, Planes, Shift};
use super::encode::{Chroma, EncodeError, Encoder, Planar, Settings};
use zune_jpeg::errors::DecodeErrors;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Largest frame the pipeline decodes, in pixels (4096×4096; up to 48 MiB of planes, kept for
/// the next frame). A frame header claiming more is refused with [`FrameError::TooLarge`]
/// before any buffer is allocated: a corrupt SOF must not make a 512 MB Pi allocate gigabytes.
/// A frame only zune-jpeg takes needs its RGB and planes for a moment on top; they are freed
/// after the frame.
pub const MAX_FRAME_PIXELS: u64 = 4096 * 4096;

/// Range `PipelineConfig::size` is clamped to, pixels (config validation keeps it in 64..=2048).
pub const SIZE_RANGE_PX: std::ops::RangeInclusive<u32> = 16..=4096;

/// How a camera frame is fitted into the `size`×`size` output.
///
/// Frames smaller than the target: `Fit` and `Letterbox` never upscale (upscaling adds bytes
/// and no detail for the model); `Crop` and `Stretch` promise an exact `size`×`size` image, so
/// they scale up when they must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Geometry {
    /// Whole scene scaled to fit inside `size`×`size`, centred and padded with black bars:
    /// always exactly `size`×`size`. A frame that already fits is centred unscaled.
    Letterbox,
    /// Scaled to cover `size`×`size`, then centre-cropped: exactly `size`×`size`.
    Crop,
    /// Scaled so the long side is `size`, aspect kept, no padding (1280×720 → 768×432). A
    /// frame whose long side is already ≤ `size` keeps its size.
    Fit,
    /// Scaled to exactly `size`×`size`, ignoring the aspect ratio.
    Stretch,
}

/// What [`Pipeline`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Side of the output square, pixels (for `Fit`: the long side). Clamped to
    /// [`SIZE_RANGE_PX`].
    pub size: u32,
    pub geometry: Geometry,
    /// JPEG quality of re-encoded frames, clamped to 1..=100 (passed-through frames keep
    /// theirs).
    pub quality: u8,
}

/// Why a frame could not be turned into a JPEG to send. The structural variants (`NoSoi`,
/// `NoEoi`, `Truncated`, `Malformed`) come from [`trim_to_eoi`] and need no decoding (zune-jpeg's
/// fallback path can also say `Malformed`).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The buffer does not start with a JPEG start-of-image marker (FF D8).
    #[error("not a JPEG: no start-of-image marker (FF D8) at the start of the frame")]
    NoSoi,
    /// The entropy-coded data runs to the end of the buffer with no end-of-image marker.
    #[error("the frame has no end-of-image marker (FF D9): truncated scan data")]
    NoEoi,
    /// The buffer ends inside a marker segment (header, tables).
    #[error("the frame ends inside a marker segment")]
    Truncated,
    /// The marker structure is broken (wrong byte where a marker must be, bad length, no
    /// frame header or no scan before EOI, zero width or height).
    #[error("malformed JPEG: {0}")]
    Malformed(&'static str),
    /// The frame header claims more than [`MAX_FRAME_PIXELS`].
    #[error("the frame is {width}×{height}, over the limit of {max_pixels} pixels")]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    /// zune-jpeg refused the entropy-coded data (after the standard tables were spliced in if
    /// the frame had none).
    #[error("decoding: {0}")]
    Decode(DecodeErrors),
    /// fast_image_resize refused a buffer or crop box (a bug here, not bad input).
    #[error("resizing: {0}")]
    Resize(String),
    /// The encoder refused the image (a size outside JPEG's range: a bug here, not bad input).
    #[error("encoding: {0}")]
    Encode(EncodeError),
}

/// One frame's result. `jpeg` borrows either the input (passthrough) or the pipeline's output
/// buffer, so it lives until the next `process` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processed<'a> {
    /// The JPEG to send.
    pub jpeg: &'a [u8],
    /// Its width, pixels.
    pub width: u32,
    /// Its height, pixels.
    pub height: u32,
    /// `true` when `jpeg` is the input frame itself (trimmed at its EOI), untouched.
    pub passthrough: bool,
}

/// Decode → resize → encode with buffers reused from frame to frame.
pub struct Pipeline {
    cfg: PipelineConfig,
    decoder: Decoder,
    /// One resizer for luma and one for chroma: each keeps its buffers sized for its plane.
    resizers: [Resizer; 2],
    encoder: Encoder,
    /// Frames our decoder does not take (progressive, CMYK…): zune-jpeg's picture as
    /// full-resolution Y, Cb, Cr planes. Freed after the frame: a camera that needs this
    /// path is rare, and a corrupt frame must not pin a second copy of the largest frame.
    fallback: [Vec<u8>; 3],
    /// The output's Y, Cb and Cr planes (4:2:0): the whole output, or for letterbox with bars
    /// above and below only the band of MCU rows that holds picture.
    canvas: [Vec<u8>; 3],
    /// The frame with the standard Huffman tables spliced in, for zune-jpeg.
    spliced: Vec<u8>,
    /// The encoded output.
    out: Vec<u8>,
    /// Letterbox: the JPEG of the band of MCU rows that holds the picture.
    band: Vec<u8>,
    /// Letterbox: entropy-coded bytes of one all-black MCU row of `black_row_width` pixels.
    black_row: Vec<u8>,
    black_row_width: u32,
}

impl Pipeline {
    /// A pipeline for `cfg` (size and quality clamped, see [`PipelineConfig`]). Allocates only
    /// the decoder's Huffman tables (42 KB) until the first frame.
    pub fn new(cfg: PipelineConfig) -> Self {
        let cfg = PipelineConfig {
            size: cfg.size.clamp(*SIZE_RANGE_PX.start(), *SIZE_RANGE_PX.end()),
            geometry: cfg.geometry,
            quality: cfg.quality.clamp(1, 100),
        };
        Pipeline {
            cfg,
            decoder: Decoder::new(),
            resizers: [Resizer::new(), Resizer::new()],
            encoder: Encoder::new(),
            fallback: Default::default(),
            canvas: Default::default(),
            spliced: Vec::new(),
            out: Vec::new(),
            band: Vec::new(),
            black_row: Vec::new(),
            black_row_width: 0,
        }
    }

    /// The configuration in use (after clamping).
    pub fn config(&self) -> PipelineConfig {
        self.cfg
    }

    /// Takes one camera frame (already sliced to `bytesused`; stale bytes after its EOI are
    /// ignored) and returns the JPEG to send.
    ///
    /// Passthrough: when the output would have exactly the input's dimensions with no
    /// scaling and no padding — `size`×`size` input for `Letterbox`, `Crop` and `Stretch`; long
    /// side ≤ `size` for `Fit` — and the frame is plain baseline (SOF0, 8-bit, 1 or 3
    /// components, Huffman tables present), the input bytes are returned untouched at zero
    /// CPU. Anything else is decoded and re-encoded at the configured quality, 4:2:0.
    pub fn process<'a>(&'a mut self, frame: &'a [u8]) -> Result<Processed<'a>, FrameError> {
        let layout = walk(frame)?;
        let jpeg = &frame[..layout.end];
        let (sw, sh) = (u32::from(layout.sof.width), u32::from(layout.sof.height));
        check_dimensions(sw, sh)?;
        let plan = Plan::new(self.cfg.geometry, self.cfg.size, sw, sh);
        if plan.is_identity(sw, sh) && layout.is_plain_baseline() {
            return Ok(Processed {
                jpeg,
                width: sw,
                height: sh,
                passthrough: true,
            });
        }

        let shift = decode_shift(&plan, sw, sh);
        let (planes, used_shift) = match self.decoder.decode(jpeg, shift, MAX_FRAME_PIXELS) {
            Ok(planes) => (planes, shift),
            // What our decoder does not take (or finds corrupt) goes to zune-jpeg, which
            // knows every JPEG flavour and is lenient with damaged data.
            Err(_) => decode_fallback(jpeg, &layout, &mut self.spliced, &mut self.fallback)
                .map(|planes| (planes, 0))?,
        };
        let (full_w, full_h) = if used_shift == 0 {
            (planes.width, planes.height)
        } else {
            (sw, sh)
        };
        // The decoder's idea of the size wins over the SOF we read (they agree for any sane
        // frame); the plan is redone in case they don't.
        let plan = if (full_w, full_h) == (sw, sh) {
            plan
        } else {
            Plan::new(self.cfg.geometry, self.cfg.size, full_w, full_h)
        };

        let band = Band::new(&plan);
        // Letterbox with bars above and below: the canvas is only the band that gets encoded
        // (768×432 of a 768×768 square: 0.8 MB less with RGB, 0.4 MB as planes).
        let canvas_plan = match band {
            Some(b) => Plan {
                out_h: b.end_px_row - b.first_px_row,
                y: plan.y - b.first_px_row,
                ..plan
            },
            None => plan,
        };
        let source = Source {
            planes: &planes,
            crop: source_box(&canvas_plan, full_w, full_h),
            scale: 1.0 / f64::from(1u32 << used_shift),
        };
        let [cy, cb, cr] = &mut self.canvas;
        let [luma, chroma] = &mut self.resizers;
        let canvas = resize_planes(&source, &canvas_plan, (luma, chroma), (cy, cb, cr))?;
        if self.fallback[0].capacity() > 0 {
            self.fallback = Default::default();
        }

        match band {
            Some(band) => {
                if self.black_row_width != plan.out_w {
                    black_row(
                        &mut self.encoder,
                        plan.out_w,
                        self.cfg.quality,
                        &mut self.black_row,
                    )?;
                    self.black_row_width = plan.out_w;
                }
                let px_rows = band.end_px_row - band.first_px_row;
                encode_planar(
                    &mut self.encoder,
                    canvas,
                    plan.out_w,
                    px_rows,
                    self.cfg.quality,
                    true,
                    &mut self.band,
                )?;
                assemble_letterbox(
                    &band,
                    &self.band,
                    &self.black_row,
                    plan.out_h,
                    &mut self.out,
                )?;
            }
            None => encode_planar(
                &mut self.encoder,
                canvas,
                plan.out_w,
                plan.out_h,
                self.cfg.quality,
                false,
                &mut self.out,
            )?,
        }
        Ok(Processed {
            jpeg: &self.out,
            width: plan.out_w,
            height: plan.out_h,
            passthrough: false,
        })
    }

    /// Capacities of the buffers, bytes: fallback luma (freed after each frame), canvas luma,
    /// spliced, output, band, black row.
    #[cfg(test)]
    fn capacities(&self) -> [usize; 6] {
        [
            self.fallback[0].capacity(),
            self.canvas[0].capacity(),
            self.spliced.capacity(),
            self.out.capacity(),
            self.band.capacity(),
            self.black_row.capacity(),
        ]
    }
}

/// Checks the SOI at the start and cuts the frame just after the EOI that ends the image.
///
/// The markers are walked, not searched: segment lengths skip APPn payloads (an EXIF
/// thumbnail carries its own FF D8 … FF D9), and inside scan data FF D9 cannot occur by
/// accident (FF is byte-stuffed), so the first EOI met at marker level is the image's. A search
/// for the *last* FF D9 would be wrong here: v4l2loopback hands out the first frame after
/// REQBUFS as the whole buffer, and UVC cameras pad, so the bytes after EOI are often the tail
/// of an older, larger frame with an EOI of its own.
pub fn trim_to_eoi(buf: &[u8]) -> Result<&[u8], FrameError> {
    walk(buf).map(|layout| &buf[..layout.end])
}

/// The frame with the standard MJPEG Huffman tables (ITU T.81 Annex K.3, the tables the
/// OpenDML/AVI1 MJPEG format omits) inserted as one DHT segment before the first SOS, cut at
/// its EOI. `None` when the frame already has a DHT segment before its first scan, or is not a
/// well-formed JPEG (see [`trim_to_eoi`]).
pub fn splice_dht(frame: &[u8]) -> Option<Vec<u8>> {
    let layout = walk(frame).ok()?;
    if layout.dht {
        return None;
    }
    let mut out = Vec::new();
    splice_into(&frame[..layout.end], &layout, &mut out);
    Some(out)
}

/// `(width, height)` from the first frame header (SOFn), without decoding or needing the EOI.
/// `None` if there is no SOI, the headers are cut short or broken, a scan starts first, or the
/// frame header declares a zero side.
pub fn jpeg_size(frame: &[u8]) -> Option<(u32, u32)> {
    if !frame.starts_with(&[0xFF, SOI]) {
        return None;
    }
    let mut pos = 2;
    loop {
        let (marker, after) = next_marker(frame, pos).ok()?;
        match marker {
            SOS | EOI | SOI | 0x00 => return None,
            TEM | RST0..=RST7 => {
                pos = after;
                continue;
            }
            _ => {}
        }
        let (body, end) = segment(frame, after).ok()?;
        if is_sof(marker) {
            let sof = parse_sof(marker, body).ok()?;
            if sof.width == 0 || sof.height == 0 {
                return None;
            }
            return Some((u32::from(sof.width), u32::from(sof.height)));
        }
        pos = end;
    }
}

// --- marker walking -------------------------------------------------------------------------

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DHT: u8 = 0xC4;
const TEM: u8 = 0x01;
const RST0: u8 = 0xD0;
const RST7: u8 = 0xD7;

/// The first frame header (SOFn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sof {
    marker: u8,
    precision: u8,
    width: u16,
    height: u16,
    components: u8,
}

/// What one walk over a frame's markers found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// One past the EOI that ends the image.
    end: usize,
    /// Offset of the first SOS marker (its FF byte).
    first_sos: usize,
    sof: Sof,
    /// A DHT segment comes before the first scan.
    dht: bool,
}

impl Layout {
    /// Baseline Huffman, 8-bit, grey or 3-component, tables present: what every JPEG reader
    /// takes, so the frame can be sent as it is.
    fn is_plain_baseline(&self) -> bool {
        self.sof.marker == 0xC0
            && self.sof.precision == 8
            && matches!(self.sof.components, 1 | 3)
            && self.dht
    }
}

/// SOF0…SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
fn is_sof(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, DHT | 0xC8 | 0xCC)
}

/// The marker at `pos` (skipping FF fill bytes) and the offset just after it.
fn next_marker(buf: &[u8], pos: usize) -> Result<(u8, usize), FrameError> {
    match buf.get(pos) {
        None => return Err(FrameError::Truncated),
        Some(0xFF) => {}
        Some(_) => return Err(FrameError::Malformed("expected a marker")),
    }
    let mut p = pos + 1;
    while buf.get(p) == Some(&0xFF) {
        p += 1;
    }
    match buf.get(p) {
        None => Err(FrameError::Truncated),
        Some(&m) => Ok((m, p + 1)),
    }
}

/// The body of the marker segment whose length field is at `at`, and the offset after it.
fn segment(buf: &[u8], at: usize) -> Result<(&[u8], usize), FrameError> {
    let len = match buf.get(at..at + 2) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return Err(FrameError::Truncated),
    };
    if len < 2 {
        return Err(FrameError::Malformed("segment length below 2"));
    }
    let end = at + len;
    match buf.get(at + 2..end) {
        Some(body) => Ok((body, end)),
        None => Err(FrameError::Truncated),
    }
}

fn parse_sof(marker: u8, body: &[u8]) -> Result<Sof, FrameError> {
    match *body {
        [precision, h0, h1, w0, w1, components, ..] => Ok(Sof {
            marker,
            precision,
            height: u16::from_be_bytes([h0, h1]),
            width: u16::from_be_bytes([w0, w1]),
            components,
        }),
        _ => Err(FrameError::Malformed("frame header too short")),
    }
}

/// Walks the frame from SOI to the EOI that ends the image.
fn walk(buf: &[u8]) -> Result<Layout, FrameError> {
    if !buf.starts_with(&[0xFF, SOI]) {
        return Err(FrameError::NoSoi);
    }
    let mut pos = 2;
    let mut sof: Option<Sof> = None;
    let mut first_sos: Option<usize> = None;
    let mut dht = false;
    loop {
        let marker_at = pos;
        let (marker, after) = next_marker(buf, pos)?;
        match marker {
            EOI => {
                return match (sof, first_sos) {
                    (Some(sof), Some(first_sos)) => Ok(Layout {
                        end: after,
                        first_sos,
                        sof,
                        dht,
                    }),
                    _ => Err(FrameError::Malformed("end of image before any scan")),
                };
            }
            SOI => return Err(FrameError::Malformed("a second start-of-image marker")),
            0x00 => return Err(FrameError::Malformed("stuffed byte outside scan data")),
            TEM | RST0..=RST7 => {
                pos = after;
                continue;
            }
            _ => {}
        }
        let (body, end) = segment(buf, after)?;
        if is_sof(marker) {
            if sof.is_none() {
                sof = Some(parse_sof(marker, body)?);
            }
        } else if marker == DHT {
            dht |= first_sos.is_none();
        } else if marker == SOS {
            if sof.is_none() {
                return Err(FrameError::Malformed("scan before the frame header"));
            }
            first_sos.get_or_insert(marker_at);
            pos = skip_scan_data(buf, end)?;
            continue;
        }
        pos = end;
    }
}

/// From the start of entropy-coded data, the offset of the next real marker's FF. Inside scan
/// data FF 00 is a stuffed FF, FF D0–D7 are restart markers and FF FF is fill.
fn skip_scan_data(buf: &[u8], mut pos: usize) -> Result<usize, FrameError> {
    loop {
        let ff = pos + find_ff(buf.get(pos..).unwrap_or_default()).ok_or(FrameError::NoEoi)?;
        match buf.get(ff + 1) {
            None => return Err(FrameError::NoEoi),
            Some(0x00 | RST0..=RST7) => pos = ff + 2,
            Some(0xFF) => pos = ff + 1,
            Some(_) => return Ok(ff),
        }
    }
}

/// Index of the first 0xFF byte, eight bytes at a time (scan data is ~99 % of a frame).
fn find_ff(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        // A byte of `!w` is zero exactly where `w` had 0xFF.
        let x = !u64::from_le_bytes(word);
        if x.wrapping_sub(LO) & !x & HI != 0 {
            return c.iter().position(|&b| b == 0xFF).map(|i| base + i);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == 0xFF)
        .map(|i| base + i)
}

// --- DHT splice -----------------------------------------------------------------------------

/// The typical Huffman tables of ITU T.81 Annex K.3 (luminance DC K.3, chrominance DC K.4,
/// luminance AC K.5, chrominance AC K.6) as (BITS, HUFFVAL) pairs: spliced into camera frames
/// that lack tables, and what the encoder codes with.
pub(super) mod annex_k {
    pub const DC_LUMA_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    pub const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
    pub const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    pub const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D];
    pub const AC_LUMA_VALUES: [u8; 162] = [
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52,
        0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6,
        0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3,
        0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8,
        0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ];
    pub const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
    pub const AC_CHROMA_VALUES: [u8; 162] = [
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
        0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33,
        0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18,
        0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44,
        0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63,
        0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A,
        0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
        0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4,
        0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA,
        0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7,
        0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ];
}

/// [`annex_k`] as one DHT segment, 420 bytes.
pub(super) const STANDARD_DHT: [u8; 420] = {
    use annex_k::*;
    // Segment length 418 = 2 + 4 × (class/id byte + 16 counts) + 12 + 12 + 162 + 162.
    let mut seg = [0u8; 420];
    seg[0] = 0xFF;
    seg[1] = DHT;
    seg[2] = (418u16 >> 8) as u8;
    seg[3] = (418u16 & 0xFF) as u8;
    // (class << 4 | id, bits, values) per table; a const fn loop, as iterators are not const.
    const fn table(
        mut seg: [u8; 420],
        mut p: usize,
        class_id: u8,
        bits: &[u8],
        values: &[u8],
    ) -> ([u8; 420], usize) {
        seg[p] = class_id;
        p += 1;
        let mut i = 0;
        while i < bits.len() {
            seg[p] = bits[i];
            p += 1;
            i += 1;
        }
        i = 0;
        while i < values.len() {
            seg[p] = values[i];
            p += 1;
            i += 1;
        }
        (seg, p)
    }
    let (seg, p) = table(seg, 4, 0x00, &DC_LUMA_BITS, &DC_VALUES);
    let (seg, p) = table(seg, p, 0x10, &AC_LUMA_BITS, &AC_LUMA_VALUES);
    let (seg, p) = table(seg, p, 0x01, &DC_CHROMA_BITS, &DC_VALUES);
    let (seg, p) = table(seg, p, 0x11, &AC_CHROMA_BITS, &AC_CHROMA_VALUES);
    assert!(p == 420);
    seg
};

/// `jpeg` (already trimmed) with [`STANDARD_DHT`] inserted before its first SOS, into `out`.
fn splice_into(jpeg: &[u8], layout: &Layout, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(jpeg.len() + STANDARD_DHT.len());
    out.extend_from_slice(&jpeg[..layout.first_sos]);
    out.extend_from_slice(&STANDARD_DHT);
    out.extend_from_slice(&jpeg[layout.first_sos..]);
}

// --- encode ---------------------------------------------------------------------------------

/// Side of a 4:2:0 MCU, pixels.
const MCU_PX: u32 = 16;

/// Encodes the output planes as baseline 4:2:0 JPEG into `out` (cleared first). With
/// `restart_rows` a restart marker follows every MCU row.
fn encode_planar(
    encoder: &mut Encoder,
    planes: Planar<'_>,
    width: u32,
    height: u32,
    quality: u8,
    restart_rows: bool,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    encoder
        .encode_planar(
            planes,
            width,
            height,
            Settings {
                quality,
                chroma: Chroma::H2V2,
                restart_rows,
            },
            out,
        )
        .map_err(FrameError::Encode)
}

/// Letterbox with bars above and below: only the band of MCU rows that holds picture is
/// DCT-coded; the bar rows are a pre-encoded black MCU row repeated. A restart marker after
/// every MCU row resets the DC predictors and byte-aligns each row, which is what makes rows
/// from separate encodes joinable. The decoded result is pixel-identical to encoding the whole
/// canvas (same blocks, same tables; restarts are lossless), at 2 bytes a row, and it saves
/// the encode time of the bars (44 % of a 16:9 frame letterboxed into a square).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Band {
    /// MCU rows of black above the band.
    top_rows: u32,
    /// First and one-past-last pixel rows of the band (MCU-aligned start; the end is
    /// MCU-aligned too unless the band reaches the bottom of the image).
    first_px_row: u32,
    end_px_row: u32,
    /// MCU rows of black below the band.
    bottom_rows: u32,
}

impl Band {
    /// `None` when there are no whole black MCU rows to skip, or the bars are at the sides.
    fn new(plan: &Plan) -> Option<Band> {
        if plan.x != 0 || plan.w != plan.out_w {
            return None;
        }
        let first = plan.y / MCU_PX * MCU_PX;
        let mut end = (plan.y + plan.h).div_ceil(MCU_PX) * MCU_PX;
        if end >= plan.out_h {
            end = plan.out_h;
        }
        let total_rows = plan.out_h.div_ceil(MCU_PX);
        let band_rows = (end - first).div_ceil(MCU_PX);
        let top_rows = first / MCU_PX;
        let bottom_rows = total_rows - top_rows - band_rows;
        if top_rows + bottom_rows == 0 {
            return None;
        }
        Some(Band {
            top_rows,
            first_px_row: first,
            end_px_row: end,
            bottom_rows,
        })
    }
}

/// Where the parts of a JPEG written by [`encode_rgb`] are.
struct EncodedParts {
    /// Offset of the 2-byte image height in the SOF segment.
    height_at: usize,
    /// Entropy-coded data: after the SOS segment, up to the EOI.
    scan: std::ops::Range<usize>,
}

fn encoded_parts(jpeg: &[u8]) -> Result<EncodedParts, FrameError> {
    const BAD: FrameError = FrameError::Malformed("unexpected encoder output");
    let mut pos = 2;
    let mut height_at = None;
    loop {
        let (marker, after) = next_marker(jpeg, pos).map_err(|_| BAD)?;
        let (_, end) = segment(jpeg, after).map_err(|_| BAD)?;
        if is_sof(marker) {
            // length (2), precision (1), then the height
            height_at = Some(after + 3);
        }
        if marker == SOS {
            let scan_end = jpeg.len().checked_sub(2).ok_or(BAD)?;
            if jpeg.get(scan_end..) != Some(&[0xFF, EOI][..]) || scan_end < end {
                return Err(BAD);
            }
            return Ok(EncodedParts {
                height_at: height_at.ok_or(BAD)?,
                scan: end..scan_end,
            });
        }
        pos = end;
    }
}

/// The entropy-coded bytes of one all-black MCU row `width` pixels wide, into `out`.
fn black_row(
    encoder: &mut Encoder,
    width: u32,
    quality: u8,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let (y, c) = (
        vec![BLACK_Y; width as usize * MCU_PX as usize],
        vec![BLACK_C; width.div_ceil(2) as usize * MCU_PX as usize / 2],
    );
    let planes = Planar {
        y: &y,
        y_stride: width as usize,
        cb: &c,
        cr: &c,
        c_stride: width.div_ceil(2) as usize,
    };
    let mut jpeg = Vec::new();
    encode_planar(encoder, planes, width, MCU_PX, quality, true, &mut jpeg)?;
    let parts = encoded_parts(&jpeg)?;
    out.clear();
    out.extend_from_slice(&jpeg[parts.scan]);
    Ok(())
}

/// Writes the letterboxed JPEG: the band's headers (height patched to `out_h`), black rows,
/// the band's rows with their restart markers renumbered, black rows, EOI.
fn assemble_letterbox(
    band: &Band,
    band_jpeg: &[u8],
    black_row: &[u8],
    out_h: u32,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let parts = encoded_parts(band_jpeg)?;
    let h = u16::try_from(out_h).map_err(|_| FrameError::Malformed("output side over 65535"))?;
    let black_bytes = (black_row.len() + 2) * (band.top_rows + band.bottom_rows) as usize;
    out.clear();
    out.reserve(band_jpeg.len() + black_bytes);
    out.extend_from_slice(&band_jpeg[..parts.scan.start]);
    out[parts.height_at..parts.height_at + 2].copy_from_slice(&h.to_be_bytes());
    let mut restarts = 0u32;
    let mut rst = |out: &mut Vec<u8>| {
        out.extend_from_slice(&[0xFF, RST0 + (restarts % 8) as u8]);
        restarts += 1;
    };
    for _ in 0..band.top_rows {
        out.extend_from_slice(black_row);
        rst(out);
    }
    // The band's own restart markers count from RST0: renumber them to follow on.
    let mut scan = &band_jpeg[parts.scan];
    while let Some(i) = find_ff(scan) {
        let next = scan.get(i + 1).copied();
        out.extend_from_slice(&scan[..i]);
        match next {
            Some(RST0..=RST7) => rst(out),
            Some(b) => out.extend_from_slice(&[0xFF, b]),
            None => return Err(FrameError::Malformed("unexpected encoder output")),
        }
        scan = scan.get(i + 2..).unwrap_or_default();
    }
    out.extend_from_slice(scan);
    for _ in 0..band.bottom_rows {
        rst(out);
        out.extend_from_slice(black_row);
    }
    out.extend_from_slice(&[0xFF, EOI]);
    Ok(())
}

// --- decode, plan, resize -------------------------------------------------------------------

fn rgb_len(w: u32, h: u32) -> usize {
    w as usize * h as usize * 3
}

fn check_dimensions(w: u32, h: u32) -> Result<(), FrameError> {
    if w == 0 || h == 0 {
        // Height 0 means "given later by a DNL marker", which nothing we talk to emits.
        return Err(FrameError::Malformed("zero width or height"));
    }
    if u64::from(w) * u64::from(h) > MAX_FRAME_PIXELS {
        return Err(FrameError::TooLarge {
            width: w,
            height: h,
            max_pixels: MAX_FRAME_PIXELS,
        });
    }
    Ok(())
}

/// Decodes `jpeg` to packed RGB into `buf` (grown if needed, never shrunk, not cleared:
/// every byte of the first `w × h × 3` is overwritten). Returns `(width, height)`.
fn decode_rgb(jpeg: &[u8], buf: &mut Vec<u8>) -> Result<(u32, u32), FrameError> {
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(4096 * 4)
        .set_max_height(4096 * 4);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    decoder.decode_headers().map_err(FrameError::Decode)?;
    let (w, h) = decoder
        .dimensions()
        .ok_or(FrameError::Malformed("no dimensions after the headers"))?;
    let (w, h) = (
        u32::try_from(w).map_err(|_| FrameError::Malformed("width"))?,
        u32::try_from(h).map_err(|_| FrameError::Malformed("height"))?,
    );
    check_dimensions(w, h)?;
    let len = rgb_len(w, h);
    if decoder.output_buffer_size() != Some(len) {
        return Err(FrameError::Malformed(
            "decoder output is not 3 bytes a pixel",
        ));
    }
    if buf.len() < len {
        buf.resize(len, 0);
    }
    decoder
        .decode_into(&mut buf[..len])
        .map_err(FrameError::Decode)?;
    Ok((w, h))
}

/// Where the scaled content goes: an `out_w`×`out_h` image holding the (possibly cropped)
/// source scaled to `w`×`h` at `(x, y)`; the rest is black.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    out_w: u32,
    out_h: u32,
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    /// Centre-crop the source to the content's aspect ratio first.
    crop: bool,
}

impl Plan {
    fn new(geometry: Geometry, size: u32, sw: u32, sh: u32) -> Plan {
        let full = |w, h, crop| Plan {
            out_w: w,
            out_h: h,
            x: 0,
            y: 0,
            w,
            h,
            crop,
        };
        match geometry {
            Geometry::Stretch => full(size, size, false),
            Geometry::Crop => full(size, size, true),
            Geometry::Fit => {
                let (w, h) = fit_within(size, sw, sh);
                full(w, h, false)
            }
            Geometry::Letterbox => {
                let (w, h) = fit_within(size, sw, sh);
                Plan {
                    out_w: size,
                    out_h: size,
                    x: (size - w) / 2,
                    y: (size - h) / 2,
                    w,
                    h,
                    crop: false,
                }
            }
        }
    }

    /// The output is the source, pixel for pixel.
    fn is_identity(&self, sw: u32, sh: u32) -> bool {
        (self.out_w, self.out_h) == (sw, sh) && (self.w, self.h) == (sw, sh)
    }
}

/// The source size scaled so its long side is `size`, aspect kept; unchanged if it already
/// fits (never upscales). Each side is at least 1 and at most `size`.
fn fit_within(size: u32, sw: u32, sh: u32) -> (u32, u32) {
    let long = sw.max(sh);
    if long <= size {
        return (sw, sh);
    }
    let scale = |side: u32| {
        let s = (u64::from(side) * u64::from(size) + u64::from(long) / 2) / u64::from(long);
        (s as u32).clamp(1, size)
    };
    (scale(sw), scale(sh))
}

/// The smallest decode scale (largest shift) that still leaves at least the content's pixels in
/// the part of the frame that is used (a scaled decode is a cheaper, antialiased first step of the downscale):
/// 1080p → 768×432 decodes at 1/2 (960×540); 720p decodes at full size.
fn decode_shift(plan: &Plan, sw: u32, sh: u32) -> Shift {
    let (_, _, bw, bh) = source_box(plan, sw, sh);
    (1..=3u8)
        .rev()
        .find(|&s| {
            let k = f64::from(1u32 << s);
            (bw / k).floor() >= f64::from(plan.w) && (bh / k).floor() >= f64::from(plan.h)
        })
        .unwrap_or(0)
}

/// The part of an `sw`×`sh` frame that the content shows, in its pixels (left, top, width,
/// height): all of it, or for `crop` the centred box of the content's aspect ratio.
fn source_box(plan: &Plan, sw: u32, sh: u32) -> (f64, f64, f64, f64) {
    let (sw, sh) = (f64::from(sw), f64::from(sh));
    if !plan.crop {
        return (0.0, 0.0, sw, sh);
    }
    let aspect = f64::from(plan.w) / f64::from(plan.h);
    if sw / sh > aspect {
        let bw = sh * aspect;
        ((sw - bw) / 2.0, 0.0, bw, sh)
    } else {
        let bh = sw / aspect;
        (0.0, (sh - bh) / 2.0, sw, bh)
    }
}

/// A decoded frame and what of it to use.
struct Source<'a, 'p> {
    planes: &'a Planes<'p>,
    /// [`source_box`], in full-size frame pixels.
    crop: (f64, f64, f64, f64),
    /// Decoded luma pixels per full-size pixel (1 / 2^shift).
    scale: f64,
}

/// Black in YCbCr (JFIF, full range).
const BLACK_Y: u8 = 0;
const BLACK_C: u8 = 128;

/// Resizes the source's planes into the output canvas (`plan.out_w × plan.out_h` luma, chroma
/// at half that, rounded up), antialiased (fir's convolution widens the bilinear kernel with
/// the downscale factor), bars black. Each chroma plane goes from its own sampling straight to
/// 4:2:0: nothing is upsampled. A grey frame gets neutral chroma.
fn resize_planes<'c>(
    src: &Source<'_, '_>,
    plan: &Plan,
    resizers: (&mut Resizer, &mut Resizer),
    canvas: (&'c mut Vec<u8>, &'c mut Vec<u8>, &'c mut Vec<u8>),
) -> Result<Planar<'c>, FrameError> {
    let (cy, cb, cr) = canvas;
    let (w, h) = (plan.out_w as usize, plan.out_h as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    for (buf, len) in [(&mut *cy, w * h), (&mut *cb, cw * ch), (&mut *cr, cw * ch)] {
        if buf.len() < len {
            buf.resize(len, 0);
        }
    }
    let luma_rect = (plan.x, plan.y, plan.w, plan.h);
    // The chroma rectangle covers every chroma sample the luma rectangle touches. Where it
    // sticks out by a luma pixel (an odd edge), the source box grows by as much, so chroma
    // stays aligned with luma.
    let (cx0, cy0) = (plan.x / 2, plan.y / 2);
    let (cx1, cy1) = ((plan.x + plan.w).div_ceil(2), (plan.y + plan.h).div_ceil(2));
    let chroma_rect = (cx0, cy0, cx1 - cx0, cy1 - cy0);
    let (left, top, bw, bh) = src.crop;
    let (sx, sy) = (bw / f64::from(plan.w), bh / f64::from(plan.h));
    let (grow_l, grow_t) = (f64::from(plan.x - 2 * cx0), f64::from(plan.y - 2 * cy0));
    let grow_r = f64::from(2 * cx1 - (plan.x + plan.w));
    let grow_b = f64::from(2 * cy1 - (plan.y + plan.h));
    let chroma_crop = (
        left - grow_l * sx,
        top - grow_t * sy,
        bw + (grow_l + grow_r) * sx,
        bh + (grow_t + grow_b) * sy,
    );
    let (luma, chroma) = resizers;
    let y = &mut cy[..w * h];
    resize_plane(
        luma,
        src,
        src.crop,
        &src.planes.y,
        y,
        (plan.out_w, plan.out_h),
        luma_rect,
        BLACK_Y,
    )?;
    let size = (cw as u32, ch as u32);
    let (cb, cr) = (&mut cb[..cw * ch], &mut cr[..cw * ch]);
    match &src.planes.chroma {
        Some((pb, pr)) => {
            resize_plane(chroma, src, chroma_crop, pb, cb, size, chroma_rect, BLACK_C)?;
            resize_plane(chroma, src, chroma_crop, pr, cr, size, chroma_rect, BLACK_C)?;
        }
        None => {
            cb.fill(BLACK_C);
            cr.fill(BLACK_C);
        }
    }
    Ok(Planar {
        y,
        y_stride: w,
        cb,
        cr,
        c_stride: cw,
    })
}

/// One plane of the source (`crop`, in full-size frame pixels, scaled to the plane's sampling
/// and kept inside the plane) into `rect` of a `size` canvas whose other samples become
/// `black`.
#[allow(clippy::too_many_arguments)]
fn resize_plane(
    resizer: &mut Resizer,
    src: &Source<'_, '_>,
    crop: (f64, f64, f64, f64),
    plane: &PlaneRef<'_>,
    canvas: &mut [u8],
    size: (u32, u32),
    rect: (u32, u32, u32, u32),
    black: u8,
) -> Result<(), FrameError> {
    let err = |e: &dyn std::fmt::Display| FrameError::Resize(e.to_string());
    let rows = plane.stride * plane.height;
    // These hold by construction: a failure is a bug here (`Resize`), not bad input.
    let data = plane.data.get(..rows).ok_or_else(|| err(&"short plane"))?;
    let width = u32::try_from(plane.stride).map_err(|e| err(&e))?;
    let height = u32::try_from(plane.height).map_err(|e| err(&e))?;
    // The plane is padded to whole blocks (`stride`, the padding repeating the edge); the crop
    // box keeps to the picture.
    // The typed API: fir's untyped `resize` links its code for all 13 pixel types (3 MB).
    let image = TypedImageRef::<U8>::from_buffer(width, height, data).map_err(|e| err(&e))?;
    let (fx, fy) = (
        src.scale / f64::from(plane.sub.0),
        src.scale / f64::from(plane.sub.1),
    );
    let (left, top, bw, bh) = crop;
    let (x0, y0) = ((left * fx).max(0.0), (top * fy).max(0.0));
    let x1 = ((left + bw) * fx).min(plane.width as f64);
    let y1 = ((top + bh) * fy).min(plane.height as f64);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(x0, y0, x1 - x0, y1 - y0);
    let covers = (rect.2, rect.3) == size;
    if !covers {
        canvas.fill(black);
    }
    let mut dst = TypedImage::<U8>::from_buffer(size.0, size.1, canvas).map_err(|e| err(&e))?;
    let result = if covers {
        resizer.resize_typed(&image, &mut dst, &options)
    } else {
        let mut content = TypedCroppedImageMut::from_ref(&mut dst, rect.0, rect.1, rect.2, rect.3)
            .map_err(|e| err(&e))?;
        resizer.resize_typed(&image, &mut content, &options)
    };
    result.map_err(|e| err(&e))
}

/// zune-jpeg's decode of a frame our decoder did not take, as full-resolution YCbCr planes.
fn decode_fallback<'a>(
    jpeg: &[u8],
    layout: &Layout,
    spliced: &mut Vec<u8>,
    planes: &'a mut [Vec<u8>; 3],
) -> Result<Planes<'a>, FrameError> {
    // Frames without tables get the standard ones up front: the walk already told us they
    // are missing, so a first decode attempt could only fail.
    let input: &[u8] = if layout.dht {
        jpeg
    } else {
        splice_into(jpeg, layout, spliced);
        spliced
    };
    // Dropped at the end of this call (see `Pipeline::fallback`).
    let mut rgb = Vec::new();
    let (w, h) = decode_rgb(input, &mut rgb)?;
    let n = w as usize * h as usize;
    for p in planes.iter_mut() {
        if p.len() < n {
            p.resize(n, 0);
        }
    }
    let [y, cb, cr] = planes;
    rgb_to_ycbcr(&rgb[..3 * n], &mut y[..n], &mut cb[..n], &mut cr[..n]);
    let plane = |data: &'a [u8]| PlaneRef {
        data,
        stride: w as usize,
        width: w as usize,
        height: h as usize,
        sub: (1, 1),
    };
    Ok(Planes {
        width: w,
        height: h,
        y: plane(y),
        chroma: Some((plane(cb), plane(cr))),
    })
}

/// JFIF's RGB → YCbCr (BT.601 full range), rounded.
fn rgb_to_ycbcr(rgb: &[u8], y: &mut [u8], cb: &mut [u8], cr: &mut [u8]) {
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        let (r, g, b) = (f32::from(px[0]), f32::from(px[1]), f32::from(px[2]));
        y[i] = (0.299 * r + 0.587 * g + 0.114 * b + 0.5) as u8;
        cb[i] = (-0.168_736 * r - 0.331_264 * g + 0.5 * b + 128.5) as u8;
        cr[i] = (0.5 * r - 0.418_688 * g - 0.081_312 * b + 128.5) as u8;
    }
}

/// The frame without its DHT segments (tests of frames from cameras that send none).
#[cfg(test)]
pub(super) fn strip_dht(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut pos = 2;
    loop {
        let (m, after) = next_marker(jpeg, pos).expect("marker");
        if m == SOS {
            out.extend_from_slice(&jpeg[pos..]);
            return out;
        }
        let (_, end) = segment(jpeg, after).expect("segment");
        if m != DHT {
            out.extend_from_slice(&jpeg[pos..end]);
        }
        pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::super::psnr;
    use super::*;
    use fast_image_resize::images::{CroppedImageMut, Image, ImageRef};
    use fast_image_resize::PixelType;
    use jpeg_encoder::{ColorType, SamplingFactor};

    /// A 4:2:2 (UVC-like) q85 test frame: gradients, a checkerboard with hard edges and a
    /// deterministic noise term, so every block has AC energy.
    fn frame(w: u16, h: u16, sampling: SamplingFactor) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
        let mut seed = 0x1234_5678u32;
        for y in 0..h as u32 {
            for x in 0..w as u32 {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (seed >> 27) as u8;
                let check = if ((x / 37) + (y / 23)) % 2 == 0 {
                    60
                } else {
                    0
                };
                rgb.push(((x * 255 / w as u32) as u8).wrapping_add(noise) / 2 + check);
                rgb.push(((y * 255 / h as u32) as u8) / 2 + check + noise / 2);
                rgb.push((((x + y) * 3) as u8) / 3 + check);
            }
        }
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 85);
        enc.set_sampling_factor(sampling);
        enc.encode(&rgb, w, h, ColorType::Rgb).expect("test encode");
        out
    }

    fn uvc(w: u16, h: u16) -> Vec<u8> {
        frame(w, h, SamplingFactor::R_4_2_2)
    }

    fn decodes(jpeg: &[u8]) -> (u32, u32) {
        let mut d = JpegDecoder::new(ZCursor::new(jpeg));
        let px = d.decode().expect("zune-jpeg decodes the output");
        let (w, h) = d.dimensions().expect("dimensions");
        assert_eq!(px.len(), w * h * 3);
        (w as u32, h as u32)
    }

    fn pipeline(geometry: Geometry, size: u32) -> Pipeline {
        Pipeline::new(PipelineConfig {
            size,
            geometry,
            quality: 80,
        })
    }

    #[test]
    fn standard_dht_matches_the_tables() {
        assert_eq!(&STANDARD_DHT[..5], &[0xFF, 0xC4, 0x01, 0xA2, 0x00]);
        // counts sum to the number of values in each table
        let mut p = 4;
        for expect in [12usize, 162, 12, 162] {
            let n: usize = STANDARD_DHT[p + 1..p + 17]
                .iter()
                .map(|&b| b as usize)
                .sum();
            assert_eq!(n, expect);
            p += 17 + n;
        }
        assert_eq!(p, STANDARD_DHT.len());
    }

    /// The pipeline as it was before it worked in planes: zune-jpeg to RGB, fir's RGB resize,
    /// RGB encode. The reference the planar pipeline is held to.
    fn rgb_pipeline(jpeg: &[u8], geometry: Geometry, size: u32) -> (Vec<u8>, u32, u32) {
        let mut rgb = Vec::new();
        let (sw, sh) = decode_rgb(jpeg, &mut rgb).expect("decodes");
        let plan = Plan::new(geometry, size, sw, sh);
        let mut canvas = vec![0u8; rgb_len(plan.out_w, plan.out_h)];
        let src = ImageRef::new(sw, sh, &rgb, PixelType::U8x3).expect("image");
        let mut options =
            ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        if plan.crop {
            options = options.fit_into_destination(Some((0.5, 0.5)));
        }
        let mut dst = Image::from_slice_u8(plan.out_w, plan.out_h, &mut canvas, PixelType::U8x3)
            .expect("dst");
        let mut content =
            CroppedImageMut::new(&mut dst, plan.x, plan.y, plan.w, plan.h).expect("crop");
        Resizer::new()
            .resize(&src, &mut content, &options)
            .expect("resize");
        let mut out = Vec::new();
        let settings = Settings {
            quality: 80,
            chroma: Chroma::H2V2,
            restart_rows: false,
        };
        Encoder::new()
            .encode_rgb(&canvas, plan.out_w, plan.out_h, settings, &mut out)
            .expect("encode");
        (out, plan.out_w, plan.out_h)
    }

    #[test]
    fn planes_look_like_the_rgb_pipeline_and_are_no_bigger() {
        // The bench's camera scene (UVC-like q85 4:2:2) and the noisy test frame, at the sizes
        // that take each decode scale: 720p full, 1080p half, 4K-ish quarter.
        let scenes = [
            (crate::bench::camera_jpeg(1280, 720).expect("scene"), 43.0),
            (crate::bench::camera_jpeg(1920, 1080).expect("scene"), 41.5),
            (uvc(1280, 720), 42.0),
            (uvc(1920, 1080), 38.5),
            (uvc(3200, 1800), 35.0),
        ];
        for (jpeg, min_db) in &scenes {
            for geometry in [Geometry::Letterbox, Geometry::Crop] {
                let (old, w, h) = rgb_pipeline(jpeg, geometry, 768);
                let mut p = pipeline(geometry, 768);
                let new = p.process(jpeg).expect("process");
                assert_eq!((new.width, new.height), (w, h));
                let a = JpegDecoder::new(ZCursor::new(&old)).decode().expect("old");
                let b = JpegDecoder::new(ZCursor::new(new.jpeg))
                    .decode()
                    .expect("new");
                let db = psnr(&a, &b);
                let (sw, sh) = jpeg_size(jpeg).expect("size");
                eprintln!(
                    "{sw}x{sh} {geometry:?}: {} bytes (RGB pipeline {}), {db:.1} dB against it",
                    new.jpeg.len(),
                    old.len()
                );
                assert!(db >= *min_db, "{sw}x{sh} {geometry:?}: {db:.1} dB");
                assert!(
                    new.jpeg.len() <= old.len() * 103 / 100,
                    "{sw}x{sh} {geometry:?}"
                );
            }
        }
    }

    #[test]
    fn frames_our_decoder_refuses_go_to_zune_jpeg() {
        let (w, h) = (1280u16, 720u16);
        let baseline = uvc(w, h);
        let rgb = JpegDecoder::new(ZCursor::new(&baseline))
            .decode()
            .expect("decodes");
        let mut progressive = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut progressive, 95);
        enc.set_progressive(true);
        enc.encode(&rgb, w, h, ColorType::Rgb).expect("test encode");
        assert!(super::super::decode::Decoder::new()
            .decode(&progressive, 0, MAX_FRAME_PIXELS)
            .is_err());
        let mut p = pipeline(Geometry::Letterbox, 768);
        let out = p
            .process(&progressive)
            .expect("zune-jpeg decodes it")
            .jpeg
            .to_vec();
        assert_eq!(
            p.capacities()[0],
            0,
            "the fallback planes are freed after the frame"
        );
        let reference = p.process(&baseline).expect("baseline").jpeg.to_vec();
        let a = JpegDecoder::new(ZCursor::new(&out)).decode().expect("out");
        let b = JpegDecoder::new(ZCursor::new(&reference))
            .decode()
            .expect("reference");
        assert_eq!(a.len(), 768 * 768 * 3);
        let db = psnr(&a, &b);
        assert!(
            db > 35.0,
            "{db:.1} dB against the same picture through our decoder"
        );
    }

    #[test]
    fn every_geometry_gives_the_target_size() {
        let cases: [(u16, u16, u32, u32); 3] = [
            (1280, 720, 768, 432),
            (1920, 1080, 768, 432),
            (640, 480, 640, 480), // fit never upscales
        ];
        for (w, h, fit_w, fit_h) in cases {
            let input = uvc(w, h);
            for (g, ew, eh) in [
                (Geometry::Letterbox, 768, 768),
                (Geometry::Crop, 768, 768),
                (Geometry::Stretch, 768, 768),
                (Geometry::Fit, fit_w, fit_h),
            ] {
                let mut p = pipeline(g, 768);
                let out = p.process(&input).expect("process");
                assert_eq!((out.width, out.height), (ew, eh), "{g:?} {w}×{h}");
                assert_eq!(decodes(out.jpeg), (ew, eh), "{g:?} {w}×{h}");
                // 640×480 under Fit is already small enough and plain baseline
                assert_eq!(out.passthrough, (w, g) == (640, Geometry::Fit));
            }
        }
    }

    #[test]
    fn fit_of_a_portrait_frame_keeps_the_long_side() {
        let mut p = pipeline(Geometry::Fit, 768);
        let input = uvc(720, 1280);
        let out = p.process(&input).expect("process");
        assert_eq!((out.width, out.height), (432, 768));
    }

    #[test]
    fn letterbox_pads_with_black_and_keeps_small_frames_unscaled() {
        let mut p = pipeline(Geometry::Letterbox, 768);
        let input = uvc(1280, 720);
        let out = p.process(&input).expect("process");
        let jpeg = out.jpeg.to_vec();
        let mut d = JpegDecoder::new(ZCursor::new(&jpeg));
        let px = d.decode().expect("decode");
        let at = |x: usize, y: usize| &px[(y * 768 + x) * 3..(y * 768 + x) * 3 + 3];
        for (x, y) in [(0, 0), (767, 0), (384, 100), (0, 767), (767, 767)] {
            assert!(
                at(x, y).iter().all(|&c| c < 8),
                "bar at {x},{y}: {:?}",
                at(x, y)
            );
        }
        // a portrait frame gets side bars
        let input = uvc(720, 1280);
        let out = p.process(&input).expect("portrait");
        assert_eq!((out.width, out.height), (768, 768));
        // a small frame is centred, not scaled up: 640×480 leaves 64 px bars on the sides
        assert_eq!(Plan::new(Geometry::Letterbox, 768, 640, 480).x, 64);
        let input = uvc(640, 480);
        let out = p.process(&input).expect("small");
        assert_eq!(decodes(out.jpeg), (768, 768));
        assert!(!out.passthrough);
    }

    #[test]
    fn letterbox_band_encoding_matches_a_full_encode() {
        for (w, h) in [(1280u16, 720u16), (800, 600), (1000, 200)] {
            let input = uvc(w, h);
            for size in [768, 770, 100, 250, 17] {
                let mut p = pipeline(Geometry::Letterbox, size);
                let plan = Plan::new(Geometry::Letterbox, size, u32::from(w), u32::from(h));
                let band = Band::new(&plan).expect("bars above and below");
                let out = p.process(&input).expect("process").jpeg.to_vec();
                // The pipeline keeps only the band; the whole square is that band on black.
                let rows = (band.end_px_row - band.first_px_row) as usize;
                let side = size as usize;
                let (half, crows) = (side.div_ceil(2), rows.div_ceil(2));
                assert_eq!(
                    p.canvas[0].len(),
                    side * rows,
                    "{w}×{h} → {size}: canvas is the band"
                );
                let mut y = vec![BLACK_Y; side * side];
                let mut cb = vec![BLACK_C; half * half];
                let mut cr = vec![BLACK_C; half * half];
                let top = band.first_px_row as usize;
                y[top * side..][..side * rows].copy_from_slice(&p.canvas[0][..side * rows]);
                cb[top / 2 * half..][..half * crows].copy_from_slice(&p.canvas[1][..half * crows]);
                cr[top / 2 * half..][..half * crows].copy_from_slice(&p.canvas[2][..half * crows]);
                let mut full = Vec::new();
                let planes = Planar {
                    y: &y,
                    y_stride: side,
                    cb: &cb,
                    cr: &cr,
                    c_stride: half,
                };
                encode_planar(
                    &mut Encoder::new(),
                    planes,
                    size,
                    size,
                    80,
                    false,
                    &mut full,
                )
                .expect("full encode");
                let a = JpegDecoder::new(ZCursor::new(&out)).decode().expect("band");
                let b = JpegDecoder::new(ZCursor::new(&full))
                    .decode()
                    .expect("full");
                assert!(a == b, "{w}×{h} → {size}: pixels differ");
                // per MCU row: an RST marker, up to a byte of padding and the three first DCs
                // coded against 0 rather than the previous block; plus the DRI segment
                assert!(
                    out.len() <= full.len() + 6 * size.div_ceil(16) as usize + 6,
                    "{w}×{h} → {size}: {} vs {}",
                    out.len(),
                    full.len()
                );
                assert_eq!(trim_to_eoi(&out).expect("trim").len(), out.len());
            }
        }
        // bars at the sides, or none to skip: the whole canvas is encoded
        assert_eq!(
            Band::new(&Plan::new(Geometry::Letterbox, 768, 720, 1280)),
            None
        );
        assert_eq!(
            Band::new(&Plan::new(Geometry::Letterbox, 768, 768, 760)),
            None
        );
        assert_eq!(
            Band::new(&Plan::new(Geometry::Letterbox, 768, 1920, 1080)),
            Some(Band {
                top_rows: 10,
                first_px_row: 160,
                end_px_row: 608,
                bottom_rows: 10
            })
        );
    }

    #[test]
    fn plans() {
        let p = Plan::new(Geometry::Letterbox, 768, 1920, 1080);
        assert_eq!(
            (p.out_w, p.out_h, p.x, p.y, p.w, p.h),
            (768, 768, 0, 168, 768, 432)
        );
        assert_eq!(fit_within(768, 1280, 720), (768, 432));
        assert_eq!(fit_within(768, 800, 600), (768, 576));
        assert_eq!(fit_within(768, 768, 100), (768, 100));
        assert_eq!(fit_within(768, 65535, 1), (768, 1));
        assert!(Plan::new(Geometry::Fit, 768, 768, 432).is_identity(768, 432));
        assert!(Plan::new(Geometry::Crop, 768, 768, 768).is_identity(768, 768));
        assert!(!Plan::new(Geometry::Crop, 768, 640, 640).is_identity(640, 640));
    }

    #[test]
    fn passthrough_returns_the_input_bytes() {
        let input = frame(768, 768, SamplingFactor::R_4_2_0);
        let mut padded = input.clone();
        padded.extend_from_slice(&[0xAB; 1000]);
        for g in [
            Geometry::Letterbox,
            Geometry::Crop,
            Geometry::Stretch,
            Geometry::Fit,
        ] {
            let mut p = pipeline(g, 768);
            let out = p.process(&padded).expect("process");
            assert!(out.passthrough, "{g:?}");
            assert_eq!(out.jpeg.as_ptr(), padded.as_ptr());
            assert_eq!(out.jpeg, &input[..]);
            assert_eq!((out.width, out.height), (768, 768));
        }
        // fit: long side already 768
        let input = uvc(768, 432);
        let mut p = pipeline(Geometry::Fit, 768);
        let out = p.process(&input).expect("process");
        assert!(out.passthrough);
        assert_eq!(out.jpeg.as_ptr(), input.as_ptr());
        // a DHT-less frame of the right size is not "standard": it is re-encoded
        let bare = strip_dht(&input);
        let out = p.process(&bare).expect("process");
        assert!(!out.passthrough);
        assert_eq!(decodes(out.jpeg), (768, 432));
    }

    #[test]
    fn truncated_frames_are_errors() {
        let input = uvc(640, 480);
        let mut p = pipeline(Geometry::Letterbox, 768);
        for cut in [
            0,
            1,
            2,
            3,
            5,
            20,
            100,
            300,
            620,
            1000,
            input.len() / 2,
            input.len() - 1,
        ] {
            let r = p.process(&input[..cut]);
            assert!(r.is_err(), "cut at {cut}");
        }
        assert!(matches!(trim_to_eoi(&input[..1]), Err(FrameError::NoSoi)));
        assert!(matches!(
            trim_to_eoi(&input[..50]),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            trim_to_eoi(&input[..input.len() - 2]),
            Err(FrameError::NoEoi)
        ));
        assert!(matches!(
            trim_to_eoi(&input[..input.len() - 1]),
            Err(FrameError::NoEoi)
        ));
        assert!(matches!(trim_to_eoi(b"hello"), Err(FrameError::NoSoi)));
    }

    #[test]
    fn garbage_after_eoi_is_trimmed() {
        let input = uvc(640, 480);
        // stale bytes from an older, bigger frame: they contain FF D9 of their own
        let older = uvc(1280, 720);
        let mut buf = input.clone();
        buf.extend_from_slice(&older[input.len() / 2..]);
        buf.extend_from_slice(&[0u8; 4096]);
        assert_eq!(trim_to_eoi(&buf).expect("trim"), &input[..]);
        let mut p = pipeline(Geometry::Fit, 512);
        let out = p.process(&buf).expect("process");
        assert_eq!(decodes(out.jpeg), (512, 384));
        // fill bytes before markers and after the scan are allowed
        let mut filled = input[..input.len() - 2].to_vec();
        filled.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xD9, 1, 2, 3]);
        assert_eq!(trim_to_eoi(&filled).expect("trim").len(), input.len() + 2);
    }

    #[test]
    fn exif_thumbnail_eoi_does_not_cut_the_frame() {
        let thumb = frame(16, 16, SamplingFactor::R_4_2_0);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&thumb);
        let rgb = vec![128u8; 64 * 48 * 3];
        let mut input = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut input, 85);
        enc.add_app_segment(1, app1).expect("app1");
        enc.encode(&rgb, 64, 48, ColorType::Rgb).expect("encode");
        assert_eq!(trim_to_eoi(&input).expect("trim"), &input[..]);
        assert_eq!(jpeg_size(&input), Some((64, 48)));
        let mut padded = input.clone();
        padded.extend_from_slice(&thumb);
        assert_eq!(trim_to_eoi(&padded).expect("trim").len(), input.len());
    }

    #[test]
    fn frames_without_huffman_tables_are_spliced() {
        let input = uvc(1280, 720);
        let bare = strip_dht(&input);
        assert!(bare.len() < input.len());
        // zune-jpeg alone cannot decode it (no AVI1 marker)
        assert!(JpegDecoder::new(ZCursor::new(&bare)).decode().is_err());
        let spliced = splice_dht(&bare).expect("splice");
        assert_eq!(spliced.len(), bare.len() + STANDARD_DHT.len());
        decodes(&spliced);
        assert_eq!(splice_dht(&input), None, "already has tables");
        let mut p = pipeline(Geometry::Letterbox, 768);
        let out = p.process(&bare).expect("process");
        assert_eq!(decodes(out.jpeg), (768, 768));
    }

    #[test]
    fn size_comes_from_the_frame_header() {
        assert_eq!(jpeg_size(&uvc(1280, 720)), Some((1280, 720)));
        assert_eq!(jpeg_size(&uvc(640, 480)[..200]), Some((640, 480)));
        assert_eq!(jpeg_size(&uvc(640, 480)[..20]), None);
        assert_eq!(jpeg_size(b"\xFF\xD8\xFF\xD9"), None);
        assert_eq!(jpeg_size(b""), None);
    }

    #[test]
    fn huge_frame_headers_are_refused_before_decoding() {
        let mut input = uvc(64, 48);
        // patch the SOF to claim 65535×65535
        let mut pos = 2;
        loop {
            let (m, after) = next_marker(&input, pos).expect("marker");
            let (_, end) = segment(&input, after).expect("segment");
            if is_sof(m) {
                input[after + 3..after + 7].copy_from_slice(&[0xFF; 4]);
                break;
            }
            pos = end;
        }
        let mut p = pipeline(Geometry::Letterbox, 768);
        assert!(matches!(
            p.process(&input),
            Err(FrameError::TooLarge {
                width: 65535,
                height: 65535,
                ..
            })
        ));
        assert_eq!(p.capacities(), [0; 6], "nothing allocated");
    }

    #[test]
    fn buffers_are_reused() {
        let big = uvc(1920, 1080);
        let small = uvc(1280, 720);
        for g in [
            Geometry::Letterbox,
            Geometry::Crop,
            Geometry::Fit,
            Geometry::Stretch,
        ] {
            // A big frame decodes at half scale, so buffers settle once each size was seen.
            let mut p = pipeline(g, 768);
            p.process(&big).expect("first");
            p.process(&small).expect("first");
            let caps = p.capacities();
            for f in [&big, &small, &big, &small, &big] {
                p.process(f).expect("again");
                assert_eq!(p.capacities(), caps, "{g:?}");
            }
        }
    }

    #[test]
    fn corrupt_frames_never_panic() {
        let input = uvc(320, 240);
        let bare = strip_dht(&input);
        let mut p = pipeline(Geometry::Letterbox, 256);
        let mut seed = 0x9E37_79B9u32;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize
        };
        let (mut ok, mut err) = (0, 0);
        for i in 0..600 {
            let mut f = if i % 3 == 0 {
                bare.clone()
            } else {
                input.clone()
            };
            match i % 5 {
                // flip a few bytes anywhere
                0 => {
                    for _ in 0..1 + rand() % 4 {
                        let at = rand() % f.len();
                        f[at] ^= 1 << (rand() % 8);
                    }
                }
                // hit the headers, where lengths and sizes live
                1 => {
                    let at = rand() % 700.min(f.len());
                    f[at] = rand() as u8;
                }
                // cut it and append a valid tail
                2 => {
                    let at = rand() % f.len();
                    f.truncate(at);
                    f.extend_from_slice(&[0xFF, 0xD9]);
                }
                // drop a random range
                3 => {
                    let a = rand() % f.len();
                    let b = (a + rand() % 64).min(f.len());
                    f.drain(a..b);
                }
                // insert marker-like bytes
                _ => {
                    let at = rand() % f.len();
                    let m = [0xFF, (rand() % 256) as u8, (rand() % 256) as u8];
                    f.splice(at..at, m);
                }
            }
            match p.process(&f) {
                Ok(out) => {
                    assert!(out.jpeg.starts_with(&[0xFF, 0xD8]));
                    ok += 1;
                }
                Err(_) => err += 1,
            }
            let _ = jpeg_size(&f);
            let _ = splice_dht(&f);
        }
        assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
    }

    #[test]
    fn find_ff_finds_the_first() {
        for len in 0..40 {
            for at in 0..len {
                let mut v = vec![0x12u8; len];
                v[at] = 0xFF;
                if at + 3 < len {
                    v[at + 3] = 0xFF;
                }
                assert_eq!(find_ff(&v), Some(at));
            }
            assert_eq!(find_ff(&vec![0xFEu8; len]), None);
        }
    }
}
