// Copy-on-write memory (src/kernel/memory/cow_memory.cpp): helCopyOnWrite over zero memory and over
// other views, SQ ForkMemory with private, shared and pinned pages, one CoW view mapped in
// several places, argument and rights checks, and running out of physical memory.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;
constexpr std::uint64_t kWritable = 2;
constexpr std::uintptr_t kRefused = ~std::uintptr_t{0};

std::uint64_t pte(const void *p) { return helsim::debug::page_table_entry(p); }

helsim::MachineConfig quiet(std::size_t memory = std::size_t{64} << 20) {
	helsim::MachineConfig c;
	c.physical_memory = memory;
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

HelHandle cow_of(HelHandle source, std::size_t offset, std::size_t size) {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCopyOnWrite(source, offset, size, &h), kHelErrNone);
	return h;
}

char *map_rw(HelHandle memory, std::size_t size, HelHandle space = kHelNullHandle) {
	void *p = nullptr;
	EXPECT_EQ(helMapMemory(memory, space, nullptr, 0, size, kRW, &p), kHelErrNone);
	return static_cast<char *>(p);
}

std::uintptr_t physical(const void *p) {
	std::uintptr_t phys = 0;
	EXPECT_EQ(helPointerPhysical(kHelNullHandle, p, &phys), kHelErrNone);
	return phys;
}

// A thread attached to a machine, with a queue for the SQ operations.
class Cow : public ::testing::Test {
protected:
	explicit Cow(std::size_t memory = std::size_t{64} << 20) : machine{quiet(memory)} {}

	helsim::Machine machine;
	std::unique_ptr<helsim::Attachment> attached = machine.attach();
	helsim::Dispatcher dispatcher;

	HelError read(HelHandle h, std::uintptr_t address, void *buffer, std::size_t length) {
		HelSqReadMemory request{h, address, length, buffer};
		return sq_call(dispatcher, kHelSubmitReadMemory, request).error();
	}
	HelError write(HelHandle h, std::uintptr_t address, const void *buffer, std::size_t length) {
		HelSqWriteMemory request{h, address, length, buffer};
		return sq_call(dispatcher, kHelSubmitWriteMemory, request).error();
	}
	std::string read_string(HelHandle h, std::uintptr_t address, std::size_t length) {
		std::string s(length, '?');
		EXPECT_EQ(read(h, address, s.data(), length), kHelErrNone);
		return s;
	}
	// ForkMemory: the forked handle, or kHelNullHandle with `error` set. `refused` tells
	// whether the error came at submission (context ~0) rather than as the completion.
	HelHandle fork(HelHandle h, HelError *error = nullptr, bool *refused = nullptr) {
		auto element = sq_call(dispatcher, kHelSubmitForkMemory, HelSqForkMemory{h});
		if (refused)
			*refused = element.context() == kRefused;
		auto result = element.as<HelHandleResult>();
		if (element.context() == kRefused)
			result.error = element.error();
		if (error)
			*error = result.error;
		else
			EXPECT_EQ(result.error, kHelErrNone);
		return result.error == kHelErrNone ? result.handle : HelHandle{kHelNullHandle};
	}
	HelHandle lock(HelHandle h, std::uintptr_t offset, std::size_t size) {
		auto element =
				sq_call(dispatcher, kHelSubmitLockMemoryView, HelSqLockMemoryView{h, offset, size});
		EXPECT_NE(element.context(), kRefused);
		auto result = element.as<HelHandleResult>();
		EXPECT_EQ(result.error, kHelErrNone);
		return result.handle;
	}
};

class CowSmallMemory : public Cow {
protected:
	CowSmallMemory() : Cow{std::size_t{512} << 10} {}
};

