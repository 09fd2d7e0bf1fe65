// IPC benchmarks (streams through the dispatcher's SQ and the legacy helSubmitAsync) and the
// host IPC baselines they are compared with. docs/benchmarks.md has the command, the figures
// and the goals.
//
// Every helsim case runs the Google Benchmark loop inside one of its fiber threads (the client,
// or the sender) with helsim::bench::Simulation (include/helsim/benchmark.hpp): on a two-CPU
// machine it is pinned to its CPU before the loop starts, so the timer starts and stops on one
// host thread. The peer fiber (a Simulation peer, pinned to the other CPU) learns how many
// messages to expect from state.max_iterations (fixed before the loop starts) plus the warm-up
// count where there is one, so it needs no extra stop message. The benchmark thread itself
// waits in Machine::run(); building the machine, creating the stream and the dispatchers and
// the warm-up round trips are not timed.
//
// All cases here use wall-clock time (UseRealTime): in a ping-pong between two host threads, the
// CPU time of the timing thread leaves out the time it sleeps while its peer works.
#include <benchmark/benchmark.h>

#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/channel_op_status.hpp>
#include <boost/fiber/fiber.hpp>

#include <helsim/benchmark.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

#include "bench_support.hpp"
#include "cpu_hog.hpp"

namespace ipc = helsim::ipc;

