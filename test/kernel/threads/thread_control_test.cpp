// Thread control (issue 11): supercall traps, register images and upcalls, helKillThread and
// the last handle, panics of supervised threads, the legacy helSubmitObserve.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <thread>

#include "../../support.hpp"
#include "thread_support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using namespace helsim::test;
using Gprs = std::array<HelWord, kHelNumGprs>;

constexpr std::uint32_t kSuperGetValue = 7; // the supercall the children below make

Gprs load_general(HelHandle thread) {
	Gprs g{};
	EXPECT_EQ(helLoadRegisters(thread, kHelRegsGeneral, g.data()), kHelErrNone);
	return g;
}

// ---------------------------------------------------------------- supercall traps

struct SupercallResult {
	HelError error = -1;
	HelWord out0 = 0, out1 = 0;
};
SupercallResult supercall_result;

void supercall_child(std::uintptr_t) {
	SupercallResult r;
	r.error = helSyscall2_2(kHelCallSuper + kSuperGetValue, 10, 20, &r.out0, &r.out1);
	supercall_result = r;
}

// The supervisor's side of one supercall: observe, load, answer from the image, resume.
void serve_one_supercall(helsim::Dispatcher &d, HelHandle child) {
	HelObserveResult seen = observe(d, child);
	ASSERT_EQ(seen.error, kHelErrNone);
	ASSERT_EQ(seen.observation, kHelObserveSuperCall + kSuperGetValue);
	Gprs g = load_general(child);
	EXPECT_EQ(g[kHelRegNumber], HelWord{kHelCallSuper + kSuperGetValue});
	EXPECT_EQ(g[kHelRegArg0], 10u);
	EXPECT_EQ(g[kHelRegArg1], 20u);
	// Out0/Out1 are the registers of Arg0/Arg1: compute before storing.
	HelWord sum = g[kHelRegArg0] + g[kHelRegArg1], product = g[kHelRegArg0] * g[kHelRegArg1];
	g[kHelRegError] = kHelErrNone;
	g[kHelRegOut0] = sum;
	g[kHelRegOut1] = product;
	EXPECT_EQ(helStoreRegisters(child, kHelRegsGeneral, g.data()), kHelErrNone);
	EXPECT_EQ(helResume(child), kHelErrNone);
}

// Issue 11, item 3: without the inline handler a supercall stops the caller with
// kHelObserveSuperCall + n and its arguments in the image; the supervisor's stored Error and
// Out words are what the call returns. In both modes, every seed.
TEST(Supercall, TrapsToTheSupervisorWhoAnswersFromTheImage) {
	auto run = [](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		supercall_result = {};
		machine.spawn("supervisor", [](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			HelHandle child = stopped_thread(supercall_child);
			EXPECT_EQ(observe(d, child).observation, unsigned{kHelObserveInterrupt});
			EXPECT_EQ(helResume(child), kHelErrNone);
			serve_one_supercall(d, child);
			d.submit(kHelSubmitObserve, 2, HelSqObserve{child});
			d.flush();
			EXPECT_EQ(wait_for(d, 2).error(), kHelErrThreadTerminated);
		});
		expect_clean(machine.run());
		EXPECT_EQ(supercall_result.error, kHelErrNone);
		EXPECT_EQ(supercall_result.out0, 30u);
		EXPECT_EQ(supercall_result.out1, 200u);
	};
	run({});
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) { run(helsim::testing::deterministic(seed)); }, 16);
}

// A supercall nobody serves leaves its thread stopped: the stuck report says so.
TEST(Supercall, AnUnservedTrapIsReportedAsInterrupted) {
	helsim::Machine machine;
	machine.spawn("caller", [](std::span<const HelHandle>) { supercall_child(0); });
	auto report = machine.run();
	ASSERT_TRUE(report.stuck) << report.to_string();
	const auto *caller = find_thread(report, "caller");
	ASSERT_NE(caller, nullptr);
	EXPECT_EQ(caller->waits_on,
			"stopped at supercall 7 (kHelCallSuper + 7), waiting for helResume");
}

