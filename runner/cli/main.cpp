// The runner CLI: parses arguments, calls one command, and maps each error kind
// to its exit code (see kExitCodesHelp).
#include <torch/version.h>

#include <CLI/CLI.hpp>
#include <iostream>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "runner/cli/commands.h"
#include "runner/cli/export_command.h"
#include "runner/cli/predict_command.h"
#include "runner/base/errors.h"
#include "runner/base/stop_signal.h"
#include "runner/report/report.h"
#include "runner/sweep/sweep.h"
#include "runner/ui/ui.h"
#include "runner_version.h"

namespace {

const std::string kExitCodesHelp = runner::exit_codes_help();

std::string version_line() {
  std::string left_out;
  if (!RUNNER_FETCH) left_out += " data fetch,";
  if (!RUNNER_PNG) left_out += " PNG plots,";
  if (!RUNNER_UI) left_out += " ui,";
  if (!RUNNER_ONNX) left_out += " ONNX export,";
  if (!left_out.empty()) left_out = "; built without" + left_out.substr(0, left_out.size() - 1);
  std::string paths;
  try {
    paths = ", " + runner::cpu_code_paths();
  } catch (const std::exception&) {  // a bad RUNNER_NORM_ISA: every command reports it
  }
  return std::string("runner ") + RUNNER_VERSION + " (LibTorch " + TORCH_VERSION + paths + left_out + ")";
}

/// Training frees and reallocates the same activation sizes every step. With
/// glibc's defaults, blocks above its mmap threshold (evaluation batches, large
/// activations) and the heap's free top went back to the kernel each time, so
/// every step faulted its memory in again: 4.6 million page faults and as much
/// system as user time in a 35-step `runner bench`, evaluation 3.5x slower.
/// Keeping freed memory in the process costs nothing but the peak RSS it
/// already reached.
void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  using namespace runner;
  keep_freed_memory();
  CLI::App app{"runner: declarative deep-learning experiments (YAML → checked LibTorch model → SQLite results)"};
  app.footer(kExitCodesHelp);
  app.set_version_flag("--version", version_line());
  app.require_subcommand(1);
  auto add_command = [&](const std::string& name, const std::string& description) {
    CLI::App* cmd = app.add_subcommand(name, description);
    cmd->footer(kExitCodesHelp);
    return cmd;
  };
  // Every command that reads an experiment takes the file and --set overrides alike.
  auto add_experiment = [](CLI::App* cmd, std::string& file, std::vector<std::string>& sets) {
    cmd->add_option("file", file, "experiment YAML")->required();
    cmd->add_option("--set", sets, "override a key: --set train.epochs=2 (repeatable)");
  };

  CheckArgs check;
  CLI::App* check_cmd = add_command("check", "Check an experiment: print the model summary, enforce the budget");
  add_experiment(check_cmd, check.file, check.sets);

  RunArgs run;
  CLI::App* run_cmd = add_command("run", "Train an experiment and record it in the results database");
  add_experiment(run_cmd, run.file, run.sets);
  run_cmd->add_option("--db", run.db, "results database")->capture_default_str();
  run_cmd->add_option("--sweep", run.sweep, "tag the run with a sweep name");

  int64_t resume_id = 0;
  std::string db = kDefaultDb;
  CLI::App* resume_cmd = add_command("resume", "Continue an interrupted run from its checkpoint");
  resume_cmd->add_option("run_id", resume_id, "run id (see runner runs)")->required();
  resume_cmd->add_option("--db", db, "results database")->capture_default_str();

  CLI::App* runs_cmd = add_command("runs", "List recorded runs");
  runs_cmd->add_option("--db", db, "results database")->capture_default_str();

  int64_t show_id = 0;
  CLI::App* show_cmd = add_command("show", "Print a run's config and per-epoch metrics");
  show_cmd->add_option("run_id", show_id, "run id")->required();
  show_cmd->add_option("--db", db, "results database")->capture_default_str();

