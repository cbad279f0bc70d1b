//! The exported C functions of `libkmod.h`, each a thin door into the [`Registry`]: C strings
//! in, tokens out, a negative errno (or NULL) for a NULL or dead handle. This module is the
//! crate's one `unsafe` exception: reading callers' C strings, writing their out-pointers and
//! calling their log function.
#![allow(
    unsafe_code,
    reason = "the C ABI of libkmod: C strings, out-pointers, callbacks"
)]

use std::ffi::{CStr, CString, c_char, c_int, c_long, c_uint, c_ulong, c_void};
use std::path::PathBuf;
use std::ptr;
use std::sync::{Mutex, MutexGuard};

use crate::state::{ConfigKind, Item, LogRecord, LogTarget, Registry};

// Each exported function in its version node (`NAME@@NODE`), from libkmod.map: assembler
// directives, no code. They sit in this module so that they are assembled with the functions
// they name (an assembler versions only symbols it defines); unit test binaries are linked
// without the version script, so they go without.
#[cfg(not(test))]
include!(concat!(env!("OUT_DIR"), "/symver.rs"));

/// libkmod.h's `struct kmod_ctx`: opaque, C only ever holds pointers to it.
#[derive(Debug)]
pub enum KmodCtx {}
/// libkmod.h's `struct kmod_module`.
#[derive(Debug)]
pub enum KmodModule {}
/// libkmod.h's `struct kmod_list`.
#[derive(Debug)]
pub enum KmodList {}
/// libkmod.h's `struct kmod_config_iter`.
#[derive(Debug)]
pub enum KmodConfigIter {}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// Run `f` on the registry, then hand the messages it logged to their log functions with the
/// registry unlocked (a log function may call the library).
fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let (value, pending) = {
        let mut guard: MutexGuard<'_, Option<Registry>> = match REGISTRY.lock() {
            Ok(guard) => guard,
            // A panic cannot cross the C boundary (extern "C" aborts), so a poisoned lock
            // only means an earlier caller's thread died elsewhere; the data is whole.
            Err(poisoned) => poisoned.into_inner(),
        };
        let registry = guard.get_or_insert_with(Registry::default);
        let value = f(registry);
        (value, std::mem::take(&mut registry.pending))
    };
    for record in pending {
        emit(&record);
    }
    value
}

unsafe extern "C" {
    /// log_shim.c: calls `log_fn` with a `va_list` of the variadic arguments.
    fn modkit_capi_call_log(
        log_fn: LogFn,
        data: *mut c_void,
        priority: c_int,
        file: *const c_char,
        line: c_int,
        function: *const c_char,
        format: *const c_char,
        ...
    );
}

/// libkmod.h's log function type; the `va_list` is opaque here (a pointer on x86-64 and the
/// other ABIs Debian builds for, where a `va_list` parameter decays to one).
type LogFn = unsafe extern "C" fn(
    data: *mut c_void,
    priority: c_int,
    file: *const c_char,
    line: c_int,
    function: *const c_char,
    format: *const c_char,
    args: *mut c_void,
);

const SOURCE_FILE: &CStr = c"modkit-capi";

fn emit(record: &LogRecord) {
    let function = CString::new(record.function).unwrap_or_default();
    if record.log_fn == 0 {
        // libkmod's default (log_filep, built with debug messages as Debian builds it).
        let name = match record.priority {
            0 => "EMERGENCY".to_owned(),
            1 => "ALERT".to_owned(),
            2 => "CRITICAL".to_owned(),
            3 => "ERROR".to_owned(),
            4 => "WARNING".to_owned(),
            5 => "NOTICE".to_owned(),
            6 => "INFO".to_owned(),
            7 => "DEBUG".to_owned(),
            other => format!("L:{other}"),
        };
        eprint!(
            "libkmod: {name} {}:0 {}: {}",
            SOURCE_FILE.to_string_lossy(),
            record.function,
            record.text.to_string_lossy()
        );
        return;
    }
    // SAFETY: `log_fn` is the function pointer the caller gave kmod_set_log_fn (stored as its
    // address, never 0 here), with the libkmod.h signature; the strings are NUL-terminated
    // and live across the call; "%s" takes the one `char *` argument passed.
    unsafe {
        let log_fn: LogFn = std::mem::transmute::<usize, LogFn>(record.log_fn);
        modkit_capi_call_log(
            log_fn,
            record.data as *mut c_void,
            record.priority,
            SOURCE_FILE.as_ptr(),
            0,
            function.as_ptr(),
            c"%s".as_ptr(),
            record.text.as_ptr(),
        );
    }
}

