// epoll_wait(0) over 1, 16 and 64 descriptions of a device file (helsim::posix::QueueDevice,
// served by an outside file server): with the device's file status page the POSIX server reads
// each fd's readiness from the page, without it it sends the device a poll request per fd per
// check. The host baseline is epoll_wait(0) over as many eventfds. docs/benchmarks.md#posix.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <vector>

#include <helsim/posix.hpp>
#include <helsim/posix_device.hpp>

#include "posix_support.hpp"

namespace {

namespace px = helsim::posix;
using helsim::bench_posix::run_process;

constexpr int kMaxFds = 64;

void BM_Posix_EpollWaitZero(benchmark::State &state, bool status_page) {
	auto count = static_cast<int>(state.range(0));
	run_process(
			state, {.status_page = status_page},
			[&](std::int64_t &bad, px::Counters &before, px::Counters &after) {
				int ep = px::epoll_create1(0);
				bad += ep < 0;
				for (int i = 0; i < count; ++i) {
					int fd = px::open("/dev/queue", O_RDONLY);
					epoll_event event{};
					event.events = EPOLLIN;
					event.data.fd = fd;
					bad += fd < 0 || px::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &event) != 0;
				}
				epoll_event out[kMaxFds];
				// The first check of each fd waits for its page to be mapped: not timed.
				bad += px::epoll_wait(ep, out, kMaxFds, 0) != 0;
				before = px::counters();
				for (auto _ : state)
					bad += px::epoll_wait(ep, out, kMaxFds, 0) != 0;
				after = px::counters();
				auto per_op = [&](std::uint64_t a, std::uint64_t b) {
					return static_cast<double>(b - a) / static_cast<double>(state.iterations());
				};
				state.counters["page_reads"] =
						per_op(before.status_page_reads, after.status_page_reads);
				state.counters["device_polls"] =
						per_op(before.device_poll_requests, after.device_poll_requests);
			},
			[](px::System &system) {
				system.add_device("/dev/queue", std::make_shared<px::QueueDevice>());
			});
}
BENCHMARK_CAPTURE(BM_Posix_EpollWaitZero, status_page, true)->Arg(1)->Arg(16)->Arg(64);
BENCHMARK_CAPTURE(BM_Posix_EpollWaitZero, poll_requests, false)->Arg(1)->Arg(16)->Arg(64);

void BM_PosixHost_EpollWaitZero(benchmark::State &state) {
	auto count = static_cast<int>(state.range(0));
	int ep = ::epoll_create1(0);
	std::vector<int> fds;
	for (int i = 0; i < count; ++i) {
		int fd = ::eventfd(0, EFD_NONBLOCK);
		epoll_event event{};
		event.events = EPOLLIN;
		event.data.fd = fd;
		if (fd < 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &event) != 0) {
			state.SkipWithError("eventfd or epoll_ctl failed");
			break;
		}
		fds.push_back(fd);
	}
	epoll_event out[kMaxFds];
	std::int64_t bad = 0;
	for (auto _ : state)
		bad += ::epoll_wait(ep, out, kMaxFds, 0) != 0;
	for (int fd : fds)
		::close(fd);
	::close(ep);
	if (bad)
		state.SkipWithError("an eventfd was ready");
}
BENCHMARK(BM_PosixHost_EpollWaitZero)->Arg(1)->Arg(16)->Arg(64);

} // namespace
