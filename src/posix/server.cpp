#include "server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "client.hpp"
#include "pipe.hpp"
#include "tmpfs.hpp"

namespace helsim::posix::detail {

using namespace helsim::ipc;
using protocol::Request;
using protocol::Response;

namespace {

constexpr std::size_t kPage = 4096;

// A page the server writes directly: its frame is allocated now (kHelAllocContinuous), so
// that running out of memory is helAllocateMemory's kHelErrNoMemory, not a fault of the server
// at its first write (lazy memory gets its frame then).
HelError allocate_page(HelHandle &memory) {
	return helAllocateMemory(kPage, kHelAllocContinuous, nullptr, &memory);
}

// A page of fresh memory mapped into the server (read-write) and into `space` with `flags`.
HelError map_shared_page(HelHandle space, std::uint32_t flags, void *&server, void *&process) {
	HelHandle memory = kHelNullHandle;
	if (HelError e = allocate_page(memory))
		return e;
	HelError e = helMapMemory(memory, kHelNullHandle, nullptr, 0, kPage,
			kHelMapProtRead | kHelMapProtWrite, &server);
	if (!e) {
		e = helMapMemory(memory, space, nullptr, 0, kPage, flags, &process);
		if (e)
			helUnmapMemory(kHelNullHandle, server, kPage);
	}
	helCloseDescriptor(kHelThisUniverse, memory); // the mappings keep it
	return e;
}

int signal_of(unsigned observation) {
	switch (observation) {
	case kHelObservePageFault:
	case kHelObserveGeneralFault: return SIGSEGV;
	case kHelObserveDivByZero: return SIGFPE;
	case kHelObserveBreakpoint: return SIGTRAP;
	case kHelObservePanic: return SIGABRT;
	default: return SIGILL; // as Managarm's server treats an observation it does not know
	}
}

} // namespace

Server::Server(System::State &state, Executor &executor) : state_{state}, executor_{executor} {}

HelError Server::map_clock() {
	if (!state_.options.clock_page)
		return kHelErrNone;
	if (HelError e = allocate_page(clock_memory_))
		return e;
	void *page = nullptr;
	if (HelError e = helMapMemory(clock_memory_, kHelNullHandle, nullptr, 0, kPage,
				kHelMapProtRead | kHelMapProtWrite, &page))
		return e;
	clock_page_ = static_cast<protocol::TrackerPage *>(page);
	// The offset the state keeps (it survives a server restart), published as it is.
	std::int64_t offset = 0;
	{
		std::lock_guard lock{state_.mutex};
		offset = state_.realtime_offset;
	}
	std::uint64_t now = 0;
	helGetClock(&now);
	write_clock(offset, now);
	return kHelErrNone;
}

Server::~Server() {
	if (clock_page_)
		helUnmapMemory(kHelNullHandle, clock_page_, kPage);
	if (clock_memory_)
		helCloseDescriptor(kHelThisUniverse, clock_memory_);
}

Async<bool> Server::copy_from_process(const Process &p, std::uint64_t address, void *to,
		std::size_t size) {
	auto read = co_await executor_.operation<HelSimpleResult>(kHelSubmitReadMemory,
			HelSqReadMemory{p.thread, address, size, to});
	co_return read.error == kHelErrNone;
}

Async<bool> Server::copy_to_process(const Process &p, std::uint64_t address, const void *from,
		std::size_t size) {
	auto written = co_await executor_.operation<HelSimpleResult>(kHelSubmitWriteMemory,
			HelSqWriteMemory{p.thread, address, size, from});
	co_return written.error == kHelErrNone;
}

void Server::run() {
	if (map_clock() != kHelErrNone) {
		state_.server_failed();
		return;
	}
	for (;;) {
		executor_.run([this] { start_pending_spawns(); });
		std::lock_guard lock{state_.mutex};
		if (state_.pending.empty()) {
			state_.server_running = false;
			return;
		}
	}
}

std::shared_ptr<Process> Server::process_by_credentials(
		const std::array<char, 16> &credentials) const {
	auto it = by_credentials_.find(credentials);
	return it == by_credentials_.end() ? nullptr : it->second.lock();
}

// ------------------------------------------------------------------ processes

void Server::start_pending_spawns() {
	// Runs between every two completions: one load when the host asked for nothing.
	if (!state_.spawns_pending.load(std::memory_order_acquire))
		return;
	for (;;) {
		PendingSpawn spawn;
		{
			std::lock_guard lock{state_.mutex};
			if (state_.pending.empty()) {
				state_.spawns_pending.store(false, std::memory_order_relaxed);
				return;
			}
			spawn = std::move(state_.pending.front());
			state_.pending.pop_front();
		}
		if (start_process(spawn, nullptr) != kHelErrNone) {
			// It never ran: report it as a shell reports a program it could not start.
			std::lock_guard lock{state_.mutex};
			state_.statuses[spawn.pid] = W_EXITCODE(127, 0);
		}
	}
}

HelError Server::start_process(const PendingSpawn &spawn, Process *parent) {
	auto p = std::make_shared<Process>();
	p->pid = spawn.pid;
	p->ppid = parent ? parent->pid : 0;
	p->path = spawn.path;
	p->launch.main = state_.program(spawn.path);
	p->launch.set_args(spawn.argv);
	if (!p->launch.main)
		return kHelErrIllegalArgs;
	auto fail = [&](HelError e) {
		discard(*p);
		return e;
	};
	if (HelError e = make_process(*p))
		return fail(e);

	// The file table: the parent's fds without FD_CLOEXEC, or /dev/null and /dev/console.
	if (parent) {
		for (int fd = 0; fd < protocol::kFileTableSize; ++fd)
			if (parent->fds[fd].file && !parent->fds[fd].cloexec)
				if (install(*p, parent->fds[fd].file, false, 0, fd) < 0)
					return fail(kHelErrNoMemory);
	} else {
		std::shared_ptr<Inode> null, console;
		state_.tmpfs->lookup("/dev/null", null);
		state_.tmpfs->lookup("/dev/console", console);
		if (null && console) {
			auto out = state_.tmpfs->make_file(console, O_WRONLY);
			if (install_new(*p, state_.tmpfs->make_file(null, O_RDONLY), false) != 0 ||
					install_new(*p, out, false) != 1 || install(*p, out, false, 0, 2) < 0)
				return fail(kHelErrNoMemory);
		}
	}
	if (HelError e = launch_process(p))
		return fail(e);
	if (parent) {
		p->parent = find_process(parent->pid);
		parent->children.push_back(p);
	}
	return kHelErrNone;
}

HelError Server::map_pages(Process &p) {
	void *server = nullptr, *process = nullptr;
	if (state_.options.file_table) {
		if (HelError e = map_shared_page(p.space, kHelMapProtRead, server, process))
			return e;
		p.file_table = static_cast<HelHandle *>(server);
		p.file_table_in_process = static_cast<HelHandle *>(process);
	}
	if (state_.options.thread_page) {
		if (HelError e = map_shared_page(p.space, kHelMapProtRead | kHelMapProtWrite, server,
					process))
			return e;
		p.thread_page = static_cast<protocol::ThreadPage *>(server);
		p.thread_page_in_process = static_cast<protocol::ThreadPage *>(process);
	}
	if (clock_page_) {
		if (HelError e = helMapMemory(clock_memory_, p.space, nullptr, 0, kPage, kHelMapProtRead,
					&process))
			return e;
		p.clock_page_in_process = static_cast<protocol::TrackerPage *>(process);
	}
	return kHelErrNone;
}

// The process is gone for POSIX (exit, a fatal fault): its fds close, its POSIX lane shuts
// down, its status is known, its parent is told. Its thread may still be unwinding; reap()
// follows its end.
void Server::end_process(Process &p, int status) {
	if (!p.alive)
		return;
	p.alive = false;
	p.waiting.changed(); // its poll and epoll_wait requests end
	close_all(p);
	helShutdownLane(p.posix_lane);
	{
		std::lock_guard lock{state_.mutex};
		state_.statuses[p.pid] = status;
	}
	AtomicCounters::bump(state_.counters.processes_exited);
	leave_family(p, status);
}

void Server::reap(const std::shared_ptr<Process> &p) {
	for (HelHandle h : {p->thread, p->space, p->universe})
		helCloseDescriptor(kHelThisUniverse, h);
	p->areas.clear(); // their views; the mappings went with the space
	if (p->file_table)
		helUnmapMemory(kHelNullHandle, p->file_table, kPage);
	if (p->thread_page)
		helUnmapMemory(kHelNullHandle, p->thread_page, kPage);
	forget_credentials(*p);
}

// The process's thread's credentials name it: on the POSIX lane, on passthrough lanes, and
// for the inline supercall callback.
void Server::remember_credentials(const std::shared_ptr<Process> &p) {
	helGetCredentials(p->thread, 0, p->credentials.data());
	by_credentials_[p->credentials] = p;
	if (state_.options.inline_supercalls) {
		std::unique_lock lock{state_.inline_mutex};
		state_.tids[p->credentials] = p->pid;
	}
}

void Server::forget_credentials(const Process &p) {
	by_credentials_.erase(p.credentials);
	if (state_.options.inline_supercalls) {
		std::unique_lock lock{state_.inline_mutex};
		state_.tids.erase(p.credentials);
	}
}

// Managarm's observeThread: every stop of the process's thread, until it ends.
Task Server::observe(std::shared_ptr<Process> p) {
	bool started = false;
	for (;;) {
		auto seen = co_await executor_.operation<HelObserveResult>(kHelSubmitObserve,
				HelSqObserve{p->thread});
		if (seen.error != kHelErrNone)
			break; // kHelErrThreadTerminated
		// Signals are taken at every stop before the resume (Managarm's
		// handlePendingSignalsFromObservation); the first stop is the thread's creation.
		p->stopped = true;
		p->signals.interrupted = false; // any stop takes what an interrupt was asked for
		bool resume = true;
		if (seen.observation == kHelObserveInterrupt) {
			if (started)
				resume = co_await deliver(p);
			started = true;
		} else if (seen.observation >= kHelObserveSuperCall) {
			std::uint32_t number = seen.observation - kHelObserveSuperCall;
			resume = co_await serve_supercall(p, number);
			// A restore answered with the next frame itself (the trampoline drains).
			if (resume && number != protocol::kSuperSigRestore)
				resume = co_await deliver(p);
		} else {
			// A fault: its signal's default action, even with a handler installed
			// (docs/posix-signals.md: handlers do not run for synchronous faults).
			AtomicCounters::bump(state_.counters.signals_sent);
			kill_by_signal(*p, signal_of(seen.observation));
			resume = false;
		}
		p->stopped = false;
		if (resume)
			helResume(p->thread);
	}
	// execve killed the thread: the new image's thread takes over, the process lives on.
	if (HelHandle next = std::exchange(p->next_thread, kHelNullHandle)) {
		if (p->alive) {
			start_image(p, next);
			co_return;
		}
		helCloseDescriptor(kHelThisUniverse, next); // never ran: closing it ends it
	}
	// Ended without _exit: an exception escaped main (std::terminate would abort), or the
	// program never ran, which is reported as a program that could not be started.
	end_process(*p, p->image_started ? SIGABRT : W_EXITCODE(127, 0));
	reap(p);
}

Async<bool> Server::serve_supercall(std::shared_ptr<Process> p, std::uint32_t number) {
	AtomicCounters::bump(state_.counters.supercalls);
	HelWord gprs[kHelNumGprs];
	if (helLoadRegisters(p->thread, kHelRegsGeneral, gprs) != kHelErrNone)
		co_return false;
	switch (number) {
	case protocol::kSuperSigKill:
	case protocol::kSuperSigRestore:
	case protocol::kSuperSigMask:
	case protocol::kSuperSigRaise:
	case protocol::kSuperSigAltStack:
	case protocol::kSuperSigSuspend:
	case protocol::kSuperSigGetPending:
	case protocol::kSuperSigTimedWait: co_return co_await signal_supercall(p, number, gprs);
	case protocol::kSuperFork:
	case protocol::kSuperExecve: co_return co_await process_supercall(p, number, gprs);
	default: break;
	}
	HelWord arg0 = gprs[kHelRegArg0], arg1 = gprs[kHelRegArg1];
	std::int64_t value = 0, error = 0;
	HelError hel_error = kHelErrNone;
	if (!p->alive && number != protocol::kSuperExit) {
		error = -ESRCH; // exited: its destructors may still call, but nothing is served
	} else {
		switch (number) {
		case protocol::kSuperGetProcessData: {
			protocol::ProcessData data{};
			data.posix_lane = p->posix_lane_in_process;
			data.thread_page = p->thread_page_in_process;
			data.file_table = p->file_table_in_process;
			data.clock_tracker_page = p->clock_page_in_process;
			data.flags = (state_.options.supercalls ? protocol::kProcessUsesSupercalls : 0) |
					(state_.options.supercalls && state_.options.inline_supercalls
									? protocol::kProcessInlineSupercalls
									: 0) |
					(state_.options.batching ? 0 : protocol::kProcessUnbatched);
			data.counters = &state_.counters;
			if (!co_await copy_to_process(*p, arg0, &data, sizeof(data)))
				error = -EFAULT;
			else
				p->image_started = true;
			break;
		}
		case protocol::kSuperExit: value = exit(*p, static_cast<int>(arg0)); break;
		case protocol::kSuperAnonAllocate:
			value = anon_allocate(*p, arg0, static_cast<int>(arg1),
					static_cast<int>(gprs[kHelRegArg2]));
			break;
		case protocol::kSuperAnonDeallocate: value = anon_free(*p, arg0, arg1); break;
		case protocol::kSuperGetTid:
			value = p->pid; // one thread per process: its tid is the pid
			break;
		case protocol::kSuperCancel: value = cancel_request(*p, arg0); break;
		default: hel_error = kHelErrIllegalSyscall;
		}
	}
	if (value < 0) {
		error = value;
		value = 0;
	}
	gprs[kHelRegError] = static_cast<HelWord>(hel_error);
	gprs[kHelRegOut0] = static_cast<HelWord>(value);
	gprs[kHelRegOut1] = static_cast<HelWord>(error);
	co_return helStoreRegisters(p->thread, kHelRegsGeneral, gprs) == kHelErrNone;
}

std::int64_t Server::exit(Process &p, int code) {
	end_process(p, W_EXITCODE(code & 0xff, 0));
	return 1; // tells the client to unwind its thread
}

// Managarm's serveRequests: accept, read the head, detach a handler, accept the next.
Task Server::serve_requests(std::shared_ptr<Process> p) {
	for (;;) {
		auto accepted = co_await executor_.exchange(p->posix_lane,
				accept(recv_inline(), extract_credentials()));
		auto &[conversation, head, credentials] = accepted.results;
		if (conversation.error == kHelErrNoMemory)
			continue; // the request never arrived (its call is -ENOMEM): the lane serves on
		if (conversation.error != kHelErrNone)
			break;
		auto request = protocol::decode<Request>(head.data);
		accepted.release();
		AtomicCounters::bump(state_.counters.server_requests);
		executor_.spawn(handle_request(p, conversation.handle, request));
	}
	helCloseDescriptor(kHelThisUniverse, p->posix_lane);
}

} // namespace helsim::posix::detail
