//! Part of the `observability` crate family; see the workspace README.
//!
//! This crate is a placeholder in the workspace: its API lands in a later
//! release.
