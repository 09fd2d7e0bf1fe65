#include "threads_host.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <climits>
#include <stdexcept>
#include <utility>

#include "host_thread.hpp"
#include "trace.hpp"

namespace helsim::sim {
namespace {

void futex_wait(std::atomic<std::uint32_t> &word, std::uint32_t expected,
		const struct timespec *absolute_monotonic) {
	syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, expected, absolute_monotonic, nullptr,
			FUTEX_BITSET_MATCH_ANY);
}

void futex_wake_all(std::atomic<std::uint32_t> &word) {
	syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

std::uint32_t run_state(std::uint32_t word) { return word & kTaskStateMask; }

} // namespace

ThreadsHost::ThreadsHost(unsigned cpus, std::size_t physical_bytes)
: start_time_{std::chrono::steady_clock::now()}, physical_{physical_bytes} {
	set_cpu_count(cpus);
	for (unsigned i = 0; i < cpus; ++i)
		cpus_.push_back(std::make_unique<Cpu>(i));
	for (auto &cpu : cpus_)
		cpu->host_thread = std::thread{[this, c = cpu.get()] { cpu_loop(*c); }};
}

ThreadsHost::~ThreadsHost() { shutdown(); }

void ThreadsHost::shutdown() {
	if (stopping_.exchange(true))
		return;
	for (auto &cpu : cpus_) {
		cpu->wake_word.fetch_add(1, std::memory_order_seq_cst);
		futex_wake_all(cpu->wake_word);
	}
	for (auto &cpu : cpus_)
		if (cpu->host_thread.joinable())
			cpu->host_thread.join();
	activity_add(-timers_.abandon_all());
}

void ThreadsHost::run_until(const std::function<bool()> &done) {
	// The CPUs do the work; wake up whenever activity reaches zero or progress is observed.
	for (;;) {
		std::uint32_t seen = progress_word_.load(std::memory_order_seq_cst);
		if (done() || activity() == 0)
			return;
		futex_wait(progress_word_, seen, nullptr);
	}
}

// The timestamp counter: a few cycles to read at every switch, where the monotonic clock would
// cost a vDSO call.
std::uint64_t ThreadsHost::ticks() { return __rdtsc(); }

// Converted at one fixed rate, so that a count that does not grow converts to the same
// nanoseconds every time: measured once per process, against the monotonic clock, over 2 ms
// (only when run time is first asked for).
std::uint64_t ThreadsHost::ticks_to_ns(std::uint64_t ticks) {
	static const double ns_per_tick = [] {
		auto start = std::chrono::steady_clock::now();
		std::uint64_t start_ticks = __rdtsc();
		auto end = start;
		while (end - start < std::chrono::milliseconds{2})
			end = std::chrono::steady_clock::now();
		std::uint64_t elapsed_ticks = __rdtsc() - start_ticks;
		return static_cast<double>(std::chrono::nanoseconds{end - start}.count()) /
				static_cast<double>(elapsed_ticks ? elapsed_ticks : 1);
	}();
	return static_cast<std::uint64_t>(static_cast<double>(ticks) * ns_per_tick);
}

std::uint64_t ThreadsHost::now() {
	return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
			std::chrono::steady_clock::now() - start_time_)
											  .count());
}

void ThreadsHost::enqueue(Task &task) {
	unsigned target = pick_cpu(task);
	task.set_cpu_index(target);
	Cpu &cpu = *cpus_[target];
	if (this_host_thread().cpu == &cpu) {
		cpu.local.push(task);
		return;
	}
	// Cross-CPU hand-off: (1) push onto the target's inbox stack, (2) if the target announced
	// that it sleeps, bump its wake word and futex-wake it. The target (a) sets `sleeping`,
	// (b) re-checks its inbox, (c) futex-waits on the wake word value read before (a). Both
	// sides use seq_cst, so either the target sees the task in (b) or we see `sleeping` in (2).
	Task *head = cpu.inbox.load(std::memory_order_relaxed);
	do {
		task.inbox_next_ = head;
	} while (!cpu.inbox.compare_exchange_weak(head, &task, std::memory_order_seq_cst,
			std::memory_order_relaxed));
	kick(cpu);
}

void ThreadsHost::kick(Cpu &cpu) {
	if (cpu.sleeping.load(std::memory_order_seq_cst)) {
		cpu.wake_word.fetch_add(1, std::memory_order_seq_cst);
		futex_wake_all(cpu.wake_word);
	}
}

