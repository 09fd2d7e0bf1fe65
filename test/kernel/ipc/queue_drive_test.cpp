// Tests of the hel queue (src/kernel/ipc/queue.cpp), continued from queue_test.cpp: many
// producers on one queue, CQ chunks supplied with and without kHelKernelNotifySupplyCqChunks,
// and helDriveQueue / helAlertQueue waiting.
#include "queue_support.hpp"

#include <new>
#include <optional>
#include <string>

#include <helsim/ipc.hpp>
#include <helsim/testing.hpp>

using namespace helsim::queue_test;

// ---------------------------------------------------------------- many producers

TEST(QueueConcurrency, ManyThreadsWithTheirOwnDispatchers) {
	helsim::Machine machine{config(4)};
	constexpr int kThreads = 4;
	constexpr std::uintptr_t kNops = 4000;
	std::atomic<int> done{0};
	for (int t = 0; t < kThreads; ++t) {
		machine.spawn("producer" + std::to_string(t), [&, t](std::span<const HelHandle>) {
			uint8_t mask = static_cast<uint8_t>(1u << t);
			ASSERT_EQ(helSetAffinity(kHelThisThread, &mask, 1), kHelErrNone);
			helsim::Dispatcher d{{.cq_chunks = 2, .sq_chunks = 2, .chunk_size = 256}};
			std::uintptr_t next = 0;
			for (std::uintptr_t sent = 0; sent < kNops;) {
				std::uintptr_t batch = std::min<std::uintptr_t>(kNops - sent, 1 + (sent * 7) % 97);
				for (std::uintptr_t i = 0; i < batch; ++i)
					d.submit(kHelSubmitAsyncNop, sent++, std::span<const std::byte>{});
				while (next < sent) {
					auto e = d.wait();
					ASSERT_TRUE(e);
					ASSERT_EQ(e->context(), next++);
				}
			}
			int cpu = -1;
			helGetCurrentCpu(&cpu);
			EXPECT_EQ(cpu, t);
			++done;
		});
	}
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(done.load(), kThreads);
	EXPECT_EQ(report.counters.operations_completed, kThreads * kNops);
}

namespace {
constexpr std::uint32_t kPostSyscall = 300;

// args: queue, context, value. Posts a 16-byte payload {context, value}.
HelError post_into_queue(helsim::ext::Caller &caller, const HelWord *args, HelWord *) {
	const std::uint64_t payload[2] = {args[1], args[2]};
	return caller.complete(static_cast<HelHandle>(args[0]), args[1],
			std::as_bytes(std::span{payload}));
}

void many_producers_one_queue(const helsim::MachineConfig &machine_config, int producers,
		std::uint64_t per_producer, unsigned cq_chunks) {
	const unsigned cpus = machine_config.cpus;
	helsim::Machine machine{machine_config};
	helsim::ext::register_syscall(machine, kPostSyscall, "testPost", post_into_queue);
	std::atomic<std::uint64_t> received{0};
	std::atomic<int> producers_done{0};
	machine.spawn("consumer", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d{{.cq_chunks = cq_chunks, .sq_chunks = 0, .chunk_size = 256}};
		const HelHandle queue = d.queue();
		for (int p = 0; p < producers; ++p) {
			machine.spawn("producer" + std::to_string(p),
					[&, p](std::span<const HelHandle> h) {
						uint8_t mask = static_cast<uint8_t>(1u << (p % cpus));
						ASSERT_EQ(helSetAffinity(kHelThisThread, &mask, 1), kHelErrNone);
						for (std::uint64_t i = 0; i < per_producer; ++i) {
							HelWord context = (static_cast<HelWord>(p) << 32) | i;
							ASSERT_EQ(helSyscall3(kPostSyscall, static_cast<HelWord>(h[0]), context,
											  ~context),
									kHelErrNone);
							if (i % 64 == 0)
								helYield();
						}
						++producers_done;
					},
					{queue});
		}
		std::vector<std::uint64_t> next(static_cast<std::size_t>(producers), 0);
		const std::uint64_t total = per_producer * static_cast<std::uint64_t>(producers);
		for (std::uint64_t n = 0; n < total; ++n) {
			auto e = d.wait();
			ASSERT_TRUE(e) << "no alert was sent";
			auto p = static_cast<std::size_t>(e->context() >> 32);
			ASSERT_LT(p, next.size());
			ASSERT_EQ(e->context() & 0xFFFFFFFFu, next[p]) << "producer " << p << " out of order";
			++next[p];
			ASSERT_EQ(e->payload().size(), 16u);
			EXPECT_EQ(e->as<std::uint64_t>(0), e->context());
			EXPECT_EQ(e->as<std::uint64_t>(8), ~static_cast<std::uint64_t>(e->context()));
			++received;
		}
		for (std::uint64_t n : next)
			EXPECT_EQ(n, per_producer);
		EXPECT_FALSE(d.poll()) << "nothing beyond what was posted";
	});
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(producers_done.load(), producers);
	EXPECT_EQ(received.load(), per_producer * static_cast<std::uint64_t>(producers));
	EXPECT_EQ(report.counters.completions_posted, received.load());
}
} // namespace

