/* helsim — Managarm's hel API, hosted.
 *
 * Names, numbers and struct layouts follow Managarm's hel/include/hel.h (current API:
 * submission + completion rings driven by helDriveQueue). Every function below is an inline
 * wrapper over the helSyscallN_M stubs of <helsim/hel-stubs.h>, which in turn call the one
 * exported entry point helsim_syscall(). docs/reference/ has one page per call.
 */
#ifndef HELSIM_HEL_H
#define HELSIM_HEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define HEL_C_LINKAGE extern "C"
#define HEL_INLINE inline
#else
#define HEL_C_LINKAGE
#define HEL_INLINE static inline
#endif

typedef int HelError;
typedef int64_t HelHandle;
typedef int64_t HelNanotime;
typedef uint64_t HelWord;
typedef int HelAbi;

/* ---------------------------------------------------------------- syscall numbers */
enum {
	kHelNumCalls = 113,

	kHelCallLog = 1,
	kHelCallPanic = 10,

	kHelCallNop = 2,
	kHelCallSubmitAsyncNop = 3,

	kHelCallCreateUniverse = 62,
	kHelCallTransferDescriptor = 66,
	kHelCallDescriptorInfo = 32,
	kHelCallGetCredentials = 84,
	kHelCallCloseDescriptor = 21,

	kHelCallCreateQueue = 89,
	kHelCallDriveQueue = 105,
	kHelCallAlertQueue = 106,
	kHelCallCancelAsync = 92, /* removed in Managarm; answers kHelErrIllegalSyscall */

	kHelCallAllocateMemory = 51,
	kHelCallResizeMemory = 83, /* reserved: now SQ kHelSubmitResizeMemory */
	kHelCallCreateManagedMemory = 64,
	kHelCallCreateSwapSpace = 110,
	kHelCallAllocateSwappableMemory = 111,
	kHelCallSetSwapBudget = 112,
	kHelCallCopyOnWrite = 39,
	kHelCallAccessPhysical = 30,
	kHelCallCreateSliceView = 88,
	kHelCallForkMemory = 40, /* reserved: now SQ kHelSubmitForkMemory */
	kHelCallCreateSpace = 27,
	kHelCallCreateDmaSpace = 108,
	kHelCallCreateIndirectMemory = 45,
	kHelCallAlterMemoryIndirection = 52,
	kHelCallMapMemory = 44,
	kHelCallSubmitProtectMemory = 99,
	kHelCallSubmitSynchronizeSpace = 53,
	kHelCallUnmapMemory = 36,
	kHelCallPointerPhysical = 43,
	kHelCallSubmitReadMemory = 77,
	kHelCallSubmitWriteMemory = 78,
	kHelCallMemoryInfo = 26,
	kHelCallSubmitManageMemory = 46,
	kHelCallUpdateMemory = 47,
	kHelCallSubmitLockMemoryView = 48,
	kHelCallLoadahead = 49,
	kHelCallCreateVirtualizedSpace = 50,

	kHelCallCreateThread = 67,
	kHelCallQueryThreadStats = 95,
	kHelCallSetPriority = 85,
	kHelCallYield = 34,
	kHelCallSubmitObserve = 74,
	kHelCallKillThread = 87,
	kHelCallInterruptThread = 86,
	kHelCallResume = 61,
	kHelCallLoadRegisters = 75,
	kHelCallStoreRegisters = 76,
	kHelCallQueryRegisterInfo = 102,
	kHelCallWriteFsBase = 41,
	kHelCallGetClock = 42,
	kHelCallSubmitAwaitClock = 80,
	kHelCallCreateVirtualizedCpu = 37,
	kHelCallRunVirtualizedCpu = 38,
	kHelCallAssertVirtualizedIrq = 107,
	kHelCallGetRandomBytes = 101,
	kHelCallWriteGsBase = 54,
	kHelCallReadFsBase = 55,
	kHelCallReadGsBase = 56,
	kHelCallGetCurrentCpu = 57,

	kHelCallCreateStream = 68,
	kHelCallSubmitAsync = 79,
	kHelCallShutdownLane = 91,

	kHelCallFutexWait = 73,
	kHelCallFutexWake = 71,

	kHelCallCreateOneshotEvent = 96,
	kHelCallCreateBitsetEvent = 97,
	kHelCallRaiseEvent = 98,
	kHelCallAccessIrq = 14,
	kHelCallHandleIrq = 5,
	kHelCallConfigureIrq = 109,
	kHelCallAcknowledgeIrq = 81,
	kHelCallSubmitAwaitEvent = 82,
	kHelCallAutomateIrq = 94,