void ThreadsHost::start(Task &task) {
	// Round-robin placement among the allowed CPUs, as Managarm places new threads.
	unsigned n = static_cast<unsigned>(cpus_.size());
	task.set_cpu_index(next_start_cpu_.fetch_add(1, std::memory_order_relaxed) % n);
	task.state_.store(kTaskRunning, std::memory_order_release); // queued (see task.hpp)
	activity_add(1);
	enqueue(task);
}

void ThreadsHost::cpu_loop(Cpu &cpu) {
	this_host_thread().cpu = &cpu;
	while (!stopping_.load(std::memory_order_acquire)) {
		// Inbox tasks arrive newest first; reverse them so hand-offs keep their order. A plain
		// load first: the locked exchange costs as much as the rest of a switch, and the inbox
		// is empty on most scheduling rounds (a task pushed after the load is taken next round,
		// and idle() re-checks the inbox after announcing that it sleeps).
		Task *batch = nullptr;
		if (cpu.inbox.load(std::memory_order_relaxed))
			batch = cpu.inbox.exchange(nullptr, std::memory_order_acquire);
		Task *ordered = nullptr;
		while (batch) {
			Task *next = batch->inbox_next_;
			batch->inbox_next_ = ordered;
			ordered = batch;
			batch = next;
		}
		for (; ordered; ordered = ordered->inbox_next_)
			cpu.local.push(*ordered);

		if (timers_.next_deadline() != kNoDeadline)
			if (int fired = timers_.run_expired(now()))
				activity_add(-fired); // after fire(), which may have woken someone

		Task *task = cpu.local.pop();
		if (!task) {
			settle_parks(cpu);
			idle(cpu);
			continue;
		}
		run_task(cpu, *task);
	}
	settle_parks(cpu);
	this_host_thread().cpu = nullptr;
}

void ThreadsHost::settle_parks(Cpu &cpu) {
	if (cpu.unsettled_parks)
		activity_add(-std::exchange(cpu.unsettled_parks, 0));
}