TEST(QueueConcurrency, ManyProducersOneQueueTwoCpus) {
	many_producers_one_queue(config(2), 3, 5000, 2);
}

TEST(QueueConcurrency, ManyProducersOneQueueFourCpus) {
	many_producers_one_queue(config(4), 6, 2500, 4);
}

// Two chunks of eight completions: producers keep finding the CQ full while the consumer hands
// chunks back (link, kHelKernelNotifySupplyCqChunks, drive), in every interleaving the seeds
// give. A completion that waited and was not delivered by the drive that followed a supply
// would hang the consumer (the run would end stuck).
TEST(QueueConcurrency, ManyProducersOneQueueUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				many_producers_one_queue(helsim::testing::deterministic(seed), 3, 200, 2);
			},
			12);
}

// ---------------------------------------------------------------- supplying CQ chunks

namespace {
// Five nops into two chunks of two (24 bytes each in 64): the fifth waits in the kernel,
// chunk 1 is Full without Done.
void fill_and_overflow(RawQueue &rq) {
	rq.supply_all_cq();
	for (std::uintptr_t i = 0; i < 5; ++i)
		ASSERT_EQ(helSubmitAsyncNop(rq.handle, i), kHelErrNone);
	ASSERT_EQ(load(&rq.chunk(1)->progressFutex), 48 | kHelProgressFull);
}

// User space hands chunk `index` back behind `tail` but does not announce it.
void link_silently(RawQueue &rq, unsigned index, unsigned tail) {
	store(&rq.chunk(index)->next, 0);
	store(&rq.chunk(index)->progressFutex, 0);
	store(&rq.chunk(tail)->next, static_cast<int>(index) | kHelNextPresent);
}
} // namespace

TEST(QueueRing, AWaitingCompletionIsDeliveredByTheDriveThatAnnouncesAChunk) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{2, 0, 64};
	fill_and_overflow(rq);
	EXPECT_EQ(counters_now(machine).operations_completed, 4u);
	std::vector<std::uintptr_t> got = contexts(rq.chunk(0));
	append(got, rq.chunk(1));
	rq.recycle(0, 1); // link, set kHelKernelNotifySupplyCqChunks, drive
	EXPECT_EQ(load(&rq.q->kernelNotify) & kHelKernelNotifySupplyCqChunks, 0);
	EXPECT_EQ(load(&rq.chunk(1)->progressFutex), 48 | kHelProgressFull | kHelProgressDone);
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 24);
	append(got, rq.chunk(0));
	EXPECT_EQ(got, iota(5));
	EXPECT_EQ(counters_now(machine).operations_completed, 5u);
}

// As in thor: a chunk linked without kHelKernelNotifySupplyCqChunks is not looked at while
// completions wait, by a drive or by later completions (posted, or staged by an SQ pass), which
// wait behind them; the next announced drive delivers them all in order.
TEST(QueueRing, AChunkLinkedWithoutTheBitLeavesCompletionsWaitingUntilAnnounced) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{2, 2, 64};
	fill_and_overflow(rq);
	std::vector<std::uintptr_t> got = contexts(rq.chunk(0));
	append(got, rq.chunk(1));
	link_silently(rq, 0, 1);
	ASSERT_EQ(helDriveQueue(rq.handle, 0, 0), kHelErrNone);
	ASSERT_EQ(helSubmitAsyncNop(rq.handle, 5), kHelErrNone);
	rq.put_sq(2, 0, kHelSubmitAsyncNop, 6);
	rq.kick_sq();
	EXPECT_EQ(load(&rq.chunk(1)->progressFutex), 48 | kHelProgressFull) << "still not Done";
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 0) << "the linked chunk stays empty";
	auto c = counters_now(machine);
	EXPECT_EQ(c.operations_submitted, 7u);
	EXPECT_EQ(c.operations_completed, 4u) << "three completions wait inside the kernel";

	__atomic_fetch_or(&rq.q->kernelNotify, kHelKernelNotifySupplyCqChunks, __ATOMIC_RELEASE);
	ASSERT_EQ(helDriveQueue(rq.handle, 0, 0), kHelErrNone);
	EXPECT_EQ(load(&rq.chunk(1)->progressFutex), 48 | kHelProgressFull | kHelProgressDone);
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 48 | kHelProgressFull);
	append(got, rq.chunk(0));
	rq.recycle(1, 0);
	append(got, rq.chunk(1));
	EXPECT_EQ(got, iota(7));
	EXPECT_EQ(counters_now(machine).operations_completed, 7u);
}

