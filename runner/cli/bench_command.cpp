// runner bench FILE [--set K=V]... [--steps N] [--warmup N] [--batch B] [--threads T] [--json] [--profile].
#include "runner/cli/command.h"
#include "runner/cli/commands.h"

namespace runner {

Command bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  BenchArgs& bench = *args;
  CLI::App* cmd = add_subcommand(app, "bench", "Measure steady-state training and evaluation images/s");
  add_experiment_args(cmd, bench.file, bench.sets);
  cmd->add_option("--steps", bench.steps, "timed training steps")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--warmup", bench.warmup, "untimed steps first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--batch", bench.batch, "batch size (default: train.batch_size)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", bench.threads, "threads (default: train.threads)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", bench.json, "one JSON object: train_images_per_s, eval_images_per_s, ...");
  cmd->add_flag("--profile", bench.profile,
                "also profile --steps more steps: ms per step per layer type (forward, backward) and step part");
  return {cmd, [args] { return cmd_bench(*args); }};
}

}  // namespace runner