// The inline handler is the explicit opt-in: with it, nothing traps.
TEST(Supercall, TheInlineHandlerIsAnOptIn) {
	helsim::Machine machine;
	helsim::ext::set_supercall_handler(machine,
			[](helsim::ext::Caller &, std::uint32_t, const HelWord *args, HelWord *outs) {
				outs[0] = args[0] + args[1];
				outs[1] = args[0] * args[1];
				return kHelErrNone;
			});
	supercall_result = {};
	machine.spawn("caller", [](std::span<const HelHandle>) { supercall_child(0); });
	expect_clean(machine.run());
	EXPECT_EQ(supercall_result.out0, 30u);
	EXPECT_EQ(supercall_result.out1, 200u);
}

// A handler answers what it knows inline and declines the rest with ext::kSupercallTrap: those
// trap to the supervisor as without a handler. It tells callers apart by their credentials.
TEST(Supercall, TheInlineHandlerMayDeclineAndSeesCredentials) {
	helsim::Machine machine;
	std::array<char, 16> seen{};
	std::atomic<int> declined{0};
	helsim::ext::set_supercall_handler(machine,
			[&](helsim::ext::Caller &caller, std::uint32_t number, const HelWord *,
					HelWord *outs) -> HelError {
				if (number == kHelCallSuper + kSuperGetValue) {
					declined.fetch_add(1);
					return helsim::ext::kSupercallTrap;
				}
				seen = caller.credentials();
				outs[0] = 77;
				return kHelErrNone;
			});
	supercall_result = {};
	std::array<char, 16> expected{};
	machine.spawn("supervisor", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		HelHandle child = stopped_thread(+[](std::uintptr_t) {
			HelWord out = 0;
			EXPECT_EQ(helSyscall0_1(static_cast<int>(kHelCallSuper + 1), &out), kHelErrNone);
			EXPECT_EQ(out, 77u);
			supercall_child(0);
		});
		EXPECT_EQ(helGetCredentials(child, 0, expected.data()), kHelErrNone);
		EXPECT_EQ(observe(d, child).observation, unsigned{kHelObserveInterrupt});
		EXPECT_EQ(helResume(child), kHelErrNone);
		serve_one_supercall(d, child);
		d.submit(kHelSubmitObserve, 2, HelSqObserve{child});
		d.flush();
		EXPECT_EQ(wait_for(d, 2).error(), kHelErrThreadTerminated);
	});
	expect_clean(machine.run());
	EXPECT_EQ(declined.load(), 1);
	EXPECT_EQ(seen, expected);
	EXPECT_EQ(supercall_result.out0, 30u);
	EXPECT_EQ(supercall_result.out1, 200u);
}

// ---------------------------------------------------------------- registers

TEST(Registers, Errors) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle child = stopped_thread(+[](std::uintptr_t) {});
	HelHandle token = kHelNullHandle;
	ASSERT_EQ(helCreateToken(&token), kHelErrNone);
	std::array<HelWord, 19> words{};
	EXPECT_EQ(helLoadRegisters(12345, kHelRegsGeneral, words.data()), kHelErrNoDescriptor);
	EXPECT_EQ(helLoadRegisters(kHelThisThread, kHelRegsGeneral, words.data()), kHelErrNoDescriptor);
	EXPECT_EQ(helLoadRegisters(token, kHelRegsGeneral, words.data()), kHelErrBadDescriptor);
	EXPECT_EQ(helLoadRegisters(narrowed(child, kHelRightsMax & ~kHelRightRead), kHelRegsGeneral,
					  words.data()),
			kHelErrBadRights);
	EXPECT_EQ(helStoreRegisters(narrowed(child, kHelRightsMax & ~kHelRightWrite), kHelRegsGeneral,
					  words.data()),
			kHelErrBadRights);
	for (int set : {0, int{kHelRegsDebug}, int{kHelRegsVirtualization}, 9, -1}) {
		EXPECT_EQ(helLoadRegisters(child, set, words.data()), kHelErrIllegalArgs) << set;
		EXPECT_EQ(helStoreRegisters(child, set, words.data()), kHelErrIllegalArgs) << set;
	}
	EXPECT_EQ(helStoreRegisters(child, kHelRegsPageFault, words.data()), kHelErrIllegalArgs)
			<< "load only";
	EXPECT_EQ(helLoadRegisters(child, kHelRegsPageFault, words.data()), kHelErrNone);
	EXPECT_EQ(helLoadRegisters(child, kHelRegsSimd, nullptr), kHelErrNone) << "0 bytes";
	EXPECT_EQ(helLoadRegisters(child, kHelRegsGeneral, nullptr), kHelErrFault);
	EXPECT_EQ(helStoreRegisters(child, kHelRegsGeneral, nullptr), kHelErrFault);
	EXPECT_EQ(helLoadRegisters(narrowed(child, kHelRightRead), kHelRegsGeneral, words.data()),
			kHelErrNone)
			<< "Read is all a load needs";
	EXPECT_EQ(helStoreRegisters(narrowed(child, kHelRightWrite), kHelRegsGeneral, words.data()),
			kHelErrNone)
			<< "Write is all a store needs";
	EXPECT_EQ(helKillThread(child), kHelErrNone);
	EXPECT_EQ(helLoadRegisters(child, kHelRegsGeneral, words.data()), kHelErrThreadTerminated);
	EXPECT_EQ(helStoreRegisters(child, kHelRegsGeneral, words.data()), kHelErrThreadTerminated);
}

