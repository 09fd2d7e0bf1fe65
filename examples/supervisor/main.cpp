// supervisor: a thread that runs a child in its own universe and address space and controls it
// the way a Managarm POSIX server controls a process: it starts the child stopped, serves its
// supercalls from the child's register image, interrupts a futex wait and finally kills it.
//
// The child has no handle of the supervisor's universe (its universe is new and empty), so
// supercalls are its only way to ask for anything. Its futex word is a host global: memory
// outside helsim's window is host memory that every space reaches (docs/memory.md, default
// mode), so a new space needs no mapping for it.
#include <array>
#include <cstdint>
#include <cstdio>
#include <span>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

// The child's supercalls: kHelCallSuper + n traps with observation kHelObserveSuperCall + n.
constexpr int kSuperGetPid = 1; // -> Out0: the pid the supervisor gave the child
constexpr int kSuperDivide = 2; // (a, b) -> Out0 = a / b, Out1 = a % b; IllegalArgs if b == 0
constexpr int kSuperReport = 3; // (error): the child tells how its futex wait ended

constexpr HelWord kChildPid = 2; // the supervisor's choice (it would be pid 1 itself)

int failures = 0;
void expect(bool ok, const char *what) {
	if (!ok) {
		std::printf("FAILED: %s\n", what);
		++failures;
	}
}

const char *error_name(HelError e) {
	const char *name = _helErrorString(e);
	return name ? name : "(unknown)";
}

int futex_word = 0; // nobody ever wakes it: only an interrupt or a kill ends the child's waits

// Unwinding by helKillThread runs the child's destructors.
struct Farewell {
	~Farewell() { std::printf("child: unwound by the kill\n"); }
};

void child(std::uintptr_t) {
	Farewell farewell;
	HelWord pid = 0;
	HelError e = helSyscall0_1(kHelCallSuper + kSuperGetPid, &pid);
	std::printf("child: getpid -> error %d, pid %lu\n", e, static_cast<unsigned long>(pid));
	expect(e == kHelErrNone && pid == kChildPid, "getpid answers the child's pid");
	HelWord quotient = 0, remainder = 0;
	e = helSyscall2_2(kHelCallSuper + kSuperDivide, 17, 5, &quotient, &remainder);
	std::printf("child: divide(17, 5) -> error %d, %lu rest %lu\n", e,
			static_cast<unsigned long>(quotient), static_cast<unsigned long>(remainder));
	expect(e == kHelErrNone && quotient == 3 && remainder == 2, "17 / 5 is 3 rest 2");
	e = helSyscall2_2(kHelCallSuper + kSuperDivide, 1, 0, &quotient, &remainder);
	std::printf("child: divide(1, 0) -> %s\n", error_name(e));
	expect(e == kHelErrIllegalArgs, "dividing by 0 fails with the supervisor's error");
	// Blocks until the supervisor's interrupt cancels the wait (the word stays 0, so no race).
	e = helFutexWait(&futex_word, 0, kHelWaitInfinite);
	std::printf("child: helFutexWait -> %s\n", error_name(e));
	expect(e == kHelErrCancelled, "the interrupt cancels the futex wait");
	(void)helSyscall1(kHelCallSuper + kSuperReport, static_cast<HelWord>(e));
	for (;;) // a cancellation point: helKillThread unwinds the child here
		(void)helFutexWait(&futex_word, 0, kHelWaitInfinite);
}

HelObserveResult observe(helsim::Dispatcher &d, HelHandle thread) {
	static std::uintptr_t context = 0;
	d.submit(kHelSubmitObserve, ++context, HelSqObserve{thread});
	d.flush();
	for (;;) {
		auto element = d.wait();
		if (element && (element->context() == context || element->context() == ~std::uintptr_t{0}))
			return element->as<HelObserveResult>();
	}
}

using Gprs = std::array<HelWord, kHelNumGprs>;

// One supercall: observe the trap, answer from the register image, resume. Returns n.
int serve_supercall(helsim::Dispatcher &d, HelHandle thread) {
	HelObserveResult seen = observe(d, thread);
	expect(seen.error == kHelErrNone && seen.observation >= kHelObserveSuperCall,
			"the child traps with a supercall");
	int n = static_cast<int>(seen.observation - kHelObserveSuperCall);
	Gprs g{};
	expect(helLoadRegisters(thread, kHelRegsGeneral, g.data()) == kHelErrNone, "load General");
	expect(g[kHelRegNumber] == static_cast<std::uint32_t>(kHelCallSuper + n), "the number");
	// Out0..2 are the registers of Arg0..2: read the arguments before writing any result.
	HelWord a = g[kHelRegArg0], b = g[kHelRegArg1];
	HelError error = kHelErrNone;
	if (n == kSuperGetPid) {
		std::printf("supervisor: supercall getpid, answering %lu\n",
				static_cast<unsigned long>(kChildPid));
		g[kHelRegOut0] = kChildPid;
	} else if (n == kSuperDivide) {
		std::printf("supervisor: supercall divide(%lu, %lu)\n", static_cast<unsigned long>(a),
				static_cast<unsigned long>(b));
		if (b == 0) {
			error = kHelErrIllegalArgs;
		} else {
			g[kHelRegOut0] = a / b;
			g[kHelRegOut1] = a % b;
		}
	} else if (n == kSuperReport) {
		std::printf("supervisor: supercall report(%s)\n", error_name(static_cast<HelError>(a)));
		expect(a == static_cast<HelWord>(kHelErrCancelled), "the interrupt cancelled the wait");
	} else {
		error = kHelErrIllegalSyscall;
	}
	g[kHelRegError] = static_cast<HelWord>(error);
	expect(helStoreRegisters(thread, kHelRegsGeneral, g.data()) == kHelErrNone, "store General");
	expect(helResume(thread) == kHelErrNone, "resume after a supercall");
	return n;
}

