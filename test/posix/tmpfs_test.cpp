// test/posix/tmpfs_test.cpp tests src/posix/tmpfs.cpp: open's flags, path resolution and its
// errors, regular files (positions, pread/pwrite, unlink while open), the devices, and files
// that outlive a run.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include <helsim/posix.hpp>

#include "file_support.hpp"

namespace px = helsim::posix;
using namespace helsim::posix::file_test;

namespace {

ino_t inode_of(int fd) {
	struct stat st {};
	EXPECT_EQ(px::fstat(fd, &st), 0);
	return st.st_ino;
}

off_t size_of(int fd) {
	struct stat st {};
	EXPECT_EQ(px::fstat(fd, &st), 0);
	return st.st_size;
}

std::string read_string(int fd, std::size_t max = 256) {
	std::string out(max, '\0');
	ssize_t n = px::read(fd, out.data(), out.size());
	EXPECT_GE(n, 0);
	out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
	return out;
}

TEST(PosixTmpfs, CreateExclusiveAndTruncate) {
	both_ways([](int, char **) {
		EXPECT_EQ(px::open("/tmp/f", O_RDONLY), -ENOENT);
		int fd = px::open("/tmp/f", O_RDWR | O_CREAT | O_EXCL, 0640);
		EXPECT_EQ(fd, 3);
		struct stat st {};
		EXPECT_EQ(px::fstat(fd, &st), 0);
		EXPECT_TRUE(S_ISREG(st.st_mode));
		EXPECT_EQ(st.st_mode & 07777, 0640u);
		EXPECT_EQ(st.st_nlink, 1u);
		EXPECT_EQ(st.st_size, 0);
		EXPECT_EQ(px::write(fd, "hello", 5), 5);
		EXPECT_EQ(px::open("/tmp/f", O_RDWR | O_CREAT | O_EXCL, 0640), -EEXIST);
		// O_CREAT alone opens what is there, same inode, data kept.
		int again = px::open("/tmp/f", O_RDONLY | O_CREAT, 0600);
		EXPECT_EQ(again, 4);
		EXPECT_EQ(inode_of(again), st.st_ino);
		EXPECT_EQ(read_string(again), "hello");
		// O_TRUNC empties it for every description.
		int trunc = px::open("/tmp/f", O_WRONLY | O_TRUNC);
		EXPECT_EQ(trunc, 5);
		EXPECT_EQ(size_of(fd), 0);
		EXPECT_EQ(read_string(again), "");
		for (int f : {fd, again, trunc})
			EXPECT_EQ(px::close(f), 0);
		EXPECT_EQ(px::unlink("/tmp/f"), 0);
		return 0;
	});
}

TEST(PosixTmpfs, AppendWritesAtTheEndWhereverThePositionIs) {
	both_ways([](int, char **) {
		int fd = px::open("/tmp/log", O_RDWR | O_CREAT, 0600);
		EXPECT_EQ(px::write(fd, "abc", 3), 3);
		EXPECT_EQ(px::close(fd), 0);
		int log = px::open("/tmp/log", O_RDWR | O_APPEND);
		EXPECT_EQ(px::fcntl(log, F_GETFL) & (O_APPEND | O_ACCMODE), O_APPEND | O_RDWR);
		EXPECT_EQ(px::lseek(log, 0, SEEK_SET), 0);
		EXPECT_EQ(px::write(log, "def", 3), 3);
		EXPECT_EQ(px::lseek(log, 0, SEEK_CUR), 6);
		EXPECT_EQ(px::lseek(log, 1, SEEK_SET), 1);
		EXPECT_EQ(read_string(log, 2), "bc"); // reads still use the position
		// F_SETFL turns O_APPEND off: now the write lands at the position.
		EXPECT_EQ(px::fcntl(log, F_SETFL, 0), 0);
		EXPECT_EQ(px::lseek(log, 0, SEEK_SET), 0);
		EXPECT_EQ(px::write(log, "X", 1), 1);
		char buf[16] = {};
		EXPECT_EQ(px::pread(log, buf, sizeof buf, 0), 6);
		EXPECT_STREQ(buf, "Xbcdef");
		EXPECT_EQ(px::close(log), 0);
		return 0;
	});
}

TEST(PosixTmpfs, PathsResolveDotDotDotAndRepeatedSlashes) {
	both_ways([](int, char **) {
		int fd = px::open("/tmp/a", O_RDWR | O_CREAT, 0600);
		EXPECT_GE(fd, 0);
		ino_t ino = inode_of(fd);
		for (const char *path : {"/tmp/./a", "//tmp//a", "/tmp/../tmp/a", "/../../tmp/a",
					 "/dev/../tmp/./a", "/./tmp/a"}) {
			int other = px::open(path, O_RDONLY);
			EXPECT_GE(other, 0) << path;
			EXPECT_EQ(inode_of(other), ino) << path;
			EXPECT_EQ(px::close(other), 0);
		}
		int root = px::open("/..", O_RDONLY | O_DIRECTORY);
		EXPECT_GE(root, 0);
		int root2 = px::open("/", O_RDONLY);
		EXPECT_EQ(inode_of(root), inode_of(root2));
		EXPECT_EQ(px::close(root), 0);
		EXPECT_EQ(px::close(root2), 0);
		int tmp = px::open("/tmp/", O_RDONLY);
		EXPECT_GE(tmp, 0);
		EXPECT_EQ(px::close(tmp), 0);
		tmp = px::open("/tmp/.", O_RDONLY | O_DIRECTORY);
		EXPECT_GE(tmp, 0);
		EXPECT_EQ(px::close(tmp), 0);
		// ".." leaves what was walked into, so that must exist and be a directory (Linux
		// resolves it while walking, not by editing the string).
		EXPECT_EQ(px::open("/tmp/missing/../a", O_RDONLY), -ENOENT);
		EXPECT_EQ(px::open("/tmp/missing/../new", O_RDWR | O_CREAT, 0600), -ENOENT);
		EXPECT_EQ(px::open("/tmp/a/../a", O_RDONLY), -ENOTDIR);
		EXPECT_EQ(px::open("/tmp/a/.", O_RDONLY), -ENOTDIR);
		EXPECT_EQ(px::open("/tmp/a/..", O_RDONLY), -ENOTDIR);
		EXPECT_EQ(px::open("/tmp/new", O_RDONLY), -ENOENT);
		EXPECT_EQ(px::unlink("/tmp/missing/../a"), -ENOENT);
		EXPECT_EQ(px::unlink("/tmp/a/../a"), -ENOTDIR);
		EXPECT_EQ(px::open("/tmp/missing/..", O_RDWR | O_CREAT, 0600), -ENOENT);
		EXPECT_EQ(px::unlink("/tmp/missing/.."), -ENOENT);
		EXPECT_EQ(px::unlink("/tmp/a/.."), -ENOTDIR);
		EXPECT_EQ(px::unlink("/tmp/.."), -EISDIR);
		EXPECT_EQ(px::unlink("/tmp/."), -EISDIR);
		EXPECT_EQ(px::unlink("/tmp/./a"), 0);
		EXPECT_EQ(px::open("/tmp/a", O_RDONLY), -ENOENT);
		EXPECT_EQ(px::close(fd), 0);
		return 0;
	});
}

TEST(PosixTmpfs, PathErrors) {
	both_ways([](int, char **) {
		int fd = px::open("/tmp/file", O_RDWR | O_CREAT, 0600);
		EXPECT_EQ(px::open("/tmp/missing", O_RDONLY), -ENOENT);
		EXPECT_EQ(px::open("/missing/x", O_RDWR | O_CREAT, 0600), -ENOENT);
		EXPECT_EQ(px::open("/tmp/file/x", O_RDONLY), -ENOTDIR);
		EXPECT_EQ(px::open("/tmp/file/x", O_RDWR | O_CREAT, 0600), -ENOTDIR);
		EXPECT_EQ(px::open("/tmp/file/", O_RDONLY), -ENOTDIR);
		EXPECT_EQ(px::open("/tmp/file", O_RDONLY | O_DIRECTORY), -ENOTDIR);
		EXPECT_EQ(px::open("/tmp/new/", O_RDWR | O_CREAT, 0600), -EISDIR);
		EXPECT_EQ(px::open("/tmp", O_WRONLY), -EISDIR);
		EXPECT_EQ(px::open("/tmp", O_RDWR), -EISDIR);
		EXPECT_EQ(px::open("/tmp", O_RDONLY | O_CREAT, 0600), -EISDIR);
		EXPECT_EQ(px::open("/", O_RDWR | O_CREAT, 0600), -EISDIR);
		EXPECT_EQ(px::open("tmp/file", O_RDONLY), -EINVAL); // no working directory
		EXPECT_EQ(px::open("", O_RDONLY), -ENOENT);
		EXPECT_EQ(px::open(nullptr, O_RDONLY), -EFAULT);
		EXPECT_EQ(px::open("/tmp/file", O_ACCMODE), -EINVAL);
		std::string long_name = "/tmp/" + std::string(NAME_MAX + 1, 'n');
		EXPECT_EQ(px::open(long_name.c_str(), O_RDWR | O_CREAT, 0600), -ENAMETOOLONG);
		std::string longest_name = "/tmp/" + std::string(NAME_MAX, 'n');
		int longest = px::open(longest_name.c_str(), O_RDWR | O_CREAT, 0600);
		EXPECT_GE(longest, 0);
		std::string long_path = "/tmp";
		while (long_path.size() < PATH_MAX)
			long_path += "/.";
		EXPECT_EQ(px::open(long_path.c_str(), O_RDONLY), -ENAMETOOLONG);
		// Nothing was created by the failures.
		EXPECT_EQ(px::open("/tmp/new", O_RDONLY), -ENOENT);
		EXPECT_EQ(px::unlink("/tmp/new"), -ENOENT);
		EXPECT_EQ(px::unlink("/tmp"), -EISDIR);
		EXPECT_EQ(px::unlink("tmp/file"), -EINVAL);
		EXPECT_EQ(px::unlink("/tmp/file/x"), -ENOTDIR);
		EXPECT_EQ(px::unlink(longest_name.c_str()), 0);
		EXPECT_EQ(px::close(longest), 0);
		EXPECT_EQ(px::close(fd), 0);
		return 0;
	});
}

TEST(PosixTmpfs, UnlinkedOpenFileStaysReadable) {
	both_ways([](int, char **) {
		int fd = px::open("/tmp/gone", O_RDWR | O_CREAT, 0600);
		EXPECT_EQ(px::write(fd, "still here", 10), 10);
		ino_t ino = inode_of(fd);
		EXPECT_EQ(px::unlink("/tmp/gone"), 0);
		EXPECT_EQ(px::unlink("/tmp/gone"), -ENOENT);
		EXPECT_EQ(px::open("/tmp/gone", O_RDONLY), -ENOENT);
		struct stat st {};
		EXPECT_EQ(px::fstat(fd, &st), 0);
		EXPECT_EQ(st.st_nlink, 0u);
		EXPECT_EQ(st.st_size, 10);
		char buf[16] = {};
		EXPECT_EQ(px::pread(fd, buf, sizeof buf, 0), 10);
		EXPECT_STREQ(buf, "still here");
		EXPECT_EQ(px::write(fd, "!", 1), 1); // and writable
		EXPECT_EQ(size_of(fd), 11);
		// A new file of the same name is another inode.
		int fresh = px::open("/tmp/gone", O_RDWR | O_CREAT | O_EXCL, 0600);
		EXPECT_GE(fresh, 0);
		EXPECT_NE(inode_of(fresh), ino);
		EXPECT_EQ(size_of(fresh), 0);
		EXPECT_EQ(px::close(fresh), 0);
		EXPECT_EQ(px::close(fd), 0);
		EXPECT_EQ(px::unlink("/tmp/gone"), 0);
		return 0;
	});
}

TEST(PosixTmpfs, LseekSetCurEndAndErrors) {
	both_ways([](int, char **) {
		int fd = px::open("/tmp/seek", O_RDWR | O_CREAT, 0600);
		EXPECT_EQ(px::write(fd, "0123456789", 10), 10);
		EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), 10);
		EXPECT_EQ(px::lseek(fd, 2, SEEK_SET), 2);
		EXPECT_EQ(px::lseek(fd, 3, SEEK_CUR), 5);
		EXPECT_EQ(read_string(fd, 2), "56");
		EXPECT_EQ(px::lseek(fd, -1, SEEK_CUR), 6);
		EXPECT_EQ(px::lseek(fd, -3, SEEK_END), 7);
		EXPECT_EQ(read_string(fd), "789");
		EXPECT_EQ(px::lseek(fd, -1, SEEK_SET), -EINVAL);
		EXPECT_EQ(px::lseek(fd, -11, SEEK_END), -EINVAL);
		EXPECT_EQ(px::lseek(fd, -100, SEEK_CUR), -EINVAL);
		EXPECT_EQ(px::lseek(fd, 0, 3), -EINVAL); // SEEK_DATA: not supported
		EXPECT_EQ(px::lseek(fd, 0, -1), -EINVAL);
		EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), 10); // the failures moved nothing
		// Past the end: reads see nothing, a write leaves a hole of zeros.
		EXPECT_EQ(px::lseek(fd, 5, SEEK_END), 15);
		EXPECT_EQ(read_string(fd), "");
		EXPECT_EQ(px::write(fd, "x", 1), 1);
		EXPECT_EQ(size_of(fd), 16);
		char buf[16];
		EXPECT_EQ(px::pread(fd, buf, sizeof buf, 0), 16);
		EXPECT_EQ(std::string(buf, 16), std::string("0123456789\0\0\0\0\0x", 16));
		// Far away: nothing to read, and no file may grow that big.
		EXPECT_EQ(px::lseek(fd, std::int64_t{1} << 62, SEEK_SET), std::int64_t{1} << 62);
		EXPECT_EQ(read_string(fd), "");
		EXPECT_EQ(px::write(fd, "x", 1), -EFBIG);
		EXPECT_EQ(px::pread(fd, buf, sizeof buf, std::int64_t{1} << 62), 0);
		EXPECT_EQ(px::pwrite(fd, "x", 1, std::int64_t{1} << 62), -EFBIG);
		EXPECT_EQ(size_of(fd), 16);
		EXPECT_EQ(px::close(fd), 0);
		EXPECT_EQ(px::unlink("/tmp/seek"), 0);
		return 0;
	});
}

