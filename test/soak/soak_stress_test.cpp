// The soak (issue 18, item 5): threads mode on every host core, dozens of fibers mixing stream
// round trips, descriptor pushes, memory faults and copy-on-write, futex hand-offs and queue
// operations for a bounded time (HELSIM_SOAK_SECONDS, default 2). The seed loop picks each
// soak's mix, so HELSIM_SEEDS runs more soaks and HELSIM_SHARD spreads them over machines like
// any seed sweep (docs/testing.md, "Soak"). At the end: every exchange and nop completed exactly
// once, as many messages received as sent with equal checksums, every pushed descriptor pulled
// with the rights it was pushed with, the machine clean (nothing stuck, pending or leaked).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

#include "sim/split_mix.hpp"

namespace {

namespace ipc = helsim::ipc;
using namespace helsim::test;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kPushedRights = kHelRightRead | kHelRightAssign;

// The mix depends on the seed only, as the seed loop's scheduler does.
struct Rng : helsim::sim::SplitMix64 {
	using SplitMix64::SplitMix64;
	unsigned between(unsigned low, unsigned high) {
		return low + static_cast<unsigned>(next() % (high - low + 1));
	}
};

std::uint64_t checksum(const void *data, std::size_t length) {
	std::uint64_t hash = 0xcbf29ce484222325;
	for (std::size_t i = 0; i < length; ++i)
		hash = (hash ^ static_cast<const unsigned char *>(data)[i]) * 0x100000001b3;
	return hash;
}

// HELSIM_SOAK_SECONDS, or 2; 0 when the value is not a positive whole number of seconds.
unsigned soak_seconds() {
	const char *text = std::getenv("HELSIM_SOAK_SECONDS");
	if (!text || !*text)
		return 2;
	char *end = nullptr;
	unsigned long value = std::strtoul(text, &end, 10);
	return *end || value == 0 || value > 1'000'000 || *text == '-' ? 0
																   : static_cast<unsigned>(value);
}

// The mix of one soak, chosen by its seed.
struct Mix {
	unsigned stream_pairs, memory_workers, futex_pairs, nop_workers, max_payload;
	explicit Mix(std::uint64_t seed) {
		Rng rng{seed};
		stream_pairs = rng.between(8, 24);
		memory_workers = rng.between(4, 12);
		futex_pairs = rng.between(4, 12);
		nop_workers = rng.between(2, 6);
		max_payload = rng.between(16, 120);
	}
	unsigned threads() const {
		return 2 * stream_pairs + memory_workers + 2 * futex_pairs + nop_workers;
	}
};

// Every counter is written by one fiber and read after Machine::run() joined them all.
struct StreamPair {
	std::uint64_t seed = 0;
	Clock::time_point deadline;
	unsigned max_payload = 0;
	HelHandle server_lane = kHelNullHandle;
	std::uint64_t sent = 0, received = 0, sent_sum = 0, received_sum = 0;
	std::uint64_t pushed = 0, pulled = 0, bad_replies = 0, bad_pulls = 0;
};

struct FutexPair {
	Clock::time_point deadline;
	int turn = 0; // 0: the first thread's move, 1: the partner's, 2: stop
	std::uint64_t handoffs[2] = {0, 0};
};

struct Worker {
	std::uint64_t seed = 0;
	Clock::time_point deadline;
	std::uint64_t rounds = 0, bad = 0;
};

void unexpected(helsim::Element &&element) {
	ADD_FAILURE() << "a completion nobody waits for: context " << element.context();
}

// Creates a thread in the caller's universe and space, and returns its handle.
HelHandle start_thread(void (*entry)(std::uintptr_t), void *argument) {
	HelHandle thread = kHelNullHandle;
	EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
					  reinterpret_cast<void *>(entry), argument, 0, &thread),
			kHelErrNone);
	return thread;
}

// Waits until the thread has ended, then closes its handle: closing a running thread's last
// handle would kill it.
void join(helsim::Dispatcher &dispatcher, HelHandle thread) {
	auto element = sq_call(dispatcher, kHelSubmitObserve, HelSqObserve{thread});
	EXPECT_EQ(element.error(), kHelErrThreadTerminated);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, thread), kHelErrNone);
}

// ---------------------------------------------------------------- streams and pushes

