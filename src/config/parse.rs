//! Stages 1 and 2 of reading the file: strict spanned TOML, then validation.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Spanned, Value};

use super::table::with_keys;
use super::*;

/// Validates config text; `path` is used in messages and to resolve a relative `api_key_file`.
pub fn parse_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let ctx = Ctx { path, text };
    if let Err(e) = toml::de::DeTable::parse(text) {
        return Err(ctx.syntax_error(&e));
    }
    let raw: RawConfig = toml::from_str(text).map_err(|e| ctx.serde_error(&e))?;
    ctx.resolve(raw)
}

// ---------------------------------------------------------------------------------------------
// Stage 1: raw, strict, spanned.

pub(super) type RawValue = Option<Spanned<Value>>;

pub(super) const TOP_KEYS: &[&str] = &SECTIONS;

/// Each table with its keys, as the key table declares them.
pub(super) fn sections() -> Vec<(&'static str, Vec<&'static str>)> {
    SECTIONS.iter().map(|t| (*t, keys_in(t))).collect()
}

/// Generates the raw structs, and for each table the parsing of every key the file sets, in
/// declaration order: by the key's own parser if it has one, else by its type's [`FromItem`].
macro_rules! raw_structs {
    ($( $(#[$sm:meta])* [$sname:ident] $ty:ident $raw:ident $own:ident {
        $( $(#[$fm:meta])* $field:ident : $fty:ty = $default:expr ;
           $kind:expr , $unit:literal , $shown:expr , $live:literal , [$($parse:path)?] , $doc:literal ; )*
    } )*) => {
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawConfig {
            $( #[serde(default)] $sname: $raw, )*
        }

        $(
            #[derive(Deserialize, Default)]
            #[serde(deny_unknown_fields)]
            pub(super) struct $raw {
                $( $field: RawValue, )*
            }

            impl $raw {
                fn resolve_into(&self, ctx: &Ctx<'_>, into: &mut $ty) -> Result<(), ConfigError> {
                    $(
                        if let Some(it) = item(stringify!($sname), stringify!($field), &self.$field) {
                            into.$field = parse_key!(ctx, it, $fty, $($parse)?);
                        }
                    )*
                    Ok(())
                }
            }
        )*
    };
}

macro_rules! parse_key {
    ($ctx:ident, $it:ident, $fty:ty,) => {
        <$fty as FromItem>::from_item($ctx, &$it)?
    };
    ($ctx:ident, $it:ident, $fty:ty, $parse:path) => {
        $parse($ctx, &$it)?
    };
}

with_keys!(raw_structs);

/// A key without a rule of its own, parsed by its type as its [`Kind`] says.
pub(super) trait FromItem: Sized {
    fn from_item(ctx: &Ctx<'_>, it: &Item<'_>) -> Result<Self, ConfigError>;
}

impl FromItem for bool {
    fn from_item(ctx: &Ctx<'_>, it: &Item<'_>) -> Result<Self, ConfigError> {
        ctx.boolean(it)
    }
}

macro_rules! int_from_item {
    ($($t:ty),*) => {$(
        impl FromItem for $t {
            fn from_item(ctx: &Ctx<'_>, it: &Item<'_>) -> Result<Self, ConfigError> {
                ctx.int_key(it)
            }
        }
    )*};
}
int_from_item!(u8, u32, u64);

/// Free text, trimmed.
impl FromItem for String {
    fn from_item(ctx: &Ctx<'_>, it: &Item<'_>) -> Result<Self, ConfigError> {
        Ok(ctx.string(it, "a string")?.trim().to_string())
    }
}

/// An optional key that the file sets.
impl<T: FromItem> FromItem for Option<T> {
    fn from_item(ctx: &Ctx<'_>, it: &Item<'_>) -> Result<Self, ConfigError> {
        T::from_item(ctx, it).map(Some)
    }
}

macro_rules! choice_from_item {
    ($($t:ty => $all:expr, $name:expr;)*) => {$(
        impl FromItem for $t {
            fn from_item(ctx: &Ctx<'_>, it: &Item<'_>) -> Result<Self, ConfigError> {
                ctx.choice(it, &$all, $name)
            }
        }
    )*};
}
choice_from_item! {
    MediaResolution => MediaResolution::ALL, MediaResolution::as_str;
    EchoMode => EchoMode::ALL, EchoMode::as_str;
    NoiseSuppression => NoiseSuppression::ALL, NoiseSuppression::as_str;
    VideoSend => VideoSend::ALL, VideoSend::as_str;
    Geometry => GEOMETRIES, geometry_name;
    Wake => Wake::ALL, Wake::as_str;
    Bias => Bias::ALL, Bias::as_str;
    ButtonMode => ButtonMode::ALL, ButtonMode::as_str;
    MuteMode => MuteMode::ALL, MuteMode::as_str;
    LogLevel => LogLevel::ALL, LogLevel::as_str;
    Sensitivity => Sensitivity::ALL, Sensitivity::as_str;
    ThinkingLevel => ThinkingLevel::ALL, ThinkingLevel::as_str;
    Auth => Auth::ALL, Auth::as_str;
}

// ---------------------------------------------------------------------------------------------
// Stage 2: validation.

pub(super) struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

/// A value with its place, for messages.
pub(super) struct Item<'v> {
    table: &'static str,
    key: &'static str,
    value: &'v Value,
    span: Range<usize>,
}

impl<'a> Ctx<'a> {
    fn at(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        ConfigError::At {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    fn syntax_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let msg = one_line(e.message());
        if msg == "duplicate key" {
            let key = self.text.get(span.clone()).unwrap_or("").trim();
            if self.is_table_header(span.start) {
                return self.at(
                    span,
                    format!("duplicate table `[{key}]`: each table may appear only once"),
                );
            }
            return self.at(
                span,
                format!("duplicate key `{key}`: each key may appear only once per table"),
            );
        }
        self.at(span, format!("TOML syntax error: {msg}"))
    }

    fn serde_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let msg = one_line(e.message());
        if let Some(message) = self.unknown_key_message(&msg, &span) {
            return self.at(span, message);
        }
        if let Some((found, expected)) = msg.split_once(", expected struct Raw") {
            let table: String = expected
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect::<String>()
                .to_ascii_lowercase();
            let found = match found.strip_prefix("invalid type: ") {
                Some(f) => format!(", found {f}"),
                None if found.starts_with("invalid length") => " (found [[{table}]])".to_string(),
                None => String::new(),
            };
            let found = found.replace("{table}", &table);
            return self.at(
                span,
                format!("`{table}` must be a table, written as [{table}]{found}"),
            );
        }
        if msg == "duplicate key" {
            return self.syntax_error(e);
        }
        // Anything else: name the key on the value's line if there is one.
        let offset = floor_char_boundary(self.text, span.start);
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        if let Some((key, _)) = self.text[line_start..offset].split_once('=') {
            let key = key.trim();
            if !key.is_empty() && !key.starts_with('[') {
                return self.at(span, format!("invalid value for {key}: {msg}"));
            }
        }
        self.at(span, msg)
    }

    /// Turns serde's "unknown field `x`, expected one of `a`, `b`" into a message naming the
    /// table and the nearest valid key.
    fn unknown_key_message(&self, msg: &str, span: &Range<usize>) -> Option<String> {
        let rest = msg.strip_prefix("unknown field `")?;
        let (name, rest) = rest.split_once('`')?;
        let mut expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        expected.sort_unstable();
        let same = |keys: &[&str]| {
            let mut k = keys.to_vec();
            k.sort_unstable();
            k == expected
        };

        let normalized: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if normalized == "apikey" || normalized == "geminiapikey" {
            return Some(format!(
                "`{name}` does not belong in this file (config files get copied and backed up): \
                 put the key in a file named by api_key_file (chmod 600), in the {API_KEY_ENV} \
                 environment variable, or in the systemd credential {CREDENTIAL_NAME} \
                 (LoadCredential={CREDENTIAL_NAME}:/path/to/key)"
            ));
        }

        let sections = sections();
        if same(TOP_KEYS) {
            if self.is_table_header(span.start) {
                let alias = table_alias(&normalized);
                return Some(match alias.or_else(|| suggest(name, TOP_KEYS)) {
                    Some(s) => format!("unknown table `[{name}]`; did you mean `[{s}]`?"),
                    None => format!(
                        "unknown table `[{name}]`; valid tables: {}",
                        list(TOP_KEYS, |k| format!("[{k}]"))
                    ),
                });
            }
            if let Some((table, _)) = sections.iter().find(|(_, keys)| keys.contains(&name)) {
                return Some(format!(
                    "key `{name}` must be inside a table: put it under [{table}]"
                ));
            }
            return Some(match suggest(name, TOP_KEYS) {
                Some(s) => format!("unknown table `{name}`; did you mean `[{s}]`?"),
                None => format!(
                    "unknown key `{name}` at top level; valid tables: {}",
                    list(TOP_KEYS, |k| format!("[{k}]"))
                ),
            });
        }

        let (table, keys) = sections.iter().find(|(_, keys)| same(keys))?;
        if let Some(hint) = key_alias(table, &normalized) {
            return Some(format!("unknown key `{name}` in [{table}]; {hint}"));
        }
        if let Some((other, _)) = sections
            .iter()
            .find(|(t, keys)| t != table && keys.contains(&name))
        {
            // `device` in [audio]: the user likely meant one of that table's own keys.
            let near: Vec<String> = keys
                .iter()
                .filter(|k| k.contains(name))
                .map(|k| format!("`{k}`"))
                .collect();
            if !near.is_empty() {
                return Some(format!(
                    "unknown key `{name}` in [{table}]; did you mean {}? (`{name}` alone belongs \
                     in [{other}])",
                    near.join(" or ")
                ));
            }
            return Some(format!(
                "unknown key `{name}` in [{table}]; it belongs in [{other}]"
            ));
        }
        Some(match suggest(name, keys) {
            Some(s) => format!("unknown key `{name}` in [{table}]; did you mean `{s}`?"),
            None => format!(
                "unknown key `{name}` in [{table}]; valid keys: {}",
                list(keys, |k| k.to_string())
            ),
        })
    }

    /// True when `offset` sits inside a `[table]` header line.
    fn is_table_header(&self, offset: usize) -> bool {
        let offset = floor_char_boundary(self.text, offset);
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        self.text[line_start..offset].trim_start().starts_with('[')
    }

    fn resolve(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let mut cfg = Config::with_defaults(self.path);
        let RawConfig {
            live,
            audio,
            video,
            session,
            wake,
            button,
            service,
            tools,
            hooks,
            metrics,
            mqtt,
        } = raw;

        live.resolve_into(self, &mut cfg.live)?;
        self.check_compression(&cfg.live, &live)?;
        self.check_liveness(&cfg.live, &live)?;
        self.check_auth(&mut cfg.live, &live)?;
        audio.resolve_into(self, &mut cfg.audio)?;
        video.resolve_into(self, &mut cfg.video)?;
        session.resolve_into(self, &mut cfg.session)?;
        wake.resolve_into(self, &mut cfg.wake)?;
        cfg.button = self.button(&button)?;
        service.resolve_into(self, &mut cfg.service)?;
        tools.resolve_into(self, &mut cfg.tools)?;
        hooks.resolve_into(self, &mut cfg.hooks)?;
        metrics.resolve_into(self, &mut cfg.metrics)?;
        mqtt.resolve_into(self, &mut cfg.mqtt)?;
        // Names are unique across all kinds of tool.
        for (i, h) in cfg.tools.http.iter().enumerate() {
            if cfg.tools.command.iter().any(|c| c.name == h.name) {
                let span = self.nth_header("tools.http", i).unwrap_or(0..0);
                return Err(self.at(
                    span,
                    format!(
                        "[[tools.http]] #{}: tool `{}` is declared twice (also a [[tools.command]])",
                        i + 1,
                        h.name
                    ),
                ));
            }
        }

        // A button is needed by wake = "button" (unless the control interface can wake it)
        // and by push-to-talk.
        if !cfg.button.configured() {
            let needs = [
                (
                    cfg.session.wake == Wake::Button
                        && cfg.service.control_socket.is_none()
                        && cfg.mqtt.url.is_none(),
                    "wake",
                    &session.wake,
                ),
                (
                    cfg.button.mode == ButtonMode::PushToTalk,
                    "mode",
                    &button.mode,
                ),
            ];
            for (used, key, raw) in needs {
                if let (true, Some(sp)) = (used, raw) {
                    let value = match key {
                        "wake" => cfg.session.wake.as_str(),
                        _ => cfg.button.mode.as_str(),
                    };
                    return Err(self.at(
                        sp.span(),
                        format!(
                            "{key} = \"{value}\" needs a button: set line (e.g. \"GPIO17\") or \
                             chip + offset in [button]{}",
                            if key == "wake" {
                                ", or control_socket in [service] to wake it with `gemlive ctl wake`, \
                                 or url in [mqtt] to wake it from Home Assistant"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
            }
        }
        Ok(cfg)
    }

    fn endpoint(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let s = self.string(it, "a string (wss://HOST/PATH)")?;
        let s = s.trim();
        crate::live::transport::Endpoint::parse(s).map_err(|e| {
            self.at(
                it.span.clone(),
                format!("invalid value {} for endpoint in [live]: {e}", quote(s)),
            )
        })?;
        Ok(s.to_string())
    }

    /// A model name, stored with its `models/` prefix.
    fn model(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let s = self.string(it, "a string (model name)")?.trim();
        let bare = s
            .strip_prefix("models/")
            .or_else(|| s.strip_prefix("tunedModels/"))
            .unwrap_or(s);
        if bare.is_empty() || s.chars().any(char::is_whitespace) {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value {} for model in [live]; expected a model name such as \
                     \"{DEFAULT_MODEL}\"",
                    quote(s)
                ),
            ));
        }
        Ok(
            if s.starts_with("models/") || s.starts_with("tunedModels/") {
                s.to_string()
            } else {
                format!("models/{s}")
            },
        )
    }

    /// A known voice (case-insensitive) is stored in its canonical case; any other name is
    /// kept as written, because the service adds voices faster than a release does. Unknown
    /// names are warned about by [`super::warnings`].
    fn voice(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let s = self.string(it, "a string (voice name)")?.trim();
        if let Some(v) = VOICES.iter().find(|v| v.eq_ignore_ascii_case(s)) {
            return Ok(v.to_string());
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if s.is_empty() || s.len() > 64 || !s.chars().all(ok) {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value {} for voice in [live]; a voice name is letters, digits, \
                     `-`, `_` and `.` (at most 64), e.g. \"{DEFAULT_VOICE}\"",
                    quote(s)
                ),
            ));
        }
        Ok(s.to_string())
    }

    /// A BCP-47 tag: a 2–3 letter language, then subtags of 1–8 letters or digits.
    fn language_code(&self, it: &Item<'_>) -> Result<Option<String>, ConfigError> {
        let s = self
            .string(it, "a string (a language tag such as \"de-DE\")")?
            .trim();
        let mut parts = s.split('-');
        let lang_ok = parts.next().is_some_and(|l| {
            (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic())
        });
        let rest_ok = parts
            .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if lang_ok && rest_ok && s.len() <= 35 {
            return Ok(Some(s.to_string()));
        }
        Err(self.at(
            it.span.clone(),
            format!(
                "invalid value {} for language_code in [live]; expected a BCP-47 language tag \
                 such as \"de-DE\", \"en-US\" or \"fr\"",
                quote(s)
            ),
        ))
    }

    fn temperature(&self, it: &Item<'_>) -> Result<Option<f64>, ConfigError> {
        let (lo, hi) = float_range("live", "temperature");
        let v = match it.value {
            Value::Float(f) => *f,
            Value::Integer(n) => *n as f64,
            _ => return Err(self.wrong_type(it, &format!("a number in {lo:.1}..={hi:.1}"))),
        };
        if (lo..=hi).contains(&v) {
            return Ok(Some(v));
        }
        Err(self.at(
            it.span.clone(),
            format!("invalid value {v} for temperature in [live]; allowed: {lo:.1}..={hi:.1}"),
        ))
    }

    /// A program path, or a list: the program (a path) and its arguments.
    fn token_command(&self, it: &Item<'_>) -> Result<Vec<String>, ConfigError> {
        let example = "/usr/local/bin/gemlive-token";
        let (program, args): (&Value, &[Value]) = match it.value {
            Value::Array(a) if !a.is_empty() => (&a[0], &a[1..]),
            Value::Array(_) => {
                return Err(self.at(
                    it.span.clone(),
                    format!(
                        "invalid value [] for token_command in [live]; give the program, e.g. \
                         [\"{example}\"], or remove the line"
                    ),
                ))
            }
            v => (v, &[]),
        };
        let sub = |value| Item {
            table: it.table,
            key: it.key,
            value,
            span: it.span.clone(),
        };
        let mut argv = vec![self
            .some_path(&sub(program), example)?
            .display()
            .to_string()];
        for a in args {
            argv.push(self.string(&sub(a), "a list of strings")?.to_string());
        }
        Ok(argv)
    }

    /// `https://` anywhere, `http://` only to loopback: the box's own credential goes with it.
    fn token_url(&self, it: &Item<'_>) -> Result<Option<String>, ConfigError> {
        let s = self.string(it, "a string (https://…)")?.trim();
        crate::token::check_url(s).map_err(|e| {
            self.at(
                it.span.clone(),
                format!("invalid value {} for token_url in [live]: {e}", quote(s)),
            )
        })?;
        Ok(Some(s.to_string()))
    }

    fn token_bearer_file(&self, it: &Item<'_>) -> Result<Option<PathBuf>, ConfigError> {
        self.some_path(it, "/etc/gemlive/token-bearer").map(Some)
    }

    /// A path; `~` is refused, a relative path is relative to the config file's directory.
    fn api_key_file(&self, it: &Item<'_>) -> Result<Option<PathBuf>, ConfigError> {
        let s = self.string(it, "a string (path to the key file)")?;
        if s.trim().is_empty() {
            return Err(self.at(
                it.span.clone(),
                "invalid value \"\" for api_key_file in [live]; give the path of a file \
                 holding only the key, or remove the line",
            ));
        }
        if s.starts_with('~') {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value {} for api_key_file in [live]: `~` is not expanded; \
                     write the full path",
                    quote(s)
                ),
            ));
        }
        let p = Path::new(s);
        Ok(Some(if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new("")).join(p)
        }))
    }

    /// A path that must not be empty or start with `~`; relative to the config file's directory.
    fn some_path(&self, it: &Item<'_>, example: &str) -> Result<PathBuf, ConfigError> {
        let s = self.string(it, "a string (a path)")?.trim();
        if s.is_empty() || s.starts_with('~') {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value {} for {} in [{}]; give a full path such as \"{example}\", \
                     or remove the line",
                    quote(s),
                    it.key,
                    it.table
                ),
            ));
        }
        let p = Path::new(s);
        Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new("")).join(p)
        })
    }

    /// `on_event`: one path or a list of them.
    fn hook_programs(&self, it: &Item<'_>) -> Result<Vec<PathBuf>, ConfigError> {
        let example = "/usr/local/bin/gemlive-hook";
        match it.value {
            Value::Array(a) => a
                .iter()
                .map(|v| {
                    self.some_path(
                        &Item {
                            table: it.table,
                            key: it.key,
                            value: v,
                            span: it.span.clone(),
                        },
                        example,
                    )
                })
                .collect(),
            _ => Ok(vec![self.some_path(it, example)?]),
        }
    }

    fn metrics_textfile(&self, it: &Item<'_>) -> Result<Option<PathBuf>, ConfigError> {
        self.some_path(it, "/var/lib/node_exporter/textfile_collector/gemlive.prom")
            .map(Some)
    }

    fn metrics_listen(&self, it: &Item<'_>) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let s = self.string(it, "a string (ADDRESS:PORT)")?.trim();
        s.parse().map(Some).map_err(|_| {
            self.at(
                it.span.clone(),
                format!(
                    "invalid value {} for listen in [metrics]; expected ADDRESS:PORT such as \
                     \"127.0.0.1:9465\"",
                    quote(s)
                ),
            )
        })
    }

    fn mqtt_url(&self, it: &Item<'_>) -> Result<Option<String>, ConfigError> {
        let s = self.string(it, "a string (mqtt://HOST[:PORT])")?.trim();
        crate::mqtt::Broker::parse(s).map_err(|e| {
            self.at(
                it.span.clone(),
                format!("invalid value {} for url in [mqtt]: {e}", quote(s)),
            )
        })?;
        Ok(Some(s.to_string()))
    }

    fn mqtt_password_file(&self, it: &Item<'_>) -> Result<Option<PathBuf>, ConfigError> {
        self.some_path(it, "/etc/gemlive/mqtt-password").map(Some)
    }

    fn mqtt_ca_file(&self, it: &Item<'_>) -> Result<Option<PathBuf>, ConfigError> {
        self.some_path(it, "/etc/gemlive/mqtt-ca.pem").map(Some)
    }

    /// A topic level: letters, digits, `_`, `-` (no `/`, `+`, `#`, spaces).
    fn mqtt_topic_part(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let s = self.string(it, "a string")?.trim();
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if (it.key == "discovery_prefix" && s.is_empty()) || !s.chars().all(ok) {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value {} for {} in [mqtt]; use letters, digits, `_` and `-` only",
                    quote(s),
                    it.key
                ),
            ));
        }
        Ok(s.to_string())
    }

    fn control_socket(&self, it: &Item<'_>) -> Result<Option<PathBuf>, ConfigError> {
        let s = self.string(it, "a string (path of the socket)")?;
        if s.trim().is_empty() || s.starts_with('~') {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value {} for control_socket in [service]; give a full path such \
                     as \"/run/gemlive/control.sock\", or remove the line",
                    quote(s)
                ),
            ));
        }
        let p = Path::new(s.trim());
        Ok(Some(if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new("")).join(p)
        }))
    }

    fn button(&self, raw: &RawButton) -> Result<ButtonConfig, ConfigError> {
        let mut b = ButtonConfig::default();
        raw.resolve_into(self, &mut b)?;
        self.check_button_line(raw)?;
        let lines = [
            ("the button's own line", b.input()),
            ("the LED's line", b.led()),
        ];
        if let (Some(mute), Some(sp)) = (b.mute(), &raw.mute_line) {
            if let Some((what, _)) = lines
                .iter()
                .find(|(_, l)| l.as_ref().is_some_and(|l| same_line(l, &mute)))
            {
                return Err(self.at(
                    sp.span(),
                    format!(
                        "invalid value {} for mute_line in [button]: that is {what}; the mute \
                         switch needs a line of its own, e.g. \"GPIO22\"",
                        quote(b.mute_line.as_deref().unwrap_or_default())
                    ),
                ));
            }
        }
        if let (Some(led), Some(input), Some(sp)) = (b.led(), b.input(), &raw.led_line) {
            if same_line(&led, &input) {
                return Err(self.at(
                    sp.span(),
                    format!(
                        "invalid value {} for led_line in [button]: that is the button's own \
                         line; the LED needs a line of its own, e.g. \"GPIO27\"",
                        quote(b.led_line.as_deref().unwrap_or_default())
                    ),
                ));
            }
        }
        Ok(b)
    }

    /// `line` excludes `chip`/`offset` (the error sits at whichever comes second in the file);
    /// `chip` and `offset` go together.
    fn check_button_line(&self, raw: &RawButton) -> Result<(), ConfigError> {
        let line = raw.line.as_ref().map(|sp| ("line", sp));
        let chip = raw.chip.as_ref().map(|sp| ("chip", sp));
        let offset = raw.offset.as_ref().map(|sp| ("offset", sp));
        let shown = |(key, sp): (&str, &Spanned<Value>)| match sp.get_ref() {
            Value::String(s) => format!("{key} = {}", quote(s.trim())),
            Value::Integer(n) => format!("{key} = {n}"),
            other => format!("{key} ({})", describe(other)),
        };
        if let Some(l) = line {
            let first_of_pair = [chip, offset]
                .into_iter()
                .flatten()
                .min_by_key(|(_, sp)| sp.span().start);
            if let Some(p) = first_of_pair {
                let (first, second) = if p.1.span().start > l.1.span().start {
                    (l, p)
                } else {
                    (p, l)
                };
                return Err(self.at(
                    second.1.span(),
                    format!(
                        "{} in [button] conflicts with {}: name the button's line either by \
                         line (e.g. \"GPIO17\") or by chip + offset, not both",
                        shown(second),
                        shown(first)
                    ),
                ));
            }
        }
        match (chip, offset) {
            (Some(c), None) => Err(self.at(
                c.1.span(),
                format!(
                    "{} in [button] needs offset too: the line's offset on that chip, {}..={} \
                     (see `gpioinfo`); or name the line instead, e.g. line = \"GPIO17\"",
                    shown(c),
                    int_range("button", "offset").start(),
                    int_range("button", "offset").end()
                ),
            )),
            (None, Some(o)) => Err(self.at(
                o.1.span(),
                format!(
                    "{} in [button] needs chip too, e.g. chip = \"gpiochip0\" (see `gpioinfo`); \
                     or name the line instead, e.g. line = \"GPIO17\"",
                    shown(o)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// A GPIO line name for the button: trimmed, non-empty, not a bare number or `CHIP:OFFSET`.
    fn line_name(&self, it: &Item<'_>) -> Result<Option<String>, ConfigError> {
        let expected = "a string, a GPIO line name such as \"GPIO17\"";
        let s = match it.value {
            Value::String(s) => s.trim(),
            Value::Integer(n) => {
                return Err(self.at(
                    it.span.clone(),
                    format!(
                        "wrong type for line in [button]: expected {expected}, found integer \
                         {n}; write line = \"GPIO{n}\" for the Raspberry Pi's GPIO {n}, or give \
                         the chip too: chip = \"gpiochip0\" and offset = {n}"
                    ),
                ))
            }
            _ => return Err(self.wrong_type(it, expected)),
        };
        let bad = |why: String| {
            self.at(
                it.span.clone(),
                format!("invalid value {} for line in [button]{why}", quote(s)),
            )
        };
        if s.is_empty() {
            return Err(bad(
                "; expected a GPIO line name such as \"GPIO17\" (see `gpioinfo` or `gemlive \
                 list-devices`), or leave line unset for no button"
                    .to_string(),
            ));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!(
                ": a line name, not a number; write \"GPIO{s}\" for the Raspberry Pi's GPIO {s} \
                 (header names use the GPIO number, not the physical pin number), or give the \
                 chip: chip = \"gpiochip0\" and offset = {s}"
            )));
        }
        if let Some(LineSpec::ChipOffset { chip, offset }) = LineSpec::parse(s) {
            return Err(bad(format!(
                ": for a chip and an offset write chip = {} and offset = {offset} instead",
                quote(&chip)
            )));
        }
        Ok(Some(s.to_string()))
    }

    /// A GPIO chip: `gpiochip0` or `/dev/gpiochip0`; trimmed, non-empty, no spaces.
    fn chip(&self, it: &Item<'_>) -> Result<Option<String>, ConfigError> {
        let s = self
            .string(it, "a string, a GPIO chip such as \"gpiochip0\"")?
            .trim();
        let hint = "expected a GPIO chip such as \"gpiochip0\" or \"/dev/gpiochip0\" (see \
                    `gpioinfo`)";
        let why = if s.is_empty() {
            format!("; {hint}, or leave chip unset and use line (e.g. \"GPIO17\")")
        } else if s.bytes().all(|b| b.is_ascii_digit()) {
            format!("; {hint}: write \"gpiochip{s}\"")
        } else if s.chars().any(char::is_whitespace) {
            format!("; {hint}")
        } else {
            return Ok(Some(s.to_string()));
        };
        Err(self.at(
            it.span.clone(),
            format!("invalid value {} for chip in [button]{why}", quote(s)),
        ))
    }

    /// The LED's line: a line name or `CHIP:OFFSET`, offset in the range of `[button] offset`.
    fn led_line(&self, it: &Item<'_>) -> Result<Option<String>, ConfigError> {
        self.extra_line(it, "led_line", "GPIO27", "no LED")
    }

    /// The mute switch's line, in the same forms as `led_line`.
    fn mute_line(&self, it: &Item<'_>) -> Result<Option<String>, ConfigError> {
        self.extra_line(it, "mute_line", "GPIO22", "no mute switch")
    }

    /// A line other than the button's: a line name or `CHIP:OFFSET`.
    fn extra_line(
        &self,
        it: &Item<'_>,
        key: &str,
        example: &str,
        unset: &str,
    ) -> Result<Option<String>, ConfigError> {
        let n = example.trim_start_matches("GPIO");
        let form = format!(
            "a line name such as \"{example}\" or \"CHIP:OFFSET\" such as \"gpiochip0:{n}\""
        );
        let s = self.string(it, &format!("a string, {form}"))?.trim();
        let bad = |why: &str| {
            self.at(
                it.span.clone(),
                format!("invalid value {} for {key} in [button]{why}", quote(s)),
            )
        };
        let offsets = int_range("button", "offset");
        let (lo, hi) = (offsets.start(), offsets.end());
        if s.is_empty() {
            return Err(bad(&format!(
                "; expected {form}, or leave {key} unset for {unset}"
            )));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!(
                ": a line name, not a number; write \"GPIO{s}\" for the Raspberry Pi's GPIO {s}, \
                 or \"gpiochip0:{s}\" for offset {s} on gpiochip0"
            )));
        }
        if let Some((chip, n)) = s.rsplit_once(':') {
            let (chip, n) = (chip.trim(), n.trim());
            let offset_ok = !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && n.parse::<u64>().is_ok_and(|o| offsets.contains(&o));
            if chip.is_empty() || chip.chars().any(char::is_whitespace) || !offset_ok {
                return Err(bad(&format!("; expected {form} (the offset {lo}..={hi})")));
            }
        }
        Ok(Some(s.to_string()))
    }

    /// `[[tools.command]]`.
    fn command_tools(&self, it: &Item<'_>) -> Result<Vec<CommandTool>, ConfigError> {
        self.tool_entries(it, "command", crate::tools::settings::command_tools)
    }

    /// `[[tools.http]]` (a relative token file is relative to the config file).
    fn http_tools(&self, it: &Item<'_>) -> Result<Vec<HttpTool>, ConfigError> {
        let base = self.path.parent().unwrap_or(Path::new(""));
        self.tool_entries(it, "http", |v| {
            crate::tools::settings::http_tools(v, &[], base)
        })
    }

    /// `[[tools.mcp]]` (a relative token file is relative to the config file).
    fn mcp_servers(&self, it: &Item<'_>) -> Result<Vec<McpServer>, ConfigError> {
        let base = self.path.parent().unwrap_or(Path::new(""));
        self.tool_entries(it, "mcp", |v| crate::tools::settings::mcp_servers(v, base))
    }

    /// An array of `[[tools.KIND]]` tables, parsed by the tools module; an error points at the
    /// entry's own header.
    fn tool_entries<T>(
        &self,
        it: &Item<'_>,
        kind: &str,
        parse: impl FnOnce(&Value) -> Result<Vec<T>, crate::tools::settings::EntryError>,
    ) -> Result<Vec<T>, ConfigError> {
        let header = format!("tools.{kind}");
        let tables = it
            .value
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_table));
        if !tables {
            return Err(self.wrong_type(it, &format!("[[{header}]] entries")));
        }
        parse(it.value).map_err(|e| {
            let span = self
                .nth_header(&header, e.index)
                .unwrap_or_else(|| it.span.clone());
            self.at(
                span,
                format!("[[{header}]] #{}: {}", e.index + 1, e.message),
            )
        })
    }

    /// Where the `n`-th (0-based) `[[name]]` header is, if the text has one.
    fn nth_header(&self, name: &str, n: usize) -> Option<Range<usize>> {
        let mut offset = 0;
        let mut seen = 0;
        for line in self.text.split_inclusive('\n') {
            let bare: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            if bare.starts_with(&format!("[[{name}]]")) {
                if seen == n {
                    let start = offset + (line.len() - line.trim_start().len());
                    return Some(start..start + line.trim().len());
                }
                seen += 1;
            }
            offset += line.len();
        }
        None
    }

    fn video_device(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let s = self
            .string(it, "a string (camera device or .mjpeg file path)")?
            .trim();
        if s.is_empty() {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value \"\" for device in [video]; expected a V4L2 capture device \
                     such as \"{DEFAULT_VIDEO_DEVICE}\" (see `gemlive list-devices`) or the path \
                     of an .mjpeg file; to run without a camera set enabled = false"
                ),
            ));
        }
        Ok(s.to_string())
    }

    /// `"auto"` (→ `None`) or `"WIDTHxHEIGHT"`, each side in [`CAPTURE_SIDE_RANGE`].
    fn capture_size<'v>(&self, it: &Item<'v>) -> Result<Option<(u32, u32)>, ConfigError> {
        let (lo, hi) = (CAPTURE_SIDE_RANGE.start(), CAPTURE_SIDE_RANGE.end());
        let form = format!(
            "\"auto\" or \"WIDTHxHEIGHT\" such as \"1280x720\" (each side {lo}..={hi} pixels)"
        );
        let s = self.string(it, &format!("a string, {form}"))?;
        let t = s.trim();
        if t.eq_ignore_ascii_case("auto") {
            return Ok(None);
        }
        let side = |p: &'v str| {
            let p = p.trim();
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).then_some(p)
        };
        let parsed = t
            .split_once(['x', 'X', '×'])
            .and_then(|(w, h)| Some((side(w)?, side(h)?)));
        let Some((w, h)) = parsed else {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value {} for capture_size in [video]; expected {form}",
                    quote(s)
                ),
            ));
        };
        let fits = |n: &str| {
            n.parse::<u32>()
                .ok()
                .filter(|n| CAPTURE_SIDE_RANGE.contains(n))
        };
        match (fits(w), fits(h)) {
            (Some(w), Some(h)) => Ok(Some((w, h))),
            (bad_w, _) => {
                let (what, n) = if bad_w.is_none() {
                    ("width", w)
                } else {
                    ("height", h)
                };
                Err(self.at(
                    it.span.clone(),
                    format!(
                        "invalid value {} for capture_size in [video]: {what} {n} is out of \
                         range; allowed: {form}",
                        quote(s)
                    ),
                ))
            }
        }
    }

    /// A number (integer or float) in the range of `[video] fps`.
    /// A shipped model's name, or a manifest file that exists (read when the detector starts).
    fn wake_model(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let s = self.string(it, "a model name or the path to a manifest")?;
        let t = s.trim();
        if crate::wake::BUILTIN.contains(&t) {
            return Ok(t.to_string());
        }
        if t.ends_with(".json") && std::path::Path::new(t).is_file() {
            return Ok(t.to_string());
        }
        Err(self.at(
            it.span.clone(),
            format!(
                "invalid value {t:?} for model in [wake]; allowed: {}, or the path to an existing microWakeWord manifest (.json)",
                crate::wake::BUILTIN.join(", ")
            ),
        ))
    }

    fn wake_cutoff(&self, it: &Item<'_>) -> Result<Option<f64>, ConfigError> {
        let (lo, hi) = float_range("wake", "cutoff");
        let v = match it.value {
            Value::Float(f) => *f,
            _ => return Err(self.wrong_type(it, &format!("a number in {lo}..={hi}"))),
        };
        if (lo..=hi).contains(&v) {
            return Ok(Some(v));
        }
        Err(self.at(
            it.span.clone(),
            format!("invalid value {v} for cutoff in [wake]; allowed: {lo}..={hi} (a probability)"),
        ))
    }

    fn fps(&self, it: &Item<'_>) -> Result<f64, ConfigError> {
        let (lo, hi) = float_range("video", "fps");
        let allowed = format!("{lo}..={hi:.1} (frames per second)");
        let v = match it.value {
            Value::Float(f) => *f,
            Value::Integer(n) => *n as f64,
            _ => return Err(self.wrong_type(it, &format!("a number in {allowed}"))),
        };
        if (lo..=hi).contains(&v) {
            return Ok(v);
        }
        let shown = match it.value {
            Value::Integer(n) => n.to_string(),
            _ => v.to_string(),
        };
        let why = if v > hi {
            "; the Live API takes at most 1 frame per second"
        } else {
            ""
        };
        Err(self.at(
            it.span.clone(),
            format!("invalid value {shown} for fps in [video]; allowed: {allowed}{why}"),
        ))
    }

    fn wrong_type(&self, it: &Item<'_>, expected: &str) -> ConfigError {
        self.at(
            it.span.clone(),
            format!(
                "wrong type for {} in [{}]: expected {expected}, found {}",
                it.key,
                it.table,
                describe(it.value)
            ),
        )
    }

    fn string<'v>(&self, it: &Item<'v>, expected: &str) -> Result<&'v str, ConfigError> {
        match it.value {
            Value::String(s) => Ok(s),
            _ => Err(self.wrong_type(it, expected)),
        }
    }

    fn boolean(&self, it: &Item<'_>) -> Result<bool, ConfigError> {
        match it.value {
            Value::Boolean(b) => Ok(*b),
            _ => Err(self.wrong_type(it, "true or false (without quotes)")),
        }
    }

    /// An integer key, in the range (and with the unit) its [`KeySpec`] gives, converted to the
    /// field's type.
    fn int_key<T: TryFrom<u64>>(&self, it: &Item<'_>) -> Result<T, ConfigError> {
        let (lo, hi, zero, unit) = match spec(it.table, it.key) {
            Some(KeySpec {
                kind: Kind::Int { lo, hi, zero },
                unit,
                ..
            }) => (*lo, *hi, *zero, *unit),
            _ => panic!(
                "[{}] {} is not an integer key of the table",
                it.table, it.key
            ),
        };
        let (expected, allowed) = match zero {
            Some(z) => ("an integer, ", format!("0 ({z}) or {lo}..={hi} ({unit})")),
            None => ("an integer in ", format!("{lo}..={hi} ({unit})")),
        };
        let ok = |v: u64| (zero.is_some() && v == 0) || (lo..=hi).contains(&v);
        let v = self.int_where(it, ok, expected, &allowed)?;
        T::try_from(v).map_err(|_| self.out_of(it, &allowed))
    }

    /// A non-negative integer accepted by `ok`; `allowed` describes the accepted values (with
    /// the unit) and follows `expected` in the wrong-type message.
    fn int_where(
        &self,
        it: &Item<'_>,
        ok: impl Fn(u64) -> bool,
        expected: &str,
        allowed: &str,
    ) -> Result<u64, ConfigError> {
        let Value::Integer(n) = it.value else {
            return Err(self.wrong_type(it, &format!("{expected}{allowed}")));
        };
        match u64::try_from(*n) {
            Ok(v) if ok(v) => Ok(v),
            _ => Err(self.out_of(it, allowed)),
        }
    }

    fn out_of(&self, it: &Item<'_>, allowed: &str) -> ConfigError {
        self.at(
            it.span.clone(),
            format!(
                "invalid value {} for {} in [{}]; allowed: {allowed}",
                match it.value {
                    Value::Integer(n) => n.to_string(),
                    other => describe(other),
                },
                it.key,
                it.table
            ),
        )
    }

    /// With compression on, the target must be below the trigger. The error sits at the
    /// target's value if the file sets it, else at the trigger's.
    fn check_compression(&self, l: &LiveConfig, raw: &RawLive) -> Result<(), ConfigError> {
        let (trigger, target) = (l.compression_trigger_tokens, l.compression_target_tokens);
        let triggers = int_range("live", "compression_trigger_tokens");
        if trigger == 0 || target < trigger {
            return Ok(());
        }
        let default = |sp: &RawValue| if sp.is_some() { "" } else { ", the default" };
        let (span, message) = match (
            &raw.compression_target_tokens,
            &raw.compression_trigger_tokens,
        ) {
            (Some(sp), _) => (
                sp.span(),
                format!(
                    "invalid value {target} for compression_target_tokens in [live]: must be \
                     less than compression_trigger_tokens ({trigger}{}); allowed: 0..={} \
                     (tokens), or set compression_trigger_tokens = 0 to turn compression off",
                    default(&raw.compression_trigger_tokens),
                    trigger - 1
                ),
            ),
            (None, Some(sp)) => (
                sp.span(),
                format!(
                    "invalid value {trigger} for compression_trigger_tokens in [live]: must be \
                     greater than compression_target_tokens ({target}, the default); allowed: \
                     0 (compression off) or {}..={} (tokens), or set compression_target_tokens \
                     lower as well",
                    (target + 1).max(*triggers.start()),
                    triggers.end()
                ),
            ),
            (None, None) => return Ok(()), // the defaults are consistent
        };
        Err(self.at(span, message))
    }

    /// `dead_after_s` must exceed `ping_interval_s`. The error sits at `dead_after_s`'s value if
    /// the file sets it, else at `ping_interval_s`'s.
    /// Ephemeral tokens need exactly one token source; a token source needs them. Without an
    /// `endpoint` of its own, an ephemeral box dials the constrained method.
    fn check_auth(&self, l: &mut LiveConfig, raw: &RawLive) -> Result<(), ConfigError> {
        let span = |v: &RawValue| v.as_ref().map_or(0..0, |v| v.span());
        let sources = [
            ("token_command", &raw.token_command),
            ("token_url", &raw.token_url),
            ("token_bearer_file", &raw.token_bearer_file),
        ];
        match l.auth {
            Auth::ApiKey => {
                if let Some((key, v)) = sources.iter().find(|(_, v)| v.is_some()) {
                    return Err(self.at(
                        span(v),
                        format!(
                            "{key} in [live] is only used with auth = \"ephemeral\"; add that \
                             line, or remove this one"
                        ),
                    ));
                }
            }
            Auth::Ephemeral => {
                let command = !l.token_command.is_empty();
                let url = l.token_url.is_some();
                if command && url {
                    return Err(self.at(
                        span(&raw.token_url),
                        "token_command and token_url in [live] are two token sources; keep one",
                    ));
                }
                if !command && !url {
                    return Err(self.at(
                        span(&raw.auth),
                        "auth = \"ephemeral\" in [live] needs a token source: token_command (a \
                         program printing a token) or token_url (an https:// URL answering \
                         with one)",
                    ));
                }
                if command && raw.token_bearer_file.is_some() {
                    return Err(self.at(
                        span(&raw.token_bearer_file),
                        "token_bearer_file in [live] goes with token_url, not token_command \
                         (give the program its credential yourself)",
                    ));
                }
                if raw.endpoint.is_none() {
                    l.endpoint = crate::live::transport::CONSTRAINED_ENDPOINT.to_string();
                }
            }
        }
        Ok(())
    }

    fn check_liveness(&self, l: &LiveConfig, raw: &RawLive) -> Result<(), ConfigError> {
        let (ping, dead) = (l.ping_interval_s, l.dead_after_s);
        let (pings, deads) = (
            int_range("live", "ping_interval_s"),
            int_range("live", "dead_after_s"),
        );
        if dead > ping {
            return Ok(());
        }
        let default = |sp: &RawValue| if sp.is_some() { "" } else { ", the default" };
        let (span, message) = match (&raw.dead_after_s, &raw.ping_interval_s) {
            (Some(sp), _) => (
                sp.span(),
                format!(
                    "invalid value {dead} for dead_after_s in [live]: must be greater than \
                     ping_interval_s ({ping}{}); allowed: {}..={} (seconds)",
                    default(&raw.ping_interval_s),
                    (ping + 1).max(*deads.start()),
                    deads.end()
                ),
            ),
            (None, Some(sp)) => (
                sp.span(),
                format!(
                    "invalid value {ping} for ping_interval_s in [live]: must be less than \
                     dead_after_s ({dead}, the default); allowed: {}..={} (seconds), or set \
                     dead_after_s higher as well",
                    pings.start(),
                    (dead - 1).min(*pings.end())
                ),
            ),
            (None, None) => return Ok(()), // the defaults are consistent
        };
        Err(self.at(span, message))
    }

    fn choice<T: Copy>(
        &self,
        it: &Item<'_>,
        all: &[T],
        name: impl Fn(T) -> &'static str,
    ) -> Result<T, ConfigError> {
        let allowed = all.iter().map(|t| name(*t)).collect::<Vec<_>>().join(", ");
        let s = self.string(it, &format!("a string, one of: {allowed}"))?;
        all.iter()
            .copied()
            .find(|t| name(*t).eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                self.at(
                    it.span.clone(),
                    format!(
                        "invalid value {} for {} in [{}]; allowed: {allowed}",
                        quote(s),
                        it.key,
                        it.table
                    ),
                )
            })
    }

    fn device(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let s = self.string(it, "a string (ALSA device name)")?.trim();
        if s.is_empty() {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value \"\" for {} in [{}]; expected an ALSA device name such as \
                     \"default\" or \"plughw:CARD=Device,DEV=0\" (see `gemlive list-devices`)",
                    it.key, it.table
                ),
            ));
        }
        Ok(s.to_string())
    }
}

