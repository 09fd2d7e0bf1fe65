// The POSIX lane: requests a process sends to the server (everything that is not a supercall
// and does not go straight to a file), and the file table they change.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "pipe.hpp"
#include "server.hpp"
#include "tmpfs.hpp"

namespace helsim::posix::detail {

using namespace helsim::ipc;
using protocol::FileRequest;
using protocol::Request;
using protocol::Response;

namespace {

// Splits a NUL-separated tail into its strings.
std::vector<std::string> split_tail(const std::string &tail) {
	std::vector<std::string> parts;
	std::size_t at = 0;
	while (at < tail.size()) {
		std::size_t end = tail.find('\0', at);
		if (end == std::string::npos)
			end = tail.size();
		parts.emplace_back(tail, at, end - at);
		at = end + 1;
	}
	return parts;
}

// The file side's answer to a forwarded request, or the error its exchange met: -ENOMEM when
// the kernel could not make the conversation or the file side could not take it, as the
// client's answer() says it.
Response relayed(HelError offered, const InlineResult &reply) {
	if (offered == kHelErrNoMemory || (offered == kHelErrNone && reply.error == kHelErrEndOfLane))
		return Response{-ENOMEM, 0, 0};
	if (offered || reply.error)
		return Response{-EIO, 0, 0};
	return protocol::decode<Response>(reply.data);
}

} // namespace

Task Server::handle_request(std::shared_ptr<Process> p, HelHandle conversation, Request request) {
	Response response;
	std::string tail;
	bool answered = false;
	if (request.preamble.tail_size) {
		// Refused tails are still received (and dropped), so the exchange stays in step.
		tail.resize(std::min<std::size_t>(request.preamble.tail_size, protocol::kMaxTail));
		auto received =
				co_await executor_.exchange(conversation, recv_buffer(tail.data(), tail.size()));
		auto [length] = received.results;
		received.release(); // handlers may wait (forwarded pipe reads): hold no CQ chunk
		if (length.error == kHelErrBufferTooSmall)
			response.error = -ENAMETOOLONG;
		else if (length.error != kHelErrNone)
			response.error = -EFAULT;
		tail.resize(length.length);
	}
	if (response.error) {
		// answered below
	} else if (!p->alive) {
		response.error = -ESRCH;
	} else {
		switch (request.preamble.id) {
		case protocol::kGetPid: response.value = p->pid; break;
		case protocol::kGetPpid: response.value = p->ppid; break;
		case protocol::kGetTid: response.value = p->pid; break;
		case protocol::kOpen:
			response.value = co_await open(p, tail, static_cast<int>(request.a),
					static_cast<mode_t>(request.b));
			break;
		case protocol::kClose: response.value = close_fd(*p, static_cast<int>(request.a)); break;
		case protocol::kDup:
			response.value = dup(*p, static_cast<int>(request.a), static_cast<int>(request.b),
					static_cast<int>(request.c), static_cast<protocol::DupKind>(request.d));
			break;
		case protocol::kPipe:
			response.value = pipe(*p, static_cast<int>(request.a), response.value2);
			break;
		case protocol::kFcntl:
			response.value =
					fcntl(*p, static_cast<int>(request.a), static_cast<int>(request.b), request.c);
			break;
		case protocol::kFstat: {
			protocol::StatResponse stat{};
			if (OpenFile *file = file_of(*p, static_cast<int>(request.a)))
				stat.stat = file->stat();
			else
				stat.response.error = -EBADF;
			co_await executor_.exchange(conversation, send_buffer(&stat, sizeof(stat)));
			answered = true;
			break;
		}
		case protocol::kUnlink: response.value = state_.tmpfs->unlink(tail); break;
		case protocol::kClockGetRealtime: response.value = realtime_now(); break;
		case protocol::kClockSetRealtime: {
			std::uint64_t now = 0;
			helGetClock(&now);
			write_clock(request.a - static_cast<std::int64_t>(now), now);
			break;
		}
		case protocol::kSpawn: {
			auto parts = split_tail(tail);
			if (parts.empty()) {
				response.value = -EINVAL;
				break;
			}
			std::string path = parts.front();
			parts.erase(parts.begin());
			if (!state_.program(path)) {
				response.value = -ENOENT;
				break;
			}
			PendingSpawn spawn{state_.allocate_pid(), path, std::move(parts)};
			if (start_process(spawn, p.get()) != kHelErrNone) {
				std::lock_guard lock{state_.mutex};
				state_.statuses.erase(spawn.pid);
				response.value = -EAGAIN;
			} else {
				response.value = spawn.pid;
			}
			break;
		}
		case protocol::kExit: response.value = exit(*p, static_cast<int>(request.a)); break;
		case protocol::kAnonAllocate:
			response.value = anon_allocate(*p, static_cast<std::uint64_t>(request.a),
					static_cast<int>(request.b), static_cast<int>(request.c));
			break;
		case protocol::kAnonDeallocate:
			response.value = anon_free(*p, static_cast<std::uint64_t>(request.a),
					static_cast<std::uint64_t>(request.b));
			break;
		case protocol::kFdRead:
		case protocol::kFdWrite:
		case protocol::kFdSeek:
			answered = co_await forward(p, conversation, request);
			if (!answered)
				response.error = -EBADF;
			break;
		case protocol::kSigaction:
		case protocol::kSigKill:
		case protocol::kSigMask:
		case protocol::kSigRaise:
		case protocol::kSigRestore:
		case protocol::kSigAltStack:
		case protocol::kSigSuspend:
		case protocol::kSigGetPending:
		case protocol::kSigTimedWait:
		case protocol::kCancel:
			response.value = co_await signal_request(p, request, response);
			break;
		case protocol::kFork:
		case protocol::kExecve:
		case protocol::kWaitPid:
			response.value = co_await process_request(p, request, tail, response);
			break;
		case protocol::kPoll:
		case protocol::kEpollCreate:
		case protocol::kEpollCtl:
		case protocol::kEpollWait:
		case protocol::kEventfd:
			response.value = co_await readiness_request(p, request, tail, response);
			break;
		default: response.error = -ENOSYS;
		}
	}
	if (response.value < 0 && !response.error) {
		response.error = response.value;
		response.value = 0;
	}
	if (!answered) {
		if (request.preamble.id == protocol::kFdRead) // the client also waits for data
			co_await executor_.exchange(conversation, send_buffer(&response, sizeof(response)),
					send_buffer(nullptr, 0));
		else
			co_await executor_.exchange(conversation, send_buffer(&response, sizeof(response)));
	}
	helCloseDescriptor(kHelThisUniverse, conversation);
}

// file_table off: the server forwards a file request over the file's passthrough lane, on
// behalf of the process (its credentials imbued), and relays the answer: one more hop than
// the client going there itself. Returns false (nothing sent yet) for a bad fd.
Async<bool> Server::forward(std::shared_ptr<Process> p, HelHandle conversation, Request request) {
	int fd = static_cast<int>(request.a);
	if (fd < 0 || fd >= protocol::kFileTableSize || !p->fds[fd].file) {
		if (request.preamble.id == protocol::kFdWrite) {
			// Take the data the client sends, so that the exchange stays in step.
			auto dropped = co_await executor_.exchange(conversation, recv_buffer(nullptr, 0));
			(void)dropped;
		}
		co_return false;
	}
	AtomicCounters::bump(state_.counters.forwarded_requests);
	std::shared_ptr<OpenFile> file = p->fds[fd].file;
	HelHandle lane = file->passthrough_lane();
	FileRequest forwarded;
	forwarded.size = static_cast<std::uint64_t>(request.b);
	forwarded.offset = request.c;
	forwarded.whence = static_cast<std::int32_t>(request.d);
	forwarded.cancel_id = request.cancel_id; // kSuperCancel/kCancel reach it by this id
	Response response;
	if (request.preamble.id == protocol::kFdRead) {
		forwarded.preamble.id = protocol::kFileRead;
		std::vector<std::byte> data(
				std::min<std::uint64_t>(forwarded.size, protocol::kMaxTransfer));
		auto answer = co_await executor_.exchange(lane,
				offer(send_buffer(&forwarded, sizeof(forwarded)), imbue_credentials(p->thread),
						recv_inline(), recv_buffer(data.data(), data.size())));
		auto &[offered, head, imbued, reply, payload] = answer.results;
		response = relayed(offered.error, reply);
		std::size_t n = payload.error ? 0 : payload.length;
		answer.release();
		auto sent = co_await executor_.exchange(conversation,
				send_buffer(&response, sizeof(response)), send_buffer(data.data(), n));
		auto &[sent_head, sent_data] = sent.results;
		if (n && forwarded.offset < 0 && (sent_head.error || sent_data.error))
			file->unread(std::span{data.data(), n}); // the process could not take it
		co_return true;
	}
	if (request.preamble.id == protocol::kFdWrite) {
		forwarded.preamble.id = protocol::kFileWrite;
		std::vector<std::byte> data(
				std::min<std::uint64_t>(forwarded.size, protocol::kMaxTransfer));
		auto received =
				co_await executor_.exchange(conversation, recv_buffer(data.data(), data.size()));
		auto [length] = received.results;
		received.release(); // the forwarded write may wait for room in a pipe
		if (length.error) {
			response.error = length.error == kHelErrRemoteFault ? -EFAULT : -EINVAL;
		} else {
			forwarded.size = length.length;
			auto answer = co_await executor_.exchange(lane,
					offer(send_buffer(&forwarded, sizeof(forwarded)), imbue_credentials(p->thread),
							send_buffer(data.data(), length.length), recv_inline()));
			auto &[offered, head, imbued, sent, reply] = answer.results;
			response = relayed(offered.error, reply);
		}
	} else {
		forwarded.preamble.id = protocol::kFileSeek;
		auto answer = co_await executor_.exchange(lane,
				offer(send_buffer(&forwarded, sizeof(forwarded)), imbue_credentials(p->thread),
						recv_inline()));
		auto &[offered, head, imbued, reply] = answer.results;
		response = relayed(offered.error, reply);
	}
	co_await executor_.exchange(conversation, send_buffer(&response, sizeof(response)));
	co_return true;
}

// ------------------------------------------------------------------ the file table

OpenFile *Server::file_of(Process &p, int fd) {
	if (fd < 0 || fd >= protocol::kFileTableSize)
		return nullptr;
	return p.fds[fd].file.get();
}

// Puts `file` at `exact` (closing what was there) or at the lowest free fd >= `lowest`, and
// hands its passthrough lane to the process (Invoke only) through the file table page. The
// lane goes first: a process whose universe cannot take it (kHelErrNoMemory) gets -ENOMEM
// and keeps the fd it had at `exact`.
int Server::install(Process &p, std::shared_ptr<OpenFile> file, bool cloexec, int lowest,
		int exact) {
	int fd = exact;
	if (fd < 0) {
		for (fd = lowest; fd < protocol::kFileTableSize && p.fds[fd].file; ++fd) {
		}
		if (fd >= protocol::kFileTableSize)
			return -EMFILE;
	}
	HelHandle handle = kHelNullHandle;
	if (p.file_table &&
			helTransferDescriptor(file->passthrough_lane(), p.universe, kHelTransferDescriptorOut,
					kHelRightInvoke, 0, &handle) != kHelErrNone)
		return -ENOMEM;
	if (p.fds[fd].file)
		close_fd(p, fd);
	file->add_reference();
	p.fds[fd] = Fd{std::move(file), cloexec, handle};
	if (p.file_table)
		__atomic_store_n(&p.file_table[fd], handle, __ATOMIC_RELEASE);
	return fd;
}

int Server::close_fd(Process &p, int fd) {
	if (!file_of(p, fd))
		return -EBADF;
	Fd slot = std::exchange(p.fds[fd], Fd{});
	if (p.file_table)
		__atomic_store_n(&p.file_table[fd], kHelNullHandle, __ATOMIC_RELEASE);
	if (slot.handle)
		helCloseDescriptor(p.universe, slot.handle);
	slot.file->drop_reference();
	return 0;
}

void Server::close_all(Process &p) {
	for (int fd = 0; fd < protocol::kFileTableSize; ++fd)
		if (p.fds[fd].file)
			close_fd(p, fd);
}

Async<std::int64_t> Server::open(std::shared_ptr<Process> p, std::string path, int flags,
		mode_t mode) {
	// The fd first, as Linux does: a process out of fds creates and truncates nothing.
	if (std::all_of(p->fds.begin(), p->fds.end(), [](const Fd &fd) { return fd.file; }))
		co_return -EMFILE;
	std::shared_ptr<Inode> inode;
	if (auto e = state_.tmpfs->open(path, flags, mode, inode))
		co_return e;
	auto file = state_.tmpfs->make_file(std::move(inode), flags);
	if (file->start_serving(*this) != kHelErrNone)
		co_return -ENOMEM;
	HelError connected = co_await file->connect();
	if (connected || !p->alive) {
		file->add_reference(); // and drop it: the lane shuts down
		file->drop_reference();
		co_return connected ? -ENOMEM : -ESRCH;
	}
	co_return install_started(*p, file, flags & O_CLOEXEC);
}

int Server::install_new(Process &p, const std::shared_ptr<OpenFile> &file, bool cloexec) {
	if (file->start_serving(*this) != kHelErrNone)
		return -ENOMEM;
	return install_started(p, file, cloexec);
}

int Server::install_started(Process &p, const std::shared_ptr<OpenFile> &file, bool cloexec) {
	file->add_reference(); // held while installing, so a failure shuts the lane down
	int fd = install(p, file, cloexec, 0);
	file->drop_reference();
	return fd;
}

std::int64_t Server::dup(Process &p, int fd, int newfd, int flags, protocol::DupKind kind) {
	// dup3 checks its arguments before it looks at the fd (Linux's ksys_dup3).
	if (kind == protocol::kDupToFlags && ((flags & ~O_CLOEXEC) || fd == newfd))
		return -EINVAL;
	OpenFile *file = file_of(p, fd);
	if (!file)
		return -EBADF;
	auto shared = p.fds[fd].file;
	switch (kind) {
	case protocol::kDupLowest: return install(p, shared, false, 0);
	case protocol::kDupAtLeast:
		if (newfd < 0 || newfd >= protocol::kFileTableSize)
			return -EINVAL;
		return install(p, shared, flags & O_CLOEXEC, newfd);
	case protocol::kDupTo:
	case protocol::kDupToFlags:
		if (newfd < 0 || newfd >= protocol::kFileTableSize)
			return -EBADF;
		if (fd == newfd)
			return fd;
		return install(p, shared, flags & O_CLOEXEC, 0, newfd);
	}
	return -EINVAL;
}

std::int64_t Server::fcntl(Process &p, int fd, int cmd, std::int64_t arg) {
	OpenFile *file = file_of(p, fd);
	if (!file)
		return -EBADF;
	switch (cmd) {
	case F_GETFD: return p.fds[fd].cloexec ? FD_CLOEXEC : 0;
	case F_SETFD: p.fds[fd].cloexec = arg & FD_CLOEXEC; return 0;
	case F_GETFL: return file->status_flags();
	case F_SETFL: {
		constexpr int kChangeable = O_NONBLOCK | O_APPEND;
		file->set_status_flags(
				(file->status_flags() & ~kChangeable) | (static_cast<int>(arg) & kChangeable));
		return 0;
	}
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		return dup(p, fd, static_cast<int>(arg), cmd == F_DUPFD_CLOEXEC ? O_CLOEXEC : 0,
				protocol::kDupAtLeast);
	default: return -EINVAL;
	}
}

std::int64_t Server::pipe(Process &p, int flags, std::int64_t &second) {
	if (flags & ~(O_CLOEXEC | O_NONBLOCK))
		return -EINVAL;
	auto buffer = std::make_shared<PipeBuffer>(executor_);
	buffer->ino = next_pipe_ino_++;
	int nonblock = flags & O_NONBLOCK;
	auto reader = std::make_shared<PipeEnd>(buffer, true, O_RDONLY | nonblock);
	auto writer = std::make_shared<PipeEnd>(buffer, false, O_WRONLY | nonblock);
	int r = install_new(p, reader, flags & O_CLOEXEC);
	int w = r < 0 ? r : install_new(p, writer, flags & O_CLOEXEC);
	if (w < 0 && r >= 0)
		close_fd(p, r);
	second = w < 0 ? 0 : w;
	return w < 0 ? w : r;
}

// ------------------------------------------------------------------ the clock

std::int64_t Server::realtime_now() {
	std::uint64_t now = 0;
	helGetClock(&now);
	std::lock_guard lock{state_.mutex};
	return static_cast<std::int64_t>(now) + state_.realtime_offset;
}

// The clock owner's write: REALTIME = helGetClock() + offset, kept in the state and published
// under the page's seqlock with `now` as the reference (the caller's own clock read, so that
// no second read moves the time it meant to set).
void Server::write_clock(std::int64_t offset, std::uint64_t now) {
	{
		std::lock_guard lock{state_.mutex};
		state_.realtime_offset = offset;
	}
	if (clock_page_) {
		auto ref = static_cast<std::int64_t>(now);
		protocol::write_tracker(*clock_page_, ref, ref + offset);
		AtomicCounters::bump(state_.counters.clock_page_updates);
	}
}

} // namespace helsim::posix::detail
