//! The configuration examples in the README and `docs/` are parsed by the
//! daemon's own config loader, so an example cannot drift from the config
//! types: a renamed or removed field fails here (`FileConfig` refuses
//! unknown fields) before a user copies it.
//!
//! A TOML block whose first line is `# Cargo.toml` is a plugin's manifest,
//! not a Herald config: it is parsed as TOML only (the example plugins
//! themselves are built by `examples.rs`).

use std::path::{Path, PathBuf};

use herald::config::FileConfig;

/// Every fenced `toml` block of `text`, with the line it starts on.
fn toml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == "```toml" => current = Some((n + 1, String::new())),
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// The README and every Markdown file under `docs/`.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("README.md")];
    let docs = std::fs::read_dir(root.join("docs")).expect("docs/ exists");
    files.extend(
        docs.map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "md")),
    );
    files.sort();
    files
}

#[test]
fn every_config_example_in_the_docs_is_accepted_by_the_config_loader() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = 0;
    let mut failures = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, block) in toml_blocks(&text) {
            let place = format!("{}:{line}", file.display());
            if block.trim_start().starts_with("# Cargo.toml") {
                if let Err(e) = block.parse::<toml::Table>() {
                    failures.push(format!("{place}: not TOML: {e}"));
                }
                continue;
            }
            let path = dir.path().join("herald.toml");
            std::fs::write(&path, &block).unwrap();
            match FileConfig::load(&path) {
                Ok(_) => configs += 1,
                Err(e) => failures.push(format!("{place}: {e:#}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        configs >= 3,
        "only {configs} config examples found: is the extraction broken?"
    );
}

/// The check can fail: a misspelt field in an otherwise valid example is
/// refused with the field's name.
#[test]
fn a_misspelt_field_in_an_example_would_be_caught() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let (_, block) = toml_blocks(&readme)
        .into_iter()
        .find(|(_, block)| block.contains("pause_after_failures"))
        .expect("the README shows the [automations] settings");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.toml");
    std::fs::write(
        &path,
        block.replace("pause_after_failures", "pause_after_failure"),
    )
    .unwrap();
    let error = format!("{:#}", FileConfig::load(&path).unwrap_err());
    assert!(error.contains("pause_after_failure"), "{error}");
}
