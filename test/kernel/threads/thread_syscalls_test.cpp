// Tests of src/kernel/threads/thread_syscalls.cpp: the per-thread fs/gs words and register-set
// sizes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "../../support.hpp"
#include "thread_support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using namespace helsim::test;

void *word(std::uintptr_t v) { return reinterpret_cast<void *>(v); }

std::uintptr_t read_fs() {
	void *p = nullptr;
	EXPECT_EQ(helReadFsBase(&p), kHelErrNone);
	return reinterpret_cast<std::uintptr_t>(p);
}

std::uintptr_t read_gs() {
	void *p = nullptr;
	EXPECT_EQ(helReadGsBase(&p), kHelErrNone);
	return reinterpret_cast<std::uintptr_t>(p);
}

// Each thread has its own words, which stay with it when it moves to another CPU (and so
// to another host thread): what the POSIX layer will anchor per-thread state in.
TEST(ThreadBases, FsAndGsArePerThreadAndFollowTheThreadAcrossCpus) {
	helsim::MachineConfig config;
	config.cpus = 2;
	helsim::Machine machine{config};
	std::atomic<int> wrong{0};
	for (std::uintptr_t id = 1; id <= 3; ++id)
		machine.spawn("t" + std::to_string(id), [id, &wrong](std::span<const HelHandle>) {
			if (read_fs() != 0 || read_gs() != 0)
				++wrong; // a new thread starts with both 0
			EXPECT_EQ(helWriteFsBase(word(id << 12)), kHelErrNone);
			EXPECT_EQ(helWriteGsBase(word(~id)), kHelErrNone);
			for (int i = 0; i < 50; ++i) {
				std::uint8_t mask = static_cast<std::uint8_t>(1u << ((id + i) % 2));
				EXPECT_EQ(helSetAffinity(kHelThisThread, &mask, 1), kHelErrNone);
				EXPECT_EQ(helYield(), kHelErrNone);
				if (read_fs() != id << 12 || read_gs() != ~id)
					++wrong;
			}
		});
	expect_clean(machine.run());
	EXPECT_EQ(wrong.load(), 0);
}

TEST(ThreadBases, AttachedThreadsHaveTheirOwnToo) {
	helsim::Machine machine;
	std::uintptr_t other_fs = 1;
	{
		auto attached = machine.attach();
		EXPECT_EQ(read_fs(), 0u);
		// Any value, as thor writes the MSR unchecked.
		EXPECT_EQ(helWriteFsBase(word(~std::uintptr_t{0})), kHelErrNone);
		EXPECT_EQ(helWriteGsBase(word(0x1234)), kHelErrNone);
		EXPECT_EQ(read_fs(), ~std::uintptr_t{0});
		EXPECT_EQ(read_gs(), 0x1234u);
		machine.spawn("other", [&](std::span<const HelHandle>) { other_fs = read_fs(); });
	}
	expect_clean(machine.run());
	EXPECT_EQ(other_fs, 0u) << "another thread's word";
}

TEST(ThreadRegisters, QueryRegisterInfoGivesX86SizesInBytes) {
	helsim::Machine machine;
	auto attached = machine.attach();
	struct Case {
		int set;
		int size;
	};
	for (Case c : {Case{kHelRegsProgram, 16}, Case{kHelRegsGeneral, 120}, Case{kHelRegsThread, 16},
				 Case{kHelRegsVirtualization, 424}, Case{kHelRegsSimd, 0},
				 Case{kHelRegsSignal, 152}}) {
		HelRegisterInfo info{-1};
		EXPECT_EQ(helQueryRegisterInfo(c.set, &info), kHelErrNone) << c.set;
		EXPECT_EQ(info.setSize, c.size) << c.set;
	}
	HelRegisterInfo info{-1};
	for (int set : {0, int{kHelRegsDebug}, int{kHelRegsPageFault}, 9, -1})
		EXPECT_EQ(helQueryRegisterInfo(set, &info), kHelErrIllegalArgs) << set;
	EXPECT_EQ(info.setSize, -1) << "a refused query wrote nothing";
	EXPECT_EQ(helQueryRegisterInfo(kHelRegsGeneral, nullptr), kHelErrFault);
	EXPECT_EQ(helQueryRegisterInfo(kHelRegsGeneral, reinterpret_cast<HelRegisterInfo *>(8)),
			kHelErrFault);
}