	kHelCallAccessIo = 11,
	kHelCallEnableIo = 12,
	kHelCallEnableFullIo = 35,

	kHelCallBindKernlet = 93,

	kHelCallGetAffinity = 103,
	kHelCallSetAffinity = 100,

	kHelCallCreateToken = 104,

	kHelCallSuper = (int)0x80000000u
};

/* ---------------------------------------------------------------- errors */
enum {
	kHelErrNone = 0,
	kHelErrBufferTooSmall = 1,
	kHelErrBadDescriptor = 2,
	kHelErrTimeout = 3,
	kHelErrNoDescriptor = 4,
	kHelErrIllegalSyscall = 5,
	kHelErrIllegalObject = 6,
	kHelErrIllegalArgs = 7,
	kHelErrLaneShutdown = 8,
	kHelErrEndOfLane = 9,
	kHelErrFault = 10,
	kHelErrThreadTerminated = 11,
	kHelErrCancelled = 12,
	kHelErrTransmissionMismatch = 13,
	kHelErrQueueTooSmall = 14,
	kHelErrIllegalState = 15,
	kHelErrNoHardwareSupport = 16,
	kHelErrNoMemory = 17,
	kHelErrUnsupportedOperation = 18,
	kHelErrOutOfBounds = 19,
	kHelErrDismissed = 20,
	kHelErrRemoteFault = 21,
	kHelErrAlreadyExists = 22,
	kHelErrBadPermissions = 23,
	kHelErrOther = 24,
	kHelErrFutexRace = 25,
	kHelErrBadRights = 26
};

/* ---------------------------------------------------------------- handles and rights */
enum { kHelNullHandle = 0, kHelThisUniverse = -1, kHelThisThread = -2, kHelZeroMemory = -3 };

enum {
	kHelRightGrant = 1 << 0,
	kHelRightTake = 1 << 1,
	kHelRightRead = 1 << 2,
	kHelRightWrite = 1 << 3,
	kHelRightExecute = 1 << 4,
	kHelRightInvoke = 1 << 5,
	kHelRightAssign = 1 << 6,
	kHelRightDerive = 1 << 7,
	kHelRightProvision = 1 << 8,
	kHelRightPin = 1 << 9,
	kHelRightFence = 1 << 10,
	kHelRightWait = 1 << 11,
	kHelRightSignal = 1 << 12,
	kHelRightManage = 1 << 13
};
static const uint32_t kHelRightsNull = 0;
static const uint32_t kHelRightsMax = ~(uint32_t)0;

enum HelTransferDescriptorFlags { kHelTransferDescriptorOut = 1, kHelTransferDescriptorIn = 2 };

/* Descriptor types reported by helDescriptorInfo (thor's DescriptorType order). */
enum HelDescriptorType {
	kHelDescNone = 0,
	kHelDescUniverse = 1,
	kHelDescQueue = 2,
	kHelDescMemoryView = 3,
	kHelDescMemorySlice = 4,
	kHelDescSwapSpace = 5,
	kHelDescAddressSpace = 6,
	kHelDescVirtualizedSpace = 7,
	kHelDescDmaSpace = 8,
	kHelDescVirtualizedCpu = 9,
	kHelDescMemoryViewLock = 10,
	kHelDescThread = 11,
	kHelDescLane = 12,
	kHelDescIrqPin = 13,
	kHelDescIrq = 14,
	kHelDescOneshotEvent = 15,
	kHelDescBitsetEvent = 16,
	kHelDescIo = 17,
	kHelDescKernletObject = 18,
	kHelDescBoundKernlet = 19,
	kHelDescToken = 20
};

/* helsim returns the rights next to the type; see docs/fidelity.md. */
struct HelDescriptorInfo {
	int type;
	uint32_t rights;
};

/* ---------------------------------------------------------------- misc constants */
enum { kHelWaitInfinite = -1 };
enum { kHelAbiSystemV = 1 };

enum HelLogSeverity {
	kHelLogSeverityEmergency = 0,
	kHelLogSeverityAlert = 1,
	kHelLogSeverityCritical = 2,
	kHelLogSeverityError = 3,
	kHelLogSeverityWarning = 4,
	kHelLogSeverityNotice = 5,
	kHelLogSeverityInfo = 6,
	kHelLogSeverityDebug = 7
};

