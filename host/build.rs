//! Builds the guest plugins (`../plugins`, a separate workspace) for
//! `wasm32-wasip2` so the host can embed the built-in ones.
//!
//! Why here: "one command to run" means `cargo run` must produce a daemon
//! with its plugins inside, and "one command to test" means the fault
//! fixtures the tests load are compiled from source too. The guest build
//! uses its own target directory next to the host's (`target/guest`), so the
//! nested cargo never waits on the outer build's lock, and debug and release
//! host builds share one guest build.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// Guest packages built in a cargo invocation of their own. Each enables a
/// different world feature of the SDK, and one compilation of the SDK can
/// hold only one world's exports (their generated export macros share
/// names), while cargo unifies the features of packages built together.
/// Everything else targets `alert-destination` and builds in one go.
pub const OWN_WORLD_PACKAGES: &[&str] = &["retention", "s3-export"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let repo = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let plugins = repo.join("plugins");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let guest_target = guest_target_dir(&out_dir);

    watch_sources(&plugins, &repo.join("wit"));
    ensure_target_installed();

    let mut selections: Vec<Vec<String>> = vec![
        std::iter::once("--workspace".to_string())
            .chain(OWN_WORLD_PACKAGES.iter().map(|p| format!("--exclude={p}")))
            .collect(),
    ];
    selections.extend(
        OWN_WORLD_PACKAGES
            .iter()
            .map(|p| vec![format!("--package={p}")]),
    );
    for selection in selections {
        let status = nested_cargo()
            .arg("build")
            .arg("--release")
            .arg("--locked")
            .args(["--target", TARGET])
            .args(&selection)
            .arg("--manifest-path")
            .arg(plugins.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&guest_target)
            .status()
            .expect("failed to run cargo for the guest plugins");
        if !status.success() {
            panic!(
                "building the guest plugins in {} ({}) failed (see the errors above)",
                plugins.display(),
                selection.join(" ")
            );
        }
    }

    let artifacts = guest_target.join(TARGET).join("release");
    println!(
        "cargo:rustc-env=HERALD_GUEST_ARTIFACTS={}",
        artifacts.display()
    );
}

/// `<target>/guest`, found by walking up from `OUT_DIR`
/// (`<target>/<profile>/build/herald-<hash>/out`).
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .nth(4)
        .map(|target| target.join("guest"))
        .unwrap_or_else(|| out_dir.join("guest"))
}

/// Re-run when any guest source or the contract changes; the guest target
/// directory (and a stray `plugins/target`) are not sources.
fn watch_sources(plugins: &Path, wit: &Path) {
    println!("cargo:rerun-if-changed={}", wit.display());
    let entries = std::fs::read_dir(plugins).expect("plugins/ is readable");
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == "target" || name == "node_modules" {
            continue;
        }
        println!("cargo:rerun-if-changed={}", entry.path().display());
    }
}

/// Installs the wasm32-wasip2 standard library when the toolchain lacks it,
/// so a fresh machine with only rustup needs no manual step.
fn ensure_target_installed() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let installed = sysroot
        .map(|root| Path::new(&root).join("lib/rustlib").join(TARGET).exists())
        .unwrap_or(false);
    if installed {
        return;
    }
    let mut command = Command::new("rustup");
    command.args(["target", "add", TARGET]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        command.args(["--toolchain", &toolchain]);
    }
    let status = command
        .status()
        .expect("rustup is needed to install the wasm32-wasip2 target");
    if !status.success() {
        panic!("`rustup target add {TARGET}` failed");
    }
}

/// A cargo command that does not inherit the outer build's settings
/// (flags, wrappers such as clippy-driver, the target directory).
fn nested_cargo() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    for (key, _) in std::env::vars() {
        let inherited = key.starts_with("CARGO_")
            && key != "CARGO_HOME"
            && key != "CARGO_MAKEFLAGS"
            && key != "CARGO_NET_OFFLINE"
            && key != "CARGO_REGISTRIES_CRATES_IO_PROTOCOL";
        if inherited || key.starts_with("RUSTC") || key == "RUSTFLAGS" || key == "RUSTDOCFLAGS" {
            command.env_remove(&key);
        }
    }
    command.env("RUSTUP_AUTO_INSTALL", "1");
    command
}
