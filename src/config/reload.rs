//! What a reload (SIGHUP) may change in the running daemon: every key whose [`KeySpec`] says
//! `live_reload = false` keeps its running value until a restart.

use super::table::with_keys;
use super::*;

/// The outcome of comparing the running configuration with the reloaded file.
#[derive(Debug, Clone, PartialEq)]
pub struct Reload {
    /// The new configuration, with the running value kept for every key that needs a restart.
    pub merged: Config,
    /// The keys that changed but need a restart, as `[section] key`, in reference order.
    pub needs_restart: Vec<String>,
}

/// Per-key access to a table's typed struct, so that the reload can walk [`KEYS`] instead of
/// naming fields by hand.
pub(super) trait KeyAccess {
    /// The keys the accessor handles; a test checks they are exactly the table's keys.
    #[cfg(test)]
    const FIELDS: &'static [&'static str];
    /// `Some(true)` when `key` differs between the two; `None` for a key the struct lacks.
    fn key_differs(&self, other: &Self, key: &str) -> Option<bool>;
    /// Copies `key` from `from`; false for a key the struct lacks.
    fn copy_key(&mut self, from: &Self, key: &str) -> bool;
}

macro_rules! key_access {
    ($ty:ty { $($field:ident),* $(,)? }) => {
        impl KeyAccess for $ty {
            #[cfg(test)]
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];
            fn key_differs(&self, other: &Self, key: &str) -> Option<bool> {
                match key {
                    $(stringify!($field) => Some(self.$field != other.$field),)*
                    _ => None,
                }
            }
            fn copy_key(&mut self, from: &Self, key: &str) -> bool {
                match key {
                    $(stringify!($field) => {
                        self.$field = from.$field.clone();
                        true
                    })*
                    _ => false,
                }
            }
        }
    };
}

/// Generates the accessor of every table and the dispatch by table name.
macro_rules! accessors {
    ($( $(#[$sm:meta])* [$sname:ident] $ty:ident $raw:ident $own:ident {
        $( $(#[$fm:meta])* $field:ident : $fty:ty = $default:expr ;
           $kind:expr , $unit:literal , $shown:expr , $live:literal , [$($parse:path)?] , $doc:literal ; )*
    } )*) => {
        $( key_access!($ty { $($field),* }); )*

        /// Whether `[section] key` differs between `a` and `b`; `None` for a key no accessor
        /// handles.
        pub(super) fn key_differs(a: &Config, b: &Config, section: &str, key: &str) -> Option<bool> {
            match section {
                $(stringify!($sname) => a.$sname.key_differs(&b.$sname, key),)*
                _ => None,
            }
        }

        /// Copies `[section] key` from `from` into `into`; false for a key no accessor handles.
        pub(super) fn copy_key(into: &mut Config, from: &Config, section: &str, key: &str) -> bool {
            match section {
                $(stringify!($sname) => into.$sname.copy_key(&from.$sname, key),)*
                _ => false,
            }
        }

        /// The keys the accessor of table `section` handles.
        #[cfg(test)]
        pub(super) fn accessor_fields(section: &str) -> &'static [&'static str] {
            match section {
                $(stringify!($sname) => <$ty as KeyAccess>::FIELDS,)*
                _ => &[],
            }
        }
    };
}

with_keys!(accessors);

