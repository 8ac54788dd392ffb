//! Port of the TensorFlow Lite Micro audio "micro_features" front end with the settings
//! microWakeWord was trained on: 30 ms window, 10 ms step at 16 kHz, 40 mel channels
//! (125–7500 Hz), noise reduction, PCAN gain control and log scaling. Every stage is the
//! same fixed-point arithmetic as the C original (including its int16 real FFT), because the
//! models were trained on exactly these integers and small drifts change the probabilities.

/// 16 kHz mono.
pub const SAMPLE_RATE: usize = 16_000;
/// One feature frame per 10 ms.
pub const STEP_SAMPLES: usize = 160;
/// Each frame looks at 30 ms.
pub const WINDOW_SAMPLES: usize = 480;
/// Mel channels per frame.
pub const NUM_CHANNELS: usize = 40;
/// What one unit of the u16 features is worth in the float scale the models' input
/// quantisation was computed for.
pub const FEATURE_SCALE: f32 = 0.039_062_5;

const FFT_SIZE: usize = 512;
const SPECTRUM_SIZE: usize = FFT_SIZE / 2 + 1;
const WINDOW_BITS: u32 = 12;
const FILTERBANK_BITS: i32 = 12;
const NOISE_REDUCTION_BITS: u32 = 14;
const SMOOTHING_BITS: u32 = 10;
const PCAN_SNR_BITS: u32 = 12;
const PCAN_OUTPUT_BITS: u32 = 6;
const WIDE_DYNAMIC_FUNCTION_BITS: u32 = 32;
const WIDE_DYNAMIC_LUT_SIZE: usize = 4 * WIDE_DYNAMIC_FUNCTION_BITS as usize - 3;
const LOG_SCALE_LOG2: u32 = 16;
const LOG_SEGMENTS_LOG2: u32 = 7;
const LOG_SCALE: u32 = 65_536;
const LOG_COEFF: u64 = 45_426;
const LOG_SCALE_SHIFT: u32 = 6;

const LOG_LUT: [u16; 130] = [
    0, 224, 442, 654, 861, 1063, 1259, 1450, 1636, 1817, 1992, 2163, 2329, 2490, 2646, 2797, 2944,
    3087, 3224, 3358, 3487, 3611, 3732, 3848, 3960, 4068, 4172, 4272, 4368, 4460, 4549, 4633, 4714,
    4791, 4864, 4934, 5001, 5063, 5123, 5178, 5231, 5280, 5326, 5368, 5408, 5444, 5477, 5507, 5533,
    5557, 5578, 5595, 5610, 5622, 5631, 5637, 5640, 5641, 5638, 5633, 5626, 5615, 5602, 5586, 5568,
    5547, 5524, 5498, 5470, 5439, 5406, 5370, 5332, 5291, 5249, 5203, 5156, 5106, 5054, 5000, 4944,
    4885, 4825, 4762, 4697, 4630, 4561, 4490, 4416, 4341, 4264, 4184, 4103, 4020, 3935, 3848, 3759,
    3668, 3575, 3481, 3384, 3286, 3186, 3084, 2981, 2875, 2768, 2659, 2549, 2437, 2323, 2207, 2090,
    1971, 1851, 1729, 1605, 1480, 1353, 1224, 1094, 963, 830, 695, 559, 421, 282, 142, 0, 0,
];

fn msb32(n: u32) -> u32 {
    32 - n.leading_zeros()
}

fn msb64(n: u64) -> u32 {
    64 - n.leading_zeros()
}

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Cpx {
    r: i16,
    i: i16,
}

/// kiss_fft's Q15 rounding multiply.
#[inline]
fn sround(x: i32) -> i16 {
    ((x + (1 << 14)) >> 15) as i16
}

#[inline]
fn cmul(a: Cpx, b: Cpx) -> Cpx {
    Cpx {
        r: sround(a.r as i32 * b.r as i32 - a.i as i32 * b.i as i32),
        i: sround(a.r as i32 * b.i as i32 + a.i as i32 * b.r as i32),
    }
}

