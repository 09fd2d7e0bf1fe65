// The C++ host API: MachineConfig validation, spawn, attach, run and its report, leaks,
// panics, unattached host threads, and the log sink.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

using helsim::ThreadOutcome;

std::string config_error(helsim::MachineConfig config) {
	try {
		helsim::Machine machine{std::move(config)};
	} catch (const std::invalid_argument &e) {
		return e.what();
	}
	return "<no exception>";
}

TEST(Machine, ConfigValidationThrowsWithAClearMessage) {
	for (unsigned cpus : {0u, 65u, 1000u}) {
		std::string message = config_error({.cpus = cpus, .log_sink = {}});
		EXPECT_NE(message.find("cpus"), std::string::npos) << message;
		EXPECT_NE(message.find(std::to_string(cpus)), std::string::npos) << message;
	}
	for (std::size_t bytes : {std::size_t{0}, std::size_t{4096}, std::size_t{60} << 10}) {
		std::string memory = config_error({.physical_memory = bytes, .log_sink = {}});
		EXPECT_NE(memory.find("physical_memory"), std::string::npos) << memory;
		std::string stack = config_error({.stack_size = bytes / 8, .log_sink = {}});
		EXPECT_NE(stack.find("stack_size"), std::string::npos) << stack;
	}
	helsim::Machine largest{{.cpus = 64, .log_sink = {}}};
	EXPECT_EQ(largest.config().cpus, 64u);
}

