// Managed memory (src/kernel/memory/managed_memory.cpp): helCreateManagedMemory, helUpdateMemory
// and the pager's SQ operations ManageMemory, WritebackFence and InvalidateMemory, with pagers and
// clients running as simulated threads, in threads mode and under deterministic seeds.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using namespace helsim::test;
namespace ipc = helsim::ipc;

constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;
constexpr std::uint64_t kSeeds = 12;

helsim::MachineConfig threads_mode() {
	helsim::MachineConfig c;
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

helsim::MachineConfig deterministic(std::uint64_t seed) {
	helsim::MachineConfig c = helsim::testing::deterministic(seed);
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

std::uint64_t pte(const void *p) { return helsim::debug::page_table_entry(p); }

struct Managed {
	HelHandle backing = kHelNullHandle;
	HelHandle frontal = kHelNullHandle;
};

Managed make_managed(std::size_t size, std::uint32_t flags = 0) {
	Managed m;
	EXPECT_EQ(helCreateManagedMemory(size, flags, &m.backing, &m.frontal), kHelErrNone);
	return m;
}

char *map_view(HelHandle view, std::size_t size, std::uint32_t flags = kRW) {
	void *p = nullptr;
	EXPECT_EQ(helMapMemory(view, kHelNullHandle, nullptr, 0, size, flags, &p), kHelErrNone);
	return static_cast<char *>(p);
}

void fail_on_other(helsim::Element &&e) {
	ADD_FAILURE() << "unexpected completion " << e.context();
}

// The pager's side of the protocol: the next request for `backing`.
HelManageResult next_request(helsim::Dispatcher &d, HelHandle backing) {
	return sq_call(d, kHelSubmitManageMemory, HelSqManageMemory{backing}).as<HelManageResult>();
}

// memset on mapped memory. Each page is first touched by a plain store: under TSan a page's
// first fault must not happen inside a libc interceptor, where TSan treats it as fatal.
void fill(char *p, char c, std::size_t length) {
	for (std::size_t at = 0; at < length; at += kPage)
		static_cast<volatile char *>(p)[at] = c;
	std::memset(p, c, length);
}

// Fills the requested range through the pager's mapping of the backing view, then tells the
// kernel the pages are initialized.
void serve_init(char *backing_map, HelHandle backing, const HelManageResult &r, char c) {
	EXPECT_EQ(r.error, kHelErrNone);
	ASSERT_EQ(r.type, kHelManageInitialize);
	fill(backing_map + r.offset, c, r.length);
	EXPECT_EQ(helUpdateMemory(backing, kHelManageInitialize, r.offset, r.length), kHelErrNone);
}

void expect_request(const HelManageResult &r, int type, std::size_t offset, std::size_t length) {
	EXPECT_EQ(r.error, kHelErrNone);
	EXPECT_EQ(r.type, type);
	EXPECT_EQ(r.offset, offset);
	EXPECT_EQ(r.length, length);
}

// ---------------------------------------------------------------- (a) IPC into frontal memory

// A RecvToBuffer into a missing frontal page stays pending until the pager has provided the
// page; then the message lands in the middle of the pager's data.
void receive_waits_for_the_pager() {
	Managed m = make_managed(4 * kPage);
	char *front = map_view(m.frontal, 4 * kPage);
	HelHandle lanes[2];
	ASSERT_EQ(helCreateStream(&lanes[0], &lanes[1], 0), kHelErrNone);
	struct {
		int requested = 0, gate = 0, done = 0;
		HelManageResult request{};
	} shared;
	start_thread([&] {
		helsim::Dispatcher d;
		char *back = map_view(m.backing, 4 * kPage);
		shared.request = next_request(d, m.backing);
		set_and_wake(&shared.requested, 1);
		EXPECT_TRUE(wait_for(&shared.gate, 1));
		serve_init(back, m.backing, shared.request, 'p');
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, back, 4 * kPage), kHelErrNone);
		set_and_wake(&shared.done, 1);
	});

	helsim::Dispatcher d;
	std::string message(50, '\0');
	for (std::size_t i = 0; i < message.size(); ++i)
		message[i] = static_cast<char>('a' + i % 26);
	char *target = front + kPage + 100;
	ipc::submit(d, lanes[0], 1, ipc::send_buffer(message.data(), message.size()));
	ipc::submit(d, lanes[1], 2, ipc::recv_buffer(target, message.size()));
	d.flush();
	ASSERT_TRUE(wait_for(&shared.requested, 1));
	expect_request(shared.request, kHelManageInitialize, kPage, kPage);

	std::optional<helsim::Element> sent, received;
	auto take = [&](helsim::Element &&e) {
		if (e.context() == 1)
			sent = std::move(e);
		else if (e.context() == 2)
			received = std::move(e);
		else
			fail_on_other(std::move(e));
	};
	while (auto e = d.poll())
		take(std::move(*e));
	EXPECT_FALSE(received.has_value()) << "the receive completed before the pager served";
	set_and_wake(&shared.gate, 1);
	while (!sent || !received)
		if (auto e = d.wait())
			take(std::move(*e));
	EXPECT_EQ(sent->error(), kHelErrNone);
	ASSERT_EQ(received->error(), kHelErrNone);
	EXPECT_EQ(received->as<HelLengthResult>().length, message.size());
	EXPECT_EQ(std::string(target, message.size()), message);
	std::string page(front + kPage, kPage);
	page.replace(100, message.size(), std::string(message.size(), 'p'));
	EXPECT_EQ(page, std::string(kPage, 'p')) << "the rest of the page is the pager's";
	EXPECT_TRUE(wait_for(&shared.done, 1));
}

