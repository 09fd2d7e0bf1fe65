// Address spaces (src/kernel/memory/space.cpp) and anonymous memory (allocated_memory.cpp):
// helAllocateMemory, helMapMemory with every flag, helUnmapMemory splitting mappings,
// ProtectMemory, SynchronizeSpace, Read/WriteMemory, helPointerPhysical, helMemoryInfo, and
// the page table entries the kernel keeps for all of it.
#include <gtest/gtest.h>

#include <sys/mman.h>

#include <array>
#include <cstring>
#include <string>

#include "../../support.hpp"
#include "kernel/memory/page_table.hpp"
#include "sim/physical_memory.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;

constexpr std::uint64_t kPresent = 1, kWritable = 2, kUser = 4, kAccessed = 0x20, kDirty = 0x40;
constexpr std::uint64_t kNoExecute = 1ull << 63;

std::uint64_t pte(const void *p) { return helsim::debug::page_table_entry(p); }

HelHandle allocate(std::size_t size, std::uint32_t flags = 0) {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helAllocateMemory(size, flags, nullptr, &h), kHelErrNone);
	return h;
}

HelError map(HelHandle memory, void *pointer, std::size_t offset, std::size_t size,
		std::uint32_t flags, void **out, HelHandle space = kHelNullHandle) {
	return helMapMemory(memory, space, pointer, offset, size, flags, out);
}

HelError log_range(const void *p, std::size_t n) {
	return helLog(kHelLogSeverityDebug, static_cast<const char *>(p), n);
}

helsim::MachineConfig quiet(std::size_t memory = std::size_t{64} << 20) {
	helsim::MachineConfig c;
	c.physical_memory = memory;
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

TEST(Space, LazyMemoryGetsPageTableEntriesOnFirstTouch) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	auto *p = static_cast<volatile char *>(map_new_memory(2 * kPage));
	EXPECT_EQ(pte(const_cast<char *>(p)), 0u) << "mapping alone faults nothing in";
	EXPECT_EQ(p[0], 0) << "demand-zero page";
	std::uint64_t read = pte(const_cast<char *>(p));
	EXPECT_TRUE(read & kPresent);
	EXPECT_TRUE(read & kUser);
	EXPECT_TRUE(read & kAccessed);
	EXPECT_TRUE(read & kWritable) << "anonymous memory needs no copy on write";
	EXPECT_FALSE(read & kDirty) << "only read so far";
	EXPECT_TRUE(read & kNoExecute) << "mapped without kHelMapProtExecute";
	p[1] = 42;
	EXPECT_TRUE(pte(const_cast<char *>(p)) & kDirty);
	EXPECT_EQ(pte(const_cast<char *>(p + kPage)), 0u) << "the second page is still untouched";
	// Kernel writes fault pages in too, and set the dirty bit.
	HelDescriptorInfo info{};
	auto *second = const_cast<char *>(p + kPage);
	EXPECT_EQ(helDescriptorInfo(make_token(), reinterpret_cast<HelDescriptorInfo *>(second)),
			kHelErrNone);
	std::memcpy(&info, second, sizeof(info));
	EXPECT_EQ(info.type, kHelDescToken);
	EXPECT_TRUE(pte(second) & kDirty);
}

TEST(Space, ExecutableMappingsClearTheNoExecuteBit) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	HelHandle memory = allocate(kPage);
	void *p = nullptr;
	ASSERT_EQ(map(memory, nullptr, 0, kPage, kHelMapProtRead | kHelMapProtExecute, &p),
			kHelErrNone);
	EXPECT_EQ(log_range(p, 8), kHelErrNone);
	EXPECT_FALSE(pte(p) & kNoExecute);
	EXPECT_FALSE(pte(p) & kWritable) << "R|X without W";
}