std::uint64_t user_time(HelHandle thread) {
	HelThreadStats stats{~std::uint64_t{0}};
	EXPECT_EQ(helQueryThreadStats(thread, &stats), kHelErrNone);
	return stats.userTime;
}

// Deterministic mode: a thread's run time is the virtual time charged while it ran, so it is
// exact. Between two queries of its own, a thread is charged the cost model's syscall cost once
// per call it made (the nops and the second query), whatever ran on other CPUs meanwhile.
TEST(ThreadStats, RunTimeIsTheVirtualTimeChargedWhileTheThreadRan) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				auto config = helsim::testing::deterministic(seed);
				constexpr int kNops = 40;
				std::uint64_t before = 0, after = 0, stopped_time = 1;
				helsim::Machine machine{config};
				machine.spawn("noise", [](std::span<const HelHandle>) {
					for (int i = 0; i < 100; ++i)
						(void)helYield();
				});
				machine.spawn("worker", [&](std::span<const HelHandle>) {
					HelHandle stopped = kHelNullHandle;
					EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
									  reinterpret_cast<void *>(+[](std::uintptr_t) {}), nullptr,
									  kHelThreadStopped, &stopped),
							kHelErrNone);
					before = user_time(kHelThisThread);
					for (int i = 0; i < kNops; ++i)
						EXPECT_EQ(helNop(), kHelErrNone);
					after = user_time(kHelThisThread);
					stopped_time = user_time(stopped);
					EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, stopped), kHelErrNone);
				});
				auto report = machine.run();
				EXPECT_FALSE(report.stuck) << report.to_string();
				EXPECT_GE(before, config.costs.syscall_ns);
				EXPECT_EQ(after - before, (kNops + 1) * config.costs.syscall_ns);
				EXPECT_EQ(stopped_time, 0u) << "a thread that never ran";
			},
			8);
}

// Another thread's count grows only while it runs: a thread blocked on a futex keeps its
// count, and the count never goes back.
TEST(ThreadStats, ABlockedThreadsRunTimeStandsStill) {
	helsim::Machine machine;
	static int word;
	word = 0;
	HelHandle waiter = kHelNullHandle;
	{
		auto attached = machine.attach();
		ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  reinterpret_cast<void *>(+[](std::uintptr_t) {
							  while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) == 0)
								  (void)helFutexWait(&word, 0, kHelWaitInfinite);
						  }),
						  nullptr, 0, &waiter),
				kHelErrNone);
		std::uint64_t mine = user_time(kHelThisThread);
		for (int i = 0; i < 1000; ++i)
			(void)helNop();
		EXPECT_GE(user_time(kHelThisThread), mine);
		// The waiter blocks on the futex (the word stays 0); its count then stands still.
		std::uint64_t first = user_time(waiter), last = first;
		for (int i = 0; i < 100; ++i) {
			(void)helYield();
			std::uint64_t now = user_time(waiter);
			EXPECT_GE(now, last);
			last = now;
		}
		__atomic_store_n(&word, 1, __ATOMIC_RELEASE);
		EXPECT_EQ(helFutexWake(&word, 1), kHelErrNone);
		HelThreadStats stats{};
		EXPECT_EQ(helQueryThreadStats(12345, &stats), kHelErrNoDescriptor);
		HelHandle token = kHelNullHandle;
		ASSERT_EQ(helCreateToken(&token), kHelErrNone);
		EXPECT_EQ(helQueryThreadStats(token, &stats), kHelErrBadDescriptor);
		EXPECT_EQ(helQueryThreadStats(kHelThisThread, nullptr), kHelErrFault);
		EXPECT_EQ(helQueryThreadStats(narrowed(waiter, kHelRightNull), &stats), kHelErrNone)
				<< "no right is needed, as in thor";
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, waiter), kHelErrNone);
	}
	expect_clean(machine.run());
}

// ---------------------------------------------------------------- observation

