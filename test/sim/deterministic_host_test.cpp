// Tests of deterministic mode (sim/deterministic_host.cpp): every fiber runs inside
// Machine::run() on the calling thread, a seeded PRNG picks the CPU at every scheduling
// point, time is virtual, and the same seed gives the same trace hash and the same order.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

namespace ipc = helsim::ipc;

using helsim::ThreadOutcome;

constexpr std::uint64_t kSecond = 1'000'000'000;

helsim::MachineConfig deterministic(std::uint64_t seed, unsigned cpus = 2) {
	helsim::MachineConfig c;
	c.cpus = cpus;
	c.mode = helsim::Mode::deterministic;
	c.seed = seed;
	return c;
}

std::uint64_t clock_now() {
	std::uint64_t t = 0;
	EXPECT_EQ(helGetClock(&t), kHelErrNone);
	return t;
}

struct WorkloadResult {
	helsim::RunReport report;
	std::vector<std::string> order;
};

// Yielders, a futex ping-pong, async nops on a queue and an AwaitClock, on 2 CPUs. Every
// step appends to `order` (one host thread runs everything, so no lock is needed).
WorkloadResult run_workload(std::uint64_t seed) {
	WorkloadResult result;
	auto &order = result.order;
	int ball = 0;
	{
		helsim::Machine machine{deterministic(seed)};
		for (int id = 0; id < 2; ++id) {
			std::string name = "yielder" + std::to_string(id);
			machine.spawn(name, [&order, name](std::span<const HelHandle>) {
				for (int i = 0; i < 5; ++i) {
					int cpu = -1;
					ASSERT_EQ(helGetCurrentCpu(&cpu), kHelErrNone);
					order.push_back(name + " " + std::to_string(i) + " cpu" + std::to_string(cpu));
					ASSERT_EQ(helYield(), kHelErrNone);
				}
			});
		}
		machine.spawn("ping", [&](std::span<const HelHandle>) {
			for (int i = 0; i < 5; ++i) {
				ASSERT_TRUE(wait_for(&ball, 0));
				order.push_back("ping " + std::to_string(i));
				store(&ball, 1);
				ASSERT_EQ(helFutexWake(&ball, 1), kHelErrNone);
			}
		});
		machine.spawn("pong", [&](std::span<const HelHandle>) {
			for (int i = 0; i < 5; ++i) {
				ASSERT_TRUE(wait_for(&ball, 1));
				order.push_back("pong " + std::to_string(i));
				store(&ball, 0);
				ASSERT_EQ(helFutexWake(&ball, 1), kHelErrNone);
			}
		});
		machine.spawn("nopper", [&](std::span<const HelHandle>) {
			helsim::Dispatcher dispatcher;
			for (std::uintptr_t i = 1; i <= 3; ++i)
				dispatcher.submit(kHelSubmitAsyncNop, i, std::span<const std::byte>{});
			for (int i = 0; i < 3; ++i) {
				auto element = dispatcher.wait();
				ASSERT_TRUE(element.has_value());
				order.push_back("nop " + std::to_string(element->context()));
			}
		});
		machine.spawn("sleeper", [&](std::span<const HelHandle>) {
			helsim::Dispatcher dispatcher;
			std::uint64_t deadline = clock_now() + 10'000;
			dispatcher.submit(kHelSubmitAwaitClock, 7, HelSqAwaitClock{deadline, 0});
			auto element = dispatcher.wait();
			ASSERT_TRUE(element.has_value());
			EXPECT_EQ(element->context(), 7u);
			EXPECT_GE(clock_now(), deadline);
			order.push_back("slept");
		});
		result.report = machine.run();
	}
	return result;
}

} // namespace

