// test/posix/file_test.cpp tests src/posix/file.cpp and the file table of
// src/posix/requests.cpp: fd numbering, dup/dup2/dup3/fcntl, EBADF and EMFILE, readv/writev,
// bad user pointers, fstat of every kind of file, and the file table's fast path (reads and
// writes that never reach the POSIX server).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include <helsim/posix.hpp>

#include "file_support.hpp"

namespace px = helsim::posix;
using namespace helsim::posix::file_test;

namespace {

void *const kBadPointer = reinterpret_cast<void *>(0x10);

TEST(PosixFile, FdsAreTheLowestFree) {
	both_ways([](int, char **) {
		EXPECT_EQ(px::open("/dev/null", O_RDONLY), 3);
		EXPECT_EQ(px::open("/dev/null", O_RDONLY), 4);
		EXPECT_EQ(px::open("/dev/null", O_RDONLY), 5);
		EXPECT_EQ(px::close(4), 0);
		EXPECT_EQ(px::open("/dev/null", O_RDONLY), 4);
		EXPECT_EQ(px::close(0), 0);
		EXPECT_EQ(px::dup(5), 0);
		EXPECT_EQ(px::dup(5), 6);
		EXPECT_EQ(px::close(1), 0);
		EXPECT_EQ(px::close(3), 0);
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		EXPECT_EQ(fds[0], 1);
		EXPECT_EQ(fds[1], 3);
		EXPECT_EQ(px::close(3), 0);
		EXPECT_EQ(px::close(3), -EBADF);
		return 0;
	});
}

TEST(PosixFile, DupSharesTheDescriptionButNotFdCloexec) {
	both_ways([](int, char **) {
		int fd = px::open("/tmp/d", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		EXPECT_EQ(px::fcntl(fd, F_GETFD), FD_CLOEXEC);
		int copy = px::dup(fd);
		EXPECT_EQ(px::fcntl(copy, F_GETFD), 0);
		EXPECT_EQ(px::write(fd, "abc", 3), 3);
		EXPECT_EQ(px::lseek(copy, 0, SEEK_CUR), 3); // one position
		EXPECT_EQ(px::write(copy, "def", 3), 3);
		EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), 6);
		EXPECT_EQ(px::fcntl(copy, F_SETFL, O_NONBLOCK), 0); // one set of status flags
		EXPECT_EQ(px::fcntl(fd, F_GETFL), O_RDWR | O_NONBLOCK);
		EXPECT_EQ(px::close(fd), 0); // the description lives on in the copy
		char buf[8] = {};
		EXPECT_EQ(px::pread(copy, buf, sizeof buf, 0), 6);
		EXPECT_STREQ(buf, "abcdef");
		EXPECT_EQ(px::close(copy), 0);
		EXPECT_EQ(px::unlink("/tmp/d"), 0);
		return 0;
	});
}

TEST(PosixFile, Dup2AndDup3) {
	both_ways([](int, char **) {
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);              // 3, 4
		int fd = px::open("/dev/zero", O_RDONLY); // 5
		EXPECT_EQ(px::dup2(fd, fd), fd);
		EXPECT_EQ(px::dup2(9, 9), -EBADF);
		EXPECT_EQ(px::dup2(9, 10), -EBADF);
		EXPECT_EQ(px::dup2(fd, 511), 511);
		EXPECT_EQ(px::dup2(fd, 512), -EBADF);
		EXPECT_EQ(px::dup2(fd, -1), -EBADF);
		EXPECT_EQ(px::dup3(fd, fd, 0), -EINVAL);
		EXPECT_EQ(px::dup3(fd, 7, O_NONBLOCK), -EINVAL);
		EXPECT_EQ(px::dup3(fd, 512, 0), -EBADF);
		EXPECT_EQ(px::dup3(9, 9, 0), -EINVAL); // the arguments first, then the fd
		EXPECT_EQ(px::dup3(9, 10, O_NONBLOCK), -EINVAL);
		EXPECT_EQ(px::dup3(9, 10, O_CLOEXEC), -EBADF);
		EXPECT_EQ(px::dup3(fd, 7, O_CLOEXEC), 7);
		EXPECT_EQ(px::fcntl(7, F_GETFD), FD_CLOEXEC);
		EXPECT_EQ(px::dup2(fd, 7), 7); // dup2 over it: FD_CLOEXEC is cleared
		EXPECT_EQ(px::fcntl(7, F_GETFD), 0);
		EXPECT_EQ(px::fcntl(6, F_GETFD), -EBADF); // skipped numbers stay free
		// dup2 onto the pipe's write end closes it: the reader sees end of file.
		EXPECT_EQ(px::dup2(fd, fds[1]), fds[1]);
		char buf[4];
		EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 0);
		EXPECT_EQ(px::read(fds[1], buf, sizeof buf), 4); // now /dev/zero
		for (int f : {3, 4, 5, 7, 511})
			EXPECT_EQ(px::close(f), 0);
		return 0;
	});
}

