// Threads mode: every simulated CPU is a host thread with its own run queue. Fibers run on
// the CPU they are queued on; waking a task on another CPU goes through that CPU's lock-free
// inbox and, if it sleeps, a host futex.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "host.hpp"
#include "timer_queue.hpp"

namespace helsim::sim {

// Priority-ordered FIFO of runnable tasks; only the owning CPU's host thread touches it.
class RunQueue {
public:
	bool empty() const { return head_ == nullptr; }
	Task *front() const { return head_; }
	// Behind every task of the same or a higher priority. Inline: a switch makes one or two.
	void push(Task &task) {
		int prio = task.priority();
		Task *after = tail_;
		while (after && after->priority() < prio)
			after = after->rq_prev_;
		task.rq_prev_ = after;
		task.rq_next_ = after ? after->rq_next_ : head_;
		if (task.rq_next_)
			task.rq_next_->rq_prev_ = &task;
		else
			tail_ = &task;
		if (after)
			after->rq_next_ = &task;
		else
			head_ = &task;
	}
	Task *pop() {
		Task *task = head_;
		if (!task)
			return nullptr;
		head_ = task->rq_next_;
		if (head_)
			head_->rq_prev_ = nullptr;
		else
			tail_ = nullptr;
		task->rq_next_ = task->rq_prev_ = nullptr;
		return task;
	}

private:
	Task *head_ = nullptr;
	Task *tail_ = nullptr;
};

class Cpu {
public:
	explicit Cpu(unsigned index) : index{index} {}

	const unsigned index;
	RunQueue local;
	std::atomic<Task *> inbox{nullptr};
	std::atomic<std::uint32_t> wake_word{0};
	std::atomic<bool> sleeping{false};
	std::atomic<std::uint64_t> switches{0}; // fibers switched in here (written by this CPU)
	// Parks finished here and not yet taken off Host::activity_ (see settle_parks()). Only
	// this CPU's host thread touches it.
	std::int64_t unsettled_parks = 0;
	std::thread host_thread;
};

class ThreadsHost final : public Host {
public:
	ThreadsHost(unsigned cpus, std::size_t physical_bytes);
	~ThreadsHost() override;

	// Stops and joins the CPU threads, then abandons armed timers. Tasks that have not
	// finished stay where they are.
	void shutdown() override;
	void run_until(const std::function<bool()> &done) override;

	std::uint64_t now() override;
	void start(Task &task) override;
	void park(Task &self, std::uint64_t deadline) override;
	void unpark(Task &task) override;
	void yield(Task &self) override;
	void attach(Task &task) override;
	void detach(Task &task) override;
	void arm(Timer &timer) override;
	bool disarm(Timer &timer) override;
	PhysicalMemory &physical_memory() override { return physical_; }
	std::uint64_t context_switches() const override;

protected:
	std::uint64_t ticks() override;
	std::uint64_t ticks_to_ns(std::uint64_t ticks) override;

private:
	void cpu_loop(Cpu &cpu);
	void run_task(Cpu &cpu, Task &task);
	// `task` switched out on `cpu` (the scheduler of `cpu`, or the fiber it switched to
	// directly, calls this).
	void after_switch(Cpu &cpu, Task &task);
	// Takes the parks finished on `cpu` off the activity count, before the CPU idles or stops.
	// Until then the count is too high, never too low: it reaches zero (the machine is stuck
	// or done) only once every CPU is idle, and each settles before it idles. A park then
	// makes no locked operation on the count, which every CPU would write.
	void settle_parks(Cpu &cpu);
	// The running fiber `self` gives up its CPU (its switch_reason_ says why): straight to the
	// next task of this CPU's run queue where the scheduler loop has nothing else to do, else
	// through the scheduler loop. Returns once `self` runs again.
	void leave_cpu(Task &self);
	// The scheduler loop has work besides running the head of `cpu`'s queue: hand-offs in
	// the inbox, armed timers, stopping. Then a fiber leaving the CPU must pass through it.
	bool scheduler_loop_needed(const Cpu &cpu) const;
	// Runs on the CPU `next` (dequeued) in place of the running fiber `self`; `here` is the
	// host thread of `cpu`.
	void switch_directly(HostThread &here, Cpu &cpu, Task &self, Task &next);
	// Run by a fiber right after it resumed: finishes the park of the fiber that switched to
	// it directly, if it did.
	void finish_direct_park(Task &self);
	// `task` (dequeued) starts running on `cpu`, a context switch there.
	static void make_running(Cpu &cpu, Task &task);
	// Counts a context switch to `task` on `cpu`.
	static void count_switch(Cpu &cpu, Task &task);
	void idle(Cpu &cpu);
	void kick(Cpu &cpu);
	// Queues a runnable task on a CPU its affinity allows.
	void enqueue(Task &task);
	void park_attached(Task &self, std::uint64_t deadline);
	// Step (2) of the park protocol: consumes a pending notification (true: do not park), or
	// moves the running task to `parking_state` (false: go on parking).
	static bool consume_notification_or_enter(Task &self, std::uint32_t parking_state);

	std::chrono::steady_clock::time_point start_time_;
	PhysicalMemory physical_;
	TimerQueue timers_;
	std::vector<std::unique_ptr<Cpu>> cpus_;
	std::atomic<unsigned> next_start_cpu_{0};
	std::atomic<bool> stopping_{false};
};

} // namespace helsim::sim
