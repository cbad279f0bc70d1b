//! Fuzz target: a kernel command line (`/proc/cmdline`) through modprobe's parser
//! (`modprobe.blacklist=`, `MOD.PARAM=VALUE`, quoting), then the dump.
#![no_main]
#![forbid(unsafe_code)]

use modkit_config::modprobe::ModprobeConfig;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut config = ModprobeConfig::default();
    let mut warnings = Vec::new();
    config.parse_cmdline(&text, &mut warnings);
    let _ = warnings.iter().map(ToString::to_string).count();
    let _ = config.show_config();
    let _ = config.options_for("snd_hda_intel").count();
});
