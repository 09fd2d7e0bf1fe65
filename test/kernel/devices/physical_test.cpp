// helAccessPhysical (src/kernel/devices/hardware_memory.cpp): the hardware access token, range and
// caching-mode checks, and hardware memory views mapped like any other memory, with
// helPointerPhysical naming the frames they were made from.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "../../support.hpp"
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

constexpr std::size_t kPage = 4096;
constexpr std::size_t kMemory = std::size_t{16} << 20;
constexpr std::uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;

helsim::MachineConfig config() {
	helsim::MachineConfig c;
	c.physical_memory = kMemory;
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

// Runs `body(token)` on a driver thread that holds the hardware access token; a clean run.
void with_token(const std::function<void(HelHandle)> &body) {
	helsim::Machine machine{config()};
	HelHandle token = machine.hardware_access_token();
	machine.spawn("driver", [&](std::span<const HelHandle> handles) { body(handles[0]); }, {token});
	expect_clean(machine.run());
}

HelError access(HelHandle token, std::uintptr_t physical, std::size_t size,
		std::uint32_t caching = kHelCachingDefault) {
	HelHandle h = kHelNullHandle;
	HelError e = helAccessPhysical(token, physical, size, caching, &h);
	if (e == kHelErrNone) {
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	}
	return e;
}

TEST(Physical, OnlyTheHardwareTokenWithInvokeOpensPhysicalMemory) {
	with_token([](HelHandle token) {
		EXPECT_EQ(access(token, 0, kPage), kHelErrNone);
		HelHandle other = make_token();
		// helCreateToken hands out tokens without rights: they fail for the missing Invoke.
		EXPECT_EQ(access(other, 0, kPage), kHelErrBadRights) << "another token";
		HelHandle queue = make_queue();
		EXPECT_EQ(access(queue, 0, kPage), kHelErrBadDescriptor) << "not a token";
		HelHandle weak = narrowed(token, 0);
		EXPECT_EQ(access(weak, 0, kPage), kHelErrBadRights) << "no Invoke";
		EXPECT_EQ(access(12345, 0, kPage), kHelErrNoDescriptor);
		EXPECT_EQ(access(kHelNullHandle, 0, kPage), kHelErrNoDescriptor);
		// The token is checked first: a bad range with a bad token reports the token.
		EXPECT_EQ(access(other, 1, 0), kHelErrBadRights);
		for (HelHandle h : {other, queue, weak})
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	});
}

TEST(Physical, RangesMustBeWholePagesInsideTheMachinesMemory) {
	with_token([](HelHandle token) {
		EXPECT_EQ(access(token, 0, 0), kHelErrIllegalArgs) << "size 0";
		EXPECT_EQ(access(token, 1, kPage), kHelErrIllegalArgs) << "misaligned address";
		EXPECT_EQ(access(token, 0, kPage + 1), kHelErrIllegalArgs) << "misaligned size";
		EXPECT_EQ(access(token, kMemory - kPage, kPage), kHelErrNone) << "the last page";
		EXPECT_EQ(access(token, 0, kMemory), kHelErrNone) << "all of it";
		EXPECT_EQ(access(token, kMemory, kPage), kHelErrOutOfBounds);
		EXPECT_EQ(access(token, kMemory - kPage, 2 * kPage), kHelErrOutOfBounds);
		EXPECT_EQ(access(token, ~std::uintptr_t{0} & ~(kPage - 1), 2 * kPage), kHelErrOutOfBounds)
				<< "wraps around";
	});
}

TEST(Physical, EveryCachingModeIsAcceptedAndNoOther) {
	with_token([](HelHandle token) {
		for (std::uint32_t mode : {kHelCachingDefault, kHelCachingUncached, kHelCachingWriteCombine,
					 kHelCachingWriteThrough, kHelCachingWriteBack, kHelCachingMmio,
					 kHelCachingMmioNonPosted})
			EXPECT_EQ(access(token, 0, kPage, mode), kHelErrNone) << "mode " << mode;
		EXPECT_EQ(access(token, 0, kPage, kHelCachingMmioNonPosted + 1), kHelErrIllegalArgs);
	});
}

TEST(Physical, TheViewIsAMemoryViewOfTheRangesSize) {
	with_token([](HelHandle token) {
		HelHandle h = kHelNullHandle;
		ASSERT_EQ(helAccessPhysical(token, 8 * kPage, 3 * kPage, kHelCachingMmio, &h), kHelErrNone);
		HelDescriptorInfo info{-1};
		ASSERT_EQ(helDescriptorInfo(h, &info), kHelErrNone);
		EXPECT_EQ(info.type, kHelDescMemoryView);
		EXPECT_EQ(info_of(h).rights,
				std::uint32_t{kHelRightRead | kHelRightWrite | kHelRightExecute | kHelRightAssign |
						kHelRightProvision | kHelRightPin | kHelRightFence | kHelRightManage});
		std::size_t size = 0;
		EXPECT_EQ(helMemoryInfo(h, &size), kHelErrNone);
		EXPECT_EQ(size, 3 * kPage);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	});
}

// RAM the kernel gave to a memory object can be opened again by physical address (thor
// allows any range to the token's holder): both mappings show the same bytes, and
// helPointerPhysical on the hardware mapping names the address it was made from.
TEST(Physical, MappingsReachTheFramesTheyWereMadeFrom) {
	with_token([](HelHandle token) {
		HelHandle ram = kHelNullHandle;
		auto *p = static_cast<char *>(map_new_memory(2 * kPage, &ram, kHelAllocContinuous));
		std::strcpy(p + kPage + 8, "through RAM");
		std::uintptr_t physical = 0;
		ASSERT_EQ(helPointerPhysical(kHelNullHandle, p, &physical), kHelErrNone);
		ASSERT_EQ(physical % kPage, 0u);

		HelHandle hw = kHelNullHandle;
		ASSERT_EQ(helAccessPhysical(token, physical, 2 * kPage, kHelCachingUncached, &hw),
				kHelErrNone);
		void *window = nullptr;
		ASSERT_EQ(helMapMemory(hw, kHelNullHandle, nullptr, kPage, kPage, kRW, &window),
				kHelErrNone);
		auto *q = static_cast<char *>(window);
		EXPECT_STREQ(q + 8, "through RAM");
		std::strcpy(q + 100, "through the window");
		EXPECT_STREQ(p + kPage + 100, "through the window");
		std::uintptr_t back = 0;
		ASSERT_EQ(helPointerPhysical(kHelNullHandle, q + 123, &back), kHelErrNone);
		EXPECT_EQ(back, physical + kPage + 123);

		EXPECT_EQ(helUnmapMemory(kHelNullHandle, window, kPage), kHelErrNone);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, 2 * kPage), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, hw), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, ram), kHelErrNone);
	});
}

