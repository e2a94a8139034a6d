#include "admin/request_guard.h"

#include <gtest/gtest.h>

#include <string>

namespace porcupine::admin {
namespace {

using Clock = RequestGuard::Clock;
using std::chrono::seconds;

HttpLimits Limits() {
  HttpLimits l;
  l.header_timeout = seconds(10);
  l.body_timeout = seconds(30);
  l.write_timeout = seconds(5);
  l.max_header_bytes = 64;
  return l;
}

// Feeds `text` split into pieces of `piece` bytes; returns the bytes admitted.
size_t Feed(RequestGuard& g, const std::string& text, size_t piece, Clock::time_point now) {
  size_t admitted = 0;
  for (size_t i = 0; i < text.size(); i += piece) {
    std::string part = text.substr(i, piece);
    size_t got = g.Admit(part.data(), part.size(), now);
    admitted += got;
    if (got < part.size()) break;
  }
  return admitted;
}

TEST(RequestGuard, HeadEndsAtTheEmptyLineAtEveryPieceSize) {
  const std::string head = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
  for (size_t piece = 1; piece <= head.size(); ++piece) {
    HttpLimits limits = Limits();
    RequestGuard g(limits);
    Clock::time_point t0 = Clock::now();
    g.Start(t0);
    EXPECT_EQ(g.read_deadline(), t0 + seconds(10));
    EXPECT_EQ(Feed(g, head.substr(0, head.size() - 1), piece, t0 + seconds(1)), head.size() - 1);
    EXPECT_TRUE(g.in_head()) << piece;
    EXPECT_EQ(g.Admit("\n", 1, t0 + seconds(2)), 1u);
    EXPECT_FALSE(g.in_head()) << piece;
    EXPECT_EQ(g.read_deadline(), t0 + seconds(32)) << "the body deadline runs from the head's end";
    EXPECT_EQ(g.cut(), RequestGuard::Cut::kNone);
  }
}

TEST(RequestGuard, BareLfLinesDoNotEndTheHead) {
  HttpLimits limits = Limits();
  RequestGuard g(limits);
  g.Start(Clock::now());
  std::string text = "GET / HTTP/1.1\n\nX: y\r\n";
  g.Admit(text.data(), text.size(), Clock::now());
  EXPECT_TRUE(g.in_head());
  g.Admit("\r\n", 2, Clock::now());
  EXPECT_FALSE(g.in_head());
}

TEST(RequestGuard, HeadLargerThanTheLimitIsCut) {
  HttpLimits limits = Limits();
  RequestGuard g(limits);
  g.Start(Clock::now());
  std::string line = "X-Pad: " + std::string(100, 'p') + "\r\n";
  EXPECT_EQ(Feed(g, "GET / HTTP/1.1\r\n" + line, 1, Clock::now()), 64u);
  EXPECT_EQ(g.cut(), RequestGuard::Cut::kHeaderSize);
  EXPECT_EQ(g.Admit("x", 1, Clock::now()), 0u) << "nothing more once cut";
  EXPECT_STREQ(CutName(g.cut()), "header_size");
}

TEST(RequestGuard, BodyBytesAreNotCountedAsHead) {
  HttpLimits limits = Limits();
  RequestGuard g(limits);
  g.Start(Clock::now());
  std::string head = "POST / HTTP/1.1\r\nContent-Length: 500\r\n\r\n";
  ASSERT_EQ(Feed(g, head, 1, Clock::now()), head.size());
  std::string body(500, 'b');
  EXPECT_EQ(g.Admit(body.data(), body.size(), Clock::now()), body.size());
  EXPECT_EQ(g.cut(), RequestGuard::Cut::kNone);
}

TEST(RequestGuard, ExpiryCutsByPhase) {
  HttpLimits limits = Limits();
  RequestGuard g(limits);
  g.Start(Clock::now());
  g.ReadExpired();
  EXPECT_EQ(g.cut(), RequestGuard::Cut::kHeaderTimeout);
  g.Start(Clock::now());
  EXPECT_EQ(g.cut(), RequestGuard::Cut::kNone) << "a new request starts clean";
  std::string head = "GET / HTTP/1.1\r\n\r\n";
  g.Admit(head.data(), head.size(), Clock::now());
  g.ReadExpired();
  EXPECT_EQ(g.cut(), RequestGuard::Cut::kBodyTimeout);
  g.CutFor(RequestGuard::Cut::kWriteTimeout);
  EXPECT_EQ(g.cut(), RequestGuard::Cut::kBodyTimeout) << "the first reason stays";
}

TEST(RequestGuard, WriteDeadlineIsSetOncePerRequest) {
  HttpLimits limits = Limits();
  RequestGuard g(limits);
  Clock::time_point t0 = Clock::now();
  g.Start(t0);
  EXPECT_EQ(g.WriteDeadline(t0 + seconds(1)), t0 + seconds(6));
  EXPECT_EQ(g.WriteDeadline(t0 + seconds(3)), t0 + seconds(6));
  g.Start(t0 + seconds(10));
  EXPECT_EQ(g.WriteDeadline(t0 + seconds(11)), t0 + seconds(16));
}

}  // namespace
}  // namespace porcupine::admin
