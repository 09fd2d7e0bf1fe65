// Prototyping new syscalls with the machinery the built-in ones use: handle lookup in the
// caller's universe, user-memory access, completion posting and per-call accounting.
// A built-in syscall is a row of the same table; an extension row is dispatched the same way.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace helsim::kernel {
class ExtensionOperation;
class IpcQueue;
} // namespace helsim::kernel

namespace helsim::ext {

// What helsim knows of a descriptor: its type (kHelDesc*) and its rights. Managarm's
// HelDescriptorInfo has room for the type only.
struct DescriptorInfo {
	int type;
	std::uint32_t rights;
};

// The type and rights of `handle` in the calling simulated thread's universe: kHelErrNone,
// kHelErrNoDescriptor, or kHelErrIllegalState on a host thread that is not simulated.
HelError describe_descriptor(HelHandle handle, DescriptorInfo &info);

// A new handle, with a thread's full rights, to the calling simulated thread in its own
// universe: how a host thread attached to a machine hands itself to a supervisor. Like every
// thread handle, closing the last one kills the thread. kHelErrIllegalState on a host thread
// that is not simulated.
HelError self_handle(HelHandle &handle);

// An asynchronous operation that an extension call started (Caller::start). It posts exactly
// one completion to the submitter's queue, ended by whichever comes first: complete(), a
// kHelSubmitCancel naming its cancellation tag (kHelErrCancelled), or the machine's teardown
// (kHelErrCancelled). It counts as submitted from its start, as completed from that post.
// A handle is a shared reference: copy it into whatever completes the operation later (a
// timer callback, another thread, a device). No handle may outlive its machine.
class AsyncOperation {
public:
	AsyncOperation() = default;

	// Posts `payload` as the completion element: a HelSimpleResult first (its error field is the
	// operation's HelError), at most the result size given to Caller::start in all. True if
	// this call ended the operation; false (nothing posted) if a cancellation or the teardown
	// already did. Any thread may call it, simulated or not. Throws std::invalid_argument for a
	// payload smaller than a HelSimpleResult or larger than the result size, and
	// std::logic_error on an empty handle.
	bool complete(std::span<const std::byte> payload) const;
	// complete() with a HelSimpleResult{error, 0}.
	bool complete(HelError error) const;
	// Whether the operation has ended (completed, cancelled or abandoned).
	bool ended() const;
	std::uintptr_t context() const;
	explicit operator bool() const { return op_ != nullptr; }

private:
	friend class Caller;
	friend class SqSubmission;
	explicit AsyncOperation(std::shared_ptr<kernel::ExtensionOperation> op) : op_{std::move(op)} {}
	const kernel::ExtensionOperation &checked() const;

	std::shared_ptr<kernel::ExtensionOperation> op_;
};

// What Caller::start needs: the submitter's queue and context, as a built-in operation has.
struct AsyncRequest {
	HelHandle queue = kHelNullHandle;
	std::uintptr_t context = 0;
	// kHelSubmitCancel with this tag on `queue` cancels the operation; 0: not cancellable.
	std::uint64_t cancellation_tag = 0;
	// The largest payload complete() will post (checked against the queue's chunk size).
	std::size_t result_size = sizeof(HelSimpleResult);
	// Runs once if a cancellation or the teardown ends the operation, before its
	// kHelErrCancelled completion is posted, with no kernel lock held: it stops the work that
	// would complete the operation (whose complete() would return false anyway).
	std::function<void()> on_cancel{};
};

// The simulated thread that made the call.
class Caller {
public:
	explicit Caller(kernel::Thread &thread) : thread_{thread} {}

	const std::string &thread_name() const;
	unsigned cpu() const;
	// The caller's credentials, as helGetCredentials reports them to a holder of its handle.
	const std::array<char, 16> &credentials() const;

	// describe_descriptor() on a handle of the caller's universe.
	HelError descriptor_info(HelHandle handle, DescriptorInfo &info) const;

	// Posts a completion element to a queue of the caller's universe (needs kHelRightInvoke):
	// the same path every built-in asynchronous operation completes through. The element
	// counts as one completed operation. kHelErrQueueTooSmall if it can never fit a chunk.
	HelError complete(HelHandle queue, std::uintptr_t context,
			std::span<const std::byte> payload) const;

	// The kernel's checked user-memory access (page tables, faults, a pager if needed): false
	// when the memory cannot be provided (kHelErrFault, or kHelErrNoMemory without a free frame).
	bool copy_from_user(void *kernel_dst, const void *user_src, std::size_t size) const;
	bool copy_to_user(void *user_dst, const void *kernel_src, std::size_t size) const;

