#include "runner/cli/commands.h"

#include <torch/version.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "layers/norm_kernels.h"
#include "runner/base/env_info.h"
#include "runner/base/stop_signal.h"
#include "runner/base/text.h"
#include "runner/config/config.h"
#include "runner/config/spec_json.h"
#include "runner/config/summary.h"
#include "runner/config/yaml_reader.h"
#include "runner/model/builder.h"
#include "runner/report/search_view.h"
#include "runner/store/store.h"
#include "runner/train/trainer.h"

namespace runner {

namespace {

std::string checkpoint_dir(const std::string& db) {
  const std::filesystem::path parent = std::filesystem::path(db).parent_path();
  return (parent.empty() ? std::filesystem::path("checkpoints") : parent / "checkpoints").string();
}

std::string percent(std::optional<double> v) { return v ? fixed_text(*v) : "-"; }

EpochRow to_row(const EpochMetrics& m) {
  return EpochRow{m.epoch, m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.lr, m.seconds, m.val_loss, m.val_acc};
}

EpochMetrics to_metrics(const EpochRow& r) {
  EpochMetrics m;
  m.epoch = r.epoch, m.train_loss = r.train_loss, m.train_acc = r.train_acc;
  m.test_loss = r.test_loss, m.test_acc = r.test_acc, m.lr = r.lr, m.seconds = r.seconds;
  m.val_loss = r.val_loss, m.val_acc = r.val_acc;
  return m;
}

/// Everything a training needs, prepared before the run is recorded, so that
/// config, budget and data errors never leave a run row behind.
struct Prepared {
  ExperimentSpec spec;
  BuiltModel built;
  Dataset data;
  torch::Device device{torch::kCPU};
  int64_t threads = 0;
};

Prepared prepare(ExperimentSpec spec) {
  Prepared p;
  p.spec = std::move(spec);
  seed_everything(p.spec.train.seed);
  p.built = build_model(p.spec.model);
  check_param_budget(p.built.plan, p.spec.budget);
  p.device = select_device(p.spec.train.device);
  p.threads = p.spec.train.threads > 0 ? p.spec.train.threads
                                       : static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(static_cast<int>(p.threads));
  p.data = load_dataset(p.spec.data);
  if (p.data.train.size() == 0 || p.data.test.size() == 0) throw DataError(p.spec.data.root + ": no images");
  const auto& in = p.spec.model.input;
  if (p.data.train.images.sizes().slice(1).vec() != std::vector<int64_t>(in.begin(), in.end()))
    throw DataError(p.spec.data.root + ": images are " + shape_str(p.data.train.images.sizes().slice(1).vec()) +
                    " but model.input is " + shape_str({in[0], in[1], in[2]}));
  if (static_cast<int64_t>(p.data.class_names.size()) != p.spec.model.classes)
    throw DataError(p.spec.data.root + ": " + std::to_string(p.data.class_names.size()) +
                    " classes but model.classes is " + std::to_string(p.spec.model.classes));
  if (p.device.is_cpu()) {  // a training step's shapes, and an evaluation batch's
    const bool channels_last = uses_channels_last(p.spec.train.layout, p.device);
    guard_onednn(p.spec.model, std::min(p.spec.train.batch_size, p.data.train.size()), channels_last, true);
    guard_onednn(p.spec.model, std::min(kEvalBatch, p.data.test.size()), channels_last, false);
  }
  return p;
}

/// Trains, records each epoch, and ends the run with its true status.
int train_and_record(Prepared& p, Store& store, int64_t run_id, bool resume, std::vector<EpochMetrics> previous) {
  const RunRow row = store.run(run_id);
  Trainer trainer(p.spec, p.built.net, p.data, p.device);
  TrainObserver observer;
  observer.on_epoch = [&](const EpochMetrics& m) { store.record_epoch(run_id, to_row(m)); };
  observer.stop_requested = [] { return stop_requested(); };
  TrainResult result;
  try {
    result = trainer.run(observer, row.checkpoint, resume, std::move(previous));
  } catch (const StoreError& e) {
    // Disk full or the database broke: the epochs recorded so far and the last
    // checkpoint stay; record the failure if the database still takes writes.
    try {
      store.end_run(run_id, RunStatus::Failed, e.what());
    } catch (const StoreError&) {
    }
    std::cerr << p.spec.name << " (run " << run_id << "): " << e.what() << "\ncontinue once fixed with: runner resume "
              << run_id << " --db " << store.path() << "\n";
    throw;
  } catch (const std::exception& e) {
    store.end_run(run_id, RunStatus::Failed, e.what());
    throw;
  }
  if (result.status != RunStatus::Finished) {
    store.end_run(run_id, result.status, result.message);
    std::cerr << p.spec.name << " (run " << run_id << "): " << status_text(result.status) << ": " << result.message
              << "\n";
    if (result.status == RunStatus::Interrupted)
      std::cerr << "continue with: runner resume " << run_id << " --db " << store.path() << "\n";
    return result.status == RunStatus::Interrupted ? kExitInterrupted : kExitDiverged;
  }
  TestResults results;
  results.class_names = p.data.class_names;
  results.class_correct = result.report.class_correct;
  results.class_total = result.report.class_total;
  results.confusion = result.report.confusion;
  results.misclassified = result.report.misclassified;
  const auto labels = p.data.test.labels.accessor<int64_t, 1>();
  for (const auto& [index, predicted] : results.misclassified) results.true_labels.push_back(labels[index]);
  store.end_run(run_id, RunStatus::Finished, "", &results);

  const RunRow done = store.run(run_id);
  int64_t best_epoch = 0;
  double best = -1;
  for (const auto& m : result.epochs)
    if (m.test_acc > best) best = m.test_acc, best_epoch = m.epoch;
  std::printf("%s (run %lld): finished %lld epochs; final test acc %s%%, best %s%% (epoch %lld); target %.1f%% %s\n",
              p.spec.name.c_str(), static_cast<long long>(run_id), static_cast<long long>(done.epochs_done),
              percent(done.final_test_acc).c_str(), percent(done.best_test_acc).c_str(),
              static_cast<long long>(best_epoch), p.spec.budget.target_test_acc,
              done.target_met.value_or(false) ? "met" : "NOT met");
  return kExitOk;
}

}  // namespace

int cmd_check(const CheckArgs& args) {
  const ExperimentSpec spec = load_experiment(args.file, args.sets);
  const BuiltModel built = build_model(spec.model);
  std::cout << format_summary(built.plan) << format_block_uses(built.plan, spec.model.block_uses);
  if (spec.files.size() > 1)
    std::cout << spec.files.front() << " extends "
              << join(std::vector<std::string>(spec.files.begin() + 1, spec.files.end()), " → ") << "\n";
  check_param_budget(built.plan, spec.budget);
  const int64_t frozen = built.plan.frozen_params;
  std::cout << spec.name << ": OK — " << format_thousands(built.plan.total_params)
            << (frozen > 0 ? " parameters (" + format_thousands(frozen) + " of them frozen) < "
                           : " trainable parameters < ")
            << format_thousands(spec.budget.max_params) << ", " << spec.train.epochs
            << " epochs <= " << spec.budget.max_epochs << "\n";
  // Equal hashes: one experiment to compare and to a sweep's resume, however it is written.
  std::cout << "config hash " << config_hash(experiment_json(spec)) << "\n";
  return 0;
}

int cmd_layers() {
  for (const auto& name : layer_names()) {
    const LayerDef* def = find_layer_def(name);
    std::vector<std::string> options;
    for (const auto& opt : def->options) options.push_back(opt.name + (opt.required ? " (required)" : ""));
    std::cout << name << ": " << def->summary << (options.empty() ? "" : "; options: " + join(options)) << "\n";
  }
  std::cout << "norms: " << join(norm_names()) << "\n";
  return 0;
}

int cmd_run(const RunArgs& args) {
  Prepared p = prepare(load_experiment(args.file, args.sets));
  std::cout << format_summary(p.built.plan) << format_block_uses(p.built.plan, p.spec.model.block_uses) << std::flush;
  Store store(args.db);
  const nlohmann::json config = experiment_json(p.spec);
  const EnvInfo env = collect_env_info(args.file);
  RunRecord rec;
  rec.name = p.spec.name;
  rec.experiment_file = args.file;
  rec.config_yaml = p.spec.yaml;
  rec.config_json = config.dump();
  rec.config_hash = config_hash(config);
  rec.git_commit = env.git_commit;
  rec.git_dirty = env.git_dirty;
  rec.host = env.host;
  rec.torch_version = TORCH_VERSION;
  rec.device = p.device.str();
  rec.threads = p.threads;
  rec.params = p.built.plan.total_params;
  rec.seed = p.spec.train.seed;
  rec.epochs = p.spec.train.epochs;
  rec.target_test_acc = p.spec.budget.target_test_acc;
  rec.sweep = args.sweep;
  const int64_t run_id = store.begin_run(rec, checkpoint_dir(args.db));
  std::cerr << p.spec.name << ": run " << run_id << " on " << rec.device << " with " << p.threads << " threads, "
            << (uses_channels_last(p.spec.train.layout, p.device) ? "channels-last" : "NCHW") << ", "
            << cpu_code_paths() << ", " << conv_kernels() << ", " << p.data.train.size() << " training and "
            << p.data.test.size() << " test images, recorded in " << args.db << "\n";
  return train_and_record(p, store, run_id, false, {});
}

std::string cpu_code_paths() {
  std::string text = "norm kernels " + norm_kernel_isa();
  for (const auto& [var, what] :
       {std::pair{"ONEDNN_MAX_CPU_ISA", "oneDNN max "}, std::pair{"ATEN_CPU_CAPABILITY", "ATen "}}) {
    const char* value = std::getenv(var);
    if (value != nullptr && *value != '\0') text += std::string(", ") + what + value;
  }
  return text;
}

int cmd_bench(const BenchArgs& args) {
  std::vector<std::string> sets = args.sets;
  if (args.batch > 0) sets.push_back("train.batch_size=" + std::to_string(args.batch));
  if (args.threads > 0) sets.push_back("train.threads=" + std::to_string(args.threads));
  ExperimentSpec spec = load_experiment(args.file, sets);
  Prepared p = prepare(std::move(spec));
  Trainer trainer(p.spec, p.built.net, p.data, p.device);
  const Trainer::Throughput t = trainer.benchmark(args.warmup, args.steps, p.spec.train.batch_size);
  std::vector<Trainer::ProfileRow> profile;
  if (args.profile) profile = trainer.profile(args.steps, p.spec.train.batch_size);
  const bool channels_last = uses_channels_last(p.spec.train.layout, p.device);
  if (args.json) {
    nlohmann::json json{{"experiment", p.spec.name},
                        {"norm", p.spec.model.norm},
                        {"device", p.device.str()},
                        {"layout", channels_last ? "channels_last" : "nchw"},
                        {"cpu_code_paths", cpu_code_paths()},
                        {"conv_kernels", conv_kernels()},
                        {"threads", p.threads},
                        {"batch_size", p.spec.train.batch_size},
                        {"steps", args.steps},
                        {"train_images_per_s", t.train_images_per_s},
                        {"eval_images_per_s", t.eval_images_per_s}};
    if (args.profile) {
      json["profile_ms_per_step"] = nlohmann::json::array();
      for (const auto& r : profile)
        json["profile_ms_per_step"].push_back(
            {{"part", r.part}, {"forward", r.forward_ms}, {"backward", r.backward_ms}});
    }
    std::cout << json.dump() << "\n";
  } else {
    std::printf(
        "%s on %s (%s; %s), %lld threads, batch %lld: train %.0f images/s, eval %.0f images/s (%lld timed "
        "steps)\n",
        p.spec.name.c_str(), p.device.str().c_str(), channels_last ? "channels-last" : "NCHW", cpu_code_paths().c_str(),
        static_cast<long long>(p.threads), static_cast<long long>(p.spec.train.batch_size), t.train_images_per_s,
        t.eval_images_per_s, static_cast<long long>(args.steps));
    if (args.profile) {
      double total = 0;
      for (const auto& r : profile) total += r.forward_ms + r.backward_ms;
      std::printf(
          "\nwhere a training step's time goes (ms per step over %lld profiled steps; profiling adds overhead):\n",
          static_cast<long long>(args.steps));
      // The profiler times the host: on a GPU that is launching kernels, plus waiting where the step syncs.
      if (p.device.is_cuda())
        std::printf("  (on %s these are host times: kernel launches, and waits where the step reads a value back)\n",
                    p.device.str().c_str());
      std::printf("  %-44s %9s %9s %7s\n", "part", "forward", "backward", "share");
      for (const auto& r : profile)
        std::printf("  %-44s %9.2f %9.2f %6.1f%%\n", r.part.c_str(), r.forward_ms, r.backward_ms,
                    100.0 * (r.forward_ms + r.backward_ms) / std::max(total, 1e-9));
      std::printf("  %-44s %19.2f\n", "total", total);
    }
  }
  return kExitOk;
}

int cmd_resume(int64_t run_id, const std::string& db) {
  Store store(db);
  const RunRow row = store.run(run_id);
  if (row.status == RunStatus::Finished) throw ConfigError("run " + std::to_string(run_id) + " already finished");
  if (row.status == RunStatus::Running && process_alive(row.pid) && row.record.host == host_name())
    throw ConfigError("run " + std::to_string(run_id) + " is still running as process " + std::to_string(row.pid));
  Prepared p = prepare(parse_experiment(
      row.record.config_yaml, row.record.experiment_file + " (as recorded in run " + std::to_string(run_id) + ")"));
  const bool have_checkpoint = std::filesystem::exists(row.checkpoint);
  const int64_t keep = have_checkpoint ? checkpoint_epoch(row.checkpoint) : 0;
  std::vector<EpochMetrics> previous;
  for (const auto& e : store.epochs(run_id))
    if (e.epoch <= keep) previous.push_back(to_metrics(e));
  store.reopen_run(run_id, keep);
  std::cerr << row.record.name << ": resuming run " << run_id
            << (have_checkpoint ? " from its checkpoint after epoch " + std::to_string(keep)
                                : std::string(" from the start (no checkpoint was written)"))
            << "\n";
  return train_and_record(p, store, run_id, have_checkpoint, std::move(previous));
}

int cmd_runs(const std::string& db) {
  const auto opened = Store::open_to_look(db);
  const Store& store = *opened;
  const std::string host = host_name();
  std::printf("%5s  %-24s %-22s %8s %9s %9s  %s\n", "id", "name", "status", "epochs", "final %", "best %",
              "started (UTC)");
  for (const auto& r : store.runs()) {
    std::string status = status_text(r.status);
    // A run whose process is gone was killed: say so rather than "running".
    if (r.status == RunStatus::Running && r.record.host == host && !process_alive(r.pid))
      status = "running? (process gone)";
    std::printf("%5lld  %-24s %-22s %4lld/%-3lld %9s %9s  %s\n", static_cast<long long>(r.id), r.record.name.c_str(),
                status.c_str(), static_cast<long long>(r.epochs_done), static_cast<long long>(r.record.epochs),
                percent(r.final_test_acc).c_str(), percent(r.best_test_acc).c_str(), r.started_at.c_str());
  }
  return 0;
}

int cmd_show(int64_t run_id, const std::string& db) {
  const auto opened = Store::open_to_look(db);
  const Store& store = *opened;
  const RunRow r = store.run(run_id);
  std::printf("run %lld: %s — %s%s\n", static_cast<long long>(r.id), r.record.name.c_str(), status_text(r.status),
              r.error.empty() ? "" : (" (" + r.error + ")").c_str());
  std::printf("file %s, config hash %s, seed %lld, %lld parameters\n", r.record.experiment_file.c_str(),
              r.record.config_hash.c_str(), static_cast<long long>(r.record.seed),
              static_cast<long long>(r.record.params));
  std::printf("host %s, %s with %lld threads, LibTorch %s, git %s%s\n", r.record.host.c_str(), r.record.device.c_str(),
              static_cast<long long>(r.record.threads), r.record.torch_version.c_str(),
              r.record.git_commit.empty() ? "-" : r.record.git_commit.substr(0, 12).c_str(),
              r.record.git_dirty == 1 ? " (dirty)" : "");
  std::printf("started %s, finished %s\n\n--- config ---\n%s\n", r.started_at.c_str(),
              r.finished_at.empty() ? "-" : r.finished_at.c_str(), r.record.config_yaml.c_str());
  std::printf("\n%5s %10s %9s %10s %9s %9s %8s\n", "epoch", "train loss", "train %", "test loss", "test %", "lr",
              "seconds");
  for (const auto& e : store.epochs(run_id))
    std::printf("%5lld %10.4f %9.2f %10.4f %9.2f %9.5f %8.1f\n", static_cast<long long>(e.epoch), e.train_loss,
                e.train_acc, e.test_loss, e.test_acc, e.lr, e.seconds);
  std::printf("\nfinal test acc %s%%, best %s%%, target %.1f%%: %s\n", percent(r.final_test_acc).c_str(),
              percent(r.best_test_acc).c_str(), r.record.target_test_acc,
              r.target_met ? (*r.target_met ? "met" : "not met") : "-");
  return 0;
}

int cmd_compare(const CompareOptions& options, const std::string& db) {
  const auto opened = Store::open_to_look(db);
  const Store& store = *opened;
  // A search's own view (rungs, promotions) unless --by asks for its runs compared as runs.
  if (!options.by_given && !options.sweep.empty() && options.sweep.find(',') == std::string::npos &&
      options.where.empty())
    if (const auto view = load_search_view(store, options.sweep)) {
      std::cout << search_text(*view, options.format);
      return 0;
    }
  std::cout << compare_runs(store.runs(), options);
  return 0;
}

}  // namespace runner

#include "runner/train/fetch.h"

namespace runner {

int cmd_data_fetch(const std::string& dataset, const std::string& dir, const std::string& url) {
  if (dataset != "cifar10") throw ConfigError("unknown dataset '" + dataset + "' (known: cifar10)");
  const std::string data = fetch_cifar10(dir, url.empty() ? kCifar10Url : url);
  std::cout << "CIFAR-10 is in " << data << " (use data.root: " << data << ", or CIFAR10_ROOT=" << data << ")\n";
  return 0;
}

}  // namespace runner
