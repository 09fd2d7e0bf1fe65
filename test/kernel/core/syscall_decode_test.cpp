// The decode step of every built-in syscall row, driven by the rows' own declared descriptors
// (SyscallRow::decode, syscall_row in src/kernel/core/syscall_args.hpp): each handle parameter
// refuses a never-allocated, a closed, a wrong-kind and a rights-less handle with the documented
// error, and each user-pointer parameter a wild pointer with kHelErrFault. The descriptors
// declared before the probed one get valid values, so that it is the one that answers; a
// pointer written by the effect needs every other argument valid, the effect running.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "../../support.hpp"
#include "kernel/core/call_registry.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/threads/thread.hpp"
#include <helsim/hel-stubs.h>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using helsim::kernel::ObjectKind;
using helsim::kernel::ParamInfo;
using helsim::kernel::ParamKind;
using helsim::kernel::SyscallRow;
using helsim::test::expect_clean;
using helsim::test::narrowed;

constexpr HelHandle kNeverAllocated = 987654;
// Non-canonical, and inside the zero page: neither is ever user memory.
constexpr std::array<HelWord, 2> kWildPointers{0xFFFF'8000'0000'0000, 0x10};
constexpr unsigned kGsi = 5;

class Samples;

// Argument words a probe sets beyond the descriptors' valid values: for the rows whose decode
// function reads them (ParamKind::decoded), and values that make the probed descriptor the one
// that answers (an effect that touches its output, a size the call checks first).
using Words = std::map<int, HelWord>;
const std::map<std::uint32_t, std::function<Words(Samples &)>> &words_of_rows();

// One live handle of each kind the probes need, made on first use.
class Samples {
public:
	explicit Samples(HelHandle token) : token_{token} {}
	~Samples() {
		if (auto it = handles_.find(ObjectKind::thread); it != handles_.end()) {
			EXPECT_EQ(helKillThread(it->second), kHelErrNone);
		}
	}

	// A user address of a one-byte affinity mask naming CPU 0.
	HelWord one_cpu() { return reinterpret_cast<HelWord>(&cpu0_); }

	HelHandle of(ObjectKind kind) {
		auto [it, made] = handles_.try_emplace(kind, kHelNullHandle);
		if (made)
			it->second = make(kind);
		return it->second;
	}

private:
	HelHandle make(ObjectKind kind) {
		HelHandle h = kHelNullHandle, other = kHelNullHandle;
		switch (kind) {
		case ObjectKind::universe: return helsim::test::make_universe();
		case ObjectKind::queue: return helsim::test::make_queue();
		case ObjectKind::token: return token_;
		case ObjectKind::lane: EXPECT_EQ(helCreateStream(&h, &other, 0), kHelErrNone); return h;
		case ObjectKind::oneshot_event: EXPECT_EQ(helCreateOneshotEvent(&h), kHelErrNone); return h;
		case ObjectKind::bitset_event: EXPECT_EQ(helCreateBitsetEvent(&h), kHelErrNone); return h;
		case ObjectKind::irq_pin:
			EXPECT_EQ(helAccessIrq(token_, kHelAccessIrqByGsi, 0, kGsi, &h), kHelErrNone);
			return h;
		case ObjectKind::irq:
			EXPECT_EQ(helHandleIrq(of(ObjectKind::irq_pin), &h), kHelErrNone);
			return h;
		case ObjectKind::memory_view:
			EXPECT_EQ(helAllocateMemory(0x1000, 0, nullptr, &h), kHelErrNone);
			return h;
		case ObjectKind::address_space: return helsim::test::make_space();
		case ObjectKind::thread: return helsim::test::make_stopped_thread();
		case ObjectKind::swap_space:
			EXPECT_EQ(helCreateSwapSpace(0, &other, &h), kHelErrNone);
			return h;
		case ObjectKind::dma_space: EXPECT_EQ(helCreateDmaSpace(0, &h), kHelErrNone); return h;
		default: return kHelNullHandle;
		}
	}

	HelHandle token_;
	std::uint8_t cpu0_ = 1;
	std::map<ObjectKind, HelHandle> handles_;
};

const std::map<std::uint32_t, std::function<Words(Samples &)>> &words_of_rows() {
	static const std::map<std::uint32_t, std::function<Words(Samples &)>> rows{
			{kHelCallGetCredentials,
					[](Samples &) {
						return Words{{0, static_cast<HelWord>(kHelThisThread)}};
					}},
			{kHelCallGetRandomBytes,
					[](Samples &) {
						return Words{{1, 16}};
					}},
			{kHelCallAcknowledgeIrq,
					[](Samples &) {
						return Words{{1, kHelAckAcknowledge}};
					}},
			{kHelCallCreateThread,
					[](Samples &) {
						return Words{{3, reinterpret_cast<HelWord>(&helsim::test::idle_entry)},
								{5, kHelThreadStopped}};
					}},
			{kHelCallMapMemory,
					[](Samples &samples) {
						return Words{{0, static_cast<HelWord>(samples.of(ObjectKind::memory_view))},
								{4, 0x1000}, {5, kHelMapProtRead}};
					}},
			{kHelCallUnmapMemory,
					[](Samples &) {
						return Words{{1, 0x10000}, {2, 0x1000}};
					}},
			{kHelCallGetAffinity,
					[](Samples &) {
						return Words{{2, 8}};
					}},
			{kHelCallSetAffinity,
					[](Samples &samples) {
						return Words{{1, samples.one_cpu()}, {2, 1}};
					}},
			{kHelCallLoadRegisters,
					[](Samples &) {
						return Words{{1, kHelRegsGeneral}};
					}},
			{kHelCallQueryRegisterInfo,
					[](Samples &) {
						return Words{{0, kHelRegsGeneral}};
					}},
			{kHelCallAllocateSwappableMemory,
					[](Samples &) {
						return Words{{1, 0x1000}};
					}},
			{kHelCallStoreRegisters,
					[](Samples &) {
						return Words{{1, kHelRegsGeneral}};
					}},
	};
	return rows;
}

bool checked_by_effect(ParamKind kind) {
	return kind == ParamKind::user_out || kind == ParamKind::handle_word;
}

struct Probe {
	const SyscallRow &row;
	std::uint32_t number;
	std::span<const ParamInfo> decode;
	std::size_t index; // of the probed descriptor
};

class Prober {
public:
	explicit Prober(HelHandle token) : samples_{token} {}

	// The arguments under which decode[index] is the descriptor that answers; false if some
	// descriptor that must be valid has no sample.
	bool arguments(const Probe &p, std::array<HelWord, 9> &args) {
		args.fill(0);
		const ParamInfo &probed = p.decode[p.index];
		for (std::size_t i = 0; i < p.decode.size(); ++i) {
			const ParamInfo &q = p.decode[i];
			if (i == p.index || q.word == probed.word)
				continue;
			bool needed = i < p.index || checked_by_effect(probed.kind);
			HelWord valid = 0;
			if (!valid_word(q, valid) && needed)
				return false;
			args[q.word] = valid;
		}
		if (auto row = words_of_rows().find(p.number); row != words_of_rows().end())
			for (auto [word, value] : row->second(samples_))
				if (word != probed.word)
					args[word] = value;
		return true;
	}

	HelError call(std::uint32_t number, const std::array<HelWord, 9> &args) {
		std::array<HelWord, 3> outs{};
		return helsim_syscall(number, args.data(), outs.data());
	}

	Samples &samples() { return samples_; }
	HelWord buffer() { return reinterpret_cast<HelWord>(buffer_.data()); }

private:
	bool valid_word(const ParamInfo &q, HelWord &out) {
		switch (q.kind) {
		case ParamKind::handle:
		case ParamKind::handle_word:
			out = static_cast<HelWord>(samples_.of(q.object));
			return out != static_cast<HelWord>(kHelNullHandle);
		case ParamKind::any_handle:
			out = static_cast<HelWord>(samples_.of(ObjectKind::universe));
			return true;
		case ParamKind::user_in:
		case ParamKind::user_out:
		case ParamKind::user_range: out = buffer(); return true;
		default: return true;
		}
	}

	Samples samples_;
	std::vector<std::byte> buffer_ = std::vector<std::byte>(4096);
};

void run_with_token(const std::function<void(HelHandle)> &body) {
	helsim::MachineConfig config;
	config.cpus = 1;
	config.physical_memory = std::size_t{64} << 20;
	helsim::Machine machine{std::move(config)};
	HelHandle token = machine.hardware_access_token();
	machine.spawn("decoder", [&](std::span<const HelHandle> h) { body(h[0]); }, {token});
	// The stopped thread the probes use is killed at the end.
	expect_clean(machine.run(), {helsim::ThreadOutcome::returned, helsim::ThreadOutcome::killed});
}

// Every row of the running kernel, with its number.
template <typename F>
void for_each_row(F &&f) {
	const auto &calls = helsim::kernel::Thread::current()->kernel().calls();
	for (std::uint32_t number = 0; number < helsim::kSyscallSlots; ++number)
		if (calls.syscall_entry(number))
			f(number, calls.syscall_row(number));
}

std::string where(const Probe &p, const char *what) {
	return p.row.name + " word " + std::to_string(p.decode[p.index].word) + ": " + what;
}

TEST(SyscallDecode, EveryHandleParameterRefusesBadHandles) {
	run_with_token([](HelHandle token) {
		Prober prober{token};
		int probes = 0;
		std::vector<std::string> without_sample;
		for_each_row([&](std::uint32_t number, const SyscallRow &row) {
			for (std::size_t i = 0; i < row.decode.size(); ++i) {
				const ParamInfo &d = row.decode[i];
				bool typed = d.kind == ParamKind::handle;
				if (!typed && d.kind != ParamKind::any_handle && d.kind != ParamKind::handle_word)
					continue;
				Probe p{row, number, row.decode, i};
				std::array<HelWord, 9> args;
				ASSERT_TRUE(prober.arguments(p, args)) << where(p, "no valid arguments");
				HelHandle closed = helsim::test::make_token();
				ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, closed), kHelErrNone);
				for (HelHandle bad : {kNeverAllocated, closed}) {
					args[d.word] = static_cast<HelWord>(bad);
					EXPECT_EQ(prober.call(number, args), kHelErrNoDescriptor)
							<< where(p, "a handle that names nothing");
				}
				++probes;
				if (!typed)
					continue;
				ObjectKind other =
						d.object == ObjectKind::queue ? ObjectKind::universe : ObjectKind::queue;
				args[d.word] = static_cast<HelWord>(prober.samples().of(other));
				EXPECT_EQ(prober.call(number, args), kHelErrBadDescriptor)
						<< where(p, "a handle of another kind");
				if (!d.rights)
					continue;
				HelHandle sample = prober.samples().of(d.object);
				if (sample == kHelNullHandle) {
					without_sample.push_back(where(p, "rights"));
					continue;
				}
				args[d.word] = static_cast<HelWord>(narrowed(sample, 0));
				EXPECT_EQ(prober.call(number, args), kHelErrBadRights)
						<< where(p, "a handle without the rights");
			}
		});
		EXPECT_GT(probes, 0);
		// A bound kernlet needs a compiled kernlet: its rights are pinned by the IRQ tests.
		EXPECT_EQ(without_sample, std::vector<std::string>{"helAutomateIrq word 2: rights"});
	});
}