TEST(Space, AllocateMemoryChecksItsArguments) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	HelHandle h;
	EXPECT_EQ(helAllocateMemory(0, 0, nullptr, &h), kHelErrIllegalArgs);
	EXPECT_EQ(helAllocateMemory(kPage + 1, 0, nullptr, &h), kHelErrIllegalArgs);
	EXPECT_EQ(helAllocateMemory(kPage, 2, nullptr, &h), kHelErrIllegalArgs) << "unknown flag";
	HelAllocRestrictions bad{65};
	EXPECT_EQ(helAllocateMemory(kPage, 0, &bad, &h), kHelErrIllegalArgs);
	EXPECT_EQ(helAllocateMemory(std::size_t{1} << 41, 0, nullptr, &h), kHelErrNoMemory);
	EXPECT_EQ(helAllocateMemory(kPage, 0, reinterpret_cast<HelAllocRestrictions *>(16), &h),
			kHelErrFault);
	EXPECT_EQ(helAllocateMemory(kPage, kHelAllocOnDemand, nullptr, &h), kHelErrNone);
	EXPECT_EQ(info_of(h).type, kHelDescMemoryView);
}

TEST(Space, ContinuousMemoryIsPhysicallyContiguousAndHonoursRestrictions) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	HelAllocRestrictions below_4m{22};
	HelHandle memory;
	ASSERT_EQ(helAllocateMemory(4 * kPage, kHelAllocContinuous, &below_4m, &memory), kHelErrNone);
	void *p = nullptr;
	ASSERT_EQ(map(memory, nullptr, 0, 4 * kPage, kRW, &p), kHelErrNone);
	uintptr_t first = 0, last = 0;
	ASSERT_EQ(helPointerPhysical(kHelNullHandle, p, &first), kHelErrNone);
	ASSERT_EQ(helPointerPhysical(kHelNullHandle, static_cast<char *>(p) + 3 * kPage + 5, &last),
			kHelErrNone);
	EXPECT_EQ(last - first, 3 * kPage + 5);
	EXPECT_LT(last, std::uintptr_t{1} << 22);
	size_t size = 0;
	EXPECT_EQ(helMemoryInfo(memory, &size), kHelErrNone);
	EXPECT_EQ(size, 4 * kPage);
	EXPECT_EQ(helMemoryInfo(make_token(), &size), kHelErrBadDescriptor);
	int on_stack = 0;
	EXPECT_EQ(helPointerPhysical(kHelNullHandle, &on_stack, &first), kHelErrFault)
			<< "host memory has no simulated physical address";
}

TEST(Space, RunningOutOfPhysicalMemoryIsNoMemoryNeverACrash) {
	helsim::Machine machine{quiet(std::size_t{512} << 10)};
	auto attached = machine.attach();
	HelHandle h;
	EXPECT_EQ(helAllocateMemory(std::size_t{1} << 20, kHelAllocContinuous, nullptr, &h),
			kHelErrNoMemory);
	// Lazy memory larger than RAM is fine until it is touched.
	HelHandle memory = allocate(std::size_t{1} << 20);
	void *p = nullptr;
	ASSERT_EQ(map(memory, nullptr, 0, std::size_t{1} << 20, kRW, &p), kHelErrNone);
	HelError last = kHelErrNone;
	std::size_t touched = 0;
	HelDescriptorInfo info{};
	for (; touched < 256 && last == kHelErrNone; ++touched)
		last = helDescriptorInfo(memory,
				reinterpret_cast<HelDescriptorInfo *>(static_cast<char *>(p) + touched * kPage));
	EXPECT_EQ(last, kHelErrNoMemory) << "the kernel's write could not get a frame";
	EXPECT_GT(touched, 10u);
	(void)info;
	// Memory comes back when its last mapping and handle go.
	ASSERT_EQ(helUnmapMemory(kHelNullHandle, p, std::size_t{1} << 20), kHelErrNone);
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
	EXPECT_EQ(helAllocateMemory(std::size_t{256} << 10, kHelAllocContinuous, nullptr, &h),
			kHelErrNone);
}

