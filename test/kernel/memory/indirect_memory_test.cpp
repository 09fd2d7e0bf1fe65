// Indirect memory (src/kernel/memory/indirect_memory.cpp) and slices (memory_slice.cpp):
// helCreateIndirectMemory, helAlterMemoryIndirection with views and slices, evictions
// forwarded from slot views, helCreateSliceView windows and rights.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

constexpr std::size_t kPage = 4096;
constexpr std::size_t kSlot = std::size_t{1} << 32;
constexpr std::uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;

helsim::MachineConfig quiet() {
	helsim::MachineConfig c;
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

// Memory of `pages` pages whose page i starts with "<name><i>".
HelHandle labelled(const std::string &name, std::size_t pages) {
	HelHandle memory = kHelNullHandle;
	auto *p = static_cast<char *>(map_new_memory(pages * kPage, &memory));
	for (std::size_t i = 0; i < pages; ++i)
		std::strcpy(p + i * kPage, (name + std::to_string(i)).c_str());
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, pages * kPage), kHelErrNone);
	return memory;
}

HelHandle indirect(std::size_t slots) {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateIndirectMemory(slots, &h), kHelErrNone);
	return h;
}

char *map_at(HelHandle memory, std::size_t offset, std::size_t size, std::uint32_t flags = kRW) {
	void *p = nullptr;
	EXPECT_EQ(helMapMemory(memory, kHelNullHandle, nullptr, offset, size, flags, &p), kHelErrNone);
	return static_cast<char *>(p);
}

HelHandle slice_of(HelHandle view, std::size_t offset, std::size_t size, std::uint32_t flags = 0) {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateSliceView(view, offset, size, flags, &h), kHelErrNone);
	return h;
}

class Indirect : public ::testing::Test {
protected:
	helsim::Machine machine{quiet()};
	std::unique_ptr<helsim::Attachment> attached = machine.attach();
};

TEST_F(Indirect, SlotsShowTheirViewsWindows) {
	HelHandle a = labelled("a", 3);
	HelHandle b = labelled("b", 2);
	HelHandle ind = indirect(2);
	std::size_t size = 0;
	ASSERT_EQ(helMemoryInfo(ind, &size), kHelErrNone);
	EXPECT_EQ(size, 2 * kSlot) << "4 GiB per slot, as in thor";
	ASSERT_EQ(helAlterMemoryIndirection(ind, 0, a, kPage, 2 * kPage), kHelErrNone);
	ASSERT_EQ(helAlterMemoryIndirection(ind, 1, b, 0, 2 * kPage), kHelErrNone);
	char *first = map_at(ind, 0, 2 * kPage);
	EXPECT_STREQ(first, "a1");
	EXPECT_STREQ(first + kPage, "a2");
	char *second = map_at(ind, kSlot, 2 * kPage);
	EXPECT_STREQ(second, "b0");
	EXPECT_STREQ(second + kPage, "b1");
	// Writes go to the slot's view.
	std::strcpy(second + kPage, "written");
	char *direct = map_at(b, 0, 2 * kPage);
	EXPECT_STREQ(direct + kPage, "written");
	// A slot shows nothing past its size, and an empty slot nothing at all.
	char *past = map_at(ind, 2 * kPage, kPage);
	EXPECT_EQ(helLog(kHelLogSeverityDebug, past, 1), kHelErrFault);
	HelHandle empty = indirect(1);
	char *nothing = map_at(empty, 0, kPage);
	EXPECT_EQ(helLog(kHelLogSeverityDebug, nothing, 1), kHelErrFault);
}

TEST_F(Indirect, AlteringASlotChangesWhatItsMappingsShow) {
	HelHandle a = labelled("a", 1);
	HelHandle b = labelled("b", 1);
	HelHandle ind = indirect(1);
	ASSERT_EQ(helAlterMemoryIndirection(ind, 0, a, 0, kPage), kHelErrNone);
	char *p = map_at(ind, 0, kPage);
	EXPECT_STREQ(p, "a0");
	ASSERT_EQ(helAlterMemoryIndirection(ind, 0, b, 0, kPage), kHelErrNone);
	EXPECT_STREQ(p, "b0") << "the mapping dropped a's page when the slot changed";
	std::strcpy(p, "b changed");
	ASSERT_EQ(helAlterMemoryIndirection(ind, 0, a, 0, kPage), kHelErrNone);
	EXPECT_STREQ(p, "a0");
	char *in_b = map_at(b, 0, kPage);
	EXPECT_STREQ(in_b, "b changed");
	// The old view lives on while a handle has it, and the slot let go of it.
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, b), kHelErrNone);
	EXPECT_STREQ(in_b, "b changed");
}

