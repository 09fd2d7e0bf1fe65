// Open file descriptions and the file side of the server: every description is served on its
// own passthrough lane (Managarm's OpenFile::serve + protocols::fs::servePassthrough), which
// the server hands to processes through their file table pages.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <poll.h>

#include <helsim/hel.h>

#include "async.hpp"
#include "protocol.hpp"

namespace helsim::posix::detail {

struct Process;
class Server;

// Who asked. A file does not hand data to a requester that has died (the data stays for the
// next reader).
struct Requester {
	std::weak_ptr<Process> process;
	CancelToken *cancel = nullptr; // set if the request may be cancelled (a blocking read)
	bool alive() const;
};

// Readiness (poll, epoll). A waiting request owns a Waker and adds it to the StatusWatchers
// of every file it watches; a file calls changed() whenever its status bits may have changed.
// The Waker remembers that it was woken, so a change that lands while the request is between
// checks (a device query in flight) is not lost; and its Condition is the one Condition the
// request waits on (a CancelToken names it too).
struct Waker {
	explicit Waker(Executor &executor) : condition{executor} {}
	Condition condition;
	bool woken = false;
	bool timed_out = false;
	void wake() {
		woken = true;
		condition.notify_all();
	}
};

class StatusWatchers {
public:
	void add(Waker &waker) { wakers_.push_back(&waker); }
	void remove(Waker &waker) { std::erase(wakers_, &waker); }
	// Bumps the sequence (edge-triggered epoll reports once per value) and wakes every waiter.
	void changed() {
		++sequence_;
		for (Waker *waker : wakers_)
			waker->wake();
	}
	std::uint64_t sequence() const { return sequence_; }

private:
	std::vector<Waker *> wakers_;
	std::uint64_t sequence_ = 0;
};

// An open file description: shared by every fd dup'd from it, in every process.
class OpenFile : public std::enable_shared_from_this<OpenFile> {
public:
	explicit OpenFile(int status_flags) : status_flags_{status_flags} {}
	OpenFile(const OpenFile &) = delete;
	OpenFile &operator=(const OpenFile &) = delete;
	virtual ~OpenFile() = default;

	// A byte count or a negative errno. offset < 0: at (and advancing) the file position.
	virtual Async<std::int64_t> read(const Requester &who, std::span<std::byte> buffer,
			std::int64_t offset);
	virtual Async<std::int64_t> write(const Requester &who, std::span<const std::byte> data,
			std::int64_t offset);
	// The new position or a negative errno (a pipe or terminal: -ESPIPE).
	virtual std::int64_t seek(std::int64_t offset, int whence);
	virtual protocol::StatReply stat() const = 0;
	// Bytes a read returned that the requester could not receive: they go back to the front.
	virtual void unread(std::span<const std::byte>) {}
	// Whether pread/pwrite make sense (-ESPIPE otherwise).
	virtual bool seekable() const { return false; }

	// ---- readiness (poll.cpp, eventfd.cpp, epoll.cpp, device.cpp)
	// The poll bits that hold now (POLLIN, POLLOUT, POLLHUP, POLLERR, ...), or nullopt when
	// only the file's own server can tell (a device without a status page): query_status()
	// asks it. By default a file is always ready, as Linux's DEFAULT_POLLMASK.
	virtual std::optional<std::uint32_t> status() {
		return POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
	}
	// nullopt: the kernel had no memory to ask (the poll or epoll_wait is -ENOMEM).
	virtual Async<std::optional<std::uint32_t>> query_status();
	// Who to wake when status() may have changed.
	virtual StatusWatchers &watchers() { return watchers_; }
	// Which change the last status() or query_status() saw (EPOLLET reports once per value).
	virtual std::uint64_t status_sequence() { return watchers().sequence(); }
	// Whether epoll may watch it (Linux's file_can_poll: -EPERM for regular files).
	virtual bool pollable() const { return false; }
	// Whether any fd still refers to it (epoll drops it from interest lists otherwise).
	bool has_fds() const { return fd_references_ > 0; }
	// ---- end readiness

	int status_flags() const { return status_flags_; }
	void set_status_flags(int flags) { status_flags_ = flags; }
	bool readable() const;
	bool writable() const;
	bool nonblocking() const;

	// Fds (in any process) that refer to this description. When the last closes, the
	// description's passthrough lane is shut down and released() runs.
	void add_reference() { ++fd_references_; }
	void drop_reference();

	// The passthrough stream: `serving` is served by serve_passthrough(), `passthrough` is the
	// end the server transfers into processes (and uses itself to forward, file_table off).
	HelHandle serving_lane() const { return serving_; }
	HelHandle passthrough_lane() const { return passthrough_; }
	// Creates the stream and starts serving it; call once, right after construction. A
	// device file instead hands the serving end to its device's server. kHelErrNoMemory if
	// the stream could not be made (the description is then dropped unused).
	[[nodiscard]] virtual HelError start_serving(Server &server);
	// After start_serving: waits until the description can be used (a device file's server
	// took it). kHelErrNoMemory if it cannot: the description is then dropped unused.
	virtual Async<HelError> connect();

protected:
	// The last fd closed (pipes count their ends here).
	virtual void released() {}
	// For start_serving overrides: the lanes, as start_serving sets them.
	void set_lanes(HelHandle serving, HelHandle passthrough) {
		serving_ = serving;
		passthrough_ = passthrough;
	}

private:
	int status_flags_;
	int fd_references_ = 0;
	StatusWatchers watchers_;
	HelHandle serving_ = kHelNullHandle;
	HelHandle passthrough_ = kHelNullHandle;
};

// Reads and writes between a request and a file: the access-mode checks and the position
// rules every path (passthrough or forwarded) shares. A byte count or a negative errno.
Async<std::int64_t> file_read(OpenFile &file, const Requester &who, std::span<std::byte> buffer,
		std::int64_t offset);
Async<std::int64_t> file_write(OpenFile &file, const Requester &who,
		std::span<const std::byte> data, std::int64_t offset);
std::int64_t file_seek(OpenFile &file, std::int64_t offset, int whence);

} // namespace helsim::posix::detail
