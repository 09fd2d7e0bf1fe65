#include "kernel/ipc/queue.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "kernel/core/allocation_errors.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {
namespace {

// User space shares these words; every kernel access is atomic.
int load_acquire(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store_release(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

constexpr std::size_t kMaxChunkSize = static_cast<std::size_t>(kHelProgressMask);
constexpr unsigned kMaxChunks = 4096;

} // namespace

HelError IpcQueue::create(Kernel &kernel, const HelQueueParameters &params, SqSubmit submit,
		Ref<IpcQueue> &out) {
	if (params.flags)
		return kHelErrIllegalArgs;
	// A ring needs a second chunk to move to before it can retire the first one.
	if (params.numChunks < 2 || params.numChunks > kMaxChunks)
		return kHelErrIllegalArgs;
	if (params.numSqChunks == 1 || params.numSqChunks > kMaxChunks)
		return kHelErrIllegalArgs;
	if (params.chunkSize < sizeof(HelElement) + sizeof(HelSimpleResult) ||
			params.chunkSize > kMaxChunkSize || params.chunkSize % 8)
		return kHelErrIllegalArgs;
	std::size_t stride = (sizeof(HelChunk) + params.chunkSize + 63) & ~std::size_t{63};
	std::size_t size = 64 + (params.numChunks + params.numSqChunks) * stride;
	size = (size + sim::kPageSize - 1) & ~(sim::kPageSize - 1);
	if (kernel.fail_at(FaultPoint::queue_chunks)) [[unlikely]]
		return kHelErrNoMemory;
	Ref<AllocatedMemory> memory;
	if (HelError e = AllocatedMemory::create(kernel, size, kHelAllocContinuous, 0, memory);
			e != kHelErrNone)
		return e;
	out = make_object<IpcQueue>(kernel, params, submit, std::move(memory));
	return kHelErrNone;
}

IpcQueue::IpcQueue(Kernel &kernel, const HelQueueParameters &params, SqSubmit submit,
		Ref<AllocatedMemory> memory)
: Object{kernel, ObjectKind::queue}, submit_{submit}, num_chunks_{params.numChunks},
  num_sq_chunks_{params.numSqChunks}, chunk_size_{params.chunkSize},
  chunk_stride_{(sizeof(HelChunk) + params.chunkSize + 63) & ~std::size_t{63}},
  memory_{std::move(memory)}, header_{static_cast<HelQueue *>(
									  kernel.host().physical_memory().direct(memory_->base()))},
  simple_limit_{kernel.config().inject.delay_completion_ppm || kernel.host().tracer() ||
						  kernel.host().charges_time()
				  ? 0
				  : chunk_size_} {
	// The kernel owns the SQ links: it pre-links every SQ chunk and publishes the first.
	if (num_sq_chunks_) {
		sq_next_.assign(num_chunks_ + num_sq_chunks_, -1);
		for (unsigned i = num_chunks_; i + 1 < num_chunks_ + num_sq_chunks_; ++i) {
			sq_next_[i] = static_cast<int>(i + 1);
			chunk(i)->next = static_cast<int>(i + 1) | kHelNextPresent;
		}
		sq_current_ = num_chunks_;
		sq_tail_ = num_chunks_ + num_sq_chunks_ - 1;
		store_release(&header_->sqFirst, static_cast<int>(num_chunks_) | kHelNextPresent);
		staged_ = std::make_unique<std::byte[]>(chunk_size_);
	}
}

IpcQueue::~IpcQueue() {
	while (Waiting *w = waiting_head_) {
		waiting_head_ = w->next;
		w->~Waiting();
		::operator delete(w);
	}
	kernel().retire_accounting(accounting());
}

IpcQueue::Accounting IpcQueue::accounting() {
	std::lock_guard lock{cq_lock_};
	return {operations_completed_, completions_posted_};
}

std::size_t IpcQueue::waiting_completions() {
	std::lock_guard lock{cq_lock_};
	return waiting_;
}

// ---------------------------------------------------------------- CQ producer

void IpcQueue::notify_user(int bits) {
	int old = __atomic_fetch_or(&header_->userNotify, bits, __ATOMIC_SEQ_CST);
	// Waiters are woken only when a bit goes from 0 to 1: user space clears the bits it has
	// seen before it waits, so a bit that stays set has already been noticed.
	if ((old & bits) == bits)
		return;
	if (waiter_count_.load(std::memory_order_seq_cst) == 0)
		return;
	// Under waiters_mutex_ (never cq_lock_): a registered waiter cannot leave, nor its thread
	// end, while it is being woken.
	std::lock_guard lock{waiters_mutex_};
	for (Thread *t : waiters_)
		t->wake();
}

inline bool IpcQueue::consuming() const {
	Thread *consumer = batch_thread_.load(std::memory_order_relaxed);
	return consumer && consumer == Thread::current();
}

void IpcQueue::announce(int bits) {
	if (!bits)
		return;
	// The consumer is not waiting while it consumes: its bits are announced once, at the end
	// of the pass (or when it blocks).
	if (consuming())
		pass_bits_ |= bits;
	else
		notify_user(bits);
}

void IpcQueue::contract_violation() { notify_user(kHelUserNotifyError); }

char *IpcQueue::reserve(std::size_t payload, int &bits) {
	if (cq_chunk_ < 0) {
		int first = load_acquire(&header_->cqFirst);
		if (!(first & kHelNextPresent))
			return nullptr;
		unsigned index = static_cast<unsigned>(first & ~kHelNextPresent);
		if (index >= num_chunks_) {
			bits |= kHelUserNotifyError;
			return nullptr;
		}
		cq_chunk_ = static_cast<int>(index);
		cq_progress_ = 0;
	}
	for (;;) {
		HelChunk *current = chunk(static_cast<unsigned>(cq_chunk_));
		if (cq_progress_ + sizeof(HelElement) + payload <= chunk_size_)
			return current->buffer + cq_progress_;
		// No room: (1) mark the chunk Full so the consumer can tell a stall from a slow
		// producer, (2) move on only once user space has linked a next chunk, (3) then retire
		// this one with Done.
		int progress = static_cast<int>(cq_progress_);
		store_release(&current->progressFutex, progress | kHelProgressFull);
		bits |= kHelUserNotifyCqProgress;
		int next = load_acquire(&current->next);
		if (!(next & kHelNextPresent))
			return nullptr;
		unsigned index = static_cast<unsigned>(next & ~kHelNextPresent);
		if (index >= num_chunks_) {
			bits |= kHelUserNotifyError;
			return nullptr;
		}
		store_release(&current->progressFutex, progress | kHelProgressFull | kHelProgressDone);
		cq_chunk_ = static_cast<int>(index);
		cq_progress_ = 0;
	}
}

void IpcQueue::commit(std::size_t payload, bool is_operation, int &bits) {
	cq_progress_ += sizeof(HelElement) + payload;
	store_release(&chunk(static_cast<unsigned>(cq_chunk_))->progressFutex,
			static_cast<int>(cq_progress_));
	bits |= kHelUserNotifyCqProgress;
	++completions_posted_;
	operations_completed_ += is_operation;
}

namespace {
// Lays out an element's payload pieces, each padded to 8 bytes with zeros.
inline void write_sources(std::byte *out, std::span<const QueueSource> sources) {
	for (const QueueSource &s : sources) {
		std::memcpy(out, s.data, s.size);
		if (std::size_t pad = pad8(s.size) - s.size)
			std::memset(out + s.size, 0, pad);
		out += pad8(s.size);
	}
}

// An injected delay: the completion, copied, posted by a timer (or at teardown, so that it is
// never lost).
class DelayedCompletion final : public sim::Timer {
public:
	DelayedCompletion(IpcQueue &queue, std::uintptr_t context, std::size_t size)
	: queue_{&queue}, context_{context}, bytes_(size) {}
	std::byte *data() { return bytes_.data(); }

	void fire() override {
		QueueSource source{bytes_.data(), bytes_.size()};
		queue_->post_now({&source, 1}, context_, true);
		delete this;
	}
	void abandon() override { fire(); }

private:
	Ref<IpcQueue> queue_;
	std::uintptr_t context_;
	std::vector<std::byte> bytes_;
};
} // namespace

void IpcQueue::post(std::span<const QueueSource> sources, std::uintptr_t context,
		bool is_operation) {
	if (is_operation && kernel().config().inject.delay_completion_ppm) [[unlikely]] {
		delay(sources, context);
		return;
	}
	post_now(sources, context, is_operation);
}

__attribute__((noinline, cold)) void IpcQueue::delay(std::span<const QueueSource> sources,
		std::uintptr_t context) {
	const FaultInjection &inject = kernel().config().inject;
	if (!kernel().inject(inject.delay_completion_ppm)) {
		post_now(sources, context, true);
		return;
	}
	std::size_t size = 0;
	for (const QueueSource &s : sources)
		size += s.size;
	auto *delayed = new DelayedCompletion{*this, context, size};
	std::byte *out = delayed->data();
	for (const QueueSource &s : sources) {
		std::memcpy(out, s.data, s.size);
		out += s.size;
	}
	delayed->deadline = kernel().host().now() + inject.completion_delay_ns;
	kernel().injected_delays.fetch_add(1, std::memory_order_relaxed);
	kernel().host().arm(*delayed);
}

void IpcQueue::post_now(std::span<const QueueSource> sources, std::uintptr_t context,
		bool is_operation) {
	sim::Host &host = kernel().host();
	if (is_operation)
		if (auto *tracer = host.tracer()) [[unlikely]]
			tracer->completion(this, context); // ends the flow its submission started
	host.scheduling_event();                   // whoever waits for it may get to run first
	std::size_t payload = 0;
	for (const QueueSource &s : sources)
		payload += pad8(s.size);
	if (is_operation && consuming() && stage(sources, payload, context))
		return;
	int bits = 0;
	{
		std::lock_guard lock{cq_lock_};
		// Completions leave in posting order: nothing overtakes an element that is waiting or
		// that the consumer has staged (whatever led here may have followed it).
		take_staged(bits);
		char *at = waiting_head_ ? nullptr : reserve(payload, bits);
		if (at) {
			HelElement element{static_cast<unsigned>(payload), 0,
					reinterpret_cast<void *>(context)};
			std::memcpy(at, &element, sizeof(element));
			write_sources(reinterpret_cast<std::byte *>(at + sizeof(element)), sources);
			commit(payload, is_operation, bits);
		} else {
			append_waiting(sources, payload, context, is_operation);
		}
	}
	announce(bits);
}

void IpcQueue::append_waiting(std::span<const QueueSource> sources, std::size_t payload,
		std::uintptr_t context, bool is_operation) {
	void *memory = ::operator new(sizeof(Waiting) + payload);
	auto *w = new (memory) Waiting{nullptr, context, payload, is_operation};
	write_sources(w->payload, sources);
	if (waiting_tail_)
		waiting_tail_->next = w;
	else
		waiting_head_ = w;
	waiting_tail_ = w;
	++waiting_;
}

void IpcQueue::flush_waiting() {
	int bits = 0;
	std::unique_lock lock{cq_lock_};
	while (Waiting *w = waiting_head_) {
		char *at = reserve(w->size, bits);
		if (!at)
			break;
		HelElement element{static_cast<unsigned>(w->size), 0, reinterpret_cast<void *>(w->context)};
		std::memcpy(at, &element, sizeof(element));
		std::memcpy(at + sizeof(element), w->payload, w->size);
		commit(w->size, w->is_operation, bits);
		waiting_head_ = w->next;
		if (!waiting_head_)
			waiting_tail_ = nullptr;
		--waiting_;
		w->~Waiting();
		::operator delete(w);
	}
	lock.unlock();
	announce(bits);
}

// ---------------------------------------------------------------- the consumer's completions

// Where an element of `size` bytes (at most a chunk) is staged; `end` is what has been staged
// before it. Without room, what is staged goes to the CQ first.
inline std::byte *IpcQueue::stage_room(std::size_t size, std::uint64_t &end) {
	end = staged_end_.load(std::memory_order_relaxed);
	if ((end & kStagedBytes) + size > chunk_size_) {
		pass_bits_ |= flush_staged();
		end = 0;
	}
	return staged_.get() + (end & kStagedBytes);
}

inline bool IpcQueue::stage(std::span<const QueueSource> sources, std::size_t payload,
		std::uintptr_t context) {
	std::size_t size = sizeof(HelElement) + payload;
	if (size > chunk_size_) {
		pass_bits_ |= flush_staged();
		return false; // never fits a chunk: it waits for good, as posted directly
	}
	std::uint64_t end;
	std::byte *at = stage_room(size, end);
	HelElement element{static_cast<unsigned>(payload), 0, reinterpret_cast<void *>(context)};
	std::memcpy(at, &element, sizeof(element));
	write_sources(at + sizeof(element), sources);
	staged_end_.store(end + size + kStagedElement, std::memory_order_release);
	return true;
}

// The generic path does all of it: the tracer, the scheduling event, an injected delay, and
// for the consumer, staging (after writing what is staged when the stage is full). It takes
// complete_simple's arguments as they are, so that the call there compiles to a jump.
__attribute__((noinline, cold)) void IpcQueue::complete_simple_slowly(Thread &, HelError error,
		std::uintptr_t context) {
	post_simple(error, context);
}

int IpcQueue::flush_staged() {
	if (!staged_end_.load(std::memory_order_relaxed))
		return 0;
	int bits = 0;
	std::lock_guard lock{cq_lock_};
	take_staged(bits);
	staged_end_.store(0, std::memory_order_relaxed);
	staged_taken_ = 0;
	return bits;
}

void IpcQueue::take_staged(int &bits) {
	std::uint64_t end = staged_end_.load(std::memory_order_acquire);
	if (end == staged_taken_)
		return;
	const std::byte *at = staged_.get() + (staged_taken_ & kStagedBytes);
	const std::byte *stop = staged_.get() + (end & kStagedBytes);
	std::size_t count = (end - staged_taken_) / kStagedElement;
	staged_taken_ = end;
	// Behind anything that waits, the staged elements wait too (below): only a drive that
	// user space announced with kHelKernelNotifySupplyCqChunks delivers what waits.
	auto size = static_cast<std::size_t>(stop - at);
	if (!waiting_head_ && cq_chunk_ >= 0 && cq_progress_ + size <= chunk_size_) {
		// The common case: all of it fits the current chunk, one copy and one progress.
		HelChunk *current = chunk(static_cast<unsigned>(cq_chunk_));
		std::memcpy(current->buffer + cq_progress_, at, size);
		cq_progress_ += size;
		store_release(&current->progressFutex, static_cast<int>(cq_progress_));
		completions_posted_ += count;
		operations_completed_ += count;
		bits |= kHelUserNotifyCqProgress;
		return;
	}
	HelElement element;
	for (; at < stop && !waiting_head_; at += sizeof(element) + element.length) {
		std::memcpy(&element, at, sizeof(element));
		char *out = reserve(element.length, bits);
		if (!out)
			break;
		std::memcpy(out, at, sizeof(element) + element.length);
		commit(element.length, true, bits);
	}
	// Without room, the rest waits behind whatever waits already, in posting order.
	for (; at < stop; at += sizeof(element) + element.length) {
		std::memcpy(&element, at, sizeof(element));
		QueueSource source{at + sizeof(element), element.length};
		append_waiting({&source, 1}, element.length,
				reinterpret_cast<std::uintptr_t>(element.context), true);
	}
}

// ---------------------------------------------------------------- helDriveQueue

void IpcQueue::drive(Thread &self) {
	// Completions that wait for CQ room are delivered only by a drive that finds
	// kHelKernelNotifySupplyCqChunks set, as in thor, where a producer without a next chunk
	// sleeps until a drive finds the bit: user space links a chunk (release), then sets the bit,
	// then drives. No wakeup is lost. A producer looks for the link and appends to the waiting
	// list in one cq_lock_ section, and this flush takes cq_lock_ after it saw the bit (which the
	// link happens before). If the producer's section comes first, the flush finds its element;
	// if the flush comes first, the producer's section starts after it and sees the link. A
	// drive that misses a bit set after its load leaves it for the drive that follows the
	// setting. A chunk linked without the bit leaves the waiting completions where they are.
	// A locked RMW costs as much as the rest of a short drive: clear the bit only if it is set.
	if (__atomic_load_n(&header_->kernelNotify, __ATOMIC_SEQ_CST) & kHelKernelNotifySupplyCqChunks)
			[[unlikely]] {
		__atomic_fetch_and(&header_->kernelNotify, ~kHelKernelNotifySupplyCqChunks,
				__ATOMIC_SEQ_CST);
		flush_waiting();
	}
	if (!num_sq_chunks_)
		return;
	// One consumer at a time, and a drive that finds one at work leaves its pass to it instead
	// of waiting: a submission may park the consumer (a send from memory that a pager has yet
	// to provide), and a second driver spinning meanwhile could keep the pager from ever
	// running on its CPU (in deterministic mode, anywhere). The loser sets sq_pending_ and
	// tries once more; the consumer, after unlocking, looks at sq_pending_. All four steps are
	// seq_cst, so either the consumer sees the flag (and makes another pass) or the loser's
	// second try sees the unlock (and the loser consumes).
	struct Consumer {
		SpinLock &lock;
		bool held;
		~Consumer() {
			if (held) // also when a teardown unwinds the consumer's fiber while it is parked
				lock.unlock_ordered();
		}
	} consumer{sq_mutex_, sq_mutex_.try_lock_ordered()};
	if (!consumer.held) {
		sq_pending_.store(true, std::memory_order_seq_cst);
		if (!(consumer.held = sq_mutex_.try_lock_ordered()))
			return;
	}
	for (;;) {
		// An RMW only when a loser asked: it takes the loser's SQ writes along (acquire).
		if (sq_pending_.load(std::memory_order_acquire))
			sq_pending_.exchange(false, std::memory_order_acq_rel);
		int bits = 0;
		consume_pass(self, bits);
		consumer.held = false;
		sq_mutex_.unlock_ordered();
		if (bits)
			notify_user(bits);
		if (!sq_pending_.load(std::memory_order_seq_cst) ||
				!(consumer.held = sq_mutex_.try_lock_ordered()))
			return;
	}
}

void IpcQueue::consume_pass(Thread &self, int &bits) {
	// Also ends the pass if a teardown unwinds the consumer's fiber while it is parked.
	struct Pass {
		IpcQueue &queue;
		Thread &self;
		int &bits;
		Pass(IpcQueue &q, Thread &t, int &b) : queue{q}, self{t}, bits{b} {
			queue.batch_thread_.store(&self, std::memory_order_relaxed);
			self.set_consuming_sq(&queue);
		}
		~Pass() {
			self.set_consuming_sq(nullptr);
			bits = queue.flush_staged() | std::exchange(queue.pass_bits_, 0);
			queue.batch_thread_.store(nullptr, std::memory_order_relaxed);
		}
	} pass{*this, self, bits};
	do {
		if (__atomic_load_n(&header_->kernelNotify, __ATOMIC_SEQ_CST) & kHelKernelNotifySqProgress)
			__atomic_fetch_and(&header_->kernelNotify, ~kHelKernelNotifySqProgress,
					__ATOMIC_SEQ_CST);
		consume_sq(self);
	} while (
			__atomic_load_n(&header_->kernelNotify, __ATOMIC_SEQ_CST) & kHelKernelNotifySqProgress);
}

void IpcQueue::announce_batch() {
	if (int bits = flush_staged() | std::exchange(pass_bits_, 0))
		notify_user(bits);
}

void IpcQueue::consume_sq(Thread &self) {
	// Looked at once: a thread's tracer is fixed when the thread is created.
	const bool traced = self.tracer();
	for (;;) {
		HelChunk *current = chunk(sq_current_);
		int progress = load_acquire(&current->progressFutex);
		std::size_t available = static_cast<std::size_t>(progress & kHelProgressMask);
		if (available > chunk_size_ || available < sq_consumed_) {
			contract_violation();
			return;
		}
		while (sq_consumed_ < available) {
			if (available - sq_consumed_ < sizeof(HelElement)) {
				contract_violation();
				sq_consumed_ = available;
				break;
			}
			HelElement element;
			std::memcpy(&element, current->buffer + sq_consumed_, sizeof(element));
			std::size_t length = element.length;
			if (length > available - sq_consumed_ - sizeof(HelElement)) {
				contract_violation();
				sq_consumed_ = available;
				break;
			}
			auto *payload = reinterpret_cast<const std::byte *>(
					current->buffer + sq_consumed_ + sizeof(HelElement));
			sq_consumed_ += sizeof(HelElement) + length;
			submit_element(self, traced, element, payload);
		}
		if (!(progress & kHelProgressDone))
			return;
		// Recycle: reset the finished chunk and append it behind the SQ tail.
		unsigned finished = sq_current_;
		int next = sq_next_[finished];
		if (next < 0) {
			// User space retired a chunk that had no successor: it cannot have moved on.
			contract_violation();
			return;
		}
		store_release(&current->next, 0);
		store_release(&current->progressFutex, 0);
		sq_next_[finished] = -1;
		sq_next_[sq_tail_] = static_cast<int>(finished);
		store_release(&chunk(sq_tail_)->next, static_cast<int>(finished) | kHelNextPresent);
		sq_tail_ = finished;
		notify_user(kHelUserNotifySupplySqChunks);
		sq_current_ = static_cast<unsigned>(next);
		sq_consumed_ = 0;
	}
}

inline void IpcQueue::submit_element(Thread &self, bool traced, const HelElement &element,
		const std::byte *payload) {
	auto context = reinterpret_cast<std::uintptr_t>(element.context);
	if (traced) [[unlikely]]
		self.set_trace_key(this, context);
	HelError error = without_allocation_exceptions(
			[&] { return submit_(self, *this, element.opcode, context, payload, element.length); });
	if (traced) [[unlikely]]
		self.set_trace_key(nullptr, 0); // a refused submission starts no flow
	if (error != kHelErrNone)
		post_simple(error, kSubmitErrorContext, false);
}

HelError IpcQueue::wait_user_notify(Thread &self, std::uint32_t mask, HelHandle handle) {
	auto ready = [&] {
		return (__atomic_load_n(&header_->userNotify, __ATOMIC_SEQ_CST) & ~mask) != 0;
	};
	while (!ready()) {
		if (self.interrupt_pending())
			return kHelErrCancelled;
		// (1) register as a waiter, (2) re-check, (3) block. notify_user() sets the bit before
		// it reads waiter_count_, so it either finds us registered or we see the bit in (2).
		struct Registration {
			IpcQueue &q;
			Thread &t;
			Registration(IpcQueue &queue, Thread &thread) : q{queue}, t{thread} {
				std::lock_guard lock{q.waiters_mutex_};
				q.waiters_.push_back(&t);
				q.waiter_count_.fetch_add(1, std::memory_order_seq_cst);
			}
			~Registration() {
				std::lock_guard lock{q.waiters_mutex_};
				q.waiters_.erase(std::find(q.waiters_.begin(), q.waiters_.end(), &t));
				q.waiter_count_.fetch_sub(1, std::memory_order_relaxed);
			}
		} registration{*this, self};
		if (ready())
			return kHelErrNone;
		self.block({kDriveQueueWait, static_cast<std::uintptr_t>(handle)}, sim::kNoDeadline);
	}
	return kHelErrNone;
}

void IpcQueue::alert() { notify_user(kHelUserNotifyAlert); }

// ---------------------------------------------------------------- cancellation

void IpcQueue::register_cancellable(Cancellable &op) {
	std::lock_guard lock{cancel_mutex_};
	cancellable_.emplace(op.cancellation_tag, &op);
}

bool IpcQueue::unregister_cancellable(Cancellable &op) {
	std::lock_guard lock{cancel_mutex_};
	auto [begin, end] = cancellable_.equal_range(op.cancellation_tag);
	for (auto it = begin; it != end; ++it) {
		if (it->second == &op) {
			cancellable_.erase(it);
			return true;
		}
	}
	return false;
}

void IpcQueue::cancel(std::uint64_t tag) {
	if (tag == 0)
		return; // tag 0 marks operations that cannot be cancelled
	std::vector<Cancellable *> taken;
	{
		std::lock_guard lock{cancel_mutex_};
		auto [begin, end] = cancellable_.equal_range(tag);
		for (auto it = begin; it != end; ++it)
			taken.push_back(it->second);
		cancellable_.erase(begin, end);
	}
	for (Cancellable *op : taken)
		op->cancel();
}

} // namespace helsim::kernel
