// Faults in simulated code (issue 11, item 2): a fault of a fiber thread's user code that
// nothing resolves never kills the process. Without an observer the thread ends `faulted` and
// the machine goes on; an observer sees kHelObservePageFault (with the PageFault set),
// kHelObserveGeneralFault, kHelObserveIllegalInstruction, kHelObserveDivByZero or
// kHelObserveBreakpoint, and may map the page and resume, or kill the thread.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <array>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>

#include "../../support.hpp"
#include "thread_support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using namespace helsim::test;
using helsim::ThreadOutcome;

constexpr std::size_t kPage = 4096;
constexpr std::uint64_t kSeeds = 8;

std::string hex(std::uintptr_t value) {
	char text[32];
	std::snprintf(text, sizeof(text), "%#" PRIxPTR, value);
	return text;
}

bool contains(const std::string &text, const std::string &part) {
	return text.find(part) != std::string::npos;
}

// Runs `check` on a machine in threads mode, then under kSeeds deterministic seeds (a failing
// seed is reported with its replay command).
template <typename Check>
void in_both_modes(Check check) {
	check(helsim::MachineConfig{});
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) { check(helsim::testing::deterministic(seed)); }, kSeeds);
}

// A thread that runs to its end next to a faulting one: the machine goes on.
std::atomic<bool> bystander_done;
void spawn_bystander(helsim::Machine &machine) {
	bystander_done = false;
	machine.spawn("bystander", [](std::span<const HelHandle>) {
		for (int i = 0; i < 20; ++i)
			(void)helYield();
		bystander_done = true;
	});
}

// The victim's end: faulted, the machine not stuck, the bystander done, nothing leaked.
const helsim::ThreadReport *expect_faulted(const helsim::RunReport &report,
		const std::string &name) {
	expect_clean(report, {ThreadOutcome::returned, ThreadOutcome::faulted});
	EXPECT_TRUE(bystander_done);
	const auto *victim = find_thread(report, name);
	EXPECT_NE(victim, nullptr) << report.to_string();
	if (victim) {
		EXPECT_EQ(victim->outcome, ThreadOutcome::faulted) << report.to_string();
		EXPECT_TRUE(contains(victim->message, "in thread \"" + name + "\"")) << victim->message;
	}
	return victim;
}

// ---------------------------------------------------------------- no observer

// A wild pointer, hidden from the compiler (which would warn about a constant one).
volatile std::uintptr_t wild_address = 16;
void write_wild() { *reinterpret_cast<volatile int *>(wild_address) = 1; }

std::atomic<std::uintptr_t> fault_address;
std::atomic<bool> ran_past;

TEST(ThreadFaults, UseAfterUnmapEndsTheThreadFaulted) {
	in_both_modes([](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		fault_address = 0;
		ran_past = false;
		machine.spawn("victim", [](std::span<const HelHandle>) {
			auto *p = static_cast<volatile int *>(map_new_memory(kPage));
			p[0] = 1;
			fault_address = reinterpret_cast<std::uintptr_t>(p + 2);
			ASSERT_EQ(helUnmapMemory(kHelNullHandle, const_cast<int *>(p), kPage), kHelErrNone);
			p[2] = 2; // a use after unmap
			ran_past = true;
		});
		spawn_bystander(machine);
		auto report = machine.run();
		const auto *victim = expect_faulted(report, "victim");
		EXPECT_FALSE(ran_past);
		if (victim) {
			EXPECT_TRUE(contains(victim->message, "page fault: write at " + hex(fault_address)))
					<< victim->message;
			EXPECT_TRUE(contains(victim->message, "(no mapping)")) << victim->message;
		}
	});
}

