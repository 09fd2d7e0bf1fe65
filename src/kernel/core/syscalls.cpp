// The built-in calls of this file and the registration of every built-in row (register_*_calls),
// and the syscall entry point. A row declares its decode step (syscall_row, syscall_args.hpp);
// the functions here are the effects, or call the object that implements them.
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

HelError sys_log(Thread &self, int severity, const UserRangeValue &string) {
	// thor logs a severity it does not know as info.
	if (severity < kHelLogSeverityEmergency || severity > kHelLogSeverityDebug)
		severity = kHelLogSeverityInfo;
	// A log line is bounded; the rest of an absurdly long message is dropped.
	std::string message(std::min(string.size, kMaxLogLength), '\0');
	if (HelError e = copy_from_user(self, message.data(), string.pointer, message.size());
			e != kHelErrNone)
		return e;
	self.kernel().log({severity, self.name(), message});
	return kHelErrNone;
}

// helPanic must not return, but the syscall entry turns a std::bad_alloc into a return value:
// without memory for the message, a thread panics with this one (copying it allocates nothing).
const PanicError kPanicWithoutMemory{"<no memory for the panic message>"};

// The message is read by the effect: an unreadable one is reported as such, never an error.
HelError sys_panic(Thread &self, const char *string, std::size_t length, const HelWord *args) {
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

HelError sys_nop(Thread &) { return kHelErrNone; }

HelError sys_submit_async_nop(Thread &self, Lookup<IpcQueue> &queue, std::uintptr_t context) {
	if (!queue.object->fits(sizeof(HelSimpleResult)))
		return kHelErrQueueTooSmall;
	if (self.tracer()) [[unlikely]]
		self.set_trace_key(queue.object.get(), context);
	self.note_submitted();
	queue.object->post_simple(kHelErrNone, context);
	return kHelErrNone;
}

// ---------------------------------------------------------------- descriptors and universes

HelError sys_create_universe(Thread &self, HelWord *outs) {
	return attach_new(self, make_object<Universe>(self.kernel()), kUniverseDefaultRights, outs);
}

// helTransferDescriptor: the direction decides which rights the universe handle needs and
// which universe the descriptor is looked up in.
struct Transfer {
	Ref<Universe> source;
	Ref<Universe> target;
	HelHandle handle = kHelNullHandle;
	Resolved descriptor;
};

HelError decode_transfer(Thread &self, const HelWord *args, Transfer &out) {
	out.handle = arg<HelHandle>(args, 0);
	auto flags = arg<std::uint32_t>(args, 2);
	auto exposed = arg<std::uint32_t>(args, 3);
	auto required = arg<std::uint32_t>(args, 4);
	if (flags != kHelTransferDescriptorOut && flags != kHelTransferDescriptorIn)
		return kHelErrIllegalArgs;
	bool to_other = flags == kHelTransferDescriptorOut;
	auto universe = resolve_universe(self, arg<HelHandle>(args, 1),
			to_other ? kHelRightGrant : kHelRightTake);
	if (!universe)
		return universe.error;
	if (to_other) {
		out.source = self.universe_ref();
		out.target = std::move(universe.object);
	} else {
		out.source = std::move(universe.object);
		out.target = self.universe_ref();
	}
	if (HelError e = out.source->lookup(out.handle, out.descriptor); e != kHelErrNone)
		return e;
	out.descriptor.rights &= exposed;
	if ((out.descriptor.rights & required) != required)
		return kHelErrBadRights;
	return kHelErrNone;
}

HelError sys_transfer_descriptor(Thread &self, Transfer &transfer, HelWord *outs) {
	const char *kind = transfer.descriptor.object->kind_name();
	HelHandle copied;
	if (HelError e = transfer.target->attach(std::move(transfer.descriptor.object),
				transfer.descriptor.rights, copied);
			e != kHelErrNone)
		return e;
	outs[0] = static_cast<HelWord>(copied);
	if (auto *tracer = self.tracer()) [[unlikely]]
		tracer->transfer_descriptor(kind, transfer.handle, transfer.source->id(), copied,
				transfer.target->id());
	return kHelErrNone;
}

HelError sys_descriptor_info(Thread &self, Resolved &descriptor,
		const UserPtr<HelDescriptorInfo> &info) {
	// Managarm's struct holds the type only; helsim::ext::describe_descriptor adds the rights.
	return info.write(self, HelDescriptorInfo{descriptor.object->descriptor_type()});
}

using Credentials = std::array<char, 16>;

// helGetCredentials: of the caller (kHelThisThread), of a thread, or of a lane's stream.
HelError decode_credentials(Thread &self, const HelWord *args, Credentials &out) {
	auto handle = arg<HelHandle>(args, 0);
	if (handle == kHelThisThread) {
		out = self.credentials();
		return kHelErrNone;
	}
	Resolved r;
	if (HelError e = self.universe().lookup(handle, r); e != kHelErrNone)
		return e;
	if (r.object->kind() == ObjectKind::thread) {
		out = static_cast<Thread *>(r.object.get())->credentials();
		return kHelErrNone;
	}
	if (r.object->kind() != ObjectKind::lane)
		return kHelErrBadDescriptor;
	Stream &stream = static_cast<Lane *>(r.object.get())->stream();
	// thor asserts here; helsim answers with an error (docs/fidelity.md).
	if (!stream.has_credentials())
		return kHelErrIllegalArgs;
	out = stream.credentials();
	return kHelErrNone;
}

HelError sys_get_credentials(Thread &self, std::uint32_t, const Credentials &credentials,
		const UserPtr<Credentials> &out) {
	return out.write(self, credentials);
}

HelError sys_close_descriptor(Thread &, Lookup<Universe> &universe, HelHandle handle) {
	return universe.object->close(handle);
}

HelError sys_create_token(Thread &self, HelWord *outs) {
	return attach_new(self, make_object<Token>(self.kernel()), kHelRightNull, outs);
}

// ---------------------------------------------------------------- queues

HelError sys_create_queue(Thread &self, const HelQueueParameters &params, HelWord *outs) {
	Ref<IpcQueue> queue;
	if (HelError e = IpcQueue::create(self.kernel(), params, CallRegistry::submit, queue);
			e != kHelErrNone)
		return e;
	return attach_new(self, std::move(queue), kQueueDefaultRights, outs);
}

HelError sys_drive_queue(Thread &self, std::uint32_t flags, Lookup<IpcQueue> &queue,
		HelHandle handle, std::uint32_t notify_mask) {
	queue.object->drive(self);
	if (flags & kHelDriveWait)
		return queue.object->wait_user_notify(self, notify_mask, handle);
	return kHelErrNone;
}

HelError sys_alert_queue(Thread &, Lookup<IpcQueue> &queue) {
	queue.object->alert();
	return kHelErrNone;
}

// ---------------------------------------------------------------- clock, randomness,
// virtualization

// The simulated CPUs have no VMX or SVM: thor answers every virtualization call this way then,
// before it looks at any argument.
HelError sys_no_virtualization(Thread &) { return kHelErrNoHardwareSupport; }

// As thor: at most 128 bytes a call; the count comes back as an output word.
constexpr std::size_t kMaxRandomBytes = 128;

HelError sys_get_random_bytes(Thread &self, const UserPtr<unsigned char> &buffer,
		std::size_t wanted, HelWord *outs) {
	std::size_t size = std::min(wanted, kMaxRandomBytes);
	unsigned char bytes[kMaxRandomBytes];
	self.kernel().host().random_bytes(bytes, size);
	if (buffer.write(self, bytes, size) != kHelErrNone)
		return kHelErrFault;
	outs[0] = size;
	return kHelErrNone;
}

// ---------------------------------------------------------------- futexes

// A futex deadline: -1 is none; below that, kHelErrIllegalArgs.
template <int I>
struct Deadline {
	using Value = std::uint64_t;
	static constexpr ParamInfo info{ParamKind::word, I};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		auto deadline = arg<std::int64_t>(args, I);
		if (deadline < -1)
			return kHelErrIllegalArgs;
		out = deadline == -1 ? sim::kNoDeadline : static_cast<std::uint64_t>(deadline);
		return kHelErrNone;
	}
};

