//! What the CLI tests share: one run of a command, everything it shows.

use std::process::Command;

/// What a run printed and how it ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Run `command` to the end and collect its output (lossily as text) and exit status (-1 when
/// killed by a signal).
pub fn output(command: &mut Command) -> Output {
    let out = command.output().expect("run the command");
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Make the child of `command` get `errno` from every `finit_module` and `init_module`, which
/// never reach the kernel: a seccomp filter, installed between fork and exec, answers them.
/// So a test sees the tools handle a refusal of the real kernel (ENOENT is Linux's answer for
/// an unknown symbol) with nothing ever loaded, root or not.
#[allow(dead_code)] // reason: only some test binaries load modules
pub fn module_syscalls_fail(command: &mut Command, errno: i32) -> &mut Command {
    syscalls_fail(
        command,
        &[libc::SYS_finit_module, libc::SYS_init_module],
        errno,
    )
}

/// [`module_syscalls_fail`] for `delete_module`: the kernel's refusals to unload (EBUSY,
/// EAGAIN, EPERM) with nothing ever unloaded.
#[allow(dead_code)] // reason: only some test binaries unload modules
pub fn delete_module_fails(command: &mut Command, errno: i32) -> &mut Command {
    syscalls_fail(command, &[libc::SYS_delete_module], errno)
}

/// Make the child of `command` (and what it runs) get `errno` from each of `syscalls`.
#[allow(dead_code)] // reason: only some test binaries make module syscalls
#[allow(unsafe_code, reason = "prctl(2) and pre_exec have no safe wrappers")]
fn syscalls_fail<'a>(
    command: &'a mut Command,
    syscalls: &[libc::c_long],
    errno: i32,
) -> &'a mut Command {
    use std::os::unix::process::CommandExt;

    let statement = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump_if = |k: u32, jt: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf: 0,
        k,
    };
    // The syscall number is the first field of `struct seccomp_data`. The child makes native
    // syscalls only, so the architecture field needs no check. Each listed syscall jumps over
    // the remaining tests and the "allow" to the errno answer.
    let count = syscalls.len();
    let mut filter = vec![statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0)];
    for (i, &nr) in syscalls.iter().enumerate() {
        filter.push(jump_if(nr as u32, (count - i) as u8));
    }
    filter.push(statement(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ALLOW,
    ));
    filter.push(statement(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA),
    ));
    let install = move || {
        let program = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: prctl with these arguments only reads `program`, which points at `filter`
        // and lives until the call returns; both calls are async-signal-safe system calls, as
        // code between fork and exec must be.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &program as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: `install` allocates nothing and only makes the two prctl calls above.
    unsafe { command.pre_exec(install) }
}
