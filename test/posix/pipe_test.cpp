// test/posix/pipe_test.cpp tests src/posix/pipe.cpp: pipes as Linux has them (end of file,
// EPIPE, non-blocking ends, atomic writes, a 64 KiB buffer), between the calls of one
// process and between processes, and that a reader dying with a read in flight loses nothing.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/ipc.hpp>
#include <helsim/posix.hpp>

#include "file_support.hpp"

namespace px = helsim::posix;
using namespace helsim::posix::file_test;

namespace {

constexpr std::size_t kCapacity = 64 * 1024;

int fd_arg(char **argv, int index) { return std::atoi(argv[index]); }

TEST(PosixPipe, ShortReadsTakeWhatIsThere) {
	both_ways([](int, char **) {
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		EXPECT_EQ(px::write(fds[1], "0123456789", 10), 10);
		char buf[100] = {};
		EXPECT_EQ(px::read(fds[0], buf, 3), 3);
		EXPECT_EQ(std::string(buf, 3), "012");
		EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 7);
		EXPECT_EQ(std::string(buf, 7), "3456789");
		EXPECT_EQ(px::read(fds[0], buf, 0), 0);
		EXPECT_EQ(px::write(fds[1], "ab", 2), 2);
		EXPECT_EQ(px::write(fds[1], "cd", 2), 2);
		EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 4); // two writes, one read
		EXPECT_EQ(std::string(buf, 4), "abcd");
		EXPECT_EQ(px::close(fds[0]), 0);
		EXPECT_EQ(px::close(fds[1]), 0);
		return 0;
	});
}

TEST(PosixPipe, EndOfFileOnlyOnceEveryWriterHasClosed) {
	both_ways([](int, char **) {
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		int second_writer = px::dup(fds[1]);
		EXPECT_EQ(second_writer, 5);
		EXPECT_EQ(px::fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
		EXPECT_EQ(px::write(second_writer, "xy", 2), 2);
		EXPECT_EQ(px::close(fds[1]), 0);
		char buf[8];
		EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 2);
		// One writer is left: empty, not at its end.
		EXPECT_EQ(px::read(fds[0], buf, sizeof buf), -EAGAIN);
		EXPECT_EQ(px::close(second_writer), 0);
		EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 0);
		EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 0);
		EXPECT_EQ(px::close(fds[0]), 0);
		return 0;
	});
}

// SIGPIPE ignored, the write itself says -EPIPE (its default action kills: signal_test.cpp).
void ignore_sigpipe() {
	struct sigaction ignore {};
	ignore.sa_handler = SIG_IGN;
	EXPECT_EQ(px::sigaction(SIGPIPE, &ignore, nullptr), 0);
}

TEST(PosixPipe, WritingWithoutReadersIsEpipe) {
	both_ways([](int, char **) {
		ignore_sigpipe();
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		EXPECT_EQ(px::close(fds[0]), 0);
		EXPECT_EQ(px::write(fds[1], "x", 1), -EPIPE);
		EXPECT_EQ(px::write(fds[1], "x", 5000), -EPIPE);
		EXPECT_EQ(px::write(fds[1], "", 0), 0); // Linux: a null write succeeds before any check
		EXPECT_EQ(px::fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
		EXPECT_EQ(px::write(fds[1], "x", 1), -EPIPE); // not EAGAIN
		EXPECT_EQ(px::close(fds[1]), 0);
		return 0;
	});
}

TEST(PosixPipe, NonBlockingReadOfAnEmptyPipeIsEagain) {
	both_ways([](int, char **) {
		int fds[2];
		EXPECT_EQ(px::pipe2(fds, O_NONBLOCK), 0);
		EXPECT_EQ(px::fcntl(fds[0], F_GETFL), O_RDONLY | O_NONBLOCK);
		EXPECT_EQ(px::fcntl(fds[1], F_GETFL), O_WRONLY | O_NONBLOCK);
		char buf[4];
		EXPECT_EQ(px::read(fds[0], buf, sizeof buf), -EAGAIN);
		EXPECT_EQ(px::write(fds[1], "z", 1), 1);
		EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 1);
		EXPECT_EQ(px::read(fds[0], buf, sizeof buf), -EAGAIN);
		EXPECT_EQ(px::close(fds[1]), 0);
		EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 0); // end of file beats EAGAIN
		EXPECT_EQ(px::close(fds[0]), 0);
		return 0;
	});
}

