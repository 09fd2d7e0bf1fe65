/* Managarm's published hel.h layouts on x86-64 (LP64), written out as facts, and checked
 * against helsim's hel.h from C (hel_layout.c) and from C++ (hel_layout_test.cpp). The
 * numbers come from Managarm's hel/include/hel.h as described in shared/hel-reference.md
 * (managarm/managarm at d15dd1cc) and its field lists; nothing here is computed from helsim's
 * own header, so a drift in either direction stops the build.
 */
#ifndef HELSIM_TEST_HEL_LAYOUT_FACTS_H
#define HELSIM_TEST_HEL_LAYOUT_FACTS_H

#include <stddef.h>

#ifdef __cplusplus
#define HEL_FACT(cond) static_assert(cond, #cond)
#else
#define HEL_FACT(cond) _Static_assert(cond, #cond)
#endif
#define HEL_SIZE(type, n) HEL_FACT(sizeof(struct type) == (n))
#define HEL_AT(type, field, n) HEL_FACT(offsetof(struct type, field) == (n))

/* Types. */
HEL_FACT(sizeof(HelError) == 4);
HEL_FACT(sizeof(HelHandle) == 8 && (HelHandle)-1 < 0);
HEL_FACT(sizeof(HelNanotime) == 8);
HEL_FACT(sizeof(HelWord) == 8 && (HelWord)-1 > 0);
HEL_FACT(sizeof(HelRights) == 4 && (HelRights)-1 > 0);
HEL_FACT(sizeof(HelAbi) == 4);

/* Streams. */
HEL_SIZE(HelSgItem, 16);
HEL_AT(HelSgItem, buffer, 0);
HEL_AT(HelSgItem, length, 8);
HEL_SIZE(HelAction, 32);
HEL_AT(HelAction, type, 0);
HEL_AT(HelAction, flags, 4);
HEL_AT(HelAction, buffer, 8);
HEL_AT(HelAction, word0, 8);
HEL_AT(HelAction, length, 16);
HEL_AT(HelAction, rights, 16);
HEL_AT(HelAction, word1, 16);
HEL_AT(HelAction, handle, 24);
HEL_AT(HelAction, word2, 24);

/* Descriptors and memory. */
HEL_SIZE(HelDescriptorInfo, 4);
HEL_AT(HelDescriptorInfo, type, 0);
HEL_SIZE(HelAllocRestrictions, 4);
HEL_AT(HelAllocRestrictions, addressBits, 0);

/* Queues. */
HEL_SIZE(HelQueueParameters, 24);
HEL_AT(HelQueueParameters, flags, 0);
HEL_AT(HelQueueParameters, numChunks, 4);
HEL_AT(HelQueueParameters, chunkSize, 8);
HEL_AT(HelQueueParameters, numSqChunks, 16);
HEL_SIZE(HelQueue, 16);
HEL_AT(HelQueue, userNotify, 0);
HEL_AT(HelQueue, kernelNotify, 4);
HEL_AT(HelQueue, cqFirst, 8);
HEL_AT(HelQueue, sqFirst, 12);
HEL_SIZE(HelChunk, 8);
HEL_AT(HelChunk, next, 0);
HEL_AT(HelChunk, progressFutex, 4);
HEL_AT(HelChunk, buffer, 8);
HEL_SIZE(HelElement, 16);
HEL_AT(HelElement, length, 0);
HEL_AT(HelElement, opcode, 4);
HEL_AT(HelElement, context, 8);