namespace {

// The round trip both files measure, and the checks around it (bench_support.hpp).
using namespace helsim::bench;

constexpr std::int64_t kWarmup = 64; // untimed round trips / messages before the loop

// ---------------------------------------------------------------- round trips

// A client and a server fiber on a long-lived lane pair, the client on `options.cpu` and the
// server on `server_cpu`. One iteration is one round trip.
template <Submission S>
void round_trip(benchmark::State &state, helsim::bench::Options options, unsigned server_cpu) {
	options.name = "client";
	helsim::bench::Simulation simulation{state, std::move(options)};
	auto [client_lane, server_lane] = make_stream(simulation.machine());
	const std::int64_t rounds = kWarmup + static_cast<std::int64_t>(state.max_iterations);

	simulation.peer("server", server_cpu,
			[rounds](std::span<const HelHandle> h) {
				helsim::Dispatcher dispatcher;
				std::array<char, kMessage> reply;
				reply.fill('r');
				for (std::int64_t i = 0; i < rounds; ++i)
					server_round<S>(dispatcher, h[0], reply.data());
			},
			{server_lane});

	simulation.run(
			[](helsim::bench::Loop &loop) {
				helsim::Dispatcher dispatcher;
				std::array<char, kMessage> message;
				message.fill('q');
				HelHandle lane = loop.handles()[0];
				for (std::int64_t i = 0; i < kWarmup; ++i)
					client_round_trip<S>(dispatcher, lane, message.data());
				for (auto _ : loop)
					client_round_trip<S>(dispatcher, lane, message.data());
			},
			{client_lane});
	state.SetItemsProcessed(state.iterations()); // round trips per second
}

// Both fibers on the one CPU of a one-CPU machine: every round trip is two simulated context
// switches on one host thread.
void BM_Ipc_RoundTrip_SameCpu(benchmark::State &state) {
	round_trip<Submission::sq>(state, {.cpus = 1, .cpu = 0}, 0);
}
BENCHMARK(BM_Ipc_RoundTrip_SameCpu)->UseRealTime();

// Client on CPU 1, server on CPU 0 of a two-CPU machine: every message is a cross-CPU hand-off.
void BM_Ipc_RoundTrip_CrossCpu(benchmark::State &state) {
	round_trip<Submission::sq>(state, {.cpus = 2, .cpu = 1}, 0);
}
BENCHMARK(BM_Ipc_RoundTrip_CrossCpu)->UseRealTime();

// The cross-CPU round trip with one CPU-hogging process running beside it: the goal holds it to
// beating BM_Host_PipePingPong_WithHog under that load too, where the simulated CPUs' host
// threads and the hog share the two host CPUs.
void BM_Ipc_RoundTrip_CrossCpu_WithHog(benchmark::State &state) {
	helsim::bench::with_cpu_hog(state, BM_Ipc_RoundTrip_CrossCpu);
}
BENCHMARK(BM_Ipc_RoundTrip_CrossCpu_WithHog)->UseRealTime();

// The same-CPU round trip with both sides submitting through the legacy helSubmitAsync syscall
// (completions still read from the dispatcher's queue).
void BM_Ipc_LegacySubmit_RoundTrip(benchmark::State &state) {
	round_trip<Submission::legacy>(state, {.cpus = 1, .cpu = 0}, 0);
}
BENCHMARK(BM_Ipc_LegacySubmit_RoundTrip)->UseRealTime();

// The same-CPU round trip on a one-CPU deterministic machine (default seeded scheduling,
// syscall entries and exits included): what deterministic mode costs. sim_ns/iter: the virtual
// time of one round trip by the default cost model.
void BM_Det_IpcRoundTrip(benchmark::State &state) {
	round_trip<Submission::sq>(state,
			{.cpus = 1, .cpu = 0, .mode = helsim::Mode::deterministic, .seed = 1}, 0);
}
BENCHMARK(BM_Det_IpcRoundTrip)->UseRealTime();

// The cross-CPU round trip on a two-CPU deterministic machine (client on CPU 1, server on
// CPU 0): real time is what simulating it costs on the one host thread, sim_ns/iter is the
// cost model's figure for it, cross-CPU wake-ups included.
void BM_Det_IpcRoundTrip_CrossCpu(benchmark::State &state) {
	round_trip<Submission::sq>(state,
			{.cpus = 2, .cpu = 1, .mode = helsim::Mode::deterministic, .seed = 1}, 0);
}
BENCHMARK(BM_Det_IpcRoundTrip_CrossCpu)->UseRealTime();

// ---------------------------------------------------------------- one-way messages

// Pipelined 64-byte messages: the sender keeps `in flight` sends submitted (through the SQ;
// each completion is reaped and replaced), the receiver keeps as many RecvInline submitted.
// Sender on CPU 0, receiver on CPU 1 of a two-CPU machine. One iteration is one message whose
// send completed (i.e. paired with a receive); the loop ends when the last one has.
void BM_Ipc_Throughput(benchmark::State &state) {
	const auto in_flight = static_cast<std::int64_t>(state.range(0));
	const auto total = static_cast<std::int64_t>(state.max_iterations);
	helsim::bench::Simulation simulation{state, {.cpus = 2, .cpu = 0, .name = "sender"}};
	auto [send_lane, recv_lane] = make_stream(simulation.machine());

	simulation.peer("receiver", 1,
			[&](std::span<const HelHandle> h) {
				helsim::Dispatcher dispatcher;
				std::int64_t submitted = 0;
				for (; submitted < std::min(in_flight, total); ++submitted)
					ipc::submit(dispatcher, h[0], static_cast<std::uintptr_t>(submitted),
							ipc::recv_inline());
				for (std::int64_t received = 0; received < total; ++received) {
					auto element = dispatcher.wait();
					expect(element.has_value(), "missing completion");
					auto [text] = ipc::parse<ipc::Leaf<ipc::InlineResult>>(*element);
					check(text.error, "receive");
					expect(text.data.size() == kMessage, "short message");
					element.reset(); // release the CQ chunk reference before resubmitting
					if (submitted < total)
						ipc::submit(dispatcher, h[0], static_cast<std::uintptr_t>(submitted++),
								ipc::recv_inline());
				}
			},
			{recv_lane});

	simulation.run(
			[&](helsim::bench::Loop &loop) {
				helsim::Dispatcher dispatcher;
				std::array<char, kMessage> message;
				message.fill('m');
				std::int64_t submitted = 0;
				auto send = [&] {
					ipc::submit(dispatcher, loop.handles()[0],
							static_cast<std::uintptr_t>(submitted++),
							ipc::send_buffer(message.data(), kMessage));
				};
				// Submitted here, handed to the kernel by the first wait() inside the loop.
				while (submitted < std::min(in_flight, total))
					send();
				for (auto _ : loop) {
					auto element = dispatcher.wait();
					expect(element.has_value(), "missing completion");
					auto [sent] = ipc::parse<ipc::Leaf<ipc::SimpleResult>>(*element);
					check(sent.error, "send");
					element.reset();
					if (submitted < total)
						send();
				}
			},
			{send_lane});
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Ipc_Throughput)->Arg(1)->Arg(8)->Arg(32)->UseRealTime();

// One-way sends of `bytes` into a RecvToBuffer, one at a time on each side (exchange_sync),
// both fibers on a one-CPU machine. Sends up to 4096 bytes are copied at submission, longer ones
// straight from the sender's buffer into the receiver's when they pair.
void BM_Ipc_Send(benchmark::State &state) {
	const auto bytes = static_cast<std::size_t>(state.range(0));
	const std::int64_t total = kWarmup + static_cast<std::int64_t>(state.max_iterations);
	helsim::bench::Simulation simulation{state, {.name = "sender"}};
	auto [send_lane, recv_lane] = make_stream(simulation.machine());

	simulation.peer("receiver", 0,
			[&](std::span<const HelHandle> h) {
				helsim::Dispatcher dispatcher;
				std::vector<char> buffer(bytes);
				for (std::int64_t i = 0; i < total; ++i) {
					auto exchange = ipc::exchange_sync(dispatcher, h[0],
							ipc::recv_buffer(buffer.data(), buffer.size()));
					auto &[received] = exchange.results;
					check(received.error, "receive");
					expect(received.length == bytes, "short receive");
				}
				expect(buffer.front() == 's' && buffer.back() == 's', "the data did not arrive");
			},
			{recv_lane});

	simulation.run(
			[&](helsim::bench::Loop &loop) {
				helsim::Dispatcher dispatcher;
				std::vector<char> buffer(bytes, 's');
				auto send = [&] {
					auto exchange = ipc::exchange_sync(dispatcher, loop.handles()[0],
							ipc::send_buffer(buffer.data(), buffer.size()));
					check(std::get<0>(exchange.results).error, "send");
				};
				for (std::int64_t i = 0; i < kWarmup; ++i)
					send();
				for (auto _ : loop)
					send();
			},
			{send_lane});
	state.SetBytesProcessed(state.iterations() * state.range(0));
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Ipc_Send)->Arg(1)->Arg(64)->Arg(4096)->Arg(65536)->Arg(1 << 20)->UseRealTime();

// ---------------------------------------------------------------- host baselines

bool read_full(int fd, void *buffer, std::size_t length) {
	auto *at = static_cast<char *>(buffer);
	while (length) {
		ssize_t n = read(fd, at, length);
		if (n <= 0)
			return false;
		at += n;
		length -= static_cast<std::size_t>(n);
	}
	return true;
}

bool write_full(int fd, const void *buffer, std::size_t length) {
	auto *at = static_cast<const char *>(buffer);
	while (length) {
		ssize_t n = write(fd, at, length);
		if (n <= 0)
			return false;
		at += n;
		length -= static_cast<std::size_t>(n);
	}
	return true;
}

// A 64-byte echo between the benchmark thread (`out` → `in`) and a partner thread
// (`partner_in` → `partner_out`); the partner stops at end of file on `partner_in`.
void echo_ping_pong(benchmark::State &state, int out, int in, int partner_in, int partner_out,
		void (*close_out)(int)) {
	std::thread partner{[=] {
		std::array<char, kMessage> buffer;
		while (read_full(partner_in, buffer.data(), buffer.size()))
			if (!write_full(partner_out, buffer.data(), buffer.size()))
				break;
	}};
	std::array<char, kMessage> message;
	message.fill('p');
	bool ok = true;
	for (auto _ : state) {
		ok = ok && write_full(out, message.data(), message.size()) &&
				read_full(in, message.data(), message.size());
	}
	close_out(out);
	partner.join();
	if (!ok)
		state.SkipWithError("read or write failed");
	state.SetItemsProcessed(state.iterations());
}

// Two host threads, two pipes, 64 bytes each way.
void BM_Host_PipePingPong(benchmark::State &state) {
	int there[2], back[2];
	if (pipe(there) != 0 || pipe(back) != 0) {
		state.SkipWithError("pipe failed");
		return;
	}
	echo_ping_pong(state, there[1], back[0], there[0], back[1], [](int fd) { close(fd); });
	close(there[0]);
	close(back[0]);
	close(back[1]);
}
BENCHMARK(BM_Host_PipePingPong)->UseRealTime();

// The pipe ping-pong with one CPU-hogging process beside it, the anchor of
// BM_Ipc_RoundTrip_CrossCpu_WithHog.
void BM_Host_PipePingPong_WithHog(benchmark::State &state) {
	helsim::bench::with_cpu_hog(state, BM_Host_PipePingPong);
}
BENCHMARK(BM_Host_PipePingPong_WithHog)->UseRealTime();

// Two host threads, socketpair(AF_UNIX, SOCK_STREAM), 64 bytes each way.
void BM_Host_UnixSocketPingPong(benchmark::State &state) {
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
		state.SkipWithError("socketpair failed");
		return;
	}
	echo_ping_pong(state, sv[0], sv[0], sv[1], sv[1], [](int fd) { shutdown(fd, SHUT_WR); });
	close(sv[0]);
	close(sv[1]);
}
BENCHMARK(BM_Host_UnixSocketPingPong)->UseRealTime();

