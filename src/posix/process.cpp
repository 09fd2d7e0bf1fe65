// Processes on the server side: making and discarding them, fork (copy-on-write anonymous
// memory), execve, waitpid, SIGCHLD and reparenting (docs/posix-processes.md).
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "client.hpp"
#include "server.hpp"

namespace helsim::posix::detail {

namespace {

constexpr std::size_t kPage = 4096;

// NUL-separated strings (an execve tail or argv area); a last string without its NUL counts.
std::vector<std::string> split_strings(std::string_view area) {
	std::vector<std::string> parts;
	while (!area.empty()) {
		std::size_t end = std::min(area.find('\0'), area.size());
		parts.emplace_back(area.substr(0, end));
		area.remove_prefix(std::min(end + 1, area.size()));
	}
	return parts;
}

} // namespace

// ------------------------------------------------------------------ making processes

HelError Server::make_process(Process &p) {
	p.children_changed = std::make_unique<Condition>(executor_);
	if (HelError e = helCreateUniverse(&p.universe))
		return e;
	if (HelError e = helCreateSpace(&p.space))
		return e;
	HelHandle client_end = kHelNullHandle;
	if (HelError e = helCreateStream(&p.posix_lane, &client_end, 0))
		return e;
	HelError e = helTransferDescriptor(client_end, p.universe, kHelTransferDescriptorOut,
			kHelRightInvoke, 0, &p.posix_lane_in_process);
	helCloseDescriptor(kHelThisUniverse, client_end);
	if (e)
		return e;
	return map_pages(p);
}

HelError Server::launch_process(const std::shared_ptr<Process> &p) {
	if (HelError e = helCreateThread(p->universe, p->space, kHelAbiSystemV,
				reinterpret_cast<void *>(&process_entry), &p->launch, kHelThreadStopped,
				&p->thread))
		return e;
	remember_credentials(p);
	processes_[p->pid] = p;
	AtomicCounters::bump(state_.counters.processes_started);
	executor_.spawn(observe(p));
	executor_.spawn(serve_requests(p));
	return kHelErrNone;
}

void Server::discard(Process &p) {
	close_all(p);
	for (HelHandle h : {p.thread, p.posix_lane, p.space, p.universe})
		if (h)
			helCloseDescriptor(kHelThisUniverse, h);
	p.areas.clear();
	if (p.file_table)
		helUnmapMemory(kHelNullHandle, p.file_table, kPage);
	if (p.thread_page)
		helUnmapMemory(kHelNullHandle, p.thread_page, kPage);
}

std::shared_ptr<Process> Server::find_process(pid_t pid) const {
	auto it = processes_.find(pid);
	return it == processes_.end() ? nullptr : it->second.lock();
}

bool Server::child_reaped_at_once(const Process &parent) const {
	// Linux: SIGCHLD set to SIG_IGN, or SA_NOCLDWAIT, and the children leave no zombies.
	const auto &action = parent.signals.actions[SIGCHLD];
	return action.handler == reinterpret_cast<std::uint64_t>(SIG_IGN) ||
			(action.flags & SA_NOCLDWAIT);
}

// ------------------------------------------------------------------ the family

// Linux's exit_notify: the children go to the reaper, the parent learns of the end (SIGCHLD,
// waitpid). The reaper is "the first process": the oldest living process without a parent
// (one the host spawned, or an orphan nobody took); without one, orphans have no parent and
// are reaped as they end, their statuses kept for System::exit_status only.
void Server::leave_family(Process &p, int status) {
	p.wait_status = status;
	p.children_changed->notify_all(); // its own waitpid ends
	// The parent's waiters wake; SIGCHLD carries what Linux puts in si_status.
	auto tell = [this](Process &parent, const Process &child) {
		int ended = *child.wait_status;
		parent.children_changed->notify_all();
		send_signal(parent, SIGCHLD, WIFSIGNALED(ended) ? CLD_KILLED : CLD_EXITED, child.pid,
				WIFSIGNALED(ended) ? WTERMSIG(ended) : WEXITSTATUS(ended));
	};
	std::shared_ptr<Process> reaper;
	for (auto &[pid, weak] : processes_) {
		auto candidate = weak.lock();
		if (candidate && candidate.get() != &p && candidate->alive && candidate->ppid == 0) {
			reaper = std::move(candidate);
			break;
		}
	}
	auto orphans = std::move(p.children);
	p.children.clear();
	for (auto &child : orphans) {
		child->ppid = reaper ? reaper->pid : 0;
		child->parent = reaper;
		if (!child->wait_status) {
			if (reaper)
				reaper->children.push_back(child);
			continue;
		}
		// A zombie: its new parent learns of it as if it ended now (Linux's reparent_leader).
		if (reaper && !child_reaped_at_once(*reaper)) {
			reaper->children.push_back(child);
			tell(*reaper, *child);
		} else {
			processes_.erase(child->pid);
		}
	}

	auto parent = p.parent.lock();
	if (!parent || !parent->alive) {
		processes_.erase(p.pid); // nobody can wait for it
		return;
	}
	tell(*parent, p);
	if (child_reaped_at_once(*parent)) {
		auto it = std::find_if(parent->children.begin(), parent->children.end(),
				[&](const auto &child) { return child.get() == &p; });
		std::shared_ptr<Process> kept; // p lives to the end of this call
		if (it != parent->children.end()) {
			kept = std::move(*it);
			parent->children.erase(it);
		}
		processes_.erase(p.pid);
	}
}

Async<std::int64_t> Server::waitpid(std::shared_ptr<Process> p, pid_t pid, int options,
		std::uint64_t cancel_id, protocol::Response &response) {
	if (options & ~(WNOHANG | WUNTRACED | WCONTINUED))
		co_return -EINVAL;
	if (pid < -1)
		co_return -ECHILD; // no process groups: no child is in another group
	CancelToken token;
	CancelRegistry::Scope scope{cancels(), {p->credentials, cancel_id}, token};
	for (;;) {
		bool any = false;
		for (auto it = p->children.begin(); it != p->children.end(); ++it) {
			if (pid > 0 && (*it)->pid != pid)
				continue;
			any = true;
			if ((*it)->wait_status) {
				auto child = std::move(*it);
				p->children.erase(it);
				processes_.erase(child->pid);
				response.value2 = *child->wait_status;
				co_return child->pid;
			}
		}
		if (!any)
			co_return -ECHILD;
		if (options & WNOHANG)
			co_return 0;
		if (token.cancelled)
			co_return -EINTR;
		if (!p->alive)
			co_return -ESRCH;
		Condition &changed = *p->children_changed;
		token.waiting = &changed;
		co_await changed.wait();
		token.waiting = nullptr;
	}
}

// ------------------------------------------------------------------ fork

// Managarm's Process::fork, with a child entry (a fiber cannot return twice) and new
// addresses for the child's memory (two spaces never map one address in helsim's window).
Async<std::int64_t> Server::fork(std::shared_ptr<Process> parent, HelWord entry, HelWord arg) {
	if (!entry)
		co_return -EINVAL;
	auto child = std::make_shared<Process>();
	child->pid = state_.allocate_pid();
	child->ppid = parent->pid;
	child->path = parent->path;
	auto fail = [&](std::int64_t error) {
		discard(*child);
		std::lock_guard lock{state_.mutex};
		state_.statuses.erase(child->pid);
		return error;
	};
	if (make_process(*child) != kHelErrNone)
		co_return fail(-ENOMEM);
	// Every fd at its number, FD_CLOEXEC too: only execve closes those.
	for (int fd = 0; fd < protocol::kFileTableSize; ++fd)
		if (parent->fds[fd].file &&
				install(*child, parent->fds[fd].file, parent->fds[fd].cloexec, 0, fd) < 0)
			co_return fail(-ENOMEM);
	std::vector<Relocation> relocations;
	std::map<const MemoryObject *, std::shared_ptr<MemoryObject>> forked;
	auto areas = parent->areas; // the parent is stopped, but a fork waits for the kernel
	for (const AnonArea &area : areas) {
		std::int64_t address = co_await fork_area(*child, area, forked);
		if (address < 0)
			co_return fail(address);
		relocations.push_back({area.address, static_cast<std::uintptr_t>(address), area.size});
	}
	if (!parent->alive) // killed while its memory was forked
		co_return fail(-ESRCH);
	for (const Relocation &r : relocations)
		if (arg >= r.from && arg - r.from < r.size) {
			arg = arg - r.from + r.to;
			break;
		}
	child->signals = parent->signals.inherit_for_fork();
	child->launch.set_args({});
	child->launch.main = fork_main(entry, arg, std::move(relocations));
	if (launch_process(child) != kHelErrNone)
		co_return fail(-ENOMEM);
	child->parent = parent;
	parent->children.push_back(child);
	AtomicCounters::bump(state_.counters.forks);
	co_return child->pid;
}

// ------------------------------------------------------------------ execve

// Managarm's Process::exec: the new image's thread is made first (a failure leaves the caller
// as it was), then the old image goes: CLOEXEC fds, handlers, anonymous memory, and the old
// thread, killed; observe() starts the new thread once the old one has ended.
std::int64_t Server::execve(const std::shared_ptr<Process> &p, const std::string &path,
		std::vector<std::string> argv) {
	Main main = state_.program(path);
	if (!main)
		return -ENOENT;
	Launch &launch = p->images.emplace_back();
	launch.main = std::move(main);
	launch.set_args(std::move(argv));
	HelHandle thread = kHelNullHandle;
	if (helCreateThread(p->universe, p->space, kHelAbiSystemV,
				reinterpret_cast<void *>(&process_entry), &launch, kHelThreadStopped, &thread)) {
		p->images.pop_back();
		return -ENOMEM;
	}
	p->next_thread = thread;
	p->path = path;
	for (int fd = 0; fd < protocol::kFileTableSize; ++fd)
		if (p->fds[fd].file && p->fds[fd].cloexec)
			close_fd(*p, fd);
	p->signals.reset_for_exec();
	unmap_areas(*p);
	AtomicCounters::bump(state_.counters.execs);
	helKillThread(p->thread);
	return 0;
}

void Server::start_image(const std::shared_ptr<Process> &p, HelHandle thread) {
	helCloseDescriptor(kHelThisUniverse, p->thread);
	forget_credentials(*p);
	p->thread = thread;
	p->image_started = false;
	remember_credentials(p);
	while (p->images.size() > 1) // the old images' threads have ended
		p->images.pop_front();
	if (p->thread_page)
		std::memset(p->thread_page, 0, sizeof(protocol::ThreadPage));
	executor_.spawn(observe(p));
}

// ------------------------------------------------------------------ dispatch

Async<bool> Server::process_supercall(std::shared_ptr<Process> p, std::uint32_t number,
		HelWord *gprs) {
	std::int64_t value = 0;
	if (!p->alive) {
		value = -ESRCH;
	} else if (number == protocol::kSuperFork) {
		value = co_await fork(p, gprs[kHelRegArg0], gprs[kHelRegArg1]);
	} else {
		HelWord path_at = gprs[kHelRegArg0], path_size = gprs[kHelRegArg1];
		HelWord argv_at = gprs[kHelRegArg2], argv_size = gprs[kHelRegArg3];
		if (path_size == 0 || path_size >= PATH_MAX)
			value = path_size ? -ENAMETOOLONG : -ENOENT;
		else if (argv_size > protocol::kMaxTail)
			value = -E2BIG;
		std::string path(value ? 0 : path_size, '\0');
		std::string argv(value ? 0 : argv_size, '\0');
		for (auto [at, into] : {std::pair{path_at, &path}, std::pair{argv_at, &argv}}) {
			if (value || into->empty())
				continue;
			if (!co_await copy_from_process(*p, at, into->data(), into->size()))
				value = -EFAULT;
		}
		if (!value) {
			value = execve(p, path, split_strings(argv));
			if (!value)
				co_return false; // the thread is being killed: never resumed
		}
	}
	gprs[kHelRegError] = kHelErrNone;
	gprs[kHelRegOut0] = static_cast<HelWord>(value < 0 ? 0 : value);
	gprs[kHelRegOut1] = static_cast<HelWord>(value < 0 ? value : 0);
	co_return helStoreRegisters(p->thread, kHelRegsGeneral, gprs) == kHelErrNone;
}

Async<std::int64_t> Server::process_request(std::shared_ptr<Process> p,
		const protocol::Request &request, const std::string &tail, protocol::Response &response) {
	switch (request.preamble.id) {
	case protocol::kFork:
		co_return co_await fork(p, static_cast<HelWord>(request.a),
				static_cast<HelWord>(request.b));
	case protocol::kExecve: {
		auto parts = split_strings(tail);
		if (parts.empty() || parts.front().empty())
			co_return -ENOENT;
		std::string path = std::move(parts.front());
		parts.erase(parts.begin());
		co_return execve(p, path, std::move(parts));
	}
	case protocol::kWaitPid:
		co_return co_await waitpid(p, static_cast<pid_t>(request.a), static_cast<int>(request.b),
				request.cancel_id, response);
	default: co_return -ENOSYS;
	}
}

} // namespace helsim::posix::detail
