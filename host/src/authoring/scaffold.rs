//! `herald plugins new --lang rust|python|js NAME`: a project that builds
//! into a working alert destination (it posts each alert to a URL as JSON,
//! with an optional bearer token as its secret field).
//!
//! Every project carries a copy of the WIT contract this binary speaks
//! (`wit/`), a build command, and a README with the loop: build, `herald
//! plugins check`, `herald plugins test --sample alert`, drop the `.wasm`
//! into the plugins directory. The Rust project depends on the guest SDK
//! (`herald-plugin`) by path, in the Herald checkout this binary was built
//! from.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The language of a new project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// Rust with the `herald-plugin` SDK (cargo, wasm32-wasip2).
    Rust,
    /// Python with componentize-py.
    Python,
    /// JavaScript with componentize-js.
    Js,
}

/// The contract, as this binary speaks it.
const WIT: &[(&str, &str)] = &[
    ("actions.wit", include_str!("../../../wit/actions.wit")),
    ("http.wit", include_str!("../../../wit/http.wit")),
    ("log.wit", include_str!("../../../wit/log.wit")),
    (
        "object-store.wit",
        include_str!("../../../wit/object-store.wit"),
    ),
    ("records.wit", include_str!("../../../wit/records.wit")),
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];

/// Where the guest SDK of the checkout this binary was built from lives.
fn sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk")
}

/// Checks a plugin name: it becomes the `action.type`.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "{name:?} is not a plugin name: use lowercase letters, digits and '-', starting \
             with a letter (it becomes the automation's action.type)"
        );
    }
    Ok(())
}

/// Writes a new `language` project for plugin `name` into `dir` (which
/// must not exist); returns the files written.
pub fn create(language: Language, name: &str, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    check_name(name)?;
    if dir.exists() {
        bail!("{} already exists; choose another directory", dir.display());
    }
    let crate_name = name.replace('-', "_");
    let sdk = sdk_path();
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    let (files, artifact, build): (Vec<(&str, String)>, String, &str) = match language {
        Language::Rust => (
            vec![
                (
                    "Cargo.toml",
                    fill(include_str!("templates/rust_cargo.toml")),
                ),
                (
                    ".cargo/config.toml",
                    fill(include_str!("templates/rust_cargo_config.toml")),
                ),
                ("src/lib.rs", fill(include_str!("templates/rust_lib.rs"))),
            ],
            format!("target/wasm32-wasip2/release/{crate_name}.wasm"),
            "rustup target add wasm32-wasip2   # once\ncargo build --release",
        ),
        Language::Python => (
            vec![
                ("app.py", fill(include_str!("templates/python_app.py"))),
                ("build.sh", fill(include_str!("templates/python_build.sh"))),
            ],
            format!("{name}.wasm"),
            "./build.sh   # installs componentize-py into .toolchain/ the first time",
        ),
        Language::Js => (
            vec![
                ("plugin.js", fill(include_str!("templates/js_plugin.js"))),
                ("build.mjs", fill(include_str!("templates/js_build.mjs"))),
                ("build.sh", fill(include_str!("templates/js_build.sh"))),
            ],
            format!("{name}.wasm"),
            "./build.sh   # installs componentize-js into .toolchain/ the first time",
        ),
    };
    let readme = format!(
        "# {name}\n\nA Herald alert destination: posts each alert to `url` as JSON \
         (`{{\"text\": …, \"alert\": …}}`), with `Authorization: Bearer <token>` when \
         `token` (a secret field) is set.\n\n```sh\n{build}\nherald plugins check \
         {artifact}\necho '{{\"url\": \"http://127.0.0.1:9000/hook\"}}' > config.json\n\
         herald plugins test {artifact} --config config.json --sample alert\n\
         cp {artifact} <the daemon's plugins directory>/\n```\n\nThen allow it its hosts \
         in the daemon's config (plugins reach nothing by default):\n\n```toml\n\
         [plugins.{name}]\nallowed_hosts = [\"hooks.example.com\"]\n```\n\nand use it in \
         an automation's action: `{{\"type\": \"{name}\", \"url\": \"…\"}}`. `wit/` is \
         the contract (herald:automation@0.2.0) this project was made for; see the \
         authoring guide, docs/plugins.md in the Herald repository.\n"
    );
    let mut written = Vec::new();
    let mut write = |relative: &str, contents: &str| -> anyhow::Result<()> {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for (relative, contents) in &files {
        write(relative, contents)?;
    }
    write("README.md", &readme)?;
    write(".gitignore", "target/\n.toolchain/\n*.wasm\n__pycache__/\n")?;
    for (file, contents) in WIT {
        write(&format!("wit/{file}"), contents)?;
    }
    #[cfg(unix)]
    if let Ok(path) = dir.join("build.sh").canonicalize() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_action_types() {
        assert!(check_name("teams-alerts").is_ok());
        for bad in ["", "Teams", "9lives", "a_b", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_project_has_its_sources_the_contract_and_a_readme() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("echo");
        let files = create(Language::Python, "echo", &target).unwrap();
        assert!(files.iter().any(|f| f.ends_with("app.py")));
        assert!(target.join("wit/worlds.wit").is_file());
        let app = std::fs::read_to_string(target.join("app.py")).unwrap();
        assert!(app.contains("NAME = \"echo\""), "{app}");
        assert!(
            create(Language::Rust, "echo", &target).is_err(),
            "never overwrites"
        );
    }
}