// Registers of a thread that is not interrupted cannot be loaded or stored (thor: IllegalState).
TEST(Registers, ARunningThreadsAreIllegalState) {
	helsim::Machine machine;
	static int word;
	word = 0;
	HelError load = -1, store = -1;
	machine.spawn("supervisor", [&](std::span<const HelHandle>) {
		HelHandle child = running_thread(+[](std::uintptr_t) {
			while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) == 0)
				(void)helFutexWait(&word, 0, kHelWaitInfinite);
		});
		Gprs g{};
		load = helLoadRegisters(child, kHelRegsGeneral, g.data());
		store = helStoreRegisters(child, kHelRegsGeneral, g.data());
		set_and_wake(&word, 1);
	});
	expect_clean(machine.run());
	EXPECT_EQ(load, kHelErrIllegalState);
	EXPECT_EQ(store, kHelErrIllegalState);
}

std::uintptr_t started_with;
void record_argument(std::uintptr_t argument) { started_with = argument; }
void other_entry(std::uintptr_t argument) { started_with = argument + 1000; }

// A stopped thread's Program set is helCreateThread's {ip, sp}; a store moves where it starts.
TEST(Registers, AStoppedThreadStartsAtItsImagesIpAndSp) {
	helsim::Machine machine;
	started_with = 0;
	machine.spawn("supervisor", [](std::span<const HelHandle>) {
		HelHandle child = stopped_thread(record_argument, 5);
		std::array<HelWord, 2> program{};
		EXPECT_EQ(helLoadRegisters(child, kHelRegsProgram, program.data()), kHelErrNone);
		EXPECT_EQ(program[kHelRegIp], reinterpret_cast<HelWord>(&record_argument));
		EXPECT_EQ(program[kHelRegSp], 5u);
		program = {reinterpret_cast<HelWord>(&other_entry), 6};
		EXPECT_EQ(helStoreRegisters(child, kHelRegsProgram, program.data()), kHelErrNone);
		EXPECT_EQ(helResume(child), kHelErrNone);
	});
	expect_clean(machine.run());
	EXPECT_EQ(started_with, 1006u);
}

std::uintptr_t fs_seen, gs_seen;

