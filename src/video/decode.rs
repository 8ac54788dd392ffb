//! Baseline JPEG decoder to YCbCr planes, optionally at 1/2, 1/4 or 1/8 scale: camera frame in,
//! one plane per component at its own sampling out. No colour conversion and no chroma
//! upsampling: the pipeline resizes each plane and the encoder codes planes, so a frame never
//! exists as RGB.
//!
//! Why our own: on aarch64 zune-jpeg's decode to RGB was 44 % of a 720p frame's instructions,
//! and RGB cost 1.5× as much in the resize (three bytes a pixel where 4:2:2 planes average two).
//! A scaled decode (libjpeg's `scale_num/scale_denom`) runs a 4×4, 2×2 or 1×1 inverse DCT on
//! the low-frequency corner of each block, so a 1080p frame comes out as 960×540 for a fraction
//! of the work and memory.
//!
//! Scope: what cameras send. Huffman sequential (SOF0/SOF1), 8-bit, one or three components
//! in one interleaved scan, sampling factors 1 or 2, restart intervals, frames without Huffman
//! tables (the Annex K ones are used). Anything else (progressive, arithmetic, 12-bit, CMYK,
//! Adobe RGB, separate scans) is [`DecodeError::Unsupported`] and the pipeline hands the frame
//! to zune-jpeg. Camera frames are untrusted: corrupt data is an error, never a panic, and
//! every table index is checked.
//!
//! The 8×8 inverse DCT is libjpeg's AAN float one (`jidctflt`), written like the encoder's
//! forward DCT: each statement works on eight columns at once, which the compiler vectorises.
//! A block with only its DC coefficient (most chroma blocks, flat areas) is a fill.

use super::jpeg::annex_k;

/// Natural (row-major) index of each zigzag position, ITU T.81 figure A.6.
use super::encode::{AAN, ZIGZAG};

/// Why a frame was not decoded to planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A valid JPEG this decoder does not handle (another decoder may).
    #[error("not a baseline camera JPEG: {0}")]
    Unsupported(&'static str),
    /// The frame breaks the JPEG rules.
    #[error("corrupt JPEG: {0}")]
    Corrupt(&'static str),
}

/// One decoded plane: `width × height` samples, rows `stride` apart (the plane is padded to
/// whole blocks; the columns past `width` repeat the last one, so a filter that reads past the
/// edge sees the edge).
#[derive(Debug, Clone, Copy)]
pub struct PlaneRef<'a> {
    pub data: &'a [u8],
    pub stride: usize,
    pub width: usize,
    pub height: usize,
    /// Full-resolution pixels per sample across and down: the largest sampling factor over
    /// this component's (1 or 2; 1 for luma in every common layout).
    pub sub: (u8, u8),
}

/// A decoded frame: the luma plane, and for colour frames Cb and Cr.
#[derive(Debug, Clone, Copy)]
pub struct Planes<'a> {
    /// Image width and height at the decoded scale (libjpeg's rounding: up).
    pub width: u32,
    pub height: u32,
    pub y: PlaneRef<'a>,
    pub chroma: Option<(PlaneRef<'a>, PlaneRef<'a>)>,
}

/// The frame header fields [`Decoder::decode`] needs, checked before any allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    width: u32,
    height: u32,
    count: usize,
    comps: [Component; 3],
    hmax: u8,
    vmax: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Component {
    id: u8,
    h: u8,
    v: u8,
    tq: u8,
}

/// Reads the 16-bit big-endian value at `at`.
fn be16(buf: &[u8], at: usize) -> Result<usize, DecodeError> {
    match buf.get(at..at + 2) {
        Some(&[hi, lo]) => Ok(usize::from(u16::from_be_bytes([hi, lo]))),
        _ => Err(DecodeError::Corrupt("truncated segment")),
    }
}

const LUT_BITS: u32 = 9;

/// A Huffman table: a 9-bit lookup for the short codes (almost every code a camera uses), and
/// T.81's `maxcode`/`valptr` walk (F.2.2.3) for the rest.
#[derive(Clone)]
struct Huffman {
    /// `length << 8 | symbol`, 0 where the next 9 bits start a longer code (or no code).
    lut: [u16; 1 << LUT_BITS],
    /// Largest code of each length (index 1..=16), −1 when none.
    maxcode: [i32; 17],
    /// `values` index of a length's first code, minus that code.
    valptr: [i32; 17],
    values: [u8; 256],
    /// For AC tables: where the next 9 bits hold a whole code and its value bits,
    /// `value << 16 | run << 8 | bits used`, else 0 (stb_image's `fast_ac`): one lookup for
    /// most coefficients.
    fast: [i32; 1 << LUT_BITS],
}

