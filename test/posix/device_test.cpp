// test/posix/device_test.cpp tests src/posix/device.cpp: a device served by its own process,
// read and written through its lane, and its readiness seen by poll and epoll from the status
// page (status_page on) or by a request per fd (off): the same results, the counters tell
// which path ran. A push from another process wakes a poll and an epoll_wait blocked on it.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <helsim/posix.hpp>
#include <helsim/posix_device.hpp>

#include "file_support.hpp"

namespace px = helsim::posix;
using namespace helsim::posix::file_test;

namespace {

std::shared_ptr<px::QueueDevice> queue; // the device of the run in progress

// Opens the device, checks it idle, starts the pusher and waits for its bytes in poll, then in
// epoll_wait.
int waiter(int, char **) {
	int fd = px::open("/dev/queue", O_RDWR);
	EXPECT_GE(fd, 0);
	struct stat st {};
	EXPECT_EQ(px::fstat(fd, &st), 0);
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	pollfd p{fd, POLLIN | POLLOUT, 0};
	EXPECT_EQ(px::poll(&p, 1, 0), 1);
	EXPECT_EQ(p.revents, POLLOUT);
	char buf[16] = {};
	EXPECT_EQ(px::read(fd, buf, sizeof buf), -EAGAIN);
	// The device is a loopback: a write makes it readable.
	EXPECT_EQ(px::write(fd, "ab", 2), 2);
	EXPECT_EQ(px::poll(&p, 1, 0), 1);
	EXPECT_EQ(p.revents, POLLIN | POLLOUT);
	EXPECT_EQ(px::read(fd, buf, sizeof buf), 2);

	EXPECT_GT(spawn("/bin/pusher", {"pusher"}), 0);
	p = {fd, POLLIN, 0};
	EXPECT_EQ(px::poll(&p, 1, -1), 1); // blocks until the pusher pushes
	EXPECT_EQ(p.revents, POLLIN);
	EXPECT_EQ(px::read(fd, buf, sizeof buf), 4);
	EXPECT_EQ(std::string(buf, 4), "ping");

	int ep = px::epoll_create1(0);
	epoll_event e{};
	e.events = EPOLLIN;
	e.data.u64 = 5;
	EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e), 0);
	EXPECT_EQ(px::epoll_wait(ep, &e, 1, 0), 0);
	EXPECT_GT(spawn("/bin/pusher", {"pusher"}), 0);
	EXPECT_EQ(px::epoll_wait(ep, &e, 1, -1), 1);
	EXPECT_EQ(data_of(e), 5u);
	EXPECT_EQ(px::read(fd, buf, sizeof buf), 4);
	EXPECT_EQ(px::close(ep), 0);
	EXPECT_EQ(px::close(fd), 0);
	return 0;
}

int pusher(int, char **) {
	timespec pause{0, 1'000'000};
	px::nanosleep(&pause, nullptr);
	queue->push("ping");
	return 0;
}

px::Counters run_device(const helsim::MachineConfig &config, px::Options options) {
	helsim::Machine machine{config};
	px::System system{machine, quiet(options)};
	queue = std::make_shared<px::QueueDevice>();
	system.add_device("/dev/queue", queue);
	EXPECT_THROW(system.add_device("/dev/queue", queue), std::invalid_argument);
	EXPECT_THROW(system.add_device("relative", queue), std::invalid_argument);
	system.add_program("/bin/waiter", waiter);
	system.add_program("/bin/pusher", pusher);
	system.spawn("/bin/waiter", {"waiter"});
	expect_clean(machine.run());
	expect_all_exited_zero(system);
	queue.reset();
	return system.counters();
}

void each_mode(px::Options options, const std::function<void(const px::Counters &)> &check) {
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) { check(run_device(seeded(seed), options)); }, 20);
	for (int round = 0; round < 3; ++round)
		check(run_device(helsim::MachineConfig{}, options));
}

