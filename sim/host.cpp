#include "host.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

#include "host_thread.hpp"
#include "timer_queue.hpp"

namespace helsim::sim {

namespace {
// Trivial and constant-initialised: no guard on access.
thread_local HostThread host_thread;
} // namespace

__attribute__((noinline)) HostThread &this_host_thread() {
	HostThread *p = &host_thread;
	asm volatile("" : "+r"(p)::"memory");
	return *p;
}

// A fiber may resume on another host thread, so no caller may keep the thread_local's address
// across a switch: both accessors stay out of line (the asm barrier keeps them from being
// treated as pure). One call deep, because every syscall starts with current_task().
__attribute__((noinline)) Task *current_task() {
	asm volatile("" ::: "memory");
	return host_thread.task;
}
__attribute__((noinline)) void set_current_task(Task *task) {
	asm volatile("" ::: "memory");
	host_thread.task = task;
}

namespace {
thread_local unsigned quiet_outside_calls = 0;
} // namespace

QuietOutsideCalls::QuietOutsideCalls() { ++quiet_outside_calls; }
QuietOutsideCalls::~QuietOutsideCalls() { --quiet_outside_calls; }

const std::string &report_call_outside_simulation(std::string_view call) {
	thread_local std::string description;
	static const std::string teardown = "the machine's teardown";
	if (quiet_outside_calls)
		return teardown;
	if (!description.empty())
		return description;
	char name[16] = "";
	pthread_getname_np(pthread_self(), name, sizeof name);
	description = fmt::format("host thread \"{}\" (tid {})", name, gettid());
	fmt::print(stderr,
			"helsim: {} called on {}, which is not a simulated thread; it returns "
			"kHelErrIllegalState, as does every hel call there. Fix: call Machine::attach() on "
			"this thread first, or run the code in a thread of Machine::spawn.\n",
			call, description);
	std::fflush(stderr);
	return description;
}

void Host::random_bytes(void *buffer, std::size_t size) {
	auto *out = static_cast<unsigned char *>(buffer);
	while (size > 0) {
		ssize_t got = getrandom(out, size, 0);
		if (got < 0 && errno != EINTR)
			throw std::runtime_error("helsim: getrandom failed");
		if (got > 0) {
			out += got;
			size -= static_cast<std::size_t>(got);
		}
	}
}

std::uint64_t Host::run_time_ns(const Task &task, bool running) {
	std::uint64_t ticks_run = task.run_ticks_.load(std::memory_order_relaxed);
	if (running)
		ticks_run += ticks() - task.run_since_;
	return ticks_to_ns(ticks_run);
}

void Host::observe_progress() {
	progress_word_.fetch_add(1, std::memory_order_seq_cst);
	syscall(SYS_futex, &progress_word_, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

namespace {
// Host::call_after's timer: deletes itself once it fired or was abandoned.
class CallbackTimer final : public Timer {
public:
	explicit CallbackTimer(std::function<void()> callback) : callback_{std::move(callback)} {}
	void fire() override {
		auto callback = std::move(callback_);
		delete this;
		callback();
	}
	void abandon() override { delete this; }

private:
	std::function<void()> callback_;
};
} // namespace

void Host::call_after(std::uint64_t delay_ns, std::function<void()> callback) {
	auto *timer = new CallbackTimer{std::move(callback)};
	std::uint64_t at = now();
	timer->deadline = delay_ns > kNoDeadline - 1 - at ? kNoDeadline - 1 : at + delay_ns;
	arm(*timer);
}

Host::DeadlineWakeup::DeadlineWakeup(Host &host, Task &task, std::uint64_t deadline)
: host_{host}, task_{task} {
	this->deadline = deadline;
	if (deadline != kNoDeadline)
		host_.arm(*this);
}

Host::DeadlineWakeup::~DeadlineWakeup() {
	if (deadline != kNoDeadline)
		host_.disarm(*this);
}

void Host::DeadlineWakeup::fire() { host_.unpark(task_); }

void Host::switch_out_parked(Task &self, std::uint64_t deadline) {
	DeadlineWakeup wakeup{*this, self, deadline};
	self.switch_reason_ = Task::SwitchReason::park;
	Fiber::switch_out();
}

void Host::retire_exited(Task &task) {
	task.state_.store(kTaskExited, std::memory_order_release);
	task.on_fiber_exit();
	activity_add(-1);
}

void Host::no_switch_reason() {
	throw std::logic_error("helsim: a fiber switched out without a reason");
}

void Host::activity_add(std::int64_t n) {
	if (activity_.fetch_add(n, std::memory_order_seq_cst) + n == 0)
		observe_progress();
}

bool TimerQueue::arm(Timer &timer) {
	std::lock_guard lock{mutex_};
	timer.position_ = armed_.emplace(timer.deadline, &timer);
	timer.armed_ = true;
	bool earliest = timer.position_ == armed_.begin();
	update_next();
	return earliest;
}

bool TimerQueue::disarm(Timer &timer) {
	std::unique_lock lock{mutex_};
	if (timer.armed_) {
		armed_.erase(timer.position_);
		timer.armed_ = false;
		update_next();
		return true;
	}
	// fire() may be running on another CPU with a pointer to this timer: wait it out.
	while (firing_ == &timer) {
		auto seen = fire_done_.load(std::memory_order_acquire);
		lock.unlock();
		while (fire_done_.load(std::memory_order_acquire) == seen)
			__builtin_ia32_pause();
		lock.lock();
	}
	return false;
}

int TimerQueue::run_expired(std::uint64_t now) {
	if (now < next_.load(std::memory_order_acquire))
		return 0;
	std::unique_lock fire_lock{fire_mutex_, std::try_to_lock};
	if (!fire_lock)
		return 0; // another CPU is firing; it drains everything that is due
	int fired = 0;
	std::unique_lock lock{mutex_};
	while (!armed_.empty() && armed_.begin()->first <= now) {
		Timer *timer = armed_.begin()->second;
		armed_.erase(armed_.begin());
		timer->armed_ = false;
		update_next();
		firing_ = timer;
		lock.unlock();
		timer->fire();
		lock.lock();
		firing_ = nullptr;
		fire_done_.fetch_add(1, std::memory_order_release);
		++fired;
	}
	return fired;
}

int TimerQueue::abandon_all() {
	std::unique_lock lock{mutex_};
	int n = 0;
	while (!armed_.empty()) {
		Timer *timer = armed_.begin()->second;
		armed_.erase(armed_.begin());
		timer->armed_ = false;
		lock.unlock();
		timer->abandon();
		lock.lock();
		++n;
	}
	update_next();
	return n;
}

void TimerQueue::update_next() {
	next_.store(armed_.empty() ? kNoDeadline : armed_.begin()->first, std::memory_order_release);
}

} // namespace helsim::sim
