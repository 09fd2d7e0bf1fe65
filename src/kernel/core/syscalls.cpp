// The built-in calls of this file and the registration of every built-in row (register_*_calls),
// and the syscall entry point. Entry points decode their argument words, resolve handles and
// call into the object that implements the semantics.
#include "kernel/core/syscalls.hpp"

#include <array>
#include <cstring>
#include <string>

#include <helsim/extension_kernel.hpp>

#include <fmt/format.h>

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/core/token.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/devices/device_syscalls.hpp"
#include "kernel/devices/event_syscalls.hpp"
#include "kernel/devices/irq_syscalls.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/ipc/stream.hpp"
#include "kernel/memory/memory_syscalls.hpp"
#include "kernel/memory/usercopy.hpp"
#include "kernel/threads/clock.hpp"
#include "kernel/threads/futex.hpp"
#include "kernel/threads/thread.hpp"
#include "kernel/threads/thread_syscalls.hpp"

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

HelError sys_create_queue(Thread &self, const HelWord *args, HelWord *outs) {
	HelQueueParameters params;
	if (HelError e = copy_from_user(self, &params, arg<const void *>(args, 0), sizeof(params));
			e != kHelErrNone)
		return e;
	Ref<IpcQueue> queue;
	if (HelError e = IpcQueue::create(self.kernel(), params, CallRegistry::submit, queue);
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

// Managarm's calls below kHelNumCalls, helsim's own in [kHelsimCallIoRead, kHelsimNumCalls);
// extensions live above, from kFirstExtensionSyscall (256).
static_assert(int{kHelNumCalls} <= int{kHelsimCallIoRead} &&
		std::uint32_t{kHelsimNumCalls} <= kFirstExtensionSyscall);

void register_core_syscalls(CallRegistry &calls) {
	calls.add_syscall(kHelCallLog, {"helLog", "severity &string length", sys_log});
	calls.add_syscall(kHelCallPanic, {"helPanic", "&string length", sys_panic});
	calls.add_syscall(kHelCallNop, {"helNop", "", sys_nop});
	calls.add_syscall(kHelCallSubmitAsyncNop,
			{"helSubmitAsyncNop", "*queue &context", sys_submit_async_nop});
	calls.add_syscall(kHelCallCreateUniverse,
			{"helCreateUniverse", "> *handle", sys_create_universe});
	calls.add_syscall(kHelCallTransferDescriptor,
			{"helTransferDescriptor",
					"*handle *universeHandle flags exposedRights requiredRights > *outHandle",
					sys_transfer_descriptor});
	calls.add_syscall(kHelCallDescriptorInfo,
			{"helDescriptorInfo", "*handle &info", sys_descriptor_info});
	calls.add_syscall(kHelCallGetCredentials,
			{"helGetCredentials", "*handle flags &credentials", sys_get_credentials});
	calls.add_syscall(kHelCallCloseDescriptor,
			{"helCloseDescriptor", "*universeHandle *handle", sys_close_descriptor});
	calls.add_syscall(kHelCallCreateToken, {"helCreateToken", "> *handle", sys_create_token});
	calls.add_syscall(kHelCallCreateQueue,
			{"helCreateQueue", "&params > *handle", sys_create_queue});
	calls.add_syscall(kHelCallDriveQueue,
			{"helDriveQueue", "*handle flags notifyMask", sys_drive_queue});
	calls.add_syscall(kHelCallAlertQueue, {"helAlertQueue", "*handle", sys_alert_queue});
	calls.add_syscall(kHelCallGetRandomBytes,
			{"helGetRandomBytes", "&buffer wantedSize > actualSize", sys_get_random_bytes});
	calls.add_syscall(kHelCallCreateVirtualizedSpace,
			{"helCreateVirtualizedSpace", "> *handle", sys_no_virtualization});
	calls.add_syscall(kHelCallCreateVirtualizedCpu,
			{"helCreateVirtualizedCpu", "*handle > *outHandle", sys_no_virtualization});
	calls.add_syscall(kHelCallRunVirtualizedCpu,
			{"helRunVirtualizedCpu", "*handle &exitInfo", sys_no_virtualization});
	calls.add_syscall(kHelCallAssertVirtualizedIrq,
			{"helAssertVirtualizedIrq", "*handle irq level", sys_no_virtualization});
	calls.add_syscall(kHelCallFutexWait,
			{"helFutexWait", "&pointer expected deadline", sys_futex_wait});
	calls.add_syscall(kHelCallFutexWake, {"helFutexWake", "&pointer count", sys_futex_wake});
	calls.add_syscall(kHelCallCreateStream,
			{"helCreateStream", "attachCredentials > *lane1 *lane2", sys_create_stream});
	calls.add_syscall(kHelCallShutdownLane, {"helShutdownLane", "*handle", sys_shutdown_lane});
	calls.add_syscall(kHelCallSubmitAsync,
			{"helSubmitAsync", "*handle &actions count *queue &context flags", sys_submit_async});
}

// ---------------------------------------------------------------- SQ opcodes

HelError sq_async_nop(Thread &self, IpcQueue &queue, std::uintptr_t context, const std::byte *,
		std::size_t) {
	return complete_at_once(self, queue, context, kHelErrNone);
}

HelError sq_cancel(Thread &, IpcQueue &queue, std::uintptr_t, const HelSqCancel &request) {
	queue.cancel(request.cancellationTag);
	return kHelErrNone;
}

// The request struct, then `count` actions: the one operation whose payload has a length of its
// own.
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

void register_core_sq_opcodes(CallRegistry &calls) {
	// Posts nothing of its own: the operation it cancels completes with kHelErrCancelled.
	calls.add_sq_opcode(kHelSubmitCancel, sq_row<sq_cancel>("Cancel", 0));
	calls.add_sq_opcode(kHelSubmitAsyncNop, {"AsyncNop", sizeof(HelSimpleResult), sq_async_nop});
	// Its real result size depends on the action list; submit_exchange checks it.
	calls.add_sq_opcode(kHelSubmitExchangeMsgs,
			{"ExchangeMsgs", sizeof(HelSimpleResult), sq_exchange_msgs});
}

} // namespace

void register_builtin_calls(CallRegistry &calls) {
	register_core_syscalls(calls);
	register_core_sq_opcodes(calls);
	register_memory_calls(calls);
	register_thread_calls(calls);
	register_clock_calls(calls);
	register_event_calls(calls);
	register_irq_calls(calls);
	register_device_calls(calls);
}

HelError submit_legacy(Thread &self, unsigned opcode, HelHandle queue_handle,
		std::uintptr_t context, const std::byte *payload, std::size_t length) {
	auto queue = self.universe().resolve<IpcQueue>(queue_handle, kHelRightInvoke);
	if (!queue)
		return queue.error;
	if (self.tracer()) [[unlikely]]
		self.set_trace_key(queue.object.get(), context);
	HelError error = CallRegistry::submit(self, *queue.object, opcode, context, payload, length);
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
// A row of the kernel's table (built-in or extension), or a supercall (inline handler or trap).
HelError dispatch(Thread &self, std::uint32_t number, const HelWord *args, HelWord *outs) {
	namespace k = helsim::kernel;
	k::Kernel &kernel = self.kernel();
	if (number < helsim::kSyscallSlots) {
		auto fn = kernel.calls().syscall_entry(number);
		if (!fn)
			return kHelErrIllegalSyscall;
		self.syscall_counts[number].bump();
		return k::without_allocation_exceptions([&] {
			if (self.tracer()) [[unlikely]] {
				const k::SyscallRow &row = kernel.calls().syscall_row(number);
				return traced_syscall(self, row.name.c_str(), row.params, args, outs,
						[&] { return fn(self, args, outs); });
			}
			return fn(self, args, outs);
		});
	}
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
	return kHelErrIllegalSyscall;
}
} // namespace

namespace {
// What a call from outside every machine is named in the notice: built-in numbers by the rows
// every kernel registers; extension numbers and supercalls have no machine to ask for a label.
std::string call_name(std::uint32_t number) {
	namespace k = helsim::kernel;
	static const auto builtins = [] {
		auto calls = std::make_unique<k::CallRegistry>();
		k::register_builtin_calls(*calls);
		return calls;
	}();
	if (std::string name = builtins->syscall_name(number); !name.empty())
		return name;
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
