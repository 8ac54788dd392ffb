//! The GPIO button (and an optional LED) over the GPIO character device, uAPI v2 via `gpiocdev`.
//!
//! * [`Button`] requests one input line with edge detection on both edges, the configured bias,
//!   active-low flag and kernel debounce, and yields logical [`ButtonEvent`]s
//!   (`Pressed` = the line became *active*, so an active-low button to ground reads naturally).
//! * [`Led`] requests one output line (initially off) for a status LED.
//! * [`PressTracker`] is the pure press logic (short / long press), unit-tested without devices.
//! * [`list_gpio`] describes the chips and named lines for `gemlive list-devices`.
//!
//! Lines are found by *name* (`"GPIO17"`) across all chips, or by chip plus offset. Chip numbers
//! are never assumed: the Pi 5's header chip has been `gpiochip4` and `gpiochip0` on different
//! kernels, so a chip may be given as `gpiochip0`, `/dev/gpiochip0` or by its label
//! (`pinctrl-rp1`). The daemon needs read/write access to `/dev/gpiochip*`: group `gpio` on
//! Raspberry Pi OS, and `DeviceAllow=char-gpiochip rw` in a hardened systemd unit.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gpiocdev::line::{EdgeKind, Value};
use gpiocdev::tokio::AsyncRequest;
use gpiocdev::{Chip, Request};

use crate::config::{Bias, ButtonConfig, LineSpec};

/// The consumer name the kernel shows for our lines (`gpioinfo`).
pub const CONSUMER: &str = "gemlive";

/// At most this many line names are listed in a "not found" error.
const MAX_LISTED_NAMES: usize = 40;

const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const ENXIO: i32 = 6;
const EACCES: i32 = 13;
const EBUSY: i32 = 16;
const ENODEV: i32 = 19;

/// What went wrong with the button or LED; every message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ButtonError {
    /// There is no `/dev/gpiochip*` the daemon can use.
    #[error(
        "no GPIO chips found (/dev/gpiochip*): is this a board with GPIO, and is the user in group gpio?"
    )]
    NoChips,
    /// The `[button]` settings (or the LED spec) name no line.
    #[error("GPIO line not configured: {0}")]
    NotConfigured(String),
    /// No line with this name exists on any chip.
    #[error(
        "GPIO line {name:?} not found{}; {} (see gpioinfo or gemlive list-devices)",
        did_you_mean(.nearest), named_list(.named)
    )]
    LineNotFound {
        /// The name that was asked for.
        name: String,
        /// The closest existing name, when one is close.
        nearest: Option<String>,
        /// Every named line that does exist, in chip order (the message shows the first 40).
        named: Vec<String>,
    },
    /// No chip matches the given name, path or label.
    #[error("GPIO chip {chip:?} not found; {} (see gemlive list-devices)", chip_list(.available))]
    ChipNotFound {
        /// The chip as given.
        chip: String,
        /// The chips that do exist, described as `gpiochip0 [label, N lines]`.
        available: Vec<String>,
    },
    /// The offset is not below the chip's line count.
    #[error("GPIO offset {offset} is out of range: {chip} has {num_lines} lines (offsets 0 to {})", .num_lines.saturating_sub(1))]
    OffsetOutOfRange {
        chip: String,
        offset: u32,
        num_lines: u32,
    },
    /// The line is already requested by a driver or another program.
    #[error("GPIO {line} is busy: {}", match .consumer {
        Some(c) => format!("in use by {c:?}"),
        None => "already requested by a driver or another program (see gpioinfo)".to_string(),
    })]
    Busy {
        line: String,
        consumer: Option<String>,
    },
    /// The chip device cannot be opened or the line requested for lack of permission.
    #[error("permission denied on {}: {}", .path.display(), permission_hint(.path))]
    PermissionDenied { path: PathBuf },
    /// The kernel refused the line request for another reason.
    #[error("cannot request GPIO {line}: {source}")]
    Request {
        line: String,
        source: gpiocdev::Error,
    },
    /// I/O on a requested line failed (`op` says what was being done).
    #[error("GPIO {line}: {op} failed: {source}")]
    Io {
        line: String,
        op: &'static str,
        source: gpiocdev::Error,
    },
    /// The chip went away under us (driver unbound, device removed).
    #[error("GPIO {line}: the GPIO chip went away (driver unbound or device removed)")]
    DeviceGone { line: String },
    /// [`Button::open`] was called outside a tokio runtime.
    #[error("the GPIO button must be opened inside a tokio runtime with I/O enabled")]
    NoRuntime,
}

fn did_you_mean(nearest: &Option<String>) -> String {
    nearest
        .as_ref()
        .map(|n| format!(" (did you mean {n:?}?)"))
        .unwrap_or_default()
}

