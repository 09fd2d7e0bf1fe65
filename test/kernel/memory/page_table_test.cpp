// PageTable (src/kernel/memory/page_table.*) on its own: simulated physical memory from a
// FakeHost, no Machine (docs/testing.md, "Unit tests of kernel objects").
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "../fake_host.hpp"
#include "kernel/memory/page_table.hpp"

namespace {

using helsim::kernel::PageTable;
using helsim::sim::kPageSize;
using helsim::test::FakeHost;

constexpr std::uintptr_t k2M = std::uintptr_t{1} << 21;
constexpr std::uintptr_t k1G = std::uintptr_t{1} << 30;
constexpr std::uintptr_t k512G = std::uintptr_t{1} << 39;

TEST(PageTableUnit, EmptyTableHasOnlyItsRootAndFindsNothing) {
	FakeHost host;
	PageTable table{host.physical_memory()};
	ASSERT_TRUE(table.valid());
	EXPECT_EQ(table.table_frames(), 1u);
	EXPECT_EQ(table.find(0), nullptr);
	EXPECT_EQ(table.find(0x7fff'ffff'f000), nullptr);
}

TEST(PageTableUnit, FindOrCreateBuildsOneTablePerLevelAndFindReturnsTheSameEntry) {
	FakeHost host;
	PageTable table{host.physical_memory()};
	std::uintptr_t address = 0x4000'1234'5000;
	std::uint64_t *entry = table.find_or_create(address);
	ASSERT_NE(entry, nullptr);
	EXPECT_EQ(*entry, 0u) << "a new leaf entry is not present";
	EXPECT_EQ(table.table_frames(), 4u) << "root, PDPT, page directory, leaf table";
	EXPECT_EQ(table.find(address), entry);
	EXPECT_EQ(table.find(address + 0xfff), entry) << "one entry per 4 KiB page";
	EXPECT_EQ(table.find(address + kPageSize), entry + 1);
	// The rest of the 2 MiB the leaf table covers needs no new table; the next 2 MiB does.
	EXPECT_NE(table.find_or_create(address + kPageSize), nullptr);
	EXPECT_EQ(table.table_frames(), 4u);
	EXPECT_EQ(table.find(address + k2M), nullptr);
	EXPECT_NE(table.find_or_create(address + k2M), nullptr);
	EXPECT_EQ(table.table_frames(), 5u);
}

TEST(PageTableUnit, EntriesLiveInSimulatedPhysicalMemory) {
	FakeHost host;
	auto &memory = host.physical_memory();
	std::size_t free_before = memory.free_bytes();
	{
		PageTable table{memory};
		std::uint64_t *entry = table.find_or_create(0x1000);
		ASSERT_NE(entry, nullptr);
		auto *base = static_cast<char *>(memory.direct(0));
		auto *at = reinterpret_cast<char *>(entry);
		EXPECT_GE(at, base);
		EXPECT_LT(at, base + memory.size()) << "the entry is in the direct map";
		EXPECT_EQ(memory.free_bytes(), free_before - 4 * kPageSize);
	}
	EXPECT_EQ(memory.free_bytes(), free_before) << "the destructor frees every table frame";
}

TEST(PageTableUnit, ForEachEntryVisitsExistingLeafEntriesAndSkipsMissingTables) {
	FakeHost host;
	PageTable table{host.physical_memory()};
	std::uintptr_t a = 3 * k1G + 5 * k2M;
	ASSERT_NE(table.find_or_create(a), nullptr);
	ASSERT_NE(table.find_or_create(a + 7 * kPageSize), nullptr);
	std::vector<std::uintptr_t> seen;
	std::size_t lookups = table.for_each_entry(a, a + 8 * kPageSize,
			[&](std::uintptr_t address, std::uint64_t *entry) {
				EXPECT_EQ(entry, table.find(address));
				seen.push_back(address);
			});
	ASSERT_EQ(seen.size(), 8u);
	EXPECT_EQ(seen.front(), a);
	EXPECT_EQ(seen.back(), a + 7 * kPageSize);
	EXPECT_EQ(lookups, 1u) << "one leaf table covers the range";
	// A range with no table at all costs one lookup per missing top-level entry's reach.
	std::size_t visited = 0;
	lookups = table.for_each_entry(k512G, 3 * k512G,
			[&](std::uintptr_t, std::uint64_t *) { ++visited; });
	EXPECT_EQ(visited, 0u);
	EXPECT_EQ(lookups, 2u);
}

TEST(PageTableUnit, OutOfFramesIsReportedAndRecoveredFrom) {
	FakeHost host;
	auto &memory = host.physical_memory();
	// Take every frame: the constructor cannot allocate its root.
	std::vector<helsim::sim::PhysicalAddr> taken;
	while (auto frame = memory.allocate(kPageSize))
		taken.push_back(*frame);
	PageTable table{memory};
	EXPECT_FALSE(table.valid());
	EXPECT_EQ(table.table_frames(), 0u);
	EXPECT_EQ(table.find(0x1000), nullptr);
	EXPECT_EQ(table.find_or_create(0x1000), nullptr) << "no frame for the root";
	// Two frames: the root and the PDPT, then the page directory is missing.
	memory.free(taken.back(), kPageSize);
	taken.pop_back();
	memory.free(taken.back(), kPageSize);
	taken.pop_back();
	EXPECT_EQ(table.find_or_create(0x1000), nullptr);
	EXPECT_TRUE(table.valid()) << "the root, once allocated, stays";
	EXPECT_EQ(table.table_frames(), 2u);
	for (int i = 0; i < 2; ++i) {
		memory.free(taken.back(), kPageSize);
		taken.pop_back();
	}
	std::uint64_t *entry = table.find_or_create(0x1000);
	ASSERT_NE(entry, nullptr) << "the walk resumes where it ran out";
	EXPECT_EQ(table.table_frames(), 4u);
	EXPECT_EQ(table.find(0x1000), entry);
	for (auto frame : taken)
		memory.free(frame, kPageSize);
}

TEST(PageTableUnit, EntryBitsAreSetWithoutClearingOthers) {
	FakeHost host;
	PageTable table{host.physical_memory()};
	std::uint64_t *entry = table.find_or_create(0x2000);
	ASSERT_NE(entry, nullptr);
	using namespace helsim::kernel;
	pte_store(entry, 0x5000 | kPtePresent | kPteUser);
	pte_set_bits(entry, kPteAccessed);
	pte_set_bits(entry, kPteDirty);
	EXPECT_EQ(pte_load(entry), 0x5000 | kPtePresent | kPteUser | kPteAccessed | kPteDirty);
	EXPECT_EQ(pte_load(entry) & kPteAddress, 0x5000u);
}

} // namespace
