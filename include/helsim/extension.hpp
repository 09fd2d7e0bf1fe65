// Prototyping new syscalls with the machinery the built-in ones use: handle lookup in the
// caller's universe, user-memory access, completion posting and per-call accounting.
// A built-in syscall is a row of the same table; an extension row is dispatched the same way.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace helsim::kernel {
class Reaper;
class Stream;
struct Node;
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

// Supercalls (numbers >= 0x80000000) go to this handler, inline on the calling thread. A
// handler returns kSupercallTrap for a supercall it does not answer: that one traps to the
// thread's observer, as without a handler.
using SupercallHandler = std::function<HelError(Caller &caller, std::uint32_t number,
		const HelWord *args, HelWord *outs)>;
void set_supercall_handler(Machine &machine, SupercallHandler handler);
inline constexpr HelError kSupercallTrap = 0x7fff0001;

// ---------------------------------------------------------------- Stream actions

// A new stream action type: how an action of it is decoded at submission, the result it
// writes into its exchange's completion, and what happens when it meets another action on a
// stream. Managarm's actions are rows of the same registry (docs/architecture.md, "Streams"),
// so an extension's action can pair with a built-in one (a new send with recvToBuffer).

// Extension action type numbers: [kFirstExtensionAction, kFirstExtensionAction +
// kExtensionActionCount), far above Managarm's kHelAction* numbers (0 to 11).
inline constexpr int kFirstExtensionAction = 0x1000;
inline constexpr int kExtensionActionCount = 16;

// The completion result an extension action writes: HelSimpleResult, or HelLengthResult with
// the length StreamItem::set_result_length set (0 otherwise).
enum class StreamResult { simple, length };

// One action of an exchange in flight, as an extension's functions see it.
class StreamItem {
public:
	explicit StreamItem(kernel::Node &node) : node_{node} {}

	int type() const;
	std::uint32_t flags() const;

	// At decode: copies `size` bytes of the submitter's memory at `user_buffer` into the
	// kernel, through the kernel's checked user-memory access (faults resolved on the
	// submitting thread), as a buffered send does; the bytes are the item's data from then on.
	// Once per item: kHelErrIllegalState after a capture of one byte or more;
	// kHelErrIllegalArgs beyond kMaxCapture bytes; kHelErrNoMemory; kHelErrFault when the
	// memory cannot be read (the item then remembers the fault: deliver() fails both sides as
	// for a faulting send, so decode may return kHelErrNone and let the pairing report it).
	HelError capture(Caller &caller, const void *user_buffer, std::size_t size);
	static constexpr std::size_t kMaxCapture = std::size_t{16} << 20;
	// The captured bytes (empty if nothing was captured); the item's own functions may
	// rewrite them in place.
	std::span<std::byte> data();

	// The length a StreamResult::length result reports.
	void set_result_length(std::size_t length);

	kernel::Node &node() const { return node_; }

private:
	kernel::Node &node_;
};

// Two actions that met on a stream; a pair function finishes both, through this.
class StreamPair {
public:
	StreamPair(kernel::Stream &stream, kernel::Node &first, kernel::Node &second,
			kernel::Reaper &reaper)
	: stream_{stream}, first_{first}, second_{second}, reaper_{reaper} {}

	// The first is of the first type the pair was registered with.
	StreamItem first() const { return StreamItem{first_}; }
	StreamItem second() const { return StreamItem{second_}; }

	// Ends one item with `error` (its result's error field). Call it exactly once per item,
	// unless deliver() finishes the item.
	void finish(StreamItem item, HelError error);
	// Delivers `from`'s captured data to `to`, a built-in receive, exactly as a buffered
	// sendFromBuffer would, and finishes both: recvInline takes it into its completion,
	// recvToBuffer into its buffer through the kernel's checked copy (faulting pages in,
	// through a pager if need be, after the pairing). Data longer than the receive's room:
	// both kHelErrBufferTooSmall; a fault capturing `from`: kHelErrFault and
	// kHelErrRemoteFault; `to` of a type sendFromBuffer does not pair with: what a send
	// meeting it gets (kHelErrTransmissionMismatch on both; a dismiss dismisses).
	void deliver(StreamItem from, StreamItem to);

private:
	kernel::Stream &stream_;
	kernel::Node &first_;
	kernel::Node &second_;
	kernel::Reaper &reaper_;
};

// Validates `action` at submission and captures what the item needs. An error refuses the
// whole submission (the exchange never completes), as a built-in's does.
using StreamDecodeFunction = HelError (*)(Caller &caller, const HelAction &action, StreamItem item);
using StreamPairFunction = void (*)(StreamPair &pair);

// Registers action type `type` (in the extension range) on `machine`; its actions accept no
// item flags but kHelItemChain, and meet dismiss like every action. Throws
// std::invalid_argument for a type outside the range or already registered, or a null name
// or decode. `name` names the action in reports and must outlive the machine (a literal).
void register_stream_action(Machine &machine, int type, const char *name, StreamResult result,
		StreamDecodeFunction decode);
// Registers what happens when an action of `first` meets one of `second` (either order;
// `first` may be `second`, or a built-in kHelAction*). Throws std::invalid_argument for an
// unregistered type, dismiss, a null function, or a pair that has a rule already (built-ins
// included: a pair the kernel already knows cannot be replaced).
void register_stream_pair(Machine &machine, int first, int second, StreamPairFunction pair);

} // namespace helsim::ext
