// The kernel-facing half of the extension API (<helsim/extension.hpp> is the user-facing
// contract, which includes this and adds the registrations that take a Machine): what an
// extension's handlers use (Caller, AsyncOperation, SqSubmission, KernelObject, ObjectRef,
// StreamItem, StreamPair), the ids, ranges and rights masks. It names no Machine, so the
// kernel, which implements it, includes it without seeing the host API above it
// (docs/architecture.md, "Layers"; scripts/check-layering.sh keeps it so).
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

#include <helsim/hel.h>

namespace helsim::ext {
class ObjectKindId;
struct ObjectKindSpec;
} // namespace helsim::ext

namespace helsim::kernel {
class ExtensionOperation;
class IpcQueue;
class Kernel;
class Object;
class Reaper;
class Stream;
class Thread;
struct Node;

// The kernel's half of ext::register_object_kind (extension.hpp): adds the kind to `kernel`'s
// registry, with the same checks and errors.
ext::ObjectKindId add_object_kind(Kernel &kernel, ext::ObjectKindSpec spec);
} // namespace helsim::kernel

namespace helsim::ext {

class KernelObject;
template <typename T>
class ObjectRef;
template <typename T>
struct Resolved;

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
	// already did. Any thread may call it, simulated or not (CompletedBy says which will: in
	// deterministic mode a plain host thread's call waits for an idle point). Throws
	// std::invalid_argument for a payload smaller than a HelSimpleResult or larger than the result
	// size, and std::logic_error on an empty handle.
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

// Who calls an asynchronous operation's complete().
enum class CompletedBy {
	// The machine's own schedule: a simulated thread (attached ones too), a Caller::after
	// callback, a device's callback. While the operation is pending the machine does not wait
	// for it: if every simulated thread waits and no timer is armed, Machine::run reports the
	// machine stuck.
	machine,
	// A plain host thread, outside the machine's schedule (a thread of the extension's own,
	// a host device model). Until the operation ends (completed, cancelled, abandoned) it
	// counts as activity, as an armed timer does: Machine::run waits for the completion
	// instead of reporting its waiter stuck, and waits for good if it never comes (complete,
	// or cancel it with kHelSubmitCancel, or let the teardown abandon it). In deterministic
	// mode the completion is delivered at the machine's next idle point (nothing runnable, no
	// timer armed), where the scheduler waits for the oldest such operation pending:
	// complete() blocks its host thread until then, so a seed gives the same schedule
	// whenever the host thread calls it. Its host threads must not make one completion wait
	// for the machine's reaction to a later one.
	host_thread,
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
	// would complete the operation (whose complete() would return false anyway). In
	// deterministic mode a host thread blocked in complete() has returned (false) by then.
	std::function<void()> on_cancel{};
	CompletedBy completed_by = CompletedBy::machine;
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

	// The machine's time in ns, as helGetClock reports it to the caller: the caller's virtual
	// time in deterministic mode, the host's monotonic clock in threads mode.
	std::uint64_t now() const;

	// Runs `callback` once, `delay_ns` of the machine's time from now, on its timer queue (no
	// simulated thread runs it; it must not block), or drops it unrun if the machine shuts
	// down first. How an operation completes "later" without a thread of its own.
	void after(std::uint64_t delay_ns, std::function<void()> callback) const;

	kernel::Thread &thread() const { return thread_; }

	// Creates an object of `kind`, an extension kind of the caller's machine, as
	// `new T(args...)` (T derives from KernelObject). The reference returned is the only
	// one until the object is attached. Throws std::invalid_argument for a kind that is not
	// an extension kind of this machine, std::bad_alloc when the kernel cannot allocate the
	// object (FaultPoint::object_creation): escaping a handler, that is kHelErrNoMemory.
	template <typename T, typename... Args>
	ObjectRef<T> create(ObjectKindId kind, Args &&...args) const;

	// A new handle to `object` in the caller's universe, with `rights` (bits outside hel's
	// kHelRight* and the object's kind's own rights are dropped), or with the kind's default
	// rights. kHelErrNoMemory when the universe's handle space is exhausted.
	HelError attach(const KernelObject &object, std::uint32_t rights, HelHandle &handle) const;
	HelError attach(const KernelObject &object, HelHandle &handle) const;