TEST(ManagedMemory, ReceiveIntoFrontalMemoryWaitsForThePager) {
	run_clean(threads_mode(), receive_waits_for_the_pager);
}

TEST(ManagedMemory, ReceiveIntoFrontalMemoryWaitsForThePagerUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) { run_clean(deterministic(seed), receive_waits_for_the_pager); },
			kSeeds);
}

// ---------------------------------------------------------------- (b, c) direct access, writeback

// A direct read of a missing frontal page blocks the reading thread until the pager has
// initialized the page. A direct write found by SynchronizeSpace becomes a writeback request,
// and a writeback fence on the backing view waits for its helUpdateMemory.
void direct_access_and_writeback() {
	Managed m = make_managed(2 * kPage);
	char *front = map_view(m.frontal, 2 * kPage);
	struct {
		int requested = 0, read_done = 0, gate = 0, writeback = 0, fence_gate = 0, done = 0;
		HelManageResult init{}, writeback_request{};
		char seen = 0;
	} s;
	start_thread([&] { // the pager
		helsim::Dispatcher d;
		char *back = map_view(m.backing, 2 * kPage);
		s.init = next_request(d, m.backing);
		set_and_wake(&s.requested, 1);
		EXPECT_TRUE(wait_for(&s.gate, 1));
		serve_init(back, m.backing, s.init, 'x');
		s.writeback_request = next_request(d, m.backing);
		s.seen = back[10]; // the client's write, through the backing view
		set_and_wake(&s.writeback, 1);
		EXPECT_TRUE(wait_for(&s.fence_gate, 1));
		EXPECT_EQ(helUpdateMemory(m.backing, kHelManageWriteback, s.writeback_request.offset,
						  s.writeback_request.length),
				kHelErrNone);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, back, 2 * kPage), kHelErrNone);
		set_and_wake(&s.done, 1);
	});
	start_thread([&] { // sees the reader still blocked when the request arrives
		EXPECT_TRUE(wait_for(&s.requested, 1));
		EXPECT_EQ(load(&s.read_done), 0) << "the read finished before the page was there";
		set_and_wake(&s.gate, 1);
	});

	volatile char *p = front;
	char first = p[0]; // parks this thread in the host fault until the pager has served
	set_and_wake(&s.read_done, 1);
	expect_request(s.init, kHelManageInitialize, 0, kPage);
	EXPECT_EQ(first, 'x');
	EXPECT_EQ(p[kPage - 1], 'x');
	EXPECT_NE(pte(front), 0u);

	p[10] = 'W';
	helsim::Dispatcher d;
	HelSqSynchronizeSpace sync{kHelNullHandle, front, 2 * kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitSynchronizeSpace, sync).error(), kHelErrNone);
	ASSERT_TRUE(wait_for(&s.writeback, 1));
	expect_request(s.writeback_request, kHelManageWriteback, 0, kPage);
	EXPECT_EQ(s.seen, 'W') << "both views show the same frame";

	// The frontal view has nothing to fence (as in thor): that completes at once.
	HelSqWritebackFence frontal_fence{m.frontal, 0, 2 * kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitWritebackFence, frontal_fence).error(), kHelErrNone);
	d.submit(kHelSubmitWritebackFence, 77, HelSqWritebackFence{m.backing, 0, 2 * kPage});
	d.flush();
	EXPECT_FALSE(d.poll().has_value()) << "the fence completed while a writeback ran";
	set_and_wake(&s.fence_gate, 1);
	EXPECT_EQ(d.wait_for(77, fail_on_other).error(), kHelErrNone);
	// Nothing in flight any more: a new fence passes at once.
	HelSqWritebackFence again{m.backing, 0, 2 * kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitWritebackFence, again).error(), kHelErrNone);
	HelSqWritebackFence unaligned{m.backing, 1, kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitWritebackFence, unaligned).error(), kHelErrIllegalArgs);
	EXPECT_TRUE(wait_for(&s.done, 1));
}

