//! kmod's hash table iteration order, which decides the order of the modules that are not in
//! modules.order and the line order of modules.symbols.
//!
//! kmod (`shared/hash.c`) hashes keys with Paul Hsieh's SuperFastHash, keeps `n_buckets` (a
//! power of two) buckets, each sorted by `strcmp`, and iterates bucket by bucket. depmod uses 512
//! buckets for modules by name and 2048 for symbols.

/// Buckets of depmod's `modules_by_name` table (`hash_new(512, ...)` in `tools/depmod.c`).
pub const MODULE_BUCKETS: u32 = 512;
/// Buckets of depmod's `symbols` table (`hash_new(2048, ...)` in `tools/depmod.c`).
pub const SYMBOL_BUCKETS: u32 = 2048;

/// `hash_superfast` of kmod `shared/hash.c`. The 16-bit loads are native-endian and the single
/// bytes are C `char` (signed on x86), exactly as kmod reads them on the host it runs on.
pub fn superfast(key: &[u8]) -> u32 {
    let load16 = |b: &[u8]| -> u32 { u32::from(u16::from_ne_bytes([b[0], b[1]])) };
    // `char` is signed on the hosts kmod is built for here (x86); widen as C does.
    let signed = |b: u8| -> u32 { i32::from(b as i8) as u32 };
    let len = key.len() as u32;
    let mut hash: u32 = len;
    let rem = key.len() & 3;
    let mut chunks = key.chunks_exact(4);
    for chunk in &mut chunks {
        hash = hash.wrapping_add(load16(&chunk[0..2]));
        let tmp = (load16(&chunk[2..4]) << 11) ^ hash;
        hash = (hash << 16) ^ tmp;
        hash = hash.wrapping_add(hash >> 11);
    }
    let tail = chunks.remainder();
    match rem {
        3 => {
            hash = hash.wrapping_add(load16(&tail[0..2]));
            hash ^= hash << 16;
            hash ^= signed(tail[2]) << 18;
            hash = hash.wrapping_add(hash >> 11);
        }
        2 => {
            hash = hash.wrapping_add(load16(&tail[0..2]));
            hash ^= hash << 11;
            hash = hash.wrapping_add(hash >> 17);
        }
        1 => {
            hash = hash.wrapping_add(signed(tail[0]));
            hash ^= hash << 10;
            hash = hash.wrapping_add(hash >> 1);
        }
        _ => {}
    }
    hash ^= hash << 3;
    hash = hash.wrapping_add(hash >> 5);
    hash ^= hash << 4;
    hash = hash.wrapping_add(hash >> 17);
    hash ^= hash << 25;
    hash = hash.wrapping_add(hash >> 6);
    hash
}

/// The bucket a key lands in, for a table of `n_buckets` (a power of two).
pub fn bucket(key: &[u8], n_buckets: u32) -> u32 {
    superfast(key) & (n_buckets - 1)
}

/// Compare two keys in kmod's iteration order: by bucket, then by `strcmp` within the bucket.
#[cfg(test)]
fn cmp_iteration(a: (u32, &[u8]), b: (u32, &[u8])) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1))
}

/// Sort `items` into the order kmod's `hash_iter_next` visits their keys.
pub fn sort_in_iteration_order<T>(items: &mut Vec<T>, n_buckets: u32, key: impl Fn(&T) -> &[u8]) {
    // Sort (bucket, index) pairs, comparing the borrowed keys, then permute: no key copies.
    let mut order: Vec<(u32, usize)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (bucket(key(item), n_buckets), i))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| key(&items[a.1]).cmp(key(&items[b.1])))
    });
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.into_iter().filter_map(|(_, i)| slots[i].take()));
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    /// kmod 30 wrote these symbols in this order; sorting them from reversed order must give
    /// the same order back.
    #[test]
    fn symbol_order_matches_kmod() {
        let kmod: Vec<&str> = lines(include_str!("../testdata/symbols-order.txt"))
            .iter()
            .map(|l| l.split(' ').nth(1).unwrap().trim_start_matches("symbol:"))
            .collect();
        assert_eq!(kmod.len(), 60);
        let mut ours = kmod.clone();
        ours.reverse();
        sort_in_iteration_order(&mut ours, SYMBOL_BUCKETS, |s| s.as_bytes());
        assert_eq!(ours, kmod);
    }

    /// kmod 30's module order for a tree without modules.order (its by-name table).
    #[test]
    fn module_order_matches_kmod() {
        let kmod = lines(include_str!("../testdata/modules-order.txt"));
        assert_eq!(kmod.len(), 51);
        let mut ours = kmod.clone();
        ours.sort_unstable();
        sort_in_iteration_order(&mut ours, MODULE_BUCKETS, |s| s.as_bytes());
        assert_eq!(ours, kmod);
    }

    #[test]
    fn iteration_order_is_bucket_then_key() {
        let mut keys = vec!["zeta", "alpha", "mid", "beta", "omega"];
        sort_in_iteration_order(&mut keys, 2, |k| k.as_bytes());
        for pair in keys.windows(2) {
            let a = (bucket(pair[0].as_bytes(), 2), pair[0].as_bytes());
            let b = (bucket(pair[1].as_bytes(), 2), pair[1].as_bytes());
            assert_eq!(cmp_iteration(a, b), Ordering::Less);
        }
    }
}