  CompareOptions compare;
  CLI::App* compare_cmd = add_command("compare", "Compare finished runs grouped by a config key (mean ± std)");
  compare_cmd->add_option("--by", compare.by, "dotted config key(s), e.g. model.norm or model.norm,model.standardize")->capture_default_str();
  compare_cmd->add_option("--where", compare.where, "KEY=VALUE filter on the config (repeatable)");
  compare_cmd->add_option("--sweep", compare.sweep, "only runs of this sweep (or these: a,b)");
  compare_cmd->add_option("--rank", compare.rank,
                          "order groups best first by final validation (val) or test accuracy; pick recipes by val");
  compare_cmd->add_option("--format", compare.format, "table, markdown, csv or json")
      ->check(CLI::IsMember({"table", "markdown", "csv", "json"}))
      ->capture_default_str();
  compare_cmd->add_option("--db", db, "results database")->capture_default_str();

  CLI::App* data_cmd = add_command("data", "Get datasets");
  data_cmd->require_subcommand(1);
  std::string fetch_dataset, fetch_dir = "data", fetch_url;
  CLI::App* fetch_cmd = data_cmd->add_subcommand("fetch", "Download and unpack a dataset, checking its MD5");
  fetch_cmd->add_option("dataset", fetch_dataset, "dataset name")->required()->check(CLI::IsMember({"cifar10"}));
  fetch_cmd->add_option("dir", fetch_dir, "where to unpack (gets cifar-10-batches-bin/)")->capture_default_str();
  fetch_cmd->add_option("--url", fetch_url, "download from a mirror or a file:// copy instead");
  fetch_cmd->footer(kExitCodesHelp);

  SweepArgs sweep;
  sweep.db = kDefaultDb;
  CLI::App* sweep_cmd = add_command("sweep", "Run every point of a grid file as a recorded run (resumable)");
  sweep_cmd->add_option("grid", sweep.grid, "grid YAML")->required();
  CLI::Option* plan_flag =
      sweep_cmd->add_flag("--plan", sweep.plan, "list the points with parameters and budget check; train nothing");
  sweep_cmd->add_option("--jobs", sweep.jobs, "points at a time, each in its own process")->capture_default_str();
  sweep_cmd->add_flag("--fail-fast", sweep.fail_fast, "start no more points after one fails");
  sweep_cmd->add_option("--shard", sweep.shard, "I/N: run only slice I (0-based) of N, e.g. for a SLURM array; "
                        "halving: of the current rung only");
  sweep_cmd->add_option("--from", sweep.from, "merge this database into --db first (a halving shard: the merged "
                        "earlier rungs decide its points)");
  sweep_cmd->add_option("--after-rung", sweep.after_rung, "halving under --slurm (the merge jobs use it): submit the "
                        "rung after R, or stop if R did not complete");
  sweep_cmd->add_option("--db", sweep.db, "results database")->capture_default_str();
  CLI::Option* status_flag =
      sweep_cmd->add_flag("--status", sweep.status, "per-point status across the database and SLURM shard databases; "
                          "with halving, each rung's points, metric and promotions");
  CLI::Option* best_flag =
      sweep_cmd->add_flag("--best", sweep.best, "print the winning point as a complete experiment YAML for runner run");
  CLI::Option* slurm_flag =
      sweep_cmd->add_flag("--slurm", sweep.slurm, "submit a SLURM job array (one task per unfinished point) and a "
                          "merge job; halving: one array per rung, each merge job promotes and submits the next");
  // Without --slurm these would be ignored and the sweep would train here: `--dry-run` alone once ran a
  // whole grid. A usage error instead.
  for (CLI::Option* o : {sweep_cmd->add_flag("--dry-run", sweep.dry_run, "print the sbatch scripts, submit nothing"),
                         sweep_cmd->add_option("--partition", sweep.partition, "SLURM partition"),
                         sweep_cmd->add_option("--time", sweep.time, "SLURM time limit per task, HH:MM:SS"),
                         sweep_cmd->add_option("--cpus-per-task", sweep.cpus_per_task, "SLURM CPUs per task"),
                         sweep_cmd->add_option("--gres", sweep.gres, "SLURM generic resources, e.g. gpu:1"),
                         sweep_cmd->add_option("--array-limit", sweep.array_limit, "at most K array tasks at once")})
    o->needs(slurm_flag);
  // One mode at a time: `--plan --slurm` once quietly meant --plan.
  const std::vector<CLI::Option*> modes{plan_flag, status_flag, best_flag, slurm_flag};
  for (CLI::Option* a : modes)
    for (CLI::Option* b : modes)
      if (a != b) a->excludes(b);

