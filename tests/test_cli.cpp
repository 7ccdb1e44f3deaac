// The CLI: subcommands, --help, --version and the exit code of each error kind.
#include <doctest/doctest.h>

#include "test_util.h"

using test_util::run_runner;

TEST_CASE("--version prints the version and the LibTorch version") {
  const auto run = run_runner("--version");
  CHECK(run.exit_code == 0);
  CHECK(run.output.find("runner 0.") != std::string::npos);
  CHECK(run.output.find("LibTorch 1.") != std::string::npos);
}

TEST_CASE("--help documents the exit codes, on the app and on subcommands") {
  for (const char* args : {"--help", "check --help"}) {
    const auto run = run_runner(args);
    CAPTURE(args);
    CHECK(run.exit_code == 0);
    CHECK(run.output.find("3    budget refusal") != std::string::npos);
    CHECK(run.output.find("130  interrupted") != std::string::npos);
  }
}

TEST_CASE("runner check: 0 for the seed experiments, with the table") {
  for (const char* name : {"bn", "ln", "gn"}) {
    const auto run = run_runner("check " + test_util::source_path("experiments/session8/") + name + ".yaml");
    CAPTURE(name);
    CHECK(run.exit_code == 0);
    CHECK(run.output.find("Total params: 39,056") != std::string::npos);
  }
}

TEST_CASE("exit codes: 2 config, 3 budget, 2 usage") {
  const std::string bn = test_util::source_path("experiments/session8/bn.yaml");
  auto run = run_runner("check " + test_util::source_path("tests/data/bad/unknown_key.yaml"));
  CHECK(run.exit_code == 2);
  CHECK(run.output.find("unknown_key.yaml:4:23: key 'model.layers.0.conv.kernal'") != std::string::npos);

  run = run_runner("check " + bn + " --set model.layers.4.conv.out=128");
  CHECK(run.exit_code == 3);
  CHECK(run.output.find("fewer than 50,000") != std::string::npos);

  run = run_runner("check " + bn + " --set train.epochs=21");
  CHECK(run.exit_code == 3);
  CHECK(run.output.find("budget.max_epochs is 20") != std::string::npos);

  run = run_runner("check " + bn + " --set model.norm=grop");
  CHECK(run.exit_code == 2);
  CHECK(run.output.find("--set model.norm=grop: key 'model.norm'") != std::string::npos);

  CHECK(run_runner("check /nonexistent.yaml").exit_code == 2);
  CHECK(run_runner("frobnicate").exit_code == 2);
  CHECK(run_runner("").exit_code == 2);
}
