// Tests of the thread syscalls (src/kernel/threads/thread.cpp and their rows in syscalls.cpp):
// helCreateThread, helResume, helYield, helSetPriority, helGetCurrentCpu, helGet/SetAffinity.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

helsim::MachineConfig cpus(unsigned n) {
	helsim::MachineConfig config;
	config.cpus = n;
	return config;
}

constexpr std::uint32_t kThreadRights =
		kHelRightRead | kHelRightWrite | kHelRightWait | kHelRightSignal | kHelRightManage;

void *as_ip(void (*entry)(std::uintptr_t)) { return reinterpret_cast<void *>(entry); }
void *as_sp(const void *argument) { return const_cast<void *>(argument); }

int load(const int &word) { return __atomic_load_n(&word, __ATOMIC_SEQ_CST); }
void store(int &word, int value) { __atomic_store_n(&word, value, __ATOMIC_SEQ_CST); }

// Blocks on the futex word until it is non-zero.
void wait_nonzero(int &word) {
	while (load(word) == 0) {
		HelError e = helFutexWait(&word, 0, kHelWaitInfinite);
		ASSERT_TRUE(e == kHelErrNone || e == kHelErrFutexRace) << e;
	}
}

void set_and_wake(int &word) {
	store(word, 1);
	ASSERT_EQ(helFutexWake(&word, ~0u), kHelErrNone);
}

std::vector<const helsim::ThreadReport *> threads_named(const helsim::RunReport &report,
		const std::string &name) {
	std::vector<const helsim::ThreadReport *> found;
	for (const auto &t : report.threads)
		if (t.name == name)
			found.push_back(&t);
	return found;
}

// ---------------------------------------------------------------- entries for helCreateThread

// Records that it ran and the argument it received.
struct Probe {
	std::atomic<int> runs{0};
	std::atomic<std::uintptr_t> argument{0};
};
std::atomic<std::uintptr_t> g_last_argument{0};
std::atomic<int> g_plain_runs{0};

void probe_entry(std::uintptr_t argument) {
	auto *probe = reinterpret_cast<Probe *>(argument);
	probe->argument.store(argument);
	probe->runs.fetch_add(1);
}

void plain_entry(std::uintptr_t argument) {
	g_last_argument.store(argument);
	g_plain_runs.fetch_add(1);
}

// Looks at its universe and space from inside, then reports back.
struct Inspection {
	HelHandle probe_handle = kHelNullHandle; // a handle value to helDescriptorInfo
	void *unmap_ok = nullptr;                // must be mapped in the thread's space
	void *unmap_foreign = nullptr;           // must not be (nullptr: skip)
	HelError info_error = -1;
	int type = -1;
	HelError unmap_ok_error = -1;
	HelError unmap_foreign_error = -1;
	int done = 0;
};

void inspect_entry(std::uintptr_t argument) {
	auto *in = reinterpret_cast<Inspection *>(argument);
	HelDescriptorInfo info{};
	in->info_error = helDescriptorInfo(in->probe_handle, &info);
	in->type = info.type;
	in->unmap_ok_error = helUnmapMemory(kHelNullHandle, in->unmap_ok, 4096);
	if (in->unmap_foreign)
		in->unmap_foreign_error = helUnmapMemory(kHelNullHandle, in->unmap_foreign, 4096);
	set_and_wake(in->done);
}

// Runs only once its gate opens, so that it is still alive while the test looks at it.
struct Gate {
	int open = 0;
	std::atomic<int> runs{0};
};

void gated_entry(std::uintptr_t argument) {
	auto *gate = reinterpret_cast<Gate *>(argument);
	gate->runs.fetch_add(1);
	wait_nonzero(gate->open);
}

// Appends its id to a shared log (one CPU: no two entries run at once).
struct OrderLog {
	std::mutex mutex;
	std::vector<int> order;
	void add(int id) {
		std::lock_guard lock{mutex};
		order.push_back(id);
	}
};
struct Logged {
	OrderLog *log;
	int id;
};

