//! `modinfo`: show the `.modinfo` fields of kernel modules, as kmod's modinfo does (being written).

use std::ffi::OsString;
use std::process::ExitCode;

pub fn main(_args: Vec<OsString>) -> ExitCode {
    eprintln!("modinfo: not written yet");
    ExitCode::from(1)
}
