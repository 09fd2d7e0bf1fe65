// test/posix/process_test.cpp tests src/posix/process.cpp and memory.cpp: fork (the file
// table, copy-on-write and eager memory), execve, waitpid, reparenting and the end of a
// process with children, with supercalls on and off, in every mode.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <string>

#include <helsim/posix.hpp>

#include "posix_support.hpp"

namespace px = helsim::posix;
using namespace helsim::posix::test;

namespace {

constexpr std::size_t kPage = 4096;

// Runs `main` as /bin/test in a fresh system, for supercalls on and off and every mode; the
// process must exit 0. `setup` registers more programs. Returns nothing: `check` sees each
// run's system after it ended.
void each_way(px::Main main, px::Options options = {},
		const std::function<void(px::System &)> &setup = {},
		const std::function<void(px::System &, pid_t)> &check = {}) {
	for (bool supercalls : {true, false}) {
		options.supercalls = supercalls;
		for_each_mode(
				[&](const helsim::MachineConfig &config) {
					helsim::Machine machine{config};
					px::System system{machine, quiet(options)};
					system.add_program("/bin/test", main);
					if (setup)
						setup(system);
					pid_t pid = system.spawn("/bin/test", {"test"});
					expect_clean(machine.run());
					EXPECT_EQ(exit_code(system, pid), 0) << "supercalls " << supercalls;
					if (check)
						check(system, pid);
				},
				10, 3);
	}
}

pid_t wait_for(pid_t pid, int &status) { return px::waitpid(pid, &status, 0); }

// ------------------------------------------------------------------ fork and waitpid

struct Family {
	pid_t parent;
	pid_t child_seen_ppid = 0;
	pid_t child_seen_pid = 0;
};

TEST(PosixProcess, ForkRunsTheChildAndWaitpidGetsItsExitCode) {
	each_way(
			[](int, char **) {
				Family family{px::getpid()};
				pid_t child = px::fork(
						[](void *arg) {
							auto &f = *static_cast<Family *>(arg); // host memory: shared
							f.child_seen_ppid = px::getppid();
							f.child_seen_pid = px::getpid();
							return 42;
						},
						&family);
				EXPECT_GT(child, family.parent);
				int status = 0;
				EXPECT_EQ(wait_for(child, status), child);
				EXPECT_TRUE(WIFEXITED(status));
				EXPECT_EQ(WEXITSTATUS(status), 42);
				EXPECT_EQ(family.child_seen_ppid, family.parent);
				EXPECT_EQ(family.child_seen_pid, child);
				EXPECT_EQ(px::wait(&status), -ECHILD); // reaped: gone
				EXPECT_EQ(px::fork(nullptr, nullptr), -EINVAL);
				return 0;
			},
			{}, {},
			[](px::System &system, pid_t) {
				auto counters = system.counters();
				EXPECT_EQ(counters.forks, 1u);
				EXPECT_EQ(counters.processes_started, 2u);
				EXPECT_EQ(counters.processes_exited, 2u);
				EXPECT_EQ(counters.fork_pages_copied, 0u);
			});
}

TEST(PosixProcess, TheChildHasEveryFdAtItsNumberCloexecToo) {
	each_way([](int, char **) {
		int fds[2];
		EXPECT_EQ(px::pipe2(fds, O_CLOEXEC), 0);
		int plain = px::dup(fds[1]);
		EXPECT_GE(plain, 0);
		static int shared[3];
		shared[0] = fds[0];
		shared[1] = fds[1];
		shared[2] = plain;
		pid_t child = px::fork(
				[](void *) {
					EXPECT_EQ(px::fcntl(shared[1], F_GETFD), FD_CLOEXEC);
					EXPECT_EQ(px::fcntl(shared[2], F_GETFD), 0);
					EXPECT_EQ(px::close(shared[0]), 0);
					EXPECT_EQ(px::write(shared[1], "hi", 2), 2);
					EXPECT_EQ(px::write(shared[2], "!", 1), 1);
					return 0;
				},
				nullptr);
		EXPECT_GT(child, 0);
		EXPECT_EQ(px::close(fds[1]), 0);
		EXPECT_EQ(px::close(plain), 0);
		char buf[8] = {};
		std::string got;
		for (ssize_t n; (n = px::read(fds[0], buf, sizeof buf)) > 0;)
			got.append(buf, static_cast<std::size_t>(n));
		EXPECT_EQ(got, "hi!"); // then end of file: the child's ends closed as it exited
		int status = 0;
		EXPECT_EQ(wait_for(child, status), child);
		EXPECT_EQ(status, 0);
		EXPECT_EQ(px::close(fds[0]), 0);
		return 0;
	});
}

// Three private pages (the middle one unmapped before the fork) and a shared page; the child
// and the parent each write their private copy after the fork, and only the shared page shows
// the other's writes.
int memory_program(int, char **) {
	auto *priv = static_cast<unsigned char *>(px::mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	auto *shared = static_cast<unsigned char *>(
			px::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
	EXPECT_FALSE(px::mmap_failed(priv));
	EXPECT_FALSE(px::mmap_failed(shared));
	std::memset(priv, 'p', 3 * kPage);
	std::memset(shared, 's', kPage);
	EXPECT_EQ(px::munmap(priv + kPage, kPage), 0); // splits the area in two
	static int go[2], done[2];
	static unsigned char *parent_priv, *parent_shared;
	parent_priv = priv;
	parent_shared = shared;
	EXPECT_EQ(px::pipe(go), 0);
	EXPECT_EQ(px::pipe(done), 0);
	pid_t child = px::fork(
			[](void *arg) {
				auto *mine = static_cast<unsigned char *>(arg); // translated
				EXPECT_NE(mine, parent_priv + 2 * kPage);
				EXPECT_EQ(mine, px::fork_address(parent_priv + 2 * kPage));
				auto *first = static_cast<unsigned char *>(px::fork_address(parent_priv));
				auto *shared_here = static_cast<unsigned char *>(px::fork_address(parent_shared));
				EXPECT_EQ(px::fork_address(parent_priv + kPage), parent_priv + kPage); // unmapped
				char byte = 0;
				EXPECT_EQ(px::read(go[0], &byte, 1), 1); // the parent wrote its copy
				EXPECT_EQ(first[0], 'p');
				EXPECT_EQ(first[kPage - 1], 'p');
				EXPECT_EQ(mine[0], 'p');
				EXPECT_EQ(shared_here[0], 'P'); // the parent's write, shared
				std::memset(first, 'c', kPage);
				std::memset(mine, 'c', kPage);
				shared_here[1] = 'C';
				EXPECT_EQ(px::write(done[1], "x", 1), 1);
				return 0;
			},
			priv + 2 * kPage);
	EXPECT_GT(child, 0);
	priv[0] = 'P';
	priv[2 * kPage] = 'P';
	shared[0] = 'P';
	EXPECT_EQ(px::write(go[1], "x", 1), 1);
	char byte = 0;
	EXPECT_EQ(px::read(done[0], &byte, 1), 1);
	EXPECT_EQ(priv[0], 'P'); // the child's writes stayed its own
	EXPECT_EQ(priv[1], 'p');
	EXPECT_EQ(priv[2 * kPage], 'P');
	EXPECT_EQ(priv[3 * kPage - 1], 'p');
	EXPECT_EQ(shared[1], 'C');
	int status = 0;
	EXPECT_EQ(wait_for(child, status), child);
	EXPECT_EQ(status, 0);
	EXPECT_EQ(px::munmap(priv, 3 * kPage), 0); // the part already gone is no error
	EXPECT_EQ(px::munmap(shared, kPage), 0);
	return 0;
}

TEST(PosixProcess, ForkedMemoryIsCopyOnWrite) {
	each_way(memory_program, {}, {}, [](px::System &system, pid_t) {
		EXPECT_EQ(system.counters().forks, 1u);
		EXPECT_EQ(system.counters().fork_pages_copied, 0u);
	});
}

TEST(PosixProcess, ForkedMemoryIsCopiedEagerlyWithForkCowOff) {
	px::Options options;
	options.fork_cow = false;
	each_way(memory_program, options, {}, [](px::System &system, pid_t) {
		EXPECT_EQ(system.counters().forks, 1u);
		EXPECT_EQ(system.counters().fork_pages_copied, 2u); // the two private pages left
	});
}

// A fork of a fork: the grandchild's memory is a fork of the child's, and each keeps its own.
TEST(PosixProcess, ForkedMemoryForksAgain) {
	for (bool cow : {true, false}) {
		px::Options options;
		options.fork_cow = cow;
		each_way(
				[](int, char **) {
					auto *page = static_cast<int *>(px::mmap(nullptr, kPage, PROT_READ | PROT_WRITE,
							MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
					EXPECT_FALSE(px::mmap_failed(page));
					*page = 1;
					pid_t child = px::fork(
							[](void *arg) {
								auto *mine = static_cast<int *>(arg);
								*mine = 2;
								pid_t grandchild = px::fork(
										[](void *grand) {
											auto *value = static_cast<int *>(grand);
											int seen = *value;
											*value = 3;
											return seen;
										},
										mine);
								int status = 0;
								EXPECT_EQ(wait_for(grandchild, status), grandchild);
								EXPECT_EQ(WEXITSTATUS(status), 2);
								return *mine; // 2: the grandchild's 3 stayed its own
							},
							page);
					int status = 0;
					EXPECT_EQ(wait_for(child, status), child);
					EXPECT_EQ(WEXITSTATUS(status), 2);
					EXPECT_EQ(*page, 1);
					return 0;
				},
				options, {},
				[cow](px::System &system, pid_t) {
					EXPECT_EQ(system.counters().forks, 2u);
					EXPECT_EQ(system.counters().fork_pages_copied, cow ? 0u : 2u);
				});
	}
}

// A child whose space has no room for the parent's memory (every space shares one 16 GiB
// window): fork fails with -ENOMEM, leaves nothing behind, and the parent carries on.
TEST(PosixProcess, ForkWithoutRoomIsEnomemAndTheParentCarriesOn) {
	for (bool cow : {true, false}) {
		px::Options options;
		options.fork_cow = cow;
		each_way(
				[](int, char **) {
					constexpr std::size_t kHuge = std::size_t{10} << 30;
					auto *huge = static_cast<char *>(px::mmap(nullptr, kHuge,
							PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
					EXPECT_FALSE(px::mmap_failed(huge));
					huge[0] = 'h';
					EXPECT_EQ(px::fork([](void *) { return 0; }, nullptr), -ENOMEM);
					EXPECT_EQ(huge[0], 'h');
					int status = 0;
					EXPECT_EQ(px::wait(&status), -ECHILD);
					EXPECT_EQ(px::munmap(huge, kHuge), 0);
					pid_t child = px::fork([](void *) { return 6; }, nullptr);
					EXPECT_EQ(wait_for(child, status), child);
					EXPECT_EQ(WEXITSTATUS(status), 6);
					return 0;
				},
				options, {},
				[](px::System &system, pid_t) {
					EXPECT_EQ(system.counters().forks, 1u);
					EXPECT_EQ(system.counters().processes_started, 2u);
					EXPECT_EQ(system.counters().fork_pages_copied, 0u);
				});
	}
}

TEST(PosixProcess, WaitpidOptionsAndErrors) {
	each_way([](int, char **) {
		int status = 0;
		EXPECT_EQ(px::waitpid(-1, &status, 0), -ECHILD);
		EXPECT_EQ(px::waitpid(-1, &status, WNOHANG), -ECHILD);
		static int gate[2];
		EXPECT_EQ(px::pipe(gate), 0);
		pid_t blocked = px::fork(
				[](void *) {
					EXPECT_EQ(px::close(gate[1]), 0);
					char byte = 0;
					return static_cast<int>(px::read(gate[0], &byte, 1)); // 0 at end of file
				},
				nullptr);
		EXPECT_GT(blocked, 0);
		EXPECT_EQ(px::waitpid(blocked, &status, WNOHANG), 0);
		EXPECT_EQ(px::waitpid(-1, &status, WNOHANG), 0);
		EXPECT_EQ(px::waitpid(blocked + 1000, &status, 0), -ECHILD);
		EXPECT_EQ(px::waitpid(-5, &status, 0), -ECHILD); // no process groups
		EXPECT_EQ(px::waitpid(blocked, &status, 0x4000), -EINVAL);
		EXPECT_EQ(px::close(gate[1]), 0);
		EXPECT_EQ(px::waitpid(-1, &status, 0), blocked);
		EXPECT_TRUE(WIFEXITED(status));
		EXPECT_EQ(WEXITSTATUS(status), 0);

		// A status that cannot be stored: -EFAULT, and the child is reaped all the same.
		pid_t three = px::fork([](void *) { return 3; }, nullptr);
		EXPECT_EQ(px::waitpid(three, reinterpret_cast<int *>(16), 0), -EFAULT);
		EXPECT_EQ(px::waitpid(three, &status, WNOHANG), -ECHILD);
		// pid 0: any child (every child is in the caller's group); a null status is allowed.
		pid_t four = px::fork([](void *) { return 4; }, nullptr);
		EXPECT_EQ(px::waitpid(0, nullptr, 0), four);
		EXPECT_EQ(px::close(gate[0]), 0);
		return 0;
	});
}

// Children that end in any order are each reaped once, with their own status.
TEST(PosixProcess, ManyChildrenAreEachReapedOnce) {
	each_way([](int, char **) -> int {
		constexpr int kChildren = 8;
		std::map<pid_t, int> expected;
		for (std::intptr_t i = 0; i < kChildren; ++i) {
			pid_t child = px::fork(
					[](void *arg) {
						return static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
					},
					reinterpret_cast<void *>(i + 20));
			EXPECT_GT(child, 0);
			expected[child] = static_cast<int>(i + 20);
		}
		for (int i = 0; i < kChildren; ++i) {
			int status = 0;
			pid_t child = px::wait(&status);
			EXPECT_EQ(expected.count(child), 1u) << child;
			EXPECT_EQ(WEXITSTATUS(status), expected[child]);
			expected.erase(child);
		}
		EXPECT_EQ(px::wait(nullptr), -ECHILD);
		return 0;
	});
}

// A fatal fault in a child: waitpid sees the signal.
TEST(PosixProcess, WaitpidReportsDeathBySignal) {
	each_way([](int, char **) {
		pid_t child = px::fork(
				[](void *) {
					volatile std::uintptr_t null_page = 16;
					px::clock_gettime(CLOCK_MONOTONIC, reinterpret_cast<timespec *>(null_page));
					return 0;
				},
				nullptr);
		int status = 0;
		EXPECT_EQ(wait_for(child, status), child);
		EXPECT_TRUE(WIFSIGNALED(status)) << status;
		EXPECT_EQ(WTERMSIG(status), SIGSEGV);
		return 0;
	});
}

// ------------------------------------------------------------------ orphans

struct Orphans {
	pid_t first;
	std::atomic<pid_t> grandchild{0};
	std::atomic<pid_t> seen_ppid{0};
};

// /bin/test forks a child that forks a grandchild and exits; the grandchild, told by end of
// file that its parent is gone, finds itself the first process's child, which waits for it.
TEST(PosixProcess, OrphansAreReparentedToTheFirstProcess) {
	each_way([](int, char **) {
		static Orphans orphans;
		orphans.first = px::getpid();
		orphans.grandchild = 0;
		orphans.seen_ppid = 0;
		pid_t child = px::fork(
				[](void *) {
					static int gone[2];
					EXPECT_EQ(px::pipe(gone), 0);
					pid_t grandchild = px::fork(
							[](void *) {
								EXPECT_EQ(px::close(gone[1]), 0);
								char byte = 0;
								EXPECT_EQ(px::read(gone[0], &byte, 1), 0); // its parent ended
								orphans.seen_ppid = px::getppid();
								return 9;
							},
							nullptr);
					orphans.grandchild = grandchild;
					return grandchild > 0 ? 0 : 1;
				},
				nullptr);
		int status = 0;
		EXPECT_EQ(wait_for(child, status), child);
		EXPECT_EQ(status, 0);
		pid_t grandchild = orphans.grandchild;
		EXPECT_GT(grandchild, 0);
		EXPECT_EQ(wait_for(grandchild, status), grandchild); // now the first process's
		EXPECT_EQ(WEXITSTATUS(status), 9);
		EXPECT_EQ(orphans.seen_ppid.load(), orphans.first);
		return 0;
	});
}

// The first process exits with a child blocked: the child learns of it (end of file), runs on
// with no parent and ends; its status reaches the host, and nothing leaks.
TEST(PosixProcess, AProcessExitsWithItsChildStillRunning) {
	static std::atomic<pid_t> child_pid{0};
	static std::atomic<pid_t> orphan_ppid{-1};
	each_way(
			[](int, char **) {
				static int gate[2];
				EXPECT_EQ(px::pipe(gate), 0);
				child_pid = px::fork(
						[](void *) {
							EXPECT_EQ(px::close(gate[1]), 0);
							char byte = 0;
							EXPECT_EQ(px::read(gate[0], &byte, 1), 0);
							orphan_ppid = px::getppid();
							return 5;
						},
						nullptr);
				EXPECT_GT(child_pid.load(), 0);
				return 0; // exits with the write end: the child reads end of file
			},
			{}, {},
			[](px::System &system, pid_t) {
				EXPECT_EQ(exit_code(system, child_pid), 5);
				EXPECT_EQ(orphan_ppid.load(), 0);
				EXPECT_EQ(system.counters().processes_exited, 2u);
			});
}

// ------------------------------------------------------------------ execve

int after_exec(int argc, char **argv) {
	EXPECT_EQ(argc, 4);
	if (argc != 4)
		return 100;
	EXPECT_EQ(std::to_string(px::getpid()), argv[1]);            // the pid is kept
	EXPECT_EQ(px::fcntl(std::atoi(argv[2]), F_GETFD), 0);        // still open
	EXPECT_EQ(px::fcntl(std::atoi(argv[3]), F_GETFD), -EBADF);   // closed on exec
	EXPECT_EQ(px::write(std::atoi(argv[2]), "new image", 9), 9); // a pipe to the parent
	return 7;
}

int exec_program(int, char **) {
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	int cloexec = px::open("/dev/null", O_WRONLY | O_CLOEXEC);
	EXPECT_GE(cloexec, 0);
	static std::string args[3];
	args[0] = std::to_string(fds[1]);
	args[1] = std::to_string(cloexec);
	static int read_end;
	read_end = fds[0];
	pid_t child = px::fork(
			[](void *) {
				EXPECT_EQ(px::close(read_end), 0);
				char *none[] = {const_cast<char *>("none"), nullptr};
				EXPECT_EQ(px::execve("/bin/none", none, nullptr), -ENOENT); // carries on
				EXPECT_EQ(px::execve("relative", none, nullptr), -ENOENT);
				EXPECT_EQ(px::execve(nullptr, none, nullptr), -EFAULT);
				args[2] = std::to_string(px::getpid());
				char *argv[] = {const_cast<char *>("after"), args[2].data(), args[0].data(),
						args[1].data(), nullptr};
				px::execve("/bin/after", argv, nullptr);
				return 50; // not reached
			},
			nullptr);
	EXPECT_GT(child, 0);
	EXPECT_EQ(px::close(fds[1]), 0);
	EXPECT_EQ(px::close(cloexec), 0);
	std::string got;
	char buf[16];
	for (ssize_t n; (n = px::read(fds[0], buf, sizeof buf)) > 0;)
		got.append(buf, static_cast<std::size_t>(n));
	EXPECT_EQ(got, "new image");
	int status = 0;
	EXPECT_EQ(wait_for(child, status), child);
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(WEXITSTATUS(status), 7);
	EXPECT_EQ(px::close(fds[0]), 0);
	return 0;
}

TEST(PosixProcess, ExecveRunsARegisteredProgramInTheSameProcess) {
	each_way(
			exec_program, {},
			[](px::System &system) { system.add_program("/bin/after", after_exec); },
			[](px::System &system, pid_t) {
				auto counters = system.counters();
				EXPECT_EQ(counters.execs, 1u);
				EXPECT_EQ(counters.forks, 1u);
				EXPECT_EQ(counters.processes_started, 2u); // execve starts no process
			});
}

// spawn() (fork + exec in one request) makes a child like fork's: waitable, its status kept.
TEST(PosixProcess, ASpawnedChildIsWaitedForToo) {
	each_way(
			[](int, char **) {
				const char *args[] = {"after", nullptr};
				pid_t child = px::spawn("/bin/eleven", args);
				EXPECT_GT(child, 0);
				int status = 0;
				EXPECT_EQ(wait_for(child, status), child);
				EXPECT_EQ(WEXITSTATUS(status), 11);
				return 0;
			},
			{},
			[](px::System &system) {
				system.add_program("/bin/eleven", [](int, char **) { return 11; });
			});
}

// ------------------------------------------------------------------ SIGCHLD

// Needs sigaction (the signals part): SIG_IGN for SIGCHLD reaps children at once.
TEST(PosixProcess, IgnoredSigchldLeavesNoZombie) {
	static std::atomic<bool> signals_built{true};
	each_way([](int, char **) {
		struct sigaction ignore {};
		ignore.sa_handler = SIG_IGN;
		if (px::sigaction(SIGCHLD, &ignore, nullptr) == -ENOSYS) {
			signals_built = false;
			return 0;
		}
		pid_t child = px::fork([](void *) { return 1; }, nullptr);
		EXPECT_GT(child, 0);
		int status = 0;
		EXPECT_EQ(px::waitpid(child, &status, 0), -ECHILD);
		return 0;
	});
	if (!signals_built)
		GTEST_SKIP() << "sigaction is not built in this branch";
}

} // namespace