// 64 KiB of buffer; a non-blocking write takes what fits, except that a write of at most
// 4096 bytes goes in whole or not at all.
TEST(PosixPipe, NonBlockingWritesFillTheBufferThenFailWithEagain) {
	both_ways([](int, char **) {
		int fds[2];
		EXPECT_EQ(px::pipe2(fds, O_NONBLOCK), 0);
		std::vector<unsigned char> out(100'000);
		for (std::size_t i = 0; i < out.size(); ++i)
			out[i] = pattern_byte(i);
		std::size_t sent = 0;
		EXPECT_EQ(px::write(fds[1], out.data(), out.size()), static_cast<ssize_t>(kCapacity));
		sent += kCapacity;
		EXPECT_EQ(px::write(fds[1], out.data() + sent, 1), -EAGAIN);

		std::vector<unsigned char> in(out.size());
		std::size_t got = 0;
		EXPECT_EQ(px::read(fds[0], in.data(), 200), 200);
		got += 200;
		EXPECT_EQ(px::write(fds[1], out.data() + sent, 4096), -EAGAIN); // atomic: no room for all
		EXPECT_EQ(px::write(fds[1], out.data() + sent, 5000), 200);     // not atomic: a part
		sent += 200;
		EXPECT_EQ(px::write(fds[1], out.data() + sent, 5000), -EAGAIN);
		EXPECT_EQ(px::read(fds[0], in.data() + got, 4096), 4096);
		got += 4096;
		EXPECT_EQ(px::write(fds[1], out.data() + sent, 4096), 4096); // fits exactly now
		sent += 4096;
		EXPECT_EQ(px::close(fds[1]), 0);
		EXPECT_EQ(read_all(fds[0], in.data() + got, in.size() - got),
				static_cast<ssize_t>(sent - got));
		in.resize(sent);
		out.resize(sent);
		EXPECT_TRUE(in == out);
		EXPECT_EQ(px::close(fds[0]), 0);
		return 0;
	});
}

TEST(PosixPipe, PipesCannotSeek) {
	both_ways([](int, char **) {
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		char buf[4] = {};
		for (int fd : fds) {
			EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), -ESPIPE);
			EXPECT_EQ(px::lseek(fd, 0, SEEK_SET), -ESPIPE);
		}
		EXPECT_EQ(px::pwrite(fds[1], "ab", 2, 0), -ESPIPE);
		EXPECT_EQ(px::write(fds[1], "ab", 2), 2);
		EXPECT_EQ(px::pread(fds[0], buf, 2, 0), -ESPIPE);
		EXPECT_EQ(px::read(fds[0], buf, 2), 2);      // the failed pread took nothing
		EXPECT_EQ(px::read(fds[1], buf, 2), -EBADF); // the write end is not readable
		EXPECT_EQ(px::write(fds[0], buf, 2), -EBADF);
		EXPECT_EQ(px::close(fds[0]), 0);
		EXPECT_EQ(px::close(fds[1]), 0);
		return 0;
	});
}

TEST(PosixPipe, Pipe2RejectsBadFlagsAndANullArray) {
	both_ways([](int, char **) {
		int fds[2] = {-1, -1};
		EXPECT_EQ(px::pipe2(fds, O_APPEND), -EINVAL);
		EXPECT_EQ(px::pipe2(fds, 0x1), -EINVAL);
		EXPECT_EQ(fds[0], -1);
		EXPECT_EQ(px::pipe2(nullptr, 0), -EFAULT);
		EXPECT_EQ(px::pipe(nullptr), -EFAULT);
		// Nothing was installed: the next fds are still 3 and 4.
		EXPECT_EQ(px::pipe2(fds, O_CLOEXEC), 0);
		EXPECT_EQ(fds[0], 3);
		EXPECT_EQ(fds[1], 4);
		EXPECT_EQ(px::fcntl(fds[0], F_GETFD), FD_CLOEXEC);
		struct stat a {
		}, b{};
		EXPECT_EQ(px::fstat(fds[0], &a), 0);
		EXPECT_EQ(px::fstat(fds[1], &b), 0);
		EXPECT_TRUE(S_ISFIFO(a.st_mode));
		EXPECT_EQ(a.st_ino, b.st_ino); // the two ends of one pipe
		return 0;
	});
}