enum HelThreadFlags { kHelThreadStopped = 1 };

/* ---------------------------------------------------------------- streams (actions) */
enum {
	kHelActionDismiss = 11,
	kHelActionOffer = 5,
	kHelActionAccept = 6,
	kHelActionImbueCredentials = 8,
	kHelActionExtractCredentials = 9,
	kHelActionSendFromBuffer = 1,
	kHelActionSendFromBufferSg = 10,
	kHelActionRecvInline = 7,
	kHelActionRecvToBuffer = 3,
	kHelActionPushDescriptor = 2,
	kHelActionPullDescriptor = 4
};

enum { kHelItemChain = 1, kHelItemAncillary = 2, kHelItemWantLane = (1 << 16) };

struct HelSgItem {
	void *buffer;
	size_t length;
};

struct HelAction {
	int type;
	uint32_t flags;
	union {
		HelWord word0;
		void *buffer;
	};
	union {
		HelWord word1;
		size_t length;
		uint32_t rights;
	};
	union {
		HelWord word2;
		HelHandle handle;
	};
};

/* ---------------------------------------------------------------- memory constants */
enum HelAllocFlags { kHelAllocOnDemand = 1, kHelAllocContinuous = 4 };
struct HelAllocRestrictions {
	int addressBits;
};
enum HelManagedFlags { kHelManagedReadahead = 1 };
enum HelManageRequests { kHelManageInitialize = 1, kHelManageWriteback = 2 };
enum HelSliceFlags { kHelSliceCacheWriteCombine = 1 };
enum HelMapFlags {
	kHelMapProtRead = 256,
	kHelMapProtWrite = 512,
	kHelMapProtExecute = 1024,
	kHelMapDontRequireBacking = 128,
	kHelMapFixed = 2048,
	kHelMapFixedNoReplace = 4096,
	kHelMapPreferBottom = 8192
};

/* ---------------------------------------------------------------- queues */
struct HelQueueParameters {
	uint32_t flags;
	unsigned int numChunks;
	size_t chunkSize;
	unsigned int numSqChunks;
};

/* Chunk indices in next/cqFirst/sqFirst carry this tag when present. */
static const int kHelNextPresent = (1 << 24);

static const int kHelProgressMask = 0xFFFFFF;
/* Set by the producer once it retires the chunk. */
static const int kHelProgressDone = (1 << 25);
/* Set by the kernel when no further element fits into the chunk. */
static const int kHelProgressFull = (1 << 26);

/* userNotify bits: the kernel sets them, user space clears them. */
static const int kHelUserNotifyCqProgress = (1 << 0);
static const int kHelUserNotifySupplySqChunks = (1 << 1);
static const int kHelUserNotifyError = (1 << 14);
static const int kHelUserNotifyAlert = (1 << 15);

/* kernelNotify bits: user space sets them, the kernel clears them. */
static const int kHelKernelNotifySqProgress = (1 << 0);
static const int kHelKernelNotifySupplyCqChunks = (1 << 1);

enum HelDriveFlags { kHelDriveWait = 1 };

struct HelQueue {
	int userNotify;
	int kernelNotify;
	int cqFirst;
	int sqFirst;
};

struct HelChunk {
	int next;
	int progressFutex;
	char buffer[];
};

struct HelElement {
	unsigned int length;
	unsigned int opcode; /* SQ only; 0 in CQ elements */
	void *context;
};

/* SQ opcodes. */
enum {
	kHelSubmitAsyncNop = 1,
	kHelSubmitExchangeMsgs = 2,
	kHelSubmitAwaitClock = 3,
	kHelSubmitAwaitEvent = 4,
	kHelSubmitProtectMemory = 5,
	kHelSubmitSynchronizeSpace = 6,
	kHelSubmitReadMemory = 7,
	kHelSubmitWriteMemory = 8,
	kHelSubmitManageMemory = 9,
	kHelSubmitLockMemoryView = 10,
	kHelSubmitObserve = 11,
	kHelSubmitResizeMemory = 12,
	kHelSubmitForkMemory = 13,
	kHelSubmitWritebackFence = 14,
	kHelSubmitInvalidateMemory = 15,
	kHelSubmitPopulateSpace = 16,
	kHelSubmitCancel = 256
};

struct HelSqExchangeMsgs {
	HelHandle lane;
	size_t count;
	uint32_t flags;
};

struct HelSqAwaitClock {
	uint64_t counter;
	uint64_t cancellationTag;
};

