// IpcQueue: Managarm's shared-memory completion ring (CQ) and submission ring (SQ).
//
// Memory: [HelQueue @0][chunk i @ 64 + i*R], R = roundup64(8 + chunkSize); chunks
// 0..numChunks-1 form the CQ, the next numSqChunks the SQ. The kernel reaches it through the
// direct map, user space through a helMapMemory mapping of the queue handle.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "kernel/core/object.hpp"
#include "kernel/core/spinlock.hpp"
#include "kernel/memory/allocated_memory.hpp"

namespace helsim::kernel {

class Thread;

inline constexpr std::uint32_t kQueueDefaultRights = kHelRightRead | kHelRightWrite |
		kHelRightInvoke | kHelRightAssign | kHelRightWait | kHelRightSignal;

inline constexpr std::uintptr_t kSubmitErrorContext = ~std::uintptr_t{0};

// One piece of a completion element; each piece is padded to 8 bytes in the ring.
struct QueueSource {
	const void *data;
	std::size_t size;
};

inline constexpr std::size_t pad8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

class IpcQueue;

// Submits one SQ element for `self`, its operation to complete on `queue`: kHelErrNone, or the
// submission error that the queue reports as a context ~0 completion. The syscall layer's SQ
// dispatch (syscalls.cpp), handed to the queue when helCreateQueue creates it: the queue parses
// its SQ but does not call up into the layer that implements the opcodes.
using SqSubmit = HelError (*)(Thread &self, IpcQueue &queue, unsigned opcode,
		std::uintptr_t context, const std::byte *payload, std::size_t length);

// What a thread blocked in helDriveQueue waits on (sim::WaitReason::what; the address is the
// caller's handle of the queue). The deadlock report recognizes the wait by this pointer.
inline constexpr char kDriveQueueWait[] = "helDriveQueue on queue handle";

// An asynchronous operation that kHelSubmitCancel can reach through its tag.
class Cancellable {
public:
	virtual ~Cancellable() = default;
	// The registry has handed this operation over for cancellation (no lock held).
	virtual void cancel() = 0;
	std::uint64_t cancellation_tag = 0;
};

class IpcQueue final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::queue;

	// kHelErrIllegalArgs for bad parameters, kHelErrNoMemory without physical memory. `submit`
	// takes every element of its SQ.
	static HelError create(Kernel &kernel, const HelQueueParameters &params, SqSubmit submit,
			Ref<IpcQueue> &out);
	~IpcQueue() override;

	// The ring's memory: what helMapMemory on a queue handle maps.
	const Ref<AllocatedMemory> &memory() const { return memory_; }
	void for_each_reference(const std::function<void(Object &)> &f) override { f(*memory_); }
	const char *describe() const override { return "queue"; }

	// Whether a completion with this much payload (sum of padded pieces) can ever fit.
	bool fits(std::size_t payload) const { return sizeof(HelElement) + payload <= chunk_size_; }