	// The object `handle` names in the caller's universe, with the descriptor's rights:
	// kHelErrNoDescriptor for an unknown, closed or forged handle, then kHelErrBadDescriptor
	// when the object is not a T (a built-in object, or another extension kind's), then
	// kHelErrBadRights when `required` is not a subset of the descriptor's rights.
	template <typename T>
	Resolved<T> resolve(HelHandle handle, std::uint32_t required) const;

	// The kind registered under `name` on the caller's machine (built-in or extension), or
	// nothing: how a handler finds its kind on whichever machine calls it.
	std::optional<ObjectKindId> object_kind(std::string_view name) const;

private:
	void adopt(ObjectKindId kind, std::unique_ptr<KernelObject> object) const;
	HelError lookup(HelHandle handle, ObjectRef<KernelObject> &object, std::uint32_t &rights) const;

	kernel::Thread &thread_;
};

// args holds 9 argument words, outs 3 result words (see hel-stubs.h).
using SyscallHandler = HelError (*)(Caller &caller, const HelWord *args, HelWord *outs);

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
	AsyncOperation start(std::uint64_t cancellation_tag = 0, std::function<void()> on_cancel = {},
			CompletedBy completed_by = CompletedBy::machine) const;

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

// Supercalls (numbers >= 0x80000000) go to this handler, inline on the calling thread. A
// handler returns kSupercallTrap for a supercall it does not answer: that one traps to the
// thread's observer, as without a handler.
using SupercallHandler = std::function<HelError(Caller &caller, std::uint32_t number,
		const HelWord *args, HelWord *outs)>;
inline constexpr HelError kSupercallTrap = 0x7fff0001;

// ---------------------------------------------------------------- Object kinds
//
// An extension defines objects of a kind of its own, with handles and rights like a built-in's:
// register the kind once per machine, create objects from a syscall handler, attach them to
// the caller's universe, resolve handles back to them. helTransferDescriptor and the push/pull
// descriptor actions move them as any descriptor (rights only ever narrow), helDescriptorInfo
// reports the kind's descriptor type, and leak reports and object counts name the kind.

// Rights bits 16..31 belong to object kinds: each kind gives them a meaning of its own. hel's
// kHelRight* bits (0..13) keep theirs for every kind: helTransferDescriptor out of a universe
// needs kHelRightGrant on that universe's handle whatever the kind moved.
inline constexpr std::uint32_t kKindRightsMask = 0xffff0000u;
// The n-th right of a kind's own, n in [0, 16).
constexpr std::uint32_t kind_right(unsigned n) { return std::uint32_t{1} << (16 + n); }

struct ObjectKindSpec {
	std::string name;         // names the kind in leak reports, object counts and traces
	std::uint32_t rights = 0; // the kind's own rights: bits of kKindRightsMask
	// The rights Caller::attach gives without an explicit mask: kHelRight* bits and `rights`.
	std::uint32_t default_rights = 0;
	int descriptor_type = kHelDescNone; // the type helDescriptorInfo reports for its handles
};

// A kind registered on one machine (another machine may number its kinds differently).
class ObjectKindId {
public:
	std::uint32_t value() const { return value_; }
	friend bool operator==(ObjectKindId, ObjectKindId) = default;

private:
	friend ObjectKindId kernel::add_object_kind(kernel::Kernel &, ext::ObjectKindSpec);
	friend class KernelObject;
	friend class Caller;
	explicit ObjectKindId(std::uint32_t value) : value_{value} {}
	std::uint32_t value_;
};

// The base of an extension's objects. The kernel owns each one: Caller::create makes it, and
// its destructor, the kind's teardown hook, runs exactly once, when the last handle to it is
// closed and the last ObjectRef dropped (at the latest when the machine is destroyed, which
// closes every handle; an ObjectRef must not outlive its machine).
class KernelObject {
public:
	KernelObject(const KernelObject &) = delete;
	KernelObject &operator=(const KernelObject &) = delete;
	virtual ~KernelObject() = default;