TEST(ManagedMemory, DirectAccessBlocksAndWritebackFollowsSynchronize) {
	run_clean(threads_mode(), direct_access_and_writeback);
}

TEST(ManagedMemory, DirectAccessBlocksAndWritebackFollowsSynchronizeUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) { run_clean(deterministic(seed), direct_access_and_writeback); },
			kSeeds);
}

// A page written again while its writeback is in flight is queued for another writeback.
void rewritten_during_writeback() {
	Managed m = make_managed(kPage);
	char *front = map_view(m.frontal, kPage);
	char *back = map_view(m.backing, kPage);
	helsim::Dispatcher d;
	char buffer = 0;
	d.submit(kHelSubmitReadMemory, 1, HelSqReadMemory{m.frontal, 0, 1, &buffer});
	d.flush();
	serve_init(back, m.backing, next_request(d, m.backing), 'i');
	EXPECT_EQ(d.wait_for(1, fail_on_other).error(), kHelErrNone);
	HelSqSynchronizeSpace sync{kHelNullHandle, front, kPage};
	front[0] = '1';
	EXPECT_EQ(sq_call(d, kHelSubmitSynchronizeSpace, sync).error(), kHelErrNone);
	auto first = next_request(d, m.backing);
	expect_request(first, kHelManageWriteback, 0, kPage);
	front[0] = '2'; // during the writeback
	EXPECT_EQ(sq_call(d, kHelSubmitSynchronizeSpace, sync).error(), kHelErrNone);
	d.submit(kHelSubmitWritebackFence, 2, HelSqWritebackFence{m.backing, 0, kPage});
	d.flush();
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageWriteback, 0, kPage), kHelErrNone);
	EXPECT_FALSE(d.poll().has_value()) << "the second write has not been written back yet";
	auto second = next_request(d, m.backing);
	expect_request(second, kHelManageWriteback, 0, kPage);
	EXPECT_EQ(back[0], '2');
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageWriteback, 0, kPage), kHelErrNone);
	EXPECT_EQ(d.wait_for(2, fail_on_other).error(), kHelErrNone);
}

TEST(ManagedMemory, APageWrittenDuringItsWritebackIsWrittenBackAgain) {
	run_clean(threads_mode(), rewritten_during_writeback);
}

// ---------------------------------------------------------------- (d) kHelMapDontRequireBacking

void dont_require_backing() {
	Managed m = make_managed(kPage);
	char *weak = map_view(m.frontal, kPage, kHelMapProtRead | kHelMapDontRequireBacking);
	EXPECT_EQ(helLog(kHelLogSeverityDebug, weak, 8), kHelErrFault)
			<< "a kernel access fails instead of waiting for the pager";
	helsim::Dispatcher d;
	d.submit(kHelSubmitManageMemory, 1, HelSqManageMemory{m.backing});
	d.flush();
	EXPECT_FALSE(d.poll().has_value()) << "the failed access must not ask the pager";
	// An access that may wait (an SQ read of the frontal view) does ask.
	char buffer[8] = {};
	d.submit(kHelSubmitReadMemory, 2, HelSqReadMemory{m.frontal, 0, sizeof(buffer), buffer});
	d.flush();
	auto request = d.wait_for(1, fail_on_other).as<HelManageResult>();
	expect_request(request, kHelManageInitialize, 0, kPage);
	char *back = map_view(m.backing, kPage);
	serve_init(back, m.backing, request, 'q');
	EXPECT_EQ(d.wait_for(2, fail_on_other).error(), kHelErrNone);
	EXPECT_EQ(std::string(buffer, sizeof(buffer)), "qqqqqqqq");
	EXPECT_EQ(helLog(kHelLogSeverityDebug, weak, 8), kHelErrNone) << "present pages need no pager";
}