TEST(Space, MapMemoryChecksFlagsAlignmentAndRange) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	HelHandle memory = allocate(2 * kPage);
	void *p = nullptr;
	EXPECT_EQ(map(memory, nullptr, 0, kPage, kRW | 1, &p), kHelErrIllegalArgs);
	EXPECT_EQ(map(memory, nullptr, 0, kPage, kRW | kHelMapFixed | kHelMapFixedNoReplace, &p),
			kHelErrIllegalArgs);
	EXPECT_EQ(map(memory, nullptr, 0, kPage, kRW | kHelMapFixed, &p), kHelErrIllegalArgs)
			<< "Fixed needs a pointer";
	EXPECT_EQ(map(memory, reinterpret_cast<void *>(0x1001), 0, kPage, kRW, &p), kHelErrIllegalArgs);
	EXPECT_EQ(map(memory, nullptr, 100, kPage, kRW, &p), kHelErrIllegalArgs);
	EXPECT_EQ(map(memory, nullptr, 0, 100, kRW, &p), kHelErrIllegalArgs);
	EXPECT_EQ(map(memory, nullptr, 0, 0, kRW, &p), kHelErrIllegalArgs);
	EXPECT_EQ(map(memory, nullptr, kPage, 2 * kPage, kRW, &p), kHelErrBufferTooSmall);
	EXPECT_EQ(map(make_token(), nullptr, 0, kPage, kRW, &p), kHelErrBadDescriptor);
	EXPECT_EQ(map(memory, nullptr, 0, kPage, kRW, &p, make_token()), kHelErrBadDescriptor);
	// The handle's rights bound the protection.
	HelHandle read_only = kHelNullHandle;
	ASSERT_EQ(helTransferDescriptor(memory, kHelThisUniverse, kHelTransferDescriptorOut,
					  kHelRightRead | kHelRightAssign, 0, &read_only),
			kHelErrNone);
	EXPECT_EQ(map(read_only, nullptr, 0, kPage, kRW, &p), kHelErrBadRights);
	EXPECT_EQ(map(read_only, nullptr, 0, kPage, kHelMapProtRead, &p), kHelErrNone);
}

TEST(Space, HintsFixedPlacementAndPreferBottom) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	HelHandle a = allocate(kPage), b = allocate(kPage);
	void *top = nullptr, *bottom = nullptr;
	ASSERT_EQ(map(a, nullptr, 0, kPage, kRW, &top), kHelErrNone);
	ASSERT_EQ(map(a, nullptr, 0, kPage, kRW | kHelMapPreferBottom, &bottom), kHelErrNone);
	EXPECT_LT(bottom, top) << "the default is top-down";
	// A free hint is taken; a taken one is not.
	void *hint = static_cast<char *>(bottom) + 16 * kPage, *got = nullptr;
	ASSERT_EQ(map(a, hint, 0, kPage, kRW, &got), kHelErrNone);
	EXPECT_EQ(got, hint);
	void *other = nullptr;
	ASSERT_EQ(map(a, hint, 0, kPage, kRW, &other), kHelErrNone);
	EXPECT_NE(other, hint);
	// FixedNoReplace refuses an occupied range; Fixed replaces what is there.
	EXPECT_EQ(map(b, hint, 0, kPage, kRW | kHelMapFixedNoReplace, &other), kHelErrAlreadyExists);
	static_cast<volatile char *>(hint)[0] = 'a';
	ASSERT_EQ(map(b, hint, 0, kPage, kRW | kHelMapFixed, &other), kHelErrNone);
	EXPECT_EQ(other, hint);
	EXPECT_EQ(static_cast<volatile char *>(hint)[0], 0) << "b's page shows now";
	void *free_spot = static_cast<char *>(bottom) + 64 * kPage;
	ASSERT_EQ(map(b, free_spot, 0, kPage, kRW | kHelMapFixedNoReplace, &other), kHelErrNone);
	EXPECT_EQ(other, free_spot);
	int stack_word = 0;
	EXPECT_EQ(map(b, reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(&stack_word) & ~0xFFFul),
					  0, kPage, kRW | kHelMapFixed, &other),
			kHelErrIllegalArgs)
			<< "outside the simulated window";
}

