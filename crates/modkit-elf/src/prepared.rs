//! Work done once per verifying key, and only for a key that verifies many signatures (every
//! module of a tree is signed by one key): a key counts its plain verifications, and from the
//! [`PLAIN_USES`]-th on it builds what makes the rest faster (ECDSA's fixed-base tables,
//! RSA's Montgomery parameters) and uses it. A single-module check pays nothing.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Signatures a key verifies the plain way before it builds its faster form.
pub(crate) const PLAIN_USES: u32 = 8;

/// A key's count of plain verifications and, after [`PLAIN_USES`] of them, its faster form.
pub(crate) struct Prepared<T> {
    uses: AtomicU32,
    built: OnceLock<T>,
}

impl<T> Default for Prepared<T> {
    fn default() -> Self {
        Prepared {
            uses: AtomicU32::new(0),
            built: OnceLock::new(),
        }
    }
}

impl<T> fmt::Debug for Prepared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("uses", &self.uses.load(Ordering::Relaxed))
            .field("built", &self.built.get().is_some())
            .finish()
    }
}

impl<T> Prepared<T> {
    /// The faster form once it is worth having (made by `build` on first need), else `None`:
    /// verify the plain way.
    pub(crate) fn get(&self, build: impl FnOnce() -> T) -> Option<&T> {
        if let Some(built) = self.built.get() {
            return Some(built);
        }
        if self.uses.fetch_add(1, Ordering::Relaxed) < PLAIN_USES {
            return None;
        }
        Some(self.built.get_or_init(build))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_after_the_plain_uses_then_kept() {
        let prepared = Prepared::<u32>::default();
        for _ in 0..PLAIN_USES {
            assert_eq!(prepared.get(|| unreachable!()), None);
        }
        assert_eq!(prepared.get(|| 7), Some(&7));
        assert_eq!(prepared.get(|| unreachable!()), Some(&7));
    }
}
