//! cgroup v2 has no devices.allow: access is decided by an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. We build it from the same
//! ordered rules v1 writes, with v1's meaning: an "a" rule resets everything
//! before it (deny-all or allow-all), later rules override earlier ones.
//!
//! The program checks the rules from last to first; the first that matches
//! decides. An allow rule matches when it grants every access bit asked for,
//! a deny rule when it forbids any of them.

use super::config::{DevKind, DeviceRule, ACC_ALL};
use crate::error::{Context, Result};
use std::os::fd::AsFd;
use std::path::Path;

// Instruction encodings (include/uapi/linux/bpf.h, bpf_common.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_K: u8 = 0xb4;
const ALU32_MOV_X: u8 = 0xbc;
const JMP_JNE_K: u8 = 0x55;
const JMP_JEQ_K: u8 = 0x15;
const JMP_EXIT: u8 = 0x95;

// bpf_cgroup_dev_ctx type values.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

// Registers: r1 = ctx; r2 = device type; r3 = access; r4 = major; r5 = minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// One eBPF instruction, as the kernel lays out struct bpf_insn (little endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    pub fn raw(&self) -> u64 {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.dst & 0xf) | ((self.src & 0xf) << 4);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        u64::from_le_bytes(b)
    }
}

/// The rules that still matter, and the verdict when none of them matches.
fn effective(rules: &[DeviceRule]) -> (bool, &[DeviceRule]) {
    match rules.iter().rposition(|r| r.kind == DevKind::All) {
        Some(i) => (rules[i].allow, &rules[i + 1..]),
        // Deny what no rule allows, as runc's filter does (config.rs puts a
        // deny-all first anyway: a device filter must never fail open).
        None => (false, rules),
    }
}

/// Build the program for `rules` (in spec order, defaults appended).
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let (default_allow, rules) = effective(rules);
    let mut p = vec![
        Insn::new(LDX_MEM_W, R2, R1, 0, 0),
        Insn::new(ALU32_AND_K, R2, 0, 0, 0xffff),
        Insn::new(LDX_MEM_W, R3, R1, 0, 0),
        Insn::new(ALU32_RSH_K, R3, 0, 0, 16),
        Insn::new(LDX_MEM_W, R4, R1, 4, 0),
        Insn::new(LDX_MEM_W, R5, R1, 8, 0),
    ];
    // A rule that agrees with the default still shadows earlier ones: keep all.
    for r in rules.iter().rev() {
        p.extend(block(r));
    }
    p.push(Insn::new(ALU32_MOV_K, R0, 0, 0, default_allow as i32));
    p.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// One rule: conditional jumps to the end of the block when it does not match,
/// then "return verdict". Jump offsets count instructions after the jump.
fn block(r: &DeviceRule) -> Vec<Insn> {
    // Placeholder offsets (i16::MAX) are patched once the block length is known.
    const NEXT: i16 = i16::MAX;
    let mut b = Vec::with_capacity(8);
    match r.kind {
        DevKind::Char => b.push(Insn::new(JMP_JNE_K, R2, 0, NEXT, DEV_CHAR)),
        DevKind::Block => b.push(Insn::new(JMP_JNE_K, R2, 0, NEXT, DEV_BLOCK)),
        DevKind::All => {}
    }
    if let Some(m) = r.major {
        b.push(Insn::new(JMP_JNE_K, R4, 0, NEXT, m as i32));
    }
    if let Some(m) = r.minor {
        b.push(Insn::new(JMP_JNE_K, R5, 0, NEXT, m as i32));
    }
    if r.access & ACC_ALL != ACC_ALL {
        b.push(Insn::new(ALU32_MOV_X, R1, R3, 0, 0));
        if r.allow {
            // Asked for something this rule does not grant: not ours.
            let outside = i32::from(!r.access & ACC_ALL);
            b.push(Insn::new(ALU32_AND_K, R1, 0, 0, outside));
            b.push(Insn::new(JMP_JNE_K, R1, 0, NEXT, 0));
        } else {
            // Asked for nothing this rule forbids: not ours.
            b.push(Insn::new(ALU32_AND_K, R1, 0, 0, i32::from(r.access)));
            b.push(Insn::new(JMP_JEQ_K, R1, 0, NEXT, 0));
        }
    }
    b.push(Insn::new(ALU32_MOV_K, R0, 0, 0, r.allow as i32));
    b.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    let len = b.len();
    for (i, ins) in b.iter_mut().enumerate() {
        if ins.off == NEXT {
            ins.off = (len - i - 1) as i16;
        }
    }
    b
}