#[inline]
fn fixdiv(c: Cpx, div: i32) -> Cpx {
    let k = i16::MAX as i32 / div;
    Cpx {
        r: sround(c.r as i32 * k),
        i: sround(c.i as i32 * k),
    }
}

#[inline]
fn cadd(a: Cpx, b: Cpx) -> Cpx {
    Cpx {
        r: a.r.wrapping_add(b.r),
        i: a.i.wrapping_add(b.i),
    }
}

#[inline]
fn csub(a: Cpx, b: Cpx) -> Cpx {
    Cpx {
        r: a.r.wrapping_sub(b.r),
        i: a.i.wrapping_sub(b.i),
    }
}

fn cexp(phase: f64) -> Cpx {
    Cpx {
        r: (0.5 + i16::MAX as f64 * phase.cos()).floor() as i16,
        i: (0.5 + i16::MAX as f64 * phase.sin()).floor() as i16,
    }
}

/// kiss_fftr in int16 fixed point (FIXED_POINT=16) for a 512-point real input: a 256-point
/// complex FFT (radix 4 only) plus the real-split post-processing.
struct RealFft {
    twiddles: Vec<Cpx>,
    super_twiddles: Vec<Cpx>,
    factors: Vec<(usize, usize)>,
    tmp: Vec<Cpx>,
}

impl RealFft {
    fn new() -> RealFft {
        let n = FFT_SIZE / 2;
        let pi = std::f64::consts::PI;
        let twiddles = (0..n)
            .map(|i| cexp(-2.0 * pi * i as f64 / n as f64))
            .collect();
        let super_twiddles = (0..n / 2)
            .map(|i| cexp(-pi * ((i + 1) as f64 / n as f64 + 0.5)))
            .collect();
        // kf_factor: 256 = 4*4*4*4.
        let mut factors = Vec::new();
        let mut m = n;
        while m > 1 {
            m /= 4;
            factors.push((4, m));
        }
        RealFft {
            twiddles,
            super_twiddles,
            factors,
            tmp: vec![Cpx::default(); n],
        }
    }

    fn work(&self, out: &mut [Cpx], inp: &[Cpx], in_off: usize, fstride: usize, stage: usize) {
        let (p, m) = self.factors[stage];
        let mut f = in_off;
        if m == 1 {
            for o in out.iter_mut().take(p) {
                *o = inp[f];
                f += fstride;
            }
        } else {
            for q in 0..p {
                self.work(&mut out[q * m..(q + 1) * m], inp, f, fstride * p, stage + 1);
                f += fstride;
            }
        }
        self.bfly4(out, fstride, m);
    }

    fn bfly4(&self, out: &mut [Cpx], fstride: usize, m: usize) {
        let (mut t1, mut t2, mut t3) = (0usize, 0usize, 0usize);
        for k in 0..m {
            let f0 = fixdiv(out[k], 4);
            let f1 = fixdiv(out[k + m], 4);
            let f2 = fixdiv(out[k + 2 * m], 4);
            let f3 = fixdiv(out[k + 3 * m], 4);
            let s0 = cmul(f1, self.twiddles[t1]);
            let s1 = cmul(f2, self.twiddles[t2]);
            let s2 = cmul(f3, self.twiddles[t3]);
            let s5 = csub(f0, s1);
            let f0 = cadd(f0, s1);
            let s3 = cadd(s0, s2);
            let s4 = csub(s0, s2);
            out[k + 2 * m] = csub(f0, s3);
            t1 += fstride;
            t2 += fstride * 2;
            t3 += fstride * 3;
            out[k] = cadd(f0, s3);
            out[k + m] = Cpx {
                r: s5.r.wrapping_add(s4.i),
                i: s5.i.wrapping_sub(s4.r),
            };
            out[k + 3 * m] = Cpx {
                r: s5.r.wrapping_sub(s4.i),
                i: s5.i.wrapping_add(s4.r),
            };
        }
    }

