// The client side: what runs inside a POSIX process (mlibc's sysdeps for Managarm, here
// helsim::posix's calls). This header is what the client's files share: the per-thread state
// behind the fs word, supercalls, and requests on the POSIX lane.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/hel-stubs.h>
#include <helsim/ipc.hpp>

#include "memory.hpp"
#include "protocol.hpp"
#include "state.hpp"

namespace helsim::posix::detail {

// A process thread's entry: `launch` is the server's Launch for it. It fetches its process
// data with superGetProcessData, keeps its per-thread state behind the fs word, runs main and
// exits with its result.
void process_entry(std::uintptr_t launch);

inline constexpr std::uint64_t kClientMagic = 0x68656c73696d5058; // "helsimPX"

// One per process thread, behind its fs word.
struct ClientThread {
	std::uint64_t magic = kClientMagic;
	protocol::ProcessData data{};
	Dispatcher queue{QueueConfig{4, 2, 4096}};
	AtomicCounters *counters = nullptr;
	std::uint64_t next_tag = 1;
	bool exited = false; // the server took an _exit; the thread is unwinding

	// ---- signals (client_signals.cpp: the trampoline writes these; client_wait.cpp reads them)
	std::uint64_t handlers_run = 0;     // bumped after each signal handler returned
	bool last_handler_restarts = false; // the last handler run was installed with SA_RESTART
	// A handler runs at a stop, which may be inside another call's wait: completions its own
	// calls took that belong to the interrupted wait wait here for it (wait_own).
	std::vector<Element> stashed;
	// ---- end signals

	// ---- waiting (client_wait.cpp)
	unsigned guard_depth = 0; // SignalGuards entered and not left (they nest)
	// ---- end waiting

