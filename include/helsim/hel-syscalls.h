/* helsim — the hel calls, as Managarm's hel-syscalls.h builds them: each one an inline wrapper
 * over a helSyscallN_M stub of <helsim/hel-stubs.h>. Include <helsim/hel.h> (which includes
 * this file) or this file; either gives both. Calls that helsim does not implement yet are
 * declared all the same, so that code written for Managarm compiles; the kernel answers them
 * with kHelErrIllegalSyscall (docs/reference/index.md lists what is implemented).
 */
#include <helsim/hel.h>

#ifndef HELSIM_HEL_SYSCALLS_H
#define HELSIM_HEL_SYSCALLS_H

#include <helsim/hel-stubs.h>

#ifdef __cplusplus
#define HELSIM_CALL inline
#else
#define HELSIM_CALL static inline
#endif

HELSIM_CALL HelError helLog(enum HelLogSeverity severity, const char *string, size_t length) {
	return helSyscall3(kHelCallLog, (HelWord)severity, (HelWord)string, (HelWord)length);
}

HELSIM_CALL __attribute__((noreturn)) void helPanic(const char *string, size_t length) {
	helSyscall2(kHelCallPanic, (HelWord)string, (HelWord)length);
	__builtin_unreachable();
}

HELSIM_CALL HelError helNop(void) { return helSyscall0(kHelCallNop); }

HELSIM_CALL HelError helSubmitAsyncNop(HelHandle queue, uintptr_t context) {
	return helSyscall2(kHelCallSubmitAsyncNop, (HelWord)queue, (HelWord)context);
}