void logged_entry(std::uintptr_t argument) {
	auto *l = reinterpret_cast<Logged *>(argument);
	l->log->add(l->id);
}

} // namespace

// ---------------------------------------------------------------- helCreateThread

TEST(ThreadCreate, EntryRunsWithItsArgumentAndEndsWhenItReturns) {
	helsim::Machine machine;
	Probe probe;
	{
		auto attached = machine.attach();
		HelHandle thread = kHelNullHandle;
		ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  as_ip(probe_entry), as_sp(&probe), 0, &thread),
				kHelErrNone);
		EXPECT_GT(thread, 0);
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(probe.runs.load(), 1);
	EXPECT_EQ(probe.argument.load(), reinterpret_cast<std::uintptr_t>(&probe));
	auto created = threads_named(report, "host/thread");
	ASSERT_EQ(created.size(), 1u) << report.to_string();
	EXPECT_EQ(created[0]->outcome, helsim::ThreadOutcome::returned);
	EXPECT_TRUE(created[0]->message.empty());
}

TEST(ThreadCreate, ArgumentIsPassedVerbatim) {
	helsim::Machine machine;
	g_last_argument = 0;
	g_plain_runs = 0;
	// Not a pointer: sp is an opaque word for the entry.
	constexpr std::uintptr_t kWord = 0xFEEDFACE12345678u;
	{
		auto attached = machine.attach();
		HelHandle thread;
		ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  as_ip(plain_entry), reinterpret_cast<void *>(kWord), 0, &thread),
				kHelErrNone);
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	EXPECT_EQ(g_plain_runs.load(), 1);
	EXPECT_EQ(g_last_argument.load(), kWord);
}

TEST(ThreadCreate, EveryCreatedThreadEndsReturned) {
	helsim::Machine machine{cpus(2)};
	constexpr int kThreads = 8;
	Probe probes[kThreads];
	{
		auto attached = machine.attach();
		for (auto &probe : probes) {
			HelHandle thread;
			ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
							  as_ip(probe_entry), as_sp(&probe), 0, &thread),
					kHelErrNone);
		}
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	for (auto &probe : probes) {
		EXPECT_EQ(probe.runs.load(), 1);
		EXPECT_EQ(probe.argument.load(), reinterpret_cast<std::uintptr_t>(&probe));
	}
	auto created = threads_named(report, "host/thread");
	ASSERT_EQ(created.size(), static_cast<std::size_t>(kThreads)) << report.to_string();
	for (auto *t : created)
		EXPECT_EQ(t->outcome, helsim::ThreadOutcome::returned);
}