TEST_F(Indirect, EvictionsOfASlotViewReachTheIndirectMappings) {
	// A CoW view replaces its zero frame with a copy on the first write: mappings of the
	// indirect view that showed the zero frame must drop it.
	HelHandle cow = kHelNullHandle;
	ASSERT_EQ(helCopyOnWrite(kHelZeroMemory, 0, 2 * kPage, &cow), kHelErrNone);
	HelHandle ind = indirect(3);
	ASSERT_EQ(helAlterMemoryIndirection(ind, 2, cow, kPage, kPage), kHelErrNone);
	char *through = map_at(ind, 2 * kSlot, kPage);
	EXPECT_EQ(through[0], 0);
	char *direct = map_at(cow, 0, 2 * kPage);
	std::strcpy(direct + kPage, "copied");
	EXPECT_STREQ(through, "copied");
	std::strcpy(through, "and back");
	EXPECT_STREQ(direct + kPage, "and back");
	EXPECT_EQ(direct[0], 0) << "the slot shows only the CoW view's second page";
}

TEST_F(Indirect, SlotsTakeSlicesAndTheirWindow) {
	HelHandle a = labelled("a", 4);
	HelHandle slice = slice_of(a, kPage, 2 * kPage);
	HelHandle ind = indirect(1);
	ASSERT_EQ(helAlterMemoryIndirection(ind, 0, slice, kPage, kPage), kHelErrNone);
	char *p = map_at(ind, 0, kPage);
	EXPECT_STREQ(p, "a2") << "slice offset plus slot offset";
	EXPECT_EQ(helAlterMemoryIndirection(ind, 0, slice, kPage, 2 * kPage), kHelErrBufferTooSmall)
			<< "past the slice's window";
}

TEST_F(Indirect, ChecksHandlesRightsSlotsAndArguments) {
	HelHandle a = labelled("a", 2);
	HelHandle ind = indirect(2);
	EXPECT_EQ(info_of(ind).type, kHelDescMemoryView);
	EXPECT_FALSE(info_of(ind).rights & kHelRightExecute) << "no rights laundering";
	EXPECT_FALSE(info_of(ind).rights & kHelRightPin) << "as thor: no Pin by default";
	EXPECT_TRUE(info_of(ind).rights & kHelRightManage);
	void *p = nullptr;
	EXPECT_EQ(helMapMemory(ind, kHelNullHandle, nullptr, 0, kPage,
					  kHelMapProtRead | kHelMapProtExecute, &p),
			kHelErrBadRights);

	EXPECT_EQ(helAlterMemoryIndirection(ind, 2, a, 0, kPage), kHelErrOutOfBounds);
	EXPECT_EQ(helAlterMemoryIndirection(ind, ~std::size_t{0}, a, 0, kPage), kHelErrOutOfBounds);
	EXPECT_EQ(helAlterMemoryIndirection(ind, 0, a, 1, kPage), kHelErrIllegalArgs);
	EXPECT_EQ(helAlterMemoryIndirection(ind, 0, a, 0, kPage + 1), kHelErrIllegalArgs);
	EXPECT_EQ(helAlterMemoryIndirection(ind, 0, a, kPage, 2 * kPage), kHelErrBufferTooSmall);
	EXPECT_EQ(helAlterMemoryIndirection(ind, 0, a, 0, 2 * kSlot), kHelErrIllegalArgs)
			<< "more than a slot";

	EXPECT_EQ(helAlterMemoryIndirection(12345, 0, a, 0, kPage), kHelErrNoDescriptor);
	EXPECT_EQ(helAlterMemoryIndirection(make_token(), 0, a, 0, kPage), kHelErrBadDescriptor);
	EXPECT_EQ(helAlterMemoryIndirection(a, 0, a, 0, kPage), kHelErrUnsupportedOperation)
			<< "not an indirect view";
	EXPECT_EQ(helAlterMemoryIndirection(narrowed(ind,
												kHelRightsMax & ~std::uint32_t{kHelRightManage}),
					  0, a, 0, kPage),
			kHelErrBadRights);
	EXPECT_EQ(helAlterMemoryIndirection(ind, 0, 12345, 0, kPage), kHelErrNoDescriptor);
	EXPECT_EQ(helAlterMemoryIndirection(ind, 0, make_queue(), 0, kPage), kHelErrBadDescriptor);
	for (std::uint32_t right : {kHelRightRead, kHelRightWrite, kHelRightAssign})
		EXPECT_EQ(helAlterMemoryIndirection(ind, 0,
						  narrowed(a, kHelRightsMax & ~std::uint32_t{right}), 0, kPage),
				kHelErrBadRights)
				<< "without right " << right;

	// Indirect views do not nest, also not behind copy-on-write: no cycle can form.
	EXPECT_EQ(helAlterMemoryIndirection(ind, 0, ind, 0, kPage), kHelErrIllegalArgs);
	HelHandle other = indirect(1);
	EXPECT_EQ(helAlterMemoryIndirection(ind, 0, other, 0, kPage), kHelErrIllegalArgs);
	HelHandle cow = kHelNullHandle;
	ASSERT_EQ(helCopyOnWrite(ind, 0, kPage, &cow), kHelErrNone);
	EXPECT_EQ(helAlterMemoryIndirection(ind, 0, cow, 0, kPage), kHelErrIllegalArgs);

	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateIndirectMemory(std::size_t{1} << 40, &h), kHelErrNoMemory);
	EXPECT_EQ(helCreateIndirectMemory(0, &h), kHelErrNone) << "thor allows no slots";
}

