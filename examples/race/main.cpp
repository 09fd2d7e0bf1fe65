// A race found by seed exploration: two clients and a server whose protocol routes replies
// through a shared "last requester" variable (protocol.hpp). Deterministic mode runs the same
// workload under seeds 0, 1, 2, ... until one interleaving breaks it, prints that seed and
// the command that replays it, then checks that the fixed protocol passes every seed.
//
//   ./race                  explore (exit 0: the bug was caught and the fix holds)
//   HELSIM_SEED=<n> ./race  replay one seed of the broken protocol and print its report
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "protocol.hpp"

int main() {
	if (const char *text = std::getenv("HELSIM_SEED"); text && *text) {
		std::uint64_t seed = std::strtoull(text, nullptr, 0);
		std::string why;
		bool ok = race::run_once(race::Protocol::broken, seed, &why);
		std::printf("seed %llu, broken protocol: %s\n%s", static_cast<unsigned long long>(seed),
				ok ? "passed" : "FAILED", why.c_str());
		return 0;
	}

	constexpr std::uint64_t kSeeds = 200;
	std::int64_t failing = -1;
	std::string why;
	for (std::uint64_t seed = 0; seed < kSeeds && failing < 0; ++seed)
		if (!race::run_once(race::Protocol::broken, seed, &why))
			failing = static_cast<std::int64_t>(seed);
	if (failing < 0) {
		std::printf("the broken protocol passed %llu seeds: the race was not found\n",
				static_cast<unsigned long long>(kSeeds));
		return 1;
	}
	std::printf("broken protocol: fails with seed %lld\n%s", static_cast<long long>(failing),
			why.c_str());
	std::printf("replay it with:\n  HELSIM_SEED=%lld ./race\n", static_cast<long long>(failing));

	for (std::uint64_t seed = 0; seed < kSeeds; ++seed)
		if (!race::run_once(race::Protocol::fixed, seed, &why)) {
			std::printf("fixed protocol: fails with seed %llu\n%s",
					static_cast<unsigned long long>(seed), why.c_str());
			return 1;
		}
	std::printf("fixed protocol: passed all %llu seeds\n", static_cast<unsigned long long>(kSeeds));
	return 0;
}
