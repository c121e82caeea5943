//! `__fprintf_chk` for the musl build.
//!
//! skiff links Debian's libseccomp.a, which glibc's `_FORTIFY_SOURCE` compiled
//! with calls to `__fprintf_chk` (in its filter-export code). musl has no
//! fortify functions, so this supplies the one libseccomp needs, with glibc's
//! ABI: `int __fprintf_chk(FILE *fp, int flag, const char *fmt, ...)`. It
//! forwards to `vfprintf(fp, fmt, ap)`; `flag` (glibc's "%n must be in
//! read-only memory" check) has nothing to check in libseccomp's fixed formats.
//!
//! Stable Rust cannot define a C variadic function, so the entry is written in
//! assembly: it builds the System V x86-64 `va_list` that `va_start` would
//! (register save area for the six integer and eight vector argument
//! registers, three integer registers already used by the named arguments,
//! stack arguments after the return address) and calls `vfprintf`.

use std::ffi::{c_char, c_int, c_void};

extern "C" {
    fn vfprintf(fp: *mut c_void, fmt: *const c_char, ap: *mut c_void) -> c_int;
}

// Frame: 176 bytes of register save area at rsp+0, the 24-byte va_list at
// rsp+176, 16 bytes of padding; 216 keeps rsp 16-byte aligned for the call
// and for the aligned vector stores.
std::arch::global_asm!(
    ".globl __fprintf_chk",
    ".type __fprintf_chk,@function",
    "__fprintf_chk:",
    "sub rsp, 216",
    "mov [rsp], rdi",
    "mov [rsp + 8], rsi",
    "mov [rsp + 16], rdx",
    "mov [rsp + 24], rcx",
    "mov [rsp + 32], r8",
    "mov [rsp + 40], r9",
    // al holds the number of vector registers a variadic caller used.
    "test al, al",
    "je 2f",
    "movaps [rsp + 48], xmm0",
    "movaps [rsp + 64], xmm1",
    "movaps [rsp + 80], xmm2",
    "movaps [rsp + 96], xmm3",
    "movaps [rsp + 112], xmm4",
    "movaps [rsp + 128], xmm5",
    "movaps [rsp + 144], xmm6",
    "movaps [rsp + 160], xmm7",
    "2:",
    // gp_offset: fp, flag and fmt took three integer registers.
    "mov dword ptr [rsp + 176], 24",
    // fp_offset: no vector register was named.
    "mov dword ptr [rsp + 180], 48",
    // overflow_arg_area: the caller's stack arguments, above the return address.
    "lea rax, [rsp + 224]",
    "mov [rsp + 184], rax",
    // reg_save_area.
    "mov [rsp + 192], rsp",
    // vfprintf(fp (still in rdi), fmt, &va_list)
    "mov rsi, rdx",
    "lea rdx, [rsp + 176]",
    "call {vfprintf}",
    "add rsp, 216",
    "ret",
    ".size __fprintf_chk, . - __fprintf_chk",
    vfprintf = sym vfprintf,
);

#[cfg(test)]
mod tests {
    use std::ffi::{c_char, c_int, c_void};

    extern "C" {
        fn __fprintf_chk(fp: *mut c_void, flag: c_int, fmt: *const c_char, ...) -> c_int;
        fn fmemopen(buf: *mut c_void, size: usize, mode: *const c_char) -> *mut c_void;
        fn fclose(fp: *mut c_void) -> c_int;
    }

    /// Integer, string and floating-point arguments, in registers and on the
    /// stack, come out as glibc's would.
    #[test]
    fn forwards_every_kind_of_argument() {
        let mut buf = [0u8; 256];
        // SAFETY: fmemopen writes into `buf`, which outlives the stream; the
        // format's conversions match the arguments passed.
        let out = unsafe {
            let fp = fmemopen(buf.as_mut_ptr().cast(), buf.len(), c"w".as_ptr());
            assert!(!fp.is_null());
            let n = __fprintf_chk(
                fp,
                1,
                c"%d %s %d %d %d %d %d %.2f %.1f".as_ptr(),
                1 as c_int,
                c"two".as_ptr(),
                3 as c_int,
                4 as c_int,
                5 as c_int,
                6 as c_int,
                7 as c_int,
                8.25f64,
                9.5f64,
            );
            fclose(fp);
            assert!(n > 0);
            std::ffi::CStr::from_ptr(buf.as_ptr().cast())
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(out, "1 two 3 4 5 6 7 8.25 9.5");
    }
}
