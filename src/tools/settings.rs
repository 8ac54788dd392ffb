//! `[tools]`: what the owner declares. The key table (`config/table.rs`) declares the keys; this
//! module owns the types and the rules for the `[[tools.command]]` entries, so the config
//! module depends on it and not the other way round.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::schema;

/// The built-in tools' names: no declared tool may take one, whether or not they are on.
pub const BUILTIN_NAMES: [&str; 6] = [
    "end_session",
    "set_volume",
    "set_timer",
    "cancel_timer",
    "list_timers",
    "look",
];
/// `timeout_s` of a command tool: default and range.
pub const DEFAULT_TIMEOUT_S: u64 = 10;
pub const TIMEOUT_RANGE_S: std::ops::RangeInclusive<u64> = 1..=600;

/// `[tools]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolsConfig {
    /// Offer the built-in tools.
    pub builtin: bool,
    /// `[[tools.command]]`, in file order.
    pub command: Vec<CommandTool>,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            builtin: true,
            command: Vec::new(),
        }
    }
}

/// One `[[tools.command]]`: a program the model may run.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandTool {
    pub name: String,
    pub description: String,
    /// The parameters as declared to the model (already in Gemini's schema subset); `None`
    /// for a tool without arguments.
    pub parameters: Option<Value>,
    /// What of the written schema the model will not see (Gemini does not take it).
    pub dropped: Vec<String>,
    /// argv; `{name}` inside an element is replaced by that argument's value.
    pub command: Vec<String>,
    pub timeout: Duration,
    /// Run only when the same call is repeated within 30 s (after the user said yes).
    pub confirm: bool,
    /// `behavior = "non_blocking"`: the model keeps talking while it runs (2.5 models only).
    pub non_blocking: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    name: String,
    description: String,
    parameters: Option<toml::Table>,
    command: Vec<String>,
    timeout_s: Option<i64>,
    #[serde(default)]
    confirm: bool,
    behavior: Option<String>,
}

/// Gemini's rule for function names: a letter or `_` first, then letters, digits, `_`, `.`,
/// `-`; at most 64 characters.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Why the `index`-th `[[tools.command]]` (0-based) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub index: usize,
    pub message: String,
}