TEST(ThreadCreate, DefaultAndExplicitUniverseAndSpace) {
	helsim::Machine machine;
	Inspection defaults, explicit_ones;
	int parent_view_type = -1;
	machine.spawn("parent", [&](std::span<const HelHandle>) {
		HelHandle universe, space, token, token_in_universe, queue;
		ASSERT_EQ(helCreateUniverse(&universe), kHelErrNone);
		ASSERT_EQ(helCreateSpace(&space), kHelErrNone);
		ASSERT_EQ(helCreateToken(&token), kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(token, universe, kHelTransferDescriptorOut, kHelRightsMax,
						  0, &token_in_universe),
				kHelErrNone);
		HelQueueParameters params{0, 2, 4096, 0};
		ASSERT_EQ(helCreateQueue(&params, &queue), kHelErrNone);
		void *in_own = nullptr, *in_space = nullptr;
		ASSERT_EQ(helMapMemory(queue, kHelNullHandle, nullptr, 0, 4096, kHelMapProtRead, &in_own),
				kHelErrNone);
		ASSERT_EQ(helMapMemory(queue, space, nullptr, 0, 4096, kHelMapProtRead, &in_space),
				kHelErrNone);
		ASSERT_NE(in_own, in_space);

		// The same handle value names different descriptors in the two universes.
		HelDescriptorInfo info{};
		ASSERT_EQ(helDescriptorInfo(token_in_universe, &info), kHelErrNone);
		parent_view_type = info.type;
		ASSERT_NE(info.type, kHelDescToken);

		// Explicit universe and space: the thread sees the token we moved there, and
		// `in_space` is its mapping while `in_own` is not.
		explicit_ones.probe_handle = token_in_universe;
		explicit_ones.unmap_ok = in_space;
		explicit_ones.unmap_foreign = in_own;
		HelHandle first;
		ASSERT_EQ(helCreateThread(universe, space, kHelAbiSystemV, as_ip(inspect_entry),
						  as_sp(&explicit_ones), 0, &first),
				kHelErrNone);
		wait_nonzero(explicit_ones.done);

		// Handles 0: the caller's universe and space.
		defaults.probe_handle = token_in_universe;
		defaults.unmap_ok = in_own;
		HelHandle second;
		ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  as_ip(inspect_entry), as_sp(&defaults), 0, &second),
				kHelErrNone);
		wait_nonzero(defaults.done);
	});
	auto report = machine.run();
	ASSERT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(explicit_ones.info_error, kHelErrNone);
	EXPECT_EQ(explicit_ones.type, kHelDescToken);
	EXPECT_EQ(explicit_ones.unmap_ok_error, kHelErrNone);
	EXPECT_EQ(explicit_ones.unmap_foreign_error, kHelErrIllegalArgs);
	EXPECT_EQ(defaults.info_error, kHelErrNone);
	EXPECT_EQ(defaults.type, parent_view_type);
	EXPECT_EQ(defaults.unmap_ok_error, kHelErrNone);
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