TEST(PosixTmpfs, PreadAndPwriteLeaveThePosition) {
	both_ways([](int, char **) {
		int fd = px::open("/tmp/p", O_RDWR | O_CREAT, 0600);
		EXPECT_EQ(px::write(fd, "abcdef", 6), 6);
		EXPECT_EQ(px::lseek(fd, 2, SEEK_SET), 2);
		EXPECT_EQ(px::pwrite(fd, "XY", 2, 4), 2);
		EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), 2);
		char buf[8] = {};
		EXPECT_EQ(px::pread(fd, buf, 3, 3), 3);
		EXPECT_EQ(std::string(buf, 3), "dXY");
		EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), 2);
		EXPECT_EQ(read_string(fd, 2), "cd"); // from the position, which moves
		EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), 4);
		EXPECT_EQ(px::pwrite(fd, "Z", 1, 10), 1); // past the end: a hole
		EXPECT_EQ(size_of(fd), 11);
		EXPECT_EQ(px::lseek(fd, 0, SEEK_CUR), 4);
		EXPECT_EQ(px::pread(fd, buf, 1, -1), -EINVAL);
		EXPECT_EQ(px::pwrite(fd, "x", 1, -1), -EINVAL);
		EXPECT_EQ(px::pread(fd, buf, 8, 11), 0); // at the end
		EXPECT_EQ(px::close(fd), 0);
		EXPECT_EQ(px::unlink("/tmp/p"), 0);
		return 0;
	});
}