TEST(ThreadFaults, AWriteToAReadOnlyMappingEndsTheThreadFaulted) {
	in_both_modes([](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		fault_address = 0;
		ran_past = false;
		machine.spawn("victim", [](std::span<const HelHandle>) {
			HelHandle memory = kHelNullHandle;
			ASSERT_EQ(helAllocateMemory(kPage, 0, nullptr, &memory), kHelErrNone);
			void *p = nullptr;
			ASSERT_EQ(helMapMemory(memory, kHelNullHandle, nullptr, 0, kPage, kHelMapProtRead, &p),
					kHelErrNone);
			ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
			EXPECT_EQ(static_cast<volatile int *>(p)[0], 0) << "reading is allowed";
			fault_address = reinterpret_cast<std::uintptr_t>(p);
			static_cast<volatile int *>(p)[0] = 1;
			ran_past = true;
		});
		spawn_bystander(machine);
		auto report = machine.run();
		const auto *victim = expect_faulted(report, "victim");
		EXPECT_FALSE(ran_past);
		if (victim) {
			EXPECT_TRUE(contains(victim->message, "page fault: write at " + hex(fault_address)))
					<< victim->message;
			EXPECT_TRUE(contains(victim->message, "access not allowed")) << victim->message;
		}
	});
}

TEST(ThreadFaults, AWildPointerEndsTheThreadFaulted) {
	in_both_modes([](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		ran_past = false;
		machine.spawn("victim", [](std::span<const HelHandle>) {
			write_wild();
			ran_past = true;
		});
		spawn_bystander(machine);
		auto report = machine.run();
		const auto *victim = expect_faulted(report, "victim");
		EXPECT_FALSE(ran_past);
		if (victim) {
			EXPECT_TRUE(contains(victim->message, "page fault: write at 0x10 (no mapping)"))
					<< victim->message;
		}
	});
}

// The same wild write made by kernel code, here an extension syscall's handler: a syscall runs
// in kernel mode (the common entry path too), where a fault is helsim's own bug and ends the
// process instead of the thread.
HelError wild_write_handler(helsim::ext::Caller &, const HelWord *, HelWord *) {
	write_wild();
	return kHelErrNone;
}

TEST(ThreadFaultsDeathTest, AFaultInsideASyscallEndsTheProcess) {
	GTEST_FLAG_SET(death_test_style, "threadsafe"); // the child is a new process (re-exec)
	disable_core_dumps();
	EXPECT_DEATH(
			{
				helsim::Machine machine;
				helsim::ext::register_syscall(machine, helsim::kFirstExtensionSyscall, "test.wild",
						wild_write_handler);
				machine.spawn("caller", [](std::span<const HelHandle>) {
					(void)helSyscall0(static_cast<int>(helsim::kFirstExtensionSyscall));
				});
				(void)machine.run();
			},
			"");
}

// The instructions that fault without touching memory. Division in C++ with volatile operands
// (nothing to fold), exempt from UBSan's check so that the CPU is what sees it.
volatile int numerator = 7;
volatile int zero = 0;
volatile int quotient;
__attribute__((noinline, no_sanitize("integer-divide-by-zero"))) void divide_by_zero() {
	quotient = numerator / zero;
}

struct InstructionFault {
	const char *name;
	void (*raise)();
	unsigned observation;
	const char *message; // in the outcome message without an observer
	bool continues;      // resumed after the observation: goes on (int3) or ends faulted
};

const InstructionFault kInstructionFaults[] = {
		{"ud2", [] { asm volatile("ud2"); }, kHelObserveIllegalInstruction,
				"illegal instruction at pc 0x", false},
		{"divide", divide_by_zero, kHelObserveDivByZero, "integer division by zero", false},
		{"int3", [] { asm volatile("int3"); }, kHelObserveBreakpoint, "breakpoint (int3)", true},
		{"hlt", [] { asm volatile("hlt"); }, kHelObserveGeneralFault,
				"general protection fault at pc 0x", false},
};

class InstructionFaults : public ::testing::TestWithParam<InstructionFault> {};

const InstructionFault *current_fault;

