//! Fuzz the whole configuration path: YAML text → serde → validation, plus
//! the position locator. Any input must give Ok or located errors, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(errors) = bulb::config::parse(text, "fuzz.yaml") {
            assert!(!errors.is_empty());
            for e in errors {
                let _ = e.to_string();
            }
        }
        let _ = bulb::config::nodes::from_env(text, None, None);
    }
});