/// Compares the running configuration `old` with the reloaded `new`: keys that a reload
/// applies take their new value, the others keep the running one and are named.
pub fn reload_plan(old: &Config, new: &Config) -> Reload {
    let mut merged = new.clone();
    let mut needs_restart = Vec::new();
    // The endpoint's default follows `auth` (the constrained method for tokens), and the
    // credential cannot change before a restart: the endpoint waits for it too.
    let auth_changed = key_differs(old, new, "live", "auth") == Some(true);
    for k in KEYS.iter() {
        let tied = auth_changed && k.section == "live" && k.name == "endpoint";
        if k.live_reload && !tied {
            continue;
        }
        // Every key has an accessor (tested), so `None` cannot hide a change here.
        if key_differs(old, new, k.section, k.name) == Some(true) {
            copy_key(&mut merged, old, k.section, k.name);
            needs_restart.push(format!("[{}] {}", k.section, k.name));
        }
    }
    Reload {
        merged,
        needs_restart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_an_accessor() {
        let cfg = Config::with_defaults("/x.toml");
        for k in KEYS {
            assert_eq!(
                key_differs(&cfg, &cfg, k.section, k.name),
                Some(false),
                "[{}] {} has no accessor: a reload would ignore it",
                k.section,
                k.name
            );
        }
        for section in SECTIONS {
            assert_eq!(
                accessor_fields(section),
                keys_in(section),
                "the accessor of [{section}] handles other keys than the key table"
            );
        }
    }

    /// A file setting every key to a value other than its default, so each key's change is seen.
    const CHANGED: &str = r#"
[live]
endpoint = "ws://127.0.0.1:9/x"
model = "other-model"
voice = "Puck"
system_instruction = "be brief"
media_resolution = "high"
language_code = "de-DE"
vad_start_sensitivity = "low"
vad_end_sensitivity = "high"
vad_prefix_padding_ms = 100
vad_silence_ms = 900
barge_in = false
google_search = true
thinking_level = "low"
temperature = 0.4
proactive_audio = true
affective_dialog = false
api_key_file = "/k"
auth = "ephemeral"
token_url = "https://tokens.example.com/box"
token_bearer_file = "bearer"
input_transcription = false
output_transcription = false
setup_timeout_ms = 20000
resumption = false
compression_trigger_tokens = 0
compression_target_tokens = 100
max_connection_age_s = 600
ping_interval_s = 20
dead_after_s = 60
stall_after_s = 9
reconnect_max_delay_s = 9
config_error_delay_s = 9
max_message_kb = 100
[audio]
capture_device = "hw:1"
playback_device = "hw:2"
chunk_ms = 20
backlog_ms = 2000
volume = 50
echo = "none"
echo_tail_ms = 100
noise_suppression = "high"
agc = true
pause_on_silence_s = 0
[video]
enabled = false
device = "/dev/video1"
capture_size = "640x480"
fps = 0.5
send = "while_speaking"
size = 512
geometry = "crop"
quality = 50
[session]
wake = "button"
idle_timeout_s = 0
max_session_s = 600
chimes = false
[wake]
model = "alexa"
cutoff = 0.5
window = 3
[button]
chip = "gpiochip0"
offset = 17
active_low = false
bias = "pull_down"
debounce_ms = 10
long_press_ms = 900
mode = "push_to_talk"
led_line = "GPIO27"
mute_line = "GPIO22"
mute_mode = "button"
[tools]
builtin = false
[[tools.command]]
name = "lights"
description = "Lights."
command = ["/bin/true"]
[[tools.http]]
name = "hook"
description = "Hook."
url = "http://127.0.0.1:9/hook"
[[tools.mcp]]
name = "time"
command = ["/bin/true"]
[service]
log_level = "debug"
control_socket = "/run/x/ctl.sock"
[hooks]
on_event = ["/usr/local/bin/led", "log-event"]
timeout_s = 3
[metrics]
textfile = "/var/lib/node_exporter/textfile_collector/gemlive.prom"
listen = "127.0.0.1:9465"
interval_s = 60
[mqtt]
url = "mqtts://broker.lan"
username = "gemlive"
password_file = "mqtt-password"
ca_file = "ca.pem"
discovery_prefix = "ha"
node_id = "kitchen"
"#;

    #[test]
    fn every_key_is_compared_and_copied() {
        let path = std::path::Path::new("/x.toml");
        let old = Config::with_defaults(path);
        let new = parse_str(CHANGED, path).expect("the changed file parses");
        // `line` and `token_command` have alternatives (chip + offset, token_url) that the
        // file sets instead.
        let alternative = |n: &str| n == "line" || n == "token_command";
        for k in KEYS.iter().filter(|k| !alternative(k.name)) {
            let what = format!("[{}] {}", k.section, k.name);
            assert_eq!(
                key_differs(&old, &new, k.section, k.name),
                Some(true),
                "{what}"
            );
            let mut back = new.clone();
            assert!(copy_key(&mut back, &old, k.section, k.name), "{what}");
            assert_eq!(
                key_differs(&old, &back, k.section, k.name),
                Some(false),
                "{what}"
            );
        }
        let plan = reload_plan(&old, &new);
        // CHANGED changes `auth`, so the endpoint waits for the restart with it.
        let waits = |k: &KeySpec| !k.live_reload || (k.section == "live" && k.name == "endpoint");
        let restart: Vec<String> = KEYS
            .iter()
            .filter(|k| waits(k) && !alternative(k.name))
            .map(|k| format!("[{}] {}", k.section, k.name))
            .collect();
        assert_eq!(plan.needs_restart, restart);
        for k in KEYS {
            let kept = if waits(k) { &old } else { &new };
            assert_eq!(
                key_differs(&plan.merged, kept, k.section, k.name),
                Some(false),
                "[{}] {}",
                k.section,
                k.name
            );
        }
    }

    #[test]
    fn an_auth_change_keeps_the_endpoint_until_the_restart() {
        let path = std::path::Path::new("/x.toml");
        let old = parse_str(
            "[live]\nauth = \"ephemeral\"\ntoken_command = \"/bin/t\"\n",
            path,
        )
        .expect("old parses");
        let new = Config::with_defaults(path);
        let plan = reload_plan(&old, &new);
        assert_eq!(plan.merged.live.endpoint, old.live.endpoint);
        assert_eq!(plan.merged.live.auth, Auth::Ephemeral);
        assert!(plan.needs_restart.contains(&"[live] endpoint".to_string()));
        // Without an auth change the endpoint applies at once.
        let mut other = old.clone();
        other.live.endpoint = "ws://127.0.0.1:9/x".into();
        assert_eq!(
            reload_plan(&old, &other).merged.live.endpoint,
            "ws://127.0.0.1:9/x"
        );
    }

    #[test]
    fn reload_applies_volume_and_keeps_chunk_ms() {
        let path = std::path::Path::new("/x.toml");
        let old = parse_str("[audio]\nvolume = 80\nchunk_ms = 40\n", path).expect("old parses");
        let new = parse_str("[audio]\nvolume = 30\nchunk_ms = 60\n", path).expect("new parses");
        let plan = reload_plan(&old, &new);
        assert_eq!(plan.merged.audio.volume, 30);
        assert_eq!(plan.merged.audio.chunk_ms, 40);
        assert_eq!(plan.needs_restart, ["[audio] chunk_ms"]);
    }

    #[test]
    fn an_unchanged_file_needs_no_restart() {
        let cfg = Config::with_defaults("/x.toml");
        let plan = reload_plan(&cfg, &cfg);
        assert_eq!(plan.merged, cfg);
        assert!(plan.needs_restart.is_empty());
    }

    #[test]
    fn live_reload_matches_what_the_daemon_applies() {
        let live: Vec<String> = KEYS
            .iter()
            .filter(|k| k.live_reload)
            .map(|k| format!("[{}] {}", k.section, k.name))
            .collect();
        let want = [
            "[live] endpoint",
            "[live] model",
            "[live] voice",
            "[live] system_instruction",
            "[live] media_resolution",
            "[live] language_code",
            "[live] vad_start_sensitivity",
            "[live] vad_end_sensitivity",
            "[live] vad_prefix_padding_ms",
            "[live] vad_silence_ms",
            "[live] barge_in",
            "[live] google_search",
            "[live] thinking_level",
            "[live] temperature",
            "[live] proactive_audio",
            "[live] affective_dialog",
            "[live] input_transcription",
            "[live] output_transcription",
            "[live] resumption",
            "[live] compression_trigger_tokens",
            "[live] compression_target_tokens",
            "[live] max_message_kb",
            "[audio] backlog_ms",
            "[audio] volume",
            "[audio] pause_on_silence_s",
            "[service] log_level",
        ];
        assert_eq!(live, want);
    }

    /// Keys `gemlive check-config` does not show on their own, each for a reason.
    const NOT_IN_SUMMARY: &[&str] = &[
        // Shown as where the key came from, which `check-config` passes in.
        "[live] api_key_file",
        // Shown with `auth = "ephemeral"` only (the base uses the key).
        "[live] token_command",
        "[live] token_url",
        "[live] token_bearer_file",
        // A button by chip needs both; the summary shows the pair as the button's line.
        "[button] chip",
        "[button] offset",
        // Shown with the mute line only (the base has none).
        "[button] mute_mode",
        // Shown with what they qualify (hooks, the metrics file, the broker URL) only.
        "[hooks] timeout_s",
        "[metrics] interval_s",
        "[mqtt] username",
        "[mqtt] password_file",
        "[mqtt] ca_file",
        "[mqtt] discovery_prefix",
        "[mqtt] node_id",
    ];

    #[test]
    fn every_key_changes_the_summary_or_is_listed_as_not_shown() {
        let path = std::path::Path::new("/x.toml");
        // A button and button wake, so that the keys shown only with them are shown.
        let base = parse_str(
            "[session]\nwake = \"button\"\n[button]\nline = \"GPIO17\"\n",
            path,
        )
        .expect("the base file parses");
        let changed = parse_str(CHANGED, path).expect("the changed file parses");
        let defaults = Config::with_defaults(path);
        let key = Ok(None);
        let before = summary(&base, &key);
        let mut missing = Vec::new();
        for k in KEYS.iter().filter(|k| k.name != "line") {
            let what = format!("[{}] {}", k.section, k.name);
            // `wake` is already "button" in the base: its other value is the default.
            let from = match key_differs(&base, &changed, k.section, k.name) {
                Some(true) => &changed,
                _ => &defaults,
            };
            let mut one = base.clone();
            assert!(copy_key(&mut one, from, k.section, k.name), "{what}");
            if summary(&one, &key) == before && !NOT_IN_SUMMARY.contains(&what.as_str()) {
                missing.push(what);
            }
        }
        assert!(missing.is_empty(), "not in the summary: {missing:?}");
    }
}