TEST_P(InstructionFaults, EndTheThreadFaultedWithoutAnObserver) {
	current_fault = &GetParam();
	in_both_modes([](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		ran_past = false;
		machine.spawn("victim", [](std::span<const HelHandle>) {
			current_fault->raise();
			ran_past = true;
		});
		spawn_bystander(machine);
		auto report = machine.run();
		const auto *victim = expect_faulted(report, "victim");
		EXPECT_FALSE(ran_past);
		if (victim) {
			EXPECT_TRUE(contains(victim->message, current_fault->message)) << victim->message;
		}
	});
}

// Observed: the thread stops with the fault's observation; resumed, it goes on after an int3
// and ends faulted after any other instruction (it cannot complete).
TEST_P(InstructionFaults, AreObservedThenResumed) {
	current_fault = &GetParam();
	in_both_modes([](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		ran_past = false;
		HelObserveResult seen{-1, 0}, after{-1, 0};
		machine.spawn("supervisor", [&](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			HelHandle child = stopped_thread(+[](std::uintptr_t) {
				current_fault->raise();
				ran_past = true;
			});
			EXPECT_EQ(observe(d, child).observation, unsigned{kHelObserveInterrupt});
			EXPECT_EQ(helResume(child), kHelErrNone);
			seen = observe(d, child);
			EXPECT_EQ(helResume(child), kHelErrNone);
			after = observe(d, child);
		});
		auto report = machine.run();
		expect_clean(report, {ThreadOutcome::returned, ThreadOutcome::faulted});
		EXPECT_EQ(seen.error, kHelErrNone);
		EXPECT_EQ(seen.observation, current_fault->observation);
		EXPECT_EQ(after.error, kHelErrThreadTerminated);
		EXPECT_EQ(ran_past.load(), current_fault->continues);
		const auto *child = find_thread(report, "supervisor/thread");
		ASSERT_NE(child, nullptr) << report.to_string();
		if (current_fault->continues) {
			EXPECT_EQ(child->outcome, ThreadOutcome::returned) << child->message;
		} else {
			EXPECT_EQ(child->outcome, ThreadOutcome::faulted);
			EXPECT_TRUE(contains(child->message, "(resumed, but the instruction cannot complete)"))
					<< child->message;
		}
	});
}

INSTANTIATE_TEST_SUITE_P(ThreadFaults, InstructionFaults, ::testing::ValuesIn(kInstructionFaults),
		[](const ::testing::TestParamInfo<InstructionFault> &info) {
			return std::string{info.param.name};
		});

// ---------------------------------------------------------------- observed page faults

std::atomic<std::uintptr_t> hole; // a page-aligned address the child faults at
std::atomic<int> read_back;

// Maps a page, remembers its address and unmaps it again: the child faults there.
std::uintptr_t make_hole() {
	void *p = map_new_memory(kPage);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, kPage), kHelErrNone);
	return reinterpret_cast<std::uintptr_t>(p);
}

void write_to_hole(std::uintptr_t) {
	reinterpret_cast<volatile int *>(hole.load())[1] = 42;
	ran_past = true;
}

// The supervisor maps memory where the child faulted and resumes it: the write completes.
TEST(ThreadFaults, ASupervisorMapsThePageAndResumes) {
	in_both_modes([](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		ran_past = false;
		read_back = 0;
		std::array<HelWord, 2> page_fault{};
		HelObserveResult seen{-1, 0}, after{-1, 0};
		machine.spawn("supervisor", [&](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			hole = make_hole();
			HelHandle child = stopped_thread(write_to_hole);
			EXPECT_EQ(observe(d, child).observation, unsigned{kHelObserveInterrupt});
			EXPECT_EQ(helResume(child), kHelErrNone);
			seen = observe(d, child);
			EXPECT_EQ(helLoadRegisters(child, kHelRegsPageFault, page_fault.data()), kHelErrNone);
			HelHandle memory = kHelNullHandle;
			ASSERT_EQ(helAllocateMemory(kPage, 0, nullptr, &memory), kHelErrNone);
			void *at = reinterpret_cast<void *>(page_fault[0] & ~(kPage - 1));
			void *mapped = nullptr;
			EXPECT_EQ(helMapMemory(memory, kHelNullHandle, at, 0, kPage,
							  kHelMapProtRead | kHelMapProtWrite | kHelMapFixed, &mapped),
					kHelErrNone);
			EXPECT_EQ(mapped, at);
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
			EXPECT_EQ(helResume(child), kHelErrNone);
			after = observe(d, child);
			read_back = reinterpret_cast<volatile int *>(hole.load())[1];
		});
		auto report = machine.run();
		expect_clean(report);
		EXPECT_EQ(seen.error, kHelErrNone);
		EXPECT_EQ(seen.observation, unsigned{kHelObservePageFault});
		EXPECT_EQ(page_fault[0], hole + sizeof(int));
		EXPECT_EQ(page_fault[1], HelWord{kHelPageFaultMapError});
		EXPECT_EQ(after.error, kHelErrThreadTerminated);
		EXPECT_TRUE(ran_past);
		EXPECT_EQ(read_back, 42);
	});
}