// The Thread set is the thread's fs and gs words, both ways.
TEST(Registers, TheThreadSetIsTheFsAndGsWords) {
	helsim::Machine machine;
	fs_seen = gs_seen = 0;
	std::array<HelWord, 2> loaded{};
	machine.spawn("supervisor", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		HelHandle child = stopped_thread(+[](std::uintptr_t) {
			EXPECT_EQ(helWriteFsBase(reinterpret_cast<void *>(0x1000)), kHelErrNone);
			EXPECT_EQ(helWriteGsBase(reinterpret_cast<void *>(0x2000)), kHelErrNone);
			supercall_child(0);
			void *fs = nullptr, *gs = nullptr;
			EXPECT_EQ(helReadFsBase(&fs), kHelErrNone);
			EXPECT_EQ(helReadGsBase(&gs), kHelErrNone);
			fs_seen = reinterpret_cast<std::uintptr_t>(fs);
			gs_seen = reinterpret_cast<std::uintptr_t>(gs);
		});
		EXPECT_EQ(helResume(child), kHelErrNone);
		EXPECT_EQ(observe(d, child).observation, kHelObserveSuperCall + kSuperGetValue);
		EXPECT_EQ(helLoadRegisters(child, kHelRegsThread, loaded.data()), kHelErrNone);
		std::array<HelWord, 2> moved{0x3000, 0x4000};
		EXPECT_EQ(helStoreRegisters(child, kHelRegsThread, moved.data()), kHelErrNone);
		EXPECT_EQ(helResume(child), kHelErrNone);
	});
	expect_clean(machine.run());
	EXPECT_EQ(loaded[0], 0x1000u);
	EXPECT_EQ(loaded[1], 0x2000u);
	EXPECT_EQ(fs_seen, 0x3000u);
	EXPECT_EQ(gs_seen, 0x4000u);
}

// The Signal set is thor's signal frame order over the same image: r8..r15, rdi, rsi, rbp,
// rbx, rdx, rax, rcx, rsp, rip, rflags, cs.
TEST(Registers, TheSignalSetIsTheGeneralAndProgramSetsInFrameOrder) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle child = stopped_thread(+[](std::uintptr_t) {});
	Gprs g{};
	for (int i = 0; i < kHelNumGprs; ++i)
		g[i] = 100 + i;
	ASSERT_EQ(helStoreRegisters(child, kHelRegsGeneral, g.data()), kHelErrNone);
	std::array<HelWord, 2> program{0x5000, 0x6000};
	ASSERT_EQ(helStoreRegisters(child, kHelRegsProgram, program.data()), kHelErrNone);
	std::array<HelWord, 19> signal{};
	HelRegisterInfo info{};
	ASSERT_EQ(helQueryRegisterInfo(kHelRegsSignal, &info), kHelErrNone);
	ASSERT_EQ(info.setSize, static_cast<int>(sizeof(signal)));
	ASSERT_EQ(helLoadRegisters(child, kHelRegsSignal, signal.data()), kHelErrNone);
	const int order[] = {kHelRegR8, kHelRegR9, kHelRegR10, kHelRegR11, kHelRegR12, kHelRegR13,
			kHelRegR14, kHelRegR15, kHelRegRdi, kHelRegRsi, kHelRegRbp, kHelRegRbx, kHelRegRdx,
			kHelRegRax, kHelRegRcx};
	for (int i = 0; i < 15; ++i)
		EXPECT_EQ(signal[i], HelWord(100 + order[i])) << i;
	EXPECT_EQ(signal[15], 0x6000u) << "rsp";
	EXPECT_EQ(signal[16], 0x5000u) << "rip";
	EXPECT_EQ(signal[17], 0x202u) << "rflags";
	signal[9] = 7; // the frame's rsi
	ASSERT_EQ(helStoreRegisters(child, kHelRegsSignal, signal.data()), kHelErrNone);
	EXPECT_EQ(load_general(child)[kHelRegRsi], 7u);
	EXPECT_EQ(helKillThread(child), kHelErrNone);
}

// An interrupt taken at a syscall's exit shows the call's error in the image, and the call
// returns what the supervisor stores there. (An interrupt taken at the entry instead shows the
// call's number; the supervisor then resumes and tries again.)
TEST(Registers, AnInterruptedCallReturnsTheImagesError) {
	auto run = [](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		static int word;
		static HelError returned;
		word = 0;
		returned = -1;
		machine.spawn("supervisor", [](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			HelHandle child = running_thread(+[](std::uintptr_t) {
				HelError e;
				do
					e = helFutexWait(&word, 0, kHelWaitInfinite);
				while (e == kHelErrNone);
				returned = e;
			});
			for (int round = 0; round < 1000; ++round) {
				(void)helYield();
				ASSERT_EQ(helInterruptThread(child), kHelErrNone);
				ASSERT_EQ(observe(d, child).observation, unsigned{kHelObserveInterrupt});
				Gprs g = load_general(child);
				if (g[kHelRegError] == static_cast<HelWord>(kHelErrCancelled)) {
					g[kHelRegError] = static_cast<HelWord>(kHelErrIllegalArgs);
					ASSERT_EQ(helStoreRegisters(child, kHelRegsGeneral, g.data()), kHelErrNone);
					ASSERT_EQ(helResume(child), kHelErrNone);
					break;
				}
				EXPECT_EQ(g[kHelRegNumber], HelWord{kHelCallFutexWait}) << "an entry stop";
				ASSERT_EQ(helResume(child), kHelErrNone);
			}
		});
		expect_clean(machine.run());
		EXPECT_EQ(returned, kHelErrIllegalArgs);
	};
	run({});
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) { run(helsim::testing::deterministic(seed)); }, 16);
}