fn named_list(named: &[String]) -> String {
    if named.is_empty() {
        return "no line has a name here, so give button.chip and button.offset instead".into();
    }
    let mut s = String::from("named lines: ");
    s.push_str(&named[..named.len().min(MAX_LISTED_NAMES)].join(", "));
    if named.len() > MAX_LISTED_NAMES {
        let _ = write!(s, ", … ({} more)", named.len() - MAX_LISTED_NAMES);
    }
    s
}

fn chip_list(available: &[String]) -> String {
    if available.is_empty() {
        "there are no GPIO chips at all (/dev/gpiochip*): is this a board with GPIO, and is the user in group gpio?"
            .into()
    } else {
        format!("chips: {}", available.join(", "))
    }
}

/// A logical edge of the button.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// The line became active (for an active-low button: pulled to ground).
    Pressed,
    /// The line became inactive.
    Released,
}

/// One debounced edge.
///
/// `at` is a monotonic [`Instant`]: the kernel's event timestamp (`CLOCK_MONOTONIC`, taken when
/// the debounced edge was detected) carried over to `Instant`, so press durations stay right even
/// when the daemon reads queued events late. The daemon's timing logic uses only `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ButtonEvent {
    pub edge: Edge,
    pub at: Instant,
}

/// A line found on a chip.
struct Resolved {
    chip: PathBuf,
    offset: u32,
    /// The line's name from the kernel ("" when unnamed).
    name: String,
}

impl Resolved {
    fn chip_name(&self) -> String {
        chip_name(&self.chip)
    }

    /// "GPIO17 (gpiochip0 offset 17)" or "gpiochip0 offset 17".
    fn describe(&self) -> String {
        if self.name.is_empty() {
            format!("{} offset {}", self.chip_name(), self.offset)
        } else {
            format!(
                "{} ({} offset {})",
                self.name,
                self.chip_name(),
                self.offset
            )
        }
    }
}

/// The button: one requested input line with edge events.
///
/// [`Button::open`] must be called inside a tokio runtime with I/O enabled (the daemon's is);
/// otherwise it returns [`ButtonError::NoRuntime`].
#[derive(Debug)]
pub struct Button {
    req: AsyncRequest,
    offset: u32,
    line: String,
}

impl Button {
    /// Finds and requests the configured line ([`ButtonConfig::input`]): by `line` name on any
    /// chip, else by `chip` and `offset`. Input, both edges, `active_low`, `bias`
    /// (`AsIs` leaves it alone), kernel debounce `debounce_ms` (0 = none), consumer "gemlive".
    pub fn open(cfg: &ButtonConfig) -> Result<Button, ButtonError> {
        let spec = cfg.input().ok_or_else(|| {
            ButtonError::NotConfigured(
                "set button.line (e.g. \"GPIO17\"), or button.chip and button.offset".into(),
            )
        })?;
        Self::open_line(cfg, &spec, "button")
    }

    /// Another input wired like the button (its `active_low`, `bias`, `debounce_ms`): the mute
    /// switch. `what` names it in the log.
    pub fn open_line(
        cfg: &ButtonConfig,
        spec: &LineSpec,
        what: &str,
    ) -> Result<Button, ButtonError> {
        let found = resolve(spec)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ButtonError::NoRuntime);
        }

        let mut builder = Request::builder();
        builder
            .on_chip(found.chip.clone())
            .with_line(found.offset)
            .with_consumer(CONSUMER)
            .as_input()
            .with_edge_detection(gpiocdev::line::EdgeDetection::BothEdges);
        if cfg.active_low {
            builder.as_active_low();
        }
        let bias = match cfg.bias {
            Bias::PullUp => Some(gpiocdev::line::Bias::PullUp),
            Bias::PullDown => Some(gpiocdev::line::Bias::PullDown),
            Bias::Disabled => Some(gpiocdev::line::Bias::Disabled),
            Bias::AsIs => None,
        };
        if let Some(b) = bias {
            builder.with_bias(b);
        }
        if cfg.debounce_ms > 0 {
            builder.with_debounce_period(Duration::from_millis(cfg.debounce_ms.into()));
        }
        let req = builder.request().map_err(|e| request_error(e, &found))?;

        let bias_text = match cfg.bias {
            Bias::PullUp => "pull-up",
            Bias::PullDown => "pull-down",
            Bias::Disabled => "bias disabled",
            Bias::AsIs => "bias as is",
        };
        let debounce = if cfg.debounce_ms > 0 {
            format!("debounce {} ms", cfg.debounce_ms)
        } else {
            "no debounce".to_string()
        };
        let label = if found.name.is_empty() {
            String::new()
        } else {
            format!("{} on ", found.name)
        };
        log::info!(
            "{what}: {label}{} offset {}, active {}, {bias_text}, {debounce}",
            found.chip_name(),
            found.offset,
            if cfg.active_low { "low" } else { "high" },
        );
        Ok(Button {
            req: AsyncRequest::new(req),
            offset: found.offset,
            line: found.describe(),
        })
    }

    /// The line, as "GPIO17 (gpiochip0 offset 17)", for log messages.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Waits for the next debounced edge. Cancel-safe: dropping the future loses no event.
    pub async fn next(&mut self) -> Result<ButtonEvent, ButtonError> {
        let ev = self
            .req
            .read_edge_event()
            .await
            .map_err(|e| io_error(e, &self.line, "waiting for button events"))?;
        let edge = match ev.kind {
            EdgeKind::Rising => Edge::Pressed,
            EdgeKind::Falling => Edge::Released,
        };
        Ok(ButtonEvent {
            edge,
            at: kernel_instant(ev.timestamp_ns),
        })
    }

    /// Whether the button is held right now (the line's logical value is active).
    pub fn is_pressed(&self) -> Result<bool, ButtonError> {
        let req: &Request = self.req.as_ref();
        req.value(self.offset)
            .map(|v| v == Value::Active)
            .map_err(|e| io_error(e, &self.line, "reading the button"))
    }
}