TEST(Space, PartialUnmapKeepsTheRestAndItsContents) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	auto *p = static_cast<char *>(map_new_memory(3 * kPage));
	for (int i = 0; i < 3; ++i)
		std::memset(p + i * kPage, 'a' + i, kPage);
	ASSERT_EQ(helUnmapMemory(kHelNullHandle, p + kPage, kPage), kHelErrNone);
	EXPECT_EQ(p[0], 'a');
	EXPECT_EQ(p[kPage - 1], 'a');
	EXPECT_EQ(p[2 * kPage], 'c');
	EXPECT_EQ(log_range(p, kPage), kHelErrNone);
	EXPECT_EQ(log_range(p + 2 * kPage, kPage), kHelErrNone);
	EXPECT_EQ(log_range(p + kPage, 1), kHelErrFault) << "the hole is unmapped";
	EXPECT_EQ(log_range(p + kPage - 1, 2), kHelErrFault) << "a range into the hole";
	EXPECT_EQ(pte(p + kPage), 0u);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, p + kPage, kPage), kHelErrIllegalArgs)
			<< "unmapping a hole";
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, 2 * kPage), kHelErrIllegalArgs)
			<< "a range that includes the hole";
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, p + 1, kPage), kHelErrIllegalArgs);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, 0), kHelErrIllegalArgs);
	ASSERT_EQ(helUnmapMemory(kHelNullHandle, p + 2 * kPage, kPage), kHelErrNone);
	EXPECT_EQ(p[kPage - 1], 'a');
}

class SpaceSq : public ::testing::Test {
protected:
	helsim::Machine machine{quiet()};
	std::unique_ptr<helsim::Attachment> attached = machine.attach();
	helsim::Dispatcher dispatcher;

	HelError protect(void *p, std::size_t size, std::uint32_t flags,
			HelHandle space = kHelNullHandle) {
		HelSqProtectMemory request{space, p, size, flags};
		return sq_call(dispatcher, kHelSubmitProtectMemory, request).error();
	}
	HelError synchronize(void *p, std::size_t size) {
		HelSqSynchronizeSpace request{kHelNullHandle, p, size};
		return sq_call(dispatcher, kHelSubmitSynchronizeSpace, request).error();
	}
	HelError read(HelHandle h, std::uintptr_t address, void *buffer, std::size_t length) {
		HelSqReadMemory request{h, address, length, buffer};
		return sq_call(dispatcher, kHelSubmitReadMemory, request).error();
	}
	HelError write(HelHandle h, std::uintptr_t address, const void *buffer, std::size_t length) {
		HelSqWriteMemory request{h, address, length, buffer};
		return sq_call(dispatcher, kHelSubmitWriteMemory, request).error();
	}
};

TEST_F(SpaceSq, ProtectToNoAccessFaultsKernelAccessAndRestoringWorks) {
	auto *p = static_cast<char *>(map_new_memory(2 * kPage));
	std::strcpy(p, "still here");
	ASSERT_EQ(protect(p, kPage, 0), kHelErrNone);
	EXPECT_EQ(pte(p), 0u) << "protection changes drop the entries";
	EXPECT_EQ(log_range(p, 4), kHelErrFault);
	EXPECT_EQ(log_range(p + kPage, 4), kHelErrNone) << "the other page keeps its protection";
	ASSERT_EQ(protect(p, kPage, kHelMapProtRead), kHelErrNone);
	EXPECT_EQ(log_range(p, 4), kHelErrNone);
	EXPECT_FALSE(pte(p) & kWritable);
	HelDescriptorInfo info{};
	EXPECT_EQ(helDescriptorInfo(make_token(), reinterpret_cast<HelDescriptorInfo *>(p)),
			kHelErrFault)
			<< "a kernel write to a read-only page";
	(void)info;
	ASSERT_EQ(protect(p, 2 * kPage, kRW), kHelErrNone);
	EXPECT_STREQ(p, "still here");
	p[0] = 'S';
	EXPECT_TRUE(pte(p) & kDirty);
}

