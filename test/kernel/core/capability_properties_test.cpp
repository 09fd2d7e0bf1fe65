// Capability properties (issue 18, item 3): a random walk of descriptor operations over three
// universes, checked against a shadow table after every step. Each universe has one agent, a
// thread in that universe and its own address space, which runs the steps the driver hands it
// one at a time; the driver (a fourth thread) chooses them from a weighted menu with a PRNG
// seeded by the seed loop, so a failing walk replays from its seed (docs/testing.md,
// "Capability properties"). Each test checks one property, so a failure names it.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

#include "sim/split_mix.hpp"

namespace {

using namespace helsim::test;
namespace ipc = helsim::ipc;

constexpr int kAgents = 3;
constexpr int kSteps = 96;
constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kMapRead = kHelRightAssign | kHelRightRead;
constexpr std::uint32_t kMapWrite = kMapRead | kHelRightWrite;
constexpr std::uint32_t kSliceRights =
		kHelRightRead | kHelRightWrite | kHelRightExecute | kHelRightAssign;
// What mapping with each protection needs.
constexpr std::pair<std::uint32_t, std::uint32_t> kMapChecks[] = {{kHelMapProtRead, kMapRead},
		{kHelMapProtRead | kHelMapProtWrite, kMapWrite}};
// Rights a memory handle can have: the bits the walk draws masks from.
constexpr std::uint32_t kMemoryRights =
		kSliceRights | kHelRightProvision | kHelRightPin | kHelRightFence | kHelRightManage;

enum class Property { values, rights, close, memory };

// The walk depends on the seed only, not on the standard library's distributions.
struct Rng : helsim::sim::SplitMix64 {
	using SplitMix64::SplitMix64;
	// An exposed mask: usually a random subset of the memory rights, sometimes all of them.
	std::uint32_t exposed() {
		return below(4) == 0 ? kHelRightsMax : static_cast<std::uint32_t>(next()) & kMemoryRights;
	}
	// A required mask: usually nothing, else one or two rights.
	std::uint32_t required() {
		std::uint32_t mask = 0;
		for (std::size_t n = below(4); n > 1; --n)
			mask |= std::uint32_t{1} << below(14);
		return mask;
	}
};

// A thread in its own universe and address space that runs the driver's jobs one at a time.
struct Agent {
	int go = 0;
	int done = 0;
	bool quit = false;
	std::function<void()> job;
	std::optional<helsim::Dispatcher> dispatcher;
};

void agent_main(std::uintptr_t argument) {
	auto &agent = *reinterpret_cast<Agent *>(argument);
	for (;;) {
		if (!wait_for(&agent.go, 1)) {
			ADD_FAILURE() << "helFutexWait failed in an agent";
			return;
		}
		store(&agent.go, 0);
		if (agent.quit)
			break;
		agent.job();
		store(&agent.done, 1);
		helFutexWake(&agent.done, 1);
	}
	agent.dispatcher.reset();
}

// A memory object of the walk: its tag is written into its first word when it is created, so a
// handle that maps it tells which object it names.
struct Object {
	std::uint64_t tag;
	int type;
};

struct Held {
	std::size_t object;
	std::uint32_t rights;
};

struct Closed {
	int universe;
	HelHandle value;
	std::size_t object;
};

struct Mapping {
	void *pointer;
	std::size_t object;
};

// The tag a handle's memory holds in its first word, or nothing when mapping it failed.
std::optional<std::uint64_t> read_tag(HelHandle h) {
	void *pointer = nullptr;
	if (helMapMemory(h, kHelNullHandle, nullptr, 0, kPage, kHelMapProtRead, &pointer) !=
			kHelErrNone)
		return std::nullopt;
	std::uint64_t tag = *static_cast<volatile std::uint64_t *>(pointer);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, kPage), kHelErrNone);
	return tag;
}

class Walk {
public:
	Walk(std::uint64_t seed, Property property) : rng_{seed}, property_{property} {}

	void run() {
		set_up();
		for (int step = 0; step < kSteps; ++step) {
			this->step();
			check();
		}
		tear_down();
	}

private:
	// ------------------------------------------------------------ the machinery