TEST_F(Cow, ZeroMemoryWriteForkWriteEachSideSeesItsOwnData) {
	HelHandle parent = cow_of(kHelZeroMemory, 0, 4 * kPage);
	char *a = map_rw(parent, 4 * kPage);
	EXPECT_EQ(a[0], 0);
	EXPECT_EQ(a[3 * kPage + 100], 0);
	EXPECT_FALSE(pte(a) & kWritable) << "a read of an unwritten page maps the zero frame read-only";
	EXPECT_EQ(physical(a), physical(a + 3 * kPage)) << "one zero frame serves every page";
	std::strcpy(a, "parent");
	EXPECT_TRUE(pte(a) & kWritable) << "the write copied the page into a private frame";
	EXPECT_NE(physical(a), physical(a + 3 * kPage));

	HelHandle child = fork(parent);
	ASSERT_NE(child, kHelNullHandle);
	char *b = map_rw(child, 4 * kPage);
	EXPECT_STREQ(b, "parent") << "the fork starts with the parent's data";
	EXPECT_EQ(helLog(kHelLogSeverityDebug, b, 6), kHelErrNone) << "kernel reads see it too";
	EXPECT_EQ(physical(a), physical(b)) << "shared until one side writes";
	std::strcpy(b, "child");
	EXPECT_STREQ(a, "parent") << "the child's write stays in the child";
	std::strcpy(a, "parent again");
	EXPECT_STREQ(b, "child") << "and the parent's in the parent";
	EXPECT_NE(physical(a), physical(b));

	// The same through SQ Read/WriteMemory on the views themselves.
	EXPECT_EQ(read_string(parent, 0, 13), std::string("parent again", 13));
	EXPECT_EQ(read_string(child, 0, 6), std::string("child", 6));
	ASSERT_EQ(write(child, 2 * kPage, "sq", 3), kHelErrNone);
	EXPECT_STREQ(b + 2 * kPage, "sq");
	EXPECT_EQ(a[2 * kPage], 0);
	ASSERT_EQ(write(parent, 2 * kPage + 1, "p", 1), kHelErrNone);
	EXPECT_EQ(a[2 * kPage + 1], 'p');
	EXPECT_EQ(b[2 * kPage + 1], 'q');
	EXPECT_EQ(a[kPage], 0) << "pages nobody wrote are zero on both sides";
	EXPECT_EQ(b[kPage], 0);
}

TEST_F(Cow, ForksOfForksKeepEveryGenerationApart) {
	HelHandle first = cow_of(kHelZeroMemory, 0, 2 * kPage);
	char *a = map_rw(first, 2 * kPage);
	std::strcpy(a, "one");
	std::strcpy(a + kPage, "shared");
	HelHandle second = fork(first);
	char *b = map_rw(second, 2 * kPage);
	std::strcpy(b, "two");
	HelHandle third = fork(second);
	char *c = map_rw(third, 2 * kPage);
	EXPECT_STREQ(c, "two");
	std::strcpy(c, "three");
	std::strcpy(a, "ONE");
	EXPECT_STREQ(a, "ONE");
	EXPECT_STREQ(b, "two");
	EXPECT_STREQ(c, "three");
	for (char *p : {a, b, c})
		EXPECT_STREQ(p + kPage, "shared") << "the page written before the first fork";
	// The first view going away leaves the frames the others still share.
	ASSERT_EQ(helUnmapMemory(kHelNullHandle, a, 2 * kPage), kHelErrNone);
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, first), kHelErrNone);
	EXPECT_STREQ(b + kPage, "shared");
	EXPECT_STREQ(c + kPage, "shared");
}

