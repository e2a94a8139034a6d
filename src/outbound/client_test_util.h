// Test-only: a scripted fake SMTP server and a driver that runs an
// outbound::Client against it the way the real driver will (write, read with
// a timeout, STARTTLS, stream the body), recording what is observable.
// Header-only so the library never links it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "outbound/client.h"

namespace porcupine::outbound::testing {

// A server that answers each command line from its settings. A reply set to
// "" is never sent (the server goes silent: the client times out). After a
// reply starting with "421" the server closes the connection.
class FakeServer {
 public:
  std::string greeting = "220 mx.test ESMTP";
  // EHLO keywords after the first line (before TLS, and after it).
  std::vector<std::string> ehlo = {"PIPELINING", "SIZE 1000000", "8BITMIME", "ENHANCEDSTATUSCODES"};
  std::optional<std::vector<std::string>> ehlo_after_tls;  // default: ehlo without STARTTLS
  std::string ehlo_reply;                                  // a refusal, e.g. "502 5.5.2 no"
  std::string helo_reply = "250 mx.test";
  std::string starttls_reply = "220 2.0.0 ready";
  std::string auth_reply = "235 2.7.0 ok";
  std::string mail_reply = "250 2.1.0 ok";
  std::map<std::string, std::string> rcpt_replies;  // by address; default 250
  std::string data_reply = "354 go ahead";
  // Answer DATA with data_reply even when MAIL or every RCPT failed (a
  // broken server); otherwise that DATA gets 554 5.5.1 as from Postfix.
  bool data_without_recipients = false;
  // Replies to the final "." in order, one per message; then end_reply.
  std::vector<std::string> end_replies;
  std::string end_reply = "250 2.0.0 queued";
  std::string rset_reply = "250 2.0.0 ok";
  std::string quit_reply = "221 2.0.0 bye";
  bool tls_fails = false;             // the handshake fails
  bool close_at_end_of_data = false;  // drop the connection instead of answering "."

  // Observations.
  std::vector<std::string> commands;  // every command line, in order
  std::vector<std::string> writes;    // every client write, raw
  std::vector<std::string> bodies;    // each DATA payload as received (stuffed, CRLF)
  bool closed = false;
  bool secure = false;

  std::string Greeting() {
    if (greeting.starts_with("421")) closed = true;
    return Line(greeting);
  }

  // The client wrote `bytes`; returns the server's answer.
  std::string Receive(std::string_view bytes) {
    writes.emplace_back(bytes);
    pending_.append(bytes);
    std::string out;
    size_t lf;
    while (!closed && (lf = pending_.find('\n')) != std::string::npos) {
      std::string line = pending_.substr(0, lf + 1);
      pending_.erase(0, lf + 1);
      if (in_data_) {
        OnDataLine(line, &out);
      } else {
        if (line.size() >= 2 && line.ends_with("\r\n")) line.resize(line.size() - 2);
        commands.push_back(line);
        out += Answer(line);
      }
    }
    return out;
  }

  void StartTls() {
    secure = true;
    pending_.clear();
  }

 private:
  static std::string Upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }

  std::string Line(const std::string& reply) {
    if (reply.empty()) return "";
    if (reply.starts_with("421")) closed = true;
    // A reply may hold several lines separated by '\n'.
    std::string out;
    size_t pos = 0;
    while (true) {
      size_t nl = reply.find('\n', pos);
      out += reply.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos) + "\r\n";
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
    return out;
  }

  std::string EhloReply() {
    if (!ehlo_reply.empty()) return Line(ehlo_reply);
    std::vector<std::string> keywords = ehlo;
    if (secure) {
      if (ehlo_after_tls) keywords = *ehlo_after_tls;
      keywords.erase(std::remove(keywords.begin(), keywords.end(), "STARTTLS"), keywords.end());
    }
    std::string first = "mx.test hello";
    if (keywords.empty()) return "250 " + first + "\r\n";
    std::string out = "250-" + first + "\r\n";
    for (size_t i = 0; i < keywords.size(); ++i) {
      out += std::string(i + 1 == keywords.size() ? "250 " : "250-") + keywords[i] + "\r\n";
    }
    return out;
  }

  std::string Answer(const std::string& line) {
    std::string verb = Upper(line.substr(0, line.find(' ')));
    if (verb == "EHLO") return EhloReply();
    if (verb == "HELO") return Line(helo_reply);
    if (verb == "STARTTLS") return Line(starttls_reply);
    if (verb == "AUTH") return Line(auth_reply);
    if (verb == "MAIL") {
      mail_ok_ = mail_reply.starts_with("2");
      rcpt_ok_ = 0;
      return Line(mail_reply);
    }
    if (verb == "RCPT") {
      size_t lt = line.find('<'), gt = line.rfind('>');
      std::string addr = lt != std::string::npos && gt > lt ? line.substr(lt + 1, gt - lt - 1) : "";
      auto it = rcpt_replies.find(addr);
      std::string r = !mail_ok_                  ? "503 5.5.1 MAIL first"
                      : it == rcpt_replies.end() ? "250 2.1.5 ok"
                                                 : it->second;
      if (r.starts_with("2")) ++rcpt_ok_;
      return Line(r);
    }
    if (verb == "DATA") {
      if ((!mail_ok_ || rcpt_ok_ == 0) && !data_without_recipients) {
        return Line("554 5.5.1 Error: no valid recipients");
      }
      if (data_reply.starts_with("354")) {
        in_data_ = true;
        body_.clear();
      }
      return Line(data_reply);
    }
    if (verb == "RSET") return Line(rset_reply);
    if (verb == "QUIT") {
      std::string r = Line(quit_reply);
      closed = true;
      return r;
    }
    return Line("500 5.5.2 what?");
  }

