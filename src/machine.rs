//! The conversation state machine: which reply audio may reach the speaker.
//!
//! Pure: no I/O, no clock, no tokio. The daemon feeds it control events and performs the
//! actions it returns; audio bytes never pass through it, only generation numbers do.
//!
//! Generations: every model reply is played under a generation number. An `interrupted` from
//! the server bumps the generation and discards everything older at once. Audio that still
//! arrives for the cancelled turn (it was in flight) is dropped until that turn's
//! `turnComplete`; the server always ends an interrupted turn with one (`docs/protocol.md`,
//! "serverContent").

/// What happened, as far as playback is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `setupComplete` on a (new) connection.
    SessionReady,
    /// A chunk of model audio arrived.
    ModelAudio,
    /// `serverContent.interrupted`.
    Interrupted,
    /// The echo gate's local barge-in detector: the user clearly talks over the speaker. Stops
    /// playback at once; a reply still streaming is dropped like on `Interrupted`, but a reply
    /// that has fully arrived (only playing out) leaves no late audio to drop.
    LocalBargeIn,
    /// `serverContent.generationComplete`: the model has sent all audio of this reply.
    GenerationComplete,
    /// `serverContent.turnComplete`.
    TurnComplete,
    /// The connection ended (for any reason).
    Disconnected,
    /// The connection that carried the current reply closed, but a new one is already ready
    /// (goAway hand-over): what is queued plays out, and nobody is reconnecting.
    ReplyConnectionClosed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Play the chunk under this generation.
    Play { gen: u64 },
    /// Drop the chunk: it belongs to a cancelled reply.
    DropLate,
    /// Stop the speaker now and refuse everything older than `new_gen`.
    Discard { new_gen: u64 },
    /// Everything of this generation is queued: play it out.
    EndOfTurn { gen: u64 },
    /// The user-visible state changed.
    State(State),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Connecting,
    Listening,
    Speaking,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Listening => "listening",
            State::Speaking => "speaking",
        }
    }
}

#[derive(Debug)]
pub struct Machine {
    gen: u64,
    state: State,
    /// Dropping late chunks of a cancelled reply until its `turnComplete`.
    discarding: bool,
    /// `EndOfTurn` already sent for the current reply.
    ended: bool,
    /// Replies started (for logs and status).
    pub replies: u64,
    /// Replies cut short by the user.
    pub interruptions: u64,
}

impl Default for Machine {
    fn default() -> Self {
        Self::new()
    }
}

