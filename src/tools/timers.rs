//! Kitchen timers, pure: set, cancel, list, and which are due. Times are wall-clock
//! milliseconds since the Unix epoch, so a timer survives a restart (the daemon keeps the list
//! in its state directory); the daemon passes `now` in.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Timers at once, at most.
pub const MAX_TIMERS: usize = 20;
/// The longest timer: a week.
pub const MAX_DURATION_S: u64 = 7 * 86_400;
/// Labels are cut to this many characters.
const MAX_LABEL_CHARS: usize = 60;
/// The file in the state directory.
pub const FILE: &str = "timers.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    pub label: String,
    /// When it rings, Unix milliseconds.
    pub due_ms: u64,
    /// As set, seconds (for "the 10 minute timer").
    pub duration_s: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timers {
    list: Vec<Timer>,
}

/// "3 min 20 s" for the model and the log.
pub fn spoken(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 {
        parts.push(format!("{m} min"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s} s"));
    }
    parts.join(" ")
}

impl Timers {
    pub fn set(
        &mut self,
        label: Option<&str>,
        duration_s: u64,
        now_ms: u64,
    ) -> Result<Timer, String> {
        if !(1..=MAX_DURATION_S).contains(&duration_s) {
            return Err(format!(
                "duration_s must be 1..{MAX_DURATION_S} seconds, got {duration_s}"
            ));
        }
        if self.list.len() >= MAX_TIMERS {
            return Err(format!(
                "{MAX_TIMERS} timers are already running; cancel one first"
            ));
        }
        let base: String = label
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .unwrap_or("timer")
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_LABEL_CHARS)
            .collect();
        // Labels are how the user names them ("cancel the pasta timer"): keep them distinct.
        let mut label = base.clone();
        let mut n = 2;
        while self
            .list
            .iter()
            .any(|t| t.label.eq_ignore_ascii_case(&label))
        {
            label = format!("{base} {n}");
            n += 1;
        }
        let t = Timer {
            label,
            due_ms: now_ms + duration_s * 1000,
            duration_s,
        };
        self.list.push(t.clone());
        self.list.sort_by_key(|t| t.due_ms);
        Ok(t)
    }

    /// Cancels the timer with this label (case-insensitive); with no label, the only timer.
    pub fn cancel(&mut self, label: Option<&str>) -> Result<Timer, String> {
        let label = label.map(str::trim).filter(|l| !l.is_empty());
        let idx = match label {
            Some(l) => self
                .list
                .iter()
                .position(|t| t.label.eq_ignore_ascii_case(l))
                .ok_or_else(|| {
                    format!("no timer is called {l:?}; the timers are: {}", self.names())
                })?,
            None if self.list.len() == 1 => 0,
            None if self.list.is_empty() => return Err("no timer is running".into()),
            None => {
                return Err(format!(
                    "several timers are running ({}); say which one (label)",
                    self.names()
                ))
            }
        };
        Ok(self.list.remove(idx))
    }

    fn names(&self) -> String {
        if self.list.is_empty() {
            return "none".into();
        }
        self.list
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The timers for the model: label, time left, length as set.
    pub fn describe(&self, now_ms: u64) -> Value {
        json!({"timers": self.list.iter().map(|t| json!({
            "label": t.label,
            "remaining": spoken(t.due_ms.saturating_sub(now_ms).div_ceil(1000)),
            "set_for": spoken(t.duration_s),
        })).collect::<Vec<_>>()})
    }

    /// Removes and returns the timers due at `now_ms`, earliest first.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<Timer> {
        let n = self.list.iter().take_while(|t| t.due_ms <= now_ms).count();
        self.list.drain(..n).collect()
    }

    pub fn next_due_ms(&self) -> Option<u64> {
        self.list.first().map(|t| t.due_ms)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.list).unwrap_or_else(|_| "[]".into())
    }

    /// The kept list; anything that does not parse is no timers (and said so by the caller).
    pub fn from_json(text: &str) -> Result<Timers, String> {
        let mut list: Vec<Timer> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        list.retain(|t| t.duration_s >= 1 && t.duration_s <= MAX_DURATION_S);
        list.truncate(MAX_TIMERS);
        list.sort_by_key(|t| t.due_ms);
        Ok(Timers { list })
    }
}

