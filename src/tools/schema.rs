//! JSON Schema (as owners write it, and as MCP servers publish it) → the subset of the OpenAPI
//! schema that Gemini's `functionDeclarations[].parameters` accepts. The Live API closes the
//! session (1007) on a key it does not know, so everything outside the subset is dropped here
//! and named, for `check-config` and `gemlive tools` to show.

use serde_json::{Map, Value};

/// Keys kept as they are (values checked where it matters).
const KEPT: &[&str] = &[
    "description",
    "enum",
    "format",
    "nullable",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
];

/// Nesting deeper than this is cut: a schema is a description for the model, not a program.
const MAX_DEPTH: usize = 8;

/// The converted schema and what was dropped, as `path: key` notes.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub schema: Value,
    pub dropped: Vec<String>,
}

/// Converts an object schema (the tool's parameters). `None` when it is not an object schema
/// at all (the caller says so).
pub fn to_gemini(schema: &Value) -> Option<Converted> {
    let obj = schema.as_object()?;
    let mut dropped = Vec::new();
    let out = convert(obj, "", 0, &mut dropped);
    (out.get("type").and_then(Value::as_str) == Some("OBJECT")).then_some(Converted {
        schema: Value::Object(out),
        dropped,
    })
}

fn gemini_type(t: &str) -> Option<&'static str> {
    Some(match t.to_ascii_lowercase().as_str() {
        "string" => "STRING",
        "number" => "NUMBER",
        "integer" => "INTEGER",
        "boolean" => "BOOLEAN",
        "array" => "ARRAY",
        "object" => "OBJECT",
        _ => return None,
    })
}

fn convert(
    s: &Map<String, Value>,
    path: &str,
    depth: usize,
    dropped: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let here = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    // `type` may be a list (["string", "null"]): the one non-null type, nullable.
    let mut ty = None;
    match s.get("type") {
        Some(Value::String(t)) => ty = gemini_type(t),
        Some(Value::Array(ts)) => {
            let names: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
            let real: Vec<&str> = names.iter().copied().filter(|t| *t != "null").collect();
            if real.len() == 1 {
                ty = gemini_type(real[0]);
            }
            if names.contains(&"null") {
                out.insert("nullable".into(), Value::Bool(true));
            }
        }
        _ => {}
    }
    // No usable type: infer it from the shape, the way a model reads it.
    if ty.is_none() {
        ty = if s.contains_key("properties") {
            Some("OBJECT")
        } else if s.contains_key("items") {
            Some("ARRAY")
        } else if let Some(Value::Array(v)) = s.get("enum") {
            v.iter().all(Value::is_string).then_some("STRING")
        } else {
            None
        };
        if s.contains_key("type") || ty.is_none() {
            dropped.push(format!(
                "{}: type {} (kept as STRING)",
                here("type"),
                json_short(s.get("type"))
            ));
            ty = Some("STRING");
        }
    }
    let ty = ty.unwrap_or("STRING");
    out.insert("type".into(), Value::String(ty.into()));
    for (k, v) in s {
        match k.as_str() {
            "type" => {}
            "properties" if ty == "OBJECT" => {
                let mut props = Map::new();
                if let Some(p) = v.as_object() {
                    for (name, sub) in p {
                        match sub.as_object() {
                            Some(sub) if depth < MAX_DEPTH => {
                                props.insert(
                                    name.clone(),
                                    Value::Object(convert(sub, &here(name), depth + 1, dropped)),
                                );
                            }
                            _ => dropped.push(format!("{}: too deep or not a schema", here(name))),
                        }
                    }
                }
                out.insert("properties".into(), Value::Object(props));
            }
            "required" if ty == "OBJECT" => {
                let names: Vec<Value> = v
                    .as_array()
                    .map(|a| a.iter().filter(|n| n.is_string()).cloned().collect())
                    .unwrap_or_default();
                if !names.is_empty() {
                    out.insert("required".into(), Value::Array(names));
                }
            }
            "items" if ty == "ARRAY" => match v.as_object() {
                Some(sub) if depth < MAX_DEPTH => {
                    out.insert(
                        "items".into(),
                        Value::Object(convert(sub, &here("items"), depth + 1, dropped)),
                    );
                }
                _ => dropped.push(format!("{}: too deep or not a schema", here("items"))),
            },
            "enum" => {
                // Gemini's enums are strings.
                let vals: Vec<Value> = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| match x {
                                Value::String(_) => x.clone(),
                                other => Value::String(other.to_string()),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert("enum".into(), Value::Array(vals));
            }
            k if KEPT.contains(&k) => {
                out.insert(k.into(), v.clone());
            }
            // Documentation-only keys that carry nothing for the model.
            "$schema" | "title" | "$id" | "$comment" | "examples" => {}
            other => dropped.push(here(other)),
        }
    }
    if ty == "ARRAY" && !out.contains_key("items") {
        // Gemini wants to know what the list holds.
        out.insert("items".into(), serde_json::json!({"type": "STRING"}));
    }
    out
}

fn json_short(v: Option<&Value>) -> String {
    match v {
        None => "missing".into(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 40 {
                format!("{}…", &s[..s.floor_char_boundary(40)])
            } else {
                s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_schema_becomes_the_gemini_subset() {
        // What `mcp-server-time` publishes for get_current_time, plus the usual extras.
        let c = to_gemini(&json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "title": "GetTime",
            "additionalProperties": false,
            "properties": {
                "timezone": {"type": "string", "description": "IANA name", "default": "UTC"},
                "count": {"type": ["integer", "null"], "minimum": 1},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                "mode": {"enum": ["fast", "slow"]},
                "any": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                "list": {"type": "array"}
            },
            "required": ["timezone"]
        }))
        .unwrap();
        assert_eq!(
            c.schema,
            json!({
                "type": "OBJECT",
                "properties": {
                    "timezone": {"type": "STRING", "description": "IANA name"},
                    "count": {"type": "INTEGER", "nullable": true, "minimum": 1},
                    "tags": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["a", "b"]}},
                    "mode": {"type": "STRING", "enum": ["fast", "slow"]},
                    "any": {"type": "STRING"},
                    "list": {"type": "ARRAY", "items": {"type": "STRING"}}
                },
                "required": ["timezone"]
            })
        );
        assert_eq!(
            c.dropped,
            [
                "additionalProperties",
                "any.type: type missing (kept as STRING)",
                "any.anyOf",
                "timezone.default"
            ]
        );
        assert!(to_gemini(&json!({"type": "string"})).is_none());
        assert!(to_gemini(&json!("object")).is_none());
        // An empty object schema stays an object with no properties.
        assert_eq!(
            to_gemini(&json!({"type": "object"})).unwrap().schema,
            json!({"type": "OBJECT"})
        );
    }

    #[test]
    fn deep_nesting_is_cut() {
        let mut s = json!({"type": "string"});
        for _ in 0..20 {
            s = json!({"type": "object", "properties": {"x": s}});
        }
        let c = to_gemini(&s).unwrap();
        assert!(c.dropped.iter().any(|d| d.contains("too deep")));
        assert!(c.schema.to_string().len() < 400);
    }
}