struct HelSqAwaitEvent {
	HelHandle handle;
	uint64_t sequence;
	uint64_t cancellationTag;
};

struct HelSqCancel {
	uint64_t cancellationTag;
};

/* Memory SQ payloads (opcodes 5..16 except 11). Field names as thor's submitFromSq reads them;
 * the space-taking ops name the handle spaceHandle, all others handle. */
struct HelSqProtectMemory {
	HelHandle spaceHandle; /* kHelNullHandle = the caller's space */
	void *pointer;
	size_t size;
	uint32_t flags; /* kHelMapProt* bits */
};

struct HelSqSynchronizeSpace {
	HelHandle spaceHandle;
	void *pointer;
	size_t size;
};

/* handle: memory view, address space, thread (its space) or virtualized space. */
struct HelSqReadMemory {
	HelHandle handle;
	uintptr_t address;
	size_t length;
	void *buffer;
};

struct HelSqWriteMemory {
	HelHandle handle;
	uintptr_t address;
	size_t length;
	const void *buffer;
};

/* handle: the backing view of a managed memory pair. */
struct HelSqManageMemory {
	HelHandle handle;
};

struct HelSqLockMemoryView {
	HelHandle handle;
	uintptr_t offset;
	size_t size;
};

struct HelSqResizeMemory {
	HelHandle handle;
	size_t newSize;
};

struct HelSqForkMemory {
	HelHandle handle;
};

struct HelSqWritebackFence {
	HelHandle handle;
	uintptr_t offset;
	size_t size;
};

struct HelSqInvalidateMemory {
	HelHandle handle;
	uintptr_t offset;
	size_t size;
};

/* handle: a DMA space. */
struct HelSqPopulateSpace {
	HelHandle handle;
	uintptr_t address;
	size_t length;
};

/* ---------------------------------------------------------------- result structs */
struct HelSimpleResult {
	HelError error;
	int reserved;
};

struct HelCredentialsResult {
	HelError error;
	int reserved;
	char credentials[16];
};

struct HelManageResult {
	HelError error;
	int type;
	uintptr_t offset;
	size_t length;
};

struct HelObserveResult {
	HelError error;
	unsigned int observation;
};

struct HelInlineResult {
	HelError error;
	int reserved;
	size_t length;
	char data[];
};

struct HelInlineResultNoFlex {
	HelError error;
	int reserved;
	size_t length;
};

struct HelLengthResult {
	HelError error;
	int reserved;
	size_t length;
};

struct HelHandleResult {
	HelError error;
	int reserved;
	HelHandle handle;
};

struct HelEventResult {
	HelError error;
	uint32_t bitset;
	uint64_t sequence;
};

struct HelThreadStats {
	uint64_t userTime;
};

