//! Any text as the config file: `config::parse` answers with a config or with an error that
//! names the file, and never panics.

#![no_main]

use atlas_backup_exporter::config;
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "fuzz.yml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `*_file` keys make the parser read that file: a fuzzer that finds `/dev/zero` or a FIFO
    // would report a hang of the machine, not of the parser. Keys are looked for after YAML's
    // own unescaping, aliases and merges, so `"private_key\x5ffile"` is seen too.
    if names_a_file(text) {
        return;
    }
    if let Err(error) = config::parse(text, ORIGIN) {
        let message = error.to_string();
        assert!(message.starts_with(ORIGIN), "{message}");
    }
});

fn names_a_file(text: &str) -> bool {
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(value) => has_file_key(&value),
        // Not YAML: the parser refuses it before reading any file.
        Err(_) => false,
    }
}

fn has_file_key(value: &serde_yaml::Value) -> bool {
    match value {
        serde_yaml::Value::Mapping(map) => map
            .iter()
            .any(|(key, value)| is_file_key(key) || has_file_key(key) || has_file_key(value)),
        serde_yaml::Value::Sequence(items) => items.iter().any(has_file_key),
        serde_yaml::Value::Tagged(tagged) => has_file_key(&tagged.value),
        _ => false,
    }
}

fn is_file_key(key: &serde_yaml::Value) -> bool {
    match key {
        serde_yaml::Value::String(key) => key.ends_with("_file"),
        serde_yaml::Value::Tagged(tagged) => is_file_key(&tagged.value),
        _ => false,
    }
}
