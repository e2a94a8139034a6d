// Merging two copies of one user's profile (DESIGN.md §6, docs/imap.md).
//
// Every node keeps a copy of every profile, and the user's manager changes
// it. During a partition each side has a manager, and both may change the
// profile: one side creates a folder, the other reserves a block of UIDs.
// Last writer wins would drop one side's changes, and with a folder the
// messages filed in it. So copies are merged instead, field by field:
//
// - The newer copy (by hlc) gives the password, quota, aliases and each
//   folder's name, special use and subscription. A tombstone on either side
//   (the user deleted or created again) takes the newer copy whole.
// - Folders are united by id; a folder either copy lists as deleted
//   (`deleted_folders`) stays deleted. Folder ids are drawn at random
//   (NewFolderId), so two sides never give one id to different folders.
// - UID reservations, next_folder_id and last_uidvalidity take the larger.
// - Two folders left with one name: the lower id keeps it, the other is
//   renamed "<name>-<id>" (its messages stay with it).
//
// The merge of a copy with one derived from it is the derived one, so the
// merge is safe wherever a copy arrives. The result carries the newer hlc,
// one more when it differs from both copies, so that it replaces both
// wherever it goes.
#pragma once

#include <cstdint>
#include <string_view>

#include "store/records.pb.h"

namespace porcupine::store {

// Deleted folder ids kept per profile at most (the largest ids stay).
inline constexpr size_t kMaxDeletedFolders = 4096;

Profile MergeProfiles(const Profile& a, const Profile& b);

// A folder id for a new folder of `p`: drawn from `seed` (mix in the node
// and the time), never INBOX's, one in use or one deleted.
uint32_t NewFolderId(const Profile& p, uint64_t seed);

// Records folder `id` as deleted in `p` (the folder itself is removed by the caller).
void MarkFolderDeleted(Profile& p, uint32_t id);

}  // namespace porcupine::store