/// The table meant by a common other name (`normalized`: lowercase ASCII alphanumerics).
pub(super) fn table_alias(normalized: &str) -> Option<&'static str> {
    Some(match normalized {
        "camera" | "cam" | "webcam" | "v4l2" => "video",
        "mic" | "microphone" | "speaker" | "sound" | "alsa" => "audio",
        "gpio" | "buttons" | "pushbutton" | "ptt" | "pushtotalk" | "led" | "switch" => "button",
        "log" | "logs" | "logging" | "systemd" | "daemon" | "system" | "general" => "service",
        "wake" | "wakeup" => "session",
        _ => return None,
    })
}

/// A hint for a key that users write under another name (`normalized`: lowercase ASCII
/// alphanumerics), e.g. `pin` in [button].
pub(super) fn key_alias(table: &str, normalized: &str) -> Option<&'static str> {
    Some(match (table, normalized) {
        ("button", "pin" | "gpio" | "gpiopin" | "bcm" | "number" | "pinnumber" | "gpioline") => {
            "did you mean `line` (a line name such as \"GPIO17\") or `offset` (with `chip`)?"
        }
        ("button", "led" | "ledpin" | "ledgpio" | "light" | "lamp") => "did you mean `led_line`?",
        ("button", "pull" | "pullup" | "pulldown" | "resistor" | "pullresistor") => {
            "did you mean `bias` (\"pull_up\", \"pull_down\", \"disabled\" or \"as_is\")?"
        }
        ("button", "activehigh" | "invert" | "inverted" | "polarity" | "activelevel") => {
            "did you mean `active_low` (true = pressed connects the pin to ground)?"
        }
        ("button", "enabled" | "enable") => {
            "the button is on when `line` (or `chip` + `offset`) is set"
        }
        ("button", "pushtotalk" | "ptt") => "did you mean `mode = \"push_to_talk\"`?",
        ("button", "hold" | "holdms" | "longpress") => "did you mean `long_press_ms`?",
        ("session", "idle" | "inactivity" | "silencetimeout" | "idletime") => {
            "did you mean `idle_timeout_s`?"
        }
        ("session", "maxsession" | "sessiontimeout" | "maxduration" | "timelimit" | "duration") => {
            "did you mean `max_session_s`?"
        }
        ("session", "chime" | "sound" | "sounds" | "beep" | "beeps" | "feedback") => {
            "did you mean `chimes`?"
        }
        ("session", "pushtotalk" | "ptt") => "set `mode = \"push_to_talk\"` in [button]",
        ("audio", "aec" | "echocancellation" | "echocancel" | "halfduplex" | "duplex") => {
            "did you mean `echo` (\"aec\", \"half_duplex\" or \"none\")?"
        }
        ("audio", "tail" | "echotail") => "did you mean `echo_tail_ms`?",
        ("service", "log" | "loglevel" | "level" | "verbosity" | "verbose" | "logging") => {
            "did you mean `log_level`?"
        }
        ("live", "tools" | "builtintools") => {
            "it moved: write `builtin = true` (or `false`) under [tools]"
        }
        ("tools", "commands" | "cmd" | "script" | "scripts" | "exec") => {
            "command tools are written as [[tools.command]] entries"
        }
        _ => return None,
    })
}

