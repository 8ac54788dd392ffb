//! Every key of the file, declared once: its table, name, accepted values, unit, default,
//! whether a reload (SIGHUP) applies it to the running daemon, and its one-line doc.
//!
//! The parser takes the known keys of each table (for unknown-key errors and their
//! suggestions) and the ranges of the integer keys from here, and [`reference_markdown`]
//! renders the configuration reference of the README from it.

use crate::live::transport::DEFAULT_ENDPOINT;

use super::table::with_keys;

use super::{DEFAULT_MODEL, DEFAULT_VIDEO_DEVICE, DEFAULT_VOICE};

/// First reconnect delay of the jittered exponential backoff, milliseconds.
pub const RECONNECT_INITIAL_DELAY_MS: u64 = 500;
/// The wait after a configuration error doubles up to this, seconds (15 min), or stays at
/// `config_error_delay_s` if that is larger.
pub const CONFIG_ERROR_MAX_DELAY_S: u64 = 900;
/// Allowed width and height of `[video] capture_size`, pixels.
pub const CAPTURE_SIDE_RANGE: std::ops::RangeInclusive<u32> = 16..=8192;

/// The tables of the file, in the order the reference lists them.
pub const SECTIONS: [&str; 11] = [
    "live", "audio", "video", "session", "wake", "button", "tools", "service", "hooks", "metrics",
    "mqtt",
];

/// The values a key takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `true` or `false`.
    Bool,
    /// A string, checked by the key's own rule in the parser.
    Text,
    /// One of these names, case-insensitive.
    Choice(&'static [&'static str]),
    /// An integer in `lo..=hi`; when `zero` is set, 0 is accepted too and means that.
    Int {
        lo: u64,
        hi: u64,
        zero: Option<&'static str>,
    },
    /// A number (integer or float) in `lo..=hi`.
    Float { lo: f64, hi: f64 },
    /// An array of tables (`[[section.key]]`), with rules of its own.
    Tables,
}

/// A default as the reference shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// No default: the feature is off until the key is set.
    Unset,
    /// A TOML number or boolean, written as in the file.
    Literal(&'static str),
    /// A string (written quoted in the file, shown bare in the reference).
    Text(&'static str),
}

/// One key of the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeySpec {
    pub section: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    /// How messages name the unit after an allowed range, e.g. `1..=60 (seconds)`.
    pub unit: &'static str,
    pub default: Shown,
    /// A reload applies a change of this key to the running daemon; otherwise the change waits
    /// for a restart.
    pub live_reload: bool,
    /// The reference's one-line description (Markdown).
    pub doc: &'static str,
}

const fn int(lo: u64, hi: u64) -> Kind {
    Kind::Int { lo, hi, zero: None }
}

const fn zero_or(zero: &'static str, lo: u64, hi: u64) -> Kind {
    Kind::Int {
        lo,
        hi,
        zero: Some(zero),
    }
}

/// Builds [`KEYS`] from the declaration.
macro_rules! key_specs {
    ($( $(#[$sm:meta])* [$sname:ident] $ty:ident $raw:ident $own:ident {
        $( $(#[$fm:meta])* $field:ident : $fty:ty = $default:expr ;
           $kind:expr , $unit:literal , $shown:expr , $live:literal , [$($parse:path)?] , $doc:literal ; )*
    } )*) => {
        /// Every key, table by table in [`SECTIONS`] order.
        pub static KEYS: &[KeySpec] = &[
            $( $(
                KeySpec {
                    section: stringify!($sname),
                    name: stringify!($field),
                    kind: $kind,
                    unit: $unit,
                    default: $shown,
                    live_reload: $live,
                    doc: $doc,
                },
            )* )*
        ];
    };
}

with_keys!(key_specs);

/// The key `name` of table `section`.
pub fn spec(section: &str, name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.section == section && k.name == name)
}

/// The keys of table `section`, in reference order.
pub fn keys_in(section: &str) -> Vec<&'static str> {
    KEYS.iter()
        .filter(|k| k.section == section)
        .map(|k| k.name)
        .collect()
}

/// The allowed range of an integer key.
///
/// # Panics
/// If the table has no integer key of that name: a typo in the parser, caught by every test
/// that reaches the call.
pub fn int_range(section: &str, name: &str) -> std::ops::RangeInclusive<u64> {
    match spec(section, name).map(|k| k.kind) {
        Some(Kind::Int { lo, hi, .. }) => lo..=hi,
        _ => panic!("[{section}] {name} is not an integer key of the table"),
    }
}

/// The allowed range of a number key.
///
/// # Panics
/// If the table has no number key of that name, as [`int_range`].
pub fn float_range(section: &str, name: &str) -> (f64, f64) {
    match spec(section, name).map(|k| k.kind) {
        Some(Kind::Float { lo, hi }) => (lo, hi),
        _ => panic!("[{section}] {name} is not a number key of the table"),
    }
}

