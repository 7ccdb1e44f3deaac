// Must not compile: built with the train stage's guard (no SQLite), as if the
// trainer wrote its epochs to the database itself. See tests/CMakeLists.txt.
#include "runner/store/store.h"

int trainer_with_a_database() { return runner::kSchemaVersion; }