TEST(ManagedMemory, DontRequireBackingFailsInsteadOfWaiting) {
	run_clean(threads_mode(), dont_require_backing);
}

// ---------------------------------------------------------------- (e) invalidation

void invalidate_reinitializes() {
	Managed m = make_managed(kPage);
	char *front = map_view(m.frontal, kPage);
	struct {
		int done = 0;
		HelManageResult second{};
	} s;
	start_thread([&] {
		helsim::Dispatcher d;
		char *back = map_view(m.backing, kPage);
		serve_init(back, m.backing, next_request(d, m.backing), 'a');
		s.second = next_request(d, m.backing);
		serve_init(back, m.backing, s.second, 'b');
		set_and_wake(&s.done, 1);
	});
	volatile char *p = front;
	EXPECT_EQ(p[0], 'a');
	p[1] = 'z'; // dirty in the page table, never synchronized
	EXPECT_NE(pte(front), 0u);
	helsim::Dispatcher d;
	// Only the backing view invalidates (as in thor); others complete without effect.
	HelSqInvalidateMemory on_frontal{m.frontal, 0, kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitInvalidateMemory, on_frontal).error(), kHelErrNone);
	EXPECT_NE(pte(front), 0u);
	HelSqInvalidateMemory unaligned{m.backing, 1, kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitInvalidateMemory, unaligned).error(), kHelErrIllegalArgs);
	HelSqInvalidateMemory invalidate{m.backing, 0, kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitInvalidateMemory, invalidate).error(), kHelErrNone);
	EXPECT_EQ(pte(front), 0u) << "invalidation drops the mappings' entries";
	EXPECT_EQ(p[0], 'b') << "the next access initialized the page again";
	EXPECT_EQ(p[1], 'b') << "the unsynchronized write was discarded, not written back";
	ASSERT_TRUE(wait_for(&s.done, 1));
	expect_request(s.second, kHelManageInitialize, 0, kPage);
	// A queued writeback is discarded too: afterwards there is nothing left to fence.
	p[2] = 'y';
	HelSqSynchronizeSpace sync{kHelNullHandle, front, kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitSynchronizeSpace, sync).error(), kHelErrNone);
	EXPECT_EQ(sq_call(d, kHelSubmitInvalidateMemory, invalidate).error(), kHelErrNone);
	HelSqWritebackFence fence{m.backing, 0, kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitWritebackFence, fence).error(), kHelErrNone);
}

TEST(ManagedMemory, InvalidateMakesTheNextAccessInitializeAgain) {
	run_clean(threads_mode(), invalidate_reinitializes);
}

TEST(ManagedMemory, InvalidateMakesTheNextAccessInitializeAgainUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) { run_clean(deterministic(seed), invalidate_reinitializes); },
			kSeeds);
}

// ---------------------------------------------------------------- (f) argument checks

TEST(ManagedMemory, CreateChecksItsArguments) {
	helsim::Machine machine{threads_mode()};
	auto attached = machine.attach();
	HelHandle b, f;
	EXPECT_EQ(helCreateManagedMemory(kPage, 2, &b, &f), kHelErrIllegalArgs);
	EXPECT_EQ(helCreateManagedMemory(kPage + 1, 0, &b, &f), kHelErrIllegalArgs);
	EXPECT_EQ(helCreateManagedMemory(std::size_t{1} << 41, 0, &b, &f), kHelErrNoMemory);
	Managed m = make_managed(4 * kPage, kHelManagedReadahead);
	EXPECT_EQ(info_of(m.backing).type, kHelDescMemoryView);
	EXPECT_EQ(info_of(m.frontal).type, kHelDescMemoryView);
	EXPECT_TRUE(info_of(m.backing).rights & kHelRightManage);
	std::size_t size = 0;
	EXPECT_EQ(helMemoryInfo(m.frontal, &size), kHelErrNone);
	EXPECT_EQ(size, 4 * kPage);
	EXPECT_EQ(helMemoryInfo(m.backing, &size), kHelErrNone);
	EXPECT_EQ(size, 4 * kPage);
	Managed empty = make_managed(0);
	EXPECT_EQ(helMemoryInfo(empty.frontal, &size), kHelErrNone);
	EXPECT_EQ(size, 0u);
}