impl Huffman {
    fn new(bits: &[u8], values: &[u8]) -> Result<Huffman, DecodeError> {
        let total: usize = bits.iter().map(|&b| usize::from(b)).sum();
        if bits.len() != 16 || total > 256 || values.len() < total {
            return Err(DecodeError::Corrupt("bad Huffman table"));
        }
        let mut h = Huffman {
            lut: [0; 1 << LUT_BITS],
            maxcode: [-1; 17],
            valptr: [0; 17],
            values: [0; 256],
            fast: [0; 1 << LUT_BITS],
        };
        h.values[..total].copy_from_slice(&values[..total]);
        let mut code: u32 = 0;
        let mut k: usize = 0;
        for len in 1..=16u32 {
            let n = u32::from(bits[len as usize - 1]);
            h.valptr[len as usize] = k as i32 - code as i32;
            if code + n > 1 << len {
                return Err(DecodeError::Corrupt("bad Huffman table"));
            }
            for _ in 0..n {
                if len <= LUT_BITS {
                    let shift = LUT_BITS - len;
                    let first = (code << shift) as usize;
                    let entry = (len as u16) << 8 | u16::from(h.values[k]);
                    h.lut[first..first + (1 << shift)].fill(entry);
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                h.maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        for (idx, (&e, fast)) in h.lut.iter().zip(h.fast.iter_mut()).enumerate() {
            let (len, run, size) = (u32::from(e >> 8), i32::from(e >> 4 & 15), u32::from(e & 15));
            if e == 0 || size == 0 || len + size > LUT_BITS {
                continue;
            }
            let v = (idx as i32 >> (LUT_BITS - len - size)) & ((1 << size) - 1);
            let v = if v < 1 << (size - 1) {
                v - (1 << size) + 1
            } else {
                v
            };
            *fast = v << 16 | run << 8 | (len + size) as i32;
        }
        Ok(h)
    }
}

/// Entropy-coded data, most significant bit first, with FF 00 unstuffed. At a marker it feeds
/// zero bits (as libjpeg does) and stops advancing; [`Bits::restart`] moves past RSTn.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    /// Valid bits, left-aligned.
    acc: u64,
    n: u32,
    at_marker: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits {
            data,
            pos: 0,
            acc: 0,
            n: 0,
            at_marker: false,
        }
    }

    /// At least 56 valid bits afterwards (a symbol and its value bits take at most 31).
    #[inline]
    fn refill(&mut self) {
        // Fast path: eight bytes with no FF among them go in whole.
        if !self.at_marker {
            if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                let w = u64::from_be_bytes(word);
                let x = !w;
                const LO: u64 = 0x0101_0101_0101_0101;
                const HI: u64 = 0x8080_8080_8080_8080;
                if x.wrapping_sub(LO) & !x & HI == 0 {
                    let take = (63 - self.n) / 8;
                    // take is 1..=7 bytes: the top `take` bytes of w.
                    self.acc |= (w >> (64 - 8 * take)) << (64 - 8 * take - self.n);
                    self.n += 8 * take;
                    self.pos += take as usize;
                    return;
                }
            }
        }
        while self.n <= 56 {
            let byte = if self.at_marker {
                0
            } else {
                match self.data.get(self.pos) {
                    Some(0xFF) => match self.data.get(self.pos + 1) {
                        Some(0x00) => {
                            self.pos += 2;
                            0xFF
                        }
                        Some(0xFF) => {
                            // Fill bytes before a marker.
                            self.pos += 1;
                            continue;
                        }
                        _ => {
                            self.at_marker = true;
                            0
                        }
                    },
                    Some(&b) => {
                        self.pos += 1;
                        b
                    }
                    None => {
                        self.at_marker = true;
                        0
                    }
                }
            };
            self.acc |= u64::from(byte) << (56 - self.n);
            self.n += 8;
        }
    }

    #[inline]
    fn symbol(&mut self, h: &Huffman) -> Result<u8, DecodeError> {
        if self.n < 32 {
            self.refill();
        }
        let e = h.lut[(self.acc >> (64 - LUT_BITS)) as usize];
        if e != 0 {
            let len = u32::from(e >> 8);
            self.acc <<= len;
            self.n -= len;
            return Ok(e as u8);
        }
        for len in LUT_BITS + 1..=16 {
            let code = (self.acc >> (64 - len)) as i32;
            if code <= h.maxcode[len as usize] {
                self.acc <<= len;
                self.n -= len;
                let i = h.valptr[len as usize].wrapping_add(code);
                return usize::try_from(i)
                    .ok()
                    .and_then(|i| h.values.get(i))
                    .copied()
                    .ok_or(DecodeError::Corrupt("bad Huffman code"));
            }
        }
        Err(DecodeError::Corrupt("bad Huffman code"))
    }

    /// The next `s` bits (1..=15) as a signed value (T.81 F.2.2.1 EXTEND). `symbol` left at
    /// least 16 bits.
    #[inline]
    fn signed(&mut self, s: u32) -> i32 {
        if self.n < s {
            self.refill();
        }
        let v = (self.acc >> (64 - s)) as i32;
        self.acc <<= s;
        self.n -= s;
        if v < 1 << (s - 1) {
            v - (1 << s) + 1
        } else {
            v
        }
    }

    /// Drops the bits left of this interval and steps over the restart marker that ends it.
    fn restart(&mut self) -> Result<(), DecodeError> {
        self.acc = 0;
        self.n = 0;
        self.at_marker = false;
        let mut p = self.pos;
        loop {
            let rest = self.data.get(p..).unwrap_or_default();
            let i = rest
                .iter()
                .position(|&b| b == 0xFF)
                .ok_or(DecodeError::Corrupt("restart marker missing"))?;
            match rest.get(i + 1) {
                Some(0xD0..=0xD7) => {
                    self.pos = p + i + 2;
                    return Ok(());
                }
                Some(0x00 | 0xFF) => p += i + 1,
                _ => return Err(DecodeError::Corrupt("restart marker missing")),
            }
        }
    }
}

/// The standard tables, for frames (most cheap cameras') that carry none.
fn annex_k_tables() -> [Huffman; 4] {
    use annex_k::*;
    let built = [
        Huffman::new(&DC_LUMA_BITS, &DC_VALUES),
        Huffman::new(&DC_CHROMA_BITS, &DC_VALUES),
        Huffman::new(&AC_LUMA_BITS, &AC_LUMA_VALUES),
        Huffman::new(&AC_CHROMA_BITS, &AC_CHROMA_VALUES),
    ];
    built.map(|t| t.expect("Annex K tables are valid"))
}

