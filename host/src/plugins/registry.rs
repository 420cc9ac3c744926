//! Which plugins are loaded, and keeping that in step with the plugins
//! directory.
//!
//! The directory is polled (every second by default) rather than watched
//! with inotify: polling behaves the same on every filesystem (bind mounts,
//! network filesystems, container volumes), costs one `readdir` and a
//! `stat` per file, and meets the two-second detection goal. A file whose
//! size or modification time changed is re-read; if its bytes are the same
//! (by SHA-256) nothing is reloaded. A file that fails to load is listed
//! with its error and retried when it changes again: a half-copied file
//! fails once, then loads when the copy completes. Writing to a temporary
//! name and renaming into place avoids even that.
//!
//! Precedence: a file in the directory overrides a bundled plugin of the
//! same name; two files naming the same plugin are a conflict and the later
//! one (in file-name order) is rejected.

use super::PluginRuntime;
use super::error::LoadError;
use super::loaded::{LoadedPlugin, Origin, prepare, sha256_hex};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// A file that could not be loaded.
#[derive(Debug, Clone, Serialize)]
pub struct FailedPlugin {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: String,
    /// When the failure happened.
    pub failed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
}

enum FileState {
    Loaded(Arc<LoadedPlugin>),
    Failed(FailedPlugin),
}

struct FileEntry {
    fingerprint: Fingerprint,
    sha256: Option<String>,
    state: FileState,
}

/// The loaded plugins, by name, and the directory's files.
#[derive(Default)]
pub(crate) struct Registry {
    bundled: BTreeMap<String, Arc<LoadedPlugin>>,
    files: BTreeMap<PathBuf, FileEntry>,
    active: HashMap<String, Arc<LoadedPlugin>>,
}

impl Registry {
    pub(crate) fn get(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.active.get(name).cloned()
    }

    pub(crate) fn add_bundled(&mut self, plugin: LoadedPlugin) {
        self.bundled
            .insert(plugin.info.name.clone(), Arc::new(plugin));
        self.recompute();
    }

    /// Active plugins sorted by name, and failed files sorted by path.
    pub(crate) fn snapshot(&self) -> (Vec<Arc<LoadedPlugin>>, Vec<FailedPlugin>) {
        let mut loaded: Vec<_> = self.active.values().cloned().collect();
        loaded.sort_by(|a, b| a.info.name.cmp(&b.info.name));
        let failed = self
            .files
            .values()
            .filter_map(|entry| match &entry.state {
                FileState::Failed(failed) => Some(failed.clone()),
                FileState::Loaded(_) => None,
            })
            .collect();
        (loaded, failed)
    }

    /// The name another file already provides, if `name` is taken.
    fn file_providing(&self, name: &str, except: &Path) -> Option<PathBuf> {
        self.files
            .iter()
            .find_map(|(path, entry)| match &entry.state {
                FileState::Loaded(plugin) if plugin.info.name == name && path != except => {
                    Some(path.clone())
                }
                _ => None,
            })
    }

    fn recompute(&mut self) {
        let mut active: HashMap<String, Arc<LoadedPlugin>> =
            self.bundled.clone().into_iter().collect();
        for entry in self.files.values() {
            if let FileState::Loaded(plugin) = &entry.state {
                active.insert(plugin.info.name.clone(), plugin.clone());
            }
        }
        self.active = active;
    }
}

/// What one scan changed.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ScanReport {
    /// Files loaded for the first time.
    pub loaded: Vec<PathBuf>,
    /// Files whose new contents replaced a loaded plugin.
    pub reloaded: Vec<PathBuf>,
    /// Files removed (their plugins unloaded).
    pub removed: Vec<PathBuf>,
    /// Files that failed to load.
    pub failed: Vec<PathBuf>,
}

impl ScanReport {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty()
            && self.reloaded.is_empty()
            && self.removed.is_empty()
            && self.failed.is_empty()
    }
}

/// The `.wasm` files of `dir`, symbolic links followed (Kubernetes mounts
/// ConfigMap and Secret files as links into a hidden directory it swaps on
/// update, so the fingerprint is the target's). A link whose target is
/// missing or not a file is listed with why, to be reported as failed.
fn list_wasm_files(dir: &Path) -> BTreeMap<PathBuf, Result<Fingerprint, String>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    let fingerprint = |meta: &std::fs::Metadata| Fingerprint {
        len: meta.len(),
        modified: meta.modified().ok(),
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".wasm") && !name.starts_with('.')
        })
        .filter_map(|e| {
            let path = e.path();
            let own = e.metadata().ok()?;
            if !own.file_type().is_symlink() {
                return own.is_file().then(|| (path, Ok(fingerprint(&own))));
            }
            let target = std::fs::read_link(&path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            let listed = match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => Ok(fingerprint(&meta)),
                Ok(_) => Err(format!("symbolic link to {target}, which is not a file")),
                Err(e) => Err(format!(
                    "symbolic link to {target}, which cannot be read: {e}"
                )),
            };
            Some((path, listed))
        })
        .collect()
}

