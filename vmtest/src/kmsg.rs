//! Non-blocking reader of the kernel log through `/dev/kmsg` (one record per `read`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

#[derive(Debug)]
pub struct Kmsg {
    file: File,
}

impl Kmsg {
    /// Opens `/dev/kmsg` positioned after the messages already logged (the boot log).
    pub fn open() -> io::Result<Kmsg> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        file.seek(SeekFrom::End(0))?;
        Ok(Kmsg { file })
    }

    /// The message texts logged since the last call, oldest first.
    pub fn drain(&mut self) -> Vec<String> {
        let mut messages = Vec::new();
        // Records are at most 8 KiB (kernel/printk/printk.c CONSOLE_EXT_LOG_MAX).
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(len) => {
                    if let Some(text) = record_text(&buf[..len]) {
                        messages.push(text);
                    }
                }
                // EPIPE: older records were overwritten before we read them; go on reading.
                Err(err) if err.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // EAGAIN (nothing more) or anything else: stop here.
                Err(_) => break,
            }
        }
        messages
    }
}

/// The message of one `/dev/kmsg` record `PRIO,SEQ,USEC,FLAGS;TEXT\n[ KEY=VALUE\n]...`
/// (Documentation/ABI/testing/dev-kmsg).
fn record_text(record: &[u8]) -> Option<String> {
    let record = String::from_utf8_lossy(record);
    let (_, rest) = record.split_once(';')?;
    let text = rest.split('\n').next().unwrap_or_default();
    Some(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        assert_eq!(
            record_text(b"6,1234,5678901,-;[hello_api] Hello, World!\n").as_deref(),
            Some("[hello_api] Hello, World!")
        );
        assert_eq!(
            record_text(
                b"3,99,1,-;hello_feature: Unknown symbol api_test (err -2)\n SUBSYSTEM=x\n"
            )
            .as_deref(),
            Some("hello_feature: Unknown symbol api_test (err -2)")
        );
        assert_eq!(record_text(b"garbage without separator"), None);
    }
}