impl Machine {
    pub fn new() -> Self {
        Machine {
            gen: 0,
            state: State::Connecting,
            discarding: false,
            ended: false,
            replies: 0,
            interruptions: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn generation(&self) -> u64 {
        self.gen
    }

    fn set(&mut self, s: State, out: &mut Vec<Action>) {
        if self.state != s {
            self.state = s;
            out.push(Action::State(s));
        }
    }

    fn finish_reply(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Speaking && !self.ended {
            self.ended = true;
            out.push(Action::EndOfTurn { gen: self.gen });
        }
    }

    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::SessionReady => {
                self.discarding = false;
                if self.state == State::Connecting {
                    self.set(State::Listening, &mut out);
                }
            }
            Input::ModelAudio => {
                if self.discarding {
                    out.push(Action::DropLate);
                } else {
                    if self.state != State::Speaking || self.ended {
                        self.replies += 1;
                        self.ended = false;
                    }
                    self.set(State::Speaking, &mut out);
                    out.push(Action::Play { gen: self.gen });
                }
            }
            Input::Interrupted => {
                if !self.discarding {
                    self.gen += 1;
                    self.discarding = true;
                    self.ended = false;
                    if self.state == State::Speaking {
                        self.interruptions += 1;
                    }
                    out.push(Action::Discard { new_gen: self.gen });
                    self.set(State::Listening, &mut out);
                }
            }
            Input::LocalBargeIn => {
                if self.state == State::Speaking {
                    return self.step(Input::Interrupted);
                }
                if !self.discarding {
                    self.gen += 1;
                    out.push(Action::Discard { new_gen: self.gen });
                }
            }
            Input::GenerationComplete => self.finish_reply(&mut out),
            Input::TurnComplete => {
                if self.discarding {
                    self.discarding = false;
                } else {
                    self.finish_reply(&mut out);
                    self.set(State::Listening, &mut out);
                }
            }
            Input::ReplyConnectionClosed => {
                self.finish_reply(&mut out);
                self.discarding = false;
                if self.state == State::Speaking {
                    self.set(State::Listening, &mut out);
                }
            }
            Input::Disconnected => {
                // What is already queued still plays; a new connection starts a new reply.
                self.finish_reply(&mut out);
                self.discarding = false;
                self.set(State::Connecting, &mut out);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use Input::*;

    fn run(m: &mut Machine, inputs: &[Input]) -> Vec<Action> {
        inputs.iter().flat_map(|i| m.step(*i)).collect()
    }

    #[test]
    fn local_barge_in_stops_playback_without_eating_the_next_reply() {
        let mut m = Machine::new();
        run(&mut m, &[SessionReady, ModelAudio, TurnComplete]);
        // The reply has fully arrived and is playing out.
        assert_eq!(run(&mut m, &[LocalBargeIn]), vec![Discard { new_gen: 1 }]);
        assert_eq!(
            run(&mut m, &[ModelAudio]),
            vec![State(super::State::Speaking), Play { gen: 1 }]
        );
        // While a reply streams, it is an interruption: its late chunks are dropped.
        assert_eq!(
            run(&mut m, &[LocalBargeIn, ModelAudio]),
            vec![
                Discard { new_gen: 2 },
                State(super::State::Listening),
                DropLate
            ]
        );
        assert_eq!(m.interruptions, 1);
    }

    #[test]
    fn one_plain_turn() {
        let mut m = Machine::new();
        let a = run(
            &mut m,
            &[
                SessionReady,
                ModelAudio,
                ModelAudio,
                GenerationComplete,
                TurnComplete,
            ],
        );
        assert_eq!(
            a,
            vec![
                State(super::State::Listening),
                State(super::State::Speaking),
                Play { gen: 0 },
                Play { gen: 0 },
                EndOfTurn { gen: 0 },
                State(super::State::Listening),
            ]
        );
        assert_eq!(m.replies, 1);
    }

    #[test]
    fn interruption_discards_and_drops_late_chunks_until_turn_complete() {
        let mut m = Machine::new();
        run(&mut m, &[SessionReady, ModelAudio]);
        let a = run(&mut m, &[Interrupted, ModelAudio, ModelAudio, TurnComplete]);
        assert_eq!(
            a,
            vec![
                Discard { new_gen: 1 },
                State(super::State::Listening),
                DropLate,
                DropLate
            ]
        );
        // The next reply plays under the new generation.
        let a = run(&mut m, &[ModelAudio, TurnComplete]);
        assert_eq!(
            a,
            vec![
                State(super::State::Speaking),
                Play { gen: 1 },
                EndOfTurn { gen: 1 },
                State(super::State::Listening)
            ]
        );
        assert_eq!((m.replies, m.interruptions), (2, 1));
    }

    #[test]
    fn repeated_interrupted_bumps_once() {
        let mut m = Machine::new();
        run(&mut m, &[SessionReady, ModelAudio]);
        let a = run(&mut m, &[Interrupted, Interrupted]);
        assert_eq!(
            a,
            vec![Discard { new_gen: 1 }, State(super::State::Listening)]
        );
    }

    #[test]
    fn interrupted_while_listening_still_discards() {
        // Audio may be queued at the speaker although the machine already saw turn end.
        let mut m = Machine::new();
        run(&mut m, &[SessionReady]);
        assert_eq!(m.step(Interrupted), vec![Discard { new_gen: 1 }]);
        assert_eq!(m.interruptions, 0);
    }

    #[test]
    fn disconnect_lets_queued_audio_play_and_clears_discarding() {
        let mut m = Machine::new();
        run(&mut m, &[SessionReady, ModelAudio]);
        assert_eq!(
            m.step(Disconnected),
            vec![EndOfTurn { gen: 0 }, State(super::State::Connecting)]
        );
        run(
            &mut m,
            &[SessionReady, Interrupted, Disconnected, SessionReady],
        );
        assert_eq!(
            m.step(ModelAudio),
            vec![State(super::State::Speaking), Play { gen: 1 }]
        );
    }

    #[test]
    fn reply_connection_closing_after_hand_over_plays_out_and_listens() {
        let mut m = Machine::new();
        run(&mut m, &[SessionReady, ModelAudio, SessionReady]);
        assert_eq!(
            m.state(),
            super::State::Speaking,
            "hand-over keeps the reply going"
        );
        assert_eq!(
            m.step(ReplyConnectionClosed),
            vec![EndOfTurn { gen: 0 }, State(super::State::Listening)]
        );
    }

    #[test]
    fn end_of_turn_sent_once_per_reply() {
        let mut m = Machine::new();
        run(&mut m, &[SessionReady, ModelAudio]);
        assert_eq!(m.step(GenerationComplete), vec![EndOfTurn { gen: 0 }]);
        assert_eq!(m.step(TurnComplete), vec![State(super::State::Listening)]);
    }
}