// The run that never announces its chunk ends stuck, its report naming what waits.
TEST(QueueDrive, AnUnannouncedChunkLeavesTheRunStuckWithTheCompletionPending) {
	for (helsim::Mode mode : {helsim::Mode::threads, helsim::Mode::deterministic}) {
		SCOPED_TRACE(mode == helsim::Mode::threads ? "threads" : "deterministic");
		HelHandle queue = kHelNullHandle;
		helsim::MachineConfig c = config(2);
		c.mode = mode;
		helsim::Machine machine{c};
		machine.spawn("consumer", [&](std::span<const HelHandle>) {
			// Never destroyed: the thread stays blocked, and its queue ends with the machine.
			alignas(RawQueue) std::byte storage[sizeof(RawQueue)];
			auto *rq = new (storage) RawQueue{2, 0, 64};
			queue = rq->handle;
			fill_and_overflow(*rq);
			link_silently(*rq, 0, 1);
			__atomic_store_n(&rq->q->userNotify, 0, __ATOMIC_SEQ_CST);
			helDriveQueue(queue, kHelDriveWait, 0);
		});
		auto report = machine.run();
		ASSERT_TRUE(report.stuck) << report.to_string();
		EXPECT_EQ(report.operations_pending(), 1u);
		const auto *consumer = helsim::test::find_thread(report, "consumer");
		ASSERT_TRUE(consumer) << report.to_string();
		EXPECT_EQ(consumer->waits_on,
				"helDriveQueue on queue handle " + std::to_string(queue) +
						"; 1 completion wait for a CQ chunk announced with "
						"kHelKernelNotifySupplyCqChunks");
	}
}

// ---------------------------------------------------------------- helDriveQueue and alerts

TEST(QueueDrive, UnknownFlagsAreIllegalArgs) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{2, 2, 64};
	EXPECT_EQ(helDriveQueue(rq.handle, 2, 0), kHelErrIllegalArgs);
	EXPECT_EQ(helDriveQueue(rq.handle, kHelDriveWait | 2, 0), kHelErrIllegalArgs);
	EXPECT_EQ(helDriveQueue(rq.handle, 0x80000000u, 0), kHelErrIllegalArgs);
	EXPECT_EQ(helDriveQueue(rq.handle, 0, 0), kHelErrNone);
	EXPECT_EQ(helDriveQueue(999, 0, 0), kHelErrNoDescriptor);
	EXPECT_EQ(helAlertQueue(999), kHelErrNoDescriptor);
}

TEST(QueueDrive, WaitReturnsAtOnceWhenAnUnmaskedBitIsSet) {
	helsim::Machine machine;
	machine.spawn("body", [](std::span<const HelHandle>) {
		RawQueue rq{2, 0, 64};
		rq.supply_all_cq();
		ASSERT_EQ(helSubmitAsyncNop(rq.handle, 1), kHelErrNone);
		ASSERT_TRUE(load(&rq.q->userNotify) & kHelUserNotifyCqProgress);
		// If this blocked, nothing could wake it and run() would report the machine stuck.
		EXPECT_EQ(helDriveQueue(rq.handle, kHelDriveWait, 0), kHelErrNone);
		EXPECT_EQ(helDriveQueue(rq.handle, kHelDriveWait,
						  ~static_cast<uint32_t>(kHelUserNotifyCqProgress)),
				kHelErrNone);
	});
	expect_clean(machine.run());
}

TEST(QueueDrive, WaitBlocksUntilACompletionFromAnotherThread) {
	helsim::Machine machine;
	std::atomic<bool> waiting{false};
	machine.spawn("waiter", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d{{.cq_chunks = 2, .sq_chunks = 0, .chunk_size = 64}};
		machine.spawn("poster",
				[&](std::span<const HelHandle> h) {
					while (!waiting.load())
						helYield();
					EXPECT_EQ(helSubmitAsyncNop(h[0], 77), kHelErrNone);
				},
				{d.queue()});
		EXPECT_FALSE(d.poll());
		waiting = true;
		auto e = d.wait();
		ASSERT_TRUE(e);
		EXPECT_EQ(e->context(), 77u);
	});
	expect_clean(machine.run());
}