// More than one request carries (1 MiB): the client splits the write, a read is short.
TEST(PosixTmpfs, AFileLargerThanOneTransfer) {
	both_ways(
			[](int, char **) {
				constexpr std::size_t kSize = (3u << 20) + 7;
				std::vector<unsigned char> data(kSize);
				for (std::size_t i = 0; i < kSize; ++i)
					data[i] = pattern_byte(i);
				int fd = px::open("/tmp/big", O_RDWR | O_CREAT | O_TRUNC, 0600);
				EXPECT_EQ(px::write(fd, data.data(), kSize), static_cast<ssize_t>(kSize));
				EXPECT_EQ(size_of(fd), static_cast<off_t>(kSize));
				std::vector<unsigned char> back(kSize + 1);
				EXPECT_EQ(px::lseek(fd, 0, SEEK_SET), 0);
				ssize_t first = px::read(fd, back.data(), back.size());
				EXPECT_GT(first, 0);
				EXPECT_LE(first, static_cast<ssize_t>(kSize));
				auto n = static_cast<std::size_t>(first);
				EXPECT_EQ(read_all(fd, back.data() + n, back.size() - n),
						static_cast<ssize_t>(kSize - n));
				back.resize(kSize);
				EXPECT_TRUE(back == data);
				// A pread across the 1 MiB boundary of the write's pieces.
				unsigned char piece[16];
				EXPECT_EQ(px::pread(fd, piece, sizeof piece, (1 << 20) - 8), 16);
				EXPECT_TRUE(std::equal(piece, piece + 16, data.begin() + (1 << 20) - 8));
				EXPECT_EQ(px::close(fd), 0);
				EXPECT_EQ(px::unlink("/tmp/big"), 0);
				return 0;
			},
			5);
}