#ifdef __cplusplus
#define HELSIM_LAYOUT(cond, what) static_assert(cond, what)
#else
#define HELSIM_LAYOUT(cond, what) _Static_assert(cond, what)
#endif
HELSIM_LAYOUT(sizeof(struct HelAction) == 32, "HelAction is 32 bytes");
HELSIM_LAYOUT(sizeof(struct HelQueueParameters) == 24, "HelQueueParameters is 24 bytes");
HELSIM_LAYOUT(sizeof(struct HelQueue) == 16, "HelQueue is 16 bytes");
HELSIM_LAYOUT(sizeof(struct HelChunk) == 8, "HelChunk header is 8 bytes");
HELSIM_LAYOUT(sizeof(struct HelElement) == 16, "HelElement is 16 bytes");
HELSIM_LAYOUT(sizeof(struct HelSimpleResult) == 8, "HelSimpleResult is 8 bytes");
HELSIM_LAYOUT(sizeof(struct HelHandleResult) == 16, "HelHandleResult is 16 bytes");
HELSIM_LAYOUT(sizeof(struct HelLengthResult) == 16, "HelLengthResult is 16 bytes");
HELSIM_LAYOUT(sizeof(struct HelInlineResult) == 16, "HelInlineResult header is 16 bytes");
HELSIM_LAYOUT(sizeof(struct HelCredentialsResult) == 24, "HelCredentialsResult is 24 bytes");
HELSIM_LAYOUT(sizeof(struct HelManageResult) == 24, "HelManageResult is 24 bytes");
HELSIM_LAYOUT(sizeof(struct HelObserveResult) == 8, "HelObserveResult is 8 bytes");
HELSIM_LAYOUT(sizeof(struct HelEventResult) == 16, "HelEventResult is 16 bytes");
HELSIM_LAYOUT(sizeof(struct HelSqExchangeMsgs) == 24, "HelSqExchangeMsgs is 24 bytes");
HELSIM_LAYOUT(sizeof(struct HelSqAwaitClock) == 16, "HelSqAwaitClock is 16 bytes");
HELSIM_LAYOUT(sizeof(struct HelSqAwaitEvent) == 24, "HelSqAwaitEvent is 24 bytes");
HELSIM_LAYOUT(sizeof(struct HelSqProtectMemory) == 32, "HelSqProtectMemory is 32 bytes");
HELSIM_LAYOUT(offsetof(struct HelSqProtectMemory, pointer) == 8, "ProtectMemory pointer at 8");
HELSIM_LAYOUT(offsetof(struct HelSqProtectMemory, size) == 16, "ProtectMemory size at 16");
HELSIM_LAYOUT(offsetof(struct HelSqProtectMemory, flags) == 24, "ProtectMemory flags at 24");
HELSIM_LAYOUT(sizeof(struct HelSqSynchronizeSpace) == 24, "HelSqSynchronizeSpace is 24 bytes");
HELSIM_LAYOUT(offsetof(struct HelSqSynchronizeSpace, size) == 16, "SynchronizeSpace size at 16");
HELSIM_LAYOUT(sizeof(struct HelSqReadMemory) == 32, "HelSqReadMemory is 32 bytes");
HELSIM_LAYOUT(offsetof(struct HelSqReadMemory, address) == 8, "ReadMemory address at 8");
HELSIM_LAYOUT(offsetof(struct HelSqReadMemory, length) == 16, "ReadMemory length at 16");
HELSIM_LAYOUT(offsetof(struct HelSqReadMemory, buffer) == 24, "ReadMemory buffer at 24");
HELSIM_LAYOUT(sizeof(struct HelSqWriteMemory) == 32, "HelSqWriteMemory is 32 bytes");
HELSIM_LAYOUT(offsetof(struct HelSqWriteMemory, address) == 8, "WriteMemory address at 8");
HELSIM_LAYOUT(offsetof(struct HelSqWriteMemory, length) == 16, "WriteMemory length at 16");
HELSIM_LAYOUT(offsetof(struct HelSqWriteMemory, buffer) == 24, "WriteMemory buffer at 24");
HELSIM_LAYOUT(sizeof(struct HelSqManageMemory) == 8, "HelSqManageMemory is 8 bytes");
HELSIM_LAYOUT(sizeof(struct HelSqLockMemoryView) == 24, "HelSqLockMemoryView is 24 bytes");
HELSIM_LAYOUT(offsetof(struct HelSqLockMemoryView, offset) == 8, "LockMemoryView offset at 8");
HELSIM_LAYOUT(offsetof(struct HelSqLockMemoryView, size) == 16, "LockMemoryView size at 16");
HELSIM_LAYOUT(sizeof(struct HelSqResizeMemory) == 16, "HelSqResizeMemory is 16 bytes");
HELSIM_LAYOUT(offsetof(struct HelSqResizeMemory, newSize) == 8, "ResizeMemory newSize at 8");
HELSIM_LAYOUT(sizeof(struct HelSqForkMemory) == 8, "HelSqForkMemory is 8 bytes");
HELSIM_LAYOUT(sizeof(struct HelSqWritebackFence) == 24, "HelSqWritebackFence is 24 bytes");
HELSIM_LAYOUT(offsetof(struct HelSqWritebackFence, offset) == 8, "WritebackFence offset at 8");
HELSIM_LAYOUT(offsetof(struct HelSqWritebackFence, size) == 16, "WritebackFence size at 16");
HELSIM_LAYOUT(sizeof(struct HelSqInvalidateMemory) == 24, "HelSqInvalidateMemory is 24 bytes");
HELSIM_LAYOUT(offsetof(struct HelSqInvalidateMemory, offset) == 8, "InvalidateMemory offset at 8");
HELSIM_LAYOUT(offsetof(struct HelSqInvalidateMemory, size) == 16, "InvalidateMemory size at 16");
HELSIM_LAYOUT(sizeof(struct HelSqPopulateSpace) == 24, "HelSqPopulateSpace is 24 bytes");
HELSIM_LAYOUT(offsetof(struct HelSqPopulateSpace, address) == 8, "PopulateSpace address at 8");
HELSIM_LAYOUT(offsetof(struct HelSqPopulateSpace, length) == 16, "PopulateSpace length at 16");
HELSIM_LAYOUT(sizeof(struct HelAllocRestrictions) == 4, "HelAllocRestrictions is 4 bytes");
HELSIM_LAYOUT(offsetof(struct HelChunk, buffer) == 8, "chunk payload starts at 8");
HELSIM_LAYOUT(offsetof(struct HelQueueParameters, numSqChunks) == 16, "numSqChunks at 16");
#undef HELSIM_LAYOUT

