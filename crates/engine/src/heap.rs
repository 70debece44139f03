//! Returning freed heap pages to the OS after load. Building the tokenizer
//! copies the GGUF vocabulary and merges (about a hundred thousand small
//! strings), and those copies are freed before the weights are read; glibc
//! keeps such freed chunks resident when live allocations sit above them, so
//! without this they would count in peak RSS next to the weights. Also run
//! when a request's KV cache is dropped: glibc keeps freed activation and
//! cache buffers as fragmented free space between live chunks, and without
//! a trim the peak RSS crept up by megabytes over successive requests. One
//! of the few modules allowed `unsafe`: calling glibc's `malloc_trim` is an
//! FFI call.
#![allow(unsafe_code, reason = "calling glibc's malloc_trim is an FFI call")]

/// Give free heap pages back to the OS (glibc only; a no-op elsewhere).
pub(crate) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: `malloc_trim` takes a plain integer, touches only the
        // allocator's own free lists, and is thread-safe in glibc.
        unsafe {
            malloc_trim(0);
        }
    }
}
