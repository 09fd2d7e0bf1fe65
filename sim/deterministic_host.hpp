// Deterministic mode: no host thread per CPU. Every fiber runs inside run_until(), on the host
// thread that calls it (Machine::run's caller). Each simulated CPU keeps a run queue; whenever
// the running fiber switches out (parks, yields, exits), a PRNG seeded from the machine's seed
// picks the CPU that runs next and that CPU runs the head of its queue. The seed also decides
// at syscall entries and exits whether the running thread yields, and at wake-ups and
// completions whether it will yield at its next such point (need-resched: where a wake-up
// happens the kernel may hold a lock, so nothing switches there). Time is virtual: it
// advances by the cost model (a cost per context switch and cross-CPU wake here, the rest
// charged by the kernel through Host::charge) and jumps to the next timer deadline when
// nothing is runnable. The same seed and the same workload give the same trace, bit for bit.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "host.hpp"
#include "split_mix.hpp"
#include "threads_host.hpp" // RunQueue
#include "timer_queue.hpp"

namespace helsim::sim {

class DeterministicHost final : public Host {
public:
	// Virtual nanoseconds every context switch costs (CostModel::context_switch).
	static constexpr std::uint64_t kDefaultSwitchCost = 200;
	// Virtual nanoseconds an unpark costs when the woken task's CPU is not the waker's
	// (CostModel::cross_cpu_wake).
	static constexpr std::uint64_t kDefaultCrossCpuWakeCost = 1000;

	// What the seed decides and what the cost model charges here (MachineConfig).
	struct Schedule {
		std::uint64_t seed = 0;
		std::uint64_t switch_cost = kDefaultSwitchCost;
		std::uint64_t cross_cpu_wake_cost = kDefaultCrossCpuWakeCost;
		// Chance, in parts per million, that a syscall's entry or exit lets another thread
		// run first.
		std::uint32_t preempt_at_syscall_ppm = 0;
		// Chance that a wake-up or a posted completion makes its maker give up the CPU at
		// its next syscall entry or exit.
		std::uint32_t preempt_at_wake_ppm = 0;
	};

	DeterministicHost(unsigned cpus, std::size_t physical_bytes, const Schedule &schedule);
	~DeterministicHost() override;

	// Runs fibers on the calling host thread until `done()` is true (checked after every
	// switch) or nothing can run and no timer is armed. Must not be called from a fiber.
	void run_until(const std::function<bool()> &done) override;
	// Abandons armed timers. Tasks that have not finished stay where they are.
	void shutdown() override;

	// FNV-1a over every scheduling decision so far.
	std::uint64_t trace_hash() const override { return trace_hash_; }
	void random_bytes(void *buffer, std::size_t size) override;
	std::uint64_t switches() const { return switches_; }
	std::uint64_t context_switches() const override { return switches_; }

