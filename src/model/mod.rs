//! Pure models shared by the store, which persists them, and the services,
//! which move them: no IO, and nothing here imports a module above it.
//!
//! - [`kernel`]: the execution kernel's states, the only transitions between
//!   them (seed 003's tables), its stored rows, history kinds and stream
//!   events.

pub mod kernel;