  BenchArgs bench;
  CLI::App* bench_cmd = add_command("bench", "Measure steady-state training and evaluation images/s");
  add_experiment(bench_cmd, bench.file, bench.sets);
  bench_cmd->add_option("--steps", bench.steps, "timed training steps")->capture_default_str();
  bench_cmd->add_option("--warmup", bench.warmup, "untimed steps first")->capture_default_str();
  bench_cmd->add_option("--batch", bench.batch, "batch size (default: train.batch_size)");
  bench_cmd->add_option("--threads", bench.threads, "threads (default: train.threads)");
  bench_cmd->add_flag("--json", bench.json, "one JSON object: train_images_per_s, eval_images_per_s, ...");
  bench_cmd->add_flag("--profile", bench.profile,
                      "also profile --steps more steps: ms per step per layer type (forward, backward) and step part");

  std::string merge_out;
  std::vector<std::string> merge_in;
  CLI::App* merge_cmd = add_command("merge", "Merge result databases (e.g. sweep shards) without duplicating runs");
  merge_cmd->add_option("out", merge_out, "database to merge into (created if missing)")->required();
  merge_cmd->add_option("inputs", merge_in, "databases to merge from")->required();

  ReportArgs report;
  report.db = kDefaultDb;
  CLI::App* report_cmd = add_command("report", "Write one self-contained HTML report: comparison, curves, per-run pictures");
  report_cmd->add_option("run_ids", report.run_ids, "runs to show (default: all matching the filters)");
  report_cmd->add_option("--sweep", report.sweep, "only runs of this sweep (or these: a,b)");
  report_cmd->add_option("--where", report.where, "KEY=VALUE filter on the config (repeatable)");
  report_cmd->add_option("--out", report.out, "HTML file to write")->capture_default_str();
  report_cmd->add_option("--db", report.db, "results database")->capture_default_str();

  PlotArgs plot;
  plot.db = kDefaultDb;
  CLI::App* plot_cmd = add_command("plot", "Write one picture of runs as PNG or SVG");
  plot_cmd->add_option("run_ids", plot.run_ids, "runs to draw")->required();
  plot_cmd->add_option("--out", plot.out, "FILE.png or FILE.svg")->required();
  plot_cmd->add_option("--what", plot.what, "curves, misclassified or confusion")
      ->check(CLI::IsMember({"curves", "misclassified", "confusion"}))
      ->capture_default_str();
  plot_cmd->add_option("--db", plot.db, "results database")->capture_default_str();

  UiArgs ui;
  ui.db = kDefaultDb;
  CLI::App* ui_cmd = add_command("ui", "Serve a live, read-only web view of the results database (Ctrl-C stops)");
  ui_cmd->add_option("--db", ui.db, "results database")->capture_default_str();
  ui_cmd->add_option("--port", ui.port, "TCP port (0: any free one, printed)")->capture_default_str();
  ui_cmd->add_option("--host", ui.host, "address to listen on; anything but 127.0.0.1 is warned about")
      ->capture_default_str();

  CLI::App* layers_cmd = add_command("layers", "List the layer types and norms the DSL knows");

