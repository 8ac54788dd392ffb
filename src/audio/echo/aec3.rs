//! WebRTC AEC3 driven directly (`sonora_aec3`'s block processor), for one 16 kHz microphone and
//! one loudspeaker stream, instead of through sonora's `AudioProcessing`.
//!
//! `AudioProcessing` builds AEC3 with WebRTC's default configuration and offers no way to change
//! it. On a Pi the default's delay estimator (five matched filters over the reference
//! downsampled 4×) is about 70 % of echo cancellation's cost, and it searches ~0.5 s of lag
//! although our reference timeline already leads its echo by `LEAD_S` plus the acoustic path
//! (`docs/design.md`, "Measuring ARM cost"). Driving the block processor ourselves lets us set
//! `delay` and costs the same few steps `AudioProcessing` takes for this case: the reference
//! resampled to 16 kHz, the mic high-pass filtered, both cut into AEC3's 64-sample blocks.
//! There is one band at 16 kHz, so no band splitting.

use sonora::high_pass_filter::HighPassFilter;
use sonora_aec3::block::Block;
use sonora_aec3::block_processor::BlockProcessor;
use sonora_aec3::config::EchoCanceller3Config;
use sonora_common_audio::push_sinc_resampler::PushSincResampler;

use super::FRAME;
use crate::audio::INPUT_RATE_HZ;

/// AEC3's unit of work.
const BLOCK: usize = 64;
/// AEC3 works on floats in the 16-bit range; our frames are in [-1, 1].
const S16: f32 = 32768.0;
/// AEC3 counts a frame with a sample this close to full scale as saturated (its own threshold).
const SATURATED: f32 = 32700.0;

/// The canceller's view of the echo path, as `AudioProcessing::statistics` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aec3Stats {
    pub delay_ms: i32,
    /// Echo return loss, dB.
    pub erl_db: f64,
    /// Echo return loss enhancement, dB.
    pub erle_db: f64,
}

/// How the delay estimator is set up (see the module doc and `Aec3::config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelaySearch {
    /// 4 or 8: the reference and mic are correlated at 16 kHz / this.
    pub down_sampling: usize,
    /// Matched filters; each covers about 128 ms of lag, overlapping by a quarter.
    pub filters: usize,
}

impl DelaySearch {
    /// WebRTC's default: about 510 ms of lag at 4 kHz.
    pub const WEBRTC: DelaySearch = DelaySearch {
        down_sampling: 4,
        filters: 5,
    };
    /// Ours: about 300 ms of lag at 2 kHz, 0.5 ms resolution (296 ms is cancelled, 340 ms
    /// not: `echo::tests::delay_search_covers_a_device_delay_reading_200_ms_short`). The
    /// reference leads its echo by `LEAD_S` (40 ms) plus whatever the device's delay reading
    /// misses plus the acoustic path, so this leaves about 250 ms for the device. It halves
    /// echo cancellation's cost on aarch64 (72.6 M → 33.9 M instructions per second of audio)
    /// and cancels the synthetic room as well as WebRTC's default does (`cargo bench --bench
    /// aec`).
    pub const DEFAULT: DelaySearch = DelaySearch {
        down_sampling: 8,
        filters: 3,
    };
}

pub struct Aec3 {
    processor: BlockProcessor,
    /// `None` when replies already arrive at 16 kHz.
    resampler: Option<PushSincResampler>,
    render_rate_hz: u32,
    search: DelaySearch,
    hpf: HighPassFilter,
    block: Block,
    /// One 10 ms frame at 16 kHz in AEC3's scale: the reference, then the mic.
    render16: Vec<f32>,
    capture16: Vec<Vec<f32>>,
    /// Samples not yet in a 64-sample block, and processed samples not yet returned. The
    /// output starts one block late, as AudioProcessing's does: a 10 ms frame does not always
    /// end on a block.
    render_pending: Vec<f32>,
    capture_pending: Vec<f32>,
    out_pending: Vec<f32>,
    /// Any frame processed yet: before that AEC3's metrics are its initial values, not news.
    processed: bool,
}

