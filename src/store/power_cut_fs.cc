#include "store/power_cut_fs.h"

#include <filesystem>
#include <utility>

namespace porcupine::store::testing {
namespace {

// One spelling per file, so that "db//x" and "db/x" are one file.
std::string Normal(const std::string& path) {
  std::string p = std::filesystem::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string DirOf(const std::string& normal_path) {
  return std::filesystem::path(normal_path).parent_path().string();
}

Status FromIo(const rocksdb::IOStatus& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  return Status::IoError("power cut restore: " + what + ": " + s.ToString());
}

}  // namespace

// A writable file whose appends and syncs are recorded in its FileState.
class PowerCutFs::File : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  File(std::unique_ptr<rocksdb::FSWritableFile> target, PowerCutFs* fs,
       std::shared_ptr<FileState> state)
      : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), state_(std::move(state)) {}
  ~File() override {
    std::lock_guard lock(fs_->mu_);
    --fs_->open_files_;
  }

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    std::lock_guard lock(fs_->mu_);
    fs_->Step();
    rocksdb::IOStatus s = target()->Append(data, options, dbg);
    if (s.ok()) state_->size += data.size();
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo&,
                           rocksdb::IODebugContext* dbg) override {
    return Append(data, options, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    std::lock_guard lock(fs_->mu_);
    fs_->Step();
    rocksdb::IOStatus s = target()->PositionedAppend(data, offset, options, dbg);
    if (s.ok()) state_->size = std::max<uint64_t>(state_->size, offset + data.size());
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo&,
                                     rocksdb::IODebugContext* dbg) override {
    return PositionedAppend(data, offset, options, dbg);
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    std::lock_guard lock(fs_->mu_);
    fs_->Step();
    rocksdb::IOStatus s = target()->Truncate(size, options, dbg);
    if (s.ok()) {
      state_->size = size;
      state_->synced = std::min(state_->synced, size);
    }
    return s;
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    std::lock_guard lock(fs_->mu_);
    fs_->Step();
    return target()->Flush(options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return Synced([&] { return target()->Sync(options, dbg); });
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return Synced([&] { return target()->Fsync(options, dbg); });
  }
  // Passed down (the disk behaves as without the wrapper) but not counted as
  // durable: sync_file_range starts writeback and waits for nothing.
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    {
      std::lock_guard lock(fs_->mu_);
      fs_->Step();
      ++fs_->counters_.range_syncs;
    }
    return target()->RangeSync(offset, nbytes, options, dbg);
  }

 private:
  // Runs a sync outside the lock (it is slow; appends of other files go on)
  // and counts the bytes written before it began as durable, unless the
  // power was off when it began or went before it returned.
  template <typename SyncFn>
  rocksdb::IOStatus Synced(SyncFn sync) {
    uint64_t covered = 0;
    bool on = false;
    {
      std::lock_guard lock(fs_->mu_);
      on = fs_->Step();
      covered = state_->size;
    }
    rocksdb::IOStatus s = sync();
    std::lock_guard lock(fs_->mu_);
    if (s.ok() && on && fs_->OnLocked()) {
      state_->synced = std::max(state_->synced, covered);
      ++fs_->counters_.file_syncs;
    }
    return s;
  }

  PowerCutFs* const fs_;
  const std::shared_ptr<FileState> state_;
};

// A directory whose fsync makes the namespace changes made in it before
// the fsync began durable.
class PowerCutFs::Directory : public rocksdb::FSDirectoryWrapper {
 public:
  Directory(std::unique_ptr<rocksdb::FSDirectory> target, PowerCutFs* fs, std::string name)
      : FSDirectoryWrapper(std::move(target)), fs_(fs), name_(std::move(name)) {}

  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return Synced([&] { return FSDirectoryWrapper::Fsync(options, dbg); });
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& options,
                                        rocksdb::IODebugContext* dbg,
                                        const rocksdb::DirFsyncOptions& dir_options) override {
    return Synced(
        [&] { return FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_options); });
  }

 private:
  template <typename SyncFn>
  rocksdb::IOStatus Synced(SyncFn sync) {
    uint64_t before = 0;
    bool on = false;
    {
      std::lock_guard lock(fs_->mu_);
      on = fs_->Step();
      before = fs_->next_seq_;
    }
    rocksdb::IOStatus s = sync();
    if (s.ok() && on) fs_->DirSynced(name_, before);
    return s;
  }

  PowerCutFs* const fs_;
  const std::string name_;
};

PowerCutFs::PowerCutFs(std::shared_ptr<rocksdb::FileSystem> base)
    : FileSystemWrapper(base ? std::move(base) : rocksdb::FileSystem::Default()) {}

PowerCutFs::~PowerCutFs() = default;

void PowerCutFs::CutPower() {
  std::lock_guard lock(mu_);
  cut_ = true;
}

void PowerCutFs::CutAfter(uint64_t calls) {
  std::lock_guard lock(mu_);
  calls_left_ = calls;
}

bool PowerCutFs::Step() {
  if (cut_) return false;
  ++counters_.calls;
  if (calls_left_ && (*calls_left_)-- == 0) {
    calls_left_.reset();
    cut_ = true;
    return false;
  }
  return true;
}