TEST_F(SpaceSq, ProtectAndSynchronizeCheckTheirArguments) {
	auto *p = static_cast<char *>(map_new_memory(2 * kPage));
	ASSERT_EQ(helUnmapMemory(kHelNullHandle, p + kPage, kPage), kHelErrNone);
	EXPECT_EQ(protect(p, kPage, 1), kHelErrIllegalArgs);
	EXPECT_EQ(protect(p + 1, kPage, kRW), kHelErrIllegalArgs);
	EXPECT_EQ(protect(p, 0, kRW), kHelErrIllegalArgs);
	EXPECT_EQ(protect(p, 2 * kPage, kRW), kHelErrIllegalArgs) << "past the mapping";
	EXPECT_EQ(protect(p, kPage, kRW, make_token()), kHelErrBadDescriptor);
	EXPECT_EQ(synchronize(p + 1, kPage), kHelErrIllegalArgs);
	EXPECT_EQ(synchronize(p, 0), kHelErrIllegalArgs);
}

TEST_F(SpaceSq, SynchronizeCleansDirtyPagesAndTheNextWriteIsSeen) {
	auto *p = static_cast<volatile char *>(map_new_memory(kPage));
	p[0] = 1;
	ASSERT_TRUE(pte(const_cast<char *>(p)) & kDirty);
	ASSERT_EQ(synchronize(const_cast<char *>(p), kPage), kHelErrNone);
	EXPECT_FALSE(pte(const_cast<char *>(p)) & kDirty);
	EXPECT_EQ(p[0], 1) << "contents stay";
	EXPECT_FALSE(pte(const_cast<char *>(p)) & kDirty) << "a read does not dirty";
	p[0] = 2;
	EXPECT_TRUE(pte(const_cast<char *>(p)) & kDirty)
			<< "the host mirror went read-only, so the write faulted and set the bit";
}

TEST_F(SpaceSq, ReadAndWriteMemoryOnViewsSpacesAndThreads) {
	HelHandle memory = kHelNullHandle;
	auto *p = static_cast<char *>(map_new_memory(3 * kPage, &memory));
	std::string text(5000, 'x');
	text += "end";
	// A view: offsets into the memory object, across a page boundary.
	ASSERT_EQ(write(memory, kPage - 10, text.data(), text.size()), kHelErrNone);
	EXPECT_EQ(std::string(p + kPage - 10, text.size()), text);
	std::string back(text.size(), '\0');
	ASSERT_EQ(read(memory, kPage - 10, back.data(), back.size()), kHelErrNone);
	EXPECT_EQ(back, text);
	EXPECT_EQ(read(memory, 3 * kPage - 2, back.data(), 4), kHelErrOutOfBounds);
	// Another space, by handle: its mapping's address.
	HelHandle space = make_space();
	void *there = nullptr;
	ASSERT_EQ(map(memory, nullptr, kPage, kPage, kRW, &there, space), kHelErrNone);
	char word[4] = {};
	ASSERT_EQ(read(space, reinterpret_cast<std::uintptr_t>(there) + 4, word, 3), kHelErrNone);
	EXPECT_STREQ(word, "xxx");
	ASSERT_EQ(write(space, reinterpret_cast<std::uintptr_t>(there), "hi", 2), kHelErrNone);
	EXPECT_EQ(std::string(p + kPage, 2), "hi");
	EXPECT_EQ(read(space, reinterpret_cast<std::uintptr_t>(p), word, 1), kHelErrFault)
			<< "p is mapped in our space, not in that one";
	// A thread: its space.
	HelHandle thread = make_stopped_thread();
	ASSERT_EQ(read(thread, reinterpret_cast<std::uintptr_t>(p + kPage), word, 2), kHelErrNone);
	EXPECT_EQ(std::string(word, 2), "hi");
	EXPECT_EQ(read(make_token(), 0, word, 1), kHelErrBadDescriptor);
	// The caller's buffer is checked too.
	EXPECT_EQ(read(memory, 0, reinterpret_cast<void *>(16), 4), kHelErrFault);
}