TEST(PosixTmpfs, Devices) {
	helsim::testing::for_each_seed([](std::uint64_t seed) {
		helsim::Machine machine{seeded(seed)};
		std::string console;
		run_program(
				machine,
				[](int, char **) {
					char buf[8] = {1, 1, 1, 1, 1, 1, 1, 1};
					int null = px::open("/dev/null", O_RDWR);
					EXPECT_EQ(px::read(null, buf, sizeof buf), 0);
					EXPECT_EQ(px::write(null, "gone", 4), 4);
					EXPECT_EQ(px::lseek(null, 100, SEEK_SET), 0);
					int zero = px::open("/dev/zero", O_RDWR);
					EXPECT_EQ(px::read(zero, buf, sizeof buf), 8);
					EXPECT_EQ(std::string(buf, 8), std::string(8, '\0'));
					EXPECT_EQ(px::write(zero, "gone", 4), 4);
					EXPECT_EQ(px::pread(zero, buf, 4, 1000), 4);
					int console = px::open("/dev/console", O_RDWR);
					EXPECT_EQ(px::write(console, "opened\n", 7), 7);
					EXPECT_EQ(px::read(console, buf, sizeof buf), 0);
					EXPECT_EQ(px::lseek(console, 0, SEEK_SET), -ESPIPE);
					EXPECT_EQ(px::pwrite(console, "x", 1, 0), -ESPIPE);
					EXPECT_EQ(px::write(1, "fd 1\n", 5), 5); // the console too
					EXPECT_EQ(px::write(2, "fd 2\n", 5), 5);
					EXPECT_EQ(px::read(0, buf, sizeof buf), 0); // /dev/null
					struct stat st {};
					EXPECT_EQ(px::fstat(null, &st), 0);
					EXPECT_TRUE(S_ISCHR(st.st_mode));
					EXPECT_EQ(st.st_rdev, makedev(1, 3));
					EXPECT_EQ(px::fstat(zero, &st), 0);
					EXPECT_EQ(st.st_rdev, makedev(1, 5));
					EXPECT_EQ(px::fstat(console, &st), 0);
					EXPECT_TRUE(S_ISCHR(st.st_mode));
					EXPECT_EQ(st.st_rdev, makedev(5, 1));
					EXPECT_EQ(px::fstat(1, &st), 0);
					EXPECT_EQ(st.st_rdev, makedev(5, 1));
					EXPECT_EQ(px::open("/dev/null", O_RDONLY | O_CREAT | O_EXCL, 0600), -EEXIST);
					EXPECT_EQ(px::unlink("/dev/nothing"), -ENOENT);
					for (int fd : {null, zero, console})
						EXPECT_EQ(px::close(fd), 0);
					return 0;
				},
				quiet({}, &console));
		EXPECT_EQ(console, "opened\nfd 1\nfd 2\n");
	});
}

