// Stress tests of streams (src/kernel/ipc/stream.cpp) in threads mode: real parallelism between
// simulated CPUs, many fibers in separate universes on one shared lane, and pipelined
// exchanges on one lane pair across two CPUs. Each test checks exactly-once delivery, that
// replies match requests, per-sender order, and that the machine ends clean: not stuck, every
// thread returned, no operation pending, nothing leaked.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../support.hpp"
#include "sim/sanitizers.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

namespace ipc = helsim::ipc;
using helsim::test::expect_clean;

constexpr bool kSanitized = helsim::sim::kTsan;

void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

helsim::MachineConfig with_cpus(unsigned n) {
	helsim::MachineConfig config;
	config.cpus = n;
	return config;
}

void pin_to(unsigned cpu) {
	std::uint8_t mask = static_cast<std::uint8_t>(1u << cpu);
	check(helSetAffinity(kHelThisThread, &mask, 1), "helSetAffinity");
}

// ---------------------------------------------------------------- server and clients

struct Request {
	std::uint32_t client;
	std::uint32_t seq;
	std::uint64_t token; // derived from (client, seq); the reply must transform it
};
struct Reply {
	std::uint32_t client;
	std::uint32_t seq;
	std::uint64_t answer;
};

std::uint64_t token_for(std::uint32_t client, std::uint32_t seq) {
	return (std::uint64_t{client} << 40) ^ (std::uint64_t{seq} * 0x9E3779B97F4A7C15ull);
}
std::uint64_t answer_for(std::uint64_t token) { return token * 3 + 1; }

constexpr std::uintptr_t kAcceptTag = std::uintptr_t{1} << 62;
constexpr std::uintptr_t kReplyTag = std::uintptr_t{2} << 62;
constexpr std::uintptr_t kTagMask = std::uintptr_t{3} << 62;

using AcceptItems = decltype(ipc::accept(ipc::recv_inline()));
using OfferItems = decltype(ipc::offer(ipc::send_buffer(nullptr, 0), ipc::recv_inline()));

struct ServerLog {
	// Written by the server fiber only; read after Machine::run().
	std::vector<std::vector<std::uint32_t>> arrivals; // per client, sequence numbers in order
	std::uint64_t bad_requests = 0;
	std::uint64_t failed_operations = 0;
	std::size_t max_conversations = 0;
};

// Keeps `accepts` accepts armed on the lane; answers each conversation with one send and
// closes it once the send completed.
void serve(HelHandle lane, int clients, int total, int accepts, ServerLog &log) {
	helsim::Dispatcher dispatcher;
	log.arrivals.assign(static_cast<std::size_t>(clients), {});
	std::vector<Reply> replies(static_cast<std::size_t>(total));
	int armed = 0, served = 0, replied = 0;
	auto arm = [&] {
		ipc::submit(dispatcher, lane, kAcceptTag | static_cast<std::uintptr_t>(armed),
				ipc::accept(ipc::recv_inline()));
		++armed;
	};
	while (armed < accepts && armed < total)
		arm();
	std::size_t open_conversations = 0;
	while (replied < total) {
		auto element = dispatcher.wait();
		if (!element)
			continue;
		std::uintptr_t context = element->context();
		if ((context & kTagMask) == kAcceptTag) {
			auto [conversation, request] = ipc::parse<AcceptItems>(*element);
			if (conversation.error != kHelErrNone || request.error != kHelErrNone) {
				++log.failed_operations;
				throw helsim::HelException{"accept",
						conversation.error ? conversation.error : request.error};
			}
			Request r{};
			if (request.data.size() != sizeof(Request)) {
				++log.bad_requests;
			} else {
				std::memcpy(&r, request.data.data(), sizeof(r));
				if (r.client >= static_cast<std::uint32_t>(clients) ||
						r.token != token_for(r.client, r.seq))
					++log.bad_requests;
				else
					log.arrivals[r.client].push_back(r.seq);
			}
			// The reply buffer must live until the kernel reads the SQ element; one per
			// request keeps it simple.
			Reply &reply = replies[static_cast<std::size_t>(served++)];
			reply = {r.client, r.seq, answer_for(r.token)};
			ipc::submit(dispatcher, conversation.handle,
					kReplyTag | static_cast<std::uintptr_t>(conversation.handle),
					ipc::send_buffer(&reply, sizeof(reply)));
			log.max_conversations = std::max(log.max_conversations, ++open_conversations);
			if (armed < total)
				arm();
		} else if ((context & kTagMask) == kReplyTag) {
			if (element->error() != kHelErrNone) {
				++log.failed_operations;
				throw helsim::HelException{"reply", element->error()};
			}
			auto conversation = static_cast<HelHandle>(context & ~kTagMask);
			check(helCloseDescriptor(kHelThisUniverse, conversation), "close conversation");
			--open_conversations;
			++replied;
		} else {
			throw std::logic_error("server: unknown completion");
		}
	}
	check(helCloseDescriptor(kHelThisUniverse, lane), "close server lane");
}

