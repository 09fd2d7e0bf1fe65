#include "trace.hpp"

#include <fmt/core.h>

#include "host.hpp"
#include "task.hpp"

namespace helsim::sim {
namespace {

// Track numbering, as Perfetto's JSON importer needs it (docs/tracing.md, "Checked against
// Perfetto's importer"): it replaces tid 0 by the pid, and it gives every pid a main thread
// whose tid is that pid. So no tid is 0 or a pid, and each track has a tid of its own across
// both processes: from kFirstTid up come the CPUs, the timers track, then the threads.
constexpr std::uint32_t kCpuPid = 1;
constexpr std::uint32_t kThreadPid = 2;
constexpr std::uint32_t kFirstTid = 3;

// An empty name would be dropped by the importer (thread_name) or shown as "[No name]".
std::string display_name(const Task &task) {
	return task.name().empty() ? std::string{"(unnamed thread)"} : task.name();
}

void append_escaped(std::string &out, const std::string &s) {
	for (char c : s) {
		switch (c) {
		case '"': out += "\\\""; break;
		case '\\': out += "\\\\"; break;
		case '\n': out += "\\n"; break;
		case '\t': out += "\\t"; break;
		default:
			if (static_cast<unsigned char>(c) < 0x20)
				out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
			else
				out += c;
		}
	}
}

std::string quoted(const std::string &s) {
	std::string out = "\"";
	append_escaped(out, s);
	out += '"';
	return out;
}

// Chrome trace timestamps are microseconds; three decimals keep every nanosecond.
std::string micros(std::uint64_t ns) { return fmt::format("{}.{:03}", ns / 1000, ns % 1000); }

} // namespace

TraceRecorder::TraceRecorder(Host &host, unsigned cpus) : host_{host}, cpus_{cpus} {}

std::uint32_t TraceRecorder::cpu_tid(unsigned cpu) const { return kFirstTid + cpu; }

std::uint32_t TraceRecorder::no_thread_tid() const { return kFirstTid + cpus_; }

std::uint64_t TraceRecorder::stamp() {
	// Virtual time may stand still across many events (deterministic mode); nudging each
	// event 1 ns past the last keeps begin/end and flow binding unambiguous for the viewer.
	std::uint64_t t = host_.now();
	if (stamped_ && t <= last_ts_)
		t = last_ts_ + 1;
	stamped_ = true;
	last_ts_ = t;
	return t;
}

std::pair<std::uint32_t, std::uint32_t> TraceRecorder::track_of(const Task *task) {
	if (!task)
		return {kThreadPid, no_thread_tid()};
	auto [it, inserted] = tracks_.try_emplace(task, 0);
	if (inserted) {
		// Track ids follow first appearance, so equal runs number their threads alike.
		it->second = no_thread_tid() + 1 + static_cast<std::uint32_t>(thread_names_.size());
		thread_names_.emplace_back(it->second, display_name(*task));
	}
	return {kThreadPid, it->second};
}

std::pair<std::uint32_t, std::uint32_t> TraceRecorder::current_track() {
	return track_of(current_task());
}

void TraceRecorder::push(char phase, std::pair<std::uint32_t, std::uint32_t> track,
		std::string name, const char *category, std::string args, std::uint64_t flow) {
	events_.push_back(Event{phase, track.first, track.second, stamp(), flow, std::move(name),
			category, std::move(args)});
}

void TraceRecorder::flow_point(const char *slice, char phase, const char *category,
		std::uint64_t flow, std::string args) {
	auto track = current_track();
	push('B', track, slice, category, std::move(args));
	push(phase, track, category, category, {}, flow);
	push('E', track, slice, category);
}

void TraceRecorder::run_begin(unsigned cpu, const Task &task) {
	std::lock_guard lock{mutex_};
	auto thread = track_of(&task);
	push('B', {kCpuPid, cpu_tid(cpu)}, display_name(task), "sched",
			fmt::format("{{\"thread\":{}}}", thread.second));
}

void TraceRecorder::run_end(unsigned cpu, const Task &task, bool exited) {
	std::lock_guard lock{mutex_};
	push('E', {kCpuPid, cpu_tid(cpu)}, display_name(task), "sched");
	if (exited)
		tracks_.erase(&task); // its address may come back as another thread
}

void TraceRecorder::thread_gone(const Task &task) {
	std::lock_guard lock{mutex_};
	tracks_.erase(&task);
}

void TraceRecorder::syscall_begin(const Task &self, const char *name) {
	std::lock_guard lock{mutex_};
	push('B', track_of(&self), name, "syscall");
}

void TraceRecorder::syscall_end(const Task &self, const char *name) {
	std::lock_guard lock{mutex_};
	push('E', track_of(&self), name, "syscall");
}

void TraceRecorder::wake(const Task &target) {
	std::lock_guard lock{mutex_};
	// By name only: the target may have ended, and giving it a track would outlive it.
	push('i', current_track(), "wake", "sched",
			fmt::format("{{\"target\":{}}}", quoted(target.name())));
}

void TraceRecorder::submission(const void *queue, std::uintptr_t context) {
	std::lock_guard lock{mutex_};
	std::uint64_t id = next_flow_++;
	open_ops_[{queue, context}].push_back(id);
	flow_point("submit", 's', "operation", id, fmt::format("{{\"flow\":{}}}", id));
}

void TraceRecorder::completion(const void *queue, std::uintptr_t context) {
	std::lock_guard lock{mutex_};
	auto it = open_ops_.find({queue, context});
	if (it == open_ops_.end())
		return; // submitted before tracing could see it, or not an operation
	std::uint64_t id = it->second.front();
	it->second.pop_front();
	if (it->second.empty())
		open_ops_.erase(it);
	flow_point("complete", 'f', "operation", id, fmt::format("{{\"flow\":{}}}", id));
}

void TraceRecorder::send(const void *node, std::size_t length) {
	std::lock_guard lock{mutex_};
	std::uint64_t id = next_flow_++;
	// A node address reused by a later send simply starts a new flow.
	open_sends_[node] = id;
	flow_point("send", 's', "ipc", id, fmt::format("{{\"flow\":{},\"length\":{}}}", id, length));
}

void TraceRecorder::pair(const void *send_node) {
	std::lock_guard lock{mutex_};
	auto it = open_sends_.find(send_node);
	if (it == open_sends_.end())
		return;
	std::uint64_t id = it->second;
	open_sends_.erase(it);
	flow_point("receive", 'f', "ipc", id, fmt::format("{{\"flow\":{}}}", id));
}

void TraceRecorder::page_fault(const char *path, std::uintptr_t offset, bool write) {
	std::lock_guard lock{mutex_};
	push('i', current_track(), "page fault", "fault",
			fmt::format("{{\"path\":{},\"offset\":\"{:#x}\",\"write\":{}}}", quoted(path), offset,
					write));
}

void TraceRecorder::lane_event(const char *what, int side) {
	std::lock_guard lock{mutex_};
	push('i', current_track(), what, "lane", fmt::format("{{\"side\":{}}}", side));
}

std::size_t TraceRecorder::event_count() const {
	std::lock_guard lock{mutex_};
	return events_.size();
}

std::string TraceRecorder::json() const {
	std::lock_guard lock{mutex_};
	// No "displayTimeUnit": older importers scaled "ts" by it (docs/tracing.md).
	std::string out = "{\"traceEvents\":[\n";
	auto meta = [&](std::uint32_t pid, const std::uint32_t *tid, const char *what,
						const std::string &name) {
		out += fmt::format("{{\"ph\":\"M\",\"pid\":{},", pid);
		if (tid)
			out += fmt::format("\"tid\":{},", *tid);
		out += fmt::format("\"name\":\"{}\",\"args\":{{\"name\":{}}}}},\n", what, quoted(name));
	};
	meta(kCpuPid, nullptr, "process_name", "CPUs");
	for (unsigned cpu = 0; cpu < cpus_; ++cpu) {
		const std::uint32_t tid = cpu_tid(cpu);
		meta(kCpuPid, &tid, "thread_name", fmt::format("CPU {}", cpu));
	}
	meta(kThreadPid, nullptr, "process_name", "threads");
	const std::uint32_t none = no_thread_tid();
	meta(kThreadPid, &none, "thread_name", "(no thread: timers)");
	for (const auto &[tid, name] : thread_names_)
		meta(kThreadPid, &tid, "thread_name", name);
	bool first = true;
	for (const Event &e : events_) {
		if (!first)
			out += ",\n";
		first = false;
		out += fmt::format("{{\"ph\":\"{}\",\"pid\":{},\"tid\":{},\"ts\":{},\"name\":{}", e.phase,
				e.pid, e.tid, micros(e.ts), quoted(e.name));
		if (*e.category)
			out += fmt::format(",\"cat\":\"{}\"", e.category);
		if (e.phase == 's' || e.phase == 'f')
			out += fmt::format(",\"id\":{}", e.flow);
		if (e.phase == 'f')
			out += ",\"bp\":\"e\"";
		if (e.phase == 'i')
			out += ",\"s\":\"t\"";
		if (!e.args.empty())
			out += ",\"args\":" + e.args;
		out += '}';
	}
	// A trailing process metadata record keeps the array valid when there are no events.
	if (!first)
		out += ",\n";
	out += "{\"ph\":\"M\",\"pid\":1,\"name\":\"process_sort_index\",\"args\":{\"sort_index\":0}}";
	out += "\n]}\n";
	return out;
}

} // namespace helsim::sim
