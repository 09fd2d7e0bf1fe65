// Signals on the server side: generation (send_signal), the thread page's deferral protocol,
// delivery at a stop (frame in the process's memory, upcall to the client's trampoline), the
// restorer, and the signal calls shared by supercalls and their request fallbacks.
// docs/posix-signals.md describes the design.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>

#include "server.hpp"

namespace helsim::posix::detail {

namespace {

std::uint64_t to_bits(const sigset_t &set) {
	std::uint64_t bits = 0;
	std::memcpy(&bits, &set, sizeof(bits)); // glibc: signal n is bit n - 1 of the first word
	return bits;
}

sigset_t to_sigset(std::uint64_t bits) {
	sigset_t set;
	sigemptyset(&set);
	std::memcpy(&set, &bits, sizeof(bits));
	return set;
}

bool valid_signo(std::int64_t signo) { return signo >= 1 && signo <= kMaxSignal; }

// The answer of a parked call whose process died meanwhile: its thread is not resumed.
constexpr std::int64_t kDied = std::numeric_limits<std::int64_t>::min();
// push_frame's answer when the process died instead.
constexpr std::uint64_t kDiedFrame = ~std::uint64_t{0};

} // namespace

Condition &Server::signal_event(Process &p) {
	if (!p.signal_event)
		p.signal_event = std::make_unique<Condition>(executor_);
	return *p.signal_event;
}

void Server::kill_by_signal(Process &p, int signo) {
	if (!p.alive)
		return;
	// The kill first: a thread that runs meanwhile unwinds at its next cancellation point, so
	// nothing it does after that point sees the process ended (its fds closed).
	helKillThread(p.thread);
	end_process(p, signo);        // the status waitpid reports: WIFSIGNALED, WTERMSIG == signo
	signal_event(p).notify_all(); // a parked sigsuspend/sigtimedwait ends without a resume
}

void Server::defer(Process &p) {
	p.signals.delayed = true;
	// Managarm's alertRemoteQueue: a wait of the guard's call ends, and sees the flag at 2.
	HelHandle queue =
			std::atomic_ref<HelHandle>{p.thread_page->queue_handle}.load(std::memory_order_acquire);
	HelHandle ours = kHelNullHandle;
	if (queue &&
			helTransferDescriptor(queue, p.universe, kHelTransferDescriptorIn, kHelRightSignal, 0,
					&ours) == kHelErrNone) {
		helAlertQueue(ours);
		helCloseDescriptor(kHelThisUniverse, ours);
		AtomicCounters::bump(state_.counters.alerts);
	}
}

void Server::kick(Process &p) {
	if (p.stopped || p.signals.delayed || !p.alive)
		return;
	if (p.thread_page) {
		// Inside a SignalGuard: Managarm's checkOrRequestSignalRaise. The guard's exit raises.
		std::atomic_ref<std::uint32_t> flag{p.thread_page->global_signal_flag};
		std::uint32_t expected = 1;
		if (flag.compare_exchange_strong(expected, 2, std::memory_order_acq_rel)) {
			defer(p);
			return;
		}
	}
	if (p.signals.interrupted)
		return;
	p.signals.interrupted = true;
	helInterruptThread(p.thread);
	AtomicCounters::bump(state_.counters.interrupts);
}

void Server::send_signal(Process &target, int signo, int code, pid_t sender, int status) {
	if (!valid_signo(signo) || !target.alive)
		return;
	AtomicCounters::bump(state_.counters.signals_sent);
	if (signo == SIGKILL) {
		kill_by_signal(target, signo);
		return;
	}
	auto &s = target.signals;
	bool blocked = (s.blocked | s.waiting) & bit(signo);
	// Linux's sig_ignored: an ignored signal is dropped unless it is blocked (sigtimedwait may
	// take a blocked one).
	if (!blocked && s.ignored(signo))
		return;
	if (!blocked && s.actions[signo].handler == reinterpret_cast<std::uint64_t>(SIG_DFL)) {
		kill_by_signal(target, signo); // its default action is to terminate
		return;
	}
	siginfo_t info{};
	info.si_signo = signo;
	info.si_code = code;
	info.si_pid = sender;
	info.si_status = status;
	s.add(info);
	signal_event(target).notify_all();
	if (!(s.blocked & bit(signo)))
		kick(target);
}

bool Server::drop_ignored(Process &p) {
	auto &s = p.signals;
	std::uint64_t deliverable = s.deliverable();
	for (std::uint64_t left = deliverable; left; left &= left - 1) {
		int signo = __builtin_ctzll(left) + 1;
		if (s.ignored(signo)) {
			s.discard(signo);
			deliverable &= ~bit(signo);
		}
	}
	return deliverable != 0;
}

Async<std::uint64_t> Server::push_frame(std::shared_ptr<Process> p) {
	auto &s = p->signals;
	if (!p->alive || s.delayed || !drop_ignored(*p))
		co_return 0;
	if (p->thread_page) {
		// Inside a SignalGuard: the guard's exit raises (flag 2 tells it to).
		std::atomic_ref<std::uint32_t> flag{p->thread_page->global_signal_flag};
		std::uint32_t expected = 1;
		if (flag.load(std::memory_order_acquire) != 0) {
			// The stop may be inside a long wait of the guard's call: the alert ends it.
			if (flag.compare_exchange_strong(expected, 2, std::memory_order_acq_rel))
				defer(*p);
			co_return 0;
		}
	}
	siginfo_t info{};
	s.take(s.deliverable(), info);
	int signo = info.si_signo;
	SigactionWire action = s.actions[signo];
	if (action.handler == reinterpret_cast<std::uint64_t>(SIG_DFL)) {
		kill_by_signal(*p, signo); // drop_ignored left only signals whose default terminates
		co_return kDiedFrame;
	}

	// The stack: Managarm's raiseContext, with the server's own record of the frames.
	bool on_alt = false;
	std::uint64_t top = 0, bottom = 0;
	if (s.on_altstack() || ((action.flags & SA_ONSTACK) && !(s.altstack.ss_flags & SS_DISABLE))) {
		on_alt = true;
		bottom = reinterpret_cast<std::uint64_t>(s.altstack.ss_sp);
		top = s.on_altstack() ? s.frames.back().address : bottom + s.altstack.ss_size;
	} else {
		if (!s.stack_base) {
			std::int64_t base = anon_allocate(*p, kSignalStackSize, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS);
			if (base < 0) {
				kill_by_signal(*p, SIGSEGV);
				co_return kDiedFrame;
			}
			s.stack_base = static_cast<std::uint64_t>(base);
		}
		bottom = s.stack_base;
		top = s.frames.empty() || s.frames.back().on_altstack ? bottom + kSignalStackSize
															  : s.frames.back().address;
	}
	std::uint64_t address = (top - sizeof(SignalFrame)) & ~std::uint64_t{15};
	if (top < bottom + sizeof(SignalFrame) || address < bottom) {
		kill_by_signal(*p, SIGSEGV); // the signal stack overflowed
		co_return kDiedFrame;
	}

	SignalFrame frame{};
	frame.magic = kFrameMagic;
	frame.signo = static_cast<std::uint64_t>(signo);
	frame.handler = action.handler;
	frame.flags = action.flags;
	frame.info = info;
	HelWord words[19] = {};
	helLoadRegisters(p->thread, kHelRegsSignal, words);
	for (int i = 0; i < 19; ++i)
		frame.context.uc_mcontext.gregs[i] = static_cast<greg_t>(words[i]);
	frame.context.uc_sigmask = to_sigset(s.blocked);
	frame.context.uc_stack = s.altstack;
	if (on_alt)
		frame.context.uc_stack.ss_flags |= SS_ONSTACK;
	// Recorded before the write: with supercalls off a restore request and a stop may push
	// frames of one process at the same time, and each must see the other's.
	s.blocked |= action.mask | ((action.flags & SA_NODEFER) ? 0 : bit(signo));
	s.blocked &= ~kUnblockable;
	if (action.flags & SA_RESETHAND)
		s.actions[signo] = SigactionWire{};
	s.frames.push_back({address, on_alt});
	++s.seq;
	AtomicCounters::bump(state_.counters.signals_delivered);
	bool written = co_await copy_to_process(*p, address, &frame, sizeof(frame));
	if (!p->alive)
		co_return 0; // it exited meanwhile (supercalls off): resumed, its thread unwinds
	if (!written) {
		kill_by_signal(*p, SIGSEGV); // as Linux when it cannot write the frame
		co_return kDiedFrame;
	}
	co_return address;
}

Async<bool> Server::deliver(std::shared_ptr<Process> p) {
	std::uint64_t address = co_await push_frame(p);
	if (address == kDiedFrame)
		co_return false;
	if (!address)
		co_return true;
	// helStoreRegisters "Upcalls": storing Program saves General (the stop's answer) for the
	// return; the General stored after it holds the trampoline's arguments.
	HelWord program[2] = {};
	helLoadRegisters(p->thread, kHelRegsProgram, program);
	program[kHelRegIp] = reinterpret_cast<HelWord>(&signal_trampoline);
	program[kHelRegSp] = address;
	HelWord gprs[kHelNumGprs] = {};
	helLoadRegisters(p->thread, kHelRegsGeneral, gprs);
	if (helStoreRegisters(p->thread, kHelRegsProgram, program) != kHelErrNone)
		co_return false;
	gprs[kHelRegArg0] = address;
	if (helStoreRegisters(p->thread, kHelRegsGeneral, gprs) != kHelErrNone)
		co_return false;
	co_return true;
}

Async<std::int64_t> Server::restore(std::shared_ptr<Process> p, std::uint64_t address) {
	auto &s = p->signals;
	auto recorded = [&] {
		return std::find_if(s.frames.begin(), s.frames.end(),
				[address](const SignalState::Pushed &f) { return f.address == address; });
	};
	SignalFrame frame{};
	bool good = recorded() != s.frames.end();
	if (good) {
		bool read = co_await copy_from_process(*p, address, &frame, sizeof(frame));
		good = read && frame.magic == kFrameMagic &&
				valid_signo(static_cast<std::int64_t>(frame.signo)) && p->alive &&
				recorded() != s.frames.end();
	}
	if (!good) {
		kill_by_signal(*p, SIGSEGV); // Linux's bad-frame rule; the server only trusts its record
		co_return kDied;
	}
	// A handler may change the mask it returns to (Linux honours uc_sigmask).
	std::uint64_t mask = to_bits(frame.context.uc_sigmask) & ~kUnblockable;
	auto it = recorded();
	if (it->has_mask)
		mask = it->mask; // a frame below returned while this one ran
	if (it + 1 == s.frames.end()) {
		s.blocked = mask;
	} else {
		// Supercalls off: a stop pushed a frame above this one while its restore request was on
		// the way. That frame's handler runs on; it returns to this one's mask.
		(it + 1)->has_mask = true;
		(it + 1)->mask = mask;
	}
	s.frames.erase(it);
	// Draining: the next signal's frame, which the trampoline runs before it returns (an
	// upcall here would nest on the host stack once per signal).
	std::uint64_t next = co_await push_frame(p);
	co_return next == kDiedFrame ? kDied : static_cast<std::int64_t>(next);
}

std::int64_t Server::send_kill(Process &sender, std::int64_t pid, int signo) {
	if (signo < 0 || signo > kMaxSignal)
		return -EINVAL;
	// No process groups yet: each process is alone in a group whose id is its pid. 0 is the
	// caller's group, -1 every process but the caller and pid 1 (Linux's rule).
	if (pid > 0) {
		// A zombie exists (kill(pid, 0) says so) but takes no signal.
		auto target = find_process(pid);
		if (!target)
			return -ESRCH;
		if (signo && target->alive)
			send_signal(*target, signo, SI_USER, sender.pid);
		return 0;
	}
	std::vector<std::shared_ptr<Process>> targets;
	for (const auto &[credentials, weak] : by_credentials_) {
		auto target = weak.lock();
		if (!target)
			continue;
		bool match = pid > 0 ? target->pid == pid
				: pid == 0   ? target.get() == &sender
				: pid == -1  ? target.get() != &sender && target->pid != 1
							 : target->pid == -pid;
		if (match)
			targets.push_back(target);
	}
	if (targets.empty())
		return -ESRCH;
	if (signo)
		for (const auto &target : targets)
			send_signal(*target, signo, SI_USER, sender.pid);
	return 0;
}

Task Server::signal_timer(std::shared_ptr<Process> p, std::shared_ptr<bool> fired,
		std::uint64_t deadline, std::uint64_t tag) {
	auto result = co_await executor_.operation<HelSimpleResult>(kHelSubmitAwaitClock,
			HelSqAwaitClock{deadline, tag});
	if (result.error == kHelErrNone) {
		*fired = true;
		signal_event(*p).notify_all();
	}
}

Async<std::int64_t> Server::suspend(std::shared_ptr<Process> p, std::uint64_t seq,
		std::uint64_t cancel_id) {
	CancelToken token;
	CancelRegistry::Scope scope{cancels(), {p->credentials, cancel_id}, token};
	Condition &event = signal_event(*p);
	// No lost wake-up: a handler that ran since the mask was set (seq) ends it at once.
	while (p->alive && p->signals.seq <= seq && !drop_ignored(*p) && !token.cancelled) {
		token.waiting = &event;
		co_await event.wait();
		token.waiting = nullptr;
	}
	co_return p->alive ? -EINTR : kDied;
}

Async<std::int64_t> Server::timed_wait(std::shared_ptr<Process> p, std::uint64_t set,
		std::uint64_t timeout, std::uint64_t info_address, std::uint64_t cancel_id) {
	auto &s = p->signals;
	set &= ~kUnblockable;
	CancelToken token;
	CancelRegistry::Scope scope{cancels(), {p->credentials, cancel_id}, token};
	Condition &event = signal_event(*p);
	auto fired = std::make_shared<bool>(false);
	std::uint64_t tag = 0;
	std::int64_t result = -EAGAIN;
	siginfo_t info{};
	for (;;) {
		if (!p->alive) {
			result = kDied;
			break;
		}
		if (s.take(set, info)) {
			result = info.si_signo;
			break;
		}
		if (token.cancelled || ((s.deliverable() & ~set) && drop_ignored(*p))) {
			result = -EINTR; // a handled signal not in the set: its handler runs
			break;
		}
		if (timeout == 0 || *fired)
			break;
		if (!tag && timeout != ~std::uint64_t{0}) {
			std::uint64_t now = 0;
			helGetClock(&now);
			tag = next_timer_tag_++;
			executor_.spawn(signal_timer(p, fired, now + timeout, tag));
		}
		s.waiting |= set;
		token.waiting = &event;
		co_await event.wait();
		token.waiting = nullptr;
		s.waiting &= ~set;
	}
	if (tag && !*fired)
		executor_.dispatcher().submit(kHelSubmitCancel, 0, HelSqCancel{tag});
	if (result > 0 && info_address) {
		if (!co_await copy_to_process(*p, info_address, &info, sizeof(info)))
			result = -EFAULT; // Linux: the signal is consumed all the same
	}
	co_return result;
}

Async<std::int64_t> Server::altstack(std::shared_ptr<Process> p, std::uint64_t set,
		std::uint64_t old) {
	auto &s = p->signals;
	stack_t wanted{};
	if (set) {
		if (!co_await copy_from_process(*p, set, &wanted, sizeof(wanted)))
			co_return -EFAULT;
	}
	if (old) {
		stack_t current = s.altstack;
		if (s.on_altstack())
			current.ss_flags = SS_ONSTACK;
		if (!co_await copy_to_process(*p, old, &current, sizeof(current)))
			co_return -EFAULT;
	}
	if (!set)
		co_return 0;
	if (s.on_altstack())
		co_return -EPERM;
	if (wanted.ss_flags != 0 && wanted.ss_flags != SS_DISABLE && wanted.ss_flags != SS_ONSTACK)
		co_return -EINVAL;
	if (wanted.ss_flags == SS_DISABLE) {
		s.altstack = stack_t{nullptr, SS_DISABLE, 0};
		co_return 0;
	}
	if (wanted.ss_size < kMinSignalStack)
		co_return -ENOMEM;
	s.altstack = stack_t{wanted.ss_sp, 0, wanted.ss_size};
	co_return 0;
}

Async<Server::SignalAnswer> Server::signal_call(std::shared_ptr<Process> p, std::uint32_t number,
		std::array<std::uint64_t, 4> args, std::uint64_t cancel_id) {
	auto &s = p->signals;
	SignalAnswer answer;
	if (!p->alive) {
		answer.value = -ESRCH;
		co_return answer;
	}
	switch (number) {
	case protocol::kSuperSigKill:
		// Mode 1 (QueueInfo, sigqueue) is not supported.
		answer.value = args[0] != 0 ? -EINVAL
									: send_kill(*p, static_cast<std::int64_t>(args[1]),
											  static_cast<int>(static_cast<std::int64_t>(args[3])));
		break;
	case protocol::kSuperSigRestore: answer.value = co_await restore(p, args[0]); break;
	case protocol::kSuperSigMask: {
		answer.value = static_cast<std::int64_t>(s.blocked);
		answer.value2 = static_cast<std::int64_t>(s.seq);
		std::uint64_t set = args[1] & ~kUnblockable;
		switch (args[0]) {
		case SIG_BLOCK: s.blocked |= set; break;
		case SIG_UNBLOCK: s.blocked &= ~set; break;
		case SIG_SETMASK: s.blocked = set; break;
		default: answer.value = -EINVAL;
		}
		break;
	}
	case protocol::kSuperSigRaise: s.delayed = false; break;
	case protocol::kSuperSigAltStack: answer.value = co_await altstack(p, args[0], args[1]); break;
	case protocol::kSuperSigSuspend: answer.value = co_await suspend(p, args[0], cancel_id); break;
	case protocol::kSuperSigGetPending:
		answer.value = static_cast<std::int64_t>(s.pending() & s.blocked);
		break;
	case protocol::kSuperSigTimedWait:
		answer.value = co_await timed_wait(p, args[0], args[1], args[2], cancel_id);
		break;
	default: answer.value = -ENOSYS;
	}
	co_return answer;
}

Async<bool> Server::signal_supercall(std::shared_ptr<Process> p, std::uint32_t number,
		HelWord *gprs) {
	auto answer = co_await signal_call(p, number,
			{gprs[kHelRegArg0], gprs[kHelRegArg1], gprs[kHelRegArg2], gprs[kHelRegArg3]}, 0);
	if (answer.value == kDied)
		co_return false;
	gprs[kHelRegError] = kHelErrNone;
	gprs[kHelRegOut0] = static_cast<HelWord>(answer.value < 0 ? 0 : answer.value);
	gprs[kHelRegOut1] = static_cast<HelWord>(answer.value < 0 ? answer.value : 0);
	gprs[kHelRegOut2] = static_cast<HelWord>(answer.value2);
	co_return helStoreRegisters(p->thread, kHelRegsGeneral, gprs) == kHelErrNone;
}

Async<std::int64_t> Server::set_action(std::shared_ptr<Process> p, protocol::Request request) {
	auto &s = p->signals;
	int signo = static_cast<int>(request.a);
	auto set = static_cast<std::uint64_t>(request.b), old = static_cast<std::uint64_t>(request.c);
	if (!valid_signo(signo) || (set && (bit(signo) & kUnblockable)))
		co_return -EINVAL;
	SigactionWire wanted{};
	if (set) {
		if (!co_await copy_from_process(*p, set, &wanted, sizeof(wanted)))
			co_return -EFAULT;
	}
	if (old) {
		SigactionWire current = s.actions[signo];
		if (!co_await copy_to_process(*p, old, &current, sizeof(current)))
			co_return -EFAULT;
	}
	if (set) {
		wanted.mask &= ~kUnblockable;
		s.actions[signo] = wanted;
		if (s.ignored(signo))
			s.discard(signo); // Linux: setting SIG_IGN discards what is pending
	}
	co_return 0;
}

Async<std::int64_t> Server::signal_request(std::shared_ptr<Process> p,
		const protocol::Request &request, protocol::Response &response) {
	std::uint32_t number = 0;
	switch (request.preamble.id) {
	case protocol::kSigaction: co_return co_await set_action(p, request);
	case protocol::kCancel: co_return cancel_request(*p, static_cast<std::uint64_t>(request.a));
	case protocol::kSigKill: number = protocol::kSuperSigKill; break;
	case protocol::kSigMask: number = protocol::kSuperSigMask; break;
	case protocol::kSigRaise: number = protocol::kSuperSigRaise; break;
	case protocol::kSigRestore: number = protocol::kSuperSigRestore; break;
	case protocol::kSigAltStack: number = protocol::kSuperSigAltStack; break;
	case protocol::kSigSuspend: number = protocol::kSuperSigSuspend; break;
	case protocol::kSigGetPending: number = protocol::kSuperSigGetPending; break;
	case protocol::kSigTimedWait: number = protocol::kSuperSigTimedWait; break;
	default: co_return -ENOSYS;
	}
	auto answer = co_await signal_call(p, number,
			{static_cast<std::uint64_t>(request.a), static_cast<std::uint64_t>(request.b),
					static_cast<std::uint64_t>(request.c), static_cast<std::uint64_t>(request.d)},
			request.cancel_id);
	if (answer.value == kDied)
		co_return -EINTR; // nobody reads it: the thread is gone
	response.value2 = answer.value2;
	// A request does not stop the thread: what it made deliverable is taken at its next stop
	// (after a restore, the trampoline takes the next frame itself).
	if (number != protocol::kSuperSigRestore && p->signals.deliverable())
		kick(*p);
	co_return answer.value;
}

} // namespace helsim::posix::detail
