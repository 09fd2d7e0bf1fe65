// examples/page_transfer: a zero-copy page-transfer send (docs/extending.md, "Handles and
// pages").
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

#include "page_transfer.hpp"

namespace {

using namespace page_transfer;
namespace ipc = helsim::ipc;

constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kReadWrite = kHelMapProtRead | kHelMapProtWrite;

HelHandle allocate(std::size_t size, std::uint32_t flags = 0) {
	HelHandle memory = kHelNullHandle;
	EXPECT_EQ(helAllocateMemory(size, flags, nullptr, &memory), kHelErrNone);
	return memory;
}

char *map(HelHandle memory, std::size_t size) {
	void *p = nullptr;
	EXPECT_EQ(helMapMemory(memory, kHelNullHandle, nullptr, 0, size, kReadWrite, &p), kHelErrNone);
	return static_cast<char *>(p);
}

void unmap(char *p, std::size_t size) {
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, size), kHelErrNone);
}

void close(HelHandle h) { EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone); }

// The byte of page `page` at `at`: each page its own pattern.
char pattern(std::size_t page, std::size_t at) {
	return static_cast<char>('a' + (page * 7 + at / 512) % 26);
}

void fill(char *p, std::size_t pages) {
	for (std::size_t page = 0; page < pages; ++page)
		for (std::size_t at = 0; at < kPage; ++at)
			p[page * kPage + at] = pattern(page, at);
}

// Whether `pages` pages at `p` hold the patterns of pages first, first + 1, ...
bool holds(const char *p, std::size_t first, std::size_t pages) {
	for (std::size_t page = 0; page < pages; ++page)
		for (std::size_t at = 0; at < kPage; ++at)
			if (p[page * kPage + at] != pattern(first + page, at))
				return false;
	return true;
}

bool zero(const char *p, std::size_t size) {
	for (std::size_t i = 0; i < size; ++i)
		if (p[i])
			return false;
	return true;
}

struct Outcome {
	HelError sent = -1;
	HelError received = -1;
	HelHandle handle = kHelNullHandle; // a receive's handle, if it writes one
};

// Submits sendPages on `a` and `receive` on `b`, and waits for both.
template <typename Receive>
Outcome transfer(helsim::Dispatcher &dispatcher, HelHandle a, HelHandle b, HelHandle memory,
		std::size_t offset, std::size_t length, const Receive &receive) {
	ipc::submit(dispatcher, a, 1, send_pages(memory, offset, length));
	ipc::submit(dispatcher, b, 2, receive);
	Outcome out;
	for (int i = 0; i < 2; ++i) {
		std::optional<helsim::Element> element = dispatcher.wait();
		if (!element || element->context() < 1 || element->context() > 2) {
			ADD_FAILURE() << "an unexpected completion";
			break;
		}
		if (element->context() == 1) {
			out.sent = element->error();
		} else {
			out.received = element->error();
			if (element->payload().size() >= sizeof(HelHandleResult))
				out.handle = element->as<HelHandleResult>().handle;
		}
	}
	return out;
}

template <typename Receive>
Outcome transfer(HelHandle a, HelHandle b, HelHandle memory, std::size_t offset, std::size_t length,
		const Receive &receive) {
	helsim::Dispatcher dispatcher;
	return transfer(dispatcher, a, b, memory, offset, length, receive);
}

void expect_clean(const helsim::RunReport &report) {
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
}

// One simulated thread holding both lanes (so pairs happen at once, with no wait).
helsim::RunReport on_one_thread(helsim::MachineConfig config,
		const std::function<void(HelHandle a, HelHandle b)> &body) {
	helsim::Machine machine{config};
	install(machine);
	machine.spawn("both-lanes", [&body](std::span<const HelHandle>) {
		HelHandle a, b;
		ASSERT_EQ(helCreateStream(&a, &b, 0), kHelErrNone);
		body(a, b);
		close(a);
		close(b);
	});
	helsim::RunReport report = machine.run();
	expect_clean(report);
	return report;
}

void on_one_thread(const std::function<void(HelHandle a, HelHandle b)> &body) {
	on_one_thread(helsim::MachineConfig{}, body);
}

// The submission error of a sendPages (helSubmitAsync reports it as its return value).
HelError refused(HelHandle lane, HelHandle memory, std::size_t offset, std::size_t length) {
	helsim::Dispatcher dispatcher;
	HelAction action = send_pages(memory, offset, length).action;
	return helSubmitAsync(lane, &action, 1, dispatcher.queue(), 1, 0);
}

} // namespace

