// The wire protocol between POSIX clients, the POSIX server and file servers, and the pages
// they share. docs/posix.md#the-protocol documents it.
//
// Messages follow bragi's shape without its generator: a head of at most 128 bytes (so it
// fits one RecvInline) that starts with a preamble {id, tail size} and holds fixed fields,
// little-endian, followed by an optional tail (strings, data) sent as a second buffer. Each
// message is a trivially copyable struct; encoding is its bytes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include <helsim/hel.h>

namespace helsim::posix::protocol {

// ------------------------------------------------------------------ supercalls
// kHelCallSuper + n; numbers as Managarm's protocols/posix/supercalls.hpp.
enum Supercall : std::uint32_t {
	kSuperGetProcessData = 1,  // Arg0: ProcessData * -> the server writes it
	kSuperFork = 2,            // Arg0: child entry, Arg1: its argument (helsim) -> Out0: pid
	kSuperExecve = 3,          // Arg0: path, Arg1: its length, Arg2: argv area, Arg3: its length
	kSuperExit = 4,            // Arg0: status; never returns
	kSuperSigKill = 5,         // Arg0: mode 0, Arg1: pid, Arg2: tid 0, Arg3: signo
	kSuperSigRestore = 6,      // Arg0: the frame (helsim: the upcall passes it)
	kSuperSigMask = 7,         // Arg0: how, Arg1: set -> Out0: former mask, Out2: signal seq
	kSuperSigRaise = 8,        // the SignalGuard saw the flag at 2: raise the deferred signal
	kSuperAnonAllocate = 10,   // Arg0: size, Arg1: PROT_*, Arg2: MAP_* (helsim) -> Out0: address
	kSuperAnonDeallocate = 11, // Arg0: address, Arg1: size
	kSuperSigAltStack = 12,    // Arg0: stack_t *, Arg1: stack_t * (old)
	kSuperSigSuspend = 13,     // Arg0: seq from kSuperSigMask
	kSuperGetTid = 14,         // -> Out0: tid
	kSuperSigGetPending = 15,  // -> Out0: pending & blocked
	kSuperSigTimedWait = 16,   // Arg0: set, Arg1: timeout ns (~0: forever), Arg2: siginfo_t *
	kSuperCancel = 18,         // Arg0: cancellation id of a request on the POSIX lane
};
// Supercall results: Error = kHelErrNone, Out0 = the value, Out1 = a negative errno or 0.

// ------------------------------------------------------------------ shared pages

// Managarm's posix::ThreadPage: one page per thread, mapped read-write into the process.
struct ThreadPage {
	std::uint32_t global_signal_flag; // 0: no guard, 1: in a guard, 2: a signal was deferred
	std::uint32_t padding;
	HelHandle queue_handle; // the thread's IPC queue, in the process's universe
};
static_assert(offsetof(ThreadPage, queue_handle) == 8);

// Managarm's clock::TrackerPage: realtime = helGetClock() - ref_clock + base_realtime.
struct TrackerPage {
	std::uint64_t seqlock; // odd while the writer updates the page
	std::int32_t state;
	std::int32_t padding;
	std::int64_t ref_clock;
	std::int64_t base_realtime;
};
static_assert(sizeof(TrackerPage) == 32);

// The page's seqlock, without fences (TSan does not model them, and GCC refuses them under
// -fsanitize=thread): the data fields are stored with release and loaded with acquire, which
// costs nothing on x86-64. Numbered steps:
//   writer: (W1) seqlock = s + 1; (W2) the fields, each a release store (so W1 is visible
//           before any of them); (W3) seqlock = s + 2, release.
//   reader: (R1) before = seqlock, acquire (it sees at least the fields of the write that
//           stored `before`); odd: a writer is inside, again. (R2) the fields, each an
//           acquire load. (R3) seqlock again: if any field came from a later write, that
//           write's W1 happens before R3, so R3 reads more than `before` and the reader tries
//           again. Equal: every field is from the same write.

// Seqlock writer: only the clock owner calls it.
inline void write_tracker(TrackerPage &page, std::int64_t ref, std::int64_t base) {
	std::atomic_ref<std::uint64_t> seq{page.seqlock};
	std::uint64_t s = seq.load(std::memory_order_relaxed);
	seq.store(s + 1, std::memory_order_relaxed); // W1
	// W2
	std::atomic_ref<std::int64_t>{page.ref_clock}.store(ref, std::memory_order_release);
	std::atomic_ref<std::int64_t>{page.base_realtime}.store(base, std::memory_order_release);
	std::atomic_ref<std::int32_t>{page.state}.store(1, std::memory_order_release);
	seq.store(s + 2, std::memory_order_release); // W3
}

// Seqlock reader: retries while the writer is inside (mlibc asserts instead). Returns false
// if the page was never written.
inline bool read_tracker(const TrackerPage &page, std::int64_t &ref, std::int64_t &base) {
	auto &mutable_page = const_cast<TrackerPage &>(page);
	std::atomic_ref<std::uint64_t> seq{mutable_page.seqlock};
	for (;;) {
		std::uint64_t before = seq.load(std::memory_order_acquire); // R1
		if (before & 1)
			continue;
		// R2
		ref = std::atomic_ref<std::int64_t>{mutable_page.ref_clock}.load(std::memory_order_acquire);
		base = std::atomic_ref<std::int64_t>{mutable_page.base_realtime}.load(
				std::memory_order_acquire);
		std::int32_t state =
				std::atomic_ref<std::int32_t>{mutable_page.state}.load(std::memory_order_acquire);
		if (seq.load(std::memory_order_relaxed) == before) // R3
			return state != 0;
	}
}

// The file table page: HelHandle per fd, 0 = closed (Managarm's fileTable).
inline constexpr int kFileTableSize = 512;

inline constexpr std::uint32_t kProcessUsesSupercalls = 1;
inline constexpr std::uint32_t kProcessInlineSupercalls = 2; // Options::inline_supercalls
inline constexpr std::uint32_t kProcessUnbatched = 4;        // Options::batching off

// What superGetProcessData writes (Managarm's ManagarmProcessData, plus helsim's fields at
// the end). A null page means its strategy is off.
struct ProcessData {
	HelHandle posix_lane;
	HelHandle mbus_lane; // always kHelNullHandle: helsim has no mbus
	ThreadPage *thread_page;
	HelHandle *file_table;
	TrackerPage *clock_tracker_page;
	// helsim:
	std::uint32_t flags; // kProcess*
	std::uint32_t padding;
	void *counters; // the System's counters (host memory), for posix::counters()
};

// ------------------------------------------------------------------ messages

struct Preamble {
	std::uint32_t id;
	std::uint32_t tail_size;
};

inline constexpr std::size_t kMaxHead = 128;
// The largest tail a request may carry (paths and argv); data transfers are capped per
// request at kMaxTransfer and split by the client.
inline constexpr std::size_t kMaxTail = std::size_t{64} << 10;
inline constexpr std::size_t kMaxTransfer = std::size_t{1} << 20;

enum MessageId : std::uint32_t {
	// POSIX lane
	kGetPid = 1,
	kGetPpid,
	kOpen, // tail: path
	kClose,
	kDup,
	kPipe,
	kFcntl,
	kFstat,
	kUnlink, // tail: path
	kClockGetRealtime,
	kClockSetRealtime,
	kSpawn,  // tail: path \0 argv[0] \0 argv[1] \0 ... argv[n-1] \0
	kGetTid, // supercalls off
	kExit,   // supercalls off
	kAnonAllocate,
	kAnonDeallocate,
	kFdRead, // file_table off: a file request by fd (head: FileRequest + fd)
	kFdWrite,
	kFdSeek,
	// issue 15: signals
	kSigaction,
	// supercalls off: the signal supercalls as requests (same arguments in a..d)
	kSigKill,
	kSigMask,
	kSigRaise,
	kSigRestore,
	kSigAltStack,
	kSigSuspend,
	kSigGetPending,
	kSigTimedWait,
	kCancel,
	// issue 15: processes
	kFork, // supercalls off
	kExecve,
	kWaitPid,
	// issue 15: readiness
	kPoll, // tail: the pollfd array
	kEpollCreate,
	kEpollCtl,
	kEpollWait,
	kEventfd,
	// passthrough lane (file protocol)
	kFileRead = 64,
	kFileWrite, // tail: data (sent as its own buffer)
	kFileSeek,
	kFileCancel, // CancelOperation: FileRequest::cancel_id names the request to cancel
	kFilePoll,   // a device's readiness (status_page off)
};

enum DupKind : std::int32_t { kDupLowest = 0, kDupTo = 1, kDupToFlags = 2, kDupAtLeast = 3 };

struct Request {
	Preamble preamble;
	std::int64_t a = 0; // meaning depends on the id (docs/posix.md#messages)
	std::int64_t b = 0;
	std::int64_t c = 0;
	std::int64_t d = 0;
	std::uint64_t cancel_id = 0; // a request that may block: its id for kSuperCancel / kCancel
};

// A file request on a passthrough lane, or by fd on the POSIX lane (file_table off).
// On the POSIX lane (file_table off) the same requests go as kFdRead/kFdWrite/kFdSeek in a
// Request: a = fd, b = size, c = offset, d = whence.
struct FileRequest {
	Preamble preamble;
	std::int32_t whence = 0; // kFileSeek
	std::int32_t padding = 0;
	std::uint64_t size = 0;      // bytes to read or write
	std::int64_t offset = 0;     // pread/pwrite/lseek offset; -1: the file position
	std::uint64_t cancel_id = 0; // kFileRead: its id; kFileCancel: the read to cancel
};

struct Response {
	std::int64_t error = 0; // 0 or a negative errno
	std::int64_t value = 0; // the call's result (fd, pid, byte count, offset, ...)
	std::int64_t value2 = 0;
};

// kFstat: sent right after the Response, in the same buffer (both fit one RecvInline).
struct StatReply {
	std::uint64_t ino;
	std::uint64_t size;
	std::uint64_t rdev;
	std::uint32_t mode;
	std::uint32_t nlink;
	std::int64_t mtime_ns;
};

template <typename T>
concept Message = std::is_trivially_copyable_v<T> && sizeof(T) <= kMaxHead;

template <Message T>
std::span<const std::byte> bytes_of(const T &message) {
	return std::as_bytes(std::span{&message, 1});
}

// Reads a message from received bytes; shorter input leaves the rest zero.
template <Message T>
T decode(std::span<const std::byte> data) {
	T value{};
	std::memcpy(&value, data.data(), data.size() < sizeof(T) ? data.size() : sizeof(T));
	return value;
}

struct StatResponse {
	Response response;
	StatReply stat;
};

static_assert(Message<Request> && Message<FileRequest> && Message<StatResponse>);

} // namespace helsim::posix::protocol