TEST(ThreadCreate, RejectsBadHandlesRightsFlagsAndIp) {
	helsim::Machine machine;
	Probe probe;
	machine.spawn("parent", [&](std::span<const HelHandle>) {
		HelHandle universe, space, token, thread;
		ASSERT_EQ(helCreateUniverse(&universe), kHelErrNone);
		ASSERT_EQ(helCreateSpace(&space), kHelErrNone);
		ASSERT_EQ(helCreateToken(&token), kHelErrNone);
		auto create = [&](HelHandle u, HelHandle s, void *ip, std::uint32_t flags) {
			return helCreateThread(u, s, kHelAbiSystemV, ip, as_sp(&probe), flags, &thread);
		};
		void *ip = as_ip(probe_entry);

		// Wrong object type in either slot.
		EXPECT_EQ(create(token, kHelNullHandle, ip, 0), kHelErrBadDescriptor);
		EXPECT_EQ(create(space, kHelNullHandle, ip, 0), kHelErrBadDescriptor);
		EXPECT_EQ(create(kHelNullHandle, token, ip, 0), kHelErrBadDescriptor);
		EXPECT_EQ(create(kHelNullHandle, universe, ip, 0), kHelErrBadDescriptor);
		// Handles that name nothing.
		EXPECT_EQ(create(12345, kHelNullHandle, ip, 0), kHelErrNoDescriptor);
		EXPECT_EQ(create(kHelNullHandle, 12345, ip, 0), kHelErrNoDescriptor);

		// A universe needs Grant, Take and Assign; a space Read, Write and Assign.
		HelHandle weak_universe, weak_space;
		ASSERT_EQ(helTransferDescriptor(universe, kHelThisUniverse, kHelTransferDescriptorOut,
						  kHelRightGrant | kHelRightTake, 0, &weak_universe),
				kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(space, kHelThisUniverse, kHelTransferDescriptorOut,
						  kHelRightRead | kHelRightWrite | kHelRightGrant, 0, &weak_space),
				kHelErrNone);
		EXPECT_EQ(create(weak_universe, kHelNullHandle, ip, 0), kHelErrBadRights);
		EXPECT_EQ(create(kHelNullHandle, weak_space, ip, 0), kHelErrBadRights);

		// Only kHelThreadStopped is a flag; the entry must exist.
		EXPECT_EQ(create(kHelNullHandle, kHelNullHandle, ip, 2), kHelErrIllegalArgs);
		EXPECT_EQ(create(kHelNullHandle, kHelNullHandle, ip, kHelThreadStopped | 0x80000000u),
				kHelErrIllegalArgs);
		EXPECT_EQ(create(kHelNullHandle, kHelNullHandle, nullptr, 0), kHelErrIllegalArgs);
		EXPECT_EQ(create(kHelNullHandle, kHelNullHandle, nullptr, kHelThreadStopped),
				kHelErrIllegalArgs);
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	// None of the refused calls created anything that ran.
	EXPECT_EQ(probe.runs.load(), 0);
	EXPECT_TRUE(threads_named(report, "parent/thread").empty()) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

// ---------------------------------------------------------------- kHelThreadStopped, helResume

TEST(ThreadResume, StoppedThreadRunsOnlyAfterResume) {
	helsim::Machine machine;
	Gate gate;
	HelHandle thread = kHelNullHandle;
	{
		auto attached = machine.attach();
		ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  as_ip(gated_entry), as_sp(&gate), kHelThreadStopped, &thread),
				kHelErrNone);
	}
	// run() waits for every started fiber; a stopped one is not started, so this returns at
	// once and reports it as such.
	auto before = machine.run();
	EXPECT_FALSE(before.stuck) << before.to_string();
	EXPECT_EQ(gate.runs.load(), 0);
	auto listed = threads_named(before, "host/thread");
	ASSERT_EQ(listed.size(), 1u) << before.to_string();
	EXPECT_EQ(listed[0]->outcome, helsim::ThreadOutcome::not_started);

	{
		auto attached = machine.attach();
		EXPECT_EQ(helResume(thread), kHelErrNone);
		// Started and (held at its gate) not ended: a second resume is refused.
		EXPECT_EQ(helResume(thread), kHelErrIllegalState);
		set_and_wake(gate.open);
	}
	auto after = machine.run();
	EXPECT_FALSE(after.stuck) << after.to_string();
	EXPECT_EQ(gate.runs.load(), 1);
	listed = threads_named(after, "host/thread");
	ASSERT_EQ(listed.size(), 1u) << after.to_string();
	EXPECT_EQ(listed[0]->outcome, helsim::ThreadOutcome::returned);

	auto attached = machine.attach();
	EXPECT_EQ(helResume(thread), kHelErrThreadTerminated);
}

TEST(ThreadResume, ResumingARunningThreadIsIllegalState) {
	helsim::Machine machine;
	Gate gate;
	{
		auto attached = machine.attach();
		HelHandle thread;
		ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  as_ip(gated_entry), as_sp(&gate), 0, &thread),
				kHelErrNone);
		EXPECT_EQ(helResume(thread), kHelErrIllegalState);
		set_and_wake(gate.open);
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(gate.runs.load(), 1);
}

TEST(ThreadResume, NeedsManageRight) {
	helsim::Machine machine;
	Gate gate;
	{
		auto attached = machine.attach();
		HelHandle thread, weak;
		ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  as_ip(gated_entry), as_sp(&gate), kHelThreadStopped, &thread),
				kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(thread, kHelThisUniverse, kHelTransferDescriptorOut,
						  kThreadRights & ~static_cast<std::uint32_t>(kHelRightManage), 0, &weak),
				kHelErrNone);
		EXPECT_EQ(helResume(weak), kHelErrBadRights);
		EXPECT_EQ(helResume(thread), kHelErrNone);
		set_and_wake(gate.open);
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(gate.runs.load(), 1);
}

// ---------------------------------------------------------------- helYield

