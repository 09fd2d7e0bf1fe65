// The POSIX calls inside a process. Per-thread state lives behind the thread's fs word (a
// fiber moves between host threads, so no host thread_local may hold it); every call finds
// it with helReadFsBase.
#include "client.hpp"

#include <limits.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/ipc.hpp>
#include <helsim/posix.hpp>

#include "protocol.hpp"
#include "state.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define HELSIM_POSIX_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define HELSIM_POSIX_LSAN 1
#endif
#endif
#if defined(HELSIM_POSIX_LSAN)
#include <sanitizer/lsan_interface.h>
#endif

namespace helsim::posix {

namespace detail {

using namespace helsim::ipc;
using protocol::FileRequest;
using protocol::Request;
using protocol::Response;

namespace {

// LeakSanitizer (with ASan, or alone) reports memory nothing points to at exit; an object
// passed here, and what it points to, is not reported.
void ignore_leak([[maybe_unused]] const void *object) {
#if defined(HELSIM_POSIX_LSAN)
	__lsan_ignore_object(object);
#endif
}

} // namespace

ClientThread *self() {
	void *fs = nullptr;
	if (helReadFsBase(&fs) != kHelErrNone || !fs)
		return nullptr;
	auto *thread = static_cast<ClientThread *>(fs);
	return thread->magic == kClientMagic ? thread : nullptr;
}

SupercallResult supercall_words(std::uint32_t number, std::initializer_list<HelWord> args) {
	HelWord words[9] = {};
	std::copy(args.begin(), args.end(), words);
	SupercallResult result;
	result.error = helsim_syscall(kHelCallSuper + number, words, result.out);
	return result;
}

std::int64_t supercall(std::uint32_t number, HelWord a0, HelWord a1, HelWord a2, HelWord a3) {
	SupercallResult result = supercall_words(number, {a0, a1, a2, a3});
	if (result.error != kHelErrNone)
		return -ENOSYS;
	auto error = static_cast<std::int64_t>(result.out[1]);
	return error ? error : static_cast<std::int64_t>(result.out[0]);
}

std::int64_t answer(HelError offered, const InlineResult &reply, Response &response,
		std::int64_t lane_error) {
	// The kernel could not make the conversation (an offer/accept pairing fails on both sides),
	// or the server could not take it (its accept could not attach the conversation's lane, and
	// the conversation ends unanswered; every request the server takes is answered): the server
	// never saw the request, and the lane serves on.
	if (offered == kHelErrNoMemory || (offered == kHelErrNone && reply.error == kHelErrEndOfLane))
		return -ENOMEM;
	if (offered != kHelErrNone)
		return lane_error;
	if (reply.error != kHelErrNone)
		return -EIO;
	response = protocol::decode<Response>(reply.data);
	return response.error;
}

std::int64_t request(ClientThread &t, Request head, std::string_view tail, Response *out) {
	return cancellable_request(t, nullptr, head, tail, out);
}

std::int64_t cancellable_request(ClientThread &t, Cancel *cancel, Request head,
		std::string_view tail, Response *out) {
	Response response;
	std::int64_t error = 0;
	head.preamble.tail_size = static_cast<std::uint32_t>(tail.size());
	if (tail.empty()) {
		auto ex = cancellable_exchange(t, cancel, t.data.posix_lane,
				send_buffer(&head, sizeof(head)), imbue_credentials(), recv_inline());
		if (!ex)
			return -EIO;
		auto &[offered, sent, imbued, reply] = ex->results;
		error = answer(offered.error, reply, response, -EIO);
	} else {
		auto ex =
				cancellable_exchange(t, cancel, t.data.posix_lane, send_buffer(&head, sizeof(head)),
						imbue_credentials(), send_buffer(tail), recv_inline());
		if (!ex)
			return -EIO;
		auto &[offered, sent, imbued, sent_tail, reply] = ex->results;
		error = answer(offered.error, reply, response, -EIO);
	}
	if (out)
		*out = response;
	return error ? error : response.value;
}

namespace {

// The lane a file request goes to: the fd's passthrough lane from the file table, or the
// POSIX lane (file_table off). kHelNullHandle for an fd that is not open.
HelHandle file_lane(ClientThread &t, int fd) {
	if (!t.data.file_table)
		return t.data.posix_lane;
	if (fd < 0 || fd >= protocol::kFileTableSize)
		return kHelNullHandle;
	return __atomic_load_n(&t.data.file_table[fd], __ATOMIC_ACQUIRE);
}

// The head of a file request, in the form its lane expects. A request with a cancellation id
// (a read) is cancelled on the lane it went to: kFileCancel on a passthrough lane, kSuperCancel
// or kCancel on the POSIX lane.
template <typename Send>
std::int64_t with_file_head(ClientThread &t, int fd, protocol::MessageId by_fd,
		protocol::MessageId passthrough, std::uint64_t size, std::int64_t offset, int whence,
		Cancel *cancel, Send &&send) {
	HelHandle lane = file_lane(t, fd);
	if (!lane) {
		// The fd may be gone because the process was killed while this thread ran: the kill
		// unwinds it at this cancellation point (a futex wait that returns at once) instead.
		int word = 0;
		helFutexWait(&word, 1, 0);
		return -EBADF;
	}
	std::uint64_t cancel_id = 0;
	if (cancel) {
		cancel_id = t.next_tag++;
		cancel->id = cancel_id;
		cancel->lane = lane;
		cancel->via = t.data.file_table ? Cancel::Via::file_lane : Cancel::Via::posix_lane;
	}
	if (t.data.file_table) {
		FileRequest head{{passthrough, 0}, whence, 0, size, offset, cancel_id};
		return send(lane, std::as_bytes(std::span{&head, 1}));
	}
	Request head = make(by_fd, fd, static_cast<std::int64_t>(size), offset, whence);
	head.cancel_id = cancel_id;
	return send(lane, std::as_bytes(std::span{&head, 1}));
}

// A lane that went away under a file request: the fd was closed.
constexpr std::int64_t kFileLaneGone = -EBADF;

// A read may block (an empty pipe): a handled signal cancels it (-EINTR, nothing taken), and
// SA_RESTART starts it again, as Linux does for read.
std::int64_t read_at(ClientThread &t, int fd, void *buffer, std::size_t count,
		std::int64_t offset) {
	count = std::min(count, protocol::kMaxTransfer);
	return interruptible(t, true, [&](std::uint64_t handlers_before) {
		Cancel cancel{.handlers_before = handlers_before};
		return with_file_head(t, fd, protocol::kFdRead, protocol::kFileRead, count, offset, 0,
				&cancel, [&](HelHandle lane, std::span<const std::byte> head) -> std::int64_t {
					auto ex = cancellable_exchange(t, &cancel, lane,
							send_buffer(head.data(), head.size()), imbue_credentials(),
							recv_inline(), recv_buffer(buffer, count));
					if (!ex)
						return -EBADF;
					auto &[offered, sent, imbued, reply, data] = ex->results;
					Response response;
					if (auto e = answer(offered.error, reply, response, kFileLaneGone))
						return e;
					if (data.error == kHelErrFault)
						return -EFAULT;
					if (data.error != kHelErrNone)
						return -EIO;
					return static_cast<std::int64_t>(data.length);
				});
	});
}

template <typename Data>
std::int64_t write_chunk(ClientThread &t, int fd, std::size_t count, std::int64_t offset,
		const Data &data) {
	return with_file_head(t, fd, protocol::kFdWrite, protocol::kFileWrite, count, offset, 0,
			nullptr, [&](HelHandle lane, std::span<const std::byte> head) -> std::int64_t {
				auto ex = exchange(t, lane, send_buffer(head.data(), head.size()),
						imbue_credentials(), data, recv_inline());
				if (!ex)
					return -EBADF;
				auto &[offered, sent, imbued, sent_data, reply] = ex->results;
				Response response;
				if (auto e = answer(offered.error, reply, response, kFileLaneGone))
					return e;
				return response.value;
			});
}

// Splits a write into requests of at most kMaxTransfer bytes; stops at a short write.
std::int64_t write_at(ClientThread &t, int fd, const void *buffer, std::size_t count,
		std::int64_t offset) {
	const auto *bytes = static_cast<const std::byte *>(buffer);
	std::size_t done = 0;
	do {
		std::size_t chunk = std::min(count - done, protocol::kMaxTransfer);
		std::int64_t at = offset < 0 ? -1 : offset + static_cast<std::int64_t>(done);
		std::int64_t n = write_chunk(t, fd, chunk, at, send_buffer(bytes + done, chunk));
		if (n < 0)
			return done ? static_cast<std::int64_t>(done) : n;
		done += static_cast<std::size_t>(n);
		if (static_cast<std::size_t>(n) < chunk)
			break;
	} while (done < count);
	return static_cast<std::int64_t>(done);
}

} // namespace

bool copy_out(ClientThread &t, void *to, const void *from, std::size_t size) {
	if (!size)
		return true;
	std::uintptr_t context = t.next_tag++;
	t.queue.submit(kHelSubmitWriteMemory, context,
			HelSqWriteMemory{kHelThisThread, reinterpret_cast<std::uintptr_t>(to), size, from});
	t.queue.flush();
	auto element = wait_own(t, context);
	return element.error() == kHelErrNone;
}

namespace {

std::int64_t iov_total(const struct iovec *iov, int count, std::size_t &total) {
	if (count < 0 || count > IOV_MAX)
		return -EINVAL;
	if (count && !iov)
		return -EFAULT;
	total = 0;
	for (int i = 0; i < count; ++i) {
		if (iov[i].iov_len > SSIZE_MAX - total)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	return 0;
}

} // namespace

std::int64_t path_length(const char *path) {
	if (!path)
		return -EFAULT;
	std::size_t n = strnlen(path, PATH_MAX);
	if (n == PATH_MAX)
		return -ENAMETOOLONG;
	if (n == 0)
		return -ENOENT;
	return static_cast<std::int64_t>(n);
}

void process_entry(std::uintptr_t argument) {
	auto &launch = *reinterpret_cast<Launch *>(argument);
	// A thread that dies of a fault is abandoned without unwinding
	// (docs/architecture.md#faults-in-simulated-code): its ClientThread is never destroyed, and
	// LeakSanitizer would report what it owns (the queue's bookkeeping) at exit. On the heap,
	// it can be marked as an object that may stay.
	std::unique_ptr<ClientThread> owned;
	try {
		owned = std::make_unique<ClientThread>();
	} catch (const HelException &) {
		// Its queue could not be made (kHelErrNoMemory): the program cannot run. Ending before
		// superGetProcessData, the process is reported as one that could not be started.
		return;
	}
	ClientThread &thread = *owned;
	ignore_leak(owned.get());
	if (helSyscall1(static_cast<int>(kHelCallSuper +
							static_cast<std::uint32_t>(protocol::kSuperGetProcessData)),
				reinterpret_cast<HelWord>(&thread.data)) != kHelErrNone)
		return;
	thread.counters = static_cast<AtomicCounters *>(thread.data.counters);
	helWriteFsBase(&thread);
	if (thread.data.thread_page)
		__atomic_store_n(&thread.data.thread_page->queue_handle, thread.queue.queue(),
				__ATOMIC_RELEASE);
	try {
		int status = launch.main(static_cast<int>(launch.args.size()), launch.argv.data());
		posix::_exit(status);
	} catch (const ProcessExit &) {
	}
	helWriteFsBase(nullptr);
}

} // namespace detail

using detail::ClientThread;
using detail::make;
using detail::request;
using detail::self;

pid_t getpid() {
	HELSIM_POSIX_CLIENT(t);
	return static_cast<pid_t>(request(*t, make(protocol::kGetPid)));
}

pid_t getppid() {
	HELSIM_POSIX_CLIENT(t);
	return static_cast<pid_t>(request(*t, make(protocol::kGetPpid)));
}

pid_t gettid() {
	HELSIM_POSIX_CLIENT(t);
	if (detail::supercalls(*t))
		return static_cast<pid_t>(detail::supercall(protocol::kSuperGetTid));
	return static_cast<pid_t>(request(*t, make(protocol::kGetTid)));
}

void _exit(int status) {
	ClientThread *t = self();
	if (!t)
		throw std::logic_error("helsim::posix::_exit: not called by a POSIX process");
	// A second _exit (the program's catch (...) stopped the first one's unwinding) unwinds
	// again: the process is gone, its POSIX lane with it.
	if (!t->exited) {
		std::int64_t done = 0;
		do // -ENOMEM: the kernel could not carry the request; _exit cannot fail, so it asks again
			done = detail::supercalls(*t)
					? detail::supercall(protocol::kSuperExit, static_cast<HelWord>(status))
					: request(*t, make(protocol::kExit, status));
		while (done == -ENOMEM);
		if (done != 1)
			throw std::logic_error("helsim::posix::_exit: the server did not take the exit");
		t->exited = true;
	}
	throw detail::ProcessExit{};
}

int open(const char *path, int flags, mode_t mode) {
	HELSIM_POSIX_CLIENT(t);
	std::int64_t n = detail::path_length(path);
	if (n < 0)
		return static_cast<int>(n);
	return static_cast<int>(
			request(*t, make(protocol::kOpen, flags, mode), {path, static_cast<std::size_t>(n)}));
}

int close(int fd) {
	HELSIM_POSIX_CLIENT(t);
	return static_cast<int>(request(*t, make(protocol::kClose, fd)));
}

ssize_t read(int fd, void *buffer, size_t count) {
	HELSIM_POSIX_CLIENT(t);
	return detail::read_at(*t, fd, buffer, count, -1);
}

ssize_t pread(int fd, void *buffer, size_t count, off_t offset) {
	HELSIM_POSIX_CLIENT(t);
	if (offset < 0)
		return -EINVAL;
	return detail::read_at(*t, fd, buffer, count, offset);
}

ssize_t write(int fd, const void *buffer, size_t count) {
	HELSIM_POSIX_CLIENT(t);
	return detail::write_at(*t, fd, buffer, count, -1);
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) {
	HELSIM_POSIX_CLIENT(t);
	if (offset < 0)
		return -EINVAL;
	return detail::write_at(*t, fd, buffer, count, offset);
}

ssize_t readv(int fd, const struct iovec *iov, int count) {
	HELSIM_POSIX_CLIENT(t);
	std::size_t total = 0;
	if (auto e = detail::iov_total(iov, count, total))
		return e;
	if (count == 1)
		return detail::read_at(*t, fd, iov[0].iov_base, iov[0].iov_len, -1);
	// One read (a pipe must not be read twice), scattered by the kernel's checked copies.
	std::vector<std::byte> bounce(std::min(total, protocol::kMaxTransfer));
	std::int64_t n = detail::read_at(*t, fd, bounce.data(), bounce.size(), -1);
	if (n <= 0)
		return n;
	std::size_t at = 0;
	for (int i = 0; i < count && at < static_cast<std::size_t>(n); ++i) {
		std::size_t part = std::min(iov[i].iov_len, static_cast<std::size_t>(n) - at);
		if (!detail::copy_out(*t, iov[i].iov_base, bounce.data() + at, part))
			return at ? static_cast<ssize_t>(at) : -EFAULT; // what reached memory, as Linux
		at += part;
	}
	return n;
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
	HELSIM_POSIX_CLIENT(t);
	std::size_t total = 0;
	if (auto e = detail::iov_total(iov, count, total))
		return e;
	// iovec and HelSgItem share their layout; one request carries up to kMaxTransfer bytes.
	std::vector<HelSgItem> items;
	std::size_t size = 0;
	for (int i = 0; i < count && size < protocol::kMaxTransfer; ++i) {
		std::size_t part = std::min(iov[i].iov_len, protocol::kMaxTransfer - size);
		items.push_back(HelSgItem{iov[i].iov_base, part});
		size += part;
	}
	return detail::write_chunk(*t, fd, size, -1, ipc::send_sg(items));
}

off_t lseek(int fd, off_t offset, int whence) {
	HELSIM_POSIX_CLIENT(t);
	return detail::with_file_head(*t, fd, protocol::kFdSeek, protocol::kFileSeek, 0, offset, whence,
			nullptr, [&](HelHandle lane, std::span<const std::byte> head) -> std::int64_t {
				auto ex = detail::exchange(*t, lane, ipc::send_buffer(head.data(), head.size()),
						ipc::imbue_credentials(), ipc::recv_inline());
				if (!ex)
					return -EBADF;
				auto &[offered, sent, imbued, reply] = ex->results;
				protocol::Response response;
				if (auto e = detail::answer(offered.error, reply, response, detail::kFileLaneGone))
					return e;
				return response.value;
			});
}

int pipe2(int fds[2], int flags) {
	HELSIM_POSIX_CLIENT(t);
	if (!fds)
		return -EFAULT;
	protocol::Response response;
	std::int64_t first = request(*t, make(protocol::kPipe, flags), {}, &response);
	if (first < 0)
		return static_cast<int>(first);
	fds[0] = static_cast<int>(first);
	fds[1] = static_cast<int>(response.value2);
	return 0;
}

int pipe(int fds[2]) { return pipe2(fds, 0); }

int dup(int fd) {
	HELSIM_POSIX_CLIENT(t);
	return static_cast<int>(request(*t, make(protocol::kDup, fd, 0, 0, protocol::kDupLowest)));
}

int dup2(int fd, int newfd) {
	HELSIM_POSIX_CLIENT(t);
	return static_cast<int>(request(*t, make(protocol::kDup, fd, newfd, 0, protocol::kDupTo)));
}

int dup3(int fd, int newfd, int flags) {
	HELSIM_POSIX_CLIENT(t);
	return static_cast<int>(
			request(*t, make(protocol::kDup, fd, newfd, flags, protocol::kDupToFlags)));
}

int fcntl(int fd, int cmd, int arg) {
	HELSIM_POSIX_CLIENT(t);
	return static_cast<int>(request(*t, make(protocol::kFcntl, fd, cmd, arg)));
}

int fstat(int fd, struct stat *statbuf) {
	HELSIM_POSIX_CLIENT(t);
	if (!statbuf)
		return -EFAULT;
	protocol::Request head = make(protocol::kFstat, fd);
	auto ex = detail::exchange(*t, t->data.posix_lane, ipc::send_buffer(&head, sizeof(head)),
			ipc::imbue_credentials(), ipc::recv_inline());
	if (!ex)
		return -EIO;
	auto &[offered, sent, imbued, reply] = ex->results;
	protocol::Response response; // a StatResponse starts with it
	if (auto e = detail::answer(offered.error, reply, response, -EIO))
		return static_cast<int>(e);
	auto answer = protocol::decode<protocol::StatResponse>(reply.data);
	struct stat out {};
	out.st_dev = 0x2a; // the tmpfs
	out.st_ino = answer.stat.ino;
	out.st_mode = answer.stat.mode;
	out.st_nlink = answer.stat.nlink;
	out.st_size = static_cast<off_t>(answer.stat.size);
	out.st_rdev = answer.stat.rdev;
	out.st_blksize = 4096;
	out.st_blocks = static_cast<blkcnt_t>((answer.stat.size + 511) / 512);
	return detail::copy_out(*t, statbuf, &out, sizeof(out)) ? 0 : -EFAULT;
}

int unlink(const char *path) {
	HELSIM_POSIX_CLIENT(t);
	std::int64_t n = detail::path_length(path);
	if (n < 0)
		return static_cast<int>(n);
	return static_cast<int>(
			request(*t, make(protocol::kUnlink), {path, static_cast<std::size_t>(n)}));
}

int clock_gettime(clockid_t clock, struct timespec *time) {
	HELSIM_POSIX_CLIENT(t);
	if (!time)
		return -EFAULT;
	std::uint64_t now = 0;
	std::int64_t ns = 0;
	switch (clock) {
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_BOOTTIME:
		helGetClock(&now);
		ns = static_cast<std::int64_t>(now);
		break;
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
		if (t->data.clock_tracker_page) {
			std::int64_t ref = 0, base = 0;
			if (protocol::read_tracker(*t->data.clock_tracker_page, ref, base)) {
				helGetClock(&now);
				ns = static_cast<std::int64_t>(now) - ref + base;
				break;
			}
		}
		ns = request(*t, make(protocol::kClockGetRealtime));
		break;
	default: return -EINVAL;
	}
	timespec out{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
	if (out.tv_nsec < 0) {
		out.tv_nsec += 1'000'000'000;
		--out.tv_sec;
	}
	// Stored directly, as Linux's vDSO does (a pointer that cannot be written faults the
	// process): the clock page's point is a clock read without a kernel round trip.
	*time = out;
	return 0;
}

int clock_settime(clockid_t clock, const struct timespec *time) {
	HELSIM_POSIX_CLIENT(t);
	if (!time)
		return -EFAULT;
	// As Linux (timespec64_valid_settod): nanoseconds must fit 64 bits with 30 years to spare,
	// so that neither this product nor a later reading overflows.
	constexpr std::int64_t kMaxSeconds =
			std::numeric_limits<std::int64_t>::max() / 1'000'000'000 - 30LL * 365 * 86'400;
	if (clock != CLOCK_REALTIME || time->tv_nsec < 0 || time->tv_nsec >= 1'000'000'000 ||
			time->tv_sec < 0 || time->tv_sec > kMaxSeconds)
		return -EINVAL;
	std::int64_t ns = static_cast<std::int64_t>(time->tv_sec) * 1'000'000'000 + time->tv_nsec;
	return static_cast<int>(request(*t, make(protocol::kClockSetRealtime, ns)));
}

int nanosleep(const struct timespec *request_time, struct timespec *remaining) {
	HELSIM_POSIX_CLIENT(t);
	if (!request_time)
		return -EFAULT;
	if (request_time->tv_nsec < 0 || request_time->tv_nsec >= 1'000'000'000 ||
			request_time->tv_sec < 0)
		return -EINVAL;
	std::uint64_t now = 0;
	helGetClock(&now);
	// A longer request sleeps until kEnd, 2^62 ns (146 years) of uptime (Linux clamps to
	// KTIME_MAX the same way): forever for any program, yet far enough below 2^63 that the
	// clocks read afterwards still fit 64 signed bits (MONOTONIC, and REALTIME = base +
	// elapsed for a base in this century).
	// Computed so that nothing wraps around to a deadline in the past.
	constexpr std::uint64_t kEnd = std::uint64_t{1} << 62;
	auto seconds = static_cast<std::uint64_t>(request_time->tv_sec);
	auto nanoseconds = static_cast<std::uint64_t>(request_time->tv_nsec);
	std::uint64_t ns = seconds > (kEnd - nanoseconds) / 1'000'000'000
			? kEnd
			: seconds * 1'000'000'000 + nanoseconds;
	std::uint64_t deadline = now > kEnd || ns > kEnd - now ? kEnd : now + ns;
	// A handled signal cancels the clock's wait: -EINTR with the time that was left (Linux
	// never restarts nanosleep after a handler).
	std::int64_t result = detail::interruptible(*t, false, [&](std::uint64_t handlers_before) {
		std::uint64_t tag = t->next_tag++;
		detail::Cancel cancel{.via = detail::Cancel::Via::clock,
				.id = tag,
				.handlers_before = handlers_before};
		t->queue.submit(kHelSubmitAwaitClock, tag, HelSqAwaitClock{deadline, tag});
		t->queue.flush();
		auto element = detail::wait_own(*t, tag, &cancel);
		return element.error() == kHelErrCancelled ? -EINTR : 0;
	});
	if (remaining) {
		helGetClock(&now);
		std::uint64_t left = result == -EINTR && deadline > now ? deadline - now : 0;
		timespec rest{static_cast<time_t>(left / 1'000'000'000),
				static_cast<long>(left % 1'000'000'000)};
		if (!detail::copy_out(*t, remaining, &rest, sizeof(rest)))
			return -EFAULT;
	}
	return static_cast<int>(result);
}

void *mmap(void *address, size_t length, int prot, int flags, int fd, off_t offset) {
	auto fail = [](int error) {
		return reinterpret_cast<void *>(static_cast<std::intptr_t>(error));
	};
	ClientThread *t = self();
	if (!t)
		return fail(-ENOSYS);
	(void)address; // a hint: helsim's window decides where memory goes
	(void)fd;
	if (!(flags & MAP_ANONYMOUS))
		return fail(-ENODEV); // files cannot be mapped (yet)
	if (length == 0 || offset % 4096 || (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)))
		return fail(-EINVAL);
	if ((flags & MAP_FIXED) || !(flags & (MAP_PRIVATE | MAP_SHARED)))
		return fail(-EINVAL);
	std::int64_t result = detail::supercalls(*t)
			? detail::supercall(protocol::kSuperAnonAllocate, length, static_cast<HelWord>(prot),
					  static_cast<HelWord>(flags))
			: request(*t,
					  make(protocol::kAnonAllocate, static_cast<std::int64_t>(length), prot,
							  flags));
	return reinterpret_cast<void *>(static_cast<std::intptr_t>(result));
}

int munmap(void *address, size_t length) {
	HELSIM_POSIX_CLIENT(t);
	auto where = reinterpret_cast<std::uintptr_t>(address);
	return static_cast<int>(detail::supercalls(*t)
					? detail::supercall(protocol::kSuperAnonDeallocate, where, length)
					: request(*t,
							  make(protocol::kAnonDeallocate, static_cast<std::int64_t>(where),
									  static_cast<std::int64_t>(length))));
}

pid_t spawn(const char *path, const char *const argv[]) {
	HELSIM_POSIX_CLIENT(t);
	std::int64_t n = detail::path_length(path);
	if (n < 0)
		return static_cast<pid_t>(n);
	// Every string ends with its NUL, so that an empty last argument is still one.
	std::string tail{path, static_cast<std::size_t>(n)};
	tail.push_back('\0');
	for (std::size_t i = 0; argv && argv[i]; ++i) {
		tail.append(argv[i]);
		tail.push_back('\0');
		if (tail.size() > protocol::kMaxTail)
			return -E2BIG;
	}
	return static_cast<pid_t>(request(*t, make(protocol::kSpawn), tail));
}

Counters counters() {
	ClientThread *t = self();
	return t ? t->counters->snapshot() : Counters{};
}

} // namespace helsim::posix