// Messages start with a kind byte: data (the reply is its checksum), a push (a descriptor
// follows in the same exchange; the tag of its memory after the kind byte), or stop.
constexpr char kData = 'D', kPush = 'P', kStop = 'S';

void stream_server(std::uintptr_t argument) {
	auto &pair = *reinterpret_cast<StreamPair *>(argument);
	helsim::Dispatcher dispatcher;
	for (;;) {
		auto message = ipc::exchange_sync_with(dispatcher, pair.server_lane, unexpected,
				ipc::recv_inline());
		auto &[received] = message.results;
		if (received.error != kHelErrNone || received.data.empty()) {
			ADD_FAILURE() << "recv_inline: " << received.error;
			return;
		}
		char kind = static_cast<char>(received.data[0]);
		if (kind == kStop)
			return;
		if (kind == kPush) {
			std::uint64_t tag = 0;
			std::memcpy(&tag, received.data.data() + 1, sizeof(tag));
			auto pull = ipc::exchange_sync_with(dispatcher, pair.server_lane, unexpected,
					ipc::pull_descriptor(kPushedRights));
			auto &[handle] = pull.results;
			++pair.pulled;
			bool good =
					handle.error == kHelErrNone && info_of(handle.handle).rights == kPushedRights;
			void *pointer = nullptr;
			good = good &&
					helMapMemory(handle.handle, kHelNullHandle, nullptr, 0, kPage, kHelMapProtRead,
							&pointer) == kHelErrNone;
			if (good) {
				good = *static_cast<volatile std::uint64_t *>(pointer) == tag;
				EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, kPage), kHelErrNone);
			}
			if (handle.error == kHelErrNone) {
				EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, handle.handle), kHelErrNone);
			}
			pair.bad_pulls += !good;
			continue;
		}
		++pair.received;
		std::uint64_t sum = checksum(received.data.data(), received.data.size());
		pair.received_sum += sum;
		auto reply = ipc::exchange_sync_with(dispatcher, pair.server_lane, unexpected,
				ipc::send_buffer(&sum, sizeof(sum)));
		EXPECT_EQ(std::get<0>(reply.results).error, kHelErrNone);
	}
}

// A memory object of one page whose first word is `tag`.
HelHandle tagged_memory(std::uint64_t tag) {
	HelHandle memory = kHelNullHandle;
	void *pointer = map_new_memory(kPage, &memory);
	*static_cast<volatile std::uint64_t *>(pointer) = tag;
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, kPage), kHelErrNone);
	return memory;
}

void stream_client(StreamPair &pair) {
	HelHandle lane = kHelNullHandle;
	ASSERT_EQ(helCreateStream(&lane, &pair.server_lane, 0), kHelErrNone);
	HelHandle server = start_thread(&stream_server, &pair);
	helsim::Dispatcher dispatcher;
	Rng rng{pair.seed};
	char message[128];
	for (std::uint64_t round = 0; Clock::now() < pair.deadline; ++round) {
		if (round % 16 == 15) {
			std::uint64_t tag = rng.next();
			HelHandle memory = tagged_memory(tag);
			message[0] = kPush;
			std::memcpy(message + 1, &tag, sizeof(tag));
			auto push = ipc::exchange_sync_with(dispatcher, lane, unexpected,
					ipc::send_buffer(message, 1 + sizeof(tag)),
					ipc::push_descriptor(memory, kPushedRights));
			auto &[sent, pushed] = push.results;
			EXPECT_EQ(sent.error, kHelErrNone);
			EXPECT_EQ(pushed.error, kHelErrNone);
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
			++pair.pushed;
			continue;
		}
		std::size_t length = rng.between(1, pair.max_payload);
		message[0] = kData;
		for (std::size_t i = 1; i < length; ++i)
			message[i] = static_cast<char>(rng.next());
		std::uint64_t sum = checksum(message, length);
		auto exchange = ipc::exchange_sync_with(dispatcher, lane, unexpected,
				ipc::send_buffer(message, length), ipc::recv_inline());
		auto &[sent, reply] = exchange.results;
		++pair.sent;
		pair.sent_sum += sum;
		std::uint64_t answer = 0;
		if (sent.error == kHelErrNone && reply.error == kHelErrNone &&
				reply.data.size() == sizeof(answer))
			std::memcpy(&answer, reply.data.data(), sizeof(answer));
		pair.bad_replies += answer != sum;
	}
	message[0] = kStop;
	auto stop = ipc::exchange_sync_with(dispatcher, lane, unexpected, ipc::send_buffer(message, 1));
	EXPECT_EQ(std::get<0>(stop.results).error, kHelErrNone);
	join(dispatcher, server);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, lane), kHelErrNone);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, pair.server_lane), kHelErrNone);
}