TEST(Machine, SmallestValidConfigWorks) {
	helsim::Machine machine{{.cpus = 1,
			.seed = 7,
			.physical_memory = std::size_t{64} << 10,
			.stack_size = std::size_t{16} << 10,
			.log_sink = {}}};
	EXPECT_EQ(machine.config().cpus, 1u);
	EXPECT_EQ(machine.config().seed, 7u);
	std::atomic<int> cpu{-1};
	machine.spawn("only", [&](std::span<const HelHandle>) {
		int c = -1;
		if (helGetCurrentCpu(&c) == kHelErrNone)
			cpu = c;
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(cpu.load(), 0);
}

TEST(Machine, SpawnPassesHandlesWithTheirRights) {
	helsim::Machine machine;
	struct Seen {
		std::vector<HelHandle> handles;
		std::vector<helsim::ext::DescriptorInfo> infos;
		HelHandle copy_in_universe = -1;
	} seen;
	HelHandle universe = kHelNullHandle;
	{
		auto attached = machine.attach({.name = "parent"});
		HelHandle token = make_token();
		HelQueueParameters params{0, 2, 1024, 0};
		HelHandle queue = kHelNullHandle, narrow = kHelNullHandle;
		ASSERT_EQ(helCreateQueue(&params, &queue), kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(queue, kHelThisUniverse, kHelTransferDescriptorOut,
						  kHelRightRead | kHelRightWait, 0, &narrow),
				kHelErrNone);
		ASSERT_EQ(helCreateUniverse(&universe), kHelErrNone);
		machine.spawn("child",
				[&](std::span<const HelHandle> handles) {
					seen.handles.assign(handles.begin(), handles.end());
					for (HelHandle h : handles)
						seen.infos.push_back(info_of(h));
					// The universe handle carries Grant: the child can put a token into it.
					HelHandle t = make_token();
					helTransferDescriptor(t, handles[2], kHelTransferDescriptorOut, kHelRightsMax,
							0, &seen.copy_in_universe);
				},
				{token, narrow, universe});
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(seen.handles, (std::vector<HelHandle>{1, 2, 3})) << "a fresh universe, in order";
	ASSERT_EQ(seen.infos.size(), 3u);
	EXPECT_EQ(seen.infos[0].type, kHelDescToken);
	EXPECT_EQ(seen.infos[0].rights, kHelRightNull);
	EXPECT_EQ(seen.infos[1].type, kHelDescQueue);
	EXPECT_EQ(seen.infos[1].rights, std::uint32_t{kHelRightRead | kHelRightWait});
	EXPECT_EQ(seen.infos[2].type, kHelDescUniverse);
	EXPECT_EQ(seen.infos[2].rights,
			std::uint32_t{kHelRightGrant | kHelRightTake | kHelRightAssign});
	EXPECT_EQ(seen.copy_in_universe, 1);
	auto attached = machine.attach({.name = "check", .universe = universe});
	EXPECT_EQ(info_of(seen.copy_in_universe).type, kHelDescToken);
}

TEST(Machine, SpawnFromUnattachedThreadUsesRootUniverse) {
	helsim::Machine machine;
	HelHandle token;
	{
		auto attached = machine.attach();
		token = make_token();
	}
	std::atomic<int> type{-1};
	machine.spawn("child", [&](std::span<const HelHandle> h) { type = info_of(h[0]).type; },
			{token});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(type.load(), kHelDescToken);
}

TEST(Machine, SpawnFromFiberUsesTheFibersUniverse) {
	helsim::Machine machine;
	std::atomic<int> grandchild_type{-1};
	std::atomic<bool> threw_for_foreign{false};
	machine.spawn("parent", [&](std::span<const HelHandle>) {
		HelHandle u = kHelNullHandle;
		helCreateUniverse(&u);
		machine.spawn("grandchild",
				[&](std::span<const HelHandle> h) { grandchild_type = info_of(h[0]).type; }, {u});
		try {
			machine.spawn("never", [](std::span<const HelHandle>) {}, {u + 50});
		} catch (const std::invalid_argument &) {
			threw_for_foreign = true;
		}
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(grandchild_type.load(), kHelDescUniverse);
	EXPECT_TRUE(threw_for_foreign.load());
	EXPECT_EQ(find_thread(report, "never"), nullptr);
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

TEST(Machine, SpawnWithBadHandleThrowsAndStartsNothing) {
	helsim::Machine machine;
	HelHandle closed;
	HelHandle token;
	{
		auto attached = machine.attach();
		token = make_token();
		closed = make_token();
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, closed), kHelErrNone);
	}
	std::atomic<int> ran{0};
	auto entry = [&](std::span<const HelHandle>) { ++ran; };
	for (HelHandle bad : {closed, HelHandle{0}, HelHandle{-1}, HelHandle{999}, HelHandle{1} << 40})
		EXPECT_THROW(machine.spawn("bad", entry, {token, bad}), std::invalid_argument) << bad;
	{
		// Handles name the caller's universe: the root's token is not in a fresh one.
		auto attached = machine.attach({.name = "fresh", .new_universe = true});
		EXPECT_THROW(machine.spawn("bad", entry, {token}), std::invalid_argument);
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	EXPECT_EQ(ran.load(), 0);
	EXPECT_TRUE(report.threads.empty()) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

TEST(Machine, SpawnWhoseUniverseCannotTakeAHandleThrowsBadAllocAndStartsNothing) {
	helsim::MachineConfig config;
	config.mode = helsim::Mode::deterministic;
	// Pass 1 is the parent's own first handle (its stream); pass 2 the child's universe taking
	// the lane.
	config.inject.at(helsim::FaultPoint::handle_table_growth) = 2;
	helsim::Machine machine{config};
	std::string what;
	std::atomic<int> ran{0};
	machine.spawn("parent", [&](std::span<const HelHandle>) {
		HelHandle lane, remote;
		ASSERT_EQ(helCreateStream(&lane, &remote, 0), kHelErrNone);
		try {
			machine.spawn("child", [&](std::span<const HelHandle>) { ++ran; }, {remote});
		} catch (const std::bad_alloc &e) {
			what = e.what();
		}
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, lane), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, remote), kHelErrNone);
	});
	auto report = machine.run();
	EXPECT_EQ(what, "helsim: spawn: the new universe is out of handles");
	EXPECT_EQ(ran.load(), 0);
	EXPECT_EQ(find_thread(report, "child"), nullptr);
	EXPECT_EQ(report.counters.passes(helsim::FaultPoint::handle_table_growth), 2u);
	EXPECT_EQ(report.counters.injected_fail_at, 1u);
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

TEST(Machine, AttachOptionsSelectTheUniverse) {
	helsim::Machine machine;
	HelHandle token, universe, in_universe = -1;
	{
		auto attached = machine.attach();
		token = make_token();
		ASSERT_EQ(helCreateUniverse(&universe), kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(token, universe, kHelTransferDescriptorOut, kHelRightsMax,
						  0, &in_universe),
				kHelErrNone);
	}
	{
		auto attached = machine.attach({.name = "again"});
		EXPECT_EQ(info_of(token).type, kHelDescToken) << "the root universe persists";
		EXPECT_EQ(info_of(universe).type, kHelDescUniverse);
	}
	{
		auto attached = machine.attach({.name = "fresh", .new_universe = true});
		EXPECT_EQ(info_of(token).type, -1);
		EXPECT_EQ(make_token(), 1);
	}
	{
		auto attached = machine.attach({.name = "inside", .universe = universe});
		EXPECT_EQ(info_of(in_universe).type, kHelDescToken);
		EXPECT_EQ(info_of(universe).type, -1) << "the universe does not hold itself";
	}
	for (HelHandle bad : {token, HelHandle{777}, HelHandle{-3}})
		EXPECT_THROW((void)machine.attach({.name = "bad", .universe = bad}), std::invalid_argument);
	for (HelHandle bad : {token, universe, HelHandle{777}})
		EXPECT_THROW((void)machine.attach({.name = "bad", .space = bad}), std::invalid_argument);
	auto attached = machine.attach();
	EXPECT_EQ(helNop(), kHelErrNone) << "failed attach attempts left this thread attached";
}

TEST(Machine, AttachOptionsSelectTheSpace) {
	helsim::Machine machine;
	HelHandle space;
	void *pointer = nullptr;
	{
		auto attached = machine.attach();
		HelQueueParameters params{0, 2, 1024, 0};
		HelHandle queue;
		ASSERT_EQ(helCreateQueue(&params, &queue), kHelErrNone);
		ASSERT_EQ(helCreateSpace(&space), kHelErrNone);
		ASSERT_EQ(helMapMemory(queue, space, nullptr, 0, 4096, kHelMapProtRead, &pointer),
				kHelErrNone);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, 4096), kHelErrIllegalArgs)
				<< "mapped into the other space, not the root space";
	}
	{
		auto attached = machine.attach({.name = "new-space", .new_space = true});
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, 4096), kHelErrIllegalArgs);
	}
	{
		auto attached = machine.attach({.name = "in-space", .space = space});
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, 4096), kHelErrNone);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, 4096), kHelErrIllegalArgs);
	}
}