    /// `input` holds FFT_SIZE reals; `out` receives FFT_SIZE/2+1 bins.
    fn compute(&mut self, input: &[i16], out: &mut [Cpx]) {
        let ncfft = FFT_SIZE / 2;
        let packed: Vec<Cpx> = input
            .chunks_exact(2)
            .map(|c| Cpx { r: c[0], i: c[1] })
            .collect();
        let mut tmp = std::mem::take(&mut self.tmp);
        self.work(&mut tmp, &packed, 0, 1, 0);
        let tdc = fixdiv(tmp[0], 2);
        out[0] = Cpx {
            r: tdc.r.wrapping_add(tdc.i),
            i: 0,
        };
        out[ncfft] = Cpx {
            r: tdc.r.wrapping_sub(tdc.i),
            i: 0,
        };
        for k in 1..=ncfft / 2 {
            let fpk = fixdiv(tmp[k], 2);
            let fpnk = fixdiv(
                Cpx {
                    r: tmp[ncfft - k].r,
                    i: tmp[ncfft - k].i.wrapping_neg(),
                },
                2,
            );
            let f1k = cadd(fpk, fpnk);
            let f2k = csub(fpk, fpnk);
            let tw = cmul(f2k, self.super_twiddles[k - 1]);
            out[k] = Cpx {
                r: ((f1k.r as i32 + tw.r as i32) >> 1) as i16,
                i: ((f1k.i as i32 + tw.i as i32) >> 1) as i16,
            };
            out[ncfft - k] = Cpx {
                r: ((f1k.r as i32 - tw.r as i32) >> 1) as i16,
                i: ((tw.i as i32 - f1k.i as i32) >> 1) as i16,
            };
        }
        self.tmp = tmp;
    }
}

fn freq_to_mel(freq: f32) -> f32 {
    1127.0 * (freq / 700.0).ln_1p()
}

struct Filterbank {
    start_index: usize,
    end_index: usize,
    channel_frequency_starts: Vec<usize>,
    channel_weight_starts: Vec<usize>,
    channel_widths: Vec<usize>,
    weights: Vec<i16>,
    unweights: Vec<i16>,
}

impl Filterbank {
    fn new(num_channels: usize, lower: f32, upper: f32) -> Filterbank {
        let n1 = num_channels + 1;
        let mel_low = freq_to_mel(lower);
        let mel_hi = freq_to_mel(upper);
        let mel_spacing = (mel_hi - mel_low) / n1 as f32;
        let center: Vec<f32> = (0..n1)
            .map(|i| mel_low + mel_spacing * (i + 1) as f32)
            .collect();
        let hz_per_sbin = 0.5 * SAMPLE_RATE as f32 / (SPECTRUM_SIZE as f32 - 1.0);
        let start_index = (1.5 + lower / hz_per_sbin) as usize;
        let index_alignment = 2usize;
        let block = 4usize;
        let mut freq_starts = vec![0usize; n1];
        let mut weight_starts = vec![0usize; n1];
        let mut widths = vec![0usize; n1];
        let mut actual_starts = vec![0usize; n1];
        let mut actual_widths = vec![0usize; n1];
        let mut chan_start = start_index;
        let mut weight_index_start = 0usize;
        let mut needs_zeros = false;
        for chan in 0..n1 {
            let mut freq_index = chan_start;
            while freq_to_mel(freq_index as f32 * hz_per_sbin) <= center[chan] {
                freq_index += 1;
            }
            let width = freq_index - chan_start;
            actual_starts[chan] = chan_start;
            actual_widths[chan] = width;
            if width == 0 {
                freq_starts[chan] = 0;
                weight_starts[chan] = 0;
                widths[chan] = block;
                if !needs_zeros {
                    needs_zeros = true;
                    for w in weight_starts.iter_mut().take(chan) {
                        *w += block;
                    }
                    weight_index_start += block;
                }
            } else {
                let aligned_start = (chan_start / index_alignment) * index_alignment;
                let aligned_width = chan_start - aligned_start + width;
                let padded = ((aligned_width - 1) / block + 1) * block;
                freq_starts[chan] = aligned_start;
                weight_starts[chan] = weight_index_start;
                widths[chan] = padded;
                weight_index_start += padded;
            }
            chan_start = freq_index;
        }
        let mut weights = vec![0i16; weight_index_start];
        let mut unweights = vec![0i16; weight_index_start];
        let mut end_index = 0;
        for chan in 0..n1 {
            let mut frequency = actual_starts[chan];
            let offset = frequency - freq_starts[chan];
            let denom = if chan == 0 { mel_low } else { center[chan - 1] };
            for j in 0..actual_widths[chan] {
                let w = (center[chan] - freq_to_mel(frequency as f32 * hz_per_sbin))
                    / (center[chan] - denom);
                let idx = weight_starts[chan] + offset + j;
                weights[idx] = (w * (1 << FILTERBANK_BITS) as f32 + 0.5).floor() as i16;
                unweights[idx] = ((1.0 - w) * (1 << FILTERBANK_BITS) as f32 + 0.5).floor() as i16;
                frequency += 1;
            }
            end_index = end_index.max(frequency);
        }
        Filterbank {
            start_index,
            end_index,
            channel_frequency_starts: freq_starts,
            channel_weight_starts: weight_starts,
            channel_widths: widths,
            weights,
            unweights,
        }
    }