TEST(ThreadYield, TwoFibersOnOneCpuAlternateStrictly) {
	helsim::Machine machine{cpus(2)};
	constexpr int kRounds = 200;
	std::atomic<int> arrived{0};
	OrderLog log;
	std::atomic<int> wrong_cpu{0};
	for (int id : {1, 2}) {
		machine.spawn("yielder" + std::to_string(id), [&, id](std::span<const HelHandle>) {
			std::uint8_t cpu0 = 1;
			ASSERT_EQ(helSetAffinity(kHelThisThread, &cpu0, 1), kHelErrNone);
			// Both must be on CPU 0 before the rounds begin.
			arrived.fetch_add(1);
			while (arrived.load() < 2)
				ASSERT_EQ(helYield(), kHelErrNone);
			for (int i = 0; i < kRounds; ++i) {
				int cpu = -1;
				ASSERT_EQ(helGetCurrentCpu(&cpu), kHelErrNone);
				if (cpu != 0)
					wrong_cpu.fetch_add(1);
				log.add(id);
				ASSERT_EQ(helYield(), kHelErrNone);
			}
		});
	}
	auto report = machine.run();
	ASSERT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(wrong_cpu.load(), 0);
	ASSERT_EQ(log.order.size(), 2u * kRounds);
	for (std::size_t i = 1; i < log.order.size(); ++i)
		ASSERT_NE(log.order[i], log.order[i - 1]) << "no alternation at position " << i;
}

// ---------------------------------------------------------------- CPUs and affinity