	ObjectKindId kind() const;

	// Machine teardown, with the object still alive: complete whatever still waits inside it
	// (with an error), so that the references such work holds are released.
	virtual void abandon() {}

protected:
	KernelObject() = default;

private:
	friend class Caller;
	friend void retain_object(const KernelObject &object);
	friend void release_object(const KernelObject &object);
	kernel::Object *core_ = nullptr; // the kernel object that counts its references
};

void retain_object(const KernelObject &object);
void release_object(const KernelObject &object);

// An owning reference to an extension object: it keeps the object alive as a handle does.
template <typename T>
class ObjectRef {
public:
	ObjectRef() = default;
	ObjectRef(const ObjectRef &o) : p_{o.p_} {
		if (p_)
			retain_object(*p_);
	}
	ObjectRef(ObjectRef &&o) noexcept : p_{std::exchange(o.p_, nullptr)} {}
	template <std::derived_from<T> U>
	ObjectRef(ObjectRef<U> &&o) noexcept : p_{std::exchange(o.p_, nullptr)} {}
	ObjectRef &operator=(ObjectRef o) noexcept {
		std::swap(p_, o.p_);
		return *this;
	}
	~ObjectRef() {
		if (p_)
			release_object(*p_);
	}

	T *get() const { return p_; }
	T *operator->() const { return p_; }
	T &operator*() const { return *p_; }
	explicit operator bool() const { return p_ != nullptr; }

private:
	template <typename>
	friend class ObjectRef;
	friend class Caller;
	// Takes over a reference already counted.
	static ObjectRef adopt(T *p) {
		ObjectRef r;
		r.p_ = p;
		return r;
	}
	T *p_ = nullptr;
};

// What Caller::resolve found: the object and the descriptor's rights, or the error.
template <typename T>
struct Resolved {
	HelError error = kHelErrNone;
	ObjectRef<T> object;
	std::uint32_t rights = 0;
	explicit operator bool() const { return error == kHelErrNone; }
};

template <typename T, typename... Args>
ObjectRef<T> Caller::create(ObjectKindId kind, Args &&...args) const {
	static_assert(std::derived_from<T, KernelObject>, "extension objects derive from KernelObject");
	auto object = std::make_unique<T>(std::forward<Args>(args)...);
	T *p = object.get();
	adopt(kind, std::move(object));
	return ObjectRef<T>::adopt(p);
}

template <typename T>
Resolved<T> Caller::resolve(HelHandle handle, std::uint32_t required) const {
	Resolved<T> result;
	ObjectRef<KernelObject> any;
	std::uint32_t rights = 0;
	if (HelError e = lookup(handle, any, rights); e != kHelErrNone) {
		result.error = e;
		return result;
	}
	// The exact type first: one comparison, where dynamic_cast walks the class hierarchy.
	KernelObject &found = *any.get();
	T *typed = typeid(found) == typeid(T) ? static_cast<T *>(&found) : dynamic_cast<T *>(&found);
	if (!typed) {
		result.error = kHelErrBadDescriptor;
		return result;
	}
	if ((rights & required) != required) {
		result.error = kHelErrBadRights;
		return result;
	}
	any.p_ = nullptr;
	result.object = ObjectRef<T>::adopt(typed);
	result.rights = rights;
	return result;
}

// ---------------------------------------------------------------- Stream actions

// A new stream action type: how an action of it is decoded at submission, the result it
// writes into its exchange's completion, and what happens when it meets another action on a
// stream. Managarm's actions are rows of the same registry (docs/architecture.md, "Streams"),
// so an extension's action can pair with a built-in one (a new send with recvToBuffer).

// Extension action type numbers: [kFirstExtensionAction, kFirstExtensionAction +
// kExtensionActionCount), far above Managarm's kHelAction* numbers (0 to 11).
inline constexpr int kFirstExtensionAction = 0x1000;
inline constexpr int kExtensionActionCount = 16;

// The completion result an extension action writes: HelSimpleResult, HelLengthResult with
// the length StreamItem::set_result_length set (0 otherwise), or HelHandleResult with the
// handle StreamPair::hand_over attached into the item's submitter's universe (kHelNullHandle
// otherwise).
enum class StreamResult { simple, length, handle };

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
	// capture() after `headroom` zeroed kernel bytes: data() is the headroom, then the `size`
	// copied bytes, and the item's functions fill the headroom (a header a receive gets ahead
	// of the sender's bytes). The errors of capture(), kHelErrIllegalArgs when headroom and
	// size together exceed kMaxCapture.
	HelError capture(Caller &caller, const void *user_buffer, std::size_t size,
			std::size_t headroom);
	static constexpr std::size_t kMaxCapture = std::size_t{16} << 20;
	// The captured bytes (empty if nothing was captured); the item's own functions may
	// rewrite them in place.
	std::span<std::byte> data();