TEST(Machine, NestedAttachThrowsLogicError) {
	helsim::Machine machine;
	helsim::Machine other;
	auto attached = machine.attach();
	EXPECT_THROW((void)machine.attach(), std::logic_error);
	EXPECT_THROW((void)machine.attach({.name = "x", .new_universe = true}), std::logic_error);
	EXPECT_THROW((void)other.attach(), std::logic_error);
	HelHandle t = make_token();
	EXPECT_EQ(info_of(t).type, kHelDescToken) << "the first attachment still works";
}

TEST(Machine, RunReportsReturnedPanickedAndThrew) {
	std::mutex mutex;
	std::vector<std::string> log;
	helsim::Machine machine{{.log_sink = [&](const helsim::LogRecord &r) {
		std::lock_guard lock{mutex};
		log.push_back(std::to_string(r.severity) + " " + std::string{r.thread} + " " +
				std::string{r.message});
	}}};
	std::atomic<bool> after_panic{false};
	machine.spawn("returns", [](std::span<const HelHandle>) { helNop(); });
	machine.spawn("panics", [&](std::span<const HelHandle>) {
		helPanic("it is broken", 12);
		after_panic = true;
	});
	machine.spawn("throws",
			[](std::span<const HelHandle>) { throw std::runtime_error("escaped exception"); });
	machine.spawn("throws-int", [](std::span<const HelHandle>) { throw 42; });
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	ASSERT_EQ(report.threads.size(), 4u) << report.to_string();
	struct Expected {
		const char *name;
		ThreadOutcome outcome;
		const char *message; // nullptr: any non-empty message
	};
	for (const Expected &e : {Expected{"returns", ThreadOutcome::returned, ""},
				 Expected{"panics", ThreadOutcome::panicked, "it is broken"},
				 Expected{"throws", ThreadOutcome::threw, "escaped exception"},
				 Expected{"throws-int", ThreadOutcome::threw, nullptr}}) {
		const auto *t = find_thread(report, e.name);
		ASSERT_NE(t, nullptr) << e.name << "\n" << report.to_string();
		EXPECT_EQ(t->outcome, e.outcome) << e.name;
		if (e.message)
			EXPECT_EQ(t->message, e.message) << e.name;
		else
			EXPECT_FALSE(t->message.empty()) << e.name;
	}
	EXPECT_FALSE(after_panic.load()) << "helPanic returned";
	EXPECT_EQ(log, std::vector<std::string>{"2 panics panic: it is broken"});
	std::string text = report.to_string();
	EXPECT_NE(text.find("panicked"), std::string::npos) << text;
	EXPECT_NE(text.find("escaped exception"), std::string::npos) << text;
}