TEST(SyscallDecode, EveryUserPointerParameterRefusesAWildPointer) {
	run_with_token([](HelHandle token) {
		Prober prober{token};
		int probes = 0;
		for_each_row([&](std::uint32_t number, const SyscallRow &row) {
			for (std::size_t i = 0; i < row.decode.size(); ++i) {
				const ParamInfo &d = row.decode[i];
				if (d.kind != ParamKind::user_in && d.kind != ParamKind::user_out &&
						d.kind != ParamKind::user_range)
					continue;
				Probe p{row, number, row.decode, i};
				std::array<HelWord, 9> args;
				ASSERT_TRUE(prober.arguments(p, args)) << where(p, "no valid arguments");
				if (d.kind == ParamKind::user_range)
					args[d.second_word] = 16;
				for (HelWord wild : kWildPointers) {
					args[d.word] = wild;
					EXPECT_EQ(prober.call(number, args), kHelErrFault)
							<< where(p, "a wild pointer");
				}
				++probes;
			}
		});
		EXPECT_GT(probes, 0);
	});
}

// The names of a row's argument words (SyscallRow::params before " > ").
std::vector<std::string> input_words(const SyscallRow &row) {
	std::string inputs{row.params};
	inputs = inputs.substr(0, inputs.find('>'));
	std::vector<std::string> words;
	for (std::size_t at = 0; at < inputs.size();) {
		std::size_t end = inputs.find(' ', at);
		if (end == std::string::npos)
			end = inputs.size();
		if (end > at)
			words.push_back(inputs.substr(at, end - at));
		at = end + 1;
	}
	return words;
}

