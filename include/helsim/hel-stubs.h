/* helsim — Managarm's helSyscallN_M stubs over helsim's single syscall entry.
 *
 * Managarm's hel-syscalls.h builds every hel function out of these. Replacing the
 * architecture's inline-asm stubs with this header is all it takes for code compiled against
 * Managarm's own hel.h / hel-syscalls.h to run on helsim: the library exports only
 * helsim_syscall, so nothing collides. Numbers >= 0x80000000 (supercalls) pass unchanged.
 */
#ifndef HEL_STUBS_H
#define HEL_STUBS_H

#include <stdint.h>

#ifndef HELSIM_HEL_H
typedef int HelError;
typedef uint64_t HelWord;
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The one exported entry point. args holds 9 argument words (unused ones zero), outs receives up to
 * 3 result words (may be NULL when the call has none). Returns the HelError. */
HelError helsim_syscall(uint32_t number, const HelWord *args, HelWord *outs);

#ifdef __cplusplus
}
#define HELSIM_STUB inline __attribute__((always_inline))
#else
#define HELSIM_STUB static inline __attribute__((always_inline))
#endif

HELSIM_STUB HelError helSyscall0(int number) {
	const HelWord args[9] = {0};
	return helsim_syscall((uint32_t)number, args, 0);
}

HELSIM_STUB HelError helSyscall0_1(int number, HelWord *res0) {
	const HelWord args[9] = {0};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	return error;
}

HELSIM_STUB HelError helSyscall0_2(int number, HelWord *res0, HelWord *res1) {
	const HelWord args[9] = {0};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	*res1 = outs[1];
	return error;
}

HELSIM_STUB HelError helSyscall1(int number, HelWord arg0) {
	const HelWord args[9] = {arg0};
	return helsim_syscall((uint32_t)number, args, 0);
}

HELSIM_STUB HelError helSyscall1_1(int number, HelWord arg0, HelWord *res0) {
	const HelWord args[9] = {arg0};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	return error;
}

HELSIM_STUB HelError helSyscall1_2(int number, HelWord arg0, HelWord *res0, HelWord *res1) {
	const HelWord args[9] = {arg0};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	*res1 = outs[1];
	return error;
}

HELSIM_STUB HelError helSyscall2(int number, HelWord arg0, HelWord arg1) {
	const HelWord args[9] = {arg0, arg1};
	return helsim_syscall((uint32_t)number, args, 0);
}

HELSIM_STUB HelError helSyscall2_1(int number, HelWord arg0, HelWord arg1, HelWord *res0) {
	const HelWord args[9] = {arg0, arg1};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	return error;
}

HELSIM_STUB HelError helSyscall2_2(int number, HelWord arg0, HelWord arg1, HelWord *res0,
		HelWord *res1) {
	const HelWord args[9] = {arg0, arg1};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	*res1 = outs[1];
	return error;
}

HELSIM_STUB HelError helSyscall2_3(int number, HelWord arg0, HelWord arg1, HelWord *res0,
		HelWord *res1, HelWord *res2) {
	const HelWord args[9] = {arg0, arg1};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	*res1 = outs[1];
	*res2 = outs[2];
	return error;
}

HELSIM_STUB HelError helSyscall3(int number, HelWord arg0, HelWord arg1, HelWord arg2) {
	const HelWord args[9] = {arg0, arg1, arg2};
	return helsim_syscall((uint32_t)number, args, 0);
}

HELSIM_STUB HelError helSyscall3_1(int number, HelWord arg0, HelWord arg1, HelWord arg2,
		HelWord *res0) {
	const HelWord args[9] = {arg0, arg1, arg2};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	return error;
}

HELSIM_STUB HelError helSyscall3_2(int number, HelWord arg0, HelWord arg1, HelWord arg2,
		HelWord *res0, HelWord *res1) {
	const HelWord args[9] = {arg0, arg1, arg2};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	*res1 = outs[1];
	return error;
}

HELSIM_STUB HelError helSyscall4(int number, HelWord arg0, HelWord arg1, HelWord arg2,
		HelWord arg3) {
	const HelWord args[9] = {arg0, arg1, arg2, arg3};
	return helsim_syscall((uint32_t)number, args, 0);
}

HELSIM_STUB HelError helSyscall4_1(int number, HelWord arg0, HelWord arg1, HelWord arg2,
		HelWord arg3, HelWord *res0) {
	const HelWord args[9] = {arg0, arg1, arg2, arg3};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	return error;
}

HELSIM_STUB HelError helSyscall5(int number, HelWord arg0, HelWord arg1, HelWord arg2, HelWord arg3,
		HelWord arg4) {
	const HelWord args[9] = {arg0, arg1, arg2, arg3, arg4};
	return helsim_syscall((uint32_t)number, args, 0);
}

HELSIM_STUB HelError helSyscall5_1(int number, HelWord arg0, HelWord arg1, HelWord arg2,
		HelWord arg3, HelWord arg4, HelWord *res0) {
	const HelWord args[9] = {arg0, arg1, arg2, arg3, arg4};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	return error;
}

HELSIM_STUB HelError helSyscall6(int number, HelWord arg0, HelWord arg1, HelWord arg2, HelWord arg3,
		HelWord arg4, HelWord arg5) {
	const HelWord args[9] = {arg0, arg1, arg2, arg3, arg4, arg5};
	return helsim_syscall((uint32_t)number, args, 0);
}

HELSIM_STUB HelError helSyscall6_1(int number, HelWord arg0, HelWord arg1, HelWord arg2,
		HelWord arg3, HelWord arg4, HelWord arg5, HelWord *res0) {
	const HelWord args[9] = {arg0, arg1, arg2, arg3, arg4, arg5};
	HelWord outs[3] = {0, 0, 0};
	HelError error = helsim_syscall((uint32_t)number, args, outs);
	*res0 = outs[0];
	return error;
}

#undef HELSIM_STUB

#endif /* HEL_STUBS_H */