// ------------------------------------------------------------------ between processes

// The child: writes its argv[2] into fd argv[1], after checking that the fds it inherited
// are where its parent had them.
int greeting_child(int, char **argv) {
	int out = fd_arg(argv, 1);
	struct stat st {};
	EXPECT_EQ(px::fstat(out, &st), 0);
	EXPECT_TRUE(S_ISFIFO(st.st_mode));
	EXPECT_EQ(st.st_ino, static_cast<ino_t>(std::strtoull(argv[3], nullptr, 10)));
	EXPECT_EQ(px::fstat(5, &st), -EBADF); // the parent's FD_CLOEXEC pipe stayed behind
	EXPECT_EQ(px::fstat(6, &st), -EBADF);
	EXPECT_EQ(px::close(out - 1), 0); // its copy of the read end
	std::string text = argv[2];
	EXPECT_EQ(px::write(out, text.data(), text.size()), static_cast<ssize_t>(text.size()));
	return 0;
}

int greeting_parent(int, char **) {
	int fds[2], hidden[2];
	EXPECT_EQ(px::pipe(fds), 0);
	EXPECT_EQ(px::pipe2(hidden, O_CLOEXEC), 0);
	struct stat st {};
	EXPECT_EQ(px::fstat(fds[1], &st), 0);
	pid_t child = spawn("/bin/child",
			{"child", std::to_string(fds[1]), "hello from the child", std::to_string(st.st_ino)});
	EXPECT_GT(child, px::getpid());
	EXPECT_EQ(px::close(fds[1]), 0);
	// Blocks until the child writes (nothing else can put data in).
	char buf[64] = {};
	EXPECT_EQ(read_all(fds[0], buf, sizeof buf), 20);
	EXPECT_STREQ(buf, "hello from the child");
	EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 0); // the child's exit closed the last writer
	return 0;
}

TEST(PosixPipe, ABlockedReadIsWokenByAWriteFromAnotherProcess) {
	Programs programs{{"/bin/parent", greeting_parent}, {"/bin/child", greeting_child}};
	both_ways(programs);
	in_threads(programs);
}