/* SQ payloads. */
HEL_SIZE(HelSqCancel, 8);
HEL_AT(HelSqCancel, cancellationTag, 0);
HEL_SIZE(HelSqExchangeMsgs, 24);
HEL_AT(HelSqExchangeMsgs, lane, 0);
HEL_AT(HelSqExchangeMsgs, count, 8);
HEL_AT(HelSqExchangeMsgs, flags, 16);
HEL_SIZE(HelSqAwaitClock, 16);
HEL_AT(HelSqAwaitClock, counter, 0);
HEL_AT(HelSqAwaitClock, cancellationTag, 8);
HEL_SIZE(HelSqAwaitEvent, 24);
HEL_AT(HelSqAwaitEvent, handle, 0);
HEL_AT(HelSqAwaitEvent, sequence, 8);
HEL_AT(HelSqAwaitEvent, cancellationTag, 16);
HEL_SIZE(HelSqProtectMemory, 32);
HEL_AT(HelSqProtectMemory, spaceHandle, 0);
HEL_AT(HelSqProtectMemory, pointer, 8);
HEL_AT(HelSqProtectMemory, size, 16);
HEL_AT(HelSqProtectMemory, flags, 24);
HEL_SIZE(HelSqSynchronizeSpace, 24);
HEL_AT(HelSqSynchronizeSpace, spaceHandle, 0);
HEL_AT(HelSqSynchronizeSpace, pointer, 8);
HEL_AT(HelSqSynchronizeSpace, size, 16);
HEL_SIZE(HelSqReadMemory, 32);
HEL_AT(HelSqReadMemory, handle, 0);
HEL_AT(HelSqReadMemory, address, 8);
HEL_AT(HelSqReadMemory, length, 16);
HEL_AT(HelSqReadMemory, buffer, 24);
HEL_SIZE(HelSqWriteMemory, 32);
HEL_AT(HelSqWriteMemory, handle, 0);
HEL_AT(HelSqWriteMemory, address, 8);
HEL_AT(HelSqWriteMemory, length, 16);
HEL_AT(HelSqWriteMemory, buffer, 24);
HEL_SIZE(HelSqManageMemory, 8);
HEL_AT(HelSqManageMemory, handle, 0);
HEL_SIZE(HelSqLockMemoryView, 24);
HEL_AT(HelSqLockMemoryView, handle, 0);
HEL_AT(HelSqLockMemoryView, offset, 8);
HEL_AT(HelSqLockMemoryView, size, 16);
HEL_SIZE(HelSqObserve, 8);
HEL_AT(HelSqObserve, handle, 0);
HEL_SIZE(HelSqResizeMemory, 16);
HEL_AT(HelSqResizeMemory, handle, 0);
HEL_AT(HelSqResizeMemory, newSize, 8);
HEL_SIZE(HelSqForkMemory, 8);
HEL_AT(HelSqForkMemory, handle, 0);
HEL_SIZE(HelSqWritebackFence, 24);
HEL_AT(HelSqWritebackFence, handle, 0);
HEL_AT(HelSqWritebackFence, offset, 8);
HEL_AT(HelSqWritebackFence, size, 16);
HEL_SIZE(HelSqInvalidateMemory, 24);
HEL_AT(HelSqInvalidateMemory, handle, 0);
HEL_AT(HelSqInvalidateMemory, offset, 8);
HEL_AT(HelSqInvalidateMemory, size, 16);
HEL_SIZE(HelSqPopulateSpace, 24);
HEL_AT(HelSqPopulateSpace, handle, 0);
HEL_AT(HelSqPopulateSpace, address, 8);
HEL_AT(HelSqPopulateSpace, length, 16);

/* Results. */
HEL_SIZE(HelSimpleResult, 8);
HEL_AT(HelSimpleResult, error, 0);
HEL_AT(HelSimpleResult, reserved, 4);
HEL_SIZE(HelCredentialsResult, 24);
HEL_AT(HelCredentialsResult, error, 0);
HEL_AT(HelCredentialsResult, credentials, 8);
HEL_SIZE(HelManageResult, 24);
HEL_AT(HelManageResult, error, 0);
HEL_AT(HelManageResult, type, 4);
HEL_AT(HelManageResult, offset, 8);
HEL_AT(HelManageResult, length, 16);
HEL_SIZE(HelObserveResult, 8);
HEL_AT(HelObserveResult, error, 0);
HEL_AT(HelObserveResult, observation, 4);
HEL_SIZE(HelInlineResult, 16);
HEL_AT(HelInlineResult, error, 0);
HEL_AT(HelInlineResult, length, 8);
HEL_AT(HelInlineResult, data, 16);
HEL_SIZE(HelInlineResultNoFlex, 16);
HEL_AT(HelInlineResultNoFlex, length, 8);
HEL_SIZE(HelLengthResult, 16);
HEL_AT(HelLengthResult, error, 0);
HEL_AT(HelLengthResult, length, 8);
HEL_SIZE(HelHandleResult, 16);
HEL_AT(HelHandleResult, error, 0);
HEL_AT(HelHandleResult, handle, 8);
HEL_SIZE(HelEventResult, 16);
HEL_AT(HelEventResult, error, 0);
HEL_AT(HelEventResult, bitset, 4);
HEL_AT(HelEventResult, sequence, 8);