/// A status LED on one output line (active high).
#[derive(Debug)]
pub struct Led {
    req: Request,
    offset: u32,
    line: String,
}

impl Led {
    /// Opens `spec`: a line name (`"GPIO27"`) or `CHIP:OFFSET` (`"gpiochip0:27"`,
    /// `"/dev/gpiochip0:27"`, `"pinctrl-rp1:27"`). Output, initially off, consumer "gemlive".
    pub fn open(spec: &str) -> Result<Led, ButtonError> {
        let parsed = LineSpec::parse(spec).ok_or_else(|| {
            ButtonError::NotConfigured(format!(
                "LED line {spec:?}: give a name (\"GPIO27\") or CHIP:OFFSET (\"gpiochip0:27\")"
            ))
        })?;
        let found = resolve(&parsed)?;
        let req = Request::builder()
            .on_chip(found.chip.clone())
            .with_line(found.offset)
            .with_consumer(CONSUMER)
            .as_output(Value::Inactive)
            .request()
            .map_err(|e| request_error(e, &found))?;
        log::info!("LED: {}", found.describe());
        Ok(Led {
            req,
            offset: found.offset,
            line: found.describe(),
        })
    }

    /// Turns the LED on or off.
    pub fn set(&self, on: bool) -> Result<(), ButtonError> {
        let v = if on { Value::Active } else { Value::Inactive };
        self.req
            .set_value(self.offset, v)
            .map_err(|e| io_error(e, &self.line, "setting the LED"))
    }
}

/// A short or long press, as the daemon acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Press {
    Short,
    Long,
}

/// Turns edges into presses. Pure: no devices, no clock of its own.
///
/// Two ways to use it; the daemon picks one:
/// * **at release only**: feed [`on_event`](Self::on_event); a release reports `Short` or `Long`
///   (held ≥ `long_press`).
/// * **long while held**: also sleep until [`long_press_due`](Self::long_press_due) and then
///   call [`poll_long`](Self::poll_long), which reports `Long` once while the button is still
///   down; the release that follows then reports nothing.
///
/// A release without a press, and a press while already pressed, are ignored.
#[derive(Clone, Debug)]
pub struct PressTracker {
    long_press: Duration,
    down_at: Option<Instant>,
    long_reported: bool,
}

impl PressTracker {
    pub fn new(long_press: Duration) -> Self {
        PressTracker {
            long_press,
            down_at: None,
            long_reported: false,
        }
    }

    /// The threshold between a short and a long press.
    pub fn long_press(&self) -> Duration {
        self.long_press
    }

    /// Whether a press is in progress.
    pub fn is_down(&self) -> bool {
        self.down_at.is_some()
    }

    /// Feeds an edge; reports the press at its release (unless [`poll_long`](Self::poll_long)
    /// already reported it).
    pub fn on_event(&mut self, ev: &ButtonEvent) -> Option<Press> {
        match ev.edge {
            Edge::Pressed => {
                if self.down_at.is_none() {
                    self.down_at = Some(ev.at);
                    self.long_reported = false;
                }
                None
            }
            Edge::Released => {
                let down = self.down_at.take()?;
                if std::mem::take(&mut self.long_reported) {
                    return None;
                }
                if ev.at.saturating_duration_since(down) >= self.long_press {
                    Some(Press::Long)
                } else {
                    Some(Press::Short)
                }
            }
        }
    }

