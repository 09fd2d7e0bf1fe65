// test/posix/server_test.cpp tests src/posix/server.cpp: a process's life as the server sees
// it (start, exit, death by a fault or an exception), the supercalls it serves from the
// thread's registers, what superGetProcessData hands out, and the POSIX lane's dispatch.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/ipc.hpp>
#include <helsim/posix.hpp>

#include "posix_support.hpp"

namespace px = helsim::posix;
namespace protocol = helsim::posix::protocol;
using namespace helsim::posix::test;

namespace {

// The ways /bin/crash dies, chosen by argv[1].
int crash(int argc, char **argv) {
	std::string how = argc > 1 ? argv[1] : "";
	// Opaque, so that the compiler cannot see the bad store (and UBSan does not stop it: not
	// null itself, but the page at 0, which no space maps).
	volatile std::uintptr_t null_page = 16;
	if (how == "null") {
		*reinterpret_cast<volatile int *>(null_page) = 1;
	} else if (how == "munmap") {
		void *page =
				px::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		EXPECT_FALSE(px::mmap_failed(page));
		auto *word = static_cast<volatile int *>(page);
		*word = 1; // mapped: fine
		EXPECT_EQ(px::munmap(page, 4096), 0);
		*word = 2; // unmapped: the fault nothing resolves
	} else if (how == "file_table") {
		protocol::ProcessData data{};
		EXPECT_EQ(raw_process_data(data), kHelErrNone);
		*const_cast<volatile HelHandle *>(&data.file_table[0]) = 0; // the page is read-only
	} else if (how == "clock_page") {
		protocol::ProcessData data{};
		EXPECT_EQ(raw_process_data(data), kHelErrNone);
		*const_cast<volatile std::uint64_t *>(&data.clock_tracker_page->seqlock) = 1;
	} else if (how == "clock") {
		// clock_gettime stores its result as the vDSO does: a bad pointer faults.
		px::clock_gettime(CLOCK_MONOTONIC, reinterpret_cast<timespec *>(null_page));
	} else if (how == "ud2") {
		__builtin_trap();
	} else if (how == "div0") {
		// In assembly: a division by zero in C++ is undefined, and UBSan would stop it.
		asm volatile("xor %%ecx, %%ecx\n\tdiv %%ecx" ::: "eax", "ecx", "edx");
	} else if (how == "int3") {
		asm volatile("int3");
	} else if (how == "throw") {
		throw std::runtime_error("an exception nobody catches");
	}
	return 100; // not reached
}

// /bin/parent argv[1]: spawns /bin/crash with it, learns of the child's death by the EOF of a
// pipe whose write end only the child still holds, then checks that the server still serves
// it (a request, a supercall, a new process). Returns the child's pid.
int parent(int, char **argv) {
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	const char *args[] = {"crash", argv[1], nullptr};
	pid_t child = px::spawn("/bin/crash", args);
	EXPECT_GT(child, 0);
	EXPECT_EQ(px::close(fds[1]), 0);
	char byte = 0;
	EXPECT_EQ(px::read(fds[0], &byte, 1), 0); // the dead child's fds were closed
	EXPECT_EQ(px::close(fds[0]), 0);
	EXPECT_EQ(px::gettid(), px::getpid());
	const char *ok[] = {"ok", nullptr};
	EXPECT_GT(px::spawn("/bin/ok", ok), 0);
	return child;
}

// Some requests and supercalls while another process dies.
int bystander(int, char **) {
	for (int i = 0; i < 5; ++i) {
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		EXPECT_EQ(px::write(fds[1], "x", 1), 1);
		char byte = 0;
		EXPECT_EQ(px::read(fds[0], &byte, 1), 1);
		EXPECT_EQ(px::close(fds[0]), 0);
		EXPECT_EQ(px::close(fds[1]), 0);
		EXPECT_EQ(px::gettid(), px::getpid());
	}
	return 0;
}

void add_crash_programs(px::System &system) {
	system.add_program("/bin/crash", crash);
	system.add_program("/bin/parent", parent);
	system.add_program("/bin/bystander", bystander);
	system.add_program("/bin/ok", [](int, char **) { return 0; });
}

// A child that dies as `how` says ends with `signal`; its parent, a bystander and a process
// started afterwards live on and exit normally. With `bystander` false nothing maps memory
// while the child dies: every space shares one host window, so a page a process unmapped
// may already be another space's when it touches it (docs/fidelity.md).
void expect_death(const char *how, int signal, bool bystander = true) {
	for_each_mode(
			[&](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				add_crash_programs(system);
				pid_t direct = system.spawn("/bin/crash", {"crash", how});
				if (!bystander)
					expect_clean(machine.run());
				pid_t parent_pid = system.spawn("/bin/parent", {"parent", how});
				pid_t bystander_pid = bystander ? system.spawn("/bin/bystander", {"bystander"}) : 0;
				expect_clean(machine.run());

				int status = system.exit_status(direct);
				EXPECT_TRUE(WIFSIGNALED(status)) << how << " status " << status;
				EXPECT_EQ(WTERMSIG(status), signal) << how;
				auto child = static_cast<pid_t>(exit_code(system, parent_pid));
				status = system.exit_status(child);
				EXPECT_TRUE(WIFSIGNALED(status)) << how << " status " << status;
				EXPECT_EQ(WTERMSIG(status), signal) << how;
				if (bystander) {
					EXPECT_EQ(exit_code(system, bystander_pid), 0);
				}
				// The processes above and /bin/ok.
				std::uint64_t processes = bystander ? 5 : 4;
				auto counters = system.counters();
				EXPECT_EQ(counters.processes_started, processes);
				EXPECT_EQ(counters.processes_exited, processes);
			},
			20, 3);
}

TEST(PosixServer, AWriteToTheNullPageIsSigsegvAndTheServerLivesOn) {
	expect_death("null", SIGSEGV);
}

TEST(PosixServer, AWriteToAnUnmappedPageIsSigsegv) { expect_death("munmap", SIGSEGV, false); }

TEST(PosixServer, TheFileTableAndClockPagesAreReadOnly) {
	expect_death("file_table", SIGSEGV);
	expect_death("clock_page", SIGSEGV);
}

TEST(PosixServer, ClockGettimeIntoABadPointerIsSigsegvAsWithTheVdso) {
	expect_death("clock", SIGSEGV);
}

TEST(PosixServer, InstructionFaultsEndInTheirSignals) {
	expect_death("ud2", SIGILL);
	expect_death("div0", SIGFPE);
	expect_death("int3", SIGTRAP);
}

TEST(PosixServer, AnEscapingExceptionIsSigabrt) { expect_death("throw", SIGABRT); }

// _exit's status is masked to 8 bits; main's return value is an exit status too; an _exit
// that the program's own catch (...) swallows still ends the process with its status.
TEST(PosixServer, ExitStatuses) {
	for (bool supercalls : {true, false}) {
		SCOPED_TRACE(supercalls ? "supercalls" : "requests");
		for_each_mode(
				[&](const helsim::MachineConfig &config) {
					helsim::Machine machine{config};
					px::System system{machine, quiet({.supercalls = supercalls})};
					system.add_program("/bin/exit", [](std::vector<std::string> argv) -> int {
						px::_exit(std::stoi(argv.at(1)));
					});
					system.add_program("/bin/return",
							[](std::vector<std::string> argv) { return std::stoi(argv.at(1)); });
					system.add_program("/bin/swallow", [](int, char **) {
						try {
							px::_exit(3);
						} catch (...) {
						}
						EXPECT_EQ(px::getpid(), -EIO); // its POSIX lane is shut down
						return 5;
					});
					std::vector<std::pair<pid_t, int>> expected;
					for (int code : {0, 1, 255, 256, 513})
						expected.emplace_back(system.spawn("/bin/exit",
													  {"exit", std::to_string(code)}),
								code & 0xff);
					for (int code : {0, 7, 300})
						expected.emplace_back(system.spawn("/bin/return",
													  {"return", std::to_string(code)}),
								code & 0xff);
					expected.emplace_back(system.spawn("/bin/swallow", {"swallow"}), 3);
					auto report = machine.run();
					expect_clean(report);
					for (const auto &thread : report.threads)
						EXPECT_EQ(thread.outcome, helsim::ThreadOutcome::returned)
								<< thread.name << ": " << thread.message;
					for (auto [pid, code] : expected)
						EXPECT_EQ(exit_code(system, pid), code) << "pid " << pid;
				},
				20, 2);
	}
}

// gettid is a supercall by default: N calls are N supercalls and no IPC at all. With
// supercalls off they are N requests, with the same answers.
TEST(PosixServer, SupercallsAreCountedAndRequestsAreTheirFallback) {
	constexpr std::uint64_t kCalls = 25;
	for (bool supercalls : {true, false}) {
		SCOPED_TRACE(supercalls ? "supercalls" : "requests");
		for_each_mode(
				[&](const helsim::MachineConfig &config) {
					helsim::Machine machine{config};
					px::System system{machine, quiet({.supercalls = supercalls})};
					px::Counters delta{};
					system.add_program("/bin/tid", [&](int, char **) {
						pid_t pid = px::getpid();
						px::Counters before = px::counters();
						for (std::uint64_t i = 0; i < kCalls; ++i)
							EXPECT_EQ(px::gettid(), pid);
						px::Counters after = px::counters();
						delta.supercalls = after.supercalls - before.supercalls;
						delta.server_requests = after.server_requests - before.server_requests;
						delta.client_submissions =
								after.client_submissions - before.client_submissions;
						return 0;
					});
					pid_t pid = system.spawn("/bin/tid", {"tid"});
					expect_clean(machine.run());
					EXPECT_EQ(exit_code(system, pid), 0);
					EXPECT_EQ(delta.supercalls, supercalls ? kCalls : 0);
					EXPECT_EQ(delta.server_requests, supercalls ? 0 : kCalls);
					EXPECT_EQ(delta.client_submissions, supercalls ? 0 : kCalls);
				},
				20, 2);
	}
}

// A supercall number the server does not know answers kHelErrIllegalSyscall, and the process
// goes on; a bad pointer for superGetProcessData is -EFAULT; AnonAllocate checks its size.
TEST(PosixServer, UnknownAndBadSupercalls) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				system.add_program("/bin/super", [](int, char **) {
					EXPECT_EQ(raw_supercall(99).error, kHelErrIllegalSyscall);
					EXPECT_EQ(raw_supercall(17).error,
							kHelErrIllegalSyscall); // thread exit: one thread
					auto bad = raw_supercall(protocol::kSuperGetProcessData, 0x10);
					EXPECT_EQ(bad.error, kHelErrNone);
					EXPECT_EQ(static_cast<std::int64_t>(bad.out1), -EFAULT);
					auto empty = raw_supercall(protocol::kSuperAnonAllocate, 0, PROT_READ);
					EXPECT_EQ(static_cast<std::int64_t>(empty.out1), -EINVAL);
					auto odd = raw_supercall(protocol::kSuperAnonDeallocate, 4097, 4096);
					EXPECT_EQ(static_cast<std::int64_t>(odd.out1), -EINVAL);
					EXPECT_EQ(px::gettid(), px::getpid());
					return 9;
				});
				pid_t pid = system.spawn("/bin/super", {"super"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 9);
			},
			20, 2);
}

