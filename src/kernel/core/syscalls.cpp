// Every syscall of helsim is a row in kSyscalls below. Entry points decode their argument
// words, resolve handles and call into the object that implements the semantics.
#include "kernel/core/syscalls.hpp"

#include <array>
#include <cstring>
#include <string>

#include <helsim/extension.hpp>

#include <fmt/format.h>

#include "kernel/threads/clock.hpp"
#include "kernel/devices/device_registry.hpp"
#include "kernel/devices/dma_space.hpp"
#include "kernel/devices/event_syscalls.hpp"
#include "kernel/threads/futex.hpp"
#include "kernel/devices/hardware_memory.hpp"
#include "kernel/devices/io_space.hpp"
#include "kernel/devices/irq_syscalls.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/memory/memory_syscalls.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/memory/space.hpp"
#include "kernel/ipc/stream.hpp"
#include "kernel/memory/swap_space.hpp"
#include "kernel/memory/swappable_memory.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/threads/thread.hpp"
#include "kernel/threads/thread_syscalls.hpp"
#include "kernel/core/token.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/memory/usercopy.hpp"

namespace helsim::kernel {
namespace {

// ---------------------------------------------------------------- logging and debugging

constexpr std::size_t kMaxLogLength = std::size_t{64} << 10;

HelError sys_log(Thread &self, const HelWord *args, HelWord *) {
	auto severity = arg<int>(args, 0);
	auto string = arg<const char *>(args, 1);
	auto length = arg<std::size_t>(args, 2);
	// thor logs a severity it does not know as info.
	if (severity < kHelLogSeverityEmergency || severity > kHelLogSeverityDebug)
		severity = kHelLogSeverityInfo;
	if (!user_range_ok(string, length))
		return kHelErrFault;
	// A log line is bounded; the rest of an absurdly long message is dropped.
	std::string message(std::min(length, kMaxLogLength), '\0');
	if (HelError e = copy_from_user(self, message.data(), string, message.size()); e != kHelErrNone)
		return e;
	self.kernel().log({severity, self.name(), message});
	return kHelErrNone;
}

// helPanic must not return, but the syscall entry turns a std::bad_alloc into a return value:
// without memory for the message, a thread panics with this one (copying it allocates nothing).
const PanicError kPanicWithoutMemory{"<no memory for the panic message>"};

HelError sys_panic(Thread &self, const HelWord *args, HelWord *) {
	auto string = arg<const char *>(args, 0);
	auto length = arg<std::size_t>(args, 1);
	try {
		std::string message = "<unreadable panic message>";
		if (length <= kMaxLogLength) {
			std::string text(length, '\0');
			if (copy_from_user(self, text.data(), string, length) == kHelErrNone)
				message = std::move(text);
		}
		self.kernel().log({kHelLogSeverityCritical, self.name(), "panic: " + message});
		// A supervised thread stops with kHelObservePanic first; helPanic does not return.
		self.stop_for_panic(args);
		// A fiber thread ends here (its entry catches this); an attached thread's caller gets it.
		throw PanicError{message};
	} catch (const std::bad_alloc &) {
		throw kPanicWithoutMemory;
	}
}

HelError sys_nop(Thread &, const HelWord *, HelWord *) { return kHelErrNone; }

HelError sys_submit_async_nop(Thread &self, const HelWord *args, HelWord *) {
	auto queue = self.universe().resolve<IpcQueue>(arg<HelHandle>(args, 0), kHelRightInvoke);
	if (!queue)
		return queue.error;
	if (!queue.object->fits(sizeof(HelSimpleResult)))
		return kHelErrQueueTooSmall;
	if (self.tracer()) [[unlikely]]
		self.set_trace_key(queue.object.get(), arg<std::uintptr_t>(args, 1));
	self.note_submitted();
	queue.object->post_simple(kHelErrNone, arg<std::uintptr_t>(args, 1));
	return kHelErrNone;
}

// ---------------------------------------------------------------- descriptors and universes

HelError sys_create_universe(Thread &self, const HelWord *, HelWord *outs) {
	return attach_new(self, make_object<Universe>(self.kernel()), kUniverseDefaultRights, outs);
}

HelError sys_transfer_descriptor(Thread &self, const HelWord *args, HelWord *outs) {
	auto handle = arg<HelHandle>(args, 0);
	auto flags = arg<std::uint32_t>(args, 2);
	auto exposed = arg<std::uint32_t>(args, 3);
	auto required = arg<std::uint32_t>(args, 4);
	if (flags != kHelTransferDescriptorOut && flags != kHelTransferDescriptorIn)
		return kHelErrIllegalArgs;
	bool out = flags == kHelTransferDescriptorOut;
	auto universe =
			resolve_universe(self, arg<HelHandle>(args, 1), out ? kHelRightGrant : kHelRightTake);
	if (!universe)
		return universe.error;
	Universe &source = out ? self.universe() : *universe.object;
	Universe &target = out ? *universe.object : self.universe();
	Resolved descriptor;
	if (HelError e = source.lookup(handle, descriptor); e != kHelErrNone)
		return e;
	std::uint32_t rights = descriptor.rights & exposed;
	if ((rights & required) != required)
		return kHelErrBadRights;
	const char *kind = descriptor.object->kind_name();
	HelHandle copied;
	if (HelError e = target.attach(std::move(descriptor.object), rights, copied); e != kHelErrNone)
		return e;
	outs[0] = static_cast<HelWord>(copied);
	if (auto *tracer = self.tracer()) [[unlikely]]
		tracer->transfer_descriptor(kind, handle, source.id(), copied, target.id());
	return kHelErrNone;
}

HelError sys_descriptor_info(Thread &self, const HelWord *args, HelWord *) {
	Resolved descriptor;
	if (HelError e = self.universe().lookup(arg<HelHandle>(args, 0), descriptor); e != kHelErrNone)
		return e;
	// Managarm's struct holds the type only; helsim::ext::describe_descriptor adds the rights.
	HelDescriptorInfo info{descriptor.object->descriptor_type()};
	if (HelError e = copy_to_user(self, arg<HelDescriptorInfo *>(args, 1), &info, sizeof(info));
			e != kHelErrNone)
		return e;
	return kHelErrNone;
}

HelError sys_get_credentials(Thread &self, const HelWord *args, HelWord *) {
	if (arg<std::uint32_t>(args, 1) != 0)
		return kHelErrIllegalArgs;
	auto handle = arg<HelHandle>(args, 0);
	std::array<char, 16> credentials;
	if (handle == kHelThisThread) {
		credentials = self.credentials();
	} else {
		Resolved r;
		if (HelError e = self.universe().lookup(handle, r); e != kHelErrNone)
			return e;
		if (r.object->kind() == ObjectKind::thread) {
			credentials = static_cast<Thread *>(r.object.get())->credentials();
		} else if (r.object->kind() == ObjectKind::lane) {
			Stream &stream = static_cast<Lane *>(r.object.get())->stream();
			// thor asserts here; helsim answers with an error (docs/fidelity.md).
			if (!stream.has_credentials())
				return kHelErrIllegalArgs;
			credentials = stream.credentials();
		} else {
			return kHelErrBadDescriptor;
		}
	}
	if (HelError e = copy_to_user(self, arg<char *>(args, 2), credentials.data(),
				credentials.size());
			e != kHelErrNone)
		return e;
	return kHelErrNone;
}

HelError sys_close_descriptor(Thread &self, const HelWord *args, HelWord *) {
	auto universe = resolve_universe(self, arg<HelHandle>(args, 0), kHelRightGrant);
	if (!universe)
		return universe.error;
	return universe.object->close(arg<HelHandle>(args, 1));
}

HelError sys_create_token(Thread &self, const HelWord *, HelWord *outs) {
	return attach_new(self, make_object<Token>(self.kernel()), kHelRightNull, outs);
}

// ---------------------------------------------------------------- queues

HelError submit_sq_operation(Thread &self, IpcQueue &queue, unsigned opcode, std::uintptr_t context,
		const std::byte *payload, std::size_t length);

HelError sys_create_queue(Thread &self, const HelWord *args, HelWord *outs) {
	HelQueueParameters params;
	if (HelError e = copy_from_user(self, &params, arg<const void *>(args, 0), sizeof(params));
			e != kHelErrNone)
		return e;
	Ref<IpcQueue> queue;
	if (HelError e = IpcQueue::create(self.kernel(), params, submit_sq_operation, queue);
			e != kHelErrNone)
		return e;
	return attach_new(self, std::move(queue), kQueueDefaultRights, outs);
}

HelError sys_drive_queue(Thread &self, const HelWord *args, HelWord *) {
	auto flags = arg<std::uint32_t>(args, 1);
	if (flags & ~std::uint32_t{kHelDriveWait})
		return kHelErrIllegalArgs;
	// Invoke and Wait, with or without kHelDriveWait, as thor asks.
	auto queue = self.universe().resolve<IpcQueue>(arg<HelHandle>(args, 0),
			kHelRightInvoke | kHelRightWait);
	if (!queue)
		return queue.error;
	queue.object->drive(self);
	if (flags & kHelDriveWait)
		return queue.object->wait_user_notify(self, arg<std::uint32_t>(args, 2),
				arg<HelHandle>(args, 0));
	return kHelErrNone;
}

HelError sys_alert_queue(Thread &self, const HelWord *args, HelWord *) {
	auto queue = self.universe().resolve<IpcQueue>(arg<HelHandle>(args, 0), kHelRightSignal);
	if (!queue)
		return queue.error;
	queue.object->alert();
	return kHelErrNone;
}

// ---------------------------------------------------------------- clock, randomness,
// virtualization

HelError sys_get_clock(Thread &self, const HelWord *, HelWord *outs) {
	outs[0] = self.kernel().host().now();
	return kHelErrNone;
}

// The simulated CPUs have no VMX or SVM: thor answers every virtualization call this way then,
// before it looks at any argument.
HelError sys_no_virtualization(Thread &, const HelWord *, HelWord *) {
	return kHelErrNoHardwareSupport;
}

// As thor: at most 128 bytes a call; the count comes back as an output word.
constexpr std::size_t kMaxRandomBytes = 128;

HelError sys_get_random_bytes(Thread &self, const HelWord *args, HelWord *outs) {
	auto *buffer = arg<void *>(args, 0);
	std::size_t size = std::min(arg<std::size_t>(args, 1), kMaxRandomBytes);
	unsigned char bytes[kMaxRandomBytes];
	self.kernel().host().random_bytes(bytes, size);
	if (copy_to_user(self, buffer, bytes, size) != kHelErrNone)
		return kHelErrFault;
	outs[0] = size;
	return kHelErrNone;
}

// As thor: the sizes first, then the handle; *actualSize is written through the caller's pointer.
// ---------------------------------------------------------------- futexes

HelError sys_futex_wait(Thread &self, const HelWord *args, HelWord *) {
	auto deadline = arg<std::int64_t>(args, 2);
	if (deadline < -1)
		return kHelErrIllegalArgs;
	return self.kernel().futexes().wait(self, arg<int *>(args, 0), arg<int>(args, 1),
			deadline == -1 ? sim::kNoDeadline : static_cast<std::uint64_t>(deadline));
}

HelError sys_futex_wake(Thread &self, const HelWord *args, HelWord *) {
	auto pointer = arg<const int *>(args, 0);
	return self.kernel().futexes().wake(self, pointer, arg<unsigned>(args, 1));
}

// ---------------------------------------------------------------- streams

HelError sys_create_stream(Thread &self, const HelWord *args, HelWord *outs) {
	Ref<Lane> lane0, lane1;
	Stream::create(self.kernel(), arg<std::uint32_t>(args, 0) != 0, lane0, lane1);
	HelHandle h0, h1;
	if (HelError e = self.universe().attach(std::move(lane0), kLaneDefaultRights, h0);
			e != kHelErrNone)
		return e;
	if (HelError e = self.universe().attach(std::move(lane1), kLaneDefaultRights, h1);
			e != kHelErrNone) {
		self.universe().close(h0);
		return e;
	}
	outs[0] = static_cast<HelWord>(h0);
	outs[1] = static_cast<HelWord>(h1);
	return kHelErrNone;
}

HelError sys_shutdown_lane(Thread &self, const HelWord *args, HelWord *) {
	auto lane = self.universe().resolve<Lane>(arg<HelHandle>(args, 0), kHelRightManage);
	if (!lane)
		return lane.error;
	lane.object->stream().shutdown(lane.object->side());
	return kHelErrNone;
}

// Bounds the kernel copy of an action list (Managarm bounds it by the chunk size).
constexpr std::size_t kMaxActions = 1024;

// The kernel's copy of an action list: on the stack for the common short lists, on the heap
// for long ones (fiber stacks may be as small as 16 KiB).
class ActionBuffer {
public:
	explicit ActionBuffer(std::size_t count) {
		if (count > kInline)
			heap_ = std::make_unique<HelAction[]>(count);
	}
	HelAction *data() { return heap_ ? heap_.get() : inline_; }

private:
	static constexpr std::size_t kInline = 16;
	HelAction inline_[kInline];
	std::unique_ptr<HelAction[]> heap_;
};

HelError exchange(Thread &self, HelHandle lane_handle, std::span<const HelAction> actions,
		IpcQueue &queue, std::uintptr_t context) {
	auto lane = self.universe().resolve<Lane>(lane_handle, kHelRightInvoke);
	if (!lane)
		return lane.error;
	return submit_exchange(self, *lane.object, actions, queue, context);
}

HelError sys_submit_async(Thread &self, const HelWord *args, HelWord *) {
	auto count = arg<std::size_t>(args, 2);
	if (arg<std::uint32_t>(args, 5) != 0 || count == 0)
		return kHelErrIllegalArgs;
	if (count > kMaxActions)
		return kHelErrQueueTooSmall;
	auto queue = self.universe().resolve<IpcQueue>(arg<HelHandle>(args, 3), kHelRightInvoke);
	if (!queue)
		return queue.error;
	ActionBuffer actions{count};
	if (HelError e = copy_from_user(self, actions.data(), arg<const void *>(args, 1),
				count * sizeof(HelAction));
			e != kHelErrNone)
		return e;
	if (self.tracer()) [[unlikely]]
		self.set_trace_key(queue.object.get(), arg<std::uintptr_t>(args, 4));
	HelError error = exchange(self, arg<HelHandle>(args, 0), {actions.data(), count}, *queue.object,
			arg<std::uintptr_t>(args, 4));
	if (self.tracer()) [[unlikely]]
		self.set_trace_key(nullptr, 0); // a refused submission starts no flow
	return error;
}

// ---------------------------------------------------------------- the table

struct SyscallRow {
	const char *name;
	SyscallFn fn;
	// For traces: the argument words by hel's parameter names, '*' marking a handle and '&' a
	// word that may be a host address (a pointer, a context), then " > " and the output words
	// (sim::TraceRecorder::syscall_begin).
	const char *params;
};

// Managarm's calls below kHelNumCalls, helsim's own in [kHelsimCallIoRead, kHelsimNumCalls);
// extensions live above, from kFirstExtensionSyscall (256).
static_assert(int{kHelNumCalls} <= int{kHelsimCallIoRead} &&
		std::uint32_t{kHelsimNumCalls} <= kFirstExtensionSyscall);

constexpr std::array<SyscallRow, kHelsimNumCalls> make_table() {
	std::array<SyscallRow, kHelsimNumCalls> t{};
	t[kHelCallLog] = {"helLog", sys_log, "severity &string length"};
	t[kHelCallPanic] = {"helPanic", sys_panic, "&string length"};
	t[kHelCallNop] = {"helNop", sys_nop, ""};
	t[kHelCallSubmitAsyncNop] = {"helSubmitAsyncNop", sys_submit_async_nop, "*queue &context"};
	t[kHelCallCreateUniverse] = {"helCreateUniverse", sys_create_universe, "> *handle"};
	t[kHelCallTransferDescriptor] = {"helTransferDescriptor", sys_transfer_descriptor,
			"*handle *universeHandle flags exposedRights requiredRights > *outHandle"};
	t[kHelCallDescriptorInfo] = {"helDescriptorInfo", sys_descriptor_info, "*handle &info"};
	t[kHelCallGetCredentials] = {"helGetCredentials", sys_get_credentials,
			"*handle flags &credentials"};
	t[kHelCallCloseDescriptor] = {"helCloseDescriptor", sys_close_descriptor,
			"*universeHandle *handle"};
	t[kHelCallCreateToken] = {"helCreateToken", sys_create_token, "> *handle"};
	t[kHelCallCreateQueue] = {"helCreateQueue", sys_create_queue, "&params > *handle"};
	t[kHelCallDriveQueue] = {"helDriveQueue", sys_drive_queue, "*handle flags notifyMask"};
	t[kHelCallAlertQueue] = {"helAlertQueue", sys_alert_queue, "*handle"};
	t[kHelCallCreateSpace] = {"helCreateSpace", sys_create_space, "> *handle"};
	t[kHelCallMapMemory] = {"helMapMemory", sys_map_memory,
			"*handle *space &pointer offset size flags > &actualPointer"};
	t[kHelCallUnmapMemory] = {"helUnmapMemory", sys_unmap_memory, "*space &pointer size"};
	t[kHelCallAllocateMemory] = {"helAllocateMemory", sys_allocate_memory,
			"size flags &restrictions > *handle"};
	t[kHelCallMemoryInfo] = {"helMemoryInfo", sys_memory_info, "*handle > size"};
	t[kHelCallPointerPhysical] = {"helPointerPhysical", sys_pointer_physical,
			"*space &pointer > physical"};
	t[kHelCallLoadahead] = {"helLoadahead", sys_loadahead, "*handle offset length"};
	t[kHelCallSubmitProtectMemory] = {"helSubmitProtectMemory", sys_legacy_protect_memory,
			"*space &pointer size flags *queue &context"};
	t[kHelCallSubmitSynchronizeSpace] = {"helSubmitSynchronizeSpace", sys_legacy_synchronize_space,
			"*space &pointer size *queue &context"};
	t[kHelCallSubmitReadMemory] = {"helSubmitReadMemory", sys_legacy_read_memory,
			"*handle &address length &buffer *queue &context"};
	t[kHelCallSubmitWriteMemory] = {"helSubmitWriteMemory", sys_legacy_write_memory,
			"*handle &address length &buffer *queue &context"};
	t[kHelCallSubmitManageMemory] = {"helSubmitManageMemory", sys_legacy_manage_memory,
			"*handle *queue &context"};
	t[kHelCallSubmitLockMemoryView] = {"helSubmitLockMemoryView", sys_legacy_lock_memory_view,
			"*handle offset size *queue &context"};
	t[kHelCallCreateThread] = {"helCreateThread", sys_create_thread,
			"*universe *addressSpace abi &ip &sp flags > *handle"};
	t[kHelCallResume] = {"helResume", sys_resume, "*handle"};
	t[kHelCallInterruptThread] = {"helInterruptThread", sys_interrupt_thread, "*handle"};
	t[kHelCallKillThread] = {"helKillThread", sys_kill_thread, "*handle"};
	t[kHelCallLoadRegisters] = {"helLoadRegisters", sys_load_registers, "*handle set &image"};
	t[kHelCallStoreRegisters] = {"helStoreRegisters", sys_store_registers, "*handle set &image"};
	t[kHelCallSubmitObserve] = {"helSubmitObserve", sys_legacy_observe,
			"*handle sequence *queue &context"};
	t[kHelCallYield] = {"helYield", sys_yield, ""};
	t[kHelCallSetPriority] = {"helSetPriority", sys_set_priority, "*handle priority"};
	t[kHelCallGetCurrentCpu] = {"helGetCurrentCpu", sys_get_current_cpu, "> cpu"};
	t[kHelCallGetClock] = {"helGetClock", sys_get_clock, "> counter"};
	t[kHelCallGetRandomBytes] = {"helGetRandomBytes", sys_get_random_bytes,
			"&buffer wantedSize > actualSize"};
	t[kHelCallCreateVirtualizedSpace] = {"helCreateVirtualizedSpace", sys_no_virtualization,
			"> *handle"};
	t[kHelCallCreateVirtualizedCpu] = {"helCreateVirtualizedCpu", sys_no_virtualization,
			"*handle > *outHandle"};
	t[kHelCallRunVirtualizedCpu] = {"helRunVirtualizedCpu", sys_no_virtualization,
			"*handle &exitInfo"};
	t[kHelCallAssertVirtualizedIrq] = {"helAssertVirtualizedIrq", sys_no_virtualization,
			"*handle irq level"};
	t[kHelCallGetAffinity] = {"helGetAffinity", sys_get_affinity, "*handle &mask size &actualSize"};
	t[kHelCallWriteFsBase] = {"helWriteFsBase", sys_write_fs_base, "&pointer"};
	t[kHelCallReadFsBase] = {"helReadFsBase", sys_read_fs_base, "> &pointer"};
	t[kHelCallWriteGsBase] = {"helWriteGsBase", sys_write_gs_base, "&pointer"};
	t[kHelCallReadGsBase] = {"helReadGsBase", sys_read_gs_base, "> &pointer"};
	t[kHelCallQueryRegisterInfo] = {"helQueryRegisterInfo", sys_query_register_info, "set &info"};
	t[kHelCallQueryThreadStats] = {"helQueryThreadStats", sys_query_thread_stats, "*handle &stats"};
	t[kHelCallSetAffinity] = {"helSetAffinity", sys_set_affinity, "*handle &mask size"};
	t[kHelCallFutexWait] = {"helFutexWait", sys_futex_wait, "&pointer expected deadline"};
	t[kHelCallFutexWake] = {"helFutexWake", sys_futex_wake, "&pointer count"};
	t[kHelCallCreateOneshotEvent] = {"helCreateOneshotEvent", sys_create_oneshot_event,
			"> *handle"};
	t[kHelCallCreateBitsetEvent] = {"helCreateBitsetEvent", sys_create_bitset_event, "> *handle"};
	t[kHelCallRaiseEvent] = {"helRaiseEvent", sys_raise_event, "*handle bits"};
	t[kHelCallSubmitAwaitEvent] = {"helSubmitAwaitEvent", sys_legacy_await_event,
			"*handle sequence *queue &context"};
	t[kHelCallAccessIrq] = {"helAccessIrq", sys_access_irq,
			"*accessToken mode controller index > *handle"};
	t[kHelCallHandleIrq] = {"helHandleIrq", sys_handle_irq, "*pinHandle > *handle"};
	t[kHelCallConfigureIrq] = {"helConfigureIrq", sys_configure_irq, "*pinHandle trigger polarity"};
	t[kHelCallAcknowledgeIrq] = {"helAcknowledgeIrq", sys_acknowledge_irq,
			"*handle flags sequence"};
	t[kHelCallAutomateIrq] = {"helAutomateIrq", sys_automate_irq, "*handle flags *kernlet"};
	t[kHelCallBindKernlet] = {"helBindKernlet", sys_bind_kernlet,
			"*handle &data numData > *boundHandle"};
	t[kHelCallCreateStream] = {"helCreateStream", sys_create_stream,
			"attachCredentials > *lane1 *lane2"};
	t[kHelCallShutdownLane] = {"helShutdownLane", sys_shutdown_lane, "*handle"};
	t[kHelCallSubmitAsync] = {"helSubmitAsync", sys_submit_async,
			"*handle &actions count *queue &context flags"};
	t[kHelCallCopyOnWrite] = {"helCopyOnWrite", sys_copy_on_write, "*memory offset size > *handle"};
	t[kHelCallCreateIndirectMemory] = {"helCreateIndirectMemory", sys_create_indirect_memory,
			"numSlots > *handle"};
	t[kHelCallAlterMemoryIndirection] = {"helAlterMemoryIndirection", sys_alter_memory_indirection,
			"*indirectHandle slotIndex *memoryHandle offset size"};
	t[kHelCallCreateSliceView] = {"helCreateSliceView", sys_create_slice_view,
			"*memory offset size flags > *handle"};
	t[kHelCallCreateManagedMemory] = {"helCreateManagedMemory", sys_create_managed_memory,
			"size flags > *backingHandle *frontalHandle"};
	t[kHelCallUpdateMemory] = {"helUpdateMemory", sys_update_memory, "*handle type offset length"};
	t[kHelCallCreateSwapSpace] = {"helCreateSwapSpace", sys_create_swap_space,
			"flags > *backingHandle *swapHandle"};
	t[kHelCallAllocateSwappableMemory] = {"helAllocateSwappableMemory",
			sys_allocate_swappable_memory, "*swapHandle size flags > *handle"};
	t[kHelCallSetSwapBudget] = {"helSetSwapBudget", sys_set_swap_budget, "*swapHandle numPages"};
	t[kHelCallAccessPhysical] = {"helAccessPhysical", sys_access_physical,
			"*accessToken physical size cachingMode > *handle"};
	t[kHelCallCreateDmaSpace] = {"helCreateDmaSpace", sys_create_dma_space, "flags > *handle"};
	t[kHelCallAccessIo] = {"helAccessIo", sys_access_io,
			"*accessToken &portArray numPorts > *handle"};
	t[kHelCallEnableIo] = {"helEnableIo", sys_enable_io, "*handle"};
	t[kHelsimCallIoRead] = {"helsimIoRead", sys_io_read, "port width > value"};
	t[kHelsimCallIoWrite] = {"helsimIoWrite", sys_io_write, "port width value"};
	t[kHelsimCallMmioRead] = {"helsimMmioRead", sys_mmio_read, "&address width > value"};
	t[kHelsimCallMmioWrite] = {"helsimMmioWrite", sys_mmio_write, "&address width value"};
	return t;
}

constexpr auto kSyscalls = make_table();

// ---------------------------------------------------------------- SQ opcodes

HelError sq_async_nop(Thread &self, IpcQueue &queue, std::uintptr_t context, const std::byte *,
		std::size_t) {
	return complete_at_once(self, queue, context, kHelErrNone);
}

HelError sq_await_clock(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const std::byte *payload, std::size_t length) {
	HelSqAwaitClock request;
	if (!read_payload(request, payload, length))
		return kHelErrBufferTooSmall;
	submit_await_clock(self, queue, request.counter, request.cancellationTag, context);
	return kHelErrNone;
}

HelError sq_cancel(Thread &, IpcQueue &queue, std::uintptr_t, const std::byte *payload,
		std::size_t length) {
	HelSqCancel request;
	if (!read_payload(request, payload, length))
		return kHelErrBufferTooSmall;
	queue.cancel(request.cancellationTag);
	return kHelErrNone;
}

HelError sq_exchange_msgs(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const std::byte *payload, std::size_t length) {
	HelSqExchangeMsgs request;
	if (!read_payload(request, payload, length))
		return kHelErrBufferTooSmall;
	if (request.flags != 0 || request.count == 0)
		return kHelErrIllegalArgs;
	if (request.count > (length - sizeof(request)) / sizeof(HelAction))
		return kHelErrBufferTooSmall;
	if (request.count > kMaxActions)
		return kHelErrQueueTooSmall;
	ActionBuffer actions{request.count};
	std::memcpy(actions.data(), payload + sizeof(request), request.count * sizeof(HelAction));
	return exchange(self, request.lane, {actions.data(), request.count}, queue, context);
}

struct SqRow {
	const char *name;
	SqFn fn;
	std::size_t result_size; // checked against the chunk size before submitting
};

constexpr std::array<SqRow, kHelSubmitPopulateSpace + 1> make_sq_table() {
	std::array<SqRow, kHelSubmitPopulateSpace + 1> t{};
	t[kHelSubmitAsyncNop] = {"AsyncNop", sq_async_nop, sizeof(HelSimpleResult)};
	t[kHelSubmitAwaitClock] = {"AwaitClock", sq_await_clock, sizeof(HelSimpleResult)};
	t[kHelSubmitAwaitEvent] = {"AwaitEvent", sq_await_event, sizeof(HelEventResult)};
	t[kHelSubmitObserve] = {"Observe", sq_observe, sizeof(HelObserveResult)};
	// Its real result size depends on the action list; submit_exchange checks it.
	t[kHelSubmitExchangeMsgs] = {"ExchangeMsgs", sq_exchange_msgs, sizeof(HelSimpleResult)};
	t[kHelSubmitProtectMemory] = {"ProtectMemory", sq_protect_memory, sizeof(HelSimpleResult)};
	t[kHelSubmitSynchronizeSpace] = {"SynchronizeSpace", sq_synchronize_space,
			sizeof(HelSimpleResult)};
	t[kHelSubmitReadMemory] = {"ReadMemory", sq_read_memory, sizeof(HelSimpleResult)};
	t[kHelSubmitWriteMemory] = {"WriteMemory", sq_write_memory, sizeof(HelSimpleResult)};
	t[kHelSubmitResizeMemory] = {"ResizeMemory", sq_resize_memory, sizeof(HelSimpleResult)};
	t[kHelSubmitForkMemory] = {"ForkMemory", sq_fork_memory, sizeof(HelHandleResult)};
	t[kHelSubmitManageMemory] = {"ManageMemory", sq_manage_memory, sizeof(HelManageResult)};
	t[kHelSubmitLockMemoryView] = {"LockMemoryView", sq_lock_memory_view, sizeof(HelHandleResult)};
	t[kHelSubmitWritebackFence] = {"WritebackFence", sq_writeback_fence, sizeof(HelSimpleResult)};
	t[kHelSubmitInvalidateMemory] = {"InvalidateMemory", sq_invalidate_memory,
			sizeof(HelSimpleResult)};
	t[kHelSubmitPopulateSpace] = {"PopulateSpace", sq_populate_space, sizeof(HelSimpleResult)};
	return t;
}

constexpr auto kSqOps = make_sq_table();

// The SQ dispatch that helCreateQueue hands to every queue (SqSubmit).
HelError submit_sq_operation(Thread &self, IpcQueue &queue, unsigned opcode, std::uintptr_t context,
		const std::byte *payload, std::size_t length) {
	if (opcode == kHelSubmitCancel)
		return sq_cancel(self, queue, context, payload, length);
	if (opcode >= kSqOps.size() || !kSqOps[opcode].fn)
		return kHelErrIllegalSyscall;
	const SqRow &row = kSqOps[opcode];
	if (!queue.fits(pad8(row.result_size)))
		return kHelErrQueueTooSmall;
	return row.fn(self, queue, context, payload, length);
}

} // namespace

const char *syscall_name(std::uint32_t number) {
	return number < kSyscalls.size() ? kSyscalls[number].name : nullptr;
}

HelError submit_legacy(Thread &self, unsigned opcode, HelHandle queue_handle,
		std::uintptr_t context, const std::byte *payload, std::size_t length) {
	auto queue = self.universe().resolve<IpcQueue>(queue_handle, kHelRightInvoke);
	if (!queue)
		return queue.error;
	if (self.tracer()) [[unlikely]]
		self.set_trace_key(queue.object.get(), context);
	HelError error = submit_sq_operation(self, *queue.object, opcode, context, payload, length);
	if (self.tracer()) [[unlikely]]
		self.set_trace_key(nullptr, 0); // a refused submission starts no flow
	return error;
}

} // namespace helsim::kernel

