// test/posix/system_test.cpp tests src/posix/system.cpp: the host side of the POSIX subsystem
// (programs, spawn, exit statuses, counters, the server's lifetime).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <helsim/posix.hpp>
#include <helsim/testing.hpp>

namespace px = helsim::posix;

namespace {

TEST(PosixSystem, ASpawnedProgramRunsAndItsExitStatusIsReported) {
	helsim::Machine machine;
	px::System system{machine};
	system.add_program("/bin/answer", [](int argc, char **argv) {
		EXPECT_EQ(argc, 2);
		EXPECT_STREQ(argv[0], "answer");
		EXPECT_STREQ(argv[1], "42");
		EXPECT_EQ(argv[2], nullptr);
		return 42;
	});
	pid_t pid = system.spawn("/bin/answer", {"answer", "42"});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
	ASSERT_TRUE(system.has_exited(pid));
	int status = system.exit_status(pid);
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(WEXITSTATUS(status), 42);
}

TEST(PosixSystem, PipeBetweenCallsInOneProcess) {
	helsim::testing::for_each_seed([](std::uint64_t seed) {
		helsim::Machine machine{helsim::testing::deterministic(seed)};
		px::System system{machine};
		system.add_program("/bin/p", [](int, char **) {
			int fds[2];
			EXPECT_EQ(px::pipe(fds), 0);
			EXPECT_EQ(fds[0], 3);
			EXPECT_EQ(fds[1], 4);
			EXPECT_EQ(px::write(fds[1], "hello", 5), 5);
			char buf[16] = {};
			EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 5);
			EXPECT_STREQ(buf, "hello");
			EXPECT_EQ(px::close(fds[1]), 0);
			EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 0);
			EXPECT_EQ(px::getpid(), px::gettid());
			EXPECT_EQ(px::write(1, "console\n", 8), 8);
			return 0;
		});
		pid_t pid = system.spawn("/bin/p", {"p"});
		auto report = machine.run();
		EXPECT_FALSE(report.stuck) << report.to_string();
		EXPECT_TRUE(report.leaks.empty()) << report.to_string();
		EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
		EXPECT_EQ(system.exit_status(pid), 0);
	});
}

} // namespace
