//! Not streaming an empty room (`[audio] pause_on_silence_s`, with `wake = "always"`): a pure
//! state machine between the mic chunks and the session. After that long without speech
//! while the box listens, the session is told the audio stream ended and gets nothing more;
//! the last half second is kept, and when speech returns it goes out first, so the first word
//! is never cut. Device-free and clock-free: time is counted in audio.

use std::collections::VecDeque;

use crate::audio::{PcmChunk, FRAME_BYTES, INPUT_RATE_HZ};

/// Audio kept while paused and sent ahead of returning speech: the voice detector needs
/// ~30 ms to decide, a word's onset is quieter than its middle.
pub const PREROLL_S: f64 = 0.5;

/// What to do with one chunk.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Out {
    /// Send `audioStreamEnd` before anything else (the pause starts).
    pub stream_end: bool,
    /// Chunks to send, in order (a resumption sends the kept ones first).
    pub send: Vec<PcmChunk>,
}

#[derive(Debug)]
pub struct SilencePause {
    /// Seconds of audio without speech while listening.
    quiet_s: f64,
    paused: bool,
    kept: VecDeque<PcmChunk>,
    kept_bytes: usize,
    /// Seconds of this pause (for the log line at resumption).
    paused_s: f64,
    /// Mic bytes never sent because of pauses (kept chunks that were sent are not counted).
    pub not_sent_bytes: u64,
    pub pauses: u64,
}

fn secs(bytes: usize) -> f64 {
    bytes as f64 / (f64::from(INPUT_RATE_HZ) * FRAME_BYTES as f64)
}

impl Default for SilencePause {
    fn default() -> Self {
        Self::new()
    }
}

impl SilencePause {
    pub fn new() -> Self {
        SilencePause {
            quiet_s: 0.0,
            paused: false,
            kept: VecDeque::new(),
            kept_bytes: 0,
            paused_s: 0.0,
            not_sent_bytes: 0,
            pauses: 0,
        }
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Bytes kept for the next resumption.
    pub fn kept_bytes(&self) -> usize {
        self.kept_bytes
    }

    /// One mic chunk. `after_s`: the setting (0 = never pause); `speech`: the voice detector
    /// hears someone; `listening`: the session is open and the model is not talking (its own
    /// reply or connecting are not the room being quiet, so they never start a pause).
    pub fn chunk(&mut self, c: PcmChunk, after_s: u32, speech: bool, listening: bool) -> Out {
        let len = c.len();
        if self.paused {
            // Only speech (or the setting turned off) ends a pause: a hand-over or a
            // reconnect is not the room waking up.
            if speech || after_s == 0 {
                self.paused = false;
                self.quiet_s = 0.0;
                log::info!(
                    "{}: the mic streams again after {:.1} s paused ({:.1} s of audio not sent)",
                    if speech {
                        "speech"
                    } else {
                        "pausing turned off"
                    },
                    self.paused_s,
                    (self.paused_s - secs(self.kept_bytes)).max(0.0)
                );
                let mut send: Vec<PcmChunk> = self.kept.drain(..).collect();
                self.kept_bytes = 0;
                send.push(c);
                return Out {
                    stream_end: false,
                    send,
                };
            }
            self.paused_s += secs(len);
            self.keep(c);
            return Out::default();
        }
        if speech || !listening || after_s == 0 {
            self.quiet_s = 0.0;
        } else {
            self.quiet_s += secs(len);
        }
        if after_s > 0 && self.quiet_s >= f64::from(after_s) {
            self.paused = true;
            self.pauses += 1;
            self.paused_s = secs(len);
            log::info!(
                "no speech for {after_s} s: the mic stream pauses until someone talks (the session stays open)"
            );
            self.keep(c);
            return Out {
                stream_end: true,
                send: Vec::new(),
            };
        }
        Out {
            stream_end: false,
            send: vec![c],
        }
    }

    fn keep(&mut self, c: PcmChunk) {
        self.kept_bytes += c.len();
        self.kept.push_back(c);
        let max = (PREROLL_S * f64::from(INPUT_RATE_HZ)) as usize * FRAME_BYTES;
        while self.kept_bytes > max {
            match self.kept.pop_front() {
                Some(old) => {
                    self.kept_bytes -= old.len();
                    self.not_sent_bytes += old.len() as u64;
                }
                None => break,
            }
        }
    }

    /// The session ended (or was never open): start over streaming; what was kept is dropped
    /// and counted.
    pub fn reset(&mut self) {
        if self.paused {
            self.not_sent_bytes += self.kept_bytes as u64;
        }
        self.kept.clear();
        self.kept_bytes = 0;
        self.paused = false;
        self.quiet_s = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 40 ms chunks whose samples carry their index, so order and gaps are visible.
    fn chunk(i: usize) -> PcmChunk {
        (0..640).flat_map(|_| (i as i16).to_le_bytes()).collect()
    }

    fn index(c: &PcmChunk) -> usize {
        i16::from_le_bytes([c[0], c[1]]) as usize
    }

    #[test]
    fn silence_pauses_the_stream_and_speech_resumes_it_with_its_beginning() {
        let mut p = SilencePause::new();
        let mut sent = Vec::new();
        let mut ends = 0;
        // 2 s of speech, 20 s of silence, then speech again: 40 ms chunks.
        for i in 0..800 {
            let speech = !(50..550).contains(&i);
            let out = p.chunk(chunk(i), 8, speech, true);
            ends += usize::from(out.stream_end);
            sent.extend(out.send.iter().map(index));
        }
        assert_eq!(ends, 1);
        assert_eq!(p.pauses, 1);
        // Streamed through 8 s of silence (the 200th quiet chunk starts the pause), then
        // nothing but the kept half second.
        assert!(sent.contains(&248) && !sent.contains(&249), "{sent:?}");
        let resumed: Vec<usize> = sent.iter().copied().filter(|&i| i >= 249).collect();
        let first = 550 - 12;
        assert_eq!(resumed, (first..800).collect::<Vec<_>>());
        // Not sent: chunks 249..first.
        assert_eq!(p.not_sent_bytes, ((first - 249) * 1280) as u64);
    }

    #[test]
    fn a_reconnect_while_paused_does_not_resume() {
        let mut p = SilencePause::new();
        for i in 0..300 {
            p.chunk(chunk(i), 8, false, true);
        }
        assert!(p.paused());
        assert!(p.chunk(chunk(300), 8, false, false).send.is_empty());
        assert!(p.paused());
        assert_eq!(p.chunk(chunk(301), 0, false, true).send.len(), 13);
    }

    #[test]
    fn the_models_turn_and_zero_never_pause() {
        let mut p = SilencePause::new();
        for i in 0..1_000 {
            // Quiet room, but the model talks (or the session is connecting).
            assert_eq!(p.chunk(chunk(i), 8, false, false).send.len(), 1);
        }
        for i in 0..1_000 {
            assert_eq!(p.chunk(chunk(i), 0, false, true).send.len(), 1);
        }
        assert_eq!(p.pauses, 0);
    }

    #[test]
    fn a_session_that_ends_while_paused_counts_what_was_kept() {
        let mut p = SilencePause::new();
        for i in 0..300 {
            p.chunk(chunk(i), 8, false, true);
        }
        assert!(p.paused());
        p.reset();
        assert!(!p.paused());
        // Chunks 199..300: the pause began with the 200th quiet one.
        assert_eq!(p.not_sent_bytes, 101 * 1280);
        assert_eq!(p.chunk(chunk(0), 8, false, true).send.len(), 1);
    }
}