// Every argument word of every built-in row is read by a descriptor, or by the row's own
// decode function, or is one the call ignores as thor does (listed here).
TEST(SyscallDecode, EveryBuiltinRowDeclaresEachArgument) {
	const std::map<std::string, std::vector<int>> ignored{
			{"helCreateThread", {2}},  // abi: x86-64 System V only
			{"helSubmitObserve", {1}}, // sequence: ignored since the SQ operation
			// Answered before any argument is looked at (no VMX or SVM).
			{"helCreateVirtualizedCpu", {0}},
			{"helRunVirtualizedCpu", {0, 1}},
			{"helAssertVirtualizedIrq", {0, 1, 2}},
	};
	run_with_token([&](HelHandle) {
		int rows = 0;
		for_each_row([&](std::uint32_t, const SyscallRow &row) {
			if (row.handler)
				return;
			++rows;
			ASSERT_NE(row.params, nullptr) << row.name;
			std::vector<bool> read(input_words(row).size());
			for (const ParamInfo &d : row.decode) {
				if (d.kind == ParamKind::decoded || d.kind == ParamKind::arguments)
					return;
				read.at(d.word) = true;
				if (d.second_word)
					read.at(d.second_word) = true;
			}
			if (auto it = ignored.find(row.name); it != ignored.end())
				for (int word : it->second)
					read.at(word) = true;
			for (std::size_t word = 0; word < read.size(); ++word)
				EXPECT_TRUE(read[word]) << row.name << " word " << word << " has no descriptor";
		});
		EXPECT_GE(rows, 80); // the built-ins: Managarm's calls and helsim's own
	});
}