/// The placeholders `{name}` in one argv element.
pub fn placeholders(element: &str) -> impl Iterator<Item = &str> {
    element.split('{').skip(1).filter_map(|rest| {
        let name = rest.split('}').next()?;
        (rest.contains('}')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(name)
    })
}

/// Parses the `[[tools.command]]` array.
pub fn command_tools(value: &toml::Value) -> Result<Vec<CommandTool>, EntryError> {
    let err = |index: usize, message: String| EntryError { index, message };
    let Some(entries) = value.as_array() else {
        return Err(err(
            0,
            "`command` in [tools] must be written as [[tools.command]] entries".into(),
        ));
    };
    let mut out: Vec<CommandTool> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let raw: RawCommand = e.clone().try_into().map_err(|e: toml::de::Error| {
            err(i, format!("{}; an entry needs name, description and command (an argv list), and may have parameters, timeout_s, confirm and behavior", e.message().trim()))
        })?;
        let name = raw.name.trim().to_string();
        let what = format!("tool `{name}`");
        if !valid_name(&name) {
            return Err(err(
                i,
                format!("invalid tool name {name:?}: use letters, digits, `_`, `.` or `-` (at most 64, starting with a letter or `_`)"),
            ));
        }
        if BUILTIN_NAMES.contains(&name.as_str()) {
            return Err(err(
                i,
                format!("{what}: the name is taken by a built-in tool"),
            ));
        }
        if out.iter().any(|t| t.name == name) {
            return Err(err(i, format!("{what} is declared twice")));
        }
        if raw.description.trim().is_empty() {
            return Err(err(
                i,
                format!("{what}: the description is empty; the model decides from it when to call the tool"),
            ));
        }
        if raw.command.is_empty() || raw.command[0].trim().is_empty() {
            return Err(err(
                i,
                format!("{what}: command must name a program, e.g. command = [\"/usr/local/bin/lights\", \"{{state}}\"]"),
            ));
        }
        let (parameters, dropped) = match raw.parameters {
            None => (None, Vec::new()),
            Some(t) => {
                let json = serde_json::to_value(&t)
                    .map_err(|e| err(i, format!("{what}: parameters: {e}")))?;
                let c = schema::to_gemini(&json).ok_or_else(|| {
                    err(
                        i,
                        format!("{what}: parameters must be an object schema, e.g. parameters = {{ type = \"object\", properties = {{ state = {{ type = \"string\" }} }} }}"),
                    )
                })?;
                (Some(c.schema), c.dropped)
            }
        };
        let props: Vec<String> = parameters
            .as_ref()
            .and_then(|p| p.get("properties"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for el in &raw.command {
            if let Some(p) = placeholders(el).find(|p| !props.iter().any(|q| q == p)) {
                return Err(err(
                    i,
                    format!(
                        "{what}: command uses {{{p}}}, which is not one of its parameters ({})",
                        if props.is_empty() {
                            "it has none".to_string()
                        } else {
                            props.join(", ")
                        }
                    ),
                ));
            }
        }
        let timeout_s = match raw.timeout_s {
            None => DEFAULT_TIMEOUT_S,
            Some(t) if t >= 0 && TIMEOUT_RANGE_S.contains(&(t as u64)) => t as u64,
            Some(t) => {
                return Err(err(
                    i,
                    format!(
                        "{what}: timeout_s = {t} is out of range {}..={} seconds",
                        TIMEOUT_RANGE_S.start(),
                        TIMEOUT_RANGE_S.end()
                    ),
                ))
            }
        };
        let non_blocking = match raw
            .behavior
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("blocking") => false,
            Some("non_blocking") => true,
            Some(other) => {
                return Err(err(
                    i,
                    format!(
                        "{what}: behavior = {other:?}; expected \"blocking\" or \"non_blocking\""
                    ),
                ))
            }
        };
        out.push(CommandTool {
            name,
            description: raw.description.trim().to_string(),
            parameters,
            dropped,
            command: raw.command,
            timeout: Duration::from_secs(timeout_s),
            confirm: raw.confirm,
            non_blocking,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<CommandTool>, EntryError> {
        let t: toml::Table = toml::from_str(text).unwrap();
        command_tools(&t["tools"]["command"])
    }

    #[test]
    fn a_command_tool_is_read_with_its_schema() {
        let t = parse(
            r#"
[[tools.command]]
name = "lights"
description = "Switch the lights."
command = ["/usr/local/bin/lights", "--state={state}", "{room}"]
parameters = { type = "object", properties = { state = { type = "string", enum = ["on", "off"] }, room = { type = "string" } }, required = ["state"] }
confirm = true
timeout_s = 3

[[tools.command]]
name = "uptime"
description = "How long the box has been up."
command = ["uptime"]
behavior = "non_blocking"
"#,
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].timeout, Duration::from_secs(3));
        assert!(t[0].confirm && !t[0].non_blocking);
        assert_eq!(
            t[0].parameters.as_ref().unwrap()["properties"]["state"]["type"],
            "STRING"
        );
        assert_eq!(t[1].parameters, None);
        assert_eq!(t[1].timeout, Duration::from_secs(DEFAULT_TIMEOUT_S));
        assert!(t[1].non_blocking);
    }

    #[test]
    fn mistakes_are_named() {
        let base = |extra: &str| {
            format!("[[tools.command]]\nname = \"x\"\ndescription = \"d\"\ncommand = [\"true\"]\n{extra}")
        };
        let e = |text: &str| parse(text).unwrap_err().message;
        assert!(e(&base("timeout_s = 0")).contains("out of range 1..=600"));
        assert!(e(&base("behavior = \"later\"")).contains("non_blocking"));
        assert!(e(&base("colour = 1")).contains("colour"));
        assert!(e(&base("parameters = { type = \"string\" }")).contains("object schema"));
        assert!(e(&base("").replace("[\"true\"]", "[\"echo\", \"{who}\"]")).contains("{who}"));
        assert!(e(&base("").replace("\"x\"", "\"9lives\"")).contains("invalid tool name"));
        assert!(e(&base("").replace("\"x\"", "\"set_volume\"")).contains("built-in"));
        assert!(e(&base("").replace("\"d\"", "\" \"")).contains("description is empty"));
        assert!(e(&base("").replace("[\"true\"]", "[]")).contains("must name a program"));
        let twice = format!("{}\n{}", base(""), base(""));
        let err = parse(&twice).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(err.message.contains("declared twice"));
    }

    #[test]
    fn names_and_placeholders() {
        for ok in ["a", "_x", "get_current_time", "ha.turn-on", &"a".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "1a", "-a", "a b", "ä", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(
            placeholders("--x={a}:{b_2}").collect::<Vec<_>>(),
            ["a", "b_2"]
        );
        assert_eq!(placeholders("{}{ x}{y").count(), 0);
    }
}
