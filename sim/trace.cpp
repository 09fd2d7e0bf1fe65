#include "trace.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/core.h>
#include <helsim/hel.h>

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

const char *error_name(int error) {
	switch (error) {
	case TraceRecorder::kNoReturn: return "(no return)";
	case kHelErrNone: return "kHelErrNone";
	case kHelErrBufferTooSmall: return "kHelErrBufferTooSmall";
	case kHelErrBadDescriptor: return "kHelErrBadDescriptor";
	case kHelErrTimeout: return "kHelErrTimeout";
	case kHelErrNoDescriptor: return "kHelErrNoDescriptor";
	case kHelErrIllegalSyscall: return "kHelErrIllegalSyscall";
	case kHelErrIllegalObject: return "kHelErrIllegalObject";
	case kHelErrIllegalArgs: return "kHelErrIllegalArgs";
	case kHelErrLaneShutdown: return "kHelErrLaneShutdown";
	case kHelErrEndOfLane: return "kHelErrEndOfLane";
	case kHelErrFault: return "kHelErrFault";
	case kHelErrThreadTerminated: return "kHelErrThreadTerminated";
	case kHelErrCancelled: return "kHelErrCancelled";
	case kHelErrTransmissionMismatch: return "kHelErrTransmissionMismatch";
	case kHelErrQueueTooSmall: return "kHelErrQueueTooSmall";
	case kHelErrIllegalState: return "kHelErrIllegalState";
	case kHelErrNoHardwareSupport: return "kHelErrNoHardwareSupport";
	case kHelErrNoMemory: return "kHelErrNoMemory";
	case kHelErrUnsupportedOperation: return "kHelErrUnsupportedOperation";
	case kHelErrOutOfBounds: return "kHelErrOutOfBounds";
	case kHelErrDismissed: return "kHelErrDismissed";
	case kHelErrRemoteFault: return "kHelErrRemoteFault";
	case kHelErrAlreadyExists: return "kHelErrAlreadyExists";
	case kHelErrBadPermissions: return "kHelErrBadPermissions";
	case kHelErrOther: return "kHelErrOther";
	case kHelErrFutexRace: return "kHelErrFutexRace";
	case kHelErrBadRights: return "kHelErrBadRights";
	default: return "(unknown HelError)";
	}
}

// The words a syscall's params string names before and after " > ".
std::pair<std::size_t, std::size_t> param_counts(const char *params) {
	std::size_t counts[2] = {0, 0};
	int side = 0;
	for (const char *p = params; p && *p;) {
		while (*p == ' ')
			++p;
		if (!*p)
			break;
		if (*p == '>') {
			side = 1;
			++p;
			continue;
		}
		++counts[side];
		while (*p && *p != ' ')
			++p;
	}
	return {counts[0], counts[1]};
}

// One word as a JSON member, by the mark before its name: a handle ('*') in decimal; a word that
// may be a host address ('&') as an offset into the machine's address window, 0 as 0x0, and
// anything else as "opaque" (a host address differs from run to run: equal runs must give equal
// traces); any other word in hex.
void append_word(std::string &out, const char *name, std::size_t length, std::uint64_t word,
		std::uintptr_t window_base, std::size_t window_size) {
	char mark = *name == '*' || *name == '&' ? *name : 0;
	if (mark) {
		++name;
		--length;
	}
	out += '"';
	out.append(name, length);
	out += "\":";
	if (mark == '*')
		out += fmt::format("{}", static_cast<std::int64_t>(word));
	else if (mark == '&' && word != 0 && (word < window_base || word - window_base >= window_size))
		out += "\"opaque\"";
	else if (mark == '&' && word != 0)
		out += fmt::format("\"window+{:#x}\"", word - window_base);
	else
		out += fmt::format("\"{:#x}\"", word);
}

} // namespace

std::string trace_metadata_member(const TraceInfo &info) {
	return fmt::format("\"metadata\":{{\"helsim_version\":\"{}\",\"seed\":\"{}\",\"mode\":{},"
					   "\"cpus\":{}}}",
			HELSIM_VERSION, info.seed, quoted(info.mode), info.cpus);
}

TraceRecorder::TraceRecorder(Host &host, const TraceInfo &info)
: host_{host}, info_{info}, cpus_{info.cpus} {}

void TraceRecorder::set_address_window(std::uintptr_t base, std::size_t size) {
	std::lock_guard lock{mutex_};
	window_base_ = base;
	window_size_ = size;
}

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
	flow_point(current_track(), slice, phase, category, flow, std::move(args));
}

