// Swap spaces and swappable memory (src/kernel/memory/swap_space.cpp, swappable_memory.cpp):
// helCreateSwapSpace, helSetSwapBudget, helAllocateSwappableMemory, and a swap daemon emulated
// as in Managarm's kernel-tests/swap.cpp: it serves ManageMemory requests on the backing view,
// writing pages out to a "disk" buffer and reading them back in.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using namespace helsim::test;

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

struct Swap {
	HelHandle backing = kHelNullHandle;
	HelHandle swap = kHelNullHandle;
};

Swap make_swap(std::size_t budget) {
	Swap s;
	EXPECT_EQ(helCreateSwapSpace(0, &s.backing, &s.swap), kHelErrNone);
	EXPECT_EQ(helSetSwapBudget(s.swap, budget), kHelErrNone);
	return s;
}

HelHandle make_swappable(HelHandle swap, std::size_t size) {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helAllocateSwappableMemory(swap, size, 0, &h), kHelErrNone);
	return h;
}

char *map_view(HelHandle view, std::size_t size, std::uint32_t flags = kRW) {
	void *p = nullptr;
	EXPECT_EQ(helMapMemory(view, kHelNullHandle, nullptr, 0, size, flags, &p), kHelErrNone);
	return static_cast<char *>(p);
}

// Blocks until *word >= want (wait_for waits for equality).
bool wait_at_least(int *word, int want) {
	for (int v = load(word); v < want; v = load(word)) {
		HelError e = helFutexWait(word, v, kHelWaitInfinite);
		if (e != kHelErrNone && e != kHelErrFutexRace)
			return false;
	}
	return true;
}

// A page's pattern: its index and a salt in every word.
void fill_pattern(char *p, std::uint32_t page, std::uint32_t salt) {
	for (std::size_t i = 0; i < kPage / 4; ++i) {
		std::uint32_t word = (page * 2654435761u + static_cast<std::uint32_t>(i)) ^ salt;
		std::memcpy(p + i * 4, &word, 4);
	}
}

bool check_pattern(const char *p, std::uint32_t page, std::uint32_t salt) {
	std::vector<char> want(kPage);
	fill_pattern(want.data(), page, salt);
	return std::memcmp(p, want.data(), kPage) == 0;
}

// Which page a pattern page is (the salt is 0 or `sentinel`): the inverse of the first word.
int page_of(const char *p, std::size_t pages) {
	for (std::uint32_t page = 0; page < pages; ++page)
		if (check_pattern(p, page, 0))
			return static_cast<int>(page);
	return -1;
}

// The daemon: serves one request at a time until it wrote back page 0 with the salt
// `sentinel`.
struct Daemon {
	HelHandle backing = kHelNullHandle;
	std::size_t pages = 0;
	std::uint32_t sentinel = 0;
	std::vector<char> disk = std::vector<char>(64 * kPage);
	std::vector<int> written_back; // per page of the client's memory, by its pattern
	int writebacks = 0, initializations = 0, finished = 0;

	void serve_once(helsim::Dispatcher &d) {
		auto r = sq_call(d, kHelSubmitManageMemory, HelSqManageMemory{backing})
						 .as<HelManageResult>();
		ASSERT_EQ(r.error, kHelErrNone);
		ASSERT_EQ(r.offset % kPage, 0u);
		ASSERT_EQ(r.length % kPage, 0u);
		ASSERT_GT(r.length, 0u);
		ASSERT_LE(r.offset + r.length, disk.size()) << "a slot beyond the disk";
		char *at = disk.data() + r.offset;
		if (r.type == kHelManageInitialize) {
			EXPECT_EQ(sq_call(d, kHelSubmitWriteMemory,
							  HelSqWriteMemory{backing, r.offset, r.length, at})
							  .error(),
					kHelErrNone);
			EXPECT_EQ(helUpdateMemory(backing, kHelManageInitialize, r.offset, r.length),
					kHelErrNone);
			set_and_wake(&initializations, load(&initializations) + int(r.length / kPage));
			return;
		}
		ASSERT_EQ(r.type, kHelManageWriteback);
		EXPECT_EQ(sq_call(d, kHelSubmitReadMemory, HelSqReadMemory{backing, r.offset, r.length, at})
						  .error(),
				kHelErrNone);
		EXPECT_EQ(helUpdateMemory(backing, kHelManageWriteback, r.offset, r.length), kHelErrNone);
		bool last = false;
		for (std::size_t off = 0; off < r.length; off += kPage) {
			if (int page = page_of(at + off, pages); page >= 0)
				++written_back[static_cast<std::size_t>(page)];
			last |= check_pattern(at + off, 0, sentinel);
		}
		set_and_wake(&writebacks, load(&writebacks) + int(r.length / kPage));
		if (last)
			set_and_wake(&finished, 1);
	}