TEST(PosixFile, Fcntl) {
	both_ways([](int, char **) {
		int fd = px::open("/tmp/fc", O_RDWR | O_CREAT, 0600);
		EXPECT_EQ(px::fcntl(fd, F_GETFD), 0);
		EXPECT_EQ(px::fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
		EXPECT_EQ(px::fcntl(fd, F_GETFD), FD_CLOEXEC);
		EXPECT_EQ(px::fcntl(fd, F_SETFD, 0), 0);
		EXPECT_EQ(px::fcntl(fd, F_GETFD), 0);
		EXPECT_EQ(px::fcntl(fd, F_GETFL), O_RDWR);
		// F_SETFL changes O_APPEND and O_NONBLOCK, never the access mode.
		EXPECT_EQ(px::fcntl(fd, F_SETFL, O_WRONLY | O_APPEND | O_NONBLOCK), 0);
		EXPECT_EQ(px::fcntl(fd, F_GETFL), O_RDWR | O_APPEND | O_NONBLOCK);
		EXPECT_EQ(px::fcntl(fd, F_SETFL, 0), 0);
		EXPECT_EQ(px::fcntl(fd, F_GETFL), O_RDWR);
		EXPECT_EQ(px::fcntl(fd, F_DUPFD, 10), 10);
		EXPECT_EQ(px::fcntl(fd, F_DUPFD, 10), 11);
		EXPECT_EQ(px::fcntl(10, F_GETFD), 0);
		EXPECT_EQ(px::fcntl(fd, F_DUPFD, 0), 4); // the lowest free at or above 0
		EXPECT_EQ(px::fcntl(fd, F_DUPFD_CLOEXEC, 10), 12);
		EXPECT_EQ(px::fcntl(12, F_GETFD), FD_CLOEXEC);
		EXPECT_EQ(px::fcntl(fd, F_DUPFD, 511), 511);
		EXPECT_EQ(px::fcntl(fd, F_DUPFD, 511), -EMFILE);
		EXPECT_EQ(px::fcntl(fd, F_DUPFD, 512), -EINVAL);
		EXPECT_EQ(px::fcntl(fd, F_DUPFD, -1), -EINVAL);
		EXPECT_EQ(px::fcntl(fd, 9999), -EINVAL);
		EXPECT_EQ(px::write(12, "x", 1), 1); // the dups share the description
		EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), 1);
		for (int f : {fd, 4, 10, 11, 12, 511})
			EXPECT_EQ(px::close(f), 0);
		EXPECT_EQ(px::unlink("/tmp/fc"), 0);
		return 0;
	});
}