TEST_F(Cow, OverAllocatedMemoryReadsThroughUntilWritten) {
	HelHandle source = kHelNullHandle;
	auto *s = static_cast<char *>(map_new_memory(3 * kPage, &source));
	std::strcpy(s, "page0");
	std::strcpy(s + kPage, "page1");
	std::strcpy(s + 2 * kPage, "page2");
	HelHandle cow = cow_of(source, kPage, 2 * kPage);
	char *c = map_rw(cow, 2 * kPage);
	EXPECT_STREQ(c, "page1") << "the window starts at the offset";
	EXPECT_STREQ(c + kPage, "page2");
	EXPECT_EQ(physical(c), physical(s + kPage)) << "reads show the source's frame";
	EXPECT_FALSE(pte(c) & kWritable);

	std::strcpy(c, "mine");
	EXPECT_STREQ(c, "mine");
	EXPECT_STREQ(s + kPage, "page1") << "a write to the CoW view never reaches the source";
	EXPECT_NE(physical(c), physical(s + kPage));
	EXPECT_EQ(read_string(cow, 0, 5), std::string("mine", 5));

	// A page the CoW view never wrote keeps following the source.
	std::strcpy(s + 2 * kPage, "changed");
	EXPECT_STREQ(c + kPage, "changed");
	// And the copy is the source's data at the time of the write.
	ASSERT_EQ(write(cow, kPage + 7, "!", 1), kHelErrNone);
	EXPECT_STREQ(c + kPage, "changed!");
	std::strcpy(s + 2 * kPage, "later");
	EXPECT_STREQ(c + kPage, "changed!");
}

TEST_F(Cow, PinnedPagesAreCopiedIntoTheForkAndKeepTheirFrame) {
	HelHandle parent = cow_of(kHelZeroMemory, 0, 2 * kPage);
	char *a = map_rw(parent, 2 * kPage);
	std::strcpy(a, "pinned");
	std::strcpy(a + kPage, "free");
	std::uintptr_t pinned_frame = physical(a);
	std::uintptr_t free_frame = physical(a + kPage);
	HelHandle pin = lock(parent, 0, kPage);

	HelHandle child = fork(parent);
	char *b = map_rw(child, 2 * kPage);
	EXPECT_STREQ(b, "pinned");
	EXPECT_STREQ(b + kPage, "free");
	EXPECT_NE(physical(b), pinned_frame) << "the fork got a copy of the pinned page";
	EXPECT_EQ(physical(b + kPage), free_frame) << "the unpinned page is shared";

	std::strcpy(a, "still mine");
	EXPECT_EQ(physical(a), pinned_frame) << "a write to the pinned page copies nothing";
	EXPECT_STREQ(b, "pinned");
	std::strcpy(a + kPage, "copied");
	EXPECT_NE(physical(a + kPage), free_frame) << "the shared page is copied on write";
	EXPECT_STREQ(b + kPage, "free");
	EXPECT_EQ(physical(b + kPage), free_frame);

	// Unpinned, the page is shared by the next fork like any other.
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, pin), kHelErrNone);
	HelHandle grandchild = fork(parent);
	char *c = map_rw(grandchild, 2 * kPage);
	EXPECT_STREQ(c, "still mine");
	EXPECT_EQ(physical(c), pinned_frame);
}

TEST_F(Cow, ForkNeedsACopyOnWriteViewWithDerive) {
	HelHandle memory = kHelNullHandle;
	ASSERT_EQ(helAllocateMemory(kPage, 0, nullptr, &memory), kHelErrNone);
	HelError error = kHelErrNone;
	bool refused = true;
	EXPECT_EQ(fork(memory, &error, &refused), kHelNullHandle);
	EXPECT_EQ(error, kHelErrIllegalObject);
	EXPECT_FALSE(refused) << "reported in the operation's completion";

	HelHandle cow = cow_of(kHelZeroMemory, 0, kPage);
	auto info = info_of(cow);
	EXPECT_EQ(info.type, kHelDescMemoryView);
	EXPECT_EQ(info.rights,
			std::uint32_t{kHelRightRead | kHelRightWrite | kHelRightExecute | kHelRightAssign |
					kHelRightDerive | kHelRightProvision | kHelRightPin | kHelRightFence |
					kHelRightManage});
	HelHandle forked = fork(cow);
	EXPECT_EQ(info_of(forked).rights, info.rights) << "the fork has the forked handle's rights";

	HelHandle no_derive = narrowed(cow, kHelRightsMax & ~std::uint32_t{kHelRightDerive});
	EXPECT_EQ(fork(no_derive, &error, &refused), kHelNullHandle);
	EXPECT_EQ(error, kHelErrBadRights);
	EXPECT_TRUE(refused);
	HelHandle no_read = narrowed(cow, kHelRightsMax & ~std::uint32_t{kHelRightRead});
	EXPECT_EQ(fork(no_read, &error, &refused), kHelNullHandle);
	EXPECT_EQ(error, kHelErrBadRights);
	EXPECT_EQ(fork(12345, &error, &refused), kHelNullHandle);
	EXPECT_EQ(error, kHelErrNoDescriptor);
	EXPECT_TRUE(refused);
	EXPECT_EQ(fork(make_token(), &error, &refused), kHelNullHandle);
	EXPECT_EQ(error, kHelErrBadDescriptor);
}