// The tmpfs lives in the System: a second run of the same System finds the first run's files.
TEST(PosixTmpfs, FilesOutliveARun) {
	auto body = [](helsim::Machine &machine) {
		px::System system{machine, quiet()};
		system.add_program("/bin/writer", [](int, char **) {
			int fd = px::open("/tmp/kept", O_WRONLY | O_CREAT | O_EXCL, 0644);
			EXPECT_EQ(fd, 3);
			EXPECT_EQ(px::write(fd, "from the first run", 18), 18);
			int gone = px::open("/tmp/unlinked", O_WRONLY | O_CREAT, 0644);
			EXPECT_EQ(px::unlink("/tmp/unlinked"), 0);
			EXPECT_EQ(px::write(gone, "x", 1), 1);
			return 0; // exits with both open: they close
		});
		system.add_program("/bin/reader", [](int, char **) {
			int fd = px::open("/tmp/kept", O_RDONLY);
			EXPECT_EQ(fd, 3);
			EXPECT_EQ(read_string(fd), "from the first run");
			EXPECT_EQ(px::open("/tmp/unlinked", O_RDONLY), -ENOENT);
			EXPECT_EQ(px::unlink("/tmp/kept"), 0);
			return 0;
		});
		system.spawn("/bin/writer", {"writer"});
		expect_clean(machine.run());
		system.spawn("/bin/reader", {"reader"});
		expect_clean(machine.run());
		expect_all_exited_zero(system);
		EXPECT_EQ(system.counters().processes_exited, 2u);
	};
	helsim::testing::for_each_seed([&](std::uint64_t seed) {
		helsim::Machine machine{seeded(seed)};
		body(machine);
	});
	helsim::Machine machine;
	body(machine);
}