TEST(PosixFile, EveryCallRejectsBadFds) {
	both_ways([](int, char **) {
		EXPECT_EQ(px::close(3), -EBADF);
		int closed = px::open("/dev/zero", O_RDWR);
		EXPECT_EQ(px::close(closed), 0);
		char buf[4] = {};
		struct iovec iov[2] = {{buf, 2}, {buf + 2, 2}};
		struct stat st {};
		for (int fd : {closed, -1, 512, 1000, INT_MIN, INT_MAX}) {
			SCOPED_TRACE("fd " + std::to_string(fd));
			EXPECT_EQ(px::read(fd, buf, sizeof buf), -EBADF);
			EXPECT_EQ(px::write(fd, buf, sizeof buf), -EBADF);
			EXPECT_EQ(px::pread(fd, buf, sizeof buf, 0), -EBADF);
			EXPECT_EQ(px::pwrite(fd, buf, sizeof buf, 0), -EBADF);
			EXPECT_EQ(px::readv(fd, iov, 1), -EBADF);
			EXPECT_EQ(px::readv(fd, iov, 2), -EBADF);
			EXPECT_EQ(px::writev(fd, iov, 2), -EBADF);
			EXPECT_EQ(px::lseek(fd, 0, SEEK_SET), -EBADF);
			EXPECT_EQ(px::close(fd), -EBADF);
			EXPECT_EQ(px::dup(fd), -EBADF);
			EXPECT_EQ(px::dup2(fd, 9), -EBADF);
			EXPECT_EQ(px::dup3(fd, 9, 0), -EBADF);
			EXPECT_EQ(px::fcntl(fd, F_GETFD), -EBADF);
			EXPECT_EQ(px::fcntl(fd, F_DUPFD, 0), -EBADF);
			EXPECT_EQ(px::fstat(fd, &st), -EBADF);
		}
		// The server is fine, and the fds fill from 3 again.
		EXPECT_EQ(px::open("/dev/zero", O_RDWR), 3);
		EXPECT_EQ(px::read(3, buf, sizeof buf), 4);
		return 0;
	});
}

// 512 fds, and not one more: every call that makes an fd fails with EMFILE, and nothing of
// the failed calls stays behind.
TEST(PosixFile, EmfileOnceEveryFdIsOpen) {
	both_ways([](int, char **) {
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0); // 3, 4
		for (int fd = 5; fd < 511; ++fd)
			EXPECT_EQ(px::dup(fd % 2 ? 3 : 4), fd);
		// One left: a pipe needs two.
		EXPECT_EQ(px::pipe(fds), -EMFILE);
		EXPECT_EQ(px::open("/dev/null", O_RDONLY), 511);
		EXPECT_EQ(px::open("/dev/null", O_RDONLY), -EMFILE);
		EXPECT_EQ(px::open("/tmp/never", O_RDWR | O_CREAT, 0600), -EMFILE);
		EXPECT_EQ(px::unlink("/tmp/never"), -ENOENT); // as Linux: no fd, no file
		EXPECT_EQ(px::dup(3), -EMFILE);
		EXPECT_EQ(px::fcntl(3, F_DUPFD, 0), -EMFILE);
		EXPECT_EQ(px::pipe(fds), -EMFILE);
		EXPECT_EQ(px::dup2(4, 511), 511); // replacing one still works
		EXPECT_EQ(px::close(511), 0);
		EXPECT_EQ(px::pipe(fds), -EMFILE);
		EXPECT_EQ(px::dup(3), 511);
		// Every write end is the same description: the reader sees end of file only when
		// the last of its 254 fds closes.
		for (int fd = 4; fd < 510; fd += 2)
			EXPECT_EQ(px::close(fd), 0);
		EXPECT_EQ(px::fcntl(3, F_SETFL, O_NONBLOCK), 0);
		char byte;
		EXPECT_EQ(px::read(3, &byte, 1), -EAGAIN);
		EXPECT_EQ(px::close(510), 0);
		EXPECT_EQ(px::read(3, &byte, 1), 0);
		return 0; // exits with its fds open
	});
}

