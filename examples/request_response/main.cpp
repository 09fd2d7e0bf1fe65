// A request/response protocol with one conversation (offer/accept) per request and a
// descriptor passed back in the reply.
//
// A "key server" hands out tokens. A client asks for a key: the server replies with a token
// pushed with fewer rights than it holds. The client then proves it holds that key by
// imbuing the token's credentials into a second request; the server extracts them and checks
// them against the token it handed out. Server and client live in separate universes.
#include <cstdio>
#include <cstring>
#include <string>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

namespace ipc = helsim::ipc;

namespace {

void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

void say(const std::string &line) { helLog(kHelLogSeverityInfo, line.data(), line.size()); }

void key_server(HelHandle lane) {
	helsim::Dispatcher dispatcher;
	HelHandle token;
	check(helCreateToken(&token), "helCreateToken");
	char issued[16];
	// The server learns its token's credentials the way anyone would: imbue them into a
	// stream of its own and extract them on the other end.
	{
		HelHandle a, b;
		check(helCreateStream(&a, &b, 0), "helCreateStream");
		ipc::submit(dispatcher, a, 1, ipc::imbue_credentials(token));
		ipc::submit(dispatcher, b, 2, ipc::extract_credentials());
		for (int i = 0; i < 2; ++i) {
			auto element = dispatcher.wait();
			if (element->context() == 2) {
				auto [extracted] = ipc::parse<ipc::Leaf<ipc::CredentialsResult>>(*element);
				std::memcpy(issued, extracted.credentials.data(), 16);
			}
		}
		helCloseDescriptor(kHelThisUniverse, a);
		helCloseDescriptor(kHelThisUniverse, b);
	}

	// Request 1: "key?" -> reply "here" plus the token.
	{
		auto request = ipc::exchange_sync(dispatcher, lane, ipc::accept(ipc::recv_inline()));
		auto &[conversation, text] = request.results;
		check(conversation.error, "accept");
		say("server: request \"" + std::string{text.text()} + "\"");
		auto reply = ipc::exchange_sync(dispatcher, conversation.handle,
				ipc::send_buffer(std::string_view{"here"}),
				ipc::push_descriptor(token, kHelRightNull));
		check(std::get<0>(reply.results).error, "send reply");
		check(std::get<1>(reply.results).error, "push token");
		helCloseDescriptor(kHelThisUniverse, conversation.handle);
	}
	// Request 2: "open" with credentials -> "granted" or "denied".
	{
		auto request = ipc::exchange_sync(dispatcher, lane,
				ipc::accept(ipc::recv_inline(), ipc::extract_credentials()));
		auto &[conversation, text, credentials] = request.results;
		check(conversation.error, "accept");
		bool granted = std::memcmp(credentials.credentials.data(), issued, 16) == 0;
		say("server: request \"" + std::string{text.text()} + "\" carries " +
				(granted ? "the key it was given" : "unknown credentials"));
		auto reply = ipc::exchange_sync(dispatcher, conversation.handle,
				ipc::send_buffer(std::string_view{granted ? "granted" : "denied"}));
		check(std::get<0>(reply.results).error, "send verdict");
		helCloseDescriptor(kHelThisUniverse, conversation.handle);
	}
	helCloseDescriptor(kHelThisUniverse, token);
}

int client(HelHandle lane) {
	helsim::Dispatcher dispatcher;
	auto first = ipc::exchange_sync(dispatcher, lane,
			ipc::offer(ipc::send_buffer(std::string_view{"key?"}), ipc::recv_inline(),
					ipc::pull_descriptor()));
	auto &[offered, sent, reply, key] = first.results;
	check(offered.error, "offer");
	check(key.error, "pull key");
	helsim::ext::DescriptorInfo info{};
	check(helsim::ext::describe_descriptor(key.handle, info), "describe_descriptor");
	say("client: reply \"" + std::string{reply.text()} + "\" with descriptor " +
			std::to_string(key.handle) + " (type " + std::to_string(info.type) +
			" = token: " + (info.type == kHelDescToken ? "yes" : "no") + ", rights " +
			std::to_string(info.rights) + ")");

	auto second = ipc::exchange_sync(dispatcher, lane,
			ipc::offer(ipc::send_buffer(std::string_view{"open"}),
					ipc::imbue_credentials(key.handle), ipc::recv_inline()));
	auto &verdict = std::get<3>(second.results);
	check(verdict.error, "receive verdict");
	say("client: verdict \"" + std::string{verdict.text()} + "\"");
	helCloseDescriptor(kHelThisUniverse, key.handle);
	return verdict.text() == "granted" ? 0 : 1;
}

} // namespace

int main() {
	helsim::Machine machine;
	HelHandle server_lane, client_lane;
	{
		auto host = machine.attach();
		check(helCreateStream(&server_lane, &client_lane, 0), "helCreateStream");
	}
	int verdict = 1;
	machine.spawn("key-server", [](std::span<const HelHandle> h) { key_server(h[0]); },
			{server_lane});
	machine.spawn("client", [&](std::span<const HelHandle> h) { verdict = client(h[0]); },
			{client_lane});
	helsim::RunReport report = machine.run();
	std::printf("%s", report.to_string().c_str());
	bool ok = verdict == 0 && !report.stuck && report.leaks.empty() &&
			report.operations_pending() == 0;
	std::printf("%s\n", ok ? "key granted; nothing pending, nothing leaked" : "FAILED");
	return ok ? 0 : 1;
}