	void run() {
		helsim::Dispatcher d;
		while (!load(&finished))
			serve_once(d);
	}
};

// ---------------------------------------------------------------- arguments and rights

TEST(Swap, CreateChecksFlagsAndHandsOutTypedHandles) {
	run_clean(threads_mode(), [] {
		HelHandle backing = 7, swap = 7;
		EXPECT_EQ(helCreateSwapSpace(1, &backing, &swap), kHelErrIllegalArgs);
		ASSERT_EQ(helCreateSwapSpace(0, &backing, &swap), kHelErrNone);
		auto b = info_of(backing), s = info_of(swap);
		EXPECT_EQ(b.type, kHelDescMemoryView);
		EXPECT_EQ(s.type, kHelDescSwapSpace);
		EXPECT_EQ(s.rights, std::uint32_t{kHelRightAssign | kHelRightManage});
		HelHandle memory = make_swappable(swap, 3 * kPage);
		EXPECT_EQ(info_of(memory).type, kHelDescMemoryView);
		std::size_t size = 0;
		EXPECT_EQ(helMemoryInfo(memory, &size), kHelErrNone);
		EXPECT_EQ(size, 3 * kPage);
		// The swap handle is no memory, and memory is no swap space.
		void *p = nullptr;
		EXPECT_EQ(helMapMemory(swap, kHelNullHandle, nullptr, 0, kPage, kRW, &p),
				kHelErrBadDescriptor);
		EXPECT_EQ(helSetSwapBudget(memory, 4), kHelErrBadDescriptor);
		EXPECT_EQ(helSetSwapBudget(backing, 4), kHelErrBadDescriptor);
		for (HelHandle h : {memory, swap, backing})
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	});
}

TEST(Swap, SetBudgetChecksItsArguments) {
	run_clean(threads_mode(), [] {
		Swap s = make_swap(8);
		EXPECT_EQ(helSetSwapBudget(s.swap, 0), kHelErrIllegalArgs);
		EXPECT_EQ(helSetSwapBudget(s.swap, 1), kHelErrNone);
		EXPECT_EQ(helSetSwapBudget(s.swap, ~std::size_t{0}), kHelErrNone);
		EXPECT_EQ(helSetSwapBudget(12345, 4), kHelErrNoDescriptor);
		EXPECT_EQ(helSetSwapBudget(make_queue(), 4), kHelErrBadDescriptor);
		EXPECT_EQ(helSetSwapBudget(narrowed(s.swap, kHelRightAssign), 4), kHelErrBadRights);
		EXPECT_EQ(helSetSwapBudget(narrowed(s.swap, kHelRightManage), 4), kHelErrNone);
	});
}

TEST(Swap, AllocateChecksItsArguments) {
	run_clean(threads_mode(), [] {
		Swap s = make_swap(8);
		HelHandle h = 7;
		EXPECT_EQ(helAllocateSwappableMemory(s.swap, kPage, 1, &h), kHelErrIllegalArgs);
		EXPECT_EQ(helAllocateSwappableMemory(s.swap, 0, 0, &h), kHelErrIllegalArgs);
		EXPECT_EQ(helAllocateSwappableMemory(s.swap, kPage + 1, 0, &h), kHelErrIllegalArgs);
		EXPECT_EQ(helAllocateSwappableMemory(s.swap, std::size_t{1} << 50, 0, &h), kHelErrNoMemory);
		EXPECT_EQ(helAllocateSwappableMemory(12345, kPage, 0, &h), kHelErrNoDescriptor);
		EXPECT_EQ(helAllocateSwappableMemory(s.backing, kPage, 0, &h), kHelErrBadDescriptor);
		EXPECT_EQ(helAllocateSwappableMemory(narrowed(s.swap, kHelRightManage), kPage, 0, &h),
				kHelErrBadRights);
		EXPECT_EQ(helAllocateSwappableMemory(narrowed(s.swap, kHelRightAssign), kPage, 0, &h),
				kHelErrNone);
		// Untouched memory reads as zeros and needs no daemon.
		char *p = map_view(h, kPage, kHelMapProtRead);
		EXPECT_EQ(std::string(p, 64), std::string(64, '\0'));
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, kPage), kHelErrNone);
	});
}