// Issue 10, item 9: Read to read and Write to write, on a view, a space and a thread alike.
TEST_F(SpaceSq, ReadAndWriteMemoryNeedReadAndWriteOnEveryHandleKind) {
	HelHandle memory = kHelNullHandle;
	auto *p = static_cast<char *>(map_new_memory(kPage, &memory));
	HelHandle space = make_space();
	void *there = nullptr;
	ASSERT_EQ(map(memory, nullptr, 0, kPage, kRW, &there, space), kHelErrNone);
	auto at = reinterpret_cast<std::uintptr_t>(there);
	HelHandle thread = make_stopped_thread();
	const char word[2] = {'o', 'k'};
	char back[2] = {};
	for (HelHandle h : {memory, space, thread}) {
		std::uint32_t all = info_of(h).rights;
		std::uintptr_t address = h == memory ? 0
				: h == space                 ? at
											 : reinterpret_cast<std::uintptr_t>(p);
		SCOPED_TRACE(h);
		EXPECT_EQ(read(narrowed(h, all & ~kHelRightRead), address, back, 2), kHelErrBadRights);
		EXPECT_EQ(write(narrowed(h, all & ~kHelRightWrite), address, word, 2), kHelErrBadRights);
		EXPECT_EQ(read(narrowed(h, all & ~kHelRightWrite), address, back, 2), kHelErrNone);
		EXPECT_EQ(write(narrowed(h, all & ~kHelRightRead), address, word, 2), kHelErrNone);
	}
	EXPECT_EQ(std::string(p, 2), "ok");
	EXPECT_EQ(std::string(back, 2), "ok") << "the last read saw the first write";
}

// Issue 10, item 9: helLoadahead does nothing, but checks like thor: aligned offset and
// length, then Provision on a memory view.
TEST(Space, LoadaheadChecksAlignmentThenProvision) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	HelHandle memory = kHelNullHandle;
	ASSERT_EQ(helAllocateMemory(2 * kPage, 0, nullptr, &memory), kHelErrNone);
	EXPECT_EQ(helLoadahead(memory, 0, 2 * kPage), kHelErrNone);
	EXPECT_EQ(helLoadahead(memory, 1, kPage), kHelErrIllegalArgs);
	EXPECT_EQ(helLoadahead(memory, 0, kPage + 1), kHelErrIllegalArgs);
	EXPECT_EQ(helLoadahead(make_token(), 1, kPage), kHelErrIllegalArgs) << "alignment first";
	EXPECT_EQ(helLoadahead(make_token(), 0, kPage), kHelErrBadDescriptor);
	EXPECT_EQ(helLoadahead(narrowed(memory, info_of(memory).rights & ~kHelRightProvision), 0,
					  kPage),
			kHelErrBadRights);
}

TEST(Space, KernelAccessToHostMemoryIsFaultSafe) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	void *gone =
			mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(gone, MAP_FAILED);
	auto *bytes = static_cast<char *>(gone);
	std::memset(bytes, 'k', kPage);
	ASSERT_EQ(mprotect(bytes + kPage, kPage, PROT_NONE), 0);
	EXPECT_EQ(log_range(bytes, kPage), kHelErrNone) << "plain host memory is accepted";
	EXPECT_EQ(log_range(bytes + kPage - 2, 4), kHelErrFault) << "into a PROT_NONE page";
	ASSERT_EQ(mprotect(bytes, kPage, PROT_READ), 0);
	EXPECT_EQ(helDescriptorInfo(make_token(), reinterpret_cast<HelDescriptorInfo *>(bytes)),
			kHelErrFault)
			<< "a kernel write to read-only host memory";
	ASSERT_EQ(munmap(gone, 2 * kPage), 0);
	EXPECT_EQ(log_range(bytes, 4), kHelErrFault) << "unmapped host memory";
	EXPECT_EQ(log_range(reinterpret_cast<void *>(0x10), 4), kHelErrFault);
}

TEST(Space, StrictModeRefusesMemoryNoSpaceMaps) {
	auto config = quiet();
	config.strict_memory = true;
	helsim::Machine machine{config};
	auto attached = machine.attach();
	char on_stack[8] = "stack";
	EXPECT_EQ(log_range(on_stack, 5), kHelErrFault);
	int word = 0;
	EXPECT_EQ(helFutexWake(&word, 1), kHelErrFault);
	auto *p = static_cast<char *>(map_new_memory(kPage));
	std::memcpy(p, "mapped", 6);
	EXPECT_EQ(log_range(p, 6), kHelErrNone);
	EXPECT_EQ(helFutexWake(reinterpret_cast<int *>(p), 1), kHelErrNone);
}