TEST(PosixFile, ReadvAndWritev) {
	both_ways([](int, char **) {
		int fd = px::open("/tmp/v", O_RDWR | O_CREAT, 0600);
		char a[] = "one", b[] = "", c[] = "three";
		struct iovec out[3] = {{a, 3}, {b, 0}, {c, 5}};
		EXPECT_EQ(px::writev(fd, out, 3), 8);
		EXPECT_EQ(px::writev(fd, out, 0), 0);
		EXPECT_EQ(px::lseek(fd, 0, SEEK_SET), 0);
		char x[2] = {}, y[4] = {}, z[8] = {};
		struct iovec in[3] = {{x, 2}, {y, 4}, {z, 8}};
		EXPECT_EQ(px::readv(fd, in, 3), 8);
		EXPECT_EQ(std::string(x, 2), "on");
		EXPECT_EQ(std::string(y, 4), "ethr");
		EXPECT_EQ(std::string(z, 2), "ee");
		EXPECT_EQ(px::readv(fd, in, 3), 0);
		EXPECT_EQ(px::readv(fd, in, -1), -EINVAL);
		EXPECT_EQ(px::writev(fd, out, -1), -EINVAL);
		EXPECT_EQ(px::readv(fd, in, IOV_MAX + 1), -EINVAL);
		EXPECT_EQ(px::writev(fd, nullptr, 1), -EFAULT);
		// A bad base: nothing is written.
		struct iovec bad[2] = {{a, 3}, {kBadPointer, 3}};
		EXPECT_EQ(px::writev(fd, bad, 2), -EFAULT);
		EXPECT_EQ(px::lseek(fd, 0, SEEK_END), 8);
		EXPECT_EQ(px::lseek(fd, 0, SEEK_SET), 0);
		struct iovec bad_in[2] = {{x, 2}, {kBadPointer, 3}};
		EXPECT_EQ(px::readv(fd, bad_in, 1), 2);
		EXPECT_EQ(px::readv(fd, bad_in + 1, 1), -EFAULT);
		// Linux's partial count: the bytes that reached memory before the bad buffer.
		EXPECT_EQ(px::readv(fd, bad_in, 2), 2);
		// A pipe: readv is one read, however many buffers.
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		EXPECT_EQ(px::writev(fds[1], out, 3), 8);
		EXPECT_EQ(px::write(fds[1], "!", 1), 1);
		EXPECT_EQ(px::readv(fds[0], in, 3), 9);
		EXPECT_EQ(std::string(z, 3), "ee!");
		for (int f : {fd, fds[0], fds[1]})
			EXPECT_EQ(px::close(f), 0);
		EXPECT_EQ(px::unlink("/tmp/v"), 0);
		return 0;
	});
}

// A buffer the process does not map is -EFAULT for the call, not a fault of the process or
// of the server. A read of more than 4 KiB that faults loses nothing: the server's send of
// the data is streamed from its memory, so it hears of the fault and gives the bytes back. (A
// shorter send is buffered by the kernel, and its sender never hears of the receiver's
// fault: those bytes are gone, in Managarm too.)
constexpr std::size_t kLongRead = 6000;

int bad_buffers(int, char **) {
	std::string data(kLongRead, '\0');
	for (std::size_t i = 0; i < data.size(); ++i)
		data[i] = static_cast<char>(pattern_byte(i));
	std::string buf(kLongRead, '\0');

	int fds[2];
	EXPECT_EQ(px::pipe2(fds, O_NONBLOCK), 0);
	EXPECT_EQ(px::write(fds[1], kBadPointer, 3), -EFAULT);
	EXPECT_EQ(px::write(fds[1], kBadPointer, 10000), -EFAULT);
	EXPECT_EQ(px::read(fds[0], buf.data(), buf.size()), -EAGAIN); // nothing went in
	EXPECT_EQ(px::write(fds[1], data.data(), data.size()), static_cast<ssize_t>(kLongRead));
	EXPECT_EQ(px::read(fds[0], kBadPointer, kLongRead), -EFAULT);
	EXPECT_EQ(px::read(fds[0], buf.data(), buf.size()), static_cast<ssize_t>(kLongRead));
	EXPECT_TRUE(buf == data); // the pipe kept it, in order
	EXPECT_EQ(px::write(fds[1], "abc", 3), 3);
	EXPECT_EQ(px::read(fds[0], kBadPointer, 3), -EFAULT);
	struct stat *bad_stat = static_cast<struct stat *>(kBadPointer);
	EXPECT_EQ(px::fstat(fds[0], bad_stat), -EFAULT);

	int fd = px::open("/tmp/bad", O_RDWR | O_CREAT, 0600);
	EXPECT_EQ(px::write(fd, data.data(), data.size()), static_cast<ssize_t>(kLongRead));
	EXPECT_EQ(px::write(fd, kBadPointer, 5), -EFAULT);
	EXPECT_EQ(px::pwrite(fd, kBadPointer, 5000, 0), -EFAULT);
	EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), static_cast<off_t>(kLongRead));
	EXPECT_EQ(px::lseek(fd, 0, SEEK_SET), 0);
	EXPECT_EQ(px::read(fd, kBadPointer, kLongRead), -EFAULT);
	EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), 0); // the failed read gave its bytes back
	EXPECT_EQ(px::pread(fd, kBadPointer, kLongRead, 0), -EFAULT);
	EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), 0); // and a failed pread never took any
	EXPECT_EQ(px::read(fd, buf.data(), buf.size()), static_cast<ssize_t>(kLongRead));
	EXPECT_TRUE(buf == data);
	EXPECT_EQ(px::pread(fd, kBadPointer, 5, 0), -EFAULT);
	EXPECT_EQ(px::unlink("/tmp/bad"), 0);
	EXPECT_EQ(px::getpid(), 1); // the server still answers
	return 0;
}