TEST(Deterministic, SameSeedGivesSameTraceAndOrder) {
	WorkloadResult a = run_workload(42);
	WorkloadResult b = run_workload(42);
	expect_clean(a.report);
	expect_clean(b.report);
	EXPECT_EQ(a.report.threads.size(), 6u) << a.report.to_string();
	EXPECT_NE(a.report.trace_hash, 0u);
	EXPECT_EQ(a.report.trace_hash, b.report.trace_hash);
	// In the XML output, to compare across processes and builds.
	RecordProperty("trace_hash", std::to_string(a.report.trace_hash));
	EXPECT_EQ(a.order, b.order);
	EXPECT_EQ(a.order.size(), 10u + 10u + 3u + 1u);
}

TEST(Deterministic, DifferentSeedsGiveDifferentTraces) {
	std::set<std::uint64_t> hashes;
	std::set<std::vector<std::string>> orders;
	for (std::uint64_t seed = 1; seed <= 10; ++seed) {
		WorkloadResult r = run_workload(seed);
		expect_clean(r.report);
		hashes.insert(r.report.trace_hash);
		orders.insert(r.order);
	}
	EXPECT_GE(hashes.size(), 2u);
	EXPECT_GE(orders.size(), 2u);
}

TEST(Deterministic, VirtualTimeJumpsOverIdle) {
	helsim::Machine machine{deterministic(3)};
	std::uint64_t before = 0, deadline = 0, after = 0;
	machine.spawn("sleeper", [&](std::span<const HelHandle>) {
		helsim::Dispatcher dispatcher;
		before = clock_now();
		deadline = before + kSecond;
		dispatcher.submit(kHelSubmitAwaitClock, 1, HelSqAwaitClock{deadline, 0});
		auto element = dispatcher.wait();
		ASSERT_TRUE(element.has_value());
		after = clock_now();
	});
	auto start = std::chrono::steady_clock::now();
	auto report = machine.run();
	auto wall = std::chrono::steady_clock::now() - start;
	expect_clean(report);
	EXPECT_GE(after, deadline);
	EXPECT_LT(after, deadline + kSecond / 1000) << "time jumps to the deadline, not past it";
	EXPECT_LT(wall, std::chrono::milliseconds{200}) << "a virtual second took real time";
}

TEST(Deterministic, FutexWaitWithDeadlineTimesOutInVirtualTime) {
	helsim::Machine machine{deterministic(5)};
	int word = 0;
	HelError result = kHelErrNone;
	std::uint64_t deadline = 0, after = 0;
	machine.spawn("waiter", [&](std::span<const HelHandle>) {
		deadline = clock_now() + 5 * kSecond;
		result = helFutexWait(&word, 0, static_cast<std::int64_t>(deadline));
		after = clock_now();
	});
	auto start = std::chrono::steady_clock::now();
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(result, kHelErrTimeout);
	EXPECT_GE(after, deadline);
	EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds{200});
}

TEST(Deterministic, StuckMachineIsReported) {
	int never_set = 0;
	helsim::Machine machine{deterministic(9)};
	machine.spawn("waiter",
			[&](std::span<const HelHandle>) { helFutexWait(&never_set, 0, kHelWaitInfinite); });
	machine.spawn("finisher", [](std::span<const HelHandle>) { helYield(); });
	auto report = machine.run();
	EXPECT_TRUE(report.stuck) << report.to_string();
	const auto *waiter = find_thread(report, "waiter");
	ASSERT_NE(waiter, nullptr) << report.to_string();
	EXPECT_EQ(waiter->outcome, ThreadOutcome::blocked);
	EXPECT_NE(waiter->waits_on.find("futex"), std::string::npos) << waiter->waits_on;
	ASSERT_NE(find_thread(report, "finisher"), nullptr);
	EXPECT_EQ(find_thread(report, "finisher")->outcome, ThreadOutcome::returned);
}