TEST(ManagedMemory, UpdateMemoryChecksItsArgumentsAndTheTransaction) {
	helsim::Machine machine{threads_mode()};
	auto attached = machine.attach();
	Managed m = make_managed(4 * kPage);
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageInitialize, 1, kPage), kHelErrIllegalArgs);
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageInitialize, 0, 1), kHelErrIllegalArgs);
	EXPECT_EQ(helUpdateMemory(9999, kHelManageInitialize, 0, kPage), kHelErrNoDescriptor);
	EXPECT_EQ(helUpdateMemory(make_token(), kHelManageInitialize, 0, kPage), kHelErrBadDescriptor);
	EXPECT_EQ(helUpdateMemory(m.backing, 3, 0, kPage), kHelErrIllegalArgs);
	EXPECT_EQ(helUpdateMemory(m.frontal, kHelManageInitialize, 0, kPage),
			kHelErrUnsupportedOperation);
	HelHandle allocated = kHelNullHandle;
	ASSERT_EQ(helAllocateMemory(kPage, 0, nullptr, &allocated), kHelErrNone);
	EXPECT_EQ(helUpdateMemory(allocated, kHelManageInitialize, 0, kPage),
			kHelErrUnsupportedOperation);
	HelHandle no_manage = kHelNullHandle;
	ASSERT_EQ(helTransferDescriptor(m.backing, kHelThisUniverse, kHelTransferDescriptorOut,
					  kHelRightsMax & ~kHelRightManage, 0, &no_manage),
			kHelErrNone);
	EXPECT_EQ(helUpdateMemory(no_manage, kHelManageInitialize, 0, kPage), kHelErrBadRights);
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageInitialize, 0, kPage), kHelErrIllegalArgs)
			<< "nobody asked for the page";
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageWriteback, 0, kPage), kHelErrIllegalArgs);
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageInitialize, 8 * kPage, kPage),
			kHelErrIllegalArgs)
			<< "past the end";
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageInitialize, 0, 0), kHelErrNone) << "no pages";

	// One page requested: a range that also covers another is refused as a whole.
	helsim::Dispatcher d;
	char buffer = 'x';
	d.submit(kHelSubmitReadMemory, 1, HelSqReadMemory{m.frontal, kPage, 1, &buffer});
	d.flush();
	auto request = next_request(d, m.backing);
	expect_request(request, kHelManageInitialize, kPage, kPage);
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageInitialize, kPage, 2 * kPage),
			kHelErrIllegalArgs);
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageWriteback, kPage, kPage), kHelErrIllegalArgs)
			<< "the page is being initialized, not written back";
	EXPECT_FALSE(d.poll().has_value()) << "the read still waits";
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageInitialize, kPage, kPage), kHelErrNone);
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageInitialize, kPage, kPage), kHelErrIllegalArgs)
			<< "initialized already";
	EXPECT_EQ(d.wait_for(1, fail_on_other).error(), kHelErrNone);
	EXPECT_EQ(buffer, 0) << "a page the pager never wrote is zero";
}

TEST(ManagedMemory, SqOperationsCheckViewsAndRights) {
	helsim::Machine machine{threads_mode()};
	auto attached = machine.attach();
	Managed m = make_managed(2 * kPage);
	helsim::Dispatcher d;
	auto manage = sq_call(d, kHelSubmitManageMemory, HelSqManageMemory{m.frontal});
	EXPECT_EQ(manage.error(), kHelErrIllegalObject) << "only the backing view takes requests";
	HelHandle weak = kHelNullHandle;
	ASSERT_EQ(helTransferDescriptor(m.backing, kHelThisUniverse, kHelTransferDescriptorOut,
					  kHelRightRead | kHelRightWrite, 0, &weak),
			kHelErrNone);
	auto refused = sq_call(d, kHelSubmitManageMemory, HelSqManageMemory{weak});
	EXPECT_EQ(refused.context(), ~std::uintptr_t{0});
	EXPECT_EQ(refused.error(), kHelErrBadRights);
	refused = sq_call(d, kHelSubmitWritebackFence, HelSqWritebackFence{weak, 0, 0});
	EXPECT_EQ(refused.error(), kHelErrBadRights) << "a fence needs kHelRightFence";
	refused = sq_call(d, kHelSubmitInvalidateMemory, HelSqInvalidateMemory{weak, 0, kPage});
	EXPECT_EQ(refused.error(), kHelErrBadRights);
	refused = sq_call(d, kHelSubmitManageMemory, HelSqManageMemory{make_token()});
	EXPECT_EQ(refused.error(), kHelErrBadDescriptor);

	// Resizing goes through the backing view and grows both.
	HelSqResizeMemory grow{m.backing, 4 * kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitResizeMemory, grow).error(), kHelErrNone);
	std::size_t size = 0;
	EXPECT_EQ(helMemoryInfo(m.frontal, &size), kHelErrNone);
	EXPECT_EQ(size, 4 * kPage);
	HelSqResizeMemory shrink{m.backing, kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitResizeMemory, shrink).error(), kHelErrIllegalArgs);
	HelSqResizeMemory frontal{m.frontal, 8 * kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitResizeMemory, frontal).error(), kHelErrIllegalObject);
	char *front = map_view(m.frontal, 4 * kPage, kHelMapProtRead | kHelMapDontRequireBacking);
	EXPECT_EQ(helLog(kHelLogSeverityDebug, front + 3 * kPage, 1), kHelErrFault)
			<< "a grown page is missing like any other";
}