// Two host threads, two eventfds: write 1, read it on the other side. 2 tells the partner to stop.
void BM_Host_EventfdPingPong(benchmark::State &state) {
	int ping = eventfd(0, 0), pong = eventfd(0, 0);
	if (ping < 0 || pong < 0) {
		state.SkipWithError("eventfd failed");
		return;
	}
	std::thread partner{[=] {
		std::uint64_t value = 0;
		while (read(ping, &value, sizeof(value)) == sizeof(value) && value == 1)
			if (write(pong, &value, sizeof(value)) != sizeof(value))
				break;
	}};
	bool ok = true;
	for (auto _ : state) {
		std::uint64_t value = 1;
		ok = ok && write(ping, &value, sizeof(value)) == sizeof(value) &&
				read(pong, &value, sizeof(value)) == sizeof(value) && value == 1;
	}
	std::uint64_t stop = 2;
	ok = write(ping, &stop, sizeof(stop)) == sizeof(stop) && ok;
	partner.join();
	close(ping);
	close(pong);
	if (!ok)
		state.SkipWithError("read or write failed");
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Host_EventfdPingPong)->UseRealTime();

// Turn word of the futex and spin ping-pongs: 0 idle, 1 ping, 2 pong, 3 stop.
enum : int { kIdle = 0, kPing = 1, kPong = 2, kStop = 3 };

