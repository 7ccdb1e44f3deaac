// What the store's files share: SQLite errors as StoreError, and reading a run row.
#pragma once
#include <SQLiteCpp/SQLiteCpp.h>

#include <optional>
#include <string>

#include "runner/base/errors.h"
#include "runner/store/store.h"

namespace runner {

/// Runs f; a SQLite exception becomes a StoreError naming the file and what failed.
template <class F>
auto guarded(const std::string& path, const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const SQLite::Exception& e) {
    throw StoreError(path + ": " + what + ": " + e.what());
  }
}

inline std::optional<double> opt_double(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getDouble();
}

/// A status as the database holds it; StoreError for a word the schema's CHECK should have kept out.
inline RunStatus stored_status(const std::string& text) {
  if (const auto status = parse_status(text)) return *status;
  throw StoreError("unknown status '" + text + "' in the database");
}

/// The columns read_run reads, in its order ("r" is the runs table).
extern const char* const kRunColumns;

/// One row of `SELECT kRunColumns FROM runs r`.
RunRow read_run(SQLite::Statement& q);

/// The schema steps, version 1 first (schema.cpp).
extern const char* const kSchemaSteps[kSchemaVersion];

}  // namespace runner