struct ClientLog {
	std::uint64_t replies = 0;
	std::uint64_t wrong_replies = 0;
};

// Sends `count` numbered requests, `window` of them in flight at once.
void request(std::uint32_t id, HelHandle lane, int count, int window, ClientLog &log) {
	helsim::Dispatcher dispatcher;
	std::vector<Request> requests(static_cast<std::size_t>(count));
	std::vector<bool> answered(static_cast<std::size_t>(count), false);
	int issued = 0, done = 0;
	auto issue = [&] {
		auto seq = static_cast<std::uint32_t>(issued);
		requests[seq] = {id, seq, token_for(id, seq)};
		ipc::submit(dispatcher, lane, seq,
				ipc::offer(ipc::send_buffer(&requests[seq], sizeof(Request)), ipc::recv_inline()));
		++issued;
	};
	while (issued < window && issued < count)
		issue();
	while (done < count) {
		auto element = dispatcher.wait();
		if (!element)
			continue;
		std::uintptr_t seq = element->context();
		if (seq >= static_cast<std::uintptr_t>(issued) || answered[seq])
			throw std::logic_error("client: unexpected completion");
		answered[seq] = true;
		auto [offered, sent, reply] = ipc::parse<OfferItems>(*element);
		check(offered.error, "offer");
		check(sent.error, "send request");
		check(reply.error, "receive reply");
		Reply r{};
		if (reply.data.size() == sizeof(Reply))
			std::memcpy(&r, reply.data.data(), sizeof(r));
		const Request &q = requests[seq];
		if (reply.data.size() != sizeof(Reply) || r.client != q.client || r.seq != q.seq ||
				r.answer != answer_for(q.token))
			++log.wrong_replies;
		++log.replies;
		++done;
		if (issued < count)
			issue();
	}
	check(helCloseDescriptor(kHelThisUniverse, lane), "close client lane");
}

void server_and_clients(unsigned cpus, int clients, int per_client) {
	helsim::Machine machine{with_cpus(cpus)};
	HelHandle server_lane, client_lane;
	{
		auto host = machine.attach();
		check(helCreateStream(&server_lane, &client_lane, 0), "helCreateStream");
	}
	ServerLog server_log;
	std::vector<ClientLog> client_logs(static_cast<std::size_t>(clients));
	const int total = clients * per_client;
	machine.spawn("server",
			[&](std::span<const HelHandle> h) { serve(h[0], clients, total, 6, server_log); },
			{server_lane});
	for (int id = 0; id < clients; ++id)
		machine.spawn("client" + std::to_string(id),
				[&, id](std::span<const HelHandle> h) {
					request(static_cast<std::uint32_t>(id), h[0], per_client, 1 + id % 4,
							client_logs[static_cast<std::size_t>(id)]);
				},
				{client_lane});
	{
		auto host = machine.attach();
		check(helCloseDescriptor(kHelThisUniverse, server_lane), "close");
		check(helCloseDescriptor(kHelThisUniverse, client_lane), "close");
	}
	auto start = std::chrono::steady_clock::now();
	auto report = machine.run();
	double seconds =
			std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
	std::printf("%d clients x %d requests on %u CPUs: %.3f s, %.0f round trips/s, up to %zu "
				"conversations open\n",
			clients, per_client, cpus, seconds, total / seconds, server_log.max_conversations);
	expect_clean(report);
	EXPECT_EQ(server_log.bad_requests, 0u);
	EXPECT_EQ(server_log.failed_operations, 0u);
	ASSERT_EQ(server_log.arrivals.size(), static_cast<std::size_t>(clients));
	for (int id = 0; id < clients; ++id) {
		SCOPED_TRACE("client " + std::to_string(id));
		const auto &arrivals = server_log.arrivals[static_cast<std::size_t>(id)];
		// Every request arrived exactly once, in the order the client sent them.
		ASSERT_EQ(arrivals.size(), static_cast<std::size_t>(per_client));
		for (int i = 0; i < per_client; ++i)
			if (arrivals[static_cast<std::size_t>(i)] != static_cast<std::uint32_t>(i)) {
				ADD_FAILURE() << "request " << arrivals[static_cast<std::size_t>(i)]
							  << " arrived in position " << i;
				break;
			}
		EXPECT_EQ(client_logs[static_cast<std::size_t>(id)].replies,
				static_cast<std::uint64_t>(per_client));
		EXPECT_EQ(client_logs[static_cast<std::size_t>(id)].wrong_replies, 0u);
	}
}

