/* helsim — Managarm's hel API, hosted.
 *
 * The names, numbers, types and struct layouts of Managarm's hel/include/hel.h, current API
 * (submission + completion rings driven by helDriveQueue; rights on every descriptor). The call
 * wrappers are in <helsim/hel-syscalls.h>, included at the end, as Managarm's hel-syscalls.h
 * builds them over the helSyscallN_M stubs of <helsim/hel-stubs.h>, which call the one exported
 * entry point helsim_syscall(). Code written for Managarm includes <hel.h> and
 * <hel-syscalls.h>; the helsim::helsim CMake target puts forwarding headers of those names on
 * the include path (include/helsim/compat). docs/reference/ has one page per call;
 * docs/fidelity.md lists what helsim adds or leaves out.
 */
#ifndef HELSIM_HEL_H
#define HELSIM_HEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
#define HEL_C_LINKAGE extern "C"
#else
#define HEL_C_LINKAGE
#endif

/* What Managarm's hel-types.h and hel-stubs-x86_64.h define. */
typedef int HelError;
typedef int HelAbi;
typedef int64_t HelHandle;
typedef int64_t HelNanotime;
typedef uint64_t HelWord;
typedef uint32_t HelRights;

/* ---------------------------------------------------------------- syscall numbers */
enum {
	/* The largest syscall number plus 1. */
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

	kHelCallAllocateMemory = 51,
	kHelCallResizeMemory = 83, /* reserved: SQ kHelSubmitResizeMemory */
	kHelCallCreateManagedMemory = 64,
	kHelCallCopyOnWrite = 39,
	kHelCallAccessPhysical = 30,
	kHelCallCreateSliceView = 88,
	kHelCallForkMemory = 40, /* reserved: SQ kHelSubmitForkMemory */
	kHelCallCreateSpace = 27,
	kHelCallCreateDmaSpace = 108,
	kHelCallConfigureIrq = 109,
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
	kHelCallCreateSwapSpace = 110,
	kHelCallAllocateSwappableMemory = 111,
	kHelCallSetSwapBudget = 112,

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
	kHelCallAcknowledgeIrq = 81,
	kHelCallSubmitAwaitEvent = 82,
	kHelCallAutomateIrq = 94,

	kHelCallAccessIo = 11,
	kHelCallEnableIo = 12,

	kHelCallBindKernlet = 93,

	kHelCallGetAffinity = 103,
	kHelCallSetAffinity = 100,

	kHelCallCreateToken = 104,

	/* Numbers from here up are supercalls: kHelCallSuper + n traps to the thread's observer. */
	kHelCallSuper = (int)0x80000000u
};

/* helsim's own calls, in a range of their own above Managarm's (kHelNumCalls) and below the
 * extensions' [256, 512): accessors for simulated device registers, which a host process cannot
 * reach with in/out instructions or trapped loads and stores (docs/reference/helsim-io.md). */
