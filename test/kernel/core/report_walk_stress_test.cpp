// The run report's walk of live objects (Kernel::live_objects, object_counts, accounting) while
// plain host threads create and destroy objects, in threads mode. The walk calls each object's
// virtual describe() under the registry lock; an object must join the registry only once its
// constructor has finished, and leave it before its destructor begins, or the walk reads an
// object that is half built or being torn down. Probes make that visible in any build: a
// probe's constructor lingers before it marks the probe built, its destructor marks it dying
// and lingers, and its describe() counts every call that comes too early or too late. Streams
// whose handles are closed on attached host threads do the same with real kernel objects, and
// close handles while the report's reachability walk goes through the universe holding them;
// fibers end, dropping their universe and space, while that walk goes through them. Those are
// for ThreadSanitizer (the name matches CI's TSan filter in .ci/run). They need threads mode:
// under a HELSIM_MODE override (scripts/test-seeds.sh) they skip.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

#include "kernel/core/kernel.hpp"
#include "kernel/core/object.hpp"

namespace {

using helsim::kernel::Kernel;
using helsim::kernel::make_object;
using helsim::kernel::Object;
using helsim::kernel::ObjectKind;
using helsim::kernel::Ref;

std::atomic<int> g_described_while_dying{0};
std::atomic<int> g_described_while_constructing{0};

class Probe final : public Object {
public:
	explicit Probe(Kernel &kernel) : Object{kernel, ObjectKind::token} {}
	~Probe() override {
		dying_.store(true, std::memory_order_relaxed);
		// Long enough for a walk running now to reach this object, were it still registered.
		std::this_thread::sleep_for(std::chrono::microseconds{20});
	}

	const char *describe() const override {
		if (dying_.load(std::memory_order_relaxed))
			g_described_while_dying.fetch_add(1, std::memory_order_relaxed);
		return "probe";
	}

private:
	std::atomic<bool> dying_{false};
};

class ConstructionProbe final : public Object {
public:
	explicit ConstructionProbe(Kernel &kernel) : Object{kernel, ObjectKind::token} {
		// Long enough for a walk running now to reach this object, were it registered already.
		std::this_thread::sleep_for(std::chrono::microseconds{20});
		built_.store(true, std::memory_order_relaxed);
	}

	const char *describe() const override {
		if (!built_.load(std::memory_order_relaxed))
			g_described_while_constructing.fetch_add(1, std::memory_order_relaxed);
		return "construction probe";
	}

private:
	std::atomic<bool> built_{false};
};

TEST(ReportWalkStress, ObjectsDestroyedOnHostThreadsLeaveTheWalkFirst) {
	constexpr int kProbeThreads = 2;
	constexpr int kStreamThreads = 2;
	constexpr int kObjects = 400;
	g_described_while_dying.store(0);
	helsim::Machine machine;
	if (machine.config().mode != helsim::Mode::threads)
		GTEST_SKIP() << "plain host threads run outside a seeded schedule (HELSIM_MODE)";
	Kernel &kernel = machine.kernel_for_extensions();

	// Every worker creates its objects first and destroys them only once the reports run:
	// the race under test is the one with destruction.
	std::atomic<int> ready{0};
	std::atomic<bool> go{false};
	std::atomic<int> running{kProbeThreads + kStreamThreads};
	std::atomic<bool> done{false};
	auto wait_for_go = [&] {
		ready.fetch_add(1);
		while (!go.load())
			std::this_thread::yield();
	};
	std::vector<std::thread> workers;
	for (int t = 0; t < kProbeThreads; ++t)
		workers.emplace_back([&] {
			std::vector<Ref<Probe>> probes;
			for (int i = 0; i < kObjects; ++i)
				probes.push_back(make_object<Probe>(kernel));
			wait_for_go();
			// Each probe's last reference drops here, so it is destroyed on this thread.
			while (!probes.empty())
				probes.pop_back();
			running.fetch_sub(1);
		});
	for (int t = 0; t < kStreamThreads; ++t)
		workers.emplace_back([&] {
			auto attached = machine.attach();
			std::vector<HelHandle> lanes(2 * kObjects);
			for (int i = 0; i < kObjects; ++i)
				EXPECT_EQ(helCreateStream(&lanes[2 * i], &lanes[2 * i + 1], 0), kHelErrNone);
			wait_for_go();
			// The lanes and their stream die on this thread as the handles close.
			for (HelHandle lane : lanes)
				EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, lane), kHelErrNone);
			running.fetch_sub(1);
			// Attached until the reports are done: the thread stays one of the walk's roots.
			while (!done.load())
				std::this_thread::yield();
		});
	while (ready.load() < kProbeThreads + kStreamThreads)
		std::this_thread::yield();
	go.store(true);

	int reports = 0;
	while (running.load() > 0 || reports == 0) {
		EXPECT_FALSE(machine.run().stuck);
		++reports;
	}
	done.store(true);
	for (auto &w : workers)
		w.join();
	EXPECT_EQ(g_described_while_dying.load(), 0) << "after " << reports << " reports";
	EXPECT_TRUE(machine.run().leaks.empty());
}

