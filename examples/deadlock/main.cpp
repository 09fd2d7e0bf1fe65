// A protocol mistake that deadlocks, and what helsim says about it. A client opens a session
// with a server over a request lane and waits for the reply; it serves callbacks on a second
// lane only once the session is open. The server, before it replies, calls back to ask who
// the client is. Each side now waits in helDriveQueue for the other. Machine::run() notices
// that nothing can run any more and reports each blocked thread with the queue it drives and
// the operations still pending there, on which lane. The run is traced too: the Chrome trace
// JSON opens in the Perfetto UI (docs/tracing.md) and shows both threads' last syscalls
// never returning.
//
//   ./deadlock [trace.json]   exit 0 when the report names both waits (and the trace, if a
//                             path is given, was written)
#include <cstdio>
#include <string>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

namespace ipc = helsim::ipc;

namespace {

void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

// Opens a session, then would answer the server's callbacks.
void client(HelHandle requests, HelHandle callbacks) {
	helsim::Dispatcher dispatcher;
	auto open = ipc::exchange_sync(dispatcher, requests,
			ipc::send_buffer(std::string_view{"open session"}), ipc::recv_inline());
	check(std::get<1>(open.results).error, "receive the session");
	auto question = ipc::exchange_sync(dispatcher, callbacks, ipc::recv_inline());
	check(std::get<0>(question.results).error, "receive a callback");
	ipc::exchange_sync(dispatcher, callbacks, ipc::send_buffer(std::string_view{"client 1"}));
}

// Takes the request, then calls back before it replies: the mistake.
void server(HelHandle requests, HelHandle callbacks) {
	helsim::Dispatcher dispatcher;
	auto request = ipc::exchange_sync(dispatcher, requests, ipc::recv_inline());
	check(std::get<0>(request.results).error, "receive the request");
	auto who = ipc::exchange_sync(dispatcher, callbacks,
			ipc::send_buffer(std::string_view{"who are you?"}), ipc::recv_inline());
	check(std::get<1>(who.results).error, "receive the answer");
	ipc::exchange_sync(dispatcher, requests, ipc::send_buffer(std::string_view{"session 7"}));
}

// Whether the report has `thread` blocked with `pending` among the operations on its queue.
bool names_wait(const helsim::RunReport &report, const std::string &thread,
		const std::string &pending) {
	for (const auto &t : report.threads)
		if (t.name == thread)
			return t.outcome == helsim::ThreadOutcome::blocked &&
					t.waits_on.find("pending there: " + pending) != std::string::npos;
	return false;
}

} // namespace

int main(int argc, char **argv) {
	helsim::MachineConfig config;
	config.mode = helsim::Mode::deterministic; // the same run, event for event, every time
	config.seed = 1;
	config.trace = true;
	helsim::Machine machine{config};

	machine.spawn("setup", [&](std::span<const HelHandle>) {
		HelHandle server_requests, client_requests, server_callbacks, client_callbacks;
		check(helCreateStream(&server_requests, &client_requests, 0), "helCreateStream");
		check(helCreateStream(&server_callbacks, &client_callbacks, 0), "helCreateStream");
		// spawn() copies the handles into each new thread's own universe (as handles 1, 2).
		machine.spawn("server", [](std::span<const HelHandle> h) { server(h[0], h[1]); },
				{server_requests, server_callbacks});
		machine.spawn("client", [](std::span<const HelHandle> h) { client(h[0], h[1]); },
				{client_requests, client_callbacks});
		for (HelHandle h : {server_requests, client_requests, server_callbacks, client_callbacks})
			check(helCloseDescriptor(kHelThisUniverse, h), "close");
	});

	helsim::RunReport report = machine.run();
	std::printf("%s", report.to_string().c_str());
	std::printf("%zu trace events, trace hash %#llx\n", machine.trace_event_count(),
			static_cast<unsigned long long>(report.trace_hash));
	if (argc > 1) {
		machine.write_trace(argv[1]);
		std::printf("trace written to %s: open it at ui.perfetto.dev\n", argv[1]);
	}

	// The client waits for its session's reply on its request lane; the server for its
	// callback, whose send nobody receives, on its callback lane.
	bool explained = report.stuck && names_wait(report, "client", "recvInline on lane handle 1") &&
			names_wait(report, "server", "sendFromBuffer on lane handle 2");
	std::printf("%s\n", explained ? "the report names both waits" : "UNEXPECTED REPORT");
	return explained ? 0 : 1;
}