TEST(Physical, MappingPastTheViewOrWithoutRightsFails) {
	with_token([](HelHandle token) {
		HelHandle hw = kHelNullHandle;
		ASSERT_EQ(helAccessPhysical(token, 0, kPage, kHelCachingDefault, &hw), kHelErrNone);
		void *window = nullptr;
		EXPECT_EQ(helMapMemory(hw, kHelNullHandle, nullptr, 0, 2 * kPage, kRW, &window),
				kHelErrBufferTooSmall);
		HelHandle read_only = narrowed(hw, kHelRightRead | kHelRightAssign);
		EXPECT_EQ(helMapMemory(read_only, kHelNullHandle, nullptr, 0, kPage, kRW, &window),
				kHelErrBadRights);
		EXPECT_EQ(helMapMemory(read_only, kHelNullHandle, nullptr, 0, kPage, kHelMapProtRead,
						  &window),
				kHelErrNone);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, window, kPage), kHelErrNone);
		for (HelHandle h : {hw, read_only})
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	});
}

TEST(Physical, AFreshMachineWithoutTheTokenRequestedRefusesEveryToken) {
	helsim::Machine machine{config()};
	machine.spawn("driver", [](std::span<const HelHandle>) {
		HelHandle token = make_token();
		EXPECT_EQ(access(token, 0, kPage), kHelErrBadRights);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, token), kHelErrNone);
	});
	expect_clean(machine.run());
}

} // namespace