/// The timer tools' declarations.
pub fn function_declarations() -> Vec<Value> {
    vec![
        json!({
            "name": "set_timer",
            "description": "Start a countdown timer on this device. When it ends, the device rings until the user presses the button or for a minute, even without a connection.",
            "parameters": {"type": "OBJECT", "properties": {
                "duration_s": {"type": "INTEGER", "description": "Length in seconds."},
                "label": {"type": "STRING", "description": "A short name, e.g. \"pasta\"."}
            }, "required": ["duration_s"]}
        }),
        json!({
            "name": "cancel_timer",
            "description": "Cancel a running timer.",
            "parameters": {"type": "OBJECT", "properties": {
                "label": {"type": "STRING", "description": "The timer's name; may be left out when only one runs."}
            }}
        }),
        json!({
            "name": "list_timers",
            "description": "List the running timers with the time left."
        }),
    ]
}

/// Answers a timer tool call; `None` if `name` is not one.
pub fn answer(timers: &mut Timers, name: &str, args: &Value, now_ms: u64) -> Option<Value> {
    let label = args.get("label").and_then(Value::as_str);
    Some(match name {
        "set_timer" => {
            let secs = args.get("duration_s").and_then(|v| {
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            });
            match secs {
                Some(s) if s.is_finite() && s >= 0.5 => {
                    match timers.set(label, s.round() as u64, now_ms) {
                        Ok(t) => {
                            json!({"result": "ok", "label": t.label, "rings_in": spoken(t.duration_s)})
                        }
                        Err(e) => json!({"error": e}),
                    }
                }
                _ => json!({"error": "duration_s must be a number of seconds, at least 1"}),
            }
        }
        "cancel_timer" => match timers.cancel(label) {
            Ok(t) => json!({"result": "cancelled", "label": t.label}),
            Err(e) => json!({"error": e}),
        },
        "list_timers" => timers.describe(now_ms),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_list_cancel_and_ring_in_order() {
        let mut t = Timers::default();
        let r = answer(
            &mut t,
            "set_timer",
            &json!({"duration_s": 600, "label": "pasta"}),
            0,
        )
        .unwrap();
        assert_eq!(
            r,
            json!({"result": "ok", "label": "pasta", "rings_in": "10 min"})
        );
        answer(&mut t, "set_timer", &json!({"duration_s": "90"}), 1_000).unwrap();
        let r = answer(
            &mut t,
            "set_timer",
            &json!({"duration_s": 30, "label": "Pasta"}),
            2_000,
        )
        .unwrap();
        assert_eq!(r["label"], "Pasta 2", "labels stay distinct");
        assert_eq!(
            answer(&mut t, "list_timers", &json!({}), 2_000).unwrap()["timers"][0],
            json!({"label": "Pasta 2", "remaining": "30 s", "set_for": "30 s"})
        );
        assert!(
            answer(&mut t, "cancel_timer", &json!({}), 0).unwrap()["error"]
                .as_str()
                .unwrap()
                .contains("say which one")
        );
        assert_eq!(
            answer(&mut t, "cancel_timer", &json!({"label": "PASTA 2"}), 0).unwrap()["result"],
            "cancelled"
        );
        assert_eq!(t.next_due_ms(), Some(91_000));
        assert!(t.take_due(90_999).is_empty());
        let due = t.take_due(600_000);
        assert_eq!(
            due.iter().map(|d| d.label.as_str()).collect::<Vec<_>>(),
            ["timer", "pasta"]
        );
        assert!(t.is_empty());
        for bad in [
            json!({}),
            json!({"duration_s": 0}),
            json!({"duration_s": -5}),
            json!({"duration_s": 1e9}),
        ] {
            assert!(
                answer(&mut t, "set_timer", &bad, 0)
                    .unwrap()
                    .get("error")
                    .is_some(),
                "{bad}"
            );
        }
        assert_eq!(answer(&mut t, "nope", &json!({}), 0), None);
    }

    #[test]
    fn kept_across_a_restart_and_bounded() {
        let mut t = Timers::default();
        t.set(Some("tea"), 180, 5_000).unwrap();
        let back = Timers::from_json(&t.to_json()).unwrap();
        assert_eq!(back, t);
        assert!(Timers::from_json("not json").is_err());
        for i in 0..MAX_TIMERS {
            t.set(Some(&format!("t{i}")), 10, 0).ok();
        }
        assert!(t.set(None, 10, 0).is_err());
        assert_eq!(spoken(3_725), "1 h 2 min 5 s");
        assert_eq!(spoken(0), "0 s");
    }
}