	// ---- processes (client_process.cpp)
	// A forked child: where its parent's mmap'd areas are in its space (fork_address()).
	const std::vector<Relocation> *relocations = nullptr;
	// ---- end processes
};

// How a call that blocks is cancelled at its server when a signal arrives while it waits
// (EINTR): Managarm's cancellation ids. The wait sends the cancel once and goes on waiting for
// the call's own completion, which then says what was done (-EINTR, or the data that won).
struct Cancel {
	enum class Via {
		posix_lane, // kSuperCancel(id), or a kCancel request with supercalls off
		file_lane,  // a kFileCancel head on `lane`, the read's passthrough lane
		clock,      // kHelSubmitCancel of the AwaitClock whose cancellation tag is `id`
	};
	Via via = Via::posix_lane;
	std::uint64_t id = 0;
	HelHandle lane = kHelNullHandle;
	// handlers_run when the call began: with no thread page, a handler that ran since (at an
	// interrupt of the wait) is how the wait learns of the signal.
	std::uint64_t handlers_before = 0;
	bool sent = false;
};

// Waits for the completion with `context` on the thread's queue. Others are stashed, not
// dropped: a signal handler's calls nest inside the wait they interrupted. With `cancel`, a
// signal seen while waiting cancels the call first.
Element wait_own(ClientThread &t, std::uintptr_t context, Cancel *cancel = nullptr);

// Managarm's SignalGuard around a call that may block (a no-op without a thread page): while
// inside, the server does not interrupt the thread for a signal but defers it (the flag at 2)
// and alerts the queue; leaving runs the deferred signal's handler (superSigRaise).
void enter_signal_guard(ClientThread &t);
void leave_signal_guard(ClientThread &t);

// Runs `call(handlers_before)`, a call that may block, inside a SignalGuard: -EINTR when a
// signal cancelled it. With `restart` (Linux's rule for the call) it starts again when the
// handler that ran was installed with SA_RESTART, or when none ran (the signal was blocked or
// ignored meanwhile: nothing for the program to see). With `since`, handlers are counted from
// there instead of from the call's start: ppoll counts from before it set its mask, so that a
// handler the new mask let run ends the wait at once (Linux sets the mask atomically).
template <typename Call>
std::int64_t interruptible(ClientThread &t, bool restart, Call &&call,
		std::optional<std::uint64_t> since = std::nullopt) {
	for (;;) {
		std::uint64_t before = since.value_or(t.handlers_run);
		since.reset();
		enter_signal_guard(t);
		std::int64_t result = call(before);
		leave_signal_guard(t);
		bool handled = t.handlers_run != before;
		if (result != -EINTR || !restart || (handled && !t.last_handler_restarts))
			return result;
	}
}

// Thrown by _exit once the server has recorded the exit: unwinds the thread to its entry. Not
// a std::exception, so that `catch (const std::exception &)` in a program does not stop it.
struct ProcessExit {};

// The calling thread's client state; nullptr outside a POSIX process.
ClientThread *self();

inline bool supercalls(const ClientThread &t) {
	return t.data.flags & protocol::kProcessUsesSupercalls;
}

// A supercall's HelError and Out0..2; at most 9 arguments.
struct SupercallResult {
	HelError error = kHelErrNone;
	HelWord out[3] = {};
};
SupercallResult supercall_words(std::uint32_t number, std::initializer_list<HelWord> args);

// A supercall's answer: Out0, or Out1 when it holds a negative errno.
std::int64_t supercall(std::uint32_t number, HelWord a0 = 0, HelWord a1 = 0, HelWord a2 = 0,
		HelWord a3 = 0);

inline protocol::Request make(protocol::MessageId id, std::int64_t a = 0, std::int64_t b = 0,
		std::int64_t c = 0, std::int64_t d = 0) {
	return protocol::Request{{id, 0}, a, b, c, d, 0};
}

// An exchange's results, and the completions that RecvInline data in them points into: one
// completion with batching, and without, one for the offer and one per action.
template <typename Request>
struct ClientExchange {
	std::array<Element, Request::kCount> elements;
	ipc::Results<Request> results;
};

// One submission of `item` on `lane`, and its completion in `out`; false if the kernel refused
// it (a lane handle that is not open).
template <typename Item>
bool submit_and_wait(ClientThread &t, Cancel *cancel, HelHandle lane, Element &out,
		const Item &item) {
	AtomicCounters::bump(t.counters->client_submissions);
	std::uintptr_t context = t.next_tag++;
	ipc::submit(t.queue, lane, context, item);
	out = wait_own(t, context, cancel);
	return out.context() == context;
}

// Options::batching off: the offer alone (with kHelItemWantLane, which hands this side the
// conversation's lane), then each action as its own submission on the conversation, as
// Managarm's clients did before action lists were chained. The server cannot tell the
// difference: the actions meet its own in the same order.
template <typename Request, typename... Items, std::size_t... I>
bool exchange_unbatched(ClientThread &t, Cancel *cancel, HelHandle lane,
		ClientExchange<Request> &exchange, std::index_sequence<I...>, const Items &...items) {
	static_assert((... && (Items::kCount == 1)), "an action with children cannot go alone");
	if (!submit_and_wait(t, cancel, lane, exchange.elements[0], ipc::offer_want_lane()))
		return false;
	ipc::HandleResult offered =
			std::get<0>(ipc::parse<decltype(ipc::offer_want_lane())>(exchange.elements[0]));
	std::get<0>(exchange.results) = offered;
	if (offered.error != kHelErrNone) {
		((std::get<I + 1>(exchange.results).error = offered.error), ...);
		return true;
	}
	auto step = [&]<std::size_t N, typename Item>(std::integral_constant<std::size_t, N>,
						const Item &item) {
		if (!submit_and_wait(t, cancel, offered.handle, exchange.elements[N], item))
			return false;
		std::get<N>(exchange.results) = std::get<0>(ipc::parse<Item>(exchange.elements[N]));
		return true;
	};
	bool done = (... && step(std::integral_constant<std::size_t, I + 1>{}, items));
	helCloseDescriptor(kHelThisUniverse, offered.handle);
	return done;
}

// An offer carrying `items` on `lane`: one submission, or one per action with batching off.
// nullopt if the kernel refused a submission (a lane handle that is not open). With `cancel`,
// a signal that arrives while it waits cancels it (wait_own).
template <typename... Items>
auto cancellable_exchange(ClientThread &t, Cancel *cancel, HelHandle lane, const Items &...items)
		-> std::optional<ClientExchange<decltype(ipc::offer(items...))>> {
	using Request = decltype(ipc::offer(items...));
	ClientExchange<Request> exchange;
	try {
		if (t.data.flags & protocol::kProcessUnbatched) {
			if (!exchange_unbatched(t, cancel, lane, exchange, std::index_sequence_for<Items...>{},
						items...))
				return std::nullopt;
			return exchange;
		}
		if (!submit_and_wait(t, cancel, lane, exchange.elements[0], ipc::offer(items...)))
			return std::nullopt;
		exchange.results = ipc::parse<Request>(exchange.elements[0]);
		return exchange;
	} catch (const HelException &) {
		return std::nullopt;
	}
}

template <typename... Items>
auto exchange(ClientThread &t, HelHandle lane, const Items &...items) {
	return cancellable_exchange(t, nullptr, lane, items...);
}

// The Response in a reply, or the error the exchange itself met.
std::int64_t answer(HelError offered, const ipc::InlineResult &reply, protocol::Response &response,
		std::int64_t lane_error);

// A request on the POSIX lane: offer(head, credentials, [tail], reply). The Response's value,
// or a negative errno.
std::int64_t request(ClientThread &t, protocol::Request head, std::string_view tail = {},
		protocol::Response *out = nullptr);

// A request as request() does it, whose wait `cancel` may cancel.
std::int64_t cancellable_request(ClientThread &t, Cancel *cancel, protocol::Request head,
		std::string_view tail = {}, protocol::Response *out = nullptr);

// A request that may block (waitpid, poll, epoll_wait, sigsuspend and sigtimedwait as
// requests): it carries a cancellation id, and a signal that arrives while it waits cancels it
// at the server (kSuperCancel, or kCancel with supercalls off), which answers -EINTR
// (interruptible()).
std::int64_t blocking_request(ClientThread &t, protocol::Request head, std::string_view tail = {},
		protocol::Response *out = nullptr, bool restart = false,
		std::optional<std::uint64_t> since = std::nullopt);

// The thread page's deferred signal: its handler runs (superSigRaise, or kSigRaise).
void raise_deferred(ClientThread &t);

// Copies into the process's own memory through the kernel (kHelSubmitWriteMemory on itself),
// so that a bad destination is -EFAULT and not a fault of the process.
bool copy_out(ClientThread &t, void *to, const void *from, std::size_t size);

// A path's length, or a negative errno.
std::int64_t path_length(const char *path);

} // namespace helsim::posix::detail

// Declares `t`, the calling thread's client state, or returns -ENOSYS outside a process. `t`
// is the name it declares, which cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define HELSIM_POSIX_CLIENT(t)                                                                     \
	::helsim::posix::detail::ClientThread *t = ::helsim::posix::detail::self();                    \
	if (!t)                                                                                        \
	return -ENOSYS
// NOLINTEND(bugprone-macro-parentheses)