  ExportArgs export_args;
  export_args.db = kDefaultDb;
  CLI::App* export_cmd =
      add_command("export", "Write a run's trained network as ONNX or as a PyTorch module (docs/export.md)");
  export_cmd->add_option("run_id", export_args.run_id, "run id (see runner runs)")->required();
  export_cmd->add_option("--format", export_args.format, "onnx (one .onnx file) or pytorch (a folder)")
      ->check(CLI::IsMember({"onnx", "pytorch"}))
      ->capture_default_str();
  export_cmd->add_option("--out", export_args.out, "FILE.onnx, or the folder for pytorch")->required();
  export_cmd->add_flag("--raw-input", export_args.raw_input,
                       "fold data.normalize into the model: it takes RGB pixels scaled to [0, 1]");
  export_cmd->add_flag("--force", export_args.force, "replace --out if it exists");
  export_cmd->add_flag("--allow-unfinished", export_args.allow_unfinished,
                       "export a run that did not finish, as its checkpoint holds it (the epoch is printed)");
  export_cmd->add_flag("--verify", export_args.verify,
                       "run the export with onnxruntime or PyTorch on the run's test images and compare with "
                       "the runner's logits (top-1 on every image, logits within 1e-4)");
  export_cmd->add_option("--db", export_args.db, "results database")->capture_default_str();

  PredictArgs predict;
  predict.db = kDefaultDb;
  CLI::App* predict_cmd = add_command("predict", "Classify PNG or JPEG images with a run's trained network (top 3)");
  predict_cmd->add_option("run_id", predict.run_id, "run id (see runner runs)")->required();
  predict_cmd->add_option("images", predict.images, "PNG or JPEG files of any size (scaled as docs/export.md says)")
      ->required();
  predict_cmd->add_flag("--json", predict.json, "one JSON array: image, top classes with probabilities");
  predict_cmd->add_flag("--allow-unfinished", predict.allow_unfinished, "use a run that did not finish");
  predict_cmd->add_option("--db", predict.db, "results database")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitConfig;
  }

  try {
    install_stop_signals(StopMode::Run);
    cpu_code_paths();  // a bad RUNNER_NORM_ISA is a usage error before any work
    if (*check_cmd) return cmd_check(check);
    if (*run_cmd) return cmd_run(run);
    if (*resume_cmd) return cmd_resume(resume_id, db);
    if (*runs_cmd) return cmd_runs(db);
    if (*show_cmd) return cmd_show(show_id, db);
    if (*compare_cmd) {
      compare.by_given = compare_cmd->count("--by") > 0;
      return cmd_compare(compare, db);
    }
    if (*fetch_cmd) return cmd_data_fetch(fetch_dataset, fetch_dir, fetch_url);
    if (*sweep_cmd) return cmd_sweep(sweep);
    if (*bench_cmd) return cmd_bench(bench);
    if (*merge_cmd) return cmd_merge(merge_out, merge_in);
    if (*report_cmd) return cmd_report(report);
    if (*plot_cmd) return cmd_plot(plot);
    if (*layers_cmd) return cmd_layers();
    if (*ui_cmd) return cmd_ui(ui);
    if (*export_cmd) return cmd_export(export_args);
    if (*predict_cmd) return cmd_predict(predict);
  } catch (const ConfigError& e) {
    std::cerr << e.what() << "\n";
    return kExitConfig;
  } catch (const BudgetError& e) {
    std::cerr << "refused: " << e.what() << "\n";
    return kExitBudget;
  } catch (const DataError& e) {
    std::cerr << "data error: " << e.what() << "\n";
    return kExitData;
  } catch (const StoreError& e) {
    std::cerr << "results store error: " << e.what() << "\n";
    return kExitStore;
  } catch (const ExternalError& e) {
    std::cerr << "outside the runner: " << e.what() << "\n";
    return kExitExternal;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return kExitInternal;
  }
  return kExitInternal;
}