TEST(QueueDrive, AlertFromAnotherThreadWakesTheWaiter) {
	helsim::Machine machine;
	std::atomic<bool> waiting{false};
	machine.spawn("waiter", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d{{.cq_chunks = 2, .sq_chunks = 2, .chunk_size = 64}};
		machine.spawn("alerter",
				[&](std::span<const HelHandle> h) {
					while (!waiting.load())
						helYield();
					EXPECT_EQ(helAlertQueue(h[0]), kHelErrNone);
				},
				{d.queue()});
		waiting = true;
		EXPECT_FALSE(d.wait()) << "an alert, not an element";
		// The queue still works afterwards.
		d.submit(kHelSubmitAsyncNop, 5, std::span<const std::byte>{});
		auto e = d.wait();
		ASSERT_TRUE(e);
		EXPECT_EQ(e->context(), 5u);
	});
	expect_clean(machine.run());
}

TEST(QueueDrive, MaskHidingCqProgressIgnoresCompletionsButNotAlerts) {
	helsim::Machine machine;
	std::atomic<bool> waiting{false};
	std::atomic<bool> alerted{false};
	machine.spawn("waiter", [&](std::span<const HelHandle>) {
		RawQueue rq{4, 0, 256};
		rq.supply_all_cq();
		machine.spawn("poster",
				[&](std::span<const HelHandle> h) {
					while (!waiting.load())
						helYield();
					for (std::uintptr_t i = 0; i < 8; ++i) {
						EXPECT_EQ(helSubmitAsyncNop(h[0], i), kHelErrNone);
						helYield();
					}
					alerted = true;
					EXPECT_EQ(helAlertQueue(h[0]), kHelErrNone);
				},
				{rq.handle});
		__atomic_store_n(&rq.q->userNotify, 0, __ATOMIC_SEQ_CST);
		waiting = true;
		ASSERT_EQ(helDriveQueue(rq.handle, kHelDriveWait,
						  ~static_cast<uint32_t>(kHelUserNotifyAlert)),
				kHelErrNone);
		EXPECT_TRUE(alerted.load()) << "woken before the alert";
		int bits = load(&rq.q->userNotify);
		EXPECT_TRUE(bits & kHelUserNotifyAlert);
		EXPECT_EQ(read_chunk(rq.chunk(0)).size(), 8u) << "completions posted before the alert";
	});
	expect_clean(machine.run());
}

// ---------------------------------------------------------------- a consumer that parks

