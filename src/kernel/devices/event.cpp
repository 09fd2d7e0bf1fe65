#include "kernel/devices/event.hpp"

#include <bit>
#include <memory>
#include <mutex>
#include <utility>

#include "kernel/core/spinlock.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

// ---------------------------------------------------------------- the protocol
//
// Every await completes exactly once. Who completes a waiting one is decided under the wait
// list's lock, by the queue's cancellation registry:
//  (1) submit_await(): a cancellable await registers its tag first (no kHelSubmitCancel of
//      that queue can run meanwhile: SQ elements of a queue are consumed one at a time), then,
//      under the lock, either completes at once (and unregisters) or joins the list.
//  (2) a raise, the event's end, teardown: under the lock, take each waiting await whose
//      unregistration succeeds (tag 0: always) off the list; complete the taken ones after
//      the lock. One whose unregistration fails stays on the list: a cancellation owns it.
//  (3) kHelSubmitCancel: the registry hands the await over (its tag is gone from it), then
//      cancel() takes it off the list under the lock and completes it with kHelErrCancelled.
// An await is taken by (2) only if (3) has not had it from the registry, and (3) reaches it
// only through the list lock, which (2) holds while it decides: never both, never neither.

class WaitList {
public:
	SpinLock lock;
	EventWaiter *head = nullptr; // guarded by lock; in submission order
	EventWaiter *tail = nullptr;

	void push(EventWaiter &w);
	void unlink(EventWaiter &w);
	// (2): takes every waiter the registry lets go, as a detached list.
	EventWaiter *take_all();
};

class EventWaiter final : public Cancellable {
public:
	EventWaiter(std::shared_ptr<WaitList> list, IpcQueue &queue, std::uintptr_t context)
	: list_{std::move(list)}, queue_{&queue}, context_{context} {}

	// (3)
	void cancel() override {
		{
			std::lock_guard lock{list_->lock};
			list_->unlink(*this);
		}
		finish({kHelErrCancelled, 0, 0});
	}

	// Posts the completion and frees the waiter.
	void finish(const HelEventResult &result) {
		QueueSource source{&result, sizeof(result)};
		queue_->post({&source, 1}, context_, true);
		delete this;
	}

	// Whether the registry lets (2) have it.
	bool release_from_registry() {
		return !cancellation_tag || queue_->unregister_cancellable(*this);
	}

	const IpcQueue *queue() const { return queue_.get(); }
	std::uintptr_t context() const { return context_; }

	EventWaiter *prev = nullptr; // guarded by the list's lock
	EventWaiter *next = nullptr;
	bool queued = false;

private:
	const std::shared_ptr<WaitList> list_;
	const Ref<IpcQueue> queue_;
	const std::uintptr_t context_;
};

namespace {

// Completes a detached list with one result (no lock held).
void complete_all(EventWaiter *list, const HelEventResult &result) {
	while (list) {
		EventWaiter *next = list->next;
		list->finish(result);
		list = next;
	}
}

} // namespace

void WaitList::push(EventWaiter &w) {
	w.prev = tail;
	w.next = nullptr;
	(tail ? tail->next : head) = &w;
	tail = &w;
	w.queued = true;
}

void WaitList::unlink(EventWaiter &w) {
	if (!w.queued)
		return;
	(w.prev ? w.prev->next : head) = w.next;
	(w.next ? w.next->prev : tail) = w.prev;
	w.prev = w.next = nullptr;
	w.queued = false;
}

EventWaiter *WaitList::take_all() {
	EventWaiter *taken = nullptr;
	EventWaiter **taken_tail = &taken;
	for (EventWaiter *w = head; w;) {
		EventWaiter *next = w->next;
		if (w->release_from_registry()) {
			unlink(*w);
			*taken_tail = w;
			taken_tail = &w->next;
		}
		w = next;
	}
	return taken;
}

// ---------------------------------------------------------------- Event

Event::Event(Kernel &kernel, ObjectKind kind)
: Object{kernel, kind}, waiters_{std::make_shared<WaitList>()} {}

// The last reference is gone: no handle is left to raise the event, so nothing waiting can
// ever complete otherwise. (thor leaves such awaits waiting for good.)
Event::~Event() {
	EventWaiter *taken;
	{
		std::lock_guard lock{waiters_->lock};
		taken = waiters_->take_all();
	}
	complete_all(taken, {kHelErrCancelled, 0, 0});
}

void Event::abandon() {
	EventWaiter *taken;
	{
		std::lock_guard lock{waiters_->lock};
		taken = waiters_->take_all();
	}
	complete_all(taken, {kHelErrCancelled, 0, 0});
}