int requests_per_client() { return 2000; }

// ---------------------------------------------------------------- pipelined streaming

// Message i has size_of(i) bytes: a header with i, then a pattern derived from i.
std::size_t size_of(std::uint32_t i) {
	static const std::size_t sizes[] = {16, 128, 129, 1000, 4096, 4097, 20000, 65536, 24, 300};
	return sizes[i % std::size(sizes)];
}
char fill_of(std::uint32_t i, std::size_t at) {
	return static_cast<char>((i * 131 + at * 7) & 0xff);
}
constexpr std::size_t kMaxMessage = 65536;

struct StreamLog {
	std::uint64_t received = 0, out_of_order = 0, corrupt = 0, wrong_acks = 0, acks = 0;
	int cpu = -1;
};

// Sends `count` messages, `window` exchanges of [send message, receive ack] in flight.
void produce(HelHandle lane, unsigned cpu, std::uint32_t count, std::uint32_t window,
		StreamLog &log) {
	pin_to(cpu);
	check(helGetCurrentCpu(&log.cpu), "helGetCurrentCpu");
	helsim::Dispatcher dispatcher;
	// A streamed send reads its buffer when it pairs, so a slot is reused only after its
	// exchange completed.
	std::vector<std::vector<char>> slots(window, std::vector<char>(kMaxMessage));
	std::vector<std::uint32_t> free_slots;
	for (std::uint32_t s = 0; s < window; ++s)
		free_slots.push_back(s);
	std::uint32_t issued = 0, done = 0;
	while (done < count) {
		while (issued < count && !free_slots.empty()) {
			std::uint32_t slot = free_slots.back();
			free_slots.pop_back();
			auto &buffer = slots[slot];
			std::size_t size = size_of(issued);
			std::memcpy(buffer.data(), &issued, sizeof(issued));
			for (std::size_t k = sizeof(issued); k < size; ++k)
				buffer[k] = fill_of(issued, k);
			HelAction actions[2]{};
			actions[0].type = kHelActionSendFromBuffer;
			actions[0].flags = kHelItemChain;
			actions[0].buffer = buffer.data();
			actions[0].length = size;
			actions[1].type = kHelActionRecvInline;
			struct {
				HelSqExchangeMsgs header;
				HelAction actions[2];
			} request{{lane, 2, 0}, {actions[0], actions[1]}};
			dispatcher.submit(kHelSubmitExchangeMsgs, (std::uintptr_t{issued} << 8) | slot,
					request);
			++issued;
		}
		auto element = dispatcher.wait();
		if (!element)
			continue;
		std::uint32_t index = static_cast<std::uint32_t>(element->context() >> 8);
		std::uint32_t slot = static_cast<std::uint32_t>(element->context() & 0xff);
		auto sent = element->as<HelSimpleResult>(0);
		auto ack = element->as<HelInlineResultNoFlex>(8);
		check(sent.error, "send");
		check(ack.error, "receive ack");
		std::uint32_t acked = ~0u;
		if (ack.length == sizeof(acked))
			std::memcpy(&acked, element->payload().data() + 8 + sizeof(ack), sizeof(acked));
		if (acked != index)
			++log.wrong_acks;
		++log.acks;
		free_slots.push_back(slot);
		++done;
	}
	check(helCloseDescriptor(kHelThisUniverse, lane), "close producer lane");
}

