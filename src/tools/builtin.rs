//! Built-in tools the model may call, pure: their declarations, and the answer to
//! each `toolCall` plus the effect the daemon must apply. Every call gets a response with its
//! `id` — unknown names and bad arguments get an `error` — because on 3.1 models the model
//! waits for the response and would otherwise stall the conversation.

use serde_json::{json, Value};

use crate::live::proto::{FunctionCall, FunctionResponse};

/// What the daemon must do after answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// End the conversation; the next one starts fresh (no resumption).
    EndSession,
    /// Speaker volume in percent, 0..=100.
    SetVolume(u8),
    /// The timers changed: keep them, and wake up for the next one.
    TimersChanged,
}

/// The built-ins' `functionDeclarations` entries. `end_session` takes no arguments, so it has
/// no `parameters` (an empty OBJECT schema is one of the shapes the server has refused with
/// 1007).
pub fn function_declarations() -> Vec<Value> {
    vec![
        json!({
            "name": "end_session",
            "description": "End the conversation, e.g. when the user says goodbye or asks you to stop listening."
        }),
        json!({
            "name": "set_volume",
            "description": "Set the loudness of the device's speaker.",
            "parameters": {
                "type": "OBJECT",
                "properties": {
                    "percent": {"type": "INTEGER", "description": "Volume from 0 (silent) to 100 (loudest)."}
                },
                "required": ["percent"]
            }
        }),
    ]
}

/// Answers one call.
pub fn answer(call: &FunctionCall) -> (FunctionResponse, Option<Effect>) {
    let reply = |response: Value| FunctionResponse {
        id: call.id.clone(),
        name: call.name.clone(),
        response,
    };
    match call.name.as_str() {
        "end_session" => (reply(json!({"result": "ok"})), Some(Effect::EndSession)),
        "set_volume" => {
            let pct = call.args.get("percent").and_then(|v| {
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            });
            match pct {
                Some(p) if (0.0..=100.0).contains(&p) => {
                    let p = p.round() as u8;
                    (
                        reply(json!({"result": "ok", "percent": p})),
                        Some(Effect::SetVolume(p)),
                    )
                }
                Some(p) => (
                    reply(json!({"error": format!("percent must be 0..100, got {p}")})),
                    None,
                ),
                None => (
                    reply(json!({"error": "missing argument `percent` (0..100)"})),
                    None,
                ),
            }
        }
        other => (
            reply(json!({"error": format!("unknown tool `{other}`")})),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: Value) -> FunctionCall {
        FunctionCall {
            id: Some("function-call-1".into()),
            name: name.into(),
            args,
        }
    }

    #[test]
    fn answers_carry_the_id_and_effects() {
        let (r, e) = answer(&call("set_volume", json!({"percent": 40})));
        assert_eq!(r.id.as_deref(), Some("function-call-1"));
        assert_eq!(r.response["result"], "ok");
        assert_eq!(e, Some(Effect::SetVolume(40)));
        assert_eq!(
            answer(&call("set_volume", json!({"percent": "75"}))).1,
            Some(Effect::SetVolume(75))
        );
        let (r, e) = answer(&call("set_volume", json!({"percent": 140})));
        assert!(r.response["error"].as_str().unwrap().contains("0..100"));
        assert_eq!(e, None);
        assert!(answer(&call("set_volume", json!({})))
            .0
            .response
            .get("error")
            .is_some());
        assert_eq!(
            answer(&call("end_session", json!({}))).1,
            Some(Effect::EndSession)
        );
        let (r, e) = answer(&call("launch_rockets", json!({})));
        assert_eq!(r.name, "launch_rockets");
        assert!(r.response["error"]
            .as_str()
            .unwrap()
            .contains("unknown tool"));
        assert_eq!(e, None);
    }

    #[test]
    fn declarations_shape() {
        let f = function_declarations();
        assert_eq!(f.len(), 2);
        assert!(f[0].get("parameters").is_none());
        assert_eq!(f[1]["parameters"]["required"], json!(["percent"]));
    }
}