// What superGetProcessData hands out, with each page's strategy on and off.
struct PagesSeen {
	bool thread_page = false, file_table = false, clock_page = false;
	int queue_type = -1, lane_type = -1, fd0_type = -1;
	std::uint32_t lane_rights = 0, fd0_rights = 0; // what the server let the process keep
	HelHandle fd3 = 1, mbus = 1;
	std::uint32_t flags = 0;
};

PagesSeen pages_with(const helsim::MachineConfig &config, const px::Options &options) {
	helsim::Machine machine{config};
	px::System system{machine, quiet(options)};
	PagesSeen seen;
	system.add_program("/bin/pages", [&](int, char **) {
		protocol::ProcessData data{};
		EXPECT_EQ(raw_process_data(data), kHelErrNone);
		auto type_of = [](HelHandle handle) {
			helsim::ext::DescriptorInfo info{-1, 0};
			return helsim::ext::describe_descriptor(handle, info) == kHelErrNone ? info.type : -1;
		};
		seen.thread_page = data.thread_page;
		seen.file_table = data.file_table;
		seen.clock_page = data.clock_tracker_page;
		auto rights_of = [](HelHandle handle) {
			helsim::ext::DescriptorInfo info{-1, 0};
			return helsim::ext::describe_descriptor(handle, info) == kHelErrNone ? info.rights : 0u;
		};
		seen.lane_type = type_of(data.posix_lane);
		seen.lane_rights = rights_of(data.posix_lane);
		seen.mbus = data.mbus_lane;
		seen.flags = data.flags;
		if (data.thread_page) {
			EXPECT_EQ(data.thread_page->global_signal_flag, 0u);
			seen.queue_type =
					type_of(__atomic_load_n(&data.thread_page->queue_handle, __ATOMIC_ACQUIRE));
		}
		if (data.file_table) {
			seen.fd0_type = type_of(data.file_table[0]);
			seen.fd0_rights = rights_of(data.file_table[0]);
			seen.fd3 = data.file_table[3];
		}
		if (data.clock_tracker_page) {
			std::int64_t ref = 0, base = 0;
			EXPECT_TRUE(protocol::read_tracker(*data.clock_tracker_page, ref, base));
		}
		return 0;
	});
	pid_t pid = system.spawn("/bin/pages", {"pages"});
	expect_clean(machine.run());
	EXPECT_EQ(exit_code(system, pid), 0);
	return seen;
}

