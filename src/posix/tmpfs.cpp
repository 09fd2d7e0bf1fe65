#include "tmpfs.hpp"

#include "device.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace helsim::posix::detail {

namespace {

// Files live in host memory: one file may not grow past this.
constexpr std::uint64_t kMaxFileSize = std::uint64_t{256} << 20;

// The components of an absolute path, in order; "." and ".." stay, since they are resolved
// while walking (as Linux does: "/a/missing/.." fails, it is not "/a").
std::int64_t split(std::string_view path, std::vector<std::string> &parts) {
	if (path.empty())
		return -ENOENT;
	if (path.size() >= PATH_MAX)
		return -ENAMETOOLONG;
	if (path.front() != '/')
		return -EINVAL; // helsim has no working directory: every path is absolute
	std::size_t at = 0;
	while (at < path.size()) {
		std::size_t end = path.find('/', at);
		if (end == std::string_view::npos)
			end = path.size();
		std::string_view part = path.substr(at, end - at);
		at = end + 1;
		if (part.empty())
			continue;
		if (part.size() > NAME_MAX)
			return -ENAMETOOLONG;
		parts.emplace_back(part);
	}
	return 0;
}

class RegularFile final : public OpenFile {
public:
	RegularFile(std::shared_ptr<Inode> inode, int flags)
	: OpenFile{flags}, inode_{std::move(inode)} {}

	Async<std::int64_t> read(const Requester &, std::span<std::byte> out,
			std::int64_t offset) override {
		std::int64_t at = offset < 0 ? position_ : offset;
		auto &data = inode_->data;
		// At or past the end there is nothing to copy (and begin() + at would point far
		// outside the vector).
		if (static_cast<std::uint64_t>(at) >= data.size())
			co_return 0;
		std::size_t n = std::min(out.size(), data.size() - static_cast<std::size_t>(at));
		std::copy_n(data.begin() + at, n, out.begin());
		if (offset < 0) {
			position_ += static_cast<std::int64_t>(n);
			last_read_end_ = position_;
			last_read_size_ = n;
		}
		co_return static_cast<std::int64_t>(n);
	}

	Async<std::int64_t> write(const Requester &, std::span<const std::byte> in,
			std::int64_t offset) override {
		auto &data = inode_->data;
		std::int64_t at = offset;
		if (offset < 0)
			at = (status_flags() & O_APPEND) ? static_cast<std::int64_t>(data.size()) : position_;
		if (static_cast<std::uint64_t>(at) + in.size() > kMaxFileSize)
			co_return -EFBIG;
		std::size_t end = static_cast<std::size_t>(at) + in.size();
		if (end > data.size())
			data.resize(end);
		std::copy(in.begin(), in.end(), data.begin() + at);
		if (offset < 0) {
			position_ = static_cast<std::int64_t>(end);
			last_read_end_ = -1;
		}
		co_return static_cast<std::int64_t>(in.size());
	}

	// A read whose bytes the requester could not take: the position goes back to where that
	// read started, if it was the last thing to move it. Linux holds f_pos_lock across the
	// copy, so nothing else moves it meanwhile; here another request on the description may
	// have. Then the position stays, except after a later read of the same size, which this
	// cannot tell apart and steps back over.
	void unread(std::span<const std::byte> data) override {
		if (position_ != last_read_end_ || data.size() != last_read_size_)
			return;
		position_ -= static_cast<std::int64_t>(data.size());
		last_read_end_ = -1;
	}

	std::int64_t seek(std::int64_t offset, int whence) override {
		std::int64_t base = whence == SEEK_SET ? 0
				: whence == SEEK_CUR           ? position_
											   : static_cast<std::int64_t>(inode_->data.size());
		if ((offset > 0 && base > INT64_MAX - offset) || base + offset < 0)
			return -EINVAL;
		position_ = base + offset;
		last_read_end_ = -1;
		return position_;
	}

	bool seekable() const override { return true; }