	// Appends a completion element. Never blocks: without room and without a supplied chunk
	// the element waits in the kernel (in posting order) until user space supplies one.
	// `is_operation` says whether this completes a submitted operation (vs. a submission
	// error report), for the exactly-once accounting.
	void post(std::span<const QueueSource> sources, std::uintptr_t context, bool is_operation);
	// post() without fault injection: a delayed completion arriving.
	void post_now(std::span<const QueueSource> sources, std::uintptr_t context, bool is_operation);
	void post_simple(HelError error, std::uintptr_t context, bool is_operation = true) {
		HelSimpleResult result{error, 0};
		QueueSource source{&result, sizeof(result)};
		post({&source, 1}, context, is_operation);
	}
	// post_simple() of an operation that `self`, the calling thread, completes in its own
	// submission. When `self` consumes this queue's SQ, the element is staged with one
	// fixed-size store: no sources loop, and no Thread::current() to tell who is calling.
	// Inline, so that an SQ handler that completes at once needs no call and no stack frame.
	void complete_simple(Thread &self, HelError error, std::uintptr_t context) {
		constexpr std::size_t size = sizeof(HelElement) + sizeof(HelSimpleResult);
		static_assert(sizeof(HelSimpleResult) == pad8(sizeof(HelSimpleResult)));
		std::uint64_t end = staged_end_.load(std::memory_order_relaxed);
		// Every rare case in one branch to one out-of-line call: a caller that is not the
		// consumer, a stage without room, and (simple_limit_ 0) the machine's own reasons.
		// create() refuses a chunk too small for one simple result, so the limit alone says
		// whether this one fits.
		if (batch_thread_.load(std::memory_order_relaxed) != &self ||
				(end & kStagedBytes) + size > simple_limit_) [[unlikely]] {
			complete_simple_slowly(self, error, context);
			return;
		}
		std::byte *at = staged_.get() + (end & kStagedBytes);
		// Each field stored on its own, straight into the stage: a struct assembled on the stack
		// and copied whole is read back wider than it was written, which stalls store forwarding.
		HelElement element{sizeof(HelSimpleResult), 0, reinterpret_cast<void *>(context)};
		HelSimpleResult result{error, 0};
		std::memcpy(at, &element, sizeof(element));
		std::memcpy(at + sizeof(element), &result, sizeof(result));
		staged_end_.store(end + size + kStagedElement, std::memory_order_release);
	}
	// The chunk size user space chose (helCreateQueue's chunkSize).
	std::size_t chunk_size() const { return chunk_size_; }

	// helDriveQueue: deliver waiting completions into newly supplied chunks, then consume
	// the SQ, submitting every element on behalf of `self`.
	void drive(Thread &self);
	// The SQ's consumer is about to block inside a submission (Thread::block): the completions
	// it has posted in this pass are written to the CQ and announced now, not at its end, since
	// whoever waits for them (the very pager it waits for, perhaps) must not wait for the pass
	// to finish.
	void announce_batch();
	// Blocks `self` until userNotify & ~mask is non-zero.
	// `handle` (the caller's handle of this queue) names the wait in a deadlock report.
	// kHelErrCancelled if the thread is interrupted first.
	HelError wait_user_notify(Thread &self, std::uint32_t mask, HelHandle handle = kHelNullHandle);
	// helAlertQueue.
	void alert();

	// Cancellation registry (per queue, tags chosen by user space; duplicates allowed).
	void register_cancellable(Cancellable &op);
	// False if a cancellation already took the operation (then it must not complete it).
	bool unregister_cancellable(Cancellable &op);
	void cancel(std::uint64_t tag);

	// Completions waiting in the kernel for a CQ chunk (for the stuck report).
	std::size_t waiting_completions();

	struct Accounting {
		std::uint64_t completed, posted;
	};
	Accounting accounting();

private:
	template <typename T, typename... Args>
	friend Ref<T> make_object(Args &&...args);
	IpcQueue(Kernel &kernel, const HelQueueParameters &params, SqSubmit submit,
			Ref<AllocatedMemory> memory);

	HelQueue *header() const { return header_; }
	HelChunk *chunk(unsigned index) const {
		return reinterpret_cast<HelChunk *>(
				reinterpret_cast<char *>(header_) + 64 + index * chunk_stride_);
	}

	// CQ producer; cq_lock_ held. reserve() returns where an element with `payload` bytes goes
	// (moving on to the next chunk if this one is full), or nullptr without room; commit()
	// publishes it. Both add the userNotify bits they owe to `bits`, which the caller announces
	// after releasing cq_lock_: a wake-up may be a host syscall, and other CPUs' producers
	// would spin behind it.
	char *reserve(std::size_t payload, int &bits);
	void commit(std::size_t payload, bool is_operation, int &bits);
	void append_waiting(std::span<const QueueSource> sources, std::size_t payload,
			std::uintptr_t context, bool is_operation);
	void flush_waiting(); // what waits, into the chunks supplied since
	void notify_user(int bits);
	void announce(int bits); // no lock held
	void contract_violation();
	void delay(std::span<const QueueSource> sources, std::uintptr_t context);
	void complete_simple_slowly(Thread &self, HelError error, std::uintptr_t context);