bool PowerCutFs::power_on() const {
  std::lock_guard lock(mu_);
  return !cut_;
}

Status PowerCutFs::PowerCut() {
  CutPower();
  return RestoreAfterCut();
}

PowerCutFs::CutReport PowerCutFs::last_cut() const {
  std::lock_guard lock(mu_);
  return last_cut_;
}

PowerCutFs::Counters PowerCutFs::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

void PowerCutFs::DirSynced(const std::string& dir, uint64_t before_seq) {
  std::lock_guard lock(mu_);
  if (cut_) return;  // too late: the fsync did not finish before the cut
  ++counters_.dir_syncs;
  std::erase_if(pending_, [&](const DirOp& op) { return op.dir == dir && op.seq < before_seq; });
}

void PowerCutFs::Record(DirOp op) {
  op.seq = next_seq_++;
  pending_.push_back(std::move(op));
}

std::optional<std::string> PowerCutFs::DurableBytes(const std::string& path) {
  std::string data;
  if (!target_->FileExists(path, rocksdb::IOOptions(), nullptr).ok()) return std::nullopt;
  if (!rocksdb::ReadFileToString(target_.get(), path, &data).ok()) return std::nullopt;
  if (auto it = files_.find(path); it != files_.end() && data.size() > it->second->synced) {
    data.resize(it->second->synced);
  }
  return data;
}

rocksdb::IOStatus PowerCutFs::OpenWritable(const std::string& fname,
                                           const rocksdb::FileOptions& options,
                                           std::unique_ptr<rocksdb::FSWritableFile>* result,
                                           rocksdb::IODebugContext* dbg, bool reopen) {
  std::lock_guard lock(mu_);
  Step();
  const std::string path = Normal(fname);
  const bool existed = target_->FileExists(path, rocksdb::IOOptions(), dbg).ok();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = reopen ? target_->ReopenWritableFile(path, options, &file, dbg)
                               : target_->NewWritableFile(path, options, &file, dbg);
  if (!s.ok()) return s;
  std::shared_ptr<FileState>& state = files_[path];
  if (!reopen || !state) {
    // A new or truncated file holds nothing durable; one reopened for
    // appending that was not written since the last cut is durable as is.
    const std::shared_ptr<FileState> fresh = std::make_shared<FileState>();
    if (reopen && existed) {
      uint64_t size = 0;
      s = target_->GetFileSize(path, rocksdb::IOOptions(), &size, dbg);
      if (!s.ok()) return s;
      fresh->size = fresh->synced = size;
    }
    state = fresh;
  }
  if (!existed) Record({DirOp::Kind::kCreate, 0, DirOf(path), path, "", std::nullopt});
  ++open_files_;
  *result = std::make_unique<File>(std::move(file), this, state);
  return s;
}

rocksdb::IOStatus PowerCutFs::NewWritableFile(const std::string& fname,
                                              const rocksdb::FileOptions& options,
                                              std::unique_ptr<rocksdb::FSWritableFile>* result,
                                              rocksdb::IODebugContext* dbg) {
  return OpenWritable(fname, options, result, dbg, /*reopen=*/false);
}

rocksdb::IOStatus PowerCutFs::ReopenWritableFile(const std::string& fname,
                                                 const rocksdb::FileOptions& options,
                                                 std::unique_ptr<rocksdb::FSWritableFile>* result,
                                                 rocksdb::IODebugContext* dbg) {
  return OpenWritable(fname, options, result, dbg, /*reopen=*/true);
}

rocksdb::IOStatus PowerCutFs::ReuseWritableFile(const std::string&, const std::string&,
                                                const rocksdb::FileOptions&,
                                                std::unique_ptr<rocksdb::FSWritableFile>*,
                                                rocksdb::IODebugContext*) {
  return rocksdb::IOStatus::NotSupported("PowerCutFs: recycled files are not modelled");
}

rocksdb::IOStatus PowerCutFs::NewRandomRWFile(const std::string&, const rocksdb::FileOptions&,
                                              std::unique_ptr<rocksdb::FSRandomRWFile>*,
                                              rocksdb::IODebugContext*) {
  return rocksdb::IOStatus::NotSupported("PowerCutFs: random-write files are not modelled");
}

rocksdb::IOStatus PowerCutFs::LinkFile(const std::string&, const std::string&,
                                       const rocksdb::IOOptions&, rocksdb::IODebugContext*) {
  return rocksdb::IOStatus::NotSupported("PowerCutFs: hard links are not modelled");
}