TEST_F(Cow, CopyOnWriteChecksItsArguments) {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCopyOnWrite(kHelZeroMemory, 0, 0, &h), kHelErrIllegalArgs);
	EXPECT_EQ(helCopyOnWrite(kHelZeroMemory, 1, kPage, &h), kHelErrIllegalArgs);
	EXPECT_EQ(helCopyOnWrite(kHelZeroMemory, 0, kPage + 1, &h), kHelErrIllegalArgs);
	EXPECT_EQ(helCopyOnWrite(kHelZeroMemory, 0, std::size_t{1} << 41, &h), kHelErrNoMemory);
	EXPECT_EQ(helCopyOnWrite(kHelZeroMemory, std::size_t{1} << 41, kPage, &h), kHelErrNone)
			<< "zero memory has no end";

	HelHandle memory = kHelNullHandle;
	ASSERT_EQ(helAllocateMemory(2 * kPage, 0, nullptr, &memory), kHelErrNone);
	EXPECT_EQ(helCopyOnWrite(memory, kPage, 2 * kPage, &h), kHelErrBufferTooSmall);
	EXPECT_EQ(helCopyOnWrite(memory, 2 * kPage, kPage, &h), kHelErrBufferTooSmall);
	EXPECT_EQ(helCopyOnWrite(memory, ~std::uintptr_t{0} & ~(kPage - 1), kPage, &h),
			kHelErrIllegalArgs)
			<< "a range that wraps";
	EXPECT_EQ(helCopyOnWrite(12345, 0, kPage, &h), kHelErrNoDescriptor);
	EXPECT_EQ(helCopyOnWrite(kHelThisThread, 0, kPage, &h), kHelErrBadDescriptor);
	EXPECT_EQ(helCopyOnWrite(make_queue(), 0, kPage, &h), kHelErrBadDescriptor);
	HelHandle slice = kHelNullHandle;
	ASSERT_EQ(helCreateSliceView(memory, 0, kPage, 0, &slice), kHelErrNone);
	EXPECT_EQ(helCopyOnWrite(slice, 0, kPage, &h), kHelErrBadDescriptor) << "slices are no views";
	EXPECT_EQ(helCopyOnWrite(narrowed(memory, kHelRightsMax & ~std::uint32_t{kHelRightRead}), 0,
					  kPage, &h),
			kHelErrBadRights);
	EXPECT_EQ(helCopyOnWrite(narrowed(memory, kHelRightsMax & ~std::uint32_t{kHelRightAssign}), 0,
					  kPage, &h),
			kHelErrBadRights);

	// No Execute on the source: none on the copy either.
	ASSERT_EQ(helCopyOnWrite(narrowed(memory, kHelRightsMax & ~std::uint32_t{kHelRightExecute}), 0,
					  kPage, &h),
			kHelErrNone);
	EXPECT_FALSE(info_of(h).rights & kHelRightExecute);
	EXPECT_TRUE(info_of(h).rights & kHelRightDerive);
	void *p = nullptr;
	EXPECT_EQ(helMapMemory(h, kHelNullHandle, nullptr, 0, kPage,
					  kHelMapProtRead | kHelMapProtExecute, &p),
			kHelErrBadRights);
	EXPECT_EQ(helMapMemory(h, kHelNullHandle, nullptr, 0, 2 * kPage, kHelMapProtRead, &p),
			kHelErrBufferTooSmall);
}

