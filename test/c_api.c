/* hel.h and hel-stubs.h compiled as C (C11), linked into the same binary as C++ users of the
 * same headers: the inline wrappers must neither clash nor go missing. */
#include <helsim/hel.h>

int c_api_nop(void) { return helNop(); }

int c_api_create_and_close_token(void) {
	HelHandle token;
	HelError e = helCreateToken(&token);
	if (e != kHelErrNone)
		return e;
	return helCloseDescriptor(kHelThisUniverse, token);
}

/* A supercall the way Managarm's hel-syscalls.h issues one: through helSyscall2_2. */
int c_api_supercall(HelWord a, HelWord b, HelWord *out0, HelWord *out1) {
	return helSyscall2_2((int)(kHelCallSuper + 5), a, b, out0, out1);
}