// A writer blocked on a full pipe is woken with EPIPE when the last reader leaves.
int blocked_writer(int, char **argv) {
	ignore_sigpipe();
	int out = fd_arg(argv, 1);
	EXPECT_EQ(px::close(out - 1), 0);
	std::vector<char> data(100'000, 'w');
	ssize_t first = px::write(out, data.data(), data.size());
	// All in (the reader took enough before leaving), part (it left while the write
	// waited), or nothing yet.
	EXPECT_TRUE(first == -EPIPE || (first > 0 && first <= static_cast<ssize_t>(data.size())))
			<< first;
	ssize_t n = 0;
	while ((n = px::write(out, data.data(), data.size())) > 0) {
	}
	EXPECT_EQ(n, -EPIPE);
	return 0;
}

int reader_that_leaves(int, char **) {
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	EXPECT_GT(spawn("/bin/writer", {"writer", std::to_string(fds[1])}), 0);
	EXPECT_EQ(px::close(fds[1]), 0);
	char byte;
	EXPECT_EQ(px::read(fds[0], &byte, 1), 1); // the writer is writing
	EXPECT_EQ(byte, 'w');
	EXPECT_EQ(px::close(fds[0]), 0);
	return 0;
}

TEST(PosixPipe, AWriterBlockedOnAFullPipeGetsEpipeWhenTheReaderLeaves) {
	Programs programs{{"/bin/reader", reader_that_leaves}, {"/bin/writer", blocked_writer}};
	both_ways(programs);
	in_threads(programs);
}

// Two writers, records of 4096 bytes (the atomic limit) each of one letter: the reader sees
// whole records, never a mix, however the writes interleave.
int record_writer(int, char **argv) {
	int out = fd_arg(argv, 1);
	EXPECT_EQ(px::close(out - 1), 0);
	std::vector<char> record(4096, argv[2][0]);
	for (int i = 0; i < 24; ++i)
		EXPECT_EQ(px::write(out, record.data(), record.size()), 4096);
	return 0;
}

int record_reader(int, char **) {
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	EXPECT_GT(spawn("/bin/writer", {"writer", std::to_string(fds[1]), "a"}), 0);
	EXPECT_GT(spawn("/bin/writer", {"writer", std::to_string(fds[1]), "b"}), 0);
	EXPECT_EQ(px::close(fds[1]), 0);
	std::string all;
	char buf[3000]; // not a divisor of 4096: records arrive in pieces
	ssize_t n;
	while ((n = px::read(fds[0], buf, sizeof buf)) > 0)
		all.append(buf, static_cast<std::size_t>(n));
	EXPECT_EQ(n, 0);
	EXPECT_EQ(all.size(), 2u * 24 * 4096);
	std::size_t mixed = 0, a = 0;
	for (std::size_t at = 0; at + 4096 <= all.size(); at += 4096) {
		std::string_view record{all.data() + at, 4096};
		mixed += record.find_first_not_of(record.front()) != std::string_view::npos;
		a += record.front() == 'a';
	}
	EXPECT_EQ(mixed, 0u);
	EXPECT_EQ(a, 24u);
	return 0;
}

TEST(PosixPipe, WritesOfAtMost4096BytesAreAtomic) {
	both_ways({{"/bin/reader", record_reader}, {"/bin/writer", record_writer}});
}

TEST(PosixPipe, ConcurrentWritesOfAtMost4096BytesAreAtomic) {
	in_threads({{"/bin/reader", record_reader}, {"/bin/writer", record_writer}});
}

// A large transfer: the child writes kTransfer bytes in uneven pieces, the parent reads in
// other uneven pieces; both checksum what they saw.
constexpr std::size_t kTransfer = (2u << 20) + 12345;

int bulk_writer(int, char **argv) {
	int out = fd_arg(argv, 1);
	EXPECT_EQ(px::close(out - 1), 0);
	std::vector<unsigned char> chunk(200'000);
	std::size_t sent = 0, piece = 1;
	while (sent < kTransfer) {
		piece = (piece * 7919 + 13) % chunk.size() + 1; // 1 .. 200000 bytes
		std::size_t n = std::min(piece, kTransfer - sent);
		for (std::size_t i = 0; i < n; ++i)
			chunk[i] = pattern_byte(sent + i);
		EXPECT_EQ(write_all(out, chunk.data(), n), static_cast<ssize_t>(n));
		sent += n;
	}
	return 0;
}

int bulk_reader(int, char **) {
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	EXPECT_GT(spawn("/bin/writer", {"writer", std::to_string(fds[1])}), 0);
	EXPECT_EQ(px::close(fds[1]), 0);
	std::uint64_t expected = kFnvStart, seen = kFnvStart;
	for (std::size_t i = 0; i < kTransfer; ++i) {
		unsigned char byte = pattern_byte(i);
		expected = fnv1a(expected, &byte, 1);
	}
	std::vector<unsigned char> buf(70'000);
	std::size_t total = 0, piece = 3;
	for (;;) {
		piece = (piece * 104729 + 7) % buf.size() + 1;
		ssize_t n = px::read(fds[0], buf.data(), piece);
		EXPECT_GE(n, 0);
		if (n <= 0)
			break;
		seen = fnv1a(seen, buf.data(), static_cast<std::size_t>(n));
		total += static_cast<std::size_t>(n);
	}
	EXPECT_EQ(total, kTransfer);
	EXPECT_EQ(seen, expected);
	return 0;
}

TEST(PosixPipe, AMegabyteTransferBetweenProcessesArrivesByteExact) {
	both_ways({{"/bin/reader", bulk_reader}, {"/bin/writer", bulk_writer}}, 8);
}

TEST(PosixPipe, ConcurrentMegabyteTransferArrivesByteExact) {
	in_threads({{"/bin/reader", bulk_reader}, {"/bin/writer", bulk_writer}});
}

// A shell's pipeline: producer | filter | the parent, each stage on its stdin and stdout
// (dup2 over the /dev/null and /dev/console they started with).
constexpr std::size_t kPipelineBytes = 300'000;

int pipeline_producer(int, char **) {
	std::vector<unsigned char> data(kPipelineBytes);
	for (std::size_t i = 0; i < data.size(); ++i)
		data[i] = pattern_byte(i);
	EXPECT_EQ(write_all(1, data.data(), data.size()), static_cast<ssize_t>(data.size()));
	return 0;
}

// Adds 1 to every byte, in reads and writes of its own sizes.
int pipeline_filter(int, char **) {
	unsigned char buf[5000];
	ssize_t n;
	while ((n = px::read(0, buf, sizeof buf)) > 0) {
		for (ssize_t i = 0; i < n; ++i)
			++buf[i];
		EXPECT_EQ(write_all(1, buf, static_cast<std::size_t>(n)), n);
	}
	EXPECT_EQ(n, 0);
	return 0;
}

// Starts `path` with `in` as its stdin and `out` as its stdout, as a shell does between fork
// and exec; every other fd of the pipes is FD_CLOEXEC, so the child gets only those two.
void start_stage(const char *path, int in, int out) {
	int saved_in = px::fcntl(0, F_DUPFD_CLOEXEC, 10), saved_out = px::fcntl(1, F_DUPFD_CLOEXEC, 10);
	EXPECT_EQ(px::dup2(in, 0), 0);
	EXPECT_EQ(px::dup2(out, 1), 1);
	EXPECT_GT(spawn(path, {path}), 0);
	EXPECT_EQ(px::dup2(saved_in, 0), 0);
	EXPECT_EQ(px::dup2(saved_out, 1), 1);
	EXPECT_EQ(px::close(saved_in), 0);
	EXPECT_EQ(px::close(saved_out), 0);
}

int pipeline_shell(int, char **) {
	int first[2], second[2], null = px::open("/dev/null", O_RDONLY | O_CLOEXEC);
	EXPECT_EQ(px::pipe2(first, O_CLOEXEC), 0);
	EXPECT_EQ(px::pipe2(second, O_CLOEXEC), 0);
	start_stage("/bin/producer", null, first[1]);
	start_stage("/bin/filter", first[0], second[1]);
	for (int fd : {null, first[0], first[1], second[1]})
		EXPECT_EQ(px::close(fd), 0);
	std::uint64_t expected = kFnvStart, seen = kFnvStart;
	for (std::size_t i = 0; i < kPipelineBytes; ++i) {
		unsigned char byte = static_cast<unsigned char>(pattern_byte(i) + 1);
		expected = fnv1a(expected, &byte, 1);
	}
	std::vector<unsigned char> buf(kPipelineBytes + 1);
	EXPECT_EQ(read_all(second[0], buf.data(), buf.size()), static_cast<ssize_t>(kPipelineBytes));
	seen = fnv1a(seen, buf.data(), kPipelineBytes);
	EXPECT_EQ(seen, expected);
	return 0;
}

Programs pipeline() {
	return {{"/bin/shell", pipeline_shell}, {"/bin/producer", pipeline_producer},
			{"/bin/filter", pipeline_filter}};
}

TEST(PosixPipe, AShellPipelineThroughStdinAndStdout) { both_ways(pipeline(), 10); }

TEST(PosixPipe, ConcurrentShellPipeline) {
	in_threads(pipeline());
	in_threads(pipeline(), without_file_table());
}

// A long read into a bad buffer gives its bytes back to the front of the pipe, and a writer
// waiting for room may have filled the room they left meanwhile: the pipe is then over its
// capacity, and must take no more until it is below it again.
TEST(PosixPipe, BytesGivenBackDoNotLetThePipeGrowPastItsCapacity) {
	both_ways([](int, char **) {
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		std::vector<unsigned char> data(kCapacity);
		for (std::size_t i = 0; i < data.size(); ++i)
			data[i] = pattern_byte(i);
		EXPECT_EQ(px::write(fds[1], data.data(), data.size()), static_cast<ssize_t>(kCapacity));
		// A write that waits for room, in flight while the read below runs: it reaches the
		// pipe before the read's bytes come back.
		helsim::Dispatcher queue{helsim::QueueConfig{2, 2, 4096}};
		submit_raw_write(queue, fds[1], "0123456789", 10);
		EXPECT_EQ(px::read(fds[0], reinterpret_cast<void *>(0x10), kCapacity), -EFAULT);
		helsim::posix::protocol::Response response = wait_raw_write(queue);
		EXPECT_EQ(response.error, 0);
		EXPECT_EQ(response.value, 10); // it is in
		EXPECT_EQ(px::fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
		EXPECT_EQ(px::write(fds[1], "x", 1), -EAGAIN); // more than full
		EXPECT_EQ(px::close(fds[1]), 0);
		std::vector<unsigned char> got(kCapacity + 11);
		EXPECT_EQ(read_all(fds[0], got.data(), got.size()), static_cast<ssize_t>(kCapacity + 10));
		EXPECT_TRUE(std::equal(data.begin(), data.end(), got.begin())); // given back in order
		EXPECT_EQ(std::string(reinterpret_cast<char *>(got.data()) + kCapacity, 10), "0123456789");
		EXPECT_EQ(px::close(fds[0]), 0);
		return 0;
	});
}

// Writers and readers, several of each, on one pipe: every record (64 bytes, so each write
// and each read of 64 moves one whole record) arrives once, and each writer's records reach
// any one reader in the order they were written.
constexpr int kStressWriters = 3, kStressReaders = 2, kStressRecords = 100;

struct Record {
	std::uint32_t writer;
	std::uint32_t sequence;
	char filler[56];
};
static_assert(sizeof(Record) == 64);

int record_stress_writer(int, char **argv) {
	int out = fd_arg(argv, 1);
	EXPECT_EQ(px::close(out - 1), 0);
	Record record{};
	record.writer = static_cast<std::uint32_t>(fd_arg(argv, 2));
	for (int i = 0; i < kStressRecords; ++i) {
		record.sequence = static_cast<std::uint32_t>(i);
		std::memset(record.filler, 'a' + i % 26, sizeof record.filler);
		EXPECT_EQ(px::write(out, &record, sizeof record), 64);
	}
	return 0;
}

// Counts each (writer, sequence) it read into the shared table.
std::atomic<int> stress_seen[kStressWriters][kStressRecords];

void read_records(int in) {
	int last[kStressWriters];
	std::fill(std::begin(last), std::end(last), -1);
	Record record;
	ssize_t n;
	while ((n = px::read(in, &record, sizeof record)) == 64) {
		if (record.writer >= kStressWriters || record.sequence >= kStressRecords) {
			ADD_FAILURE() << "a record that no writer wrote";
			break;
		}
		EXPECT_GT(static_cast<int>(record.sequence), last[record.writer]);
		last[record.writer] = static_cast<int>(record.sequence);
		EXPECT_EQ(record.filler[55], 'a' + static_cast<int>(record.sequence) % 26);
		stress_seen[record.writer][record.sequence].fetch_add(1);
	}
	EXPECT_EQ(n, 0);
}

int record_stress_reader(int, char **argv) {
	int in = fd_arg(argv, 1);
	EXPECT_EQ(px::close(in + 1), 0);
	read_records(in);
	return 0;
}

int record_stress_parent(int, char **) {
	for (auto &row : stress_seen)
		for (auto &count : row)
			count.store(0);
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	for (int i = 0; i < kStressWriters; ++i)
		EXPECT_GT(spawn("/bin/writer", {"writer", std::to_string(fds[1]), std::to_string(i)}), 0);
	for (int i = 0; i < kStressReaders - 1; ++i)
		EXPECT_GT(spawn("/bin/reader", {"reader", std::to_string(fds[0])}), 0);
	EXPECT_EQ(px::close(fds[1]), 0);
	read_records(fds[0]);
	return 0;
}

void expect_every_record_once() {
	int missing = 0, repeated = 0;
	for (auto &row : stress_seen)
		for (auto &count : row) {
			missing += count.load() == 0;
			repeated += count.load() > 1;
		}
	EXPECT_EQ(missing, 0);
	EXPECT_EQ(repeated, 0);
}

TEST(PosixPipe, ConcurrentReadersAndWritersStress) {
	Programs programs{{"/bin/parent", record_stress_parent}, {"/bin/writer", record_stress_writer},
			{"/bin/reader", record_stress_reader}};
	for (const px::Options &options : {quiet(), without_file_table()}) {
		helsim::testing::for_each_seed(
				[&](std::uint64_t seed) {
					helsim::Machine machine{seeded(seed)};
					run_programs(machine, programs, options);
					expect_every_record_once();
				},
				5);
		for (int round = 0; round < 2; ++round) {
			helsim::Machine machine;
			run_programs(machine, programs, options);
			expect_every_record_once();
		}
	}
}

// ------------------------------------------------------------------ a reader that dies

// Where an abandoned read would put its data; it must never get any.
char abandoned[64];

// Submits a read of fd argv[1] (the raw request mlibc would send, on the passthrough lane
// from the file table, or by fd on the POSIX lane when there is no file table) and exits
// without waiting for it.
int abandoning_reader(int, char **argv) {
	using namespace helsim::ipc;
	namespace protocol = helsim::posix::protocol;
	int fd = fd_arg(argv, 1);
	EXPECT_EQ(px::close(fd + 1), 0);          // its copy of the write end
	EXPECT_EQ(px::close(fd_arg(argv, 2)), 0); // and of the read end of the parent's sync pipe
	protocol::ProcessData data = process_data();
	helsim::Dispatcher queue{helsim::QueueConfig{2, 2, 4096}};
	if (data.file_table) {
		protocol::FileRequest head{{protocol::kFileRead, 0}, 0, 0, sizeof abandoned, -1};
		submit(queue, data.file_table[fd], 1,
				offer(send_buffer(&head, sizeof head), imbue_credentials(), recv_inline(),
						recv_buffer(abandoned, sizeof abandoned)));
	} else {
		protocol::Request head{{protocol::kFdRead, 0}, fd, sizeof abandoned, -1, 0};
		submit(queue, data.posix_lane, 1,
				offer(send_buffer(&head, sizeof head), imbue_credentials(), recv_inline(),
						recv_buffer(abandoned, sizeof abandoned)));
	}
	queue.flush();
	return 0; // its fds close: the parent's sync pipe sees end of file
}

int survivor(int, char **) {
	int data[2], sync[2];
	EXPECT_EQ(px::pipe(data), 0);
	EXPECT_EQ(px::pipe(sync), 0);
	EXPECT_GT(spawn("/bin/abandon", {"abandon", std::to_string(data[0]), std::to_string(sync[0])}),
			0);
	EXPECT_EQ(px::close(sync[1]), 0);
	char byte;
	EXPECT_EQ(px::read(sync[0], &byte, 1), 0); // the child is dead, its read still in flight
	std::string sent;
	for (int i = 0; i < 500; ++i)
		sent += std::to_string(i) + ",";
	EXPECT_EQ(write_all(data[1], sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
	EXPECT_EQ(px::close(data[1]), 0);
	std::string got(sent.size() + 10, '\0');
	EXPECT_EQ(read_all(data[0], got.data(), got.size()), static_cast<ssize_t>(sent.size()));
	got.resize(sent.size());
	EXPECT_EQ(got, sent);
	EXPECT_EQ(std::string_view(abandoned, sizeof abandoned), std::string(sizeof abandoned, '\0'));
	return 0;
}

TEST(PosixPipe, AReaderThatDiesMidReadLosesNothing) {
	Programs programs{{"/bin/survivor", survivor}, {"/bin/abandon", abandoning_reader}};
	both_ways(programs);
	in_threads(programs);
	in_threads(programs, without_file_table());
}

} // namespace