TEST_F(Cow, OneViewMappedTwiceAndInAnotherSpaceIsOneObject) {
	HelHandle cow = cow_of(kHelZeroMemory, 0, 3 * kPage);
	char *a = map_rw(cow, 3 * kPage);
	HelHandle space = make_space();
	char *there = map_rw(cow, 3 * kPage, space);
	auto at = [&](std::size_t offset) { return reinterpret_cast<std::uintptr_t>(there) + offset; };

	// Our mapping shows the zero frame read-only; the other space's write copies the page,
	// and the copy must replace what our mapping shows.
	EXPECT_EQ(a[0], 0);
	ASSERT_EQ(write(space, at(0), "via the other space", 20), kHelErrNone);
	EXPECT_STREQ(a, "via the other space");
	// And the other way round.
	EXPECT_EQ(read_string(space, at(kPage), 1), std::string(1, '\0'));
	std::strcpy(a + kPage, "via ours");
	EXPECT_EQ(read_string(space, at(kPage), 9), std::string("via ours", 9));

	// Two mappings in one space.
	char *again = map_rw(cow, 3 * kPage);
	EXPECT_EQ(a[2 * kPage], 0);
	EXPECT_EQ(again[2 * kPage], 0);
	again[2 * kPage] = 'x';
	EXPECT_EQ(a[2 * kPage], 'x');
	EXPECT_STREQ(again, "via the other space");

	// A fork through the other space's eyes: it keeps the data at the time of the fork.
	HelHandle forked = fork(cow);
	std::strcpy(a, "after the fork");
	EXPECT_EQ(read_string(space, at(0), 15), std::string("after the fork", 15));
	EXPECT_EQ(read_string(forked, 0, 20), std::string("via the other space", 20));
}

TEST_F(CowSmallMemory, AWriteWithoutPhysicalMemoryFailsWithNoMemory) {
	HelHandle cow = cow_of(kHelZeroMemory, 0, 4 * kPage);
	char byte = 'z';
	ASSERT_EQ(read(cow, 0, &byte, 1), kHelErrNone) << "reads take only the zero frame";
	EXPECT_EQ(byte, 0);
	// Take every free frame.
	std::vector<HelHandle> hogs;
	for (HelHandle h; helAllocateMemory(kPage, kHelAllocContinuous, nullptr, &h) == kHelErrNone;)
		hogs.push_back(h);
	ASSERT_FALSE(hogs.empty());
	EXPECT_EQ(write(cow, 0, "x", 1), kHelErrNoMemory) << "the copy has no frame";
	EXPECT_EQ(read(cow, kPage, &byte, 1), kHelErrNone) << "reads still work";
	HelError error = kHelErrNone;
	HelHandle pin = kHelNullHandle;
	{
		// A pinned private page needs a frame at fork time too.
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, hogs.back()), kHelErrNone);
		hogs.pop_back();
		ASSERT_EQ(write(cow, 0, "x", 1), kHelErrNone);
		pin = lock(cow, 0, kPage);
		EXPECT_EQ(fork(cow, &error), kHelNullHandle);
		EXPECT_EQ(error, kHelErrNoMemory);
	}
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, hogs.back()), kHelErrNone);
	hogs.pop_back();
	HelHandle forked = fork(cow);
	EXPECT_EQ(read_string(forked, 0, 1), "x");
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, pin), kHelErrNone);
	for (HelHandle h : hogs)
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
}