// Issue 11, items 1 and 2: a thread created stopped is interrupted with kHelObserveInterrupt;
// observing it completes at once (as often as asked, while it stays interrupted); once
// resumed, an observe waits, and the thread's end completes it with kHelErrThreadTerminated.
TEST(ThreadObserve, StoppedThreadIsInterruptedUntilResumedAndItsEndTerminatesObservers) {
	helsim::Machine machine;
	static int go;
	go = 0;
	HelObserveResult first{}, again{}, waited{}, after{};
	HelError resume = -1, resume_running = -1, resume_ended = -1;
	machine.spawn("supervisor", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		HelHandle child = stopped_thread(+[](std::uintptr_t) {
			while (__atomic_load_n(&go, __ATOMIC_ACQUIRE) == 0)
				(void)helFutexWait(&go, 0, kHelWaitInfinite);
		});
		first = observe(d, child);
		again = observe(d, child);
		resume = helResume(child);
		resume_running = helResume(child);
		// This observe cannot complete until the child ends: submit it, then let the child go.
		d.submit(kHelSubmitObserve, 77, HelSqObserve{child});
		d.flush();
		__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
		EXPECT_EQ(helFutexWake(&go, 1), kHelErrNone);
		for (;;) {
			auto element = d.wait();
			if (element && element->context() == 77) {
				waited = element->as<HelObserveResult>();
				break;
			}
		}
		after = observe(d, child);
		resume_ended = helResume(child);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, child), kHelErrNone);
	});
	expect_clean(machine.run());
	EXPECT_EQ(first.error, kHelErrNone);
	EXPECT_EQ(first.observation, unsigned{kHelObserveInterrupt});
	EXPECT_EQ(again.error, kHelErrNone);
	EXPECT_EQ(again.observation, unsigned{kHelObserveInterrupt});
	EXPECT_EQ(resume, kHelErrNone);
	EXPECT_EQ(resume_running, kHelErrIllegalState) << "not interrupted";
	EXPECT_EQ(waited.error, kHelErrThreadTerminated);
	EXPECT_EQ(after.error, kHelErrThreadTerminated) << "observing an ended thread";
	EXPECT_EQ(resume_ended, kHelErrThreadTerminated);
}

TEST(ThreadObserve, SubmissionErrors) {
	helsim::Machine machine;
	auto attached = machine.attach();
	helsim::Dispatcher d;
	HelHandle child = stopped_thread(+[](std::uintptr_t) {});
	HelHandle token = kHelNullHandle;
	ASSERT_EQ(helCreateToken(&token), kHelErrNone);
	struct Case {
		HelHandle handle;
		HelError error;
	};
	for (Case c : {Case{12345, kHelErrNoDescriptor}, Case{kHelThisThread, kHelErrNoDescriptor},
				 Case{token, kHelErrBadDescriptor},
				 Case{narrowed(child, kHelRightsMax & ~kHelRightWait), kHelErrBadRights}}) {
		auto element = sq_call(d, kHelSubmitObserve, HelSqObserve{c.handle});
		EXPECT_EQ(element.context(), ~std::uintptr_t{0}) << c.handle;
		EXPECT_EQ(element.error(), c.error) << c.handle;
	}
	// A payload shorter than HelSqObserve.
	auto element = sq_call(d, kHelSubmitObserve, std::uint32_t{0});
	EXPECT_EQ(element.context(), ~std::uintptr_t{0});
	EXPECT_EQ(element.error(), kHelErrBufferTooSmall);
	EXPECT_EQ(observe(d, narrowed(child, kHelRightWait)).observation,
			unsigned{kHelObserveInterrupt})
			<< "Wait is all it needs";
	EXPECT_EQ(helResume(narrowed(child, kHelRightsMax & ~kHelRightManage)), kHelErrBadRights);
	EXPECT_EQ(helResume(kHelThisThread), kHelErrNoDescriptor);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, child), kHelErrNone);
}

// An observe of a running thread that never ends is named in the stuck report, and counts as
// pending; under many seeds the race between the observe and the thread's end never loses
// the completion.
TEST(ThreadObserve, AnObserveRacingTheThreadsEndCompletesOnceUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				helsim::Machine machine{helsim::testing::deterministic(seed)};
				int completions = 0;
				HelError error = -1;
				machine.spawn("observer", [&](std::span<const HelHandle>) {
					helsim::Dispatcher d;
					HelHandle child = kHelNullHandle;
					EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
									  reinterpret_cast<void *>(
											  +[](std::uintptr_t) { (void)helYield(); }),
									  nullptr, 0, &child),
							kHelErrNone);
					d.submit(kHelSubmitObserve, 5, HelSqObserve{child});
					d.flush();
					for (;;) {
						auto element = d.wait();
						if (element && element->context() == 5) {
							++completions;
							error = element->error();
							break;
						}
					}
					EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, child), kHelErrNone);
				});
				expect_clean(machine.run());
				EXPECT_EQ(completions, 1);
				EXPECT_EQ(error, kHelErrThreadTerminated);
			},
			16);
}