TEST(Deterministic, OutcomesAreReportedAndACleanRunLeaksNothing) {
	helsim::Machine machine{{.mode = helsim::Mode::deterministic,
			.seed = 11,
			.log_sink = [](const helsim::LogRecord &) {}}};
	machine.spawn("returns", [](std::span<const HelHandle>) {
		HelHandle u, q;
		HelQueueParameters params{0, 2, 1024, 0};
		ASSERT_EQ(helCreateUniverse(&u), kHelErrNone);
		ASSERT_EQ(helCreateQueue(&params, &q), kHelErrNone);
		(void)u;
		(void)q; // u and q go with the thread's universe
	});
	machine.spawn("panics", [](std::span<const HelHandle>) { helPanic("broken", 6); });
	machine.spawn("throws",
			[](std::span<const HelHandle>) { throw std::runtime_error("escaped exception"); });
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	EXPECT_EQ(report.operations_pending(), 0u);
	ASSERT_EQ(report.threads.size(), 3u) << report.to_string();
	EXPECT_EQ(find_thread(report, "returns")->outcome, ThreadOutcome::returned);
	EXPECT_EQ(find_thread(report, "panics")->outcome, ThreadOutcome::panicked);
	EXPECT_EQ(find_thread(report, "panics")->message, "broken");
	EXPECT_EQ(find_thread(report, "throws")->outcome, ThreadOutcome::threw);
	EXPECT_EQ(find_thread(report, "throws")->message, "escaped exception");
}

TEST(Deterministic, FibersRunOnlyInsideRun) {
	helsim::Machine machine{deterministic(1)};
	bool ran = false;
	machine.spawn("body", [&](std::span<const HelHandle>) { ran = true; });
	EXPECT_FALSE(ran) << "a fiber ran before run()";
	auto report = machine.run();
	expect_clean(report);
	EXPECT_TRUE(ran);
	// A second run with nothing to do returns at once.
	report = machine.run();
	EXPECT_FALSE(report.stuck);
}

// An attached host thread takes part in the seeded schedule: while it blocks, the fibers run
// on its host thread; it continues when the seed picks it after its wake-up.
// With `preempt_ppm`, the attached thread's syscalls are decisions too: a fiber may run
// between two of them. 0 marks where the attached thread resumed, -1 where it starts waiting.
std::uint64_t attached_round_trip(std::uint64_t seed, std::vector<int> &order,
		std::uint32_t preempt_ppm = 0) {
	auto config = deterministic(seed);
	config.preempt_at_syscall_ppm = preempt_ppm;
	config.preempt_at_wake_ppm = preempt_ppm;
	helsim::Machine machine{config};
	static int word;
	static std::vector<int> *log;
	word = 0;
	log = &order;
	{
		auto attached = machine.attach();
		for (int i = 1; i <= 3; ++i) {
			HelHandle thread = kHelNullHandle;
			auto entry = +[](std::uintptr_t n) {
				log->push_back(static_cast<int>(n));
				__atomic_fetch_add(&word, 1, __ATOMIC_SEQ_CST);
				(void)helFutexWake(&word, 1);
			};
			EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
							  reinterpret_cast<void *>(entry), reinterpret_cast<void *>(i), 0,
							  &thread),
					kHelErrNone);
		}
		if (preempt_ppm == 0) {
			EXPECT_TRUE(order.empty()) << "fibers run only while the attached thread waits";
		}
		order.push_back(-1);
		for (int v = __atomic_load_n(&word, __ATOMIC_SEQ_CST); v != 3;
				v = __atomic_load_n(&word, __ATOMIC_SEQ_CST)) {
			HelError e = helFutexWait(&word, v, kHelWaitInfinite);
			EXPECT_TRUE(e == kHelErrNone || e == kHelErrFutexRace) << e;
		}
		order.push_back(0); // the attached thread resumed
	}
	auto report = machine.run();
	expect_clean(report);
	return report.trace_hash;
}

