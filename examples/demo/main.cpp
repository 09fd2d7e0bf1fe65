// The main demo: an echo server and three clients, each in its own universe, on a machine
// with two simulated CPUs. Every request opens a conversation with offer/accept on the
// server's lane, sends the request and receives the reply inline, as Managarm servers do.
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

void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

void server(HelHandle lane) {
	helsim::Dispatcher dispatcher;
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
	std::string last_reply;
	uint64_t start, end;
	check(helGetClock(&start), "helGetClock");
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
		last_reply = reply.text();
	}
	check(helGetClock(&end), "helGetClock");
	int cpu = -1;
	helGetCurrentCpu(&cpu);
	std::string line = "client " + std::to_string(id) + " (now on CPU " + std::to_string(cpu) +
			"): " + std::to_string(kRequestsPerClient) + " round trips, " +
			std::to_string((end - start) / kRequestsPerClient) + " ns each; last reply \"" +
			last_reply + "\"";
	helLog(kHelLogSeverityInfo, line.data(), line.size());
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

	std::printf("\nhelsim demo: 1 server, %d clients, separate universes, 2 simulated CPUs\n",
			kClients);
	std::printf("%d requests served in %.3f s: %.0f round trips/s overall\n\n",
			kClients * kRequestsPerClient, elapsed, kClients * kRequestsPerClient / elapsed);
	std::printf("run report:\n%s", report.to_string().c_str());
	bool ok = !report.stuck && report.operations_pending() == 0 && report.leaks.empty();
	for (const auto &t : report.threads)
		ok = ok && t.outcome == helsim::ThreadOutcome::returned;
	std::printf("%s\n",
			ok ? "all threads returned, nothing pending, nothing leaked" : "PROBLEMS above");
	return ok ? 0 : 1;
}
