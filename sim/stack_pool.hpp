// Fiber stacks, carved from large shared mappings and reused.
//
// One mmap per stack, with an mprotect'ed guard page, costs two host mappings per simulated
// thread: Linux's default limit of 65,530 mappings (vm.max_map_count) then ends a process at
// about 32k threads, and every spawn pays two syscalls. Here stacks come in slabs of many per
// mapping, freed stacks are reused, and the guard below each stack is, in order of preference:
// - a guard region (MADV_GUARD_INSTALL, Linux 6.13): faults like PROT_NONE, costs no mapping;
// - a PROT_NONE page, while fewer than a quarter of the mapping limit are used for them;
// - a canary word at the bottom of the stack, checked each time the fiber switches out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace helsim::sim {

struct StackSlot {
	void *bottom = nullptr; // lowest usable address; the guard (if any) lies below it
	std::size_t size = 0;   // usable bytes, a multiple of the page size
	// Unguarded stacks only: the word at `bottom` that must still read kStackCanary.
	std::uint64_t *canary = nullptr;
};

inline constexpr std::uint64_t kStackCanary = 0x68656c73696d5354; // "helsimST"

// Running out of host memory or mappings for a stack. A std::bad_alloc, so kernel code turns it
// into kHelErrNoMemory; what() says what ran out (the text is built without allocating).
class StackExhausted : public std::bad_alloc {
public:
	StackExhausted(std::size_t size, int error, std::size_t in_use) noexcept;
	const char *what() const noexcept override { return message_; }

private:
	char message_[192];
};

// Thread-safe. allocate() throws StackExhausted; release() takes back what allocate() gave.
StackSlot allocate_stack(std::size_t size);
void release_stack(const StackSlot &slot) noexcept;

// How many stacks are allocated now (tests check that a released one comes back).
std::size_t stacks_in_use() noexcept;

// Reports a clobbered canary (a fiber overflowed an unguarded stack) and aborts.
[[noreturn]] void stack_overflowed(const StackSlot &slot) noexcept;

} // namespace helsim::sim
