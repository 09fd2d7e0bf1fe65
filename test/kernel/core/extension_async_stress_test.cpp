// helsim::ext::AsyncOperation under races, in threads mode: operations completed from plain host
// threads and from machine timers while the submitter cancels them by tag, and while the
// machine tears down. Each operation must end exactly once: one completion per submission,
// carrying either the extension's result or kHelErrCancelled, its on_cancel hook run once
// exactly when it was cancelled, and nothing left pending or leaked. The name matches CI's TSan
// filter (.ci/run), which runs these under ThreadSanitizer. They need threads mode: under a
// HELSIM_MODE override (scripts/test-seeds.sh) they skip.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr std::uint32_t kStart = helsim::kFirstExtensionSyscall + 70;

// Who completes an operation.
enum Route : HelWord { host_thread, timer };

// What happened to one submission, as the extension saw it.
struct Outcome {
	std::atomic<int> completed{0};    // complete() calls that returned true
	std::atomic<int> cancel_hooks{0}; // on_cancel runs
};

// Plain host threads that complete the operations handed to them, in the order handed over,
// yielding now and then so that completions interleave with cancellations and the teardown.
class Completers {
public:
	// Closed: the threads take no work until open().
	explicit Completers(std::vector<Outcome> &outcomes, bool open = true, unsigned threads = 3)
	: outcomes_{outcomes}, open_{open} {
		for (unsigned i = 0; i < threads; ++i)
			threads_.emplace_back([this, i] { work(i); });
	}
	Completers(const Completers &) = delete;
	Completers &operator=(const Completers &) = delete;
	~Completers() { stop(); }

	void hand_over(helsim::ext::AsyncOperation op, std::size_t index) {
		{
			std::lock_guard lock{mutex_};
			work_.emplace_back(std::move(op), index);
		}
		cv_.notify_one();
	}

	void open() {
		{
			std::lock_guard lock{mutex_};
			open_ = true;
		}
		cv_.notify_all();
	}

	// Completes what is left and joins the threads.
	void stop() {
		{
			std::lock_guard lock{mutex_};
			open_ = true;
			stopping_ = true;
		}
		cv_.notify_all();
		for (auto &t : threads_)
			if (t.joinable())
				t.join();
	}

private:
	void work(unsigned id) {
		for (unsigned n = id;; ++n) {
			std::unique_lock lock{mutex_};
			cv_.wait(lock, [this] { return stopping_ || (open_ && !work_.empty()); });
			if (work_.empty())
				return;
			auto [op, index] = std::move(work_.front());
			work_.pop_front();
			lock.unlock();
			if (n % 3 == 0)
				std::this_thread::yield();
			if (op.complete(kHelErrNone))
				++outcomes_[index].completed;
		}
	}

	std::vector<Outcome> &outcomes_;
	std::mutex mutex_;
	std::condition_variable cv_;
	std::deque<std::pair<helsim::ext::AsyncOperation, std::size_t>> work_;
	bool open_;
	bool stopping_ = false;
	std::vector<std::thread> threads_;
};

// The extension's state: a syscall handler is a plain function.
std::vector<Outcome> *g_outcomes = nullptr;
Completers *g_completers = nullptr;

// args: queue, context (the submission's index), cancellation tag, route.
HelError start(helsim::ext::Caller &caller, const HelWord *args, HelWord *) {
	auto index = static_cast<std::size_t>(args[1]);
	Outcome &outcome = (*g_outcomes)[index];
	helsim::ext::AsyncOperation op;
	helsim::ext::AsyncRequest request{static_cast<HelHandle>(args[0]), index, args[2],
			sizeof(HelSimpleResult), [&outcome] { ++outcome.cancel_hooks; }};
	if (HelError e = caller.start(request, op); e != kHelErrNone)
		return e;
	if (args[3] == Route::timer)
		caller.after(index % 4 * 500, [op, &outcome] {
			if (op.complete(kHelErrNone))
				++outcome.completed;
		});
	else
		g_completers->hand_over(std::move(op), index);
	return kHelErrNone;
}

// Two submissions share a tag; every other pair of them is cancelled right after it is
// submitted, racing the completers. With `timers`, alternate submissions complete from a timer.
HelError submit(helsim::Dispatcher &d, std::size_t index, bool cancel, bool timers) {
	HelWord tag = index / 2 + 1;
	HelError e = helSyscall4(kStart, d.queue(), index, tag,
			timers && index % 2 ? Route::timer : Route::host_thread);
	if (e == kHelErrNone && cancel && index % 2) {
		d.submit(kHelSubmitCancel, 0, HelSqCancel{tag});
		d.flush();
	}
	return e;
}

