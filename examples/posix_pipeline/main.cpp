// posix_pipeline: `producer | consumer`, set up by a shell, on helsim's POSIX subsystem.
//
// Three programs run as POSIX processes (each its own universe and address space, served by
// the POSIX server; docs/posix.md). The shell does what a Unix shell does for a pipeline, with
// helsim::posix::spawn standing in for fork + exec until they exist (issue 15): a child
// inherits every fd that is not FD_CLOEXEC, at the same number. So the shell
//   1. makes a pipe whose own ends are close-on-exec (children must not inherit them),
//   2. puts the write end at fd 1 (dup2 clears FD_CLOEXEC on the copy) and spawns the producer,
//   3. puts the read end at fd 0 and spawns the consumer,
//   4. restores its fds 0 and 1 and closes its pipe ends.
// The producer writes lines to fd 1; the consumer reads fd 0 until end of file (which comes
// once the last write end is closed: the producer's, when it exits), uppercases the text,
// counts lines and bytes, and writes the result to its fd 1: /dev/console, which the host
// captures through Options::console.
//
// The host runs the pipeline twice: with every acceleration strategy on, and with the file
// table off (reads and writes then go through the POSIX server, which forwards them). The
// output must be the same; the counters show the different path. It exits non-zero on any
// mismatch. HELSIM_MODE=deterministic:<seed> runs it on one host thread under that seed.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <helsim/machine.hpp>
#include <helsim/posix.hpp>

namespace px = helsim::posix;

