// Hardware memory (helAccessPhysical): a memory view over a fixed range of simulated physical
// memory, such as a device's MMIO window. Its frames are always present and never move; the
// view owns none of them (closing it frees nothing).
#pragma once

#include <cstdint>

#include "kernel/memory/memory_view.hpp"

namespace helsim::kernel {

class Thread;

class HardwareMemory final : public MemoryView {
public:
	HardwareMemory(Kernel &kernel, sim::PhysicalAddr base, std::size_t size,
			std::uint32_t caching_mode)
	: MemoryView{kernel}, base_{base}, size_{size}, caching_mode_{caching_mode} {}
	const char *describe() const override { return "hardware memory"; }

	std::size_t size() const override { return size_; }
	std::optional<sim::PhysicalAddr> peek(std::size_t offset, unsigned) override {
		if (offset >= size_)
			return std::nullopt;
		return base_ + offset;
	}
	HelError touch(std::size_t offset, unsigned, TouchWaiter &) override {
		return offset < size_ ? kHelErrNone : kHelErrFault;
	}
	// Contiguous frames that are always there: mapped in one go, like a queue's ring.
	bool eagerly_mapped() const override { return true; }

	sim::PhysicalAddr base() const { return base_; }
	// The kHelCaching* mode it was made with: recorded only (a host has no caching control).
	std::uint32_t caching_mode() const { return caching_mode_; }

private:
	const sim::PhysicalAddr base_;
	const std::size_t size_;
	const std::uint32_t caching_mode_;
};

// What helAccessPhysical's row validated: a non-empty, page-aligned range of the machine's
// physical memory and a kHelCaching* mode.
struct PhysicalRange {
	std::uint64_t base = 0;
	std::size_t size = 0;
	std::uint32_t caching = 0;
};

// A hardware memory view of `range`, attached with kMemoryDefaultRights (outs[0]).
HelError access_physical(Thread &self, const PhysicalRange &range, HelWord *outs);

} // namespace helsim::kernel