TEST(ThreadCpu, CurrentCpuIsInRange) {
	constexpr unsigned kCpus = 3;
	helsim::Machine machine{cpus(kCpus)};
	std::atomic<int> out_of_range{0}, checked{0};
	for (int i = 0; i < 6; ++i) {
		machine.spawn("cpu" + std::to_string(i), [&](std::span<const HelHandle>) {
			for (int round = 0; round < 20; ++round) {
				int cpu = -1;
				ASSERT_EQ(helGetCurrentCpu(&cpu), kHelErrNone);
				if (cpu < 0 || cpu >= static_cast<int>(kCpus))
					out_of_range.fetch_add(1);
				checked.fetch_add(1);
				helYield();
			}
		});
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	EXPECT_EQ(checked.load(), 6 * 20);
	EXPECT_EQ(out_of_range.load(), 0);

	auto attached = machine.attach();
	int cpu = -1;
	ASSERT_EQ(helGetCurrentCpu(&cpu), kHelErrNone);
	EXPECT_GE(cpu, 0);
	EXPECT_LT(cpu, static_cast<int>(kCpus));
}

TEST(ThreadCpu, SetAffinityMovesTheCallerAtOnce) {
	helsim::Machine machine{cpus(2)};
	std::vector<int> seen;
	std::uint8_t reported[2] = {0xAA, 0xAA};
	machine.spawn("mover", [&](std::span<const HelHandle>) {
		for (std::uint8_t mask : {std::uint8_t{2}, std::uint8_t{1}, std::uint8_t{2}}) {
			ASSERT_EQ(helSetAffinity(kHelThisThread, &mask, 1), kHelErrNone);
			int cpu = -1;
			ASSERT_EQ(helGetCurrentCpu(&cpu), kHelErrNone);
			seen.push_back(cpu);
			// Still there after a scheduling point.
			ASSERT_EQ(helYield(), kHelErrNone);
			ASSERT_EQ(helGetCurrentCpu(&cpu), kHelErrNone);
			seen.push_back(cpu);
		}
		std::size_t actual = 0;
		ASSERT_EQ(helGetAffinity(kHelThisThread, reported, sizeof(reported), &actual), kHelErrNone);
		EXPECT_EQ(actual, 1u);
	});
	auto report = machine.run();
	ASSERT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(seen, (std::vector<int>{1, 1, 0, 0, 1, 1}));
	EXPECT_EQ(reported[0], 2);
	EXPECT_EQ(reported[1], 0xAA) << "helGetAffinity wrote past the size it reported";
}

TEST(ThreadCpu, SetAffinityRejectsBadMasks) {
	helsim::Machine machine{cpus(2)};
	auto attached = machine.attach();
	std::uint8_t no_cpu = 0x04;             // CPU 2 of a 2-CPU machine
	std::uint8_t far_cpu[2] = {0x00, 0x01}; // CPU 8
	std::uint8_t fine = 0x01;
	EXPECT_EQ(helSetAffinity(kHelThisThread, &no_cpu, 1), kHelErrIllegalArgs);
	// As thor: a mask longer than the machine's CPUs need is out of bounds.
	EXPECT_EQ(helSetAffinity(kHelThisThread, far_cpu, 2), kHelErrOutOfBounds);
	EXPECT_EQ(helSetAffinity(kHelThisThread, &fine, 0), kHelErrIllegalArgs);
	EXPECT_EQ(helSetAffinity(kHelThisThread, nullptr, 1), kHelErrFault);
	// None of the refused calls changed the mask.
	std::uint8_t mask = 0;
	std::size_t actual = 0;
	ASSERT_EQ(helGetAffinity(kHelThisThread, &mask, 1, &actual), kHelErrNone);
	EXPECT_EQ(mask, 0x03);
	// A valid mask is accepted and read back.
	ASSERT_EQ(helSetAffinity(kHelThisThread, &fine, 1), kHelErrNone);
	ASSERT_EQ(helGetAffinity(kHelThisThread, &mask, 1, &actual), kHelErrNone);
	EXPECT_EQ(mask, 0x01);
}

TEST(ThreadCpu, GetAffinityReportsTheSizeItNeeds) {
	{
		helsim::Machine machine{cpus(2)};
		auto attached = machine.attach();
		std::uint8_t mask = 0;
		std::size_t actual = 0;
		EXPECT_EQ(helGetAffinity(kHelThisThread, &mask, 0, &actual), kHelErrBufferTooSmall);
		EXPECT_EQ(actual, 0u) << "as thor: nothing is written when the buffer is too small";
	}
	{
		helsim::Machine machine{cpus(12)};
		auto attached = machine.attach();
		std::uint8_t mask[3] = {0, 0, 0x55};
		std::size_t actual = 0;
		EXPECT_EQ(helGetAffinity(kHelThisThread, mask, 1, &actual), kHelErrBufferTooSmall);
		EXPECT_EQ(actual, 0u);
		EXPECT_EQ(mask[0], 0) << "nothing is written when the buffer is too small";
		ASSERT_EQ(helGetAffinity(kHelThisThread, mask, 3, &actual), kHelErrNone);
		EXPECT_EQ(actual, 2u);
		EXPECT_EQ(mask[0], 0xFF);
		EXPECT_EQ(mask[1], 0x0F); // CPUs 8..11
		EXPECT_EQ(mask[2], 0x55);
	}
}

// helGetAffinity's actualSize is a pointer the kernel writes through, as in thor: NULL is
// allowed, a bad pointer is a fault, and the value is never returned any other way.
TEST(ThreadCpu, GetAffinityWritesActualSizeThroughThePointer) {
	helsim::Machine machine{cpus(2)};
	auto attached = machine.attach();
	std::uint8_t mask = 0;
	std::size_t actual = 77;
	ASSERT_EQ(helSyscall4(kHelCallGetAffinity, static_cast<HelWord>(kHelThisThread),
					  reinterpret_cast<HelWord>(&mask), 1, reinterpret_cast<HelWord>(&actual)),
			kHelErrNone);
	EXPECT_EQ(actual, 1u);
	EXPECT_EQ(mask, 0x03);
	mask = 0;
	EXPECT_EQ(helGetAffinity(kHelThisThread, &mask, 1, nullptr), kHelErrNone);
	EXPECT_EQ(mask, 0x03);
	EXPECT_EQ(helGetAffinity(kHelThisThread, &mask, 1, reinterpret_cast<std::size_t *>(8)),
			kHelErrFault);
}

// ---------------------------------------------------------------- helSetPriority

TEST(ThreadPriority, HigherPriorityRunsFirstAtTheNextSchedulingPoint) {
	helsim::Machine machine{cpus(1)};
	OrderLog log;
	std::vector<int> after_high, after_low;
	// id = priority: created in an order that is neither ascending nor descending.
	Logged entries[] = {{&log, 1}, {&log, 5}, {&log, 3}};
	machine.spawn("controller", [&](std::span<const HelHandle>) {
		HelHandle handles[3];
		for (int i = 0; i < 3; ++i) {
			ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
							  as_ip(logged_entry), as_sp(&entries[i]), kHelThreadStopped,
							  &handles[i]),
					kHelErrNone);
			ASSERT_EQ(helSetPriority(handles[i], entries[i].id), kHelErrNone);
		}
		// Above all of them: a yield comes straight back to us.
		ASSERT_EQ(helSetPriority(kHelThisThread, 10), kHelErrNone);
		for (HelHandle h : handles)
			ASSERT_EQ(helResume(h), kHelErrNone);
		ASSERT_EQ(helYield(), kHelErrNone);
		{
			std::lock_guard lock{log.mutex};
			after_high = log.order;
		}
		// Below all of them: each runs (and ends) before we are picked again.
		ASSERT_EQ(helSetPriority(kHelThisThread, -1), kHelErrNone);
		ASSERT_EQ(helYield(), kHelErrNone);
		std::lock_guard lock{log.mutex};
		after_low = log.order;
	});
	auto report = machine.run();
	ASSERT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(after_high.empty());
	EXPECT_EQ(after_low, (std::vector<int>{5, 3, 1}));
}