inline void ThreadsHost::count_switch(Cpu &cpu, Task &task) {
	// Only this CPU's host thread writes its count: a plain increment, no locked RMW.
	cpu.switches.store(cpu.switches.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
	task.switch_reason_ = Task::SwitchReason::none;
}

inline void ThreadsHost::make_running(Cpu &cpu, Task &task) {
	// A queued task is running already (see kTaskRunning in task.hpp): its state word stays.
	task.set_cpu_index(cpu.index);
	count_switch(cpu, task);
}

void ThreadsHost::run_task(Cpu &cpu, Task &task) {
	make_running(cpu, task);
	set_current_task(&task);
	if (tracer_) [[unlikely]]
		tracer_->run_begin(cpu.index, task);
	run_begins(task);
	task.fiber_.switch_in();
	// The task that comes back is the one running now: `task`, or one it switched to directly.
	Task &back = *current_task();
	run_ends(back);
	set_current_task(nullptr);
	if (tracer_) [[unlikely]]
		tracer_->run_end(cpu.index, back, back.fiber_.finished());
	if (back.fiber_.finished())
		back.switch_reason_ = Task::SwitchReason::exit;
	after_switch(cpu, back);
}

// The direct switch's helpers are inline: the library is built with -fPIC, where GCC calls
// a function that another object could interpose instead of inlining it.
inline bool ThreadsHost::scheduler_loop_needed(const Cpu &cpu) const {
	// A relaxed look at the inbox is enough: a hand-off that it misses is taken by the
	// scheduler loop at the next switch that does see it, as the loop's own look would.
	return cpu.inbox.load(std::memory_order_relaxed) || timers_.next_deadline() != kNoDeadline ||
			stopping_.load(std::memory_order_relaxed);
}

inline void ThreadsHost::switch_directly(HostThread &here, Cpu &cpu, Task &self, Task &next) {
	make_running(cpu, next);
	here.task = &next;
	if (tracer_) [[unlikely]] {
		tracer_->run_end(cpu.index, self, false);
		tracer_->run_begin(cpu.index, next);
	}
	run_passes(self, next);
	Fiber::switch_to(here, next.fiber_);
}

inline void ThreadsHost::finish_direct_park(Task &self) {
	// `self` runs on the CPU that `parked` switched to it on (make_running set the index).
	if (Task *parked = std::exchange(self.parked_before_, nullptr)) [[unlikely]]
		after_switch(*cpus_[self.cpu_index()], *parked);
}

void ThreadsHost::leave_cpu(Task &self) {
	// Looked up once: the direct switch needs the record too, and it is stale once `self`
	// has switched out (it may resume on another host thread).
	HostThread &here = this_host_thread();
	Cpu &cpu = *here.cpu;
	// Where the scheduler loop would do nothing but run the head of this CPU's queue, `self`
	// switches to it directly (nothing but this host thread looks at the queue meanwhile). A
	// fiber's first run, though, starts in its entry function, which only a scheduler enters.
	if (!scheduler_loop_needed(cpu)) {
		Task *next = cpu.local.front();
		bool direct = false;
		if (self.switch_reason_ == Task::SwitchReason::park) {
			if (next && next->fiber_.entered()) {
				// `next` finishes the park once this stack is left (step (3) of the park
				// protocol in task.hpp): until then, no other CPU may see `self` parked.
				cpu.local.pop();
				next->parked_before_ = &self;
				direct = true;
			}
		} else if (self.affinity() & (std::uint64_t{1} << cpu.index)) {
			// A yield that may stay here (pick_cpu() keeps a task on the CPU it ran on if its
			// affinity allows it): the loop would queue `self` behind the tasks of its priority.
			if (!next || next->priority() < self.priority()) {
				// `self` runs next: it switches out and in again without leaving its stack.
				count_switch(cpu, self);
				if (tracer_) [[unlikely]] {
					tracer_->run_end(cpu.index, self, false);
					tracer_->run_begin(cpu.index, self);
				}
				return;
			}
			if (next->fiber_.entered()) {
				cpu.local.pop();
				cpu.local.push(self); // still running (see kTaskRunning in task.hpp)
				direct = true;
			}
		}
		if (direct) {
			switch_directly(here, cpu, self, *next);
			finish_direct_park(self);
			return;
		}
	}
	Fiber::switch_out();
	finish_direct_park(self);
}

void ThreadsHost::after_switch(Cpu &cpu, Task &task) {
	switch (task.switch_reason_) {
	case Task::SwitchReason::yield:
		// The state stays running (see kTaskRunning in task.hpp).
		enqueue(task);
		return;
	case Task::SwitchReason::park: {
		// Step (3) of the park protocol in task.hpp.
		std::uint32_t word = task.state_.load(std::memory_order_acquire);
		for (;;) {
			if (word & kTaskNotified) {
				if (task.state_.compare_exchange_weak(word, kTaskRunning,
							std::memory_order_acq_rel)) {
					enqueue(task);
					return;
				}
				continue;
			}
			if (task.state_.compare_exchange_weak(word, kTaskParked, std::memory_order_acq_rel)) {
				++cpu.unsettled_parks;
				return;
			}
		}
	}
	case Task::SwitchReason::exit: retire_exited(task); return;
	case Task::SwitchReason::none: break;
	}
	no_switch_reason();
}

void ThreadsHost::idle(Cpu &cpu) {
	// Poll briefly before sleeping: a cross-CPU hand-off that arrives within this window costs
	// no futex wake-up, which is most of a cross-CPU round trip's latency. Polling yields the
	// host CPU on every round, so that on an oversubscribed host the peer this CPU waits for
	// can run in its place instead of being starved by the poll.
	constexpr std::uint64_t kPollNanoseconds = 20'000;
	std::uint64_t poll_until = now() + kPollNanoseconds;
	do {
		if (cpu.inbox.load(std::memory_order_acquire) || stopping_.load(std::memory_order_relaxed))
			return;
		sched_yield();
	} while (now() < poll_until);
	std::uint32_t seen = cpu.wake_word.load(std::memory_order_seq_cst);
	cpu.sleeping.store(true, std::memory_order_seq_cst);
	std::uint64_t deadline = timers_.next_deadline();
	if (cpu.inbox.load(std::memory_order_seq_cst) || stopping_.load(std::memory_order_seq_cst) ||
			deadline <= now()) {
		cpu.sleeping.store(false, std::memory_order_relaxed);
		return;
	}
	if (deadline == kNoDeadline) {
		futex_wait(cpu.wake_word, seen, nullptr);
	} else {
		auto absolute = start_time_ + std::chrono::nanoseconds{deadline};
		auto since_epoch = absolute.time_since_epoch();
		struct timespec ts {};
		ts.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
		ts.tv_nsec = (since_epoch - std::chrono::seconds{ts.tv_sec}).count();
		futex_wait(cpu.wake_word, seen, &ts);
	}
	cpu.sleeping.store(false, std::memory_order_relaxed);
}

bool ThreadsHost::consume_notification_or_enter(Task &self, std::uint32_t parking_state) {
	std::uint32_t word = self.state_.load(std::memory_order_acquire);
	for (;;) {
		if (word & kTaskNotified) {
			if (self.state_.compare_exchange_weak(word, word & ~kTaskNotified,
						std::memory_order_acq_rel))
				return true;
		} else if (self.state_.compare_exchange_weak(word, parking_state,
						   std::memory_order_acq_rel)) {
			return false;
		}
	}
}

void ThreadsHost::park(Task &self, std::uint64_t deadline) {
	if (!self.is_fiber()) {
		run_ends(self);
		park_attached(self, deadline);
		run_begins(self);
		return;
	}
	if (consume_notification_or_enter(self, kTaskParking))
		return;
	DeadlineWakeup wakeup{*this, self, deadline};
	self.switch_reason_ = Task::SwitchReason::park;
	leave_cpu(self);
}

void ThreadsHost::park_attached(Task &self, std::uint64_t deadline) {
	// A pending deadline counts as activity, as an armed timer does for a fiber.
	const bool timed = deadline != kNoDeadline;
	if (timed)
		activity_add(1);
	struct TimedGuard {
		ThreadsHost *host;
		bool timed;
		~TimedGuard() {
			if (timed)
				host->activity_add(-1);
		}
	} guard{this, timed};
	if (consume_notification_or_enter(self, kTaskParked))
		return;
	activity_add(-1);
	std::uint32_t word;
	struct timespec ts {};
	if (deadline != kNoDeadline) {
		auto since_epoch = (start_time_ + std::chrono::nanoseconds{deadline}).time_since_epoch();
		ts.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
		ts.tv_nsec = (since_epoch - std::chrono::seconds{ts.tv_sec}).count();
	}
	for (;;) {
		word = self.state_.load(std::memory_order_acquire);
		if (run_state(word) != kTaskParked)
			break;
		if (deadline != kNoDeadline && now() >= deadline) {
			// Time is up: take ourselves out of the parked state unless a waker beat us.
			if (self.state_.compare_exchange_strong(word, kTaskRunning,
						std::memory_order_acq_rel)) {
				activity_add(1);
				return;
			}
			break;
		}
		futex_wait(self.state_, word, deadline != kNoDeadline ? &ts : nullptr);
	}
	// A waker moved us to running (and counted us as active again); a notification that
	// came after it stays for the next park.
}

void ThreadsHost::unpark(Task &task) {
	// Step (1) of the park protocol.
	std::uint32_t word = task.state_.load(std::memory_order_acquire);
	for (;;) {
		if (word & kTaskNotified)
			return;
		switch (run_state(word)) {
		case kTaskExited: return;
		case kTaskParked:
			if (task.state_.compare_exchange_weak(word, kTaskRunning, std::memory_order_acq_rel)) {
				activity_add(1);
				if (task.is_fiber())
					enqueue(task);
				else
					futex_wake_all(task.state_);
				return;
			}
			break;
		default:
			if (task.state_.compare_exchange_weak(word, word | kTaskNotified,
						std::memory_order_acq_rel))
				return;
			break;
		}
	}
}

void ThreadsHost::yield(Task &self) {
	if (!self.is_fiber()) {
		std::this_thread::yield();
		return;
	}
	self.switch_reason_ = Task::SwitchReason::yield;
	leave_cpu(self);
}

void ThreadsHost::attach(Task &task) {
	if (current_task())
		throw std::logic_error("helsim: this host thread already is a simulated thread");
	task.state_.store(kTaskRunning, std::memory_order_release);
	activity_add(1);
	set_current_task(&task);
	run_begins(task);
}

void ThreadsHost::detach(Task &task) {
	run_ends(task);
	set_current_task(nullptr);
	task.state_.store(kTaskExited, std::memory_order_release);
	activity_add(-1);
}

void ThreadsHost::arm(Timer &timer) {
	activity_add(1);
	if (timers_.arm(timer))
		for (auto &cpu : cpus_)
			kick(*cpu);
}

std::uint64_t ThreadsHost::context_switches() const {
	std::uint64_t total = 0;
	for (auto &cpu : cpus_)
		total += cpu->switches.load(std::memory_order_relaxed);
	return total;
}

bool ThreadsHost::disarm(Timer &timer) {
	bool removed = timers_.disarm(timer);
	if (removed)
		activity_add(-1);
	return removed;
}

} // namespace helsim::sim