	void run_in(int i, std::function<void()> job) {
		Agent &agent = agents_[i];
		agent.job = std::move(job);
		store(&agent.done, 0);
		store(&agent.go, 1);
		helFutexWake(&agent.go, 1);
		ASSERT_TRUE(wait_for(&agent.done, 1)) << "helFutexWait failed in the driver";
	}

	void set_up() {
		for (int i = 0; i < kAgents; ++i) {
			universes_[i] = make_universe();
			spaces_[i] = make_space();
		}
		// A stream between every two agents, and every agent's handles to the other universes.
		for (int i = 0; i < kAgents; ++i)
			for (int j = i + 1; j < kAgents; ++j) {
				HelHandle ends[2];
				ASSERT_EQ(helCreateStream(&ends[0], &ends[1], 0), kHelErrNone);
				lanes_[i][j] = give(ends[0], i);
				lanes_[j][i] = give(ends[1], j);
			}
		for (int i = 0; i < kAgents; ++i)
			for (int j = 0; j < kAgents; ++j)
				if (i != j) {
					HelHandle copy = narrowed(universes_[j], kHelRightsMax);
					others_[i][j] = give(copy, i);
				}
		for (int i = 0; i < kAgents; ++i)
			ASSERT_EQ(helCreateThread(universes_[i], spaces_[i], kHelAbiSystemV,
							  reinterpret_cast<void *>(&agent_main),
							  reinterpret_cast<void *>(&agents_[i]), 0, &threads_[i]),
					kHelErrNone);
		// Every value below an agent's first fresh one is the walk's machinery: lanes, universe
		// handles, its queue. Values never come back, so the next one shows where they end.
		for (int i = 0; i < kAgents; ++i)
			run_in(i, [this, i] {
				agents_[i].dispatcher.emplace(helsim::QueueConfig{2, 2, 4096});
				HelHandle probe = make_token();
				first_fresh_[i] = probe;
				EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, probe), kHelErrNone);
			});
	}

	// Moves the driver's `h` into agent i's universe; returns its value there.
	HelHandle give(HelHandle h, int i) {
		HelHandle out = kHelNullHandle;
		EXPECT_EQ(helTransferDescriptor(h, universes_[i], kHelTransferDescriptorOut, kHelRightsMax,
						  0, &out),
				kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
		return out;
	}

	void tear_down() {
		for (int i = 0; i < kAgents; ++i) {
			// The universes hold handles to each other: a cycle that would keep them alive.
			run_in(i, [this, i] {
				for (const Mapping &m : mappings_[i])
					EXPECT_EQ(helUnmapMemory(kHelNullHandle, m.pointer, kPage), kHelErrNone);
				for (int j = 0; j < kAgents; ++j)
					if (j != i) {
						EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, others_[i][j]), kHelErrNone);
					}
			});
			agents_[i].quit = true;
			store(&agents_[i].go, 1);
			helFutexWake(&agents_[i].go, 1);
		}
		// Join the agents before their handles go: closing a thread's last handle kills it.
		helsim::Dispatcher joiner;
		for (int i = 0; i < kAgents; ++i) {
			auto element = sq_call(joiner, kHelSubmitObserve, HelSqObserve{threads_[i]});
			EXPECT_EQ(element.error(), kHelErrThreadTerminated);
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, threads_[i]), kHelErrNone);
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, universes_[i]), kHelErrNone);
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, spaces_[i]), kHelErrNone);
		}
	}

	// ------------------------------------------------------------ the steps

	// A handle agent i holds, drawn at random; nothing when it holds none.
	std::optional<std::pair<HelHandle, Held>> pick_held(int i) {
		if (held_[i].empty())
			return std::nullopt;
		auto it = held_[i].begin();
		std::advance(it, static_cast<long>(rng_.below(held_[i].size())));
		return *it;
	}

	int other_than(int i) { return (i + 1 + static_cast<int>(rng_.below(kAgents - 1))) % kAgents; }

	void step() {
		int i = static_cast<int>(rng_.below(kAgents));
		// The menu, by weight: create 3, transfer out 4, transfer in 3, push/pull 3, slice 2,
		// close 3, map 2, unmap 1.
		std::size_t pick = rng_.below(21);
		if (pick < 3 || held_[i].empty())
			create(i);
		else if (pick < 7)
			transfer_out(i, other_than(i));
		else if (pick < 10)
			transfer_in(i, other_than(i));
		else if (pick < 13)
			push_pull(i, other_than(i));
		else if (pick < 15)
			slice(i);
		else if (pick < 18)
			close(i);
		else if (pick < 20)
			map(i);
		else
			unmap(i);
	}

	void adopt(int i, HelHandle h, std::size_t object) {
		helsim::ext::DescriptorInfo info{-1, 0};
		run_in(i, [&] { EXPECT_EQ(helsim::ext::describe_descriptor(h, info), kHelErrNone); });
		held_[i][h] = {object, info.rights};
		seen_.insert(h);
	}

	void create(int i) {
		std::uint64_t tag = rng_.next() | 1;
		HelHandle h = kHelNullHandle;
		log_ = "agent " + std::to_string(i) + " allocates memory";
		run_in(i, [&] {
			ASSERT_EQ(helAllocateMemory(kPage, 0, nullptr, &h), kHelErrNone);
			void *pointer = nullptr;
			ASSERT_EQ(helMapMemory(h, kHelNullHandle, nullptr, 0, kPage,
							  kHelMapProtRead | kHelMapProtWrite, &pointer),
					kHelErrNone);
			*static_cast<volatile std::uint64_t *>(pointer) = tag;
			EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, kPage), kHelErrNone);
		});
		objects_.push_back({tag, kHelDescMemoryView});
		adopt(i, h, objects_.size() - 1);
	}

	// A transfer, push or derivation from a source with `source` rights through `exposed`
	// (rights & exposed, then `required` must be there) ended with `error` and, on success, a
	// handle with `got` rights.
	void expect_narrowed(std::uint32_t source, std::uint32_t exposed, std::uint32_t required,
			HelError error, std::uint32_t got) {
		if (property_ != Property::rights)
			return;
		std::uint32_t allowed = source & exposed;
		if ((allowed & required) != required) {
			EXPECT_EQ(error, kHelErrBadRights) << log_;
			return;
		}
		EXPECT_EQ(error, kHelErrNone) << log_;
		if (error == kHelErrNone) {
			EXPECT_EQ(got, allowed)
					<< log_ << ": source rights " << source << ", exposed " << exposed;
		}
	}

	void transfer_out(int i, int j) {
		auto picked = *pick_held(i);
		HelHandle h = picked.first;
		Held source = picked.second;
		std::uint32_t exposed = rng_.exposed(), required = rng_.required();
		log_ = "agent " + std::to_string(i) + " transfers " + std::to_string(h) + " out to " +
				std::to_string(j);
		HelHandle out = kHelNullHandle;
		HelError error = -1;
		run_in(i, [&] {
			error = helTransferDescriptor(h, others_[i][j], kHelTransferDescriptorOut, exposed,
					required, &out);
		});
		finish_transfer(j, source, exposed, required, error, out);
	}

	void transfer_in(int i, int j) {
		auto picked = pick_held(j);
		if (!picked)
			return create(j);
		HelHandle h = picked->first;
		Held source = picked->second;
		std::uint32_t exposed = rng_.exposed(), required = rng_.required();
		log_ = "agent " + std::to_string(i) + " transfers " + std::to_string(h) + " in from " +
				std::to_string(j);
		HelHandle out = kHelNullHandle;
		HelError error = -1;
		run_in(i, [&] {
			error = helTransferDescriptor(h, others_[i][j], kHelTransferDescriptorIn, exposed,
					required, &out);
		});
		finish_transfer(i, source, exposed, required, error, out);
	}

	void finish_transfer(int to, Held source, std::uint32_t exposed, std::uint32_t required,
			HelError error, HelHandle out) {
		if (error == kHelErrNone)
			adopt(to, out, source.object);
		expect_narrowed(source.rights, exposed, required, error,
				error == kHelErrNone ? held_[to][out].rights : 0);
	}

	void push_pull(int i, int j) {
		auto picked = *pick_held(i);
		HelHandle h = picked.first;
		Held source = picked.second;
		std::uint32_t exposed = rng_.exposed(), required = rng_.required();
		log_ = "agent " + std::to_string(i) + " pushes " + std::to_string(h) + " to " +
				std::to_string(j);
		auto push = ipc::push_descriptor(h, exposed);
		constexpr std::uintptr_t kPushContext = 1;
		run_in(i, [&] {
			ipc::submit(*agents_[i].dispatcher, lanes_[i][j], kPushContext, push);
			agents_[i].dispatcher->flush();
		});
		ipc::HandleResult pulled;
		run_in(j, [&] {
			auto exchange = ipc::exchange_sync(*agents_[j].dispatcher, lanes_[j][i],
					ipc::pull_descriptor(required));
			pulled = std::get<0>(exchange.results);
		});
		run_in(i, [&] {
			auto element = agents_[i].dispatcher->wait_for(kPushContext,
					[](helsim::Element &&) { ADD_FAILURE() << "a completion nobody submitted"; });
			auto [pushed] = ipc::parse<decltype(push)>(element);
			EXPECT_EQ(pushed.error, kHelErrNone) << log_;
		});
		if (pulled.error == kHelErrNone)
			adopt(j, pulled.handle, source.object);
		expect_narrowed(source.rights, exposed, required, pulled.error,
				pulled.error == kHelErrNone ? held_[j][pulled.handle].rights : 0);
	}

	// A slice keeps the view's rights within the slice's own: rights & {R, W, X, Assign}. Only
	// views are sliced (a slice of a slice is kHelErrBadDescriptor).
	void slice(int i) {
		auto picked = *pick_held(i);
		HelHandle h = picked.first;
		Held source = picked.second;
		if (objects_[source.object].type != kHelDescMemoryView)
			return;
		log_ = "agent " + std::to_string(i) + " slices " + std::to_string(h);
		HelHandle out = kHelNullHandle;
		HelError error = -1;
		run_in(i, [&] { error = helCreateSliceView(h, 0, kPage, 0, &out); });
		if (error == kHelErrNone) {
			objects_.push_back({objects_[source.object].tag, kHelDescMemorySlice});
			adopt(i, out, objects_.size() - 1);
		}
		expect_narrowed(source.rights, kSliceRights, kHelRightAssign, error,
				error == kHelErrNone ? held_[i][out].rights : 0);
	}

	void close(int i) {
		auto picked = *pick_held(i);
		HelHandle h = picked.first;
		Held held = picked.second;
		log_ = "agent " + std::to_string(i) + " closes " + std::to_string(h);
		run_in(i, [&] {
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone) << log_;
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNoDescriptor) << log_;
		});
		held_[i].erase(h);
		closed_ = {i, h, held.object};
	}

	void map(int i) {
		auto picked = *pick_held(i);
		HelHandle h = picked.first;
		Held held = picked.second;
		log_ = "agent " + std::to_string(i) + " maps " + std::to_string(h);
		void *pointer = nullptr;
		HelError error = -1;
		run_in(i, [&] {
			error = helMapMemory(h, kHelNullHandle, nullptr, 0, kPage, kHelMapProtRead, &pointer);
		});
		if (error != kHelErrNone)
			return;
		// Touched here, so that the page is present when other universes reach for it.
		run_in(i, [&] {
			EXPECT_EQ(*static_cast<volatile std::uint64_t *>(pointer), objects_[held.object].tag)
					<< log_;
		});
		mappings_[i].push_back({pointer, held.object});
	}

	void unmap(int i) {
		if (mappings_[i].empty())
			return;
		std::size_t at = rng_.below(mappings_[i].size());
		void *pointer = mappings_[i][at].pointer;
		log_ = "agent " + std::to_string(i) + " unmaps a mapping";
		run_in(i, [&] { EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, kPage), kHelErrNone); });
		mappings_[i].erase(mappings_[i].begin() + static_cast<long>(at));
	}

	// ------------------------------------------------------------ the properties

	void check() {
		switch (property_) {
		case Property::values:
			for (int b = 0; b < kAgents; ++b)
				check_values(b);
			break;
		case Property::rights:
			for (int b = 0; b < kAgents; ++b)
				check_rights(b);
			break;
		case Property::close: check_close(); break;
		case Property::memory:
			for (int b = 0; b < kAgents; ++b)
				check_memory(b);
			break;
		}
	}

	// Values some universe used, values nobody was given, and the forged kind.
	std::vector<HelHandle> candidates(int b) const {
		std::vector<HelHandle> values(seen_.begin(), seen_.end());
		HelHandle top = seen_.empty() ? first_fresh_[b] : *seen_.rbegin();
		for (HelHandle forged : {top + 1, top + 1000, HelHandle{1} << 40, HelHandle{INT64_MAX}})
			values.push_back(forged);
		return values;
	}

	// In universe b a value names the object b got at that value, or nothing at all.
	void check_values(int b) {
		run_in(b, [&] {
			for (HelHandle v : candidates(b)) {
				if (v < first_fresh_[b])
					continue;
				helsim::ext::DescriptorInfo info{-1, 0};
				HelError error = helsim::ext::describe_descriptor(v, info);
				auto it = held_[b].find(v);
				if (it == held_[b].end()) {
					EXPECT_EQ(error, kHelErrNoDescriptor)
							<< log_ << ": value " << v << " works in universe " << b;
					void *pointer = nullptr;
					EXPECT_EQ(helMapMemory(v, kHelNullHandle, nullptr, 0, kPage, kHelMapProtRead,
									  &pointer),
							kHelErrNoDescriptor)
							<< log_ << ": value " << v << " maps in universe " << b;
					continue;
				}
				const Object &object = objects_[it->second.object];
				EXPECT_EQ(error, kHelErrNone) << log_ << ": value " << v << " in universe " << b;
				EXPECT_EQ(info.type, object.type) << log_ << ": value " << v;
				if ((it->second.rights & kMapRead) == kMapRead) {
					EXPECT_EQ(read_tag(v), object.tag) << log_ << ": value " << v << " in universe "
													   << b << " names another object";
				}
			}
		});
	}

	// Every handle has exactly the rights the model derived (which never exceed its source's),
	// and what it may do follows them.
	void check_rights(int b) {
		run_in(b, [&] {
			for (auto [v, held] : held_[b]) {
				helsim::ext::DescriptorInfo info{-1, 0};
				EXPECT_EQ(helsim::ext::describe_descriptor(v, info), kHelErrNone) << log_;
				EXPECT_EQ(info.rights, held.rights) << log_ << ": value " << v;
				for (auto [prot, needs] : kMapChecks) {
					void *pointer = nullptr;
					HelError error =
							helMapMemory(v, kHelNullHandle, nullptr, 0, kPage, prot, &pointer);
					bool allowed = (held.rights & needs) == needs;
					EXPECT_EQ(error, allowed ? kHelErrNone : kHelErrBadRights)
							<< log_ << ": map " << prot << " of value " << v << " with rights "
							<< held.rights;
					if (error == kHelErrNone) {
						EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, kPage), kHelErrNone);
					}
				}
				if (objects_[held.object].type == kHelDescMemoryView) {
					EXPECT_EQ(helLoadahead(v, 0, kPage),
							held.rights & kHelRightProvision ? kHelErrNone : kHelErrBadRights)
							<< log_ << ": helLoadahead of value " << v;
				}
			}
		});
	}

	// After a close, the other handles to the object (in any universe) and its mappings still
	// work, and the closed value is gone.
	void check_close() {
		if (!closed_)
			return;
		Closed closed = *closed_;
		closed_.reset();
		for (int b = 0; b < kAgents; ++b)
			run_in(b, [&] {
				for (auto [v, held] : held_[b]) {
					if (objects_[held.object].tag != objects_[closed.object].tag)
						continue;
					helsim::ext::DescriptorInfo info{-1, 0};
					EXPECT_EQ(helsim::ext::describe_descriptor(v, info), kHelErrNone)
							<< log_ << ": value " << v << " of universe " << b;
					EXPECT_EQ(info.rights, held.rights) << log_;
					if ((held.rights & kMapRead) == kMapRead) {
						EXPECT_EQ(read_tag(v), objects_[held.object].tag) << log_;
					}
				}
				for (const Mapping &m : mappings_[b])
					EXPECT_EQ(*static_cast<volatile std::uint64_t *>(m.pointer),
							objects_[m.object].tag)
							<< log_ << ": a mapping of universe " << b;
				if (b == closed.universe) {
					helsim::ext::DescriptorInfo info{-1, 0};
					EXPECT_EQ(helsim::ext::describe_descriptor(closed.value, info),
							kHelErrNoDescriptor)
							<< log_;
				}
			});
	}

	// Agent b reaches no memory of another agent's space: their mappings are not b's to read
	// or write through a syscall, and b maps nothing through values it does not hold.
	void check_memory(int b) {
		run_in(b, [&] {
			for (int a = 0; a < kAgents; ++a) {
				if (a == b)
					continue;
				for (const Mapping &m : mappings_[a]) {
					std::size_t actual = 0;
					EXPECT_EQ(helGetRandomBytes(m.pointer, 16, &actual), kHelErrFault)
							<< log_ << ": universe " << b << " wrote a mapping of universe " << a;
					EXPECT_EQ(helLog(kHelLogSeverityDebug, static_cast<const char *>(m.pointer), 8),
							kHelErrFault)
							<< log_ << ": universe " << b << " read a mapping of universe " << a;
				}
			}
			for (HelHandle v : candidates(b)) {
				if (v < first_fresh_[b] || held_[b].contains(v))
					continue;
				void *pointer = nullptr;
				EXPECT_EQ(helMapMemory(v, kHelNullHandle, nullptr, 0, kPage, kHelMapProtRead,
								  &pointer),
						kHelErrNoDescriptor)
						<< log_ << ": value " << v << " maps in universe " << b;
				EXPECT_EQ(helLoadahead(v, 0, kPage), kHelErrNoDescriptor) << log_;
			}
		});
		// Nothing b did changed another space's memory.
		for (int a = 0; a < kAgents; ++a)
			if (a != b)
				run_in(a, [&] {
					for (const Mapping &m : mappings_[a])
						EXPECT_EQ(*static_cast<volatile std::uint64_t *>(m.pointer),
								objects_[m.object].tag)
								<< log_ << ": a mapping of universe " << a;
				});
	}

	Rng rng_;
	Property property_;
	std::array<Agent, kAgents> agents_;
	std::array<HelHandle, kAgents> universes_{}, spaces_{}, threads_{};
	std::array<HelHandle, kAgents> first_fresh_{};
	HelHandle lanes_[kAgents][kAgents]{};  // lanes_[i][j]: agent i's end towards j
	HelHandle others_[kAgents][kAgents]{}; // others_[i][j]: agent i's handle to universe j
	std::vector<Object> objects_;
	std::array<std::map<HelHandle, Held>, kAgents> held_;
	std::array<std::vector<Mapping>, kAgents> mappings_;
	std::set<HelHandle> seen_;
	std::optional<Closed> closed_; // the last close, for check_close
	std::string log_;
};

void walk(Property property) {
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) {
				helsim::Machine machine{helsim::testing::deterministic(seed)};
				machine.spawn("driver", [&](std::span<const HelHandle>) {
					Walk{seed, property}.run();
				});
				expect_clean(machine.run());
			},
			40);
}

TEST(CapabilityProperties, HandleValuesWorkOnlyWhereTheyWereGiven) { walk(Property::values); }

TEST(CapabilityProperties, RightsNeverGrow) { walk(Property::rights); }

TEST(CapabilityProperties, ClosingInOneUniverseLeavesTheOthers) { walk(Property::close); }

TEST(CapabilityProperties, NoUniverseReachesMemoryItHoldsNoHandleTo) { walk(Property::memory); }

} // namespace