#include <helsim/hel-stubs.h>

/* ---------------------------------------------------------------- wrappers */

HEL_INLINE HelError helLog(enum HelLogSeverity severity, const char *string, size_t length) {
	return helSyscall3(kHelCallLog, (HelWord)severity, (HelWord)string, (HelWord)length);
}

HEL_INLINE void helPanic(const char *string, size_t length) {
	helSyscall2(kHelCallPanic, (HelWord)string, (HelWord)length);
	__builtin_unreachable();
}

HEL_INLINE HelError helNop(void) { return helSyscall0(kHelCallNop); }

HEL_INLINE HelError helSubmitAsyncNop(HelHandle queue, uintptr_t context) {
	return helSyscall2(kHelCallSubmitAsyncNop, (HelWord)queue, (HelWord)context);
}

HEL_INLINE HelError helCreateUniverse(HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallCreateUniverse, &out);
	*handle = (HelHandle)out;
	return error;
}

HEL_INLINE HelError helTransferDescriptor(HelHandle handle, HelHandle universeHandle,
		enum HelTransferDescriptorFlags flags, uint32_t exposedRights, uint32_t requiredRights,
		HelHandle *outHandle) {
	HelWord out;
	HelError error =
			helSyscall5_1(kHelCallTransferDescriptor, (HelWord)handle, (HelWord)universeHandle,
					(HelWord)flags, (HelWord)exposedRights, (HelWord)requiredRights, &out);
	*outHandle = (HelHandle)out;
	return error;
}

HEL_INLINE HelError helDescriptorInfo(HelHandle handle, struct HelDescriptorInfo *info) {
	return helSyscall2(kHelCallDescriptorInfo, (HelWord)handle, (HelWord)info);
}

HEL_INLINE HelError helGetCredentials(HelHandle handle, uint32_t flags, char *credentials) {
	return helSyscall3(kHelCallGetCredentials, (HelWord)handle, (HelWord)flags,
			(HelWord)credentials);
}

HEL_INLINE HelError helCloseDescriptor(HelHandle universeHandle, HelHandle handle) {
	return helSyscall2(kHelCallCloseDescriptor, (HelWord)universeHandle, (HelWord)handle);
}

HEL_INLINE HelError helCreateQueue(const struct HelQueueParameters *params, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall1_1(kHelCallCreateQueue, (HelWord)params, &out);
	*handle = (HelHandle)out;
	return error;
}

HEL_INLINE HelError helDriveQueue(HelHandle handle, uint32_t flags, uint32_t notifyMask) {
	return helSyscall3(kHelCallDriveQueue, (HelWord)handle, (HelWord)flags, (HelWord)notifyMask);
}

HEL_INLINE HelError helAlertQueue(HelHandle handle) {
	return helSyscall1(kHelCallAlertQueue, (HelWord)handle);
}

HEL_INLINE HelError helMapMemory(HelHandle handle, HelHandle space, void *pointer, uintptr_t offset,
		size_t size, uint32_t flags, void **actualPointer) {
	HelWord out;
	HelError error = helSyscall6_1(kHelCallMapMemory, (HelWord)handle, (HelWord)space,
			(HelWord)pointer, (HelWord)offset, (HelWord)size, (HelWord)flags, &out);
	*actualPointer = (void *)out;
	return error;
}

HEL_INLINE HelError helUnmapMemory(HelHandle space, void *pointer, size_t size) {
	return helSyscall3(kHelCallUnmapMemory, (HelWord)space, (HelWord)pointer, (HelWord)size);
}

HEL_INLINE HelError helCreateSpace(HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallCreateSpace, &out);
	*handle = (HelHandle)out;
	return error;
}

/* restrictions may be NULL (no restriction: addressBits = 64). */
HEL_INLINE HelError helAllocateMemory(size_t size, uint32_t flags,
		const struct HelAllocRestrictions *restrictions, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall3_1(kHelCallAllocateMemory, (HelWord)size, (HelWord)flags,
			(HelWord)restrictions, &out);
	*handle = (HelHandle)out;
	return error;
}

