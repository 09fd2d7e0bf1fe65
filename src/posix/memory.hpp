// A process's anonymous memory as the server keeps it: every mmap'd area with the memory view
// behind it, so that fork can fork (or copy) it, munmap can split it and execve can drop it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <helsim/hel.h>
#include <helsim/posix.hpp>

namespace helsim::posix::detail {

// A memory view handle in the server's universe. Areas split by munmap, and a fork's areas
// that map the parent's MAP_SHARED memory, share one; the last closes it.
class MemoryObject {
public:
	explicit MemoryObject(HelHandle handle) : handle_{handle} {}
	~MemoryObject() { helCloseDescriptor(kHelThisUniverse, handle_); }
	MemoryObject(const MemoryObject &) = delete;
	MemoryObject &operator=(const MemoryObject &) = delete;
	HelHandle handle() const { return handle_; }

private:
	HelHandle handle_;
};

struct AnonArea {
	std::uintptr_t address = 0; // in the process's space
	std::size_t size = 0;
	int prot = 0;
	bool shared = false; // MAP_SHARED: fork maps the same memory; else copy-on-write
	std::shared_ptr<MemoryObject> memory;
	std::size_t offset = 0; // of `address` within `memory`
	std::uintptr_t end() const { return address + size; }
};

// A forked child's view of where the parent's areas went (fork_address()).
struct Relocation {
	std::uintptr_t from = 0; // the parent's address
	std::uintptr_t to = 0;   // the child's
	std::size_t size = 0;
};

// kHelMapProt* for PROT_*.
std::uint32_t map_flags(int prot);

// The child's main (client_process.cpp): records `relocations` for fork_address(), then runs
// entry(arg) and returns its result.
Main fork_main(HelWord entry, HelWord arg, std::vector<Relocation> relocations);

} // namespace helsim::posix::detail
