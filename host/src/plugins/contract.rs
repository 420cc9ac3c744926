//! What the host checks about a component before linking it: that it speaks
//! `herald:automation@0.1.x`, which world it targets, and that it imports
//! nothing that world does not provide.
//!
//! The world is read from the component's exports (each world exports
//! `plugin` plus exactly one action interface), not from a manifest, so a
//! component cannot claim one world and use another's capabilities. Every
//! import is then checked against that world's list, which produces a
//! message naming the offending import instead of Wasmtime's generic
//! linker error.

use super::error::LoadError;
use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The contract package this host implements.
pub const CONTRACT_PACKAGE: &str = "herald:automation";
/// Its version. Components built against any `0.1.x` are accepted.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The world a plugin targets: its kind and its capability set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// Imports log + http; exports alerting.
    AlertDestination,
    /// Imports log + object-store; exports exporting.
    ExportDestination,
    /// Imports log + records; exports retention.
    RetentionPolicy,
}

impl World {
    /// Every world, in order.
    pub const ALL: [World; 3] = [
        World::AlertDestination,
        World::ExportDestination,
        World::RetentionPolicy,
    ];

    /// The WIT world name.
    pub fn name(self) -> &'static str {
        match self {
            World::AlertDestination => "alert-destination",
            World::ExportDestination => "export-destination",
            World::RetentionPolicy => "retention-policy",
        }
    }

    /// The action interface it exports.
    pub fn action_interface(self) -> &'static str {
        match self {
            World::AlertDestination => "alerting",
            World::ExportDestination => "exporting",
            World::RetentionPolicy => "retention",
        }
    }

    /// The contract interfaces it may import.
    pub fn imports(self) -> &'static [&'static str] {
        match self {
            World::AlertDestination => &["types", "log", "http"],
            World::ExportDestination => &["types", "log", "object-store"],
            World::RetentionPolicy => &["types", "log", "records"],
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `herald:automation/http@0.1.0` split into its parts.
struct InterfaceName<'a> {
    package: &'a str,
    interface: &'a str,
    version: Option<&'a str>,
}

fn parse_name(name: &str) -> Option<InterfaceName<'_>> {
    let (path, version) = match name.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (name, None),
    };
    let (package, interface) = path.split_once('/')?;
    Some(InterfaceName {
        package,
        interface,
        version,
    })
}

fn compatible(version: Option<&str>) -> bool {
    version.is_some_and(|v| v == "0.1" || v.starts_with("0.1."))
}

/// Checks the raw bytes before compiling, for the clearest message.
pub fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotAComponent(
            "not a WebAssembly file (it does not start with the \\0asm magic)".into(),
        ));
    }
    // Core modules have version 1 (layer 0); components have layer 1.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::NotAComponent(
            "a core WebAssembly module, not a component: build for wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
                .into(),
        ));
    }
    Ok(())
}

/// Finds the component's world and checks its imports against it.
pub fn inspect(engine: &Engine, component: &Component) -> Result<World, LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();

    let mut plugin_export = None;
    let mut worlds = Vec::new();
    for name in &exports {
        let Some(parsed) = parse_name(name) else {
            continue;
        };
        if parsed.package != CONTRACT_PACKAGE {
            continue;
        }
        if !compatible(parsed.version) {
            return Err(LoadError::Contract(format!(
                "exports `{name}`, built against {CONTRACT_PACKAGE}@{}; this host implements {CONTRACT_PACKAGE}@{CONTRACT_VERSION}",
                parsed.version.unwrap_or("(no version)")
            )));
        }
        if parsed.interface == "plugin" {
            plugin_export = Some(name);
        }
        if let Some(world) = World::ALL
            .into_iter()
            .find(|w| w.action_interface() == parsed.interface)
        {
            worlds.push(world);
        }
    }
    if plugin_export.is_none() {
        return Err(LoadError::Contract(format!(
            "does not export {CONTRACT_PACKAGE}/plugin@{CONTRACT_VERSION}: not a Herald plugin (it exports: {})",
            if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            }
        )));
    }
    let world = match worlds.as_slice() {
        [world] => *world,
        [] => {
            return Err(LoadError::Contract(
                "exports no action interface (alerting, exporting or retention): it targets none of the worlds".into(),
            ));
        }
        _ => {
            return Err(LoadError::Contract(format!(
                "exports the action interfaces of several worlds ({}); a plugin targets exactly one",
                worlds
                    .iter()
                    .map(|w| w.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };

    for (name, _) in ty.imports(engine) {
        check_import(world, name)?;
    }
    Ok(world)
}

fn check_import(world: World, name: &str) -> Result<(), LoadError> {
    let provided = || {
        world
            .imports()
            .iter()
            .filter(|i| **i != "types")
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(parsed) = parse_name(name) else {
        return Err(LoadError::Import(format!(
            "imports `{name}`, which Herald does not provide to plugins"
        )));
    };
    match parsed.package {
        CONTRACT_PACKAGE
            if world.imports().contains(&parsed.interface) && compatible(parsed.version) =>
        {
            Ok(())
        }
        CONTRACT_PACKAGE => Err(LoadError::Import(format!(
            "imports `{name}`, which the {world} world does not provide (it provides {CONTRACT_PACKAGE} {})",
            provided()
        ))),
        "wasi:http" => Err(LoadError::Import(format!(
            "imports `{name}`: plugins have no direct network access; use {CONTRACT_PACKAGE}/http (for JavaScript, disable the `http` and `fetch-event` features)"
        ))),
        package if package.starts_with("wasi:") => Ok(()),
        _ => Err(LoadError::Import(format!(
            "imports `{name}`, which Herald does not provide to plugins (the {world} world provides {CONTRACT_PACKAGE} {} and WASI 0.2)",
            provided()
        ))),
    }
}