  void OnDataLine(const std::string& line, std::string* out) {
    if (line == ".\r\n") {
      in_data_ = false;
      bodies.push_back(body_);
      if (close_at_end_of_data) {
        closed = true;
        return;
      }
      std::string r = end_replies.empty() ? end_reply : end_replies.front();
      if (!end_replies.empty()) end_replies.erase(end_replies.begin());
      *out += Line(r);
      return;
    }
    body_ += line;
  }

  std::string pending_;
  bool in_data_ = false;
  bool mail_ok_ = false;
  int rcpt_ok_ = 0;
  std::string body_;
};

struct TestMessage {
  Envelope envelope;
  std::string body;
};

// What a run shows.
struct RunResult {
  std::vector<MessageResult> results;  // one per message started
  std::optional<Outcome> failure;      // Client::connection_failure() at the end
  // Each kReceive step's timeout, with the last command line written before
  // it ("greeting" before any): which timeout the engine asked for where.
  std::vector<std::pair<std::string, std::chrono::milliseconds>> waits;
  std::vector<std::chrono::milliseconds> body_send_timeouts;
  int timeouts = 0;  // OnTimeout() calls
  int steps = 0;
  bool closed = false;
};

// Runs `c` against `s` until kClose: server bytes reach the client
// `fragment` bytes at a time (each followed by Next()), bodies go in
// `body_chunk`-byte pieces, messages are started in order and QUIT follows
// the last. A wait with no bytes coming is a timeout (the server went silent)
// or, when the server has closed, a lost connection.
inline RunResult Drive(Client& c, FakeServer& s, const std::vector<TestMessage>& messages,
                       size_t fragment = 1u << 20, size_t body_chunk = 1u << 20) {
  RunResult run;
  std::string to_client = s.Greeting();
  std::string last_command = "greeting";
  size_t next_message = 0;
  std::string_view body;
  bool body_written = false;  // the next kSend carries body bytes
  for (; run.steps < 100000; ++run.steps) {
    Client::Step step = c.Next();
    using K = Client::Step::Kind;
    if (step.kind == K::kClose) {
      if (auto r = c.TakeResult()) run.results.push_back(std::move(*r));
      run.closed = true;
      break;
    }
    switch (step.kind) {
      case K::kSend: {
        std::string out = c.TakeOutput();
        if (body_written) run.body_send_timeouts.push_back(step.timeout);
        body_written = false;
        size_t end = out.size() >= 2 ? out.rfind('\n', out.size() - 2) : std::string::npos;
        last_command = out.substr(end == std::string::npos ? 0 : end + 1);
        while (!last_command.empty() &&
               (last_command.back() == '\n' || last_command.back() == '\r')) {
          last_command.pop_back();
        }
        if (!s.closed) to_client += s.Receive(out);
        break;
      }
      case K::kReceive:
        run.waits.emplace_back(last_command, step.timeout);
        if (!to_client.empty()) {
          size_t n = std::min(fragment, to_client.size());
          c.Feed(std::string_view(to_client).substr(0, n));
          to_client.erase(0, n);
        } else if (s.closed) {
          c.OnConnectionLost("EOF");
        } else {
          ++run.timeouts;
          c.OnTimeout();
        }
        break;
      case K::kStartTls:
        if (s.tls_fails) {
          c.OnTlsFailed("handshake failure");
          s.closed = true;
        } else {
          s.StartTls();
          to_client.clear();  // clear text sent after the 220 never reaches the TLS layer
          c.OnTlsStarted();
        }
        break;
      case K::kNeedBody:
        body_written = true;
        if (body.empty()) {
          c.EndBody();
        } else {
          size_t n = std::min(body_chunk, body.size());
          c.AddBody(body.substr(0, n));
          body.remove_prefix(n);
        }
        break;
      case K::kReady:
        if (auto r = c.TakeResult()) run.results.push_back(std::move(*r));
        if (next_message < messages.size()) {
          const TestMessage& m = messages[next_message++];
          body = m.body;
          c.StartMessage(m.envelope);
        } else {
          c.Quit();
        }
        break;
      default:
        std::abort();
    }
  }
  run.failure = c.connection_failure();
  return run;
}

}  // namespace porcupine::outbound::testing