TEST(ExtendingPageTransfer, ThePagesMoveAndTheSendersRangeReadsZeroThroughEveryMapping) {
	on_one_thread([](HelHandle a, HelHandle b) {
		HelHandle memory = allocate(8 * kPage);
		char *before = map(memory, 8 * kPage); // mapped and present before the transfer
		fill(before, 8);
		Outcome out = transfer(a, b, memory, 2 * kPage, 4 * kPage, recv_pages());
		ASSERT_EQ(out.sent, kHelErrNone);
		ASSERT_EQ(out.received, kHelErrNone);
		helsim::ext::DescriptorInfo info{};
		ASSERT_EQ(helsim::ext::describe_descriptor(out.handle, info), kHelErrNone);
		EXPECT_EQ(info.type, kHelDescMemoryView);
		char *received = map(out.handle, 4 * kPage);
		EXPECT_TRUE(holds(received, 2, 4)) << "the bytes arrived intact";
		EXPECT_TRUE(zero(before + 2 * kPage, 4 * kPage)) << "the old mapping shows zero pages";
		EXPECT_TRUE(holds(before, 0, 2));
		EXPECT_TRUE(holds(before + 6 * kPage, 6, 2)) << "pages outside the range stay";
		char *after = map(memory, 8 * kPage);
		EXPECT_TRUE(zero(after + 2 * kPage, 4 * kPage)) << "so does a new mapping";
		// The sender's range has fresh pages of its own now.
		before[2 * kPage] = 'x';
		EXPECT_EQ(after[2 * kPage], 'x');
		EXPECT_EQ(received[0], pattern(2, 0));
		received[kPage] = 'y';
		EXPECT_EQ(before[3 * kPage], 0);
		unmap(received, 4 * kPage);
		unmap(before, 8 * kPage);
		unmap(after, 8 * kPage);
		close(out.handle);
		close(memory);
	});
}

// Memory views the kernel made in a run of `body` on one thread.
static std::uint64_t memory_views_made(const std::function<void(HelHandle a, HelHandle b)> &body) {
	helsim::RunReport report = on_one_thread({}, body);
	for (const helsim::ObjectCount &count : report.counters.objects)
		if (count.kind == "memory")
			return count.created;
	return 0;
}

// The view the pages move into is a kernel object like any other: the registry counts it
// (and the run report would name it if it leaked). Made outside make_object, it was not
// registered, and its end unlinked the whole registry.
TEST(ExtendingPageTransfer, TheViewThePagesMoveIntoJoinsTheKernelsRegistry) {
	auto run = [](bool send) {
		return memory_views_made([send](HelHandle a, HelHandle b) {
			HelHandle memory = allocate(2 * kPage);
			helsim::Dispatcher dispatcher;
			if (send) {
				Outcome out = transfer(dispatcher, a, b, memory, 0, 2 * kPage, recv_pages());
				ASSERT_EQ(out.received, kHelErrNone);
				close(out.handle);
			}
			close(memory);
		});
	};
	EXPECT_EQ(run(true), run(false) + 1);
}

TEST(ExtendingPageTransfer, APullDescriptorGetsThePagesWithTheSendersRights) {
	on_one_thread([](HelHandle a, HelHandle b) {
		HelHandle full = allocate(4 * kPage);
		char *p = map(full, 4 * kPage);
		fill(p, 4);
		HelHandle memory;
		ASSERT_EQ(helTransferDescriptor(full, kHelThisUniverse, kHelTransferDescriptorOut,
						  kHelRightRead | kHelRightWrite | kHelRightAssign, 0, &memory),
				kHelErrNone);
		// Requiring a right the sender's handle lacks: the pull's kHelErrBadRights, and the
		// pages stay where they are.
		Outcome denied =
				transfer(a, b, memory, 0, 4 * kPage, ipc::pull_descriptor(kHelRightExecute));
		EXPECT_EQ(denied.sent, kHelErrNone);
		EXPECT_EQ(denied.received, kHelErrBadRights);
		EXPECT_TRUE(holds(p, 0, 4));
		Outcome out = transfer(a, b, memory, kPage, 2 * kPage, ipc::pull_descriptor(kHelRightRead));
		ASSERT_EQ(out.sent, kHelErrNone);
		ASSERT_EQ(out.received, kHelErrNone);
		helsim::ext::DescriptorInfo info{};
		ASSERT_EQ(helsim::ext::describe_descriptor(out.handle, info), kHelErrNone);
		EXPECT_EQ(info.rights,
				static_cast<std::uint32_t>(kHelRightRead | kHelRightWrite | kHelRightAssign));
		char *received = map(out.handle, 2 * kPage);
		EXPECT_TRUE(holds(received, 1, 2));
		EXPECT_TRUE(zero(p + kPage, 2 * kPage));
		unmap(received, 2 * kPage);
		unmap(p, 4 * kPage);
		for (HelHandle h : {out.handle, memory, full})
			close(h);
	});
}