// Receives `count` messages, `window` exchanges of [receive message, send ack] in flight;
// exchange j must receive message j.
void consume(HelHandle lane, unsigned cpu, std::uint32_t count, std::uint32_t window,
		StreamLog &log) {
	pin_to(cpu);
	check(helGetCurrentCpu(&log.cpu), "helGetCurrentCpu");
	helsim::Dispatcher dispatcher;
	std::vector<std::vector<char>> slots(window, std::vector<char>(kMaxMessage));
	std::vector<std::uint32_t> acks(window);
	std::vector<std::uint32_t> free_slots;
	for (std::uint32_t s = 0; s < window; ++s)
		free_slots.push_back(s);
	std::uint32_t issued = 0, done = 0, next_expected = 0;
	while (done < count) {
		while (issued < count && !free_slots.empty()) {
			std::uint32_t slot = free_slots.back();
			free_slots.pop_back();
			acks[slot] = issued;
			HelAction actions[2]{};
			actions[0].type = kHelActionRecvToBuffer;
			actions[0].flags = kHelItemChain;
			actions[0].buffer = slots[slot].data();
			actions[0].length = kMaxMessage;
			actions[1].type = kHelActionSendFromBuffer;
			actions[1].buffer = &acks[slot];
			actions[1].length = sizeof(std::uint32_t);
			struct {
				HelSqExchangeMsgs header;
				HelAction actions[2];
			} request{{lane, 2, 0}, {actions[0], actions[1]}};
			dispatcher.submit(kHelSubmitExchangeMsgs, (std::uintptr_t{issued} << 8) | slot,
					request);
			++issued;
		}
		auto element = dispatcher.wait();
		if (!element)
			continue;
		std::uint32_t index = static_cast<std::uint32_t>(element->context() >> 8);
		std::uint32_t slot = static_cast<std::uint32_t>(element->context() & 0xff);
		auto received = element->as<HelLengthResult>(0);
		auto acked = element->as<HelSimpleResult>(16);
		check(received.error, "receive");
		check(acked.error, "send ack");
		if (index != next_expected++)
			++log.out_of_order;
		const auto &buffer = slots[slot];
		std::uint32_t number = ~0u;
		std::memcpy(&number, buffer.data(), sizeof(number));
		bool ok = number == index && received.length == size_of(index);
		for (std::size_t k = sizeof(number); ok && k < received.length; ++k)
			ok = buffer[k] == fill_of(index, k);
		if (!ok)
			++log.corrupt;
		++log.received;
		free_slots.push_back(slot);
		++done;
	}
	check(helCloseDescriptor(kHelThisUniverse, lane), "close consumer lane");
}

} // namespace

TEST(StreamStress, ServerAndSevenClientsOnTwoCpus) {
	server_and_clients(2, 7, requests_per_client());
}

TEST(StreamStress, ServerAndEightClientsOnFourCpus) {
	server_and_clients(4, 8, requests_per_client());
}

TEST(StreamStress, PipelinedStreamingBetweenTwoCpus) {
	helsim::Machine machine{with_cpus(2)};
	HelHandle a, b;
	{
		auto host = machine.attach();
		check(helCreateStream(&a, &b, 0), "helCreateStream");
	}
	const std::uint32_t count = kSanitized ? 8000 : 20000;
	constexpr std::uint32_t kWindow = 8;
	StreamLog producer, consumer;
	machine.spawn("producer",
			[&](std::span<const HelHandle> h) { produce(h[0], 0, count, kWindow, producer); }, {a});
	machine.spawn("consumer",
			[&](std::span<const HelHandle> h) { consume(h[0], 1, count, kWindow, consumer); }, {b});
	{
		auto host = machine.attach();
		check(helCloseDescriptor(kHelThisUniverse, a), "close");
		check(helCloseDescriptor(kHelThisUniverse, b), "close");
	}
	auto start = std::chrono::steady_clock::now();
	auto report = machine.run();
	double seconds =
			std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
	std::printf("%u pipelined messages (window %u) between CPUs %d and %d: %.3f s\n", count,
			kWindow, producer.cpu, consumer.cpu, seconds);
	expect_clean(report);
	EXPECT_EQ(producer.cpu, 0);
	EXPECT_EQ(consumer.cpu, 1);
	EXPECT_EQ(consumer.received, count);
	EXPECT_EQ(consumer.out_of_order, 0u);
	EXPECT_EQ(consumer.corrupt, 0u);
	EXPECT_EQ(producer.acks, count);
	EXPECT_EQ(producer.wrong_acks, 0u);
}