TEST(Space, IpcCopiesFaultReceiveBuffersInAndStreamFromMappedMemory) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	helsim::Dispatcher dispatcher;
	HelHandle lanes[2];
	ASSERT_EQ(helCreateStream(&lanes[0], &lanes[1], 0), kHelErrNone);
	constexpr std::size_t kLength = 3 * kPage + 100; // streamed: larger than 4 KiB
	auto *source = static_cast<char *>(map_new_memory(4 * kPage));
	auto *target = static_cast<char *>(map_new_memory(4 * kPage));
	for (std::size_t i = 0; i < kLength; ++i)
		source[i] = static_cast<char>('a' + i % 26);
	HelAction send{}, recv{};
	send.type = kHelActionSendFromBuffer;
	send.buffer = source;
	send.length = kLength;
	recv.type = kHelActionRecvToBuffer;
	recv.buffer = target;
	recv.length = kLength;
	HelSqExchangeMsgs head{lanes[0], 1, 0};
	std::array<std::byte, sizeof(head) + sizeof(send)> payload;
	std::memcpy(payload.data(), &head, sizeof(head));
	std::memcpy(payload.data() + sizeof(head), &send, sizeof(send));
	dispatcher.submit(kHelSubmitExchangeMsgs, 1, std::span<const std::byte>{payload});
	head.lane = lanes[1];
	std::memcpy(payload.data(), &head, sizeof(head));
	std::memcpy(payload.data() + sizeof(head), &recv, sizeof(recv));
	dispatcher.submit(kHelSubmitExchangeMsgs, 2, std::span<const std::byte>{payload});
	dispatcher.flush();
	auto sent = dispatcher.wait_for(1, [](helsim::Element &&) {});
	auto received = dispatcher.wait_for(2, [](helsim::Element &&) {});
	EXPECT_EQ(sent.error(), kHelErrNone);
	ASSERT_EQ(received.error(), kHelErrNone);
	EXPECT_EQ(received.as<HelLengthResult>().length, kLength);
	EXPECT_EQ(std::memcmp(source, target, kLength), 0);
	EXPECT_TRUE(pte(target + 3 * kPage) & kDirty);
}

TEST(Space, AFutexInSharedMemoryWorksAcrossSpacesAndUniverses) {
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	HelHandle memory = kHelNullHandle;
	auto *ours = static_cast<int *>(map_new_memory(kPage, &memory));
	// The waker lives in another universe and another space, where the same memory sits at
	// another address.
	HelHandle universe = make_universe(), space = make_space();
	void *theirs = nullptr;
	ASSERT_EQ(map(memory, nullptr, 0, kPage, kRW, &theirs, space), kHelErrNone);
	ASSERT_NE(theirs, static_cast<void *>(ours));
	static int *their_word;
	their_word = static_cast<int *>(theirs);
	HelHandle waker = kHelNullHandle;
	auto entry = +[](std::uintptr_t) {
		__atomic_store_n(their_word, 1, __ATOMIC_SEQ_CST);
		(void)helFutexWake(their_word, 1);
	};
	ASSERT_EQ(helCreateThread(universe, space, kHelAbiSystemV, reinterpret_cast<void *>(entry),
					  nullptr, 0, &waker),
			kHelErrNone);
	while (__atomic_load_n(ours, __ATOMIC_SEQ_CST) == 0) {
		HelError e = helFutexWait(ours, 0, kHelWaitInfinite);
		ASSERT_TRUE(e == kHelErrNone || e == kHelErrFutexRace) << e;
	}
	EXPECT_EQ(*ours, 1);
	// A futex word that no space maps in a window address faults.
	EXPECT_EQ(helFutexWake(static_cast<int *>(theirs), 1), kHelErrFault)
			<< "their address is not mapped in our space";
}