/// Tables, dequantisation and output planes, reused from frame to frame: after the first frame
/// of a size, decoding allocates nothing.
pub struct Decoder {
    /// DC tables 0..=3 then AC tables 0..=3; `None` until a frame defines them.
    huffman: Box<[Option<Huffman>; 8]>,
    /// Annex K: DC luma, DC chroma, AC luma, AC chroma.
    standard: Box<[Huffman; 4]>,
    /// Quantisation tables in zigzag order.
    quant: [[u16; 64]; 4],
    quant_set: [bool; 4],
    planes: [Vec<u8>; 3],
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

/// Scale shift for a scaled decode: 0 full size, 1 half, 2 quarter, 3 eighth.
pub type Shift = u8;

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            huffman: Box::new([None, None, None, None, None, None, None, None]),
            standard: Box::new(annex_k_tables()),
            quant: [[0; 64]; 4],
            quant_set: [false; 4],
            planes: [Vec::new(), Vec::new(), Vec::new()],
        }
    }

    /// Decodes `jpeg` (SOI … EOI) to planes at `1 / 2^shift` of its size (shift clamped to 3).
    /// `max_pixels` bounds the full-size frame before anything is allocated.
    pub fn decode(
        &mut self,
        jpeg: &[u8],
        shift: Shift,
        max_pixels: u64,
    ) -> Result<Planes<'_>, DecodeError> {
        let shift = shift.min(3);
        for t in self.huffman.iter_mut() {
            *t = None;
        }
        self.quant_set = [false; 4];
        if !jpeg.starts_with(&[0xFF, 0xD8]) {
            return Err(DecodeError::Corrupt("no start-of-image marker"));
        }
        let mut pos = 2;
        let mut frame: Option<Frame> = None;
        let mut restart_interval = 0usize;
        loop {
            // Markers may be preceded by fill bytes.
            if jpeg.get(pos) != Some(&0xFF) {
                return Err(DecodeError::Corrupt("expected a marker"));
            }
            while jpeg.get(pos) == Some(&0xFF) {
                pos += 1;
            }
            let marker = *jpeg
                .get(pos)
                .ok_or(DecodeError::Corrupt("truncated marker"))?;
            pos += 1;
            match marker {
                0xD9 => return Err(DecodeError::Corrupt("end of image before a scan")),
                0xD0..=0xD7 | 0x01 => continue,
                _ => {}
            }
            let len = be16(jpeg, pos)?;
            let body = jpeg
                .get(pos + 2..pos + len)
                .filter(|_| len >= 2)
                .ok_or(DecodeError::Corrupt("truncated segment"))?;
            let next = pos + len;
            match marker {
                0xC0 | 0xC1 => {
                    if frame.is_some() {
                        return Err(DecodeError::Unsupported("more than one frame header"));
                    }
                    frame = Some(parse_frame(body, max_pixels)?);
                }
                0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(DecodeError::Unsupported(
                        "not Huffman sequential (progressive, lossless or arithmetic)",
                    ));
                }
                0xC4 => self.read_dht(body)?,
                0xDB => self.read_dqt(body)?,
                0xDD => {
                    restart_interval = be16(body, 0)?;
                }
                // Adobe APP14 with transform 0: the components are RGB (or CMYK), not YCbCr.
                0xEE if body.starts_with(b"Adobe") && body.get(11) == Some(&0) => {
                    return Err(DecodeError::Unsupported("Adobe transform 0 (RGB)"));
                }
                0xDA => {
                    let f = frame.ok_or(DecodeError::Corrupt("scan before the frame header"))?;
                    let order = self.read_sos(body, &f)?;
                    return self.decode_scan(
                        jpeg.get(next..).unwrap_or_default(),
                        &f,
                        order,
                        restart_interval,
                        shift,
                    );
                }
                _ => {}
            }
            pos = next;
        }
    }

    fn read_dht(&mut self, mut body: &[u8]) -> Result<(), DecodeError> {
        while let [tc_th, rest @ ..] = body {
            let (class, id) = (tc_th >> 4, usize::from(tc_th & 15));
            if class > 1 || id > 3 {
                return Err(DecodeError::Corrupt("bad Huffman table id"));
            }
            let bits = rest
                .get(..16)
                .ok_or(DecodeError::Corrupt("truncated Huffman table"))?;
            let total: usize = bits.iter().map(|&b| usize::from(b)).sum();
            let values = rest
                .get(16..16 + total)
                .ok_or(DecodeError::Corrupt("truncated Huffman table"))?;
            self.huffman[usize::from(class) * 4 + id] = Some(Huffman::new(bits, values)?);
            body = &rest[16 + total..];
        }
        Ok(())
    }

    fn read_dqt(&mut self, mut body: &[u8]) -> Result<(), DecodeError> {
        while let [pq_tq, rest @ ..] = body {
            let (precision, id) = (pq_tq >> 4, usize::from(pq_tq & 15));
            if precision > 1 || id > 3 {
                return Err(DecodeError::Corrupt("bad quantisation table id"));
            }
            let size = 64 << precision;
            let raw = rest
                .get(..size)
                .ok_or(DecodeError::Corrupt("truncated quantisation table"))?;
            for (k, q) in self.quant[id].iter_mut().enumerate() {
                *q = if precision == 0 {
                    u16::from(raw[k])
                } else {
                    u16::from_be_bytes([raw[2 * k], raw[2 * k + 1]])
                };
            }
            self.quant_set[id] = true;
            body = &rest[size..];
        }
        Ok(())
    }

    /// Per scan slot: the frame component, its DC and its AC table id.
    fn read_sos(&self, body: &[u8], f: &Frame) -> Result<[(usize, usize, usize); 3], DecodeError> {
        let ns = usize::from(
            *body
                .first()
                .ok_or(DecodeError::Corrupt("empty scan header"))?,
        );
        if ns != f.count {
            return Err(DecodeError::Unsupported("components in separate scans"));
        }
        if body.len() < 1 + 2 * ns + 3 {
            return Err(DecodeError::Corrupt("truncated scan header"));
        }
        let mut order = [(0usize, 0usize, 0usize); 3];
        let mut seen = [false; 3];
        for (i, slot) in order.iter_mut().enumerate().take(ns) {
            let id = body[1 + 2 * i];
            let c = f.comps[..f.count]
                .iter()
                .position(|c| c.id == id)
                .ok_or(DecodeError::Corrupt("scan names an unknown component"))?;
            if std::mem::replace(&mut seen[c], true) {
                return Err(DecodeError::Corrupt("component twice in a scan"));
            }
            let tables = body[2 + 2 * i];
            let (dc, ac) = (usize::from(tables >> 4), usize::from(tables & 15));
            if dc > 3 || ac > 3 {
                return Err(DecodeError::Corrupt("bad Huffman table id"));
            }
            *slot = (c, dc, ac);
        }
        let (ss, se, a) = (body[1 + 2 * ns], body[2 + 2 * ns], body[3 + 2 * ns]);
        if ss != 0 || se != 63 || a != 0 {
            return Err(DecodeError::Unsupported(
                "spectral selection in a sequential scan",
            ));
        }
        Ok(order)
    }

    /// The table for `class` (0 DC, 1 AC) and `id`; the Annex K one when the frame has none.
    fn table(&self, class: usize, id: usize) -> &Huffman {
        match &self.huffman[class * 4 + id] {
            Some(t) => t,
            None => &self.standard[class * 2 + usize::from(id > 0)],
        }
    }

    fn decode_scan<'p>(
        &'p mut self,
        data: &[u8],
        f: &Frame,
        order: [(usize, usize, usize); 3],
        restart_interval: usize,
        shift: Shift,
    ) -> Result<Planes<'p>, DecodeError> {
        let n = f.count;
        let bs = 8usize >> shift;
        let (hmax, vmax) = (usize::from(f.hmax), usize::from(f.vmax));
        let (w, h) = (f.width as usize, f.height as usize);
        // One component alone is not interleaved: its MCU is one block (T.81 A.2.2).
        let (mcux, mcuy) = if n == 1 {
            (w.div_ceil(8), h.div_ceil(8))
        } else {
            (w.div_ceil(8 * hmax), h.div_ceil(8 * vmax))
        };
        let sampling = |c: usize| {
            if n == 1 {
                (1, 1)
            } else {
                (usize::from(f.comps[c].h), usize::from(f.comps[c].v))
            }
        };
        let mut strides = [0usize; 3];
        let mut mults = [[0f32; 64]; 3];
        for c in 0..n {
            let tq = usize::from(f.comps[c].tq);
            if !self.quant_set[tq] {
                return Err(DecodeError::Corrupt("quantisation table not defined"));
            }
            let (ch, cv) = sampling(c);
            strides[c] = mcux * ch * bs;
            let len = strides[c] * mcuy * cv * bs;
            if self.planes[c].len() < len {
                self.planes[c].resize(len, 0);
            }
            mults[c] = multipliers(&self.quant[tq], shift);
        }
        // The planes leave `self` while the scan is decoded, so the tables can stay borrowed.
        let mut planes = std::mem::take(&mut self.planes);
        let result = self.decode_mcus(
            data,
            Geometry {
                n,
                mcux,
                mcuy,
                bs,
                shift,
                sampling: [sampling(0), sampling(1.min(n - 1)), sampling(2.min(n - 1))],
                strides,
                restart_interval,
                dc_level: if matches!(shift, 1 | 2) { 0.125 } else { 1.0 },
            },
            order,
            &mults,
            &mut planes,
        );
        self.planes = planes;
        result?;
        let plane_ref = |c: usize| {
            let (ch, cv) = sampling(c);
            let (sub_x, sub_y) = if n == 1 {
                (1, 1)
            } else {
                (hmax / ch, vmax / cv)
            };
            (
                strides[c],
                w.div_ceil(sub_x).div_ceil(1 << shift),
                h.div_ceil(sub_y).div_ceil(1 << shift),
                (sub_x as u8, sub_y as u8),
            )
        };
        // Repeat the last visible column into the block padding: the resizer's filter reads
        // up to the plane's stride, and what a camera's encoder put past the edge is anything.
        for c in 0..n {
            let (stride, width, height, _) = plane_ref(c);
            if width < stride {
                for row in self.planes[c][..stride * height].chunks_exact_mut(stride) {
                    let last = row[width - 1];
                    row[width..].fill(last);
                }
            }
        }
        let plane = |c: usize, data: &'p [u8]| -> PlaneRef<'p> {
            let (stride, width, height, sub) = plane_ref(c);
            PlaneRef {
                data,
                stride,
                width,
                height,
                sub,
            }
        };
        let [p0, p1, p2] = &self.planes;
        Ok(Planes {
            width: w.div_ceil(1 << shift) as u32,
            height: h.div_ceil(1 << shift) as u32,
            y: plane(0, p0),
            chroma: (n == 3).then(|| (plane(1, p1), plane(2, p2))),
        })
    }

    fn decode_mcus(
        &self,
        data: &[u8],
        g: Geometry,
        order: [(usize, usize, usize); 3],
        mults: &[[f32; 64]; 3],
        planes: &mut [Vec<u8>; 3],
    ) -> Result<(), DecodeError> {
        let tables: [(&Huffman, &Huffman); 3] =
            order.map(|(_, dc, ac)| (self.table(0, dc), self.table(1, ac)));
        let mut bits = Bits::new(data);
        let mut preds = [0i32; 3];
        let mut coef = [[0f32; 8]; 8];
        let mut mcus_left = g.restart_interval;
        for my in 0..g.mcuy {
            for mx in 0..g.mcux {
                if g.restart_interval > 0 {
                    if mcus_left == 0 {
                        bits.restart()?;
                        preds = [0; 3];
                        mcus_left = g.restart_interval;
                    }
                    mcus_left -= 1;
                }
                for (slot, &(c, _, _)) in order[..g.n].iter().enumerate() {
                    let (ch, cv) = g.sampling[c];
                    let (dc, ac) = tables[slot];
                    let stride = g.strides[c];
                    for by in 0..cv {
                        for bx in 0..ch {
                            let last = decode_block(
                                &mut bits,
                                dc,
                                ac,
                                &mut preds[slot],
                                &mults[c],
                                &mut coef,
                            )?;
                            let at = ((my * cv + by) * stride + (mx * ch + bx)) * g.bs;
                            let out = &mut planes[c][at..];
                            if last == 0 || g.shift == 3 {
                                fill_block(coef[0][0] * g.dc_level, out, stride, g.bs);
                            } else {
                                match g.shift {
                                    0 => idct8(&mut coef, out, stride),
                                    1 => idct_small::<4>(&coef, &BASIS4, out, stride),
                                    _ => idct_small::<2>(&coef, &BASIS2, out, stride),
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Where the blocks of a scan go.
#[derive(Clone, Copy)]
struct Geometry {
    n: usize,
    mcux: usize,
    mcuy: usize,
    /// Output side of one block: 8 >> shift.
    bs: usize,
    shift: Shift,
    /// Blocks per MCU across and down, per frame component.
    sampling: [(usize, usize); 3],
    strides: [usize; 3],
    restart_interval: usize,
    /// A DC-only block's level per dequantised DC: 1 where the multiplier carries the 1/8
    /// (shifts 0 and 3), 1/8 for the reduced transforms.
    dc_level: f32,
}

fn parse_frame(body: &[u8], max_pixels: u64) -> Result<Frame, DecodeError> {
    let [precision, h0, h1, w0, w1, count, comps @ ..] = body else {
        return Err(DecodeError::Corrupt("frame header too short"));
    };
    if *precision != 8 {
        return Err(DecodeError::Unsupported("not 8-bit"));
    }
    let height = u32::from(u16::from_be_bytes([*h0, *h1]));
    let width = u32::from(u16::from_be_bytes([*w0, *w1]));
    if width == 0 || height == 0 {
        return Err(DecodeError::Corrupt("zero width or height"));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(DecodeError::Corrupt("frame over the pixel limit"));
    }
    let count = usize::from(*count);
    if !matches!(count, 1 | 3) {
        return Err(DecodeError::Unsupported("not one or three components"));
    }
    if comps.len() < 3 * count {
        return Err(DecodeError::Corrupt("frame header too short"));
    }
    let mut f = Frame {
        width,
        height,
        count,
        comps: [Component::default(); 3],
        hmax: 1,
        vmax: 1,
    };
    for (i, c) in f.comps[..count].iter_mut().enumerate() {
        let (id, hv, tq) = (comps[3 * i], comps[3 * i + 1], comps[3 * i + 2]);
        *c = Component {
            id,
            h: hv >> 4,
            v: hv & 15,
            tq,
        };
        if !(1..=2).contains(&c.h) || !(1..=2).contains(&c.v) {
            return Err(DecodeError::Unsupported(
                "sampling factor other than 1 or 2",
            ));
        }
        if tq > 3 {
            return Err(DecodeError::Corrupt("bad quantisation table id"));
        }
        f.hmax = f.hmax.max(c.h);
        f.vmax = f.vmax.max(c.v);
    }
    if count == 3 && f.comps[..3].iter().map(|c| c.id).eq(*b"RGB") {
        return Err(DecodeError::Unsupported("RGB components"));
    }
    Ok(f)
}

/// Dequantisation multipliers in zigzag order for a decode at `shift`: for the 8×8 AAN
/// transform the AAN scale factors and the 1/8 are folded in (libjpeg's `jddctmgr`), for the
/// reduced transforms only the quantiser (their bases carry the normalisation).
fn multipliers(q: &[u16; 64], shift: Shift) -> [f32; 64] {
    let mut m = [0f32; 64];
    for (k, out) in m.iter_mut().enumerate() {
        let natural = usize::from(ZIGZAG[k]);
        let (row, col) = (natural / 8, natural % 8);
        let q = f64::from(q[k]);
        *out = match shift {
            0 => (q * AAN[row] * AAN[col] / 8.0) as f32,
            3 if k == 0 => (q / 8.0) as f32,
            _ => q as f32,
        };
    }
    m
}

/// Decodes one block's coefficients into `coef` (natural order, dequantised, zero elsewhere).
/// Returns the zigzag index of the last non-zero coefficient (0: only the DC).
#[inline(never)]
fn decode_block(
    bits: &mut Bits<'_>,
    dc: &Huffman,
    ac: &Huffman,
    pred: &mut i32,
    mult: &[f32; 64],
    coef: &mut [[f32; 8]; 8],
) -> Result<usize, DecodeError> {
    *coef = [[0.0; 8]; 8];
    let flat = coef.as_flattened_mut();
    let t = u32::from(bits.symbol(dc)?);
    if t > 15 {
        return Err(DecodeError::Corrupt("DC difference over 15 bits"));
    }
    if t > 0 {
        *pred = pred.wrapping_add(bits.signed(t));
    }
    flat[0] = *pred as f32 * mult[0];
    let mut k = 1usize;
    let mut last = 0;
    while k < 64 {
        if bits.n < 32 {
            bits.refill();
        }
        let f = ac.fast[(bits.acc >> (64 - LUT_BITS)) as usize];
        let value = if f != 0 {
            let used = (f & 0xFF) as u32;
            bits.acc <<= used;
            bits.n -= used;
            k += (f >> 8 & 15) as usize;
            f >> 16
        } else {
            let rs = bits.symbol(ac)?;
            let (run, size) = (usize::from(rs >> 4), u32::from(rs & 15));
            if size == 0 {
                if run == 15 {
                    k += 16;
                    continue;
                }
                break;
            }
            k += run;
            bits.signed(size)
        };
        if k > 63 {
            return Err(DecodeError::Corrupt("coefficient past the end of a block"));
        }
        flat[usize::from(ZIGZAG[k])] = value as f32 * mult[k];
        last = k;
        k += 1;
    }
    Ok(last)
}

/// Writes a flat `side`×`side` block of `level` (before the +128 level shift).
#[inline]
fn fill_block(level: f32, out: &mut [u8], stride: usize, side: usize) {
    let v = to_pixel(level);
    for r in 0..side {
        out[r * stride..r * stride + side].fill(v);
    }
}

/// A sample from a transform output: +128, rounded, clamped to 0..=255 (`as` saturates).
#[inline(always)]
fn to_pixel(v: f32) -> u8 {
    (v + 128.5) as u8
}

/// libjpeg's float AAN inverse DCT (`jidctflt`) down the columns of `b`, eight lanes at once.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `i` is the lane, the same in all eight rows
fn idct_columns(b: &mut [[f32; 8]; 8]) {
    for i in 0..8 {
        // Even part.
        let tmp0 = b[0][i];
        let tmp1 = b[2][i];
        let tmp2 = b[4][i];
        let tmp3 = b[6][i];
        let tmp10 = tmp0 + tmp2;
        let tmp11 = tmp0 - tmp2;
        let tmp13 = tmp1 + tmp3;
        let tmp12 = (tmp1 - tmp3) * std::f32::consts::SQRT_2 - tmp13;
        let e0 = tmp10 + tmp13;
        let e3 = tmp10 - tmp13;
        let e1 = tmp11 + tmp12;
        let e2 = tmp11 - tmp12;
        // Odd part.
        let tmp4 = b[1][i];
        let tmp5 = b[3][i];
        let tmp6 = b[5][i];
        let tmp7 = b[7][i];
        let z13 = tmp6 + tmp5;
        let z10 = tmp6 - tmp5;
        let z11 = tmp4 + tmp7;
        let z12 = tmp4 - tmp7;
        let o7 = z11 + z13;
        let o11 = (z11 - z13) * std::f32::consts::SQRT_2;
        let z5 = (z10 + z12) * 1.847_759_1;
        let o10 = z12 * 1.082_392_2 - z5;
        let o12 = z10 * -2.613_126 + z5;
        let o6 = o12 - o7;
        let o5 = o11 - o6;
        let o4 = o10 + o5;
        b[0][i] = e0 + o7;
        b[7][i] = e0 - o7;
        b[1][i] = e1 + o6;
        b[6][i] = e1 - o6;
        b[2][i] = e2 + o5;
        b[5][i] = e2 - o5;
        b[4][i] = e3 + o4;
        b[3][i] = e3 - o4;
    }
}

#[inline(always)]
#[allow(clippy::needless_range_loop)] // a swap across the diagonal needs both indices
fn transpose(b: &mut [[f32; 8]; 8]) {
    for r in 0..8 {
        for c in r + 1..8 {
            let t = b[r][c];
            b[r][c] = b[c][r];
            b[c][r] = t;
        }
    }
}

/// The 8×8 inverse DCT of `b` (AAN-scaled, see [`multipliers`]) into `out`. Not inlined, nor
/// is [`decode_block`]: inlined into the scan loop both cost 15 % more aarch64 instructions
/// (spills; measured with `INSN_PROFILE`). A variant for blocks with only low frequencies cost
/// the same: the transposes, not the arithmetic, dominate.
#[inline(never)]
fn idct8(b: &mut [[f32; 8]; 8], out: &mut [u8], stride: usize) {
    idct_columns(b);
    transpose(b);
    idct_columns(b);
    store(b, out, stride);
}

/// Writes a transformed block, transposed back (`b[c][r]` holds row r, column c).
#[inline(always)]
fn store(b: &mut [[f32; 8]; 8], out: &mut [u8], stride: usize) {
    transpose(b);
    for (r, row) in b.iter().enumerate() {
        let dst = &mut out[r * stride..r * stride + 8];
        for (d, &v) in dst.iter_mut().zip(row) {
            *d = to_pixel(v);
        }
    }
}

// Bases of the reduced inverse DCTs: `basis[n][k]` = C(k)/2 · cos((2n+1)kπ/2N), the 8-point
// basis evaluated at the centres of groups of 8/N pixels, so the N×N output approximates the
// average of the full decode's pixel groups (libjpeg's `jidctred` idea).

/// cos((2n+1)kπ/8) · C(k)/2 for n, k < 4.
const BASIS4: [[f32; 4]; 4] = [
    [0.353_553_4, 0.461_939_77, 0.353_553_4, 0.191_341_72],
    [0.353_553_4, 0.191_341_72, -0.353_553_4, -0.461_939_77],
    [0.353_553_4, -0.191_341_72, -0.353_553_4, 0.461_939_77],
    [0.353_553_4, -0.461_939_77, 0.353_553_4, -0.191_341_72],
];

/// cos((2n+1)kπ/4) · C(k)/2 for n, k < 2.
const BASIS2: [[f32; 2]; 2] = [[0.353_553_4, 0.353_553_4], [0.353_553_4, -0.353_553_4]];

/// The `N`×`N` reduced inverse DCT of the low-frequency corner of `coef` into `out`.
#[inline]
fn idct_small<const N: usize>(
    coef: &[[f32; 8]; 8],
    basis: &[[f32; N]; N],
    out: &mut [u8],
    stride: usize,
) {
    // tmp[n][l] = Σ_k basis[n][k] · coef[k][l]
    let mut tmp = [[0f32; N]; N];
    for n in 0..N {
        for k in 0..N {
            let b = basis[n][k];
            for l in 0..N {
                tmp[n][l] += b * coef[k][l];
            }
        }
    }
    for n in 0..N {
        let dst = &mut out[n * stride..n * stride + N];
        for (m, d) in dst.iter_mut().enumerate() {
            let mut v = 0f32;
            for l in 0..N {
                v += basis[m][l] * tmp[n][l];
            }
            *d = to_pixel(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::psnr;
    use super::*;
    use jpeg_encoder::{ColorType, SamplingFactor};
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    use zune_jpeg::JpegDecoder;

    const LIMIT: u64 = 4096 * 4096;

    /// Gradients, hard-edged checks and noise, so blocks carry AC energy, plus a flat corner
    /// (DC-only blocks).
    fn rgb(w: usize, h: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(w * h * 3);
        let mut seed = 0x1234_5678u32;
        for y in 0..h {
            for x in 0..w {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if x < w / 4 && y < h / 4 {
                    out.extend_from_slice(&[90, 140, 200]);
                    continue;
                }
                let noise = (seed >> 28) as u8;
                let check = if ((x / 37) + (y / 23)) % 2 == 0 {
                    60
                } else {
                    0
                };
                out.push(((x * 255 / w) as u8).wrapping_add(noise) / 2 + check);
                out.push(((y * 255 / h) as u8) / 2 + check + noise / 2);
                out.push((((x + y) * 3) as u8) / 3 + check);
            }
        }
        out
    }

    fn encode(w: u16, h: u16, sampling: SamplingFactor, restart: u16, color: ColorType) -> Vec<u8> {
        let px = rgb(w.into(), h.into());
        let px = if color == ColorType::Luma {
            px.chunks(3).map(|p| p[1]).collect()
        } else {
            px
        };
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 85);
        enc.set_sampling_factor(sampling);
        enc.set_restart_interval(restart);
        enc.encode(&px, w, h, color).expect("test encode");
        out
    }

    fn zune(jpeg: &[u8], space: ColorSpace) -> Vec<u8> {
        let options = DecoderOptions::default().jpeg_set_out_colorspace(space);
        JpegDecoder::new_with_options(ZCursor::new(jpeg), options)
            .decode()
            .expect("zune-jpeg decodes")
    }

    /// The visible part of a plane, rows packed.
    fn visible(p: &PlaneRef<'_>) -> Vec<u8> {
        (0..p.height)
            .flat_map(|r| &p.data[r * p.stride..r * p.stride + p.width])
            .copied()
            .collect()
    }

    /// The planes converted to RGB (chroma repeated over its luma pixels), JFIF's equations.
    fn to_rgb(p: &Planes<'_>) -> Vec<u8> {
        let (w, h) = (p.width as usize, p.height as usize);
        let mut out = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let l = f32::from(p.y.data[y * p.y.stride + x]);
                let Some((cb, cr)) = &p.chroma else {
                    out.extend_from_slice(&[l as u8; 3]);
                    continue;
                };
                let at = |c: &PlaneRef<'_>| {
                    let (sx, sy) = (usize::from(c.sub.0), usize::from(c.sub.1));
                    f32::from(c.data[(y / sy) * c.stride + x / sx]) - 128.0
                };
                let (b, r) = (at(cb), at(cr));
                let px = |v: f32| (v + 0.5).clamp(0.0, 255.0) as u8;
                out.push(px(l + 1.402 * r));
                out.push(px(l - 0.344_136 * b - 0.714_136 * r));
                out.push(px(l + 1.772 * b));
            }
        }
        out
    }

    /// The 2-D inverse DCT from its definition (T.81 A.3.3), at pixel (x, y) of an 8×8 block.
    fn definition(coef: &[[f64; 8]; 8], x: f64, y: f64) -> f64 {
        let c = |k: usize| {
            if k == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            }
        };
        let mut s = 0.0;
        for (v, row) in coef.iter().enumerate() {
            for (u, &f) in row.iter().enumerate() {
                s += c(u)
                    * c(v)
                    * f
                    * ((2.0 * x + 1.0) * u as f64 * std::f64::consts::PI / 16.0).cos()
                    * ((2.0 * y + 1.0) * v as f64 * std::f64::consts::PI / 16.0).cos();
            }
        }
        s / 4.0
    }

    fn test_coefs() -> [[f64; 8]; 8] {
        let mut coef = [[0f64; 8]; 8];
        let mut seed = 7u32;
        for (i, c) in coef.as_flattened_mut().iter_mut().enumerate() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *c = f64::from((seed >> 24) as i32 - 128) * 4.0 / (1.0 + i as f64 / 8.0);
        }
        coef
    }

    #[test]
    fn the_inverse_dct_matches_the_definition() {
        let coef = test_coefs();
        // Quantiser 1 everywhere: the multipliers are just the AAN scale.
        let mult = multipliers(&[1; 64], 0);
        let mut block = [[0f32; 8]; 8];
        for (k, &natural) in ZIGZAG.iter().enumerate() {
            let n = usize::from(natural);
            block[n / 8][n % 8] = coef[n / 8][n % 8] as f32 * mult[k];
        }
        let mut out = [0u8; 64];
        idct8(&mut block, &mut out, 8);
        for y in 0..8 {
            for x in 0..8 {
                let want = (definition(&coef, x as f64, y as f64) + 128.0)
                    .round()
                    .clamp(0.0, 255.0);
                let got = f64::from(out[y * 8 + x]);
                assert!((got - want).abs() <= 1.0, "({x}, {y}): {got} vs {want}");
            }
        }
    }

    #[test]
    fn reduced_transforms_sample_the_definition_at_group_centres() {
        let coef = test_coefs();
        let block: [[f32; 8]; 8] = coef.map(|r| r.map(|v| v as f32));
        let mut out4 = [0u8; 16];
        idct_small::<4>(&block, &BASIS4, &mut out4, 4);
        let mut out2 = [0u8; 4];
        idct_small::<2>(&block, &BASIS2, &mut out2, 2);
        // Only the N×N low-frequency corner enters: the definition with the rest zeroed.
        let corner = |n: usize| {
            let mut c = coef;
            for (v, row) in c.iter_mut().enumerate() {
                for (u, f) in row.iter_mut().enumerate() {
                    if u >= n || v >= n {
                        *f = 0.0;
                    }
                }
            }
            c
        };
        for (n, out) in [(4usize, &out4[..]), (2, &out2[..])] {
            let c = corner(n);
            let g = 8 / n;
            for y in 0..n {
                for x in 0..n {
                    // The centre of the group of g×g pixels.
                    let (cx, cy) = (
                        (x * g) as f64 + (g as f64 - 1.0) / 2.0,
                        (y * g) as f64 + (g as f64 - 1.0) / 2.0,
                    );
                    let want = (definition(&c, cx, cy) + 128.0).round().clamp(0.0, 255.0);
                    let got = f64::from(out[y * n + x]);
                    assert!(
                        (got - want).abs() <= 1.0,
                        "{n}: ({x}, {y}): {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn decodes_what_zune_jpeg_decodes() {
        let cases = [
            (1280, 720, SamplingFactor::R_4_2_2, 0, ColorType::Rgb),
            (640, 480, SamplingFactor::R_4_2_0, 0, ColorType::Rgb),
            (333, 211, SamplingFactor::R_4_2_0, 0, ColorType::Rgb),
            (333, 211, SamplingFactor::R_4_4_4, 7, ColorType::Rgb),
            (301, 199, SamplingFactor::R_4_2_2, 5, ColorType::Rgb),
            (250, 170, SamplingFactor::R_4_4_0, 0, ColorType::Rgb),
            (203, 101, SamplingFactor::R_4_4_4, 3, ColorType::Luma),
        ];
        let mut d = Decoder::new();
        for (w, h, sampling, restart, color) in cases {
            let jpeg = encode(w, h, sampling, restart, color);
            let p = d.decode(&jpeg, 0, LIMIT).expect("decodes");
            assert_eq!((p.width, p.height), (u32::from(w), u32::from(h)));
            // Luma against zune-jpeg's: only the IDCT's rounding differs.
            let y = visible(&p.y);
            let theirs = zune(&jpeg, ColorSpace::Luma);
            let worst = y.iter().zip(&theirs).map(|(&a, &b)| a.abs_diff(b)).max();
            assert!(
                worst <= Some(2),
                "{w}x{h} {sampling:?}: luma off by {worst:?}"
            );
            // Colour against zune-jpeg's RGB: its chroma upsampling is smoother than a repeat.
            if color == ColorType::Rgb {
                let db = psnr(&to_rgb(&p), &zune(&jpeg, ColorSpace::RGB));
                assert!(db > 30.0, "{w}x{h} {sampling:?}: {db:.1} dB");
            }
        }
    }

    #[test]
    fn block_padding_repeats_the_edge() {
        // 1000 wide in 4:2:0: luma padded to 1008, chroma 500 to 504.
        let jpeg = encode(1000, 75, SamplingFactor::R_4_2_0, 0, ColorType::Rgb);
        let mut d = Decoder::new();
        for shift in [0, 1] {
            let p = d.decode(&jpeg, shift, LIMIT).expect("decodes");
            let (cb, cr) = p.chroma.expect("colour");
            for plane in [p.y, cb, cr] {
                assert!(plane.stride > plane.width, "padded");
                for r in 0..plane.height {
                    let row = &plane.data[r * plane.stride..(r + 1) * plane.stride];
                    let edge = row[plane.width - 1];
                    assert!(row[plane.width..].iter().all(|&v| v == edge), "row {r}");
                }
            }
        }
    }

    #[test]
    fn a_scaled_decode_is_the_full_one_averaged() {
        let jpeg = encode(640, 360, SamplingFactor::R_4_2_2, 0, ColorType::Rgb);
        let mut d = Decoder::new();
        let full = visible(&d.decode(&jpeg, 0, LIMIT).expect("full").y);
        for shift in 1..=3u8 {
            let g = 1usize << shift;
            let p = d.decode(&jpeg, shift, LIMIT).expect("scaled");
            assert_eq!(
                (p.width, p.height),
                (640 / g as u32, 360u32.div_ceil(g as u32))
            );
            let (cb, _) = p.chroma.expect("colour");
            assert_eq!(
                (cb.width, cb.height, cb.sub),
                (320 / g, 360usize.div_ceil(g), (2, 1))
            );
            let mut averaged = Vec::new();
            for y in 0..360 / g {
                for x in 0..640 / g {
                    let mut s = 0u32;
                    for dy in 0..g {
                        for dx in 0..g {
                            s += u32::from(full[(y * g + dy) * 640 + x * g + dx]);
                        }
                    }
                    averaged.push(((s + (g * g / 2) as u32) / (g * g) as u32) as u8);
                }
            }
            let ours: Vec<u8> = (0..360 / g)
                .flat_map(|r| &p.y.data[r * p.y.stride..r * p.y.stride + 640 / g])
                .copied()
                .collect();
            let db = psnr(&ours, &averaged);
            assert!(
                db > 30.0,
                "1/{g}: {db:.1} dB against the averaged full decode"
            );
        }
    }

    #[test]
    fn frames_without_tables_use_annex_k() {
        let jpeg = encode(320, 240, SamplingFactor::R_4_2_2, 0, ColorType::Rgb);
        let mut d = Decoder::new();
        let with = visible(&d.decode(&jpeg, 0, LIMIT).expect("decodes").y);
        // jpeg-encoder codes with the Annex K tables, so the frame decodes the same without.
        let stripped = crate::video::jpeg::strip_dht(&jpeg);
        assert!(stripped.len() < jpeg.len());
        let without = visible(&d.decode(&stripped, 0, LIMIT).expect("decodes").y);
        assert_eq!(with, without);
    }

    #[test]
    fn what_it_does_not_handle_is_unsupported() {
        let px = rgb(64, 64);
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 85);
        enc.set_progressive(true);
        enc.encode(&px, 64, 64, ColorType::Rgb)
            .expect("test encode");
        let mut d = Decoder::new();
        assert!(matches!(
            d.decode(&out, 0, LIMIT),
            Err(DecodeError::Unsupported(_))
        ));
        let mut cmyk = Vec::new();
        let px4: Vec<u8> = px.chunks(3).flat_map(|p| [p[0], p[1], p[2], 0]).collect();
        jpeg_encoder::Encoder::new(&mut cmyk, 85)
            .encode(&px4, 64, 64, ColorType::Cmyk)
            .expect("test encode");
        assert!(matches!(
            d.decode(&cmyk, 0, LIMIT),
            Err(DecodeError::Unsupported(_))
        ));
    }

    #[test]
    fn corrupt_frames_are_errors_not_panics() {
        let jpeg = encode(96, 64, SamplingFactor::R_4_2_2, 2, ColorType::Rgb);
        let mut d = Decoder::new();
        assert!(d.decode(&jpeg, 0, 96 * 64 - 1).is_err(), "pixel limit");
        // Every truncation and a flipped byte at every offset: an error or planes, no panic.
        for cut in 0..jpeg.len() {
            let _ = d.decode(&jpeg[..cut], 0, LIMIT);
        }
        let mut bad = jpeg.clone();
        for i in 0..bad.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                bad[i] ^= flip;
                for shift in [0, 1] {
                    if let Ok(p) = d.decode(&bad, shift, LIMIT) {
                        assert!(p.y.data.len() >= p.y.stride * p.y.height);
                    }
                }
                bad[i] ^= flip;
            }
        }
    }
}