// One exchange with two offers, each carrying a pull in its ancillary list, answered by two
// servers pinned to different CPUs: both pushes attach a descriptor to the same exchange at
// the same time, from different host threads.
TEST(StreamStress, TwoServersAnswerOneExchangeConcurrently) {
	helsim::Machine machine{with_cpus(2)};
	HelHandle server_lane, client_lane;
	{
		auto host = machine.attach();
		check(helCreateStream(&server_lane, &client_lane, 0), "helCreateStream");
	}
	const int rounds = kSanitized ? 2000 : 4000;
	std::uint64_t pulled[2] = {0, 0}, wrong = 0;
	for (unsigned cpu = 0; cpu < 2; ++cpu)
		machine.spawn("server" + std::to_string(cpu),
				[&, cpu](std::span<const HelHandle> h) {
					pin_to(cpu);
					helsim::Dispatcher dispatcher;
					HelHandle token;
					check(helCreateToken(&token), "helCreateToken");
					for (int i = 0; i < rounds; ++i) {
						auto accepted = ipc::exchange_sync(dispatcher, h[0], ipc::accept());
						auto &[conversation] = accepted.results;
						check(conversation.error, "accept");
						auto pushed = ipc::exchange_sync(dispatcher, conversation.handle,
								ipc::push_descriptor(token));
						check(std::get<0>(pushed.results).error, "push");
						check(helCloseDescriptor(kHelThisUniverse, conversation.handle), "close");
					}
					check(helCloseDescriptor(kHelThisUniverse, token), "close token");
					check(helCloseDescriptor(kHelThisUniverse, h[0]), "close server lane");
				},
				{server_lane});
	machine.spawn("client",
			[&](std::span<const HelHandle> h) {
				helsim::Dispatcher dispatcher;
				for (int i = 0; i < rounds; ++i) {
					auto exchange = ipc::exchange_sync(dispatcher, h[0],
							ipc::offer(ipc::pull_descriptor()), ipc::offer(ipc::pull_descriptor()));
					auto &[offer1, pull1, offer2, pull2] = exchange.results;
					check(offer1.error, "offer");
					check(offer2.error, "offer");
					int k = 0;
					for (auto *p : {&pull1, &pull2}) {
						check(p->error, "pull");
						HelDescriptorInfo info{-1};
						check(helDescriptorInfo(p->handle, &info), "helDescriptorInfo");
						if (info.type != kHelDescToken)
							++wrong;
						check(helCloseDescriptor(kHelThisUniverse, p->handle), "close pulled");
						++pulled[k++];
					}
				}
				check(helCloseDescriptor(kHelThisUniverse, h[0]), "close client lane");
			},
			{client_lane});
	{
		auto host = machine.attach();
		check(helCloseDescriptor(kHelThisUniverse, server_lane), "close");
		check(helCloseDescriptor(kHelThisUniverse, client_lane), "close");
	}
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(pulled[0], static_cast<std::uint64_t>(rounds));
	EXPECT_EQ(pulled[1], static_cast<std::uint64_t>(rounds));
	EXPECT_EQ(wrong, 0u);
}

// ---------------------------------------------------------------- lane ends racing pairings