rocksdb::IOStatus PowerCutFs::NewDirectory(const std::string& name,
                                           const rocksdb::IOOptions& options,
                                           std::unique_ptr<rocksdb::FSDirectory>* result,
                                           rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  rocksdb::IOStatus s = target_->NewDirectory(name, options, &dir, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<Directory>(std::move(dir), this, Normal(name));
  return s;
}

rocksdb::IOStatus PowerCutFs::DeleteFile(const std::string& fname,
                                         const rocksdb::IOOptions& options,
                                         rocksdb::IODebugContext* dbg) {
  std::lock_guard lock(mu_);
  Step();
  const std::string path = Normal(fname);
  std::optional<std::string> saved = DurableBytes(path);
  rocksdb::IOStatus s = target_->DeleteFile(path, options, dbg);
  if (!s.ok()) return s;
  files_.erase(path);
  Record({DirOp::Kind::kDelete, 0, DirOf(path), path, "", std::move(saved)});
  return s;
}

rocksdb::IOStatus PowerCutFs::RenameFile(const std::string& src, const std::string& target,
                                         const rocksdb::IOOptions& options,
                                         rocksdb::IODebugContext* dbg) {
  std::lock_guard lock(mu_);
  Step();
  const std::string from = Normal(src), to = Normal(target);
  if (DirOf(from) != DirOf(to)) {
    return rocksdb::IOStatus::NotSupported("PowerCutFs: renames across directories");
  }
  std::optional<std::string> saved = DurableBytes(to);
  rocksdb::IOStatus s = target_->RenameFile(from, to, options, dbg);
  if (!s.ok()) return s;
  auto it = files_.find(from);
  std::shared_ptr<FileState> moved = it == files_.end() ? nullptr : it->second;
  files_.erase(from);
  files_.erase(to);
  if (moved) files_[to] = std::move(moved);
  Record({DirOp::Kind::kRename, 0, DirOf(to), to, from, std::move(saved)});
  return s;
}

rocksdb::IOStatus PowerCutFs::Truncate(const std::string& fname, size_t size,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) {
  std::lock_guard lock(mu_);
  Step();
  const std::string path = Normal(fname);
  rocksdb::IOStatus s = target_->Truncate(path, size, options, dbg);
  if (!s.ok()) return s;
  std::shared_ptr<FileState>& state = files_[path];
  if (!state) {
    // Durable up to the new size at best: the truncation itself may be lost
    // but the bytes beyond it are gone from the page cache already.
    state = std::make_shared<FileState>();
    state->synced = size;
  }
  state->size = size;
  state->synced = std::min<uint64_t>(state->synced, size);
  return s;
}

Status PowerCutFs::Undo(const DirOp& op, CutReport& report) {
  const rocksdb::IOOptions io;
  const bool exists = target_->FileExists(op.path, io, nullptr).ok();
  switch (op.kind) {
    case DirOp::Kind::kCreate:
      if (exists)
        PORCUPINE_RETURN_IF_ERROR(FromIo(target_->DeleteFile(op.path, io, nullptr), op.path));
      files_.erase(op.path);
      ++report.files_removed;
      return Status::Ok();
    case DirOp::Kind::kDelete:
      files_.erase(op.path);
      if (op.saved) {
        PORCUPINE_RETURN_IF_ERROR(
            FromIo(rocksdb::WriteStringToFile(target_.get(), *op.saved, op.path, true), op.path));
        ++report.files_restored;
      }
      return Status::Ok();
    case DirOp::Kind::kRename: {
      if (exists) {
        PORCUPINE_RETURN_IF_ERROR(
            FromIo(target_->RenameFile(op.path, op.from, io, nullptr), op.path));
      }
      auto it = files_.find(op.path);
      std::shared_ptr<FileState> moved = it == files_.end() ? nullptr : it->second;
      files_.erase(op.path);
      files_.erase(op.from);
      if (moved) files_[op.from] = std::move(moved);
      if (op.saved) {
        PORCUPINE_RETURN_IF_ERROR(
            FromIo(rocksdb::WriteStringToFile(target_.get(), *op.saved, op.path, true), op.path));
      }
      ++report.renames_undone;
      return Status::Ok();
    }
  }
  return Status::Internal("power cut restore: unknown change");
}

Status PowerCutFs::RestoreAfterCut() {
  std::lock_guard lock(mu_);
  if (!cut_) return Status::FailedPrecondition("power cut restore: the power is on");
  if (open_files_ > 0) {
    return Status::FailedPrecondition("power cut restore: " + std::to_string(open_files_) +
                                      " files still open for writing");
  }
  CutReport report;
  report.pending_at_cut = pending_.size();
  for (auto op = pending_.rbegin(); op != pending_.rend(); ++op) {
    PORCUPINE_RETURN_IF_ERROR(Undo(*op, report));
  }
  const rocksdb::IOOptions io;
  for (const auto& [path, state] : files_) {
    uint64_t size = 0;
    if (!target_->GetFileSize(path, io, &size, nullptr).ok()) continue;  // gone
    if (size <= state->synced) continue;
    // Directly: RocksDB's local file system does not implement Truncate.
    std::error_code ec;
    std::filesystem::resize_file(path, state->synced, ec);
    if (ec) return Status::IoError("power cut restore: truncate " + path + ": " + ec.message());
    report.bytes_dropped += size - state->synced;
  }
  files_.clear();
  pending_.clear();
  calls_left_.reset();
  last_cut_ = report;
  cut_ = false;
  return Status::Ok();
}

}  // namespace porcupine::store::testing
