//! Shared test helpers.

pub mod elf;