// Readers and writers of one file in two processes, each at its own description.
TEST(PosixTmpfs, ConcurrentWritersOfOneFileKeepTheirRanges) {
	Programs programs{{"/bin/main",
							  [](int, char **) {
								  int fd = px::open("/tmp/shared", O_RDWR | O_CREAT, 0600);
								  EXPECT_GT(spawn("/bin/half", {"half", "1"}), 0);
								  std::string mine(1000, 'a');
								  for (int i = 0; i < 20; ++i)
									  EXPECT_EQ(px::pwrite(fd, mine.data(), mine.size(), i * 2000),
											  1000);
								  EXPECT_EQ(px::close(fd), 0);
								  return 0;
							  }},
			{"/bin/half", [](int, char **) {
				 int fd = px::open("/tmp/shared", O_RDWR);
				 EXPECT_GE(fd, 0);
				 std::string mine(1000, 'b');
				 for (int i = 0; i < 20; ++i)
					 EXPECT_EQ(px::pwrite(fd, mine.data(), mine.size(), i * 2000 + 1000), 1000);
				 return 0;
			 }}};
	auto check = [](helsim::Machine &machine, const Programs &programs) {
		px::System system{machine, quiet()};
		for (const auto &[path, main] : programs)
			system.add_program(path, main);
		system.add_program("/bin/check", [](int, char **) {
			int fd = px::open("/tmp/shared", O_RDONLY);
			std::string all(40'000, '\0');
			EXPECT_EQ(read_all(fd, all.data(), all.size()), 40'000);
			for (std::size_t i = 0; i < all.size(); ++i)
				if (all[i] != ((i / 1000) % 2 ? 'b' : 'a')) {
					ADD_FAILURE() << "byte " << i << " is " << all[i];
					break;
				}
			return 0;
		});
		system.spawn("/bin/main", {"main"});
		expect_clean(machine.run());
		system.spawn("/bin/check", {"check"});
		expect_clean(machine.run());
		expect_all_exited_zero(system);
	};
	helsim::testing::for_each_seed([&](std::uint64_t seed) {
		helsim::Machine machine{seeded(seed)};
		check(machine, programs);
	});
	for (int round = 0; round < 3; ++round) {
		helsim::Machine machine;
		check(machine, programs);
	}
}

} // namespace