// ---------------------------------------------------------------- (h) readahead and fusion

TEST(ManagedMemory, ReadaheadFusionAndWritebackFirst) {
	helsim::Machine machine{threads_mode()};
	auto attached = machine.attach();
	Managed m = make_managed(8 * kPage, kHelManagedReadahead);
	char *back = map_view(m.backing, 8 * kPage);
	helsim::Dispatcher d;
	char buffer = 0;
	auto read = [&](std::uintptr_t context, std::size_t offset) {
		d.submit(kHelSubmitReadMemory, context, HelSqReadMemory{m.frontal, offset, 1, &buffer});
		d.flush();
	};
	// A missing page brings the three after it along, in one request.
	read(1, 2 * kPage);
	auto request = next_request(d, m.backing);
	expect_request(request, kHelManageInitialize, 2 * kPage, 4 * kPage);
	serve_init(back, m.backing, request, 'r');
	EXPECT_EQ(d.wait_for(1, fail_on_other).error(), kHelErrNone);
	EXPECT_EQ(buffer, 'r');
	// The last page has nothing after it.
	read(2, 7 * kPage);
	request = next_request(d, m.backing);
	expect_request(request, kHelManageInitialize, 7 * kPage, kPage);
	serve_init(back, m.backing, request, 's');
	EXPECT_EQ(d.wait_for(2, fail_on_other).error(), kHelErrNone);
	// Writes to two neighbouring pages become one writeback, which goes before an
	// initialization that was asked for later.
	HelSqWriteMemory write{m.frontal, 4 * kPage - 1, 2, "ww"};
	EXPECT_EQ(sq_call(d, kHelSubmitWriteMemory, write).error(), kHelErrNone);
	read(3, 0); // pages 0 and 1; 2 and 3 are present
	request = next_request(d, m.backing);
	expect_request(request, kHelManageWriteback, 3 * kPage, 2 * kPage);
	EXPECT_EQ(back[4 * kPage - 1], 'w');
	EXPECT_EQ(back[4 * kPage], 'w');
	auto init = next_request(d, m.backing);
	expect_request(init, kHelManageInitialize, 0, 2 * kPage);
	EXPECT_EQ(helUpdateMemory(m.backing, kHelManageWriteback, 3 * kPage, 2 * kPage), kHelErrNone);
	serve_init(back, m.backing, init, 't');
	EXPECT_EQ(d.wait_for(3, fail_on_other).error(), kHelErrNone);
	EXPECT_EQ(buffer, 't');

	// Without kHelManagedReadahead, only the page itself.
	Managed plain = make_managed(8 * kPage);
	d.submit(kHelSubmitReadMemory, 4, HelSqReadMemory{plain.frontal, 2 * kPage, 1, &buffer});
	d.flush();
	request = next_request(d, plain.backing);
	expect_request(request, kHelManageInitialize, 2 * kPage, kPage);
	EXPECT_EQ(helUpdateMemory(plain.backing, kHelManageInitialize, 2 * kPage, kPage), kHelErrNone);
	EXPECT_EQ(d.wait_for(4, fail_on_other).error(), kHelErrNone);
}

// ---------------------------------------------------------------- concurrency