// ---------------------------------------------------------------- the entry point

using helsim::kernel::Thread;

namespace {
// Tracing on: the call inside a syscall slice on the thread's track, its argument words and
// result in the slice's args (`params` names them; nullptr: unknown). Out of line, so the
// untraced entry stays as small as it was.
template <typename Call>
__attribute__((noinline)) HelError traced_syscall(Thread &self, const char *name,
		const char *params, const HelWord *args, HelWord *outs, Call &&call) {
	static_assert(sizeof(HelWord) == sizeof(std::uint64_t));
	helsim::sim::TraceRecorder &tracer = *self.tracer();
	struct End {
		helsim::sim::TraceRecorder &tracer;
		Thread &self;
		const char *name;
		std::size_t record;
		const HelWord *outs;
		int error = helsim::sim::TraceRecorder::kNoReturn;
		~End() { tracer.syscall_end(self, name, record, error, outs); } // also when helPanic throws
	} end{tracer, self, name, tracer.syscall_begin(self, name, params, args), outs};
	HelError error = call();
	end.error = error;
	return error;
}
} // namespace

namespace {
// The table's call, an extension syscall, or a supercall (inline handler or trap).
HelError dispatch(Thread &self, std::uint32_t number, const HelWord *args, HelWord *outs) {
	namespace k = helsim::kernel;
	if (number < k::kSyscalls.size()) {
		auto fn = k::kSyscalls[number].fn;
		if (!fn)
			return kHelErrIllegalSyscall;
		self.syscall_counts[number].bump();
		return k::without_allocation_exceptions([&] {
			return self.tracer()
					? traced_syscall(self, k::kSyscalls[number].name, k::kSyscalls[number].params,
							  args, outs, [&] { return fn(self, args, outs); })
					: fn(self, args, outs);
		});
	}
	k::Kernel &kernel = self.kernel();
	if (number >= static_cast<std::uint32_t>(kHelCallSuper)) {
		// The inline handler is an explicit opt-in (set_supercall_handler); without it a
		// supercall traps to whoever observes the thread.
		if (!kernel.supercall_handler)
			return self.trap_supercall(number, args, outs);
		helsim::ext::Caller caller{self};
		HelError answered = k::without_allocation_exceptions(
				[&] { return kernel.supercall_handler(caller, number, args, outs); });
		if (answered == helsim::ext::kSupercallTrap)
			return self.trap_supercall(number, args, outs);
		return answered;
	}
	if (number < helsim::kSyscallSlots) {
		if (auto handler = kernel.extension_syscall(number)) {
			self.syscall_counts[number].bump();
			helsim::ext::Caller caller{self};
			return k::without_allocation_exceptions([&] {
				if (self.tracer()) [[unlikely]] {
					std::string label = kernel.syscall_label(number);
					return traced_syscall(self, label.c_str(), nullptr, args, outs,
							[&] { return handler(caller, args, outs); });
				}
				return handler(caller, args, outs);
			});
		}
	}
	return kHelErrIllegalSyscall;
}
} // namespace