	// Starts an asynchronous operation on a queue of the caller's universe (needs
	// kHelRightInvoke), counted as submitted by the caller. kHelErrNoDescriptor for an unknown
	// handle, kHelErrBadDescriptor for one that is no queue, kHelErrBadRights without
	// kHelRightInvoke, kHelErrIllegalArgs if result_size is smaller than a HelSimpleResult,
	// kHelErrQueueTooSmall if it can never fit a chunk. On an error nothing was started.
	HelError start(const AsyncRequest &request, AsyncOperation &operation) const;

	// Advances the caller's virtual time by `ns` (deterministic mode; in threads mode time is
	// the host's and this does nothing): what the call costs beyond the cost model's syscall
	// entry and exit, e.g. a per-byte cost.
	void charge(std::uint64_t ns) const;

	// Runs `callback` once, `delay_ns` of the machine's time from now, on its timer queue (no
	// simulated thread runs it; it must not block), or drops it unrun if the machine shuts
	// down first. How an operation completes "later" without a thread of its own.
	void after(std::uint64_t delay_ns, std::function<void()> callback) const;

	kernel::Thread &thread() const { return thread_; }

private:
	kernel::Thread &thread_;
};

// args holds 9 argument words, outs 3 result words (see hel-stubs.h).
using SyscallHandler = HelError (*)(Caller &caller, const HelWord *args, HelWord *outs);

// Registers `number` (in [kFirstExtensionSyscall, kSyscallSlots)) on `machine`. Throws
// std::invalid_argument for a number outside that range or already taken.
void register_syscall(Machine &machine, std::uint32_t number, std::string name,
		SyscallHandler handler);

// Extension SQ opcodes lie in [kFirstExtensionSqOpcode, kSqOpcodeSlots): above Managarm's
// kHelSubmit* opcodes (the highest, kHelSubmitCancel, is 256), with room for more of them.
inline constexpr std::uint32_t kFirstExtensionSqOpcode = 512;
inline constexpr std::uint32_t kSqOpcodeSlots = 1024;

// One element of an extension SQ opcode, as its handler gets it: the queue it was submitted on
// (resolved already: the SQ belongs to it), its context, and its payload, copied out of the
// ring once (user space may overwrite the ring meanwhile).
class SqSubmission {
public:
	SqSubmission(kernel::Thread &thread, kernel::IpcQueue &queue, std::uintptr_t context,
			std::span<const std::byte> payload, std::size_t result_size)
	: thread_{thread}, queue_{queue}, context_{context}, payload_{payload}, result_size_{
																					result_size} {}

	std::span<const std::byte> payload() const { return payload_; }
	std::uintptr_t context() const { return context_; }
	// The result size the opcode was registered with.
	std::size_t result_size() const { return result_size_; }

	// Completes the operation at once: posts `payload` (a HelSimpleResult first, at most the
	// result size in all) as its completion. Throws std::invalid_argument for a payload smaller
	// than a HelSimpleResult or larger than the result size.
	void complete(std::span<const std::byte> payload) const;
	// complete() with a HelSimpleResult{error, 0}.
	void complete(HelError error) const;
	// Starts an asynchronous operation that completes later (AsyncOperation::complete), exactly
	// as Caller::start does, on this element's queue and context with the opcode's result size.
	AsyncOperation start(std::uint64_t cancellation_tag = 0,
			std::function<void()> on_cancel = {}) const;

private:
	kernel::Thread &thread_;
	kernel::IpcQueue &queue_;
	std::uintptr_t context_;
	std::span<const std::byte> payload_;
	std::size_t result_size_;
};

// Ends the submission with exactly one of: SqSubmission::complete, SqSubmission::start, or an
// error returned without either (the queue reports it as for a built-in opcode: a completion
// with context ~0 and that error). It runs on the thread that drives the queue.
using SqHandler = HelError (*)(Caller &caller, const SqSubmission &submission);

// Registers SQ opcode `opcode` (in [kFirstExtensionSqOpcode, kSqOpcodeSlots)) on `machine`:
// its elements go to `handler`, once the queue has checked that `result_size` (at least a
// HelSimpleResult) fits its chunks. Throws std::invalid_argument for an opcode outside that
// range or already taken, a missing handler, or a result size below a HelSimpleResult.
void register_sq_opcode(Machine &machine, std::uint32_t opcode, std::string name,
		std::size_t result_size, SqHandler handler);

// Supercalls (numbers >= 0x80000000) go to this handler, inline on the calling thread. A
// handler returns kSupercallTrap for a supercall it does not answer: that one traps to the
// thread's observer, as without a handler.
using SupercallHandler = std::function<HelError(Caller &caller, std::uint32_t number,
		const HelWord *args, HelWord *outs)>;
void set_supercall_handler(Machine &machine, SupercallHandler handler);
inline constexpr HelError kSupercallTrap = 0x7fff0001;

} // namespace helsim::ext
