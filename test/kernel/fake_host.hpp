// The unit-test seam below hel.h (docs/testing.md, "Unit tests of kernel objects"): a kernel
// object tested directly, without a Machine, so that a failure names the object.
//
// - FakeHost: a sim::Host with physical memory, a clock the test moves, and timers the test
//   fires, that runs no task. Kernel objects that only need a kernel (universes, tokens,
//   memory objects, page tables, the stream pairing table) work with it; anything that parks,
//   starts or wakes a task is a machine test's business, and trips a test failure here.
// - KernelUnderTest: a kernel::Kernel on a FakeHost.
// - ScopedHostOperations: replaces the process's sim::HostOperations while alive, to make the
//   host refuse (an address space reservation, say) and test the kernel's error path.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>

#include <helsim/machine_config.hpp>

#include "kernel/core/kernel.hpp"
#include "sim/host.hpp"

namespace helsim::test {

class FakeHost final : public sim::Host {
public:
	explicit FakeHost(std::size_t physical_memory = std::size_t{16} << 20)
	: memory_{physical_memory} {
		set_cpu_count(1);
	}
	FakeHost(const FakeHost &) = delete;
	FakeHost &operator=(const FakeHost &) = delete;

	std::uint64_t now() override { return now_; }
	// Moves the clock forward and fires every armed timer whose deadline has passed, in
	// deadline order.
	void advance(std::uint64_t ns) {
		now_ += ns;
		for (auto it = timers_.begin(); it != timers_.end() && (*it)->deadline <= now_;) {
			sim::Timer *timer = *it;
			it = timers_.erase(it);
			timer->fire();
		}
	}
	std::size_t armed_timers() const { return timers_.size(); }

	void start(sim::Task &) override { no_tasks("start"); }
	void park(sim::Task &, std::uint64_t) override { no_tasks("park"); }
	void unpark(sim::Task &) override { no_tasks("unpark"); }
	void yield(sim::Task &) override { no_tasks("yield"); }
	void attach(sim::Task &) override { no_tasks("attach"); }
	void detach(sim::Task &) override { no_tasks("detach"); }

	void arm(sim::Timer &timer) override { timers_.insert(&timer); }
	bool disarm(sim::Timer &timer) override { return timers_.erase(&timer) != 0; }

	sim::PhysicalMemory &physical_memory() override { return memory_; }

	void run_until(const std::function<bool()> &) override { no_tasks("run_until"); }
	void shutdown() override {
		for (sim::Timer *timer : timers_)
			timer->abandon();
		timers_.clear();
	}

protected:
	std::uint64_t ticks() override { return now_; }
	std::uint64_t ticks_to_ns(std::uint64_t ticks) override { return ticks; }

private:
	static void no_tasks(const char *operation) {
		ADD_FAILURE() << "FakeHost::" << operation
					  << ": a unit test's host runs no task; test this in a Machine";
	}

	struct ByDeadline {
		bool operator()(const sim::Timer *a, const sim::Timer *b) const {
			return a->deadline != b->deadline ? a->deadline < b->deadline : a < b;
		}
	};

	sim::PhysicalMemory memory_;
	std::uint64_t now_ = 0;
	std::set<sim::Timer *, ByDeadline> timers_;
};

// A kernel on a FakeHost, with the default configuration unless told otherwise.
struct KernelUnderTest {
	explicit KernelUnderTest(MachineConfig config = {}) : kernel{config, host} {}

	FakeHost host;
	kernel::Kernel kernel;
};

// While alive, the process's host operations are `operations` (no Machine may exist
// meanwhile, and what was reserved through one table is released through the same one).
class ScopedHostOperations {
public:
	explicit ScopedHostOperations(const sim::HostOperations &operations)
	: operations_{operations}, previous_{sim::replace_host_operations(operations_)} {}
	ScopedHostOperations(const ScopedHostOperations &) = delete;
	ScopedHostOperations &operator=(const ScopedHostOperations &) = delete;
	~ScopedHostOperations() { sim::replace_host_operations(previous_); }

private:
	sim::HostOperations operations_;
	const sim::HostOperations &previous_;
};

// The native operations with allocate() refused, as by a host out of address space.
inline sim::HostOperations host_refusing_allocations() {
	sim::HostOperations operations = sim::native_host_operations();
	operations.allocate = [](std::size_t) -> void * { return nullptr; };
	return operations;
}

} // namespace helsim::test