// The trace names of a row's argument words (SyscallRow::params) mark handles '*' and host
// addresses '&': the descriptors must agree with them.
TEST(SyscallDecode, TraceParamsAgreeWithTheDescriptors) {
	run_with_token([](HelHandle) {
		for_each_row([&](std::uint32_t, const SyscallRow &row) {
			if (row.decode.empty())
				return;
			ASSERT_NE(row.params, nullptr) << row.name;
			std::vector<std::string> words = input_words(row);
			auto marker = [&](int word) { return words.at(word).front(); };
			for (const ParamInfo &d : row.decode) {
				switch (d.kind) {
				case ParamKind::handle:
				case ParamKind::any_handle:
				case ParamKind::handle_word:
					EXPECT_EQ(marker(d.word), '*') << row.name << " word " << int{d.word};
					break;
				case ParamKind::address:
				case ParamKind::user_in:
				case ParamKind::user_out:
				case ParamKind::user_range:
					EXPECT_EQ(marker(d.word), '&') << row.name << " word " << int{d.word};
					break;
				case ParamKind::word:
				case ParamKind::flags:
					EXPECT_NE(marker(d.word), '*') << row.name << " word " << int{d.word};
					EXPECT_NE(marker(d.word), '&') << row.name << " word " << int{d.word};
					break;
				case ParamKind::decoded:
				case ParamKind::arguments: break;
				}
			}
		});
	});
}

} // namespace