enum {
	kHelsimCallIoRead = 192,
	kHelsimCallIoWrite = 193,
	kHelsimCallMmioRead = 194,
	kHelsimCallMmioWrite = 195,
	/* The largest helsim call number plus 1. */
	kHelsimNumCalls = 196
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

/* ---------------------------------------------------------------- rights
 * Each descriptor carries a set of these; every operation names the ones it needs
 * (docs/reference/ says which, per call). */
static const HelRights kHelRightNull = 0;
static const HelRights kHelRightGrant = UINT32_C(1) << 0;
static const HelRights kHelRightTake = UINT32_C(1) << 1;
static const HelRights kHelRightRead = UINT32_C(1) << 2;
static const HelRights kHelRightWrite = UINT32_C(1) << 3;
static const HelRights kHelRightExecute = UINT32_C(1) << 4;
static const HelRights kHelRightInvoke = UINT32_C(1) << 5;
static const HelRights kHelRightAssign = UINT32_C(1) << 6;
static const HelRights kHelRightDerive = UINT32_C(1) << 7;
static const HelRights kHelRightProvision = UINT32_C(1) << 8;
static const HelRights kHelRightPin = UINT32_C(1) << 9;
static const HelRights kHelRightFence = UINT32_C(1) << 10;
static const HelRights kHelRightWait = UINT32_C(1) << 11;
static const HelRights kHelRightSignal = UINT32_C(1) << 12;
static const HelRights kHelRightManage = UINT32_C(1) << 13;
static const HelRights kHelRightsMax = ~UINT32_C(0);

/* ---------------------------------------------------------------- handles and descriptors */
enum { kHelNullHandle = 0, kHelThisUniverse = -1, kHelThisThread = -2, kHelZeroMemory = -3 };

static const uint32_t kHelTransferDescriptorOut = UINT32_C(1) << 0;
static const uint32_t kHelTransferDescriptorIn = UINT32_C(1) << 1;

struct HelDescriptorInfo {
	int type;
};

/* helsim's names for the `type` that helDescriptorInfo reports (thor's DescriptorType order;
 * thor's own helDescriptorInfo answers kHelErrOther instead). */
enum {
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

/* ---------------------------------------------------------------- misc constants */
enum { kHelWaitInfinite = -1 };
enum { kHelAbiSystemV = 1 };

/* RFC 5424 priorities. */
enum HelLogSeverity {
	kHelLogSeverityEmergency,
	kHelLogSeverityAlert,
	kHelLogSeverityCritical,
	kHelLogSeverityError,
	kHelLogSeverityWarning,
	kHelLogSeverityNotice,
	kHelLogSeverityInfo,
	kHelLogSeverityDebug
};

/* ---------------------------------------------------------------- streams (actions) */
enum {
	kHelActionNone = 0,
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
		uintptr_t word0;
		void *buffer;
	};
	union {
		uintptr_t word1;
		size_t length;
		uint32_t rights; /* push / pull descriptor */
	};
	union {
		uintptr_t word2;
		HelHandle handle; /* imbue credentials, push descriptor */
	};
};

/* ---------------------------------------------------------------- memory constants */
enum HelAllocFlags { kHelAllocContinuous = 4, kHelAllocOnDemand = 1 };

struct HelAllocRestrictions {
	int addressBits;
};

enum HelManagedFlags { kHelManagedReadahead = 1 };
enum HelManageRequests { kHelManageInitialize = 1, kHelManageWriteback = 2 };

enum HelMapFlags {
	kHelMapProtRead = UINT32_C(1) << 8,
	kHelMapProtWrite = UINT32_C(1) << 9,
	kHelMapProtExecute = UINT32_C(1) << 10,
	kHelMapDontRequireBacking = UINT32_C(1) << 7,
	kHelMapFixed = UINT32_C(1) << 11,
	kHelMapFixedNoReplace = UINT32_C(1) << 12,
	kHelMapPreferBottom = UINT32_C(1) << 13
};

enum HelSliceFlags { kHelSliceCacheWriteCombine = 1 };

enum HelCachingMode {
	kHelCachingDefault = 0,
	kHelCachingUncached = 1,
	kHelCachingWriteCombine = 2,
	kHelCachingWriteThrough = 3,
	kHelCachingWriteBack = 4,
	kHelCachingMmio = 5,
	kHelCachingMmioNonPosted = 6
};

/* ---------------------------------------------------------------- threads */
enum HelThreadFlags { kHelThreadStopped = 1 };

enum HelObservation {
	kHelObserveNull = 0,
	kHelObserveInterrupt = 4,
	kHelObservePanic = 3,
	kHelObserveBreakpoint = 1,
	kHelObservePageFault = 2,
	kHelObserveGeneralFault = 5,
	kHelObserveIllegalInstruction = 6,
	kHelObserveDivByZero = 7,
	kHelObserveSuperCall = 0x80000000 /* + n: supercall n */
};

enum HelRegisterSets {
	kHelRegsProgram = 1,
	kHelRegsGeneral = 2,
	kHelRegsThread = 3,
	kHelRegsDebug = 4,
	kHelRegsVirtualization = 5,
	kHelRegsSimd = 6,
	kHelRegsSignal = 7,
	kHelRegsPageFault = 8
};

enum HelPageFaultFlags { kHelPageFaultMapError = 1, kHelPageFaultAccessError = 2 };

struct HelRegisterInfo {
	int setSize; /* bytes */
};

/* Simulated threads have x86-64 register images on every host. */
enum HelRegisterIndex {
	kHelRegRax = 0,
	kHelRegRbx = 1,
	kHelRegRcx = 2,
	kHelRegRdx = 3,
	kHelRegRdi = 4,
	kHelRegRsi = 5,
	kHelRegR8 = 6,
	kHelRegR9 = 7,
	kHelRegR10 = 8,
	kHelRegR11 = 9,
	kHelRegR12 = 10,
	kHelRegR13 = 11,
	kHelRegR14 = 12,
	kHelRegR15 = 13,
	kHelRegRbp = 14,

