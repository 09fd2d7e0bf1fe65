// Trace recording: what the simulated machine did, as Chrome trace-event JSON that the Perfetto
// UI opens (docs/tracing.md). Off unless MachineConfig::trace is set; then the Host owns no
// recorder and every hook costs the one branch on a null pointer that guards it.
//
// Tracks: process 1 has one track per simulated CPU, with a slice per stretch a thread ran
// there. Process 2 has one track per simulated thread, with a slice per syscall (blocking
// included) and the flow endpoints, and one more for what happens outside any thread
// (timers). Every track has a tid of its own, never 0 nor a pid (see trace.cpp). Flows are v1
// "s"/"f" pairs: submission -> completion keyed by (queue, context), send -> pairing keyed by the
// send's node, and push descriptor -> pull descriptor (sender's track to receiver's) keyed by the
// push's node. Each flow end sits in a tiny slice of its own so that it always has an enclosing
// slice to bind to. Syscall slices carry their argument words and result in "args"; the
// document ends with a "metadata" object (seed, mode, CPUs, helsim version).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace helsim::sim {

class Host;
class Task;

// What the trace's "metadata" object records about the run.
struct TraceInfo {
	std::uint64_t seed = 0;
	const char *mode = "";
	unsigned cpus = 1;
};

// The top-level member `"metadata":{...}` (no leading comma), also for a machine without a
// recorder: seed (a decimal string, exact for any 64-bit seed), mode, cpus, helsim_version.
std::string trace_metadata_member(const TraceInfo &info);

class TraceRecorder {
public:
	TraceRecorder(Host &host, const TraceInfo &info);
	TraceRecorder(const TraceRecorder &) = delete;
	TraceRecorder &operator=(const TraceRecorder &) = delete;

	// A simulated CPU starts or stops running `task` (scheduler side, no current task).
	void run_begin(unsigned cpu, const Task &task);
	// `exited`: the task's fiber has finished; its thread track is closed for good.
	void run_end(unsigned cpu, const Task &task, bool exited);
	// An attached thread detached: its track is closed (its address may be reused).
	void thread_gone(const Task &task);
	// The machine's address window: argument words that may be host addresses are written
	// relative to it (and as "opaque" outside it), so that equal runs give equal traces.
	void set_address_window(std::uintptr_t base, std::size_t size);
	// Syscall entry and exit, on the calling thread's track. `params` names the argument words
	// as hel does, '*' marking a handle, '&' a word that may be a host address (a pointer, a
	// context), " > " starting the outputs, e.g. "*handle *universeHandle flags exposedRights
	// requiredRights > *outHandle" (nullptr: not known, nothing is read from `args`). Only as many
	// words as it names are read. No allocation beyond the event's own: the words are kept raw and
	// written out by json(). syscall_begin returns the call's record for syscall_end; `error`
	// kNoReturn: the call did not return (helPanic); `outs` is read only on kHelErrNone.
	static constexpr int kNoReturn = -1;
	std::size_t syscall_begin(const Task &self, const char *name, const char *params,
			const std::uint64_t *args);
	void syscall_end(const Task &self, const char *name, std::size_t call, int error,
			const std::uint64_t *outs);
	// The current task (or none) woke `target`.
	void wake(const Task &target);
	// An operation was accepted for (queue, context): starts a flow on the current track.
	void submission(const void *queue, std::uintptr_t context);
	// A completion for (queue, context) was posted: ends the oldest open flow with that key.
	void completion(const void *queue, std::uintptr_t context);
	// A send item was submitted (flow start) and met its receive (flow end, bound to the
	// thread that made the pair).
	void send(const void *node, std::size_t length);
	void pair(const void *send_node);
	// Descriptors between universes (universe ids: Universe::id(), in order of creation).
	// A push descriptor action was submitted: an event on the current track starts a flow.
	void push_descriptor(const void *node, const char *kind, std::int64_t handle,
			std::uint32_t universe, std::uint32_t rights);
	// The track of `task`, for an event recorded later on its behalf (pull_descriptor).
	std::uint32_t track_id(const Task &task);
	// The push met its pull: the event on track `track` (the pull's submitter; 0: the current
	// one) ends the push's flow. `handle`/`universe`: where the descriptor went.
	void pull_descriptor(const void *push_node, std::uint32_t track, std::int64_t handle,
			std::uint32_t universe, int error);
	// helTransferDescriptor copied a descriptor: an instant on the current track.
	void transfer_descriptor(const char *kind, std::int64_t from_handle,
			std::uint32_t from_universe, std::int64_t to_handle, std::uint32_t to_universe);
	// `offset`: the address relative to the machine's address window, so that runs compare.
	void page_fault(const char *path, std::uintptr_t offset, bool write);
	// Lane shutdown / break and the like: an instant on the current track.
	void lane_event(const char *what, int side);

