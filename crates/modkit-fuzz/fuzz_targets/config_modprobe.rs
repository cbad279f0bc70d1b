//! Fuzz target: a modprobe.d file through the parser, then every query and `modprobe -c`'s
//! dump.
#![no_main]
#![forbid(unsafe_code)]

use std::path::Path;

use modkit_config::modprobe::ModprobeConfig;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut config = ModprobeConfig::default();
    let mut warnings = Vec::new();
    config.parse(&text, Path::new("/etc/modprobe.d/fuzz.conf"), &mut warnings);
    for w in &warnings {
        let _ = (w.to_string(), w.file(), w.line());
    }
    let _ = config.show_config();
    let names: Vec<String> = config.aliases.iter().map(|a| a.module.clone()).collect();
    for name in names
        .iter()
        .map(String::as_str)
        .chain(["snd_hda_intel", "", "*"])
    {
        let _ = config.is_blacklisted(name);
        let _ = config.options_for(name).count();
        let _ = config.softdeps_for(name).map(|s| s.kmod_value()).count();
        let _ = (config.install_command(name), config.remove_command(name));
    }
    for word in text.split_whitespace().take(16) {
        let _ = modkit_glob::name::alias_normalize(word);
    }
});