/// Replace the device program of the cgroup at `dir` with one built from `rules`:
/// attach the new one first, then detach the old, so no gap lets access through.
pub fn apply(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    use crate::sys::bpf;
    let insns: Vec<u64> = program(rules).iter().map(Insn::raw).collect();
    let prog = bpf::prog_load(bpf::BPF_PROG_TYPE_CGROUP_DEVICE, &insns, "Apache")
        .ctx(|| "linux.resources.devices: load the eBPF device filter")?;
    let cg = std::fs::File::open(dir).ctx(|| format!("open {}", dir.display()))?;
    let old = bpf::prog_query(cg.as_fd(), bpf::BPF_CGROUP_DEVICE).unwrap_or_default();
    let attached = bpf::prog_attach(
        cg.as_fd(),
        prog.as_fd(),
        bpf::BPF_CGROUP_DEVICE,
        bpf::BPF_F_ALLOW_MULTI,
    );
    if let Err(e) = attached {
        // A program attached without ALLOW_MULTI blocks ours: replace it.
        if old.is_empty() {
            return Err(e).ctx(|| {
                format!(
                    "linux.resources.devices: attach the eBPF device filter to {}",
                    dir.display()
                )
            });
        }
        detach_all(&cg, &old);
        bpf::prog_attach(
            cg.as_fd(),
            prog.as_fd(),
            bpf::BPF_CGROUP_DEVICE,
            bpf::BPF_F_ALLOW_MULTI,
        )
        .ctx(|| {
            format!(
                "linux.resources.devices: attach the eBPF device filter to {}",
                dir.display()
            )
        })?;
        return Ok(());
    }
    detach_all(&cg, &old);
    Ok(())
}