TEST(Machine, RunReportsThreadsNeverResumedAsNotStarted) {
	helsim::Machine machine;
	{
		auto attached = machine.attach({.name = "creator"});
		HelHandle stopped;
		ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  reinterpret_cast<void *>(&idle_entry), nullptr, kHelThreadStopped,
						  &stopped),
				kHelErrNone);
	}
	machine.spawn("runs", [](std::span<const HelHandle>) {});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	const auto *stopped = find_thread(report, "creator/thread");
	ASSERT_NE(stopped, nullptr) << report.to_string();
	EXPECT_EQ(stopped->outcome, ThreadOutcome::not_started);
	ASSERT_NE(find_thread(report, "runs"), nullptr);
	EXPECT_EQ(find_thread(report, "runs")->outcome, ThreadOutcome::returned);
	EXPECT_TRUE(report.leaks.empty()) << "the root universe holds the stopped thread on purpose";
}

TEST(Machine, RunReportsBlockedThreadWhenStuck) {
	int never_set = 0;
	helsim::Machine machine;
	machine.spawn("waiter",
			[&](std::span<const HelHandle>) { helFutexWait(&never_set, 0, kHelWaitInfinite); });
	machine.spawn("finisher", [](std::span<const HelHandle>) {});
	auto report = machine.run();
	EXPECT_TRUE(report.stuck) << report.to_string();
	const auto *waiter = find_thread(report, "waiter");
	ASSERT_NE(waiter, nullptr) << report.to_string();
	EXPECT_EQ(waiter->outcome, ThreadOutcome::blocked);
	EXPECT_NE(waiter->waits_on.find("futex"), std::string::npos) << waiter->waits_on;
	ASSERT_NE(find_thread(report, "finisher"), nullptr);
	EXPECT_EQ(find_thread(report, "finisher")->outcome, ThreadOutcome::returned);
	std::string text = report.to_string();
	EXPECT_NE(text.find("stuck"), std::string::npos) << text;
	EXPECT_NE(text.find("futex"), std::string::npos) << text;
}