// The daemon's helUpdateMemory is checked as for managed memory: a slot that is in no
// transaction is refused.
TEST(Swap, UpdateOfASlotInNoTransactionIsRefused) {
	run_clean(threads_mode(), [] {
		Swap s = make_swap(8);
		EXPECT_EQ(helUpdateMemory(s.backing, kHelManageWriteback, 0, kPage), kHelErrIllegalArgs);
		EXPECT_EQ(helUpdateMemory(s.backing, kHelManageInitialize, 0, kPage), kHelErrIllegalArgs);
		EXPECT_EQ(helUpdateMemory(s.backing, kHelManageInitialize, 1, kPage), kHelErrIllegalArgs);
	});
}

// ---------------------------------------------------------------- the daemon's protocol

// Managarm's swapFaultIn: pages written through a mapping and unmapped are each offered for
// writeback exactly once; they read back intact through a fresh mapping (faulting in what was
// evicted when the budget is smaller than the memory); one more page written reaches the
// disk too.
void write_unmap_fault_in(std::size_t budget) {
	constexpr std::size_t kPages = 16;
	Swap s = make_swap(budget);
	HelHandle memory = make_swappable(s.swap, kPages * kPage);
	auto daemon = std::make_shared<Daemon>();
	daemon->backing = s.backing;
	daemon->pages = kPages;
	daemon->written_back.assign(kPages, 0);
	daemon->sentinel = 0xcafebabe;
	int done = 0;
	start_thread([daemon, &done] {
		daemon->run();
		set_and_wake(&done, 1);
	});

	char *window = map_view(memory, kPages * kPage);
	for (std::uint32_t page = 0; page < kPages; ++page)
		fill_pattern(window + page * kPage, page, 0);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, window, kPages * kPage), kHelErrNone);
	ASSERT_TRUE(wait_for(&daemon->writebacks, int(kPages)));
	for (std::size_t page = 0; page < kPages; ++page)
		EXPECT_EQ(daemon->written_back[page], 1) << "page " << page;

	// Read through a fresh (read-only) mapping: what was evicted faults back in.
	char *view = map_view(memory, kPages * kPage, kHelMapProtRead);
	for (std::uint32_t page = 0; page < kPages; ++page)
		EXPECT_TRUE(check_pattern(view + page * kPage, page, 0)) << "page " << page;
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, view, kPages * kPage), kHelErrNone);
	if (budget < kPages)
		EXPECT_GE(load(&daemon->initializations), int(kPages - budget));
	else
		EXPECT_EQ(load(&daemon->initializations), 0);
	if (budget >= kPages) {
		EXPECT_EQ(load(&daemon->writebacks), int(kPages)) << "clean pages were written back";
	}

	char *again = map_view(memory, kPages * kPage);
	fill_pattern(again, 0, daemon->sentinel);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, again, kPages * kPage), kHelErrNone);
	ASSERT_TRUE(wait_for(&done, 1)); // the daemon saw the write
	if (budget >= kPages) {
		EXPECT_EQ(load(&daemon->writebacks), int(kPages + 1));
	}
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
}

TEST(Swap, WritebackExactlyOnceAfterUnmapThenFaultIn) {
	run_clean(threads_mode(), [] { write_unmap_fault_in(64); });
}

TEST(Swap, DataSurvivesEvictionUnderASmallBudget) {
	run_clean(threads_mode(), [] { write_unmap_fault_in(4); });
}

TEST(Swap, DataSurvivesEvictionUnderABudgetOfOnePage) {
	run_clean(threads_mode(), [] { write_unmap_fault_in(1); });
}

TEST(Swap, WriteUnmapFaultInUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				run_clean(deterministic(seed), [] { write_unmap_fault_in(64); });
				run_clean(deterministic(seed), [] { write_unmap_fault_in(3); });
			},
			kSeeds);
}