// Everything a family of forks allocated goes back to physical memory with its last view.
TEST(CowLifetime, FramesAndViewsAreFreedWithTheLastReference) {
	helsim::Machine machine{quiet()};
	machine.spawn("forker", [](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		HelHandle parent = cow_of(kHelZeroMemory, 0, 8 * kPage);
		char *a = map_rw(parent, 8 * kPage);
		for (std::size_t i = 0; i < 8; ++i)
			a[i * kPage] = static_cast<char>('a' + i);
		auto element = sq_call(d, kHelSubmitForkMemory, HelSqForkMemory{parent});
		HelHandle child = element.as<HelHandleResult>().handle;
		ASSERT_EQ(element.error(), kHelErrNone);
		char *b = map_rw(child, 8 * kPage);
		for (std::size_t i = 0; i < 8; i += 2)
			b[i * kPage] = 'X';
		EXPECT_EQ(a[2 * kPage], 'c');
		EXPECT_EQ(b[3 * kPage], 'd');
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

// Writers in several spaces race for the first write of the same pages of one CoW view while
// one of them forks it over and over: every write must land in the view's one private frame
// per page, and every fork must be a consistent snapshot of monotonic counters.
TEST(CowStress, ConcurrentFirstWritesAndForksFromManySpaces) {
	static constexpr int kWriters = 4;
	static constexpr int kRounds = 40;
	static constexpr std::size_t kPages = 16;
	helsim::MachineConfig config = quiet();
	config.cpus = 4;
	helsim::Machine machine{config};
	HelHandle cow = kHelNullHandle, shared = kHelNullHandle;
	{
		auto attached = machine.attach();
		cow = cow_of(kHelZeroMemory, 0, kPages * kPage);
		ASSERT_EQ(helAllocateMemory(kPage, 0, nullptr, &shared), kHelErrNone);
	}
	for (int w = 0; w < kWriters; ++w) {
		machine.spawn("writer" + std::to_string(w),
				[w](std::span<const HelHandle> handles) {
					auto *base = map_rw(handles[0], kPages * kPage);
					auto *done = reinterpret_cast<int *>(map_rw(handles[1], kPage));
					helsim::Dispatcher d;
					for (int round = 1; round <= kRounds; ++round) {
						for (std::size_t page = 0; page < kPages; ++page) {
							auto *slot = reinterpret_cast<volatile int *>(base + page * kPage) + w;
							EXPECT_EQ(*slot, round - 1) << "writer " << w << " page " << page;
							*slot = round;
						}
						if (w == 0 && round % 8 == 0) {
							auto element =
									sq_call(d, kHelSubmitForkMemory, HelSqForkMemory{handles[0]});
							ASSERT_EQ(element.error(), kHelErrNone);
							HelHandle fork = element.as<HelHandleResult>().handle;
							auto *copy = reinterpret_cast<int *>(map_rw(fork, kPages * kPage));
							for (std::size_t page = 0; page < kPages; ++page) {
								EXPECT_EQ(copy[page * kPage / sizeof(int)], round)
										<< "our own slot";
								for (int other = 1; other < kWriters; ++other) {
									int v = copy[page * kPage / sizeof(int) + other];
									EXPECT_TRUE(v >= 0 && v <= kRounds) << v;
								}
							}
							EXPECT_EQ(helUnmapMemory(kHelNullHandle, copy, kPages * kPage),
									kHelErrNone);
							EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, fork), kHelErrNone);
						}
					}
					__atomic_fetch_add(done, 1, __ATOMIC_SEQ_CST);
					EXPECT_EQ(helFutexWake(done, 1), kHelErrNone);
				},
				{cow, shared});
	}
	machine.spawn("checker",
			[](std::span<const HelHandle> handles) {
				auto *base = map_rw(handles[0], kPages * kPage);
				auto *done = reinterpret_cast<int *>(map_rw(handles[1], kPage));
				ASSERT_TRUE(wait_for(done, kWriters));
				for (std::size_t page = 0; page < kPages; ++page)
					for (int w = 0; w < kWriters; ++w)
						EXPECT_EQ(reinterpret_cast<int *>(base + page * kPage)[w], kRounds)
								<< "writer " << w << " page " << page;
			},
			{cow, shared});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
}

} // namespace
