// Anonymous memory on the server side: mmap and munmap (superAnonAllocate and
// superAnonDeallocate), and what fork and execve do with a process's areas.
#include "memory.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "server.hpp"

namespace helsim::posix::detail {

namespace {

constexpr std::size_t kPage = 4096;
// fork_cow off copies through a bounce buffer of this size.
constexpr std::size_t kCopyChunk = std::size_t{64} << 10;

} // namespace

std::uint32_t map_flags(int prot) {
	std::uint32_t flags = 0;
	if (prot & PROT_READ)
		flags |= kHelMapProtRead;
	if (prot & PROT_WRITE)
		flags |= kHelMapProtWrite | kHelMapProtRead;
	if (prot & PROT_EXEC)
		flags |= kHelMapProtExecute;
	return flags;
}

// Private memory is a copy-on-write view of zero memory, so that fork can fork it;
// MAP_SHARED memory is plain memory that a child maps again.
std::int64_t Server::anon_allocate(Process &p, std::uint64_t size, int prot, int flags) {
	if (size == 0)
		return -EINVAL;
	if (size > (std::uint64_t{1} << 40))
		return -ENOMEM; // as Linux answers a length no address space has room for
	size = (size + kPage - 1) & ~(kPage - 1);
	bool shared = flags & MAP_SHARED;
	HelHandle handle = kHelNullHandle;
	HelError e = shared ? helAllocateMemory(size, 0, nullptr, &handle)
						: helCopyOnWrite(kHelZeroMemory, 0, size, &handle);
	if (e)
		return -ENOMEM;
	auto memory = std::make_shared<MemoryObject>(handle);
	void *address = nullptr;
	if (helMapMemory(handle, p.space, nullptr, 0, size, map_flags(prot) | kHelMapDontRequireBacking,
				&address))
		return -ENOMEM;
	AnonArea area{reinterpret_cast<std::uintptr_t>(address), size, prot, shared, memory, 0};
	p.areas.push_back(area);
	return static_cast<std::int64_t>(area.address);
}

// Linux's munmap: every page of the range that is mapped goes, the rest of an area it cuts
// stays (split in two if the range is inside it); pages that were not mapped are no error.
std::int64_t Server::anon_free(Process &p, std::uint64_t address, std::uint64_t size) {
	if (address % kPage || size == 0)
		return -EINVAL;
	size = (size + kPage - 1) & ~(kPage - 1);
	if (size == 0 || address + size < address)
		return -EINVAL;
	std::uint64_t end = address + size;
	std::vector<AnonArea> kept;
	for (AnonArea &area : p.areas) {
		std::uint64_t from = std::max<std::uint64_t>(area.address, address);
		std::uint64_t to = std::min<std::uint64_t>(area.end(), end);
		if (from >= to) {
			kept.push_back(std::move(area));
			continue;
		}
		helUnmapMemory(p.space, reinterpret_cast<void *>(from), to - from);
		if (area.address < from) {
			AnonArea left = area;
			left.size = from - area.address;
			kept.push_back(std::move(left));
		}
		if (to < area.end()) {
			AnonArea right = area;
			right.offset += to - area.address;
			right.address = to;
			right.size = area.end() - to;
			kept.push_back(std::move(right));
		}
	}
	p.areas = std::move(kept);
	return 0;
}

void Server::unmap_areas(Process &p) {
	for (const AnonArea &area : p.areas)
		helUnmapMemory(p.space, reinterpret_cast<void *>(area.address), area.size);
	p.areas.clear();
}

Async<std::int64_t> Server::fork_area(Process &child, const AnonArea &area,
		std::map<const MemoryObject *, std::shared_ptr<MemoryObject>> &forked) {
	AnonArea copy = area;
	bool eager = !area.shared && !state_.options.fork_cow;
	if (!area.shared && !eager) {
		// One fork per view: areas split by munmap share their view, and its fork.
		auto &fork = forked[area.memory.get()];
		if (!fork) {
			auto result = co_await executor_.operation<HelHandleResult>(kHelSubmitForkMemory,
					HelSqForkMemory{area.memory->handle()});
			if (result.error != kHelErrNone)
				co_return -ENOMEM;
			fork = std::make_shared<MemoryObject>(result.handle);
		}
		copy.memory = fork;
	} else if (eager) {
		HelHandle fresh = kHelNullHandle;
		if (helCopyOnWrite(kHelZeroMemory, 0, area.size, &fresh) != kHelErrNone)
			co_return -ENOMEM;
		copy.memory = std::make_shared<MemoryObject>(fresh);
		copy.offset = 0;
	}
	// Mapped before anything is copied, so that a child whose space has no room fails at once.
	void *address = nullptr;
	if (helMapMemory(copy.memory->handle(), child.space, nullptr, copy.offset, copy.size,
				map_flags(copy.prot) | kHelMapDontRequireBacking, &address) != kHelErrNone)
		co_return -ENOMEM;
	copy.address = reinterpret_cast<std::uintptr_t>(address);
	child.areas.push_back(copy);
	if (eager) {
		// Through the kernel's checked copies: a frame that cannot be had is -ENOMEM here,
		// not a fault of the server.
		std::vector<std::byte> bounce(std::min(area.size, kCopyChunk));
		for (std::size_t at = 0; at < area.size; at += bounce.size()) {
			std::size_t n = std::min(bounce.size(), area.size - at);
			auto read = co_await executor_.operation<HelSimpleResult>(kHelSubmitReadMemory,
					HelSqReadMemory{area.memory->handle(), area.offset + at, n, bounce.data()});
			if (read.error != kHelErrNone)
				co_return -ENOMEM;
			auto written = co_await executor_.operation<HelSimpleResult>(kHelSubmitWriteMemory,
					HelSqWriteMemory{copy.memory->handle(), at, n, bounce.data()});
			if (written.error != kHelErrNone)
				co_return -ENOMEM;
			for (std::size_t page = 0; page < n; page += kPage)
				AtomicCounters::bump(state_.counters.fork_pages_copied);
		}
	}
	co_return static_cast<std::int64_t>(copy.address);
}

} // namespace helsim::posix::detail
