#include "queue.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "kernel.hpp"
#include "syscalls.hpp"
#include "thread.hpp"

namespace helsim::kernel {
namespace {

// User space shares these words; every kernel access is atomic.
int load_acquire(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store_release(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

constexpr std::size_t kMaxChunkSize = static_cast<std::size_t>(kHelProgressMask);
constexpr unsigned kMaxChunks = 4096;

} // namespace

HelError IpcQueue::create(Kernel &kernel, const HelQueueParameters &params, Ref<IpcQueue> &out) {
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
	Ref<AllocatedMemory> memory;
	if (HelError e = AllocatedMemory::create(kernel, size, kHelAllocContinuous, 0, memory);
			e != kHelErrNone)
		return e;
	out = Ref<IpcQueue>::adopt(new IpcQueue{kernel, params, std::move(memory)});
	return kHelErrNone;
}

IpcQueue::IpcQueue(Kernel &kernel, const HelQueueParameters &params, Ref<AllocatedMemory> memory)
: Object{kernel, ObjectKind::queue}, num_chunks_{params.numChunks},
  num_sq_chunks_{params.numSqChunks}, chunk_size_{params.chunkSize},
  chunk_stride_{(sizeof(HelChunk) + params.chunkSize + 63) & ~std::size_t{63}},
  memory_{std::move(memory)}, header_{static_cast<HelQueue *>(
									  kernel.host().physical_memory().direct(memory_->base()))} {
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

std::size_t IpcQueue::waiting_completions() const {
	return waiting_count_.load(std::memory_order_relaxed);
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
	std::lock_guard lock{waiters_mutex_};
	for (Thread *t : waiters_)
		t->wake();
}

void IpcQueue::announce(int bits) {
	Thread *batching = batch_thread_.load(std::memory_order_relaxed);
	if (batching && batching == Thread::current())
		batch_bits_ |= bits;
	else
		notify_user(bits);
}

void IpcQueue::contract_violation() { notify_user(kHelUserNotifyError); }

bool IpcQueue::try_write(std::span<const QueueSource> sources, std::size_t payload,
		std::uintptr_t context) {
	if (cq_chunk_ < 0) {
		int first = load_acquire(&header_->cqFirst);
		if (!(first & kHelNextPresent))
			return false;
		unsigned index = static_cast<unsigned>(first & ~kHelNextPresent);
		if (index >= num_chunks_) {
			contract_violation();
			return false;
		}
		cq_chunk_ = static_cast<int>(index);
		cq_progress_ = 0;
	}
	for (;;) {
		HelChunk *current = chunk(static_cast<unsigned>(cq_chunk_));
		if (cq_progress_ + sizeof(HelElement) + payload <= chunk_size_)
			break;
		// No room: (1) mark the chunk Full so the consumer can tell a stall from a slow
		// producer, (2) move on only once user space has linked a next chunk, (3) then retire
		// this one with Done.
		int progress = static_cast<int>(cq_progress_);
		store_release(&current->progressFutex, progress | kHelProgressFull);
		announce(kHelUserNotifyCqProgress);
		int next = load_acquire(&current->next);
		if (!(next & kHelNextPresent))
			return false;
		unsigned index = static_cast<unsigned>(next & ~kHelNextPresent);
		if (index >= num_chunks_) {
			contract_violation();
			return false;
		}
		store_release(&current->progressFutex, progress | kHelProgressFull | kHelProgressDone);
		announce(kHelUserNotifyCqProgress);
		cq_chunk_ = static_cast<int>(index);
		cq_progress_ = 0;
	}
	HelChunk *current = chunk(static_cast<unsigned>(cq_chunk_));
	char *out = current->buffer + cq_progress_;
	HelElement element{static_cast<unsigned>(payload), 0, reinterpret_cast<void *>(context)};
	std::memcpy(out, &element, sizeof(element));
	out += sizeof(element);
	for (const QueueSource &s : sources) {
		std::memcpy(out, s.data, s.size);
		if (std::size_t pad = pad8(s.size) - s.size)
			std::memset(out + s.size, 0, pad);
		out += pad8(s.size);
	}
	cq_progress_ += sizeof(HelElement) + payload;
	store_release(&current->progressFutex, static_cast<int>(cq_progress_));
	announce(kHelUserNotifyCqProgress);
	return true;
}

namespace {
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
	const FaultInjection &inject = kernel().config().inject;
	if (is_operation && inject.delay_completion_ppm) [[unlikely]] {
		if (kernel().inject(inject.delay_completion_ppm)) {
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
			return;
		}
	}
	post_now(sources, context, is_operation);
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
	std::lock_guard lock{cq_lock_};
	// Completions leave in posting order: nothing overtakes an element that is waiting.
	if (!waiting_head_ && try_write(sources, payload, context)) {
		++completions_posted_;
		operations_completed_ += is_operation;
		return;
	}
	void *memory = ::operator new(sizeof(Waiting) + payload);
	auto *w = new (memory) Waiting{nullptr, context, payload, is_operation};
	std::byte *out = w->payload;
	for (const QueueSource &s : sources) {
		std::memcpy(out, s.data, s.size);
		std::memset(out + s.size, 0, pad8(s.size) - s.size);
		out += pad8(s.size);
	}
	if (waiting_tail_)
		waiting_tail_->next = w;
	else
		waiting_head_ = w;
	waiting_tail_ = w;
	waiting_count_.fetch_add(1, std::memory_order_relaxed);
}

void IpcQueue::post_simple(HelError error, std::uintptr_t context, bool is_operation) {
	HelSimpleResult result{error, 0};
	QueueSource source{&result, sizeof(result)};
	post({&source, 1}, context, is_operation);
}

void IpcQueue::flush_waiting() {
	std::lock_guard lock{cq_lock_};
	while (Waiting *w = waiting_head_) {
		QueueSource source{w->payload, w->size};
		if (!try_write({&source, 1}, w->size, w->context))
			return;
		++completions_posted_;
		operations_completed_ += w->is_operation;
		waiting_head_ = w->next;
		if (!waiting_head_)
			waiting_tail_ = nullptr;
		waiting_count_.fetch_sub(1, std::memory_order_relaxed);
		w->~Waiting();
		::operator delete(w);
	}
}

// ---------------------------------------------------------------- helDriveQueue

void IpcQueue::drive(Thread &self) {
	// A locked RMW costs as much as the rest of a short drive: clear the bit only if it is set.
	// Set after this load, it stays for the drive that the user makes after setting it.
	if (__atomic_load_n(&header_->kernelNotify, __ATOMIC_SEQ_CST) & kHelKernelNotifySupplyCqChunks)
		__atomic_fetch_and(&header_->kernelNotify, ~kHelKernelNotifySupplyCqChunks,
				__ATOMIC_SEQ_CST);
	// Always under cq_lock_, never behind a lock-free peek at waiting_count_: a producer that
	// found no next chunk increments the count only after that check, still inside the lock.
	// Peeking could miss it while the user has linked a chunk and is about to wait, and the
	// completion would then wait for a drive that never comes (a lost wakeup). Under the lock
	// either the producer saw the new link or this flush sees the producer's element.
	flush_waiting();
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
			std::lock_guard cq{queue.cq_lock_};
			queue.batch_thread_.store(nullptr, std::memory_order_relaxed);
			bits = std::exchange(queue.batch_bits_, 0);
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
	int bits;
	{
		std::lock_guard cq{cq_lock_};
		bits = std::exchange(batch_bits_, 0);
	}
	if (bits)
		notify_user(bits);
}

void IpcQueue::consume_sq(Thread &self) {
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
			submit_element(self, element.opcode, reinterpret_cast<std::uintptr_t>(element.context),
					payload, length);
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

void IpcQueue::submit_element(Thread &self, unsigned opcode, std::uintptr_t context,
		const std::byte *payload, std::size_t length) {
	if (self.tracer()) [[unlikely]]
		self.set_trace_key(this, context);
	HelError error = without_allocation_exceptions(
			[&] { return submit_sq_operation(self, *this, opcode, context, payload, length); });
	if (self.tracer()) [[unlikely]]
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
