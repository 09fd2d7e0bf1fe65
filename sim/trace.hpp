// Trace recording: what the simulated machine did, as Chrome trace-event JSON that the Perfetto
// UI opens (docs/tracing.md). Off unless MachineConfig::trace is set; then the Host owns no
// recorder and every hook costs the one branch on a null pointer that guards it.
//
// Tracks: process 1 has one track per simulated CPU, with a slice per stretch a thread ran
// there. Process 2 has one track per simulated thread, with a slice per syscall (blocking
// included) and the flow endpoints, and one more for what happens outside any thread
// (timers). Every track has a tid of its own, never 0 nor a pid (see trace.cpp). Flows are v1
// "s"/"f" pairs: submission -> completion keyed by (queue, context), and send -> pairing keyed by
// the send's node. Each flow end sits in a tiny slice of its own so that it always has an enclosing
// slice to bind to.
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

class TraceRecorder {
public:
	TraceRecorder(Host &host, unsigned cpus);
	TraceRecorder(const TraceRecorder &) = delete;
	TraceRecorder &operator=(const TraceRecorder &) = delete;

	// A simulated CPU starts or stops running `task` (scheduler side, no current task).
	void run_begin(unsigned cpu, const Task &task);
	// `exited`: the task's fiber has finished; its thread track is closed for good.
	void run_end(unsigned cpu, const Task &task, bool exited);
	// An attached thread detached: its track is closed (its address may be reused).
	void thread_gone(const Task &task);
	// Syscall entry and exit, on the calling thread's track.
	void syscall_begin(const Task &self, const char *name);
	void syscall_end(const Task &self, const char *name);
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
	// `offset`: the address relative to the machine's address window, so that runs compare.
	void page_fault(const char *path, std::uintptr_t offset, bool write);
	// Lane shutdown / break and the like: an instant on the current track.
	void lane_event(const char *what, int side);

	std::size_t event_count() const;
	// The whole trace as one JSON document ({"traceEvents": [...], ...}).
	std::string json() const;

private:
	struct Event {
		char phase;
		std::uint32_t pid;
		std::uint32_t tid;
		std::uint64_t ts;
		std::uint64_t flow = 0; // "s"/"f": the flow id
		std::string name;
		const char *category = "";
		std::string args; // a JSON object, or empty
	};

	std::uint32_t cpu_tid(unsigned cpu) const;
	std::uint32_t no_thread_tid() const;
	// All below: mutex_ held.
	std::uint64_t stamp();
	std::pair<std::uint32_t, std::uint32_t> track_of(const Task *task);
	std::pair<std::uint32_t, std::uint32_t> current_track();
	void push(char phase, std::pair<std::uint32_t, std::uint32_t> track, std::string name,
			const char *category = "", std::string args = {}, std::uint64_t flow = 0);
	// B, s or f, E: a flow endpoint inside a slice of its own.
	void flow_point(const char *slice, char phase, const char *category, std::uint64_t flow,
			std::string args);

	Host &host_;
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
};

} // namespace helsim::sim
