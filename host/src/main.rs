//! The `herald` binary; everything lives in the library (see [`herald::cli`]).
//!
//! The daemon allocates with mimalloc rather than the system allocator:
//! ingest builds and frees many small JSON values per span, and glibc's
//! malloc spent a third of the ingest path's time in allocation and free
//! (consolidating freed chunks); see README's `ingest` benchmark.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    herald::cli::main()
}