// Readers fault pages in while another thread keeps invalidating them and one pager serves
// with readahead: every read sees the pager's data. Readers use the kernel's access paths (a
// syscall's user copy, SQ ReadMemory on the view) and, with `direct`, plain loads too.
void readers_pager_and_invalidations(bool direct) {
	constexpr std::size_t kReadPages = 12; // readahead reaches at most page 14
	constexpr std::size_t kMarker = 16;    // the last request: touched only at the end
	constexpr int kReaders = 3, kRounds = 20;
	Managed m = make_managed((kMarker + 1) * kPage, kHelManagedReadahead);
	char *front = map_view(m.frontal, (kMarker + 1) * kPage, kHelMapProtRead);
	struct {
		int pager_done = 0, readers_done = 0, invalidator_done = 0;
	} s;
	start_thread([&] {
		helsim::Dispatcher d;
		char *back = map_view(m.backing, (kMarker + 1) * kPage);
		for (;;) {
			auto r = next_request(d, m.backing);
			ASSERT_EQ(r.type, kHelManageInitialize);
			for (std::size_t at = r.offset; at < r.offset + r.length; at += kPage)
				fill(back + at, static_cast<char>('A' + at / kPage), kPage);
			EXPECT_EQ(helUpdateMemory(m.backing, kHelManageInitialize, r.offset, r.length),
					kHelErrNone);
			if (r.offset + r.length > kMarker * kPage)
				break;
		}
		set_and_wake(&s.pager_done, 1);
	});
	for (int reader = 0; reader < kReaders; ++reader) {
		start_thread([&, reader] {
			helsim::Dispatcher d;
			for (int round = 0; round < kRounds; ++round) {
				std::size_t page = (reader * 5 + round * 7) % kReadPages;
				char expected = static_cast<char>('A' + page);
				char c = 0;
				HelSqReadMemory read{m.frontal, page * kPage + round, 1, &c};
				EXPECT_EQ(sq_call(d, kHelSubmitReadMemory, read).error(), kHelErrNone);
				EXPECT_EQ(c, expected);
				EXPECT_EQ(helLog(kHelLogSeverityDebug, front + page * kPage + 100, 4), kHelErrNone);
				if (direct) {
					char seen = static_cast<const volatile char *>(front)[page * kPage + round];
					EXPECT_EQ(seen, expected);
				}
			}
			__atomic_fetch_add(&s.readers_done, 1, __ATOMIC_SEQ_CST);
			EXPECT_EQ(helFutexWake(&s.readers_done, 1), kHelErrNone);
		});
	}
	start_thread([&] {
		helsim::Dispatcher d;
		for (int round = 0; round < kRounds; ++round) {
			HelSqInvalidateMemory invalidate{m.backing, (round % kReadPages) * kPage, 3 * kPage};
			EXPECT_EQ(sq_call(d, kHelSubmitInvalidateMemory, invalidate).error(), kHelErrNone);
			EXPECT_EQ(helYield(), kHelErrNone);
		}
		set_and_wake(&s.invalidator_done, 1);
	});
	ASSERT_TRUE(wait_for(&s.readers_done, kReaders));
	ASSERT_TRUE(wait_for(&s.invalidator_done, 1));
	EXPECT_EQ(helLog(kHelLogSeverityDebug, front + kMarker * kPage, 1), kHelErrNone);
	ASSERT_TRUE(wait_for(&s.pager_done, 1));
}

// Kernel access paths only, in threads mode: CI runs this one under TSan.
TEST(ManagedMemoryConcurrent, ReadersPagerAndInvalidations) {
	for (int i = 0; i < 5; ++i)
		run_clean(threads_mode(), [] { readers_pager_and_invalidations(false); });
}

TEST(ManagedMemory, ReadersPagerAndInvalidationsUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				run_clean(deterministic(seed), [] { readers_pager_and_invalidations(false); });
			},
			kSeeds);
}

// With plain loads as well. Not for TSan: an invalidation unmaps the host mirror of a page
// that user code may be reading at that moment, which TSan reports as a race (on hardware it
// is a TLB shootdown).
TEST(ManagedMemory, DirectReadersPagerAndInvalidations) {
	for (int i = 0; i < 5; ++i)
		run_clean(threads_mode(), [] { readers_pager_and_invalidations(true); });
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				run_clean(deterministic(seed), [] { readers_pager_and_invalidations(true); });
			},
			kSeeds);
}