// Each operation ended exactly once: by complete() (its hook never ran) or by a cancellation
// (its hook ran once, complete() never won).
void expect_ended_once(const std::vector<Outcome> &outcomes) {
	for (std::size_t i = 0; i < outcomes.size(); ++i) {
		int completed = outcomes[i].completed.load();
		int hooks = outcomes[i].cancel_hooks.load();
		EXPECT_EQ(completed + hooks, 1) << "submission " << i << ": completed " << completed
										<< " times, cancel hook ran " << hooks << " times";
	}
}

TEST(ExtensionAsyncStress, HostThreadsAndTimersRaceCancellationByTag) {
	constexpr std::size_t kBatch = 32;
	constexpr std::size_t kBatches = 48;
	std::vector<Outcome> outcomes(kBatch * kBatches);
	std::vector<HelError> results(outcomes.size(), -1);
	std::vector<int> posted(outcomes.size(), 0);
	helsim::RunReport report;
	{
		Completers completers{outcomes};
		g_outcomes = &outcomes;
		g_completers = &completers;
		helsim::Machine machine;
		if (machine.config().mode != helsim::Mode::threads)
			GTEST_SKIP() << "plain host threads complete outside a seeded schedule (HELSIM_MODE)";
		helsim::ext::register_syscall(machine, kStart, "stressStart", start);
		machine.spawn("submitter", [&](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			for (std::size_t b = 0; b < kBatches; ++b) {
				for (std::size_t j = 0; j < kBatch; ++j)
					ASSERT_EQ(submit(d, b * kBatch + j, j % 4 < 2, true), kHelErrNone);
				// One completion per submission of the batch, and nothing else. The submitter
				// polls rather than blocks: completions from plain host threads are no activity
				// of the machine's, so a blocked wait for them alone would count as stuck.
				for (std::size_t n = 0; n < kBatch; ++n) {
					std::optional<helsim::Element> element;
					while (!(element = d.poll()))
						ASSERT_EQ(helYield(), kHelErrNone);
					auto index = element->context();
					ASSERT_LT(index, outcomes.size());
					++posted[index];
					results[index] = element->error();
				}
			}
			// The run's report walks the kernel's objects; a completer that posted may still
			// be letting go of the queue, so the submitter ends only once every complete()
			// has returned.
			for (const Outcome &o : outcomes)
				while (o.completed.load() + o.cancel_hooks.load() == 0)
					ASSERT_EQ(helYield(), kHelErrNone);
		});
		report = machine.run();
		completers.stop();
	}
	EXPECT_FALSE(report.stuck) << report.to_string();
	for (std::size_t i = 0; i < outcomes.size(); ++i) {
		EXPECT_EQ(posted[i], 1) << "submission " << i;
		if (results[i] == kHelErrNone) {
			EXPECT_EQ(outcomes[i].completed.load(), 1) << "submission " << i;
			EXPECT_EQ(outcomes[i].cancel_hooks.load(), 0) << "submission " << i;
		} else {
			EXPECT_EQ(results[i], kHelErrCancelled) << "submission " << i;
			EXPECT_EQ(outcomes[i].completed.load(), 0) << "submission " << i;
			EXPECT_EQ(outcomes[i].cancel_hooks.load(), 1) << "submission " << i;
		}
	}
	EXPECT_EQ(report.counters.operations_submitted, outcomes.size());
	EXPECT_EQ(report.counters.operations_completed, outcomes.size());
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

// The submitter leaves its operations to the completers and ends; the machine tears down while
// host threads are still completing them (the teardown must wait for a post in progress). Every
// operation ends once, either way.
TEST(ExtensionAsyncStress, HostThreadsRaceTheTeardown) {
	constexpr std::size_t kOperations = 512;
	for (int round = 0; round < 4; ++round) {
		std::vector<Outcome> outcomes(kOperations);
		// Held back until the run has returned: they race the teardown, not the run's report.
		Completers completers{outcomes, false};
		g_outcomes = &outcomes;
		g_completers = &completers;
		{
			helsim::Machine machine;
			if (machine.config().mode != helsim::Mode::threads)
				GTEST_SKIP() << "plain host threads complete outside a seeded schedule "
								"(HELSIM_MODE)";
			helsim::ext::register_syscall(machine, kStart, "stressStart", start);
			machine.spawn("submitter", [&](std::span<const HelHandle>) {
				helsim::Dispatcher d;
				for (std::size_t i = 0; i < kOperations; ++i)
					ASSERT_EQ(submit(d, i, i % 8 < 2, false), kHelErrNone);
			});
			EXPECT_FALSE(machine.run().stuck);
			completers.open();
		}
		completers.stop();
		expect_ended_once(outcomes);
	}
}

} // namespace