    /// Energy per bin, weighted accumulation into channels, then sqrt scaled down.
    fn apply(&self, fft: &[Cpx], energy: &mut [i32], out: &mut [u32], scale_down: u32) {
        for (i, e) in energy
            .iter_mut()
            .enumerate()
            .take(self.end_index)
            .skip(self.start_index)
        {
            let re = fft[i].r as i32;
            let im = fft[i].i as i32;
            *e = (re * re).wrapping_add(im * im);
        }
        let mut weight_acc: u64 = 0;
        let mut unweight_acc: u64 = 0;
        for ch in 0..self.channel_widths.len() {
            let fs = self.channel_frequency_starts[ch];
            let ws = self.channel_weight_starts[ch];
            for j in 0..self.channel_widths[ch] {
                // C reads `energy` as int32 and widens to uint64 after multiplying an int16
                // weight by it; both are non-negative here.
                let mag = energy.get(fs + j).copied().unwrap_or(0) as i64 as u64;
                weight_acc = weight_acc.wrapping_add(self.weights[ws + j] as i64 as u64 * mag);
                unweight_acc =
                    unweight_acc.wrapping_add(self.unweights[ws + j] as i64 as u64 * mag);
            }
            if ch > 0 {
                out[ch - 1] = sqrt64(weight_acc) >> scale_down;
            }
            weight_acc = unweight_acc;
            unweight_acc = 0;
        }
    }
}

