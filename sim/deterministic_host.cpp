#include "deterministic_host.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include "trace.hpp"

namespace helsim::sim {
namespace {

constexpr std::uint64_t kFnvPrime = 0x100000001B3ull;

std::uint64_t fnv1a_byte(std::uint64_t hash, std::uint8_t byte) {
	return (hash ^ byte) * kFnvPrime;
}

// Little-endian byte order on every platform, so the hash does not depend on the host.
std::uint64_t fnv1a_u64(std::uint64_t hash, std::uint64_t value) {
	for (int i = 0; i < 8; ++i)
		hash = fnv1a_byte(hash, static_cast<std::uint8_t>(value >> (8 * i)));
	return hash;
}

std::uint64_t fnv1a_string(const std::string &s) {
	std::uint64_t hash = 0xCBF29CE484222325ull;
	for (char c : s)
		hash = fnv1a_byte(hash, static_cast<std::uint8_t>(c));
	return hash;
}

std::uint32_t run_state(std::uint32_t word) { return word & kTaskStateMask; }

// The host whose scheduler runs on this host thread (drive()): its timers' callbacks are on the
// machine's schedule, though no task runs them.
thread_local const DeterministicHost *t_scheduling = nullptr;

} // namespace

// A plain host thread's Host::deliver, on its stack until `finished`.
struct OutsideDelivery {
	const std::function<void()> &run;
	bool finished = false;
};

DeterministicHost::DeterministicHost(unsigned cpus, std::size_t physical_bytes,
		const Schedule &schedule)
: physical_{physical_bytes}, schedule_{schedule}, rng_{schedule.seed},
  entropy_{schedule.seed ^ 0x68656C52616E64ull} /* "helRand" */ {
	charges_time_ = true;
	set_cpu_count(cpus);
	queues_.resize(cpus);
}

DeterministicHost::~DeterministicHost() { shutdown(); }

void DeterministicHost::shutdown() {
	if (stopped_)
		return;
	stopped_ = true;
	activity_add(-timers_.abandon_all());
}

void DeterministicHost::enqueue(Task &task) {
	unsigned target = pick_cpu(task);
	task.set_cpu_index(target);
	queues_[target].push(task);
}

void DeterministicHost::start(Task &task) {
	// Round-robin placement, as in threads mode.
	task.set_cpu_index(next_start_cpu_++ % cpu_count());
	task.state_.store(kTaskRunnable, std::memory_order_release);
	activity_add(1);
	enqueue(task);
}

void DeterministicHost::record(unsigned cpu, const Task &task) {
	std::uint64_t h = trace_hash_;
	h = fnv1a_u64(h, cpu);
	h = fnv1a_u64(h, fnv1a_string(task.name()));
	h = fnv1a_u64(h, now_);
	trace_hash_ = h;
	++switches_;
}

void DeterministicHost::fire_expired() {
	if (timers_.next_deadline() <= now_)
		if (int fired = timers_.run_expired(now_))
			activity_add(-fired); // after fire(), which may have woken someone
}

void DeterministicHost::run_until(const std::function<bool()> &done) {
	if (current_task())
		throw std::logic_error(
				"helsim: DeterministicHost::run_until called from a simulated thread");
	// Attached threads run simulated code until they detach: wait for them.
	{
		std::unique_lock lock{baton_mutex_};
		baton_cv_.wait(lock, [this] { return attached_ == 0 && !driver_; });
		driver_ = true;
	}
	struct Release {
		DeterministicHost &host;
		~Release() {
			{
				std::lock_guard lock{host.baton_mutex_};
				host.driver_ = false;
			}
			host.baton_cv_.notify_all();
		}
	} release{*this};
	// Only attached threads prepare attached tasks, and none is alive: nothing to hand over.
	if (drive(done))
		throw std::logic_error("helsim: DeterministicHost: an attached task without a thread");
}

Task *DeterministicHost::drive(const std::function<bool()> &done) {
	if (driving_)
		throw std::logic_error("helsim: DeterministicHost: the scheduler is not reentrant");
	driving_ = true;
	struct Reset {
		bool &flag;
		~Reset() {
			flag = false;
			t_scheduling = nullptr;
		}
	} reset{driving_};
	t_scheduling = this;

	// Every drive (each baton pass of an attached thread) picks among the CPUs with work, so
	// the candidates live on the stack: a simulated syscall allocates nothing on the host.
	std::array<unsigned, 64> candidates;
	while (!done()) {
		fire_expired();
		std::size_t count = 0;
		for (unsigned i = 0; i < queues_.size(); ++i)
			if (!queues_[i].empty())
				candidates[count++] = i;
		if (count == 0) {
			// Idle: jump to the next deadline; without one, wait for work from outside, or stop
			// if none is expected (stuck or done).
			std::uint64_t next = timers_.next_deadline();
			if (next == kNoDeadline) {
				if (!run_outside_work())
					return nullptr;
				continue;
			}
			if (next > now_)
				now_ = next;
			continue;
		}
		unsigned cpu = candidates[rng_.below(count)];
		Task *task = queues_[cpu].pop();
		if (!task->is_fiber()) {
			if (auto it = std::find(cancelled_.begin(), cancelled_.end(), task);
					it != cancelled_.end()) {
				// Its host thread was never created: it ends without running.
				cancelled_.erase(it);
				task->state_.store(kTaskExited, std::memory_order_release);
				activity_add(-1);
				std::lock_guard lock{baton_mutex_};
				--attached_;
				continue;
			}
		}
		record(cpu, *task);
		now_ += schedule_.switch_cost;
		if (!task->is_fiber()) {
			// An attached thread's turn: it continues on its own host thread (this one, or
			// another that the caller hands the baton to).
			std::uint32_t word = task->state_.load(std::memory_order_acquire);
			task->state_.store(kTaskRunning | (word & kTaskNotified), std::memory_order_release);
			task->set_cpu_index(cpu);
			now_running(task);
			return task;
		}
		run_task(cpu, *task);
	}
	return nullptr;
}

void DeterministicHost::hand_baton(Task *task) {
	{
		std::lock_guard lock{baton_mutex_};
		baton_ = task;
	}
	baton_cv_.notify_all();
}

bool DeterministicHost::await_turn(Task &self, bool reports_stuck) {
	std::unique_lock lock{baton_mutex_};
	if (reports_stuck)
		turn_waiters_.push_back(&self);
	baton_cv_.wait(lock, [&] { return baton_ == &self || stuck_ == &self; });
	if (reports_stuck)
		turn_waiters_.erase(std::find(turn_waiters_.begin(), turn_waiters_.end(), &self));
	if (stuck_ == &self) {
		stuck_ = nullptr;
		baton_ = &self;
		return false;
	}
	return true;
}

void DeterministicHost::pass_baton_on() {
	if (Task *next = drive([] { return false; })) {
		hand_baton(next);
		return;
	}
	// Nothing can run or fire any more: the attached threads waiting for their turn never get
	// it. The first of them gets the baton back with the error (wait_for_turn).
	{
		std::lock_guard lock{baton_mutex_};
		baton_ = nullptr;
		if (!turn_waiters_.empty())
			stuck_ = turn_waiters_.front();
	}
	baton_cv_.notify_all();
}

void DeterministicHost::wait_for_turn(Task &self) {
	Task *next = drive([] { return false; });
	if (next == &self)
		return;
	if (next) {
		hand_baton(next);
		if (await_turn(self, true))
			return; // whoever handed the baton back marked us running
	}
	// Nothing can ever run again, and nobody but a simulated thread could wake us:
	// waiting would hang the host thread for good.
	self.state_.store(kTaskRunning, std::memory_order_release);
	activity_add(1);
	now_running(&self);
	throw std::runtime_error("helsim: deterministic machine stuck: the attached thread '" +
			self.name() + "' waits and nothing else can run or fire");
}

void DeterministicHost::run_task(unsigned cpu, Task &task) {
	std::uint32_t word = task.state_.load(std::memory_order_acquire);
	task.state_.store(kTaskRunning | (word & kTaskNotified), std::memory_order_release);
	task.set_cpu_index(cpu);
	task.switch_reason_ = Task::SwitchReason::none;
	Task *outer = current_task(); // the attached thread whose park drives us, if any
	set_current_task(&task);
	if (tracer_) [[unlikely]]
		tracer_->run_begin(cpu, task);
	now_running(&task);
	run_begins(task);
	task.fiber_.switch_in();
	run_ends(task);
	running_ = nullptr;
	set_current_task(outer);
	if (tracer_) [[unlikely]]
		tracer_->run_end(cpu, task, task.fiber_.finished());
	if (task.fiber_.finished())
		task.switch_reason_ = Task::SwitchReason::exit;
	after_switch(task);
}

void DeterministicHost::after_switch(Task &task) {
	switch (task.switch_reason_) {
	case Task::SwitchReason::yield: {
		std::uint32_t word = task.state_.load(std::memory_order_acquire);
		task.state_.store(kTaskRunnable | (word & kTaskNotified), std::memory_order_release);
		enqueue(task);
		return;
	}
	case Task::SwitchReason::park: {
		// Step (3) of the park protocol in task.hpp (single-threaded: nothing races).
		std::uint32_t word = task.state_.load(std::memory_order_acquire);
		if (word & kTaskNotified) {
			task.state_.store(kTaskRunnable, std::memory_order_release);
			enqueue(task);
		} else {
			task.state_.store(kTaskParked, std::memory_order_release);
			activity_add(-1);
		}
		return;
	}
	case Task::SwitchReason::exit: retire_exited(task); return;
	case Task::SwitchReason::none: break;
	}
	no_switch_reason();
}

void DeterministicHost::park(Task &self, std::uint64_t deadline) {
	if (!self.is_fiber()) {
		run_ends(self);
		park_attached(self, deadline);
		run_begins(self);
		return;
	}
	// Step (2) of the park protocol.
	std::uint32_t word = self.state_.load(std::memory_order_acquire);
	if (word & kTaskNotified) {
		self.state_.store(word & ~kTaskNotified, std::memory_order_release);
		return;
	}
	self.state_.store(kTaskParking, std::memory_order_release);

	switch_out_parked(self, deadline);
}

void DeterministicHost::unpark(Task &task) {
	// Step (1) of the park protocol.
	std::uint32_t word = task.state_.load(std::memory_order_acquire);
	if (word & kTaskNotified)
		return;
	switch (run_state(word)) {
	case kTaskExited: return;
	case kTaskParked: {
		task.state_.store(kTaskRunnable, std::memory_order_release);
		activity_add(1);
		enqueue(task);
		// The cost model's cross-CPU wake: an IPI to the woken task's CPU.
		Task *waker = current_task();
		if (waker && waker->cpu_index() != task.cpu_index())
			now_ += schedule_.cross_cpu_wake_cost;
		note_scheduling_event(); // the woken task may preempt its waker
		return;
	}
	default: task.state_.store(word | kTaskNotified, std::memory_order_release); return;
	}
}

void DeterministicHost::advance_ps(std::uint64_t ps) {
	std::uint64_t total = now_ps_ + ps;
	now_ += total / 1000;
	now_ps_ = total % 1000;
}

void DeterministicHost::yield(Task &self) {
	if (!self.is_fiber()) {
		// The attached thread queues up like a fiber and runs again when the seed picks it.
		running_ = nullptr;
		self.state_.store(kTaskRunnable, std::memory_order_release);
		enqueue(self);
		wait_for_turn(self);
		return;
	}
	self.switch_reason_ = Task::SwitchReason::yield;
	Fiber::switch_out();
}

void DeterministicHost::scheduling_point(Task &self) {
	// Syscall entry and exit hold no kernel lock: safe points to let another thread run first.
	if (resched_ || decide(schedule_.preempt_at_syscall_ppm))
		yield(self);
}

void DeterministicHost::note_scheduling_event() {
	// Only work that holds a CPU can be preempted; an event in the scheduler's own context
	// (a timer firing) is followed by a seeded pick anyway.
	if (running_ && !resched_ && decide(schedule_.preempt_at_wake_ppm))
		resched_ = true;
}

void DeterministicHost::attach(Task &task) {
	if (current_task())
		throw std::logic_error("helsim: this host thread already is a simulated thread");
	// One host thread at a time runs simulated code: this one now, until it detaches or
	// hands the baton to an attached thread it created.
	{
		std::unique_lock lock{baton_mutex_};
		baton_cv_.wait(lock, [this] { return attached_ == 0 && !driver_; });
		++attached_;
		baton_ = &task;
	}
	task.set_cpu_index(next_start_cpu_++ % cpu_count());
	task.state_.store(kTaskRunning, std::memory_order_release);
	activity_add(1);
	set_current_task(&task);
	now_running(&task);
	run_begins(task);
}

void DeterministicHost::prepare_attach(Task &task) {
	// On the creator's thread, which holds the baton: the new task queues up now, so its
	// place in the schedule follows the order of creation.
	{
		std::lock_guard lock{baton_mutex_};
		++attached_;
	}
	task.set_cpu_index(next_start_cpu_++ % cpu_count());
	task.state_.store(kTaskRunnable, std::memory_order_release);
	activity_add(1);
	enqueue(task);
}

void DeterministicHost::attach_prepared(Task &task) {
	if (current_task())
		throw std::logic_error("helsim: this host thread already is a simulated thread");
	set_current_task(&task);
	await_turn(task, false); // the scheduler that picked it marked it running
	run_begins(task);
}

void DeterministicHost::cancel_prepared(Task &task) { cancelled_.push_back(&task); }

void DeterministicHost::begin_host_wait(Task &self) {
	run_ends(self);
	self.state_.store(kTaskParked, std::memory_order_release);
	activity_add(-1);
	running_ = nullptr;
	{
		std::lock_guard lock{baton_mutex_};
		baton_ = nullptr;
	}
	pass_baton_on();
}

void DeterministicHost::end_host_wait(Task &self) {
	await_turn(self, false);
	run_begins(self);
}

void DeterministicHost::detach(Task &task) {
	run_ends(task);
	running_ = nullptr;
	set_current_task(nullptr);
	task.state_.store(kTaskExited, std::memory_order_release);
	activity_add(-1);
	bool others;
	{
		std::lock_guard lock{baton_mutex_};
		--attached_;
		baton_ = nullptr;
		others = attached_ > 0;
	}
	if (others)
		pass_baton_on(); // the schedule goes on with the other attached threads
	else
		baton_cv_.notify_all();
}

void DeterministicHost::park_attached(Task &self, std::uint64_t deadline) {
	// Step (2) of the park protocol, then the scheduler runs on this host thread until the
	// seed picks us again after a wake-up (or the deadline's timer).
	std::uint32_t word = self.state_.load(std::memory_order_acquire);
	if (word & kTaskNotified) {
		self.state_.store(word & ~kTaskNotified, std::memory_order_release);
		return;
	}
	self.state_.store(kTaskParked, std::memory_order_release);
	activity_add(-1);
	running_ = nullptr;
	DeadlineWakeup wakeup{*this, self, deadline};
	wait_for_turn(self);
}

void DeterministicHost::arm(Timer &timer) {
	activity_add(1);
	timers_.arm(timer);
}

bool DeterministicHost::disarm(Timer &timer) {
	bool removed = timers_.disarm(timer);
	if (removed)
		activity_add(-1);
	return removed;
}

void DeterministicHost::expect(OutsideWork &work) {
	{
		std::lock_guard lock{outside_mutex_};
		work.prev_ = outside_tail_;
		work.next_ = nullptr;
		(outside_tail_ ? outside_tail_->next_ : outside_head_) = &work;
		outside_tail_ = &work;
	}
	Host::expect(work);
}

void DeterministicHost::forget(OutsideWork &work) {
	{
		std::lock_guard lock{outside_mutex_};
		(work.prev_ ? work.prev_->next_ : outside_head_) = work.next_;
		(work.next_ ? work.next_->prev_ : outside_tail_) = work.prev_;
		work.forgotten_ = true;
	}
	// A delivery still waiting (not taken by the scheduler) returns without running.
	outside_cv_.notify_all();
	Host::forget(work);
}

void DeterministicHost::deliver(OutsideWork &work, const std::function<void()> &delivery) {
	if (current_task() || t_scheduling == this) {
		delivery();
		return;
	}
	OutsideDelivery waiting{delivery};
	std::unique_lock lock{outside_mutex_};
	if (work.forgotten_)
		return;
	work.delivery_ = &waiting;
	outside_cv_.notify_all();
	// The owner keeps `work` alive while this thread is in here.
	outside_cv_.wait(lock,
			[&] { return waiting.finished || (work.forgotten_ && work.delivery_ == &waiting); });
}

bool DeterministicHost::run_outside_work() {
	OutsideDelivery *delivery;
	{
		std::unique_lock lock{outside_mutex_};
		if (!outside_head_)
			return false;
		// Only the scheduler forgets work while the machine runs: the oldest stays listed.
		OutsideWork &oldest = *outside_head_;
		outside_cv_.wait(lock, [&] { return oldest.delivery_ != nullptr; });
		delivery = std::exchange(oldest.delivery_, nullptr);
	}
	// `oldest` may be gone once the delivery ran (it ended the work); the delivery lives until
	// its host thread sees it finished.
	delivery->run();
	{
		std::lock_guard lock{outside_mutex_};
		delivery->finished = true;
	}
	outside_cv_.notify_all();
	return true;
}

void DeterministicHost::random_bytes(void *buffer, std::size_t size) {
	auto *out = static_cast<unsigned char *>(buffer);
	for (std::size_t i = 0; i < size; i += 8) {
		std::uint64_t word = entropy_.next();
		std::memcpy(out + i, &word, std::min<std::size_t>(8, size - i));
	}
}

} // namespace helsim::sim