    /// While a press is in progress and its `Long` not yet reported: when it becomes long
    /// (never earlier than `now`, so it can go straight to `sleep_until`). `None` otherwise.
    pub fn long_press_due(&self, now: Instant) -> Option<Instant> {
        if self.long_reported {
            return None;
        }
        let down = self.down_at?;
        let due = down.checked_add(self.long_press).unwrap_or(now);
        Some(due.max(now))
    }

    /// Reports `Long` once when the current press has been held for `long_press` by `now`.
    pub fn poll_long(&mut self, now: Instant) -> Option<Press> {
        let down = self.down_at?;
        if self.long_reported || now.saturating_duration_since(down) < self.long_press {
            return None;
        }
        self.long_reported = true;
        Some(Press::Long)
    }
}

/// For `gemlive list-devices`: every GPIO chip (name, label, line count) and its named lines,
/// grouped as unused or in use (with the consumer). No heading; ends with a newline.
/// What to do about a GPIO chip we may not open: plain Debian leaves the chips root-only (no
/// group can help), Raspberry Pi OS gives them to group gpio.
fn permission_hint(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    const RULE: &str = "SUBSYSTEM==\"gpio\", KERNEL==\"gpiochip*\", GROUP=\"gpio\", MODE=\"0660\"";
    let Ok(m) = std::fs::metadata(path) else {
        return "add the user to group gpio (usermod -aG gpio USER, then log in again)".into();
    };
    let group = group_name(m.gid()).unwrap_or_else(|| m.gid().to_string());
    let mode = m.mode() & 0o777;
    if m.gid() == 0 || mode & 0o060 != 0o060 {
        format!(
            "the device is group {group}, mode {mode:o}: no group may use it. The gemlive package's \
             udev rule (/usr/lib/udev/rules.d/60-gemlive.rules) gives GPIO chips to group gpio; \
             without the package, add the rule `{RULE}` and run `sudo udevadm trigger -s gpio`"
        )
    } else {
        format!(
            "the device is group {group}, mode {mode:o}: add the user to group {group} (usermod -aG \
             {group} USER, then log in again), or in a hardened unit allow it with \
             SupplementaryGroups={group} and DeviceAllow=char-gpiochip rw"
        )
    }
}

fn group_name(gid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == gid).then(|| name.to_string())
    })
}

pub fn list_gpio() -> String {
    let paths = match chip_paths() {
        Ok(p) => p,
        Err(e) => return format!("{e}\n"),
    };
    let mut out = String::new();
    for path in paths {
        let name = chip_name(&path);
        let chip = match Chip::from_path(&path) {
            Ok(c) => c,
            Err(e) => {
                let hint = if is_permission(&e) {
                    format!(": {}", permission_hint(&path))
                } else {
                    String::new()
                };
                let _ = writeln!(out, "{name}: cannot open: {e}{hint}");
                continue;
            }
        };
        let info = match chip.info() {
            Ok(i) => i,
            Err(e) => {
                let _ = writeln!(out, "{name}: cannot read: {e}");
                continue;
            }
        };
        let _ = writeln!(out, "{name} [{}], {} lines", info.label, info.num_lines);
        let mut unused = Vec::new();
        let mut used = Vec::new();
        let mut unnamed = 0u32;
        for offset in 0..info.num_lines {
            let Ok(li) = chip.line_info(offset) else {
                unnamed += 1;
                continue;
            };
            if li.name.is_empty() {
                unnamed += 1;
            } else if li.used {
                let by = if li.consumer.is_empty() {
                    "kernel"
                } else {
                    li.consumer.as_str()
                };
                used.push(format!("{} ({by})", li.name));
            } else {
                unused.push(li.name);
            }
        }
        wrap_into(&mut out, "  unused: ", &unused);
        wrap_into(&mut out, "  in use: ", &used);
        if unnamed > 0 {
            let _ = writeln!(
                out,
                "  {unnamed} lines without a name (use chip and offset)"
            );
        }
    }
    out
}

/// Appends `items` after `head`, comma-separated, wrapped at about 100 columns.
fn wrap_into(out: &mut String, head: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let indent = " ".repeat(head.len());
    let mut line = String::from(head);
    let mut line_empty = true;
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() {
            format!("{item},")
        } else {
            item.clone()
        };
        if !line_empty && line.len() + 1 + piece.len() > 100 {
            out.push_str(&line);
            out.push('\n');
            line.clone_from(&indent);
            line_empty = true;
        }
        if !line_empty {
            line.push(' ');
        }
        line.push_str(&piece);
        line_empty = false;
    }
    out.push_str(&line);
    out.push('\n');
}

