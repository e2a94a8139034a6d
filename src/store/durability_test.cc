// Acknowledged ⇒ durable, across kill -9: a child process commits batches one
// by one and reports each acknowledged index on a pipe; the parent kills it
// at a random moment and checks that every reported index survived.
//
// The child is this test binary re-executed (fork + exec) running only
// Durability.DISABLED_ChildWriter: a forked copy of a multi-threaded process
// (RocksDB's thread pools) cannot safely use RocksDB.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "store/store.h"
#include "store/test_util.h"

extern char** environ;

namespace porcupine::store {
namespace {

using testing::TempDir;
using testing::TestMessage;
using testing::TestNodeMeta;

constexpr char kDirEnv[] = "PORCUPINE_STORE_CHILD_DIR";
constexpr char kFdEnv[] = "PORCUPINE_STORE_CHILD_FD";
constexpr char kStartEnv[] = "PORCUPINE_STORE_CHILD_START";

MessageId IdOf(uint32_t index) { return {1000 + index, 42, index}; }
std::string BodyOf(uint32_t index) { return "body of message " + std::to_string(index); }

// Runs only when re-executed by KillDuringCommitsLosesNothingAcknowledged.
TEST(Durability, DISABLED_ChildWriter) {
  const char* dir = std::getenv(kDirEnv);
  const char* fd_text = std::getenv(kFdEnv);
  const char* start_text = std::getenv(kStartEnv);
  if (!dir || !fd_text || !start_text) GTEST_SKIP() << "only run as the durability child";
  const int fd = std::atoi(fd_text);
  Options options;
  options.data_dir = dir;
  Result<std::unique_ptr<Store>> store = Store::Open(options, TestNodeMeta());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (uint32_t i = static_cast<uint32_t>(std::atoi(start_text));; ++i) {
    const std::string body = BodyOf(i);
    Batch b;
    b.PutMessage(5, "victim", TestMessage(IdOf(i)), &body);
    ASSERT_TRUE((*store)->Commit(std::move(b)).ok());
    // Acknowledged: only now may anyone learn about it.
    ASSERT_EQ(write(fd, &i, sizeof i), static_cast<ssize_t>(sizeof i));
  }
}

// Starts the child writer; returns its pid and the pipe's read end.
std::pair<pid_t, int> StartChild(const std::string& dir, uint32_t start) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  // Everything exec needs is built before fork: the child only calls exec.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  env_strings.push_back(std::string(kDirEnv) + "=" + dir);
  env_strings.push_back(std::string(kFdEnv) + "=" + std::to_string(fds[1]));
  env_strings.push_back(std::string(kStartEnv) + "=" + std::to_string(start));
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe", filter = "--gtest_filter=Durability.DISABLED_ChildWriter",
              disabled = "--gtest_also_run_disabled_tests", brief = "--gtest_brief=1";
  char* argv[] = {self.data(), filter.data(), disabled.data(), brief.data(), nullptr};
  const pid_t pid = fork();
  if (pid == 0) {
    execve("/proc/self/exe", argv, envp.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

// Reads one acknowledged index; false on EOF or after the deadline.
bool ReadIndex(int fd, uint32_t* index, std::chrono::steady_clock::time_point deadline) {
  size_t got = 0;
  char* out = reinterpret_cast<char*>(index);
  while (got < sizeof *index) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = read(fd, out + got, sizeof *index - got);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

TEST(Durability, KillDuringCommitsLosesNothingAcknowledged) {
  TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  std::mt19937 rng(std::random_device{}());
  std::set<uint32_t> acked;
  uint32_t next = 0;
  for (int round = 0; round < 3; ++round) {
    const auto [pid, fd] = StartChild(data_dir, next);
    ASSERT_GT(pid, 0);
    const size_t target = std::uniform_int_distribution<size_t>(20, 200)(rng);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    size_t this_round = 0;
    uint32_t index = 0;
    while (this_round < target && ReadIndex(fd, &index, deadline)) {
      acked.insert(index);
      ++this_round;
    }
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    ASSERT_GE(this_round, target) << "child made too little progress (exit status " << wstatus
                                  << ")";
    EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
    // Indexes the child acknowledged between our last read and its death.
    while (ReadIndex(fd, &index, std::chrono::steady_clock::now() + std::chrono::seconds(5))) {
      acked.insert(index);
    }
    close(fd);
    next = *acked.rbegin() + 1000;  // the next child writes fresh ids

    Options options;
    options.data_dir = data_dir;
    Result<std::unique_ptr<Store>> store = Store::Open(options, TestNodeMeta());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Result<std::vector<MessageMeta>> list = (*store)->ListMessages(5, "victim", 1);
    ASSERT_TRUE(list.ok()) << list.status().ToString();
    std::set<uint32_t> present;
    for (const MessageMeta& m : *list) present.insert(MessageId::FromBytes(m.id())->counter);
    for (uint32_t i : acked) {
      ASSERT_TRUE(present.count(i)) << "acknowledged message " << i << " lost in round " << round;
      Result<std::string> body = (*store)->ReadBody(IdOf(i));
      ASSERT_TRUE(body.ok()) << body.status().ToString();
      EXPECT_EQ(*body, BodyOf(i));
    }
    std::cout << "[ kill -9  ] round " << round << ": " << acked.size() << " acked, "
              << present.size() << " present\n";
  }
}

}  // namespace
}  // namespace porcupine::store
