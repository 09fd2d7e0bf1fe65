// DMA spaces (src/kernel/devices/dma_space.cpp): helCreateDmaSpace, helMapMemory / helUnmapMemory /
// helPointerPhysical on a DMA space, and kHelSubmitPopulateSpace with its errors.
#include <gtest/gtest.h>

#include <cstring>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;

helsim::MachineConfig config() {
	helsim::MachineConfig c;
	c.physical_memory = std::size_t{16} << 20;
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

HelHandle make_dma_space() {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateDmaSpace(0, &h), kHelErrNone);
	return h;
}

HelError populate(helsim::Dispatcher &d, HelHandle space, const void *address, std::size_t length) {
	HelSqPopulateSpace request{space, reinterpret_cast<std::uintptr_t>(address), length};
	return sq_call(d, kHelSubmitPopulateSpace, request).error();
}

TEST(DmaSpace, CreatedWithFlagsZeroAsADmaSpaceWithGrantAndProvision) {
	run_clean(config(), [] {
		HelHandle h = kHelNullHandle;
		EXPECT_EQ(helCreateDmaSpace(1, &h), kHelErrIllegalArgs);
		h = make_dma_space();
		HelDescriptorInfo info{-1};
		ASSERT_EQ(helDescriptorInfo(h, &info), kHelErrNone);
		EXPECT_EQ(info.type, kHelDescDmaSpace);
		EXPECT_EQ(info_of(h).rights, std::uint32_t{kHelRightGrant | kHelRightProvision});
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	});
}

// The device's view of a buffer: mapped into a DMA space, populated, and its DMA address
// translated to the same frame the CPU mapping has.
TEST(DmaSpace, MappedMemoryTranslatesToTheFramesTheCpuSees) {
	run_clean(config(), [] {
		helsim::Dispatcher d;
		HelHandle memory = kHelNullHandle;
		auto *cpu = static_cast<char *>(map_new_memory(2 * kPage, &memory));
		HelHandle dma = make_dma_space();
		void *device = nullptr;
		ASSERT_EQ(helMapMemory(memory, dma, nullptr, 0, 2 * kPage, kRW, &device), kHelErrNone);
		ASSERT_NE(device, nullptr);
		EXPECT_NE(device, static_cast<void *>(cpu));
		EXPECT_EQ(populate(d, dma, device, 2 * kPage), kHelErrNone);
		for (std::size_t page = 0; page < 2; ++page) {
			std::uintptr_t from_dma = 0, from_cpu = 0;
			ASSERT_EQ(helPointerPhysical(dma, static_cast<char *>(device) + page * kPage + 5,
							  &from_dma),
					kHelErrNone);
			ASSERT_EQ(helPointerPhysical(kHelNullHandle, cpu + page * kPage + 5, &from_cpu),
					kHelErrNone);
			EXPECT_EQ(from_dma, from_cpu) << "page " << page;
		}
		EXPECT_EQ(helUnmapMemory(dma, device, 2 * kPage), kHelErrNone);
		std::uintptr_t physical = 0;
		EXPECT_EQ(helPointerPhysical(dma, device, &physical), kHelErrFault) << "unmapped";
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, cpu, 2 * kPage), kHelErrNone);
		for (HelHandle h : {memory, dma})
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	});
}

TEST(DmaSpace, PopulateSpaceRefusesOtherObjectsRightsAndRanges) {
	run_clean(config(), [] {
		helsim::Dispatcher d;
		HelHandle memory = kHelNullHandle;
		void *cpu = map_new_memory(kPage, &memory);
		HelHandle dma = make_dma_space();
		void *device = nullptr;
		ASSERT_EQ(helMapMemory(memory, dma, nullptr, 0, kPage, kHelMapProtRead, &device),
				kHelErrNone);
		EXPECT_EQ(populate(d, dma, device, kPage), kHelErrNone) << "read-only populates too";

		HelHandle space = make_space();
		EXPECT_EQ(populate(d, space, device, kPage), kHelErrBadDescriptor) << "address space";
		EXPECT_EQ(populate(d, memory, device, kPage), kHelErrBadDescriptor) << "memory";
		EXPECT_EQ(populate(d, 9999, device, kPage), kHelErrNoDescriptor);
		HelHandle weak = narrowed(dma, kHelRightGrant);
		EXPECT_EQ(populate(d, weak, device, kPage), kHelErrBadRights) << "no Provision";

		EXPECT_EQ(populate(d, dma, static_cast<char *>(device) + 1, kPage), kHelErrIllegalArgs);
		EXPECT_EQ(populate(d, dma, device, kPage + 1), kHelErrIllegalArgs);
		EXPECT_EQ(populate(d, dma, device, 0), kHelErrIllegalArgs);
		EXPECT_EQ(populate(d, dma, device, 2 * kPage), kHelErrFault) << "runs past the mapping";

		EXPECT_EQ(helUnmapMemory(dma, device, kPage), kHelErrNone);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, cpu, kPage), kHelErrNone);
		for (HelHandle h : {memory, dma, space, weak})
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	});
}

TEST(DmaSpace, MapUnmapAndPointerPhysicalCheckTheDmaSpacesRights) {
	run_clean(config(), [] {
		HelHandle memory = kHelNullHandle;
		ASSERT_EQ(helAllocateMemory(kPage, 0, nullptr, &memory), kHelErrNone);
		HelHandle dma = make_dma_space();
		HelHandle no_grant = narrowed(dma, kHelRightProvision);
		HelHandle no_provision = narrowed(dma, kHelRightGrant);
		void *device = nullptr;
		EXPECT_EQ(helMapMemory(memory, no_grant, nullptr, 0, kPage, kRW, &device),
				kHelErrBadRights);
		ASSERT_EQ(helMapMemory(memory, dma, nullptr, 0, kPage, kRW, &device), kHelErrNone);
		std::uintptr_t physical = 0;
		EXPECT_EQ(helPointerPhysical(no_provision, device, &physical), kHelErrBadRights);
		EXPECT_EQ(helPointerPhysical(no_grant, device, &physical), kHelErrNone)
				<< "faults the page in";
		EXPECT_EQ(helUnmapMemory(no_grant, device, kPage), kHelErrBadRights);
		EXPECT_EQ(helUnmapMemory(memory, device, kPage), kHelErrBadDescriptor) << "not a space";
		EXPECT_EQ(helUnmapMemory(dma, device, kPage), kHelErrNone);
		for (HelHandle h : {memory, dma, no_grant, no_provision})
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	});
}

TEST(DmaSpace, ASpaceStillMappedWhenClosedLeaksNothing) {
	run_clean(config(), [] {
		HelHandle memory = kHelNullHandle;
		ASSERT_EQ(helAllocateMemory(kPage, 0, nullptr, &memory), kHelErrNone);
		HelHandle dma = make_dma_space();
		void *device = nullptr;
		ASSERT_EQ(helMapMemory(memory, dma, nullptr, 0, kPage, kRW, &device), kHelErrNone);
		for (HelHandle h : {memory, dma})
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	});
}

} // namespace
