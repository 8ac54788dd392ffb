//! Home Assistant discovery configs and the topics they name.
//!
//! Every entity belongs to one device (this box); every config is published retained under
//! `<prefix>/<component>/<node_id>/<object>/config`, so Home Assistant finds the box whenever
//! it starts. State topics are `gemlive/<node_id>/<what>`, commands `gemlive/<node_id>/<what>/set`.

use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
    node: String,
    base: String,
}

impl Topics {
    pub fn new(prefix: &str, node: &str) -> Topics {
        Topics {
            prefix: prefix.to_string(),
            node: node.to_string(),
            base: format!("gemlive/{node}"),
        }
    }

    pub fn availability(&self) -> String {
        format!("{}/availability", self.base)
    }

    pub fn state(&self, what: &str) -> String {
        format!("{}/{what}", self.base)
    }

    pub fn attributes(&self, what: &str) -> String {
        format!("{}/{what}/attributes", self.base)
    }

    pub fn command(&self, what: &str) -> String {
        format!("{}/{what}/set", self.base)
    }

    /// The subscription for every command.
    pub fn commands(&self) -> String {
        format!("{}/+/set", self.base)
    }

    /// Which command a topic carries (`gemlive/<node>/<what>/set`), if it is one.
    pub fn command_of<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let what = topic
            .strip_prefix(self.base.as_str())?
            .strip_prefix('/')?
            .strip_suffix("/set")?;
        (!what.is_empty() && !what.contains('/')).then_some(what)
    }

    /// Every event as one JSON message (not retained), for automations.
    pub fn events(&self) -> String {
        format!("{}/events", self.base)
    }

    /// Home Assistant's birth and last-will topic.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.prefix)
    }

    pub fn config(&self, component: &str, object: &str) -> String {
        format!("{}/{component}/{}/{object}/config", self.prefix, self.node)
    }
}

/// The discovery configs: topic and payload.
pub fn configs(t: &Topics, version: &str) -> Vec<(String, Value)> {
    let node = &t.node;
    let device = json!({
        "identifiers": [format!("gemlive_{node}")],
        "name": format!("gemlive {node}"),
        "manufacturer": "gemlive",
        "model": "Gemini Live appliance",
        "sw_version": version,
    });
    // `default_entity_id` is what Home Assistant 2025.10 and newer read; `object_id`, which it
    // replaced, is what older ones read.
    let entity = |component: &str, object: &str, name: &str, icon: &str| {
        json!({
            "name": name,
            "unique_id": format!("gemlive_{node}_{object}"),
            "object_id": format!("gemlive_{node}_{object}"),
            "default_entity_id": format!("{component}.gemlive_{node}_{object}"),
            "icon": icon,
            "availability_topic": t.availability(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        })
    };
    let with = |mut base: Value, extra: Value| {
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base
    };
    let text_sensor = |object: &str, name: &str, icon: &str| {
        with(
            entity("sensor", object, name, icon),
            json!({
                "state_topic": t.state(object),
                "json_attributes_topic": t.attributes(object),
            }),
        )
    };
    vec![
        (
            t.config("sensor", "state"),
            with(
                entity("sensor", "state", "State", "mdi:account-voice"),
                json!({
                    "state_topic": t.state("state"),
                    "device_class": "enum",
                    "options": ["idle", "connecting", "listening", "speaking", "muted", "offline", "error"],
                }),
            ),
        ),
        (
            t.config("switch", "mute"),
            with(
                entity("switch", "mute", "Mute", "mdi:microphone-off"),
                json!({
                    "command_topic": t.command("mute"),
                    "state_topic": t.state("mute"),
                    "payload_on": "ON",
                    "payload_off": "OFF",
                }),
            ),
        ),
        (
            t.config("number", "volume"),
            with(
                entity("number", "volume", "Volume", "mdi:volume-high"),
                json!({
                    "command_topic": t.command("volume"),
                    "state_topic": t.state("volume"),
                    "min": 0,
                    "max": 100,
                    "step": 1,
                    "mode": "slider",
                    "unit_of_measurement": "%",
                }),
            ),
        ),
        (
            t.config("button", "start"),
            with(
                entity(
                    "button",
                    "start",
                    "Start conversation",
                    "mdi:microphone-message",
                ),
                json!({ "command_topic": t.command("wake"), "payload_press": "PRESS" }),
            ),
        ),
        (
            t.config("button", "end"),
            with(
                entity(
                    "button",
                    "end",
                    "End conversation",
                    "mdi:stop-circle-outline",
                ),
                json!({ "command_topic": t.command("end"), "payload_press": "PRESS" }),
            ),
        ),
        (
            t.config("text", "announce"),
            with(
                entity("text", "announce", "Announce", "mdi:bullhorn"),
                json!({
                    "command_topic": t.command("announce"),
                    "max": 255,
                    "mode": "text",
                }),
            ),
        ),
        (
            t.config("sensor", "heard"),
            text_sensor("heard", "Last heard", "mdi:account-voice"),
        ),
        (
            t.config("sensor", "said"),
            text_sensor("said", "Last said", "mdi:robot-outline"),
        ),
        (
            t.config("sensor", "last_error"),
            with(
                text_sensor("last_error", "Last error", "mdi:alert-circle-outline"),
                json!({ "entity_category": "diagnostic" }),
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_topics_are_recognised() {
        let t = Topics::new("homeassistant", "kitchen");
        assert_eq!(t.command_of("gemlive/kitchen/mute/set"), Some("mute"));
        assert_eq!(t.command_of("gemlive/kitchen/mute"), None);
        assert_eq!(t.command_of("gemlive/kitchen2/mute/set"), None);
        assert_eq!(t.command_of("gemlive/kitchen/a/b/set"), None);
        assert_eq!(t.command_of("gemlive/kitchen//set"), None);
    }

    #[test]
    fn every_config_has_what_home_assistant_requires() {
        let t = Topics::new("homeassistant", "kitchen");
        let all = configs(&t, "1.2.3");
        for (topic, c) in &all {
            let component = topic.split('/').nth(1).unwrap_or("");
            let need: &[&str] = match component {
                "sensor" => &["state_topic"],
                "switch" | "number" | "button" | "text" => &["command_topic"],
                other => panic!("unexpected component {other}"),
            };
            for k in need
                .iter()
                .chain(&["unique_id", "availability_topic", "device"])
            {
                assert!(c.get(*k).is_some(), "{topic}: {k}");
            }
            assert_eq!(c["device"]["sw_version"], "1.2.3");
        }
        let ids: std::collections::HashSet<_> =
            all.iter().map(|(_, c)| c["unique_id"].clone()).collect();
        assert_eq!(ids.len(), all.len(), "unique ids");
    }
}