namespace {

// Frame allocations of a deterministic run that fills `pages` pages and moves them (or, with
// copy, sends them with sendFromBuffer into a receive buffer of another memory object), then
// reads every received byte.
std::uint64_t frames_allocated(std::size_t pages, bool copy) {
	helsim::RunReport report = on_one_thread(helsim::testing::deterministic(1),
			[pages, copy](HelHandle a, HelHandle b) {
				const std::size_t size = pages * kPage;
				HelHandle memory = allocate(size);
				char *p = map(memory, size);
				fill(p, pages);
				HelHandle target = kHelNullHandle;
				char *received = nullptr;
				if (copy) {
					target = allocate(size);
					received = map(target, size);
					helsim::Dispatcher dispatcher;
					ipc::submit(dispatcher, a, 1, ipc::send_buffer(p, size));
					ipc::submit(dispatcher, b, 2, ipc::recv_buffer(received, size));
					for (int i = 0; i < 2; ++i)
						EXPECT_EQ(dispatcher.wait()->error(), kHelErrNone);
				} else {
					Outcome out = transfer(a, b, memory, 0, size, recv_pages());
					EXPECT_EQ(out.received, kHelErrNone);
					target = out.handle;
					received = map(target, size);
				}
				EXPECT_TRUE(holds(received, 0, pages));
				unmap(received, size);
				unmap(p, size);
				close(target);
				close(memory);
			});
	return report.counters.passes(helsim::FaultPoint::frame_allocation);
}

} // namespace

TEST(ExtendingPageTransfer, FramesMoveInsteadOfBeingCopied) {
	// 48 pages more cost the sender 48 frames (it fills them) and the receiver none; a copy
	// costs the receiver 48 more. Page tables may take a few frames besides.
	std::uint64_t moved = frames_allocated(64, false) - frames_allocated(16, false);
	std::uint64_t copied = frames_allocated(64, true) - frames_allocated(16, true);
	EXPECT_GE(moved, 48u);
	EXPECT_LT(moved, 48u + 8u);
	EXPECT_GE(copied, 2 * 48u);
}

TEST(ExtendingPageTransfer, BadRequestsAreRefusedAtSubmission) {
	on_one_thread([](HelHandle a, HelHandle) {
		HelHandle memory = allocate(8 * kPage);
		EXPECT_EQ(refused(a, memory, 1, kPage), kHelErrIllegalArgs);
		EXPECT_EQ(refused(a, memory, 0, kPage + 1), kHelErrIllegalArgs);
		EXPECT_EQ(refused(a, memory, 0, 0), kHelErrIllegalArgs);
		EXPECT_EQ(refused(a, memory, 0, std::size_t{32} << 20), kHelErrIllegalArgs);
		EXPECT_EQ(refused(a, 12345, 0, kPage), kHelErrNoDescriptor);
		EXPECT_EQ(refused(a, a, 0, kPage), kHelErrBadDescriptor) << "a lane is no memory";
		EXPECT_EQ(refused(a, memory, 8 * kPage, kPage), kHelErrOutOfBounds);
		EXPECT_EQ(refused(a, memory, 4 * kPage, 8 * kPage), kHelErrOutOfBounds);
		HelHandle read_only;
		ASSERT_EQ(helTransferDescriptor(memory, kHelThisUniverse, kHelTransferDescriptorOut,
						  kHelRightRead, 0, &read_only),
				kHelErrNone);
		EXPECT_EQ(refused(a, read_only, 0, kPage), kHelErrBadRights);
		// Memory whose frames are not its own to give away.
		HelHandle continuous = allocate(2 * kPage, kHelAllocContinuous);
		HelHandle cow, slice, backing, frontal;
		ASSERT_EQ(helCopyOnWrite(memory, 0, 2 * kPage, &cow), kHelErrNone);
		ASSERT_EQ(helCreateSliceView(memory, 0, 2 * kPage, 0, &slice), kHelErrNone);
		ASSERT_EQ(helCreateManagedMemory(2 * kPage, 0, &backing, &frontal), kHelErrNone);
		for (HelHandle unmovable : {continuous, cow, slice, frontal, backing})
			EXPECT_EQ(refused(a, unmovable, 0, kPage), kHelErrUnsupportedOperation) << unmovable;
		for (HelHandle h : {memory, read_only, continuous, cow, slice, backing, frontal})
			close(h);
	});
}