TEST(ThreadObserve, StuckReportNamesAPendingObserve) {
	helsim::Machine machine;
	machine.spawn("watcher", [](std::span<const HelHandle>) {
		static int never;
		HelHandle child = kHelNullHandle;
		EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  reinterpret_cast<void *>(+[](std::uintptr_t) {
							  (void)helFutexWait(&never, 0, kHelWaitInfinite);
						  }),
						  nullptr, 0, &child),
				kHelErrNone);
		helsim::Dispatcher d;
		d.submit(kHelSubmitObserve, 9, HelSqObserve{child});
		d.flush();
		(void)d.wait();
	});
	auto report = machine.run();
	ASSERT_TRUE(report.stuck) << report.to_string();
	const auto *watcher = find_thread(report, "watcher");
	ASSERT_NE(watcher, nullptr);
	EXPECT_NE(watcher->waits_on.find("observe on thread handle"), std::string::npos)
			<< watcher->waits_on;
	EXPECT_EQ(report.operations_pending(), 1u);
}

// ---------------------------------------------------------------- interrupts

// Issue 11, item 5: helInterruptThread stops a running thread at its next syscall; it stays
// stopped (an observer sees kHelObserveInterrupt) until helResume.
TEST(ThreadInterrupt, StopsARunningThreadAtItsNextSyscallUntilResumed) {
	helsim::MachineConfig config;
	config.cpus = 2;
	helsim::Machine machine{config};
	static std::atomic<std::uint64_t> counter;
	static std::atomic<bool> stop;
	counter = 0;
	stop = false;
	HelObserveResult seen{};
	std::uint64_t at_stop = 0, later = 0;
	machine.spawn("supervisor", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		HelHandle child = kHelNullHandle;
		EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  reinterpret_cast<void *>(+[](std::uintptr_t) {
							  while (!stop.load())
								  if (helNop() == kHelErrNone)
									  counter.fetch_add(1);
						  }),
						  nullptr, 0, &child),
				kHelErrNone);
		while (counter.load() == 0)
			(void)helYield();
		EXPECT_EQ(helInterruptThread(child), kHelErrNone);
		seen = observe(d, child);
		at_stop = counter.load();
		for (int i = 0; i < 20; ++i)
			(void)helYield();
		later = counter.load();
		EXPECT_EQ(helResume(child), kHelErrNone);
		while (counter.load() == later)
			(void)helYield();
		stop = true;
		d.submit(kHelSubmitObserve, 3, HelSqObserve{child});
		d.flush();
		EXPECT_EQ(wait_for(d, 3).error(), kHelErrThreadTerminated);
		EXPECT_EQ(helInterruptThread(child), kHelErrThreadTerminated);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, child), kHelErrNone);
	});
	expect_clean(machine.run());
	EXPECT_EQ(seen.error, kHelErrNone);
	EXPECT_EQ(seen.observation, unsigned{kHelObserveInterrupt});
	EXPECT_LE(later - at_stop, 1u) << "an interrupted thread ran on (one nop may finish)";
}