	// The SQ consumer's own completions (see staged_); only the consumer calls these.
	bool stage(std::span<const QueueSource> sources, std::size_t payload, std::uintptr_t context);
	std::byte *stage_room(std::size_t size, std::uint64_t &end);
	int flush_staged();
	void take_staged(int &bits); // cq_lock_ held; by any producer
	bool consuming() const;      // whether the calling thread is the SQ's consumer in a pass

	// SQ consumer; sq_mutex_ held (see drive()). consume_pass() consumes until the user stops
	// publishing; `bits` receives the notifications its own completions deferred (written
	// when the pass ends, also when a teardown unwinds it).
	void consume_pass(Thread &self, int &bits);
	void consume_sq(Thread &self);
	void submit_element(Thread &self, bool traced, const HelElement &element,
			const std::byte *payload);

	const SqSubmit submit_;
	const unsigned num_chunks_;
	const unsigned num_sq_chunks_;
	const std::size_t chunk_size_;
	const std::size_t chunk_stride_;
	const Ref<AllocatedMemory> memory_;
	HelQueue *header_;

	// CQ producer state. Completions may come from every CPU; the critical section is one
	// element copy.
	struct Waiting {
		Waiting *next;
		std::uintptr_t context;
		std::size_t size;
		bool is_operation;
		alignas(8) std::byte payload[];
	};
	SpinLock cq_lock_;
	int cq_chunk_ = -1;
	// Exactly-once accounting, kept here (not in shared kernel counters) so that producers
	// on different queues never touch a common cache line.
	std::uint64_t operations_completed_ = 0; // guarded by cq_lock_
	std::uint64_t completions_posted_ = 0;   // guarded by cq_lock_
	std::size_t cq_progress_ = 0;
	Waiting *waiting_head_ = nullptr;
	Waiting *waiting_tail_ = nullptr;
	std::size_t waiting_ = 0; // the list's length

	// SQ consumer state: the kernel's own copy of the SQ chunk links (user memory may lie).
	SpinLock sq_mutex_; // only try_lock_ordered(), by the one thread consuming the SQ
	std::atomic<bool> sq_pending_{false}; // a drive asked for a pass (see drive())
	unsigned sq_current_ = 0;
	std::size_t sq_consumed_ = 0;
	unsigned sq_tail_ = 0;
	std::vector<int> sq_next_;
	// While a thread consumes the SQ, the operations it completes itself (inline, in their
	// submission) are staged here, laid out as CQ elements, and written to the CQ with one
	// copy under one cq_lock_ and announced with one userNotify RMW when the pass ends or the
	// consumer blocks, instead of a lock and an RMW each. One chunk's worth: a pass that posts
	// more writes what is staged first. Only the consumer stages; whoever writes to the CQ
	// takes what is staged first, under cq_lock_, so that no completion overtakes one that
	// happened before it (a message the consumer received inline, then the next one, received
	// on another CPU). staged_end_ is what has been staged (bytes, plus kStagedElement per
	// element), published with release by the consumer; staged_taken_ is how much of it has
	// gone to the CQ.
	static constexpr std::uint64_t kStagedBytes = 0xffffffff;
	static constexpr std::uint64_t kStagedElement = std::uint64_t{1} << 32;
	std::atomic<Thread *> batch_thread_{nullptr}; // set under sq_mutex_
	std::unique_ptr<std::byte[]> staged_;         // chunk_size_ bytes if there is an SQ
	std::atomic<std::uint64_t> staged_end_{0};
	std::uint64_t staged_taken_ = 0; // guarded by cq_lock_
	int pass_bits_ = 0;              // userNotify bits the pass owes, announced when it ends
	// complete_simple()'s stage limit: chunk_size_, or 0 on a machine where every simple
	// completion takes the generic path (injected delays, a tracer, time charged per scheduling
	// event). All three are fixed before the kernel exists, so they are looked at once, here,
	// not per element.
	const std::size_t simple_limit_;

	// Threads blocked in helDriveQueue(kHelDriveWait).
	SpinLock waiters_mutex_;
	std::vector<Thread *> waiters_;
	std::atomic<int> waiter_count_{0};

	std::mutex cancel_mutex_;
	std::unordered_multimap<std::uint64_t, Cancellable *> cancellable_;
};

} // namespace helsim::kernel