	protocol::StatReply stat() const override {
		protocol::StatReply reply{};
		reply.ino = inode_->ino;
		reply.size = inode_->data.size();
		reply.mode = S_IFREG | inode_->mode;
		reply.nlink = inode_->links;
		return reply;
	}

private:
	std::shared_ptr<Inode> inode_;
	std::int64_t position_ = 0;
	// Where the last read left the position (-1 once something else moved it), and its size.
	std::int64_t last_read_end_ = -1;
	std::size_t last_read_size_ = 0;
};

class Directory final : public OpenFile {
public:
	Directory(std::shared_ptr<Inode> inode, int flags)
	: OpenFile{flags}, inode_{std::move(inode)} {}
	Async<std::int64_t> read(const Requester &, std::span<std::byte>, std::int64_t) override {
		co_return -EISDIR;
	}
	// As Linux's dcache_dir_lseek: SEEK_SET and SEEK_CUR to any position >= 0 (readdir would
	// count entries from it; helsim has no readdir yet), nothing else.
	std::int64_t seek(std::int64_t offset, int whence) override {
		if (whence == SEEK_CUR) {
			if (offset > 0 && position_ > INT64_MAX - offset)
				return -EINVAL;
			offset += position_;
		} else if (whence != SEEK_SET) {
			return -EINVAL;
		}
		if (offset < 0)
			return -EINVAL;
		position_ = offset;
		return position_;
	}
	protocol::StatReply stat() const override {
		protocol::StatReply reply{};
		reply.ino = inode_->ino;
		reply.mode = S_IFDIR | inode_->mode;
		reply.nlink = inode_->links + 1;
		return reply;
	}

private:
	std::shared_ptr<Inode> inode_;
	std::int64_t position_ = 0;
};

// /dev/null, /dev/zero and /dev/console: character devices as Linux's mem and tty drivers
// answer them (reads of null and console see end of file; writes of all three succeed).
class Device final : public OpenFile {
public:
	Device(std::shared_ptr<Inode> inode, int flags, const Tmpfs &fs)
	: OpenFile{flags}, inode_{std::move(inode)}, fs_{fs} {}

	Async<std::int64_t> read(const Requester &, std::span<std::byte> out, std::int64_t) override {
		if (inode_->kind != InodeKind::zero_device)
			co_return 0;
		std::fill(out.begin(), out.end(), std::byte{0});
		co_return static_cast<std::int64_t>(out.size());
	}
	Async<std::int64_t> write(const Requester &, std::span<const std::byte> in,
			std::int64_t) override {
		if (inode_->kind == InodeKind::console)
			fs_.write_console({reinterpret_cast<const char *>(in.data()), in.size()});
		co_return static_cast<std::int64_t>(in.size());
	}
	// null and zero ignore seeks (Linux's noop_llseek answers 0); a terminal cannot seek.
	std::int64_t seek(std::int64_t, int) override {
		return inode_->kind == InodeKind::console ? -ESPIPE : 0;
	}
	bool seekable() const override { return inode_->kind != InodeKind::console; }
	protocol::StatReply stat() const override {
		protocol::StatReply reply{};
		reply.ino = inode_->ino;
		reply.mode = S_IFCHR | inode_->mode;
		reply.nlink = inode_->links;
		reply.rdev = inode_->kind == InodeKind::null_device ? makedev(1, 3)
				: inode_->kind == InodeKind::zero_device    ? makedev(1, 5)
															: makedev(5, 1);
		return reply;
	}

private:
	std::shared_ptr<Inode> inode_;
	const Tmpfs &fs_;
};

} // namespace

Tmpfs::Tmpfs(std::function<void(std::string_view)> console) : console_{std::move(console)} {
	root_ = make_inode(InodeKind::directory, 0755);
	auto dev = make_inode(InodeKind::directory, 0755);
	root_->entries["dev"] = dev;
	root_->entries["tmp"] = make_inode(InodeKind::directory, 01777);
	dev->entries["null"] = make_inode(InodeKind::null_device, 0666);
	dev->entries["zero"] = make_inode(InodeKind::zero_device, 0666);
	dev->entries["console"] = make_inode(InodeKind::console, 0620);
}

std::shared_ptr<Inode> Tmpfs::make_inode(InodeKind kind, mode_t mode) {
	auto inode = std::make_shared<Inode>();
	inode->kind = kind;
	inode->ino = next_ino_++;
	inode->mode = mode;
	return inode;
}

