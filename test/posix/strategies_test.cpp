// The acceleration switches that are not a feature's own: the inline supercall point and
// batching. Each is tested on and off with the same results, its counters proving the path.
#include <gtest/gtest.h>

#include <sys/mman.h>

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