// ---- resolving lines ----------------------------------------------------------------------

/// The usable `/dev/gpiochip*` paths, in natural order; `NoChips` when there are none.
fn chip_paths() -> Result<Vec<PathBuf>, ButtonError> {
    match gpiocdev::chip::chips() {
        Ok(p) if !p.is_empty() => Ok(p),
        _ => Err(ButtonError::NoChips),
    }
}

fn chip_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn open_chip(path: &Path) -> Result<Chip, ButtonError> {
    Chip::from_path(path).map_err(|e| match errno(&e) {
        Some(EACCES | EPERM) => ButtonError::PermissionDenied {
            path: path.to_path_buf(),
        },
        _ => ButtonError::Request {
            line: chip_name(path),
            source: e,
        },
    })
}

/// A chip given as `gpiochip0`, `/dev/gpiochip0` or its label (`pinctrl-rp1`).
fn find_chip(spec: &str) -> Result<PathBuf, ButtonError> {
    let paths = match chip_paths() {
        Ok(p) => p,
        Err(_) => {
            return Err(ButtonError::ChipNotFound {
                chip: spec.to_string(),
                available: Vec::new(),
            })
        }
    };
    let candidate = if spec.contains('/') {
        PathBuf::from(spec)
    } else {
        Path::new("/dev").join(spec)
    };
    if let Ok(p) = gpiocdev::chip::is_chip(&candidate) {
        return Ok(p);
    }
    let mut available = Vec::new();
    for p in &paths {
        match Chip::from_path(p).and_then(|c| c.info()) {
            Ok(info) if info.label == spec => return Ok(p.clone()),
            Ok(info) => available.push(format!(
                "{} [{}, {} lines]",
                chip_name(p),
                info.label,
                info.num_lines
            )),
            Err(_) => available.push(chip_name(p)),
        }
    }
    Err(ButtonError::ChipNotFound {
        chip: spec.to_string(),
        available,
    })
}

fn resolve(spec: &LineSpec) -> Result<Resolved, ButtonError> {
    match spec {
        LineSpec::Name(name) => find_line(name.trim()),
        LineSpec::ChipOffset { chip, offset } => chip_offset(chip, *offset),
    }
}

fn chip_offset(chip: &str, offset: u32) -> Result<Resolved, ButtonError> {
    let path = find_chip(chip.trim())?;
    let c = open_chip(&path)?;
    let info = c.info().map_err(|e| ButtonError::Request {
        line: chip_name(&path),
        source: e,
    })?;
    if offset >= info.num_lines {
        return Err(ButtonError::OffsetOutOfRange {
            chip: chip_name(&path),
            offset,
            num_lines: info.num_lines,
        });
    }
    let name = c.line_info(offset).map(|li| li.name).unwrap_or_default();
    Ok(Resolved {
        chip: path,
        offset,
        name,
    })
}

/// A line by name, on any chip (the first match, as gpiocdev's lookup finds it).
fn find_line(name: &str) -> Result<Resolved, ButtonError> {
    let paths = chip_paths()?;
    if let Some(found) = gpiocdev::find_named_line(name) {
        return Ok(Resolved {
            chip: found.chip,
            offset: found.info.offset,
            name: found.info.name,
        });
    }
    // Not found: scan, collecting the names for the error.
    // Not found (or limited to one chip): scan, collecting names for the error.
    let mut named = Vec::new();
    let mut opened = 0usize;
    let mut denied = None;
    for path in &paths {
        let c = match Chip::from_path(path) {
            Ok(c) => c,
            Err(e) => {
                if denied.is_none() && is_permission(&e) {
                    denied = Some(path.clone());
                }
                continue;
            }
        };
        opened += 1;
        let Ok(info) = c.info() else { continue };
        for offset in 0..info.num_lines {
            let Ok(li) = c.line_info(offset) else {
                continue;
            };
            if li.name == name {
                return Ok(Resolved {
                    chip: path.clone(),
                    offset,
                    name: li.name,
                });
            }
            if !li.name.is_empty() {
                named.push(li.name);
            }
        }
    }
    if opened == 0 {
        return Err(match denied {
            Some(path) => ButtonError::PermissionDenied { path },
            None => ButtonError::NoChips,
        });
    }
    Err(ButtonError::LineNotFound {
        name: name.to_string(),
        nearest: nearest_name(name, &named),
        named,
    })
}

