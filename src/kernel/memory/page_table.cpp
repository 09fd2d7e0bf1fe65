#include "kernel/memory/page_table.hpp"

namespace helsim::kernel {
namespace {
constexpr std::uint64_t kTableEntry = kPtePresent | kPteWritable | kPteUser;

unsigned index_at(std::uintptr_t address, int level) { return (address >> (12 + 9 * level)) & 511; }
} // namespace

PageTable::PageTable(sim::PhysicalMemory &memory) : memory_{memory} {
	if (auto frame = memory_.allocate(sim::kPageSize)) {
		root_.store(*frame, std::memory_order_relaxed);
		table_frames_ = 1;
	}
}

PageTable::~PageTable() {
	if (valid())
		free_tables(root(), 3);
}

void PageTable::free_tables(sim::PhysicalAddr table, int level) {
	if (level > 0) {
		std::uint64_t *entries = table_at(table);
		for (unsigned i = 0; i < 512; ++i)
			if (entries[i] & kPtePresent)
				free_tables(entries[i] & kPteAddress, level - 1);
	}
	memory_.free(table, sim::kPageSize);
}

std::uint64_t *PageTable::leaf_table(std::uintptr_t address, std::uintptr_t &reach) const {
	sim::PhysicalAddr table = root();
	if (table == kNoTable) { // no top-level table yet: nothing is mapped
		reach = std::uintptr_t{1} << 48;
		return nullptr;
	}
	for (int level = 3; level > 0; --level) {
		std::uint64_t entry = pte_load(&table_at(table)[index_at(address, level)]);
		if (!(entry & kPtePresent)) {
			reach = std::uintptr_t{1} << (12 + 9 * level);
			return nullptr;
		}
		table = entry & kPteAddress;
	}
	reach = std::uintptr_t{1} << 21;
	return table_at(table);
}

std::uint64_t *PageTable::find(std::uintptr_t address) const {
	std::uint64_t *table = leaf_table(address);
	return table ? &table[index_at(address, 0)] : nullptr;
}

std::uint64_t *PageTable::find_or_create(std::uintptr_t address) {
	if (!valid()) {
		auto frame = memory_.allocate(sim::kPageSize);
		if (!frame)
			return nullptr;
		++table_frames_;
		root_.store(*frame, std::memory_order_release);
	}
	sim::PhysicalAddr table = root();
	for (int level = 3; level > 0; --level) {
		std::uint64_t *entry = &table_at(table)[index_at(address, level)];
		std::uint64_t value = pte_load(entry);
		if (!(value & kPtePresent)) {
			auto frame = memory_.allocate(sim::kPageSize); // zeroed: every entry not present
			if (!frame)
				return nullptr;
			++table_frames_;
			value = *frame | kTableEntry;
			pte_store(entry, value); // release: lock-free walkers see a zeroed table
		}
		table = value & kPteAddress;
	}
	return &table_at(table)[index_at(address, 0)];
}

} // namespace helsim::kernel