impl PluginRuntime {
    /// Brings the registry in step with the plugins directory once.
    pub async fn rescan(&self) -> ScanReport {
        let mut report = ScanReport::default();
        let Some(dir) = self.inner.config.plugins_dir.clone() else {
            return report;
        };
        let _scan = self.scan_lock.lock().await;
        let present = list_wasm_files(&dir);

        let gone: Vec<PathBuf> = {
            let registry = self.inner.registry.read();
            registry
                .files
                .keys()
                .filter(|p| !present.contains_key(*p))
                .cloned()
                .collect()
        };
        if !gone.is_empty() {
            let mut registry = self.inner.registry.write();
            for path in gone {
                registry.files.remove(&path);
                tracing::info!(path = %path.display(), "plugin file removed; unloaded");
                report.removed.push(path);
            }
            registry.recompute();
        }

        for (path, listed) in present {
            let fingerprint = match listed {
                Ok(fingerprint) => fingerprint,
                Err(why) => {
                    // Fingerprinted by the link itself, so an unchanged
                    // dangling link is reported once, not on every scan.
                    let link = std::fs::symlink_metadata(&path).ok();
                    let fingerprint = Fingerprint {
                        len: link.as_ref().map_or(0, |m| m.len()),
                        modified: link.and_then(|m| m.modified().ok()),
                    };
                    let unchanged = self
                        .inner
                        .registry
                        .read()
                        .files
                        .get(&path)
                        .is_some_and(|entry| entry.fingerprint == fingerprint);
                    if !unchanged {
                        self.record_file(
                            &path,
                            fingerprint,
                            None,
                            Err(LoadError::Io(why)),
                            &mut report,
                            false,
                        );
                    }
                    continue;
                }
            };
            let (unchanged, previous_sha, was_loaded) = {
                let registry = self.inner.registry.read();
                match registry.files.get(&path) {
                    Some(entry) => (
                        entry.fingerprint == fingerprint,
                        entry.sha256.clone(),
                        matches!(entry.state, FileState::Loaded(_)),
                    ),
                    None => (false, None, false),
                }
            };
            if unchanged {
                continue;
            }
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    self.record_file(
                        &path,
                        fingerprint,
                        None,
                        Err(LoadError::Io(e.to_string())),
                        &mut report,
                        false,
                    );
                    continue;
                }
            };
            let sha256 = sha256_hex(&bytes);
            if previous_sha.as_deref() == Some(sha256.as_str()) {
                let mut registry = self.inner.registry.write();
                if let Some(entry) = registry.files.get_mut(&path) {
                    entry.fingerprint = fingerprint;
                }
                continue;
            }
            let result = prepare(self, bytes.into(), Origin::File { path: path.clone() }).await;
            self.record_file(
                &path,
                fingerprint,
                Some(sha256),
                result,
                &mut report,
                was_loaded,
            );
        }
        report
    }

    fn record_file(
        &self,
        path: &Path,
        fingerprint: Fingerprint,
        sha256: Option<String>,
        result: Result<LoadedPlugin, LoadError>,
        report: &mut ScanReport,
        was_loaded: bool,
    ) {
        let mut registry = self.inner.registry.write();
        let result =
            result.and_then(
                |plugin| match registry.file_providing(&plugin.info.name, path) {
                    Some(other) => Err(LoadError::Conflict(format!(
                        "plugin name `{}` is already provided by {}",
                        plugin.info.name,
                        other.display()
                    ))),
                    None => Ok(plugin),
                },
            );
        let state = match result {
            Ok(plugin) => {
                tracing::info!(
                    path = %path.display(), plugin = %plugin.info.name, version = %plugin.info.version,
                    world = %plugin.world, compiled_from = ?plugin.compiled_from,
                    "{}", if was_loaded { "plugin reloaded" } else { "plugin loaded" }
                );
                if was_loaded {
                    report.reloaded.push(path.to_path_buf());
                } else {
                    report.loaded.push(path.to_path_buf());
                }
                FileState::Loaded(Arc::new(plugin))
            }
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "plugin failed to load");
                report.failed.push(path.to_path_buf());
                FileState::Failed(FailedPlugin {
                    path: path.to_path_buf(),
                    error: error.to_string(),
                    failed_at: Utc::now(),
                })
            }
        };
        registry.files.insert(
            path.to_path_buf(),
            FileEntry {
                fingerprint,
                sha256,
                state,
            },
        );
        registry.recompute();
    }

    /// Polls the plugins directory every `poll_interval` until the task is
    /// aborted (dropping the handle does not stop it; abort it).
    pub fn spawn_watcher(&self) -> tokio::task::JoinHandle<()> {
        let runtime = self.clone();
        let interval = self.inner.config.poll_interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                runtime.rescan().await;
            }
        })
    }
}