// Every step starts in a directory: "." stays there, ".." goes back to the one it was
// entered from (the root is its own parent), a name goes into that entry.
std::int64_t Tmpfs::walk(std::span<const std::string> parts, std::shared_ptr<Inode> &out) const {
	std::vector<std::shared_ptr<Inode>> trail{root_};
	for (auto &part : parts) {
		if (trail.back()->kind != InodeKind::directory)
			return -ENOTDIR;
		if (part == ".")
			continue;
		if (part == "..") {
			if (trail.size() > 1)
				trail.pop_back();
			continue;
		}
		auto it = trail.back()->entries.find(part);
		if (it == trail.back()->entries.end())
			return -ENOENT;
		trail.push_back(it->second);
	}
	out = trail.back();
	return 0;
}

std::int64_t Tmpfs::lookup(std::string_view path, std::shared_ptr<Inode> &out) const {
	std::vector<std::string> parts;
	if (auto e = split(path, parts))
		return e;
	std::shared_ptr<Inode> at;
	if (auto e = walk(parts, at))
		return e;
	// "dir/file/" names a directory.
	if (path.back() == '/' && at->kind != InodeKind::directory)
		return -ENOTDIR;
	out = at;
	return 0;
}

std::int64_t Tmpfs::parent_of(std::string_view path, std::shared_ptr<Inode> &parent,
		std::string &name) const {
	std::vector<std::string> parts;
	if (auto e = split(path, parts))
		return e;
	if (parts.empty())
		return -EISDIR; // the root itself
	name = parts.back();
	parts.pop_back();
	std::shared_ptr<Inode> at;
	if (auto e = walk(parts, at))
		return e;
	if (at->kind != InodeKind::directory)
		return -ENOTDIR;
	// A directory, never an entry to create or remove (Linux's unlink answers EISDIR too).
	if (name == "." || name == "..")
		return -EISDIR;
	parent = at;
	return 0;
}

std::int64_t Tmpfs::open(std::string_view path, int flags, mode_t mode,
		std::shared_ptr<Inode> &out) {
	int access = flags & O_ACCMODE;
	if (access == O_ACCMODE)
		return -EINVAL;
	std::shared_ptr<Inode> inode;
	std::int64_t found = lookup(path, inode);
	if (found == -ENOENT && (flags & O_CREAT)) {
		std::shared_ptr<Inode> parent;
		std::string name;
		if (auto e = parent_of(path, parent, name))
			return e;
		if (path.back() == '/')
			return -EISDIR;
		inode = make_inode(InodeKind::regular, mode & 07777);
		parent->entries[name] = inode;
	} else if (found < 0) {
		return found;
	} else if ((flags & O_CREAT) && (flags & O_EXCL)) {
		return -EEXIST;
	}
	if (inode->kind == InodeKind::directory && (access != O_RDONLY || (flags & O_CREAT)))
		return -EISDIR;
	if (inode->kind != InodeKind::directory && (flags & O_DIRECTORY))
		return -ENOTDIR;
	if (inode->kind == InodeKind::regular && (flags & O_TRUNC) && access != O_RDONLY)
		inode->data.clear();
	out = inode;
	return 0;
}

std::int64_t Tmpfs::unlink(std::string_view path) {
	std::shared_ptr<Inode> parent;
	std::string name;
	if (auto e = parent_of(path, parent, name))
		return e;
	auto it = parent->entries.find(name);
	if (it == parent->entries.end())
		return -ENOENT;
	if (it->second->kind == InodeKind::directory)
		return -EISDIR;
	it->second->links = 0;
	parent->entries.erase(it);
	return 0;
}

std::int64_t Tmpfs::add_device(std::string_view path, std::shared_ptr<posix::Device> device) {
	std::shared_ptr<Inode> parent;
	std::string name;
	if (auto e = parent_of(path, parent, name))
		return e;
	if (parent->entries.count(name))
		return -EEXIST;
	auto inode = make_inode(InodeKind::outside_device, 0666);
	inode->device = std::move(device);
	parent->entries[name] = std::move(inode);
	return 0;
}

std::shared_ptr<OpenFile> Tmpfs::make_file(std::shared_ptr<Inode> inode, int flags) {
	int status = flags & (O_ACCMODE | O_NONBLOCK | O_APPEND);
	switch (inode->kind) {
	case InodeKind::regular: return std::make_shared<RegularFile>(std::move(inode), status);
	case InodeKind::directory: return std::make_shared<Directory>(std::move(inode), status);
	case InodeKind::outside_device: return std::make_shared<DeviceFile>(inode->device, status);
	default: return std::make_shared<Device>(std::move(inode), status, *this);
	}
}

} // namespace helsim::posix::detail
