/* nsrun NSFILE PROGRAM [ARG...]: run PROGRAM (an absolute path) in the mount
 * namespace NSFILE names (/proc/PID/ns/mnt), at that namespace's root.
 *
 * The bench's wrapper for the runtimes in the trixie chroot. It is built
 * without a C library on purpose: glibc's start-up probes the CPU with some
 * 35 cpuid instructions, and on a VM each one traps (about 15 us here), so a
 * glibc wrapper such as nsenter would add about 1 ms of CPU to every call of
 * both runtimes it compares and shrink every ratio towards 1.
 * Build: gcc -O2 -static -nostdlib -fno-stack-protector -o nsrun nsrun.c */
#include <fcntl.h>
#include <linux/sched.h>
#include <sys/syscall.h>

static long sys3(long n, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}

static void die(const char *what)
{
	const char *p = what;
	while (*p)
		p++;
	sys3(SYS_write, 2, (long)"nsrun: ", 7);
	sys3(SYS_write, 2, (long)what, p - what);
	sys3(SYS_write, 2, (long)" failed\n", 8);
	sys3(SYS_exit_group, 127, 0, 0);
}

__attribute__((used)) static void nsrun(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1), **envp = argv + argc + 1;
	if (argc < 3)
		die("usage: nsrun NSFILE PROGRAM [ARG...]:");
	long fd = sys3(SYS_open, (long)argv[1], O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		die("open NSFILE");
	/* setns to a mount namespace also moves root and cwd to its root. */
	if (sys3(SYS_setns, fd, CLONE_NEWNS, 0) < 0)
		die("setns");
	sys3(SYS_execve, (long)argv[2], (long)(argv + 2), (long)envp);
	die("execve PROGRAM");
}

__asm__(".globl _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall nsrun\n\thlt\n");