HEL_INLINE HelError helCreateManagedMemory(size_t size, uint32_t flags, HelHandle *backingHandle,
		HelHandle *frontalHandle) {
	HelWord backing, frontal;
	HelError error = helSyscall2_2(kHelCallCreateManagedMemory, (HelWord)size, (HelWord)flags,
			&backing, &frontal);
	*backingHandle = (HelHandle)backing;
	*frontalHandle = (HelHandle)frontal;
	return error;
}

/* memory may be kHelZeroMemory. */
HEL_INLINE HelError helCopyOnWrite(HelHandle memory, uintptr_t offset, size_t size,
		HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall3_1(kHelCallCopyOnWrite, (HelWord)memory, (HelWord)offset,
			(HelWord)size, &out);
	*handle = (HelHandle)out;
	return error;
}

HEL_INLINE HelError helCreateSliceView(HelHandle memory, uintptr_t offset, size_t size,
		uint32_t flags, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall4_1(kHelCallCreateSliceView, (HelWord)memory, (HelWord)offset,
			(HelWord)size, (HelWord)flags, &out);
	*handle = (HelHandle)out;
	return error;
}

HEL_INLINE HelError helCreateIndirectMemory(size_t numSlots, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall1_1(kHelCallCreateIndirectMemory, (HelWord)numSlots, &out);
	*handle = (HelHandle)out;
	return error;
}

HEL_INLINE HelError helAlterMemoryIndirection(HelHandle indirectHandle, size_t slotIndex,
		HelHandle memoryHandle, uintptr_t offset, size_t size) {
	return helSyscall5(kHelCallAlterMemoryIndirection, (HelWord)indirectHandle, (HelWord)slotIndex,
			(HelWord)memoryHandle, (HelWord)offset, (HelWord)size);
}

/* space: an address space, a DMA space, or kHelNullHandle for the caller's own space. */
HEL_INLINE HelError helPointerPhysical(HelHandle space, const void *pointer, uintptr_t *physical) {
	HelWord out;
	HelError error = helSyscall2_1(kHelCallPointerPhysical, (HelWord)space, (HelWord)pointer, &out);
	*physical = (uintptr_t)out;
	return error;
}

HEL_INLINE HelError helMemoryInfo(HelHandle handle, size_t *size) {
	HelWord out;
	HelError error = helSyscall1_1(kHelCallMemoryInfo, (HelWord)handle, &out);
	*size = (size_t)out;
	return error;
}

/* type: kHelManageInitialize or kHelManageWriteback. */
HEL_INLINE HelError helUpdateMemory(HelHandle handle, int type, uintptr_t offset, size_t length) {
	return helSyscall4(kHelCallUpdateMemory, (HelWord)handle, (HelWord)type, (HelWord)offset,
			(HelWord)length);
}

HEL_INLINE HelError helLoadahead(HelHandle handle, uintptr_t offset, size_t length) {
	return helSyscall3(kHelCallLoadahead, (HelWord)handle, (HelWord)offset, (HelWord)length);
}

HEL_INLINE HelError helCreateThread(HelHandle universe, HelHandle addressSpace, HelAbi abi,
		void *ip, void *sp, uint32_t flags, HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall6_1(kHelCallCreateThread, (HelWord)universe, (HelWord)addressSpace,
			(HelWord)abi, (HelWord)ip, (HelWord)sp, (HelWord)flags, &out);
	*handle = (HelHandle)out;
	return error;
}

HEL_INLINE HelError helYield(void) { return helSyscall0(kHelCallYield); }

HEL_INLINE HelError helSetPriority(HelHandle handle, int priority) {
	return helSyscall2(kHelCallSetPriority, (HelWord)handle, (HelWord)priority);
}

HEL_INLINE HelError helResume(HelHandle handle) {
	return helSyscall1(kHelCallResume, (HelWord)handle);
}

HEL_INLINE HelError helGetCurrentCpu(int *cpu) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallGetCurrentCpu, &out);
	*cpu = (int)out;
	return error;
}

HEL_INLINE HelError helGetClock(uint64_t *counter) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallGetClock, &out);
	*counter = (uint64_t)out;
	return error;
}

HEL_INLINE HelError helGetAffinity(HelHandle handle, uint8_t *mask, size_t size,
		size_t *actualSize) {
	HelWord out;
	HelError error =
			helSyscall3_1(kHelCallGetAffinity, (HelWord)handle, (HelWord)mask, (HelWord)size, &out);
	*actualSize = (size_t)out;
	return error;
}