// A thread blocked in helFutexWait or in helDriveQueue's wait returns kHelErrCancelled, then
// takes the interrupt at the syscall's exit. The child waits until a wait is cancelled; the
// supervisor interrupts and resumes it until it ends (an interrupt that arrives before the
// child blocks is taken at the wait's entry, and the next one finds it blocked).
TEST(ThreadInterrupt, InterruptibleWaitsReturnCancelled) {
	helsim::Machine machine;
	static HelError futex_result, drive_result;
	static int word;
	futex_result = drive_result = -1;
	word = 0;
	int rounds = 0;
	machine.spawn("supervisor", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		for (auto entry : {+[](std::uintptr_t) {
							   do
								   futex_result = helFutexWait(&word, 0, kHelWaitInfinite);
							   while (futex_result != kHelErrCancelled);
						   },
					 +[](std::uintptr_t) {
						 helsim::Dispatcher own;
						 do
							 drive_result = helDriveQueue(own.queue(), kHelDriveWait, 0);
						 while (drive_result != kHelErrCancelled);
					 }}) {
			HelHandle child = kHelNullHandle;
			EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
							  reinterpret_cast<void *>(entry), nullptr, 0, &child),
					kHelErrNone);
			for (int i = 0; i < 1000; ++i, ++rounds) {
				(void)helYield();
				if (helInterruptThread(child) != kHelErrNone)
					break;
				HelObserveResult seen = observe(d, child);
				if (seen.error == kHelErrThreadTerminated)
					break;
				EXPECT_EQ(seen.observation, unsigned{kHelObserveInterrupt});
				EXPECT_EQ(helResume(child), kHelErrNone);
			}
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, child), kHelErrNone);
		}
	});
	expect_clean(machine.run());
	EXPECT_EQ(futex_result, kHelErrCancelled);
	EXPECT_EQ(drive_result, kHelErrCancelled);
	EXPECT_LT(rounds, 2000) << "the children ended";
}

TEST(ThreadInterrupt, Errors) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle child = stopped_thread(+[](std::uintptr_t) {});
	EXPECT_EQ(helInterruptThread(12345), kHelErrNoDescriptor);
	EXPECT_EQ(helInterruptThread(narrowed(child, kHelRightsMax & ~kHelRightSignal)),
			kHelErrBadRights);
	HelHandle token = kHelNullHandle;
	ASSERT_EQ(helCreateToken(&token), kHelErrNone);
	EXPECT_EQ(helInterruptThread(token), kHelErrBadDescriptor);
	EXPECT_EQ(helInterruptThread(narrowed(child, kHelRightSignal)), kHelErrNone);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, child), kHelErrNone);
}

// Item 7: an interrupt racing a futex wake loses neither, under many seeds. The wake is never
// lost: the waiter always sees the word change and ends. The interrupt is never lost: it is
// observed (and the resume continues the thread), unless the thread ends without making
// another syscall, which the observer then learns from kHelErrThreadTerminated; nothing hangs
// and every observe completes once.
TEST(ThreadInterrupt, AnInterruptRacingAWakeLosesNeitherUnderSeeds) {
	int interrupted_seeds = 0;
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) {
				helsim::Machine machine{helsim::testing::deterministic(seed)};
				static int word;
				static int cancelled;
				word = 0;
				cancelled = 0;
				HelError interrupt = -1, resume = -1;
				HelObserveResult seen{-1, 0};
				machine.spawn("supervisor", [&](std::span<const HelHandle>) {
					helsim::Dispatcher d;
					HelHandle child = kHelNullHandle;
					EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
									  reinterpret_cast<void *>(+[](std::uintptr_t) {
										  while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) == 0)
											  if (helFutexWait(&word, 0, kHelWaitInfinite) ==
													  kHelErrCancelled)
												  ++cancelled;
									  }),
									  nullptr, 0, &child),
							kHelErrNone);
					(void)helYield();
					__atomic_store_n(&word, 1, __ATOMIC_RELEASE);
					EXPECT_EQ(helFutexWake(&word, 1), kHelErrNone);
					interrupt = helInterruptThread(child);
					d.submit(kHelSubmitObserve, 6, HelSqObserve{child});
					d.flush();
					seen = wait_for(d, 6).as<HelObserveResult>();
					resume = helResume(child);
					d.submit(kHelSubmitObserve, 7, HelSqObserve{child});
					d.flush();
					EXPECT_EQ(wait_for(d, 7).error(), kHelErrThreadTerminated);
					EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, child), kHelErrNone);
				});
				expect_clean(machine.run());
				EXPECT_LE(cancelled, 1);
				if (seen.error == kHelErrNone) {
					++interrupted_seeds;
					EXPECT_EQ(interrupt, kHelErrNone);
					EXPECT_EQ(seen.observation, unsigned{kHelObserveInterrupt});
					EXPECT_EQ(resume, kHelErrNone);
				} else {
					EXPECT_EQ(seen.error, kHelErrThreadTerminated);
					EXPECT_EQ(resume, kHelErrThreadTerminated);
				}
			},
			32);
	EXPECT_GT(interrupted_seeds, 0) << "no seed interrupted the waiter: the race was not run";
}

} // namespace
