#include "futex.hpp"

#include "thread.hpp"
#include "usercopy.hpp"

namespace helsim::kernel {

FutexTable::Bucket &FutexTable::bucket_for(const int *pointer) {
	auto a = reinterpret_cast<std::uintptr_t>(pointer);
	return buckets_[(a >> 2) * 0x9E3779B97F4A7C15ull >> 58];
}

void FutexTable::Bucket::unlink(Waiter &w) {
	(w.prev ? w.prev->next : head) = w.next;
	(w.next ? w.next->prev : tail) = w.prev;
	w.prev = w.next = nullptr;
}

HelError FutexTable::wait(Thread &self, int *pointer, int expected, std::uint64_t deadline) {
	if (!user_range_ok(pointer, sizeof(int)) || reinterpret_cast<std::uintptr_t>(pointer) % 4)
		return kHelErrFault;
	Bucket &bucket = bucket_for(pointer);
	Waiter waiter{pointer, &self};
	{
		std::lock_guard lock{bucket.mutex};
		// The value is checked under the bucket lock, so a wake that follows a store to the
		// word cannot slip between this check and the enqueue.
		if (__atomic_load_n(pointer, __ATOMIC_SEQ_CST) != expected)
			return kHelErrFutexRace;
		waiter.prev = bucket.tail;
		(bucket.tail ? bucket.tail->next : bucket.head) = &waiter;
		bucket.tail = &waiter;
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
	{
		Leave leave{bucket, waiter};
		for (;;) {
			{
				std::lock_guard lock{bucket.mutex};
				if (waiter.woken)
					break;
			}
			if (deadline != sim::kNoDeadline && self.kernel().host().now() >= deadline)
				break;
			self.block({"futex", reinterpret_cast<std::uintptr_t>(pointer)}, deadline);
		}
	}
	// After ~Leave nobody else can reach `waiter`: its verdict is final.
	return waiter.woken ? kHelErrNone : kHelErrTimeout;
}

unsigned FutexTable::wake(const int *pointer, unsigned count) {
	Bucket &bucket = bucket_for(pointer);
	std::lock_guard lock{bucket.mutex};
	unsigned woken = 0;
	for (Waiter *w = bucket.head; w && woken < count;) {
		Waiter *next = w->next;
		if (w->key == pointer) {
			bucket.unlink(*w);
			w->woken = true;
			w->thread->wake();
			++woken;
		}
		w = next;
	}
	return woken;
}

} // namespace helsim::kernel
