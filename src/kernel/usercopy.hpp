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

namespace helsim::kernel {

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
		std::memcpy(kernel_dst, user_src, size);
	return true;
}

inline bool copy_to_user(void *user_dst, const void *kernel_src, std::size_t size) {
	if (!user_range_ok(user_dst, size))
		return false;
	if (size)
		std::memcpy(user_dst, kernel_src, size);
	return true;
}

} // namespace helsim::kernel
