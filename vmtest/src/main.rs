//! The guest `/init` of `cargo xtask vmtest` (being written).

fn main() {}