TEST(PosixDevice, StatusPageOnReadsThePage) {
	each_mode(px::Options{}, [](const px::Counters &c) {
		EXPECT_GT(c.status_page_reads, 0u);
		EXPECT_EQ(c.device_poll_requests, 0u);
	});
}

TEST(PosixDevice, StatusPageOffAsksTheDevice) {
	each_mode(px::Options{.status_page = false}, [](const px::Counters &c) {
		EXPECT_EQ(c.status_page_reads, 0u);
		EXPECT_GT(c.device_poll_requests, 0u);
	});
}

TEST(PosixDevice, WithoutTheFileTable) {
	each_mode(px::Options{.file_table = false}, [](const px::Counters &c) {
		EXPECT_GT(c.forwarded_requests, 0u);
		EXPECT_GT(c.status_page_reads, 0u);
	});
}

// Edge-triggered and one-shot interests in a device: one report per push.
int edges(int, char **) {
	int fd = px::open("/dev/queue", O_RDONLY);
	int ep = px::epoll_create1(0);
	epoll_event e{};
	e.events = EPOLLIN | EPOLLET;
	e.data.u64 = 1;
	EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e), 0);
	int once = px::dup(fd);
	e.events = EPOLLIN | EPOLLONESHOT;
	e.data.u64 = 2;
	EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, once, &e), 0);
	epoll_event out[2];
	queue->push("a");
	// Both report once; a check may see the page before and after the device server's write,
	// so they need not come in the same call.
	int seen[3] = {};
	while (seen[1] + seen[2] < 2) {
		int n = px::epoll_wait(ep, out, 2, -1);
		EXPECT_GT(n, 0);
		for (int i = 0; i < n; ++i)
			++seen[data_of(out[i])];
	}
	EXPECT_EQ(seen[1], 1);
	EXPECT_EQ(seen[2], 1);
	EXPECT_EQ(px::epoll_wait(ep, out, 2, 0), 0); // still readable: no new edge, one-shot spent
	queue->push("b");
	EXPECT_EQ(px::epoll_wait(ep, out, 2, -1), 1);
	EXPECT_EQ(data_of(out[0]), 1u);
	char buf[4];
	EXPECT_EQ(px::read(fd, buf, sizeof buf), 2);
	return 0;
}

TEST(PosixDevice, EdgeTriggeredAndOneshotSameWithAndWithoutThePage) {
	for (bool page : {true, false})
		helsim::testing::for_each_seed(
				[&](std::uint64_t seed) {
					helsim::Machine machine{seeded(seed)};
					px::System system{machine, quiet(px::Options{.status_page = page})};
					queue = std::make_shared<px::QueueDevice>();
					system.add_device("/dev/queue", queue);
					system.add_program("/bin/edges", edges);
					system.spawn("/bin/edges", {"edges"});
					expect_clean(machine.run());
					expect_all_exited_zero(system);
					queue.reset();
				},
				10);
}

// The POSIX server stops after its last process and starts again at the next spawn: so does
// the device's server, and the device keeps its bytes in between.
int reads_one(int, char **) {
	int fd = px::open("/dev/queue", O_RDONLY);
	pollfd p{fd, POLLIN, 0};
	EXPECT_EQ(px::poll(&p, 1, -1), 1);
	char c = 0;
	EXPECT_EQ(px::read(fd, &c, 1), 1);
	EXPECT_EQ(px::poll(&p, 1, 0), c == 'a' ? 1 : 0); // "b" is still there after the first run
	return 0;
}

TEST(PosixDevice, TheDeviceServerStopsAndStartsWithThePosixServer) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				helsim::Machine machine{seeded(seed)};
				px::System system{machine, quiet()};
				queue = std::make_shared<px::QueueDevice>();
				queue->push("ab"); // before any run: nobody to wake, the server reads it at open
				system.add_device("/dev/queue", queue);
				system.add_program("/bin/reads", reads_one);
				for (int run = 0; run < 2; ++run) {
					system.spawn("/bin/reads", {"reads"});
					expect_clean(machine.run());
				}
				expect_all_exited_zero(system);
				queue.reset();
			},
			10);
}