TEST(Machine, TeardownUnwindsTheStacksOfBlockedFibers) {
	int never_set = 0;
	std::atomic<int> destroyed{0};
	struct Guard {
		std::atomic<int> &count;
		~Guard() { ++count; }
	};
	{
		helsim::Machine machine;
		machine.spawn("stuck", [&](std::span<const HelHandle>) {
			Guard guard{destroyed};
			try {
				helFutexWait(&never_set, 0, kHelWaitInfinite);
			} catch (const std::exception &) {
				ADD_FAILURE() << "the teardown unwind is not a std::exception";
			}
		});
		auto report = machine.run();
		EXPECT_TRUE(report.stuck);
		EXPECT_EQ(destroyed.load(), 0);
	}
	EXPECT_EQ(destroyed.load(), 1) << "the blocked fiber's frames were not unwound";
}

TEST(Machine, UniverseCyclesAreReportedAsLeaks) {
	helsim::Machine machine;
	machine.spawn("leaker", [](std::span<const HelHandle>) {
		HelHandle u, inside;
		ASSERT_EQ(helCreateUniverse(&u), kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(u, u, kHelTransferDescriptorOut, kHelRightsMax, 0, &inside),
				kHelErrNone);
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, u), kHelErrNone);
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	ASSERT_EQ(report.leaks.size(), 1u) << report.to_string();
	EXPECT_EQ(report.leaks[0].kind, "universe");
	EXPECT_EQ(report.leaks[0].references, 1);
	EXPECT_NE(report.to_string().find("leaked"), std::string::npos);
	{
		// Two universes holding each other, made by an attached thread.
		auto attached = machine.attach({.name = "cycle", .new_universe = true});
		HelHandle a, b, out;
		ASSERT_EQ(helCreateUniverse(&a), kHelErrNone);
		ASSERT_EQ(helCreateUniverse(&b), kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(a, b, kHelTransferDescriptorOut, ~0u, 0, &out),
				kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(b, a, kHelTransferDescriptorOut, ~0u, 0, &out),
				kHelErrNone);
	}
	report = machine.run();
	ASSERT_EQ(report.leaks.size(), 3u) << report.to_string();
	for (const auto &leak : report.leaks)
		EXPECT_EQ(leak.kind, "universe");
}

TEST(Machine, CleanRunHasNoLeaks) {
	helsim::Machine machine;
	machine.spawn("busy", [](std::span<const HelHandle>) {
		HelHandle u, s, q, t, copy;
		HelQueueParameters params{0, 2, 1024, 0};
		ASSERT_EQ(helCreateUniverse(&u), kHelErrNone);
		ASSERT_EQ(helCreateSpace(&s), kHelErrNone);
		ASSERT_EQ(helCreateQueue(&params, &q), kHelErrNone);
		t = make_token();
		ASSERT_EQ(helTransferDescriptor(t, u, kHelTransferDescriptorOut, kHelRightsMax, 0, &copy),
				kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(q, u, kHelTransferDescriptorOut, kHelRightsMax, 0, &copy),
				kHelErrNone);
		ASSERT_EQ(helSubmitAsyncNop(q, 1), kHelErrNone);
		void *p;
		ASSERT_EQ(helMapMemory(q, s, nullptr, 0, 4096, kHelMapProtRead, &p), kHelErrNone);
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, t), kHelErrNone);
		// u, s and q stay open: they go with the thread's universe.
	});
	{
		auto attached = machine.attach({.name = "fresh", .new_universe = true});
		make_token();
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

TEST(Machine, PanicOnAttachedThreadThrowsPanicError) {
	helsim::Machine machine{{.log_sink = [](const helsim::LogRecord &) {}}};
	auto attached = machine.attach();
	try {
		helPanic("attached panic", 14);
		ADD_FAILURE() << "helPanic returned";
	} catch (const helsim::PanicError &e) {
		EXPECT_STREQ(e.what(), "attached panic");
	}
	EXPECT_THROW(helPanic(nullptr, 5), helsim::PanicError) << "an unreadable message still panics";
	EXPECT_EQ(helNop(), kHelErrNone);
}

TEST(Machine, HelCallsWorkOnStdThreadOnlyWhileAttached) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle mine = make_token();
	std::vector<HelError> errors;
	std::thread plain{[&] {
		HelHandle h = kHelNullHandle;
		int word = 0;
		char credentials[16];
		errors.push_back(helNop());
		errors.push_back(helCreateUniverse(&h));
		errors.push_back(helCreateToken(&h));
		errors.push_back(helCloseDescriptor(kHelThisUniverse, mine));
		errors.push_back(helLog(kHelLogSeverityInfo, "x", 1));
		errors.push_back(helFutexWait(&word, 0, kHelWaitInfinite));
		errors.push_back(helFutexWake(&word, 1));
		errors.push_back(helGetCredentials(kHelThisThread, 0, credentials));
		errors.push_back(helSyscall0(300));
		errors.push_back(helSyscall0(static_cast<int>(0x80000001u)));
		// helPanic cannot return: it throws instead of crashing (src/kernel/core/syscalls.cpp).
		try {
			helPanic("x", 1);
		} catch (const helsim::PanicError &) {
			errors.push_back(kHelErrIllegalState);
		}
	}};
	plain.join();
	ASSERT_EQ(errors.size(), 11u);
	for (std::size_t i = 0; i < errors.size(); ++i)
		EXPECT_EQ(errors[i], kHelErrIllegalState) << "call #" << i;
	EXPECT_EQ(info_of(mine).type, kHelDescToken);

	// The same kind of thread works while an Attachment lives, and stops working after.
	HelError before = -1, during = -1, after = -1;
	HelHandle made = -1;
	std::thread worker{[&] {
		before = helNop();
		{
			auto a = machine.attach({.name = "worker"});
			during = helNop();
			made = make_token();
		}
		after = helNop();
	}};
	worker.join();
	EXPECT_EQ(before, kHelErrIllegalState);
	EXPECT_EQ(during, kHelErrNone);
	EXPECT_EQ(after, kHelErrIllegalState);
	EXPECT_EQ(info_of(made).type, kHelDescToken) << "the worker used the root universe";
}