namespace {

// A submission can park the thread that consumes the SQ: a send of up to 4096 bytes is copied
// when it is submitted, and from frontal memory that copy waits for the pager. A second thread
// driving the same queue meanwhile must not wait for that consumer: it used to spin on the SQ
// lock, which in deterministic mode (and on the pager's CPU in threads mode) kept the pager
// from ever running. Its drive returns; the parked consumer does the pass once served.
void second_driver_while_the_consumer_waits_for_the_pager() {
	namespace ipc = helsim::ipc;
	using helsim::test::set_and_wake;
	using helsim::test::start_thread;
	using helsim::test::wait_for;
	HelHandle backing, frontal;
	ASSERT_EQ(helCreateManagedMemory(kPage, 0, &backing, &frontal), kHelErrNone);
	void *front = nullptr;
	ASSERT_EQ(helMapMemory(frontal, kHelNullHandle, nullptr, 0, kPage, kRW, &front), kHelErrNone);
	HelHandle lanes[2];
	ASSERT_EQ(helCreateStream(&lanes[0], &lanes[1], 0), kHelErrNone);
	struct {
		int requested = 0, drove = 0, served = 0;
	} shared;
	helsim::Dispatcher d; // the queue both threads drive
	start_thread([&] {    // the pager
		helsim::Dispatcher pager;
		auto request =
				helsim::test::sq_call(pager, kHelSubmitManageMemory, HelSqManageMemory{backing})
						.as<HelManageResult>();
		set_and_wake(&shared.requested, 1);
		EXPECT_TRUE(wait_for(&shared.drove, 1));
		EXPECT_EQ(request.type, kHelManageInitialize);
		void *back = nullptr;
		ASSERT_EQ(helMapMemory(backing, kHelNullHandle, nullptr, 0, kPage, kRW, &back),
				kHelErrNone);
		for (std::size_t at = 0; at < kPage; ++at) // plain stores: see managed_memory_test.cpp
			static_cast<volatile char *>(back)[at] = 'p';
		EXPECT_EQ(helUpdateMemory(backing, kHelManageInitialize, 0, kPage), kHelErrNone);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, back, kPage), kHelErrNone);
		set_and_wake(&shared.served, 1);
	});
	start_thread([&] { // the second driver
		EXPECT_TRUE(wait_for(&shared.requested, 1));
		EXPECT_EQ(helDriveQueue(d.queue(), 0, 0), kHelErrNone);
		set_and_wake(&shared.drove, 1);
	});
	char received[16] = {};
	ipc::submit(d, lanes[0], 1, ipc::send_buffer(front, sizeof received));
	ipc::submit(d, lanes[1], 2, ipc::recv_buffer(received, sizeof received));
	d.flush(); // parks in the send's copy until the pager has served
	std::optional<helsim::Element> sent, got;
	while (!sent || !got) {
		auto e = d.wait();
		ASSERT_TRUE(e);
		(e->context() == 1 ? sent : got) = std::move(*e);
	}
	EXPECT_EQ(sent->error(), kHelErrNone);
	ASSERT_EQ(got->error(), kHelErrNone);
	EXPECT_EQ(got->as<HelLengthResult>().length, sizeof received);
	EXPECT_EQ(std::string(received, sizeof received), std::string(sizeof received, 'p'));
	EXPECT_TRUE(wait_for(&shared.served, 1));
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, front, kPage), kHelErrNone);
	for (HelHandle h : {backing, frontal, lanes[0], lanes[1]})
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
}

} // namespace

TEST(QueueDrive, ASecondDriverDoesNotWaitForAConsumerParkedOnAPager) {
	helsim::MachineConfig c = config(2);
	helsim::test::run_clean(c, second_driver_while_the_consumer_waits_for_the_pager);
}

TEST(QueueDrive, ASecondDriverDoesNotWaitForAConsumerParkedOnAPagerUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				helsim::test::run_clean(helsim::testing::deterministic(seed),
						second_driver_while_the_consumer_waits_for_the_pager);
			},
			12);
}

// ---------------------------------------------------------------- wakes after the CQ lock

namespace {

// Completions posted from another CPU, one at a time, each while the queue's owner is on its
// way into helDriveQueue(kHelDriveWait) or already in it. The producer wakes the waiter after
// it has released the CQ lock, so the waiter can arrive anywhere between the write and the
// wake; every round must still end. A lost wake-up leaves both threads blocked (the producer
// waits for the acknowledgement), which the machine reports as a deadlock.
void completions_one_at_a_time_from_another_thread(int rounds) {
	using helsim::test::set_and_wake;
	using helsim::test::start_thread;
	using helsim::test::wait_for;
	helsim::Dispatcher d{{.cq_chunks = 4, .sq_chunks = 0, .chunk_size = 256}};
	int acknowledged = -1;
	int producer_done = 0;
	// The producer uses this frame's words until it says it is done, so this frame outlives
	// it: it may still be returning from its last submission when the last completion arrives.
	start_thread([&acknowledged, &producer_done, rounds, queue = d.queue()] {
		for (int i = 0; i < rounds; ++i) {
			EXPECT_TRUE(wait_for(&acknowledged, i - 1));
			EXPECT_EQ(helSubmitAsyncNop(queue, static_cast<std::uintptr_t>(i)), kHelErrNone);
		}
		set_and_wake(&producer_done, 1);
	});
	for (int i = 0; i < rounds; ++i) {
		auto e = d.wait();
		ASSERT_TRUE(e);
		EXPECT_EQ(e->context(), static_cast<std::uintptr_t>(i));
		set_and_wake(&acknowledged, i);
	}
	EXPECT_TRUE(wait_for(&producer_done, 1));
}

} // namespace

TEST(QueueDrive, NoWakeIsLostWhenTheWaiterArrivesBetweenTheWriteAndTheWake) {
	helsim::test::run_clean(config(2), [] { completions_one_at_a_time_from_another_thread(5000); });
}

TEST(QueueDrive, NoWakeIsLostWhenTheWaiterArrivesBetweenTheWriteAndTheWakeUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				helsim::test::run_clean(helsim::testing::deterministic(seed),
						[] { completions_one_at_a_time_from_another_thread(200); });
			},
			12);
}
