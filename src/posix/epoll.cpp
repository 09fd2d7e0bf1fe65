// epoll: the interest list (EpollFile) and the two requests that use it, epoll_ctl and
// epoll_wait (Managarm's EpollCtlRequest / EpollWaitRequest on the POSIX lane).
#include "epoll.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "server.hpp"

namespace helsim::posix::detail {

int EpollFile::control(int op, int fd, const std::shared_ptr<OpenFile> &file,
		const epoll_event *event) {
	auto it = std::find_if(interests_.begin(), interests_.end(), [&](const Interest &interest) {
		return interest.fd == fd && interest.file.lock() == file;
	});
	switch (op) {
	case EPOLL_CTL_ADD:
		if (it != interests_.end())
			return -EEXIST;
		interests_.push_back(Interest{fd, file, event->events, event->data.u64});
		break;
	case EPOLL_CTL_MOD:
		if (it == interests_.end())
			return -ENOENT;
		// Linux's ep_modify: the new mask is checked at once, as if nothing had been reported.
		*it = Interest{fd, file, event->events, event->data.u64};
		break;
	case EPOLL_CTL_DEL:
		if (it == interests_.end())
			return -ENOENT;
		interests_.erase(it);
		break;
	default: return -EINVAL;
	}
	watchers().changed(); // a waiting epoll_wait looks at the new list
	return 0;
}

std::vector<EpollFile::Interest> &EpollFile::interests() {
	std::erase_if(interests_, [](const Interest &interest) {
		auto file = interest.file.lock();
		return !file || !file->has_fds();
	});
	return interests_;
}

std::optional<std::uint32_t> EpollFile::status() {
	for (auto &interest : interests()) {
		auto file = interest.file.lock();
		auto bits = file ? file->status() : std::nullopt;
		if (!interest.disabled && bits && (*bits & (interest.events | EPOLLHUP | EPOLLERR)))
			return POLLIN | POLLRDNORM;
	}
	return 0;
}

protocol::StatReply EpollFile::stat() const {
	protocol::StatReply reply{};
	reply.mode = 0600; // an anonymous inode, as Linux's
	reply.nlink = 1;
	return reply;
}

// kEpollCtl: a = epfd, b = op, c = fd; the tail is the epoll_event (none for DEL). Linux's
// do_epoll_ctl checks in this order: both fds (-EBADF), the target can be polled (-EPERM),
// epfd is an epoll and not the target (-EINVAL), then the op.
std::int64_t Server::epoll_ctl(Process &p, const protocol::Request &request,
		const std::string &tail) {
	int op = static_cast<int>(request.b);
	int fd = static_cast<int>(request.c);
	epoll_event event{};
	if (op != EPOLL_CTL_DEL) {
		if (tail.size() != sizeof(event))
			return -EFAULT;
		std::memcpy(&event, tail.data(), sizeof(event));
	}
	OpenFile *epoll = file_of(p, static_cast<int>(request.a));
	OpenFile *target = file_of(p, fd);
	if (!epoll || !target)
		return -EBADF;
	if (!target->pollable())
		return -EPERM;
	auto *instance = dynamic_cast<EpollFile *>(epoll);
	if (!instance || epoll == target || dynamic_cast<EpollFile *>(target))
		return -EINVAL;
	return instance->control(op, fd, p.fds[fd].file, &event);
}

// kEpollWait: a = epfd, b = the caller's epoll_event array, c = max_events, d = timeout in ns
// (< 0: forever). Level-triggered interests are reported while ready; edge-triggered ones
// once per change of their file (its StatusWatchers sequence); a one-shot interest is disabled
// after its report. EPOLLHUP and EPOLLERR are reported whether asked or not.
Async<std::int64_t> Server::epoll_wait(std::shared_ptr<Process> p,
		const protocol::Request &request) {
	int max = static_cast<int>(request.c);
	if (max <= 0 || request.c > INT32_MAX / static_cast<std::int64_t>(sizeof(epoll_event)))
		co_return -EINVAL;
	OpenFile *file = file_of(*p, static_cast<int>(request.a));
	if (!file)
		co_return -EBADF;
	auto *found = dynamic_cast<EpollFile *>(file);
	if (!found)
		co_return -EINVAL;
	// Held for the wait: a close of the epfd meanwhile does not free the list under it.
	auto epoll = std::static_pointer_cast<EpollFile>(p->fds[request.a].file);

	CancelToken token;
	CancelRegistry::Scope scope{cancels_, {p->credentials, request.cancel_id}, token};
	auto waker = std::make_shared<Waker>(executor_);
	std::vector<std::shared_ptr<OpenFile>> watched; // what `waker` is registered with
	auto watch_all = [&] {
		for (auto &f : watched)
			f->watchers().remove(*waker);
		watched.clear();
		watched.push_back(epoll);
		for (auto &interest : epoll->interests())
			if (auto f = interest.file.lock())
				watched.push_back(std::move(f));
		for (auto &f : watched)
			f->watchers().add(*waker);
	};
	p->waiting.add(*waker);
	std::vector<epoll_event> events;
	std::uint64_t timer = 0;
	bool no_memory = false;
	for (;;) {
		watch_all();
		waker->woken = false;
		events.clear();
		// Indexed: a device query may suspend, and an epoll_ctl meanwhile may change the list.
		auto &list = epoll->list();
		for (std::size_t i = 0; i < list.size() && events.size() < static_cast<std::size_t>(max);
				++i) {
			auto target = list[i].file.lock();
			if (!target || list[i].disabled)
				continue;
			auto bits = target->status(); // no coroutine unless the file's server is asked
			if (!bits)
				bits = co_await target->query_status();
			if (!bits) {
				no_memory = true;
				break;
			}
			if (i >= list.size() || list[i].file.lock() != target)
				continue; // the list changed during the query: the next round sees it
			auto &interest = list[i];
			std::uint32_t ready =
					*bits & (interest.events | EPOLLHUP | EPOLLERR) & ~(EPOLLET | EPOLLONESHOT);
			if (!ready)
				continue;
			std::uint64_t sequence = target->status_sequence();
			if (interest.events & EPOLLET) {
				if (interest.reported_any && interest.reported_sequence == sequence)
					continue;
				interest.reported_any = true;
				interest.reported_sequence = sequence;
			}
			if (interest.events & EPOLLONESHOT)
				interest.disabled = true;
			epoll_event event{};
			event.events = ready;
			event.data.u64 = interest.data;
			events.push_back(event);
		}
		if (no_memory || !events.empty() || request.d == 0 || waker->timed_out || token.cancelled ||
				!p->alive)
			break;
		if (waker->woken)
			continue;
		if (request.d > 0 && !timer) {
			std::uint64_t now = 0;
			helGetClock(&now);
			timer = start_timer(waker, now + static_cast<std::uint64_t>(request.d));
		}
		token.waiting = &waker->condition;
		co_await waker->condition.wait();
		token.waiting = nullptr;
	}
	p->waiting.remove(*waker);
	for (auto &f : watched)
		f->watchers().remove(*waker);
	if (timer && !waker->timed_out)
		cancel_timer(timer);
	if (no_memory)
		co_return -ENOMEM;
	if (events.empty() && token.cancelled)
		co_return -EINTR;
	if (!events.empty()) {
		if (!co_await copy_to_process(*p, static_cast<std::uintptr_t>(request.b), events.data(),
					events.size() * sizeof(epoll_event)))
			co_return -EFAULT;
	}
	co_return static_cast<std::int64_t>(events.size());
}

} // namespace helsim::posix::detail