void TraceRecorder::flow_point(std::pair<std::uint32_t, std::uint32_t> track, const char *slice,
		char phase, const char *category, std::uint64_t flow, std::string args) {
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

std::size_t TraceRecorder::syscall_begin(const Task &self, const char *name, const char *params,
		const std::uint64_t *args) {
	std::lock_guard lock{mutex_};
	Call call{params, {}, {}, kNoReturn};
	if (params && args) {
		std::size_t n = std::min(param_counts(params).first, kMaxArgs);
		std::memcpy(call.args, args, n * sizeof *args);
	}
	calls_.push_back(call);
	push('B', track_of(&self), name, "syscall");
	events_.back().call = static_cast<std::uint32_t>(calls_.size() - 1);
	return calls_.size() - 1;
}

void TraceRecorder::syscall_end(const Task &self, const char *name, std::size_t index, int error,
		const std::uint64_t *outs) {
	std::lock_guard lock{mutex_};
	Call &call = calls_[index];
	call.error = error;
	if (error == kHelErrNone && call.params && outs) {
		std::size_t n = std::min(param_counts(call.params).second, kMaxOuts);
		std::memcpy(call.outs, outs, n * sizeof *outs);
	}
	push('E', track_of(&self), name, "syscall");
}

// {"<param>":<word>,...,"error":"kHelErr...","out":{"<output>":<word>,...}}
void TraceRecorder::write_call_args(std::string &out, const Call &call) const {
	out += '{';
	std::size_t arg = 0, result = 0;
	bool outputs = false;
	for (const char *p = call.params; p && *p;) {
		while (*p == ' ')
			++p;
		if (!*p)
			break;
		if (*p == '>') {
			outputs = true;
			++p;
			continue;
		}
		const char *end = std::strchr(p, ' ');
		std::size_t length = end ? static_cast<std::size_t>(end - p) : std::strlen(p);
		if (!outputs && arg < kMaxArgs) {
			append_word(out, p, length, call.args[arg++], window_base_, window_size_);
			out += ',';
		}
		p += length;
	}
	out += fmt::format("\"error\":\"{}\"", error_name(call.error));
	if (call.error != kHelErrNone || !call.params || !std::strchr(call.params, '>')) {
		out += '}';
		return;
	}
	out += ",\"out\":{";
	const char *p = std::strchr(call.params, '>') + 1;
	while (*p && result < kMaxOuts) {
		while (*p == ' ')
			++p;
		if (!*p)
			break;
		const char *end = std::strchr(p, ' ');
		std::size_t length = end ? static_cast<std::size_t>(end - p) : std::strlen(p);
		if (result)
			out += ',';
		append_word(out, p, length, call.outs[result++], window_base_, window_size_);
		p += length;
	}
	out += "}}";
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

void TraceRecorder::push_descriptor(const void *node, const char *kind, std::int64_t handle,
		std::uint32_t universe, std::uint32_t rights) {
	std::lock_guard lock{mutex_};
	std::uint64_t id = next_flow_++;
	open_pushes_[node] = Push{id, kind, handle, universe};
	flow_point("push descriptor", 's', "descriptor", id,
			fmt::format("{{\"flow\":{},\"kind\":\"{}\",\"universe\":{},\"handle\":{},"
						"\"rights\":\"{:#x}\"}}",
					id, kind, universe, handle, rights));
}

std::uint32_t TraceRecorder::track_id(const Task &task) {
	std::lock_guard lock{mutex_};
	return track_of(&task).second;
}

void TraceRecorder::pull_descriptor(const void *push_node, std::uint32_t track, std::int64_t handle,
		std::uint32_t universe, int error) {
	std::lock_guard lock{mutex_};
	auto it = open_pushes_.find(push_node);
	if (it == open_pushes_.end())
		return; // pushed before tracing could see it
	Push push = it->second;
	open_pushes_.erase(it);
	// On the receiver's own track, so that the arrow goes from sender to receiver whichever of
	// them made the pair. Its track id stays valid after it ended: ids are never reused.
	flow_point(track ? std::pair{kThreadPid, track} : current_track(), "pull descriptor", 'f',
			"descriptor", push.flow,
			fmt::format("{{\"flow\":{},\"kind\":\"{}\",\"from_universe\":{},\"from_handle\":{},"
						"\"universe\":{},\"handle\":{},\"error\":\"{}\"}}",
					push.flow, push.kind, push.universe, push.handle, universe, handle,
					error_name(error)));
}

void TraceRecorder::transfer_descriptor(const char *kind, std::int64_t from_handle,
		std::uint32_t from_universe, std::int64_t to_handle, std::uint32_t to_universe) {
	std::lock_guard lock{mutex_};
	push('i', current_track(), "transfer descriptor", "descriptor",
			fmt::format("{{\"kind\":\"{}\",\"from_universe\":{},\"from_handle\":{},"
						"\"universe\":{},\"handle\":{}}}",
					kind, from_universe, from_handle, to_universe, to_handle));
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
		if (e.call != kNoCall) {
			out += ",\"args\":";
			write_call_args(out, calls_[e.call]);
		} else if (!e.args.empty()) {
			out += ",\"args\":" + e.args;
		}
		out += '}';
	}
	// A trailing process metadata record keeps the array valid when there are no events.
	if (!first)
		out += ",\n";
	out += "{\"ph\":\"M\",\"pid\":1,\"name\":\"process_sort_index\",\"args\":{\"sort_index\":0}}";
	// After the events: older importers stop reading at a key they do not know.
	out += "\n],\n" + trace_metadata_member(info_) + "}\n";
	return out;
}

} // namespace helsim::sim