HELSIM_CALL HelError helCreateUniverse(HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallCreateUniverse, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helTransferDescriptor(HelHandle handle, HelHandle universeHandle,
		uint32_t flags, uint32_t exposedRights, uint32_t requiredRights, HelHandle *outHandle) {
	HelWord out;
	HelError error =
			helSyscall5_1(kHelCallTransferDescriptor, (HelWord)handle, (HelWord)universeHandle,
					(HelWord)flags, (HelWord)exposedRights, (HelWord)requiredRights, &out);
	*outHandle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helDescriptorInfo(HelHandle handle, struct HelDescriptorInfo *info) {
	return helSyscall2(kHelCallDescriptorInfo, (HelWord)handle, (HelWord)info);
}

HELSIM_CALL HelError helGetCredentials(HelHandle handle, uint32_t flags, char *credentials) {
	return helSyscall3(kHelCallGetCredentials, (HelWord)handle, (HelWord)flags,
			(HelWord)credentials);
}

HELSIM_CALL HelError helCloseDescriptor(HelHandle universeHandle, HelHandle handle) {
	return helSyscall2(kHelCallCloseDescriptor, (HelWord)universeHandle, (HelWord)handle);
}

HELSIM_CALL HelError helCreateQueue(const struct HelQueueParameters *params, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall1_1(kHelCallCreateQueue, (HelWord)params, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helDriveQueue(HelHandle handle, uint32_t flags, uint32_t notifyMask) {
	return helSyscall3(kHelCallDriveQueue, (HelWord)handle, (HelWord)flags, (HelWord)notifyMask);
}

HELSIM_CALL HelError helAlertQueue(HelHandle handle) {
	return helSyscall1(kHelCallAlertQueue, (HelWord)handle);
}

HELSIM_CALL HelError helMapMemory(HelHandle handle, HelHandle space, void *pointer,
		uintptr_t offset, size_t size, uint32_t flags, void **actualPointer) {
	HelWord out;
	HelError error = helSyscall6_1(kHelCallMapMemory, (HelWord)handle, (HelWord)space,
			(HelWord)pointer, (HelWord)offset, (HelWord)size, (HelWord)flags, &out);
	*actualPointer = (void *)out;
	return error;
}

HELSIM_CALL HelError helUnmapMemory(HelHandle space, void *pointer, size_t size) {
	return helSyscall3(kHelCallUnmapMemory, (HelWord)space, (HelWord)pointer, (HelWord)size);
}

HELSIM_CALL HelError helCreateSpace(HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallCreateSpace, &out);
	*handle = (HelHandle)out;
	return error;
}

/* restrictions may be NULL (no restriction: addressBits = 64). */
HELSIM_CALL HelError helAllocateMemory(size_t size, uint32_t flags,
		const struct HelAllocRestrictions *restrictions, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall3_1(kHelCallAllocateMemory, (HelWord)size, (HelWord)flags,
			(HelWord)restrictions, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helCreateManagedMemory(size_t size, uint32_t flags, HelHandle *backingHandle,
		HelHandle *frontalHandle) {
	HelWord backing, frontal;
	HelError error = helSyscall2_2(kHelCallCreateManagedMemory, (HelWord)size, (HelWord)flags,
			&backing, &frontal);
	*backingHandle = (HelHandle)backing;
	*frontalHandle = (HelHandle)frontal;
	return error;
}

/* memory may be kHelZeroMemory. */
HELSIM_CALL HelError helCopyOnWrite(HelHandle memory, uintptr_t offset, size_t size,
		HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall3_1(kHelCallCopyOnWrite, (HelWord)memory, (HelWord)offset,
			(HelWord)size, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helCreateSliceView(HelHandle memory, uintptr_t offset, size_t size,
		uint32_t flags, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall4_1(kHelCallCreateSliceView, (HelWord)memory, (HelWord)offset,
			(HelWord)size, (HelWord)flags, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helCreateIndirectMemory(size_t numSlots, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall1_1(kHelCallCreateIndirectMemory, (HelWord)numSlots, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helAlterMemoryIndirection(HelHandle indirectHandle, size_t slotIndex,
		HelHandle memoryHandle, uintptr_t offset, size_t size) {
	return helSyscall5(kHelCallAlterMemoryIndirection, (HelWord)indirectHandle, (HelWord)slotIndex,
			(HelWord)memoryHandle, (HelWord)offset, (HelWord)size);
}

/* space: an address space, a DMA space, or kHelNullHandle for the caller's own space. */
HELSIM_CALL HelError helPointerPhysical(HelHandle space, const void *pointer, uintptr_t *physical) {
	HelWord out;
	HelError error = helSyscall2_1(kHelCallPointerPhysical, (HelWord)space, (HelWord)pointer, &out);
	*physical = (uintptr_t)out;
	return error;
}

HELSIM_CALL HelError helMemoryInfo(HelHandle handle, size_t *size) {
	HelWord out;
	HelError error = helSyscall1_1(kHelCallMemoryInfo, (HelWord)handle, &out);
	*size = (size_t)out;
	return error;
}

/* type: kHelManageInitialize or kHelManageWriteback. */
HELSIM_CALL HelError helUpdateMemory(HelHandle handle, int type, uintptr_t offset, size_t length) {
	return helSyscall4(kHelCallUpdateMemory, (HelWord)handle, (HelWord)type, (HelWord)offset,
			(HelWord)length);
}

HELSIM_CALL HelError helLoadahead(HelHandle handle, uintptr_t offset, size_t length) {
	return helSyscall3(kHelCallLoadahead, (HelWord)handle, (HelWord)offset, (HelWord)length);
}

HELSIM_CALL HelError helCreateThread(HelHandle universe, HelHandle addressSpace, HelAbi abi,
		void *ip, void *sp, uint32_t flags, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall6_1(kHelCallCreateThread, (HelWord)universe, (HelWord)addressSpace,
			(HelWord)abi, (HelWord)ip, (HelWord)sp, (HelWord)flags, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helYield(void) { return helSyscall0(kHelCallYield); }

HELSIM_CALL HelError helSetPriority(HelHandle handle, int priority) {
	return helSyscall2(kHelCallSetPriority, (HelWord)handle, (HelWord)priority);
}

HELSIM_CALL HelError helResume(HelHandle handle) {
	return helSyscall1(kHelCallResume, (HelWord)handle);
}

HELSIM_CALL HelError helGetCurrentCpu(int *cpu) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallGetCurrentCpu, &out);
	*cpu = (int)out;
	return error;
}

HELSIM_CALL HelError helGetClock(uint64_t *counter) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallGetClock, &out);
	*counter = (uint64_t)out;
	return error;
}

/* The kernel writes *actualSize (when actualSize is not NULL). */
HELSIM_CALL HelError helGetAffinity(HelHandle handle, uint8_t *mask, size_t size,
		size_t *actualSize) {
	return helSyscall4(kHelCallGetAffinity, (HelWord)handle, (HelWord)mask, (HelWord)size,
			(HelWord)actualSize);
}

HELSIM_CALL HelError helSetAffinity(HelHandle handle, uint8_t *mask, size_t size) {
	return helSyscall3(kHelCallSetAffinity, (HelWord)handle, (HelWord)mask, (HelWord)size);
}

HELSIM_CALL HelError helFutexWait(int *pointer, int expected, int64_t deadline) {
	return helSyscall3(kHelCallFutexWait, (HelWord)pointer, (HelWord)expected, (HelWord)deadline);
}

HELSIM_CALL HelError helFutexWake(int *pointer, unsigned int count) {
	return helSyscall2(kHelCallFutexWake, (HelWord)pointer, (HelWord)count);
}

HELSIM_CALL HelError helCreateStream(HelHandle *lane1, HelHandle *lane2,
		uint32_t attachCredentials) {
	HelWord out1, out2;
	HelError error = helSyscall1_2(kHelCallCreateStream, (HelWord)attachCredentials, &out1, &out2);
	*lane1 = (HelHandle)out1;
	*lane2 = (HelHandle)out2;
	return error;
}

HELSIM_CALL HelError helShutdownLane(HelHandle handle) {
	return helSyscall1(kHelCallShutdownLane, (HelWord)handle);
}

/* The 2022-era submission path (Managarm removed it in 2026): the completion goes to `queue`
 * with `context`. helsim keeps it as a second path into the same stream code. */
HELSIM_CALL HelError helSubmitAsync(HelHandle handle, const struct HelAction *actions, size_t count,
		HelHandle queue, uintptr_t context, uint32_t flags) {
	return helSyscall6(kHelCallSubmitAsync, (HelWord)handle, (HelWord)actions, (HelWord)count,
			(HelWord)queue, (HelWord)context, (HelWord)flags);
}

/* The 2022-era memory submissions: the same operations as SQ opcodes 5, 6, 7, 8, 9 and 10, with
 * the completion going to `queue` and submission errors returned at once. */
HELSIM_CALL HelError helSubmitProtectMemory(HelHandle space, void *pointer, size_t size,
		uint32_t flags, HelHandle queue, uintptr_t context) {
	return helSyscall6(kHelCallSubmitProtectMemory, (HelWord)space, (HelWord)pointer, (HelWord)size,
			(HelWord)flags, (HelWord)queue, (HelWord)context);
}

HELSIM_CALL HelError helSubmitSynchronizeSpace(HelHandle space, void *pointer, size_t size,
		HelHandle queue, uintptr_t context) {
	return helSyscall5(kHelCallSubmitSynchronizeSpace, (HelWord)space, (HelWord)pointer,
			(HelWord)size, (HelWord)queue, (HelWord)context);
}

HELSIM_CALL HelError helSubmitReadMemory(HelHandle handle, uintptr_t address, size_t length,
		void *buffer, HelHandle queue, uintptr_t context) {
	return helSyscall6(kHelCallSubmitReadMemory, (HelWord)handle, (HelWord)address, (HelWord)length,
			(HelWord)buffer, (HelWord)queue, (HelWord)context);
}

HELSIM_CALL HelError helSubmitWriteMemory(HelHandle handle, uintptr_t address, size_t length,
		const void *buffer, HelHandle queue, uintptr_t context) {
	return helSyscall6(kHelCallSubmitWriteMemory, (HelWord)handle, (HelWord)address,
			(HelWord)length, (HelWord)buffer, (HelWord)queue, (HelWord)context);
}

HELSIM_CALL HelError helSubmitManageMemory(HelHandle handle, HelHandle queue, uintptr_t context) {
	return helSyscall3(kHelCallSubmitManageMemory, (HelWord)handle, (HelWord)queue,
			(HelWord)context);
}

HELSIM_CALL HelError helSubmitLockMemoryView(HelHandle handle, uintptr_t offset, size_t size,
		HelHandle queue, uintptr_t context) {
	return helSyscall5(kHelCallSubmitLockMemoryView, (HelWord)handle, (HelWord)offset,
			(HelWord)size, (HelWord)queue, (HelWord)context);
}

/* The 2022-era observe: the same operation as SQ opcode 11, completing with today's 8-byte
 * HelObserveResult; `sequence` is ignored (Managarm dropped sequence numbers in 2026). */
HELSIM_CALL HelError helSubmitObserve(HelHandle handle, uint64_t sequence, HelHandle queue,
		uintptr_t context) {
	return helSyscall4(kHelCallSubmitObserve, (HelWord)handle, (HelWord)sequence, (HelWord)queue,
			(HelWord)context);
}

HELSIM_CALL HelError helCreateToken(HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallCreateToken, &out);
	*handle = (HelHandle)out;
	return error;
}

/* ---------------------------------------------------------------- memory, continued */

HELSIM_CALL HelError helAccessPhysical(HelHandle accessToken, uintptr_t physical, size_t size,
		uint32_t cachingMode, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall4_1(kHelCallAccessPhysical, (HelWord)accessToken, (HelWord)physical,
			(HelWord)size, (HelWord)cachingMode, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helCreateDmaSpace(uint32_t flags, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall1_1(kHelCallCreateDmaSpace, (HelWord)flags, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helCreateSwapSpace(uint32_t flags, HelHandle *backingHandle,
		HelHandle *swapHandle) {
	HelWord backing, swap;
	HelError error = helSyscall1_2(kHelCallCreateSwapSpace, (HelWord)flags, &backing, &swap);
	*backingHandle = (HelHandle)backing;
	*swapHandle = (HelHandle)swap;
	return error;
}

HELSIM_CALL HelError helAllocateSwappableMemory(HelHandle swapHandle, size_t size, uint32_t flags,
		HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall3_1(kHelCallAllocateSwappableMemory, (HelWord)swapHandle,
			(HelWord)size, (HelWord)flags, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helSetSwapBudget(HelHandle swapHandle, size_t numPages) {
	return helSyscall2(kHelCallSetSwapBudget, (HelWord)swapHandle, (HelWord)numPages);
}

/* Reserved numbers: these are SQ operations now (kHelSubmitResizeMemory, kHelSubmitForkMemory)
 * and the kernel answers the syscalls with kHelErrIllegalSyscall, as thor does. */
HELSIM_CALL HelError helResizeMemory(HelHandle handle, size_t newSize) {
	return helSyscall2(kHelCallResizeMemory, (HelWord)handle, (HelWord)newSize);
}

HELSIM_CALL HelError helForkMemory(HelHandle handle, HelHandle *forkedHandle) {
	HelWord out;
	HelError error = helSyscall1_1(kHelCallForkMemory, (HelWord)handle, &out);
	*forkedHandle = (HelHandle)out;
	return error;
}

/* ---------------------------------------------------------------- thread control */

HELSIM_CALL HelError helQueryThreadStats(HelHandle handle, struct HelThreadStats *stats) {
	return helSyscall2(kHelCallQueryThreadStats, (HelWord)handle, (HelWord)stats);
}

HELSIM_CALL HelError helKillThread(HelHandle handle) {
	return helSyscall1(kHelCallKillThread, (HelWord)handle);
}

HELSIM_CALL HelError helInterruptThread(HelHandle handle) {
	return helSyscall1(kHelCallInterruptThread, (HelWord)handle);
}

HELSIM_CALL HelError helLoadRegisters(HelHandle handle, int set, void *image) {
	return helSyscall3(kHelCallLoadRegisters, (HelWord)handle, (HelWord)set, (HelWord)image);
}

HELSIM_CALL HelError helStoreRegisters(HelHandle handle, int set, const void *image) {
	return helSyscall3(kHelCallStoreRegisters, (HelWord)handle, (HelWord)set, (HelWord)image);
}

HELSIM_CALL HelError helQueryRegisterInfo(int set, struct HelRegisterInfo *info) {
	return helSyscall2(kHelCallQueryRegisterInfo, (HelWord)set, (HelWord)info);
}

HELSIM_CALL HelError helWriteFsBase(void *pointer) {
	return helSyscall1(kHelCallWriteFsBase, (HelWord)pointer);
}

HELSIM_CALL HelError helReadFsBase(void **pointer) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallReadFsBase, &out);
	*pointer = (void *)out;
	return error;
}

HELSIM_CALL HelError helWriteGsBase(void *pointer) {
	return helSyscall1(kHelCallWriteGsBase, (HelWord)pointer);
}

HELSIM_CALL HelError helReadGsBase(void **pointer) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallReadGsBase, &out);
	*pointer = (void *)out;
	return error;
}

HELSIM_CALL HelError helGetRandomBytes(void *buffer, size_t wantedSize, size_t *actualSize) {
	HelWord out;
	HelError error =
			helSyscall2_1(kHelCallGetRandomBytes, (HelWord)buffer, (HelWord)wantedSize, &out);
	*actualSize = (size_t)out;
	return error;
}

/* ---------------------------------------------------------------- virtualization */

HELSIM_CALL HelError helCreateVirtualizedSpace(HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallCreateVirtualizedSpace, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helCreateVirtualizedCpu(HelHandle handle, HelHandle *out_handle) {
	HelWord out;
	HelError error = helSyscall1_1(kHelCallCreateVirtualizedCpu, (HelWord)handle, &out);
	*out_handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helRunVirtualizedCpu(HelHandle handle, struct HelVmexitReason *reason) {
	return helSyscall2(kHelCallRunVirtualizedCpu, (HelWord)handle, (HelWord)reason);
}

HELSIM_CALL HelError helAssertVirtualizedIrq(HelHandle handle, uint64_t irq, uint8_t level) {
	return helSyscall3(kHelCallAssertVirtualizedIrq, (HelWord)handle, (HelWord)irq, (HelWord)level);
}

/* ---------------------------------------------------------------- events and IRQs */

HELSIM_CALL HelError helCreateOneshotEvent(HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallCreateOneshotEvent, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helCreateBitsetEvent(HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallCreateBitsetEvent, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helRaiseEvent(HelHandle handle) {
	return helSyscall1(kHelCallRaiseEvent, (HelWord)handle);
}

/* helsim's own: raises `bits` (non-zero) of a bitset event, with one new sequence number. In
 * Managarm only a kernlet can (__trigger_bitset); helRaiseEvent refuses bitset events there
 * and here. The same syscall as helRaiseEvent, with the bits in argument word 1. */
HELSIM_CALL HelError helsimRaiseBitsetEvent(HelHandle handle, uint32_t bits) {
	return helSyscall2(kHelCallRaiseEvent, (HelWord)handle, (HelWord)bits);
}

/* The 2022-era await: the same operation as SQ opcode 4 (kHelSubmitAwaitEvent), not
 * cancellable (the old call had no cancellation tag). */
HELSIM_CALL HelError helSubmitAwaitEvent(HelHandle handle, uint64_t sequence, HelHandle queue,
		uintptr_t context) {
	return helSyscall4(kHelCallSubmitAwaitEvent, (HelWord)handle, (HelWord)sequence, (HelWord)queue,
			(HelWord)context);
}

HELSIM_CALL HelError helAccessIrq(HelHandle accessToken, uint32_t mode, uint64_t controller,
		uint64_t index, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall4_1(kHelCallAccessIrq, (HelWord)accessToken, (HelWord)mode,
			(HelWord)controller, (HelWord)index, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helHandleIrq(HelHandle pinHandle, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall1_1(kHelCallHandleIrq, (HelWord)pinHandle, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helConfigureIrq(HelHandle pinHandle, uint32_t trigger, uint32_t polarity) {
	return helSyscall3(kHelCallConfigureIrq, (HelWord)pinHandle, (HelWord)trigger,
			(HelWord)polarity);
}

HELSIM_CALL HelError helAcknowledgeIrq(HelHandle handle, uint32_t flags, uint64_t sequence) {
	return helSyscall3(kHelCallAcknowledgeIrq, (HelWord)handle, (HelWord)flags, (HelWord)sequence);
}

HELSIM_CALL HelError helAutomateIrq(HelHandle handle, uint32_t flags, HelHandle kernlet) {
	return helSyscall3(kHelCallAutomateIrq, (HelWord)handle, (HelWord)flags, (HelWord)kernlet);
}

/* ---------------------------------------------------------------- I/O and kernlets */

HELSIM_CALL HelError helAccessIo(HelHandle accessToken, const uintptr_t *portArray, size_t numPorts,
		HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall3_1(kHelCallAccessIo, (HelWord)accessToken, (HelWord)portArray,
			(HelWord)numPorts, &out);
	*handle = (HelHandle)out;
	return error;
}

HELSIM_CALL HelError helEnableIo(HelHandle handle) {
	return helSyscall1(kHelCallEnableIo, (HelWord)handle);
}

/* helsim's own: a port read or write of `width` bytes (1, 2 or 4) on a simulated device, in
 * place of the in/out instructions a host process cannot use. The port must be enabled for
 * the calling thread (helEnableIo); docs/reference/helsim-io.md. */
HELSIM_CALL HelError helsimIoRead(uint16_t port, unsigned int width, uint32_t *value) {
	HelWord out;
	HelError error = helSyscall2_1(kHelsimCallIoRead, (HelWord)port, (HelWord)width, &out);
	*value = (uint32_t)out;
	return error;
}

HELSIM_CALL HelError helsimIoWrite(uint16_t port, unsigned int width, uint32_t value) {
	return helSyscall3(kHelsimCallIoWrite, (HelWord)port, (HelWord)width, (HelWord)value);
}

/* helsim's own: a load or store of `width` bytes (1, 2, 4 or 8, naturally aligned) at
 * `address` in the caller's address space. Inside a mapped device MMIO window it reaches the
 * device's hooks; elsewhere it is a plain, checked memory access. */
HELSIM_CALL HelError helsimMmioRead(const void *address, unsigned int width, uint64_t *value) {
	HelWord out;
	HelError error = helSyscall2_1(kHelsimCallMmioRead, (HelWord)address, (HelWord)width, &out);
	*value = (uint64_t)out;
	return error;
}

HELSIM_CALL HelError helsimMmioWrite(void *address, unsigned int width, uint64_t value) {
	return helSyscall3(kHelsimCallMmioWrite, (HelWord)address, (HelWord)width, (HelWord)value);
}

HELSIM_CALL HelError helBindKernlet(HelHandle handle, const union HelKernletData *data,
		size_t numData, HelHandle *boundHandle) {
	HelWord out;
	HelError error = helSyscall3_1(kHelCallBindKernlet, (HelWord)handle, (HelWord)data,
			(HelWord)numData, &out);
	*boundHandle = (HelHandle)out;
	return error;
}

#undef HELSIM_CALL

#endif /* HELSIM_HEL_SYSCALLS_H */