/// The existing name closest to `wanted`, when it is plausibly a typo: same name in another
/// case, `17` for `GPIO17`, or a small edit distance.
fn nearest_name(wanted: &str, names: &[String]) -> Option<String> {
    let w = wanted.to_ascii_lowercase();
    if let Some(n) = names.iter().find(|n| n.to_ascii_lowercase() == w) {
        return Some(n.clone());
    }
    if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) {
        let g = format!("gpio{w}");
        if let Some(n) = names.iter().find(|n| n.to_ascii_lowercase() == g) {
            return Some(n.clone());
        }
    }
    // Closest first; among equals, the longest shared prefix ("GPIO71": GPIO7 before GPIO1).
    let limit = (w.chars().count() / 3).max(1);
    names
        .iter()
        .map(|n| {
            let l = n.to_ascii_lowercase();
            let prefix = w.bytes().zip(l.bytes()).take_while(|(a, b)| a == b).count();
            (edit_distance(&w, &l), std::cmp::Reverse(prefix), n)
        })
        .filter(|(d, _, _)| *d <= limit)
        .min_by_key(|(d, p, _)| (*d, *p))
        .map(|(_, _, n)| n.clone())
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

// ---- errors -------------------------------------------------------------------------------

/// The OS error number inside a gpiocdev error, if any. gpiocdev wraps it in a type of its
/// private uAPI crate, whose Display is `std::io::Error`'s: "... (os error N)".
fn errno(e: &gpiocdev::Error) -> Option<i32> {
    if let gpiocdev::Error::Os(n) = e {
        return Some(n.0);
    }
    errno_in_text(&e.to_string())
}

/// N from "... (os error N)".
fn errno_in_text(text: &str) -> Option<i32> {
    let start = text.rfind("(os error ")? + "(os error ".len();
    let rest = &text[start..];
    rest[..rest.find(')')?].parse().ok()
}

fn is_permission(e: &gpiocdev::Error) -> bool {
    matches!(errno(e), Some(EACCES | EPERM))
}

fn request_error(e: gpiocdev::Error, found: &Resolved) -> ButtonError {
    match errno(&e) {
        Some(EBUSY) => {
            let consumer = Chip::from_path(&found.chip)
                .and_then(|c| c.line_info(found.offset))
                .ok()
                .map(|li| li.consumer)
                .filter(|c| !c.is_empty());
            ButtonError::Busy {
                line: found.describe(),
                consumer,
            }
        }
        Some(EACCES | EPERM) => ButtonError::PermissionDenied {
            path: found.chip.clone(),
        },
        Some(ENODEV | ENXIO | ENOENT) => ButtonError::DeviceGone {
            line: found.describe(),
        },
        _ => ButtonError::Request {
            line: found.describe(),
            source: e,
        },
    }
}

fn io_error(e: gpiocdev::Error, line: &str, op: &'static str) -> ButtonError {
    match errno(&e) {
        Some(ENODEV | ENXIO) => ButtonError::DeviceGone {
            line: line.to_string(),
        },
        _ => ButtonError::Io {
            line: line.to_string(),
            op,
            source: e,
        },
    }
}

// ---- time ---------------------------------------------------------------------------------