namespace {

constexpr std::string_view kLines[] = {
		"the producer writes these lines into a pipe\n",
		"the consumer reads them until end of file\n",
		"and the shell connected the two\n",
};

// Inside a process, calls return a negative errno value on failure (there is no errno).
bool ok(long result, const char *program, const char *what) {
	if (result >= 0)
		return true;
	std::fprintf(stderr, "%s: %s: %s\n", program, what, std::strerror(static_cast<int>(-result)));
	return false;
}

// write(2) may write less than asked; a pipe's small writes are whole, but say so anyway.
bool write_all(int fd, std::string_view text) {
	while (!text.empty()) {
		ssize_t n = px::write(fd, text.data(), text.size());
		if (n <= 0)
			return false;
		text.remove_prefix(static_cast<std::size_t>(n));
	}
	return true;
}

bool is_pipe(int fd) {
	struct stat st {};
	return px::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

int producer(int, char **) {
	if (!is_pipe(1))
		return 2; // the shell did not connect our stdout
	for (auto line : kLines)
		if (!write_all(1, line))
			return 1;
	return 0; // exiting closes fd 1, the last write end: the consumer sees end of file
}

int consumer(int, char **) {
	if (!is_pipe(0))
		return 2;
	std::string text;
	std::size_t lines = 0;
	char buffer[16]; // small on purpose: a line takes several reads
	for (;;) {
		ssize_t n = px::read(0, buffer, sizeof buffer);
		if (!ok(n, "consumer", "read stdin"))
			return 1;
		if (n == 0)
			break; // end of file: every write end is closed
		for (char c : std::string_view{buffer, static_cast<std::size_t>(n)}) {
			text.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
			lines += c == '\n';
		}
	}
	text += std::to_string(lines) + " lines, " + std::to_string(text.size()) + " bytes\n";
	return write_all(1, text) ? 0 : 1;
}

// What the shell tells the host. The programs are host functions, so the shell can write
// its children's pids into host memory; a real shell would waitpid for them (issue 15).
struct Jobs {
	pid_t producer = -1;
	pid_t consumer = -1;
};

int shell(Jobs &jobs) {
	int ends[2];
	// (1) O_CLOEXEC: the shell's own ends are not inherited, only the copies made in (2), (3).
	if (!ok(px::pipe2(ends, O_CLOEXEC), "sh", "pipe2"))
		return 1;

	// (2) producer: stdout = the write end. Save our stdout at fd >= 10, close-on-exec.
	int saved_out = px::fcntl(1, F_DUPFD_CLOEXEC, 10);
	if (!ok(saved_out, "sh", "save stdout") || !ok(px::dup2(ends[1], 1), "sh", "dup2 stdout"))
		return 1;
	const char *producer_argv[] = {"producer", nullptr};
	jobs.producer = px::spawn("/bin/producer", producer_argv);
	if (!ok(jobs.producer, "sh", "spawn /bin/producer") ||
			!ok(px::dup2(saved_out, 1), "sh", "restore stdout") ||
			!ok(px::close(saved_out), "sh", "close saved stdout"))
		return 1;

	// (3) consumer: stdin = the read end.
	int saved_in = px::fcntl(0, F_DUPFD_CLOEXEC, 10);
	if (!ok(saved_in, "sh", "save stdin") || !ok(px::dup2(ends[0], 0), "sh", "dup2 stdin"))
		return 1;
	const char *consumer_argv[] = {"consumer", nullptr};
	jobs.consumer = px::spawn("/bin/consumer", consumer_argv);
	if (!ok(jobs.consumer, "sh", "spawn /bin/consumer") ||
			!ok(px::dup2(saved_in, 0), "sh", "restore stdin") ||
			!ok(px::close(saved_in), "sh", "close saved stdin"))
		return 1;

	// (4) Our pipe ends: while we hold the write end, the consumer would never see EOF.
	if (!ok(px::close(ends[0]), "sh", "close read end") ||
			!ok(px::close(ends[1]), "sh", "close write end"))
		return 1;
	return 0;
}

struct Outcome {
	std::string console; // everything written to /dev/console
	Jobs jobs;
	int shell_status = -1, producer_status = -1, consumer_status = -1;
	px::Counters counters;
	helsim::RunReport report;
};

Outcome run_pipeline(px::Options options) {
	Outcome out;
	helsim::Machine machine; // threads mode; HELSIM_MODE=deterministic:<seed> replays a run
	// Called by the POSIX server (one simulated thread) for each write to the console.
	options.console = [&out](std::string_view text) { out.console += text; };
	px::System system{machine, options};
	system.add_program("/bin/sh", [&out](int, char **) { return shell(out.jobs); });
	system.add_program("/bin/producer", producer);
	system.add_program("/bin/consumer", consumer);

	pid_t sh = system.spawn("/bin/sh", {"sh"}); // fd 0 /dev/null, fds 1 and 2 /dev/console
	out.report = machine.run();                 // returns once the last POSIX process has exited

	auto status = [&](pid_t pid) {
		return pid > 0 && system.has_exited(pid) ? system.exit_status(pid) : -1;
	};
	out.shell_status = status(sh);
	out.producer_status = status(out.jobs.producer);
	out.consumer_status = status(out.jobs.consumer);
	out.counters = system.counters();
	return out;
}

std::string expected_output() {
	std::string text;
	std::size_t lines = 0;
	for (auto line : kLines) {
		for (char c : line)
			text.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
		++lines;
	}
	return text + std::to_string(lines) + " lines, " + std::to_string(text.size()) + " bytes\n";
}

bool exited_zero(int status) {
	return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Everything one run must satisfy; prints what does not hold.
bool check(const char *name, const Outcome &out, bool file_table) {
	bool good = true;
	auto expect = [&](bool condition, const std::string &what) {
		if (!condition)
			std::printf("%s: FAILED: %s\n", name, what.c_str());
		good = good && condition;
	};
	expect(exited_zero(out.shell_status), "shell status " + std::to_string(out.shell_status));
	expect(exited_zero(out.producer_status),
			"producer status " + std::to_string(out.producer_status));
	expect(exited_zero(out.consumer_status),
			"consumer status " + std::to_string(out.consumer_status));
	expect(out.console == expected_output(), "console output:\n" + out.console);
	expect(out.counters.processes_started == 3 && out.counters.processes_exited == 3,
			"three processes started and exited");
	// File table on: reads and writes go straight to the pipe's server, never through the
	// POSIX server. Off: each one is forwarded.
	expect(file_table ? out.counters.forwarded_requests == 0 : out.counters.forwarded_requests > 0,
			"forwarded requests " + std::to_string(out.counters.forwarded_requests));
	expect(!out.report.stuck && out.report.leaks.empty() && out.report.operations_pending() == 0,
			"a clean end:\n" + out.report.to_string());
	return good;
}

} // namespace

int main() {
	Outcome on = run_pipeline({});
	Outcome off = run_pipeline({.file_table = false});

	std::printf("the consumer wrote to /dev/console:\n%s\n", on.console.c_str());
	std::printf("%-44s %10s %16s\n", "counters", "all on", "file_table off");
	auto row = [](const char *what, std::uint64_t a, std::uint64_t b) {
		std::printf("%-44s %10llu %16llu\n", what, static_cast<unsigned long long>(a),
				static_cast<unsigned long long>(b));
	};
	row("requests served by the POSIX server", on.counters.server_requests,
			off.counters.server_requests);
	row("  of which file requests it forwarded", on.counters.forwarded_requests,
			off.counters.forwarded_requests);
	row("supercalls observed and answered", on.counters.supercalls, off.counters.supercalls);
	row("requests served on passthrough lanes", on.counters.passthrough_requests,
			off.counters.passthrough_requests);
	row("IPC submissions by clients", on.counters.client_submissions,
			off.counters.client_submissions);

	bool good = check("all on", on, true) && check("file_table off", off, false);
	std::printf("%s\n", good ? "the pipeline ran and ended cleanly, both ways" : "FAILED");
	return good ? 0 : 1;
}