	kHelNumGprs = 15,

	kHelRegIp = 0,
	kHelRegSp = 1
};

/* Where a syscall's number, arguments and results sit in the General set. */
enum HelSyscallArgs {
	kHelRegNumber = kHelRegRdi,
	kHelRegError = kHelRegRdi,

	kHelRegArg0 = kHelRegRsi,
	kHelRegArg1 = kHelRegRdx,
	kHelRegArg2 = kHelRegRax,
	kHelRegArg3 = kHelRegR8,
	kHelRegArg4 = kHelRegR9,
	kHelRegArg5 = kHelRegR10,
	kHelRegArg6 = kHelRegR12,
	kHelRegArg7 = kHelRegR13,
	kHelRegArg8 = kHelRegR14,

	kHelRegOut0 = kHelRegRsi,
	kHelRegOut1 = kHelRegRdx,
	kHelRegOut2 = kHelRegRax
};

struct HelThreadStats {
	uint64_t userTime;
};

/* ---------------------------------------------------------------- virtualization */
struct HelX86SegmentRegister {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl;
};

struct HelX86DescriptorTable {
	uint64_t base;
	uint16_t limit;
};

struct HelX86VirtualizationRegs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rsp, rip, rflags;
	struct HelX86SegmentRegister cs, ds, es, fs, gs, ss;
	struct HelX86SegmentRegister tr, ldt;
	struct HelX86DescriptorTable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	uint64_t apic_base;
};

typedef struct HelX86VirtualizationRegs HelVirtualizationRegs;

enum {
	kHelVmexitHlt = 0,
	kHelVmexitTranslationFault = 1,
	kHelVmexitError = -1,
	kHelVmexitUnknownPlatformSpecificExitCode = -2
};

struct HelVmexitReason {
	uint32_t exitReason;
	uint32_t code;
	size_t address;
	size_t flags;
};

/* ---------------------------------------------------------------- IRQs and kernlets */
enum HelAckFlags { kHelAckAcknowledge = 2, kHelAckNack = 3, kHelAckKick = 1, kHelAckClear = 0x100 };

enum { kHelAccessIrqByGsi = 1, kHelAccessIrqByPhandle = 2 };
enum { kHelIrqTriggerNull = 0, kHelIrqTriggerEdge = 1, kHelIrqTriggerLevel = 2 };
enum { kHelIrqPolarityNull = 0, kHelIrqPolarityHigh = 1, kHelIrqPolarityLow = 2 };

union HelKernletData {
	HelHandle handle;
};

/* ---------------------------------------------------------------- queues */
struct HelQueueParameters {
	uint32_t flags;
	unsigned int numChunks; /* CQ chunks */
	size_t chunkSize;
	unsigned int numSqChunks;
};

/* userNotify bits: the kernel sets them, user space clears them. */
static const int kHelUserNotifyCqProgress = (1 << 0);
static const int kHelUserNotifySupplySqChunks = (1 << 1);
static const int kHelUserNotifyError = (1 << 14); /* a contract violation */
static const int kHelUserNotifyAlert = (1 << 15);

/* kernelNotify bits: user space sets them, the kernel clears them. */
static const int kHelKernelNotifySqProgress = (1 << 0);
static const int kHelKernelNotifySupplyCqChunks = (1 << 1);

/* helDriveQueue: wait until userNotify has a bit outside notifyMask. */
static const uint32_t kHelDriveWait = (1 << 0);

struct HelQueue {
	int userNotify;
	int kernelNotify;
	int cqFirst;
	int sqFirst;
};

/* Chunk indices in next/cqFirst/sqFirst carry this tag when present. */
static const int kHelNextPresent = (1 << 24);

static const int kHelProgressMask = 0xFFFFFF;
/* Set by the producer once it retires the chunk. */
static const int kHelProgressDone = (1 << 25);
/* Set by the producer once no further element fits into the chunk. */
static const int kHelProgressFull = (1 << 26);

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

/* SQ opcodes. Managarm declares them static const uint32_t; helsim's are enumerators so that C
 * code can switch on them. */
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

struct HelSqCancel {
	uint64_t cancellationTag;
};

/* Followed by `count` HelActions. */
struct HelSqExchangeMsgs {
	HelHandle lane;
	size_t count;
	uint32_t flags;
};

