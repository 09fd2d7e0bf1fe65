// The kernel's access to user memory. Every syscall reads and writes user pointers only
// through these functions.
//
// Addresses inside the host window belong to simulated address spaces: they are translated
// through the space's page tables, faulting pages in (and waiting for a pager) as needed. In
// the default mode other host memory (stacks, heap) is accepted and copied with a fault-safe
// copy, so a bad pointer is kHelErrFault, never a crash; strict mode refuses it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <helsim/hel.h>

#if defined(__SANITIZE_THREAD__)
#define HELSIM_USERCOPY_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HELSIM_USERCOPY_TSAN 1
#endif
#endif

#ifdef HELSIM_USERCOPY_TSAN
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace helsim::kernel {

class AddressSpace;
class Thread;
class TouchWaiter;

// The copy itself. Under TSan it is not instrumented: a stream copies between user buffers on
// whichever host thread pairs the items (RecvToBuffer, streamed sends), and the owner learns
// about it from its CQ. The kernel writes the CQ through the direct map and user space reads
// it through its own mapping of the same memory; TSan cannot relate the two addresses, misses
// that release/acquire pair and would report every such copy as a race with the owner's
// later accesses.
inline void user_memcpy(void *dst, const void *src, std::size_t size) {
#ifdef HELSIM_USERCOPY_TSAN
	__tsan_ignore_thread_begin();
	std::memcpy(dst, src, size);
	__tsan_ignore_thread_end();
#else
	std::memcpy(dst, src, size);
#endif
}

// user_memcpy for two user ranges, which may be the same memory: a Read/WriteMemory whose
// buffer and target overlap (found by test/fuzz, FuzzFinding.WriteMemoryOntoItsOwnBuffer).
inline void user_memmove(void *dst, const void *src, std::size_t size) {
#ifdef HELSIM_USERCOPY_TSAN
	__tsan_ignore_thread_begin();
	std::memmove(dst, src, size);
	__tsan_ignore_thread_end();
#else
	std::memmove(dst, src, size);
#endif
}

// User space is x86-64's canonical lower half, as in thor.
inline constexpr std::uintptr_t kUserEnd = std::uintptr_t{1} << 47;

// Rejects what can never be a user pointer: null, the zero page, non-canonical addresses,
// ranges that wrap.
inline bool user_range_ok(const void *pointer, std::size_t size) {
	if (size == 0)
		return true;
	auto address = reinterpret_cast<std::uintptr_t>(pointer);
	constexpr std::uintptr_t kFirstUserAddress = 4096;
	return address >= kFirstUserAddress && address < kUserEnd && size <= kUserEnd - address;
}

// Copies between a kernel buffer and user memory of `space`, resuming at `done`. With a
// waiter, faults are resolved and kTouchPending means "call again once it fired"; without
// one, a page that is not present yet gives kTouchPending. kHelErrFault for memory the
// space cannot provide.
HelError copy_user(AddressSpace &space, std::uintptr_t address, void *buffer, std::size_t size,
		bool to_user, std::size_t &done, TouchWaiter *waiter);

// The calling thread's own memory; blocks the thread while a pager provides pages.
// kHelErrNone, kHelErrFault or kHelErrNoMemory.
HelError copy_from_user(Thread &self, void *kernel_dst, const void *user_src, std::size_t size);
HelError copy_to_user(Thread &self, void *user_dst, const void *kernel_src, std::size_t size);

} // namespace helsim::kernel