namespace {
// What a call from outside every machine is named in the notice: extension numbers and
// supercalls have no table entry (and no machine to ask for a label).
std::string call_name(std::uint32_t number) {
	namespace k = helsim::kernel;
	if (number < k::kSyscalls.size() && k::kSyscalls[number].fn)
		return k::kSyscalls[number].name;
	if (number >= static_cast<std::uint32_t>(kHelCallSuper))
		return fmt::format("supercall {} (kHelCallSuper + {})", number - kHelCallSuper,
				number - kHelCallSuper);
	return fmt::format("syscall {}", number);
}

// Not a simulated thread: see docs/reference/index.md. Cold, so the entry stays small.
__attribute__((noinline, cold)) HelError call_outside_simulation(std::uint32_t number) {
	std::string name = call_name(number);
	const std::string &thread = helsim::sim::report_call_outside_simulation(name);
	// helPanic cannot return: it reports the misuse the only way it can. Its caller is most
	// often HEL_CHECK after an earlier call failed for the same reason.
	if (number == kHelCallPanic)
		throw helsim::PanicError{fmt::format(
				"helPanic called on {}, which is not a simulated thread (every hel call there "
				"returns kHelErrIllegalState); call Machine::attach() on it first",
				thread)};
	return kHelErrIllegalState;
}
} // namespace

