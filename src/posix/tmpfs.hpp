// The in-memory file system: directories, regular files and the devices /dev/null, /dev/zero
// and /dev/console. It lives in host memory owned by the System, so files outlive a server
// that stopped because its last process exited.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <helsim/posix.hpp>

#include "file.hpp"

namespace helsim::posix::detail {

enum class InodeKind { directory, regular, null_device, zero_device, console, outside_device };

struct Inode {
	InodeKind kind;
	std::uint64_t ino;
	mode_t mode;             // permission bits
	std::uint32_t links = 1; // 0 once unlinked; open descriptions keep it readable
	std::vector<std::byte> data;
	std::map<std::string, std::shared_ptr<Inode>, std::less<>> entries; // directories
	std::shared_ptr<posix::Device> device; // outside_device: System::add_device's
};

class Tmpfs {
public:
	explicit Tmpfs(std::function<void(std::string_view)> console);

	// The inode at an absolute path ("." and ".." resolved, repeated slashes ignored), or a
	// negative errno (-ENOENT, -ENOTDIR, -ENAMETOOLONG, -EINVAL for a relative path).
	std::int64_t lookup(std::string_view path, std::shared_ptr<Inode> &out) const;
	// open(2)'s namespace part: the inode to open under `flags`, creating a regular file with
	// O_CREAT. A negative errno (-EEXIST, -EISDIR, -ENOENT, ...) or 0.
	std::int64_t open(std::string_view path, int flags, mode_t mode, std::shared_ptr<Inode> &out);
	std::int64_t unlink(std::string_view path);
	// System::add_device: a character device at `path` served outside the server (its
	// directory must exist). A negative errno (-EEXIST, -ENOENT, ...) or 0.
	std::int64_t add_device(std::string_view path, std::shared_ptr<posix::Device> device);

	// A description of `inode` opened with `flags`.
	std::shared_ptr<OpenFile> make_file(std::shared_ptr<Inode> inode, int flags);

	void write_console(std::string_view text) const { console_(text); }

private:
	// The inode `parts` lead to from the root, or -ENOENT / -ENOTDIR.
	std::int64_t walk(std::span<const std::string> parts, std::shared_ptr<Inode> &out) const;
	// The parent directory of `path` and its last component.
	std::int64_t parent_of(std::string_view path, std::shared_ptr<Inode> &parent,
			std::string &name) const;
	std::shared_ptr<Inode> make_inode(InodeKind kind, mode_t mode);

	std::shared_ptr<Inode> root_;
	std::uint64_t next_ino_ = 1;
	std::function<void(std::string_view)> console_;
};

} // namespace helsim::posix::detail