class Slice : public Indirect {};

TEST_F(Slice, MapsItsWindowOfTheView) {
	HelHandle a = labelled("a", 4);
	HelHandle slice = slice_of(a, kPage, 2 * kPage);
	EXPECT_EQ(info_of(slice).type, kHelDescMemorySlice);
	char *p = map_at(slice, 0, 2 * kPage);
	EXPECT_STREQ(p, "a1");
	EXPECT_STREQ(p + kPage, "a2");
	char *q = map_at(slice, kPage, kPage);
	EXPECT_STREQ(q, "a2") << "mapping offsets are relative to the slice";
	void *r = nullptr;
	EXPECT_EQ(helMapMemory(slice, kHelNullHandle, nullptr, kPage, 2 * kPage, kRW, &r),
			kHelErrBufferTooSmall);
	std::strcpy(p, "through the slice");
	char *whole = map_at(a, 0, 4 * kPage);
	EXPECT_STREQ(whole + kPage, "through the slice");
	// Write-combining is accepted; it changes nothing in simulated RAM.
	char *wc = map_at(slice_of(a, 0, kPage, kHelSliceCacheWriteCombine), 0, kPage);
	EXPECT_STREQ(wc, "a0");
}

TEST_F(Slice, RightsAreTheViewsWithinReadWriteExecuteAssign) {
	HelHandle a = labelled("a", 2);
	EXPECT_EQ(info_of(slice_of(a, 0, kPage)).rights,
			std::uint32_t{kHelRightRead | kHelRightWrite | kHelRightExecute | kHelRightAssign});
	HelHandle read_only = narrowed(a, kHelRightRead | kHelRightAssign | kHelRightManage);
	HelHandle slice = slice_of(read_only, 0, kPage);
	EXPECT_EQ(info_of(slice).rights, std::uint32_t{kHelRightRead | kHelRightAssign});
	void *p = nullptr;
	EXPECT_EQ(helMapMemory(slice, kHelNullHandle, nullptr, 0, kPage, kRW, &p), kHelErrBadRights);
	ASSERT_EQ(helMapMemory(slice, kHelNullHandle, nullptr, 0, kPage, kHelMapProtRead, &p),
			kHelErrNone);
	EXPECT_STREQ(static_cast<char *>(p), "a0");
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateSliceView(narrowed(a, kHelRightsMax & ~std::uint32_t{kHelRightAssign}), 0,
					  kPage, 0, &h),
			kHelErrBadRights);
}

TEST_F(Slice, ChecksItsArguments) {
	HelHandle a = labelled("a", 2);
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateSliceView(a, 1, kPage, 0, &h), kHelErrIllegalArgs);
	EXPECT_EQ(helCreateSliceView(a, 0, kPage + 1, 0, &h), kHelErrIllegalArgs);
	EXPECT_EQ(helCreateSliceView(a, 0, kPage, 2, &h), kHelErrIllegalArgs) << "unknown flag";
	EXPECT_EQ(helCreateSliceView(a, kPage, 2 * kPage, 0, &h), kHelErrBufferTooSmall);
	EXPECT_EQ(helCreateSliceView(a, 3 * kPage, 0, 0, &h), kHelErrBufferTooSmall);
	EXPECT_EQ(helCreateSliceView(12345, 0, kPage, 0, &h), kHelErrNoDescriptor);
	EXPECT_EQ(helCreateSliceView(slice_of(a, 0, kPage), 0, kPage, 0, &h), kHelErrBadDescriptor)
			<< "a slice of a slice";
	EXPECT_EQ(helCreateSliceView(make_queue(), 0, kPage, 0, &h), kHelErrBadDescriptor);
}

} // namespace