// ---------------------------------------------------------------- memory

// Allocates, faults every page in with a pattern, takes a copy-on-write view, writes the copy
// and checks that the original kept its pattern; unmaps and closes both.
void memory_worker(Worker &worker) {
	Rng rng{worker.seed};
	for (; Clock::now() < worker.deadline; ++worker.rounds) {
		std::size_t size = rng.between(1, 4) * kPage;
		std::uint64_t pattern = rng.next();
		HelHandle memory = kHelNullHandle;
		auto *original = static_cast<std::uint64_t *>(map_new_memory(size, &memory));
		for (std::size_t i = 0; i < size / 8; i += 64)
			original[i] = pattern + i;
		HelHandle copy = kHelNullHandle;
		void *mapped = nullptr;
		ASSERT_EQ(helCopyOnWrite(memory, 0, size, &copy), kHelErrNone);
		ASSERT_EQ(helMapMemory(copy, kHelNullHandle, nullptr, 0, size,
						  kHelMapProtRead | kHelMapProtWrite, &mapped),
				kHelErrNone);
		auto *copied = static_cast<std::uint64_t *>(mapped);
		for (std::size_t i = 0; i < size / 8; i += 64) {
			worker.bad += copied[i] != pattern + i;
			copied[i] = ~pattern;
		}
		for (std::size_t i = 0; i < size / 8; i += 64)
			worker.bad += original[i] != pattern + i;
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, mapped, size), kHelErrNone);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, original, size), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, copy), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
		// Fibers are not preempted: a worker that never blocks must let the others run.
		EXPECT_EQ(helYield(), kHelErrNone);
	}
}

// ---------------------------------------------------------------- futexes

// Waits until it is `side`'s move (true) or the pair stops (false).
bool await_turn(FutexPair &pair, int side) {
	for (int v = load(&pair.turn); v != side; v = load(&pair.turn)) {
		if (v == 2)
			return false;
		HelError e = helFutexWait(&pair.turn, v, kHelWaitInfinite);
		EXPECT_TRUE(e == kHelErrNone || e == kHelErrFutexRace) << e;
	}
	return true;
}

void futex_partner(std::uintptr_t argument) {
	auto &pair = *reinterpret_cast<FutexPair *>(argument);
	while (await_turn(pair, 1)) {
		++pair.handoffs[1];
		store(&pair.turn, 0);
		EXPECT_EQ(helFutexWake(&pair.turn, 1), kHelErrNone);
	}
}

void futex_first(FutexPair &pair) {
	HelHandle partner = start_thread(&futex_partner, &pair);
	while (await_turn(pair, 0)) {
		bool stop = Clock::now() >= pair.deadline;
		if (!stop)
			++pair.handoffs[0];
		store(&pair.turn, stop ? 2 : 1);
		EXPECT_EQ(helFutexWake(&pair.turn, 1), kHelErrNone);
		if (stop)
			break;
	}
	helsim::Dispatcher dispatcher;
	join(dispatcher, partner);
}

// ---------------------------------------------------------------- queue operations

// Batches of async nops through the SQ; each context must come back exactly once.
void nop_worker(Worker &worker) {
	Rng rng{worker.seed};
	helsim::Dispatcher dispatcher;
	for (std::uintptr_t base = 0; Clock::now() < worker.deadline; base += 8) {
		unsigned batch = rng.between(1, 8);
		for (unsigned i = 0; i < batch; ++i)
			dispatcher.submit(kHelSubmitAsyncNop, base + i, std::span<const std::byte>{});
		dispatcher.flush();
		unsigned seen = 0;
		for (unsigned left = batch; left > 0;) {
			auto element = dispatcher.wait();
			if (!element)
				continue;
			std::uintptr_t offset = element->context() - base;
			bool fresh = offset < batch && !(seen & (1u << offset));
			worker.bad += !fresh || element->error() != kHelErrNone;
			seen |= fresh ? 1u << offset : 0;
			--left;
		}
		worker.rounds += batch;
		EXPECT_EQ(helYield(), kHelErrNone);
	}
}