TEST(ThreadPriority, EqualPrioritiesRunInResumeOrder) {
	helsim::Machine machine{cpus(1)};
	OrderLog log;
	std::vector<int> observed;
	Logged entries[] = {{&log, 1}, {&log, 2}, {&log, 3}};
	machine.spawn("controller", [&](std::span<const HelHandle>) {
		HelHandle handles[3];
		for (int i = 0; i < 3; ++i)
			ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
							  as_ip(logged_entry), as_sp(&entries[i]), kHelThreadStopped,
							  &handles[i]),
					kHelErrNone);
		for (int i : {2, 0, 1})
			ASSERT_EQ(helResume(handles[i]), kHelErrNone);
		ASSERT_EQ(helYield(), kHelErrNone);
		std::lock_guard lock{log.mutex};
		observed = log.order;
	});
	auto report = machine.run();
	ASSERT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(observed, (std::vector<int>{3, 1, 2}));
}

TEST(ThreadPriority, NeedsManageRight) {
	helsim::Machine machine;
	Gate gate;
	{
		auto attached = machine.attach();
		HelHandle thread, weak;
		ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  as_ip(gated_entry), as_sp(&gate), kHelThreadStopped, &thread),
				kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(thread, kHelThisUniverse, kHelTransferDescriptorOut,
						  kThreadRights & ~static_cast<std::uint32_t>(kHelRightManage), 0, &weak),
				kHelErrNone);
		EXPECT_EQ(helSetPriority(weak, 3), kHelErrBadRights);
		EXPECT_EQ(helSetPriority(thread, 3), kHelErrNone);
		HelHandle token;
		ASSERT_EQ(helCreateToken(&token), kHelErrNone);
		EXPECT_EQ(helSetPriority(token, 3), kHelErrBadDescriptor);
		EXPECT_EQ(helSetPriority(kHelThisThread, 0), kHelErrNone);
	}
	// The stopped thread never ran.
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	EXPECT_EQ(gate.runs.load(), 0);
}