TEST(ExtendingPageTransfer, WhatDoesNotTakeThePagesLeavesThemWithTheSender) {
	on_one_thread([](HelHandle a, HelHandle b) {
		HelHandle memory = allocate(2 * kPage);
		char *p = map(memory, 2 * kPage);
		fill(p, 2);
		Outcome mismatch = transfer(a, b, memory, 0, 2 * kPage, ipc::recv_inline());
		EXPECT_EQ(mismatch.sent, kHelErrTransmissionMismatch);
		EXPECT_EQ(mismatch.received, kHelErrTransmissionMismatch);
		Outcome dismissed = transfer(a, b, memory, 0, 2 * kPage, ipc::dismiss());
		EXPECT_EQ(dismissed.sent, kHelErrDismissed);
		EXPECT_EQ(dismissed.received, kHelErrNone);
		EXPECT_TRUE(holds(p, 0, 2));
		// A locked range: the move would take frames the lock promises to keep.
		helsim::Dispatcher dispatcher;
		dispatcher.submit(kHelSubmitLockMemoryView, 1, HelSqLockMemoryView{memory, kPage, kPage});
		dispatcher.flush();
		auto locked = dispatcher.wait_for(1, [](helsim::Element) {});
		ASSERT_EQ(locked.error(), kHelErrNone);
		HelHandle lock = locked.as<HelHandleResult>().handle;
		Outcome while_locked = transfer(a, b, memory, 0, kPage, recv_pages());
		EXPECT_EQ(while_locked.sent, kHelErrIllegalState);
		EXPECT_EQ(while_locked.received, kHelErrIllegalState);
		EXPECT_TRUE(holds(p, 0, 2));
		close(lock);
		Outcome unlocked = transfer(a, b, memory, 0, kPage, recv_pages());
		EXPECT_EQ(unlocked.received, kHelErrNone);
		EXPECT_TRUE(zero(p, kPage));
		close(unlocked.handle);
		unmap(p, 2 * kPage);
		close(memory);
	});
}

TEST(ExtendingPageTransfer, ASendThatNeverPairsKeepsThePagesAndLeaksNothing) {
	helsim::Machine machine;
	install(machine);
	machine.spawn("sender", [](std::span<const HelHandle>) {
		HelHandle a, b;
		ASSERT_EQ(helCreateStream(&a, &b, 0), kHelErrNone);
		HelHandle memory = allocate(kPage);
		char *p = map(memory, kPage);
		fill(p, 1);
		helsim::Dispatcher dispatcher;
		ipc::submit(dispatcher, a, 1, send_pages(memory, 0, kPage));
		dispatcher.flush();
		close(b); // the peer goes: the send fails with its reference to the memory released
		EXPECT_EQ(dispatcher.wait_for(1, [](helsim::Element) {}).error(), kHelErrEndOfLane);
		EXPECT_TRUE(holds(p, 0, 1));
		unmap(p, kPage);
		close(memory);
		close(a);
	});
	expect_clean(machine.run());
}

