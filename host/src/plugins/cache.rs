//! On-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes from milliseconds (a small
//! Rust plugin) to seconds (an 18 MB Python one); loading a precompiled
//! artifact takes microseconds to milliseconds. Entries are keyed by the
//! SHA-256 of the component bytes *and* the engine's compatibility hash
//! (Wasmtime version, target, settings), so an upgrade or a config change
//! never loads a stale artifact. Writes are atomic (temp file + rename); an
//! entry that fails to deserialize is recompiled and overwritten.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

/// How a component got into memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompileSource {
    /// Compiled now (and written to the cache).
    Compiled,
    /// Loaded from the cache.
    Cache,
}

/// The cache directory, or no cache.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl CompileCache {
    /// A cache in `dir` (created on first write); `None` disables caching.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    /// Compiles `bytes` (whose SHA-256 is `sha256`), or loads the cached artifact.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, CompileSource)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, CompileSource::Compiled));
        };
        let path = dir.join(format!("{sha256}-{}.cwasm", self.engine_key));
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, CompileSource::Cache)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "discarding unusable compile cache entry")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = self.store(&component, &path) {
            tracing::warn!(path = %path.display(), %error, "could not write compile cache entry");
        }
        Ok((component, CompileSource::Compiled))
    }

    fn store(&self, component: &Component, path: &std::path::Path) -> anyhow::Result<()> {
        let dir = path.parent().expect("cache entries live in a directory");
        crate::private_files::private_dir(dir)?;
        let serialized = component.serialize().map_err(anyhow::Error::from)?;
        crate::private_files::write_private(path, &serialized)?;
        Ok(())
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &PathBuf) -> wasmtime::Result<Component> {
    // SAFETY: the file was produced by `Component::serialize` of an engine
    // with the same compatibility hash (it is in the file name), written
    // atomically into the daemon's own data directory. Wasmtime validates
    // the header and rejects artifacts from other versions or settings.
    unsafe { Component::deserialize_file(engine, path) }
}
