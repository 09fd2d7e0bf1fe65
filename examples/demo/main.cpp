// The main demo: an echo server and three clients, each in its own universe, on a machine
// with two simulated CPUs. Every request opens a conversation with offer/accept on the
// server's lane, sends the request and receives the reply inline, as Managarm servers do.
//
// It prints the summary first, then each client's figures and why they differ, then the run
// report. A client's figure is its own elapsed time divided by its requests: the round trip
// as that client saw it, including the time the server spent on the other clients.
#include <array>
#include <chrono>
#include <cstdio>
#include <string>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

namespace ipc = helsim::ipc;

namespace {

constexpr int kClients = 3;
constexpr int kRequestsPerClient = 20000;

// What each client measured, read by main() after run(). helGetClock counts from the
// machine's creation.
struct ClientResult {
	int cpu = -1;
	std::uint64_t start_ns = 0;
	std::uint64_t end_ns = 0;
	std::string last_reply;

	double round_trip_ns() const {
		return static_cast<double>(end_ns - start_ns) / kRequestsPerClient;
	}
};

std::array<ClientResult, kClients> results;
int server_cpu = -1;

void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

void server(HelHandle lane) {
	helsim::Dispatcher dispatcher;
	check(helGetCurrentCpu(&server_cpu), "helGetCurrentCpu");
	for (int served = 0; served < kClients * kRequestsPerClient; ++served) {
		auto request = ipc::exchange_sync(dispatcher, lane, ipc::accept(ipc::recv_inline()));
		auto &[conversation, text] = request.results;
		check(conversation.error, "accept");
		check(text.error, "receive request");
		std::string reply = "echo " + std::string{text.text()};
		auto sent = ipc::exchange_sync(dispatcher, conversation.handle, ipc::send_buffer(reply));
		check(std::get<0>(sent.results).error, "send reply");
		check(helCloseDescriptor(kHelThisUniverse, conversation.handle), "close conversation");
	}
}

void client(int id, HelHandle lane) {
	helsim::Dispatcher dispatcher;
	ClientResult &result = results[id];
	// A fiber stays on the CPU it was placed on (no migration in threads mode).
	check(helGetCurrentCpu(&result.cpu), "helGetCurrentCpu");
	check(helGetClock(&result.start_ns), "helGetClock");
	for (int i = 0; i < kRequestsPerClient; ++i) {
		std::string request = "client " + std::to_string(id) + " request " + std::to_string(i);
		auto exchange = ipc::exchange_sync(dispatcher, lane,
				ipc::offer(ipc::send_buffer(request), ipc::recv_inline()));
		auto &[offered, sent, reply] = exchange.results;
		check(offered.error, "offer");
		check(sent.error, "send request");
		check(reply.error, "receive reply");
		if (reply.text() != "echo " + request)
			throw std::runtime_error("client got a reply to someone else's request");
		result.last_reply = reply.text();
	}
	check(helGetClock(&result.end_ns), "helGetClock");
}

// Mean round trip of the clients that share the server's CPU (same = true) or do not.
double mean_round_trip(bool same) {
	double sum = 0;
	int n = 0;
	for (const auto &r : results) {
		if ((r.cpu == server_cpu) == same) {
			sum += r.round_trip_ns();
			++n;
		}
	}
	return n ? sum / n : 0;
}

} // namespace

int main() {
	helsim::MachineConfig config;
	config.cpus = 2;
	helsim::Machine machine{config};
	HelHandle server_lane, client_lane;
	{
		// The host sets the stage from the root universe, then hands each party its lane.
		auto host = machine.attach();
		check(helCreateStream(&server_lane, &client_lane, 0), "helCreateStream");
	}
	machine.spawn("server", [](std::span<const HelHandle> h) { server(h[0]); }, {server_lane});
	for (int id = 0; id < kClients; ++id)
		machine.spawn("client" + std::to_string(id),
				[id](std::span<const HelHandle> h) { client(id, h[0]); }, {client_lane});

	auto start = std::chrono::steady_clock::now();
	helsim::RunReport report = machine.run();
	auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

	bool ok = !report.stuck && report.operations_pending() == 0 && report.leaks.empty();
	for (const auto &t : report.threads)
		ok = ok && t.outcome == helsim::ThreadOutcome::returned;

	// 1. The summary.
	std::printf("helsim demo: 1 server, %d clients, separate universes, %u simulated CPUs "
				"(threads mode)\n",
			kClients, config.cpus);
	std::printf("%d requests (%d a client) served in %.3f s: %.0f round trips/s overall\n",
			kClients * kRequestsPerClient, kRequestsPerClient, elapsed,
			kClients * kRequestsPerClient / elapsed);
	std::printf("%s\n\n",
			ok ? "all threads returned, nothing pending, nothing leaked" : "PROBLEMS: see below");

	// 2. Each client, and why their figures differ.
	std::printf("per client (the server ran on CPU %d):\n", server_cpu);
	for (int id = 0; id < kClients; ++id) {
		const ClientResult &r = results[id];
		std::printf("  client %d on CPU %d%s: %.0f ns a round trip, done at %.0f ms; last reply "
					"\"%s\"\n",
				id, r.cpu, r.cpu == server_cpu ? " (with the server)" : "", r.round_trip_ns(),
				r.end_ns / 1e6, r.last_reply.c_str());
	}
	std::printf("  mean round trip: %.0f ns on the server's CPU, %.0f ns on the other CPU\n\n",
			mean_round_trip(true), mean_round_trip(false));
	std::printf(
			"why they differ: each client times its own round trips, which include the\n"
			"server's work for the other clients. A client on the server's CPU hands over to it\n"
			"by a fiber switch; one on the other CPU waits, each way, until that CPU's host\n"
			"thread notices the hand-off: microseconds, more when the host is busy.\n\n");

	// 3. The whole report.
	std::printf("run report:\n%s", report.to_string().c_str());
	return ok ? 0 : 1;
}
