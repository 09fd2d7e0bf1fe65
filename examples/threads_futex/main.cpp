// threads_futex: two simulated threads on two simulated CPUs play futex ping-pong.
//
// The spawned thread "ping" pins itself to CPU 0 with helSetAffinity, creates "pong" with
// helCreateThread (stopped, with an entry function and an argument), pins it to CPU 1 and
// starts it with helResume. The two then hand a turn word back and forth with helFutexWait
// and helFutexWake. Every hand-off crosses CPUs: the waker's CPU pushes the woken thread
// into the other CPU's inbox and wakes that CPU if it sleeps.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <span>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr int kRounds = 2000;

// Shared by both threads. It lives outside either thread's stack, so neither depends on the
// other's lifetime.
struct PingPong {
	int turn = 0;     // 0: ping's turn, 1: pong's turn
	int finished = 0; // set by pong when it has played its last round
};
PingPong game;

void check(HelError e, const char *what) {
	if (e != kHelErrNone) {
		std::printf("%s failed with HelError %d\n", what, e);
		char message[] = "threads_futex: a hel call failed";
		helPanic(message, sizeof(message) - 1);
	}
}

int current_cpu() {
	int cpu = -1;
	check(helGetCurrentCpu(&cpu), "helGetCurrentCpu");
	return cpu;
}

void pin_to(HelHandle thread, int cpu) {
	std::uint8_t mask[1] = {static_cast<std::uint8_t>(1u << cpu)};
	check(helSetAffinity(thread, mask, sizeof(mask)), "helSetAffinity");
}

// Waits until *word == value. helFutexWait returns kHelErrFutexRace when the word has already
// changed, which is not an error here: the loop simply looks again.
void wait_until(int *word, int value) {
	for (;;) {
		int seen = std::atomic_ref<int>{*word}.load(std::memory_order_acquire);
		if (seen == value)
			return;
		HelError e = helFutexWait(word, seen, kHelWaitInfinite);
		if (e != kHelErrNone && e != kHelErrFutexRace)
			check(e, "helFutexWait");
	}
}

void set_and_wake(int *word, int value) {
	std::atomic_ref<int>{*word}.store(value, std::memory_order_release);
	check(helFutexWake(word, 1), "helFutexWake");
}

// helCreateThread's ip: helsim calls it with the sp argument as its only parameter.
void pong(std::uintptr_t argument) {
	auto *g = reinterpret_cast<PingPong *>(argument);
	std::printf("pong: running on CPU %d\n", current_cpu());
	for (int i = 0; i < kRounds; ++i) {
		wait_until(&g->turn, 1);
		set_and_wake(&g->turn, 0);
	}
	set_and_wake(&g->finished, 1);
	std::printf("pong: done on CPU %d\n", current_cpu());
}

void ping(std::span<const HelHandle>) {
	pin_to(kHelThisThread, 0);
	std::printf("ping: running on CPU %d\n", current_cpu());

	HelHandle thread = kHelNullHandle;
	// kHelNullHandle for universe and space: the new thread shares ours.
	check(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
				  reinterpret_cast<void *>(&pong), &game, kHelThreadStopped, &thread),
			"helCreateThread");
	pin_to(thread, 1);
	check(helResume(thread), "helResume");

	std::uint64_t start = 0, end = 0;
	check(helGetClock(&start), "helGetClock");
	for (int i = 0; i < kRounds; ++i) {
		set_and_wake(&game.turn, 1);
		wait_until(&game.turn, 0);
	}
	check(helGetClock(&end), "helGetClock");
	wait_until(&game.finished, 1);
	std::printf("ping: %d round trips, %.2f us each, done on CPU %d\n", kRounds,
			static_cast<double>(end - start) / 1e3 / kRounds, current_cpu());
	check(helCloseDescriptor(kHelThisUniverse, thread), "helCloseDescriptor");
}

} // namespace

int main() {
	helsim::MachineConfig config;
	config.cpus = 2;
	helsim::Machine machine{config};
	machine.spawn("ping", ping);
	helsim::RunReport report = machine.run();
	std::printf("\nrun report:\n%s", report.to_string().c_str());
	return report.stuck || !report.leaks.empty() ? 1 : 0;
}
