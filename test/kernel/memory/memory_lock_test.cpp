// Memory locks (src/kernel/memory/memory_lock.cpp): SQ LockMemoryView on managed memory, which
// waits for the pager and keeps the pages through invalidations, and on anonymous memory.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <span>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using namespace helsim::test;

constexpr std::size_t kPage = 4096;

helsim::MachineConfig quiet(helsim::MachineConfig c = {}) {
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

void fail_on_other(helsim::Element &&e) {
	ADD_FAILURE() << "unexpected completion " << e.context();
}

char *map_view(HelHandle view, std::size_t size, std::uint32_t flags) {
	void *p = nullptr;
	EXPECT_EQ(helMapMemory(view, kHelNullHandle, nullptr, 0, size, flags, &p), kHelErrNone);
	return static_cast<char *>(p);
}

HelManageResult wait_request(helsim::Dispatcher &d, std::uintptr_t context) {
	return d.wait_for(context, fail_on_other).as<HelManageResult>();
}

// Locking frontal memory waits until the pager has initialized every page; locked pages stay
// through an invalidation, and go with the next one after the lock handle is closed.
void lock_waits_for_the_pager() {
	HelHandle backing, frontal;
	ASSERT_EQ(helCreateManagedMemory(2 * kPage, 0, &backing, &frontal), kHelErrNone);
	char *back = map_view(backing, 2 * kPage, kHelMapProtRead | kHelMapProtWrite);
	helsim::Dispatcher d;
	d.submit(kHelSubmitLockMemoryView, 1, HelSqLockMemoryView{frontal, 0, 2 * kPage});
	d.submit(kHelSubmitManageMemory, 2, HelSqManageMemory{backing});
	d.flush();
	auto first = wait_request(d, 2);
	EXPECT_EQ(first.type, kHelManageInitialize);
	EXPECT_EQ(first.offset, 0u);
	EXPECT_EQ(first.length, kPage);
	EXPECT_FALSE(d.poll().has_value()) << "the lock completed before its pages were there";
	std::memset(back, 'a', kPage);
	d.submit(kHelSubmitManageMemory, 3, HelSqManageMemory{backing});
	EXPECT_EQ(helUpdateMemory(backing, kHelManageInitialize, 0, kPage), kHelErrNone);
	d.flush();
	auto second = wait_request(d, 3);
	EXPECT_EQ(second.offset, kPage) << "the lock went on to the next page";
	EXPECT_FALSE(d.poll().has_value());
	std::memset(back + kPage, 'b', kPage);
	EXPECT_EQ(helUpdateMemory(backing, kHelManageInitialize, kPage, kPage), kHelErrNone);
	auto locked = d.wait_for(1, fail_on_other);
	ASSERT_EQ(locked.error(), kHelErrNone);
	HelHandle lock = locked.as<HelHandleResult>().handle;
	EXPECT_EQ(info_of(lock).type, kHelDescMemoryViewLock);
	EXPECT_EQ(info_of(lock).rights, 0u);

	HelSqInvalidateMemory invalidate{backing, 0, 2 * kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitInvalidateMemory, invalidate).error(), kHelErrNone);
	// Reading the locked pages needs no pager (a request would complete operation 4).
	d.submit(kHelSubmitManageMemory, 4, HelSqManageMemory{backing});
	d.flush();
	char *front = map_view(frontal, 2 * kPage, kHelMapProtRead | kHelMapDontRequireBacking);
	EXPECT_EQ(helLog(kHelLogSeverityDebug, front, 2 * kPage), kHelErrNone);
	EXPECT_EQ(front[0], 'a');
	EXPECT_EQ(front[kPage], 'b');
	EXPECT_FALSE(d.poll().has_value()) << "a locked page was invalidated";

	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, lock), kHelErrNone);
	EXPECT_EQ(sq_call(d, kHelSubmitInvalidateMemory, invalidate).error(), kHelErrNone);
	EXPECT_EQ(helLog(kHelLogSeverityDebug, front, 1), kHelErrFault) << "unlocked: invalidated";
	char buffer = 0;
	d.submit(kHelSubmitReadMemory, 5, HelSqReadMemory{frontal, 0, 1, &buffer});
	d.flush();
	auto again = wait_request(d, 4);
	EXPECT_EQ(again.offset, 0u);
	std::memset(back, 'c', kPage);
	EXPECT_EQ(helUpdateMemory(backing, kHelManageInitialize, 0, kPage), kHelErrNone);
	EXPECT_EQ(d.wait_for(5, fail_on_other).error(), kHelErrNone);
	EXPECT_EQ(buffer, 'c');
}

TEST(MemoryLock, LockOfFrontalMemoryWaitsForThePager) {
	run_clean(quiet(), lock_waits_for_the_pager);
}

TEST(MemoryLock, LockOfFrontalMemoryWaitsForThePagerUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				run_clean(quiet(helsim::testing::deterministic(seed)), lock_waits_for_the_pager);
			},
			12);
}

TEST(MemoryLock, AnonymousMemoryLocksAtOnceAndRangesAndRightsAreChecked) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	helsim::Dispatcher d;
	HelHandle memory = kHelNullHandle;
	ASSERT_EQ(helAllocateMemory(2 * kPage, 0, nullptr, &memory), kHelErrNone);
	auto locked = sq_call(d, kHelSubmitLockMemoryView, HelSqLockMemoryView{memory, 0, 2 * kPage});
	ASSERT_EQ(locked.error(), kHelErrNone);
	HelHandle lock = locked.as<HelHandleResult>().handle;
	EXPECT_EQ(info_of(lock).type, kHelDescMemoryViewLock);
	// The lock keeps the memory: it outlives the memory's handle.
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, lock), kHelErrNone);

	ASSERT_EQ(helAllocateMemory(2 * kPage, 0, nullptr, &memory), kHelErrNone);
	HelSqLockMemoryView past_end{memory, kPage, 2 * kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitLockMemoryView, past_end).error(), kHelErrFault)
			<< "thor reports a refused range as a fault";
	HelSqLockMemoryView empty{memory, 100, 0};
	auto nothing = sq_call(d, kHelSubmitLockMemoryView, empty);
	EXPECT_EQ(nothing.error(), kHelErrNone) << "an empty range locks nothing, successfully";
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, nothing.as<HelHandleResult>().handle),
			kHelErrNone);
	HelHandle no_pin = kHelNullHandle;
	ASSERT_EQ(helTransferDescriptor(memory, kHelThisUniverse, kHelTransferDescriptorOut,
					  kHelRightsMax & ~kHelRightPin, 0, &no_pin),
			kHelErrNone);
	auto refused = sq_call(d, kHelSubmitLockMemoryView, HelSqLockMemoryView{no_pin, 0, kPage});
	EXPECT_EQ(refused.context(), ~std::uintptr_t{0});
	EXPECT_EQ(refused.error(), kHelErrBadRights);
	refused = sq_call(d, kHelSubmitLockMemoryView, HelSqLockMemoryView{make_token(), 0, kPage});
	EXPECT_EQ(refused.error(), kHelErrBadDescriptor);
	refused = sq_call(d, kHelSubmitLockMemoryView, HelSqLockMemoryView{9999, 0, kPage});
	EXPECT_EQ(refused.error(), kHelErrNoDescriptor);
}

} // namespace