void Event::submit_await(Thread &self, IpcQueue &queue, std::uint64_t sequence, std::uint64_t tag,
		std::uintptr_t context) {
	// Allocated, and registered, before the operation counts as submitted (see
	// without_allocation_exceptions); unique_ptr until then.
	auto waiter = std::make_unique<EventWaiter>(waiters_, queue, context);
	if (!cancellable_by_tag())
		tag = 0; // thor: IRQ waits ignore the tag
	waiter->cancellation_tag = tag;
	if (tag)
		queue.register_cancellable(*waiter);
	self.note_submitted();
	HelEventResult result{};
	{
		std::lock_guard lock{waiters_->lock};
		if (!completes_now(sequence, result)) {
			waiters_->push(*waiter.release());
			return;
		}
	}
	if (tag)
		queue.unregister_cancellable(*waiter); // (1): nothing can have cancelled it yet
	waiter.release()->finish(result);
}

template <typename Update>
HelError Event::raise_with(Update &&update) {
	HelEventResult result{};
	EventWaiter *taken = nullptr;
	{
		std::lock_guard lock{waiters_->lock};
		if (HelError e = update(result); e != kHelErrNone)
			return e;
		if (waiters_->head) // no waiter, no work: a raise nobody awaits allocates nothing
			taken = waiters_->take_all();
	}
	// Through the queues' ordinary posting path (fault injection, deterministic scheduling).
	complete_all(taken, result);
	return kHelErrNone;
}

Event::Taken::Taken(Taken &&other) noexcept
: list_{std::exchange(other.list_, nullptr)}, result_{other.result_} {}

void Event::Taken::complete() { complete_all(std::exchange(list_, nullptr), result_); }

Event::Taken Event::take_raised(void (*update)(Event &self, HelEventResult &result)) {
	Taken taken;
	std::lock_guard lock{waiters_->lock};
	update(*this, taken.result_);
	if (waiters_->head)
		taken.list_ = waiters_->take_all();
	return taken;
}

void Event::for_each_pending(const std::function<void(const PendingOperation &)> &f) {
	std::lock_guard lock{waiters_->lock};
	for (EventWaiter *w = waiters_->head; w; w = w->next)
		f({w->queue(), w->context(), "awaitEvent", this});
}

// ---------------------------------------------------------------- OneshotEvent
//
// thor (OneshotEvent::submitAwait, trigger): sequence 0 before the raise completes at once
// with sequence 1 and no bit; sequence 1 waits; after the raise everything completes with
// sequence 2 and bit 0 set. A sequence above 1 is an assertion in thor: kHelErrIllegalArgs.

HelError OneshotEvent::raise() {
	return raise_with([this](HelEventResult &result) {
		if (raised_)
			return kHelErrIllegalState;
		raised_ = true;
		result = {kHelErrNone, 1, 2};
		return kHelErrNone;
	});
}

bool OneshotEvent::completes_now(std::uint64_t sequence, HelEventResult &result) {
	if (sequence > 1)
		result = {kHelErrIllegalArgs, 0, 0};
	else if (raised_)
		result = {kHelErrNone, 1, 2};
	else if (sequence == 0)
		result = {kHelErrNone, 0, 1};
	else
		return false;
	return true;
}

// ---------------------------------------------------------------- BitsetEvent
//
// thor (BitsetEvent::submitAwait, trigger): an await with a sequence below the current one
// completes at once with the current sequence and every bit raised after the sequence it
// named; with the current sequence it waits for the next raise, and completes with that
// raise's sequence and bits. A sequence from the future is an assertion in thor:
// kHelErrIllegalArgs.

void BitsetEvent::raise(std::uint32_t bits) {
	raise_with([this, bits](HelEventResult &result) {
		++sequence_;
		for (std::uint32_t rest = bits; rest; rest &= rest - 1)
			last_raised_[std::countr_zero(rest)] = sequence_;
		result = {kHelErrNone, bits, sequence_};
		return kHelErrNone;
	});
}

bool BitsetEvent::completes_now(std::uint64_t sequence, HelEventResult &result) {
	if (sequence > sequence_) {
		result = {kHelErrIllegalArgs, 0, 0};
		return true;
	}
	if (sequence == sequence_)
		return false;
	std::uint32_t bits = 0;
	for (unsigned i = 0; i < 32; ++i)
		if (last_raised_[i] > sequence)
			bits |= std::uint32_t{1} << i;
	result = {kHelErrNone, bits, sequence_};
	return true;
}

} // namespace helsim::kernel
