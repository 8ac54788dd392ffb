//! Token accounting from `usageMetadata`. The service reports each turn's usage (the whole
//! context is billed again every turn), so sums over turns are what a connection or a session
//! cost. Modality names come from the server: only the known ones get a counter of their own,
//! so a stream of odd names cannot grow the table.

use super::proto::{ModalityTokenCount, UsageMetadata};

/// The modalities the API defines; anything else is counted as `OTHER`.
pub const MODALITIES: [&str; 6] = ["AUDIO", "TEXT", "IMAGE", "VIDEO", "DOCUMENT", "OTHER"];

/// Summed token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `usageMetadata` messages counted (about one per turn).
    pub reports: u64,
    pub prompt: u64,
    pub response: u64,
    pub total: u64,
    pub thoughts: u64,
    pub tool_prompt: u64,
    pub cached: u64,
    /// Prompt tokens by [`MODALITIES`] index.
    pub prompt_by: [u64; 6],
    /// Response tokens by [`MODALITIES`] index.
    pub response_by: [u64; 6],
}

fn n(v: Option<i64>) -> u64 {
    v.map_or(0, |v| v.max(0) as u64)
}

fn by_modality(details: &[ModalityTokenCount], into: &mut [u64; 6]) {
    for d in details {
        let m = d.modality.as_deref().unwrap_or("");
        let i = MODALITIES[..5]
            .iter()
            .position(|k| k.eq_ignore_ascii_case(m))
            .unwrap_or(5);
        into[i] = into[i].saturating_add(n(d.token_count));
    }
}

impl Usage {
    /// Adds one report. The Developer API says `response*`, Vertex `candidates*`.
    pub fn add(&mut self, u: &UsageMetadata) {
        self.reports += 1;
        self.prompt = self.prompt.saturating_add(n(u.prompt_token_count));
        self.response = self
            .response
            .saturating_add(n(u.response_token_count.or(u.candidates_token_count)));
        self.total = self.total.saturating_add(n(u.total_token_count));
        self.thoughts = self.thoughts.saturating_add(n(u.thoughts_token_count));
        self.tool_prompt = self
            .tool_prompt
            .saturating_add(n(u.tool_use_prompt_token_count));
        self.cached = self.cached.saturating_add(n(u.cached_content_token_count));
        by_modality(&u.prompt_tokens_details, &mut self.prompt_by);
        let response = if u.response_tokens_details.is_empty() {
            &u.candidates_tokens_details
        } else {
            &u.response_tokens_details
        };
        by_modality(response, &mut self.response_by);
    }

    /// One line for the log: `1234 tokens (prompt 1000: audio 900, video 100; response 234:
    /// audio 234) in 3 reports`.
    pub fn describe(&self) -> String {
        if self.reports == 0 {
            return "no usage reported".to_string();
        }
        let split = |by: &[u64; 6]| {
            let parts: Vec<String> = MODALITIES
                .iter()
                .zip(by)
                .filter(|(_, n)| **n > 0)
                .map(|(m, n)| format!("{} {n}", m.to_ascii_lowercase()))
                .collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!(": {}", parts.join(", "))
            }
        };
        let mut extra = Vec::new();
        if self.thoughts > 0 {
            extra.push(format!("thoughts {}", self.thoughts));
        }
        if self.tool_prompt > 0 {
            extra.push(format!("tool prompt {}", self.tool_prompt));
        }
        if self.cached > 0 {
            extra.push(format!("cached {}", self.cached));
        }
        format!(
            "{} tokens (prompt {}{}; response {}{}{}) in {} report{}",
            self.total,
            self.prompt,
            split(&self.prompt_by),
            self.response,
            split(&self.response_by),
            if extra.is_empty() {
                String::new()
            } else {
                format!("; {}", extra.join(", "))
            },
            self.reports,
            if self.reports == 1 { "" } else { "s" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: &str) -> UsageMetadata {
        serde_json::from_str(json).expect("usage json")
    }

    #[test]
    fn sums_by_modality_and_names_odd_ones_other() {
        let mut u = Usage::default();
        u.add(&report(
            r#"{"promptTokenCount": 100, "responseTokenCount": 40, "totalTokenCount": 140,
                "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 90},
                                        {"modality": "VIDEO", "tokenCount": 10}],
                "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 40}]}"#,
        ));
        u.add(&report(
            r#"{"promptTokenCount": "150", "candidatesTokenCount": 10, "totalTokenCount": 160,
                "thoughtsTokenCount": 5,
                "promptTokensDetails": [{"modality": "HOLOGRAM", "tokenCount": 150}],
                "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 10}]}"#,
        ));
        assert_eq!(
            (u.reports, u.prompt, u.response, u.total),
            (2, 250, 50, 300)
        );
        assert_eq!(u.prompt_by, [90, 0, 0, 10, 0, 150]);
        assert_eq!(u.response_by, [40, 10, 0, 0, 0, 0]);
        assert_eq!(
            u.describe(),
            "300 tokens (prompt 250: audio 90, video 10, other 150; response 50: audio 40, \
             text 10; thoughts 5) in 2 reports"
        );
        assert_eq!(Usage::default().describe(), "no usage reported");
    }
}