HEL_INLINE HelError helSetAffinity(HelHandle handle, const uint8_t *mask, size_t size) {
	return helSyscall3(kHelCallSetAffinity, (HelWord)handle, (HelWord)mask, (HelWord)size);
}

HEL_INLINE HelError helFutexWait(int *pointer, int expected, int64_t deadline) {
	return helSyscall3(kHelCallFutexWait, (HelWord)pointer, (HelWord)expected, (HelWord)deadline);
}

HEL_INLINE HelError helFutexWake(int *pointer, unsigned int count) {
	return helSyscall2(kHelCallFutexWake, (HelWord)pointer, (HelWord)count);
}

HEL_INLINE HelError helCreateStream(HelHandle *lane1, HelHandle *lane2,
		uint32_t attachCredentials) {
	HelWord out1, out2;
	HelError error = helSyscall1_2(kHelCallCreateStream, (HelWord)attachCredentials, &out1, &out2);
	*lane1 = (HelHandle)out1;
	*lane2 = (HelHandle)out2;
	return error;
}

HEL_INLINE HelError helShutdownLane(HelHandle handle) {
	return helSyscall1(kHelCallShutdownLane, (HelWord)handle);
}

/* The 2022-era submission path (Managarm removed it in 2026): the completion goes to `queue`
 * with `context`. helsim keeps it as a second path into the same stream code. */
HEL_INLINE HelError helSubmitAsync(HelHandle handle, const struct HelAction *actions, size_t count,
		HelHandle queue, uintptr_t context, uint32_t flags) {
	return helSyscall6(kHelCallSubmitAsync, (HelWord)handle, (HelWord)actions, (HelWord)count,
			(HelWord)queue, (HelWord)context, (HelWord)flags);
}

/* The 2022-era memory submissions: the same operations as SQ opcodes 5, 6, 7, 8, 9 and 10, with
 * the completion going to `queue` and submission errors returned at once. */
HEL_INLINE HelError helSubmitProtectMemory(HelHandle space, void *pointer, size_t size,
		uint32_t flags, HelHandle queue, uintptr_t context) {
	return helSyscall6(kHelCallSubmitProtectMemory, (HelWord)space, (HelWord)pointer, (HelWord)size,
			(HelWord)flags, (HelWord)queue, (HelWord)context);
}

HEL_INLINE HelError helSubmitSynchronizeSpace(HelHandle space, void *pointer, size_t size,
		HelHandle queue, uintptr_t context) {
	return helSyscall5(kHelCallSubmitSynchronizeSpace, (HelWord)space, (HelWord)pointer,
			(HelWord)size, (HelWord)queue, (HelWord)context);
}

HEL_INLINE HelError helSubmitReadMemory(HelHandle handle, uintptr_t address, size_t length,
		void *buffer, HelHandle queue, uintptr_t context) {
	return helSyscall6(kHelCallSubmitReadMemory, (HelWord)handle, (HelWord)address, (HelWord)length,
			(HelWord)buffer, (HelWord)queue, (HelWord)context);
}

HEL_INLINE HelError helSubmitWriteMemory(HelHandle handle, uintptr_t address, size_t length,
		const void *buffer, HelHandle queue, uintptr_t context) {
	return helSyscall6(kHelCallSubmitWriteMemory, (HelWord)handle, (HelWord)address,
			(HelWord)length, (HelWord)buffer, (HelWord)queue, (HelWord)context);
}

HEL_INLINE HelError helSubmitManageMemory(HelHandle handle, HelHandle queue, uintptr_t context) {
	return helSyscall3(kHelCallSubmitManageMemory, (HelWord)handle, (HelWord)queue,
			(HelWord)context);
}

HEL_INLINE HelError helSubmitLockMemoryView(HelHandle handle, uintptr_t offset, size_t size,
		HelHandle queue, uintptr_t context) {
	return helSyscall5(kHelCallSubmitLockMemoryView, (HelWord)handle, (HelWord)offset,
			(HelWord)size, (HelWord)queue, (HelWord)context);
}

HEL_INLINE HelError helCreateToken(HelHandle *handle) {
	HelWord out;
	HelError error = helSyscall0_1(kHelCallCreateToken, &out);
	*handle = (HelHandle)out;
	return error;
}

#endif /* HELSIM_HEL_H */