TEST(PosixFile, BadBuffersAreEfault) {
	both_ways(bad_buffers);
	in_threads(bad_buffers);
	in_threads(bad_buffers, without_file_table());
}

TEST(PosixFile, FstatOfEveryKind) {
	both_ways([](int, char **) {
		struct stat st {};
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		EXPECT_EQ(px::fstat(fds[0], &st), 0);
		EXPECT_TRUE(S_ISFIFO(st.st_mode));
		int file = px::open("/tmp/kind", O_RDWR | O_CREAT, 0640);
		EXPECT_EQ(px::write(file, "12345", 5), 5);
		EXPECT_EQ(px::fstat(file, &st), 0);
		EXPECT_TRUE(S_ISREG(st.st_mode));
		EXPECT_EQ(st.st_size, 5);
		EXPECT_EQ(st.st_mode & 07777, 0640u);
		int null = px::open("/dev/null", O_WRONLY);
		EXPECT_EQ(px::fstat(null, &st), 0);
		EXPECT_TRUE(S_ISCHR(st.st_mode));
		int dir = px::open("/tmp", O_RDONLY | O_DIRECTORY);
		EXPECT_GE(dir, 0);
		EXPECT_EQ(px::fstat(dir, &st), 0);
		EXPECT_TRUE(S_ISDIR(st.st_mode));
		EXPECT_GE(st.st_nlink, 2u);
		char buf[4];
		EXPECT_EQ(px::read(dir, buf, sizeof buf), -EISDIR);
		EXPECT_EQ(px::write(dir, buf, sizeof buf), -EBADF); // opened for reading
		EXPECT_EQ(px::lseek(dir, 0, SEEK_SET), 0);
		EXPECT_EQ(px::lseek(dir, 0, SEEK_CUR), 0);
		EXPECT_EQ(px::lseek(dir, 5, SEEK_CUR), 5); // Linux keeps a position for readdir
		EXPECT_EQ(px::lseek(dir, -6, SEEK_CUR), -EINVAL);
		EXPECT_EQ(px::lseek(dir, 0, SEEK_END), -EINVAL);
		EXPECT_EQ(px::lseek(dir, 0, SEEK_CUR), 5);
		EXPECT_EQ(px::fstat(file, nullptr), -EFAULT);
		for (int f : {fds[0], fds[1], file, null, dir})
			EXPECT_EQ(px::close(f), 0);
		EXPECT_EQ(px::unlink("/tmp/kind"), 0);
		return 0;
	});
}

// The requirement: with the file table, reads, writes and seeks go to the file's
// lane and never to the POSIX server; without it, each is one forwarded request more, and
// the program sees the same results.
constexpr int kFastRounds = 40;
constexpr std::uint64_t kFastOps = 4 * kFastRounds + 1;

struct FastPathRun {
	std::string contents;
	px::Counters delta;
};