TEST(Machine, FiberAndAttachedThreadPingPongThroughFutex) {
	constexpr int kRounds = 200;
	int word = 0;
	helsim::Machine machine;
	std::atomic<bool> fiber_ok{true};
	machine.spawn("fiber", [&](std::span<const HelHandle>) {
		for (int k = 0; k < kRounds; ++k) {
			if (!wait_for(&word, 2 * k + 1)) {
				fiber_ok = false;
				return;
			}
			store(&word, 2 * k + 2);
			helFutexWake(&word, 1);
		}
	});
	bool host_ok = true;
	std::promise<void> attached_promise;
	std::thread host{[&] {
		auto attached = machine.attach({.name = "host"});
		attached_promise.set_value();
		for (int k = 0; k < kRounds && host_ok; ++k) {
			host_ok = wait_for(&word, 2 * k);
			store(&word, 2 * k + 1);
			helFutexWake(&word, 1);
		}
		host_ok = host_ok && wait_for(&word, 2 * kRounds);
	}};
	// run() overlaps the exchange: a fiber waiting for a live attached thread is not stuck.
	attached_promise.get_future().wait();
	auto report = machine.run();
	host.join();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(host_ok);
	EXPECT_TRUE(fiber_ok.load());
	EXPECT_EQ(load(&word), 2 * kRounds);
	ASSERT_NE(find_thread(report, "fiber"), nullptr);
	EXPECT_EQ(find_thread(report, "fiber")->outcome, ThreadOutcome::returned);
}

