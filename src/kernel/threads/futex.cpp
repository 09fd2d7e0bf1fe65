#include "kernel/threads/futex.hpp"

#include "kernel/core/kernel.hpp"
#include "kernel/memory/space.hpp"
#include "kernel/memory/usercopy.hpp"
#include "kernel/threads/thread.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {

HelError FutexTable::key_of(Thread &self, const int *pointer, Key &key, Ref<MemoryView> &view) {
	auto address = reinterpret_cast<std::uintptr_t>(pointer);
	// thor checks the alignment before it looks at any mapping (GlobalFutexSpace::withFutex).
	if (address % alignof(int))
		return kHelErrIllegalArgs;
	if (!user_range_ok(pointer, sizeof(int)))
		return kHelErrFault;
	AddressSpace &space = self.space();
	if (!space.in_window(address, sizeof(int))) {
		if (self.kernel().config().strict_memory)
			return kHelErrFault;
		key = {nullptr, address};
		return kHelErrNone;
	}
	std::size_t offset;
	if (HelError e = space.resolve(address, view, offset); e != kHelErrNone)
		return e;
	key = {view.get(), offset};
	return kHelErrNone;
}

FutexTable::Bucket &FutexTable::bucket_for(const Key &key) {
	auto a = reinterpret_cast<std::uintptr_t>(key.object) ^ key.offset;
	return buckets_[(a >> 2) * 0x9E3779B97F4A7C15ull >> 58];
}

void FutexTable::Bucket::unlink(Waiter &w) {
	(w.prev ? w.prev->next : head) = w.next;
	(w.next ? w.next->prev : tail) = w.prev;
	w.prev = w.next = nullptr;
}

HelError FutexTable::wait(Thread &self, int *pointer, int expected, std::uint64_t deadline) {
	Key key;
	Ref<MemoryView> view;
	if (HelError e = key_of(self, pointer, key, view); e != kHelErrNone)
		return e;
	auto address = reinterpret_cast<std::uintptr_t>(pointer);
	Bucket &bucket = bucket_for(key);
	Waiter waiter{key, &self};
	for (;;) {
		// Fault the word in first: the check below runs under the bucket lock and must not
		// wait for a pager.
		if (key.object)
			if (HelError e = self.space().fault_blocking(address, Access::read); e != kHelErrNone)
				return e;
		std::lock_guard lock{bucket.mutex};
		// The value is checked under the bucket lock, so a wake that follows a store to the
		// word cannot slip between this check and the enqueue.
		std::uint32_t value;
		if (key.object) {
			std::size_t done = 0;
			HelError e = self.space().copy(address, &value, sizeof(value), false, done, nullptr);
			if (e == kTouchPending)
				continue; // evicted again meanwhile
			if (e != kHelErrNone)
				return e;
		} else if (!sim::safe_load_u32(pointer, value)) {
			return kHelErrFault;
		}
		if (static_cast<int>(value) != expected)
			return kHelErrFutexRace;
		// Injected spurious wake-up: Managarm's callers re-check the word, so may we return.
		if (std::uint32_t ppm = self.kernel().config().inject.spurious_wakeup_ppm;
				ppm && self.kernel().inject(ppm)) [[unlikely]] {
			self.kernel().injected_wakeups.fetch_add(1, std::memory_order_relaxed);
			return kHelErrNone;
		}
		waiter.prev = bucket.tail;
		(bucket.tail ? bucket.tail->next : bucket.head) = &waiter;
		bucket.tail = &waiter;
		break;
	}
	// Leaving always takes the bucket lock: a waker calls wake() on our thread under that
	// lock, so we cannot return (and free `waiter`) while it still uses it.
	struct Leave {
		Bucket &bucket;
		Waiter &waiter;
		~Leave() {
			std::lock_guard lock{bucket.mutex};
			if (!waiter.woken)
				bucket.unlink(waiter);
		}
	};
	bool cancelled = false;
	{
		Leave leave{bucket, waiter};
		for (;;) {
			{
				std::lock_guard lock{bucket.mutex};
				if (waiter.woken)
					break;
			}
			// An interrupt ends the wait (a wake that came first wins: nothing is lost).
			if (self.interrupt_pending()) {
				cancelled = true;
				break;
			}
			if (deadline != sim::kNoDeadline && self.kernel().host().now() >= deadline)
				break;
			self.block({"futex", address}, deadline);
		}
	}
	// After ~Leave nobody else can reach `waiter`: its verdict is final.
	if (waiter.woken)
		return kHelErrNone;
	return cancelled ? kHelErrCancelled : kHelErrTimeout;
}

HelError FutexTable::wake(Thread &self, const int *pointer, unsigned count) {
	Key key;
	Ref<MemoryView> view;
	if (HelError e = key_of(self, pointer, key, view); e != kHelErrNone)
		return e;
	Bucket &bucket = bucket_for(key);
	std::lock_guard lock{bucket.mutex};
	unsigned woken = 0;
	for (Waiter *w = bucket.head; w && woken < count;) {
		Waiter *next = w->next;
		if (w->key == key) {
			bucket.unlink(*w);
			w->woken = true;
			w->thread->wake();
			++woken;
		}
		w = next;
	}
	return kHelErrNone;
}

} // namespace helsim::kernel
