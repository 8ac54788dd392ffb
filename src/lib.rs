//! gemlive: a headless voice-and-camera appliance daemon for the Gemini Live API.
//!
//! Data flow (one arrow = one channel or socket):
//!
//! ```text
//!  ALSA capture thread ──PcmChunk──▶ daemon (tokio) ──Send──▶ live::conn task ─▶ Live API
//!  ALSA playback thread ◀─PlaybackCmd── daemon ◀──Event── live::conn task ◀───────┘
//!                   (daemon: supervisor.step / machine.step / lifecycle.step → perform)
//! ```
//!
//! | module      | owns                                                              |
//! |-------------|-------------------------------------------------------------------|
//! | `config`    | the TOML file: parsing, validation with line/column, API key      |
//! | `cli`       | command-line parsing                                              |
//! | `audio`     | ALSA capture and playback threads, device listing                 |
//! | `button`    | GPIO button and LED (gpiocdev), short/long press logic, GPIO listing |
//! | `live`      | wire types, TLS WebSocket, connection tasks, the pure session supervisor |
//! | `probe`     | `check-config --online`: one real session, opened and closed       |
//! | `lifecycle` | pure session lifecycle: wake, button, timeouts, chimes, LED            |
//! | `machine`   | pure state machine: turns, generations, interruptions             |
//! | `daemon`    | wiring: spawns the edges, feeds the machines, performs their actions |
//! | `service`   | logging (journald or stderr), sd-notify, signals                  |
//! | `tools`     | the model's tools: built-ins, timers, `look`, the owner's command tools |
//! | `token`     | ephemeral tokens from the owner's token source (`auth = "ephemeral"`) |
//! | `standin`   | a Live API stand-in on 127.0.0.1 used by `demo` and the tests     |
//! | `demo`      | the no-hardware, no-key demonstration                             |

pub mod audio;
pub mod bench;
pub mod button;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod hooks;
pub mod lifecycle;
pub mod live;
pub mod machine;
pub mod metrics;
pub mod mqtt;
pub mod probe;
pub mod service;
pub mod silence;
pub mod standin;
pub mod token;
pub mod tools;
pub mod video;
pub mod wake;