namespace {

// A sender on CPU 0 streams numbered messages of 1 to 128 bytes to a receiver on CPU 1, which
// keeps a window of inline receives in flight, while the receiver's lane ends part-way: shut
// down by a third thread on CPU 0 (`shutdown`), or closed by the receiver with receives still
// in flight, so that the lane breaks when the last of them is freed (`close`). A pairing's
// object creation, copies and completions run after the stream lock, so these endings race
// with them. Every exchange completes exactly once (the machine ends with nothing pending); a
// send succeeds exactly when a receive got its message, in order and intact.
enum class LaneEnd { shutdown, close };

struct LaneEndLog {
	// Each field is written by one side only (the sender's, then the receiver's).
	std::uint64_t sent = 0, sender_wrong_errors = 0;
	std::uint64_t received = 0, out_of_order = 0, corrupt = 0, receiver_wrong_errors = 0;
};

std::vector<std::byte> numbered_message(std::uint64_t seq) {
	std::vector<std::byte> message(1 + seq % 128);
	for (std::size_t i = 0; i < message.size(); ++i)
		message[i] = static_cast<std::byte>(seq * 131 + i);
	return message;
}

void send_until_the_lane_ends(HelHandle lane, LaneEndLog &log) {
	pin_to(0);
	helsim::Dispatcher dispatcher;
	for (std::uint64_t seq = 0;; ++seq) {
		auto message = numbered_message(seq);
		auto exchange = ipc::exchange_sync(dispatcher, lane,
				ipc::send_buffer(message.data(), message.size()));
		HelError e = std::get<0>(exchange.results).error;
		if (e != kHelErrNone) {
			log.sender_wrong_errors += e != kHelErrEndOfLane;
			break;
		}
		++log.sent;
	}
	check(helCloseDescriptor(kHelThisUniverse, lane), "close sender lane");
}

void receive_until_the_lane_ends(HelHandle lane, LaneEnd end, std::uint64_t close_after,
		LaneEndLog &log) {
	pin_to(1);
	constexpr std::uint32_t kWindow = 4;
	helsim::Dispatcher dispatcher;
	std::uintptr_t next_context = 0;
	std::uint32_t in_flight = 0;
	auto receive = [&] {
		ipc::submit(dispatcher, lane, next_context++, ipc::recv_inline());
		++in_flight;
	};
	for (std::uint32_t i = 0; i < kWindow; ++i)
		receive();
	bool ended = false, closed = false;
	while (in_flight) {
		auto element = dispatcher.wait();
		if (!element)
			throw std::runtime_error("the receiver's wait was interrupted");
		--in_flight;
		auto [received] = ipc::parse<ipc::Leaf<ipc::InlineResult>>(*element);
		if (received.error != kHelErrNone) {
			log.receiver_wrong_errors +=
					received.error != kHelErrEndOfLane && received.error != kHelErrLaneShutdown;
			ended = true;
		} else {
			auto expected = numbered_message(log.received);
			if (received.data.size() != expected.size())
				++log.out_of_order;
			else if (!std::equal(expected.begin(), expected.end(), received.data.begin()))
				++log.corrupt;
			++log.received;
		}
		if (end == LaneEnd::close && !closed && log.received >= close_after) {
			// The receives in flight keep the lane alive; it breaks when the last is freed.
			// Those still in the SQ go to the kernel first, while the handle is open.
			dispatcher.flush();
			check(helCloseDescriptor(kHelThisUniverse, lane), "close receiver lane");
			closed = true;
		}
		if (!ended && !closed)
			receive();
	}
	if (!closed)
		check(helCloseDescriptor(kHelThisUniverse, lane), "close receiver lane");
}

LaneEndLog race_lane_end(const helsim::MachineConfig &config, LaneEnd end, std::uint64_t after) {
	helsim::Machine machine{config};
	HelHandle a, b;
	{
		auto host = machine.attach();
		check(helCreateStream(&a, &b, 0), "helCreateStream");
	}
	LaneEndLog log;
	machine.spawn("sender",
			[&](std::span<const HelHandle> h) { send_until_the_lane_ends(h[0], log); }, {a});
	machine.spawn("receiver",
			[&](std::span<const HelHandle> h) {
				receive_until_the_lane_ends(h[0], end, after, log);
			},
			{b});
	if (end == LaneEnd::shutdown)
		machine.spawn("shutter",
				[&](std::span<const HelHandle> h) {
					pin_to(0);
					for (std::uint64_t i = 0; i < after; ++i)
						check(helYield(), "helYield");
					check(helShutdownLane(h[0]), "helShutdownLane");
					check(helCloseDescriptor(kHelThisUniverse, h[0]), "close");
				},
				{b});
	{
		auto host = machine.attach();
		check(helCloseDescriptor(kHelThisUniverse, a), "close");
		check(helCloseDescriptor(kHelThisUniverse, b), "close");
	}
	expect_clean(machine.run());
	EXPECT_EQ(log.sent, log.received);
	EXPECT_EQ(log.out_of_order, 0u);
	EXPECT_EQ(log.corrupt, 0u);
	EXPECT_EQ(log.sender_wrong_errors, 0u);
	EXPECT_EQ(log.receiver_wrong_errors, 0u);
	return log;
}

} // namespace

TEST(StreamStress, LaneShutdownRacesPairingsOnTwoCpus) {
	const std::uint64_t rounds = kSanitized ? 100 : 400;
	for (std::uint64_t round = 0; round < rounds; ++round)
		race_lane_end(with_cpus(2), LaneEnd::shutdown, round % 40);
}

TEST(StreamStress, LaneCloseRacesPairingsOnTwoCpus) {
	const std::uint64_t rounds = kSanitized ? 100 : 400;
	for (std::uint64_t round = 0; round < rounds; ++round)
		race_lane_end(with_cpus(2), LaneEnd::close, round % 40);
}

TEST(StreamStress, LaneEndsRacePairingsUnderSeeds) {
	helsim::testing::for_each_seed([](std::uint64_t seed) {
		race_lane_end(helsim::testing::deterministic(seed), LaneEnd::shutdown, seed % 40);
		race_lane_end(helsim::testing::deterministic(seed), LaneEnd::close, seed % 40);
	});
}
