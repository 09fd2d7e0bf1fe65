// Events: helCreateOneshotEvent, helCreateBitsetEvent, helRaiseEvent and kHelSubmitAwaitEvent
// (and its 2022 syscall helSubmitAwaitEvent). Semantics as thor's event.cpp: an event has a
// sequence number; an await names the last sequence its submitter saw and completes as soon
// as the event is past it, with the current sequence.
#pragma once

#include <cstdint>
#include <memory>

#include "kernel/core/object.hpp"

namespace helsim::kernel {

class IpcQueue;
class Thread;

// What helCreateOneshotEvent and helCreateBitsetEvent hand out (thor: Wait and Signal).
inline constexpr std::uint32_t kEventDefaultRights = kHelRightWait | kHelRightSignal;

// An object kHelSubmitAwaitEvent can wait on (Object::awaitable() finds it): the events here;
// IRQ objects later. The submission has been checked (handle, rights, ring room); every call
// completes exactly once on `queue` with a HelEventResult, at once or later. A non-zero `tag`
// makes a waiting await cancellable by kHelSubmitCancel (kHelErrCancelled).
class Awaitable {
public:
	virtual void submit_await(Thread &self, IpcQueue &queue, std::uint64_t sequence,
			std::uint64_t tag, std::uintptr_t context) = 0;

protected:
	~Awaitable() = default;
};

class WaitList;    // event.cpp: the awaits still waiting, and the lock that guards the event
class EventWaiter; // event.cpp: one waiting await

// What both kinds share: the waiting awaits, their cancellation and their end.
class Event : public Object, public Awaitable {
public:
	~Event() override;

	Awaitable *awaitable() override { return this; }
	void submit_await(Thread &self, IpcQueue &queue, std::uint64_t sequence, std::uint64_t tag,
			std::uintptr_t context) final;
	void for_each_pending(const std::function<void(const PendingOperation &)> &f) override;
	// Machine teardown: waiting awaits complete with kHelErrCancelled.
	void abandon() override;

protected:
	Event(Kernel &kernel, ObjectKind kind);

	// Under the wait list's lock: whether an await with `sequence` completes now (filling
	// `result`) or waits for the next raise.
	virtual bool completes_now(std::uint64_t sequence, HelEventResult &result) = 0;
	// A raise: runs update() under the lock (it returns what the waiting awaits complete
	// with), then completes them.
	template <typename Update>
	HelError raise_with(Update &&update);

public:
	// Awaits a raise took off the list, to be completed once the raiser holds no lock.
	class Taken {
	public:
		Taken() = default;
		Taken(Taken &&other) noexcept;
		Taken &operator=(Taken &&) = delete;
		~Taken() { complete(); }
		// Posts every completion (no lock may be held); afterwards the list is empty.
		void complete();

	private:
		friend class Event;
		EventWaiter *list_ = nullptr;
		HelEventResult result_{};
	};

protected:
	// For a kind whose raise is decided under a lock of its own as well (an IRQ object, under
	// its pin's lock): under the wait list's lock, advances the state (`update` fills the
	// result, as for raise_with) and takes every waiting await. The caller completes them
	// after releasing its own lock.
	Taken take_raised(void (*update)(Event &self, HelEventResult &result));

	// Whether a waiting await with a cancellation tag is cancellable by kHelSubmitCancel.
	// thor: yes for events, no for IRQ objects (their awaits ignore the tag).
	virtual bool cancellable_by_tag() const { return true; }

	// Kept apart from the event: a kHelSubmitCancel may reach a waiting await after the event
	// itself is gone (the awaits hold the list, not the event).
	const std::shared_ptr<WaitList> waiters_;
};

// Raised at most once. Sequence 0 before the raise ("armed", thor reports 1), 2 after it.
class OneshotEvent final : public Event {
public:
	static constexpr ObjectKind kKind = ObjectKind::oneshot_event;
	explicit OneshotEvent(Kernel &kernel) : Event{kernel, kKind} {}

	// kHelErrIllegalState if it was raised before (thor asserts).
	HelError raise();

private:
	bool completes_now(std::uint64_t sequence, HelEventResult &result) override;
	bool raised_ = false; // guarded by the wait list's lock
};

// 32 bits, each remembering the sequence of its last raise; the event's sequence starts at 1
// and counts raises.
class BitsetEvent final : public Event {
public:
	static constexpr ObjectKind kKind = ObjectKind::bitset_event;
	explicit BitsetEvent(Kernel &kernel) : Event{kernel, kKind} {}

	// Raises every bit of `bits` (non-zero) under one new sequence number.
	void raise(std::uint32_t bits);

private:
	bool completes_now(std::uint64_t sequence, HelEventResult &result) override;
	// Guarded by the wait list's lock.
	std::uint64_t sequence_ = 1;
	std::uint64_t last_raised_[32] = {};
};

} // namespace helsim::kernel
