// Files that are whole or absent: a kill never leaves half of one.
#pragma once
#include <string>

namespace runner {

/// Writes `bytes` to `path` through a temporary file, fsync and rename; a failed
/// write (disk full) keeps the old file. Throws StoreError naming the file, the
/// reason and the space left (it writes checkpoints, part of a run's record).
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace runner