// Issue 10, item 1: SynchronizeSpace walked its range in 2 MiB steps under the space's lock,
// so (0x1000, 2^63) took hours. Ranges must end inside user space, and a walk costs what is
// mapped, not the range.
TEST(Robustness, UnboundedSynchronizeSpace) {
	constexpr std::uintptr_t kUserEnd = std::uintptr_t{1} << 47;
	{
		// The walk: one leaf table in all of user space. The old walk looked up 2^26 leaf
		// tables; skipping absent tables at every level looks at no more than the entries of
		// the one top-level half, PDPT and page directory on the way.
		helsim::sim::PhysicalMemory memory{64 * kPage};
		helsim::kernel::PageTable table{memory};
		ASSERT_TRUE(table.valid());
		ASSERT_NE(table.find_or_create((std::uintptr_t{1} << 46) + 0x1234000), nullptr);
		std::size_t entries = 0;
		std::size_t looked_at = table.for_each_entry(0, kUserEnd,
				[&](std::uintptr_t, std::uint64_t *) { ++entries; });
		EXPECT_EQ(entries, 512u) << "every entry of the one leaf table, no other";
		ASSERT_LE(looked_at, 256u + 512u + 512u) << "the walk stepped through absent tables";
	}
	helsim::Machine machine{quiet()};
	auto attached = machine.attach();
	helsim::Dispatcher dispatcher;
	auto synchronize = [&](std::uintptr_t pointer, std::size_t size) {
		HelSqSynchronizeSpace request{kHelNullHandle, reinterpret_cast<void *>(pointer), size};
		return sq_call(dispatcher, kHelSubmitSynchronizeSpace, request).error();
	};
	auto *p = static_cast<char *>(map_new_memory(2 * kPage));
	static_cast<volatile char *>(p)[0] = 1;
	ASSERT_TRUE(pte(p) & kDirty);
	EXPECT_EQ(synchronize(kPage, std::size_t{1} << 63), kHelErrIllegalArgs) << "the issue's call";
	EXPECT_EQ(synchronize(kUserEnd - kPage, 2 * kPage), kHelErrIllegalArgs) << "past user space";
	EXPECT_EQ(synchronize(kUserEnd, kPage), kHelErrIllegalArgs);
	EXPECT_TRUE(pte(p) & kDirty) << "a refused range changes nothing";
	ASSERT_EQ(helSubmitSynchronizeSpace(kHelNullHandle, reinterpret_cast<void *>(kPage),
					  std::size_t{1} << 63, dispatcher.queue(), 0x5eed),
			kHelErrNone);
	auto legacy = dispatcher.wait_for(0x5eed,
			[](helsim::Element &&e) { ADD_FAILURE() << "unexpected completion " << e.context(); });
	EXPECT_EQ(legacy.error(), kHelErrIllegalArgs) << "the legacy call, in its completion";
	// All of user space is a valid range; only its mapped part is visited.
	EXPECT_EQ(synchronize(0, kUserEnd), kHelErrNone);
	EXPECT_FALSE(pte(p) & kDirty) << "the mapped part was synchronized";
	// Unmap and ProtectMemory refuse such ranges too (they must be mapped, which they check
	// mapping by mapping).
	void *huge = reinterpret_cast<void *>(kPage);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, huge, std::size_t{1} << 63), kHelErrIllegalArgs);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, kUserEnd), kHelErrIllegalArgs);
	HelSqProtectMemory protect{kHelNullHandle, huge, std::size_t{1} << 63, kRW};
	EXPECT_EQ(sq_call(dispatcher, kHelSubmitProtectMemory, protect).error(), kHelErrIllegalArgs);
}

using SpaceDeathTest = ::testing::Test;

// An attached host thread cannot be abandoned like a fiber thread (which ends `faulted`, see
// thread_faults_test.cpp): its unresolved fault still ends the process, with the diagnostic.
TEST(SpaceDeathTest, AnAttachedThreadTouchingAProtectedMappingDiesWithADiagnostic) {
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	disable_core_dumps();
	EXPECT_EXIT(
			{
				helsim::Machine machine{quiet()};
				auto attached = machine.attach();
				HelHandle memory = allocate(kPage);
				void *p = nullptr;
				if (map(memory, nullptr, 0, kPage, kHelMapProtRead, &p) != kHelErrNone)
					std::_Exit(3);
				static_cast<volatile char *>(p)[0] = 1; // a write to a read-only mapping
				std::_Exit(0);
			},
			::testing::KilledBySignal(SIGSEGV), "helsim");
}

} // namespace
