//! The appliance's session lifecycle, pure: when a session opens and ends, what the button
//! does, chimes and the LED. No I/O and no clock of its own (`now` is passed in).
//!
//! ```text
//!            press / PTT down (wake = button), start (wake = always)
//!   Idle ───────────────────────────────────────────────────────────▶ Active
//!     ▲                                                                 │ press while the model speaks → Interrupt
//!     │  long press · idle timeout · max session · model's end_session  │ PTT down/up → activityStart/End
//!     └─────────────────────────────────────────────────────────────────┘
//! ```
//! With wake = "always" an ended session is followed by a fresh one, except after a long
//! press, which parks the box until the next press.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// wake = "button": sessions start on a press; otherwise at start-up.
    pub wake_on_button: bool,
    /// Button mode "push_to_talk": hold to talk (manual activity detection).
    pub push_to_talk: bool,
    /// End a button-started session after this long without speech either way.
    pub idle_timeout: Option<Duration>,
    /// End any session after this long.
    pub max_session: Option<Duration>,
    pub chimes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The daemon is up.
    Started,
    /// Short press (toggle mode).
    Press,
    /// Held past `long_press_ms`.
    LongPress,
    /// Push-to-talk: pressed / released.
    TalkDown,
    TalkUp,
    /// Someone spoke (the user into the mic, or the model through the speaker).
    Activity,
    /// The model called `end_session`.
    ModelEnded,
    /// Periodic check of the timers.
    Tick,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chime {
    Wake,
    End,
    Error,
    /// A timer ended: four quick high beeps, unlike any other sound it makes.
    Timer,
    /// The microphone was muted: two low notes going down.
    Muted,
    /// The microphone is on again: the same notes going up.
    Unmuted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start a session (connect, send mic audio).
    Open,
    /// End the session (close with 1000, forget the resumption handle).
    Close(&'static str),
    /// Stop the model's reply now (the same drop path as `interrupted`).
    Interrupt,
    ActivityStart,
    ActivityEnd,
    Chime(Chime),
    Led(bool),
}

#[derive(Debug)]
pub struct Lifecycle {
    cfg: LifecycleConfig,
    active: bool,
    started_at: Instant,
    last_activity: Instant,
    talking: bool,
}

impl Lifecycle {
    pub fn new(cfg: LifecycleConfig, now: Instant) -> Self {
        Lifecycle {
            cfg,
            active: false,
            started_at: now,
            last_activity: now,
            talking: false,
        }
    }

    /// A session is open (or being opened).
    pub fn active(&self) -> bool {
        self.active
    }

    fn open(&mut self, now: Instant, chime: bool, out: &mut Vec<Action>) {
        self.active = true;
        self.started_at = now;
        self.last_activity = now;
        out.push(Action::Open);
        if chime && self.cfg.chimes {
            out.push(Action::Chime(Chime::Wake));
        }
        out.push(Action::Led(true));
    }

    fn close(&mut self, why: &'static str, reopen: bool, now: Instant, out: &mut Vec<Action>) {
        self.active = false;
        self.talking = false;
        out.push(Action::Close(why));
        if self.cfg.chimes {
            out.push(Action::Chime(Chime::End));
        }
        if reopen {
            self.open(now, false, out);
        } else {
            out.push(Action::Led(false));
        }
    }

    /// `speaking`: the model's reply is playing right now.
    pub fn step(&mut self, ev: Event, now: Instant, speaking: bool) -> Vec<Action> {
        let mut out = Vec::new();
        let always = !self.cfg.wake_on_button;
        match ev {
            Event::Started => {
                if always {
                    self.open(now, false, &mut out);
                } else {
                    out.push(Action::Led(false));
                }
            }
            Event::Press => {
                if !self.active {
                    self.open(now, true, &mut out);
                } else if speaking {
                    self.last_activity = now;
                    out.push(Action::Interrupt);
                }
            }
            Event::LongPress => {
                if self.active {
                    self.close("long press", false, now, &mut out);
                }
            }
            Event::TalkDown => {
                if !self.active {
                    self.open(now, true, &mut out);
                } else if speaking {
                    out.push(Action::Interrupt);
                }
                self.talking = true;
                self.last_activity = now;
                out.push(Action::ActivityStart);
            }
            Event::TalkUp => {
                if self.active && self.talking {
                    out.push(Action::ActivityEnd);
                }
                self.talking = false;
                self.last_activity = now;
            }
            Event::Activity => self.last_activity = now,
            Event::ModelEnded => {
                if self.active {
                    self.close("the model ended the conversation", always, now, &mut out);
                }
            }
            Event::Tick => {
                if !self.active {
                    return out;
                }
                if let Some(max) = self.cfg.max_session {
                    if now.saturating_duration_since(self.started_at) >= max {
                        self.close("max_session_s reached", always, now, &mut out);
                        return out;
                    }
                }
                if let Some(idle) = self.cfg.idle_timeout {
                    let quiet = now.saturating_duration_since(self.last_activity);
                    if !always && !speaking && !self.talking && quiet >= idle {
                        self.close("idle_timeout_s without speech", false, now, &mut out);
                    }
                }
            }
        }
        out
    }
}

/// Short generated chimes at 24 kHz S16_LE mono (no asset files): two rising notes on wake,
/// two falling notes at the end, a low double buzz on errors.
pub fn chime_pcm(kind: Chime) -> Vec<u8> {
    let notes: &[(f64, f64)] = match kind {
        Chime::Wake => &[(660.0, 0.08), (880.0, 0.10)],
        Chime::End => &[(880.0, 0.08), (660.0, 0.10)],
        Chime::Error => &[(220.0, 0.12), (0.0, 0.06), (220.0, 0.12)],
        Chime::Timer => &[
            (1_320.0, 0.09),
            (0.0, 0.05),
            (1_320.0, 0.09),
            (0.0, 0.05),
            (1_320.0, 0.09),
            (0.0, 0.05),
            (1_760.0, 0.16),
        ],
        Chime::Muted => &[(392.0, 0.09), (262.0, 0.16)],
        Chime::Unmuted => &[(262.0, 0.09), (392.0, 0.16)],
    };
    let rate = 24_000.0;
    let mut out = Vec::new();
    for &(f, len) in notes {
        let n = (len * rate) as usize;
        for i in 0..n {
            let t = i as f64 / rate;
            // 5 ms fades: no clicks.
            let fade = (t / 0.005).min((len - t) / 0.005).clamp(0.0, 1.0);
            let x = if f > 0.0 {
                (2.0 * std::f64::consts::PI * f * t).sin() * 6_000.0 * fade
            } else {
                0.0
            };
            out.extend_from_slice(&(x as i16).to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    fn cfg(button: bool) -> LifecycleConfig {
        LifecycleConfig {
            wake_on_button: button,
            push_to_talk: false,
            idle_timeout: Some(Duration::from_secs(60)),
            max_session: None,
            chimes: true,
        }
    }

    #[test]
    fn always_opens_at_start_and_reopens_after_the_model_ends() {
        let t = Instant::now();
        let mut l = Lifecycle::new(cfg(false), t);
        assert_eq!(l.step(Event::Started, t, false), vec![Open, Led(true)]);
        assert_eq!(
            l.step(Event::ModelEnded, t, false),
            vec![
                Close("the model ended the conversation"),
                Chime(super::Chime::End),
                Open,
                Led(true)
            ]
        );
        assert!(l.active());
        // idle timeout does not apply to wake = always
        assert_eq!(
            l.step(Event::Tick, t + Duration::from_secs(3600), false),
            vec![]
        );
    }

    #[test]
    fn button_wakes_interrupts_and_long_press_ends() {
        let t = Instant::now();
        let mut l = Lifecycle::new(cfg(true), t);
        assert_eq!(l.step(Event::Started, t, false), vec![Led(false)]);
        assert_eq!(
            l.step(Event::Press, t, false),
            vec![Open, Chime(super::Chime::Wake), Led(true)]
        );
        assert_eq!(
            l.step(Event::Press, t, false),
            vec![],
            "press while listening: nothing"
        );
        assert_eq!(
            l.step(Event::Press, t, true),
            vec![Interrupt],
            "press while speaking"
        );
        assert_eq!(
            l.step(Event::LongPress, t, false),
            vec![Close("long press"), Chime(super::Chime::End), Led(false)]
        );
        assert!(!l.active());
        assert_eq!(l.step(Event::LongPress, t, false), vec![], "already idle");
    }

    #[test]
    fn long_press_parks_an_always_on_box_until_the_next_press() {
        let t = Instant::now();
        let mut l = Lifecycle::new(cfg(false), t);
        l.step(Event::Started, t, false);
        assert_eq!(
            l.step(Event::LongPress, t, false),
            vec![Close("long press"), Chime(super::Chime::End), Led(false)]
        );
        assert_eq!(
            l.step(Event::Press, t, false),
            vec![Open, Chime(super::Chime::Wake), Led(true)]
        );
    }

    #[test]
    fn idle_timeout_counts_from_the_last_activity() {
        let t = Instant::now();
        let mut l = Lifecycle::new(cfg(true), t);
        l.step(Event::Press, t, false);
        l.step(Event::Activity, t + Duration::from_secs(50), false);
        assert_eq!(
            l.step(Event::Tick, t + Duration::from_secs(100), false),
            vec![]
        );
        assert_eq!(
            l.step(Event::Tick, t + Duration::from_secs(100), true),
            vec![],
            "model speaking"
        );
        assert_eq!(
            l.step(Event::Tick, t + Duration::from_secs(111), false),
            vec![
                Close("idle_timeout_s without speech"),
                Chime(super::Chime::End),
                Led(false)
            ]
        );
    }

    #[test]
    fn max_session_ends_and_an_always_box_starts_afresh() {
        let t = Instant::now();
        let mut c = cfg(false);
        c.max_session = Some(Duration::from_secs(600));
        let mut l = Lifecycle::new(c, t);
        l.step(Event::Started, t, false);
        assert_eq!(
            l.step(Event::Tick, t + Duration::from_secs(599), false),
            vec![]
        );
        assert_eq!(
            l.step(Event::Tick, t + Duration::from_secs(600), false),
            vec![
                Close("max_session_s reached"),
                Chime(super::Chime::End),
                Open,
                Led(true)
            ]
        );
    }

    #[test]
    fn push_to_talk_brackets_activity_and_interrupts() {
        let t = Instant::now();
        let mut c = cfg(true);
        c.push_to_talk = true;
        let mut l = Lifecycle::new(c, t);
        assert_eq!(
            l.step(Event::TalkDown, t, false),
            vec![Open, Chime(super::Chime::Wake), Led(true), ActivityStart]
        );
        assert_eq!(l.step(Event::TalkUp, t, false), vec![ActivityEnd]);
        assert_eq!(
            l.step(Event::TalkDown, t, true),
            vec![Interrupt, ActivityStart]
        );
        // no idle end while held
        assert_eq!(
            l.step(Event::Tick, t + Duration::from_secs(500), false),
            vec![]
        );
        assert_eq!(l.step(Event::TalkUp, t, false), vec![ActivityEnd]);
        assert_eq!(
            l.step(Event::TalkUp, t, false),
            vec![],
            "release without press"
        );
    }

    #[test]
    fn chimes_off_means_no_chime_actions() {
        let t = Instant::now();
        let mut c = cfg(true);
        c.chimes = false;
        let mut l = Lifecycle::new(c, t);
        assert_eq!(l.step(Event::Press, t, false), vec![Open, Led(true)]);
    }

    #[test]
    fn chimes_are_short_and_audible() {
        for k in [super::Chime::Wake, super::Chime::End, super::Chime::Error] {
            let pcm = chime_pcm(k);
            assert!(pcm.len() > 4_000 && pcm.len() < 24_000 * 2, "{k:?}");
            let peak = pcm
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]).unsigned_abs())
                .max()
                .unwrap_or(0);
            assert!(peak > 3_000);
        }
    }
}
