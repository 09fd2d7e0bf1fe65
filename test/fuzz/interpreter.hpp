// The fuzzer's interpreter: turns an input into hel calls made by simulated threads in two
// universes (docs/testing.md, "Fuzzing", describes the input format).
//
// Input: byte 0 chooses the mode (bit 0: deterministic, seeded by bytes 1..8); from byte 9
// on, records of kRecordSize bytes. Record byte 0: bit 7 the thread (0: "fuzz-a" in the root
// thread's universe, 1: "fuzz-b" in a universe of its own), bits 0..1 the kind (a syscall, an
// SQ operation, draining the queue); byte 1 the row (an index into the registered syscalls or
// SQ opcodes; 0xff: a raw number from bytes 2..3); the rest: the choices for the arguments,
// continued by a generator seeded with them once they run out.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace helsim::fuzz {

inline constexpr std::size_t kHeaderSize = 9;
inline constexpr std::size_t kRecordSize = 16;

enum class RecordKind : std::uint8_t { syscall = 0, sq = 1, drain = 2 };

// A registered syscall: its number and its parameter description (kernel/core/call_registry.hpp).
struct SyscallShape {
	std::uint32_t number;
	std::string name;
	std::string params; // empty: unknown, every argument an arbitrary word
};

struct Program {
	bool deterministic = false;
	std::uint64_t seed = 0;
	// The records of each thread, in input order.
	std::array<std::vector<std::array<std::uint8_t, kRecordSize>>, 2> records;

	static Program parse(std::span<const std::uint8_t> input);
};

// What the interpreter found wrong while the program ran (beyond what RunReport reports).
struct Findings {
	std::mutex mutex;
	std::vector<std::string> violations;
	// Operations whose completions may have gone to a harness ring the program wrote over:
	// they may stay pending (their completions die with the queue, undelivered).
	std::size_t undeliverable = 0;
	void add(std::string what) {
		std::lock_guard lock{mutex};
		violations.push_back(std::move(what));
	}
	void may_stay_pending(std::size_t n) {
		std::lock_guard lock{mutex};
		undeliverable += n;
	}
};

// The tables the program draws its calls from: read from the machine's registry before it runs,
// so a newly registered syscall or SQ opcode is covered without touching the fuzzer.
struct CallTables {
	std::vector<SyscallShape> syscalls;
	std::vector<std::uint32_t> sq_opcodes;
	static CallTables of(Machine &machine);
};

// Starts `program` on `machine` (spawns its first thread, which starts the others); the
// caller runs the machine and keeps what this returns, the threads' shared state, until then.
std::shared_ptr<void> start(Machine &machine, const Program &program, const CallTables &tables,
		Findings &findings);

} // namespace helsim::fuzz