long futex(int *word, int op, int value) {
	return syscall(SYS_futex, word, op, value, nullptr, nullptr, 0);
}

// Two host threads handing a turn back and forth through one int with raw futex calls: each
// side stores the new turn, wakes (always: a real syscall per hand-off) and waits until the
// turn changes.
void BM_Host_FutexPingPong(benchmark::State &state) {
	alignas(64) int turn = kIdle;
	std::thread partner{[&turn] {
		for (;;) {
			int seen;
			while ((seen = __atomic_load_n(&turn, __ATOMIC_ACQUIRE)) != kPing && seen != kStop)
				futex(&turn, FUTEX_WAIT_PRIVATE, seen);
			if (seen == kStop)
				return;
			__atomic_store_n(&turn, kPong, __ATOMIC_RELEASE);
			futex(&turn, FUTEX_WAKE_PRIVATE, 1);
		}
	}};
	for (auto _ : state) {
		__atomic_store_n(&turn, kPing, __ATOMIC_RELEASE);
		futex(&turn, FUTEX_WAKE_PRIVATE, 1);
		while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) == kPing)
			futex(&turn, FUTEX_WAIT_PRIVATE, kPing);
	}
	__atomic_store_n(&turn, kStop, __ATOMIC_RELEASE);
	futex(&turn, FUTEX_WAKE_PRIVATE, 1);
	partner.join();
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Host_FutexPingPong)->UseRealTime();

// Two host threads spinning on one cache line: the physical floor of a cross-core hand-off.
void BM_Host_SpinPingPong(benchmark::State &state) {
	alignas(64) int turn = kIdle;
	std::thread partner{[&turn] {
		for (;;) {
			int seen;
			while ((seen = __atomic_load_n(&turn, __ATOMIC_ACQUIRE)) != kPing && seen != kStop)
				__builtin_ia32_pause();
			if (seen == kStop)
				return;
			__atomic_store_n(&turn, kPong, __ATOMIC_RELEASE);
		}
	}};
	for (auto _ : state) {
		__atomic_store_n(&turn, kPing, __ATOMIC_RELEASE);
		while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) == kPing)
			__builtin_ia32_pause();
	}
	__atomic_store_n(&turn, kStop, __ATOMIC_RELEASE);
	partner.join();
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Host_SpinPingPong)->UseRealTime();

// Two Boost.Fiber fibers on the benchmark thread exchanging 64-byte messages through two
// buffered_channels: the user-space scheduling floor the same-CPU round trip is held against.
void BM_Host_BoostFiberChannelPingPong(benchmark::State &state) {
	namespace fibers = boost::fibers;
	using Message = std::array<char, kMessage>;
	fibers::buffered_channel<Message> ping{2}, pong{2};
	fibers::fiber partner{[&] {
		Message message;
		while (ping.pop(message) == fibers::channel_op_status::success)
			if (pong.push(message) != fibers::channel_op_status::success)
				break;
	}};
	Message message;
	message.fill('f');
	bool ok = true;
	for (auto _ : state) {
		ok = ok && ping.push(message) == fibers::channel_op_status::success &&
				pong.pop(message) == fibers::channel_op_status::success;
	}
	ping.close();
	partner.join();
	if (!ok)
		state.SkipWithError("a channel operation failed");
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Host_BoostFiberChannelPingPong)->UseRealTime();

} // namespace