TEST(Deterministic, AttachedThreadsTakePartInTheSeededSchedule) {
	std::vector<int> first, again;
	std::uint64_t hash = attached_round_trip(7, first);
	EXPECT_EQ(attached_round_trip(7, again), hash);
	EXPECT_EQ(first, again) << "the same seed gives the same order";
	ASSERT_EQ(first.size(), 5u);
	EXPECT_EQ(first.front(), -1);
	EXPECT_EQ(first.back(), 0);
	std::vector<std::vector<int>> orders;
	for (std::uint64_t seed = 0; seed < 20; ++seed) {
		std::vector<int> order;
		attached_round_trip(seed, order);
		orders.push_back(order);
	}
	bool differ = false;
	for (auto &order : orders)
		differ |= order != orders.front();
	EXPECT_TRUE(differ) << "other seeds give other orders";
}

// The attached thread's syscalls (here: creating the fibers) are decisions like a fiber's:
// under some seeds a fiber runs before the attached thread reaches its wait.
TEST(Deterministic, AttachedThreadsArePreemptedAtSyscalls) {
	bool preempted = false;
	for (std::uint64_t seed = 0; seed < 32 && !preempted; ++seed) {
		std::vector<int> order;
		attached_round_trip(seed, order, 500'000);
		ASSERT_EQ(order.size(), 5u);
		EXPECT_EQ(order.back(), 0);
		preempted = order.front() != -1;
		if (preempted) {
			std::vector<int> again;
			attached_round_trip(seed, again, 500'000);
			EXPECT_EQ(order, again) << "seed " << seed << " replays";
		}
	}
	EXPECT_TRUE(preempted) << "some seed lets a fiber run between the attached thread's syscalls";
}

TEST(Deterministic, AnAttachedThreadThatCanNeverBeWokenGetsAnError) {
	helsim::Machine machine{deterministic(1)};
	auto attached = machine.attach();
	int word = 0;
	try {
		(void)helFutexWait(&word, 0, kHelWaitInfinite);
		ADD_FAILURE() << "the wait returned";
	} catch (const std::runtime_error &e) {
		EXPECT_NE(std::string{e.what()}.find("stuck"), std::string::npos) << e.what();
	}
	// A timed wait is woken by virtual time.
	std::uint64_t now = 0;
	ASSERT_EQ(helGetClock(&now), kHelErrNone);
	EXPECT_EQ(helFutexWait(&word, 0, static_cast<std::int64_t>(now + 1'000'000)), kHelErrTimeout);
	std::uint64_t later = 0;
	ASSERT_EQ(helGetClock(&later), kHelErrNone);
	EXPECT_GE(later, now + 1'000'000);
}

TEST(Deterministic, ThreadsModeReportsNoTraceHash) {
	helsim::Machine machine;
	machine.spawn("body", [](std::span<const HelHandle>) { helYield(); });
	auto report = machine.run();
	EXPECT_EQ(report.trace_hash, 0u);
}

namespace {

constexpr int kEchoClients = 2;
constexpr int kEchoRequests = 20;

void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

void echo_server(HelHandle lane) {
	helsim::Dispatcher dispatcher;
	for (int served = 0; served < kEchoClients * kEchoRequests; ++served) {
		auto request = ipc::exchange_sync(dispatcher, lane, ipc::accept(ipc::recv_inline()));
		auto &[conversation, text] = request.results;
		check(conversation.error, "accept");
		check(text.error, "receive request");
		std::string reply = "echo " + std::string{text.text()};
		auto sent = ipc::exchange_sync(dispatcher, conversation.handle, ipc::send_buffer(reply));
		check(std::get<0>(sent.results).error, "send reply");
		check(helCloseDescriptor(kHelThisUniverse, conversation.handle), "close conversation");
	}
}

int echo_client(int id, HelHandle lane) {
	helsim::Dispatcher dispatcher;
	int good = 0;
	for (int i = 0; i < kEchoRequests; ++i) {
		std::string request = "client " + std::to_string(id) + " request " + std::to_string(i);
		auto exchange = ipc::exchange_sync(dispatcher, lane,
				ipc::offer(ipc::send_buffer(request), ipc::recv_inline()));
		auto &[offered, sent, reply] = exchange.results;
		check(offered.error, "offer");
		check(sent.error, "send request");
		check(reply.error, "receive reply");
		if (reply.text() != "echo " + request)
			throw std::runtime_error("wrong reply: " + std::string{reply.text()});
		++good;
	}
	return good;
}

} // namespace

TEST(Deterministic, StreamEchoUnderTwentySeeds) {
	std::set<std::uint64_t> hashes;
	for (std::uint64_t seed = 100; seed < 120; ++seed) {
		int good[kEchoClients] = {};
		helsim::Machine machine{deterministic(seed)};
		// No attached threads in deterministic mode: a setup fiber creates the stream and
		// spawns the parties with its lanes.
		machine.spawn("setup", [&](std::span<const HelHandle>) {
			HelHandle server_lane, client_lane;
			check(helCreateStream(&server_lane, &client_lane, 0), "helCreateStream");
			machine.spawn("server", [](std::span<const HelHandle> h) { echo_server(h[0]); },
					{server_lane});
			for (int id = 0; id < kEchoClients; ++id)
				machine.spawn("client" + std::to_string(id),
						[id, &good](
								std::span<const HelHandle> h) { good[id] = echo_client(id, h[0]); },
						{client_lane});
			check(helCloseDescriptor(kHelThisUniverse, server_lane), "close");
			check(helCloseDescriptor(kHelThisUniverse, client_lane), "close");
		});
		auto report = machine.run();
		SCOPED_TRACE("seed " + std::to_string(seed));
		expect_clean(report);
		EXPECT_EQ(report.threads.size(), 1u + 1u + kEchoClients) << report.to_string();
		for (int id = 0; id < kEchoClients; ++id)
			EXPECT_EQ(good[id], kEchoRequests) << "client " << id;
		hashes.insert(report.trace_hash);
	}
	EXPECT_GE(hashes.size(), 2u);
}

namespace {
// Two fibers increment a shared counter without atomicity, with a syscall between the load
// and the store: only a scheduling decision at that syscall can interleave them.
int lost_update_total(std::uint64_t seed, std::uint32_t preempt_ppm) {
	auto config = deterministic(seed);
	config.preempt_at_syscall_ppm = preempt_ppm;
	helsim::Machine machine{config};
	static int counter;
	counter = 0;
	for (int i = 0; i < 2; ++i)
		machine.spawn("incrementer", [](std::span<const HelHandle>) {
			int seen = __atomic_load_n(&counter, __ATOMIC_RELAXED);
			(void)helNop();
			__atomic_store_n(&counter, seen + 1, __ATOMIC_RELAXED);
		});
	expect_clean(machine.run());
	return counter;
}
} // namespace

TEST(Deterministic, SyscallEntriesAreSchedulingDecisions) {
	bool lost = false;
	for (std::uint64_t seed = 0; seed < 64; ++seed) {
		EXPECT_EQ(lost_update_total(seed, 0), 2) << "without decisions at syscalls, seed " << seed;
		lost |= lost_update_total(seed, 500'000) == 1;
	}
	EXPECT_TRUE(lost) << "some seed preempts between the load and the store";
	EXPECT_EQ(lost_update_total(5, 500'000), lost_update_total(5, 500'000)) << "and replays";
}

// The trace hash depends on nothing of the process (no addresses, no host time): a freshly
// started process computes the same hash for the same seed.
TEST(Deterministic, EqualSeedsGiveEqualHashesAcrossProcesses) {
	GTEST_FLAG_SET(death_test_style, "threadsafe"); // the child is a new process (re-exec)
	std::uint64_t here = run_workload(11).report.trace_hash;
	ASSERT_NE(here, 0u);
	EXPECT_EXIT(
			{
				std::fprintf(stderr, "hash=%llu\n",
						static_cast<unsigned long long>(run_workload(11).report.trace_hash));
				std::_Exit(0);
			},
			::testing::ExitedWithCode(0), "hash=" + std::to_string(here) + "\n");
}

namespace {
// One CPU, so that only the decision under test can change the order. "sleeper" runs first
// and waits on a futex; "waker" wakes it, then logs. The wake-up lets the woken thread run
// first when the seed says so at the waker's syscall exit.
std::vector<std::string> wake_order(std::uint64_t seed, std::uint32_t wake_ppm) {
	auto config = deterministic(seed, 1);
	config.preempt_at_syscall_ppm = 0;
	config.preempt_at_wake_ppm = wake_ppm;
	helsim::Machine machine{config};
	static int word;
	static std::vector<std::string> *log;
	std::vector<std::string> order;
	word = 0;
	log = &order;
	machine.spawn("sleeper", [](std::span<const HelHandle>) {
		while (load(&word) == 0)
			(void)helFutexWait(&word, 0, kHelWaitInfinite);
		log->push_back("sleeper");
	});
	machine.spawn("waker", [](std::span<const HelHandle>) {
		store(&word, 1);
		(void)helFutexWake(&word, 1);
		log->push_back("waker");
	});
	expect_clean(machine.run());
	return order;
}

// "submitter" posts a completion nobody waits for; "bystander" is runnable behind it. The
// completion lets another thread run first when the seed says so.
std::vector<std::string> completion_order(std::uint64_t seed, std::uint32_t wake_ppm) {
	auto config = deterministic(seed, 1);
	config.preempt_at_syscall_ppm = 0;
	config.preempt_at_wake_ppm = wake_ppm;
	helsim::Machine machine{config};
	static std::vector<std::string> *log;
	std::vector<std::string> order;
	log = &order;
	machine.spawn("submitter", [](std::span<const HelHandle>) {
		HelHandle queue = make_queue();
		EXPECT_EQ(helSubmitAsyncNop(queue, 1), kHelErrNone);
		log->push_back("submitter");
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, queue), kHelErrNone);
	});
	machine.spawn("bystander", [](std::span<const HelHandle>) { log->push_back("bystander"); });
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	return order;
}

using Order = std::vector<std::string>;
} // namespace

TEST(Deterministic, WakeUpsAreSchedulingDecisions) {
	for (std::uint64_t seed = 0; seed < 8; ++seed) {
		EXPECT_EQ(wake_order(seed, 0), (Order{"waker", "sleeper"})) << "seed " << seed;
		EXPECT_EQ(wake_order(seed, 1'000'000), (Order{"sleeper", "waker"})) << "seed " << seed;
	}
	std::set<Order> seen;
	for (std::uint64_t seed = 0; seed < 32; ++seed)
		seen.insert(wake_order(seed, 500'000));
	EXPECT_EQ(seen.size(), 2u) << "at one in two, seeds differ in who runs after the wake-up";
}

TEST(Deterministic, CompletionsAreSchedulingDecisions) {
	for (std::uint64_t seed = 0; seed < 8; ++seed) {
		EXPECT_EQ(completion_order(seed, 0), (Order{"submitter", "bystander"})) << seed;
		EXPECT_EQ(completion_order(seed, 1'000'000), (Order{"bystander", "submitter"})) << seed;
	}
}

TEST(Deterministic, DecisionRatesAreCheckedPartsPerMillion) {
	auto config = deterministic(1);
	config.preempt_at_wake_ppm = 1'000'001;
	EXPECT_THROW(helsim::Machine{config}, std::invalid_argument);
	config.preempt_at_wake_ppm = 0;
	config.preempt_at_syscall_ppm = 2'000'000;
	EXPECT_THROW(helsim::Machine{config}, std::invalid_argument);
}