TEST(Machine, RunFromAnySimulatedThreadAndAttachFromAFiberThrowLogicError) {
	helsim::Machine machine;
	{
		auto attached = machine.attach();
		EXPECT_THROW(machine.run(), std::logic_error);
	}
	std::atomic<int> logic_errors{0};
	machine.spawn("fiber", [&](std::span<const HelHandle>) {
		try {
			(void)machine.attach();
		} catch (const std::logic_error &) {
			++logic_errors;
		}
		try {
			machine.run();
		} catch (const std::logic_error &) {
			++logic_errors;
		}
		EXPECT_EQ(helNop(), kHelErrNone) << "the fiber is still a simulated thread";
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(logic_errors.load(), 2);
	ASSERT_EQ(report.threads.size(), 1u);
	EXPECT_EQ(report.threads[0].outcome, ThreadOutcome::returned) << report.to_string();
}

struct Logged {
	int severity;
	std::string thread;
	std::string message;
};

TEST(Machine, LogSinkReceivesTextSeverityAndThreadName) {
	std::mutex mutex;
	std::vector<Logged> records;
	helsim::Machine machine{{.log_sink = [&](const helsim::LogRecord &r) {
		std::lock_guard lock{mutex};
		records.push_back({r.severity, std::string{r.thread}, std::string{r.message}});
	}}};
	machine.spawn("logger", [](std::span<const HelHandle>) {
		const char text[] = "hello world";
		EXPECT_EQ(helLog(kHelLogSeverityWarning, text, 5), kHelErrNone);
		EXPECT_EQ(helLog(kHelLogSeverityEmergency, text, std::strlen(text)), kHelErrNone);
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	{
		auto attached = machine.attach({.name = "tester"});
		std::string text("line with\0after", 15);
		EXPECT_EQ(helLog(kHelLogSeverityDebug, text.data(), text.size()), kHelErrNone);
	}
	ASSERT_EQ(records.size(), 3u);
	EXPECT_EQ(records[0].severity, kHelLogSeverityWarning);
	EXPECT_EQ(records[0].thread, "logger");
	EXPECT_EQ(records[0].message, "hello");
	EXPECT_EQ(records[1].severity, kHelLogSeverityEmergency);
	EXPECT_EQ(records[1].message, "hello world");
	EXPECT_EQ(records[2].severity, kHelLogSeverityDebug);
	EXPECT_EQ(records[2].thread, "tester");
	EXPECT_EQ(records[2].message, std::string("line with\0after", 15)) << "the length is exact";
}

// Issue 10, item 9: thor logs a severity it does not know as info, rather than refusing it.
TEST(Machine, LogTreatsUnknownSeverityAsInfoAndRejectsBadPointers) {
	std::mutex mutex;
	std::vector<int> severities;
	helsim::Machine machine{{.log_sink = [&](const helsim::LogRecord &r) {
		std::lock_guard lock{mutex};
		severities.push_back(r.severity);
	}}};
	auto attached = machine.attach();
	const char *text = "text";
	auto log = [](HelWord severity, const void *p, std::size_t n) {
		return helSyscall3(kHelCallLog, severity, reinterpret_cast<HelWord>(p), n);
	};
	for (HelWord severity : {HelWord{8}, HelWord{100}, ~HelWord{0}, (HelWord{1} << 32) | 8})
		EXPECT_EQ(log(severity, text, 4), kHelErrNone) << severity;
	EXPECT_EQ(severities, std::vector<int>(4, kHelLogSeverityInfo));
	severities.clear();
	for (std::uintptr_t bad : {std::uintptr_t{0}, std::uintptr_t{16}, std::uintptr_t{1} << 60})
		EXPECT_EQ(log(kHelLogSeverityInfo, reinterpret_cast<const void *>(bad), 4), kHelErrFault)
				<< bad;
	EXPECT_EQ(log(kHelLogSeverityInfo, text, ~std::size_t{0}), kHelErrFault)
			<< "a range past the end of user space";
	EXPECT_TRUE(severities.empty()) << "a refused helLog reached the sink";
	EXPECT_EQ(log(kHelLogSeverityWarning, text, 4), kHelErrNone);
	EXPECT_EQ(log(kHelLogSeverityInfo, nullptr, 0), kHelErrNone) << "length 0 reads nothing";
	EXPECT_EQ(severities, (std::vector<int>{kHelLogSeverityWarning, kHelLogSeverityInfo}));
}

} // namespace