// A push from the host itself (a host thread attached to the machine, threads mode) wakes a
// process blocked in poll on the device.
std::atomic<bool> polling{false};

int host_waiter(int, char **) {
	int fd = px::open("/dev/queue", O_RDONLY);
	pollfd p{fd, POLLIN, 0};
	polling = true;
	EXPECT_EQ(px::poll(&p, 1, -1), 1);
	EXPECT_EQ(p.revents, POLLIN);
	char buf[8];
	EXPECT_EQ(px::read(fd, buf, sizeof buf), 4);
	return 0;
}

TEST(PosixDevice, AHostPushWakesABlockedPoll) {
	for (bool page : {true, false})
		for (int round = 0; round < 3; ++round) {
			helsim::Machine machine;
			px::System system{machine, quiet(px::Options{.status_page = page})};
			auto device = std::make_shared<px::QueueDevice>();
			system.add_device("/dev/queue", device);
			system.add_program("/bin/waiter", host_waiter);
			system.spawn("/bin/waiter", {"waiter"});
			polling = false;
			// Attached before run(): a machine whose simulated threads all wait, with no host
			// thread attached, is stuck.
			std::atomic<bool> attached{false};
			std::thread host{[&] {
				auto attachment = machine.attach();
				attached = true;
				// helYield, not a host yield: in deterministic mode the attached thread holds
				// the baton until it makes a syscall.
				while (!polling)
					helYield();
				device->push("host");
			}};
			while (!attached)
				std::this_thread::yield();
			auto report = machine.run();
			host.join();
			expect_clean(report);
			expect_all_exited_zero(system);
		}
}

// epoll_wait(0) over 16 descriptions of a device: with the status page, 16 page reads and no
// request; without, a request per fd. The benchmark measures the same loop.
int sixteen(int, char **) {
	int ep = px::epoll_create1(0);
	for (int i = 0; i < 16; ++i) {
		int fd = px::open("/dev/queue", O_RDONLY);
		epoll_event e{};
		e.events = EPOLLIN;
		e.data.u64 = static_cast<std::uint64_t>(fd);
		EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e), 0);
	}
	epoll_event out[16];
	EXPECT_EQ(px::epoll_wait(ep, out, 16, 0), 0); // the first check of each waits for its page
	auto before = px::counters();
	EXPECT_EQ(px::epoll_wait(ep, out, 16, 0), 0);
	auto after = px::counters();
	bool page = after.status_page_reads > before.status_page_reads;
	EXPECT_EQ(after.status_page_reads - before.status_page_reads, page ? 16u : 0u);
	EXPECT_EQ(after.device_poll_requests - before.device_poll_requests, page ? 0u : 16u);
	EXPECT_EQ(after.passthrough_requests - before.passthrough_requests, page ? 0u : 16u);
	queue->push("z");
	// Woken by the push; without the page, the checks before it are requests, and the push may
	// land between two of them.
	EXPECT_GE(px::epoll_wait(ep, out, 16, -1), 1);
	EXPECT_EQ(px::epoll_wait(ep, out, 16, 0), 16); // one push: every description is readable
	return 0;
}

TEST(PosixDevice, EpollWaitZeroOverSixteenFdsCostsNoRequestWithThePage) {
	for (bool page : {true, false}) {
		helsim::Machine machine{seeded(page ? 1 : 2)};
		px::System system{machine, quiet(px::Options{.status_page = page})};
		queue = std::make_shared<px::QueueDevice>();
		system.add_device("/dev/queue", queue);
		system.add_program("/bin/sixteen", sixteen);
		system.spawn("/bin/sixteen", {"sixteen"});
		expect_clean(machine.run());
		expect_all_exited_zero(system);
		queue.reset();
	}
}

} // namespace