// ---- conversions at the boundary ----

fn token<T>(ptr: *const T) -> usize {
    ptr.addr()
}

fn handle<T>(token: usize) -> *mut T {
    ptr::without_provenance_mut(token)
}

fn opt_handle<T>(token: Option<usize>) -> *mut T {
    token.map_or(ptr::null_mut(), handle)
}

/// A caller's C string, or None for NULL.
///
/// # Safety
/// `s` is NULL or points to a NUL-terminated string that stays alive for the call.
unsafe fn c_str<'a>(s: *const c_char) -> Option<&'a CStr> {
    if s.is_null() {
        None
    } else {
        // SAFETY: the caller's promise, above.
        Some(unsafe { CStr::from_ptr(s) })
    }
}

/// Store `value` through a caller's out-pointer; false for NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of one `*mut T`.
unsafe fn put<T>(out: *mut *mut T, value: *mut T) -> bool {
    if out.is_null() {
        return false;
    }
    // SAFETY: the caller's promise, above.
    unsafe { out.write(value) };
    true
}

/// A string the registry keeps alive for as long as its handle, as a C pointer.
fn c_ptr(s: Option<&CString>) -> *const c_char {
    s.map_or(ptr::null(), |s| s.as_ptr())
}

fn path_of(s: &CStr) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(s.to_bytes()))
}

const ENOENT: c_int = -libc::ENOENT;

// ---- the library context ----

