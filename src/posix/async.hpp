// Coroutines over one hel queue, for the POSIX server: Managarm's servers are written with
// async/co_await over helix, and so is helsim's. One Executor belongs to one simulated thread;
// nothing here is thread-safe, and nothing needs to be (a server thread runs its coroutines
// one at a time, resuming each when its completion arrives).
#pragma once

#include <algorithm>
#include <array>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>

namespace helsim::posix::detail {

class Executor;

// A detached coroutine: spawned on an executor, runs until it returns, then frees itself.
class Task {
public:
	struct promise_type {
		Executor *executor = nullptr;
		Task get_return_object() {
			return Task{std::coroutine_handle<promise_type>::from_promise(*this)};
		}
		std::suspend_always initial_suspend() noexcept { return {}; }
		auto final_suspend() noexcept;
		void return_void() {}
		void unhandled_exception();
	};

	Task(Task &&other) noexcept : handle_{std::exchange(other.handle_, nullptr)} {}
	Task(const Task &) = delete;
	~Task() {
		if (handle_)
			handle_.destroy();
	}

private:
	friend class Executor;
	explicit Task(std::coroutine_handle<promise_type> handle) : handle_{handle} {}
	std::coroutine_handle<promise_type> handle_;
};

// An awaitable coroutine returning T, started when awaited; resumes its awaiter at the end.
template <typename T>
class Async {
public:
	struct promise_type {
		std::optional<T> value;
		std::exception_ptr error;
		std::coroutine_handle<> continuation;
		Async get_return_object() {
			return Async{std::coroutine_handle<promise_type>::from_promise(*this)};
		}
		std::suspend_always initial_suspend() noexcept { return {}; }
		auto final_suspend() noexcept {
			struct Resume {
				bool await_ready() noexcept { return false; }
				std::coroutine_handle<> await_suspend(
						std::coroutine_handle<promise_type> self) noexcept {
					return self.promise().continuation;
				}
				void await_resume() noexcept {}
			};
			return Resume{};
		}
		template <typename U>
		void return_value(U &&v) {
			value.emplace(std::forward<U>(v));
		}
		void unhandled_exception() { error = std::current_exception(); }
	};

	Async(Async &&other) noexcept : handle_{std::exchange(other.handle_, nullptr)} {}
	Async(const Async &) = delete;
	~Async() {
		if (handle_)
			handle_.destroy();
	}

	bool await_ready() const noexcept { return false; }
	std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
		handle_.promise().continuation = awaiter;
		return handle_;
	}
	T await_resume() {
		if (handle_.promise().error)
			std::rethrow_exception(handle_.promise().error);
		return std::move(*handle_.promise().value);
	}

private:
	explicit Async(std::coroutine_handle<promise_type> handle) : handle_{handle} {}
	std::coroutine_handle<promise_type> handle_;
};

// Coroutines waiting for a state change (a pipe gaining data or room); notify_all() makes
// them runnable again, and each re-checks what it waits for.
class Condition {
public:
	explicit Condition(Executor &executor) : executor_{executor} {}
	auto wait() {
		struct Awaiter {
			Condition &condition;
			bool await_ready() const noexcept { return false; }
			void await_suspend(std::coroutine_handle<> h) { condition.waiters_.push_back(h); }
			void await_resume() const noexcept {}
		};
		return Awaiter{*this};
	}
	void notify_all();
	bool empty() const { return waiters_.empty(); }

private:
	Executor &executor_;
	std::vector<std::coroutine_handle<>> waiters_;
};

// One request a client may cancel (Managarm's cancellation events): kSuperCancel for a
// request on the POSIX lane, kFileCancel for one on a passthrough lane. Its handler waits on
// one Condition at a time and names it in `waiting`, so that cancel() wakes it; woken, the
// handler sees `cancelled` and answers -EINTR (or what it has done so far).
struct CancelToken {
	bool cancelled = false;
	Condition *waiting = nullptr;
	void cancel() {
		cancelled = true;
		if (waiting)
			waiting->notify_all();
	}
};

// The requests in progress that may be cancelled, by (the client's credentials, its
// cancellation id). A cancel may overtake its request (they travel on different paths): an
// unknown id is remembered, and the request that registers it later starts cancelled. Only the
// last few are kept, because a client cancels only requests it still waits for.
class CancelRegistry {
public:
	using Key = std::pair<std::array<char, 16>, std::uint64_t>;

	// Registers `token` for the life of the scope; a Key with id 0 is not cancellable.
	class Scope {
	public:
		Scope(CancelRegistry &registry, Key key, CancelToken &token)
		: registry_{registry}, key_{std::move(key)} {
			if (!key_.second)
				return;
			if (registry_.early_.erase(key_))
				token.cancelled = true;
			registry_.live_[key_] = &token;
		}
		~Scope() {
			if (key_.second)
				registry_.live_.erase(key_);
		}
		Scope(const Scope &) = delete;
		Scope &operator=(const Scope &) = delete;