	// The length a StreamResult::length result reports.
	void set_result_length(std::size_t length);

	// At decode: the object `handle` names in the submitter's universe, with the descriptor's
	// rights masked by `rights_mask` (a pushDescriptor's exposed mask), kept by the item as a
	// pushDescriptor keeps its descriptor: StreamPair::hand_over passes it on, and it is
	// released with the item if it never pairs. Rights never grow. kHelErrNoDescriptor for an
	// unknown, closed or forged handle (the lookup pushDescriptor makes), kHelErrBadRights when
	// `required_rights` is not a subset of the descriptor's rights. Once per item
	// (kHelErrIllegalState after a capture_descriptor or capture_pages).
	HelError capture_descriptor(Caller &caller, HelHandle handle, std::uint32_t required_rights,
			std::uint32_t rights_mask = ~std::uint32_t{0});
	// At decode: capture_descriptor() of the memory object `memory` (needs kHelRightRead and
	// kHelRightWrite), and the range [offset, offset + size) of it whose pages hand_over
	// moves, zero-copy, into a new memory object that the receive gets instead (with the
	// captured rights). From then on the range reads as fresh zero pages in the sender's
	// object, through every mapping of it, old or new; until then the sender may still write
	// it. Checks, in this order: kHelErrIllegalArgs when offset or size is not page-aligned, or
	// size is 0 or above kMaxCapture; kHelErrNoDescriptor; kHelErrUnsupportedOperation for memory
	// whose frames cannot move (all but lazily allocated helAllocateMemory memory: continuous,
	// copy-on-write, managed, swappable, indirect, physical memory and slices);
	// kHelErrBadDescriptor for a handle that is no memory; kHelErrBadRights; kHelErrOutOfBounds
	// for a range past the object's end; kHelErrIllegalState after a capture.
	HelError capture_pages(Caller &caller, HelHandle memory, std::size_t offset, std::size_t size,
			std::uint32_t rights_mask = ~std::uint32_t{0});

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

	// The machine's time in ns when the pair function runs (as Caller::now() on the thread
	// whose submission made the pair): virtual time in deterministic mode.
	std::uint64_t now() const;

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
	// Hands `from`'s captured descriptor (capture_descriptor) to `to` and finishes both, as a
	// pushDescriptor meeting `to` would: a built-in pullDescriptor gets it exactly as from a
	// push (kHelErrBadRights if it requires rights the captured ones lack; the attach's errors,
	// kHelErrNoMemory for a full handle table, kHelErrThreadTerminated when the universe is
	// gone), and so does an extension item with a StreamResult::handle result (it requires no
	// rights); `from` finishes kHelErrNone. `to` of another type gets what a push meeting it
	// gets (kHelErrTransmissionMismatch on both; a dismiss dismisses). `from` without a
	// captured descriptor: kHelErrIllegalState on both.
	// With capture_pages, the pages move when a receive that accepts the rights meets `from`
	// (not on a mismatch, a dismiss or kHelErrBadRights: the sender keeps them), before the
	// attach: a receive whose attach then fails loses them, as Mach's out-of-line memory with
	// deallocate. A move that fails ends both with its error: kHelErrIllegalState while a range
	// of the sender's memory is locked, kHelErrNoMemory when the new object cannot be made.
	void hand_over(StreamItem from, StreamItem to);

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

} // namespace helsim::ext
