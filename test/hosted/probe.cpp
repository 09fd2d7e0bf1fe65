// A hosted program (helsim::hosted, docs/hosting.md) for test/hosted/CMakeLists.txt: Managarm's
// headers only, its own main(), std::thread and raw pthread_create threads, thread_local hel
// queues. argv[1] picks the scenario; the scripts check its output and exit status.
#include <hel-syscalls.h>
#include <hel.h>

// The one helsim header a hosted program may want; it does not include helsim's hel.h, so it
// shares this unit with <hel.h>.
#include <helsim/hosted.hpp>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

// One queue per OS thread, closed by its thread_local destructor, as helix does.
struct ThreadQueue {
	HelHandle handle = kHelNullHandle;
	const char *who;
	explicit ThreadQueue(const char *who) : who{who} {
		HelQueueParameters params{0, 2, 4096, 2};
		HEL_CHECK(helCreateQueue(&params, &handle));
	}
	~ThreadQueue() {
		HelError error = helCloseDescriptor(kHelThisUniverse, handle);
		printf("%s: thread_local queue closed: %s\n", who, _helErrorString(error));
		fflush(stdout);
	}
};

ThreadQueue &queue(const char *who) {
	thread_local ThreadQueue q{who};
	return q;
}

// A static object whose destructor calls hel after main() returned.
struct StaticCheck {
	bool armed = false;
	~StaticCheck() {
		if (armed) {
			printf("static destructor: helNop: %s\n", _helErrorString(helNop()));
			fflush(stdout);
		}
	}
} static_check;

void *raw_thread(void *) {
	queue("pthread");
	printf("pthread: helNop: %s\n", _helErrorString(helNop()));
	return nullptr;
}

int threads_scenario() {
	static_check.armed = true;
	queue("main");
	std::thread a{[] {
		queue("std::thread");
		printf("std::thread: helNop: %s\n", _helErrorString(helNop()));
	}};
	a.join();
	pthread_t raw;
	if (pthread_create(&raw, nullptr, raw_thread, nullptr) != 0)
		return 1;
	pthread_join(raw, nullptr);
	return 0;
}

// Four std::threads; each records when it runs (between hel calls, which are the scheduling
// points). The sequence is the schedule, printed on one line.
int order_scenario() {
	std::mutex mutex;
	std::string order;
	auto note = [&](int i) {
		std::lock_guard lock{mutex};
		order += static_cast<char>('0' + i);
	};
	std::vector<std::thread> threads;
	for (int i = 0; i < 4; ++i)
		threads.emplace_back([&, i] {
			note(i);
			for (int k = 0; k < 3; ++k) {
				HEL_CHECK(helNop());
				note(i);
			}
			queue("worker");
		});
	for (auto &t : threads)
		t.join();
	printf("order %s\n", order.c_str());
	return 0;
}

} // namespace

// The configuration hook: PROBE_REPORT=1 asks for the report in code (HELSIM_REPORT still wins).
void helsim::hosted::configure(helsim::hosted::Config &config) {
	const char *report = getenv("PROBE_REPORT");
	if (report && strcmp(report, "1") == 0)
		config.report = true;
}

int main(int argc, char **argv) {
	std::string scenario = argc > 1 ? argv[1] : "";
	if (scenario == "attach") {
		printf("main: helNop: %s\n", _helErrorString(helNop()));
		printf("main: machine %s\n", helsim::hosted::machine() ? "booted" : "missing");
		return 0;
	}
	if (scenario == "exit-status")
		return 7;
	if (scenario == "threads")
		return threads_scenario();
	if (scenario == "order")
		return order_scenario();
	if (scenario == "panic") {
		fflush(stdout);
		helPanic("probe panics", 12);
	}
	if (scenario == "stuck") {
		// Deterministic mode: the thread waits for a wake-up nobody can send while main joins
		// it; instead of a hang, its wait fails with "deterministic machine stuck".
		std::thread waiter{[] {
			int word = 0;
			helFutexWait(&word, 0, -1);
		}};
		waiter.join();
		return 0;
	}
	if (scenario == "check") {
		HEL_CHECK(helCloseDescriptor(kHelThisUniverse, 12345));
		return 0;
	}
	fprintf(stderr, "probe: unknown scenario \"%s\"\n", scenario.c_str());
	return 64;
}
