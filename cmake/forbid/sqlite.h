// Forced in front of every source of a stage that may not use SQLite (see
// cmake/stages.cmake): sqlite3.h, SQLiteCpp or the store's headers then fail
// to compile with "attempt to use poisoned" and the line that did it.
#pragma GCC poison sqlite3 SQLite