impl Shown {
    /// The reference's rendering: a value in backticks, or `unset`.
    pub fn markdown(self) -> String {
        match self {
            Shown::Unset => "unset".to_string(),
            Shown::Literal(l) => format!("`{l}`"),
            Shown::Text("") => "`\"\"`".to_string(),
            Shown::Text(s) => format!("`{s}`"),
        }
    }
}

/// The rows of the README's configuration reference (`| key | default | meaning |`), one line
/// per key, without the header.
pub fn reference_markdown() -> String {
    KEYS.iter()
        .map(|k| {
            format!(
                "| `[{}] {}` | {} | {} |\n",
                k.section,
                k.name,
                k.default.markdown(),
                k.doc
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_reference_is_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("README.md is readable");
        let rows: String = readme
            .lines()
            .filter(|l| l.starts_with("| `["))
            .map(|l| format!("{l}\n"))
            .collect();
        let want = reference_markdown();
        for (got, want) in rows.lines().zip(want.lines()) {
            assert_eq!(got, want, "README.md row differs from config::keys::KEYS");
        }
        assert_eq!(
            rows.lines().count(),
            want.lines().count(),
            "README.md lists a different number of keys than config::keys::KEYS"
        );
    }

    #[test]
    fn docs_state_the_range_and_the_choices() {
        for k in KEYS {
            let what = format!("[{}] {}: {}", k.section, k.name, k.doc);
            match k.kind {
                Kind::Int { lo, hi, zero } => {
                    assert!(k.doc.contains(&format!("{lo}..={hi}")), "{what}");
                    assert!(!k.unit.is_empty(), "{what}: no unit");
                    if zero.is_some() {
                        assert!(k.doc.contains("`0`"), "{what}: 0 not described");
                    }
                }
                Kind::Float { lo, hi } => {
                    let short = format!("{lo}..={hi:.1}");
                    assert!(
                        k.doc.contains(&short) || k.doc.contains(&format!("{lo}..={hi}")),
                        "{what}"
                    )
                }
                Kind::Choice(names) => {
                    for n in names {
                        assert!(k.doc.contains(&format!("`{n}`")), "{what}: {n}");
                    }
                }
                Kind::Bool | Kind::Text | Kind::Tables => {}
            }
        }
    }

    #[test]
    fn keys_are_unique_and_grouped_by_table() {
        let order: Vec<&str> = KEYS.iter().map(|k| k.section).collect();
        let mut grouped = order.clone();
        grouped.dedup();
        assert_eq!(
            grouped, SECTIONS,
            "keys grouped by table, in SECTIONS order"
        );
        for (i, k) in KEYS.iter().enumerate() {
            assert!(
                !KEYS[..i]
                    .iter()
                    .any(|o| o.section == k.section && o.name == k.name),
                "[{}] {} twice",
                k.section,
                k.name
            );
        }
    }

    #[test]
    fn each_default_parses_to_the_typed_default() {
        let path = std::path::Path::new("/etc/gemlive/gemlive.toml");
        let want = super::super::Config::with_defaults(path);
        for k in KEYS {
            let value = match k.default {
                Shown::Unset => continue,
                Shown::Literal(l) => l.to_string(),
                Shown::Text(s) => format!("{s:?}"),
            };
            let text = format!("[{}]\n{} = {value}\n", k.section, k.name);
            match super::super::parse_str(&text, path) {
                Ok(got) => assert_eq!(got, want, "[{}] {}", k.section, k.name),
                Err(e) => panic!("[{}] {} default: {e}", k.section, k.name),
            }
        }
    }

    #[test]
    fn tools_default_is_the_declared_one() {
        assert_eq!(
            crate::tools::settings::ToolsConfig::default(),
            crate::tools::settings::ToolsConfig::declared_default()
        );
    }

    #[test]
    fn wake_default_is_the_declared_one() {
        assert_eq!(
            crate::config::WakeConfig::default(),
            crate::config::WakeConfig::declared_default()
        );
    }

    #[test]
    fn video_default_is_the_declared_one() {
        assert_eq!(
            crate::video::settings::VideoConfig::default(),
            crate::video::settings::VideoConfig::declared_default()
        );
    }

    #[test]
    fn every_listed_choice_parses() {
        let path = std::path::Path::new("/etc/gemlive/gemlive.toml");
        for k in KEYS {
            let Kind::Choice(names) = k.kind else {
                continue;
            };
            for n in names {
                // wake = "button" and push-to-talk need a button; tokens need a source.
                let text = if k.name == "auth" {
                    format!("[live]\nauth = \"{n}\"\ntoken_command = \"/bin/true\"\n").replace(
                        "auth = \"api_key\"\ntoken_command = \"/bin/true\"\n",
                        "auth = \"api_key\"\n",
                    )
                } else if k.section == "button" {
                    format!("[button]\nline = \"GPIO17\"\n{} = \"{n}\"\n", k.name)
                } else {
                    format!(
                        "[{}]\n{} = \"{n}\"\n[button]\nline = \"GPIO17\"\n",
                        k.section, k.name
                    )
                };
                if let Err(e) = super::super::parse_str(&text, path) {
                    panic!("[{}] {} = {n:?}: {e}", k.section, k.name);
                }
            }
        }
    }
}