TEST(PosixServer, ProcessDataNamesThePagesOfTheStrategiesThatAreOn) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				PagesSeen all = pages_with(config, {});
				EXPECT_TRUE(all.thread_page && all.file_table && all.clock_page);
				EXPECT_EQ(all.queue_type, kHelDescQueue); // the client's queue, in its universe
				EXPECT_EQ(all.lane_type, kHelDescLane);
				EXPECT_EQ(all.fd0_type, kHelDescLane); // /dev/null's passthrough lane
				// Lanes are handed out with the Invoke right alone (Managarm's 55d56ab91).
				EXPECT_EQ(all.lane_rights, kHelRightInvoke);
				EXPECT_EQ(all.fd0_rights, kHelRightInvoke);
				EXPECT_EQ(all.fd3, kHelNullHandle);
				EXPECT_EQ(all.mbus, kHelNullHandle);
				EXPECT_EQ(all.flags, protocol::kProcessUsesSupercalls);

				PagesSeen no_thread_page = pages_with(config, {.thread_page = false});
				EXPECT_FALSE(no_thread_page.thread_page);
				EXPECT_TRUE(no_thread_page.file_table && no_thread_page.clock_page);

				PagesSeen no_file_table = pages_with(config, {.file_table = false});
				EXPECT_FALSE(no_file_table.file_table);
				EXPECT_TRUE(no_file_table.thread_page && no_file_table.clock_page);

				PagesSeen no_clock_page = pages_with(config, {.clock_page = false});
				EXPECT_FALSE(no_clock_page.clock_page);
				EXPECT_TRUE(no_clock_page.thread_page && no_clock_page.file_table);

				PagesSeen no_supercalls = pages_with(config, {.supercalls = false});
				EXPECT_EQ(no_supercalls.flags, 0u);
				EXPECT_EQ(no_supercalls.lane_type, kHelDescLane);
			},
			10, 2);
}