HelError sys_futex_wait(Thread &self, std::uint64_t deadline, int *pointer, int expected) {
	return self.kernel().futexes().wait(self, pointer, expected, deadline);
}

HelError sys_futex_wake(Thread &self, const int *pointer, unsigned count) {
	return self.kernel().futexes().wake(self, pointer, count);
}

// ---------------------------------------------------------------- streams

HelError sys_create_stream(Thread &self, std::uint32_t attach_credentials, HelWord *outs) {
	Ref<Lane> lane0, lane1;
	Stream::create(self.kernel(), attach_credentials != 0, lane0, lane1);
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

HelError sys_shutdown_lane(Thread &, Lookup<Lane> &lane) {
	lane.object->stream().shutdown(lane.object->side());
	return kHelErrNone;
}

// Bounds the kernel copy of an action list (Managarm bounds it by the chunk size).
constexpr std::size_t kMaxActions = 1024;

// The kernel's copy of an action list: on the stack for the common short lists, on the heap
// for long ones (fiber stacks may be as small as 16 KiB).
class ActionBuffer {
public:
	void resize(std::size_t count) {
		if (count > kInline)
			heap_ = std::make_unique<HelAction[]>(count);
		count_ = count;
	}
	HelAction *data() { return heap_ ? heap_.get() : inline_; }
	std::span<const HelAction> actions() { return {data(), count_}; }

private:
	static constexpr std::size_t kInline = 16;
	HelAction inline_[kInline];
	std::unique_ptr<HelAction[]> heap_;
	std::size_t count_ = 0;
};

// helSubmitAsync: the count decides how much of the caller's memory is the action list.
struct Submission {
	Lookup<Lane> lane;
	Lookup<IpcQueue> queue;
	ActionBuffer actions;
	std::uintptr_t context = 0;
};

HelError decode_submission(Thread &self, const HelWord *args, Submission &out) {
	auto count = arg<std::size_t>(args, 2);
	if (arg<std::uint32_t>(args, 5) != 0 || count == 0)
		return kHelErrIllegalArgs;
	if (count > kMaxActions)
		return kHelErrQueueTooSmall;
	out.queue = self.universe().resolve<IpcQueue>(arg<HelHandle>(args, 3), kHelRightInvoke);
	if (!out.queue)
		return out.queue.error;
	out.actions.resize(count);
	if (HelError e = copy_from_user(self, out.actions.data(), arg<const void *>(args, 1),
				count * sizeof(HelAction));
			e != kHelErrNone)
		return e;
	out.lane = self.universe().resolve<Lane>(arg<HelHandle>(args, 0), kHelRightInvoke);
	out.context = arg<std::uintptr_t>(args, 4);
	return out.lane.error;
}

HelError sys_submit_async(Thread &self, Submission &submission) {
	IpcQueue &queue = *submission.queue.object;
	if (self.tracer()) [[unlikely]]
		self.set_trace_key(&queue, submission.context);
	HelError error = submit_exchange(self, submission.lane.object.release(),
			submission.actions.actions(), queue, submission.context);
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
	calls.add_syscall(kHelCallLog,
			syscall_row<sys_log, Word<0, int>, UserRange<1, 2>>("helLog",
					"severity &string length"));
	calls.add_syscall(kHelCallPanic,
			syscall_row<sys_panic, Address<0, const char *>, Word<1, std::size_t>, Arguments>(
					"helPanic", "&string length"));
	calls.add_syscall(kHelCallNop, syscall_row<sys_nop>("helNop", ""));
	calls.add_syscall(kHelCallSubmitAsyncNop,
			syscall_row<sys_submit_async_nop, Handle<0, IpcQueue, kHelRightInvoke>, Address<1>>(
					"helSubmitAsyncNop", "*queue &context"));
	calls.add_syscall(kHelCallCreateUniverse,
			syscall_row<sys_create_universe>("helCreateUniverse", "> *handle"));
	calls.add_syscall(kHelCallTransferDescriptor,
			syscall_row<sys_transfer_descriptor, Decoded<decode_transfer>>("helTransferDescriptor",
					"*handle *universeHandle flags exposedRights requiredRights > *outHandle"));
	calls.add_syscall(kHelCallDescriptorInfo,
			syscall_row<sys_descriptor_info, AnyHandle<0>, UserOut<1, HelDescriptorInfo>>(
					"helDescriptorInfo", "*handle &info"));
	calls.add_syscall(kHelCallGetCredentials,
			syscall_row<sys_get_credentials, Flags<1, 0>, Decoded<decode_credentials>,
					UserOut<2, Credentials>>("helGetCredentials", "*handle flags &credentials"));
	calls.add_syscall(kHelCallCloseDescriptor,
			syscall_row<sys_close_descriptor, Handle<0, Universe, kHelRightGrant, resolve_universe>,
					HandleWord<1, ObjectKind::token>>("helCloseDescriptor",
					"*universeHandle *handle"));
	calls.add_syscall(kHelCallCreateToken,
			syscall_row<sys_create_token>("helCreateToken", "> *handle"));
	calls.add_syscall(kHelCallCreateQueue,
			syscall_row<sys_create_queue, UserIn<0, HelQueueParameters>>("helCreateQueue",
					"&params > *handle"));
	// Invoke and Wait, with or without kHelDriveWait, as thor asks.
	calls.add_syscall(kHelCallDriveQueue,
			syscall_row<sys_drive_queue, Flags<1, kHelDriveWait>,
					Handle<0, IpcQueue, kHelRightInvoke | kHelRightWait>,
					HandleWord<0, ObjectKind::queue>, Word<2, std::uint32_t>>("helDriveQueue",
					"*handle flags notifyMask"));
	calls.add_syscall(kHelCallAlertQueue,
			syscall_row<sys_alert_queue, Handle<0, IpcQueue, kHelRightSignal>>("helAlertQueue",
					"*handle"));
	calls.add_syscall(kHelCallGetRandomBytes,
			syscall_row<sys_get_random_bytes, UserOut<0, unsigned char>, Word<1, std::size_t>>(
					"helGetRandomBytes", "&buffer wantedSize > actualSize"));
	calls.add_syscall(kHelCallCreateVirtualizedSpace,
			syscall_row<sys_no_virtualization>("helCreateVirtualizedSpace", "> *handle"));
	calls.add_syscall(kHelCallCreateVirtualizedCpu,
			syscall_row<sys_no_virtualization>("helCreateVirtualizedCpu", "*handle > *outHandle"));
	calls.add_syscall(kHelCallRunVirtualizedCpu,
			syscall_row<sys_no_virtualization>("helRunVirtualizedCpu", "*handle &exitInfo"));
	calls.add_syscall(kHelCallAssertVirtualizedIrq,
			syscall_row<sys_no_virtualization>("helAssertVirtualizedIrq", "*handle irq level"));
	calls.add_syscall(kHelCallFutexWait,
			syscall_row<sys_futex_wait, Deadline<2>, Address<0, int *>, Word<1, int>>(
					"helFutexWait", "&pointer expected deadline"));
	calls.add_syscall(kHelCallFutexWake,
			syscall_row<sys_futex_wake, Address<0, const int *>, Word<1, unsigned>>("helFutexWake",
					"&pointer count"));
	calls.add_syscall(kHelCallCreateStream,
			syscall_row<sys_create_stream, Word<0, std::uint32_t>>("helCreateStream",
					"attachCredentials > *lane1 *lane2"));
	calls.add_syscall(kHelCallShutdownLane,
			syscall_row<sys_shutdown_lane, Handle<0, Lane, kHelRightManage>>("helShutdownLane",
					"*handle"));
	calls.add_syscall(kHelCallSubmitAsync,
			syscall_row<sys_submit_async, Decoded<decode_submission>>("helSubmitAsync",
					"*handle &actions count *queue &context flags"));
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
	ActionBuffer actions;
	actions.resize(request.count);
	std::memcpy(actions.data(), payload + sizeof(request), request.count * sizeof(HelAction));
	auto lane = self.universe().resolve<Lane>(request.lane, kHelRightInvoke);
	if (!lane)
		return lane.error;
	return submit_exchange(self, lane.object.release(), actions.actions(), queue, context);
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

namespace {
// Kernel mode until the call returns (or throws: helPanic, a kill): a host fault meanwhile is
// helsim's, not the program's (sim/host_faults.hpp). A load and two plain stores; the mode
// before is restored, since kernel code (an extension's handler) may make calls too.
struct KernelMode {
	Thread &self;
	bool before;
	explicit KernelMode(Thread &t) : self{t}, before{t.in_kernel()} { self.set_in_kernel(true); }
	KernelMode(const KernelMode &) = delete;
	KernelMode &operator=(const KernelMode &) = delete;
	~KernelMode() { self.set_in_kernel(before); }
};

// Every call but the common one (see helsim_syscall): deterministic mode's scheduling points,
// a stop requested at entry, supercalls, unknown numbers, tracing. Out of line, so that the
// common call keeps only what its exit needs live across the row's call.
__attribute__((noinline)) HelError general_syscall(Thread &self, std::uint32_t number,
		const HelWord *args, HelWord *outs) {
	KernelMode kernel_mode{self};
	HelWord scratch[3];
	if (!outs)
		outs = scratch;
	helsim::sim::Host &host = self.kernel().host();
	if (host.charges_time()) [[unlikely]] {                   // deterministic mode
		host.charge(self.kernel().config().costs.syscall_ns); // the cost model's entry and exit
		host.scheduling_point(self);
	}
	// helInterruptThread and helKillThread act at a syscall's entry and exit.
	HelWord stopped_args[helsim::kernel::kSyscallArgWords];
	if (self.interrupt_pending()) {
		args = self.stop_at_entry(number, args, stopped_args);
		if (!args)
			return kHelErrThreadTerminated;
	}
	HelError result = dispatch(self, number, args, outs);
	// Deterministic mode: the exit is a decision too, so whatever the call woke or completed
	// may run before the caller continues.
	if (host.charges_time()) [[unlikely]]
		host.scheduling_point(self);
	if (self.interrupt_pending()) [[unlikely]]
		result = self.stop_at_exit(number, args, result, outs);
	return result;
}
} // namespace

extern "C" HelError helsim_syscall(std::uint32_t number, const HelWord *args, HelWord *outs) {
	namespace k = helsim::kernel;
	Thread *self = Thread::current();
	if (!self) [[unlikely]]
		return call_outside_simulation(number);
	// The common call: a registered row, in threads mode, untraced, no stop requested at entry
	// (one load each). It makes the same steps as general_syscall() with those known.
	k::Kernel &kernel = self->kernel();
	k::SyscallFn fn =
			number < helsim::kSyscallSlots ? kernel.calls().syscall_entry(number) : nullptr;
	if (!fn || kernel.host().charges_time() || self->interrupt_pending() || self->tracer())
			[[unlikely]]
		return general_syscall(*self, number, args, outs);
	KernelMode kernel_mode{*self};
	HelWord scratch[3];
	if (!outs)
		outs = scratch;
	self->syscall_counts[number].bump();
	HelError result = k::without_allocation_exceptions([&] { return fn(*self, args, outs); });
	// A stop requested while the call ran is taken at its exit.
	if (self->interrupt_pending()) [[unlikely]]
		result = self->stop_at_exit(number, args, result, outs);
	return result;
}
