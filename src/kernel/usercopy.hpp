// The kernel's access to user memory. Every syscall reads and writes user pointers only
// through these functions.
//
// This layer rejects pointers that can never be valid — null, the zero page, non-canonical
// addresses, ranges that wrap — with kHelErrFault. Resolving faults against the simulated
// page tables (strict mode, protected and unmapped ranges) is the memory issue's work; until
// then other host addresses are trusted. docs/fidelity.md tracks the gap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

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

inline bool user_range_ok(const void *pointer, std::size_t size) {
	if (size == 0)
		return true;
	auto address = reinterpret_cast<std::uintptr_t>(pointer);
	constexpr std::uintptr_t kFirstUserAddress = 4096;
	constexpr std::uintptr_t kUserEnd = std::uintptr_t{1} << 47; // canonical lower half
	return address >= kFirstUserAddress && address < kUserEnd && size <= kUserEnd - address;
}

inline bool copy_from_user(void *kernel_dst, const void *user_src, std::size_t size) {
	if (!user_range_ok(user_src, size))
		return false;
	if (size)
		user_memcpy(kernel_dst, user_src, size);
	return true;
}

inline bool copy_to_user(void *user_dst, const void *kernel_src, std::size_t size) {
	if (!user_range_ok(user_dst, size))
		return false;
	if (size)
		user_memcpy(user_dst, kernel_src, size);
	return true;
}

} // namespace helsim::kernel