	private:
		CancelRegistry &registry_;
		Key key_;
	};

	// Cancels the request; true if it was in progress.
	bool cancel(const Key &key) {
		auto it = live_.find(key);
		if (it != live_.end()) {
			it->second->cancel();
			return true;
		}
		if (key.second) {
			early_[key] = ++age_;
			if (early_.size() > kEarlyKept)
				early_.erase(std::min_element(early_.begin(), early_.end(),
						[](const auto &a, const auto &b) { return a.second < b.second; }));
		}
		return false;
	}

private:
	static constexpr std::size_t kEarlyKept = 64;
	std::map<Key, CancelToken *> live_;
	std::map<Key, std::uint64_t> early_; // cancels that came first, with their age
	std::uint64_t age_ = 0;
};

// An exchange's results; the element (and the inline data the results point into) is held
// until release(), which a coroutine must call before it suspends again for long (a held
// element pins a CQ chunk).
template <typename... Items>
struct Exchanged {
	Element element;
	ipc::Results<Items...> results;
	void release() { element.release(); }
};

class Executor {
public:
	explicit Executor(QueueConfig config = {}) : dispatcher_{config} {}
	Executor(const Executor &) = delete;
	Executor &operator=(const Executor &) = delete;

	Dispatcher &dispatcher() { return dispatcher_; }

	// Starts `task` at the executor's next turn.
	void spawn(Task task) {
		auto handle = std::exchange(task.handle_, nullptr);
		handle.promise().executor = this;
		++live_tasks_;
		ready_.push_back(handle);
	}
	void make_ready(std::coroutine_handle<> handle) { ready_.push_back(handle); }

	// Runs until every spawned task has ended. `between` runs before each wait for
	// completions (the server checks its mailbox there). Rethrows the first exception a task
	// let escape.
	void run(const std::function<void()> &between = {});

	std::size_t live_tasks() const { return live_tasks_; }

	// co_await exchange(lane, items...): one kHelSubmitExchangeMsgs.
	template <typename... Items>
	auto exchange(HelHandle lane, Items... items) {
		struct Awaiter {
			Executor &executor;
			HelHandle lane;
			std::tuple<Items...> items;
			Slot slot{};
			bool await_ready() const noexcept { return false; }
			void await_suspend(std::coroutine_handle<> h) {
				slot.waiter = h;
				std::apply(
						[&](const auto &...item) {
							ipc::submit(executor.dispatcher_, lane,
									reinterpret_cast<std::uintptr_t>(&slot), item...);
						},
						items);
			}
			Exchanged<Items...> await_resume() {
				Exchanged<Items...> out{std::move(slot.element), {}};
				out.results = ipc::parse<Items...>(out.element);
				return out;
			}
		};
		return Awaiter{*this, lane, std::tuple<Items...>{std::move(items)...}};
	}

	// co_await submit(opcode, payload): any SQ operation with one result struct R.
	template <typename R, typename Payload>
	auto operation(std::uint32_t opcode, const Payload &payload) {
		struct Awaiter {
			Executor &executor;
			std::uint32_t opcode;
			Payload payload;
			Slot slot{};
			bool await_ready() const noexcept { return false; }
			void await_suspend(std::coroutine_handle<> h) {
				slot.waiter = h;
				executor.dispatcher_.submit(opcode, reinterpret_cast<std::uintptr_t>(&slot),
						payload);
			}
			R await_resume() { return slot.element.template as<R>(); }
		};
		return Awaiter{*this, opcode, payload};
	}

private:
	friend struct Task::promise_type;
	struct Slot {
		std::coroutine_handle<> waiter;
		Element element;
	};

	void task_ended() { --live_tasks_; }
	void fail(std::exception_ptr error) {
		if (!error_)
			error_ = std::move(error);
	}

	Dispatcher dispatcher_;
	std::deque<std::coroutine_handle<>> ready_;
	std::size_t live_tasks_ = 0;
	std::exception_ptr error_;
};

inline auto Task::promise_type::final_suspend() noexcept {
	struct End {
		bool await_ready() noexcept { return false; }
		void await_suspend(std::coroutine_handle<promise_type> self) noexcept {
			Executor *executor = self.promise().executor;
			self.destroy();
			executor->task_ended();
		}
		void await_resume() noexcept {}
	};
	return End{};
}

inline void Task::promise_type::unhandled_exception() { executor->fail(std::current_exception()); }

inline void Condition::notify_all() {
	for (auto h : waiters_)
		executor_.make_ready(h);
	waiters_.clear();
}

} // namespace helsim::posix::detail
