//! `gemlive list-devices`: every ALSA PCM with what it accepts, so nobody needs `arecord -L`,
//! `arecord --dump-hw-params` and a guess to fill in `capture_device` / `playback_device`.

use alsa::pcm::{Format, HwParams};
use alsa::PCM;

use super::{Dir, INPUT_RATE_HZ, OUTPUT_RATE_HZ};

/// Rates probed for the summary (the ones USB mics, HATs and DACs actually use).
const RATES: [u32; 7] = [8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000];
const FORMATS: [(Format, &str); 5] = [
    (Format::S16LE, "S16_LE"),
    (Format::S24LE, "S24_LE"),
    (Format::S243LE, "S24_3LE"),
    (Format::S32LE, "S32_LE"),
    (Format::FloatLE, "FLOAT_LE"),
];

/// What one PCM accepts in one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    pub rates: Vec<u32>,
    pub rate_min: u32,
    pub rate_max: u32,
    pub formats: Vec<&'static str>,
    pub channels_min: u32,
    pub channels_max: u32,
    /// Accepts S16_LE mono at the rate gemlive needs for this direction, without help.
    pub native: bool,
}

#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub name: String,
    pub description: String,
    /// Named in the config file (always shown, even when it cannot be opened).
    pub configured: bool,
    pub capture: Result<Caps, String>,
    pub playback: Result<Caps, String>,
}

/// Probes one PCM in one direction. Opens non-blocking so a busy device answers at once.
pub fn probe(name: &str, dir: Dir) -> Result<Caps, String> {
    let pcm = PCM::new(name, dir.into(), true).map_err(busy_hint)?;
    let hwp = HwParams::any(&pcm).map_err(|e| e.to_string())?;
    let rates: Vec<u32> = RATES
        .iter()
        .copied()
        .filter(|r| hwp.test_rate(*r).is_ok())
        .collect();
    let formats: Vec<&'static str> = FORMATS
        .iter()
        .filter(|(f, _)| hwp.test_format(*f).is_ok())
        .map(|(_, n)| *n)
        .collect();
    let want = match dir {
        Dir::Capture => INPUT_RATE_HZ,
        Dir::Playback => OUTPUT_RATE_HZ,
    };
    let native = hwp.test_format(Format::S16LE).is_ok()
        && hwp.test_channels(1).is_ok()
        && hwp.test_rate(want).is_ok()
        && {
            // The three can each be fine alone yet not together; check the combination.
            let h = HwParams::any(&pcm).map_err(|e| e.to_string())?;
            h.set_format(Format::S16LE).is_ok()
                && h.set_channels(1).is_ok()
                && h.test_rate(want).is_ok()
        };
    Ok(Caps {
        rates,
        rate_min: hwp.get_rate_min().unwrap_or(0),
        rate_max: hwp.get_rate_max().unwrap_or(0),
        formats,
        channels_min: hwp.get_channels_min().unwrap_or(0),
        channels_max: hwp.get_channels_max().unwrap_or(0),
        native,
    })
}

fn busy_hint(e: alsa::Error) -> String {
    if e.errno() == libc::EBUSY {
        format!("{e} (in use by another program; `fuser -v /dev/snd/*` shows which)")
    } else {
        e.to_string()
    }
}

/// Sends file descriptor 2 to /dev/null until dropped. Probing every hint makes alsa-lib (and
/// plugins such as jack's, which print on their own) write a screen of "Cannot get card index"
/// and "jack server is not running" that says nothing about the devices; each probe's own
/// error is in the listing instead. For the one-shot listing only, where nothing else writes.
struct QuietStderr(Option<std::os::fd::OwnedFd>);

impl QuietStderr {
    fn new() -> QuietStderr {
        use std::os::fd::{AsRawFd, FromRawFd};
        let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
            return QuietStderr(None);
        };
        // SAFETY: dup/dup2 on descriptors this process owns; the saved copy is owned below.
        let saved = unsafe { libc::dup(2) };
        if saved < 0 {
            return QuietStderr(None);
        }
        // SAFETY: as above.
        if unsafe { libc::dup2(null.as_raw_fd(), 2) } < 0 {
            // SAFETY: saved is ours and unused.
            unsafe { libc::close(saved) };
            return QuietStderr(None);
        }
        // SAFETY: saved is a fresh descriptor nobody else owns.
        QuietStderr(Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(saved) }))
    }
}

impl Drop for QuietStderr {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        if let Some(saved) = &self.0 {
            // SAFETY: puts the saved stderr back on 2; `saved` is closed when dropped.
            unsafe { libc::dup2(saved.as_raw_fd(), 2) };
        }
    }
}

/// Every PCM ALSA knows of (hints), plus `extra` names (the configured devices), probed both ways.
pub fn list(extra: &[&str]) -> Result<Vec<DeviceInfo>, alsa::Error> {
    let _quiet = QuietStderr::new();
    let mut names: Vec<(String, String)> = Vec::new();
    let configured = |n: &str| extra.contains(&n);
    for hint in alsa::device_name::HintIter::new_str(None, "pcm")? {
        let Some(name) = hint.name else { continue };
        let desc = hint.desc.unwrap_or_default().replace('\n', " — ");
        if !names.iter().any(|(n, _)| *n == name) {
            names.push((name, desc));
        }
    }
    for e in extra {
        if !names.iter().any(|(n, _)| n == e) {
            names.push((e.to_string(), String::new()));
        }
    }
    Ok(names
        .into_iter()
        .map(|(name, description)| DeviceInfo {
            configured: configured(&name),
            capture: probe(&name, Dir::Capture),
            playback: probe(&name, Dir::Playback),
            name,
            description,
        })
        .collect())
}

fn caps_line(dir: Dir, caps: &Result<Caps, String>) -> String {
    let want = match dir {
        Dir::Capture => "16 kHz",
        Dir::Playback => "24 kHz",
    };
    match caps {
        Err(e) => format!("    {dir:<8}: not available ({e})"),
        Ok(c) => {
            let range = if c.rate_max >= 1_000_000 {
                "any rate".to_string()
            } else {
                format!("range {}–{}", c.rate_min, c.rate_max)
            };
            let rates = if c.rates.is_empty() {
                range
            } else {
                let list: Vec<String> = c.rates.iter().map(|r| r.to_string()).collect();
                format!("{} Hz ({range})", list.join(" "))
            };
            let channels = if c.channels_max >= 1024 {
                format!("{}+", c.channels_min)
            } else {
                format!("{}–{}", c.channels_min, c.channels_max)
            };
            let mark = if c.native {
                format!("[ok: {want} S16_LE mono natively]")
            } else {
                format!("[no {want} S16_LE mono: use plughw:/default]")
            };
            format!(
                "    {dir:<8}: rates {rates}; formats {}; channels {channels} {mark}",
                c.formats.join(" "),
            )
        }
    }
}

/// The human-readable listing printed by `gemlive list-devices`.
pub fn render(devices: &[DeviceInfo]) -> String {
    let mut out = String::new();
    for d in devices {
        if d.capture.is_err() && d.playback.is_err() && !d.configured {
            continue;
        }
        out.push_str(&d.name);
        if !d.description.is_empty() {
            out.push_str(&format!("  ({})", d.description));
        }
        if d.configured {
            out.push_str("  [in your config]");
        }
        out.push('\n');
        out.push_str(&caps_line(Dir::Capture, &d.capture));
        out.push('\n');
        out.push_str(&caps_line(Dir::Playback, &d.playback));
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("no ALSA PCM devices found (is a sound card connected? is the user in group `audio`?)\n");
    }
    out
}