// ---------------------------------------------------------------- upcalls

struct UpcallSeen {
	HelWord args[6]{};
	std::uintptr_t fs = 0;
	int calls = 0;
};
UpcallSeen upcall_seen;

void upcall(HelWord a0, HelWord a1, HelWord a2, HelWord a3, HelWord a4, HelWord a5) {
	upcall_seen = {{a0, a1, a2, a3, a4, a5}, 0, upcall_seen.calls + 1};
	void *fs = nullptr;
	EXPECT_EQ(helReadFsBase(&fs), kHelErrNone) << "an upcall may make syscalls";
	upcall_seen.fs = reinterpret_cast<std::uintptr_t>(fs);
}

// Issue 11, item 4: storing an ip other than the trap's makes the resumed thread call it with
// the argument registers, on its own stack; then the trap returns with the General registers
// saved when ip was moved (the supervisor's answer), as a signal frame would restore them.
TEST(Upcall, RunsOnTheThreadThenTheTrapReturnsTheSavedAnswer) {
	auto run = [](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		supercall_result = {};
		upcall_seen = {};
		machine.spawn("supervisor", [](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			HelHandle child = stopped_thread(+[](std::uintptr_t) {
				EXPECT_EQ(helWriteFsBase(reinterpret_cast<void *>(0x7000)), kHelErrNone);
				supercall_child(0);
			});
			EXPECT_EQ(helResume(child), kHelErrNone);
			ASSERT_EQ(observe(d, child).observation, kHelObserveSuperCall + kSuperGetValue);
			Gprs g = load_general(child);
			g[kHelRegError] = kHelErrNone;
			g[kHelRegOut0] = 42;
			g[kHelRegOut1] = 43;
			ASSERT_EQ(helStoreRegisters(child, kHelRegsGeneral, g.data()), kHelErrNone);
			std::array<HelWord, 2> program{};
			ASSERT_EQ(helLoadRegisters(child, kHelRegsProgram, program.data()), kHelErrNone);
			program[kHelRegIp] = reinterpret_cast<HelWord>(&upcall);
			ASSERT_EQ(helStoreRegisters(child, kHelRegsProgram, program.data()), kHelErrNone);
			const int args[] = {kHelRegArg0, kHelRegArg1, kHelRegArg2, kHelRegArg3, kHelRegArg4,
					kHelRegArg5};
			for (int i = 0; i < 6; ++i)
				g[args[i]] = 11 + i;
			ASSERT_EQ(helStoreRegisters(child, kHelRegsGeneral, g.data()), kHelErrNone);
			ASSERT_EQ(helResume(child), kHelErrNone);
			d.submit(kHelSubmitObserve, 2, HelSqObserve{child});
			d.flush();
			EXPECT_EQ(wait_for(d, 2).error(), kHelErrThreadTerminated);
		});
		expect_clean(machine.run());
		EXPECT_EQ(upcall_seen.calls, 1);
		for (int i = 0; i < 6; ++i)
			EXPECT_EQ(upcall_seen.args[i], HelWord(11 + i)) << i;
		EXPECT_EQ(upcall_seen.fs, 0x7000u) << "the upcall runs as the thread itself";
		EXPECT_EQ(supercall_result.error, kHelErrNone);
		EXPECT_EQ(supercall_result.out0, 42u);
		EXPECT_EQ(supercall_result.out1, 43u);
	};
	run({});
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) { run(helsim::testing::deterministic(seed)); }, 8);
}

// ---------------------------------------------------------------- kill