// Resumed without a fix, the access faults and stops again; a kill then ends the thread
// (observers learn it from kHelErrThreadTerminated).
TEST(ThreadFaults, ASupervisorKillsAFaultedThread) {
	in_both_modes([](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		ran_past = false;
		std::array<HelWord, 2> page_fault{};
		HelObserveResult first{-1, 0}, again{-1, 0};
		HelError killed = -1, ended = -1;
		machine.spawn("supervisor", [&](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			hole = make_hole();
			HelHandle child = stopped_thread(write_to_hole);
			EXPECT_EQ(observe(d, child).observation, unsigned{kHelObserveInterrupt});
			EXPECT_EQ(helResume(child), kHelErrNone);
			first = observe(d, child);
			EXPECT_EQ(helResume(child), kHelErrNone);
			again = observe(d, child);
			EXPECT_EQ(helLoadRegisters(child, kHelRegsPageFault, page_fault.data()), kHelErrNone);
			killed = helKillThread(child);
			// No longer interrupted: this observe waits for the end (or sees it).
			ended = observe(d, child).error;
		});
		auto report = machine.run();
		expect_clean(report, {ThreadOutcome::returned, ThreadOutcome::killed});
		EXPECT_EQ(first.observation, unsigned{kHelObservePageFault});
		EXPECT_EQ(again.observation, unsigned{kHelObservePageFault}) << "the retry faulted again";
		EXPECT_EQ(page_fault[0], hole + sizeof(int));
		EXPECT_EQ(page_fault[1], HelWord{kHelPageFaultMapError});
		EXPECT_EQ(killed, kHelErrNone);
		EXPECT_EQ(ended, kHelErrThreadTerminated);
		EXPECT_FALSE(ran_past);
		const auto *child = find_thread(report, "supervisor/thread");
		ASSERT_NE(child, nullptr) << report.to_string();
		EXPECT_EQ(child->outcome, ThreadOutcome::killed);
	});
}

// The supervisor's answer as a POSIX kernel's SIGSEGV: it moves ip to a handler, which runs on
// the thread (its syscalls work inside the fault), maps the page itself and returns; the
// access is retried and completes.
std::atomic<int> upcalls;
void map_the_hole(HelWord, HelWord, HelWord, HelWord, HelWord, HelWord) {
	++upcalls;
	HelHandle memory = kHelNullHandle;
	ASSERT_EQ(helAllocateMemory(kPage, 0, nullptr, &memory), kHelErrNone);
	void *mapped = nullptr;
	EXPECT_EQ(helMapMemory(memory, kHelNullHandle, reinterpret_cast<void *>(hole.load()), 0, kPage,
					  kHelMapProtRead | kHelMapProtWrite | kHelMapFixed, &mapped),
			kHelErrNone);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
}