/// The `Instant` of a kernel edge timestamp (`CLOCK_MONOTONIC` ns, the uAPI default clock, and
/// the clock `Instant` uses on Linux). Falls back to now if the clock cannot be read.
fn kernel_instant(timestamp_ns: u64) -> Instant {
    let now = Instant::now();
    match monotonic_ns() {
        Some(mono_ns) => instant_from_timestamp(timestamp_ns, mono_ns, now),
        None => now,
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds.
fn monotonic_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into the timespec it is given, which outlives the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// `now` moved back by the event's age (`mono_now_ns - timestamp_ns`). An age over a minute,
/// or a timestamp in the future, means another clock: then `now`.
fn instant_from_timestamp(timestamp_ns: u64, mono_now_ns: u64, now: Instant) -> Instant {
    match mono_now_ns.checked_sub(timestamp_ns) {
        Some(age) if age <= 60_000_000_000 => {
            now.checked_sub(Duration::from_nanos(age)).unwrap_or(now)
        }
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_millis(800);

    fn ev(edge: Edge, t0: Instant, ms: u64) -> ButtonEvent {
        ButtonEvent {
            edge,
            at: t0 + Duration::from_millis(ms),
        }
    }

    #[test]
    fn short_press_reported_at_release() {
        let t0 = Instant::now();
        let mut t = PressTracker::new(LONG);
        assert_eq!(t.on_event(&ev(Edge::Pressed, t0, 0)), None);
        assert!(t.is_down());
        assert_eq!(t.poll_long(t0 + Duration::from_millis(200)), None);
        assert_eq!(t.on_event(&ev(Edge::Released, t0, 300)), Some(Press::Short));
        assert!(!t.is_down());
        assert_eq!(t.long_press_due(t0), None);
    }

    #[test]
    fn long_press_reported_at_release() {
        let t0 = Instant::now();
        let mut t = PressTracker::new(LONG);
        t.on_event(&ev(Edge::Pressed, t0, 0));
        assert_eq!(t.on_event(&ev(Edge::Released, t0, 800)), Some(Press::Long));
        t.on_event(&ev(Edge::Pressed, t0, 1000));
        assert_eq!(t.on_event(&ev(Edge::Released, t0, 5000)), Some(Press::Long));
        // and a short one after long ones is short again
        t.on_event(&ev(Edge::Pressed, t0, 6000));
        assert_eq!(
            t.on_event(&ev(Edge::Released, t0, 6799)),
            Some(Press::Short)
        );
    }

    #[test]
    fn long_while_held_reported_once_and_release_is_silent() {
        let t0 = Instant::now();
        let mut t = PressTracker::new(LONG);
        t.on_event(&ev(Edge::Pressed, t0, 100));
        assert_eq!(t.long_press_due(t0), Some(t0 + Duration::from_millis(900)));
        // the due time is never in the past
        let late = t0 + Duration::from_secs(5);
        assert_eq!(t.long_press_due(late), Some(late));
        assert_eq!(t.poll_long(t0 + Duration::from_millis(899)), None);
        assert_eq!(
            t.poll_long(t0 + Duration::from_millis(900)),
            Some(Press::Long)
        );
        assert_eq!(t.poll_long(t0 + Duration::from_millis(1500)), None);
        assert_eq!(t.long_press_due(t0 + Duration::from_millis(1500)), None);
        assert_eq!(t.on_event(&ev(Edge::Released, t0, 2000)), None);
        // the next press starts fresh
        t.on_event(&ev(Edge::Pressed, t0, 3000));
        assert_eq!(t.long_press_due(t0), Some(t0 + Duration::from_millis(3800)));
        assert_eq!(
            t.on_event(&ev(Edge::Released, t0, 3100)),
            Some(Press::Short)
        );
    }

    #[test]
    fn spurious_edges_are_ignored() {
        let t0 = Instant::now();
        let mut t = PressTracker::new(LONG);
        // release without press
        assert_eq!(t.on_event(&ev(Edge::Released, t0, 0)), None);
        assert_eq!(t.poll_long(t0 + Duration::from_secs(10)), None);
        assert_eq!(t.long_press_due(t0), None);
        // repeated press keeps the first press time
        t.on_event(&ev(Edge::Pressed, t0, 100));
        assert_eq!(t.on_event(&ev(Edge::Pressed, t0, 850)), None);
        assert_eq!(t.on_event(&ev(Edge::Released, t0, 950)), Some(Press::Long));
        // a second release reports nothing
        assert_eq!(t.on_event(&ev(Edge::Released, t0, 960)), None);
        // repeated press after a Long was polled does not re-arm it
        t.on_event(&ev(Edge::Pressed, t0, 2000));
        assert_eq!(
            t.poll_long(t0 + Duration::from_millis(2800)),
            Some(Press::Long)
        );
        t.on_event(&ev(Edge::Pressed, t0, 2900));
        assert_eq!(t.poll_long(t0 + Duration::from_millis(4000)), None);
        assert_eq!(t.on_event(&ev(Edge::Released, t0, 4100)), None);
    }

    #[test]
    fn zero_threshold_makes_every_press_long() {
        let t0 = Instant::now();
        let mut t = PressTracker::new(Duration::ZERO);
        t.on_event(&ev(Edge::Pressed, t0, 0));
        assert_eq!(t.on_event(&ev(Edge::Released, t0, 0)), Some(Press::Long));
    }

    #[test]
    fn nearest_name_suggestions() {
        let names: Vec<String> = ["ID_SDA", "GPIO2", "GPIO7", "GPIO17", "GPIO27"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(nearest_name("gpio17", &names).as_deref(), Some("GPIO17"));
        assert_eq!(nearest_name("17", &names).as_deref(), Some("GPIO17"));
        assert_eq!(nearest_name("GPIO71", &names).as_deref(), Some("GPIO7"));
        assert_eq!(nearest_name("GPI017", &names).as_deref(), Some("GPIO17"));
        assert_eq!(nearest_name("BUTTON", &names), None);
        assert_eq!(nearest_name("", &names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn line_not_found_message_lists_and_truncates() {
        let named: Vec<String> = (0..58).map(|i| format!("GPIO{i}")).collect();
        let e = ButtonError::LineNotFound {
            name: "GPIO71".into(),
            nearest: nearest_name("GPIO71", &named),
            named,
        };
        let m = e.to_string();
        assert!(m.starts_with("GPIO line \"GPIO71\" not found (did you mean \"GPIO7\"?); named lines: GPIO0, GPIO1,"), "{m}");
        assert!(m.contains("GPIO39, … (18 more)"), "{m}");
        assert!(!m.contains("GPIO40"), "{m}");
        assert!(m.ends_with("(see gpioinfo or gemlive list-devices)"), "{m}");

        let e = ButtonError::LineNotFound {
            name: "X".into(),
            nearest: None,
            named: vec![],
        };
        let m = e.to_string();
        assert!(m.contains("not found; no line has a name"), "{m}");
    }

    #[test]
    fn other_messages() {
        let m = ButtonError::Busy {
            line: "GPIO17 (gpiochip0 offset 17)".into(),
            consumer: Some("gpio-keys".into()),
        }
        .to_string();
        assert!(m.contains("in use by \"gpio-keys\""), "{m}");
        let m = ButtonError::OffsetOutOfRange {
            chip: "gpiochip0".into(),
            offset: 60,
            num_lines: 54,
        }
        .to_string();
        assert!(
            m.contains("gpiochip0 has 54 lines (offsets 0 to 53)"),
            "{m}"
        );
        let m = ButtonError::PermissionDenied {
            path: "/dev/gpiochip0".into(),
        }
        .to_string();
        assert!(
            m.contains("/dev/gpiochip0") && m.contains("group gpio"),
            "{m}"
        );
        // A root-only device (plain Debian): the hint is the udev rule, not a group.
        let dir = std::env::temp_dir().join(format!("gemlive-gpio-perm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dev = dir.join("gpiochip0");
        std::fs::write(&dev, "").unwrap();
        std::fs::set_permissions(&dev, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let m = ButtonError::PermissionDenied { path: dev.clone() }.to_string();
        assert!(
            m.contains("mode 600: no group may use it") && m.contains("60-gemlive.rules"),
            "{m}"
        );
        std::fs::set_permissions(&dev, std::os::unix::fs::PermissionsExt::from_mode(0o660))
            .unwrap();
        let m = ButtonError::PermissionDenied { path: dev }.to_string();
        let own = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(&dir).unwrap());
        if own != 0 {
            assert!(m.contains("add the user to group"), "{m}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        let m = ButtonError::ChipNotFound {
            chip: "gpiochip9".into(),
            available: vec!["gpiochip0 [pinctrl-rp1, 54 lines]".into()],
        }
        .to_string();
        assert!(
            m.contains("\"gpiochip9\"") && m.contains("chips: gpiochip0 [pinctrl-rp1"),
            "{m}"
        );
    }

    #[test]
    fn errno_is_found_in_gpiocdev_errors() {
        let e = gpiocdev::Error::from(std::io::Error::from_raw_os_error(EBUSY));
        assert_eq!(errno(&e), Some(EBUSY));
        assert_eq!(errno(&gpiocdev::Error::InvalidArgument("x".into())), None);
        // gpiocdev's Uapi variant, as it displays
        assert_eq!(
            errno_in_text("uAPI get_line returned: Device or resource busy (os error 16)"),
            Some(EBUSY)
        );
        assert_eq!(errno_in_text("uAPI get_line returned: (os error x)"), None);
    }

    #[test]
    fn kernel_timestamps_map_to_instants() {
        let now = Instant::now();
        let at = instant_from_timestamp(9_700_000_000, 10_000_000_000, now);
        assert_eq!(now.duration_since(at), Duration::from_millis(300));
        // future or very old timestamps (another clock): now
        assert_eq!(
            instant_from_timestamp(11_000_000_000, 10_000_000_000, now),
            now
        );
        assert_eq!(instant_from_timestamp(1, 100_000_000_000, now), now);
        // CLOCK_MONOTONIC and Instant are the same clock: an event 250 ms old is 250 ms old
        let mono = monotonic_ns().expect("CLOCK_MONOTONIC");
        let at = kernel_instant(mono.saturating_sub(250_000_000));
        let age = at.elapsed();
        assert!(
            age >= Duration::from_millis(250) && age < Duration::from_secs(2),
            "{age:?}"
        );
    }

    #[test]
    fn wrapping_keeps_lines_short() {
        let items: Vec<String> = (0..40).map(|i| format!("GPIO{i}")).collect();
        let mut out = String::new();
        wrap_into(&mut out, "  unused: ", &items);
        assert!(out.lines().count() > 1, "{out}");
        assert!(out.lines().all(|l| l.len() <= 100), "{out}");
        assert!(out.starts_with("  unused: GPIO0, GPIO1,"), "{out}");
        assert!(
            out.lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("          GPIO")),
            "{out}"
        );
        assert!(out.trim_end().ends_with("GPIO39"), "{out}");
    }
}