struct Destructed {
	bool *flag;
	~Destructed() { *flag = true; }
};

// Issue 11, item 5: helKillThread unwinds a thread blocked in an interruptible wait (its
// destructors run), completes its observers with kHelErrThreadTerminated and reports it killed.
TEST(Kill, UnwindsABlockedThreadAndTerminatesItsObservers) {
	auto run = [](helsim::MachineConfig config) {
		helsim::Machine machine{config};
		static int word;
		static bool unwound;
		static bool ran_past;
		word = 0;
		unwound = ran_past = false;
		HelError kill = -1, again = -1;
		HelObserveResult seen{-1, 0};
		machine.spawn("supervisor", [&](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			HelHandle child = running_thread(+[](std::uintptr_t) {
				Destructed guard{&unwound};
				while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) == 0)
					(void)helFutexWait(&word, 0, kHelWaitInfinite);
				ran_past = true;
			});
			d.submit(kHelSubmitObserve, 4, HelSqObserve{child});
			d.flush();
			(void)helYield();
			kill = helKillThread(child);
			seen = wait_for(d, 4).as<HelObserveResult>();
			again = helKillThread(child);
			EXPECT_EQ(helResume(child), kHelErrThreadTerminated);
			EXPECT_EQ(helInterruptThread(child), kHelErrThreadTerminated);
		});
		auto report = machine.run();
		expect_clean(report, {helsim::ThreadOutcome::returned, helsim::ThreadOutcome::killed});
		EXPECT_EQ(kill, kHelErrNone);
		EXPECT_EQ(again, kHelErrNone) << "killing an ended thread is no error";
		EXPECT_EQ(seen.error, kHelErrThreadTerminated);
		EXPECT_TRUE(unwound);
		EXPECT_FALSE(ran_past);
		const auto *child = find_thread(report, "supervisor/thread");
		ASSERT_NE(child, nullptr);
		EXPECT_EQ(child->outcome, helsim::ThreadOutcome::killed);
	};
	run({});
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) { run(helsim::testing::deterministic(seed)); }, 16);
}

// A stopped thread that never ran ends on the spot; an interrupted one unwinds from its stop.
TEST(Kill, StoppedAndInterruptedThreads) {
	helsim::Machine machine;
	static bool ran;
	static bool unwound;
	ran = unwound = false;
	machine.spawn("supervisor", [](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		HelHandle never = stopped_thread(+[](std::uintptr_t) { ran = true; });
		EXPECT_EQ(helKillThread(never), kHelErrNone);
		EXPECT_EQ(observe(d, never).error, kHelErrThreadTerminated);
		EXPECT_EQ(helResume(never), kHelErrThreadTerminated);
		HelHandle trapped = stopped_thread(+[](std::uintptr_t) {
			Destructed guard{&unwound};
			supercall_child(0);
			ran = true;
		});
		EXPECT_EQ(helResume(trapped), kHelErrNone);
		EXPECT_EQ(observe(d, trapped).observation, kHelObserveSuperCall + kSuperGetValue);
		EXPECT_EQ(helKillThread(trapped), kHelErrNone);
		d.submit(kHelSubmitObserve, 8, HelSqObserve{trapped});
		d.flush();
		EXPECT_EQ(wait_for(d, 8).error(), kHelErrThreadTerminated);
	});
	auto report = machine.run();
	expect_clean(report, {helsim::ThreadOutcome::returned, helsim::ThreadOutcome::killed});
	EXPECT_FALSE(ran);
	EXPECT_TRUE(unwound);
	int killed = 0;
	for (const auto &t : report.threads)
		killed += t.outcome == helsim::ThreadOutcome::killed;
	EXPECT_EQ(killed, 2) << report.to_string();
}