// Moves the stopped thread's ip to `upcall` and resumes it.
void resume_into(HelHandle thread,
		void (*upcall)(HelWord, HelWord, HelWord, HelWord, HelWord, HelWord)) {
	std::array<HelWord, 2> program{};
	ASSERT_EQ(helLoadRegisters(thread, kHelRegsProgram, program.data()), kHelErrNone);
	program[kHelRegIp] = reinterpret_cast<HelWord>(upcall);
	ASSERT_EQ(helStoreRegisters(thread, kHelRegsProgram, program.data()), kHelErrNone);
	ASSERT_EQ(helResume(thread), kHelErrNone);
}

TEST(ThreadFaults, AnUpcallMapsThePageThenTheAccessIsRetried) {
	in_both_modes([](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		ran_past = false;
		upcalls = 0;
		read_back = 0;
		HelObserveResult seen{-1, 0}, after{-1, 0};
		machine.spawn("supervisor", [&](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			hole = make_hole();
			HelHandle child = stopped_thread(write_to_hole);
			EXPECT_EQ(observe(d, child).observation, unsigned{kHelObserveInterrupt});
			EXPECT_EQ(helResume(child), kHelErrNone);
			seen = observe(d, child);
			resume_into(child, map_the_hole);
			after = observe(d, child);
			read_back = reinterpret_cast<volatile int *>(hole.load())[1];
		});
		expect_clean(machine.run());
		EXPECT_EQ(seen.observation, unsigned{kHelObservePageFault});
		EXPECT_EQ(after.error, kHelErrThreadTerminated);
		EXPECT_EQ(upcalls, 1);
		EXPECT_TRUE(ran_past);
		EXPECT_EQ(read_back, 42);
	});
}

// After an instruction fault an upcall runs too, but the thread cannot go back to the
// instruction: it ends faulted once the upcall returns.
void count_upcall(HelWord, HelWord, HelWord, HelWord, HelWord, HelWord) { ++upcalls; }

TEST(ThreadFaults, AfterAnInstructionFaultTheUpcallRunsThenTheThreadEnds) {
	in_both_modes([](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		ran_past = false;
		upcalls = 0;
		HelObserveResult seen{-1, 0};
		machine.spawn("supervisor", [&](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			HelHandle child = stopped_thread(+[](std::uintptr_t) {
				asm volatile("ud2");
				ran_past = true;
			});
			EXPECT_EQ(observe(d, child).observation, unsigned{kHelObserveInterrupt});
			EXPECT_EQ(helResume(child), kHelErrNone);
			seen = observe(d, child);
			resume_into(child, count_upcall);
			EXPECT_EQ(observe(d, child).error, kHelErrThreadTerminated);
		});
		auto report = machine.run();
		expect_clean(report, {ThreadOutcome::returned, ThreadOutcome::faulted});
		EXPECT_EQ(seen.observation, unsigned{kHelObserveIllegalInstruction});
		EXPECT_EQ(upcalls, 1);
		EXPECT_FALSE(ran_past);
		const auto *child = find_thread(report, "supervisor/thread");
		ASSERT_NE(child, nullptr) << report.to_string();
		EXPECT_EQ(child->outcome, ThreadOutcome::faulted);
	});
}

// A seed loop reports a faulted thread like any failure: with the seed and its replay command.
TEST(ThreadFaults, ASeedLoopReportsTheFaultingSeed) {
	std::int64_t failing = -2;
	std::string message;
	EXPECT_NONFATAL_FAILURE(failing = helsim::testing::first_failing_seed(
									[&](std::uint64_t seed) {
										helsim::Machine machine{
												helsim::testing::deterministic(seed)};
										machine.spawn("victim",
												[](std::span<const HelHandle>) { write_wild(); });
										auto report = machine.run();
										const auto *victim = find_thread(report, "victim");
										if (victim)
											message = victim->message;
										return !report.stuck && victim &&
												victim->outcome == ThreadOutcome::returned;
									},
									4),
			"replay it alone with");
	EXPECT_EQ(failing, 0);
	EXPECT_TRUE(contains(message, "page fault: write at 0x10 (no mapping)")) << message;
}

} // namespace
