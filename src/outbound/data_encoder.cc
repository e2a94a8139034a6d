#include "outbound/data_encoder.h"

namespace porcupine::outbound {

void DataEncoder::Encode(std::string_view chunk, std::string* out) {
  bytes_in_ += chunk.size();
  // Worst case every byte doubles ("." lines, bare LFs); reserve for the
  // common case of a few line ends.
  out->reserve(out->size() + chunk.size() + chunk.size() / 32 + 4);
  size_t pos = 0;
  while (pos < chunk.size()) {
    if (pending_cr_) {
      // A CR's line end is written when we know whether LF follows, so that
      // CRLF split across two chunks stays one line end.
      pending_cr_ = false;
      out->append("\r\n");
      line_start_ = true;
      if (chunk[pos] == '\n') {
        ++pos;
        continue;
      }
    }
    if (line_start_ && chunk[pos] == '.') out->push_back('.');
    line_start_ = false;
    // Copy the run of ordinary bytes up to the next line end in one go.
    size_t end = chunk.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) {
      out->append(chunk.substr(pos));
      return;
    }
    out->append(chunk.substr(pos, end - pos));
    if (chunk[end] == '\r') {
      pending_cr_ = true;
    } else {
      out->append("\r\n");
      line_start_ = true;
    }
    pos = end + 1;
  }
}

void DataEncoder::Finish(std::string* out) {
  if (pending_cr_ || !line_start_) out->append("\r\n");
  out->append(".\r\n");
  line_start_ = true;
  pending_cr_ = false;
  bytes_in_ = 0;
}

}  // namespace porcupine::outbound