/// The same GPIO line, written the same way (a chip with or without `/dev/`).
pub(super) fn same_line(a: &LineSpec, b: &LineSpec) -> bool {
    let chip = |c: &str| c.strip_prefix("/dev/").unwrap_or(c).to_string();
    match (a, b) {
        (LineSpec::Name(x), LineSpec::Name(y)) => x == y,
        (
            LineSpec::ChipOffset {
                chip: c1,
                offset: o1,
            },
            LineSpec::ChipOffset {
                chip: c2,
                offset: o2,
            },
        ) => o1 == o2 && chip(c1) == chip(c2),
        _ => false,
    }
}

pub(super) fn item<'v>(
    table: &'static str,
    key: &'static str,
    v: &'v RawValue,
) -> Option<Item<'v>> {
    v.as_ref().map(|sp| Item {
        table,
        key,
        value: sp.get_ref(),
        span: sp.span(),
    })
}

/// A short, quoted rendering of a string value for messages (long values are cut).
pub(super) fn quote(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{:?}…", cut)
    } else {
        format!("{s:?}")
    }
}

pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string {}", quote(s)),
        Value::Integer(n) => format!("integer {n}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        other => other.type_str().to_string(),
    }
}

pub(super) fn list(items: &[&str], f: impl Fn(&str) -> String) -> String {
    items.iter().map(|k| f(k)).collect::<Vec<_>>().join(", ")
}

pub(super) fn one_line(s: &str) -> String {
    s.trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut o = offset.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate nearest to `name`, if it is close enough to be a plausible typo.
pub(super) fn suggest<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    let max = match lower.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        6..=9 => 2,
        _ => 3,
    };
    let (dist, best) = candidates
        .iter()
        .map(|c| (edit_distance(&lower, c), *c))
        .min_by_key(|(d, _)| *d)?;
    if dist <= max {
        return Some(best);
    }
    // `timeout` → `setup_timeout_ms`, `voice_name` → `voice`: a unique containment.
    if lower.len() >= 4 {
        let hits: Vec<&str> = candidates
            .iter()
            .copied()
            .filter(|c| c.contains(lower.as_str()) || lower.contains(c))
            .collect();
        if let [one] = hits[..] {
            return Some(one);
        }
    }
    None
}

pub(super) fn suggest_voice(s: &str) -> Option<&'static str> {
    let lower: Vec<String> = VOICES.iter().map(|v| v.to_ascii_lowercase()).collect();
    let refs: Vec<&str> = lower.iter().map(String::as_str).collect();
    let hit = suggest(s, &refs)?;
    VOICES.iter().copied().find(|v| v.eq_ignore_ascii_case(hit))
}
