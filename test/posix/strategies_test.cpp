// The acceleration switches that are not a feature's own: the inline supercall point and
// batching. Each is tested on and off with the same results, its counters proving the path.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>

#include <cerrno>
#include <string>

#include <cstring>

#include "posix_support.hpp"

namespace px = helsim::posix;
using namespace helsim::posix::test;

namespace {

// gettid answered inline by the host callback: no stop, no server; the other supercalls
// (mmap here) still trap to the server.
TEST(PosixStrategies, InlineSupercallsAnswerGettidOnTheCaller) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				for (bool inline_calls : {false, true})
					for (int processes : {1, 2}) {
						helsim::Machine machine{config};
						px::System system{machine, quiet({.inline_supercalls = inline_calls})};
						std::uint64_t gettid_supercalls = 0, mmap_supercalls = 0;
						system.add_program("/bin/tid", [&](int, char **) {
							pid_t pid = px::getpid();
							auto before = px::counters();
							for (int i = 0; i < 10; ++i)
								EXPECT_EQ(px::gettid(), pid);
							auto middle = px::counters();
							void *memory = px::mmap(nullptr, 4096, PROT_READ | PROT_WRITE,
									MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
							EXPECT_FALSE(px::mmap_failed(memory));
							EXPECT_EQ(px::munmap(memory, 4096), 0);
							auto after = px::counters();
							gettid_supercalls = middle.supercalls - before.supercalls;
							mmap_supercalls = after.supercalls - middle.supercalls;
							return 0;
						});
						// Two processes at once: the callback tells them apart by credentials (the
						// counters are the System's, so they are checked with one process).
						pid_t first = system.spawn("/bin/tid", {"tid"});
						pid_t second = processes == 2 ? system.spawn("/bin/tid", {"tid"}) : 0;
						expect_clean(machine.run());
						EXPECT_EQ(exit_code(system, first), 0);
						if (second) {
							EXPECT_EQ(exit_code(system, second), 0);
							continue;
						}
						EXPECT_EQ(gettid_supercalls, inline_calls ? 0u : 10u);
						EXPECT_EQ(mmap_supercalls, 2u);
					}
			},
			8, 2);
}

// Batching off: every RPC is its offer (with kHelItemWantLane) and then one submission per
// action on the conversation; the server sees the same actions in the same order, so every
// call gives the same result. The submissions counted prove the path: a request without a tail
// is send, imbue, receive (three actions), a passthrough read four.
TEST(PosixStrategies, BatchingOffSubmitsEachActionAloneWithTheSameResults) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				std::string results[2];
				for (bool batching : {true, false}) {
					helsim::Machine machine{config};
					px::System system{machine, quiet({.batching = batching})};
					std::string &out = results[batching];
					system.add_program("/bin/main", [&](int, char **) {
						auto before = px::counters();
						pid_t parent = px::getppid();
						auto after_request = px::counters();
						int fd = px::open("/tmp/f", O_CREAT | O_RDWR, 0600); // a tail: the path
						EXPECT_EQ(px::write(fd, "batch", 5), 5);
						EXPECT_EQ(px::lseek(fd, 0, SEEK_SET), 0);
						auto before_read = px::counters();
						char text[8] = {};
						EXPECT_EQ(px::read(fd, text, sizeof(text)), 5);
						auto after_read = px::counters();
						EXPECT_EQ(px::read(-1, text, 1), -EBADF);
						EXPECT_EQ(px::close(fd), 0);
						EXPECT_EQ(px::open("/missing", O_RDONLY), -ENOENT);
						out = std::to_string(parent) + text;
						std::uint64_t request =
								after_request.client_submissions - before.client_submissions;
						std::uint64_t read =
								after_read.client_submissions - before_read.client_submissions;
						EXPECT_EQ(request, batching ? 1u : 4u);
						EXPECT_EQ(read, batching ? 1u : 5u);
						return 0;
					});
					pid_t pid = system.spawn("/bin/main", {"main"});
					expect_clean(machine.run());
					EXPECT_EQ(exit_code(system, pid), 0);
				}
				EXPECT_EQ(results[true], "0batch");
				EXPECT_EQ(results[false], results[true]);
			},
			8, 2);
}

// A machine may outlive its System: the callback then declines, and supercalls trap again.
TEST(PosixStrategies, InlineCallbackOutlivedByTheMachineDeclines) {
	helsim::Machine machine;
	{ px::System system{machine, quiet({.inline_supercalls = true})}; }
	HelWord out0 = 0, out1 = 0;
	machine.spawn("caller", [&](std::span<const HelHandle>) {
		helSyscall0_2(static_cast<int>(
							  kHelCallSuper + std::uint32_t{helsim::posix::protocol::kSuperGetTid}),
				&out0, &out1);
	});
	auto report = machine.run();
	EXPECT_TRUE(report.stuck); // trapped, and nobody observes it
	EXPECT_NE(report.to_string().find("stopped at supercall 14"), std::string::npos)
			<< report.to_string();
}

} // namespace