// Closing the last handle to a thread kills it (thor's ActiveHandle): a thread blocked for
// ever does not keep the machine from finishing.
TEST(Kill, ClosingTheLastHandleKillsTheThread) {
	helsim::Machine machine;
	static int never;
	static bool unwound;
	unwound = false;
	machine.spawn("supervisor", [](std::span<const HelHandle>) {
		HelHandle child = running_thread(+[](std::uintptr_t) {
			Destructed guard{&unwound};
			for (;;)
				(void)helFutexWait(&never, 0, kHelWaitInfinite);
		});
		HelHandle second = kHelNullHandle;
		EXPECT_EQ(helTransferDescriptor(child, kHelThisUniverse, kHelTransferDescriptorOut,
						  kHelRightsMax, 0, &second),
				kHelErrNone);
		(void)helYield();
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, child), kHelErrNone);
		(void)helYield();
		EXPECT_FALSE(unwound) << "a second handle keeps it alive";
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, second), kHelErrNone);
	});
	auto report = machine.run();
	expect_clean(report, {helsim::ThreadOutcome::returned, helsim::ThreadOutcome::killed});
	EXPECT_TRUE(unwound);
}

TEST(Kill, Errors) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle child = stopped_thread(+[](std::uintptr_t) {});
	HelHandle token = kHelNullHandle;
	ASSERT_EQ(helCreateToken(&token), kHelErrNone);
	EXPECT_EQ(helKillThread(12345), kHelErrNoDescriptor);
	EXPECT_EQ(helKillThread(kHelThisThread), kHelErrNoDescriptor) << "as thor: no special case";
	EXPECT_EQ(helKillThread(token), kHelErrBadDescriptor);
	EXPECT_EQ(helKillThread(narrowed(child, kHelRightsMax & ~kHelRightManage)), kHelErrBadRights);
	EXPECT_EQ(helKillThread(narrowed(child, kHelRightManage)), kHelErrNone);
}

// An attached host thread cannot be unwound: once killed, its syscalls fail.
TEST(Kill, AnAttachedThreadsSyscallsFailOnceKilled) {
	helsim::Machine machine;
	HelError kill = -1, after = -1;
	std::thread host{[&] {
		auto victim = machine.attach();
		HelHandle self = kHelNullHandle;
		ASSERT_EQ(helsim::ext::self_handle(self), kHelErrNone);
		kill = helKillThread(self); // fails at its own exit already
		after = helNop();
	}};
	host.join();
	EXPECT_EQ(kill, kHelErrThreadTerminated);
	EXPECT_EQ(after, kHelErrThreadTerminated);
}

// ---------------------------------------------------------------- panics and legacy observe

// helPanic in a thread that has been observed stops it with kHelObservePanic (the message in
// Arg0/Arg1); once resumed it ends panicked, as helPanic never returns.
TEST(Panic, ASupervisedThreadStopsWithPanicFirst) {
	helsim::Machine machine;
	static const char message[] = "bad state";
	HelObserveResult seen{};
	Gprs g{};
	machine.spawn("supervisor", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		HelHandle child =
				stopped_thread(+[](std::uintptr_t) { helPanic(message, sizeof(message) - 1); });
		EXPECT_EQ(observe(d, child).observation, unsigned{kHelObserveInterrupt});
		EXPECT_EQ(helResume(child), kHelErrNone);
		seen = observe(d, child);
		g = load_general(child);
		EXPECT_EQ(helResume(child), kHelErrNone);
		d.submit(kHelSubmitObserve, 2, HelSqObserve{child});
		d.flush();
		EXPECT_EQ(wait_for(d, 2).error(), kHelErrThreadTerminated);
	});
	auto report = machine.run();
	EXPECT_EQ(seen.observation, unsigned{kHelObservePanic});
	EXPECT_EQ(g[kHelRegArg0], reinterpret_cast<HelWord>(message));
	EXPECT_EQ(g[kHelRegArg1], sizeof(message) - 1);
	const auto *child = find_thread(report, "supervisor/thread");
	ASSERT_NE(child, nullptr);
	EXPECT_EQ(child->outcome, helsim::ThreadOutcome::panicked);
	EXPECT_EQ(child->message, "bad state");
}