// ---------------------------------------------------------------- (i) teardown

// A pager that leaves with its ManageMemory operation pending: the operation is reported as
// pending (it keeps its queue and the backing view alive), not lost.
TEST(ManagedMemory, APendingManageOperationIsReportedNotLost) {
	helsim::Machine machine{threads_mode()};
	machine.spawn("pager", [](std::span<const HelHandle>) {
		Managed m = make_managed(kPage);
		helsim::Dispatcher d;
		d.submit(kHelSubmitManageMemory, 1, HelSqManageMemory{m.backing});
		d.flush();
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(report.operations_pending(), 1u) << report.to_string();
	EXPECT_FALSE(report.leaks.empty()) << report.to_string();
}

// Teardown with a pending ManageMemory, a thread blocked on a page, and asynchronous
// operations (a view read, a lock) waiting for pages: run() reports the machine stuck, and
// destroying it frees everything without hanging.
void teardown_with_waiters(helsim::MachineConfig config) {
	helsim::Machine machine{std::move(config)};
	machine.spawn("pager", [](std::span<const HelHandle>) {
		Managed m = make_managed(kPage);
		helsim::Dispatcher d;
		d.submit(kHelSubmitManageMemory, 1, HelSqManageMemory{m.backing});
		d.flush();
	});
	machine.spawn("client", [](std::span<const HelHandle>) {
		Managed m = make_managed(2 * kPage);
		char *front = map_view(m.frontal, 2 * kPage);
		helsim::Dispatcher d;
		static char buffer[8];
		d.submit(kHelSubmitReadMemory, 1, HelSqReadMemory{m.frontal, kPage, 8, buffer});
		d.submit(kHelSubmitLockMemoryView, 2, HelSqLockMemoryView{m.frontal, 0, 2 * kPage});
		d.flush();
		helLog(kHelLogSeverityDebug, front, 8); // nobody serves this memory: blocks for good
		ADD_FAILURE() << "the access returned without a pager";
	});
	auto report = machine.run();
	EXPECT_TRUE(report.stuck) << report.to_string();
	const helsim::ThreadReport *client = find_thread(report, "client");
	ASSERT_NE(client, nullptr);
	EXPECT_EQ(client->outcome, helsim::ThreadOutcome::blocked);
	EXPECT_NE(client->waits_on.find("pager"), std::string::npos) << client->waits_on;
	const helsim::ThreadReport *pager = find_thread(report, "pager");
	ASSERT_NE(pager, nullptr);
	EXPECT_EQ(pager->outcome, helsim::ThreadOutcome::returned);
	EXPECT_EQ(report.operations_pending(), 3u) << report.to_string();
}

// A pager waiting for a request that never comes: the stuck report names the ManageMemory
// operation pending on its queue and the backing view it was submitted on.
void pager_without_clients(helsim::MachineConfig config) {
	helsim::Machine machine{std::move(config)};
	HelHandle queue = kHelNullHandle, backing = kHelNullHandle;
	machine.spawn("pager", [&](std::span<const HelHandle>) {
		Managed m = make_managed(kPage);
		backing = m.backing;
		helsim::Dispatcher d;
		queue = d.queue();
		d.submit(kHelSubmitManageMemory, 1, HelSqManageMemory{m.backing});
		d.wait(); // nobody touches the memory: no request, ever
		ADD_FAILURE() << "the pager got a completion";
	});
	auto report = machine.run();
	ASSERT_TRUE(report.stuck) << report.to_string();
	const helsim::ThreadReport *pager = find_thread(report, "pager");
	ASSERT_NE(pager, nullptr);
	EXPECT_EQ(pager->outcome, helsim::ThreadOutcome::blocked);
	EXPECT_EQ(pager->waits_on,
			"helDriveQueue on queue handle " + std::to_string(queue) +
					"; pending there: manageMemory on memory handle " + std::to_string(backing));
}

TEST(ManagedMemory, StuckReportNamesThePendingManageOperation) {
	pager_without_clients(threads_mode());
	pager_without_clients(deterministic(1));
}

TEST(ManagedMemory, TeardownFreesPendingOperationsAndWaiters) {
	teardown_with_waiters(threads_mode());
}

TEST(ManagedMemory, TeardownFreesPendingOperationsAndWaitersUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) { teardown_with_waiters(deterministic(seed)); }, kSeeds);
}

} // namespace
