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

/* Every memory wrapper once, from C. The test runs this on an unattached thread, where every call
 * must come back kHelErrIllegalState; returns how many did. */
int c_api_memory_calls(void) {
	struct HelAllocRestrictions restrictions = {32};
	HelHandle handle, backing, frontal;
	uintptr_t physical;
	size_t size;
	int n = 0;
	n += helAllocateMemory(0x1000, kHelAllocOnDemand, &restrictions, &handle) ==
			kHelErrIllegalState;
	n += helAllocateMemory(0x1000, 0, NULL, &handle) == kHelErrIllegalState;
	n += helCreateManagedMemory(0x1000, kHelManagedReadahead, &backing, &frontal) ==
			kHelErrIllegalState;
	n += helCopyOnWrite(kHelZeroMemory, 0, 0x1000, &handle) == kHelErrIllegalState;
	n += helCreateSliceView(1, 0, 0x1000, kHelSliceCacheWriteCombine, &handle) ==
			kHelErrIllegalState;
	n += helCreateIndirectMemory(4, &handle) == kHelErrIllegalState;
	n += helAlterMemoryIndirection(1, 0, 2, 0, 0x1000) == kHelErrIllegalState;
	n += helPointerPhysical(kHelNullHandle, &physical, &physical) == kHelErrIllegalState;
	n += helMemoryInfo(1, &size) == kHelErrIllegalState;
	n += helUpdateMemory(1, kHelManageInitialize, 0, 0x1000) == kHelErrIllegalState;
	n += helLoadahead(1, 0, 0x1000) == kHelErrIllegalState;
	return n;
}

/* Size of each memory SQ payload as C sees it, by opcode; 0 for other opcodes. */
size_t c_api_memory_sq_size(unsigned int opcode) {
	switch (opcode) {
	case kHelSubmitProtectMemory: return sizeof(struct HelSqProtectMemory);
	case kHelSubmitSynchronizeSpace: return sizeof(struct HelSqSynchronizeSpace);
	case kHelSubmitReadMemory: return sizeof(struct HelSqReadMemory);
	case kHelSubmitWriteMemory: return sizeof(struct HelSqWriteMemory);
	case kHelSubmitManageMemory: return sizeof(struct HelSqManageMemory);
	case kHelSubmitLockMemoryView: return sizeof(struct HelSqLockMemoryView);
	case kHelSubmitResizeMemory: return sizeof(struct HelSqResizeMemory);
	case kHelSubmitForkMemory: return sizeof(struct HelSqForkMemory);
	case kHelSubmitWritebackFence: return sizeof(struct HelSqWritebackFence);
	case kHelSubmitInvalidateMemory: return sizeof(struct HelSqInvalidateMemory);
	case kHelSubmitPopulateSpace: return sizeof(struct HelSqPopulateSpace);
	default: return 0;
	}
}

/* Offset of the last field of each memory SQ payload as C sees it, by opcode. */
size_t c_api_memory_sq_last_offset(unsigned int opcode) {
	switch (opcode) {
	case kHelSubmitProtectMemory: return offsetof(struct HelSqProtectMemory, flags);
	case kHelSubmitSynchronizeSpace: return offsetof(struct HelSqSynchronizeSpace, size);
	case kHelSubmitReadMemory: return offsetof(struct HelSqReadMemory, buffer);
	case kHelSubmitWriteMemory: return offsetof(struct HelSqWriteMemory, buffer);
	case kHelSubmitManageMemory: return offsetof(struct HelSqManageMemory, handle);
	case kHelSubmitLockMemoryView: return offsetof(struct HelSqLockMemoryView, size);
	case kHelSubmitResizeMemory: return offsetof(struct HelSqResizeMemory, newSize);
	case kHelSubmitForkMemory: return offsetof(struct HelSqForkMemory, handle);
	case kHelSubmitWritebackFence: return offsetof(struct HelSqWritebackFence, size);
	case kHelSubmitInvalidateMemory: return offsetof(struct HelSqInvalidateMemory, size);
	case kHelSubmitPopulateSpace: return offsetof(struct HelSqPopulateSpace, length);
	default: return 0;
	}
}
