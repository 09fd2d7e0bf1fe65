// The signal calls inside a process, and the trampoline the server points a thread at to run
// a handler (docs/posix-signals.md).
#include <algorithm>
#include <cerrno>
#include <cstring>

#include <helsim/posix.hpp>

#include "client.hpp"
#include "signals.hpp"

namespace helsim::posix {

namespace detail {

namespace {

std::uint64_t to_bits(const sigset_t &set) {
	std::uint64_t bits = 0;
	std::memcpy(&bits, &set, sizeof(bits)); // glibc: signal n is bit n - 1 of the first word
	return bits;
}

void from_bits(std::uint64_t bits, sigset_t &set) {
	sigemptyset(&set);
	std::memcpy(&set, &bits, sizeof(bits));
}

struct SignalResult {
	std::int64_t value = 0; // Out0, or a negative errno
	std::int64_t value2 = 0;
};

// One signal call: the supercall, or (supercalls off) its request on the POSIX lane. A request
// does not stop the thread, so a signal it made deliverable waits for the next syscall: helNop
// is that syscall, and the handler has run when the call returns (as with the supercall).
SignalResult signal_call(ClientThread &t, protocol::Supercall number, protocol::MessageId id,
		std::initializer_list<std::int64_t> args, bool blocking = false) {
	std::int64_t a[4] = {};
	std::copy(args.begin(), args.end(), a);
	SignalResult result;
	if (supercalls(t)) {
		auto words = supercall_words(number,
				{static_cast<HelWord>(a[0]), static_cast<HelWord>(a[1]), static_cast<HelWord>(a[2]),
						static_cast<HelWord>(a[3])});
		if (words.error != kHelErrNone)
			return {-ENOSYS, 0};
		auto error = static_cast<std::int64_t>(words.out[1]);
		result.value = error ? error : static_cast<std::int64_t>(words.out[0]);
		result.value2 = static_cast<std::int64_t>(words.out[2]);
		return result;
	}
	protocol::Response response;
	auto head = make(id, a[0], a[1], a[2], a[3]);
	result.value =
			blocking ? blocking_request(t, head, {}, &response) : request(t, head, {}, &response);
	result.value2 = response.value2;
	helNop();
	return result;
}

// A call that cannot fail (the restorer's, the deferred raise): one whose request the kernel
// could not carry (-ENOMEM; the server never saw it) is made again, as _exit's is. Dropped,
// the handler's mask and frame would stay, or the deferred signal stay undelivered.
SignalResult signal_call_until_taken(ClientThread &t, protocol::Supercall number,
		protocol::MessageId id, std::initializer_list<std::int64_t> args) {
	SignalResult result;
	do
		result = signal_call(t, number, id, args);
	while (result.value == -ENOMEM);
	return result;
}

std::int64_t set_mask(ClientThread &t, int how, std::uint64_t set, std::int64_t *seq = nullptr) {
	auto result = signal_call(t, protocol::kSuperSigMask, protocol::kSigMask,
			{how, static_cast<std::int64_t>(set)});
	if (seq)
		*seq = result.value2;
	return result.value;
}

} // namespace

void raise_deferred(ClientThread &t) {
	signal_call_until_taken(t, protocol::kSuperSigRaise, protocol::kSigRaise, {});
}

void signal_trampoline(HelWord frame, HelWord, HelWord, HelWord, HelWord, HelWord) {
	ClientThread *t = self();
	while (frame) {
		auto *f = reinterpret_cast<SignalFrame *>(frame);
		auto signo = static_cast<int>(f->signo);
		if (f->flags & SA_SIGINFO)
			reinterpret_cast<void (*)(int, siginfo_t *, void *)>(
					f->handler)(signo, &f->info, &f->context);
		else
			reinterpret_cast<void (*)(int)>(f->handler)(signo);
		if (!t)
			return;
		++t->handlers_run;
		t->last_handler_restarts = f->flags & SA_RESTART;
		auto next = signal_call_until_taken(*t, protocol::kSuperSigRestore, protocol::kSigRestore,
				{static_cast<std::int64_t>(frame)});
		frame = next.value > 0 ? static_cast<HelWord>(next.value) : 0;
	}
	// The interrupted wait may resume inside helDriveQueue, blind to what was stashed for it:
	// the alert ends that wait, and it looks at the stash.
	if (t && !t->stashed.empty())
		helAlertQueue(t->queue.queue());
}

} // namespace detail

using detail::signal_call;

int sigaction(int signo, const struct sigaction *action, struct sigaction *old) {
	HELSIM_POSIX_CLIENT(t);
	detail::SigactionWire wanted{}, former{};
	if (action) {
		wanted.handler = (action->sa_flags & SA_SIGINFO)
				? reinterpret_cast<std::uint64_t>(action->sa_sigaction)
				: reinterpret_cast<std::uint64_t>(action->sa_handler);
		wanted.flags = static_cast<std::uint32_t>(action->sa_flags);
		wanted.mask = detail::to_bits(action->sa_mask);
	}
	auto result = detail::request(*t,
			detail::make(protocol::kSigaction, signo,
					action ? reinterpret_cast<std::int64_t>(&wanted) : 0,
					old ? reinterpret_cast<std::int64_t>(&former) : 0));
	if (result < 0)
		return static_cast<int>(result);
	if (old) {
		std::memset(old, 0, sizeof(*old));
		if (former.flags & SA_SIGINFO)
			old->sa_sigaction =
					reinterpret_cast<void (*)(int, siginfo_t *, void *)>(former.handler);
		else
			old->sa_handler = reinterpret_cast<void (*)(int)>(former.handler);
		old->sa_flags = static_cast<int>(former.flags);
		detail::from_bits(former.mask, old->sa_mask);
	}
	return 0;
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
	HELSIM_POSIX_CLIENT(t);
	// No set: a query, as Managarm's (SIG_BLOCK with nothing changes nothing).
	auto former = detail::set_mask(*t, set ? how : SIG_BLOCK, set ? detail::to_bits(*set) : 0);
	if (former < 0 && former >= -4095)
		return static_cast<int>(former);
	if (old)
		detail::from_bits(static_cast<std::uint64_t>(former), *old);
	return 0;
}

int sigpending(sigset_t *set) {
	HELSIM_POSIX_CLIENT(t);
	if (!set)
		return -EFAULT;
	auto result = signal_call(*t, protocol::kSuperSigGetPending, protocol::kSigGetPending, {});
	detail::from_bits(static_cast<std::uint64_t>(result.value), *set);
	return 0;
}

int sigsuspend(const sigset_t *mask) {
	HELSIM_POSIX_CLIENT(t);
	if (!mask)
		return -EFAULT;
	std::int64_t seq = 0;
	auto former = detail::set_mask(*t, SIG_SETMASK, detail::to_bits(*mask), &seq);
	auto result = signal_call(*t, protocol::kSuperSigSuspend, protocol::kSigSuspend, {seq}, true);
	detail::set_mask(*t, SIG_SETMASK, static_cast<std::uint64_t>(former));
	return static_cast<int>(result.value);
}

int pause() {
	HELSIM_POSIX_CLIENT(t);
	std::int64_t seq = 0;
	detail::set_mask(*t, SIG_BLOCK, 0, &seq);
	return static_cast<int>(
			signal_call(*t, protocol::kSuperSigSuspend, protocol::kSigSuspend, {seq}, true).value);
}

int kill(pid_t pid, int signo) {
	HELSIM_POSIX_CLIENT(t);
	return static_cast<int>(
			signal_call(*t, protocol::kSuperSigKill, protocol::kSigKill, {0, pid, 0, signo}).value);
}

int raise(int signo) {
	// A getpid whose request failed (-ENOMEM) is no pid: kill would take it for a group's.
	pid_t self = getpid();
	return self < 0 ? self : kill(self, signo);
}

int sigaltstack(const stack_t *stack, stack_t *old) {
	HELSIM_POSIX_CLIENT(t);
	return static_cast<int>(signal_call(*t, protocol::kSuperSigAltStack, protocol::kSigAltStack,
			{reinterpret_cast<std::int64_t>(stack), reinterpret_cast<std::int64_t>(old)})
									.value);
}

int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout) {
	HELSIM_POSIX_CLIENT(t);
	if (!set)
		return -EFAULT;
	std::uint64_t ns = ~std::uint64_t{0};
	if (timeout) {
		if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000)
			return -EINVAL;
		ns = static_cast<std::uint64_t>(timeout->tv_sec) * 1'000'000'000 +
				static_cast<std::uint64_t>(timeout->tv_nsec);
	}
	return static_cast<int>(signal_call(*t, protocol::kSuperSigTimedWait, protocol::kSigTimedWait,
			{static_cast<std::int64_t>(detail::to_bits(*set)), static_cast<std::int64_t>(ns),
					reinterpret_cast<std::int64_t>(info)},
			true)
									.value);
}

} // namespace helsim::posix