impl Aec3 {
    /// `render_rate_hz`: the rate of the reference frames given to `process` (10 ms each).
    pub fn new(render_rate_hz: u32, search: DelaySearch) -> Self {
        let config = Self::config(search);
        let render_frame = render_rate_hz as usize / 100;
        let mut out_pending = Vec::with_capacity(FRAME + 2 * BLOCK);
        out_pending.resize(BLOCK, 0.0);
        Aec3 {
            processor: BlockProcessor::new(&config, INPUT_RATE_HZ as usize, 1, 1),
            resampler: (render_frame != FRAME).then(|| PushSincResampler::new(render_frame, FRAME)),
            render_rate_hz,
            search,
            hpf: HighPassFilter::new(INPUT_RATE_HZ as i32, 1),
            block: Block::new(1, 1),
            render16: vec![0.0; FRAME],
            capture16: vec![vec![0.0; FRAME]],
            render_pending: Vec::with_capacity(FRAME + BLOCK),
            capture_pending: Vec::with_capacity(FRAME + BLOCK),
            out_pending,
            processed: false,
        }
    }

    fn config(search: DelaySearch) -> EchoCanceller3Config {
        let mut c = EchoCanceller3Config::default();
        c.delay.down_sampling_factor = search.down_sampling;
        c.delay.num_filters = search.filters;
        c
    }

    pub fn render_rate_hz(&self) -> u32 {
        self.render_rate_hz
    }

    pub fn search(&self) -> DelaySearch {
        self.search
    }

    /// One 10 ms frame: `render` is the reference (at the render rate) heard while `cap_in`
    /// was captured; the mic with the echo removed goes to `cap_out`. Samples in [-1, 1].
    pub fn process(&mut self, render: &[f32], cap_in: &[f32; FRAME], cap_out: &mut [f32; FRAME]) {
        debug_assert_eq!(render.len(), self.render_rate_hz as usize / 100);
        self.processed = true;
        match self.resampler.as_mut() {
            Some(r) => {
                r.resample(render, &mut self.render16);
            }
            None => {
                let n = render.len().min(FRAME);
                self.render16[..n].copy_from_slice(&render[..n]);
                self.render16[n..].fill(0.0);
            }
        }
        self.render_pending
            .extend(self.render16.iter().map(|&v| v * S16));
        while self.render_pending.len() >= BLOCK {
            self.block
                .view_mut(0, 0)
                .copy_from_slice(&self.render_pending[..BLOCK]);
            self.processor.buffer_render(&self.block);
            self.render_pending.drain(..BLOCK);
        }

        let cap = &mut self.capture16[0];
        for (d, &s) in cap.iter_mut().zip(cap_in) {
            *d = s * S16;
        }
        // Judged before the high-pass filter, as AudioProcessing does.
        let saturated = cap.iter().any(|v| v.abs() >= SATURATED);
        self.hpf.process_channels(&mut self.capture16);
        self.capture_pending.extend_from_slice(&self.capture16[0]);
        while self.capture_pending.len() >= BLOCK {
            self.block
                .view_mut(0, 0)
                .copy_from_slice(&self.capture_pending[..BLOCK]);
            self.processor
                .process_capture(false, saturated, None, &mut self.block);
            self.out_pending.extend_from_slice(self.block.view(0, 0));
            self.capture_pending.drain(..BLOCK);
        }
        for (d, &s) in cap_out.iter_mut().zip(&self.out_pending) {
            *d = s / S16;
        }
        self.out_pending.drain(..FRAME.min(self.out_pending.len()));
    }

    /// `None` until a frame has been processed (the idle skip can hold AEC3 back for long).
    pub fn stats(&self) -> Option<Aec3Stats> {
        let m = self.processed.then(|| self.processor.get_metrics())?;
        Some(Aec3Stats {
            delay_ms: m.delay_ms,
            erl_db: m.echo_return_loss,
            erle_db: m.echo_return_loss_enhancement,
        })
    }
}