// Managarm's swapRoundtrip: kernel writes (SQ WriteMemory) are writebacks too, and kernel
// reads (SQ ReadMemory) fault evicted pages back in.
void kernel_copies_round_trip() {
	constexpr std::size_t kPages = 8;
	Swap s = make_swap(2);
	HelHandle memory = make_swappable(s.swap, kPages * kPage);
	auto daemon = std::make_shared<Daemon>();
	daemon->backing = s.backing;
	daemon->pages = kPages;
	daemon->written_back.assign(kPages, 0);
	daemon->sentinel = 0xdeadbeef;
	int done = 0;
	start_thread([daemon, &done] {
		daemon->run();
		set_and_wake(&done, 1);
	});
	helsim::Dispatcher d;
	std::vector<char> buffer(kPage);
	for (std::uint32_t page = 0; page < kPages; ++page) {
		fill_pattern(buffer.data(), page, 0);
		EXPECT_EQ(sq_call(d, kHelSubmitWriteMemory,
						  HelSqWriteMemory{memory, page * kPage, kPage, buffer.data()})
						  .error(),
				kHelErrNone);
	}
	// Each page at least once: a page evicted while its kernel write is still under way
	// (between the touch and the copy) is written back again with the data.
	ASSERT_TRUE(wait_at_least(&daemon->writebacks, int(kPages)));
	for (std::uint32_t page = 0; page < kPages; ++page) {
		EXPECT_EQ(sq_call(d, kHelSubmitReadMemory,
						  HelSqReadMemory{memory, page * kPage, kPage, buffer.data()})
						  .error(),
				kHelErrNone);
		EXPECT_TRUE(check_pattern(buffer.data(), page, 0)) << "page " << page;
	}
	EXPECT_GE(load(&daemon->initializations), int(kPages - 2));
	fill_pattern(buffer.data(), 0, 0xdeadbeef);
	EXPECT_EQ(sq_call(d, kHelSubmitWriteMemory, HelSqWriteMemory{memory, 0, kPage, buffer.data()})
					  .error(),
			kHelErrNone);
	ASSERT_TRUE(wait_for(&done, 1));
}

TEST(Swap, KernelCopiesRoundTrip) { run_clean(threads_mode(), kernel_copies_round_trip); }

TEST(Swap, KernelCopiesRoundTripUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) { run_clean(deterministic(seed), kernel_copies_round_trip); },
			kSeeds);
}

// One thread plays program and daemon. A page written by the kernel and written back is
// clean: evicting it needs no second writeback. Then a kHelMapDontRequireBacking access to it
// fails instead of waiting, and a kernel read waits for the daemon's initialization.
void clean_eviction_and_dont_require_backing() {
	Swap s = make_swap(1);
	HelHandle memory = make_swappable(s.swap, 2 * kPage);
	helsim::Dispatcher d;
	std::vector<char> page(kPage), disk(kPage), seen(kPage);
	fill_pattern(page.data(), 0, 0x5a5a);
	ASSERT_EQ(sq_call(d, kHelSubmitWriteMemory, HelSqWriteMemory{memory, 0, kPage, page.data()})
					  .error(),
			kHelErrNone);
	auto r = sq_call(d, kHelSubmitManageMemory, HelSqManageMemory{s.backing}).as<HelManageResult>();
	ASSERT_EQ(r.type, kHelManageWriteback);
	ASSERT_EQ(r.offset, 0u);
	ASSERT_EQ(r.length, kPage);
	ASSERT_EQ(sq_call(d, kHelSubmitReadMemory, HelSqReadMemory{s.backing, 0, kPage, disk.data()})
					  .error(),
			kHelErrNone);
	EXPECT_TRUE(check_pattern(disk.data(), 0, 0x5a5a));
	EXPECT_EQ(helUpdateMemory(s.backing, kHelManageWriteback, 0, kPage), kHelErrNone);
	EXPECT_EQ(helUpdateMemory(s.backing, kHelManageWriteback, 0, kPage), kHelErrIllegalArgs)
			<< "acknowledged twice";

	// Page 1 gets a frame: page 0 (clean, its copy on disk) goes without a writeback.
	ASSERT_EQ(sq_call(d, kHelSubmitReadMemory, HelSqReadMemory{memory, kPage, 8, seen.data()})
					  .error(),
			kHelErrNone);
	char *window = map_view(memory, 2 * kPage, kHelMapProtRead | kHelMapDontRequireBacking);
	EXPECT_EQ(helLog(kHelLogSeverityDebug, window, 1), kHelErrFault);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, window, 2 * kPage), kHelErrNone);

	// A kernel read of page 0 waits for the daemon.
	d.submit(kHelSubmitReadMemory, 500, HelSqReadMemory{memory, 0, kPage, seen.data()});
	d.flush();
	r = sq_call(d, kHelSubmitManageMemory, HelSqManageMemory{s.backing}).as<HelManageResult>();
	ASSERT_EQ(r.type, kHelManageInitialize) << "a second writeback of a clean page";
	ASSERT_EQ(r.offset, 0u);
	ASSERT_EQ(sq_call(d, kHelSubmitWriteMemory, HelSqWriteMemory{s.backing, 0, kPage, disk.data()})
					  .error(),
			kHelErrNone);
	EXPECT_EQ(helUpdateMemory(s.backing, kHelManageInitialize, 0, kPage), kHelErrNone);
	auto read = d.wait_for(500,
			[](helsim::Element &&e) { ADD_FAILURE() << "unexpected completion " << e.context(); });
	EXPECT_EQ(read.error(), kHelErrNone);
	EXPECT_TRUE(check_pattern(seen.data(), 0, 0x5a5a));
}

