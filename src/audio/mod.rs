//! ALSA edge. STUB
