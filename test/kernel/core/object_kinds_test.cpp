// The registry of object kinds (src/kernel/core/object_kinds.cpp), below hel.h: no machine.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "kernel/core/object_kinds.hpp"

namespace {

using helsim::kernel::KindRow;
using helsim::kernel::ObjectKind;
using helsim::kernel::ObjectKinds;
using helsim::kernel::Teardown;

TEST(ObjectKinds, BuiltinsKeepTheirIdsNamesAndDescriptorTypes) {
	ObjectKinds kinds;
	helsim::kernel::register_builtin_kinds(kinds);
	ASSERT_EQ(kinds.size(), helsim::kernel::kBuiltinKinds);
	struct Expected {
		ObjectKind kind;
		const char *name;
		int type;
	};
	// What reports, traces and helDescriptorInfo showed when the kinds were a closed enum.
	const Expected expected[] = {{ObjectKind::universe, "universe", kHelDescUniverse},
			{ObjectKind::queue, "queue", kHelDescQueue},
			{ObjectKind::memory_view, "memory", kHelDescMemoryView},
			{ObjectKind::memory_slice, "memory slice", kHelDescMemorySlice},
			{ObjectKind::memory_view_lock, "memory lock", kHelDescMemoryViewLock},
			{ObjectKind::swap_space, "swap space", kHelDescSwapSpace},
			{ObjectKind::address_space, "address space", kHelDescAddressSpace},
			{ObjectKind::thread, "thread", kHelDescThread},
			{ObjectKind::lane, "lane", kHelDescLane}, {ObjectKind::token, "token", kHelDescToken},
			{ObjectKind::oneshot_event, "oneshot event", kHelDescOneshotEvent},
			{ObjectKind::bitset_event, "bitset event", kHelDescBitsetEvent},
			{ObjectKind::irq_pin, "irq pin", kHelDescIrqPin}, {ObjectKind::irq, "irq", kHelDescIrq},
			{ObjectKind::kernlet_object, "kernlet", kHelDescKernletObject},
			{ObjectKind::bound_kernlet, "bound kernlet", kHelDescBoundKernlet},
			{ObjectKind::dma_space, "dma space", kHelDescDmaSpace},
			{ObjectKind::io_space, "io space", kHelDescIo},
			{ObjectKind::stream, "stream", kHelDescNone}};
	for (const Expected &e : expected) {
		const KindRow &row = kinds[e.kind];
		EXPECT_EQ(row.name, e.name);
		EXPECT_EQ(row.descriptor_type, e.type) << e.name;
		EXPECT_EQ(row.rights, helsim::kernel::kRightsMask) << e.name << ": hel's rights only";
		EXPECT_EQ(row.default_rights & ~row.rights, 0u) << e.name;
		EXPECT_EQ(row.teardown,
				e.kind == ObjectKind::universe ? Teardown::close_handles : Teardown::abandon)
				<< e.name;
	}
}

TEST(ObjectKinds, AddAppendsRowsAndRefusesBadOnes) {
	ObjectKinds kinds;
	constexpr std::uint32_t kOwn = 1u << 16;
	ObjectKind first = kinds.add({"first", 7, helsim::kernel::kRightsMask | kOwn, kOwn});
	EXPECT_EQ(static_cast<std::size_t>(first), 0u);
	EXPECT_TRUE(kinds.contains(first));
	EXPECT_FALSE(kinds.contains(static_cast<ObjectKind>(1)));
	EXPECT_EQ(kinds[first].default_rights, kOwn);
	EXPECT_THROW(kinds.add({"", 0, 0, 0}), std::invalid_argument);
	EXPECT_THROW(kinds.add({"first", 0, 0, 0}), std::invalid_argument);
	EXPECT_THROW(kinds.add({"hole", 0, 1u << 14, 0}), std::invalid_argument)
			<< "bits 14 and 15 belong to nobody";
	EXPECT_THROW(kinds.add({"default", 0, kOwn, kOwn << 1}), std::invalid_argument);
	EXPECT_EQ(kinds.size(), 1u) << "a refused row is not added";
	for (std::size_t i = 1; i < helsim::kernel::kMaxObjectKinds; ++i)
		kinds.add({"kind " + std::to_string(i), 0, 0, 0});
	EXPECT_THROW(kinds.add({"one too many", 0, 0, 0}), std::length_error);
	EXPECT_EQ(kinds.size(), helsim::kernel::kMaxObjectKinds);
}

} // namespace
