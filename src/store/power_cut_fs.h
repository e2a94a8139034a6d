// A RocksDB FileSystem for tests that models a power cut (docs/storage.md,
// "Power-cut test"). Compiled only into the store's tests.
//
// Every call goes through to the real file system underneath, so RocksDB
// reads back what it wrote, like a process reads the page cache. Alongside,
// the wrapper records what a real disk would hold after losing power:
//
// - data appended to a file is durable only once a Sync or Fsync of that
//   file returned OK; RangeSync does not count (sync_file_range only starts
//   writeback and never flushes metadata or the disk's cache);
// - a file's name (its creation, a rename to it, its deletion) is durable
//   only once its directory's Fsync (or FsyncWithDirOptions) returned OK; a
//   file's own Sync does not make its name durable.
//
// CutPower() is the moment the power goes. The process goes on running
// (the test cannot stop RocksDB's threads mid-call), but like a machine
// whose disk has lost power nothing it does from then on becomes durable:
// calls still succeed and reach the files underneath, but syncs and
// directory fsyncs no longer count, and a sync that was running when the
// power went does not count either. Every call succeeding keeps RocksDB off
// its I/O-error paths, which a real cut never reaches; a test must only
// trust acknowledgements it received before CutPower(). After the DB is
// closed, RestoreAfterCut() rewrites the directory to what the disk held:
// namespace changes not made durable are undone, newest first (a created
// file removed, a deleted one put back with its durable bytes, a rename
// reversed and the file it replaced put back), then every file written since
// the last cut is cut back to the bytes synced (a truncation, not garbage:
// see docs). Then power is back: the files on disk are all durable again.
//
// Not modelled: directories (their creation is taken as durable at once),
// hard links and random-write files (refused with NotSupported), writes
// reordered or torn inside a synced range, a disk that acknowledges a flush
// it did not do.
//
// Thread-safety: every method may be called from any thread concurrently.
#pragma once

#include <rocksdb/file_system.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace porcupine::store::testing {

class PowerCutFs : public rocksdb::FileSystemWrapper {
 public:
  // Wraps `base` (RocksDB's default, the local file system, when null).
  // RestoreAfterCut() truncates files with std::filesystem: `base` must keep
  // its files in the local file system under the names it is given.
  explicit PowerCutFs(std::shared_ptr<rocksdb::FileSystem> base = nullptr);
  ~PowerCutFs() override;

  static const char* kClassName() { return "PorcupinePowerCutFs"; }
  const char* Name() const override { return kClassName(); }

  // The power goes now (see above). Idempotent.
  void CutPower();
  // The power goes at the (calls+1)-th call that changes the disk from now
  // on (that call no longer counts): a cut at a chosen point of any sequence
  // of disk changes, e.g. inside a DB open's recovery. Replaces an earlier
  // CutAfter; cleared by the cut's restore.
  void CutAfter(uint64_t calls);
  // Rewrites the files to what the cut left and turns the power back on.
  // FailedPrecondition (changing nothing) while a file opened for writing
  // through this wrapper is still open (close the DB first) or when the power
  // is on; IoError when the rewrite fails.
  Status RestoreAfterCut();
  // CutPower() then RestoreAfterCut(), for when nothing is open.
  Status PowerCut();
  bool power_on() const;

  // What the last RestoreAfterCut() did, for tests that check their teeth.
  struct CutReport {
    uint64_t bytes_dropped = 0;   // unsynced bytes cut off file tails
    uint64_t files_removed = 0;   // creations undone
    uint64_t files_restored = 0;  // deletions undone (file put back)
    uint64_t renames_undone = 0;  // renames reversed
    uint64_t pending_at_cut = 0;  // namespace changes not durable at the cut
  };
  CutReport last_cut() const;
  // Calls counted since construction.
  struct Counters {
    uint64_t calls = 0;        // calls that change the disk, made with the power on
    uint64_t file_syncs = 0;   // Sync/Fsync of a writable file that returned OK
    uint64_t dir_syncs = 0;    // directory fsyncs that returned OK
    uint64_t range_syncs = 0;  // RangeSync calls (not counted as durable)
  };
  Counters counters() const;

  // rocksdb::FileSystem: the calls that change the disk.
  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& target,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& fname, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;

 private:
  class File;
  class Directory;

  // The durable view of one file written since the last cut. Shared with the
  // open handles, so it follows the file through renames (like an inode).
  struct FileState {
    uint64_t size = 0;    // bytes written
    uint64_t synced = 0;  // bytes durable (a prefix)
  };
  // A namespace change not yet made durable by its directory's fsync.
  struct DirOp {
    enum class Kind { kCreate, kDelete, kRename } kind;
    uint64_t seq = 0;  // order of the change
    std::string dir;   // the directory whose fsync makes it durable
    std::string path;  // created, deleted, or the rename's target
    std::string from;  // kRename: the source
    // kDelete: the durable bytes of the deleted file; kRename: those of the
    // file the rename replaced. nullopt: nothing to put back.
    std::optional<std::string> saved;
  };

  // Whether the power is on; REQUIRES: mu_ held.
  bool OnLocked() const { return !cut_; }
  // The same for a call that changes the disk, which counts towards
  // CutAfter (and may be the one the power goes at: then false).
  // REQUIRES: mu_ held.
  bool Step();
  // The durable bytes of the file at `path` now (all of an untracked file,
  // the synced prefix of a tracked one); nullopt when it does not exist.
  // REQUIRES: mu_ held.
  std::optional<std::string> DurableBytes(const std::string& path);
  void Record(DirOp op);  // REQUIRES: mu_ held
  rocksdb::IOStatus OpenWritable(const std::string& fname, const rocksdb::FileOptions& options,
                                 std::unique_ptr<rocksdb::FSWritableFile>* result,
                                 rocksdb::IODebugContext* dbg, bool reopen);
  Status Undo(const DirOp& op, CutReport& report);  // REQUIRES: mu_ held
  // Makes the changes in `dir` numbered below `before_seq` durable, unless
  // the power went before the fsync returned.
  void DirSynced(const std::string& dir, uint64_t before_seq);

  mutable std::mutex mu_;
  bool cut_ = false;                                         // guarded by mu_
  std::map<std::string, std::shared_ptr<FileState>> files_;  // guarded by mu_
  std::vector<DirOp> pending_;                               // guarded by mu_; oldest first
  uint64_t next_seq_ = 1;                                    // guarded by mu_
  int open_files_ = 0;                                       // guarded by mu_
  std::optional<uint64_t> calls_left_;                       // guarded by mu_; CutAfter
  CutReport last_cut_;                                       // guarded by mu_
  Counters counters_;                                        // guarded by mu_
};

}  // namespace porcupine::store::testing
