//! The built-in plugins, compiled from `plugins/` by the build script and
//! embedded in the binary so `herald serve` works with nothing else on disk.
//! A file in the plugins directory whose plugin has the same name overrides
//! the bundled one.

macro_rules! bundled {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_bytes!(concat!(env!("HERALD_GUEST_ARTIFACTS"), "/", $file)) as &[u8])),*]
    };
}

/// `(file name, component bytes)` of every built-in plugin.
pub(crate) const BUNDLED: &[(&str, &[u8])] = bundled![
    "webhook.wasm",
    "slack.wasm",
    "pagerduty.wasm",
    "retention.wasm",
    "s3_export.wasm",
];
