//! The config parser on arbitrary text: errors carry a position inside the text, a valid
//! config reloads onto itself with nothing to restart, and nothing panics.

#![no_main]

use std::path::Path;

use gemlive::config::{parse_str, reload_plan, summary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The loader reads the file with `read_to_string`: non-UTF-8 never reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/fuzz/gemlive.toml");
    match parse_str(text, path) {
        Ok(cfg) => {
            let _ = summary(&cfg, &Ok(None));
            let plan = reload_plan(&cfg, &cfg);
            assert!(plan.needs_restart.is_empty(), "{:?}", plan.needs_restart);
            assert_eq!(plan.merged, cfg);
            assert_eq!(parse_str(text, path).ok(), Some(cfg), "not deterministic");
        }
        Err(e) => {
            let shown = e.to_string();
            if let Some((line, column)) = e.line_col() {
                let lines = text.split('\n').count();
                assert!(
                    line >= 1 && line <= lines,
                    "line {line} of {lines}: {shown}"
                );
                let len = text
                    .split('\n')
                    .nth(line - 1)
                    .map_or(0, |l| l.chars().count());
                assert!(
                    column >= 1 && column <= len + 1,
                    "column {column} of a {len}-character line: {shown}"
                );
            }
        }
    }
});
