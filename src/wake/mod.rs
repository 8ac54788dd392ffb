//! Local wake-word detection: microWakeWord models run natively.

pub mod features;