fn detach_all(cg: &std::fs::File, ids: &[u32]) {
    use crate::sys::bpf;
    for id in ids {
        if let Ok(fd) = bpf::prog_fd_by_id(*id) {
            if let Err(e) = bpf::prog_detach(cg.as_fd(), fd.as_fd(), bpf::BPF_CGROUP_DEVICE) {
                log::warn!("detach old device program {id}: {e}");
            }
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::cgroups::config::{ACC_MKNOD, ACC_READ, ACC_WRITE, DEFAULT_DEVICES};

    /// A tiny interpreter for the instructions `program` emits, so the
    /// program's verdicts can be checked without loading it into a kernel.
    pub fn run(p: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [typ | (access << 16), major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            let k = i.imm as i64 as u64;
            let mut jump = false;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(s, 1);
                    r[d] = u64::from(ctx[(i.off / 4) as usize]);
                }
                ALU32_AND_K => r[d] = (r[d] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[d] = ((r[d] as u32) >> i.imm) as u64,
                ALU32_MOV_K => r[d] = i.imm as u32 as u64,
                ALU32_MOV_X => r[d] = r[s] as u32 as u64,
                JMP_JNE_K => jump = r[d] != k,
                JMP_JEQ_K => jump = r[d] == k,
                JMP_EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
            pc += 1;
            if jump {
                pc += i.off as usize;
            }
        }
    }

    fn rule(
        allow: bool,
        kind: DevKind,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    const C: u32 = DEV_CHAR as u32;
    const B: u32 = DEV_BLOCK as u32;
    const RD: u32 = ACC_READ as u32;
    const WR: u32 = ACC_WRITE as u32;
    const MK: u32 = ACC_MKNOD as u32;

    #[test]
    fn deny_all_with_defaults() {
        let mut rules = vec![rule(false, DevKind::All, None, None, ACC_ALL)];
        rules.extend_from_slice(DEFAULT_DEVICES);
        let p = program(&rules);
        assert_eq!(run(&p, C, RD | WR, 1, 3), 1, "/dev/null");
        assert_eq!(run(&p, C, RD, 1, 9), 1, "/dev/urandom");
        assert_eq!(run(&p, C, RD | WR, 136, 7), 1, "pty");
        assert_eq!(run(&p, C, RD, 10, 229), 0, "fuse");
        assert_eq!(run(&p, B, RD, 8, 0), 0, "sda read");
        assert_eq!(run(&p, B, MK, 8, 0), 1, "mknod any block");
        assert_eq!(run(&p, C, MK, 250, 1), 1, "mknod any char");
    }

    #[test]
    fn later_rules_override_earlier() {
        let rules = vec![
            rule(false, DevKind::All, None, None, ACC_ALL),
            rule(true, DevKind::Char, Some(1), Some(3), ACC_ALL),
            rule(false, DevKind::Char, Some(1), Some(3), ACC_WRITE),
        ];
        let p = program(&rules);
        assert_eq!(run(&p, C, RD, 1, 3), 1);
        assert_eq!(run(&p, C, WR, 1, 3), 0);
        assert_eq!(run(&p, C, RD | WR, 1, 3), 0);
        assert_eq!(run(&p, C, RD, 1, 5), 0);
    }

    #[test]
    fn allow_all_then_deny_one() {
        let rules = vec![
            rule(true, DevKind::All, None, None, ACC_ALL),
            rule(false, DevKind::Block, Some(8), None, ACC_READ | ACC_WRITE),
        ];
        let p = program(&rules);
        assert_eq!(run(&p, B, RD, 8, 1), 0);
        assert_eq!(run(&p, B, MK, 8, 1), 1);
        assert_eq!(run(&p, C, RD, 8, 1), 1);
        assert_eq!(run(&p, B, RD, 9, 1), 1);
        // No rules at all: nothing is allowed.
        assert_eq!(run(&program(&[]), B, RD, 8, 0), 0);
    }

    #[test]
    fn a_rule_resets_what_came_before() {
        let rules = vec![
            rule(true, DevKind::Char, Some(1), Some(3), ACC_ALL),
            rule(false, DevKind::All, None, None, ACC_ALL),
        ];
        assert_eq!(run(&program(&rules), C, RD, 1, 3), 0);
    }

    #[test]
    fn encoding_is_kernel_layout() {
        let i = Insn::new(JMP_JNE_K, R4, 0, 3, 136);
        assert_eq!(i.raw().to_le_bytes(), [0x55, 0x04, 3, 0, 136, 0, 0, 0]);
        let m = Insn::new(ALU32_MOV_X, R1, R3, 0, 0);
        assert_eq!(m.raw().to_le_bytes()[1], 0x31);
    }

    /// The program in a real kernel: on this hybrid host the cgroup2 tree has
    /// no controllers, but device programs attach to it all the same.
    #[test]
    fn kernel_enforces_the_program() {
        let base = Path::new("/sys/fs/cgroup/unified");
        // Only root may create cgroups here.
        if !base.join("cgroup.procs").exists() || !nix::unistd::geteuid().is_root() {
            return;
        }
        let control = std::process::Command::new("/bin/sh")
            .args(["-c", "cat /dev/cpu_dma_latency 2>/dev/null | wc -c"])
            .output()
            .unwrap();
        if control.stdout != b"4\n" {
            return;
        }
        let dir = base.join(format!("skiff-bpf-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let mut rules = vec![rule(false, DevKind::All, None, None, ACC_ALL)];
        rules.extend_from_slice(DEFAULT_DEVICES);
        let applied = apply(&dir, &rules);
        // /dev/cpu_dma_latency (c 10:259, not a default device) must become unreadable.
        let probe = "head -c1 /dev/zero | wc -c; cat /dev/cpu_dma_latency 2>/dev/null | wc -c";
        let script = format!("echo $$ > {}/cgroup.procs; {probe}", dir.display());
        let out = applied.as_ref().ok().map(|_| {
            std::process::Command::new("/bin/sh")
                .args(["-c", &script])
                .output()
                .unwrap()
        });
        // Replacing the program works too (update detaches the old one).
        let again = apply(&dir, &rules);
        let _ = std::fs::remove_dir(&dir);
        applied.unwrap();
        again.unwrap();
        let text = String::from_utf8_lossy(&out.unwrap().stdout).into_owned();
        assert_eq!(text, "1\n0\n");
    }
}