/// # Safety
/// `dirname` is NULL or a C string; `config_paths` is NULL or a NULL-terminated array of C
/// strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_new(
    dirname: *const c_char,
    config_paths: *const *const c_char,
) -> *mut KmodCtx {
    // SAFETY: the caller's promise.
    let dir = match unsafe { c_str(dirname) } {
        Some(dir) => std::path::absolute(path_of(dir)).unwrap_or_else(|_| path_of(dir)),
        None => modkit::module_dir(None, None),
    };
    let config = if config_paths.is_null() {
        None
    } else {
        let mut paths = Vec::new();
        for i in 0.. {
            // SAFETY: the array is NULL-terminated (the caller's promise): every index up to
            // the NULL is readable.
            let entry = unsafe { *config_paths.add(i) };
            // SAFETY: each entry up to the NULL is a C string.
            match unsafe { c_str(entry) } {
                Some(path) => paths.push(path_of(path)),
                None => break,
            }
        }
        Some(paths)
    };
    handle(with(|r| r.new_ctx(dir, config)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_ref(ctx: *mut KmodCtx) -> *mut KmodCtx {
    if with(|r| r.ref_ctx(token(ctx))) {
        ctx
    } else {
        ptr::null_mut()
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_unref(ctx: *mut KmodCtx) -> *mut KmodCtx {
    match with(|r| r.unref_ctx(token(ctx))) {
        Some(true) => ctx,
        _ => ptr::null_mut(),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_set_log_fn(ctx: *mut KmodCtx, log_fn: Option<LogFn>, data: *const c_void) {
    with(|r| {
        if let Some(state) = r.ctx_mut(token(ctx)) {
            state.log = match log_fn {
                Some(f) => LogTarget::Function {
                    log_fn: f as usize,
                    data: data.addr(),
                },
                None => LogTarget::Nowhere,
            };
        }
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_get_log_priority(ctx: *const KmodCtx) -> c_int {
    with(|r| r.ctx(token(ctx)).map_or(-1, |s| s.priority))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_set_log_priority(ctx: *mut KmodCtx, priority: c_int) {
    with(|r| {
        if let Some(state) = r.ctx_mut(token(ctx)) {
            state.priority = priority;
        }
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_get_userdata(ctx: *const KmodCtx) -> *mut c_void {
    with(|r| r.ctx(token(ctx)).map_or(0, |s| s.userdata)) as *mut c_void
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_set_userdata(ctx: *mut KmodCtx, userdata: *const c_void) {
    with(|r| {
        if let Some(state) = r.ctx_mut(token(ctx)) {
            state.userdata = userdata.addr();
        }
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_get_dirname(ctx: *const KmodCtx) -> *const c_char {
    with(|r| c_ptr(r.ctx(token(ctx)).map(|s| &s.dirname)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_load_resources(ctx: *mut KmodCtx) -> c_int {
    with(|r| r.load_resources(token(ctx)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_unload_resources(ctx: *mut KmodCtx) {
    with(|r| r.unload_resources(token(ctx)));
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_validate_resources(ctx: *mut KmodCtx) -> c_int {
    with(|r| r.validate_resources(token(ctx)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_dump_index(ctx: *mut KmodCtx, index: c_uint, fd: c_int) -> c_int {
    let text = match with(|r| r.dump_index(token(ctx), index as usize)) {
        Ok(text) => text,
        Err(code) => return code,
    };
    let mut rest: &[u8] = &text;
    while !rest.is_empty() {
        // SAFETY: `rest` is a live buffer of `rest.len()` bytes; write(2) reads at most that.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return -err.raw_os_error().unwrap_or(libc::EIO);
        }
        rest = &rest[n as usize..];
    }
    0
}

// ---- lists ----

#[unsafe(no_mangle)]
pub extern "C" fn kmod_list_next(list: *const KmodList, curr: *const KmodList) -> *mut KmodList {
    opt_handle(with(|r| r.list_step(token(list), token(curr), true)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_list_prev(list: *const KmodList, curr: *const KmodList) -> *mut KmodList {
    opt_handle(with(|r| r.list_step(token(list), token(curr), false)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_list_last(list: *const KmodList) -> *mut KmodList {
    opt_handle(with(|r| r.list_last(token(list))))
}

// ---- configuration ----

fn config_iter(ctx: *const KmodCtx, kind: ConfigKind) -> *mut KmodConfigIter {
    opt_handle(with(|r| r.config_iter(token(ctx), kind)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_config_get_blacklists(ctx: *const KmodCtx) -> *mut KmodConfigIter {
    config_iter(ctx, ConfigKind::Blacklists)
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_config_get_install_commands(ctx: *const KmodCtx) -> *mut KmodConfigIter {
    config_iter(ctx, ConfigKind::Install)
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_config_get_remove_commands(ctx: *const KmodCtx) -> *mut KmodConfigIter {
    config_iter(ctx, ConfigKind::Remove)
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_config_get_aliases(ctx: *const KmodCtx) -> *mut KmodConfigIter {
    config_iter(ctx, ConfigKind::Aliases)
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_config_get_options(ctx: *const KmodCtx) -> *mut KmodConfigIter {
    config_iter(ctx, ConfigKind::Options)
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_config_get_softdeps(ctx: *const KmodCtx) -> *mut KmodConfigIter {
    config_iter(ctx, ConfigKind::Softdeps)
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_config_iter_get_key(iter: *const KmodConfigIter) -> *const c_char {
    with(|r| c_ptr(r.iter_current(token(iter)).map(|(k, _)| k)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_config_iter_get_value(iter: *const KmodConfigIter) -> *const c_char {
    // A blacklist line has no value: libkmod answers NULL.
    with(|r| c_ptr(r.iter_current(token(iter)).and_then(|(_, v)| v.as_ref())))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_config_iter_next(iter: *mut KmodConfigIter) -> bool {
    with(|r| r.iter_next(token(iter)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_config_iter_free_iter(iter: *mut KmodConfigIter) {
    with(|r| r.iter_free(token(iter)));
}

// ---- modules ----

/// # Safety
/// `name` is NULL or a C string; `module` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_new_from_name(
    ctx: *mut KmodCtx,
    name: *const c_char,
    module: *mut *mut KmodModule,
) -> c_int {
    // SAFETY: the caller's promise.
    let Some(name) = (unsafe { c_str(name) }) else {
        return ENOENT;
    };
    if module.is_null() {
        return ENOENT;
    }
    let name = name.to_string_lossy();
    match with(|r| r.new_from_name(token(ctx), &name)) {
        Ok(m) => {
            // SAFETY: checked non-NULL above; the caller's promise makes it writable.
            unsafe { put(module, handle(m)) };
            0
        }
        Err(code) => code,
    }
}

/// # Safety
/// `path` is NULL or a C string; `module` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_new_from_path(
    ctx: *mut KmodCtx,
    path: *const c_char,
    module: *mut *mut KmodModule,
) -> c_int {
    // SAFETY: the caller's promise.
    let Some(path) = (unsafe { c_str(path) }) else {
        return ENOENT;
    };
    if module.is_null() {
        return ENOENT;
    }
    let path = path_of(path);
    match with(|r| r.new_from_path(token(ctx), &path)) {
        Ok(m) => {
            // SAFETY: checked non-NULL above; the caller's promise makes it writable.
            unsafe { put(module, handle(m)) };
            0
        }
        Err(code) => code,
    }
}

/// # Safety
/// `alias` is NULL or a C string; `list` is NULL or readable and writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_new_from_lookup(
    ctx: *mut KmodCtx,
    alias: *const c_char,
    list: *mut *mut KmodList,
) -> c_int {
    // SAFETY: the caller's promise.
    let Some(alias) = (unsafe { c_str(alias) }) else {
        return ENOENT;
    };
    // SAFETY: `list` is checked non-NULL before it is read; the caller's promise.
    if list.is_null() || !unsafe { list.read() }.is_null() {
        with(|r| {
            r.log(
                token(ctx),
                crate::state::LOG_ERR,
                "kmod_module_new_from_lookup",
                "An empty list is needed to create lookup\n".to_owned(),
            );
        });
        return -libc::ENOSYS;
    }
    let alias = alias.to_string_lossy();
    match with(|r| r.lookup(token(ctx), &alias)) {
        Ok(found) => {
            // SAFETY: checked non-NULL above.
            unsafe { put(list, opt_handle(found)) };
            0
        }
        Err(code) => code,
    }
}

/// # Safety
/// `name` is NULL or a C string; `module` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_new_from_name_lookup(
    ctx: *mut KmodCtx,
    name: *const c_char,
    module: *mut *mut KmodModule,
) -> c_int {
    // SAFETY: the caller's promise.
    let Some(name) = (unsafe { c_str(name) }) else {
        return ENOENT;
    };
    if module.is_null() {
        return ENOENT;
    }
    let name = name.to_string_lossy();
    match with(|r| r.name_lookup(token(ctx), &name)) {
        Ok(Some(m)) => {
            // SAFETY: checked non-NULL above.
            unsafe { put(module, handle(m)) };
            0
        }
        Ok(None) => 0,
        Err(code) => code,
    }
}

/// # Safety
/// `list` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_new_from_loaded(
    ctx: *mut KmodCtx,
    list: *mut *mut KmodList,
) -> c_int {
    if list.is_null() {
        return ENOENT;
    }
    match with(|r| r.loaded(token(ctx))) {
        Ok(found) => {
            // SAFETY: checked non-NULL above.
            unsafe { put(list, opt_handle(found)) };
            0
        }
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_ref(module: *mut KmodModule) -> *mut KmodModule {
    if with(|r| r.ref_module(token(module))) {
        module
    } else {
        ptr::null_mut()
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_unref(module: *mut KmodModule) -> *mut KmodModule {
    match with(|r| r.unref_module(token(module))) {
        Some(true) => module,
        _ => ptr::null_mut(),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_unref_list(list: *mut KmodList) -> c_int {
    with(|r| r.free_list(token(list)));
    0
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_module(entry: *const KmodList) -> *mut KmodModule {
    with(|r| match r.item(token(entry)) {
        Some(&Item::Module(m)) => {
            if r.ref_module(m) {
                handle(m)
            } else {
                ptr::null_mut()
            }
        }
        _ => ptr::null_mut(),
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_name(module: *const KmodModule) -> *const c_char {
    with(|r| c_ptr(r.module(token(module)).map(|m| &m.name)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_path(module: *const KmodModule) -> *const c_char {
    with(|r| c_ptr(r.path(token(module))))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_options(module: *const KmodModule) -> *const c_char {
    with(|r| c_ptr(r.options(token(module))))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_install_commands(module: *const KmodModule) -> *const c_char {
    with(|r| c_ptr(r.install_commands(token(module))))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_remove_commands(module: *const KmodModule) -> *const c_char {
    with(|r| c_ptr(r.remove_commands(token(module))))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_dependencies(module: *const KmodModule) -> *mut KmodList {
    opt_handle(with(|r| r.dependencies(token(module))))
}

/// # Safety
/// `pre` and `post` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_get_softdeps(
    module: *const KmodModule,
    pre: *mut *mut KmodList,
    post: *mut *mut KmodList,
) -> c_int {
    if pre.is_null() || post.is_null() {
        return ENOENT;
    }
    match with(|r| r.softdeps(token(module))) {
        Some((p, q)) => {
            // SAFETY: both checked non-NULL above.
            unsafe {
                put(pre, opt_handle(p));
                put(post, opt_handle(q));
            }
            0
        }
        None => ENOENT,
    }
}

/// # Safety
/// `output` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_apply_filter(
    ctx: *const KmodCtx,
    filter: c_uint,
    input: *const KmodList,
    output: *mut *mut KmodList,
) -> c_int {
    if output.is_null() {
        return ENOENT;
    }
    match with(|r| r.apply_filter(token(ctx), filter, token(input))) {
        Ok(list) => {
            // SAFETY: checked non-NULL above.
            unsafe { put(output, opt_handle(list)) };
            0
        }
        Err(code) => code,
    }
}

/// # Safety
/// `output` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_get_filtered_blacklist(
    ctx: *const KmodCtx,
    input: *const KmodList,
    output: *mut *mut KmodList,
) -> c_int {
    // SAFETY: the caller's promise, passed on.
    unsafe { kmod_module_apply_filter(ctx, crate::state::flags::FILTER_BLACKLIST, input, output) }
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_initstate_str(state: c_uint) -> *const c_char {
    match state {
        0 => c"builtin".as_ptr(),
        1 => c"live".as_ptr(),
        2 => c"coming".as_ptr(),
        3 => c"going".as_ptr(),
        _ => ptr::null(),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_initstate(module: *const KmodModule) -> c_int {
    with(|r| r.initstate(token(module)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_refcnt(module: *const KmodModule) -> c_int {
    with(|r| r.refcnt(token(module)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_holders(module: *const KmodModule) -> *mut KmodList {
    opt_handle(with(|r| r.holders(token(module))))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_sections(module: *const KmodModule) -> *mut KmodList {
    opt_handle(with(|r| r.sections(token(module))))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_section_get_name(entry: *const KmodList) -> *const c_char {
    with(|r| match r.item(token(entry)) {
        Some(Item::Section { name, .. }) => name.as_ptr(),
        _ => ptr::null(),
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_section_get_address(entry: *const KmodList) -> c_ulong {
    with(|r| match r.item(token(entry)) {
        Some(Item::Section { address, .. }) => *address as c_ulong,
        _ => c_ulong::MAX,
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_section_free_list(list: *mut KmodList) {
    with(|r| r.free_list(token(list)));
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_get_size(module: *const KmodModule) -> c_long {
    with(|r| r.size(token(module))) as c_long
}

/// A `(list, count)` answer written through `list`.
///
/// # Safety
/// `list` is NULL or writable.
unsafe fn list_answer(
    list: *mut *mut KmodList,
    answer: impl FnOnce(&mut Registry) -> Result<(Option<usize>, i32), i32>,
) -> c_int {
    if list.is_null() {
        return ENOENT;
    }
    match with(answer) {
        Ok((found, count)) => {
            // SAFETY: checked non-NULL above; the caller's promise.
            unsafe { put(list, opt_handle(found)) };
            count
        }
        Err(code) => code,
    }
}

/// # Safety
/// `list` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_get_info(
    module: *const KmodModule,
    list: *mut *mut KmodList,
) -> c_int {
    // SAFETY: the caller's promise, passed on.
    unsafe { list_answer(list, |r| r.info(token(module))) }
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_info_get_key(entry: *const KmodList) -> *const c_char {
    with(|r| match r.item(token(entry)) {
        Some(Item::Info { key, .. }) => key.as_ptr(),
        _ => ptr::null(),
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_info_get_value(entry: *const KmodList) -> *const c_char {
    with(|r| match r.item(token(entry)) {
        Some(Item::Info { value, .. }) => value.as_ptr(),
        _ => ptr::null(),
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_info_free_list(list: *mut KmodList) {
    with(|r| r.free_list(token(list)));
}

/// # Safety
/// `list` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_get_versions(
    module: *const KmodModule,
    list: *mut *mut KmodList,
) -> c_int {
    // SAFETY: the caller's promise, passed on.
    unsafe { list_answer(list, |r| r.versions(token(module))) }
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_version_get_symbol(entry: *const KmodList) -> *const c_char {
    with(|r| match r.item(token(entry)) {
        Some(Item::Version { symbol, .. }) => symbol.as_ptr(),
        _ => ptr::null(),
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_version_get_crc(entry: *const KmodList) -> u64 {
    with(|r| match r.item(token(entry)) {
        Some(Item::Version { crc, .. }) => *crc,
        _ => 0,
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_versions_free_list(list: *mut KmodList) {
    with(|r| r.free_list(token(list)));
}

/// # Safety
/// `list` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_get_symbols(
    module: *const KmodModule,
    list: *mut *mut KmodList,
) -> c_int {
    // SAFETY: the caller's promise, passed on.
    unsafe { list_answer(list, |r| r.symbols(token(module))) }
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_symbol_get_symbol(entry: *const KmodList) -> *const c_char {
    with(|r| match r.item(token(entry)) {
        Some(Item::Symbol { symbol, .. }) => symbol.as_ptr(),
        _ => ptr::null(),
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_symbol_get_crc(entry: *const KmodList) -> u64 {
    with(|r| match r.item(token(entry)) {
        Some(Item::Symbol { crc, .. }) => *crc,
        _ => 0,
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_symbols_free_list(list: *mut KmodList) {
    with(|r| r.free_list(token(list)));
}

/// # Safety
/// `list` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_get_dependency_symbols(
    module: *const KmodModule,
    list: *mut *mut KmodList,
) -> c_int {
    // SAFETY: the caller's promise, passed on.
    unsafe { list_answer(list, |r| r.dependency_symbols(token(module))) }
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_dependency_symbol_get_symbol(
    entry: *const KmodList,
) -> *const c_char {
    with(|r| match r.item(token(entry)) {
        Some(Item::Dependency { symbol, .. }) => symbol.as_ptr(),
        _ => ptr::null(),
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_dependency_symbol_get_bind(entry: *const KmodList) -> c_int {
    with(|r| match r.item(token(entry)) {
        Some(Item::Dependency { bind, .. }) => *bind,
        _ => 0,
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_dependency_symbol_get_crc(entry: *const KmodList) -> u64 {
    with(|r| match r.item(token(entry)) {
        Some(Item::Dependency { crc, .. }) => *crc,
        _ => 0,
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_dependency_symbols_free_list(list: *mut KmodList) {
    with(|r| r.free_list(token(list)));
}

// ---- loading and unloading ----

/// # Safety
/// `options` is NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_insert_module(
    module: *mut KmodModule,
    flags: c_uint,
    options: *const c_char,
) -> c_int {
    // SAFETY: the caller's promise.
    let options =
        unsafe { c_str(options) }.map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    with(|r| r.insert(token(module), flags, &options))
}

#[unsafe(no_mangle)]
pub extern "C" fn kmod_module_remove_module(module: *mut KmodModule, flags: c_uint) -> c_int {
    with(|r| r.remove(token(module), flags))
}

type RunInstall = unsafe extern "C" fn(
    module: *mut KmodModule,
    cmdline: *const c_char,
    data: *mut c_void,
) -> c_int;
type PrintAction =
    unsafe extern "C" fn(module: *mut KmodModule, install: bool, options: *const c_char);

/// # Safety
/// `extra_options` is NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmod_module_probe_insert_module(
    module: *mut KmodModule,
    flags: c_uint,
    extra_options: *const c_char,
    run_install: Option<RunInstall>,
    _data: *const c_void,
    print_action: Option<PrintAction>,
) -> c_int {
    if run_install.is_some() || print_action.is_some() {
        // Not supported yet: say so in the log and refuse, never half-run the probe.
        with(|r| {
            if let Some(m) = r.module(token(module)) {
                let ctx = m.ctx;
                r.log(
                    ctx,
                    crate::state::LOG_ERR,
                    "kmod_module_probe_insert_module",
                    "modkit's libkmod does not support run_install or print_action callbacks\n"
                        .to_owned(),
                );
            }
        });
        return -libc::EOPNOTSUPP;
    }
    // SAFETY: the caller's promise.
    let extra = unsafe { c_str(extra_options) }
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    with(|r| r.probe(token(module), flags, &extra))
}
