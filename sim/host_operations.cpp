// The native host operations (sim/host.hpp: HostOperations): Linux system calls.
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include "host.hpp"

namespace helsim::sim {

namespace {

void *reserve(std::size_t size) {
	void *p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? nullptr : p;
}

void *allocate(std::size_t size) {
	void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? nullptr : p;
}

bool reset(void *at, std::size_t size) {
	return mmap(at, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
				   0) != MAP_FAILED;
}

void release(void *at, std::size_t size) { munmap(at, size); }

// std::atomic<std::uint32_t> is a plain 32-bit word (static_assert below), so the futex
// word is its address.
void wait_word(const std::atomic<std::uint32_t> &word, std::uint32_t expected) {
	syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void wake_word(std::atomic<std::uint32_t> &word) {
	syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

void yield_cpu() { sched_yield(); }

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
		std::atomic<std::uint32_t>::is_always_lock_free);

constexpr HostOperations kNative{
		.reserve = reserve,
		.allocate = allocate,
		.reset = reset,
		.release = release,
		.wait_word = wait_word,
		.wake_word = wake_word,
		.yield_cpu = yield_cpu,
		.register_window = register_window,
		.unregister_window = unregister_window,
};

} // namespace

const HostOperations &native_host_operations() { return kNative; }

std::atomic<const HostOperations *> detail::host_operations{&kNative};

const HostOperations &replace_host_operations(const HostOperations &operations) {
	return *detail::host_operations.exchange(&operations, std::memory_order_relaxed);
}

} // namespace helsim::sim
