//! The integration tests that need no sound server, in one binary so that they run in
//! parallel (most wait on real time: reconnects, a frozen network, the watchdog) and link once.
//! The PulseAudio echo tests (`tests/echo_e2e.rs`, `tests/calibrate_echo.rs`) stay apart and
//! run one after the other: they measure real-time audio and must not share the CPU.
//! `tests/vm_hw.rs` runs on its own in CI's VM tier.

#[path = "../support/mod.rs"]
mod support;

mod blackhole;
mod button;
mod checks;
mod cli;
mod config_file;
mod control;
mod home;
mod hostile;
mod live_settings;
mod live_wire;
mod mcp;
mod module_graph;
mod mqtt;
mod noise;
mod repo_docs;
mod service;
mod session_resume;
mod silence;
mod timers;
mod tools;
mod video;
mod voice_turn;
mod wake_word;