// The 2022 helSubmitObserve: the SQ operation, its errors returned by the call.
TEST(LegacyObserve, CompletesLikeTheSqOperation) {
	helsim::Machine machine;
	auto attached = machine.attach();
	helsim::Dispatcher d;
	HelHandle child = stopped_thread(+[](std::uintptr_t) {});
	EXPECT_EQ(helSubmitObserve(child, 99, d.queue(), 5), kHelErrNone);
	auto element = wait_for(d, 5);
	EXPECT_EQ(element.error(), kHelErrNone);
	EXPECT_EQ(element.as<HelObserveResult>().observation, unsigned{kHelObserveInterrupt});
	EXPECT_EQ(element.payload().size(), sizeof(HelObserveResult)) << "the 8-byte layout";
	EXPECT_EQ(helSubmitObserve(child, 0, 12345, 5), kHelErrNoDescriptor) << "the queue";
	EXPECT_EQ(helSubmitObserve(12345, 0, d.queue(), 5), kHelErrNoDescriptor) << "the thread";
	EXPECT_EQ(helSubmitObserve(narrowed(child, kHelRightsMax & ~kHelRightWait), 0, d.queue(), 5),
			kHelErrBadRights);
	EXPECT_EQ(helKillThread(child), kHelErrNone);
}

} // namespace

namespace {

// Item 7 for kills: a kill racing a supercall trap, an interrupt and a resume, under seeds. The
// child traps in a loop; the supervisor answers some traps, interrupts, and kills at a point
// the seed decides. Whatever the order, the child ends killed, every observe completes once,
// and nothing is left pending.
TEST(Kill, RacingTrapsInterruptsAndResumesUnderSeeds) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				helsim::MachineConfig config = helsim::testing::deterministic(seed);
				config.cpus = 2;
				helsim::Machine machine{config};
				machine.spawn("supervisor", [seed](std::span<const HelHandle>) {
					helsim::Dispatcher d;
					HelHandle child = running_thread(+[](std::uintptr_t) {
						for (;;) {
							HelWord a, b;
							(void)helSyscall2_2(kHelCallSuper + kSuperGetValue, 1, 2, &a, &b);
						}
					});
					const int answered = static_cast<int>(seed % 4);
					for (int i = 0; i < answered; ++i) {
						HelObserveResult seen = observe(d, child);
						ASSERT_EQ(seen.error, kHelErrNone);
						EXPECT_EQ(helResume(child), kHelErrNone);
					}
					EXPECT_EQ(helInterruptThread(child), kHelErrNone);
					(void)helYield();
					EXPECT_EQ(helKillThread(child), kHelErrNone);
					HelError resume = helResume(child);
					EXPECT_TRUE(resume == kHelErrIllegalState || resume == kHelErrThreadTerminated)
							<< resume;
					d.submit(kHelSubmitObserve, 1, HelSqObserve{child});
					d.flush();
					EXPECT_EQ(wait_for(d, 1).error(), kHelErrThreadTerminated);
				});
				auto report = machine.run();
				expect_clean(report,
						{helsim::ThreadOutcome::returned, helsim::ThreadOutcome::killed});
				const auto *child = find_thread(report, "supervisor/thread");
				ASSERT_NE(child, nullptr);
				EXPECT_EQ(child->outcome, helsim::ThreadOutcome::killed);
			},
			32);
}

} // namespace

namespace {

// An attached host thread traps like a fiber: its host thread parks until the supervisor (a
// fiber, holding a handle from helsim::ext::self_handle) answers and resumes it.
TEST(Supercall, AnAttachedThreadTrapsToo) {
	helsim::Machine machine;
	std::atomic<HelHandle> published{kHelNullHandle};
	SupercallResult got;
	std::thread host{[&] {
		auto attached = machine.attach(); // the root universe
		HelHandle self = kHelNullHandle;
		ASSERT_EQ(helsim::ext::self_handle(self), kHelErrNone);
		published.store(self);
		got.error = helSyscall2_2(kHelCallSuper + kSuperGetValue, 10, 20, &got.out0, &got.out1);
	}};
	HelHandle handle;
	while ((handle = published.load()) == kHelNullHandle)
		std::this_thread::yield(); // the host thread attaches first
	machine.spawn("supervisor",
			[](std::span<const HelHandle> handles) {
				helsim::Dispatcher d;
				serve_one_supercall(d, handles[0]);
			},
			{handle});
	expect_clean(machine.run());
	host.join();
	EXPECT_EQ(got.error, kHelErrNone);
	EXPECT_EQ(got.out0, 30u);
	EXPECT_EQ(got.out1, 200u);
}

} // namespace