px::Main fast_path_program(FastPathRun &run) {
	return [&run](int, char **) {
		int file = px::open("/tmp/fast", O_RDWR | O_CREAT | O_TRUNC, 0600);
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		px::Counters before = px::counters();
		for (int i = 0; i < kFastRounds; ++i) {
			char c = static_cast<char>('a' + i % 26), echoed = 0;
			EXPECT_EQ(px::write(fds[1], &c, 1), 1);
			EXPECT_EQ(px::read(fds[0], &echoed, 1), 1);
			EXPECT_EQ(px::write(file, &echoed, 1), 1);
			EXPECT_EQ(px::lseek(file, 0, SEEK_CUR), i + 1);
		}
		std::string contents(kFastRounds, '\0');
		EXPECT_EQ(px::pread(file, contents.data(), contents.size(), 0), kFastRounds);
		px::Counters after = px::counters();
		run.contents = contents;
		run.delta.server_requests = after.server_requests - before.server_requests;
		run.delta.passthrough_requests = after.passthrough_requests - before.passthrough_requests;
		run.delta.forwarded_requests = after.forwarded_requests - before.forwarded_requests;
		run.delta.client_submissions = after.client_submissions - before.client_submissions;
		return 0;
	};
}

void expect_fast_path(helsim::Machine &fast_machine, helsim::Machine &slow_machine) {
	FastPathRun fast, slow;
	run_program(fast_machine, fast_path_program(fast));
	run_program(slow_machine, fast_path_program(slow), without_file_table());
	EXPECT_EQ(fast.contents.size(), static_cast<std::size_t>(kFastRounds));
	EXPECT_EQ(fast.contents, slow.contents);
	EXPECT_EQ(fast.delta.server_requests, 0u);
	EXPECT_EQ(fast.delta.forwarded_requests, 0u);
	EXPECT_EQ(fast.delta.passthrough_requests, kFastOps);
	EXPECT_EQ(fast.delta.client_submissions, kFastOps);
	EXPECT_EQ(slow.delta.server_requests, kFastOps);
	EXPECT_EQ(slow.delta.forwarded_requests, kFastOps);
	EXPECT_EQ(slow.delta.passthrough_requests, kFastOps); // the server's hop to the file
	EXPECT_EQ(slow.delta.client_submissions, kFastOps);
}

TEST(PosixFile, TheFileTableKeepsFileRequestsAwayFromTheServer) {
	helsim::testing::for_each_seed([](std::uint64_t seed) {
		helsim::Machine fast{seeded(seed)};
		helsim::Machine slow{seeded(seed)};
		expect_fast_path(fast, slow);
	});
	helsim::Machine fast, slow;
	expect_fast_path(fast, slow);
}

// Processes that share descriptions dup and close them concurrently: every byte arrives,
// and end of file comes once the last fd of the write end is gone.
int dup_close_child(int, char **argv) {
	int out = std::atoi(argv[1]);
	EXPECT_EQ(px::close(out - 1), 0);
	for (int i = 0; i < 100; ++i) {
		int copy = px::dup(out);
		EXPECT_EQ(copy, 3); // its copy of the read end was closed
		EXPECT_EQ(px::write(copy, "x", 1), 1);
		EXPECT_EQ(px::close(copy), 0);
	}
	return 0;
}

int dup_close_parent(int, char **) {
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	for (int i = 0; i < 3; ++i)
		EXPECT_GT(spawn("/bin/child", {"child", std::to_string(fds[1])}), 0);
	EXPECT_EQ(px::close(fds[1]), 0);
	char buf[64];
	std::size_t total = 0;
	ssize_t n;
	while ((n = px::read(fds[0], buf, sizeof buf)) > 0)
		total += static_cast<std::size_t>(n);
	EXPECT_EQ(n, 0);
	EXPECT_EQ(total, 300u);
	return 0;
}

TEST(PosixFile, ConcurrentDupAndCloseStress) {
	Programs programs{{"/bin/parent", dup_close_parent}, {"/bin/child", dup_close_child}};
	run_each_seed(programs, quiet(), 10);
	in_threads(programs);
	in_threads(programs, without_file_table());
}

} // namespace
