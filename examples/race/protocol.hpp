// A request/reply protocol between two clients and a server over shared memory, in a broken
// and a fixed version. Shared by examples/race/main.cpp and test/sim/race_example_test.cpp.
//
// The server owns one request slot. A client claims the slot (0 -> 1 with a CAS), writes its
// request, marks the slot full (2) and waits for its reply word; the server answers the
// request and frees the slot. The broken version routes the reply through a shared "last
// requester" variable that every client writes *before* it claims the slot, so when both
// clients have written it before the server answers, the reply goes to the wrong client.
// The fixed version writes the requester into the slot it owns. The broken one works as
// long as the server answers before the other client gets to run.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace race {

enum class Protocol { broken, fixed };

inline constexpr int kRequestsPerClient = 1;

struct Shared {
	int slot = 0;            // 0 free, 1 claimed, 2 full (futex word)
	int slot_from = -1;      // fixed: the requester, written by the slot's owner
	int last_requester = -1; // broken: written by every client before it claims the slot
	int request = 0;
	int reply[2] = {0, 0}; // futex words, 0 = no reply yet
	bool wrong_reply = false;
};

inline int load(const int *word) { return __atomic_load_n(word, __ATOMIC_SEQ_CST); }
inline void store(int *word, int value) { __atomic_store_n(word, value, __ATOMIC_SEQ_CST); }

inline void wait_while(int *word, int value) {
	while (load(word) == value)
		helFutexWait(word, value, kHelWaitInfinite);
}

inline void client(Shared &s, Protocol protocol, int id) {
	for (int k = 0; k < kRequestsPerClient; ++k) {
		int request = id * 100 + k + 1;
		if (protocol == Protocol::broken)
			store(&s.last_requester, id);
		int expected = 0;
		while (!__atomic_compare_exchange_n(&s.slot, &expected, 1, false, __ATOMIC_SEQ_CST,
				__ATOMIC_SEQ_CST)) {
			helFutexWait(&s.slot, expected, kHelWaitInfinite);
			expected = 0;
		}
		if (protocol == Protocol::fixed)
			store(&s.slot_from, id);
		store(&s.request, request);
		store(&s.slot, 2);
		helFutexWake(&s.slot, 2);
		wait_while(&s.reply[id], 0);
		if (load(&s.reply[id]) != request + 1000)
			s.wrong_reply = true; // someone else's answer
		store(&s.reply[id], 0);
	}
}

inline void server(Shared &s, Protocol protocol) {
	for (int n = 0; n < 2 * kRequestsPerClient; ++n) {
		while (load(&s.slot) != 2)
			helFutexWait(&s.slot, load(&s.slot), kHelWaitInfinite);
		int to = protocol == Protocol::broken ? load(&s.last_requester) : load(&s.slot_from);
		store(&s.reply[to], load(&s.request) + 1000);
		helFutexWake(&s.reply[to], 1);
		store(&s.slot, 0);
		helFutexWake(&s.slot, 2);
	}
}

// Runs the two clients and the server once, in deterministic mode with `seed`. True if
// every client got its own replies and the machine did not get stuck; otherwise `why` says
// what went wrong.
inline bool run_once(Protocol protocol, std::uint64_t seed, std::string *why = nullptr) {
	helsim::MachineConfig config;
	config.cpus = 3; // the server and each client start on a CPU of their own
	config.mode = helsim::Mode::deterministic;
	config.seed = seed;
	Shared shared;
	helsim::Machine machine{config};
	machine.spawn("server", [&](std::span<const HelHandle>) { server(shared, protocol); });
	for (int id = 0; id < 2; ++id)
		machine.spawn("client" + std::to_string(id),
				[&, id](std::span<const HelHandle>) { client(shared, protocol, id); });
	helsim::RunReport report = machine.run();
	bool ok = !report.stuck && !shared.wrong_reply;
	if (!ok && why)
		*why = (shared.wrong_reply ? std::string{"a client received another client's reply\n"}
								   : std::string{}) +
				report.to_string();
	return ok;
}

} // namespace race