extern "C" HelError helsim_syscall(std::uint32_t number, const HelWord *args, HelWord *outs) {
	Thread *self = Thread::current();
	if (!self) [[unlikely]]
		return call_outside_simulation(number);
	// Kernel mode until the call returns (or throws: helPanic, a kill): a host fault meanwhile
	// is helsim's, not the program's (sim/host_faults.hpp). A load and two plain stores; the
	// mode before is restored, since kernel code (an extension's handler) may make calls too.
	struct KernelMode {
		Thread &self;
		bool before;
		explicit KernelMode(Thread &t) : self{t}, before{t.in_kernel()} {
			self.set_in_kernel(true);
		}
		~KernelMode() { self.set_in_kernel(before); }
	} kernel_mode{*self};
	HelWord scratch[3];
	if (!outs)
		outs = scratch;
	helsim::sim::Host &host = self->kernel().host();
	if (host.charges_time()) [[unlikely]] {                    // deterministic mode
		host.charge(self->kernel().config().costs.syscall_ns); // the cost model's entry and exit
		host.scheduling_point(*self);
	}
	// helInterruptThread and helKillThread act at a syscall's entry and exit (one load each
	// when nothing is requested).
	HelWord stopped_args[helsim::kernel::kSyscallArgWords];
	if (self->interrupt_pending()) [[unlikely]] {
		args = self->stop_at_entry(number, args, stopped_args);
		if (!args)
			return kHelErrThreadTerminated;
	}
	HelError result = dispatch(*self, number, args, outs);
	// Deterministic mode: the exit is a decision too, so whatever the call woke or completed
	// may run before the caller continues.
	if (host.charges_time()) [[unlikely]]
		host.scheduling_point(*self);
	if (self->interrupt_pending()) [[unlikely]]
		result = self->stop_at_exit(number, args, result, outs);
	return result;
}
