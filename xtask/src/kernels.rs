//! Debian kernel packages: resolve current names, download with `apt-get download`, extract with
//! `dpkg-deb -x`, all cached under `cache_dir()` (being written).