TEST(Swap, CleanEvictionAndDontRequireBacking) {
	run_clean(threads_mode(), clean_eviction_and_dont_require_backing);
}

TEST(Swap, CleanEvictionAndDontRequireBackingUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				run_clean(deterministic(seed), clean_eviction_and_dont_require_backing);
			},
			kSeeds);
}

// ---------------------------------------------------------------- teardown

// Nobody serves the swap space: a page evicted under a one-page budget waits for its
// writeback forever, and so does the thread that wants it back. The run reports that and
// tears down without hanging or leaking; the daemon's lone ManageMemory is still pending.
void teardown_with_writebacks_outstanding(helsim::MachineConfig config) {
	helsim::Machine machine{std::move(config)};
	machine.spawn("client", [](std::span<const HelHandle>) {
		Swap s = make_swap(1);
		HelHandle memory = make_swappable(s.swap, 4 * kPage);
		char *p = map_view(memory, 4 * kPage);
		for (std::size_t page = 0; page < 4; ++page)
			p[page * kPage] = 'a'; // each write evicts the page before it
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, 4 * kPage), kHelErrNone);
		p = map_view(memory, 4 * kPage, kHelMapProtRead);
		helLog(kHelLogSeverityDebug, p, 1); // page 0 waits for its writeback: for good
		ADD_FAILURE() << "the access returned without a daemon";
	});
	auto report = machine.run();
	EXPECT_TRUE(report.stuck) << report.to_string();
	const helsim::ThreadReport *client = find_thread(report, "client");
	ASSERT_NE(client, nullptr);
	EXPECT_EQ(client->outcome, helsim::ThreadOutcome::blocked);
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
}

TEST(Swap, TeardownWithWritebacksOutstanding) {
	teardown_with_writebacks_outstanding(threads_mode());
}

TEST(Swap, TeardownWithWritebacksOutstandingUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) { teardown_with_writebacks_outstanding(deterministic(seed)); },
			kSeeds);
}

// A daemon that took a writeback request and never answered, and another ManageMemory of its
// still pending: teardown frees both without completing them twice.
void teardown_with_a_daemon_mid_request(helsim::MachineConfig config) {
	helsim::Machine machine{std::move(config)};
	machine.spawn("both", [](std::span<const HelHandle>) {
		Swap s = make_swap(8);
		HelHandle memory = make_swappable(s.swap, 2 * kPage);
		char *p = map_view(memory, 2 * kPage);
		p[0] = 'x';
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, 2 * kPage), kHelErrNone);
		helsim::Dispatcher d;
		auto r = sq_call(d, kHelSubmitManageMemory, HelSqManageMemory{s.backing})
						 .as<HelManageResult>();
		EXPECT_EQ(r.type, kHelManageWriteback);
		EXPECT_EQ(r.length, kPage);
		d.submit(kHelSubmitManageMemory, 99, HelSqManageMemory{s.backing});
		d.flush();
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(report.operations_pending(), 1u) << report.to_string();
}

TEST(Swap, TeardownWithADaemonMidRequest) { teardown_with_a_daemon_mid_request(threads_mode()); }

TEST(Swap, TeardownWithADaemonMidRequestUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) { teardown_with_a_daemon_mid_request(deterministic(seed)); },
			kSeeds);
}

} // namespace