fn sqrt32(mut num: u32) -> u32 {
    if num == 0 {
        return 0;
    }
    let mut res: u32 = 0;
    let max_bit = (32 - msb32(num)) | 1;
    let mut bit: u32 = 1 << (31 - max_bit);
    let iterations = (31 - max_bit) / 2 + 1;
    for _ in 0..iterations {
        if num >= res + bit {
            num -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    if num > res && res != 0xFFFF {
        res += 1;
    }
    res & 0xFFFF
}

fn sqrt64(mut num: u64) -> u32 {
    if num >> 32 == 0 {
        return sqrt32(num as u32);
    }
    let mut res: u64 = 0;
    let max_bit = (64 - msb64(num)) | 1;
    let mut bit: u64 = 1 << (63 - max_bit);
    let iterations = (63 - max_bit) / 2 + 1;
    for _ in 0..iterations {
        if num >= res + bit {
            num -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    if num > res && res != 0xFFFF_FFFF {
        res += 1;
    }
    res as u32
}

fn pcan_gain_lookup(input_bits: i32, x: u32) -> i16 {
    let x_f = x as f32 / (1u64 << input_bits) as f32;
    let gain = (1u32 << 21) as f32 * (x_f + 80.0).powf(-0.95);
    if gain > i16::MAX as f32 {
        return i16::MAX;
    }
    (gain + 0.5) as i16
}

fn wide_dynamic_function(x: u32, lut: &[i16]) -> i16 {
    if x <= 2 {
        return lut[x as usize];
    }
    let interval = msb32(x) as i32;
    let base = (4 * interval - 6) as usize;
    let frac = (if interval < 11 {
        x << (11 - interval)
    } else {
        x >> (interval - 11)
    } & 0x3FF) as i32;
    let mut result = (lut[base + 2] as i32 * frac) >> 5;
    result += ((lut[base + 1] as i32 as u32) << 5) as i32;
    result = result.wrapping_mul(frac);
    result = (result + (1 << 14)) >> 15;
    result += lut[base] as i32;
    result as i16
}

fn pcan_shrink(x: u32) -> u32 {
    if x < (2 << PCAN_SNR_BITS) {
        (x * x) >> (2 + 2 * PCAN_SNR_BITS - PCAN_OUTPUT_BITS)
    } else {
        (x >> (PCAN_SNR_BITS - PCAN_OUTPUT_BITS)) - (1 << PCAN_OUTPUT_BITS)
    }
}

fn log2_fraction_part(x: u32, log2x: u32) -> u32 {
    let mut frac = (x as i64 - (1i64 << log2x)) as i32;
    if log2x < LOG_SCALE_LOG2 {
        frac <<= LOG_SCALE_LOG2 - log2x;
    } else {
        frac >>= log2x - LOG_SCALE_LOG2;
    }
    let base_seg = (frac as u32 >> (LOG_SCALE_LOG2 - LOG_SEGMENTS_LOG2)) as usize;
    let seg_unit = (1u32 << LOG_SCALE_LOG2) >> LOG_SEGMENTS_LOG2;
    let c0 = LOG_LUT[base_seg] as i32;
    let c1 = LOG_LUT[base_seg + 1] as i32;
    let seg_base = (seg_unit as usize * base_seg) as i32;
    let rel_pos = ((c1 - c0) * (frac - seg_base)) >> LOG_SCALE_LOG2;
    (frac + c0 + rel_pos) as u32
}

fn log_scaled(x: u32) -> u32 {
    let integer = msb32(x) - 1;
    let fraction = log2_fraction_part(x, integer);
    let log2 = (integer << LOG_SCALE_LOG2).wrapping_add(fraction);
    let round = LOG_SCALE / 2;
    let loge = ((LOG_COEFF * log2 as u64 + round as u64) >> LOG_SCALE_LOG2) as u32;
    (loge.wrapping_shl(LOG_SCALE_SHIFT).wrapping_add(round)) >> LOG_SCALE_LOG2
}

/// Streaming front end: push samples in any chunk size, get one 40-value frame per 10 ms.
pub struct FeatureExtractor {
    coefficients: Vec<i16>,
    input: Vec<i16>,
    input_used: usize,
    windowed: Vec<i16>,
    fft: RealFft,
    fft_in: Vec<i16>,
    fft_out: Vec<Cpx>,
    energy: Vec<i32>,
    filterbank: Filterbank,
    signal: Vec<u32>,
    noise_estimate: Vec<u32>,
    gain_lut: Vec<i16>,
    snr_shift: u32,
}

impl Default for FeatureExtractor {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureExtractor {
    pub fn new() -> FeatureExtractor {
        let arg = std::f32::consts::PI * 2.0 / WINDOW_SAMPLES as f32;
        let coefficients = (0..WINDOW_SAMPLES)
            .map(|i| {
                let v = 0.5f32 - 0.5 * (arg * (i as f32 + 0.5)).cos();
                (v * (1 << WINDOW_BITS) as f32 + 0.5).floor() as i16
            })
            .collect();
        // correction bits: msb(512) - 1 - 12/2 = 3
        let input_correction_bits = msb32(FFT_SIZE as u32) as i32 - 1 - FILTERBANK_BITS / 2;
        let snr_shift = (21 - input_correction_bits - PCAN_SNR_BITS as i32) as u32;
        let input_bits = SMOOTHING_BITS as i32 - input_correction_bits;
        // The C code keeps the LUT pointer 6 entries before the allocation so that index
        // 4*interval lines up; here index 4*interval-6 is stored directly.
        let mut lut = vec![0i16; WIDE_DYNAMIC_LUT_SIZE + 6];
        lut[0] = pcan_gain_lookup(input_bits, 0);
        lut[1] = pcan_gain_lookup(input_bits, 1);
        for interval in 2..=WIDE_DYNAMIC_FUNCTION_BITS {
            let x0: u32 = 1 << (interval - 1);
            let x1 = x0 + (x0 >> 1);
            let x2 = if interval == WIDE_DYNAMIC_FUNCTION_BITS {
                x0 + (x0 - 1)
            } else {
                2 * x0
            };
            let y0 = pcan_gain_lookup(input_bits, x0);
            let y1 = pcan_gain_lookup(input_bits, x1);
            let y2 = pcan_gain_lookup(input_bits, x2);
            let diff1 = y1 as i32 - y0 as i32;
            let diff2 = y2 as i32 - y0 as i32;
            let a1 = 4 * diff1 - diff2;
            let a2 = diff2 - a1;
            let base = 4 * interval as usize - 6;
            lut[base] = y0;
            lut[base + 1] = a1 as i16;
            lut[base + 2] = a2 as i16;
        }
        FeatureExtractor {
            coefficients,
            input: vec![0; WINDOW_SAMPLES],
            input_used: 0,
            windowed: vec![0; WINDOW_SAMPLES],
            fft: RealFft::new(),
            fft_in: vec![0; FFT_SIZE],
            fft_out: vec![Cpx::default(); SPECTRUM_SIZE],
            energy: vec![0; SPECTRUM_SIZE],
            filterbank: Filterbank::new(NUM_CHANNELS, 125.0, 7500.0),
            signal: vec![0; NUM_CHANNELS],
            noise_estimate: vec![0; NUM_CHANNELS],
            gain_lut: lut,
            snr_shift,
        }
    }

    pub fn reset(&mut self) {
        *self = FeatureExtractor::new();
    }

    /// Feeds samples; calls `emit` with each completed frame (raw u16 front-end values).
    pub fn push(&mut self, mut pcm: &[i16], mut emit: impl FnMut(&[u16; NUM_CHANNELS])) {
        while !pcm.is_empty() {
            let n = (WINDOW_SAMPLES - self.input_used).min(pcm.len());
            self.input[self.input_used..self.input_used + n].copy_from_slice(&pcm[..n]);
            self.input_used += n;
            pcm = &pcm[n..];
            if self.input_used == WINDOW_SAMPLES {
                let frame = self.frame();
                self.input.copy_within(STEP_SAMPLES.., 0);
                self.input_used -= STEP_SAMPLES;
                emit(&frame);
            }
        }
    }

    fn frame(&mut self) -> [u16; NUM_CHANNELS] {
        let mut max_abs: i16 = 0;
        for i in 0..WINDOW_SAMPLES {
            let v = ((self.input[i] as i32 * self.coefficients[i] as i32) >> WINDOW_BITS) as i16;
            self.windowed[i] = v;
            max_abs = max_abs.max(v.wrapping_abs());
        }
        let input_shift = 15 - msb32(max_abs as u32);
        for i in 0..FFT_SIZE {
            self.fft_in[i] = if i < WINDOW_SAMPLES {
                ((self.windowed[i] as u16) << input_shift) as i16
            } else {
                0
            };
        }
        let fft_in = std::mem::take(&mut self.fft_in);
        let mut fft_out = std::mem::take(&mut self.fft_out);
        self.fft.compute(&fft_in, &mut fft_out);
        self.filterbank
            .apply(&fft_out, &mut self.energy, &mut self.signal, input_shift);
        self.fft_in = fft_in;
        self.fft_out = fft_out;

        // Noise reduction.
        for i in 0..NUM_CHANNELS {
            let smoothing: u32 = if i & 1 == 0 {
                (0.025f32 * (1 << NOISE_REDUCTION_BITS) as f32) as u32
            } else {
                (0.06f32 * (1 << NOISE_REDUCTION_BITS) as f32) as u32
            };
            let min_remaining = (0.05f32 * (1 << NOISE_REDUCTION_BITS) as f32) as u32;
            let one_minus = (1u32 << NOISE_REDUCTION_BITS) - smoothing;
            let scaled_up = self.signal[i].wrapping_shl(SMOOTHING_BITS);
            let mut estimate = ((scaled_up as u64 * smoothing as u64
                + self.noise_estimate[i] as u64 * one_minus as u64)
                >> NOISE_REDUCTION_BITS) as u32;
            self.noise_estimate[i] = estimate;
            if estimate > scaled_up {
                estimate = scaled_up;
            }
            let floor =
                ((self.signal[i] as u64 * min_remaining as u64) >> NOISE_REDUCTION_BITS) as u32;
            let subtracted = (scaled_up - estimate) >> SMOOTHING_BITS;
            self.signal[i] = subtracted.max(floor);
        }

        // PCAN gain control.
        for i in 0..NUM_CHANNELS {
            let gain = wide_dynamic_function(self.noise_estimate[i], &self.gain_lut) as i32 as u32;
            let snr = ((self.signal[i] as u64 * gain as u64) >> self.snr_shift) as u32;
            self.signal[i] = pcan_shrink(snr);
        }

        // Log scale; correction bits = 3.
        let correction_bits = msb32(FFT_SIZE as u32) - 1 - (FILTERBANK_BITS as u32 / 2);
        let mut out = [0u16; NUM_CHANNELS];
        for (o, &s) in out.iter_mut().zip(self.signal.iter()) {
            let v = s.wrapping_shl(correction_bits);
            let v = if v > 1 { log_scaled(v) } else { 0 };
            *o = v.min(0xFFFF) as u16;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_gives_zero_features_and_one_frame_per_step() {
        let mut fe = FeatureExtractor::new();
        let mut frames = Vec::new();
        fe.push(&[0i16; 16_000], |f| frames.push(*f));
        // (16000 - 480) / 160 + 1
        assert_eq!(frames.len(), 98);
        assert!(frames.iter().all(|f| f.iter().all(|&v| v == 0)));
    }

    #[test]
    fn chunking_does_not_change_output() {
        let pcm: Vec<i16> = (0..8000)
            .map(|i| ((i as f32 * 0.07).sin() * 8000.0 + (i as f32 * 0.31).sin() * 3000.0) as i16)
            .collect();
        let mut a = Vec::new();
        FeatureExtractor::new().push(&pcm, |f| a.push(*f));
        let mut b = Vec::new();
        let mut fe = FeatureExtractor::new();
        for c in pcm.chunks(37) {
            fe.push(c, |f| b.push(*f));
        }
        assert_eq!(a, b);
        assert!(a.iter().any(|f| f.iter().any(|&v| v > 0)));
    }

    #[test]
    fn sqrt_matches_integer_sqrt() {
        for &n in &[
            0u64,
            1,
            2,
            3,
            4,
            15,
            16,
            17,
            1 << 20,
            (1 << 32) + 5,
            u32::MAX as u64 * 3,
        ] {
            let r = sqrt64(n) as u64;
            let f = (n as f64).sqrt();
            assert!((r as f64 - f).abs() <= 1.0, "{n}: {r} vs {f}");
        }
    }
}