// ---------------------------------------------------------------- the soak

void soak(std::uint64_t seed, unsigned seconds) {
	Mix mix{seed};
	helsim::MachineConfig config;
	config.cpus = std::max(2u, std::thread::hardware_concurrency());
	helsim::Machine machine{config};
	Clock::time_point deadline = Clock::now() + std::chrono::seconds(seconds);
	Rng rng{seed ^ 0x5eed};
	std::deque<StreamPair> pairs(mix.stream_pairs);
	std::deque<FutexPair> futexes(mix.futex_pairs);
	std::deque<Worker> memory(mix.memory_workers), nops(mix.nop_workers);
	for (StreamPair &pair : pairs) {
		pair.seed = rng.next();
		pair.deadline = deadline;
		pair.max_payload = mix.max_payload;
		machine.spawn("stream", [&pair](auto) { stream_client(pair); });
	}
	for (FutexPair &pair : futexes) {
		pair.deadline = deadline;
		machine.spawn("futex", [&pair](auto) { futex_first(pair); });
	}
	for (Worker &worker : memory) {
		worker = {rng.next(), deadline, 0, 0};
		machine.spawn("memory", [&worker](auto) { memory_worker(worker); });
	}
	for (Worker &worker : nops) {
		worker = {rng.next(), deadline, 0, 0};
		machine.spawn("nops", [&worker](auto) { nop_worker(worker); });
	}
	Clock::time_point begin = Clock::now();
	auto report = machine.run();
	double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
	expect_clean(report);

	std::uint64_t round_trips = 0, pushes = 0, handoffs = 0, memory_rounds = 0, nop_count = 0;
	for (const StreamPair &pair : pairs) {
		EXPECT_EQ(pair.sent, pair.received) << "messages lost or duplicated";
		EXPECT_EQ(pair.sent_sum, pair.received_sum) << "payloads changed on the way";
		EXPECT_EQ(pair.pushed, pair.pulled) << "descriptors lost or duplicated";
		EXPECT_EQ(pair.bad_replies, 0u);
		EXPECT_EQ(pair.bad_pulls, 0u) << "a pulled descriptor with other rights or memory";
		round_trips += pair.sent;
		pushes += pair.pushed;
	}
	for (const FutexPair &pair : futexes) {
		EXPECT_EQ(pair.handoffs[0], pair.handoffs[1]) << "a futex hand-off lost";
		handoffs += pair.handoffs[0] + pair.handoffs[1];
	}
	for (const Worker &worker : memory) {
		EXPECT_EQ(worker.bad, 0u) << "copy-on-write memory with the wrong contents";
		memory_rounds += worker.rounds;
	}
	for (const Worker &worker : nops) {
		EXPECT_EQ(worker.bad, 0u) << "a nop completed twice, never, or with an error";
		nop_count += worker.rounds;
	}
	std::uint64_t operations = round_trips + pushes + handoffs + memory_rounds + nop_count;
	std::printf("helsim: soak seed %llu: %u threads on %u cpus, %.1f s, %llu operations "
				"(%llu round trips, %llu pushes, %llu memory rounds, %llu futex hand-offs, %llu "
				"nops), %.0f operations/s\n",
			static_cast<unsigned long long>(seed), mix.threads(), config.cpus, elapsed,
			static_cast<unsigned long long>(operations),
			static_cast<unsigned long long>(round_trips), static_cast<unsigned long long>(pushes),
			static_cast<unsigned long long>(memory_rounds),
			static_cast<unsigned long long>(handoffs), static_cast<unsigned long long>(nop_count),
			static_cast<double>(operations) / elapsed);
	std::fflush(stdout);
	EXPECT_GT(round_trips, 0u);
	EXPECT_GT(memory_rounds, 0u);
}

TEST(SoakStress, MixedWorkloadOnEveryCpu) {
	unsigned seconds = soak_seconds();
	ASSERT_NE(seconds, 0u) << "HELSIM_SOAK_SECONDS=\"" << std::getenv("HELSIM_SOAK_SECONDS")
						   << "\" is not a whole number of seconds from 1 to 1000000";
	helsim::testing::for_each_seed([&](std::uint64_t seed) { soak(seed, seconds); }, 1);
}

} // namespace