TEST(ReportWalkStress, ObjectsCreatedOnHostThreadsJoinTheWalkOnceBuilt) {
	constexpr int kThreads = 2;
	constexpr int kObjects = 400;
	g_described_while_constructing.store(0);
	helsim::Machine machine;
	if (machine.config().mode != helsim::Mode::threads)
		GTEST_SKIP() << "plain host threads run outside a seeded schedule (HELSIM_MODE)";
	Kernel &kernel = machine.kernel_for_extensions();

	std::atomic<int> running{kThreads};
	std::vector<std::thread> workers;
	for (int t = 0; t < kThreads; ++t)
		workers.emplace_back([&] {
			std::vector<Ref<ConstructionProbe>> probes;
			for (int i = 0; i < kObjects; ++i)
				probes.push_back(make_object<ConstructionProbe>(kernel));
			running.fetch_sub(1);
		});
	int reports = 0;
	while (running.load() > 0 || reports == 0) {
		EXPECT_FALSE(machine.run().stuck);
		++reports;
	}
	for (auto &w : workers)
		w.join();
	EXPECT_EQ(g_described_while_constructing.load(), 0) << "after " << reports << " reports";
	EXPECT_TRUE(machine.run().leaks.empty());
}

// Fibers end on their CPUs while the report's reachability walk goes through them: each is
// reached through its handle in the root universe, and its universe and space are its own, so
// that its end (which drops both) frees them unless the walk holds them.
TEST(ReportWalkStress, ThreadsEndingWhileTheWalkReachesThemHandOverTheirUniverseAndSpace) {
	constexpr int kThreads = 300;
	helsim::Machine machine;
	if (machine.config().mode != helsim::Mode::threads)
		GTEST_SKIP() << "plain host threads run outside a seeded schedule (HELSIM_MODE)";

	std::atomic<bool> created{false};
	std::atomic<bool> done{false};
	std::thread creator([&] {
		auto attached = machine.attach();
		std::vector<HelHandle> threads;
		for (int i = 0; i < kThreads; ++i) {
			HelHandle universe = kHelNullHandle, space = kHelNullHandle, thread = kHelNullHandle;
			EXPECT_EQ(helCreateUniverse(&universe), kHelErrNone);
			EXPECT_EQ(helCreateSpace(&space), kHelErrNone);
			EXPECT_EQ(helCreateThread(universe, space, kHelAbiSystemV,
							  reinterpret_cast<void *>(+[](std::uintptr_t) {}), nullptr, 0,
							  &thread),
					kHelErrNone);
			// The thread's references are now the only ones.
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, universe), kHelErrNone);
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, space), kHelErrNone);
			threads.push_back(thread);
		}
		created.store(true);
		// The handles stay open, and this thread attached, until the reports are done.
		while (!done.load())
			std::this_thread::yield();
		for (HelHandle thread : threads)
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, thread), kHelErrNone);
	});
	// The reports made meanwhile are for their walks only: a run made while an attached host
	// thread creates threads was once reported stuck under TSan (a window in the stuck check,
	// not investigated yet: docs/architecture.md, "Planned, not built yet"); the last one below
	// is made once every thread has ended.
	int reports = 0;
	while (!created.load() || reports == 0) {
		machine.run();
		++reports;
	}
	done.store(true);
	creator.join();
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

} // namespace
