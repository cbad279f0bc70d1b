//! `cargo xtask kmods` (being written).

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<()> {
    anyhow::bail!("cargo xtask kmods is not written yet")
}
