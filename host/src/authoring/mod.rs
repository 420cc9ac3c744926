//! The plugin author's loop, behind `herald plugins`:
//!
//! * [`trial`]: `herald plugins test FILE --config cfg.json --sample
//!   alert|export|retention` runs a component once against a sample input,
//!   in the sandbox the daemon uses, and reports what it sent, what it
//!   logged, how long it took and how much memory it used;
//! * [`scaffold`]: `herald plugins new --lang rust|python|js NAME` writes a
//!   project that builds into a working alert destination.
//!
//! (`herald plugins check FILE` is the plugin host's own offline load.)

pub mod scaffold;
pub mod trial;
