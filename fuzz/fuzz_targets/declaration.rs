//! Any bytes as a declaration: reading, checking and rendering must never panic, and a
//! finding must always point inside the text.
//!
//! cargo +nightly fuzz run declaration -- -max_total_time=60

#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_policy::{Source, check, notice, ropa};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let source = Source::new("fuzz.toml", text);
    match check(&source) {
        Err(fatal) => {
            let _ = fatal.render(&source);
        }
        Ok(checked) => {
            for d in &checked.diagnostics {
                if let Some(start) = d.start {
                    assert!(start.line >= 1 && start.line <= text.lines().count().max(1) + 1);
                }
                let _ = d.render(&source);
            }
            if let Some(declaration) = checked.declaration {
                let n = notice::build(&declaration);
                let _ = n.to_html();
                let _ = n.to_markdown();
                let r = ropa::build(&declaration);
                let _ = r.to_csv();
                let _ = r.to_json();
            }
        }
    }
});