	std::size_t event_count() const;
	// The whole trace as one JSON document ({"traceEvents": [...], ...}).
	std::string json() const;

private:
	static constexpr std::uint32_t kNoCall = ~std::uint32_t{0};
	struct Event {
		char phase;
		std::uint32_t pid;
		std::uint32_t tid;
		std::uint64_t ts;
		std::uint64_t flow = 0; // "s"/"f": the flow id
		std::string name;
		const char *category = "";
		std::string args;             // a JSON object, or empty
		std::uint32_t call = kNoCall; // a syscall's "B": its record in calls_, written as args
	};
	// A syscall's arguments and result, raw (formatted by json()).
	static constexpr std::size_t kMaxArgs = 9, kMaxOuts = 3;
	struct Call {
		const char *params;
		std::uint64_t args[kMaxArgs];
		std::uint64_t outs[kMaxOuts];
		int error;
	};
	struct Push {
		std::uint64_t flow;
		const char *kind;
		std::int64_t handle;
		std::uint32_t universe;
	};

	std::uint32_t cpu_tid(unsigned cpu) const;
	std::uint32_t no_thread_tid() const;
	// All below: mutex_ held.
	std::uint64_t stamp();
	std::pair<std::uint32_t, std::uint32_t> track_of(const Task *task);
	std::pair<std::uint32_t, std::uint32_t> current_track();
	void push(char phase, std::pair<std::uint32_t, std::uint32_t> track, std::string name,
			const char *category = "", std::string args = {}, std::uint64_t flow = 0);
	// B, s or f, E: a flow endpoint inside a slice of its own (on the current track by default).
	void flow_point(const char *slice, char phase, const char *category, std::uint64_t flow,
			std::string args);
	void flow_point(std::pair<std::uint32_t, std::uint32_t> track, const char *slice, char phase,
			const char *category, std::uint64_t flow, std::string args);
	void write_call_args(std::string &out, const Call &call) const;

	Host &host_;
	const TraceInfo info_;
	const unsigned cpus_;
	// One lock for everything: tracing is a debugging aid, and a single record order keeps
	// every track's events in program order and the timestamps strictly increasing.
	mutable std::mutex mutex_;
	std::vector<Event> events_;
	std::vector<std::pair<std::uint32_t, std::string>> thread_names_; // tid -> name
	std::uint64_t last_ts_ = 0;
	bool stamped_ = false;
	std::unordered_map<const Task *, std::uint32_t> tracks_;
	std::uint64_t next_flow_ = 1;
	std::map<std::pair<const void *, std::uintptr_t>, std::deque<std::uint64_t>> open_ops_;
	std::unordered_map<const void *, std::uint64_t> open_sends_;
	std::unordered_map<const void *, Push> open_pushes_;
	std::vector<Call> calls_;
	std::uintptr_t window_base_ = 0;
	std::size_t window_size_ = 0;
};

} // namespace helsim::sim
