//! What the host checks about a component before linking it: which
//! version of `herald:automation` it speaks (0.2.x, or 0.1.x, the first
//! contract, still loaded), which world it targets, and that it imports
//! nothing that world does not provide.
//!
//! The world is read from the component's exports (each world exports
//! `plugin` plus exactly one action interface), not from a manifest, so a
//! component cannot claim one world and use another's capabilities. Every
//! import is then checked against that world's list, which produces a
//! message naming the offending import instead of Wasmtime's generic
//! linker error. A component speaks one version: its contract imports and
//! exports must all name it.

use super::error::LoadError;
use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The contract package this host implements.
pub const CONTRACT_PACKAGE: &str = "herald:automation";
/// Its current version. Components built against any `0.2.x` or `0.1.x`
/// are accepted.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// A version of the contract the host links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ContractVersion {
    /// `herald:automation@0.1.x`: the first contract (`wit/v0.1.0`). Its
    /// `plugin-error` has no status code.
    #[serde(rename = "0.1.0")]
    V0_1,
    /// `herald:automation@0.2.x`: the current contract (`wit/`).
    #[serde(rename = "0.2.0")]
    V0_2,
}

impl ContractVersion {
    /// The version a component's `@x.y.z` names, if the host links it.
    fn of(version: Option<&str>) -> Option<Self> {
        let version = version?;
        let minor = |m: &str| version == m || version.starts_with(&format!("{m}."));
        if minor("0.2") {
            Some(Self::V0_2)
        } else if minor("0.1") {
            Some(Self::V0_1)
        } else {
            None
        }
    }

    /// `0.1.0` or `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_1 => "0.1.0",
            Self::V0_2 => "0.2.0",
        }
    }
}

impl std::fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// Finds the component's contract version and world, and checks its
/// imports against them.
pub fn inspect(
    engine: &Engine,
    component: &Component,
) -> Result<(ContractVersion, World), LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();

    let mut plugin_export = None;
    let mut worlds = Vec::new();
    let mut version: Option<(ContractVersion, &str)> = None;
    for name in &exports {
        let Some(parsed) = parse_name(name) else {
            continue;
        };
        if parsed.package != CONTRACT_PACKAGE {
            continue;
        }
        let Some(this) = ContractVersion::of(parsed.version) else {
            return Err(LoadError::Contract(format!(
                "exports `{name}`, built against {CONTRACT_PACKAGE}@{}; this host implements {CONTRACT_PACKAGE}@{CONTRACT_VERSION} (and 0.1.0)",
                parsed.version.unwrap_or("(no version)")
            )));
        };
        match version {
            Some((first, first_name)) if first != this => {
                return Err(mixed_versions(first_name, name));
            }
            Some(_) => {}
            None => version = Some((this, name)),
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

    let (version, first_export) = version.expect("a plugin export was found");
    for (name, _) in ty.imports(engine) {
        check_import(world, name)?;
        if parse_name(name).is_some_and(|p| {
            p.package == CONTRACT_PACKAGE && ContractVersion::of(p.version) != Some(version)
        }) {
            return Err(mixed_versions(first_export, name));
        }
    }
    Ok((version, world))
}

fn mixed_versions(one: &str, other: &str) -> LoadError {
    LoadError::Contract(format!(
        "mixes contract versions (`{one}` and `{other}`): a plugin is built against one version of {CONTRACT_PACKAGE}"
    ))
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
            if world.imports().contains(&parsed.interface)
                && ContractVersion::of(parsed.version).is_some() =>
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

#[cfg(test)]
mod tests {
    use super::ContractVersion::{self, V0_1, V0_2};

    #[test]
    fn versions_are_matched_by_their_minor() {
        let of = ContractVersion::of;
        assert_eq!(of(Some("0.2.0")), Some(V0_2));
        assert_eq!(of(Some("0.2.7")), Some(V0_2));
        assert_eq!(of(Some("0.1.0")), Some(V0_1));
        assert_eq!(of(Some("0.3.0")), None);
        assert_eq!(of(Some("0.20.0")), None);
        assert_eq!(of(Some("1.0.0")), None);
        assert_eq!(of(None), None);
        assert_eq!(V0_1.to_string(), "0.1.0");
    }
}