struct HelSqAwaitClock {
	uint64_t counter; /* deadline, ns since boot */
	uint64_t cancellationTag;
};

struct HelSqAwaitEvent {
	HelHandle handle;
	uint64_t sequence;
	uint64_t cancellationTag;
};

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

struct HelSqObserve {
	HelHandle handle; /* a thread */
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

/* ---------------------------------------------------------------- result structs
 * Every piece of a CQ element is padded to 8 bytes. */
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

/* ---------------------------------------------------------------- the calls */
#include <helsim/hel-syscalls.h>

/* ---------------------------------------------------------------- checking helpers
 * As Managarm's hel.h gives them to user code: HEL_CHECK logs the failed expression, where it
 * is and what the error means, then panics the thread; HEL_SOFT_CHECK logs and goes on. */
#ifdef __cplusplus
#define HELSIM_HELPER inline __attribute__((always_inline))
#else
#define HELSIM_HELPER static inline __attribute__((always_inline))
#endif

/* Managarm answers NULL for the codes it has no text for; helsim has a text for each. */
HELSIM_HELPER const char *_helErrorString(HelError code) {
	switch (code) {
	case kHelErrNone: return "Success";
	case kHelErrBufferTooSmall: return "Buffer too small";
	case kHelErrBadDescriptor: return "Illegal descriptor for this operation";
	case kHelErrTimeout: return "Timeout";
	case kHelErrNoDescriptor: return "No such descriptor";
	case kHelErrIllegalSyscall: return "Illegal syscall";
	case kHelErrIllegalObject: return "Illegal object for this operation";
	case kHelErrIllegalArgs: return "Illegal arguments";
	case kHelErrLaneShutdown: return "Lane shutdown";
	case kHelErrEndOfLane: return "End of lane";
	case kHelErrFault: return "Segfault";
	case kHelErrThreadTerminated: return "Thread terminated already";
	case kHelErrCancelled: return "Cancelled";
	case kHelErrTransmissionMismatch: return "Transmission mismatch";
	case kHelErrQueueTooSmall: return "Queue too small";
	case kHelErrIllegalState: return "Illegal state";
	case kHelErrNoHardwareSupport: return "Missing hardware support for this feature";
	case kHelErrNoMemory: return "Out of memory";
	case kHelErrUnsupportedOperation: return "Unsupported operation";
	case kHelErrOutOfBounds: return "Out of bounds";
	case kHelErrDismissed: return "IPC item dismissed by remote";
	case kHelErrRemoteFault: return "Segfault on the remote side";
	case kHelErrAlreadyExists: return "Already exists";
	case kHelErrBadPermissions: return "Mapping lacks the permission";
	case kHelErrOther: return "Other error";
	case kHelErrFutexRace: return "Futex value changed";
	case kHelErrBadRights: return "Missing rights for this operation";
	default: return 0;
	}
}

HELSIM_HELPER void _helCheckFailed(HelError err_code, const char *string, int fatal) {
	const char *err_string = _helErrorString(err_code);
	if (!err_string)
		err_string = "(Unexpected error code)";
	helLog(kHelLogSeverityError, string, strlen(string));
	helLog(kHelLogSeverityError, err_string, strlen(err_string));
	helLog(kHelLogSeverityError, "\n", 1);
	if (fatal)
		helPanic(0, 0);
}

#undef HELSIM_HELPER

#define HEL_STRINGIFY_AUX(x) #x
#define HEL_STRINGIFY(x) HEL_STRINGIFY_AUX(x)

#define HEL_CHECK(expr)                                                                            \
	do {                                                                                           \
		HelError __error = expr;                                                                   \
		if (__error != kHelErrNone)                                                                \
			_helCheckFailed(__error,                                                               \
					"HEL_CHECK failed: " #expr "\n"                                                \
					"    In file " __FILE__ " on line " HEL_STRINGIFY(__LINE__) "\n",              \
					1);                                                                            \
	} while (0)

#define HEL_SOFT_CHECK(expr)                                                                       \
	do {                                                                                           \
		HelError __error = expr;                                                                   \
		if (__error != kHelErrNone)                                                                \
			_helCheckFailed(__error,                                                               \
					"HEL_SOFT_CHECK failed: " #expr "\n"                                           \
					"    In file " __FILE__ " on line " HEL_STRINGIFY(__LINE__) "\n",              \
					0);                                                                            \
	} while (0)

#endif /* HELSIM_HEL_H */