	std::uint64_t now() override { return now_; }
	void start(Task &task) override;
	void park(Task &self, std::uint64_t deadline) override;
	void unpark(Task &task) override;
	void yield(Task &self) override;
	// One host thread at a time runs simulated code (the baton). An attached thread that
	// blocks or yields runs the scheduler on its own host thread until the seed picks it
	// again, or until the seed picks another attached thread, whose host thread then gets the
	// baton. attach() waits until no attached thread is alive and run_until is not running;
	// threads that an attached thread creates (prepare_attach) join the schedule instead, in
	// the order they were created.
	void attach(Task &task) override;
	void prepare_attach(Task &task) override;
	void attach_prepared(Task &task) override;
	void cancel_prepared(Task &task) override;
	void begin_host_wait(Task &self) override;
	void end_host_wait(Task &self) override;
	// A syscall's entry or exit: yields if a wake-up or completion asked for it, or if the
	// seed says so. Attached threads take part like fibers: they hand the baton on.
	void scheduling_point(Task &self) override;
	void detach(Task &task) override;
	void arm(Timer &timer) override;
	bool disarm(Timer &timer) override;
	// Outside work (Host::deliver): a plain host thread's delivery waits for an idle point.
	void expect(OutsideWork &work) override;
	void forget(OutsideWork &work) override;
	void deliver(OutsideWork &work, const std::function<void()> &delivery) override;
	PhysicalMemory &physical_memory() override { return physical_; }

protected:
	// Virtual time: a task's run time is the virtual time charged while it ran.
	std::uint64_t ticks() override { return now_; }
	std::uint64_t ticks_to_ns(std::uint64_t ticks) override { return ticks; }
	void advance_ps(std::uint64_t ps) override;
	void note_scheduling_event() override;

private:
	void enqueue(Task &task);
	void run_task(unsigned cpu, Task &task);
	void after_switch(Task &task);
	void record(unsigned cpu, const Task &task);
	// The scheduler loop: runs fibers until done() holds (returns nullptr), nothing can run
	// any more (nullptr), or the seed picks an attached task (returned, marked running; the
	// caller hands it the baton unless it is its own).
	Task *drive(const std::function<bool()> &done);
	// The baton moves to `task`'s host thread; await_turn blocks the caller's until it gets it
	// back (false: the machine got stuck and this thread was chosen to report it).
	void hand_baton(Task *task);
	bool await_turn(Task &self, bool reports_stuck);
	// The calling host thread gives the baton up for good (a detach, a host wait): the
	// scheduler runs on it until it can hand the baton to an attached task.
	void pass_baton_on();
	// The seed's yes-or-no at a decision point that fires `ppm` times in a million.
	bool decide(std::uint32_t ppm) { return ppm && rng_.below(1'000'000) < ppm; }
	// `task` now holds a CPU (the fiber switched in, or the attached thread got its turn).
	void now_running(Task *task) {
		running_ = task;
		resched_ = false;
	}
	void wait_for_turn(Task &self);
	void park_attached(Task &self, std::uint64_t deadline);
	void fire_expired();
	// The idle point: nothing runnable, no timer armed. Waits for the oldest expected outside
	// work to be delivered and runs its delivery; false if no outside work is expected.
	bool run_outside_work();

	PhysicalMemory physical_;
	const Schedule schedule_;
	TimerQueue timers_;
	std::vector<RunQueue> queues_;
	SplitMix64 rng_;
	// helGetRandomBytes' stream: separate from rng_, so that drawing bytes decides nothing.
	SplitMix64 entropy_;
	std::uint64_t now_ = 0;
	std::uint64_t now_ps_ = 0; // sub-nanosecond remainder of charged picoseconds
	std::uint64_t trace_hash_ = 0xCBF29CE484222325ull; // FNV-1a offset basis
	std::uint64_t switches_ = 0;
	unsigned next_start_cpu_ = 0;
	bool driving_ = false;
	// The task holding a CPU right now (none while the scheduler decides), and whether it
	// gives the CPU up at its next safe point.
	Task *running_ = nullptr;
	bool resched_ = false;
	// The baton (see attach). Guarded by baton_mutex_: whose host thread may run simulated
	// code (nullptr: none, or run_until's), how many attached tasks are alive (attached, or
	// prepared and not yet detached), whether run_until drives, the attached tasks waiting in
	// wait_for_turn (in order), and the one chosen to report that the machine got stuck.
	std::mutex baton_mutex_;
	std::condition_variable baton_cv_;
	Task *baton_ = nullptr;
	unsigned attached_ = 0;
	bool driver_ = false;
	std::vector<Task *> turn_waiters_;
	Task *stuck_ = nullptr;
	// Prepared tasks whose host thread was never created: the scheduler retires them.
	std::vector<Task *> cancelled_;
	bool stopped_ = false;
	// Outside work expected, oldest first (an intrusive list: expect() allocates nothing), and
	// the deliveries that plain host threads wait in.
	std::mutex outside_mutex_;
	std::condition_variable outside_cv_;
	OutsideWork *outside_head_ = nullptr;
	OutsideWork *outside_tail_ = nullptr;
};

} // namespace helsim::sim
