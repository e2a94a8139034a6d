#include "core/hash.h"

#include <xxhash.h>

namespace porcupine {

uint64_t Hash64(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

}  // namespace porcupine
