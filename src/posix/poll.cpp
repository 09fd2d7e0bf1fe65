// Readiness on the server side: poll and the requests' dispatch, the timer a waiting request
// sets, and SIGPIPE. Managarm serves poll, ppoll and select as one request (EpollCallRequest)
// and epoll_wait as another (EpollWaitRequest) in the POSIX server; so does helsim.
// docs/posix-readiness.md describes the design.
#include <poll.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "epoll.hpp"
#include "eventfd.hpp"
#include "server.hpp"

namespace helsim::posix::detail {

Async<std::optional<std::uint32_t>> OpenFile::query_status() { co_return status().value_or(0); }

Async<HelError> OpenFile::connect() { co_return kHelErrNone; }

namespace {

// Linux's default RLIMIT_NOFILE soft limit: poll refuses more fds than that (-EINVAL).
constexpr std::uint64_t kMaxPollFds = 1024;

Task run_timer(Executor &executor, std::shared_ptr<Waker> waker, std::uint64_t deadline,
		std::uint64_t tag) {
	auto result = co_await executor.operation<HelSimpleResult>(kHelSubmitAwaitClock,
			HelSqAwaitClock{deadline, tag});
	if (result.error == kHelErrNone) {
		waker->timed_out = true;
		waker->wake();
	}
}

} // namespace

std::uint64_t Server::start_timer(std::shared_ptr<Waker> waker, std::uint64_t deadline) {
	std::uint64_t tag = next_timer_tag_++;
	executor_.spawn(run_timer(executor_, std::move(waker), deadline, tag));
	return tag;
}

// The timer's task holds its Waker until the cancelled wait completes, so the request that set
// it may end first.
void Server::cancel_timer(std::uint64_t tag) {
	executor_.dispatcher().submit(kHelSubmitCancel, 0, HelSqCancel{tag});
}

void Server::broken_pipe(const Requester &writer) {
	if (auto p = writer.process.lock(); p && p->alive)
		send_signal(*p, SIGPIPE, SI_USER, p->pid);
}

// kPoll: a = count, b = the caller's pollfd array (the server writes it back with revents),
// c = timeout in ns (< 0: forever); the tail is the array. Linux's do_poll: every fd is checked
// (fd < 0 ignored with revents 0, a closed fd POLLNVAL, POLLHUP and POLLERR reported whether
// asked or not) and the request waits only if none is ready, until a change, the timeout or a
// cancellation (a signal: -EINTR).
Async<std::int64_t> Server::poll(std::shared_ptr<Process> p, const protocol::Request &request,
		const std::string &tail) {
	auto count = static_cast<std::uint64_t>(request.a);
	if (count > kMaxPollFds)
		co_return -EINVAL;
	if (tail.size() != count * sizeof(pollfd))
		co_return -EFAULT;
	std::vector<pollfd> fds(count);
	if (count)
		std::memcpy(fds.data(), tail.data(), tail.size());
	std::vector<std::shared_ptr<OpenFile>> files(count);
	for (std::size_t i = 0; i < count; ++i)
		if (fds[i].fd >= 0 && fds[i].fd < protocol::kFileTableSize)
			files[i] = p->fds[fds[i].fd].file;

	CancelToken token;
	CancelRegistry::Scope scope{cancels_, {p->credentials, request.cancel_id}, token};
	auto waker = std::make_shared<Waker>(executor_);
	p->waiting.add(*waker);
	for (auto &file : files)
		if (file)
			file->watchers().add(*waker);
	std::uint64_t timer = 0;
	std::int64_t ready = 0;
	bool no_memory = false;
	for (;;) {
		waker->woken = false;
		ready = 0;
		for (std::size_t i = 0; i < count; ++i) {
			fds[i].revents = 0;
			if (fds[i].fd < 0)
				continue;
			if (!files[i]) {
				fds[i].revents = POLLNVAL;
			} else {
				std::uint32_t wanted =
						static_cast<std::uint16_t>(fds[i].events) | POLLHUP | POLLERR;
				auto bits = files[i]->status(); // no coroutine unless the file's server is asked
				if (!bits)
					bits = co_await files[i]->query_status();
				if (!bits) {
					no_memory = true;
					break;
				}
				fds[i].revents = static_cast<short>(*bits & wanted);
			}
			if (fds[i].revents)
				++ready;
		}
		if (no_memory || ready || request.c == 0 || waker->timed_out || token.cancelled ||
				!p->alive)
			break;
		if (waker->woken)
			continue; // a change landed while a device was asked: check again
		if (request.c > 0 && !timer) {
			std::uint64_t now = 0;
			helGetClock(&now);
			timer = start_timer(waker, now + static_cast<std::uint64_t>(request.c));
		}
		token.waiting = &waker->condition;
		co_await waker->condition.wait();
		token.waiting = nullptr;
	}
	p->waiting.remove(*waker);
	for (auto &file : files)
		if (file)
			file->watchers().remove(*waker);
	if (timer && !waker->timed_out)
		cancel_timer(timer);
	if (no_memory)
		co_return -ENOMEM;
	if (!ready && token.cancelled)
		co_return -EINTR;
	if (count) {
		if (!co_await copy_to_process(*p, static_cast<std::uintptr_t>(request.b), fds.data(),
					fds.size() * sizeof(pollfd)))
			co_return -EFAULT;
	}
	co_return ready;
}

Async<std::int64_t> Server::readiness_request(std::shared_ptr<Process> p,
		const protocol::Request &request, const std::string &tail, protocol::Response &) {
	switch (request.preamble.id) {
	case protocol::kPoll: co_return co_await poll(p, request, tail);
	case protocol::kEventfd: {
		int flags = static_cast<int>(request.b);
		if (flags & ~(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE))
			co_return -EINVAL;
		co_return install_new(*p,
				std::make_shared<EventFd>(executor_, static_cast<std::uint64_t>(request.a), flags),
				flags & EFD_CLOEXEC);
	}
	case protocol::kEpollCreate: {
		int flags = static_cast<int>(request.a);
		if (flags & ~EPOLL_CLOEXEC)
			co_return -EINVAL;
		co_return install_new(*p, std::make_shared<EpollFile>(executor_), flags & EPOLL_CLOEXEC);
	}
	case protocol::kEpollCtl: co_return epoll_ctl(*p, request, tail);
	case protocol::kEpollWait: co_return co_await epoll_wait(p, request);
	default: co_return -ENOSYS;
	}
}

} // namespace helsim::posix::detail