void supervisor(std::span<const HelHandle>) {
	helsim::Dispatcher d;
	HelHandle universe = kHelNullHandle, space = kHelNullHandle, thread = kHelNullHandle;
	expect(helCreateUniverse(&universe) == kHelErrNone, "helCreateUniverse");
	expect(helCreateSpace(&space) == kHelErrNone, "helCreateSpace");
	expect(helCreateThread(universe, space, kHelAbiSystemV, reinterpret_cast<void *>(&child),
				   nullptr, kHelThreadStopped, &thread) == kHelErrNone,
			"helCreateThread");
	// A thread created stopped is interrupted until its first helResume.
	HelObserveResult seen = observe(d, thread);
	std::printf("supervisor: child created stopped, observation %u (kHelObserveInterrupt)\n",
			seen.observation);
	expect(seen.observation == kHelObserveInterrupt, "a stopped thread shows Interrupt");
	expect(helResume(thread) == kHelErrNone, "helResume starts the child");

	expect(serve_supercall(d, thread) == kSuperGetPid, "first supercall: getpid");
	expect(serve_supercall(d, thread) == kSuperDivide, "second supercall: divide");
	expect(serve_supercall(d, thread) == kSuperDivide, "third supercall: divide by zero");

	// An interrupt is taken at the child's next syscall entry or exit. If it comes before the
	// child blocks, it stops at the wait's entry (General holds the number): resume and try
	// again until the stop is the wait's exit with kHelErrCancelled. (Printing only then keeps
	// the log in order: the child has printed everything before its wait.)
	int attempts = 0;
	bool cancelled = false;
	while (!cancelled && attempts < 1000) {
		++attempts;
		(void)helYield();
		expect(helInterruptThread(thread) == kHelErrNone, "helInterruptThread");
		seen = observe(d, thread);
		expect(seen.observation == kHelObserveInterrupt, "an interrupt shows Interrupt");
		Gprs g{};
		expect(helLoadRegisters(thread, kHelRegsGeneral, g.data()) == kHelErrNone, "load General");
		cancelled = g[kHelRegError] == static_cast<HelWord>(kHelErrCancelled);
		if (cancelled)
			std::printf("supervisor: interrupt %d stopped the child's futex wait with "
						"kHelErrCancelled, resuming\n",
					attempts);
		expect(helResume(thread) == kHelErrNone, "helResume after the interrupt");
	}
	expect(cancelled, "an interrupt cancelled the child's futex wait");
	if (cancelled)
		expect(serve_supercall(d, thread) == kSuperReport, "fourth supercall: report");

	// The child now waits for ever; the kill unwinds it at that wait, and an observer learns
	// of its end through kHelErrThreadTerminated.
	std::printf("supervisor: killing the child\n");
	expect(helKillThread(thread) == kHelErrNone, "helKillThread");
	seen = observe(d, thread);
	std::printf("supervisor: observe -> %s\n", error_name(seen.error));
	expect(seen.error == kHelErrThreadTerminated, "observers see ThreadTerminated");
	for (HelHandle h : {thread, space, universe})
		expect(helCloseDescriptor(kHelThisUniverse, h) == kHelErrNone, "helCloseDescriptor");
}

} // namespace

int main() {
	helsim::Machine machine;
	machine.spawn("supervisor", supervisor);
	helsim::RunReport report = machine.run();
	std::printf("\nrun report:\n%s", report.to_string().c_str());
	expect(!report.stuck && report.leaks.empty(), "the machine ends cleanly");
	for (const auto &t : report.threads)
		expect(t.outcome ==
						(t.name == "supervisor" ? helsim::ThreadOutcome::returned
												: helsim::ThreadOutcome::killed),
				"the supervisor returns, the child is killed");
	expect(report.threads.size() == 2, "two threads ran");
	std::printf("%s\n", failures ? "supervisor: FAILED" : "supervisor: all steps as expected");
	return failures ? 1 : 0;
}