/* Threads, registers, virtualization, kernlets. */
HEL_SIZE(HelThreadStats, 8);
HEL_AT(HelThreadStats, userTime, 0);
HEL_SIZE(HelRegisterInfo, 4);
HEL_AT(HelRegisterInfo, setSize, 0);
HEL_SIZE(HelVmexitReason, 24);
HEL_AT(HelVmexitReason, exitReason, 0);
HEL_AT(HelVmexitReason, code, 4);
HEL_AT(HelVmexitReason, address, 8);
HEL_AT(HelVmexitReason, flags, 16);
HEL_SIZE(HelX86SegmentRegister, 24);
HEL_AT(HelX86SegmentRegister, base, 0);
HEL_AT(HelX86SegmentRegister, limit, 8);
HEL_AT(HelX86SegmentRegister, selector, 12);
HEL_AT(HelX86SegmentRegister, type, 14);
HEL_AT(HelX86SegmentRegister, avl, 21);
HEL_SIZE(HelX86DescriptorTable, 16);
HEL_AT(HelX86DescriptorTable, limit, 8);
HEL_SIZE(HelX86VirtualizationRegs, 424);
HEL_AT(HelX86VirtualizationRegs, rbp, 48);
HEL_AT(HelX86VirtualizationRegs, r8, 56);
HEL_AT(HelX86VirtualizationRegs, rsp, 120);
HEL_AT(HelX86VirtualizationRegs, rip, 128);
HEL_AT(HelX86VirtualizationRegs, rflags, 136);
HEL_AT(HelX86VirtualizationRegs, cs, 144);
HEL_AT(HelX86VirtualizationRegs, ldt, 312);
HEL_AT(HelX86VirtualizationRegs, gdt, 336);
HEL_AT(HelX86VirtualizationRegs, idt, 352);
HEL_AT(HelX86VirtualizationRegs, cr0, 368);
HEL_AT(HelX86VirtualizationRegs, efer, 408);
HEL_AT(HelX86VirtualizationRegs, apic_base, 416);
HEL_FACT(sizeof(union HelKernletData) == 8);

/* Values outside code depends on bit for bit. */
HEL_FACT(kHelNumCalls == 113 && kHelCallDriveQueue == 105 && kHelCallSuper + 0 == (int)0x80000000u);
HEL_FACT(kHelErrBadRights == 26 && kHelErrFutexRace == 25 && kHelErrOther == 24);
HEL_FACT(kHelNumGprs == 15 && kHelRegRsi == 5 && kHelRegRax == 0 && kHelRegR14 == 12);
HEL_FACT(kHelRegArg0 == 5 && kHelRegArg2 == 0 && kHelRegArg8 == 12 && kHelRegOut2 == 0);
HEL_FACT(kHelRegError == 4 && kHelRegNumber == 4 && kHelRegOut1 == 3);
HEL_FACT(kHelRegsPageFault == 8 && kHelRegsSignal == 7 && kHelObserveDivByZero == 7);
HEL_FACT(kHelSubmitCancel == 256 && kHelSubmitPopulateSpace == 16 && kHelSubmitObserve == 11);
HEL_FACT(kHelMapProtRead == 256 && kHelMapPreferBottom == 8192 && kHelMapDontRequireBacking == 128);
HEL_FACT(kHelItemWantLane == 65536 && kHelActionDismiss == 11 && kHelActionSendFromBufferSg == 10);

#undef HEL_AT
#undef HEL_SIZE

#endif /* HELSIM_TEST_HEL_LAYOUT_FACTS_H */