namespace {

// A run on one thread where the `k`-th pass through `point` fails (none for 0): it moves one
// filled page. What the transfer saw, whether the sender's page still holds its bytes, and
// how many passes through `point` the run made.
struct Injected {
	Outcome out;
	bool kept = false;
	std::uint64_t passes = 0;
};

// Takes handle numbers until the next handle starts a segment of the handle table.
void fill_handle_segment() {
	for (;;) {
		HelHandle token;
		ASSERT_EQ(helCreateToken(&token), kHelErrNone);
		close(token);
		if (token % 1024 == 1023)
			return;
	}
}

Injected with_failure(helsim::FaultPoint point, std::uint64_t k, bool receive_grows_the_table) {
	helsim::MachineConfig config = helsim::testing::deterministic(1);
	config.inject.at(point) = k;
	Injected seen;
	helsim::RunReport report = on_one_thread(config, [&](HelHandle a, HelHandle b) {
		HelHandle memory = allocate(kPage);
		char *p = map(memory, kPage);
		fill(p, 1);
		helsim::Dispatcher dispatcher;
		if (receive_grows_the_table)
			fill_handle_segment();
		seen.out = transfer(dispatcher, a, b, memory, 0, kPage, recv_pages());
		seen.kept = holds(p, 0, 1);
		if (seen.out.received == kHelErrNone)
			close(seen.out.handle);
		unmap(p, kPage);
		close(memory);
	});
	EXPECT_EQ(report.counters.injected_fail_at, k ? 1u : 0u);
	seen.passes = report.counters.passes(point);
	return seen;
}

} // namespace

TEST(ExtendingPageTransfer, AnObjectThatCannotBeMadeLeavesThePagesWithTheSender) {
	// The new memory object is the run's last object: fail the last creation of a clean run.
	Injected clean = with_failure(helsim::FaultPoint::object_creation, 0, false);
	ASSERT_EQ(clean.out.received, kHelErrNone);
	Injected failed = with_failure(helsim::FaultPoint::object_creation, clean.passes, false);
	EXPECT_EQ(failed.out.sent, kHelErrNoMemory);
	EXPECT_EQ(failed.out.received, kHelErrNoMemory);
	EXPECT_TRUE(failed.kept);
}

TEST(ExtendingPageTransfer, AReceiveThatCannotTakeTheHandleLosesThePages) {
	// The receive's handle starts a segment of the handle table: the run's last growth.
	Injected clean = with_failure(helsim::FaultPoint::handle_table_growth, 0, true);
	ASSERT_EQ(clean.out.received, kHelErrNone);
	Injected failed = with_failure(helsim::FaultPoint::handle_table_growth, clean.passes, true);
	EXPECT_EQ(failed.out.sent, kHelErrNone);
	EXPECT_EQ(failed.out.received, kHelErrNoMemory);
	EXPECT_EQ(failed.out.handle, kHelNullHandle);
	EXPECT_FALSE(failed.kept) << "the pages left the sender before the attach failed";
}

namespace {

// A sender and a receiver thread: the receiver posts recvPages, the sender fills its memory
// and sends it, then checks its range is zero; the receiver maps what it got.
void sender_and_receiver(helsim::MachineConfig config) {
	helsim::Machine machine{config};
	install(machine);
	HelHandle a, b;
	{
		auto host = machine.attach();
		ASSERT_EQ(helCreateStream(&a, &b, 0), kHelErrNone);
	}
	constexpr std::size_t kPages = 3;
	machine.spawn("sender",
			[](std::span<const HelHandle> h) {
				HelHandle memory = allocate(kPages * kPage);
				char *p = map(memory, kPages * kPage);
				fill(p, kPages);
				helsim::Dispatcher dispatcher;
				auto exchange =
						ipc::exchange_sync(dispatcher, h[0], send_pages(memory, 0, kPages * kPage));
				auto &[sent] = exchange.results;
				EXPECT_EQ(sent.error, kHelErrNone);
				EXPECT_TRUE(zero(p, kPages * kPage));
				unmap(p, kPages * kPage);
				close(memory);
			},
			{a});
	machine.spawn("receiver",
			[](std::span<const HelHandle> h) {
				helsim::Dispatcher dispatcher;
				auto exchange = ipc::exchange_sync(dispatcher, h[0], recv_pages());
				auto &[received] = exchange.results;
				ASSERT_EQ(received.error, kHelErrNone);
				char *p = map(received.handle, kPages * kPage);
				EXPECT_TRUE(holds(p, 0, kPages));
				unmap(p, kPages * kPage);
				close(received.handle);
			},
			{b});
	expect_clean(machine.run());
}

} // namespace

TEST(ExtendingPageTransfer, SenderAndReceiverThreadsInThreadsMode) { sender_and_receiver({}); }

TEST(ExtendingPageTransfer, SenderAndReceiverThreadsOnEverySeed) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) { sender_and_receiver(helsim::testing::deterministic(seed)); });
}