// A request the server does not know, sent raw on the POSIX lane, is answered -ENOSYS (its
// tail is taken first, so the exchange stays in step); the lane serves on afterwards.
TEST(PosixServer, AnUnknownRequestIsEnosys) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				system.add_program("/bin/raw", [](int, char **) {
					using namespace helsim::ipc;
					protocol::ProcessData data{};
					EXPECT_EQ(raw_process_data(data), kHelErrNone);
					helsim::Dispatcher queue{helsim::QueueConfig{2, 2, 4096}};
					protocol::Request head{{999, 0}};
					auto plain = exchange_sync(queue, data.posix_lane,
							offer(send_buffer(&head, sizeof(head)), imbue_credentials(),
									recv_inline()));
					auto &[offered, sent, imbued, reply] = plain.results;
					EXPECT_EQ(offered.error, kHelErrNone);
					EXPECT_EQ(reply.error, kHelErrNone);
					EXPECT_EQ(protocol::decode<protocol::Response>(reply.data).error, -ENOSYS);

					std::string tail = "some tail";
					head.preamble.tail_size = static_cast<std::uint32_t>(tail.size());
					auto tailed = exchange_sync(queue, data.posix_lane,
							offer(send_buffer(&head, sizeof(head)), imbue_credentials(),
									send_buffer(tail), recv_inline()));
					auto &[offered2, sent2, imbued2, sent_tail, reply2] = tailed.results;
					EXPECT_EQ(sent_tail.error, kHelErrNone);
					EXPECT_EQ(reply2.error, kHelErrNone);
					EXPECT_EQ(protocol::decode<protocol::Response>(reply2.data).error, -ENOSYS);

					EXPECT_GT(px::getpid(), 0);
					return 0;
				});
				pid_t pid = system.spawn("/bin/raw", {"raw"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
			},
			20, 2);
}

// Requests whose tail does not match their head: the server answers (or finds the
// conversation gone) and goes on serving the lane.
TEST(PosixServer, MalformedRequestsDoNotStopTheLane) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				system.add_program("/bin/raw", [](int, char **) {
					using namespace helsim::ipc;
					protocol::ProcessData data{};
					EXPECT_EQ(raw_process_data(data), kHelErrNone);
					helsim::Dispatcher queue{helsim::QueueConfig{2, 2, 4096}};
					pid_t pid = px::getpid();

					// A tail announced but not sent: the reply's receive meets the server's
					// receive of the tail.
					protocol::Request head{{protocol::kGetPid, 5}};
					auto missing = exchange_sync(queue, data.posix_lane,
							offer(send_buffer(&head, sizeof(head)), imbue_credentials(),
									recv_inline()));
					auto &[offered, sent, imbued, reply] = missing.results;
					EXPECT_EQ(offered.error, kHelErrNone);
					EXPECT_EQ(reply.error, kHelErrTransmissionMismatch);
					EXPECT_EQ(px::getpid(), pid);

					// A longer tail than announced: -ENAMETOOLONG.
					std::string tail = "a longer tail";
					auto longer = exchange_sync(queue, data.posix_lane,
							offer(send_buffer(&head, sizeof(head)), imbue_credentials(),
									send_buffer(tail), recv_inline()));
					auto &[offered2, sent2, imbued2, sent_tail, reply2] = longer.results;
					EXPECT_EQ(sent_tail.error, kHelErrBufferTooSmall);
					EXPECT_EQ(reply2.error, kHelErrNone);
					EXPECT_EQ(protocol::decode<protocol::Response>(reply2.data).error,
							-ENAMETOOLONG);
					EXPECT_EQ(px::getpid(), pid);

					// A head shorter than a preamble: its missing bytes read as zero.
					std::uint16_t stub = protocol::kGetPid;
					auto stubby = exchange_sync(queue, data.posix_lane,
							offer(send_buffer(&stub, sizeof(stub)), imbue_credentials(),
									recv_inline()));
					auto &[offered3, sent3, imbued3, reply3] = stubby.results;
					EXPECT_EQ(reply3.error, kHelErrNone);
					EXPECT_EQ(protocol::decode<protocol::Response>(reply3.data).value, pid);
					EXPECT_EQ(px::gettid(), pid);
					return 0;
				});
				pid_t pid = system.spawn("/bin/raw", {"raw"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
			},
			20, 2);
}

// A child started by spawn() gets the parent's fds without FD_CLOEXEC, at the same numbers
// and sharing the open file descriptions; a process the host starts gets /dev/null and the
// console.
TEST(PosixServer, SpawnCopiesTheFileTableWithoutCloexecFds) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				std::string console;
				px::System system{machine, quiet({}, &console)};
				system.add_program("/bin/child", [](std::vector<std::string> argv) {
					int kept = std::stoi(argv.at(1)), dropped = std::stoi(argv.at(2));
					EXPECT_EQ(px::fcntl(kept, F_GETFD), 0);
					EXPECT_EQ(px::fcntl(dropped, F_GETFD), -EBADF);
					EXPECT_EQ(px::write(kept, "from the child", 14), 14);
					EXPECT_EQ(px::write(1, "child\n", 6), 6); // the parent's console
					return 0;
				});
				system.add_program("/bin/parent", [](int, char **) {
					char byte = 1;
					EXPECT_EQ(px::read(0, &byte, 1), 0); // /dev/null
					int kept[2], dropped[2];
					EXPECT_EQ(px::pipe(kept), 0);
					EXPECT_EQ(px::pipe2(dropped, O_CLOEXEC), 0);
					std::string k = std::to_string(kept[1]), d = std::to_string(dropped[1]);
					const char *args[] = {"child", k.c_str(), d.c_str(), nullptr};
					EXPECT_GT(px::spawn("/bin/child", args), 0);
					EXPECT_EQ(px::close(kept[1]), 0);
					EXPECT_EQ(px::close(dropped[1]), 0);
					char text[32] = {};
					EXPECT_EQ(px::read(kept[0], text, sizeof text), 14);
					EXPECT_STREQ(text, "from the child");
					EXPECT_EQ(px::read(kept[0], text, sizeof text), 0); // the child's end closed
					EXPECT_EQ(px::read(dropped[0], text, sizeof text), 0);
					return 0;
				});
				pid_t pid = system.spawn("/bin/parent", {"parent"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
				EXPECT_EQ(exit_code(system, pid + 1), 0);
				EXPECT_EQ(console, "child\n");
			},
			20, 2);
}

} // namespace
